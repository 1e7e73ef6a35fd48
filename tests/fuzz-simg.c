/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libFuzzer harness for the Android sparse image reader: the input is the
 * file (inputs that do not start with its magic are passed over), read
 * from memory through the stream (so detection and the stage together), once read to its end and once walked by its map
 * (stream_next_stretch, skipping DONT_CARE). It must never crash, never
 * give more bytes than its header says, and every failure must come with a
 * one-line message.
 *
 *   CC=clang meson setup build-fuzz -Dfuzzing=true -Db_sanitize=address,undefined -Db_lundef=false
 *   ninja -C build-fuzz tests/fuzz-simg && build-fuzz/tests/fuzz-simg -max_total_time=60 CORPUS_DIR
 */
#include <stdlib.h>
#include <string.h>

#include "simg.h"
#include "stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct Mem {
        const uint8_t *data;
        size_t len, pos;
} Mem;

static ssize_t mem_read(void *ctx, void *buf, size_t n) {
        Mem *m = ctx;
        if (n > m->len - m->pos)
                n = m->len - m->pos;
        memcpy(buf, m->data + m->pos, n);
        m->pos += n;
        return (ssize_t) n;
}

/* Bounded output: a header may promise 2^32 blocks of 64 MiB. */
#define MAX_OUT ((uint64_t) 64 << 20)

static void check_failure(int r, const Diag *d) {
        if (r >= 0 || !d->msg[0] || strchr(d->msg, '\n'))
                abort();
}

static void run(const uint8_t *data, size_t size, bool by_map) {
        static uint8_t buf[1 << 16];
        Mem m = { data, size, 0 };
        Input in = { .name = "f.simg", .ctx = &m, .read = mem_read, .size = size };
        Stream *s = NULL;
        Diag d = {};

        int r = stream_open(&in, NULL, &s, &d);
        if (r < 0) {
                check_failure(r, &d);
                return;
        }
        const SimgInfo *i = stream_simg_info(s);
        uint64_t limit = stream_size_hint(s);
        if (i && limit > MAX_OUT) {
                stream_free(s);
                return;
        }
        for (;;) {
                if (by_map) {
                        uint64_t len;
                        bool is_data;
                        r = stream_next_stretch(s, &len, &is_data, &d);
                        if (r < 0) {
                                check_failure(r, &d);
                                break;
                        }
                        if (len == 0)
                                break;
                        if (!is_data) {
                                r = stream_skip(s, len, &d);
                                if (r < 0) {
                                        check_failure(r, &d);
                                        break;
                                }
                                continue;
                        }
                }
                ssize_t k = stream_read(s, buf, sizeof(buf), &d);
                if (k < 0) {
                        check_failure((int) k, &d);
                        break;
                }
                if (k == 0) {
                        /* A sparse image read to its end gave exactly its size. */
                        if (i && stream_offset(s) != limit)
                                abort();
                        break;
                }
                if (i && stream_offset(s) > limit)
                        abort();
                if (!i && stream_offset(s) > MAX_OUT)
                        break;
        }
        stream_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        /* Only sparse images: the decoders and archives below have
         * harnesses and tests of their own. */
        if (size < 4 || get_le32(data) != SIMG_MAGIC)
                return 0;
        run(data, size, false);
        run(data, size, true);
        return 0;
}
