/* SPDX-License-Identifier: GPL-2.0-or-later */
/* An LD_PRELOAD shim for the retry tests: makes the first writes or reads
 * of one spot of one file or device fail, as a failing card does.
 *   FAULTY_MATCH=STR         only descriptors whose path (/proc/self/fd)
 *                            contains STR
 *   FAULTY_OFFSET=N          only I/O that covers byte N
 *   FAULTY_DIRECT=1 (or 0)   only descriptors opened with (without)
 *                            O_DIRECT: a test that the faults hit the
 *                            write path that runs (copy writes through a
 *                            second, O_DIRECT descriptor of the target,
 *                            whose /proc/self/fd link is the target's)
 *   FAULTY_WRITE_EIO=K       the first K such pwrites fail with EIO
 *   FAULTY_READ_CORRUPT=K    the first K such preads return byte N flipped
 *                            (K may be "all")
 *   FAULTY_SYNC_EIO=K        the first K fdatasyncs of a matching descriptor
 *                            fail with EIO (a buffered write the device
 *                            failed: the error comes with the flush; K may
 *                            be "all")
 * Counts are per process. */
/* Both pread and pread64 are defined here, as two symbols. */
#undef _FILE_OFFSET_BITS
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static atomic_long write_fails = -1, read_corrupts = -1, sync_fails = -1;

static long env_count(const char *name) {
        const char *v = getenv(name);
        if (!v)
                return 0;
        return strcmp(v, "all") == 0 ? 1L << 40 : atol(v);
}

static int path_matches(int fd) {
        const char *want = getenv("FAULTY_MATCH"), *direct = getenv("FAULTY_DIRECT");
        char proc[64], path[4096];
        ssize_t k;

        if (!want)
                return 0;
        if (direct) {
                int fl = fcntl(fd, F_GETFL);
                if (fl < 0 || !!(fl & O_DIRECT) != (atoi(direct) != 0))
                        return 0;
        }
        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
        k = readlink(proc, path, sizeof(path) - 1);
        if (k < 0)
                return 0;
        path[k] = 0;
        return strstr(path, want) != NULL;
}

static int matches(int fd, off_t off, size_t n) {
        const char *at = getenv("FAULTY_OFFSET");

        if (!at)
                return 0;
        long long spot = atoll(at);
        if (spot < off || (unsigned long long) spot >= (unsigned long long) off + n)
                return 0;
        return path_matches(fd);
}

/* Takes one of the counter's K, the first time setting it from the environment. */
static int take(atomic_long *c, const char *name) {
        long expected = -1;
        atomic_compare_exchange_strong(c, &expected, env_count(name));
        long v = atomic_load(c);
        while (v > 0)
                if (atomic_compare_exchange_weak(c, &v, v - 1))
                        return 1;
        return 0;
}

typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);
typedef ssize_t (*pread_fn)(int, void *, size_t, off_t);

static ssize_t do_pwrite(const char *sym, int fd, const void *buf, size_t n, off_t off) {
        pwrite_fn real = (pwrite_fn) dlsym(RTLD_NEXT, sym);
        if (matches(fd, off, n) && take(&write_fails, "FAULTY_WRITE_EIO")) {
                errno = EIO;
                return -1;
        }
        return real(fd, buf, n, off);
}

static ssize_t do_pread(const char *sym, int fd, void *buf, size_t n, off_t off) {
        pread_fn real = (pread_fn) dlsym(RTLD_NEXT, sym);
        ssize_t k = real(fd, buf, n, off);
        if (k > 0 && matches(fd, off, (size_t) k) && take(&read_corrupts, "FAULTY_READ_CORRUPT"))
                ((unsigned char *) buf)[atoll(getenv("FAULTY_OFFSET")) - off] ^= 0xff;
        return k;
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) {
        return do_pwrite("pwrite", fd, buf, n, off);
}
ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t off) {
        return do_pwrite("pwrite64", fd, buf, n, off);
}
ssize_t pread(int fd, void *buf, size_t n, off_t off) {
        return do_pread("pread", fd, buf, n, off);
}
ssize_t pread64(int fd, void *buf, size_t n, off64_t off) {
        return do_pread("pread64", fd, buf, n, off);
}

typedef int (*fdatasync_fn)(int);

int fdatasync(int fd) {
        fdatasync_fn real = (fdatasync_fn) dlsym(RTLD_NEXT, "fdatasync");
        if (path_matches(fd) && take(&sync_fails, "FAULTY_SYNC_EIO")) {
                errno = EIO;
                return -1;
        }
        return real(fd);
}
