/* Model-spec parser ("dense:1024,relu,tt:1024:rank=8,relu,dense:10" into items) and the canonical
 * text of one item, driven by the table of layer-kind descriptors (core/layer_kind.h). Grammar:
 * docs/design.md, "The spec grammar". ASCII whitespace is tolerated
 * (never required) around items and around every ':', '=' and 'x'; kind and option names are
 * case-sensitive. Limits: 64 KiB of text, 1024 items, integers 1..2^31-1. */
#include "io/spec.h"
#include "core/layer_kind.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SPEC_MAX_LEN (64 * 1024) // bytes before the NUL
#define SPEC_MAX_ITEMS 1024
#define SPEC_INT_MAX INT64_C(2147483647)
#define SPEC_CLIP 60      // characters of user text quoted in a message, then "..."
#define SPEC_FLOAT_TEXT 256 // longest number text handed to strtod

// A piece of the (unmodified, NUL-terminated) spec: p[0..n).
struct span {
    const char *p;
    size_t n;
};

// Where a message points: the item's 1-based position and its (trimmed) text.
struct fnet_spec_where {
    fnet_ctx *ctx;
    int pos;
    struct span text;
};

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static struct span trim(struct span s)
{
    while (s.n > 0 && is_space(s.p[0])) {
        s.p++;
        s.n--;
    }
    while (s.n > 0 && is_space(s.p[s.n - 1]))
        s.n--;
    return s;
}

static bool span_is(struct span s, const char *lit)
{
    return strlen(lit) == s.n && memcmp(s.p, lit, s.n) == 0;
}

// The trimmed text of *rest before the first sep; *rest becomes what follows it. *more says
// whether a sep was found (so "relu:" has a second, empty, field and "relu" has none).
static struct span split(struct span *rest, char sep, bool *more)
{
    const char *at = rest->n ? memchr(rest->p, sep, rest->n) : NULL;
    struct span head = *rest;
    if (at == NULL) {
        rest->p += rest->n;
        rest->n = 0;
        *more = false;
    } else {
        head.n = (size_t)(at - rest->p);
        rest->n -= head.n + 1;
        rest->p = at + 1;
        *more = true;
    }
    return trim(head);
}

// User text for a message: at most SPEC_CLIP characters, then "...".
static void clip(struct span s, char out[SPEC_CLIP + 4])
{
    size_t n = s.n > SPEC_CLIP ? SPEC_CLIP : s.n;
    memcpy(out, s.p, n);
    if (n < s.n) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
}

// "<file>:<line>: spec item <pos> '<text>': <what>", FNET_ERR_FORMAT, line being the check that
// failed. Every message fits the ctx's 512 bytes.
fnet_status fnet_spec_fail_at(const struct fnet_spec_where *w, const char *file, int line,
                              const char *fmt, ...)
{
    char what[320], item[SPEC_CLIP + 4];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    clip(w->text, item);
    return fnet_fail_at(w->ctx, FNET_ERR_FORMAT, file, line, "spec item %d '%s': %s", w->pos,
                        item, what);
}

#define item_fail fnet_spec_fail

enum int_result { INT_OK, INT_BAD, INT_TOO_BIG };

// A positive decimal integer 1..2^31-1: digits only (leading zeros allowed, still decimal), no
// sign, no exponent, no suffix.
static enum int_result parse_pos_int(struct span s, int64_t *out)
{
    if (s.n == 0)
        return INT_BAD;
    int64_t v = 0;
    bool too_big = false;
    for (size_t i = 0; i < s.n; i++) {
        if (s.p[i] < '0' || s.p[i] > '9')
            return INT_BAD;
        if (!too_big) {
            v = v * 10 + (s.p[i] - '0');
            too_big = v > SPEC_INT_MAX;
        }
    }
    if (too_big)
        return INT_TOO_BIG;
    if (v == 0)
        return INT_BAD;
    *out = v;
    return INT_OK;
}

// A positive integer field; what names it in the message ("size", "rank", "in value 2").
static fnet_status want_int(const struct fnet_spec_where *w, const char *what, struct span s, int64_t *out)
{
    char got[SPEC_CLIP + 4];
    enum int_result r = parse_pos_int(s, out);
    if (r == INT_OK)
        return FNET_OK;
    clip(s, got);
    if (r == INT_TOO_BIG)
        return item_fail(w, "%s must be at most %" PRId64 ", got '%s'", what, SPEC_INT_MAX, got);
    return item_fail(w, "%s must be a positive integer, got '%s'", what, got);
}

// A finite number as strtod reads it, the whole text consumed.
static bool parse_double(struct span s, double *out)
{
    char buf[SPEC_FLOAT_TEXT];
    if (s.n == 0 || s.n >= sizeof(buf))
        return false;
    memcpy(buf, s.p, s.n);
    buf[s.n] = '\0';
    char *end = NULL;
    double v = strtod(buf, &end);
    if (end != buf + s.n || !isfinite(v))
        return false;
    *out = v == 0.0 ? 0.0 : v; // no "-0" in an item
    return true;
}

// "a1xa2x..": 1..max positive integers into vals[0..*count).
static fnet_status want_list(const struct fnet_spec_where *w, const char *name, struct span s, int max,
                             int64_t *vals, int *count)
{
    char got[SPEC_CLIP + 4];
    *count = 0;
    if (s.n == 0)
        return item_fail(w, "%s needs a list of positive integers such as 4x8x8x4, got ''", name);
    struct span rest = s;
    bool more = true;
    while (more) {
        struct span v = split(&rest, 'x', &more);
        if (*count == max) {
            clip(s, got);
            return item_fail(w, "%s has more than %d values, got '%s'", name, max, got);
        }
        char what[48];
        snprintf(what, sizeof(what), "%s value %d", name, *count + 1);
        fnet_status st = want_int(w, what, v, &vals[*count]);
        if (st != FNET_OK)
            return st;
        (*count)++;
    }
    return FNET_OK;
}

// The kind's option names, ", "-joined, for "expected ..." in a message.
static void list_options(const struct fnet_layer_desc *k, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < k->n_opts; i++) {
        int c = snprintf(buf + len, cap - len, "%s%s", len ? ", " : "", k->opts[i].name);
        if (c < 0 || (size_t)c >= cap - len)
            return;
        len += (size_t)c;
    }
}

// The kind names, ", "-joined in the table's order (built ones only when built_only).
static void list_kinds(bool built_only, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < fnet_layer_kind_count(); i++) {
        const struct fnet_layer_desc *k = fnet_layer_kind_at(i);
        if (built_only && k->create == NULL)
            continue;
        int c = snprintf(buf + len, cap - len, "%s%s", len ? ", " : "", k->name);
        if (c < 0 || (size_t)c >= cap - len)
            return;
        len += (size_t)c;
    }
}

void fnet_spec_built_kinds(char *buf, size_t cap)
{
    list_kinds(true, buf, cap);
}

// "(0, 1]": a range as a message writes it.
static void range_text(const struct fnet_spec_range *r, char *buf, size_t cap)
{
    snprintf(buf, cap, "%c%g, %g%c", r->lo_open ? '(' : '[', r->lo, r->hi, r->hi_open ? ')' : ']');
}

// v inside r, also once rounded to float (1e-60 is a positive double but 0 as a float).
static bool in_range(const struct fnet_spec_range *r, double v)
{
    float f = (float)v;
    bool lo_ok = r->lo_open ? v > r->lo && (double)f > r->lo : v >= r->lo && (double)f >= r->lo;
    bool hi_ok = r->hi_open ? v < r->hi && (double)f < r->hi : v <= r->hi && (double)f <= r->hi;
    return lo_ok && hi_ok;
}

// A value of option o from its text, into *v.
static fnet_status parse_value(const struct fnet_spec_where *w, const struct fnet_spec_opt *o,
                               struct span val, struct fnet_spec_value *v)
{
    char got[SPEC_CLIP + 4], range[64];
    switch (o->type) {
    case FNET_SPEC_INT:
        v->count = 1;
        return want_int(w, o->name, val, &v->v[0]);
    case FNET_SPEC_LIST:
        return want_list(w, o->name, val, o->max_count, v->v, &v->count);
    case FNET_SPEC_FLAG:
        if (val.n == 1 && (val.p[0] == '0' || val.p[0] == '1')) {
            v->v[0] = val.p[0] == '1';
            v->count = 1;
            return FNET_OK;
        }
        clip(val, got);
        return item_fail(w, "%s must be 0 or 1, got '%s'", o->name, got);
    case FNET_SPEC_REAL: {
        double d = 0.0;
        if (!parse_double(val, &d) || !in_range(&o->range, d)) {
            clip(val, got);
            range_text(&o->range, range, sizeof(range));
            return item_fail(w, "%s must be a number in %s, got '%s'", o->name, range, got);
        }
        v->real = (float)d;
        v->count = 1;
        return FNET_OK;
    }
    }
    return fnet_fail(w->ctx, FNET_ERR_INTERNAL, "spec: option '%s' has type %d", o->name,
                     (int)o->type);
}

// Check the option "key=value" o for kind k and store it in it.
static fnet_status parse_option(const struct fnet_spec_where *w, const struct fnet_layer_desc *k,
                                struct span o, struct fnet_spec_item *it)
{
    char got[SPEC_CLIP + 4], expected[96];
    if (o.n == 0)
        return item_fail(w, "empty option (a stray ':'?); write %s", k->usage);
    const char *eq = memchr(o.p, '=', o.n);
    struct span key = o, val = {o.p + o.n, 0};
    if (eq != NULL) {
        key = trim((struct span){o.p, (size_t)(eq - o.p)});
        val = trim((struct span){eq + 1, o.n - (size_t)(eq - o.p) - 1});
    }
    if (k->n_opts == 0) {
        clip(o, got);
        return item_fail(w, "%s takes no options, got '%s'", k->name, got);
    }
    int oi = -1;
    for (int i = 0; i < k->n_opts; i++)
        if (span_is(key, k->opts[i].name))
            oi = i;
    if (oi < 0) {
        clip(key, got);
        list_options(k, expected, sizeof(expected));
        return item_fail(w, "unknown option '%s' for %s (expected %s)", got, k->name, expected);
    }
    const struct fnet_spec_opt *opt = &k->opts[oi];
    if (it->opt[oi].set)
        return item_fail(w, "option '%s' given twice", opt->name);
    it->opt[oi].set = true;
    if (eq == NULL)
        return item_fail(w, "option '%s' needs a value: write %s", opt->name, k->usage);
    return parse_value(w, opt, val, &it->opt[oi]);
}

// The argument of an ARG_REAL kind ("dropout:P"), and nothing after it.
static fnet_status parse_real_arg(const struct fnet_spec_where *w, const struct fnet_layer_desc *k,
                                  struct span rest, bool more, struct fnet_spec_item *it)
{
    char got[SPEC_CLIP + 4], range[64];
    range_text(&k->arg_range, range, sizeof(range));
    if (!more)
        return item_fail(w, "missing %s: write %s with %s in %s", k->arg_name, k->usage,
                         k->arg_symbol, range);
    struct span ps = split(&rest, ':', &more);
    double p = 0.0;
    if (!parse_double(ps, &p) || !in_range(&k->arg_range, p)) {
        clip(ps, got);
        return item_fail(w, "%s %s must be a number in %s, got '%s'", k->name, k->arg_name, range,
                         got);
    }
    if (more) {
        clip(rest, got);
        return item_fail(w, "%s takes one argument, got extra '%s'", k->name, got);
    }
    it->p = (float)p;
    return FNET_OK;
}

// Parse one trimmed item text into *it (zeroed first).
static fnet_status parse_item(fnet_ctx *ctx, int pos, struct span text, struct fnet_spec_item *it)
{
    struct fnet_spec_where w = {ctx, pos, text};
    char got[SPEC_CLIP + 4];
    memset(it, 0, sizeof(*it));
    if (text.n == 0)
        return item_fail(&w, "empty item (a stray ','?)");

    struct span rest = text;
    bool more = false;
    struct span name = split(&rest, ':', &more);
    const struct fnet_layer_desc *k = NULL;
    for (int i = 0; i < fnet_layer_kind_count(); i++)
        if (span_is(name, fnet_layer_kind_at(i)->name))
            k = fnet_layer_kind_at(i);
    if (k == NULL) {
        char kinds[160];
        list_kinds(false, kinds, sizeof(kinds));
        clip(name, got);
        return item_fail(&w, "unknown layer kind '%s' (expected %s)", got, kinds);
    }
    it->desc = k;

    switch (k->arg) {
    case FNET_SPEC_ARG_NONE:
        if (more) {
            clip(rest, got);
            return item_fail(&w, "%s takes no arguments, got '%s'", k->name, got);
        }
        return FNET_OK;
    case FNET_SPEC_ARG_REAL:
        return parse_real_arg(&w, k, rest, more, it);
    case FNET_SPEC_ARG_SIZE:
        break;
    }

    // Sized kinds: kind:N[:key=value]...
    if (!more)
        return item_fail(&w, "missing size: write %s", k->usage);
    fnet_status st = want_int(&w, "size", split(&rest, ':', &more), &it->n);
    if (st != FNET_OK)
        return st;
    while (more) {
        st = parse_option(&w, k, split(&rest, ':', &more), it);
        if (st != FNET_OK)
            return st;
    }
    for (int i = 0; i < k->n_opts; i++)
        if (k->opts[i].required && !it->opt[i].set)
            return item_fail(&w, "missing required option %s: write %s", k->opts[i].name,
                             k->usage);
    return k->check ? k->check(&w, it) : FNET_OK;
}

// Parse every item of spec[0..len); into out[] when out is not NULL, else only validate.
static fnet_status parse_items(fnet_ctx *ctx, struct span spec, struct fnet_spec_item *out)
{
    struct span rest = spec;
    bool more = true;
    int pos = 0;
    while (more) {
        struct fnet_spec_item scratch;
        struct span text = split(&rest, ',', &more);
        fnet_status st = parse_item(ctx, pos + 1, text, out ? &out[pos] : &scratch);
        if (st != FNET_OK)
            return st;
        pos++;
    }
    return FNET_OK;
}

fnet_status fnet_spec_parse(fnet_ctx *ctx, const char *spec, struct fnet_spec_item **items,
                            int *count)
{
    if (items != NULL)
        *items = NULL;
    if (count != NULL)
        *count = 0;
    if (spec == NULL || items == NULL || count == NULL)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "spec parse: spec, items and count must not "
                                                    "be NULL");
    size_t len = 0;
    int n_items = 1;
    for (; spec[len] != '\0'; len++) {
        if (len == SPEC_MAX_LEN)
            return fnet_fail(ctx, FNET_ERR_FORMAT, "spec is longer than %d bytes", SPEC_MAX_LEN);
        n_items += spec[len] == ',';
    }
    if (n_items > SPEC_MAX_ITEMS)
        return fnet_fail(ctx, FNET_ERR_FORMAT, "spec has %d items, at most %d are allowed",
                         n_items, SPEC_MAX_ITEMS);
    struct span whole = {spec, len};
    if (trim(whole).n == 0)
        return fnet_fail(ctx, FNET_ERR_FORMAT, "spec is empty: expected comma-separated layers "
                                               "such as 'dense:64,relu,dense:10'");

    // Validate everything before allocating, so a bad spec is always FNET_ERR_FORMAT.
    fnet_status st = parse_items(ctx, whole, NULL);
    if (st != FNET_OK)
        return st;
    struct fnet_spec_item *arr = fnet_calloc((size_t)n_items, sizeof(*arr));
    if (arr == NULL)
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "spec: %d items", n_items);
    st = parse_items(ctx, whole, arr);
    if (st != FNET_OK)
        goto out_free_arr;
    *items = arr;
    *count = n_items;
    return FNET_OK;
out_free_arr:
    fnet_free(arr);
    return st;
}

// Output of fnet_spec_item_format: like snprintf, len counts what would have been written.
struct out {
    char *buf;
    size_t cap, len;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct out *o, const char *fmt, ...)
{
    char dummy[1];
    char *dst = o->len < o->cap ? o->buf + o->len : dummy;
    size_t room = o->len < o->cap ? o->cap - o->len : 0;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(dst, room, fmt, ap);
    va_end(ap);
    if (k > 0)
        o->len += (size_t)k;
}

// The shortest of "%g" and "%.9g" that reads back to exactly v (9 digits always do for float).
static void put_float(struct out *o, float v)
{
    char tmp[32];
    snprintf(tmp, sizeof(tmp), "%g", (double)v);
    if ((float)strtod(tmp, NULL) != v)
        snprintf(tmp, sizeof(tmp), "%.9g", (double)v);
    put(o, "%s", tmp);
}

static void put_list(struct out *o, const char *name, const int64_t *v, int n)
{
    put(o, ":%s=", name);
    for (int i = 0; i < n; i++)
        put(o, "%s%" PRId64, i ? "x" : "", v[i]);
}

int fnet_spec_item_format(const struct fnet_spec_item *it, char *buf, size_t cap)
{
    struct out o = {buf, buf ? cap : 0, 0};
    if (o.cap > 0)
        buf[0] = '\0';
    if (it == NULL || it->desc == NULL)
        return -1;
    const struct fnet_layer_desc *k = it->desc;
    put(&o, "%s", k->name);
    if (k->arg == FNET_SPEC_ARG_SIZE)
        put(&o, ":%" PRId64, it->n);
    if (k->arg == FNET_SPEC_ARG_REAL) {
        put(&o, ":");
        put_float(&o, it->p);
    }
    for (int i = 0; i < k->n_opts; i++) {
        const struct fnet_spec_opt *opt = &k->opts[i];
        const struct fnet_spec_value *v = &it->opt[i];
        if (!v->set)
            continue;
        switch (opt->type) {
        case FNET_SPEC_INT: put(&o, ":%s=%" PRId64, opt->name, v->v[0]); break;
        case FNET_SPEC_LIST: put_list(&o, opt->name, v->v, v->count); break;
        case FNET_SPEC_REAL:
            put(&o, ":%s=", opt->name);
            put_float(&o, v->real);
            break;
        case FNET_SPEC_FLAG:
            if ((v->v[0] != 0) != opt->flag_default)
                put(&o, ":%s=%d", opt->name, v->v[0] != 0);
            break;
        }
    }
    return o.len > (size_t)INT32_MAX ? -1 : (int)o.len;
}

void fnet_spec_item_init(struct fnet_spec_item *it, const struct fnet_layer_desc *desc)
{
    memset(it, 0, sizeof(*it));
    it->desc = desc;
}

// The index of option `name` in the item's kind, or -1.
static int opt_index(const struct fnet_spec_item *it, const char *name)
{
    for (int i = 0; it->desc != NULL && i < it->desc->n_opts; i++)
        if (strcmp(it->desc->opts[i].name, name) == 0)
            return i;
    return -1;
}

bool fnet_spec_has(const struct fnet_spec_item *it, const char *name)
{
    int i = opt_index(it, name);
    return i >= 0 && it->opt[i].set;
}

int64_t fnet_spec_int(const struct fnet_spec_item *it, const char *name, int64_t dflt)
{
    int i = opt_index(it, name);
    return i >= 0 && it->opt[i].set ? it->opt[i].v[0] : dflt;
}

int fnet_spec_list(const struct fnet_spec_item *it, const char *name, int64_t *vals)
{
    int i = opt_index(it, name);
    if (i < 0 || !it->opt[i].set)
        return 0;
    memcpy(vals, it->opt[i].v, sizeof(int64_t) * (size_t)it->opt[i].count);
    return it->opt[i].count;
}

float fnet_spec_real(const struct fnet_spec_item *it, const char *name, float dflt)
{
    int i = opt_index(it, name);
    return i >= 0 && it->opt[i].set ? it->opt[i].real : dflt;
}

bool fnet_spec_flag(const struct fnet_spec_item *it, const char *name)
{
    int i = opt_index(it, name);
    if (i < 0)
        return false;
    return it->opt[i].set ? it->opt[i].v[0] != 0 : it->desc->opts[i].flag_default;
}

void fnet_spec_set_int(struct fnet_spec_item *it, const char *name, int64_t v)
{
    int i = opt_index(it, name);
    if (i >= 0)
        it->opt[i] = (struct fnet_spec_value){.set = true, .count = 1, .v = {v}};
}

void fnet_spec_set_list(struct fnet_spec_item *it, const char *name, const int64_t *vals,
                        int count)
{
    int i = opt_index(it, name);
    if (i < 0 || count < 0 || count > FNET_SPEC_MAX_LIST)
        return;
    it->opt[i] = (struct fnet_spec_value){.set = true, .count = count};
    memcpy(it->opt[i].v, vals, sizeof(int64_t) * (size_t)count);
}

void fnet_spec_set_real(struct fnet_spec_item *it, const char *name, float v)
{
    int i = opt_index(it, name);
    if (i >= 0)
        it->opt[i] = (struct fnet_spec_value){.set = true, .count = 1, .real = v};
}

void fnet_spec_set_flag(struct fnet_spec_item *it, const char *name, bool v)
{
    int i = opt_index(it, name);
    if (i >= 0)
        it->opt[i] = (struct fnet_spec_value){.set = true, .count = 1, .v = {v ? 1 : 0}};
}
