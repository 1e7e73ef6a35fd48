/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "bmap.h"
#include "cli.h"
#include "filemap.h"
#include "hash.h"

static void help(void) {
        printf("Usage: bmapscan create [-o FILE] [--no-checksum] IMAGE\n"
               "\n"
               "Write a bmap of IMAGE from its holes, exactly as 'bmaptool create' does:\n"
               "every block the host filesystem stores (FIEMAP, preallocated extents\n"
               "included) is mapped, every hole is not. Use it for images whose sparseness\n"
               "you trust; holes that were expanded into zeros are mapped.\n"
               "\n"
               "  -o, --output FILE  write the bmap to FILE (atomically) instead of stdout\n"
               "      --no-checksum  leave out the range checksums\n"
               "  -q, --quiet        print only errors\n"
               "  -v, --verbose      say how the holes were found\n"
               "  -h, --help         show this help\n");
}

int cli_write_bmap(const char *path, const char *text, size_t len) {
        Diag d = {};
        int r;

        if (!path) {
                r = write_full(STDOUT_FILENO, text, len);
                if (r < 0) {
                        log_error("cannot write the bmap to standard output: %s", strerror(-r));
                        return EXIT_FAILED;
                }
                return EXIT_OK;
        }
        r = write_file_atomic(path, text, len, &d);
        if (r < 0) {
                log_error("%s", d.msg);
                return EXIT_FAILED;
        }
        return EXIT_OK;
}

int cmd_create(int argc, char **argv) {
        static const struct option options[] = {
                CLI_COMMON_OPTIONS,
                { "output", required_argument, NULL, 'o' },
                { "no-checksum", no_argument, NULL, 'C' },
                {},
        };
        const char *output = NULL, *image;
        bool checksums = true;
        _cleanup_close_ int fd = -1;
        _cleanup_extents_ Extents blocks = EXTENTS_INIT;
        _cleanup_free_ uint8_t(*digests)[CHECKSUM_MAX_SIZE] = NULL;
        _cleanup_free_ char *text = NULL;
        FilemapMethod method;
        uint64_t block_size, blocks_count;
        struct stat st;
        size_t len;
        Diag d = {};
        int c, r;

        while ((c = getopt_long(argc, argv, CLI_COMMON_SHORT "o:", options, NULL)) >= 0) {
                switch (c) {
                case 'o':
                        output = optarg;
                        break;
                case 'C':
                        checksums = false;
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

        r = image_open(image, O_RDONLY, &fd, &st);
        if (r < 0) {
                log_error("cannot open image '%s': %s", image, strerror(-r));
                return EXIT_FAILED;
        }
        if (!S_ISREG(st.st_mode)) {
                log_error("'%s' is not a regular file (%s): create maps the holes of an image file%s", image,
                          file_kind(st.st_mode), S_ISDIR(st.st_mode) ? "" : "; save it to a file first");
                return EXIT_FAILED;
        }
        if (st.st_size == 0 && file_reads_past_size(fd) > 0) {
                log_error("%s: has no fixed size (a /proc or /sys file?): create needs an image of a fixed size; "
                          "save it to a file first",
                          image);
                return EXIT_FAILED;
        }
        if (st.st_size == 0) {
                log_error("'%s' is empty: there is nothing to map", image);
                return EXIT_FAILED;
        }
        r = cli_refuse_output_is_input(output, image);
        if (r >= 0)
                return r;

        r = filemap_block_size(fd, &block_size);
        if (r < 0) {
                log_error("cannot get the block size of '%s': %s", image, strerror(-r));
                return EXIT_FAILED;
        }
        r = filemap_mapped_blocks(fd, (uint64_t) st.st_size, block_size, &blocks, &method, &d);
        if (r < 0) {
                log_error("%s: %s", image, d.msg);
                return EXIT_FAILED;
        }
        blocks_count = div_round_up((uint64_t) st.st_size, block_size);
        if (method == FILEMAP_NONE)
                log_warning("the filesystem holding '%s' cannot report holes: every block is mapped", image);
        log_verbose("%s: %llu of %llu blocks of %llu bytes hold data, in %zu ranges (found with %s)", image,
                    (unsigned long long) extents_total(&blocks), (unsigned long long) blocks_count,
                    (unsigned long long) block_size, blocks.n,
                    method == FILEMAP_FIEMAP ? "FIEMAP" : method == FILEMAP_SEEK ? "SEEK_DATA" : "nothing");

        if (checksums && blocks.n > 0) {
                digests = calloc(blocks.n, sizeof(*digests));
                if (!digests) {
                        log_error("out of memory");
                        return EXIT_FAILED;
                }
                r = hash_block_ranges(fd, image, (uint64_t) st.st_size, block_size, &blocks, CHECKSUM_SHA256, 0,
                                      digests, &d);
                if (r < 0) {
                        log_error("%s", d.msg);
                        return EXIT_FAILED;
                }
        }
        r = bmap_render((uint64_t) st.st_size, block_size, &blocks, checksums ? (const uint8_t(*)[32]) digests : NULL,
                        &text, &len);
        if (r < 0) {
                log_error("cannot render the bmap of '%s': %s", image, strerror(-r));
                return EXIT_FAILED;
        }
        r = cli_write_bmap(output, text, len);
        if (r != EXIT_OK)
                return r;

        if (extents_total(&blocks) == blocks_count) {
                char human[32];
                format_human_size((uint64_t) st.st_size, human, sizeof(human));
                log_warning("all %s of '%s' are mapped: it has no holes (were they expanded into zeros?)", human,
                            image);
        }
        return EXIT_OK;
}
