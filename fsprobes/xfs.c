/* SPDX-License-Identifier: GPL-2.0-or-later */
/* XFS (v4 and v5): a block is used unless the free-space B+tree by block
 * number (bnobt) of its allocation group lists it. Everything XFS
 * allocates (the AG headers, the AGFL, the internal log, inode chunks,
 * every btree and all file data) comes out of that tree, so its
 * complement is the used space by construction. The tree by size (cntbt)
 * must list the same extents: a bnobt that drifted from it (v4 has no
 * CRCs) could leave blocks in use out. The tree is only the
 * truth when the log holds nothing to replay: the log's head must be a
 * clean unmount record, or the filesystem is mapped whole. So is one with
 * an external log or a realtime device (their blocks are elsewhere),
 * unknown features, or AGFs that disagree with the superblock. On v5 the
 * CRC32C of the superblock, every AGF and every btree block is checked. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "checksum.h"
#include "probe.h"

static const char *const types[] = { "xfs", NULL };

#define XFS_SB_MAGIC 0x58465342       /* XFSB */
#define XFS_AGF_MAGIC 0x58414746      /* XAGF */
#define XFS_ABTB_MAGIC 0x41425442     /* ABTB: v4 bnobt block */
#define XFS_ABTB_CRC_MAGIC 0x41423342 /* AB3B: v5 bnobt block */
#define XFS_ABTC_MAGIC 0x41425443     /* ABTC: v4 cntbt block */
#define XFS_ABTC_CRC_MAGIC 0x41423343 /* AB3C: v5 cntbt block */
#define XLOG_HEADER_MAGIC 0xFEEDBABEu

/* Superblock fields (big-endian). */
enum {
        SB_BLOCKSIZE = 4,
        SB_DBLOCKS = 8,
        SB_RBLOCKS = 16,
        SB_REXTENTS = 24,
        SB_UUID = 32,
        SB_LOGSTART = 48,
        SB_AGBLOCKS = 84,
        SB_AGCOUNT = 88,
        SB_LOGBLOCKS = 96,
        SB_VERSIONNUM = 100,
        SB_SECTSIZE = 102,
        SB_BLOCKLOG = 120,
        SB_SECTLOG = 121,
        SB_AGBLKLOG = 124,
        SB_INPROGRESS = 126,
        SB_FDBLOCKS = 144,
        SB_FEATURES2 = 200,
        SB_FEAT_COMPAT = 208,
        SB_FEAT_RO_COMPAT = 212,
        SB_FEAT_INCOMPAT = 216,
        SB_FEAT_LOG_INCOMPAT = 220,
        SB_CRC = 224,
        SB_META_UUID = 248,
        SB_V5_END = 264,
};

/* AGF fields. */
enum {
        AGF_VERSIONNUM = 4,
        AGF_SEQNO = 8,
        AGF_LENGTH = 12,
        AGF_BNO_ROOT = 16,
        AGF_CNT_ROOT = 20,
        AGF_BNO_LEVEL = 28,
        AGF_CNT_LEVEL = 32,
        AGF_FLCOUNT = 48,
        AGF_FREEBLKS = 52,
        AGF_BTREEBLKS = 60,
        AGF_UUID = 64,
        AGF_CRC = 216,
        AGF_V5_END = 224,
};

#define XFS_SB_VERSION_5 5
#define XFS_SB_VERSION_4 4
#define XFS_SB_VERSION_NUMBITS 0x000f
/* v4 logs with record headers of more than one block. */
#define XFS_SB_VERSION_LOGV2BIT 0x0400
/* features2: lazy superblock counters, which keep agf_btreeblks. */
#define XFS_SB_VERSION2_LAZYSBCOUNTBIT 0x00000002

/* v5 features this parser knows; any other bit maps the filesystem whole.
 * None of the known ones changes the bnobt or the AGF. */
#define XFS_SB_FEAT_RO_COMPAT_KNOWN 0x0000000fu /* finobt, rmapbt, reflink, inobtcount */
#define XFS_SB_FEAT_INCOMPAT_FTYPE 0x1u
#define XFS_SB_FEAT_INCOMPAT_SPINODES 0x2u
#define XFS_SB_FEAT_INCOMPAT_META_UUID 0x4u
#define XFS_SB_FEAT_INCOMPAT_BIGTIME 0x8u
#define XFS_SB_FEAT_INCOMPAT_NEEDSREPAIR 0x10u
#define XFS_SB_FEAT_INCOMPAT_NREXT64 0x20u
#define XFS_SB_FEAT_INCOMPAT_KNOWN                                                                      \
        (XFS_SB_FEAT_INCOMPAT_FTYPE | XFS_SB_FEAT_INCOMPAT_SPINODES | XFS_SB_FEAT_INCOMPAT_META_UUID | \
         XFS_SB_FEAT_INCOMPAT_BIGTIME | XFS_SB_FEAT_INCOMPAT_NREXT64)

/* The kernel's limit on the height of any btree (XFS_BTREE_MAXLEVELS in
 * older kernels); a bnobt is far lower in practice. */
#define BTREE_MAX_LEVELS 9
/* The log is looked at in 512-byte basic blocks (BB). */
#define BBSIZE 512
/* Up to 8 in-core log buffers of up to 256 KiB can be in flight, so writes
 * may reach the disk out of order within 2 MiB before the head: the
 * kernel's own scan window (XLOG_TOTAL_REC_SHIFT). */
#define LOG_SCAN_BBS 4096u
/* A log record is at most 256 KiB of data and 8 header blocks. */
#define LOG_MAX_RECORD_BBS (512u + 8u)
#define XLOG_HEADER_CYCLE_SIZE 32768u
/* The record header as the kernel checksums it: the C struct with its
 * tail padding (328 bytes), or 324 bytes from a 32-bit x86 kernel, which
 * packs 64-bit fields on 4 bytes. Each extra header block of a v2 record
 * contributes its first 260 bytes (xh_cycle and xh_cycle_data). */
#define XLOG_REC_HEADER_SUM 328u
#define XLOG_REC_HEADER_SUM_I386 324u
#define XLOG_REC_EXT_HEADER_SUM 260u
#define XLOG_UNMOUNT_TRANS 0x20
#define XFS_LOG_CLIENTID 0xAA

typedef struct Xfs {
        const Reader *r;
        bool v5;
        uint32_t blocksize, sectsize, agblocks, agcount, logblocks;
        uint8_t agblklog;
        uint64_t dblocks, logstart, fdblocks;
        uint32_t features2;
        bool logv2;
        /* The log stamps sb_uuid (never meta_uuid) in its record headers;
         * the metadata blocks carry meta_uuid. */
        uint8_t uuid[16], meta_uuid[16];
        /* Filled AG by AG: the free extents in bytes, the AGFs' sums. */
        Extents free;
        uint64_t agf_free, agf_flcount, agf_btreeblks, free_extents, btree_blocks;
} Xfs;

static void xfs_done(Xfs *x) {
        extents_done(&x->free);
}

static unsigned log2u(uint64_t v) {
        unsigned n = 0;
        while (v > 1) {
                v >>= 1;
                n++;
        }
        return n;
}

/* Whether the v5 CRC32C stored little-endian at crc_off of buf[0, len)
 * matches, computed with that field taken as zero. */
static bool crc_ok(const uint8_t *buf, size_t len, size_t crc_off) {
        static const uint8_t zero[4];
        uint32_t c = crc32c(0, buf, crc_off);
        c = crc32c(c, zero, 4);
        c = crc32c(c, buf + crc_off + 4, len - crc_off - 4);
        return c == get_le32(buf + crc_off);
}

static int parse_sb(const Reader *r, Xfs *x, ProbeResult *res, bool *ret_whole) {
        uint8_t head[512];
        int k = reader_read(r, 0, head, sizeof(head));
        if (k < 0)
                return probe_fail(res, k, "cannot read the superblock: %s", strerror(-k));
        if (get_be32(head) != XFS_SB_MAGIC)
                return probe_fail(res, -EINVAL, "no XFSB magic in the superblock");

        x->blocksize = get_be32(head + SB_BLOCKSIZE);
        x->sectsize = get_be16(head + SB_SECTSIZE);
        if (x->blocksize < 512 || x->blocksize > 65536 || !is_pow2(x->blocksize) ||
            head[SB_BLOCKLOG] != log2u(x->blocksize))
                return probe_fail(res, -EINVAL, "block size %" PRIu32 " (log %u) is not a power of two from 512 to 65536",
                                  x->blocksize, head[SB_BLOCKLOG]);
        if (x->sectsize < 512 || x->sectsize > 32768 || !is_pow2(x->sectsize) || x->sectsize > x->blocksize ||
            head[SB_SECTLOG] != log2u(x->sectsize))
                return probe_fail(res, -EINVAL, "sector size %" PRIu32 " is not a power of two from 512 to the block size",
                                  x->sectsize);

        uint16_t version = get_be16(head + SB_VERSIONNUM) & XFS_SB_VERSION_NUMBITS;
        if (version != XFS_SB_VERSION_4 && version != XFS_SB_VERSION_5)
                return probe_fail(res, -EOPNOTSUPP, "superblock version %" PRIu16 " (only 4 and 5 are read)", version);
        x->v5 = version == XFS_SB_VERSION_5;
        x->logv2 = x->v5 || (get_be16(head + SB_VERSIONNUM) & XFS_SB_VERSION_LOGV2BIT);
        memcpy(x->uuid, head + SB_UUID, 16);

        /* The CRC covers the whole sector. */
        _cleanup_free_ uint8_t *sb = malloc(x->sectsize);
        if (!sb)
                return probe_fail(res, -ENOMEM, "out of memory for the superblock");
        k = reader_read(r, 0, sb, x->sectsize);
        if (k < 0)
                return probe_fail(res, k, "cannot read the superblock sector: %s", strerror(-k));
        if (x->v5 && !crc_ok(sb, x->sectsize, SB_CRC))
                return probe_fail(res, -EBADMSG, "the superblock's CRC32C does not match");

        x->agblocks = get_be32(sb + SB_AGBLOCKS);
        x->agcount = get_be32(sb + SB_AGCOUNT);
        x->agblklog = sb[SB_AGBLKLOG];
        x->dblocks = get_be64(sb + SB_DBLOCKS);
        x->logstart = get_be64(sb + SB_LOGSTART);
        x->logblocks = get_be32(sb + SB_LOGBLOCKS);
        x->fdblocks = get_be64(sb + SB_FDBLOCKS);
        x->features2 = get_be32(sb + SB_FEATURES2);
        /* The AG headers take the first 4 sectors; mkfs's smallest AG is 64
         * blocks (XFS_MIN_AG_BLOCKS). agblklog rounds up. */
        if (x->agblocks < 64 || x->agcount == 0 || x->agblklog > 31 || ((uint64_t) 1 << x->agblklog) < x->agblocks ||
            (x->agblklog > 0 && ((uint64_t) 1 << (x->agblklog - 1)) >= x->agblocks))
                return probe_fail(res, -EINVAL, "%" PRIu32 " AGs of %" PRIu32 " blocks (log %u): not a valid geometry", x->agcount,
                                  x->agblocks, x->agblklog);
        uint64_t full = (uint64_t) (x->agcount - 1) * x->agblocks;
        if (x->dblocks <= full || x->dblocks - full > x->agblocks)
                return probe_fail(res, -EINVAL, "%" PRIu64 " blocks do not make %" PRIu32 " AGs of %" PRIu32 " blocks", x->dblocks,
                                  x->agcount, x->agblocks);
        if (x->dblocks > r->size / x->blocksize)
                return probe_fail(res, -EINVAL,
                                  "the filesystem (%" PRIu64 " blocks of %" PRIu32 " bytes) does not fit its partition (%" PRIu64
                                  " bytes)",
                                  x->dblocks, x->blocksize, r->size);
        res->fs_size = x->dblocks * x->blocksize;

        *ret_whole = true;
        if (sb[SB_INPROGRESS])
                return probe_whole(r, res, "mkfs did not finish (sb_inprogress): fully mapped");
        if (get_be64(sb + SB_RBLOCKS) || get_be64(sb + SB_REXTENTS))
                return probe_whole(r, res, "has a realtime device (its blocks are elsewhere): fully mapped");
        if (x->logstart == 0)
                return probe_whole(r, res, "has an external log (cannot tell whether it is clean): fully mapped");
        if (x->v5) {
                uint32_t incompat = get_be32(sb + SB_FEAT_INCOMPAT), ro = get_be32(sb + SB_FEAT_RO_COMPAT);
                uint32_t log_incompat = get_be32(sb + SB_FEAT_LOG_INCOMPAT);
                if (incompat & XFS_SB_FEAT_INCOMPAT_NEEDSREPAIR)
                        return probe_whole(r, res, "is marked as needing xfs_repair: fully mapped");
                if (incompat & ~XFS_SB_FEAT_INCOMPAT_KNOWN)
                        return probe_whole(r, res, "unknown incompat features 0x%" PRIx32 ": fully mapped",
                                           incompat & ~XFS_SB_FEAT_INCOMPAT_KNOWN);
                if (ro & ~XFS_SB_FEAT_RO_COMPAT_KNOWN)
                        return probe_whole(r, res, "unknown ro_compat features 0x%" PRIx32 ": fully mapped",
                                           ro & ~XFS_SB_FEAT_RO_COMPAT_KNOWN);
                /* Set only while the log holds items of such a feature. */
                if (log_incompat)
                        return probe_whole(r, res, "log_incompat features 0x%" PRIx32 " set (the log holds items to replay): fully mapped",
                                           log_incompat);
                memcpy(x->meta_uuid, sb + ((incompat & XFS_SB_FEAT_INCOMPAT_META_UUID) ? SB_META_UUID : SB_UUID), 16);
        }
        *ret_whole = false;
        return 0;
}

/* ---- The log ---- */

typedef struct Log {
        const Xfs *x;
        uint64_t start; /* byte offset in the partition */
        uint32_t n;     /* basic blocks */
} Log;

static int log_read(const Log *l, uint32_t bb, uint8_t *buf, size_t len, ProbeResult *res) {
        int k = reader_read(l->x->r, l->start + (uint64_t) bb * BBSIZE, buf, len);
        if (k < 0)
                return probe_fail(res, k, "cannot read log block %" PRIu32 ": %s", bb, strerror(-k));
        return 0;
}

/* The cycle number of a basic block: its first word, or the h_cycle of a
 * record header (data blocks carry the cycle in place of their first
 * word). */
static int log_cycle(const Log *l, uint32_t bb, uint32_t *ret, ProbeResult *res) {
        uint8_t b[8];
        int k = log_read(l, bb, b, sizeof(b), res);
        if (k < 0)
                return k;
        *ret = get_be32(b) == XLOG_HEADER_MAGIC ? get_be32(b + 4) : get_be32(b);
        return 0;
}

/* Checks that every block in [from, to) has cycle c, reading a run of
 * blocks at a time: the windows around the head are 2 MiB each. */
static int log_expect(const Log *l, uint32_t from, uint32_t to, uint32_t c, bool *ret_ok, ProbeResult *res) {
        uint8_t buf[64 * BBSIZE];
        for (uint32_t bb = from; bb < to; ) {
                uint32_t n = to - bb < 64 ? to - bb : 64;
                int k = log_read(l, bb, buf, (size_t) n * BBSIZE, res);
                if (k < 0)
                        return k;
                for (uint32_t i = 0; i < n; i++) {
                        const uint8_t *b = buf + (size_t) i * BBSIZE;
                        uint32_t got = get_be32(b) == XLOG_HEADER_MAGIC ? get_be32(b + 4) : get_be32(b);
                        if (got != c) {
                                *ret_ok = false;
                                return 0;
                        }
                }
                bb += n;
        }
        return 0;
}

/* Record header fields (big-endian but for h_crc). */
enum {
        LR_CYCLE = 4,
        LR_VERSION = 8,
        LR_LEN = 12,
        LR_LSN = 16,
        LR_CRC = 32,
        LR_NUM_LOGOPS = 40,
        LR_FS_UUID = 304,
        LR_SIZE = 320,
};

/* Reads n basic blocks from bb on, going round the end of the log as a
 * record that wrapped does. */
static int log_read_wrapped(const Log *l, uint32_t bb, uint32_t n, uint8_t *buf, ProbeResult *res) {
        uint32_t first = l->n - bb < n ? l->n - bb : n;
        int k = log_read(l, bb, buf, (size_t) first * BBSIZE, res);
        if (k < 0 || first == n)
                return k;
        return log_read(l, 0, buf + (size_t) first * BBSIZE, (size_t) (n - first) * BBSIZE, res);
}

/* The record's CRC32C as the kernel computes it: the header (hdr_sum
 * bytes, h_crc as zero), the cycle data of each further header block the
 * data needs, then h_len bytes of data as they lie on disk (each block's
 * first word already replaced by its cycle number, also in the part that
 * wrapped round). */
static uint32_t log_record_crc(const uint8_t *rec, uint32_t hblks, uint32_t hlen, size_t hdr_sum) {
        static const uint8_t zero[4];
        uint32_t c = crc32c(0, rec, LR_CRC);
        c = crc32c(c, zero, sizeof(zero));
        c = crc32c(c, rec + LR_CRC + 4, hdr_sum - LR_CRC - 4);
        for (uint32_t i = 1; i < div_round_up(hlen, XLOG_HEADER_CYCLE_SIZE); i++)
                c = crc32c(c, rec + (size_t) i * BBSIZE, XLOG_REC_EXT_HEADER_SUM);
        return crc32c(c, rec + (size_t) hblks * BBSIZE, hlen);
}

/* Whether the record at rec, the last before the head, is a clean unmount
 * record that ends at the head, is whole and belongs to this filesystem.
 * A torn write, a stale record from an earlier life of the log or a log
 * copied from another filesystem must not pass for a clean log: the
 * free-space trees would then be trusted while the log still holds their
 * newer state. */
static int log_unmount_record(const Log *l, uint32_t rec, uint32_t head, bool *ret_clean, const char **ret_why, ProbeResult *res) {
        const Xfs *x = l->x;
        uint8_t h[BBSIZE];
        int k;

        *ret_clean = false;
        if ((k = log_read(l, rec, h, sizeof(h), res)) < 0)
                return k;
        uint32_t hversion = get_be32(h + LR_VERSION), hlen = get_be32(h + LR_LEN), ops = get_be32(h + LR_NUM_LOGOPS);
        uint32_t hsize = get_be32(h + LR_SIZE), cycle = get_be32(h + LR_CYCLE);
        if (hversion != 1 && hversion != 2) {
                *ret_why = "its last record has an unknown version";
                return 0;
        }
        /* Multi-block headers only come with v2 logs, and v2 logs only
         * write v2 records. */
        if ((hversion == 2) != x->logv2) {
                *ret_why = "its last record's version is not the superblock's log version";
                return 0;
        }
        uint32_t hblks = hversion == 2 && hsize > XLOG_HEADER_CYCLE_SIZE ? (uint32_t) div_round_up(hsize, XLOG_HEADER_CYCLE_SIZE) : 1;
        /* Every 32 KiB of data needs a header block for its cycle words. */
        if (hlen == 0 || hlen > 256u * 1024 || hblks > 8 || div_round_up(hlen, XLOG_HEADER_CYCLE_SIZE) > hblks) {
                *ret_why = "its last record header is not valid";
                return 0;
        }
        uint32_t dblks = (uint32_t) div_round_up(hlen, BBSIZE);
        uint64_t end = ((uint64_t) rec + hblks + dblks) % l->n;
        if (ops != 1 || end != head || hlen < 12 || hblks + dblks > l->n) {
                *ret_why = "its last record is not an unmount record at the head";
                return 0;
        }
        /* The kernel stamps sb_uuid, and xfs_admin -U rewrites the log with
         * the new one; a zero UUID (IRIX) is not taken either. */
        if (memcmp(h + LR_FS_UUID, x->uuid, 16) != 0) {
                *ret_why = "its last record's UUID is not the superblock's";
                return 0;
        }
        /* A record says where it was written: one found elsewhere is left
         * from another place or time. */
        if (get_be64(h + LR_LSN) != ((uint64_t) cycle << 32 | rec)) {
                *ret_why = "its last record's LSN is not where it lies";
                return 0;
        }

        _cleanup_free_ uint8_t *buf = malloc((size_t) (hblks + dblks) * BBSIZE);
        if (!buf)
                return probe_fail(res, -ENOMEM, "out of memory for a log record");
        if ((k = log_read_wrapped(l, rec, hblks + dblks, buf, res)) < 0)
                return k;
        const uint8_t *op = buf + (size_t) hblks * BBSIZE;
        if (op[8] != XFS_LOG_CLIENTID || !(op[9] & XLOG_UNMOUNT_TRANS)) {
                *ret_why = "its head is not an unmount record";
                return 0;
        }
        /* Kernels that know v5 (3.10 on) sum every record, v4 ones too; the
         * userspace tools (mkfs, xfs_repair, xfs_admin -U) write their
         * unmount record at the start of the log with no sum, and older
         * kernels none on v4: zero means none, as the kernel reads it, but
         * on v5 only where the tools put it. */
        uint32_t stored = get_le32(h + LR_CRC);
        if (stored == 0) {
                if (x->v5 && rec != 0) {
                        *ret_why = "its last record has no CRC32C";
                        return 0;
                }
        } else if (log_record_crc(buf, hblks, hlen, XLOG_REC_HEADER_SUM) != stored &&
                   log_record_crc(buf, hblks, hlen, XLOG_REC_HEADER_SUM_I386) != stored) {
                *ret_why = "its last record's CRC32C does not match (a torn write)";
                return 0;
        }
        *ret_clean = true;
        *ret_why = "cleanly unmounted";
        return 0;
}

/* Whether the log was cleanly unmounted, the way xfsprogs' libxlog and the
 * kernel find its tail: the head is where the cycle number drops; the last
 * record before it must be a single unmount operation ending exactly at
 * the head. Anything unusual (out-of-order writes near the head, cycles
 * that are not two runs) is taken as dirty. *ret_why says why not. */
static int log_clean(const Xfs *x, bool *ret_clean, const char **ret_why, ProbeResult *res) {
        uint64_t agno = x->logstart >> x->agblklog, agbno = x->logstart & (((uint64_t) 1 << x->agblklog) - 1);
        uint64_t aglen = agno + 1 == x->agcount ? x->dblocks - (uint64_t) agno * x->agblocks : x->agblocks;
        if (agno >= x->agcount || agbno >= aglen || x->logblocks == 0 || x->logblocks > aglen - agbno ||
            (uint64_t) x->logblocks * x->blocksize / BBSIZE > UINT32_MAX)
                return probe_fail(res, -EINVAL, "the log (%" PRIu32 " blocks at fsblock 0x%" PRIx64 ") is not inside an AG",
                                  x->logblocks, x->logstart);
        Log l = {
                .x = x,
                .start = (agno * x->agblocks + agbno) * x->blocksize,
                .n = (uint32_t) ((uint64_t) x->logblocks * x->blocksize / BBSIZE),
        };
        bool ok = true;
        uint32_t first, last, head;
        int k;

        *ret_clean = false;
        if ((k = log_cycle(&l, 0, &first, res)) < 0 || (k = log_cycle(&l, l.n - 1, &last, res)) < 0)
                return k;
        uint32_t win = l.n < LOG_SCAN_BBS ? l.n : LOG_SCAN_BBS;
        if (first == last) {
                /* One cycle all through: the head is at the start (the log
                 * just wrapped), unless writes went out of order at the
                 * ends; then it is not clean anyway. */
                head = 0;
                if ((k = log_expect(&l, l.n - win, l.n, first, &ok, res)) < 0 ||
                    (k = log_expect(&l, 0, win, first, &ok, res)) < 0)
                        return k;
                if (first == 0 && ok) {
                        *ret_clean = true;
                        *ret_why = "never written";
                        return 0;
                }
        } else {
                if (first != last + 1) {
                        *ret_why = "its cycle numbers are not two runs";
                        return 0;
                }
                /* Binary search for the first block of the older cycle. */
                uint32_t lo = 0, hi = l.n - 1;
                while (hi - lo > 1) {
                        uint32_t mid = lo + (hi - lo) / 2, c;
                        if ((k = log_cycle(&l, mid, &c, res)) < 0)
                                return k;
                        if (c == last)
                                hi = mid;
                        else if (c == first)
                                lo = mid;
                        else {
                                *ret_why = "its cycle numbers are not two runs";
                                return 0;
                        }
                }
                head = hi;
                if ((k = log_expect(&l, head > win ? head - win : 0, head, first, &ok, res)) < 0 ||
                    (k = log_expect(&l, head, l.n - head > win ? head + win : l.n, last, &ok, res)) < 0)
                        return k;
        }
        if (!ok) {
                *ret_why = "blocks near its head were written out of order";
                return 0;
        }

        /* The last record header before the head. Data blocks never start
         * with the magic: their first word is the cycle number. */
        uint8_t h[BBSIZE];
        uint32_t rec = UINT32_MAX;
        uint32_t limit = l.n < LOG_MAX_RECORD_BBS ? l.n : LOG_MAX_RECORD_BBS;
        for (uint32_t i = 1; i <= limit; i++) {
                uint32_t bb = (uint32_t) (((uint64_t) head + l.n - i) % l.n);
                if ((k = log_read(&l, bb, h, 4, res)) < 0)
                        return k;
                if (get_be32(h) == XLOG_HEADER_MAGIC) {
                        rec = bb;
                        break;
                }
        }
        if (rec == UINT32_MAX) {
                *ret_why = "no log record header before its head";
                return 0;
        }
        return log_unmount_record(&l, rec, head, ret_clean, ret_why, res);
}

/* ---- The free-space B+tree by block number ---- */

typedef struct Walk {
        Xfs *x;
        uint32_t agno, aglen;
        /* The bnobt, or the cntbt (records by size, then block). */
        bool by_count;
        const char *name;
        uint8_t *buf; /* one block per level */
        uint64_t prev_end, prev_count, blocks, sum;
        /* The free extents the tree lists, in partition bytes. */
        Extents *free;
        /* The btree's own blocks: none of them may be listed free. */
        Extents own;
} Walk;

static uint64_t ag_byte(const Xfs *x, uint32_t agno, uint64_t agbno) {
        return ((uint64_t) agno * x->agblocks + agbno) * x->blocksize;
}

/* Reads and checks the bnobt block agbno at level; for a leaf, adds its
 * records to the free extents; for a node, walks its children. key is the
 * first startblock its parent says the block holds. */
static int walk_block(Walk *w, uint32_t agbno, unsigned level, uint32_t key, bool keyed, ProbeResult *res) {
        Xfs *x = w->x;
        uint8_t *b = w->buf + (size_t) level * x->blocksize;
        int k;

        if (agbno == 0 || agbno >= w->aglen)
                return probe_fail(res, -EINVAL, "AG %" PRIu32 ": a %s block at %" PRIu32 " is outside the AG's %" PRIu32 " blocks",
                                  w->agno, w->name, agbno, w->aglen);
        /* Every block holds at least two records or is the root: a walk
         * that visits more blocks than the AG has goes around in circles. */
        if (++w->blocks > w->aglen)
                return probe_fail(res, -ELOOP, "AG %" PRIu32 ": the %s has more blocks than the AG (a loop)", w->agno, w->name);
        k = reader_read(x->r, ag_byte(x, w->agno, agbno), b, x->blocksize);
        if (k < 0)
                return probe_fail(res, k, "AG %" PRIu32 ": cannot read %s block %" PRIu32 ": %s", w->agno, w->name, agbno, strerror(-k));
        k = extents_add(&w->own, agbno, (uint64_t) agbno + 1);
        if (k < 0)
                return probe_fail(res, k, "out of memory");

        size_t hdr = x->v5 ? 56 : 16;
        uint32_t magic = w->by_count ? (x->v5 ? XFS_ABTC_CRC_MAGIC : XFS_ABTC_MAGIC) : (x->v5 ? XFS_ABTB_CRC_MAGIC : XFS_ABTB_MAGIC);
        if (get_be32(b) != magic)
                return probe_fail(res, -EINVAL, "AG %" PRIu32 ": %s block %" PRIu32 " has no %c%c%c%c magic", w->agno, w->name,
                                  agbno, (char) (magic >> 24), (char) (magic >> 16), (char) (magic >> 8), (char) magic);
        if (x->v5) {
                if (!crc_ok(b, x->blocksize, 52))
                        return probe_fail(res, -EBADMSG, "AG %" PRIu32 ": the CRC32C of %s block %" PRIu32 " does not match",
                                          w->agno, w->name, agbno);
                if (get_be64(b + 16) != ag_byte(x, w->agno, agbno) / 512 || memcmp(b + 32, x->meta_uuid, 16) != 0 ||
                    get_be32(b + 48) != w->agno)
                        return probe_fail(res, -EINVAL, "AG %" PRIu32 ": %s block %" PRIu32 " belongs elsewhere (its daddr, UUID or owner)",
                                          w->agno, w->name, agbno);
        }
        uint16_t lvl = get_be16(b + 4), n = get_be16(b + 6);
        if (lvl != level)
                return probe_fail(res, -ELOOP, "AG %" PRIu32 ": %s block %" PRIu32 " is at level %" PRIu16 ", expected %u (a loop?)",
                                  w->agno, w->name, agbno, lvl, level);
        size_t maxrecs = (x->blocksize - hdr) / (level ? 12 : 8);
        if (n == 0 && !(level == 0 && w->blocks == 1))
                return probe_fail(res, -EINVAL, "AG %" PRIu32 ": %s block %" PRIu32 " is empty", w->agno, w->name, agbno);
        if (n > maxrecs)
                return probe_fail(res, -EINVAL, "AG %" PRIu32 ": %s block %" PRIu32 " holds %" PRIu16 " records of at most %zu",
                                  w->agno, w->name, agbno, n, maxrecs);
        if (keyed && get_be32(b + hdr) != key)
                return probe_fail(res, -EINVAL, "AG %" PRIu32 ": %s block %" PRIu32 " does not start at its parent's key", w->agno,
                                  w->name, agbno);

        if (level == 0) {
                for (size_t i = 0; i < n; i++) {
                        uint64_t start = get_be32(b + hdr + 8 * i), count = get_be32(b + hdr + 8 * i + 4);
                        /* The bnobt is in block order, its extents apart;
                         * the cntbt by size, then block. */
                        bool order = w->by_count ? count > w->prev_count || (count == w->prev_count && start >= w->prev_end)
                                                 : start >= w->prev_end;
                        if (count == 0 || start + count > w->aglen || !order)
                                return probe_fail(res, -EINVAL,
                                                  "AG %" PRIu32 ": %s: free extent %" PRIu64 "+%" PRIu64 " is past the AG's %" PRIu32
                                                  " blocks or out of order",
                                                  w->agno, w->name, start, count, w->aglen);
                        w->prev_end = w->by_count ? start + 1 : start + count;
                        w->prev_count = count;
                        w->sum += count;
                        k = extents_add(w->free, ag_byte(x, w->agno, start), ag_byte(x, w->agno, start + count));
                        if (k < 0)
                                return probe_fail(res, k, "out of memory");
                }
                if (!w->by_count)
                        x->free_extents += n;
                return 0;
        }
        for (size_t i = 0; i < n; i++) {
                uint32_t child_key = get_be32(b + hdr + 8 * i);
                uint32_t ptr = get_be32(b + hdr + maxrecs * 8 + 4 * i);
                /* Each level has its own buffer: the children's walk
                 * leaves this block's pointers in place. */
                k = walk_block(w, ptr, level - 1, child_key, true, res);
                if (k < 0)
                        return k;
        }
        return 0;
}

/* Walks one free-space tree of an AG into free (partition bytes), adding
 * its own blocks to own (AG blocks). */
static int walk_tree(Xfs *x, uint32_t agno, uint32_t aglen, bool by_count, uint32_t root, uint32_t levels, Extents *free,
                     Extents *own, uint64_t *ret_sum, uint64_t *ret_blocks, ProbeResult *res) {
        const char *name = by_count ? "cntbt" : "bnobt";
        if (levels == 0 || levels > BTREE_MAX_LEVELS)
                return probe_fail(res, -EINVAL, "AG %" PRIu32 ": the %s has %" PRIu32 " levels", agno, name, levels);
        _cleanup_free_ uint8_t *buf = malloc((size_t) levels * x->blocksize);
        if (!buf)
                return probe_fail(res, -ENOMEM, "out of memory for the %s", name);
        Walk w = { .x = x, .agno = agno, .aglen = aglen, .by_count = by_count, .name = name, .buf = buf, .free = free,
                   .own = EXTENTS_INIT };
        int k = walk_block(&w, root, levels - 1, 0, false, res);
        int j = extents_union(own, &w.own);
        extents_done(&w.own);
        if (k < 0)
                return k;
        if (j < 0)
                return probe_fail(res, j, "out of memory");
        *ret_sum = w.sum;
        *ret_blocks = w.blocks;
        return 0;
}

static int read_ag(Xfs *x, uint32_t agno, uint8_t *agf, ProbeResult *res) {
        uint32_t aglen = agno + 1 == x->agcount ? (uint32_t) (x->dblocks - (uint64_t) agno * x->agblocks) : x->agblocks;
        int k = reader_read(x->r, ag_byte(x, agno, 0) + x->sectsize, agf, x->sectsize);
        if (k < 0)
                return probe_fail(res, k, "AG %" PRIu32 ": cannot read the AGF: %s", agno, strerror(-k));
        if (get_be32(agf) != XFS_AGF_MAGIC || get_be32(agf + AGF_VERSIONNUM) != 1)
                return probe_fail(res, -EINVAL, "AG %" PRIu32 ": no XAGF magic (version 1) in the AGF", agno);
        if (x->v5 && !crc_ok(agf, x->sectsize, AGF_CRC))
                return probe_fail(res, -EBADMSG, "AG %" PRIu32 ": the AGF's CRC32C does not match", agno);
        if (x->v5 && memcmp(agf + AGF_UUID, x->meta_uuid, 16) != 0)
                return probe_fail(res, -EINVAL, "AG %" PRIu32 ": the AGF's UUID is not the superblock's", agno);
        if (get_be32(agf + AGF_SEQNO) != agno || get_be32(agf + AGF_LENGTH) != aglen)
                return probe_fail(res, -EINVAL, "AG %" PRIu32 ": the AGF says AG %" PRIu32 " of %" PRIu32 " blocks, the superblock %" PRIu32,
                                  agno, get_be32(agf + AGF_SEQNO), get_be32(agf + AGF_LENGTH), aglen);
        uint32_t freeblks = get_be32(agf + AGF_FREEBLKS), flcount = get_be32(agf + AGF_FLCOUNT);
        if (freeblks > aglen || flcount > aglen)
                return probe_fail(res, -EINVAL, "AG %" PRIu32 ": %" PRIu32 " free blocks in an AG of %" PRIu32, agno, freeblks, aglen);

        /* Both trees list the same free extents: one that says otherwise
         * (a flipped bit v4 has no CRC for) cannot be trusted to leave
         * nothing in use out. */
        _cleanup_extents_ Extents bno = EXTENTS_INIT, cnt = EXTENTS_INIT, own = EXTENTS_INIT;
        uint64_t bno_sum, cnt_sum, bno_blocks, cnt_blocks;
        k = walk_tree(x, agno, aglen, false, get_be32(agf + AGF_BNO_ROOT), get_be32(agf + AGF_BNO_LEVEL), &bno, &own, &bno_sum,
                      &bno_blocks, res);
        if (k < 0)
                return k;
        if (bno_sum != freeblks)
                return probe_fail(res, -EINVAL, "AG %" PRIu32 ": the bnobt lists %" PRIu64 " free blocks, the AGF %" PRIu32, agno,
                                  bno_sum, freeblks);
        k = walk_tree(x, agno, aglen, true, get_be32(agf + AGF_CNT_ROOT), get_be32(agf + AGF_CNT_LEVEL), &cnt, &own, &cnt_sum,
                      &cnt_blocks, res);
        if (k < 0)
                return k;
        if (cnt_sum != freeblks || !extents_equal(&bno, &cnt))
                return probe_fail(res, -EINVAL, "AG %" PRIu32 ": the free-space trees by block and by size disagree", agno);
        /* The AG headers and the trees' own blocks can never be free: a
         * tree that says so describes some other state of the AG. */
        uint64_t hdr_blocks = div_round_up(4 * (uint64_t) x->sectsize, x->blocksize);
        if (extents_overlaps(&bno, ag_byte(x, agno, 0), ag_byte(x, agno, hdr_blocks)))
                return probe_fail(res, -EINVAL, "AG %" PRIu32 ": the bnobt lists the AG headers as free", agno);
        EXTENTS_FOREACH(e, &own)
                if (extents_overlaps(&bno, ag_byte(x, agno, e->start), ag_byte(x, agno, e->end)))
                        return probe_fail(res, -EINVAL, "AG %" PRIu32 ": the bnobt lists its own block %" PRIu64 " as free", agno,
                                          e->start);
        k = extents_union(&x->free, &bno);
        if (k < 0)
                return probe_fail(res, k, "out of memory");
        x->agf_free += freeblks;
        x->agf_flcount += flcount;
        x->agf_btreeblks += get_be32(agf + AGF_BTREEBLKS);
        x->btree_blocks += bno_blocks + cnt_blocks;
        return 0;
}

static int collect(const Reader *r, const char *fstype, ProbeResult *res) {
        _cleanup_free_ uint8_t *agf = NULL;
        _cleanup_(xfs_done) Xfs x = { .r = r, .free = EXTENTS_INIT };
        bool whole = false, clean;
        const char *why = NULL;
        int k;

        (void) fstype;
        k = parse_sb(r, &x, res, &whole);
        if (k < 0 || whole)
                return k;
        uint64_t fs_size = res->fs_size;

        k = log_clean(&x, &clean, &why, res);
        if (k < 0)
                return k;
        if (!clean) {
                k = probe_whole(r, res, "the log was not cleanly unmounted (%s): fully mapped", why);
                res->fs_size = fs_size;
                return k;
        }

        agf = malloc(x.sectsize);
        if (!agf)
                return probe_fail(res, -ENOMEM, "out of memory for an AGF");
        for (uint32_t agno = 0; agno < x.agcount; agno++) {
                k = read_ag(&x, agno, agf, res);
                if (k < 0)
                        return k;
        }
        /* The log is allocated space: it cannot be free. */
        uint64_t log_at = ((x.logstart >> x.agblklog) * x.agblocks + (x.logstart & (((uint64_t) 1 << x.agblklog) - 1))) * x.blocksize;
        if (extents_overlaps(&x.free, log_at, log_at + (uint64_t) x.logblocks * x.blocksize))
                return probe_fail(res, -EINVAL, "the bnobt lists blocks of the log as free");
        /* After a clean unmount the superblock's free count is the AGFs'
         * free blocks plus the AGFL and the free-space btrees' blocks
         * (which XFS counts as free). Without lazy counters there is no
         * btreeblks: it can only be at least the rest. */
        bool lazy = x.v5 || (x.features2 & XFS_SB_VERSION2_LAZYSBCOUNTBIT);
        uint64_t want = x.agf_free + x.agf_flcount + x.agf_btreeblks;
        if (lazy ? x.fdblocks != want : x.fdblocks < want)
                return probe_fail(res, -EINVAL,
                                  "the superblock counts %" PRIu64 " free blocks, the AGFs %" PRIu64 " (free, AGFL and btree blocks)",
                                  x.fdblocks, want);

        /* A truncated image would fail only where a btree block lies, not
         * where data does: the last block must be there. */
        uint8_t last[512];
        k = reader_read(r, fs_size - sizeof(last), last, sizeof(last));
        if (k < 0)
                return probe_fail(res, k, "cannot read the last sector of the filesystem (byte %" PRIu64 "): %s",
                                  fs_size - sizeof(last), strerror(-k));

        extents_clear(&res->used);
        k = extents_complement(&res->used, &x.free, 0, fs_size);
        if (k < 0)
                return probe_fail(res, k, "out of memory");
        snprintf(res->how, sizeof(res->how),
                 "v%d, %" PRIu32 " AGs of %" PRIu32 " %" PRIu32 "-byte blocks, free-space B+trees: %" PRIu64 " free extents, log %s",
                 x.v5 ? 5 : 4, x.agcount, x.agblocks, x.blocksize, x.free_extents, why);
        res->fs_size = fs_size;
        return 0;
}

const FsProbe fsprobe_xfs = {
        .name = "xfs",
        .types = types,
        .collect = collect,
};
