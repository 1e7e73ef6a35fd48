/* SPDX-License-Identifier: GPL-2.0-or-later */
/* direct-io.h: writes of every shape (offsets and lengths inside a block,
 * buffers at any address, pieces of one byte) land exactly where a
 * buffered pwrite would put them, however they are split between the
 * O_DIRECT descriptor and the buffered one; the aligned middles go direct.
 * The file lives in TEST_TMPDIR (ext4 here; where the filesystem has no
 * O_DIRECT the same writes are checked buffered). A 4096-byte alignment
 * is imposed on whatever the file reports, to play a 4Kn disk. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "direct-io.h"

#define FILE_SIZE (3u << 20)
#define ROUNDS 400

static uint32_t rnd_state = 12345;
static uint32_t rnd(void) {
        rnd_state = rnd_state * 1103515245u + 12345u;
        return rnd_state >> 8;
}

/* What target_write does: the whole buffer, piece by piece. */
static int write_all(DirectIO *dio, int fd, const uint8_t *p, size_t n, uint64_t offset) {
        while (n > 0) {
                ssize_t k = direct_io_pwrite(dio, fd, p, n, offset);
                if (k == -EINTR)
                        continue;
                if (k <= 0)
                        return k < 0 ? (int) k : -EIO;
                p += k;
                n -= (size_t) k;
                offset += (uint64_t) k;
        }
        return 0;
}

static void run(const char *path, uint32_t align, uint32_t mem_align) {
        uint8_t *want = calloc(1, FILE_SIZE), *got = malloc(FILE_SIZE), *src = NULL;
        int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        DirectIO dio;

        CHECK(fd >= 0 && want && got && posix_memalign((void **) &src, 4096, FILE_SIZE + 8192) == 0,
              "cannot set up %s", path);
        if (fd < 0 || !want || !got || !src)
                goto out;
        CHECK(ftruncate(fd, FILE_SIZE) == 0, "cannot size %s", path);
        direct_io_open(&dio, fd);
        bool direct = dio.fd >= 0;
        if (direct) {
                dio.offset_align = align;
                dio.mem_align = mem_align;
        } else
                printf("no O_DIRECT in %s: the writes are checked buffered\n", path);
        for (int i = 0; i < ROUNDS; i++) {
                /* Mostly block-shaped writes, some of any shape. */
                uint64_t off = rnd() % FILE_SIZE;
                size_t len = 1 + rnd() % (600u << 10);
                if (rnd() % 2)
                        off = off / align * align;
                if (rnd() % 2)
                        len = (len + align - 1) / align * align;
                if (off + len > FILE_SIZE)
                        len = FILE_SIZE - off;
                size_t shift = rnd() % 3 == 0 ? rnd() % 4096 : 0; /* an unaligned buffer: the bounce path */
                uint8_t *p = src + shift;
                for (size_t j = 0; j < len; j++)
                        p[j] = (uint8_t) rnd();
                int r = write_all(&dio, fd, p, len, off);
                CHECK(r == 0, "write %d (%zu bytes at %llu) failed: %d", i, len, (unsigned long long) off, r);
                memcpy(want + off, p, len);
        }
        CHECK(fsync(fd) == 0, "fsync");
        CHECK(pread(fd, got, FILE_SIZE, 0) == (ssize_t) FILE_SIZE, "cannot read %s back", path);
        size_t bad = 0;
        while (bad < FILE_SIZE && got[bad] == want[bad])
                bad++;
        CHECK(bad == FILE_SIZE, "alignment %u/%u: byte %zu is %u, expected %u", align, mem_align, bad,
              bad < FILE_SIZE ? got[bad] : 0, bad < FILE_SIZE ? want[bad] : 0);
        if (direct)
                CHECK(dio.direct_bytes > FILE_SIZE / 2, "alignment %u/%u: only %llu bytes went direct", align,
                      mem_align, (unsigned long long) dio.direct_bytes);
        direct_io_close(&dio);
        CHECK(dio.fd == -1 && !dio.bounce, "direct_io_close leaves nothing open");
out:
        if (fd >= 0)
                close(fd);
        unlink(path);
        free(want);
        free(got);
        free(src);
}

int main(void) {
        const char *base = getenv("TEST_TMPDIR");
        char path[4096];

        mkdir(base ? base : "/tmp", 0755);
        snprintf(path, sizeof(path), "%s/test-direct-io.%d", base ? base : "/tmp", (int) getpid());
        /* A 4Kn disk; a 512-byte one with page-aligned buffers; the same
         * with buffers that need no more than 512. */
        run(path, 4096, 4096);
        run(path, 512, 4096);
        run(path, 512, 512);

        /* A file that is not a regular file or a device gets no O_DIRECT. */
        DirectIO dio;
        int p[2];
        if (pipe(p) == 0) {
                direct_io_open(&dio, p[1]);
                CHECK(dio.fd == -1, "a pipe got an O_DIRECT descriptor");
                direct_io_close(&dio);
                close(p[0]);
                close(p[1]);
        }
        return check_exit("test-direct-io");
}
