/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "config.h"
#include "location.h"

int cli_verbosity = 0;
const char *cli_command = NULL;

_printf_(2, 0) static void vlog(const char *prefix, const char *fmt, va_list ap) {
        _cleanup_free_ char *line = NULL, *redacted = NULL, *shown = NULL;

        /* Whatever message names a URL, its password stays off the screen.
         * One line, and nothing a file name, a server or a key's user id
         * could use to move the cursor or recolour the terminal; the text
         * reports show names the same way. */
        if (vasprintf(&line, fmt, ap) < 0 || !(redacted = redact_passwords_dup(line)) ||
            !(shown = display_escape(redacted))) {
                fputs("bmapscan: out of memory\n", stderr);
                return;
        }
        fprintf(stderr, "%s%s\n", prefix, shown);
}

void log_error(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vlog("bmapscan: ", fmt, ap);
        va_end(ap);
}

void log_warning(const char *fmt, ...) {
        va_list ap;
        if (cli_verbosity < 0)
                return;
        va_start(ap, fmt);
        vlog("bmapscan: warning: ", fmt, ap);
        va_end(ap);
}

void log_info(const char *fmt, ...) {
        va_list ap;
        if (cli_verbosity < 0)
                return;
        va_start(ap, fmt);
        vlog("", fmt, ap);
        va_end(ap);
}

void log_verbose(const char *fmt, ...) {
        va_list ap;
        if (cli_verbosity < 1)
                return;
        va_start(ap, fmt);
        vlog("", fmt, ap);
        va_end(ap);
}

int usage_error(const char *fmt, ...) {
        va_list ap;
        char what[512];
        va_start(ap, fmt);
        vsnprintf(what, sizeof(what), fmt, ap);
        va_end(ap);
        if (cli_command)
                fprintf(stderr, "bmapscan %s: %s (see 'bmapscan %s --help')\n", cli_command, what, cli_command);
        else
                fprintf(stderr, "bmapscan: %s (see 'bmapscan --help')\n", what);
        return EXIT_USAGE;
}

static const Command commands[] = {
        { "scan", "filesystem-aware bmap of an image: maps only what its filesystems use", cmd_scan },
        { "sparse", "punch holes in an image over every block its filesystems do not use", cmd_sparse },
        { "copy", "flash an image (compressed or not) to devices or files, verifying every range", cmd_copy },
        { "verify", "read a flashed device back and check it against the bmap", cmd_verify },
        { "create", "hole-based bmap of a sparse image, identical to 'bmaptool create'", cmd_create },
        { "info", "describe an image's layout and use, or a bmap and its validity", cmd_info },
};

static void help(void) {
        printf("Usage: bmapscan [-q|-v] COMMAND [OPTIONS] ARGS...\n"
               "\n"
               "Make raw disk images cheap to store and fast and safe to flash.\n"
               "\n"
               "Commands:\n");
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                printf("  %-7s %s\n", commands[i].name, commands[i].summary);
        printf("\n"
               "Options:\n"
               "  -q, --quiet    print only errors\n"
               "  -v, --verbose  say more about what is done\n"
               "  -h, --help     show this help (or a command's, after it)\n"
               "      --version  show the version\n"
               "\n"
               "Exit status: 0 success, 1 the operation failed, 2 usage error.\n"
               "'bmapscan COMMAND --help' describes each command.\n");
}

int cli_common_option(int c, char **argv, void (*cmd_help)(void)) {
        switch (c) {
        case 'h':
                cmd_help();
                return EXIT_OK;
        case 'q':
                cli_verbosity = -1;
                return -1;
        case 'v':
                cli_verbosity = 1;
                return -1;
        case 'V':
                printf("bmapscan %s\n", PACKAGE_VERSION);
                return EXIT_OK;
        case '?':
                /* Option strings start with ':' and opterr is 0, so that each
                 * usage error is our one line, not getopt's. */
                /* A long option given a value it does not take comes back with
                 * optopt set to its short name: name it as it was written. */
                if (optopt && argv[optind - 1][1] != '-')
                        return usage_error("unknown option '-%c'", optopt);
                if (strchr(argv[optind - 1], '='))
                        return usage_error("option '%.*s' takes no value", (int) strcspn(argv[optind - 1], "="),
                                           argv[optind - 1]);
                return usage_error("unknown option '%s'", argv[optind - 1]);
        case ':':
                if (optopt && argv[optind - 1][1] != '-')
                        return usage_error("option '-%c' needs a value", optopt);
                return usage_error("option '%s' needs a value", argv[optind - 1]);
        default:
                return usage_error("unhandled option");
        }
}

int cli_one_argument(int argc, char **argv, const char *what, const char **ret) {
        if (optind >= argc)
                return usage_error("no %s given", what);
        if (optind + 1 < argc)
                return usage_error("only one %s is taken", what);
        *ret = argv[optind];
        return -1;
}

int cli_refuse_output_is_input(const char *output, const char *input) {
        struct stat o, i;
        if (output && stat(output, &o) == 0 && stat(input, &i) == 0 && o.st_dev == i.st_dev && o.st_ino == i.st_ino) {
                log_error("the output '%s' is the image itself: choose another file", output);
                return EXIT_FAILED;
        }
        return -1;
}

int main(int argc, char **argv) {
        int i;

        opterr = 0;
        /* Global options before the command. */
        for (i = 1; i < argc && argv[i][0] == '-'; i++) {
                const char *a = argv[i];
                if (!strcmp(a, "-q") || !strcmp(a, "--quiet"))
                        cli_verbosity = -1;
                else if (!strcmp(a, "-v") || !strcmp(a, "--verbose"))
                        cli_verbosity = 1;
                else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
                        help();
                        return EXIT_OK;
                } else if (!strcmp(a, "--version")) {
                        printf("bmapscan %s\n", PACKAGE_VERSION);
                        return EXIT_OK;
                } else {
                        fprintf(stderr, "bmapscan: unknown option '%s' (see 'bmapscan --help')\n", a);
                        return EXIT_USAGE;
                }
        }
        if (i >= argc) {
                fprintf(stderr, "bmapscan: no command given (see 'bmapscan --help')\n");
                return EXIT_USAGE;
        }
        for (size_t k = 0; k < ELEMENTSOF(commands); k++)
                if (strcmp(argv[i], commands[k].name) == 0) {
                        cli_command = commands[k].name;
                        /* The command sees itself as argv[0]. */
                        return commands[k].run(argc - i, argv + i);
                }
        fprintf(stderr, "bmapscan: unknown command '%s' (see 'bmapscan --help')\n", argv[i]);
        return EXIT_USAGE;
}
