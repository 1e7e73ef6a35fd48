/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A half-open interval [start, end) of bytes or of blocks; the unit is the
 * caller's. */
typedef struct Extent {
        uint64_t start, end;
} Extent;

/* A sorted set of disjoint, non-adjacent extents: adding a range merges it
 * with every range it overlaps or touches. This is the one type for "used",
 * "free" and "mapped" space everywhere in bmapscan. */
typedef struct Extents {
        Extent *v;
        size_t n, cap;
} Extents;

#define EXTENTS_INIT ((Extents) { NULL, 0, 0 })
#define EXTENTS_FOREACH(x, set) for (const Extent *x = (set)->v; x && x < (set)->v + (set)->n; x++)

void extents_done(Extents *e);
static inline void extents_donep(Extents *e) {
        extents_done(e);
}
#define _cleanup_extents_ __attribute__((cleanup(extents_donep)))

void extents_clear(Extents *e);

/* Union with [start, end); an empty range is a no-op. Appending in ascending
 * order is O(1). Returns 0 or -ENOMEM, -EINVAL if start > end. */
int extents_add(Extents *e, uint64_t start, uint64_t end);

int extents_copy(Extents *dst, const Extents *src);
/* dst = dst ∪ src, dst = dst − src, dst = dst ∩ src. */
int extents_union(Extents *dst, const Extents *src);
int extents_subtract(Extents *dst, const Extents *src);
int extents_intersect(Extents *dst, const Extents *src);
/* Removes or keeps [start, end) only. */
int extents_subtract_range(Extents *e, uint64_t start, uint64_t end);
int extents_clip(Extents *e, uint64_t start, uint64_t end);
/* dst = [start, end) − src. */
int extents_complement(Extents *dst, const Extents *src, uint64_t start, uint64_t end);

/* A block extent in bytes, [start * block, end * block), both ends cut at
 * limit: an image's last block may be partial, and no byte past the image
 * size is read, hashed, written or punched. Inline: copy's reader calls it
 * once per range. */
static inline Extent extent_bytes(Extent blocks, uint64_t block, uint64_t limit) {
        uint64_t s = blocks.start * block, e = blocks.end * block;
        return (Extent) { s > limit ? limit : s, e > limit ? limit : e };
}

/* Rounds every extent outward to multiples of block (any value > 0): the
 * start down, the end up; extents that come to touch are merged. */
int extents_round_out(Extents *e, uint64_t block);
/* Converts byte extents to block extents, rounding outward (a block touched
 * by any byte is in the result). */
int extents_to_blocks(Extents *dst, const Extents *bytes, uint64_t block);

/* Copies src into dst cutting every extent into pieces of at most max_len:
 * the result is sorted and disjoint, but pieces touch, so it is a list of
 * ranges to hand out (to hash, to write as bmap ranges), not a set to
 * combine further: do not pass it to the set operations above. */
int extents_split(Extents *dst, const Extents *src, uint64_t max_len);

/* Shifts every extent by delta (which may be negative); -ERANGE on overflow. */
int extents_shift(Extents *e, int64_t delta);

uint64_t extents_total(const Extents *e);
bool extents_contains(const Extents *e, uint64_t start, uint64_t end);
bool extents_overlaps(const Extents *e, uint64_t start, uint64_t end);
bool extents_equal(const Extents *a, const Extents *b);
