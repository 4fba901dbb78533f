/* The TT-matrix layer (Novikov et al. 2015): y = x·Wᵀ + b with W held as d cores. Forward and
 * backward are sweeps over the cores, last core first: one GEMM per core and per pass, each
 * followed by a swap of two outer axes that moves contiguous runs of r floats, and one transpose
 * at the end (docs/tt.md, "The sweep"). Parameters: the cores G_0..G_{d-1}, then the bias. The
 * TT algebra (initialization, TT-SVD, rounding, norms) is host-side: it runs on host copies that
 * this file downloads and uploads. Also the "tt" kind's descriptor.
 *
 * The tensor-ring layer (src/tn/tr_layer.c) is this layer with r_0 = r_d = R: the same sweep,
 * planner and parameters, its own kind, dense matrix and TR-SVD (docs/tn.md). */
#include "core/layer_impl.h"
#include "core/model_impl.h"
#include "dense/init.h"
#include "tn/tr.h"
#include "tn/tt.h"
#include "tn/tt_layer.h"
#include "tn/tt_merge.h"
#include "tn/tt_paired.h"
#include "tn/tt_plan.h"
#include "tn/tt_sweep.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>


struct tt_layer {
    fnet_layer base;
    struct fnet_tt_shape s;     // a ring's r[0] = r[d] = R
    bool ring;                  // the "tr" kind: W is the trace of the core products
    bool has_bias;
    bool orthogonal;            // initialize with left-orthogonal cores
    fnet_tt_plan plan;          // as asked: AUTO chooses a grouping at every reserve
    unsigned forced_mask;       // FNET_TT_PLAN_MERGE: the grouping asked for
    int64_t off[FNET_TT_MAX_D]; // core offsets within the parameters
    unsigned mask;              // the grouping in use (0: every core on its own)
    struct fnet_tt_merge merge; // the merged cores when mask != 0
    struct fnet_tt_sweep sweep; // workspaces of the sweep over the (merged) shape
};

// Largest merged core (floats) the planner considers: the dense W of FC6 (25088·4096) is not
// rebuilt on every step.
#define MAX_MERGED_FLOATS ((int64_t)1 << 24)

// Estimated cost of a grouping at batch B: the sweep over the merged shape and the merging
// itself (forward, and backward through it twice over).
static double grouping_cost(const struct fnet_tt_shape *s, unsigned mask, int64_t B)
{
    struct fnet_tt_shape ms;
    int64_t partial = 0;
    fnet_tt_merge_shape(s, mask, &ms, &partial);
    if (mask != 0 && partial > MAX_MERGED_FLOATS)
        return -1.0;
    return fnet_tt_cost_sweep(&ms, B, NULL, NULL) + 3.0 * fnet_tt_merge_macs(s, mask) +
           (mask ? 8.0 * (double)partial : 0.0);
}

// The cheapest grouping; a ring (R > 1) keeps at least two groups, since one core closing the
// ring on itself is not a sweep (its W is fnet_tr_full's).
static unsigned best_grouping(const struct fnet_tt_shape *s, int64_t B)
{
    unsigned best = 0, whole = (1u << (s->d - 1)) - 1;
    double best_cost = grouping_cost(s, 0, B);
    for (unsigned mask = 1; mask < (1u << (s->d - 1)); mask++) {
        if (mask == whole && s->r[0] > 1)
            continue;
        double c = grouping_cost(s, mask, B);
        if (c >= 0.0 && c < best_cost) {
            best_cost = c;
            best = mask;
        }
    }
    return best;
}

static unsigned planned_grouping(const struct tt_layer *t, int64_t B)
{
    switch (t->plan) {
    case FNET_TT_PLAN_SWEEP: return 0;
    case FNET_TT_PLAN_RECONSTRUCT: return (1u << (t->s.d - 1)) - 1;
    case FNET_TT_PLAN_MERGE: return t->forced_mask;
    default: return best_grouping(&t->s, B);
    }
}

// x (B, N) -> y (B, M): merge cores if the plan says so, sweep, add the bias.
static fnet_status tt_forward(fnet_layer *l, const float *x, int64_t B, float *y)
{
    struct tt_layer *t = (struct tt_layer *)l;
    fnet_ctx *ctx = l->ctx;
    const float *cores = l->w;
    if (t->mask) {
        fnet_tt_merge_forward(ctx, &t->merge, &t->s, l->w);
        cores = t->merge.mcore;
    }
    fnet_tt_sweep_forward(ctx, &t->sweep, cores, x, B, y);
    if (t->has_bias)
        ctx->be->bias_add(ctx, B, l->n_out, l->w + l->n_params - l->n_out, y);
    return FNET_OK;
}

static fnet_status tt_backward(fnet_layer *l, const float *x, const float *y, const float *dy,
                               int64_t B, float *dx, bool accumulate)
{
    struct tt_layer *t = (struct tt_layer *)l;
    fnet_ctx *ctx = l->ctx;
    int64_t M = l->n_out;
    if (t->has_bias)
        ctx->be->bias_grad(ctx, B, M, dy, l->g + l->n_params - M, accumulate);
    if (t->mask == 0) {
        fnet_tt_sweep_backward(ctx, &t->sweep, l->w, x, dy, B, l->g, accumulate, dx);
        return FNET_OK;
    }
    fnet_tt_sweep_backward(ctx, &t->sweep, t->merge.mcore, x, dy, B, t->merge.mgrad, false, dx);
    fnet_tt_merge_backward(ctx, &t->merge, &t->s, l->w, l->g, accumulate);
    return FNET_OK;
}

// Choose the grouping for batches up to B and size its workspaces.
static fnet_status tt_reserve(fnet_layer *l, int64_t B)
{
    struct tt_layer *t = (struct tt_layer *)l;
    fnet_ctx *ctx = l->ctx;
    unsigned mask = planned_grouping(t, B);
    struct fnet_tt_shape ms = t->s;
    struct fnet_tt_merge merge = {0};
    if (mask != 0) {
        fnet_status st = fnet_tt_merge_reserve(ctx, &merge, &t->s, mask);
        if (st != FNET_OK)
            return st;
        ms = merge.ms;
    }
    struct fnet_tt_sweep sweep = {0};
    fnet_status st = fnet_tt_sweep_reserve(ctx, &sweep, &ms, B);
    if (st != FNET_OK) {
        fnet_tt_merge_free(ctx, &merge);
        return st;
    }
    fnet_tt_merge_free(ctx, &t->merge);
    fnet_tt_sweep_free(ctx, &t->sweep);
    t->merge = merge;
    t->sweep = sweep;
    t->mask = mask;
    return FNET_OK;
}

static void tt_destroy(fnet_layer *l)
{
    struct tt_layer *t = (struct tt_layer *)l;
    fnet_tt_merge_free(l->ctx, &t->merge);
    fnet_tt_sweep_free(l->ctx, &t->sweep);
}

// Orthogonalized initialization of the cores w (host, by the CPU's QR on every backend, so that
// a seed gives the same layer everywhere): cores 0..d-2 replaced by the Q of their
// (r_k·m_k·n_k, r_{k+1}) unfolding (left-orthogonal, where the unfolding has at least as many rows
// as columns), then the last core scaled so that ‖W‖_F² = M·N·V, the initializer's variance.
static fnet_status orthogonalize(fnet_layer *l, double V, float *w)
{
    struct tt_layer *t = (struct tt_layer *)l;
    const struct fnet_tt_shape *s = &t->s;
    fnet_ctx *ctx = l->ctx;
    int64_t biggest = 1;
    for (int k = 0; k < s->d; k++) {
        int64_t size = s->r[k] * s->m[k] * s->n[k] * s->r[k + 1];
        biggest = size > biggest ? size : biggest;
    }
    float *Q = fnet_malloc_array((size_t)biggest, sizeof(float));
    float *R = fnet_malloc_array((size_t)biggest, sizeof(float));
    fnet_status st = FNET_OK;
    if (Q == NULL || R == NULL) {
        st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "tt orthogonal init");
        goto out_free;
    }
    for (int k = 0; k < s->d - 1; k++) {
        int64_t rows = s->r[k] * s->m[k] * s->n[k], cols = s->r[k + 1];
        if (rows < cols)
            continue;
        float *core = w + t->off[k];
        st = fnet_init_host_la->qr(ctx, rows, cols, core, Q, R);
        if (st != FNET_OK)
            goto out_free;
        memcpy(core, Q, (size_t)(rows * cols) * sizeof(float));
    }
    double norm = 0.0;
    st = fnet_tt_norm(ctx, s, w, &norm);
    if (st == FNET_OK && norm > 0.0) {
        double want = sqrt((double)l->n_in * (double)l->n_out * V);
        int64_t k = s->d - 1, size = s->r[k] * s->m[k] * s->n[k] * s->r[k + 1];
        float scale = (float)(want / norm), *last = w + t->off[k];
        for (int64_t i = 0; i < size; i++)
            last[i] *= scale;
    }
out_free:
    fnet_free(Q);
    fnet_free(R);
    return st;
}

// Cores drawn i.i.d. with variance σ² such that each entry of W, a sum of Π r_k products of d
// core entries, has the initializer's variance V: σ² = (V / Π_k r_k)^(1/d).
// The cores drawn on a host buffer (and orthogonalized there when asked), then the bias zero
static fnet_status tt_init(fnet_layer *l, fnet_init init, fnet_rng *rng,
                           struct fnet_init_out *out)
{
    struct tt_layer *t = (struct tt_layer *)l;
    const struct fnet_tt_shape *s = &t->s;
    double V = fnet_init_variance(init, l->n_in, l->n_out);
    double paths = 1.0; // r_0 = 1 for a TT, the ring rank for a ring
    for (int k = 0; k < s->d; k++)
        paths *= (double)s->r[k];
    double sigma = sqrt(pow(V / paths, 1.0 / (double)s->d));
    int64_t ncore = l->n_params - (t->has_bias ? l->n_out : 0);
    float *w = fnet_malloc_array((size_t)ncore, sizeof(float));
    if (w == NULL)
        return fnet_fail(l->ctx, FNET_ERR_OUT_OF_MEMORY, "tt init: %lld core parameters",
                         (long long)ncore);
    fnet_init_fill_std(init, sigma, rng, ncore, w);
    fnet_status st = t->orthogonal ? orthogonalize(l, V, w) : FNET_OK;
    if (st == FNET_OK) {
        fnet_init_put(out, w, ncore);
        fnet_init_put_zeros(out, l->n_params - ncore);
    }
    fnet_free(w);
    return st;
}

// Forward and backward flops of a grouping at batch B: the sweep over the merged shape and the
// merge (forward), the merge's two GEMMs per merged core (backward).
static void plan_flops(const struct fnet_tt_shape *s, unsigned mask, int64_t B,
                               double *fwd, double *bwd)
{
    struct fnet_tt_shape ms;
    fnet_tt_merge_shape(s, mask, &ms, NULL);
    fnet_tt_cost_sweep(&ms, B, fwd, bwd);
    double merge = 2.0 * fnet_tt_merge_macs(s, mask);
    *fwd += merge;
    *bwd += 2.0 * merge;
}

// Forward flops of the grouping the planner picks at batch B.
static double tt_flops(const fnet_layer *l, int64_t B)
{
    const struct tt_layer *t = (const struct tt_layer *)l;
    double fwd, bwd;
    plan_flops(&t->s, planned_grouping(t, B), B, &fwd, &bwd);
    return fwd;
}

// W (M, N), host: the cores downloaded and contracted on the host
static fnet_status tt_to_dense(const fnet_layer *l, float *W)
{
    const struct tt_layer *t = (const struct tt_layer *)l;
    float *w = fnet_layer_host_params(l);
    if (w == NULL)
        return fnet_fail(l->ctx, FNET_ERR_OUT_OF_MEMORY, "%s to_dense: %lld parameters",
                         fnet_layer_name(l), (long long)l->n_params);
    fnet_status st = t->ring ? fnet_tr_full(l->ctx, &t->s, w, W) : fnet_tt_full(l->ctx, &t->s, w, W);
    fnet_free(w);
    return st;
}

static int tt_num_tensors(const fnet_layer *l)
{
    const struct tt_layer *t = (const struct tt_layer *)l;
    return t->s.d + (t->has_bias ? 1 : 0);
}

static const char *const core_names[FNET_TT_MAX_D] = {"core0", "core1", "core2", "core3",
                                                      "core4", "core5", "core6", "core7"};

static void tt_tensor(const fnet_layer *l, int i, fnet_tensor_info *info)
{
    const struct tt_layer *t = (const struct tt_layer *)l;
    const struct fnet_tt_shape *s = &t->s;
    if (i < s->d) {
        info->name = core_names[i];
        info->ndim = 4;
        info->shape[0] = s->r[i];
        info->shape[1] = s->m[i];
        info->shape[2] = s->n[i];
        info->shape[3] = s->r[i + 1];
        info->offset = t->off[i];
        info->numel = s->r[i] * s->m[i] * s->n[i] * s->r[i + 1];
        info->decay = true;
    } else {
        info->name = "bias";
        info->ndim = 1;
        info->shape[0] = l->n_out;
        info->offset = l->n_params - l->n_out;
        info->numel = l->n_out;
        info->decay = false;
    }
}

// The canonical spec item with every mode and rank, so that a checkpoint rebuilds this layout.
static void tt_describe(const fnet_layer *l, struct fnet_spec_item *it)
{
    const struct tt_layer *t = (const struct tt_layer *)l;
    const struct fnet_tt_shape *s = &t->s;
    fnet_spec_item_init(it, l->ops->desc);
    it->n = l->n_out;
    fnet_spec_set_list(it, "ranks", s->r + 1, s->d - 1);
    if (t->ring)
        fnet_spec_set_int(it, "ring", s->r[0]);
    fnet_spec_set_list(it, "in", s->n, s->d);
    fnet_spec_set_list(it, "out", s->m, s->d);
    fnet_spec_set_flag(it, "bias", t->has_bias);
}

static fnet_status tt_round(const fnet_layer *l, double eps, int64_t max_rank, fnet_layer **out);

static const struct fnet_layer_ops tt_ops = {
    .desc = &fnet_tt_desc,
    .needs = FNET_OPS(FNET_OP_PERMUTE_021) | FNET_OPS(FNET_OP_TRANSPOSE),
    .init = tt_init,
    .reserve = tt_reserve,
    .threads_sized = true,
    .forward = tt_forward,
    .backward = tt_backward,
    .flops = tt_flops,
    .to_dense = tt_to_dense,
    .num_tensors = tt_num_tensors,
    .tensor = tt_tensor,
    .destroy = tt_destroy,
    .describe = tt_describe,
    .round = tt_round,
};

// The ring: the same ops but its kind, its dense matrix (tt_to_dense asks t->ring) and no
// rounding (TT-rounding does not apply to a ring).
static const struct fnet_layer_ops tr_ops = {
    .desc = &fnet_tr_desc,
    .needs = FNET_OPS(FNET_OP_PERMUTE_021) | FNET_OPS(FNET_OP_TRANSPOSE),
    .init = tt_init,
    .reserve = tt_reserve,
    .threads_sized = true,
    .forward = tt_forward,
    .backward = tt_backward,
    .flops = tt_flops,
    .to_dense = tt_to_dense,
    .num_tensors = tt_num_tensors,
    .tensor = tt_tensor,
    .destroy = tt_destroy,
    .describe = tt_describe,
};

fnet_tt_params fnet_tt_params_default(void)
{
    fnet_tt_params p;
    memset(&p, 0, sizeof(p));
    p.rank = 8;
    p.bias = true;
    p.plan = FNET_TT_PLAN_AUTO;
    return p;
}

static int64_t product(const int64_t *v, int n)
{
    int64_t p = 1;
    for (int k = 0; k < n; k++)
        p *= v[k];
    return p;
}

// The shape a TT layer of these sizes and settings has: validated, modes chosen or checked,
// ordered by the cost model when the modes were not given, ranks set and checked.
// "4x4x8x8" into buf
static void modes_text(const int64_t *v, int d, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int k = 0; k < d && len < cap; k++) {
        int w = snprintf(buf + len, cap - len, "%s%lld", k ? "x" : "", (long long)v[k]);
        if (w < 0)
            break;
        len += (size_t)w;
    }
}

fnet_status fnet_tt_shape_from_params(fnet_ctx *ctx, int64_t n_in, int64_t n_out,
                                      const fnet_tt_params *p, bool is_ring, int64_t ring,
                                      struct fnet_tt_shape *s)
{
    const char *K = is_ring ? "tr" : "tt";
    if (p->d < 0 || p->d > FNET_TT_MAX_D)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "%s: d must be in 2..%d, got %d", K, FNET_TT_MAX_D, p->d);
    if (p->n_in_modes < 0 || p->n_in_modes > FNET_TT_MAX_D || p->n_out_modes < 0 ||
        p->n_out_modes > FNET_TT_MAX_D)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "%s: at most %d modes, got in %d, out %d", K,
                         FNET_TT_MAX_D, p->n_in_modes, p->n_out_modes);
    if (p->n_in_modes && p->n_out_modes && p->n_in_modes != p->n_out_modes)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "%s: %d input modes but %d output modes", K,
                         p->n_in_modes, p->n_out_modes);
    int given = p->n_in_modes ? p->n_in_modes : p->n_out_modes;
    int d = given ? given : p->d;
    if (p->d && given && p->d != given)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "%s: d = %d but %d modes given", K, p->d, given);
    if (d == 0) {
        int pi = fnet_tt_prime_count(n_in), po = fnet_tt_prime_count(n_out);
        d = pi < po ? pi : po;
        d = d < 4 ? d : 4;
        if (d < 2)
            return fnet_fail(ctx, FNET_ERR_INVALID_ARG,
                             "%s: size %lld does not factor into 2 or more modes", K,
                             (long long)(pi < po ? n_in : n_out));
    }
    if (d < 2)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "%s: d must be in 2..%d, got %d", K, FNET_TT_MAX_D, d);
    memset(s, 0, sizeof(*s));
    s->d = d;
    s->r[0] = s->r[d] = ring; // uniform ranks and the planner keep a ring's boundary rank
    if (p->n_in_modes) {
        for (int k = 0; k < d; k++)
            if (p->in_modes[k] < 1)
                return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "%s: input mode %d is %lld, must be >= 1", K,
                                 k, (long long)p->in_modes[k]);
        memcpy(s->n, p->in_modes, sizeof(int64_t) * (size_t)d);
        if (product(s->n, d) != n_in)
            return fnet_fail(ctx, FNET_ERR_INVALID_ARG,
                             "%s: input modes multiply to %lld, not the input size %lld", K,
                             (long long)product(s->n, d), (long long)n_in);
    } else if (!fnet_tt_balanced_modes(n_in, d, s->n)) {
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "%s: input size %lld does not factor into %d modes", K,
                         (long long)n_in, d);
    }
    if (p->n_out_modes) {
        for (int k = 0; k < d; k++)
            if (p->out_modes[k] < 1)
                return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "%s: output mode %d is %lld, must be >= 1", K,
                                 k, (long long)p->out_modes[k]);
        memcpy(s->m, p->out_modes, sizeof(int64_t) * (size_t)d);
        if (product(s->m, d) != n_out)
            return fnet_fail(ctx, FNET_ERR_INVALID_ARG,
                             "%s: output modes multiply to %lld, not the output size %lld", K,
                             (long long)product(s->m, d), (long long)n_out);
    } else if (!fnet_tt_balanced_modes(n_out, d, s->m)) {
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "%s: output size %lld does not factor into %d modes", K,
                         (long long)n_out, d);
    }
    if (p->n_ranks) {
        if (p->n_ranks != d - 1)
            return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "%s: %d ranks given, %d cores need %d", K,
                             p->n_ranks, d, d - 1);
        s->r[0] = s->r[d] = ring;
        for (int k = 1; k < d; k++)
            s->r[k] = p->ranks[k - 1];
    } else {
        if (p->rank < 1)
            return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "%s: rank must be >= 1, got %lld", K,
                             (long long)p->rank);
        fnet_tt_uniform_ranks(s, p->rank);
    }
    if (!p->n_in_modes && !p->n_out_modes)
        fnet_tt_order_modes(s, 256, p->n_ranks ? 0 : p->rank);
    else if (!p->n_in_modes || !p->n_out_modes) {
        // one side given: the other in the order the cost model favours (n ascending, m
        // descending), which balanced_modes' ascending order gives for n already
        if (!p->n_out_modes)
            for (int a = 0, b = d - 1; a < b; a++, b--) {
                int64_t tmp = s->m[a];
                s->m[a] = s->m[b];
                s->m[b] = tmp;
            }
        if (!p->n_ranks)
            fnet_tt_uniform_ranks(s, p->rank);
    }
    for (int k = 1; ring > 1 && k < d; k++) {
        int64_t bound = fnet_tt_bond_bound(s, k, NULL, NULL);
        if (ring > bound) {
            char in[96], out[96];
            modes_text(s->n, d, in, sizeof(in));
            modes_text(s->m, d, out, sizeof(out));
            return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "tr: ring rank %lld does not fit bond %d "
                             "of the modes in=%s out=%s: r0*r%d can be at most %lld there; give "
                             "a smaller ring= or rank=, or other modes", (long long)ring, k, in,
                             out, k, (long long)bound);
        }
    }
    return is_ring ? fnet_tr_shape_check(ctx, s) : fnet_tt_shape_check(ctx, s);
}

int64_t fnet_tt_ring_rank(const fnet_tt_params *p)
{
    if (p->ring != 0)
        return p->ring;
    int64_t most = p->rank;
    for (int k = 0; k < p->n_ranks && k < FNET_TT_MAX_CORES - 1; k++)
        most = k == 0 || p->ranks[k] > most ? p->ranks[k] : most;
    return most;
}

// The layer of a checked shape, with p's bias, initialization and plan.
static fnet_status make_shaped(fnet_ctx *ctx, const struct fnet_tt_shape *s, bool ring,
                               const fnet_tt_params *p, fnet_layer **out)
{
    struct tt_layer *t = fnet_calloc(1, sizeof(*t));
    if (t == NULL)
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "%s layer", ring ? "tr" : "tt");
    t->s = *s;
    t->ring = ring;
    t->has_bias = p->bias;
    t->orthogonal = p->orthogonal;
    t->plan = p->plan;
    t->forced_mask = p->plan == FNET_TT_PLAN_MERGE ? p->merge : 0;
    for (int k = 0; k < s->d; k++)
        t->off[k] = fnet_tt_core_offset(s, k);
    int64_t M = fnet_tt_rows(s);
    fnet_status st = fnet_layer_base_init(&t->base, ctx, ring ? &tr_ops : &tt_ops,
                                          fnet_tt_cols(s), M,
                                          fnet_tt_num_params(s) + (p->bias ? M : 0));
    if (st != FNET_OK) {
        fnet_free(t);
        return st;
    }
    *out = &t->base;
    return FNET_OK;
}

// A TT layer (ring false) or a tensor ring (ring true: r_0 = r_d = p->ring, or p->rank).
fnet_status fnet_tt_make(fnet_ctx *ctx, int64_t n_in, int64_t n_out, const fnet_tt_params *p,
                         bool ring, fnet_layer **out)
{
    const char *kind = ring ? "tr" : "tt";
    if (ctx == NULL || p == NULL || out == NULL)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "%s: ctx, params and out must not be NULL",
                         kind);
    *out = NULL;
    if (n_in < 1 || n_out < 1 || n_in > ((int64_t)1 << 31) || n_out > ((int64_t)1 << 31))
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "%s: sizes must be in 1..2^31, got %lld -> %lld",
                         kind, (long long)n_in, (long long)n_out);
    if (p->plan < FNET_TT_PLAN_AUTO || p->plan > FNET_TT_PLAN_MERGE)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "%s: unknown plan %d", kind, (int)p->plan);
    int64_t R = 1;
    if (!ring && p->ring != 0)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "tt: ring rank %lld given: a TT layer has "
                         "none (use a tensor-ring layer)", (long long)p->ring);
    if (ring) {
        R = fnet_tt_ring_rank(p);
        if (R < 1)
            return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "tr: ring rank must be >= 1, got %lld",
                             (long long)R);
        if ((p->plan == FNET_TT_PLAN_RECONSTRUCT && R > 1) || p->orthogonal)
            return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "tr: %s is not available for a tensor "
                             "ring", p->orthogonal ? "orthogonal initialization"
                                                   : "the reconstruct plan");
    }
    struct fnet_tt_shape s;
    fnet_status st = fnet_tt_shape_from_params(ctx, n_in, n_out, p, ring, R, &s);
    if (st != FNET_OK)
        return st;
    if (p->plan == FNET_TT_PLAN_MERGE) {
        unsigned whole = (1u << (s.d - 1)) - 1;
        if (p->merge > whole || (ring && R > 1 && p->merge == whole))
            return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "%s: merge mask 0x%x names a bond past the "
                             "%d cores%s", kind, p->merge, s.d,
                             p->merge == whole ? " or closes the ring into one core" : "");
    }
    return make_shaped(ctx, &s, ring, p, out);
}

fnet_status fnet_tt_make_shape(fnet_ctx *ctx, const struct fnet_tt_shape *s, fnet_layer **out)
{
    *out = NULL;
    fnet_status st = fnet_tt_shape_check(ctx, s);
    if (st != FNET_OK)
        return st;
    fnet_tt_params p = fnet_tt_params_default();
    p.bias = false;
    return make_shaped(ctx, s, false, &p, out);
}

fnet_status fnet_tt_create(fnet_ctx *ctx, int64_t n_in, int64_t n_out, const fnet_tt_params *p,
                           fnet_layer **out)
{
    return fnet_tt_make(ctx, n_in, n_out, p, false, out);
}

fnet_status fnet_model_add_tt(fnet_model *m, int64_t n_out, const fnet_tt_params *p)
{
    if (m == NULL)
        return FNET_ERR_INVALID_ARG;
    fnet_layer *l;
    fnet_status st = fnet_tt_create(fnet_model_ctx(m), fnet_model_n_out(m), n_out, p, &l);
    return st != FNET_OK ? st : fnet_model_add_layer(m, l);
}

fnet_status fnet_tt_layer_info(const fnet_layer *l, int64_t batch, fnet_tt_info *info)
{
    if (l == NULL || info == NULL || (l->ops != &tt_ops && l->ops != &tr_ops) || batch < 1)
        return l ? fnet_fail(l->ctx, FNET_ERR_INVALID_ARG, "tt_layer_info: not a TT or TR layer, "
                             "or batch < 1")
                 : FNET_ERR_INVALID_ARG;
    const struct tt_layer *t = (const struct tt_layer *)l;
    memset(info, 0, sizeof(*info));
    info->d = t->s.d;
    for (int k = 0; k < t->s.d; k++) {
        info->in_modes[k] = t->s.n[k];
        info->out_modes[k] = t->s.m[k];
    }
    memcpy(info->ranks, t->s.r, sizeof(int64_t) * (size_t)(t->s.d + 1));
    unsigned full = (1u << (t->s.d - 1)) - 1;
    info->merge = planned_grouping(t, batch);
    info->ring = t->ring;
    plan_flops(&t->s, info->merge, batch, &info->flops_forward, &info->flops_backward);
    struct fnet_tt_shape ms;
    fnet_tt_merge_shape(&t->s, info->merge, &ms, NULL);
    info->merged_d = ms.d;
    double f, b;
    plan_flops(&t->s, 0, batch, &f, &b);
    info->flops_sweep = f + b;
    plan_flops(&t->s, full, batch, &f, &b);
    info->flops_reconstruct = t->s.r[0] > 1 ? 0.0 : f + b; // a ring never closes on one core
    return FNET_OK;
}

static bool is_tt(const fnet_layer *l)
{
    return l != NULL && l->ops == &tt_ops;
}

fnet_status fnet_tt_layer_from_cores(fnet_ctx *ctx, const struct fnet_tt_shape *s, bool ring,
                                     bool bias, fnet_tt_plan plan, unsigned merge,
                                     const float *cores, const float *b, fnet_layer **out)
{
    fnet_tt_params p = fnet_tt_params_default();
    p.ring = ring ? s->r[0] : 0;
    p.n_in_modes = p.n_out_modes = p.d = s->d;
    memcpy(p.in_modes, s->n, sizeof(int64_t) * (size_t)s->d);
    memcpy(p.out_modes, s->m, sizeof(int64_t) * (size_t)s->d);
    p.n_ranks = s->d - 1;
    for (int k = 1; k < s->d; k++)
        p.ranks[k - 1] = s->r[k];
    p.bias = bias;
    p.plan = plan;
    p.merge = plan == FNET_TT_PLAN_MERGE ? merge : 0;
    if (plan == FNET_TT_PLAN_MERGE && p.merge >= (1u << (s->d - 1)) - (s->r[0] > 1 ? 1u : 0u))
        p.plan = FNET_TT_PLAN_AUTO;
    fnet_status st = fnet_tt_make(ctx, fnet_tt_cols(s), fnet_tt_rows(s), &p, ring, out);
    if (st != FNET_OK)
        return st;
    int64_t nc = fnet_tt_num_params(s);
    ctx->be->upload(ctx, (*out)->w, cores, (size_t)nc * sizeof(float));
    if (bias)
        ctx->be->upload(ctx, (*out)->w + nc, b, (size_t)fnet_tt_rows(s) * sizeof(float));
    return FNET_OK;
}

fnet_status fnet_tt_from_dense(fnet_ctx *ctx, const float *W, int64_t n_out, int64_t n_in,
                               const fnet_tt_params *p, fnet_layer **out)
{
    if (ctx == NULL || W == NULL || p == NULL || out == NULL)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "tt_from_dense: NULL argument");
    *out = NULL;
    if (n_in < 1 || n_out < 1)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "tt_from_dense: sizes must be positive");
    if (p->ring != 0)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "tt_from_dense: ring rank %lld given: use "
                         "fnet_tr_from_dense", (long long)p->ring);
    struct fnet_tt_shape s;
    fnet_status st = fnet_tt_shape_from_params(ctx, n_in, n_out, p, false, 1, &s);
    if (st != FNET_OK)
        return st;
    int64_t cap = p->rank;
    if (p->n_ranks > 0)
        for (int k = 0; k < p->n_ranks; k++)
            cap = k == 0 || p->ranks[k] > cap ? p->ranks[k] : cap;
    float *cores = NULL;
    st = fnet_tt_svd(ctx, W, p->eps, cap, &s, &cores);
    if (st != FNET_OK)
        return st;
    float *zero = p->bias ? fnet_calloc((size_t)n_out, sizeof(float)) : NULL;
    if (p->bias && zero == NULL)
        st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "tt_from_dense: bias");
    else
        st = fnet_tt_layer_from_cores(ctx, &s, false, p->bias, p->plan, p->merge, cores, zero,
                                          out);
    fnet_free(zero);
    fnet_free(cores);
    return st;
}

// The layer rounded to eps and max_rank (host-side: the parameters downloaded, the rounded cores
// and the bias uploaded into *out, a new stand-alone layer); *out NULL when no rank changes.
static fnet_status tt_round(const fnet_layer *l, double eps, int64_t max_rank, fnet_layer **out)
{
    const struct tt_layer *t = (const struct tt_layer *)l;
    fnet_ctx *ctx = l->ctx;
    *out = NULL;
    float *w = fnet_layer_host_params(l);
    if (w == NULL)
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "tt round: %lld parameters",
                         (long long)l->n_params);
    struct fnet_tt_shape ns;
    float *cores = NULL;
    fnet_status st = fnet_tt_round(ctx, &t->s, w, eps, max_rank, &ns, &cores);
    bool same = true;
    for (int k = 1; st == FNET_OK && k < ns.d; k++)
        same = same && ns.r[k] == t->s.r[k];
    if (st == FNET_OK && !same)
        st = fnet_tt_layer_from_cores(ctx, &ns, false, t->has_bias, t->plan, t->forced_mask, cores,
                              t->has_bias ? w + l->n_params - l->n_out : NULL, out);
    fnet_free(cores);
    fnet_free(w);
    return st;
}

fnet_status fnet_tt_layer_round(fnet_layer *l, double eps, int64_t max_rank)
{
    if (!is_tt(l))
        return l ? fnet_fail(l->ctx, FNET_ERR_INVALID_ARG, "tt_layer_round: not a TT layer")
                 : FNET_ERR_INVALID_ARG;
    if (l->in_model)
        return fnet_fail(l->ctx, FNET_ERR_INVALID_ARG,
                         "tt_layer_round: the layer belongs to a model: use fnet_model_tt_round");
    fnet_layer *r = NULL;
    fnet_status st = tt_round(l, eps, max_rank, &r);
    if (st != FNET_OK || r == NULL)
        return st;
    // take over r's shape, parameters and workspaces (none yet), then free its shell
    struct tt_layer *t = (struct tt_layer *)l, *rt = (struct tt_layer *)r;
    fnet_ctx *ctx = l->ctx;
    fnet_tt_merge_free(ctx, &t->merge);
    fnet_tt_sweep_free(ctx, &t->sweep);
    ctx->be->free(ctx, l->own);
    l->own = r->own;
    l->w = r->w;
    l->g = r->g;
    l->n_params = r->n_params;
    l->max_batch = 0; // workspaces follow the new shape at the next forward
    t->s = rt->s;
    memcpy(t->off, rt->off, sizeof(t->off));
    t->mask = 0;
    t->plan = rt->plan;
    r->own = NULL;
    fnet_layer_free(r);
    return FNET_OK;
}

// ‖W‖_F or ⟨W_a, W_b⟩_F on host copies of the cores
static fnet_status tt_dot(const fnet_layer *a, const fnet_layer *b, double *dot, bool norm)
{
    float *wa = fnet_layer_host_params(a), *wb = norm ? wa : fnet_layer_host_params(b);
    fnet_status st;
    if (wa == NULL || wb == NULL)
        st = fnet_fail(a->ctx, FNET_ERR_OUT_OF_MEMORY, "tt norm: %lld parameters",
                       (long long)(a->n_params + (norm ? 0 : b->n_params)));
    else if (norm)
        st = fnet_tt_norm(a->ctx, &((const struct tt_layer *)a)->s, wa, dot);
    else
        st = fnet_tt_inner(a->ctx, &((const struct tt_layer *)a)->s, wa,
                           &((const struct tt_layer *)b)->s, wb, dot);
    if (!norm)
        fnet_free(wb);
    fnet_free(wa);
    return st;
}

fnet_status fnet_tt_layer_norm(const fnet_layer *l, double *norm)
{
    if (!is_tt(l) || norm == NULL)
        return l ? fnet_fail(l->ctx, FNET_ERR_INVALID_ARG, "tt_layer_norm: not a TT layer")
                 : FNET_ERR_INVALID_ARG;
    return tt_dot(l, l, norm, true);
}

fnet_status fnet_tt_layer_dot(const fnet_layer *a, const fnet_layer *b, double *dot)
{
    if (!is_tt(a) || !is_tt(b) || dot == NULL)
        return a ? fnet_fail(a->ctx, FNET_ERR_INVALID_ARG, "tt_layer_dot: not two TT layers")
                 : FNET_ERR_INVALID_ARG;
    return tt_dot(a, b, dot, false);
}

fnet_status fnet_model_tt_round(fnet_model *m, double eps, int64_t max_rank, bool *changed)
{
    return fnet_model_round_layers(m, eps, max_rank, NULL, changed);
}
