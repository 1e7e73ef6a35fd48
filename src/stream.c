/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The image bytes out of whatever holds them: stream_open builds the chain
 * of stages layer by layer (compression, archive, compression inside it),
 * and the stream_* calls read through it. The input over a descriptor is in
 * stream-fd.c, the stage toolkit in stream-stage.c, the detection in
 * stream-detect.c, the decoders and the archive reader in the other
 * stream-*.c. */
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "qcow2.h"
#include "simg.h"
#include "stream-internal.h"

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
        if (!s || input_stage_new(s, &s->top) < 0)
                return diag_set(d, -ENOMEM, "%s: out of memory", in->name);
        s->in = *in;
        s->max_size = o ? o->max_size : UINT64_MAX;
        s->keep_bmap = o && o->keep_bmap;
        s->image = s->top;

        /* Layer 1: the compression of the input. */
        r = prefix_stage_new(s->top, s, &s->top, &head, &head_len, d);
        if (r < 0) {
                s->top = NULL;
                return r;
        }
        if (head_len == 0)
                return diag_set(d, -ENODATA, "%s: the input is empty: the file is incomplete: download it again",
                                in->name);
        if (qcow2_detect(head, head_len)) {
                if (o && o->member)
                        return diag_set(d, -EINVAL,
                                        "%s: a member ('%s') was asked for, but this is no tar or zip archive (it is "
                                        "qcow2): drop --member",
                                        in->name, o->member);
                r = qcow2_stage_new(s->top, s, &s->top, d);
                if (r < 0) {
                        s->top = NULL;
                        return r;
                }
                s->image = s->top;
                snprintf(s->describe, sizeof(s->describe), "qcow2");
                *ret = TAKE_PTR(s);
                return 0;
        }
        StreamFormat outer = detect_compression(head, head_len, &refuse);
        if (refuse)
                return diag_set(d, -EPROTONOSUPPORT, "%s: this is %s", in->name, refuse);
        Stage *outer_stage = NULL;
        if (outer != STREAM_RAW) {
                r = decoder_stage_new(outer, s->top, s, stream_format_name(outer), &s->top, d);
                if (r < 0) {
                        s->top = NULL;
                        return r;
                }
                outer_stage = s->image = s->top;
                /* Layer 2: what the decompressed bytes are. */
                r = prefix_stage_new(s->top, s, &s->top, &head, &head_len, d);
                if (r < 0) {
                        s->top = NULL;
                        return r;
                }
        }

        if (outer != STREAM_RAW && qcow2_detect(head, head_len))
                return diag_set(d, -EPROTONOSUPPORT, "%s: this is a qcow2 image in %s: decompress it first: qcow2 needs "
                                "random access", in->name, stream_format_name(outer));
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
                                in->name, o->member, stream_format_name(outer));
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
                r = prefix_stage_new(s->top, s, &s->top, &head, &head_len, d);
                if (r < 0) {
                        s->top = NULL;
                        return r;
                }
                inner = detect_compression(head, head_len, &refuse);
                if (refuse)
                        return diag_set(d, -EPROTONOSUPPORT, "%s: member '%s' is %s", in->name, member, refuse);
                if (inner != STREAM_RAW) {
                        char label[96];
                        snprintf(label, sizeof(label), "%s (in %s member '%s')", stream_format_name(inner),
                                 c == CONTAINER_ZIP ? "zip" : "tar", member);
                        r = decoder_stage_new(inner, s->top, s, label, &s->top, d);
                        if (r < 0) {
                                s->top = NULL;
                                return r;
                        }
                        s->image = s->top;
                        r = prefix_stage_new(s->top, s, &s->top, &head, &head_len, d);
                        if (r < 0) {
                                s->top = NULL;
                                return r;
                        }
                }
        }
        if (head_len == 0)
                return diag_set(d, -ENODATA, "%s: the image is empty (%s holds no data)", in->name,
                                outer != STREAM_RAW ? stream_format_name(outer) : "the archive member");
        /* Whatever held it, an Android sparse image stands for the image
         * its chunks describe. */
        bool simg = head_len >= 4 && get_le32(head) == SIMG_MAGIC;
        if (simg) {
                r = simg_stage_new(s->top, s, "Android sparse image", &s->top, d);
                if (r < 0) {
                        s->top = NULL;
                        return r;
                }
                s->image = s->top;
                append(s->describe, sizeof(s->describe), "Android sparse image%s",
                       outer != STREAM_RAW || c != CONTAINER_NONE ? " in " : "");
        }

        /* "gzip", "tar in xz (disk.img)", "zstd in tar (disk.img.zst)". */
        if (inner != STREAM_RAW)
                append(s->describe, sizeof(s->describe), "%s in ", stream_format_name(inner));
        if (c != CONTAINER_NONE)
                append(s->describe, sizeof(s->describe), "%s", c == CONTAINER_ZIP ? "zip" : "tar");
        if (outer != STREAM_RAW || (c == CONTAINER_NONE && !simg))
                append(s->describe, sizeof(s->describe), "%s%s", c != CONTAINER_NONE ? " in " : "",
                       stream_format_name(outer));
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
        /* A sparse image pads the image's last partial block past its
         * end: the zeros of that one block are still this image. */
        if (simg_pads(simg_stage_info(s->top), s->offset + k, s->max_size))
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

void stream_archive_bmap(const Stream *s, ArchiveBmap *ret) {
        *ret = s->archive_bmap ? *s->archive_bmap : (ArchiveBmap) { .state = ARCHIVE_BMAP_NO_ARCHIVE };
}

void stream_set_max_size(Stream *s, uint64_t max_size) {
        s->max_size = max_size;
}

uint64_t stream_size_hint(const Stream *s) {
        return s->top->ops->size_hint(s->top);
}

int stream_next_stretch(Stream *s, uint64_t *ret_len, bool *ret_data, Diag *d) {
        Diag local;
        if (!d)
                d = &local;
        if (s->err < 0) {
                *d = s->err_diag;
                return s->err;
        }
        if (!s->top->ops->extent) {
                *ret_len = UINT64_MAX;
                *ret_data = true;
                return 0;
        }
        int r = s->top->ops->extent(s->top, ret_len, ret_data, d);
        return r < 0 ? stream_fail(s, r, d) : 0;
}

const SimgInfo *stream_simg_info(const Stream *s) {
        return simg_stage_info(s->top);
}

void stream_simg_allow_seek(Stream *s) {
        simg_stage_allow_seek(s->top);
}
