/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Logging, usage errors, option parsing from the tables of commands.c and
 * the --help texts rendered from the same tables, and the small option
 * helpers several commands share. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "config.h"
#include "location.h"
#include "scan.h"

int cli_verbosity = 0;
const char *cli_command = NULL;

/* The message as it may be shown, malloc'ed; NULL when out of memory.
 * Whatever message names a URL, its password stays off the screen. One
 * line, and nothing a file name, a server, a key's user id or an argument
 * could use to move the cursor or recolour the terminal; the text reports
 * show names the same way. */
_printf_(1, 0) static char *shown_dup(const char *fmt, va_list ap) {
        _cleanup_free_ char *line = NULL, *redacted = NULL;

        if (vasprintf(&line, fmt, ap) < 0 || !(redacted = redact_passwords_dup(line)))
                return NULL;
        return display_escape(redacted);
}

/* The last error line, for --progress=json's end lines of a command that
 * failed before its work started (the line was said deep in a helper). */
static char last_error[1024];

static void keep_error(const char *line) {
        snprintf(last_error, sizeof(last_error), "%s", line ? line : "out of memory");
}

const char *cli_last_error(void) {
        return last_error;
}

_printf_(3, 0) static void vlog(const char *prefix, bool keep, const char *fmt, va_list ap) {
        _cleanup_free_ char *shown = shown_dup(fmt, ap);

        if (keep)
                keep_error(shown);
        if (!shown) {
                fputs("bmapscan: out of memory\n", stderr);
                return;
        }
        fprintf(stderr, "%s%s\n", prefix, shown);
}

void log_error(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vlog("bmapscan: ", true, fmt, ap);
        va_end(ap);
}

int log_error_kept(char *ret_error, size_t len, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vlog("bmapscan: ", true, fmt, ap);
        va_end(ap);
        if (ret_error && len > 0)
                snprintf(ret_error, len, "%s", last_error);
        return EXIT_FAILED;
}

void log_warning(const char *fmt, ...) {
        va_list ap;
        if (cli_verbosity < 0)
                return;
        va_start(ap, fmt);
        vlog("bmapscan: warning: ", false, fmt, ap);
        va_end(ap);
}

void log_info(const char *fmt, ...) {
        va_list ap;
        if (cli_verbosity < 0)
                return;
        va_start(ap, fmt);
        vlog("", false, fmt, ap);
        va_end(ap);
}

void log_verbose(const char *fmt, ...) {
        va_list ap;
        if (cli_verbosity < 1)
                return;
        va_start(ap, fmt);
        vlog("", false, fmt, ap);
        va_end(ap);
}

int usage_error(const char *fmt, ...) {
        _cleanup_free_ char *what = NULL;
        va_list ap;

        /* Usage errors quote what was typed: shown as every message is. */
        va_start(ap, fmt);
        what = shown_dup(fmt, ap);
        va_end(ap);
        keep_error(what);
        if (!what)
                fputs("bmapscan: out of memory\n", stderr);
        else if (cli_command)
                fprintf(stderr, "bmapscan %s: %s (see 'bmapscan %s --help')\n", cli_command, what, cli_command);
        else
                fprintf(stderr, "bmapscan: %s (see 'bmapscan --help')\n", what);
        return EXIT_USAGE;
}

/* ---------------------------------------------------------------- signals */

volatile sig_atomic_t cli_interrupted = 0;
static struct sigaction saved_int, saved_term;
static bool caught = false;

static void on_signal(int sig) {
        cli_interrupted = sig;
}

void cli_catch_signals(void) {
        struct sigaction sa = { .sa_handler = on_signal };

        if (caught)
                return;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, &saved_int);
        sigaction(SIGTERM, &sa, &saved_term);
        caught = true;
}

void cli_release_signals(void) {
        if (!caught)
                return;
        sigaction(SIGINT, &saved_int, NULL);
        sigaction(SIGTERM, &saved_term, NULL);
        caught = false;
}

const char *cli_interrupted_name(void) {
        return cli_interrupted == SIGTERM ? "SIGTERM" : "SIGINT";
}

/* ---------------------------------------------------------------- help */

#define HELP_WIDTH 79
/* The option column is as wide as the widest option, up to this; a wider
 * one has its help on the next line. */
#define HELP_MAX_COLUMN 28

/* Prints text from column col (already reached) on, breaking lines at
 * spaces before HELP_WIDTH and starting each further line at column
 * indent; "\n" in text starts a new line, "\n\n" leaves an empty one. */
static void print_wrapped(const char *text, size_t indent, size_t col) {
        const char *p = text;
        bool line_empty = true;

        while (*p) {
                if (*p == '\n') {
                        putchar('\n');
                        p++;
                        if (*p && *p != '\n')
                                printf("%*s", (int) indent, "");
                        col = indent;
                        line_empty = true;
                        continue;
                }
                if (*p == ' ') {
                        p++;
                        continue;
                }
                size_t n = strcspn(p, " \n");
                if (!line_empty && col + 1 + n > HELP_WIDTH) {
                        printf("\n%*s", (int) indent, "");
                        col = indent;
                        line_empty = true;
                }
                if (!line_empty) {
                        putchar(' ');
                        col++;
                }
                fwrite(p, 1, n, stdout);
                col += n;
                p += n;
                line_empty = false;
        }
        putchar('\n');
}

/* "-o, --output FILE" or "    --sparse", without the leading two spaces. */
static void option_left(const CliOption *o, char *buf, size_t size) {
        char s[8] = "    ";
        if (o->short_name)
                snprintf(s, sizeof(s), "-%c, ", o->short_name);
        snprintf(buf, size, "%s--%s%s%s", s, o->long_name, o->arg ? " " : "", o->arg ? o->arg : "");
}

static void print_options(const CliOption *const *lists[], size_t n_lists) {
        size_t width = 0;
        char left[128];

        for (size_t l = 0; l < n_lists; l++)
                for (const CliOption *const *o = lists[l]; o && *o; o++) {
                        option_left(*o, left, sizeof(left));
                        size_t w = 2 + strlen(left) + 2;
                        if (w <= HELP_MAX_COLUMN && w > width)
                                width = w;
                }
        for (size_t l = 0; l < n_lists; l++)
                for (const CliOption *const *o = lists[l]; o && *o; o++) {
                        char help[512];
                        option_left(*o, left, sizeof(left));
                        printf("  %s", left);
                        size_t col = 2 + strlen(left);
                        if (col + 2 > width) {
                                printf("\n%*s", (int) width, "");
                        } else
                                printf("%*s", (int) (width - col), "");
                        snprintf(help, sizeof(help), "%s%s", (*o)->help, (*o)->repeatable ? " (repeatable)" : "");
                        print_wrapped(help, width, width);
                }
}

void cli_print_help(const CliCommand *c) {
        const CliOption *const *global[] = { cli_global_options };

        if (!c) {
                printf("Usage: bmapscan [-q|-v] COMMAND [OPTIONS] ARGS...\n"
                       "\n"
                       "Make raw disk images cheap to store and fast and safe to flash.\n"
                       "\n"
                       "Commands:\n");
                for (size_t i = 0; i < cli_n_commands; i++) {
                        printf("  %-7s ", cli_commands[i].name);
                        print_wrapped(cli_commands[i].summary, 10, 10);
                }
                printf("\nOptions:\n");
                print_options(global, 1);
                printf("\n"
                       "Exit status: 0 success, 1 the operation failed, 2 usage error.\n"
                       "'bmapscan COMMAND --help' describes each command; 'man bmapscan' has more.\n");
                return;
        }

        /* The synopsis: every option of the command, then its operands;
         * lines break between options, never inside one. */
        size_t indent = strlen("Usage: bmapscan ") + strlen(c->name) + 1, col = indent;
        printf("Usage: bmapscan %s", c->name);
        for (const CliOption *const *o = c->options;; o++) {
                char word[128];
                if (*o)
                        snprintf(word, sizeof(word), "[--%s%s%s]%s", (*o)->long_name, (*o)->arg ? " " : "",
                                 (*o)->arg ? (*o)->arg : "", (*o)->repeatable ? "..." : "");
                else
                        snprintf(word, sizeof(word), "%s", c->operands);
                if (col > indent && col + 1 + strlen(word) > HELP_WIDTH) {
                        printf("\n%*s", (int) indent - 1, "");
                        col = indent - 1;
                }
                printf(" %s", word);
                col += 1 + strlen(word);
                if (!*o)
                        break;
        }
        putchar('\n');
        printf("\n");
        print_wrapped(c->description, 0, 0);
        printf("\nOptions:\n");
        const CliOption *const *lists[] = { c->options, cli_global_options };
        print_options(lists, ELEMENTSOF(lists));
        printf("\nExit status: 0 success, 1 the operation failed, 2 usage error.\n"
               "'man bmapscan-%s' has more.\n",
               c->name);
}

/* ---------------------------------------------------------------- parsing */

/* Long options without a short one come back from getopt_long as this
 * plus their row. */
#define LONG_ONLY_BASE 0x100

static void parser_build(CliParser *p) {
        const CliOption *const *lists[] = { p->command ? p->command->options : NULL, cli_global_options };
        char *s = p->shortopts;

        /* Before the command, parsing stops at the first operand (the
         * command); a command's options and operands may be mixed. */
        if (!p->command)
                *s++ = '+';
        /* opterr is 0 too: each usage error is our one line, not getopt's. */
        *s++ = ':';
        p->n = 0;
        for (size_t l = 0; l < ELEMENTSOF(lists); l++)
                for (const CliOption *const *o = lists[l]; o && *o; o++) {
                        if (p->n >= CLI_MAX_OPTIONS)
                                abort(); /* a table too long for CLI_MAX_OPTIONS: raise it */
                        p->rows[p->n] = *o;
                        p->longopts[p->n] = (struct option) {
                                .name = (*o)->long_name,
                                .has_arg = (*o)->arg ? required_argument : no_argument,
                                .val = (*o)->short_name ? (*o)->short_name : LONG_ONLY_BASE + (int) p->n,
                        };
                        if ((*o)->short_name) {
                                *s++ = (*o)->short_name;
                                if ((*o)->arg)
                                        *s++ = ':';
                        }
                        p->n++;
                }
        *s = 0;
        p->longopts[p->n] = (struct option) {};
        opterr = 0;
        /* 0, not 1: glibc starts over (the argv of a command is not the
         * argv main() parsed its global options in). */
        optind = 0;
}

static const CliOption *parser_row(const CliParser *p, int c) {
        if (c >= LONG_ONLY_BASE && (size_t) (c - LONG_ONLY_BASE) < p->n)
                return p->rows[c - LONG_ONLY_BASE];
        for (size_t i = 0; i < p->n; i++)
                if (p->rows[i]->short_name == c)
                        return p->rows[i];
        return NULL;
}

static int parser_stop(CliParser *p, int status) {
        p->status = status;
        return -1;
}

int cli_next_option(CliParser *p) {
        const CliOption *row;
        int c;

        if (p->n == 0)
                parser_build(p);
        for (;;) {
                c = getopt_long(p->argc, p->argv, p->shortopts, p->longopts, NULL);
                if (c < 0)
                        return 0;
                p->arg = optarg;
                if (c == '?') {
                        /* A long option is a word of its own, which optind
                         * has passed; an unknown short one may sit inside
                         * a word optind has not passed yet (-Zq), so only
                         * optopt names it. A long option given a value it
                         * does not take (--json=1) comes back with optopt
                         * set to its row's value. Named as written, without
                         * the value. */
                        const char *word = p->argv[optind - 1];
                        if (optopt && parser_row(p, optopt))
                                return parser_stop(p, usage_error("option '%.*s' takes no value",
                                                                  (int) strcspn(word, "="), word));
                        if (optopt)
                                return parser_stop(p, usage_error("unknown option '-%c'", optopt));
                        return parser_stop(p, usage_error("unknown option '%.*s'", (int) strcspn(word, "="), word));
                }
                if (c == ':') {
                        if (optopt && p->argv[optind - 1][1] != '-')
                                return parser_stop(p, usage_error("option '-%c' needs a value", optopt));
                        return parser_stop(p, usage_error("option '%s' needs a value", p->argv[optind - 1]));
                }
                row = parser_row(p, c);
                if (!row)
                        return parser_stop(p, usage_error("unhandled option"));
                switch (row->id) {
                case CLI_OPT_HELP:
                        cli_print_help(p->command);
                        return parser_stop(p, EXIT_OK);
                case CLI_OPT_VERSION:
                        printf("bmapscan %s\n", PACKAGE_VERSION);
                        return parser_stop(p, EXIT_OK);
                case CLI_OPT_QUIET:
                        cli_verbosity = -1;
                        break;
                case CLI_OPT_VERBOSE:
                        cli_verbosity = 1;
                        break;
                default:
                        return (int) row->id;
                }
        }
}

/* ---------------------------------------------------------------- helpers */

int cli_one_argument(int argc, char **argv, const char *what, const char **ret) {
        if (optind >= argc)
                return usage_error("no %s given", what);
        if (optind + 1 < argc)
                return usage_error("only one %s is taken", what);
        *ret = argv[optind];
        return CLI_CONTINUE;
}

int cli_refuse_output_is_input(const char *output, const char *input) {
        struct stat o, i;
        if (output && stat(output, &o) == 0 && stat(input, &i) == 0 && o.st_dev == i.st_dev && o.st_ino == i.st_ino) {
                log_error("the output '%s' is the image itself: choose another file", output);
                return EXIT_FAILED;
        }
        return CLI_CONTINUE;
}

int cli_parse_block_size(const char *s, uint64_t *ret) {
        uint64_t v;
        if (parse_size(s, &v) < 0 || v < 512 || v > (UINT64_C(1) << 30) || (v & (v - 1)) != 0)
                return usage_error("--block-size '%s' is not a power of two from 512 to 1 GiB", s);
        *ret = v;
        return CLI_CONTINUE;
}

int cli_map_option(const char *arg, ScanOptions *o) {
        int r = scan_options_add_map(o, arg);
        if (r == -ENOMEM) {
                log_error("out of memory");
                return EXIT_FAILED;
        }
        if (r < 0)
                return usage_error("--map '%s' is not START:LENGTH (sizes in bytes, K, M or G), part:N or label:NAME",
                                   arg);
        return CLI_CONTINUE;
}
