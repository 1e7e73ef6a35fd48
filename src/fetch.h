/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "input-http.h"
#include "util.h"

/* Reads a whole small file (a bmap, a signature) from a path or a URL
 * (transferred as http says) into memory (NUL-terminated, not counted in
 * *ret_len). -ENOENT when it does not exist (a missing file; for a URL,
 * HTTP 404 or 410), -EFBIG when it is larger than max; other failures with
 * a message naming the location. */
int fetch_whole(const char *location, HttpContext *http, size_t max, char **ret, size_t *ret_len, Diag *d);

/* 1 when the location exists (a regular file; for a URL, the server has
 * it), 0 when it does not, or a negative errno with a message when that
 * cannot be told (a server that does not answer). */
int fetch_exists(const char *location, HttpContext *http, Diag *d);
