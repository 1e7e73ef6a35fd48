/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The XFS probe against real filesystems made by mkfs.xfs: v5 (the
 * default: reflink, rmapbt) and v4 (-m crc=0), 1 and 4 KiB blocks, 1 to 7
 * AGs, filled through a kernel loop mount (v5; files written, some deleted,
 * a reflinked copy, thousands of small files freed in a checkerboard so
 * that the bnobt has two levels) or by a mkfs prototype file (v4, which
 * this kernel may not mount). The free space the probe finds must be
 * exactly xfs_db's 'freesp -d' less the AGFL blocks, and the used count
 * must equal dblocks − fdblocks plus the AGFL and btree blocks that XFS
 * counts as free. Every damaged, dirty or truncated filesystem must fail
 * or be mapped whole, never crash or map less. */
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "probe-mutants.h"
#include "checksum.h"
#include "test-helpers.h"
#include "probe.h"

/* mkfs.xfs refuses filesystems under 300 MiB unless it believes it runs
 * under fstests: small images keep this test quick. */
#define MKFS "TEST_DIR=/tmp TEST_DEV=/dev/null QA_CHECK_FS=xfs mkfs.xfs -q -f"

static bool have_loop;

static uint64_t file_size(const char *path) {
        struct stat st;
        return stat(path, &st) == 0 ? (uint64_t) st.st_size : 0;
}

static void put_be32(uint8_t *p, uint32_t v) {
        p[0] = (uint8_t) (v >> 24);
        p[1] = (uint8_t) (v >> 16);
        p[2] = (uint8_t) (v >> 8);
        p[3] = (uint8_t) v;
}

static void put_be64(uint8_t *p, uint64_t v) {
        put_be32(p, (uint32_t) (v >> 32));
        put_be32(p + 4, (uint32_t) v);
}

static void put_le32(uint8_t *p, uint32_t v) {
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t) (v >> (8 * i));
}

/* Recomputes a v5 CRC32C (stored little-endian at off) over len bytes. */
static void fix_crc(uint8_t *p, size_t len, size_t off) {
        put_le32(p + off, 0);
        put_le32(p + off, crc32c(0, p, len));
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

static int probe_file(const char *path, ProbeResult *res) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        CHECK(fd >= 0, "cannot open %s", path);
        if (fd < 0)
                return -errno;
        extents_clear(&res->used);
        res->how[0] = 0;
        res->fs_size = 0;
        Reader r = reader_from_fd(fd, file_size(path), 0, file_size(path));
        int k = fsprobe_xfs.collect(&r, "xfs", res);
        close(fd);
        return k;
}

static int probe_mem(const uint8_t *img, uint64_t image_size, uint64_t size, ProbeResult *res) {
        Reader r = reader_from_mem(img, image_size, 0, size);
        extents_clear(&res->used);
        res->how[0] = 0;
        res->fs_size = 0;
        return fsprobe_xfs.collect(&r, "xfs", res);
}

/* The numbers of lines "label = N" that xfs_db prints for cmds. */
static bool db_numbers(const char *img, const char *cmds, const char *label, uint64_t *ret_sum, unsigned *ret_count) {
        char cmd[PATH_MAX + 512], line[512], key[64];
        snprintf(cmd, sizeof(cmd), "xfs_db -r %s '%s' 2>/dev/null", cmds, img);
        snprintf(key, sizeof(key), "%s = ", label);
        FILE *p = popen(cmd, "re");
        if (!p)
                return false;
        uint64_t sum = 0;
        unsigned count = 0;
        while (fgets(line, sizeof(line), p)) {
                unsigned long long v;
                if (strncmp(line, key, strlen(key)) == 0 && sscanf(line + strlen(key), "%llu", &v) == 1) {
                        sum += v;
                        count++;
                }
        }
        pclose(p);
        *ret_sum = sum;
        if (ret_count)
                *ret_count = count;
        return count > 0;
}

static uint64_t db_number(const char *img, const char *cmds, const char *label) {
        uint64_t v = 0;
        CHECK(db_numbers(img, cmds, label, &v, NULL), "xfs_db %s prints no '%s' for %s", cmds, label, img);
        return v;
}

/* xfs_db's 'freesp -d': every free extent of the bnobt and every AGFL
 * block, as bytes. */
static bool db_freesp(const char *img, uint64_t bs, uint64_t agblocks, Extents *ret) {
        char cmd[PATH_MAX + 64], line[256];
        snprintf(cmd, sizeof(cmd), "xfs_db -r -c 'freesp -d' '%s' 2>/dev/null", img);
        FILE *p = popen(cmd, "re");
        if (!p)
                return false;
        extents_clear(ret);
        while (fgets(line, sizeof(line), p)) {
                unsigned long long ag, bno, len;
                /* The histogram that follows has numbers too. */
                if (strstr(line, "from"))
                        break;
                if (sscanf(line, " %llu %llu %llu", &ag, &bno, &len) == 3)
                        extents_add(ret, (ag * agblocks + bno) * bs, (ag * agblocks + bno + len) * bs);
        }
        pclose(p);
        return true;
}

/* Probes the filesystem in path and checks it against xfs_db. */
static void check_image(const char *name, const char *path) {
        ProbeResult res = { .used = EXTENTS_INIT };
        _cleanup_extents_ Extents ref = EXTENTS_INIT, mine = EXTENTS_INIT;

        int k = probe_file(path, &res);
        CHECK(k == 0, "%s: probe failed: %s", name, res.how);
        CHECK_STR_CONTAINS(res.how, "free-space B+trees");
        CHECK_STR_CONTAINS(res.how, "log clean");
        if (k < 0) {
                probe_result_done(&res);
                return;
        }
        uint64_t bs = db_number(path, "-c 'sb 0' -c 'p blocksize'", "blocksize");
        uint64_t dblocks = db_number(path, "-c 'sb 0' -c 'p dblocks'", "dblocks");
        uint64_t fdblocks = db_number(path, "-c 'sb 0' -c 'p fdblocks'", "fdblocks");
        uint64_t agcount = db_number(path, "-c 'sb 0' -c 'p agcount'", "agcount");
        uint64_t agblocks = db_number(path, "-c 'sb 0' -c 'p agblocks'", "agblocks");
        char cmds[4096] = "";
        for (uint64_t a = 0; a < agcount && strlen(cmds) + 64 < sizeof(cmds); a++)
                snprintf(cmds + strlen(cmds), sizeof(cmds) - strlen(cmds), "-c 'agf %" PRIu64 "' -c 'p flcount btreeblks' ", a);
        uint64_t flcount = db_number(path, cmds, "flcount"), btreeblks = db_number(path, cmds, "btreeblks");
        CHECK(bs && dblocks, "%s: no geometry from xfs_db", name);
        if (!bs) {
                probe_result_done(&res);
                return;
        }

        uint64_t used = extents_total(&res.used), used_blocks = used / bs;
        uint64_t tool = dblocks - fdblocks;
        CHECK_U64(res.fs_size, dblocks * bs);
        CHECK(used % bs == 0, "%s: %" PRIu64 " bytes used: not whole blocks", name, used);
        /* xfs_db counts AGFL and free-space btree blocks as free (they
         * would be handed back as space runs out); the probe maps them. */
        CHECK_U64(used_blocks, tool + flcount + btreeblks);

        /* Extent for extent: freesp -d lists the bnobt's extents and each
         * AGFL block; the probe's free space is that less the AGFL. */
        CHECK(db_freesp(path, bs, agblocks, &ref), "%s: no freesp from xfs_db", name);
        CHECK(extents_complement(&mine, &res.used, 0, dblocks * bs) == 0, "out of memory");
        uint64_t ref_total = extents_total(&ref);
        CHECK(extents_subtract(&ref, &mine) == 0, "out of memory");
        CHECK(extents_total(&ref) == flcount * bs, "%s: freesp -d lists %" PRIu64 " bytes free that the probe maps, not the %" PRIu64
              " of the AGFL", name, extents_total(&ref), flcount * bs);
        CHECK(extents_total(&mine) + flcount * bs == ref_total, "%s: the probe frees %" PRIu64 " bytes, freesp -d %" PRIu64
              " less %" PRIu64 " of AGFL", name, extents_total(&mine), ref_total, flcount * bs);
        printf("%-22s %s\n%-22s mapped %" PRIu64 " blocks of %" PRIu64 " (%" PRIu64 " bytes); xfs_db: dblocks - fdblocks = %" PRIu64
               " (+%" PRIu64 " AGFL, +%" PRIu64 " btree blocks counted free = %" PRIu64 ", %+.3f%%)\n",
               name, res.how, "", used_blocks, dblocks, used, tool, flcount, btreeblks, tool + flcount + btreeblks,
               100.0 * ((double) used_blocks - (double) tool) / (double) tool);
        probe_result_done(&res);
}

/* Runs a shell snippet with the filesystem in img mounted at $M; the loop
 * device is detached and the mount undone whatever the snippet does. */
static int with_mount(const char *img, const char *snippet) {
        PATH_COPY(mnt, "mnt");
        return sh("mkdir -p '%s' && L=$(losetup -f --show '%s') || exit 1; "
                  "if mount -t xfs \"$L\" '%s'; then (export M='%s'; set -e; %s); r=$?; umount '%s' || r=1; else r=1; fi; "
                  "losetup -d \"$L\"; exit $r",
                  mnt, img, mnt, mnt, snippet, mnt);
}

/* Files written through the kernel: some large, some deleted, a
 * reflinked copy; with checker, thousands of small files of which every
 * other one is deleted (a free-space tree of many records). */
static const char *fill_script(bool checker) {
        return checker ? "python3 -c \"import os,random\n"
                         "r=random.Random(7)\n"
                         "os.mkdir(os.environ['M']+'/c')\n"
                         "for i in range(3000): open(os.environ['M']+'/c/s%d'%i,'wb').write(r.randbytes(1500))\n"
                         "os.sync()\n"
                         "for i in range(0,3000,2): os.unlink(os.environ['M']+'/c/s%d'%i)\"; sync"
                       : "python3 -c \"import os,random\n"
                         "r=random.Random(3); m=os.environ['M']\n"
                         "os.makedirs(m+'/d/e')\n"
                         "for i in range(40): open(m+'/f%d'%i,'wb').write(r.randbytes(r.randrange(1,400000)))\n"
                         "for i in range(200): open(m+'/d/e/s%d'%i,'w').write('small %d'%i)\n"
                         "os.sync()\n"
                         "for i in range(0,40,3): os.unlink(m+'/f%d'%i)\"; "
                         "cp --reflink=auto \"$M/f1\" \"$M/f1.copy\"; sync";
}

static void test_mkfs(const char *name, const char *size, const char *args, int fill) {
        char file[64];
        snprintf(file, sizeof(file), "%s.img", name);
        PATH_COPY(img, file);
        if (sh("rm -f '%s' && truncate -s %s '%s' && " MKFS " %s '%s' >/dev/null", img, size, img, args, img) != 0) {
                CHECK(false, "%s: mkfs.xfs %s fails", name, args);
                return;
        }
        if (fill && !have_loop) {
                printf("%-22s no loop device: not filled through a mount, skipped\n", name);
                unlink(img);
                return;
        }
        if (fill)
                CHECK(with_mount(img, fill_script(fill == 2)) == 0, "%s: cannot fill through a loop mount", name);
        CHECK(sh("xfs_repair -n '%s' >/dev/null 2>&1", img) == 0, "%s: xfs_repair -n finds the image itself unclean", name);
        check_image(name, img);
        unlink(img);
}

/* v4 filled by a prototype file: mkfs.xfs writes the files itself. */
static void test_v4_proto(const char *name, const char *args) {
        char file[64];
        snprintf(file, sizeof(file), "%s.img", name);
        PATH_COPY(img, file);
        PATH_COPY(root, "proto-root");
        PATH_COPY(proto, "proto.txt");
        FILE *f;
        sh("rm -rf '%s' && mkdir -p '%s/d'", root, root);
        CHECK((f = fopen(proto, "we")) != NULL, "cannot write %s", proto);
        if (!f)
                return;
        fprintf(f, "boot\n0 0\nd--755 0 0\n");
        for (unsigned i = 0; i < 30; i++) {
                char p[PATH_MAX + 16];
                snprintf(p, sizeof(p), "%s/f%u", root, i);
                FILE *g = fopen(p, "we");
                size_t len = (size_t) (rng() % 300000);
                for (size_t j = 0; g && j < len; j++)
                        fputc((int) (rng() & 0xFF), g);
                if (g)
                        fclose(g);
                fprintf(f, "f%u ---644 0 0 %s\n", i, p);
        }
        fprintf(f, "$\n");
        fclose(f);
        if (sh("rm -f '%s' && truncate -s 96M '%s' && " MKFS " %s -p '%s' '%s' >/dev/null 2>&1", img, img, args, proto, img) != 0)
                CHECK(false, "%s: mkfs.xfs %s -p fails", name, args);
        else {
                CHECK(sh("xfs_repair -n '%s' >/dev/null 2>&1", img) == 0, "%s: xfs_repair -n finds the image unclean", name);
                check_image(name, img);
        }
        sh("rm -rf '%s' '%s' '%s'", root, proto, img);
}

static void check_fail_or_whole(const char *what, const uint8_t *img, uint64_t image_size, uint64_t size, const char *reason) {
        ProbeResult res = { .used = EXTENTS_INIT };
        int k = probe_mem(img, image_size, size, &res);
        CHECK(k < 0 || (res.used.n == 1 && res.used.v[0].start == 0 && res.used.v[0].end == size), "%s: accepted (%s)", what,
              res.how);
        CHECK(res.how[0], "%s: no reason given", what);
        if (reason)
                CHECK_STR_CONTAINS(res.how, reason);
        printf("%-22s %s: %s\n", "corrupt", what, res.how);
        probe_result_done(&res);
}

/* Geometry of an image in memory, read here on its own. */
typedef struct Geo {
        uint32_t bs, ss, agblocks, agcount;
        uint8_t agblklog;
} Geo;

static Geo geometry(const uint8_t *img) {
        return (Geo) { .bs = get_be32(img + 4), .ss = get_be16(img + 102), .agblocks = get_be32(img + 84),
                       .agcount = get_be32(img + 88), .agblklog = img[124] };
}

static uint8_t *agf_at(uint8_t *img, const Geo *g, uint32_t agno) {
        return img + (uint64_t) agno * g->agblocks * g->bs + g->ss;
}

/* The bnobt root block of AG agno. */
static uint8_t *bno_root(uint8_t *img, const Geo *g, uint32_t agno) {
        return img + ((uint64_t) agno * g->agblocks + get_be32(agf_at(img, g, agno) + 16)) * g->bs;
}

/* Where the log of an image in memory starts (bytes) and its size in
 * basic blocks, and the last record header of the newest cycle. */
typedef struct LogRec {
        uint64_t at, logbb, rec, hblks;
        uint8_t *h; /* the record header */
} LogRec;

static bool last_record(uint8_t *img, const Geo *g, LogRec *ret) {
        uint64_t logstart = get_be64(img + 48);
        LogRec l = { .at = ((logstart >> g->agblklog) * g->agblocks + (logstart & ((1ull << g->agblklog) - 1))) * g->bs,
                     .logbb = (uint64_t) get_be32(img + 96) * g->bs / 512,
                     .rec = UINT64_MAX };
        /* A block's cycle is a header's h_cycle or a data block's first
         * word; the head is where it drops (or block 0). */
#define CYCLE(bb) (get_be32(img + l.at + (bb) * 512) == 0xFEEDBABE ? get_be32(img + l.at + (bb) * 512 + 4) \
                                                                     : get_be32(img + l.at + (bb) * 512))
        uint64_t head = 0;
        for (uint64_t bb = 1; bb < l.logbb && !head; bb++)
                if (CYCLE(bb) < CYCLE(0))
                        head = bb;
#undef CYCLE
        for (uint64_t i = 1; i <= l.logbb && l.rec == UINT64_MAX; i++) {
                uint64_t bb = (head + l.logbb - i) % l.logbb;
                if (get_be32(img + l.at + bb * 512) == 0xFEEDBABE)
                        l.rec = bb;
        }
        if (l.rec == UINT64_MAX)
                return false;
        l.h = img + l.at + l.rec * 512;
        uint32_t hsize = get_be32(l.h + 320);
        l.hblks = (get_be32(l.h + 8) & 2) && hsize > 32768 ? (hsize + 32767) / 32768 : 1;
        *ret = l;
        return true;
}

/* The record's CRC32C from the format's description, for a header summed
 * over hdr bytes: header (h_crc zero), one 260-byte cycle block per 32 KiB
 * of data past the first, the data. Records that wrap are not used here. */
static void fix_record_crc(const LogRec *l, size_t hdr) {
        uint32_t hlen = get_be32(l->h + 12);
        put_le32(l->h + 32, 0);
        uint32_t c = crc32c(0, l->h, hdr);
        for (uint32_t i = 1; i < (hlen + 32767) / 32768; i++)
                c = crc32c(c, l->h + 512 * i, 260);
        put_le32(l->h + 32, crc32c(c, l->h + 512 * l->hblks, hlen));
}

/* The last log record of a kernel-written v5 image: its sum, UUID, LSN
 * and length must all hold, or the log is dirty. */
static void test_record(const uint8_t *orig, uint8_t *img, size_t n, const Geo *g) {
        ProbeResult res = { .used = EXTENTS_INIT };
        _cleanup_extents_ Extents want = EXTENTS_INIT;
        LogRec l;

        CHECK(probe_mem(orig, n, n, &res) == 0 && extents_copy(&want, &res.used) == 0, "the untouched image fails: %s", res.how);
        memcpy(img, orig, n);
        if (!last_record(img, g, &l))
                return;
        CHECK(get_le32(l.h + 32) != 0 && l.rec != 0, "the kernel's unmount record has no CRC32C or lies at block 0");
        uint32_t hlen = get_be32(l.h + 12);

        l.h[33] ^= 0x10;
        check_fail_or_whole("record CRC byte flipped", img, n, n, "CRC32C does not match");
        memcpy(img, orig, n);
        l.h[l.hblks * 512 + hlen - 1] ^= 1;
        check_fail_or_whole("record data torn", img, n, n, "CRC32C does not match");
        /* The sum recomputed after each change: the field itself is what
         * is caught. */
        memcpy(img, orig, n);
        l.h[304] ^= 1;
        fix_record_crc(&l, 328);
        check_fail_or_whole("record UUID changed", img, n, n, "UUID is not the superblock's");
        memcpy(img, orig, n);
        put_be32(l.h + 20, (uint32_t) l.rec + 1);
        fix_record_crc(&l, 328);
        check_fail_or_whole("record LSN elsewhere", img, n, n, "LSN is not where it lies");
        memcpy(img, orig, n);
        put_be32(l.h + 12, 0);
        fix_record_crc(&l, 328);
        check_fail_or_whole("record h_len 0", img, n, n, "header is not valid");
        memcpy(img, orig, n);
        put_be32(l.h + 12, 40000);
        put_be32(l.h + 320, 32768);
        check_fail_or_whole("record longer than its header", img, n, n, "header is not valid");
        memcpy(img, orig, n);
        put_le32(l.h + 32, 0);
        check_fail_or_whole("v5 record with no CRC32C", img, n, n, "no CRC32C");

        /* What must still pass, mapping the same: the sum as a 32-bit x86
         * kernel computes it, and a filesystem whose UUID was changed
         * (meta_uuid keeps the old one for the metadata; the log carries
         * the new one). */
        const struct {
                const char *what;
                bool new_uuid;
                size_t hdr;
        } ok[] = { { "record summed by i386", false, 324 }, { "new sb_uuid, meta_uuid", true, 328 } };
        for (size_t i = 0; i < ELEMENTSOF(ok); i++) {
                memcpy(img, orig, n);
                if (ok[i].new_uuid) {
                        memcpy(img + 248, img + 32, 16);
                        img[32] ^= 0x55;
                        put_be32(img + 216, get_be32(img + 216) | 0x4);
                        fix_crc(img, g->ss, 224);
                        check_fail_or_whole("log of the old UUID", img, n, n, "UUID is not the superblock's");
                        memcpy(l.h + 304, img + 32, 16);
                }
                fix_record_crc(&l, ok[i].hdr);
                int k = probe_mem(img, n, n, &res);
                CHECK(k == 0 && extents_equal(&res.used, &want), "%s: not mapped as the untouched image: %s", ok[i].what, res.how);
                CHECK_STR_CONTAINS(res.how, "log cleanly unmounted");
                printf("%-22s %s: %s\n", "record", ok[i].what, res.how);
        }
        probe_result_done(&res);
}

/* The unmount record mkfs writes has no sum (zero): taken as none, at
 * log block 0, on v5 and v4; a non-zero one must match. */
static void test_mkfs_record(const char *name, const char *args) {
        PATH_COPY(path, "mkfs-record.img");
        if (sh("rm -f '%s' && truncate -s 32M '%s' && " MKFS " %s '%s' >/dev/null 2>&1", path, path, args, path) != 0) {
                CHECK(false, "%s: mkfs.xfs %s fails", name, args);
                return;
        }
        size_t n;
        _cleanup_free_ uint8_t *img = load(path, &n);
        CHECK(img != NULL, "cannot load %s", path);
        Geo g = img ? geometry(img) : (Geo) { 0 };
        LogRec l;
        if (img && last_record(img, &g, &l)) {
                CHECK(l.rec == 0 && get_le32(l.h + 32) == 0, "%s: mkfs's record is not at block 0 with no sum", name);
                ProbeResult res = { .used = EXTENTS_INIT };
                CHECK(probe_mem(img, n, n, &res) == 0 && strstr(res.how, "log cleanly unmounted"), "%s: %s", name, res.how);
                probe_result_done(&res);
                l.h[32] = 1;
                char what[96];
                snprintf(what, sizeof(what), "%s: CRC byte set", name);
                check_fail_or_whole(what, img, n, n, "CRC32C does not match");
        } else
                CHECK(false, "%s: no log record", name);
        unlink(path);
}

/* xfs_admin -U rewrites the log with the new UUID (meta_uuid keeps the
 * old one on v5); then the kernel writes its own records with it, which
 * must be clean and exact. */
static void test_new_uuid(void) {
        PATH_COPY(img, "new-uuid.img");
        if (!have_loop) {
                printf("new-uuid: no loop device, skipped\\n");
                return;
        }
        if (sh("rm -f '%s' && truncate -s 48M '%s' && " MKFS " '%s' >/dev/null", img, img, img) != 0 ||
            with_mount(img, fill_script(false)) != 0 || sh("xfs_admin -U generate '%s' >/dev/null", img) != 0) {
                CHECK(false, "cannot fill new-uuid.img and give it a new UUID");
                return;
        }
        CHECK(sh("xfs_db -r -c 'sb 0' -c 'p uuid meta_uuid' '%s' | cut -d' ' -f3 | uniq | wc -l | grep -qx 2", img) == 0,
              "xfs_admin -U did not leave meta_uuid apart from uuid");
        /* xfs_admin -U clears the log its own way (cycle C at block 0,
         * zeros, then C-1): the head search here takes that for an odd
         * log, and may map it whole; if it calls it clean, it must be
         * exact. */
        ProbeResult res = { .used = EXTENTS_INIT };
        int k = probe_file(img, &res);
        if (k == 0 && strstr(res.how, "log cleanly unmounted"))
                check_image("xfs-v5-xfs_admin-U", img);
        else {
                CHECK(k == 0 && extents_total(&res.used) == file_size(img), "xfs_admin -U: neither clean nor whole: %s", res.how);
                printf("%-22s %s\n", "xfs-v5-xfs_admin-U", res.how);
        }
        probe_result_done(&res);
        CHECK(with_mount(img, "true") == 0, "cannot mount new-uuid.img");
        check_image("xfs-v5-new-uuid-mount", img);
        unlink(img);
}

/* Damage to a v5 image with a two-level bnobt in AG 0. */
static void test_corrupt(void) {
        PATH_COPY(path, "corrupt.img");
        if (!have_loop) {
                printf("corrupt: no loop device to fill the filesystem, skipped\n");
                return;
        }
        if (sh("rm -f '%s' && truncate -s 48M '%s' && " MKFS " -b size=1024 -d agcount=2 '%s' >/dev/null", path, path, path) != 0 ||
            with_mount(path, fill_script(true)) != 0) {
                CHECK(false, "cannot make corrupt.img");
                return;
        }
        size_t n;
        _cleanup_free_ uint8_t *orig = load(path, &n);
        _cleanup_free_ uint8_t *img = malloc(n);
        CHECK(orig && img, "cannot load corrupt.img");
        if (!orig || !img)
                return;
        Geo g = geometry(orig);
        ProbeResult res = { .used = EXTENTS_INIT };
        CHECK(probe_mem(orig, n, n, &res) == 0, "the untouched image fails: %s", res.how);
        probe_result_done(&res);
        CHECK(get_be32(agf_at(orig, &g, 0) + 28) == 2, "AG 0's bnobt has %" PRIu32 " levels, not 2: the loop test needs 2",
              get_be32(agf_at(orig, &g, 0) + 28));

        /* The superblock. */
        memcpy(img, orig, n);
        img[0] = 'Y';
        check_fail_or_whole("superblock magic", img, n, n, "no XFSB magic");
        memcpy(img, orig, n);
        img[300] ^= 1;
        check_fail_or_whole("superblock CRC", img, n, n, "superblock's CRC32C");
        static const struct {
                const char *what;
                size_t off, len;
                uint64_t v;
                const char *reason;
        } sb[] = {
                { "block size 3000", 4, 4, 3000, "block size" },
                { "sector size 8 KiB", 102, 2, 8192, "sector size" },
                { "version 3", 100, 2, 0xb4a3, "version 3" },
                { "0 AGs", 88, 4, 0, "not a valid geometry" },
                { "agblocks past agblklog", 84, 4, 1u << 20, "not a valid geometry" },
                { "dblocks too large", 8, 8, 1u << 30, "do not make" },
                { "dblocks too small", 8, 8, 1000, "do not make" },
                { "realtime blocks", 16, 8, 1000, "realtime" },
                { "external log", 48, 8, 0, "external log" },
                { "log past the AG", 96, 4, 1u << 24, "not inside an AG" },
                { "unknown incompat", 216, 4, 0x80000003, "unknown incompat" },
                { "needsrepair", 216, 4, 0x13, "needing xfs_repair" },
                { "log_incompat", 220, 4, 1, "log_incompat" },
                { "unknown ro_compat", 212, 4, 0x1000000f, "ro_compat" },
                { "mkfs in progress", 126, 1, 1, "did not finish" },
                { "fdblocks off by one", 144, 8, 0, "free blocks" },
        };
        for (size_t i = 0; i < ELEMENTSOF(sb); i++) {
                memcpy(img, orig, n);
                if (sb[i].off == 144)
                        put_be64(img + 144, get_be64(orig + 144) + 1);
                else
                        for (size_t j = 0; j < sb[i].len; j++)
                                img[sb[i].off + j] = (uint8_t) (sb[i].v >> (8 * (sb[i].len - 1 - j)));
                fix_crc(img, g.ss, 224);
                check_fail_or_whole(sb[i].what, img, n, n, sb[i].reason);
        }

        /* The AGF of AG 1. */
        memcpy(img, orig, n);
        agf_at(img, &g, 1)[0] = 'Y';
        check_fail_or_whole("AGF magic", img, n, n, "XAGF");
        memcpy(img, orig, n);
        agf_at(img, &g, 1)[100] ^= 1;
        check_fail_or_whole("AGF CRC", img, n, n, "AGF's CRC32C");
        static const struct {
                const char *what;
                size_t off;
                uint32_t v;
                const char *reason;
        } agf[] = {
                { "AGF seqno", 8, 0, "the AGF says AG 0" },
                { "AGF length", 12, 1000, "of 1000 blocks" },
                { "bnobt levels 0", 28, 0, "0 levels" },
                { "bnobt levels 10", 28, 10, "10 levels" },
                { "bnobt root past AG", 16, 1u << 30, "outside the AG" },
                { "bnobt root at 0", 16, 0, "outside the AG" },
                { "bnobt root on the cntbt", 16, 0xFFFFFFFF, NULL },
                { "freeblks off by one", 52, 0xFFFFFFFF, "free blocks, the AGF" },
                { "cntbt levels 0", 32, 0, "cntbt has 0 levels" },
                { "cntbt root past AG", 20, 1u << 30, "a cntbt block" },
                { "cntbt root on the bnobt", 20, 0xFFFFFFFF, "no AB3C magic" },
        };
        for (size_t i = 0; i < ELEMENTSOF(agf); i++) {
                memcpy(img, orig, n);
                uint8_t *a = agf_at(img, &g, 1);
                uint32_t v = agf[i].v;
                if (agf[i].off == 16 && v == 0xFFFFFFFF)
                        v = get_be32(a + 20);
                else if (agf[i].off == 20 && v == 0xFFFFFFFF)
                        v = get_be32(a + 16);
                else if (agf[i].off == 52)
                        v = get_be32(a + 52) + 1;
                put_be32(a + agf[i].off, v);
                fix_crc(a, g.ss, 216);
                check_fail_or_whole(agf[i].what, img, n, n, agf[i].reason);
        }

        /* The bnobt: the root of AG 0 (a node) and one of its leaves. */
        memcpy(img, orig, n);
        bno_root(img, &g, 0)[200] ^= 1;
        check_fail_or_whole("bnobt node CRC", img, n, n, "CRC32C of bnobt block");
        uint8_t *root = bno_root(img, &g, 0);
        uint32_t root_bno = get_be32(agf_at(orig, &g, 0) + 16);
        size_t maxrecs = (g.bs - 56) / 12;
        /* The node's first pointer to itself: a loop. */
        memcpy(img, orig, n);
        put_be32(root + 56 + maxrecs * 8, root_bno);
        fix_crc(root, g.bs, 52);
        check_fail_or_whole("bnobt loop (self)", img, n, n, "loop");
        /* Two pointers to the same leaf: the records repeat. */
        memcpy(img, orig, n);
        put_be32(root + 56 + maxrecs * 8 + 4, get_be32(root + 56 + maxrecs * 8));
        put_be32(root + 56 + 8, get_be32(root + 56));
        fix_crc(root, g.bs, 52);
        check_fail_or_whole("bnobt leaf twice", img, n, n, "out of order");
        memcpy(img, orig, n);
        uint32_t leaf_bno = get_be32(root + 56 + maxrecs * 8);
        uint8_t *leaf = img + (uint64_t) leaf_bno * g.bs;
        leaf[g.bs - 1] ^= 1;
        check_fail_or_whole("bnobt leaf CRC", img, n, n, "CRC32C of bnobt block");
        memcpy(img, orig, n);
        put_be32(leaf + 56 + 4, g.agblocks);
        fix_crc(leaf, g.bs, 52);
        check_fail_or_whole("record past the AG", img, n, n, "past the AG");
        memcpy(img, orig, n);
        leaf[4] = 0;
        leaf[5] = 1;
        fix_crc(leaf, g.bs, 52);
        check_fail_or_whole("leaf at level 1", img, n, n, "level 1");
        memcpy(img, orig, n);
        put_be32(leaf + 48, 1);
        fix_crc(leaf, g.bs, 52);
        check_fail_or_whole("leaf owned by AG 1", img, n, n, "belongs elsewhere");
        memcpy(img, orig, n);
        put_be32(leaf + 4, 0xFFFF);
        fix_crc(leaf, g.bs, 52);
        check_fail_or_whole("leaf with 65535 records", img, n, n, "records of at most");
        /* A record that frees the AG headers (and the sum to match). */
        memcpy(img, orig, n);
        {
                uint8_t *r0 = leaf + 56;
                uint32_t s = get_be32(r0), c = get_be32(r0 + 4);
                if (s > 1) {
                        put_be32(r0, 1);
                        put_be32(r0 + 4, c + s - 1);
                        fix_crc(leaf, g.bs, 52);
                        /* The node's key no longer matches either. */
                        put_be32(root + 56, 1);
                        fix_crc(root, g.bs, 52);
                        check_fail_or_whole("free extent over the AG headers", img, n, n, NULL);
                }
        }

        /* A record moved one block on, its count and the sum unchanged (a
         * flipped bit in a tree nothing else cross-checks): the block it
         * leaves is in use but would now be free. The cntbt still lists
         * the free extents as they are: the trees disagree. */
        memcpy(img, orig, n);
        {
                uint16_t nrec = get_be16(leaf + 6);
                bool moved = false;
                for (uint16_t i = 1; i + 1 < nrec && !moved; i++) {
                        uint8_t *r = leaf + 56 + 8 * (size_t) i;
                        uint32_t s = get_be32(r), c = get_be32(r + 4);
                        if (s + c < get_be32(r + 8)) {
                                put_be32(r, s + 1);
                                moved = true;
                        }
                }
                CHECK(moved, "no bnobt record with room to move");
                fix_crc(leaf, g.bs, 52);
                if (moved)
                        check_fail_or_whole("bnobt record moved one block", img, n, n, "disagree");
        }

        /* Truncated images and short partitions. */
        check_fail_or_whole("truncated to half", orig, n / 2, n, NULL);
        check_fail_or_whole("truncated to 100 bytes", orig, 100, n, "superblock");
        check_fail_or_whole("one sector short", orig, n - 512, n, "last sector");
        check_fail_or_whole("partition 1 block short", orig, n, n - g.bs, "does not fit");

        /* A dirty log by hand: the unmount record's flags cleared. */
        memcpy(img, orig, n);
        LogRec l;
        bool found = last_record(img, &g, &l);
        CHECK(found, "no log record in corrupt.img");
        if (found) {
                uint8_t *op = l.h + l.hblks * 512;
                op[9] = 0x02;
                check_fail_or_whole("unmount flag cleared", img, n, n, "not an unmount record");
                memcpy(img, orig, n);
                put_be32(l.h + 40, 2);
                check_fail_or_whole("two ops in the last record", img, n, n, "not an unmount record at the head");
                memcpy(img, orig, n);
                put_be32(img + l.at + (l.logbb - 1) * 512, 7);
                check_fail_or_whole("cycles not two runs", img, n, n, "not two runs");
                test_record(orig, img, n, &g);
        }
        unlink(path);
}

/* Dirty logs made by the kernel: the image copied while still mounted
 * after a sync, and a filesystem shut down before it was unmounted. */
static void test_dirty(void) {
        PATH_COPY(img, "dirty.img");
        PATH_COPY(copy, "dirty-copy.img");
        if (!have_loop) {
                printf("dirty: no loop device, skipped\n");
                return;
        }
        if (sh("rm -f '%s' && truncate -s 48M '%s' && " MKFS " '%s' >/dev/null", img, img, img) != 0)
                return;
        char snippet[2 * PATH_MAX + 512];
        snprintf(snippet, sizeof(snippet),
                 "head -c 3000000 /dev/urandom >\"$M/a\"; sync; cp --sparse=always '%s' '%s'; "
                 "head -c 100000 /dev/urandom >\"$M/b\"; sync; xfs_io -x -c shutdown \"$M\"",
                 img, copy);
        CHECK(with_mount(img, snippet) == 0, "cannot write and shut down dirty.img");
        const char *what[] = { "copied while mounted", "shut down" };
        const char *files[] = { copy, img };
        for (int i = 0; i < 2; i++) {
                ProbeResult res = { .used = EXTENTS_INIT };
                int k = probe_file(files[i], &res);
                bool dirty = sh_quiet("xfs_logprint -t '%s' 2>/dev/null | grep -q DIRTY", files[i]) == 0;
                CHECK(dirty, "%s: xfs_logprint does not call the log dirty", what[i]);
                CHECK(k == 0 && extents_total(&res.used) == file_size(files[i]), "%s: not mapped whole: %s", what[i], res.how);
                CHECK_STR_CONTAINS(res.how, "not cleanly unmounted");
                printf("%-22s %s: %s\n", "dirty", what[i], res.how);
                probe_result_done(&res);
        }
        unlink(copy);
        unlink(img);
}

/* Random damage to the superblock, AGFs, bnobt blocks and the log must
 * never crash, read or map outside the region. */
static void mutate_image(unsigned rounds) {
        PATH_COPY(path, "mutate.img");
        if (sh("rm -f '%s' && truncate -s 32M '%s' && " MKFS " -m crc=0 -b size=1024 -d agcount=2 '%s' >/dev/null 2>&1", path,
               path, path) != 0)
                return;
        size_t n;
        _cleanup_free_ uint8_t *orig = load(path, &n);
        _cleanup_free_ uint8_t *img = malloc(n);
        if (!orig || !img)
                return;
        Geo g = geometry(orig);
        uint64_t ag1 = (uint64_t) g.agblocks * g.bs;
        uint64_t hot[][2] = { { 0, 8 * g.bs }, { ag1, ag1 + 8 * g.bs } };
        ProbeResult res = { .used = EXTENTS_INIT };
        unsigned ok = 0;
        memcpy(img, orig, n);
        for (unsigned round = 0; round < rounds; round++) {
                unsigned changes = 1 + (unsigned) (rng() % 4);
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
        printf("%-22s %u of %u mutations still parsed\n", "mutations", ok, rounds);
        probe_result_done(&res);
        unlink(path);
}

int main(void) {
        const char *base = getenv("TEST_TMPDIR");
        if (system("command -v mkfs.xfs >/dev/null && command -v xfs_db >/dev/null && command -v xfs_repair >/dev/null") != 0) {
                printf("test-probe-xfs: xfsprogs missing, skipped\n");
                return 77;
        }
        if (!base || !*base)
                base = "/tmp";
        if (sh("mkdir -p '%s'", base) != 0)
                return 1;
        snprintf(tmpdir, sizeof(tmpdir), "%s/test-probe-xfs-XXXXXX", base);
        if (!mkdtemp(tmpdir)) {
                perror("mkdtemp");
                return 1;
        }
        /* Loop devices and an XFS v5 kernel driver, to fill filesystems. */
        PATH_COPY(probe_img, "loop-probe.img");
        have_loop = sh_quiet("truncate -s 32M '%s' && " MKFS " '%s' >/dev/null 2>&1", probe_img, probe_img) == 0 &&
                    with_mount(probe_img, "true") == 0;
        unlink(probe_img);
        if (!have_loop)
                printf("test-probe-xfs: no loop device or XFS mount here: filesystems are only made by mkfs\n");

        test_mkfs("xfs-v5-empty", "64M", "", 0);
        test_mkfs("xfs-v5-4k", "96M", "", 1);
        test_mkfs("xfs-v5-1k", "64M", "-b size=1024", 1);
        test_mkfs("xfs-v5-7ags", "160M", "-d agcount=7", 1);
        test_mkfs("xfs-v5-1k-checker", "48M", "-b size=1024 -d agcount=2", 2);
        test_mkfs("xfs-v5-no-rmap-reflink", "64M", "-m reflink=0,rmapbt=0 -d agcount=3", 1);
        test_mkfs("xfs-v5-4k-sectors", "96M", "-s size=4096", 1);
        test_mkfs("xfs-v5-64k-blocks", "256M", "-b size=65536", 0);
        test_mkfs("xfs-v4-empty", "64M", "-m crc=0", 0);
        test_v4_proto("xfs-v4-proto", "-m crc=0");
        test_v4_proto("xfs-v4-1k-proto", "-m crc=0 -b size=1024 -d agcount=3");
        test_mkfs_record("xfs-v5-mkfs-record", "");
        test_mkfs_record("xfs-v4-mkfs-record", "-m crc=0");
        test_new_uuid();
        test_corrupt();
        test_dirty();
        mutate_image(300);

        sh("rm -rf '%s'", tmpdir);
        return check_exit("test-probe-xfs");
}
