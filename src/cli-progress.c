/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "cli-progress.h"

#include <fcntl.h>
#include <poll.h>
#include <stdio_ext.h>
#include <string.h>
#include <unistd.h>

#include "bmap.h"
#include "cli.h"
#include "json.h"
#include "progress.h"

int cli_progress_option(int id, const char *arg, CliProgress *p) {
        uint64_t v;

        switch (id) {
        case CLI_OPT_PROGRESS:
                if (strcmp(arg, "json") == 0)
                        p->json = true;
                else if (strcmp(arg, "text") == 0)
                        p->json = false;
                else
                        return usage_error("--progress takes 'text' or 'json', not '%s'", arg);
                return CLI_CONTINUE;
        case CLI_OPT_PROGRESS_FD:
                if (parse_u64(arg, strlen(arg), &v) < 0 || v > INT32_MAX)
                        return usage_error("--progress-fd takes a file descriptor number, not '%s'", arg);
                p->fd_arg = arg;
                return CLI_CONTINUE;
        case CLI_OPT_PROGRESS_FILE:
                p->file = arg;
                return CLI_CONTINUE;
        }
        return usage_error("unknown option");
}

int cli_progress_open(CliProgress *p) {
        p->start = progress_now();
        if (p->fd_arg && p->file)
                return usage_error("--progress-fd and --progress-file exclude each other");
        if ((p->fd_arg || p->file) && !p->json)
                return usage_error("--progress-fd and --progress-file go with --progress=json");
        if (!p->json)
                return EXIT_OK;
        if (p->fd_arg) {
                uint64_t v;
                (void) parse_u64(p->fd_arg, strlen(p->fd_arg), &v);
                int fd = fcntl((int) v, F_DUPFD_CLOEXEC, 3);
                if (fd < 0 || fcntl(fd, F_GETFL) < 0 || (fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDONLY) {
                        log_error("--progress-fd %s: not a descriptor open for writing; nothing was written",
                                  p->fd_arg);
                        if (fd >= 0)
                                close(fd);
                        return EXIT_FAILED;
                }
                p->f = fdopen(fd, "w");
                if (!p->f) {
                        close(fd);
                        log_error("out of memory");
                        return EXIT_FAILED;
                }
                p->own = true;
        } else if (p->file) {
                /* A FIFO: this waits for its reader, before anything is
                 * written to a target. */
                p->f = fopen(p->file, "we");
                if (!p->f) {
                        log_error("--progress-file %s: cannot open it for writing: %s; nothing was written", p->file,
                                  strerror(errno));
                        return EXIT_FAILED;
                }
                p->own = true;
        } else
                p->f = stdout;
        /* Every line whole in the buffer until line_end writes it. */
        (void) setvbuf(p->f, NULL, _IOFBF, 1 << 18);
        return EXIT_OK;
}

void cli_progress_close(CliProgress *p) {
        if (p->f && p->own)
                fclose(p->f);
        p->f = NULL;
}

bool cli_progress_on_stdout(const CliProgress *p) {
        return p->f == stdout;
}

uint64_t cli_mapped_bytes(const Bmap *b) {
        uint64_t t = 0;

        for (size_t i = 0; i < b->n_ranges; i++) {
                Extent x = bmap_range_bytes(b, i);
                t += x.end - x.start;
        }
        return t;
}

static void line_end(CliProgress *p) {
        struct pollfd pfd = { .fd = fileno(p->f), .events = POLLOUT };

        fputs("}\n", p->f);
        /* A reader that stalls (a full pipe or FIFO) holds the copy up, as
         * a slow terminal would; but once SIGINT or SIGTERM asked the copy
         * to stop, its lines are dropped rather than waited for: the copy
         * must end, and the reader gets no half line. */
        for (;;) {
                int k = poll(&pfd, 1, 100);
                if (k > 0 || (k < 0 && errno != EINTR))
                        break;
                if (cli_interrupted) {
                        __fpurge(p->f);
                        return;
                }
        }
        /* A reader that left: EPIPE (SIGPIPE is ignored), nothing to do. */
        (void) fflush(p->f);
        clearerr(p->f);
}

static void head(CliProgress *p, const char *event, const char *target) {
        fprintf(p->f, "{\"event\":\"%s\",\"time\":%.3f", event, progress_now() - p->start);
        if (target) {
                fputs(",\"target\":", p->f);
                json_print_string(p->f, target);
        }
}

void cli_progress_start(CliProgress *p, const char *image, const char *bmap, const char *const *targets, size_t n,
                        uint64_t mapped_bytes) {
        p->targets = targets;
        if (!p->f)
                return;
        head(p, "start", NULL);
        fputs(",\"image\":", p->f);
        json_print_string(p->f, image);
        fputs(",\"bmap\":", p->f);
        if (bmap)
                json_print_string(p->f, bmap);
        else
                fputs("null", p->f);
        fputs(",\"targets\":[", p->f);
        for (size_t i = 0; i < n; i++) {
                if (i)
                        fputc(',', p->f);
                json_print_string(p->f, targets[i]);
        }
        fputc(']', p->f);
        if (mapped_bytes != UINT64_MAX)
                fprintf(p->f, ",\"mapped_bytes\":%llu", (unsigned long long) mapped_bytes);
        else
                fputs(",\"mapped_bytes\":null", p->f);
        line_end(p);
}

void cli_progress_event(CliProgress *p, const CopyEvent *e, uint64_t total) {
        if (!p->f || !p->targets)
                return;
        switch (e->kind) {
        case COPY_EVENT_PROGRESS: {
                uint64_t done = e->written + e->skipped;
                head(p, "progress", p->targets[e->target]);
                fprintf(p->f, ",\"written\":%llu,\"skipped\":%llu,\"done\":%llu", (unsigned long long) e->written,
                        (unsigned long long) e->skipped, (unsigned long long) done);
                if (total != UINT64_MAX)
                        fprintf(p->f, ",\"total\":%llu", (unsigned long long) total);
                fprintf(p->f, ",\"seconds\":%.3f,\"rate\":%llu", e->seconds,
                        (unsigned long long) (e->seconds > 0 ? (double) done / e->seconds : 0));
                line_end(p);
                break;
        }
        case COPY_EVENT_RETRY:
                head(p, "retry", p->targets[e->target]);
                if (e->range != SIZE_MAX)
                        fprintf(p->f, ",\"range\":%zu", e->range);
                fprintf(p->f, ",\"bytes\":[%llu,%llu],\"attempt\":%u,\"retries\":%u,\"reason\":\"%s\",\"message\":",
                        (unsigned long long) e->start, (unsigned long long) e->end - 1, e->attempt, e->retries,
                        e->write_error ? "write error" : "read back wrong");
                json_print_string(p->f, e->message);
                line_end(p);
                break;
        case COPY_EVENT_NOTE:
                break;
        }
}

void cli_progress_mismatch(CliProgress *p, const char *target, uint64_t first_block, uint64_t last_block,
                           uint64_t first_byte, uint64_t last_byte, const char *checksum, const char *expected,
                           const char *found) {
        if (!p || !p->f)
                return;
        head(p, "mismatch", target);
        fprintf(p->f, ",\"blocks\":[%llu,%llu],\"bytes\":[%llu,%llu],\"checksum\":\"%s\",\"expected\":\"%s\","
                "\"found\":\"%s\"",
                (unsigned long long) first_block, (unsigned long long) last_block, (unsigned long long) first_byte,
                (unsigned long long) last_byte, checksum, expected, found);
        line_end(p);
}

void cli_progress_end(CliProgress *p, const CliProgressEnd *e) {
        if (!p || !p->f)
                return;
        head(p, "end", e->target);
        fprintf(p->f, ",\"status\":\"%s\",\"bytes\":%llu", e->ok ? "ok" : "failed", (unsigned long long) e->bytes);
        /* verify writes nothing: its written and skipped would say 0 and
         * mean nothing. */
        if (p->verify)
                fprintf(p->f, ",\"checked\":%llu", (unsigned long long) e->checked);
        else
                fprintf(p->f, ",\"written\":%llu,\"skipped\":%llu,\"retried_ranges\":%zu",
                        (unsigned long long) e->written, (unsigned long long) e->skipped, e->retried_ranges);
        fprintf(p->f, ",\"seconds\":%.3f,\"error\":", e->seconds);
        if (e->error)
                json_print_string(p->f, e->error);
        else
                fputs("null", p->f);
        line_end(p);
}

void cli_progress_fail(CliProgress *p, const char *image, const char *bmap, const char *const *targets, size_t n,
                       uint64_t mapped_bytes) {
        const char *error = cli_last_error();

        if (!p || !p->f)
                return;
        if (!p->targets)
                cli_progress_start(p, image, bmap, targets, n, mapped_bytes);
        for (size_t i = 0; i < n; i++)
                cli_progress_end(p, &(CliProgressEnd) { .target = targets[i],
                                                        .seconds = progress_now() - p->start,
                                                        .error = error[0] ? error : "failed before it started" });
}
