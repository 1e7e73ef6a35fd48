/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What the sparse image writer and reader share (simg.h). */
#include <stddef.h>

#include <isa-l/crc.h>

#include "simg.h"

bool simg_pads(const SimgInfo *i, uint64_t output_size, uint64_t image_size) {
        return i && image_size > 0 && image_size < output_size && output_size - image_size < i->block_size;
}

uint32_t simg_crc32(uint32_t crc, const void *buf, uint64_t n) {
        return crc32_gzip_refl(crc, buf, n);
}

/* The CRC is linear: crc(c, D) = c · x^(8·|D|) + crc(0, D), polynomials
 * over GF(2) modulo the CRC's, here in its reflected bit order (x^0 is the
 * top bit). So a CRC over n repeated units takes O(log n) products rather
 * than n units' bytes: a sparse image's 16 bytes of DONT_CARE or FILL can
 * stand for 2^58 bytes of output, which would otherwise take hours. */
#define POLY UINT32_C(0xEDB88320)
#define X0 UINT32_C(0x80000000)

static uint32_t mult(uint32_t a, uint32_t b) {
        uint32_t p = 0;
        for (uint32_t m = X0; m; m >>= 1) {
                if (a & m)
                        p ^= b;
                b = b & 1 ? (b >> 1) ^ POLY : b >> 1;
        }
        return p;
}

/* crc carried over count copies of the len bytes at unit. */
static uint32_t crc_repeat(uint32_t crc, const uint8_t *unit, size_t len, uint64_t count) {
        uint32_t z1 = crc32_gzip_refl(0, unit, len), xu = X0, z = 0, p = X0;
        for (size_t i = 0; i < len; i++)
                xu = mult(xu, X0 >> 8);
        /* (z, p) = (crc(0, unit^j), x^(8·len·j)) for j the top bits of count. */
        for (int bit = 63; bit >= 0; bit--) {
                z = mult(p, z) ^ z;
                p = mult(p, p);
                if (count >> bit & 1) {
                        z = mult(xu, z) ^ z1;
                        p = mult(p, xu);
                }
        }
        return mult(p, crc) ^ z;
}

uint32_t simg_crc32_zeros(uint32_t crc, uint64_t n) {
        static const uint8_t zero;
        return crc_repeat(crc, &zero, 1, n);
}

uint32_t simg_crc32_fill(uint32_t crc, uint32_t value, uint64_t phase, uint64_t n) {
        uint8_t v[8];
        for (int i = 0; i < 8; i++)
                v[i] = (uint8_t) (value >> (8 * (i % 4)));
        size_t head = (size_t) ((4 - phase % 4) % 4);
        if (head > n)
                head = (size_t) n;
        crc = crc32_gzip_refl(crc, v + phase % 4, head);
        n -= head;
        crc = crc_repeat(crc, v, 4, n / 4);
        return crc32_gzip_refl(crc, v, n % 4);
}
