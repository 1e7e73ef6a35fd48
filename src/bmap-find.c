/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdio.h>
#include <string.h>

#include "bmap.h"
#include "fetch.h"

int bmap_find(const char *image, char **ret_path, char *tried, size_t tried_len) {
        _cleanup_free_ char *base = strdup(image);
        size_t used = 0;

        if (!base)
                return -ENOMEM;
        if (tried_len)
                tried[0] = 0;
        for (;;) {
                _cleanup_free_ char *candidate = NULL;
                Diag d;

                if (asprintf(&candidate, "%s.bmap", base) < 0)
                        return -ENOMEM;
                int r = fetch_exists(candidate, &d);
                if (r < 0)
                        return r;
                if (r > 0) {
                        *ret_path = TAKE_PTR(candidate);
                        return 0;
                }
                if (used < tried_len) {
                        int k = snprintf(tried + used, tried_len - used, "%s%s", used ? ", " : "", candidate);
                        used += k > 0 ? (size_t) k : 0;
                }
                /* Strip one extension, but never into a directory name. */
                char *slash = strrchr(base, '/'), *dot = strrchr(base, '.');
                if (!dot || (slash && dot < slash) || dot == base || (slash && dot == slash + 1))
                        return -ENOENT;
                *dot = 0;
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
