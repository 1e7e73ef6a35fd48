/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Where a file lives (a path or a URL) and how a location is shown: pure
 * string work, no I/O, so that every module that names a file in a message
 * can use it without pulling in the network. */
#include "location.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool location_is_url(const char *s) {
        return strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0 || strncmp(s, "ftp://", 6) == 0 ||
               strncmp(s, "sftp://", 7) == 0;
}

size_t location_path_end(const char *location, size_t *ret_path_start) {
        size_t path = 0;

        if (!location_is_url(location)) {
                if (ret_path_start)
                        *ret_path_start = 0;
                return strlen(location);
        }
        const char *authority = strstr(location, "://") + 3;
        path = (size_t) (authority - location) + strcspn(authority, "/?#");
        if (ret_path_start)
                *ret_path_start = path;
        return path + strcspn(location + path, "?#");
}

char *location_add_suffix(const char *location, const char *suffix) {
        size_t end = location_path_end(location, NULL);
        char *ret;

        if (asprintf(&ret, "%.*s%s%s", (int) end, location, suffix, location + end) < 0)
                return NULL;
        return ret;
}

static void append(char *buf, size_t size, size_t *used, const char *s, size_t n) {
        size_t k = size - 1 - *used < n ? size - 1 - *used : n;
        memcpy(buf + *used, s, k);
        *used += k;
}

void redact_passwords(const char *s, char *buf, size_t size) {
        size_t used = 0;

        if (size == 0)
                return;
        while (*s) {
                const char *sep = strstr(s, "://");
                size_t keep = sep ? (size_t) (sep + 3 - s) : strlen(s);
                append(buf, size, &used, s, keep);
                s += keep;
                if (!sep)
                        break;
                /* The authority ends where the path, query or fragment
                 * starts. A password may hold quotes, spaces, parentheses:
                 * in a message with no path after the host, this reaches
                 * into the text that follows, and hides too much rather
                 * than too little. */
                size_t auth = strcspn(s, "/?#");
                const char *at = memrchr(s, '@', auth), *colon = at ? memchr(s, ':', (size_t) (at - s)) : NULL;
                if (colon) {
                        append(buf, size, &used, s, (size_t) (colon + 1 - s));
                        append(buf, size, &used, "***", 3);
                        s = at;
                }
        }
        buf[used] = 0;
}

char *redact_passwords_dup(const char *s) {
        /* "***" is at most three bytes longer than the password it hides,
         * once per "://". */
        size_t n = strlen(s) + 1, extra = 0;
        for (const char *p = strstr(s, "://"); p; p = strstr(p + 3, "://"))
                extra += 3;
        char *buf = malloc(n + extra);
        if (buf)
                redact_passwords(s, buf, n + extra);
        return buf;
}
