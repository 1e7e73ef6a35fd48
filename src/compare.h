/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Reads an image stream and a written copy of it side by side and tells
 * where they differ: 'verify' of an Android sparse image without a bmap,
 * whose RAW and FILL chunks are then what DEST must hold. */

#include <stdint.h>

#include "stream.h"
#include "util.h"

typedef struct CompareResult {
        uint64_t compared;      /* bytes compared */
        uint64_t bad_ranges, bad_bytes;
} CompareResult;

/* Compares every data stretch of s (stream_next_stretch: all of it, or an
 * Android sparse image's RAW and FILL chunks) with the same bytes of fd,
 * in units of granule bytes (a power of two); what s leaves undefined is
 * skipped. bad is called for each run of differing units, in order, as
 * [start, end) byte offsets (cut at the image's end); bytes past the end of
 * fd differ. Returns 0 (differences are no error: they are in *ret) or a
 * negative errno with d filled when s or fd cannot be read. */
int compare_stream_fd(Stream *s, int fd, const char *fd_name, uint64_t granule,
                      void (*bad)(void *userdata, uint64_t start, uint64_t end), void *userdata, CompareResult *ret,
                      Diag *d);
