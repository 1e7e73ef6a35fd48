/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "extents.h"
#include "util.h"

typedef enum ChecksumType {
        CHECKSUM_NONE,
        CHECKSUM_SHA1,
        CHECKSUM_SHA256,
} ChecksumType;

#define CHECKSUM_MAX_SIZE 32
/* No bmap is larger: refused beyond, unread. */
#define BMAP_MAX_SIZE (1024u << 20)

size_t checksum_size(ChecksumType t);
const char *checksum_name(ChecksumType t);

typedef enum FileChecksumState {
        FILE_CHECKSUM_ABSENT, /* format 1.2, or the element is missing */
        FILE_CHECKSUM_OK,
        FILE_CHECKSUM_BAD,
} FileChecksumState;

/* One <Range>: blocks [blocks.start, blocks.end) and, when the bmap has one,
 * the checksum of their bytes (cut at the image size). */
typedef struct BmapRange {
        Extent blocks;
        bool has_checksum;
        uint8_t checksum[CHECKSUM_MAX_SIZE];
        unsigned line; /* where it stands in the bmap file, for messages */
} BmapRange;

typedef struct Bmap {
        unsigned version_major, version_minor;
        uint64_t image_size;
        uint64_t block_size;
        uint64_t blocks_count;
        uint64_t mapped_count;
        ChecksumType checksum_type;
        FileChecksumState file_checksum;
        BmapRange *ranges;
        size_t n_ranges;
} Bmap;

void bmap_done(Bmap *b);

/* Range i in bytes, cut at the image size (its last block may be partial):
 * what is read, hashed and written for it. Not for checking a range
 * against the image: the parser does that in blocks. */
static inline Extent bmap_range_bytes(const Bmap *b, size_t i) {
        return extent_bytes(b->ranges[i].blocks, b->block_size, b->image_size);
}

/* How every transfer of a URL goes (input-http.h); NULL: the defaults. */
typedef struct HttpContext HttpContext;

/* Parses a bmap (format 1.0 to 2.x) from memory and checks it. name is used
 * in messages. Every inconsistency is refused with -EBADMSG and a message;
 * a wrong file checksum too, unless allow_bad_file_checksum (for "info",
 * which reports it). The DTD is never read, entities are never expanded and
 * nothing is fetched. */
int bmap_parse(const char *data, size_t len, const char *name, bool allow_bad_file_checksum, Bmap *ret,
               Diag *d);
/* bmap_fetch (a URL with the default transfer options) and bmap_parse,
 * without the signature check that bmap_open (bmap-open.h) adds. */
int bmap_load(const char *path, bool allow_bad_file_checksum, Bmap *ret, Diag *d);
/* The reading half of bmap_load: the file's bytes (from a path or a URL),
 * with its messages, for callers that check a signature before parsing. */
int bmap_fetch(const char *location, HttpContext *http, char **ret_data, size_t *ret_len, Diag *d);

/* Whether a bmap file is a clearsigned OpenPGP message (after an optional
 * UTF-8 BOM and whitespace): its XML must then be verified and taken out
 * (bmap-sig.h) before bmap_parse, which refuses it. */
bool bmap_text_is_clearsigned(const char *data, size_t len);

/* Where the bmap of an image is, as bmaptool looks for it: IMAGE.bmap, then
 * the name with one extension stripped at a time (a.img.xz: a.img.xz.bmap,
 * a.img.bmap, a.bmap). For a URL only the last segment of its path loses
 * extensions, and a ?query stays at the end (a download token is likely
 * needed for the bmap too): https://h/a.img.xz?t=1 gives
 * https://h/a.img.xz.bmap?t=1, https://h/a.img.bmap?t=1, https://h/a.bmap?t=1.
 * -ENOENT when none exists; tried lists the names looked at (passwords
 * hidden), for the message. Another failure (a server that does not
 * answer) comes with a message in d. */
int bmap_find(const char *image, HttpContext *http, char **ret_path, char *tried, size_t tried_len, Diag *d);

/* The ranges as a list of block extents, one per range, not merged (for the
 * hasher: one checksum per range). */
int bmap_range_list(const Bmap *b, Extents *ret);

/* The mapped blocks as one extent set. */
int bmap_mapped_blocks(const Bmap *b, Extents *ret);
/* The bytes of the image no range maps (what copy --discard discards). */
int bmap_unmapped_bytes(const Bmap *b, Extents *ret);

/* Renders a bmap 2.0, laid out byte for byte like bmaptool 3.6's: blocks is
 * the list of ranges (sorted and disjoint; they may touch, see
 * extents_split), checksums (or NULL for none) one SHA-256 per range. */
int bmap_render(uint64_t image_size, uint64_t block_size, const Extents *blocks,
                const uint8_t (*checksums)[CHECKSUM_MAX_SIZE], char **ret_text, size_t *ret_len);

/* A bmap 2.0 of image_size bytes in blocks of block_size whose ranges are
 * blocks (sorted and disjoint, inside the image; one range each, not
 * merged), as bmap_parse would give for bmap_render's text, but without
 * checksums yet (checksum_type CHECKSUM_NONE): a scan's map before the copy
 * that hashes it. -EINVAL, -ERANGE, -ENOMEM. */
int bmap_from_ranges(uint64_t image_size, uint64_t block_size, const Extents *blocks, Bmap *ret);

/* Computes the file checksum of a rendered bmap: the digest of the text with
 * the checksum field's value replaced by as many ASCII zeros. */
int bmap_file_checksum(const char *text, size_t len, ChecksumType t, size_t field_offset, size_t field_len,
                       uint8_t *ret);
