/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The read-only filesystem probe against real images made here by
 * mksquashfs, mkfs.erofs, xorriso and mkfs.cramfs, each put in a partition
 * twice its size one MiB into an image: the probe must map exactly the
 * filesystem's size, rounded up to 4 KiB, with the size its own tools
 * report (unsquashfs -s, dump.erofs -s, xorriso -toc, the file mkfs.cramfs
 * wrote) as the filesystem's end. Broken copies (a flipped magic, a size
 * past the partition, a truncated image, a bad checksum, features it does
 * not know) must fail or be mapped whole, and random damage must never
 * crash it or map outside the partition. */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "checksum.h"
#include "probe.h"
#include "test-helpers.h"

#define MiB ((uint64_t) 1 << 20)
#define PREFIX MiB      /* where the partition starts in the test image */

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
static void put_be16(uint8_t *p, uint16_t v) {
        p[0] = (uint8_t) (v >> 8);
        p[1] = (uint8_t) v;
}
static void put_be32(uint8_t *p, uint32_t v) {
        put_be16(p, (uint16_t) (v >> 16));
        put_be16(p + 2, (uint16_t) v);
}

static uint64_t file_size_of(const char *path) {
        struct stat st;
        return stat(path, &st) == 0 ? (uint64_t) st.st_size : 0;
}

typedef struct Img {
        uint8_t *buf;           /* PREFIX bytes, then the partition */
        uint64_t fs_bytes;      /* the file the tool wrote */
        uint64_t part_size;
} Img;

/* The tool's output, in a partition of twice its size PREFIX into a
 * buffer; the rest of the partition is zeros. */
static bool load(const char *path, Img *ret) {
        struct stat st;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) < 0 || st.st_size == 0) {
                CHECK(false, "cannot read %s", path);
                if (fd >= 0)
                        close(fd);
                return false;
        }
        Img m = { .fs_bytes = (uint64_t) st.st_size, .part_size = 2 * (uint64_t) st.st_size };
        m.buf = calloc(1, PREFIX + m.part_size);
        CHECK(m.buf, "out of memory");
        if (!m.buf || pread(fd, m.buf + PREFIX, m.fs_bytes, 0) != (ssize_t) m.fs_bytes) {
                free(m.buf);
                close(fd);
                return false;
        }
        close(fd);
        *ret = m;
        return true;
}

/* Probes the partition of m, of which only image_size bytes of the whole
 * buffer exist (less than all of it: a truncated image). */
static int probe(const Img *m, const char *type, uint64_t image_size, ProbeResult *res) {
        Reader r = reader_from_mem(m->buf, image_size, PREFIX, m->part_size);
        extents_clear(&res->used);
        res->how[0] = 0;
        res->fs_size = 0;
        int k = fsprobe_rofs.collect(&r, type, res);
        CHECK(res->how[0], "%s: no report line", type);
        return k;
}

static int probe_all(const Img *m, const char *type, ProbeResult *res) {
        return probe(m, type, PREFIX + m->part_size, res);
}

static uint64_t round4k(uint64_t v) {
        return (v + 4095) / 4096 * 4096;
}

/* The first number after `key` in the output of a shell command, or 0. */
static uint64_t tool_number(const char *cmd, const char *key) {
        char line[1024];
        uint64_t v = 0;
        FILE *p = popen(cmd, "re");
        if (!p)
                return 0;
        while (fgets(line, sizeof(line), p)) {
                const char *at = strstr(line, key);
                if (!at || v)
                        continue;
                at += strlen(key);
                at += strcspn(at, "0123456789");
                v = strtoull(at, NULL, 10);
        }
        pclose(p);
        return v;
}

/* The probe on an intact image: [0, size rounded up to 4 KiB) and nothing
 * else, the exact size as the end. want is what the filesystem's own tool
 * says its size is. */
static void check_exact(const char *what, const Img *m, const char *type, uint64_t want) {
        _cleanup_(probe_result_done) ProbeResult res = {};
        int k = probe_all(m, type, &res);
        CHECK(k == 0, "%s: the probe failed: %s", what, res.how);
        if (k != 0)
                return;
        CHECK_U64(res.fs_size, want);
        CHECK(res.used.n == 1 && res.used.v[0].start == 0 && res.used.v[0].end == round4k(want),
              "%s: mapped %zu extents, the first %" PRIu64 "-%" PRIu64 ", not 0-%" PRIu64, what, res.used.n,
              res.used.n ? res.used.v[0].start : 0, res.used.n ? res.used.v[0].end : 0, round4k(want));
        printf("  %-28s filesystem %9" PRIu64 " bytes (its tool), mapped %9" PRIu64 " of a %9" PRIu64
               " byte partition: %s\n",
               what, want, extents_total(&res.used), m->part_size, res.how);

        /* The image ends one byte before the filesystem does. */
        k = probe(m, type, PREFIX + want - 1, &res);
        CHECK(k < 0, "%s truncated: the probe did not fail (%s)", what, res.how);
        CHECK_STR_CONTAINS(res.how, "the image ends first");
}

/* A broken copy must fail (scan maps it whole) or be mapped whole. */
static void check_whole(const char *what, const Img *m, const char *type, const char *want_how) {
        _cleanup_(probe_result_done) ProbeResult res = {};
        int k = probe_all(m, type, &res);
        bool whole = k == 0 && res.used.n == 1 && res.used.v[0].start == 0 && res.used.v[0].end == m->part_size;
        CHECK(k < 0 || whole, "%s: neither failed nor mapped whole: %s", what, res.how);
        CHECK_STR_CONTAINS(res.how, want_how);
        printf("  %-28s %s: %s\n", what, k < 0 ? "failed" : "mapped whole", res.how);
}

/* Random damage in the superblock area: never a crash, never a byte
 * outside the partition. */
static void mutate(const char *what, const Img *m, const char *type, uint64_t area, unsigned rounds) {
        _cleanup_free_ uint8_t *copy = malloc(PREFIX + m->part_size);
        unsigned ok = 0, bad = 0;
        if (!copy)
                return;
        for (unsigned i = 0; i < rounds; i++) {
                Img x = *m;
                x.buf = copy;
                memcpy(copy, m->buf, PREFIX + m->part_size);
                for (unsigned f = 0, n = 1 + rng() % 4; f < n; f++)
                        copy[PREFIX + rng() % area] ^= (uint8_t) (1 + rng() % 255);
                _cleanup_(probe_result_done) ProbeResult res = {};
                int k = probe_all(&x, type, &res);
                if (k < 0) {
                        bad++;
                        continue;
                }
                ok++;
                EXTENTS_FOREACH(e, &res.used)
                        CHECK(e->end <= x.part_size, "%s mutated: mapped past the partition", what);
                CHECK(res.fs_size <= x.part_size, "%s mutated: a filesystem larger than its partition", what);
        }
        printf("  %-28s %u mutations: %u read, %u refused\n", what, rounds, ok, bad);
}

/* ---------------------------------------------------------------- squashfs */

static void test_squashfs(const char *name, const char *opts) {
        PATH_COPY(img, name);
        if (sh("mksquashfs '%s' '%s' %s -noappend -quiet -no-progress >/dev/null", tpath("files"), img, opts) != 0) {
                CHECK(false, "mksquashfs %s failed", opts);
                return;
        }
        char cmd[PATH_MAX + 64];
        snprintf(cmd, sizeof(cmd), "unsquashfs -s '%s'", img);
        uint64_t want = tool_number(cmd, "Filesystem size");
        CHECK(want > 0 && want <= file_size_of(img), "%s: unsquashfs -s says %" PRIu64, name, want);
        Img m;
        if (!load(img, &m))
                return;
        check_exact(name, &m, "squashfs", want);
        uint8_t *sb = m.buf + PREFIX;
        uint8_t save[96];
        memcpy(save, sb, sizeof(save));

        sb[0] ^= 0x20;
        check_whole("squashfs flipped magic", &m, "squashfs", "no squashfs magic");
        memcpy(sb, "sqsh", 4);
        check_whole("squashfs big-endian", &m, "squashfs", "big-endian");
        memcpy(sb, save, sizeof(save));
        sb[28] = 3;
        check_whole("squashfs 3.0", &m, "squashfs", "only 4.0");
        memcpy(sb, save, sizeof(save));
        put_le64(sb + 40, m.part_size + 1);
        check_whole("squashfs bytes_used > part", &m, "squashfs", "reaches past the partition");
        put_le64(sb + 40, 0);
        check_whole("squashfs bytes_used 0", &m, "squashfs", "inside bytes_used");
        /* Smaller than its own tables: damaged, not a smaller filesystem. */
        put_le64(sb + 40, get_le64(save + 72));
        check_whole("squashfs bytes_used < tables", &m, "squashfs", "inside bytes_used");
        memcpy(sb, save, sizeof(save));
        put_le32(sb + 12, 3000);
        check_whole("squashfs block size", &m, "squashfs", "block size");
        memcpy(sb, save, sizeof(save));
        put_le16(sb + 20, 9);
        check_whole("squashfs compressor", &m, "squashfs", "unknown compressor");
        memcpy(sb, save, sizeof(save));
        mutate(name, &m, "squashfs", 96, 3000);
        free(m.buf);
}

/* ---------------------------------------------------------------- EROFS */

/* Rewrites the superblock checksum as mkfs.erofs computes it. */
static void erofs_fix_crc(uint8_t *part) {
        uint8_t *sb = part + 1024;
        size_t len = 4096 - 1024;
        put_le32(sb + 4, 0);
        put_le32(sb + 4, ~crc32c(0, sb, len));
}

static void test_erofs(const char *name, const char *opts) {
        PATH_COPY(img, name);
        if (sh("mkfs.erofs --quiet %s '%s' '%s' >/dev/null", opts, img, tpath("files")) != 0) {
                CHECK(false, "mkfs.erofs %s failed", opts);
                return;
        }
        char cmd[PATH_MAX + 64];
        snprintf(cmd, sizeof(cmd), "dump.erofs -s '%s'", img);
        uint64_t want = tool_number(cmd, "Filesystem blocks:") * 4096;
        CHECK(want > 0 && want == file_size_of(img), "%s: dump.erofs -s says %" PRIu64 " bytes", name, want);
        Img m;
        if (!load(img, &m))
                return;
        uint8_t *part = m.buf + PREFIX, *sb = part + 1024;
        CHECK(sb[12] == 12 && (get_le32(sb + 8) & 1), "%s: expected 4 KiB blocks and a checksum", name);
        check_exact(name, &m, "erofs", want);
        uint8_t save[3072];
        memcpy(save, sb, sizeof(save));

        sb[1] ^= 0x01;
        check_whole("erofs flipped magic", &m, "erofs", "no EROFS magic");
        memcpy(sb, save, sizeof(save));
        put_le32(sb + 36, get_le32(sb + 36) - 1);
        check_whole("erofs blocks, stale checksum", &m, "erofs", "checksum mismatch");
        put_le32(sb + 36, (uint32_t) (m.part_size / 4096 + 1));
        erofs_fix_crc(part);
        check_whole("erofs blocks > part", &m, "erofs", "reaches past the partition");
        put_le32(sb + 36, 0);
        erofs_fix_crc(part);
        check_whole("erofs blocks 0", &m, "erofs", "recorded size is 0");
        memcpy(sb, save, sizeof(save));
        put_le16(sb + 86, 1);
        erofs_fix_crc(part);
        check_whole("erofs extra device", &m, "erofs", "extra devices");
        memcpy(sb, save, sizeof(save));
        put_le32(sb + 80, get_le32(sb + 80) | 0x400);
        erofs_fix_crc(part);
        check_whole("erofs unknown incompat", &m, "erofs", "unknown incompatible");
        memcpy(sb, save, sizeof(save));
        sb[12] = 20;
        erofs_fix_crc(part);
        check_whole("erofs block size 1 MiB", &m, "erofs", "block size");
        /* 48BIT: blocks_hi joins blocks; a non-zero one is past any test partition. */
        memcpy(sb, save, sizeof(save));
        put_le32(sb + 80, get_le32(sb + 80) | 0x80);
        put_le16(sb + 14, 0);
        erofs_fix_crc(part);
        check_exact("erofs 48BIT, blocks_hi 0", &m, "erofs", want);
        put_le16(sb + 14, 1);
        erofs_fix_crc(part);
        check_whole("erofs 48BIT, blocks_hi 1", &m, "erofs", "reaches past the partition");
        /* Without a checksum, a wrong size is taken as it is: only the
         * partition's bounds can refuse it. */
        memcpy(sb, save, sizeof(save));
        put_le32(sb + 8, get_le32(sb + 8) & ~UINT32_C(1));
        check_exact("erofs without checksum", &m, "erofs", want);
        memcpy(sb, save, sizeof(save));
        mutate(name, &m, "erofs", 1024 + 128, 3000);
        free(m.buf);
}

/* ---------------------------------------------------------------- ISO 9660 */

static void test_iso9660(void) {
        PATH_COPY(img, "iso.img");
        if (sh("xorriso -as mkisofs -quiet -J -R -o '%s' '%s' >/dev/null 2>&1", img, tpath("files")) != 0) {
                CHECK(false, "xorriso failed");
                return;
        }
        char cmd[PATH_MAX + 64];
        snprintf(cmd, sizeof(cmd), "xorriso -indev '%s' -toc 2>/dev/null", img);
        /* "ISO session  :   1 ,         0 ,       282s , ISOIMAGE": blocks after the start. */
        uint64_t want = 0;
        FILE *p = popen(cmd, "re");
        char line[512];
        while (p && fgets(line, sizeof(line), p)) {
                unsigned idx;
                unsigned long long start, blocks;
                if (sscanf(line, "ISO session : %u , %llu , %llus", &idx, &start, &blocks) == 3)
                        want = (uint64_t) blocks * 2048;
        }
        if (p)
                pclose(p);
        CHECK(want > 0 && want == file_size_of(img), "xorriso -toc says %" PRIu64 " bytes", want);
        Img m;
        if (!load(img, &m))
                return;
        check_exact("iso9660 (Joliet, Rock Ridge)", &m, "iso9660", want);

        uint8_t *pvd = m.buf + PREFIX + 32768, save[2048 * 4];
        CHECK(pvd[0] == 1 && pvd[2048] == 2, "expected a PVD and a Joliet SVD");
        memcpy(save, pvd, sizeof(save));
        pvd[3] ^= 0x04;
        check_whole("iso9660 flipped magic", &m, "iso9660", "no primary volume descriptor");
        memcpy(pvd, save, sizeof(save));
        put_le32(pvd + 80, get_le32(pvd + 80) - 1);
        check_whole("iso9660 LE/BE disagree", &m, "iso9660", "disagree");
        memcpy(pvd, save, sizeof(save));
        put_le32(pvd + 80, (uint32_t) (m.part_size / 2048 + 1));
        put_be32(pvd + 84, (uint32_t) (m.part_size / 2048 + 1));
        check_whole("iso9660 size > part", &m, "iso9660", "reaches past the partition");
        put_le32(pvd + 80, 0);
        put_be32(pvd + 84, 0);
        /* The Joliet SVD still says the right size: the largest wins. */
        check_exact("iso9660, PVD size 0", &m, "iso9660", want);
        put_le32(pvd + 2048 + 80, 0);
        put_be32(pvd + 2048 + 84, 0);
        check_whole("iso9660 sizes 0", &m, "iso9660", "before its own descriptors");
        memcpy(pvd, save, sizeof(save));
        put_le16(pvd + 128, 3000);
        put_be16(pvd + 130, 3000);
        check_whole("iso9660 block size", &m, "iso9660", "logical block size");
        memcpy(pvd, save, sizeof(save));
        /* A UDF bridge: an NSR descriptor after the terminator. */
        uint8_t *d = pvd;
        while (d[0] != 255 && d < pvd + sizeof(save) - 2048)
                d += 2048;
        CHECK(d[0] == 255, "no terminator in the first descriptors");
        memcpy(d + 2048, "\0BEA01\1", 7);
        memcpy(d + 4096, "\0NSR02\1", 7);
        check_whole("iso9660/UDF bridge", &m, "iso9660", "UDF");
        memset(d + 2048, 0, 4096);

        /* At image byte 0 (no partition table): the whole-disk rule. */
        {
                _cleanup_(probe_result_done) ProbeResult res = {};
                Reader r = reader_from_mem(m.buf + PREFIX, m.part_size, 0, m.part_size);
                int k = fsprobe_rofs.collect(&r, "iso9660", &res);
                CHECK(k == 0 && extents_total(&res.used) == m.part_size, "a bare ISO is not mapped whole: %s", res.how);
                CHECK_STR_CONTAINS(res.how, "spans the disk");
        }
        mutate("iso9660", &m, "iso9660", 32768 + 3 * 2048, 3000);
        free(m.buf);
}

/* El Torito boot images. Inside the volume (-b of a file in the tree):
 * still exactly the volume. Past it, as Debian and Ubuntu build their
 * ISOs (the EFI image is a FAT partition appended after the volume and the
 * catalog points there): the ISO boots from those bytes, so the partition
 * is mapped whole; the tail rule alone would keep only the image's
 * non-zero 4 KiB blocks (a FAT's free entries, an empty root directory
 * block would come back as garbage). */
static void test_eltorito(void) {
        PATH_COPY(inside, "eltorito-inside.iso");
        PATH_COPY(appended, "eltorito-appended.iso");
        PATH_COPY(efi, "efi.img");
        Img m;

        if (sh("mkdir -p '%s/boot' && head -c 8192 /dev/urandom >'%s/boot/boot.img' && "
               "xorriso -as mkisofs -quiet -J -R -b boot/boot.img -no-emul-boot -boot-load-size 16 -o '%s' '%s' "
               ">/dev/null 2>&1",
               tpath("eltree"), tpath("eltree"), inside, tpath("eltree")) != 0) {
                CHECK(false, "xorriso -b failed");
                return;
        }
        if (load(inside, &m)) {
                check_exact("iso9660, El Torito inside", &m, "iso9660", m.fs_bytes);
                /* The catalog's default entry moved past the volume. */
                uint8_t *br = m.buf + PREFIX + 32768 + 2048;
                CHECK(br[0] == 0 && memcmp(br + 7, "EL TORITO SPECIFICATION", 23) == 0,
                      "no El Torito boot record after the PVD");
                uint8_t *e = m.buf + PREFIX + (uint64_t) get_le32(br + 0x47) * 2048 + 32;
                uint32_t rba = get_le32(e + 8);
                put_le32(e + 8, (uint32_t) (m.fs_bytes / 2048));
                check_whole("iso9660, boot image moved out", &m, "iso9660", "El Torito boot image");
                put_le32(e + 8, rba);
                e[-32] = 0; /* no validation entry */
                check_whole("iso9660, catalog broken", &m, "iso9660", "no validation entry");
                free(m.buf);
        }

        /* 64 KiB of data, then 192 KiB of zeros: a stand-in for a FAT image. */
        if (sh("head -c 65536 /dev/urandom >'%s' && truncate -s 256K '%s' && "
               "xorriso -as mkisofs -quiet -J -R -append_partition 2 0xef '%s' "
               "-e --interval:appended_partition_2:all:: -no-emul-boot -o '%s' '%s' >/dev/null 2>&1",
               efi, efi, efi, appended, tpath("eltree")) != 0) {
                CHECK(false, "xorriso -append_partition failed");
                return;
        }
        if (load(appended, &m)) {
                check_whole("iso9660, EFI image appended", &m, "iso9660", "El Torito boot image");
                free(m.buf);
        }
}

/* ---------------------------------------------------------------- cramfs */

static void test_cramfs(void) {
        PATH_COPY(img, "cramfs.img");
        if (sh("mkfs.cramfs '%s' '%s' >/dev/null", tpath("files"), img) != 0) {
                CHECK(false, "mkfs.cramfs failed");
                return;
        }
        CHECK(sh_quiet("fsck.cramfs '%s' >/dev/null 2>&1", img) == 0, "fsck.cramfs finds the image broken");
        Img m;
        if (!load(img, &m))
                return;
        check_exact("cramfs", &m, "cramfs", m.fs_bytes);
        uint8_t *sb = m.buf + PREFIX, save[76];
        memcpy(save, sb, sizeof(save));
        sb[0] ^= 1;
        check_whole("cramfs flipped magic", &m, "cramfs", "no cramfs magic");
        put_le32(sb, 0x453DCD28);
        check_whole("cramfs big-endian", &m, "cramfs", "big-endian");
        memcpy(sb, save, sizeof(save));
        put_le32(sb + 8, get_le32(sb + 8) & ~UINT32_C(1));
        check_whole("cramfs before version 2", &m, "cramfs", "does not record its size");
        memcpy(sb, save, sizeof(save));
        put_le32(sb + 4, (uint32_t) m.part_size + 4096);
        check_whole("cramfs size > part", &m, "cramfs", "reaches past the partition");
        memcpy(sb, save, sizeof(save));
        put_le32(sb + 8, get_le32(sb + 8) | 0x10000);
        check_whole("cramfs unknown flag", &m, "cramfs", "unknown flags");
        memcpy(sb, save, sizeof(save));
        mutate("cramfs", &m, "cramfs", 76, 2000);
        free(m.buf);

        /* Behind a 512-byte boot block (mkfs.cramfs -p): size counts it. */
        PATH_COPY(padded, "cramfs-p.img");
        if (sh("mkfs.cramfs -p '%s' '%s' >/dev/null", tpath("files"), padded) != 0 || !load(padded, &m))
                return;
        check_exact("cramfs -p (boot block)", &m, "cramfs", m.fs_bytes);
        free(m.buf);
}

int main(void) {
        const char *base = getenv("TEST_TMPDIR");
        if (system("command -v mksquashfs >/dev/null && command -v unsquashfs >/dev/null && "
                   "command -v mkfs.erofs >/dev/null && command -v dump.erofs >/dev/null && "
                   "command -v xorriso >/dev/null") != 0) {
                printf("test-probe-rofs: squashfs-tools, erofs-utils or xorriso missing, skipped\n");
                return 77;
        }
        if (!base || !*base)
                base = "/tmp";
        if (sh("mkdir -p '%s'", base) != 0)
                return 1;
        snprintf(tmpdir, sizeof(tmpdir), "%s/test-probe-rofs-XXXXXX", base);
        if (!mkdtemp(tmpdir)) {
                perror("mkdtemp");
                return 1;
        }
        /* Incompressible files and a few small ones, some in a directory. */
        if (sh("mkdir -p '%s/d' && head -c 300000 /dev/urandom >'%s/big' && echo hello >'%s/d/small' && "
               "seq 100000 >'%s/d/text' && ln -s big '%s/link'",
               tpath("files"), tpath("files"), tpath("files"), tpath("files"), tpath("files")) != 0)
                return 1;

        test_squashfs("squashfs-xz.img", "-comp xz");
        test_squashfs("squashfs-gzip-4k.img", "-comp gzip -b 4096");
        test_squashfs("squashfs-zstd-frag.img", "-comp zstd -always-use-fragments -no-xattrs");
        test_erofs("erofs.img", "");
        test_erofs("erofs-lz4hc.img", "-zlz4hc");
        test_iso9660();
        test_eltorito();
        if (system("command -v mkfs.cramfs >/dev/null && command -v fsck.cramfs >/dev/null") == 0)
                test_cramfs();
        else
                printf("  mkfs.cramfs missing: cramfs skipped\n");

        sh("rm -rf '%s'", tmpdir);
        return check_exit("test-probe-rofs");
}
