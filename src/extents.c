/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "extents.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void extents_done(Extents *e) {
        if (!e)
                return;
        free(e->v);
        *e = EXTENTS_INIT;
}

void extents_clear(Extents *e) {
        e->n = 0;
}

static uint64_t div_round_up_u64(uint64_t a, uint64_t b) {
        return a / b + (a % b != 0);
}

static int reserve(Extents *e, size_t need) {
        if (need <= e->cap)
                return 0;
        size_t cap = e->cap ? e->cap : 16;
        while (cap < need) {
                if (cap > SIZE_MAX / 2 / sizeof(Extent))
                        return -ENOMEM;
                cap *= 2;
        }
        Extent *v = realloc(e->v, cap * sizeof(Extent));
        if (!v)
                return -ENOMEM;
        e->v = v;
        e->cap = cap;
        return 0;
}

/* Index of the first extent whose end is >= start: the first one that
 * [start, ...) can overlap or touch. */
static size_t lower_bound(const Extents *e, uint64_t start) {
        size_t lo = 0, hi = e->n;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (e->v[mid].end < start)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

int extents_add(Extents *e, uint64_t start, uint64_t end) {
        if (start > end)
                return -EINVAL;
        if (start == end)
                return 0;

        /* Fast paths: append after the last extent, or extend it. */
        if (e->n == 0 || e->v[e->n - 1].end < start) {
                int r = reserve(e, e->n + 1);
                if (r < 0)
                        return r;
                e->v[e->n++] = (Extent) { start, end };
                return 0;
        }

        size_t i = lower_bound(e, start);
        size_t j = i;
        /* Extents i..j-1 overlap or touch [start, end). */
        while (j < e->n && e->v[j].start <= end)
                j++;
        if (i == j) {
                int r = reserve(e, e->n + 1);
                if (r < 0)
                        return r;
                memmove(e->v + i + 1, e->v + i, (e->n - i) * sizeof(Extent));
                e->v[i] = (Extent) { start, end };
                e->n++;
                return 0;
        }
        Extent merged = {
                start < e->v[i].start ? start : e->v[i].start,
                end > e->v[j - 1].end ? end : e->v[j - 1].end,
        };
        e->v[i] = merged;
        memmove(e->v + i + 1, e->v + j, (e->n - j) * sizeof(Extent));
        e->n -= j - i - 1;
        return 0;
}

int extents_copy(Extents *dst, const Extents *src) {
        int r = reserve(dst, src->n);
        if (r < 0)
                return r;
        if (src->n)
                memcpy(dst->v, src->v, src->n * sizeof(Extent));
        dst->n = src->n;
        return 0;
}

int extents_union(Extents *dst, const Extents *src) {
        Extents out = EXTENTS_INIT;
        size_t i = 0, j = 0;
        int r;

        if (src->n == 0)
                return 0;
        if (dst->n == 0)
                return extents_copy(dst, src);
        /* A merge of two sorted lists, so that the union stays linear. */
        while (i < dst->n || j < src->n) {
                const Extent *x;
                if (j >= src->n || (i < dst->n && dst->v[i].start <= src->v[j].start))
                        x = &dst->v[i++];
                else
                        x = &src->v[j++];
                if (out.n > 0 && out.v[out.n - 1].end >= x->start) {
                        if (x->end > out.v[out.n - 1].end)
                                out.v[out.n - 1].end = x->end;
                        continue;
                }
                r = reserve(&out, out.n + 1);
                if (r < 0) {
                        extents_done(&out);
                        return r;
                }
                out.v[out.n++] = *x;
        }
        extents_done(dst);
        *dst = out;
        return 0;
}

/* Applies a sorted list of "keep" windows to dst: the result holds the
 * parts of dst inside the windows. keep_inside=false keeps the parts
 * outside instead. One linear walk serves subtract and intersect. */
static int filter(Extents *dst, const Extents *windows, bool keep_inside) {
        Extents out = EXTENTS_INIT;
        size_t j = 0;
        int r = 0;

        for (size_t i = 0; i < dst->n && r >= 0; i++) {
                uint64_t pos = dst->v[i].start, end = dst->v[i].end;

                while (j < windows->n && windows->v[j].end <= pos)
                        j++;
                for (size_t k = j; pos < end; k++) {
                        uint64_t ws = k < windows->n ? windows->v[k].start : UINT64_MAX;
                        uint64_t we = k < windows->n ? windows->v[k].end : UINT64_MAX;
                        if (ws > end)
                                ws = end;
                        if (we > end)
                                we = end;
                        /* [pos, ws) lies outside the windows, [ws, we) inside. */
                        if (!keep_inside && ws > pos)
                                r = extents_add(&out, pos, ws);
                        if (r >= 0 && keep_inside && we > ws && we > pos)
                                r = extents_add(&out, ws > pos ? ws : pos, we);
                        if (r < 0 || k >= windows->n)
                                break;
                        if (we > pos)
                                pos = we;
                }
        }
        if (r < 0) {
                extents_done(&out);
                return r;
        }
        extents_done(dst);
        *dst = out;
        return 0;
}

int extents_subtract(Extents *dst, const Extents *src) {
        return filter(dst, src, false);
}

int extents_intersect(Extents *dst, const Extents *src) {
        return filter(dst, src, true);
}

int extents_subtract_range(Extents *e, uint64_t start, uint64_t end) {
        if (start >= end)
                return 0;
        Extent w = { start, end };
        return filter(e, &(Extents) { &w, 1, 1 }, false);
}

int extents_clip(Extents *e, uint64_t start, uint64_t end) {
        if (start >= end) {
                extents_clear(e);
                return 0;
        }
        Extent w = { start, end };
        return filter(e, &(Extents) { &w, 1, 1 }, true);
}

int extents_complement(Extents *dst, const Extents *src, uint64_t start, uint64_t end) {
        int r;

        extents_clear(dst);
        r = extents_add(dst, start, end);
        if (r < 0)
                return r;
        return extents_subtract(dst, src);
}

int extents_round_out(Extents *e, uint64_t block) {
        size_t out = 0;

        if (block == 0)
                return -EINVAL;
        for (size_t i = 0; i < e->n; i++) {
                uint64_t s = e->v[i].start - e->v[i].start % block;
                uint64_t t = e->v[i].end;
                if (t % block) {
                        uint64_t up = t - t % block + block;
                        t = up < t ? UINT64_MAX : up; /* saturate: never shrink an extent */
                }
                if (out > 0 && e->v[out - 1].end >= s) {
                        if (t > e->v[out - 1].end)
                                e->v[out - 1].end = t;
                } else
                        e->v[out++] = (Extent) { s, t };
        }
        e->n = out;
        return 0;
}

int extents_to_blocks(Extents *dst, const Extents *bytes, uint64_t block) {
        int r;

        if (block == 0)
                return -EINVAL;
        extents_clear(dst);
        r = reserve(dst, bytes->n);
        if (r < 0)
                return r;
        EXTENTS_FOREACH(x, bytes) {
                r = extents_add(dst, x->start / block, x->end / block + (x->end % block != 0));
                if (r < 0)
                        return r;
        }
        return 0;
}

int extents_split(Extents *dst, const Extents *src, uint64_t max_len) {
        size_t n = 0;
        int r;

        if (max_len == 0)
                return -EINVAL;
        EXTENTS_FOREACH(x, src)
                n += (size_t) div_round_up_u64(x->end - x->start, max_len);
        r = reserve(dst, n);
        if (r < 0)
                return r;
        dst->n = 0;
        EXTENTS_FOREACH(x, src)
                for (uint64_t s = x->start; s < x->end; s += max_len)
                        dst->v[dst->n++] = (Extent) { s, x->end - s > max_len ? s + max_len : x->end };
        return 0;
}

int extents_shift(Extents *e, int64_t delta) {
        for (size_t i = 0; i < e->n; i++) {
                uint64_t s = e->v[i].start, t = e->v[i].end;
                if (delta < 0) {
                        uint64_t d = (uint64_t) -(delta + 1) + 1;
                        if (s < d)
                                return -ERANGE;
                        s -= d, t -= d;
                } else {
                        if (t > UINT64_MAX - (uint64_t) delta)
                                return -ERANGE;
                        s += (uint64_t) delta, t += (uint64_t) delta;
                }
                e->v[i] = (Extent) { s, t };
        }
        return 0;
}

uint64_t extents_total(const Extents *e) {
        uint64_t t = 0;
        EXTENTS_FOREACH(x, e)
                t += x->end - x->start;
        return t;
}

bool extents_contains(const Extents *e, uint64_t start, uint64_t end) {
        if (start >= end)
                return true;
        size_t i = lower_bound(e, start + 1);
        return i < e->n && e->v[i].start <= start && e->v[i].end >= end;
}

bool extents_overlaps(const Extents *e, uint64_t start, uint64_t end) {
        if (start >= end)
                return false;
        size_t i = lower_bound(e, start + 1);
        return i < e->n && e->v[i].start < end;
}

bool extents_equal(const Extents *a, const Extents *b) {
        return a->n == b->n && (a->n == 0 || memcmp(a->v, b->v, a->n * sizeof(Extent)) == 0);
}
