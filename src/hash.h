/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdint.h>

#include "bmap.h"
#include "extents.h"
#include "util.h"

/* One-shot digest of a buffer. */
int digest_buffer(ChecksumType t, const void *data, size_t len, uint8_t *ret);

/* Digest of the bytes of each block extent of blocks in fd, the last block
 * cut at image_size, written to ret[i] for the i-th extent. The extents are
 * spread over threads workers (0: one per CPU), largest first; each extent is
 * hashed by one worker, so the result never depends on the thread count. */
int hash_block_ranges(int fd, const char *name, uint64_t image_size, uint64_t block_size, const Extents *blocks,
                      ChecksumType t, unsigned threads, uint8_t (*ret)[CHECKSUM_MAX_SIZE], Diag *d);
/* The same over an Image: a qcow2's virtual disk, whose known-zero clusters
 * are not read. */
struct Image;
int hash_image_ranges(const struct Image *img, const char *name, uint64_t block_size, const Extents *blocks,
                      ChecksumType t, unsigned threads, uint8_t (*ret)[CHECKSUM_MAX_SIZE], Diag *d);
