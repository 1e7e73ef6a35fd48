/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Images, bmaps and signatures over HTTP(S), FTP and SFTP, through libcurl.
 *
 * The reader drives the transfer (libcurl's multi interface, no thread of
 * our own): a read runs curl until bytes arrive, and they land straight in
 * the reader's buffer; what does not fit waits in a 1 MiB spill buffer, and
 * when that is full the transfer is paused (CURL_WRITEFUNC_PAUSE) until the
 * reader comes back for more. Memory stays bounded whatever the image, and
 * a stall is timed only while a byte is awaited: a slow target holding the
 * reader back is no stall. */
#include <curl/curl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "config.h"
#include "input-http.h"
#include "input-ssh.h"
#include "location.h"

#define SPILL_SIZE ((size_t) 1 << 20)
/* What curl reads from the socket at once; one recv per call is enough for
 * a gigabit link at a few thousand calls a second. */
#define CURL_BUFFER_SIZE (256L << 10)
/* A skip this short is read and dropped: a new request costs a round trip
 * or three (TCP, TLS), worth a few MiB on most links. */
#define SEEK_DISCARD_MAX ((uint64_t) 4 << 20)
#define MAX_REDIRECTS 10L
/* Resumptions of a broken or stalled transfer: at most this many in a row
 * that bring no new byte, and this many in all. */
#define RESUME_IN_A_ROW 5u
#define RESUME_TOTAL 50u
#define BACKOFF_MAX_MS 8000u
/* How often a wait looks at the cancel flag. */
#define SLICE_MS 250u

struct HttpContext {
        unsigned refs;
        char *ca_blob; /* the system bundle and --ca-file, or NULL: libcurl's own */
        size_t ca_blob_len;
        unsigned stall_ms;
        const volatile sig_atomic_t *cancel;
        void (*notice)(const char *line);
};

/* What a NULL context means. */
static const HttpContext defaults = { .stall_ms = HTTP_STALL_TIMEOUT_DEFAULT * 1000u };

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_result;

static void global_init(void) {
        global_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static uint64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

HttpContext *http_context_ref(HttpContext *c) {
        if (c)
                c->refs++;
        return c;
}

HttpContext *http_context_unref(HttpContext *c) {
        if (!c || --c->refs > 0)
                return NULL;
        free(c->ca_blob);
        free(c);
        return NULL;
}

void http_context_unrefp(HttpContext **c) {
        *c = http_context_unref(*c);
}

int http_context_new(const HttpOptions *o, HttpContext **ret, Diag *d) {
        _cleanup_http_context_ HttpContext *c = NULL;
        _cleanup_free_ char *extra = NULL, *system = NULL;
        size_t extra_len = 0, system_len = 0;
        int r;

        c = calloc(1, sizeof(*c));
        if (!c)
                return diag_set(d, -ENOMEM, "out of memory");
        c->refs = 1;
        c->stall_ms = (o->stall_timeout ? o->stall_timeout : HTTP_STALL_TIMEOUT_DEFAULT) * 1000u;
        c->cancel = o->cancel;
        c->notice = o->notice;
        if (!o->ca_file) {
                *ret = TAKE_PTR(c);
                return 0;
        }

        r = read_file_full(o->ca_file, 4 << 20, &extra, &extra_len);
        if (r == -EFBIG)
                return diag_set(d, r, "%s: larger than 4 MiB: not a CA certificate file", o->ca_file);
        if (r < 0)
                return diag_set(d, r, "cannot read the CA file '%s': %s", o->ca_file, strerror(-r));
        if (!strstr(extra, "-----BEGIN CERTIFICATE-----"))
                return diag_set(d, -EINVAL,
                                "%s: holds no PEM certificate (-----BEGIN CERTIFICATE-----): give the CA in PEM form",
                                o->ca_file);

        /* libcurl takes an extra CA only in place of its CA file (its CA
         * directory stays): so the system bundle goes into the same blob,
         * and the extra CA adds to the system store instead of replacing
         * it, whether the system store is a file, a directory or both. */
        pthread_once(&global_once, global_init);
        if (global_result != CURLE_OK)
                return diag_set(d, -EIO, "cannot set up libcurl: %s", curl_easy_strerror(global_result));
        CURL *e = curl_easy_init();
        if (!e)
                return diag_set(d, -ENOMEM, "out of memory");
        char *bundle = NULL;
        if (curl_easy_getinfo(e, CURLINFO_CAINFO, &bundle) == CURLE_OK && bundle)
                (void) read_file_full(bundle, 64 << 20, &system, &system_len);
        curl_easy_cleanup(e);

        c->ca_blob = malloc(system_len + extra_len + 2);
        if (!c->ca_blob)
                return diag_set(d, -ENOMEM, "out of memory");
        if (system_len)
                memcpy(c->ca_blob, system, system_len);
        c->ca_blob[system_len] = '\n';
        memcpy(c->ca_blob + system_len + 1, extra, extra_len);
        c->ca_blob_len = system_len + 1 + extra_len;
        c->ca_blob[c->ca_blob_len] = 0;
        *ret = TAKE_PTR(c);
        return 0;
}

typedef struct Http {
        HttpContext *ctx; /* a reference, or NULL for the defaults */
        const HttpContext *cfg; /* ctx, or the defaults */
        char *url;   /* as given, password and all */
        char *shown; /* for messages: the password hidden */
        bool head;   /* only asking whether it exists */
        /* ftp:// and sftp:// share the transfer, the stall and the resuming
         * with http; they have no status codes, redirects or validators:
         * a resumed transfer must come from a file of the same size and
         * modification time. */
        enum { PROTO_HTTP, PROTO_FTP, PROTO_SFTP } proto;
        curl_off_t mtime; /* ftp, sftp: from the first response, -1 when not told */
        SshSetup *ssh; /* sftp: host key and user keys */
        CURLM *multi;
        CURL *easy; /* the transfer under way, if any */
        struct curl_slist *if_range;
        char errbuf[CURL_ERROR_SIZE];

        /* The entity, from the first response. */
        bool known;
        long status;
        uint64_t total; /* its length; 0 when not told */
        bool ranges;    /* resumable: byte ranges, a length and a validator */

        /* The transfer under way. */
        uint64_t start; /* the offset it was asked from */
        uint64_t recv;  /* the offset of the next byte to arrive */
        bool checked, paused, done, eof;
        CURLcode result;
        int verdict; /* of the response check: 0, -EAGAIN (worth a retry), or fatal */
        uint64_t last_byte_ms;
        unsigned resumed_in_a_row, resumed_total;

        /* Where arriving bytes go: the reader's buffer while a read waits,
         * then the spill. */
        uint8_t *dst;
        size_t dst_cap, dst_len;
        uint8_t *spill;
        size_t spill_pos, spill_len;

        /* Sticky: once failed, every later call fails the same way. */
        int failed;
        char msg[1024];
} Http;

_printf_(3, 4) static int fail(Http *h, int err, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(h->msg, sizeof(h->msg), fmt, ap);
        va_end(ap);
        h->failed = err;
        return err;
}

/* Like fail, but only says why, for a verdict that may still be retried. */
_printf_(3, 4) static int note(Http *h, int err, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(h->msg, sizeof(h->msg), fmt, ap);
        va_end(ap);
        return err;
}

static size_t spill_avail(const Http *h) {
        return h->spill_len - h->spill_pos;
}

static size_t room(const Http *h) {
        return (h->dst ? h->dst_cap - h->dst_len : 0) + SPILL_SIZE - spill_avail(h);
}

static size_t available(const Http *h) {
        return h->dst_len + spill_avail(h);
}

static void spill_drop(Http *h, size_t n) {
        h->spill_pos += n;
        if (h->spill_pos == h->spill_len)
                h->spill_pos = h->spill_len = 0;
}

static void spill_put(Http *h, const uint8_t *p, size_t n) {
        if (h->spill_len + n > SPILL_SIZE) {
                memmove(h->spill, h->spill + h->spill_pos, spill_avail(h));
                h->spill_len -= h->spill_pos;
                h->spill_pos = 0;
        }
        memcpy(h->spill + h->spill_len, p, n);
        h->spill_len += n;
}

/* "byte 1048576 of 10485760", or "byte 1048576" when the length is unknown. */
static const char *where(const Http *h, char *buf, size_t size) {
        if (h->total)
                snprintf(buf, size, "byte %" PRIu64 " of %" PRIu64, h->recv, h->total);
        else
                snprintf(buf, size, "byte %" PRIu64, h->recv);
        return buf;
}

static bool has_userinfo(const char *url) {
        const char *a = strstr(url, "://");
        if (!a)
                return false;
        a += 3;
        size_t n = strcspn(a, "/?#");
        return memchr(a, '@', n) != NULL;
}

static const char *header(Http *h, const char *name) {
        struct curl_header *hd;
        if (curl_easy_header(h->easy, name, 0, CURLH_HEADER, -1, &hd) != CURLHE_OK || !hd->value)
                return NULL;
        return hd->value;
}

static int status_error(Http *h, long code) {
        const char *u = h->shown;

        if (code == 404 || code == 410)
                return note(h, -ENOENT, "%s: HTTP %ld: the image is not there: check the URL", u, code);
        if (code == 401 && has_userinfo(h->url))
                return note(h, -EACCES,
                            "%s: HTTP 401: the user name or password was refused: check them (in the URL or ~/.netrc)",
                            u);
        if (code == 401)
                return note(h, -EACCES,
                            "%s: HTTP 401: the server wants a user name and password: give them in the URL "
                            "(USER:PASSWORD@ after the https://) or in ~/.netrc",
                            u);
        if (code == 403)
                return note(h, -EACCES,
                            "%s: HTTP 403: access refused: check the credentials (in the URL or ~/.netrc) and that "
                            "you may download it",
                            u);
        if (code == 407)
                return note(h, -EACCES,
                            "%s: HTTP 407: the proxy wants credentials: give them in the proxy variable "
                            "(http_proxy=http://USER:PASSWORD@proxy:port)",
                            u);
        if (code >= 500)
                return note(h, -EIO, "%s: HTTP %ld: the server failed: try again later", u, code);
        if (code >= 400)
                return note(h, -EIO, "%s: HTTP %ld: the server refused the request: check the URL", u, code);
        return note(h, -EIO, "%s: HTTP %ld: an unexpected answer (not 200 OK): check the URL", u, code);
}

/* "bytes START-END/TOTAL", exactly. */
static bool parse_content_range(const char *s, uint64_t *ret_start, uint64_t *ret_end, uint64_t *ret_total) {
        const char *dash, *slash;
        if (strncasecmp(s, "bytes ", 6) != 0)
                return false;
        s += 6;
        dash = strchr(s, '-');
        slash = dash ? strchr(dash, '/') : NULL;
        return slash && parse_u64(s, (size_t) (dash - s), ret_start) == 0 &&
               parse_u64(dash + 1, (size_t) (slash - dash - 1), ret_end) == 0 &&
               parse_u64(slash + 1, strlen(slash + 1), ret_total) == 0;
}

/* The answer to a resumption or a seek: only the rest of the same file, from
 * the byte asked for, may be spliced in. */
static int check_range_response(Http *h, long code) {
        char at[64];
        if (code == 206) {
                const char *cr = header(h, "Content-Range");
                uint64_t s, e, t;
                if (cr && parse_content_range(cr, &s, &e, &t) && s == h->start && t == h->total && s <= e && e < t)
                        return 0;
                return note(h, -EIO,
                            "%s: asked for the bytes from %" PRIu64
                            ", the server sent '%s': refusing to splice them in: try again",
                            h->shown, h->start, cr ? cr : "no Content-Range");
        }
        snprintf(at, sizeof(at), "%" PRIu64, h->start);
        if (code / 100 == 2 || code == 412 || code == 416)
                return note(h, -ESTALE,
                            "%s: asked for the rest from byte %s, the server answered HTTP %ld: the file changed on "
                            "the server (or it stopped taking byte ranges): start again",
                            h->shown, at, code);
        if (code >= 500 || code == 408 || code == 429)
                return note(h, -EAGAIN, "HTTP %ld", code);
        return status_error(h, code);
}

/* FTP and SFTP: the size (SIZE or a stat) and the modification time
 * (MDTM or the same stat) are all there is to tell that a resumed transfer
 * continues the same file (libcurl reports the bytes it will send from the
 * offset on). The size alone would splice a rebuilt image of a fixed size. */
static int check_file_response(Http *h) {
        curl_off_t len = -1, mtime = -1;

        curl_easy_getinfo(h->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &len);
        if (curl_easy_getinfo(h->easy, CURLINFO_FILETIME_T, &mtime) != CURLE_OK)
                mtime = -1;
        if (!h->known) {
                h->known = true;
                h->total = len > 0 ? (uint64_t) len : 0;
                h->ranges = h->total > 0;
                h->mtime = mtime;
                return 0;
        }
        if (h->mtime != -1 && mtime != h->mtime)
                return note(h, -ESTALE,
                            "%s: asked for the rest from byte %" PRIu64 ", the server %s: the file changed on the "
                            "server: start again",
                            h->shown, h->start,
                            mtime == -1 ? "no longer tells the file's modification time"
                                        : "has another modification time for the file");
        if (len >= 0 && (uint64_t) len <= h->total && h->start + (uint64_t) len == h->total)
                return 0;
        return note(h, -ESTALE,
                    "%s: asked for the rest from byte %" PRIu64 ", the server now has %s%" PRIu64
                    " bytes from there, not %" PRIu64 ": the file changed on the server: start again",
                    h->shown, h->start, len < 0 ? "an unknown number of " : "", len < 0 ? (uint64_t) 0 : (uint64_t) len,
                    h->total - h->start);
}

/* Looks at the response as its first byte (or its end) arrives. */
static int check_response(Http *h) {
        long code = 0;
        curl_off_t len = -1;

        if (h->proto != PROTO_HTTP)
                return check_file_response(h);
        curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &code);
        if (h->known)
                return check_range_response(h, code);
        h->status = code;
        if (code / 100 != 2 || code == 206)
                return status_error(h, code);
        curl_easy_getinfo(h->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &len);
        h->known = true;
        h->total = len > 0 ? (uint64_t) len : 0;

        /* If-Range takes a strong validator: an ETag that is not weak, else
         * the date. Without one, a resumed transfer could splice two
         * versions of a file: then there is no resuming. */
        const char *etag = header(h, "ETag"), *date = header(h, "Last-Modified");
        const char *validator = etag && etag[0] == '"' ? etag : date && date[0] ? date : NULL;
        const char *accept = header(h, "Accept-Ranges");
        if (validator && h->total > 0 && accept && strcasestr(accept, "bytes")) {
                _cleanup_free_ char *line = NULL;
                if (asprintf(&line, "If-Range: %s", validator) < 0)
                        return note(h, -ENOMEM, "out of memory");
                h->if_range = curl_slist_append(NULL, line);
                if (!h->if_range)
                        return note(h, -ENOMEM, "out of memory");
                h->ranges = true;
        }
        return 0;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *userdata) {
        Http *h = userdata;
        size_t n = size * nmemb, k = 0;

        if (!h->checked) {
                h->checked = true;
                int r = check_response(h);
                if (r < 0) {
                        h->verdict = r;
                        return 0; /* ends the transfer */
                }
        }
        if (room(h) < n) {
                h->paused = true;
                return CURL_WRITEFUNC_PAUSE;
        }
        if (h->dst) {
                k = h->dst_cap - h->dst_len < n ? h->dst_cap - h->dst_len : n;
                memcpy(h->dst + h->dst_len, p, k);
                h->dst_len += k;
        }
        if (k < n)
                spill_put(h, (const uint8_t *) p + k, n - k);
        h->recv += n;
        h->last_byte_ms = now_ms();
        h->resumed_in_a_row = 0;
        return n;
}

static void transfer_stop(Http *h) {
        if (!h->easy)
                return;
        curl_multi_remove_handle(h->multi, h->easy);
        curl_easy_cleanup(h->easy);
        h->easy = NULL;
}

/* A new request from offset (with a conditional range once the entity is
 * known), always to the URL as given: a redirect is followed again, and
 * credentials go only where the user sent them. */
static int transfer_start(Http *h, uint64_t offset) {
        bool bad = false;
        char range[32];

        transfer_stop(h);
        h->easy = curl_easy_init();
        if (!h->easy)
                return fail(h, -ENOMEM, "out of memory");
        h->errbuf[0] = 0;
#define SET(opt, val) bad |= curl_easy_setopt(h->easy, opt, val) != CURLE_OK
        SET(CURLOPT_URL, h->url);
        /* Only the scheme the URL names, and for http(s) only HTTP(S) where
         * a redirect points: never file://, ftp://... */
        SET(CURLOPT_PROTOCOLS_STR, h->proto == PROTO_FTP ? "ftp" : h->proto == PROTO_SFTP ? "sftp" : "http,https");
        if (h->proto == PROTO_HTTP) {
                SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
                SET(CURLOPT_FOLLOWLOCATION, 1L);
                SET(CURLOPT_MAXREDIRS, MAX_REDIRECTS);
                SET(CURLOPT_USERAGENT, "bmapscan/" PACKAGE_VERSION);
                /* The bytes of the file as stored, whatever the server says
                 * about them: offsets must be the file's for ranges. */
                SET(CURLOPT_HTTP_CONTENT_DECODING, 0L);
        }
        if (h->ssh)
                bad |= !ssh_setup_apply(h->ssh, h->easy);
        /* ftp: MDTM, sftp: the stat's mtime; a validator for resuming. */
        if (h->proto != PROTO_HTTP)
                SET(CURLOPT_FILETIME, 1L);
        SET(CURLOPT_NETRC, (long) CURL_NETRC_OPTIONAL);
        /* Signals are ours (SIGINT stops a copy), and there are threads. */
        SET(CURLOPT_NOSIGNAL, 1L);
        SET(CURLOPT_ERRORBUFFER, h->errbuf);
        SET(CURLOPT_BUFFERSIZE, CURL_BUFFER_SIZE);
        SET(CURLOPT_TCP_KEEPALIVE, 1L);
        SET(CURLOPT_WRITEFUNCTION, on_body);
        SET(CURLOPT_WRITEDATA, h);
        if (h->cfg->ca_blob) {
                struct curl_blob blob = { h->cfg->ca_blob, h->cfg->ca_blob_len, CURL_BLOB_NOCOPY };
                SET(CURLOPT_CAINFO_BLOB, &blob);
        }
        if (h->head)
                SET(CURLOPT_NOBODY, 1L);
        if (h->known && h->proto != PROTO_HTTP)
                SET(CURLOPT_RESUME_FROM_LARGE, (curl_off_t) offset);
        else if (h->known) {
                snprintf(range, sizeof(range), "%" PRIu64 "-", offset);
                SET(CURLOPT_RANGE, range);
                SET(CURLOPT_HTTPHEADER, h->if_range);
        }
#undef SET
        if (bad)
                return fail(h, -EPROTONOSUPPORT, "%s: this libcurl lacks an option bmapscan needs (7.85 or newer is)",
                            h->shown);

        h->start = h->recv = offset;
        h->checked = h->paused = h->done = h->eof = false;
        h->result = CURLE_OK;
        h->verdict = 0;
        if (curl_multi_add_handle(h->multi, h->easy) != CURLM_OK)
                return fail(h, -ENOMEM, "%s: cannot start the transfer", h->shown);
        return 0;
}

static int curl_error(Http *h, CURLcode c) {
        const char *u = h->shown, *text = h->errbuf[0] ? h->errbuf : curl_easy_strerror(c);

        switch (c) {
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
                return fail(h, -EHOSTUNREACH,
                            "%s: cannot resolve the host name (%s): check the URL, the network and any proxy settings",
                            u, text);
        case CURLE_COULDNT_CONNECT:
                return fail(h, -ECONNREFUSED,
                            "%s: cannot connect (%s): check the URL, that the server is up, and any proxy settings", u,
                            text);
        case CURLE_REMOTE_FILE_NOT_FOUND:
                return fail(h, -ENOENT, "%s: the file is not there (%s): check the URL", u, text);
        case CURLE_LOGIN_DENIED:
                if (h->proto == PROTO_SFTP)
                        return fail(h, -EACCES,
                                    "%s: the server refused the login (%s): check the user and password in the URL, "
                                    "or that your key in ~/.ssh (id_ed25519, id_ecdsa, id_rsa) or ssh-agent is "
                                    "authorized there",
                                    u, text);
                return fail(h, -EACCES,
                            "%s: the server refused the login (%s): check the user name and password (in the URL "
                            "or ~/.netrc)",
                            u, text);
        case CURLE_REMOTE_ACCESS_DENIED:
                return fail(h, -EACCES, "%s: access refused (%s): check the path and that you may read it", u, text);
        case CURLE_PEER_FAILED_VERIFICATION:
                if (h->ssh) {
                        int r = ssh_hostkey_error(h->ssh, u, h->msg, sizeof(h->msg));
                        if (r < 0) {
                                h->failed = r;
                                return r;
                        }
                }
                return fail(h, -EPERM,
                            "%s: the server's certificate is not trusted (%s): if your own CA signed it, give that "
                            "with --ca-file FILE",
                            u, text);
        case CURLE_SSL_CACERT_BADFILE:
                return fail(h, -EINVAL, "%s: cannot load the CA certificates (%s): check the --ca-file", u, text);
        case CURLE_SSL_CONNECT_ERROR:
                return fail(h, -EPROTO, "%s: the TLS handshake failed (%s): check that the server speaks HTTPS there",
                            u, text);
        case CURLE_TOO_MANY_REDIRECTS:
                return fail(h, -ELOOP, "%s: more than %ld redirects: check the URL", u, MAX_REDIRECTS);
        case CURLE_UNSUPPORTED_PROTOCOL:
                return fail(h, -EPROTONOSUPPORT,
                            "%s: %s: only http://, https://, ftp:// and sftp:// are read, and redirects only to "
                            "http:// and https://",
                            u, text);
        case CURLE_URL_MALFORMAT:
                return fail(h, -EINVAL, "%s: not a valid URL (%s)", u, text);
        case CURLE_OPERATION_TIMEDOUT:
                return fail(h, -ETIMEDOUT, "%s: no answer (%s): check the network, or allow longer with --http-timeout",
                            u, text);
        case CURLE_OUT_OF_MEMORY:
                return fail(h, -ENOMEM, "%s: out of memory", u);
        default:
                return fail(h, -EIO, "%s: the transfer failed (%s): try again", u, text);
        }
}

/* Failures that a new request may well not meet again. */
static bool transient(CURLcode c) {
        switch (c) {
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_CONNECT:
        case CURLE_PARTIAL_FILE:
        case CURLE_RECV_ERROR:
        case CURLE_SEND_ERROR:
        case CURLE_GOT_NOTHING:
        case CURLE_OPERATION_TIMEDOUT:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_SSH:
                return true;
        default:
                return false;
        }
}

static bool cancelled(const Http *h) {
        return h->cfg->cancel && *h->cfg->cancel;
}

static int nap(Http *h, unsigned ms) {
        while (ms > 0) {
                if (cancelled(h))
                        return fail(h, -EINTR, "%s: interrupted", h->shown);
                unsigned step = ms < SLICE_MS ? ms : SLICE_MS;
                struct timespec ts = { step / 1000, (long) (step % 1000) * 1000000L };
                nanosleep(&ts, NULL);
                ms -= step;
        }
        return 0;
}

/* The transfer broke or stalled at h->recv: ask for the rest, if the
 * server allows it and attempts remain. 1 when resumed, else the error. */
static int resume(Http *h, const char *why) {
        char at[64], reason[256];

        snprintf(reason, sizeof(reason), "%s", why);
        where(h, at, sizeof(at));
        if (!h->ranges)
                return fail(h, -EIO,
                            "%s: %s at %s, and the server cannot resume (it takes no byte ranges): try again, or "
                            "download the file first",
                            h->shown, reason, at);
        if (h->resumed_in_a_row >= RESUME_IN_A_ROW || h->resumed_total >= RESUME_TOTAL)
                return fail(h, -EIO, "%s: %s at %s, after %u attempts to resume: check the network and try again",
                            h->shown, reason, at, h->resumed_total);
        /* Half a second, doubling, but never longer than a stall. */
        unsigned ms = 500u << h->resumed_in_a_row;
        if (ms > BACKOFF_MAX_MS)
                ms = BACKOFF_MAX_MS;
        if (ms > h->cfg->stall_ms)
                ms = h->cfg->stall_ms;
        if (h->cfg->notice) {
                char line[768];
                snprintf(line, sizeof(line), "%s: %s at %s: resuming in %.1f s (attempt %u of at most %u)", h->shown,
                         reason, at, ms / 1000.0, h->resumed_total + 1, RESUME_TOTAL);
                h->cfg->notice(line);
        }
        int r = nap(h, ms);
        if (r < 0)
                return r;
        h->resumed_in_a_row++;
        h->resumed_total++;
        r = transfer_start(h, h->recv);
        return r < 0 ? r : 1;
}

/* The transfer is over: 0 at the clean end of the entity (h->eof), 1 when
 * it was resumed, or the error. */
static int finish(Http *h) {
        char why[256];
        CURLcode c = h->result;

        if (c == CURLE_OK && !h->checked) {
                /* An empty body: nothing went through on_body. */
                h->checked = true;
                h->verdict = check_response(h);
        }
        if (h->verdict == -EAGAIN) {
                snprintf(why, sizeof(why), "the server answered %.100s to a resumption", h->msg);
                return resume(h, why);
        }
        if (h->verdict < 0) {
                h->failed = h->verdict;
                return h->failed;
        }
        if (c == CURLE_OK && !h->head && h->total && h->recv < h->total)
                return resume(h, "the body ended early");
        if (c == CURLE_OK) {
                transfer_stop(h);
                h->eof = true;
                return 0;
        }
        if (h->known && transient(c)) {
                snprintf(why, sizeof(why), "the transfer broke (%.200s)",
                         h->errbuf[0] ? h->errbuf : curl_easy_strerror(c));
                return resume(h, why);
        }
        return curl_error(h, c);
}

static int stalled(Http *h) {
        char why[128];
        unsigned s = h->cfg->stall_ms / 1000;

        if (!h->known)
                return fail(h, -ETIMEDOUT,
                            "%s: no answer for %u s: check the network, or allow longer with --http-timeout SECONDS",
                            h->shown, s);
        snprintf(why, sizeof(why), "no data for %u s", s);
        return resume(h, why);
}

/* Runs the transfer until bytes arrive (into the reader's buffer or the
 * spill), the entity ends (h->eof) or it fails for good; breaks and stalls
 * are resumed where they can be. 0, or the (sticky) error. */
static int pump(Http *h) {
        uint64_t since = now_ms();

        for (;;) {
                if (h->failed)
                        return h->failed;
                if (h->eof)
                        return 0;
                if (cancelled(h))
                        return fail(h, -EINTR, "%s: interrupted", h->shown);
                if (h->paused && room(h) >= CURL_MAX_WRITE_SIZE) {
                        /* curl hands over what it holds from within this call. */
                        h->paused = false;
                        CURLcode c = curl_easy_pause(h->easy, CURLPAUSE_CONT);
                        if (c != CURLE_OK)
                                return curl_error(h, c);
                }

                size_t before = available(h);
                int running = 0;
                CURLMcode m = curl_multi_perform(h->multi, &running);
                if (m != CURLM_OK)
                        return fail(h, -EIO, "%s: %s", h->shown, curl_multi_strerror(m));
                CURLMsg *msg;
                int left;
                while ((msg = curl_multi_info_read(h->multi, &left)))
                        if (msg->msg == CURLMSG_DONE && msg->easy_handle == h->easy) {
                                h->done = true;
                                h->result = msg->data.result;
                        }

                size_t now_avail = available(h);
                /* More may be waiting in the socket: fill the reader's
                 * buffer before going back to it. */
                if (now_avail > before && h->dst && h->dst_len < h->dst_cap && !h->done && !h->paused)
                        continue;
                if (now_avail > 0)
                        return 0;
                if (h->done) {
                        int r = finish(h);
                        if (r <= 0)
                                return r;
                        since = now_ms();
                        continue;
                }

                uint64_t t = now_ms(), last = h->last_byte_ms > since ? h->last_byte_ms : since;
                if (t - last >= h->cfg->stall_ms) {
                        int r = stalled(h);
                        if (r < 0)
                                return r;
                        since = now_ms();
                        continue;
                }
                uint64_t wait = h->cfg->stall_ms - (t - last);
                m = curl_multi_poll(h->multi, NULL, 0, wait < SLICE_MS ? (int) wait : (int) SLICE_MS, NULL);
                if (m != CURLM_OK)
                        return fail(h, -EIO, "%s: %s", h->shown, curl_multi_strerror(m));
        }
}

static ssize_t http_read(void *ctx, void *buf, size_t n) {
        Http *h = ctx;

        if (h->failed)
                return h->failed;
        if (n == 0)
                return 0;
        if (spill_avail(h) > 0) {
                size_t k = spill_avail(h) < n ? spill_avail(h) : n;
                memcpy(buf, h->spill + h->spill_pos, k);
                spill_drop(h, k);
                return (ssize_t) k;
        }
        h->dst = buf;
        h->dst_cap = n;
        h->dst_len = 0;
        int r = pump(h);
        size_t got = h->dst_len;
        h->dst = NULL;
        h->dst_cap = h->dst_len = 0;
        if (r < 0)
                return r;
        return (ssize_t) got;
}

/* Only set when the server takes ranges. */
static int http_seek(void *ctx, uint64_t offset) {
        Http *h = ctx;
        uint64_t pos;

        if (h->failed)
                return h->failed;
        pos = h->recv - spill_avail(h);
        if (offset == pos)
                return 0;
        if (offset > h->total)
                return fail(h, -EINVAL, "%s: cannot seek to byte %" PRIu64 ": the file has %" PRIu64 " bytes", h->shown,
                            offset, h->total);
        if (offset > pos && offset - pos <= SEEK_DISCARD_MAX) {
                uint64_t skip = offset - pos;
                while (skip > 0) {
                        size_t k = spill_avail(h) < skip ? spill_avail(h) : (size_t) skip;
                        spill_drop(h, k);
                        skip -= k;
                        if (skip == 0)
                                break;
                        int r = pump(h);
                        if (r < 0)
                                return r;
                        if (h->eof && spill_avail(h) == 0)
                                return fail(h, -EIO, "%s: the file ended at byte %" PRIu64 ", before byte %" PRIu64,
                                            h->shown, h->recv, offset);
                }
                return 0;
        }
        /* Far ahead, or back: ask again from there. */
        h->spill_pos = h->spill_len = 0;
        h->resumed_in_a_row = 0;
        if (offset == h->total) {
                transfer_stop(h);
                h->recv = offset;
                h->eof = true;
                return 0;
        }
        return transfer_start(h, offset);
}

static const char *http_error(void *ctx) {
        Http *h = ctx;
        return h->msg;
}

static void http_free(Http *h) {
        if (!h)
                return;
        transfer_stop(h);
        if (h->multi)
                curl_multi_cleanup(h->multi);
        curl_slist_free_all(h->if_range);
        ssh_setup_free(h->ssh);
        free(h->spill);
        free(h->shown);
        free(h->url);
        http_context_unref(h->ctx);
        free(h);
}

static void http_close(void *ctx) {
        http_free(ctx);
}

static void http_freep(Http **h) {
        http_free(*h);
}

/* Starts the request and waits for its first byte, or its end (HEAD, an
 * empty body, an error). */
static int http_begin(const char *url, HttpContext *http, bool head, Http **ret, Diag *d) {
        _cleanup_(http_freep) Http *h = NULL;

        pthread_once(&global_once, global_init);
        if (global_result != CURLE_OK)
                return diag_set(d, -EIO, "cannot set up libcurl: %s", curl_easy_strerror(global_result));
        h = calloc(1, sizeof(*h));
        if (!h || !(h->url = strdup(url)) || !(h->shown = redact_passwords_dup(url)) ||
            !(h->spill = malloc(SPILL_SIZE)) || !(h->multi = curl_multi_init()))
                return diag_set(d, -ENOMEM, "out of memory");
        h->ctx = http_context_ref(http);
        h->cfg = http ? http : &defaults;
        h->head = head;
        h->proto = strncmp(url, "ftp://", 6) == 0    ? PROTO_FTP
                   : strncmp(url, "sftp://", 7) == 0 ? PROTO_SFTP
                                                     : PROTO_HTTP;
        if (h->proto == PROTO_SFTP && !(h->ssh = ssh_setup_new(url)))
                return diag_set(d, -ENOMEM, "out of memory");
        /* libcurl takes ";type=" in an ftp URL as the transfer mode: 'd'
         * lists the directory and 'a' transfers text, bytes other than the
         * file's; and a name looked for beside the image ("x.img;type=i"
         * plus ".bmap") would still fetch x.img. Only binary is right. */
        if (h->proto == PROTO_FTP && strstr(url, ";type="))
                return diag_set(d, -EINVAL,
                                "%s: ';type=' in an ftp:// URL changes how the file is transferred (a listing or "
                                "text): remove it, images are read as they are stored",
                                h->shown);
        int r = transfer_start(h, 0);
        if (r >= 0)
                r = pump(h);
        if (r < 0 && !h->failed)
                h->failed = r;
        if (h->failed)
                diag_set(d, h->failed, "%s", h->msg);
        /* Also on failure: http_exists looks at the status. */
        *ret = TAKE_PTR(h);
        return (*ret)->failed;
}

int input_http_open(const char *url, HttpContext *http, Input *ret, Diag *d) {
        Http *h = NULL;
        int r = http_begin(url, http, false, &h, d);
        if (r < 0) {
                http_free(h);
                return r;
        }
        *ret = (Input) {
                .name = h->shown,
                .ctx = h,
                .read = http_read,
                .seek = h->ranges ? http_seek : NULL,
                .error = http_error,
                .close = http_close,
                .size = h->total,
        };
        return 0;
}

int http_exists(const char *url, HttpContext *http, Diag *d) {
        Http *h = NULL;
        int r = http_begin(url, http, true, &h, d);
        /* A server that refuses HEAD (405, 501, or a 403 for a URL signed
         * for GET only) may still serve a GET. */
        bool retry = r < 0 && h && h->status >= 400 && r != -ENOENT;
        http_free(h);
        if (retry) {
                h = NULL;
                r = http_begin(url, http, false, &h, d);
                http_free(h);
        }
        if (r == -ENOENT)
                return 0;
        return r < 0 ? r : 1;
}
