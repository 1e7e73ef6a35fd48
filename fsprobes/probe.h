/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "extents.h"
#include "reader.h"
#include "util.h"

/* What a probe found in one partition. */
typedef struct ProbeResult {
        /* Byte extents, relative to the partition start and inside it, that
         * the filesystem uses. Everything else in the partition is free:
         * free blocks, and the space past the end of the filesystem. */
        Extents used;
        /* One line saying how it decided, for the report: "block bitmap",
         * "FAT12, FAT #0", "needs journal recovery: fully mapped". The
         * filesystem's name is added by the caller. */
        char how[256];
        /* Bytes the filesystem spans from the partition start (its size),
         * and the part of them it uses, for the report; 0 when unknown. */
        uint64_t fs_size;
} ProbeResult;

void probe_result_done(ProbeResult *res);

/* probe_whole: marks the whole partition used, saying why. Returns 0: a
 * probe that decides "map it all" has succeeded. */
int probe_whole(const Reader *r, ProbeResult *res, const char *fmt, ...) _printf_(3, 4);
/* probe_fail: says why the filesystem could not be read and returns err
 * (negative); the caller then maps the whole partition. */
int probe_fail(ProbeResult *res, int err, const char *fmt, ...) _printf_(3, 4);

typedef struct FsProbe {
        const char *name;
        /* The libblkid TYPE values this probe claims, NULL-terminated. */
        const char *const *types;
        /* Fills res->used (and how, fs_size) from the partition r, whose
         * libblkid type is fstype. On failure returns a negative errno with
         * res->how saying what was wrong; the partition is then mapped whole.
         * Every read goes through r; every on-disk value is checked before
         * it is used as an offset or a count. */
        int (*collect)(const Reader *r, const char *fstype, ProbeResult *res);
} FsProbe;

/* The probe for a libblkid TYPE, or NULL: the partition is mapped whole. */
const FsProbe *fsprobe_find(const char *blkid_type);

/* The probes, one per file. */
extern const FsProbe fsprobe_btrfs;
extern const FsProbe fsprobe_exfat;
extern const FsProbe fsprobe_ext;
extern const FsProbe fsprobe_f2fs;
extern const FsProbe fsprobe_fat;
extern const FsProbe fsprobe_ntfs;
extern const FsProbe fsprobe_rofs;
extern const FsProbe fsprobe_swap;
extern const FsProbe fsprobe_xfs;
