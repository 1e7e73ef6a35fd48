/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* A progress line on stderr for a terminal: percent, bytes, rate and time
 * left, redrawn at most four times a second; a final line with bytes, time
 * and rate. Command layer only. */
typedef struct Progress {
        bool enabled;           /* a terminal, not -q (or -v anywhere) */
        bool tty;
        const char *psplash;    /* --psplash-pipe FIFO, or NULL */
        int last_percent;
        double start, last_draw;
        uint64_t last_done;
} Progress;

/* psplash: a FIFO that gets "PROGRESS <percent>" lines, as bmaptool writes
 * them for the psplash boot splash: opened for each line without blocking,
 * so a splash that is not (yet) reading costs nothing and stalls nothing. */
void progress_init(Progress *p, bool enabled, const char *psplash);
void progress_update(void *userdata, uint64_t done, uint64_t total);
void progress_finish(Progress *p, uint64_t done, const char *what);
/* Erases the progress line, for an error message to take its place. */
void progress_clear(Progress *p);
double progress_now(void);
