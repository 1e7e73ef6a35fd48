/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Non-cryptographic checksums that on-disk formats use to guard their own
 * metadata (btrfs tree blocks and superblocks; any other parser that needs
 * them). Pure functions of their input: thread-safe, no allocation, no
 * errors. The cryptographic digests are in hash.h. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), with the usual
 * inversion before and after, so that crc32c(0, "123456789", 9) is
 * 0xe3069283 and a checksum can be carried over pieces:
 * crc32c(crc32c(0, a, la), b, lb) == crc32c(0, a ‖ b, la + lb). Uses SSE4.2's
 * crc32 instruction where the CPU has it, unless the environment variable
 * BMAPSCAN_CRC32C_PORTABLE is set when first called (then, and on other
 * CPUs, a slicing-by-8 table). */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

/* CRC-32 (the zlib/IEEE polynomial, reflected 0xEDB88320) with no
 * inversion: the caller seeds it and uses the result as it is, so
 * ~crc32_raw(~0u, "123456789", 9) is zlib's 0xcbf43926. F2FS seeds it with
 * its magic and stores the raw remainder. A byte table; carried over pieces
 * like crc32c. */
uint32_t crc32_raw(uint32_t crc, const void *buf, size_t len);

/* XXH64 of buf with the given seed, as the xxHash specification defines it
 * (xxhash64("", 0, 0) is 0xef46db3751d8e999). Formats store it in their own
 * byte order; btrfs stores it little-endian. */
uint64_t xxhash64(const void *buf, size_t len, uint64_t seed);
