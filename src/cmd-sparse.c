/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdio.h>

#include "cli-scan.h"
#include "cli.h"
#include "commands.h"
#include "scan.h"

int cmd_sparse(const CliCommand *self, int argc, char **argv) {
        CliParser p = { .command = self, .argc = argc, .argv = argv };
        const char *image;
        bool dry_run = false;
        uint64_t block_size = 4096, size;
        _cleanup_close_ int fd = -1;
        _cleanup_(scan_done) Scan s = {};
        _cleanup_(scan_options_done) ScanOptions so = {};
        _cleanup_extents_ Extents blocks = EXTENTS_INIT;
        int c, r;

        while ((c = cli_next_option(&p)) > 0) {
                r = CLI_CONTINUE;
                switch (c) {
                case CLI_OPT_DRY_RUN:
                        dry_run = true;
                        break;
                case CLI_OPT_MAP:
                        r = cli_map_option(p.arg, &so);
                        break;
                case CLI_OPT_BLOCK_SIZE:
                        r = cli_parse_block_size(p.arg, &block_size);
                        break;
                }
                if (r != CLI_CONTINUE)
                        return r;
        }
        if (c < 0)
                return p.status;
        r = cli_one_argument(argc, argv, "IMAGE", &image);
        if (r != CLI_CONTINUE)
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
