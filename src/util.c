/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "util.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

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

int write_file_atomic(const char *path, const void *data, size_t len, Diag *d) {
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

unsigned current_umask(void) {
        mode_t m = umask(0);
        umask(m);
        return (unsigned) m;
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
