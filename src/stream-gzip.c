/* SPDX-License-Identifier: GPL-2.0-or-later */
/* gzip through ISA-L's inflate, several times zlib's speed. Every member
 * (pigz and "cat a.gz b.gz" write several) has its CRC-32 and length
 * checked against its trailer. */
#include <isa-l.h>
#include <limits.h>

#include "stream-internal.h"

typedef struct GzipStage {
        Stage st;
        Buf in;
        bool between;          /* a member has ended; another may follow */
        struct inflate_state z;
} GzipStage;

static bool is_gzip_member(const uint8_t *p, size_t n) {
        return n >= 2 && p[0] == 0x1f && p[1] == 0x8b;
}

static const char *isal_error(int r) {
        switch (r) {
        case ISAL_INVALID_BLOCK:
                return "invalid deflate block";
        case ISAL_INVALID_SYMBOL:
                return "invalid deflate symbol";
        case ISAL_INVALID_LOOKBACK:
                return "invalid back-reference distance";
        case ISAL_INVALID_WRAPPER:
                return "invalid gzip header";
        case ISAL_UNSUPPORTED_METHOD:
                return "unsupported compression method";
        case ISAL_INCORRECT_CHECKSUM:
                return "CRC-32 or length in the trailer does not match the data";
        case ISAL_NEED_DICT:
                return "needs a preset dictionary";
        default:
                return "inflate error";
        }
}

static ssize_t gzip_read(Stage *st, void *buf, size_t n, Diag *d) {
        GzipStage *g = (GzipStage *) st;
        uint8_t *out = buf;
        size_t done = 0;

        while (done < n) {
                if (g->between) {
                        int r = buf_after_frame(&g->in, st, is_gzip_member, d);
                        if (r <= 0)
                                return r < 0 ? r : (ssize_t) done;
                        isal_inflate_reset(&g->z);
                        g->z.crc_flag = ISAL_GZIP;
                        g->between = false;
                }
                if (buf_avail(&g->in) == 0 && !g->in.eof) {
                        ssize_t k = buf_more(&g->in, d);
                        if (k < 0)
                                return k;
                }
                uint64_t in_off = buf_offset(&g->in);
                size_t avail = buf_avail(&g->in);
                size_t room = n - done;
                g->z.next_in = (uint8_t *) buf_ptr(&g->in);
                g->z.avail_in = avail > UINT32_MAX ? UINT32_MAX : (uint32_t) avail;
                g->z.next_out = out + done;
                g->z.avail_out = room > (1u << 30) ? (1u << 30) : (uint32_t) room;

                int r = isal_inflate(&g->z);

                size_t used = (size_t) (g->z.next_in - buf_ptr(&g->in));
                size_t made = (size_t) (g->z.next_out - (out + done));
                g->in.pos += used;
                done += made;
                st->out += made;
                if (r != ISAL_DECOMP_OK)
                        return stage_corrupt(st, d, in_off + used, isal_error(r));
                if (g->z.block_state == ISAL_BLOCK_FINISH)
                        g->between = true;
                else if (used == 0 && made == 0) {
                        /* No progress: ISA-L wants more input than there is. */
                        if (g->in.eof)
                                return stage_truncated(st, d, buf_offset(&g->in));
                        ssize_t k = buf_more(&g->in, d);
                        if (k < 0)
                                return k == -ENOBUFS ? stage_corrupt(st, d, in_off, "decoder stalled") : k;
                }
        }
        return (ssize_t) done;
}

static uint64_t gzip_size_hint(const Stage *st) {
        /* The trailer's length is modulo 4 GiB and only of the last member. */
        return UINT64_MAX;
}

static void gzip_free(Stage *st) {
        GzipStage *g = (GzipStage *) st;
        buf_done(&g->in);
        free(g);
}

static const StageOps gzip_ops = {
        .read = gzip_read,
        .size_hint = gzip_size_hint,
        .free = gzip_free,
};

int gzip_stage_new(Stage *lower, Stream *s, const char *label, Stage **ret, Diag *d) {
        GzipStage *g = calloc(1, sizeof(*g));
        if (!g || buf_init(&g->in, lower) < 0) {
                free(g);
                stage_free(lower);
                return diag_set(d, -ENOMEM, "%s: out of memory", s->in.name);
        }
        stage_init(&g->st, &gzip_ops, lower, s, label);
        g->st.decoder = true;
        isal_inflate_init(&g->z);
        g->z.crc_flag = ISAL_GZIP;
        *ret = &g->st;
        return 0;
}
