/* SPDX-License-Identifier: GPL-2.0-or-later */
/* lzop's .lzo files through liblzo2, over every member of the file ("cat
 * a.lzo b.lzo"). lzop's format is a header (magic, versions, method, flags,
 * mode, mtime, name, a header checksum) and blocks of at most 64 MiB, each
 * with its two lengths and the checksums the flags ask for; a block whose
 * compressed length equals its length is stored. liblzo2 only decodes a
 * block: the header, the lengths and every checksum are checked here, and
 * whatever this code does not know (a filter, a multipart file, a reserved
 * flag, an lzop newer than the format known here) is refused, not guessed. */
#include <inttypes.h>
#include <lzo1x.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "stream-internal.h"

static const uint8_t lzop_magic[9] = { 0x89, 'L', 'Z', 'O', 0x00, '\r', '\n', 0x1a, '\n' };

/* Header flags (lzop's names). */
#define F_ADLER32_D 0x00000001u
#define F_ADLER32_C 0x00000002u
#define F_H_EXTRA_FIELD 0x00000040u
#define F_CRC32_D 0x00000100u
#define F_CRC32_C 0x00000200u
#define F_MULTIPART 0x00000400u
#define F_H_FILTER 0x00000800u
#define F_H_CRC32 0x00001000u
/* The defined flags, the creating OS and the name's character set: the
 * other bits must be zero. */
#define F_KNOWN (0x00003FFFu | 0xFF000000u | 0x00F00000u)

/* lzop 1.04 is the newest format; files needing more may use features this
 * reader does not know. 0.94 changed the header (lzop refuses older). */
#define LZOP_VERSION_MAX 0x1040u
#define LZOP_VERSION_MIN 0x0940u
/* lzop refuses blocks above this; so do we, so that a damaged length cannot
 * make us allocate gigabytes. */
#define LZOP_BLOCK_MAX ((uint32_t) 64 << 20)
/* lzop writes no extra field; one that is there must fit the input buffer. */
#define LZOP_EXTRA_MAX ((uint32_t) 1 << 20)

enum { M_LZO1X_1 = 1, M_LZO1X_1_15 = 2, M_LZO1X_999 = 3 };

typedef struct LzoStage {
        Stage st;
        Buf in;
        bool between;          /* before a member's header */
        uint32_t flags;        /* of the current member */
        uint8_t *block;        /* the current block, decoded */
        size_t block_len, block_pos;
        uint8_t *cbuf;         /* a compressed block larger than the input buffer */
        size_t cbuf_cap, block_cap;
} LzoStage;

static pthread_once_t lzo_once = PTHREAD_ONCE_INIT;
static int lzo_init_result;

static void lzo_init_once(void) {
        lzo_init_result = lzo_init();
}

static bool is_lzo_member(const uint8_t *p, size_t n) {
        /* A partial magic at the very end is a member cut short, said as
         * such by the header's reader, not trailing garbage. */
        return n > 0 && memcmp(p, lzop_magic, n < sizeof(lzop_magic) ? n : sizeof(lzop_magic)) == 0;
}

static uint32_t checksum(bool crc, const uint8_t *p, size_t n) {
        return crc ? lzo_crc32(0, p, n) : lzo_adler32(1, p, n);
}

/* Reads the member header at the buffer's position; consumes it when good. */
static int lzo_header(LzoStage *l, Diag *d) {
        Stage *st = &l->st;
        uint64_t start = buf_offset(&l->in);
        char detail[128];

        /* The longest header: magic, 2+2+2+1+1, flags, filter, mode, two
         * mtimes, the name (255) and the checksum: 297 bytes. */
        ssize_t avail = buf_need(&l->in, 512, d);
        if (avail < 0)
                return (int) avail;
        const uint8_t *p = buf_ptr(&l->in);
        size_t n = (size_t) avail, i = sizeof(lzop_magic);
#define NEED(k)                                                                 \
        do {                                                                    \
                if (n - i < (size_t) (k))                                       \
                        return stage_truncated(st, d, start + n);               \
        } while (0)

        if (n < sizeof(lzop_magic))
                return stage_truncated(st, d, start + n);
        if (memcmp(p, lzop_magic, sizeof(lzop_magic)) != 0)
                return stage_corrupt(st, d, start, "no lzop magic where a member should start");
        NEED(6);
        uint16_t version = get_be16(p + i), need = get_be16(p + i + 4);
        if (version < LZOP_VERSION_MIN)
                return stage_unsupported(st, d, "written by lzop before 0.94 (an older header format): "
                                                "decompress it with lzop -d first");
        if (need > LZOP_VERSION_MAX || need < 0x0900) {
                snprintf(detail, sizeof(detail),
                         "needs lzop %x.%03x to extract, newer than this reader knows: decompress it with "
                         "lzop -d first",
                         need >> 12, need & 0xfff);
                return need < 0x0900 ? stage_corrupt(st, d, start + i + 4, "impossible lzop version")
                                     : stage_unsupported(st, d, detail);
        }
        i += 6;
        NEED(2 + 4);
        uint8_t method = p[i], level = p[i + 1];
        uint32_t flags = get_be32(p + i + 2);
        i += 6;
        if (method != M_LZO1X_1 && method != M_LZO1X_1_15 && method != M_LZO1X_999) {
                snprintf(detail, sizeof(detail),
                         "compression method %u (not LZO1X-1, LZO1X-1(15) or LZO1X-999): decompress it with "
                         "lzop -d first",
                         method);
                return stage_unsupported(st, d, detail);
        }
        if (level > 9)
                return stage_corrupt(st, d, start + 16, "compression level above 9");
        if (flags & F_H_FILTER)
                return stage_unsupported(st, d, "uses a filter (lzop --filter): decompress it with lzop -d first");
        if (flags & F_MULTIPART)
                return stage_unsupported(st, d, "is a multipart lzop file: decompress it with lzop -d first");
        if (flags & ~F_KNOWN) {
                snprintf(detail, sizeof(detail),
                         "unknown header flags 0x%08" PRIx32 ": decompress it with lzop -d first", flags & ~F_KNOWN);
                return stage_unsupported(st, d, detail);
        }
        /* mode, mtime low and high (mode and mtime are the file's: unused). */
        NEED(12 + 1);
        i += 12;
        size_t name_len = p[i];
        i += 1;
        NEED(name_len + 4);
        i += name_len;
        bool hcrc = flags & F_H_CRC32;
        uint32_t want = get_be32(p + i);
        if (checksum(hcrc, p + sizeof(lzop_magic), i - sizeof(lzop_magic)) != want)
                return stage_corrupt(st, d, start + i,
                                     hcrc ? "header CRC-32 does not match" : "header Adler-32 does not match");
        i += 4;
        if (flags & F_H_EXTRA_FIELD) {
                /* Its length and bytes, then their checksum. */
                NEED(4);
                uint32_t extra = get_be32(p + i);
                if (extra > LZOP_EXTRA_MAX)
                        return stage_corrupt(st, d, start + i, "header extra field larger than 1 MiB");
                avail = buf_need(&l->in, i + 4 + extra + 4, d);
                if (avail < 0)
                        return (int) avail;
                p = buf_ptr(&l->in);
                n = (size_t) avail;
                NEED(4 + extra + 4);
                if (checksum(hcrc, p + i, 4 + extra) != get_be32(p + i + 4 + extra))
                        return stage_corrupt(st, d, start + i + 4 + extra,
                                             "header extra field checksum does not match");
                i += 4 + extra + 4;
        }
#undef NEED
        l->in.pos += i;
        l->flags = flags;
        return 0;
}

static int grow(uint8_t **buf, size_t *cap, size_t want) {
        if (*cap >= want)
                return 0;
        uint8_t *p = realloc(*buf, want);
        if (!p)
                return -ENOMEM;
        *buf = p;
        *cap = want;
        return 0;
}

/* Decodes the next block of the member into out when it has room for it
 * (room ≥ the block's length), else into l->block. Returns the block's
 * length, 0 at the member's end, or a negative errno. */
static ssize_t lzo_block(LzoStage *l, uint8_t *out, size_t room, Diag *d) {
        Stage *st = &l->st;
        uint64_t start = buf_offset(&l->in);
        uint32_t f = l->flags;

        ssize_t avail = buf_need(&l->in, 4, d);
        if (avail < 0)
                return avail;
        if (avail < 4)
                return stage_truncated(st, d, start + (uint64_t) avail);
        uint32_t dlen = get_be32(buf_ptr(&l->in));
        if (dlen == 0) {
                l->in.pos += 4;
                return 0;
        }
        if (dlen == UINT32_MAX)
                return stage_unsupported(st, d, "is a split lzop file: decompress it with lzop -d first");
        if (dlen > LZOP_BLOCK_MAX)
                return stage_corrupt(st, d, start, "block longer than lzop's 64 MiB");

        size_t hlen = 8;
        avail = buf_need(&l->in, hlen, d);
        if (avail < 0)
                return avail;
        if ((size_t) avail < hlen)
                return stage_truncated(st, d, start + (uint64_t) avail);
        uint32_t clen = get_be32(buf_ptr(&l->in) + 4);
        if (clen == 0 || clen > dlen)
                return stage_corrupt(st, d, start + 4, "compressed block length is 0 or above the block's length");
        bool stored = clen == dlen;
        /* The checksums of the compressed bytes are absent for a stored
         * block (they would be those of its data). */
        hlen += 4 * (!!(f & F_ADLER32_D) + !!(f & F_CRC32_D) +
                     (stored ? 0 : !!(f & F_ADLER32_C) + !!(f & F_CRC32_C)));
        avail = buf_need(&l->in, hlen, d);
        if (avail < 0)
                return avail;
        if ((size_t) avail < hlen)
                return stage_truncated(st, d, start + (uint64_t) avail);
        const uint8_t *h = buf_ptr(&l->in) + 8;
        uint32_t d_adler = 0, d_crc = 0, c_adler = 0, c_crc = 0;
        if (f & F_ADLER32_D)
                d_adler = get_be32(h), h += 4;
        if (f & F_CRC32_D)
                d_crc = get_be32(h), h += 4;
        if (!stored && (f & F_ADLER32_C))
                c_adler = get_be32(h), h += 4;
        if (!stored && (f & F_CRC32_C))
                c_crc = get_be32(h), h += 4;
        l->in.pos += hlen;

        /* The compressed bytes: in place in the input buffer when they fit
         * there (lzop's blocks are 256 KiB), else gathered. */
        uint64_t data_off = buf_offset(&l->in);
        const uint8_t *src;
        if (clen <= l->in.cap) {
                avail = buf_need(&l->in, clen, d);
                if (avail < 0)
                        return avail;
                if ((size_t) avail < clen)
                        return stage_truncated(st, d, data_off + (uint64_t) avail);
                src = buf_ptr(&l->in);
        } else {
                if (grow(&l->cbuf, &l->cbuf_cap, clen) < 0)
                        return stage_oom(st, d);
                size_t got = 0;
                while (got < clen) {
                        if (buf_avail(&l->in) == 0) {
                                ssize_t k = buf_more(&l->in, d);
                                if (k < 0)
                                        return k;
                                if (k == 0)
                                        return stage_truncated(st, d, data_off + got);
                        }
                        size_t k = buf_avail(&l->in) < clen - got ? buf_avail(&l->in) : clen - got;
                        memcpy(l->cbuf + got, buf_ptr(&l->in), k);
                        l->in.pos += k;
                        got += k;
                }
                src = l->cbuf;
        }
        if (!stored && (f & F_ADLER32_C) && lzo_adler32(1, src, clen) != c_adler)
                return stage_corrupt(st, d, data_off, "block Adler-32 of the compressed data does not match");
        if (!stored && (f & F_CRC32_C) && lzo_crc32(0, src, clen) != c_crc)
                return stage_corrupt(st, d, data_off, "block CRC-32 of the compressed data does not match");

        uint8_t *dst = out;
        if (room < dlen) {
                if (grow(&l->block, &l->block_cap, dlen) < 0)
                        return stage_oom(st, d);
                dst = l->block;
        }
        if (stored)
                memcpy(dst, src, dlen);
        else {
                lzo_uint made = dlen;
                int r = lzo1x_decompress_safe(src, clen, dst, &made, NULL);
                if (r != LZO_E_OK || made != dlen) {
                        char detail[96];
                        snprintf(detail, sizeof(detail), "LZO1X block does not decode (liblzo2 error %d)", r);
                        return stage_corrupt(st, d, data_off,
                                             r == LZO_E_OK ? "block decodes to another length" : detail);
                }
        }
        if (clen <= l->in.cap)
                l->in.pos += clen;
        if ((f & F_ADLER32_D) && lzo_adler32(1, dst, dlen) != d_adler)
                return stage_corrupt(st, d, data_off, "block Adler-32 of the decompressed data does not match");
        if ((f & F_CRC32_D) && lzo_crc32(0, dst, dlen) != d_crc)
                return stage_corrupt(st, d, data_off, "block CRC-32 of the decompressed data does not match");
        if (dst == l->block) {
                l->block_len = dlen;
                l->block_pos = 0;
        }
        return (ssize_t) dlen;
}

static ssize_t lzo_read(Stage *st, void *buf, size_t n, Diag *d) {
        LzoStage *l = (LzoStage *) st;
        uint8_t *out = buf;
        size_t done = 0;

        while (done < n) {
                if (l->block_pos < l->block_len) {
                        size_t k = l->block_len - l->block_pos < n - done ? l->block_len - l->block_pos : n - done;
                        memcpy(out + done, l->block + l->block_pos, k);
                        l->block_pos += k;
                        done += k;
                        st->out += k;
                        continue;
                }
                if (l->between) {
                        int r = buf_after_frame(&l->in, st, is_lzo_member, d);
                        if (r <= 0)
                                return r < 0 ? r : (ssize_t) done;
                        r = lzo_header(l, d);
                        if (r < 0)
                                return r;
                        l->between = false;
                }
                l->block_len = l->block_pos = 0;
                ssize_t k = lzo_block(l, out + done, n - done, d);
                if (k < 0)
                        return k;
                if (k == 0)
                        l->between = true;
                else if (l->block_len == 0) {
                        done += (size_t) k;
                        st->out += (uint64_t) k;
                }
        }
        return (ssize_t) done;
}

static uint64_t lzo_size_hint(const Stage *st) {
        /* lzop records no length, and a file may hold several members. */
        return UINT64_MAX;
}

static void lzo_free(Stage *st) {
        LzoStage *l = (LzoStage *) st;
        free(l->block);
        free(l->cbuf);
        buf_done(&l->in);
        free(l);
}

static const StageOps lzo_ops = {
        .read = lzo_read,
        .size_hint = lzo_size_hint,
        .free = lzo_free,
};

int lzo_stage_new(Stage *lower, Stream *s, const char *label, Stage **ret, Diag *d) {
        pthread_once(&lzo_once, lzo_init_once);
        if (lzo_init_result != LZO_E_OK) {
                stage_free(lower);
                return diag_set(d, -EPROTONOSUPPORT, "%s: liblzo2 failed to initialise (%d)", s->in.name,
                                lzo_init_result);
        }
        LzoStage *l = calloc(1, sizeof(*l));
        if (!l || buf_init(&l->in, lower) < 0) {
                free(l);
                stage_free(lower);
                return diag_set(d, -ENOMEM, "%s: out of memory", s->in.name);
        }
        stage_init(&l->st, &lzo_ops, lower, s, label);
        l->st.decoder = true;
        l->between = true;
        *ret = &l->st;
        return 0;
}
