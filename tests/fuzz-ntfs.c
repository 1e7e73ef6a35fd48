/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libFuzzer harness for the NTFS probe. The input is a raw image prefix
 * (probed as it is, as a truncated copy of a partition twice its size,
 * and padded with zeros to the size its boot sector claims), or sparse:
 * "NTFSSPRS" then records of a little-endian u32 sector number (512-byte
 * units) and the sector's 512 bytes, laid over 0xFF. 0xFF, not zeros:
 * mkfs.ntfs fills $LogFile with it, and an emptied log is what lets the
 * probe go on to $Bitmap; run-fuzzer.sh makes such seeds from the sectors
 * of small mkfs.ntfs images that are neither all zeros nor all 0xFF. The
 * probe must never crash, and a success must map only inside the
 * partition.
 *
 *   CC=clang meson setup build-fuzz -Dfuzzing=true -Db_sanitize=address,undefined -Db_lundef=false
 *   ninja -C build-fuzz tests/fuzz-ntfs && build-fuzz/tests/fuzz-ntfs -max_total_time=60 CORPUS_DIR
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "probe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SPARSE_MAGIC "NTFSSPRS"
#define SECTOR 512
#define SPARSE_MAX (16u << 20)

static void run(const uint8_t *img, uint64_t image_size, uint64_t part_size) {
        ProbeResult res = { .used = EXTENTS_INIT };
        Reader r = reader_from_mem(img, image_size, 0, part_size);
        int k = fsprobe_ntfs.collect(&r, "ntfs", &res);
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

/* The bytes the boot sector says the volume and its backup boot sector
 * take, or 0. */
static uint64_t claimed_size(const uint8_t *img, size_t size) {
        if (size < SECTOR)
                return 0;
        uint64_t sectors = get_le64(img + 0x28), bps = get_le16(img + 0x0B);
        if (bps == 0 || sectors >= SPARSE_MAX / bps)
                return 0;
        return (sectors + 1) * bps;
}

static uint8_t *sparse;
/* How far the last input wrote: only that much is reset to 0xFF. */
static uint64_t written_end;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 8 || memcmp(data, SPARSE_MAGIC, 8) != 0) {
                run(data, size, size);
                run(data, size, (uint64_t) size * 2);
                uint64_t want = claimed_size(data, size);
                if (want <= size || want > (4u << 20))
                        return 0;
                uint8_t *padded = calloc(1, want);
                if (!padded)
                        return 0;
                memcpy(padded, data, size);
                run(padded, want, want);
                free(padded);
                return 0;
        }

        if (!sparse) {
                sparse = malloc(SPARSE_MAX);
                if (!sparse)
                        abort();
                written_end = SPARSE_MAX;
        }
        memset(sparse, 0xFF, written_end);
        uint64_t end = 0;
        for (size_t p = 8; p + 4 + SECTOR <= size; p += 4 + SECTOR) {
                uint64_t s = get_le32(data + p);
                if (s >= SPARSE_MAX / SECTOR)
                        continue;
                memcpy(sparse + s * SECTOR, data + p + 4, SECTOR);
                if ((s + 1) * SECTOR > end)
                        end = (s + 1) * SECTOR;
        }
        written_end = end;
        uint64_t want = claimed_size(sparse, end);
        if (want > end)
                end = want;
        if (end == 0)
                return 0;
        run(sparse, end, end);
        run(sparse, end, end + end / 2);
        return 0;
}
