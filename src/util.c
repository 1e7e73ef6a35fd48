/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "util.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>

int diag_set(Diag *d, int err, const char *fmt, ...) {
        if (d) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(d->msg, sizeof(d->msg), fmt, ap);
                va_end(ap);
        }
        return err;
}

static bool is_space(char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int parse_u64(const char *s, size_t len, uint64_t *ret) {
        size_t i = 0, end = len;
        uint64_t v = 0;

        while (i < end && is_space(s[i]))
                i++;
        while (end > i && is_space(s[end - 1]))
                end--;
        if (i == end)
                return -EINVAL;
        for (; i < end; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -EINVAL;
                unsigned digit = (unsigned) (s[i] - '0');
                if (v > (UINT64_MAX - digit) / 10)
                        return -ERANGE;
                v = v * 10 + digit;
        }
        *ret = v;
        return 0;
}

int parse_size(const char *s, uint64_t *ret) {
        static const struct {
                const char *suffix;
                unsigned shift;
        } table[] = {
                { "", 0 },   { "K", 10 }, { "KiB", 10 }, { "M", 20 }, { "MiB", 20 },
                { "G", 30 }, { "GiB", 30 }, { "T", 40 }, { "TiB", 40 },
        };
        size_t digits = strspn(s, "0123456789");
        uint64_t v;
        int r;

        if (digits == 0)
                return -EINVAL;
        r = parse_u64(s, digits, &v);
        if (r < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                if (strcmp(s + digits, table[i].suffix) != 0)
                        continue;
                if (table[i].shift && v > (UINT64_MAX >> table[i].shift))
                        return -ERANGE;
                *ret = v << table[i].shift;
                return 0;
        }
        return -EINVAL;
}

void format_human_size(uint64_t size, char *buf, size_t buflen) {
        static const char *const units[] = { "KiB", "MiB", "GiB", "TiB" };
        double v = (double) size;

        if (size == 1) {
                snprintf(buf, buflen, "1 byte");
                return;
        }
        if (size < 512) {
                snprintf(buf, buflen, "%u bytes", (unsigned) size);
                return;
        }
        /* bmaptool divides first and compares the unrounded value with 1024,
         * and jumps from TiB straight to "EiB": keep both quirks so that the
         * comments in our bmaps are identical to its. */
        for (size_t i = 0; i < ELEMENTSOF(units); i++) {
                v /= 1024.0;
                if (v < 1024) {
                        snprintf(buf, buflen, "%.1f %s", v, units[i]);
                        return;
                }
        }
        snprintf(buf, buflen, "%.1f EiB", v);
}

ssize_t pread_full(int fd, void *buf, size_t n, uint64_t off) {
        size_t done = 0;

        while (done < n) {
                ssize_t k = pread(fd, (uint8_t *) buf + done, n - done, (off_t) (off + done));
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                done += (size_t) k;
        }
        return (ssize_t) done;
}

int write_full(int fd, const void *buf, size_t n) {
        const uint8_t *p = buf;

        while (n > 0) {
                ssize_t k = write(fd, p, n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

int read_file_full(const char *path, size_t max, char **ret_data, size_t *ret_len) {
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *data = NULL;
        size_t len = 0, cap = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        for (;;) {
                if (cap - len < 65536) {
                        size_t ncap = cap ? cap * 2 : 65536;
                        if (ncap > max + 1)
                                ncap = max + 1;
                        if (ncap <= len)
                                return -EFBIG;
                        char *p = realloc(data, ncap + 1);
                        if (!p)
                                return -ENOMEM;
                        data = p;
                        cap = ncap;
                }
                ssize_t k = read(fd, data + len, cap - len);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                len += (size_t) k;
                if (len > max)
                        return -EFBIG;
        }
        if (!data && !(data = malloc(1)))
                return -ENOMEM;
        data[len] = 0;
        *ret_data = TAKE_PTR(data);
        *ret_len = len;
        return 0;
}

/* Replaces path (a regular file, or nothing yet) through a temporary file
 * beside it: same filesystem, so the rename is atomic. */
static int write_replacing(const char *path, const void *data, size_t len, Diag *d) {
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -1;
        int r;

        if (asprintf(&tmp, "%s.XXXXXX", path) < 0)
                return -ENOMEM;
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return diag_set(d, -errno, "cannot create a temporary file beside '%s': %s", path,
                                strerror(errno));
        /* mkostemp makes the file 0600; a bmap is no secret. */
        (void) fchmod(fd, 0666 & ~current_umask());
        r = write_full(fd, data, len);
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (r >= 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0) {
                (void) unlink(tmp);
                return diag_set(d, r, "cannot write '%s': %s", path, strerror(-r));
        }
        return 0;
}

/* Writes into what path is (a device, a FIFO, an open file of a process):
 * there is nothing to rename, and a FIFO's open waits for its reader as
 * any writer's does. A regular file reached through /proc is appended to,
 * as the shell's redirection opened it ("> f" left it empty). */
static int write_into(const char *path, bool regular, const void *data, size_t len, Diag *d) {
        _cleanup_close_ int fd = -1;
        int r;

        fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY | (regular ? O_APPEND : 0));
        if (fd < 0)
                return diag_set(d, -errno, "cannot open '%s' for writing: %s", path, strerror(errno));
        r = write_full(fd, data, len);
        /* Devices and pipes may not sync (EINVAL): only a file must. */
        if (r >= 0 && regular && fsync(fd) < 0)
                r = -errno;
        if (r < 0)
                return diag_set(d, r, "cannot write '%s': %s", path, strerror(-r));
        return 0;
}

/* Does path reach its file through a link in /proc (/dev/stdout,
 * /dev/fd/N, /proc/self/fd/N)? Such a link names a descriptor some process
 * holds open, not a place in a directory to put a new file. */
static bool link_through_proc(const char *path) {
        _cleanup_free_ char *cur = strdup(path);

        for (int hop = 0; cur && hop < 40; hop++) {
                _cleanup_free_ char *dir = strdup(cur);
                char target[PATH_MAX], *next = NULL;
                struct statfs sf;
                struct stat st;

                if (!dir || lstat(cur, &st) < 0 || !S_ISLNK(st.st_mode))
                        return false;
                char *slash = strrchr(dir, '/');
                if (!slash)
                        strcpy(dir, ".");
                else
                        slash[slash == dir] = 0;
                if (statfs(dir, &sf) == 0 && sf.f_type == PROC_SUPER_MAGIC)
                        return true;
                ssize_t n = readlink(cur, target, sizeof(target) - 1);
                if (n < 0)
                        return false;
                target[n] = 0;
                if (target[0] == '/')
                        next = strdup(target);
                else if (asprintf(&next, "%s/%s", dir, target) < 0)
                        next = NULL;
                free(cur);
                cur = next;
        }
        return false;
}

int write_file_atomic(const char *path, const void *data, size_t len, Diag *d) {
        struct stat lst, st;

        /* New paths, regular files and dangling links: replaced. */
        if (lstat(path, &lst) < 0 || S_ISREG(lst.st_mode) || stat(path, &st) < 0)
                return write_replacing(path, data, len, d);
        /* A bmap written over the start of a disk is never what was meant
         * (renaming over its node was no better). */
        if (S_ISBLK(st.st_mode))
                return diag_set(d, -EINVAL, "'%s' is a block device: a bmap is not written onto a disk; choose a file",
                                path);
        if (!S_ISREG(st.st_mode) || link_through_proc(path))
                return write_into(path, S_ISREG(st.st_mode), data, len, d);
        /* A link to a regular file: replace the file, keep the link. */
        _cleanup_free_ char *real = realpath(path, NULL);
        if (!real)
                return diag_set(d, -errno, "cannot resolve the link '%s': %s", path, strerror(errno));
        return write_replacing(real, data, len, d);
}

size_t utf8_sequence_length(const char *s) {
        const unsigned char *p = (const unsigned char *) s;
        size_t n;
        uint32_t cp;

        if (p[0] < 0x80)
                return 1;
        if (p[0] >= 0xc2 && p[0] <= 0xdf)
                n = 2, cp = p[0] & 0x1f;
        else if (p[0] >= 0xe0 && p[0] <= 0xef)
                n = 3, cp = p[0] & 0x0f;
        else if (p[0] >= 0xf0 && p[0] <= 0xf4)
                n = 4, cp = p[0] & 0x07;
        else
                return 0; /* a continuation byte, 0xc0/0xc1 (overlong) or past U+10FFFF */
        for (size_t i = 1; i < n; i++) {
                /* A NUL is no continuation byte: the loop stops at the end. */
                if ((p[i] & 0xc0) != 0x80)
                        return 0;
                cp = cp << 6 | (p[i] & 0x3f);
        }
        if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        return n;
}

char *display_escape(const char *s) {
        char *out = strdup(s);
        size_t o = 0;

        if (!out)
                return NULL;
        /* Never longer than s: each byte maps to at most itself. */
        for (size_t i = 0; s[i];) {
                size_t n = utf8_sequence_length(s + i);
                /* C1 controls (U+0080-U+009F) move a terminal's cursor too. */
                bool control = n == 1 ? (unsigned char) s[i] < 0x20 || s[i] == 0x7f
                                      : n == 2 && (unsigned char) s[i] == 0xc2 && (unsigned char) s[i + 1] < 0xa0;
                if (n == 0 || control) {
                        out[o++] = '?';
                        i += n ? n : 1;
                        continue;
                }
                memcpy(out + o, s + i, n);
                o += n;
                i += n;
        }
        out[o] = 0;
        return out;
}

int image_open(const char *path, int flags, int *ret_fd, struct stat *ret_st) {
        _cleanup_close_ int fd = -1;
        int fl;

        fd = open(path, flags | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fstat(fd, ret_st) < 0)
                return -errno;
        fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
                return -errno;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

const char *file_kind(unsigned mode) {
        switch (mode & S_IFMT) {
        case S_IFREG:
                return "a regular file";
        case S_IFBLK:
                return "a block device";
        case S_IFCHR:
                return "a character device";
        case S_IFIFO:
                return "a FIFO";
        case S_IFSOCK:
                return "a socket";
        case S_IFDIR:
                return "a directory";
        default:
                return "an unknown kind of file";
        }
}

int file_reads_past_size(int fd) {
        char c;
        ssize_t k = pread_full(fd, &c, 1, 0);
        return k < 0 ? (int) k : k > 0;
}

unsigned current_umask(void) {
        mode_t m = umask(0);
        umask(m);
        return (unsigned) m;
}

bool mountinfo_find(dev_t dev, char *ret_where, size_t where_len, char *ret_fstype, size_t fstype_len) {
        FILE *f = fopen("/proc/self/mountinfo", "re");
        char line[4096];
        bool found = false;

        if (!f)
                return false;
        while (!found && fgets(line, sizeof(line), f)) {
                /* id parent major:minor root mountpoint options... - fstype source ... */
                unsigned a, b;
                char where[2048], type[64];
                const char *sep = strstr(line, " - ");
                if (!sep || sscanf(line, "%*d %*d %u:%u %*s %2047s", &a, &b, where) != 3 || makedev(a, b) != dev ||
                    sscanf(sep + 3, "%63s", type) != 1)
                        continue;
                found = true;
                if (ret_where)
                        snprintf(ret_where, where_len, "%s", where);
                if (ret_fstype)
                        snprintf(ret_fstype, fstype_len, "%s", type);
        }
        fclose(f);
        return found;
}

unsigned cpu_count(void) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        return n > 0 ? (unsigned) (n > 256 ? 256 : n) : 1;
}

void hex_encode(const uint8_t *bytes, size_t n, char *out) {
        static const char digits[] = "0123456789abcdef";
        for (size_t i = 0; i < n; i++) {
                out[2 * i] = digits[bytes[i] >> 4];
                out[2 * i + 1] = digits[bytes[i] & 15];
        }
        out[2 * n] = 0;
}

static int hex_value(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

int hex_decode(const char *hex, size_t n, uint8_t *out) {
        for (size_t i = 0; i < n; i++) {
                int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
                if (hi < 0 || lo < 0)
                        return -EINVAL;
                out[i] = (uint8_t) (hi << 4 | lo);
        }
        return 0;
}
