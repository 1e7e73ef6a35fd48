/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdio.h>

#include "cli.h"
#include "scan.h"

static void help(void) {
        printf("Usage: bmapscan sparse [--dry-run] [--block-size N] [--map REGION]... IMAGE\n"
               "\n"
               "Punch holes in IMAGE over every block its filesystems do not use (as 'scan'\n"
               "decides), keeping its size: it then takes only the disk space its data needs.\n"
               "Mapped bytes are never changed. Refused for an image attached to a loop device,\n"
               "a file that is not writable (no write bit in its mode, even for root), one\n"
               "another process has open, or one on a filesystem that cannot punch holes.\n"
               "\n"
               "  -n, --dry-run        only report what would be freed\n"
               "      --block-size N   granularity, a power of two from 512 (default 4096)\n"
               CLI_MAP_HELP
               "  -q, --quiet          print only errors\n"
               "  -h, --help           show this help\n");
}

int cmd_sparse(int argc, char **argv) {
        static const struct option options[] = {
                CLI_COMMON_OPTIONS,
                { "dry-run", no_argument, NULL, 'n' },
                { "block-size", required_argument, NULL, 'B' },
                { "map", required_argument, NULL, 'M' },
                {},
        };
        const char *image;
        bool dry_run = false;
        uint64_t block_size = 4096, size;
        _cleanup_close_ int fd = -1;
        _cleanup_(scan_done) Scan s = {};
        _cleanup_(scan_options_done) ScanOptions so = {};
        _cleanup_extents_ Extents blocks = EXTENTS_INIT;
        int c, r;

        while ((c = getopt_long(argc, argv, CLI_COMMON_SHORT "n", options, NULL)) >= 0) {
                switch (c) {
                case 'n':
                        dry_run = true;
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
        if (r >= 0)
                return r;

        r = cli_open_and_scan(image, !dry_run, &so, &fd, &size, &s);
        if (r != EXIT_OK)
                return r;
        if (extents_to_blocks(&blocks, &s.mapped, block_size) < 0) {
                log_error("out of memory");
                return EXIT_FAILED;
        }
        return cli_punch(fd, image, size, block_size, &blocks, dry_run);
}
