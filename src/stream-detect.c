/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What a layer of the stream is, told from its first bytes (compression,
 * archive, or a format refused), the stage that gives those bytes again
 * after they were looked at, and the decoder for each format. */
#include <string.h>

#include "stream-internal.h"

/* How much of a layer is looked at to tell its format: enough for a tar
 * header and for a few zstd/lz4 skippable frames before the first real one. */
#define HEAD_SIZE ((size_t) 64 << 10)

/* ---- Replay of the bytes looked at for detection ---- */

typedef struct PrefixStage {
        Stage st;
        uint8_t *head;
        size_t pos, len;
} PrefixStage;

static ssize_t prefix_read(Stage *st, void *buf, size_t n, Diag *d) {
        PrefixStage *ps = (PrefixStage *) st;
        size_t done = 0;

        if (ps->pos < ps->len) {
                done = n < ps->len - ps->pos ? n : ps->len - ps->pos;
                memcpy(buf, ps->head + ps->pos, done);
                ps->pos += done;
                if (ps->pos == ps->len) {
                        free(ps->head);
                        ps->head = NULL;
                }
        }
        if (done < n) {
                ssize_t k = st->lower->ops->read(st->lower, (uint8_t *) buf + done, n - done, d);
                if (k < 0)
                        return k;
                done += (size_t) k;
        }
        st->out += done;
        return (ssize_t) done;
}

static int prefix_skip(Stage *st, uint64_t n, Diag *d) {
        PrefixStage *ps = (PrefixStage *) st;

        if (!st->lower->ops->skip)
                return -ESPIPE;
        uint64_t k = ps->len - ps->pos;
        if (k > n)
                k = n;
        if (k < n) {
                int r = st->lower->ops->skip(st->lower, n - k, d);
                if (r < 0)
                        return r;
        }
        ps->pos += (size_t) k;
        st->out += n;
        return 0;
}

static uint64_t prefix_size_hint(const Stage *st) {
        return st->lower->ops->size_hint(st->lower);
}

static void prefix_free(Stage *st) {
        free(((PrefixStage *) st)->head);
        free(st);
}

static const StageOps prefix_ops = {
        .read = prefix_read,
        .skip = prefix_skip,
        .size_hint = prefix_size_hint,
        .free = prefix_free,
};

int prefix_stage_new(Stage *lower, Stream *s, Stage **ret, const uint8_t **ret_head, size_t *ret_len,
                     Diag *d) {
        PrefixStage *ps = calloc(1, sizeof(*ps));
        uint8_t *head = malloc(HEAD_SIZE);
        if (!ps || !head) {
                free(ps);
                free(head);
                stage_free(lower);
                return diag_set(d, -ENOMEM, "%s: out of memory", s->in.name);
        }
        ssize_t k = lower->ops->read(lower, head, HEAD_SIZE, d);
        if (k < 0) {
                free(ps);
                free(head);
                stage_free(lower);
                return (int) k;
        }
        stage_init(&ps->st, &prefix_ops, lower, s, lower->label);
        ps->st.decoder = lower->decoder;
        ps->head = head;
        ps->len = (size_t) k;
        *ret = &ps->st;
        *ret_head = head;
        *ret_len = (size_t) k;
        return 0;
}

/* ---- Detection ---- */

static const char *const format_names[_STREAM_FORMAT_MAX] = {
        [STREAM_RAW] = "raw",
        [STREAM_GZIP] = "gzip",
        [STREAM_BZIP2] = "bzip2",
        [STREAM_XZ] = "xz",
        [STREAM_ZSTD] = "zstd",
        [STREAM_LZ4] = "lz4",
        [STREAM_LZO] = "lzo",
};

const char *stream_format_name(StreamFormat f) {
        return format_names[f];
}

static bool is_skippable_magic(uint32_t m) {
        /* zstd and lz4 share these. */
        return (m & 0xFFFFFFF0u) == 0x184D2A50u;
}

/* Formats recognised only to be refused: written raw, they would put an
 * archive or a container on the disk instead of the image it holds. A raw
 * disk image starts with boot code, a partition table, a file system or
 * zeros, never with one of these. */
static const struct {
        const char *magic;
        size_t len;
        const char *what;
} refused[] = {
        { "\x02\x21\x4c\x18", 4, "lz4 legacy format (lz4 -l): recompress it with plain lz4" },
        { "7z\xbc\xaf\x27\x1c", 6, "a 7-Zip archive: extract the image first" },
        { "Rar!\x1a\x07", 6, "a RAR archive: extract the image first" },
        { "LZIP", 4, "lzip data: decompress it first" },
        { "\x1f\x9d", 2, "compress (.Z) data: decompress it first" },
        /* Read as an image when it is the input itself (stream-qcow2.c). */
        { "QFI\xfb", 4, "a qcow2 image, which is read at random: decompress or extract it first: qcow2 needs random access" },
        { "KDMV", 4, "a VMDK image: convert it with 'qemu-img convert -O raw'" },
        { "vhdxfile", 8, "a VHDX image: convert it with 'qemu-img convert -O raw'" },
};

StreamFormat detect_compression(const uint8_t *p, size_t n, const char **ret_refused) {
        *ret_refused = NULL;
        if (n >= 2 && p[0] == 0x1f && p[1] == 0x8b)
                return STREAM_GZIP;
        if (n >= 6 && memcmp(p, "\xfd" "7zXZ\0", 6) == 0)
                return STREAM_XZ;
        if (n >= 4 && memcmp(p, "BZh", 3) == 0 && p[3] >= '1' && p[3] <= '9' &&
            (n < 10 || memcmp(p + 4, "\x31\x41\x59\x26\x53\x59", 6) == 0 ||
             memcmp(p + 4, "\x17\x72\x45\x38\x50\x90", 6) == 0))
                return STREAM_BZIP2;
        if (n >= 4 && get_le32(p) == 0xFD2FB528u)
                return STREAM_ZSTD;
        if (n >= 4 && get_le32(p) == 0x184D2204u)
                return STREAM_LZ4;
        /* lzop's magic, PNG-like: 0x89 "LZO" NUL CR LF ^Z LF. */
        if (n >= 9 && memcmp(p, "\x89LZO\0\r\n\x1a\n", 9) == 0)
                return STREAM_LZO;
        if (n >= 8 && is_skippable_magic(get_le32(p))) {
                /* Skippable frames are zstd's and lz4's alike: the first
                 * real frame tells. */
                size_t off = 0;
                while (off + 8 <= n && is_skippable_magic(get_le32(p + off))) {
                        uint64_t next = off + 8 + (uint64_t) get_le32(p + off + 4);
                        if (next > n)
                                return STREAM_ZSTD;
                        off = (size_t) next;
                }
                if (off + 4 <= n && get_le32(p + off) == 0x184D2204u)
                        return STREAM_LZ4;
                return STREAM_ZSTD;
        }
        for (size_t i = 0; i < ELEMENTSOF(refused); i++)
                if (n >= refused[i].len && memcmp(p, refused[i].magic, refused[i].len) == 0) {
                        *ret_refused = refused[i].what;
                        return STREAM_RAW;
                }
        return STREAM_RAW;
}

static uint64_t parse_octal(const uint8_t *p, size_t n, bool *ok) {
        uint64_t v = 0;
        size_t i = 0;
        *ok = false;
        while (i < n && p[i] == ' ')
                i++;
        size_t start = i;
        for (; i < n && p[i] >= '0' && p[i] <= '7'; i++)
                v = v * 8 + (uint64_t) (p[i] - '0');
        if (i == start || (i < n && p[i] != ' ' && p[i] != 0))
                return 0;
        *ok = true;
        return v;
}

static bool is_tar_header(const uint8_t *p, size_t n) {
        if (n < 512 || memcmp(p + 257, "ustar", 5) != 0)
                return false;
        bool ok;
        uint64_t want = parse_octal(p + 148, 8, &ok);
        if (!ok)
                return false;
        /* The sum of the header bytes with the checksum field read as
         * spaces; some old tars summed signed chars. */
        uint64_t sum = 0;
        int64_t ssum = 0;
        for (size_t i = 0; i < 512; i++) {
                uint8_t c = i >= 148 && i < 156 ? ' ' : p[i];
                sum += c;
                ssum += (int8_t) c;
        }
        return sum == want || (ssum >= 0 && (uint64_t) ssum == want);
}

Container detect_container(const uint8_t *p, size_t n) {
        if (is_tar_header(p, n))
                return CONTAINER_TAR;
        /* A local file header, or the end record of an empty archive. */
        if (n >= 4 && (memcmp(p, "PK\x03\x04", 4) == 0 || memcmp(p, "PK\x05\x06", 4) == 0))
                return CONTAINER_ZIP;
        return CONTAINER_NONE;
}

int decoder_stage_new(StreamFormat f, Stage *lower, Stream *s, const char *label, Stage **ret, Diag *d) {
        switch (f) {
        case STREAM_GZIP:
                return gzip_stage_new(lower, s, label, ret, d);
        case STREAM_BZIP2:
                return bzip2_stage_new(lower, s, label, ret, d);
        case STREAM_XZ:
                return xz_stage_new(lower, s, label, ret, d);
        case STREAM_ZSTD:
                return zstd_stage_new(lower, s, label, ret, d);
        case STREAM_LZ4:
                return lz4_stage_new(lower, s, label, ret, d);
        case STREAM_LZO:
                return lzo_stage_new(lower, s, label, ret, d);
        default:
                stage_free(lower);
                return diag_set(d, -EINVAL, "%s: no decoder for format %d", s->in.name, (int) f);
        }
}
