/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libFuzzer: arbitrary bytes as a bmap. The reader must refuse or accept
 * without crashing, and what it accepts must be consistent. */
#include <stdint.h>

#include "bmap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        Bmap b = {};
        Diag d = {};

        if (bmap_parse((const char *) data, size, "fuzz", true, &b, &d) < 0)
                return 0;
        uint64_t total = 0, prev_end = 0;
        for (size_t i = 0; i < b.n_ranges; i++) {
                const Extent *x = &b.ranges[i].blocks;
                if (x->start >= x->end || x->start < prev_end || x->end > b.blocks_count)
                        __builtin_trap();
                prev_end = x->end;
                total += x->end - x->start;
        }
        if (total != b.mapped_count)
                __builtin_trap();
        bmap_done(&b);
        return 0;
}
