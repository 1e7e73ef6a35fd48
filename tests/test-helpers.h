/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What the C tests that build real images share: shell commands (mkfs,
 * mtools, compressors), paths in the test's scratch directory, and a small
 * deterministic random number generator. Not every test uses every one. */
#pragma once

#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "util.h"

/* Runs a shell command; a failure is printed with the command. */
_printf_(1, 2) _unused_ static int sh(const char *fmt, ...) {
        char cmd[8192];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(cmd, sizeof(cmd), fmt, ap);
        va_end(ap);
        int k = system(cmd);
        if (k != 0)
                fprintf(stderr, "command failed (%d): %s\n", k, cmd);
        return k;
}

/* The same, for commands whose failure is an answer, not an error. */
_printf_(1, 2) _unused_ static int sh_quiet(const char *fmt, ...) {
        char cmd[8192];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(cmd, sizeof(cmd), fmt, ap);
        va_end(ap);
        return system(cmd);
}

/* The test's scratch directory, set up by the test. */
_unused_ static char tmpdir[1024];

/* A path in it, valid until the 8th call after it: keep a copy (PATH_COPY)
 * when it must live longer. */
_unused_ static const char *tpath(const char *name) {
        static char bufs[8][PATH_MAX];
        static unsigned next;
        char *p = bufs[next++ % ELEMENTSOF(bufs)];
        snprintf(p, PATH_MAX, "%s/%s", tmpdir, name);
        return p;
}

#define PATH_COPY(var, name) \
        char var[PATH_MAX];  \
        snprintf(var, sizeof(var), "%s", tpath(name))

/* xorshift64: the same bytes on every run, for a given seed. */
_unused_ static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

_unused_ static uint64_t rng(void) {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        return rng_state;
}
