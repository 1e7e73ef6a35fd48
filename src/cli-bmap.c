/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Bmaps and image sources for copy, verify, scan and create (cli-bmap.h). */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#include "bmap-open.h"
#include "bmap-sig.h"
#include "bmap.h"
#include "cli-bmap.h"
#include "cli.h"
#include "hash.h"
#include "input-http.h"
#include "location.h"
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

void cli_no_bmap_error(const char *image, const char *tried) {
        if (strcmp(image, "-") == 0)
                log_error("the image comes from standard input: name its bmap with --bmap FILE (or use --nobmap)");
        else {
                /* copy can make one from a local image's filesystems. */
                bool scan = cli_command && strcmp(cli_command, "copy") == 0 && !location_is_url(image);
                log_error("%s: no bmap found (looked for %s): give --bmap FILE, %sor --nobmap to copy every byte",
                          image, tried, scan ? "--scan to flash what its filesystems use, " : "");
        }
}

int cli_find_bmap(const char *image, const char *member, const char *given, HttpContext *http, char **ret) {
        char tried[4096];
        int r;

        if (!given && strcmp(image, "-") == 0) {
                cli_no_bmap_error(image, "");
                return EXIT_USAGE;
        }
        r = cli_look_for_bmap(image, member, given, http, ret, tried, sizeof(tried));
        if (r == EXIT_OK && !*ret) {
                cli_no_bmap_error(image, tried);
                return EXIT_FAILED;
        }
        return r;
}

int cli_look_for_bmap(const char *image, const char *member, const char *given, HttpContext *http, char **ret,
                      char *tried, size_t tried_len) {
        Diag d = {};
        int r = -ENOENT;

        *ret = NULL;
        if (given) {
                *ret = strdup(given);
                return *ret ? EXIT_OK : EXIT_FAILED;
        }
        tried[0] = 0;
        if (strcmp(image, "-") == 0)
                return EXIT_OK;
        if (member) {
                _cleanup_free_ char *beside = member_beside(image, member);
                if (beside)
                        r = bmap_find(beside, http, ret, tried, tried_len - 2, &d);
                if (r == -ENOENT && tried[0])
                        strcat(tried, ", ");
        }
        if (r == -ENOENT) {
                size_t used = strlen(tried);
                r = bmap_find(image, http, ret, tried + used, tried_len - used, &d);
        }
        if (r == -ENOENT) {
                *ret = NULL;
                return EXIT_OK;
        }
        if (r < 0 && d.msg[0]) {
                log_error("%s", d.msg);
                return EXIT_FAILED;
        }
        if (r < 0) {
                log_error("%s: looking for its bmap: %s", image, strerror(-r));
                return EXIT_FAILED;
        }
        return EXIT_OK;
}

int cli_load_bmap(const char *path, const SigOptions *sig, HttpContext *http, Bmap *ret) {
        _cleanup_(bmap_open_info_done) BmapOpenInfo opened = {};
        const SigResult *info = &opened.sig;
        Diag d = {};

        if (bmap_open(path, sig, http, false, ret, &opened, &d) < 0) {
                log_error("%s; nothing was written", d.msg);
                return EXIT_FAILED;
        }
        if (info->verified)
                log_info("%s: good signature%s%s by %s (fingerprint %s)", path, info->sig_location ? " in " : "",
                         info->sig_location ? info->sig_location : "",
                         info->signer[0] ? info->signer : "an unnamed key", info->fingerprint);
        else if (info->kind == SIG_KIND_CLEARSIGNED)
                log_warning("%s: clearsigned, but the signature was not verified (--no-sig-verify)", path);
        else if (!sig->skip)
                log_verbose("%s: not signed (not clearsigned, no %s.asc or %s.sig): its origin is not checked", path,
                            path, path);
        if (opened.file_checksum_missing)
                log_warning("%s: the bmap has no file checksum: its integrity cannot be checked", path);
        log_verbose("%s: bmap %u.%u, %llu of %llu blocks of %llu bytes mapped in %zu ranges", path, ret->version_major,
                    ret->version_minor, (unsigned long long) ret->mapped_count, (unsigned long long) ret->blocks_count,
                    (unsigned long long) ret->block_size, ret->n_ranges);
        return EXIT_OK;
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

int cli_verify_target(const Bmap *b, const char *bmap_path, const char *dest) {
        _cleanup_extents_ Extents list = EXTENTS_INIT;
        _cleanup_free_ uint8_t(*got)[CHECKSUM_MAX_SIZE] = NULL;
        _cleanup_close_ int fd = -1;
        size_t bad = 0, unchecked = 0;
        Diag d = {};
        int r;

        if (b->checksum_type == CHECKSUM_NONE) {
                log_error("%s: the bmap has no range checksums: there is nothing to verify %s against", bmap_path,
                          dest);
                return EXIT_FAILED;
        }
        r = target_open_for_verify(dest, &fd, &d);
        if (r < 0) {
                log_error("%s", d.msg);
                return EXIT_FAILED;
        }
        r = bmap_range_list(b, &list);
        if (r < 0 || !(got = calloc(list.n + 1, sizeof(*got)))) {
                log_error("out of memory");
                return EXIT_FAILED;
        }
        r = hash_block_ranges(fd, dest, b->image_size, b->block_size, &list, b->checksum_type, 0, got, &d);
        if (r < 0) {
                log_error("%s", d.msg);
                return EXIT_FAILED;
        }
        size_t n = checksum_size(b->checksum_type);
        for (size_t i = 0; i < b->n_ranges; i++) {
                const BmapRange *x = &b->ranges[i];
                char want[2 * CHECKSUM_MAX_SIZE + 1], have[2 * CHECKSUM_MAX_SIZE + 1];
                if (!x->has_checksum) {
                        unchecked++;
                        continue;
                }
                if (memcmp(got[i], x->checksum, n) == 0)
                        continue;
                bad++;
                Extent bytes = bmap_range_bytes(b, i);
                hex_encode(x->checksum, n, want);
                hex_encode(got[i], n, have);
                printf("%s: bad range %llu-%llu (bytes %llu-%llu): expected %s %s, found %s\n", dest,
                       (unsigned long long) x->blocks.start, (unsigned long long) x->blocks.end - 1,
                       (unsigned long long) bytes.start, (unsigned long long) bytes.end - 1,
                       checksum_name(b->checksum_type), want, have);
        }
        if (bad) {
                log_error("%s: %zu of %zu ranges do not match %s: flash it again", dest, bad, b->n_ranges, bmap_path);
                return EXIT_FAILED;
        }
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
