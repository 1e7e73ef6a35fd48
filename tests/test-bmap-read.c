/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The bmap reader: the peer test data, every refusal (each built in memory
 * with exactly one defect), the liberties the format allows, and hostile
 * XML. */
#include <errno.h>
#include <glob.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bmap.h"
#include "check.h"
#include "extents.h"
#include "util.h"

/* The name in-memory bmaps are parsed under; every message must carry it. */
#define NAME "mem.bmap"

#define H40A "0123456789abcdef0123456789abcdef01234567"
#define H40B "89abcdef0123456789abcdef0123456789abcdef"
#define H64A "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define H64B "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
#define Z40 "0000000000000000000000000000000000000000"
#define Z64 Z40 "000000000000000000000000"

static const char *testdata;

/* ------------------------------------------------------------------------ */
/* Building bmap texts */

/* Marks a file-checksum field to be filled in with the right digest. */
static const char FIXUP[] = "(fixup)";

typedef struct BmapSpec {
        const char *prolog;  /* between the XML declaration and the root element */
        const char *root;    /* the root element's name */
        const char *version; /* the version attribute's value; NULL: no attribute */
        /* Each element's text; NULL leaves the element out. */
        const char *image_size, *block_size, *blocks_count, *mapped_count, *checksum_type;
        const char *file_checksum_element; /* BmapFileChecksum or BmapFileSHA1 */
        const char *file_checksum;         /* text, FIXUP, or NULL */
        const char *before_block_map;      /* raw XML just before <BlockMap> */
        const char *block_map;             /* the <Range> lines; NULL: no <BlockMap> */
        const char *after_block_map;       /* raw XML after </BlockMap> */
} BmapSpec;

/* A valid 2.0 bmap: 40000 bytes in 10 blocks of 4096 (the last one partial),
 * blocks 0-3 and 7-8 mapped. */
static BmapSpec spec_v20(void) {
        return (BmapSpec) {
                .root = "bmap",
                .version = "2.0",
                .image_size = " 40000 ",
                .block_size = " 4096 ",
                .blocks_count = " 10 ",
                .mapped_count = " 6 ",
                .checksum_type = "sha256",
                .file_checksum_element = "BmapFileChecksum",
                .file_checksum = FIXUP,
                .block_map = "        <Range chksum=\"" H64A "\"> 0-3 </Range>\n"
                             "        <Range chksum=\"" H64B "\"> 7-8 </Range>\n",
        };
}

/* The same image as a 1.2 bmap: sha1 ranges, no file checksum. */
static BmapSpec spec_v12(void) {
        return (BmapSpec) {
                .root = "bmap",
                .version = "1.2",
                .image_size = " 40000 ",
                .block_size = " 4096 ",
                .blocks_count = " 10 ",
                .mapped_count = " 6 ",
                .file_checksum_element = "BmapFileSHA1",
                .block_map = "        <Range sha1=\"" H40A "\"> 0-3 </Range>\n"
                             "        <Range sha1=\"" H40B "\"> 7-8 </Range>\n",
        };
}

/* Fills the first file-checksum field of text (which must hold 40 or 64
 * zeros) with the digest bmaptool would have written there. */
static int fix_file_checksum(char *text, size_t len) {
        static const char *const tags[] = { "<BmapFileChecksum>", "<BmapFileSHA1>" };
        char *field = NULL;

        for (size_t i = 0; i < ELEMENTSOF(tags) && !field; i++) {
                char *open = strstr(text, tags[i]);
                if (open)
                        field = open + strlen(tags[i]);
        }
        if (!field)
                return -ENOENT;
        field += strspn(field, " \t\r\n");
        size_t n = strspn(field, "0");
        ChecksumType t = n == 40 ? CHECKSUM_SHA1 : n == 64 ? CHECKSUM_SHA256 : CHECKSUM_NONE;
        if (t == CHECKSUM_NONE)
                return -EINVAL;

        uint8_t digest[CHECKSUM_MAX_SIZE];
        char hex[2 * CHECKSUM_MAX_SIZE + 1];
        int r = bmap_file_checksum(text, len, t, (size_t) (field - text), n, digest);
        if (r < 0)
                return r;
        hex_encode(digest, checksum_size(t), hex);
        memcpy(field, hex, n);
        return 0;
}

static void print_element(FILE *f, const char *name, const char *text) {
        if (text)
                fprintf(f, "    <%s>%s</%s>\n", name, text, name);
}

/* Renders a spec, its file checksum fixed up when asked. */
static char *build_bmap(const BmapSpec *s, size_t *ret_len) {
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (!f)
                return NULL;

        fputs("<?xml version=\"1.0\" ?>\n", f);
        if (s->prolog)
                fputs(s->prolog, f);
        fprintf(f, "<%s", s->root);
        if (s->version)
                fprintf(f, " version=\"%s\"", s->version);
        fputs(">\n", f);
        print_element(f, "ImageSize", s->image_size);
        print_element(f, "BlockSize", s->block_size);
        print_element(f, "BlocksCount", s->blocks_count);
        print_element(f, "MappedBlocksCount", s->mapped_count);
        print_element(f, "ChecksumType", s->checksum_type);
        if (s->file_checksum == FIXUP) {
                bool sha1 = strcmp(s->file_checksum_element, "BmapFileSHA1") == 0 ||
                            (s->checksum_type && strcmp(s->checksum_type, "sha1") == 0);
                print_element(f, s->file_checksum_element, sha1 ? " " Z40 " " : " " Z64 " ");
        } else
                print_element(f, s->file_checksum_element, s->file_checksum);
        if (s->before_block_map)
                fputs(s->before_block_map, f);
        if (s->block_map)
                fprintf(f, "    <BlockMap>\n%s    </BlockMap>\n", s->block_map);
        if (s->after_block_map)
                fputs(s->after_block_map, f);
        fprintf(f, "</%s>\n", s->root);
        if (fclose(f) != 0) {
                free(text);
                return NULL;
        }
        if (s->file_checksum == FIXUP && fix_file_checksum(text, len) < 0) {
                free(text);
                return NULL;
        }
        *ret_len = len;
        return text;
}

static int parse_spec(const BmapSpec *s, bool allow_bad, Bmap *b, Diag *d) {
        size_t len = 0;
        char *text = build_bmap(s, &len);
        if (!text)
                return diag_set(d, -ENOMEM, "(the test could not build the bmap)");
        int r = bmap_parse(text, len, NAME, allow_bad, b, d);
        free(text);
        return r;
}

static int parse_str(const char *text, Bmap *b, Diag *d) {
        return bmap_parse(text, strlen(text), NAME, false, b, d);
}

/* Like parse_str, for a hand-written text holding a zeroed file checksum. */
static int parse_fixed(const char *text, Bmap *b, Diag *d) {
        char *copy = strdup(text);
        if (!copy || fix_file_checksum(copy, strlen(copy)) < 0) {
                free(copy);
                return diag_set(d, -ENOMEM, "(the test could not fix the file checksum)");
        }
        int r = bmap_parse(copy, strlen(copy), NAME, false, b, d);
        free(copy);
        return r;
}

/* A refusal: -EBADMSG, and a message that names the file and says why. */
#define CHECK_REFUSED(expr, d, phrase)                                                                   \
        do {                                                                                             \
                int rv_ = (expr);                                                                        \
                CHECK(rv_ == -EBADMSG, "%s returned %d, expected -EBADMSG (message: '%s')", #expr, rv_, \
                      (d).msg);                                                                          \
                CHECK_STR_CONTAINS((d).msg, NAME);                                                       \
                CHECK_STR_CONTAINS((d).msg, phrase);                                                     \
        } while (0)

#define CHECK_ACCEPTED(expr, d)                                                                            \
        do {                                                                                               \
                int rv_ = (expr);                                                                          \
                CHECK(rv_ == 0, "%s returned %d, expected 0 (message: '%s')", #expr, rv_, (d).msg);        \
        } while (0)

/* One spec, refused with phrase in the message. */
#define REFUSE_SPEC(spec, phrase)                                                     \
        do {                                                                          \
                Bmap bm_ = {};                                                        \
                Diag dg_ = {};                                                        \
                CHECK_REFUSED(parse_spec(&(spec), false, &bm_, &dg_), dg_, phrase);   \
                bmap_done(&bm_);                                                      \
        } while (0)

#define REFUSE_STR(text, phrase)                                          \
        do {                                                                  \
                Bmap bm_ = {};                                                \
                Diag dg_ = {};                                                \
                CHECK_REFUSED(parse_str(text, &bm_, &dg_), dg_, phrase);      \
                bmap_done(&bm_);                                              \
        } while (0)

static bool ranges_sorted(const Bmap *b) {
        for (size_t i = 0; i < b->n_ranges; i++) {
                if (b->ranges[i].blocks.start >= b->ranges[i].blocks.end)
                        return false;
                if (i > 0 && b->ranges[i].blocks.start < b->ranges[i - 1].blocks.end)
                        return false;
        }
        return true;
}

static uint64_t ranges_total(const Bmap *b) {
        uint64_t t = 0;
        for (size_t i = 0; i < b->n_ranges; i++)
                t += b->ranges[i].blocks.end - b->ranges[i].blocks.start;
        return t;
}

static double seconds_since(const struct timespec *start) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        return (double) (now.tv_sec - start->tv_sec) + (double) (now.tv_nsec - start->tv_nsec) / 1e9;
}

static char *data_path(const char *rel) {
        char *p = NULL;
        if (asprintf(&p, "%s/%s", testdata, rel) < 0)
                return NULL;
        return p;
}

/* ------------------------------------------------------------------------ */
/* The peer test data */

static void test_bmaptool_files(void) {
        static const struct {
                const char *file;
                unsigned major, minor;
                ChecksumType type;
                FileChecksumState state;
                unsigned first_range_line, last_range_line;
        } cases[] = {
                { "bmaptool/test.image.bmap.v1.2", 1, 2, CHECKSUM_SHA1, FILE_CHECKSUM_ABSENT, 38, 85 },
                { "bmaptool/test.image.bmap.v1.3", 1, 3, CHECKSUM_SHA1, FILE_CHECKSUM_OK, 45, 92 },
                { "bmaptool/test.image.bmap.v1.4", 1, 4, CHECKSUM_SHA256, FILE_CHECKSUM_OK, 48, 95 },
                { "bmaptool/test.image.bmap.v2.0", 2, 0, CHECKSUM_SHA256, FILE_CHECKSUM_OK, 48, 95 },
                { "blockmap/stringified.bmap", 2, 0, CHECKSUM_SHA256, FILE_CHECKSUM_OK, 10, 57 },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *path = data_path(cases[i].file);
                Bmap b = {};
                Diag d = {};
                int r = bmap_load(path, false, &b, &d);
                CHECK(r == 0, "%s: bmap_load returned %d: %s", cases[i].file, r, d.msg);
                if (r < 0)
                        continue;
                CHECK(b.version_major == cases[i].major && b.version_minor == cases[i].minor,
                      "%s: version %u.%u, expected %u.%u", cases[i].file, b.version_major, b.version_minor,
                      cases[i].major, cases[i].minor);
                CHECK_U64(b.image_size, 821752);
                CHECK_U64(b.block_size, 4096);
                CHECK_U64(b.blocks_count, 201);
                CHECK_U64(b.mapped_count, 117);
                CHECK_U64(b.n_ranges, 48);
                CHECK_U64(ranges_total(&b), 117);
                CHECK(b.checksum_type == cases[i].type, "%s: checksum type %s, expected %s", cases[i].file,
                      checksum_name(b.checksum_type), checksum_name(cases[i].type));
                CHECK(b.file_checksum == cases[i].state, "%s: file checksum state %d, expected %d",
                      cases[i].file, b.file_checksum, cases[i].state);
                CHECK(ranges_sorted(&b), "%s: ranges not sorted and disjoint", cases[i].file);
                if (b.n_ranges == 48) {
                        size_t every = 0;
                        for (size_t k = 0; k < b.n_ranges; k++)
                                every += b.ranges[k].has_checksum;
                        CHECK_U64(every, 48);
                        /* The first and the last range: 0-1 and 198-199. */
                        CHECK_U64(b.ranges[0].blocks.start, 0);
                        CHECK_U64(b.ranges[0].blocks.end, 2);
                        CHECK_U64(b.ranges[47].blocks.start, 198);
                        CHECK_U64(b.ranges[47].blocks.end, 200);
                        /* Range 0-1's checksum, decoded. */
                        if (cases[i].type == CHECKSUM_SHA256)
                                CHECK(b.ranges[0].checksum[0] == 0x9e && b.ranges[0].checksum[1] == 0xaf &&
                                              b.ranges[0].checksum[31] == 0x00,
                                      "%s: range 0-1 checksum decoded wrong", cases[i].file);
                        else
                                CHECK(b.ranges[0].checksum[0] == 0x94 && b.ranges[0].checksum[1] == 0x78 &&
                                              b.ranges[0].checksum[19] == 0x5a,
                                      "%s: range 0-1 checksum decoded wrong", cases[i].file);
                        /* BmapRange.line is where the range stands in the file. */
                        CHECK(b.ranges[0].line == cases[i].first_range_line,
                              "%s: range 0-1 is said to be on line %u; it is on line %u", cases[i].file,
                              b.ranges[0].line, cases[i].first_range_line);
                        CHECK(b.ranges[47].line == cases[i].last_range_line,
                              "%s: range 198-199 is said to be on line %u; it is on line %u", cases[i].file,
                              b.ranges[47].line, cases[i].last_range_line);
                }

                /* The mapped set: the same 117 blocks in 48 extents (the
                 * writer merged adjacent ranges, so none merge here). */
                _cleanup_extents_ Extents e = EXTENTS_INIT;
                r = bmap_mapped_blocks(&b, &e);
                CHECK(r == 0, "%s: bmap_mapped_blocks returned %d", cases[i].file, r);
                CHECK_U64(extents_total(&e), 117);
                CHECK_U64(e.n, 48);
                bmap_done(&b);
        }
}

static void test_bad_file_checksum_files(void) {
        static const char *const files[] = {
                "blockmap/invalid/file-checksum/version-1.3.bmap",
                "blockmap/invalid/file-checksum/version-1.4.bmap",
                "blockmap/invalid/file-checksum/version-2.0.bmap",
        };
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                _cleanup_free_ char *path = data_path(files[i]);
                Bmap b = {};
                Diag d = {};
                int r = bmap_load(path, false, &b, &d);
                CHECK(r == -EBADMSG, "%s: bmap_load returned %d, expected -EBADMSG", files[i], r);
                CHECK_STR_CONTAINS(d.msg, path);
                CHECK_STR_CONTAINS(d.msg, "checksum");
                bmap_done(&b);

                d = (Diag) {};
                r = bmap_load(path, true, &b, &d);
                CHECK(r == 0, "%s: with allow_bad_file_checksum: %d: %s", files[i], r, d.msg);
                CHECK(b.file_checksum == FILE_CHECKSUM_BAD, "%s: file checksum state %d, expected BAD", files[i],
                      b.file_checksum);
                CHECK_U64(b.mapped_count, 117);
                CHECK_U64(b.n_ranges, 48);
                bmap_done(&b);
        }
}

/* Each file matching pattern is refused, its message naming every phrase
 * and none of the absent ones. */
static void refuse_files(const char *pattern, size_t expect_n, const char *const *phrases,
                         const char *const *absent) {
        _cleanup_free_ char *full = data_path(pattern);
        glob_t g = {};

        int r = glob(full, 0, NULL, &g);
        CHECK(r == 0 && g.gl_pathc == expect_n, "%s: %zu files, expected %zu", full, r == 0 ? g.gl_pathc : 0,
              expect_n);
        for (size_t i = 0; r == 0 && i < g.gl_pathc; i++) {
                Bmap b = {};
                Diag d = {};
                int q = bmap_load(g.gl_pathv[i], true, &b, &d);
                CHECK(q == -EBADMSG, "%s: bmap_load returned %d, expected -EBADMSG", g.gl_pathv[i], q);
                CHECK_STR_CONTAINS(d.msg, g.gl_pathv[i]);
                for (size_t k = 0; phrases[k]; k++)
                        CHECK_STR_CONTAINS(d.msg, phrases[k]);
                for (size_t k = 0; absent && absent[k]; k++)
                        CHECK(!strstr(d.msg, absent[k]), "'%s' names '%s', which is intact", d.msg, absent[k]);
                bmap_done(&b);
        }
        globfree(&g);
}

static void test_bad_range_files(void) {
        static const char *const one[] = { "119-133", NULL };
        static const char *const intact[] = { "15-18", "191", NULL };
        static const char *const three[] = { "15-18", "119-133", "191", NULL };

        refuse_files("blockmap/invalid/range/version-*.bmap", 4, one, intact);
        refuse_files("blockmap/invalid/range/multiple-*.bmap", 4, three, NULL);
}

static void test_load_missing(void) {
        Bmap b = {};
        Diag d = {};
        _cleanup_free_ char *path = data_path("no-such.bmap");
        int r = bmap_load(path, false, &b, &d);
        CHECK(r == -ENOENT, "bmap_load of a missing file returned %d, expected -ENOENT", r);
        CHECK_STR_CONTAINS(d.msg, path);
}

/* ------------------------------------------------------------------------ */
/* Refusals, one defect each */

static void test_builder_baseline(void) {
        /* The builders themselves make valid bmaps, so that each refusal
         * below is down to its one defect. */
        BmapSpec s = spec_v20();
        Bmap b = {};
        Diag d = {};
        CHECK_ACCEPTED(parse_spec(&s, false, &b, &d), d);
        CHECK(b.version_major == 2 && b.version_minor == 0, "version %u.%u", b.version_major, b.version_minor);
        CHECK_U64(b.image_size, 40000);
        CHECK_U64(b.block_size, 4096);
        CHECK_U64(b.blocks_count, 10);
        CHECK_U64(b.mapped_count, 6);
        CHECK(b.checksum_type == CHECKSUM_SHA256, "type %s", checksum_name(b.checksum_type));
        CHECK(b.file_checksum == FILE_CHECKSUM_OK, "file checksum state %d", b.file_checksum);
        CHECK_U64(b.n_ranges, 2);
        if (b.n_ranges == 2) {
                CHECK_U64(b.ranges[0].blocks.start, 0);
                CHECK_U64(b.ranges[0].blocks.end, 4);
                CHECK_U64(b.ranges[1].blocks.start, 7);
                CHECK_U64(b.ranges[1].blocks.end, 9);
                CHECK(b.ranges[0].has_checksum && b.ranges[0].checksum[0] == 0x01 &&
                              b.ranges[0].checksum[31] == 0xef,
                      "range 0-3's checksum decoded wrong");
                CHECK(b.ranges[1].has_checksum && b.ranges[1].checksum[0] == 0xfe &&
                              b.ranges[1].checksum[31] == 0x10,
                      "range 7-8's checksum decoded wrong");
        }
        bmap_done(&b);

        /* A file checksum that is not right for the text is caught. */
        s.file_checksum = " " H64A " ";
        d = (Diag) {};
        CHECK_REFUSED(parse_spec(&s, false, &b, &d), d, "checksum does not match");
        bmap_done(&b);
        d = (Diag) {};
        CHECK_ACCEPTED(parse_spec(&s, true, &b, &d), d);
        CHECK(b.file_checksum == FILE_CHECKSUM_BAD, "file checksum state %d, expected BAD", b.file_checksum);
        bmap_done(&b);

        s = spec_v12();
        d = (Diag) {};
        CHECK_ACCEPTED(parse_spec(&s, false, &b, &d), d);
        CHECK(b.version_major == 1 && b.version_minor == 2, "version %u.%u", b.version_major, b.version_minor);
        CHECK(b.checksum_type == CHECKSUM_SHA1, "type %s", checksum_name(b.checksum_type));
        CHECK(b.file_checksum == FILE_CHECKSUM_ABSENT, "file checksum state %d", b.file_checksum);
        CHECK_U64(b.n_ranges, 2);
        bmap_done(&b);

        /* 1.3: BmapFileSHA1. */
        s = spec_v12();
        s.version = "1.3";
        s.file_checksum = FIXUP;
        d = (Diag) {};
        CHECK_ACCEPTED(parse_spec(&s, false, &b, &d), d);
        CHECK(b.file_checksum == FILE_CHECKSUM_OK, "file checksum state %d", b.file_checksum);
        bmap_done(&b);

        /* 2.0 with sha1 throughout. */
        s = spec_v20();
        s.checksum_type = "sha1";
        s.block_map = "        <Range chksum=\"" H40A "\"> 0-3 </Range>\n"
                      "        <Range chksum=\"" H40B "\"> 7-8 </Range>\n";
        d = (Diag) {};
        CHECK_ACCEPTED(parse_spec(&s, false, &b, &d), d);
        CHECK(b.checksum_type == CHECKSUM_SHA1, "type %s", checksum_name(b.checksum_type));
        CHECK(b.file_checksum == FILE_CHECKSUM_OK, "file checksum state %d", b.file_checksum);
        bmap_done(&b);
}

static void test_refuse_version(void) {
        static const char *const not_major_minor[] = { "2", "2.", ".0", "2.0.1", "two", "", "2.x", "-1.0", "2,0" };
        BmapSpec s = spec_v20();

        s.version = "3.0";
        REFUSE_SPEC(s, "newer than this bmapscan reads");
        s.version = "10.1";
        REFUSE_SPEC(s, "newer than this bmapscan reads");
        s.version = "0.9";
        REFUSE_SPEC(s, "does not exist");
        for (size_t i = 0; i < ELEMENTSOF(not_major_minor); i++) {
                s.version = not_major_minor[i];
                REFUSE_SPEC(s, "is not MAJOR.MINOR");
        }
        s.version = NULL;
        REFUSE_SPEC(s, "has no version attribute");

        /* 2.x minor versions are read. */
        s.version = "2.7";
        Bmap b = {};
        Diag d = {};
        CHECK_ACCEPTED(parse_spec(&s, false, &b, &d), d);
        CHECK(b.version_major == 2 && b.version_minor == 7, "version %u.%u", b.version_major, b.version_minor);
        bmap_done(&b);
}

static void test_refuse_counts(void) {
        BmapSpec s = spec_v20();
        s.blocks_count = "11";
        REFUSE_SPEC(s, "<BlocksCount> 11 does not match ImageSize 40000 / BlockSize 4096 = 10 blocks");
        s.blocks_count = "9"; /* rounded down */
        REFUSE_SPEC(s, "<BlocksCount> 9 does not match");

        s = spec_v20();
        s.mapped_count = "7";
        REFUSE_SPEC(s, "<MappedBlocksCount> 7 does not match the 6 blocks the ranges hold");
        s.mapped_count = "0";
        REFUSE_SPEC(s, "<MappedBlocksCount> 0 does not match the 6 blocks");

        s = spec_v20();
        s.block_size = "0";
        REFUSE_SPEC(s, "<BlockSize> is 0");

        s = spec_v20();
        s.image_size = "18446744073709551615";
        REFUSE_SPEC(s, "absurd size");
        s.image_size = "40000";
        s.block_size = "8589934592"; /* 8 GiB blocks */
        s.blocks_count = "1";
        REFUSE_SPEC(s, "absurd size");
}

static void test_refuse_ranges(void) {
        BmapSpec s = spec_v12();

        s.block_map = "        <Range> 7-8 </Range>\n"
                      "        <Range> 0-3 </Range>\n";
        REFUSE_SPEC(s, "range 0-3 is out of order: it comes after range 7-8");

        s.block_map = "        <Range> 0-3 </Range>\n"
                      "        <Range> 3-4 </Range>\n";
        s.mapped_count = "6";
        REFUSE_SPEC(s, "range 3-4 overlaps the previous range 0-3");

        s.block_map = "        <Range> 0-5 </Range>\n"
                      "        <Range> 2 </Range>\n";
        REFUSE_SPEC(s, "overlaps the previous range 0-5");

        s.block_map = "        <Range> 10-5 </Range>\n";
        REFUSE_SPEC(s, "range 10-5 is reversed");

        s.block_map = "        <Range> 0-3 </Range>\n"
                      "        <Range> 8-9 </Range>\n"
                      "        <Range> 10 </Range>\n";
        s.mapped_count = "7";
        REFUSE_SPEC(s, "range 10-10 lies beyond the image's 10 blocks");
        s.block_map = "        <Range> 0-3 </Range>\n"
                      "        <Range> 8-11 </Range>\n";
        s.mapped_count = "8";
        REFUSE_SPEC(s, "range 8-11 lies beyond the image's 10 blocks");

        /* Ranges whose last block is the largest number: last + 1 must not
         * wrap around to make them look empty or inside the image. */
        s.block_map = "        <Range> 18446744073709551615 </Range>\n";
        s.mapped_count = "1";
        REFUSE_SPEC(s, "18446744073709551615");
        s.block_map = "        <Range> 0-18446744073709551615 </Range>\n";
        s.mapped_count = "0";
        REFUSE_SPEC(s, "18446744073709551615");
        s.block_map = "        <Range> 5-18446744073709551615 </Range>\n";
        s.mapped_count = "18446744073709551611";
        REFUSE_SPEC(s, "18446744073709551615");

        static const char *const not_ranges[] = { "12a", "a", "", "-", "3-", "-3", "1-2-3", "+1", "1 2", "0x10",
                                                 "1..2" };
        s.mapped_count = "1";
        for (size_t i = 0; i < ELEMENTSOF(not_ranges); i++) {
                char block_map[128];
                snprintf(block_map, sizeof(block_map), "        <Range>%s</Range>\n", not_ranges[i]);
                s.block_map = block_map;
                REFUSE_SPEC(s, "is not a block number or FIRST-LAST");
        }
        s.block_map = "        <Range> 99999999999999999999999 </Range>\n";
        REFUSE_SPEC(s, "too large to be real");
        s.block_map = "        <Range> 1-99999999999999999999999 </Range>\n";
        REFUSE_SPEC(s, "too large to be real");

        /* What <BlockMap> may hold. */
        s = spec_v12();
        s.block_map = "        <Range> 0-3 </Range>\n        7-8\n";
        REFUSE_SPEC(s, "holds text outside any <Range>");
        s.block_map = "        <Range> 0-3 </Range>\n        <Rnage> 7-8 </Rnage>\n";
        REFUSE_SPEC(s, "holds an unknown element <Rnage>");
        s.block_map = "        <Range> 0-3 </Range>\n        <Range> <b>7-8</b> </Range>\n";
        REFUSE_SPEC(s, "<Range> holds an element <b>");
}

static void test_refuse_numbers(void) {
        static const char *const fields[] = { "ImageSize", "BlockSize", "BlocksCount", "MappedBlocksCount" };

        for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
                char phrase[128];
                BmapSpec s = spec_v20();
                const char **f = i == 0 ? &s.image_size : i == 1 ? &s.block_size : i == 2 ? &s.blocks_count
                                                                                           : &s.mapped_count;

                *f = "12a";
                snprintf(phrase, sizeof(phrase), "<%s> '12a' is not a number", fields[i]);
                REFUSE_SPEC(s, phrase);
                *f = "";
                snprintf(phrase, sizeof(phrase), "<%s> '' is not a number", fields[i]);
                REFUSE_SPEC(s, phrase);
                *f = "-1";
                REFUSE_SPEC(s, "is not a number");
                *f = "1e3";
                REFUSE_SPEC(s, "is not a number");
                *f = "99999999999999999999999";
                snprintf(phrase, sizeof(phrase), "<%s> 99999999999999999999999 is too large", fields[i]);
                REFUSE_SPEC(s, phrase);
                *f = "18446744073709551616"; /* 2^64 */
                REFUSE_SPEC(s, "is too large");
                *f = "<x>1</x>";
                snprintf(phrase, sizeof(phrase), "<%s> holds an element <x>", fields[i]);
                REFUSE_SPEC(s, phrase);
        }
}

static void test_refuse_missing(void) {
        BmapSpec s;

        s = spec_v20();
        s.image_size = NULL;
        REFUSE_SPEC(s, "the required element <ImageSize> is missing");
        s = spec_v20();
        s.block_size = NULL;
        REFUSE_SPEC(s, "the required element <BlockSize> is missing");
        s = spec_v20();
        s.blocks_count = NULL;
        REFUSE_SPEC(s, "the required element <BlocksCount> is missing");
        s = spec_v20();
        s.mapped_count = NULL;
        REFUSE_SPEC(s, "the required element <MappedBlocksCount> is missing");
        s = spec_v20();
        s.block_map = NULL;
        REFUSE_SPEC(s, "the required element <BlockMap> is missing");
        s = spec_v20();
        s.version = NULL;
        REFUSE_SPEC(s, "<bmap> has no version attribute");

        s = spec_v12();
        s.image_size = NULL;
        REFUSE_SPEC(s, "the required element <ImageSize> is missing");
        s = spec_v12();
        s.block_map = NULL;
        REFUSE_SPEC(s, "the required element <BlockMap> is missing");
}

static void test_refuse_duplicates(void) {
        BmapSpec s = spec_v20();
        s.before_block_map = "    <BlockSize> 4096 </BlockSize>\n";
        REFUSE_SPEC(s, "<BlockSize> appears twice");
        s.before_block_map = "    <ImageSize> 40000 </ImageSize>\n";
        REFUSE_SPEC(s, "<ImageSize> appears twice");
        s.before_block_map = "    <ChecksumType> sha256 </ChecksumType>\n";
        REFUSE_SPEC(s, "<ChecksumType> appears twice");
        s.before_block_map = "    <BmapFileChecksum> " H64A " </BmapFileChecksum>\n";
        REFUSE_SPEC(s, "<BmapFileChecksum> appears twice");
        s.before_block_map = NULL;
        s.after_block_map = "    <BlockMap>\n    </BlockMap>\n";
        REFUSE_SPEC(s, "<BlockMap> appears twice");
        s.after_block_map = "    <MappedBlocksCount> 6 </MappedBlocksCount>\n";
        REFUSE_SPEC(s, "<MappedBlocksCount> appears twice");
}

static void test_refuse_checksums(void) {
        BmapSpec s = spec_v20();

        /* Range checksums of the wrong length or not hex. */
        s.block_map = "        <Range chksum=\"" H64A "\"> 0-3 </Range>\n"
                      "        <Range chksum=\"" H40B "\"> 7-8 </Range>\n";
        REFUSE_SPEC(s, "1 range checksum is not 64 hex digits of sha256: range 7-8");
        s.block_map = "        <Range chksum=\"" H64A "0\"> 0-3 </Range>\n"
                      "        <Range chksum=\"" H64B "\"> 7-8 </Range>\n";
        REFUSE_SPEC(s, "not 64 hex digits of sha256: range 0-3");
        s.block_map = "        <Range chksum=\"\"> 0-3 </Range>\n"
                      "        <Range chksum=\"" H64B "\"> 7-8 </Range>\n";
        REFUSE_SPEC(s, "not 64 hex digits of sha256: range 0-3");
        s.block_map = "        <Range chksum=\"g123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"> 0-3 </Range>\n"
                      "        <Range chksum=\"" H64B "\"> 7-8 </Range>\n";
        REFUSE_SPEC(s, "not 64 hex digits of sha256: range 0-3");
        s.block_map = "        <Range chksum=\"0x23456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"> 0-3 </Range>\n"
                      "        <Range chksum=\"" H64B "\"> 7-8 </Range>\n";
        REFUSE_SPEC(s, "not 64 hex digits of sha256: range 0-3");
        s.block_map = "        <Range chksum=\"0123456789abcdef0123456789abcdef 123456789abcdef0123456789abcdef\"> 0-3 </Range>\n"
                      "        <Range chksum=\"" H64B "\"> 7-8 </Range>\n";
        REFUSE_SPEC(s, "not 64 hex digits of sha256: range 0-3");
        s.block_map = "        <Range chksum=\"X" H40A "\"> 0-3 </Range>\n"
                      "        <Range chksum=\"X" H40B "\"> 7-8 </Range>\n";
        REFUSE_SPEC(s, "2 range checksums are not 64 hex digits of sha256: ranges 0-3, 7-8");

        /* 1.2: sha1 attributes. */
        s = spec_v12();
        s.block_map = "        <Range sha1=\"" H64A "\"> 0-3 </Range>\n"
                      "        <Range sha1=\"" H40B "\"> 7-8 </Range>\n";
        REFUSE_SPEC(s, "not 40 hex digits of sha1: range 0-3");
        s.block_map = "        <Range sha1=\"" H40A "\"> 0-3 </Range>\n"
                      "        <Range sha1=\"z" H40B "\"> 7-8 </Range>\n";
        REFUSE_SPEC(s, "not 40 hex digits of sha1: range 7-8");

        /* The file checksum. */
        s = spec_v20();
        s.file_checksum = " " H40A " ";
        REFUSE_SPEC(s, "<BmapFileChecksum> has 40 hex digits, sha256 needs 64");
        s.file_checksum = "";
        REFUSE_SPEC(s, "<BmapFileChecksum> has 0 hex digits, sha256 needs 64");
        s.file_checksum = " 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg ";
        REFUSE_SPEC(s, "is not hexadecimal");
        s = spec_v12();
        s.version = "1.3";
        s.file_checksum = " " H64A " ";
        REFUSE_SPEC(s, "<BmapFileSHA1> has 64 hex digits, sha1 needs 40");
        s.file_checksum = " " H40A "x ";
        REFUSE_SPEC(s, "<BmapFileSHA1> has 41 hex digits");
        s.file_checksum = " 0123456789abcdef0123456789abcdef0123456x ";
        REFUSE_SPEC(s, "<BmapFileSHA1> '0123456789abcdef0123456789abcdef0123456x' is not hexadecimal");

        /* A file checksum written with a character reference: the digits
         * are right once decoded, but the text is not in the file as such.
         * It must still be refused with a message. */
        static const char charref[] = "<?xml version=\"1.0\" ?>\n<bmap version=\"2.0\">\n"
                                      "    <ImageSize> 40000 </ImageSize>\n    <BlockSize> 4096 </BlockSize>\n"
                                      "    <BlocksCount> 10 </BlocksCount>\n"
                                      "    <MappedBlocksCount> 0 </MappedBlocksCount>\n"
                                      "    <ChecksumType> sha256 </ChecksumType>\n"
                                      "    <BmapFileChecksum>&#x66;edcba9876543210fedcba9876543210fedcba9876543210"
                                      "fedcba9876543210</BmapFileChecksum>\n"
                                      "    <BlockMap>\n    </BlockMap>\n</bmap>\n";
        REFUSE_STR(charref, "checksum");

        /* Checksum types. */
        s = spec_v20();
        s.checksum_type = "md5";
        REFUSE_SPEC(s, "checksum type 'md5' is not supported");
        s.checksum_type = "";
        REFUSE_SPEC(s, "checksum type '' is not supported");
        s.checksum_type = "sha512";
        REFUSE_SPEC(s, "checksum type 'sha512' is not supported");

        /* sha1= belongs to 1.2 and 1.3, chksum= to 1.4 and later. */
        s = spec_v20();
        s.block_map = "        <Range chksum=\"" H64A "\"> 0-3 </Range>\n"
                      "        <Range sha1=\"" H40B "\"> 7-8 </Range>\n";
        REFUSE_SPEC(s, "range 7-8 has a 'sha1' attribute, but format 2.0 names range checksums 'chksum'");
        s = spec_v12();
        s.block_map = "        <Range chksum=\"" H40A "\"> 0-3 </Range>\n";
        s.mapped_count = "4";
        REFUSE_SPEC(s, "range 0-3 has a 'chksum' attribute, but format 1.2 names range checksums 'sha1'");
}

static void test_refuse_not_xml(void) {
        static const char binary[] = { 0x1f, (char) 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03 };
        static const char nul_led[] = { 0, '<', 'b', 'm', 'a', 'p', '/', '>' };
        Bmap b = {};
        Diag d = {};

        CHECK_REFUSED(bmap_parse(binary, sizeof(binary), NAME, false, &b, &d), d, "not XML");
        d = (Diag) {};
        CHECK_REFUSED(bmap_parse("", 0, NAME, false, &b, &d), d, "not XML");
        d = (Diag) {};
        /* (The reader skips NUL bytes as if they were blanks, so libxml2
         * gets to say "Document is empty"; refused either way.) */
        CHECK_REFUSED(bmap_parse(nul_led, sizeof(nul_led), NAME, false, &b, &d), d, "XML");
        bmap_done(&b);
        REFUSE_STR("   \n\t  ", "not XML");
        REFUSE_STR("This is a plain text file, not a bmap.\n", "not XML");
        REFUSE_STR("ImageSize 821752\nBlockSize 4096\n", "not XML");
        REFUSE_STR("{\"bmap\": \"2.0\"}", "not XML");

        /* A clearsigned bmap is verified and unwrapped before parsing
         * (bmap-sig.c); given to the parser as is, it is refused as such. */
        REFUSE_STR("\xEF\xBB\xBF\n-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n<bmap version=\"2.0\"/>\n"
                   "-----BEGIN PGP SIGNATURE-----\n\n-----END PGP SIGNATURE-----\n",
                   "a clearsigned bmap: its XML is inside an OpenPGP signed message");
        CHECK(bmap_text_is_clearsigned(" \r\n-----BEGIN PGP SIGNED MESSAGE-----\n", 38), "a clearsigned text not told");
        CHECK(!bmap_text_is_clearsigned("-----BEGIN PGP SIGNED MESSAGE----", 33), "a cut marker taken for one");
        CHECK(!bmap_text_is_clearsigned("-----BEGIN PGP MESSAGE-----\n", 28), "an OpenPGP message taken for clearsigned");

        /* Malformed XML. */
        BmapSpec s = spec_v20();
        s.before_block_map = "    <Unclosed>\n";
        REFUSE_SPEC(s, "not well-formed XML");
        REFUSE_STR("<?xml version=\"1.0\" ?>\n<bmap version=\"2.0\">\n    <ImageSize> 40000 </ImageSize>\n",
                   "not well-formed XML");
        REFUSE_STR("<bmap version=\"2.0\"><ImageSize>1</BlockSize></bmap>", "not well-formed XML");
        REFUSE_STR("<bmap version=\"2.0\"><ImageSize>1 < 2</ImageSize></bmap>", "not well-formed XML");
        REFUSE_STR("<bmap version=\"2.0\"></bmap><bmap version=\"2.0\"></bmap>", "not well-formed XML");
        REFUSE_STR("<bmap version=\"2.0\"><ImageSize>&undefined;</ImageSize></bmap>", "not well-formed XML");
        REFUSE_STR("<bmap version='2.0' version='2.0'></bmap>", "not well-formed XML");
        REFUSE_STR("<", "not well-formed XML");
        {
                /* Invalid UTF-8 in a text node. */
                static const char bad_utf8[] = "<bmap version=\"2.0\"><ImageSize>\xff\xfe</ImageSize></bmap>";
                REFUSE_STR(bad_utf8, "not well-formed XML");
        }

        /* Well-formed, but not a bmap. */
        REFUSE_STR("<?xml version=\"1.0\" ?>\n<html><body>hello</body></html>\n", "the root element is <html>, not <bmap>");
        REFUSE_STR("<Bmap version=\"2.0\"/>", "not <bmap>");
        s = spec_v20();
        s.root = "blockmap";
        REFUSE_SPEC(s, "the root element is <blockmap>, not <bmap>");
        REFUSE_STR("<?xml version=\"1.0\" ?>\n<!-- only a comment -->\n", "not well-formed XML");
}

/* ------------------------------------------------------------------------ */
/* Acceptance */

static void test_accept_shuffled(void) {
        /* Every element in another place, and whitespace of every kind around
         * the numbers. */
        static const char text[] =
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                "<bmap version=\"2.0\">\n"
                "  <BlockMap>\n"
                "    <Range chksum=\"" H64A "\">\n\t0-3\n    </Range>\n"
                "    <!-- a comment between ranges -->\n"
                "    <Range chksum=\"" H64B "\">7</Range>\n"
                "    <Range chksum=\"" H64A "\">\t8 </Range>\n"
                "  </BlockMap>\n"
                "  <MappedBlocksCount>\n  6\n  </MappedBlocksCount>\n"
                "  <BmapFileChecksum>" Z64 "</BmapFileChecksum>\n"
                "  <ChecksumType> sha256 </ChecksumType>\n"
                "  <BlocksCount>\t10\t</BlocksCount>\n"
                "  <BlockSize>\r\n4096\r\n</BlockSize>\n"
                "  <ImageSize>40000</ImageSize>\n"
                "</bmap>\n";
        Bmap b = {};
        Diag d = {};

        CHECK_ACCEPTED(parse_fixed(text, &b, &d), d);
        CHECK_U64(b.image_size, 40000);
        CHECK_U64(b.block_size, 4096);
        CHECK_U64(b.blocks_count, 10);
        CHECK_U64(b.mapped_count, 6);
        CHECK(b.file_checksum == FILE_CHECKSUM_OK, "file checksum state %d", b.file_checksum);
        CHECK(b.checksum_type == CHECKSUM_SHA256, "type %s", checksum_name(b.checksum_type));
        CHECK_U64(b.n_ranges, 3);
        if (b.n_ranges == 3) {
                CHECK_U64(b.ranges[0].blocks.start, 0);
                CHECK_U64(b.ranges[0].blocks.end, 4);
                /* A single-block range "7" and the adjacent "8". */
                CHECK_U64(b.ranges[1].blocks.start, 7);
                CHECK_U64(b.ranges[1].blocks.end, 8);
                CHECK_U64(b.ranges[2].blocks.start, 8);
                CHECK_U64(b.ranges[2].blocks.end, 9);
        }
        bmap_done(&b);

        /* 1.2 layout: MappedBlocksCount after the BlockMap. */
        BmapSpec s = spec_v12();
        s.mapped_count = NULL;
        s.after_block_map = "    <MappedBlocksCount> 6 </MappedBlocksCount>\n";
        d = (Diag) {};
        CHECK_ACCEPTED(parse_spec(&s, false, &b, &d), d);
        CHECK_U64(b.mapped_count, 6);
        bmap_done(&b);
}

static void test_accept_ranges(void) {
        BmapSpec s = spec_v12();
        Bmap b = {};
        Diag d = {};

        /* A single-block range. */
        s.block_map = "        <Range sha1=\"" H40A "\">7</Range>\n";
        s.mapped_count = "1";
        CHECK_ACCEPTED(parse_spec(&s, false, &b, &d), d);
        CHECK_U64(b.n_ranges, 1);
        if (b.n_ranges == 1) {
                CHECK_U64(b.ranges[0].blocks.start, 7);
                CHECK_U64(b.ranges[0].blocks.end, 8);
                CHECK(b.ranges[0].has_checksum, "range 7 lost its checksum");
        }
        bmap_done(&b);

        /* Adjacent ranges, kept apart (each has its own checksum) but merged
         * in the mapped set. */
        s.block_map = "        <Range sha1=\"" H40A "\"> 0-3 </Range>\n"
                      "        <Range sha1=\"" H40B "\"> 4-5 </Range>\n"
                      "        <Range> 9 </Range>\n";
        s.mapped_count = "7";
        d = (Diag) {};
        CHECK_ACCEPTED(parse_spec(&s, false, &b, &d), d);
        CHECK_U64(b.n_ranges, 3);
        if (b.n_ranges == 3) {
                CHECK_U64(b.ranges[1].blocks.start, 4);
                CHECK_U64(b.ranges[1].blocks.end, 6);
                CHECK(b.ranges[0].has_checksum && b.ranges[1].has_checksum && !b.ranges[2].has_checksum,
                      "has_checksum %d %d %d, expected 1 1 0", b.ranges[0].has_checksum, b.ranges[1].has_checksum,
                      b.ranges[2].has_checksum);
        }
        _cleanup_extents_ Extents e = EXTENTS_INIT;
        CHECK(bmap_mapped_blocks(&b, &e) == 0, "bmap_mapped_blocks failed");
        CHECK_U64(e.n, 2);
        CHECK_U64(extents_total(&e), 7);
        if (e.n == 2) {
                CHECK_U64(e.v[0].start, 0);
                CHECK_U64(e.v[0].end, 6);
                CHECK_U64(e.v[1].start, 9);
                CHECK_U64(e.v[1].end, 10);
        }
        bmap_done(&b);

        /* The last (partial) block can be mapped. */
        s.block_map = "        <Range> 0-9 </Range>\n";
        s.mapped_count = "10";
        d = (Diag) {};
        CHECK_ACCEPTED(parse_spec(&s, false, &b, &d), d);
        bmap_done(&b);

        /* An empty BlockMap, in each spelling. */
        static const char *const empties[] = { "", "        <!-- nothing mapped -->\n" };
        for (size_t i = 0; i < ELEMENTSOF(empties); i++) {
                s = spec_v20();
                s.block_map = empties[i];
                s.mapped_count = " 0 ";
                d = (Diag) {};
                CHECK_ACCEPTED(parse_spec(&s, false, &b, &d), d);
                CHECK_U64(b.n_ranges, 0);
                CHECK_U64(b.mapped_count, 0);
                CHECK(b.file_checksum == FILE_CHECKSUM_OK, "file checksum state %d", b.file_checksum);
                CHECK(bmap_mapped_blocks(&b, &e) == 0 && e.n == 0, "the mapped set of an empty bmap is not empty");
                bmap_done(&b);
        }
        s = spec_v20();
        s.block_map = NULL;
        s.mapped_count = "0";
        s.before_block_map = "    <BlockMap/>\n";
        d = (Diag) {};
        CHECK_ACCEPTED(parse_spec(&s, false, &b, &d), d);
        CHECK_U64(b.n_ranges, 0);
        bmap_done(&b);

        /* An empty image. */
        s = spec_v20();
        s.image_size = "0";
        s.blocks_count = "0";
        s.mapped_count = "0";
        s.block_map = "";
        d = (Diag) {};
        CHECK_ACCEPTED(parse_spec(&s, false, &b, &d), d);
        CHECK_U64(b.blocks_count, 0);
        bmap_done(&b);
}

static void test_accept_checksum_type_from_length(void) {
        BmapSpec s = spec_v20();
        Bmap b = {};
        Diag d = {};

        /* No <ChecksumType>: 40 hex digits are sha1... */
        s.checksum_type = NULL;
        s.block_map = "        <Range chksum=\"" H40A "\"> 0-3 </Range>\n"
                      "        <Range chksum=\"" H40B "\"> 7-8 </Range>\n";
        s.file_checksum = NULL;
        CHECK_ACCEPTED(parse_spec(&s, false, &b, &d), d);
        CHECK(b.checksum_type == CHECKSUM_SHA1, "type %s, expected sha1", checksum_name(b.checksum_type));
        CHECK(b.n_ranges == 2 && b.ranges[1].has_checksum && b.ranges[1].checksum[0] == 0x89,
              "range 7-8's sha1 decoded wrong");
        bmap_done(&b);

        /* ... also with a (sha1) file checksum ... */
        static const char sha1_file[] = "<?xml version=\"1.0\" ?>\n<bmap version=\"2.0\">\n"
                                        "    <ImageSize> 40000 </ImageSize>\n    <BlockSize> 4096 </BlockSize>\n"
                                        "    <BlocksCount> 10 </BlocksCount>\n"
                                        "    <MappedBlocksCount> 6 </MappedBlocksCount>\n"
                                        "    <BmapFileChecksum> " Z40 " </BmapFileChecksum>\n"
                                        "    <BlockMap>\n"
                                        "        <Range chksum=\"" H40A "\"> 0-3 </Range>\n"
                                        "        <Range chksum=\"" H40B "\"> 7-8 </Range>\n"
                                        "    </BlockMap>\n</bmap>\n";
        d = (Diag) {};
        CHECK_ACCEPTED(parse_fixed(sha1_file, &b, &d), d);
        CHECK(b.checksum_type == CHECKSUM_SHA1, "type %s, expected sha1", checksum_name(b.checksum_type));
        CHECK(b.file_checksum == FILE_CHECKSUM_OK, "file checksum state %d", b.file_checksum);
        bmap_done(&b);

        /* ... 64 are sha256 ... */
        s = spec_v20();
        s.checksum_type = NULL;
        d = (Diag) {};
        CHECK_ACCEPTED(parse_spec(&s, false, &b, &d), d);
        CHECK(b.checksum_type == CHECKSUM_SHA256, "type %s, expected sha256", checksum_name(b.checksum_type));
        CHECK(b.file_checksum == FILE_CHECKSUM_OK, "file checksum state %d", b.file_checksum);
        bmap_done(&b);

        /* ... some ranges without one do not matter ... */
        s.block_map = "        <Range> 0-3 </Range>\n"
                      "        <Range chksum=\"" H64B "\"> 7-8 </Range>\n";
        d = (Diag) {};
        CHECK_ACCEPTED(parse_spec(&s, false, &b, &d), d);
        CHECK(b.checksum_type == CHECKSUM_SHA256, "type %s, expected sha256", checksum_name(b.checksum_type));
        bmap_done(&b);

        /* ... and a mix is refused, as is any other length. */
        s.block_map = "        <Range chksum=\"" H40A "\"> 0-3 </Range>\n"
                      "        <Range chksum=\"" H64B "\"> 7-8 </Range>\n";
        REFUSE_SPEC(s, "there is no <ChecksumType> and the range checksums' lengths do not tell one (64 hex digits here)");
        s.block_map = "        <Range chksum=\"" H64A "\"> 0-3 </Range>\n"
                      "        <Range chksum=\"" H40B "\"> 7-8 </Range>\n";
        REFUSE_SPEC(s, "lengths do not tell one (40 hex digits here)");
        s.block_map = "        <Range chksum=\"0123456789abcdef0123456789abcdef\"> 0-3 </Range>\n"
                      "        <Range chksum=\"0123456789abcdef0123456789abcdef\"> 7-8 </Range>\n";
        s.file_checksum = NULL;
        REFUSE_SPEC(s, "lengths do not tell one (32 hex digits here)");

        /* No checksum anywhere: "none". */
        s = spec_v20();
        s.checksum_type = NULL;
        s.file_checksum = NULL;
        s.block_map = "        <Range> 0-3 </Range>\n        <Range> 7-8 </Range>\n";
        d = (Diag) {};
        CHECK_ACCEPTED(parse_spec(&s, false, &b, &d), d);
        CHECK(b.checksum_type == CHECKSUM_NONE, "type %s, expected none", checksum_name(b.checksum_type));
        bmap_done(&b);

        /* --no-checksum: a type but no range checksums. */
        s = spec_v20();
        s.block_map = "        <Range> 0-3 </Range>\n        <Range> 7-8 </Range>\n";
        d = (Diag) {};
        CHECK_ACCEPTED(parse_spec(&s, false, &b, &d), d);
        CHECK(b.checksum_type == CHECKSUM_SHA256, "type %s", checksum_name(b.checksum_type));
        CHECK(b.n_ranges == 2 && !b.ranges[0].has_checksum && !b.ranges[1].has_checksum,
              "ranges without checksums said to have one");
        bmap_done(&b);
}

static void test_accept_missing_file_checksum(void) {
        static const char *const versions[] = { "1.3", "1.4", "2.0", "2.1" };
        for (size_t i = 0; i < ELEMENTSOF(versions); i++) {
                BmapSpec s = strcmp(versions[i], "1.3") == 0 ? spec_v12() : spec_v20();
                Bmap b = {};
                Diag d = {};
                s.version = versions[i];
                s.file_checksum = NULL;
                CHECK_ACCEPTED(parse_spec(&s, false, &b, &d), d);
                CHECK(b.file_checksum == FILE_CHECKSUM_ABSENT, "%s without a file checksum: state %d, expected ABSENT",
                      versions[i], b.file_checksum);
                CHECK_U64(b.n_ranges, 2);
                bmap_done(&b);
        }

        /* A 1.3 bmap carrying a 2.0-style element: not its file checksum. */
        BmapSpec s = spec_v12();
        Bmap b = {};
        Diag d = {};
        s.version = "1.3";
        s.file_checksum_element = "BmapFileChecksum";
        s.file_checksum = " " H64A " ";
        CHECK_ACCEPTED(parse_spec(&s, false, &b, &d), d);
        CHECK(b.file_checksum == FILE_CHECKSUM_ABSENT, "state %d, expected ABSENT", b.file_checksum);
        bmap_done(&b);
}

static void test_accept_unknown_elements(void) {
        BmapSpec s = spec_v20();
        Bmap b = {};
        Diag d = {};

        /* Right before <BlockMap>, with children, some named like ours: the
         * <BlockMap> after it is still read, the inner ones are not. */
        s.before_block_map = "    <Signature kind=\"none\">\n"
                             "        <ImageSize> 1 </ImageSize>\n"
                             "        <BlockMap><Range> 0-99 </Range></BlockMap>\n"
                             "        <Nested><Deeper>text</Deeper><Empty/></Nested>\n"
                             "    </Signature>\n";
        CHECK_ACCEPTED(parse_spec(&s, false, &b, &d), d);
        CHECK_U64(b.image_size, 40000);
        CHECK_U64(b.n_ranges, 2);
        CHECK(b.file_checksum == FILE_CHECKSUM_OK, "state %d", b.file_checksum);
        bmap_done(&b);

        /* An empty one right before <BlockMap>, one with only text. */
        s.before_block_map = "    <Future/>\n";
        d = (Diag) {};
        CHECK_ACCEPTED(parse_spec(&s, false, &b, &d), d);
        CHECK_U64(b.n_ranges, 2);
        bmap_done(&b);
        s.before_block_map = "    <Future>1-2</Future>\n";
        d = (Diag) {};
        CHECK_ACCEPTED(parse_spec(&s, false, &b, &d), d);
        CHECK_U64(b.n_ranges, 2);
        bmap_done(&b);

        /* Two unknown ones in a row, before a scalar element, and after the
         * <BlockMap>; comments and processing instructions too. */
        s.before_block_map = "    <A><B/></A>\n    <C x=\"1\">y</C>\n    <?pi data?>\n";
        s.after_block_map = "    <Trailer><MappedBlocksCount>99</MappedBlocksCount></Trailer>\n";
        s.prolog = "<!-- a comment before the root -->\n";
        d = (Diag) {};
        CHECK_ACCEPTED(parse_spec(&s, false, &b, &d), d);
        CHECK_U64(b.n_ranges, 2);
        CHECK_U64(b.mapped_count, 6);
        bmap_done(&b);

        /* Unknown elements first, everything else after. */
        static const char first[] = "<?xml version=\"1.0\" ?>\n<bmap version=\"1.2\">\n"
                                    "    <X><Y><Z/></Y></X>\n"
                                    "    <ImageSize> 40000 </ImageSize>\n"
                                    "    <W/>\n"
                                    "    <BlockSize> 4096 </BlockSize>\n"
                                    "    <V>v</V>\n"
                                    "    <BlocksCount> 10 </BlocksCount>\n"
                                    "    <U><T/></U>\n"
                                    "    <MappedBlocksCount> 1 </MappedBlocksCount>\n"
                                    "    <S/>\n"
                                    "    <BlockMap><Range> 9 </Range></BlockMap>\n"
                                    "</bmap>\n";
        d = (Diag) {};
        CHECK_ACCEPTED(parse_str(first, &b, &d), d);
        CHECK_U64(b.n_ranges, 1);
        CHECK_U64(b.block_size, 4096);
        bmap_done(&b);
}

static void test_accept_uppercase(void) {
        BmapSpec s = spec_v20();
        Bmap b = {};
        Diag d = {};
        size_t len = 0;

        s.block_map = "        <Range chksum=\"0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF\"> 0-3 </Range>\n"
                      "        <Range chksum=\"FEDCBA9876543210fedcba9876543210FEDCBA9876543210fedcba9876543210\"> 7-8 </Range>\n";
        s.checksum_type = " SHA256 ";
        char *text = build_bmap(&s, &len);
        CHECK(text != NULL, "build failed");
        if (!text)
                return;
        /* The file checksum in upper case too. */
        char *field = strstr(text, "<BmapFileChecksum>");
        CHECK(field != NULL, "no file checksum");
        if (field)
                for (char *c = field + strlen("<BmapFileChecksum>"); *c != '<'; c++)
                        if (*c >= 'a' && *c <= 'f')
                                *c = (char) (*c - 'a' + 'A');
        CHECK_ACCEPTED(bmap_parse(text, len, NAME, false, &b, &d), d);
        CHECK(b.checksum_type == CHECKSUM_SHA256, "type %s", checksum_name(b.checksum_type));
        CHECK(b.file_checksum == FILE_CHECKSUM_OK, "upper-case file checksum: state %d, expected OK", b.file_checksum);
        CHECK(b.n_ranges == 2 && b.ranges[0].checksum[0] == 0x01 && b.ranges[0].checksum[7] == 0xef &&
                      b.ranges[1].checksum[0] == 0xfe && b.ranges[1].checksum[8] == 0xfe,
              "upper-case range checksums decoded wrong");
        bmap_done(&b);
        free(text);
}

/* ------------------------------------------------------------------------ */
/* Hostile XML */

/* Converts ASCII to UTF-16LE without a byte-order mark. */
static char *utf16le(const char *s, size_t *ret_len) {
        size_t n = strlen(s);
        char *out = malloc(2 * n + 1);
        if (!out)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                out[2 * i] = s[i];
                out[2 * i + 1] = 0;
        }
        *ret_len = 2 * n;
        return out;
}

/* Parses text (and its UTF-16 twin, which a byte search for "<!DOCTYPE"
 * does not see): both refused quickly, neither message quoting forbidden. */
static void refuse_hostile(const char *label, const char *text, const char *forbidden) {
        for (int wide = 0; wide <= 1; wide++) {
                _cleanup_free_ char *input = NULL;
                size_t len = strlen(text);
                const char *data = text;
                if (wide) {
                        /* The UTF-16 twin declares its encoding. */
                        _cleanup_free_ char *decl = NULL;
                        const char *rest = strncmp(text, "<?xml", 5) == 0 ? strstr(text, "?>") + 2 : text;
                        if (asprintf(&decl, "<?xml version=\"1.0\" encoding=\"UTF-16\"?>%s", rest) < 0)
                                return;
                        input = utf16le(decl, &len);
                        if (!input)
                                return;
                        data = input;
                }

                Bmap b = {};
                Diag d = {};
                struct timespec start;
                clock_gettime(CLOCK_MONOTONIC, &start);
                int r = bmap_parse(data, len, NAME, false, &b, &d);
                double t = seconds_since(&start);
                CHECK(r == -EBADMSG, "%s%s: returned %d, expected -EBADMSG (message: '%s')", label,
                      wide ? " (UTF-16)" : "", r, d.msg);
                CHECK(t < 0.5, "%s%s: took %.3f s", label, wide ? " (UTF-16)" : "", t);
                CHECK(d.msg[0] != 0, "%s%s: refused without a message", label, wide ? " (UTF-16)" : "");
                if (forbidden)
                        CHECK(!strstr(d.msg, forbidden), "%s%s: the message quotes '%s': '%s'", label,
                              wide ? " (UTF-16)" : "", forbidden, d.msg);
                bmap_done(&b);
        }
}

static void test_billion_laughs(void) {
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (!f)
                return;
        fputs("<?xml version=\"1.0\"?>\n<!DOCTYPE bmap [\n  <!ENTITY lol0 \"lol\">\n", f);
        for (int i = 1; i <= 9; i++) {
                fprintf(f, "  <!ENTITY lol%d \"", i);
                for (int k = 0; k < 10; k++)
                        fprintf(f, "&lol%d;", i - 1);
                fputs("\">\n", f);
        }
        fputs("]>\n<bmap version=\"2.0\">\n    <ImageSize>&lol9;</ImageSize>\n"
              "    <BlockSize>4096</BlockSize>\n    <Comment>&lol9;&lol9;&lol9;</Comment>\n</bmap>\n",
              f);
        if (fclose(f) != 0) {
                free(text);
                return;
        }
        refuse_hostile("billion laughs", text, "lollollol");
        free(text);

        /* Quadratic blow-up: one large entity referenced many times. */
        f = open_memstream(&text, &len);
        if (!f)
                return;
        fputs("<?xml version=\"1.0\"?>\n<!DOCTYPE bmap [<!ENTITY a \"", f);
        for (int i = 0; i < 20000; i++)
                fputs("aaaaa", f);
        fputs("\">]>\n<bmap version=\"2.0\"><Comment>", f);
        for (int i = 0; i < 20000; i++)
                fputs("&a;", f);
        fputs("</Comment></bmap>\n", f);
        if (fclose(f) != 0) {
                free(text);
                return;
        }
        refuse_hostile("quadratic blow-up", text, "aaaaaaaaaa");
        free(text);
}

/* Text of /etc/passwd that must never reach a message: each line's first
 * three fields ("root:x:0:"). */
static void check_no_passwd(const char *label, const char *text) {
        FILE *f = fopen("/etc/passwd", "re");
        char line[1024];
        if (!f)
                return;
        while (fgets(line, sizeof(line), f)) {
                char *c = line;
                for (int k = 0; k < 3 && c; k++) {
                        c = strchr(c, ':');
                        if (c)
                                c++;
                }
                if (!c)
                        continue;
                *c = 0;
                CHECK(!strstr(text, line), "%s: the message quotes /etc/passwd ('%s'): '%s'", label, line, text);
        }
        fclose(f);
}

static void test_external_entities(void) {
        static const struct {
                const char *label, *text;
        } cases[] = {
                { "external entity",
                  "<?xml version=\"1.0\"?>\n<!DOCTYPE bmap [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>\n"
                  "<bmap version=\"2.0\">\n    <ImageSize>&xxe;</ImageSize>\n    <BlockSize>4096</BlockSize>\n"
                  "    <BlocksCount>&xxe;</BlocksCount>\n</bmap>\n" },
                { "external parameter entity",
                  "<?xml version=\"1.0\"?>\n<!DOCTYPE bmap [<!ENTITY % p SYSTEM \"file:///etc/passwd\"> %p;]>\n"
                  "<bmap version=\"2.0\">\n    <ImageSize>1</ImageSize>\n</bmap>\n" },
                { "external DTD file",
                  "<?xml version=\"1.0\"?>\n<!DOCTYPE bmap SYSTEM \"file:///etc/passwd\">\n"
                  "<bmap version=\"2.0\">\n    <ImageSize>1</ImageSize>\n</bmap>\n" },
                { "external DTD over HTTP",
                  "<?xml version=\"1.0\"?>\n<!DOCTYPE bmap SYSTEM \"http://127.0.0.1:9/x.dtd\">\n"
                  "<bmap version=\"2.0\">\n    <ImageSize>1</ImageSize>\n</bmap>\n" },
                { "external entity over HTTP",
                  "<?xml version=\"1.0\"?>\n<!DOCTYPE bmap [<!ENTITY e SYSTEM \"http://127.0.0.1:9/e\">]>\n"
                  "<bmap version=\"2.0\">\n    <ImageSize>&e;</ImageSize>\n</bmap>\n" },
                { "public DTD",
                  "<?xml version=\"1.0\"?>\n<!DOCTYPE bmap PUBLIC \"-//x//y\" \"http://127.0.0.1:9/x.dtd\">\n"
                  "<bmap version=\"2.0\">\n    <ImageSize>1</ImageSize>\n</bmap>\n" },
                { "XInclude",
                  "<?xml version=\"1.0\"?>\n<bmap version=\"2.0\" xmlns:xi=\"http://www.w3.org/2001/XInclude\">\n"
                  "    <ImageSize><xi:include href=\"file:///etc/passwd\" parse=\"text\"/></ImageSize>\n</bmap>\n" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                refuse_hostile(cases[i].label, cases[i].text, NULL);

                Bmap b = {};
                Diag d = {};
                int r = parse_str(cases[i].text, &b, &d);
                CHECK(r == -EBADMSG, "%s: returned %d", cases[i].label, r);
                check_no_passwd(cases[i].label, d.msg);
                bmap_done(&b);
        }

        /* The refusal names DTDs. */
        REFUSE_STR(cases[0].text, "DTD");
        REFUSE_STR(cases[3].text, "DTD");
}

/* ------------------------------------------------------------------------ */

static void test_mapped_blocks(void) {
        BmapSpec s = spec_v12();
        Bmap b = {};
        Diag d = {};
        _cleanup_extents_ Extents e = EXTENTS_INIT;

        s.image_size = "409600";
        s.blocks_count = "100";
        s.block_map = "        <Range> 0 </Range>\n"
                      "        <Range> 1-2 </Range>\n"
                      "        <Range> 3 </Range>\n"
                      "        <Range> 10-19 </Range>\n"
                      "        <Range> 21-29 </Range>\n"
                      "        <Range> 30 </Range>\n"
                      "        <Range> 99 </Range>\n";
        s.mapped_count = "25";
        CHECK_ACCEPTED(parse_spec(&s, false, &b, &d), d);
        CHECK_U64(b.n_ranges, 7);
        CHECK(bmap_mapped_blocks(&b, &e) == 0, "bmap_mapped_blocks failed");
        CHECK_U64(extents_total(&e), 25);
        CHECK_U64(e.n, 4);
        if (e.n == 4) {
                static const Extent want[] = { { 0, 4 }, { 10, 20 }, { 21, 31 }, { 99, 100 } };
                for (size_t i = 0; i < 4; i++)
                        CHECK(e.v[i].start == want[i].start && e.v[i].end == want[i].end,
                              "extent %zu is [%" PRIu64 ", %" PRIu64 "), expected [%" PRIu64 ", %" PRIu64 ")", i,
                              e.v[i].start, e.v[i].end, want[i].start, want[i].end);
        }
        CHECK(extents_contains(&e, 0, 4) && !extents_overlaps(&e, 4, 10) && !extents_overlaps(&e, 20, 21) &&
                      !extents_overlaps(&e, 31, 99),
              "the mapped set holds unmapped blocks");

        /* Whatever the set held before is replaced. */
        CHECK(extents_add(&e, 50, 60) == 0, "extents_add failed");
        CHECK(bmap_mapped_blocks(&b, &e) == 0 && extents_total(&e) == 25 && !extents_overlaps(&e, 50, 60),
              "bmap_mapped_blocks kept old content");
        bmap_done(&b);
}

static void test_messages_name_lines(void) {
        /* The reversed range stands on line 9 of the built text. */
        BmapSpec s = spec_v12();
        s.block_map = "        <Range> 0-3 </Range>\n"
                      "        <Range> 8-7 </Range>\n"
                      "        <Range> 9 </Range>\n";
        REFUSE_SPEC(s, NAME ":9: range 8-7 is reversed");
        s = spec_v20();
        s.blocks_count = " 11 "; /* line 5 */
        REFUSE_SPEC(s, NAME ":5: <BlocksCount> 11 does not match");
}

int main(void) {
        testdata = getenv("TESTDATA");
        if (!testdata || !*testdata) {
                fprintf(stderr, "TESTDATA is not set; using tests/data\n");
                testdata = "tests/data";
        }

        test_bmaptool_files();
        test_bad_file_checksum_files();
        test_bad_range_files();
        test_load_missing();

        test_builder_baseline();
        test_refuse_version();
        test_refuse_counts();
        test_refuse_ranges();
        test_refuse_numbers();
        test_refuse_missing();
        test_refuse_duplicates();
        test_refuse_checksums();
        test_refuse_not_xml();

        test_accept_shuffled();
        test_accept_ranges();
        test_accept_checksum_type_from_length();
        test_accept_missing_file_checksum();
        test_accept_unknown_elements();
        test_accept_uppercase();

        test_billion_laughs();
        test_external_entities();
        test_mapped_blocks();
        test_messages_name_lines();

        return check_exit("test-bmap-read");
}
