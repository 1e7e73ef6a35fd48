/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "extents.h"
#include "util.h"

typedef enum TargetKind {
        TARGET_FILE,    /* a regular file (new or replaced): written beside it, renamed into place */
        TARGET_BLOCK,   /* a block device */
        TARGET_CHAR,    /* a character device such as /dev/null: written in place */
} TargetKind;

typedef struct TargetOptions {
        bool removable_only;    /* --removable-device: refuse a non-removable disk */
        bool tune;              /* set the I/O scheduler and writeback ratio for the copy */
} TargetOptions;

/* Where an image is written. A regular file is written under a temporary
 * name beside it, sparse, exactly image_size bytes, and renamed over the
 * path only by target_finish: a failed copy leaves the old file untouched.
 * A block device is opened O_EXCL and refused, before any byte is written,
 * when it or one of its partitions is mounted or held (swap, device mapper,
 * md), when it is read-only or smaller than the image. */
typedef struct Target Target;

int target_open(const char *path, uint64_t image_size, const TargetOptions *o, Target **ret, Diag *d);
int target_write(Target *t, const void *buf, size_t n, uint64_t offset, Diag *d);
/* Flushes the data to the device (fsync), renames a file into place, and
 * restores any tuning. Success is reported only after this. */
int target_finish(Target *t, Diag *d);
/* Undoes what can be undone: removes a temporary file, restores tuning.
 * Safe after target_finish too (it then does nothing). */
void target_free(Target *t);

TargetKind target_kind(const Target *t);
const char *target_path(const Target *t);
/* For messages after a failure: what state the target is in. */
const char *target_state_after_failure(const Target *t);
int target_fd(const Target *t);

/* Discards (BLKDISCARD) byte ranges of a block device target: the whole
 * device sectors inside each range (a sector shared with bytes outside it
 * is kept). Does nothing for other targets. -EOPNOTSUPP when the device
 * cannot discard. */
int target_discard(Target *t, const Extents *bytes, Diag *d);

/* Reads the target back: an fd open for reading with its cached pages
 * dropped, so that the device itself is read. */
int target_open_for_verify(const char *path, int *ret_fd, Diag *d);
