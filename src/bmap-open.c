/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "bmap-open.h"

void bmap_open_info_done(BmapOpenInfo *i) {
        if (!i)
                return;
        sig_result_done(&i->sig);
        *i = (BmapOpenInfo) {};
}

/* What a bmap's bytes give once they are read, wherever they came from:
 * inside_archive says whether the detached signature is *inside, or looked
 * for beside location. */
static int open_data(const char *location, const char *data, size_t len, bool inside_archive,
                     const SigDetached *inside, const SigOptions *sig, HttpContext *http,
                     bool allow_bad_file_checksum, Bmap *ret, BmapOpenInfo *ret_info, Diag *d) {
        _cleanup_free_ char *text = NULL;
        _cleanup_(sig_result_done) SigResult sig_info = {};
        _cleanup_(bmap_done) Bmap b = {};
        size_t text_len;
        int r;

        /* The parser sees only what the signature covers: for a clearsigned
         * bmap, the text GnuPG verified, never the bytes around it. */
        if (inside_archive)
                r = bmap_sig_check_inside(location, data, len, inside, sig, http, &text, &text_len, &sig_info, d);
        else
                r = bmap_sig_check(location, data, len, sig, http, &text, &text_len, &sig_info, d);
        if (r < 0)
                return r;
        r = bmap_parse(text, text_len, location, allow_bad_file_checksum, &b, d);
        if (r < 0)
                return r;

        if (ret_info) {
                *ret_info = (BmapOpenInfo) {
                        .sig = sig_info,
                        .file_checksum_missing = b.file_checksum == FILE_CHECKSUM_ABSENT &&
                                                 b.version_major * 100 + b.version_minor >= 103,
                };
                sig_info = (SigResult) {};
        }
        *ret = b;
        b = (Bmap) {};
        return 0;
}

int bmap_open(const char *location, const SigOptions *sig, HttpContext *http, bool allow_bad_file_checksum,
              Bmap *ret, BmapOpenInfo *ret_info, Diag *d) {
        _cleanup_free_ char *data = NULL;
        size_t len;
        int r;

        r = bmap_fetch(location, http, &data, &len, d);
        if (r < 0)
                return r;
        return open_data(location, data, len, false, NULL, sig, http, allow_bad_file_checksum, ret, ret_info, d);
}

int bmap_open_bytes(const BmapBytes *in, const SigOptions *sig, HttpContext *http, bool allow_bad_file_checksum,
                    Bmap *ret, BmapOpenInfo *ret_info, Diag *d) {
        return open_data(in->name, in->data, in->len, true, in->sig, sig, http, allow_bad_file_checksum, ret,
                         ret_info, d);
}
