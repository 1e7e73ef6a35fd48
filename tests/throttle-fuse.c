/* SPDX-License-Identifier: GPL-2.0-or-later */
/* throttle-fuse: a FUSE filesystem that makes files as slow as an SD card,
 * for the benchmark's throttled targets and the tests (a test helper, not
 * part of bmapscan).
 *
 *   throttle-fuse -o backing=DIR[,write_rate=20M][,read_rate=60M]
 *                 [,fail_write=OFF][,fail_read=OFF][,fail_count=N][,fail_file=NAME]
 *                 MOUNTPOINT [FUSE options, e.g. -f]
 *
 * The mount shows every regular file of DIR (as it was at mount time; no
 * files are created or removed through the mount) and one more, .stats,
 * whose text counts what each file saw. A loop device over a file here is a
 * block device as slow as a card ("losetup --find --show MOUNTPOINT/card.img").
 *
 * Each file is one card with one clock: a read of n bytes occupies the card
 * for n / read_rate seconds, a write for n / write_rate, and requests are
 * served one after the other, whichever thread sends them, so reads ahead
 * of writes slow the writes as they would on a card. A request is answered
 * only when its time on the card has passed: the throttle is on the data
 * path, so an fsync (which waits for the card's clock and then fsyncs the
 * backing file) returns only after every write before it "reached the
 * card". Rates are bytes per second with decimal suffixes K, M, G (card
 * vendors' MB/s); 0 means unthrottled.
 *
 * Fault injection: a write (read) whose range holds byte offset fail_write
 * (fail_read) fails with EIO, fail_count times per file (default 1), then
 * succeeds; fail_file limits it to one file.
 *
 * Files are opened with FOPEN_DIRECT_IO: no page cache of the FUSE file
 * hides reads or writes from the throttle (the loop device above keeps its
 * own, which O_DIRECT users bypass).
 */
#define FUSE_USE_VERSION 312
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <fuse_lowlevel.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STATS_NAME ".stats"
#define MAX_CARDS 64
/* Handler threads: a loop device sends a card a few requests at a time,
 * and the benchmark drives four cards at once. */
#define MAX_THREADS 32
/* Idle time a card may bank: without it, each late wake-up of a handler
 * thread on a busy machine (a few ms against 6.5 ms for 128 KiB at 20 MB/s)
 * would be lost for good and the card would run slower than its rate;
 * 20 ms of banked time lets it catch up, a burst no larger than a card's
 * own write cache. */
#define SLACK_NS (20 * 1000 * 1000ULL)

typedef struct Card {
        char *name;
        int fd;
        pthread_mutex_t lock;
        uint64_t busy_until_ns; /* CLOCK_MONOTONIC: when the card is free */
        uint64_t bytes_written, bytes_read;
        uint64_t writes, reads, fsyncs, flushes, injected;
        unsigned write_faults_left, read_faults_left;
} Card;

typedef struct Options {
        char *backing;
        char *write_rate, *read_rate;
        char *fail_write, *fail_read, *fail_file;
        unsigned fail_count;
} Options;

static Card cards[MAX_CARDS];
static size_t n_cards;
static uint64_t write_rate = 20 * 1000 * 1000, read_rate = 60 * 1000 * 1000;
static int64_t fail_write_at = -1, fail_read_at = -1;
static struct stat backing_st;

static uint64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
}

static void sleep_until_ns(uint64_t t) {
        struct timespec ts = { .tv_sec = (time_t) (t / 1000000000ULL), .tv_nsec = (long) (t % 1000000000ULL) };
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
                ;
}

/* Takes the card for n bytes at rate; returns when that time ends. */
static uint64_t card_reserve(Card *c, uint64_t n, uint64_t rate) {
        uint64_t now = now_ns(), start, end;
        uint64_t earliest = now > SLACK_NS ? now - SLACK_NS : 0;
        pthread_mutex_lock(&c->lock);
        start = c->busy_until_ns > earliest ? c->busy_until_ns : earliest;
        end = rate ? start + (uint64_t) ((long double) n * 1e9L / (long double) rate) : start;
        if (end > c->busy_until_ns)
                c->busy_until_ns = end;
        pthread_mutex_unlock(&c->lock);
        return end;
}

/* Whether [off, off + n) holds byte at, consuming one of *left if so. */
static bool inject(Card *c, int64_t at, off_t off, size_t n, unsigned *left) {
        bool hit = false;
        if (at < 0 || at < off || (uint64_t) at >= (uint64_t) off + n)
                return false;
        pthread_mutex_lock(&c->lock);
        if (*left > 0) {
                (*left)--;
                c->injected++;
                hit = true;
        }
        pthread_mutex_unlock(&c->lock);
        return hit;
}

static Card *card_by_path(const char *path) {
        if (path[0] != '/')
                return NULL;
        for (size_t i = 0; i < n_cards; i++)
                if (strcmp(cards[i].name, path + 1) == 0)
                        return &cards[i];
        return NULL;
}

static bool is_stats(const char *path) {
        return strcmp(path, "/" STATS_NAME) == 0;
}

/* The .stats text: one line per card. Returns its length (snprintf's). */
static size_t stats_text(char *buf, size_t size) {
        size_t len = 0;
        for (size_t i = 0; i < n_cards; i++) {
                Card *c = &cards[i];
                pthread_mutex_lock(&c->lock);
                int k = snprintf(buf + (len < size ? len : size), len < size ? size - len : 0,
                                 "%s written=%" PRIu64 " read=%" PRIu64 " writes=%" PRIu64 " reads=%" PRIu64
                                 " fsyncs=%" PRIu64 " flushes=%" PRIu64 " injected=%" PRIu64 "\n",
                                 c->name, c->bytes_written, c->bytes_read, c->writes, c->reads, c->fsyncs,
                                 c->flushes, c->injected);
                pthread_mutex_unlock(&c->lock);
                if (k > 0)
                        len += (size_t) k;
        }
        return len;
}

static void *tf_init(struct fuse_conn_info *conn, struct fuse_config *cfg) {
        cfg->direct_io = 1;
        cfg->kernel_cache = 0;
        /* Sizes change behind the mount (the benchmark resets a card through
         * the backing directory): never trust a cached size for long. */
        cfg->attr_timeout = 0;
        cfg->entry_timeout = 0;
        cfg->use_ino = 0;
        return NULL;
}

static int tf_getattr(const char *path, struct stat *st, struct fuse_file_info *fi) {
        Card *c;
        memset(st, 0, sizeof(*st));
        if (strcmp(path, "/") == 0) {
                st->st_mode = S_IFDIR | 0755;
                st->st_nlink = 2;
                st->st_uid = backing_st.st_uid;
                st->st_gid = backing_st.st_gid;
                st->st_mtim = backing_st.st_mtim;
                return 0;
        }
        if (is_stats(path)) {
                st->st_mode = S_IFREG | 0444;
                st->st_nlink = 1;
                return 0;
        }
        c = card_by_path(path);
        if (!c)
                return -ENOENT;
        if (fstat(c->fd, st) < 0)
                return -errno;
        st->st_mode = S_IFREG | (st->st_mode & 07777);
        st->st_nlink = 1;
        return 0;
}

static int tf_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off, struct fuse_file_info *fi,
                      enum fuse_readdir_flags flags) {
        if (strcmp(path, "/") != 0)
                return -ENOTDIR;
        fill(buf, ".", NULL, 0, 0);
        fill(buf, "..", NULL, 0, 0);
        fill(buf, STATS_NAME, NULL, 0, 0);
        for (size_t i = 0; i < n_cards; i++)
                fill(buf, cards[i].name, NULL, 0, 0);
        return 0;
}

static int tf_open(const char *path, struct fuse_file_info *fi) {
        if (is_stats(path)) {
                if ((fi->flags & O_ACCMODE) != O_RDONLY)
                        return -EACCES;
                fi->direct_io = 1;
                return 0;
        }
        if (!card_by_path(path))
                return -ENOENT;
        fi->direct_io = 1;
        fi->keep_cache = 0;
        return 0;
}

static int tf_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
        Card *c;
        ssize_t n;
        uint64_t done;
        if (is_stats(path)) {
                char text[MAX_CARDS * 256];
                size_t len = stats_text(text, sizeof(text));
                if (len > sizeof(text))
                        len = sizeof(text);
                if (off < 0 || (uint64_t) off >= len)
                        return 0;
                if (size > len - (size_t) off)
                        size = len - (size_t) off;
                memcpy(buf, text + off, size);
                return (int) size;
        }
        c = card_by_path(path);
        if (!c)
                return -ENOENT;
        done = card_reserve(c, size, read_rate);
        if (inject(c, fail_read_at, off, size, &c->read_faults_left)) {
                sleep_until_ns(done);
                return -EIO;
        }
        n = pread(c->fd, buf, size, off);
        if (n < 0)
                return -errno;
        pthread_mutex_lock(&c->lock);
        c->bytes_read += (uint64_t) n;
        c->reads++;
        pthread_mutex_unlock(&c->lock);
        sleep_until_ns(done);
        return (int) n;
}

static int tf_write(const char *path, const char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
        Card *c = card_by_path(path);
        ssize_t n;
        uint64_t done;
        if (!c)
                return is_stats(path) ? -EACCES : -ENOENT;
        done = card_reserve(c, size, write_rate);
        if (inject(c, fail_write_at, off, size, &c->write_faults_left)) {
                sleep_until_ns(done);
                return -EIO;
        }
        n = pwrite(c->fd, buf, size, off);
        if (n < 0)
                return -errno;
        pthread_mutex_lock(&c->lock);
        c->bytes_written += (uint64_t) n;
        c->writes++;
        pthread_mutex_unlock(&c->lock);
        sleep_until_ns(done);
        return (int) n;
}

/* Waits until every request the card accepted so far has had its time. */
static void card_drain(Card *c) {
        uint64_t t;
        pthread_mutex_lock(&c->lock);
        t = c->busy_until_ns;
        pthread_mutex_unlock(&c->lock);
        sleep_until_ns(t);
}

static int tf_fsync(const char *path, int datasync, struct fuse_file_info *fi) {
        Card *c = card_by_path(path);
        if (!c)
                return 0;
        card_drain(c);
        if ((datasync ? fdatasync(c->fd) : fsync(c->fd)) < 0)
                return -errno;
        pthread_mutex_lock(&c->lock);
        c->fsyncs++;
        pthread_mutex_unlock(&c->lock);
        return 0;
}

/* close(): the kernel's flush. Like a card's, it does not wait for the
 * medium to be synced (fsync does), only for the requests in flight. */
static int tf_flush(const char *path, struct fuse_file_info *fi) {
        Card *c = card_by_path(path);
        if (!c)
                return 0;
        card_drain(c);
        pthread_mutex_lock(&c->lock);
        c->flushes++;
        pthread_mutex_unlock(&c->lock);
        return 0;
}

static int tf_truncate(const char *path, off_t size, struct fuse_file_info *fi) {
        Card *c = card_by_path(path);
        if (!c)
                return is_stats(path) ? -EACCES : -ENOENT;
        return ftruncate(c->fd, size) < 0 ? -errno : 0;
}

static int tf_statfs(const char *path, struct statvfs *st) {
        if (n_cards == 0)
                return -ENOSYS;
        return fstatvfs(cards[0].fd, st) < 0 ? -errno : 0;
}

static const struct fuse_operations tf_ops = {
        .init = tf_init,
        .getattr = tf_getattr,
        .readdir = tf_readdir,
        .open = tf_open,
        .read = tf_read,
        .write = tf_write,
        .fsync = tf_fsync,
        .flush = tf_flush,
        .truncate = tf_truncate,
        .statfs = tf_statfs,
};

/* "20M" -> 20000000; decimal suffixes, as card speeds are quoted. */
static int parse_rate(const char *s, uint64_t *ret) {
        char *end;
        unsigned long long v;
        uint64_t mul = 1;
        if (!s)
                return 0;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno || end == s)
                return -EINVAL;
        if (*end == 'K' || *end == 'k')
                mul = 1000, end++;
        else if (*end == 'M')
                mul = 1000 * 1000, end++;
        else if (*end == 'G')
                mul = 1000 * 1000 * 1000, end++;
        if (*end != '\0' || (mul > 1 && v > UINT64_MAX / mul))
                return -EINVAL;
        *ret = v * mul;
        return 0;
}

static int parse_offset(const char *s, int64_t *ret) {
        char *end;
        long long v;
        if (!s)
                return 0;
        errno = 0;
        v = strtoll(s, &end, 0);
        if (errno || end == s || *end != '\0' || v < 0)
                return -EINVAL;
        *ret = v;
        return 0;
}

static int open_cards(const char *dir, const char *fail_file, unsigned fail_count) {
        DIR *d = opendir(dir);
        struct dirent *e;
        if (!d)
                return -errno;
        if (fstat(dirfd(d), &backing_st) < 0) {
                closedir(d);
                return -errno;
        }
        while ((e = readdir(d))) {
                struct stat st;
                int fd;
                if (e->d_name[0] == '.' || fstatat(dirfd(d), e->d_name, &st, 0) < 0 || !S_ISREG(st.st_mode))
                        continue;
                if (n_cards == MAX_CARDS) {
                        closedir(d);
                        return -EMFILE;
                }
                fd = openat(dirfd(d), e->d_name, O_RDWR | O_CLOEXEC);
                if (fd < 0) {
                        int r = -errno;
                        closedir(d);
                        return r;
                }
                Card *c = &cards[n_cards++];
                c->name = strdup(e->d_name);
                c->fd = fd;
                pthread_mutex_init(&c->lock, NULL);
                if (!c->name) {
                        closedir(d);
                        return -ENOMEM;
                }
                if (!fail_file || strcmp(fail_file, c->name) == 0)
                        c->write_faults_left = c->read_faults_left = fail_count;
        }
        closedir(d);
        return 0;
}

#define OPT(t, m) { t, offsetof(Options, m), 0 }
static const struct fuse_opt tf_opts[] = {
        OPT("backing=%s", backing),
        OPT("write_rate=%s", write_rate),
        OPT("read_rate=%s", read_rate),
        OPT("fail_write=%s", fail_write),
        OPT("fail_read=%s", fail_read),
        OPT("fail_file=%s", fail_file),
        OPT("fail_count=%u", fail_count),
        FUSE_OPT_END,
};

static void close_cards(void) {
        for (size_t i = 0; i < n_cards; i++) {
                free(cards[i].name);
                if (cards[i].fd >= 0)
                        close(cards[i].fd);
                pthread_mutex_destroy(&cards[i].lock);
        }
        n_cards = 0;
}

static void free_options(Options *o) {
        free(o->backing);
        free(o->write_rate);
        free(o->read_rate);
        free(o->fail_write);
        free(o->fail_read);
        free(o->fail_file);
}

/* What fuse_main does, with the thread limit set: fuse_main of libfuse
 * 3.14 warns about an unset one on every mount. */
static int serve(struct fuse_args *args) {
        struct fuse_cmdline_opts opts = { 0 };
        struct fuse_loop_config *loop_cfg = NULL;
        struct fuse *fuse = NULL;
        int r = 1;

        if (fuse_parse_cmdline(args, &opts) != 0)
                return 2;
        if (opts.show_help || opts.show_version) {
                printf("usage: throttle-fuse -o backing=DIR[,write_rate=20M][,read_rate=60M][,fail_write=OFF]"
                       "[,fail_read=OFF][,fail_count=N][,fail_file=NAME] MOUNTPOINT [-f] [-s] [-d]\n");
                r = 0;
                goto out;
        }
        if (!opts.mountpoint) {
                fprintf(stderr, "throttle-fuse: no mount point: throttle-fuse -o backing=DIR MOUNTPOINT\n");
                r = 2;
                goto out;
        }
        fuse = fuse_new(args, &tf_ops, sizeof(tf_ops), NULL);
        if (!fuse)
                goto out;
        if (fuse_mount(fuse, opts.mountpoint) != 0)
                goto out;
        if (fuse_daemonize(opts.foreground) != 0 || fuse_set_signal_handlers(fuse_get_session(fuse)) != 0)
                goto unmount;
        if (opts.singlethread) {
                r = fuse_loop(fuse) ? 1 : 0;
        } else {
                loop_cfg = fuse_loop_cfg_create();
                if (loop_cfg) {
                        fuse_loop_cfg_set_clone_fd(loop_cfg, (unsigned) opts.clone_fd);
                        fuse_loop_cfg_set_max_threads(loop_cfg, MAX_THREADS);
                        r = fuse_loop_mt(fuse, loop_cfg) ? 1 : 0;
                        fuse_loop_cfg_destroy(loop_cfg);
                }
        }
        fuse_remove_signal_handlers(fuse_get_session(fuse));
unmount:
        fuse_unmount(fuse);
out:
        if (fuse)
                fuse_destroy(fuse);
        free(opts.mountpoint);
        return r;
}

/* Returns the exit status: 2 for a usage error, 1 when the backing files
 * cannot be served, else fuse_main's. */
static int run(struct fuse_args *args, Options *o) {
        int r;

        if (fuse_opt_parse(args, o, tf_opts, NULL) < 0)
                return 2;
        if (!o->backing) {
                fprintf(stderr, "throttle-fuse: -o backing=DIR is required (the directory whose files become cards)\n");
                return 2;
        }
        if (parse_rate(o->write_rate, &write_rate) < 0 || parse_rate(o->read_rate, &read_rate) < 0) {
                fprintf(stderr, "throttle-fuse: a rate is bytes per second with an optional K, M or G suffix, e.g. write_rate=20M\n");
                return 2;
        }
        if (parse_offset(o->fail_write, &fail_write_at) < 0 || parse_offset(o->fail_read, &fail_read_at) < 0) {
                fprintf(stderr, "throttle-fuse: fail_write and fail_read take a byte offset\n");
                return 2;
        }
        r = open_cards(o->backing, o->fail_file, o->fail_count);
        if (r < 0) {
                fprintf(stderr, "throttle-fuse: %s: cannot open its files: %s\n", o->backing, strerror(-r));
                return 1;
        }
        if (n_cards == 0) {
                fprintf(stderr, "throttle-fuse: %s holds no regular file to serve: create the card images there first\n",
                        o->backing);
                return 1;
        }
        return serve(args);
}

int main(int argc, char **argv) {
        struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
        Options o = { .fail_count = 1 };
        int r = run(&args, &o);

        close_cards();
        free_options(&o);
        fuse_opt_free_args(&args);
        return r;
}
