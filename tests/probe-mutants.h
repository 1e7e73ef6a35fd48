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
