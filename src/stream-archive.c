/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The image inside a tar or zip archive, read with libarchive from the
 * stage below (already decompressed by our own, faster decoders: libarchive
 * sees a plain tar). Which member is the image has to be decided while
 * streaming, without going back:
 *
 *   - the first regular file whose name ends in an image suffix (.img,
 *     .raw, .bin, .iso, .wic, .dd, .sdcard, .hdd, .image, optionally
 *     followed by a compression suffix such as .xz);
 *   - regular files before it are skipped only while they are small
 *     (under 1 MiB: READMEs, checksums, bmaps, licences); the first file of
 *     1 MiB or more, or of unknown size, is the image whatever its name;
 *   - an archive of small files only gives its first one (kept in memory
 *     while looking further).
 *
 * Directories, links and device nodes are never the image. */
#include <archive.h>
#include <archive_entry.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "stream-internal.h"

#define SMALL_FILE ((uint64_t) 1 << 20)
/* libarchive gets the decoded bytes in pieces that are still in the CPU
 * cache when its blocks are copied out: 2 MiB pieces cost 5 % more time. */
#define CHUNK ((size_t) 1 << 20)

typedef struct ArchiveStage {
        Stage st;
        struct archive *a;
        bool zip;
        uint8_t *cbuf;
        int lower_err;
        Diag lower_diag;
        char *member;
        uint64_t size;         /* of the member, UINT64_MAX when not told */
        bool sparse;
        const uint8_t *blk;    /* what is left of libarchive's current block */
        size_t blk_len;
        uint64_t blk_off;      /* member offset of blk */
        bool have_blk, entry_end, drained;
        uint8_t *held;         /* the image, when it is a small first file */
        size_t held_len;
        bool from_held;
} ArchiveStage;

static bool has_suffix(const char *name, size_t len, const char *suffix) {
        size_t n = strlen(suffix);
        return len > n && strncasecmp(name + len - n, suffix, n) == 0;
}

static bool is_image_name(const char *name) {
        static const char *const compressed[] = { ".gz", ".xz", ".zst", ".zstd", ".bz2", ".lz4" };
        static const char *const image[] = { ".img", ".raw", ".bin", ".iso", ".wic",
                                             ".dd", ".sdcard", ".hdd", ".image" };
        size_t len = strlen(name);
        for (size_t i = 0; i < ELEMENTSOF(compressed); i++)
                if (has_suffix(name, len, compressed[i])) {
                        len -= strlen(compressed[i]);
                        break;
                }
        for (size_t i = 0; i < ELEMENTSOF(image); i++)
                if (has_suffix(name, len, image[i]))
                        return true;
        return false;
}

static la_ssize_t archive_read_cb(struct archive *a, void *userdata, const void **ret) {
        ArchiveStage *as = userdata;
        ssize_t k = as->st.lower->ops->read(as->st.lower, as->cbuf, CHUNK, &as->lower_diag);
        if (k < 0) {
                /* Kept to give the lower stage's own message (with its
                 * offsets), not libarchive's retelling of it. */
                as->lower_err = (int) k;
                archive_set_error(a, (int) -k, "%s", as->lower_diag.msg);
                return ARCHIVE_FATAL;
        }
        *ret = as->cbuf;
        return k;
}

static const char *kind(const ArchiveStage *as) {
        return as->zip ? "zip archive" : "tar archive";
}

static int archive_fail(ArchiveStage *as, Diag *d) {
        if (as->lower_err < 0) {
                if (d)
                        *d = as->lower_diag;
                return as->lower_err;
        }
        const char *e = archive_error_string(as->a);
        return diag_set(d, -EBADMSG,
                        "%s: damaged %s near byte %" PRId64 " of the archive (image byte %" PRIu64
                        "): %s: the file is damaged or incomplete: download it again",
                        as->st.stream->in.name, kind(as), (int64_t) archive_filter_bytes(as->a, 0),
                        stream_image_offset(as->st.stream), e ? e : "unreadable");
}

/* After the image, the rest of a compressed stream is decoded too, so that
 * its checksums (gzip's CRC-32 of the whole tar, xz's index...) are checked
 * before the image is called complete. */
static int drain(ArchiveStage *as, Diag *d) {
        as->drained = true;
        if (!as->st.lower->decoder)
                return 0;
        for (;;) {
                ssize_t k = as->st.lower->ops->read(as->st.lower, as->cbuf, CHUNK, d);
                if (k < 0)
                        return (int) k;
                if (k == 0)
                        return 0;
        }
}

static ssize_t archive_stage_read(Stage *st, void *buf, size_t n, Diag *d) {
        ArchiveStage *as = (ArchiveStage *) st;
        uint8_t *out = buf;
        size_t done = 0;

        if (as->from_held) {
                size_t pos = (size_t) st->out, k = as->held_len - pos;
                if (k > n)
                        k = n;
                memcpy(out, as->held + pos, k);
                st->out += k;
                return (ssize_t) k;
        }
        while (done < n) {
                uint64_t pos = st->out;
                size_t room = n - done;
                if (as->have_blk) {
                        size_t k;
                        if (as->blk_off > pos) {
                                /* A hole of a sparse member. */
                                k = as->blk_off - pos < room ? (size_t) (as->blk_off - pos) : room;
                                memset(out + done, 0, k);
                        } else {
                                k = as->blk_len < room ? as->blk_len : room;
                                memcpy(out + done, as->blk, k);
                                as->blk += k;
                                as->blk_len -= k;
                                as->blk_off += k;
                                if (as->blk_len == 0)
                                        as->have_blk = false;
                        }
                        done += k;
                        st->out += k;
                        continue;
                }
                if (as->entry_end) {
                        /* The zip reader checks the sizes itself (and a size
                         * in a local header may be a placeholder). */
                        if (!as->zip && as->size != UINT64_MAX && pos < as->size) {
                                if (!as->sparse)
                                        return diag_set(d, -ENODATA,
                                                        "%s: %s member '%s' ends early, at byte %" PRIu64 " of %" PRIu64
                                                        ": the file is damaged or incomplete: download it again",
                                                        st->stream->in.name, kind(as), as->member, pos, as->size);
                                /* A sparse member's trailing hole. */
                                size_t k = as->size - pos < room ? (size_t) (as->size - pos) : room;
                                memset(out + done, 0, k);
                                done += k;
                                st->out += k;
                                continue;
                        }
                        if (!as->drained) {
                                int r = drain(as, d);
                                if (r < 0)
                                        return r;
                        }
                        break;
                }

                const void *p;
                size_t len;
                la_int64_t off;
                int r = archive_read_data_block(as->a, &p, &len, &off);
                if (r == ARCHIVE_EOF) {
                        as->entry_end = true;
                        continue;
                }
                /* Not "< ARCHIVE_WARN": a zip entry's bad CRC or wrong size
                 * is only a warning to libarchive. */
                if (r != ARCHIVE_OK)
                        return archive_fail(as, d);
                if (off < 0 || (uint64_t) off < pos || (!as->zip && (uint64_t) off > as->size))
                        return diag_set(d, -EBADMSG,
                                        "%s: damaged %s: member '%s' has data at byte %" PRId64
                                        " out of order: the file is damaged: download it again",
                                        st->stream->in.name, kind(as), as->member, (int64_t) off);
                as->blk = p;
                as->blk_len = len;
                as->blk_off = (uint64_t) off;
                as->have_blk = len > 0 || as->blk_off > pos;
        }
        return (ssize_t) done;
}

static uint64_t archive_stage_size_hint(const Stage *st) {
        const ArchiveStage *as = (const ArchiveStage *) st;
        return as->from_held ? as->held_len : as->size;
}

static void archive_stage_free(Stage *st) {
        ArchiveStage *as = (ArchiveStage *) st;
        if (as->a)
                archive_read_free(as->a);
        free(as->cbuf);
        free(as->member);
        free(as->held);
        free(as);
}

static const StageOps archive_stage_ops = {
        .read = archive_stage_read,
        .size_hint = archive_stage_size_hint,
        .free = archive_stage_free,
};

/* Reads a small member whole, for when no better one comes. */
static int hold(ArchiveStage *as, const char *name, uint64_t size, Diag *d) {
        as->held = malloc(size > 0 ? (size_t) size : 1);
        as->member = strdup(name);
        if (!as->held || !as->member)
                return diag_set(d, -ENOMEM, "%s: out of memory", as->st.stream->in.name);
        while (as->held_len < size) {
                la_ssize_t k = archive_read_data(as->a, as->held + as->held_len, (size_t) size - as->held_len);
                if (k < 0)
                        return archive_fail(as, d);
                if (k == 0)
                        return diag_set(d, -ENODATA,
                                        "%s: %s member '%s' ends early: the file is damaged or incomplete: "
                                        "download it again",
                                        as->st.stream->in.name, kind(as), name);
                as->held_len += (size_t) k;
        }
        /* Reading on to the end lets the zip reader check the CRC. */
        char probe;
        la_ssize_t k = archive_read_data(as->a, &probe, 1);
        if (k < 0)
                return archive_fail(as, d);
        if (k > 0)
                return diag_set(d, -EBADMSG, "%s: %s member '%s' is longer than its header says: the file is damaged",
                                as->st.stream->in.name, kind(as), name);
        as->size = size;
        return 0;
}

static int choose_member(ArchiveStage *as, Diag *d) {
        const char *name = as->st.stream->in.name;

        for (;;) {
                struct archive_entry *e;
                int r = archive_read_next_header(as->a, &e);
                if (r == ARCHIVE_EOF)
                        break;
                if (r < ARCHIVE_WARN)
                        return archive_fail(as, d);
                /* A tar hard link is a regular file without data of its own. */
                if (archive_entry_filetype(e) != AE_IFREG || archive_entry_hardlink(e))
                        continue;
                const char *path = archive_entry_pathname(e);
                if (!path)
                        path = "";
                bool known = archive_entry_size_is_set(e) && archive_entry_size(e) >= 0;
                uint64_t size = known ? (uint64_t) archive_entry_size(e) : UINT64_MAX;
                if (is_image_name(path) || size >= SMALL_FILE) {
                        if (archive_entry_is_data_encrypted(e))
                                return diag_set(d, -EPROTONOSUPPORT,
                                                "%s: %s member '%s' is encrypted: extract it first", name,
                                                kind(as), path);
                        free(as->member);
                        as->member = strdup(path);
                        if (!as->member)
                                return diag_set(d, -ENOMEM, "%s: out of memory", name);
                        as->size = size;
                        as->sparse = archive_entry_sparse_count(e) > 0;
                        free(as->held);
                        as->held = NULL;
                        as->held_len = 0;
                        return 0;
                }
                if (!as->member && !archive_entry_is_data_encrypted(e)) {
                        r = hold(as, path, size, d);
                        if (r < 0)
                                return r;
                }
        }
        if (!as->member)
                return diag_set(d, -ENODATA, "%s: the %s holds no regular file", name, kind(as));
        as->from_held = true;
        return drain(as, d);
}

int archive_stage_new(Stage *lower, Stream *s, bool zip, Stage **ret, const char **ret_member, Diag *d) {
        ArchiveStage *as = calloc(1, sizeof(*as));
        if (!as) {
                stage_free(lower);
                return diag_set(d, -ENOMEM, "%s: out of memory", s->in.name);
        }
        stage_init(&as->st, &archive_stage_ops, lower, s, zip ? "zip" : "tar");
        as->zip = zip;
        as->size = UINT64_MAX;
        as->cbuf = malloc(CHUNK);
        as->a = archive_read_new();
        if (!as->cbuf || !as->a) {
                stage_free(&as->st);
                return diag_set(d, -ENOMEM, "%s: out of memory", s->in.name);
        }
        /* Only the one format, and no libarchive decompression filter: the
         * bytes come decompressed already. The streamable zip reader works
         * from the local headers, so stdin works as well as a file. */
        int r = zip ? archive_read_support_format_zip_streamable(as->a) : archive_read_support_format_tar(as->a);
        if (r == ARCHIVE_OK)
                r = archive_read_open(as->a, as, NULL, archive_read_cb, NULL);
        if (r != ARCHIVE_OK) {
                r = archive_fail(as, d);
                stage_free(&as->st);
                return r;
        }
        r = choose_member(as, d);
        if (r < 0) {
                stage_free(&as->st);
                return r;
        }
        *ret = &as->st;
        *ret_member = as->member;
        return 0;
}
