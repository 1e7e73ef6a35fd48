/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The image stream against files made at test time by the real tools
 * (gzip, pigz, bzip2, xz, zstd, pzstd, lz4, lzop, tar, zip): every format and
 * container gives back the image byte for byte, from a file and through a
 * pipe; detection names the format; skipping lands where it should; and
 * truncated or bit-flipped copies fail with a message naming an offset,
 * never with a short success. */
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "test-helpers.h"
#include "stream.h"

static char tmp[PATH_MAX - 64];
static uint8_t *image;
static size_t image_size;

#define MiB ((size_t) 1 << 20)

static bool have(const char *tool) {
        char cmd[256];
        snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", tool);
        return system(cmd) == 0;
}

static const char *path(const char *name) {
        static char bufs[8][PATH_MAX];
        static unsigned i;
        char *p = bufs[i++ % 8];
        snprintf(p, PATH_MAX, "%s/%s", tmp, name);
        return p;
}

static int write_file(const char *name, const void *data, size_t len) {
        int fd = open(path(name), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        int r = write_full(fd, data, len);
        close(fd);
        return r;
}

static uint8_t *slurp(const char *name, size_t *ret_len) {
        char *data;
        if (read_file_full(path(name), 1 << 30, &data, ret_len) < 0)
                return NULL;
        return (uint8_t *) data;
}

/* Random data, a hole, text-like data, more random data, written zeros and
 * a ragged tail: what compressors see in a disk image, in a few MiB. */
static int make_image(void) {
        uint64_t x = 0x9E3779B97F4A7C15u;
        image_size = 3 * MiB + MiB / 2 + 12345 + 1000;
        image = calloc(1, image_size);
        if (!image)
                return -ENOMEM;
        for (size_t i = 0; i < image_size; i++) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                bool random = i < MiB || (i >= 3 * MiB && i < 3 * MiB + MiB / 2) || i >= image_size - 1000;
                if (random)
                        image[i] = (uint8_t) x;
                else if (i >= 2 * MiB && i < 3 * MiB) {
                        static const char words[] = "the quick brown fox jumps over the lazy dog 0123456789\n";
                        image[i] = (uint8_t) words[(i + (x % 7 == 0 ? x % 11 : 0)) % (sizeof(words) - 1)];
                }
        }
        /* disk.img with a real hole at 1..2 MiB, for tar --sparse. */
        int fd = open(path("disk.img"), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        int r = write_full(fd, image, MiB);
        if (r >= 0 && pwrite(fd, image + 2 * MiB, image_size - 2 * MiB, 2 * MiB) != (ssize_t) (image_size - 2 * MiB))
                r = -EIO;
        close(fd);
        return r;
}

typedef struct Result {
        int err;
        char msg[sizeof(Diag)];
        char describe[200];
        uint64_t hint;
        uint8_t *data;
        size_t len;
} Result;

static void result_free(Result *r) {
        free(r->data);
        r->data = NULL;
}

/* Reads the whole stream from fd in reads of `chunk` bytes. */
static Result read_all(int fd, const char *name, size_t chunk, const StreamOptions *o) {
        Result res = { .hint = UINT64_MAX };
        Input in = input_from_fd(&fd, name);
        Stream *s = NULL;
        Diag d = {};

        res.err = stream_open(&in, o, &s, &d);
        if (res.err < 0) {
                snprintf(res.msg, sizeof(res.msg), "%s", d.msg);
                return res;
        }
        snprintf(res.describe, sizeof(res.describe), "%s", stream_describe(s));
        res.hint = stream_size_hint(s);
        size_t cap = image_size + 2 * MiB;
        res.data = malloc(cap);
        for (;;) {
                size_t want = cap - res.len < chunk ? cap - res.len : chunk;
                if (want == 0) {
                        res.err = -EFBIG;
                        snprintf(res.msg, sizeof(res.msg), "more data than the image has");
                        break;
                }
                ssize_t k = stream_read(s, res.data + res.len, want, &d);
                if (k < 0) {
                        res.err = (int) k;
                        snprintf(res.msg, sizeof(res.msg), "%s", d.msg);
                        /* The error sticks. */
                        Diag d2 = {};
                        CHECK(stream_read(s, res.data, 1, &d2) == k && strcmp(d2.msg, d.msg) == 0,
                              "%s: a read after an error did not fail the same way", name);
                        break;
                }
                if (k == 0)
                        break;
                CHECK((size_t) k == want || stream_read(s, res.data, 1, &d) == 0,
                      "%s: short read of %zd bytes before the end", name, k);
                res.len += (size_t) k;
                CHECK_U64(stream_offset(s), res.len);
        }
        stream_free(s);
        return res;
}

static Result read_file_stream_with(const char *name, size_t chunk, const StreamOptions *o) {
        int fd = open(path(name), O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                Result res = { .err = -errno, .hint = UINT64_MAX };
                snprintf(res.msg, sizeof(res.msg), "cannot open %s", name);
                return res;
        }
        Result res = read_all(fd, name, chunk, o);
        close(fd);
        return res;
}

static Result read_file_stream(const char *name, size_t chunk) {
        return read_file_stream_with(name, chunk, NULL);
}

/* The same through a pipe: not seekable, no size, short reads. */
static Result read_pipe_stream_with(const char *name, const StreamOptions *o) {
        char cmd[PATH_MAX + 32];
        snprintf(cmd, sizeof(cmd), "cat '%s'", path(name));
        FILE *f = popen(cmd, "r");
        if (!f) {
                Result res = { .err = -errno, .hint = UINT64_MAX };
                return res;
        }
        Result res = read_all(fileno(f), name, 3 * MiB + 17, o);
        (void) pclose(f);
        return res;
}

static Result read_pipe_stream(const char *name) {
        return read_pipe_stream_with(name, NULL);
}

static bool same_as_image(const Result *r) {
        return r->err == 0 && r->len == image_size && memcmp(r->data, image, image_size) == 0;
}

static size_t first_difference(const Result *r) {
        size_t n = r->len < image_size ? r->len : image_size;
        for (size_t i = 0; i < n; i++)
                if (r->data[i] != image[i])
                        return i;
        return n;
}

/* Skips around the image and checks what is read after each skip. */
static void check_skips(const char *name) {
        int fd = open(path(name), O_RDONLY | O_CLOEXEC);
        Input in = input_from_fd(&fd, name);
        Stream *s = NULL;
        Diag d = {};
        uint8_t buf[70000];

        if (stream_open(&in, NULL, &s, &d) < 0) {
                CHECK(false, "%s: %s", name, d.msg);
                close(fd);
                return;
        }
        static const struct {
                uint64_t skip;
                size_t read;
        } steps[] = {
                { 0, 1000 }, { 3 * MiB / 2 - 1000, 65536 }, { 0, 1 }, { 12345, 70000 }, { MiB, 4096 },
        };
        uint64_t at = 0;
        for (size_t i = 0; i < ELEMENTSOF(steps); i++) {
                int r = stream_skip(s, steps[i].skip, &d);
                CHECK(r == 0, "%s: skip %" PRIu64 " at %" PRIu64 ": %s", name, steps[i].skip, at, d.msg);
                at += steps[i].skip;
                ssize_t k = stream_read(s, buf, steps[i].read, &d);
                CHECK(k == (ssize_t) steps[i].read && memcmp(buf, image + at, steps[i].read) == 0,
                      "%s: %zu bytes at %" PRIu64 " after a skip differ (read %zd: %s)", name, steps[i].read, at,
                      k, k < 0 ? d.msg : "");
                at += steps[i].read;
                CHECK_U64(stream_offset(s), at);
        }
        /* To 10 bytes before the end, then read the last ones. */
        CHECK(stream_skip(s, image_size - 10 - at, &d) == 0, "%s: skip to the end: %s", name, d.msg);
        CHECK(stream_read(s, buf, sizeof(buf), &d) == 10 && memcmp(buf, image + image_size - 10, 10) == 0,
              "%s: the last 10 bytes after a skip differ", name);
        CHECK(stream_read(s, buf, sizeof(buf), &d) == 0, "%s: data after the end", name);
        stream_free(s);
        close(fd);

        /* Skipping past the end is an error, not a silent stop. */
        fd = open(path(name), O_RDONLY | O_CLOEXEC);
        in = input_from_fd(&fd, name);
        if (stream_open(&in, NULL, &s, &d) == 0) {
                int r = stream_skip(s, image_size + 1, &d);
                CHECK(r < 0, "%s: skipping past the end succeeded", name);
                CHECK_STR_CONTAINS(d.msg, "ends");
                stream_free(s);
        }
        close(fd);
}

/* A damaged copy must fail, naming an offset; never give a short image. */
static void check_fails(const char *name, const char *what, const char *want) {
        Result r = read_file_stream(name, 4 * MiB);
        CHECK(r.err < 0, "%s (%s): read %zu bytes and succeeded (%s)", name, what, r.len,
              r.len == image_size ? "the whole image" : "a SHORT image");
        if (r.err < 0) {
                CHECK(strstr(r.msg, "byte") || strstr(r.msg, "ends early"), "%s (%s): message names no offset: %s",
                      name, what, r.msg);
                if (want)
                        CHECK_STR_CONTAINS(r.msg, want);
                CHECK_STR_CONTAINS(r.msg, name);
        }
        result_free(&r);
}

/* What damage a format can notice: raw bytes and a plain tar's data have
 * no checksum, and a cut within a plain tar's first header leaves bytes
 * that are no tar at all (so: raw). */
enum {
        FLIP = 1 << 0,     /* bit flips inside the data */
        CUT_TAIL = 1 << 1, /* a trailer follows the image data */
        CUT_HEAD = 1 << 2, /* cut to 200 bytes */
        CUT = 1 << 3,      /* cut in the middle */
        ALL = FLIP | CUT_TAIL | CUT_HEAD | CUT,
        ANY_HINT = 1 << 4,
};

static void check_damage(const char *name, unsigned flags) {
        size_t len;
        uint8_t *data = slurp(name, &len);
        if (!data) {
                CHECK(false, "cannot read %s", name);
                return;
        }
        char damaged[PATH_MAX];
        snprintf(damaged, sizeof(damaged), "%s.damaged", name);

        size_t cuts[] = { flags & CUT ? len / 2 : 0, flags & CUT ? len / 4 : 0, flags & CUT_HEAD ? 200 : 0,
                          flags & CUT_TAIL ? len - 1 : 0 };
        for (size_t i = 0; i < ELEMENTSOF(cuts); i++) {
                if (cuts[i] == 0)
                        continue;
                CHECK(write_file(damaged, data, cuts[i]) == 0, "write %s", damaged);
                char what[64];
                snprintf(what, sizeof(what), "cut to %zu of %zu bytes", cuts[i], len);
                check_fails(damaged, what, NULL);
        }
        /* In the data, not in padding bits or an index nobody reads. */
        for (size_t at = len / 3; (flags & FLIP) && at < len - len / 4; at += len / 3) {
                data[at] ^= 0x10;
                CHECK(write_file(damaged, data, len) == 0, "write %s", damaged);
                char what[64];
                snprintf(what, sizeof(what), "bit flipped at %zu of %zu", at, len);
                check_fails(damaged, what, NULL);
                data[at] ^= 0x10;
        }
        free(data);
}

/* One compressed or archived form of the image. */
static void check_format(const char *name, const char *describe, uint64_t hint, unsigned flags) {
        Result r = read_file_stream(name, 4 * MiB);
        CHECK(same_as_image(&r), "%s: not the image (err %d: %s; %zu bytes of %zu, first difference at %zu)", name,
              r.err, r.msg, r.len, image_size, first_difference(&r));
        CHECK(strcmp(r.describe, describe) == 0, "%s: described as '%s', expected '%s'", name, r.describe, describe);
        CHECK((flags & ANY_HINT) || r.hint == hint, "%s: size hint %" PRIu64 ", expected %" PRIu64, name, r.hint,
              hint);
        result_free(&r);

        /* Odd read sizes cross every internal buffer boundary. */
        r = read_file_stream(name, 65521);
        CHECK(same_as_image(&r), "%s: not the image in reads of 65521 bytes (%s)", name, r.msg);
        result_free(&r);

        r = read_pipe_stream(name);
        CHECK(same_as_image(&r), "%s: not the image through a pipe (err %d: %s; %zu bytes)", name, r.err, r.msg,
              r.len);
        CHECK(strcmp(r.describe, describe) == 0, "%s: through a pipe described as '%s'", name, r.describe);
        /* Through a pipe only an archive's header can tell the size. */
        if (strncmp(describe, "raw", 3) == 0 || strncmp(describe, "xz", 2) == 0)
                CHECK(r.hint == UINT64_MAX, "%s: size hint %" PRIu64 " through a pipe", name, r.hint);
        result_free(&r);

        check_skips(name);
        check_damage(name, flags);
}

static void check_bad_input(void) {
        Result r;

        CHECK(write_file("empty", "", 0) == 0, "write empty");
        r = read_file_stream("empty", MiB);
        CHECK(r.err < 0, "empty input accepted");
        CHECK_STR_CONTAINS(r.msg, "empty");
        result_free(&r);

        CHECK(write_file("one", "A", 1) == 0, "write one");
        r = read_file_stream("one", MiB);
        CHECK(r.err == 0 && r.len == 1 && r.data[0] == 'A', "a 1-byte raw file: err %d, %zu bytes", r.err, r.len);
        CHECK(strcmp(r.describe, "raw") == 0, "a 1-byte file is '%s'", r.describe);
        CHECK_U64(r.hint, 1);
        result_free(&r);

        /* A zip header over garbage is a damaged zip, not a raw image. */
        uint8_t fake[8192];
        memcpy(fake, "PK\x03\x04", 4);
        memcpy(fake + 4, image + 100, sizeof(fake) - 4);
        CHECK(write_file("fake.zip", fake, sizeof(fake)) == 0, "write fake.zip");
        r = read_file_stream("fake.zip", MiB);
        CHECK(r.err < 0, "garbage after a zip header read as %zu bytes", r.len);
        CHECK_STR_CONTAINS(r.msg, "zip");
        result_free(&r);

        /* "PK" alone is no zip: such bytes are raw. */
        memcpy(fake, "PK\x01\x02", 4);
        CHECK(write_file("pk.raw", fake, sizeof(fake)) == 0, "write pk.raw");
        r = read_file_stream("pk.raw", MiB);
        CHECK(r.err == 0 && r.len == sizeof(fake) && memcmp(r.data, fake, sizeof(fake)) == 0,
              "PK\\1\\2 as raw: err %d: %s", r.err, r.msg);
        CHECK(strcmp(r.describe, "raw") == 0, "PK\\1\\2 is '%s'", r.describe);
        result_free(&r);

        /* The magic of a compressor alone: a truncated file, not raw. */
        CHECK(write_file("magic.gz", "\x1f\x8b", 2) == 0, "write magic.gz");
        check_fails("magic.gz", "gzip magic only", "gzip");

        /* Container formats are refused with what to do. */
        memcpy(fake, "QFI\xfb", 4);
        CHECK(write_file("vm.qcow2", fake, sizeof(fake)) == 0, "write vm.qcow2");
        r = read_file_stream("vm.qcow2", MiB);
        CHECK(r.err < 0, "a qcow2 image was read raw");
        CHECK_STR_CONTAINS(r.msg, "qemu-img");
        result_free(&r);

        /* A gzip of nothing is an empty image. */
        sh("printf '' | gzip -c > '%s'", path("nothing.gz"));
        r = read_file_stream("nothing.gz", MiB);
        CHECK(r.err < 0, "an empty gzip image accepted");
        CHECK_STR_CONTAINS(r.msg, "empty");
        result_free(&r);
}

static void check_trailing(void) {
        Result r;
        /* Zero padding after the data is harmless... */
        sh("cd '%s' && cat disk.img.gz > pad.gz && head -c 5000 /dev/zero >> pad.gz", tmp);
        r = read_file_stream("pad.gz", MiB);
        CHECK(same_as_image(&r), "gzip with trailing zeros: %s", r.msg);
        result_free(&r);
        sh("cd '%s' && cat disk.img.zst > pad.zst && head -c 3 /dev/zero >> pad.zst", tmp);
        r = read_file_stream("pad.zst", MiB);
        CHECK(same_as_image(&r), "zstd with trailing zeros: %s", r.msg);
        result_free(&r);
        /* ...anything else is damage. */
        sh("cd '%s' && cat disk.img.gz > junk.gz && printf 'junk' >> junk.gz", tmp);
        check_fails("junk.gz", "trailing junk", "after the end of the gzip data");
        sh("cd '%s' && cat disk.img.lz4 > junk.lz4 && head -c 100 /dev/zero >> junk.lz4 && printf x >> junk.lz4", tmp);
        check_fails("junk.lz4", "trailing junk", "after the end of the lz4 data");
        sh("cd '%s' && cat disk.img.bz2 > junk.bz2 && printf 'BZ' >> junk.bz2", tmp);
        check_fails("junk.bz2", "trailing junk", "bzip2");
        sh("cd '%s' && cat disk.img.xz > junk.xz && printf 'junk' >> junk.xz", tmp);
        check_fails("junk.xz", "trailing junk", "xz");

        /* The offsets named are where the damage is. */
        size_t n;
        uint8_t *half = slurp("disk.img.gz", &n);
        if (half) {
                CHECK(write_file("half.gz", half, n / 2) == 0, "write half.gz");
                Result h = read_file_stream("half.gz", MiB);
                char want[64];
                snprintf(want, sizeof(want), "at compressed byte %zu (image byte ", n / 2);
                CHECK_STR_CONTAINS(h.msg, want);
                const char *ib = strstr(h.msg, "(image byte ");
                uint64_t at = ib ? strtoull(ib + 12, NULL, 10) : 0;
                CHECK(at > n / 4 && at < image_size, "half.gz: image byte %" PRIu64 " is not where the cut is", at);
                CHECK(h.err == -ENODATA, "half.gz: error %d", h.err);
                result_free(&h);
                free(half);
        }

        /* The gzip trailer: CRC-32, then the length. */
        size_t len;
        uint8_t *gz = slurp("disk.img.gz", &len);
        if (gz) {
                gz[len - 8] ^= 1;
                CHECK(write_file("crc.gz", gz, len) == 0, "write crc.gz");
                check_fails("crc.gz", "bad CRC-32", "CRC-32");
                gz[len - 8] ^= 1;
                gz[len - 2] ^= 1;
                CHECK(write_file("isize.gz", gz, len) == 0, "write isize.gz");
                check_fails("isize.gz", "bad length", "length");
                free(gz);
        }
}

/* Archives whose image is not their only or first file. */
static void check_members(void) {
        Result r;
        sh("cd '%s' && mkdir -p sub && echo 'read me' > README && printf 'notes\\n' > sub/notes.txt", tmp);

        /* A small file, then the image: the image. */
        sh("cd '%s' && tar cf two.tar README disk.img && gzip -c two.tar > two.tar.gz", tmp);
        check_format("two.tar", "tar (disk.img)", image_size, CUT);
        check_format("two.tar.gz", "tar in gzip (disk.img)", image_size, ALL);

        /* A directory, a small file, a tiny image-named one, the image, and
         * side files after it, one of them large: only the image could be
         * one, read ahead or streamed. */
        sh("cd '%s' && head -c 1000 /dev/zero > boot.bin && head -c 2000000 /dev/zero > disk.img.bmap && "
           "echo x > SHA256SUMS && echo x > disk.img.sha256 && echo x > disk.img.asc && "
           "tar cf side.tar sub README boot.bin disk.img disk.img.bmap SHA256SUMS disk.img.sha256 disk.img.asc && "
           "zstd -q -c side.tar > dir.tar.zst",
           tmp);
        check_format("dir.tar.zst", "tar in zstd (disk.img)", image_size, ALL);
        check_format("side.tar", "tar (disk.img)", image_size, CUT);

        /* Only side files: no image. */
        sh("cd '%s' && tar cf small.tar README sub/notes.txt", tmp);
        r = read_file_stream("small.tar", MiB);
        CHECK(r.err < 0, "small.tar: a README was read as the image");
        CHECK_STR_CONTAINS(r.msg, "small.tar: the tar archive holds no image, only README, sub/notes.txt");
        result_free(&r);
        /* Only small files that are no side files: the first one. */
        sh("cd '%s' && printf 'first\\n' > one.cfg && printf 'second\\n' > two.cfg && tar cf small2.tar README one.cfg "
           "two.cfg",
           tmp);
        r = read_file_stream("small2.tar", MiB);
        CHECK(r.err == 0 && r.len == 6 && memcmp(r.data, "first\n", 6) == 0, "small2.tar: err %d %s, %zu bytes",
              r.err, r.msg, r.len);
        CHECK(strcmp(r.describe, "tar (one.cfg)") == 0, "small2.tar is '%s'", r.describe);
        result_free(&r);
        /* ...and any member, small or a side file, when asked for. */
        r = read_file_stream_with("small.tar", MiB, &(StreamOptions) { .member = "README", .max_size = UINT64_MAX });
        CHECK(r.err == 0 && r.len == 8 && memcmp(r.data, "read me\n", 8) == 0, "small.tar --member README: err %d %s",
              r.err, r.msg);
        result_free(&r);

        /* An archive of directories only. */
        sh("cd '%s' && tar cf dirs.tar --exclude=notes.txt sub", tmp);
        r = read_file_stream("dirs.tar", MiB);
        CHECK(r.err < 0, "a tar without files was read as an image");
        CHECK_STR_CONTAINS(r.msg, "no regular file");
        result_free(&r);

        /* A sparse member (tar --sparse keeps the hole at 1..2 MiB). */
        sh("cd '%s' && tar cSf sparse.tar disk.img && gzip -c sparse.tar > sparse.tar.gz", tmp);
        check_format("sparse.tar", "tar (disk.img)", image_size, CUT);
        check_format("sparse.tar.gz", "tar in gzip (disk.img)", image_size, ALL);

        /* An image compressed on its own inside a tar. */
        sh("cd '%s' && xz -T2 --block-size=1MiB -c disk.img > inner.img.xz && tar cf inner.tar README inner.img.xz",
           tmp);
        check_format("inner.tar", "xz in tar (inner.img.xz)", UINT64_MAX, FLIP | CUT);

        if (have("zip")) {
                sh("cd '%s' && rm -f two.zip && zip -q two.zip README disk.img", tmp);
                check_format("two.zip", "zip (disk.img)", image_size, FLIP | CUT | CUT_HEAD);
        }
}

/* Several images in one archive: refused, naming them, unless one is asked
 * for. */
static void check_ambiguous(void) {
        const StreamOptions want_b = { .member = "b.img", .max_size = UINT64_MAX };
        const char *amb = "2 members could be the image (a.img, b.img): pick one with --member NAME";
        Result r;

        /* a.img is not the test image: only b.img is. */
        sh("cd '%s' && head -c 2000000 /dev/urandom > a.img && cp disk.img b.img && "
           "tar cf amb.tar README a.img b.img && gzip -c amb.tar > amb.tar.gz",
           tmp);

        /* A local uncompressed tar: its headers are read first, so the
         * refusal comes before the stream is even open. */
        r = read_file_stream("amb.tar", MiB);
        CHECK(r.err == -ENOTUNIQ && r.describe[0] == 0, "amb.tar: err %d (%s), opened as '%s'", r.err, r.msg,
              r.describe);
        CHECK_STR_CONTAINS(r.msg, "amb.tar: ");
        CHECK_STR_CONTAINS(r.msg, amb);
        result_free(&r);
        /* Streamed, or compressed: the first candidate is read, and its
         * last read fails. */
        r = read_pipe_stream("amb.tar");
        CHECK(r.err == -ENOTUNIQ && strcmp(r.describe, "tar (a.img)") == 0, "amb.tar from a pipe: err %d (%s), '%s'",
              r.err, r.msg, r.describe);
        CHECK_STR_CONTAINS(r.msg, amb);
        result_free(&r);
        r = read_file_stream("amb.tar.gz", MiB);
        CHECK(r.err == -ENOTUNIQ && strcmp(r.describe, "tar in gzip (a.img)") == 0, "amb.tar.gz: err %d (%s), '%s'",
              r.err, r.msg, r.describe);
        CHECK_STR_CONTAINS(r.msg, amb);
        result_free(&r);

        /* --member picks one, in every way of reading. */
        const char *const names[] = { "amb.tar", "amb.tar.gz" };
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                r = read_file_stream_with(names[i], 4 * MiB, &want_b);
                CHECK(same_as_image(&r), "%s --member b.img: err %d (%s), %zu bytes", names[i], r.err, r.msg, r.len);
                CHECK_STR_CONTAINS(r.describe, "(b.img)");
                result_free(&r);
                r = read_pipe_stream_with(names[i], &want_b);
                CHECK(same_as_image(&r), "%s --member b.img from a pipe: err %d (%s)", names[i], r.err, r.msg);
                result_free(&r);
        }
        r = read_file_stream_with("amb.tar", 4 * MiB, &(StreamOptions) { .member = "./b.img", .max_size = UINT64_MAX });
        CHECK(same_as_image(&r), "amb.tar --member ./b.img: err %d (%s)", r.err, r.msg);
        result_free(&r);

        /* A member that is not there: the files that are. */
        const StreamOptions nope = { .member = "c.img", .max_size = UINT64_MAX };
        r = read_file_stream_with("amb.tar", MiB, &nope);
        CHECK(r.err == -ENOENT, "amb.tar --member c.img: err %d (%s)", r.err, r.msg);
        CHECK_STR_CONTAINS(r.msg, "amb.tar: the tar archive has no member 'c.img' (its files: README, a.img, b.img)");
        result_free(&r);
        r = read_pipe_stream_with("amb.tar.gz", &nope);
        CHECK(r.err == -ENOENT, "amb.tar.gz --member c.img from a pipe: err %d (%s)", r.err, r.msg);
        CHECK_STR_CONTAINS(r.msg, "(its files: README, a.img, b.img)");
        result_free(&r);
        /* A member of something that is no archive. */
        r = read_file_stream_with("disk.img.gz", MiB, &want_b);
        CHECK(r.err < 0, "disk.img.gz --member b.img was read");
        CHECK_STR_CONTAINS(r.msg, "no tar or zip archive (it is gzip)");
        result_free(&r);

        /* A name twice (a tar appended to): a tiny file, then the image. */
        sh("cd '%s' && tar cf dup.tar --transform 's,^boot.bin$,disk.img,' boot.bin disk.img", tmp);
        r = read_file_stream("dup.tar", 4 * MiB);
        CHECK(same_as_image(&r) && strcmp(r.describe, "tar (disk.img)") == 0, "dup.tar: err %d (%s), %zu bytes, '%s'",
              r.err, r.msg, r.len, r.describe);
        result_free(&r);

        /* A hostile name stays on one line. */
        sh("cd '%s' && mkdir -p evil && cp disk.img \"evil/$(printf 'x\\ny.img')\" && cp disk.img evil/z.img && "
           "tar cf evil.tar -C evil . && gzip -c evil.tar > evil.tar.gz",
           tmp);
        r = read_file_stream("evil.tar", MiB);
        CHECK(r.err == -ENOTUNIQ && !strchr(r.msg, '\n'), "evil.tar: err %d: %s", r.err, r.msg);
        CHECK_STR_CONTAINS(r.msg, "x?y.img");
        result_free(&r);
        r = read_file_stream("evil.tar.gz", MiB);
        CHECK(r.err == -ENOTUNIQ && !strchr(r.msg, '\n') && !strchr(r.describe, '\n'), "evil.tar.gz: err %d: %s",
              r.err, r.msg);
        result_free(&r);

        if (have("zip")) {
                /* A zip's central directory tells before anything is read. */
                sh("cd '%s' && rm -f amb.zip && zip -q amb.zip README a.img b.img && zip -q - README a.img b.img | "
                   "cat > ambs.zip",
                   tmp);
                r = read_file_stream("amb.zip", MiB);
                CHECK(r.err == -ENOTUNIQ && r.describe[0] == 0, "amb.zip: err %d (%s), opened as '%s'", r.err, r.msg,
                      r.describe);
                CHECK_STR_CONTAINS(r.msg, amb);
                result_free(&r);
                r = read_pipe_stream("ambs.zip");
                CHECK(r.err == -ENOTUNIQ, "ambs.zip from a pipe: err %d (%s)", r.err, r.msg);
                CHECK_STR_CONTAINS(r.msg, "2 members could be the image (a.img, b.img)");
                result_free(&r);
                r = read_file_stream_with("amb.zip", 4 * MiB, &want_b);
                CHECK(same_as_image(&r), "amb.zip --member b.img: err %d (%s)", r.err, r.msg);
                result_free(&r);
                r = read_pipe_stream_with("ambs.zip", &want_b);
                CHECK(same_as_image(&r), "ambs.zip --member b.img from a pipe: err %d (%s)", r.err, r.msg);
                result_free(&r);
        }
}

/* An Input over a descriptor that counts what is read from it. */
typedef struct Counted {
        int fd;
        uint64_t bytes;
} Counted;

static ssize_t counted_read(void *ctx, void *buf, size_t n) {
        Counted *c = ctx;
        ssize_t k = read(c->fd, buf, n);
        if (k < 0)
                return -errno;
        c->bytes += (uint64_t) k;
        return k;
}

/* A decompression bomb: 64 MiB of zeros compressed, the compressed file
 * doubled until it is 16 MiB or more (hundreds of GiB of zeros behind a
 * zstd one), against a 64 MiB image size. Refused once the first piece is
 * decoded: few image bytes delivered, little of the input read. */
static void check_bomb(const char *compress, const char *name) {
        const uint64_t limit = 64 * MiB;
        sh("cd '%s' && head -c %zu /dev/zero | %s > '%s' && while [ $(stat -c %%s '%s') -lt %zu ]; do "
           "cat '%s' '%s' > bomb.tmp && mv bomb.tmp '%s'; done",
           tmp, (size_t) limit, compress, name, name, 16 * MiB, name, name, name);
        struct stat st;
        if (stat(path(name), &st) < 0) {
                CHECK(false, "cannot make %s", name);
                return;
        }
        Counted c = { .fd = open(path(name), O_RDONLY | O_CLOEXEC) };
        /* Not seekable, no size: as a pipe, so that nothing is learnt from
         * an index (xz's would tell the size at once). */
        Input in = { .name = name, .ctx = &c, .read = counted_read };
        Stream *s = NULL;
        Diag d = {};
        uint64_t delivered = 0;
        int err = stream_open(&in, &(StreamOptions) { .max_size = limit }, &s, &d);
        CHECK(err == 0, "%s: %s", name, d.msg);
        uint8_t *buf = malloc(4 * MiB);
        while (err == 0 && buf) {
                ssize_t k = stream_read(s, buf, 4 * MiB, &d);
                if (k <= 0) {
                        err = k < 0 ? (int) k : -EBADE;
                        break;
                }
                delivered += (uint64_t) k;
        }
        free(buf);
        stream_free(s);
        close(c.fd);

        CHECK(err == -EFBIG, "%s: error %d (%s)", name, err, d.msg);
        CHECK_STR_CONTAINS(d.msg, name);
        CHECK_STR_CONTAINS(d.msg, "decodes to more than 67108864 bytes (the bmap's image size), by compressed byte ");
        CHECK(delivered <= limit, "%s: %" PRIu64 " image bytes delivered past the size of %" PRIu64, name, delivered,
              limit);
        /* The compressed offset named is where decoding stopped: far from
         * the end (16 MiB), within the read-ahead of the first piece. */
        const char *at = strstr(d.msg, "by compressed byte ");
        uint64_t where = at ? strtoull(at + 19, NULL, 10) : UINT64_MAX;
        CHECK(where <= c.bytes, "%s: the message names compressed byte %" PRIu64 ", but %" PRIu64 " were read", name,
              where, c.bytes);
        CHECK(c.bytes < 8 * MiB, "%s: %" PRIu64 " of %" PRIu64 " compressed bytes read before the refusal", name,
              c.bytes, (uint64_t) st.st_size);
        unlink(path(name));
}

/* lzop's .lzo through liblzo2: every checksum flag lzop writes, several
 * members, inside and around a tar; what it cannot decode is refused by
 * name. From standard input lzop writes no name, so the header is 38 bytes
 * and the first block header follows it. */
static void check_lzo(void) {
        sh("cd '%s' && lzop -1 -c disk.img > disk.img.lzo && lzop -9 -c disk.img > l9.lzo && "
           "lzop -F -1 -c disk.img > nock.lzo && lzop --crc32 -CC -c disk.img > crc.lzo && "
           "lzop -CC -c disk.img > adler.lzo && lzop -c < disk.img > stdin.lzo && "
           "lzop -c a > cat.lzo && lzop -c b >> cat.lzo && tar cf - disk.img | lzop -c > disk.tar.lzo && "
           "cp disk.img.lzo inner.img.lzo && tar cf inner-lzo.tar inner.img.lzo",
           tmp);
        check_format("disk.img.lzo", "lzo", UINT64_MAX, ALL);
        check_format("l9.lzo", "lzo", UINT64_MAX, ALL);
        /* No checksum at all (lzop -F): a bit flip may decode to other
         * bytes; only a copy with a bmap notices. Cuts are still errors. */
        check_format("nock.lzo", "lzo", UINT64_MAX, CUT | CUT_HEAD | CUT_TAIL);
        check_format("crc.lzo", "lzo", UINT64_MAX, ALL);
        check_format("adler.lzo", "lzo", UINT64_MAX, ALL);
        check_format("stdin.lzo", "lzo", UINT64_MAX, ALL);
        check_format("cat.lzo", "lzo", UINT64_MAX, ALL);
        check_format("disk.tar.lzo", "tar in lzo (disk.img)", image_size, ALL);
        check_format("inner-lzo.tar", "lzo in tar (inner.img.lzo)", UINT64_MAX, FLIP | CUT);

        /* Each checksum, damaged where it is checked. */
        sh("cd '%s' && head -c 1048576 /dev/zero | lzop -CC -c > z-adler.lzo && "
           "head -c 1048576 /dev/zero | lzop --crc32 -CC -c > z-crc.lzo && "
           "head -c 300000 disk.img | lzop -c > stored.lzo && "
           "printf '\\377' | dd of=z-adler.lzo bs=1 seek=60 conv=notrunc status=none && "
           "printf '\\377' | dd of=z-crc.lzo bs=1 seek=60 conv=notrunc status=none && "
           "cp stored.lzo hdr.lzo && printf '\\377' | dd of=hdr.lzo bs=1 seek=30 conv=notrunc status=none && "
           "printf '\\377' | dd of=stored.lzo bs=1 seek=1000 conv=notrunc status=none",
           tmp);
        check_fails("z-adler.lzo", "compressed data damaged", "block Adler-32 of the compressed data does not match");
        check_fails("z-crc.lzo", "compressed data damaged", "block CRC-32 of the compressed data does not match");
        check_fails("stored.lzo", "stored block damaged", "block Adler-32 of the decompressed data does not match");
        check_fails("hdr.lzo", "header damaged", "header Adler-32 does not match");
        check_fails("stored.lzo", "stored block damaged", "(image byte 0)");

        /* A cut names where the data ends. */
        sh("cd '%s' && head -c 1000 disk.img.lzo > cut.lzo", tmp);
        check_fails("cut.lzo", "cut", "lzo data ends early, at compressed byte 1000");

        /* What lzop can write and this reader refuses, one line each. */
        sh("cd '%s' && lzop --filter=1 -c < disk.img > filter.lzo && lzop -c a b > multi.lzo", tmp);
        Result r = read_file_stream("filter.lzo", MiB);
        CHECK(r.err < 0, "an lzop file with a filter was read");
        CHECK_STR_CONTAINS(r.msg, "filter.lzo: lzo: uses a filter (lzop --filter): decompress it with lzop -d first");
        CHECK(!strchr(r.msg, '\n'), "more than one line: %s", r.msg);
        result_free(&r);
        r = read_file_stream("multi.lzo", MiB);
        CHECK(r.err < 0, "a multipart lzop file was read");
        CHECK_STR_CONTAINS(r.msg, "multipart");
        result_free(&r);
        /* A reserved flag bit (the header checksum made right for it). */
        sh("cd '%s' && python3 -c \"import sys,zlib; d=bytearray(open('stdin.lzo','rb').read()); d[19]|=0x40; "
           "d[34:38]=zlib.adler32(bytes(d[9:34])).to_bytes(4,'big'); open('flag.lzo','wb').write(d)\"",
           tmp);
        r = read_file_stream("flag.lzo", MiB);
        CHECK(r.err < 0, "an lzop file with an unknown flag was read");
        CHECK_STR_CONTAINS(r.msg, "unknown header flags 0x00004000");
        result_free(&r);

        /* Zero padding after the end is harmless, anything else is damage. */
        sh("cd '%s' && cat disk.img.lzo > pad.lzo && head -c 4096 /dev/zero >> pad.lzo && "
           "cat pad.lzo > junk.lzo && printf 'x' >> junk.lzo",
           tmp);
        r = read_file_stream("pad.lzo", MiB);
        CHECK(same_as_image(&r), "lzo with trailing zeros: %s", r.msg);
        result_free(&r);
        check_fails("junk.lzo", "trailing junk", "after the end of the lzo data");
}

int main(void) {
        const char *base = getenv("TEST_TMPDIR");
        snprintf(tmp, sizeof(tmp), "%s/test-stream", base ? base : "/tmp");
        if (sh("rm -rf '%s' && mkdir -p '%s'", tmp, tmp) != 0)
                return 1;
        if (make_image() < 0) {
                fprintf(stderr, "cannot make the test image\n");
                return 1;
        }
        for (const char *const *t = (const char *const[]) { "gzip", "bzip2", "xz", "zstd", "lz4", "tar", NULL }; *t;
             t++)
                if (!have(*t)) {
                        fprintf(stderr, "test-stream: %s is missing (scripts/install-deps.sh)\n", *t);
                        return 77;
                }

        sh("cd '%s' && gzip -c disk.img > disk.img.gz && bzip2 -c disk.img > disk.img.bz2 && "
           "xz -T2 --block-size=1MiB -c disk.img > disk.img.xz && zstd -q -c disk.img > disk.img.zst && "
           "lz4 -q -c disk.img > disk.img.lz4 && cp disk.img raw.img",
           tmp);
        /* Several members, streams, frames: as cat, pigz, pbzip2, pzstd write. */
        sh("cd '%s' && head -c 1500000 disk.img > a && tail -c +1500001 disk.img > b && "
           "gzip -c a > cat.gz && gzip -c b >> cat.gz && bzip2 -c a > cat.bz2 && bzip2 -c b >> cat.bz2 && "
           "xz -c a > cat.xz && xz -c b >> cat.xz && zstd -q -c a > cat.zst && zstd -q -c b >> cat.zst && "
           "lz4 -q -c a > cat.lz4 && lz4 -q -c b >> cat.lz4",
           tmp);
        sh("cd '%s' && tar czf disk.tar.gz disk.img && tar cJf disk.tar.xz disk.img && tar --zstd -cf disk.tar.zst disk.img "
           "&& tar cjf disk.tar.bz2 disk.img && tar cf - disk.img | lz4 -q -c > disk.tar.lz4",
           tmp);

        check_format("raw.img", "raw", image_size, 0);
        check_format("disk.img.gz", "gzip", UINT64_MAX, ALL);
        check_format("disk.img.bz2", "bzip2", UINT64_MAX, ALL);
        check_format("disk.img.xz", "xz", image_size, ALL);
        check_format("disk.img.zst", "zstd", UINT64_MAX, ALL);
        check_format("disk.img.lz4", "lz4", UINT64_MAX, ALL);
        check_format("cat.gz", "gzip", UINT64_MAX, ALL);
        check_format("cat.bz2", "bzip2", UINT64_MAX, ALL);
        check_format("cat.xz", "xz", image_size, ALL);
        check_format("cat.zst", "zstd", UINT64_MAX, ALL);
        check_format("cat.lz4", "lz4", UINT64_MAX, ALL);
        check_format("disk.tar.gz", "tar in gzip (disk.img)", image_size, ALL);
        check_format("disk.tar.xz", "tar in xz (disk.img)", image_size, ALL);
        check_format("disk.tar.zst", "tar in zstd (disk.img)", image_size, ALL);
        check_format("disk.tar.bz2", "tar in bzip2 (disk.img)", image_size, ALL);
        check_format("disk.tar.lz4", "tar in lz4 (disk.img)", image_size, ALL);
        if (have("pigz")) {
                sh("cd '%s' && pigz -p 2 -c disk.img > pigz.gz", tmp);
                check_format("pigz.gz", "gzip", UINT64_MAX, ALL);
        }
        if (have("pzstd")) {
                /* pzstd: skippable frames and one frame per chunk. */
                sh("cd '%s' && pzstd -q -p 2 -c disk.img > pzstd.zst", tmp);
                check_format("pzstd.zst", "zstd", UINT64_MAX, ALL);
        }
        if (have("zip")) {
                sh("cd '%s' && rm -f disk.zip stored.zip stream.zip zip64.zip && zip -q disk.zip disk.img && "
                   "zip -q -0 stored.zip disk.img && zip -q -fz zip64.zip disk.img && "
                   "zip -q - disk.img | cat > stream.zip",
                   tmp);
                check_format("disk.zip", "zip (disk.img)", image_size, FLIP | CUT | CUT_HEAD);
                check_format("stored.zip", "zip (disk.img)", image_size, FLIP | CUT | CUT_HEAD);
                check_format("zip64.zip", "zip (disk.img)", image_size, FLIP | CUT | CUT_HEAD);
                /* Written to a pipe: CRC and compressed size only in the
                 * data descriptor after the data; from a pipe, the size too. */
                check_format("stream.zip", "zip (disk.img)", UINT64_MAX, FLIP | CUT | CUT_HEAD | ANY_HINT);
                sh("cd '%s' && cat disk.img | zip -q - - | cat > stdin.zip", tmp);
                check_format("stdin.zip", "zip (-)", UINT64_MAX, FLIP | CUT | CUT_HEAD);
        }

        check_members();
        check_ambiguous();
        check_bomb("gzip -1", "bomb.gz");
        check_bomb("zstd -q -1", "bomb.zst");
        check_bomb("xz -0 -T1", "bomb.xz");
        check_bomb("bzip2 -1", "bomb.bz2");
        check_bomb("lz4 -q -1", "bomb.lz4");
        if (have("lzop")) {
                check_lzo();
                check_bomb("lzop -1 -c", "bomb.lzo");
        } else
                fprintf(stderr, "test-stream: lzop is missing (scripts/install-deps.sh): lzo not tested\n");
        check_trailing();
        check_bad_input();

        /* A skip on a raw file is a seek: the descriptor moves, nothing is read. */
        int fd = open(path("raw.img"), O_RDONLY | O_CLOEXEC);
        Input in = input_from_fd(&fd, "raw.img");
        Stream *s = NULL;
        Diag d = {};
        uint8_t buf[10];
        if (stream_open(&in, NULL, &s, &d) == 0) {
                CHECK(stream_read(s, buf, 10, &d) == 10, "read 10");
                CHECK(stream_skip(s, 3 * MiB, &d) == 0, "skip: %s", d.msg);
                CHECK_U64((uint64_t) lseek(fd, 0, SEEK_CUR), 3 * MiB + 10);
                CHECK(stream_read(s, buf, 10, &d) == 10 && memcmp(buf, image + 3 * MiB + 10, 10) == 0,
                      "read after a seek");
                stream_free(s);
        }
        close(fd);

        free(image);
        if (check_failures == 0)
                sh("rm -rf '%s'", tmp);
        return check_exit("test-stream");
}
