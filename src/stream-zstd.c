/* SPDX-License-Identifier: GPL-2.0-or-later */
/* zstd through libzstd, over every frame of the file (pzstd writes one per
 * chunk) and skipping skippable frames; the content checksum, written by
 * default, is verified by the library. */
#include <zstd.h>
#include <zstd_errors.h>

#include "stream-internal.h"

typedef struct ZstdStage {
        Stage st;
        Buf in;
        bool between;          /* a frame has ended; another may follow */
        ZSTD_DCtx *z;
} ZstdStage;

static bool is_zstd_frame(const uint8_t *p, size_t n) {
        if (n < 4)
                return false;
        uint32_t m = get_le32(p);
        return m == ZSTD_MAGICNUMBER || (m & ZSTD_MAGIC_SKIPPABLE_MASK) == ZSTD_MAGIC_SKIPPABLE_START;
}

static ssize_t zstd_read(Stage *st, void *buf, size_t n, Diag *d) {
        ZstdStage *z = (ZstdStage *) st;
        size_t done = 0;

        while (done < n) {
                if (z->between) {
                        int r = buf_after_frame(&z->in, st, is_zstd_frame, d);
                        if (r <= 0)
                                return r < 0 ? r : (ssize_t) done;
                        z->between = false;
                }
                if (buf_avail(&z->in) == 0 && !z->in.eof) {
                        ssize_t k = buf_more(&z->in, d);
                        if (k < 0)
                                return k;
                }
                uint64_t in_off = buf_offset(&z->in);
                ZSTD_inBuffer zi = { buf_ptr(&z->in), buf_avail(&z->in), 0 };
                ZSTD_outBuffer zo = { (uint8_t *) buf + done, n - done, 0 };

                size_t r = ZSTD_decompressStream(z->z, &zo, &zi);

                z->in.pos += zi.pos;
                done += zo.pos;
                st->out += zo.pos;
                if (ZSTD_isError(r)) {
                        switch (ZSTD_getErrorCode(r)) {
                        case ZSTD_error_memory_allocation:
                                return stage_oom(st, d);
                        case ZSTD_error_frameParameter_windowTooLarge:
                                return stage_unsupported(st, d,
                                                         "the frame needs a window above 128 MiB "
                                                         "(zstd --long=28 or more): not decoded, to keep memory bounded");
                        default:
                                return stage_corrupt(st, d, in_off + zi.pos, ZSTD_getErrorName(r));
                        }
                }
                if (r == 0)
                        /* The frame is decoded and flushed. */
                        z->between = true;
                else if (zi.pos == 0 && zo.pos == 0) {
                        if (z->in.eof)
                                return stage_truncated(st, d, buf_offset(&z->in));
                        ssize_t k = buf_more(&z->in, d);
                        if (k < 0)
                                return k == -ENOBUFS ? stage_corrupt(st, d, in_off, "decoder stalled") : k;
                }
        }
        return (ssize_t) done;
}

static uint64_t zstd_size_hint(const Stage *st) {
        /* A frame declares only its own size, and pzstd, or cat, put
         * several in a file. */
        return UINT64_MAX;
}

static void zstd_free(Stage *st) {
        ZstdStage *z = (ZstdStage *) st;
        ZSTD_freeDCtx(z->z);
        buf_done(&z->in);
        free(z);
}

static const StageOps zstd_ops = {
        .read = zstd_read,
        .size_hint = zstd_size_hint,
        .free = zstd_free,
};

int zstd_stage_new(Stage *lower, Stream *s, const char *label, Stage **ret, Diag *d) {
        ZstdStage *z = calloc(1, sizeof(*z));
        if (!z || buf_init(&z->in, lower) < 0) {
                free(z);
                stage_free(lower);
                return diag_set(d, -ENOMEM, "%s: out of memory", s->in.name);
        }
        stage_init(&z->st, &zstd_ops, lower, s, label);
        z->st.decoder = true;
        z->z = ZSTD_createDCtx();
        if (!z->z) {
                stage_free(&z->st);
                return diag_set(d, -ENOMEM, "%s: out of memory", s->in.name);
        }
        *ret = &z->st;
        return 0;
}
