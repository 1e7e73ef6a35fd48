/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdio.h>

/* scan --simg: writes the mapped set of an image as an Android sparse image
 * under a temporary name beside the output, renamed into place only when
 * complete, and says what it wrote. Returns an exit status. */

#include <stdbool.h>
#include <stdint.h>

struct Extents;

typedef struct CliSimgOptions {
        const char *path;       /* --simg FILE, or NULL */
        uint64_t block_size;    /* --simg-block-size; 0: 4096 */
        bool crc;               /* --simg-crc */
} CliSimgOptions;

/* --simg-block-size: a power of two from 512 to 1 MiB. */
int cli_parse_simg_block_size(const char *s, uint64_t *ret);
struct Image;
/* The image as the scan read it (raw, or a qcow2's virtual disk). */
int cli_write_simg(const struct Image *img, const char *image, const struct Extents *mapped, const CliSimgOptions *o);

/* info of an Android sparse image (bare, compressed or in an archive): its
 * header and its chunks by type, read to the end (a local bare file's data
 * is seeked over, a compressed one decoded). *ret_handled is false, and
 * nothing printed, when path is no sparse image; then the exit status is
 * EXIT_OK. */
int cli_info_simg(const char *path, bool json, bool *ret_handled);

struct Stream;
/* verify of an Android sparse image without a bmap: DEST against its RAW
 * and FILL chunks, as they stream from src (DONT_CARE not checked); each
 * bad range printed as verify prints them, to bad_out (stderr when stdout
 * carries --progress=json). The error line said is also kept in ret_error
 * (for JSON's end), the bytes compared in ret_checked. */
int cli_verify_simg(struct Stream *src, const char *image, const char *dest, FILE *bad_out, char *ret_error,
                    size_t error_len, uint64_t *ret_checked);
