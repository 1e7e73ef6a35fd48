/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "bmap.h"
#include "stream.h"
#include "target.h"
#include "util.h"

/* CPU seconds each stage spent: where the time goes, for -v. */
typedef struct CopyStats {
        double read_cpu;        /* reading and decompressing */
        double hash_cpu;
        double write_cpu;       /* the busiest writer */
} CopyStats;

/* Targets one copy writes at once: each has its writer thread. */
#define COPY_MAX_TARGETS 64

/* What a copy tells its caller as it goes (CopyOptions.event). */
typedef enum CopyEventKind {
        COPY_EVENT_PROGRESS,    /* about once a second, for each target */
        COPY_EVENT_RETRY,       /* a part of a range is written again (--retries) */
        COPY_EVENT_NOTE,        /* worth a line with -v */
} CopyEventKind;

typedef struct CopyEvent {
        CopyEventKind kind;
        size_t target;          /* index into the targets */
        /* PROGRESS: bytes of the mapped bytes handled so far. */
        uint64_t written, skipped;
        double seconds;         /* since the copy started */
        /* RETRY: the range (an index of the bmap's, or SIZE_MAX without
         * one), the bytes [start, end) written again, the attempt (1 to
         * retries), and why. */
        size_t range;
        uint64_t start, end;
        unsigned attempt, retries;
        bool write_error;       /* else: it read back wrong */
        const char *message;    /* RETRY, NOTE: one line, naming the target */
} CopyEvent;

typedef struct CopyOptions {
        const char *source_name;                /* for messages */
        bool verify;                            /* check range checksums as the data streams */
        const volatile sig_atomic_t *cancel;    /* set by a signal handler: stop soon */
        /* Called from the calling thread a few times a second. */
        void (*progress)(void *userdata, uint64_t done, uint64_t total);
        void *userdata;
        CopyStats *stats;                       /* filled in at the end when not NULL */
        /* How each target is completed (target_complete, with the image's
         * size as read), in its writer thread, in parallel with the other
         * targets, once the whole image has been read and verified and
         * every byte of it written to that target. NULL: the caller
         * finishes the targets itself. */
        const TargetCompletion *complete;
        /* When not NULL (with a bmap): each range's SHA-256 is computed as
         * it streams and stored in record[i] instead of being compared with
         * the bmap's, which has none yet (a bmap that a scan made just
         * before this copy): the copy reads the image once, not twice. One
         * entry per range of the bmap; written only when copy_image
         * returns 0. */
        uint8_t (*record)[CHECKSUM_MAX_SIZE];
        /* --skip-identical: each 1 MiB piece of a chunk (smaller at a
         * range's end) is first read from a target that can be compared
         * (target_can_compare), in a thread of its own per target that runs
         * ahead of its writer, and written only when it differs. A target
         * that cannot be read is written in full from then on (a NOTE). */
        bool skip_identical;
        /* --retries: a write that fails with EIO is tried again up to this
         * many times; with check_written, so is a piece that reads back
         * wrong. */
        unsigned retries;
        /* Each piece written is read back (target_read, past the page
         * cache) after a flush, a few chunks at a time while they are still
         * in memory, and compared with what was written. */
        bool check_written;
        /* Called for each CopyEvent, from any of the copy's threads, one
         * call at a time. */
        void (*event)(void *userdata, const CopyEvent *e);
} CopyOptions;

typedef struct CopyTargetResult {
        int error;              /* 0, or the negative errno that stopped this target */
        char message[768];
        uint64_t written;       /* bytes written to it */
        uint64_t skipped;       /* bytes found identical there and not written (skip_identical) */
        size_t retried_ranges;  /* ranges of which a part was written again */
        double seconds;         /* from the start until it was written (and finished) */
        bool finished;          /* target_complete ran and succeeded */
} CopyTargetResult;

/* Streams the image from src to every target: with a bmap, only its ranges
 * (skipping, or decoding and dropping, what lies between), each hashed as it
 * streams and compared at its end; without one (bmap NULL), all image_size
 * bytes, or everything up to the end of the stream when image_size is
 * UINT64_MAX, except what the stream says the image leaves undefined
 * (stream_next_stretch: an Android sparse image's DONT_CARE chunks). One thread decodes, one hashes, one writes to each target;
 * memory is a fixed pool of buffers.
 *
 * Returns 0 when the image was read and verified in full (each target's own
 * outcome is in results[i]: one failing target does not stop the others),
 * or a negative errno with a message when the source failed, a checksum did
 * not match, every target failed, or the copy was cancelled. Each target is
 * completed (flushed, renamed: target_complete with o->complete) in its own
 * writer thread once the whole image is read and verified; without
 * o->complete the caller finishes them. With a bmap, image_size is its
 * image size. At most COPY_MAX_TARGETS targets. */
int copy_image(Stream *src, const Bmap *bmap, uint64_t image_size, Target **targets, size_t n_targets,
               const CopyOptions *o, CopyTargetResult *results, uint64_t *ret_total, Diag *d);
