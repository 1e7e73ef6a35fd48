/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "fetch.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "input-http.h"
#include "location.h"

static int fetch_url(const char *url, HttpContext *http, size_t max, char **ret, size_t *ret_len, Diag *d) {
        _cleanup_(input_close) Input in = {};
        _cleanup_free_ char *data = NULL;
        size_t len = 0, cap;
        int r;

        r = input_http_open(url, http, &in, d);
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

int fetch_whole(const char *location, HttpContext *http, size_t max, char **ret, size_t *ret_len, Diag *d) {
        int r;

        if (location_is_url(location))
                return fetch_url(location, http, max, ret, ret_len, d);
        r = read_file_full(location, max, ret, ret_len);
        if (r == -ENOENT)
                return r;
        if (r == -EFBIG)
                return diag_set(d, r, "%s: larger than %zu bytes", location, max);
        if (r < 0)
                return diag_set(d, r, "cannot read '%s': %s", location, strerror(-r));
        return 0;
}

int fetch_exists(const char *location, HttpContext *http, Diag *d) {
        struct stat st;

        if (location_is_url(location))
                return http_exists(location, http, d);
        return stat(location, &st) == 0 && S_ISREG(st.st_mode);
}
