/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The dm-verity, AVB and DPS parsers and the tail scan, on buffers and on
 * sparse files built here: what makes a whole partition precious, and which
 * bytes past a filesystem's end are data. The same superblock layout that
 * veritysetup writes (FORMATS.md §7) and the AVB footer of avbtool (§8). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "integrity.h"

static void put_le32(uint8_t *p, uint32_t v) {
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t) (v >> (8 * i));
}
static void put_le64(uint8_t *p, uint64_t v) {
        put_le32(p, (uint32_t) v);
        put_le32(p + 4, (uint32_t) (v >> 32));
}
static void put_be32(uint8_t *p, uint32_t v) {
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t) (v >> (24 - 8 * i));
}
static void put_be64(uint8_t *p, uint64_t v) {
        put_be32(p, (uint32_t) (v >> 32));
        put_be32(p + 4, (uint32_t) v);
}

static void make_verity_super(uint8_t *b, uint32_t dbs, uint32_t hbs, uint64_t blocks) {
        memset(b, 0, VERITY_SUPER_SIZE);
        memcpy(b, "verity\0\0", 8);
        put_le32(b + 8, 1);
        put_le32(b + 12, 1);
        memcpy(b + 32, "sha256", 6);
        put_le32(b + 64, dbs);
        put_le32(b + 68, hbs);
        put_le64(b + 72, blocks);
        b[80] = 32; /* salt size */
}

static void test_verity_super(void) {
        uint8_t b[VERITY_SUPER_SIZE];
        VeritySuper v;

        make_verity_super(b, 4096, 4096, 12288);
        CHECK(verity_super_parse(b, sizeof(b), &v) == 0, "a veritysetup superblock is recognised");
        CHECK_U64(v.data_blocks, 12288);
        CHECK_U64(verity_data_bytes(&v), UINT64_C(48) << 20);
        CHECK(strcmp(v.algorithm, "sha256") == 0, "algorithm %s", v.algorithm);
        CHECK(verity_super_parse(b, sizeof(b) - 1, &v) == -EINVAL, "a short buffer is no superblock");

        put_le32(b + 8, 2);
        CHECK(verity_super_parse(b, sizeof(b), &v) == -EINVAL, "version 2 is not read");
        make_verity_super(b, 4096, 3000, 1);
        CHECK(verity_super_parse(b, sizeof(b), &v) == -EINVAL, "a hash block size that is no power of two");
        make_verity_super(b, 256, 4096, 1);
        CHECK(verity_super_parse(b, sizeof(b), &v) == -EINVAL, "a data block size under 512");
        make_verity_super(b, 4096, 4096, 1);
        b[80] = 0;
        b[81] = 2; /* 512-byte salt */
        CHECK(verity_super_parse(b, sizeof(b), &v) == -EINVAL, "a salt longer than its field");
        make_verity_super(b, 4096, 4096, 1);
        b[6] = 'x';
        CHECK(verity_super_parse(b, sizeof(b), &v) == -EINVAL, "the magic needs its two NULs");
        make_verity_super(b, 4096, 4096, UINT64_MAX / 1024);
        CHECK(verity_super_parse(b, sizeof(b), &v) == 0, "parsed");
        CHECK_U64(verity_data_bytes(&v), 0); /* overflow: unknown, never a small number */
}

static void test_avb(void) {
        uint8_t f[AVB_FOOTER_SIZE] = {}, head[16] = {};
        AvbFooter a;

        memcpy(f, "AVBf", 4);
        put_be32(f + 4, 1);
        put_be32(f + 8, 0);
        put_be64(f + 12, 32 << 20);
        put_be64(f + 20, 34 << 20);
        put_be64(f + 28, 2112);
        CHECK(avb_footer_parse(f, 48 << 20, &a) == 0, "an avbtool footer is recognised");
        CHECK_U64(a.original_image_size, 32 << 20);
        CHECK_U64(a.vbmeta_offset, 34 << 20);
        CHECK_U64(a.vbmeta_size, 2112);
        CHECK(avb_footer_parse(f, 33 << 20, &a) == -EBADMSG, "a vbmeta past the partition is damaged, not absent");
        f[3] = 'F';
        CHECK(avb_footer_parse(f, 48 << 20, &a) == -EINVAL, "no magic, no footer");

        memcpy(head, "AVB0", 4);
        put_be32(head + 4, 1);
        CHECK(avb_vbmeta_at(head, sizeof(head)), "a vbmeta blob");
        CHECK(!avb_vbmeta_at(head, 4), "too short");
        put_be32(head + 4, 7);
        CHECK(!avb_vbmeta_at(head, sizeof(head)), "an unknown libavb major version");
}

static void test_dps(void) {
        DpsType t = dps_type("4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709");
        CHECK(t.role == DPS_ROOT && strcmp(t.arch, "x86-64") == 0, "x86-64 root, upper case");
        t = dps_type("df3300ce-d69f-4c92-978c-9bfb0f38d820");
        CHECK(t.role == DPS_ROOT_VERITY && strcmp(t.arch, "arm64") == 0, "arm64 root-verity");
        CHECK(dps_data_role(t.role) == DPS_ROOT, "root-verity protects root");
        CHECK(dps_is_verity(t.role) && !dps_is_verity_sig(t.role), "verity, not sig");
        t = dps_type("d2f9000a-7a18-453f-b5cd-4d32f77a7b32");
        CHECK(t.role == DPS_USR_VERITY_SIG && strcmp(t.arch, "riscv64") == 0, "riscv64 usr-verity-sig");
        CHECK(dps_data_role(t.role) == DPS_USR, "usr-verity-sig protects usr");
        CHECK(dps_type("0fc63daf-8483-4772-8e79-3d69d8477de4").role == DPS_OTHER, "Linux filesystem data");
        CHECK(dps_type("").role == DPS_OTHER && dps_type(NULL).role == DPS_OTHER, "no GUID");
}

static void test_verity_sig(void) {
        static const char json[] =
                "{\"rootHash\":\"8fa87708bfa79bca2a702ae69b4d7d0fdaf4e2b534568066ce3dfce5b0295ef2\","
                "\"signature\":\"MIIB\",\"certificateFingerprint\":\"00\"}";
        uint8_t part[8192] = {}, hash[64];
        char du[37], hu[37];
        size_t len = 0;

        memcpy(part, json, sizeof(json) - 1);
        Reader r = reader_from_mem(part, sizeof(part), 0, sizeof(part));
        CHECK(verity_sig_root_hash(&r, hash, sizeof(hash), &len) == 0, "rootHash read");
        CHECK_U64(len, 32);
        verity_uuids_from_root_hash(hash, len, du, hu);
        /* systemd-repart named the partitions so (its JSON output). */
        CHECK(strcmp(du, "8fa87708-bfa7-9bca-2a70-2ae69b4d7d0f") == 0, "data uuid %s", du);
        CHECK(strcmp(hu, "daf4e2b5-3456-8066-ce3d-fce5b0295ef2") == 0, "hash uuid %s", hu);

        memcpy(part, "{\"rootHash\":\"zz\"}", 17);
        CHECK(verity_sig_root_hash(&r, hash, sizeof(hash), &len) == -EINVAL, "not hex");
        memset(part, 0, sizeof(part));
        CHECK(verity_sig_root_hash(&r, hash, sizeof(hash), &len) == -EINVAL, "zeros");
        memcpy(part, "{\"rootHash\":\"0011", 17); /* no closing quote */
        CHECK(verity_sig_root_hash(&r, hash, sizeof(hash), &len) == -EINVAL, "unterminated");
}

/* A region of 1 MiB at image offset 1 MiB + 512 (not 4 KiB aligned). */
static void test_tail_mem(void) {
        const uint64_t base = (1 << 20) + 512, size = 1 << 20;
        uint8_t *img = calloc(1, 4 << 20);
        TailScan t = {};

        CHECK(img != NULL, "alloc");
        if (!img)
                return;
        Reader r = reader_from_mem(img, 4 << 20, base, size);
        CHECK(tail_scan(&r, 4096, &t) == 0, "all zeros");
        CHECK_U64(t.nonzero.n, 0);
        CHECK(!t.verity, "no verity");
        tail_scan_done(&t);

        /* One byte: its 4 KiB block of the image, clipped to the tail. */
        img[base + 100000] = 0x5a;
        CHECK(tail_scan(&r, 4096, &t) == 0, "one byte");
        CHECK_U64(t.nonzero.n, 1);
        if (t.nonzero.n == 1) {
                uint64_t abs_block = (base + 100000) / 4096 * 4096;
                CHECK_U64(t.nonzero.v[0].start, abs_block - base);
                CHECK_U64(t.nonzero.v[0].end, abs_block + 4096 - base);
        }
        tail_scan_done(&t);

        /* A byte before 'from' is the filesystem's business, not the tail's. */
        CHECK(tail_scan(&r, 200000, &t) == 0, "from past the byte");
        CHECK_U64(t.nonzero.n, 0);
        tail_scan_done(&t);

        /* A superblock at a 512-byte boundary of the partition. */
        make_verity_super(img + base + 524288, 4096, 4096, 128);
        CHECK(tail_scan(&r, 4096, &t) == 0, "superblock");
        CHECK(t.verity, "superblock found");
        CHECK_U64(t.verity_offset, 524288);
        CHECK_U64(t.verity_super.data_blocks, 128);
        tail_scan_done(&t);

        /* A region that reaches past the image: only what exists is read. */
        Reader past = reader_from_mem(img, 4 << 20, (3 << 20) + 4096, 4 << 20);
        img[(4 << 20) - 1] = 1;
        CHECK(tail_scan(&past, 0, &t) == 0, "past the end");
        CHECK_U64(t.nonzero.n, 1);
        if (t.nonzero.n == 1)
                CHECK_U64(t.nonzero.v[0].end, (1 << 20) - 4096);
        tail_scan_done(&t);
        free(img);
}

/* A sparse file: holes are skipped, data found across chunk boundaries. */
static void test_tail_fd(void) {
        char path[] = "/tmp/test-integrity-XXXXXX";
        int fd = mkstemp(path);
        uint8_t one = 0xff, sb[VERITY_SUPER_SIZE];
        TailScan t = {};

        CHECK(fd >= 0, "mkstemp");
        if (fd < 0)
                return;
        unlink(path);
        CHECK(ftruncate(fd, UINT64_C(1) << 32) == 0, "a 4 GiB sparse file");
        /* Data at 3 GiB - 1 (across a 1 MiB chunk boundary from the next). */
        CHECK(pwrite(fd, &one, 1, (UINT64_C(3) << 30) - 1) == 1, "write");
        CHECK(pwrite(fd, &one, 1, UINT64_C(3) << 30) == 1, "write");
        Reader r = reader_from_fd(fd, UINT64_C(1) << 32, 0, UINT64_C(1) << 32);
        CHECK(tail_scan(&r, 1 << 20, &t) == 0, "sparse");
        CHECK_U64(t.nonzero.n, 1);
        if (t.nonzero.n == 1) {
                CHECK_U64(t.nonzero.v[0].start, (UINT64_C(3) << 30) - 4096);
                CHECK_U64(t.nonzero.v[0].end, (UINT64_C(3) << 30) + 4096);
        }
        tail_scan_done(&t);

        make_verity_super(sb, 4096, 4096, 1000);
        CHECK(pwrite(fd, sb, sizeof(sb), UINT64_C(2) << 30) == (ssize_t) sizeof(sb), "write");
        CHECK(tail_scan(&r, 1 << 20, &t) == 0, "sparse with a superblock");
        CHECK(t.verity && t.verity_offset == UINT64_C(2) << 30, "superblock at 2 GiB");
        CHECK_U64(t.nonzero.n, 2);
        tail_scan_done(&t);
        close(fd);
}

int main(void) {
        test_verity_super();
        test_avb();
        test_dps();
        test_verity_sig();
        test_tail_mem();
        test_tail_fd();
        return check_exit("test-integrity");
}
