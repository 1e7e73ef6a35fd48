/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What location.c decides without a network: which locations are URLs,
 * where a file beside another is, and that no password in a URL survives
 * into a message. */
#include <stdlib.h>

#include "check.h"
#include "location.h"

static void check_redact(const char *in, const char *want) {
        char buf[256];
        redact_passwords(in, buf, sizeof(buf));
        CHECK(strcmp(buf, want) == 0, "'%s' is shown as '%s', expected '%s'", in, buf, want);
        char *dup = redact_passwords_dup(in);
        CHECK(dup && strcmp(dup, want) == 0, "'%s' duplicated as '%s', expected '%s'", in, dup ? dup : "(null)", want);
        free(dup);
}

static void suffix_is(const char *in, const char *suffix, const char *want) {
        char *got = location_add_suffix(in, suffix);
        CHECK(got && strcmp(got, want) == 0, "'%s' + '%s' gave '%s', expected '%s'", in, suffix, got ? got : "(null)",
              want);
        free(got);
}

int main(void) {
        suffix_is("a.bmap", ".asc", "a.bmap.asc");
        suffix_is("/d/x?y.bmap", ".sig", "/d/x?y.bmap.sig");
        suffix_is("https://h/a.bmap?token=42", ".asc", "https://h/a.bmap.asc?token=42");
        suffix_is("https://h/a.bmap#frag", ".asc", "https://h/a.bmap.asc#frag");
        suffix_is("http://u:p@h:8080/d/a.bmap", ".sig", "http://u:p@h:8080/d/a.bmap.sig");
        suffix_is("http://h?q", ".asc", "http://h.asc?q");

        char small[12];

        CHECK(location_is_url("http://h/x"), "http");
        CHECK(location_is_url("https://h/x"), "https");
        CHECK(location_is_url("ftp://h/x"), "ftp");
        CHECK(location_is_url("sftp://u@h/x"), "sftp");
        CHECK(!location_is_url("ftps://h/x"), "ftps is no URL we fetch");
        CHECK(!location_is_url("file:///x"), "file:// is no URL we fetch");
        CHECK(!location_is_url("./http://x"), "a path");
        CHECK(!location_is_url("HTTP"), "a file named HTTP");

        check_redact("http://user:pw@host/x", "http://user:***@host/x");
        check_redact("https://host:8443/a.img?t=1", "https://host:8443/a.img?t=1");
        check_redact("https://user@host/x", "https://user@host/x");
        check_redact("ftp://user:pw@host/x", "ftp://user:***@host/x");
        check_redact("sftp://user:pw@host:2222/srv/x.img", "sftp://user:***@host:2222/srv/x.img");
        check_redact("http://u:@h/", "http://u:***@h/");
        check_redact("http://u:p@ss@host/x", "http://u:***@host/x");
        check_redact("http://u:secret@host", "http://u:***@host");
        check_redact("http://h/p?q=a:b@c", "http://h/p?q=a:b@c");
        /* Quotes, parentheses and spaces are a password's too. */
        check_redact("http://user:it's(secret)@127.0.0.1:1/x.img: cannot connect",
                     "http://user:***@127.0.0.1:1/x.img: cannot connect");
        check_redact("'http://user:se cret@h/x'", "'http://user:***@h/x'");
        check_redact("http://user:pw@h: no answer", "http://user:***@h: no answer");
        check_redact("http://h/p#a:b@c", "http://h/p#a:b@c");
        check_redact("x: no bmap found (looked for http://a:b@h/x.bmap, https://c:dd@h2/y.bmap): give --bmap",
                     "x: no bmap found (looked for http://a:***@h/x.bmap, https://c:***@h2/y.bmap): give --bmap");
        check_redact("'http://a:b@h/x': gone", "'http://a:***@h/x': gone");
        check_redact("no URL here: a:b@c", "no URL here: a:b@c");
        check_redact("", "");

        redact_passwords("http://user:password@host/", small, sizeof(small));
        CHECK(strlen(small) == sizeof(small) - 1 && strstr(small, "password") == NULL, "cut short: '%s'", small);
        return check_exit("test-location");
}
