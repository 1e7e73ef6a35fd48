/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libFuzzer harness for the qcow2 reader: the input is a qcow2 file. It is
 * opened (no backing files: no directory is given), and when it opens, its
 * virtual disk is mapped and read in pieces, bounded so that a huge virtual
 * size costs no more than a small one. Nothing may crash or read outside
 * the input; a map answer must be inside the disk and move forward; a read
 * of what the map calls zero must give zeros.
 *
 *   CC=clang meson setup build-fuzz -Dfuzzing=true -Db_sanitize=address,undefined -Db_lundef=false
 *   ninja -C build-fuzz tests/fuzz-qcow2 && build-fuzz/tests/fuzz-qcow2 -max_total_time=60 CORPUS_DIR
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mem-host.h"
#include "qcow2.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHUNK 65536
#define MAX_STEPS 256

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        /* The fuzzer's bytes are only read (mem_pread). */
        Mem m = { (uint8_t *) data, size };
        Qcow2Host h = { .name = "fuzz.qcow2", .pread = mem_pread, .ctx = &m, .size = size };
        Qcow2 *q = NULL;
        Diag d;

        if (qcow2_open(&h, &q, &d) < 0) {
                if (!d.msg[0])
                        abort();
                return 0;
        }
        uint64_t vsize = qcow2_size(q), off = 0;
        uint8_t *buf = malloc(CHUNK);
        if (!buf)
                abort();
        for (unsigned step = 0; step < MAX_STEPS && off < vsize; step++) {
                uint64_t len;
                Qcow2Kind k;
                if (qcow2_map(q, off, vsize - off, &len, &k, &d) < 0)
                        break;
                if (len == 0 || len > vsize - off)
                        abort();
                size_t n = len < CHUNK ? (size_t) len : CHUNK;
                if (qcow2_pread(q, buf, n, off, &d) == 0 && k == QCOW2_ZERO)
                        for (size_t i = 0; i < n; i++)
                                if (buf[i])
                                        abort();
                off += len;
        }
        /* Reads at a few places, across cluster boundaries. */
        for (unsigned i = 0; i < 8 && vsize > 0; i++) {
                uint64_t at = vsize / 8 * i + (i * 4093) % (vsize < 4096 ? vsize : 4096);
                size_t n = vsize - at < 9000 ? (size_t) (vsize - at) : 9000;
                if (at < vsize)
                        (void) qcow2_pread(q, buf, n, at, &d);
        }
        if (qcow2_pread(q, buf, 1, vsize, &d) != -ERANGE)
                abort();
        Qcow2Info qi;
        Qcow2Backing b;
        qcow2_get_info(q, &qi);
        /* No directory: never a backing file. */
        if (qi.backing[0] || qcow2_backing_at(q, 0, &b))
                abort();
        free(buf);
        qcow2_free(q);
        return 0;
}
