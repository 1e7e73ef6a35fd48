/* SPDX-License-Identifier: GPL-2.0-or-later */
/* compare.h: the stream and the copy read in pieces of a few MiB, a piece
 * of each at a time. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "compare.h"

#define PIECE ((size_t) 4 << 20)

typedef struct Compare {
        void (*bad)(void *userdata, uint64_t start, uint64_t end);
        void *userdata;
        CompareResult res;
        uint64_t run_start, run_end;    /* the differing run not yet reported; empty when equal */
        bool fd_ended;                  /* fd ends before the stream does */
} Compare;

static void report(Compare *c) {
        if (c->run_end > c->run_start) {
                c->res.bad_ranges++;
                c->res.bad_bytes += c->run_end - c->run_start;
                c->bad(c->userdata, c->run_start, c->run_end);
        }
        c->run_start = c->run_end = 0;
}

static void differ(Compare *c, uint64_t start, uint64_t end) {
        if (c->run_end > c->run_start && c->run_end == start) {
                c->run_end = end;
                return;
        }
        report(c);
        c->run_start = start;
        c->run_end = end;
}

/* n bytes of the image at off, in a, against what fd holds there. */
static int compare_piece(Compare *c, int fd, const char *fd_name, uint64_t granule, const uint8_t *a, uint8_t *b,
                         size_t n, uint64_t off, Diag *d) {
        ssize_t got = pread_full(fd, b, n, off);
        if (got < 0)
                return diag_set(d, (int) got, "%s: read error at byte %" PRIu64 ": %s", fd_name, off,
                                strerror((int) -got));
        if ((size_t) got < n)
                c->fd_ended = true;
        for (size_t i = 0; i < n;) {
                /* Units are counted from the image's start, so a stretch
                 * that starts inside one reports from its own start. */
                size_t k = (size_t) (granule - (off + i) % granule);
                if (k > n - i)
                        k = n - i;
                bool same = i + k <= (size_t) got && memcmp(a + i, b + i, k) == 0;
                if (!same)
                        differ(c, off + i, off + i + k);
                else
                        report(c);
                i += k;
        }
        c->res.compared += n;
        return 0;
}

int compare_stream_fd(Stream *s, int fd, const char *fd_name, uint64_t granule,
                      void (*bad)(void *userdata, uint64_t start, uint64_t end), void *userdata, CompareResult *ret,
                      Diag *d) {
        _cleanup_free_ uint8_t *a = malloc(PIECE), *b = malloc(PIECE);
        Compare c = { .bad = bad, .userdata = userdata };
        int r;

        if (!a || !b)
                return diag_set(d, -ENOMEM, "out of memory");
        for (;;) {
                uint64_t len, at = stream_offset(s);
                bool data;
                r = stream_next_stretch(s, &len, &data, d);
                if (r < 0)
                        return r;
                if (len == 0)
                        break;
                if (!data) {
                        report(&c);
                        r = stream_skip(s, len, d);
                        if (r < 0)
                                return r;
                        continue;
                }
                while (len > 0) {
                        size_t want = len < PIECE ? (size_t) len : PIECE;
                        ssize_t k = stream_read(s, a, want, d);
                        if (k < 0)
                                return (int) k;
                        if (k == 0)
                                break;
                        r = compare_piece(&c, fd, fd_name, granule, a, b, (size_t) k, at, d);
                        if (r < 0)
                                return r;
                        at += (uint64_t) k;
                        if (len != UINT64_MAX)
                                len -= (uint64_t) k;
                        /* The rest of the image cannot be on fd: one bad
                         * range to the image's end, rather than reading
                         * on (a 16-byte FILL chunk may stand for 2^58
                         * bytes). */
                        if (c.fd_ended) {
                                uint64_t end = stream_size_hint(s);
                                if (end != UINT64_MAX && end > at)
                                        differ(&c, at, end);
                                break;
                        }
                }
                if (len == UINT64_MAX || c.fd_ended)
                        break;
        }
        report(&c);
        *ret = c.res;
        return 0;
}
