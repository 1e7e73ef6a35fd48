/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <signal.h>
#include <stdint.h>
#include <sys/types.h>

#include "util.h"

/* Where the raw (possibly compressed) bytes come from: a file, stdin, and
 * later a URL. read returns bytes read (possibly fewer than asked), 0 at the
 * end, or a negative errno; seek (NULL when the input cannot seek) moves to
 * an absolute offset counted from the first byte the stream reads; size is
 * the total number of bytes when known (file or device size, HTTP
 * Content-Length), 0 when not. */
typedef struct Input {
        const char *name;
        void *ctx;
        ssize_t (*read)(void *ctx, void *buf, size_t n);
        int (*seek)(void *ctx, uint64_t offset);
        /* When not NULL: the one-line message of the last failed read or
         * seek, naming the input and the byte offset and saying what to do
         * (an HTTP input knows more than an errno can say). */
        const char *(*error)(void *ctx);
        /* When not NULL: releases ctx (see input_close). */
        void (*close)(void *ctx);
        uint64_t size;
        /* Seeks cost no round trip (a local file or device): an archive's
         * member list may be read ahead, before the image is streamed. */
        bool local;
} Input;

/* Releases what the Input holds (nothing for input_from_fd) and clears it;
 * free after the Stream reading it. */
void input_close(Input *in);

/* An Input over a file descriptor (which stays the caller's, as does the
 * int it points to); read(2) with EINTR retried. Seekable, with a size,
 * when the descriptor is a regular file or a block device positioned at
 * its start; a pipe or a terminal is read as it comes. */
Input input_from_fd(int *fd, const char *name);

/* A descriptor and the flag (set by a signal handler) that cancels a wait
 * on it. fd comes first: an Input over an FdSource is also one over its
 * int. */
typedef struct FdSource {
        int fd;
        const volatile sig_atomic_t *cancel;
} FdSource;

/* As input_from_fd, but a pipe or terminal with nothing to read is waited
 * on in slices of a quarter second, and the read fails with -ECANCELED
 * once *src->cancel is set: an interrupted copy from a stalled stdin ends
 * at once instead of when the writer goes away. */
Input input_from_fd_source(FdSource *src, const char *name);
/* Closes src->fd if open. */
void fd_source_done(FdSource *src);

typedef enum StreamFormat {
        STREAM_RAW,
        STREAM_GZIP,
        STREAM_BZIP2,
        STREAM_XZ,
        STREAM_ZSTD,
        STREAM_LZ4,
        STREAM_LZO,
        _STREAM_FORMAT_MAX,
} StreamFormat;

/* The image bytes, decompressed in the process. The format is told from the
 * first bytes, not the name: gzip (multi-member, as pigz writes), bzip2
 * (multi-stream), xz (multi-stream and multi-block, decoded on several
 * threads), zstd (several frames, skippable frames), lz4 (frame format), lzo
 * (lzop's format, several members, every checksum it carries);
 * and the same inside a tar, or a zip; and an image compressed on its own
 * inside a tar or zip ("disk.img.xz" in a tar). Memory is bounded whatever
 * the image (a few MiB of buffers; xz's threads hold a block each).
 *
 * Which archive member is the image: the one StreamOptions.member names,
 * else the one regular file that could be the image: named *.img, *.raw,
 * *.bin, *.iso, *.wic, *.dd, *.sdcard, *.hdd or *.image (optionally
 * followed by .gz/.xz/.zst/.bz2/.lz4/.lzo) and of 64 KiB or more, or of 1 MiB or
 * more (or of unknown size) whatever its name, but never a side file
 * (*.bmap, *.asc, *.sig, *.sha256, README*, SHA256SUMS...: see
 * stream-archive.c). An archive of small files only gives its first that
 * is no side file. When several members could be the image, none is
 * chosen: the error names them. A local uncompressed tar or zip has its
 * member list read first (headers only), so that this fails before any
 * image byte is read; a streamed or compressed archive can only tell once
 * the first candidate has been read, and then its last read fails.
 *
 * Input starting with a zip local header ("PK\3\4") is a zip, and an error
 * if it does not read as one: a raw disk image starts with boot code, a
 * partition table, a file system or zeros, and writing a damaged archive
 * onto a disk helps nobody. Likewise 7z, RAR, lzip, .Z, lz4 legacy, qcow2,
 * VMDK and VHDX are refused with what to do, not written raw. An Android
 * sparse image, bare, compressed or in an archive, is expanded (see
 * stream_simg_info). Empty input, and an image of 0 bytes, are errors.
 *
 * After the end of the compressed data only zero bytes may follow (a file
 * padded to a block size); anything else is an error. xz follows its own
 * format's rule (stream padding in multiples of 4 zero bytes). When the
 * image is inside a compressed tar, the rest of the compressed stream is
 * still decoded at the end, so that its checksums are checked. */
typedef struct Stream Stream;

typedef struct StreamOptions {
        /* The archive member that is the image (a path as the archive lists
         * it, with or without a leading "./"), or NULL to choose as above.
         * An error when the input is no archive, or has no such file. */
        const char *member;
        /* The image size the bmap gives, or UINT64_MAX. An image that
         * decodes to more is refused as soon as it does, so that a
         * decompression bomb is not decoded to its end first. */
        uint64_t max_size;
        /* Keep the image's bmap when the archive holds one (see
         * stream_archive_bmap): the bmap members and their detached
         * signatures are read as the archive reader passes them. */
        bool keep_bmap;
} StreamOptions;

typedef enum ArchiveBmapState {
        ARCHIVE_BMAP_NO_ARCHIVE, /* the image is in no tar or zip (or keep_bmap was not asked) */
        ARCHIVE_BMAP_FOUND,
        ARCHIVE_BMAP_NONE,       /* every member was listed: none is the image's bmap */
        ARCHIVE_BMAP_NOT_BEFORE, /* read as a stream: none came before the image, and what
                                  * follows it cannot be read before the image is */
} ArchiveBmapState;

/* The image's bmap inside its own archive: the first member named as the
 * image member plus ".bmap", with one extension stripped at a time as
 * bmap_find does beside a file ("disk.img.xz" gives "disk.img.xz.bmap",
 * "disk.img.bmap", "disk.bmap"), then, in a zip, ".meta/image.bmap"
 * (etcher's convention); its detached signature is the member named as
 * the bmap plus ".asc", ".sig" or ".gpg". A local uncompressed archive,
 * and a zip whose input can seek (HTTP ranges), are listed first, so the
 * bmap is read wherever it stands; a streamed archive (stdin, compressed,
 * a tar over HTTP) gives only the members before the image. Each bmap
 * member is kept up to BMAP_MAX_SIZE bytes, all of them together too. */
typedef struct ArchiveBmap {
        ArchiveBmapState state;
        const char *container;   /* "tar" or "zip" */
        const char *looked_for;  /* the member names tried, for messages */
        const char *member;      /* FOUND: the bmap member, as shown */
        const char *data;        /* FOUND: its bytes */
        size_t len;
        const char *sig_member;  /* its detached signature member, or NULL */
        const char *sig;
        size_t sig_len;
} ArchiveBmap;

/* o may be NULL: choose the member, no size limit. */
int stream_open(const Input *in, const StreamOptions *o, Stream **ret, Diag *d);
void stream_free(Stream *s);
static inline void stream_freep(Stream **s) {
        stream_free(*s);
}
#define _cleanup_stream_ __attribute__((cleanup(stream_freep)))

/* What stream_open found of the image's bmap inside its archive (with
 * StreamOptions.keep_bmap); the pointers live as long as s. */
void stream_archive_bmap(const Stream *s, ArchiveBmap *ret);

/* Sets StreamOptions.max_size once the bmap is known, when that bmap came
 * out of the stream's own archive: before the first read. */
void stream_set_max_size(Stream *s, uint64_t max_size);

/* Reads up to n bytes of the image: returns the count (less than n only at
 * the end), 0 at the end, or a negative errno with a message that names
 * the input, the format, the compressed offset and the image offset, e.g.
 * "image.img.gz: corrupt gzip data at compressed byte 123456 (image byte
 * 1048576): invalid deflate block: the file is damaged: download it again",
 * or "... data ends early, at compressed byte ...". A stream that ends
 * before its format says it should is an error, never a short success.
 * After an error, every later call fails the same way. */
ssize_t stream_read(Stream *s, void *buf, size_t n, Diag *d);

/* Skips n bytes forward: a seek on a raw seekable input, else decoding and
 * discarding. Skipping past the end is an error (-ENODATA). */
int stream_skip(Stream *s, uint64_t n, Diag *d);

/* Whether the image passes through a decoder or an archive (and so has
 * integrity checks and a length of its own at the end of the input), as
 * opposed to being the raw input itself. */
bool stream_is_encoded(const Stream *s);

/* Bytes of image delivered (or skipped) so far. */
uint64_t stream_offset(const Stream *s);
/* "raw", "gzip", "xz", "tar in gzip (disk.img)", "xz in tar (disk.img.xz)",
 * "zip (disk.img)"... for messages and reports. */
const char *stream_describe(const Stream *s);
/* The archive member that is the image ("disk.img", control characters
 * shown as '?'), or NULL when the image is in no archive. */
const char *stream_member(const Stream *s);
/* The exact image size when the container says it (raw file or device
 * size, tar/zip entry size, xz index of a seekable file), else UINT64_MAX.
 * gzip, bzip2, zstd, lz4 and lzo give none: their headers, when they record a
 * size at all, record one member's or frame's, and a file may hold several. */
uint64_t stream_size_hint(const Stream *s);

/* What the next stretch of the image is, from where the stream is: data
 * (*ret_data true), or bytes the image leaves undefined (an Android sparse
 * image's DONT_CARE chunks: they read as zeros, but a copy without a bmap
 * skips them); *ret_len is its length, UINT64_MAX for "data to the end"
 * (every image that is no sparse image), 0 at the end. */
int stream_next_stretch(Stream *s, uint64_t *ret_len, bool *ret_data, Diag *d);

/* An image that is an Android sparse image (told by its magic, after any
 * compression or archive) is read as the image it stands for: RAW and FILL
 * chunks give their bytes, DONT_CARE chunks zeros, CRC32 chunks (and the
 * header's image checksum) are checked against the output, and its size
 * hint is total_blks × blk_sz. What its chunks held so far (all of them
 * once it was read or skipped to its end), or NULL for any other image. */
const struct SimgInfo *stream_simg_info(const Stream *s);
/* A skip over an Android sparse image's RAW data may seek rather than read
 * it: its CRC32 chunks are then not checked (stream_simg_info counts them
 * as unchecked). Only for a caller that checks what it reads otherwise (a
 * bmap's checksums) or tells what went unchecked; by default RAW data is
 * read and its CRC checked, so that data written is never left unchecked
 * by a skip before it. No-op for other images. */
void stream_simg_allow_seek(Stream *s);
