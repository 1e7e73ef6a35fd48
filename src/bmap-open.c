/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "bmap-open.h"

void bmap_open_info_done(BmapOpenInfo *i) {
        if (!i)
                return;
        sig_result_done(&i->sig);
        *i = (BmapOpenInfo) {};
}

int bmap_open(const char *location, const SigOptions *sig, HttpContext *http, bool allow_bad_file_checksum,
              Bmap *ret, BmapOpenInfo *ret_info, Diag *d) {
        _cleanup_free_ char *data = NULL, *text = NULL;
        _cleanup_(sig_result_done) SigResult sig_info = {};
        _cleanup_(bmap_done) Bmap b = {};
        size_t len, text_len;
        int r;

        r = bmap_fetch(location, http, &data, &len, d);
        if (r < 0)
                return r;
        /* The parser sees only what the signature covers: for a clearsigned
         * bmap, the text GnuPG verified, never the bytes around it. */
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
