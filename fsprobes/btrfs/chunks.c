/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The btrfs chunk map: logical address ranges (chunks) and where each of
 * their stripes lies on which device, from the superblock's
 * sys_chunk_array at first and then from the chunk tree (items.c). */
#include <inttypes.h>
#include <stdlib.h>

#include "btrfs-internal.h"

const char *btrfs_profile_name(uint64_t type) {
        switch (type & BG_PROFILE_MASK) {
        case 0:
                return "single";
        case BG_DUP:
                return "DUP";
        case BG_RAID0:
                return "RAID0";
        case BG_RAID1:
                return "RAID1";
        case BG_RAID10:
                return "RAID10";
        case BG_RAID5:
                return "RAID5";
        case BG_RAID6:
                return "RAID6";
        case BG_RAID1C3:
                return "RAID1C3";
        case BG_RAID1C4:
                return "RAID1C4";
        default:
                return "unknown";
        }
}

uint64_t btrfs_stripe_divisor(const Chunk *c) {
        if (c->type & ~BG_KNOWN)
                return 0;
        switch (c->type & BG_PROFILE_MASK) {
        case 0:
        case BG_DUP:
        case BG_RAID1:
        case BG_RAID1C3:
        case BG_RAID1C4:
                return 1;
        case BG_RAID0:
                return c->num_stripes;
        case BG_RAID10:
                return c->num_stripes / c->sub_stripes;
        case BG_RAID5:
                return c->num_stripes - 1;
        case BG_RAID6:
                return c->num_stripes - 2;
        default:
                return 0;
        }
}

int btrfs_chunk_add(Btrfs *b, ChunkMap *m, uint64_t start, const uint8_t *p, size_t size, bool in_order) {
        if (size < CHUNK_STRIPES)
                return btrfs_bad(b, DOUBT, "chunk item at %" PRIu64 " is %zu bytes, too short", start, size);
        Chunk c = {
                .start = start,
                .length = get_le64(p + CHUNK_LENGTH),
                .stripe_len = get_le64(p + CHUNK_STRIPE_LEN),
                .type = get_le64(p + CHUNK_TYPE),
                .num_stripes = get_le16(p + CHUNK_NUM_STRIPES),
                .sub_stripes = get_le16(p + CHUNK_SUB_STRIPES),
                .first_stripe = m->ns,
        };
        uint64_t profile = c.type & BG_PROFILE_MASK, div;
        uint32_t want = 0;

        if (c.num_stripes == 0 || size != CHUNK_STRIPES + (size_t) c.num_stripes * STRIPE_SIZE)
                return btrfs_bad(b, DOUBT, "chunk at %" PRIu64 ": %u stripes in a %zu-byte item", start, c.num_stripes, size);
        if (c.length == 0 || c.length % b->sectorsize || start % b->sectorsize || start + c.length < start)
                return btrfs_bad(b, DOUBT, "chunk at %" PRIu64 " has a bad length %" PRIu64, start, c.length);
        if (!is_pow2(c.stripe_len))
                return btrfs_bad(b, DOUBT, "chunk at %" PRIu64 " has a bad stripe length %" PRIu64, start, c.stripe_len);
        if (!(c.type & BG_TYPE_MASK) || (profile & (profile - 1)))
                return btrfs_bad(b, DOUBT, "chunk at %" PRIu64 " has type 0x%" PRIx64, start, c.type);
        switch (profile) {
        case 0:
                want = 1;
                break;
        case BG_DUP:
        case BG_RAID1:
                want = 2;
                break;
        case BG_RAID1C3:
                want = 3;
                break;
        case BG_RAID1C4:
                want = 4;
                break;
        case BG_RAID10:
                if (c.sub_stripes != 2 || c.num_stripes % 2)
                        return btrfs_bad(b, DOUBT, "RAID10 chunk at %" PRIu64 ": %u stripes, %u sub-stripes", start,
                                         c.num_stripes, c.sub_stripes);
                break;
        case BG_RAID5:
                if (c.num_stripes < 2)
                        return btrfs_bad(b, DOUBT, "RAID5 chunk at %" PRIu64 " with %u stripes", start, c.num_stripes);
                break;
        case BG_RAID6:
                if (c.num_stripes < 3)
                        return btrfs_bad(b, DOUBT, "RAID6 chunk at %" PRIu64 " with %u stripes", start, c.num_stripes);
                break;
        default:
                break;
        }
        if (want && c.num_stripes != want)
                return btrfs_bad(b, DOUBT, "%s chunk at %" PRIu64 " with %u stripes", btrfs_profile_name(c.type), start,
                                 c.num_stripes);
        div = btrfs_stripe_divisor(&c);
        if (div && c.length % div)
                return btrfs_bad(b, DOUBT, "chunk at %" PRIu64 ": %" PRIu64 " bytes do not split into its %u stripes", start,
                                 c.length, c.num_stripes);
        if (in_order && m->n > 0) {
                const Chunk *prev = &m->v[m->n - 1];
                if (start < prev->start + prev->length)
                        return btrfs_bad(b, DOUBT, "chunks at %" PRIu64 " and %" PRIu64 " overlap or are out of order",
                                         prev->start, start);
        }

        if (m->n == m->cap) {
                size_t cap = m->cap ? m->cap * 2 : 64;
                Chunk *v = realloc(m->v, cap * sizeof(*v));
                if (!v)
                        return btrfs_bad(b, -ENOMEM, "out of memory for the chunk map");
                m->v = v;
                m->cap = cap;
        }
        if (m->caps - m->ns < c.num_stripes) {
                size_t cap = m->caps ? m->caps * 2 : 128;
                while (cap - m->ns < c.num_stripes)
                        cap *= 2;
                Stripe *s = realloc(m->s, cap * sizeof(*s));
                if (!s)
                        return btrfs_bad(b, -ENOMEM, "out of memory for the chunk map");
                m->s = s;
                m->caps = cap;
        }
        for (uint32_t i = 0; i < c.num_stripes; i++) {
                const uint8_t *sp = p + CHUNK_STRIPES + (size_t) i * STRIPE_SIZE;
                m->s[m->ns + i] = (Stripe) { .devid = get_le64(sp), .offset = get_le64(sp + 8) };
                if (profile == BG_DUP && get_le64(sp) != get_le64(p + CHUNK_STRIPES))
                        return btrfs_bad(b, DOUBT, "DUP chunk at %" PRIu64 " spans two devices", start);
        }
        m->ns += c.num_stripes;
        m->v[m->n++] = c;
        return 0;
}

void btrfs_chunk_map_done(ChunkMap *m) {
        free(m->v);
        free(m->s);
        *m = (ChunkMap) {};
}

static int cmp_chunk(const void *a, const void *b) {
        const Chunk *x = a, *y = b;
        return x->start < y->start ? -1 : x->start > y->start;
}

/* The superblock's copy of the system chunks: (key, chunk item) pairs. */
int btrfs_parse_sys_array(Btrfs *b) {
        uint32_t size = get_le32(b->sb + SB_SYS_ARRAY_SIZE);
        const uint8_t *a = b->sb + SB_SYS_ARRAY;
        ChunkMap tmp = {};
        int k = 0;

        if (size == 0 || size > SYS_ARRAY_MAX)
                return btrfs_bad(b, DOUBT, "sys_chunk_array_size %" PRIu32 " is not 1..%d", size, SYS_ARRAY_MAX);
        for (uint32_t off = 0; off < size;) {
                if (size - off < KEY_SIZE + CHUNK_STRIPES) {
                        k = btrfs_bad(b, DOUBT, "sys_chunk_array: %" PRIu32 " stray bytes at its end", size - off);
                        goto out;
                }
                Key key = get_key(a + off);
                const uint8_t *c = a + off + KEY_SIZE;
                size_t len = CHUNK_STRIPES + (size_t) get_le16(c + CHUNK_NUM_STRIPES) * STRIPE_SIZE;
                if (key.type != KEY_CHUNK_ITEM || key.objectid != FIRST_CHUNK_TREE_OBJECTID) {
                        k = btrfs_bad(b, DOUBT, "sys_chunk_array holds key type %u, not a chunk", key.type);
                        goto out;
                }
                if (len > size - off - KEY_SIZE) {
                        k = btrfs_bad(b, DOUBT, "sys_chunk_array: the chunk at %" PRIu64 " runs past its end", key.offset);
                        goto out;
                }
                if (!(get_le64(c + CHUNK_TYPE) & BG_SYSTEM)) {
                        k = btrfs_bad(b, DOUBT, "sys_chunk_array holds a non-system chunk at %" PRIu64, key.offset);
                        goto out;
                }
                /* The order is not promised here: collect, then sort. */
                k = btrfs_chunk_add(b, &tmp, key.offset, c, len, false);
                if (k < 0)
                        goto out;
                off += KEY_SIZE + (uint32_t) len;
        }
        qsort(tmp.v, tmp.n, sizeof(*tmp.v), cmp_chunk);
        for (size_t i = 1; i < tmp.n; i++)
                if (tmp.v[i].start < tmp.v[i - 1].start + tmp.v[i - 1].length) {
                        k = btrfs_bad(b, DOUBT, "sys_chunk_array: chunks at %" PRIu64 " and %" PRIu64 " overlap",
                                      tmp.v[i - 1].start, tmp.v[i].start);
                        goto out;
                }
        b->boot = tmp;
        return 0;
out:
        btrfs_chunk_map_done(&tmp);
        return k;
}
