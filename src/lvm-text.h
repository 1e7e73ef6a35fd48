/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* LVM2's text configuration format, as its metadata areas hold it:
 * `name { ... }` sections, `key = value` with quoted strings, integers and
 * `[ ... ]` lists, `#` comments. Parsed into a tree of nodes kept in one
 * array, with bounds on the text's length, the nesting depth, the number
 * of nodes and the length of a string: the text comes from the disk. */

#include <stddef.h>
#include <stdint.h>

#define LVM_TEXT_MAX (16u << 20)    /* bytes; real metadata is a few KiB to a few hundred */
#define LVM_TEXT_MAX_DEPTH 16       /* the VG format needs 4: vg / logical_volumes / lv / segment */
#define LVM_TEXT_MAX_NODES (1u << 20)
#define LVM_TEXT_MAX_STRING 4096

typedef enum LvmNodeType {
        LVM_NODE_SECTION,
        LVM_NODE_STRING,
        LVM_NODE_NUMBER,
        LVM_NODE_LIST,
} LvmNodeType;

/* Indices into LvmText.nodes; 0 is the root section, and no child. */
typedef struct LvmNode {
        LvmNodeType type;
        const char *key;        /* NUL-terminated, in LvmText.buf; "" for list items */
        const char *str;        /* LVM_NODE_STRING, unescaped */
        int64_t num;            /* LVM_NODE_NUMBER */
        uint32_t child;         /* first child of a section or list, 0 if none */
        uint32_t next;          /* next sibling, 0 if none */
} LvmNode;

typedef struct LvmText {
        char *buf;              /* a copy of the text; keys and strings point into it */
        LvmNode *nodes;
        size_t n_nodes, cap;
        /* On failure: where and what, for the report. */
        size_t error_line;
        char error[96];
} LvmText;

void lvm_text_done(LvmText *t);

/* Parses len bytes of text (NULs at the end are ignored). Returns 0, or
 * -EINVAL (syntax, with t->error and error_line), -E2BIG (a bound), -ENOMEM.
 * On failure t must still be freed with lvm_text_done. */
int lvm_text_parse(const char *text, size_t len, LvmText *t);

/* The child of section (or list) idx called key, 0 if none. */
uint32_t lvm_text_find(const LvmText *t, uint32_t idx, const char *key);
/* The string or number value of key in section idx; -ENOENT, -EINVAL (wrong type). */
int lvm_text_string(const LvmText *t, uint32_t idx, const char *key, const char **ret);
int lvm_text_u64(const LvmText *t, uint32_t idx, const char *key, uint64_t *ret);
