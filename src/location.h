/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* Where an image, a bmap or a signature lives: a local path, or an
 * http://, https://, ftp:// or sftp:// URL. */
bool location_is_url(const char *s);

/* Where a location's path ends: strlen for a local path; for a URL, where
 * its ?query or #fragment starts. *ret_path_start (may be NULL) is where
 * the path starts: 0 for a local path, the end of a URL's host part. */
size_t location_path_end(const char *location, size_t *ret_path_start);

/* The location of a file beside another, named by adding suffix to its
 * name ("a.bmap" → "a.bmap.asc"): for a URL the suffix goes at the end of
 * its path, before any ?query or #fragment. Malloc'ed; NULL when out of
 * memory. */
char *location_add_suffix(const char *location, const char *suffix);

/* s, with the password of every URL in it ("scheme://user:password@host")
 * replaced by "***", for messages: into buf (cut to size), or malloc'ed
 * (NULL when out of memory). */
void redact_passwords(const char *s, char *buf, size_t size);
char *redact_passwords_dup(const char *s);
