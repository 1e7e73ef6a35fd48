/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libFuzzer harness for the read-only filesystem probe: the input is a
 * partition holding a squashfs, EROFS, ISO 9660 or cramfs, and each of the
 * four readers runs over it, as the partition itself and as the first half
 * of a partition twice its size (a truncated image). The ISO reader runs
 * over a copy placed one sector into the image, since at byte 0 it keeps
 * the whole-disk rule without reading anything. It must never crash, a
 * failure must say why, and a success must map only inside the partition.
 *
 *   CC=clang meson setup build-fuzz -Dfuzzing=true -Db_sanitize=address,undefined -Db_lundef=false
 *   ninja -C build-fuzz tests/fuzz-rofs && build-fuzz/tests/fuzz-rofs -max_total_time=60 CORPUS_DIR
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "probe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ISO_BASE 512

static void run(const uint8_t *img, uint64_t image_size, uint64_t base, uint64_t part_size, const char *type) {
        ProbeResult res = { .used = EXTENTS_INIT };
        Reader r = reader_from_mem(img, image_size, base, part_size);
        int k = fsprobe_rofs.collect(&r, type, &res);
        if (k == 0) {
                uint64_t prev = 0;
                EXTENTS_FOREACH(x, &res.used) {
                        if (x->start < prev || x->start >= x->end || x->end > part_size)
                                abort();
                        prev = x->end;
                }
                if (res.fs_size > part_size || !res.how[0])
                        abort();
        } else if (k > 0 || !res.how[0])
                abort();
        probe_result_done(&res);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const char *const types[] = { "squashfs", "erofs", "cramfs" };

        for (size_t i = 0; i < ELEMENTSOF(types); i++) {
                run(data, size, 0, size, types[i]);
                run(data, size, 0, (uint64_t) size * 2, types[i]);
        }
        uint8_t *shifted = malloc(size + ISO_BASE);
        if (!shifted)
                return 0;
        memset(shifted, 0xA5, ISO_BASE);
        memcpy(shifted + ISO_BASE, data, size);
        run(shifted, size + ISO_BASE, ISO_BASE, size, "iso9660");
        run(shifted, size + ISO_BASE, ISO_BASE, (uint64_t) size * 2, "iso9660");
        free(shifted);
        return 0;
}
