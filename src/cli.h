/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <getopt.h>
#include <stdbool.h>

#include <stdint.h>

#include "util.h"

/* Exit statuses, as documented in the README. */
enum {
        EXIT_OK = 0,
        EXIT_FAILED = 1,
        EXIT_USAGE = 2,
};

/* -1 quiet, 0 normal, 1 verbose. */
extern int cli_verbosity;
extern const char *cli_command;

void log_error(const char *fmt, ...) _printf_(1, 2);
void log_warning(const char *fmt, ...) _printf_(1, 2);
void log_info(const char *fmt, ...) _printf_(1, 2);
void log_verbose(const char *fmt, ...) _printf_(1, 2);
/* A usage error: one line on stderr; returns EXIT_USAGE. */
int usage_error(const char *fmt, ...) _printf_(1, 2);

/* The options every subcommand takes; put CLI_COMMON_OPTIONS into each
 * long-option table and call cli_common_option() from its default case. */
#define CLI_COMMON_SHORT ":hqv"
#define CLI_COMMON_OPTIONS                                                                                   \
        { "help", no_argument, NULL, 'h' }, { "quiet", no_argument, NULL, 'q' },                           \
                { "verbose", no_argument, NULL, 'v' }, { "version", no_argument, NULL, 'V' }
/* Returns -1 when the option was handled and parsing goes on, or an exit
 * status to return at once. */
int cli_common_option(int c, char **argv, void (*help)(void));

typedef struct Command {
        const char *name;
        const char *summary;
        int (*run)(int argc, char **argv);
} Command;

/* After option parsing: the one positional argument (named what in the
 * usage error). Returns -1 with *ret set, or the usage exit status. */
int cli_one_argument(int argc, char **argv, const char *what, const char **ret);
/* Refuses an output path that names the input file itself. Returns -1 when
 * it does not, else an exit status. */
int cli_refuse_output_is_input(const char *output, const char *input);

/* Writes a rendered bmap to path (through a temporary file and a rename) or
 * to stdout, and says what went wrong; returns an exit status. */
int cli_write_bmap(const char *path, const char *text, size_t len);

/* Opens an image (read-only, or for writing when it will be punched) and
 * scans it; says what went wrong. Returns an exit status. */
struct Scan;
struct ScanOptions;
int cli_open_and_scan(const char *path, bool writable, const struct ScanOptions *o, int *ret_fd, uint64_t *ret_size,
                      struct Scan *ret);
/* --map REGION for scan, info and sparse: -1 when fine, else an exit status. */
#define CLI_MAP_HELP                                                                                       \
        "      --map REGION     map REGION in full whatever the filesystems say (repeatable):\n"           \
        "                       START:LENGTH in bytes (K, M, G suffixes), part:N, label:NAME\n"
int cli_map_option(const char *arg, struct ScanOptions *o);
/* Parses --block-size; -1 when fine, else an exit status. */
int cli_parse_block_size(const char *s, uint64_t *ret);
/* Punches holes over what blocks does not map (or reports it, dry_run). */
struct Extents;
int cli_punch(int fd, const char *path, uint64_t size, uint64_t block_size, const struct Extents *blocks,
              bool dry_run);

/* copy and verify: find and load the bmap of an image, open its source
 * (a file, - for stdin, or a URL: the Input then reads *ret_fd or the
 * URL), and read a target back against the bmap. Each returns an exit
 * status. */
struct Bmap;
struct SigOptions;
struct Input;
/* With member (--member), the member's bmap beside image comes first. */
struct HttpContext;
int cli_find_bmap(const char *image, const char *member, const char *given, struct HttpContext *http, char **ret);
/* Opens the bmap (bmap_open: its signature checked, bmap-sig.h, and parsed)
 * and says what it found. */
int cli_load_bmap(const char *path, const struct SigOptions *sig, struct HttpContext *http, struct Bmap *ret);
struct FdSource;
int cli_open_source(const char *image, struct HttpContext *http, struct FdSource *src, struct Input *ret);

/* The options copy and verify share for where the bmap comes from and how
 * it is trusted: --bmap-sig, --keyring, --fingerprint, --no-sig-verify,
 * --ca-file, --http-timeout (option values above any short option's).
 * cli_source_option takes one into sig or http: -1 when it did, -2 when c
 * is none of them, else the usage exit status. cli_http_setup makes the
 * HttpContext every transfer of the command then takes (-1, or an exit
 * status). */
enum {
        CLI_OPT_CA_FILE = 0x200,
        CLI_OPT_HTTP_TIMEOUT,
        CLI_OPT_BMAP_SIG,
        CLI_OPT_KEYRING,
        CLI_OPT_FINGERPRINT,
        CLI_OPT_NO_SIG_VERIFY,
};
#define CLI_SOURCE_OPTIONS                                                                                   \
        { "bmap-sig", required_argument, NULL, CLI_OPT_BMAP_SIG },                                           \
                { "keyring", required_argument, NULL, CLI_OPT_KEYRING },                                     \
                { "fingerprint", required_argument, NULL, CLI_OPT_FINGERPRINT },                             \
                { "no-sig-verify", no_argument, NULL, CLI_OPT_NO_SIG_VERIFY },                               \
                { "ca-file", required_argument, NULL, CLI_OPT_CA_FILE },                                     \
                { "http-timeout", required_argument, NULL, CLI_OPT_HTTP_TIMEOUT }
struct HttpOptions;
int cli_source_option(int c, const char *arg, struct SigOptions *sig, struct HttpOptions *http);
int cli_http_setup(const struct HttpOptions *o, struct HttpContext **ret);
int cli_verify_target(const struct Bmap *b, const char *bmap_path, const char *dest);

int cmd_copy(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_create(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_scan(int argc, char **argv);
int cmd_sparse(int argc, char **argv);
