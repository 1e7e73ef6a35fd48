/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdio.h>
#include <string.h>

#include "probe.h"

/* Every probe there is. Types not claimed here (LVM2_member, crypto_LUKS,
 * linux_raid_member, bcache, anything unknown) are mapped whole by scan.
 * The order does not matter today: each blkid type has one owner. */
static const FsProbe *const probes[] = {
        &fsprobe_btrfs,
        &fsprobe_exfat,
        &fsprobe_ext,
        &fsprobe_f2fs,
        &fsprobe_fat,
        &fsprobe_ntfs,
        &fsprobe_rofs,
        &fsprobe_swap,
        &fsprobe_xfs,
        NULL,
};

const FsProbe *fsprobe_find(const char *blkid_type) {
        if (!blkid_type)
                return NULL;
        for (size_t i = 0; probes[i]; i++)
                for (const char *const *t = probes[i]->types; *t; t++)
                        if (strcmp(*t, blkid_type) == 0)
                                return probes[i];
        return NULL;
}

void probe_result_done(ProbeResult *res) {
        if (res)
                extents_done(&res->used);
}

int probe_whole(const Reader *r, ProbeResult *res, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(res->how, sizeof(res->how), fmt, ap);
        va_end(ap);
        extents_clear(&res->used);
        return extents_add(&res->used, 0, r->size);
}

int probe_fail(ProbeResult *res, int err, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(res->how, sizeof(res->how), fmt, ap);
        va_end(ap);
        return err < 0 ? err : -EIO;
}
