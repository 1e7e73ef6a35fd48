/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Bmaps and image sources for copy, verify, scan and create (cli-bmap.h). */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "bmap-open.h"
#include "bmap-sig.h"
#include "bmap.h"
#include "cli-bmap.h"
#include "cli-progress.h"
#include "cli.h"
#include "hash.h"
#include "input-http.h"
#include "location.h"
#include "simg.h"
#include "stream.h"
#include "target.h"

/* --member a/disk.img of dir/all.tar: dir/disk.img, whose bmap (dir/disk.img.bmap,
 * dir/disk.bmap) belongs to that member rather than to the whole archive. */
static char *member_beside(const char *image, const char *member) {
        size_t path, end = location_path_end(image, &path), name = end;
        const char *slash = strrchr(member, '/'), *base = slash ? slash + 1 : member;
        char *p;

        while (name > path && image[name - 1] != '/')
                name--;
        if (!base[0] || asprintf(&p, "%.*s%s%s", (int) name, image, base, image + end) < 0)
                return NULL;
        return p;
}

/* The bmap beside image (with member, the member's first): 0 with *ret,
 * -ENOENT with tried listing the names looked at, or another failure with
 * its message in d. */
static int find_beside(const char *image, const char *member, HttpContext *http, char **ret, char *tried,
                       size_t tried_size, Diag *d) {
        int r = -ENOENT;

        tried[0] = 0;
        if (member) {
                _cleanup_free_ char *beside = member_beside(image, member);
                if (beside)
                        r = bmap_find(beside, http, ret, tried, tried_size - 2, d);
                if (r == -ENOENT && tried[0])
                        strcat(tried, ", ");
        }
        if (r == -ENOENT) {
                size_t used = strlen(tried);
                r = bmap_find(image, http, ret, tried + used, tried_size - used, d);
        }
        return r;
}

static int log_find_failure(const char *image, int r, const Diag *d) {
        if (d->msg[0])
                log_error("%s", d->msg);
        else
                log_error("%s: looking for its bmap: %s", image, strerror(-r));
        return EXIT_FAILED;
}

int cli_find_bmap(const char *image, const char *member, const char *given, HttpContext *http, char **ret) {
        char tried[4096];
        Diag d = {};
        int r;

        if (given) {
                *ret = strdup(given);
                return *ret ? EXIT_OK : EXIT_FAILED;
        }
        if (strcmp(image, "-") == 0) {
                log_error("the image comes from standard input: name its bmap with --bmap FILE (or use --nobmap)");
                return EXIT_USAGE;
        }
        r = find_beside(image, member, http, ret, tried, sizeof(tried), &d);
        if (r == -ENOENT) {
                /* copy can make one from a local image's filesystems. */
                bool scan = cli_command && strcmp(cli_command, "copy") == 0 && !location_is_url(image);
                log_error("%s: no bmap found (looked for %s): give --bmap FILE, %sor --nobmap to copy every byte",
                          image, tried, scan ? "--scan to flash what its filesystems use, " : "");
                return EXIT_FAILED;
        }
        if (r < 0)
                return log_find_failure(image, r, &d);
        return EXIT_OK;
}

/* What opening a bmap found, said once for copy and verify: a bmap that
 * came out of the archive is always named, since nobody named it. */
static void report_opened(const char *name, const BmapOpenInfo *opened, const SigOptions *sig, const Bmap *b,
                          bool inside) {
        const SigResult *info = &opened->sig;

        if (info->verified && inside)
                log_info("bmap: %s (signed by %s, fingerprint %s%s%s)", name,
                         info->signer[0] ? info->signer : "an unnamed key", info->fingerprint,
                         info->sig_location ? ", signature in member " : "",
                         info->sig_location ? info->sig_location : "");
        else if (info->verified)
                log_info("%s: good signature%s%s by %s (fingerprint %s)", name, info->sig_location ? " in " : "",
                         info->sig_location ? info->sig_location : "",
                         info->signer[0] ? info->signer : "an unnamed key", info->fingerprint);
        else if (info->kind == SIG_KIND_CLEARSIGNED)
                log_warning("%s: clearsigned, but the signature was not verified (--no-sig-verify)", name);
        else if (inside)
                log_info("bmap: %s (not signed%s)", name, sig->skip ? ": --no-sig-verify" : "");
        else if (!sig->skip)
                log_verbose("%s: not signed (not clearsigned, no %s.asc or %s.sig): its origin is not checked", name,
                            name, name);
        if (opened->file_checksum_missing)
                log_warning("%s: the bmap has no file checksum: its integrity cannot be checked", name);
        log_verbose("%s: bmap %u.%u, %llu of %llu blocks of %llu bytes mapped in %zu ranges", name, b->version_major,
                    b->version_minor, (unsigned long long) b->mapped_count, (unsigned long long) b->blocks_count,
                    (unsigned long long) b->block_size, b->n_ranges);
}

int cli_load_bmap(const char *path, const SigOptions *sig, HttpContext *http, Bmap *ret) {
        _cleanup_(bmap_open_info_done) BmapOpenInfo opened = {};
        Diag d = {};

        if (bmap_open(path, sig, http, false, ret, &opened, &d) < 0) {
                log_error("%s; nothing was written", d.msg);
                return EXIT_FAILED;
        }
        report_opened(path, &opened, sig, ret, false);
        return EXIT_OK;
}

char *cli_archive_bmap_name(const char *image, const ArchiveBmap *ab) {
        _cleanup_free_ char *shown = redact_passwords_dup(strcmp(image, "-") == 0 ? "standard input" : image);
        char *p;
        if (!shown || asprintf(&p, "%s member %s", shown, ab->member) < 0)
                return NULL;
        return p;
}

/* No bmap anywhere: what was looked at, and what to do. */
static int log_no_bmap(const CliImage *o, const char *tried, const Stream *s, const ArchiveBmap *ab) {
        bool stdin_image = strcmp(o->image, "-") == 0;
        char beside[4200];

        if (stdin_image)
                snprintf(beside, sizeof(beside), "the image comes from standard input");
        else
                snprintf(beside, sizeof(beside), "looked for %s", tried);
        switch (ab->state) {
        case ARCHIVE_BMAP_NOT_BEFORE:
                log_error("%s: no bmap (%s), and the %s archive, read as a stream, holds none before its image "
                          "member '%s' (looked for %s): pass --bmap FILE, or put the bmap first in the archive%s",
                          o->image, beside, ab->container, stream_member(s), ab->looked_for, o->after);
                return EXIT_FAILED;
        case ARCHIVE_BMAP_NONE:
                log_error("%s: no bmap found (%s; in the %s archive: %s): give --bmap FILE, or --nobmap to copy "
                          "every byte%s",
                          o->image, beside, ab->container, ab->looked_for, o->after);
                return EXIT_FAILED;
        default:
                if (stdin_image) {
                        log_error("the image comes from standard input: name its bmap with --bmap FILE (or use "
                                  "--nobmap)");
                        return EXIT_USAGE;
                }
                /* copy can make one from a local image's filesystems. */
                bool scan = cli_command && strcmp(cli_command, "copy") == 0 && !location_is_url(o->image);
                log_error("%s: no bmap found (looked for %s): give --bmap FILE, %sor --nobmap to copy every byte",
                          o->image, tried, scan ? "--scan to flash what its filesystems use, " : "");
                return EXIT_FAILED;
        }
}

int cli_open_image(const CliImage *o, HttpContext *http, FdSource *src, Input *in, Stream **ret_stream,
                   Bmap *ret_bmap, char **ret_bmap_name) {
        _cleanup_free_ char *bmap_path = NULL;
        _cleanup_stream_ Stream *s = NULL;
        _cleanup_(bmap_done) Bmap b = {};
        char tried[4096] = "";
        bool have = false;
        Diag d = {};
        int r;

        if (!o->nobmap && o->bmap) {
                bmap_path = strdup(o->bmap);
                if (!bmap_path)
                        return log_error("out of memory"), EXIT_FAILED;
        } else if (!o->nobmap && strcmp(o->image, "-") != 0) {
                r = find_beside(o->image, o->member, http, &bmap_path, tried, sizeof(tried), &d);
                if (r < 0 && r != -ENOENT)
                        return log_find_failure(o->image, r, &d);
        }
        if (bmap_path) {
                r = cli_load_bmap(bmap_path, o->sig, http, &b);
                if (r != EXIT_OK)
                        return r;
                have = true;
        }
        if (cli_interrupted) {
                log_error("interrupted by %s%s", cli_interrupted_name(), o->after);
                return EXIT_FAILED;
        }
        if (have && !o->need_stream) {
                *ret_stream = NULL;
                *ret_bmap = b;
                b = (Bmap) {};
                *ret_bmap_name = TAKE_PTR(bmap_path);
                return EXIT_OK;
        }

        r = cli_open_source(o->image, http, src, in);
        if (r != EXIT_OK)
                return r;
        /* Without a bmap from outside, the archive's own is kept as the
         * archive reader passes it: the stream is read once. */
        StreamOptions so = {
                .member = o->member,
                .max_size = have ? b.image_size : UINT64_MAX,
                .keep_bmap = !have && !o->nobmap,
        };
        r = stream_open(in, &so, &s, &d);
        if (r < 0 && cli_interrupted) {
                log_error("interrupted by %s%s", cli_interrupted_name(), o->after);
                return EXIT_FAILED;
        }
        if (r == -ENODATA && so.keep_bmap && strcmp(o->image, "-") == 0) {
                /* No image came in, and nothing says which bmap to use. */
                log_error("%s; the image comes from standard input: name its bmap with --bmap FILE (or use "
                          "--nobmap)",
                          d.msg);
                return EXIT_USAGE;
        }
        if (r < 0) {
                log_error("%s%s", d.msg, o->after);
                return EXIT_FAILED;
        }
        if (so.keep_bmap) {
                _cleanup_(bmap_open_info_done) BmapOpenInfo opened = {};
                ArchiveBmap ab;
                stream_archive_bmap(s, &ab);
                if (ab.state != ARCHIVE_BMAP_FOUND && stream_simg_info(s)) {
                        /* An Android sparse image's chunks are its map: no
                         * bmap, and the caller says so. */
                        *ret_stream = TAKE_PTR(s);
                        *ret_bmap = (Bmap) {};
                        *ret_bmap_name = NULL;
                        return EXIT_OK;
                }
                if (ab.state != ARCHIVE_BMAP_FOUND)
                        return log_no_bmap(o, tried, s, &ab);
                bmap_path = cli_archive_bmap_name(o->image, &ab);
                if (!bmap_path)
                        return log_error("out of memory"), EXIT_FAILED;
                SigDetached sig = { ab.sig_member, ab.sig, ab.sig_len };
                BmapBytes bytes = { bmap_path, ab.data, ab.len, ab.sig_member ? &sig : NULL };
                if (bmap_open_bytes(&bytes, o->sig, http, false, &b, &opened, &d) < 0) {
                        log_error("%s%s", d.msg, o->after);
                        return EXIT_FAILED;
                }
                /* Checked before the bmap is reported: a member of another
                 * image is one error line, as one beside the image is. */
                uint64_t hint = stream_size_hint(s);
                if (hint != UINT64_MAX && hint != b.image_size &&
                    !simg_pads(stream_simg_info(s), hint, b.image_size)) {
                        log_error("%s: the image (%s) is %llu bytes, but the bmap %s says %llu: they do not belong "
                                  "together%s",
                                  o->image, stream_describe(s), (unsigned long long) hint, bmap_path,
                                  (unsigned long long) b.image_size, o->after);
                        return EXIT_FAILED;
                }
                report_opened(bmap_path, &opened, o->sig, &b, true);
                /* Decoding stops where this bmap's image ends, as it does
                 * for one found beside the image. */
                stream_set_max_size(s, b.image_size);
        }
        *ret_stream = TAKE_PTR(s);
        *ret_bmap = b;
        b = (Bmap) {};
        *ret_bmap_name = TAKE_PTR(bmap_path);
        return EXIT_OK;
}

int cli_archive_bmap_open(const char *path, int *fd, const SigOptions *sig, bool allow_bad_file_checksum,
                          Bmap *ret, BmapOpenInfo *ret_info, char **ret_name, char **ret_image_member, Diag *d) {
        _cleanup_free_ char *name = NULL, *image_member = NULL;
        _cleanup_stream_ Stream *s = NULL;
        Input in = input_from_fd(fd, path);
        ArchiveBmap ab;
        Diag ignored;

        /* An input that does not open as an archive is an image to scan:
         * the scan says what is wrong with it, if anything. */
        if (stream_open(&in, &(StreamOptions) { .max_size = UINT64_MAX, .keep_bmap = true }, &s, &ignored) < 0)
                return 0;
        stream_archive_bmap(s, &ab);
        if (ab.state != ARCHIVE_BMAP_FOUND)
                return 0;
        name = cli_archive_bmap_name(path, &ab);
        image_member = strdup(stream_member(s));
        if (!name || !image_member)
                return diag_set(d, -ENOMEM, "%s: out of memory", path);
        SigDetached detached = { ab.sig_member, ab.sig, ab.sig_len };
        BmapBytes bytes = { name, ab.data, ab.len, ab.sig_member ? &detached : NULL };
        int r = bmap_open_bytes(&bytes, sig, NULL, allow_bad_file_checksum, ret, ret_info, d);
        if (r < 0)
                return r;
        *ret_name = TAKE_PTR(name);
        *ret_image_member = TAKE_PTR(image_member);
        return 1;
}

int cli_open_source(const char *image, HttpContext *http, FdSource *src, Input *ret) {
        if (location_is_url(image)) {
                Diag d = {};
                if (input_http_open(image, http, ret, &d) < 0) {
                        log_error("%s; nothing was written", d.msg);
                        return EXIT_FAILED;
                }
                return EXIT_OK;
        }
        if (strcmp(image, "-") == 0)
                src->fd = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3);
        else
                src->fd = open(image, O_RDONLY | O_CLOEXEC);
        if (src->fd < 0) {
                log_error("cannot open image '%s': %s", image, strerror(errno));
                return EXIT_FAILED;
        }
        *ret = input_from_fd_source(src, image);
        return EXIT_OK;
}

int cli_source_option(int id, const char *arg, SigOptions *sig, HttpOptions *http) {
        uint64_t v;

        switch (id) {
        case CLI_OPT_BMAP_SIG:
                sig->sig_location = arg;
                return CLI_CONTINUE;
        case CLI_OPT_KEYRING:
                sig->keyring = arg;
                return CLI_CONTINUE;
        case CLI_OPT_FINGERPRINT:
                sig->fingerprint = arg;
                return CLI_CONTINUE;
        case CLI_OPT_NO_SIG_VERIFY:
                sig->skip = true;
                return CLI_CONTINUE;
        case CLI_OPT_CA_FILE:
                http->ca_file = arg;
                return CLI_CONTINUE;
        case CLI_OPT_HTTP_TIMEOUT:
                if (parse_u64(arg, strlen(arg), &v) < 0 || v == 0 || v > 3600)
                        return usage_error("--http-timeout takes a number of seconds from 1 to 3600, not '%s'", arg);
                http->stall_timeout = (unsigned) v;
                return CLI_CONTINUE;
        default:
                return usage_error("unhandled option");
        }
}

int cli_http_setup(const HttpOptions *o, HttpContext **ret) {
        Diag d = {};
        if (http_context_new(o, ret, &d) < 0) {
                log_error("%s", d.msg);
                return EXIT_FAILED;
        }
        return EXIT_OK;
}

int cli_verify_target(const Bmap *b, const char *bmap_path, const char *dest, CliProgress *json, char *ret_error,
                      size_t error_len, uint64_t *ret_checked) {
        _cleanup_extents_ Extents list = EXTENTS_INIT;
        _cleanup_free_ uint8_t(*got)[CHECKSUM_MAX_SIZE] = NULL;
        _cleanup_close_ int fd = -1;
        size_t bad = 0, unchecked = 0;
        Diag d = {};
        int r;

        if (ret_error && error_len)
                ret_error[0] = 0;
        if (ret_checked)
                *ret_checked = 0;
        if (b->checksum_type == CHECKSUM_NONE)
                return log_error_kept(ret_error, error_len,
                                      "%s: the bmap has no range checksums: there is nothing to verify %s against",
                                      bmap_path, dest);
        r = target_open_for_verify(dest, &fd, &d);
        if (r < 0)
                return log_error_kept(ret_error, error_len, "%s", d.msg);
        r = bmap_range_list(b, &list);
        if (r < 0 || !(got = calloc(list.n + 1, sizeof(*got))))
                return log_error_kept(ret_error, error_len, "out of memory");
        r = hash_block_ranges(fd, dest, b->image_size, b->block_size, &list, b->checksum_type, 0, got, &d);
        if (r < 0)
                return log_error_kept(ret_error, error_len, "%s", d.msg);
        /* The bad ranges are the command's output, unless stdout is JSON. */
        FILE *out = json && cli_progress_on_stdout(json) ? stderr : stdout;
        size_t n = checksum_size(b->checksum_type);
        for (size_t i = 0; i < b->n_ranges; i++) {
                const BmapRange *x = &b->ranges[i];
                char want[2 * CHECKSUM_MAX_SIZE + 1], have[2 * CHECKSUM_MAX_SIZE + 1];
                if (!x->has_checksum) {
                        unchecked++;
                        continue;
                }
                if (ret_checked) {
                        Extent r_bytes = bmap_range_bytes(b, i);
                        *ret_checked += r_bytes.end - r_bytes.start;
                }
                if (memcmp(got[i], x->checksum, n) == 0)
                        continue;
                bad++;
                Extent bytes = bmap_range_bytes(b, i);
                hex_encode(x->checksum, n, want);
                hex_encode(got[i], n, have);
                fprintf(out, "%s: bad range %llu-%llu (bytes %llu-%llu): expected %s %s, found %s\n", dest,
                        (unsigned long long) x->blocks.start, (unsigned long long) x->blocks.end - 1,
                        (unsigned long long) bytes.start, (unsigned long long) bytes.end - 1,
                        checksum_name(b->checksum_type), want, have);
                cli_progress_mismatch(json, dest, x->blocks.start, x->blocks.end - 1, bytes.start, bytes.end - 1,
                                      checksum_name(b->checksum_type), want, have);
        }
        fflush(out);
        if (bad)
                return log_error_kept(ret_error, error_len, "%s: %zu of %zu ranges do not match %s: flash it again",
                                      dest, bad, b->n_ranges, bmap_path);
        log_info("%s: all %zu ranges match %s%s", dest, b->n_ranges - unchecked, bmap_path,
                 unchecked ? " (some ranges have no checksum)" : "");
        return EXIT_OK;
}

int cli_write_bmap(const char *path, const char *text, size_t len) {
        Diag d = {};
        int r;

        if (!path) {
                r = write_full(STDOUT_FILENO, text, len);
                if (r < 0) {
                        log_error("cannot write the bmap to standard output: %s", strerror(-r));
                        return EXIT_FAILED;
                }
                return EXIT_OK;
        }
        r = write_file_atomic(path, text, len, &d);
        if (r < 0) {
                log_error("%s", d.msg);
                return EXIT_FAILED;
        }
        return EXIT_OK;
}
