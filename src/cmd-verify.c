/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "bmap-sig.h"
#include "bmap.h"
#include "cli.h"
#include "hash.h"
#include "input-http.h"
#include "stream.h"
#include "target.h"

static void help(void) {
        printf("Usage: bmapscan verify [--bmap FILE] [--bmap-sig FILE] [--keyring FILE]\n"
               "                       [--fingerprint FPR] [--no-sig-verify] [--ca-file FILE]\n"
               "                       [--http-timeout SECS] [--member NAME] IMAGE|URL|- DEST\n"
               "\n"
               "Read DEST back (for a block device, past its page cache) and check every range\n"
               "of the bmap against its checksum. The bmap is found as 'copy' finds it, also beside\n"
               "a URL; with - as IMAGE, --bmap is needed. Prints each bad range; exit status 1 if\n"
               "there is one. A signed bmap is verified first, as 'copy' does it.\n"
               "\n"
               "      --bmap FILE          the bmap to check against (a path or a URL)\n"
               "      --member NAME        DEST holds the member NAME of the tar or zip IMAGE: it must\n"
               "                           be there, and its bmap is looked for as 'copy' does\n"
               "      --bmap-sig FILE      the bmap's detached signature (default: BMAP.asc, BMAP.sig)\n"
               "      --keyring FILE       trust only the keys in FILE (exported keys, or a .kbx)\n"
               "      --fingerprint FPR    the bmap must be signed by the key with this fingerprint\n"
               "      --no-sig-verify      do not verify the bmap's signature\n"
               "      --ca-file FILE, --http-timeout SECS   as for 'copy'\n"
               "  -q, --quiet              print only errors\n"
               "  -h, --help               show this help\n");
}

static volatile sig_atomic_t interrupted;

static void on_signal(int sig) {
        interrupted = sig;
}

/* A resumed download of the bmap or the archive's head: verify draws no
 * progress, so the line goes out as it is. */
static void http_notice(const char *line) {
        log_warning("%s", line);
}

int cli_verify_target(const Bmap *b, const char *bmap_path, const char *dest) {
        _cleanup_extents_ Extents list = EXTENTS_INIT;
        _cleanup_free_ uint8_t(*got)[CHECKSUM_MAX_SIZE] = NULL;
        _cleanup_close_ int fd = -1;
        size_t bad = 0, unchecked = 0;
        Diag d = {};
        int r;

        if (b->checksum_type == CHECKSUM_NONE) {
                log_error("%s: the bmap has no range checksums: there is nothing to verify %s against", bmap_path,
                          dest);
                return EXIT_FAILED;
        }
        r = target_open_for_verify(dest, &fd, &d);
        if (r < 0) {
                log_error("%s", d.msg);
                return EXIT_FAILED;
        }
        r = bmap_range_list(b, &list);
        if (r < 0 || !(got = calloc(list.n + 1, sizeof(*got)))) {
                log_error("out of memory");
                return EXIT_FAILED;
        }
        r = hash_block_ranges(fd, dest, b->image_size, b->block_size, &list, b->checksum_type, 0, got, &d);
        if (r < 0) {
                log_error("%s", d.msg);
                return EXIT_FAILED;
        }
        size_t n = checksum_size(b->checksum_type);
        for (size_t i = 0; i < b->n_ranges; i++) {
                const BmapRange *x = &b->ranges[i];
                char want[2 * CHECKSUM_MAX_SIZE + 1], have[2 * CHECKSUM_MAX_SIZE + 1];
                if (!x->has_checksum) {
                        unchecked++;
                        continue;
                }
                if (memcmp(got[i], x->checksum, n) == 0)
                        continue;
                bad++;
                Extent bytes = bmap_range_bytes(b, i);
                hex_encode(x->checksum, n, want);
                hex_encode(got[i], n, have);
                printf("%s: bad range %llu-%llu (bytes %llu-%llu): expected %s %s, found %s\n", dest,
                       (unsigned long long) x->blocks.start, (unsigned long long) x->blocks.end - 1,
                       (unsigned long long) bytes.start, (unsigned long long) bytes.end - 1,
                       checksum_name(b->checksum_type), want, have);
        }
        if (bad) {
                log_error("%s: %zu of %zu ranges do not match %s: flash it again", dest, bad, b->n_ranges, bmap_path);
                return EXIT_FAILED;
        }
        log_info("%s: all %zu ranges match %s%s", dest, b->n_ranges - unchecked, bmap_path,
                 unchecked ? " (some ranges have no checksum)" : "");
        return EXIT_OK;
}

int cmd_verify(int argc, char **argv) {
        static const struct option options[] = {
                CLI_COMMON_OPTIONS,
                { "bmap", required_argument, NULL, 'b' },
                { "member", required_argument, NULL, 'm' },
                CLI_SOURCE_OPTIONS,
                {},
        };
        const char *bmap_arg = NULL, *member = NULL;
        HttpOptions http = { .cancel = &interrupted, .notice = http_notice };
        _cleanup_http_context_ HttpContext *http_ctx = NULL;
        _cleanup_free_ char *bmap_path = NULL;
        _cleanup_(bmap_done) Bmap bmap = {};
        SigOptions sopts = {};
        Diag d = {};
        int c, r;

        while ((c = getopt_long(argc, argv, CLI_COMMON_SHORT, options, NULL)) >= 0) {
                switch (c) {
                case 'b':
                        bmap_arg = optarg;
                        break;
                case 'm':
                        member = optarg;
                        break;
                default:
                        r = cli_source_option(c, optarg, &sopts, &http);
                        if (r == -2)
                                r = cli_common_option(c, argv, help);
                        if (r >= 0)
                                return r;
                }
        }
        if (argc - optind != 2)
                return usage_error(argc - optind < 2 ? "IMAGE and DEST are needed" : "only IMAGE and DEST are taken");
        if (bmap_sig_options_check(&sopts, &d) < 0)
                return usage_error("%s", d.msg);
        r = cli_http_setup(&http, &http_ctx);
        if (r >= 0)
                return r;

        /* While anything is fetched, SIGINT and SIGTERM only set a flag,
         * as in copy: a transfer notices it, in a stall too, and stops
         * with its message (removing a temporary GnuPG home on the way). */
        struct sigaction sa = { .sa_handler = on_signal };
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        r = cli_find_bmap(argv[optind], member, bmap_arg, http_ctx, &bmap_path);
        if (r == EXIT_OK)
                r = cli_load_bmap(bmap_path, &sopts, http_ctx, &bmap);
        if (r == EXIT_OK && member) {
                /* Only up to the member's header: is it there at all? */
                _cleanup_(fd_source_done) FdSource fsrc = { .fd = -1, .cancel = &interrupted };
                _cleanup_(input_close) Input in = {};
                _cleanup_stream_ Stream *src = NULL;
                StreamOptions so = { .member = member, .max_size = UINT64_MAX };
                r = cli_open_source(argv[optind], http_ctx, &fsrc, &in);
                if (r == EXIT_OK && stream_open(&in, &so, &src, &d) < 0) {
                        log_error("%s", d.msg);
                        r = EXIT_FAILED;
                }
        }
        /* Reading the target back writes nothing: a signal may end it. */
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        if (r != EXIT_OK)
                return r;
        if (interrupted) {
                log_error("interrupted by %s; nothing was read back", interrupted == SIGTERM ? "SIGTERM" : "SIGINT");
                return EXIT_FAILED;
        }
        return cli_verify_target(&bmap, bmap_path, argv[optind + 1]);
}
