/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "extents.h"
#include "reader.h"
#include "util.h"

typedef struct Partition {
        unsigned number;        /* as the kernel would name it (1, 2, 5...); 0 for a whole-disk filesystem */
        uint64_t start, size;   /* bytes; the end may lie past the image */
        char type[48];          /* "0x83", or a GPT type's name or GUID */
        char fstype[32];        /* libblkid TYPE, "" when nothing was recognised */
        char type_guid[40];     /* GPT: the type GUID, lower case; "" otherwise */
        char uuid[40];          /* GPT: the partition's unique GUID, lower case; "" otherwise */
        char name[128];         /* GPT: the partition name (UTF-8); "" otherwise */
        bool container;         /* an MBR extended partition: holds EBRs and logical partitions */
        bool mapped_whole;      /* disputed or untrustworthy: never probed, mapped in full */
        char note[160];         /* why mapped_whole, or what is odd */
} Partition;

typedef struct Layout {
        char label[16];         /* "gpt", "dos", ... or "none" */
        unsigned sector_size;
        uint64_t image_size;
        Partition *parts;
        size_t n_parts;
        char note[256];         /* e.g. "primary GPT header damaged: read from the backup" */
} Layout;

void layout_done(Layout *l);

/* Reads the partition table of the image open as fd (libfdisk), and the
 * filesystem type of each partition (libblkid, probing at its offset and
 * size). An image with no partition table is one region, the whole image.
 * Partitions that overlap, reach outside their container or disagree with
 * a hybrid MBR are marked mapped_whole, with a note. */
int layout_read(int fd, const char *path, uint64_t image_size, Layout *ret, Diag *d);
/* The same for an Image: a raw one exactly as layout_read, a qcow2's
 * virtual disk through a copy of its table sectors (see layout.c). */
struct Image;
int layout_read_image(const struct Image *img, const char *path, Layout *ret, Diag *d);

/* The libblkid type of [offset, offset+size) of fd, "" if none or ambiguous. */
int layout_probe_fstype(int fd, uint64_t offset, uint64_t size, unsigned sector_size, char *buf, size_t buflen);
/* The same for the region of a Reader, which may be a volume in pieces. */
int layout_probe_reader_fstype(const Reader *r, unsigned sector_size, char *buf, size_t buflen);
