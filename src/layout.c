/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "layout.h"

#include <blkid.h>
#include <ctype.h>
#include <fcntl.h>
#include <libfdisk.h>
#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>
#include <stdio.h>
#include <string.h>

#include "image.h"

void layout_done(Layout *l) {
        if (!l)
                return;
        free(l->parts);
        *l = (Layout) {};
}

int layout_probe_fstype(int fd, uint64_t offset, uint64_t size, unsigned sector_size, char *buf, size_t buflen) {
        blkid_probe pr;
        const char *type = NULL;
        int r;

        buf[0] = 0;
        if (size == 0)
                return 0;
        pr = blkid_new_probe();
        if (!pr)
                return -ENOMEM;
        r = blkid_probe_set_device(pr, fd, (blkid_loff_t) offset, (blkid_loff_t) size);
        if (r < 0) {
                blkid_free_probe(pr);
                return -EIO;
        }
        if (sector_size)
                blkid_probe_set_sectorsize(pr, sector_size);
        blkid_probe_enable_superblocks(pr, 1);
        blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE | BLKID_SUBLKS_USAGE | BLKID_SUBLKS_VERSION);
        blkid_probe_enable_partitions(pr, 0);
        /* 0: found; 1: nothing; -2: two filesystems claim it (ambiguous): unknown. */
        r = blkid_do_safeprobe(pr);
        if (r == 0 && blkid_probe_lookup_value(pr, "TYPE", &type, NULL) == 0 && type)
                snprintf(buf, buflen, "%s", type);
        blkid_free_probe(pr);
        return 0;
}

/* libblkid reads a device, not a Reader. A volume in one piece is that
 * piece of the image; one in several pieces is copied, its first
 * VOLUME_HEAD and last VOLUME_TAIL bytes (every superblock libblkid looks
 * for lies there), into a sparse memfd the volume's size. */
#define VOLUME_HEAD (UINT64_C(8) << 20)
#define VOLUME_TAIL (UINT64_C(1) << 20)

static int copy_through(const Reader *r, int out, uint64_t from, uint64_t to) {
        _cleanup_free_ uint8_t *buf = malloc(1 << 20);
        if (!buf)
                return -ENOMEM;
        while (from < to) {
                size_t n = to - from < (1 << 20) ? (size_t) (to - from) : (size_t) 1 << 20;
                int k = reader_read(r, from, buf, n);
                if (k == -ENODATA)
                        return 0; /* a truncated image: what is missing stays zeros */
                if (k < 0)
                        return k;
                if (pwrite(out, buf, n, (off_t) from) != (ssize_t) n)
                        return -errno ? -errno : -EIO;
                from += n;
        }
        return 0;
}

/* libblkid's NTFS probe also wants the first MFT records ("FILE" in $MFT's
 * and $Volume's) wherever the boot sector puts them: Windows puts $MFT
 * 3 GiB in, far past VOLUME_HEAD. Without them the volume has no type. */
#define NTFS_MFT_COPY (UINT64_C(64) << 10)

static int copy_ntfs_mft(const Reader *r, int out) {
        uint8_t b[512];
        if (reader_read(r, 0, b, sizeof(b)) < 0 || memcmp(b + 3, "NTFS    ", 8) != 0)
                return 0;
        uint64_t bps = get_le16(b + 11), spc = b[13];
        if (spc > 0x80)
                spc = spc >= 0xf4 ? UINT64_C(1) << (256 - spc) : 0;
        uint64_t cs = bps * spc, lcn = get_le64(b + 0x30);
        if (cs == 0 || lcn > r->size / cs)
                return 0;
        uint64_t at = lcn * cs;
        if (at >= r->size)
                return 0;
        uint64_t end = r->size - at < NTFS_MFT_COPY ? r->size : at + NTFS_MFT_COPY;
        return copy_through(r, out, at, end);
}

int layout_probe_reader_fstype(const Reader *r, unsigned sector_size, char *buf, size_t buflen) {
        _cleanup_close_ int mfd = -1;
        int k;

        buf[0] = 0;
        if (r->size == 0)
                return 0;
        if (!r->segs && r->fd >= 0)
                return layout_probe_fstype(r->fd, r->base, r->size, sector_size, buf, buflen);
        if (r->size > INT64_MAX)
                return -EFBIG;
        mfd = memfd_create("bmapscan-volume", MFD_CLOEXEC);
        if (mfd < 0)
                return -errno;
        if (ftruncate(mfd, (off_t) r->size) < 0)
                return -errno;
        uint64_t head = r->size < VOLUME_HEAD ? r->size : VOLUME_HEAD;
        uint64_t tail = r->size - head < VOLUME_TAIL ? r->size - head : VOLUME_TAIL;
        k = copy_through(r, mfd, 0, head);
        if (k >= 0)
                k = copy_through(r, mfd, r->size - tail, r->size);
        if (k >= 0)
                k = copy_ntfs_mft(r, mfd);
        if (k < 0)
                return k;
        return layout_probe_fstype(mfd, 0, r->size, sector_size, buf, buflen);
}

/* libblkid's answer to "is there a partition table at all?". Unlike
 * libfdisk, which takes any sector ending in 0x55AA for an MBR, it knows a
 * FAT boot sector from one. */
static void probe_pttype(int fd, uint64_t size, unsigned sector_size, char *buf, size_t buflen) {
        blkid_probe pr = blkid_new_probe();
        const char *type = NULL;

        buf[0] = 0;
        if (!pr)
                return;
        if (blkid_probe_set_device(pr, fd, 0, (blkid_loff_t) size) == 0) {
                blkid_probe_set_sectorsize(pr, sector_size);
                blkid_probe_enable_superblocks(pr, 0);
                blkid_probe_enable_partitions(pr, 1);
                if (blkid_do_safeprobe(pr) == 0 && blkid_probe_lookup_value(pr, "PTTYPE", &type, NULL) == 0 && type)
                        snprintf(buf, buflen, "%s", type);
        }
        blkid_free_probe(pr);
}

typedef struct AskLog {
        char text[256];
} AskLog;

/* libfdisk reports what it noticed (a damaged primary GPT, a size
 * mismatch) through its "ask" callback; keep it for the report instead of
 * letting it print. */
static int on_ask(struct fdisk_context *cxt, struct fdisk_ask *ask, void *data) {
        AskLog *log = data;
        int t = fdisk_ask_get_type(ask);
        if (t == FDISK_ASKTYPE_WARN || t == FDISK_ASKTYPE_WARNX || t == FDISK_ASKTYPE_INFO) {
                const char *m = fdisk_ask_print_get_mesg(ask);
                size_t used = strlen(log->text);
                if (m && used < sizeof(log->text) - 4)
                        snprintf(log->text + used, sizeof(log->text) - used, "%s%s", used ? "; " : "", m);
                return 0;
        }
        return -EINVAL; /* never answer questions: we only read */
}

typedef struct Table {
        struct fdisk_context *cxt;
        struct fdisk_table *tb;
} Table;

static void table_done(Table *t) {
        fdisk_unref_table(t->tb);
        fdisk_unref_context(t->cxt);
        *t = (Table) {};
}

static int open_table(int fd, const char *path, unsigned sector_size, AskLog *log, Table *ret) {
        Table t = {};
        int r;

        t.cxt = fdisk_new_context();
        if (!t.cxt)
                return -ENOMEM;
        fdisk_set_ask(t.cxt, on_ask, log);
        if (sector_size)
                fdisk_save_user_sector_size(t.cxt, sector_size, sector_size);
        /* libfdisk does not close a descriptor it was given. */
        r = fdisk_assign_device_by_fd(t.cxt, fd, path, 1);
        if (r < 0) {
                table_done(&t);
                return r;
        }
        if (fdisk_has_label(t.cxt)) {
                r = fdisk_get_partitions(t.cxt, &t.tb);
                if (r < 0) {
                        table_done(&t);
                        return r;
                }
        }
        *ret = t;
        return 0;
}

static const char *label_name(const Table *t) {
        struct fdisk_label *lb = fdisk_has_label(t->cxt) ? fdisk_get_label(t->cxt, NULL) : NULL;
        return lb ? fdisk_label_get_name(lb) : NULL;
}

/* A 4096-byte-sector GPT read with 512-byte sectors looks like a protective
 * MBR whose one 0xEE partition has no GPT behind it. */
static bool looks_like_4k_gpt(const Table *t) {
        const char *name = label_name(t);
        struct fdisk_partition *pa;
        size_t n = 0;
        bool pmbr = false;

        if (!name || strcmp(name, "dos") != 0 || !t->tb)
                return false;
        struct fdisk_iter *it = fdisk_new_iter(FDISK_ITER_FORWARD);
        if (!it)
                return false;
        while (fdisk_table_next_partition(t->tb, it, &pa) == 0) {
                struct fdisk_parttype *pt = fdisk_partition_get_type(pa);
                n++;
                if (pt && fdisk_parttype_get_code(pt) == 0xee)
                        pmbr = true;
        }
        fdisk_free_iter(it);
        return pmbr && n == 1;
}

static int add_part(Layout *l, const Partition *p) {
        Partition *np = realloc(l->parts, (l->n_parts + 1) * sizeof(Partition));
        if (!np)
                return -ENOMEM;
        l->parts = np;
        l->parts[l->n_parts++] = *p;
        return 0;
}

static void set_whole(Partition *p, const char *why) {
        if (!p->mapped_whole)
                snprintf(p->note, sizeof(p->note), "%s", why);
        p->mapped_whole = true;
}

/* Partitions whose byte ranges overlap cannot both be trusted: map both. A
 * logical partition must also lie inside its extended partition. */
static void mark_disputes(Layout *l) {
        for (size_t i = 0; i < l->n_parts; i++) {
                Partition *a = &l->parts[i];
                for (size_t j = i + 1; j < l->n_parts; j++) {
                        Partition *b = &l->parts[j];
                        if (a->start >= b->start + b->size || b->start >= a->start + a->size)
                                continue;
                        if (a->container != b->container) {
                                /* A logical partition inside its container is expected. */
                                Partition *c = a->container ? a : b, *x = a->container ? b : a;
                                if (x->start >= c->start && x->start + x->size <= c->start + c->size)
                                        continue;
                                set_whole(x, "reaches outside its extended partition: mapped in full");
                                continue;
                        }
                        if (a->container && b->container)
                                continue;
                        char why[96];
                        snprintf(why, sizeof(why), "overlaps partition %u: mapped in full", b->number);
                        set_whole(a, why);
                        snprintf(why, sizeof(why), "overlaps partition %u: mapped in full", a->number);
                        set_whole(b, why);
                }
        }
}

/* A hybrid MBR lists GPT partitions a second time. Where an MBR entry does
 * not match a GPT partition exactly, the two tables disagree on what the
 * space is: map the disputed space in full. */
static int check_hybrid_mbr(int fd, Layout *l) {
        uint8_t mbr[512];
        ssize_t k = pread_full(fd, mbr, sizeof(mbr), 0);

        if (k != (ssize_t) sizeof(mbr) || mbr[510] != 0x55 || mbr[511] != 0xaa)
                return 0;
        for (int i = 0; i < 4; i++) {
                const uint8_t *e = mbr + 446 + 16 * i;
                uint8_t type = e[4];
                uint64_t start = (uint64_t) get_le32(e + 8) * l->sector_size;
                uint64_t size = (uint64_t) get_le32(e + 12) * l->sector_size;
                bool matched = false;

                if (type == 0 || type == 0xee || size == 0)
                        continue;
                for (size_t j = 0; j < l->n_parts; j++)
                        if (l->parts[j].start == start && l->parts[j].size == size)
                                matched = true;
                if (matched)
                        continue;
                Partition p = {
                        .number = 0,
                        .start = start,
                        .size = size,
                        .mapped_whole = true,
                };
                snprintf(p.type, sizeof(p.type), "MBR 0x%02x", type);
                snprintf(p.note, sizeof(p.note), "hybrid MBR entry %d disagrees with the GPT: mapped in full", i + 1);
                for (size_t j = 0; j < l->n_parts; j++) {
                        Partition *x = &l->parts[j];
                        if (x->start < start + size && start < x->start + x->size)
                                set_whole(x, "the hybrid MBR disagrees with the GPT here: mapped in full");
                }
                int r = add_part(l, &p);
                if (r < 0)
                        return r;
        }
        return 0;
}

static void copy_lower(char *dst, size_t n, const char *src) {
        size_t i = 0;
        for (; src[i] && i + 1 < n; i++)
                dst[i] = (char) tolower((unsigned char) src[i]);
        dst[i] = 0;
}

static int read_partitions(const Table *t, Layout *l) {
        struct fdisk_partition *pa;
        struct fdisk_iter *it = fdisk_new_iter(FDISK_ITER_FORWARD);
        int r = 0;

        if (!it)
                return -ENOMEM;
        while (r >= 0 && fdisk_table_next_partition(t->tb, it, &pa) == 0) {
                Partition p = {};
                struct fdisk_parttype *pt = fdisk_partition_get_type(pa);

                if (!fdisk_partition_has_start(pa) || !fdisk_partition_has_size(pa))
                        continue;
                p.number = (unsigned) fdisk_partition_get_partno(pa) + 1;
                p.start = (uint64_t) fdisk_partition_get_start(pa) * l->sector_size;
                p.size = (uint64_t) fdisk_partition_get_size(pa) * l->sector_size;
                p.container = fdisk_partition_is_container(pa);
                if (pt && strcmp(l->label, "dos") == 0)
                        snprintf(p.type, sizeof(p.type), "0x%02x", fdisk_parttype_get_code(pt));
                else if (pt)
                        snprintf(p.type, sizeof(p.type), "%s",
                                 fdisk_parttype_get_name(pt) ? fdisk_parttype_get_name(pt) : fdisk_parttype_get_string(pt));
                if (strcmp(l->label, "gpt") == 0) {
                        if (pt && fdisk_parttype_get_string(pt))
                                copy_lower(p.type_guid, sizeof(p.type_guid), fdisk_parttype_get_string(pt));
                        if (fdisk_partition_get_uuid(pa))
                                copy_lower(p.uuid, sizeof(p.uuid), fdisk_partition_get_uuid(pa));
                        if (fdisk_partition_get_name(pa))
                                snprintf(p.name, sizeof(p.name), "%s", fdisk_partition_get_name(pa));
                }
                r = add_part(l, &p);
        }
        fdisk_free_iter(it);
        return r;
}

/* libfdisk and libblkid read a descriptor. A qcow2's virtual disk is
 * given to them as a sparse memfd of its size holding what they read to
 * find the partitions: the first TABLE_HEAD bytes (MBR, GPT and its usual
 * entries, a whole-disk filesystem's superblocks), the last TABLE_TAIL
 * (the backup GPT), the GPT entry arrays wherever the headers put them,
 * and the chain of EBRs. Anything else reads as zeros there: a partition
 * that could not be seen is no partition, and its bytes then lie in a gap
 * or a container, which are mapped: it can only map more. Each partition's
 * own type is probed through the image (layout_probe_reader_fstype). */
#define TABLE_HEAD (UINT64_C(8) << 20)
#define TABLE_TAIL (UINT64_C(1) << 20)
#define TABLE_MAX_ENTRIES_BYTES (UINT64_C(4) << 20)
#define TABLE_MAX_EBRS 1024

static int copy_sector_run(const Reader *whole, int out, uint64_t from, uint64_t len) {
        if (from >= whole->size)
                return 0;
        if (len > whole->size - from)
                len = whole->size - from;
        return copy_through(whole, out, from, from + len);
}

static int copy_gpt(const Reader *whole, int out) {
        uint64_t size = whole->size;
        static const unsigned sizes[] = { 512, 4096 };
        int r;

        for (size_t s = 0; s < ELEMENTSOF(sizes); s++) {
                uint64_t ss = sizes[s];
                uint64_t at[3] = { ss, size >= ss ? size - ss : 0, 0 };
                for (size_t i = 0; i < 3; i++) {
                        uint8_t h[92];
                        if (at[i] == 0 || reader_read(whole, at[i], h, sizeof(h)) < 0 || memcmp(h, "EFI PART", 8) != 0)
                                continue;
                        /* The other header, where this one says it is. */
                        uint64_t alt = get_le64(h + 32);
                        if (i == 0 && alt > 1 && alt < size / ss && alt * ss != at[1])
                                at[2] = alt * ss;
                        uint64_t lba = get_le64(h + 72), n = get_le32(h + 80), esz = get_le32(h + 84);
                        uint64_t bytes = n * esz;
                        if (lba == 0 || lba >= size / ss || bytes == 0)
                                continue;
                        if (bytes > TABLE_MAX_ENTRIES_BYTES)
                                bytes = TABLE_MAX_ENTRIES_BYTES;
                        r = copy_sector_run(whole, out, lba * ss, bytes);
                        if (r < 0)
                                return r;
                }
                r = copy_sector_run(whole, out, at[2], ss);
                if (r < 0)
                        return r;
        }
        return 0;
}

static bool is_extended_type(uint8_t t) {
        return t == 0x05 || t == 0x0f || t == 0x85;
}

static int copy_ebrs(const Reader *whole, int out) {
        uint8_t mbr[512];
        static const unsigned sizes[] = { 512, 4096 };
        int r;

        if (reader_read(whole, 0, mbr, sizeof(mbr)) < 0 || mbr[510] != 0x55 || mbr[511] != 0xaa)
                return 0;
        for (size_t s = 0; s < ELEMENTSOF(sizes); s++) {
                uint64_t ss = sizes[s];
                for (int i = 0; i < 4; i++) {
                        const uint8_t *e = mbr + 446 + 16 * i;
                        if (!is_extended_type(e[4]) || get_le32(e + 8) == 0)
                                continue;
                        uint64_t ext = (uint64_t) get_le32(e + 8) * ss, cur = ext;
                        for (unsigned k = 0; k < TABLE_MAX_EBRS && cur < whole->size; k++) {
                                uint8_t ebr[512];
                                r = copy_sector_run(whole, out, cur, ss);
                                if (r < 0)
                                        return r;
                                if (reader_read(whole, cur, ebr, sizeof(ebr)) < 0 || ebr[510] != 0x55 || ebr[511] != 0xaa)
                                        break;
                                /* libfdisk follows the first extended entry
                                 * with a size in any of the four slots, not
                                 * only the second. */
                                const uint8_t *next = NULL;
                                for (int j = 0; j < 4 && !next; j++) {
                                        const uint8_t *x = ebr + 446 + 16 * j;
                                        if (is_extended_type(x[4]) && get_le32(x + 12) != 0)
                                                next = x;
                                }
                                if (!next || get_le32(next + 8) == 0)
                                        break;
                                cur = ext + (uint64_t) get_le32(next + 8) * ss;
                        }
                }
        }
        return 0;
}

static int table_memfd(const Image *img, int *ret) {
        _cleanup_close_ int mfd = -1;
        Reader whole = reader_from_image(img, 0, img->size);
        int r;

        if (img->size > INT64_MAX)
                return -EFBIG;
        mfd = memfd_create("bmapscan-table", MFD_CLOEXEC);
        if (mfd < 0)
                return -errno;
        if (ftruncate(mfd, (off_t) img->size) < 0)
                return -errno;
        uint64_t head = img->size < TABLE_HEAD ? img->size : TABLE_HEAD;
        uint64_t tail = img->size - head < TABLE_TAIL ? img->size - head : TABLE_TAIL;
        r = copy_through(&whole, mfd, 0, head);
        if (r >= 0)
                r = copy_through(&whole, mfd, img->size - tail, img->size);
        if (r >= 0)
                r = copy_gpt(&whole, mfd);
        if (r >= 0)
                r = copy_ebrs(&whole, mfd);
        if (r >= 0)
                r = copy_ntfs_mft(&whole, mfd);
        if (r < 0)
                return r;
        *ret = TAKE_FD(mfd);
        return 0;
}

static int read_layout(int fd, const Image *img, const char *path, uint64_t image_size, Layout *ret, Diag *d);

int layout_read(int fd, const char *path, uint64_t image_size, Layout *ret, Diag *d) {
        return read_layout(fd, NULL, path, image_size, ret, d);
}

int layout_read_image(const Image *img, const char *path, Layout *ret, Diag *d) {
        _cleanup_close_ int mfd = -1;
        if (!img->qcow2)
                return read_layout(img->fd, NULL, path, img->size, ret, d);
        int r = table_memfd(img, &mfd);
        if (r < 0)
                return diag_set(d, r, "%s: cannot read the partition table: %s", path, strerror(-r));
        return read_layout(mfd, img, path, img->size, ret, d);
}

static int read_layout(int fd, const Image *img, const char *path, uint64_t image_size, Layout *ret, Diag *d) {
        _cleanup_(layout_done) Layout l = { .image_size = image_size, .sector_size = 512 };
        Table t = {};
        AskLog log = {};
        char disk_fs[32];
        int r;

        /* Less than one sector holds no table and no filesystem, and
         * libfdisk refuses a device that small (EINVAL): one unknown region,
         * mapped in full, as 'create' would map it. */
        if (image_size < 512) {
                Partition whole = { .start = 0, .size = image_size, .mapped_whole = true };
                snprintf(l.label, sizeof(l.label), "none");
                snprintf(whole.type, sizeof(whole.type), "whole disk");
                snprintf(whole.note, sizeof(whole.note), "smaller than one 512-byte sector: mapped in full");
                r = add_part(&l, &whole);
                if (r < 0)
                        return r;
                *ret = l;
                l = (Layout) {};
                return 0;
        }
        r = open_table(fd, path, 0, &log, &t);
        if (r < 0)
                return diag_set(d, r, "%s: cannot read the partition table: %s", path, strerror(-r));
        if (looks_like_4k_gpt(&t)) {
                Table t4 = {};
                AskLog log4 = {};
                if (open_table(fd, path, 4096, &log4, &t4) >= 0 && label_name(&t4) &&
                    strcmp(label_name(&t4), "gpt") == 0) {
                        table_done(&t);
                        t = t4;
                        log = log4;
                        l.sector_size = 4096;
                } else
                        table_done(&t4);
        }

        /* A filesystem that starts at byte 0 (a bare filesystem, or an ISO
         * hybrid that also carries a partition table). */
        layout_probe_fstype(fd, 0, image_size, l.sector_size, disk_fs, sizeof(disk_fs));

        const char *name = label_name(&t);
        if (name && strcmp(name, "dos") == 0 && disk_fs[0]) {
                /* A filesystem written straight onto the disk (a FAT floppy)
                 * ends its boot sector in 0x55AA too: believe the MBR only if
                 * libblkid does. */
                char pttype[32];
                probe_pttype(fd, image_size, l.sector_size, pttype, sizeof(pttype));
                /* libblkid before 2.39 tells FAT from an MBR, not exFAT: an
                 * exFAT boot sector with no partition in its entries is the
                 * filesystem. */
                if (strcmp(pttype, "dos") != 0 ||
                    (strcmp(disk_fs, "exfat") == 0 && fdisk_table_get_nents(t.tb) == 0))
                        name = NULL;
        }
        if (!name || !t.tb) {
                snprintf(l.label, sizeof(l.label), "none");
                Partition whole = { .number = 0, .start = 0, .size = image_size };
                snprintf(whole.fstype, sizeof(whole.fstype), "%s", disk_fs);
                snprintf(whole.type, sizeof(whole.type), "whole disk");
                r = add_part(&l, &whole);
                table_done(&t);
                if (r < 0)
                        return r;
                *ret = l;
                l = (Layout) {};
                return 0;
        }
        snprintf(l.label, sizeof(l.label), "%s", name);
        snprintf(l.note, sizeof(l.note), "%s", log.text);
        r = read_partitions(&t, &l);
        table_done(&t);
        if (r < 0)
                return diag_set(d, r, "%s: cannot list the partitions: %s", path, strerror(-r));

        mark_disputes(&l);
        if (strcmp(l.label, "gpt") == 0) {
                r = check_hybrid_mbr(fd, &l);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < l.n_parts; i++) {
                Partition *p = &l.parts[i];
                if (p->container || p->mapped_whole)
                        continue;
                if (p->start >= image_size) {
                        set_whole(p, "starts past the end of the image");
                        continue;
                }
                uint64_t len = p->size;
                if (len > image_size - p->start) {
                        len = image_size - p->start;
                        snprintf(p->note, sizeof(p->note), "ends %llu bytes past the end of the image",
                                 (unsigned long long) (p->start + p->size - image_size));
                }
                if (disk_fs[0]) {
                        /* The partitions live inside a filesystem that spans
                         * the disk (an ISO hybrid): its files may be the very
                         * bytes of a partition, so no part of it is free. */
                        char why[96];
                        snprintf(why, sizeof(why), "inside the %s filesystem that spans the disk: mapped in full",
                                 disk_fs);
                        set_whole(p, why);
                }
                if (img) {
                        Reader rd = reader_from_image(img, p->start, len);
                        r = layout_probe_reader_fstype(&rd, l.sector_size, p->fstype, sizeof(p->fstype));
                        if (r == -ENOMEM)
                                return r;
                } else
                        layout_probe_fstype(fd, p->start, len, l.sector_size, p->fstype, sizeof(p->fstype));
        }
        *ret = l;
        l = (Layout) {};
        return 0;
}
