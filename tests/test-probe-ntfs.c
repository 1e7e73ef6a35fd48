/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The NTFS probe against real volumes made by mkfs.ntfs and filled by
 * ntfscp: the used clusters must be exactly the bits of $Bitmap as ntfscat
 * reads it (ntfs-3g's own attribute code, not ours), their count that of
 * ntfscluster, plus the boot sector and the sectors past the last cluster;
 * and every broken, dirty, unreplayed or fuzzed volume must fail or be
 * mapped whole, never crash or shrink. */
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "probe-mutants.h"
#include "test-helpers.h"
#include "probe.h"

static uint64_t file_size(const char *path) {
        struct stat st;
        return stat(path, &st) == 0 ? (uint64_t) st.st_size : 0;
}

static void put_le16(uint8_t *p, uint16_t v) {
        p[0] = (uint8_t) v;
        p[1] = (uint8_t) (v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v) {
        put_le16(p, (uint16_t) v);
        put_le16(p + 2, (uint16_t) (v >> 16));
}

static void put_le64(uint8_t *p, uint64_t v) {
        put_le32(p, (uint32_t) v);
        put_le32(p + 4, (uint32_t) (v >> 32));
}

static uint8_t *load(const char *path, size_t *ret_size) {
        size_t n = file_size(path);
        uint8_t *buf = n ? malloc(n) : NULL;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (!buf || fd < 0 || pread(fd, buf, n, 0) != (ssize_t) n) {
                free(buf);
                buf = NULL;
        }
        if (fd >= 0)
                close(fd);
        *ret_size = n;
        return buf;
}

static int probe_file(const char *path, uint64_t size, ProbeResult *res) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        CHECK(fd >= 0, "cannot open %s", path);
        if (fd < 0)
                return -errno;
        extents_clear(&res->used);
        res->how[0] = 0;
        res->fs_size = 0;
        Reader r = reader_from_fd(fd, file_size(path), 0, size ? size : file_size(path));
        int k = fsprobe_ntfs.collect(&r, "ntfs", res);
        close(fd);
        return k;
}

static int probe_mem(const uint8_t *img, uint64_t image_size, uint64_t size, ProbeResult *res) {
        Reader r = reader_from_mem(img, image_size, 0, size);
        extents_clear(&res->used);
        res->how[0] = 0;
        res->fs_size = 0;
        return fsprobe_ntfs.collect(&r, "ntfs", res);
}

/* The geometry by the boot sector, read here on its own. */
typedef struct Geo {
        uint64_t bps, cs, rs, total_sectors, clusters, mft_lcn;
} Geo;

static Geo geometry(const uint8_t *b) {
        Geo g = { .bps = get_le16(b + 11) };
        uint8_t spc = b[13];
        g.cs = g.bps * (spc <= 0x80 ? spc : 1u << (256 - spc));
        int8_t rs = (int8_t) b[0x40];
        g.rs = rs > 0 ? (uint64_t) rs * g.cs : 1u << -rs;
        g.total_sectors = get_le64(b + 0x28);
        g.clusters = g.total_sectors * g.bps / g.cs;
        g.mft_lcn = get_le64(b + 0x30);
        return g;
}

/* A number from a line "label : N" of a command's output. */
static bool tool_number(const char *cmd, const char *label, uint64_t *ret) {
        char line[512];
        bool found = false;
        FILE *p = popen(cmd, "re");
        if (!p)
                return false;
        while (fgets(line, sizeof(line), p)) {
                char *s = strstr(line, label);
                unsigned long long v;
                if (s && (s = strchr(s + strlen(label), ':')) && sscanf(s + 1, " %llu", &v) == 1) {
                        *ret = v;
                        found = true;
                }
        }
        pclose(p);
        return found;
}

/* The separate count: $Bitmap as ntfscat reads it, bit by bit, plus the
 * boot sector and everything from the last whole cluster to the backup
 * boot sector. */
static int ref_used(const char *path, uint64_t part_size, Extents *ret, uint64_t *ret_clusters) {
        uint8_t b[512];
        char cmd[PATH_MAX * 2 + 64];
        PATH_COPY(bm, "bitmap.bin");
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || pread(fd, b, sizeof(b), 0) != (ssize_t) sizeof(b)) {
                if (fd >= 0)
                        close(fd);
                return -EIO;
        }
        close(fd);
        Geo g = geometry(b);
        snprintf(cmd, sizeof(cmd), "ntfscat -f -i 6 '%s' > '%s' 2>/dev/null", path, bm);
        if (system(cmd) != 0)
                return -EIO;
        size_t n;
        _cleanup_free_ uint8_t *bits = load(bm, &n);
        if (!bits || n * 8 < g.clusters)
                return -EIO;
        extents_clear(ret);
        uint64_t used = 0;
        for (uint64_t c = 0; c < g.clusters; c++)
                if (bits[c / 8] >> (c % 8) & 1) {
                        extents_add(ret, c * g.cs, (c + 1) * g.cs);
                        used++;
                }
        uint64_t end = (g.total_sectors + 1) * g.bps <= part_size ? (g.total_sectors + 1) * g.bps : g.total_sectors * g.bps;
        extents_add(ret, 0, 8192);
        extents_add(ret, g.clusters * g.cs, end);
        *ret_clusters = used;
        unlink(bm);
        return 0;
}

/* Probes the volume in path and checks it cluster for cluster against the
 * separate count, and the count against ntfscluster's. */
static void check_image(const char *name, const char *path, ProbeResult *res) {
        _cleanup_extents_ Extents ref = EXTENTS_INIT;
        char cmd[PATH_MAX + 64];
        uint64_t ref_clusters = 0, free_clusters = 0, vol_clusters = 0;
        uint8_t b[512];

        int k = probe_file(path, 0, res);
        CHECK(k == 0, "%s: probe failed: %s", name, res->how);
        if (k < 0)
                return;
        CHECK_STR_CONTAINS(res->how, "cluster bitmap");
        CHECK(ref_used(path, file_size(path), &ref, &ref_clusters) == 0, "%s: cannot read $Bitmap with ntfscat", name);
        CHECK(extents_equal(&res->used, &ref), "%s: the probe's extents differ from $Bitmap by ntfscat (%zu vs %zu extents, %" PRIu64
              " vs %" PRIu64 " bytes)",
              name, res->used.n, ref.n, extents_total(&res->used), extents_total(&ref));

        snprintf(cmd, sizeof(cmd), "ntfscluster -f --info '%s' 2>/dev/null", path);
        CHECK(tool_number(cmd, "clusters of free space", &free_clusters), "%s: no free count from ntfscluster", name);
        snprintf(cmd, sizeof(cmd), "ntfsinfo -f -m '%s' 2>/dev/null", path);
        CHECK(tool_number(cmd, "Volume Size in Clusters", &vol_clusters), "%s: no cluster count from ntfsinfo", name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        CHECK(fd >= 0 && pread(fd, b, sizeof(b), 0) == (ssize_t) sizeof(b), "%s: cannot read the boot sector", name);
        if (fd >= 0)
                close(fd);
        Geo g = geometry(b);
        uint64_t tool_used = vol_clusters - free_clusters;
        uint64_t total = extents_total(&res->used);
        uint64_t extra = (g.total_sectors + 1) * g.bps - g.clusters * g.cs;
        printf("%-24s %-84s mapped %" PRIu64 " bytes; ntfscluster: %" PRIu64 " of %" PRIu64 " clusters used = %" PRIu64
               " bytes (+%" PRIu64 " past the last cluster)\n",
               name, res->how, total, tool_used, vol_clusters, tool_used * g.cs, extra);
        CHECK_U64(vol_clusters, g.clusters);
        CHECK_U64(ref_clusters, tool_used);
        CHECK_U64(total, tool_used * g.cs + extra);
        CHECK_U64(res->fs_size, (g.total_sectors + 1) * g.bps);
}

/* A file of size pseudo-random bytes, put into the volume by ntfscp. */
static void add_file(const char *img, const char *name, size_t size) {
        PATH_COPY(src, "src.bin");
        FILE *f = fopen(src, "we");
        CHECK(f, "cannot create %s", src);
        if (!f)
                return;
        for (size_t i = 0; i < size; i++)
                fputc((int) (rng() & 0xFF), f);
        fclose(f);
        sh("ntfscp -f -q '%s' '%s' '%s' >/dev/null 2>&1", img, src, name);
        unlink(src);
}

static bool mkntfs(const char *img, const char *size, const char *args) {
        return sh("rm -f '%s' && truncate -s %s '%s' && mkfs.ntfs -Q -F %s '%s' >/dev/null 2>&1", img, size, img, args, img) == 0;
}

static void test_mkfs(const char *name, const char *size, const char *args, unsigned nfiles, size_t max_size) {
        ProbeResult res = { .used = EXTENTS_INIT };
        char file[64];
        snprintf(file, sizeof(file), "%s.img", name);
        PATH_COPY(img, file);
        if (mkntfs(img, size, args)) {
                for (unsigned i = 0; i < nfiles; i++) {
                        char fname[32];
                        snprintf(fname, sizeof(fname), "f%u", i);
                        add_file(img, fname, (size_t) (rng() % max_size));
                }
                check_image(name, img, &res);
        }
        probe_result_done(&res);
        unlink(img);
}

/* A volume smaller than its partition: the backup boot sector follows it,
 * and fs_size says where the tail begins. */
static void test_small_volume(void) {
        ProbeResult res = { .used = EXTENTS_INIT };
        PATH_COPY(img, "small.img");
        if (sh("rm -f '%s' && truncate -s 32M '%s' && mkfs.ntfs -Q -F -c 4096 '%s' 32768 >/dev/null 2>&1", img, img, img) == 0) {
                sh("truncate -s 64M '%s'", img);
                int k = probe_file(img, 0, &res);
                CHECK(k == 0, "small volume: %s", res.how);
                CHECK_U64(res.fs_size, 32768 * 512);
                CHECK(res.used.n && res.used.v[res.used.n - 1].end == 32768 * 512,
                      "small volume: the backup boot sector is not the last mapped byte");
                printf("%-24s %s; fs_size %" PRIu64 " in a partition of %" PRIu64 "\n", "volume-half-partition", res.how,
                       res.fs_size, file_size(img));
        }
        probe_result_done(&res);
        unlink(img);
}

/* Where MFT record n starts in an image whose MFT is contiguous (mkfs.ntfs
 * makes it so). */
static uint64_t record_at(const uint8_t *img, uint64_t n) {
        Geo g = geometry(img);
        return g.mft_lcn * g.cs + n * g.rs;
}

/* The offset of the first attribute of type in MFT record n, or 0. Only
 * reads bytes that the fixups leave alone. */
static uint64_t attr_at(const uint8_t *img, uint64_t n, uint32_t type) {
        uint64_t rec = record_at(img, n), off = get_le16(img + rec + 0x14);
        while (off < 1024 && get_le32(img + rec + off) != 0xFFFFFFFF) {
                if (get_le32(img + rec + off) == type)
                        return rec + off;
                off += get_le32(img + rec + off + 4);
        }
        return 0;
}

/* A byte that is not one the fixups swap (the last two of each stride). */
static bool fixup_safe(uint64_t at) {
        return at % 512 < 510;
}

/* Undoes, or redoes, the update sequence of a record in memory. */
static void record_unfix(uint8_t *rec, uint32_t size) {
        uint16_t ofs = get_le16(rec + 4);
        for (uint32_t i = 1; i <= size / 512; i++)
                memcpy(rec + i * 512 - 2, rec + ofs + 2 * i, 2);
}

static void record_fix(uint8_t *rec, uint32_t size) {
        uint16_t ofs = get_le16(rec + 4);
        for (uint32_t i = 1; i <= size / 512; i++) {
                memcpy(rec + ofs + 2 * i, rec + i * 512 - 2, 2);
                memcpy(rec + i * 512 - 2, rec + ofs, 2);
        }
}

/* A fragmented $MFT, made by hand: the cluster holding records 4 to 7
 * ($Bitmap among them) moves to a free cluster further in, $MFT's runlist
 * becomes three runs, and the old cluster is freed and filled with
 * garbage. The probe must find record 6 through the runlist; ntfscat,
 * which reads $Bitmap the same way, is the separate count. */
static void test_fragmented_mft(void) {
        ProbeResult res = { .used = EXTENTS_INIT };
        PATH_COPY(path, "frag-mft.img");
        if (!mkntfs(path, "16M", "-c 4096"))
                return;
        add_file(path, "a", 200000);
        size_t n;
        _cleanup_free_ uint8_t *img = load(path, &n);
        CHECK(img, "cannot load frag-mft.img");
        if (!img)
                return;
        Geo g = geometry(img);
        uint64_t bm = attr_at(img, 6, 0x80), r0 = record_at(img, 0), mirr = get_le64(img + 0x38);
        uint8_t rec[1024];
        CHECK(g.cs == 4096 && g.rs == 1024 && bm, "unexpected geometry");
        if (g.cs != 4096 || g.rs != 1024 || !bm)
                return;
        const uint8_t *m = img + bm + get_le16(img + bm + 0x20);
        uint64_t bitmap = 0;
        for (unsigned i = 0; i < (unsigned) (m[0] >> 4); i++)
                bitmap |= (uint64_t) m[1 + (m[0] & 15) + i] << (8 * i);
        uint8_t *bits = img + bitmap * g.cs;

        /* A free cluster not far in: deltas of one signed byte. */
        uint64_t x = 0;
        for (uint64_t c = g.mft_lcn + 8; c < g.mft_lcn + 120 && !x; c++)
                if (!(bits[c / 8] >> (c % 8) & 1))
                        x = c;
        CHECK(x, "no free cluster near the MFT");
        if (!x)
                return;

        memcpy(rec, img + r0, sizeof(rec));
        record_unfix(rec, sizeof(rec));
        uint32_t off = get_le16(rec + 0x14), in_use = get_le32(rec + 0x18);
        while (get_le32(rec + off) != 0x80)
                off += get_le32(rec + off + 4);
        uint32_t len = get_le32(rec + off + 4), mp = get_le16(rec + off + 0x20);
        uint64_t runs = rec[off + mp + 1];
        CHECK(rec[off + mp] == 0x11 && runs > 3 && rec[off + mp + 2] == g.mft_lcn, "$MFT is not one short run at cluster %" PRIu64,
              g.mft_lcn);
        memmove(rec + off + len + 8, rec + off + len, in_use - off - len);
        put_le32(rec + off + 4, len + 8);
        put_le32(rec + 0x18, in_use + 8);
        const uint8_t pairs[16] = {
                0x11, 1, (uint8_t) g.mft_lcn,
                0x11, 1, (uint8_t) (x - g.mft_lcn),
                0x11, (uint8_t) (runs - 2), (uint8_t) (int8_t) (int64_t) (g.mft_lcn + 2 - x),
        };
        memcpy(rec + off + mp, pairs, len + 8 - mp);
        record_fix(rec, sizeof(rec));
        memcpy(img + r0, rec, sizeof(rec));
        memcpy(img + mirr * g.cs, rec, sizeof(rec));

        uint64_t old = g.mft_lcn + 1;
        memcpy(img + x * g.cs, img + old * g.cs, g.cs);
        memset(img + old * g.cs, 0xAB, g.cs);
        bits[x / 8] |= (uint8_t) (1 << (x % 8));
        bits[old / 8] &= (uint8_t) ~(1 << (old % 8));

        int fd = open(path, O_WRONLY | O_CLOEXEC);
        CHECK(fd >= 0 && pwrite(fd, img, n, 0) == (ssize_t) n, "cannot write frag-mft.img");
        if (fd >= 0)
                close(fd);
        check_image("ntfs-fragmented-mft", path, &res);
        CHECK_STR_CONTAINS(res.how, "in 3 fragments");
        CHECK(extents_contains(&res.used, x * g.cs, (x + 1) * g.cs) && !extents_overlaps(&res.used, old * g.cs, (old + 1) * g.cs),
              "the moved MFT cluster %" PRIu64 " is not mapped, or the old one %" PRIu64 " is", x, old);
        probe_result_done(&res);
        unlink(path);
}

/* A run for set_runs: lcn -1 is sparse. */
typedef struct TRun {
        uint64_t len;
        int64_t lcn;
} TRun;

/* Replaces the mapping pairs of the unnamed $DATA of MFT record recno
 * (and its mirror, for records 0 to 3), growing the attribute when they
 * need more room. */
static void set_runs(uint8_t *img, uint64_t recno, const TRun *runs, size_t n) {
        Geo g = geometry(img);
        uint8_t rec[1024], pairs[128];
        size_t np = 0;
        int64_t prev = 0;
        for (size_t i = 0; i < n; i++) {
                unsigned nl = 1, no = 0;
                while (nl < 8 && runs[i].len >> (8 * nl))
                        nl++;
                int64_t d = runs[i].lcn - prev;
                if (runs[i].lcn >= 0) {
                        no = 1;
                        while (no < 8 && !(d >= -(INT64_C(1) << (8 * no - 1)) && d < (INT64_C(1) << (8 * no - 1))))
                                no++;
                        prev = runs[i].lcn;
                }
                pairs[np++] = (uint8_t) (no << 4 | nl);
                for (unsigned k = 0; k < nl; k++)
                        pairs[np++] = (uint8_t) (runs[i].len >> (8 * k));
                for (unsigned k = 0; k < no; k++)
                        pairs[np++] = (uint8_t) ((uint64_t) d >> (8 * k));
        }
        pairs[np++] = 0;

        uint64_t at = record_at(img, recno);
        memcpy(rec, img + at, sizeof(rec));
        record_unfix(rec, sizeof(rec));
        uint32_t off = get_le16(rec + 0x14), in_use = get_le32(rec + 0x18);
        while (get_le32(rec + off) != 0x80)
                off += get_le32(rec + off + 4);
        uint32_t len = get_le32(rec + off + 4), mp = get_le16(rec + off + 0x20);
        uint32_t want = (uint32_t) ((mp + np + 7) / 8 * 8), grow = want > len ? want - len : 0;
        CHECK(in_use + grow <= sizeof(rec), "record %" PRIu64 " has no room for %zu bytes of runs", recno, np);
        if (in_use + grow > sizeof(rec))
                return;
        memmove(rec + off + len + grow, rec + off + len, in_use - off - len);
        put_le32(rec + off + 4, len + grow);
        put_le32(rec + 0x18, in_use + grow);
        memset(rec + off + mp, 0, len + grow - mp);
        memcpy(rec + off + mp, pairs, np);
        record_fix(rec, sizeof(rec));
        memcpy(img + at, rec, sizeof(rec));
        if (recno < 4)
                memcpy(img + get_le64(img + 0x38) * g.cs + recno * g.rs, rec, sizeof(rec));
}

static bool bit(const uint8_t *bits, uint64_t c) {
        return bits[c / 8] >> (c % 8) & 1;
}

static void set_bit(uint8_t *bits, uint64_t c, bool on) {
        if (on)
                bits[c / 8] |= (uint8_t) (1 << (c % 8));
        else
                bits[c / 8] &= (uint8_t) ~(1 << (c % 8));
}

/* $Bitmap in three runs: its start where it was, its middle moved far
 * into the volume, and its end, where every bit is clear, made sparse (a
 * hole reads as zeros: free clusters). 512-byte clusters, so that the
 * bitmap spans 8 of them. */
static void test_fragmented_bitmap(void) {
        ProbeResult res = { .used = EXTENTS_INIT };
        PATH_COPY(path, "frag-bitmap.img");
        if (!mkntfs(path, "16M", "-c 512"))
                return;
        add_file(path, "a", 100000);
        size_t n;
        _cleanup_free_ uint8_t *img = load(path, &n);
        CHECK(img, "cannot load frag-bitmap.img");
        if (!img)
                return;
        Geo g = geometry(img);
        uint64_t a = attr_at(img, 6, 0x80);
        const uint8_t *m = img + a + get_le16(img + a + 0x20);
        uint64_t b = 0, blen = m[1];
        for (unsigned i = 0; i < (unsigned) (m[0] >> 4); i++)
                b |= (uint64_t) m[1 + (m[0] & 15) + i] << (8 * i);
        CHECK((m[0] & 15) == 1 && blen == 8 && m[2 + (m[0] >> 4)] == 0, "$Bitmap is not one run of 8 clusters");
        if ((m[0] & 15) != 1 || blen != 8)
                return;
        /* The bitmap as it will read, changed here and then laid out. */
        uint8_t bits[8 * 512];
        CHECK(g.cs == 512, "clusters of %" PRIu64 " bytes", g.cs);
        if (g.cs != 512)
                return;
        memcpy(bits, img + b * g.cs, sizeof(bits));

        /* Six free clusters past the bitmap whose own bits lie in its
         * first two VCNs, which stay where they are. */
        uint64_t x = 0;
        for (uint64_t c = b + 100; c + 6 <= 2 * g.cs * 8 && c + 6 <= g.clusters && !x; c++) {
                bool free_run = true;
                for (uint64_t k = 0; k < 6; k++)
                        free_run &= !bit(bits, c + k);
                if (free_run)
                        x = c;
        }
        CHECK(x, "no 6 free clusters to move the bitmap to");
        if (!x)
                return;
        for (uint64_t k = 2; k < 8; k++)
                set_bit(bits, b + k, false);
        /* VCNs 2-7: each all-zero one becomes a hole, the others move to
         * x, x + 1, ...; their bits set now change only VCNs 0-1. */
        bool zero[8] = {};
        for (uint64_t v = 2; v < 8; v++) {
                zero[v] = true;
                for (uint64_t i = v * g.cs; i < (v + 1) * g.cs; i++)
                        zero[v] &= bits[i] == 0;
        }
        TRun runs[8] = { { 2, (int64_t) b } };
        size_t nr = 1;
        uint64_t moved = 0, holes = 0;
        for (uint64_t v = 2; v < 8; v++) {
                if (zero[v]) {
                        runs[nr++] = (TRun) { 1, -1 };
                        holes++;
                } else {
                        set_bit(bits, x + moved, true);
                        runs[nr++] = (TRun) { 1, (int64_t) (x + moved) };
                        moved++;
                }
        }
        memset(img + (b + 2) * g.cs, 0xCD, 6 * g.cs);
        memcpy(img + b * g.cs, bits, 2 * g.cs);
        moved = 0;
        for (uint64_t v = 2; v < 8; v++)
                if (!zero[v])
                        memcpy(img + (x + moved++) * g.cs, bits + v * g.cs, g.cs);
        set_runs(img, 6, runs, nr);
        CHECK(holes > 0 && moved > 0, "the bitmap has %" PRIu64 " sparse and %" PRIu64 " moved runs: not both kinds", holes, moved);

        int fd = open(path, O_WRONLY | O_CLOEXEC);
        CHECK(fd >= 0 && pwrite(fd, img, n, 0) == (ssize_t) n, "cannot write frag-bitmap.img");
        if (fd >= 0)
                close(fd);
        printf("%-24s $Bitmap: VCNs 0-1 at LCN %" PRIu64 ", of VCNs 2-7 %" PRIu64 " moved to LCN %" PRIu64 "+ and %" PRIu64 " sparse\n",
               "bitmap-runs", b, moved, x, holes);
        check_image("ntfs-fragmented-bitmap", path, &res);
        probe_result_done(&res);
        unlink(path);
}

static void check_fail_or_whole(const char *what, const uint8_t *img, uint64_t image_size, uint64_t size,
                                const char *reason) {
        ProbeResult res = { .used = EXTENTS_INIT };
        int k = probe_mem(img, image_size, size, &res);
        CHECK(k < 0 || (res.used.n == 1 && res.used.v[0].start == 0 && res.used.v[0].end == size),
              "%s: accepted (%s)", what, res.how);
        CHECK(res.how[0], "%s: no reason given", what);
        if (reason)
                CHECK_STR_CONTAINS(res.how, reason);
        printf("%-24s %s: %s\n", "corrupt", what, res.how);
        probe_result_done(&res);
}

/* Writes a restart page at the start of $LogFile (its first run): a log
 * with an open client, closed cleanly or not, of log version major.1
 * (Windows 8 and later write 2.0 when they hibernate for fast startup). */
static void put_restart_page_version(uint8_t *img, bool clean, uint16_t major, uint16_t minor) {
        Geo g = geometry(img);
        uint64_t a = attr_at(img, 2, 0x80);
        CHECK(a && img[a + 8] == 1, "$LogFile has no non-resident $DATA");
        if (!a)
                return;
        const uint8_t *mp = img + a + get_le16(img + a + 0x20);
        unsigned nl = mp[0] & 15, no = mp[0] >> 4;
        uint64_t lcn = 0;
        for (unsigned i = 0; i < no; i++)
                lcn |= (uint64_t) mp[1 + nl + i] << (8 * i);
        uint8_t *p = img + lcn * g.cs;
        memset(p, 0, 4096);
        memcpy(p, "RSTR", 4);
        put_le16(p + 4, 0x1E);
        put_le16(p + 6, 4096 / 512 + 1);
        put_le32(p + 0x10, 4096);
        put_le32(p + 0x14, 4096);
        put_le16(p + 0x18, 0x30);
        put_le16(p + 0x1A, minor);
        put_le16(p + 0x1C, major);
        uint8_t *ra = p + 0x30;
        put_le64(ra, 1000);
        put_le16(ra + 8, 1);
        put_le16(ra + 0x0A, 0xFFFF);
        put_le16(ra + 0x0C, 0);
        put_le16(ra + 0x0E, clean ? 2 : 0);
        /* The update sequence: 1, each stride's last bytes (0) kept in the array. */
        put_le16(p + 0x1E, 1);
        for (unsigned i = 1; i <= 8; i++)
                put_le16(p + i * 512 - 2, 1);
}

static void put_restart_page(uint8_t *img, bool clean) {
        put_restart_page_version(img, clean, 1, 1);
}

static void test_corrupt(void) {
        PATH_COPY(path, "corrupt.img");
        if (!mkntfs(path, "16M", "-c 4096"))
                return;
        add_file(path, "a", 300000);
        add_file(path, "b", 5000);
        size_t n;
        _cleanup_free_ uint8_t *orig = load(path, &n);
        _cleanup_free_ uint8_t *img = malloc(n);
        CHECK(orig && img, "cannot load corrupt.img");
        if (!orig || !img)
                return;
        Geo g = geometry(orig);

        memcpy(img, orig, n);
        ProbeResult res = { .used = EXTENTS_INIT };
        CHECK(probe_mem(img, n, n, &res) == 0, "the untouched image fails: %s", res.how);
        uint64_t good = extents_total(&res.used);
        probe_result_done(&res);

        static const struct {
                const char *what;
                size_t off, len;
                uint64_t v;
                const char *reason;
        } boot[] = {
                { "signature", 3, 1, 'M', "no NTFS signature" },
                { "55 AA", 0x1FE, 1, 0, "55 AA" },
                { "1000-byte sectors", 0x0B, 2, 1000, "bytes per sector" },
                { "0 sectors per cluster", 0x0D, 1, 0, "sectors per cluster" },
                { "3 sectors per cluster", 0x0D, 1, 3, "sectors per cluster" },
                { "8 MiB clusters", 0x0D, 1, 0xF0, "sectors per cluster" },
                { "reserved sectors set", 0x0E, 2, 1, "FAT fields" },
                { "MFT record size 0", 0x40, 1, 0, "MFT record size" },
                { "MFT records of 256 B", 0x40, 1, 0xF8, "MFT record size" },
                { "volume past partition", 0x28, 8, 1ull << 40, "does not fit" },
                { "no sectors", 0x28, 8, 0, "does not fit" },
                { "MFT past the volume", 0x30, 8, 1ull << 30, "outside" },
                { "MFT at cluster 1", 0x30, 8, 1, "MFT record 0" },
                { "MFT at cluster 0", 0x30, 8, 0, "outside" },
        };
        for (size_t i = 0; i < ELEMENTSOF(boot); i++) {
                memcpy(img, orig, n);
                for (size_t j = 0; j < boot[i].len; j++)
                        img[boot[i].off + j] = (uint8_t) (boot[i].v >> (8 * j));
                check_fail_or_whole(boot[i].what, img, n, n, boot[i].reason);
        }

        /* Record 6, $Bitmap: its signature, a fixup, its runlist. */
        uint64_t r6 = record_at(orig, 6), bm = attr_at(orig, 6, 0x80);
        CHECK(bm && orig[bm + 8] == 1, "$Bitmap's $DATA is not found non-resident");
        if (!bm)
                return;
        uint64_t mp = bm + get_le16(orig + bm + 0x20);
        unsigned nl = orig[mp] & 15, no = orig[mp] >> 4;
        CHECK(fixup_safe(mp + 1 + nl + no), "the runlist crosses a stride end");

        memcpy(img, orig, n);
        img[r6] = 'X';
        check_fail_or_whole("record 6 signature", img, n, n, "FILE signature");
        memcpy(img, orig, n);
        img[r6 + 510] ^= 0x55;
        check_fail_or_whole("record 6 torn (fixup)", img, n, n, "update sequence number");
        memcpy(img, orig, n);
        img[r6 + get_le16(orig + r6 + 4)] ^= 1;
        check_fail_or_whole("record 6 usn", img, n, n, "update sequence number");
        memcpy(img, orig, n);
        img[record_at(orig, 0) + 1022] ^= 0xFF;
        check_fail_or_whole("record 0 torn (fixup)", img, n, n, "MFT record 0");

        /* The bitmap's first run moved past the volume, or far in. */
        memcpy(img, orig, n);
        img[mp + 1 + nl + no - 1] = 0x7F;
        check_fail_or_whole("bitmap past the volume", img, n, n, "outside the");
        memcpy(img, orig, n);
        img[mp] = 0x09;
        check_fail_or_whole("bitmap run header", img, n, n, "run header");
        memcpy(img, orig, n);
        img[mp + 1] = (uint8_t) (img[mp + 1] + 1);
        check_fail_or_whole("bitmap run length", img, n, n, "$Bitmap");
        memcpy(img, orig, n);
        img[mp] = 0;
        check_fail_or_whole("bitmap runlist empty", img, n, n, "cover 0");
        /* Its first run pointed at the MFT: bits that do not mark the
         * bitmap's own clusters used. */
        memcpy(img, orig, n);
        for (unsigned i = 0; i < no; i++)
                img[mp + 1 + nl + i] = (uint8_t) (i < 8 ? g.mft_lcn >> (8 * i) : 0);
        check_fail_or_whole("bitmap moved onto the MFT", img, n, n, "free");

        /* The bitmap itself saying $MFT's clusters are free. */
        memcpy(img, orig, n);
        uint64_t lcn = 0;
        for (unsigned i = 0; i < no; i++)
                lcn |= (uint64_t) orig[mp + 1 + nl + i] << (8 * i);
        img[lcn * g.cs + g.mft_lcn / 8] = 0;
        check_fail_or_whole("bitmap frees the MFT", img, n, n, "$MFT");

        /* Dirty by hand: $VOLUME_INFORMATION's flags. */
        uint64_t vi = attr_at(orig, 3, 0x70);
        CHECK(vi && orig[vi + 8] == 0, "$Volume has no resident $VOLUME_INFORMATION");
        if (vi) {
                uint64_t flags = vi + get_le16(orig + vi + 0x14) + 10;
                CHECK(fixup_safe(flags), "the volume flags are under a fixup");
                memcpy(img, orig, n);
                img[flags] |= 1;
                check_fail_or_whole("dirty by hand", img, n, n, "marked dirty");
        }

        /* $LogFile: open and not closed cleanly, garbage, closed cleanly. */
        memcpy(img, orig, n);
        put_restart_page(img, false);
        check_fail_or_whole("log not closed cleanly", img, n, n, "not closed cleanly");
        memcpy(img, orig, n);
        put_restart_page(img, false);
        {
                /* The same page with a torn stride: no valid restart page. */
                uint64_t a = attr_at(img, 2, 0x80);
                const uint8_t *m = img + a + get_le16(img + a + 0x20);
                unsigned l = m[0] & 15, o = m[0] >> 4;
                uint64_t log = 0;
                for (unsigned i = 0; i < o; i++)
                        log |= (uint64_t) m[1 + l + i] << (8 * i);
                img[log * g.cs + 1022] = 7;
                check_fail_or_whole("log restart page torn", img, n, n, "without a valid restart page");
        }
        memcpy(img, orig, n);
        put_restart_page(img, true);
        res = (ProbeResult) { .used = EXTENTS_INIT };
        CHECK(probe_mem(img, n, n, &res) == 0, "a cleanly closed log fails: %s", res.how);
        CHECK_STR_CONTAINS(res.how, "log closed cleanly");
        CHECK_U64(extents_total(&res.used), good);
        printf("%-24s %s\n", "log-closed-cleanly", res.how);
        probe_result_done(&res);
        /* The same clean page, of version 2.0: Windows hibernated (fast
         * startup) with the volume mounted, its bitmap cached in memory;
         * clusters it allocated may not be marked on disk yet. */
        memcpy(img, orig, n);
        put_restart_page_version(img, true, 2, 0);
        check_fail_or_whole("log 2.0 (fast startup)", img, n, n, "fast startup");

        /* Truncated images and short partitions. */
        memcpy(img, orig, n);
        check_fail_or_whole("truncated to half", img, n / 2, n, "last sector");
        check_fail_or_whole("truncated to 100 bytes", img, 100, n, "boot sector");
        check_fail_or_whole("one sector short", img, n - 512, n, "last sector");
        check_fail_or_whole("partition 2 sectors short", img, n, n - 1024, "does not fit");
        /* One sector short of the backup boot sector: still the volume. */
        res = (ProbeResult) { .used = EXTENTS_INIT };
        CHECK(probe_mem(img, n, n - 512, &res) == 0, "a partition without the backup boot sector fails: %s", res.how);
        CHECK_U64(res.fs_size, n - 512);
        probe_result_done(&res);

        /* Through ntfsfix: it marks the volume dirty for chkdsk. */
        if (sh("ntfsfix '%s' >/dev/null 2>&1", path) == 0) {
                res = (ProbeResult) { .used = EXTENTS_INIT };
                int k = probe_file(path, 0, &res);
                CHECK(k == 0 && extents_total(&res.used) == n, "ntfsfix'd volume not mapped whole: %s", res.how);
                CHECK_STR_CONTAINS(res.how, "marked dirty");
                printf("%-24s %s\n", "ntfsfix-dirty", res.how);
                probe_result_done(&res);
        }
        unlink(path);
}

/* Random damage to a valid image, in the boot sector, the first MFT
 * records, $LogFile's start and the bitmap, must never crash, read or map
 * outside the region. */
static void mutate_image(unsigned rounds) {
        PATH_COPY(path, "mutate.img");
        if (!mkntfs(path, "4M", "-c 1024"))
                return;
        add_file(path, "a", 100000);
        size_t n;
        _cleanup_free_ uint8_t *orig = load(path, &n);
        _cleanup_free_ uint8_t *img = malloc(n);
        if (!orig || !img)
                return;
        Geo g = geometry(orig);
        uint64_t mft = g.mft_lcn * g.cs, hot[][2] = { { 0, 512 }, { mft, mft + 8 * g.rs } };
        ProbeResult res = { .used = EXTENTS_INIT };
        unsigned ok = 0;
        memcpy(img, orig, n);
        for (unsigned round = 0; round < rounds; round++) {
                unsigned changes = 1 + (unsigned) (rng() % 6);
                for (unsigned c = 0; c < changes; c++) {
                        unsigned h = (unsigned) (rng() % 3);
                        size_t at = h < 2 ? (size_t) (hot[h][0] + rng() % (hot[h][1] - hot[h][0])) : (size_t) (rng() % n);
                        img[at] = rng() % 3 ? (uint8_t) rng() : (uint8_t) (img[at] ^ (1u << (rng() % 8)));
                }
                uint64_t image_size = rng() % 8 ? n : rng() % n;
                uint64_t size = rng() % 8 ? n : rng() % (2 * n);
                int k = probe_mem(img, image_size, size, &res);
                if (check_mutant(k, &res, size, round))
                        ok++;
                if (round % 4 == 3)
                        memcpy(img, orig, n);
        }
        printf("%-24s %u of %u mutations still parsed\n", "mutations", ok, rounds);
        probe_result_done(&res);
        unlink(path);
}

int main(void) {
        const char *base = getenv("TEST_TMPDIR");
        if (system("command -v mkfs.ntfs >/dev/null && command -v ntfscp >/dev/null && command -v ntfscat >/dev/null && "
                   "command -v ntfscluster >/dev/null") != 0) {
                printf("test-probe-ntfs: mkfs.ntfs or the ntfs-3g tools missing, skipped\n");
                return 77;
        }
        if (!base || !*base)
                base = "/tmp";
        if (sh("mkdir -p '%s'", base) != 0)
                return 1;
        snprintf(tmpdir, sizeof(tmpdir), "%s/test-probe-ntfs-XXXXXX", base);
        if (!mkdtemp(tmpdir)) {
                perror("mkdtemp");
                return 1;
        }

        test_mkfs("ntfs-empty", "16M", "-c 4096", 0, 1);
        test_mkfs("ntfs-4k-clusters", "64M", "-c 4096", 12, 3000000);
        test_mkfs("ntfs-512-clusters", "16M", "-c 512", 8, 400000);
        test_mkfs("ntfs-64k-clusters", "256M", "-c 65536", 10, 4000000);
        test_mkfs("ntfs-2m-clusters", "512M", "-c 2097152", 6, 5000000);
        test_mkfs("ntfs-4kn-4k-records", "64M", "-s 4096 -c 4096", 8, 2000000);
        test_mkfs("ntfs-4kn-64k-clusters", "256M", "-s 4096 -c 65536", 6, 3000000);
        test_small_volume();
        test_fragmented_mft();
        test_fragmented_bitmap();
        test_corrupt();
        mutate_image(400);

        sh("rm -rf '%s'", tmpdir);
        return check_exit("test-probe-ntfs");
}
