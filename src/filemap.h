/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdint.h>

#include "extents.h"
#include "util.h"

typedef enum FilemapMethod {
        FILEMAP_FIEMAP,
        FILEMAP_SEEK,
        FILEMAP_NONE, /* the host cannot tell: every block is mapped */
} FilemapMethod;

/* The block size bmaptool would use for a file: the host filesystem's
 * (FIGETBSZ), else st_blksize. */
int filemap_block_size(int fd, uint64_t *ret);

/* The blocks of fd that hold data, as the host filesystem reports them:
 * FIEMAP (preallocated extents count as data), else SEEK_DATA/SEEK_HOLE,
 * else everything. Blocks are block_size bytes; the last one may be partial. */
int filemap_mapped_blocks(int fd, uint64_t size, uint64_t block_size, Extents *ret, FilemapMethod *ret_method,
                          Diag *d);
