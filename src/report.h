/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdio.h>

#include "scan.h"

/* The layout report of a scan, for people (one line per partition) and for
 * scripts (one JSON object). block_size and the block count give the mapped
 * totals as a bmap would hold them. Command layer only. */
void report_text(FILE *f, const char *path, const Scan *s, uint64_t block_size, const Extents *blocks);
void report_json(FILE *f, const char *path, const Scan *s, uint64_t block_size, const Extents *blocks);
/* The same object's members without its closing brace, for a caller that
 * adds members of its own (info's "qcow2"). */
void report_json_fields(FILE *f, const char *path, const Scan *s, uint64_t block_size, const Extents *blocks);
/* A one-line picture of the disk, about width characters. */
void report_picture(FILE *f, const Scan *s, unsigned width);
