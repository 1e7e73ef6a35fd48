/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Linux swap: only the header page is used. The signature sits in the last
 * ten bytes of the first page, whose size is the page size of the machine
 * that made it (4 to 64 KiB). A swap area that holds a hibernation image
 * (its signature rewritten to S1SUSPEND and friends) is used in full: the
 * image lives in its pages. */
#include <stdio.h>
#include <string.h>

#include "probe.h"

static const char *const types[] = { "swap", "swsuspend", NULL };

static const char *const swap_magics[] = { "SWAPSPACE2", "SWAP-SPACE" };
/* Hibernation signatures (swsusp, uswsusp, TuxOnIce), as libblkid knows them. */
static const char *const suspend_magics[] = { "S1SUSPEND", "S2SUSPEND", "ULSUSPEND", "\xed\xc3\x02\xe9\x98\x56\xe5\x0c",
                                              "LINHIB0001" };

static bool has_magic(const uint8_t *tail10, const char *const *magics, size_t n) {
        for (size_t i = 0; i < n; i++) {
                size_t len = strlen(magics[i]);
                if (memcmp(tail10 + 10 - len, magics[i], len) == 0)
                        return true;
        }
        return false;
}

static int collect(const Reader *r, const char *fstype, ProbeResult *res) {
        if (fstype && strcmp(fstype, "swsuspend") == 0)
                return probe_whole(r, res, "holds a hibernation image: fully mapped");

        for (uint64_t page = 4096; page <= 65536; page *= 2) {
                uint8_t tail[10];
                int k = reader_read(r, page - 10, tail, sizeof(tail));
                if (k == -ERANGE)
                        break;
                if (k < 0)
                        return probe_fail(res, k, "cannot read the header page: %s", strerror(-k));
                if (has_magic(tail, suspend_magics, ELEMENTSOF(suspend_magics)))
                        return probe_whole(r, res, "holds a hibernation image: fully mapped");
                if (!has_magic(tail, swap_magics, ELEMENTSOF(swap_magics)))
                        continue;
                res->fs_size = r->size;
                snprintf(res->how, sizeof(res->how), "header page (%llu bytes) only", (unsigned long long) page);
                return extents_add(&res->used, 0, page);
        }
        return probe_fail(res, -EINVAL, "no swap signature at the end of a 4-64 KiB page");
}

const FsProbe fsprobe_swap = {
        .name = "swap",
        .types = types,
        .collect = collect,
};
