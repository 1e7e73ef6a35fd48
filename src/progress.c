/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "progress.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

double progress_now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

void progress_init(Progress *p, bool enabled, const char *psplash) {
        *p = (Progress) {
                .enabled = enabled,
                .tty = isatty(STDERR_FILENO),
                .psplash = psplash,
                .last_percent = -1,
                .start = progress_now(),
        };
}

static void psplash_write(Progress *p, int percent) {
        char line[32];
        int n, fd;

        if (!p->psplash)
                return;
        /* ENXIO (nobody reading yet), EAGAIN (the pipe is full): skip this
         * line; the next one says more anyway. SIGPIPE is ignored. */
        fd = open(p->psplash, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return;
        struct stat st;
        if (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode)) {
                close(fd);
                return;
        }
        n = snprintf(line, sizeof(line), "PROGRESS %d\n", percent);
        (void) !write(fd, line, (size_t) n);
        close(fd);
}

void progress_update(void *userdata, uint64_t done, uint64_t total) {
        Progress *p = userdata;
        double now = progress_now();
        int percent = total ? (int) (done * 100 / total) : 0;

        if (percent != p->last_percent)
                psplash_write(p, percent);
        p->last_percent = percent;
        if (!p->enabled || !p->tty || now - p->last_draw < 0.25)
                return;
        p->last_draw = now;
        char a[32], b[32], rate[32], left[32] = "";
        double secs = now - p->start, bps = secs > 0 ? (double) done / secs : 0;
        format_human_size(done, a, sizeof(a));
        format_human_size(total, b, sizeof(b));
        format_human_size((uint64_t) bps, rate, sizeof(rate));
        if (bps > 0 && total > done) {
                unsigned s = (unsigned) ((double) (total - done) / bps);
                snprintf(left, sizeof(left), ", %u:%02u left", s / 60, s % 60);
        }
        fprintf(stderr, "\r\033[K%3d%%  %s of %s, %s/s%s", percent, a, b, rate, left);
        fflush(stderr);
}

void progress_clear(Progress *p) {
        if (p->enabled && p->tty) {
                fputs("\r\033[K", stderr);
                fflush(stderr);
        }
}

void progress_finish(Progress *p, uint64_t done, const char *what) {
        double secs = progress_now() - p->start;
        char a[32], rate[32];

        if (p->last_percent != 100)
                psplash_write(p, 100);
        if (p->enabled && p->tty)
                fputs("\r\033[K", stderr);
        if (!p->enabled)
                return;
        format_human_size(done, a, sizeof(a));
        format_human_size(secs > 0 ? (uint64_t) ((double) done / secs) : 0, rate, sizeof(rate));
        fprintf(stderr, "%s %s in %.1f s (%s/s)\n", what, a, secs, rate);
}
