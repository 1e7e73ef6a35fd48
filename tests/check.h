/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A few assertions for the C unit tests: each failure prints where and what
 * differed, the test goes on, and check_exit() turns the count into the exit
 * status meson reads. */
#pragma once

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int check_failures;
static int check_count;

#define CHECK(cond, ...)                                                                     \
        do {                                                                                 \
                check_count++;                                                               \
                if (!(cond)) {                                                               \
                        check_failures++;                                                    \
                        fprintf(stderr, "%s:%d: FAIL: %s: ", __FILE__, __LINE__, #cond);     \
                        fprintf(stderr, __VA_ARGS__);                                        \
                        fputc('\n', stderr);                                                 \
                }                                                                            \
        } while (0)

#define CHECK_U64(a, b)                                                                              \
        do {                                                                                         \
                uint64_t _a = (a), _b = (b);                                                         \
                CHECK(_a == _b, "%s = %" PRIu64 ", expected %" PRIu64, #a, _a, _b);                  \
        } while (0)

#define CHECK_STR_CONTAINS(hay, needle)                                                              \
        do {                                                                                         \
                const char *_h = (hay), *_n = (needle);                                              \
                CHECK(_h && strstr(_h, _n), "'%s' does not contain '%s'", _h ? _h : "(null)", _n);  \
        } while (0)

static inline int check_exit(const char *name) {
        if (check_failures) {
                fprintf(stderr, "%s: %d of %d checks failed\n", name, check_failures, check_count);
                return 1;
        }
        printf("%s: all %d checks passed\n", name, check_count);
        return 0;
}
