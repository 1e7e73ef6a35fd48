/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "target.h"

#include "direct-io.h"

#include <dirent.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

struct Target {
        TargetKind kind;
        char *path;             /* as given, for messages */
        char *real_path;        /* regular files: where the file goes, links resolved */
        char *tmp_path;         /* regular files without O_TMPFILE: where the data goes until finish */
        char *stale;            /* stale temporaries removed on opening, "a, b" */
        int fd;
        DirectIO dio;           /* the same file opened O_DIRECT, where it can be */
        uint64_t image_size;
        bool finished;
        bool wrote;             /* any byte written yet */
        bool in_place;          /* an existing file written where it is (TargetOptions.in_place) */
        int read_fd;            /* target_read's O_DIRECT descriptor, opened on first use; -1: none yet */
        bool no_direct;         /* O_DIRECT reads are not possible here: read through the cache */
        /* Block devices: the whole disk in sysfs, and what we changed. */
        char disk[64];
        char saved_scheduler[64];
        char saved_max_ratio[32];
};

static int read_sysfs(const char *path, char *buf, size_t len) {
        FILE *f = fopen(path, "re");
        if (!f)
                return -errno;
        if (!fgets(buf, (int) len, f)) {
                fclose(f);
                return -EIO;
        }
        fclose(f);
        buf[strcspn(buf, "\n")] = 0;
        return 0;
}

static int write_sysfs(const char *path, const char *value) {
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        int r = write_full(fd, value, strlen(value));
        close(fd);
        return r;
}

/* The sysfs name of the whole disk holding block device dev ("sda" for
 * sda2), from /sys/dev/block/MAJ:MIN. */
static int whole_disk_of(dev_t dev, char *ret, size_t len, bool *ret_is_partition) {
        char link[128], target[PATH_MAX], partfile[PATH_MAX + 16];
        ssize_t n;

        snprintf(link, sizeof(link), "/sys/dev/block/%u:%u", major(dev), minor(dev));
        n = readlink(link, target, sizeof(target) - 1);
        if (n < 0)
                return -errno;
        target[n] = 0;
        snprintf(partfile, sizeof(partfile), "%s/partition", link);
        *ret_is_partition = access(partfile, F_OK) == 0;
        char *last = strrchr(target, '/');
        if (!last)
                return -EINVAL;
        if (*ret_is_partition) {
                /* .../block/sda/sda2: the parent directory is the disk. */
                *last = 0;
                last = strrchr(target, '/');
                if (!last)
                        return -EINVAL;
        }
        snprintf(ret, len, "%s", last + 1);
        return 0;
}

/* Is major:minor mounted (in our mount namespace)? */
static bool is_mounted(unsigned maj, unsigned min, char *where, size_t len) {
        return mountinfo_find(makedev(maj, min), where, len, NULL, 0);
}

static bool is_swap(const char *devname) {
        FILE *f = fopen("/proc/swaps", "re");
        char line[1024];
        bool found = false;
        if (!f)
                return false;
        while (!found && fgets(line, sizeof(line), f)) {
                char name[512];
                if (sscanf(line, "%511s", name) == 1 && strcmp(name, devname) == 0)
                        found = true;
        }
        fclose(f);
        return found;
}

/* Checks one sysfs block entry (the disk or one partition) for users:
 * mounted, swap, or holders (device mapper, md, bcache...). */
static int check_unused(const char *sysdir, const char *name, const char *target, Diag *d) {
        char path[PATH_MAX], devnum[32], where[2048];
        unsigned maj, min;
        DIR *dir;
        struct dirent *de;

        snprintf(path, sizeof(path), "%s/dev", sysdir);
        if (read_sysfs(path, devnum, sizeof(devnum)) < 0 || sscanf(devnum, "%u:%u", &maj, &min) != 2)
                return 0;
        if (is_mounted(maj, min, where, sizeof(where)))
                return diag_set(d, -EBUSY, "%s: /dev/%s is mounted on %s: unmount it first; nothing was written",
                                target, name, where);
        snprintf(path, sizeof(path), "/dev/%s", name);
        if (is_swap(path))
                return diag_set(d, -EBUSY, "%s: /dev/%s is in use as swap: swapoff it first; nothing was written",
                                target, name);
        snprintf(path, sizeof(path), "%s/holders", sysdir);
        dir = opendir(path);
        if (dir) {
                while ((de = readdir(dir)))
                        if (de->d_name[0] != '.') {
                                int r = diag_set(d, -EBUSY,
                                                 "%s: /dev/%s is held by %s (device mapper, RAID or similar): "
                                                 "release it first; nothing was written",
                                                 target, name, de->d_name);
                                closedir(dir);
                                return r;
                        }
                closedir(dir);
        }
        return 0;
}

/* The disk and every partition of it must be unused. */
static int check_disk_unused(const char *disk, const char *target, Diag *d) {
        char sysdir[PATH_MAX];
        DIR *dir;
        struct dirent *de;
        int r;

        snprintf(sysdir, sizeof(sysdir), "/sys/block/%s", disk);
        r = check_unused(sysdir, disk, target, d);
        if (r < 0)
                return r;
        dir = opendir(sysdir);
        if (!dir)
                return 0;
        while ((de = readdir(dir))) {
                char part[PATH_MAX + 300], marker[PATH_MAX + 320];
                if (strncmp(de->d_name, disk, strlen(disk)) != 0)
                        continue;
                snprintf(part, sizeof(part), "%s/%s", sysdir, de->d_name);
                snprintf(marker, sizeof(marker), "%s/partition", part);
                if (access(marker, F_OK) != 0)
                        continue;
                r = check_unused(part, de->d_name, target, d);
                if (r < 0)
                        break;
        }
        closedir(dir);
        return r < 0 ? r : 0;
}

/* For the copy: no I/O scheduler (the writes are large and sequential) and a
 * small share of the dirty page cache for this disk, so that a slow card
 * does not fill memory with dirty pages and stall the system. Both are
 * restored by target_free, also after errors and interrupts. */
static void tune(Target *t) {
        char path[PATH_MAX], cur[256];

        snprintf(path, sizeof(path), "/sys/block/%s/queue/scheduler", t->disk);
        if (read_sysfs(path, cur, sizeof(cur)) == 0) {
                char *open = strchr(cur, '['), *close = open ? strchr(open, ']') : NULL;
                if (open && close && close - open - 1 < (long) sizeof(t->saved_scheduler)) {
                        snprintf(t->saved_scheduler, sizeof(t->saved_scheduler), "%.*s", (int) (close - open - 1),
                                 open + 1);
                        if (strcmp(t->saved_scheduler, "none") == 0 || write_sysfs(path, "none") < 0)
                                t->saved_scheduler[0] = 0;
                }
        }
        snprintf(path, sizeof(path), "/sys/block/%s/bdi/max_ratio", t->disk);
        if (read_sysfs(path, t->saved_max_ratio, sizeof(t->saved_max_ratio)) == 0 &&
            strcmp(t->saved_max_ratio, "1") != 0) {
                if (write_sysfs(path, "1") < 0)
                        t->saved_max_ratio[0] = 0;
        } else
                t->saved_max_ratio[0] = 0;
}

static void untune(Target *t) {
        char path[PATH_MAX];

        if (t->saved_scheduler[0]) {
                snprintf(path, sizeof(path), "/sys/block/%s/queue/scheduler", t->disk);
                (void) write_sysfs(path, t->saved_scheduler);
                t->saved_scheduler[0] = 0;
        }
        if (t->saved_max_ratio[0]) {
                snprintf(path, sizeof(path), "/sys/block/%s/bdi/max_ratio", t->disk);
                (void) write_sysfs(path, t->saved_max_ratio);
                t->saved_max_ratio[0] = 0;
        }
}

static int open_block(Target *t, const struct stat *st, const TargetOptions *o, Diag *d) {
        bool is_partition = false;
        uint64_t size = 0;
        int ro = 0, r;

        r = whole_disk_of(st->st_rdev, t->disk, sizeof(t->disk), &is_partition);
        if (r < 0)
                return diag_set(d, r, "%s: cannot find its disk in /sys: %s", t->path, strerror(-r));
        if (o && o->removable_only) {
                char path[PATH_MAX], v[16];
                snprintf(path, sizeof(path), "/sys/block/%s/removable", t->disk);
                if (read_sysfs(path, v, sizeof(v)) < 0 || strcmp(v, "1") != 0)
                        return diag_set(d, -EPERM,
                                        "%s: /dev/%s is not a removable disk and --removable-device was given; "
                                        "nothing was written",
                                        t->path, t->disk);
        }
        /* Check the partitions first: O_EXCL on a whole disk does not see a
         * mounted partition. */
        r = check_disk_unused(t->disk, t->path, d);
        if (r < 0)
                return r;
        t->fd = open(t->path, O_WRONLY | O_EXCL | O_CLOEXEC);
        if (t->fd < 0) {
                if (errno == EBUSY)
                        return diag_set(d, -EBUSY, "%s: the device is in use (mounted or held); nothing was written",
                                        t->path);
                return diag_set(d, -errno, "%s: cannot open for writing: %s", t->path, strerror(errno));
        }
        if (ioctl(t->fd, BLKROGET, &ro) == 0 && ro)
                return diag_set(d, -EROFS, "%s: the device is read-only; nothing was written", t->path);
        if (ioctl(t->fd, BLKGETSIZE64, &size) < 0)
                return diag_set(d, -errno, "%s: cannot get its size: %s", t->path, strerror(errno));
        if (size < t->image_size) {
                char a[32], b[32];
                format_human_size(size, a, sizeof(a));
                format_human_size(t->image_size, b, sizeof(b));
                return diag_set(d, -ENOSPC,
                                "%s: the device (%s, %llu bytes) is smaller than the image (%s, %llu bytes); "
                                "nothing was written",
                                t->path, a, (unsigned long long) size, b, (unsigned long long) t->image_size);
        }
        if (!o || o->tune)
                tune(t);
        return 0;
}

/* ---- regular files -------------------------------------------------------- */

/* A temporary name beside the file: "NAME.bmapscan-" and 6 letters or
 * digits, as mkostemp makes them, so that stale ones can be told apart. */
#define TMP_INFIX ".bmapscan-"
#define TMP_RANDOM 6

static bool is_our_temporary(const char *name, const char *base) {
        size_t n = strlen(base), k = strlen(TMP_INFIX);

        if (strncmp(name, base, n) != 0 || strncmp(name + n, TMP_INFIX, k) != 0 || strlen(name + n + k) != TMP_RANDOM)
                return false;
        for (const char *p = name + n + k; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
                        return false;
        return true;
}

static int append_name(char **list, const char *name) {
        char *s;

        if (asprintf(&s, "%s%s%s", *list ? *list : "", *list ? ", " : "", name) < 0)
                return -ENOMEM;
        free(*list);
        *list = s;
        return 0;
}

/* Removes the temporaries that killed copies to the same file left: ours
 * by name, regular files owned by us, and not locked, i.e. not open in a
 * running copy (every copy holds an flock on its temporary until it ends,
 * and takes it before it trusts the file: see create_named). */
static int remove_stale(const char *real_path, char **ret_removed) {
        _cleanup_free_ char *dir_copy = strdup(real_path), *base_copy = strdup(real_path);
        DIR *dir;
        struct dirent *de;

        if (!dir_copy || !base_copy)
                return -ENOMEM;
        const char *base = basename(base_copy);
        dir = opendir(dirname(dir_copy));
        if (!dir)
                return -errno;
        while ((de = readdir(dir))) {
                struct stat st, fst;
                if (!is_our_temporary(de->d_name, base))
                        continue;
                if (fstatat(dirfd(dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode) ||
                    st.st_uid != geteuid())
                        continue;
                _cleanup_close_ int fd = openat(dirfd(dir), de->d_name,
                                                O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
                if (fd < 0 || fstat(fd, &fst) < 0 || fst.st_dev != st.st_dev || fst.st_ino != st.st_ino)
                        continue;
                if (flock(fd, LOCK_EX | LOCK_NB) < 0)
                        continue;
                /* Unlinked while the lock is held: a copy that created the
                 * file a moment ago and waits for the lock sees it gone. */
                if (unlinkat(dirfd(dir), de->d_name, 0) == 0 && append_name(ret_removed, de->d_name) < 0) {
                        closedir(dir);
                        return -ENOMEM;
                }
        }
        closedir(dir);
        return 0;
}

/* The fallback where the filesystem has no O_TMPFILE: a named temporary,
 * locked. mkostemp and flock are two steps: a stale cleanup by another copy
 * between them can remove the name, which the link count then shows. */
static int create_named(Target *t) {
        for (int tries = 0; tries < 100; tries++) {
                struct stat st;

                free(t->tmp_path);
                if (asprintf(&t->tmp_path, "%s" TMP_INFIX "XXXXXX", t->real_path) < 0) {
                        t->tmp_path = NULL;
                        return -ENOMEM;
                }
                t->fd = mkostemp(t->tmp_path, O_CLOEXEC);
                if (t->fd < 0) {
                        int e = errno;
                        free(t->tmp_path);
                        t->tmp_path = NULL;
                        return -e;
                }
                if (flock(t->fd, LOCK_EX) == 0 && fstat(t->fd, &st) == 0 && st.st_nlink > 0)
                        return 0;
                close(t->fd);
                t->fd = -1;
        }
        free(t->tmp_path);
        t->tmp_path = NULL;
        return -EBUSY;
}

/* --skip-identical onto an existing file: the file itself, locked against
 * a second copy to it. It is sized to the image (a larger one cut, a
 * smaller one grown with a hole) only by target_finish: a copy that fails
 * before it writes a byte (a damaged image, another DEST refused) leaves
 * the file as it was, as its message says. Past a smaller file's end the
 * comparison finds nothing and writes. */
static int open_in_place(Target *t, Diag *d) {
        struct stat st;

        t->fd = open(t->real_path, O_RDWR | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
        if (t->fd < 0)
                return diag_set(d, -errno, "%s: cannot open for writing in place: %s", t->path, strerror(errno));
        if (fstat(t->fd, &st) < 0 || !S_ISREG(st.st_mode))
                return diag_set(d, -EAGAIN, "%s: changed while it was being looked at: run again", t->path);
        if (flock(t->fd, LOCK_EX | LOCK_NB) < 0)
                return diag_set(d, -EBUSY, "%s: another copy is writing it; nothing was written", t->path);
        t->in_place = true;
        return 0;
}

static int open_file(Target *t, const TargetId *id, const TargetOptions *o, Diag *d) {
        _cleanup_free_ char *dir = strdup(id->path);
        struct stat st;
        int r;

        if (!dir)
                return -ENOMEM;
        t->real_path = strdup(id->path);
        if (!t->real_path)
                return -ENOMEM;
        if (o && o->in_place && id->exists)
                return open_in_place(t, d);
        r = remove_stale(t->real_path, &t->stale);
        if (r == -ENOMEM)
                return r;
        /* Unnamed, in the target's directory (the same filesystem, so that
         * it can be linked into place): a copy killed at any moment leaves
         * nothing behind. The lock is for the moment between linking it
         * under a temporary name and the rename (see target_finish). */
        t->fd = open(dirname(dir), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (t->fd >= 0)
                (void) flock(t->fd, LOCK_EX);
        else if (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL || errno == ENOENT) {
                r = create_named(t);
                if (r < 0)
                        return diag_set(d, r, "%s: cannot create a file in %s: %s", t->path, dir, strerror(-r));
        } else
                return diag_set(d, -errno, "%s: cannot create a file in %s: %s", t->path, dir, strerror(errno));
        (void) fchmod(t->fd, stat(t->real_path, &st) == 0 ? (st.st_mode & 07777) : (0666 & ~current_umask()));
        /* Sparse: unmapped blocks stay holes. */
        if (ftruncate(t->fd, (off_t) t->image_size) < 0) {
                int e = errno;
                return diag_set(d, -e, "%s: cannot size the file to %llu bytes: %s", t->path,
                                (unsigned long long) t->image_size, strerror(e));
        }
        return 0;
}

/* Gives the unnamed file its name: linked straight to the path when that
 * does not exist (atomic, no window), else under a fresh temporary name
 * renamed over it (linkat never replaces). */
static int link_into_place(Target *t, Diag *d) {
        char proc[64], name[PATH_MAX];

        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", t->fd);
        if (linkat(AT_FDCWD, proc, AT_FDCWD, t->real_path, AT_SYMLINK_FOLLOW) == 0)
                return 0;
        if (errno != EEXIST)
                return diag_set(d, -errno, "%s: cannot link the written file into place: %s", t->path,
                                strerror(errno));
        for (int tries = 0;; tries++) {
                static const char chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
                uint8_t rnd[TMP_RANDOM];
                char suffix[TMP_RANDOM + 1];

                if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t) sizeof(rnd))
                        return diag_set(d, -EIO, "%s: no random bytes for a temporary name", t->path);
                for (size_t i = 0; i < TMP_RANDOM; i++)
                        suffix[i] = chars[rnd[i] % (sizeof(chars) - 1)];
                suffix[TMP_RANDOM] = 0;
                if ((size_t) snprintf(name, sizeof(name), "%s" TMP_INFIX "%s", t->real_path, suffix) >= sizeof(name))
                        return diag_set(d, -ENAMETOOLONG, "%s: the path is too long", t->path);
                if (linkat(AT_FDCWD, proc, AT_FDCWD, name, AT_SYMLINK_FOLLOW) == 0)
                        break;
                if (errno != EEXIST || tries == 100)
                        return diag_set(d, -errno, "%s: cannot link the written file as %s: %s", t->path, name,
                                        strerror(errno));
        }
        if (rename(name, t->real_path) < 0) {
                int e = errno;
                (void) unlink(name);
                return diag_set(d, -e, "%s: cannot rename %s into place: %s", t->path, name, strerror(e));
        }
        return 0;
}

int target_open(const char *path, uint64_t image_size, const TargetOptions *o, Target **ret, Diag *d) {
        _cleanup_(target_id_done) TargetId id = {};
        Target *t;
        struct stat st;
        int r;

        r = target_identify(path, &id, d);
        if (r < 0)
                return r;
        t = calloc(1, sizeof(Target));
        if (!t)
                return -ENOMEM;
        t->fd = -1;
        t->dio.fd = -1;
        t->read_fd = -1;
        t->image_size = image_size;
        t->kind = id.kind;
        t->path = strdup(path);
        if (!t->path) {
                free(t);
                return -ENOMEM;
        }
        switch (id.kind) {
        case TARGET_BLOCK:
                if (stat(path, &st) < 0 || !S_ISBLK(st.st_mode) || st.st_rdev != id.dev)
                        r = diag_set(d, -EAGAIN, "%s: changed while it was being looked at: run again", path);
                else
                        r = open_block(t, &st, o, d);
                break;
        case TARGET_NULL:
                /* Nothing is opened: there is nothing to write. */
                r = 0;
                break;
        case TARGET_FILE:
                r = open_file(t, &id, o, d);
                break;
        }
        if (r < 0) {
                target_free(t);
                return r;
        }
        if (t->kind != TARGET_NULL)
                direct_io_open(&t->dio, t->fd);
        *ret = t;
        return 0;
}

int target_write(Target *t, const void *buf, size_t n, uint64_t offset, Diag *d) {
        const uint8_t *p = buf;

        if (t->kind == TARGET_NULL)
                return 0;
        t->wrote = true;
        while (n > 0) {
                ssize_t k = direct_io_pwrite(&t->dio, t->fd, p, n, offset);
                if (k < 0) {
                        if (k == -EINTR)
                                continue;
                        int e = (int) -k;
                        if (e == ENOSPC)
                                return diag_set(d, -e, "%s: no space left on the device at byte %llu", t->path,
                                                (unsigned long long) offset);
                        return diag_set(d, -e, "%s: write error at byte %llu: %s", t->path,
                                        (unsigned long long) offset, strerror(e));
                }
                if (k == 0)
                        return diag_set(d, -EIO, "%s: the device accepts no more data at byte %llu", t->path,
                                        (unsigned long long) offset);
                p += k;
                n -= (size_t) k;
                offset += (uint64_t) k;
        }
        return 0;
}

int target_finish(Target *t, Diag *d) {
        struct stat st;

        if (t->finished)
                return 0;
        /* A size known only at the end was set by target_complete. */
        if (t->in_place && t->image_size > 0 && fstat(t->fd, &st) == 0 && (uint64_t) st.st_size != t->image_size &&
            ftruncate(t->fd, (off_t) t->image_size) < 0)
                return diag_set(d, -errno, "%s: cannot size the file to %llu bytes: %s", t->path,
                                (unsigned long long) t->image_size, strerror(errno));
        if (t->kind != TARGET_NULL && fsync(t->fd) < 0)
                return diag_set(d, -errno, "%s: flushing the data to the device failed: %s", t->path,
                                strerror(errno));
        if (t->kind == TARGET_FILE && !t->in_place) {
                if (t->tmp_path) {
                        if (rename(t->tmp_path, t->real_path) < 0)
                                return diag_set(d, -errno, "%s: cannot rename %s into place: %s", t->path,
                                                t->tmp_path, strerror(errno));
                        free(t->tmp_path);
                        t->tmp_path = NULL;
                } else {
                        int r = link_into_place(t, d);
                        if (r < 0)
                                return r;
                }
                /* And the new name itself, so that it survives a crash. */
                _cleanup_free_ char *copy = strdup(t->real_path);
                if (copy) {
                        int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                        if (dfd >= 0) {
                                (void) fsync(dfd);
                                close(dfd);
                        }
                }
        }
        if (t->kind == TARGET_BLOCK)
                untune(t);
        t->finished = true;
        return 0;
}

int target_complete(Target *t, const TargetCompletion *c, uint64_t total, Diag *d) {
        int r;

        if (c->size_at_end && t->kind == TARGET_FILE && ftruncate(t->fd, (off_t) total) < 0)
                return diag_set(d, -errno, "%s: cannot size the file: %s", t->path, strerror(errno));
        int discarded = 0;
        Diag dd = {};
        if (c->discard && t->kind == TARGET_BLOCK)
                discarded = target_discard(t, c->discard, &dd);
        r = target_finish(t, d);
        if (r < 0)
                return r;
        if (discarded < 0)
                return diag_set(d, discarded,
                                "%s: the image was written and flushed, but not the discard asked for: %s", t->path,
                                discarded == -EOPNOTSUPP ? "the device does not support discard; run without --discard"
                                                         : dd.msg);
        return 0;
}

void target_free(Target *t) {
        if (!t)
                return;
        if (t->tmp_path) {
                (void) unlink(t->tmp_path);
                free(t->tmp_path);
        }
        untune(t);
        direct_io_close(&t->dio);
        if (t->fd >= 0)
                close(t->fd);
        if (t->read_fd >= 0)
                close(t->read_fd);
        free(t->path);
        free(t->real_path);
        free(t->stale);
        free(t);
}

TargetKind target_kind(const Target *t) {
        return t->kind;
}

const char *target_path(const Target *t) {
        return t->path;
}

const char *target_stale_removed(const Target *t) {
        return t->stale;
}

int target_fd(const Target *t) {
        return t->fd;
}

uint64_t target_direct_bytes(const Target *t) {
        return t->dio.direct_bytes;
}

const char *target_state_after_failure(const Target *t) {
        if (t->kind == TARGET_NULL)
                return "nothing was written (a sink)";
        if (t->finished)
                return t->kind == TARGET_FILE ? "the target file holds the whole image, written and flushed"
                                              : "the target holds the whole image, written and flushed";
        switch (t->kind) {
        case TARGET_FILE:
                if (t->in_place)
                        return t->wrote ? "the file was partly updated in place (--skip-identical) and does not hold "
                                          "a usable image: copy again"
                                        : "the target file was not changed";
                return "the target file was not changed (the copy went to a temporary file, now gone)";
        case TARGET_BLOCK:
                return t->wrote ? "the device is partly written and does not hold a usable image: flash it again"
                                : "nothing was written to the device";
        case TARGET_NULL:
                break;
        }
        return "the output is incomplete";
}

int target_discard(Target *t, const Extents *bytes, Diag *d) {
        if (t->kind != TARGET_BLOCK)
                return 0;
        int sector = 512;
        if (ioctl(t->fd, BLKSSZGET, &sector) < 0 || sector <= 0)
                sector = 512;
        EXTENTS_FOREACH(x, bytes) {
                /* Only whole sectors, and only inside the range: a sector
                 * that also holds mapped bytes is never discarded. */
                uint64_t s = (x->start + (uint64_t) sector - 1) / (uint64_t) sector * (uint64_t) sector;
                uint64_t e = x->end / (uint64_t) sector * (uint64_t) sector;
                if (s >= e)
                        continue;
                uint64_t range[2] = { s, e - s };
                if (ioctl(t->fd, BLKDISCARD, range) < 0) {
                        if (errno == EOPNOTSUPP || errno == ENOTTY)
                                return diag_set(d, -EOPNOTSUPP, "%s: the device does not support discard", t->path);
                        return diag_set(d, -errno, "%s: discarding bytes %llu-%llu failed: %s", t->path,
                                        (unsigned long long) s, (unsigned long long) e - 1,
                                        strerror(errno));
                }
        }
        return 0;
}

int target_open_for_verify(const char *path, int *ret_fd, Diag *d) {
        struct stat st;
        int fd = open(path, O_RDONLY | O_CLOEXEC);

        if (fd < 0)
                return diag_set(d, -errno, "cannot open '%s' to read it back: %s", path, strerror(errno));
        if (fstat(fd, &st) == 0 && S_ISBLK(st.st_mode)) {
                /* Drop the device's cached pages, so that what is read back
                 * comes from the device, not from memory. */
                (void) fsync(fd);
                (void) ioctl(fd, BLKFLSBUF, 0);
        }
        (void) posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        *ret_fd = fd;
        return 0;
}

/* ---- reading what the target holds ---------------------------------------- */

static int open_read_fd(Target *t) {
        char proc[64];

        /* The very file or device open for writing, also an unnamed file. */
        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", t->fd);
        t->read_fd = open(proc, O_RDONLY | O_DIRECT | O_CLOEXEC);
        if (t->read_fd >= 0)
                return 0;
        /* tmpfs and some FUSE filesystems refuse O_DIRECT. */
        t->no_direct = true;
        t->read_fd = open(proc, O_RDONLY | O_CLOEXEC);
        return t->read_fd >= 0 ? 0 : -errno;
}

static ssize_t read_at(int fd, uint8_t *p, size_t n, uint64_t offset) {
        size_t done = 0;

        while (done < n) {
                ssize_t k = pread(fd, p + done, n - done, (off_t) (offset + done));
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        break;
                done += (size_t) k;
        }
        return (ssize_t) done;
}

/* O_DIRECT for a range that is not aligned (a piece ending inside a block
 * at the image's end, a 4 KiB-sector device): the whole 4 KiB blocks around
 * it, through a buffer of its own. */
static ssize_t read_direct_around(int fd, uint8_t *buf, size_t n, uint64_t offset) {
        uint64_t start = offset / 4096 * 4096, end = (offset + n + 4095) / 4096 * 4096;
        _cleanup_free_ uint8_t *b = aligned_alloc(4096, (size_t) (end - start));

        if (!b)
                return -ENOMEM;
        ssize_t k = read_at(fd, b, (size_t) (end - start), start);
        if (k < 0)
                return k;
        size_t skip = (size_t) (offset - start);
        size_t got = (size_t) k <= skip ? 0 : (size_t) k - skip < n ? (size_t) k - skip : n;
        memcpy(buf, b + skip, got);
        return (ssize_t) got;
}

int target_read(Target *t, void *buf, size_t n, uint64_t offset, Diag *d) {
        ssize_t k = -EINVAL;
        int r;

        if (t->kind == TARGET_NULL)
                return diag_set(d, -EOPNOTSUPP, "%s: nothing to read", t->path);
        if (t->read_fd < 0) {
                r = open_read_fd(t);
                if (r < 0)
                        return diag_set(d, r, "%s: cannot open it to read it: %s", t->path, strerror(-r));
        }
        bool aligned = ((uintptr_t) buf | n | offset) % 512 == 0;
        if (!t->no_direct && aligned)
                k = read_at(t->read_fd, buf, n, offset);
        /* Not through the cache when O_DIRECT works at all: a block
         * device's cached pages can be older than the device (they live
         * as long as anyone holds it open), and dropping them first drops
         * only the pages wholly inside the range. */
        if (!t->no_direct && k == -EINVAL)
                k = read_direct_around(t->read_fd, buf, n, offset);
        if (k == -EINVAL) {
                /* Not aligned enough for O_DIRECT here: through the cache,
                 * whose copy of the range is dropped first. */
                _cleanup_close_ int own = -1;
                int fd = t->read_fd;
                if (!t->no_direct) {
                        char proc[64];
                        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", t->fd);
                        fd = own = open(proc, O_RDONLY | O_CLOEXEC);
                        if (fd < 0)
                                return diag_set(d, -errno, "%s: cannot open it to read it: %s", t->path,
                                                strerror(errno));
                }
                /* Every page the range touches: the kernel keeps the
                 * pages a range only partly covers. */
                uint64_t from = offset / 4096 * 4096;
                (void) posix_fadvise(fd, (off_t) from, (off_t) ((offset + n + 4095) / 4096 * 4096 - from),
                                     POSIX_FADV_DONTNEED);
                k = read_at(fd, buf, n, offset);
        }
        if (k < 0)
                return diag_set(d, (int) k, "%s: read error at byte %llu: %s", t->path, (unsigned long long) offset,
                                strerror((int) -k));
        if ((size_t) k < n)
                return diag_set(d, -EIO, "%s: ends at byte %llu, before the image does", t->path,
                                (unsigned long long) (offset + (uint64_t) k));
        return 0;
}

int target_sync(Target *t, Diag *d) {
        if (t->kind == TARGET_NULL)
                return 0;
        if (fdatasync(t->fd) < 0)
                return diag_set(d, -errno, "%s: flushing the data to the device failed: %s", t->path,
                                strerror(errno));
        return 0;
}

bool target_can_compare(const Target *t) {
        return t->kind == TARGET_BLOCK || (t->kind == TARGET_FILE && t->in_place);
}
