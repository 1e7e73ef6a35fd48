/* SPDX-License-Identifier: GPL-2.0-or-later */
/* btrfs on disk: byte offsets of the fields this probe reads inside the
 * superblock, tree block headers and items (as in the kernel's
 * uapi/linux/btrfs_tree.h), key types, tree ids, flag bits. All values are
 * little-endian and read with get_le*(); nothing here is a C struct laid
 * over the disk. */
#pragma once

#define SUPER_OFFSET 65536ULL
#define SUPER_SIZE 4096
#define SUPER_COPIES 3

/* struct btrfs_super_block */
#define SB_FSID 0x20
#define SB_BYTENR 0x30
#define SB_FLAGS 0x38
#define SB_MAGIC 0x40
#define SB_GENERATION 0x48
#define SB_ROOT 0x50
#define SB_CHUNK_ROOT 0x58
#define SB_LOG_ROOT 0x60
#define SB_TOTAL_BYTES 0x70
#define SB_NUM_DEVICES 0x88
#define SB_SECTORSIZE 0x90
#define SB_NODESIZE 0x94
#define SB_SYS_ARRAY_SIZE 0xa0
#define SB_CHUNK_ROOT_GENERATION 0xa4
#define SB_COMPAT_RO 0xb4
#define SB_INCOMPAT 0xbc
#define SB_CSUM_TYPE 0xc4
#define SB_ROOT_LEVEL 0xc6
#define SB_CHUNK_ROOT_LEVEL 0xc7
#define SB_LOG_ROOT_LEVEL 0xc8
#define SB_DEV_ITEM 0xc9 /* devid, then total_bytes */
#define SB_METADATA_UUID 0x23b
#define SB_SYS_ARRAY 0x32b
#define SYS_ARRAY_MAX 2048

#define SUPER_FLAG_WRITTEN (1ULL << 0)
#define SUPER_FLAG_SEEDING (1ULL << 32)
#define SUPER_FLAG_METADUMP (1ULL << 33)
#define SUPER_FLAG_METADUMP_V2 (1ULL << 34)
/* Anything else is an error state (bit 2) or a conversion btrfs-progs left
 * half done (CHANGING_FSID, CHANGING_CSUM, CHANGING_BG_TREE, ...). */
#define SUPER_FLAGS_KNOWN (SUPER_FLAG_WRITTEN | SUPER_FLAG_SEEDING | SUPER_FLAG_METADUMP | SUPER_FLAG_METADUMP_V2)

/* Incompat bits 0-11 (mixed backref, default subvol, mixed groups, lzo,
 * zstd, big metadata, extref, raid56, skinny metadata, no holes, metadata
 * uuid, raid1c34) change nothing about where allocations are recorded.
 * Zoned (12), extent tree v2 (13), raid stripe tree (14), simple quotas
 * (16, new extent tree records), remap tree (17) and anything later do. */
#define INCOMPAT_SKINNY_METADATA (1ULL << 8)
#define INCOMPAT_METADATA_UUID (1ULL << 10)
#define INCOMPAT_ZONED (1ULL << 12)
#define INCOMPAT_EXTENT_TREE_V2 (1ULL << 13)
#define INCOMPAT_RAID_STRIPE_TREE (1ULL << 14)
#define INCOMPAT_KNOWN 0xfffULL
/* free space tree, its valid bit, verity, block group tree */
#define COMPAT_RO_BLOCK_GROUP_TREE (1ULL << 3)
#define COMPAT_RO_KNOWN 0xfULL

/* struct btrfs_header, then items (leaf) or key pointers (node) */
#define HDR_FSID 0x20
#define HDR_BYTENR 0x30
#define HDR_GENERATION 0x50
#define HDR_OWNER 0x58
#define HDR_NRITEMS 0x60
#define HDR_LEVEL 0x64
#define HDR_SIZE 0x65
#define KEY_SIZE 17
#define ITEM_SIZE 25     /* key, data offset from HDR_SIZE, data size */
#define KEY_PTR_SIZE 33  /* key, block pointer, generation */
#define MAX_LEVEL 8

#define KEY_EXTENT_DATA 108
#define KEY_ROOT_ITEM 132
#define KEY_EXTENT_ITEM 168
#define KEY_METADATA_ITEM 169
#define KEY_BLOCK_GROUP_ITEM 192
#define KEY_DEV_EXTENT 204
#define KEY_DEV_ITEM 216
#define KEY_CHUNK_ITEM 228

#define ROOT_TREE_OBJECTID 1ULL
#define EXTENT_TREE_OBJECTID 2ULL
#define CHUNK_TREE_OBJECTID 3ULL
#define DEV_TREE_OBJECTID 4ULL
#define BLOCK_GROUP_TREE_OBJECTID 11ULL
#define DEV_ITEMS_OBJECTID 1ULL
#define FIRST_CHUNK_TREE_OBJECTID 256ULL
#define TREE_LOG_OBJECTID ((uint64_t) -6)

/* struct btrfs_chunk, struct btrfs_stripe */
#define CHUNK_LENGTH 0
#define CHUNK_STRIPE_LEN 16
#define CHUNK_TYPE 24
#define CHUNK_NUM_STRIPES 44
#define CHUNK_SUB_STRIPES 46
#define CHUNK_STRIPES 48
#define STRIPE_SIZE 32

#define BG_DATA (1ULL << 0)
#define BG_SYSTEM (1ULL << 1)
#define BG_METADATA (1ULL << 2)
#define BG_RAID0 (1ULL << 3)
#define BG_RAID1 (1ULL << 4)
#define BG_DUP (1ULL << 5)
#define BG_RAID10 (1ULL << 6)
#define BG_RAID5 (1ULL << 7)
#define BG_RAID6 (1ULL << 8)
#define BG_RAID1C3 (1ULL << 9)
#define BG_RAID1C4 (1ULL << 10)
#define BG_TYPE_MASK (BG_DATA | BG_SYSTEM | BG_METADATA)
#define BG_PROFILE_MASK (BG_RAID0 | BG_RAID1 | BG_DUP | BG_RAID10 | BG_RAID5 | BG_RAID6 | BG_RAID1C3 | BG_RAID1C4)
#define BG_KNOWN (BG_TYPE_MASK | BG_PROFILE_MASK)
#define BG_MIRRORED (BG_DUP | BG_RAID1 | BG_RAID1C3 | BG_RAID1C4)

#define ROOT_ITEM_GENERATION 160
#define ROOT_ITEM_BYTENR 176
#define ROOT_ITEM_LEVEL 238
#define ROOT_ITEM_MIN_SIZE 239
#define DEV_EXTENT_CHUNK_OFFSET 16
#define DEV_EXTENT_LENGTH 24
#define DEV_EXTENT_SIZE 48
#define DEV_ITEM_TOTAL_BYTES 8
#define DEV_ITEM_MIN_SIZE 16
#define BG_ITEM_USED 0
#define BG_ITEM_FLAGS 16
#define BG_ITEM_SIZE 24
#define EXTENT_ITEM_FLAGS 16
#define EXTENT_ITEM_MIN_SIZE 24 /* refs, generation, flags; v0 items (4 bytes) are long gone */
#define EXTENT_FLAG_DATA (1ULL << 0)
#define EXTENT_FLAG_TREE_BLOCK (1ULL << 1)
#define FILE_EXTENT_TYPE 20
#define FILE_EXTENT_DISK_BYTENR 21
#define FILE_EXTENT_DISK_NUM_BYTES 29
#define FILE_EXTENT_SIZE 53
#define FILE_EXTENT_INLINE 0
#define FILE_EXTENT_REG 1
#define FILE_EXTENT_PREALLOC 2

enum { CSUM_CRC32C, CSUM_XXHASH, CSUM_SHA256, CSUM_BLAKE2B };
