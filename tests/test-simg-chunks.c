/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The Android sparse image writer and reader in memory: the chunks the
 * writer makes (FILL for one repeated 32-bit value, zero blocks included;
 * RAW runs cut at the cap; DONT_CARE between mapped runs; a padded last
 * block; block sizes at both ends), read back by the stream stage to the
 * same bytes, with its map (stream_next_stretch); and the reader's refusals
 * of damaged files, each one line naming the chunk. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "simg-write.h"
#include "stream.h"

typedef struct Mem {
        uint8_t *data;
        size_t len, cap, pos;
} Mem;

static ssize_t mem_pread(void *ctx, void *buf, size_t n, uint64_t off) {
        const Mem *m = ctx;
        if (off >= m->len)
                return 0;
        if (n > m->len - off)
                n = (size_t) (m->len - off);
        memcpy(buf, m->data + off, n);
        return (ssize_t) n;
}

static int mem_pwrite(void *ctx, const void *buf, size_t n, uint64_t off) {
        Mem *m = ctx;
        if (off + n > m->cap) {
                size_t cap = (size_t) (off + n) * 2;
                uint8_t *p = realloc(m->data, cap);
                if (!p)
                        return -ENOMEM;
                memset(p + m->cap, 0, cap - m->cap);
                m->data = p;
                m->cap = cap;
        }
        memcpy(m->data + off, buf, n);
        if (off + n > m->len)
                m->len = (size_t) (off + n);
        return 0;
}

static ssize_t mem_read(void *ctx, void *buf, size_t n) {
        Mem *m = ctx;
        ssize_t k = mem_pread(m, buf, n, m->pos);
        if (k > 0)
                m->pos += (size_t) k;
        return k;
}

/* An image of 4 KiB blocks: 0-3 random, 4-5 zeros, 6 0xDDCCBBAA tiled, 7-9
 * random, 10 zeros, 11 random, and a 1000-byte tail of random data. */
#define IMG_SIZE (12 * 4096 + 1000)
static uint8_t img[IMG_SIZE];

static void make_image(void) {
        uint64_t x = 0x9E3779B97F4A7C15u;
        for (size_t i = 0; i < IMG_SIZE; i++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                img[i] = (uint8_t) x;
        }
        memset(img + 4 * 4096, 0, 2 * 4096);
        for (size_t i = 0; i < 4096; i += 4)
                memcpy(img + 6 * 4096 + i, "\xaa\xbb\xcc\xdd", 4);
        memset(img + 10 * 4096, 0, 4096);
}

static int write_simg(const Extents *mapped, uint32_t bs, uint64_t max_raw, bool crc, Mem *out,
                      SimgWriteResult *res, Diag *d) {
        Mem in = { .data = img, .len = IMG_SIZE };
        SimgWriteOptions o = {
                .block_size = bs, .crc = crc, .max_raw = max_raw,
                .read = mem_pread, .read_ctx = &in, .write = mem_pwrite, .write_ctx = out,
                .image_name = "img", .output_name = "out.simg",
        };
        *out = (Mem) {};
        return simg_write(IMG_SIZE, mapped, &o, res, d);
}

/* Reads a sparse image in memory through the stream: its bytes (all of
 * them into ret, which holds cap), or the error. */
static int read_simg(Mem *m, uint8_t *ret, size_t cap, size_t *ret_len, SimgInfo *ret_info, Diag *d) {
        Stream *s = NULL;
        Input in = { .name = "t.simg", .ctx = m, .read = mem_read, .size = m->len };
        m->pos = 0;
        int r = stream_open(&in, NULL, &s, d);
        if (r < 0)
                return r;
        size_t got = 0;
        for (;;) {
                ssize_t k = stream_read(s, ret + got, cap - got, d);
                if (k < 0) {
                        stream_free(s);
                        return (int) k;
                }
                if (k == 0)
                        break;
                got += (size_t) k;
        }
        if (ret_info)
                *ret_info = *stream_simg_info(s);
        *ret_len = got;
        stream_free(s);
        return 0;
}

static void test_fill_detection(void) {
        uint8_t b[512];
        uint32_t v = 1;
        memset(b, 0, sizeof(b));
        CHECK(simg_block_is_fill(b, sizeof(b), &v) && v == 0, "zeros are FILL 0");
        for (size_t i = 0; i < sizeof(b); i += 4)
                memcpy(b + i, "\x01\x02\x03\x04", 4);
        CHECK(simg_block_is_fill(b, sizeof(b), &v) && v == 0x04030201, "a tiled word is FILL, read little-endian");
        b[511] = 0;
        CHECK(!simg_block_is_fill(b, sizeof(b), &v), "one byte off in the last word is RAW");
        memset(b, 0x55, sizeof(b));
        b[2] = 0x56;
        CHECK(!simg_block_is_fill(b, sizeof(b), &v), "one byte off in the first word is RAW");
        CHECK_U64(simg_crc32(0, "123456789", 9), 0xcbf43926);
        CHECK_U64(simg_crc32(simg_crc32(0, "1234", 4), "56789", 5), 0xcbf43926);
        uint8_t z[1000] = {};
        CHECK_U64(simg_crc32_zeros(7, 1000), simg_crc32(7, z, 1000));
        /* The CRC over repeated bytes is computed, not run over them: the
         * same as over the bytes, at every length and phase. */
        static uint8_t big[3 * 65536 + 11];
        for (size_t n = 0; n < sizeof(big); n = n * 3 + 1)
                CHECK_U64(simg_crc32_zeros(0x12345678, n), simg_crc32(0x12345678, big, n));
        for (size_t i = 0; i < sizeof(big); i++)
                big[i] = (uint8_t) (0xDDCCBBAAu >> (8 * (i % 4)));
        for (uint64_t phase = 0; phase < 8; phase++)
                for (size_t n = 0; n + phase < sizeof(big); n = n * 5 + 1 + (size_t) phase)
                        CHECK_U64(simg_crc32_fill(99, 0xDDCCBBAAu, phase, n), simg_crc32(99, big + phase % 4, n));
        /* 2^58 bytes of zeros (a 12-byte DONT_CARE chunk can say so) at once. */
        uint32_t c58 = simg_crc32_zeros(1, UINT64_C(1) << 58);
        CHECK_U64(simg_crc32_zeros(simg_crc32_zeros(1, UINT64_C(1) << 57), UINT64_C(1) << 57), c58);
}

static void test_round_trip(void) {
        Extents mapped = EXTENTS_INIT;
        SimgWriteResult res;
        SimgInfo info;
        Mem out;
        Diag d = {};
        static uint8_t back[16 * 4096];
        size_t len;

        /* Blocks 0-7 and 10-12 (the partial tail included); 8-9 not. A
         * range that starts inside a block maps the whole block. */
        extents_add(&mapped, 100, 8 * 4096);
        extents_add(&mapped, 10 * 4096, IMG_SIZE);
        int r = write_simg(&mapped, 0, 2 * 4096, true, &out, &res, &d);
        CHECK(r == 0, "write: %s", d.msg);
        CHECK_U64(res.info.total_blocks, 13);
        CHECK_U64(res.padded, 13 * 4096 - IMG_SIZE);
        /* RAW 0-1, RAW 2-3 (cap 2 blocks), FILL 0 4-5, FILL aa 6, RAW 7,
         * DONT_CARE 8-9, FILL 0 10, RAW 11-12, CRC32. */
        CHECK_U64(res.info.raw_chunks, 4);
        CHECK_U64(res.info.raw_blocks, 7);
        CHECK_U64(res.info.fill_chunks, 3);
        CHECK_U64(res.info.fill_zero_blocks, 3);
        CHECK_U64(res.info.dont_care_chunks, 1);
        CHECK_U64(res.info.dont_care_blocks, 2);
        CHECK_U64(res.info.crc_chunks, 1);
        CHECK_U64(res.info.total_chunks, 9);
        CHECK_U64(res.file_size, out.len);
        r = read_simg(&out, back, sizeof(back), &len, &info, &d);
        CHECK(r == 0, "read: %s", d.msg);
        CHECK_U64(len, 13 * 4096);
        CHECK(memcmp(back, img, 8 * 4096) == 0, "blocks 0-7 as in the image");
        CHECK(memcmp(back + 10 * 4096, img + 10 * 4096, IMG_SIZE - 10 * 4096) == 0, "blocks 10-12 as in the image");
        bool zeros = true;
        for (size_t i = 8 * 4096; i < 10 * 4096; i++)
                zeros &= back[i] == 0;
        for (size_t i = IMG_SIZE; i < len; i++)
                zeros &= back[i] == 0;
        CHECK(zeros, "DONT_CARE and the padding read as zeros");
        CHECK_U64(info.crc_checked, 2);
        CHECK_U64(info.raw_blocks + info.fill_blocks, 11);

        /* The stretches: data 0-7 by chunk, DONT_CARE 8-9, data 10-12. */
        Stream *s = NULL;
        Input in = { .name = "t.simg", .ctx = &out, .read = mem_read };
        out.pos = 0;
        CHECK(stream_open(&in, NULL, &s, &d) == 0, "open: %s", d.msg);
        uint64_t data = 0, skipped = 0, l;
        bool is_data;
        while (s && stream_next_stretch(s, &l, &is_data, &d) == 0 && l > 0) {
                if (is_data) {
                        data += l;
                        CHECK(stream_read(s, back, (size_t) l, &d) == (ssize_t) l, "read: %s", d.msg);
                } else {
                        skipped += l;
                        CHECK(stream_skip(s, l, &d) == 0, "skip: %s", d.msg);
                }
        }
        CHECK_U64(data, 11 * 4096);
        CHECK_U64(skipped, 2 * 4096);
        stream_free(s);

        /* A flipped bit in the CRC32 chunk, in a RAW chunk's data: named. */
        out.data[out.len - 1] ^= 1;
        r = read_simg(&out, back, sizeof(back), &len, NULL, &d);
        CHECK(r == -EBADMSG, "a bad CRC32 chunk: %d", r);
        CHECK_STR_CONTAINS(d.msg, "chunk 9 of 9 (CRC32");
        out.data[out.len - 1] ^= 1;
        out.data[SIMG_FILE_HDR_SZ + SIMG_CHUNK_HDR_SZ + 5] ^= 1;
        r = read_simg(&out, back, sizeof(back), &len, NULL, &d);
        CHECK(r == -EBADMSG, "damaged data: %d", r);
        CHECK_STR_CONTAINS(d.msg, "CRC32 of the output so far");
        free(out.data);
        extents_done(&mapped);
}

static void test_block_sizes(void) {
        Extents all = EXTENTS_INIT;
        SimgWriteResult res;
        Mem out;
        Diag d = {};
        static uint8_t back[128 << 10];
        size_t len;

        extents_add(&all, 0, IMG_SIZE);
        CHECK(write_simg(&all, 512, 0, false, &out, &res, &d) == 0, "512: %s", d.msg);
        CHECK_U64(res.info.total_blocks, div_round_up(IMG_SIZE, 512));
        CHECK(read_simg(&out, back, sizeof(back), &len, NULL, &d) == 0, "read 512: %s", d.msg);
        CHECK(len >= IMG_SIZE && memcmp(back, img, IMG_SIZE) == 0, "512-byte blocks give the image back");
        free(out.data);

        /* One block of 64 KiB, larger than the image: all of it RAW. */
        CHECK(write_simg(&all, 65536, 0, false, &out, &res, &d) == 0, "64K: %s", d.msg);
        CHECK_U64(res.info.total_blocks, 1);
        CHECK_U64(res.info.raw_chunks, 1);
        CHECK_U64(res.padded, 65536 - IMG_SIZE);
        CHECK(read_simg(&out, back, sizeof(back), &len, NULL, &d) == 0, "read 64K: %s", d.msg);
        CHECK(len == 65536 && memcmp(back, img, IMG_SIZE) == 0, "a 64 KiB block gives the image back");
        free(out.data);

        CHECK(write_simg(&all, 1000, 0, false, &out, &res, &d) == -EINVAL, "1000 is no power of two");
        CHECK(write_simg(&all, 256, 0, false, &out, &res, &d) == -EINVAL, "256 is below 512");
        CHECK(write_simg(&all, 4096, 100, false, &out, &res, &d) == -EINVAL, "a cap below one block");
        free(out.data);

        /* Nothing mapped: one DONT_CARE chunk. */
        Extents none = EXTENTS_INIT;
        CHECK(write_simg(&none, 4096, 0, false, &out, &res, &d) == 0, "empty: %s", d.msg);
        CHECK_U64(res.info.total_chunks, 1);
        CHECK_U64(res.info.dont_care_blocks, 13);
        CHECK_U64(res.file_size, SIMG_FILE_HDR_SZ + SIMG_CHUNK_HDR_SZ);
        free(out.data);
        extents_done(&all);
}

static void put32(uint8_t *p, uint32_t v) {
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t) (v >> (8 * i));
}

/* Hand-made files the reader must refuse, each with one line naming what. */
static void test_refusals(void) {
        Extents some = EXTENTS_INIT;
        SimgWriteResult res;
        Mem good, m;
        Diag d = {};
        static uint8_t back[16 * 4096];
        size_t len;

        extents_add(&some, 0, 4 * 4096);
        CHECK(write_simg(&some, 4096, 0, false, &good, &res, &d) == 0, "write: %s", d.msg);
        /* RAW 0-3 at 28, DONT_CARE 4-12 after it. */
        struct {
                const char *what;
                size_t at;
                uint32_t value;
                size_t cut;
                const char *says;
        } cases[] = {
                { "total_sz one too many", 28 + 8, 12 + 4 * 4096 + 1, 0, "total size" },
                { "blk_sz not a multiple of 4", 12, 4097, 0, "block size" },
                { "total_blks one more", 16, 14, 0, "the header says 14" },
                { "total_blks one less", 16, 12, 0, "run past" },
                { "an unknown chunk type", 28, 0xCAC9, 0, "unknown chunk type" },
                { "truncated in the RAW data", 0, 0, 28 + 12 + 5000, "ends at byte" },
                { "truncated in the header", 0, 0, 20, "ends at byte" },
                { "total_chunks one more", 20, 3, 0, "ends at byte" },
                { "total_chunks one less", 20, 1, 0, "chunks give 4 blocks, but the header says 13" },
                { "major version 2", 4, 0x00000002, 0, "major version" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                m = (Mem) { .len = good.len, .cap = good.len };
                m.data = malloc(good.len);
                memcpy(m.data, good.data, good.len);
                if (cases[i].cut)
                        m.len = cases[i].cut;
                else if (cases[i].at == 4)
                        m.data[4] = 2, m.data[5] = 0;
                else
                        put32(m.data + cases[i].at, cases[i].value);
                int r = read_simg(&m, back, sizeof(back), &len, NULL, &d);
                CHECK(r < 0, "%s: accepted", cases[i].what);
                CHECK_STR_CONTAINS(d.msg, cases[i].says);
                CHECK(!strchr(d.msg, '\n'), "%s: one line", cases[i].what);
                free(m.data);
        }
        free(good.data);
        extents_done(&some);
}

int main(void) {
        make_image();
        test_fill_detection();
        test_round_trip();
        test_block_sizes();
        test_refusals();
        return check_exit("test-simg-chunks");
}
