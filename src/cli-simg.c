/* SPDX-License-Identifier: GPL-2.0-or-later */
/* scan --simg (cli-simg.h): the output file around the writer (simg-write.h). */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli-simg.h"
#include "cli.h"
#include "compare.h"
#include "extents.h"
#include "image.h"
#include "json.h"
#include "stream.h"
#include "target.h"
#include "simg-write.h"

int cli_parse_simg_block_size(const char *s, uint64_t *ret) {
        uint64_t v;
        if (parse_size(s, &v) < 0 || v < 512 || v > (UINT64_C(1) << 20) || !is_pow2(v))
                return usage_error("--simg-block-size '%s' is not a power of two from 512 to 1 MiB", s);
        *ret = v;
        return CLI_CONTINUE;
}

static ssize_t image_pread(void *ctx, void *buf, size_t n, uint64_t off) {
        const Image *img = ctx;
        if (off >= img->size)
                return 0;
        if (n > img->size - off)
                n = (size_t) (img->size - off);
        int r = image_read(img, buf, n, off, NULL);
        return r < 0 ? r : (ssize_t) n;
}

static int out_pwrite(void *ctx, const void *buf, size_t n, uint64_t off) {
        int fd = *(int *) ctx;
        size_t done = 0;
        while (done < n) {
                ssize_t k = pwrite(fd, (const uint8_t *) buf + done, n - done, (off_t) (off + done));
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                done += (size_t) k;
        }
        return 0;
}

int cli_write_simg(const Image *img, const char *image, const Extents *mapped, const CliSimgOptions *o) {
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int out = -1;
        SimgWriteResult res;
        struct stat st;
        Diag d = {};
        int r;

        /* A sparse image is a file: it replaces a file, never a device's
         * contents or what a link to /proc leads to. */
        if (stat(o->path, &st) == 0 && !S_ISREG(st.st_mode)) {
                log_error("%s: not a regular file (%s): a sparse image is written as a file; choose a file path",
                          o->path, file_kind(st.st_mode));
                return EXIT_FAILED;
        }
        if (asprintf(&tmp, "%s.XXXXXX", o->path) < 0) {
                log_error("out of memory");
                return EXIT_FAILED;
        }
        out = mkostemp(tmp, O_CLOEXEC);
        if (out < 0) {
                log_error("cannot create a temporary file beside '%s': %s", o->path, strerror(errno));
                return EXIT_FAILED;
        }
        (void) fchmod(out, 0666 & ~current_umask());
        SimgWriteOptions wo = {
                .block_size = (uint32_t) o->block_size,
                .crc = o->crc,
                .read = image_pread,
                .read_ctx = (void *) img,
                .write = out_pwrite,
                .write_ctx = &out,
                .image_name = image,
                .output_name = o->path,
        };
        r = simg_write(img->size, mapped, &wo, &res, &d);
        if (r >= 0 && fsync(out) < 0)
                r = diag_set(&d, -errno, "cannot write '%s': %s", o->path, strerror(errno));
        if (r >= 0 && rename(tmp, o->path) < 0)
                r = diag_set(&d, -errno, "cannot rename '%s' to '%s': %s", tmp, o->path, strerror(errno));
        if (r < 0) {
                (void) unlink(tmp);
                log_error("%s; no sparse image was written", d.msg);
                return EXIT_FAILED;
        }
        const SimgInfo *i = &res.info;
        if (res.padded)
                log_warning("%s: %llu bytes, no multiple of the sparse image's block size (%u): its last block is "
                            "padded with %llu zero bytes, and simg2img expands it to %llu bytes",
                            image, (unsigned long long) img->size, (unsigned) i->block_size,
                            (unsigned long long) res.padded, (unsigned long long) (img->size + res.padded));
        char fsize[32], raw[32];
        format_human_size(res.file_size, fsize, sizeof(fsize));
        format_human_size(i->raw_blocks * i->block_size, raw, sizeof(raw));
        log_info("%s: Android sparse image, %s: %u blocks of %u bytes; %llu RAW chunks (%s), %llu FILL chunks "
                 "(%llu blocks), %llu DONT_CARE chunks (%llu blocks)%s",
                 o->path, fsize, (unsigned) i->total_blocks, (unsigned) i->block_size,
                 (unsigned long long) i->raw_chunks, raw, (unsigned long long) i->fill_chunks,
                 (unsigned long long) i->fill_blocks, (unsigned long long) i->dont_care_chunks,
                 (unsigned long long) i->dont_care_blocks, o->crc ? ", a CRC32 chunk" : "");
        return EXIT_OK;
}

static void info_json(const char *path, const char *describe, const SimgInfo *i, const char *error) {
        fputs("{\"path\":", stdout);
        json_print_string(stdout, path);
        fputs(",\"format\":\"android-sparse\",\"container\":", stdout);
        json_print_string(stdout, describe);
        uint64_t mapped = i->raw_blocks + i->fill_blocks;
        printf(",\"version\":\"%u.%u\",\"image_size\":%llu,\"block_size\":%u,\"blocks\":%u,\"chunks\":%u"
               ",\"raw_chunks\":%llu,\"raw_blocks\":%llu,\"fill_chunks\":%llu,\"fill_blocks\":%llu"
               ",\"fill_zero_blocks\":%llu,\"dont_care_chunks\":%llu,\"dont_care_blocks\":%llu,\"crc32_chunks\":%llu"
               ",\"image_checksum\":%u,\"crc_checked\":%llu,\"crc_unchecked\":%llu"
               ",\"mapped_blocks\":%llu,\"mapped_bytes\":%llu,\"valid\":%s,\"error\":",
               (unsigned) i->major, (unsigned) i->minor,
               (unsigned long long) ((uint64_t) i->total_blocks * i->block_size), (unsigned) i->block_size,
               (unsigned) i->total_blocks, (unsigned) i->total_chunks, (unsigned long long) i->raw_chunks,
               (unsigned long long) i->raw_blocks, (unsigned long long) i->fill_chunks,
               (unsigned long long) i->fill_blocks, (unsigned long long) i->fill_zero_blocks,
               (unsigned long long) i->dont_care_chunks, (unsigned long long) i->dont_care_blocks,
               (unsigned long long) i->crc_chunks, (unsigned) i->image_checksum,
               (unsigned long long) i->crc_checked, (unsigned long long) i->crc_unchecked,
               (unsigned long long) mapped, (unsigned long long) (mapped * i->block_size), error ? "false" : "true");
        if (error)
                json_print_string(stdout, error);
        else
                fputs("null", stdout);
        fputs("}\n", stdout);
}

static void info_text(const char *path, const char *describe, const SimgInfo *i) {
        _cleanup_free_ char *name = display_escape(path);
        uint64_t size = (uint64_t) i->total_blocks * i->block_size, mapped = i->raw_blocks + i->fill_blocks;
        char human[32], mapped_human[32];

        format_human_size(size, human, sizeof(human));
        format_human_size(mapped * i->block_size, mapped_human, sizeof(mapped_human));
        printf("sparse image:    %s\n", name ? name : "?");
        printf("format:          %s, version %u.%u\n", describe, (unsigned) i->major, (unsigned) i->minor);
        printf("image size:      %llu bytes (%s)\n", (unsigned long long) size, human);
        printf("block size:      %u bytes\n", (unsigned) i->block_size);
        printf("blocks:          %u\n", (unsigned) i->total_blocks);
        printf("chunks:          %u: %llu RAW (%llu blocks), %llu FILL (%llu blocks, %llu of zeros), "
               "%llu DONT_CARE (%llu blocks), %llu CRC32\n",
               (unsigned) i->total_chunks, (unsigned long long) i->raw_chunks, (unsigned long long) i->raw_blocks,
               (unsigned long long) i->fill_chunks, (unsigned long long) i->fill_blocks,
               (unsigned long long) i->fill_zero_blocks, (unsigned long long) i->dont_care_chunks,
               (unsigned long long) i->dont_care_blocks, (unsigned long long) i->crc_chunks);
        printf("mapped blocks:   %llu (%.1f%%, %s): RAW and FILL\n", (unsigned long long) mapped,
               i->total_blocks ? (double) mapped * 100.0 / i->total_blocks : 0.0, mapped_human);
        if (i->crc_chunks == 0 && i->image_checksum == 0)
                printf("checksums:       none\n");
        else
                printf("checksums:       %llu verified%s\n", (unsigned long long) i->crc_checked,
                       i->crc_unchecked ? ", others not (data seeked over)" : "");
}

int cli_info_simg(const char *path, bool json, bool *ret_handled) {
        _cleanup_close_ int fd = -1;
        _cleanup_stream_ Stream *s = NULL;
        uint8_t head[4];
        Diag d = {};

        *ret_handled = false;
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return EXIT_OK;
        bool bare = pread_full(fd, head, sizeof(head), 0) == sizeof(head) && get_le32(head) == SIMG_MAGIC;
        Input in = input_from_fd(&fd, path);
        if (stream_open(&in, NULL, &s, &d) < 0) {
                /* Only a bare sparse image is known to be one here; any
                 * other failure is for the image report to tell. */
                if (!bare)
                        return EXIT_OK;
                *ret_handled = true;
                if (json)
                        info_json(path, "Android sparse image", &(SimgInfo) {}, d.msg);
                log_error("%s", d.msg);
                return EXIT_FAILED;
        }
        const SimgInfo *i = stream_simg_info(s);
        if (!i)
                return EXIT_OK;
        *ret_handled = true;
        /* Seeking over the RAW data keeps info quick; what that leaves
         * unchecked is said ("others not"). */
        stream_simg_allow_seek(s);
        /* To the end, so that every chunk is counted and checked; the last
         * read sees the end and checks the totals. */
        uint8_t byte;
        int r = stream_skip(s, stream_size_hint(s), &d);
        if (r >= 0) {
                ssize_t k = stream_read(s, &byte, 1, &d);
                if (k > 0)
                        k = diag_set(&d, -EBADMSG, "%s: the sparse image gives more than its header says", path);
                r = (int) k;
        }
        if (json)
                info_json(path, stream_describe(s), i, r < 0 ? d.msg : NULL);
        else
                info_text(path, stream_describe(s), i);
        if (r < 0) {
                log_error("%s", d.msg);
                return EXIT_FAILED;
        }
        return EXIT_OK;
}

typedef struct BadPrinter {
        const char *dest;
        uint64_t block_size;
        FILE *out;
} BadPrinter;

static void print_bad(void *userdata, uint64_t start, uint64_t end) {
        const BadPrinter *p = userdata;
        fprintf(p->out,
                "%s: bad range %llu-%llu (bytes %llu-%llu): not what the sparse image's RAW and FILL chunks give\n",
               p->dest, (unsigned long long) (start / p->block_size), (unsigned long long) ((end - 1) / p->block_size),
               (unsigned long long) start, (unsigned long long) end - 1);
}

int cli_verify_simg(Stream *src, const char *image, const char *dest, FILE *bad_out, char *ret_error,
                    size_t error_len, uint64_t *ret_checked) {
        _cleanup_close_ int fd = -1;
        const SimgInfo *i = stream_simg_info(src);
        BadPrinter p = { .dest = dest, .block_size = i->block_size, .out = bad_out };
        CompareResult res;
        Diag d = {};

        *ret_checked = 0;
        if (target_open_for_verify(dest, &fd, &d) < 0)
                return log_error_kept(ret_error, error_len, "%s", d.msg);
        log_info("%s: no bmap: checking %s against the Android sparse image's RAW and FILL chunks (DONT_CARE "
                 "blocks are not checked)",
                 image, dest);
        /* The blocks of the sparse image are the units a bad range is
         * told in; a block size that is no power of two (a multiple of 4
         * only) is told in 4-byte units. */
        uint64_t granule = is_pow2(i->block_size) ? i->block_size : 4;
        int r = compare_stream_fd(src, fd, dest, granule, print_bad, &p, &res, &d);
        fflush(bad_out);
        if (r < 0)
                return log_error_kept(ret_error, error_len, "%s", d.msg);
        if (res.bad_ranges)
                return log_error_kept(ret_error, error_len,
                                      "%s: %llu ranges (%llu bytes) differ from %s: flash it again", dest,
                                      (unsigned long long) res.bad_ranges, (unsigned long long) res.bad_bytes,
                                      image);
        char human[32];
        format_human_size(res.compared, human, sizeof(human));
        log_info("%s: OK, %s in %llu RAW and FILL chunks match %s", dest, human,
                 (unsigned long long) (i->raw_chunks + i->fill_chunks), image);
        *ret_checked = res.compared;
        return EXIT_OK;
}
