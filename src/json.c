/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "json.h"

#include "util.h"

/* Every string bmapscan prints as JSON (file names, table and filesystem
 * names, notes, errors) goes through here, so that the output is always
 * valid UTF-8 JSON whatever bytes a file name holds: control characters are
 * escaped (\n, \t, else \u00XX; C1 controls too, which JSON would allow
 * raw but a terminal would obey), and each byte that does not belong to a
 * valid UTF-8 sequence becomes U+FFFD, the replacement character, written
 * as the escape \ufffd. A name that is not UTF-8 therefore cannot be
 * recovered from the JSON byte for byte; the JSON stays parseable and
 * shows where the bad bytes were. */
void json_print_string(FILE *f, const char *s) {
        fputc('"', f);
        for (size_t i = 0; s && s[i];) {
                unsigned char c = (unsigned char) s[i];
                size_t n = utf8_sequence_length(s + i);

                if (n == 0) {
                        fputs("\\ufffd", f);
                        i++;
                        continue;
                }
                if (n == 2 && c == 0xc2 && (unsigned char) s[i + 1] < 0xa0) {
                        /* Valid JSON raw, but a C1 control to a terminal. */
                        fprintf(f, "\\u%04x", (unsigned char) s[i + 1]);
                        i += 2;
                        continue;
                }
                if (n > 1) {
                        fwrite(s + i, 1, n, f);
                        i += n;
                        continue;
                }
                switch (c) {
                case '"':
                        fputs("\\\"", f);
                        break;
                case '\\':
                        fputs("\\\\", f);
                        break;
                case '\n':
                        fputs("\\n", f);
                        break;
                case '\t':
                        fputs("\\t", f);
                        break;
                default:
                        if (c < 0x20)
                                fprintf(f, "\\u%04x", c);
                        else
                                fputc(c, f);
                }
                i++;
        }
        fputc('"', f);
}
