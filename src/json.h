/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdio.h>

/* Writes s as a JSON string literal, quotes included. */
void json_print_string(FILE *f, const char *s);
