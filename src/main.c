/* SPDX-License-Identifier: GPL-2.0-or-later */
/* bmapscan [-q|-v] COMMAND [OPTIONS] ARGS...: the global options, then the
 * command from the table of commands.c, which parses the rest. */
#include <string.h>

#include "cli.h"

int main(int argc, char **argv) {
        CliParser p = { .argc = argc, .argv = argv };
        int c;

        /* Only the global rows here (-q, -v, -h, --version): the parser
         * handles them all and stops at the command. */
        while ((c = cli_next_option(&p)) > 0)
                ;
        if (c < 0)
                return p.status;
        if (optind >= argc)
                return usage_error("no command given");
        for (size_t k = 0; k < cli_n_commands; k++)
                if (strcmp(argv[optind], cli_commands[k].name) == 0) {
                        cli_command = cli_commands[k].name;
                        /* The command sees itself as argv[0]. */
                        return cli_commands[k].run(&cli_commands[k], argc - optind, argv + optind);
                }
        return usage_error("unknown command '%s'", argv[optind]);
}
