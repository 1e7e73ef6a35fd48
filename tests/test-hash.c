/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The parallel range hasher against sha256sum/sha1sum run on the same bytes,
 * for every thread count. */
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>

#include "check.h"
#include "hash.h"

static char dir[4096];

static uint64_t rng = 12345;
static uint8_t rnd8(void) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        return (uint8_t) (rng >> 56);
}

/* Runs TOOL on the bytes [start, end) of data and returns its hex digest. */
static void reference_digest(const char *tool, const uint8_t *data, uint64_t start, uint64_t end, char *hex) {
        char path[4200], cmd[8500];
        FILE *f;

        snprintf(path, sizeof(path), "%s/piece", dir);
        f = fopen(path, "wb");
        fwrite(data + start, 1, end - start, f);
        fclose(f);
        snprintf(cmd, sizeof(cmd), "%s '%s'", tool, path);
        f = popen(cmd, "r");
        hex[0] = 0;
        if (f) {
                if (fscanf(f, "%64s", hex) != 1)
                        hex[0] = 0;
                pclose(f);
        }
}

int main(void) {
        const char *base = getenv("TEST_TMPDIR");
        const uint64_t bs = 4096, size = 5 * 1024 * 1024 + 1234; /* last block partial */
        uint8_t *data = malloc(size);
        char path[4200], hex[65], want[65];
        _cleanup_extents_ Extents blocks = EXTENTS_INIT;
        uint8_t digests[8][CHECKSUM_MAX_SIZE];
        Diag d = {};

        snprintf(dir, sizeof(dir), "%s/test-hash.XXXXXX", base ? base : "/tmp");
        mkdir(base ? base : "/tmp", 0755);
        if (!mkdtemp(dir)) {
                perror("mkdtemp");
                return 1;
        }
        for (uint64_t i = 0; i < size; i++)
                data[i] = rnd8();
        snprintf(path, sizeof(path), "%s/image", dir);
        int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        CHECK(fd >= 0 && write(fd, data, size) == (ssize_t) size, "writing the image");

        uint64_t nblocks = div_round_up(size, bs);
        extents_add(&blocks, 0, 1);                     /* one block */
        extents_add(&blocks, 3, 300);                   /* ~1.2 MiB */
        extents_add(&blocks, 301, 302);
        extents_add(&blocks, 700, 1100);                /* crosses the 4 MiB read chunk */
        extents_add(&blocks, nblocks - 2, nblocks);     /* ends in the partial block */

        for (int t = 0; t < 2; t++) {
                ChecksumType type = t ? CHECKSUM_SHA1 : CHECKSUM_SHA256;
                const char *tool = t ? "sha1sum" : "sha256sum";
                size_t hexlen = 2 * checksum_size(type);
                for (unsigned threads = 1; threads <= 5; threads += 2) {
                        memset(digests, 0, sizeof(digests));
                        int r = hash_block_ranges(fd, path, size, bs, &blocks, type, threads, digests, &d);
                        CHECK(r == 0, "hash_block_ranges with %u threads: %s", threads, d.msg);
                        for (size_t i = 0; i < blocks.n; i++) {
                                uint64_t s = blocks.v[i].start * bs, e = blocks.v[i].end * bs;
                                if (e > size)
                                        e = size;
                                reference_digest(tool, data, s, e, want);
                                hex_encode(digests[i], checksum_size(type), hex);
                                CHECK(strlen(want) == hexlen && strcmp(hex, want) == 0,
                                      "%s of blocks %" PRIu64 "-%" PRIu64 " with %u threads: got %s, %s says %s",
                                      checksum_name(type), blocks.v[i].start, blocks.v[i].end - 1, threads, hex,
                                      tool, want);
                        }
                }
        }

        /* digest_buffer agrees with the tool too. */
        uint8_t one[CHECKSUM_MAX_SIZE];
        CHECK(digest_buffer(CHECKSUM_SHA256, data, 1000, one) == 0, "digest_buffer");
        hex_encode(one, 32, hex);
        reference_digest("sha256sum", data, 0, 1000, want);
        CHECK(strcmp(hex, want) == 0, "digest_buffer gave %s, sha256sum %s", hex, want);
        CHECK(digest_buffer(CHECKSUM_NONE, data, 1, one) == -EINVAL, "no digest for CHECKSUM_NONE");

        /* A file shorter than the image size it claims: an error naming the offset. */
        CHECK(ftruncate(fd, 3 * 1024 * 1024) == 0, "truncate");
        int r = hash_block_ranges(fd, path, size, bs, &blocks, CHECKSUM_SHA256, 2, digests, &d);
        CHECK(r == -EIO, "a truncated file fails with -EIO, got %d", r);
        CHECK_STR_CONTAINS(d.msg, "3145728");
        CHECK_STR_CONTAINS(d.msg, "truncated");

        /* No extents: nothing to do, success. */
        Extents none = EXTENTS_INIT;
        CHECK(hash_block_ranges(fd, path, size, bs, &none, CHECKSUM_SHA256, 0, digests, &d) == 0, "empty set");

        close(fd);
        unlink(path);
        snprintf(path, sizeof(path), "%s/piece", dir);
        unlink(path);
        rmdir(dir);
        free(data);
        return check_exit("test-hash");
}
