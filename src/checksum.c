/* SPDX-License-Identifier: GPL-2.0-or-later */
/* CRC-32C, CRC-32 and XXH64, written from the algorithms' descriptions. The btrfs
 * probe checksums every tree block it reads with one of them, so both are
 * on the scan's hot path: CRC-32C takes the CPU's instruction when there is
 * one, and neither allocates or locks after the first call. */
#include "checksum.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

#include "util.h"

/* ---------------------------------------------------------------- crc32c */

/* Slicing by 8 over tables built once. SSE4.2's crc32 instruction computes
 * the same polynomial and is used when the CPU has it, unless
 * BMAPSCAN_CRC32C_PORTABLE is set (the tests use it to run the table code
 * on machines that would not). */
static uint32_t crc32c_table[8][256];
static bool crc32c_hw;
static pthread_once_t crc32c_once = PTHREAD_ONCE_INIT;

static void crc32c_init(void) {
        for (uint32_t i = 0; i < 256; i++) {
                uint32_t c = i;
                for (int k = 0; k < 8; k++)
                        c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
                crc32c_table[0][i] = c;
        }
        for (uint32_t i = 0; i < 256; i++)
                for (int t = 1; t < 8; t++)
                        crc32c_table[t][i] = (crc32c_table[t - 1][i] >> 8) ^ crc32c_table[0][crc32c_table[t - 1][i] & 0xff];
#if defined(__x86_64__)
        crc32c_hw = __builtin_cpu_supports("sse4.2") && !getenv("BMAPSCAN_CRC32C_PORTABLE");
#endif
}

/* Both take and return the register without the final inversion. */
static uint32_t crc32c_portable(uint32_t crc, const uint8_t *p, size_t n) {
        const uint32_t(*t)[256] = crc32c_table;
        for (; n >= 8; p += 8, n -= 8) {
                uint32_t lo = get_le32(p) ^ crc, hi = get_le32(p + 4);
                crc = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff] ^ t[4][lo >> 24] ^
                      t[3][hi & 0xff] ^ t[2][(hi >> 8) & 0xff] ^ t[1][(hi >> 16) & 0xff] ^ t[0][hi >> 24];
        }
        for (; n > 0; p++, n--)
                crc = (crc >> 8) ^ t[0][(crc ^ *p) & 0xff];
        return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc32c_sse42(uint32_t crc, const uint8_t *p, size_t n) {
        uint64_t c = crc;
        for (; n >= 8; p += 8, n -= 8) {
                uint64_t v;
                memcpy(&v, p, sizeof(v)); /* little-endian host: the byte order crc32q expects */
                c = _mm_crc32_u64(c, v);
        }
        uint32_t c32 = (uint32_t) c;
        for (; n > 0; p++, n--)
                c32 = _mm_crc32_u8(c32, *p);
        return c32;
}
#endif

uint32_t crc32c(uint32_t crc, const void *buf, size_t len) {
        pthread_once(&crc32c_once, crc32c_init);
#if defined(__x86_64__)
        if (crc32c_hw)
                return ~crc32c_sse42(~crc, buf, len);
#endif
        return ~crc32c_portable(~crc, buf, len);
}

/* ---------------------------------------------------------------- crc32 */

/* One table lookup per byte: F2FS checksums a superblock and a few
 * checkpoint blocks per scan, not a hot path. */
static uint32_t crc32_table[256];
static pthread_once_t crc32_once = PTHREAD_ONCE_INIT;

static void crc32_init(void) {
        for (uint32_t i = 0; i < 256; i++) {
                uint32_t c = i;
                for (int k = 0; k < 8; k++)
                        c = c & 1 ? (c >> 1) ^ 0xEDB88320u : c >> 1;
                crc32_table[i] = c;
        }
}

uint32_t crc32_raw(uint32_t crc, const void *buf, size_t len) {
        const uint8_t *p = buf;
        pthread_once(&crc32_once, crc32_init);
        while (len--)
                crc = crc32_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
        return crc;
}

/* ---------------------------------------------------------------- xxhash64 */

/* Four accumulator lanes over 32-byte stripes, then the tail in 8, 4 and
 * 1-byte steps, then the avalanche. */
#define XXH_P1 0x9E3779B185EBCA87ULL
#define XXH_P2 0xC2B2AE3D27D4EB4FULL
#define XXH_P3 0x165667B19E3779F9ULL
#define XXH_P4 0x85EBCA77C2B2AE63ULL
#define XXH_P5 0x27D4EB2F165667C5ULL

static uint64_t rotl64(uint64_t x, unsigned r) {
        return (x << r) | (x >> (64 - r));
}

static uint64_t xxh_round(uint64_t acc, uint64_t lane) {
        return rotl64(acc + lane * XXH_P2, 31) * XXH_P1;
}

static uint64_t xxh_merge(uint64_t h, uint64_t acc) {
        return (h ^ xxh_round(0, acc)) * XXH_P1 + XXH_P4;
}

uint64_t xxhash64(const void *buf, size_t len, uint64_t seed) {
        const uint8_t *p = buf, *end = p + len;
        uint64_t h;

        if (len >= 32) {
                uint64_t v1 = seed + XXH_P1 + XXH_P2, v2 = seed + XXH_P2, v3 = seed, v4 = seed - XXH_P1;
                for (; end - p >= 32; p += 32) {
                        v1 = xxh_round(v1, get_le64(p));
                        v2 = xxh_round(v2, get_le64(p + 8));
                        v3 = xxh_round(v3, get_le64(p + 16));
                        v4 = xxh_round(v4, get_le64(p + 24));
                }
                h = rotl64(v1, 1) + rotl64(v2, 7) + rotl64(v3, 12) + rotl64(v4, 18);
                h = xxh_merge(h, v1);
                h = xxh_merge(h, v2);
                h = xxh_merge(h, v3);
                h = xxh_merge(h, v4);
        } else
                h = seed + XXH_P5;
        h += len;
        for (; end - p >= 8; p += 8)
                h = rotl64(h ^ xxh_round(0, get_le64(p)), 27) * XXH_P1 + XXH_P4;
        if (end - p >= 4) {
                h = rotl64(h ^ (uint64_t) get_le32(p) * XXH_P1, 23) * XXH_P2 + XXH_P3;
                p += 4;
        }
        for (; p < end; p++)
                h = rotl64(h ^ *p * XXH_P5, 11) * XXH_P1;
        h ^= h >> 33;
        h *= XXH_P2;
        h ^= h >> 29;
        h *= XXH_P3;
        h ^= h >> 32;
        return h;
}
