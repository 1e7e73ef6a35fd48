/* SPDX-License-Identifier: GPL-2.0-or-later */
/* An LVM2 PV as a container: its label, metadata areas and everything
 * before pe_start are mapped, unallocated extents are free, and each LV
 * made only of linear segments on this PV is a volume of its own, which
 * libblkid names and the matching probe reads through a Reader over its
 * segments. What else the PV holds (thin pools, snapshots, raid, mirrors,
 * caches, stripes, LVs reaching other PVs, hidden sub-LVs) is mapped whole. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "image.h"
#include "integrity.h"
#include "layout.h"
#include "lvm.h"
#include "probe.h"
#include "scan-internal.h"

static void vol_how(ScanVolume *v, const char *fmt, ...) _printf_(2, 3);
static void vol_how(ScanVolume *v, const char *fmt, ...) {
        size_t len = strlen(v->how);
        va_list ap;

        if (len + 3 >= sizeof(v->how))
                return;
        if (len) {
                memcpy(v->how + len, "; ", 3);
                len += 2;
        }
        va_start(ap, fmt);
        vsnprintf(v->how + len, sizeof(v->how) - len, fmt, ap);
        va_end(ap);
}

static int add_volume(Scan *s, size_t part, ScanVolume **ret) {
        ScanVolume *n = realloc(s->volumes, (s->n_volumes + 1) * sizeof(ScanVolume));
        if (!n)
                return -ENOMEM;
        s->volumes = n;
        n[s->n_volumes] = (ScanVolume) { .part = part, .extents = EXTENTS_INIT };
        *ret = &n[s->n_volumes++];
        return 0;
}

/* Why an LV is not read as a filesystem, or NULL if it can be. */
static const char *not_probed(const LvmLv *lv, char *buf, size_t len) {
        if (lv->kind[0])
                snprintf(buf, len, "%s LV", lv->kind);
        else if (lv->referenced)
                snprintf(buf, len, "a part of %s", lv->part_of);
        else if (!lv->visible)
                snprintf(buf, len, "a hidden LV");
        else if (lv->elsewhere)
                snprintf(buf, len, "%s on other PVs", lv->n_segs ? "some of its extents" : "its extents");
        else if (lv->n_segs == 0)
                snprintf(buf, len, "no extents");
        else
                return NULL;
        return buf;
}

/* The free bytes of volume space [a, b) as partition bytes. */
static int free_to_pv(const LvmLv *lv, const Extents *vfree, Extents *ret) {
        int r;

        for (size_t i = 0; i < lv->n_segs; i++) {
                const LvmSeg *g = &lv->segs[i];
                EXTENTS_FOREACH(x, vfree) {
                        uint64_t a = x->start > g->lv_start ? x->start : g->lv_start;
                        uint64_t b = x->end < g->lv_start + g->size ? x->end : g->lv_start + g->size;
                        if (a >= b)
                                continue;
                        r = extents_add(ret, g->pv_offset + (a - g->lv_start), g->pv_offset + (b - g->lv_start));
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

/* Probes one linear LV; its free bytes (partition-relative) go to ret_free. */
static int probe_lv(const Image *img, Scan *s, const Partition *p, const LvmLv *lv, ScanVolume *v, Extents *ret_free) {
        _cleanup_(probe_result_done) ProbeResult res = {};
        _cleanup_free_ ReaderSeg *segs = calloc(lv->n_segs, sizeof(ReaderSeg));
        _cleanup_extents_ Extents vfree = EXTENTS_INIT;
        const FsProbe *probe;
        Reader rd;
        int r;

        if (!segs)
                return -ENOMEM;
        for (size_t i = 0; i < lv->n_segs; i++)
                segs[i] = (ReaderSeg) { lv->segs[i].lv_start, lv->segs[i].size, p->start + lv->segs[i].pv_offset };
        /* One piece is a plain region: the reader every partition gets. */
        if (lv->n_segs == 1)
                rd = reader_from_image(img, segs[0].at, segs[0].size);
        else if (reader_from_image_segments(img, segs, lv->n_segs, &rd) < 0) {
                vol_how(v, "its segments do not tile it: fully mapped");
                return 0;
        }

        r = layout_probe_reader_fstype(&rd, s->layout.sector_size, v->fstype, sizeof(v->fstype));
        if (r == -ENOMEM)
                return r;
        const char *type = v->fstype[0] ? v->fstype : "unknown";
        probe = fsprobe_find(v->fstype);
        if (!probe) {
                vol_how(v, "%s: fully mapped (%s)", type, v->fstype[0] ? "no probe for this type" : "not a recognised filesystem");
                return 0;
        }
        v->probe = probe->name;
        r = probe->collect(&rd, v->fstype, &res);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                vol_how(v, "%s: %s: fully mapped", type, res.how[0] ? res.how : strerror(-r));
                return 0;
        }
        r = extents_clip(&res.used, 0, lv->size);
        if (r >= 0)
                r = extents_complement(&vfree, &res.used, 0, lv->size);
        if (r < 0)
                return r;
        v->fs_size = res.fs_size;
        vol_how(v, "%s: %s", type, res.how);

        /* The tail rule, as in a partition: past the filesystem's end only
         * zeros are free, and a dm-verity superblock there needs it all. */
        uint64_t fs_end = res.fs_size;
        if (fs_end == 0 || fs_end > lv->size)
                fs_end = res.used.n ? res.used.v[res.used.n - 1].end : 0;
        if (vfree.n && fs_end < lv->size) {
                _cleanup_(tail_scan_done) TailScan t = {};
                r = tail_scan(&rd, fs_end, &t);
                if (r == -ENOMEM)
                        return r;
                if (r < 0 || t.verity) {
                        vol_how(v, r < 0 ? "the space past the filesystem cannot be read: fully mapped"
                                         : "dm-verity hash tree past the filesystem: fully mapped");
                        return 0;
                }
                char tail_type[64];
                uint64_t at = 0;
                if (t.nonzero.n) {
                        r = tail_find_filesystem(&rd, fs_end, &t, s->layout.sector_size, tail_type, sizeof(tail_type),
                                                 &at);
                        if (r == -ENOMEM)
                                return r;
                        if (r != 0) {
                                if (r < 0)
                                        vol_how(v, "the data past the filesystem cannot be probed: fully mapped");
                                else
                                        vol_how(v, "%s past the filesystem's end: fully mapped", tail_type);
                                return 0;
                        }
                }
                if (t.nonzero.n) {
                        char b[32];
                        format_human_size(extents_total(&t.nonzero), b, sizeof(b));
                        r = extents_subtract(&vfree, &t.nonzero);
                        if (r < 0)
                                return r;
                        vol_how(v, "%s of data past the filesystem's end mapped", b);
                }
        }
        v->probed = true;
        return free_to_pv(lv, &vfree, ret_free);
}

int scan_lvm_pv(const Image *img, Scan *s, size_t i, const Reader *rd, Extents *ret_free) {
        _cleanup_(lvm_pv_done) LvmPv pv = {};
        _cleanup_extents_ Extents pv_free = EXTENTS_INIT, lv_free = EXTENTS_INIT;
        const Partition *p = &s->layout.parts[i];
        ScanPart *sp = &s->parts[i];
        size_t first = s->n_volumes;
        char why[256];
        bool verity = false;
        int r;

        extents_clear(ret_free);
        r = lvm_pv_read(rd, &pv, why, sizeof(why));
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                snprintf(sp->how, sizeof(sp->how), "LVM2_member: %s: fully mapped", why);
                return 0;
        }
        sp->pv = true;
        sp->probed = true;
        sp->probe = "lvm2";

        /* The PV's own bytes: everything from pe_start on that no LV holds,
         * less the metadata areas and a bootloader area. */
        r = extents_add(&pv_free, pv.pe_start, p->size);
        if (r >= 0)
                r = extents_subtract(&pv_free, &pv.allocated);
        for (size_t m = 0; r >= 0 && m < pv.n_mdas; m++)
                r = extents_subtract_range(&pv_free, pv.mdas[m].start, pv.mdas[m].end);
        if (r >= 0)
                r = extents_subtract_range(&pv_free, pv.ba.start, pv.ba.end);
        if (r < 0)
                return r;
        if (pv.orphan) {
                snprintf(sp->how, sizeof(sp->how), "LVM2_member: a PV in no VG: label and metadata areas mapped");
                return extents_copy(ret_free, &pv_free);
        }

        size_t n_probed = 0, n_whole = 0;
        for (size_t l = 0; l < pv.n_lvs; l++) {
                const LvmLv *lv = &pv.lvs[l];
                char buf[224];
                ScanVolume *v;

                /* A hidden LV with nothing here would only be noise. */
                if (lv->pv_bytes.n == 0 && !lv->visible)
                        continue;
                r = add_volume(s, i, &v);
                if (r < 0)
                        return r;
                snprintf(v->name, sizeof(v->name), "%s/%s", pv.vg_name, lv->name);
                v->size = lv->size;
                r = extents_copy(&v->extents, &lv->pv_bytes);
                if (r >= 0)
                        r = extents_shift(&v->extents, (int64_t) p->start);
                if (r < 0)
                        return r;
                const char *reason = not_probed(lv, buf, sizeof(buf));
                if (reason) {
                        if (lv->pv_bytes.n) {
                                vol_how(v, "%s: its extents on this PV mapped whole", reason);
                                n_whole++;
                        } else if (lv->kind[0])
                                vol_how(v, "%s: its data lies in other LVs, mapped with them", reason);
                        else
                                vol_how(v, "%s: nothing of it on this PV", reason);
                        continue;
                }
                r = probe_lv(img, s, p, lv, v, &lv_free);
                if (r < 0)
                        return r;
                n_probed += v->probed;
                n_whole += !v->probed;
                if (strcmp(v->fstype, "DM_verity_hash") == 0)
                        verity = true;
        }
        /* A hash tree in one LV covers data in another, which the tree
         * names by no partition UUID: no LV of this VG frees anything. */
        if (verity) {
                extents_clear(&lv_free);
                for (size_t k = first; k < s->n_volumes; k++)
                        if (s->volumes[k].probed) {
                                s->volumes[k].probed = false;
                                vol_how(&s->volumes[k], "a dm-verity hash LV in the VG: fully mapped");
                        }
        }
        r = extents_union(&pv_free, &lv_free);
        if (r < 0)
                return r;
        char a[32], b[32];
        format_human_size(extents_total(&pv.allocated), a, sizeof(a));
        format_human_size(pv.pe_count * pv.extent_size, b, sizeof(b));
        snprintf(sp->how, sizeof(sp->how),
                 "LVM2 PV of VG %s (seqno %" PRIu64 "): %s of %s in extents allocated; label, metadata and "
                 "allocated extents mapped; %zu LVs read, %zu mapped whole",
                 pv.vg_name, pv.seqno, a, b, n_probed, n_whole);
        return extents_copy(ret_free, &pv_free);
}
