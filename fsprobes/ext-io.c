/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The io_manager libext2fs reads through: every read goes to the Reader,
 * so the library can neither stray outside the partition nor mistake the
 * end of a truncated image for zeros, and writes are refused. The channel
 * name carries the ReaderIo's address, as the library opens a channel by
 * name only. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <et/com_err.h>

#include "ext-internal.h"

#define READER_PREFIX "bmapscan-reader:"

static struct struct_io_manager reader_io_manager;

static errcode_t rio_open(const char *name, int flags, io_channel *ret) {
        io_channel ch = NULL;
        char *end;
        errcode_t e;

        if (!name || strncmp(name, READER_PREFIX, strlen(READER_PREFIX)) != 0)
                return EXT2_ET_BAD_DEVICE_NAME;
        if (flags & IO_FLAG_RW)
                return EROFS;
        errno = 0;
        uintptr_t p = (uintptr_t) strtoull(name + strlen(READER_PREFIX), &end, 16);
        if (errno || *end || p == 0)
                return EXT2_ET_BAD_DEVICE_NAME;

        e = ext2fs_get_memzero(sizeof(*ch), &ch);
        if (e)
                return e;
        e = ext2fs_get_mem(strlen(name) + 1, &ch->name);
        if (e) {
                ext2fs_free_mem(&ch);
                return e;
        }
        strcpy(ch->name, name);
        ch->magic = EXT2_ET_MAGIC_IO_CHANNEL;
        ch->manager = &reader_io_manager;
        ch->block_size = 1024;
        ch->refcount = 1;
        ch->private_data = (void *) p;
        *ret = ch;
        return 0;
}

static errcode_t rio_close(io_channel ch) {
        if (--ch->refcount > 0)
                return 0;
        ext2fs_free_mem(&ch->name);
        ext2fs_free_mem(&ch);
        return 0;
}

static errcode_t rio_set_blksize(io_channel ch, int blksize) {
        if (blksize <= 0)
                return EXT2_ET_INVALID_ARGUMENT;
        ch->block_size = blksize;
        return 0;
}

static errcode_t rio_read_blk64(io_channel ch, unsigned long long block, int count, void *data) {
        ReaderIo *rio = ch->private_data;
        /* A negative count is a byte count (the superblock is read so). */
        uint64_t len = count < 0 ? (uint64_t) -(int64_t) count : (uint64_t) count * (uint64_t) ch->block_size;
        uint64_t off;
        int k;

        if (__builtin_mul_overflow((uint64_t) block, (uint64_t) ch->block_size, &off) || len > SIZE_MAX)
                k = -ERANGE;
        else
                k = reader_read(rio->r, off, data, (size_t) len);
        if (k == 0)
                return 0;
        if (rio->err == 0) {
                rio->err = k;
                rio->err_off = (uint64_t) block * (uint64_t) ch->block_size;
                rio->err_len = len;
        }
        return k == -ERANGE || k == -ENODATA ? EXT2_ET_SHORT_READ : (errcode_t) -k;
}

static errcode_t rio_read_blk(io_channel ch, unsigned long block, int count, void *data) {
        return rio_read_blk64(ch, block, count, data);
}

static errcode_t rio_write_blk64(io_channel ch, unsigned long long block, int count, const void *data) {
        return EROFS;
}

static errcode_t rio_write_blk(io_channel ch, unsigned long block, int count, const void *data) {
        return EROFS;
}

static errcode_t rio_write_byte(io_channel ch, unsigned long offset, int count, const void *data) {
        return EROFS;
}

static errcode_t rio_flush(io_channel ch) {
        return 0;
}

static errcode_t rio_set_option(io_channel ch, const char *option, const char *arg) {
        return EXT2_ET_INVALID_ARGUMENT;
}

static struct struct_io_manager reader_io_manager = {
        .magic = EXT2_ET_MAGIC_IO_MANAGER,
        .name = "bmapscan reader I/O manager",
        .open = rio_open,
        .close = rio_close,
        .set_blksize = rio_set_blksize,
        .read_blk = rio_read_blk,
        .write_blk = rio_write_blk,
        .flush = rio_flush,
        .write_byte = rio_write_byte,
        .set_option = rio_set_option,
        .read_blk64 = rio_read_blk64,
        .write_blk64 = rio_write_blk64,
};

static pthread_once_t error_table_once = PTHREAD_ONCE_INIT;

static void error_table_init(void) {
        initialize_ext2_error_table();
}

const char *ext_strerror(errcode_t e) {
        pthread_once(&error_table_once, error_table_init);
        return error_message(e);
}

errcode_t ext_open_reader(ReaderIo *rio, ext2_filsys *ret_fs) {
        char name[64];

        snprintf(name, sizeof(name), READER_PREFIX "%" PRIxPTR, (uintptr_t) rio);
        return ext2fs_open2(name, NULL, EXT2_FLAG_64BITS, 0, 0, &reader_io_manager, ret_fs);
}
