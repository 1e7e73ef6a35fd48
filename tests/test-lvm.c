/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The LVM2 PV reader: label, PV header, metadata area header, the circular
 * text buffer and the VG text, on PVs built here byte by byte (FORMATS.md
 * §10; the real tools' PVs are read in test-flash-lvm.sh), and corrupt
 * ones: a bad label or metadata CRC, an LV past the PV, truncated text,
 * deep nesting, huge counts. Each must fail with a reason, never crash;
 * through scan_image such a PV is mapped whole with that reason. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "lvm-text.h"
#include "lvm.h"
#include "scan.h"

#define MIB (1024 * 1024)
#define PV_SIZE (8 * MIB)
#define MDA_START 4096
#define MDA_SIZE (MIB - 4096)
#define UUID "lh5ZgQcP2u6qG3r060iEVEPA7e65ctbW"
#define UUID_DASHED "lh5ZgQ-cP2u-6qG3-r060-iEVE-PA7e-65ctbW"

static void put_le32(uint8_t *p, uint32_t v) {
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t) (v >> (8 * i));
}
static void put_le64(uint8_t *p, uint64_t v) {
        for (int i = 0; i < 8; i++)
                p[i] = (uint8_t) (v >> (8 * i));
}

/* A PV of PV_SIZE bytes: the label in sector 1, one metadata area at 4 KiB
 * whose committed text starts at text_off (from the area's start) and wraps
 * around its end if it must, data from 1 MiB. in_vg: the header's flag. */
static uint8_t *make_pv(const char *text, uint64_t text_off, bool in_vg) {
        uint8_t *pv = calloc(1, PV_SIZE);
        uint8_t *s = pv + 512, *h = s + 32, *m = pv + MDA_START;
        size_t len = text ? strlen(text) + 1 : 0;

        memcpy(s, "LABELONE", 8);
        put_le64(s + 8, 1);
        put_le32(s + 20, 32);
        memcpy(s + 24, "LVM2 001", 8);
        memcpy(h, UUID, 32);
        put_le64(h + 32, PV_SIZE);
        put_le64(h + 40, MIB);                /* data area: pe_start, to the end */
        put_le64(h + 72, MDA_START);          /* after the zero pair: the metadata area */
        put_le64(h + 80, MDA_SIZE);
        put_le32(h + 104, 2);                 /* extension version 2, flags */
        put_le32(h + 108, in_vg ? 1 : 0);
        put_le32(s + 16, lvm_crc(LVM_CRC_SEED, s + 20, 512 - 20));

        memcpy(m + 4, " LVM2 x[5A%r0N*>", 16);
        put_le32(m + 20, 1);
        put_le64(m + 24, MDA_START);
        put_le64(m + 32, MDA_SIZE);
        if (text) {
                uint64_t first = len < MDA_SIZE - text_off ? len : MDA_SIZE - text_off;
                memcpy(m + text_off, text, first);
                memcpy(m + 512, text + first, len - first);
                put_le64(m + 40, text_off);
                put_le64(m + 48, len);
                put_le32(m + 56, lvm_crc(LVM_CRC_SEED, text, len));
        }
        put_le32(m, lvm_crc(LVM_CRC_SEED, m + 4, 512 - 4));
        return pv;
}

static const char *VG_TEXT =
        "vg {\n"
        "id = \"IuBciC-HgDi-OFHu-KQwJ-wcHi-X6C2-ipAF6C\"\n"
        "seqno = 4\n"
        "format = \"lvm2\" # a comment\n"
        "status = [\"RESIZEABLE\", \"READ\", \"WRITE\"]\n"
        "extent_size = 2048\n"
        "physical_volumes {\n"
        "pv0 {\n"
        "id = \"" UUID_DASHED "\"\n"
        "device = \"/dev/loop0\"\n"
        "dev_size = 16384\n"
        "pe_start = 2048\n"
        "pe_count = 7\n"
        "}\n"
        "}\n"
        "logical_volumes {\n"
        "root {\n"
        "status = [\"READ\", \"WRITE\", \"VISIBLE\"]\n"
        "segment_count = 1\n"
        "segment1 {\n"
        "start_extent = 0\n"
        "extent_count = 2\n"
        "type = \"striped\"\n"
        "stripe_count = 1\n"
        "stripes = [\n\"pv0\", 0\n]\n"
        "}\n"
        "}\n"
        "home {\n"
        "status = [\"READ\", \"WRITE\", \"VISIBLE\"]\n"
        "segment_count = 2\n"
        "segment2 {\n"
        "start_extent = 1\n"
        "extent_count = 1\n"
        "type = \"striped\"\n"
        "stripe_count = 1\n"
        "stripes = [\"pv0\", 5]\n"
        "}\n"
        "segment1 {\n"
        "start_extent = 0\n"
        "extent_count = 1\n"
        "type = \"striped\"\n"
        "stripe_count = 1\n"
        "stripes = [\"pv0\", 3]\n"
        "}\n"
        "}\n"
        "}\n"
        "}\n"
        "contents = \"Text Format Volume Group\"\n"
        "version = 1\n";

static int read_pv(const uint8_t *img, LvmPv *pv, char *why, size_t len) {
        Reader r = reader_from_mem(img, PV_SIZE, 0, PV_SIZE);
        *pv = (LvmPv) {};
        return lvm_pv_read(&r, pv, why, len);
}

static void check_good(const char *what, const uint8_t *img) {
        _cleanup_(lvm_pv_done) LvmPv pv = {};
        char why[256];
        int r = read_pv(img, &pv, why, sizeof(why));
        CHECK(r == 0, "%s: %d %s", what, r, why);
        if (r < 0)
                return;
        CHECK(strcmp(pv.vg_name, "vg") == 0, "%s: VG %s", what, pv.vg_name);
        CHECK_U64(pv.seqno, 4);
        CHECK_U64(pv.extent_size, MIB);
        CHECK_U64(pv.pe_start, MIB);
        CHECK_U64(pv.pe_count, 7);
        CHECK_U64(pv.n_lvs, 2);
        CHECK_U64(extents_total(&pv.allocated), 4 * MIB);
        if (pv.n_lvs != 2)
                return;
        const LvmLv *root = &pv.lvs[0], *home = &pv.lvs[1];
        CHECK(root->visible && root->linear && !root->elsewhere && !root->referenced && !root->kind[0], "%s: root", what);
        CHECK_U64(root->size, 2 * MIB);
        CHECK_U64(root->n_segs, 1);
        if (root->n_segs == 1)
                CHECK_U64(root->segs[0].pv_offset, MIB);
        CHECK_U64(home->size, 2 * MIB);
        CHECK_U64(home->n_segs, 2);
        if (home->n_segs == 2) {
                /* Sorted by LV offset, though the text lists segment2 first. */
                CHECK_U64(home->segs[0].lv_start, 0);
                CHECK_U64(home->segs[0].pv_offset, 4 * MIB);
                CHECK_U64(home->segs[1].lv_start, MIB);
                CHECK_U64(home->segs[1].pv_offset, 6 * MIB);
        }
}

/* Reading fails, saying something that contains want. */
static void check_bad(const char *what, const uint8_t *img, const char *want) {
        _cleanup_(lvm_pv_done) LvmPv pv = {};
        char why[256] = "";
        int r = read_pv(img, &pv, why, sizeof(why));
        CHECK(r < 0 && r != -ENOMEM, "%s: read returns %d", what, r);
        CHECK_STR_CONTAINS(why, want);
}

static char *replace(const char *text, const char *from, const char *to) {
        const char *at = strstr(text, from);
        size_t n = strlen(text) - strlen(from) + strlen(to) + 1;
        char *out = malloc(n);
        if (!at)
                abort();
        snprintf(out, n, "%.*s%s%s", (int) (at - text), text, to, at + strlen(from));
        return out;
}

static void test_text_variants(void) {
        uint8_t *img;
        char *t;

        img = make_pv(VG_TEXT, 512, true);
        check_good("plain", img);
        free(img);
        /* The text wraps around the end of the circular buffer. */
        img = make_pv(VG_TEXT, MDA_SIZE - 300, true);
        check_good("wrapped", img);
        free(img);

        img = make_pv(VG_TEXT, 512, true);
        img[512 + 40] ^= 1;
        check_bad("label CRC", img, "fails its CRC");
        free(img);

        img = make_pv(VG_TEXT, 512, true);
        img[MDA_START + 100] ^= 1;
        check_bad("mda CRC", img, "header at 4096 fails its CRC");
        free(img);

        img = make_pv(VG_TEXT, 512, true);
        img[MDA_START + 600] ^= 1;
        check_bad("text CRC", img, "text at 4608 fails its CRC");
        free(img);

        t = replace(VG_TEXT, "\"pv0\", 5]", "\"pv0\", 7]");
        img = make_pv(t, 512, true);
        check_bad("LV past the PV", img, "lie past the PV's 7 extents");
        free(img);
        free(t);

        t = replace(VG_TEXT, "pe_count = 7", "pe_count = 9");
        img = make_pv(t, 512, true);
        check_bad("extents past the PV", img, "reach past the PV");
        free(img);
        free(t);

        t = replace(VG_TEXT, "\"pv0\", 5]", "\"pv0\", 1]");
        img = make_pv(t, 512, true);
        check_bad("two LVs on one extent", img, "given twice");
        free(img);
        free(t);

        t = strdup(VG_TEXT);
        t[strlen(t) / 2] = 0;
        img = make_pv(t, 512, true);
        check_bad("truncated text", img, "metadata text, line");
        free(img);
        free(t);

        t = replace(VG_TEXT, "stripe_count = 1\nstripes = [\n", "stripe_count = 1000000\nstripes = [\n");
        img = make_pv(t, 512, true);
        check_bad("huge stripe_count", img, "stripe_count");
        free(img);
        free(t);

        t = replace(VG_TEXT, "extent_count = 2\n", "extent_count = 1125899906842624\n");
        img = make_pv(t, 512, true);
        check_bad("huge extent_count", img, "extents at");
        free(img);
        free(t);

        t = replace(VG_TEXT, "\"pv0\", 0\n]", "\"pv0\", 0, \"pv0\", 1\n]");
        img = make_pv(t, 512, true);
        check_bad("more stripes than stripe_count", img, "[PV, extent] pairs");
        free(img);
        free(t);

        t = replace(VG_TEXT, "id = \"" UUID_DASHED "\"", "id = \"xxxxxx-cP2u-6qG3-r060-iEVE-PA7e-65ctbW\"");
        img = make_pv(t, 512, true);
        check_bad("PV not in the VG", img, "does not list this PV");
        free(img);
        free(t);

        /* An orphan PV: an empty metadata area, the header says in no VG. */
        {
                _cleanup_(lvm_pv_done) LvmPv pv = {};
                char why[256];
                img = make_pv(NULL, 0, false);
                CHECK(read_pv(img, &pv, why, sizeof(why)) == 0 && pv.orphan && pv.pe_start == MIB, "orphan: %s", why);
                free(img);
                img = make_pv(NULL, 0, true);
                check_bad("empty metadata, in a VG", img, "hold no VG");
                free(img);
        }
}

static void test_parser_limits(void) {
        _cleanup_(lvm_text_done) LvmText t = {};
        size_t n = 40 * 3 + 2;
        char *deep = malloc(n);
        size_t k = 0;

        for (int i = 0; i < 20; i++) {
                memcpy(deep + k, "a {", 3);
                k += 3;
        }
        for (int i = 0; i < 20; i++)
                deep[k++] = '}';
        deep[k] = 0;
        CHECK(lvm_text_parse(deep, k, &t) == -E2BIG && strstr(t.error, "nested"), "deep nesting: %s", t.error);
        lvm_text_done(&t);
        free(deep);

        /* Lists nest too: the bound holds for them. */
        char lists[64];
        memset(lists, '[', 40);
        memcpy(lists + 40, "1", 2);
        CHECK(lvm_text_parse("x = ", 4, &t) == -EINVAL, "a missing value");
        lvm_text_done(&t);
        char nested[80];
        snprintf(nested, sizeof(nested), "x = %s", lists);
        CHECK(lvm_text_parse(nested, strlen(nested), &t) == -E2BIG, "deep lists: %s", t.error);
        lvm_text_done(&t);

        const char *bad[] = { "a = \"open", "a { b = 1", "}", "a = [1, 2", "a = [1 2]", "= 3", "a = 99999999999999999999",
                              "a = \"x\\", "a b" };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                CHECK(lvm_text_parse(bad[i], strlen(bad[i]), &t) < 0 && t.error[0], "'%s' accepted", bad[i]);
                lvm_text_done(&t);
        }

        /* Many items: fine below the bound, counted against it. */
        size_t items = 100000;
        char *many = malloc(items * 3 + 16);
        k = (size_t) sprintf(many, "a = [");
        for (size_t i = 0; i < items; i++)
                k += (size_t) sprintf(many + k, "%s1", i ? "," : "");
        k += (size_t) sprintf(many + k, "]");
        CHECK(lvm_text_parse(many, k, &t) == 0 && t.n_nodes == items + 2, "a long list: %zu nodes", t.n_nodes);
        lvm_text_done(&t);
        free(many);
}

/* A thin pool: its sub-LVs are parts of it, never volumes of their own. */
static void test_thin_pool(void) {
        char *t = replace(VG_TEXT, "logical_volumes {\n",
                          "logical_volumes {\n"
                          "pool {\nstatus = [\"READ\", \"WRITE\", \"VISIBLE\"]\nsegment_count = 1\nsegment1 {\nstart_extent = 0\n"
                          "extent_count = 1\ntype = \"thin-pool\"\nmetadata = \"pool_tmeta\"\npool = \"pool_tdata\"\n}\n}\n"
                          "pool_tdata {\nstatus = [\"READ\", \"WRITE\"]\nsegment_count = 1\nsegment1 {\nstart_extent = 0\nextent_count = 1\n"
                          "type = \"striped\"\nstripe_count = 1\nstripes = [\"pv0\", 2]\n}\n}\n");
        uint8_t *img = make_pv(t, 512, true);
        _cleanup_(lvm_pv_done) LvmPv pv = {};
        char why[256];
        CHECK(read_pv(img, &pv, why, sizeof(why)) == 0, "thin pool: %s", why);
        for (size_t i = 0; i < pv.n_lvs; i++)
                if (strcmp(pv.lvs[i].name, "pool_tdata") == 0)
                        CHECK(pv.lvs[i].referenced && strstr(pv.lvs[i].part_of, "thin-pool LV pool"), "tdata: %s",
                              pv.lvs[i].part_of);
                else if (strcmp(pv.lvs[i].name, "pool") == 0)
                        CHECK(strcmp(pv.lvs[i].kind, "thin-pool") == 0, "pool kind %s", pv.lvs[i].kind);
        free(img);
        free(t);
}

/* A second metadata area over the PV's last MiB (where extent 6 lies),
 * its slot empty: the PV header's list grows by one pair. */
static void add_mda1(uint8_t *img) {
        uint8_t *s = img + 512, *h = s + 32, *m = img + 7 * MIB;

        memmove(h + 120, h + 104, 8);   /* the extension moves down a pair */
        put_le64(h + 88, 7 * MIB);
        put_le64(h + 96, MIB);
        memset(h + 104, 0, 16);
        put_le32(s + 16, lvm_crc(LVM_CRC_SEED, s + 20, 512 - 20));
        memcpy(m, img + MDA_START, 512);
        put_le64(m + 24, 7 * MIB);
        put_le64(m + 32, MIB);
        memset(m + 40, 0, 24);
        put_le32(m, lvm_crc(LVM_CRC_SEED, m + 4, 512 - 4));
}

static void check_text_bad(const char *what, const char *text, const char *want) {
        uint8_t *img = make_pv(text, 512, true);
        check_bad(what, img, want);
        free(img);
}

/* Ways the VG text could make the reader map less than LVM uses: each must
 * fail (the PV is then mapped whole), never leave an LV's extents free. */
static void test_review_risks(void) {
        uint8_t *img;
        char *t, *u;

        /* The VG lists this PV twice: an LV on "pv1" is on this very PV,
         * so its extents must never pass for another PV's. */
        t = replace(VG_TEXT, "}\n}\nlogical_volumes {\n",
                    "}\npv1 {\nid = \"" UUID_DASHED "\"\ndevice = \"/dev/loop0\"\ndev_size = 16384\n"
                    "pe_start = 2048\npe_count = 7\n}\n}\nlogical_volumes {\n");
        u = replace(t, "\"pv0\", 5]", "\"pv1\", 5]");
        check_text_bad("this PV listed twice", u, "twice");
        free(u);
        free(t);

        /* A mirror leg on the extent of a linear LV listed before it: the
         * linear LV's free blocks would free the leg's data. */
        const char *mirror = "}\nmm {\nstatus = [\"READ\", \"WRITE\"]\nsegment_count = 1\nsegment1 {\n"
                             "start_extent = 0\nextent_count = 1\ntype = \"mirror\"\nmirror_count = 1\n"
                             "mirrors = [\"pv0\", 6]\n}\n}\n}\n}\ncontents";
        t = replace(VG_TEXT, "}\n}\n}\ncontents", mirror);
        img = make_pv(t, 512, true);
        {
                _cleanup_(lvm_pv_done) LvmPv pv = {};
                char why[256];
                CHECK(read_pv(img, &pv, why, sizeof(why)) == 0, "a mirror leg on a free extent: %s", why);
                CHECK_U64(extents_total(&pv.allocated), 5 * MIB);
        }
        free(img);
        u = replace(t, "mirrors = [\"pv0\", 6]", "mirrors = [\"pv0\", 1]");
        check_text_bad("a mirror leg on a linear LV's extent", u, "given twice");
        free(u);
        free(t);

        /* A segment type this reader does not know may name its PV areas
         * in a way it does not read: the PV is refused, not its extents
         * taken for free. */
        t = replace(mirror, "type = \"mirror\"", "type = \"future-type\"");
        u = replace(VG_TEXT, "}\n}\n}\ncontents", t);
        check_text_bad("an unknown segment type", u, "is not known");
        free(u);
        free(t);

        /* LVM reads every subsection of an LV as a segment, whatever its
         * name, and checks segment_count. */
        t = replace(VG_TEXT, "segment_count = 1\nsegment1 {", "segment_count = 1\nfirst {");
        img = make_pv(t, 512, true);
        check_good("a segment not called segmentN", img);
        free(img);
        free(t);
        t = replace(VG_TEXT, "segment_count = 2\n", "segment_count = 1\n");
        check_text_bad("segment_count disagrees", t, "segment_count");
        free(t);

        /* A number past 64 bits is an error, not a wrapped value. */
        t = replace(VG_TEXT, "\"pv0\", 5]", "\"pv0\", 18446744073709551621]");
        check_text_bad("an overflowing extent", t, "metadata text, line");
        free(t);

        /* A second metadata area at the PV's end, over unallocated extent 6:
         * fine; with an LV on extent 6, LVM's own metadata would be its data. */
        img = make_pv(VG_TEXT, 512, true);
        add_mda1(img);
        check_good("a second, empty metadata area at the end", img);
        free(img);
        t = replace(VG_TEXT, "\"pv0\", 5]", "\"pv0\", 6]");
        img = make_pv(t, 512, true);
        add_mda1(img);
        check_bad("an extent on the second metadata area", img, "metadata area");
        free(img);
        free(t);
}

/* Through scan_image: a PV whose metadata fails its CRC is mapped whole,
 * and the report says why. */
static void test_scan_whole(void) {
        char path[] = "/tmp/test-lvm-XXXXXX";
        int fd = mkstemp(path);
        uint8_t *img = make_pv(VG_TEXT, 512, true);
        Scan s = {};
        Diag d = {};

        CHECK(fd >= 0, "mkstemp");
        if (fd < 0)
                return;
        img[MDA_START + 600] ^= 1;
        CHECK(write(fd, img, PV_SIZE) == PV_SIZE, "write");
        CHECK(scan_image(fd, path, PV_SIZE, NULL, &s, &d) == 0, "scan: %s", d.msg);
        if (s.layout.n_parts == 1) {
                CHECK(strcmp(s.layout.parts[0].fstype, "LVM2_member") == 0, "blkid: %s", s.layout.parts[0].fstype);
                CHECK_STR_CONTAINS(s.parts[0].how, "fails its CRC: fully mapped");
                CHECK_U64(extents_total(&s.mapped), PV_SIZE);
        }
        scan_done(&s);

        /* The good PV: unallocated extents free, the LVs (no filesystem) whole. */
        img[MDA_START + 600] ^= 1;
        CHECK(pwrite(fd, img, PV_SIZE, 0) == PV_SIZE, "write");
        CHECK(scan_image(fd, path, PV_SIZE, NULL, &s, &d) == 0, "scan: %s", d.msg);
        CHECK_U64(extents_total(&s.mapped), MIB + 4 * MIB);
        CHECK_U64(s.n_volumes, 2);
        scan_done(&s);
        close(fd);
        unlink(path);
        free(img);
}

int main(void) {
        test_text_variants();
        test_parser_limits();
        test_thin_pool();
        test_review_risks();
        test_scan_whole();
        return check_exit("test-lvm");
}
