/* SPDX-License-Identifier: GPL-2.0-or-later */
/* CRC-32C and XXH64 against published vectors and against values computed
 * outside this code: a bit-at-a-time CRC-32C written here from the
 * polynomial, and XXH64 values from the xxHash library (libxxhash 0.8.1,
 * through Python's ctypes). Every length around the algorithms' 4-, 8- and
 * 32-byte steps, every alignment, pieces carried over, and both CRC-32C
 * code paths: the test runs itself again with BMAPSCAN_CRC32C_PORTABLE set,
 * so the table code is checked on machines that have SSE4.2 too. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "checksum.h"
#include "util.h"

/* The reference: one bit at a time, from the reflected polynomial. */
static uint32_t ref_crc32c(uint32_t crc, const uint8_t *p, size_t n) {
        uint32_t c = ~crc;
        while (n--) {
                c ^= *p++;
                for (int k = 0; k < 8; k++)
                        c = (c >> 1) ^ (0x82F63B78u & -(c & 1));
        }
        return ~c;
}

/* Byte i of the pattern the library vectors were computed over. */
static uint8_t pattern_byte(size_t i) {
        return (uint8_t) (i * 31 + 7);
}

static void test_crc32c_published_vectors(void) {
        uint8_t buf[32];

        CHECK_U64(crc32c(0, "123456789", 9), 0xe3069283);
        CHECK_U64(crc32c(0, "", 0), 0);
        /* RFC 3720 (iSCSI), appendix B.4. */
        memset(buf, 0, sizeof(buf));
        CHECK_U64(crc32c(0, buf, sizeof(buf)), 0x8a9136aa);
        memset(buf, 0xff, sizeof(buf));
        CHECK_U64(crc32c(0, buf, sizeof(buf)), 0x62a8ab43);
        for (int i = 0; i < 32; i++)
                buf[i] = (uint8_t) i;
        CHECK_U64(crc32c(0, buf, sizeof(buf)), 0x46dd794e);
        for (int i = 0; i < 32; i++)
                buf[i] = (uint8_t) (31 - i);
        CHECK_U64(crc32c(0, buf, sizeof(buf)), 0x113fdb5c);
}

/* Every length to 300 at every alignment: the 8-byte main loop, its tail,
 * and a start that is not 8-byte aligned. */
static void test_crc32c_every_length_and_alignment(void) {
        uint8_t raw[300 + 8];
        unsigned bad = 0;

        for (size_t i = 0; i < sizeof(raw); i++)
                raw[i] = (uint8_t) (rand() & 0xff);
        for (size_t off = 0; off < 8; off++)
                for (size_t n = 0; n <= 300; n++) {
                        uint32_t got = crc32c(0, raw + off, n), want = ref_crc32c(0, raw + off, n);
                        if (got != want && bad++ < 5)
                                CHECK(got == want, "offset %zu, %zu bytes: 0x%08x, expected 0x%08x", off, n, got, want);
                }
        CHECK(bad == 0, "%u of %d lengths and offsets differ from the bit-at-a-time CRC-32C", bad, 8 * 301);
}

/* A CRC carried over pieces equals the CRC of the whole. */
static void test_crc32c_carried_over_pieces(void) {
        uint8_t buf[200];
        for (size_t i = 0; i < sizeof(buf); i++)
                buf[i] = pattern_byte(i);
        uint32_t whole = crc32c(0, buf, sizeof(buf));
        CHECK_U64(whole, ref_crc32c(0, buf, sizeof(buf)));
        for (size_t cut = 0; cut <= sizeof(buf); cut++) {
                uint32_t c = crc32c(crc32c(0, buf, cut), buf + cut, sizeof(buf) - cut);
                CHECK(c == whole, "cut at %zu: 0x%08x, expected 0x%08x", cut, c, whole);
        }
        /* A seed other than 0 is a CRC already carried, as the reference says. */
        CHECK_U64(crc32c(0xdeadbeef, buf, 77), ref_crc32c(0xdeadbeef, buf, 77));
}

static void test_crc32c_pattern_vectors(void) {
        static const struct {
                size_t n;
                uint32_t crc;
        } v[] = {
                { 1, 0x86b737ba }, { 3, 0x765a7c83 },  { 4, 0x65f1c5dc },  { 7, 0x5110a112 },   { 8, 0x40795c72 },
                { 15, 0x9b0c1517 }, { 31, 0x17430993 }, { 32, 0x9ac661b0 }, { 33, 0xd7082b08 }, { 63, 0xd7013350 },
                { 64, 0x2b1d65d8 }, { 100, 0xe26c441c }, { 255, 0x0fd95f5e }, { 300, 0x578cf53a },
        };
        uint8_t buf[300];
        for (size_t i = 0; i < sizeof(buf); i++)
                buf[i] = pattern_byte(i);
        for (size_t i = 0; i < ELEMENTSOF(v); i++) {
                uint32_t c = crc32c(0, buf, v[i].n);
                CHECK(c == v[i].crc, "pattern, %zu bytes: 0x%08x, expected 0x%08x", v[i].n, c, v[i].crc);
        }
}

static void test_xxhash64_published_vectors(void) {
        CHECK_U64(xxhash64("", 0, 0), 0xef46db3751d8e999ULL);
        CHECK_U64(xxhash64("a", 1, 0), 0xd24ec4f1a98c6e5bULL);
        CHECK_U64(xxhash64("abc", 3, 0), 0x44bc2cf5ad770999ULL);
        /* From the xxHash library. */
        CHECK_U64(xxhash64("", 0, 1), 0xd5afba1336a3be4bULL);
        CHECK_U64(xxhash64("123456789", 9, 0), 0x8cb841db40e6ae83ULL);
        CHECK_U64(xxhash64("The quick brown fox jumps over the lazy dog", 43, 0), 0x0b242d361fda71bcULL);
        CHECK_U64(xxhash64("The quick brown fox jumps over the lazy dog", 43, 1), 0xdf5091b6dad2c6dbULL);
}

/* Lengths on both sides of the 4-, 8- and 32-byte steps, three seeds (0 as
 * btrfs uses, 1, and one with the high bit set), values from the xxHash
 * library. */
static void test_xxhash64_pattern_vectors(void) {
        static const struct {
                size_t n;
                uint64_t seed0, seed1, seed_golden;
        } v[] = {
                { 0, 0xef46db3751d8e999, 0xd5afba1336a3be4b, 0xc4349fc93c010000 },
                { 1, 0xa96c7f0ce858bbb7, 0x0766883a0a47a96a, 0x585882422a6165e7 },
                { 3, 0x56e6957632a487f9, 0x598afe4fbb09d9f6, 0x5acb303e78133c22 },
                { 4, 0xc60d15b1e3ff8f04, 0x5e9f99aa13de2d02, 0x7d51d5e2461732b3 },
                { 7, 0xafbefc3d6c6f9a8e, 0xbd99f1fa0de7b9a4, 0x2ce9adec2b2c8104 },
                { 8, 0x3da5c7aa269683e0, 0x1b4e043a4021aa18, 0x758848f033fa76a2 },
                { 15, 0xae2a37eb9357caa7, 0xc88bd84841af8ac9, 0xa18d5c90d722cee3 },
                { 31, 0x4a74f3a1a39ad4a1, 0xd7ac4f4bea4e460a, 0x8137041f5af88413 },
                { 32, 0x8d57d6a4671cc43d, 0x8f666909cfd00cc8, 0x184ebcf3745cd46c },
                { 33, 0x62c9fd21ed857664, 0xb1575979b72c805a, 0x52fac3c981f3cc2e },
                { 63, 0x5c320a0d2707057f, 0x61b9cb220da77a86, 0x64ef99a2e94cc7bd },
                { 64, 0x7bbabbc45729d17e, 0xee10eee981202ce9, 0xf7f22435fe1ab128 },
                { 100, 0xefa0ad2d3e70c151, 0xcd8103aecd2ed5cf, 0xbc7ab33be7528c18 },
                { 255, 0x2c3db4bb567f731e, 0xee611f8ee99c1e80, 0x76dc2ba578c894b9 },
                { 300, 0x8d2ba0cd7fece76c, 0x290778b0c239fe30, 0x1bc6c1a14e9ce6a7 },
        };
        uint8_t buf[300 + 8];

        for (size_t off = 0; off < 8; off++) {
                for (size_t i = 0; i < 300; i++)
                        buf[off + i] = pattern_byte(i);
                for (size_t i = 0; i < ELEMENTSOF(v); i++) {
                        const uint8_t *p = buf + off;
                        uint64_t h0 = xxhash64(p, v[i].n, 0), h1 = xxhash64(p, v[i].n, 1),
                                 hg = xxhash64(p, v[i].n, 0x9E3779B97F4A7C15ULL);
                        CHECK(h0 == v[i].seed0, "offset %zu, %zu bytes, seed 0: 0x%016" PRIx64 ", expected 0x%016" PRIx64, off,
                              v[i].n, h0, v[i].seed0);
                        CHECK(h1 == v[i].seed1, "offset %zu, %zu bytes, seed 1: 0x%016" PRIx64 ", expected 0x%016" PRIx64, off,
                              v[i].n, h1, v[i].seed1);
                        CHECK(hg == v[i].seed_golden,
                              "offset %zu, %zu bytes, seed 0x9E3779B97F4A7C15: 0x%016" PRIx64 ", expected 0x%016" PRIx64, off,
                              v[i].n, hg, v[i].seed_golden);
                }
        }
}

/* Runs this test again with the CRC-32C table code forced; returns whether
 * that run passed. */
static bool portable_run_passes(void) {
        char self[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (n <= 0)
                return false;
        self[n] = 0;
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
                setenv("BMAPSCAN_CRC32C_PORTABLE", "1", 1);
                execl(self, self, (char *) NULL);
                _exit(127);
        }
        int status = 0;
        if (pid < 0 || waitpid(pid, &status, 0) != pid)
                return false;
        return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* Plain CRC-32: zlib's check value once inverted, and F2FS's use of it
 * (seeded with its magic, no inversion) against a bit-at-a-time loop. */
static void test_crc32_raw(void) {
        CHECK_U64(~crc32_raw(~0u, "123456789", 9), 0xcbf43926);
        CHECK_U64(crc32_raw(0x1234, "", 0), 0x1234);
        uint8_t buf[300];
        for (size_t i = 0; i < sizeof(buf); i++)
                buf[i] = pattern_byte(i);
        uint32_t ref = 0xF2F52010u;
        for (size_t i = 0; i < sizeof(buf); i++) {
                ref ^= buf[i];
                for (int k = 0; k < 8; k++)
                        ref = (ref >> 1) ^ (0xEDB88320u & -(ref & 1));
        }
        CHECK_U64(crc32_raw(0xF2F52010u, buf, sizeof(buf)), ref);
        CHECK_U64(crc32_raw(crc32_raw(0xF2F52010u, buf, 77), buf + 77, sizeof(buf) - 77), ref);
}

int main(void) {
        bool portable = getenv("BMAPSCAN_CRC32C_PORTABLE") != NULL;

        srand(1234);
        test_crc32c_published_vectors();
        test_crc32c_every_length_and_alignment();
        test_crc32c_carried_over_pieces();
        test_crc32c_pattern_vectors();
        test_crc32_raw();
        test_xxhash64_published_vectors();
        test_xxhash64_pattern_vectors();
        if (!portable)
                CHECK(portable_run_passes(),
                      "the run with BMAPSCAN_CRC32C_PORTABLE=1 (the table CRC-32C) failed; its output is above");
        return check_exit(portable ? "test-checksum (BMAPSCAN_CRC32C_PORTABLE=1)" : "test-checksum");
}
