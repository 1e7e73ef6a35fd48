/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A bounded recursive-descent parser for LVM2's text metadata. Keys and
 * unescaped strings are copied into one arena no larger than the text (each
 * token gives up at least one delimiter for its NUL), so nothing the text
 * says can make it allocate more than a fixed multiple of its length. */
#include "lvm-text.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

typedef struct Parser {
        const char *p, *end;
        size_t line;
        char *out;              /* arena write position */
        const char *out_end;
        LvmText *t;
} Parser;

void lvm_text_done(LvmText *t) {
        if (!t)
                return;
        free(t->buf);
        free(t->nodes);
        *t = (LvmText) {};
}

static int fail(Parser *ps, int err, const char *fmt, ...) _printf_(3, 4);
static int fail(Parser *ps, int err, const char *fmt, ...) {
        va_list ap;

        if (ps->t->error[0])
                return err;
        ps->t->error_line = ps->line;
        va_start(ap, fmt);
        vsnprintf(ps->t->error, sizeof(ps->t->error), fmt, ap);
        va_end(ap);
        return err;
}

static void skip_space(Parser *ps) {
        while (ps->p < ps->end) {
                char c = *ps->p;
                if (c == '\n') {
                        ps->line++;
                        ps->p++;
                } else if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v')
                        ps->p++;
                else if (c == '#') {
                        while (ps->p < ps->end && *ps->p != '\n')
                                ps->p++;
                } else
                        break;
        }
}

static int new_node(Parser *ps, LvmNodeType type, const char *key, uint32_t *ret) {
        LvmText *t = ps->t;

        if (t->n_nodes >= LVM_TEXT_MAX_NODES)
                return fail(ps, -E2BIG, "more than %u items", LVM_TEXT_MAX_NODES);
        if (t->n_nodes == t->cap) {
                size_t cap = t->cap ? t->cap * 2 : 256;
                LvmNode *n = realloc(t->nodes, cap * sizeof(LvmNode));
                if (!n)
                        return -ENOMEM;
                t->nodes = n;
                t->cap = cap;
        }
        t->nodes[t->n_nodes] = (LvmNode) { .type = type, .key = key };
        *ret = (uint32_t) t->n_nodes++;
        return 0;
}

static bool is_key_char(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
               c == '+' || c == '-';
}

static int read_key(Parser *ps, const char **ret) {
        const char *s = ps->p;

        while (ps->p < ps->end && is_key_char(*ps->p))
                ps->p++;
        size_t n = (size_t) (ps->p - s);
        if (n == 0)
                return fail(ps, -EINVAL, "a name expected");
        if (n > LVM_TEXT_MAX_STRING)
                return fail(ps, -E2BIG, "a name longer than %u bytes", LVM_TEXT_MAX_STRING);
        if ((size_t) (ps->out_end - ps->out) < n + 1)
                return fail(ps, -EINVAL, "internal: arena full");
        memcpy(ps->out, s, n);
        ps->out[n] = 0;
        *ret = ps->out;
        ps->out += n + 1;
        return 0;
}

static int read_string(Parser *ps, const char **ret) {
        char *o = ps->out;
        size_t n = 0;

        ps->p++; /* the opening quote */
        for (;;) {
                if (ps->p >= ps->end)
                        return fail(ps, -EINVAL, "a string without its closing quote");
                char c = *ps->p++;
                if (c == '"')
                        break;
                if (c == '\\') {
                        if (ps->p >= ps->end)
                                return fail(ps, -EINVAL, "a string without its closing quote");
                        c = *ps->p++;
                }
                if (c == '\n')
                        ps->line++;
                if (c == 0)
                        return fail(ps, -EINVAL, "a NUL byte in a string");
                if (++n > LVM_TEXT_MAX_STRING)
                        return fail(ps, -E2BIG, "a string longer than %u bytes", LVM_TEXT_MAX_STRING);
                if (o >= ps->out_end - 1)
                        return fail(ps, -EINVAL, "internal: arena full");
                *o++ = c;
        }
        *o++ = 0;
        *ret = ps->out;
        ps->out = o;
        return 0;
}

/* One value: a string, an integer, or (at depth < max) a list of values. */
static int parse_value(Parser *ps, const char *key, unsigned depth, uint32_t *ret) {
        uint32_t idx;
        int r;

        skip_space(ps);
        if (ps->p >= ps->end)
                return fail(ps, -EINVAL, "a value expected");
        if (*ps->p == '"') {
                const char *s = NULL;
                r = read_string(ps, &s);
                if (r >= 0)
                        r = new_node(ps, LVM_NODE_STRING, key, &idx);
                if (r < 0)
                        return r;
                ps->t->nodes[idx].str = s;
                *ret = idx;
                return 0;
        }
        if (*ps->p == '[') {
                uint32_t last = 0;
                if (depth >= LVM_TEXT_MAX_DEPTH)
                        return fail(ps, -E2BIG, "nested deeper than %u levels", LVM_TEXT_MAX_DEPTH);
                r = new_node(ps, LVM_NODE_LIST, key, &idx);
                if (r < 0)
                        return r;
                ps->p++;
                skip_space(ps);
                if (ps->p < ps->end && *ps->p == ']') {
                        ps->p++;
                        *ret = idx;
                        return 0;
                }
                for (;;) {
                        uint32_t item;
                        r = parse_value(ps, "", depth + 1, &item);
                        if (r < 0)
                                return r;
                        if (last)
                                ps->t->nodes[last].next = item;
                        else
                                ps->t->nodes[idx].child = item;
                        last = item;
                        skip_space(ps);
                        if (ps->p >= ps->end)
                                return fail(ps, -EINVAL, "a list without its ']'");
                        if (*ps->p == ']') {
                                ps->p++;
                                break;
                        }
                        if (*ps->p != ',')
                                return fail(ps, -EINVAL, "',' or ']' expected in a list");
                        ps->p++;
                }
                *ret = idx;
                return 0;
        }
        /* An integer; LVM writes no others into VG metadata. */
        bool neg = false;
        uint64_t v = 0;
        if (*ps->p == '-') {
                neg = true;
                ps->p++;
        }
        if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')
                return fail(ps, -EINVAL, "a value expected");
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') {
                uint64_t d = (uint64_t) (*ps->p++ - '0');
                /* Checked before it wraps: a wrapped value is another,
                 * plausible, extent number. */
                if (v > (UINT64_MAX - d) / 10)
                        return fail(ps, -EINVAL, "a number too large");
                v = v * 10 + d;
        }
        /* A fraction (some lvm.conf settings): kept as its integer part. */
        if (ps->p < ps->end && *ps->p == '.') {
                ps->p++;
                while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
                        ps->p++;
        }
        if (v > INT64_MAX)
                return fail(ps, -EINVAL, "a number too large");
        r = new_node(ps, LVM_NODE_NUMBER, key, &idx);
        if (r < 0)
                return r;
        ps->t->nodes[idx].num = neg ? -(int64_t) v : (int64_t) v;
        *ret = idx;
        return 0;
}

/* The items of a section up to its '}' (or the end of the text at depth 0). */
static int parse_items(Parser *ps, uint32_t section, unsigned depth) {
        uint32_t last = 0;
        int r;

        for (;;) {
                const char *key = NULL;
                uint32_t idx = 0;

                skip_space(ps);
                if (ps->p >= ps->end) {
                        if (depth > 0)
                                return fail(ps, -EINVAL, "a section without its '}'");
                        return 0;
                }
                if (*ps->p == '}') {
                        if (depth == 0)
                                return fail(ps, -EINVAL, "a '}' with no section open");
                        ps->p++;
                        return 0;
                }
                r = read_key(ps, &key);
                if (r < 0)
                        return r;
                skip_space(ps);
                if (ps->p >= ps->end)
                        return fail(ps, -EINVAL, "'=' or '{' expected after \"%.40s\"", key);
                if (*ps->p == '{') {
                        if (depth + 1 >= LVM_TEXT_MAX_DEPTH)
                                return fail(ps, -E2BIG, "nested deeper than %u levels", LVM_TEXT_MAX_DEPTH);
                        ps->p++;
                        r = new_node(ps, LVM_NODE_SECTION, key, &idx);
                        if (r >= 0)
                                r = parse_items(ps, idx, depth + 1);
                } else if (*ps->p == '=') {
                        ps->p++;
                        r = parse_value(ps, key, depth + 1, &idx);
                } else
                        r = fail(ps, -EINVAL, "'=' or '{' expected after \"%.40s\"", key);
                if (r < 0)
                        return r;
                if (last)
                        ps->t->nodes[last].next = idx;
                else
                        ps->t->nodes[section].child = idx;
                last = idx;
        }
}

int lvm_text_parse(const char *text, size_t len, LvmText *t) {
        uint32_t root;
        int r;

        *t = (LvmText) {};
        while (len > 0 && text[len - 1] == 0)
                len--;
        if (len > LVM_TEXT_MAX)
                return -E2BIG;
        t->buf = malloc(len + 2);
        if (!t->buf)
                return -ENOMEM;
        Parser ps = { .p = text, .end = text + len, .line = 1, .out = t->buf, .out_end = t->buf + len + 2, .t = t };
        r = new_node(&ps, LVM_NODE_SECTION, "", &root);
        if (r < 0)
                return r;
        return parse_items(&ps, root, 0);
}

uint32_t lvm_text_find(const LvmText *t, uint32_t idx, const char *key) {
        if (idx >= t->n_nodes)
                return 0;
        for (uint32_t c = t->nodes[idx].child; c && c < t->n_nodes; c = t->nodes[c].next)
                if (strcmp(t->nodes[c].key, key) == 0)
                        return c;
        return 0;
}

int lvm_text_string(const LvmText *t, uint32_t idx, const char *key, const char **ret) {
        uint32_t c = lvm_text_find(t, idx, key);
        if (!c)
                return -ENOENT;
        if (t->nodes[c].type != LVM_NODE_STRING)
                return -EINVAL;
        *ret = t->nodes[c].str;
        return 0;
}

int lvm_text_u64(const LvmText *t, uint32_t idx, const char *key, uint64_t *ret) {
        uint32_t c = lvm_text_find(t, idx, key);
        if (!c)
                return -ENOENT;
        if (t->nodes[c].type != LVM_NODE_NUMBER || t->nodes[c].num < 0)
                return -EINVAL;
        *ret = (uint64_t) t->nodes[c].num;
        return 0;
}
