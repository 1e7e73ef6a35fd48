/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Bmaps and image sources for the commands that need them (copy, verify,
 * scan, create): find and load the bmap of an image, open its source, read
 * a target back against the bmap, write a rendered bmap. Each says what
 * went wrong and returns an exit status: EXIT_OK when it succeeded, except
 * cli_source_option, which reads the command line (CLI_CONTINUE, cli.h). */

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

struct ArchiveBmap;
struct Bmap;
struct BmapOpenInfo;
struct FdSource;
struct HttpContext;
struct HttpOptions;
struct Input;
struct SigOptions;
struct Stream;

/* With member (--member), the member's bmap beside image comes first. */
int cli_find_bmap(const char *image, const char *member, const char *given, struct HttpContext *http, char **ret);
/* Opens the bmap (bmap_open: its signature checked, bmap-sig.h, and parsed)
 * and says what it found. */
int cli_load_bmap(const char *path, const struct SigOptions *sig, struct HttpContext *http, struct Bmap *ret);
/* Where copy and verify get the image and its bmap. */
typedef struct CliImage {
        const char *image;             /* IMAGE: a path, - for stdin, or a URL */
        const char *member;            /* --member, or NULL */
        const char *bmap;              /* --bmap, or NULL */
        bool nobmap;                   /* --nobmap: only the image */
        bool need_stream;              /* open the image even with a bmap from outside it */
        const struct SigOptions *sig;
        const char *after;             /* the end of an error line: "; nothing was written", or "" */
} CliImage;

/* The image and its bmap: --bmap, else the bmap beside the image
 * (cli_find_bmap's names), else the one inside the image's own tar or zip
 * (stream.h, ArchiveBmap), which needs the image opened first; the
 * stream's size limit is then set from that bmap. Every bmap goes through
 * bmap_open's signature and checksum rules. *ret_stream is NULL when the
 * image was not opened (a bmap from outside, !need_stream);
 * *ret_bmap_name says where the bmap came from ("disk.zip member
 * disk.img.bmap" for one inside); nothing is set with nobmap but the
 * stream. An Android sparse image with no bmap anywhere is no error: its
 * chunks are its map (stream_simg_info); *ret_bmap_name is then NULL. */
int cli_open_image(const CliImage *o, struct HttpContext *http, struct FdSource *src, struct Input *in,
                   struct Stream **ret_stream, struct Bmap *ret_bmap, char **ret_bmap_name);
/* "disk.zip member disk.img.bmap" (passwords of a URL hidden), or NULL
 * when out of memory. */
char *cli_archive_bmap_name(const char *image, const struct ArchiveBmap *ab);
/* For info: the bmap inside the tar or zip at path (a local file, read
 * through *fd from its start), opened by bmap_open_bytes with sig and
 * allow_bad_file_checksum: 1 with *ret_name ("disk.zip member
 * disk.img.bmap") and *ret_image_member set; 0 when path is no archive
 * holding a bmap for its image (an image, then); a negative errno with a
 * message in d when that bmap does not open. */
int cli_archive_bmap_open(const char *path, int *fd, const struct SigOptions *sig, bool allow_bad_file_checksum,
                          struct Bmap *ret, struct BmapOpenInfo *ret_info, char **ret_name, char **ret_image_member,
                          Diag *d);
/* A file, - for stdin, or a URL: the Input then reads src->fd or the URL. */
int cli_open_source(const char *image, struct HttpContext *http, struct FdSource *src, struct Input *ret);

/* The options copy and verify share for where the bmap comes from and how
 * it is trusted (CLI_OPT_BMAP_SIG, _KEYRING, _FINGERPRINT, _NO_SIG_VERIFY,
 * _CA_FILE, _HTTP_TIMEOUT): takes option id's value into sig or http;
 * CLI_CONTINUE, or the usage exit status. */
int cli_source_option(int id, const char *arg, struct SigOptions *sig, struct HttpOptions *http);
/* Makes the HttpContext every transfer of the command then takes. */
int cli_http_setup(const struct HttpOptions *o, struct HttpContext **ret);
/* Reads dest back and checks every range of the bmap. Each bad range is a
 * line on stdout (on stderr when JSON goes to stdout) and, with json, a
 * "mismatch" line there; the error said is also put in ret_error (when not
 * NULL, "" on success), and the bytes compared with their checksums in
 * ret_checked (when not NULL; 0 when DEST could not be read in full). */
struct CliProgress;
int cli_verify_target(const struct Bmap *b, const char *bmap_path, const char *dest, struct CliProgress *json,
                      char *ret_error, size_t error_len, uint64_t *ret_checked);

/* Writes a rendered bmap to path (through a temporary file and a rename) or
 * to stdout. */
int cli_write_bmap(const char *path, const char *text, size_t len);
