/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* A read-only qcow2 reader (versions 2 and 3): the virtual disk of a qcow2
 * file as bytes at guest offsets. The file is read through a pread
 * callback, so the same reader works over a local descriptor and over a
 * Stream's seekable input.
 *
 * qcow2_open checks the header, the extensions, the L1 table and every L2
 * table before anything is read through them (offsets inside the file,
 * aligned, never in the header cluster): a damaged table is refused then,
 * with one line naming the file and the table, not found half-way through a
 * copy. Refused: encryption, an external data file, the corrupt bit,
 * unknown incompatible features, a backing file that is not a local path
 * (a URL, "nbd:", "json:"), a backing chain deeper than QCOW2_MAX_DEPTH.
 * Internal snapshots are noted, not refused: the active L1 is the disk. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "util.h"

#define QCOW2_MAX_DEPTH 8

typedef struct Qcow2 Qcow2;

/* Reads up to n bytes at off of the qcow2 file: the count (fewer only at
 * its end) or a negative errno. Must be safe to call from several threads
 * when the Qcow2 is (a local descriptor: pread). */
typedef ssize_t (*Qcow2ReadFn)(void *ctx, uint64_t off, void *buf, size_t n);

typedef struct Qcow2Host {
        const char *name;       /* for messages */
        Qcow2ReadFn pread;
        void *ctx;
        uint64_t size;          /* the file's size */
        const char *dir;        /* where relative backing names start; NULL: backing files refused */
} Qcow2Host;

/* Whether the first n bytes start a qcow2 file. */
bool qcow2_detect(const void *head, size_t n);

int qcow2_open(const Qcow2Host *h, Qcow2 **ret, Diag *d);
/* Opens a local file by path (the backing chain's opener too). */
int qcow2_open_path(const char *path, Qcow2 **ret, Diag *d);
void qcow2_free(Qcow2 *q);
static inline void qcow2_freep(Qcow2 **q) {
        qcow2_free(*q);
}

uint64_t qcow2_size(const Qcow2 *q);

/* Reads exactly n guest bytes at off: unallocated clusters come from the
 * backing file (zeros past its end, or with none), zero clusters are
 * zeros without a read. -ERANGE when [off, off+n) is not inside the
 * virtual disk; -EIO with d filled for damaged compressed data or a file
 * that ends early. Thread-safe. */
int qcow2_pread(Qcow2 *q, void *buf, size_t n, uint64_t off, Diag *d);

typedef enum Qcow2Kind {
        QCOW2_DATA,             /* bytes stored in this file or one below it */
        QCOW2_ZERO,             /* known to read as zeros */
} Qcow2Kind;

/* From guest byte off, how many bytes (at most max, > 0) are of the same
 * kind. Zero: the zero flag or subcluster bit, an unallocated cluster with
 * no backing file, or one whose backing bytes are known zeros or lie past
 * the backing file's end. -ERANGE when off is past the end. */
int qcow2_map(Qcow2 *q, uint64_t off, uint64_t max, uint64_t *ret_len, Qcow2Kind *ret_kind, Diag *d);

typedef struct Qcow2Info {
        unsigned version;
        uint64_t cluster_size;
        uint64_t size;
        uint64_t clusters;      /* of the virtual disk */
        uint64_t allocated;     /* clusters with data in this file (compressed included) */
        uint64_t compressed;
        uint64_t zero;          /* clusters with the zero flag (or all subclusters zero) */
        bool extended_l2;
        bool dirty;
        const char *compression; /* "deflate" or "zstd" */
        unsigned n_snapshots;
        char backing[1024];     /* "base.qcow2 (qcow2) <- base.raw (raw)", "" for none */
} Qcow2Info;

void qcow2_get_info(const Qcow2 *q, Qcow2Info *ret);

/* One file of a backing chain: the name the file above it gives, the
 * path it was opened by, its format ("qcow2" or "raw") and its size (a
 * qcow2's virtual size). Valid while q is. */
typedef struct Qcow2Backing {
        const char *name, *path, *format;
        uint64_t size;
} Qcow2Backing;

/* The i-th backing file below q (0: q's own): false past the chain's end. */
bool qcow2_backing_at(const Qcow2 *q, unsigned i, Qcow2Backing *ret);
