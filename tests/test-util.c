/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "check.h"
#include "util.h"

static void check_human(uint64_t size, const char *want) {
        char buf[32];
        format_human_size(size, buf, sizeof(buf));
        CHECK(strcmp(buf, want) == 0, "human size of %" PRIu64 " is '%s', bmaptool writes '%s'", size, buf, want);
}

int main(void) {
        uint64_t v;

        /* The values bmaptool's human_size gives (computed with its Python code). */
        check_human(0, "0 bytes");
        check_human(1, "1 byte");
        check_human(2, "2 bytes");
        check_human(511, "511 bytes");
        check_human(512, "0.5 KiB");
        check_human(821752, "802.5 KiB");
        check_human(1048575, "1024.0 KiB"); /* compared unrounded, printed rounded */
        check_human(1048576, "1.0 MiB");
        check_human(UINT64_C(1) << 40, "1.0 TiB");
        check_human(UINT64_C(1) << 50, "1024.0 EiB"); /* bmaptool skips PiB */
        check_human(UINT64_C(1) << 60, "1048576.0 EiB"); /* the jump from TiB to EiB */

        CHECK(parse_u64(" 42 ", 4, &v) == 0 && v == 42, "whitespace around a number");
        CHECK(parse_u64("\n\t7\r\n", 5, &v) == 0 && v == 7, "newlines and tabs");
        CHECK(parse_u64("18446744073709551615", 20, &v) == 0 && v == UINT64_MAX, "UINT64_MAX");
        CHECK(parse_u64("18446744073709551616", 20, &v) == -ERANGE, "overflow");
        CHECK(parse_u64("12a", 3, &v) == -EINVAL, "trailing garbage");
        CHECK(parse_u64("-1", 2, &v) == -EINVAL, "negative");
        CHECK(parse_u64("1 2", 3, &v) == -EINVAL, "inner space");
        CHECK(parse_u64("  ", 2, &v) == -EINVAL, "blank");
        CHECK(parse_u64("+5", 2, &v) == -EINVAL, "sign");

        CHECK(parse_size("4096", &v) == 0 && v == 4096, "plain size");
        CHECK(parse_size("4K", &v) == 0 && v == 4096, "K");
        CHECK(parse_size("2MiB", &v) == 0 && v == 2 << 20, "MiB");
        CHECK(parse_size("1T", &v) == 0 && v == UINT64_C(1) << 40, "T");
        CHECK(parse_size("4X", &v) == -EINVAL, "unknown suffix");
        CHECK(parse_size("K", &v) == -EINVAL, "no digits");
        CHECK(parse_size("99999999999T", &v) == -ERANGE, "overflow with suffix");

        uint8_t bytes[4] = { 0x00, 0xab, 0xCD, 0xff }, back[4];
        char hex[9];
        hex_encode(bytes, 4, hex);
        CHECK(strcmp(hex, "00abcdff") == 0, "hex_encode gave %s", hex);
        CHECK(hex_decode("00ABcdFF", 4, back) == 0 && memcmp(back, bytes, 4) == 0, "hex_decode either case");
        CHECK(hex_decode("00ABcdFG", 4, back) == -EINVAL, "hex_decode refuses G");

        uint8_t le[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
        CHECK(get_le16(le) == 0x0201, "le16");
        CHECK(get_le32(le) == 0x04030201, "le32");
        CHECK(get_le64(le) == 0x0807060504030201ull, "le64");
        CHECK(get_be16(le) == 0x0102, "be16");
        CHECK(get_be32(le) == 0x01020304, "be32");
        CHECK(get_be64(le) == 0x0102030405060708ull, "be64");
        CHECK(div_round_up(0, 4096) == 0 && div_round_up(1, 4096) == 1 && div_round_up(4096, 4096) == 1 &&
                      div_round_up(UINT64_MAX, 2) == (UINT64_MAX >> 1) + 1,
              "div_round_up");
        return check_exit("test-util");
}
