/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* --progress=json for copy and verify: one JSON object per line, each
 * flushed, for a program that watches the flash (a factory front-end): on
 * stdout, or on the descriptor of --progress-fd, or in the file or FIFO of
 * --progress-file. The events, in order: "start"; "progress" about once a
 * second per target, "retry" and "mismatch" as they happen; "end" once per
 * target, last. A reader that goes away does not stop the copy: the lines
 * are then dropped. Command layer only. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "copy.h"

typedef struct CliProgress {
        bool json;              /* --progress=json */
        const char *fd_arg;     /* --progress-fd N */
        const char *file;       /* --progress-file PATH */
        FILE *f;                /* where the lines go once opened; NULL: no JSON */
        bool own;               /* f was opened here */
        bool verify;            /* verify's end lines: what was checked, nothing written */
        const char *const *targets; /* the DESTs, for the "target" of each line; NULL before "start" */
        double start;
} CliProgress;

/* Takes CLI_OPT_PROGRESS, _PROGRESS_FD, _PROGRESS_FILE: CLI_CONTINUE, or
 * the usage exit status. */
int cli_progress_option(int id, const char *arg, CliProgress *p);
/* After the options: opens where the JSON goes (a FIFO waits for its
 * reader here); EXIT_OK or an exit status, the error said. */
int cli_progress_open(CliProgress *p);
void cli_progress_close(CliProgress *p);
/* Is JSON written on standard output (so that nothing else may be)? */
bool cli_progress_on_stdout(const CliProgress *p);

struct Bmap;
/* The bytes a bmap maps (its last block may be cut by the image's end). */
uint64_t cli_mapped_bytes(const struct Bmap *b);

void cli_progress_start(CliProgress *p, const char *image, const char *bmap, const char *const *targets, size_t n,
                        uint64_t mapped_bytes);
/* A copy's PROGRESS and RETRY events; the others are not JSON's. */
void cli_progress_event(CliProgress *p, const CopyEvent *e, uint64_t total);
void cli_progress_mismatch(CliProgress *p, const char *target, uint64_t first_block, uint64_t last_block,
                           uint64_t first_byte, uint64_t last_byte, const char *checksum, const char *expected,
                           const char *found);
typedef struct CliProgressEnd {
        const char *target;
        bool ok;
        uint64_t bytes;         /* the mapped bytes handled: written + skipped, or read back */
        uint64_t written, skipped; /* copy's */
        size_t retried_ranges;  /* copy's */
        uint64_t checked;       /* verify's: read back and compared with their checksums */
        double seconds;         /* from the start until this target ended */
        const char *error;      /* NULL when ok */
} CliProgressEnd;
void cli_progress_end(CliProgress *p, const CliProgressEnd *e);
/* A command that failed before its work started (a bmap not found, an
 * image that cannot be opened, a DEST refused...): "start" with what is
 * known, unless it was written, then an "end" per target, failed, whose
 * error is the line said on stderr (cli_last_error). A reader of the JSON
 * alone sees every outcome. */
void cli_progress_fail(CliProgress *p, const char *image, const char *bmap, const char *const *targets, size_t n,
                       uint64_t mapped_bytes);
