/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Scanning and punching for scan, sparse and info (cli-scan.h). */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "bmap.h"
#include "cli-bmap.h"
#include "cli-scan.h"
#include "cli.h"
#include "image.h"
#include "report.h"
#include "scan.h"
#include "sparse.h"
#include "stream.h"

/* Mapped runs are cut into bmap ranges of at most this many bytes. A
 * range's checksum is one sequential digest, so an image whose data is one
 * long run would otherwise be hashed (here, and again when it is flashed)
 * by a single core. Adjacent ranges are valid in every bmap version; the
 * size is fixed so that the bmap never depends on the machine. 'create'
 * keeps bmaptool's ranges exactly. */
#define SCAN_MAX_RANGE (UINT64_C(64) << 20)

int cli_open_and_scan(const char *path, bool writable, const ScanOptions *o, int *ret_fd, uint64_t *ret_size,
                      Scan *ret) {
        _cleanup_(image_done) Image img = {};
        int r = cli_open_image_and_scan(path, writable, o, &img, ret);
        if (r != EXIT_OK)
                return r;
        if (img.qcow2) {
                /* Its callers read the image through the descriptor. */
                scan_done(ret);
                log_error("%s: is a qcow2 image: %s works on raw images: convert it with 'qemu-img convert -O raw' "
                          "first",
                          path, cli_command ? cli_command : "bmapscan");
                return EXIT_FAILED;
        }
        *ret_fd = img.fd;
        *ret_size = img.size;
        img.own_fd = false;
        return EXIT_OK;
}

int cli_open_image_and_scan(const char *path, bool writable, const ScanOptions *o, Image *ret_img, Scan *ret) {
        _cleanup_close_ int fd = -1;
        _cleanup_(image_done) Image img = {};
        struct stat st;
        Diag d = {};
        int r;

        r = image_open(path, writable ? O_RDWR : O_RDONLY, &fd, &st);
        if (r < 0) {
                if (writable && (r == -EACCES || r == -EROFS || r == -EPERM))
                        log_error("cannot open image '%s' for writing: %s: punching holes needs a writable file",
                                  path, strerror(-r));
                else
                        log_error("cannot open image '%s': %s", path, strerror(-r));
                return EXIT_FAILED;
        }
        uint64_t size = (uint64_t) st.st_size;
        if (S_ISBLK(st.st_mode)) {
                off_t end = lseek(fd, 0, SEEK_END);
                size = end > 0 ? (uint64_t) end : 0;
        } else if (S_ISDIR(st.st_mode)) {
                log_error("'%s' is not an image file or a block device (a directory)", path);
                return EXIT_FAILED;
        } else if (!S_ISREG(st.st_mode)) {
                /* Probes, checksums and punching read where they need to. */
                log_error("%s: not a regular file or block device (%s): %s needs to seek; save it to a file first",
                          path, file_kind(st.st_mode), cli_command ? cli_command : "bmapscan");
                return EXIT_FAILED;
        }
        if (size == 0 && S_ISREG(st.st_mode) && file_reads_past_size(fd) > 0) {
                log_error("%s: has no fixed size (a /proc or /sys file?): %s needs an image of a fixed size; save "
                          "it to a file first",
                          path, cli_command ? cli_command : "bmapscan");
                return EXIT_FAILED;
        }
        if (size == 0) {
                log_error("'%s' is empty: there is nothing to map", path);
                return EXIT_FAILED;
        }
        r = image_open_fd(fd, path, size, &img, &d);
        if (r < 0) {
                log_error("%s", d.msg);
                return EXIT_FAILED;
        }
        if (img.qcow2 && writable) {
                log_error("%s: is a qcow2 image: punching holes works on raw images: convert it with 'qemu-img "
                          "convert -O raw' first, or discard its free clusters inside a VM", path);
                return EXIT_FAILED;
        }
        if (img.size == 0) {
                log_error("'%s' is empty: there is nothing to map (a qcow2 image of 0 bytes)", path);
                return EXIT_FAILED;
        }
        if (writable) {
                /* Refused before the scan, not after it. A lease probe may
                 * be broken by an opener: SIGIO must not end us. */
                (void) signal(SIGIO, SIG_IGN);
                r = sparse_check_image(fd, path, true, &d);
                if (r < 0) {
                        log_error("%s", d.msg);
                        return EXIT_FAILED;
                }
        }
        r = scan_disk_image(&img, path, o, ret, &d);
        if (r == -EDOM) {
                log_error("%s", d.msg);
                return EXIT_USAGE;
        }
        if (r < 0) {
                log_error("%s", d.msg[0] ? d.msg : strerror(-r));
                return EXIT_FAILED;
        }
        img.own_fd = true;
        fd = -1; /* now img's */
        *ret_img = img;
        img = (Image) {};
        return EXIT_OK;
}

int cli_punch(int fd, const char *path, uint64_t size, uint64_t block_size, const Extents *blocks, bool dry_run) {
        uint64_t before = 0, after = 0, would, unmapped;
        char a[32], b[32], c[32];
        Diag d = {};
        int r;

        _cleanup_free_ char *name = display_escape(path);
        bool leased = false;

        r = sparse_check_image(fd, path, !dry_run, &d);
        if (r < 0) {
                log_error("%s", d.msg);
                return EXIT_FAILED;
        }
        (void) file_disk_usage(fd, &before);
        if (!dry_run) {
                (void) signal(SIGIO, SIG_IGN);
                r = sparse_lease_take(fd, path, &d);
                if (r < 0) {
                        log_error("%s", d.msg);
                        return EXIT_FAILED;
                }
                if (r == 0)
                        log_verbose("%s", d.msg);
                leased = r > 0;
        }
        r = sparse_punch(fd, path, size, block_size, blocks, dry_run, leased, &would, &unmapped, &d);
        /* Released at once: an opener waits as long as it is held. */
        if (leased)
                sparse_lease_release(fd);
        if (r < 0) {
                log_error("%s", d.msg);
                return EXIT_FAILED;
        }
        format_human_size(unmapped, c, sizeof(c));
        if (dry_run) {
                /* What was asked for, as a bmap is for scan: printed even with -q. */
                format_human_size(would, a, sizeof(a));
                format_human_size(before, b, sizeof(b));
                printf("%s: would free %s (%llu bytes) of %s unmapped; %s on disk now\n", name ? name : "?", a,
                       (unsigned long long) would, c, b);
                return EXIT_OK;
        }
        if (fsync(fd) < 0) {
                log_error("%s: fsync failed: %s", path, strerror(errno));
                return EXIT_FAILED;
        }
        (void) file_disk_usage(fd, &after);
        format_human_size(before > after ? before - after : 0, a, sizeof(a));
        format_human_size(after, b, sizeof(b));
        if (cli_verbosity >= 0)
                printf("%s: freed %s (%llu bytes); %s on disk now, %s unmapped\n", name ? name : "?", a,
                       (unsigned long long) (before > after ? before - after : 0), b, c);
        return EXIT_OK;
}

int cli_scan_ranges(const Scan *s, uint64_t block_size, Extents *ret_blocks, Extents *ret_ranges) {
        _cleanup_extents_ Extents blocks = EXTENTS_INIT;
        int r;

        r = extents_to_blocks(&blocks, &s->mapped, block_size);
        if (r >= 0)
                r = extents_split(ret_ranges, &blocks, div_round_up(SCAN_MAX_RANGE, block_size));
        if (r < 0) {
                log_error("out of memory");
                return EXIT_FAILED;
        }
        if (ret_blocks) {
                extents_done(ret_blocks);
                *ret_blocks = blocks;
                blocks = EXTENTS_INIT;
        }
        return EXIT_OK;
}

int cli_scan_bmap(const char *path, const Stream *src, const ScanOptions *o, uint64_t block_size, Bmap *ret) {
        _cleanup_(image_done) Image img = {};
        _cleanup_(scan_done) Scan s = {};
        _cleanup_extents_ Extents ranges = EXTENTS_INIT;
        uint64_t size;
        char a[32], b[32];
        size_t parts = 0, read = 0;
        int r;

        if (stream_is_encoded(src)) {
                log_error("%s: %s: --scan needs random access to the raw image: decompress it first (or flash it "
                          "with its bmap); nothing was written",
                          path, stream_describe(src));
                return EXIT_FAILED;
        }
        /* A qcow2 is scanned as its virtual disk, as the stream reads it. */
        r = cli_open_image_and_scan(path, false, o, &img, &s);
        if (r != EXIT_OK)
                return r;
        size = img.size;
        r = cli_scan_ranges(&s, block_size, NULL, &ranges);
        if (r != EXIT_OK)
                return r;
        r = bmap_from_ranges(size, block_size, &ranges, ret);
        if (r < 0) {
                log_error("cannot make the bmap of '%s': %s", path, strerror(-r));
                return EXIT_FAILED;
        }
        if (cli_verbosity > 0) {
                report_text(stderr, path, &s, block_size, &ranges);
                return EXIT_OK;
        }
        for (size_t i = 0; i < s.layout.n_parts; i++)
                if (!s.layout.parts[i].container) {
                        parts++;
                        read += s.parts[i].probed;
                }
        uint64_t mapped = ret->mapped_count * block_size > size ? size : ret->mapped_count * block_size;
        format_human_size(mapped, a, sizeof(a));
        format_human_size(size, b, sizeof(b));
        log_info("%s: scanned: %zu partition%s, %zu filesystem%s read; flashing %s of %s (%.1f%%) in %zu ranges",
                 path, parts, parts == 1 ? "" : "s", read, read == 1 ? "" : "s", a, b,
                 (double) mapped * 100.0 / (double) size, ranges.n);
        return EXIT_OK;
}

int cli_scan_bmap_complete(Bmap *b, const uint8_t (*sha256)[32], const char *path) {
        _cleanup_extents_ Extents list = EXTENTS_INIT;
        _cleanup_free_ char *text = NULL;
        size_t len;
        int r;

        for (size_t i = 0; i < b->n_ranges; i++) {
                memcpy(b->ranges[i].checksum, sha256[i], 32);
                b->ranges[i].has_checksum = true;
        }
        b->checksum_type = CHECKSUM_SHA256;
        if (!path)
                return EXIT_OK;
        r = bmap_range_list(b, &list);
        if (r >= 0)
                r = bmap_render(b->image_size, b->block_size, &list, sha256, &text, &len);
        if (r < 0) {
                log_error("cannot render the bmap for '%s': %s", path, strerror(-r));
                return EXIT_FAILED;
        }
        return cli_write_bmap(path, text, len);
}
