/* SPDX-License-Identifier: GPL-2.0-or-later */
/* lz4 frame format through liblz4's LZ4F, over every frame of the file;
 * LZ4F verifies the block and content checksums a frame carries (lz4(1)
 * writes the content checksum by default). */
#include <lz4frame.h>

#include "stream-internal.h"

typedef struct Lz4Stage {
        Stage st;
        Buf in;
        bool between;
        LZ4F_dctx *z;
} Lz4Stage;

static bool is_lz4_frame(const uint8_t *p, size_t n) {
        if (n < 4)
                return false;
        uint32_t m = get_le32(p);
        return m == LZ4F_MAGICNUMBER || (m & 0xFFFFFFF0u) == LZ4F_MAGIC_SKIPPABLE_START;
}

static ssize_t lz4_read(Stage *st, void *buf, size_t n, Diag *d) {
        Lz4Stage *l = (Lz4Stage *) st;
        size_t done = 0;

        while (done < n) {
                if (l->between) {
                        int r = buf_after_frame(&l->in, st, is_lz4_frame, d);
                        if (r <= 0)
                                return r < 0 ? r : (ssize_t) done;
                        l->between = false;
                }
                if (buf_avail(&l->in) == 0 && !l->in.eof) {
                        ssize_t k = buf_more(&l->in, d);
                        if (k < 0)
                                return k;
                }
                uint64_t in_off = buf_offset(&l->in);
                size_t used = buf_avail(&l->in), made = n - done;

                size_t r = LZ4F_decompress(l->z, (uint8_t *) buf + done, &made, buf_ptr(&l->in), &used, NULL);

                l->in.pos += used;
                done += made;
                st->out += made;
                if (LZ4F_isError(r))
                        return stage_corrupt(st, d, in_off + used, LZ4F_getErrorName(r));
                if (r == 0)
                        l->between = true;
                else if (used == 0 && made == 0) {
                        if (l->in.eof)
                                return stage_truncated(st, d, buf_offset(&l->in));
                        ssize_t k = buf_more(&l->in, d);
                        if (k < 0)
                                return k == -ENOBUFS ? stage_corrupt(st, d, in_off, "decoder stalled") : k;
                }
        }
        return (ssize_t) done;
}

static uint64_t lz4_size_hint(const Stage *st) {
        /* A frame's optional content size is its own, not the file's. */
        return UINT64_MAX;
}

static void lz4_free(Stage *st) {
        Lz4Stage *l = (Lz4Stage *) st;
        LZ4F_freeDecompressionContext(l->z);
        buf_done(&l->in);
        free(l);
}

static const StageOps lz4_ops = {
        .read = lz4_read,
        .size_hint = lz4_size_hint,
        .free = lz4_free,
};

int lz4_stage_new(Stage *lower, Stream *s, const char *label, Stage **ret, Diag *d) {
        Lz4Stage *l = calloc(1, sizeof(*l));
        if (!l || buf_init(&l->in, lower) < 0) {
                free(l);
                stage_free(lower);
                return diag_set(d, -ENOMEM, "%s: out of memory", s->in.name);
        }
        stage_init(&l->st, &lz4_ops, lower, s, label);
        l->st.decoder = true;
        if (LZ4F_isError(LZ4F_createDecompressionContext(&l->z, LZ4F_VERSION))) {
                l->z = NULL;
                stage_free(&l->st);
                return diag_set(d, -ENOMEM, "%s: out of memory", s->in.name);
        }
        *ret = &l->st;
        return 0;
}
