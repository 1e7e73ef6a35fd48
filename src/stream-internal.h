/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What the stream layers share: a Stream is a chain of stages, each reading
 * from the one below it (input → decoder → tar/zip → decoder). Only the
 * stream-*.c files include this. */
#pragma once

#include "stream.h"

/* Input buffers of the decoders: large, so that the libraries run long
 * loops and the input costs few system calls. */
#define STREAM_BUF_SIZE ((size_t) 2 << 20)

typedef struct Stage Stage;

typedef struct StageOps {
        /* Fills buf with n bytes, fewer only at the end; 0 at the end; or a
         * negative errno with d filled. */
        ssize_t (*read)(Stage *st, void *buf, size_t n, Diag *d);
        /* Moves n bytes forward without reading them; -ESPIPE (with nothing
         * consumed) when this stage cannot. NULL means never. */
        int (*skip)(Stage *st, uint64_t n, Diag *d);
        /* What the next stretch of output is: data (*ret_data) or a stretch
         * the image does not give (an Android sparse image's DONT_CARE),
         * and its length, 0 at the end. NULL means data to the end. */
        int (*extent)(Stage *st, uint64_t *ret_len, bool *ret_data, Diag *d);
        /* The uncompressed size this stage knows of, or UINT64_MAX. */
        uint64_t (*size_hint)(const Stage *st);
        void (*free)(Stage *st);
} StageOps;

struct Stage {
        const StageOps *ops;
        Stage *lower;          /* owned; NULL for the input */
        Stream *stream;        /* for messages: input name and image offset */
        char label[96];        /* "gzip", "zstd (in tar member 'a.img.zst')" */
        uint64_t out;          /* bytes this stage has produced so far */
        bool decoder;          /* checks its own integrity (checksums) */
};

struct Stream {
        Input in;
        Stage *top;
        Stage *image;          /* whose output is the image (its offset) */
        const char *container; /* "tar" or "zip" when the image is in one */
        const char *member;    /* the archive member that is the image, or NULL */
        uint64_t max_size;     /* StreamOptions.max_size */
        bool keep_bmap;        /* StreamOptions.keep_bmap */
        const ArchiveBmap *archive_bmap; /* set by the archive stage, which owns it */
        char describe[160];
        uint64_t offset;
        int err;               /* sticky: once failed, every call fails */
        Diag err_diag;
        uint8_t *scratch;
};

/* The toolkit (stream-stage.c). */

/* A buffer over the stage below a decoder. */
typedef struct Buf {
        Stage *lower;
        uint8_t *data;
        size_t cap, pos, len;
        bool eof;
        uint64_t total;        /* bytes read from lower so far */
} Buf;

int buf_init(Buf *b, Stage *lower);
void buf_done(Buf *b);
static inline size_t buf_avail(const Buf *b) {
        return b->len - b->pos;
}
static inline const uint8_t *buf_ptr(const Buf *b) {
        return b->data + b->pos;
}
/* Offset in the lower stream of the next unconsumed byte. */
static inline uint64_t buf_offset(const Buf *b) {
        return b->total - (b->len - b->pos);
}
/* Reads more from below, keeping the unconsumed bytes: returns the number
 * of new bytes, 0 at the end (eof set), or a negative errno. */
ssize_t buf_more(Buf *b, Diag *d);
/* Makes at least k bytes available (k ≤ cap) unless the end comes first;
 * returns the bytes available or a negative errno. */
ssize_t buf_need(Buf *b, size_t k, Diag *d);
/* Between frames: the rest of the input must be zero bytes (returns 0, all
 * consumed) or the start of another frame (returns 1, nothing consumed of
 * it); anything else is trailing garbage (-EBADMSG, d filled). */
int buf_after_frame(Buf *b, Stage *st, bool (*is_frame)(const uint8_t *p, size_t n), Diag *d);

/* For a seekable input: reads at an offset of the input, away from where
 * the stream is (fewer bytes only at the end); stream_input_restore seeks
 * back there. */
ssize_t stream_input_pread(Stream *s, uint64_t off, void *buf, size_t n);
int stream_input_restore(Stream *s, Diag *d);

void stage_init(Stage *st, const StageOps *ops, Stage *lower, Stream *s, const char *label);
void stage_free(Stage *st);
uint64_t stream_image_offset(const Stream *s);
/* Where st is, for messages: "image byte Y", or below an archive "tar byte
 * X, image byte Y". */
const char *stage_where(const Stage *st, char *buf, size_t size);

/* Messages: "NAME: corrupt LABEL data at compressed byte X (image byte Y):
 * DETAIL: the file is damaged or incomplete: download it again". */
int stage_corrupt(Stage *st, Diag *d, uint64_t in_off, const char *detail);
int stage_truncated(Stage *st, Diag *d, uint64_t in_off);
int stage_unsupported(Stage *st, Diag *d, const char *detail);
int stage_oom(Stage *st, Diag *d);

/* The stage at the bottom of every chain: reads s->in, counting its bytes
 * (s->in must be set before the first read). */
int input_stage_new(Stream *s, Stage **ret);

/* Detection (stream-detect.c). */
typedef enum Container {
        CONTAINER_NONE,
        CONTAINER_TAR,
        CONTAINER_ZIP,
} Container;

/* "raw", "gzip", "xz"... */
const char *stream_format_name(StreamFormat f);
/* Reads the first bytes of lower (enough to tell its format) and puts a
 * stage in front of it that gives them again. *ret_head and *ret_len are
 * those bytes (fewer than looked for only at the end, none for an empty
 * layer), owned by the new stage and valid until it is first read. On
 * failure lower is freed. */
int prefix_stage_new(Stage *lower, Stream *s, Stage **ret, const uint8_t **ret_head, size_t *ret_len,
                     Diag *d);
/* The compression of a layer from its first n bytes, as prefix_stage_new
 * gave them. *ret_refused is set (and STREAM_RAW returned) for a format
 * recognised only to be refused: what it is and what to do. */
StreamFormat detect_compression(const uint8_t *p, size_t n, const char **ret_refused);
/* Whether a layer's first bytes start a tar or a zip archive. */
Container detect_container(const uint8_t *p, size_t n);
/* The decoder of format f over lower, which it owns from then on (also on
 * failure). */
int decoder_stage_new(StreamFormat f, Stage *lower, Stream *s, const char *label, Stage **ret, Diag *d);

/* Decoders over lower, which they own from then on (also on failure). */
int gzip_stage_new(Stage *lower, Stream *s, const char *label, Stage **ret, Diag *d);
int bzip2_stage_new(Stage *lower, Stream *s, const char *label, Stage **ret, Diag *d);
int xz_stage_new(Stage *lower, Stream *s, const char *label, Stage **ret, Diag *d);
/* Learns the image size from the index at the end of a seekable xz file
 * (a few small reads); fails only when the input cannot go back. */
int xz_stage_read_index(Stage *st, Diag *d);
int zstd_stage_new(Stage *lower, Stream *s, const char *label, Stage **ret, Diag *d);
int lz4_stage_new(Stage *lower, Stream *s, const char *label, Stage **ret, Diag *d);
int lzo_stage_new(Stage *lower, Stream *s, const char *label, Stage **ret, Diag *d);
/* An Android sparse image read from lower, which starts with its magic
 * (stream-simg.c); simg_stage_info gives what its chunks held so far, or
 * NULL when st is no such stage. */
int simg_stage_new(Stage *lower, Stream *s, const char *label, Stage **ret, Diag *d);
const struct SimgInfo *simg_stage_info(const Stage *st);
void simg_stage_allow_seek(Stage *st);
/* A qcow2's virtual disk, read through the seekable input below lower
 * (which it owns from then on, also on failure); refused when the input
 * cannot seek. */
int qcow2_stage_new(Stage *lower, Stream *s, Stage **ret, Diag *d);
/* The image inside a tar or zip archive read from lower: the member named
 * want, or else the one that could be the image; ret_member names the
 * chosen entry (owned by the stage). */
int archive_stage_new(Stage *lower, Stream *s, bool zip, const char *want, Stage **ret, const char **ret_member,
                      Diag *d);
