/* SPDX-License-Identifier: GPL-2.0-or-later */
/* LVM2 physical volumes (FORMATS.md §10): the label in one of the first
 * four sectors, the PV header after it, the metadata area headers and the
 * committed text in their circular buffers, and the VG that text
 * describes. Only this PV's share of the VG matters: which extents are
 * allocated, and which LVs are plain linear volumes wholly on it. */
#include "lvm.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lvm-text.h"
#include "util.h"

#define LABEL_SCAN_SECTORS 4
#define LABEL_CRC_FROM 20       /* the label's CRC covers bytes 20..511 of its sector */
#define MDA_HEADER_SIZE 512
#define MDA_MAGIC " LVM2 x[5A%r0N*>"
#define RAW_LOCN_IGNORED 1u
/* An extent size or a count past these is nonsense, and keeps every
 * product below 2^64: 2^40 extents of at most 2^32 sectors. */
#define MAX_EXTENT_SECTORS (UINT64_C(1) << 32)
#define MAX_EXTENTS (UINT64_C(1) << 40)
#define MAX_SEGS_PER_LV 65536

static int why_set(char *why, size_t len, int err, const char *fmt, ...) _printf_(4, 5);
static int why_set(char *why, size_t len, int err, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, len, fmt, ap);
        va_end(ap);
        return err;
}

uint32_t lvm_crc(uint32_t initial, const void *buf, size_t len) {
        const uint8_t *p = buf;
        uint32_t crc = initial;

        for (size_t i = 0; i < len; i++) {
                crc ^= p[i];
                for (int k = 0; k < 8; k++)
                        crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1)));
        }
        return crc;
}

void lvm_pv_done(LvmPv *pv) {
        if (!pv)
                return;
        for (size_t i = 0; i < pv->n_lvs; i++) {
                free(pv->lvs[i].segs);
                extents_done(&pv->lvs[i].pv_bytes);
        }
        free(pv->lvs);
        extents_done(&pv->allocated);
        *pv = (LvmPv) {};
}

/* "abcdef-..." → "abcdef...": the text writes the UUID dashed, the label not. */
static void undash(const char *s, char *out, size_t len) {
        size_t n = 0;
        for (; *s && n + 1 < len; s++)
                if (*s != '-')
                        out[n++] = *s;
        out[n] = 0;
}

static bool list_has(const LvmText *t, uint32_t list, const char *s) {
        if (!list || t->nodes[list].type != LVM_NODE_LIST)
                return false;
        for (uint32_t c = t->nodes[list].child; c; c = t->nodes[c].next)
                if (t->nodes[c].type == LVM_NODE_STRING && strcmp(t->nodes[c].str, s) == 0)
                        return true;
        return false;
}

static LvmLv *find_lv(LvmPv *pv, const char *name) {
        for (size_t i = 0; i < pv->n_lvs; i++)
                if (strcmp(pv->lvs[i].name, name) == 0)
                        return &pv->lvs[i];
        return NULL;
}

/* o is a part of lv: never a volume of its own. */
static void mark_part(LvmLv *o, const LvmLv *lv) {
        if (!o || o == lv || o->referenced)
                return;
        o->referenced = true;
        snprintf(o->part_of, sizeof(o->part_of), "%.30s LV %.100s", lv->kind[0] ? lv->kind : "an", lv->name);
}

typedef struct VgCtx {
        const LvmText *t;
        LvmPv *pv;
        uint32_t pvs;           /* the physical_volumes section */
        const char *pv_key;     /* "pv0": how this VG's segments name our PV */
        char *why;
        size_t why_len;
} VgCtx;

/* Whether name is a PV of the VG (a key of physical_volumes). */
static bool is_pv_key(const VgCtx *c, const char *name) {
        return lvm_text_find(c->t, c->pvs, name) != 0;
}

/* PV extents [pe, pe + n) of this PV given to lv. Striped areas must not
 * overlap anything allocated before; other types' areas (mirror legs) may
 * repeat the LV's own, never another LV's. */
static int claim(VgCtx *c, LvmLv *lv, uint64_t pe, uint64_t n, bool exclusive) {
        LvmPv *pv = c->pv;
        int r;

        if (pe > pv->pe_count || n > pv->pe_count - pe)
                return why_set(c->why, c->why_len, -EINVAL,
                               "LV %s: extents %" PRIu64 "-%" PRIu64 " lie past the PV's %" PRIu64 " extents", lv->name,
                               pe, pe + n - 1, pv->pe_count);
        uint64_t a = pv->pe_start + pe * pv->extent_size, b = a + n * pv->extent_size;
        /* Even a mirror leg never shares an extent with another LV: a
         * linear LV read first would free the leg's data with its own
         * free blocks. */
        bool twice = exclusive && extents_overlaps(&pv->allocated, a, b);
        for (size_t i = 0; !exclusive && !twice && i < pv->n_lvs; i++)
                twice = &pv->lvs[i] != lv && extents_overlaps(&pv->lvs[i].pv_bytes, a, b);
        if (twice)
                return why_set(c->why, c->why_len, -EINVAL, "LV %s: extents %" PRIu64 "-%" PRIu64 " are given twice",
                               lv->name, pe, pe + n - 1);
        r = extents_add(&pv->allocated, a, b);
        if (r >= 0)
                r = extents_add(&lv->pv_bytes, a, b);
        return r;
}

static int add_seg(LvmLv *lv, uint64_t lv_start, uint64_t pv_offset, uint64_t size) {
        if (lv->n_segs >= MAX_SEGS_PER_LV)
                return -E2BIG;
        LvmSeg *n = realloc(lv->segs, (lv->n_segs + 1) * sizeof(LvmSeg));
        if (!n)
                return -ENOMEM;
        lv->segs = n;
        /* Kept sorted by lv_start: segments come in order, but the text
         * need not say so. */
        size_t i = lv->n_segs++;
        while (i > 0 && n[i - 1].lv_start > lv_start) {
                n[i] = n[i - 1];
                i--;
        }
        n[i] = (LvmSeg) { lv_start, pv_offset, size };
        return 0;
}

static void set_kind(LvmLv *lv, const char *fmt, ...) _printf_(2, 3);
static void set_kind(LvmLv *lv, const char *fmt, ...) {
        va_list ap;
        lv->linear = false;
        if (lv->kind[0])
                return;
        va_start(ap, fmt);
        vsnprintf(lv->kind, sizeof(lv->kind), fmt, ap);
        va_end(ap);
}

/* The segment types LVM writes today, whose PV areas are all "pvN", pe
 * pairs in lists (or that name other LVs, or no areas at all). */
static bool known_segment_type(const char *type) {
        static const char *const known[] = {
                "mirror",   "snapshot",   "thin",      "thin-pool", "cache",     "cache-pool", "writecache",
                "vdo",      "vdo-pool",   "integrity", "error",     "zero",      "free",
        };
        if (strncmp(type, "raid", 4) == 0)
                return true;
        for (size_t i = 0; i < ELEMENTSOF(known); i++)
                if (strcmp(type, known[i]) == 0)
                        return true;
        return false;
}

/* A segment that is not plain striped: whatever PV areas it names
 * ("pvN", pe pairs in a list) are allocated for extent_count extents,
 * every LV it names is a part of this one, and it is never probed. */
static int other_segment(VgCtx *c, LvmLv *lv, uint32_t seg, uint64_t count) {
        const LvmText *t = c->t;
        int r;

        for (uint32_t k = t->nodes[seg].child; k; k = t->nodes[k].next) {
                const LvmNode *kn = &t->nodes[k];
                if (strcmp(kn->key, "type") == 0 || strcmp(kn->key, "tags") == 0)
                        continue;
                if (kn->type == LVM_NODE_STRING) {
                        mark_part(find_lv(c->pv, kn->str), lv);
                        continue;
                }
                if (kn->type != LVM_NODE_LIST)
                        continue;
                for (uint32_t i = kn->child; i; i = t->nodes[i].next) {
                        const LvmNode *in = &t->nodes[i];
                        if (in->type != LVM_NODE_STRING)
                                continue;
                        mark_part(find_lv(c->pv, in->str), lv);
                        if (!is_pv_key(c, in->str))
                                continue;
                        uint32_t nx = in->next;
                        if (strcmp(in->str, c->pv_key) != 0) {
                                lv->elsewhere = true;
                                continue;
                        }
                        if (!nx || t->nodes[nx].type != LVM_NODE_NUMBER || t->nodes[nx].num < 0)
                                return why_set(c->why, c->why_len, -EINVAL, "LV %s: a PV area without its extent",
                                               lv->name);
                        r = claim(c, lv, (uint64_t) t->nodes[nx].num, count, false);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

static int striped_segment(VgCtx *c, LvmLv *lv, uint32_t seg, uint64_t start, uint64_t count) {
        const LvmText *t = c->t;
        uint64_t stripes;
        uint32_t list;
        int r;

        r = lvm_text_u64(t, seg, "stripe_count", &stripes);
        if (r == -ENOENT)
                stripes = 1;
        else if (r < 0 || stripes == 0 || stripes > 1024)
                return why_set(c->why, c->why_len, -EINVAL, "LV %s: a striped segment without a valid stripe_count",
                               lv->name);
        list = lvm_text_find(t, seg, "stripes");
        if (!list || t->nodes[list].type != LVM_NODE_LIST)
                return why_set(c->why, c->why_len, -EINVAL, "LV %s: a striped segment without its stripes", lv->name);
        if (count % stripes != 0)
                return why_set(c->why, c->why_len, -EINVAL,
                               "LV %s: %" PRIu64 " extents do not divide into %" PRIu64 " stripes", lv->name, count,
                               stripes);
        if (stripes > 1)
                set_kind(lv, "striped (%" PRIu64 " stripes)", stripes);

        uint64_t per = count / stripes, n = 0;
        for (uint32_t i = t->nodes[list].child; i; i = t->nodes[i].next) {
                uint32_t nx = t->nodes[i].next;
                if (n >= stripes || t->nodes[i].type != LVM_NODE_STRING || !nx || t->nodes[nx].type != LVM_NODE_NUMBER ||
                    t->nodes[nx].num < 0)
                        return why_set(c->why, c->why_len, -EINVAL, "LV %s: a stripes list that is not %" PRIu64
                                       " [PV, extent] pairs", lv->name, stripes);
                const char *name = t->nodes[i].str;
                uint64_t pe = (uint64_t) t->nodes[nx].num;
                i = nx;
                n++;
                if (strcmp(name, c->pv_key) != 0) {
                        if (!is_pv_key(c, name)) {
                                /* A stripe on an LV: a stacked layout. */
                                set_kind(lv, "stacked on LV %.20s", name);
                                mark_part(find_lv(c->pv, name), lv);
                        } else
                                lv->elsewhere = true;
                        continue;
                }
                r = claim(c, lv, pe, per, true);
                if (r >= 0 && stripes == 1)
                        r = add_seg(lv, start * c->pv->extent_size, c->pv->pe_start + pe * c->pv->extent_size,
                                    count * c->pv->extent_size);
                if (r == -E2BIG)
                        return why_set(c->why, c->why_len, r, "LV %s: more than %d segments", lv->name,
                                       MAX_SEGS_PER_LV);
                if (r < 0)
                        return r;
        }
        if (n != stripes)
                return why_set(c->why, c->why_len, -EINVAL,
                               "LV %s: a stripes list that is not %" PRIu64 " [PV, extent] pairs", lv->name, stripes);
        return 0;
}

static int read_lv(VgCtx *c, LvmLv *lv, uint32_t node) {
        const LvmText *t = c->t;
        _cleanup_extents_ Extents les = EXTENTS_INIT;
        uint64_t n_segs = 0, declared;
        const char *type;
        int r;

        for (uint32_t s = t->nodes[node].child; s; s = t->nodes[s].next) {
                uint64_t start, count;
                /* LVM takes every subsection of an LV for a segment,
                 * whatever its name: so must we, or its extents go free. */
                if (t->nodes[s].type != LVM_NODE_SECTION)
                        continue;
                n_segs++;
                if (lvm_text_u64(t, s, "start_extent", &start) < 0 || lvm_text_u64(t, s, "extent_count", &count) < 0 ||
                    lvm_text_string(t, s, "type", &type) < 0)
                        return why_set(c->why, c->why_len, -EINVAL,
                                       "LV %s: %s lacks start_extent, extent_count or type", lv->name, t->nodes[s].key);
                if (count == 0 || start >= MAX_EXTENTS || count >= MAX_EXTENTS)
                        return why_set(c->why, c->why_len, -EINVAL, "LV %s: %s has %" PRIu64 " extents at %" PRIu64,
                                       lv->name, t->nodes[s].key, count, start);
                /* Segments tile the LV: one that overlaps another is corrupt. */
                if (extents_overlaps(&les, start, start + count))
                        return why_set(c->why, c->why_len, -EINVAL, "LV %s: segments overlap at extent %" PRIu64,
                                       lv->name, start);
                r = extents_add(&les, start, start + count);
                if (r < 0)
                        return r;
                if (strcmp(type, "striped") == 0)
                        r = striped_segment(c, lv, s, start, count);
                else if (!known_segment_type(type))
                        /* Its PV areas may be written in a way other_segment
                         * does not read: they would pass for free extents. */
                        return why_set(c->why, c->why_len, -EOPNOTSUPP, "LV %s: segment type '%s' is not known",
                                       lv->name, type);
                else {
                        set_kind(lv, "%s", type);
                        r = other_segment(c, lv, s, count);
                }
                if (r < 0)
                        return r;
        }
        /* As LVM checks: a count that disagrees means a segment is lost. */
        if (lvm_text_u64(t, node, "segment_count", &declared) < 0 || declared != n_segs)
                return why_set(c->why, c->why_len, -EINVAL, "LV %s: segment_count is not its %" PRIu64 " segments",
                               lv->name, n_segs);
        if (les.n == 0) {
                set_kind(lv, "no segments");
                return 0;
        }
        if (les.n != 1 || les.v[0].start != 0)
                set_kind(lv, "segments with gaps");
        lv->size = les.v[les.n - 1].end * c->pv->extent_size;
        return 0;
}

int lvm_pv_from_text(const char *text, size_t len, const char *pv_uuid, uint64_t pv_bytes, LvmPv *pv, char *why,
                     size_t why_len) {
        _cleanup_(lvm_text_done) LvmText t = {};
        uint32_t vg = 0, lvs, mine = 0;
        uint64_t ext, pe_start, pe_count;
        int r;

        r = lvm_text_parse(text, len, &t);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return why_set(why, why_len, r, "metadata text, line %zu: %s", t.error_line,
                               t.error[0] ? t.error : "too large");
        for (uint32_t c = t.nodes[0].child; c; c = t.nodes[c].next)
                if (t.nodes[c].type == LVM_NODE_SECTION && lvm_text_find(&t, c, "seqno")) {
                        if (vg)
                                return why_set(why, why_len, -EINVAL, "metadata text holds two VGs");
                        vg = c;
                }
        if (!vg)
                return why_set(why, why_len, -EINVAL, "metadata text without a VG");
        snprintf(pv->vg_name, sizeof(pv->vg_name), "%s", t.nodes[vg].key);
        if (lvm_text_u64(&t, vg, "seqno", &pv->seqno) < 0)
                return why_set(why, why_len, -EINVAL, "VG %s: no valid seqno", pv->vg_name);
        if (lvm_text_u64(&t, vg, "extent_size", &ext) < 0 || ext == 0 || ext > MAX_EXTENT_SECTORS)
                return why_set(why, why_len, -EINVAL, "VG %s: no valid extent_size", pv->vg_name);
        pv->extent_size = ext * LVM_SECTOR;

        VgCtx c = { .t = &t, .pv = pv, .why = why, .why_len = why_len };
        c.pvs = lvm_text_find(&t, vg, "physical_volumes");
        if (!c.pvs || t.nodes[c.pvs].type != LVM_NODE_SECTION)
                return why_set(why, why_len, -EINVAL, "VG %s: no physical_volumes", pv->vg_name);
        for (uint32_t p = t.nodes[c.pvs].child; p; p = t.nodes[p].next) {
                const char *id;
                char plain[64];
                if (t.nodes[p].type != LVM_NODE_SECTION || lvm_text_string(&t, p, "id", &id) < 0)
                        continue;
                undash(id, plain, sizeof(plain));
                if (strcmp(plain, pv_uuid) != 0)
                        continue;
                /* Two keys for this PV: the extents the second names are
                 * ours too, never another PV's to leave free. */
                if (mine)
                        return why_set(why, why_len, -EINVAL, "VG %s lists this PV twice (%s, %s)", pv->vg_name,
                                       t.nodes[mine].key, t.nodes[p].key);
                mine = p;
        }
        if (!mine)
                return why_set(why, why_len, -EINVAL, "VG %s does not list this PV (%s)", pv->vg_name, pv_uuid);
        c.pv_key = t.nodes[mine].key;
        if (lvm_text_u64(&t, mine, "pe_start", &pe_start) < 0 || lvm_text_u64(&t, mine, "pe_count", &pe_count) < 0 ||
            pe_start > pv_bytes / LVM_SECTOR || pe_count >= MAX_EXTENTS)
                return why_set(why, why_len, -EINVAL, "VG %s: no valid pe_start, pe_count for this PV", pv->vg_name);
        pv->pe_start = pe_start * LVM_SECTOR;
        pv->pe_count = pe_count;
        if (pe_count > (pv_bytes - pv->pe_start) / pv->extent_size)
                return why_set(why, why_len, -EINVAL,
                               "VG %s: %" PRIu64 " extents of %" PRIu64 " bytes from byte %" PRIu64
                               " reach past the PV (%" PRIu64 " bytes)",
                               pv->vg_name, pe_count, pv->extent_size, pv->pe_start, pv_bytes);

        lvs = lvm_text_find(&t, vg, "logical_volumes");
        if (lvs && t.nodes[lvs].type != LVM_NODE_SECTION)
                return why_set(why, why_len, -EINVAL, "VG %s: logical_volumes is not a section", pv->vg_name);
        /* First every name, so that a segment can name an LV listed after it. */
        size_t n = 0;
        for (uint32_t l = lvs ? t.nodes[lvs].child : 0; l; l = t.nodes[l].next)
                if (t.nodes[l].type == LVM_NODE_SECTION)
                        n++;
        if (n) {
                pv->lvs = calloc(n, sizeof(LvmLv));
                if (!pv->lvs)
                        return -ENOMEM;
        }
        for (uint32_t l = lvs ? t.nodes[lvs].child : 0; l; l = t.nodes[l].next) {
                if (t.nodes[l].type != LVM_NODE_SECTION)
                        continue;
                LvmLv *lv = &pv->lvs[pv->n_lvs++];
                *lv = (LvmLv) { .linear = true, .pv_bytes = EXTENTS_INIT };
                snprintf(lv->name, sizeof(lv->name), "%s", t.nodes[l].key);
                lv->visible = list_has(&t, lvm_text_find(&t, l, "status"), "VISIBLE");
        }
        size_t i = 0;
        for (uint32_t l = lvs ? t.nodes[lvs].child : 0; l; l = t.nodes[l].next) {
                if (t.nodes[l].type != LVM_NODE_SECTION)
                        continue;
                r = read_lv(&c, &pv->lvs[i++], l);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The label: "LABELONE" in one of the first four sectors, naming its own
 * sector, with a good CRC and an LVM2 PV header after it. */
static int read_label(const Reader *r, LvmPv *pv, uint64_t *ret_da, char *why, size_t why_len) {
        uint8_t s[LVM_SECTOR];
        int k;

        for (uint64_t i = 0; i < LABEL_SCAN_SECTORS; i++) {
                k = reader_read(r, i * LVM_SECTOR, s, sizeof(s));
                if (k < 0)
                        return why_set(why, why_len, k, "cannot read sector %" PRIu64 ": %s", i, strerror(-k));
                if (memcmp(s, "LABELONE", 8) != 0)
                        continue;
                if (get_le64(s + 8) != i)
                        return why_set(why, why_len, -EINVAL, "the label in sector %" PRIu64 " names sector %" PRIu64, i,
                                       get_le64(s + 8));
                if (lvm_crc(LVM_CRC_SEED, s + LABEL_CRC_FROM, sizeof(s) - LABEL_CRC_FROM) != get_le32(s + 16))
                        return why_set(why, why_len, -EINVAL, "the label in sector %" PRIu64 " fails its CRC", i);
                if (memcmp(s + 24, "LVM2 001", 8) != 0)
                        return why_set(why, why_len, -ENOTSUP, "a label of type \"%.8s\"", (const char *) s + 24);
                uint32_t off = get_le32(s + 20);
                if (off < 32 || off > sizeof(s) - 56)
                        return why_set(why, why_len, -EINVAL, "the label's header offset %" PRIu32 " is bad", off);

                const uint8_t *h = s + off, *end = s + sizeof(s);
                memcpy(pv->pv_uuid, h, 32);
                pv->pv_uuid[32] = 0;
                for (int j = 0; j < 32; j++)
                        if (!((h[j] >= '0' && h[j] <= '9') || (h[j] >= 'a' && h[j] <= 'z') ||
                              (h[j] >= 'A' && h[j] <= 'Z') || h[j] == '!' || h[j] == '#'))
                                return why_set(why, why_len, -EINVAL, "the PV UUID holds a byte 0x%02x", h[j]);
                pv->dev_size = get_le64(h + 32);
                const uint8_t *p = h + 40;
                /* Data areas, then metadata areas, each list ending in a zero pair. */
                *ret_da = UINT64_MAX;
                for (int list = 0; list < 2; list++)
                        for (;;) {
                                if (end - p < 16)
                                        return why_set(why, why_len, -EINVAL, "the PV header's area lists overrun the label sector");
                                uint64_t o = get_le64(p), z = get_le64(p + 8);
                                p += 16;
                                if (o == 0 && z == 0)
                                        break;
                                if (list == 0) {
                                        if (*ret_da == UINT64_MAX)
                                                *ret_da = o;
                                        continue;
                                }
                                if (pv->n_mdas >= LVM_MAX_MDAS)
                                        return why_set(why, why_len, -EINVAL, "more than %d metadata areas", LVM_MAX_MDAS);
                                if (o > r->size || z > r->size - o || z < 2 * MDA_HEADER_SIZE)
                                        return why_set(why, why_len, -EINVAL,
                                                       "metadata area %zu (%" PRIu64 " bytes at %" PRIu64
                                                       ") does not fit the PV",
                                                       pv->n_mdas, z, o);
                                pv->mdas[pv->n_mdas++] = (Extent) { o, o + z };
                        }
                /* The extension (version 2): flags and bootloader areas. */
                if (end - p >= 8 && get_le32(p) >= 2) {
                        pv->orphan = !(get_le32(p + 4) & 1);
                        p += 8;
                        if (end - p >= 16) {
                                uint64_t o = get_le64(p), z = get_le64(p + 8);
                                if (z && o <= r->size && z <= r->size - o)
                                        pv->ba = (Extent) { o, o + z };
                        }
                } else
                        pv->orphan = false; /* unknown: never assume a PV unused */
                return 0;
        }
        return why_set(why, why_len, -EINVAL, "no LVM2 label in sectors 0-3");
}

/* The committed text of one metadata area, or none (-ENOENT: empty or ignored). */
static int read_mda_text(const Reader *r, Extent mda, char **ret, size_t *ret_len, char *why, size_t why_len) {
        uint8_t h[MDA_HEADER_SIZE];
        uint64_t size = mda.end - mda.start;
        int k;

        k = reader_read(r, mda.start, h, sizeof(h));
        if (k < 0)
                return why_set(why, why_len, k, "cannot read the metadata area at %" PRIu64 ": %s", mda.start,
                               strerror(-k));
        if (lvm_crc(LVM_CRC_SEED, h + 4, sizeof(h) - 4) != get_le32(h))
                return why_set(why, why_len, -EINVAL, "the metadata area header at %" PRIu64 " fails its CRC", mda.start);
        if (memcmp(h + 4, MDA_MAGIC, 16) != 0 || get_le32(h + 20) != 1)
                return why_set(why, why_len, -EINVAL, "the metadata area header at %" PRIu64 " is not LVM2's",
                               mda.start);
        if (get_le64(h + 24) != mda.start || get_le64(h + 32) != size)
                return why_set(why, why_len, -EINVAL,
                               "the metadata area header at %" PRIu64 " disagrees with the PV header", mda.start);
        uint64_t off = get_le64(h + 40), len = get_le64(h + 48);
        uint32_t crc = get_le32(h + 56), flags = get_le32(h + 60);
        if ((off == 0 && len == 0) || (flags & RAW_LOCN_IGNORED))
                return -ENOENT;
        if (off < MDA_HEADER_SIZE || off >= size || len == 0 || len > size - MDA_HEADER_SIZE)
                return why_set(why, why_len, -EINVAL,
                               "the metadata at %" PRIu64 " (%" PRIu64 " bytes at %" PRIu64 ") lies outside its area",
                               mda.start, len, off);
        if (len > LVM_TEXT_MAX)
                return why_set(why, why_len, -E2BIG, "%" PRIu64 " bytes of metadata text (at most %u read)", len,
                               LVM_TEXT_MAX);
        _cleanup_free_ char *buf = malloc((size_t) len);
        if (!buf)
                return -ENOMEM;
        /* The circular buffer: what does not fit before the area's end
         * continues right after the header. */
        uint64_t first = len < size - off ? len : size - off;
        k = reader_read(r, mda.start + off, buf, (size_t) first);
        if (k >= 0 && first < len)
                k = reader_read(r, mda.start + MDA_HEADER_SIZE, buf + first, (size_t) (len - first));
        if (k < 0)
                return why_set(why, why_len, k, "cannot read the metadata text at %" PRIu64 ": %s", mda.start + off,
                               strerror(-k));
        if (lvm_crc(LVM_CRC_SEED, buf, (size_t) len) != crc)
                return why_set(why, why_len, -EINVAL, "the metadata text at %" PRIu64 " fails its CRC",
                               mda.start + off);
        *ret = TAKE_PTR(buf);
        *ret_len = (size_t) len;
        return 0;
}

int lvm_pv_read(const Reader *r, LvmPv *ret, char *why, size_t why_len) {
        _cleanup_(lvm_pv_done) LvmPv pv = { .allocated = EXTENTS_INIT };
        uint64_t da = UINT64_MAX;
        int k;

        why[0] = 0;
        k = read_label(r, &pv, &da, why, why_len);
        if (k < 0)
                return k;
        if (pv.n_mdas == 0)
                return why_set(why, why_len, -ENOTSUP, "no metadata area: its VG is described on other PVs");

        /* Every area's committed text; the newest seqno wins. */
        LvmPv best = { .allocated = EXTENTS_INIT };
        bool have = false, empty = false;
        char bad[160] = "";
        for (size_t i = 0; i < pv.n_mdas; i++) {
                _cleanup_free_ char *text = NULL;
                size_t len = 0;
                char w[160];
                LvmPv cand = { .allocated = EXTENTS_INIT };

                k = read_mda_text(r, pv.mdas[i], &text, &len, w, sizeof(w));
                if (k == -ENOMEM) {
                        lvm_pv_done(&best);
                        return k;
                }
                if (k == -ENOENT) {
                        empty = true;
                        continue;
                }
                if (k >= 0)
                        k = lvm_pv_from_text(text, len, pv.pv_uuid, r->size, &cand, w, sizeof(w));
                if (k < 0) {
                        lvm_pv_done(&cand);
                        if (k == -ENOMEM) {
                                lvm_pv_done(&best);
                                return k;
                        }
                        if (!bad[0])
                                snprintf(bad, sizeof(bad), "%s", w);
                        continue;
                }
                if (!have || cand.seqno > best.seqno) {
                        lvm_pv_done(&best);
                        best = cand;
                        have = true;
                } else
                        lvm_pv_done(&cand);
        }
        /* A damaged copy beside a good one is still damage: the good one may
         * be the older. Only an area that verifies counts, so map whole. */
        if (bad[0]) {
                lvm_pv_done(&best);
                return why_set(why, why_len, -EINVAL, "%s", bad);
        }
        if (!have) {
                if (!empty || !pv.orphan)
                        return why_set(why, why_len, -ENOTSUP, "its metadata areas hold no VG, yet the PV is not an orphan");
                pv.orphan = true;
                if (da == UINT64_MAX || da > r->size || da < LABEL_SCAN_SECTORS * LVM_SECTOR)
                        return why_set(why, why_len, -EINVAL, "an orphan PV without a data area");
                pv.pe_start = da;
                *ret = pv;
                pv = (LvmPv) {};
                return 0;
        }
        if (da != UINT64_MAX && da != best.pe_start) {
                lvm_pv_done(&best);
                return why_set(why, why_len, -EINVAL, "the label's data area (%" PRIu64 ") and the metadata's pe_start (%" PRIu64 ") differ",
                               da, best.pe_start);
        }
        /* An extent on the label, a metadata area or the bootloader area
         * would let an LV's free blocks free LVM's own bytes. */
        bool clash = best.pe_start < LABEL_SCAN_SECTORS * LVM_SECTOR ||
                     extents_overlaps(&best.allocated, 0, LABEL_SCAN_SECTORS * LVM_SECTOR) ||
                     (pv.ba.end > pv.ba.start && extents_overlaps(&best.allocated, pv.ba.start, pv.ba.end));
        for (size_t i = 0; i < pv.n_mdas; i++)
                clash = clash || extents_overlaps(&best.allocated, pv.mdas[i].start, pv.mdas[i].end);
        if (clash) {
                lvm_pv_done(&best);
                return why_set(why, why_len, -EINVAL,
                               "allocated extents overlap the label, a metadata area or the bootloader area");
        }
        memcpy(best.pv_uuid, pv.pv_uuid, sizeof(best.pv_uuid));
        best.dev_size = pv.dev_size;
        memcpy(best.mdas, pv.mdas, sizeof(best.mdas));
        best.n_mdas = pv.n_mdas;
        best.ba = pv.ba;
        best.orphan = false;
        *ret = best;
        return 0;
}
