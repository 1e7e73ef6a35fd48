/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>

#include "bmap-open.h"
#include "bmap-sig.h"
#include "bmap.h"
#include "cli-bmap.h"
#include "cli-scan.h"
#include "cli-simg.h"
#include "cli.h"
#include "commands.h"
#include "image.h"
#include "json.h"
#include "report.h"
#include "scan.h"

static const char *file_checksum_word(FileChecksumState s) {
        return s == FILE_CHECKSUM_OK ? "ok" : s == FILE_CHECKSUM_BAD ? "bad" : "absent";
}

static size_t ranges_with_checksum(const Bmap *b) {
        size_t n = 0;
        for (size_t i = 0; i < b->n_ranges; i++)
                n += b->ranges[i].has_checksum;
        return n;
}

/* The signature's problem without the bmap's name in front, for a line
 * that is about the bmap already. */
static const char *problem_text(const char *path, const SigResult *sig) {
        size_t n = strlen(path);
        if (strncmp(sig->problem, path, n) == 0 && strncmp(sig->problem + n, ": ", 2) == 0)
                return sig->problem + n + 2;
        return sig->problem;
}

/* path: the bmap as named on the command line, or where it is in an
 * archive ("disk.zip member disk.img.bmap"), with image_member then. */
static void print_text(const char *path, const char *image_member, const Bmap *b, const SigResult *sig) {
        char human[32], mapped_human[32];
        size_t with = ranges_with_checksum(b);
        double pct = b->blocks_count ? (double) b->mapped_count * 100.0 / (double) b->blocks_count : 0.0;
        /* Shown as error lines show them: no newline or control byte from
         * a file name or a key's user id reaches the terminal. */
        _cleanup_free_ char *name = display_escape(path), *signer = NULL, *problem = NULL;
        if (sig && sig->verified)
                signer = display_escape(sig->signer[0] ? sig->signer : "an unnamed key");
        else if (sig)
                problem = display_escape(problem_text(path, sig));

        format_human_size(b->image_size, human, sizeof(human));
        format_human_size(b->mapped_count * b->block_size, mapped_human, sizeof(mapped_human));
        printf("bmap:            %s\n", name ? name : "?");
        if (image_member)
                printf("image member:    %s\n", image_member);
        printf("format version:  %u.%u\n", b->version_major, b->version_minor);
        printf("image size:      %" PRIu64 " bytes (%s)\n", b->image_size, human);
        printf("block size:      %" PRIu64 " bytes\n", b->block_size);
        printf("blocks:          %" PRIu64 "\n", b->blocks_count);
        printf("mapped blocks:   %" PRIu64 " (%.1f%%, %s)\n", b->mapped_count, pct, mapped_human);
        printf("ranges:          %zu\n", b->n_ranges);
        if (b->n_ranges == 0 || with == 0)
                printf("checksums:       %s, on no range\n", checksum_name(b->checksum_type));
        else if (with == b->n_ranges)
                printf("checksums:       %s, on every range\n", checksum_name(b->checksum_type));
        else
                printf("checksums:       %s, on %zu of %zu ranges\n", checksum_name(b->checksum_type), with,
                       b->n_ranges);
        printf("file checksum:   %s\n", b->file_checksum == FILE_CHECKSUM_OK ? "verified"
                                        : b->file_checksum == FILE_CHECKSUM_BAD
                                                ? "MISMATCH: the file was changed after it was written"
                                                : "absent: the bmap's integrity cannot be checked");
        if (sig && sig->verified)
                printf("signature:       clearsigned, verified: good signature by %s (fingerprint %s)\n",
                       signer ? signer : "?", sig->fingerprint);
        else if (sig)
                printf("signature:       clearsigned, NOT verified: %s\n", problem ? problem : "?");
        printf("valid:           %s\n", b->file_checksum == FILE_CHECKSUM_BAD ? "no" : "yes");
}

static void print_json_string_or_null(const char *s) {
        if (s && s[0])
                json_print_string(stdout, s);
        else
                fputs("null", stdout);
}

/* bmap_name and image_member: a bmap out of the archive at path. */
static void print_json(const char *path, const char *bmap_name, const char *image_member, const Bmap *b,
                       const SigResult *sig, const char *error) {
        fputs("{\"path\":", stdout);
        json_print_string(stdout, path);
        if (bmap_name && image_member) {
                fputs(",\"bmap\":", stdout);
                json_print_string(stdout, bmap_name);
                fputs(",\"image_member\":", stdout);
                json_print_string(stdout, image_member);
        }
        if (b) {
                printf(",\"version\":\"%u.%u\",\"image_size\":%" PRIu64 ",\"block_size\":%" PRIu64
                       ",\"blocks_count\":%" PRIu64 ",\"mapped_blocks\":%" PRIu64 ",\"mapped_bytes\":%" PRIu64
                       ",\"mapped_percent\":%.1f,\"ranges\":%zu,\"ranges_with_checksum\":%zu"
                       ",\"checksum_type\":\"%s\",\"file_checksum\":\"%s\"",
                       b->version_major, b->version_minor, b->image_size, b->block_size, b->blocks_count,
                       b->mapped_count, b->mapped_count * b->block_size,
                       b->blocks_count ? (double) b->mapped_count * 100.0 / (double) b->blocks_count : 0.0,
                       b->n_ranges, ranges_with_checksum(b), checksum_name(b->checksum_type),
                       file_checksum_word(b->file_checksum));
        }
        if (sig) {
                printf(",\"signature\":{\"type\":\"clearsigned\",\"verified\":%s,\"signer\":",
                       sig->verified ? "true" : "false");
                print_json_string_or_null(sig->verified ? sig->signer : NULL);
                fputs(",\"fingerprint\":", stdout);
                print_json_string_or_null(sig->verified ? sig->fingerprint : NULL);
                fputs(",\"problem\":", stdout);
                print_json_string_or_null(sig->verified ? NULL : problem_text(bmap_name ? bmap_name : path, sig));
                fputs("}", stdout);
        }
        printf(",\"valid\":%s,\"error\":", error ? "false" : "true");
        if (error)
                json_print_string(stdout, error);
        else
                fputs("null", stdout);
        fputs("}\n", stdout);
}

/* A bmap is XML (or a clearsigned message around XML); an image is not. */
static int looks_like_bmap(int fd, bool *ret) {
        char head[64];
        ssize_t n;

        n = pread_full(fd, head, sizeof(head), 0);
        if (n < 0)
                return (int) n;
        size_t i = 0;
        if (n >= 3 && (uint8_t) head[0] == 0xEF && (uint8_t) head[1] == 0xBB && (uint8_t) head[2] == 0xBF)
                i = 3;
        while (i < (size_t) n && strchr(" \t\r\n", head[i]))
                i++;
        *ret = (i < (size_t) n && head[i] == '<') ||
               ((size_t) n - i >= 15 && memcmp(head + i, "-----BEGIN PGP ", 15) == 0);
        return 0;
}

/* What a qcow2 holds besides its virtual disk. */
static void print_qcow2(const Qcow2 *q) {
        Qcow2Info qi;
        char cs[32], vs[32];

        qcow2_get_info(q, &qi);
        format_human_size(qi.cluster_size, cs, sizeof(cs));
        format_human_size(qi.size, vs, sizeof(vs));
        printf("qcow2: version %u, %s clusters%s, virtual size %s (%llu bytes)%s\n", qi.version, cs,
               qi.extended_l2 ? " (extended L2: 32 subclusters each)" : "", vs, (unsigned long long) qi.size,
               qi.dirty ? ", marked dirty (refcounts stale; tables read as they are)" : "");
        printf("qcow2 clusters: %llu of %llu allocated (%llu compressed, %s), %llu zero-flagged\n",
               (unsigned long long) qi.allocated, (unsigned long long) qi.clusters, (unsigned long long) qi.compressed,
               qi.compression, (unsigned long long) qi.zero);
        printf("qcow2 backing chain: %s\n", qi.backing[0] ? qi.backing : "none");
        if (qi.n_snapshots)
                printf("qcow2 snapshots: %u internal: the active state is read, not the snapshots\n", qi.n_snapshots);
}

/* The same as a "qcow2" member of info's JSON object. */
static void print_qcow2_json(const Qcow2 *q) {
        Qcow2Info qi;
        Qcow2Backing b;

        qcow2_get_info(q, &qi);
        printf(",\"qcow2\":{\"version\":%u,\"cluster_size\":%" PRIu64 ",\"virtual_size\":%" PRIu64
               ",\"clusters\":%" PRIu64 ",\"allocated_clusters\":%" PRIu64 ",\"compressed_clusters\":%" PRIu64
               ",\"zero_clusters\":%" PRIu64 ",\"compression\":\"%s\",\"extended_l2\":%s,\"dirty\":%s,\"backing\":[",
               qi.version, qi.cluster_size, qi.size, qi.clusters, qi.allocated, qi.compressed, qi.zero, qi.compression,
               qi.extended_l2 ? "true" : "false", qi.dirty ? "true" : "false");
        for (unsigned i = 0; qcow2_backing_at(q, i, &b); i++) {
                fputs(i ? ",{\"name\":" : "{\"name\":", stdout);
                json_print_string(stdout, b.name);
                fputs(",\"path\":", stdout);
                json_print_string(stdout, b.path);
                printf(",\"format\":\"%s\",\"size\":%" PRIu64 "}", b.format, b.size);
        }
        printf("],\"snapshots\":%u,\"snapshots_note\":", qi.n_snapshots);
        print_json_string_or_null(qi.n_snapshots ? "the active state is read, not the internal snapshots" : NULL);
        fputs("}", stdout);
}

static int info_image(const char *path, const ScanOptions *so, bool json) {
        _cleanup_(image_done) Image img = {};
        _cleanup_(scan_done) Scan s = {};
        int r;

        r = cli_open_image_and_scan(path, false, so, &img, &s);
        if (r != EXIT_OK)
                return r;
        if (json) {
                report_json_fields(stdout, path, &s, 0, NULL);
                if (img.qcow2)
                        print_qcow2_json(img.qcow2);
                fputs("}\n", stdout);
                return EXIT_OK;
        }
        if (img.qcow2)
                print_qcow2(img.qcow2);
        report_text(stdout, path, &s, 0, NULL);
        report_picture(stdout, &s, 64);
        return EXIT_OK;
}

int cmd_info(const CliCommand *self, int argc, char **argv) {
        CliParser p = { .command = self, .argc = argc, .argv = argv };
        _cleanup_(bmap_done) Bmap b = {};
        _cleanup_(scan_options_done) ScanOptions so = {};
        bool json = false;
        const char *path;
        Diag d = {};
        int c, r;

        while ((c = cli_next_option(&p)) > 0) {
                r = CLI_CONTINUE;
                switch (c) {
                case CLI_OPT_JSON:
                        json = true;
                        break;
                case CLI_OPT_MAP:
                        r = cli_map_option(p.arg, &so);
                        break;
                }
                if (r != CLI_CONTINUE)
                        return r;
        }
        if (c < 0)
                return p.status;
        r = cli_one_argument(argc, argv, "IMAGE or BMAP", &path);
        if (r != CLI_CONTINUE)
                return r;

        bool is_bmap = false;
        char problem[PATH_MAX + 300];
        struct stat st;
        _cleanup_close_ int fd = -1;
        r = image_open(path, O_RDONLY, &fd, &st);
        if (r >= 0 && !S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode) && !S_ISDIR(st.st_mode))
                /* Telling a bmap from an image reads its start, and both
                 * are then read again from there. */
                snprintf(problem, sizeof(problem),
                         "%s: not a regular file or block device (%s): info needs to seek; save it to a file first",
                         path, file_kind(st.st_mode));
        else if (r >= 0 && (r = looks_like_bmap(fd, &is_bmap)) >= 0)
                problem[0] = 0;
        else
                snprintf(problem, sizeof(problem), "cannot read '%s': %s", path, strerror(-r));
        if (problem[0]) {
                if (json)
                        print_json(path, NULL, NULL, NULL, NULL, problem);
                log_error("%s", problem);
                return EXIT_FAILED;
        }

        /* A clearsigned bmap: its signed text, and what its signature is
         * worth with the default keyring, reported rather than enforced;
         * a wrong file checksum is reported too. A local file: no
         * transfer options. A tar or zip holding the image's bmap is
         * described by that bmap. */
        _cleanup_(bmap_open_info_done) BmapOpenInfo opened = {};
        _cleanup_free_ char *inside = NULL, *image_member = NULL;
        const SigOptions report = { .report_only = true };
        if (is_bmap)
                r = bmap_open(path, &report, NULL, true, &b, &opened, &d);
        else {
                /* An Android sparse image, bare or compressed, is described
                 * by its chunks. */
                bool simg;
                r = cli_info_simg(path, json, &simg);
                if (simg)
                        return r;
                r = cli_archive_bmap_open(path, &fd, &report, true, &b, &opened, &inside, &image_member, &d);
                if (r == 0)
                        return info_image(path, &so, json);
        }
        const char *name = inside ? inside : path;
        const SigResult *sigp = opened.sig.kind == SIG_KIND_CLEARSIGNED ? &opened.sig : NULL;
        if (r < 0) {
                if (json)
                        print_json(path, NULL, NULL, NULL, NULL, d.msg);
                log_error("%s", d.msg);
                return EXIT_FAILED;
        }
        if (b.file_checksum == FILE_CHECKSUM_BAD) {
                const char *why = "the bmap's own checksum does not match its contents: it was changed after it "
                                  "was written";
                if (json)
                        print_json(path, inside, image_member, &b, sigp, why);
                else
                        print_text(name, image_member, &b, sigp);
                log_error("%s: %s", name, why);
                return EXIT_FAILED;
        }
        if (json)
                print_json(path, inside, image_member, &b, sigp, NULL);
        else
                print_text(name, image_member, &b, sigp);
        if (sigp && !sigp->verified)
                log_warning("%s", sigp->problem);
        if (opened.file_checksum_missing)
                log_warning("%s: the bmap has no file checksum: its integrity cannot be checked", name);
        return EXIT_OK;
}
