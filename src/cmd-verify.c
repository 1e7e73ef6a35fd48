/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdio.h>

#include "bmap-sig.h"
#include "bmap.h"
#include "cli-bmap.h"
#include "cli-progress.h"
#include "cli-simg.h"
#include "cli.h"
#include "commands.h"
#include "input-http.h"
#include "progress.h"
#include "stream.h"

/* A resumed download of the bmap or the archive's head: verify draws no
 * progress, so the line goes out as it is. */
static void http_notice(const char *line) {
        log_warning("%s", line);
}

/* A failure before DEST is read, said already: with --progress=json, the
 * JSON says it too. Returns status. */
static int failed(CliProgress *json, const char *image, const char *bmap, const char *dest, int status) {
        cli_progress_fail(json, image, bmap, &dest, 1, UINT64_MAX);
        return status;
}

int cmd_verify(const CliCommand *self, int argc, char **argv) {
        CliParser p = { .command = self, .argc = argc, .argv = argv };
        const char *bmap_arg = NULL, *member = NULL;
        HttpOptions http = { .cancel = &cli_interrupted, .notice = http_notice };
        _cleanup_http_context_ HttpContext *http_ctx = NULL;
        _cleanup_free_ char *bmap_path = NULL;
        _cleanup_(bmap_done) Bmap bmap = {};
        SigOptions sopts = {};
        _cleanup_(cli_progress_close) CliProgress json = {};
        Diag d = {};
        int c, r;

        while ((c = cli_next_option(&p)) > 0) {
                r = CLI_CONTINUE;
                switch (c) {
                case CLI_OPT_BMAP:
                        bmap_arg = p.arg;
                        break;
                case CLI_OPT_MEMBER:
                        member = p.arg;
                        break;
                case CLI_OPT_PROGRESS:
                case CLI_OPT_PROGRESS_FD:
                case CLI_OPT_PROGRESS_FILE:
                        r = cli_progress_option(c, p.arg, &json);
                        break;
                default:
                        r = cli_source_option(c, p.arg, &sopts, &http);
                }
                if (r != CLI_CONTINUE)
                        return r;
        }
        if (c < 0)
                return p.status;
        if (argc - optind != 2)
                return usage_error(argc - optind < 2 ? "IMAGE and DEST are needed" : "only IMAGE and DEST are taken");
        const char *image = argv[optind], *dest = argv[optind + 1];
        /* From here on, with --progress=json, every outcome is in the JSON:
         * a failure before DEST is read too (start, then its end). */
        json.verify = true;
        r = cli_progress_open(&json);
        if (r != EXIT_OK)
                return r;
        if (bmap_sig_options_check(&sopts, &d) < 0)
                return failed(&json, image, bmap_arg, dest, usage_error("%s", d.msg));
        r = cli_http_setup(&http, &http_ctx);
        if (r != EXIT_OK)
                return failed(&json, image, bmap_arg, dest, r);

        /* While anything is fetched, SIGINT and SIGTERM only set a flag,
         * as in copy: a transfer notices it, in a stall too, and stops
         * with its message (removing a temporary GnuPG home on the way). */
        cli_catch_signals();
        /* With --member, the image is opened up to the member's header
         * (is it there at all?); without a bmap from outside, up to the
         * image member too, for the bmap inside the archive. */
        _cleanup_(fd_source_done) FdSource fsrc = { .fd = -1, .cancel = &cli_interrupted };
        _cleanup_(input_close) Input in = {};
        _cleanup_stream_ Stream *src = NULL;
        CliImage source = { .image = image, .member = member, .bmap = bmap_arg,
                            .need_stream = member != NULL, .sig = &sopts, .after = "" };
        r = cli_open_image(&source, http_ctx, &fsrc, &in, &src, &bmap, &bmap_path);
        /* Reading the target back writes nothing: a signal may end it. */
        cli_release_signals();
        if (r != EXIT_OK)
                return failed(&json, image, bmap_path ? bmap_path : bmap_arg, dest, r);
        if (cli_interrupted) {
                log_error("interrupted by %s; nothing was read back", cli_interrupted_name());
                return failed(&json, image, bmap_path ? bmap_path : bmap_arg, dest, EXIT_FAILED);
        }
        /* No bmap, and no error: an Android sparse image, whose RAW and
         * FILL chunks are then what DEST must hold (read as it streams). */
        char error[1024];
        if (!bmap_path) {
                /* JSON too, and the bad ranges off a stdout that carries it. */
                uint64_t checked;
                cli_progress_start(&json, image, NULL, &dest, 1, UINT64_MAX);
                r = cli_verify_simg(src, image, dest, cli_progress_on_stdout(&json) ? stderr : stdout, error,
                                    sizeof(error), &checked);
                cli_progress_end(&json, &(CliProgressEnd) { .target = dest, .ok = r == EXIT_OK, .bytes = checked,
                                                            .checked = checked,
                                                            .seconds = progress_now() - json.start,
                                                            .error = r == EXIT_OK ? NULL : error });
                return r;
        }
        uint64_t checked;
        cli_progress_start(&json, image, bmap_path, &dest, 1, cli_mapped_bytes(&bmap));
        r = cli_verify_target(&bmap, bmap_path, dest, &json, error, sizeof(error), &checked);
        cli_progress_end(&json, &(CliProgressEnd) { .target = dest, .ok = r == EXIT_OK, .bytes = checked,
                                                    .checked = checked,
                                                    .seconds = progress_now() - json.start,
                                                    .error = r == EXIT_OK ? NULL : error });
        return r;
}
