/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#define _cleanup_(f) __attribute__((cleanup(f)))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _unused_ __attribute__((unused))

static inline void freep(void *p) {
        free(*(void **) p);
}
static inline void closep(int *fd) {
        if (*fd >= 0) {
                int saved = errno;
                close(*fd);
                errno = saved;
        }
}
#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)

/* Hand a cleanup-owned value over to the caller. */
#define TAKE_PTR(p) ({ __typeof__(p) _p = (p); (p) = NULL; _p; })
#define TAKE_FD(fd) ({ int _fd = (fd); (fd) = -1; _fd; })

/* What a library function says went wrong, for the command layer to print
 * once. Library code never prints. */
typedef struct Diag {
        char msg[768];
} Diag;

/* Fills d (if not NULL) and returns err, which must be a negative errno. */
int diag_set(Diag *d, int err, const char *fmt, ...) _printf_(3, 4);

/* On-disk sizes (sectors, blocks, clusters) must be powers of two. */
static inline bool is_pow2(uint64_t v) {
        return v && !(v & (v - 1));
}

/* Explicit little- and big-endian readers for on-disk data. */
static inline uint16_t get_le16(const void *p) {
        const uint8_t *b = p;
        return (uint16_t) (b[0] | (b[1] << 8));
}
static inline uint32_t get_le32(const void *p) {
        const uint8_t *b = p;
        return (uint32_t) b[0] | ((uint32_t) b[1] << 8) | ((uint32_t) b[2] << 16) | ((uint32_t) b[3] << 24);
}
static inline uint64_t get_le64(const void *p) {
        return get_le32(p) | ((uint64_t) get_le32((const uint8_t *) p + 4) << 32);
}
static inline uint16_t get_be16(const void *p) {
        const uint8_t *b = p;
        return (uint16_t) ((b[0] << 8) | b[1]);
}
static inline uint32_t get_be32(const void *p) {
        const uint8_t *b = p;
        return ((uint32_t) b[0] << 24) | ((uint32_t) b[1] << 16) | ((uint32_t) b[2] << 8) | (uint32_t) b[3];
}
static inline uint64_t get_be64(const void *p) {
        return ((uint64_t) get_be32(p) << 32) | get_be32((const uint8_t *) p + 4);
}

static inline uint64_t div_round_up(uint64_t a, uint64_t b) {
        return a / b + (a % b != 0);
}

/* Parses a decimal unsigned number with optional surrounding ASCII
 * whitespace; -EINVAL when it is not one, -ERANGE when it overflows. */
int parse_u64(const char *s, size_t len, uint64_t *ret);

/* Parses a size with an optional binary suffix (K, M, G, T, with or without
 * "iB"); used for command-line options. */
int parse_size(const char *s, uint64_t *ret);

/* Formats a byte count the way bmaptool does ("1 byte", "511 bytes",
 * "802.5 KiB", ...), so that our bmap comments match its byte for byte. */
void format_human_size(uint64_t size, char *buf, size_t buflen);

/* Reads up to n bytes at off, retrying short reads; returns the number of
 * bytes read (less than n only at end of file) or a negative errno. */
ssize_t pread_full(int fd, void *buf, size_t n, uint64_t off);
int write_full(int fd, const void *buf, size_t n);

/* Reads a whole (small) file into memory, NUL-terminated, refusing files
 * larger than max. */
int read_file_full(const char *path, size_t max, char **ret_data, size_t *ret_len);

/* Writes data to path. A new path or a regular file is written through a
 * temporary file beside it, renamed into place after fsync, so that a
 * failure never leaves a half-written file (a symlink to a regular file:
 * the file it points to, the link kept). Anything else that exists (a
 * character device such as /dev/null, a FIFO, a socket, /dev/stdout or
 * /dev/fd/N) is opened and written directly: renaming over it would replace
 * a device node or a pipe with a regular file. A block device is refused
 * (-EINVAL): a bmap written over a disk is a mistake. */
int write_file_atomic(const char *path, const void *data, size_t len, Diag *d);

/* The length (1-4) of the valid UTF-8 sequence that starts at s, or 0 when
 * s[0] starts none (a stray continuation byte, an overlong form, a
 * surrogate, a code point past U+10FFFF, a sequence cut short). s is
 * NUL-terminated, so it never reads past the end. */
size_t utf8_sequence_length(const char *s);

/* A copy of s fit for one line of a terminal: control characters (C0, DEL
 * and C1; a newline included) and bytes that are not valid UTF-8 become '?'. Error
 * lines and the text reports show file names this way. NULL on ENOMEM. */
char *display_escape(const char *s);

/* Opens an image (flags: O_RDONLY or O_RDWR) without blocking: opening a
 * FIFO that no one writes to would wait forever, before anything could
 * look at what the path is. O_NONBLOCK is cleared again once it is open.
 * ret_st: the opened file's stat. */
struct stat;
int image_open(const char *path, int flags, int *ret_fd, struct stat *ret_st);

/* "a FIFO", "a character device", "a directory", ... for a message. */
const char *file_kind(unsigned mode);

/* A regular file whose st_size is 0 yet which reads data (/proc/version,
 * a sysfs attribute) has no size to map: 1 for such a file, 0 for an empty
 * one, or a negative errno. */
int file_reads_past_size(int fd);

unsigned cpu_count(void);

/* Looks the filesystem dev up in /proc/self/mountinfo: true when it is
 * mounted in our mount namespace, with its first mount point and its
 * filesystem type (either buffer may be NULL). */
bool mountinfo_find(dev_t dev, char *ret_where, size_t where_len, char *ret_fstype, size_t fstype_len);

/* The process umask (reading it means setting it: set it straight back). */
unsigned current_umask(void);

void hex_encode(const uint8_t *bytes, size_t n, char *out);
/* Decodes 2*n hex digits (either case) into n bytes; -EINVAL on a non-hex digit. */
int hex_decode(const char *hex, size_t n, uint8_t *out);
