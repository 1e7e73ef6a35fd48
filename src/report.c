/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "report.h"

#include <ctype.h>
#include <inttypes.h>
#include <string.h>

#include "json.h"

static const char *human(uint64_t v, char *buf, size_t len) {
        format_human_size(v, buf, len);
        return buf;
}

void report_text(FILE *f, const char *path, const Scan *s, uint64_t block_size, const Extents *blocks) {
        const Layout *l = &s->layout;
        char a[32], b[32], c[32];
        uint64_t mapped = extents_total(&s->mapped);
        /* The name as error lines show it: a newline in it cannot fake a
         * line of the report, nor its bytes move the cursor. */
        _cleanup_free_ char *name = display_escape(path);

        if (strcmp(l->label, "none") == 0)
                fprintf(f, "%s: %s, no partition table, %u-byte sectors\n", name ? name : "?",
                        human(l->image_size, a, sizeof(a)), l->sector_size);
        else
                fprintf(f, "%s: %s, %s partition table, %u-byte sectors\n", name ? name : "?",
                        human(l->image_size, a, sizeof(a)), l->label, l->sector_size);
        if (l->note[0])
                fprintf(f, "  note: %s\n", l->note);
        fprintf(f, "  %-4s %-10s %-10s %-18s %-11s %-10s %-10s %s\n", "part", "start", "size", "type", "filesystem",
                "used", "free", "how");
        for (size_t i = 0; i < l->n_parts; i++) {
                const Partition *p = &l->parts[i];
                const ScanPart *sp = &s->parts[i];
                char num[8], d[32];
                uint64_t in_image = p->start >= l->image_size ? 0
                                    : p->size > l->image_size - p->start ? l->image_size - p->start
                                                                         : p->size;
                snprintf(num, sizeof(num), p->number ? "%u" : "-", p->number);
                fprintf(f, "  %-4s %-10s %-10s %-18.18s %-11s %-10s %-10s %s\n", num, human(p->start, a, sizeof(a)),
                        human(p->size, b, sizeof(b)), p->type, p->container ? "(extended)" : p->fstype[0] ? p->fstype : "-",
                        p->container ? "" : human(sp->used, c, sizeof(c)),
                        p->container ? "" : human(in_image - sp->used, d, sizeof(d)), sp->how);
                /* A container's volumes, each under it: where its first
                 * extent lies, the volume's size, and the share of its
                 * extents here that is mapped. */
                for (size_t k = 0; k < s->n_volumes; k++) {
                        const ScanVolume *v = &s->volumes[k];
                        const char *lv = strchr(v->name, '/');
                        char t[64], e[32];
                        if (v->part != i)
                                continue;
                        snprintf(t, sizeof(t), "LV %.60s", lv ? lv + 1 : v->name);
                        fprintf(f, "  %-4s %-10s %-10s %-18.18s %-11s %-10s %-10s %s\n", "",
                                v->extents.n ? human(v->extents.v[0].start, a, sizeof(a)) : "-",
                                human(v->size, b, sizeof(b)), t, v->fstype[0] ? v->fstype : "-",
                                human(v->used, c, sizeof(c)), human(extents_total(&v->extents) - v->used, e, sizeof(e)),
                                v->how);
                }
        }
        fprintf(f, "  outside the partitions (tables, gaps, unpartitioned space): %s mapped\n",
                human(s->outside, a, sizeof(a)));
        for (size_t i = 0; i < s->n_regions; i++) {
                const ScanRegion *g = &s->regions[i];
                _cleanup_free_ char *why = display_escape(g->why);
                fprintf(f, "  mapped in full: %s at %s: %s\n", human(g->end - g->start, a, sizeof(a)),
                        human(g->start, b, sizeof(b)), why ? why : "?");
        }
        fprintf(f, "mapped %s of %s (%.1f%%)", human(mapped, a, sizeof(a)), human(l->image_size, b, sizeof(b)),
                l->image_size ? (double) mapped * 100.0 / (double) l->image_size : 0.0);
        if (blocks)
                fprintf(f, ": %" PRIu64 " blocks of %" PRIu64 " bytes in %zu ranges", extents_total(blocks),
                        block_size, blocks->n);
        fputc('\n', f);
}

void report_json(FILE *f, const char *path, const Scan *s, uint64_t block_size, const Extents *blocks) {
        report_json_fields(f, path, s, block_size, blocks);
        fputs("}\n", f);
}

void report_json_fields(FILE *f, const char *path, const Scan *s, uint64_t block_size, const Extents *blocks) {
        const Layout *l = &s->layout;

        fputs("{\"image\":", f);
        json_print_string(f, path);
        fprintf(f, ",\"image_size\":%" PRIu64 ",\"table\":", l->image_size);
        json_print_string(f, l->label);
        fprintf(f, ",\"sector_size\":%u,\"note\":", l->sector_size);
        json_print_string(f, l->note);
        fputs(",\"partitions\":[", f);
        for (size_t i = 0; i < l->n_parts; i++) {
                const Partition *p = &l->parts[i];
                const ScanPart *sp = &s->parts[i];
                fprintf(f, "%s{\"number\":%u,\"start\":%" PRIu64 ",\"size\":%" PRIu64 ",\"type\":", i ? "," : "",
                        p->number, p->start, p->size);
                json_print_string(f, p->type);
                fputs(",\"filesystem\":", f);
                json_print_string(f, p->fstype);
                fprintf(f, ",\"container\":%s,\"probe\":", p->container ? "true" : "false");
                if (sp->probe)
                        json_print_string(f, sp->probe);
                else
                        fputs("null", f);
                fprintf(f, ",\"probed\":%s,\"mapped_bytes\":%" PRIu64 ",\"filesystem_size\":%" PRIu64 ",\"how\":",
                        sp->probed ? "true" : "false", p->container ? 0 : sp->used, sp->fs_size);
                json_print_string(f, sp->how);
                fputs(",\"volumes\":[", f);
                bool first = true;
                for (size_t k = 0; k < s->n_volumes; k++) {
                        const ScanVolume *v = &s->volumes[k];
                        if (v->part != i)
                                continue;
                        fputs(first ? "{\"name\":" : ",{\"name\":", f);
                        first = false;
                        json_print_string(f, v->name);
                        fprintf(f, ",\"size\":%" PRIu64 ",\"filesystem\":", v->size);
                        json_print_string(f, v->fstype);
                        fputs(",\"probe\":", f);
                        if (v->probe)
                                json_print_string(f, v->probe);
                        else
                                fputs("null", f);
                        fprintf(f, ",\"probed\":%s,\"bytes_here\":%" PRIu64 ",\"mapped_bytes\":%" PRIu64
                                   ",\"filesystem_size\":%" PRIu64 ",\"extents\":[",
                                v->probed ? "true" : "false", extents_total(&v->extents), v->used, v->fs_size);
                        EXTENTS_FOREACH(x, &v->extents)
                                fprintf(f, "%s{\"start\":%" PRIu64 ",\"size\":%" PRIu64 "}", x == v->extents.v ? "" : ",",
                                        x->start, x->end - x->start);
                        fputs("],\"how\":", f);
                        json_print_string(f, v->how);
                        fputc('}', f);
                }
                fputs("]}", f);
        }
        fputs("],\"regions_mapped_in_full\":[", f);
        for (size_t i = 0; i < s->n_regions; i++) {
                const ScanRegion *g = &s->regions[i];
                fprintf(f, "%s{\"start\":%" PRIu64 ",\"size\":%" PRIu64 ",\"why\":", i ? "," : "", g->start,
                        g->end - g->start);
                json_print_string(f, g->why);
                fputc('}', f);
        }
        fprintf(f, "],\"outside_mapped_bytes\":%" PRIu64 ",\"mapped_bytes\":%" PRIu64, s->outside,
                extents_total(&s->mapped));
        if (blocks)
                fprintf(f, ",\"block_size\":%" PRIu64 ",\"blocks\":%" PRIu64 ",\"mapped_blocks\":%" PRIu64
                           ",\"ranges\":%zu",
                        block_size, l->image_size / block_size + (l->image_size % block_size != 0),
                        extents_total(blocks), blocks->n);
}

/* The letter of a region: the filesystem's initial, '#' for a table or gap. */
static char region_letter(const Scan *s, uint64_t pos) {
        const Partition *best = NULL;
        for (size_t i = 0; i < s->layout.n_parts; i++) {
                const Partition *p = &s->layout.parts[i];
                if (pos < p->start || pos >= p->start + p->size)
                        continue;
                /* The innermost region wins: a logical partition over its container. */
                if (!best || p->size < best->size)
                        best = p;
        }
        if (!best || best->container)
                return '#';
        /* Inside a PV: the LV's filesystem; the PV's own bytes are 'l'. */
        const char *fstype = best->fstype;
        for (size_t k = 0; k < s->n_volumes; k++) {
                const ScanVolume *v = &s->volumes[k];
                if (&s->layout.parts[v->part] == best && extents_contains(&v->extents, pos, pos + 1)) {
                        fstype = v->fstype;
                        break;
                }
        }
        if (!fstype[0])
                return '?';
        if (!strcmp(fstype, "vfat") || !strcmp(fstype, "msdos"))
                return 'f';
        if (!strncmp(fstype, "ext", 3))
                return 'e';
        if (!strcmp(fstype, "swap"))
                return 's';
        return (char) tolower((unsigned char) fstype[0]);
}


void report_picture(FILE *f, const Scan *s, unsigned width) {
        uint64_t size = s->layout.image_size;

        if (size == 0 || width == 0)
                return;
        fputc('[', f);
        for (unsigned i = 0; i < width; i++) {
                uint64_t a = size / width * i + (size % width) * i / width;
                uint64_t b = size / width * (i + 1) + (size % width) * (i + 1) / width;
                if (b <= a)
                        b = a + 1;
                _cleanup_extents_ Extents x = EXTENTS_INIT;
                uint64_t m = 0;
                if (extents_copy(&x, &s->mapped) >= 0 && extents_clip(&x, a, b) >= 0)
                        m = extents_total(&x);
                char ch = region_letter(s, a + (b - a) / 2);
                /* Upper case: mostly mapped; lower case: mostly free. */
                if (ch != '#' && ch != '?')
                        ch = (char) (2 * m > b - a ? toupper((unsigned char) ch) : ch);
                else if (2 * m <= b - a)
                        ch = '.';
                fputc(ch, f);
        }
        fputs("]\n", f);
        fputs(" e/E ext, f/F FAT, s/S swap, other letters: the filesystem's initial, ?: unknown data, #: tables\n"
              " and gaps; upper case: mostly mapped, lower case: mostly free, '.': unmapped\n",
              f);
        if (s->n_volumes)
                fputs(" l/L an LVM2 PV's own bytes and free extents; its LVs show their filesystems' letters\n", f);
}
