/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The Android sparse image writer (simg-write.h): one pass over the mapped
 * blocks in order, each classified as it is read (one repeated 32-bit
 * value: FILL; anything else: RAW), runs of one kind merged into a chunk,
 * the gaps between mapped runs written as DONT_CARE. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "simg-write.h"

/* Mapped blocks are read this many bytes at a time (at least one block). */
#define READ_BATCH ((size_t) 1 << 20)

typedef enum RunKind {
        RUN_NONE,
        RUN_RAW,
        RUN_FILL,
} RunKind;

typedef struct Writer {
        const SimgWriteOptions *o;
        uint32_t bs;
        uint64_t max_raw_blocks;
        uint64_t out;           /* where the next chunk goes in the sparse image */
        uint32_t crc;
        SimgInfo *info;
        uint64_t chunks;
        RunKind kind;
        uint32_t fill;          /* RUN_FILL: the value */
        uint64_t count;         /* blocks in the current run */
        /* RUN_RAW: a chunk header's room, then the run's data. */
        uint8_t *raw;
} Writer;

static void put_le16(uint8_t *p, uint16_t v) {
        p[0] = (uint8_t) v;
        p[1] = (uint8_t) (v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v) {
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t) (v >> (8 * i));
}

bool simg_block_is_fill(const uint8_t *p, size_t n, uint32_t *ret_value) {
        uint32_t v;

        memcpy(&v, p, 4);
        /* Compared 4 bytes against the previous 4, the whole block matches
         * its first word; memcmp of the block against itself shifted by
         * one word does that at memcmp's speed. */
        if (memcmp(p, p + 4, n - 4) != 0)
                return false;
        *ret_value = get_le32(p);
        return true;
}

static int out_write(Writer *w, const void *buf, size_t n, Diag *d) {
        int r = w->o->write(w->o->write_ctx, buf, n, w->out);
        if (r < 0)
                return diag_set(d, r, "%s: cannot write at byte %" PRIu64 ": %s", w->o->output_name, w->out,
                                strerror(-r));
        w->out += n;
        return 0;
}

static void chunk_header(uint8_t *p, uint16_t type, uint32_t blocks, uint32_t total) {
        put_le16(p, type);
        put_le16(p + 2, 0);
        put_le32(p + 4, blocks);
        put_le32(p + 8, total);
}

static int emit_dont_care(Writer *w, uint64_t blocks, Diag *d) {
        uint8_t h[SIMG_CHUNK_HDR_SZ];

        if (blocks == 0)
                return 0;
        /* total_blks fits in 32 bits, so any run of its blocks does. */
        chunk_header(h, SIMG_CHUNK_DONT_CARE, (uint32_t) blocks, SIMG_CHUNK_HDR_SZ);
        if (w->o->crc)
                w->crc = simg_crc32_zeros(w->crc, blocks * w->bs);
        w->info->dont_care_chunks++;
        w->info->dont_care_blocks += blocks;
        w->chunks++;
        return out_write(w, h, sizeof(h), d);
}

/* Ends the current RAW or FILL run with its chunk. */
static int flush_run(Writer *w, Diag *d) {
        RunKind kind = w->kind;
        uint64_t count = w->count;

        w->kind = RUN_NONE;
        w->count = 0;
        if (kind == RUN_NONE || count == 0)
                return 0;
        w->chunks++;
        if (kind == RUN_FILL) {
                uint8_t h[SIMG_CHUNK_HDR_SZ + 4];
                chunk_header(h, SIMG_CHUNK_FILL, (uint32_t) count, sizeof(h));
                put_le32(h + SIMG_CHUNK_HDR_SZ, w->fill);
                w->info->fill_chunks++;
                w->info->fill_blocks += count;
                if (w->fill == 0)
                        w->info->fill_zero_blocks += count;
                return out_write(w, h, sizeof(h), d);
        }
        size_t len = (size_t) (count * w->bs);
        chunk_header(w->raw, SIMG_CHUNK_RAW, (uint32_t) count, (uint32_t) (SIMG_CHUNK_HDR_SZ + len));
        w->info->raw_chunks++;
        w->info->raw_blocks += count;
        return out_write(w, w->raw, SIMG_CHUNK_HDR_SZ + len, d);
}

static int add_block(Writer *w, const uint8_t *p, Diag *d) {
        uint32_t v;
        int r;

        if (w->o->crc)
                w->crc = simg_crc32(w->crc, p, w->bs);
        if (simg_block_is_fill(p, w->bs, &v)) {
                if (w->kind != RUN_FILL || w->fill != v) {
                        r = flush_run(w, d);
                        if (r < 0)
                                return r;
                        w->kind = RUN_FILL;
                        w->fill = v;
                }
                w->count++;
                return 0;
        }
        if (w->kind != RUN_RAW || w->count == w->max_raw_blocks) {
                r = flush_run(w, d);
                if (r < 0)
                        return r;
                w->kind = RUN_RAW;
        }
        memcpy(w->raw + SIMG_CHUNK_HDR_SZ + w->count * w->bs, p, w->bs);
        w->count++;
        return 0;
}

/* The mapped blocks [start, end), read in batches; the image's last block
 * may be partial, and is padded with zeros. */
static int add_run(Writer *w, uint8_t *buf, size_t batch, uint64_t start, uint64_t end, uint64_t image_size,
                   Diag *d) {
        const SimgWriteOptions *o = w->o;

        for (uint64_t b = start; b < end;) {
                uint64_t n = end - b < batch / w->bs ? end - b : batch / w->bs;
                uint64_t off = b * w->bs;
                size_t want = (size_t) (n * w->bs);
                size_t need = off + want <= image_size ? want : (size_t) (image_size - off);
                size_t got = 0;
                while (got < need) {
                        ssize_t k = o->read(o->read_ctx, buf + got, need - got, off + got);
                        if (k < 0)
                                return diag_set(d, (int) k, "%s: read error at byte %" PRIu64 ": %s", o->image_name,
                                                off + got, strerror((int) -k));
                        if (k == 0)
                                return diag_set(d, -EIO,
                                                "%s: the image ends at byte %" PRIu64 ", before its size (%" PRIu64
                                                " bytes): was it changed while it was read? run again",
                                                o->image_name, off + got, image_size);
                        got += (size_t) k;
                }
                memset(buf + need, 0, want - need);
                for (uint64_t i = 0; i < n; i++) {
                        int r = add_block(w, buf + i * w->bs, d);
                        if (r < 0)
                                return r;
                }
                b += n;
        }
        return 0;
}

int simg_write(uint64_t image_size, const Extents *mapped, const SimgWriteOptions *o, SimgWriteResult *ret,
               Diag *d) {
        _cleanup_extents_ Extents blocks = EXTENTS_INIT;
        _cleanup_free_ uint8_t *buf = NULL, *raw = NULL;
        SimgWriteResult res = {};
        uint32_t bs = o->block_size ? o->block_size : 4096;
        uint64_t max_raw = o->max_raw ? o->max_raw : SIMG_MAX_RAW_DEFAULT;
        int r;

        if (!is_pow2(bs) || bs < 512 || bs > (1u << 20))
                return diag_set(d, -EINVAL, "%s: a sparse image's block size is a power of two from 512 to 1 MiB, "
                                "not %" PRIu32, o->output_name, bs);
        /* A RAW chunk's total_sz is 32 bits, and holds one block at least. */
        if (max_raw < bs || max_raw > UINT32_MAX - SIMG_CHUNK_HDR_SZ)
                return diag_set(d, -EINVAL, "%s: a RAW chunk of %" PRIu64 " bytes cannot hold %" PRIu32 "-byte blocks",
                                o->output_name, max_raw, bs);
        uint64_t total = div_round_up(image_size, bs);
        if (total > UINT32_MAX)
                return diag_set(d, -EFBIG,
                                "%s: %" PRIu64 " blocks of %" PRIu32 " bytes: a sparse image holds 2^32-1 at most: "
                                "choose a larger --simg-block-size",
                                o->image_name, total, bs);
        r = extents_to_blocks(&blocks, mapped, bs);
        if (r >= 0)
                r = extents_clip(&blocks, 0, total);
        size_t batch = READ_BATCH < bs ? bs : READ_BATCH;
        max_raw -= max_raw % bs;
        if (r >= 0) {
                buf = malloc(batch);
                raw = malloc(SIMG_CHUNK_HDR_SZ + max_raw);
        }
        if (r < 0 || !buf || !raw)
                return diag_set(d, -ENOMEM, "out of memory");

        Writer w = {
                .o = o,
                .bs = bs,
                .max_raw_blocks = max_raw / bs,
                .out = SIMG_FILE_HDR_SZ,
                .info = &res.info,
                .raw = raw,
        };
        uint64_t prev = 0;
        EXTENTS_FOREACH(x, &blocks) {
                r = emit_dont_care(&w, x->start - prev, d);
                if (r >= 0)
                        r = add_run(&w, buf, batch, x->start, x->end, image_size, d);
                /* A gap follows every mapped run (the set's runs never
                 * touch), or the end. */
                if (r >= 0)
                        r = flush_run(&w, d);
                if (r < 0)
                        return r;
                prev = x->end;
        }
        r = emit_dont_care(&w, total - prev, d);
        if (r >= 0 && o->crc) {
                uint8_t h[SIMG_CHUNK_HDR_SZ + 4];
                chunk_header(h, SIMG_CHUNK_CRC32, 0, sizeof(h));
                put_le32(h + SIMG_CHUNK_HDR_SZ, w.crc);
                res.info.crc_chunks++;
                w.chunks++;
                r = out_write(&w, h, sizeof(h), d);
        }
        if (r < 0)
                return r;
        if (w.chunks > UINT32_MAX)
                return diag_set(d, -EFBIG, "%s: more than 2^32-1 chunks: choose a larger --simg-block-size",
                                o->output_name);

        uint8_t h[SIMG_FILE_HDR_SZ];
        put_le32(h, SIMG_MAGIC);
        put_le16(h + 4, 1);
        put_le16(h + 6, 0);
        put_le16(h + 8, SIMG_FILE_HDR_SZ);
        put_le16(h + 10, SIMG_CHUNK_HDR_SZ);
        put_le32(h + 12, bs);
        put_le32(h + 16, (uint32_t) total);
        put_le32(h + 20, (uint32_t) w.chunks);
        put_le32(h + 24, o->crc ? w.crc : 0);
        uint64_t end = w.out;
        w.out = 0;
        r = out_write(&w, h, sizeof(h), d);
        if (r < 0)
                return r;

        res.info.major = 1;
        res.info.block_size = bs;
        res.info.total_blocks = (uint32_t) total;
        res.info.total_chunks = (uint32_t) w.chunks;
        res.info.image_checksum = o->crc ? w.crc : 0;
        res.file_size = end;
        res.padded = total * bs - image_size;
        *ret = res;
        return 0;
}
