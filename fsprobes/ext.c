/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ext2/3/4 through libext2fs, read-only. The library reads through an
 * io_manager of our own that sends every read to the Reader, so it can
 * neither stray outside the partition nor mistake the end of a truncated
 * image for zeros. The used set is the block bitmap; a filesystem that needs
 * journal recovery also gets every block its unreplayed transactions write,
 * and every bit set in the block bitmap copies they carry. Anything dirty,
 * inconsistent or not understood is mapped whole. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ext-internal.h"

static const char *const types[] = { "ext2", "ext3", "ext4", "ext4dev", NULL };

#define EXT_SB_MAGIC 0xEF53
#define EXT_MAX_LOG_BLOCK 6 /* 64 KiB */

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

static int cmp_blk(const void *a, const void *b) {
        const blk64_t *x = a, *y = b;
        return *x < *y ? -1 : *x > *y;
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
        _cleanup_(ext_journal_done) Journal j = { .fs = fs };
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
                k = ext_journal_collect(&j);
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

        e = ext_open_reader(&rio, &fs);
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
