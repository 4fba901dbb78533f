/* Model-spec parser ("dense:1024,relu,tt:1024:rank=8,relu,dense:10" into items) and the canonical
 * text of one item. Grammar: DESIGN.md "The command-line contract". ASCII whitespace is tolerated
 * (never required) around items and around every ':', '=' and 'x'; kind and option names are
 * case-sensitive. Limits: 64 KiB of text, 1024 items, integers 1..2^31-1. */
#include "io/spec.h"

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

#define SPEC_KINDS "dense, tt, lowrank, circ, sparse, relu, tanh, sigmoid, dropout"

// A piece of the (unmodified, NUL-terminated) spec: p[0..n).
struct span {
    const char *p;
    size_t n;
};

// Where a message points: the item's 1-based position and its (trimmed) text.
struct where {
    fnet_ctx *ctx;
    int pos;
    struct span text;
};

enum opt_bit {
    OPT_RANK = 1u << 0,
    OPT_RANKS = 1u << 1,
    OPT_IN = 1u << 2,
    OPT_OUT = 1u << 3,
    OPT_BLOCK = 1u << 4,
    OPT_DENSITY = 1u << 5,
    OPT_BIAS = 1u << 6,
};

static const struct {
    const char *name;
    unsigned bit;
} options[] = {
    {"rank", OPT_RANK}, {"ranks", OPT_RANKS},   {"in", OPT_IN},
    {"out", OPT_OUT},   {"block", OPT_BLOCK}, {"density", OPT_DENSITY},
    {"bias", OPT_BIAS},
};

// Kinds in the order of the "expected ..." list; usage is what a message tells the user to write.
static const struct {
    const char *name;
    fnet_layer_kind kind;
    unsigned opts;
    const char *usage;
} kinds[] = {
    {"dense", FNET_LAYER_DENSE, OPT_BIAS, "dense:N[:bias=0]"},
    {"tt", FNET_LAYER_TT, OPT_RANK | OPT_RANKS | OPT_IN | OPT_OUT | OPT_BIAS,
     "tt:N[:rank=R|:ranks=R1xR2x..][:in=a1xa2x..][:out=b1xb2x..][:bias=0]"},
    {"lowrank", FNET_LAYER_LOWRANK, OPT_RANK, "lowrank:N:rank=R"},
    {"circ", FNET_LAYER_CIRC, OPT_BLOCK, "circ:N:block=B"},
    {"sparse", FNET_LAYER_SPARSE, OPT_DENSITY, "sparse:N:density=D"},
    {"relu", FNET_LAYER_RELU, 0, "relu"},
    {"tanh", FNET_LAYER_TANH, 0, "tanh"},
    {"sigmoid", FNET_LAYER_SIGMOID, 0, "sigmoid"},
    {"dropout", FNET_LAYER_DROPOUT, 0, "dropout:P"},
};

#define N_OPTIONS ((int)(sizeof(options) / sizeof(options[0])))
#define N_KINDS ((int)(sizeof(kinds) / sizeof(kinds[0])))

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

static fnet_status item_fail_at(const struct where *w, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

// "spec.c:<line>: spec item <pos> '<text>': <what>", FNET_ERR_FORMAT, line being the check that
// failed. Every message fits the ctx's 512 bytes.
#define item_fail(w, ...) item_fail_at((w), __LINE__, __VA_ARGS__)

static fnet_status item_fail_at(const struct where *w, int line, const char *fmt, ...)
{
    char what[320], item[SPEC_CLIP + 4];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    clip(w->text, item);
    return fnet_fail_at(w->ctx, FNET_ERR_FORMAT, __FILE__, line, "spec item %d '%s': %s", w->pos,
                        item, what);
}

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
static fnet_status want_int(const struct where *w, const char *what, struct span s, int64_t *out)
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
static fnet_status want_list(const struct where *w, const char *name, struct span s, int max,
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

static void list_options(unsigned opts, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < N_OPTIONS; i++) {
        if (!(opts & options[i].bit))
            continue;
        int k = snprintf(buf + len, cap - len, "%s%s", len ? ", " : "", options[i].name);
        if (k < 0 || (size_t)k >= cap - len)
            return;
        len += (size_t)k;
    }
}

// Check the option "key=value" o for kind k and store it in it; seen accumulates option bits.
static fnet_status parse_option(const struct where *w, int k, struct span o, unsigned *seen,
                                struct fnet_spec_item *it)
{
    char got[SPEC_CLIP + 4], expected[64];
    if (o.n == 0)
        return item_fail(w, "empty option (a stray ':'?); write %s", kinds[k].usage);
    const char *eq = memchr(o.p, '=', o.n);
    struct span key = o, val = {o.p + o.n, 0};
    if (eq != NULL) {
        key = trim((struct span){o.p, (size_t)(eq - o.p)});
        val = trim((struct span){eq + 1, o.n - (size_t)(eq - o.p) - 1});
    }
    int oi = -1;
    for (int i = 0; i < N_OPTIONS; i++)
        if (span_is(key, options[i].name))
            oi = i;
    if (kinds[k].opts == 0) {
        clip(o, got);
        return item_fail(w, "%s takes no options, got '%s'", kinds[k].name, got);
    }
    if (oi < 0 || !(kinds[k].opts & options[oi].bit)) {
        clip(key, got);
        list_options(kinds[k].opts, expected, sizeof(expected));
        return item_fail(w, "unknown option '%s' for %s (expected %s)", got, kinds[k].name,
                         expected);
    }
    const char *name = options[oi].name;
    if (*seen & options[oi].bit)
        return item_fail(w, "option '%s' given twice", name);
    *seen |= options[oi].bit;
    if (eq == NULL)
        return item_fail(w, "option '%s' needs a value: write %s", name, kinds[k].usage);
    switch (options[oi].bit) {
    case OPT_RANK:
        return want_int(w, "rank", val, &it->rank);
    case OPT_BLOCK:
        return want_int(w, "block", val, &it->block);
    case OPT_RANKS:
        // d cores have d-1 inner ranks, and d <= FNET_SPEC_MAX_MODES.
        return want_list(w, "ranks", val, FNET_SPEC_MAX_MODES - 1, it->ranks, &it->n_ranks);
    case OPT_IN:
        return want_list(w, "in", val, FNET_SPEC_MAX_MODES, it->in_modes, &it->n_in_modes);
    case OPT_OUT:
        return want_list(w, "out", val, FNET_SPEC_MAX_MODES, it->out_modes, &it->n_out_modes);
    case OPT_BIAS: {
        struct span v = val;
        if (v.n == 1 && (v.p[0] == '0' || v.p[0] == '1')) {
            it->no_bias = v.p[0] == '0';
            return FNET_OK;
        }
        clip(val, got);
        return item_fail(w, "bias must be 0 or 1, got '%s'", got);
    }
    case OPT_DENSITY: {
        double d = 0.0;
        if (!parse_double(val, &d) || !(d > 0.0 && d <= 1.0) || !((float)d > 0.0f)) {
            clip(val, got);
            return item_fail(w, "density must be a number in (0, 1], got '%s'", got);
        }
        it->density = (float)d;
        return FNET_OK;
    }
    default:
        return fnet_fail(w->ctx, FNET_ERR_INTERNAL, "spec: option bit %u", options[oi].bit);
    }
}

// Cross-option rules of a tt item, once all its options are read.
static fnet_status check_tt(const struct where *w, unsigned seen, const struct fnet_spec_item *it)
{
    if ((seen & OPT_RANK) && (seen & OPT_RANKS))
        return item_fail(w, "rank and ranks are exclusive: give one of them");
    if (it->n_in_modes && it->n_out_modes && it->n_in_modes != it->n_out_modes)
        return item_fail(w, "in has %d modes but out has %d: they must have the same count",
                         it->n_in_modes, it->n_out_modes);
    int d = it->n_out_modes ? it->n_out_modes : it->n_in_modes;
    if (d && it->n_ranks && it->n_ranks != d - 1)
        return item_fail(w, "ranks has %d values but %d modes need %d (one less than the modes)",
                         it->n_ranks, d, d - 1);
    if (it->n_out_modes) {
        int64_t prod = 1;
        for (int i = 0; i < it->n_out_modes; i++) {
            if (prod > INT64_MAX / it->out_modes[i])
                return item_fail(w, "out modes multiply past 2^63, not the size %" PRId64,
                                 it->n);
            prod *= it->out_modes[i];
        }
        if (prod != it->n)
            return item_fail(w, "out modes multiply to %" PRId64 ", not the size %" PRId64,
                             prod, it->n);
    }
    return FNET_OK;
}

// Parse one trimmed item text into *it (zeroed first).
static fnet_status parse_item(fnet_ctx *ctx, int pos, struct span text, struct fnet_spec_item *it)
{
    struct where w = {ctx, pos, text};
    char got[SPEC_CLIP + 4];
    memset(it, 0, sizeof(*it));
    if (text.n == 0)
        return item_fail(&w, "empty item (a stray ','?)");

    struct span rest = text;
    bool more = false;
    struct span name = split(&rest, ':', &more);
    int k = -1;
    for (int i = 0; i < N_KINDS; i++)
        if (span_is(name, kinds[i].name))
            k = i;
    if (k < 0) {
        clip(name, got);
        return item_fail(&w, "unknown layer kind '%s' (expected " SPEC_KINDS ")", got);
    }
    it->kind = kinds[k].kind;

    switch (it->kind) {
    case FNET_LAYER_RELU:
    case FNET_LAYER_TANH:
    case FNET_LAYER_SIGMOID:
        if (more) {
            clip(rest, got);
            return item_fail(&w, "%s takes no arguments, got '%s'", kinds[k].name, got);
        }
        return FNET_OK;
    case FNET_LAYER_DROPOUT: {
        if (!more)
            return item_fail(&w, "missing probability: write dropout:P with P in [0, 1)");
        struct span ps = split(&rest, ':', &more);
        double p = 0.0;
        if (!parse_double(ps, &p) || !(p >= 0.0 && p < 1.0) || !((float)p < 1.0f)) {
            clip(ps, got);
            return item_fail(&w, "dropout probability must be a number in [0, 1), got '%s'", got);
        }
        if (more) {
            clip(rest, got);
            return item_fail(&w, "dropout takes one argument, got extra '%s'", got);
        }
        it->p = (float)p;
        return FNET_OK;
    }
    default:
        break;
    }

    // Sized kinds: kind:N[:key=value]...
    if (!more)
        return item_fail(&w, "missing size: write %s", kinds[k].usage);
    fnet_status st = want_int(&w, "size", split(&rest, ':', &more), &it->n);
    if (st != FNET_OK)
        return st;
    unsigned seen = 0;
    while (more) {
        st = parse_option(&w, k, split(&rest, ':', &more), &seen, it);
        if (st != FNET_OK)
            return st;
    }
    switch (it->kind) {
    case FNET_LAYER_TT:
        return check_tt(&w, seen, it);
    case FNET_LAYER_LOWRANK:
        if (!(seen & OPT_RANK))
            return item_fail(&w, "missing required option rank: write %s", kinds[k].usage);
        return FNET_OK;
    case FNET_LAYER_CIRC:
        if (!(seen & OPT_BLOCK))
            return item_fail(&w, "missing required option block: write %s", kinds[k].usage);
        if (it->n % it->block != 0)
            return item_fail(&w, "block %" PRId64 " does not divide the size %" PRId64, it->block,
                             it->n);
        return FNET_OK;
    case FNET_LAYER_SPARSE:
        if (!(seen & OPT_DENSITY))
            return item_fail(&w, "missing required option density: write %s", kinds[k].usage);
        return FNET_OK;
    default:
        return FNET_OK;
    }
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

/* Canonical text: no whitespace, tt options in the order rank|ranks, in, out (rank wins when an
 * item carries both, which the parser never makes). Like snprintf: returns the full length even
 * when cap cuts it (buf is NUL-terminated when cap > 0), or -1 for a NULL item or unknown kind. */
int fnet_spec_item_format(const struct fnet_spec_item *it, char *buf, size_t cap)
{
    struct out o = {buf, buf ? cap : 0, 0};
    if (o.cap > 0)
        buf[0] = '\0';
    if (it == NULL)
        return -1;
    const char *name = NULL;
    for (int i = 0; i < N_KINDS; i++)
        if (kinds[i].kind == it->kind)
            name = kinds[i].name;
    if (name == NULL)
        return -1;
    put(&o, "%s", name);
    switch (it->kind) {
    case FNET_LAYER_DENSE:
        put(&o, ":%" PRId64, it->n);
        if (it->no_bias)
            put(&o, ":bias=0");
        break;
    case FNET_LAYER_TT:
        put(&o, ":%" PRId64, it->n);
        if (it->rank > 0)
            put(&o, ":rank=%" PRId64, it->rank);
        else if (it->n_ranks > 0)
            put_list(&o, "ranks", it->ranks, it->n_ranks);
        if (it->n_in_modes > 0)
            put_list(&o, "in", it->in_modes, it->n_in_modes);
        if (it->n_out_modes > 0)
            put_list(&o, "out", it->out_modes, it->n_out_modes);
        if (it->no_bias)
            put(&o, ":bias=0");
        break;
    case FNET_LAYER_LOWRANK:
        put(&o, ":%" PRId64 ":rank=%" PRId64, it->n, it->rank);
        break;
    case FNET_LAYER_CIRC:
        put(&o, ":%" PRId64 ":block=%" PRId64, it->n, it->block);
        break;
    case FNET_LAYER_SPARSE:
        put(&o, ":%" PRId64 ":density=", it->n);
        put_float(&o, it->density);
        break;
    case FNET_LAYER_DROPOUT:
        put(&o, ":");
        put_float(&o, it->p);
        break;
    default:
        break;
    }
    return o.len > (size_t)INT32_MAX ? -1 : (int)o.len;
}
