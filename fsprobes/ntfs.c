/* SPDX-License-Identifier: GPL-2.0-or-later */
/* NTFS: a cluster is used when its bit is set in $Bitmap (MFT record 6),
 * whose data is found through the runlist of its non-resident $DATA
 * attribute; record 6 itself is found through the runlist of $MFT's own
 * $DATA (record 0), never by assuming the MFT is contiguous. The boot
 * sector, and past the last whole cluster the odd sectors and the backup
 * boot sector, are always used. A volume whose $Volume says dirty, or
 * whose $LogFile was not closed cleanly, has a bitmap that the log may
 * still change: it is mapped whole. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "probe.h"

static const char *const types[] = { "ntfs", NULL };

/* Multi-sector protection works in strides of this size whatever the
 * sector size: the last two bytes of each stride are swapped out for the
 * update sequence number. */
#define NTFS_STRIDE 512
/* $Boot: the boot sector and its bootstrap code. */
#define NTFS_BOOT_BYTES 8192
/* Bitmap bytes read at a time: 8 Mi clusters. */
#define BITMAP_CHUNK ((size_t) 1 << 20)
/* Restart pages of $LogFile are looked for at offsets up to this (a
 * system page size of at most 64 KiB). */
#define LOG_SEARCH_END 65536

enum {
        MFT_RECORD_MFT = 0,
        MFT_RECORD_LOGFILE = 2,
        MFT_RECORD_VOLUME = 3,
        MFT_RECORD_BITMAP = 6,
};

enum {
        ATTR_LIST = 0x20,
        ATTR_VOLUME_INFORMATION = 0x70,
        ATTR_DATA = 0x80,
        ATTR_END = 0xFFFFFFFF,
};

#define ATTR_FLAG_COMPRESSED 0x0001
#define ATTR_FLAG_ENCRYPTED 0x4000
#define VOLUME_IS_DIRTY 0x0001
#define RESTART_VOLUME_IS_CLEAN 0x0002
#define LOGFILE_NO_CLIENT 0xFFFF

typedef struct Run {
        uint64_t vcn, len, lcn;
        bool sparse;
} Run;

/* The decoded data of one non-resident attribute. */
typedef struct Runlist {
        Run *v;
        size_t n;
        uint64_t data_size, init_size;
} Runlist;

static void runlist_done(Runlist *rl) {
        free(rl->v);
        *rl = (Runlist) {};
}
#define _cleanup_runlist_ _cleanup_(runlist_done)

typedef struct Ntfs {
        const Reader *r;
        uint32_t sector_size, cluster_size, record_size;
        uint64_t total_sectors, clusters, mft_lcn;
        Runlist mft;
} Ntfs;

static void ntfs_done(Ntfs *v) {
        runlist_done(&v->mft);
}

static int parse_boot(const uint8_t *b, uint64_t part_size, Ntfs *v, ProbeResult *res) {
        if (memcmp(b + 3, "NTFS    ", 8) != 0)
                return probe_fail(res, -EINVAL, "no NTFS signature in the boot sector");
        if (get_le16(b + 0x1FE) != 0xAA55)
                return probe_fail(res, -EINVAL, "the boot sector does not end in 55 AA");
        /* Fields of the FAT BPB that NTFS requires to be zero: a boot
         * sector with them set is something else, or damaged. */
        if (get_le16(b + 0x0E) || b[0x10] || get_le16(b + 0x11) || get_le16(b + 0x13) || get_le16(b + 0x16) ||
            get_le32(b + 0x20))
                return probe_fail(res, -EINVAL, "FAT fields of the boot sector that NTFS keeps zero are set");

        v->sector_size = get_le16(b + 0x0B);
        if (v->sector_size < 256 || v->sector_size > 4096 || !is_pow2(v->sector_size))
                return probe_fail(res, -EINVAL, "bytes per sector %" PRIu32 " is not a power of two from 256 to 4096",
                                  v->sector_size);
        /* Above 0x80 the byte is negative: 2^-v sectors, for clusters of
         * more than 128 sectors. */
        uint8_t spc = b[0x0D];
        uint64_t sectors = spc <= 0x80 ? spc : spc >= 0xF4 ? (uint64_t) 1 << (256 - spc) : 0;
        uint64_t cs = sectors * v->sector_size;
        if (!is_pow2(sectors) || cs < 512 || cs > 2 << 20)
                return probe_fail(res, -EINVAL, "sectors per cluster 0x%02x: not a cluster of 512 bytes to 2 MiB", spc);
        v->cluster_size = (uint32_t) cs;

        int8_t rs = (int8_t) b[0x40];
        uint64_t record = rs > 0 ? (uint64_t) rs * cs : rs <= -9 && rs >= -12 ? (uint64_t) 1 << -rs : 0;
        if (record < 1024 || record > 4096 || !is_pow2(record))
                return probe_fail(res, -EINVAL, "MFT record size byte 0x%02x: not a record of 1 to 4 KiB", b[0x40]);
        v->record_size = (uint32_t) record;

        v->total_sectors = get_le64(b + 0x28);
        if (v->total_sectors == 0 || v->total_sectors > part_size / v->sector_size)
                return probe_fail(res, -EINVAL,
                                  "the volume (%" PRIu64 " sectors of %" PRIu32 " bytes) does not fit its partition (%" PRIu64
                                  " bytes)",
                                  v->total_sectors, v->sector_size, part_size);
        v->clusters = v->total_sectors / sectors;
        if (v->clusters == 0)
                return probe_fail(res, -EINVAL, "the volume holds no whole cluster");

        v->mft_lcn = get_le64(b + 0x30);
        uint64_t mirr = get_le64(b + 0x38);
        if (v->mft_lcn == 0 || v->mft_lcn >= v->clusters || mirr >= v->clusters)
                return probe_fail(res, -EINVAL,
                                  "the MFT (cluster %" PRIu64 ") or its mirror (cluster %" PRIu64 ") is outside the %" PRIu64
                                  " clusters",
                                  v->mft_lcn, mirr, v->clusters);
        return 0;
}

/* Undoes the multi-sector protection of a record or log page of size
 * bytes in place, after checking that every stride still ends in the
 * update sequence number (a torn write otherwise). */
static int apply_fixups(uint8_t *buf, uint32_t size, const char *what, ProbeResult *res) {
        uint16_t ofs = get_le16(buf + 4), count = get_le16(buf + 6);
        if (count != size / NTFS_STRIDE + 1 || (ofs & 1) || (uint32_t) ofs + 2u * count > NTFS_STRIDE)
                return probe_fail(res, -EINVAL, "%s: update sequence array at %" PRIu16 " of %" PRIu16 " entries is not valid",
                                  what, ofs, count);
        uint16_t usn = get_le16(buf + ofs);
        for (uint32_t i = 1; i < count; i++) {
                uint8_t *end = buf + i * NTFS_STRIDE - 2;
                if (get_le16(end) != usn)
                        return probe_fail(res, -EINVAL, "%s: the update sequence number of stride %" PRIu32 " does not match (torn write)",
                                          what, i - 1);
                memcpy(end, buf + ofs + 2 * i, 2);
        }
        return 0;
}

/* Checks an MFT record that has just been read, applies its fixups. */
static int check_record(uint8_t *rec, const Ntfs *v, uint32_t n, ProbeResult *res) {
        char what[32];
        snprintf(what, sizeof(what), "MFT record %" PRIu32, n);
        if (memcmp(rec, "FILE", 4) != 0)
                return probe_fail(res, -EINVAL, "%s has no FILE signature", what);
        int k = apply_fixups(rec, v->record_size, what, res);
        if (k < 0)
                return k;
        uint16_t attrs = get_le16(rec + 0x14), flags = get_le16(rec + 0x16), usa_ofs = get_le16(rec + 4);
        uint32_t in_use = get_le32(rec + 0x18);
        if (!(flags & 1))
                return probe_fail(res, -EINVAL, "%s is not in use", what);
        if (in_use > v->record_size || attrs < usa_ofs + 2u * get_le16(rec + 6) || (attrs & 7) ||
            (uint32_t) attrs + 4 > in_use)
                return probe_fail(res, -EINVAL, "%s: attributes at %" PRIu16 ", %" PRIu32 " bytes in use: not inside the record",
                                  what, attrs, in_use);
        if (get_le64(rec + 0x20) != 0)
                return probe_fail(res, -EINVAL, "%s is an extension of another record", what);
        /* Since NTFS 3.1 the header carries the record's own number. */
        if (usa_ofs >= 0x30 && get_le32(rec + 0x2C) != n)
                return probe_fail(res, -EINVAL, "%s says it is record %" PRIu32, what, get_le32(rec + 0x2C));
        return 0;
}

/* The first unnamed attribute of type in a checked record: its offset and
 * length, bounded by the record's bytes in use. An attribute list means
 * the attribute may continue in other records: that is refused. */
static int find_attr(const uint8_t *rec, uint32_t n, uint32_t type, uint32_t *ret_off, uint32_t *ret_len,
                     ProbeResult *res) {
        uint32_t in_use = get_le32(rec + 0x18), off = get_le16(rec + 0x14);
        bool list = false;

        while (off + 4 <= in_use) {
                uint32_t t = get_le32(rec + off);
                if (t == ATTR_END)
                        break;
                uint32_t len = off + 16 <= in_use ? get_le32(rec + off + 4) : 0;
                if (len < 16 || (len & 7) || len > in_use - off)
                        return probe_fail(res, -EINVAL, "MFT record %" PRIu32 ": attribute 0x%" PRIx32 " at %" PRIu32 " has length %" PRIu32,
                                          n, t, off, len);
                if (t == ATTR_LIST)
                        list = true;
                if (t == type && rec[off + 9] == 0) {
                        *ret_off = off;
                        *ret_len = len;
                        return 0;
                }
                off += len;
        }
        if (list)
                return probe_fail(res, -EOPNOTSUPP, "MFT record %" PRIu32 " has an attribute list (attribute 0x%" PRIx32 " elsewhere)",
                                  n, type);
        return probe_fail(res, -EINVAL, "MFT record %" PRIu32 " has no attribute 0x%" PRIx32, n, type);
}

/* Decodes the mapping pairs of a non-resident attribute: its runs, each
 * checked to lie inside the volume's clusters, that together cover it
 * exactly from VCN 0. */
static int decode_runlist(const uint8_t *a, uint32_t len, const Ntfs *v, const char *what, Runlist *ret,
                          ProbeResult *res) {
        _cleanup_runlist_ Runlist rl = {};
        if (len < 0x40 || a[8] != 1)
                return probe_fail(res, -EINVAL, "%s is not a non-resident attribute", what);
        uint16_t flags = get_le16(a + 0x0C);
        if (flags & (ATTR_FLAG_COMPRESSED | ATTR_FLAG_ENCRYPTED))
                return probe_fail(res, -EOPNOTSUPP, "%s is compressed or encrypted (flags 0x%04" PRIx16 ")", what, flags);
        uint64_t lowest = get_le64(a + 0x10), highest = get_le64(a + 0x18), alloc = get_le64(a + 0x28);
        rl.data_size = get_le64(a + 0x30);
        rl.init_size = get_le64(a + 0x38);
        uint16_t mp = get_le16(a + 0x20);
        if (lowest != 0 || highest >= v->clusters || alloc != (highest + 1) * v->cluster_size || rl.data_size > alloc ||
            rl.init_size > rl.data_size)
                return probe_fail(res, -EINVAL,
                                  "%s: VCNs %" PRIu64 "-%" PRIu64 ", %" PRIu64 " bytes allocated, %" PRIu64 " of data, %" PRIu64
                                  " initialized: inconsistent",
                                  what, lowest, highest, alloc, rl.data_size, rl.init_size);
        if (mp < 0x40 || mp >= len)
                return probe_fail(res, -EINVAL, "%s: mapping pairs at %" PRIu16 " of a %" PRIu32 "-byte attribute", what, mp, len);

        /* Each pair takes at least 2 bytes: this bounds the runs. */
        rl.v = calloc(len / 2 + 1, sizeof(Run));
        if (!rl.v)
                return probe_fail(res, -ENOMEM, "out of memory for a runlist");
        uint64_t vcn = 0;
        int64_t lcn = 0;
        for (uint32_t p = mp; ; ) {
                if (p >= len)
                        return probe_fail(res, -EINVAL, "%s: the runlist runs past its attribute", what);
                uint8_t h = a[p++];
                if (h == 0)
                        break;
                unsigned nl = h & 0xF, no = h >> 4;
                if (nl == 0 || nl > 8 || no > 8 || p + nl + no > len)
                        return probe_fail(res, -EINVAL, "%s: run header 0x%02x at %" PRIu32 " is not valid", what, h, p - 1);
                uint64_t rlen = 0;
                for (unsigned i = 0; i < nl; i++)
                        rlen |= (uint64_t) a[p + i] << (8 * i);
                p += nl;
                /* Lengths are signed like the offsets: the top bit set is
                 * negative, and no run is empty. */
                if (rlen == 0 || (nl < 8 && (rlen >> (8 * nl - 1))) || (nl == 8 && (rlen >> 63)) ||
                    rlen > highest + 1 - vcn)
                        return probe_fail(res, -EINVAL, "%s: a run of %" PRIu64 " clusters at VCN %" PRIu64 " does not fit VCNs 0-%" PRIu64,
                                          what, rlen, vcn, highest);
                Run *run = &rl.v[rl.n++];
                *run = (Run) { .vcn = vcn, .len = rlen, .sparse = no == 0 };
                if (no) {
                        uint64_t d = 0;
                        for (unsigned i = 0; i < no; i++)
                                d |= (uint64_t) a[p + i] << (8 * i);
                        if (no < 8 && (d >> (8 * no - 1)))
                                d |= ~(uint64_t) 0 << (8 * no);
                        p += no;
                        int64_t delta = (int64_t) d;
                        /* Both within ±2^63 of clusters < 2^56: no overflow. */
                        if (delta > (int64_t) v->clusters || delta < -(int64_t) v->clusters ||
                            lcn + delta < 0 || (uint64_t) (lcn + delta) >= v->clusters ||
                            rlen > v->clusters - (uint64_t) (lcn + delta))
                                return probe_fail(res, -EINVAL, "%s: a run of %" PRIu64 " clusters at LCN %" PRId64 " is outside the %" PRIu64
                                                  " clusters of the volume",
                                                  what, rlen, lcn + delta, v->clusters);
                        lcn += delta;
                        run->lcn = (uint64_t) lcn;
                }
                vcn += rlen;
        }
        if (vcn != highest + 1)
                return probe_fail(res, -EINVAL, "%s: the runs cover %" PRIu64 " of %" PRIu64 " clusters", what, vcn, highest + 1);
        *ret = rl;
        rl = (Runlist) {};
        return 0;
}

/* Reads [off, off + n) of an attribute's data through its runs: sparse
 * runs and the part past the initialized size read as zeros. */
static int read_data(const Ntfs *v, const Runlist *rl, uint64_t off, uint8_t *buf, size_t n, const char *what,
                     ProbeResult *res) {
        if (off > rl->data_size || n > rl->data_size - off)
                return probe_fail(res, -EINVAL, "%s: bytes %" PRIu64 "+%zu are past its %" PRIu64 " bytes", what, off, n,
                                  rl->data_size);
        size_t done = 0;
        for (size_t i = 0; i < rl->n && done < n; i++) {
                const Run *run = &rl->v[i];
                uint64_t start = run->vcn * v->cluster_size, end = start + run->len * v->cluster_size;
                uint64_t at = off + done;
                if (at >= end)
                        continue;
                size_t len = end - at < n - done ? (size_t) (end - at) : n - done;
                size_t zero_from = len;
                if (at >= rl->init_size)
                        zero_from = 0;
                else if (rl->init_size - at < len)
                        zero_from = (size_t) (rl->init_size - at);
                if (run->sparse)
                        zero_from = 0;
                if (zero_from) {
                        uint64_t disk = run->lcn * v->cluster_size + (at - start);
                        int k = reader_read(v->r, disk, buf + done, zero_from);
                        if (k < 0)
                                return probe_fail(res, k, "cannot read %s at byte %" PRIu64 ": %s", what, disk, strerror(-k));
                }
                memset(buf + done + zero_from, 0, len - zero_from);
                done += len;
        }
        return 0;
}

/* Reads MFT record n through $MFT's runs, checks it and finds the
 * unnamed attribute type in it. */
static int load_record(const Ntfs *v, uint32_t n, uint8_t *rec, uint32_t type, uint32_t *ret_off, uint32_t *ret_len,
                       ProbeResult *res) {
        int k = read_data(v, &v->mft, (uint64_t) n * v->record_size, rec, v->record_size, "$MFT", res);
        if (k < 0)
                return k;
        k = check_record(rec, v, n, res);
        if (k < 0)
                return k;
        return find_attr(rec, n, type, ret_off, ret_len, res);
}

/* The volume flags of $Volume's resident $VOLUME_INFORMATION. */
static int volume_flags(const Ntfs *v, uint8_t *rec, uint16_t *ret, ProbeResult *res) {
        uint32_t off, len;
        int k = load_record(v, MFT_RECORD_VOLUME, rec, ATTR_VOLUME_INFORMATION, &off, &len, res);
        if (k < 0)
                return k;
        const uint8_t *a = rec + off;
        uint32_t vlen = len >= 0x18 ? get_le32(a + 0x10) : 0;
        uint16_t voff = len >= 0x18 ? get_le16(a + 0x14) : 0;
        if (a[8] != 0 || vlen < 12 || voff > len || vlen > len - voff)
                return probe_fail(res, -EINVAL, "$Volume: $VOLUME_INFORMATION is not a resident value of 12 bytes");
        *ret = get_le16(a + voff + 10);
        return 0;
}

/* One restart page of $LogFile at pos: whether it is valid, its current
 * LSN, whether it says the log was closed cleanly and its log version
 * (major << 16 | minor). */
static int restart_page(const Ntfs *v, const Runlist *log, uint64_t pos, bool *ret_valid, uint64_t *ret_lsn,
                        bool *ret_clean, uint32_t *ret_version, ProbeResult *res) {
        uint8_t head[NTFS_STRIDE];
        *ret_valid = false;
        int k = read_data(v, log, pos, head, sizeof(head), "$LogFile", res);
        if (k < 0)
                return k;
        uint32_t page = get_le32(head + 0x10);
        if (page < NTFS_STRIDE || page > LOG_SEARCH_END || !is_pow2(page) || page > log->data_size - pos)
                return 0;
        _cleanup_free_ uint8_t *buf = malloc(page);
        if (!buf)
                return probe_fail(res, -ENOMEM, "out of memory for a $LogFile page");
        k = read_data(v, log, pos, buf, page, "$LogFile", res);
        if (k < 0)
                return k;
        ProbeResult scratch = { .used = EXTENTS_INIT };
        /* A page that fails its fixups is not a restart page: another may
         * still be valid, as for the drivers. */
        if (apply_fixups(buf, page, "$LogFile", &scratch) < 0)
                return 0;
        uint16_t ra = get_le16(buf + 0x18);
        if ((ra & 7) || (uint32_t) ra + 0x30 > page)
                return 0;
        *ret_valid = true;
        *ret_version = (uint32_t) get_le16(buf + 0x1C) << 16 | get_le16(buf + 0x1A);
        *ret_lsn = get_le64(buf + ra);
        *ret_clean = get_le16(buf + ra + 0x0C) == LOGFILE_NO_CLIENT || (get_le16(buf + ra + 0x0E) & RESTART_VOLUME_IS_CLEAN);
        return 0;
}

/* Whether $LogFile says the volume was closed cleanly: an emptied log
 * (all 0xFF, as mkntfs and ntfs-3g leave it) is; otherwise the newer of
 * the valid restart pages decides: no client open, or the clean flag.
 * A newest page of log version 2.0 is never clean: Windows 8 and later
 * leave it so when they hibernate or shut down for fast startup, with
 * the volume still mounted and its metadata (the cluster bitmap too)
 * cached in the hibernation image, to be written back on resume; a full
 * shutdown writes version 1.1. ntfs-3g refuses such a volume for the
 * same reason. */
static int log_clean(const Ntfs *v, uint8_t *rec, bool *ret, const char **ret_why, ProbeResult *res) {
        _cleanup_runlist_ Runlist log = {};
        uint32_t off, len;
        int k = load_record(v, MFT_RECORD_LOGFILE, rec, ATTR_DATA, &off, &len, res);
        if (k < 0)
                return k;
        k = decode_runlist(rec + off, len, v, "$LogFile's $DATA", &log, res);
        if (k < 0)
                return k;
        bool empty = true, found = false, clean = false;
        uint64_t best = 0;
        uint32_t version = 0;
        for (uint64_t pos = 0; pos < LOG_SEARCH_END && pos + NTFS_STRIDE <= log.data_size; pos = pos ? pos * 2 : NTFS_STRIDE) {
                uint8_t magic[4];
                k = read_data(v, &log, pos, magic, sizeof(magic), "$LogFile", res);
                if (k < 0)
                        return k;
                if (get_le32(magic) != 0xFFFFFFFF)
                        empty = false;
                if (memcmp(magic, "RCRD", 4) == 0)
                        break;
                if (memcmp(magic, "RSTR", 4) != 0 && memcmp(magic, "CHKD", 4) != 0)
                        continue;
                bool valid, c;
                uint64_t lsn;
                uint32_t ver = 0;
                k = restart_page(v, &log, pos, &valid, &lsn, &c, &ver, res);
                if (k < 0)
                        return k;
                if (valid && (!found || lsn > best)) {
                        found = true;
                        best = lsn;
                        clean = c;
                        version = ver;
                }
        }
        if (empty) {
                *ret = true;
                *ret_why = "empty";
        } else if (!found) {
                *ret = false;
                *ret_why = "not empty and without a valid restart page";
        } else if (version == (2u << 16 | 0u)) {
                *ret = false;
                *ret_why = "of version 2.0 (Windows hibernated or shut down for fast startup, metadata cached)";
        } else {
                *ret = clean;
                *ret_why = clean ? "closed cleanly" : "not closed cleanly (needs replay)";
        }
        return 0;
}

/* Adds every cluster whose bit is set in $Bitmap. Bits past the last
 * cluster (the bitmap is padded to 8 bytes) are ignored. */
static int collect_bitmap(const Ntfs *v, const Runlist *bm, uint64_t *ret_used, ProbeResult *res) {
        uint64_t bytes = div_round_up(v->clusters, 8), used = 0, run = 0;
        size_t chunk = bytes < BITMAP_CHUNK ? (size_t) bytes : BITMAP_CHUNK;
        _cleanup_free_ uint8_t *buf = malloc(chunk);
        bool in_run = false;
        int k;

        if (!buf)
                return probe_fail(res, -ENOMEM, "out of memory for the bitmap");
        if (bm->data_size < bytes)
                return probe_fail(res, -EINVAL, "$Bitmap holds %" PRIu64 " bytes, too few for %" PRIu64 " clusters",
                                  bm->data_size, v->clusters);
        for (uint64_t off = 0; off < bytes; off += chunk) {
                size_t len = bytes - off < chunk ? (size_t) (bytes - off) : chunk;
                k = read_data(v, bm, off, buf, len, "$Bitmap", res);
                if (k < 0)
                        return k;
                for (size_t i = 0; i < len; i++) {
                        /* Whole bytes of one kind continue or leave a run as they are. */
                        bool whole = (off + i + 1) * 8 <= v->clusters;
                        if (whole && ((buf[i] == 0 && !in_run) || (buf[i] == 0xFF && in_run))) {
                                if (in_run)
                                        used += 8;
                                continue;
                        }
                        for (unsigned b = 0; b < 8; b++) {
                                uint64_t c = (off + i) * 8 + b;
                                bool set = c < v->clusters && (buf[i] >> b & 1);
                                used += set;
                                if (set == in_run)
                                        continue;
                                if (set)
                                        run = c;
                                else {
                                        k = extents_add(&res->used, run * v->cluster_size, c * v->cluster_size);
                                        if (k < 0)
                                                return probe_fail(res, k, "out of memory for the used clusters");
                                }
                                in_run = set;
                        }
                }
        }
        if (in_run) {
                k = extents_add(&res->used, run * v->cluster_size, v->clusters * v->cluster_size);
                if (k < 0)
                        return probe_fail(res, k, "out of memory for the used clusters");
        }
        *ret_used = used;
        return 0;
}

/* The clusters of a runlist must be marked used: a bitmap that frees
 * $MFT's or its own clusters is not to be believed. */
static int check_marked(const Ntfs *v, const Runlist *rl, const char *what, ProbeResult *res) {
        for (size_t i = 0; i < rl->n; i++) {
                const Run *run = &rl->v[i];
                if (run->sparse)
                        continue;
                uint64_t a = run->lcn * v->cluster_size, b = a + run->len * v->cluster_size;
                if (!extents_contains(&res->used, a, b))
                        return probe_fail(res, -EINVAL, "the bitmap marks clusters of %s (LCN %" PRIu64 "+%" PRIu64 ") free", what,
                                          run->lcn, run->len);
        }
        return 0;
}

static void size_str(char *buf, size_t n, uint32_t bytes) {
        if (bytes < 1024)
                snprintf(buf, n, "%" PRIu32 "-byte", bytes);
        else if (bytes < 1024 * 1024)
                snprintf(buf, n, "%" PRIu32 " KiB", bytes / 1024);
        else
                snprintf(buf, n, "%" PRIu32 " MiB", bytes / (1024 * 1024));
}

static int collect(const Reader *r, const char *fstype, ProbeResult *res) {
        uint8_t boot[512], last[4096];
        _cleanup_runlist_ Runlist bitmap = {};
        _cleanup_(ntfs_done) Ntfs v = { .r = r };
        uint32_t off, len;
        int k;

        k = reader_read(r, 0, boot, sizeof(boot));
        if (k < 0)
                return probe_fail(res, k, "cannot read the boot sector: %s", strerror(-k));
        k = parse_boot(boot, r->size, &v, res);
        if (k < 0)
                return k;

        /* The backup boot sector follows the volume's sectors when the
         * partition has room; else the volume's last sector is the end. A
         * truncated image fails here rather than have clusters past its
         * end silently never read. */
        uint64_t fs_end = (v.total_sectors + 1) * v.sector_size;
        if (fs_end > r->size)
                fs_end = v.total_sectors * v.sector_size;
        k = reader_read(r, fs_end - v.sector_size, last, v.sector_size);
        if (k < 0)
                return probe_fail(res, k, "cannot read the last sector of the volume (byte %" PRIu64 "): %s",
                                  fs_end - v.sector_size, strerror(-k));

        _cleanup_free_ uint8_t *rec = malloc(v.record_size);
        if (!rec)
                return probe_fail(res, -ENOMEM, "out of memory for an MFT record");
        /* Record 0 is at the MFT's first cluster; its own $DATA then says
         * where every other record is. */
        k = reader_read(r, v.mft_lcn * v.cluster_size, rec, v.record_size);
        if (k < 0)
                return probe_fail(res, k, "cannot read MFT record 0 at cluster %" PRIu64 ": %s", v.mft_lcn, strerror(-k));
        k = check_record(rec, &v, MFT_RECORD_MFT, res);
        if (k < 0)
                return k;
        k = find_attr(rec, MFT_RECORD_MFT, ATTR_DATA, &off, &len, res);
        if (k < 0)
                return k;
        k = decode_runlist(rec + off, len, &v, "$MFT's $DATA", &v.mft, res);
        if (k < 0)
                return k;
        if (v.mft.n == 0 || v.mft.v[0].sparse || v.mft.v[0].lcn != v.mft_lcn ||
            v.mft.v[0].len * v.cluster_size < v.record_size)
                return probe_fail(res, -EINVAL, "$MFT's runlist does not start with its record 0 at cluster %" PRIu64, v.mft_lcn);

        uint16_t vflags = 0;
        k = volume_flags(&v, rec, &vflags, res);
        if (k < 0)
                return k;
        if (vflags & VOLUME_IS_DIRTY) {
                return probe_whole(r, res, "the volume is marked dirty (flags 0x%04" PRIx16 "): fully mapped", vflags);
        }
        bool clean;
        const char *why;
        k = log_clean(&v, rec, &clean, &why, res);
        if (k < 0)
                return k;
        if (!clean) {
                return probe_whole(r, res, "$LogFile is %s: fully mapped", why);
        }

        k = load_record(&v, MFT_RECORD_BITMAP, rec, ATTR_DATA, &off, &len, res);
        if (k < 0)
                return k;
        k = decode_runlist(rec + off, len, &v, "$Bitmap's $DATA", &bitmap, res);
        if (k < 0)
                return k;

        extents_clear(&res->used);
        uint64_t used = 0;
        k = collect_bitmap(&v, &bitmap, &used, res);
        if (k < 0)
                return k;
        k = extents_add(&res->used, 0, NTFS_BOOT_BYTES < fs_end ? NTFS_BOOT_BYTES : fs_end);
        if (k >= 0)
                k = extents_add(&res->used, v.clusters * v.cluster_size, fs_end);
        if (k < 0)
                return probe_fail(res, k, "out of memory");
        k = check_marked(&v, &v.mft, "$MFT", res);
        if (k >= 0)
                k = check_marked(&v, &bitmap, "$Bitmap", res);
        if (k < 0)
                return k;

        char csize[32], rsize[32], runs[48] = "";
        size_str(csize, sizeof(csize), v.cluster_size);
        size_str(rsize, sizeof(rsize), v.record_size);
        if (v.mft.n > 1)
                snprintf(runs, sizeof(runs), " in %zu fragments", v.mft.n);
        snprintf(res->how, sizeof(res->how), "cluster bitmap, %" PRIu64 " of %" PRIu64 " %s clusters used, %s MFT records%s, log %s",
                 used, v.clusters, csize, rsize, runs, why);
        res->fs_size = fs_end;
        return 0;
}

const FsProbe fsprobe_ntfs = {
        .name = "ntfs",
        .types = types,
        .collect = collect,
};
