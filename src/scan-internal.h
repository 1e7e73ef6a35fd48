/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* What scan.c shares with the containers it reads (scan-lvm.c). */

#include "reader.h"
#include "scan.h"

/* Appends a region mapped whole, for the report. 0 or -ENOMEM. */
int scan_add_region(Scan *s, uint64_t start, uint64_t end, const char *fmt, ...) _printf_(4, 5);

/* Reads partition i (an LVM2_member) as a PV: fills its ScanPart, appends
 * a ScanVolume per LV, and returns in ret_free the bytes of the partition
 * (relative to its start) that are free: unallocated extents, and the
 * free space of every linear LV whose filesystem a probe could read. A PV
 * that cannot be read frees nothing, with the reason in its how. */
struct Image;
int scan_lvm_pv(const struct Image *img, Scan *s, size_t i, const Reader *rd, Extents *ret_free);
