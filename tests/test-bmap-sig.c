/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The parts of bmap-sig that need no key: taking a clearsigned text out
 * unverified (each expected text is what GnuPG 2.2.40 gave out for the same
 * message), the option checks, and the cases decided before gpgme runs.
 * Verification itself is tested with real keys in test-sig.sh. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bmap-sig.h"
#include "check.h"
#include "util.h"

#define HEAD "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n"
#define TAIL "-----BEGIN PGP SIGNATURE-----\n\niHUEARYIAB0WIQ=\n=b3a3\n-----END PGP SIGNATURE-----\n"

static void expect_text(const char *what, const char *msg, const char *want) {
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        int r = bmap_clearsigned_text(msg, strlen(msg), &text, &len);
        CHECK(r == 0, "%s: returned %d", what, r);
        if (r < 0)
                return;
        CHECK(len == strlen(want) && memcmp(text, want, len) == 0, "%s: got '%.*s' (%zu bytes), expected '%s'", what,
              (int) len, text, len, want);
        CHECK(text[len] == 0, "%s: not NUL-terminated", what);
}

static void test_extract(void) {
        /* Dash-escaping undone, trailing blanks dropped. */
        expect_text("escapes and trailing blanks", HEAD "line1\n- -dash\n  trailing  \nlast\n" TAIL,
                    "line1\n-dash\n  trailing\nlast\n");
        /* A line keeps its CR; "From " lines are escaped by some signers. */
        expect_text("CR and tabs", HEAD "a \r\nb\t\nc \t \nd\r\r\n- -- x\n- From me\nlast\n" TAIL,
                    "a\r\nb\nc\nd\r\n-- x\nFrom me\nlast\n");
        expect_text("blank and dash-only lines", HEAD "x\n \r\n\n\r \nq\r\n- -\n- -x\n- - \nz\r\n" TAIL,
                    "x\n\r\n\n\nq\r\n-\n-x\n-\nz\r\n");
        /* A whole file with CR LF line ends (a Windows transfer). */
        expect_text("CR LF throughout",
                    "-----BEGIN PGP SIGNED MESSAGE-----\r\nHash: SHA256\r\n\r\n<bmap>\r\n- -x\r\n"
                    "-----BEGIN PGP SIGNATURE-----\r\n\r\nxx\r\n-----END PGP SIGNATURE-----\r\n",
                    "<bmap>\r\n-x\r\n");
        /* A BOM and blank lines before, text after: neither is signed. */
        expect_text("around the message", "\xEF\xBB\xBF\n\n" HEAD "<bmap/>\n" TAIL "<bmap>unsigned</bmap>\n",
                    "<bmap/>\n");
        /* Several armor headers; an empty text. */
        expect_text("two headers", "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA1\nHash: SHA256\n\nok\n" TAIL,
                    "ok\n");
        expect_text("empty text", HEAD TAIL, "");

        static const char *const broken[] = {
                "<bmap/>\n",
                "-----BEGIN PGP SIGNED MESSAGE-----",
                "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n",
                HEAD "<bmap/>\n",
                HEAD "<bmap/>\n-----BEGIN PGP SIGNATURE----\n",
        };
        for (size_t i = 0; i < ELEMENTSOF(broken); i++) {
                char *text = NULL;
                size_t len = 0;
                int r = bmap_clearsigned_text(broken[i], strlen(broken[i]), &text, &len);
                CHECK(r == -EBADMSG && !text, "broken message %zu: returned %d, expected -EBADMSG", i, r);
                free(text);
        }
}

static void test_options(void) {
        Diag d = {};
        int r;

        r = bmap_sig_options_check(&(SigOptions) { .skip = true, .keyring = "k" }, &d);
        CHECK(r == -EINVAL, "--no-sig-verify with --keyring: returned %d", r);
        CHECK_STR_CONTAINS(d.msg, "--no-sig-verify excludes");
        r = bmap_sig_options_check(&(SigOptions) { .skip = true, .sig_location = "s" }, &d);
        CHECK(r == -EINVAL, "--no-sig-verify with --bmap-sig: returned %d", r);

        static const char *const bad[] = { "78DDE9A2B6E71465", "0xD14E022F", "", "D14E 022F B18B F2D0 B27F",
                                           "G14E022FB18BF2D0B27FB4C878DDE9A2B6E71465",
                                           "D14E022FB18BF2D0B27FB4C878DDE9A2B6E714650" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                d = (Diag) {};
                r = bmap_sig_options_check(&(SigOptions) { .fingerprint = bad[i] }, &d);
                CHECK(r == -EINVAL, "--fingerprint '%s' taken (%d)", bad[i], r);
                CHECK_STR_CONTAINS(d.msg, "not a whole key fingerprint");
        }
        static const char *const good[] = { "D14E022FB18BF2D0B27FB4C878DDE9A2B6E71465",
                                            "d14e 022f b18b f2d0 b27f  b4c8 78dd e9a2 b6e7 1465",
                                            "0xD14E022FB18BF2D0B27FB4C878DDE9A2B6E71465" };
        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                r = bmap_sig_options_check(&(SigOptions) { .fingerprint = good[i] }, &d);
                CHECK(r == 0, "--fingerprint '%s' refused (%d)", good[i], r);
        }
}

/* What is decided before gpgme runs: no signature beside an unsigned bmap,
 * a missing --bmap-sig, a clearsigned bmap with --bmap-sig, --no-sig-verify. */
static void test_check_without_keys(void) {
        const char *tmp = getenv("TEST_TMPDIR");
        char dir[4096], bmap[4200];
        static const char plain[] = "<bmap version=\"2.0\"/>\n";
        static const char signed_msg[] = HEAD "- -x\n<bmap/>\n" TAIL;
        char *text = NULL;
        size_t len = 0;
        SigResult info = {};
        Diag d = {};
        int r;

        snprintf(dir, sizeof(dir), "%s/test-bmap-sig.XXXXXX", tmp ? tmp : "/tmp");
        if (tmp)
                (void) mkdir(tmp, 0755); /* meson does not make it */
        CHECK(mkdtemp(dir) != NULL, "mkdtemp %s: %s", dir, strerror(errno));
        snprintf(bmap, sizeof(bmap), "%s/a.bmap", dir);

        r = bmap_sig_check(bmap, plain, strlen(plain), &(SigOptions) {}, NULL, &text, &len, &info, &d);
        CHECK(r == 0, "unsigned bmap: returned %d: %s", r, d.msg);
        CHECK(text && len == strlen(plain) && memcmp(text, plain, len) == 0, "unsigned bmap: the text changed");
        CHECK(info.kind == SIG_KIND_NONE && !info.verified, "unsigned bmap: kind %d", info.kind);
        free(text);
        text = NULL;
        sig_result_done(&info);

        d = (Diag) {};
        r = bmap_sig_check(bmap, plain, strlen(plain),
                           &(SigOptions) { .fingerprint = "D14E022FB18BF2D0B27FB4C878DDE9A2B6E71465" }, NULL, &text,
                           &len, &info, &d);
        CHECK(r == -ENOKEY && !text, "unsigned bmap with --fingerprint: returned %d", r);
        CHECK_STR_CONTAINS(d.msg, "no signature found");
        CHECK_STR_CONTAINS(d.msg, bmap);

        d = (Diag) {};
        r = bmap_sig_check(bmap, plain, strlen(plain), &(SigOptions) { .keyring = "/nonexistent" }, NULL, &text, &len,
                           &info, &d);
        CHECK(r == -ENOKEY && !text, "unsigned bmap with --keyring: returned %d", r);
        CHECK_STR_CONTAINS(d.msg, "--keyring expects one");

        d = (Diag) {};
        r = bmap_sig_check(bmap, plain, strlen(plain), &(SigOptions) { .sig_location = "/nonexistent.asc" }, NULL,
                           &text, &len, &info, &d);
        CHECK(r == -ENOENT && !text, "missing --bmap-sig: returned %d", r);
        CHECK_STR_CONTAINS(d.msg, "/nonexistent.asc");

        d = (Diag) {};
        r = bmap_sig_check(bmap, signed_msg, strlen(signed_msg), &(SigOptions) { .sig_location = "x.asc" }, NULL, &text,
                           &len, &info, &d);
        CHECK(r == -EINVAL && !text, "clearsigned with --bmap-sig: returned %d", r);
        CHECK_STR_CONTAINS(d.msg, "drop --bmap-sig");

        d = (Diag) {};
        r = bmap_sig_check(bmap, signed_msg, strlen(signed_msg), &(SigOptions) { .skip = true }, NULL, &text, &len,
                           &info, &d);
        CHECK(r == 0, "clearsigned with --no-sig-verify: returned %d: %s", r, d.msg);
        CHECK(text && strcmp(text, "-x\n<bmap/>\n") == 0, "clearsigned with --no-sig-verify: text '%s'",
              text ? text : "(null)");
        CHECK(info.kind == SIG_KIND_CLEARSIGNED && !info.verified, "clearsigned, skipped: kind %d verified %d",
              info.kind, info.verified);
        free(text);
        sig_result_done(&info);
        rmdir(dir);
}

int main(void) {
        test_extract();
        test_options();
        test_check_without_keys();
        return check_exit("test-bmap-sig");
}
