/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "bmap.h"
#include "cli-bmap.h"
#include "cli.h"
#include "commands.h"
#include "filemap.h"
#include "hash.h"
#include "image.h"

int cmd_create(const CliCommand *self, int argc, char **argv) {
        CliParser p = { .command = self, .argc = argc, .argv = argv };
        const char *output = NULL, *image;
        bool checksums = true;
        _cleanup_close_ int fd = -1;
        _cleanup_(image_done) Image img = {};
        _cleanup_extents_ Extents blocks = EXTENTS_INIT, data = EXTENTS_INIT;
        _cleanup_free_ uint8_t(*digests)[CHECKSUM_MAX_SIZE] = NULL;
        _cleanup_free_ char *text = NULL;
        FilemapMethod method;
        uint64_t block_size, blocks_count;
        struct stat st;
        size_t len;
        Diag d = {};
        int c, r;

        while ((c = cli_next_option(&p)) > 0)
                switch (c) {
                case CLI_OPT_OUTPUT:
                        output = p.arg;
                        break;
                case CLI_OPT_NO_CHECKSUM:
                        checksums = false;
                        break;
                }
        if (c < 0)
                return p.status;
        r = cli_one_argument(argc, argv, "IMAGE", &image);
        if (r != CLI_CONTINUE)
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
        if (r != CLI_CONTINUE)
                return r;

        r = filemap_block_size(fd, &block_size);
        if (r < 0) {
                log_error("cannot get the block size of '%s': %s", image, strerror(-r));
                return EXIT_FAILED;
        }
        r = image_open_fd(fd, image, (uint64_t) st.st_size, &img, &d);
        if (r < 0) {
                log_error("%s", d.msg);
                return EXIT_FAILED;
        }
        if (img.qcow2) {
                /* Its allocated clusters are what a raw file's non-holes are:
                 * zero-flagged and unallocated ones (with nothing below them
                 * in a backing file) read as zeros. */
                r = image_qcow2_data(&img, &data, &d);
                if (r >= 0)
                        r = extents_to_blocks(&blocks, &data, block_size);
                if (r < 0) {
                        log_error("%s", d.msg[0] ? d.msg : strerror(-r));
                        return EXIT_FAILED;
                }
                method = FILEMAP_FIEMAP; /* any: only the log line below tells */
        } else {
                r = filemap_mapped_blocks(fd, img.size, block_size, &blocks, &method, &d);
                if (r < 0) {
                        log_error("%s: %s", image, d.msg);
                        return EXIT_FAILED;
                }
        }
        blocks_count = div_round_up(img.size, block_size);
        if (img.size == 0) {
                log_error("'%s' is empty: there is nothing to map (a qcow2 image of 0 bytes)", image);
                return EXIT_FAILED;
        }
        if (method == FILEMAP_NONE)
                log_warning("the filesystem holding '%s' cannot report holes: every block is mapped", image);
        log_verbose("%s: %llu of %llu blocks of %llu bytes hold data, in %zu ranges (found with %s)", image,
                    (unsigned long long) extents_total(&blocks), (unsigned long long) blocks_count,
                    (unsigned long long) block_size, blocks.n,
                    img.qcow2 ? "the qcow2 tables"
                    : method == FILEMAP_FIEMAP ? "FIEMAP"
                    : method == FILEMAP_SEEK ? "SEEK_DATA"
                                             : "nothing");

        if (checksums && blocks.n > 0) {
                digests = calloc(blocks.n, sizeof(*digests));
                if (!digests) {
                        log_error("out of memory");
                        return EXIT_FAILED;
                }
                r = hash_image_ranges(&img, image, block_size, &blocks, CHECKSUM_SHA256, 0, digests, &d);
                if (r < 0) {
                        log_error("%s", d.msg);
                        return EXIT_FAILED;
                }
        }
        r = bmap_render(img.size, block_size, &blocks, checksums ? (const uint8_t(*)[32]) digests : NULL,
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
                format_human_size(img.size, human, sizeof(human));
                log_warning("all %s of '%s' are mapped: it has no holes (were they expanded into zeros?)", human,
                            image);
        }
        return EXIT_OK;
}
