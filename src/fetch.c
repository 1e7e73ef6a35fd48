/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "fetch.h"

#include <string.h>
#include <sys/stat.h>

bool location_is_url(const char *s) {
        return strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0;
}

static int refuse_url(const char *location, Diag *d) {
        return diag_set(d, -EPROTONOSUPPORT, "%s: fetching over HTTP(S) is not supported yet: download it first",
                        location);
}

int fetch_whole(const char *location, size_t max, char **ret, size_t *ret_len, Diag *d) {
        int r;

        if (location_is_url(location))
                return refuse_url(location, d);
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
                return refuse_url(location, d);
        return stat(location, &st) == 0 && S_ISREG(st.st_mode);
}
