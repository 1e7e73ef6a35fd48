/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "image.h"

#include <fcntl.h>
#include <string.h>

static ssize_t fd_pread(void *ctx, uint64_t off, void *buf, size_t n) {
        return pread_full((int) (intptr_t) ctx, buf, n, off);
}

int image_open_fd(int fd, const char *path, uint64_t file_size, Image *ret, Diag *d) {
        uint8_t head[4];
        Qcow2 *q = NULL;

        if (pread_full(fd, head, sizeof(head), 0) == (ssize_t) sizeof(head) && qcow2_detect(head, sizeof(head))) {
                const char *slash = strrchr(path, '/');
                _cleanup_free_ char *dir = slash ? strndup(path, slash == path ? 1 : (size_t) (slash - path))
                                                 : strdup(".");
                if (!dir)
                        return diag_set(d, -ENOMEM, "%s: out of memory", path);
                Qcow2Host h = { .name = path, .pread = fd_pread, .ctx = (void *) (intptr_t) fd, .size = file_size,
                                .dir = dir };
                int r = qcow2_open(&h, &q, d);
                if (r < 0)
                        return r;
                *ret = (Image) { .fd = fd, .size = qcow2_size(q), .qcow2 = q };
                return 0;
        }
        *ret = image_raw(fd, file_size);
        return 0;
}

void image_done(Image *img) {
        if (!img)
                return;
        qcow2_free(img->qcow2);
        img->qcow2 = NULL;
        if (img->own_fd && img->fd >= 0)
                close(img->fd);
        img->own_fd = false;
        img->fd = -1;
}

int image_read(const Image *img, void *buf, size_t n, uint64_t off, Diag *d) {
        if (img->qcow2) {
                Diag local;
                return qcow2_pread(img->qcow2, buf, n, off, d ? d : &local);
        }
        ssize_t k = pread_full(img->fd, buf, n, off);
        if (k < 0)
                return d ? diag_set(d, (int) k, "read error at byte %llu: %s", (unsigned long long) off,
                                    strerror((int) -k))
                         : (int) k;
        if ((size_t) k < n)
                return -ENODATA;
        return 0;
}

int image_next_data(const Image *img, uint64_t from, uint64_t to, uint64_t *ret_start, uint64_t *ret_end) {
        if (from >= to)
                return 0;
        if (img->qcow2) {
                Diag d;
                while (from < to) {
                        uint64_t len;
                        Qcow2Kind k;
                        /* An error reads it all: the read then says what is wrong. */
                        if (qcow2_map(img->qcow2, from, to - from, &len, &k, &d) < 0) {
                                *ret_start = from;
                                *ret_end = to;
                                return 1;
                        }
                        if (k == QCOW2_DATA) {
                                *ret_start = from;
                                *ret_end = from + len;
                                return 1;
                        }
                        from += len;
                }
                return 0;
        }
        off_t dpos = lseek(img->fd, (off_t) from, SEEK_DATA);
        if (dpos < 0 && errno == ENXIO)
                return 0;
        *ret_start = from;
        *ret_end = to;
        if (dpos < 0)
                return 1; /* no SEEK_DATA: all of it */
        if ((uint64_t) dpos >= to)
                return 0;
        *ret_start = (uint64_t) dpos;
        off_t h = lseek(img->fd, dpos, SEEK_HOLE);
        if (h > dpos && (uint64_t) h < to)
                *ret_end = (uint64_t) h;
        return 1;
}

int image_qcow2_data(const Image *img, Extents *ret, Diag *d) {
        uint64_t off = 0;
        extents_clear(ret);
        while (off < img->size) {
                uint64_t len;
                Qcow2Kind k;
                int r = qcow2_map(img->qcow2, off, img->size - off, &len, &k, d);
                if (r < 0)
                        return r;
                if (k == QCOW2_DATA && (r = extents_add(ret, off, off + len)) < 0)
                        return diag_set(d, r, "out of memory");
                off += len;
        }
        return 0;
}
