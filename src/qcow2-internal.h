/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* What the two halves of the qcow2 reader share: qcow2-open.c checks a
 * file and builds the Qcow2, qcow2.c reads through it. Nothing else
 * includes this. */

#include <isa-l.h>
#include <pthread.h>
#include <zstd.h>

#include "qcow2.h"

#define QCOW2_MAGIC 0x514649fbU
#define V2_HEADER 72
#define V3_HEADER 104
#define MIN_CLUSTER_BITS 9
#define MAX_CLUSTER_BITS 21  /* QEMU's limit: 2 MiB clusters */
#define MAX_L1_BYTES (UINT64_C(32) << 20) /* QEMU's limit on the L1 table */
#define L1_OFFSET_MASK UINT64_C(0x00fffffffffffe00)
#define L2_OFFSET_MASK UINT64_C(0x00fffffffffffe00)
#define L2_COMPRESSED (UINT64_C(1) << 62)
#define L2_COPIED (UINT64_C(1) << 63)
#define L2_ZERO UINT64_C(1)

#define INCOMPAT_DIRTY (UINT64_C(1) << 0)
#define INCOMPAT_CORRUPT (UINT64_C(1) << 1)
#define INCOMPAT_DATA_FILE (UINT64_C(1) << 2)
#define INCOMPAT_COMPRESSION (UINT64_C(1) << 3)
#define INCOMPAT_EXTL2 (UINT64_C(1) << 4)
#define INCOMPAT_KNOWN UINT64_C(0x1f)

#define EXT_END 0
#define EXT_BACKING_FORMAT 0xe2792acaU
#define EXT_FEATURE_NAMES 0x6803f857U
#define EXT_DATA_FILE 0x44415441U

/* L2 tables kept decoded in memory: enough for the 4 MiB a copy reads at
 * a time and for the probes, which jump between a filesystem's metadata
 * regions; bounded in bytes whatever the cluster size. */
#define L2_CACHE_BYTES (UINT64_C(8) << 20)
#define L2_CACHE_MIN 4
#define L2_CACHE_MAX 64

/* Decompressed clusters kept (with the decoder that made them): a probe
 * reads a cluster in pieces, and the hashing threads each read their own
 * range, so a few per thread are enough; bounded in bytes too. */
#define DECODE_CACHE_BYTES (UINT64_C(12) << 20)
#define DECODE_CACHE_MIN 2
#define DECODE_CACHE_MAX 16

typedef struct L2Slot {
        uint64_t off;           /* host offset of the table, 0 when empty */
        uint64_t used;          /* LRU tick */
        uint8_t *data;
} L2Slot;

/* Decompresses compressed clusters: its contexts and buffers, and which
 * cluster dbuf holds (its L2 entry; 0 for none). */
typedef struct Decoder {
        struct Decoder *next;
        uint64_t word;
        uint8_t *cbuf, *dbuf;   /* compressed bytes; the cluster they decompress to */
        struct inflate_state *inflate;
        ZSTD_DCtx *zctx;
} Decoder;

struct Qcow2 {
        Qcow2Host host;
        char *name, *dir;
        int own_fd;             /* opened by path: closed by qcow2_free */
        unsigned depth;
        unsigned version, cluster_bits, l2_bits;
        uint64_t cs, size, file_size;
        uint64_t *l1;
        size_t l1_entries;      /* those the virtual size needs */
        bool extended, zstd, dirty;
        unsigned n_snapshots;
        uint64_t n_allocated, n_compressed, n_zero;

        /* The backing file: a qcow2 (bq) or a raw file (bfd), size bsize. */
        bool has_backing;
        Qcow2 *bq;
        int bfd;
        uint64_t bsize;
        char *bname, *bpath;    /* as the header names it; as opened */
        char chain[1024];

        pthread_mutex_t lock;   /* the L2 cache */
        L2Slot *slots;
        size_t n_slots;
        uint64_t tick;

        /* Decoders not in use, most recently used first; each still holds
         * the cluster it decoded last, so they are also the cache of
         * decompressed clusters. A thread takes one out for the whole
         * decompression and copy, so threads decompress side by side. */
        pthread_mutex_t dlock;  /* the list below, held only to take or put one */
        Decoder *idle;
        size_t n_idle, n_decoders, max_idle;
};

/* Exactly n bytes at off of the file; -EIO (d filled) when it ends first. */
int qcow2_host_read(Qcow2 *q, uint64_t off, void *buf, size_t n, const char *what, Diag *d);
/* A Qcow2ReadFn over a descriptor (ctx). */
ssize_t qcow2_fd_pread(void *ctx, uint64_t off, void *buf, size_t n);
/* What is wrong with a table's or a cluster's host offset, or NULL. */
const char *qcow2_check_host(const Qcow2 *q, uint64_t off, uint64_t len);
/* What is wrong with an L2 entry (w, and w2 with extended L2), or NULL. */
const char *qcow2_check_entry(const Qcow2 *q, uint64_t w, uint64_t w2);
