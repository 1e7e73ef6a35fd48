/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The command layer's common ground: exit statuses, logging (the only
 * printing in the tool), and the command and option tables that drive
 * option parsing, every --help, the man pages and the shell completions
 * (src/gen-doc.c exports them to doc/render.py). */

#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "util.h"

/* Exit statuses, as documented in the README. */
enum {
        EXIT_OK = 0,
        EXIT_FAILED = 1,
        EXIT_USAGE = 2,
};

/* Two conventions, one per phase. While the command line is read (options,
 * arguments), EXIT_OK means "stop now, successfully" (--help, --version),
 * so those helpers return CLI_CONTINUE when all is well and the command
 * goes on, anything else being the exit status to return at once. The steps
 * of the work after that (cli-bmap.h, cli-scan.h) return an exit status:
 * EXIT_OK when the step succeeded. */
#define CLI_CONTINUE (-1)

/* -1 quiet, 0 normal, 1 verbose. */
extern int cli_verbosity;
/* The running command's name, for messages; NULL before it is known. */
extern const char *cli_command;

void log_error(const char *fmt, ...) _printf_(1, 2);
/* log_error, and the line as shown (cli_last_error) copied to ret_error
 * (may be NULL) for a caller that reports it again (--progress=json);
 * returns EXIT_FAILED. */
int log_error_kept(char *ret_error, size_t len, const char *fmt, ...) _printf_(3, 4);
void log_warning(const char *fmt, ...) _printf_(1, 2);
void log_info(const char *fmt, ...) _printf_(1, 2);
void log_verbose(const char *fmt, ...) _printf_(1, 2);
/* A usage error: one line on stderr; returns EXIT_USAGE. */
int usage_error(const char *fmt, ...) _printf_(1, 2);
/* The last line log_error or usage_error said, as shown but without its
 * "bmapscan: " (or "bmapscan COMMAND: ... (see --help)") frame; "" when
 * none was. */
const char *cli_last_error(void);

/* SIGINT or SIGTERM once one arrived while caught, else 0: the cancel flag
 * copy and verify hand to the transfers, the decoders and the copy. */
extern volatile sig_atomic_t cli_interrupted;
/* From here on SIGINT and SIGTERM only set cli_interrupted, so that work
 * under way stops cleanly (a temporary file or GnuPG home removed, device
 * settings restored) and says where it stopped. */
void cli_catch_signals(void);
/* SIGINT and SIGTERM do again what they did before cli_catch_signals, not
 * what SIG_DFL does: one the tool was started with ignored (as a script's
 * background jobs are) is ignored again. */
void cli_release_signals(void);
/* "SIGINT" or "SIGTERM", for the message of an interrupted command. */
const char *cli_interrupted_name(void);

/* ---------------------------------------------------------------- tables */

/* Every option of every command, as the command's switch sees it. The
 * first four are the global rows, which the parser handles itself. */
typedef enum CliOptionId {
        CLI_OPT_HELP = 1,
        CLI_OPT_QUIET,
        CLI_OPT_VERBOSE,
        CLI_OPT_VERSION,
        CLI_OPT_OUTPUT,
        CLI_OPT_SPARSE,
        CLI_OPT_NO_CHECKSUM,
        CLI_OPT_BLOCK_SIZE,
        CLI_OPT_JSON,
        CLI_OPT_MAP,
        CLI_OPT_DRY_RUN,
        CLI_OPT_BMAP,
        CLI_OPT_NOBMAP,
        CLI_OPT_NO_VERIFY,
        CLI_OPT_VERIFY_AFTER,
        CLI_OPT_REMOVABLE_DEVICE,
        CLI_OPT_DISCARD,
        CLI_OPT_PSPLASH_PIPE,
        CLI_OPT_MEMBER,
        CLI_OPT_BMAP_SIG,
        CLI_OPT_KEYRING,
        CLI_OPT_FINGERPRINT,
        CLI_OPT_NO_SIG_VERIFY,
        CLI_OPT_CA_FILE,
        CLI_OPT_HTTP_TIMEOUT,
        CLI_OPT_SCAN,
        CLI_OPT_SCAN_BMAP,
        CLI_OPT_SKIP_IDENTICAL,
        CLI_OPT_RETRIES,
        CLI_OPT_PROGRESS,
        CLI_OPT_PROGRESS_FD,
        CLI_OPT_PROGRESS_FILE,
        CLI_OPT_SIMG,
        CLI_OPT_SIMG_BLOCK_SIZE,
        CLI_OPT_SIMG_CRC,
} CliOptionId;

/* What a value is, for the shell completions. */
typedef enum CliValue {
        CLI_VALUE_NONE,         /* a flag, or no operand */
        CLI_VALUE_TEXT,         /* free text: nothing to offer */
        CLI_VALUE_FILE,         /* a file (or a URL) */
        CLI_VALUE_DEST,         /* a block device (from /sys/block) or a file */
        CLI_VALUE_WORDS,        /* one of CliOption.words */
} CliValue;

typedef struct CliOption {
        CliOptionId id;
        const char *long_name;
        char short_name;        /* 0: none */
        const char *arg;        /* the value's name in help (FILE, N...); NULL: a flag */
        CliValue value;
        const char *words;      /* CLI_VALUE_WORDS: the words, space separated */
        bool repeatable;
        const char *help;       /* one sentence, wrapped when shown */
} CliOption;

typedef struct CliCommand {
        const char *name;
        const char *summary;    /* one line: the command list and the man page's NAME */
        const char *operands;   /* as the synopsis shows them */
        CliValue first, rest;   /* the first operand, and every later one */
        const char *description; /* --help's paragraphs, separated by "\n\n", wrapped when shown */
        const CliOption *const *options; /* NULL-terminated; the global rows are added */
        int (*run)(const struct CliCommand *self, int argc, char **argv);
} CliCommand;

/* commands.c: the command table, and the global rows every command takes
 * (also accepted before the command). */
extern const CliCommand cli_commands[];
extern const size_t cli_n_commands;
extern const CliOption *const cli_global_options[];

/* ---------------------------------------------------------------- parsing */

/* Options are at most this many per command, global rows included. */
#define CLI_MAX_OPTIONS 32

/* getopt_long driven by one command's table (command NULL: the global rows
 * before the command, stopping at the first operand). */
typedef struct CliParser {
        const CliCommand *command;
        int argc;
        char **argv;
        const char *arg;        /* the value of the option just returned */
        int status;             /* the exit status, once cli_next_option returned < 0 */
        /* Built from the table on the first call. */
        size_t n;
        const CliOption *rows[CLI_MAX_OPTIONS];
        struct option longopts[CLI_MAX_OPTIONS + 1];
        char shortopts[3 * CLI_MAX_OPTIONS + 3];
} CliParser;

/* Returns the id of the next option of the command (> 0), with its value
 * in p->arg; 0 when the options are done (the operands start at optind);
 * or < 0 when the command must stop and return p->status: --help or
 * --version was shown (EXIT_OK), or a usage error was reported. -q and -v
 * are handled here. */
int cli_next_option(CliParser *p);

/* The help of a command (NULL: the tool's, with the command list), on stdout. */
void cli_print_help(const CliCommand *command);

/* After option parsing: the one positional argument (named what in the
 * usage error). Returns CLI_CONTINUE with *ret set, or the usage exit
 * status. */
int cli_one_argument(int argc, char **argv, const char *what, const char **ret);
/* Refuses an output path that names the input file itself: CLI_CONTINUE
 * when it does not, else an exit status. */
int cli_refuse_output_is_input(const char *output, const char *input);
/* Parses --block-size: CLI_CONTINUE when fine, else an exit status. */
int cli_parse_block_size(const char *s, uint64_t *ret);
/* --map REGION for scan, info and sparse: CLI_CONTINUE when fine, else an
 * exit status. */
struct ScanOptions;
int cli_map_option(const char *arg, struct ScanOptions *o);
