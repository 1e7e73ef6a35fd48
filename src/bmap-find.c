/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdio.h>
#include <string.h>

#include "bmap.h"
#include "fetch.h"
#include "location.h"

int bmap_find(const char *image, HttpContext *http, char **ret_path, char *tried, size_t tried_len, Diag *d) {
        size_t path, end = location_path_end(image, &path), name = end, used = 0, query;

        if (tried_len)
                tried[0] = 0;
        /* [name, end) is the last path segment; what follows end (a URL's
         * query and fragment) stays after ".bmap". */
        while (name > path && image[name - 1] != '/')
                name--;
        if (location_is_url(image) && name == end) {
                snprintf(tried, tried_len, "nothing: the URL names no file");
                return -ENOENT;
        }
        query = end;

        for (;;) {
                _cleanup_free_ char *candidate = NULL;

                if (asprintf(&candidate, "%.*s.bmap%s", (int) end, image, image + query) < 0)
                        return -ENOMEM;
                int r = fetch_exists(candidate, http, d);
                if (r < 0)
                        return r;
                if (r > 0) {
                        *ret_path = TAKE_PTR(candidate);
                        return 0;
                }
                if (used + 1 < tried_len) {
                        _cleanup_free_ char *shown = redact_passwords_dup(candidate);
                        int k = snprintf(tried + used, tried_len - used, "%s%s", used ? ", " : "",
                                         shown ? shown : "?");
                        used += k > 0 ? (size_t) k : 0;
                        if (used >= tried_len)
                                used = tried_len - 1;
                }
                /* Strip one extension, never the whole name (".img"). */
                size_t dot = end;
                while (dot > name && image[dot - 1] != '.')
                        dot--;
                if (dot <= name + 1)
                        return -ENOENT;
                end = dot - 1;
        }
}

int bmap_range_list(const Bmap *b, Extents *ret) {
        Extent *v = NULL;

        if (b->n_ranges) {
                v = malloc(b->n_ranges * sizeof(Extent));
                if (!v)
                        return -ENOMEM;
                for (size_t i = 0; i < b->n_ranges; i++)
                        v[i] = b->ranges[i].blocks;
        }
        extents_done(ret);
        *ret = (Extents) { v, b->n_ranges, b->n_ranges };
        return 0;
}
