/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdio.h>
#include <string.h>

#include "bmap.h"
#include "cli-bmap.h"
#include "cli-scan.h"
#include "cli-simg.h"
#include "cli.h"
#include "commands.h"
#include "hash.h"
#include "image.h"
#include "report.h"
#include "scan.h"

int cmd_scan(const CliCommand *self, int argc, char **argv) {
        CliParser p = { .command = self, .argc = argc, .argv = argv };
        const char *output = NULL, *image;
        bool checksums = true, sparse = false, json = false;
        uint64_t block_size = 4096;
        _cleanup_(image_done) Image img = {};
        CliSimgOptions simg = {};
        _cleanup_(scan_done) Scan s = {};
        _cleanup_(scan_options_done) ScanOptions so = {};
        _cleanup_extents_ Extents blocks = EXTENTS_INIT, ranges = EXTENTS_INIT;
        _cleanup_free_ uint8_t(*digests)[CHECKSUM_MAX_SIZE] = NULL;
        _cleanup_free_ char *text = NULL;
        size_t len;
        Diag d = {};
        int c, r;

        while ((c = cli_next_option(&p)) > 0) {
                r = CLI_CONTINUE;
                switch (c) {
                case CLI_OPT_OUTPUT:
                        output = p.arg;
                        break;
                case CLI_OPT_SPARSE:
                        sparse = true;
                        break;
                case CLI_OPT_NO_CHECKSUM:
                        checksums = false;
                        break;
                case CLI_OPT_JSON:
                        json = true;
                        break;
                case CLI_OPT_MAP:
                        r = cli_map_option(p.arg, &so);
                        break;
                case CLI_OPT_BLOCK_SIZE:
                        r = cli_parse_block_size(p.arg, &block_size);
                        break;
                case CLI_OPT_SIMG:
                        simg.path = p.arg;
                        break;
                case CLI_OPT_SIMG_BLOCK_SIZE:
                        r = cli_parse_simg_block_size(p.arg, &simg.block_size);
                        break;
                case CLI_OPT_SIMG_CRC:
                        simg.crc = true;
                        break;
                }
                if (r != CLI_CONTINUE)
                        return r;
        }
        if (c < 0)
                return p.status;
        if (!simg.path && (simg.block_size || simg.crc))
                return usage_error("--simg-block-size and --simg-crc shape the sparse image --simg FILE writes");
        r = cli_one_argument(argc, argv, "IMAGE", &image);
        if (r == CLI_CONTINUE)
                r = cli_refuse_output_is_input(output, image);
        if (r == CLI_CONTINUE)
                r = cli_refuse_output_is_input(simg.path, image);
        if (r == CLI_CONTINUE && output && simg.path && strcmp(output, simg.path) == 0)
                r = usage_error("-o and --simg name the same file '%s': give each its own", output);
        if (r != CLI_CONTINUE)
                return r;

        r = cli_open_image_and_scan(image, sparse, &so, &img, &s);
        if (r != EXIT_OK)
                return r;
        r = cli_scan_ranges(&s, block_size, &blocks, &ranges);
        if (r != EXIT_OK)
                return r;

        if (json)
                report_json(stdout, image, &s, block_size, &ranges);
        if (cli_verbosity >= 0)
                report_text(stderr, image, &s, block_size, &ranges);

        /* The sparse image takes the bmap's place on stdout: with --simg,
         * the bmap is written only to -o. */
        if ((!json && !simg.path) || output) {
                if (checksums && ranges.n > 0) {
                        digests = calloc(ranges.n, sizeof(*digests));
                        if (!digests) {
                                log_error("out of memory");
                                return EXIT_FAILED;
                        }
                        r = hash_image_ranges(&img, image, block_size, &ranges, CHECKSUM_SHA256, 0, digests, &d);
                        if (r < 0) {
                                log_error("%s", d.msg);
                                return EXIT_FAILED;
                        }
                }
                r = bmap_render(img.size, block_size, &ranges, checksums ? (const uint8_t(*)[32]) digests : NULL, &text,
                                &len);
                if (r < 0) {
                        log_error("cannot render the bmap of '%s': %s", image, strerror(-r));
                        return EXIT_FAILED;
                }
                r = cli_write_bmap(output, text, len);
                if (r != EXIT_OK)
                        return r;
        }
        if (simg.path) {
                r = cli_write_simg(&img, image, &s.mapped, &simg);
                if (r != EXIT_OK)
                        return r;
        }
        if (sparse)
                return cli_punch(img.fd, image, img.size, block_size, &blocks, false);
        return EXIT_OK;
}
