/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "bmap-sig.h"

#include <fcntl.h>
#include <ftw.h>
#include <gpgme.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "bmap.h"
#include "fetch.h"
#include "location.h"

/* Signatures are a few hundred bytes; a file with many is still small. */
#define SIG_MAX_SIZE (16u << 20)
/* Distribution keyrings (debian-keyring.gpg) are tens of MiB. */
#define KEYRING_MAX_SIZE (256u << 20)

void sig_result_done(SigResult *r) {
        if (!r)
                return;
        free(r->sig_location);
        *r = (SigResult) {};
}

/* ------------------------------------------------------------------------ */
/* Clearsigned text, unverified */

/* The line at *pos, without its LF; *pos moves past the LF. false at the end
 * of the data. */
static bool next_line(const char *data, size_t len, size_t *pos, const char **ret, size_t *ret_len) {
        if (*pos >= len)
                return false;
        const char *start = data + *pos, *nl = memchr(start, '\n', len - *pos);
        size_t n = nl ? (size_t) (nl - start) : len - *pos;
        *pos += n + (nl != NULL);
        *ret = start;
        *ret_len = n;
        return true;
}

static bool is_blank(char c) {
        return c == ' ' || c == '\t' || c == '\r';
}

int bmap_clearsigned_text(const char *data, size_t len, char **ret_text, size_t *ret_len) {
        static const char sig_marker[] = "-----BEGIN PGP SIGNATURE-----";
        _cleanup_free_ char *out = NULL;
        size_t pos = 0, n = 0, l;
        const char *line;

        if (!bmap_text_is_clearsigned(data, len))
                return -EBADMSG;
        const char *begin = memmem(data, len, "-----BEGIN PGP SIGNED MESSAGE-----", 34);
        pos = (size_t) (begin - data);
        if (!next_line(data, len, &pos, &line, &l))
                return -EBADMSG;
        /* Armor headers ("Hash: SHA256") up to the first empty line. */
        for (;;) {
                if (!next_line(data, len, &pos, &line, &l))
                        return -EBADMSG;
                while (l > 0 && is_blank(line[l - 1]))
                        l--;
                if (l == 0)
                        break;
        }
        /* The output is never longer than the input: escapes and blanks are
         * dropped, and a line keeps the CR it had. */
        out = malloc(len + 1);
        if (!out)
                return -ENOMEM;
        for (;;) {
                if (!next_line(data, len, &pos, &line, &l))
                        return -EBADMSG; /* no signature after the text */
                if (l >= sizeof(sig_marker) - 1 && memcmp(line, sig_marker, sizeof(sig_marker) - 1) == 0)
                        break;
                bool crlf = l > 0 && line[l - 1] == '\r';
                if (l >= 2 && line[0] == '-' && line[1] == ' ') {
                        line += 2;
                        l -= 2;
                }
                /* OpenPGP signs a clearsigned line without its trailing
                 * blanks, and GnuPG gives the line out that way. */
                while (l > 0 && is_blank(line[l - 1]))
                        l--;
                memcpy(out + n, line, l);
                n += l;
                if (crlf)
                        out[n++] = '\r';
                out[n++] = '\n';
        }
        out[n] = 0;
        *ret_text = TAKE_PTR(out);
        *ret_len = n;
        return 0;
}

/* ------------------------------------------------------------------------ */
/* Options */

/* The fingerprint with spaces dropped and in upper case; -EINVAL unless it
 * is a whole v4 (40 hex digits) or v5 (64) fingerprint: a short key id is
 * too easy to forge to pin a signer with. */
static int normalize_fingerprint(const char *s, char ret[static SIG_FPR_MAX + 1]) {
        size_t n = 0;

        if (strncasecmp(s, "0x", 2) == 0)
                s += 2;
        for (; *s; s++) {
                if (*s == ' ' || *s == '\t')
                        continue;
                if (!strchr("0123456789abcdefABCDEF", *s) || n >= SIG_FPR_MAX)
                        return -EINVAL;
                ret[n++] = (char) (*s >= 'a' && *s <= 'f' ? *s - 'a' + 'A' : *s);
        }
        ret[n] = 0;
        return n == 40 || n == 64 ? 0 : -EINVAL;
}

int bmap_sig_options_check(const SigOptions *o, Diag *d) {
        char fpr[SIG_FPR_MAX + 1];

        if (o->skip && (o->sig_location || o->keyring || o->fingerprint))
                return diag_set(d, -EINVAL, "--no-sig-verify excludes --bmap-sig, --keyring and --fingerprint");
        /* The keyring is what every signature is checked against: one that
         * came over the network could be anyone's. */
        if (o->keyring && location_is_url(o->keyring))
                return diag_set(d, -EINVAL,
                                "--keyring '%s': the keys to trust must be a local file, not a URL: download "
                                "them once, check them, and name the file",
                                o->keyring);
        if (o->fingerprint && normalize_fingerprint(o->fingerprint, fpr) < 0)
                return diag_set(d, -EINVAL,
                                "--fingerprint '%s' is not a whole key fingerprint (40 or 64 hex digits, spaces "
                                "allowed): see 'gpg --fingerprint'",
                                o->fingerprint);
        return 0;
}

/* ------------------------------------------------------------------------ */
/* gpgme */

static void gpgme_releasep(gpgme_ctx_t *ctx) {
        if (*ctx)
                gpgme_release(*ctx);
}

static void gpgme_data_releasep(gpgme_data_t *dh) {
        if (*dh)
                gpgme_data_release(*dh);
}

static void gpgme_key_unrefp(gpgme_key_t *key) {
        if (*key)
                gpgme_key_unref(*key);
}

static int sig_context_new(const char *bmap, gpgme_ctx_t *ret, Diag *d) {
        static bool initialized;
        gpgme_ctx_t ctx;
        gpgme_error_t e;

        /* gpgme wants its version checked once before anything else; that
         * also sets up its I/O (and ignores SIGPIPE, which a gpg that dies
         * early would otherwise send us). */
        if (!initialized) {
                gpgme_check_version(NULL);
                initialized = true;
        }
        e = gpgme_engine_check_version(GPGME_PROTOCOL_OpenPGP);
        if (e)
                return diag_set(d, -ENOPKG,
                                "%s: cannot check its signature: GnuPG is not usable (%s): install gnupg, or use "
                                "--no-sig-verify to skip the check",
                                bmap, gpgme_strerror(e));
        e = gpgme_new(&ctx);
        if (e)
                return diag_set(d, -ENOMEM, "%s: cannot check its signature: %s", bmap, gpgme_strerror(e));
        gpgme_set_protocol(ctx, GPGME_PROTOCOL_OpenPGP);
        /* Never fetch a missing key from the network while verifying, even
         * if the user's gpg.conf says auto-key-retrieve. */
        gpgme_set_offline(ctx, 1);
        *ret = ctx;
        return 0;
}

/* ------------------------------------------------------------------------ */
/* --keyring: a temporary GnuPG home holding only the keyring's keys */

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw) {
        (void) remove(path);
        return 0;
}

static void temp_home_removep(char **home) {
        if (!*home)
                return;
        (void) nftw(*home, remove_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
        free(*home);
        *home = NULL;
}

static int write_new_file(const char *dir, const char *name, const void *data, size_t len) {
        char path[256];
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return -errno;
        int r = write_full(fd, data, len);
        if (r < 0)
                return r;
        return close(TAKE_FD(fd)) < 0 ? -errno : 0;
}

static bool is_keybox(const char *data, size_t len) {
        /* A keybox starts with its header blob: length, type 1, version 1,
         * flags, then the magic. */
        return len >= 12 && memcmp(data + 8, "KBXf", 4) == 0;
}

/* Points ctx at a fresh GnuPG home (*ret_home, to be removed by the caller
 * after ctx is released) that holds the keys of the keyring file and no
 * other: an exported key file (armored or binary) is imported, a keybox is
 * used as it is. */
static int use_keyring(gpgme_ctx_t ctx, const char *bmap, const char *keyring, char **ret_home, Diag *d) {
        _cleanup_free_ char *keys = NULL;
        size_t len;
        gpgme_error_t e;
        int r;

        /* No transfer options: bmap_sig_options_check refused a URL. */
        r = fetch_whole(keyring, NULL, KEYRING_MAX_SIZE, &keys, &len, d);
        if (r == -ENOENT)
                return diag_set(d, r, "cannot read keyring '%s': %s", keyring, strerror(-r));
        if (r < 0)
                return r;

        /* A short path: gpg puts its sockets in its home when there is no
         * /run/user, and a socket path has at most 107 bytes. */
        *ret_home = strdup("/tmp/bmapscan-gpg-XXXXXX");
        if (!*ret_home)
                return -ENOMEM;
        if (!mkdtemp(*ret_home)) {
                r = -errno;
                free(*ret_home);
                *ret_home = NULL;
                return diag_set(d, r, "cannot make a temporary GnuPG home for --keyring: %s", strerror(-r));
        }
        /* Nothing here needs gpg-agent or dirmngr (public keys only): make
         * sure gpg never starts one that would outlive this home. */
        static const char conf[] = "no-autostart\n";
        r = write_new_file(*ret_home, "gpg.conf", conf, sizeof(conf) - 1);
        if (r >= 0 && is_keybox(keys, len))
                r = write_new_file(*ret_home, "pubring.kbx", keys, len);
        if (r < 0)
                return diag_set(d, r, "cannot fill a temporary GnuPG home for --keyring: %s", strerror(-r));

        e = gpgme_ctx_set_engine_info(ctx, GPGME_PROTOCOL_OpenPGP, NULL, *ret_home);
        if (e)
                return diag_set(d, -EIO, "cannot use a temporary GnuPG home for --keyring: %s", gpgme_strerror(e));
        if (is_keybox(keys, len))
                return 0;

        _cleanup_(gpgme_data_releasep) gpgme_data_t dh = NULL;
        e = gpgme_data_new_from_mem(&dh, keys, len, 0);
        if (!e)
                e = gpgme_op_import(ctx, dh);
        gpgme_import_result_t res = e ? NULL : gpgme_op_import_result(ctx);
        if (e || !res || res->imported + res->unchanged == 0)
                return diag_set(d, -EBADMSG,
                                "%s: the keyring '%s' holds no OpenPGP public key%s%s: give a file of public keys "
                                "('gpg --export KEYID > FILE') or a keybox (.kbx)",
                                bmap, keyring, e ? ": " : "", e ? gpgme_strerror(e) : "");
        return 0;
}

/* ------------------------------------------------------------------------ */
/* Verification */

typedef struct Check {
        const char *bmap;
        const char *sig_name;  /* the detached signature, or NULL: clearsigned */
        const SigOptions *opts;
        char want_fpr[SIG_FPR_MAX + 1];
} Check;

static const char *keyring_name(const Check *c, char *buf, size_t n) {
        if (!c->opts->keyring)
                return "GnuPG's default keyring";
        snprintf(buf, n, "the keyring '%s'", c->opts->keyring);
        return buf;
}

/* "the signature in X" or "its clearsigned signature", for messages. */
static const char *sig_name(const Check *c, char *buf, size_t n) {
        if (!c->sig_name)
                return "its clearsigned signature";
        snprintf(buf, n, "the signature in '%s'", c->sig_name);
        return buf;
}

/* Looks at one signature of the result: 0 when it is good (and by the key
 * --fingerprint names), filling info; else a message. */
static int check_signature(gpgme_ctx_t ctx, const Check *c, gpgme_signature_t sig, SigResult *info, Diag *d) {
        _cleanup_(gpgme_key_unrefp) gpgme_key_t key = NULL;
        const char *fpr = sig->fpr ? sig->fpr : "(unknown)";
        char sbuf[1200], kbuf[1200];
        const char *what = sig_name(c, sbuf, sizeof(sbuf));

        switch (gpgme_err_code(sig->status)) {
        case GPG_ERR_NO_ERROR:
                break;
        case GPG_ERR_BAD_SIGNATURE:
                if (!c->sig_name)
                        return diag_set(d, -EBADMSG,
                                        "%s: %s is BAD: the bmap was changed after it was signed; get it again from "
                                        "where it came from",
                                        c->bmap, what);
                return diag_set(d, -EBADMSG,
                                "%s: %s is BAD: the bmap was changed after it was signed, or the signature is for "
                                "another file; get both again from where they came from",
                                c->bmap, what);
        case GPG_ERR_NO_PUBKEY:
                return diag_set(d, -ENOKEY,
                                "%s: %s was made by key %s, which is not in %s: import the signer's public key "
                                "('gpg --import KEYFILE')%s",
                                c->bmap, what, fpr, keyring_name(c, kbuf, sizeof(kbuf)),
                                c->opts->report_only ? "" : " or name a keyring holding it with --keyring");
        case GPG_ERR_KEY_EXPIRED:
                return diag_set(d, -EKEYEXPIRED,
                                "%s: %s was made by key %s, which has expired: get a bmap signed with a current key",
                                c->bmap, what, fpr);
        case GPG_ERR_CERT_REVOKED:
                return diag_set(d, -EKEYREVOKED,
                                "%s: %s was made by key %s, which has been revoked: do not trust this bmap; get one "
                                "signed with a valid key",
                                c->bmap, what, fpr);
        case GPG_ERR_SIG_EXPIRED:
                return diag_set(d, -EKEYEXPIRED, "%s: %s has expired: get a freshly signed bmap", c->bmap, what);
        default:
                return diag_set(d, -EBADMSG, "%s: %s does not verify (%s): get %s again from where %s came from",
                                c->bmap, what, gpgme_strerror(sig->status), c->sig_name ? "both" : "it",
                                c->sig_name ? "they" : "it");
        }
        /* A good status should exclude these; do not rely on it. */
        if (sig->summary & (GPGME_SIGSUM_RED | GPGME_SIGSUM_KEY_REVOKED | GPGME_SIGSUM_KEY_EXPIRED |
                            GPGME_SIGSUM_SIG_EXPIRED | GPGME_SIGSUM_KEY_MISSING) ||
            sig->wrong_key_usage || !sig->fpr)
                return diag_set(d, -EBADMSG,
                                "%s: %s was made by key %s, which is expired, revoked or not meant for signing: get "
                                "a bmap signed with a valid key",
                                c->bmap, what, fpr);

        /* The primary key and its first user id, for messages and for a
         * --fingerprint that names the primary key of a signing subkey. */
        const char *primary = sig->fpr, *uid = NULL;
        if (gpgme_get_key(ctx, sig->fpr, &key, 0) == 0 && key) {
                if (key->revoked || key->expired || key->disabled || key->invalid)
                        return diag_set(d, -EBADMSG,
                                        "%s: %s was made by key %s, which is expired, revoked or disabled: get a bmap "
                                        "signed with a valid key",
                                        c->bmap, what, fpr);
                if (key->fpr)
                        primary = key->fpr;
                if (key->uids && key->uids->uid)
                        uid = key->uids->uid;
        }
        if (c->want_fpr[0] && strcasecmp(c->want_fpr, primary) != 0 && strcasecmp(c->want_fpr, sig->fpr) != 0)
                return diag_set(d, -EPERM,
                                "%s: %s is good, but by %s (fingerprint %s), not by the key --fingerprint names "
                                "(%s): refused",
                                c->bmap, what, uid ? uid : "an unnamed key", primary, c->want_fpr);
        snprintf(info->fingerprint, sizeof(info->fingerprint), "%s", primary);
        snprintf(info->signer, sizeof(info->signer), "%s", uid ? uid : "");
        return 0;
}

/* Verifies sig (a detached signature over signed, or with signed NULL a
 * clearsigned message, whose text goes to *ret_plain). */
static int verify(const Check *c, const char *sig, size_t sig_len, const char *signed_data, size_t signed_len,
                  char **ret_plain, size_t *ret_plain_len, SigResult *info, Diag *d) {
        /* In this order, so that gpgme is done with the home before it goes. */
        _cleanup_(temp_home_removep) char *home = NULL;
        _cleanup_(gpgme_releasep) gpgme_ctx_t ctx = NULL;
        _cleanup_(gpgme_data_releasep) gpgme_data_t sig_dh = NULL, signed_dh = NULL, plain_dh = NULL;
        char sbuf[1200];
        const char *what = sig_name(c, sbuf, sizeof(sbuf));
        gpgme_error_t e;
        size_t n = 0;
        int r;

        r = sig_context_new(c->bmap, &ctx, d);
        if (r < 0)
                return r;
        if (c->opts->keyring) {
                r = use_keyring(ctx, c->bmap, c->opts->keyring, &home, d);
                if (r < 0)
                        return r;
        }
        e = gpgme_data_new_from_mem(&sig_dh, sig, sig_len, 0);
        if (!e)
                e = signed_data ? gpgme_data_new_from_mem(&signed_dh, signed_data, signed_len, 0)
                                : gpgme_data_new(&plain_dh);
        if (e)
                return diag_set(d, -ENOMEM, "%s: cannot check %s: %s", c->bmap, what, gpgme_strerror(e));
        e = gpgme_op_verify(ctx, sig_dh, signed_dh, plain_dh);
        if (e && !c->sig_name)
                return diag_set(d, -EBADMSG, "%s: not a valid clearsigned message (%s): get an intact copy", c->bmap,
                                gpgme_strerror(e));
        if (e)
                return diag_set(d, -EBADMSG, "%s: %s is not a valid OpenPGP signature (%s): get an intact copy",
                                c->bmap, what, gpgme_strerror(e));
        gpgme_verify_result_t res = gpgme_op_verify_result(ctx);
        /* gpg finds no signature in a signed message (not a detached
         * signature) given as one: it never vouches for the bmap. */
        if (!res || !res->signatures) {
                if (!c->sig_name)
                        return diag_set(d, -EBADMSG,
                                        "%s: its clearsigned signature is damaged (GnuPG finds none in it): get an "
                                        "intact copy",
                                        c->bmap);
                return diag_set(d, -EBADMSG,
                                "%s: %s holds no detached OpenPGP signature: get the signature made for this bmap",
                                c->bmap, what);
        }
        /* Like bmaptool: every signature there is must be good. */
        for (gpgme_signature_t s = res->signatures; s; s = s->next) {
                r = check_signature(ctx, c, s, info, d);
                if (r < 0)
                        return r;
        }
        if (plain_dh) {
                char *p = gpgme_data_release_and_get_mem(TAKE_PTR(plain_dh), &n);
                char *copy = malloc(n + 1);
                if (copy && n)
                        memcpy(copy, p, n);
                gpgme_free(p);
                if (!copy)
                        return -ENOMEM;
                copy[n] = 0;
                *ret_plain = copy;
                *ret_plain_len = n;
        }
        info->verified = true;
        return 0;
}

/* ------------------------------------------------------------------------ */

static int copy_text(const char *data, size_t len, char **ret_text, size_t *ret_len) {
        char *p = malloc(len + 1);
        if (!p)
                return -ENOMEM;
        memcpy(p, data, len);
        p[len] = 0;
        *ret_text = p;
        *ret_len = len;
        return 0;
}

/* The detached signature: --bmap-sig, else BMAP.asc, else BMAP.sig.
 * -ENOENT (no message) when none is beside the bmap. */
static int find_detached(const char *bmap, const SigOptions *o, HttpContext *http, char **ret_loc, char **ret_sig,
                         size_t *ret_len, Diag *d) {
        static const char *const suffixes[] = { ".asc", ".sig" };
        int r;

        if (o->sig_location) {
                r = fetch_whole(o->sig_location, http, SIG_MAX_SIZE, ret_sig, ret_len, d);
                if (r == -ENOENT)
                        return diag_set(d, -ENOENT, "cannot read the bmap signature '%s': %s", o->sig_location,
                                        strerror(ENOENT));
                if (r < 0)
                        return r;
                *ret_loc = strdup(o->sig_location);
                return *ret_loc ? 0 : -ENOMEM;
        }
        for (size_t i = 0; i < ELEMENTSOF(suffixes); i++) {
                _cleanup_free_ char *loc = location_add_suffix(bmap, suffixes[i]);
                if (!loc)
                        return -ENOMEM;
                r = fetch_whole(loc, http, SIG_MAX_SIZE, ret_sig, ret_len, d);
                if (r == -ENOENT)
                        continue;
                if (r < 0)
                        return r;
                *ret_loc = TAKE_PTR(loc);
                return 0;
        }
        return -ENOENT;
}

/* inside_archive: the bmap came out of an archive, and inside is its
 * detached signature member (NULL: none); else the signature is looked for
 * beside bmap_location. */
static int sig_check(const char *bmap_location, const char *data, size_t len, bool inside_archive,
                     const SigDetached *inside, const SigOptions *o, HttpContext *http, char **ret_text,
                     size_t *ret_len, SigResult *ret_info, Diag *d) {
        _cleanup_(sig_result_done) SigResult info = {};
        _cleanup_free_ char *sig = NULL, *text = NULL;
        size_t sig_len = 0, text_len = 0;
        Check c = { .bmap = bmap_location, .opts = o };
        int r;

        r = bmap_sig_options_check(o, d);
        if (r < 0)
                return r;
        if (o->fingerprint)
                (void) normalize_fingerprint(o->fingerprint, c.want_fpr);

        if (bmap_text_is_clearsigned(data, len)) {
                info.kind = SIG_KIND_CLEARSIGNED;
                if (o->sig_location)
                        return diag_set(d, -EINVAL,
                                        "%s: the bmap is clearsigned, it carries its own signature: drop --bmap-sig %s",
                                        bmap_location, o->sig_location);
                if (!o->skip) {
                        r = verify(&c, data, len, NULL, 0, &text, &text_len, &info, d);
                        if (r < 0 && !o->report_only)
                                return r;
                        if (r < 0)
                                snprintf(info.problem, sizeof(info.problem), "%s", d ? d->msg : "does not verify");
                }
                if (!text) {
                        r = bmap_clearsigned_text(data, len, &text, &text_len);
                        if (r == -EBADMSG)
                                return diag_set(d, r,
                                                "%s: not a complete clearsigned message (no signature after the "
                                                "text): get an intact copy",
                                                bmap_location);
                        if (r < 0)
                                return r;
                }
        } else if (!o->skip && !o->report_only) {
                if (!inside_archive || o->sig_location)
                        r = find_detached(bmap_location, o, http, &info.sig_location, &sig, &sig_len, d);
                else if (inside) {
                        r = copy_text(inside->data, inside->len, &sig, &sig_len);
                        if (r < 0)
                                return r;
                        info.sig_location = strdup(inside->name);
                        if (!info.sig_location)
                                return -ENOMEM;
                } else
                        r = -ENOENT;
                if (r < 0 && (r != -ENOENT || o->sig_location))
                        return r;
                if (r == -ENOENT && inside_archive && (o->fingerprint || o->keyring))
                        return diag_set(d, -ENOKEY,
                                        "%s: no signature found (it is not clearsigned, and the archive holds no "
                                        "member named as it plus .asc, .sig or .gpg before the image), but --%s "
                                        "expects one: put the signature in the archive, or name it with --bmap-sig",
                                        bmap_location, o->fingerprint ? "fingerprint" : "keyring");
                if (r == -ENOENT && (o->fingerprint || o->keyring))
                        return diag_set(d, -ENOKEY,
                                        "%s: no signature found (it is not clearsigned, and there is no %s.asc or "
                                        "%s.sig), but --%s expects one: get the signature, or name it with "
                                        "--bmap-sig",
                                        bmap_location, bmap_location, bmap_location,
                                        o->fingerprint ? "fingerprint" : "keyring");
                if (r == 0) {
                        info.kind = SIG_KIND_DETACHED;
                        c.sig_name = info.sig_location;
                        r = verify(&c, sig, sig_len, data, len, NULL, NULL, &info, d);
                        if (r < 0)
                                return r;
                }
        }
        if (!text) {
                r = copy_text(data, len, &text, &text_len);
                if (r < 0)
                        return r;
        }
        *ret_text = TAKE_PTR(text);
        *ret_len = text_len;
        if (ret_info) {
                *ret_info = info;
                info = (SigResult) {};
        }
        return 0;
}

int bmap_sig_check(const char *bmap_location, const char *data, size_t len, const SigOptions *o, HttpContext *http,
                   char **ret_text, size_t *ret_len, SigResult *ret_info, Diag *d) {
        return sig_check(bmap_location, data, len, false, NULL, o, http, ret_text, ret_len, ret_info, d);
}

int bmap_sig_check_inside(const char *bmap_name, const char *data, size_t len, const SigDetached *inside,
                          const SigOptions *o, HttpContext *http, char **ret_text, size_t *ret_len,
                          SigResult *ret_info, Diag *d) {
        return sig_check(bmap_name, data, len, true, inside, o, http, ret_text, ret_len, ret_info, d);
}
