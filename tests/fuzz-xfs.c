/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libFuzzer harness for the XFS probe. XFS keeps an AGF and a bnobt in
 * every allocation group and its log in the middle of the filesystem, so
 * besides a raw image prefix the input may be sparse: "XFSSPRS\0" then
 * records of a little-endian u32 sector number (512-byte units) and the
 * sector's 512 bytes, laid out over zeros (run-fuzzer.sh makes such seeds
 * from the non-zero sectors of small mkfs.xfs images). v5 CRCs defeat
 * blind mutation, so a sparse image is probed twice: as it is, and with
 * the CRC32C of the superblock, of every AGF and of every block that
 * starts with the bnobt's magic recomputed, so that the parser behind the
 * checksums is reached. The probe must never crash, and a success must map
 * only inside the partition.
 *
 *   CC=clang meson setup build-fuzz -Dfuzzing=true -Db_sanitize=address,undefined -Db_lundef=false
 *   ninja -C build-fuzz tests/fuzz-xfs && build-fuzz/tests/fuzz-xfs -max_total_time=60 CORPUS_DIR
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "checksum.h"
#include "probe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SPARSE_MAGIC "XFSSPRS"
#define SECTOR 512
#define SPARSE_MAX (64u << 20)

static void run(const uint8_t *img, uint64_t image_size, uint64_t part_size) {
        ProbeResult res = { .used = EXTENTS_INIT };
        Reader r = reader_from_mem(img, image_size, 0, part_size);
        int k = fsprobe_xfs.collect(&r, "xfs", &res);
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

static void fix_crc(uint8_t *p, size_t len, size_t off) {
        memset(p + off, 0, 4);
        uint32_t c = crc32c(0, p, len);
        for (int i = 0; i < 4; i++)
                p[off + i] = (uint8_t) (c >> (8 * i));
}

/* Recomputes the v5 checksums the probe checks, where the geometry is
 * sane enough to find them inside end bytes. */
static void fix_crcs(uint8_t *img, uint64_t end) {
        if (end < SECTOR || get_be32(img) != 0x58465342 || (get_be16(img + 100) & 0xF) != 5)
                return;
        uint64_t bs = get_be32(img + 4), ss = get_be16(img + 102), agblocks = get_be32(img + 84), agcount = get_be32(img + 88);
        if (ss < SECTOR || ss > 32768 || ss > end || bs < ss || bs > 65536 || (bs & (bs - 1)) || agblocks == 0)
                return;
        fix_crc(img, ss, 224);
        for (uint64_t ag = 0; ag < agcount && (ag * agblocks * bs) + 2 * ss <= end; ag++)
                fix_crc(img + ag * agblocks * bs + ss, ss, 216);
        for (uint64_t at = 0; at + bs <= end; at += bs)
                if (get_be32(img + at) == 0x41423342)
                        fix_crc(img + at, bs, 52);
}

static uint8_t *sparse;
/* How far the last input wrote: only that much is reset to zeros. */
static uint64_t written_end;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 8 || memcmp(data, SPARSE_MAGIC, 8) != 0) {
                run(data, size, size);
                run(data, size, (uint64_t) size * 2);
                return 0;
        }

        if (!sparse) {
                sparse = calloc(1, SPARSE_MAX);
                if (!sparse)
                        abort();
        }
        memset(sparse, 0, written_end);
        uint64_t end = 0;
        for (size_t p = 8; p + 4 + SECTOR <= size; p += 4 + SECTOR) {
                uint64_t s = get_le32(data + p);
                if (s >= SPARSE_MAX / SECTOR)
                        continue;
                memcpy(sparse + s * SECTOR, data + p + 4, SECTOR);
                if ((s + 1) * SECTOR > end)
                        end = (s + 1) * SECTOR;
        }
        /* The size the superblock claims, so that the last sector exists. */
        if (end >= SECTOR && get_be32(sparse) == 0x58465342) {
                uint64_t want = get_be64(sparse + 8) * get_be32(sparse + 4);
                if (want > end && want <= SPARSE_MAX)
                        end = want;
        }
        written_end = end;
        if (end == 0)
                return 0;
        run(sparse, end, end);
        fix_crcs(sparse, end);
        run(sparse, end, end);
        run(sparse, end, end + end / 2);
        return 0;
}
