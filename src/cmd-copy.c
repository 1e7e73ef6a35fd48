/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "bmap.h"
#include "cli.h"
#include "copy.h"
#include "fetch.h"
#include "hash.h"
#include "input-http.h"
#include "progress.h"
#include "stream.h"
#include "target.h"

static void help(void) {
        printf("Usage: bmapscan copy [--bmap FILE | --nobmap] [--no-verify] [--verify-after]\n"
               "                     [--removable-device] [--ca-file FILE] [--http-timeout SECS]\n"
               "                     IMAGE|URL|- DEST [DEST...]\n"
               "\n"
               "Flash IMAGE (a file, or - for standard input; gzip, bzip2, xz, zstd, lz4, the same\n"
               "inside a tar, or zip, told from the content) to DEST: a block device or a file. Only\n"
               "the blocks the bmap maps are written, each range checked against its checksum as it\n"
               "streams. The bmap is IMAGE.bmap, or the name with one extension stripped at a time\n"
               "(a.img.xz: a.img.xz.bmap, a.img.bmap, a.bmap), unless --bmap names it.\n"
               "\n"
               "IMAGE (and FILE) may be an http:// or https:// URL, streamed; credentials go in it\n"
               "(https://USER:PASSWORD@host/...) or in ~/.netrc; the proxy variables are honoured.\n"
               "A broken or stalled download is resumed where the server takes byte ranges.\n"
               "\n"
               "A file DEST is written beside itself and renamed into place only after success,\n"
               "sparse, exactly the image's size. A device is refused, before anything is written,\n"
               "when it or a partition of it is mounted or in use, when it is read-only or smaller\n"
               "than the image.\n"
               "\n"
               "      --bmap FILE          the bmap to use\n"
               "      --nobmap             copy every byte of the image, with no bmap\n"
               "      --no-verify          do not check the range checksums\n"
               "      --verify-after       read every target back and check it ('verify')\n"
               "      --removable-device   refuse a DEST whose disk is not removable\n"
               "      --ca-file FILE       for https, trust the CA certificates in FILE (PEM) besides\n"
               "                           the system's\n"
               "      --http-timeout SECS  a transfer without data for SECS is resumed (or fails);\n"
               "                           default 30\n"
               "  -q, --quiet              no progress, only errors\n"
               "  -h, --help               show this help\n");
}

static volatile sig_atomic_t interrupted;

static void on_signal(int sig) {
        interrupted = sig;
}

int cli_find_bmap(const char *image, const char *given, char **ret) {
        char tried[4096];
        Diag d = {};
        int r;

        if (given) {
                *ret = strdup(given);
                return *ret ? EXIT_OK : EXIT_FAILED;
        }
        if (strcmp(image, "-") == 0) {
                log_error("the image comes from standard input: name its bmap with --bmap FILE (or use --nobmap)");
                return EXIT_USAGE;
        }
        r = bmap_find(image, ret, tried, sizeof(tried), &d);
        if (r == -ENOENT) {
                log_error("%s: no bmap found (looked for %s): give --bmap FILE, or --nobmap to copy every byte",
                          image, tried);
                return EXIT_FAILED;
        }
        if (r < 0 && d.msg[0]) {
                log_error("%s", d.msg);
                return EXIT_FAILED;
        }
        if (r < 0) {
                log_error("%s: looking for its bmap: %s", image, strerror(-r));
                return EXIT_FAILED;
        }
        return EXIT_OK;
}

int cli_load_bmap(const char *path, Bmap *ret) {
        Diag d = {};
        int r = bmap_load(path, false, ret, &d);
        if (r < 0) {
                log_error("%s; nothing was written", d.msg);
                return EXIT_FAILED;
        }
        if (ret->file_checksum == FILE_CHECKSUM_ABSENT && ret->version_major * 100 + ret->version_minor >= 103)
                log_warning("%s: the bmap has no file checksum: its integrity cannot be checked", path);
        log_verbose("%s: bmap %u.%u, %llu of %llu blocks of %llu bytes mapped in %zu ranges", path, ret->version_major,
                    ret->version_minor, (unsigned long long) ret->mapped_count, (unsigned long long) ret->blocks_count,
                    (unsigned long long) ret->block_size, ret->n_ranges);
        return EXIT_OK;
}

int cli_open_source(const char *image, int *ret_fd, Input *ret) {
        if (location_is_url(image)) {
                Diag d = {};
                if (input_http_open(image, ret, &d) < 0) {
                        log_error("%s; nothing was written", d.msg);
                        return EXIT_FAILED;
                }
                return EXIT_OK;
        }
        if (strcmp(image, "-") == 0)
                *ret_fd = dup(STDIN_FILENO);
        else
                *ret_fd = open(image, O_RDONLY | O_CLOEXEC);
        if (*ret_fd < 0) {
                log_error("cannot open image '%s': %s", image, strerror(errno));
                return EXIT_FAILED;
        }
        *ret = input_from_fd(ret_fd, image);
        return EXIT_OK;
}

int cli_http_option(int c, const char *arg, HttpOptions *o) {
        uint64_t v;

        if (c == CLI_OPT_CA_FILE) {
                o->ca_file = arg;
                return -1;
        }
        if (parse_u64(arg, strlen(arg), &v) < 0 || v == 0 || v > 3600)
                return usage_error("--http-timeout takes a number of seconds from 1 to 3600, not '%s'", arg);
        o->stall_timeout = (unsigned) v;
        return -1;
}

int cli_http_setup(const HttpOptions *o) {
        Diag d = {};
        if (http_configure(o, &d) < 0) {
                log_error("%s", d.msg);
                return EXIT_FAILED;
        }
        return -1;
}

int cmd_copy(int argc, char **argv) {
        static const struct option options[] = {
                CLI_COMMON_OPTIONS,
                { "bmap", required_argument, NULL, 'b' },
                { "nobmap", no_argument, NULL, 'N' },
                { "no-verify", no_argument, NULL, 'n' },
                { "verify-after", no_argument, NULL, 'A' },
                { "removable-device", no_argument, NULL, 'R' },
                CLI_HTTP_OPTIONS,
                {},
        };
        const char *bmap_arg = NULL, *image;
        bool nobmap = false, verify = true, verify_after = false;
        TargetOptions topts = { .tune = true };
        _cleanup_free_ char *bmap_path = NULL;
        _cleanup_(bmap_done) Bmap bmap = {};
        _cleanup_close_ int fd = -1;
        _cleanup_(input_close) Input in = {};
        _cleanup_stream_ Stream *src = NULL;
        HttpOptions http = { .cancel = &interrupted };
        Target *targets[64] = {};
        CopyTargetResult results[64] = {};
        size_t n_targets;
        uint64_t image_size = UINT64_MAX, total = 0;
        Progress progress;
        Diag d = {};
        int c, r, status = EXIT_OK;

        while ((c = getopt_long(argc, argv, CLI_COMMON_SHORT, options, NULL)) >= 0) {
                switch (c) {
                case 'b':
                        bmap_arg = optarg;
                        break;
                case 'N':
                        nobmap = true;
                        break;
                case 'n':
                        verify = false;
                        break;
                case 'A':
                        verify_after = true;
                        break;
                case 'R':
                        topts.removable_only = true;
                        break;
                case CLI_OPT_CA_FILE:
                case CLI_OPT_HTTP_TIMEOUT:
                        r = cli_http_option(c, optarg, &http);
                        if (r >= 0)
                                return r;
                        break;
                default:
                        r = cli_common_option(c, argv, help);
                        if (r >= 0)
                                return r;
                }
        }
        if (bmap_arg && nobmap)
                return usage_error("--bmap and --nobmap exclude each other");
        if (argc - optind < 2)
                return usage_error(optind >= argc ? "no IMAGE given" : "no DEST given");
        n_targets = (size_t) (argc - optind - 1);
        if (n_targets > ELEMENTSOF(targets))
                return usage_error("at most %zu DESTs are taken", ELEMENTSOF(targets));
        image = argv[optind];
        r = cli_http_setup(&http);
        if (r >= 0)
                return r;

        if (!nobmap) {
                r = cli_find_bmap(image, bmap_arg, &bmap_path);
                if (r != EXIT_OK)
                        return r;
                r = cli_load_bmap(bmap_path, &bmap);
                if (r != EXIT_OK)
                        return r;
                image_size = bmap.image_size;
                if (verify && bmap.checksum_type == CHECKSUM_NONE)
                        log_warning("%s: the bmap has no range checksums: the data cannot be verified", bmap_path);
        }

        r = cli_open_source(image, &fd, &in);
        if (r != EXIT_OK)
                return r;
        r = stream_open(&in, &src, &d);
        if (r < 0) {
                log_error("%s; nothing was written", d.msg);
                return EXIT_FAILED;
        }
        uint64_t hint = stream_size_hint(src);
        if (!nobmap && hint != UINT64_MAX && hint != image_size) {
                log_error("%s: the image (%s) is %llu bytes, but the bmap %s says %llu: they do not belong together; "
                          "nothing was written",
                          image, stream_describe(src), (unsigned long long) hint, bmap_path,
                          (unsigned long long) image_size);
                return EXIT_FAILED;
        }
        if (nobmap)
                image_size = hint;
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
        }

        struct sigaction sa = { .sa_handler = on_signal };
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);

        /* Progress on a terminal, or with -v; never with -q. */
        progress_init(&progress, cli_verbosity > 0 || (cli_verbosity == 0 && isatty(STDERR_FILENO)), -1);
        CopyOptions copts = {
                .source_name = image,
                .verify = verify,
                .cancel = &interrupted,
                .progress = progress_update,
                .userdata = &progress,
        };
        r = copy_image(src, nobmap ? NULL : &bmap, image_size, targets, n_targets, &copts, results, &total, &d);
        if (r < 0) {
                progress_clear(&progress);
                if (r == -EINTR)
                        log_error("interrupted by %s: %s", interrupted == SIGTERM ? "SIGTERM" : "SIGINT",
                                  target_state_after_failure(targets[0]));
                else
                        log_error("%s; %s", d.msg, target_state_after_failure(targets[0]));
                status = EXIT_FAILED;
                goto out;
        }
        for (size_t i = 0; i < n_targets; i++) {
                if (results[i].error < 0) {
                        log_error("%s; %s", results[i].message, target_state_after_failure(targets[i]));
                        status = EXIT_FAILED;
                        continue;
                }
                if (image_size == UINT64_MAX && target_kind(targets[i]) == TARGET_FILE &&
                    ftruncate(target_fd(targets[i]), (off_t) total) < 0) {
                        log_error("%s: cannot size the file: %s", target_path(targets[i]), strerror(errno));
                        status = EXIT_FAILED;
                        continue;
                }
                r = target_finish(targets[i], &d);
                if (r < 0) {
                        log_error("%s; %s", d.msg, target_state_after_failure(targets[i]));
                        status = EXIT_FAILED;
                }
        }
        if (status == EXIT_OK)
                progress_finish(&progress, total, "copied");
        else
                progress_clear(&progress);
        if (interrupted) {
                log_error("interrupted while flushing: the copy may be incomplete; flash it again");
                status = EXIT_FAILED;
        }
        if (status == EXIT_OK && verify_after && !nobmap)
                for (size_t i = 0; i < n_targets; i++) {
                        r = cli_verify_target(&bmap, bmap_path, target_path(targets[i]));
                        if (r != EXIT_OK)
                                status = r;
                }
out:
        for (size_t i = 0; i < n_targets; i++)
                target_free(targets[i]);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        return status;
}
