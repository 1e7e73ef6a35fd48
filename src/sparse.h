/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "extents.h"
#include "util.h"

/* Refuses an image that must not be punched: one attached to a loop device
 * (it may be mounted, or in use): -EBUSY with a message. With writing (a
 * real run, not a dry run) also one that no one may write (no write bit in
 * its mode: root could open it for writing all the same), -EACCES, and one
 * another process has open (see sparse_lease_take), -EBUSY. Returns 0 when
 * it may be punched. */
int sparse_check_image(int fd, const char *path, bool writing, Diag *d);

/* A write lease on fd (open O_RDWR) for the time holes are punched: the
 * kernel grants it only while no other process has the file open, and
 * makes anyone who opens it meanwhile wait for its release (or for
 * /proc/sys/fs/lease-break-time), so that no writer's data meets a
 * punched hole. Returns 1 when taken; -EBUSY with a message when another
 * process has the file open; 0 when the filesystem or the file's owner
 * allows no lease (EINVAL on some FUSE or NFS mounts, EACCES for a file
 * of another user without CAP_LEASE): nothing is proven either way, and d
 * says why for a verbose line. A lease break is signalled with SIGIO,
 * whose default action ends the process: the caller ignores SIGIO. */
int sparse_lease_take(int fd, const char *path, Diag *d);
void sparse_lease_release(int fd);

/* Punches holes (keeping the size) over every byte of [0, image_size) that
 * lies outside the mapped blocks. Never touches a mapped byte. With dry_run
 * it punches nothing and reports what it would free: the unmapped bytes that
 * are allocated on disk now. ret_unmapped: unmapped bytes in all. leased:
 * fd holds a write lease; punching stops (-EBUSY) as soon as another
 * process opens the file and breaks it. */
int sparse_punch(int fd, const char *path, uint64_t image_size, uint64_t block_size, const Extents *mapped_blocks,
                 bool dry_run, bool leased, uint64_t *ret_would_free, uint64_t *ret_unmapped, Diag *d);

/* Bytes the file occupies on disk (st_blocks). */
int file_disk_usage(int fd, uint64_t *ret);
