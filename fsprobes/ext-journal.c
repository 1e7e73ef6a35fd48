/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The jbd2 journal of an ext3/4 filesystem that needs recovery: which
 * blocks its unreplayed transactions write, and the block bitmap copies
 * they carry, read through libext2fs (and so through the Reader). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ext-internal.h"

/* jbd2 is big-endian on disk (include/linux/jbd2.h). */
#define JBD2_MAGIC 0xC03B3998U
#define JBD2_DESCRIPTOR_BLOCK 1
#define JBD2_COMMIT_BLOCK 2
#define JBD2_SUPERBLOCK_V1 3
#define JBD2_SUPERBLOCK_V2 4
#define JBD2_REVOKE_BLOCK 5
#define JBD2_INCOMPAT_64BIT 0x02
#define JBD2_INCOMPAT_CSUM_V2 0x08
#define JBD2_INCOMPAT_CSUM_V3 0x10
#define JBD2_INCOMPAT_FAST_COMMIT 0x20
#define JBD2_INCOMPAT_KNOWN 0x3f
#define JBD2_FLAG_ESCAPE 0x1
#define JBD2_FLAG_SAME_UUID 0x2
#define JBD2_FLAG_LAST_TAG 0x8

static int cmp_loc(const void *a, const void *b) {
        const struct BitmapLoc *x = a, *y = b;
        return x->blk < y->blk ? -1 : x->blk > y->blk;
}

static int journal_bad(Journal *j, const char *fmt, ...) _printf_(2, 3);
static int journal_bad(Journal *j, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(j->why, sizeof(j->why), fmt, ap);
        va_end(ap);
        return -EUCLEAN;
}

static int journal_read(Journal *j, uint32_t lblk, uint8_t *buf) {
        blk64_t pblk = 0;
        errcode_t e;

        e = ext2fs_bmap2(j->fs, j->ino, &j->inode, NULL, 0, lblk, NULL, &pblk);
        if (e)
                return journal_bad(j, "journal block %" PRIu32 " cannot be mapped: %s", lblk, ext_strerror(e));
        if (pblk == 0 || pblk >= ext2fs_blocks_count(j->fs->super))
                return journal_bad(j, "journal block %" PRIu32 " is not allocated", lblk);
        e = io_channel_read_blk64(j->fs->io, pblk, 1, buf);
        if (e)
                return journal_bad(j, "journal block %" PRIu32 " cannot be read: %s", lblk, ext_strerror(e));
        return 0;
}

static uint32_t journal_next(const Journal *j, uint32_t blk) {
        return blk + 1 >= j->maxlen ? j->first : blk + 1;
}

static size_t journal_tag_bytes(uint32_t incompat) {
        if (incompat & JBD2_INCOMPAT_CSUM_V3)
                return 16;
        size_t sz = 12 + (incompat & JBD2_INCOMPAT_CSUM_V2 ? 2 : 0);
        return incompat & JBD2_INCOMPAT_64BIT ? sz : sz - 4;
}

/* The superblock geometry must not change under us: an unreplayed online
 * resize would leave blocks past our blocks_count in use. */
static int journal_check_super(Journal *j, const uint8_t *blk) {
        struct ext2_super_block *sb = j->fs->super;
        const uint8_t *s = blk + EXT_SB_OFFSET % j->fs->blocksize;
        uint32_t hi = ext2fs_has_feature_64bit(sb) ? get_le32(s + 0x150) : 0;

        if (get_le32(s + 0x04) != sb->s_blocks_count || hi != (ext2fs_has_feature_64bit(sb) ? sb->s_blocks_count_hi : 0) ||
            get_le32(s + 0x14) != sb->s_first_data_block || get_le32(s + 0x18) != sb->s_log_block_size ||
            get_le32(s + 0x1C) != sb->s_log_cluster_size || get_le32(s + 0x20) != sb->s_blocks_per_group ||
            get_le32(s + 0x24) != sb->s_clusters_per_group ||
            ((get_le32(s + 0x60) ^ sb->s_feature_incompat) & ~(uint32_t) EXT3_FEATURE_INCOMPAT_RECOVER))
                return journal_bad(j, "the journal changes the superblock's geometry or features");
        return 0;
}

/* ORs a journaled copy of group g's block bitmap into the in-memory bitmap:
 * replay writes it, so every block it marks is in use afterwards. */
static void journal_merge_bitmap(Journal *j, dgrp_t g, const uint8_t *bits) {
        ext2_filsys fs = j->fs;
        blk64_t first = ext2fs_group_first_block2(fs, g), last = ext2fs_group_last_block2(fs, g);
        uint64_t n = EXT2FS_NUM_B2C(fs, last - first + 1);

        for (uint64_t i = 0; i < n;) {
                if (!(bits[i / 8] & (1u << (i % 8)))) {
                        i++;
                        continue;
                }
                uint64_t e = i;
                while (e < n && (bits[e / 8] & (1u << (e % 8))))
                        e++;
                blk64_t b = first + EXT2FS_C2B(fs, i), be = first + EXT2FS_C2B(fs, e);
                if (be > last + 1)
                        be = last + 1;
                while (b < be) {
                        unsigned num = be - b > (1u << 30) ? 1u << 30 : (unsigned) (be - b);
                        ext2fs_mark_block_bitmap_range2(fs->block_map, b, num);
                        b += num;
                }
                i = e;
        }
}

static int journal_add_target(Journal *j, blk64_t target) {
        if (j->n_targets == j->cap_targets) {
                size_t cap = j->cap_targets ? j->cap_targets * 2 : 256;
                blk64_t *v = realloc(j->targets, cap * sizeof(*v));
                if (!v)
                        return -ENOMEM;
                j->targets = v;
                j->cap_targets = cap;
        }
        j->targets[j->n_targets++] = target;
        return 0;
}

static int journal_tag(Journal *j, blk64_t target, uint32_t flags, uint32_t lblk) {
        ext2_filsys fs = j->fs;
        struct BitmapLoc key = { .blk = target }, *loc;
        blk64_t sb_blk = EXT_SB_OFFSET / fs->blocksize;
        int k;

        if (target >= ext2fs_blocks_count(fs->super))
                return journal_bad(j, "the journal writes block %llu, past the end", (unsigned long long) target);
        k = journal_add_target(j, target);
        if (k < 0)
                return k;
        loc = bsearch(&key, j->locs, fs->group_desc_count, sizeof(*j->locs), cmp_loc);
        if (!loc && target != sb_blk)
                return 0;
        k = journal_read(j, lblk, j->data);
        if (k < 0)
                return k;
        /* An escaped block had the journal magic in its first word. */
        if (flags & JBD2_FLAG_ESCAPE) {
                j->data[0] = 0xC0;
                j->data[1] = 0x3B;
                j->data[2] = 0x39;
                j->data[3] = 0x98;
        }
        if (target == sb_blk) {
                k = journal_check_super(j, j->data);
                if (k < 0)
                        return k;
        }
        if (loc)
                journal_merge_bitmap(j, loc->group, j->data);
        return 0;
}

/* Walks the log from s_start the way jbd2's PASS_SCAN does: blocks with the
 * magic and the expected sequence, a commit ending each transaction, the
 * first mismatch ending the log. Transactions without a commit and revoked
 * blocks are kept: a superset of what replay writes is safe. */
static int journal_walk(Journal *j, uint32_t start, uint32_t seq) {
        uint32_t bs = j->fs->blocksize, blk = start;
        size_t tag_bytes = journal_tag_bytes(j->incompat);
        size_t tag_end = bs - (j->incompat & (JBD2_INCOMPAT_CSUM_V2 | JBD2_INCOMPAT_CSUM_V3) ? 4 : 0);
        uint64_t steps = 0, limit = (uint64_t) j->maxlen - j->first;
        int k;

        for (;;) {
                if (++steps > limit)
                        return journal_bad(j, "the log never ends");
                k = journal_read(j, blk, j->buf);
                if (k < 0)
                        return k;
                if (get_be32(j->buf) != JBD2_MAGIC || get_be32(j->buf + 8) != seq)
                        return 0;
                switch (get_be32(j->buf + 4)) {
                case JBD2_DESCRIPTOR_BLOCK:
                        for (size_t off = 12; off + tag_bytes <= tag_end;) {
                                const uint8_t *tag = j->buf + off;
                                uint32_t flags = j->incompat & JBD2_INCOMPAT_CSUM_V3 ? get_be32(tag + 4) : get_be16(tag + 6);
                                blk64_t target = get_be32(tag);
                                if (j->incompat & JBD2_INCOMPAT_64BIT)
                                        target |= (blk64_t) get_be32(tag + 8) << 32;
                                blk = journal_next(j, blk);
                                if (++steps > limit)
                                        return journal_bad(j, "the log never ends");
                                k = journal_tag(j, target, flags, blk);
                                if (k < 0)
                                        return k;
                                off += tag_bytes + (flags & JBD2_FLAG_SAME_UUID ? 0 : 16);
                                if (flags & JBD2_FLAG_LAST_TAG)
                                        break;
                        }
                        break;
                case JBD2_COMMIT_BLOCK:
                        j->transactions++;
                        seq++;
                        break;
                case JBD2_REVOKE_BLOCK:
                        break;
                default:
                        return 0;
                }
                blk = journal_next(j, blk);
        }
}

int ext_journal_collect(Journal *j) {
        ext2_filsys fs = j->fs;
        struct ext2_super_block *sb = fs->super;
        errcode_t e;
        int k;

        if (!ext2fs_has_feature_journal(sb))
                return journal_bad(j, "there is no journal");
        if (sb->s_journal_inum == 0)
                return journal_bad(j, "the journal is on an external device");
        j->ino = sb->s_journal_inum;
        e = ext2fs_read_inode(fs, j->ino, &j->inode);
        if (e)
                return journal_bad(j, "the journal inode cannot be read: %s", ext_strerror(e));

        j->buf = malloc(fs->blocksize);
        j->data = malloc(fs->blocksize);
        j->locs = calloc(fs->group_desc_count, sizeof(*j->locs));
        if (!j->buf || !j->data || !j->locs)
                return -ENOMEM;

        k = journal_read(j, 0, j->buf);
        if (k < 0)
                return k;
        uint32_t type = get_be32(j->buf + 4);
        if (get_be32(j->buf) != JBD2_MAGIC || (type != JBD2_SUPERBLOCK_V1 && type != JBD2_SUPERBLOCK_V2))
                return journal_bad(j, "the journal superblock has no jbd2 magic");
        uint32_t jbs = get_be32(j->buf + 12);
        j->maxlen = get_be32(j->buf + 16);
        j->first = get_be32(j->buf + 20);
        uint32_t seq = get_be32(j->buf + 24), start = get_be32(j->buf + 28);
        int32_t jerrno = (int32_t) get_be32(j->buf + 32);
        j->incompat = type == JBD2_SUPERBLOCK_V2 ? get_be32(j->buf + 40) : 0;
        uint32_t ro_compat = type == JBD2_SUPERBLOCK_V2 ? get_be32(j->buf + 44) : 0;

        if (jbs != fs->blocksize)
                return journal_bad(j, "the journal block size %" PRIu32 " differs from the filesystem's", jbs);
        if (j->maxlen > EXT2_I_SIZE(&j->inode) / fs->blocksize || j->first == 0 || j->first >= j->maxlen)
                return journal_bad(j, "the journal superblock has an impossible geometry");
        if ((j->incompat & ~(uint32_t) JBD2_INCOMPAT_KNOWN) || ro_compat)
                return journal_bad(j, "the journal has unknown features (incompat 0x%" PRIx32 ", ro_compat 0x%" PRIx32 ")",
                                   j->incompat, ro_compat);
        /* Fast commits are replayed after the log, from their own area,
         * in a format of their own. */
        if (j->incompat & JBD2_INCOMPAT_FAST_COMMIT)
                return journal_bad(j, "the journal uses fast commits");
        if (jerrno != 0)
                return journal_bad(j, "the journal was aborted (errno %" PRId32 ")", jerrno);
        if (start == 0)
                return 0;
        if (start < j->first || start >= j->maxlen)
                return journal_bad(j, "the journal starts outside its log");

        for (dgrp_t g = 0; g < fs->group_desc_count; g++)
                j->locs[g] = (struct BitmapLoc) { ext2fs_block_bitmap_loc(fs, g), g };
        qsort(j->locs, fs->group_desc_count, sizeof(*j->locs), cmp_loc);
        return journal_walk(j, start, seq);
}

void ext_journal_done(Journal *j) {
        free(j->buf);
        free(j->data);
        free(j->locs);
        free(j->targets);
}
