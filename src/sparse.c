/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "sparse.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include "filemap.h"

int file_disk_usage(int fd, uint64_t *ret) {
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        *ret = (uint64_t) st.st_blocks * 512;
        return 0;
}

/* Is loop device NAME backed by the file (dev, ino)? The kernel answers
 * LOOP_GET_STATUS64 to root; sysfs gives the backing path to anyone. */
static bool loop_backed_by(const char *name, dev_t dev, ino_t ino) {
        char path[300], backing[4096];
        struct stat st;
        FILE *f;

        snprintf(path, sizeof(path), "/dev/%s", name);
        int lfd = open(path, O_RDONLY | O_CLOEXEC);
        if (lfd >= 0) {
                struct loop_info64 info;
                int k = ioctl(lfd, LOOP_GET_STATUS64, &info);
                close(lfd);
                if (k == 0)
                        return info.lo_device == dev && info.lo_inode == ino;
                if (errno == ENXIO)
                        return false; /* not attached */
        }
        snprintf(path, sizeof(path), "/sys/block/%s/loop/backing_file", name);
        f = fopen(path, "re");
        if (!f)
                return false;
        if (!fgets(backing, sizeof(backing), f)) {
                fclose(f);
                return false;
        }
        fclose(f);
        backing[strcspn(backing, "\n")] = 0;
        return stat(backing, &st) == 0 && st.st_dev == dev && st.st_ino == ino;
}

int sparse_lease_take(int fd, const char *path, Diag *d) {
        if (fcntl(fd, F_SETLEASE, F_WRLCK) == 0)
                return 1;
        /* The kernel's answer when the file is open anywhere else, for
         * reading or for writing. */
        if (errno == EAGAIN || errno == EBUSY)
                return diag_set(d, -EBUSY, "%s: another process has the file open; close it first", path);
        if (d)
                snprintf(d->msg, sizeof(d->msg),
                         "%s: no write lease (%s): another process that has it open would go unnoticed", path,
                         strerror(errno));
        return 0;
}

void sparse_lease_release(int fd) {
        (void) fcntl(fd, F_SETLEASE, F_UNLCK);
}

int sparse_check_image(int fd, const char *path, bool writing, Diag *d) {
        struct stat st;
        DIR *dir;
        struct dirent *de;

        if (fstat(fd, &st) < 0)
                return diag_set(d, -errno, "cannot stat '%s': %s", path, strerror(errno));
        if (!S_ISREG(st.st_mode))
                return diag_set(d, -EINVAL, "'%s' is not a regular file: only image files can be made sparse", path);
        /* The mode, not access(2): for root, access() always says yes. */
        if (writing && !(st.st_mode & 0222))
                return diag_set(d, -EACCES,
                                "'%s' is read-only (mode %04o): sparse would change it; make it writable first "
                                "(chmod u+w) if it may be changed",
                                path, (unsigned) (st.st_mode & 07777));
        dir = opendir("/sys/block");
        while (dir && (de = readdir(dir))) {
                if (strncmp(de->d_name, "loop", 4) != 0)
                        continue;
                if (loop_backed_by(de->d_name, st.st_dev, st.st_ino)) {
                        int r = diag_set(d, -EBUSY,
                                         "'%s' is attached to /dev/%s (it may be mounted or in use): detach it "
                                         "first (losetup -d /dev/%s)",
                                         path, de->d_name, de->d_name);
                        closedir(dir);
                        return r;
                }
        }
        if (dir)
                closedir(dir);
        if (writing) {
                /* Only a probe, after the loop check (an attached loop
                 * device holds the file open too, and its message says
                 * more); the lease is held around the punching itself. */
                int r = sparse_lease_take(fd, path, d);
                if (r < 0)
                        return r;
                if (r > 0)
                        sparse_lease_release(fd);
        }
        return 0;
}

int sparse_punch(int fd, const char *path, uint64_t image_size, uint64_t block_size, const Extents *mapped_blocks,
                 bool dry_run, bool leased, uint64_t *ret_would_free, uint64_t *ret_unmapped, Diag *d) {
        _cleanup_extents_ Extents holes = EXTENTS_INIT, data = EXTENTS_INIT;
        uint64_t blocks = div_round_up(image_size, block_size);
        int r;

        /* The punch list in blocks, then in bytes cut at the image end. */
        r = extents_complement(&holes, mapped_blocks, 0, blocks);
        if (r < 0)
                return r;
        for (size_t i = 0; i < holes.n; i++)
                holes.v[i] = extent_bytes(holes.v[i], block_size, image_size);
        *ret_unmapped = extents_total(&holes);

        /* What is allocated now, so that the report counts real savings. */
        FilemapMethod method;
        r = filemap_mapped_blocks(fd, image_size, 1, &data, &method, d);
        if (r < 0)
                return diag_set(d, r, "%s: cannot read its allocation map: %s", path, strerror(-r));
        {
                _cleanup_extents_ Extents x = EXTENTS_INIT;
                r = extents_copy(&x, &holes);
                if (r >= 0)
                        r = extents_intersect(&x, &data);
                if (r < 0)
                        return r;
                *ret_would_free = extents_total(&x);
                if (dry_run)
                        return 0;
                /* Punching a range that is a hole already is harmless, but
                 * skipping it saves a syscall per hole on a sparse image. */
                extents_done(&holes);
                holes = x;
                x = EXTENTS_INIT;
        }

        for (size_t i = 0; i < holes.n; i++) {
                const Extent *x = &holes.v[i];
                /* A break in progress shows as the lease it is going to:
                 * someone opened the file; let them in, punch no more. */
                if (leased && fcntl(fd, F_GETLEASE) != F_WRLCK)
                        return diag_set(d, -EBUSY,
                                        "%s: another process opened it while holes were punched: stopped after %zu "
                                        "of %zu ranges (mapped bytes are untouched); run sparse again once it is "
                                        "closed",
                                        path, i, holes.n);
                if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t) x->start,
                              (off_t) (x->end - x->start)) < 0) {
                        int e = errno;
                        if (i == 0 && (e == EOPNOTSUPP || e == ENOSYS))
                                return diag_set(d, -EOPNOTSUPP,
                                                "%s: the filesystem holding it cannot punch holes; nothing was "
                                                "changed (copy the image to ext4, xfs, btrfs or tmpfs)",
                                                path);
                        return diag_set(d, -e, "%s: punching bytes %llu-%llu failed: %s (%zu of %zu ranges done; "
                                        "mapped bytes are untouched)",
                                        path, (unsigned long long) x->start, (unsigned long long) x->end - 1,
                                        strerror(e), i, holes.n);
                }
        }
        return 0;
}
