/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The entry point of each command (one cmd-*.c each), for the table in
 * commands.c. A command parses its argv (argv[0] is its name) through its
 * own row of that table (self) and returns the exit status. */

struct CliCommand;

int cmd_copy(const struct CliCommand *self, int argc, char **argv);
int cmd_create(const struct CliCommand *self, int argc, char **argv);
int cmd_info(const struct CliCommand *self, int argc, char **argv);
int cmd_scan(const struct CliCommand *self, int argc, char **argv);
int cmd_sparse(const struct CliCommand *self, int argc, char **argv);
int cmd_verify(const struct CliCommand *self, int argc, char **argv);
