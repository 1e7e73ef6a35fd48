/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libFuzzer harness for the F2FS probe. The smallest F2FS mkfs.f2fs makes
 * is 56 MiB with its main area 16 MiB in, so besides a raw image prefix the
 * input may be sparse: "F2FSSPRS" then records of a little-endian u32
 * block number (4 KiB units) and the block's 4096 bytes, laid out over
 * zeros (run-fuzzer.sh makes such seeds from the non-zero blocks of small
 * sloaded volumes). The superblock and checkpoint CRCs defeat blind
 * mutation, so the sparse image is probed twice: as it is, and with both
 * superblocks' and every checkpoint block's CRC recomputed, so that the SIT
 * and roll-forward code behind them is reached. The probe must never
 * crash, and a success must map only inside the partition.
 *
 *   CC=clang meson setup build-fuzz -Dfuzzing=true -Db_sanitize=address,undefined -Db_lundef=false
 *   ninja -C build-fuzz tests/fuzz-f2fs && build-fuzz/tests/fuzz-f2fs -max_total_time=60 CORPUS_DIR
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "checksum.h"
#include "probe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SPARSE_MAGIC "F2FSSPRS"
#define BLOCK 4096
#define SPARSE_MAX (128u << 20)
#define MAGIC 0xF2F52010u

static void run(const uint8_t *img, uint64_t image_size, uint64_t part_size) {
        ProbeResult res = { .used = EXTENTS_INIT };
        Reader r = reader_from_mem(img, image_size, 0, part_size);
        int k = fsprobe_f2fs.collect(&r, "f2fs", &res);
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

static void put_crc(uint8_t *p, uint32_t c) {
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t) (c >> (8 * i));
}

/* The partition size the superblock claims, if it fits max. */
static uint64_t claimed_size(const uint8_t *img, uint64_t size, uint64_t max) {
        if (size < 2 * BLOCK || get_le32(img + 1024) != MAGIC)
                return 0;
        uint64_t blocks = get_le64(img + 1024 + 36);
        return blocks <= max / BLOCK ? blocks * BLOCK : 0;
}

static uint8_t *sparse;
static uint32_t *written;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        size_t n = 0;

        if (size < 8 || memcmp(data, SPARSE_MAGIC, 8) != 0) {
                uint64_t claimed = claimed_size(data, size, 1ULL << 40);
                run(data, size, size);
                run(data, size, claimed > size ? claimed : (uint64_t) size * 2);
                return 0;
        }

        if (!sparse) {
                sparse = calloc(1, SPARSE_MAX);
                written = calloc(SPARSE_MAX / BLOCK, sizeof(*written));
                if (!sparse || !written)
                        abort();
        }
        uint64_t end = 0;
        for (size_t off = 8; off + 4 + BLOCK <= size && n < SPARSE_MAX / BLOCK; off += 4 + BLOCK) {
                uint32_t blk = get_le32(data + off);
                if (blk >= SPARSE_MAX / BLOCK)
                        continue;
                memcpy(sparse + (size_t) blk * BLOCK, data + off + 4, BLOCK);
                written[n++] = blk;
                if ((uint64_t) (blk + 1) * BLOCK > end)
                        end = (uint64_t) (blk + 1) * BLOCK;
        }
        uint64_t claimed = claimed_size(sparse, SPARSE_MAX, SPARSE_MAX);
        uint64_t part = claimed > end ? claimed : end;
        if (part >= 2 * BLOCK) {
                run(sparse, part, part);

                /* Every checksum made to match: superblocks (when they carry
                 * one) and the blocks of both checkpoint segments. */
                for (unsigned i = 0; i < 2; i++) {
                        uint8_t *sb = sparse + i * BLOCK + 1024;
                        if (get_le32(sb) == MAGIC && get_le32(sb + 2180) & 0x800)
                                put_crc(sb + 3068, crc32_raw(MAGIC, sb, 3068));
                }
                uint64_t cp = get_le32(sparse + 1024 + 76);
                for (size_t i = 0; i < n; i++) {
                        uint64_t blk = written[i];
                        if (blk < cp || blk >= cp + 1024)
                                continue;
                        uint8_t *b = sparse + blk * BLOCK;
                        uint32_t off = get_le32(b + 164);
                        if (off < 192 || off > 4092 || off % 4)
                                continue;
                        uint32_t crc = crc32_raw(MAGIC, b, off);
                        if (off < 4092)
                                crc = crc32_raw(crc, b + off + 4, BLOCK - off - 4);
                        put_crc(b + off, crc);
                }
                run(sparse, part, part);
        }
        /* Back to zeros for the next input: only what this one wrote. */
        for (size_t i = 0; i < n; i++)
                memset(sparse + (size_t) written[i] * BLOCK, 0, BLOCK);
        return 0;
}
