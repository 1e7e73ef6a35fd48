/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Scanning and punching for scan, sparse and info. Each says what went
 * wrong and returns an exit status. */

#include <stdbool.h>
#include <stdint.h>

struct Extents;
struct Scan;
struct ScanOptions;

/* Opens an image (read-only, or for writing when it will be punched) and
 * scans it. */
int cli_open_and_scan(const char *path, bool writable, const struct ScanOptions *o, int *ret_fd, uint64_t *ret_size,
                      struct Scan *ret);
/* The same, keeping what it opened: a raw image or a qcow2 (refused when
 * writable: holes are punched in raw files only), which the caller frees
 * with image_done (it owns the descriptor). The entry point for commands
 * that read the image again after the scan (scan's checksums, copy --scan). */
struct Image;
int cli_open_image_and_scan(const char *path, bool writable, const struct ScanOptions *o, struct Image *ret_img,
                            struct Scan *ret);
/* Punches holes over what blocks does not map (or reports it, dry_run). */
int cli_punch(int fd, const char *path, uint64_t size, uint64_t block_size, const struct Extents *blocks,
              bool dry_run);
