/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "extents.h"
#include "layout.h"
#include "util.h"

/* What scan decided for one partition. */
typedef struct ScanPart {
        const Partition *part;
        const char *probe;      /* the probe's name, NULL when none claimed it */
        bool probed;            /* the probe succeeded: its free space is unmapped */
        uint64_t used;          /* bytes mapped inside the partition (within the image) */
        uint64_t fs_size;
        char how[320];          /* "ext4: block bitmap", "LVM2_member: fully mapped (not a filesystem)" */
} ScanPart;

typedef struct Scan {
        Layout layout;
        ScanPart *parts;        /* parallel to layout.parts */
        Extents mapped;         /* bytes of the image that must be copied */
        uint64_t outside;       /* bytes mapped outside every partition: tables, gaps, tail */
} Scan;

void scan_done(Scan *s);

/* Reads the layout of the image open as fd, asks each partition's probe
 * which bytes it uses, and returns the bytes to map: the whole image less
 * the free space of every filesystem that could be read. */
int scan_image(int fd, const char *path, uint64_t image_size, Scan *ret, Diag *d);
