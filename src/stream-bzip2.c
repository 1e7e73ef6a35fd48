/* SPDX-License-Identifier: GPL-2.0-or-later */
/* bzip2 through libbz2, over every stream of the file (pbzip2 and lbzip2
 * write one per chunk); libbz2 checks each block's and stream's CRC. */
#include <bzlib.h>
#include <limits.h>

#include "stream-internal.h"

typedef struct Bzip2Stage {
        Stage st;
        Buf in;
        bool between;          /* a stream has ended; another may follow */
        bool live;             /* bz holds an initialised decoder */
        bz_stream bz;
} Bzip2Stage;

static bool is_bzip2_stream(const uint8_t *p, size_t n) {
        return n >= 4 && p[0] == 'B' && p[1] == 'Z' && p[2] == 'h' && p[3] >= '1' && p[3] <= '9';
}

static int bzip2_start(Bzip2Stage *b, Diag *d) {
        if (b->live) {
                BZ2_bzDecompressEnd(&b->bz);
                b->live = false;
        }
        b->bz = (bz_stream) {};
        if (BZ2_bzDecompressInit(&b->bz, 0, 0) != BZ_OK)
                return stage_oom(&b->st, d);
        b->live = true;
        return 0;
}

static ssize_t bzip2_read(Stage *st, void *buf, size_t n, Diag *d) {
        Bzip2Stage *b = (Bzip2Stage *) st;
        uint8_t *out = buf;
        size_t done = 0;
        int r;

        while (done < n) {
                if (b->between) {
                        r = buf_after_frame(&b->in, st, is_bzip2_stream, d);
                        if (r <= 0)
                                return r < 0 ? r : (ssize_t) done;
                        r = bzip2_start(b, d);
                        if (r < 0)
                                return r;
                        b->between = false;
                }
                if (buf_avail(&b->in) == 0 && !b->in.eof) {
                        ssize_t k = buf_more(&b->in, d);
                        if (k < 0)
                                return k;
                }
                uint64_t in_off = buf_offset(&b->in);
                size_t avail = buf_avail(&b->in), room = n - done;
                b->bz.next_in = (char *) buf_ptr(&b->in);
                b->bz.avail_in = avail > UINT_MAX ? UINT_MAX : (unsigned) avail;
                b->bz.next_out = (char *) out + done;
                b->bz.avail_out = room > (1u << 30) ? (1u << 30) : (unsigned) room;

                r = BZ2_bzDecompress(&b->bz);

                size_t used = (size_t) ((const uint8_t *) b->bz.next_in - buf_ptr(&b->in));
                size_t made = (size_t) ((uint8_t *) b->bz.next_out - (out + done));
                b->in.pos += used;
                done += made;
                st->out += made;
                if (r == BZ_STREAM_END)
                        b->between = true;
                else if (r == BZ_MEM_ERROR)
                        return stage_oom(st, d);
                else if (r != BZ_OK)
                        return stage_corrupt(st, d, in_off + used,
                                             r == BZ_DATA_ERROR_MAGIC ? "bad stream header" : "bad block or CRC");
                else if (used == 0 && made == 0) {
                        if (b->in.eof)
                                return stage_truncated(st, d, buf_offset(&b->in));
                        ssize_t k = buf_more(&b->in, d);
                        if (k < 0)
                                return k == -ENOBUFS ? stage_corrupt(st, d, in_off, "decoder stalled") : k;
                }
        }
        return (ssize_t) done;
}

static uint64_t bzip2_size_hint(const Stage *st) {
        return UINT64_MAX;
}

static void bzip2_free(Stage *st) {
        Bzip2Stage *b = (Bzip2Stage *) st;
        if (b->live)
                BZ2_bzDecompressEnd(&b->bz);
        buf_done(&b->in);
        free(b);
}

static const StageOps bzip2_ops = {
        .read = bzip2_read,
        .size_hint = bzip2_size_hint,
        .free = bzip2_free,
};

int bzip2_stage_new(Stage *lower, Stream *s, const char *label, Stage **ret, Diag *d) {
        Bzip2Stage *b = calloc(1, sizeof(*b));
        if (!b || buf_init(&b->in, lower) < 0) {
                free(b);
                stage_free(lower);
                return diag_set(d, -ENOMEM, "%s: out of memory", s->in.name);
        }
        stage_init(&b->st, &bzip2_ops, lower, s, label);
        b->st.decoder = true;
        int r = bzip2_start(b, d);
        if (r < 0) {
                stage_free(&b->st);
                return r;
        }
        *ret = &b->st;
        return 0;
}
