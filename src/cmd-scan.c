/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "bmap.h"
#include "cli.h"
#include "hash.h"
#include "report.h"
#include "scan.h"
#include "sparse.h"

static void help(void) {
        printf("Usage: bmapscan scan [-o FILE] [--sparse] [--no-checksum] [--block-size N] [--json]\n"
               "                     [--map REGION]... IMAGE\n"
               "\n"
               "Write a bmap of IMAGE that maps what its filesystems use, read from their own\n"
               "allocation metadata, plus everything that is not a filesystem (partition\n"
               "tables, gaps, unknown or encrypted partitions). Holes in the file do not\n"
               "matter: an expanded image gets the same bmap as a sparse one.\n"
               "\n"
               "  -o, --output FILE    write the bmap to FILE (atomically) instead of stdout\n"
               "      --sparse         also punch holes over the unmapped blocks (as 'sparse')\n"
               "      --no-checksum    leave out the range checksums (reads only metadata)\n"
               "      --block-size N   bmap block size, a power of two from 512 (default 4096)\n"
               "      --json           print the layout report as JSON on stdout instead of the\n"
               "                       bmap (with -o, both)\n"
               CLI_MAP_HELP
               "  -q, --quiet          no report on stderr\n"
               "  -h, --help           show this help\n");
}

/* Mapped runs are cut into bmap ranges of at most this many bytes. A
 * range's checksum is one sequential digest, so an image whose data is one
 * long run would otherwise be hashed (here, and again when it is flashed)
 * by a single core. Adjacent ranges are valid in every bmap version; the
 * size is fixed so that the bmap never depends on the machine. 'create'
 * keeps bmaptool's ranges exactly. */
#define SCAN_MAX_RANGE (UINT64_C(64) << 20)

int cli_map_option(const char *arg, ScanOptions *o) {
        int r = scan_options_add_map(o, arg);
        if (r == -ENOMEM) {
                log_error("out of memory");
                return EXIT_FAILED;
        }
        if (r < 0)
                return usage_error("--map '%s' is not START:LENGTH (sizes in bytes, K, M or G), part:N or label:NAME",
                                   arg);
        return -1;
}

int cli_open_and_scan(const char *path, bool writable, const ScanOptions *o, int *ret_fd, uint64_t *ret_size,
                      Scan *ret) {
        _cleanup_close_ int fd = -1;
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
        r = scan_image(fd, path, size, o, ret, &d);
        if (r == -EDOM) {
                log_error("%s", d.msg);
                return EXIT_USAGE;
        }
        if (r < 0) {
                log_error("%s", d.msg[0] ? d.msg : strerror(-r));
                return EXIT_FAILED;
        }
        *ret_fd = TAKE_FD(fd);
        *ret_size = size;
        return EXIT_OK;
}

int cli_parse_block_size(const char *s, uint64_t *ret) {
        uint64_t v;
        if (parse_size(s, &v) < 0 || v < 512 || v > (UINT64_C(1) << 30) || (v & (v - 1)) != 0)
                return usage_error("--block-size '%s' is not a power of two from 512 to 1 GiB", s);
        *ret = v;
        return -1;
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

int cmd_scan(int argc, char **argv) {
        static const struct option options[] = {
                CLI_COMMON_OPTIONS,
                { "output", required_argument, NULL, 'o' },
                { "sparse", no_argument, NULL, 'S' },
                { "no-checksum", no_argument, NULL, 'C' },
                { "block-size", required_argument, NULL, 'B' },
                { "json", no_argument, NULL, 'j' },
                { "map", required_argument, NULL, 'M' },
                {},
        };
        const char *output = NULL, *image;
        bool checksums = true, sparse = false, json = false;
        uint64_t block_size = 4096, size;
        _cleanup_close_ int fd = -1;
        _cleanup_(scan_done) Scan s = {};
        _cleanup_(scan_options_done) ScanOptions so = {};
        _cleanup_extents_ Extents blocks = EXTENTS_INIT, ranges = EXTENTS_INIT;
        _cleanup_free_ uint8_t(*digests)[CHECKSUM_MAX_SIZE] = NULL;
        _cleanup_free_ char *text = NULL;
        size_t len;
        Diag d = {};
        int c, r;

        while ((c = getopt_long(argc, argv, CLI_COMMON_SHORT "o:", options, NULL)) >= 0) {
                switch (c) {
                case 'o':
                        output = optarg;
                        break;
                case 'S':
                        sparse = true;
                        break;
                case 'C':
                        checksums = false;
                        break;
                case 'j':
                        json = true;
                        break;
                case 'M':
                        r = cli_map_option(optarg, &so);
                        if (r >= 0)
                                return r;
                        break;
                case 'B':
                        r = cli_parse_block_size(optarg, &block_size);
                        if (r >= 0)
                                return r;
                        break;
                default:
                        r = cli_common_option(c, argv, help);
                        if (r >= 0)
                                return r;
                }
        }
        r = cli_one_argument(argc, argv, "IMAGE", &image);
        if (r < 0)
                r = cli_refuse_output_is_input(output, image);
        if (r >= 0)
                return r;

        r = cli_open_and_scan(image, sparse, &so, &fd, &size, &s);
        if (r != EXIT_OK)
                return r;
        r = extents_to_blocks(&blocks, &s.mapped, block_size);
        if (r >= 0)
                r = extents_split(&ranges, &blocks, div_round_up(SCAN_MAX_RANGE, block_size));
        if (r < 0) {
                log_error("out of memory");
                return EXIT_FAILED;
        }

        if (json)
                report_json(stdout, image, &s, block_size, &ranges);
        if (cli_verbosity >= 0)
                report_text(stderr, image, &s, block_size, &ranges);

        if (!json || output) {
                if (checksums && ranges.n > 0) {
                        digests = calloc(ranges.n, sizeof(*digests));
                        if (!digests) {
                                log_error("out of memory");
                                return EXIT_FAILED;
                        }
                        r = hash_block_ranges(fd, image, size, block_size, &ranges, CHECKSUM_SHA256, 0, digests, &d);
                        if (r < 0) {
                                log_error("%s", d.msg);
                                return EXIT_FAILED;
                        }
                }
                r = bmap_render(size, block_size, &ranges, checksums ? (const uint8_t(*)[32]) digests : NULL, &text,
                                &len);
                if (r < 0) {
                        log_error("cannot render the bmap of '%s': %s", image, strerror(-r));
                        return EXIT_FAILED;
                }
                r = cli_write_bmap(output, text, len);
                if (r != EXIT_OK)
                        return r;
        }
        if (sparse)
                return cli_punch(fd, image, size, block_size, &blocks, false);
        return EXIT_OK;
}
