/* Layer kinds: one descriptor per kind, defined in the kind's own folder, and the one table of
 * them (src/core/layer_kinds.c). The spec parser and formatter, the model builder, the kind
 * names and the checkpoint loader walk the table; nothing outside a kind's folder knows a kind.
 * Adding a kind: its folder, its descriptor, one row in the table, its tests (README, "Adding a
 * layer kind"; docs/design.md, "Layer kinds"). */
#ifndef FNET_CORE_LAYER_KIND_H
#define FNET_CORE_LAYER_KIND_H

#include "core/internal.h"
#include "io/spec.h"

struct fnet_layer_desc {
    fnet_layer_kind kind;
    const char *name;  // in a spec: "dense"
    const char *usage; // what a message tells the user to write: "dense:N[:bias=0]"
    enum fnet_spec_arg arg;
    // ARG_REAL: what the number is called in messages ("probability"), its symbol in usage
    // ("P") and its range
    const char *arg_name, *arg_symbol;
    struct fnet_spec_range arg_range;
    const struct fnet_spec_opt *opts; // the options, in canonical order
    int n_opts;
    // Rules between options, once all are read (required ones are checked before); report
    // with fnet_spec_fail(w, ...). NULL: none.
    fnet_status (*check)(const struct fnet_spec_where *w, const struct fnet_spec_item *it);
    // The layer an item makes on n_in inputs (stand-alone: the model adds it). NULL: the kind
    // is parsed and checked but not built yet (FNET_ERR_UNSUPPORTED when a model asks for it).
    fnet_status (*create)(fnet_ctx *ctx, const struct fnet_spec_item *it, int64_t n_in,
                          fnet_layer **out);
    // A lower bound on the parameters the item has on n_in inputs, saturating at INT64_MAX
    // (exact where the item names every size): the checkpoint loader refuses a file whose
    // tensor data cannot hold them before anything is allocated. NULL: 0.
    int64_t (*min_params)(const struct fnet_spec_item *it, int64_t n_in);
};

/* The table: every kind, in the order the spec grammar lists them. */
int fnet_layer_kind_count(void);
const struct fnet_layer_desc *fnet_layer_kind_at(int i);
/* The descriptor of a kind, or NULL. */
const struct fnet_layer_desc *fnet_layer_kind_desc(fnet_layer_kind kind);

/* The descriptors, each defined in its kind's folder. */
extern const struct fnet_layer_desc fnet_dense_desc;   // src/dense/dense.c
extern const struct fnet_layer_desc fnet_relu_desc;    // src/dense/activation.c
extern const struct fnet_layer_desc fnet_tanh_desc;    // src/dense/activation.c
extern const struct fnet_layer_desc fnet_sigmoid_desc; // src/dense/activation.c
extern const struct fnet_layer_desc fnet_dropout_desc; // src/dense/dropout.c
extern const struct fnet_layer_desc fnet_tt_desc;      // src/tn/tt_kind.c
extern const struct fnet_layer_desc fnet_lowrank_desc; // src/lowrank/lowrank_kind.c
extern const struct fnet_layer_desc fnet_circ_desc;    // src/circulant/circ_kind.c
extern const struct fnet_layer_desc fnet_sparse_desc;  // src/sparse/csr.c
extern const struct fnet_layer_desc fnet_tr_desc;      // src/tn/tt_kind.c
extern const struct fnet_layer_desc fnet_tucker_desc;  // src/tn/tn_kind.c
extern const struct fnet_layer_desc fnet_cp_desc;      // src/tn/tn_kind.c

/* Saturating arithmetic for min_params. */
static inline int64_t fnet_sat_mul(int64_t a, int64_t b)
{
    return a != 0 && b > INT64_MAX / a ? INT64_MAX : a * b;
}
static inline int64_t fnet_sat_add(int64_t a, int64_t b)
{
    return a > INT64_MAX - b ? INT64_MAX : a + b;
}

#endif
