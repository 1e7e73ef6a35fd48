/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libFuzzer harness for the LVM2 PV reader: the input is the head of a PV
 * (label, PV header, metadata area, text), read as a PV of its own size, of
 * four times its size and of 1 GiB; and the input as bare VG text, parsed against a
 * fixed PV UUID. It must never crash, and what it accepts must hold: every
 * segment and allocated byte inside the PV, LV segments tiling their LV.
 *
 *   CC=clang meson setup build-fuzz -Dfuzzing=true -Db_sanitize=address,undefined -Db_lundef=false
 *   ninja -C build-fuzz tests/fuzz-lvm && build-fuzz/tests/fuzz-lvm -max_total_time=60 CORPUS_DIR
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lvm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const LvmPv *pv, uint64_t pv_size) {
        EXTENTS_FOREACH(x, &pv->allocated)
                if (x->end > pv_size || x->start < pv->pe_start)
                        abort();
        for (size_t i = 0; i < pv->n_lvs; i++) {
                const LvmLv *lv = &pv->lvs[i];
                for (size_t k = 0; k < lv->n_segs; k++) {
                        const LvmSeg *g = &lv->segs[k];
                        if (g->pv_offset + g->size > pv_size || g->lv_start + g->size > lv->size)
                                abort();
                        if (k && lv->segs[k - 1].lv_start > g->lv_start)
                                abort();
                }
        }
}

static void run(const uint8_t *data, size_t size, uint64_t pv_size) {
        LvmPv pv = {};
        char why[256];
        Reader r = reader_from_mem(data, size, 0, pv_size);
        int k = lvm_pv_read(&r, &pv, why, sizeof(why));
        if (k == 0)
                check(&pv, pv_size);
        else if (!why[0] && k != -ENOMEM)
                abort();
        lvm_pv_done(&pv);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        run(data, size, size);
        run(data, size, (uint64_t) size * 4);
        /* A PV head cut from a larger device: its extents lie past the input. */
        run(data, size, 1ull << 30);

        LvmPv pv = {};
        char why[256];
        if (lvm_pv_from_text((const char *) data, size, "lh5ZgQcP2u6qG3r060iEVEPA7e65ctbW", 1ull << 30, &pv, why,
                             sizeof(why)) == 0)
                check(&pv, 1ull << 30);
        lvm_pv_done(&pv);
        return 0;
}
