/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libFuzzer: arbitrary bytes as a disk image, through the layout reader
 * (libfdisk, libblkid, our hybrid-MBR and overlap checks) and every probe
 * a partition's type selects. It must never crash, hang or leak. */
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "scan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        Scan s = {};
        Diag d = {};

        if (size == 0 || size > (8u << 20))
                return 0;
        /* libfdisk and libblkid want a descriptor: give them one in memory. */
        int fd = memfd_create("fuzz-image", MFD_CLOEXEC);
        if (fd < 0)
                return 0;
        if (write_full(fd, data, size) == 0 && scan_image(fd, "fuzz", size, NULL, &s, &d) == 0) {
                /* What scan maps always lies inside the image. */
                if (s.mapped.n > 0 && s.mapped.v[s.mapped.n - 1].end > size)
                        __builtin_trap();
                scan_done(&s);
        }
        close(fd);
        return 0;
}
