/* Strict JSON parser (RFC 8259) in two passes over the text: the first validates and counts
 * values and string bytes, the second fills exactly sized arrays, so values never move and no
 * recursion or reallocation is needed. Nesting is limited to FNET_JSON_MAX_DEPTH. */
#include "io/json.h"

#include <stdlib.h>
#include <string.h>

struct fnet_json_doc {
    struct fnet_json *nodes; // nodes[0] is the root
    size_t n_nodes;
    char *strings;           // every decoded string and key, each NUL-terminated
};

struct parser {
    fnet_ctx *ctx;
    const char *what;
    const unsigned char *s;
    size_t len, pos;
    size_t max_nodes;
    // counting pass: nodes == NULL, only the counters move; filling pass: write into the arrays
    struct fnet_json *nodes;
    size_t n_nodes;
    char *strings;
    size_t n_string_bytes;
    size_t max_object;       // most members of one object (sizes the duplicate-key check)
};

static fnet_status syntax_error(struct parser *p, const char *reason)
{
    return fnet_fail(p->ctx, FNET_ERR_FORMAT, "%s: invalid JSON at byte %zu: %s", p->what, p->pos,
                     reason);
}

static void skip_ws(struct parser *p)
{
    while (p->pos < p->len) {
        unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->pos++;
    }
}

// Length (1..4) of the well-formed UTF-8 sequence at s (n bytes available), 0 if ill-formed.
static size_t utf8_seq(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char c = s[0];
    size_t k;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
        k = 2, v = c & 0x1Fu, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        k = 3, v = c & 0x0Fu, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        k = 4, v = c & 0x07u, min = 0x10000;
    } else {
        return 0;
    }
    if (n < k)
        return 0;
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3Fu);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return k;
}

bool fnet_json_utf8_valid(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    uint32_t cp;
    for (size_t i = 0; i < len;) {
        size_t k = utf8_seq(u + i, len - i, &cp);
        if (k == 0)
            return false;
        i += k;
    }
    return true;
}

static size_t utf8_encode(uint32_t cp, unsigned char out[4])
{
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    } else if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    } else if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | (cp >> 18));
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

// Four hex digits at s[pos..pos+4) into *v; false if fewer or not hex.
static bool hex4(const struct parser *p, size_t pos, uint32_t *v)
{
    if (p->len - pos < 4)
        return false;
    uint32_t r = 0;
    for (size_t i = 0; i < 4; i++) {
        unsigned char c = p->s[pos + i];
        uint32_t d;
        if (c >= '0' && c <= '9')
            d = (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            d = (uint32_t)(c - 'A' + 10);
        else
            return false;
        r = r << 4 | d;
    }
    *v = r;
    return true;
}

static void put_bytes(struct parser *p, const unsigned char *b, size_t n)
{
    if (p->strings != NULL)
        memcpy(p->strings + p->n_string_bytes, b, n);
    p->n_string_bytes += n;
}

// The string starting at the '"' at p->pos: decoded into the string area (filling pass), its
// start and length returned.
static fnet_status parse_string(struct parser *p, const char **out, size_t *out_len)
{
    p->pos++; // opening quote
    size_t start = p->n_string_bytes;
    for (;;) {
        if (p->pos >= p->len)
            return syntax_error(p, "unterminated string");
        unsigned char c = p->s[p->pos];
        if (c == '"') {
            p->pos++;
            break;
        }
        if (c < 0x20)
            return syntax_error(p, "control character in string (must be escaped)");
        if (c == '\\') {
            if (p->len - p->pos < 2)
                return syntax_error(p, "unterminated escape sequence");
            unsigned char e = p->s[p->pos + 1], b;
            switch (e) {
            case '"': b = '"'; break;
            case '\\': b = '\\'; break;
            case '/': b = '/'; break;
            case 'b': b = '\b'; break;
            case 'f': b = '\f'; break;
            case 'n': b = '\n'; break;
            case 'r': b = '\r'; break;
            case 't': b = '\t'; break;
            case 'u': {
                uint32_t cp, lo;
                if (!hex4(p, p->pos + 2, &cp))
                    return syntax_error(p, "\\u must be followed by four hex digits");
                size_t used = 6;
                if (cp >= 0xDC00 && cp <= 0xDFFF)
                    return syntax_error(p, "unpaired low surrogate in \\u escape");
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    if (p->len - p->pos < 12 || p->s[p->pos + 6] != '\\' ||
                        p->s[p->pos + 7] != 'u' || !hex4(p, p->pos + 8, &lo) || lo < 0xDC00 ||
                        lo > 0xDFFF)
                        return syntax_error(p, "high surrogate in \\u escape without a low one");
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    used = 12;
                }
                unsigned char enc[4];
                put_bytes(p, enc, utf8_encode(cp, enc));
                p->pos += used;
                continue;
            }
            default:
                return syntax_error(p, "invalid escape sequence");
            }
            put_bytes(p, &b, 1);
            p->pos += 2;
            continue;
        }
        uint32_t cp;
        size_t k = utf8_seq(p->s + p->pos, p->len - p->pos, &cp);
        if (k == 0)
            return syntax_error(p, "invalid UTF-8 in string");
        put_bytes(p, p->s + p->pos, k);
        p->pos += k;
    }
    unsigned char nul = 0;
    *out_len = p->n_string_bytes - start;
    put_bytes(p, &nul, 1);
    *out = p->strings != NULL ? p->strings + start : NULL;
    return FNET_OK;
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

// The number at p->pos (grammar -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?) into v.
static fnet_status parse_number(struct parser *p, struct fnet_json *v)
{
    size_t start = p->pos;
    bool neg = false, integral = true, fits = true;
    uint64_t mag = 0;
    if (p->s[p->pos] == '-') {
        neg = true;
        p->pos++;
    }
    if (p->pos >= p->len || !is_digit(p->s[p->pos]))
        return syntax_error(p, "expected a digit");
    if (p->s[p->pos] == '0') {
        p->pos++;
        if (p->pos < p->len && is_digit(p->s[p->pos]))
            return syntax_error(p, "leading zero in number");
    } else {
        while (p->pos < p->len && is_digit(p->s[p->pos])) {
            uint64_t d = (uint64_t)(p->s[p->pos] - '0');
            if (mag > (UINT64_MAX - d) / 10)
                fits = false;
            else
                mag = mag * 10 + d;
            p->pos++;
        }
    }
    if (p->pos < p->len && p->s[p->pos] == '.') {
        integral = false;
        p->pos++;
        if (p->pos >= p->len || !is_digit(p->s[p->pos]))
            return syntax_error(p, "expected a digit after the decimal point");
        while (p->pos < p->len && is_digit(p->s[p->pos]))
            p->pos++;
    }
    if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
        integral = false;
        p->pos++;
        if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-'))
            p->pos++;
        if (p->pos >= p->len || !is_digit(p->s[p->pos]))
            return syntax_error(p, "expected a digit in the exponent");
        while (p->pos < p->len && is_digit(p->s[p->pos]))
            p->pos++;
    }
    size_t n = p->pos - start;
    if (n > FNET_JSON_MAX_NUMBER) {
        p->pos = start;
        return syntax_error(p, "number longer than 1023 characters");
    }
    if (v == NULL)
        return FNET_OK;
    if (fits && (neg ? mag <= (uint64_t)INT64_MAX + 1 : mag <= (uint64_t)INT64_MAX) && integral) {
        v->type = FNET_JSON_INT;
        // -(2^63) needs the unsigned detour: negating INT64_MIN overflows
        v->integer = neg ? (int64_t)(0 - mag) : (int64_t)mag;
        v->number = (double)v->integer;
        return FNET_OK;
    }
    char buf[FNET_JSON_MAX_NUMBER + 1];
    memcpy(buf, p->s + start, n);
    buf[n] = '\0';
    v->type = FNET_JSON_NUMBER;
    v->number = strtod(buf, NULL); // overflow gives ±HUGE_VAL, underflow 0: both fine here
    return FNET_OK;
}

static fnet_status literal(struct parser *p, const char *word, size_t n)
{
    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
        return syntax_error(p, "unexpected character");
    p->pos += n;
    return FNET_OK;
}

// One pass over the whole text: validates (counting pass) or fills (filling pass).
static fnet_status run_pass(struct parser *p)
{
    enum { VALUE, KEY, AFTER } state = VALUE;
    struct fnet_json *open[FNET_JSON_MAX_DEPTH]; // enclosing containers (filling pass)
    struct fnet_json *last[FNET_JSON_MAX_DEPTH]; // their last member so far
    bool is_object[FNET_JSON_MAX_DEPTH];
    size_t members[FNET_JSON_MAX_DEPTH];
    int depth = 0;
    const char *key = NULL;
    size_t key_len = 0;
    fnet_status st;

    p->pos = 0;
    p->n_nodes = 0;
    p->n_string_bytes = 0;
    for (;;) {
        skip_ws(p);
        if (state == KEY) {
            if (p->pos >= p->len || p->s[p->pos] != '"')
                return syntax_error(p, "expected a string as object key");
            st = parse_string(p, &key, &key_len);
            if (st != FNET_OK)
                return st;
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != ':')
                return syntax_error(p, "expected ':' after object key");
            p->pos++;
            state = VALUE;
            continue;
        }
        if (state == AFTER) {
            if (depth == 0) {
                if (p->pos != p->len)
                    return syntax_error(p, "trailing characters after the document");
                return FNET_OK;
            }
            char close = is_object[depth - 1] ? '}' : ']';
            if (p->pos < p->len && p->s[p->pos] == ',') {
                p->pos++;
                state = is_object[depth - 1] ? KEY : VALUE;
            } else if (p->pos < p->len && p->s[p->pos] == close) {
                p->pos++;
                depth--;
            } else {
                return syntax_error(p, is_object[depth - 1] ? "expected ',' or '}' in object"
                                                            : "expected ',' or ']' in array");
            }
            continue;
        }

        // state VALUE
        if (p->pos >= p->len)
            return syntax_error(p, "unexpected end of input, expected a value");
        if (p->n_nodes >= p->max_nodes)
            return syntax_error(p, "too many values in the document");
        struct fnet_json *v = NULL;
        if (p->nodes != NULL) {
            v = &p->nodes[p->n_nodes];
            memset(v, 0, sizeof(*v));
            v->pos = p->pos;
            if (depth > 0) {
                struct fnet_json *parent = open[depth - 1];
                if (parent->len == 0)
                    parent->child = v;
                else
                    last[depth - 1]->next = v;
                last[depth - 1] = v;
                parent->len++;
                if (is_object[depth - 1]) {
                    v->key = key;
                    v->key_len = key_len;
                }
            }
        }
        p->n_nodes++;
        if (depth > 0 && is_object[depth - 1] && ++members[depth - 1] > p->max_object)
            p->max_object = members[depth - 1];

        unsigned char c = p->s[p->pos];
        state = AFTER;
        if (c == '{' || c == '[') {
            if (depth == FNET_JSON_MAX_DEPTH)
                return syntax_error(p, "nesting deeper than 64 levels");
            p->pos++;
            if (v != NULL)
                v->type = c == '{' ? FNET_JSON_OBJECT : FNET_JSON_ARRAY;
            open[depth] = v;
            last[depth] = NULL;
            is_object[depth] = c == '{';
            members[depth] = 0;
            depth++;
            skip_ws(p);
            if (p->pos < p->len && p->s[p->pos] == (c == '{' ? '}' : ']')) {
                p->pos++;
                depth--;
            } else {
                state = c == '{' ? KEY : VALUE;
            }
        } else if (c == '"') {
            const char *str;
            size_t n;
            st = parse_string(p, &str, &n);
            if (st != FNET_OK)
                return st;
            if (v != NULL) {
                v->type = FNET_JSON_STRING;
                v->str = str;
                v->len = n;
            }
        } else if (c == '-' || is_digit(c)) {
            st = parse_number(p, v);
            if (st != FNET_OK)
                return st;
        } else if (c == 't' || c == 'f') {
            st = literal(p, c == 't' ? "true" : "false", c == 't' ? 4 : 5);
            if (st != FNET_OK)
                return st;
            if (v != NULL) {
                v->type = FNET_JSON_BOOL;
                v->boolean = c == 't';
            }
        } else if (c == 'n') {
            st = literal(p, "null", 4);
            if (st != FNET_OK)
                return st;
        } else {
            return syntax_error(p, "unexpected character");
        }
    }
}

static int compare_keys(const void *a, const void *b)
{
    const struct fnet_json *x = *(const struct fnet_json *const *)a;
    const struct fnet_json *y = *(const struct fnet_json *const *)b;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(x->key, y->key, n);
    if (c != 0)
        return c;
    return (x->key_len > y->key_len) - (x->key_len < y->key_len);
}

// Duplicate keys make a document ambiguous (which value wins?): reject them, in O(n log n) per
// object so that a large header cannot make this quadratic.
static fnet_status check_duplicates(struct parser *p)
{
    if (p->max_object < 2)
        return FNET_OK;
    const struct fnet_json **sorted = fnet_malloc_array(p->max_object, sizeof(*sorted));
    if (sorted == NULL)
        return fnet_fail(p->ctx, FNET_ERR_OUT_OF_MEMORY, "%s: JSON duplicate-key check",
                         p->what);
    fnet_status st = FNET_OK;
    for (size_t i = 0; i < p->n_nodes && st == FNET_OK; i++) {
        const struct fnet_json *o = &p->nodes[i];
        if (o->type != FNET_JSON_OBJECT || o->len < 2)
            continue;
        size_t n = 0;
        for (const struct fnet_json *m = o->child; m != NULL; m = m->next)
            sorted[n++] = m;
        qsort(sorted, n, sizeof(*sorted), compare_keys);
        for (size_t k = 1; k < n; k++) {
            if (compare_keys(&sorted[k - 1], &sorted[k]) == 0) {
                const struct fnet_json *later =
                    sorted[k]->pos > sorted[k - 1]->pos ? sorted[k] : sorted[k - 1];
                p->pos = later->pos;
                st = fnet_fail(p->ctx, FNET_ERR_FORMAT, "%s: invalid JSON at byte %zu: "
                               "duplicate key '%s'", p->what, p->pos, later->key);
                break;
            }
        }
    }
    fnet_free(sorted);
    return st;
}

fnet_status fnet_json_parse(fnet_ctx *ctx, const char *what, const char *text, size_t len,
                            size_t max_nodes, struct fnet_json_doc **out)
{
    *out = NULL;
    if (text == NULL && len > 0)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "%s: NULL JSON text", what);
    struct parser p = {.ctx = ctx, .what = what, .s = (const unsigned char *)text, .len = len,
                       .max_nodes = max_nodes};
    fnet_status st = run_pass(&p);
    if (st != FNET_OK)
        return st;

    struct fnet_json_doc *doc = fnet_calloc(1, sizeof(*doc));
    if (doc == NULL)
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "%s: JSON document", what);
    doc->n_nodes = p.n_nodes;
    doc->nodes = fnet_malloc_array(p.n_nodes, sizeof(*doc->nodes));
    if (doc->nodes == NULL) {
        st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "%s: %zu JSON values", what, p.n_nodes);
        goto out_free_doc;
    }
    doc->strings = fnet_malloc(p.n_string_bytes);
    if (doc->strings == NULL) {
        st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "%s: %zu bytes of JSON strings", what,
                       p.n_string_bytes);
        goto out_free_nodes;
    }
    p.nodes = doc->nodes;
    p.strings = doc->strings;
    st = run_pass(&p); // the same text passed the counting pass: this one cannot fail
    if (st == FNET_OK && p.n_nodes != doc->n_nodes)
        st = fnet_fail(ctx, FNET_ERR_INTERNAL, "%s: JSON passes disagree", what);
    if (st == FNET_OK)
        st = check_duplicates(&p);
    if (st != FNET_OK)
        goto out_free_strings;
    *out = doc;
    return FNET_OK;

out_free_strings:
    fnet_free(doc->strings);
out_free_nodes:
    fnet_free(doc->nodes);
out_free_doc:
    fnet_free(doc);
    return st;
}

void fnet_json_free(struct fnet_json_doc *doc)
{
    if (doc == NULL)
        return;
    fnet_free(doc->strings);
    fnet_free(doc->nodes);
    fnet_free(doc);
}

const struct fnet_json *fnet_json_root(const struct fnet_json_doc *doc)
{
    return &doc->nodes[0];
}

const struct fnet_json *fnet_json_get(const struct fnet_json *obj, const char *key)
{
    if (obj == NULL || obj->type != FNET_JSON_OBJECT)
        return NULL;
    size_t n = strlen(key);
    for (const struct fnet_json *m = obj->child; m != NULL; m = m->next)
        if (m->key_len == n && memcmp(m->key, key, n) == 0)
            return m;
    return NULL;
}

const char *fnet_json_type_name(enum fnet_json_type type)
{
    switch (type) {
    case FNET_JSON_NULL: return "null";
    case FNET_JSON_BOOL: return "boolean";
    case FNET_JSON_INT: return "integer";
    case FNET_JSON_NUMBER: return "number";
    case FNET_JSON_STRING: return "string";
    case FNET_JSON_ARRAY: return "array";
    case FNET_JSON_OBJECT: return "object";
    }
    return "unknown";
}
