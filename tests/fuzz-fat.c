/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libFuzzer harness for the FAT probe: the input is an image holding one
 * FAT volume. The probe runs over the image as it is, as if it were a
 * truncated copy of a partition twice its size, and, when the BPB says the
 * volume is larger than the input (seeds cut to their first sectors), over
 * the input padded with zeros to the volume's size, so that the FAT scan is
 * reached. It must never crash, and a success must map only inside the
 * partition.
 *
 *   CC=clang meson setup build-fuzz -Dfuzzing=true -Db_sanitize=address,undefined -Db_lundef=false
 *   ninja -C build-fuzz tests/fuzz-fat && build-fuzz/tests/fuzz-fat -max_total_time=60 CORPUS_DIR
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "probe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void run(const uint8_t *data, size_t size, uint64_t part_size) {
        ProbeResult res = { .used = EXTENTS_INIT };
        Reader r = reader_from_mem(data, size, 0, part_size);
        int k = fsprobe_fat.collect(&r, "vfat", &res);
        if (k == 0) {
                uint64_t prev = 0;
                EXTENTS_FOREACH(x, &res.used) {
                        if (x->start < prev || x->start >= x->end || x->end > part_size)
                                abort();
                        prev = x->end;
                }
                if (res.fs_size > part_size)
                        abort();
        } else if (k > 0 || !res.how[0])
                abort();
        probe_result_done(&res);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        run(data, size, size);
        run(data, size, (uint64_t) size * 2);

        if (size < 512)
                return 0;
        uint64_t total = get_le16(data + 0x13) ? get_le16(data + 0x13) : get_le32(data + 0x20);
        uint64_t want = total * get_le16(data + 0x0B);
        if (want <= size || want > 4 << 20)
                return 0;
        uint8_t *padded = calloc(1, want);
        if (!padded)
                return 0;
        memcpy(padded, data, size);
        run(padded, want, want);
        free(padded);
        return 0;
}
