/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Partition layouts built with sfdisk/fdisk at test time, read back by
 * layout_read: MBR with logical partitions and a sector-63 start, GPT, GPT
 * recovered from its backup, 4096-byte-sector GPT, no table, images under
 * one sector, overlapping entries, partitions past the end, and a hybrid
 * MBR that disagrees. */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "check.h"
#include "layout.h"

static char dir[4096];

_printf_(1, 2) static int sh(const char *fmt, ...) {
        char cmd[8192];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(cmd, sizeof(cmd), fmt, ap);
        va_end(ap);
        int r = system(cmd);
        if (r != 0)
                fprintf(stderr, "command failed (%d): %s\n", r, cmd);
        return r;
}

static int read_layout(const char *name, Layout *l) {
        char path[4200];
        struct stat st;
        Diag d = {};

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) < 0) {
                perror(path);
                return -1;
        }
        int r = layout_read(fd, path, (uint64_t) st.st_size, l, &d);
        if (r < 0)
                fprintf(stderr, "layout_read(%s): %s\n", name, d.msg);
        close(fd);
        return r;
}

static const Partition *find(const Layout *l, unsigned number) {
        for (size_t i = 0; i < l->n_parts; i++)
                if (l->parts[i].number == number)
                        return &l->parts[i];
        return NULL;
}

static void put_le32(uint8_t *p, uint32_t v) {
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t) (v >> (8 * i));
}

/* Writes one MBR entry (type, LBA start, sector count) by hand, for tables
 * that sfdisk refuses to make. */
static void patch_mbr(const char *name, int index, uint8_t type, uint32_t start, uint32_t count) {
        char path[4200];
        uint8_t e[16] = {};

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        int fd = open(path, O_RDWR | O_CLOEXEC);
        e[4] = type;
        put_le32(e + 8, start);
        put_le32(e + 12, count);
        CHECK(pwrite(fd, e, 16, 446 + 16 * index) == 16, "patching %s", name);
        CHECK(pwrite(fd, "\x55\xaa", 2, 510) == 2, "patching %s", name);
        close(fd);
}

static void test_mbr_logical_sector63(void) {
        _cleanup_(layout_done) Layout l = {};

        sh("cd %s && truncate -s 16M mbr.img && printf '%s' | sfdisk -q mbr.img", dir,
           "label: dos\\nstart=63, size=4033, type=c\\nstart=4096, size=20480, type=5\\n"
           "start=6144, size=4096, type=83\\nstart=12288, size=8192, type=83\\n");
        if (read_layout("mbr.img", &l) < 0)
                return;
        CHECK(strcmp(l.label, "dos") == 0, "label %s", l.label);
        CHECK(l.sector_size == 512, "sector size %u", l.sector_size);
        const Partition *p1 = find(&l, 1), *p2 = find(&l, 2), *p5 = find(&l, 5), *p6 = find(&l, 6);
        CHECK(p1 && p1->start == 63 * 512 && p1->size == 4033 * 512, "partition 1 at sector 63");
        CHECK(p1 && strcmp(p1->type, "0x0c") == 0, "partition 1 type %s", p1 ? p1->type : "");
        CHECK(p2 && p2->container, "partition 2 is the extended container");
        CHECK(p5 && p5->start == 6144 * 512 && !p5->container && !p5->mapped_whole, "logical partition 5");
        CHECK(p6 && p6->start == 12288 * 512 && p6->size == 8192 * 512, "logical partition 6");
        for (size_t i = 0; i < l.n_parts; i++)
                CHECK(!l.parts[i].mapped_whole, "partition %u is not disputed: %s", l.parts[i].number, l.parts[i].note);
}

static void test_gpt_and_backup(void) {
        _cleanup_(layout_done) Layout a = {}, b = {};

        sh("cd %s && truncate -s 32M gpt.img && printf '%s' | sfdisk -q gpt.img && truncate -s 8M swap.part && "
           "mkswap -q swap.part && dd if=swap.part of=gpt.img bs=1M seek=9 conv=notrunc status=none",
           dir, "label: gpt\\nstart=2048, size=16384, type=uefi\\nstart=18432, size=16384, type=swap\\n");
        if (read_layout("gpt.img", &a) < 0)
                return;
        CHECK(strcmp(a.label, "gpt") == 0, "label %s", a.label);
        CHECK(a.n_parts == 2, "%zu partitions", a.n_parts);
        const Partition *p2 = find(&a, 2);
        CHECK(p2 && p2->start == 18432 * 512 && strcmp(p2->fstype, "swap") == 0, "swap found in partition 2 (%s)",
              p2 ? p2->fstype : "");
        CHECK(find(&a, 1) && strcmp(find(&a, 1)->type, "EFI System") == 0, "GPT type name");

        /* Zero the primary header: the backup at the last LBA still gives the table. */
        sh("cd %s && cp gpt.img gpt0.img && dd if=/dev/zero of=gpt0.img bs=512 seek=1 count=1 conv=notrunc status=none",
           dir);
        if (read_layout("gpt0.img", &b) < 0)
                return;
        CHECK(strcmp(b.label, "gpt") == 0, "damaged primary: label %s", b.label);
        CHECK(b.n_parts == 2 && find(&b, 2) && find(&b, 2)->start == 18432 * 512,
              "damaged primary: %zu partitions from the backup", b.n_parts);
}

static void test_gpt_4k(void) {
        _cleanup_(layout_done) Layout l = {};

        /* fdisk -b 4096 writes a 4Kn GPT into a plain file: no loop device needed. */
        if (sh("cd %s && truncate -s 64M gpt4k.img && printf 'g\\nn\\n\\n\\n+16M\\nn\\n\\n\\n\\nw\\n' | "
               "fdisk -b 4096 gpt4k.img >/dev/null 2>&1",
               dir) != 0)
                return;
        if (read_layout("gpt4k.img", &l) < 0)
                return;
        CHECK(strcmp(l.label, "gpt") == 0, "4Kn: label %s", l.label);
        CHECK(l.sector_size == 4096, "4Kn: sector size %u", l.sector_size);
        const Partition *p1 = find(&l, 1);
        CHECK(p1 && p1->start == 256 * 4096 && p1->size == 16 << 20, "4Kn: partition 1 at %llu, %llu bytes",
              p1 ? (unsigned long long) p1->start : 0, p1 ? (unsigned long long) p1->size : 0);
}

static void test_no_table(void) {
        _cleanup_(layout_done) Layout a = {}, b = {};

        sh("cd %s && truncate -s 4M zero.img && truncate -s 4M bare-swap.img && mkswap -q bare-swap.img", dir);
        if (read_layout("zero.img", &a) == 0) {
                CHECK(strcmp(a.label, "none") == 0 && a.n_parts == 1, "zeros: one region, label %s", a.label);
                CHECK(a.parts[0].start == 0 && a.parts[0].size == 4 << 20 && a.parts[0].fstype[0] == 0,
                      "zeros: the whole image, no filesystem");
        }
        if (read_layout("bare-swap.img", &b) == 0)
                CHECK(b.n_parts == 1 && strcmp(b.parts[0].fstype, "swap") == 0, "bare swap recognised");

        /* A FAT boot sector ends in 0x55AA like an MBR: libfdisk alone sees an
         * empty DOS table, which would leave the filesystem unprobed. */
        _cleanup_(layout_done) Layout c = {};
        sh("cd %s && mkfs.fat -C floppy.img 1440 >/dev/null", dir);
        if (read_layout("floppy.img", &c) == 0) {
                CHECK(strcmp(c.label, "none") == 0, "FAT floppy: label %s, expected none", c.label);
                CHECK(c.n_parts == 1 && strcmp(c.parts[0].fstype, "vfat") == 0, "FAT floppy: one vfat region");
        }
}

/* Under one sector libfdisk fails (EINVAL): one region, mapped in full,
 * as create would map it. */
static void test_tiny(void) {
        _cleanup_(layout_done) Layout a = {}, b = {};

        sh("cd %s && printf short >tiny5.img && head -c 511 /dev/zero >tiny511.img", dir);
        CHECK(read_layout("tiny5.img", &a) == 0, "a 5-byte image is read");
        CHECK(strcmp(a.label, "none") == 0 && a.n_parts == 1 && a.parts[0].size == 5 && a.parts[0].mapped_whole,
              "a 5-byte image: one region mapped in full (label %s, %zu parts)", a.label, a.n_parts);
        CHECK(read_layout("tiny511.img", &b) == 0, "a 511-byte image is read");
        CHECK(b.n_parts == 1 && b.parts[0].size == 511 && b.parts[0].mapped_whole,
              "a 511-byte image: one region mapped in full");
}

static void test_overlap_and_past_end(void) {
        _cleanup_(layout_done) Layout a = {}, b = {};

        sh("cd %s && truncate -s 8M overlap.img && printf 'label: dos\\nstart=2048, size=4096, type=83\\n' | "
           "sfdisk -q overlap.img", dir);
        patch_mbr("overlap.img", 1, 0x83, 4000, 4000); /* overlaps partition 1 */
        patch_mbr("overlap.img", 2, 0x83, 12000, 4000); /* no overlap */
        if (read_layout("overlap.img", &a) == 0) {
                const Partition *p1 = find(&a, 1), *p2 = find(&a, 2), *p3 = find(&a, 3);
                CHECK(p1 && p1->mapped_whole && strstr(p1->note, "overlaps"), "partition 1 disputed: %s",
                      p1 ? p1->note : "missing");
                CHECK(p2 && p2->mapped_whole, "partition 2 disputed");
                CHECK(p3 && !p3->mapped_whole, "partition 3 is not: %s", p3 ? p3->note : "missing");
        }

        /* Partitions past the end of a truncated image. */
        sh("cd %s && truncate -s 8M short.img && printf 'label: dos\\nstart=2048, size=4096, type=83\\n' | "
           "sfdisk -q short.img", dir);
        patch_mbr("short.img", 1, 0x83, 14000, 4000);  /* ends past the 16384-sector image */
        patch_mbr("short.img", 2, 0x83, 30000, 1000);  /* starts past it */
        if (read_layout("short.img", &b) == 0) {
                const Partition *p2 = find(&b, 2), *p3 = find(&b, 3);
                CHECK(p2 && strstr(p2->note, "past the end"), "partition 2 note: %s", p2 ? p2->note : "missing");
                CHECK(p3 && p3->mapped_whole && strstr(p3->note, "past the end"), "partition 3: %s",
                      p3 ? p3->note : "missing");
        }
}

static void test_hybrid_mbr(void) {
        _cleanup_(layout_done) Layout a = {}, b = {};

        sh("cd %s && truncate -s 32M hybrid.img && printf '%s' | sfdisk -q hybrid.img && cp hybrid.img hybrid-ok.img",
           dir, "label: gpt\\nstart=2048, size=16384, type=linux\\nstart=18432, size=16384, type=linux\\n");
        /* An MBR entry that does not match partition 1: the tables disagree. */
        patch_mbr("hybrid.img", 1, 0x0c, 2048, 10000);
        if (read_layout("hybrid.img", &a) == 0) {
                const Partition *p1 = find(&a, 1), *p2 = find(&a, 2);
                CHECK(p1 && p1->mapped_whole && strstr(p1->note, "hybrid MBR"), "disputed GPT partition: %s",
                      p1 ? p1->note : "missing");
                CHECK(p2 && !p2->mapped_whole, "partition 2 undisputed");
        }
        /* A hybrid entry that matches partition 2 exactly is no dispute. */
        patch_mbr("hybrid-ok.img", 1, 0x83, 18432, 16384);
        if (read_layout("hybrid-ok.img", &b) == 0)
                for (size_t i = 0; i < b.n_parts; i++)
                        CHECK(!b.parts[i].mapped_whole, "matching hybrid entry: partition %u %s", b.parts[i].number,
                              b.parts[i].note);
}

int main(void) {
        const char *base = getenv("TEST_TMPDIR");
        snprintf(dir, sizeof(dir), "%s/test-layout.XXXXXX", base ? base : "/tmp");
        mkdir(base ? base : "/tmp", 0755);
        if (!mkdtemp(dir)) {
                perror("mkdtemp");
                return 1;
        }
        test_mbr_logical_sector63();
        test_gpt_and_backup();
        test_gpt_4k();
        test_no_table();
        test_tiny();
        test_overlap_and_past_end();
        test_hybrid_mbr();
        sh("rm -rf '%s'", dir);
        return check_exit("test-layout");
}
