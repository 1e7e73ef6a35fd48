/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The Input over a file descriptor (a file, a device, stdin), and the one
 * whose waits for a pipe can be cancelled. */
#include <fcntl.h>
#include <linux/fs.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include "stream.h"

static ssize_t fd_read(void *ctx, void *buf, size_t n) {
        int fd = *(int *) ctx;
        for (;;) {
                ssize_t k = read(fd, buf, n);
                if (k >= 0)
                        return k;
                if (errno != EINTR)
                        return -errno;
        }
}

static int fd_seek(void *ctx, uint64_t offset) {
        int fd = *(int *) ctx;
        if (offset > INT64_MAX)
                return -EINVAL;
        if (lseek(fd, (off_t) offset, SEEK_SET) < 0)
                return -errno;
        return 0;
}

/* How long a wait for a pipe's data may hide a cancel request. */
#define FD_POLL_MS 250

static ssize_t fd_source_read(void *ctx, void *buf, size_t n) {
        FdSource *src = ctx;
        for (;;) {
                struct pollfd p = { .fd = src->fd, .events = POLLIN };
                if (src->cancel && *src->cancel)
                        return -ECANCELED;
                int k = poll(&p, 1, FD_POLL_MS);
                if (k < 0 && errno != EINTR)
                        return -errno;
                if (k > 0)
                        return fd_read(&src->fd, buf, n);
        }
}

Input input_from_fd_source(FdSource *src, const char *name) {
        Input in = input_from_fd(&src->fd, name);
        /* A file or a device always has data (or its end) at hand. */
        if (!in.seek)
                in.read = fd_source_read;
        in.ctx = src;
        return in;
}

void fd_source_done(FdSource *src) {
        closep(&src->fd);
        src->fd = -1;
}

Input input_from_fd(int *fd, const char *name) {
        Input in = {
                .name = name,
                .ctx = fd,
                .read = fd_read,
        };
        struct stat st;

        if (fstat(*fd, &st) < 0)
                return in;
        /* Offsets given to seek are offsets in the input, which are file
         * offsets only when reading starts at 0 (not so for a shell's
         * "{ head -c 1; cat; } < file"-style inherited position). */
        if ((S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)) && lseek(*fd, 0, SEEK_CUR) == 0) {
                in.seek = fd_seek;
                in.local = true;
                if (S_ISREG(st.st_mode))
                        in.size = (uint64_t) st.st_size;
                else {
                        uint64_t size;
                        if (ioctl(*fd, BLKGETSIZE64, &size) == 0)
                                in.size = size;
                }
                /* Bigger kernel read-ahead for the one sequential pass. */
                (void) posix_fadvise(*fd, 0, 0, POSIX_FADV_SEQUENTIAL);
        }
        return in;
}

void input_close(Input *in) {
        if (in->close)
                in->close(in->ctx);
        *in = (Input) {};
}
