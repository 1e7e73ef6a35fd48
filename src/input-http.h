/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <signal.h>
#include <stdbool.h>

#include "stream.h"
#include "util.h"

/* How the HTTP(S) transfers of one command behave, as the user asked. */
typedef struct HttpOptions {
        /* A PEM file of CA certificates trusted in addition to the system's. */
        const char *ca_file;
        /* Seconds without a byte (while one is awaited) before a transfer
         * counts as stalled; 0 means HTTP_STALL_TIMEOUT_DEFAULT. */
        unsigned stall_timeout;
        /* When it becomes non-zero, a wait ends with -EINTR within a quarter
         * of a second (a SIGINT during a stall). */
        const volatile sig_atomic_t *cancel;
        /* Told (one line, from the thread that reads) when a transfer is
         * resumed, so that a user sees why the copy paused; may be NULL. */
        void (*notice)(const char *line);
} HttpOptions;

#define HTTP_STALL_TIMEOUT_DEFAULT 30u

/* HttpOptions made ready for transfers: the CA file read and merged with
 * the system bundle once, not at each request. Every function
 * that transfers takes one; NULL means the defaults (the system's CAs,
 * HTTP_STALL_TIMEOUT_DEFAULT, no cancel, no notices). Each Input opened
 * with it holds a reference, so it may be unref'd before them. Read-only
 * once made but for its reference count, which only the thread that opens
 * and closes Inputs touches: the reader thread of a copy uses it beside the
 * others. */
typedef struct HttpContext HttpContext;

/* Reads the extra CA file (-errno with a message when it cannot be used). */
int http_context_new(const HttpOptions *o, HttpContext **ret, Diag *d);
HttpContext *http_context_ref(HttpContext *c);
/* Accepts NULL; returns NULL. */
HttpContext *http_context_unref(HttpContext *c);
void http_context_unrefp(HttpContext **c);
#define _cleanup_http_context_ _cleanup_(http_context_unrefp)

/* An Input over an http:// or https:// URL: a GET streamed in bounded
 * memory (about 1 MiB of buffer besides libcurl's), with redirects
 * followed (http and https only), TLS verified, credentials from the URL
 * or ~/.netrc, and the proxy environment variables honoured. It returns
 * once the response has started, so a missing file (-ENOENT, HTTP 404 or
 * 410), refused credentials (-EACCES), an unreachable or untrusted server
 * are told before anything is written; the message names the URL with any
 * password hidden.
 *
 * size is the entity's length when the server gives it. When the server
 * takes byte ranges (Accept-Ranges: bytes, a length, and an ETag or
 * Last-Modified to make them conditional with If-Range), a transfer that
 * breaks or stalls is resumed where it stopped, a few times, and seek
 * skips far ahead (or back) with a range request; otherwise seek is NULL,
 * and a break is an error naming the byte offset. A body shorter than its
 * length is an error, never an end. The error callback gives the one-line
 * message of the last failure. Free with input_close(). */
int input_http_open(const char *url, HttpContext *http, Input *ret, Diag *d);

/* 1 when the server has the URL, 0 when it answers 404 or 410, or a
 * negative errno with a message. Asks with HEAD, and with GET when the
 * server refuses HEAD. */
int http_exists(const char *url, HttpContext *http, Diag *d);
