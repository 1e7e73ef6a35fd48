/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The commands and their options, as data: one row per option (its names,
 * its value, its help line, and the id the command's switch handles). The
 * same rows drive getopt_long and --help (cli.c), and, exported by
 * gen-doc.c, the man pages and the shell completions. A row two commands
 * share is one row, so they cannot drift apart. */
#include "cli.h"
#include "commands.h"

/* ---------------------------------------------------------------- global rows */

static const CliOption opt_quiet = {
        CLI_OPT_QUIET, "quiet", 'q', NULL, CLI_VALUE_NONE, NULL, false, "print only errors",
};
static const CliOption opt_verbose = {
        CLI_OPT_VERBOSE, "verbose", 'v', NULL, CLI_VALUE_NONE, NULL, false, "say more about what is done",
};
static const CliOption opt_help = {
        CLI_OPT_HELP, "help", 'h', NULL, CLI_VALUE_NONE, NULL, false, "show this help",
};
static const CliOption opt_version = {
        CLI_OPT_VERSION, "version", 0, NULL, CLI_VALUE_NONE, NULL, false, "show the version",
};

const CliOption *const cli_global_options[] = { &opt_quiet, &opt_verbose, &opt_help, &opt_version, NULL };

/* ---------------------------------------------------------------- shared rows */

static const CliOption opt_output = {
        CLI_OPT_OUTPUT, "output", 'o', "FILE", CLI_VALUE_FILE, NULL, false,
        "write the bmap to FILE (atomically) instead of stdout",
};
static const CliOption opt_no_checksum = {
        CLI_OPT_NO_CHECKSUM, "no-checksum", 0, NULL, CLI_VALUE_NONE, NULL, false,
        "leave out the range checksums",
};
static const CliOption opt_map = {
        CLI_OPT_MAP, "map", 0, "REGION", CLI_VALUE_TEXT, NULL, true,
        "map REGION in full whatever the filesystems say: START:LENGTH in bytes (K, M, G suffixes), part:N or "
        "label:NAME",
};
#define BLOCK_SIZES "512 1024 2048 4096 8192 16384 32768 65536"
static const CliOption opt_json = {
        CLI_OPT_JSON, "json", 0, NULL, CLI_VALUE_NONE, NULL, false, "print one JSON object instead of text",
};
static const CliOption opt_bmap_sig = {
        CLI_OPT_BMAP_SIG, "bmap-sig", 0, "FILE", CLI_VALUE_FILE, NULL, false,
        "the bmap's detached signature (default: BMAP.asc, BMAP.sig)",
};
static const CliOption opt_keyring = {
        CLI_OPT_KEYRING, "keyring", 0, "FILE", CLI_VALUE_FILE, NULL, false,
        "trust only the keys in FILE (exported keys, or a .kbx)",
};
static const CliOption opt_fingerprint = {
        CLI_OPT_FINGERPRINT, "fingerprint", 0, "FPR", CLI_VALUE_TEXT, NULL, false,
        "the bmap must be signed by the key with this fingerprint",
};
static const CliOption opt_no_sig_verify = {
        CLI_OPT_NO_SIG_VERIFY, "no-sig-verify", 0, NULL, CLI_VALUE_NONE, NULL, false,
        "do not verify the bmap's signature",
};
static const CliOption opt_ca_file = {
        CLI_OPT_CA_FILE, "ca-file", 0, "FILE", CLI_VALUE_FILE, NULL, false,
        "for https, trust the CA certificates in FILE (PEM) besides the system's",
};
static const CliOption opt_http_timeout = {
        CLI_OPT_HTTP_TIMEOUT, "http-timeout", 0, "SECS", CLI_VALUE_TEXT, NULL, false,
        "a transfer without data for SECS is resumed (or fails); default 30",
};

/* ---------------------------------------------------------------- scan */

static const CliOption opt_scan_sparse = {
        CLI_OPT_SPARSE, "sparse", 0, NULL, CLI_VALUE_NONE, NULL, false,
        "also punch holes over the unmapped blocks (as 'sparse')",
};
static const CliOption opt_scan_no_checksum = {
        CLI_OPT_NO_CHECKSUM, "no-checksum", 0, NULL, CLI_VALUE_NONE, NULL, false,
        "leave out the range checksums (reads only metadata)",
};
static const CliOption opt_scan_block_size = {
        CLI_OPT_BLOCK_SIZE, "block-size", 0, "N", CLI_VALUE_WORDS, BLOCK_SIZES, false,
        "bmap block size, a power of two from 512 (default 4096)",
};
static const CliOption opt_scan_json = {
        CLI_OPT_JSON, "json", 0, NULL, CLI_VALUE_NONE, NULL, false,
        "print the layout report as JSON on stdout instead of the bmap (with -o, both)",
};
static const CliOption opt_scan_simg = {
        CLI_OPT_SIMG, "simg", 0, "FILE", CLI_VALUE_FILE, NULL, false,
        "write an Android sparse image of the mapped blocks to FILE (atomically) instead of the bmap (with -o, "
        "both)",
};
static const CliOption opt_scan_simg_block_size = {
        CLI_OPT_SIMG_BLOCK_SIZE, "simg-block-size", 0, "N", CLI_VALUE_WORDS, "512 1024 2048 4096 8192 16384 32768 65536",
        false, "the sparse image's block size, a power of two from 512 to 1 MiB (default 4096)",
};
static const CliOption opt_scan_simg_crc = {
        CLI_OPT_SIMG_CRC, "simg-crc", 0, NULL, CLI_VALUE_NONE, NULL, false,
        "end the sparse image with a CRC32 chunk (U-Boot's writer cannot take one)",
};
static const CliOption *const scan_options[] = {
        &opt_output, &opt_scan_sparse, &opt_scan_no_checksum, &opt_scan_block_size, &opt_scan_json, &opt_map,
        &opt_scan_simg, &opt_scan_simg_block_size, &opt_scan_simg_crc, NULL,
};

/* ---------------------------------------------------------------- sparse */

static const CliOption opt_sparse_dry_run = {
        CLI_OPT_DRY_RUN, "dry-run", 'n', NULL, CLI_VALUE_NONE, NULL, false, "only report what would be freed",
};
static const CliOption opt_sparse_block_size = {
        CLI_OPT_BLOCK_SIZE, "block-size", 0, "N", CLI_VALUE_WORDS, BLOCK_SIZES, false,
        "granularity, a power of two from 512 (default 4096)",
};
static const CliOption *const sparse_options[] = { &opt_sparse_dry_run, &opt_sparse_block_size, &opt_map, NULL };

/* ---------------------------------------------------------------- copy */

static const CliOption opt_copy_bmap = {
        CLI_OPT_BMAP, "bmap", 0, "FILE", CLI_VALUE_FILE, NULL, false, "the bmap to use (a path or a URL)",
};
static const CliOption opt_copy_nobmap = {
        CLI_OPT_NOBMAP, "nobmap", 0, NULL, CLI_VALUE_NONE, NULL, false,
        "copy every byte of the image, with no bmap",
};
static const CliOption opt_copy_member = {
        CLI_OPT_MEMBER, "member", 0, "NAME", CLI_VALUE_TEXT, NULL, false,
        "the image is the member NAME of the tar or zip IMAGE",
};
static const CliOption opt_copy_no_verify = {
        CLI_OPT_NO_VERIFY, "no-verify", 0, NULL, CLI_VALUE_NONE, NULL, false, "do not check the range checksums",
};
static const CliOption opt_copy_verify_after = {
        CLI_OPT_VERIFY_AFTER, "verify-after", 0, NULL, CLI_VALUE_NONE, NULL, false,
        "read every target back and check it ('verify')",
};
static const CliOption opt_copy_removable = {
        CLI_OPT_REMOVABLE_DEVICE, "removable-device", 0, NULL, CLI_VALUE_NONE, NULL, false,
        "refuse a DEST whose disk is not removable",
};
static const CliOption opt_copy_discard = {
        CLI_OPT_DISCARD, "discard", 0, NULL, CLI_VALUE_NONE, NULL, false,
        "after writing a device, discard the blocks the image does not map, so that no stale data stays there",
};
static const CliOption opt_copy_psplash = {
        CLI_OPT_PSPLASH_PIPE, "psplash-pipe", 0, "FIFO", CLI_VALUE_FILE, NULL, false,
        "write 'PROGRESS <percent>' lines to FIFO (psplash)",
};
static const CliOption opt_copy_scan = {
        CLI_OPT_SCAN, "scan", 0, NULL, CLI_VALUE_NONE, NULL, false,
        "with no bmap: scan the filesystems of IMAGE (a raw image file or device) as 'scan' does and flash only "
        "what they use",
};
static const CliOption opt_copy_scan_bmap = {
        CLI_OPT_SCAN_BMAP, "scan-bmap", 0, "FILE", CLI_VALUE_FILE, NULL, false,
        "with --scan: once the copy succeeded, write the bmap it made, with the checksums it computed, to FILE",
};
static const CliOption opt_copy_skip_identical = {
        CLI_OPT_SKIP_IDENTICAL, "skip-identical", 0, NULL, CLI_VALUE_NONE, NULL, false,
        "read each MiB of a DEST first and write only what differs (an existing file DEST is updated in place)",
};
static const CliOption opt_copy_retries = {
        CLI_OPT_RETRIES, "retries", 0, "N", CLI_VALUE_TEXT, NULL, false,
        "write a range again up to N times after a write error, or (with --verify-after) when it reads back "
        "wrong; default 0",
};
static const CliOption opt_progress = {
        CLI_OPT_PROGRESS, "progress", 0, "FORMAT", CLI_VALUE_WORDS, "text json", false,
        "json: one JSON object per line on stdout (start, progress, retry, mismatch, end); default text",
};
static const CliOption opt_progress_fd = {
        CLI_OPT_PROGRESS_FD, "progress-fd", 0, "FD", CLI_VALUE_TEXT, NULL, false,
        "with --progress=json: write it to file descriptor FD instead of stdout",
};
static const CliOption opt_progress_file = {
        CLI_OPT_PROGRESS_FILE, "progress-file", 0, "PATH", CLI_VALUE_FILE, NULL, false,
        "with --progress=json: write it to the file or FIFO PATH instead of stdout",
};
static const CliOption *const copy_options[] = {
        &opt_copy_bmap, &opt_copy_nobmap, &opt_copy_member, &opt_copy_no_verify, &opt_copy_verify_after,
        &opt_bmap_sig, &opt_keyring, &opt_fingerprint, &opt_no_sig_verify, &opt_copy_removable, &opt_copy_discard,
        &opt_copy_psplash, &opt_ca_file, &opt_http_timeout,
        &opt_copy_scan, &opt_copy_scan_bmap, &opt_map, &opt_scan_block_size,
        &opt_copy_skip_identical, &opt_copy_retries, &opt_progress, &opt_progress_fd, &opt_progress_file,
        NULL,
};

/* ---------------------------------------------------------------- verify */

static const CliOption opt_verify_bmap = {
        CLI_OPT_BMAP, "bmap", 0, "FILE", CLI_VALUE_FILE, NULL, false,
        "the bmap to check against (a path or a URL)",
};
static const CliOption opt_verify_member = {
        CLI_OPT_MEMBER, "member", 0, "NAME", CLI_VALUE_TEXT, NULL, false,
        "DEST holds the member NAME of the tar or zip IMAGE: it must be there, and its bmap is looked for as "
        "'copy' does",
};
static const CliOption *const verify_options[] = {
        &opt_verify_bmap, &opt_verify_member, &opt_bmap_sig, &opt_keyring, &opt_fingerprint, &opt_no_sig_verify,
        &opt_ca_file, &opt_http_timeout, &opt_progress, &opt_progress_fd, &opt_progress_file, NULL,
};

/* ---------------------------------------------------------------- create, info */

static const CliOption *const create_options[] = { &opt_output, &opt_no_checksum, NULL };
static const CliOption *const info_options[] = { &opt_json, &opt_map, NULL };

/* ---------------------------------------------------------------- the commands */

const CliCommand cli_commands[] = {
        {
                .name = "scan",
                .summary = "filesystem-aware bmap of an image: maps only what its filesystems use",
                .operands = "IMAGE",
                .first = CLI_VALUE_FILE,
                .description =
                        "Write a bmap of IMAGE that maps what its filesystems use, read from their own allocation "
                        "metadata, plus everything that is not a filesystem (partition tables, gaps, unknown or "
                        "encrypted partitions). Holes in the file do not matter: an expanded image gets the same "
                        "bmap as a sparse one.\n\n"
                        "With --simg, write the mapped blocks as an Android sparse image instead (for fastboot "
                        "or U-Boot's 'mmc swrite'): RAW chunks of at most 16 MiB for data, FILL chunks for blocks "
                        "of one repeated 32-bit value (zero blocks of used files included), DONT_CARE chunks for "
                        "the rest. A last partial block is padded with zeros. --simg-crc adds a CRC32 chunk at "
                        "the end, which U-Boot does not skip correctly: leave it off for U-Boot.",
                .options = scan_options,
                .run = cmd_scan,
        },
        {
                .name = "sparse",
                .summary = "punch holes in an image over every block its filesystems do not use",
                .operands = "IMAGE",
                .first = CLI_VALUE_FILE,
                .description =
                        "Punch holes in IMAGE over every block its filesystems do not use (as 'scan' decides), "
                        "keeping its size: it then takes only the disk space its data needs. Mapped bytes are "
                        "never changed. Refused for an image attached to a loop device, a file that is not "
                        "writable (no write bit in its mode, even for root), one another process has open, or one "
                        "on a filesystem that cannot punch holes.",
                .options = sparse_options,
                .run = cmd_sparse,
        },
        {
                .name = "copy",
                .summary = "flash an image (compressed or not) to devices or files, verifying every range",
                .operands = "IMAGE|URL|- DEST [DEST...]",
                .first = CLI_VALUE_FILE,
                .rest = CLI_VALUE_DEST,
                .description =
                        "Flash IMAGE (a file, or - for standard input; gzip, bzip2, xz, zstd, lz4, lzo, the same "
                        "inside a tar, or zip, told from the content) to DEST: a block device or a file. Only the "
                        "blocks the bmap maps are written, each range checked against its checksum as it streams. An "
                        "Android sparse image (bare, compressed or archived) is expanded, its CRC32 chunks "
                        "checked; without a bmap its RAW and FILL chunks are the map. The "
                        "bmap is IMAGE.bmap, or the name with one extension stripped at a time (a.img.xz: "
                        "a.img.xz.bmap, a.img.bmap, a.bmap), unless --bmap names it; --bmap and --nobmap exclude "
                        "each other.\n\n"
                        "In a tar or zip, the image is the one file that could be one (by size and name; not a "
                        "bmap, signature, checksum list or README). Several are refused, naming them: pick one "
                        "with --member (its bmap is then also looked for beside IMAGE as NAME.bmap...). An image "
                        "that decodes to more bytes than the bmap's image size is refused as soon as it does (a "
                        "decompression bomb, or another image).\n\n"
                        "A signed bmap is verified with GnuPG before anything is opened: clearsigned, or with a "
                        "detached signature BMAP.asc or BMAP.sig beside it. A bad signature, or one by a key not in "
                        "the keyring, is refused. An unsigned bmap is used as it is, unless --keyring or "
                        "--fingerprint asks for a signature.\n\n"
                        "IMAGE (and FILE) may be an http://, https://, ftp:// or sftp:// URL, streamed; credentials "
                        "go in it (https://USER:PASSWORD@host/...) or in ~/.netrc; the proxy variables are honoured. "
                        "A broken or stalled download is resumed where the server takes byte ranges (for ftp and "
                        "sftp: where it tells the size). An sftp server's host key must be in ~/.ssh/known_hosts; "
                        "your keys in ~/.ssh or ssh-agent log in.\n\n"
                        "A file DEST is written as an unnamed file in its directory and linked into place only "
                        "after success, sparse, exactly the image's size: a copy that fails or is killed leaves "
                        "the old file as it was and nothing beside it. A symbolic link DEST gets the file or "
                        "device it points to written. A device is refused, before anything is written, when it or "
                        "a partition of it is mounted or in use, when it is read-only or smaller than the image. A "
                        "path on /dev that does not exist is refused (no file is made there), and so are "
                        "character devices, FIFOs and sockets, and the same DEST given twice. /dev/null reads and "
                        "verifies the image and writes nothing. Progress is shown on a terminal (or with -v).\n\n"
                        "With --scan instead of a bmap, a raw IMAGE (a local file or block device; not compressed, "
                        "not an archive, not standard input or a URL) has its filesystems scanned first, as 'scan' "
                        "does (--map and --block-size as there), and only what they use is flashed. Each range's "
                        "checksum is computed as it streams: --verify-after reads the targets back against those, "
                        "and --scan-bmap FILE keeps the bmap (as 'scan -o FILE' writes it) for the next copy. IMAGE "
                        "must not be written while it is copied.",
                .options = copy_options,
                .run = cmd_copy,
        },
        {
                .name = "verify",
                .summary = "read a flashed device back and check it against the bmap",
                .operands = "IMAGE|URL|- DEST",
                .first = CLI_VALUE_FILE,
                .rest = CLI_VALUE_DEST,
                .description =
                        "Read DEST back (for a block device, past its page cache) and check every range of the bmap "
                        "against its checksum. The bmap is found as 'copy' finds it, also beside a URL; with - as "
                        "IMAGE, --bmap is needed, unless IMAGE is an Android sparse image: without a bmap, DEST is "
                        "compared with its RAW and FILL chunks. Prints each bad range; exit status 1 if there is one. A signed "
                        "bmap is verified first, as 'copy' does it.",
                .options = verify_options,
                .run = cmd_verify,
        },
        {
                .name = "create",
                .summary = "hole-based bmap of a sparse image, identical to 'bmaptool create'",
                .operands = "IMAGE",
                .first = CLI_VALUE_FILE,
                .description =
                        "Write a bmap of IMAGE from its holes, exactly as 'bmaptool create' does: every block the "
                        "host filesystem stores (FIEMAP, preallocated extents included) is mapped, every hole is "
                        "not. Use it for images whose sparseness you trust; holes that were expanded into zeros "
                        "are mapped. -v says how the holes were found.",
                .options = create_options,
                .run = cmd_create,
        },
        {
                .name = "info",
                .summary = "describe an image's layout and use, or a bmap and its validity",
                .operands = "IMAGE|BMAP",
                .first = CLI_VALUE_FILE,
                .description =
                        "For an image: its partition table and sector size, each partition's type, filesystem, "
                        "used and free bytes and how that was decided, and a one-line picture of the disk.\n"
                        "For a bmap (told from an image by its content): its format version, image size, block "
                        "size, blocks and mapped blocks, checksum type, number of ranges, and whether it is valid, "
                        "its own file checksum included (exit 1 if not). For a clearsigned bmap, also whether its "
                        "signature verifies with GnuPG's default keyring (a warning if not; 'copy' is where a "
                        "signature is enforced).\n"
                        "For an Android sparse image (bare or compressed): its block size, blocks, chunks by type "
                        "and mapped size (exit 1 if a chunk is damaged).",
                .options = info_options,
                .run = cmd_info,
        },
};

const size_t cli_n_commands = ELEMENTSOF(cli_commands);
