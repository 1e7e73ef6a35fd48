/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* An LVM2 physical volume: its label and PV header, the newest committed
 * text metadata of its metadata areas, and what the VG in that text puts
 * on this PV (FORMATS.md §10). A container, not a filesystem: scan-lvm.c
 * maps its own bytes and hands each linear LV to the probes. Everything is
 * read through a bounded Reader over the PV and checked before use. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "extents.h"
#include "reader.h"

#define LVM_SECTOR 512u
#define LVM_MAX_MDAS 2          /* pvcreate --pvmetadatacopies allows 0, 1 or 2 */

/* A stretch of an LV on this PV: LV bytes [lv_start, lv_start + size) are
 * PV bytes [pv_offset, pv_offset + size). */
typedef struct LvmSeg {
        uint64_t lv_start, pv_offset, size;
} LvmSeg;

typedef struct LvmLv {
        char name[128];
        bool visible;           /* status has VISIBLE: not a sub-LV of a pool, raid, mirror... */
        bool referenced;        /* another LV's segment names it (origin, cow store, pool data, image...) */
        char part_of[160];      /* "thin-pool LV pool": the first LV that names it */
        bool linear;            /* every segment "striped" with one stripe */
        bool elsewhere;         /* some of its extents lie on other PVs */
        char kind[32];          /* the first segment type that is not linear, "" if none */
        uint64_t size;          /* bytes of the whole LV, on every PV */
        LvmSeg *segs;           /* its linear pieces on this PV, by lv_start */
        size_t n_segs;
        Extents pv_bytes;       /* every byte of this PV it occupies, whatever its type */
} LvmLv;

typedef struct LvmPv {
        char pv_uuid[33];       /* from the label, no dashes */
        uint64_t dev_size;      /* bytes, from the PV header; 0 if it did not say */
        Extent mdas[LVM_MAX_MDAS];
        size_t n_mdas;
        Extent ba;              /* a bootloader area, empty if none */
        bool orphan;            /* no VG: metadata areas hold no text */
        char vg_name[128];
        uint64_t seqno;
        uint64_t extent_size;   /* bytes */
        uint64_t pe_start;      /* bytes */
        uint64_t pe_count;
        LvmLv *lvs;
        size_t n_lvs;
        Extents allocated;      /* PV bytes of every allocated extent */
} LvmPv;

void lvm_pv_done(LvmPv *pv);

/* CRC-32 as LVM2 computes it: reflected polynomial 0xEDB88320, seeded with
 * initial, no final inversion. */
#define LVM_CRC_SEED 0xF597A6CFu
uint32_t lvm_crc(uint32_t initial, const void *buf, size_t len);

/* Reads the PV in r: label, header, metadata areas, the newest text, and
 * the VG in it. Returns 0, or a negative errno with why (one line) saying
 * what was wrong: -EINVAL for anything inconsistent, -ENOTSUP for what
 * this reader does not handle, -ENOMEM. */
int lvm_pv_read(const Reader *r, LvmPv *ret, char *why, size_t why_len);

/* The VG text alone (for tests and the fuzzer): finds the PV whose id is
 * pv_uuid (no dashes) and fills the VG fields and LVs of pv. pv_bytes is
 * the PV's size: an extent past it is an error. */
int lvm_pv_from_text(const char *text, size_t len, const char *pv_uuid, uint64_t pv_bytes, LvmPv *pv, char *why,
                     size_t why_len);
