/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The layouts that make bytes precious beyond what a filesystem says it
 * uses: a dm-verity hash tree (in a partition of its own, or appended
 * after a filesystem inside its partition), an Android AVB footer, and any
 * data between a filesystem's end and its partition's end. dm-verity hashes
 * every data block, the filesystem's free blocks included, so a block a
 * bmap leaves out keeps the target's old bytes and fails verification when
 * read. The parsers here only recognise; scan.c decides what gets mapped.
 * The on-disk facts are in FORMATS.md §7 (dm-verity, DPS) and §8 (AVB). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "extents.h"
#include "reader.h"

/* A dm-verity superblock (cryptsetup's format, version 1, little-endian). */
#define VERITY_SUPER_SIZE 512
typedef struct VeritySuper {
        uint32_t hash_type;       /* 0 Chrome OS, 1 normal */
        uint32_t data_block_size; /* bytes */
        uint32_t hash_block_size;
        uint64_t data_blocks;
        char algorithm[33];
} VeritySuper;

/* Parses buf (at least VERITY_SUPER_SIZE bytes). -EINVAL when it holds no
 * version-1 superblock with sane sizes. */
int verity_super_parse(const uint8_t *buf, size_t n, VeritySuper *ret);
/* The bytes of data the tree covers; 0 if that overflows. */
uint64_t verity_data_bytes(const VeritySuper *v);

/* Android AVB 2.0: the footer in the last 64 bytes of a partition (all
 * integers big-endian), and the vbmeta blob that starts a vbmeta partition. */
#define AVB_FOOTER_SIZE 64
typedef struct AvbFooter {
        uint32_t version_major, version_minor;
        uint64_t original_image_size;
        uint64_t vbmeta_offset, vbmeta_size;
} AvbFooter;

/* Parses the last AVB_FOOTER_SIZE bytes of a partition of part_size bytes.
 * -EINVAL when there is no footer; -EBADMSG when the magic is there but the
 * footer points outside the partition (still a reason to map it whole). */
int avb_footer_parse(const uint8_t *buf, uint64_t part_size, AvbFooter *ret);
/* Whether buf (n bytes from a partition's start) begins with a vbmeta blob. */
bool avb_vbmeta_at(const uint8_t *buf, size_t n);

/* The Discoverable Partitions Specification's root and /usr partition
 * types and their verity companions. */
typedef enum DpsRole {
        DPS_OTHER,
        DPS_ROOT,
        DPS_USR,
        DPS_ROOT_VERITY,
        DPS_USR_VERITY,
        DPS_ROOT_VERITY_SIG,
        DPS_USR_VERITY_SIG,
} DpsRole;

typedef struct DpsType {
        DpsRole role;
        const char *arch; /* "x86-64", ...; NULL for DPS_OTHER */
} DpsType;

/* The DPS role of a GPT type GUID (any case); DPS_OTHER when it has none. */
DpsType dps_type(const char *guid);
/* For a *-verity or *-verity-sig role, the data role it protects. */
DpsRole dps_data_role(DpsRole verity_role);
bool dps_is_verity(DpsRole role);
bool dps_is_verity_sig(DpsRole role);

/* Reads the rootHash of a DPS verity-sig partition (a NUL-padded JSON
 * object) into ret_hash (hex decoded); ret_len gets its length in bytes.
 * -EINVAL when the partition holds no such object. */
int verity_sig_root_hash(const Reader *r, uint8_t *ret_hash, size_t max, size_t *ret_len);
/* The partition UUIDs systemd derives from a root hash of at least 32
 * bytes: the data partition's from its first 16 bytes, the hash
 * partition's from its last 16, as lower-case GUID strings. */
void verity_uuids_from_root_hash(const uint8_t *hash, size_t len, char ret_data[37], char ret_hash[37]);

/* What lies in [from, end of region) of r: the parts of the 4 KiB blocks
 * (aligned in the image) that hold a non-zero byte, and the first dm-verity
 * superblock at a 512-byte boundary of them. Holes are skipped with
 * SEEK_DATA/SEEK_HOLE, so a sparse tail costs nothing to read. */
typedef struct TailScan {
        Extents nonzero;        /* relative to the region */
        bool verity;
        uint64_t verity_offset; /* relative to the region */
        VeritySuper verity_super;
} TailScan;

void tail_scan_done(TailScan *t);
int tail_scan(const Reader *r, uint64_t from, TailScan *ret);

/* Whether the data past a filesystem's end (t, from tail_scan(r, from))
 * is another filesystem or container libblkid knows (a FAT image or an
 * ext4 appended after a squashfs, an LVM label...): the zeros inside it
 * are its free space or its metadata, and none of it may be left to
 * chance. libblkid looks where each of the first runs of data starts,
 * and 32 and 64 KiB before it (ISO 9660 and btrfs keep their first
 * blocks zero). 1 with its type in ret_type and where it starts (relative
 * to r), 0 when none is found, or a negative errno. */
int tail_find_filesystem(const Reader *r, uint64_t from, const TailScan *t, unsigned sector_size, char *ret_type,
                         size_t type_len, uint64_t *ret_at);
