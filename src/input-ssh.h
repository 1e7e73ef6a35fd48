/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What an sftp:// transfer needs beyond what input-http.c does for every
 * URL: the server's host key checked against ~/.ssh/known_hosts (an unknown
 * or changed key refused, never accepted on first use), the user's keys
 * from ~/.ssh, and the user name ssh would use. Only input-http.c uses it. */
#pragma once

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct SshSetup SshSetup;

/* For the URL (host and port are taken from it for messages). NULL when
 * out of memory. */
SshSetup *ssh_setup_new(const char *url);
void ssh_setup_free(SshSetup *s);

/* Sets the SSH options of a transfer; false when this libcurl lacks one.
 * s must outlive the transfer. */
bool ssh_setup_apply(SshSetup *s, CURL *e);

/* After a transfer failed with CURLE_PEER_FAILED_VERIFICATION: the one-line
 * message about the host key (shown is the URL as messages show it), and
 * -EPERM; 0 when the host key was not what failed. */
int ssh_hostkey_error(const SshSetup *s, const char *shown, char *buf, size_t size);
