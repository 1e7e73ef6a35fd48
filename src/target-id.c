/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What a DEST path names, before anything is opened: symbolic links
 * followed, the paths that must never become files (a missing /dev/sdX)
 * and the node types that are no target refused, and the identity that
 * tells one target given twice. */
#include "target.h"

#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

/* Symbolic links followed before giving up, as the kernel's own limit. */
#define MAX_LINKS 40

/* Follows path through symbolic links to the name that does not exist:
 * where a new file would be created by open(O_CREAT). */
static int resolve_missing(const char *path, char **ret) {
        _cleanup_free_ char *cur = strdup(path);
        struct stat st;

        if (!cur)
                return -ENOMEM;
        for (int i = 0; i < MAX_LINKS; i++) {
                char link[PATH_MAX];
                ssize_t n;

                if (lstat(cur, &st) < 0) {
                        if (errno != ENOENT)
                                return -errno;
                        *ret = TAKE_PTR(cur);
                        return 0;
                }
                if (!S_ISLNK(st.st_mode))
                        return -EEXIST; /* appeared meanwhile */
                n = readlink(cur, link, sizeof(link) - 1);
                if (n < 0)
                        return -errno;
                link[n] = 0;
                char *next;
                if (link[0] == '/')
                        next = strdup(link);
                else {
                        _cleanup_free_ char *dir = strdup(cur);
                        if (!dir || asprintf(&next, "%s/%s", dirname(dir), link) < 0)
                                next = NULL;
                }
                if (!next)
                        return -ENOMEM;
                free(cur);
                cur = next;
        }
        return -ELOOP;
}

/* devtmpfs has the statfs magic of tmpfs: only mountinfo tells them apart. */
static bool is_devtmpfs(dev_t dev) {
        char type[64];
        return mountinfo_find(dev, NULL, 0, type, sizeof(type)) && strcmp(type, "devtmpfs") == 0;
}

/* Is real_path (links resolved), on the filesystem dev, a place where only
 * device nodes belong: the filesystem of /dev (devtmpfs, or the tmpfs a
 * container puts there, but not /dev/shm, a filesystem of its own), or a
 * devtmpfs mounted anywhere. */
static bool on_dev_fs(const char *real_path, dev_t dev) {
        struct stat st;

        if (strncmp(real_path, "/dev/", 5) == 0 && stat("/dev", &st) == 0 && st.st_dev == dev)
                return true;
        return is_devtmpfs(dev);
}

static const char *const NO_DEVICE_HINT = "nothing was written (lsblk lists the disks)";

static int identify_missing(const char *path, TargetId *id, Diag *d) {
        _cleanup_free_ char *missing = NULL, *dir = NULL, *base = NULL, *real_dir = NULL;
        struct stat st;
        int r;

        r = resolve_missing(path, &missing);
        if (r == -EEXIST)
                return diag_set(d, -EAGAIN, "%s: appeared while it was being looked at: run again", path);
        if (r < 0)
                return diag_set(d, r, "%s: cannot follow its links: %s", path, strerror(-r));
        dir = strdup(missing);
        base = strdup(missing);
        if (!dir || !base)
                return -ENOMEM;
        const char *b = basename(base);
        if (strcmp(b, ".") == 0 || strcmp(b, "..") == 0 || strcmp(b, "/") == 0)
                return diag_set(d, -EISDIR, "%s: names a directory, not a file or a device", path);
        real_dir = realpath(dirname(dir), NULL);
        if (!real_dir || stat(real_dir, &st) < 0) {
                int e = errno;
                if (strncmp(missing, "/dev/", 5) == 0)
                        return diag_set(d, -ENODEV, "%s: no such device; %s", path, NO_DEVICE_HINT);
                return diag_set(d, -e, "%s: cannot create it in %s: %s; nothing was written", path, dir,
                                strerror(e));
        }
        if (asprintf(&id->path, "%s/%s", strcmp(real_dir, "/") == 0 ? "" : real_dir, b) < 0) {
                id->path = NULL;
                return -ENOMEM;
        }
        if (on_dev_fs(id->path, st.st_dev)) {
                if (strcmp(missing, path) != 0)
                        return diag_set(d, -ENODEV, "%s: no such device (the link leads to %s, which does not exist); %s",
                                        path, missing, NO_DEVICE_HINT);
                return diag_set(d, -ENODEV, "%s: no such device; %s", path, NO_DEVICE_HINT);
        }
        id->kind = TARGET_FILE;
        id->exists = false;
        return 0;
}

int target_identify(const char *path, TargetId *ret, Diag *d) {
        TargetId id = {};
        struct stat st;
        int r = 0;

        if (stat(path, &st) < 0) {
                if (errno != ENOENT)
                        return diag_set(d, -errno, "%s: %s", path, strerror(errno));
                r = identify_missing(path, &id, d);
        } else if (S_ISBLK(st.st_mode)) {
                id = (TargetId) { .kind = TARGET_BLOCK, .exists = true, .dev = st.st_rdev };
        } else if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3)) {
                /* /dev/null, under any name: major 1, minor 3 on Linux. */
                id = (TargetId) { .kind = TARGET_NULL, .exists = true, .dev = st.st_rdev };
        } else if (S_ISCHR(st.st_mode)) {
                r = diag_set(d, -EINVAL,
                             "%s: a character device, not a disk (only /dev/null is taken, to verify without "
                             "writing); nothing was written (lsblk lists the disks)",
                             path);
        } else if (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)) {
                r = diag_set(d, -EINVAL,
                             "%s: a %s, not a file or a disk: an image cannot be written there (for a stream, "
                             "decompress with the format's own tool); nothing was written",
                             path, S_ISFIFO(st.st_mode) ? "FIFO" : "socket");
        } else if (S_ISDIR(st.st_mode)) {
                r = diag_set(d, -EISDIR, "%s: a directory: name a file or a device in it; nothing was written", path);
        } else if (!S_ISREG(st.st_mode)) {
                r = diag_set(d, -EINVAL, "%s: not a regular file or a device: refusing to write there", path);
        } else {
                id = (TargetId) { .kind = TARGET_FILE, .exists = true, .dev = st.st_dev, .ino = st.st_ino };
                id.path = realpath(path, NULL);
                if (!id.path)
                        r = diag_set(d, -errno, "%s: %s", path, strerror(errno));
                else if (on_dev_fs(id.path, st.st_dev))
                        r = diag_set(d, -ENODEV,
                                     "%s: a regular file on the /dev filesystem, not a device (left by an earlier "
                                     "copy? remove it); %s",
                                     path, NO_DEVICE_HINT);
        }
        if (r < 0) {
                target_id_done(&id);
                return r;
        }
        *ret = id;
        return 0;
}

bool target_id_equal(const TargetId *a, const TargetId *b) {
        if (a->kind != b->kind)
                return false;
        switch (a->kind) {
        case TARGET_BLOCK:
                return a->dev == b->dev;
        case TARGET_NULL:
                /* A sink, twice: harmless, and nothing to refuse. */
                return false;
        case TARGET_FILE:
                if (a->exists && b->exists)
                        return a->dev == b->dev && a->ino == b->ino;
                return !a->exists && !b->exists && strcmp(a->path, b->path) == 0;
        }
        return false;
}

void target_id_done(TargetId *id) {
        free(id->path);
        id->path = NULL;
}
