/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "check.h"
#include "util.h"
#include "json.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

static void check_human(uint64_t size, const char *want) {
        char buf[32];
        format_human_size(size, buf, sizeof(buf));
        CHECK(strcmp(buf, want) == 0, "human size of %" PRIu64 " is '%s', bmaptool writes '%s'", size, buf, want);
}

static void check_display(const char *in, const char *want) {
        char *got = display_escape(in);
        CHECK(got && strcmp(got, want) == 0, "display_escape gave '%s', expected '%s'", got ? got : "(null)", want);
        free(got);
}

static void check_json(const char *in, const char *want) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        json_print_string(f, in);
        fclose(f);
        CHECK(buf && strcmp(buf, want) == 0, "json_print_string gave %s, expected %s", buf ? buf : "(null)", want);
        free(buf);
}

/* The three ways write_file_atomic writes: a new path and a regular file
 * are replaced through a rename, a device node or FIFO is written into and
 * stays what it is, a link keeps pointing where it pointed. */
static void check_write_file(void) {
        char dir[] = "/tmp/test-util.XXXXXX", path[300], link[300], back[64];
        struct stat st;
        Diag d = {};

        CHECK(mkdtemp(dir) != NULL, "mkdtemp");
        snprintf(path, sizeof(path), "%s/new", dir);
        CHECK(write_file_atomic(path, "one", 3, &d) == 0, "new path: %s", d.msg);
        CHECK(write_file_atomic(path, "two", 3, &d) == 0, "over a file: %s", d.msg);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        CHECK(fd >= 0 && read(fd, back, sizeof(back)) == 3 && memcmp(back, "two", 3) == 0, "the file holds 'two'");
        if (fd >= 0)
                close(fd);

        snprintf(link, sizeof(link), "%s/link", dir);
        CHECK(symlink("new", link) == 0, "symlink");
        CHECK(write_file_atomic(link, "three", 5, &d) == 0, "through a link: %s", d.msg);
        CHECK(lstat(link, &st) == 0 && S_ISLNK(st.st_mode), "the link is still a link");
        CHECK(stat(path, &st) == 0 && st.st_size == 5, "the file it points to was replaced");

        /* A private /dev/null (char 1,3), where mknod is allowed. */
        snprintf(path, sizeof(path), "%s/null", dir);
        if (mknod(path, S_IFCHR | 0666, makedev(1, 3)) == 0) {
                CHECK(write_file_atomic(path, "data", 4, &d) == 0, "into a character device: %s", d.msg);
                CHECK(stat(path, &st) == 0 && S_ISCHR(st.st_mode), "the device node is still a device node");
                unlink(path);
        } else
                printf("skip: no mknod here (%s)\n", strerror(errno));

        /* A block device node (loop 7,0: refused before anything opens it). */
        snprintf(path, sizeof(path), "%s/blk", dir);
        if (mknod(path, S_IFBLK | 0600, makedev(7, 0)) == 0) {
                CHECK(write_file_atomic(path, "data", 4, &d) == -EINVAL && strstr(d.msg, "block device"),
                      "onto a block device: refused (%s)", d.msg);
                CHECK(stat(path, &st) == 0 && S_ISBLK(st.st_mode), "the block device node is still one");
                unlink(path);
        }

        snprintf(path, sizeof(path), "%s/fifo", dir);
        CHECK(mkfifo(path, 0600) == 0, "mkfifo");
        /* A reader (O_RDWR opens a FIFO without waiting) holds it open. */
        int rd = open(path, O_RDWR | O_CLOEXEC);
        CHECK(rd >= 0, "open the FIFO");
        CHECK(write_file_atomic(path, "fifo", 4, &d) == 0, "into a FIFO: %s", d.msg);
        CHECK(rd >= 0 && read(rd, back, sizeof(back)) == 4 && memcmp(back, "fifo", 4) == 0, "the reader got it");
        CHECK(stat(path, &st) == 0 && S_ISFIFO(st.st_mode), "the FIFO is still a FIFO");
        if (rd >= 0)
                close(rd);

        char cmd[400];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        CHECK(system(cmd) == 0, "cleaning up %s", dir);
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
        /* UTF-8: what is valid, and what is not (overlong, surrogate, past
         * U+10FFFF, stray continuation, cut short). */
        CHECK(utf8_sequence_length("a") == 1, "ASCII");
        CHECK(utf8_sequence_length("\xc3\xa9") == 2, "e acute");
        CHECK(utf8_sequence_length("\xe2\x82\xac") == 3, "euro sign");
        CHECK(utf8_sequence_length("\xf0\x9f\x98\x80") == 4, "emoji");
        CHECK(utf8_sequence_length("\xc0\xaf") == 0, "overlong slash");
        CHECK(utf8_sequence_length("\xe0\x80\xaf") == 0, "overlong in three bytes");
        CHECK(utf8_sequence_length("\xed\xa0\x80") == 0, "surrogate");
        CHECK(utf8_sequence_length("\xf4\x90\x80\x80") == 0, "past U+10FFFF");
        CHECK(utf8_sequence_length("\x80") == 0, "stray continuation");
        CHECK(utf8_sequence_length("\xe2\x82") == 0, "cut short by the end");
        CHECK(utf8_sequence_length("\xff") == 0, "0xff");

        check_display("plain.img", "plain.img");
        check_display("a\nb\tc\x7f", "a?b?c?");
        check_display("caf\xc3\xa9 \xe2\x82\xac", "caf\xc3\xa9 \xe2\x82\xac");
        check_display("bad\xff\xfe.img", "bad??.img");
        check_display("csi\xc2\x9b" "2J", "csi?2J");
        check_display("cut\xe2\x82", "cut??");

        check_json("a\"b\\c", "\"a\\\"b\\\\c\"");
        check_json("line\nnext\x01", "\"line\\nnext\\u0001\"");
        check_json("caf\xc3\xa9", "\"caf\xc3\xa9\"");
        check_json("bad\xffname", "\"bad\\ufffdname\"");
        check_json("\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"");
        check_json("csi\xc2\x9b", "\"csi\\u009b\"");

        check_write_file();

        return check_exit("test-util");
}
