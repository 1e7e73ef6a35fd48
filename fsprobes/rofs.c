/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Read-only filesystems, by their size: squashfs 4.x, EROFS, ISO 9660 and
 * cramfs are packed front to back by the tool that makes them, so every
 * byte up to the size they record is theirs and none after it. The probe
 * maps that extent in full, rounded up to 4 KiB (mksquashfs and mkfs.cramfs
 * pad the file to it), and reports the exact size as the filesystem's end:
 * scan's tail rule then judges the rest of the partition (zeros free,
 * anything else mapped, a dm-verity superblock there maps all of it, as
 * OpenWrt and Yocto images put one right after a squashfs). Offsets are
 * FORMATS.md §11. A layout that is older, in the other byte order, spread
 * over other devices, or inconsistent is mapped whole. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checksum.h"
#include "probe.h"

static const char *const types[] = { "squashfs", "erofs", "iso9660", "cramfs", NULL };

#define ROFS_ROUND 4096

/* The filesystem spans [0, size) of the partition: map it, once it is
 * known to fit the partition and to be all in the image. */
static int map_extent(const Reader *r, ProbeResult *res, uint64_t size, const char *fmt, ...) _printf_(4, 5);
static int map_extent(const Reader *r, ProbeResult *res, uint64_t size, const char *fmt, ...) {
        uint8_t last;
        va_list ap;
        int k;

        if (size == 0)
                return probe_fail(res, -EINVAL, "its recorded size is 0");
        if (size > r->size)
                return probe_fail(res, -EINVAL,
                                  "its recorded size, %" PRIu64 " bytes, reaches past the partition (%" PRIu64 " bytes)",
                                  size, r->size);
        /* A truncated image must not pass for a smaller filesystem. */
        k = reader_read(r, size - 1, &last, 1);
        if (k < 0)
                return probe_fail(res, k, "its last byte (at %" PRIu64 ") cannot be read: %s", size - 1,
                                  k == -ENODATA ? "the image ends first" : strerror(-k));

        uint64_t end = size > UINT64_MAX - (ROFS_ROUND - 1) ? size : (size + ROFS_ROUND - 1) / ROFS_ROUND * ROFS_ROUND;
        if (end > r->size)
                end = r->size;
        k = extents_add(&res->used, 0, end);
        if (k < 0)
                return k;
        res->fs_size = size;
        va_start(ap, fmt);
        vsnprintf(res->how, sizeof(res->how), fmt, ap);
        va_end(ap);
        return 0;
}

/* ---------------------------------------------------------------- squashfs */

#define SQUASHFS_SUPER_SIZE 96
#define SQUASHFS_INVALID UINT64_MAX     /* a table the filesystem does not have */

static const char *const squashfs_compressors[] = { NULL, "gzip", "lzma", "lzo", "xz", "lz4", "zstd" };

static int squashfs_collect(const Reader *r, ProbeResult *res) {
        uint8_t sb[SQUASHFS_SUPER_SIZE];
        int k = reader_read(r, 0, sb, sizeof(sb));
        if (k < 0)
                return probe_fail(res, k, "cannot read the superblock: %s", strerror(-k));
        if (memcmp(sb, "sqsh", 4) == 0)
                return probe_fail(res, -EOPNOTSUPP, "a big-endian squashfs (version 3 or older) is not read");
        if (memcmp(sb, "hsqs", 4) != 0)
                return probe_fail(res, -EINVAL, "no squashfs magic");

        uint16_t major = get_le16(sb + 28), minor = get_le16(sb + 30), comp = get_le16(sb + 20);
        uint32_t block_size = get_le32(sb + 12);
        uint16_t block_log = get_le16(sb + 22);
        uint64_t bytes_used = get_le64(sb + 40);
        uint64_t id_table = get_le64(sb + 48), xattr_table = get_le64(sb + 56), inode_table = get_le64(sb + 64),
                 dir_table = get_le64(sb + 72), frag_table = get_le64(sb + 80), lookup_table = get_le64(sb + 88);

        if (major != 4 || minor != 0)
                return probe_fail(res, -EOPNOTSUPP, "squashfs version %u.%u: only 4.0 is read", major, minor);
        if (block_log < 12 || block_log > 20 || block_size != UINT32_C(1) << block_log)
                return probe_fail(res, -EINVAL, "block size %" PRIu32 " (log %u) is not a power of two from 4 KiB to 1 MiB",
                                  block_size, block_log);
        if (comp == 0 || comp >= ELEMENTSOF(squashfs_compressors))
                return probe_fail(res, -EOPNOTSUPP, "unknown compressor %u", comp);
        /* The tables follow the data in this order, all inside bytes_used:
         * a superblock that says otherwise is damaged. */
        if (inode_table < SQUASHFS_SUPER_SIZE || inode_table >= dir_table || dir_table >= bytes_used ||
            id_table >= bytes_used || (xattr_table != SQUASHFS_INVALID && xattr_table >= bytes_used) ||
            (frag_table != SQUASHFS_INVALID && frag_table >= bytes_used) ||
            (lookup_table != SQUASHFS_INVALID && lookup_table >= bytes_used))
                return probe_fail(res, -EINVAL, "its table offsets do not lie in order inside bytes_used (%" PRIu64 ")",
                                  bytes_used);
        return map_extent(r, res, bytes_used, "bytes_used (%" PRIu64 " bytes, %s), mapped in full", bytes_used,
                          squashfs_compressors[comp]);
}

/* ---------------------------------------------------------------- EROFS */

#define EROFS_SUPER_OFFSET 1024
#define EROFS_MAGIC UINT32_C(0xE0F5E1E2)
#define EROFS_COMPAT_SB_CHKSUM 0x1
#define EROFS_INCOMPAT_48BIT 0x80
/* Every incompatible feature up to METABOX (0x100), as of Linux 6.17. None
 * moves data past blocks; a newer bit might. */
#define EROFS_INCOMPAT_KNOWN UINT32_C(0x1FF)

static int erofs_collect(const Reader *r, ProbeResult *res) {
        uint8_t sb[128];
        int k = reader_read(r, EROFS_SUPER_OFFSET, sb, sizeof(sb));
        if (k < 0)
                return probe_fail(res, k, "cannot read the superblock: %s", strerror(-k));
        if (get_le32(sb) != EROFS_MAGIC)
                return probe_fail(res, -EINVAL, "no EROFS magic");

        uint32_t compat = get_le32(sb + 8), incompat = get_le32(sb + 80);
        unsigned bits = sb[12];
        uint16_t extra_devices = get_le16(sb + 86);

        /* 512 B to 64 KiB: what mkfs.erofs makes and the kernel mounts. */
        if (bits < 9 || bits > 16)
                return probe_fail(res, -EINVAL, "block size 2^%u is not from 512 bytes to 64 KiB", bits);
        if (incompat & ~EROFS_INCOMPAT_KNOWN)
                return probe_fail(res, -EOPNOTSUPP, "unknown incompatible features 0x%" PRIx32,
                                  incompat & ~EROFS_INCOMPAT_KNOWN);
        if (compat & EROFS_COMPAT_SB_CHKSUM) {
                /* crc32c (seed ~0, no final inversion) of the superblock's
                 * block from the superblock on, its checksum field zeroed. */
                size_t len = (size_t) 1 << bits;
                len = len > EROFS_SUPER_OFFSET ? len - EROFS_SUPER_OFFSET : len;
                _cleanup_free_ uint8_t *blk = malloc(len);
                if (!blk)
                        return -ENOMEM;
                k = reader_read(r, EROFS_SUPER_OFFSET, blk, len);
                if (k < 0)
                        return probe_fail(res, k, "cannot read the superblock's block: %s", strerror(-k));
                uint32_t want = get_le32(blk + 4);
                memset(blk + 4, 0, 4);
                uint32_t got = ~crc32c(0, blk, len);
                if (got != want)
                        return probe_fail(res, -EBADMSG,
                                          "superblock checksum mismatch (stored 0x%08" PRIx32 ", computed 0x%08" PRIx32 ")",
                                          want, got);
        }
        if (extra_devices > 0)
                return probe_whole(r, res, "%u extra devices hold part of its data: fully mapped", extra_devices);

        uint64_t blocks = get_le32(sb + 36);
        if (incompat & EROFS_INCOMPAT_48BIT)
                blocks |= (uint64_t) get_le16(sb + 14) << 32;
        return map_extent(r, res, blocks << bits, "%" PRIu64 " blocks of %u bytes, mapped in full", blocks, 1u << bits);
}

/* ---------------------------------------------------------------- ISO 9660 */

#define ISO_SECTOR 2048
#define ISO_FIRST_DESCRIPTOR (16 * ISO_SECTOR)
/* Descriptors before the terminator and the UDF extended area after it:
 * real images have a handful. */
#define ISO_MAX_DESCRIPTORS 64
/* El Torito: a boot record descriptor (type 0) names the boot catalog,
 * whose entries give each boot image's first 2048-byte sector and its
 * length in 512-byte sectors. The catalog is one sector in practice. */
#define ELTORITO_ID "EL TORITO SPECIFICATION"
#define ELTORITO_CATALOG_OFFSET 0x47
#define ELTORITO_MAX_CATALOG_SECTORS 16
#define ELTORITO_ENTRY 32

/* Whether the boot images the El Torito catalog at sector cat lists all
 * lie inside the volume's size bytes. An image past the volume is the
 * ISO's all the same (xorriso's -e --interval:appended_partition_2, as
 * Debian and Ubuntu build theirs, points the EFI boot image at a FAT
 * partition appended after the volume): the tail rule would keep only
 * its non-zero blocks. A catalog not understood is not all inside. On
 * false, why says what. */
static bool eltorito_inside(const Reader *r, uint64_t cat, uint64_t size, char *why, size_t why_len) {
        /* Emulated floppies have the media's size whatever the count says. */
        static const uint64_t floppy[] = { 0, 1200 * 1024, 1440 * 1024, 2880 * 1024 };
        uint8_t sec[ISO_SECTOR];
        enum { VALIDATION, DEFAULT, HEADER, SECTION } want = VALIDATION;
        unsigned left = 0;
        bool last = false;

        if (cat >= size / ISO_SECTOR) {
                snprintf(why, why_len, "its El Torito boot catalog (sector %" PRIu64 ") lies past the volume", cat);
                return false;
        }
        for (unsigned s = 0; s < ELTORITO_MAX_CATALOG_SECTORS; s++) {
                if ((cat + s + 1) * ISO_SECTOR > size || reader_read(r, (cat + s) * ISO_SECTOR, sec, sizeof(sec)) < 0) {
                        snprintf(why, why_len, "its El Torito boot catalog cannot be read");
                        return false;
                }
                for (size_t i = 0; i < sizeof(sec); i += ELTORITO_ENTRY) {
                        const uint8_t *e = sec + i;
                        switch (want) {
                        case VALIDATION:
                                if (e[0] != 1 || e[30] != 0x55 || e[31] != 0xAA) {
                                        snprintf(why, why_len, "its El Torito boot catalog has no validation entry");
                                        return false;
                                }
                                want = DEFAULT;
                                continue;
                        case HEADER:
                                if (e[0] != 0x90 && e[0] != 0x91)
                                        return true; /* the end of the catalog */
                                last = e[0] == 0x91;
                                left = get_le16(e + 2);
                                want = left ? SECTION : HEADER;
                                if (!left && last)
                                        return true;
                                continue;
                        case SECTION:
                        case DEFAULT:
                                break;
                        }
                        /* Extension entries continue the section entry before. */
                        if (want == SECTION && e[0] == 0x44)
                                continue;
                        if (e[0] != 0x88 && e[0] != 0x00) {
                                snprintf(why, why_len, "its El Torito boot catalog has an entry of kind 0x%02x", e[0]);
                                return false;
                        }
                        uint64_t rba = get_le32(e + 8), len = (uint64_t) get_le16(e + 6) * 512;
                        unsigned media = e[1] & 0x0F;
                        if (media >= 1 && media <= 3 && len < floppy[media])
                                len = floppy[media];
                        if (len < ISO_SECTOR)
                                len = ISO_SECTOR;
                        if (e[0] == 0x88 && (rba >= size / ISO_SECTOR || len > size - rba * ISO_SECTOR)) {
                                snprintf(why, why_len,
                                         "its El Torito boot image at sector %" PRIu64 " (%" PRIu64
                                         " bytes) lies past the volume's %" PRIu64 " bytes",
                                         rba, len, size);
                                return false;
                        }
                        if (want == DEFAULT)
                                want = HEADER;
                        else if (--left == 0) {
                                if (last)
                                        return true;
                                want = HEADER;
                        }
                }
        }
        snprintf(why, why_len, "its El Torito boot catalog is longer than %d sectors", ELTORITO_MAX_CATALOG_SECTORS);
        return false;
}

static int iso9660_collect(const Reader *r, ProbeResult *res) {
        uint64_t size = 0, catalog = 0;
        bool pvd = false, udf = false, eltorito = false;
        int k;

        /* A bare ISO image is what an ISO hybrid is without its partition
         * table: the same bytes boot from a USB stick, so it keeps the
         * whole-disk rule (layout.c maps the partitions of a hybrid whole).
         * Only a whole-disk region starts at image byte 0. */
        if (r->base == 0)
                return probe_whole(r, res, "an ISO image that spans the disk: fully mapped");

        for (unsigned i = 0; i < ISO_MAX_DESCRIPTORS; i++) {
                uint8_t d[ISO_SECTOR];
                k = reader_read(r, ISO_FIRST_DESCRIPTOR + (uint64_t) i * ISO_SECTOR, d, sizeof(d));
                if (k < 0) {
                        if (!pvd)
                                return probe_fail(res, k, "cannot read volume descriptor %u: %s", i, strerror(-k));
                        break;
                }
                if (memcmp(d + 1, "NSR02", 5) == 0 || memcmp(d + 1, "NSR03", 5) == 0) {
                        udf = true;
                        continue;
                }
                if (memcmp(d + 1, "BEA01", 5) == 0 || memcmp(d + 1, "TEA01", 5) == 0 || memcmp(d + 1, "BOOT2", 5) == 0 ||
                    memcmp(d + 1, "CDW02", 5) == 0)
                        continue;
                if (memcmp(d + 1, "CD001", 5) != 0)
                        break;
                if (d[0] == 0 && memcmp(d + 7, ELTORITO_ID, strlen(ELTORITO_ID)) == 0) {
                        eltorito = true;
                        catalog = get_le32(d + ELTORITO_CATALOG_OFFSET);
                }
                /* Primary and supplementary (Joliet) descriptors each state the
                 * volume's size; trust the largest. */
                if (d[0] != 1 && d[0] != 2)
                        continue;
                uint32_t space = get_le32(d + 80), bsz = get_le16(d + 128);
                if (space != get_be32(d + 84) || bsz != get_be16(d + 130))
                        return probe_fail(res, -EINVAL,
                                          "volume descriptor %u: its little- and big-endian sizes disagree", i);
                if (bsz < 512 || bsz > ISO_SECTOR || !is_pow2(bsz))
                        return probe_fail(res, -EINVAL, "volume descriptor %u: logical block size %" PRIu32
                                          " is not a power of two from 512 to 2048", i, bsz);
                if (d[0] == 1)
                        pvd = true;
                if ((uint64_t) space * bsz > size)
                        size = (uint64_t) space * bsz;
        }
        if (!pvd)
                return probe_fail(res, -EINVAL, "no primary volume descriptor");
        if (udf)
                return probe_whole(r, res, "an ISO 9660/UDF bridge (UDF keeps its own size): fully mapped");
        if (size < ISO_FIRST_DESCRIPTOR + 2 * ISO_SECTOR)
                return probe_fail(res, -EINVAL, "its volume (%" PRIu64 " bytes) ends before its own descriptors", size);
        char why[160];
        if (eltorito && !eltorito_inside(r, catalog, size, why, sizeof(why)))
                return probe_whole(r, res, "%s: fully mapped", why);
        return map_extent(r, res, size, "volume space size (%" PRIu64 " bytes), mapped in full", size);
}

/* ---------------------------------------------------------------- cramfs */

#define CRAMFS_MAGIC UINT32_C(0x28CD3D45)
#define CRAMFS_MAGIC_SWAPPED UINT32_C(0x453DCD28)
#define CRAMFS_SUPER_SIZE 76
#define CRAMFS_FSID_VERSION_2 0x1
/* Linux's CRAMFS_SUPPORTED_FLAGS: any other bit is a layout it refuses. */
#define CRAMFS_KNOWN_FLAGS UINT32_C(0xFFF)

static int cramfs_collect(const Reader *r, ProbeResult *res) {
        uint8_t sb[CRAMFS_SUPER_SIZE];
        uint64_t at = 0;
        int k;

        /* The superblock is at byte 0, or at 512 behind a boot block. */
        for (;; at = 512) {
                k = reader_read(r, at, sb, sizeof(sb));
                if (k < 0)
                        return probe_fail(res, k, "cannot read the superblock: %s", strerror(-k));
                if (get_le32(sb) == CRAMFS_MAGIC_SWAPPED)
                        return probe_fail(res, -EOPNOTSUPP, "a big-endian cramfs is not read");
                if (get_le32(sb) == CRAMFS_MAGIC)
                        break;
                if (at == 512)
                        return probe_fail(res, -EINVAL, "no cramfs magic at byte 0 or 512");
        }
        if (memcmp(sb + 16, "Compressed ROMFS", 16) != 0)
                return probe_fail(res, -EINVAL, "no 'Compressed ROMFS' signature");

        uint32_t size = get_le32(sb + 4), flags = get_le32(sb + 8);
        if (flags & ~CRAMFS_KNOWN_FLAGS)
                return probe_fail(res, -EOPNOTSUPP, "unknown flags 0x%" PRIx32, flags & ~CRAMFS_KNOWN_FLAGS);
        /* Before version 2 the size field was not kept. */
        if (!(flags & CRAMFS_FSID_VERSION_2))
                return probe_whole(r, res, "an old cramfs that does not record its size: fully mapped");
        if (size < at + CRAMFS_SUPER_SIZE)
                return probe_fail(res, -EINVAL, "its size (%" PRIu32 " bytes) ends inside its superblock", size);
        return map_extent(r, res, size, "size (%" PRIu32 " bytes), mapped in full", size);
}

/* ---------------------------------------------------------------- */

static int collect(const Reader *r, const char *fstype, ProbeResult *res) {
        if (!fstype)
                return probe_fail(res, -EINVAL, "no filesystem type");
        if (strcmp(fstype, "squashfs") == 0)
                return squashfs_collect(r, res);
        if (strcmp(fstype, "erofs") == 0)
                return erofs_collect(r, res);
        if (strcmp(fstype, "iso9660") == 0)
                return iso9660_collect(r, res);
        if (strcmp(fstype, "cramfs") == 0)
                return cramfs_collect(r, res);
        return probe_fail(res, -EINVAL, "not a read-only filesystem this probe knows");
}

const FsProbe fsprobe_rofs = {
        .name = "rofs",
        .types = types,
        .collect = collect,
};
