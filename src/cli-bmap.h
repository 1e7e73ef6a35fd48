/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Bmaps and image sources for the commands that need them (copy, verify,
 * scan, create): find and load the bmap of an image, open its source, read
 * a target back against the bmap, write a rendered bmap. Each says what
 * went wrong and returns an exit status: EXIT_OK when it succeeded, except
 * cli_source_option, which reads the command line (CLI_CONTINUE, cli.h). */

#include <stddef.h>

struct Bmap;
struct FdSource;
struct HttpContext;
struct HttpOptions;
struct Input;
struct SigOptions;

/* With member (--member), the member's bmap beside image comes first. */
int cli_find_bmap(const char *image, const char *member, const char *given, struct HttpContext *http, char **ret);
/* As cli_find_bmap, but finding none is no error: *ret is then NULL and
 * tried (tried_len bytes) lists where it was looked for; the caller may
 * then do without one (an Android sparse image's chunks are its map) or
 * say so with cli_no_bmap_error. */
int cli_look_for_bmap(const char *image, const char *member, const char *given, struct HttpContext *http, char **ret,
                      char *tried, size_t tried_len);
void cli_no_bmap_error(const char *image, const char *tried);
/* Opens the bmap (bmap_open: its signature checked, bmap-sig.h, and parsed)
 * and says what it found. */
int cli_load_bmap(const char *path, const struct SigOptions *sig, struct HttpContext *http, struct Bmap *ret);
/* A file, - for stdin, or a URL: the Input then reads src->fd or the URL. */
int cli_open_source(const char *image, struct HttpContext *http, struct FdSource *src, struct Input *ret);

/* The options copy and verify share for where the bmap comes from and how
 * it is trusted (CLI_OPT_BMAP_SIG, _KEYRING, _FINGERPRINT, _NO_SIG_VERIFY,
 * _CA_FILE, _HTTP_TIMEOUT): takes option id's value into sig or http;
 * CLI_CONTINUE, or the usage exit status. */
int cli_source_option(int id, const char *arg, struct SigOptions *sig, struct HttpOptions *http);
/* Makes the HttpContext every transfer of the command then takes. */
int cli_http_setup(const struct HttpOptions *o, struct HttpContext **ret);
/* Reads dest back and checks every range of the bmap. */
int cli_verify_target(const struct Bmap *b, const char *bmap_path, const char *dest);

/* Writes a rendered bmap to path (through a temporary file and a rename) or
 * to stdout. */
int cli_write_bmap(const char *path, const char *text, size_t len);
