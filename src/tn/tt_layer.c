/* The TT-matrix layer (Novikov et al. 2015): y = x·Wᵀ + b with W held as d cores. Forward and
 * backward are sweeps over the cores, last core first: one GEMM per core and per pass, each
 * followed by a swap of two outer axes that moves contiguous runs of r floats, and one transpose
 * at the end (docs/tt.md, "The sweep"). Parameters: the cores G_0..G_{d-1}, then the bias. */
#include "core/layer_impl.h"
#include "io/spec.h"
#include "tn/tt.h"
#include "tn/tt_plan.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

struct tt_layer {
    fnet_layer base;
    struct fnet_tt_shape s;
    bool has_bias;
    fnet_tt_plan plan;
    int64_t off[FNET_TT_MAX_D]; // core offsets within the parameters
    int64_t max_core;           // floats of the largest core
    // workspaces for max_batch (backend memory):
    float *state;               // S_k, the input of step k, for k = 0..d-2 (S_{d-1} is x)
    int64_t state_off[FNET_TT_MAX_D];
    float *gbuf[2];             // GEMM outputs and backward gradients, the largest state
    float *core;                // one core permuted to (m, r, c)
    float *dcore;               // one core's gradient in (m, r, c)
};

// Step k of the sweep at batch B: a rows, c = n_k·r_{k+1} contracted columns.
static int64_t step_rows(const struct fnet_tt_shape *s, int k, int64_t B)
{
    int64_t a = B;
    for (int l = k + 1; l < s->d; l++)
        a *= s->m[l];
    for (int l = 0; l < k; l++)
        a *= s->n[l];
    return a;
}

static int64_t step_cols(const struct fnet_tt_shape *s, int k)
{
    return s->n[k] * s->r[k + 1];
}

// x (B, N) -> y (B, M). Step k = d-1..0, with the core permuted to Gp_k (m_k, r_k, c) (a few KiB):
//   C (a, m_k·r_k) = S_k (a, c) · Gp_kᵀ                    one GEMM
//   S_{k-1} (m_k, a, r_k) = C (a, m_k, r_k) with its outer axes swapped
// which puts the new output mode outermost and r_k innermost: the next step's layout. After
// step 0, C is (M/m_0, B·m_0) and its transpose is y. (docs/tt.md, "The sweep")
static void tt_forward(fnet_layer *l, const float *x, int64_t B, float *y)
{
    struct tt_layer *t = (struct tt_layer *)l;
    const struct fnet_tt_shape *s = &t->s;
    fnet_ctx *ctx = l->ctx;
    const float *in = x;
    for (int k = s->d - 1; k >= 0; k--) {
        int64_t a = step_rows(s, k, B), c = step_cols(s, k), m = s->m[k], r = s->r[k];
        ctx->be->permute_021(ctx, r, m, c, l->w + t->off[k], t->core, false);
        float *C = t->gbuf[0];
        ctx->be->sgemm(ctx, false, true, a, m * r, c, 1.0f, in, c, t->core, c, 0.0f, C, m * r);
        if (k > 0) {
            float *out = t->state + t->state_off[k - 1];
            ctx->be->permute_021(ctx, a, m, r, C, out, false);
            in = out;
        } else {
            ctx->be->transpose(ctx, a / B, B * m, C, y); // r_0 = 1
        }
    }
    if (t->has_bias)
        ctx->be->bias_add(ctx, B, l->n_out, l->w + l->n_params - l->n_out, y);
}

// Backward through the steps in reverse (k = 0..d-1) with dOut_k (a, m_k·r_k), the gradient of
// step k's GEMM output, starting from dyᵀ:
//   dGp_k (m_k·r_k, c) = dOut_kᵀ · S_k        added to the core after swapping back to (r, m, c)
//   dS_k (a, c)        = dOut_k · Gp_k         = (m_{k+1}, a', r_{k+1}): swapped, it is dOut_{k+1};
//                                              at k = d-1 it is dx itself
static void tt_backward(fnet_layer *l, const float *x, const float *y, const float *dy,
                        int64_t B, float *dx, bool accumulate)
{
    struct tt_layer *t = (struct tt_layer *)l;
    const struct fnet_tt_shape *s = &t->s;
    fnet_ctx *ctx = l->ctx;
    int64_t M = l->n_out;
    if (t->has_bias)
        ctx->be->bias_grad(ctx, B, M, dy, l->g + l->n_params - M, accumulate);
    float *dout = t->gbuf[0], *tmp = t->gbuf[1];
    ctx->be->transpose(ctx, B * s->m[0], M / s->m[0], dy, dout);
    for (int k = 0; k < s->d; k++) {
        int64_t a = step_rows(s, k, B), c = step_cols(s, k), m = s->m[k], r = s->r[k];
        const float *sin = k == s->d - 1 ? x : t->state + t->state_off[k];
        ctx->be->sgemm(ctx, true, false, m * r, c, a, 1.0f, dout, m * r, sin, c, 0.0f, t->dcore, c);
        ctx->be->permute_021(ctx, m, r, c, t->dcore, l->g + t->off[k], accumulate);
        if (k == s->d - 1 && dx == NULL)
            break;
        ctx->be->permute_021(ctx, r, m, c, l->w + t->off[k], t->core, false);
        float *ds = k == s->d - 1 ? dx : tmp;
        ctx->be->sgemm(ctx, false, false, a, c, m * r, 1.0f, dout, m * r, t->core, c, 0.0f, ds, c);
        if (k < s->d - 1) {
            // dS_k is (m_{k+1}, a_{k+1}, r_{k+1}); dOut_{k+1} is (a_{k+1}, m_{k+1}, r_{k+1})
            int64_t m1 = s->m[k + 1], r1 = s->r[k + 1];
            ctx->be->permute_021(ctx, m1, step_rows(s, k + 1, B), r1, ds, dout, false);
        }
    }
}

static fnet_status tt_reserve(fnet_layer *l, int64_t B)
{
    struct tt_layer *t = (struct tt_layer *)l;
    const struct fnet_tt_shape *s = &t->s;
    fnet_ctx *ctx = l->ctx;
    int64_t total = 0, biggest = B * l->n_out, off[FNET_TT_MAX_D] = {0};
    for (int k = 0; k < s->d; k++) {
        int64_t in_size = step_rows(s, k, B) * step_cols(s, k);         // S_k
        int64_t out_size = step_rows(s, k, B) * s->m[k] * s->r[k];       // GEMM output
        if (k < s->d - 1) {
            off[k] = total;
            total += in_size;
        }
        biggest = in_size > biggest ? in_size : biggest;
        biggest = out_size > biggest ? out_size : biggest;
    }
    float *state = ctx->be->alloc(ctx, (size_t)(total > 0 ? total : 1) * sizeof(float));
    float *g0 = ctx->be->alloc(ctx, (size_t)biggest * sizeof(float));
    float *g1 = ctx->be->alloc(ctx, (size_t)biggest * sizeof(float));
    float *core = ctx->be->alloc(ctx, (size_t)t->max_core * sizeof(float));
    float *dcore = ctx->be->alloc(ctx, (size_t)t->max_core * sizeof(float));
    if (state == NULL || g0 == NULL || g1 == NULL || core == NULL || dcore == NULL) {
        ctx->be->free(ctx, state);
        ctx->be->free(ctx, g0);
        ctx->be->free(ctx, g1);
        ctx->be->free(ctx, core);
        ctx->be->free(ctx, dcore);
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "tt layer workspace for batch %lld (%lld floats)",
                         (long long)B, (long long)(total + 2 * biggest));
    }
    ctx->be->free(ctx, t->state);
    ctx->be->free(ctx, t->gbuf[0]);
    ctx->be->free(ctx, t->gbuf[1]);
    ctx->be->free(ctx, t->core);
    ctx->be->free(ctx, t->dcore);
    t->state = state;
    t->gbuf[0] = g0;
    t->gbuf[1] = g1;
    t->core = core;
    t->dcore = dcore;
    memcpy(t->state_off, off, sizeof(off));
    return FNET_OK;
}

static void tt_destroy(fnet_layer *l)
{
    struct tt_layer *t = (struct tt_layer *)l;
    l->ctx->be->free(l->ctx, t->state);
    l->ctx->be->free(l->ctx, t->gbuf[0]);
    l->ctx->be->free(l->ctx, t->gbuf[1]);
    l->ctx->be->free(l->ctx, t->core);
    l->ctx->be->free(l->ctx, t->dcore);
}

// Cores drawn i.i.d. with variance σ² such that each entry of W, a sum of Π r_k products of d
// core entries, has the initializer's variance V: σ² = (V / Π_k r_k)^(1/d).
static fnet_status tt_init(fnet_layer *l, fnet_init init, fnet_rng *rng)
{
    struct tt_layer *t = (struct tt_layer *)l;
    const struct fnet_tt_shape *s = &t->s;
    double fi = (double)l->n_in, fo = (double)l->n_out, V;
    switch (init) {
    case FNET_INIT_GLOROT_UNIFORM:
    case FNET_INIT_GLOROT_NORMAL: V = 2.0 / (fi + fo); break;
    case FNET_INIT_HE: V = 2.0 / fi; break;
    case FNET_INIT_NORMAL: V = 1e-4; break;
    default: V = 0.05 * 0.05 / 3.0; break;
    }
    double paths = 1.0;
    for (int k = 1; k < s->d; k++)
        paths *= (double)s->r[k];
    double sigma = sqrt(pow(V / paths, 1.0 / (double)s->d));
    bool uniform = init == FNET_INIT_GLOROT_UNIFORM || init == FNET_INIT_UNIFORM;
    int64_t ncore = l->n_params - (t->has_bias ? l->n_out : 0);
    for (int64_t i = 0; i < ncore; i++)
        l->w[i] = uniform ? (float)(sigma * sqrt(3.0) * (2.0 * fnet_rng_uniform(rng) - 1.0))
                          : (float)(sigma * fnet_rng_normal(rng));
    if (t->has_bias)
        memset(l->w + ncore, 0, (size_t)l->n_out * sizeof(float));
    return FNET_OK;
}

static double tt_flops(const fnet_layer *l, int64_t B)
{
    double fwd = 0.0;
    fnet_tt_cost_sweep(&((const struct tt_layer *)l)->s, B, &fwd, NULL);
    return fwd;
}

static fnet_status tt_to_dense(const fnet_layer *l, float *W)
{
    const struct tt_layer *t = (const struct tt_layer *)l;
    return fnet_tt_full(l->ctx, &t->s, l->w, W);
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
static int tt_describe(const fnet_layer *l, char *buf, size_t cap)
{
    const struct tt_layer *t = (const struct tt_layer *)l;
    const struct fnet_tt_shape *s = &t->s;
    struct fnet_spec_item it = {.kind = FNET_LAYER_TT, .n = l->n_out};
    it.n_ranks = s->d - 1;
    it.n_in_modes = it.n_out_modes = s->d;
    for (int k = 0; k < s->d; k++) {
        it.in_modes[k] = s->n[k];
        it.out_modes[k] = s->m[k];
        if (k > 0)
            it.ranks[k - 1] = s->r[k];
    }
    if (!t->has_bias)
        return snprintf(buf, cap, "tt-nobias:%lld", (long long)l->n_out);
    return fnet_spec_item_format(&it, buf, cap);
}

static const struct fnet_layer_ops tt_ops = {
    .kind = FNET_LAYER_TT,
    .init = tt_init,
    .reserve = tt_reserve,
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
static fnet_status tt_shape_from_params(fnet_ctx *ctx, int64_t n_in, int64_t n_out,
                                        const fnet_tt_params *p, struct fnet_tt_shape *s)
{
    if (p->d < 0 || p->d > FNET_TT_MAX_D)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "tt: d must be in 2..%d, got %d", FNET_TT_MAX_D, p->d);
    if (p->n_in_modes < 0 || p->n_in_modes > FNET_TT_MAX_D || p->n_out_modes < 0 ||
        p->n_out_modes > FNET_TT_MAX_D)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "tt: at most %d modes, got in %d, out %d",
                         FNET_TT_MAX_D, p->n_in_modes, p->n_out_modes);
    if (p->n_in_modes && p->n_out_modes && p->n_in_modes != p->n_out_modes)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "tt: %d input modes but %d output modes",
                         p->n_in_modes, p->n_out_modes);
    int given = p->n_in_modes ? p->n_in_modes : p->n_out_modes;
    int d = given ? given : p->d;
    if (p->d && given && p->d != given)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "tt: d = %d but %d modes given", p->d, given);
    if (d == 0) {
        int pi = fnet_tt_prime_count(n_in), po = fnet_tt_prime_count(n_out);
        d = pi < po ? pi : po;
        d = d < 4 ? d : 4;
        if (d < 2)
            return fnet_fail(ctx, FNET_ERR_INVALID_ARG,
                             "tt: size %lld does not factor into 2 or more modes",
                             (long long)(pi < po ? n_in : n_out));
    }
    if (d < 2)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "tt: d must be in 2..%d, got %d", FNET_TT_MAX_D, d);
    memset(s, 0, sizeof(*s));
    s->d = d;
    if (p->n_in_modes) {
        for (int k = 0; k < d; k++)
            if (p->in_modes[k] < 1)
                return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "tt: input mode %d is %lld, must be >= 1",
                                 k, (long long)p->in_modes[k]);
        memcpy(s->n, p->in_modes, sizeof(int64_t) * (size_t)d);
        if (product(s->n, d) != n_in)
            return fnet_fail(ctx, FNET_ERR_INVALID_ARG,
                             "tt: input modes multiply to %lld, not the input size %lld",
                             (long long)product(s->n, d), (long long)n_in);
    } else if (!fnet_tt_balanced_modes(n_in, d, s->n)) {
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "tt: input size %lld does not factor into %d modes",
                         (long long)n_in, d);
    }
    if (p->n_out_modes) {
        for (int k = 0; k < d; k++)
            if (p->out_modes[k] < 1)
                return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "tt: output mode %d is %lld, must be >= 1",
                                 k, (long long)p->out_modes[k]);
        memcpy(s->m, p->out_modes, sizeof(int64_t) * (size_t)d);
        if (product(s->m, d) != n_out)
            return fnet_fail(ctx, FNET_ERR_INVALID_ARG,
                             "tt: output modes multiply to %lld, not the output size %lld",
                             (long long)product(s->m, d), (long long)n_out);
    } else if (!fnet_tt_balanced_modes(n_out, d, s->m)) {
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "tt: output size %lld does not factor into %d modes",
                         (long long)n_out, d);
    }
    if (p->n_ranks) {
        if (p->n_ranks != d - 1)
            return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "tt: %d ranks given, %d cores need %d",
                             p->n_ranks, d, d - 1);
        s->r[0] = s->r[d] = 1;
        for (int k = 1; k < d; k++)
            s->r[k] = p->ranks[k - 1];
    } else {
        if (p->rank < 1)
            return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "tt: rank must be >= 1, got %lld",
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
    return fnet_tt_shape_check(ctx, s);
}

fnet_status fnet_tt_create(fnet_ctx *ctx, int64_t n_in, int64_t n_out, const fnet_tt_params *p,
                           fnet_layer **out)
{
    if (ctx == NULL || p == NULL || out == NULL)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "tt: ctx, params and out must not be NULL");
    *out = NULL;
    if (n_in < 1 || n_out < 1 || n_in > ((int64_t)1 << 31) || n_out > ((int64_t)1 << 31))
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "tt: sizes must be in 1..2^31, got %lld -> %lld",
                         (long long)n_in, (long long)n_out);
    if (p->plan == FNET_TT_PLAN_RECONSTRUCT)
        return fnet_fail(ctx, FNET_ERR_UNSUPPORTED, "tt: the reconstruct plan is not built yet");
    if (p->plan != FNET_TT_PLAN_AUTO && p->plan != FNET_TT_PLAN_SWEEP)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "tt: unknown plan %d", (int)p->plan);
    if (p->orthogonal)
        return fnet_fail(ctx, FNET_ERR_UNSUPPORTED, "tt: orthogonalized initialization is not built yet");
    struct fnet_tt_shape s;
    fnet_status st = tt_shape_from_params(ctx, n_in, n_out, p, &s);
    if (st != FNET_OK)
        return st;
    struct tt_layer *t = fnet_calloc(1, sizeof(*t));
    if (t == NULL)
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "tt layer");
    t->s = s;
    t->has_bias = p->bias;
    t->plan = FNET_TT_PLAN_SWEEP;
    for (int k = 0; k < s.d; k++) {
        t->off[k] = fnet_tt_core_offset(&s, k);
        int64_t size = s.r[k] * s.m[k] * s.n[k] * s.r[k + 1];
        t->max_core = size > t->max_core ? size : t->max_core;
    }
    st = fnet_layer_base_init(&t->base, ctx, &tt_ops, n_in, n_out,
                              fnet_tt_num_params(&s) + (p->bias ? n_out : 0));
    if (st != FNET_OK) {
        fnet_free(t);
        return st;
    }
    *out = &t->base;
    return FNET_OK;
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
    if (l == NULL || info == NULL || l->ops != &tt_ops || batch < 1)
        return l ? fnet_fail(l->ctx, FNET_ERR_INVALID_ARG, "tt_layer_info: not a TT layer, or batch < 1")
                 : FNET_ERR_INVALID_ARG;
    const struct tt_layer *t = (const struct tt_layer *)l;
    memset(info, 0, sizeof(*info));
    info->d = t->s.d;
    for (int k = 0; k < t->s.d; k++) {
        info->in_modes[k] = t->s.n[k];
        info->out_modes[k] = t->s.m[k];
    }
    memcpy(info->ranks, t->s.r, sizeof(int64_t) * (size_t)(t->s.d + 1));
    double sf, sb, rf, rb;
    fnet_tt_cost_sweep(&t->s, batch, &sf, &sb);
    fnet_tt_cost_reconstruct(&t->s, batch, &rf, &rb);
    info->plan = t->plan;
    info->flops_forward = sf;
    info->flops_backward = sb;
    info->flops_sweep = sf + sb;
    info->flops_reconstruct = rf + rb;
    return FNET_OK;
}
