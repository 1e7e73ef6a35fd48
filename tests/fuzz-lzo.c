/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libFuzzer harness for the lzo stage (src/stream-lzo.c): the input is an
 * .lzo file (seeds from lzop with each checksum flag, stored and compressed
 * blocks, two members, padding), read through the stream as a pipe would
 * give it. It must never crash or overrun, deliver at most the size limit,
 * and fail only with a message. Output is bounded by max_size, so that a
 * length field cannot make one input take seconds.
 *
 *   CC=clang meson setup build-fuzz -Dfuzzing=true -Db_sanitize=address,undefined -Db_lundef=false
 *   meson test -C build-fuzz --suite fuzz fuzz-lzo
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define LIMIT ((uint64_t) 8 << 20)

typedef struct Mem {
        const uint8_t *p;
        size_t len, pos;
} Mem;

/* Short reads of odd sizes, as a pipe gives them. */
static ssize_t mem_read(void *ctx, void *buf, size_t n) {
        Mem *m = ctx;
        size_t k = m->len - m->pos;
        if (k > n)
                k = n;
        if (k > 4093)
                k = 4093;
        memcpy(buf, m->p + m->pos, k);
        m->pos += k;
        return (ssize_t) k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static uint8_t *buf;
        Mem m = { data, size, 0 };
        Input in = { .name = "fuzz.lzo", .ctx = &m, .read = mem_read };
        Stream *s = NULL;
        Diag d = {};
        uint64_t total = 0;

        if (!buf && !(buf = malloc(1 << 20)))
                abort();
        if (stream_open(&in, &(StreamOptions) { .max_size = LIMIT }, &s, &d) < 0) {
                if (!d.msg[0])
                        abort();
                return 0;
        }
        for (;;) {
                ssize_t k = stream_read(s, buf, 1 << 20, &d);
                if (k < 0) {
                        if (!d.msg[0] || strchr(d.msg, '\n'))
                                abort();
                        break;
                }
                if (k == 0)
                        break;
                total += (uint64_t) k;
                if (total > LIMIT)
                        abort();
        }
        stream_free(s);
        return 0;
}
