/* SPDX-License-Identifier: GPL-2.0-or-later */
/* gen-file: creates test images deterministically from a seed.
 *
 *   gen-file [-v] PATH SIZE MODE SEED [OPTIONS...]
 *
 * SIZE is a byte count with an optional binary suffix (K, M, G, T; "KiB" and
 * "KB" are taken too). MODE is one of:
 *
 *   holes    the whole file is one hole (ftruncate)
 *   data     SIZE bytes of pseudo-random data, no holes
 *   zeros    SIZE written zero bytes, no holes
 *   random   pseudo-random data at pseudo-random offsets and lengths, holes
 *            between: block-aligned and unaligned pieces, tiny to multi-MiB,
 *            roughly 30-60% of the file
 *   falloc   like random, but some pieces are only fallocate()'d (unwritten
 *            extents), some fallocate()'d and partly written, some written
 *   extents  about DATA_BYTES of data (first option, default SIZE/2) in
 *            block-aligned extents of 64 KiB .. 16 MiB spread over SIZE with
 *            holes between (the benchmark workload)
 *
 * OPTIONS for random and falloc:
 *   tail=data|hole|any  whether the last (possibly partial) block holds data,
 *                       is a hole, or whatever the seed gives (default any)
 *   maxpiece=SIZE       largest data piece and gap (default 16M); small values
 *                       give files with very many extents
 *
 * The same arguments always give the same content and the same hole layout.
 * The data bytes are a function of the seed and the byte offset only, so a
 * byte's value does not depend on how the file was written. -v prints what
 * was made on stderr. */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK ((size_t) 8 << 20)
#define KiB ((uint64_t) 1024)
#define MiB (KiB * 1024)

static const char *prog = "gen-file";
static bool verbose;

typedef struct Gen {
        int fd;
        const char *path;
        uint64_t size;
        uint64_t block; /* alignment for "aligned" pieces: the file's st_blksize */
        uint64_t key;   /* content key, derived from the seed */
        uint64_t rng;   /* layout PRNG state (splitmix64) */
        uint8_t *buf;   /* CHUNK + 16 bytes */
        uint64_t written, fallocated, pieces;
} Gen;

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...) {
        va_list ap;

        fprintf(stderr, "%s: ", prog);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        exit(2);
}

static uint64_t mix64(uint64_t z) {
        z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
        return z ^ (z >> 31);
}

static uint64_t rnd(Gen *g) {
        g->rng += UINT64_C(0x9e3779b97f4a7c15);
        return mix64(g->rng);
}

/* Uniform in [lo, hi]; the tiny modulo bias does not matter here. */
static uint64_t rnd_range(Gen *g, uint64_t lo, uint64_t hi) {
        if (hi <= lo)
                return lo;
        if (hi - lo == UINT64_MAX)
                return rnd(g);
        return lo + rnd(g) % (hi - lo + 1);
}

/* True with probability num/den. */
static bool chance(Gen *g, unsigned num, unsigned den) {
        return rnd(g) % den < num;
}

static uint64_t min_u64(uint64_t a, uint64_t b) {
        return a < b ? a : b;
}

static uint64_t max_u64(uint64_t a, uint64_t b) {
        return a > b ? a : b;
}

static uint64_t round_up(uint64_t x, uint64_t a) {
        return (x + a - 1) / a * a;
}

static int parse_size(const char *s, uint64_t *ret) {
        char *end;
        uint64_t v, mult = 1;

        if (!*s || *s < '0' || *s > '9')
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno)
                return -errno;
        switch (*end) {
        case '\0':
                break;
        case 'k':
        case 'K':
                mult = KiB;
                break;
        case 'm':
        case 'M':
                mult = MiB;
                break;
        case 'g':
        case 'G':
                mult = MiB * KiB;
                break;
        case 't':
        case 'T':
                mult = MiB * MiB;
                break;
        default:
                return -EINVAL;
        }
        if (*end) {
                end++;
                if (strcmp(end, "") != 0 && strcmp(end, "iB") != 0 && strcmp(end, "B") != 0)
                        return -EINVAL;
        }
        if (v > UINT64_MAX / mult)
                return -ERANGE;
        *ret = v * mult;
        return 0;
}

static uint64_t parse_size_or_die(const char *what, const char *s) {
        uint64_t v = 0;

        if (parse_size(s, &v) < 0)
                die("bad %s '%s': give bytes, optionally with a K, M, G or T suffix", what, s);
        return v;
}

/* The content of the file: 8-byte words, each a hash of the key and the
 * word's index. Puts bytes [off, off+len) of that stream in g->buf and
 * returns where they start. */
static const uint8_t *fill(const Gen *g, uint64_t off, size_t len) {
        uint64_t w = off / 8;
        size_t skip = (size_t) (off % 8), words = (skip + len + 7) / 8;

        for (size_t i = 0; i < words; i++) {
                uint64_t v = mix64(g->key + (w + i) * UINT64_C(0x9e3779b97f4a7c15));
                memcpy(g->buf + i * 8, &v, 8);
        }
        return g->buf + skip;
}

static void pwrite_all(const Gen *g, const uint8_t *buf, size_t len, uint64_t off) {
        while (len > 0) {
                ssize_t k = pwrite(g->fd, buf, len, (off_t) off);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        die("cannot write %zu bytes at %" PRIu64 " to '%s': %s", len, off, g->path,
                            strerror(errno));
                }
                if (k == 0)
                        die("cannot write to '%s': no progress", g->path);
                buf += k;
                len -= (size_t) k;
                off += (uint64_t) k;
        }
}

/* Writes the data (or zeros) of [off, off+len). */
static void write_range(Gen *g, uint64_t off, uint64_t len, bool zeros) {
        if (zeros)
                memset(g->buf, 0, CHUNK);
        g->written += len;
        g->pieces++;
        while (len > 0) {
                size_t n = (size_t) min_u64(len, CHUNK);
                const uint8_t *p = zeros ? g->buf : fill(g, off, n);
                pwrite_all(g, p, n, off);
                off += n;
                len -= n;
        }
}

static void do_fallocate(Gen *g, uint64_t off, uint64_t len, int mode) {
        if (len == 0)
                return;
        if (fallocate(g->fd, mode, (off_t) off, (off_t) len) < 0) {
                if (errno != EOPNOTSUPP && errno != ENOSYS)
                        die("cannot fallocate %" PRIu64 " bytes at %" PRIu64 " in '%s': %s", len, off, g->path,
                            strerror(errno));
                /* Without fallocate, written zeros map the same blocks. */
                if (off < g->size)
                        write_range(g, off, min_u64(len, g->size - off), true);
                return;
        }
        g->fallocated += len;
        g->pieces++;
}

static void set_size(Gen *g) {
        if (ftruncate(g->fd, (off_t) g->size) < 0)
                die("cannot set the size of '%s': %s", g->path, strerror(errno));
}

/* A length for a data piece or a gap: tiny, small, medium or large, never
 * above max. */
static uint64_t draw_len(Gen *g, uint64_t max, bool gap) {
        unsigned c = (unsigned) (rnd(g) % 100);
        uint64_t lo, hi;

        if (c < (gap ? 5u : 20u)) {
                lo = 1;
                hi = 512;
        } else if (c < 50) {
                lo = 513;
                hi = 64 * KiB;
        } else if (c < 85) {
                lo = 64 * KiB;
                hi = MiB;
        } else {
                lo = MiB;
                hi = 16 * MiB;
        }
        if (max == 0)
                max = 1;
        hi = min_u64(hi, max);
        lo = min_u64(lo, hi);
        return rnd_range(g, lo, hi);
}

typedef enum Tail { TAIL_ANY, TAIL_DATA, TAIL_HOLE } Tail;

/* random and falloc: walk the file, alternating data pieces and gaps. */
static void gen_random(Gen *g, bool falloc, Tail tail, uint64_t maxpiece) {
        uint64_t bs = g->block, size = g->size;
        /* Where data may go: with tail=hole, nothing touches the last block. */
        uint64_t limit = size;
        /* Fraction of data aimed at, in percent. */
        uint64_t pct = rnd_range(g, 30, 60);
        uint64_t data = 0, pos = 0;
        uint64_t max = min_u64(maxpiece, max_u64(size / 3, 1));
        /* A gap must be able to span a whole block, or there are no holes. */
        uint64_t gmax = max_u64(max, min_u64(2 * bs, max_u64(size / 3, 1)));
        bool in_data = chance(g, 1, 2);

        set_size(g);
        if (tail == TAIL_ANY)
                tail = chance(g, 1, 2) ? TAIL_DATA : TAIL_HOLE;
        if (tail == TAIL_HOLE)
                limit = (size - 1) / bs * bs;

        while (pos < limit) {
                if (!in_data) {
                        uint64_t gap = draw_len(g, gmax, true);
                        /* Feedback: a longer gap when there is too much data. */
                        if (data * 100 > pct * (pos + gap))
                                gap = max_u64(gap, min_u64(data * 100 / pct - pos, 4 * gmax));
                        if (chance(g, 1, 2))
                                gap = round_up(gap, bs);
                        pos += gap;
                        in_data = true;
                        continue;
                }
                uint64_t len = draw_len(g, max, false), start = pos;
                if (chance(g, 1, 2)) {
                        /* Block-aligned start and length. */
                        start = round_up(pos, bs);
                        len = round_up(len, bs);
                }
                if (start >= limit)
                        break;
                len = min_u64(len, limit - start);

                unsigned how = falloc ? (unsigned) (rnd(g) % 10) : 9;
                if (how < 4) {
                        do_fallocate(g, start, len, 0);
                } else if (how < 6) {
                        /* Preallocate, then write a part of it. */
                        do_fallocate(g, start, len, 0);
                        uint64_t a = rnd_range(g, 0, len - 1);
                        uint64_t b = rnd_range(g, a + 1, len);
                        write_range(g, start + a, b - a, false);
                } else {
                        write_range(g, start, len, false);
                }
                data += len;
                pos = start + len;
                in_data = false;
        }

        if (tail == TAIL_DATA) {
                /* The last bytes, up to EOF, hold data (or are preallocated). */
                uint64_t len = min_u64(draw_len(g, max, false), size);
                unsigned how = falloc ? (unsigned) (rnd(g) % 3) : 0;
                if (how == 0)
                        write_range(g, size - len, len, false);
                else if (how == 1)
                        do_fallocate(g, size - len, len, 0);
                else
                        /* One unwritten extent from the last byte on, past EOF. */
                        do_fallocate(g, size - 1, rnd_range(g, 2, 2 * MiB), FALLOC_FL_KEEP_SIZE);
                /* Sometimes also preallocate beyond EOF, as some image tools do. */
                if (falloc && chance(g, 1, 2))
                        do_fallocate(g, size, rnd_range(g, 1, 2 * MiB), FALLOC_FL_KEEP_SIZE);
        } else if (falloc && size % bs == 0 && chance(g, 1, 2)) {
                /* A preallocated block right after EOF, but a hole before it. */
                do_fallocate(g, size, rnd_range(g, 1, 2 * MiB), FALLOC_FL_KEEP_SIZE);
        }
}

/* extents: about data_bytes in aligned extents of 64 KiB .. 16 MiB, holes of
 * at least one block between them, spread over the whole file. */
static void gen_extents(Gen *g, uint64_t data_bytes) {
        uint64_t bs = g->block, size = g->size, total = 0, holes;
        uint64_t *lens = NULL, *gaps = NULL, wsum = 0;
        size_t n = 0, cap = 0;

        set_size(g);
        if (data_bytes == 0)
                return;
        while (total < data_bytes) {
                /* Log-uniform: as many small extents as large ones. */
                unsigned shift = (unsigned) rnd_range(g, 16, 23);
                uint64_t len = rnd_range(g, (uint64_t) 1 << shift, (uint64_t) 2 << shift);
                len = min_u64(round_up(len, bs), 16 * MiB);
                len = min_u64(len, round_up(data_bytes - total, bs));
                if (n == cap) {
                        cap = cap ? cap * 2 : 256;
                        lens = realloc(lens, cap * sizeof(*lens));
                        if (!lens)
                                die("out of memory");
                }
                lens[n++] = len;
                total += len;
        }
        if (total + (uint64_t) n * bs > size)
                die("%" PRIu64 " bytes of data in %zu extents do not fit in %" PRIu64 " bytes with holes between",
                    total, n, size);
        holes = size - total;
        /* n+1 gaps: one before the first extent, one after the last. Each
         * between two extents gets one block, the rest is shared at random. */
        gaps = calloc(n + 1, sizeof(*gaps));
        if (!gaps)
                die("out of memory");
        for (size_t i = 0; i <= n; i++) {
                gaps[i] = rnd_range(g, 1, 1000);
                wsum += gaps[i];
        }
        uint64_t spare = holes - (uint64_t) (n - 1) * bs;
        uint64_t pos = 0;
        for (size_t i = 0; i < n; i++) {
                /* spare * w / wsum without overflow: spare < 2^64, w <= 1000. */
                uint64_t share = (uint64_t) ((unsigned __int128) spare * gaps[i] / wsum);
                uint64_t gap = (i > 0 ? bs : 0) + share / bs * bs;
                pos += gap;
                if (pos + lens[i] > size)
                        pos = size - lens[i];
                write_range(g, pos, lens[i], false);
                pos += lens[i];
        }
        free(lens);
        free(gaps);
}

static void usage(void) {
        fprintf(stderr,
                "usage: %s [-v] PATH SIZE MODE SEED [OPTIONS...]\n"
                "  MODE: holes | data | zeros | random | falloc | extents\n"
                "  extents: OPTIONS = DATA_BYTES (default SIZE/2)\n"
                "  random, falloc: OPTIONS = tail=data|hole|any, maxpiece=SIZE\n",
                prog);
        exit(2);
}

int main(int argc, char **argv) {
        const char *args[16];
        int nargs = 0;
        Gen g = { .fd = -1 };
        Tail tail = TAIL_ANY;
        uint64_t seed, maxpiece = 16 * MiB, data_bytes = UINT64_MAX;
        const char *mode;
        struct stat st;

        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "-v") == 0)
                        verbose = true;
                else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
                        usage();
                else if (nargs < (int) (sizeof(args) / sizeof(args[0])))
                        args[nargs++] = argv[i];
                else
                        usage();
        }
        if (nargs < 4)
                usage();
        g.path = args[0];
        g.size = parse_size_or_die("size", args[1]);
        mode = args[2];
        {
                char *end;
                errno = 0;
                seed = strtoull(args[3], &end, 0);
                if (errno || end == args[3] || *end)
                        die("bad seed '%s': give a number", args[3]);
        }
        for (int i = 4; i < nargs; i++) {
                const char *a = args[i];
                if (strncmp(a, "tail=", 5) == 0) {
                        if (strcmp(a + 5, "data") == 0)
                                tail = TAIL_DATA;
                        else if (strcmp(a + 5, "hole") == 0)
                                tail = TAIL_HOLE;
                        else if (strcmp(a + 5, "any") == 0)
                                tail = TAIL_ANY;
                        else
                                die("bad option '%s': tail is data, hole or any", a);
                } else if (strncmp(a, "maxpiece=", 9) == 0) {
                        maxpiece = parse_size_or_die("maxpiece", a + 9);
                        if (maxpiece == 0)
                                die("maxpiece must be at least 1");
                } else if (strcmp(mode, "extents") == 0 && data_bytes == UINT64_MAX) {
                        data_bytes = parse_size_or_die("data size", a);
                } else {
                        die("unknown option '%s' for mode '%s'", a, mode);
                }
        }

        /* Both streams depend on the seed; the layout also on size and mode. */
        g.key = mix64(seed ^ UINT64_C(0x6a09e667f3bcc908));
        g.rng = mix64(seed) ^ mix64(g.size + UINT64_C(0x3c6ef372fe94f82b));
        for (const char *c = mode; *c; c++)
                g.rng = mix64(g.rng ^ (uint8_t) *c);

        g.buf = malloc(CHUNK + 16);
        if (!g.buf)
                die("out of memory");
        g.fd = open(g.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (g.fd < 0)
                die("cannot create '%s': %s", g.path, strerror(errno));
        if (fstat(g.fd, &st) < 0)
                die("cannot stat '%s': %s", g.path, strerror(errno));
        g.block = st.st_blksize > 0 ? (uint64_t) st.st_blksize : 4096;

        if (strcmp(mode, "holes") == 0) {
                set_size(&g);
        } else if (strcmp(mode, "data") == 0 || strcmp(mode, "zeros") == 0) {
                write_range(&g, 0, g.size, mode[0] == 'z');
                set_size(&g);
        } else if (strcmp(mode, "random") == 0 || strcmp(mode, "falloc") == 0) {
                if (g.size == 0)
                        set_size(&g);
                else
                        gen_random(&g, mode[0] == 'f', tail, maxpiece);
        } else if (strcmp(mode, "extents") == 0) {
                if (data_bytes == UINT64_MAX)
                        data_bytes = g.size / 2;
                if (data_bytes > g.size)
                        die("DATA_BYTES %" PRIu64 " is larger than SIZE %" PRIu64, data_bytes, g.size);
                gen_extents(&g, data_bytes);
        } else {
                die("unknown mode '%s'", mode);
        }

        if (close(g.fd) < 0)
                die("cannot close '%s': %s", g.path, strerror(errno));
        if (verbose)
                fprintf(stderr, "%s: %s: %" PRIu64 " bytes, %s, seed %" PRIu64 ": %" PRIu64
                        " bytes written and %" PRIu64 " preallocated in %" PRIu64 " pieces\n",
                        prog, g.path, g.size, mode, seed, g.written, g.fallocated, g.pieces);
        free(g.buf);
        return 0;
}
