/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>

#include "bmap-sig.h"
#include "bmap.h"
#include "input-http.h"
#include "util.h"

/* What opening a bmap learnt besides the bmap, for the command to tell the
 * user: the engine decides, the command prints. */
typedef struct BmapOpenInfo {
        SigResult sig; /* how it was signed, by whom, or why that does not verify (report_only) */
        /* Format 1.3 and later always write a file checksum: a bmap of
         * such a format without one cannot be checked for changes. */
        bool file_checksum_missing;
} BmapOpenInfo;

void bmap_open_info_done(BmapOpenInfo *i);

/* Opens the bmap at location (a path or a URL, transferred as http says):
 * reads it, checks its signature as sig asks (bmap-sig.h; a detached one is
 * fetched beside it), parses the text that signature covers and checks its
 * file checksum: a wrong one is refused, unless allow_bad_file_checksum
 * (info, which reports it: ret->file_checksum). One path for copy, verify
 * and info, so that they cannot come to trust different bmaps. A negative
 * errno and a one-line message naming the bmap on failure; ret and
 * ret_info (may be NULL) are set only on success. */
int bmap_open(const char *location, const SigOptions *sig, HttpContext *http, bool allow_bad_file_checksum,
              Bmap *ret, BmapOpenInfo *ret_info, Diag *d);

/* A bmap read already, out of the image's own archive (stream.h,
 * ArchiveBmap): name for messages ("disk.zip member disk.img.bmap"), its
 * bytes, and the detached signature member that came with it. */
typedef struct BmapBytes {
        const char *name;
        const char *data;
        size_t len;
        const SigDetached *sig; /* NULL: none in the archive */
} BmapBytes;

/* bmap_open for a bmap in memory: the same signature, parse and file
 * checksum rules, the signature taken from the archive (or --bmap-sig). */
int bmap_open_bytes(const BmapBytes *in, const SigOptions *sig, HttpContext *http, bool allow_bad_file_checksum,
                    Bmap *ret, BmapOpenInfo *ret_info, Diag *d);
