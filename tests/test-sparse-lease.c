/* SPDX-License-Identifier: GPL-2.0-or-later */
/* sparse's write lease (sparse.h): refused while another descriptor has the
 * file open; held while punching; and a break in the middle (someone opens
 * the file) stops the punching before another hole is made. The break is
 * made for real: a child opens the file and waits for the lease, and the
 * parent polls F_GETLEASE until the kernel says a break is pending. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "check.h"
#include "sparse.h"

#define SIZE (1 << 20)
#define BS 4096

/* The file: every byte 0xAA, so that a punched hole reads as zeros. */
static int fill(int fd) {
        static uint8_t buf[SIZE];
        memset(buf, 0xaa, sizeof(buf));
        return pwrite(fd, buf, sizeof(buf), 0) == (ssize_t) sizeof(buf) && fsync(fd) == 0 ? 0 : -1;
}

static uint8_t byte_at(int fd, uint64_t off) {
        uint8_t b = 0x55;
        (void) !pread(fd, &b, 1, (off_t) off);
        return b;
}

int main(void) {
        const char *base = getenv("TEST_TMPDIR");
        char path[4096];
        _cleanup_extents_ Extents mapped = EXTENTS_INIT;
        uint64_t would, unmapped;
        Diag d = {};
        int r;

        mkdir(base ? base : "/tmp", 0755);
        snprintf(path, sizeof(path), "%s/test-sparse-lease.XXXXXX", base ? base : "/tmp");
        _cleanup_close_ int fd = mkostemp(path, O_CLOEXEC);
        CHECK(fd >= 0, "mkostemp %s", path);
        if (fd < 0)
                return 1;
        /* A lease break signals SIGIO, whose default action ends the process. */
        signal(SIGIO, SIG_IGN);
        CHECK(fill(fd) == 0, "filling %s", path);
        /* Only the first block is mapped: the rest is to be punched. */
        CHECK(extents_add(&mapped, 0, 1) == 0, "extents_add");

        r = sparse_lease_take(fd, path, &d);
        if (r == 0) {
                printf("skip: the filesystem of %s grants no lease: %s\n", path, d.msg);
                unlink(path);
                return 77;
        }
        CHECK(r == 1, "a lease on a file no one else has open: %d (%s)", r, d.msg);
        sparse_lease_release(fd);

        /* Another open descriptor: refused, with the line the user sees. */
        int other = open(path, O_RDONLY | O_CLOEXEC);
        CHECK(other >= 0, "second open");
        r = sparse_lease_take(fd, path, &d);
        CHECK(r == -EBUSY, "a lease while the file is open elsewhere: %d", r);
        CHECK_STR_CONTAINS(d.msg, "another process has the file open; close it first");
        CHECK(sparse_check_image(fd, path, true, &d) == -EBUSY, "sparse_check_image refuses it too");
        if (other >= 0)
                close(other);

        /* Held while punching, nobody else around: punched. */
        CHECK(sparse_lease_take(fd, path, &d) == 1, "lease: %s", d.msg);
        r = sparse_punch(fd, path, SIZE, BS, &mapped, false, true, &would, &unmapped, &d);
        CHECK(r == 0, "punching under the lease: %s", d.msg);
        sparse_lease_release(fd);
        CHECK(byte_at(fd, 0) == 0xaa && byte_at(fd, SIZE / 2) == 0, "block 0 kept, the rest punched");

        /* A break while the lease is held: a child opens the file (and waits
         * for the lease); punching must stop before its first hole. */
        CHECK(fill(fd) == 0, "refilling");
        CHECK(sparse_lease_take(fd, path, &d) == 1, "lease: %s", d.msg);
        pid_t child = fork();
        if (child == 0) {
                int c = open(path, O_RDONLY | O_CLOEXEC);
                _exit(c >= 0 ? 0 : 1);
        }
        CHECK(child > 0, "fork");
        bool broken = false;
        for (int i = 0; i < 6000 && !broken; i++) {
                broken = fcntl(fd, F_GETLEASE) != F_WRLCK;
                if (!broken)
                        nanosleep(&(struct timespec) { .tv_nsec = 10 * 1000 * 1000 }, NULL);
        }
        CHECK(broken, "the child's open never broke the lease (60 s)");
        r = sparse_punch(fd, path, SIZE, BS, &mapped, false, true, &would, &unmapped, &d);
        CHECK(r == -EBUSY, "punching after a break: %d (%s)", r, d.msg);
        CHECK_STR_CONTAINS(d.msg, "another process opened it while holes were punched");
        sparse_lease_release(fd);
        CHECK(byte_at(fd, SIZE / 2) == 0xaa, "nothing was punched after the break");
        int status = 0;
        CHECK(child > 0 && waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "the child's open went through once the lease was released");

        unlink(path);
        return check_exit("test-sparse-lease");
}
