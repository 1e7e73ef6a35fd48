/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "extents.h"
#include "util.h"

/* Refuses an image that must not be punched: one attached to a loop device
 * (it may be mounted, or in use). Returns 0, or -EBUSY with a message. */
int sparse_check_image(int fd, const char *path, Diag *d);

/* Punches holes (keeping the size) over every byte of [0, image_size) that
 * lies outside the mapped blocks. Never touches a mapped byte. With dry_run
 * it punches nothing and reports what it would free: the unmapped bytes that
 * are allocated on disk now. ret_unmapped: unmapped bytes in all. */
int sparse_punch(int fd, const char *path, uint64_t image_size, uint64_t block_size, const Extents *mapped_blocks,
                 bool dry_run, uint64_t *ret_would_free, uint64_t *ret_unmapped, Diag *d);

/* Bytes the file occupies on disk (st_blocks). */
int file_disk_usage(int fd, uint64_t *ret);
