/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The extent set against a brute-force bitmap model: random operations on
 * both, compared after each step, plus the edge cases by name. */
#include <errno.h>
#include <stdlib.h>

#include "check.h"
#include "extents.h"

#define UNIVERSE 512

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(uint64_t n) {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        return rng_state % n;
}

/* The set is canonical (sorted, disjoint, not touching) and equals the model. */
static bool matches(const Extents *e, const bool *m) {
        bool seen[UNIVERSE] = {};
        for (size_t i = 0; i < e->n; i++) {
                if (e->v[i].start >= e->v[i].end || e->v[i].end > UNIVERSE)
                        return false;
                if (i > 0 && e->v[i].start <= e->v[i - 1].end)
                        return false;
                for (uint64_t b = e->v[i].start; b < e->v[i].end; b++)
                        seen[b] = true;
        }
        return memcmp(seen, m, sizeof(seen)) == 0;
}

static void random_set(bool *m, Extents *e) {
        memset(m, 0, UNIVERSE);
        extents_clear(e);
        unsigned n = (unsigned) rnd(12);
        for (unsigned i = 0; i < n; i++) {
                uint64_t s = rnd(UNIVERSE), len = rnd(40);
                if (s + len > UNIVERSE)
                        len = UNIVERSE - s;
                for (uint64_t b = s; b < s + len; b++)
                        m[b] = true;
                extents_add(e, s, s + len);
        }
}

static void test_random_against_model(void) {
        _cleanup_extents_ Extents a = EXTENTS_INIT, b = EXTENTS_INIT, c = EXTENTS_INIT;
        bool ma[UNIVERSE], mb[UNIVERSE], mc[UNIVERSE];

        for (int round = 0; round < 4000; round++) {
                random_set(ma, &a);
                random_set(mb, &b);
                CHECK(matches(&a, ma), "add: round %d", round);
                unsigned op = (unsigned) rnd(6);
                extents_copy(&c, &a);
                for (int i = 0; i < UNIVERSE; i++) {
                        switch (op) {
                        case 0: mc[i] = ma[i] || mb[i]; break;
                        case 1: mc[i] = ma[i] && !mb[i]; break;
                        case 2: mc[i] = ma[i] && mb[i]; break;
                        case 3: mc[i] = !mb[i] && i >= 100 && i < 400; break;
                        case 4: mc[i] = ma[i] && !(i >= 50 && i < 300); break;
                        default: mc[i] = ma[i] && i >= 50 && i < 300; break;
                        }
                }
                switch (op) {
                case 0: extents_union(&c, &b); break;
                case 1: extents_subtract(&c, &b); break;
                case 2: extents_intersect(&c, &b); break;
                case 3: extents_complement(&c, &b, 100, 400); break;
                case 4: extents_subtract_range(&c, 50, 300); break;
                default: extents_clip(&c, 50, 300); break;
                }
                CHECK(matches(&c, mc), "operation %u differs from the model in round %d", op, round);
                uint64_t count = 0;
                for (int i = 0; i < UNIVERSE; i++)
                        count += mc[i];
                CHECK_U64(extents_total(&c), count);
        }
}

static void test_round_out(void) {
        _cleanup_extents_ Extents e = EXTENTS_INIT;

        /* Two byte ranges in the same and the next 4 KiB block merge. */
        extents_add(&e, 1, 2);
        extents_add(&e, 4095, 4097);
        extents_add(&e, 20000, 20001);
        extents_round_out(&e, 4096);
        CHECK_U64(e.n, 2);
        CHECK_U64(e.v[0].start, 0);
        CHECK_U64(e.v[0].end, 8192);
        CHECK_U64(e.v[1].start, 16384);
        CHECK_U64(e.v[1].end, 20480);

        /* Already aligned ranges do not grow. */
        extents_clear(&e);
        extents_add(&e, 4096, 8192);
        extents_round_out(&e, 4096);
        CHECK_U64(e.v[0].start, 4096);
        CHECK_U64(e.v[0].end, 8192);

        /* Near the top of the range the end saturates instead of wrapping. */
        extents_clear(&e);
        extents_add(&e, UINT64_MAX - 10, UINT64_MAX - 5);
        CHECK(extents_round_out(&e, 4096) == 0, "round_out near UINT64_MAX");
        CHECK(e.v[0].end >= UINT64_MAX - 5 && e.v[0].start <= UINT64_MAX - 10, "saturated extent covers the input");
        CHECK(extents_round_out(&e, 0) == -EINVAL, "block 0 refused");
}

static void test_to_blocks(void) {
        _cleanup_extents_ Extents bytes = EXTENTS_INIT, blocks = EXTENTS_INIT;

        extents_add(&bytes, 0, 1);
        extents_add(&bytes, 4096, 4097);
        extents_add(&bytes, 10000, 12289); /* blocks 2 and 3 */
        extents_add(&bytes, 40960, 40961); /* block 10 */
        extents_to_blocks(&blocks, &bytes, 4096);
        CHECK_U64(blocks.n, 2);
        CHECK_U64(blocks.v[0].start, 0);
        CHECK_U64(blocks.v[0].end, 4);
        CHECK_U64(blocks.v[1].start, 10);
        CHECK_U64(blocks.v[1].end, 11);
}

static void test_edges(void) {
        _cleanup_extents_ Extents e = EXTENTS_INIT, f = EXTENTS_INIT;

        CHECK(extents_add(&e, 5, 4) == -EINVAL, "reversed range refused");
        CHECK(extents_add(&e, 5, 5) == 0 && e.n == 0, "empty range is a no-op");
        extents_add(&e, 10, 20);
        extents_add(&e, 20, 30); /* touching: merged */
        CHECK_U64(e.n, 1);
        extents_add(&e, 0, 5);
        extents_add(&e, 40, 50);
        extents_add(&e, 4, 41); /* bridges everything */
        CHECK_U64(e.n, 1);
        CHECK_U64(e.v[0].start, 0);
        CHECK_U64(e.v[0].end, 50);
        CHECK(extents_contains(&e, 0, 50), "contains all");
        CHECK(!extents_contains(&e, 0, 51), "does not contain past the end");
        CHECK(extents_overlaps(&e, 49, 100), "overlaps at the end");
        CHECK(!extents_overlaps(&e, 50, 100), "half-open: 50 is outside");
        CHECK(extents_contains(&e, 7, 7), "empty range is contained");

        extents_clear(&e);
        extents_add(&e, 100, 200);
        CHECK(extents_shift(&e, -100) == 0 && e.v[0].start == 0 && e.v[0].end == 100, "shift down");
        CHECK(extents_shift(&e, -1) == -ERANGE, "shift below zero refused");
        CHECK(extents_shift(&e, INT64_MAX) == 0, "shift up");
        CHECK(extents_shift(&e, INT64_MAX) == -ERANGE, "shift past the top refused");

        /* Operations with empty sets. */
        extents_clear(&e);
        extents_add(&f, 1, 2);
        extents_subtract(&e, &f);
        CHECK_U64(e.n, 0);
        extents_union(&e, &f);
        CHECK(extents_equal(&e, &f), "union with empty");
        extents_clear(&f);
        extents_intersect(&e, &f);
        CHECK_U64(e.n, 0);

        /* A large descending insert stays sorted and merged. */
        extents_clear(&e);
        for (uint64_t i = 20000; i > 0; i--)
                extents_add(&e, 2 * i, 2 * i + 1);
        CHECK_U64(e.n, 20000);
        CHECK_U64(extents_total(&e), 20000);
        for (uint64_t i = 1; i <= 20000; i++)
                extents_add(&e, 2 * i + 1, 2 * i + 2);
        CHECK_U64(e.n, 1);
}

static void test_split(void) {
        _cleanup_extents_ Extents e = EXTENTS_INIT, r = EXTENTS_INIT;

        extents_add(&e, 0, 10);
        extents_add(&e, 20, 21);
        extents_add(&e, 30, 60);
        CHECK(extents_split(&r, &e, 10) == 0, "split");
        /* [0,10) [20,21) [30,40) [40,50) [50,60): touching pieces stay apart. */
        CHECK_U64(r.n, 5);
        CHECK(r.n == 5 && r.v[2].start == 30 && r.v[2].end == 40 && r.v[3].start == 40 && r.v[4].end == 60,
              "pieces of at most 10");
        CHECK_U64(extents_total(&r), extents_total(&e));
        CHECK(extents_split(&r, &e, 0) == -EINVAL, "split by 0 refused");
        CHECK(extents_split(&r, &e, 1000) == 0 && extents_equal(&r, &e), "no piece needs cutting");
}

int main(void) {
        test_split();
        test_random_against_model();
        test_round_out();
        test_to_blocks();
        test_edges();
        return check_exit("test-extents");
}
