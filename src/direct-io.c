/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "direct-io.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

/* A bounce buffer is only needed for a buffer that the caller did not
 * align (copy.c's chunks are page-aligned): small, and reused. */
#define BOUNCE_SIZE (1u << 20)
/* Larger alignments than this are not worth the special cases. */
#define MAX_ALIGN (64u << 10)

static bool power_of_two(uint32_t v) {
        return v > 0 && (v & (v - 1)) == 0;
}

void direct_io_open(DirectIO *dio, int fd) {
        char proc[64];
        struct stat st;
        struct statx stx;

        *dio = (DirectIO) { .fd = -1 };
        if (fd < 0 || fstat(fd, &st) < 0 || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)))
                return;
        /* Through /proc, not the path: the very file fd has (an unnamed
         * O_TMPFILE, a device reached through a link that may have
         * changed since). Without O_EXCL: fd holds the device's claim. */
        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
        int dfd = open(proc, O_WRONLY | O_DIRECT | O_CLOEXEC | O_NOCTTY);
        if (dfd < 0)
                return;
        uint32_t offset_align = 0, mem_align = 0;
        if (statx(dfd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 && (stx.stx_mask & STATX_DIOALIGN)) {
                /* Zero: this file has no direct I/O, whatever open said. */
                offset_align = stx.stx_dio_offset_align;
                mem_align = stx.stx_dio_mem_align;
        } else {
                /* An older kernel or a filesystem that does not say: the
                 * device's logical block, else a page, fits every case. */
                int sector = 0;
                offset_align = S_ISBLK(st.st_mode) && ioctl(dfd, BLKSSZGET, &sector) == 0 && sector > 0
                                       ? (uint32_t) sector
                                       : 4096;
                mem_align = offset_align < 4096 ? 4096 : offset_align;
        }
        if (!power_of_two(offset_align) || !power_of_two(mem_align) || offset_align > MAX_ALIGN ||
            mem_align > MAX_ALIGN) {
                close(dfd);
                return;
        }
        dio->fd = dfd;
        dio->offset_align = offset_align;
        dio->mem_align = mem_align;
}

static void direct_io_disable(DirectIO *dio) {
        if (dio->fd >= 0)
                close(dio->fd);
        dio->fd = -1;
}

ssize_t direct_io_pwrite(DirectIO *dio, int fd, const void *buf, size_t n, uint64_t offset) {
        ssize_t k;

        if (dio->fd >= 0) {
                uint64_t a = dio->offset_align, head = offset % a;
                if (head == 0 && n >= a) {
                        size_t len = n - n % a;
                        const void *src = buf;
                        if ((uintptr_t) buf % dio->mem_align != 0) {
                                if (!dio->bounce &&
                                    posix_memalign((void **) &dio->bounce,
                                                   dio->mem_align < sizeof(void *) ? sizeof(void *) : dio->mem_align,
                                                   BOUNCE_SIZE) != 0)
                                        dio->bounce = NULL;
                                if (dio->bounce && BOUNCE_SIZE % a == 0) {
                                        if (len > BOUNCE_SIZE)
                                                len = BOUNCE_SIZE;
                                        memcpy(dio->bounce, buf, len);
                                        src = dio->bounce;
                                } else
                                        src = NULL;
                        }
                        if (src) {
                                k = pwrite(dio->fd, src, len, (off_t) offset);
                                if (k >= 0) {
                                        dio->direct_bytes += (uint64_t) k;
                                        return k;
                                }
                                /* EINVAL: this file takes no direct writes
                                 * after all (or not these): buffered from
                                 * now on, starting with this one. */
                                if (errno != EINVAL)
                                        return -errno;
                                direct_io_disable(dio);
                        } else if (n > a)
                                n = a; /* no bounce buffer: this block buffered, the next ones direct */
                } else if (head != 0 && n > a - head)
                        n = (size_t) (a - head); /* buffered up to the next aligned offset */
        }
        k = pwrite(fd, buf, n, (off_t) offset);
        return k < 0 ? -errno : k;
}

void direct_io_close(DirectIO *dio) {
        direct_io_disable(dio);
        free(dio->bounce);
        dio->bounce = NULL;
}
