/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Scanning and punching for scan, sparse and info. Each says what went
 * wrong and returns an exit status. */

#include <stdbool.h>
#include <stdint.h>

struct Bmap;
struct Extents;
struct Scan;
struct ScanOptions;
struct Stream;

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

/* The blocks of block_size a scan maps (ret_blocks, may be NULL) and the
 * bmap ranges they are cut into (ret_ranges): what 'scan' writes, and what
 * 'copy --scan' flashes, range for range. */
int cli_scan_ranges(const struct Scan *s, uint64_t block_size, struct Extents *ret_blocks,
                    struct Extents *ret_ranges);

/* copy --scan: scans the image at path, which src (opened, not read yet)
 * streams, as 'scan' does and gives the bmap 'scan' would write for it,
 * without its checksums (the copy computes them as it streams). A source
 * that is not the raw image itself (compressed, in an archive) is refused:
 * the probes need random access. Says what the scan found: one line, or
 * 'scan''s whole report with -v. */
int cli_scan_bmap(const char *path, const struct Stream *src, const struct ScanOptions *o, uint64_t block_size,
                  struct Bmap *ret);
/* Once the copy has hashed every range: puts those SHA-256 digests into
 * the bmap (one per range) and, when path is not NULL, writes the bmap
 * there as 'scan -o' writes it, byte for byte. */
int cli_scan_bmap_complete(struct Bmap *b, const uint8_t (*sha256)[32], const char *path);
