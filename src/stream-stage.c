/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The toolkit every stage is built from: the parts all stages share (their
 * chain, their messages), the buffer a decoder reads its input through, and
 * the input stage at the bottom of every chain. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "stream-internal.h"

/* ---- Stages: common parts ---- */

void stage_init(Stage *st, const StageOps *ops, Stage *lower, Stream *s, const char *label) {
        st->ops = ops;
        st->lower = lower;
        st->stream = s;
        snprintf(st->label, sizeof(st->label), "%s", label);
        st->out = 0;
        st->decoder = false;
}

void stage_free(Stage *st) {
        while (st) {
                Stage *lower = st->lower;
                st->ops->free(st);
                st = lower;
        }
}

uint64_t stream_image_offset(const Stream *s) {
        return s->image ? s->image->out : 0;
}

const char *stage_where(const Stage *st, char *buf, size_t size) {
        const Stream *s = st->stream;
        if (s->container && st != s->image)
                snprintf(buf, size, "%s byte %" PRIu64 ", image byte %" PRIu64, s->container, st->out,
                         stream_image_offset(s));
        else
                snprintf(buf, size, "image byte %" PRIu64, stream_image_offset(s));
        return buf;
}

int stage_corrupt(Stage *st, Diag *d, uint64_t in_off, const char *detail) {
        char where[96];
        return diag_set(d, -EBADMSG,
                        "%s: corrupt %s data at compressed byte %" PRIu64 " (%s)%s%s: the file is damaged: "
                        "download it again",
                        st->stream->in.name, st->label, in_off, stage_where(st, where, sizeof(where)),
                        detail ? ": " : "", detail ? detail : "");
}

int stage_truncated(Stage *st, Diag *d, uint64_t in_off) {
        char where[96];
        return diag_set(d, -ENODATA,
                        "%s: %s data ends early, at compressed byte %" PRIu64
                        " (%s): the file is incomplete: download it again",
                        st->stream->in.name, st->label, in_off, stage_where(st, where, sizeof(where)));
}

int stage_unsupported(Stage *st, Diag *d, const char *detail) {
        return diag_set(d, -EPROTONOSUPPORT, "%s: %s: %s", st->stream->in.name, st->label, detail);
}

int stage_oom(Stage *st, Diag *d) {
        return diag_set(d, -ENOMEM, "%s: out of memory decoding %s data", st->stream->in.name, st->label);
}

/* ---- Buffers between stages ---- */

int buf_init(Buf *b, Stage *lower) {
        *b = (Buf) { .lower = lower, .cap = STREAM_BUF_SIZE };
        b->data = malloc(b->cap);
        return b->data ? 0 : -ENOMEM;
}

void buf_done(Buf *b) {
        free(b->data);
        b->data = NULL;
}

ssize_t buf_more(Buf *b, Diag *d) {
        if (b->eof)
                return 0;
        if (b->pos > 0) {
                memmove(b->data, b->data + b->pos, b->len - b->pos);
                b->len -= b->pos;
                b->pos = 0;
        }
        if (b->len == b->cap)
                return -ENOBUFS;
        ssize_t k = b->lower->ops->read(b->lower, b->data + b->len, b->cap - b->len, d);
        if (k < 0)
                return k;
        if (k == 0)
                b->eof = true;
        b->len += (size_t) k;
        b->total += (uint64_t) k;
        return k;
}

ssize_t buf_need(Buf *b, size_t k, Diag *d) {
        while (buf_avail(b) < k && !b->eof) {
                ssize_t r = buf_more(b, d);
                if (r < 0)
                        return r;
        }
        return (ssize_t) buf_avail(b);
}

int buf_after_frame(Buf *b, Stage *st, bool (*is_frame)(const uint8_t *p, size_t n), Diag *d) {
        ssize_t r = buf_need(b, 8, d);
        if (r < 0)
                return (int) r;
        if (r == 0)
                return 0;
        if (is_frame(buf_ptr(b), (size_t) r))
                return 1;
        /* Zero bytes after the data (a file padded to a block size) are no
         * image bytes and harm nothing; anything else means damage. */
        for (;;) {
                const uint8_t *p = buf_ptr(b);
                size_t n = buf_avail(b), i = 0;
                while (i < n && p[i] == 0)
                        i++;
                b->pos += i;
                if (i < n) {
                        char where[96];
                        return diag_set(d, -EBADMSG,
                                        "%s: unexpected data after the end of the %s data, at compressed byte %" PRIu64
                                        " (%s): the file is damaged: download it again",
                                        st->stream->in.name, st->label, buf_offset(b),
                                        stage_where(st, where, sizeof(where)));
                }
                r = buf_more(b, d);
                if (r < 0)
                        return (int) r;
                if (r == 0)
                        return 0;
        }
}

/* ---- The input stage ---- */

typedef struct InputStage {
        Stage st;
        uint64_t pos;
} InputStage;

static ssize_t input_read(Stage *st, void *buf, size_t n, Diag *d) {
        InputStage *is = (InputStage *) st;
        const Input *in = &st->stream->in;
        size_t done = 0;

        while (done < n) {
                ssize_t k = in->read(in->ctx, (uint8_t *) buf + done, n - done);
                if (k < 0 && in->error)
                        return diag_set(d, (int) k, "%s", in->error(in->ctx));
                if (k < 0)
                        return diag_set(d, (int) k, "%s: read error at byte %" PRIu64 ": %s", in->name,
                                        is->pos, strerror((int) -k));
                if (k == 0)
                        break;
                done += (size_t) k;
                is->pos += (uint64_t) k;
        }
        st->out += done;
        return (ssize_t) done;
}

static int input_skip(Stage *st, uint64_t n, Diag *d) {
        InputStage *is = (InputStage *) st;
        const Input *in = &st->stream->in;

        if (!in->seek)
                return -ESPIPE;
        if (in->size > 0 && (is->pos > in->size || n > in->size - is->pos))
                return diag_set(d, -ENODATA,
                                "%s: the image ends at byte %" PRIu64 ", before byte %" PRIu64
                                ": the file is incomplete: download it again",
                                in->name, in->size, is->pos + n);
        int r = in->seek(in->ctx, is->pos + n);
        if (r < 0 && in->error)
                return diag_set(d, r, "%s", in->error(in->ctx));
        if (r < 0)
                return diag_set(d, r, "%s: cannot seek to byte %" PRIu64 ": %s", in->name, is->pos + n,
                                strerror(-r));
        is->pos += n;
        st->out += n;
        return 0;
}

static InputStage *input_stage(Stream *s) {
        Stage *st = s->top;
        while (st->lower)
                st = st->lower;
        return (InputStage *) st;
}

ssize_t stream_input_pread(Stream *s, uint64_t off, void *buf, size_t n) {
        if (!s->in.seek)
                return -ESPIPE;
        int r = s->in.seek(s->in.ctx, off);
        if (r < 0)
                return r;
        size_t done = 0;
        while (done < n) {
                ssize_t k = s->in.read(s->in.ctx, (uint8_t *) buf + done, n - done);
                if (k < 0)
                        return k;
                if (k == 0)
                        break;
                done += (size_t) k;
        }
        return (ssize_t) done;
}

int stream_input_restore(Stream *s, Diag *d) {
        uint64_t pos = input_stage(s)->pos;
        int r = s->in.seek(s->in.ctx, pos);
        if (r < 0 && s->in.error)
                return diag_set(d, r, "%s", s->in.error(s->in.ctx));
        if (r < 0)
                return diag_set(d, r, "%s: cannot seek back to byte %" PRIu64 ": %s", s->in.name, pos, strerror(-r));
        return 0;
}

static uint64_t input_size_hint(const Stage *st) {
        return st->stream->in.size > 0 ? st->stream->in.size : UINT64_MAX;
}

static void input_free(Stage *st) {
        free(st);
}

static const StageOps input_ops = {
        .read = input_read,
        .skip = input_skip,
        .size_hint = input_size_hint,
        .free = input_free,
};

int input_stage_new(Stream *s, Stage **ret) {
        InputStage *is = calloc(1, sizeof(*is));
        if (!is)
                return -ENOMEM;
        stage_init(&is->st, &input_ops, NULL, s, "raw");
        *ret = &is->st;
        return 0;
}
