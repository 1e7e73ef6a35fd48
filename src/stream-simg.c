/* SPDX-License-Identifier: GPL-2.0-or-later */
/* An Android sparse image read as the image it stands for (FORMATS.md §13):
 * the chunks are parsed in order, each field checked before it is used;
 * RAW chunks give their bytes, FILL chunks their value tiled, DONT_CARE
 * chunks zeros (as simg2img leaves them in a new file), and CRC32 chunks
 * are compared with the CRC of the output so far. The stage also tells
 * data from DONT_CARE (stream_next_stretch), so that a copy without a bmap
 * writes only what the chunks give. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "simg.h"
#include "stream-internal.h"

/* A block larger than this is no sparse image any tool writes (libsparse
 * uses 4096), and would make one FILL block a huge write. */
#define MAX_BLOCK_SIZE ((uint32_t) 64 << 20)
/* Reading (and checking) data that is skipped, where the input cannot seek. */
#define SCRATCH_SIZE ((size_t) 1 << 20)

typedef struct SimgStage {
        Stage st;
        SimgInfo info;
        uint64_t in;            /* bytes of the sparse file read so far */
        uint64_t image_size;    /* total_blks × blk_sz */
        uint16_t chunk_hdr_sz;
        uint32_t chunk;         /* chunks begun so far: the current one's number, from 1 */
        uint64_t chunk_at;      /* where the current chunk's header starts in the sparse file */
        uint16_t type;          /* of the current chunk */
        uint64_t remain;        /* output bytes left in it */
        uint64_t chunk_out;     /* output bytes of it given so far */
        uint32_t fill;
        uint32_t crc;
        bool crc_valid;         /* false once data was skipped by a seek */
        /* RAW data may be skipped by a seek (losing the CRC): only when
         * the caller checks what it reads by other means (a bmap's
         * checksums), or says what went unchecked (info). */
        bool seek_raw;
        bool done;              /* past the last chunk, all checked */
        uint8_t *scratch;
} SimgStage;

static const char *chunk_type_name(uint16_t t) {
        switch (t) {
        case SIMG_CHUNK_RAW:
                return "RAW";
        case SIMG_CHUNK_FILL:
                return "FILL";
        case SIMG_CHUNK_DONT_CARE:
                return "DONT_CARE";
        case SIMG_CHUNK_CRC32:
                return "CRC32";
        default:
                return "unknown";
        }
}

/* "NAME: Android sparse image (in zstd): chunk 3 of 10 (RAW, at byte 123): DETAIL: WHAT TO DO". */
static int bad(SimgStage *ss, Diag *d, int err, const char *fmt, ...) _printf_(4, 5);
static int bad(SimgStage *ss, Diag *d, int err, const char *fmt, ...) {
        char detail[256], where[96] = "";
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(detail, sizeof(detail), fmt, ap);
        va_end(ap);
        if (ss->chunk > 0)
                snprintf(where, sizeof(where), ": chunk %" PRIu32 " of %" PRIu32 " (%s, at byte %" PRIu64 ")",
                         ss->chunk, ss->info.total_chunks, chunk_type_name(ss->type), ss->chunk_at);
        return diag_set(d, err, "%s: %s%s: %s: %s", ss->st.stream->in.name, ss->st.label, where, detail,
                        err == -ENODATA ? "the file is incomplete: download it again"
                                        : "the file is damaged: download it again");
}

/* n bytes of the sparse file, all of them or an error. */
static int lower_read(SimgStage *ss, void *buf, size_t n, Diag *d) {
        size_t got = 0;
        while (got < n) {
                ssize_t k = ss->st.lower->ops->read(ss->st.lower, (uint8_t *) buf + got, n - got, d);
                if (k < 0)
                        return (int) k;
                if (k == 0)
                        return bad(ss, d, -ENODATA, "the file ends at byte %" PRIu64 ", before the chunk does",
                                   ss->in + got);
                got += (size_t) k;
        }
        ss->in += n;
        return 0;
}

/* Header bytes past the ones this reader knows are skipped, as libsparse
 * skips them. */
static int lower_discard(SimgStage *ss, size_t n, Diag *d) {
        uint8_t tmp[256];
        while (n > 0) {
                size_t k = n < sizeof(tmp) ? n : sizeof(tmp);
                int r = lower_read(ss, tmp, k, d);
                if (r < 0)
                        return r;
                n -= k;
        }
        return 0;
}

/* After the last chunk: the sums add up, nothing follows, and the whole
 * image's CRC (when the header gives one) matches. */
static int finish(SimgStage *ss, Diag *d) {
        uint8_t extra;

        if (ss->st.out != ss->image_size)
                return bad(ss, d, -EBADMSG,
                           "the %" PRIu32 " chunks give %" PRIu64 " blocks, but the header says %" PRIu32,
                           ss->info.total_chunks, ss->st.out / ss->info.block_size, ss->info.total_blocks);
        ssize_t k = ss->st.lower->ops->read(ss->st.lower, &extra, 1, d);
        if (k < 0)
                return (int) k;
        if (k > 0)
                return bad(ss, d, -EBADMSG, "data follows the last chunk, at byte %" PRIu64, ss->in);
        if (ss->info.image_checksum != 0) {
                if (!ss->crc_valid)
                        ss->info.crc_unchecked++;
                else if (ss->crc != ss->info.image_checksum)
                        return bad(ss, d, -EBADMSG,
                                   "the CRC32 of the whole image is %08" PRIx32 ", the header says %08" PRIx32,
                                   ss->crc, ss->info.image_checksum);
                else
                        ss->info.crc_checked++;
        }
        ss->done = true;
        return 0;
}

static int next_chunk(SimgStage *ss, Diag *d) {
        uint8_t h[SIMG_CHUNK_HDR_SZ], v[4];
        uint32_t bs = ss->info.block_size;
        int r;

        if (ss->chunk == ss->info.total_chunks)
                return finish(ss, d);
        ss->chunk++;
        ss->chunk_at = ss->in;
        ss->type = 0;
        r = lower_read(ss, h, sizeof(h), d);
        if (r >= 0)
                r = lower_discard(ss, ss->chunk_hdr_sz - SIMG_CHUNK_HDR_SZ, d);
        if (r < 0)
                return r;
        ss->type = get_le16(h);
        uint32_t blocks = get_le32(h + 4), total = get_le32(h + 8);
        uint64_t bytes = (uint64_t) blocks * bs, hdr = ss->chunk_hdr_sz;
        uint64_t want;
        switch (ss->type) {
        case SIMG_CHUNK_RAW:
                want = hdr + bytes;
                break;
        case SIMG_CHUNK_FILL:
        case SIMG_CHUNK_CRC32:
                want = hdr + 4;
                break;
        case SIMG_CHUNK_DONT_CARE:
                want = hdr;
                break;
        default:
                return bad(ss, d, -EBADMSG, "unknown chunk type 0x%04" PRIx16, ss->type);
        }
        if (total != want)
                return bad(ss, d, -EBADMSG, "its total size is %" PRIu32 " bytes, but %" PRIu32 " blocks of it take %" PRIu64,
                           total, blocks, want);
        if (ss->type == SIMG_CHUNK_CRC32) {
                /* libsparse ignores a CRC32 chunk's block count: so do we. */
                r = lower_read(ss, v, 4, d);
                if (r < 0)
                        return r;
                ss->info.crc_chunks++;
                if (!ss->crc_valid)
                        ss->info.crc_unchecked++;
                else if (get_le32(v) != ss->crc)
                        return bad(ss, d, -EBADMSG,
                                   "the CRC32 of the output so far (%" PRIu64 " bytes) is %08" PRIx32
                                   ", the chunk says %08" PRIx32,
                                   ss->st.out, ss->crc, get_le32(v));
                else
                        ss->info.crc_checked++;
                ss->remain = 0;
                return 0;
        }
        if (bytes > ss->image_size - ss->st.out)
                return bad(ss, d, -EBADMSG,
                           "its %" PRIu32 " blocks run past the %" PRIu32 " blocks the header gives (from block %" PRIu64 ")",
                           blocks, ss->info.total_blocks, ss->st.out / bs);
        if (ss->type == SIMG_CHUNK_FILL) {
                r = lower_read(ss, v, 4, d);
                if (r < 0)
                        return r;
                ss->fill = get_le32(v);
                ss->info.fill_chunks++;
                ss->info.fill_blocks += blocks;
                if (ss->fill == 0)
                        ss->info.fill_zero_blocks += blocks;
        } else if (ss->type == SIMG_CHUNK_RAW) {
                ss->info.raw_chunks++;
                ss->info.raw_blocks += blocks;
        } else {
                ss->info.dont_care_chunks++;
                ss->info.dont_care_blocks += blocks;
        }
        ss->remain = bytes;
        ss->chunk_out = 0;
        return 0;
}

/* The FILL value tiled over n bytes that start phase bytes into it. */
static void fill_bytes(uint8_t *p, size_t n, uint32_t value, uint64_t phase) {
        uint8_t v[4] = { (uint8_t) value, (uint8_t) (value >> 8), (uint8_t) (value >> 16), (uint8_t) (value >> 24) };
        if (value == 0) {
                memset(p, 0, n);
                return;
        }
        size_t i = 0;
        for (; i < n && i < 64; i++)
                p[i] = v[(phase + i) % 4];
        /* Then by doubling: what is written repeats every 4 bytes. */
        while (i < n) {
                size_t k = i - i % 4;
                if (k > n - i)
                        k = n - i;
                memcpy(p + i, p, k);
                i += k;
        }
}

/* Gives k ≤ remain bytes of the current chunk into buf. */
static int give(SimgStage *ss, uint8_t *buf, size_t k, Diag *d) {
        int r;

        switch (ss->type) {
        case SIMG_CHUNK_RAW:
                r = lower_read(ss, buf, k, d);
                if (r < 0)
                        return r;
                break;
        case SIMG_CHUNK_FILL:
                fill_bytes(buf, k, ss->fill, ss->chunk_out);
                break;
        default:
                memset(buf, 0, k);
        }
        if (ss->crc_valid)
                ss->crc = simg_crc32(ss->crc, buf, k);
        ss->remain -= k;
        ss->chunk_out += k;
        ss->st.out += k;
        return 0;
}

static ssize_t simg_read(Stage *st, void *buf, size_t n, Diag *d) {
        SimgStage *ss = (SimgStage *) st;
        size_t done = 0;

        while (done < n) {
                if (ss->remain == 0) {
                        if (ss->done)
                                break;
                        int r = next_chunk(ss, d);
                        if (r < 0)
                                return r;
                        continue;
                }
                size_t k = ss->remain < n - done ? (size_t) ss->remain : n - done;
                int r = give(ss, (uint8_t *) buf + done, k, d);
                if (r < 0)
                        return r;
                done += k;
        }
        return (ssize_t) done;
}

/* Moves over n bytes of the output: DONT_CARE at no cost, RAW by a seek
 * where the input can and the caller allowed it (its CRC is then unknown,
 * so later CRC32 chunks are not checked: the caller's bmap checksums cover
 * the data that is written), else read and checked like any data. */
static int simg_skip(Stage *st, uint64_t n, Diag *d) {
        SimgStage *ss = (SimgStage *) st;

        while (n > 0) {
                if (ss->remain == 0) {
                        if (ss->done)
                                return bad(ss, d, -ENODATA, "the image ends at byte %" PRIu64 ", before byte %" PRIu64,
                                           st->out, st->out + n);
                        int r = next_chunk(ss, d);
                        if (r < 0)
                                return r;
                        continue;
                }
                uint64_t k = ss->remain < n ? ss->remain : n;
                /* DONT_CARE and FILL at the cost of their CRC, in
                 * O(log k): a chunk of 12 or 16 bytes may stand for 2^58
                 * bytes. */
                if (ss->type == SIMG_CHUNK_DONT_CARE || ss->type == SIMG_CHUNK_FILL) {
                        if (ss->crc_valid)
                                ss->crc = ss->type == SIMG_CHUNK_FILL
                                                  ? simg_crc32_fill(ss->crc, ss->fill, ss->chunk_out, k)
                                                  : simg_crc32_zeros(ss->crc, k);
                        ss->remain -= k;
                        ss->chunk_out += k;
                        st->out += k;
                        n -= k;
                        continue;
                }
                if (ss->type == SIMG_CHUNK_RAW && ss->seek_raw && st->lower->ops->skip) {
                        int r = st->lower->ops->skip(st->lower, k, d);
                        if (r >= 0) {
                                ss->in += k;
                                ss->crc_valid = false;
                                ss->remain -= k;
                                ss->chunk_out += k;
                                st->out += k;
                                n -= k;
                                continue;
                        }
                        if (r != -ESPIPE)
                                return r;
                }
                if (!ss->scratch && !(ss->scratch = malloc(SCRATCH_SIZE)))
                        return stage_oom(st, d);
                size_t piece = k < SCRATCH_SIZE ? (size_t) k : SCRATCH_SIZE;
                int r = give(ss, ss->scratch, piece, d);
                if (r < 0)
                        return r;
                n -= piece;
        }
        return 0;
}

static int simg_extent(Stage *st, uint64_t *ret_len, bool *ret_data, Diag *d) {
        SimgStage *ss = (SimgStage *) st;

        while (ss->remain == 0 && !ss->done) {
                int r = next_chunk(ss, d);
                if (r < 0)
                        return r;
        }
        *ret_len = ss->remain;
        *ret_data = ss->type != SIMG_CHUNK_DONT_CARE;
        return 0;
}

static uint64_t simg_size_hint(const Stage *st) {
        return ((const SimgStage *) st)->image_size;
}

static void simg_free(Stage *st) {
        free(((SimgStage *) st)->scratch);
        free(st);
}

static const StageOps simg_ops = {
        .read = simg_read,
        .skip = simg_skip,
        .extent = simg_extent,
        .size_hint = simg_size_hint,
        .free = simg_free,
};

const SimgInfo *simg_stage_info(const Stage *st) {
        return st && st->ops == &simg_ops ? &((const SimgStage *) st)->info : NULL;
}

void simg_stage_allow_seek(Stage *st) {
        if (st && st->ops == &simg_ops)
                ((SimgStage *) st)->seek_raw = true;
}

int simg_stage_new(Stage *lower, Stream *s, const char *label, Stage **ret, Diag *d) {
        uint8_t h[SIMG_FILE_HDR_SZ];
        SimgStage *ss = calloc(1, sizeof(*ss));
        int r;

        if (!ss) {
                stage_free(lower);
                return diag_set(d, -ENOMEM, "%s: out of memory", s->in.name);
        }
        stage_init(&ss->st, &simg_ops, lower, s, label);
        /* Its CRC32 chunks check its output, as a decoder's checksums do. */
        ss->st.decoder = true;
        ss->crc_valid = true;
        r = lower_read(ss, h, sizeof(h), d);
        if (r < 0)
                goto fail;
        SimgInfo *i = &ss->info;
        i->major = get_le16(h + 4);
        i->minor = get_le16(h + 6);
        uint16_t file_hdr_sz = get_le16(h + 8);
        ss->chunk_hdr_sz = get_le16(h + 10);
        i->block_size = get_le32(h + 12);
        i->total_blocks = get_le32(h + 16);
        i->total_chunks = get_le32(h + 20);
        i->image_checksum = get_le32(h + 24);
        if (i->major != 1)
                r = bad(ss, d, -EPROTONOSUPPORT, "major version %" PRIu16 ", only 1 is known", i->major);
        else if (file_hdr_sz < SIMG_FILE_HDR_SZ || ss->chunk_hdr_sz < SIMG_CHUNK_HDR_SZ)
                r = bad(ss, d, -EBADMSG, "header sizes %" PRIu16 " and %" PRIu16 ", at least %u and %u", file_hdr_sz,
                        ss->chunk_hdr_sz, SIMG_FILE_HDR_SZ, SIMG_CHUNK_HDR_SZ);
        else if (i->block_size < 4 || i->block_size % 4 != 0 || i->block_size > MAX_BLOCK_SIZE)
                r = bad(ss, d, -EBADMSG, "block size %" PRIu32 ": not a multiple of 4 from 4 to 64 MiB",
                        i->block_size);
        else if (i->total_blocks == 0)
                r = bad(ss, d, -EBADMSG, "the header gives 0 blocks: the image is empty");
        if (r >= 0)
                r = lower_discard(ss, file_hdr_sz - SIMG_FILE_HDR_SZ, d);
        if (r < 0)
                goto fail;
        ss->image_size = (uint64_t) i->total_blocks * i->block_size;
        *ret = &ss->st;
        return 0;
fail:
        stage_free(&ss->st);
        return r;
}
