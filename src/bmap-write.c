/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdio.h>
#include <string.h>

#include "bmap.h"
#include "hash.h"

/* Our bmaps are laid out byte for byte like those of bmaptool 3.6, so that
 * the same image gives the same file whichever tool made it. The text below
 * is that format's fixed header, reproduced as output data. */
static const char header[] =
        "<?xml version=\"1.0\" ?>\n"
        "<!-- This file contains the block map for an image file, which is basically\n"
        "     a list of useful (mapped) block numbers in the image file. In other words,\n"
        "     it lists only those blocks which contain data (boot sector, partition\n"
        "     table, file-system metadata, files, directories, extents, etc). These\n"
        "     blocks have to be copied to the target device. The other blocks do not\n"
        "     contain any useful data and do not have to be copied to the target\n"
        "     device.\n"
        "\n"
        "     The block map an optimization which allows to copy or flash the image to\n"
        "     the image quicker than copying of flashing the entire image. This is\n"
        "     because with bmap less data is copied: <MappedBlocksCount> blocks instead\n"
        "     of <BlocksCount> blocks.\n"
        "\n"
        "     Besides the machine-readable data, this file contains useful commentaries\n"
        "     which contain human-readable information like image size, percentage of\n"
        "     mapped data, etc.\n"
        "\n"
        "     The 'version' attribute is the block map file format version in the\n"
        "     'major.minor' format. The version major number is increased whenever an\n"
        "     incompatible block map format change is made. The minor number changes\n"
        "     in case of minor backward-compatible changes. -->\n"
        "\n";

typedef struct Buf {
        char *p;
        size_t len, cap;
        bool oom;
} Buf;

_printf_(2, 3) static void buf_printf(Buf *b, const char *fmt, ...) {
        va_list ap;
        int n;

        if (b->oom)
                return;
        for (;;) {
                va_start(ap, fmt);
                n = vsnprintf(b->p ? b->p + b->len : NULL, b->cap - b->len, fmt, ap);
                va_end(ap);
                if (n < 0) {
                        b->oom = true;
                        return;
                }
                if ((size_t) n < b->cap - b->len) {
                        b->len += (size_t) n;
                        return;
                }
                size_t cap = (b->cap ? b->cap * 2 : 16384) + (size_t) n;
                char *p = realloc(b->p, cap);
                if (!p) {
                        b->oom = true;
                        return;
                }
                b->p = p;
                b->cap = cap;
        }
}

static void buf_spaces(Buf *b, size_t n) {
        buf_printf(b, "%*s", (int) n, "");
}

/* bmaptool writes placeholders and later overwrites them in place, even when
 * the final text is longer than the placeholder: overwrite, never insert. */
static void buf_overwrite(Buf *b, size_t pos, const char *s) {
        size_t n = strlen(s);
        if (b->oom || pos + n > b->len)
                return;
        memcpy(b->p + pos, s, n);
}

int bmap_render(uint64_t image_size, uint64_t block_size, const Extents *blocks,
                const uint8_t (*checksums)[CHECKSUM_MAX_SIZE], char **ret_text, size_t *ret_len) {
        Buf b = {};
        char image_human[32], mapped_human[32], tmp[128], hex[2 * CHECKSUM_MAX_SIZE + 1];
        uint64_t blocks_count, mapped = 0;
        size_t count_pos, mapped_pos, checksum_pos, blocks_digits;

        if (block_size == 0 || image_size == 0)
                return -EINVAL;
        blocks_count = div_round_up(image_size, block_size);
        format_human_size(image_size, image_human, sizeof(image_human));
        blocks_digits = (size_t) snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long) blocks_count);

        buf_printf(&b, "%s", header);
        buf_printf(&b,
                   "<bmap version=\"2.0\">\n"
                   "    <!-- Image size in bytes: %s -->\n"
                   "    <ImageSize> %llu </ImageSize>\n"
                   "\n"
                   "    <!-- Size of a block in bytes -->\n"
                   "    <BlockSize> %llu </BlockSize>\n"
                   "\n"
                   "    <!-- Count of blocks in the image file -->\n"
                   "    <BlocksCount> %llu </BlocksCount>\n"
                   "\n"
                   "    <!-- Count of mapped blocks: ",
                   image_human, (unsigned long long) image_size, (unsigned long long) block_size,
                   (unsigned long long) blocks_count);
        count_pos = b.len;
        buf_spaces(&b, strlen(image_human));
        buf_printf(&b, " or ");
        buf_spaces(&b, strlen("100.0%"));
        buf_printf(&b, "   -->\n    <MappedBlocksCount> ");
        mapped_pos = b.len;
        buf_spaces(&b, blocks_digits);
        buf_printf(&b,
                   " </MappedBlocksCount>\n"
                   "\n"
                   "    <!-- Type of checksum used in this file -->\n"
                   "    <ChecksumType> sha256 </ChecksumType>\n"
                   "\n"
                   "    <!-- The checksum of this bmap file. When it is calculated, the value of\n"
                   "         the checksum has be zero (all ASCII \"0\" symbols).  -->\n"
                   "    <BmapFileChecksum> ");
        checksum_pos = b.len;
        buf_printf(&b,
                   "%064d </BmapFileChecksum>\n"
                   "\n"
                   "    <!-- The block map which consists of elements which may either be a\n"
                   "         range of blocks or a single block. The 'chksum' attribute\n"
                   "         (if present) is the checksum of this blocks range. -->\n"
                   "    <BlockMap>\n",
                   0);

        for (size_t i = 0; i < blocks->n; i++) {
                const Extent *x = &blocks->v[i];
                unsigned long long first = x->start, last = x->end - 1;

                if (x->end > blocks_count || x->start >= x->end || (i > 0 && x->start < blocks->v[i - 1].end)) {
                        free(b.p);
                        return -ERANGE;
                }
                mapped += x->end - x->start;
                buf_printf(&b, "        <Range");
                if (checksums) {
                        hex_encode(checksums[i], 32, hex);
                        buf_printf(&b, " chksum=\"%s\"", hex);
                }
                if (first != last)
                        buf_printf(&b, "> %llu-%llu </Range>\n", first, last);
                else
                        buf_printf(&b, "> %llu </Range>\n", first);
        }
        buf_printf(&b, "    </BlockMap>\n</bmap>\n");
        if (b.oom) {
                free(b.p);
                return -ENOMEM;
        }

        format_human_size(mapped * block_size, mapped_human, sizeof(mapped_human));
        snprintf(tmp, sizeof(tmp), "%s or %.1f%%", mapped_human, (double) mapped * 100.0 / (double) blocks_count);
        buf_overwrite(&b, count_pos, tmp);
        snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long) mapped);
        buf_overwrite(&b, mapped_pos, tmp);

        uint8_t digest[CHECKSUM_MAX_SIZE];
        int r = digest_buffer(CHECKSUM_SHA256, b.p, b.len, digest);
        if (r < 0) {
                free(b.p);
                return r;
        }
        hex_encode(digest, 32, hex);
        buf_overwrite(&b, checksum_pos, hex);

        *ret_text = b.p;
        *ret_len = b.len;
        return 0;
}

int bmap_from_ranges(uint64_t image_size, uint64_t block_size, const Extents *blocks, Bmap *ret) {
        uint64_t blocks_count, mapped = 0;
        BmapRange *v = NULL;

        if (block_size == 0 || image_size == 0)
                return -EINVAL;
        blocks_count = div_round_up(image_size, block_size);
        for (size_t i = 0; i < blocks->n; i++) {
                const Extent *x = &blocks->v[i];
                if (x->end > blocks_count || x->start >= x->end || (i > 0 && x->start < blocks->v[i - 1].end))
                        return -ERANGE;
                mapped += x->end - x->start;
        }
        if (blocks->n > 0) {
                v = calloc(blocks->n, sizeof(*v));
                if (!v)
                        return -ENOMEM;
                for (size_t i = 0; i < blocks->n; i++)
                        v[i].blocks = blocks->v[i];
        }
        *ret = (Bmap) {
                .version_major = 2,
                .version_minor = 0,
                .image_size = image_size,
                .block_size = block_size,
                .blocks_count = blocks_count,
                .mapped_count = mapped,
                .checksum_type = CHECKSUM_NONE,
                .file_checksum = FILE_CHECKSUM_ABSENT,
                .ranges = v,
                .n_ranges = blocks->n,
        };
        return 0;
}
