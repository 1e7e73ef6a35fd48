/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What the files of the ext probe share. ext.c decides what is used;
 * ext-io.c lets libext2fs read only through our bounded Reader;
 * ext-journal.c walks the jbd2 log of a filesystem that needs recovery. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ext2fs/ext2_fs.h>
#include <ext2fs/ext2fs.h>

#include "probe.h"

#define EXT_SB_OFFSET 1024

/* ---------------------------------------------------------------- ext-io.c */

/* What the io channel reads through, and the first read that failed. */
typedef struct ReaderIo {
        const Reader *r;
        int err;
        uint64_t err_off, err_len;
} ReaderIo;

/* Opens the filesystem read-only with every read going to rio->r; a read
 * that fails is remembered in rio (the first one), and libext2fs sees a
 * short read (outside the partition, past the image's end) or the errno. */
errcode_t ext_open_reader(ReaderIo *rio, ext2_filsys *ret_fs);

/* libext2fs's message for e (its error table loaded once). */
const char *ext_strerror(errcode_t e);

/* ---------------------------------------------------------------- ext-journal.c */

/* The journal of a filesystem that needs recovery, as far as we read it. */
typedef struct Journal {
        ext2_filsys fs;
        ext2_ino_t ino;
        struct ext2_inode inode;
        uint32_t first, maxlen, incompat;
        uint8_t *buf, *data;
        /* Block bitmap locations, sorted, to spot journaled bitmap copies. */
        struct BitmapLoc {
                blk64_t blk;
                dgrp_t group;
        } *locs;
        /* Every block the log writes. */
        blk64_t *targets;
        size_t n_targets, cap_targets;
        unsigned transactions;
        char why[160];
} Journal;

/* Reads the journal of j->fs: returns 0 with j->targets filled (every
 * block the log writes) and the journaled block bitmap copies merged into
 * the filesystem's in-memory bitmap, -ENOMEM, or another negative errno
 * with j->why saying what was not understood. */
int ext_journal_collect(Journal *j);
void ext_journal_done(Journal *j);
