/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The image inside a tar or zip archive, read with libarchive from the
 * stage below (already decompressed by our own, faster decoders: libarchive
 * sees a plain tar). Which member is the image:
 *
 *   - the one the caller names (--member), whatever it is;
 *   - else the one regular file that could be the image: one with an image
 *     suffix (.img, .raw, .bin, .iso, .wic, .dd, .sdcard, .hdd, .image,
 *     optionally followed by a compression suffix such as .xz) of 64 KiB or
 *     more, or any file of 1 MiB or more or of unknown size; never a side
 *     file (a bmap, a signature, checksums, a README or licence, notes),
 *     whose size says nothing (a bmap of a big image can be MiBs);
 *   - an archive with no such file gives its first small file that is no
 *     side file (kept in memory while looking further).
 *
 * Several files that could be the image are refused, naming them: copying
 * the first in silence would flash the wrong image. A local uncompressed
 * archive has its headers read first (tar data is seeked over, a zip's
 * central directory read), so that this is refused before anything is
 * written. A streamed or compressed archive cannot go back: its first
 * candidate is streamed while the rest is unknown, and the headers after
 * it are read when it ends, failing the image's last read if another
 * candidate comes (the copy then keeps a file target's old content and
 * reports a device as partly written).
 *
 * Directories, links and device nodes are never the image.
 *
 * When the caller asks (StreamOptions.keep_bmap), the bmap members and
 * their detached signatures are kept as they pass (or read ahead with the
 * member list), and the image's bmap is chosen among them once the image
 * member is known (stream.h, ArchiveBmap). */
#include <archive.h>
#include <archive_entry.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "bmap.h"
#include "stream-internal.h"

#define SMALL_FILE ((uint64_t) 1 << 20)
/* An image-named file under this is a boot blob or a placeholder, not a
 * disk image (a partition table alone takes 17 KiB with GPT). */
#define TINY_FILE ((uint64_t) 64 << 10)
/* libarchive gets the decoded bytes in pieces that are still in the CPU
 * cache when its blocks are copied out: 2 MiB pieces cost 5 % more time. */
#define CHUNK ((size_t) 1 << 20)

/* Bmap and signature members kept at most: a hostile archive of many
 * cannot make us hold more (their bytes are bounded too, BMAP_MAX_SIZE in
 * all). */
#define SIDE_MAX 16

typedef struct SideFile {
        char *name;            /* as the archive lists it */
        uint8_t *data;
        size_t len;
        bool too_big;          /* not kept: past what is kept in all */
        bool twice;            /* the archive holds the name more than once */
} SideFile;

/* Member names for a message: "a.img, b.img", cut short with "...". */
typedef struct NameList {
        char text[320];
        size_t count;
        bool cut;
} NameList;

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
        const char *want;      /* the member to stream, by name: given, or found by the pre-scan */
        char *want_buf;        /* want, when the pre-scan found it */
        bool want_candidate;   /* found by the rule: of the files named want, the candidate (a tar may
                                * hold a name twice, appended to) */
        bool check_rest;       /* chosen while streaming: no other candidate may follow */
        NameList seen;         /* the regular files passed, for messages */
        NameList candidates;
        char *member_raw;      /* the image member as the archive names it */
        SideFile side[SIDE_MAX]; /* keep_bmap: the bmap members and signatures seen */
        size_t n_side;
        uint64_t side_bytes;
        bool listed;           /* the member list was read ahead to its end */
        ArchiveBmap bmap;
        char *looked_for, *bmap_shown, *sig_shown;
} ArchiveStage;

static bool has_suffix(const char *name, size_t len, const char *suffix) {
        size_t n = strlen(suffix);
        return len > n && strncasecmp(name + len - n, suffix, n) == 0;
}

static bool is_image_name(const char *name) {
        static const char *const compressed[] = { ".gz", ".xz", ".zst", ".zstd", ".bz2", ".lz4", ".lzo" };
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

/* The name as shown in one line of text: a hostile archive's names may hold
 * newlines or escape sequences. */
static char *shown_dup(const char *name) {
        char *p = strdup(name);
        for (char *c = p; c && *c; c++)
                if ((unsigned char) *c < 0x20 || *c == 0x7f)
                        *c = '?';
        return p;
}

static void names_add(NameList *l, const char *name) {
        _cleanup_free_ char *shown = shown_dup(name);
        size_t used = strlen(l->text), room = sizeof(l->text) - used;

        l->count++;
        if (l->cut)
                return;
        /* Room is kept for ", ..." after any name that fits. */
        int k = snprintf(l->text + used, room, "%s%s", used ? ", " : "", shown ? shown : "?");
        if (k < 0 || (size_t) k + 5 >= room) {
                snprintf(l->text + used, room, "%s...", used ? ", " : "");
                l->cut = true;
        }
}

static const char *base_name(const char *path) {
        const char *slash = strrchr(path, '/');
        return slash ? slash + 1 : path;
}

/* What ships beside an image: never the image, whatever its size. */
static bool is_side_name(const char *path) {
        static const char *const prefixes[] = { "readme", "license", "licence", "copying", "notice",
                                                "changelog", "checksum" };
        static const char *const suffixes[] = { ".bmap", ".asc", ".sig", ".gpg", ".md5", ".sha1", ".sha224",
                                                ".sha256", ".sha384", ".sha512", "sums", ".txt", ".md", ".json" };
        const char *base = base_name(path);
        size_t len = strlen(base);

        for (size_t i = 0; i < ELEMENTSOF(prefixes); i++)
                if (strncasecmp(base, prefixes[i], strlen(prefixes[i])) == 0)
                        return true;
        for (size_t i = 0; i < ELEMENTSOF(suffixes); i++)
                if (has_suffix(base, len, suffixes[i]))
                        return true;
        return false;
}

static bool could_be_image(const char *path, uint64_t size) {
        if (is_side_name(path))
                return false;
        if (size == UINT64_MAX || size >= SMALL_FILE)
                return true;
        return size >= TINY_FILE && is_image_name(path);
}

/* "./a.img" and "a.img" are the same member. */
static bool same_name(const char *a, const char *b) {
        while (a[0] == '.' && a[1] == '/')
                a += 2;
        while (b[0] == '.' && b[1] == '/')
                b += 2;
        return strcmp(a, b) == 0;
}

static const char *kind(bool zip) {
        return zip ? "zip archive" : "tar archive";
}

static int refuse_ambiguous(const char *name, const NameList *candidates, Diag *d) {
        return diag_set(d, -ENOTUNIQ, "%s: %zu members could be the image (%s): pick one with --member NAME", name,
                        candidates->count, candidates->text);
}

static int refuse_missing(const char *name, bool zip, const char *want, const NameList *seen, Diag *d) {
        _cleanup_free_ char *shown = shown_dup(want);
        if (seen->count == 0)
                return diag_set(d, -ENOENT, "%s: the %s has no member '%s': it holds no regular file at all", name,
                                kind(zip), shown ? shown : "?");
        return diag_set(d, -ENOENT,
                        "%s: the %s has no member '%s' (its files: %s): name one of them with --member NAME", name,
                        kind(zip), shown ? shown : "?", seen->text);
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
                        as->st.stream->in.name, kind(as->zip), (int64_t) archive_filter_bytes(as->a, 0),
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

/* The next regular file of the archive, a tar hard link (no data of its
 * own) skipped: 1 with its entry, path ("" when it has none) and size
 * (UINT64_MAX when not told), 0 at the archive's end, else a negative errno. */
static int next_file(ArchiveStage *as, struct archive_entry **ret, const char **ret_path, uint64_t *ret_size,
                     Diag *d) {
        for (;;) {
                struct archive_entry *e;
                int r = archive_read_next_header(as->a, &e);
                if (r == ARCHIVE_EOF)
                        return 0;
                if (r < ARCHIVE_WARN)
                        return archive_fail(as, d);
                if (archive_entry_filetype(e) != AE_IFREG || archive_entry_hardlink(e))
                        continue;
                const char *path = archive_entry_pathname(e);
                bool known = archive_entry_size_is_set(e) && archive_entry_size(e) >= 0;
                *ret = e;
                *ret_path = path ? path : "";
                *ret_size = known ? (uint64_t) archive_entry_size(e) : UINT64_MAX;
                return 1;
        }
}

/* The image was chosen while streaming, with the rest of the archive
 * unknown: now that it has been read, no other member may be a candidate. */
static int check_rest(ArchiveStage *as, Diag *d) {
        struct archive_entry *e;
        const char *path;
        uint64_t size;
        int r;

        as->check_rest = false;
        while ((r = next_file(as, &e, &path, &size, d)) > 0)
                if (could_be_image(path, size))
                        names_add(&as->candidates, path);
        if (r < 0)
                return r;
        if (as->candidates.count > 1)
                return refuse_ambiguous(as->st.stream->in.name, &as->candidates, d);
        return 0;
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
                                                        st->stream->in.name, kind(as->zip), as->member, pos, as->size);
                                /* A sparse member's trailing hole. */
                                size_t k = as->size - pos < room ? (size_t) (as->size - pos) : room;
                                memset(out + done, 0, k);
                                done += k;
                                st->out += k;
                                continue;
                        }
                        if (as->check_rest) {
                                int r = check_rest(as, d);
                                if (r < 0)
                                        return r;
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
                                        st->stream->in.name, kind(as->zip), as->member, (int64_t) off);
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
        free(as->want_buf);
        free(as->member_raw);
        for (size_t i = 0; i < as->n_side; i++) {
                free(as->side[i].name);
                free(as->side[i].data);
        }
        free(as->looked_for);
        free(as->bmap_shown);
        free(as->sig_shown);
        free(as);
}

static const StageOps archive_stage_ops = {
        .read = archive_stage_read,
        .size_hint = archive_stage_size_hint,
        .free = archive_stage_free,
};

/* ---- The image's bmap, kept as the archive passes ---- */

/* A bmap, or a detached signature of one: kept with keep_bmap. */
static bool is_kept_name(const char *path) {
        static const char *const suffixes[] = { ".bmap", ".bmap.asc", ".bmap.sig", ".bmap.gpg" };
        size_t len = strlen(path);
        for (size_t i = 0; i < ELEMENTSOF(suffixes); i++)
                if (has_suffix(path, len, suffixes[i]))
                        return true;
        return false;
}

static SideFile *side_find(ArchiveStage *as, const char *name) {
        for (size_t i = 0; i < as->n_side; i++)
                if (same_name(as->side[i].name, name))
                        return &as->side[i];
        return NULL;
}

/* Reads the current member of a (the stage's own reader, or the read-ahead
 * one) into the side list; a later member of the same name replaces an
 * earlier one and marks the name as given twice (resolve_bmap refuses such a
 * bmap). -ENOMEM, or -EIO for a read
 * that failed (the caller has its reader's message). */
static int keep_side(ArchiveStage *as, struct archive *a, const char *path, uint64_t size) {
        SideFile *f = side_find(as, path);
        if (f) {
                f->twice = true;
                as->side_bytes -= f->len;
                free(f->data);
                f->data = NULL;
                f->len = 0;
                f->too_big = false;
        } else {
                if (as->n_side == SIDE_MAX)
                        return 0;
                f = &as->side[as->n_side];
                f->name = strdup(path);
                if (!f->name)
                        return -ENOMEM;
                as->n_side++;
        }
        uint64_t room = BMAP_MAX_SIZE - as->side_bytes;
        if (size != UINT64_MAX && size > room) {
                f->too_big = true;
                return 0;
        }
        /* A size the header does not tell (a zip streamed with data
         * descriptors) grows the buffer as the bytes come. */
        size_t cap = size != UINT64_MAX ? (size_t) size + 1 : (size_t) 64 << 10;
        f->data = malloc(cap);
        if (!f->data)
                return -ENOMEM;
        for (;;) {
                if (f->len == cap) {
                        size_t ncap = cap * 2 > room + 1 ? (size_t) room + 1 : cap * 2;
                        uint8_t *p = ncap > cap ? realloc(f->data, ncap) : NULL;
                        if (!p) {
                                free(f->data);
                                f->data = NULL;
                                f->len = 0;
                                if (ncap > cap)
                                        return -ENOMEM;
                                f->too_big = true;
                                return 0;
                        }
                        f->data = p;
                        cap = ncap;
                }
                la_ssize_t k = archive_read_data(a, f->data + f->len, cap - f->len);
                if (k < 0)
                        return -EIO;
                if (k == 0)
                        break;
                f->len += (size_t) k;
        }
        if (f->len > room) {
                free(f->data);
                f->data = NULL;
                f->len = 0;
                f->too_big = true;
                return 0;
        }
        as->side_bytes += f->len;
        return 0;
}

static int add_looked_for(char **list, const char *name) {
        _cleanup_free_ char *shown = shown_dup(name);
        char *p;
        if (!shown || asprintf(&p, "%s%s%s", *list ? *list : "", *list ? ", " : "", shown) < 0)
                return -ENOMEM;
        free(*list);
        *list = p;
        return 0;
}

/* Chooses the image's bmap among the members kept, now that the image
 * member is known; all_listed: every member of the archive was seen. */
static int resolve_bmap(ArchiveStage *as, bool all_listed, Diag *d) {
        static const char *const sig_suffixes[] = { ".asc", ".sig", ".gpg" };
        const char *name = as->st.stream->in.name, *image = as->member_raw ? as->member_raw : "";
        const char *slash = strrchr(image, '/');
        size_t base = slash ? (size_t) (slash - image) + 1 : 0, end = strlen(image);
        SideFile *found = NULL;

        as->bmap.container = as->zip ? "zip" : "tar";
        /* disk.img.xz: disk.img.xz.bmap, disk.img.bmap, disk.bmap. */
        for (;;) {
                _cleanup_free_ char *candidate = NULL;
                if (asprintf(&candidate, "%.*s.bmap", (int) end, image) < 0 ||
                    add_looked_for(&as->looked_for, candidate) < 0)
                        return diag_set(d, -ENOMEM, "%s: out of memory", name);
                found = side_find(as, candidate);
                if (found)
                        break;
                size_t dot = end;
                while (dot > base && image[dot - 1] != '.')
                        dot--;
                if (dot <= base + 1)
                        break;
                end = dot - 1;
        }
        if (!found && as->zip) {
                if (add_looked_for(&as->looked_for, ".meta/image.bmap") < 0)
                        return diag_set(d, -ENOMEM, "%s: out of memory", name);
                found = side_find(as, ".meta/image.bmap");
        }
        as->bmap.looked_for = as->looked_for;
        if (!found) {
                as->bmap.state = all_listed ? ARCHIVE_BMAP_NONE : ARCHIVE_BMAP_NOT_BEFORE;
                return 0;
        }
        as->bmap_shown = shown_dup(found->name);
        if (!as->bmap_shown)
                return diag_set(d, -ENOMEM, "%s: out of memory", name);
        /* Extracting keeps the last, a stream gives the first before the
         * image: the same archive read two ways would flash by two bmaps. */
        if (found->twice)
                return diag_set(d, -ENOTUNIQ,
                                "%s: the %s holds member '%s' more than once: which is the image's bmap is not "
                                "clear: give --bmap FILE",
                                name, kind(as->zip), as->bmap_shown);
        if (found->too_big)
                return diag_set(d, -EFBIG, "%s: %s member '%s' is larger than %u MiB: not a bmap: give --bmap FILE",
                                name, kind(as->zip), as->bmap_shown, BMAP_MAX_SIZE >> 20);
        as->bmap.state = ARCHIVE_BMAP_FOUND;
        as->bmap.member = as->bmap_shown;
        as->bmap.data = (const char *) found->data;
        as->bmap.len = found->len;
        for (size_t i = 0; i < ELEMENTSOF(sig_suffixes); i++) {
                _cleanup_free_ char *sig = NULL;
                if (asprintf(&sig, "%s%s", found->name, sig_suffixes[i]) < 0)
                        return diag_set(d, -ENOMEM, "%s: out of memory", name);
                SideFile *f = side_find(as, sig);
                if (!f || f->too_big)
                        continue;
                as->sig_shown = shown_dup(f->name);
                if (!as->sig_shown)
                        return diag_set(d, -ENOMEM, "%s: out of memory", name);
                as->bmap.sig_member = as->sig_shown;
                as->bmap.sig = (const char *) f->data;
                as->bmap.sig_len = f->len;
                break;
        }
        return 0;
}

/* Reads a small member whole, for when no better one comes. */
static int hold(ArchiveStage *as, const char *name, uint64_t size, Diag *d) {
        as->held = malloc(size > 0 ? (size_t) size : 1);
        as->member = shown_dup(name);
        free(as->member_raw);
        as->member_raw = strdup(name);
        if (!as->held || !as->member || !as->member_raw)
                return diag_set(d, -ENOMEM, "%s: out of memory", as->st.stream->in.name);
        while (as->held_len < size) {
                la_ssize_t k = archive_read_data(as->a, as->held + as->held_len, (size_t) size - as->held_len);
                if (k < 0)
                        return archive_fail(as, d);
                if (k == 0)
                        return diag_set(d, -ENODATA,
                                        "%s: %s member '%s' ends early: the file is damaged or incomplete: "
                                        "download it again",
                                        as->st.stream->in.name, kind(as->zip), name);
                as->held_len += (size_t) k;
        }
        /* Reading on to the end lets the zip reader check the CRC. */
        char probe;
        la_ssize_t k = archive_read_data(as->a, &probe, 1);
        if (k < 0)
                return archive_fail(as, d);
        if (k > 0)
                return diag_set(d, -EBADMSG, "%s: %s member '%s' is longer than its header says: the file is damaged",
                                as->st.stream->in.name, kind(as->zip), name);
        as->size = size;
        return 0;
}

static int choose_member(ArchiveStage *as, Diag *d) {
        const char *name = as->st.stream->in.name;

        struct archive_entry *e;
        const char *path;
        uint64_t size;
        int r;

        while ((r = next_file(as, &e, &path, &size, d)) > 0) {
                names_add(&as->seen, path);
                bool match = as->want ? same_name(path, as->want) && (!as->want_candidate || could_be_image(path, size))
                                      : could_be_image(path, size);
                if (match) {
                        if (archive_entry_is_data_encrypted(e))
                                return diag_set(d, -EPROTONOSUPPORT,
                                                "%s: %s member '%s' is encrypted: extract it first", name,
                                                kind(as->zip), path);
                        free(as->member);
                        as->member = shown_dup(path);
                        free(as->member_raw);
                        as->member_raw = strdup(path);
                        if (!as->member || !as->member_raw)
                                return diag_set(d, -ENOMEM, "%s: out of memory", name);
                        as->size = size;
                        as->sparse = archive_entry_sparse_count(e) > 0;
                        free(as->held);
                        as->held = NULL;
                        as->held_len = 0;
                        if (!as->want) {
                                names_add(&as->candidates, path);
                                as->check_rest = true;
                        }
                        return 0;
                }
                if (as->st.stream->keep_bmap && !as->listed && is_kept_name(path)) {
                        r = keep_side(as, as->a, path, size);
                        if (r == -ENOMEM)
                                return diag_set(d, r, "%s: out of memory", name);
                        if (r < 0)
                                return archive_fail(as, d);
                        continue;
                }
                if (!as->want && !as->member && !is_side_name(path) && !archive_entry_is_data_encrypted(e)) {
                        r = hold(as, path, size, d);
                        if (r < 0)
                                return r;
                }
        }
        if (r < 0)
                return r;
        if (as->want)
                return refuse_missing(name, as->zip, as->want, &as->seen, d);
        if (!as->member && as->seen.count > 0)
                return diag_set(d, -ENODATA, "%s: the %s holds no image, only %s: name the image with --member NAME",
                                name, kind(as->zip), as->seen.text);
        if (!as->member)
                return diag_set(d, -ENODATA, "%s: the %s holds no regular file", name, kind(as->zip));
        as->from_held = true;
        return drain(as, d);
}

/* ---- The member list of a local archive, read ahead ---- */

typedef struct Prescan {
        Stream *s;
        uint64_t pos;
        uint8_t *buf;
} Prescan;

static la_ssize_t prescan_read(struct archive *a, void *userdata, const void **ret) {
        Prescan *p = userdata;
        ssize_t k = stream_input_pread(p->s, p->pos, p->buf, CHUNK);
        if (k < 0) {
                archive_set_error(a, (int) -k, "%s", strerror((int) -k));
                return ARCHIVE_FATAL;
        }
        p->pos += (uint64_t) k;
        *ret = p->buf;
        return k;
}

/* What lets the tar reader hop from header to header without reading the
 * data between them. */
static la_int64_t prescan_skip(struct archive *a, void *userdata, la_int64_t request) {
        Prescan *p = userdata;
        uint64_t size = p->s->in.size;
        (void) a;
        if (request <= 0 || p->pos >= size)
                return 0;
        uint64_t n = (uint64_t) request < size - p->pos ? (uint64_t) request : size - p->pos;
        p->pos += n;
        return (la_int64_t) n;
}

/* The zip reader's way to its central directory, at the end. */
static la_int64_t prescan_seek(struct archive *a, void *userdata, la_int64_t offset, int whence) {
        Prescan *p = userdata;
        int64_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? (int64_t) p->pos : (int64_t) p->s->in.size;
        if (offset > INT64_MAX - base || base + offset < 0 || (uint64_t) (base + offset) > p->s->in.size) {
                archive_set_error(a, EINVAL, "seek outside the file");
                return ARCHIVE_FATAL;
        }
        p->pos = (uint64_t) (base + offset);
        return (la_int64_t) p->pos;
}

/* Reads the member list of a local, uncompressed archive: 1 with *ret_name
 * set to the member to stream (the one asked for, or the one candidate);
 * 0 when it has no verdict (no candidate, or an archive it cannot read:
 * streaming will say what is wrong, with offsets); else the refusal. */
static int prescan(ArchiveStage *as, const char *want, char **ret_name, Diag *d) {
        Stream *s = as->st.stream;
        _cleanup_free_ char *found = NULL;
        NameList seen = {}, candidates = {};
        Prescan p = { .s = s };
        bool ok = false, oom = false;
        int damaged = 0;

        struct archive *a = archive_read_new();
        p.buf = malloc(CHUNK);
        int r = a && p.buf ? ARCHIVE_OK : ARCHIVE_FATAL;
        if (r == ARCHIVE_OK)
                r = as->zip ? archive_read_support_format_zip_seekable(a) : archive_read_support_format_tar(a);
        if (r == ARCHIVE_OK)
                r = archive_read_set_callback_data(a, &p);
        if (r == ARCHIVE_OK)
                r = archive_read_set_read_callback(a, prescan_read);
        if (r == ARCHIVE_OK)
                r = archive_read_set_skip_callback(a, prescan_skip);
        if (r == ARCHIVE_OK)
                r = archive_read_set_seek_callback(a, prescan_seek);
        if (r == ARCHIVE_OK)
                r = archive_read_open1(a);
        if (r == ARCHIVE_OK)
                for (;;) {
                        struct archive_entry *e;
                        r = archive_read_next_header(a, &e);
                        if (r == ARCHIVE_EOF) {
                                ok = true;
                                break;
                        }
                        if (r < ARCHIVE_WARN)
                                break;
                        const char *path = archive_entry_pathname(e);
                        if (archive_entry_filetype(e) != AE_IFREG || archive_entry_hardlink(e) || !path)
                                continue;
                        bool known = archive_entry_size_is_set(e) && archive_entry_size(e) >= 0;
                        uint64_t size = known ? (uint64_t) archive_entry_size(e) : UINT64_MAX;
                        if (s->keep_bmap && is_kept_name(path)) {
                                int k = keep_side(as, a, path, size);
                                oom = oom || k == -ENOMEM;
                                /* A bmap member that does not read whole
                                 * (a zip's bad CRC): streaming never reads
                                 * it again when it comes after the image,
                                 * and what was kept of it is no bmap. */
                                if (k == -EIO) {
                                        _cleanup_free_ char *shown = shown_dup(path);
                                        const char *why = archive_error_string(a);
                                        damaged = diag_set(d, -EBADMSG,
                                                           "%s: damaged %s: member '%s': %s: the file is damaged "
                                                           "or incomplete: download it again",
                                                           s->in.name, kind(as->zip), shown ? shown : "?",
                                                           why ? why : "unreadable");
                                }
                                if (k < 0)
                                        break;
                        }
                        names_add(&seen, path);
                        if (want ? same_name(path, want) : could_be_image(path, size)) {
                                if (!want)
                                        names_add(&candidates, path);
                                if (!found) {
                                        found = strdup(path);
                                        oom = oom || !found;
                                }
                        }
                }
        if (a)
                archive_read_free(a);
        free(p.buf);
        if (!a || !p.buf || oom)
                return diag_set(d, -ENOMEM, "%s: out of memory", s->in.name);
        if (damaged < 0)
                return damaged;
        r = stream_input_restore(s, d);
        if (r < 0)
                return r;
        if (!ok)
                return 0;
        as->listed = true;
        if (want && !found)
                return refuse_missing(s->in.name, as->zip, want, &seen, d);
        if (!want && candidates.count > 1)
                return refuse_ambiguous(s->in.name, &candidates, d);
        if (!found)
                return 0;
        *ret_name = TAKE_PTR(found);
        return 1;
}

int archive_stage_new(Stage *lower, Stream *s, bool zip, const char *want, Stage **ret, const char **ret_member,
                      Diag *d) {
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
        as->want = want;
        /* Right above the input (lower replays the bytes looked at): an
         * uncompressed archive, whose headers can be read ahead. */
        bool raw = lower->lower && !lower->lower->lower;
        /* A zip's central directory is worth a few range requests when its
         * bmap is looked for: the bmap is then read wherever it stands. */
        if (raw && s->in.seek && s->in.size > 0 && (s->in.local || (zip && s->keep_bmap))) {
                r = prescan(as, want, &as->want_buf, d);
                if (r < 0) {
                        stage_free(&as->st);
                        return r;
                }
                if (r > 0) {
                        as->want_candidate = !want;
                        as->want = as->want_buf;
                }
        }
        r = choose_member(as, d);
        if (r >= 0 && s->keep_bmap) {
                r = resolve_bmap(as, as->listed || as->from_held, d);
                s->archive_bmap = &as->bmap;
        }
        if (r < 0) {
                s->archive_bmap = NULL;
                stage_free(&as->st);
                return r;
        }
        *ret = &as->st;
        *ret_member = as->member;
        return 0;
}
