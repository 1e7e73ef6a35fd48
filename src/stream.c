/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The image bytes out of whatever holds them: the input, the detection of
 * the format from its first bytes, and the chain of stages that decodes it.
 * The decoders and the archive reader live in stream-*.c. */
#include <fcntl.h>
#include <poll.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include "stream-internal.h"

/* How much of a layer is looked at to tell its format: enough for a tar
 * header and for a few zstd/lz4 skippable frames before the first real one. */
#define HEAD_SIZE ((size_t) 64 << 10)

/* ---- Input over a file descriptor ---- */

static ssize_t fd_read(void *ctx, void *buf, size_t n) {
        int fd = *(int *) ctx;
        for (;;) {
                ssize_t k = read(fd, buf, n);
                if (k >= 0)
                        return k;
                if (errno != EINTR)
                        return -errno;
        }
}

static int fd_seek(void *ctx, uint64_t offset) {
        int fd = *(int *) ctx;
        if (offset > INT64_MAX)
                return -EINVAL;
        if (lseek(fd, (off_t) offset, SEEK_SET) < 0)
                return -errno;
        return 0;
}

/* How long a wait for a pipe's data may hide a cancel request. */
#define FD_POLL_MS 250

static ssize_t fd_source_read(void *ctx, void *buf, size_t n) {
        FdSource *src = ctx;
        for (;;) {
                struct pollfd p = { .fd = src->fd, .events = POLLIN };
                if (src->cancel && *src->cancel)
                        return -ECANCELED;
                int k = poll(&p, 1, FD_POLL_MS);
                if (k < 0 && errno != EINTR)
                        return -errno;
                if (k > 0)
                        return fd_read(&src->fd, buf, n);
        }
}

Input input_from_fd_source(FdSource *src, const char *name) {
        Input in = input_from_fd(&src->fd, name);
        /* A file or a device always has data (or its end) at hand. */
        if (!in.seek)
                in.read = fd_source_read;
        in.ctx = src;
        return in;
}

void fd_source_done(FdSource *src) {
        closep(&src->fd);
        src->fd = -1;
}

Input input_from_fd(int *fd, const char *name) {
        Input in = {
                .name = name,
                .ctx = fd,
                .read = fd_read,
        };
        struct stat st;

        if (fstat(*fd, &st) < 0)
                return in;
        /* Offsets given to seek are offsets in the input, which are file
         * offsets only when reading starts at 0 (not so for a shell's
         * "{ head -c 1; cat; } < file"-style inherited position). */
        if ((S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)) && lseek(*fd, 0, SEEK_CUR) == 0) {
                in.seek = fd_seek;
                in.local = true;
                if (S_ISREG(st.st_mode))
                        in.size = (uint64_t) st.st_size;
                else {
                        uint64_t size;
                        if (ioctl(*fd, BLKGETSIZE64, &size) == 0)
                                in.size = size;
                }
                /* Bigger kernel read-ahead for the one sequential pass. */
                (void) posix_fadvise(*fd, 0, 0, POSIX_FADV_SEQUENTIAL);
        }
        return in;
}

void input_close(Input *in) {
        if (in->close)
                in->close(in->ctx);
        *in = (Input) {};
}

/* ---- Stages: common parts ---- */

void stage_init(Stage *st, const StageOps *ops, Stage *lower, Stream *s, const char *label) {
        st->ops = ops;
        st->lower = lower;
        st->stream = s;
        snprintf(st->label, sizeof(st->label), "%s", label);
        st->out = 0;
        st->decoder = false;
}

void stage_free(Stage *st) {
        while (st) {
                Stage *lower = st->lower;
                st->ops->free(st);
                st = lower;
        }
}

uint64_t stream_image_offset(const Stream *s) {
        return s->image ? s->image->out : 0;
}

const char *stage_where(const Stage *st, char *buf, size_t size) {
        const Stream *s = st->stream;
        if (s->container && st != s->image)
                snprintf(buf, size, "%s byte %" PRIu64 ", image byte %" PRIu64, s->container, st->out,
                         stream_image_offset(s));
        else
                snprintf(buf, size, "image byte %" PRIu64, stream_image_offset(s));
        return buf;
}

int stage_corrupt(Stage *st, Diag *d, uint64_t in_off, const char *detail) {
        char where[96];
        return diag_set(d, -EBADMSG,
                        "%s: corrupt %s data at compressed byte %" PRIu64 " (%s)%s%s: the file is damaged: "
                        "download it again",
                        st->stream->in.name, st->label, in_off, stage_where(st, where, sizeof(where)),
                        detail ? ": " : "", detail ? detail : "");
}

int stage_truncated(Stage *st, Diag *d, uint64_t in_off) {
        char where[96];
        return diag_set(d, -ENODATA,
                        "%s: %s data ends early, at compressed byte %" PRIu64
                        " (%s): the file is incomplete: download it again",
                        st->stream->in.name, st->label, in_off, stage_where(st, where, sizeof(where)));
}

int stage_unsupported(Stage *st, Diag *d, const char *detail) {
        return diag_set(d, -EPROTONOSUPPORT, "%s: %s: %s", st->stream->in.name, st->label, detail);
}

int stage_oom(Stage *st, Diag *d) {
        return diag_set(d, -ENOMEM, "%s: out of memory decoding %s data", st->stream->in.name, st->label);
}

/* ---- Buffers between stages ---- */

int buf_init(Buf *b, Stage *lower) {
        *b = (Buf) { .lower = lower, .cap = STREAM_BUF_SIZE };
        b->data = malloc(b->cap);
        return b->data ? 0 : -ENOMEM;
}

void buf_done(Buf *b) {
        free(b->data);
        b->data = NULL;
}

ssize_t buf_more(Buf *b, Diag *d) {
        if (b->eof)
                return 0;
        if (b->pos > 0) {
                memmove(b->data, b->data + b->pos, b->len - b->pos);
                b->len -= b->pos;
                b->pos = 0;
        }
        if (b->len == b->cap)
                return -ENOBUFS;
        ssize_t k = b->lower->ops->read(b->lower, b->data + b->len, b->cap - b->len, d);
        if (k < 0)
                return k;
        if (k == 0)
                b->eof = true;
        b->len += (size_t) k;
        b->total += (uint64_t) k;
        return k;
}

ssize_t buf_need(Buf *b, size_t k, Diag *d) {
        while (buf_avail(b) < k && !b->eof) {
                ssize_t r = buf_more(b, d);
                if (r < 0)
                        return r;
        }
        return (ssize_t) buf_avail(b);
}

int buf_after_frame(Buf *b, Stage *st, bool (*is_frame)(const uint8_t *p, size_t n), Diag *d) {
        ssize_t r = buf_need(b, 8, d);
        if (r < 0)
                return (int) r;
        if (r == 0)
                return 0;
        if (is_frame(buf_ptr(b), (size_t) r))
                return 1;
        /* Zero bytes after the data (a file padded to a block size) are no
         * image bytes and harm nothing; anything else means damage. */
        for (;;) {
                const uint8_t *p = buf_ptr(b);
                size_t n = buf_avail(b), i = 0;
                while (i < n && p[i] == 0)
                        i++;
                b->pos += i;
                if (i < n) {
                        char where[96];
                        return diag_set(d, -EBADMSG,
                                        "%s: unexpected data after the end of the %s data, at compressed byte %" PRIu64
                                        " (%s): the file is damaged: download it again",
                                        st->stream->in.name, st->label, buf_offset(b),
                                        stage_where(st, where, sizeof(where)));
                }
                r = buf_more(b, d);
                if (r < 0)
                        return (int) r;
                if (r == 0)
                        return 0;
        }
}

/* ---- The input stage ---- */

typedef struct InputStage {
        Stage st;
        uint64_t pos;
} InputStage;

static ssize_t input_read(Stage *st, void *buf, size_t n, Diag *d) {
        InputStage *is = (InputStage *) st;
        const Input *in = &st->stream->in;
        size_t done = 0;

        while (done < n) {
                ssize_t k = in->read(in->ctx, (uint8_t *) buf + done, n - done);
                if (k < 0 && in->error)
                        return diag_set(d, (int) k, "%s", in->error(in->ctx));
                if (k < 0)
                        return diag_set(d, (int) k, "%s: read error at byte %" PRIu64 ": %s", in->name,
                                        is->pos, strerror((int) -k));
                if (k == 0)
                        break;
                done += (size_t) k;
                is->pos += (uint64_t) k;
        }
        st->out += done;
        return (ssize_t) done;
}

static int input_skip(Stage *st, uint64_t n, Diag *d) {
        InputStage *is = (InputStage *) st;
        const Input *in = &st->stream->in;

        if (!in->seek)
                return -ESPIPE;
        if (in->size > 0 && (is->pos > in->size || n > in->size - is->pos))
                return diag_set(d, -ENODATA,
                                "%s: the image ends at byte %" PRIu64 ", before byte %" PRIu64
                                ": the file is incomplete: download it again",
                                in->name, in->size, is->pos + n);
        int r = in->seek(in->ctx, is->pos + n);
        if (r < 0 && in->error)
                return diag_set(d, r, "%s", in->error(in->ctx));
        if (r < 0)
                return diag_set(d, r, "%s: cannot seek to byte %" PRIu64 ": %s", in->name, is->pos + n,
                                strerror(-r));
        is->pos += n;
        st->out += n;
        return 0;
}

static InputStage *input_stage(Stream *s) {
        Stage *st = s->top;
        while (st->lower)
                st = st->lower;
        return (InputStage *) st;
}

ssize_t stream_input_pread(Stream *s, uint64_t off, void *buf, size_t n) {
        if (!s->in.seek)
                return -ESPIPE;
        int r = s->in.seek(s->in.ctx, off);
        if (r < 0)
                return r;
        size_t done = 0;
        while (done < n) {
                ssize_t k = s->in.read(s->in.ctx, (uint8_t *) buf + done, n - done);
                if (k < 0)
                        return k;
                if (k == 0)
                        break;
                done += (size_t) k;
        }
        return (ssize_t) done;
}

int stream_input_restore(Stream *s, Diag *d) {
        uint64_t pos = input_stage(s)->pos;
        int r = s->in.seek(s->in.ctx, pos);
        if (r < 0 && s->in.error)
                return diag_set(d, r, "%s", s->in.error(s->in.ctx));
        if (r < 0)
                return diag_set(d, r, "%s: cannot seek back to byte %" PRIu64 ": %s", s->in.name, pos, strerror(-r));
        return 0;
}

static uint64_t input_size_hint(const Stage *st) {
        return st->stream->in.size > 0 ? st->stream->in.size : UINT64_MAX;
}

static void input_free(Stage *st) {
        free(st);
}

static const StageOps input_ops = {
        .read = input_read,
        .skip = input_skip,
        .size_hint = input_size_hint,
        .free = input_free,
};

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

/* Reads the first bytes of lower and puts a stage in front of it that gives
 * them again; on failure lower is freed. */
static int peek_stage(Stage *lower, Stream *s, Stage **ret, const uint8_t **ret_head, size_t *ret_len,
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

typedef enum Container {
        CONTAINER_NONE,
        CONTAINER_TAR,
        CONTAINER_ZIP,
} Container;

static const char *const format_names[_STREAM_FORMAT_MAX] = {
        [STREAM_RAW] = "raw",
        [STREAM_GZIP] = "gzip",
        [STREAM_BZIP2] = "bzip2",
        [STREAM_XZ] = "xz",
        [STREAM_ZSTD] = "zstd",
        [STREAM_LZ4] = "lz4",
};

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
        { "QFI\xfb", 4, "a qcow2 image: convert it with 'qemu-img convert -O raw'" },
        { "KDMV", 4, "a VMDK image: convert it with 'qemu-img convert -O raw'" },
        { "vhdxfile", 8, "a VHDX image: convert it with 'qemu-img convert -O raw'" },
        { "\x3a\xff\x26\xed", 4, "an Android sparse image: convert it with simg2img" },
};

/* The compression of a layer from its first n bytes (all of it when
 * n < HEAD_SIZE). *ret_refused is set for the formats refused above. */
static StreamFormat detect_compression(const uint8_t *p, size_t n, const char **ret_refused) {
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

static Container detect_container(const uint8_t *p, size_t n) {
        if (is_tar_header(p, n))
                return CONTAINER_TAR;
        /* A local file header, or the end record of an empty archive. */
        if (n >= 4 && (memcmp(p, "PK\x03\x04", 4) == 0 || memcmp(p, "PK\x05\x06", 4) == 0))
                return CONTAINER_ZIP;
        return CONTAINER_NONE;
}

static int decoder_new(StreamFormat f, Stage *lower, Stream *s, const char *label, Stage **ret, Diag *d) {
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
        default:
                stage_free(lower);
                return diag_set(d, -EINVAL, "%s: no decoder for format %d", s->in.name, (int) f);
        }
}

/* ---- The stream ---- */

static void append(char *buf, size_t size, const char *fmt, ...) _printf_(3, 4);
static void append(char *buf, size_t size, const char *fmt, ...) {
        size_t n = strnlen(buf, size);
        if (n + 1 >= size)
                return;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf + n, size - n, fmt, ap);
        va_end(ap);
}

int stream_open(const Input *in, const StreamOptions *o, Stream **ret, Diag *d) {
        _cleanup_stream_ Stream *s = NULL;
        const uint8_t *head;
        size_t head_len;
        const char *refuse;
        int r;

        s = calloc(1, sizeof(*s));
        InputStage *is = calloc(1, sizeof(*is));
        if (!s || !is) {
                free(is);
                return diag_set(d, -ENOMEM, "%s: out of memory", in->name);
        }
        s->in = *in;
        s->max_size = o ? o->max_size : UINT64_MAX;
        stage_init(&is->st, &input_ops, NULL, s, "raw");
        s->top = s->image = &is->st;

        /* Layer 1: the compression of the input. */
        r = peek_stage(s->top, s, &s->top, &head, &head_len, d);
        if (r < 0) {
                s->top = NULL;
                return r;
        }
        if (head_len == 0)
                return diag_set(d, -ENODATA, "%s: the input is empty: the file is incomplete: download it again",
                                in->name);
        StreamFormat outer = detect_compression(head, head_len, &refuse);
        if (refuse)
                return diag_set(d, -EPROTONOSUPPORT, "%s: this is %s", in->name, refuse);
        Stage *outer_stage = NULL;
        if (outer != STREAM_RAW) {
                r = decoder_new(outer, s->top, s, format_names[outer], &s->top, d);
                if (r < 0) {
                        s->top = NULL;
                        return r;
                }
                outer_stage = s->image = s->top;
                /* Layer 2: what the decompressed bytes are. */
                r = peek_stage(s->top, s, &s->top, &head, &head_len, d);
                if (r < 0) {
                        s->top = NULL;
                        return r;
                }
        }

        Container c = detect_container(head, head_len);
        if (outer == STREAM_XZ && c == CONTAINER_NONE && in->seek && in->size > 0) {
                r = xz_stage_read_index(outer_stage, d);
                if (r < 0)
                        return r;
        }
        const char *member = NULL;
        StreamFormat inner = STREAM_RAW;
        if (o && o->member && c == CONTAINER_NONE)
                return diag_set(d, -EINVAL,
                                "%s: a member ('%s') was asked for, but this is no tar or zip archive (it is %s): "
                                "drop --member",
                                in->name, o->member, format_names[outer]);
        if (c != CONTAINER_NONE) {
                /* Until the member is found, no image byte has been read. */
                s->image = NULL;
                s->container = c == CONTAINER_ZIP ? "zip" : "tar";
                r = archive_stage_new(s->top, s, c == CONTAINER_ZIP, o ? o->member : NULL, &s->top, &member, d);
                if (r < 0) {
                        s->top = NULL;
                        return r;
                }
                s->image = s->top;
                s->member = member;
                /* Layer 3: an image compressed on its own inside the archive
                 * ("disk.img.xz" in a tar). */
                r = peek_stage(s->top, s, &s->top, &head, &head_len, d);
                if (r < 0) {
                        s->top = NULL;
                        return r;
                }
                inner = detect_compression(head, head_len, &refuse);
                if (refuse)
                        return diag_set(d, -EPROTONOSUPPORT, "%s: member '%s' is %s", in->name, member, refuse);
                if (inner != STREAM_RAW) {
                        char label[96];
                        snprintf(label, sizeof(label), "%s (in %s member '%s')", format_names[inner],
                                 c == CONTAINER_ZIP ? "zip" : "tar", member);
                        r = decoder_new(inner, s->top, s, label, &s->top, d);
                        if (r < 0) {
                                s->top = NULL;
                                return r;
                        }
                        s->image = s->top;
                        r = peek_stage(s->top, s, &s->top, &head, &head_len, d);
                        if (r < 0) {
                                s->top = NULL;
                                return r;
                        }
                }
        }
        if (head_len == 0)
                return diag_set(d, -ENODATA, "%s: the image is empty (%s holds no data)", in->name,
                                outer != STREAM_RAW ? format_names[outer] : "the archive member");

        /* "gzip", "tar in xz (disk.img)", "zstd in tar (disk.img.zst)". */
        if (inner != STREAM_RAW)
                append(s->describe, sizeof(s->describe), "%s in ", format_names[inner]);
        if (c != CONTAINER_NONE)
                append(s->describe, sizeof(s->describe), "%s", c == CONTAINER_ZIP ? "zip" : "tar");
        if (outer != STREAM_RAW || c == CONTAINER_NONE)
                append(s->describe, sizeof(s->describe), "%s%s", c != CONTAINER_NONE ? " in " : "",
                       format_names[outer]);
        if (member)
                append(s->describe, sizeof(s->describe), " (%s)", member);
        *ret = TAKE_PTR(s);
        return 0;
}

void stream_free(Stream *s) {
        if (!s)
                return;
        stage_free(s->top);
        free(s->scratch);
        free(s);
}

static int stream_fail(Stream *s, int r, Diag *d) {
        s->err = r;
        if (d)
                s->err_diag = *d;
        return r;
}

/* The image must not decode to more than the bmap says: a few KiB of
 * compressed zeros can stand for terabytes, and decoding them all only to
 * refuse them at the end takes as long (29 s for 100 GiB behind a 1 GiB
 * bmap). The check is on image bytes, after each read: exact, with no
 * slack, since a good image never gives a byte past its size; what is
 * decoded beyond it is bounded by one caller's read (the copy reads 4 MiB
 * at a time) plus the decoders' buffers (a few MiB; xz's threads a block
 * each). The compressed offset is how far the input has been read, so
 * read-ahead included. */
static int check_max_size(Stream *s, uint64_t k, Diag *d) {
        if (s->max_size == UINT64_MAX || (s->offset <= s->max_size && k <= s->max_size - s->offset))
                return 0;
        Stage *in = s->top;
        while (in->lower)
                in = in->lower;
        return stream_fail(s,
                           diag_set(d, -EFBIG,
                                    "%s: decodes to more than %" PRIu64 " bytes (the bmap's image size), by "
                                    "compressed byte %" PRIu64 ": not this image, or damaged: check that the bmap "
                                    "belongs to it",
                                    s->in.name, s->max_size, in->out),
                           d);
}

ssize_t stream_read(Stream *s, void *buf, size_t n, Diag *d) {
        if (s->err < 0) {
                if (d)
                        *d = s->err_diag;
                return s->err;
        }
        if (n > SSIZE_MAX)
                n = SSIZE_MAX;
        Diag local;
        ssize_t k = s->top->ops->read(s->top, buf, n, d ? d : &local);
        if (k < 0)
                return stream_fail(s, (int) k, d ? d : &local);
        int r = check_max_size(s, (uint64_t) k, d ? d : &local);
        if (r < 0)
                return r;
        s->offset += (uint64_t) k;
        return k;
}

int stream_skip(Stream *s, uint64_t n, Diag *d) {
        Diag local;
        if (!d)
                d = &local;
        if (s->err < 0) {
                *d = s->err_diag;
                return s->err;
        }
        if (n == 0)
                return 0;
        if (s->top->ops->skip) {
                int r = s->top->ops->skip(s->top, n, d);
                if (r >= 0) {
                        s->offset += n;
                        return 0;
                }
                if (r != -ESPIPE)
                        return stream_fail(s, r, d);
        }
        if (!s->scratch) {
                s->scratch = malloc(STREAM_BUF_SIZE);
                if (!s->scratch)
                        return diag_set(d, -ENOMEM, "%s: out of memory", s->in.name);
        }
        while (n > 0) {
                size_t want = n < STREAM_BUF_SIZE ? (size_t) n : STREAM_BUF_SIZE;
                ssize_t k = s->top->ops->read(s->top, s->scratch, want, d);
                if (k < 0)
                        return stream_fail(s, (int) k, d);
                int r = check_max_size(s, (uint64_t) k, d);
                if (r < 0)
                        return r;
                s->offset += (uint64_t) k;
                if ((size_t) k < want)
                        return stream_fail(s,
                                           diag_set(d, -ENODATA,
                                                    "%s: the image ends at byte %" PRIu64 ", before byte %" PRIu64
                                                    ": the file is incomplete: download it again",
                                                    s->in.name, s->offset, s->offset + (n - (uint64_t) k)),
                                           d);
                n -= (uint64_t) k;
        }
        return 0;
}

bool stream_is_encoded(const Stream *s) {
        for (const Stage *st = s->top; st; st = st->lower)
                if (st->decoder)
                        return true;
        return s->container != NULL;
}

uint64_t stream_offset(const Stream *s) {
        return s->offset;
}

const char *stream_member(const Stream *s) {
        return s->member;
}

const char *stream_describe(const Stream *s) {
        return s->describe;
}

uint64_t stream_size_hint(const Stream *s) {
        return s->top->ops->size_hint(s->top);
}
