/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What the probe tests check after each random mutation of an image: the
 * probe either fails, saying why (the partition is then mapped whole), or
 * returns sorted, non-empty extents inside the partition and a filesystem
 * size that fits it. Never a crash, never an extent outside. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "check.h"
#include "probe.h"

/* k and res are what the probe returned on a partition of size bytes;
 * true when it parsed. */
_unused_ static bool check_mutant(int k, const ProbeResult *res, uint64_t size, unsigned round) {
        uint64_t prev = 0;

        if (k != 0) {
                CHECK(res->how[0], "round %u: failure without a reason", round);
                return false;
        }
        EXTENTS_FOREACH(x, &res->used) {
                CHECK(x->start >= prev && x->start < x->end && x->end <= size, "round %u: bad extent", round);
                prev = x->end;
        }
        CHECK(res->fs_size <= size, "round %u: fs_size past the partition", round);
        return true;
}

/* For a deliberately damaged image: the probe fails with a reason, or maps
 * the whole partition of size bytes; either way its reason contains why
 * (when given). It never maps less. The line is printed under tag. */
_unused_ static void check_damaged(const char *tag, const char *what, int k, const ProbeResult *res, uint64_t size,
                                   const char *why) {
        if (k == 0)
                CHECK(res->used.n == 1 && res->used.v[0].start == 0 && res->used.v[0].end == size,
                      "%s: accepted and not mapped whole: %s", what, res->how);
        else
                CHECK(res->how[0], "%s: failure without a reason", what);
        if (why)
                CHECK_STR_CONTAINS(res->how, why);
        printf("%-30s %s: %s\n", tag, what, res->how);
}
