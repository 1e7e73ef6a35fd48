/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "extents.h"
#include "util.h"

typedef enum TargetKind {
        TARGET_FILE,    /* a regular file (new or replaced): written beside it, linked into place */
        TARGET_BLOCK,   /* a block device */
        TARGET_NULL,    /* /dev/null: the image is read and verified, nothing is written */
} TargetKind;

/* What a DEST names, found before anything is opened: to refuse the same
 * target given twice, and the paths that must never be written (see
 * target_identify). */
typedef struct TargetId {
        TargetKind kind;
        bool exists;
        dev_t dev;              /* a device: st_rdev; an existing file: st_dev */
        ino_t ino;              /* an existing file */
        char *path;             /* a file: where it is written, symbolic links and ".." resolved */
} TargetId;

/* Follows DEST through symbolic links (a link to a file gets the file it
 * points to written; a link to a device, /dev/disk/by-id/..., is the
 * device) and refuses, with a message: a missing path on the /dev
 * filesystem or any devtmpfs (a mistyped or unplugged disk would become a
 * regular file in RAM), a regular file there, a character device other
 * than /dev/null, a FIFO, a socket, a directory. */
int target_identify(const char *path, TargetId *ret, Diag *d);
/* Do two DESTs name the same device or file? */
bool target_id_equal(const TargetId *a, const TargetId *b);
void target_id_done(TargetId *id);

typedef struct TargetOptions {
        bool removable_only;    /* --removable-device: refuse a non-removable disk */
        bool tune;              /* set the I/O scheduler and writeback ratio for the copy */
        /* --skip-identical: an existing regular file is written in place
         * (sized to the image when it is finished) rather than into a new
         * file, so that what it already holds can be compared and left
         * alone. A copy that fails then leaves it partly updated. */
        bool in_place;
} TargetOptions;

/* Where an image is written. A regular file is written into an unnamed
 * file (O_TMPFILE) in its directory, sparse, exactly image_size bytes, and
 * linked into place only by target_finish: a failed or killed copy leaves
 * the old file untouched and nothing beside it. Where the filesystem has no
 * unnamed files, a named temporary PATH.bmapscan-XXXXXX is used, locked
 * (flock) while it lives, and the temporaries of earlier copies that were
 * killed are removed by the next copy to the same path.
 * A block device is opened O_EXCL and refused, before any byte is written,
 * when it or one of its partitions is mounted or held (swap, device mapper,
 * md), when it is read-only or smaller than the image. */
typedef struct Target Target;

int target_open(const char *path, uint64_t image_size, const TargetOptions *o, Target **ret, Diag *d);
/* Writes past the page cache (O_DIRECT) where the device or the file's
 * filesystem takes it, through the page cache where not and for the
 * pieces that are not aligned to its logical block (see direct-io.h). */
int target_write(Target *t, const void *buf, size_t n, uint64_t offset, Diag *d);
/* Reads n bytes at offset of what the target holds now, past the page
 * cache where it can: O_DIRECT (on its own descriptor) when buf, n and
 * offset are 512-byte aligned and the device or filesystem takes it, else
 * through the cache, that range of it dropped first (clean pages only: flush
 * with target_sync before to read what was written). Safe in another thread
 * than target_write's. */
int target_read(Target *t, void *buf, size_t n, uint64_t offset, Diag *d);
/* fdatasync: what was written is on the device. */
int target_sync(Target *t, Diag *d);
/* Does the target hold something to compare with: a block device, or a
 * file written in place (TargetOptions.in_place)? */
bool target_can_compare(const Target *t);
/* Flushes the data to the device (fsync), renames a file into place, and
 * restores any tuning. Success is reported only after this. */
int target_finish(Target *t, Diag *d);
/* What completing a target involves besides target_finish, once every byte
 * of the image is written to it. */
typedef struct TargetCompletion {
        /* The image's size was not known when the target was opened (a
         * stream with no bmap and no length): a file target is sized to
         * what was read. */
        bool size_at_end;
        /* --discard: the bytes the image does not map (bmap_unmapped_bytes),
         * discarded on a block device so that no stale data stays; NULL:
         * none. */
        const Extents *discard;
} TargetCompletion;

/* The last step of a copy to t, total bytes long: sizes a file whose size
 * came only at the end, discards what c asks for, then target_finish
 * (flush, rename or link into place, tuning restored), whatever the discard
 * did: the image itself is complete either way, and a failed discard is
 * then reported with -EOPNOTSUPP or its error, the image written. */
int target_complete(Target *t, const TargetCompletion *c, uint64_t total, Diag *d);
/* Undoes what can be undone: removes a temporary file, restores tuning.
 * Safe after target_finish too (it then does nothing). */
void target_free(Target *t);

TargetKind target_kind(const Target *t);
const char *target_path(const Target *t);
/* The stale temporaries of killed copies target_open removed, as a list of
 * names ("a, b"), or NULL when there were none. */
const char *target_stale_removed(const Target *t);
/* For messages after a failure: what state the target is in. */
const char *target_state_after_failure(const Target *t);
int target_fd(const Target *t);
/* How many of the bytes written went past the page cache (O_DIRECT). */
uint64_t target_direct_bytes(const Target *t);

/* Discards (BLKDISCARD) byte ranges of a block device target: the whole
 * device sectors inside each range (a sector shared with bytes outside it
 * is kept). Does nothing for other targets. -EOPNOTSUPP when the device
 * cannot discard. */
int target_discard(Target *t, const Extents *bytes, Diag *d);

/* Reads the target back: an fd open for reading with its cached pages
 * dropped, so that the device itself is read. */
int target_open_for_verify(const char *path, int *ret_fd, Diag *d);
