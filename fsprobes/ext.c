/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ext2/3/4 through libext2fs, read-only. The library reads through an
 * io_manager of our own that sends every read to the Reader, so it can
 * neither stray outside the partition nor mistake the end of a truncated
 * image for zeros. The used set is the block bitmap; a filesystem that needs
 * journal recovery also gets every block its unreplayed transactions write,
 * and every bit set in the block bitmap copies they carry. Anything dirty,
 * inconsistent or not understood is mapped whole. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <et/com_err.h>
#include <ext2fs/ext2_fs.h>
#include <ext2fs/ext2fs.h>

#include "probe.h"

static const char *const types[] = { "ext2", "ext3", "ext4", "ext4dev", NULL };

#define EXT_SB_OFFSET 1024
#define EXT_SB_MAGIC 0xEF53
#define EXT_MAX_LOG_BLOCK 6 /* 64 KiB */

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

#define READER_PREFIX "bmapscan-reader:"

/* What the io channel reads through, and the first read that failed. */
typedef struct ReaderIo {
        const Reader *r;
        int err;
        uint64_t err_off, err_len;
} ReaderIo;

static struct struct_io_manager reader_io_manager;

static errcode_t rio_open(const char *name, int flags, io_channel *ret) {
        io_channel ch = NULL;
        char *end;
        errcode_t e;

        if (!name || strncmp(name, READER_PREFIX, strlen(READER_PREFIX)) != 0)
                return EXT2_ET_BAD_DEVICE_NAME;
        if (flags & IO_FLAG_RW)
                return EROFS;
        errno = 0;
        uintptr_t p = (uintptr_t) strtoull(name + strlen(READER_PREFIX), &end, 16);
        if (errno || *end || p == 0)
                return EXT2_ET_BAD_DEVICE_NAME;

        e = ext2fs_get_memzero(sizeof(*ch), &ch);
        if (e)
                return e;
        e = ext2fs_get_mem(strlen(name) + 1, &ch->name);
        if (e) {
                ext2fs_free_mem(&ch);
                return e;
        }
        strcpy(ch->name, name);
        ch->magic = EXT2_ET_MAGIC_IO_CHANNEL;
        ch->manager = &reader_io_manager;
        ch->block_size = 1024;
        ch->refcount = 1;
        ch->private_data = (void *) p;
        *ret = ch;
        return 0;
}

static errcode_t rio_close(io_channel ch) {
        if (--ch->refcount > 0)
                return 0;
        ext2fs_free_mem(&ch->name);
        ext2fs_free_mem(&ch);
        return 0;
}

static errcode_t rio_set_blksize(io_channel ch, int blksize) {
        if (blksize <= 0)
                return EXT2_ET_INVALID_ARGUMENT;
        ch->block_size = blksize;
        return 0;
}

static errcode_t rio_read_blk64(io_channel ch, unsigned long long block, int count, void *data) {
        ReaderIo *rio = ch->private_data;
        /* A negative count is a byte count (the superblock is read so). */
        uint64_t len = count < 0 ? (uint64_t) -(int64_t) count : (uint64_t) count * (uint64_t) ch->block_size;
        uint64_t off;
        int k;

        if (__builtin_mul_overflow((uint64_t) block, (uint64_t) ch->block_size, &off) || len > SIZE_MAX)
                k = -ERANGE;
        else
                k = reader_read(rio->r, off, data, (size_t) len);
        if (k == 0)
                return 0;
        if (rio->err == 0) {
                rio->err = k;
                rio->err_off = (uint64_t) block * (uint64_t) ch->block_size;
                rio->err_len = len;
        }
        return k == -ERANGE || k == -ENODATA ? EXT2_ET_SHORT_READ : (errcode_t) -k;
}

static errcode_t rio_read_blk(io_channel ch, unsigned long block, int count, void *data) {
        return rio_read_blk64(ch, block, count, data);
}

static errcode_t rio_write_blk64(io_channel ch, unsigned long long block, int count, const void *data) {
        return EROFS;
}

static errcode_t rio_write_blk(io_channel ch, unsigned long block, int count, const void *data) {
        return EROFS;
}

static errcode_t rio_write_byte(io_channel ch, unsigned long offset, int count, const void *data) {
        return EROFS;
}

static errcode_t rio_flush(io_channel ch) {
        return 0;
}

static errcode_t rio_set_option(io_channel ch, const char *option, const char *arg) {
        return EXT2_ET_INVALID_ARGUMENT;
}

static struct struct_io_manager reader_io_manager = {
        .magic = EXT2_ET_MAGIC_IO_MANAGER,
        .name = "bmapscan reader I/O manager",
        .open = rio_open,
        .close = rio_close,
        .set_blksize = rio_set_blksize,
        .read_blk = rio_read_blk,
        .write_blk = rio_write_blk,
        .flush = rio_flush,
        .write_byte = rio_write_byte,
        .set_option = rio_set_option,
        .read_blk64 = rio_read_blk64,
        .write_blk64 = rio_write_blk64,
};

static pthread_once_t error_table_once = PTHREAD_ONCE_INIT;

static void error_table_init(void) {
        initialize_ext2_error_table();
}

static const char *ext_strerror(errcode_t e) {
        pthread_once(&error_table_once, error_table_init);
        return error_message(e);
}

/* A libext2fs error as a negative errno, preferring what the Reader said. */
static int ext_errno(const ReaderIo *rio, errcode_t e) {
        if (rio->err < 0)
                return rio->err;
        if (e > 0 && e < 4096)
                return (int) -e;
        return -EUCLEAN;
}

static int ext_fail(ProbeResult *res, const ReaderIo *rio, errcode_t e, const char *what) {
        if (rio->err < 0)
                return probe_fail(res, rio->err, "%s: %s (reading %" PRIu64 " bytes at offset %" PRIu64 ": %s)", what,
                                  ext_strerror(e), rio->err_len, rio->err_off,
                                  rio->err == -ERANGE    ? "outside the partition"
                                  : rio->err == -ENODATA ? "past the end of the image"
                                                         : strerror(-rio->err));
        return probe_fail(res, ext_errno(rio, e), "%s: %s", what, ext_strerror(e));
}

static bool is_csum_error(errcode_t e) {
        return e == EXT2_ET_SB_CSUM_INVALID || e == EXT2_ET_UNKNOWN_CSUM || e == EXT2_ET_BLOCK_BITMAP_CSUM_INVALID;
}

/* The journal of a filesystem that needs recovery, as far as we read it. */
typedef struct Journal {
        ext2_filsys fs;
        ext2_ino_t ino;
        struct ext2_inode inode;
        uint32_t first, maxlen, incompat;
        uint8_t *buf, *data;
        /* Block bitmap locations, sorted, to spot journaled bitmap copies. */
        struct BitmapLoc {
                blk64_t blk;
                dgrp_t group;
        } *locs;
        /* Every block the log writes. */
        blk64_t *targets;
        size_t n_targets, cap_targets;
        unsigned transactions;
        char why[160];
} Journal;

static int cmp_loc(const void *a, const void *b) {
        const struct BitmapLoc *x = a, *y = b;
        return x->blk < y->blk ? -1 : x->blk > y->blk;
}

static int cmp_blk(const void *a, const void *b) {
        const blk64_t *x = a, *y = b;
        return *x < *y ? -1 : *x > *y;
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

/* Returns 0 with j->targets filled and the bitmap copies merged, -ENOMEM,
 * or another negative errno with j->why saying what was not understood. */
static int journal_collect(Journal *j) {
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

static void journal_done(Journal *j) {
        free(j->buf);
        free(j->data);
        free(j->locs);
        free(j->targets);
}

/* Adds the bitmap's runs, group by group, as byte extents; returns 1 with
 * *ret_group set when a group's descriptor counts fewer free clusters than
 * its bitmap has: one of the two is wrong, and the bitmap may be the one. */
static int collect_bitmap(ext2_filsys fs, Extents *used, dgrp_t *ret_group) {
        uint64_t bs = fs->blocksize, end = ext2fs_blocks_count(fs->super);
        int k;

        for (dgrp_t g = 0; g < fs->group_desc_count; g++) {
                blk64_t first = ext2fs_group_first_block2(fs, g), last = ext2fs_group_last_block2(fs, g);
                uint64_t used_clusters = 0;

                for (blk64_t b = first; b <= last;) {
                        blk64_t s, z;
                        errcode_t e = ext2fs_find_first_set_block_bitmap2(fs->block_map, b, last, &s);
                        if (e == ENOENT)
                                break;
                        if (e)
                                return -EIO;
                        e = ext2fs_find_first_zero_block_bitmap2(fs->block_map, s, last, &z);
                        if (e == ENOENT)
                                z = last + 1;
                        else if (e)
                                return -EIO;
                        if (z > end)
                                z = end;
                        if (z <= s)
                                return -EIO;
                        k = extents_add(used, s * bs, z * bs);
                        if (k < 0)
                                return k;
                        used_clusters += EXT2FS_NUM_B2C(fs, z - s);
                        b = z;
                }
                uint64_t free_counted = EXT2FS_NUM_B2C(fs, last - first + 1) - used_clusters;
                if (ext2fs_bg_free_blocks_count(fs, g) < free_counted) {
                        *ret_group = g;
                        return 1;
                }
        }
        return 0;
}

static int collect_fs(const Reader *r, ProbeResult *res, ext2_filsys fs, ReaderIo *rio) {
        struct ext2_super_block *sb = fs->super;
        uint64_t bs = fs->blocksize, blocks = ext2fs_blocks_count(sb);
        _cleanup_(journal_done) Journal j = { .fs = fs };
        bool recover = ext2fs_has_feature_journal_needs_recovery(sb);
        errcode_t e;
        dgrp_t bad;
        int k;

        res->fs_size = blocks * bs;
        if (sb->s_state & EXT2_ERROR_FS)
                return probe_whole(r, res, "errors recorded in the superblock: fully mapped");
        if (!(sb->s_state & EXT2_VALID_FS))
                return probe_whole(r, res, "not cleanly unmounted: fully mapped");
        if (sb->s_feature_incompat & ~(uint32_t) EXT2_LIB_FEATURE_INCOMPAT_SUPP)
                return probe_whole(r, res, "unknown incompatible features 0x%" PRIx32 ": fully mapped",
                                   sb->s_feature_incompat & ~(uint32_t) EXT2_LIB_FEATURE_INCOMPAT_SUPP);
        if (sb->s_feature_ro_compat & ~(uint32_t) EXT2_LIB_FEATURE_RO_COMPAT_SUPP)
                return probe_whole(r, res, "unknown read-only features 0x%" PRIx32 ": fully mapped",
                                   sb->s_feature_ro_compat & ~(uint32_t) EXT2_LIB_FEATURE_RO_COMPAT_SUPP);
        if (ext2fs_has_feature_journal_dev(sb))
                return probe_whole(r, res, "an external journal device: fully mapped");

        /* One bitmap block per group: more clusters than it has bits would
         * read past it (the library only bounds this by 65528). */
        if (sb->s_clusters_per_group > 8 * fs->blocksize)
                return probe_fail(res, -EUCLEAN, "corrupt superblock: %" PRIu32 " clusters per group", sb->s_clusters_per_group);

        e = ext2fs_check_desc(fs);
        if (e)
                return probe_whole(r, res, "bad group descriptors (%s): fully mapped", ext_strerror(e));
        if (ext2fs_has_group_desc_csum(fs))
                for (dgrp_t g = 0; g < fs->group_desc_count; g++)
                        if (!ext2fs_group_desc_csum_verify(fs, g))
                                return probe_whole(r, res, "group %" PRIu32 " descriptor checksum is wrong: fully mapped", g);

        e = ext2fs_read_block_bitmap(fs);
        if (e && is_csum_error(e) && rio->err == 0)
                return probe_whole(r, res, "%s: fully mapped", ext_strerror(e));
        if (e)
                return ext_fail(res, rio, e, "cannot read the block bitmap");

        if (recover) {
                k = journal_collect(&j);
                if (k == -ENOMEM)
                        return probe_fail(res, k, "out of memory reading the journal");
                if (k < 0)
                        return probe_whole(r, res, "needs journal recovery, and %s: fully mapped", j.why);
        }

        k = collect_bitmap(fs, &res->used, &bad);
        if (k < 0)
                return probe_fail(res, k, "cannot walk the block bitmap: %s", strerror(-k));
        if (k > 0)
                return probe_whole(r, res, "group %" PRIu32 " has fewer free blocks in its descriptor than in its bitmap: fully mapped",
                                   bad);

        /* Blocks before s_first_data_block (block 0 with 1 KiB blocks: the
         * boot sector) are outside the bitmap. */
        k = extents_add(&res->used, 0, (uint64_t) sb->s_first_data_block * bs);
        if (k < 0)
                return probe_fail(res, k, "out of memory");

        if (j.n_targets > 0) {
                _cleanup_extents_ Extents t = EXTENTS_INIT;
                qsort(j.targets, j.n_targets, sizeof(*j.targets), cmp_blk);
                for (size_t i = 0; i < j.n_targets && k >= 0; i++)
                        k = extents_add(&t, j.targets[i] * bs, (j.targets[i] + 1) * bs);
                if (k >= 0)
                        k = extents_union(&res->used, &t);
                if (k < 0)
                        return probe_fail(res, k, "out of memory");
        }

        if (recover && j.n_targets > 0)
                snprintf(res->how, sizeof(res->how), "block bitmap and journal (%zu logged blocks, %u committed transaction%s)",
                         j.n_targets, j.transactions, j.transactions == 1 ? "" : "s");
        else
                snprintf(res->how, sizeof(res->how), "block bitmap");
        return 0;
}

static int collect(const Reader *r, const char *fstype, ProbeResult *res) {
        ReaderIo rio = { .r = r };
        uint8_t sb[EXT_SB_OFFSET];
        char name[64];
        ext2_filsys fs = NULL;
        errcode_t e;
        int k;

        /* Our own look at the size first: the library sizes its group
         * descriptor table from blocks_count, which must fit the partition. */
        k = reader_read(r, EXT_SB_OFFSET, sb, sizeof(sb));
        if (k < 0)
                return probe_fail(res, k, "cannot read the superblock: %s",
                                  k == -ERANGE ? "the partition is too small" : strerror(-k));
        if (get_le16(sb + 0x38) != EXT_SB_MAGIC)
                return probe_fail(res, -EINVAL, "no ext2/3/4 superblock magic");
        uint32_t log_bs = get_le32(sb + 0x18);
        if (log_bs <= EXT_MAX_LOG_BLOCK) {
                uint64_t blocks = get_le32(sb + 0x04), bytes;
                if (get_le32(sb + 0x60) & EXT4_FEATURE_INCOMPAT_64BIT)
                        blocks |= (uint64_t) get_le32(sb + 0x150) << 32;
                if (__builtin_mul_overflow(blocks, (uint64_t) 1024 << log_bs, &bytes) || bytes > r->size)
                        return probe_whole(r, res, "the filesystem (%" PRIu64 " blocks of %u bytes) is larger than its partition: fully mapped",
                                           blocks, 1024u << log_bs);
                if (bytes > r->image_size || r->base > r->image_size - bytes)
                        return probe_whole(r, res, "the image ends inside the filesystem (truncated): fully mapped");
        }

        snprintf(name, sizeof(name), READER_PREFIX "%" PRIxPTR, (uintptr_t) &rio);
        e = ext2fs_open2(name, NULL, EXT2_FLAG_64BITS, 0, 0, &reader_io_manager, &fs);
        if (e) {
                uint32_t unknown = get_le32(sb + 0x60) & ~(uint32_t) EXT2_LIB_FEATURE_INCOMPAT_SUPP;
                if (e == EXT2_ET_UNSUPP_FEATURE && unknown)
                        return probe_whole(r, res, "unknown incompatible features 0x%" PRIx32 ": fully mapped", unknown);
                if (e == EXT2_ET_UNSUPP_FEATURE || e == EXT2_ET_RO_UNSUPP_FEATURE)
                        return probe_whole(r, res, "%s: fully mapped", ext_strerror(e));
                if (is_csum_error(e) && rio.err == 0)
                        return probe_whole(r, res, "%s: fully mapped", ext_strerror(e));
                return ext_fail(res, &rio, e, "cannot open");
        }
        k = collect_fs(r, res, fs, &rio);
        ext2fs_free(fs);
        return k;
}

const FsProbe fsprobe_ext = {
        .name = "ext",
        .types = types,
        .collect = collect,
};
