/* SPDX-License-Identifier: GPL-2.0-or-later */
/* F2FS: the superblocks and the whole metadata area (both checkpoint packs,
 * both SIT and NAT copies, the SSA) are used; in the main area a block is
 * used when the current SIT entry of its segment marks it valid. Each
 * segment's entry comes from the SIT copy the checkpoint's SIT bitmap picks,
 * unless the SIT journal in the checkpoint's cold-data summary holds a newer
 * one. The checkpoint is the newest pack whose CRCs hold; a filesystem that
 * was not cleanly unmounted may hold fsync'd nodes written after it, which
 * roll-forward recovery replays: then the six current segments are mapped
 * in full and the chain of nodes from the warm-node log's next free block
 * is followed, mapping each node and every block it points to. The chain
 * is followed after a clean unmount too (the kernel replays it on every
 * mount): a node found there maps the same. Unknown
 * features, zoned or multi-device volumes, errors the kernel recorded and
 * checkpoints that ask for fsck are mapped whole. Only 4 KiB blocks (every
 * mkfs.f2fs default) are read: the summary and SIT layouts scale with the
 * block size. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "checksum.h"
#include "probe.h"

static const char *const types[] = { "f2fs", NULL };

#define F2FS_MAGIC 0xF2F52010u
#define BLOCK_SHIFT 12
#define BLOCK ((size_t) 1 << BLOCK_SHIFT)
#define SEG_SHIFT 9 /* 512 blocks per segment: the SIT valid map has 512 bits */
#define SEG_BLOCKS ((uint32_t) 1 << SEG_SHIFT)
#define SB_OFFSET 1024
#define SB_SIZE 3072
#define SB_CRC_OFFSET 3068

/* Superblock features bmapscan reads correctly: encrypt, atomic write,
 * extra_attr, prjquota, inode_checksum, flexible_inline_xattr, quota_ino,
 * inode_crtime, lost_found, verity, sb_checksum, casefold, compression.
 * None changes where valid blocks are recorded. BLKZONED (0x2) has
 * sequential zones whose write pointers are the record, RO (0x4000) a
 * different log layout; they and anything newer map the volume whole. */
#define FEATURE_BLKZONED 0x0002u
#define FEATURE_SB_CHKSUM 0x0800u
#define FEATURES_KNOWN 0x3FFDu

#define CP_UMOUNT 0x0001u
#define CP_COMPACT_SUM 0x0004u
#define CP_ERROR 0x0008u
#define CP_FSCK 0x0010u
/* A checkpoint of a sync under the fastboot mount option: it keeps the
 * node summaries as an unmount does (the kernel's __exist_node_summaries),
 * which moves the data summaries, with the SIT journal, 3 blocks earlier. */
#define CP_FASTBOOT 0x0020u
#define CP_LARGE_NAT_BITMAP 0x0400u
#define CP_QUOTA_NEED_FSCK 0x0800u
#define CP_DISABLED 0x1000u
#define CP_DISABLED_QUICK 0x2000u
#define CP_RESIZEFS 0x4000u
#define CP_FLAGS_KNOWN 0x7FFFu
/* Flags under which the SIT is not the whole truth: errors found, fsck
 * asked for, checkpointing disabled (blocks written without SIT updates),
 * a resize half done. */
#define CP_FLAGS_WHOLE (CP_ERROR | CP_FSCK | CP_QUOTA_NEED_FSCK | CP_DISABLED | CP_DISABLED_QUICK | CP_RESIZEFS)
/* Where the checkpoint's checksum may be: at the block's end, or right
 * after the fixed fields when the NAT bitmap takes the rest (large NAT). */
#define CP_MIN_CRC_OFFSET 192
#define CP_CRC_OFFSET 4092
#define CP_BITMAPS 192
/* cp_payload: extra blocks of SIT bitmap; the kernel allows as many as
 * its largest SIT bitmap needs. */
#define MAX_CP_PAYLOAD 1024

#define SIT_ENTRY_SIZE 74
#define SIT_PER_BLOCK (BLOCK / SIT_ENTRY_SIZE) /* 55 */
#define SIT_MAP 2
/* The SIT journal: in the compact summary after the NAT journal, in a
 * normal summary after its 512 seven-byte entries. */
#define SUM_JOURNAL_SIZE 507
#define SUM_ENTRIES_SIZE (512 * 7)
#define SIT_JOURNAL_ENTRY (4 + SIT_ENTRY_SIZE)
#define SIT_JOURNAL_MAX ((SUM_JOURNAL_SIZE - 2) / SIT_JOURNAL_ENTRY) /* 6 */
#define CURSEGS 6

/* The node footer, the last 24 bytes of a node block. */
#define FOOTER (BLOCK - 24)
#define INODE_ADDRS 360 /* i_addr[923] of an inode */
#define INODE_ADDRS_END (INODE_ADDRS + 923 * 4)
#define NULL_ADDR 0u
#define NEW_ADDR 0xFFFFFFFFu
#define COMPRESS_ADDR 0xFFFFFFFEu

typedef struct F2fsSuper {
        unsigned which; /* 0: the first superblock, 1: the backup */
        uint32_t feature;
        uint64_t block_count;
        uint32_t segment_count, seg_ckpt, seg_sit, seg_main;
        uint32_t segs_per_sec;
        uint32_t segment0, cp, sit, nat, ssa, main;
        uint32_t cp_payload;
} F2fsSuper;

typedef struct F2fsCheckpoint {
        unsigned pack;       /* 0 or 1 */
        uint64_t start;      /* block of the pack's first block */
        uint64_t version;
        uint32_t flags, total, start_sum;
        uint64_t valid_blocks;
        uint32_t cur_segno[CURSEGS]; /* hot, warm, cold node; hot, warm, cold data */
        uint16_t cur_blkoff[CURSEGS];
        uint8_t *blocks; /* the pack's block 0 and its cp_payload blocks */
        size_t sit_bitmap, sit_bitmap_bytes; /* offset in blocks, length */
} F2fsCheckpoint;

static uint32_t f2fs_crc(const uint8_t *p, size_t n) {
        return crc32_raw(F2FS_MAGIC, p, n);
}

/* f2fs bitmaps (SIT versions, valid maps) number their bits from the most
 * significant bit of each byte. */
static bool bit_msb(const uint8_t *map, uint64_t n) {
        return map[n / 8] & (0x80u >> (n % 8));
}

static uint64_t seg_block(const F2fsSuper *sb, uint32_t segno) {
        return sb->main + ((uint64_t) segno << SEG_SHIFT);
}

/* ---------------------------------------------------------------- superblock */

/* probe_whole's result as "mapped whole, stop": 1, or its error. */
static int whole_state(int k) {
        return k < 0 ? k : 1;
}

static int parse_super(const Reader *r, unsigned which, F2fsSuper *sb, ProbeResult *res) {
        uint8_t b[SB_SIZE];
        uint64_t at = ((uint64_t) which << BLOCK_SHIFT) + SB_OFFSET;
        int k = reader_read(r, at, b, sizeof(b));
        if (k < 0)
                return probe_fail(res, k, "cannot read superblock #%u: %s", which, strerror(-k));
        if (get_le32(b) != F2FS_MAGIC)
                return probe_fail(res, -EINVAL, "superblock #%u has no F2FS magic", which);

        *sb = (F2fsSuper) {
                .which = which,
                .feature = get_le32(b + 2180),
                .block_count = get_le64(b + 36),
                .segment_count = get_le32(b + 48),
                .seg_ckpt = get_le32(b + 52),
                .seg_sit = get_le32(b + 56),
                .seg_main = get_le32(b + 68),
                .segs_per_sec = get_le32(b + 24),
                .segment0 = get_le32(b + 72),
                .cp = get_le32(b + 76),
                .sit = get_le32(b + 80),
                .nat = get_le32(b + 84),
                .ssa = get_le32(b + 88),
                .main = get_le32(b + 92),
                .cp_payload = get_le32(b + 1664),
        };
        if (sb->feature & FEATURE_SB_CHKSUM) {
                uint32_t want = get_le32(b + SB_CRC_OFFSET), got = f2fs_crc(b, SB_CRC_OFFSET);
                if (get_le32(b + 32) != SB_CRC_OFFSET)
                        return probe_fail(res, -EINVAL, "superblock #%u has its checksum at byte %" PRIu32 ", not %u", which,
                                          get_le32(b + 32), SB_CRC_OFFSET);
                if (want != got)
                        return probe_fail(res, -EINVAL,
                                          "superblock #%u checksum mismatch (stored %08" PRIx32 ", computed %08" PRIx32 ")",
                                          which, want, got);
        }
        uint32_t log_sector = get_le32(b + 8), log_spb = get_le32(b + 12), log_block = get_le32(b + 16);
        if (log_block != BLOCK_SHIFT || log_sector < 9 || log_sector > BLOCK_SHIFT || log_sector + log_spb != log_block)
                return probe_fail(res, -EINVAL, "superblock #%u: %" PRIu32 "-bit blocks of %" PRIu32
                                  "-bit sectors (only 4 KiB blocks are read)",
                                  which, log_block, log_sector);
        if (get_le32(b + 20) != SEG_SHIFT)
                return probe_fail(res, -EINVAL, "superblock #%u: segments of 2^%" PRIu32 " blocks, not 512", which,
                                  get_le32(b + 20));

        /* The areas follow each other in this order with no gaps, and the
         * main area ends inside the segments, inside the partition. */
        uint64_t sit_copy = ((uint64_t) sb->seg_sit / 2) << SEG_SHIFT;
        uint64_t end_segments = sb->segment0 + ((uint64_t) sb->segment_count << SEG_SHIFT);
        uint64_t end_main = (uint64_t) sb->main + ((uint64_t) sb->seg_main << SEG_SHIFT);
        if (sb->segment0 < 2 || sb->cp != sb->segment0 || sb->seg_ckpt < 2 ||
            sb->sit != sb->cp + ((uint64_t) sb->seg_ckpt << SEG_SHIFT) || sb->seg_sit < 2 || sb->seg_sit % 2 ||
            sb->nat != sb->sit + ((uint64_t) sb->seg_sit << SEG_SHIFT) ||
            sb->ssa != sb->nat + ((uint64_t) get_le32(b + 60) << SEG_SHIFT) ||
            sb->main != sb->ssa + ((uint64_t) get_le32(b + 64) << SEG_SHIFT))
                return probe_fail(res, -EINVAL, "superblock #%u: the metadata areas do not follow each other", which);
        if (sb->seg_main == 0 || end_main > end_segments || end_segments > sb->block_count)
                return probe_fail(res, -EINVAL, "superblock #%u: the main area ends at block %" PRIu64
                                  ", past the segments (%" PRIu64 ") or the block count (%" PRIu64 ")",
                                  which, end_main, end_segments, sb->block_count);
        if (sit_copy * SIT_PER_BLOCK < sb->seg_main)
                return probe_fail(res, -EINVAL, "superblock #%u: a SIT of %" PRIu32 " segments for %" PRIu32 " main segments",
                                  which, sb->seg_sit, sb->seg_main);
        if (sb->block_count > r->size >> BLOCK_SHIFT)
                return probe_fail(res, -EINVAL, "the filesystem (%" PRIu64 " blocks of 4 KiB) is larger than its partition (%" PRIu64
                                  " bytes)", sb->block_count, r->size);
        if (sb->segs_per_sec == 0 || sb->cp_payload > MAX_CP_PAYLOAD)
                return probe_fail(res, -EINVAL, "superblock #%u: %" PRIu32 " segments per section, cp_payload %" PRIu32, which,
                                  sb->segs_per_sec, sb->cp_payload);

        /* States in which the SIT alone does not say what is used. */
        if (b[2201] != 0)
                return whole_state(probe_whole(r, res, "a multi-device filesystem: fully mapped"));
        if (sb->feature & FEATURE_BLKZONED)
                return whole_state(probe_whole(r, res, "zoned (blkzoned feature): fully mapped"));
        if (sb->feature & ~FEATURES_KNOWN)
                return whole_state(probe_whole(r, res, "unknown features %08" PRIx32 ": fully mapped", sb->feature & ~FEATURES_KNOWN));
        for (size_t i = 2762; i < 2762 + 32 + 16; i++)
                if (b[i])
                        return whole_state(probe_whole(r, res, "the kernel recorded errors (s_stop_reason/s_errors): fully mapped"));
        return 0;
}

/* The first valid superblock, as the kernel takes it. Returns 1 when a
 * state maps the volume whole (res says why), 0 to go on, or a failure. */
static int find_super(const Reader *r, F2fsSuper *sb, ProbeResult *res) {
        char first[sizeof(res->how)], second[sizeof(res->how)];
        int k = parse_super(r, 0, sb, res);
        if (k < 0) {
                memcpy(first, res->how, sizeof(first));
                k = parse_super(r, 1, sb, res);
                if (k < 0) {
                        memcpy(second, res->how, sizeof(second));
                        return probe_fail(res, k, "%s; %s", first, second);
                }
        }
        return k;
}

/* ---------------------------------------------------------------- checkpoint */

static bool cp_block_valid(const uint8_t *b) {
        uint32_t off = get_le32(b + 164);
        if (off < CP_MIN_CRC_OFFSET || off > CP_CRC_OFFSET || off % 4)
                return false;
        uint32_t crc = f2fs_crc(b, off);
        if (off < CP_CRC_OFFSET)
                crc = crc32_raw(crc, b + off + 4, BLOCK - off - 4);
        return crc == get_le32(b + off);
}

/* Reads pack p if it is valid: both ends pass their CRC and carry the same
 * version. Returns false for an invalid pack, with why saying why. */
static bool read_pack(const Reader *r, const F2fsSuper *sb, unsigned p, F2fsCheckpoint *cp, char *why, size_t whylen) {
        uint64_t start = (uint64_t) sb->cp + ((uint64_t) p << SEG_SHIFT);
        uint8_t last[BLOCK];
        size_t n = (1 + (size_t) sb->cp_payload) * BLOCK;
        uint8_t *blocks = malloc(n);
        int k;

        if (!blocks) {
                snprintf(why, whylen, "out of memory");
                return false;
        }
        k = reader_read(r, start << BLOCK_SHIFT, blocks, n);
        if (k < 0) {
                snprintf(why, whylen, "checkpoint pack #%u unreadable: %s", p + 1, strerror(-k));
                goto invalid;
        }
        if (!cp_block_valid(blocks)) {
                snprintf(why, whylen, "checkpoint pack #%u: CRC mismatch", p + 1);
                goto invalid;
        }
        uint32_t total = get_le32(blocks + 136);
        if (total < 2 + sb->cp_payload || total > SEG_BLOCKS) {
                snprintf(why, whylen, "checkpoint pack #%u: %" PRIu32 " blocks", p + 1, total);
                goto invalid;
        }
        k = reader_read(r, (start + total - 1) << BLOCK_SHIFT, last, BLOCK);
        if (k < 0 || !cp_block_valid(last) || get_le64(last) != get_le64(blocks)) {
                snprintf(why, whylen, "checkpoint pack #%u: its last block %s", p + 1,
                         k < 0 ? "is unreadable" : !cp_block_valid(last) ? "fails its CRC" : "has another version");
                goto invalid;
        }
        *cp = (F2fsCheckpoint) {
                .pack = p,
                .start = start,
                .version = get_le64(blocks),
                .valid_blocks = get_le64(blocks + 16),
                .flags = get_le32(blocks + 132),
                .total = total,
                .start_sum = get_le32(blocks + 140),
                .blocks = blocks,
        };
        for (unsigned i = 0; i < 3; i++) {
                cp->cur_segno[i] = get_le32(blocks + 36 + 4 * i);
                cp->cur_blkoff[i] = get_le16(blocks + 68 + 2 * i);
                cp->cur_segno[3 + i] = get_le32(blocks + 84 + 4 * i);
                cp->cur_blkoff[3 + i] = get_le16(blocks + 116 + 2 * i);
        }
        return true;
invalid:
        free(blocks);
        return false;
}

/* The newer of the valid packs (versions compared as a signed distance, as
 * they may wrap), with the place of its SIT version bitmap checked. */
static int find_checkpoint(const Reader *r, const F2fsSuper *sb, F2fsCheckpoint *ret, ProbeResult *res) {
        F2fsCheckpoint cps[2] = {};
        char why[2][128] = {};
        bool ok[2];

        for (unsigned p = 0; p < 2; p++)
                ok[p] = read_pack(r, sb, p, &cps[p], why[p], sizeof(why[p]));
        if (!ok[0] && !ok[1])
                return probe_fail(res, -EINVAL, "no valid checkpoint: %s; %s", why[0], why[1]);
        unsigned use = !ok[0] || (ok[1] && (int64_t) (cps[1].version - cps[0].version) > 0) ? 1 : 0;
        free(cps[!use].blocks);
        *ret = cps[use];
        F2fsCheckpoint *cp = ret;
        const uint8_t *b = cp->blocks;

        uint32_t crc_off = get_le32(b + 164), sit_bytes = get_le32(b + 156), nat_bytes = get_le32(b + 160);
        size_t avail = (1 + (size_t) sb->cp_payload) * BLOCK, at;
        if (cp->flags & CP_LARGE_NAT_BITMAP)
                at = CP_BITMAPS + (crc_off == CP_MIN_CRC_OFFSET ? 4 : 0) + (size_t) nat_bytes;
        else if (sb->cp_payload)
                at = BLOCK;
        else {
                at = CP_BITMAPS;
                avail = crc_off;
        }
        uint64_t sit_blocks = div_round_up(sb->seg_main, SIT_PER_BLOCK);
        if (nat_bytes > avail || sit_bytes > avail || at + sit_bytes > avail || sit_bytes < div_round_up(sit_blocks, 8))
                return probe_fail(res, -EINVAL, "checkpoint: a SIT bitmap of %" PRIu32 " bytes at %zu does not fit or is too small",
                                  sit_bytes, at);
        cp->sit_bitmap = at;
        cp->sit_bitmap_bytes = sit_bytes;

        uint32_t sum_blocks = cp->flags & (CP_UMOUNT | CP_FASTBOOT) ? 6 : 3;
        if (cp->start_sum < 1 + sb->cp_payload || cp->start_sum >= cp->total ||
            (!(cp->flags & CP_COMPACT_SUM) && cp->total < sum_blocks + 1 + 1 + sb->cp_payload))
                return probe_fail(res, -EINVAL, "checkpoint: summaries at block %" PRIu32 " of a %" PRIu32 "-block pack",
                                  cp->start_sum, cp->total);
        for (unsigned i = 0; i < CURSEGS; i++)
                if (cp->cur_segno[i] >= sb->seg_main || cp->cur_blkoff[i] > SEG_BLOCKS)
                        return probe_fail(res, -EINVAL, "checkpoint: current segment %" PRIu32 " (block %u) is past the main area",
                                          cp->cur_segno[i], cp->cur_blkoff[i]);
        return 0;
}

static void checkpoint_done(F2fsCheckpoint *cp) {
        free(cp->blocks);
        cp->blocks = NULL;
}

/* ---------------------------------------------------------------- SIT */

typedef struct SitJournal {
        unsigned n;
        uint32_t segno[SIT_JOURNAL_MAX];
        uint8_t entry[SIT_JOURNAL_MAX][SIT_ENTRY_SIZE];
} SitJournal;

/* The SIT journal, from the cold-data summary: in the compact summary
 * block, or the third of the data summaries a normal pack holds (before
 * the node summaries too when it was written at unmount or with fastboot). */
static int read_sit_journal(const Reader *r, const F2fsSuper *sb, const F2fsCheckpoint *cp, SitJournal *j,
                            ProbeResult *res) {
        uint8_t b[BLOCK];
        uint64_t blk;
        size_t at;

        if (cp->flags & CP_COMPACT_SUM) {
                blk = cp->start + cp->start_sum;
                at = SUM_JOURNAL_SIZE;
        } else {
                blk = cp->start + cp->total - (cp->flags & (CP_UMOUNT | CP_FASTBOOT) ? 7 : 4) + 2;
                at = SUM_ENTRIES_SIZE;
        }
        int k = reader_read(r, blk << BLOCK_SHIFT, b, sizeof(b));
        if (k < 0)
                return probe_fail(res, k, "cannot read the SIT journal (block %" PRIu64 "): %s", blk, strerror(-k));
        j->n = get_le16(b + at);
        if (j->n > SIT_JOURNAL_MAX)
                return probe_fail(res, -EINVAL, "the SIT journal holds %u entries (at most %u fit)", j->n, SIT_JOURNAL_MAX);
        for (unsigned i = 0; i < j->n; i++) {
                const uint8_t *e = b + at + 2 + (size_t) i * SIT_JOURNAL_ENTRY;
                j->segno[i] = get_le32(e);
                if (j->segno[i] >= sb->seg_main)
                        return probe_fail(res, -EINVAL, "a SIT journal entry for segment %" PRIu32 ", past the main area (%" PRIu32
                                          " segments)", j->segno[i], sb->seg_main);
                memcpy(j->entry[i], e + 4, SIT_ENTRY_SIZE);
        }
        return 0;
}

/* Adds the blocks one SIT entry marks valid; checks the entry's count
 * against its map, as the kernel does on mount. */
static int add_segment(const F2fsSuper *sb, uint32_t segno, const uint8_t *e, uint64_t *valid, ProbeResult *res) {
        uint16_t v = get_le16(e);
        unsigned count = v & 0x3FF, type = v >> 10, bits = 0;
        if (count > SEG_BLOCKS || type > 5)
                return probe_fail(res, -EINVAL, "the SIT entry of segment %" PRIu32 " says %u valid blocks of type %u", segno,
                                  count, type);
        /* No shortcut for a count of 0: the kernel refuses an entry
         * whose map marks blocks it does not count, and fsck then keeps
         * what the files point at. */
        uint64_t base = seg_block(sb, segno);
        for (unsigned i = 0; i < SEG_BLOCKS;) {
                if (!bit_msb(e + SIT_MAP, i)) {
                        i++;
                        continue;
                }
                unsigned s = i;
                while (i < SEG_BLOCKS && bit_msb(e + SIT_MAP, i))
                        i++;
                bits += i - s;
                int k = extents_add(&res->used, (base + s) << BLOCK_SHIFT, (base + i) << BLOCK_SHIFT);
                if (k < 0)
                        return probe_fail(res, k, "out of memory for the valid blocks");
        }
        if (bits != count)
                return probe_fail(res, -EINVAL, "the SIT entry of segment %" PRIu32 " counts %u valid blocks, its map %u", segno,
                                  count, bits);
        *valid += count;
        return 0;
}

static int collect_sit(const Reader *r, const F2fsSuper *sb, const F2fsCheckpoint *cp, uint64_t *ret_valid,
                       ProbeResult *res) {
        _cleanup_free_ uint8_t *b = malloc(BLOCK);
        const uint8_t *bitmap = cp->blocks + cp->sit_bitmap;
        uint64_t sit_copy = ((uint64_t) sb->seg_sit / 2) << SEG_SHIFT, valid = 0;
        SitJournal j;
        int k;

        if (!b)
                return probe_fail(res, -ENOMEM, "out of memory for the SIT");
        k = read_sit_journal(r, sb, cp, &j, res);
        if (k < 0)
                return k;
        for (uint32_t segno = 0; segno < sb->seg_main; segno++) {
                uint64_t idx = segno / SIT_PER_BLOCK;
                if (segno % SIT_PER_BLOCK == 0) {
                        uint64_t blk = sb->sit + idx + (bit_msb(bitmap, idx) ? sit_copy : 0);
                        k = reader_read(r, blk << BLOCK_SHIFT, b, BLOCK);
                        if (k < 0)
                                return probe_fail(res, k, "cannot read SIT block %" PRIu64 ": %s", blk, strerror(-k));
                }
                const uint8_t *e = b + (size_t) (segno % SIT_PER_BLOCK) * SIT_ENTRY_SIZE;
                for (unsigned i = j.n; i-- > 0;)
                        if (j.segno[i] == segno) {
                                e = j.entry[i];
                                break;
                        }
                k = add_segment(sb, segno, e, &valid, res);
                if (k < 0)
                        return k;
        }
        *ret_valid = valid;
        return 0;
}

/* ---------------------------------------------------------------- roll-forward */

static int add_block(const F2fsSuper *sb, uint64_t blk, ProbeResult *res) {
        if (blk < sb->main || blk >= seg_block(sb, sb->seg_main))
                return 0;
        int k = extents_add(&res->used, blk << BLOCK_SHIFT, (blk + 1) << BLOCK_SHIFT);
        return k < 0 ? probe_fail(res, k, "out of memory for the roll-forward blocks") : 0;
}

/* The chain of nodes written after the checkpoint, which starts at the
 * warm-node log's next free block and links on through each footer while
 * the footer carries this checkpoint's version. The kernel replays it on
 * every writable mount, whatever CP_UMOUNT says: a file fsync'd after a
 * clean mount and lost power leaves it behind an unmount checkpoint. After
 * an unclean checkpoint, or when the chain holds a node, the current
 * segments are mapped whole too. The low 32 bits are compared: with
 * CRC_RECOVERY the high half is the checkpoint's CRC, so this takes in at
 * least every node recovery would replay. Every address in such a node
 * that lies in the main area is mapped, as fsck.f2fs does. Returns the
 * number of chained nodes. */
static int collect_roll_forward(const Reader *r, const F2fsSuper *sb, const F2fsCheckpoint *cp, bool unclean,
                                uint64_t *ret_nodes, ProbeResult *res) {
        _cleanup_extents_ Extents seen = EXTENTS_INIT;
        uint8_t b[BLOCK];
        uint64_t nodes = 0;
        int k;

        uint64_t blk = seg_block(sb, cp->cur_segno[1]) + cp->cur_blkoff[1];
        /* Each block is visited once: the chain cannot be longer than the
         * main area, and a loop ends it. */
        while (blk >= sb->main && blk < seg_block(sb, sb->seg_main) && !extents_contains(&seen, blk, blk + 1)) {
                k = reader_read(r, blk << BLOCK_SHIFT, b, BLOCK);
                if (k < 0)
                        return probe_fail(res, k, "cannot read node block %" PRIu64 " of the roll-forward chain: %s", blk,
                                          strerror(-k));
                /* Every block the kernel reads here is mapped, the one that
                 * ends the chain too: left out, the target's own bytes would
                 * be read there, and a target that held a later life of this
                 * same volume keeps nodes of this very checkpoint version
                 * at that place, which the kernel would replay. */
                k = add_block(sb, blk, res);
                if (k < 0)
                        return k;
                if ((uint32_t) get_le64(b + FOOTER + 12) != (uint32_t) cp->version)
                        break;
                k = extents_add(&seen, blk, blk + 1);
                if (k < 0)
                        return probe_fail(res, k, "out of memory");
                bool inode = get_le32(b + FOOTER) == get_le32(b + FOOTER + 4);
                size_t from = inode ? INODE_ADDRS : 0, to = inode ? INODE_ADDRS_END : FOOTER;
                for (size_t at = from; at < to; at += 4) {
                        uint32_t a = get_le32(b + at);
                        if (a == NULL_ADDR || a == NEW_ADDR || a == COMPRESS_ADDR)
                                continue;
                        k = add_block(sb, a, res);
                        if (k < 0)
                                return k;
                }
                nodes++;
                blk = get_le32(b + FOOTER + 20);
        }
        for (unsigned i = 0; (unclean || nodes) && i < CURSEGS; i++) {
                uint64_t s = seg_block(sb, cp->cur_segno[i]);
                k = extents_add(&res->used, s << BLOCK_SHIFT, (s + SEG_BLOCKS) << BLOCK_SHIFT);
                if (k < 0)
                        return probe_fail(res, k, "out of memory");
        }
        *ret_nodes = nodes;
        return 0;
}

/* ---------------------------------------------------------------- the probe */

static int collect(const Reader *r, const char *fstype, ProbeResult *res) {
        F2fsSuper sb;
        F2fsCheckpoint cp = {};
        uint64_t valid = 0, nodes = 0;
        int k;

        (void) fstype;
        k = find_super(r, &sb, res);
        if (k != 0) {
                if (k > 0)
                        res->fs_size = sb.block_count << BLOCK_SHIFT;
                return k < 0 ? k : 0;
        }
        res->fs_size = sb.block_count << BLOCK_SHIFT;

        /* A truncated image reads as an error where a block is read, but
         * blocks in the lost part that nothing reads would count as free. */
        uint8_t last[BLOCK];
        uint64_t end = seg_block(&sb, sb.seg_main) - 1;
        k = reader_read(r, end << BLOCK_SHIFT, last, BLOCK);
        if (k < 0)
                return probe_fail(res, k, "cannot read the last block of the main area (%" PRIu64 "): %s", end, strerror(-k));

        k = find_checkpoint(r, &sb, &cp, res);
        if (k < 0)
                goto out;
        if (cp.flags & ~CP_FLAGS_KNOWN) {
                k = probe_whole(r, res, "unknown checkpoint flags %08" PRIx32 ": fully mapped", cp.flags & ~CP_FLAGS_KNOWN);
                goto out;
        }
        if (cp.flags & CP_FLAGS_WHOLE) {
                k = probe_whole(r, res, "the checkpoint %s (flags %04" PRIx32 "): fully mapped",
                                cp.flags & (CP_ERROR | CP_FSCK | CP_QUOTA_NEED_FSCK) ? "asks for fsck"
                                : cp.flags & CP_RESIZEFS                               ? "is of a resize in progress"
                                                                                       : "has checkpointing disabled",
                                cp.flags);
                goto out;
        }

        extents_clear(&res->used);
        k = extents_add(&res->used, 0, 2 * BLOCK);
        if (k >= 0)
                k = extents_add(&res->used, (uint64_t) sb.cp << BLOCK_SHIFT, (uint64_t) sb.main << BLOCK_SHIFT);
        if (k < 0) {
                k = probe_fail(res, k, "out of memory");
                goto out;
        }
        k = collect_sit(r, &sb, &cp, &valid, res);
        if (k < 0)
                goto out;
        if (valid != cp.valid_blocks) {
                k = probe_fail(res, -EINVAL, "the SIT marks %" PRIu64 " valid blocks, the checkpoint counts %" PRIu64, valid,
                               cp.valid_blocks);
                goto out;
        }
        k = collect_roll_forward(r, &sb, &cp, !(cp.flags & CP_UMOUNT), &nodes, res);
        if (k < 0)
                goto out;

        int n = snprintf(res->how, sizeof(res->how), "SIT, checkpoint pack #%u, %" PRIu64 " valid blocks", cp.pack + 1, valid);
        if (sb.which)
                n += snprintf(res->how + n, sizeof(res->how) - (size_t) n, ", backup superblock");
        if (!(cp.flags & CP_UMOUNT))
                snprintf(res->how + n, sizeof(res->how) - (size_t) n,
                         "; not cleanly unmounted: current segments and %" PRIu64 " roll-forward nodes mapped", nodes);
        else if (nodes)
                snprintf(res->how + n, sizeof(res->how) - (size_t) n,
                         "; fsync'd after its unmount: current segments and %" PRIu64 " roll-forward nodes mapped", nodes);
        k = 0;
out:
        checkpoint_done(&cp);
        return k;
}

const FsProbe fsprobe_f2fs = {
        .name = "f2fs",
        .types = types,
        .collect = collect,
};
