/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libFuzzer harness for the exFAT probe: the input is an image holding one
 * exFAT volume. The probe runs over the image as it is, as if it were a
 * truncated copy of a partition twice its size, and, when the boot sector
 * says the volume is larger than the input (seeds cut short), over the
 * input padded with zeros to the volume's size, so that the bitmap is
 * reached. The boot checksum is recomputed on a copy too, so that mutations
 * of the geometry get past it. It must never crash, and a success must map
 * only inside the partition.
 *
 *   CC=clang meson setup build-fuzz -Dfuzzing=true -Db_sanitize=address,undefined -Db_lundef=false
 *   ninja -C build-fuzz tests/fuzz-exfat && build-fuzz/tests/fuzz-exfat -max_total_time=60 CORPUS_DIR
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "probe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void run(const uint8_t *data, size_t size, uint64_t part_size) {
        ProbeResult res = { .used = EXTENTS_INIT };
        Reader r = reader_from_mem(data, size, 0, part_size);
        int k = fsprobe_exfat.collect(&r, "exfat", &res);
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

/* Writes the checksum of the first 11 sectors into the 12th. */
static void fix_checksum(uint8_t *img, size_t size) {
        if (size < 512 || img[108] < 9 || img[108] > 12)
                return;
        size_t bps = (size_t) 1 << img[108];
        if (size < 12 * bps)
                return;
        uint32_t sum = 0;
        for (size_t i = 0; i < 11 * bps; i++)
                if (i != 106 && i != 107 && i != 112)
                        sum = (sum >> 1 | sum << 31) + img[i];
        for (size_t i = 0; i < bps; i += 4)
                memcpy(img + 11 * bps + i, &sum, 4);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        run(data, size, size);
        run(data, size, (uint64_t) size * 2);
        if (size < 512)
                return 0;

        uint64_t want = size;
        if (data[108] >= 9 && data[108] <= 12) {
                uint64_t sectors = get_le64(data + 72);
                if (sectors <= ((uint64_t) 8 << 20) >> data[108])
                        want = sectors << data[108];
        }
        if (want < size)
                want = size;
        uint8_t *fixed = calloc(1, want);
        if (!fixed)
                return 0;
        memcpy(fixed, data, size);
        fix_checksum(fixed, want);
        run(fixed, want, want);
        free(fixed);
        return 0;
}
