/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "filemap.h"

#include <linux/fiemap.h>
#include <linux/fs.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

int filemap_block_size(int fd, uint64_t *ret) {
        int bsz = 0;
        struct stat st;

        if (ioctl(fd, FIGETBSZ, &bsz) == 0 && bsz > 0) {
                *ret = (uint64_t) bsz;
                return 0;
        }
        if (fstat(fd, &st) < 0)
                return -errno;
        if (st.st_blksize <= 0)
                return -EINVAL;
        *ret = (uint64_t) st.st_blksize;
        return 0;
}

#define FIEMAP_BATCH 1024

static int map_fiemap(int fd, uint64_t size, uint64_t block_size, Extents *out) {
        _cleanup_free_ struct fiemap *fm = NULL;
        uint64_t limit = div_round_up(size, block_size) * block_size;
        uint64_t pos = 0;

        fm = calloc(1, sizeof(*fm) + FIEMAP_BATCH * sizeof(struct fiemap_extent));
        if (!fm)
                return -ENOMEM;
        while (pos < limit) {
                memset(fm, 0, sizeof(*fm));
                fm->fm_start = pos;
                fm->fm_length = limit - pos;
                /* SYNC flushes delayed allocations first, so that data only in
                 * the page cache is reported where it will land. */
                fm->fm_flags = FIEMAP_FLAG_SYNC;
                fm->fm_extent_count = FIEMAP_BATCH;
                if (ioctl(fd, FS_IOC_FIEMAP, fm) < 0)
                        return -errno;
                if (fm->fm_mapped_extents == 0)
                        break;
                bool last = false;
                for (unsigned i = 0; i < fm->fm_mapped_extents; i++) {
                        const struct fiemap_extent *x = &fm->fm_extents[i];
                        uint64_t s = x->fe_logical, e = x->fe_logical + x->fe_length;
                        if (e > limit)
                                e = limit;
                        if (s >= limit)
                                break;
                        /* Every kind of extent counts: unwritten (preallocated),
                         * inline, encoded. Round outward to whole blocks. */
                        int r = extents_add(out, s / block_size, div_round_up(e, block_size));
                        if (r < 0)
                                return r;
                        if (e > pos)
                                pos = e;
                        if (x->fe_flags & FIEMAP_EXTENT_LAST)
                                last = true;
                }
                if (last)
                        break;
        }
        return 0;
}

static int map_seek(int fd, uint64_t size, uint64_t block_size, Extents *out) {
        uint64_t pos = 0;

        while (pos < size) {
                off_t data = lseek(fd, (off_t) pos, SEEK_DATA);
                if (data < 0) {
                        if (errno == ENXIO)
                                break;
                        return -errno;
                }
                off_t hole = lseek(fd, data, SEEK_HOLE);
                if (hole < 0)
                        return -errno;
                uint64_t s = (uint64_t) data, e = (uint64_t) hole > size ? size : (uint64_t) hole;
                if (e <= s)
                        break;
                int r = extents_add(out, s / block_size, div_round_up(e, block_size));
                if (r < 0)
                        return r;
                pos = e;
        }
        return 0;
}

int filemap_mapped_blocks(int fd, uint64_t size, uint64_t block_size, Extents *ret, FilemapMethod *ret_method,
                          Diag *d) {
        int r;

        if (block_size == 0)
                return -EINVAL;
        extents_clear(ret);
        if (size == 0) {
                *ret_method = FILEMAP_FIEMAP;
                return 0;
        }
        r = map_fiemap(fd, size, block_size, ret);
        if (r >= 0) {
                *ret_method = FILEMAP_FIEMAP;
                return 0;
        }
        if (r != -EOPNOTSUPP && r != -ENOTTY && r != -EINVAL)
                return diag_set(d, r, "the FIEMAP ioctl failed: %s", strerror(-r));

        extents_clear(ret);
        r = map_seek(fd, size, block_size, ret);
        if (r >= 0) {
                *ret_method = FILEMAP_SEEK;
                return 0;
        }
        if (r != -EINVAL && r != -EOPNOTSUPP)
                return diag_set(d, r, "finding holes with SEEK_DATA failed: %s", strerror(-r));

        /* The host can say nothing about holes: map it all, which is safe. */
        extents_clear(ret);
        *ret_method = FILEMAP_NONE;
        return extents_add(ret, 0, div_round_up(size, block_size));
}
