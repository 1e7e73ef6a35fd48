/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "integrity.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "image.h"
#include "layout.h"
#include "util.h"

/* ---- dm-verity superblock ---- */

int verity_super_parse(const uint8_t *buf, size_t n, VeritySuper *ret) {
        VeritySuper v = {};

        if (n < VERITY_SUPER_SIZE || memcmp(buf, "verity\0\0", 8) != 0)
                return -EINVAL;
        if (get_le32(buf + 8) != 1)
                return -EINVAL;
        v.hash_type = get_le32(buf + 12);
        v.data_block_size = get_le32(buf + 64);
        v.hash_block_size = get_le32(buf + 68);
        v.data_blocks = get_le64(buf + 72);
        /* veritysetup takes block sizes from 512 bytes to 512 KiB, powers
         * of two; the salt fits its 256-byte field. */
        for (int i = 0; i < 2; i++) {
                uint32_t b = i ? v.hash_block_size : v.data_block_size;
                if (b < 512 || b > (512u << 10) || (b & (b - 1)) != 0)
                        return -EINVAL;
        }
        if (v.hash_type > 1 || get_le16(buf + 80) > 256)
                return -EINVAL;
        memcpy(v.algorithm, buf + 32, 32);
        v.algorithm[32] = 0;
        if (!v.algorithm[0])
                return -EINVAL;
        *ret = v;
        return 0;
}

uint64_t verity_data_bytes(const VeritySuper *v) {
        if (v->data_blocks > UINT64_MAX / v->data_block_size)
                return 0;
        return v->data_blocks * v->data_block_size;
}

/* ---- Android AVB ---- */

int avb_footer_parse(const uint8_t *buf, uint64_t part_size, AvbFooter *ret) {
        AvbFooter f;

        if (memcmp(buf, "AVBf", 4) != 0)
                return -EINVAL;
        f = (AvbFooter) {
                .version_major = get_be32(buf + 4),
                .version_minor = get_be32(buf + 8),
                .original_image_size = get_be64(buf + 12),
                .vbmeta_offset = get_be64(buf + 20),
                .vbmeta_size = get_be64(buf + 28),
        };
        *ret = f;
        if (f.original_image_size > part_size || f.vbmeta_offset > part_size ||
            f.vbmeta_size > part_size - f.vbmeta_offset)
                return -EBADMSG;
        return 0;
}

bool avb_vbmeta_at(const uint8_t *buf, size_t n) {
        /* The magic and a required libavb major version of 1. */
        return n >= 8 && memcmp(buf, "AVB0", 4) == 0 && get_be32(buf + 4) == 1;
}

/* ---- Discoverable Partitions Specification ---- */

static const struct {
        const char *arch;
        const char *guid[6]; /* root, usr, root-verity, usr-verity, root-verity-sig, usr-verity-sig */
} dps_table[] = {
        { "x86-64",
          { "4f68bce3-e8cd-4db1-96e7-fbcaf984b709", "8484680c-9521-48c6-9c11-b0720656f69e",
            "2c7357ed-ebd2-46d9-aec1-23d437ec2bf5", "77ff5f63-e7b6-4633-acf4-1565b864c0e6",
            "41092b05-9fc8-4523-994f-2def0408b176", "e7bb33fb-06cf-4e81-8273-e543b413e2e2" } },
        { "arm64",
          { "b921b045-1df0-41c3-af44-4c6f280d3fae", "b0e01050-ee5f-4390-949a-9101b17104e9",
            "df3300ce-d69f-4c92-978c-9bfb0f38d820", "6e11a4e7-fbca-4ded-b9e9-e1a512bb664e",
            "6db69de6-29f4-4758-a7a5-962190f00ce3", "c23ce4ff-44bd-4b00-b2d4-b41b3419e02a" } },
        { "x86",
          { "44479540-f297-41b2-9af7-d131d5f0458a", "75250d76-8cc6-458e-bd66-bd47cc81a812",
            "d13c5d3b-b5d1-422a-b29f-9454fdc89d76", "8f461b0d-14ee-4e81-9aa9-049b6fb97abd",
            "5996fc05-109c-48de-808b-23fa0830b676", "974a71c0-de41-43c3-be5d-5c5ccd1ad2c0" } },
        { "arm",
          { "69dad710-2ce4-4e3c-b16c-21a1d49abed3", "7d0359a3-02b3-4f0a-865c-654403e70625",
            "7386cdf2-203c-47a9-a498-f2ecce45a2d6", "c215d751-7bcd-4649-be90-6627490a4c05",
            "42b0455f-eb11-491d-98d3-56145ba9d037", "d7ff812f-37d1-4902-a810-d76ba57b975a" } },
        { "riscv64",
          { "72ec70a6-cf74-40e6-bd49-4bda08e8f224", "beaec34b-8442-439b-a40b-984381ed097d",
            "b6ed5582-440b-4209-b8da-5ff7c419ea3d", "8f1056be-9b05-47c4-81d6-be53128e5b54",
            "efe0f087-ea8d-4469-821a-4c2a96a8386a", "d2f9000a-7a18-453f-b5cd-4d32f77a7b32" } },
};

DpsType dps_type(const char *guid) {
        if (guid)
                for (size_t i = 0; i < ELEMENTSOF(dps_table); i++)
                        for (int k = 0; k < 6; k++)
                                if (strcasecmp(guid, dps_table[i].guid[k]) == 0)
                                        return (DpsType) { .role = (DpsRole) (DPS_ROOT + k), .arch = dps_table[i].arch };
        return (DpsType) { .role = DPS_OTHER };
}

DpsRole dps_data_role(DpsRole verity_role) {
        switch (verity_role) {
        case DPS_ROOT_VERITY:
        case DPS_ROOT_VERITY_SIG:
                return DPS_ROOT;
        case DPS_USR_VERITY:
        case DPS_USR_VERITY_SIG:
                return DPS_USR;
        default:
                return DPS_OTHER;
        }
}

bool dps_is_verity(DpsRole role) {
        return role == DPS_ROOT_VERITY || role == DPS_USR_VERITY;
}

bool dps_is_verity_sig(DpsRole role) {
        return role == DPS_ROOT_VERITY_SIG || role == DPS_USR_VERITY_SIG;
}

int verity_sig_root_hash(const Reader *r, uint8_t *ret_hash, size_t max, size_t *ret_len) {
        /* The object is small (a hash, a certificate fingerprint and a
         * PKCS#7 signature in base64); 64 KiB is far more than systemd
         * writes. Only the rootHash member is read, so a full JSON parser
         * is not needed: the key is unique and its value a hex string. */
        char buf[65536];
        uint64_t n = r->size < sizeof(buf) - 1 ? r->size : sizeof(buf) - 1;
        const char *p, *q;
        size_t len;
        int k;

        if (n == 0 || reader_read(r, 0, buf, (size_t) n) < 0)
                return -EINVAL;
        buf[n] = 0;
        if (buf[0] != '{')
                return -EINVAL;
        p = strstr(buf, "\"rootHash\"");
        if (!p)
                return -EINVAL;
        p += strlen("\"rootHash\"");
        p += strspn(p, " \t\r\n");
        if (*p++ != ':')
                return -EINVAL;
        p += strspn(p, " \t\r\n");
        if (*p++ != '"')
                return -EINVAL;
        q = strchr(p, '"');
        if (!q)
                return -EINVAL;
        len = (size_t) (q - p);
        if (len == 0 || len % 2 || len / 2 > max)
                return -EINVAL;
        k = hex_decode(p, len / 2, ret_hash);
        if (k < 0)
                return -EINVAL;
        *ret_len = len / 2;
        return 0;
}

static void format_uuid(const uint8_t b[16], char out[37]) {
        snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2],
                 b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

void verity_uuids_from_root_hash(const uint8_t *hash, size_t len, char ret_data[37], char ret_hash[37]) {
        /* systemd copies the bytes into an id128 whose string form is the
         * bytes in order; libfdisk prints GPT GUIDs in that same form. */
        format_uuid(hash, ret_data);
        format_uuid(hash + len - 16, ret_hash);
}

/* ---- The tail past a filesystem ---- */

/* Reads are this large so that an expanded tail of zeros costs little. */
#define TAIL_CHUNK (UINT64_C(1) << 20)
#define TAIL_BLOCK UINT64_C(4096)

void tail_scan_done(TailScan *t) {
        if (!t)
                return;
        extents_done(&t->nonzero);
        *t = (TailScan) {};
}

static bool all_zero(const uint8_t *p, size_t n) {
        /* Compare in words; the compiler vectorises this loop. */
        uint64_t acc = 0;
        size_t i = 0;
        for (; i + 8 <= n; i += 8) {
                uint64_t w;
                memcpy(&w, p + i, 8);
                acc |= w;
        }
        for (; i < n; i++)
                acc |= p[i];
        return acc == 0;
}

/* The next stretch of [pos, end) that may hold data, in absolute image
 * offsets (a volume's: virtual), with SEEK_DATA/SEEK_HOLE where the file
 * has them, else all of it; one contiguous piece of a volume at a time.
 * False when only holes are left. */
static bool next_data(const Reader *r, uint64_t pos, uint64_t end, uint64_t *ret_start, uint64_t *ret_end) {
        while (pos < end) {
                uint64_t at, len;
                off_t d, h;

                *ret_start = pos;
                *ret_end = end;
                if ((r->fd < 0 && !r->img) || reader_locate(r, pos - r->base, &at, &len) < 0)
                        return true;
                uint64_t stop = len < end - pos ? pos + len : end;
                uint64_t at_end = at + (stop - pos);
                if (r->img) {
                        /* A qcow2: its zero and unallocated clusters. */
                        uint64_t ds, de;
                        if (image_next_data(r->img, at, at_end, &ds, &de) == 0) {
                                pos = stop;
                                continue;
                        }
                        *ret_start = pos + (ds - at);
                        *ret_end = pos + (de - at);
                        return true;
                }
                d = lseek(r->fd, (off_t) at, SEEK_DATA);
                if (d < 0 && errno != ENXIO)
                        return true; /* no SEEK_DATA: read it all */
                if (d < 0 || (uint64_t) d >= at_end) {
                        pos = stop; /* only holes in this piece */
                        continue;
                }
                h = lseek(r->fd, d, SEEK_HOLE);
                *ret_start = pos + ((uint64_t) d - at);
                *ret_end = stop;
                if (h > d && (uint64_t) h < at_end)
                        *ret_end = pos + ((uint64_t) h - at);
                return true;
        }
        return false;
}

int tail_scan(const Reader *r, uint64_t from, TailScan *ret) {
        _cleanup_(tail_scan_done) TailScan t = {};
        _cleanup_free_ uint8_t *buf = NULL;
        uint64_t end, pos;
        int k;

        /* The region may reach past the image: look only at what exists. */
        end = r->base >= r->image_size ? 0 : r->image_size - r->base;
        if (end > r->size)
                end = r->size;
        if (from >= end) {
                *ret = t;
                t = (TailScan) {};
                return 0;
        }
        buf = malloc(TAIL_CHUNK);
        if (!buf)
                return -ENOMEM;

        pos = r->base + from;
        end += r->base;
        while (pos < end) {
                uint64_t ds, de;
                if (!next_data(r, pos, end, &ds, &de))
                        break;
                /* Whole blocks of the image, but never before the tail. */
                uint64_t at = ds / TAIL_BLOCK * TAIL_BLOCK;
                if (at < r->base + from)
                        at = r->base + from;
                while (at < de) {
                        uint64_t stop = (at / TAIL_CHUNK + 1) * TAIL_CHUNK;
                        if (stop > de)
                                stop = (de + TAIL_BLOCK - 1) / TAIL_BLOCK * TAIL_BLOCK;
                        if (stop > end)
                                stop = end;
                        size_t n = (size_t) (stop - at);
                        k = reader_read(r, at - r->base, buf, n);
                        if (k < 0)
                                return k;
                        for (uint64_t b = at; b < stop;) {
                                uint64_t be = (b / TAIL_BLOCK + 1) * TAIL_BLOCK;
                                if (be > stop)
                                        be = stop;
                                const uint8_t *p = buf + (b - at);
                                if (!all_zero(p, (size_t) (be - b))) {
                                        k = extents_add(&t.nonzero, b - r->base, be - r->base);
                                        if (k < 0)
                                                return k;
                                        /* A superblock sits at a multiple of 512 bytes
                                         * of its device (--hash-offset); partitions
                                         * start on sectors, so image alignment is the
                                         * same. */
                                        for (uint64_t s = (b + 511) / 512 * 512; !t.verity && s + VERITY_SUPER_SIZE <= stop;
                                             s += 512) {
                                                if (s >= be)
                                                        break;
                                                if (verity_super_parse(buf + (s - at), (size_t) (stop - s),
                                                                       &t.verity_super) == 0) {
                                                        t.verity = true;
                                                        t.verity_offset = s - r->base;
                                                }
                                        }
                                }
                                b = be;
                        }
                        at = stop;
                }
                pos = at > de ? at : de;
        }
        *ret = t;
        t = (TailScan) {};
        return 0;
}

/* Enough to catch what sits right after a filesystem without probing
 * every stretch of a tail full of vendor data. */
#define TAIL_PROBE_RUNS 8

int tail_find_filesystem(const Reader *r, uint64_t from, const TailScan *t, unsigned sector_size, char *ret_type,
                         size_t type_len, uint64_t *ret_at) {
        static const uint64_t back[] = { 0, UINT64_C(32) << 10, UINT64_C(64) << 10 };
        uint64_t tried[TAIL_PROBE_RUNS * ELEMENTSOF(back)];
        size_t n_tried = 0;

        for (size_t i = 0; i < t->nonzero.n && i < TAIL_PROBE_RUNS; i++)
                for (size_t j = 0; j < ELEMENTSOF(back); j++) {
                        /* Runs start on 4 KiB blocks of the image, or at from. */
                        uint64_t at = t->nonzero.v[i].start;
                        bool seen = false;
                        Reader sub;
                        int k;

                        if (at < from + back[j])
                                continue;
                        at -= back[j];
                        for (size_t m = 0; m < n_tried; m++)
                                seen = seen || tried[m] == at;
                        if (seen || at >= r->size)
                                continue;
                        tried[n_tried++] = at;
                        k = reader_sub(r, at, r->size - at, &sub);
                        if (k < 0)
                                return k;
                        k = layout_probe_reader_fstype(&sub, sector_size, ret_type, type_len);
                        if (k < 0)
                                return k;
                        if (ret_type[0]) {
                                *ret_at = at;
                                return 1;
                        }
                }
        return 0;
}
