/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libFuzzer harness for the btrfs probe. btrfs keeps its trees megabytes
 * into the device, so besides a raw image prefix the input may be sparse:
 * "BTRFSPRS" then records of a little-endian u32 block number (4 KiB units)
 * and the block's 4096 bytes, laid out over zeros (run-fuzzer.sh makes such
 * seeds from the non-zero blocks of small mkfs.btrfs images). Every block
 * checksum defeats blind mutation, so the sparse image is probed twice: as
 * it is, and with the superblock's and every tree block's crc32c (a block
 * carrying the filesystem's fsid) recomputed, so that the parser behind the
 * checksum is reached. The probe must never crash, and a success must map
 * only inside the partition.
 *
 *   CC=clang meson setup build-fuzz -Dfuzzing=true -Db_sanitize=address,undefined -Db_lundef=false
 *   ninja -C build-fuzz tests/fuzz-btrfs && build-fuzz/tests/fuzz-btrfs -max_total_time=60 CORPUS_DIR
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "checksum.h"
#include "probe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SPARSE_MAGIC "BTRFSPRS"
#define BLOCK 4096
#define SPARSE_MAX (128u << 20)
#define SB 65536

static void run(const uint8_t *img, uint64_t image_size, uint64_t part_size) {
        ProbeResult res = { .used = EXTENTS_INIT };
        Reader r = reader_from_mem(img, image_size, 0, part_size);
        int k = fsprobe_btrfs.collect(&r, "btrfs", &res);
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

/* The device size the superblock claims, if it is one at all and fits max. */
static uint64_t claimed_size(const uint8_t *img, uint64_t size, uint64_t max) {
        if (size < SB + BLOCK || memcmp(img + SB + 0x40, "_BHRfS_M", 8) != 0)
                return 0;
        uint64_t dev = get_le64(img + SB + 0xc9 + 8);
        return dev <= max ? dev : 0;
}

static void put_crc(uint8_t *p, uint32_t c) {
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t) (c >> (8 * i));
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
        for (size_t off = 8; off + 4 + BLOCK <= size; off += 4 + BLOCK) {
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
        if (part >= SB + BLOCK) {
                run(sparse, part, part);

                /* crc32c filesystems: make every checksum match. */
                uint32_t nodesize = get_le32(sparse + SB + 0x94);
                const uint8_t *fsid = sparse + SB + (get_le64(sparse + SB + 0xbc) & (1u << 10) ? 0x23b : 0x20);
                if (get_le16(sparse + SB + 0xc4) == 0 && nodesize >= BLOCK && nodesize <= 65536) {
                        for (size_t i = 0; i < n; i++) {
                                uint8_t *b = sparse + (size_t) written[i] * BLOCK;
                                if ((size_t) written[i] * BLOCK == SB || (size_t) written[i] * BLOCK + nodesize > SPARSE_MAX ||
                                    memcmp(b + 0x20, fsid, 16) != 0)
                                        continue;
                                put_crc(b, crc32c(0, b + 0x20, nodesize - 0x20));
                        }
                        put_crc(sparse + SB, crc32c(0, sparse + SB + 0x20, BLOCK - 0x20));
                        run(sparse, part, part);
                }
        }
        /* Back to zeros for the next input: only what this one wrote. */
        for (size_t i = 0; i < n; i++)
                memset(sparse + (size_t) written[i] * BLOCK, 0, BLOCK);
        return 0;
}
