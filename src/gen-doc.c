/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Build-time only: prints the command and option tables of commands.c as
 * one JSON object, from which doc/render.py writes the man pages and the
 * shell completions. Not installed. */
#include <stdio.h>

#include "cli.h"
#include "config.h"
#include "json.h"

static const char *value_word(CliValue v) {
        switch (v) {
        case CLI_VALUE_NONE:
                return "none";
        case CLI_VALUE_TEXT:
                return "text";
        case CLI_VALUE_FILE:
                return "file";
        case CLI_VALUE_DEST:
                return "dest";
        case CLI_VALUE_WORDS:
                return "words";
        }
        return "none";
}

static void print_string_or_null(const char *s) {
        if (s)
                json_print_string(stdout, s);
        else
                fputs("null", stdout);
}

static void print_options(const CliOption *const *options) {
        putchar('[');
        for (const CliOption *const *o = options; *o; o++) {
                char short_name[2] = { (*o)->short_name, 0 };
                printf("%s{\"long\":", o == options ? "" : ",");
                json_print_string(stdout, (*o)->long_name);
                fputs(",\"short\":", stdout);
                print_string_or_null((*o)->short_name ? short_name : NULL);
                fputs(",\"arg\":", stdout);
                print_string_or_null((*o)->arg);
                printf(",\"value\":\"%s\",\"words\":", value_word((*o)->value));
                print_string_or_null((*o)->words);
                printf(",\"repeatable\":%s,\"help\":", (*o)->repeatable ? "true" : "false");
                json_print_string(stdout, (*o)->help);
                putchar('}');
        }
        putchar(']');
}

int main(void) {
        printf("{\"version\":\"%s\",\"global\":", PACKAGE_VERSION);
        print_options(cli_global_options);
        fputs(",\"commands\":[", stdout);
        for (size_t i = 0; i < cli_n_commands; i++) {
                const CliCommand *c = &cli_commands[i];
                printf("%s{\"name\":", i ? "," : "");
                json_print_string(stdout, c->name);
                fputs(",\"summary\":", stdout);
                json_print_string(stdout, c->summary);
                fputs(",\"operands\":", stdout);
                json_print_string(stdout, c->operands);
                printf(",\"first\":\"%s\",\"rest\":\"%s\",\"description\":", value_word(c->first),
                       value_word(c->rest));
                json_print_string(stdout, c->description);
                fputs(",\"options\":", stdout);
                print_options(c->options);
                putchar('}');
        }
        fputs("]}\n", stdout);
        return ferror(stdout) || fflush(stdout) ? 1 : 0;
}
