/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "input-http.h"
#include "util.h"

/* OpenPGP signatures of bmaps, checked with GnuPG through gpgme, the way
 * bmaptool checks them: a clearsigned bmap, or a detached signature beside
 * it (BMAP.asc, then BMAP.sig) or named by the user. */

typedef enum SigKind {
        SIG_KIND_NONE,        /* no signature was found (or none was looked for) */
        SIG_KIND_CLEARSIGNED, /* the bmap is a clearsigned message */
        SIG_KIND_DETACHED,    /* a separate signature file */
} SigKind;

typedef struct SigOptions {
        const char *sig_location; /* --bmap-sig; NULL: look for BMAP.asc, then BMAP.sig */
        const char *keyring;      /* only the keys in this file count; NULL: GnuPG's default keyring */
        const char *fingerprint;  /* the signing key (primary or subkey) must have this fingerprint */
        bool skip;                /* --no-sig-verify: take a clearsigned bmap's text unverified */
        /* For 'info': only a clearsigned bmap is checked, and a signature
         * that does not verify is described in SigResult.problem instead of
         * refused (the text is then taken out unverified). */
        bool report_only;
} SigOptions;

#define SIG_FPR_MAX 64

typedef struct SigResult {
        SigKind kind;
        bool verified;                      /* every signature checked and good */
        char *sig_location;                 /* the detached signature that was used */
        char fingerprint[SIG_FPR_MAX + 1];  /* the signer's primary key */
        char signer[256];                   /* its first user id */
        char problem[768];                  /* report_only: why it does not verify */
} SigResult;

void sig_result_done(SigResult *r);

/* Checks the combination of options before anything is read: -EINVAL with a
 * message for a usage error. */
int bmap_sig_options_check(const SigOptions *o, Diag *d);

/* Checks the signature of the bmap at bmap_location, whose bytes are data
 * (a detached signature beside a URL is fetched as http says), and returns
 * (malloc'd, NUL-terminated) the text to parse: for a clearsigned bmap the
 * text GnuPG verified, as gpgme gives it out; otherwise the bytes as they
 * are. A signature that does not verify, a key that is missing, expired
 * or revoked, another key than --fingerprint names, or no signature when
 * --fingerprint or --keyring ask for one: a negative errno and a message
 * naming the bmap and the signature, saying what to do. */
int bmap_sig_check(const char *bmap_location, const char *data, size_t len, const SigOptions *o, HttpContext *http,
                   char **ret_text, size_t *ret_len, SigResult *ret_info, Diag *d);

/* A detached signature already in memory: the archive member beside a
 * bmap member (name as shown in messages). */
typedef struct SigDetached {
        const char *name;
        const char *data;
        size_t len;
} SigDetached;

/* As bmap_sig_check, for a bmap that is no file of its own (read out of
 * an archive, named bmap_name in messages): its detached signature is not
 * looked for beside that name but is *inside (NULL when the archive holds
 * none with it); --bmap-sig still names one of the user's choice. */
int bmap_sig_check_inside(const char *bmap_name, const char *data, size_t len, const SigDetached *inside,
                          const SigOptions *o, HttpContext *http, char **ret_text, size_t *ret_len,
                          SigResult *ret_info, Diag *d);

/* Takes the text out of a clearsigned message without verifying anything,
 * byte for byte as GnuPG 2.2 gives it out: the armor headers dropped,
 * dash-escaping undone, trailing blanks cut from each line, each line ended
 * as it was (CR LF or LF). -EBADMSG when it is not a complete clearsigned
 * message. */
int bmap_clearsigned_text(const char *data, size_t len, char **ret_text, size_t *ret_len);
