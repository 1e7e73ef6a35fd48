/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <libxml/xmlreader.h>
#include <string.h>
#include <strings.h>

#include "bmap.h"
#include "fetch.h"
#include "hash.h"

/* The largest bmap we read: a 1 TiB image with 4 KiB blocks in ranges of
 * three blocks would need about this much. */
/* No element's text is longer than a checksum and some whitespace. */
#define TEXT_MAX 4096

size_t checksum_size(ChecksumType t) {
        return t == CHECKSUM_SHA1 ? 20 : t == CHECKSUM_SHA256 ? 32 : 0;
}

const char *checksum_name(ChecksumType t) {
        return t == CHECKSUM_SHA1 ? "sha1" : t == CHECKSUM_SHA256 ? "sha256" : "none";
}

void bmap_done(Bmap *b) {
        if (!b)
                return;
        free(b->ranges);
        *b = (Bmap) {};
}

int bmap_mapped_blocks(const Bmap *b, Extents *ret) {
        extents_clear(ret);
        for (size_t i = 0; i < b->n_ranges; i++) {
                int r = extents_add(ret, b->ranges[i].blocks.start, b->ranges[i].blocks.end);
                if (r < 0)
                        return r;
        }
        return 0;
}

int bmap_unmapped_bytes(const Bmap *b, Extents *ret) {
        _cleanup_extents_ Extents mapped = EXTENTS_INIT;
        int r;

        for (size_t i = 0; i < b->n_ranges; i++) {
                Extent x = bmap_range_bytes(b, i);
                r = extents_add(&mapped, x.start, x.end);
                if (r < 0)
                        return r;
        }
        return extents_complement(ret, &mapped, 0, b->image_size);
}

/* The scalar elements, in the order the format documents them. */
enum {
        EL_IMAGE_SIZE,
        EL_BLOCK_SIZE,
        EL_BLOCKS_COUNT,
        EL_MAPPED_COUNT,
        EL_CHECKSUM_TYPE,
        EL_FILE_SHA1,
        EL_FILE_CHECKSUM,
        EL_BLOCK_MAP,
        _EL_MAX,
};

static const char *const element_names[_EL_MAX] = {
        [EL_IMAGE_SIZE] = "ImageSize",
        [EL_BLOCK_SIZE] = "BlockSize",
        [EL_BLOCKS_COUNT] = "BlocksCount",
        [EL_MAPPED_COUNT] = "MappedBlocksCount",
        [EL_CHECKSUM_TYPE] = "ChecksumType",
        [EL_FILE_SHA1] = "BmapFileSHA1",
        [EL_FILE_CHECKSUM] = "BmapFileChecksum",
        [EL_BLOCK_MAP] = "BlockMap",
};

typedef struct RangeText {
        char *hex; /* the checksum attribute, if any */
} RangeText;

typedef struct Parser {
        const char *name;
        Diag *diag;
        xmlTextReaderPtr reader;
        char xml_error[300];
        int xml_error_line;

        bool seen[_EL_MAX];
        unsigned line[_EL_MAX];
        char text[_EL_MAX][TEXT_MAX + 1];

        Bmap b;
        char **range_hex; /* parallel to b.ranges until checksums are decoded */
        size_t n_hex, cap;
        bool failed; /* a message of ours is in diag */
} Parser;

static void parser_done(Parser *p) {
        for (size_t i = 0; i < p->n_hex; i++)
                free(p->range_hex[i]);
        free(p->range_hex);
        bmap_done(&p->b);
        if (p->reader)
                xmlFreeTextReader(p->reader);
}

static void on_xml_error(void *userdata, xmlErrorPtr e) {
        Parser *p = userdata;
        if (p->xml_error[0] || !e || e->level < XML_ERR_ERROR)
                return;
        snprintf(p->xml_error, sizeof(p->xml_error), "%s", e->message ? e->message : "parse error");
        /* libxml2's messages end in a newline. */
        p->xml_error[strcspn(p->xml_error, "\n")] = 0;
        p->xml_error_line = e->line;
}

/* The line of the node the reader stands on. The parser's own line number
 * is where it has read ahead to, which can be several lines further. */
static int line_of(Parser *p) {
        xmlNodePtr node = xmlTextReaderCurrentNode(p->reader);
        long line = node ? xmlGetLineNo(node) : -1;
        return line > 0 && line < INT32_MAX ? (int) line : xmlTextReaderGetParserLineNumber(p->reader);
}

#define FAIL(p, line, ...) fail_at(p, line, __VA_ARGS__)
_printf_(3, 4) static int fail_at(Parser *p, int line, const char *fmt, ...) {
        char what[600];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(what, sizeof(what), fmt, ap);
        va_end(ap);
        p->failed = true;
        if (line > 0)
                return diag_set(p->diag, -EBADMSG, "%s:%d: %s", p->name, line, what);
        return diag_set(p->diag, -EBADMSG, "%s: %s", p->name, what);
}

/* Collects the text of the current element, which must hold no elements. */
static int read_text(Parser *p, const char *element, char *buf, size_t bufsize) {
        int depth = xmlTextReaderDepth(p->reader);
        size_t len = 0;

        buf[0] = 0;
        if (xmlTextReaderIsEmptyElement(p->reader))
                return 0;
        for (;;) {
                int r = xmlTextReaderRead(p->reader);
                if (r != 1)
                        return r < 0 ? -EBADMSG : FAIL(p, line_of(p), "the file ends inside <%s>", element);
                int type = xmlTextReaderNodeType(p->reader);
                if (type == XML_READER_TYPE_END_ELEMENT && xmlTextReaderDepth(p->reader) == depth)
                        return 0;
                if (type == XML_READER_TYPE_ELEMENT)
                        return FAIL(p, line_of(p), "<%s> holds an element <%s>; it should hold only text", element,
                                    (const char *) xmlTextReaderConstName(p->reader));
                if (type == XML_READER_TYPE_TEXT || type == XML_READER_TYPE_CDATA ||
                    type == XML_READER_TYPE_WHITESPACE || type == XML_READER_TYPE_SIGNIFICANT_WHITESPACE) {
                        const char *v = (const char *) xmlTextReaderConstValue(p->reader);
                        size_t n = v ? strlen(v) : 0;
                        if (len + n > bufsize - 1)
                                return FAIL(p, line_of(p), "the text of <%s> is absurdly long", element);
                        memcpy(buf + len, v, n);
                        len += n;
                        buf[len] = 0;
                }
        }
}

static int add_range(Parser *p, int line) {
        char text[TEXT_MAX + 1];
        _cleanup_free_ char *chksum = NULL, *sha1 = NULL;
        uint64_t first, last;
        int r;

        chksum = (char *) xmlTextReaderGetAttribute(p->reader, (const xmlChar *) "chksum");
        sha1 = (char *) xmlTextReaderGetAttribute(p->reader, (const xmlChar *) "sha1");
        r = read_text(p, "Range", text, sizeof(text));
        if (r < 0)
                return r;

        char *dash = strchr(text, '-');
        if (dash) {
                *dash = 0;
                r = parse_u64(text, strlen(text), &first);
                if (r >= 0)
                        r = parse_u64(dash + 1, strlen(dash + 1), &last);
                *dash = '-';
        } else {
                r = parse_u64(text, strlen(text), &first);
                last = first;
        }
        if (r == -ERANGE || (r >= 0 && last == UINT64_MAX))
                return FAIL(p, line, "range '%s' has a block number too large to be real", text);
        if (r < 0)
                return FAIL(p, line, "range '%s' is not a block number or FIRST-LAST", text);
        if (first > last)
                return FAIL(p, line, "range %llu-%llu is reversed (its first block is after its last)",
                            (unsigned long long) first, (unsigned long long) last);
        if (p->b.n_ranges > 0) {
                const BmapRange *prev = &p->b.ranges[p->b.n_ranges - 1];
                unsigned long long pf = prev->blocks.start, pl = prev->blocks.end - 1;
                if (first < prev->blocks.start)
                        return FAIL(p, line, "range %llu-%llu is out of order: it comes after range %llu-%llu",
                                    (unsigned long long) first, (unsigned long long) last, pf, pl);
                if (first < prev->blocks.end)
                        return FAIL(p, line, "range %llu-%llu overlaps the previous range %llu-%llu",
                                    (unsigned long long) first, (unsigned long long) last, pf, pl);
        }
        /* Which attribute carries the checksum depends on the format version. */
        bool v14 = p->b.version_major >= 2 || p->b.version_minor >= 4;
        const char *want = v14 ? "chksum" : "sha1";
        char *hex = v14 ? chksum : sha1;
        if ((v14 ? sha1 : chksum) != NULL)
                return FAIL(p, line, "range %llu-%llu has a '%s' attribute, but format %u.%u names range checksums '%s'",
                            (unsigned long long) first, (unsigned long long) last, v14 ? "sha1" : "chksum",
                            p->b.version_major, p->b.version_minor, want);

        if (p->b.n_ranges == p->cap) {
                size_t cap = p->cap ? p->cap * 2 : 256;
                BmapRange *nr = realloc(p->b.ranges, cap * sizeof(BmapRange));
                if (!nr)
                        return -ENOMEM;
                p->b.ranges = nr;
                char **nh = realloc(p->range_hex, cap * sizeof(char *));
                if (!nh)
                        return -ENOMEM;
                p->range_hex = nh;
                p->cap = cap;
        }
        p->b.ranges[p->b.n_ranges] = (BmapRange) {
                .blocks = { first, last + 1 },
                .line = (unsigned) line,
        };
        p->range_hex[p->b.n_ranges] = NULL;
        p->n_hex = p->b.n_ranges + 1;
        if (hex) {
                /* Trimmed copy; attribute values are short, a long one is refused below. */
                size_t s = strspn(hex, " \t\r\n"), e = strlen(hex);
                while (e > s && strchr(" \t\r\n", hex[e - 1]))
                        e--;
                p->range_hex[p->b.n_ranges] = strndup(hex + s, e - s);
                if (!p->range_hex[p->b.n_ranges])
                        return -ENOMEM;
        }
        p->b.n_ranges++;
        return 0;
}

static int read_block_map(Parser *p) {
        int depth = xmlTextReaderDepth(p->reader);

        if (xmlTextReaderIsEmptyElement(p->reader))
                return 0;
        for (;;) {
                int r = xmlTextReaderRead(p->reader);
                if (r != 1)
                        return r < 0 ? -EBADMSG : FAIL(p, line_of(p), "the file ends inside <BlockMap>");
                int type = xmlTextReaderNodeType(p->reader);
                if (type == XML_READER_TYPE_END_ELEMENT && xmlTextReaderDepth(p->reader) == depth)
                        return 0;
                if (type == XML_READER_TYPE_TEXT || type == XML_READER_TYPE_CDATA)
                        return FAIL(p, line_of(p), "<BlockMap> holds text outside any <Range>");
                if (type != XML_READER_TYPE_ELEMENT)
                        continue;
                const char *el = (const char *) xmlTextReaderConstName(p->reader);
                if (strcmp(el, "Range") != 0)
                        return FAIL(p, line_of(p), "<BlockMap> holds an unknown element <%s>", el);
                r = add_range(p, line_of(p));
                if (r < 0)
                        return r;
        }
}

static int skip_element(Parser *p) {
        int depth = xmlTextReaderDepth(p->reader);

        if (xmlTextReaderIsEmptyElement(p->reader))
                return 0;
        for (;;) {
                int r = xmlTextReaderRead(p->reader);
                if (r != 1)
                        return r < 0 ? -EBADMSG : FAIL(p, line_of(p), "the file ends inside an element");
                if (xmlTextReaderNodeType(p->reader) == XML_READER_TYPE_END_ELEMENT &&
                    xmlTextReaderDepth(p->reader) == depth)
                        return 0;
        }
}

static int parse_version(Parser *p, const char *v) {
        unsigned long long maj, min;
        char *end;

        if (!v)
                return FAIL(p, line_of(p), "<bmap> has no version attribute");
        while (*v == ' ')
                v++;
        if (*v < '0' || *v > '9')
                goto bad;
        maj = strtoull(v, &end, 10);
        if (*end != '.' || end[1] < '0' || end[1] > '9')
                goto bad;
        min = strtoull(end + 1, &end, 10);
        while (*end == ' ')
                end++;
        if (*end || maj > 1000 || min > 1000)
                goto bad;
        if (maj > 2)
                return FAIL(p, line_of(p),
                            "bmap format version %llu.%llu is newer than this bmapscan reads (up to 2.x): "
                            "upgrade bmapscan", maj, min);
        if (maj == 0)
                return FAIL(p, line_of(p), "bmap format version %llu.%llu does not exist", maj, min);
        p->b.version_major = (unsigned) maj;
        p->b.version_minor = (unsigned) min;
        return 0;
bad:
        return FAIL(p, line_of(p), "the version attribute '%s' is not MAJOR.MINOR", v);
}

static int walk(Parser *p) {
        bool root_seen = false;

        for (;;) {
                int r = xmlTextReaderRead(p->reader);
                if (r < 0)
                        return -EBADMSG;
                if (r == 0)
                        break;
                int type = xmlTextReaderNodeType(p->reader);
                int depth = xmlTextReaderDepth(p->reader);
                if (type == XML_READER_TYPE_DOCUMENT_TYPE || type == XML_READER_TYPE_ENTITY_REFERENCE)
                        return FAIL(p, line_of(p), "DTDs and entities are not allowed in a bmap");
                if (type != XML_READER_TYPE_ELEMENT)
                        continue;
                const char *el = (const char *) xmlTextReaderConstName(p->reader);
                if (depth == 0) {
                        if (strcmp(el, "bmap") != 0)
                                return FAIL(p, line_of(p), "the root element is <%s>, not <bmap>: this is not a bmap",
                                            el);
                        root_seen = true;
                        _cleanup_free_ char *v = (char *) xmlTextReaderGetAttribute(p->reader,
                                                                                    (const xmlChar *) "version");
                        r = parse_version(p, v);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (depth != 1)
                        continue; /* cannot happen: every element below <bmap> is consumed whole */
                size_t k;
                for (k = 0; k < _EL_MAX; k++)
                        if (strcmp(el, element_names[k]) == 0)
                                break;
                if (k == _EL_MAX) {
                        /* Unknown elements are left alone, for forward compatibility. */
                        r = skip_element(p);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (p->seen[k])
                        return FAIL(p, line_of(p), "<%s> appears twice (first on line %u)", el, p->line[k]);
                p->seen[k] = true;
                p->line[k] = (unsigned) line_of(p);
                r = k == EL_BLOCK_MAP ? read_block_map(p) : read_text(p, el, p->text[k], sizeof(p->text[k]));
                if (r < 0)
                        return r;
        }
        if (!root_seen)
                return FAIL(p, 0, "no <bmap> element: this is not a bmap");
        return 0;
}

static void trim(char *s) {
        size_t a = strspn(s, " \t\r\n"), e = strlen(s);
        while (e > a && strchr(" \t\r\n", s[e - 1]))
                e--;
        memmove(s, s + a, e - a);
        s[e - a] = 0;
}

static int number(Parser *p, int k, uint64_t *ret) {
        int r;

        if (!p->seen[k])
                return FAIL(p, 0, "the required element <%s> is missing", element_names[k]);
        trim(p->text[k]);
        r = parse_u64(p->text[k], strlen(p->text[k]), ret);
        if (r == -ERANGE)
                return FAIL(p, (int) p->line[k], "<%s> %s is too large", element_names[k], p->text[k]);
        if (r < 0)
                return FAIL(p, (int) p->line[k], "<%s> '%s' is not a number", element_names[k], p->text[k]);
        return 0;
}


static int check_header(Parser *p) {
        Bmap *b = &p->b;
        int r;

        if ((r = number(p, EL_IMAGE_SIZE, &b->image_size)) < 0 || (r = number(p, EL_BLOCK_SIZE, &b->block_size)) < 0 ||
            (r = number(p, EL_BLOCKS_COUNT, &b->blocks_count)) < 0 ||
            (r = number(p, EL_MAPPED_COUNT, &b->mapped_count)) < 0)
                return r;
        if (!p->seen[EL_BLOCK_MAP])
                return FAIL(p, 0, "the required element <BlockMap> is missing");
        if (b->block_size == 0)
                return FAIL(p, (int) p->line[EL_BLOCK_SIZE], "<BlockSize> is 0");
        /* Byte offsets must fit comfortably in 64 bits. */
        if (b->image_size > (UINT64_C(1) << 62) || b->block_size > (UINT64_C(1) << 32))
                return FAIL(p, (int) p->line[b->image_size > (UINT64_C(1) << 62) ? EL_IMAGE_SIZE : EL_BLOCK_SIZE],
                            "absurd size: ImageSize %llu, BlockSize %llu", (unsigned long long) b->image_size,
                            (unsigned long long) b->block_size);
        uint64_t expect = div_round_up(b->image_size, b->block_size);
        if (b->blocks_count != expect)
                return FAIL(p, (int) p->line[EL_BLOCKS_COUNT],
                            "<BlocksCount> %llu does not match ImageSize %llu / BlockSize %llu = %llu blocks",
                            (unsigned long long) b->blocks_count, (unsigned long long) b->image_size,
                            (unsigned long long) b->block_size, (unsigned long long) expect);
        return 0;
}

static int check_ranges(Parser *p) {
        Bmap *b = &p->b;
        uint64_t total = 0;

        for (size_t i = 0; i < b->n_ranges; i++) {
                const BmapRange *x = &b->ranges[i];
                if (x->blocks.end > b->blocks_count)
                        return FAIL(p, (int) x->line, "range %llu-%llu lies beyond the image's %llu blocks",
                                    (unsigned long long) x->blocks.start, (unsigned long long) x->blocks.end - 1,
                                    (unsigned long long) b->blocks_count);
                total += x->blocks.end - x->blocks.start;
        }
        if (total != b->mapped_count)
                return FAIL(p, (int) p->line[EL_MAPPED_COUNT],
                            "<MappedBlocksCount> %llu does not match the %llu blocks the ranges hold",
                            (unsigned long long) b->mapped_count, (unsigned long long) total);
        return 0;
}

static int checksum_type_from_length(size_t hexlen, ChecksumType *ret) {
        if (hexlen == 40)
                *ret = CHECKSUM_SHA1;
        else if (hexlen == 64)
                *ret = CHECKSUM_SHA256;
        else
                return -EINVAL;
        return 0;
}

/* Works out the checksum type and decodes every range checksum. */
static int decode_checksums(Parser *p, int file_el) {
        Bmap *b = &p->b;
        bool v14 = b->version_major >= 2 || b->version_minor >= 4;

        if (!v14)
                b->checksum_type = CHECKSUM_SHA1;
        else if (p->seen[EL_CHECKSUM_TYPE]) {
                char *t = p->text[EL_CHECKSUM_TYPE];
                trim(t);
                if (strcasecmp(t, "sha1") == 0)
                        b->checksum_type = CHECKSUM_SHA1;
                else if (strcasecmp(t, "sha256") == 0)
                        b->checksum_type = CHECKSUM_SHA256;
                else
                        return FAIL(p, (int) p->line[EL_CHECKSUM_TYPE],
                                    "checksum type '%s' is not supported (sha1 and sha256 are)", t);
        } else {
                /* No <ChecksumType>: the checksums' length tells, if they agree. */
                bool known = false;
                for (size_t i = 0; i < b->n_ranges; i++) {
                        ChecksumType t;
                        if (!p->range_hex[i])
                                continue;
                        if (checksum_type_from_length(strlen(p->range_hex[i]), &t) < 0 ||
                            (known && t != b->checksum_type))
                                return FAIL(p, (int) b->ranges[i].line,
                                            "there is no <ChecksumType> and the range checksums' lengths do not "
                                            "tell one (%zu hex digits here)",
                                            strlen(p->range_hex[i]));
                        b->checksum_type = t;
                        known = true;
                }
                if (!known && p->seen[file_el]) {
                        char *t = p->text[file_el];
                        trim(t);
                        if (checksum_type_from_length(strlen(t), &b->checksum_type) < 0)
                                return FAIL(p, (int) p->line[file_el],
                                            "there is no <ChecksumType> and the file checksum's length (%zu) tells none",
                                            strlen(t));
                        known = true;
                }
                if (!known)
                        b->checksum_type = CHECKSUM_NONE;
        }

        /* Name every malformed range checksum at once, so that a damaged bmap
         * can be judged from one message. */
        size_t size = checksum_size(b->checksum_type), bad = 0;
        char list[400] = "";
        int first_line = 0;
        for (size_t i = 0; i < b->n_ranges; i++) {
                const char *hex = p->range_hex[i];
                BmapRange *x = &b->ranges[i];
                if (!hex)
                        continue;
                if (strlen(hex) == 2 * size && hex_decode(hex, size, x->checksum) >= 0) {
                        x->has_checksum = true;
                        continue;
                }
                if (bad++ == 0)
                        first_line = (int) x->line;
                size_t used = strlen(list);
                if (used < sizeof(list) - 40) {
                        if (x->blocks.end - x->blocks.start == 1)
                                snprintf(list + used, sizeof(list) - used, "%s%llu", bad > 1 ? ", " : "",
                                         (unsigned long long) x->blocks.start);
                        else
                                snprintf(list + used, sizeof(list) - used, "%s%llu-%llu", bad > 1 ? ", " : "",
                                         (unsigned long long) x->blocks.start, (unsigned long long) x->blocks.end - 1);
                } else if (!strstr(list, ", ..."))
                        strcat(list, ", ...");
        }
        if (bad)
                return FAIL(p, first_line, "%zu range checksum%s not %zu hex digits of %s: range%s %s; the bmap is damaged",
                            bad, bad > 1 ? "s are" : " is", 2 * size, checksum_name(b->checksum_type),
                            bad > 1 ? "s" : "", list);
        return 0;
}

static int verify_file_checksum(Parser *p, int file_el, const char *data, size_t len, bool allow_bad) {
        Bmap *b = &p->b;
        ChecksumType t = file_el == EL_FILE_SHA1 ? CHECKSUM_SHA1 : b->checksum_type;
        uint8_t want[CHECKSUM_MAX_SIZE], got[CHECKSUM_MAX_SIZE];
        char *field = p->text[file_el];

        trim(field);
        size_t hexlen = strlen(field), size = checksum_size(t);
        if (size == 0 || hexlen != 2 * size)
                return FAIL(p, (int) p->line[file_el], "<%s> has %zu hex digits, %s needs %zu", element_names[file_el],
                            hexlen, checksum_name(t), 2 * size);
        if (hex_decode(field, size, want) < 0)
                return FAIL(p, (int) p->line[file_el], "<%s> '%s' is not hexadecimal", element_names[file_el], field);

        /* The checksum covers the file with the field's own text replaced by
         * zeros: the first occurrence of that text, wherever it stands. */
        const char *at = memmem(data, len, field, hexlen);
        if (!at)
                /* Written with character references: the digest covers the
                 * raw bytes, which then do not hold the value. */
                return FAIL(p, (int) p->line[file_el],
                            "the file checksum <%s> is not written as plain hexadecimal text, so it cannot be checked",
                            element_names[file_el]);
        size_t off = (size_t) (at - data);
        int r = bmap_file_checksum(data, len, t, off, hexlen, got);
        if (r < 0)
                return r;
        if (memcmp(want, got, size) == 0) {
                b->file_checksum = FILE_CHECKSUM_OK;
                return 0;
        }
        b->file_checksum = FILE_CHECKSUM_BAD;
        if (allow_bad)
                return 0;
        return FAIL(p, (int) p->line[file_el],
                    "the bmap's own checksum does not match its contents: the file was changed after it was "
                    "written; get an intact copy or regenerate it");
}

int bmap_file_checksum(const char *text, size_t len, ChecksumType t, size_t field_offset, size_t field_len,
                       uint8_t *ret) {
        _cleanup_free_ char *copy = NULL;

        if (field_offset > len || field_len > len - field_offset)
                return -EINVAL;
        copy = malloc(len ? len : 1);
        if (!copy)
                return -ENOMEM;
        memcpy(copy, text, len);
        memset(copy + field_offset, '0', field_len);
        return digest_buffer(t, copy, len, ret);
}

bool bmap_text_is_clearsigned(const char *data, size_t len) {
        static const char marker[] = "-----BEGIN PGP SIGNED MESSAGE-----";
        size_t i = 0;

        if (len >= 3 && (uint8_t) data[0] == 0xEF && (uint8_t) data[1] == 0xBB && (uint8_t) data[2] == 0xBF)
                i = 3;
        while (i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n'))
                i++;
        return len - i >= sizeof(marker) - 1 && memcmp(data + i, marker, sizeof(marker) - 1) == 0;
}

int bmap_parse(const char *data, size_t len, const char *name, bool allow_bad_file_checksum, Bmap *ret,
               Diag *d) {
        _cleanup_(parser_done) Parser p = { .name = name, .diag = d };
        size_t lead = 0;
        int r;

        if (!data || len == 0)
                return FAIL(&p, 0, "not a bmap: the file is empty, not XML");
        /* Refuse what is clearly not XML before libxml2 sees it, and any DTD:
         * bmaps never need one, and entity expansion is the one way an XML
         * file can cost more than its size. (A "<!DOCTYPE" inside a comment
         * is refused too: no bmap writer puts one there.) */
        if (len >= 3 && (uint8_t) data[0] == 0xEF && (uint8_t) data[1] == 0xBB && (uint8_t) data[2] == 0xBF)
                lead = 3;
        while (lead < len && (data[lead] == ' ' || data[lead] == '\t' || data[lead] == '\r' || data[lead] == '\n'))
                lead++;
        if (bmap_text_is_clearsigned(data, len))
                return FAIL(&p, 0, "a clearsigned bmap: its XML is inside an OpenPGP signed message, to be "
                                   "verified and taken out first (bmapscan copy, verify and info do that)");
        if (lead >= len || data[lead] != '<')
                return FAIL(&p, 0, "not a bmap: the file is not XML");
        if (memmem(data, len, "<!DOCTYPE", 9) || memmem(data, len, "<!ENTITY", 8))
                return FAIL(&p, 0, "a bmap must not hold a DTD or entity declarations; refused without reading them");
        if (len > INT32_MAX)
                return FAIL(&p, 0, "absurd size: a bmap of %zu bytes", len);

        p.reader = xmlReaderForMemory(data, (int) len, NULL, NULL,
                                      XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA);
        if (!p.reader)
                return -ENOMEM;
        xmlTextReaderSetStructuredErrorHandler(p.reader, on_xml_error, &p);

        r = walk(&p);
        if (r == -EBADMSG && !p.failed)
                return FAIL(&p, p.xml_error_line, "not well-formed XML: %s",
                            p.xml_error[0] ? p.xml_error : "parse error");
        if (r < 0)
                return r;

        int file_el = -1;
        if (p.b.version_major >= 2 || p.b.version_minor >= 4)
                file_el = EL_FILE_CHECKSUM;
        else if (p.b.version_minor == 3)
                file_el = EL_FILE_SHA1;

        if ((r = check_header(&p)) < 0 || (r = check_ranges(&p)) < 0 ||
            (r = decode_checksums(&p, file_el >= 0 ? file_el : EL_FILE_CHECKSUM)) < 0)
                return r;
        p.b.file_checksum = FILE_CHECKSUM_ABSENT;
        if (file_el >= 0 && p.seen[file_el]) {
                r = verify_file_checksum(&p, file_el, data, len, allow_bad_file_checksum);
                if (r < 0)
                        return r;
        }

        *ret = p.b;
        p.b = (Bmap) {};
        return 0;
}

int bmap_fetch(const char *location, HttpContext *http, char **ret_data, size_t *ret_len, Diag *d) {
        int r = fetch_whole(location, http, BMAP_MAX_SIZE, ret_data, ret_len, d);
        if (r == -EFBIG)
                return diag_set(d, -EBADMSG, "%s: larger than %u MiB: not a bmap", location, BMAP_MAX_SIZE >> 20);
        if (r == -ENOENT)
                return diag_set(d, r, "cannot read bmap '%s': %s", location, strerror(-r));
        return r;
}

int bmap_load(const char *path, bool allow_bad_file_checksum, Bmap *ret, Diag *d) {
        _cleanup_free_ char *data = NULL;
        size_t len;
        int r;

        r = bmap_fetch(path, NULL, &data, &len, d);
        if (r < 0)
                return r;
        return bmap_parse(data, len, path, allow_bad_file_checksum, ret, d);
}
