/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A qcow2 file as the image of a stream: its virtual disk, read in guest
 * order through the qcow2 reader over the seekable input (stream-qcow2 is
 * the first and only layer: a qcow2 needs random access, so one inside a
 * compressed file or an archive is refused). Skipping is free; zero and
 * unallocated clusters are zeros made in memory, not read; contiguous
 * host clusters are read in one go (qcow2.c). */
#include <inttypes.h>
#include <string.h>

#include "qcow2.h"
#include "stream-internal.h"

typedef struct Qcow2Stage {
        Stage st;
        Qcow2 *q;
        uint64_t pos;
        char *dir;
} Qcow2Stage;

static ssize_t input_pread(void *ctx, uint64_t off, void *buf, size_t n) {
        return stream_input_pread(ctx, off, buf, n);
}

static ssize_t qcow2_stage_read(Stage *st, void *buf, size_t n, Diag *d) {
        Qcow2Stage *g = (Qcow2Stage *) st;
        uint64_t size = qcow2_size(g->q);

        if (g->pos >= size)
                return 0;
        if (n > size - g->pos)
                n = (size_t) (size - g->pos);
        int r = qcow2_pread(g->q, buf, n, g->pos, d);
        if (r < 0)
                return r;
        g->pos += n;
        st->out += n;
        return (ssize_t) n;
}

static int qcow2_stage_skip(Stage *st, uint64_t n, Diag *d) {
        Qcow2Stage *g = (Qcow2Stage *) st;
        uint64_t size = qcow2_size(g->q);

        if (n > size - g->pos)
                return diag_set(d, -ENODATA, "%s: the qcow2 image ends at byte %" PRIu64 ", before byte %" PRIu64,
                                st->stream->in.name, size, g->pos + n);
        g->pos += n;
        st->out += n;
        return 0;
}

static uint64_t qcow2_stage_size_hint(const Stage *st) {
        return qcow2_size(((const Qcow2Stage *) st)->q);
}

static void qcow2_stage_free(Stage *st) {
        Qcow2Stage *g = (Qcow2Stage *) st;
        qcow2_free(g->q);
        free(g->dir);
        free(g);
}

static const StageOps qcow2_stage_ops = {
        .read = qcow2_stage_read,
        .skip = qcow2_stage_skip,
        .size_hint = qcow2_stage_size_hint,
        .free = qcow2_stage_free,
};

int qcow2_stage_new(Stage *lower, Stream *s, Stage **ret, Diag *d) {
        const char *name = s->in.name;
        Qcow2Stage *g;

        if (!s->in.seek || s->in.size == 0) {
                stage_free(lower);
                return diag_set(d, -ESPIPE, "%s: is a qcow2 image, which is read at random, and this input cannot seek: "
                                "save it to a file first (or serve it over HTTP with ranges)",
                                name);
        }
        g = calloc(1, sizeof(*g));
        if (!g) {
                stage_free(lower);
                return diag_set(d, -ENOMEM, "%s: out of memory", name);
        }
        stage_init(&g->st, &qcow2_stage_ops, lower, s, "qcow2");
        /* A backing file is looked for beside a local file only. */
        if (s->in.local && strcmp(name, "-") != 0) {
                const char *slash = strrchr(name, '/');
                g->dir = slash ? strndup(name, slash == name ? 1 : (size_t) (slash - name)) : strdup(".");
                if (!g->dir) {
                        stage_free(&g->st);
                        return diag_set(d, -ENOMEM, "%s: out of memory", name);
                }
        }
        Qcow2Host h = { .name = name, .pread = input_pread, .ctx = s, .size = s->in.size, .dir = g->dir };
        int r = qcow2_open(&h, &g->q, d);
        if (r < 0) {
                stage_free(&g->st);
                return r;
        }
        *ret = &g->st;
        return 0;
}
