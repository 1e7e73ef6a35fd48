/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Scanning and punching for scan, sparse and info (cli-scan.h). */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli-scan.h"
#include "cli.h"
#include "image.h"
#include "scan.h"
#include "sparse.h"

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
