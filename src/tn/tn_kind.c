/* The "tucker" and "cp" spec kinds (docs/design.md, "Layer kinds"): their options, the rules
 * between them, the layer an item makes and the parameters it has at least. */
#include "core/layer_kind.h"
#include "tn/tt_plan.h"

#include <factornet/tn.h>

#include <inttypes.h>
#include <string.h>

// Rules both kinds share: out modes multiply to the size (the input size is checked when the
// layer is made), and both sides' modes together number at most FNET_TN_MAX_MODES.
static fnet_status check_modes(const struct fnet_spec_where *w, const struct fnet_spec_item *it,
                               int *n_in, int *n_out)
{
    int64_t in[FNET_SPEC_MAX_LIST], out[FNET_SPEC_MAX_LIST];
    *n_in = fnet_spec_list(it, "in", in);
    *n_out = fnet_spec_list(it, "out", out);
    if (*n_in + *n_out > FNET_TN_MAX_MODES)
        return fnet_spec_fail(w, "in has %d modes and out %d: at most %d in all", *n_in, *n_out,
                              FNET_TN_MAX_MODES);
    int64_t prod = 1;
    for (int i = 0; i < *n_out; i++) {
        if (out[i] < 1 || prod > INT64_MAX / out[i])
            return fnet_spec_fail(w, "out modes must be >= 1 and multiply to the size %" PRId64,
                                  it->n);
        prod *= out[i];
    }
    if (*n_out && prod != it->n)
        return fnet_spec_fail(w, "out modes multiply to %" PRId64 ", not the size %" PRId64, prod,
                              it->n);
    return FNET_OK;
}

static fnet_status tucker_check(const struct fnet_spec_where *w, const struct fnet_spec_item *it)
{
    int n_in, n_out;
    fnet_status st = check_modes(w, it, &n_in, &n_out);
    if (st != FNET_OK)
        return st;
    if (fnet_spec_has(it, "rank") && fnet_spec_has(it, "ranks"))
        return fnet_spec_fail(w, "rank and ranks are exclusive: give one of them");
    int64_t ranks[FNET_SPEC_MAX_LIST];
    int n_ranks = fnet_spec_list(it, "ranks", ranks);
    int modes = (n_in ? n_in : 1) + (n_out ? n_out : 1);
    if (n_ranks && n_ranks != modes)
        return fnet_spec_fail(w, "ranks has %d values but the %d output and %d input modes need "
                              "%d (one per mode, outputs first)", n_ranks, n_out ? n_out : 1,
                              n_in ? n_in : 1, modes);
    return FNET_OK;
}

static fnet_tucker_params tucker_params_of(const struct fnet_spec_item *it)
{
    fnet_tucker_params p = fnet_tucker_params_default();
    p.bias = fnet_spec_flag(it, "bias");
    p.rank = fnet_spec_int(it, "rank", p.rank);
    p.n_ranks = fnet_spec_list(it, "ranks", p.ranks);
    p.n_in_modes = fnet_spec_list(it, "in", p.in_modes);
    p.n_out_modes = fnet_spec_list(it, "out", p.out_modes);
    return p;
}

static fnet_status tucker_create_item(fnet_ctx *ctx, const struct fnet_spec_item *it,
                                      int64_t n_in, fnet_layer **out)
{
    fnet_tucker_params p = tucker_params_of(it);
    return fnet_tucker_create(ctx, n_in, it->n, &p, out);
}

// Exact: a side without modes is one mode, its size; without ranks=, each rank is rank= capped
// at its mode (as fnet_tucker_create makes it).
static int64_t tucker_min_params(const struct fnet_spec_item *it, int64_t n_in)
{
    fnet_tucker_params p = tucker_params_of(it);
    int64_t dims[2 * FNET_TN_MAX_MODES];
    int q = p.n_out_modes ? p.n_out_modes : 1, np = p.n_in_modes ? p.n_in_modes : 1;
    for (int k = 0; k < q; k++)
        dims[k] = p.n_out_modes ? p.out_modes[k] : it->n;
    for (int k = 0; k < np; k++)
        dims[q + k] = p.n_in_modes ? p.in_modes[k] : n_in;
    int64_t total = p.bias ? it->n : 0, core = 1;
    for (int k = 0; k < q + np; k++) {
        int64_t r = p.n_ranks == q + np ? p.ranks[k] : (p.rank < dims[k] ? p.rank : dims[k]);
        r = r > 0 ? r : 0;
        core = fnet_sat_mul(core, r);
        total = fnet_sat_add(total, fnet_sat_mul(dims[k], r));
    }
    return fnet_sat_add(total, core);
}

static const struct fnet_spec_opt tucker_opts[] = {
    {.name = "rank", .type = FNET_SPEC_INT},
    {.name = "ranks", .type = FNET_SPEC_LIST, .max_count = FNET_TN_MAX_MODES},
    {.name = "in", .type = FNET_SPEC_LIST, .max_count = FNET_TN_MAX_MODES},
    {.name = "out", .type = FNET_SPEC_LIST, .max_count = FNET_TN_MAX_MODES},
    {.name = "bias", .type = FNET_SPEC_FLAG, .flag_default = true},
};

const struct fnet_layer_desc fnet_tucker_desc = {
    .kind = FNET_LAYER_TUCKER,
    .name = "tucker",
    .usage = "tucker:N[:rank=R|:ranks=R1xR2x..][:in=a1xa2x..][:out=b1xb2x..][:bias=0]",
    .arg = FNET_SPEC_ARG_SIZE,
    .opts = tucker_opts,
    .n_opts = (int)(sizeof(tucker_opts) / sizeof(tucker_opts[0])),
    .check = tucker_check,
    .create = tucker_create_item,
    .min_params = tucker_min_params,
};

static fnet_status cp_check(const struct fnet_spec_where *w, const struct fnet_spec_item *it)
{
    int n_in, n_out;
    return check_modes(w, it, &n_in, &n_out);
}

static fnet_cp_params cp_params_of(const struct fnet_spec_item *it)
{
    fnet_cp_params p = fnet_cp_params_default();
    p.bias = fnet_spec_flag(it, "bias");
    p.rank = fnet_spec_int(it, "rank", p.rank);
    p.n_in_modes = fnet_spec_list(it, "in", p.in_modes);
    p.n_out_modes = fnet_spec_list(it, "out", p.out_modes);
    return p;
}

static fnet_status cp_create_item(fnet_ctx *ctx, const struct fnet_spec_item *it, int64_t n_in,
                                  fnet_layer **out)
{
    fnet_cp_params p = cp_params_of(it);
    return fnet_cp_create(ctx, n_in, it->n, &p, out);
}

// R times the modes' sum, exact when both sides' modes are named (a checkpoint's spec), else
// with the smallest mode sum a side of that size can have (the size itself when prime).
static int64_t side_sum(int n_given, const int64_t *given, int64_t size)
{
    int64_t sum = 0, modes[2];
    for (int k = 0; k < n_given; k++)
        sum = fnet_sat_add(sum, given[k]);
    if (n_given)
        return sum;
    if (fnet_tt_prime_count(size) >= 2 && fnet_tt_balanced_modes(size, 2, modes))
        return modes[0] + modes[1];
    return size;
}

static int64_t cp_min_params(const struct fnet_spec_item *it, int64_t n_in)
{
    fnet_cp_params p = cp_params_of(it);
    int64_t sum = fnet_sat_add(side_sum(p.n_out_modes, p.out_modes, it->n),
                               side_sum(p.n_in_modes, p.in_modes, n_in));
    int64_t total = fnet_sat_mul(p.rank > 0 ? p.rank : 0, sum);
    return p.bias ? fnet_sat_add(total, it->n) : total;
}

static const struct fnet_spec_opt cp_opts[] = {
    {.name = "rank", .type = FNET_SPEC_INT, .required = true},
    {.name = "in", .type = FNET_SPEC_LIST, .max_count = FNET_TN_MAX_MODES},
    {.name = "out", .type = FNET_SPEC_LIST, .max_count = FNET_TN_MAX_MODES},
    {.name = "bias", .type = FNET_SPEC_FLAG, .flag_default = true},
};

const struct fnet_layer_desc fnet_cp_desc = {
    .kind = FNET_LAYER_CP,
    .name = "cp",
    .usage = "cp:N:rank=R[:in=a1xa2x..][:out=b1xb2x..][:bias=0]",
    .arg = FNET_SPEC_ARG_SIZE,
    .opts = cp_opts,
    .n_opts = (int)(sizeof(cp_opts) / sizeof(cp_opts[0])),
    .check = cp_check,
    .create = cp_create_item,
    .min_params = cp_min_params,
};
