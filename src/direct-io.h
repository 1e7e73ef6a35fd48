/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdint.h>
#include <sys/types.h>

/* Writes that bypass the page cache. A flash writes each byte once and
 * never reads it again through the cache: copying it there first costs
 * the writer thread up to a CPU second per GiB (page allocation and
 * writeback), and fills memory with pages nobody wants.
 *
 * The file a target wrote is opened a second time with O_DIRECT; writes
 * whose offset, length and buffer suit the device's alignment go there,
 * the rest (a range that starts or ends inside a logical block: a bmap of
 * 512-byte blocks on a 4Kn disk, an image whose size is not a multiple of
 * the block size) goes through the ordinary descriptor, so that the page
 * cache does the read-modify-write of the edge block. The kernel keeps
 * the two coherent: a direct write first writes back and drops the cached
 * pages it overlaps. Where the filesystem has no O_DIRECT (the reopen, or
 * the first direct write, fails with EINVAL) every write is buffered, as
 * before. */
typedef struct DirectIO {
        int fd;                 /* the same file opened O_DIRECT, or -1: buffered only */
        uint32_t offset_align;  /* direct writes: offsets and lengths are multiples of this */
        uint32_t mem_align;     /* and buffer addresses */
        uint8_t *bounce;        /* an aligned copy of a buffer that is not aligned, made on first need */
        uint64_t direct_bytes;  /* written through fd */
} DirectIO;

/* Opens fd's file again with O_DIRECT, when its filesystem or device
 * takes it. Never fails: without O_DIRECT, dio->fd is -1. */
void direct_io_open(DirectIO *dio, int fd);
/* Like pwrite(fd, ...): writes a prefix of buf at offset, direct where it
 * can, and returns the bytes written or a negative errno. */
ssize_t direct_io_pwrite(DirectIO *dio, int fd, const void *buf, size_t n, uint64_t offset);
void direct_io_close(DirectIO *dio);
