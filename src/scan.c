/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "scan.h"

#include <stdio.h>
#include <string.h>

#include "probe.h"
#include "reader.h"

void scan_done(Scan *s) {
        if (!s)
                return;
        layout_done(&s->layout);
        free(s->parts);
        extents_done(&s->mapped);
        *s = (Scan) {};
}

/* Runs the probe of one partition and returns its free bytes (absolute, in
 * the image). Anything that is not a readable filesystem frees nothing:
 * "when in doubt, map" is this function. */
static int partition_free(int fd, uint64_t image_size, const Partition *p, ScanPart *sp, Extents *ret_free) {
        _cleanup_(probe_result_done) ProbeResult res = {};
        const char *type = p->fstype[0] ? p->fstype : "unknown";
        const FsProbe *probe;
        int r;

        extents_clear(ret_free);
        if (p->container) {
                snprintf(sp->how, sizeof(sp->how), "extended partition: its EBRs and gaps are mapped");
                return 0;
        }
        if (p->mapped_whole) {
                snprintf(sp->how, sizeof(sp->how), "%s: %s", type, p->note);
                return 0;
        }
        probe = fsprobe_find(p->fstype);
        if (!probe) {
                snprintf(sp->how, sizeof(sp->how), "%s: fully mapped (%s)", type,
                         p->fstype[0] ? "no probe for this type" : "not a recognised filesystem");
                return 0;
        }
        sp->probe = probe->name;

        Reader rd = reader_from_fd(fd, image_size, p->start, p->size);
        r = probe->collect(&rd, p->fstype, &res);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                snprintf(sp->how, sizeof(sp->how), "%s: %s: fully mapped", type, res.how[0] ? res.how : strerror(-r));
                return 0;
        }
        /* A probe's extents must lie inside its partition; anything else is a
         * probe bug, and costs nothing to survive. */
        r = extents_clip(&res.used, 0, p->size);
        if (r < 0)
                return r;
        r = extents_complement(ret_free, &res.used, 0, p->size);
        if (r < 0)
                return r;
        r = extents_shift(ret_free, (int64_t) p->start);
        if (r < 0)
                return r;
        sp->probed = true;
        sp->fs_size = res.fs_size;
        snprintf(sp->how, sizeof(sp->how), "%s: %s", type, res.how);
        return 0;
}

int scan_image(int fd, const char *path, uint64_t image_size, Scan *ret, Diag *d) {
        _cleanup_(scan_done) Scan s = {};
        _cleanup_extents_ Extents free_space = EXTENTS_INIT, part_free = EXTENTS_INIT, inside = EXTENTS_INIT;
        int r;

        r = layout_read(fd, path, image_size, &s.layout, d);
        if (r < 0)
                return r;
        s.parts = calloc(s.layout.n_parts + 1, sizeof(ScanPart));
        if (!s.parts)
                return -ENOMEM;

        for (size_t i = 0; i < s.layout.n_parts; i++) {
                const Partition *p = &s.layout.parts[i];
                ScanPart *sp = &s.parts[i];
                sp->part = p;
                r = partition_free(fd, image_size, p, sp, &part_free);
                if (r < 0)
                        return diag_set(d, r, "%s: scanning partition %u: %s", path, p->number, strerror(-r));
                r = extents_union(&free_space, &part_free);
                if (r < 0)
                        return r;
                if (!p->container)
                        extents_add(&inside, p->start, p->start + p->size);
        }
        /* Space a partition frees may still be claimed by another region
         * (an overlapping partition mapped in full): such a partition frees
         * nothing, so subtracting the union of frees is safe only because
         * disputed partitions are never probed. */
        r = extents_add(&s.mapped, 0, image_size);
        if (r < 0)
                return r;
        r = extents_subtract(&s.mapped, &free_space);
        if (r < 0)
                return r;
        r = extents_clip(&s.mapped, 0, image_size);
        if (r < 0)
                return r;

        for (size_t i = 0; i < s.layout.n_parts; i++) {
                const Partition *p = &s.layout.parts[i];
                _cleanup_extents_ Extents x = EXTENTS_INIT;
                if (p->container)
                        continue;
                r = extents_copy(&x, &s.mapped);
                if (r >= 0)
                        r = extents_clip(&x, p->start, p->start + p->size);
                if (r < 0)
                        return r;
                s.parts[i].used = extents_total(&x);
        }
        {
                _cleanup_extents_ Extents x = EXTENTS_INIT;
                r = extents_copy(&x, &s.mapped);
                if (r >= 0)
                        r = extents_subtract(&x, &inside);
                if (r < 0)
                        return r;
                s.outside = extents_total(&x);
        }
        *ret = s;
        s = (Scan) {};
        return 0;
}
