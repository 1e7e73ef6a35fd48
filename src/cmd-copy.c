/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "bmap-sig.h"
#include "bmap.h"
#include "cli-bmap.h"
#include "cli-progress.h"
#include "cli-scan.h"
#include "cli.h"
#include "commands.h"
#include "copy.h"
#include "input-http.h"
#include "location.h"
#include "progress.h"
#include "scan.h"
#include "simg.h"
#include "stream.h"
#include "target.h"

/* --psplash-pipe: as bmaptool, a path that is not a FIFO is warned about
 * and ignored. */
static const char *psplash_pipe_or_null(const char *path) {
        struct stat st;

        if (!path)
                return NULL;
        if (stat(path, &st) < 0) {
                log_warning("%s: no such pipe: no psplash progress", path);
                return NULL;
        }
        if (!S_ISFIFO(st.st_mode)) {
                log_warning("%s: not a FIFO: no psplash progress", path);
                return NULL;
        }
        return path;
}

/* A resumed download, said between progress redraws. */
static void http_notice(const char *line) {
        if (cli_verbosity >= 0 && isatty(STDERR_FILENO))
                fputs("\r\033[K", stderr);
        log_warning("%s", line);
}

/* Every DEST, before anything is read or written: one that must not be
 * written (a missing /dev path, a FIFO...) and the same one twice are
 * refused here. Returns CLI_CONTINUE when all are fine, else an exit
 * status. */
static int check_dests(char **dests, size_t n) {
        TargetId ids[COPY_MAX_TARGETS] = {};
        int status = CLI_CONTINUE;
        size_t i;
        Diag d = {};

        for (i = 0; i < n && status == CLI_CONTINUE; i++) {
                if (target_identify(dests[i], &ids[i], &d) < 0) {
                        log_error("%s", d.msg);
                        status = EXIT_FAILED;
                        break;
                }
                for (size_t j = 0; j < i && status == CLI_CONTINUE; j++)
                        if (target_id_equal(&ids[j], &ids[i]))
                                status = usage_error("%s and %s are the same %s: give each DEST once; nothing was "
                                                     "written",
                                                     dests[j], dests[i],
                                                     ids[i].kind == TARGET_BLOCK ? "device" : "file");
        }
        for (size_t j = 0; j < n; j++)
                target_id_done(&ids[j]);
        return status;
}

/* The end line of a /dev/null target: what was checked, since nothing was
 * written. */
static void log_null_ok(const char *path, uint64_t total, const Bmap *b, bool verify, bool scanned) {
        char size[32];

        format_human_size(total, size, sizeof(size));
        if (scanned)
                log_info("%s: OK, read %s (scanned: no checksums to verify it against), nothing written", path, size);
        else if (b && verify && b->checksum_type != CHECKSUM_NONE)
                log_info("%s: OK, verified %s against the bmap, nothing written", path, size);
        else
                log_info("%s: OK, read %s (not verified: %s), nothing written", path, size,
                         !b ? "no bmap" : !verify ? "--no-verify" : "the bmap has no checksums");
}

/* --scan's command line, before anything is opened: what the scan cannot
 * take is refused here, in one line. Returns CLI_CONTINUE when all is
 * fine, else an exit status. */
static int scan_arguments_check(const char *image, const char *bmap_arg, bool nobmap, const char *member,
                                const SigOptions *sopts, const char *scan_bmap, char **dests, size_t n) {
        struct stat st, o, t;

        if (bmap_arg || nobmap)
                return usage_error("--scan excludes --bmap and --nobmap: it makes the bmap itself");
        if (member)
                return usage_error("--scan excludes --member: a member of an archive cannot be scanned where it "
                                   "lies; extract it first");
        if (sopts->sig_location || sopts->keyring || sopts->fingerprint)
                return usage_error("--scan excludes --bmap-sig, --keyring and --fingerprint: they check a bmap, and "
                                   "--scan makes one");
        if (strcmp(image, "-") == 0)
                return usage_error("--scan needs random access to the raw image: standard input cannot be scanned; "
                                   "save it to a file first, or name its bmap with --bmap");
        if (location_is_url(image))
                return usage_error("--scan needs random access to the raw image: %s is a URL; download it first, "
                                   "or flash it with its bmap",
                                   image);
        /* A FIFO would be read (and a writer waited for) before the scan
         * could refuse it. */
        if (stat(image, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
                log_error("%s: not a regular file or block device (%s): --scan needs random access to the raw "
                          "image; save it to a file first; nothing was written",
                          image, file_kind(st.st_mode));
                return EXIT_FAILED;
        }
        if (!scan_bmap)
                return CLI_CONTINUE;
        int r = cli_refuse_output_is_input(scan_bmap, image);
        if (r != CLI_CONTINUE)
                return r;
        for (size_t i = 0; i < n && stat(scan_bmap, &o) == 0; i++)
                if (stat(dests[i], &t) == 0 && o.st_dev == t.st_dev && o.st_ino == t.st_ino)
                        return usage_error("--scan-bmap %s is DEST %s: write the bmap to another file", scan_bmap,
                                           dests[i]);
        return CLI_CONTINUE;
}

/* What the copy's events become: a line on stderr for a retry (and -v's
 * notes), JSON lines with --progress=json. */
typedef struct CopyUi {
        Progress *progress;
        CliProgress *json;
        uint64_t total;
} CopyUi;

static void copy_event(void *userdata, const CopyEvent *e) {
        CopyUi *ui = userdata;

        if (e->kind == COPY_EVENT_RETRY) {
                progress_clear(ui->progress);
                log_warning("%s", e->message);
        } else if (e->kind == COPY_EVENT_NOTE && cli_verbosity > 0) {
                progress_clear(ui->progress);
                log_verbose("%s", e->message);
        }
        cli_progress_event(ui->json, e, ui->total);
}

static void copy_progress(void *userdata, uint64_t done, uint64_t total) {
        CopyUi *ui = userdata;
        progress_update(ui->progress, done, total);
}

/* "OK, 1.1 GiB checked, 23.0 MiB written in 41.3 s, 2 ranges written again" */
static void log_target_ok(const char *path, const CopyTargetResult *res, bool skip_identical) {
        char size[32], checked[32], retried[64] = "";

        format_human_size(res->written, size, sizeof(size));
        format_human_size(res->written + res->skipped, checked, sizeof(checked));
        if (res->retried_ranges)
                snprintf(retried, sizeof(retried), ", %zu range%s written again", res->retried_ranges,
                         res->retried_ranges == 1 ? "" : "s");
        if (skip_identical)
                log_info("%s: OK, %s checked, %s written in %.1f s%s", path, checked, size, res->seconds, retried);
        else
                log_info("%s: OK, %s written in %.1f s%s", path, size, res->seconds, retried);
}

/* A failure before the copy, said already: to out:, where the JSON end
 * lines are written. */
#define FAIL(st)                \
        do {                    \
                status = (st);  \
                goto out;       \
        } while (0)

int cmd_copy(const CliCommand *self, int argc, char **argv) {
        CliParser p = { .command = self, .argc = argc, .argv = argv };
        const char *bmap_arg = NULL, *image, *psplash = NULL, *member = NULL;
        bool nobmap = false, verify = true, verify_after = false, discard = false, skip_identical = false;
        uint64_t retries = 0;
        _cleanup_(cli_progress_close) CliProgress json = {};
        /* The copy started (its JSON "start" written): else, at out:, a
         * JSON reader is told why it never did. */
        bool json_started = false;
        const char *const *dests = NULL;
        /* Why each target failed after the copy (--verify-after), for the
         * JSON end lines. */
        static char verify_error[COPY_MAX_TARGETS][512];
        /* --scan: the bmap is made here, by a scan, its checksums by the copy. */
        bool scan = false, scan_hash = false, block_size_given = false;
        const char *scan_bmap = NULL, *bmap_name = NULL;
        uint64_t block_size = 4096;
        _cleanup_(scan_options_done) ScanOptions so = {};
        _cleanup_free_ uint8_t(*digests)[CHECKSUM_MAX_SIZE] = NULL;
        _cleanup_extents_ Extents unmapped = EXTENTS_INIT;
        TargetOptions topts = { .tune = true };
        SigOptions sopts = {};
        _cleanup_free_ char *bmap_path = NULL;
        _cleanup_(bmap_done) Bmap bmap = {};
        _cleanup_http_context_ HttpContext *http_ctx = NULL;
        _cleanup_(fd_source_done) FdSource fsrc = { .fd = -1, .cancel = &cli_interrupted };
        _cleanup_(input_close) Input in = {};
        _cleanup_stream_ Stream *src = NULL;
        HttpOptions http = { .cancel = &cli_interrupted, .notice = http_notice };
        Target *targets[COPY_MAX_TARGETS] = {};
        CopyTargetResult results[COPY_MAX_TARGETS] = {};
        size_t n_targets;
        uint64_t image_size = UINT64_MAX, total = 0;
        Progress progress;
        CopyStats stats = {};
        struct timespec t0, t1;
        Diag d = {};
        int c, r, r_copy = 0, status = EXIT_OK;

        while ((c = cli_next_option(&p)) > 0) {
                r = CLI_CONTINUE;
                switch (c) {
                case CLI_OPT_BMAP:
                        bmap_arg = p.arg;
                        break;
                case CLI_OPT_NOBMAP:
                        nobmap = true;
                        break;
                case CLI_OPT_NO_VERIFY:
                        verify = false;
                        break;
                case CLI_OPT_VERIFY_AFTER:
                        verify_after = true;
                        break;
                case CLI_OPT_REMOVABLE_DEVICE:
                        topts.removable_only = true;
                        break;
                case CLI_OPT_DISCARD:
                        discard = true;
                        break;
                case CLI_OPT_PSPLASH_PIPE:
                        psplash = p.arg;
                        break;
                case CLI_OPT_MEMBER:
                        member = p.arg;
                        break;
                case CLI_OPT_SCAN:
                        scan = true;
                        break;
                case CLI_OPT_SCAN_BMAP:
                        scan_bmap = p.arg;
                        break;
                case CLI_OPT_MAP:
                        r = cli_map_option(p.arg, &so);
                        break;
                case CLI_OPT_BLOCK_SIZE:
                        r = cli_parse_block_size(p.arg, &block_size);
                        block_size_given = true;
                        break;
                case CLI_OPT_SKIP_IDENTICAL:
                        skip_identical = true;
                        topts.in_place = true;
                        break;
                case CLI_OPT_RETRIES:
                        if (parse_u64(p.arg, strlen(p.arg), &retries) < 0 || retries > 1000)
                                r = usage_error("--retries takes a number from 0 to 1000, not '%s'", p.arg);
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
        if (argc - optind < 2)
                return usage_error(optind >= argc ? "no IMAGE given" : "no DEST given");
        n_targets = (size_t) (argc - optind - 1);
        if (n_targets > ELEMENTSOF(targets))
                return usage_error("at most %zu DESTs are taken", ELEMENTSOF(targets));
        image = argv[optind];
        dests = (const char *const *) argv + optind + 1;
        /* From here on, with --progress=json, every outcome is in the JSON:
         * a failure before the copy too (at out:). */
        r = cli_progress_open(&json);
        if (r != EXIT_OK)
                return r;
        if (bmap_arg && nobmap)
                FAIL(usage_error("--bmap and --nobmap exclude each other"));
        if (nobmap && (sopts.sig_location || sopts.keyring || sopts.fingerprint))
                FAIL(usage_error("--nobmap excludes --bmap-sig, --keyring and --fingerprint: they check the bmap"));
        if (bmap_sig_options_check(&sopts, &d) < 0)
                FAIL(usage_error("%s", d.msg));
        r = scan ? scan_arguments_check(image, bmap_arg, nobmap, member, &sopts, scan_bmap, argv + optind + 1,
                                        n_targets)
                 : scan_bmap || so.n_maps || block_size_given
                         ? usage_error("--scan-bmap, --map and --block-size go with --scan: they say how it scans")
                         : CLI_CONTINUE;
        if (r != CLI_CONTINUE)
                FAIL(r);
        /* The scan's ranges have no checksums to check as they stream: the
         * copy hashes them only for what uses the digests, the bmap kept
         * and the read back. */
        scan_hash = scan && (verify_after || scan_bmap);
        r = check_dests(argv + optind + 1, n_targets);
        if (r != CLI_CONTINUE)
                FAIL(r);
        r = cli_http_setup(&http, &http_ctx);
        if (r != EXIT_OK)
                FAIL(r);

        /* From here on, SIGINT and SIGTERM only set a flag: the bmap check,
         * the downloads and the copy notice it and stop cleanly (removing a
         * temporary GnuPG home or target file on the way out). */
        cli_catch_signals();
        /* A psplash reader that goes away must not kill the copy. */
        signal(SIGPIPE, SIG_IGN);

        /* The bmap from --bmap, beside the image, or inside its archive
         * (then read as the stream opens); --scan makes its own. */
        CliImage source = { .image = image, .member = member, .bmap = bmap_arg, .nobmap = nobmap || scan,
                            .need_stream = true, .sig = &sopts, .after = "; nothing was written" };
        r = cli_open_image(&source, http_ctx, &fsrc, &in, &src, &bmap, &bmap_path);
        if (r != EXIT_OK)
                FAIL(r);
        if (!nobmap && !scan && !bmap_path) {
                log_info("%s: no bmap: the Android sparse image's chunks are the map (RAW and FILL chunks are "
                         "written, DONT_CARE chunks left as they are on DEST)",
                         image);
                nobmap = true;
        }
        if (!nobmap && !scan) {
                image_size = bmap.image_size;
                if (verify && bmap.checksum_type == CHECKSUM_NONE)
                        log_warning("%s: the bmap has no range checksums: the data cannot be verified", bmap_path);
                /* Every range written is checked by its checksum: an
                 * Android sparse image's unmapped RAW data may then be
                 * seeked over (its CRC32 chunks go unchecked); else it is
                 * read, so that its CRC checks what is written. */
                bool all_checked = verify && bmap.checksum_type != CHECKSUM_NONE;
                for (size_t i = 0; all_checked && i < bmap.n_ranges; i++)
                        all_checked = bmap.ranges[i].has_checksum;
                if (all_checked)
                        stream_simg_allow_seek(src);
                bmap_name = bmap_path;
        }
        if (scan) {
                r = cli_scan_bmap(image, src, &so, block_size, &bmap);
                if (r != EXIT_OK)
                        FAIL(r);
                image_size = bmap.image_size;
                bmap_name = scan_bmap ? scan_bmap : "the checksums of this copy";
        }
        uint64_t hint = stream_size_hint(src);
        if (scan && hint != image_size) {
                log_error("%s: the image changed while it was scanned (%llu bytes, now %llu): it must not be written "
                          "while it is copied; nothing was written",
                          image, (unsigned long long) image_size, (unsigned long long) hint);
                FAIL(EXIT_FAILED);
        }
        /* A sparse image's last block may be padded past the image's end:
         * the bmap of the image is still its bmap. */
        if (!nobmap && hint != UINT64_MAX && hint != image_size &&
            !simg_pads(stream_simg_info(src), hint, image_size)) {
                log_error("%s: the image (%s) is %llu bytes, but the bmap %s says %llu: they do not belong together; "
                          "nothing was written",
                          image, stream_describe(src), (unsigned long long) hint, bmap_path,
                          (unsigned long long) image_size);
                FAIL(EXIT_FAILED);
        }
        if (nobmap)
                image_size = hint;
        /* Raw bytes of unknown length, with no bmap to say how many: a
         * download cut short by a closed connection looks complete. */
        if (nobmap && hint == UINT64_MAX && !stream_is_encoded(src) && location_is_url(image))
                log_warning("%s: the server gives no length and the image is not compressed: a download cut "
                            "short cannot be told from a complete one; use a bmap or a compressed image",
                            image);
        log_verbose("%s: %s image", image, stream_describe(src));

        for (size_t i = 0; i < n_targets; i++) {
                const char *dest = argv[optind + 1 + i];
                struct stat a, b;
                if (strcmp(image, "-") != 0 && stat(image, &a) == 0 && stat(dest, &b) == 0 && a.st_dev == b.st_dev &&
                    a.st_ino == b.st_ino) {
                        log_error("%s: DEST is the image itself; nothing was written", dest);
                        status = EXIT_FAILED;
                        goto out;
                }
                r = target_open(dest, image_size == UINT64_MAX ? 0 : image_size, &topts, &targets[i], &d);
                if (r < 0) {
                        log_error("%s", d.msg);
                        status = EXIT_FAILED;
                        goto out;
                }
                if (target_stale_removed(targets[i]))
                        log_warning("%s: removed the temporary files of an earlier copy that was killed: %s", dest,
                                    target_stale_removed(targets[i]));
        }


        /* Progress on a terminal, or with -v; never with -q. */
        progress_init(&progress, cli_verbosity > 0 || (cli_verbosity == 0 && isatty(STDERR_FILENO)),
                      psplash_pipe_or_null(psplash));
        TargetCompletion completion = {
                .size_at_end = image_size == UINT64_MAX,
                .discard = discard ? &unmapped : NULL,
        };
        r = discard && !nobmap ? bmap_unmapped_bytes(&bmap, &unmapped) : 0;
        if (r >= 0 && scan_hash && !(digests = calloc(bmap.n_ranges + 1, sizeof(*digests))))
                r = -ENOMEM;
        if (r < 0) {
                log_error("out of memory");
                status = EXIT_FAILED;
                goto out;
        }
        CopyUi ui = { .progress = &progress, .json = &json,
                      .total = nobmap ? image_size : cli_mapped_bytes(&bmap) };
        CopyOptions copts = {
                .skip_identical = skip_identical,
                .retries = (unsigned) retries,
                /* Reading back while the chunks are still in memory is what
                 * lets a range that reads back wrong be written again. */
                .check_written = retries > 0 && verify_after,
                .event = copy_event,
                .userdata = &ui,
                .source_name = image,
                .verify = verify,
                .cancel = &cli_interrupted,
                .progress = copy_progress,
                .stats = &stats,
                .complete = &completion,
                .record = scan_hash ? digests : NULL,
        };
        cli_progress_start(&json, image, bmap_name, dests, n_targets, ui.total);
        json_started = true;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        r = r_copy = copy_image(src, nobmap ? NULL : &bmap, image_size, targets, n_targets, &copts, results, &total,
                                &d);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        log_verbose("pipeline: %.2f s; CPU seconds: reading and decoding %.2f, hashing %.2f, writing %.2f",
                    (double) (t1.tv_sec - t0.tv_sec) + (double) (t1.tv_nsec - t0.tv_nsec) / 1e9, stats.read_cpu,
                    stats.hash_cpu, stats.write_cpu);
        for (size_t i = 0; i < n_targets; i++)
                if (target_kind(targets[i]) != TARGET_NULL)
                        log_verbose("%s: %llu of %llu bytes written past the page cache (O_DIRECT)",
                                    target_path(targets[i]), (unsigned long long) target_direct_bytes(targets[i]),
                                    (unsigned long long) results[i].written);
        if (r < 0) {
                progress_clear(&progress);
                if (r == -EINTR)
                        log_error("interrupted by %s%s%s", cli_interrupted_name(),
                                  n_targets == 1 ? ": " : "", n_targets == 1 ? target_state_after_failure(targets[0]) : "");
                else
                        log_error("%s%s%s", d.msg, n_targets == 1 ? "; " : "",
                                  n_targets == 1 ? target_state_after_failure(targets[0]) : "");
                /* Targets finish in parallel: an interrupt can find some
                 * complete and others not. */
                for (size_t i = 0; n_targets > 1 && i < n_targets; i++)
                        log_error("%s: %s", target_path(targets[i]), target_state_after_failure(targets[i]));
                status = EXIT_FAILED;
                goto out;
        }
        for (size_t i = 0; i < n_targets; i++)
                if (results[i].error < 0 || !results[i].finished) {
                        if (n_targets == 1)
                                log_error("%s; %s", results[i].error < 0 ? results[i].message : "not finished",
                                          target_state_after_failure(targets[i]));
                        status = EXIT_FAILED;
                }
        if (n_targets > 1) {
                /* One line per target: which are good, which to flash again. */
                progress_clear(&progress);
                for (size_t i = 0; i < n_targets; i++) {
                        char size[32];
                        format_human_size(results[i].written, size, sizeof(size));
                        const char *path = target_path(targets[i]), *why = results[i].message;
                        size_t n = strlen(path);
                        /* The message names the target already, most of the time. */
                        if (strncmp(why, path, n) == 0 && strncmp(why + n, ": ", 2) == 0)
                                why += n + 2;
                        if (results[i].error < 0 || !results[i].finished)
                                log_error("%s: FAILED: %s; %s", path, results[i].error < 0 ? why : "not finished",
                                          target_state_after_failure(targets[i]));
                        else if (target_kind(targets[i]) == TARGET_NULL)
                                log_null_ok(path, total, nobmap ? NULL : &bmap, verify, scan);
                        else
                                log_target_ok(target_path(targets[i]), &results[i], skip_identical);
                }
        } else if (status == EXIT_OK && target_kind(targets[0]) != TARGET_NULL &&
                   (skip_identical || results[0].retried_ranges > 0)) {
                progress_clear(&progress);
                log_target_ok(target_path(targets[0]), &results[0], skip_identical);
        }
        if (status == EXIT_OK && n_targets == 1 && target_kind(targets[0]) == TARGET_NULL) {
                progress_finish(&progress, total, "read");
                log_null_ok(target_path(targets[0]), total, nobmap ? NULL : &bmap, verify, scan);
        } else if (status == EXIT_OK)
                progress_finish(&progress, total, "copied");
        else
                progress_clear(&progress);
        if (cli_interrupted) {
                /* Too late to stop anything: every target that succeeded
                 * was already written, verified and flushed. */
                log_error("interrupted by %s after the copy ended: %s", cli_interrupted_name(),
                          status == EXIT_OK ? "the image was written and flushed in full"
                                            : "see the lines above for each target");
                status = EXIT_FAILED;
        }
        /* Only now, with every range hashed and every target written. */
        if (status == EXIT_OK && scan_hash) {
                r = cli_scan_bmap_complete(&bmap, (const uint8_t(*)[32]) digests, scan_bmap);
                if (r != EXIT_OK)
                        status = r;
                else if (scan_bmap)
                        log_info("%s: the bmap of this copy, with its checksums: give it to the next copy with --bmap",
                                 scan_bmap);
        }
        if (status == EXIT_OK && verify_after && !nobmap)
                for (size_t i = 0; i < n_targets; i++) {
                        if (target_kind(targets[i]) == TARGET_NULL) {
                                log_info("%s: not read back (--verify-after): nothing was written there",
                                         target_path(targets[i]));
                                continue;
                        }
                        r = cli_verify_target(&bmap, bmap_name, target_path(targets[i]), &json, verify_error[i],
                                              sizeof(verify_error[i]), NULL);
                        if (r != EXIT_OK)
                                status = r;
                }
out:
        /* Failed before the copy: what is known, and each DEST's end. */
        if (!json_started)
                cli_progress_fail(&json, image, bmap_name ? bmap_name : bmap_path ? bmap_path : bmap_arg, dests,
                                  n_targets, bmap_name ? cli_mapped_bytes(&bmap) : UINT64_MAX);
        /* Each target's outcome, last, once it is known in full. */
        for (size_t i = 0; json_started && i < n_targets; i++) {
                bool ok = r_copy >= 0 && results[i].error == 0 && results[i].finished && !verify_error[i][0];
                const char *error = ok                           ? NULL
                                    : r_copy == -EINTR          ? "interrupted"
                                    : r_copy < 0                ? d.msg
                                    : results[i].error < 0      ? results[i].message
                                    : verify_error[i][0]        ? verify_error[i]
                                                                : "not finished";
                cli_progress_end(&json, &(CliProgressEnd) { .target = dests[i], .ok = ok,
                                                            .bytes = results[i].written + results[i].skipped,
                                                            .written = results[i].written,
                                                            .skipped = results[i].skipped,
                                                            .retried_ranges = results[i].retried_ranges,
                                                            .seconds = results[i].seconds, .error = error });
        }
        for (size_t i = 0; i < n_targets; i++)
                target_free(targets[i]);
        cli_release_signals();
        return status;
}
