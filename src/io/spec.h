/* The model-spec parser: "dense:1024,relu,tt:1024:rank=8,relu,dense:10" into items, and the
 * canonical text of an item. The grammar of each kind (its argument, its options and their
 * checks) comes from the kind's descriptor (core/layer_kind.h); the parser walks the table of
 * descriptors and knows no kind by name. docs/design.md, "The spec grammar". */
#ifndef FNET_IO_SPEC_H
#define FNET_IO_SPEC_H

#include "core/internal.h"

#define FNET_SPEC_MAX_OPTS 8 // options of one kind
#define FNET_SPEC_MAX_LIST 8 // values of one list option ("in=4x8x8x4")

struct fnet_layer_desc;

/* The argument after the kind's name. */
enum fnet_spec_arg {
    FNET_SPEC_ARG_NONE,  // "relu": nothing may follow
    FNET_SPEC_ARG_SIZE,  // "dense:N[:key=value]...": N outputs, a positive integer, then options
    FNET_SPEC_ARG_REAL,  // "dropout:P": one number in the descriptor's range, no options
};

/* The type of an option's value. */
enum fnet_spec_type {
    FNET_SPEC_INT,  // a positive integer 1..2^31-1
    FNET_SPEC_LIST, // positive integers joined by 'x', at most max_count of them
    FNET_SPEC_REAL, // a finite number in the option's range
    FNET_SPEC_FLAG, // 0 or 1
};

/* A real range: lo..hi, each end open or closed ("(0, 1]" is lo 0 open, hi 1 closed). */
struct fnet_spec_range {
    double lo, hi;
    bool lo_open, hi_open;
};

/* One option of a kind. */
struct fnet_spec_opt {
    const char *name;
    enum fnet_spec_type type;
    bool required;
    int max_count;                // LIST: values at most
    struct fnet_spec_range range; // REAL
    bool flag_default;            // FLAG: the value when absent (written only when different)
};

/* The value of one option in an item. */
struct fnet_spec_value {
    bool set;
    int count;                      // LIST: values in v
    int64_t v[FNET_SPEC_MAX_LIST];  // INT: v[0]; LIST: v[0..count); FLAG: v[0] (0 or 1)
    float real;                     // REAL
};

/* One parsed item: its kind's descriptor, the argument and the option values, in the order of
 * the descriptor's options. Read and set them with the accessors below, by option name. */
struct fnet_spec_item {
    const struct fnet_layer_desc *desc;
    int64_t n; // ARG_SIZE: outputs; else 0
    float p;   // ARG_REAL: the number; else 0
    struct fnet_spec_value opt[FNET_SPEC_MAX_OPTS];
};

/* Parse a spec. On success *items (fnet_free) holds *count >= 1 items. On failure returns
 * FNET_ERR_FORMAT (or _INVALID_ARG for NULL, _OUT_OF_MEMORY) with a message naming the item's
 * position (1-based) and text, e.g. "spec item 3 'dense:0': size must be a positive integer". */
fnet_status fnet_spec_parse(fnet_ctx *ctx, const char *spec, struct fnet_spec_item **items,
                            int *count);

/* Write the canonical text of one item into buf (size cap), like snprintf: returns the full
 * length even when cap cuts it (buf is NUL-terminated when cap > 0), or -1 for a NULL item. No
 * whitespace; options in the descriptor's order, each one that is set (a flag only when it
 * differs from its default). */
int fnet_spec_item_format(const struct fnet_spec_item *it, char *buf, size_t cap);

/* The names of the kinds that are built, ", "-joined in the table's order ("dense, tt, relu, ..."),
 * for messages. */
void fnet_spec_built_kinds(char *buf, size_t cap);

/* An empty item of kind desc (what a layer's describe fills). */
void fnet_spec_item_init(struct fnet_spec_item *it, const struct fnet_layer_desc *desc);

/* Option values by name. The getters return the default when the option is not set (a flag's
 * default is its descriptor's); fnet_spec_list returns the count (0 when not set). Asking for a
 * name the kind does not have is a bug: the getters then return the default, the setters do
 * nothing. */
int64_t fnet_spec_int(const struct fnet_spec_item *it, const char *name, int64_t dflt);
int fnet_spec_list(const struct fnet_spec_item *it, const char *name, int64_t *vals);
float fnet_spec_real(const struct fnet_spec_item *it, const char *name, float dflt);
bool fnet_spec_flag(const struct fnet_spec_item *it, const char *name);
bool fnet_spec_has(const struct fnet_spec_item *it, const char *name);
void fnet_spec_set_int(struct fnet_spec_item *it, const char *name, int64_t v);
void fnet_spec_set_list(struct fnet_spec_item *it, const char *name, const int64_t *vals,
                        int count);
void fnet_spec_set_real(struct fnet_spec_item *it, const char *name, float v);
void fnet_spec_set_flag(struct fnet_spec_item *it, const char *name, bool v);

/* Where a descriptor's check reports: the item's position and text. */
struct fnet_spec_where;

/* FNET_ERR_FORMAT with "spec item <pos> '<text>': <what>", file:line being the check that
 * failed. Every message fits the ctx's 512 bytes. */
fnet_status fnet_spec_fail_at(const struct fnet_spec_where *w, const char *file, int line,
                              const char *fmt, ...) __attribute__((format(printf, 4, 5)));
#define fnet_spec_fail(w, ...) fnet_spec_fail_at((w), __FILE__, __LINE__, __VA_ARGS__)

#endif
