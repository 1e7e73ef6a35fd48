/* SPDX-License-Identifier: GPL-2.0-or-later */
/* An LD_PRELOAD shim for test-copy-direct.sh: a filesystem without
 * O_DIRECT, as the copy sees it. NODIRECT=open: every open with O_DIRECT
 * fails with EINVAL; NODIRECT=write: the open succeeds, and every write
 * through a descriptor that has O_DIRECT fails with EINVAL (what some
 * filesystems do only at the first write). Anything else: no change. */
/* Both the plain and the 64-bit names are defined here: neither may be
 * renamed to the other. */
#undef _FILE_OFFSET_BITS
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static const char *mode(void) {
        const char *m = getenv("NODIRECT");
        return m ? m : "";
}

typedef int (*open_fn)(const char *, int, ...);
typedef int (*openat_fn)(int, const char *, int, ...);
typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);
typedef ssize_t (*pwrite64_fn)(int, const void *, size_t, off64_t);

/* open and its 64-bit and at variants: the mode argument is there only
 * with O_CREAT or O_TMPFILE. */
#define TAKE_MODE(flags, last)                                                                                         \
        mode_t m = 0;                                                                                                  \
        if ((flags) & (O_CREAT | __O_TMPFILE)) {                                                                       \
                va_list ap;                                                                                            \
                va_start(ap, last);                                                                                    \
                m = (mode_t) va_arg(ap, int);                                                                          \
                va_end(ap);                                                                                            \
        }

static bool refuse_open(int flags) {
        if ((flags & O_DIRECT) && strcmp(mode(), "open") == 0) {
                errno = EINVAL;
                return true;
        }
        return false;
}

int open(const char *path, int flags, ...);
int open(const char *path, int flags, ...) {
        TAKE_MODE(flags, flags);
        if (refuse_open(flags))
                return -1;
        return ((open_fn) dlsym(RTLD_NEXT, "open"))(path, flags, m);
}

int open64(const char *path, int flags, ...);
int open64(const char *path, int flags, ...) {
        TAKE_MODE(flags, flags);
        if (refuse_open(flags))
                return -1;
        return ((open_fn) dlsym(RTLD_NEXT, "open64"))(path, flags, m);
}

int openat(int dir, const char *path, int flags, ...);
int openat(int dir, const char *path, int flags, ...) {
        TAKE_MODE(flags, flags);
        if (refuse_open(flags))
                return -1;
        return ((openat_fn) dlsym(RTLD_NEXT, "openat"))(dir, path, flags, m);
}

int openat64(int dir, const char *path, int flags, ...);
int openat64(int dir, const char *path, int flags, ...) {
        TAKE_MODE(flags, flags);
        if (refuse_open(flags))
                return -1;
        return ((openat_fn) dlsym(RTLD_NEXT, "openat64"))(dir, path, flags, m);
}

static bool refuse_write(int fd) {
        int fl;
        if (strcmp(mode(), "write") == 0 && (fl = fcntl(fd, F_GETFL)) >= 0 && (fl & O_DIRECT)) {
                errno = EINVAL;
                return true;
        }
        return false;
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t offset);
ssize_t pwrite(int fd, const void *buf, size_t n, off_t offset) {
        if (refuse_write(fd))
                return -1;
        return ((pwrite_fn) dlsym(RTLD_NEXT, "pwrite"))(fd, buf, n, offset);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t offset);
ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t offset) {
        if (refuse_write(fd))
                return -1;
        return ((pwrite64_fn) dlsym(RTLD_NEXT, "pwrite64"))(fd, buf, n, offset);
}
