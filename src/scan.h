/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "extents.h"
#include "layout.h"
#include "util.h"

/* What scan decided for one partition. */
typedef struct ScanPart {
        const Partition *part;
        const char *probe;      /* the probe's name, NULL when none claimed it */
        bool probed;            /* the probe succeeded: its free space is unmapped */
        uint64_t used;          /* bytes mapped inside the partition (within the image) */
        uint64_t fs_size;
        char how[640];          /* "ext4: block bitmap", "LVM2_member: fully mapped (not a filesystem)" */
        bool pv;                /* an LVM2 PV read as a container: its LVs are volumes below */
} ScanPart;

/* A volume inside a container partition (an LVM2 LV on a PV). */
typedef struct ScanVolume {
        size_t part;            /* its container's index in layout.parts */
        char name[264];         /* "vg/lv" */
        uint64_t size;          /* the LV's bytes, on every PV */
        char fstype[32];        /* libblkid TYPE, "" if none or not looked at */
        const char *probe;
        bool probed;            /* its probe succeeded */
        uint64_t fs_size;
        uint64_t used;          /* bytes mapped of its extents in this container */
        Extents extents;        /* image bytes of its extents in this container */
        char how[512];
} ScanVolume;

/* A region mapped whole for a reason the probes cannot see: the user's
 * --map, a dm-verity or AVB finding. Listed in the report. */
typedef struct ScanRegion {
        uint64_t start, end;    /* bytes of the image */
        char why[224];
} ScanRegion;

/* A region the user asks to map whole (scan/info/sparse --map). */
typedef enum MapKind {
        MAP_RANGE,              /* START:LENGTH bytes */
        MAP_PART,               /* part:N */
        MAP_LABEL,              /* label:NAME, a GPT partition name */
} MapKind;

typedef struct MapRequest {
        MapKind kind;
        uint64_t start, length; /* MAP_RANGE */
        unsigned number;        /* MAP_PART */
        const char *label;      /* MAP_LABEL: points into arg */
        const char *arg;        /* as given, for messages */
} MapRequest;

typedef struct ScanOptions {
        MapRequest *maps;
        size_t n_maps;
} ScanOptions;

void scan_options_done(ScanOptions *o);
/* Parses arg as map_request_parse does and appends it. -EINVAL, -ENOMEM. */
int scan_options_add_map(ScanOptions *o, const char *arg);

/* Parses one --map value: START:LENGTH (sizes with K/M/G/T suffixes),
 * part:N or label:NAME. -EINVAL when it is none of them; arg must outlive
 * the request. */
int map_request_parse(const char *arg, MapRequest *ret);

typedef struct Scan {
        Layout layout;
        ScanPart *parts;        /* parallel to layout.parts */
        Extents mapped;         /* bytes of the image that must be copied */
        uint64_t outside;       /* bytes mapped outside every partition: tables, gaps, tail */
        ScanRegion *regions;    /* mapped whole by --map, dm-verity or AVB, in the order found */
        size_t n_regions;
        ScanVolume *volumes;    /* by container, in the container's order */
        size_t n_volumes;
} Scan;

void scan_done(Scan *s);

/* Reads the layout of the image open as fd, asks each partition's probe
 * which bytes it uses, and returns the bytes to map: the whole image less
 * the free space of every filesystem that could be read, less nothing
 * that a dm-verity tree or an AVB footer protects, nor any non-zero byte
 * past a filesystem's end, nor what o->maps names. Returns -EDOM (with d
 * saying why) when a --map request does not fit the image: a usage error. */
int scan_image(int fd, const char *path, uint64_t image_size, const ScanOptions *o, Scan *ret, Diag *d);
/* The same for an image already open (image.h): a raw file or device, or
 * a qcow2's virtual disk, scanned exactly as the raw image it stands for.
 * The entry point for every command that scans what it has opened. */
struct Image;
int scan_disk_image(const struct Image *img, const char *path, const ScanOptions *o, Scan *ret, Diag *d);
