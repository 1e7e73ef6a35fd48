/* SPDX-License-Identifier: GPL-2.0-or-later */
/* sftp:// through libcurl's libssh2 backend. libcurl checks the host key
 * against CURLOPT_SSH_KNOWNHOSTS and asks us what to do: only a match is
 * taken. Trust on first use would let whoever answers on the network write
 * a disk, so a key not in known_hosts is refused with how to add it after
 * checking it, and a changed key with a warning. */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "input-ssh.h"
#include "util.h"

struct SshSetup {
        char *known_hosts;
        char *key, *pub;   /* the first of the user's keys found, or NULL */
        char *user;        /* when the URL names none: the local user's name */
        char *host;
        long port;
        enum curl_khmatch verdict;
        bool asked;        /* the key callback ran */
};

static char *home_dir(void) {
        const char *h = getenv("HOME");
        if (h && h[0])
                return strdup(h);
        struct passwd *pw = getpwuid(geteuid());
        return pw && pw->pw_dir ? strdup(pw->pw_dir) : strdup("/");
}

static int on_hostkey(CURL *easy, const struct curl_khkey *known, const struct curl_khkey *found,
                      enum curl_khmatch match, void *data) {
        SshSetup *s = data;
        s->asked = true;
        s->verdict = match;
        return match == CURLKHMATCH_OK ? CURLKHSTAT_FINE : CURLKHSTAT_REJECT;
}

SshSetup *ssh_setup_new(const char *url) {
        SshSetup *s = calloc(1, sizeof(*s));
        _cleanup_free_ char *home = home_dir();
        if (!s || !home || asprintf(&s->known_hosts, "%s/.ssh/known_hosts", home) < 0) {
                if (s)
                        s->known_hosts = NULL;
                ssh_setup_free(s);
                return NULL;
        }
        /* ssh's order of preference for the user's own keys. */
        static const char *const keys[] = { "id_ed25519", "id_ecdsa", "id_rsa" };
        for (size_t i = 0; i < ELEMENTSOF(keys) && !s->key; i++) {
                _cleanup_free_ char *p = NULL;
                if (asprintf(&p, "%s/.ssh/%s", home, keys[i]) < 0)
                        break;
                if (access(p, R_OK) == 0) {
                        s->key = TAKE_PTR(p);
                        /* Without the .pub, libssh2 derives it from the key. */
                        if (asprintf(&s->pub, "%s.pub", s->key) < 0)
                                s->pub = NULL;
                        else if (access(s->pub, R_OK) != 0)
                                s->pub[0] = 0;
                }
        }

        CURLU *u = curl_url();
        char *host = NULL, *port = NULL, *user = NULL;
        if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK) {
                (void) curl_url_get(u, CURLUPART_HOST, &host, 0);
                (void) curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT);
                (void) curl_url_get(u, CURLUPART_USER, &user, 0);
        }
        s->host = strdup(host ? host : "HOST");
        s->port = port ? strtol(port, NULL, 10) : 22;
        if (!user || !user[0]) {
                /* As ssh does: the local user. */
                struct passwd *pw = getpwuid(geteuid());
                const char *name = getenv("USER");
                s->user = strdup(pw && pw->pw_name ? pw->pw_name : name ? name : "root");
        }
        curl_free(host);
        curl_free(port);
        curl_free(user);
        curl_url_cleanup(u);
        if (!s->host) {
                ssh_setup_free(s);
                return NULL;
        }
        return s;
}

void ssh_setup_free(SshSetup *s) {
        if (!s)
                return;
        free(s->known_hosts);
        free(s->key);
        free(s->pub);
        free(s->user);
        free(s->host);
        free(s);
}

bool ssh_setup_apply(SshSetup *s, CURL *e) {
        bool bad = false;
#define SET(opt, val) bad |= curl_easy_setopt(e, opt, val) != CURLE_OK
        s->asked = false;
        SET(CURLOPT_SSH_KNOWNHOSTS, s->known_hosts);
        SET(CURLOPT_SSH_KEYFUNCTION, on_hostkey);
        SET(CURLOPT_SSH_KEYDATA, s);
        SET(CURLOPT_SSH_AUTH_TYPES,
            (long) (CURLSSH_AUTH_PUBLICKEY | CURLSSH_AUTH_AGENT | CURLSSH_AUTH_PASSWORD | CURLSSH_AUTH_KEYBOARD));
        if (s->key) {
                SET(CURLOPT_SSH_PRIVATE_KEYFILE, s->key);
                SET(CURLOPT_SSH_PUBLIC_KEYFILE, s->pub);
        }
        if (s->user)
                SET(CURLOPT_USERNAME, s->user);
#undef SET
        return !bad;
}

int ssh_hostkey_error(const SshSetup *s, const char *shown, char *buf, size_t size) {
        char who[300];
        if (!s->asked || s->verdict == CURLKHMATCH_OK)
                return 0;
        if (s->port != 22)
                snprintf(who, sizeof(who), "[%s]:%ld", s->host, s->port);
        else
                snprintf(who, sizeof(who), "%s", s->host);
        if (s->verdict == CURLKHMATCH_MISMATCH)
                snprintf(buf, size,
                         "%s: the host key of %s differs from the one in %s: someone may be intercepting the "
                         "connection; if the server's key was changed on purpose, remove the old one with "
                         "'ssh-keygen -R \"%s\"' and add the new one",
                         shown, who, s->known_hosts, who);
        else
                snprintf(buf, size,
                         "%s: the host key of %s is not in %s: check it with the server's administrator, then add "
                         "it with 'ssh-keyscan -p %ld %s >> %s'",
                         shown, who, s->known_hosts, s->port, s->host, s->known_hosts);
        return -EPERM;
}
