/* SPDX-License-Identifier: GPL-2.0-or-later */
/* xz through liblzma's multi-threaded decoder: the blocks of a file written
 * by "xz -T" are decoded on every core; a single-block file falls back to
 * one thread by itself. Concatenated streams and the format's own stream
 * padding (multiples of four zero bytes) are accepted, other trailing
 * bytes are an error, as for xz(1). */
#include <lzma.h>

#include "stream-internal.h"

typedef struct XzStage {
        Stage st;
        Buf in;
        bool finished;
        uint64_t size;         /* from the index, or UINT64_MAX */
        lzma_stream z;
} XzStage;

static ssize_t xz_read(Stage *st, void *buf, size_t n, Diag *d) {
        XzStage *x = (XzStage *) st;
        uint8_t *out = buf;
        size_t done = 0;

        while (done < n && !x->finished) {
                if (buf_avail(&x->in) == 0 && !x->in.eof) {
                        ssize_t k = buf_more(&x->in, d);
                        if (k < 0)
                                return k;
                }
                uint64_t in_off = buf_offset(&x->in);
                x->z.next_in = buf_ptr(&x->in);
                x->z.avail_in = buf_avail(&x->in);
                x->z.next_out = out + done;
                x->z.avail_out = n - done;

                lzma_ret r = lzma_code(&x->z, x->in.eof ? LZMA_FINISH : LZMA_RUN);

                size_t used = (size_t) (x->z.next_in - buf_ptr(&x->in));
                size_t made = (size_t) (x->z.next_out - (out + done));
                x->in.pos += used;
                done += made;
                st->out += made;
                switch (r) {
                case LZMA_STREAM_END:
                        x->finished = true;
                        break;
                case LZMA_OK:
                        if (used == 0 && made == 0) {
                                if (x->in.eof)
                                        return stage_truncated(st, d, buf_offset(&x->in));
                                ssize_t k = buf_more(&x->in, d);
                                if (k < 0)
                                        return k == -ENOBUFS ? stage_corrupt(st, d, in_off, "decoder stalled") : k;
                        }
                        break;
                case LZMA_BUF_ERROR:
                        /* No progress possible with LZMA_FINISH: the input ended. */
                        return stage_truncated(st, d, buf_offset(&x->in));
                case LZMA_MEM_ERROR:
                        return stage_oom(st, d);
                case LZMA_MEMLIMIT_ERROR:
                        return stage_unsupported(st, d, "needs more memory than the limit");
                case LZMA_OPTIONS_ERROR:
                        return stage_unsupported(st, d, "uses options this liblzma does not support");
                case LZMA_FORMAT_ERROR:
                        return stage_corrupt(st, d, in_off + used, "not xz data where a stream should start");
                case LZMA_DATA_ERROR:
                        return stage_corrupt(st, d, in_off + used, NULL);
                default:
                        return stage_corrupt(st, d, in_off + used, "liblzma error");
                }
        }
        return (ssize_t) done;
}

static uint64_t xz_size_hint(const Stage *st) {
        return ((const XzStage *) st)->size;
}

/* liblzma's file-info decoder reads the stream header, then asks to seek
 * to the footer and index of each stream from the end. */
static uint64_t index_size(Stream *s) {
        _cleanup_free_ uint8_t *buf = malloc(64 << 10);
        lzma_stream fs = LZMA_STREAM_INIT;
        lzma_index *idx = NULL;
        uint64_t pos = 0, size = UINT64_MAX;

        if (!buf || lzma_file_info_decoder(&fs, &idx, 64 << 20, s->in.size) != LZMA_OK)
                return UINT64_MAX;
        for (unsigned rounds = 0; rounds < 4096; rounds++) {
                if (fs.avail_in == 0 && pos < s->in.size) {
                        ssize_t k = stream_input_pread(s, pos, buf, 64 << 10);
                        if (k <= 0)
                                break;
                        fs.next_in = buf;
                        fs.avail_in = (size_t) k;
                        pos += (uint64_t) k;
                }
                lzma_ret r = lzma_code(&fs, pos >= s->in.size ? LZMA_FINISH : LZMA_RUN);
                if (r == LZMA_SEEK_NEEDED) {
                        pos = fs.seek_pos;
                        fs.avail_in = 0;
                        continue;
                }
                if (r == LZMA_STREAM_END) {
                        size = lzma_index_uncompressed_size(idx);
                        break;
                }
                if (r != LZMA_OK)
                        break;
        }
        lzma_end(&fs);
        if (idx)
                lzma_index_end(idx, NULL);
        return size;
}

int xz_stage_read_index(Stage *st, Diag *d) {
        XzStage *x = (XzStage *) st;
        x->size = index_size(st->stream);
        return stream_input_restore(st->stream, d);
}

static void xz_free(Stage *st) {
        XzStage *x = (XzStage *) st;
        lzma_end(&x->z);
        buf_done(&x->in);
        free(x);
}

static const StageOps xz_ops = {
        .read = xz_read,
        .size_hint = xz_size_hint,
        .free = xz_free,
};

int xz_stage_new(Stage *lower, Stream *s, const char *label, Stage **ret, Diag *d) {
        XzStage *x = calloc(1, sizeof(*x));
        if (!x || buf_init(&x->in, lower) < 0) {
                free(x);
                stage_free(lower);
                return diag_set(d, -ENOMEM, "%s: out of memory", s->in.name);
        }
        stage_init(&x->st, &xz_ops, lower, s, label);
        x->st.decoder = true;
        x->z = (lzma_stream) LZMA_STREAM_INIT;
        x->size = UINT64_MAX;

        /* Threads hold a block each (24 MiB at xz -6), in and out: a quarter
         * of the RAM at most, as xz itself allows, and never above 1 GiB;
         * past the limit the decoder uses fewer threads, never fails. */
        uint64_t limit = lzma_physmem() / 4;
        if (limit == 0 || limit > ((uint64_t) 1 << 30))
                limit = (uint64_t) 1 << 30;
        lzma_mt mt = {
                .flags = LZMA_CONCATENATED,
                .threads = cpu_count(),
                .timeout = 0,
                .memlimit_threading = limit,
                .memlimit_stop = UINT64_MAX,
        };
        lzma_ret r = lzma_stream_decoder_mt(&x->z, &mt);
        if (r != LZMA_OK) {
                stage_free(&x->st);
                return r == LZMA_MEM_ERROR ? diag_set(d, -ENOMEM, "%s: out of memory", s->in.name)
                                           : diag_set(d, -EINVAL, "%s: cannot set up the xz decoder (%d)",
                                                      s->in.name, (int) r);
        }
        *ret = &x->st;
        return 0;
}
