/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A qcow2 host file in memory, for the unit test and the fuzzer. */
#pragma once

#include <string.h>
#include <sys/types.h>

#include "util.h"

typedef struct Mem {
        uint8_t *b;     /* written by the unit test as it builds images; only read here */
        size_t size;
} Mem;

/* Qcow2Host.pread over a Mem: fewer bytes only at its end. */
_unused_ static ssize_t mem_pread(void *ctx, uint64_t off, void *buf, size_t n) {
        const Mem *m = ctx;
        if (off >= m->size)
                return 0;
        if (n > m->size - off)
                n = (size_t) (m->size - off);
        memcpy(buf, m->b + off, n);
        return (ssize_t) n;
}
