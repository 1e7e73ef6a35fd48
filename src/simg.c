/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What the sparse image writer and reader share (simg.h). */
#include <isa-l/crc.h>

#include "simg.h"

uint32_t simg_crc32(uint32_t crc, const void *buf, uint64_t n) {
        return crc32_gzip_refl(crc, buf, n);
}

uint32_t simg_crc32_zeros(uint32_t crc, uint64_t n) {
        static const uint8_t zeros[64 << 10];
        while (n > 0) {
                uint64_t k = n < sizeof(zeros) ? n : sizeof(zeros);
                crc = crc32_gzip_refl(crc, zeros, k);
                n -= k;
        }
        return crc;
}
