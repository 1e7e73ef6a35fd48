/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdio.h>

/* Writes s as a JSON string literal, quotes included: valid UTF-8 JSON
 * whatever s holds (see json.c for what becomes of bytes that are not UTF-8). */
void json_print_string(FILE *f, const char *s);
