/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Opening a qcow2 (qcow2.h): the header, its extensions, the L1 table and
 * every L2 table the virtual disk uses are checked before anything is read
 * through them, and the backing chain is opened, each file refused in one
 * line when it is not one to read. Format facts: FORMATS.md §12. */
#include <fcntl.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include "qcow2-internal.h"

static int open_at_depth(const Qcow2Host *h, unsigned depth, int own_fd, Qcow2 **ret, Diag *d);

/* The directory of path, where its relative backing name starts. */
static char *dir_of(const char *path) {
        const char *slash = strrchr(path, '/');
        return slash ? strndup(path, slash == path ? 1 : (size_t) (slash - path)) : strdup(".");
}

/* A backing name QEMU would hand to a protocol driver ("nbd:", "json:",
 * "https://"), not open as a file. */
static bool is_protocol(const char *name) {
        size_t k = strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.");
        return k > 0 && name[k] == ':';
}

/* Why the opened backing file is not one to read (a device, a FIFO, a
 * directory, a file of /proc or /sys, whose sizes and contents are not a
 * disk's), or NULL for a regular file. */
static const char *not_regular(int fd, const struct stat *st) {
        struct statfs sf;
        if (S_ISBLK(st->st_mode))
                return "a block device";
        if (S_ISCHR(st->st_mode))
                return "a character device";
        if (S_ISFIFO(st->st_mode))
                return "a FIFO";
        if (S_ISDIR(st->st_mode))
                return "a directory";
        if (S_ISSOCK(st->st_mode))
                return "a socket";
        if (!S_ISREG(st->st_mode))
                return "not a regular file";
        if (fstatfs(fd, &sf) == 0 && (sf.f_type == PROC_SUPER_MAGIC || sf.f_type == SYSFS_MAGIC))
                return sf.f_type == PROC_SUPER_MAGIC ? "a file of /proc" : "a file of /sys";
        return NULL;
}

/* The name of the disk image format a backing file's bytes are in, when
 * they are one QEMU would read as that format (its own probes' magics),
 * or NULL. A VHD has its footer at the end (and a copy at the start). */
static const char *other_format(int fd, uint64_t size) {
        uint8_t head[512] = {}, tail[512] = {};
        if (pread_full(fd, head, sizeof(head), 0) < 0)
                return NULL;
        if (size >= sizeof(tail) && pread_full(fd, tail, sizeof(tail), size - sizeof(tail)) < 0)
                return NULL;
        if (memcmp(head, "KDMV", 4) == 0 || memcmp(head, "# Disk DescriptorFile", 21) == 0)
                return "vmdk";
        if (memcmp(head, "vhdxfile", 8) == 0)
                return "vhdx";
        if (get_le32(head + 64) == 0xbeda107fU)
                return "vdi";
        if (memcmp(head, "conectix", 8) == 0 || memcmp(tail, "conectix", 8) == 0 ||
            memcmp(tail + 1, "conectix", 8) == 0)
                return "VHD (vpc)";
        if (memcmp(head, "QED\0", 4) == 0)
                return "qed";
        if (memcmp(head, "LUKS\xba\xbe", 6) == 0)
                return "LUKS";
        return NULL;
}

static int open_backing(Qcow2 *q, const char *name, const char *format, Diag *d) {
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -1;
        uint8_t magic[4] = {};
        struct stat st;

        if (is_protocol(name))
                return diag_set(d, -EPROTONOSUPPORT,
                                "%s: its backing file '%s' is not a local path (a URL or a protocol): only local backing "
                                "files are read: merge the chain with 'qemu-img convert' first",
                                q->name, name);
        if (!q->dir)
                return diag_set(d, -EPROTONOSUPPORT,
                                "%s: has a backing file ('%s'), which is read only beside a local qcow2 file: merge the "
                                "chain with 'qemu-img convert' or download both",
                                q->name, name);
        if (q->depth + 1 > QCOW2_MAX_DEPTH)
                return diag_set(d, -ELOOP, "%s: its backing chain is deeper than %d files (at '%s'): merge it with "
                                "'qemu-img convert' first", q->name, QCOW2_MAX_DEPTH, name);
        if (name[0] == '/')
                path = strdup(name);
        else if (asprintf(&path, "%s/%s", q->dir, name) < 0)
                path = NULL;
        if (!path)
                return diag_set(d, -ENOMEM, "%s: out of memory", q->name);
        /* O_NONBLOCK: opening a FIFO must not wait for a writer; it is
         * refused below, as is anything but a regular file. */
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
        if (fd < 0 || fstat(fd, &st) < 0)
                return diag_set(d, -errno, "%s: cannot open its backing file '%s' (%s): %s", q->name, name, path,
                                strerror(errno));
        const char *what = not_regular(fd, &st);
        if (what)
                return diag_set(d, -EINVAL, "%s: its backing file '%s' (%s) is %s: only a regular file is read as a "
                                "backing file: merge the chain with 'qemu-img convert' first",
                                q->name, name, path, what);
        uint64_t size = (uint64_t) st.st_size;
        ssize_t k = pread_full(fd, magic, sizeof(magic), 0);
        bool is_qcow2 = k == (ssize_t) sizeof(magic) && qcow2_detect(magic, sizeof(magic));
        if (format[0] && strcmp(format, "qcow2") != 0 && strcmp(format, "raw") != 0)
                return diag_set(d, -EPROTONOSUPPORT,
                                "%s: its backing file '%s' is in format '%s': only raw and qcow2 backing files are read: "
                                "merge the chain with 'qemu-img convert' first",
                                q->name, name, format);
        if (strcmp(format, "qcow2") == 0 && !is_qcow2)
                return diag_set(d, -EINVAL, "%s: its backing file '%s' should be qcow2 but is not one", q->name, name);
        if (strcmp(format, "raw") == 0)
                is_qcow2 = false;
        else if (!format[0] && !is_qcow2) {
                /* No format named: QEMU would probe it, and read another
                 * image format as that format, not as raw bytes. */
                const char *other = other_format(fd, size);
                if (other)
                        return diag_set(d, -EPROTONOSUPPORT,
                                        "%s: its backing file '%s' is a %s image (the qcow2 names no backing format): only "
                                        "raw and qcow2 backing files are read: merge the chain with 'qemu-img convert' "
                                        "first", q->name, name, other);
        }
        q->bname = strdup(name);
        q->bpath = strdup(path);
        if (!q->bname || !q->bpath)
                return diag_set(d, -ENOMEM, "%s: out of memory", q->name);
        q->has_backing = true;
        if (is_qcow2) {
                _cleanup_free_ char *bdir = dir_of(path);
                if (!bdir)
                        return diag_set(d, -ENOMEM, "%s: out of memory", q->name);
                Qcow2Host bh = { .name = path, .pread = qcow2_fd_pread, .ctx = (void *) (intptr_t) fd, .size = size, .dir = bdir };
                int r = open_at_depth(&bh, q->depth + 1, TAKE_FD(fd), &q->bq, d);
                if (r < 0)
                        return r;
                q->bsize = q->bq->size;
                /* A chain too long for the report is cut short there. */
                if (snprintf(q->chain, sizeof(q->chain), "%s (qcow2)%s%s", name, q->bq->chain[0] ? " -> " : "",
                             q->bq->chain) >= (int) sizeof(q->chain))
                        memcpy(q->chain + sizeof(q->chain) - 4, "...", 4);
        } else {
                q->bfd = TAKE_FD(fd);
                q->bsize = size;
                if (snprintf(q->chain, sizeof(q->chain), "%s (raw)", name) >= (int) sizeof(q->chain))
                        memcpy(q->chain + sizeof(q->chain) - 4, "...", 4);
        }
        return 0;
}

/* The name QEMU's feature table gives an incompatible bit, or "". */
static void feature_name(const uint8_t *ext, uint32_t len, unsigned bit, char *buf, size_t size) {
        buf[0] = 0;
        for (uint32_t i = 0; i + 48 <= len; i += 48)
                if (ext[i] == 0 && ext[i + 1] == bit) {
                        size_t k = strnlen((const char *) ext + i + 2, 46);
                        snprintf(buf, size, " ('%.*s')", (int) k, (const char *) ext + i + 2);
                        for (char *c = buf; *c; c++)
                                if ((unsigned char) *c < 0x20 || (unsigned char) *c >= 0x7f)
                                        *c = '?';
                }
}

/* Every L1 entry and every L2 entry the virtual disk uses, once. */
static int check_tables(Qcow2 *q, Diag *d) {
        _cleanup_free_ uint8_t *t = malloc((size_t) q->cs);
        unsigned esz = q->extended ? 16 : 8;
        uint64_t clusters = div_round_up(q->size, q->cs);
        int r;

        if (!t)
                return diag_set(d, -ENOMEM, "%s: out of memory", q->name);
        for (size_t i = 0; i < q->l1_entries; i++) {
                uint64_t off = q->l1[i] & L1_OFFSET_MASK;
                uint64_t first = (uint64_t) i << q->l2_bits;
                const char *bad;
                q->l1[i] = off;
                if (off == 0)
                        continue;
                bad = qcow2_check_host(q, off, q->cs);
                if (bad)
                        return diag_set(d, -EINVAL, "%s: L1 entry %zu (guest byte %" PRIu64 "): its L2 table %s (byte %" PRIu64
                                        "): the qcow2 file is damaged",
                                        q->name, i, first << q->cluster_bits, bad, off);
                r = qcow2_host_read(q, off, t, (size_t) q->cs, "an L2 table", d);
                if (r < 0)
                        return r;
                uint64_t n = clusters - first < (UINT64_C(1) << q->l2_bits) ? clusters - first : UINT64_C(1) << q->l2_bits;
                for (uint64_t j = 0; j < n; j++) {
                        uint64_t w = get_be64(t + j * esz), w2 = q->extended ? get_be64(t + j * esz + 8) : 0;
                        bad = qcow2_check_entry(q, w, w2);
                        if (bad)
                                return diag_set(d, -EINVAL, "%s: L2 table at byte %" PRIu64 ", entry %" PRIu64
                                                " (guest byte %" PRIu64 "): %s: the qcow2 file is damaged",
                                                q->name, off, j, (first + j) << q->cluster_bits, bad);
                        if (w & L2_COMPRESSED) {
                                q->n_compressed++;
                                q->n_allocated++;
                        } else if (q->extended ? (uint32_t) (w2 >> 32) == UINT32_MAX
                                               : q->version >= 3 && (w & L2_ZERO))
                                q->n_zero++;
                        else if (q->extended ? (uint32_t) w2 != 0 : (w & L2_OFFSET_MASK) != 0)
                                q->n_allocated++;
                }
        }
        return 0;
}

static int open_at_depth(const Qcow2Host *h, unsigned depth, int own_fd, Qcow2 **ret, Diag *d) {
        _cleanup_(qcow2_freep) Qcow2 *q = NULL;
        uint8_t hd[V3_HEADER + 8] = {};
        char backing_format[64] = "";
        _cleanup_free_ uint8_t *c0 = NULL;
        int r;

        q = calloc(1, sizeof(*q));
        if (!q) {
                if (own_fd >= 0)
                        close(own_fd);
                return diag_set(d, -ENOMEM, "%s: out of memory", h->name);
        }
        q->own_fd = own_fd;
        q->bfd = -1;
        q->depth = depth;
        q->host = *h;
        pthread_mutex_init(&q->lock, NULL);
        pthread_mutex_init(&q->dlock, NULL);
        q->name = strdup(h->name);
        q->dir = h->dir ? strdup(h->dir) : NULL;
        if (!q->name || (h->dir && !q->dir))
                return diag_set(d, -ENOMEM, "%s: out of memory", h->name);
        q->host.name = q->name;
        q->file_size = h->size;

        ssize_t k = h->pread(h->ctx, 0, hd, sizeof(hd));
        if (k < 0)
                return diag_set(d, (int) k, "%s: cannot read the qcow2 header: %s", q->name, strerror((int) -k));
        if (k < V2_HEADER || get_be32(hd) != QCOW2_MAGIC)
                return diag_set(d, -EINVAL, "%s: not a qcow2 file (no complete header): the file is damaged or "
                                "incomplete", q->name);
        q->version = get_be32(hd + 4);
        if (q->version != 2 && q->version != 3)
                return diag_set(d, -EPROTONOSUPPORT, "%s: qcow2 version %u: only versions 2 and 3 are read: convert it with "
                                "'qemu-img convert -O raw' first", q->name,
                                q->version);
        uint64_t backing_off = get_be64(hd + 8);
        uint32_t backing_len = get_be32(hd + 16);
        q->cluster_bits = get_be32(hd + 20);
        q->size = get_be64(hd + 24);
        uint32_t crypt = get_be32(hd + 32);
        uint32_t l1_size = get_be32(hd + 36);
        uint64_t l1_off = get_be64(hd + 40);
        uint64_t refcount_off = get_be64(hd + 48);
        uint32_t refcount_clusters = get_be32(hd + 56);
        q->n_snapshots = get_be32(hd + 60);
        uint64_t snapshots_off = get_be64(hd + 64);
        uint64_t incompat = 0;
        uint32_t header_len = V2_HEADER;
        uint8_t compression = 0;

        if (q->version == 3) {
                if (k < V3_HEADER)
                        return diag_set(d, -EINVAL, "%s: the qcow2 v3 header is cut short", q->name);
                incompat = get_be64(hd + 72);
                uint32_t refcount_order = get_be32(hd + 96);
                header_len = get_be32(hd + 100);
                if (header_len < V3_HEADER || header_len % 8 != 0)
                        return diag_set(d, -EINVAL, "%s: qcow2 header length %u is invalid (at least 104, a multiple of 8)",
                                        q->name, header_len);
                if (refcount_order > 6)
                        return diag_set(d, -EINVAL, "%s: qcow2 refcount order %u is invalid (at most 6)", q->name,
                                        refcount_order);
                if (header_len > V3_HEADER)
                        compression = hd[104];
        }
        if (q->cluster_bits < MIN_CLUSTER_BITS || q->cluster_bits > MAX_CLUSTER_BITS)
                return diag_set(d, -EINVAL, "%s: qcow2 cluster bits %u out of range (%d-%d: 512 B to 2 MiB clusters)",
                                q->name, q->cluster_bits, MIN_CLUSTER_BITS, MAX_CLUSTER_BITS);
        q->cs = UINT64_C(1) << q->cluster_bits;
        if (header_len > q->cs)
                return diag_set(d, -EINVAL, "%s: the qcow2 header (%u bytes) is larger than a cluster", q->name, header_len);
        if (crypt != 0)
                return diag_set(d, -EPROTONOSUPPORT, "%s: the qcow2 image is encrypted (%s): decrypt it with 'qemu-img "
                                "convert' first",
                                q->name, crypt == 1 ? "AES" : crypt == 2 ? "LUKS" : "unknown method");
        if (incompat & INCOMPAT_CORRUPT)
                return diag_set(d, -EINVAL, "%s: the qcow2 image is marked corrupt: check it with 'qemu-img check -r all'",
                                q->name);
        if (incompat & INCOMPAT_DATA_FILE)
                return diag_set(d, -EPROTONOSUPPORT, "%s: the qcow2 image keeps its data in an external data file: "
                                "convert it with 'qemu-img convert' first", q->name);
        q->dirty = incompat & INCOMPAT_DIRTY;
        q->extended = incompat & INCOMPAT_EXTL2;
        if (q->extended && q->cluster_bits < 14)
                return diag_set(d, -EINVAL, "%s: extended L2 entries with %" PRIu64 "-byte clusters (at least 16 KiB)",
                                q->name, q->cs);
        if (compression > 1)
                return diag_set(d, -EPROTONOSUPPORT, "%s: qcow2 compression type %u is unknown (0 deflate, 1 zstd)", q->name,
                                compression);
        if ((compression != 0) != !!(incompat & INCOMPAT_COMPRESSION))
                return diag_set(d, -EINVAL, "%s: the qcow2 compression type (%u) and its feature bit disagree", q->name,
                                compression);
        q->zstd = compression == 1;
        q->l2_bits = q->cluster_bits - (q->extended ? 4 : 3);

        /* Cluster 0 holds the header, its extensions and the backing name. */
        uint64_t c0_len = q->cs < q->file_size ? q->cs : q->file_size;
        c0 = calloc(1, (size_t) q->cs);
        if (!c0)
                return diag_set(d, -ENOMEM, "%s: out of memory", q->name);
        r = qcow2_host_read(q, 0, c0, (size_t) c0_len, "the header cluster", d);
        if (r < 0)
                return r;
        uint64_t ext_end = backing_off ? backing_off : c0_len;
        if (backing_off) {
                if (backing_len == 0 || backing_len > 1023 || backing_off < header_len || backing_off > c0_len ||
                    backing_len > c0_len - backing_off)
                        return diag_set(d, -EINVAL, "%s: the backing file name (%u bytes at byte %" PRIu64
                                        ") does not lie in the header cluster: the qcow2 file is damaged",
                                        q->name, backing_len, backing_off);
                if (memchr(c0 + backing_off, 0, backing_len))
                        return diag_set(d, -EINVAL, "%s: the backing file name holds a NUL byte: the qcow2 file is damaged",
                                        q->name);
        }
        const uint8_t *names = NULL;
        uint32_t names_len = 0;
        /* Version 2 files have extensions too, from byte 72: qemu-img
         * writes the backing format there (compat=0.10 -F raw). */
        for (uint64_t at = header_len;;) {
                if (at + 8 > ext_end)
                        return diag_set(d, -EINVAL, "%s: the header extensions run past byte %" PRIu64
                                        ": the qcow2 file is damaged", q->name, ext_end);
                uint32_t type = get_be32(c0 + at), len = get_be32(c0 + at + 4);
                if (type == EXT_END)
                        break;
                if (len > ext_end - at - 8)
                        return diag_set(d, -EINVAL, "%s: header extension 0x%08x at byte %" PRIu64
                                        " runs past byte %" PRIu64 ": the qcow2 file is damaged", q->name, type, at, ext_end);
                if (type == EXT_BACKING_FORMAT) {
                        if (len == 0 || len >= sizeof(backing_format) || memchr(c0 + at + 8, 0, len))
                                return diag_set(d, -EINVAL, "%s: the backing format extension is invalid", q->name);
                        memcpy(backing_format, c0 + at + 8, len);
                        backing_format[len] = 0;
                } else if (type == EXT_FEATURE_NAMES) {
                        names = c0 + at + 8;
                        names_len = len;
                }
                at += 8 + ((uint64_t) len + 7) / 8 * 8;
        }
        if (incompat & ~INCOMPAT_KNOWN) {
                unsigned bit = (unsigned) __builtin_ctzll(incompat & ~INCOMPAT_KNOWN);
                char nm[64] = "";
                if (names)
                        feature_name(names, names_len, bit, nm, sizeof(nm));
                return diag_set(d, -EPROTONOSUPPORT, "%s: the qcow2 image uses an unknown incompatible feature (bit %u%s): "
                                "convert it with 'qemu-img convert' first", q->name, bit, nm);
        }

        /* The L1 table: large enough for the virtual size, inside the file. */
        uint64_t clusters = div_round_up(q->size, q->cs);
        uint64_t need = div_round_up(clusters, UINT64_C(1) << q->l2_bits);
        if (q->size > (UINT64_C(1) << 62) || need > MAX_L1_BYTES / 8)
                return diag_set(d, -EINVAL, "%s: virtual size %" PRIu64 " is too large for %" PRIu64
                                "-byte clusters: the qcow2 file is damaged", q->name, q->size, q->cs);
        if (l1_size < need)
                return diag_set(d, -EINVAL, "%s: the L1 table (%u entries) is too small for the virtual size (%" PRIu64
                                " entries): the qcow2 file is damaged", q->name, l1_size, need);
        if (need > 0) {
                const char *bad = qcow2_check_host(q, l1_off, need * 8);
                if (bad)
                        return diag_set(d, -EINVAL, "%s: the L1 table (byte %" PRIu64 ") %s: the qcow2 file is damaged",
                                        q->name, l1_off, bad);
        }
        if (refcount_clusters > 0 && qcow2_check_host(q, refcount_off, 1))
                return diag_set(d, -EINVAL, "%s: the refcount table (byte %" PRIu64 ") %s: the qcow2 file is damaged",
                                q->name, refcount_off, qcow2_check_host(q, refcount_off, 1));
        if (q->n_snapshots > 0 && qcow2_check_host(q, snapshots_off, 1))
                return diag_set(d, -EINVAL, "%s: the snapshot table (byte %" PRIu64 ") %s: the qcow2 file is damaged",
                                q->name, snapshots_off, qcow2_check_host(q, snapshots_off, 1));
        q->l1_entries = (size_t) need;
        q->l1 = calloc(need ? need : 1, sizeof(uint64_t));
        if (!q->l1)
                return diag_set(d, -ENOMEM, "%s: out of memory", q->name);
        if (need > 0) {
                r = qcow2_host_read(q, l1_off, q->l1, (size_t) need * 8, "the L1 table", d);
                if (r < 0)
                        return r;
                for (size_t i = 0; i < need; i++)
                        q->l1[i] = get_be64(&q->l1[i]);
        }

        /* Caches and decoders. */
        q->n_slots = (size_t) (L2_CACHE_BYTES / q->cs);
        if (q->n_slots < L2_CACHE_MIN)
                q->n_slots = L2_CACHE_MIN;
        if (q->n_slots > L2_CACHE_MAX)
                q->n_slots = L2_CACHE_MAX;
        q->slots = calloc(q->n_slots, sizeof(L2Slot));
        /* Decoders are made as threads need them; each takes about 3
         * clusters, and those idle are kept up to DECODE_CACHE_BYTES. */
        q->max_idle = (size_t) (DECODE_CACHE_BYTES / (3 * q->cs));
        if (q->max_idle < DECODE_CACHE_MIN)
                q->max_idle = DECODE_CACHE_MIN;
        if (q->max_idle > DECODE_CACHE_MAX)
                q->max_idle = DECODE_CACHE_MAX;
        if (!q->slots)
                return diag_set(d, -ENOMEM, "%s: out of memory", q->name);
        for (size_t i = 0; i < q->n_slots; i++)
                if (!(q->slots[i].data = malloc((size_t) q->cs)))
                        return diag_set(d, -ENOMEM, "%s: out of memory", q->name);

        r = check_tables(q, d);
        if (r < 0)
                return r;
        if (backing_off) {
                char name[1024];
                memcpy(name, c0 + backing_off, backing_len);
                name[backing_len] = 0;
                r = open_backing(q, name, backing_format, d);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(q);
        return 0;
}

int qcow2_open(const Qcow2Host *h, Qcow2 **ret, Diag *d) {
        return open_at_depth(h, 0, -1, ret, d);
}

int qcow2_open_path(const char *path, Qcow2 **ret, Diag *d) {
        _cleanup_free_ char *dir = NULL;
        struct stat st;
        int fd = open(path, O_RDONLY | O_CLOEXEC);

        if (fd < 0 || fstat(fd, &st) < 0) {
                int e = errno;
                if (fd >= 0)
                        close(fd);
                return diag_set(d, -e, "cannot open image '%s': %s", path, strerror(e));
        }
        dir = dir_of(path);
        if (!dir) {
                close(fd);
                return diag_set(d, -ENOMEM, "%s: out of memory", path);
        }
        uint64_t size = (uint64_t) st.st_size;
        if (S_ISBLK(st.st_mode)) {
                off_t end = lseek(fd, 0, SEEK_END);
                size = end > 0 ? (uint64_t) end : 0;
        }
        Qcow2Host h = { .name = path, .pread = qcow2_fd_pread, .ctx = (void *) (intptr_t) fd, .size = size, .dir = dir };
        return open_at_depth(&h, 0, fd, ret, d);
}
