/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "scan.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "image.h"
#include "integrity.h"
#include "probe.h"
#include "reader.h"
#include "scan-internal.h"

void scan_done(Scan *s) {
        if (!s)
                return;
        layout_done(&s->layout);
        free(s->parts);
        free(s->regions);
        for (size_t i = 0; i < s->n_volumes; i++)
                extents_done(&s->volumes[i].extents);
        free(s->volumes);
        extents_done(&s->mapped);
        *s = (Scan) {};
}

int map_request_parse(const char *arg, MapRequest *ret) {
        MapRequest m = { .arg = arg };
        const char *colon = strchr(arg, ':');
        uint64_t v;

        if (!colon || colon == arg || !colon[1])
                return -EINVAL;
        if (strncmp(arg, "part:", 5) == 0) {
                if (parse_u64(arg + 5, strlen(arg + 5), &v) < 0 || v == 0 || v > UINT32_MAX ||
                    strspn(arg + 5, "0123456789") != strlen(arg + 5))
                        return -EINVAL;
                m.kind = MAP_PART;
                m.number = (unsigned) v;
        } else if (strncmp(arg, "label:", 6) == 0) {
                m.kind = MAP_LABEL;
                m.label = arg + 6;
        } else {
                _cleanup_free_ char *start = strndup(arg, (size_t) (colon - arg));
                if (!start)
                        return -ENOMEM;
                if (parse_size(start, &m.start) < 0 || parse_size(colon + 1, &m.length) < 0 || m.length == 0 ||
                    m.start > UINT64_MAX - m.length)
                        return -EINVAL;
                m.kind = MAP_RANGE;
        }
        *ret = m;
        return 0;
}

void scan_options_done(ScanOptions *o) {
        if (!o)
                return;
        free(o->maps);
        *o = (ScanOptions) {};
}

int scan_options_add_map(ScanOptions *o, const char *arg) {
        MapRequest m, *n;
        int r = map_request_parse(arg, &m);
        if (r < 0)
                return r;
        n = realloc(o->maps, (o->n_maps + 1) * sizeof(MapRequest));
        if (!n)
                return -ENOMEM;
        o->maps = n;
        o->maps[o->n_maps++] = m;
        return 0;
}

int scan_add_region(Scan *s, uint64_t start, uint64_t end, const char *fmt, ...) {
        ScanRegion *n = realloc(s->regions, (s->n_regions + 1) * sizeof(ScanRegion));
        va_list ap;

        if (!n)
                return -ENOMEM;
        s->regions = n;
        n = &s->regions[s->n_regions++];
        *n = (ScanRegion) { .start = start, .end = end };
        va_start(ap, fmt);
        vsnprintf(n->why, sizeof(n->why), fmt, ap);
        va_end(ap);
        return 0;
}

/* Appends "; text" to a partition's "how". */
static void how_append(ScanPart *sp, const char *fmt, ...) _printf_(2, 3);
static void how_append(ScanPart *sp, const char *fmt, ...) {
        size_t len = strlen(sp->how);
        va_list ap;

        if (len + 2 >= sizeof(sp->how))
                return;
        memcpy(sp->how + len, "; ", 3);
        va_start(ap, fmt);
        vsnprintf(sp->how + len + 2, sizeof(sp->how) - len - 2, fmt, ap);
        va_end(ap);
}

/* The bytes of a partition that lie in the image. */
static uint64_t in_image(const Partition *p, uint64_t image_size) {
        if (p->start >= image_size)
                return 0;
        return p->size < image_size - p->start ? p->size : image_size - p->start;
}

/* The user's --map requests as bytes of the image, each also a region of
 * the report. -EDOM when one names something the image does not have. */
static int resolve_maps(Scan *s, const ScanOptions *o, Extents *ret, Diag *d, const char *path) {
        const Layout *l = &s->layout;
        int r;

        for (size_t i = 0; o && i < o->n_maps; i++) {
                const MapRequest *m = &o->maps[i];
                bool found = false;

                if (m->kind == MAP_RANGE) {
                        if (m->start + m->length > l->image_size)
                                return diag_set(d, -EDOM,
                                                "%s: --map %s: bytes %" PRIu64 "-%" PRIu64
                                                " reach past the end of the image (%" PRIu64 " bytes)",
                                                path, m->arg, m->start, m->start + m->length - 1, l->image_size);
                        r = extents_add(ret, m->start, m->start + m->length);
                        if (r >= 0)
                                r = scan_add_region(s, m->start, m->start + m->length, "--map %s", m->arg);
                        if (r < 0)
                                return r;
                        continue;
                }
                for (size_t j = 0; j < l->n_parts; j++) {
                        const Partition *p = &l->parts[j];
                        if (p->container && m->kind == MAP_LABEL)
                                continue;
                        if (m->kind == MAP_PART ? p->number != m->number : strcmp(p->name, m->label) != 0)
                                continue;
                        /* A number names one partition; a name may be shared. */
                        uint64_t len = in_image(p, l->image_size);
                        found = true;
                        r = extents_add(ret, p->start, p->start + len);
                        if (r >= 0)
                                r = scan_add_region(s, p->start, p->start + len, "--map %s (partition %u)", m->arg, p->number);
                        if (r < 0)
                                return r;
                }
                if (!found)
                        return diag_set(d, -EDOM, "%s: --map %s: the image has no %s %s (see 'bmapscan info %s')",
                                        path, m->arg, m->kind == MAP_PART ? "partition" : "partition named",
                                        m->kind == MAP_PART ? m->arg + 5 : m->label, path);
        }
        return 0;
}

/* Runs the probe of one partition and returns its free bytes (relative to
 * the partition). Anything that is not a readable filesystem frees nothing:
 * "when in doubt, map" starts here; the integrity checks below may take
 * back what a probe freed, never add to it. */
static int partition_free(const Reader *rd, const Partition *p, ScanPart *sp, Extents *ret_free) {
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

        r = probe->collect(rd, p->fstype, &res);
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
        sp->probed = true;
        sp->fs_size = res.fs_size;
        snprintf(sp->how, sizeof(sp->how), "%s: %s", type, res.how);
        return 0;
}

/* What one partition holds beyond its filesystem's word. */
typedef struct PartCheck {
        Extents free;           /* relative to the partition */
        bool verity_hash;       /* a dm-verity hash partition (superblock at its start, or a DPS type) */
        bool has_super;
        VeritySuper super;
        DpsType dps;
        bool protected;         /* the data of a dm-verity tree: no block of it is free */
        bool pinned;            /* a hash partition whose data a verity-sig root hash named */
} PartCheck;

static void part_checks_free(PartCheck *checks, size_t n) {
        for (size_t i = 0; checks && i < n; i++)
                extents_done(&checks[i].free);
        free(checks);
}

static void whole(PartCheck *pc) {
        extents_clear(&pc->free);
}

/* The space past a filesystem's end is free only where it reads as zeros;
 * a dm-verity superblock there means the tree covers the filesystem and
 * everything is needed; an AVB footer at the very end means the same. */
static int check_partition(Scan *s, const Reader *rd, size_t i, PartCheck *pc) {
        const Partition *p = &s->layout.parts[i];
        ScanPart *sp = &s->parts[i];
        uint64_t len = in_image(p, s->layout.image_size);
        uint8_t head[VERITY_SUPER_SIZE];
        int r;

        if (p->container)
                return 0;
        pc->dps = dps_type(p->type_guid);

        /* Android AVB: a footer in the partition's last 64 bytes, or a
         * vbmeta blob at its start. */
        if (len == p->size && p->size >= AVB_FOOTER_SIZE) {
                uint8_t foot[AVB_FOOTER_SIZE];
                AvbFooter f;
                if (reader_read(rd, p->size - AVB_FOOTER_SIZE, foot, sizeof(foot)) == 0 &&
                    (r = avb_footer_parse(foot, p->size, &f)) != -EINVAL) {
                        whole(pc);
                        how_append(sp, r < 0 ? "an AVB footer that points outside the partition: fully mapped"
                                             : "Android AVB footer (hash tree, FEC and vbmeta after the "
                                               "filesystem): fully mapped");
                        return scan_add_region(s, p->start, p->start + len, "partition %u: Android AVB footer", p->number);
                }
        }
        if (len >= sizeof(head) && reader_read(rd, 0, head, sizeof(head)) == 0) {
                if (avb_vbmeta_at(head, sizeof(head))) {
                        whole(pc);
                        how_append(sp, "Android AVB vbmeta: fully mapped");
                        return scan_add_region(s, p->start, p->start + len, "partition %u: Android AVB vbmeta", p->number);
                }
                if (verity_super_parse(head, sizeof(head), &pc->super) == 0)
                        pc->has_super = pc->verity_hash = true;
        }
        if (strcmp(p->fstype, "DM_verity_hash") == 0 || dps_is_verity(pc->dps.role))
                pc->verity_hash = true;
        if (pc->verity_hash) {
                char b[32];
                whole(pc);
                if (pc->has_super && verity_data_bytes(&pc->super)) {
                        format_human_size(verity_data_bytes(&pc->super), b, sizeof(b));
                        how_append(sp, "dm-verity hash partition (%s tree over %s of data): fully mapped",
                                   pc->super.algorithm, b);
                } else
                        how_append(sp, "dm-verity hash partition: fully mapped");
                return scan_add_region(s, p->start, p->start + len, "partition %u: dm-verity hash partition", p->number);
        }
        /* A PV's space past its last extent is LVM's to leave unused; its
         * LVs had the tail rule applied inside them. */
        if (!sp->probed || sp->pv || pc->free.n == 0)
                return 0;

        /* Where the filesystem ends. A probe that could not say is trusted
         * only up to the end of what it uses. */
        uint64_t fs_end = sp->fs_size;
        if (fs_end == 0 || fs_end > p->size) {
                _cleanup_extents_ Extents used = EXTENTS_INIT;
                r = extents_complement(&used, &pc->free, 0, p->size);
                if (r < 0)
                        return r;
                fs_end = used.n ? used.v[used.n - 1].end : 0;
        }
        _cleanup_(tail_scan_done) TailScan t = {};
        r = tail_scan(rd, fs_end, &t);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                whole(pc);
                how_append(sp, "the space past the filesystem cannot be read (%s): fully mapped", strerror(-r));
                return 0;
        }
        if (t.verity) {
                char at[32];
                format_human_size(t.verity_offset, at, sizeof(at));
                whole(pc);
                how_append(sp, "dm-verity hash tree in the partition's tail (superblock at %s): fully mapped", at);
                return scan_add_region(s, p->start, p->start + len,
                                  "partition %u: dm-verity superblock at partition byte %" PRIu64, p->number,
                                  t.verity_offset);
        }
        if (t.nonzero.n) {
                char b[32], type[64];
                uint64_t at = 0;

                /* Another filesystem after this one: its zeros are its own
                 * (free clusters, empty tables), so all of the tail. */
                r = tail_find_filesystem(rd, fs_end, &t, s->layout.sector_size, type, sizeof(type), &at);
                if (r == -ENOMEM)
                        return r;
                if (r != 0) {
                        int k = extents_subtract_range(&pc->free, fs_end, p->size);
                        if (k < 0)
                                return k;
                        if (r < 0) {
                                how_append(sp, "the data past the filesystem's end cannot be probed (%s): the rest "
                                               "mapped in full", strerror(-r));
                                return scan_add_region(s, p->start + fs_end, p->start + len,
                                                       "partition %u: data past its filesystem that cannot be probed",
                                                       p->number);
                        }
                        format_human_size(at, b, sizeof(b));
                        how_append(sp, "%s past the filesystem's end (at %s): the rest mapped in full", type, b);
                        return scan_add_region(s, p->start + fs_end, p->start + len,
                                               "partition %u: %s past its filesystem, at partition byte %" PRIu64,
                                               p->number, type, at);
                }
                format_human_size(extents_total(&t.nonzero), b, sizeof(b));
                r = extents_subtract(&pc->free, &t.nonzero);
                if (r < 0)
                        return r;
                how_append(sp, "%s of data past the filesystem's end mapped", b);
        }
        return 0;
}

/* Whether partition p could be the data that hash partition h protects. */
static bool could_be_data(const Scan *s, const PartCheck *checks, size_t h, size_t p) {
        const PartCheck *hc = &checks[h], *pc = &checks[p];
        const Partition *x = &s->layout.parts[p];

        if (p == h || x->container || pc->verity_hash || dps_is_verity_sig(pc->dps.role))
                return false;
        if (hc->has_super) {
                uint64_t data = verity_data_bytes(&hc->super);
                /* The tree covers data bytes from the partition's start: they
                 * fit the partition and hold the whole filesystem. */
                if (data == 0 || data > x->size)
                        return false;
                if (s->parts[p].probed && s->parts[p].fs_size > data)
                        return false;
        }
        return true;
}

/* A dm-verity hash partition protects a data partition elsewhere: every
 * block of that one is needed. Pinned by a verity-sig partition's root
 * hash (the DPS partition UUIDs), else by the superblock's data size and
 * the DPS type pairing; what cannot be pinned maps every candidate. */
static int pair_verity(const Image *img, Scan *s, PartCheck *checks) {
        const Layout *l = &s->layout;
        int r;

        /* The root hash in a verity-sig partition names both partitions. */
        for (size_t i = 0; i < l->n_parts; i++) {
                const Partition *sig = &l->parts[i];
                Reader rd = reader_from_image(img, sig->start, in_image(sig, l->image_size));
                uint8_t hash[128];
                size_t hlen;
                char data_uuid[37], hash_uuid[37];

                if (!dps_is_verity_sig(checks[i].dps.role) || verity_sig_root_hash(&rd, hash, sizeof(hash), &hlen) < 0 ||
                    hlen < 32)
                        continue;
                verity_uuids_from_root_hash(hash, hlen, data_uuid, hash_uuid);
                for (size_t p = 0; p < l->n_parts; p++) {
                        const Partition *x = &l->parts[p];
                        if (strcmp(x->uuid, hash_uuid) == 0 && checks[p].verity_hash)
                                checks[p].pinned = true;
                        if (strcmp(x->uuid, data_uuid) != 0 || checks[p].protected || checks[p].verity_hash)
                                continue;
                        checks[p].protected = true;
                        whole(&checks[p]);
                        how_append(&s->parts[p],
                                   "the data of the dm-verity tree whose root hash partition %u signs: fully mapped",
                                   sig->number);
                        r = scan_add_region(s, x->start, x->start + in_image(x, l->image_size),
                                       "partition %u: data of the dm-verity tree signed in partition %u", x->number,
                                       sig->number);
                        if (r < 0)
                                return r;
                }
        }

        for (size_t h = 0; h < l->n_parts; h++) {
                size_t n = 0, n_paired = 0;
                DpsRole want = dps_data_role(checks[h].dps.role);

                if (!checks[h].verity_hash || checks[h].pinned)
                        continue;
                for (size_t p = 0; p < l->n_parts; p++)
                        if (could_be_data(s, checks, h, p)) {
                                n++;
                                if (want != DPS_OTHER && checks[p].dps.role == want &&
                                    strcmp(checks[p].dps.arch, checks[h].dps.arch) == 0)
                                        n_paired++;
                        }
                for (size_t p = 0; p < l->n_parts; p++) {
                        const Partition *x = &l->parts[p];
                        bool paired = want != DPS_OTHER && checks[p].dps.role == want &&
                                      strcmp(checks[p].dps.arch, checks[h].dps.arch) == 0;
                        if (!could_be_data(s, checks, h, p) || (n_paired > 0 && !paired))
                                continue;
                        size_t k = n_paired > 0 ? n_paired : n;
                        if (checks[p].protected)
                                continue;
                        checks[p].protected = true;
                        whole(&checks[p]);
                        if (k == 1)
                                how_append(&s->parts[p], "the data of the dm-verity hash partition %u: fully mapped",
                                           l->parts[h].number);
                        else
                                how_append(&s->parts[p],
                                           "could be the data of the dm-verity hash partition %u (one of %zu "
                                           "candidates): fully mapped",
                                           l->parts[h].number, k);
                        r = scan_add_region(s, x->start, x->start + in_image(x, l->image_size),
                                       "partition %u: data of the dm-verity hash partition %u", x->number,
                                       l->parts[h].number);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

int scan_image(int fd, const char *path, uint64_t image_size, const ScanOptions *o, Scan *ret, Diag *d) {
        Image img = image_raw(fd, image_size);
        return scan_disk_image(&img, path, o, ret, d);
}

int scan_disk_image(const Image *img, const char *path, const ScanOptions *o, Scan *ret, Diag *d) {
        _cleanup_(scan_done) Scan s = {};
        _cleanup_extents_ Extents free_space = EXTENTS_INIT, inside = EXTENTS_INIT, user = EXTENTS_INIT;
        const uint64_t image_size = img->size;
        PartCheck *checks = NULL;
        int r;

        r = layout_read_image(img, path, &s.layout, d);
        if (r < 0)
                return r;
        s.parts = calloc(s.layout.n_parts + 1, sizeof(ScanPart));
        checks = calloc(s.layout.n_parts + 1, sizeof(PartCheck));
        r = !s.parts || !checks ? -ENOMEM : resolve_maps(&s, o, &user, d, path);
        if (r < 0)
                goto fail;

        for (size_t i = 0; i < s.layout.n_parts; i++) {
                const Partition *p = &s.layout.parts[i];
                Reader rd = reader_from_image(img, p->start, p->size);
                s.parts[i].part = p;
                if (!p->container && !p->mapped_whole && strcmp(p->fstype, "LVM2_member") == 0)
                        r = scan_lvm_pv(img, &s, i, &rd, &checks[i].free);
                else
                        r = partition_free(&rd, p, &s.parts[i], &checks[i].free);
                if (r >= 0)
                        r = check_partition(&s, &rd, i, &checks[i]);
                if (r < 0)
                        goto fail;
                if (!p->container) {
                        r = extents_add(&inside, p->start, p->start + p->size);
                        if (r < 0)
                                goto fail;
                }
        }
        r = pair_verity(img, &s, checks);
        if (r < 0)
                goto fail;
        for (size_t i = 0; i < s.layout.n_parts; i++) {
                r = extents_shift(&checks[i].free, (int64_t) s.layout.parts[i].start);
                if (r >= 0)
                        r = extents_union(&free_space, &checks[i].free);
                if (r < 0)
                        goto fail;
        }
        /* Space a partition frees may still be claimed by another region
         * (an overlapping partition mapped in full): such a partition frees
         * nothing, so subtracting the union of frees is safe only because
         * disputed partitions are never probed. The user's word wins over
         * every probe. */
        r = extents_subtract(&free_space, &user);
        if (r >= 0)
                r = extents_add(&s.mapped, 0, image_size);
        if (r >= 0)
                r = extents_subtract(&s.mapped, &free_space);
        if (r >= 0)
                r = extents_clip(&s.mapped, 0, image_size);
        if (r < 0)
                goto fail;

        for (size_t i = 0; i < s.layout.n_parts; i++) {
                const Partition *p = &s.layout.parts[i];
                _cleanup_extents_ Extents x = EXTENTS_INIT;
                if (p->container)
                        continue;
                r = extents_copy(&x, &s.mapped);
                if (r >= 0)
                        r = extents_clip(&x, p->start, p->start + p->size);
                if (r < 0)
                        goto fail;
                s.parts[i].used = extents_total(&x);
        }
        for (size_t i = 0; i < s.n_volumes; i++) {
                _cleanup_extents_ Extents x = EXTENTS_INIT;
                r = extents_copy(&x, &s.mapped);
                if (r >= 0)
                        r = extents_intersect(&x, &s.volumes[i].extents);
                if (r < 0)
                        goto fail;
                s.volumes[i].used = extents_total(&x);
        }
        {
                _cleanup_extents_ Extents x = EXTENTS_INIT;
                r = extents_copy(&x, &s.mapped);
                if (r >= 0)
                        r = extents_subtract(&x, &inside);
                if (r < 0)
                        goto fail;
                s.outside = extents_total(&x);
        }
        part_checks_free(checks, s.layout.n_parts);
        *ret = s;
        s = (Scan) {};
        return 0;
fail:
        part_checks_free(checks, s.layout.n_parts);
        if (r == -ENOMEM || r == -EDOM || !d || d->msg[0])
                return r;
        return diag_set(d, r, "%s: scanning the partitions: %s", path, strerror(-r));
}
