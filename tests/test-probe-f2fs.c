/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The F2FS probe against volumes made by mkfs.f2fs and filled by
 * sload.f2fs: the used blocks must be exactly the metadata area and the
 * blocks dump.f2fs's SIT dump marks valid, and their number what fsck.f2fs
 * counts. Blocks moved by defrag.f2fs leave stale data behind that must
 * not be mapped. Checkpoints edited by hand: the newer pack wins, an
 * unclean one maps the current segments and the roll-forward chain, one
 * asking for fsck maps the volume whole; damaged, truncated or fuzzed
 * volumes fail or are mapped whole, never crash or map less. */
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "probe-mutants.h"
#include "checksum.h"
#include "test-helpers.h"
#include "probe.h"

#define BLK 4096u

static uint64_t file_size(const char *path) {
        struct stat st;
        return stat(path, &st) == 0 ? (uint64_t) st.st_size : 0;
}

static void put_le16(uint8_t *p, uint16_t v) {
        p[0] = (uint8_t) v;
        p[1] = (uint8_t) (v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v) {
        for (unsigned i = 0; i < 4; i++)
                p[i] = (uint8_t) (v >> (8 * i));
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
        *ret_size = buf ? n : 0;
        return buf;
}

static int probe_mem(const uint8_t *img, uint64_t image_size, uint64_t size, ProbeResult *res) {
        Reader r = reader_from_mem(img, image_size, 0, size);
        extents_clear(&res->used);
        res->how[0] = 0;
        res->fs_size = 0;
        return fsprobe_f2fs.collect(&r, "f2fs", res);
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
        int k = fsprobe_f2fs.collect(&r, "f2fs", res);
        close(fd);
        return k;
}

/* The layout, read here on its own from the first superblock. */
typedef struct Geo {
        uint64_t block_count, cp, sit, main, seg_main, seg_sit;
} Geo;

static bool geo_of(const uint8_t *img, size_t n, Geo *g) {
        const uint8_t *sb = img + 1024;
        if (n < 2 * BLK || get_le32(sb) != 0xF2F52010u)
                return false;
        *g = (Geo) {
                .block_count = get_le64(sb + 36),
                .cp = get_le32(sb + 76),
                .sit = get_le32(sb + 80),
                .main = get_le32(sb + 92),
                .seg_main = get_le32(sb + 68),
                .seg_sit = get_le32(sb + 56),
        };
        return g->main * BLK < n;
}

/* The checkpoint CRC as f2fs-tools computes it, at checksum_offset. */
static void fix_cp(uint8_t *b) {
        uint32_t off = get_le32(b + 164);
        if (off < 192 || off > 4092)
                return;
        uint32_t crc = crc32_raw(0xF2F52010u, b, off);
        if (off < 4092)
                crc = crc32_raw(crc, b + off + 4, BLK - off - 4);
        put_le32(b + off, crc);
}

static void fix_sb(uint8_t *img) {
        for (unsigned i = 0; i < 2; i++)
                if (get_le32(img + i * BLK + 1024 + 2180) & 0x800)
                        put_le32(img + i * BLK + 1024 + 3068, crc32_raw(0xF2F52010u, img + i * BLK + 1024, 3068));
}

static bool cp_ok(const uint8_t *b) {
        uint32_t off = get_le32(b + 164);
        if (off != 4092)
                return false;
        return crc32_raw(0xF2F52010u, b, off) == get_le32(b + off);
}

/* The first block of the pack in use: the valid one of higher version. */
static uint8_t *active_cp(uint8_t *img, const Geo *g, unsigned *ret_pack) {
        uint8_t *p[2] = { img + g->cp * BLK, img + (g->cp + 512) * BLK };
        unsigned use = !cp_ok(p[0]) || (cp_ok(p[1]) && (int64_t) (get_le64(p[1]) - get_le64(p[0])) > 0);
        *ret_pack = use;
        return p[use];
}

/* Sets the flags of a pack in its first and last block. */
static void set_cp_flags(uint8_t *cp, uint32_t flags) {
        uint8_t *last = cp + (get_le32(cp + 136) - 1) * BLK;
        put_le32(cp + 132, flags);
        put_le32(last + 132, flags);
        fix_cp(cp);
        fix_cp(last);
}

/* fsck.f2fs's own count of valid blocks, and whether it matched the
 * checkpoint's. */
static bool fsck_valid(const char *path, uint64_t *ret) {
        char cmd[PATH_MAX + 64], line[512];
        unsigned long long v;
        bool found = false;
        snprintf(cmd, sizeof(cmd), "fsck.f2fs --dry-run '%s' 2>&1", path);
        FILE *p = popen(cmd, "re");
        if (!p)
                return false;
        while (fgets(line, sizeof(line), p)) {
                char *s = strstr(line, "valid_block_count matching with CP");
                if (s && strstr(s, "[Ok..]") && sscanf(strstr(s, "[Ok..]") + 6, " [%llx]", &v) == 1) {
                        *ret = v;
                        found = true;
                }
        }
        pclose(p);
        return found;
}

/* The reference: the valid maps of dump.f2fs's SIT dump (journal applied),
 * plus blocks 0-1 and the metadata area. */
static bool dump_sit_ref(const char *path, const Geo *g, Extents *ref, uint64_t *ret_valid) {
        char line[512];
        uint64_t valid = 0;
        extents_clear(ref);
        extents_add(ref, 0, 2 * BLK);
        extents_add(ref, g->cp * BLK, g->main * BLK);
        if (sh("cd '%s' && rm -f dump_sit && dump.f2fs -s 0~-1 '%s' >/dev/null 2>&1", tmpdir, path) != 0)
                return false;
        FILE *f = fopen(tpath("dump_sit"), "re");
        if (!f)
                return false;
        long seg = -1;
        unsigned byte = 0, segs = 0;
        while (fgets(line, sizeof(line), f)) {
                long s;
                unsigned vb;
                if (sscanf(line, "segno: %ld vblocks: %u", &s, &vb) == 2) {
                        seg = s;
                        byte = 0;
                        segs++;
                        valid += vb;
                        continue;
                }
                unsigned v[16];
                int nv = sscanf(line, "%x %x %x %x %x %x %x %x %x %x %x %x %x %x %x %x", &v[0], &v[1], &v[2], &v[3], &v[4],
                                &v[5], &v[6], &v[7], &v[8], &v[9], &v[10], &v[11], &v[12], &v[13], &v[14], &v[15]);
                if (seg < 0 || nv != 16)
                        continue;
                for (int i = 0; i < 16; i++, byte++)
                        for (unsigned bit = 0; bit < 8; bit++)
                                if (v[i] & (0x80u >> bit)) {
                                        uint64_t blk = g->main + (uint64_t) seg * 512 + byte * 8 + bit;
                                        extents_add(ref, blk * BLK, (blk + 1) * BLK);
                                }
        }
        fclose(f);
        *ret_valid = valid;
        return segs == g->seg_main;
}

/* A tree of files: some empty or inline-sized, most a few blocks to a
 * megabyte, in nested directories. */
static void make_tree(const char *dir, unsigned files, uint64_t max_size) {
        sh("rm -rf '%s' && mkdir -p '%s/a/b' '%s/c'", dir, dir, dir);
        static uint8_t buf[65536];
        for (unsigned i = 0; i < files; i++) {
                char path[PATH_MAX];
                snprintf(path, sizeof(path), "%s/%s/f%u", dir, i % 3 == 0 ? "a/b" : i % 3 == 1 ? "c" : ".", i);
                FILE *f = fopen(path, "we");
                if (!f)
                        continue;
                uint64_t size = i % 7 == 0 ? rng() % 3000 : rng() % max_size;
                for (uint64_t done = 0; done < size;) {
                        size_t n = size - done < sizeof(buf) ? (size_t) (size - done) : sizeof(buf);
                        for (size_t j = 0; j < n; j += 8) {
                                uint64_t r = rng();
                                memcpy(buf + j, &r, n - j < 8 ? n - j : 8);
                        }
                        fwrite(buf, 1, n, f);
                        done += n;
                }
                fclose(f);
        }
}

/* Probes path and checks it block for block against dump.f2fs's SIT and
 * the count against fsck.f2fs's. */
static void check_image(const char *name, const char *path, const char *how) {
        ProbeResult res = { .used = EXTENTS_INIT };
        _cleanup_extents_ Extents ref = EXTENTS_INIT;
        size_t n;
        _cleanup_free_ uint8_t *img = load(path, &n);
        uint64_t fsck = 0, dumped = 0;
        Geo g;

        CHECK(img && geo_of(img, n, &g), "%s: cannot read the volume", name);
        if (!img || !geo_of(img, n, &g))
                return;
        int k = probe_file(path, &res);
        CHECK(k == 0, "%s: probe failed: %s", name, res.how);
        CHECK_STR_CONTAINS(res.how, how);
        CHECK(dump_sit_ref(path, &g, &ref, &dumped), "%s: cannot read dump.f2fs's SIT dump", name);
        CHECK(fsck_valid(path, &fsck), "%s: fsck.f2fs does not report a matching valid block count", name);
        /* And the warm-node log's next free block, where the kernel looks
         * for fsync'd nodes on every mount. */
        unsigned pack;
        const uint8_t *cp = active_cp(img, &g, &pack);
        uint64_t warm = g.main + get_le32(cp + 40) * 512 + get_le16(cp + 70);
        bool warm_valid = extents_contains(&ref, warm * BLK, (warm + 1) * BLK);
        extents_add(&ref, warm * BLK, (warm + 1) * BLK);
        uint64_t mapped = extents_total(&res.used), meta = (2 + g.main - g.cp) * BLK;
        uint64_t expected = meta + fsck * BLK + (warm_valid ? 0 : BLK);
        printf("%-34s %-52s valid blocks: probe %" PRIu64 ", fsck.f2fs %" PRIu64 ", dump.f2fs SIT %" PRIu64
               "; mapped %" PRIu64 ", expected %" PRIu64 " (%.2f%%)\n",
               name, res.how, (mapped - meta) / BLK, fsck, dumped, mapped, expected,
               expected ? 100.0 * ((double) mapped - (double) expected) / (double) expected : 0.0);
        CHECK(extents_equal(&res.used, &ref), "%s: the probe's blocks differ from dump.f2fs's SIT (%zu vs %zu extents)", name,
              res.used.n, ref.n);
        CHECK_U64(mapped, expected);
        CHECK_U64(dumped, fsck);
        CHECK_U64(res.fs_size, g.block_count * BLK);
        probe_result_done(&res);
}

/* mkfs.f2fs on a file of the given size, filled by sload.f2fs, checked. */
static void test_mkfs(const char *name, const char *args, const char *size, unsigned files, uint64_t max_size,
                      const char *how) {
        char file[64];
        snprintf(file, sizeof(file), "%s.img", name);
        PATH_COPY(img, file);
        PATH_COPY(tree, "tree");
        if (sh("rm -f '%s' && truncate -s %s '%s' && mkfs.f2fs -f %s '%s' >/dev/null", img, size, img, args, img) != 0)
                return;
        char empty[96];
        snprintf(empty, sizeof(empty), "%s-empty", name);
        check_image(empty, img, how);
        make_tree(tree, files, max_size);
        CHECK(sh("sload.f2fs -f '%s' '%s' >/dev/null", tree, img) == 0, "%s: sload.f2fs failed", name);
        check_image(name, img, how);

        /* defrag.f2fs moves every valid block of the first 20 MiB of the
         * main area 40 MiB on: the old blocks keep their data but are free. */
        size_t n;
        _cleanup_free_ uint8_t *buf = load(img, &n);
        Geo g;
        if (!buf || !geo_of(buf, n, &g) || g.seg_main < 60)
                return;
        CHECK(sh("defrag.f2fs -s %" PRIu64 " -l 5120 -t %" PRIu64 " '%s' >/dev/null", g.main, g.main + 10240, img) == 0,
              "%s: defrag.f2fs failed", name);
        char moved[96];
        snprintf(moved, sizeof(moved), "%s-defrag", name);
        check_image(moved, img, how);
        unlink(img);
}

/* The newer of two valid packs is used, whichever of the two it is. */
static void test_packs(void) {
        ProbeResult res = { .used = EXTENTS_INIT };
        PATH_COPY(img, "packs.img");
        PATH_COPY(tree, "tree");
        size_t n;
        Geo g;
        unsigned pack;

        make_tree(tree, 20, 200000);
        if (sh("truncate -s 64M '%s' && mkfs.f2fs -f '%s' >/dev/null && sload.f2fs -f '%s' '%s' >/dev/null", img, img, tree,
               img) != 0)
                return;
        _cleanup_free_ uint8_t *buf = load(img, &n);
        if (!buf || !geo_of(buf, n, &g))
                return;
        uint8_t *cp = active_cp(buf, &g, &pack);
        CHECK(probe_mem(buf, n, n, &res) == 0, "packs: %s", res.how);
        _cleanup_extents_ Extents before = EXTENTS_INIT;
        extents_copy(&before, &res.used);
        uint32_t total = get_le32(cp + 136);
        uint8_t *other = buf + (g.cp + (pack ? 0 : 512)) * BLK;
        /* The other pack made a copy of this one, one version newer... */
        memmove(other, cp, (size_t) total * BLK);
        put_le64(other, get_le64(cp) + 1);
        put_le64(other + (total - 1) * BLK, get_le64(cp) + 1);
        fix_cp(other);
        fix_cp(other + (total - 1) * BLK);
        CHECK(probe_mem(buf, n, n, &res) == 0, "packs: %s", res.how);
        char want[32];
        snprintf(want, sizeof(want), "checkpoint pack #%u", !pack + 1);
        CHECK_STR_CONTAINS(res.how, want);
        CHECK(extents_equal(&res.used, &before), "packs: the copied pack maps other blocks");
        printf("%-34s newer copy: %s\n", "f2fs-checkpoint-packs", res.how);
        /* ... and one older: the first stays. */
        put_le64(other, get_le64(cp) - 1);
        put_le64(other + (total - 1) * BLK, get_le64(cp) - 1);
        fix_cp(other);
        fix_cp(other + (total - 1) * BLK);
        CHECK(probe_mem(buf, n, n, &res) == 0, "packs: %s", res.how);
        snprintf(want, sizeof(want), "checkpoint pack #%u", pack + 1);
        CHECK_STR_CONTAINS(res.how, want);
        /* The newer copy with a last block of another version: invalid. */
        put_le64(other, get_le64(cp) + 1);
        fix_cp(other);
        CHECK(probe_mem(buf, n, n, &res) == 0, "packs: %s", res.how);
        CHECK_STR_CONTAINS(res.how, want);
        probe_result_done(&res);
        unlink(img);
}

/* An unclean checkpoint: the six current segments are mapped in full, and
 * a chain of fsync'd nodes after the warm-node log's next free block with
 * every block they point to. The pack is rewritten as the kernel writes
 * one outside unmount: 3 data summaries, no node summaries. */
static void test_unclean(void) {
        ProbeResult res = { .used = EXTENTS_INIT };
        PATH_COPY(img, "unclean.img");
        PATH_COPY(tree, "tree");
        size_t n;
        Geo g;
        unsigned pack;

        make_tree(tree, 30, 300000);
        if (sh("truncate -s 96M '%s' && mkfs.f2fs -f '%s' >/dev/null && sload.f2fs -f '%s' '%s' >/dev/null", img, img, tree,
               img) != 0)
                return;
        _cleanup_free_ uint8_t *buf = load(img, &n);
        if (!buf || !geo_of(buf, n, &g))
                return;
        CHECK(probe_mem(buf, n, n, &res) == 0, "unclean: %s", res.how);
        _cleanup_extents_ Extents clean = EXTENTS_INIT;
        extents_copy(&clean, &res.used);

        uint8_t *cp = active_cp(buf, &g, &pack);
        uint32_t flags = get_le32(cp + 132), total = get_le32(cp + 136);
        CHECK(flags & 1, "sload left the checkpoint without CP_UMOUNT (%08" PRIx32 ")", flags);
        if (!(flags & 4)) {
                /* Normal summaries: drop the three node summaries. */
                memmove(cp + (total - 4) * BLK, cp + (total - 1) * BLK, BLK);
                total -= 3;
                put_le32(cp + 136, total);
                put_le32(cp + (total - 1) * BLK + 136, total);
        }
        set_cp_flags(cp, flags & ~1u);
        CHECK(probe_mem(buf, n, n, &res) == 0, "unclean: %s", res.how);
        CHECK_STR_CONTAINS(res.how, "not cleanly unmounted: current segments and 0 roll-forward nodes");
        _cleanup_extents_ Extents want = EXTENTS_INIT;
        extents_copy(&want, &clean);
        for (unsigned i = 0; i < 6; i++) {
                uint64_t seg = get_le32(cp + (i < 3 ? 36 + 4 * i : 84 + 4 * (i - 3)));
                extents_add(&want, (g.main + seg * 512) * BLK, (g.main + seg * 512 + 512) * BLK);
        }
        CHECK(extents_equal(&res.used, &want), "unclean: not the clean blocks and the six current segments");
        printf("%-34s %s: mapped %" PRIu64 " (clean %" PRIu64 ")\n", "f2fs-unclean-cursegs", res.how,
               extents_total(&res.used), extents_total(&clean));

        /* Two fsync'd nodes: a direct node at the warm-node log's next free
         * block pointing at data in a free segment, chained to an inode in
         * another free segment; a third block of another version ends it. */
        uint64_t warm = g.main + get_le32(cp + 40) * 512 + get_le16(cp + 70);
        uint64_t free_seg = g.main + (g.seg_main - 2) * 512, data = g.main + (g.seg_main - 3) * 512 + 7;
        uint64_t ver = get_le64(cp);
        uint8_t *node = buf + warm * BLK;
        memset(node, 0, BLK);
        put_le32(node + 100 * 4, (uint32_t) data);
        put_le32(node + 101 * 4, 0xFFFFFFFFu);
        put_le32(node + BLK - 24, 77); /* nid */
        put_le32(node + BLK - 20, 70); /* ino */
        put_le64(node + BLK - 12, ver);
        put_le32(node + BLK - 4, (uint32_t) free_seg);
        node = buf + free_seg * BLK;
        memset(node, 0, BLK);
        put_le32(node + 360, (uint32_t) data + 1);
        put_le32(node + 100, (uint32_t) data + 2); /* not an address in an inode */
        put_le32(node + BLK - 24, 70);
        put_le32(node + BLK - 20, 70);
        put_le64(node + BLK - 12, ver);
        put_le32(node + BLK - 4, (uint32_t) free_seg + 1);
        put_le64(buf + (free_seg + 1) * BLK + BLK - 12, ver + 1);
        CHECK(probe_mem(buf, n, n, &res) == 0, "roll-forward: %s", res.how);
        CHECK_STR_CONTAINS(res.how, "2 roll-forward nodes");
        for (uint64_t b = data; b < data + 2; b++)
                CHECK(extents_contains(&res.used, b * BLK, (b + 1) * BLK), "roll-forward: data block %" PRIu64 " not mapped", b);
        CHECK(extents_contains(&res.used, free_seg * BLK, (free_seg + 1) * BLK), "roll-forward: the chained inode not mapped");
        CHECK(!extents_overlaps(&res.used, (data + 2) * BLK, (data + 3) * BLK), "roll-forward: an inode field taken for an address");
        /* The block that ends the chain is read by the kernel: mapped. */
        CHECK(extents_contains(&res.used, (free_seg + 1) * BLK, (free_seg + 2) * BLK), "roll-forward: the chain's end not mapped");
        CHECK(!extents_overlaps(&res.used, (free_seg + 2) * BLK, (free_seg + 3) * BLK), "roll-forward: a block past the chain");
        printf("%-34s %s: mapped %" PRIu64 "\n", "f2fs-roll-forward-chain", res.how, extents_total(&res.used));
        /* A chain that loops back to its start ends there. */
        put_le32(node + BLK - 4, (uint32_t) warm);
        CHECK(probe_mem(buf, n, n, &res) == 0, "roll-forward loop: %s", res.how);
        CHECK_STR_CONTAINS(res.how, "2 roll-forward nodes");
        probe_result_done(&res);
        unlink(img);
}

/* A checkpoint written by a sync under the fastboot mount option
 * (CP_FASTBOOT, CP_UMOUNT clear, then a crash) keeps the node summaries as
 * an unmount does: the kernel then reads the cold-data summary, and with
 * it the SIT journal, 7 blocks before the pack's end, not 4. A journal that
 * moved a segment's blocks elsewhere (as GC does, count unchanged) must be
 * read there: the old segment is free, the new one used. */
static void test_fastboot(void) {
        ProbeResult res = { .used = EXTENTS_INIT };
        PATH_COPY(img, "fastboot.img");
        PATH_COPY(tree, "tree");
        size_t n;
        Geo g;
        unsigned pack;

        make_tree(tree, 30, 300000);
        if (sh("truncate -s 96M '%s' && mkfs.f2fs -f '%s' >/dev/null && sload.f2fs -f '%s' '%s' >/dev/null", img, img, tree,
               img) != 0)
                return;
        _cleanup_free_ uint8_t *buf = load(img, &n);
        if (!buf || !geo_of(buf, n, &g))
                return;
        uint8_t *cp = active_cp(buf, &g, &pack);
        uint32_t flags = get_le32(cp + 132), total = get_le32(cp + 136);
        CHECK(!(flags & 4) && total >= 8, "sload.f2fs wrote a compact summary (%08" PRIx32 "): no node summaries to test",
              flags);
        if ((flags & 4) || total < 8)
                return;
        CHECK(probe_mem(buf, n, n, &res) == 0, "fastboot: %s", res.how);
        /* A: the fullest segment that is none of the current ones; T: a
         * free one. */
        uint32_t cur[6];
        for (unsigned i = 0; i < 6; i++)
                cur[i] = get_le32(cp + (i < 3 ? 36 + 4 * i : 84 + 4 * (i - 3)));
        uint32_t a = UINT32_MAX, t = UINT32_MAX;
        uint64_t most = 0;
        for (uint32_t s = 0; s < g.seg_main; s++) {
                bool current = false;
                for (unsigned i = 0; i < 6; i++)
                        current |= cur[i] == s;
                uint64_t at = (g.main + (uint64_t) s * 512) * BLK, blocks = 0;
                EXTENTS_FOREACH(x, &res.used)
                        if (x->end > at && x->start < at + 512 * BLK)
                                blocks += ((x->end < at + 512 * BLK ? x->end : at + 512 * BLK) - (x->start > at ? x->start : at)) / BLK;
                if (!current && blocks > most) {
                        a = s;
                        most = blocks;
                }
                if (!current && !blocks)
                        t = s;
        }
        CHECK(a != UINT32_MAX && t != UINT32_MAX, "fastboot: no used and free segments to move");
        if (a == UINT32_MAX || t == UINT32_MAX)
                return;
        uint8_t map[64] = {};
        unsigned count = 0;
        for (unsigned i = 0; i < 512; i++) {
                uint64_t at = (g.main + (uint64_t) a * 512 + i) * BLK;
                if (extents_contains(&res.used, at, at + BLK)) {
                        map[i / 8] |= (uint8_t) (0x80u >> (i % 8));
                        count++;
                }
        }
        /* The journal of the cold-data summary: A now empty, T holding A's
         * blocks. */
        uint8_t *sum = cp + (size_t) (total - 7 + 2) * BLK;
        unsigned nj = get_le16(sum + 3584);
        CHECK(nj <= 4, "fastboot: the SIT journal is full (%u)", nj);
        if (nj > 4)
                return;
        uint8_t *e = sum + 3586 + (size_t) nj * 78;
        memset(e, 0, 2 * 78);
        put_le32(e, a);
        put_le16(e + 4, 2u << 10);
        put_le32(e + 78, t);
        put_le16(e + 78 + 4, (uint16_t) (2u << 10 | count));
        memcpy(e + 78 + 6, map, sizeof(map));
        put_le16(sum + 3584, (uint16_t) (nj + 2));
        set_cp_flags(cp, (flags & ~1u) | 0x20);
        CHECK(probe_mem(buf, n, n, &res) == 0, "fastboot: %s", res.how);
        uint64_t ta = (g.main + (uint64_t) t * 512) * BLK, aa = (g.main + (uint64_t) a * 512) * BLK;
        unsigned missing = 0;
        for (unsigned i = 0; i < 512; i++)
                if ((map[i / 8] & (0x80u >> (i % 8))) &&
                    !extents_contains(&res.used, ta + (uint64_t) i * BLK, ta + (uint64_t) (i + 1) * BLK))
                        missing++;
        CHECK(missing == 0, "fastboot: %u of the %u blocks of segment %" PRIu32 " valid in the journal are not mapped", missing,
              count, t);
        CHECK(!extents_overlaps(&res.used, aa, aa + 512 * BLK), "fastboot: segment %" PRIu32 ", emptied in the journal, is mapped",
              a);
        printf("%-34s %s: %u blocks of segment %" PRIu32 " moved to %" PRIu32 " in the journal\n", "f2fs-fastboot-unclean",
               res.how, count, a, t);
        probe_result_done(&res);
        unlink(img);
}

/* The kernel replays fsync'd nodes on every writable mount, not only after
 * an unclean checkpoint: a volume cleanly unmounted (CP_UMOUNT), mounted
 * again, a file written and fsync'd, then power lost before the next
 * checkpoint still carries the unmount checkpoint, with the fsync'd nodes
 * chained after the warm-node log's next free block. They and their data
 * must be mapped (and the current segments, as after any crash). */
static void test_fsync_after_clean(void) {
        ProbeResult res = { .used = EXTENTS_INIT };
        PATH_COPY(img, "fsync-clean.img");
        PATH_COPY(tree, "tree");
        size_t n;
        Geo g;
        unsigned pack;

        make_tree(tree, 20, 200000);
        if (sh("truncate -s 96M '%s' && mkfs.f2fs -f '%s' >/dev/null && sload.f2fs -f '%s' '%s' >/dev/null", img, img, tree,
               img) != 0)
                return;
        _cleanup_free_ uint8_t *buf = load(img, &n);
        if (!buf || !geo_of(buf, n, &g))
                return;
        uint8_t *cp = active_cp(buf, &g, &pack);
        CHECK(get_le32(cp + 132) & 1, "sload left the checkpoint without CP_UMOUNT");
        CHECK(probe_mem(buf, n, n, &res) == 0, "fsync after clean: %s", res.how);
        _cleanup_extents_ Extents clean = EXTENTS_INIT;
        extents_copy(&clean, &res.used);

        /* A direct node at the warm-node log's next free block, pointing at
         * data in a free segment. */
        uint64_t warm = g.main + get_le32(cp + 40) * 512 + get_le16(cp + 70);
        uint64_t data = g.main + (g.seg_main - 3) * 512 + 7;
        uint8_t *node = buf + warm * BLK;
        memset(node, 0, BLK);
        put_le32(node + 10 * 4, (uint32_t) data);
        put_le32(node + BLK - 24, 77);
        put_le32(node + BLK - 20, 70);
        put_le64(node + BLK - 12, get_le64(cp));
        put_le32(node + BLK - 4, (uint32_t) warm + 1);
        CHECK(probe_mem(buf, n, n, &res) == 0, "fsync after clean: %s", res.how);
        CHECK(extents_contains(&res.used, warm * BLK, (warm + 1) * BLK), "fsync after clean: the fsync'd node is not mapped");
        CHECK(extents_contains(&res.used, data * BLK, (data + 1) * BLK), "fsync after clean: its data block is not mapped");
        CHECK_STR_CONTAINS(res.how, "1 roll-forward nodes");
        printf("%-34s %s: mapped %" PRIu64 " (clean %" PRIu64 ")\n", "f2fs-fsync-after-clean", res.how, extents_total(&res.used),
               extents_total(&clean));
        /* A node of another version there: exactly the clean blocks. */
        put_le64(node + BLK - 12, get_le64(cp) - 1);
        CHECK(probe_mem(buf, n, n, &res) == 0, "fsync after clean: %s", res.how);
        CHECK(extents_equal(&res.used, &clean), "fsync after clean: a stale node changed the clean mapping");
        probe_result_done(&res);
        unlink(img);
}

/* A damaged volume: the probe fails with a reason containing why, or maps
 * the whole partition saying why; it never maps less. */
static void check_fail_or_whole(const char *what, const uint8_t *img, uint64_t image_size, uint64_t size, const char *why) {
        ProbeResult res = { .used = EXTENTS_INIT };
        check_damaged("f2fs-corrupt", what, probe_mem(img, image_size, size, &res), &res, size, why);
        probe_result_done(&res);
}

static void test_corrupt(void) {
        ProbeResult res = { .used = EXTENTS_INIT };
        PATH_COPY(path, "corrupt.img");
        size_t n;
        Geo g;
        unsigned pack;

        if (sh("truncate -s 64M '%s' && mkfs.f2fs -f -O extra_attr,inode_checksum,sb_checksum '%s' >/dev/null", path, path) != 0)
                return;
        _cleanup_free_ uint8_t *orig = load(path, &n);
        _cleanup_free_ uint8_t *img = malloc(n);
        if (!orig || !img || !geo_of(orig, n, &g))
                return;

        /* A flipped byte in the first superblock: the backup is used; in
         * both: no filesystem. */
        memcpy(img, orig, n);
        img[1024 + 100] ^= 1;
        CHECK(probe_mem(img, n, n, &res) == 0, "first superblock flipped: %s", res.how);
        CHECK_STR_CONTAINS(res.how, "backup superblock");
        img[BLK + 1024 + 100] ^= 1;
        check_fail_or_whole("both superblocks flipped", img, n, n, "checksum mismatch");
        memcpy(img, orig, n);
        img[1024] ^= 1;
        img[BLK + 1024] ^= 1;
        check_fail_or_whole("no magic", img, n, n, "no F2FS magic");

        /* Checkpoint CRCs. */
        memcpy(img, orig, n);
        uint8_t *cp = active_cp(img, &g, &pack);
        uint8_t *other = img + (g.cp + (pack ? 0 : 512)) * BLK;
        cp[4000] ^= 1;
        other[4000] ^= 1;
        check_fail_or_whole("both checkpoint CRCs", img, n, n, "no valid checkpoint");
        memcpy(img, orig, n);
        cp = active_cp(img, &g, &pack);
        other = img + (g.cp + (pack ? 0 : 512)) * BLK;
        other[4000] ^= 1;
        cp[(get_le32(cp + 136) - 1) * BLK + 4000] ^= 1;
        check_fail_or_whole("the last block's CRC", img, n, n, "fails its CRC");

        /* Flags and features. */
        const struct {
                uint32_t set;
                const char *why;
        } flags[] = {
                { 0x10, "asks for fsck" },
                { 0x08, "asks for fsck" },
                { 0x1000, "checkpointing disabled" },
                { 0x4000, "resize in progress" },
                { 0x10000, "unknown checkpoint flags" },
        };
        for (size_t i = 0; i < ELEMENTSOF(flags); i++) {
                char what[64];
                memcpy(img, orig, n);
                cp = active_cp(img, &g, &pack);
                set_cp_flags(cp, get_le32(cp + 132) | flags[i].set);
                snprintf(what, sizeof(what), "checkpoint flag %" PRIx32, flags[i].set);
                check_fail_or_whole(what, img, n, n, flags[i].why);
        }
        const struct {
                size_t at;
                uint32_t v;
                const char *why;
        } sb[] = {
                { 2180, 0x8802, "zoned" },
                { 2180, 0x10800, "unknown features" },
                { 2180, 0x4800, "unknown features" },
                { 2201, 0x6564, "multi-device" },
                { 2794, 1, "recorded errors" },
                { 16, 13, "only 4 KiB blocks" },
                { 20, 10, "not 512" },
                { 92, 0, "do not follow" },
                { 68, 0xFFFFFFF, "main area ends" },
                { 36, 0xFFFFFFF, "larger than its partition" },
                { 56, 1, "do not follow" },
                { 1664, 5000, "cp_payload" },
        };
        for (size_t i = 0; i < ELEMENTSOF(sb); i++) {
                char what[64];
                memcpy(img, orig, n);
                for (unsigned c = 0; c < 2; c++) {
                        uint8_t *s = img + c * BLK + 1024 + sb[i].at;
                        if (sb[i].at == 2180)
                                put_le32(s, sb[i].v);
                        else if (sb[i].at == 2201 || sb[i].at == 2794)
                                s[0] = (uint8_t) sb[i].v;
                        else
                                put_le32(s, sb[i].v);
                }
                fix_sb(img);
                snprintf(what, sizeof(what), "superblock byte %zu = %" PRIx32, sb[i].at, sb[i].v);
                check_fail_or_whole(what, img, n, n, sb[i].why);
        }
        memcpy(img, orig, n);
        put_le64(img + 1024 + 36, n / BLK + 1);
        put_le64(img + BLK + 1024 + 36, n / BLK + 1);
        fix_sb(img);
        check_fail_or_whole("block count past the partition", img, n, n, "larger than its partition");
        check_fail_or_whole("partition a block short", orig, n, n - BLK, "larger than its partition");

        /* The SIT: a journal entry past the main area, too many entries, an
         * entry whose count is not its map, a table entry that disagrees
         * with the checkpoint's count. mkfs writes a compact summary. */
        memcpy(img, orig, n);
        cp = active_cp(img, &g, &pack);
        CHECK(get_le32(cp + 132) & 4, "mkfs.f2fs wrote no compact summary");
        uint8_t *sum = cp + get_le32(cp + 140) * BLK;
        CHECK(get_le16(sum + 507) > 0, "mkfs.f2fs left the SIT journal empty");
        put_le32(sum + 509, (uint32_t) g.seg_main);
        check_fail_or_whole("SIT journal segment = main segments", img, n, n, "past the main area");
        put_le32(sum + 509, 0xFFFFFFFF);
        check_fail_or_whole("SIT journal segment 2^32-1", img, n, n, "past the main area");
        memcpy(img, orig, n);
        cp = active_cp(img, &g, &pack);
        sum = cp + get_le32(cp + 140) * BLK;
        put_le16(sum + 507, 7);
        check_fail_or_whole("7 SIT journal entries", img, n, n, "at most 6");
        memcpy(img, orig, n);
        cp = active_cp(img, &g, &pack);
        sum = cp + get_le32(cp + 140) * BLK;
        put_le16(sum + 513, (uint16_t) (get_le16(sum + 513) + 1));
        check_fail_or_whole("SIT count one more than the map", img, n, n, "its map");
        put_le16(sum + 513, 0x3FF);
        check_fail_or_whole("SIT count 1023", img, n, n, "valid blocks of type");
        memcpy(img, orig, n);
        /* Segment 20 of the table (not in the journal): one valid block. */
        uint8_t *e = img + g.sit * BLK + 20 * 74;
        put_le16(e, 1);
        e[2] = 0x80;
        check_fail_or_whole("a SIT table block the checkpoint does not count", img, n, n, "the checkpoint counts");
        /* The same block in the second SIT copy, chosen by the bitmap: the
         * first copy is then not read. */
        memcpy(img, orig, n);
        cp = active_cp(img, &g, &pack);
        memcpy(img + (g.sit + g.seg_sit / 2 * 512) * BLK, img + g.sit * BLK, BLK);
        img[g.sit * BLK + 20 * 74] = 0xFF;
        cp[192] |= 0x80;
        fix_cp(cp);
        CHECK(probe_mem(img, n, n, &res) == 0, "SIT block 0 from the second copy: %s", res.how);
        cp[192] &= 0x7F;
        fix_cp(cp);
        check_fail_or_whole("SIT block 0 from the damaged first copy", img, n, n, "segment 20");

        /* A table entry whose count says 0 while its map marks blocks
         * valid, the checkpoint's count lowered to match: the kernel
         * refuses such an entry (fsck then keeps what files point at), so
         * its blocks must not be taken as free. */
        memcpy(img, orig, n);
        cp = active_cp(img, &g, &pack);
        {
                /* mkfs keeps its counts in the SIT journal (compact summary). */
                uint8_t *ent = cp + get_le32(cp + 140) * BLK + 509 + 4;
                unsigned count = get_le16(ent) & 0x3FF;
                CHECK(count > 0, "mkfs.f2fs's first SIT journal entry counts no block");
                if (count > 0) {
                        put_le16(ent, (uint16_t) (get_le16(ent) & ~0x3FFu));
                        uint8_t *last = cp + (get_le32(cp + 136) - 1) * BLK;
                        put_le64(cp + 16, get_le64(cp + 16) - count);
                        put_le64(last + 16, get_le64(last + 16) - count);
                        fix_cp(cp);
                        fix_cp(last);
                        check_fail_or_whole("a SIT count of 0 over a marked map", img, n, n, "its map");
                }
        }

        /* Truncated images. */
        check_fail_or_whole("truncated to half", orig, n / 2, n, "last block of the main area");
        check_fail_or_whole("truncated to 3 KiB", orig, 3072, n, "superblock");
        check_fail_or_whole("one block short", orig, n - BLK, n, "last block of the main area");
        probe_result_done(&res);
        unlink(path);
}

/* Random damage to a filled volume must never crash, read outside the
 * region or map outside it. The hot zones: the superblock, the checkpoint
 * and its summary, the SIT; CRCs are mostly made to match again. */
static void mutate_image(unsigned rounds) {
        PATH_COPY(path, "m.img");
        PATH_COPY(tree, "tree");
        size_t n;
        Geo g;
        unsigned pack;
        make_tree(tree, 10, 100000);
        if (sh("truncate -s 64M '%s' && mkfs.f2fs -f -O extra_attr,inode_checksum,sb_checksum '%s' >/dev/null && "
               "sload.f2fs -f '%s' '%s' >/dev/null",
               path, path, tree, path) != 0)
                return;
        _cleanup_free_ uint8_t *orig = load(path, &n);
        _cleanup_free_ uint8_t *img = malloc(n);
        ProbeResult res = { .used = EXTENTS_INIT };
        unsigned ok = 0;
        if (!orig || !img || !geo_of(orig, n, &g))
                return;
        memcpy(img, orig, n);
        uint8_t *cp = active_cp(img, &g, &pack);
        size_t cp_at = (size_t) (cp - img), total = get_le32(cp + 136);
        for (unsigned round = 0; round < rounds; round++) {
                unsigned changes = 1 + (unsigned) (rng() % 6);
                for (unsigned c = 0; c < changes; c++) {
                        uint64_t zone = rng() % 4;
                        size_t at = zone == 0   ? 1024 + (size_t) (rng() % 128)
                                    : zone == 1 ? cp_at + (size_t) (rng() % 256)
                                    : zone == 2 ? cp_at + (size_t) (rng() % (total * BLK))
                                                : (size_t) (g.sit * BLK + rng() % (2 * BLK));
                        img[at] = rng() % 3 ? (uint8_t) rng() : (uint8_t) (img[at] ^ (1u << (rng() % 8)));
                }
                if (rng() % 4) {
                        fix_sb(img);
                        fix_cp(img + cp_at);
                        fix_cp(img + cp_at + (total - 1) * BLK);
                }
                uint64_t image_size = rng() % 8 ? n : rng() % n;
                uint64_t size = rng() % 8 ? n : rng() % (2 * n);
                int k = probe_mem(img, image_size, size, &res);
                if (check_mutant(k, &res, size, round))
                        ok++;
                if (round % 4 == 3)
                        memcpy(img, orig, n);
        }
        printf("%-34s %u of %u mutations still parsed\n", "f2fs-mutations", ok, rounds);
        probe_result_done(&res);
        unlink(path);
}

int main(void) {
        const char *base = getenv("TEST_TMPDIR");
        if (system("command -v mkfs.f2fs >/dev/null && command -v sload.f2fs >/dev/null && command -v fsck.f2fs >/dev/null && "
                   "command -v dump.f2fs >/dev/null && command -v defrag.f2fs >/dev/null") != 0) {
                printf("test-probe-f2fs: f2fs-tools missing, skipped\n");
                return 77;
        }
        if (!base || !*base)
                base = "/tmp";
        if (sh("mkdir -p '%s'", base) != 0)
                return 1;
        snprintf(tmpdir, sizeof(tmpdir), "%s/test-probe-f2fs-XXXXXX", base);
        if (!mkdtemp(tmpdir)) {
                perror("mkdtemp");
                return 1;
        }

        test_mkfs("f2fs-default-96M", "", "96M", 30, 250000, "SIT, checkpoint pack #1");
        test_mkfs("f2fs-checksums-160M", "-O extra_attr,inode_checksum,sb_checksum", "160M", 60, 1500000, "SIT");
        test_mkfs("f2fs-2-segs-per-section", "-s 2", "128M", 50, 1000000, "SIT");
        test_mkfs("f2fs-sections-zones", "-s 4 -z 2 -O extra_attr,compression", "256M", 40, 2000000, "SIT");
        test_packs();
        test_unclean();
        test_fastboot();
        test_fsync_after_clean();
        test_corrupt();
        mutate_image(600);

        sh("rm -rf '%s'", tmpdir);
        return check_exit("test-probe-f2fs");
}
