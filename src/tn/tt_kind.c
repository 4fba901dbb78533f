/* The "tt" and "tr" spec kinds (docs/design.md, "Layer kinds"): their options, the rules between
 * them, the layer an item makes and the parameters it has at least. A tr item is a tt item with
 * the ring rank (ring=, or rank=). */
#include "core/layer_kind.h"
#include "tn/tt_layer.h"

#include <inttypes.h>


// Cross-option rules of a tt item, once all its options are read.
static fnet_status tt_check(const struct fnet_spec_where *w, const struct fnet_spec_item *it)
{
    int64_t ranks[FNET_SPEC_MAX_LIST], in[FNET_SPEC_MAX_LIST], out[FNET_SPEC_MAX_LIST];
    int n_ranks = fnet_spec_list(it, "ranks", ranks), n_in = fnet_spec_list(it, "in", in);
    int n_out = fnet_spec_list(it, "out", out);
    if (fnet_spec_has(it, "rank") && fnet_spec_has(it, "ranks"))
        return fnet_spec_fail(w, "rank and ranks are exclusive: give one of them");
    if (n_in && n_out && n_in != n_out)
        return fnet_spec_fail(w, "in has %d modes but out has %d: they must have the same count",
                              n_in, n_out);
    int d = n_out ? n_out : n_in;
    if (d && n_ranks && n_ranks != d - 1)
        return fnet_spec_fail(w, "ranks has %d values but %d modes need %d (one less than the "
                              "modes)", n_ranks, d, d - 1);
    if (n_out) {
        int64_t prod = 1;
        for (int i = 0; i < n_out; i++) {
            if (prod > INT64_MAX / out[i])
                return fnet_spec_fail(w, "out modes multiply past 2^63, not the size %" PRId64,
                                      it->n);
            prod *= out[i];
        }
        if (prod != it->n)
            return fnet_spec_fail(w, "out modes multiply to %" PRId64 ", not the size %" PRId64,
                                  prod, it->n);
    }
    return FNET_OK;
}

// The layer's parameters from an item's options (a ring's rank: ring=, else fnet_tt_ring_rank's
// rule, as fnet_tr_create applies it).
static fnet_tt_params tt_params_of(const struct fnet_spec_item *it)
{
    fnet_tt_params p = fnet_tt_params_default();
    p.bias = fnet_spec_flag(it, "bias");
    p.rank = fnet_spec_int(it, "rank", p.rank);
    p.n_ranks = fnet_spec_list(it, "ranks", p.ranks);
    p.n_in_modes = fnet_spec_list(it, "in", p.in_modes);
    p.n_out_modes = fnet_spec_list(it, "out", p.out_modes);
    if (it->desc == &fnet_tr_desc)
        p.ring = fnet_spec_int(it, "ring", 0);
    return p;
}

static fnet_status tt_create_item(fnet_ctx *ctx, const struct fnet_spec_item *it, int64_t n_in,
                                  fnet_layer **out)
{
    fnet_tt_params p = tt_params_of(it);
    return fnet_tt_make(ctx, n_in, it->n, &p, it->desc == &fnet_tr_desc, out);
}

// Exact when the item names every mode and rank (as a checkpoint's spec does), else the bias.
static int64_t tt_min_params(const struct fnet_spec_item *it, int64_t n_in)
{
    fnet_tt_params p = tt_params_of(it);
    int64_t total = p.bias ? it->n : 0;
    int d = p.n_in_modes;
    if (d < 1 || p.n_out_modes != d || p.n_ranks != d - 1)
        return total;
    int64_t R = it->desc == &fnet_tr_desc ? fnet_tt_ring_rank(&p) : 1;
    for (int k = 0; k < d; k++) {
        int64_t r0 = k == 0 ? R : p.ranks[k - 1], r1 = k == d - 1 ? R : p.ranks[k];
        int64_t core = fnet_sat_mul(fnet_sat_mul(r0, p.out_modes[k]),
                                    fnet_sat_mul(p.in_modes[k], r1));
        total = fnet_sat_add(total, core);
    }
    return total;
}

static const struct fnet_spec_opt tt_opts[] = {
    {.name = "rank", .type = FNET_SPEC_INT},
    {.name = "ranks", .type = FNET_SPEC_LIST, .max_count = FNET_TT_MAX_D - 1},
    {.name = "in", .type = FNET_SPEC_LIST, .max_count = FNET_TT_MAX_D},
    {.name = "out", .type = FNET_SPEC_LIST, .max_count = FNET_TT_MAX_D},
    {.name = "bias", .type = FNET_SPEC_FLAG, .flag_default = true},
};

static const struct fnet_spec_opt tr_opts[] = {
    {.name = "rank", .type = FNET_SPEC_INT},
    {.name = "ranks", .type = FNET_SPEC_LIST, .max_count = FNET_TT_MAX_D - 1},
    {.name = "ring", .type = FNET_SPEC_INT},
    {.name = "in", .type = FNET_SPEC_LIST, .max_count = FNET_TT_MAX_D},
    {.name = "out", .type = FNET_SPEC_LIST, .max_count = FNET_TT_MAX_D},
    {.name = "bias", .type = FNET_SPEC_FLAG, .flag_default = true},
};

const struct fnet_layer_desc fnet_tt_desc = {
    .kind = FNET_LAYER_TT,
    .name = "tt",
    .usage = "tt:N[:rank=R|:ranks=R1xR2x..][:in=a1xa2x..][:out=b1xb2x..][:bias=0]",
    .arg = FNET_SPEC_ARG_SIZE,
    .opts = tt_opts,
    .n_opts = (int)(sizeof(tt_opts) / sizeof(tt_opts[0])),
    .check = tt_check,
    .create = tt_create_item,
    .min_params = tt_min_params,
};

const struct fnet_layer_desc fnet_tr_desc = {
    .kind = FNET_LAYER_TR,
    .name = "tr",
    .usage = "tr:N[:rank=R|:ranks=R1xR2x..][:ring=R0][:in=a1xa2x..][:out=b1xb2x..][:bias=0]",
    .arg = FNET_SPEC_ARG_SIZE,
    .opts = tr_opts,
    .n_opts = (int)(sizeof(tr_opts) / sizeof(tr_opts[0])),
    .check = tt_check,
    .create = tt_create_item,
    .min_params = tt_min_params,
};
