/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "fetch.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "input-http.h"

bool location_is_url(const char *s) {
        return strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0;
}

static int fetch_url(const char *url, size_t max, char **ret, size_t *ret_len, Diag *d) {
        _cleanup_(input_close) Input in = {};
        _cleanup_free_ char *data = NULL;
        size_t len = 0, cap;
        int r;

        r = input_http_open(url, &in, d);
        if (r < 0)
                return r;
        if (in.size > max)
                return diag_set(d, -EFBIG, "%s: larger than %zu bytes", in.name, max);
        /* Room for one byte more than max, to tell a file of max bytes from
         * a larger one (whose length the server may not have said). */
        cap = in.size && in.size < max ? (size_t) in.size + 1 : max < (64 << 10) ? max + 1 : 64 << 10;
        data = malloc(cap + 1);
        if (!data)
                return diag_set(d, -ENOMEM, "out of memory");
        for (;;) {
                if (len == cap) {
                        size_t grow = cap > max / 2 ? max + 1 : cap * 2;
                        char *p = realloc(data, grow + 1);
                        if (!p)
                                return diag_set(d, -ENOMEM, "out of memory");
                        data = p;
                        cap = grow;
                }
                ssize_t k = in.read(in.ctx, data + len, cap - len);
                if (k < 0)
                        return diag_set(d, (int) k, "%s", in.error(in.ctx));
                if (k == 0)
                        break;
                len += (size_t) k;
                if (len > max)
                        return diag_set(d, -EFBIG, "%s: larger than %zu bytes", in.name, max);
        }
        data[len] = 0;
        *ret = TAKE_PTR(data);
        *ret_len = len;
        return 0;
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

int fetch_whole(const char *location, size_t max, char **ret, size_t *ret_len, Diag *d) {
        int r;

        if (location_is_url(location))
                return fetch_url(location, max, ret, ret_len, d);
        r = read_file_full(location, max, ret, ret_len);
        if (r == -ENOENT)
                return r;
        if (r == -EFBIG)
                return diag_set(d, r, "%s: larger than %zu bytes", location, max);
        if (r < 0)
                return diag_set(d, r, "cannot read '%s': %s", location, strerror(-r));
        return 0;
}

int fetch_exists(const char *location, Diag *d) {
        struct stat st;

        if (location_is_url(location))
                return http_exists(location, d);
        return stat(location, &st) == 0 && S_ISREG(st.st_mode);
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
