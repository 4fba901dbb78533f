/* The Tucker layer (docs/tn.md, "Tucker"): W (M, N), read as the tensor (m_0..m_{q-1},
 * n_0..n_{p-1}), is core ×_k U_k. y = x·Wᵀ + b runs as the input factors' mode products
 * z = x·(V_0 ⊗ ··· ⊗ V_{p-1}) (B, S), the core GEMM u = z·Cᵀ (B, T), and the output factors' mode
 * products y = u·(U_0 ⊗ ··· ⊗ U_{q-1})ᵀ. Each side's mode products are a TT-matrix of rank 1 (the
 * Kronecker product of its factors, one core per factor): the TT layer runs them, with the
 * grouping its cost model picks (merging adjacent factors into their Kronecker product where
 * that is cheaper) and its chunked, threaded sweep. Parameters: the core C (T, S), the factors
 * U_k (m_k, t_k), then V_k (n_k, s_k), then the bias. The "tucker" spec kind: src/tn/tn_kind.c. */
#include "core/layer_impl.h"
#include "core/model_impl.h"
#include "dense/init.h"
#include "tn/tn_modes.h"
#include "tn/tt_layer.h"
#include "tn/tucker.h"

#include <factornet/tn.h>

#include <math.h>
#include <string.h>

struct tucker {
    fnet_layer base;
    struct fnet_tucker_shape ts; // D = q + p modes: the outputs', then the inputs'
    int q, p;
    int64_t T, S;                // Π output ranks, Π input ranks: the core is (T, S)
    bool has_bias;
    fnet_layer *in, *out;        // the mode products: rank-1 TT layers N -> S and T -> M
    float *vt, *dvt;             // the in side's TT cores V_kᵀ (s_k, n_k), and their gradient
    float *z, *dz, *u, *du;      // (max_batch, S), (max_batch, T)
};

// Where factor k (0..D-1) starts in the parameters, and input factor k in vt.
static int64_t factor_off(const struct tucker *t, int k)
{
    return t->T * t->S + fnet_tucker_factor_offset(&t->ts, k);
}

static int64_t vt_off(const struct tucker *t, int k)
{
    return fnet_tucker_factor_offset(&t->ts, t->q + k) - fnet_tucker_factor_offset(&t->ts, t->q);
}

// The out side's cores are the output factors themselves, wherever the parameters live now (a
// model moves them into its flat vector).
static void point_out(struct tucker *t)
{
    t->out->w = t->base.w + factor_off(t, 0);
    t->out->g = t->base.g + factor_off(t, 0);
}

static fnet_status tucker_reserve(fnet_layer *l, int64_t B)
{
    struct tucker *t = (struct tucker *)l;
    fnet_status st = t->in->ops->reserve(t->in, B);
    if (st == FNET_OK)
        st = t->out->ops->reserve(t->out, B);
    if (st != FNET_OK)
        return st;
    float **const bufs[] = {&t->z, &t->dz, &t->u, &t->du};
    const int64_t counts[] = {B * t->S, B * t->S, B * t->T, B * t->T};
    return fnet_layer_workspaces(l, 4, bufs, counts, "tucker workspace", B);
}

static fnet_status tucker_forward(fnet_layer *l, const float *x, int64_t B, float *y)
{
    struct tucker *t = (struct tucker *)l;
    fnet_ctx *ctx = l->ctx;
    for (int k = 0; k < t->p; k++) // V_k (n, s) -> the TT core (1, s, n, 1)
        ctx->be->transpose(ctx, t->ts.dims[t->q + k], t->ts.ranks[t->q + k],
                           l->w + factor_off(t, t->q + k), t->vt + vt_off(t, k));
    point_out(t);
    fnet_status st = t->in->ops->forward(t->in, x, B, t->z);
    if (st != FNET_OK)
        return st;
    ctx->be->sgemm(ctx, false, true, B, t->T, t->S, 1.0f, t->z, t->S, l->w, t->S, 0.0f, t->u, t->T);
    st = t->out->ops->forward(t->out, t->u, B, y);
    if (st == FNET_OK && t->has_bias)
        ctx->be->bias_add(ctx, B, l->n_out, l->w + l->n_params - l->n_out, y);
    return st;
}

// dU (+)= through the out side; dC (T, S) (+)= duᵀ·z; dz = du·C; dV through the in side, whose
// core gradients (s, n) are transposed back onto the factors (n, s).
static fnet_status tucker_backward(fnet_layer *l, const float *x, const float *y, const float *dy,
                                   int64_t B, float *dx, bool accumulate)
{
    struct tucker *t = (struct tucker *)l;
    fnet_ctx *ctx = l->ctx;
    float beta = accumulate ? 1.0f : 0.0f;
    if (t->has_bias)
        ctx->be->bias_grad(ctx, B, l->n_out, dy, l->g + l->n_params - l->n_out, accumulate);
    point_out(t);
    fnet_status st = t->out->ops->backward(t->out, t->u, y, dy, B, t->du, accumulate);
    if (st != FNET_OK)
        return st;
    ctx->be->sgemm(ctx, true, false, t->T, t->S, B, 1.0f, t->du, t->T, t->z, t->S, beta, l->g,
                   t->S);
    ctx->be->sgemm(ctx, false, false, B, t->S, t->T, 1.0f, t->du, t->T, l->w, t->S, 0.0f, t->dz,
                   t->S);
    st = t->in->ops->backward(t->in, x, t->z, t->dz, B, dx, false);
    for (int k = 0; st == FNET_OK && k < t->p; k++)
        ctx->be->permute_021(ctx, t->ts.ranks[t->q + k], t->ts.dims[t->q + k], 1,
                             t->dvt + vt_off(t, k), l->g + factor_off(t, t->q + k), accumulate);
    return st;
}

// Factors with orthonormal columns (the Q of a Gaussian draw), so that ‖W‖_F = ‖C‖_F; the core
// drawn by the initializer with variance V·M·N/(T·S), so that W's entries have the dense
// initializer's variance V on average. Host-side, with the initializations' linear algebra.
static fnet_status tucker_init(fnet_layer *l, fnet_init init, fnet_rng *rng,
                               struct fnet_init_out *out)
{
    struct tucker *t = (struct tucker *)l;
    fnet_ctx *ctx = l->ctx;
    double V = fnet_init_variance(init, l->n_in, l->n_out);
    double sigma = sqrt(V * (double)l->n_in * (double)l->n_out / ((double)t->T * (double)t->S));
    int64_t biggest = t->T * t->S;
    for (int k = 0; k < t->ts.D; k++)
        biggest = t->ts.dims[k] * t->ts.ranks[k] > biggest ? t->ts.dims[k] * t->ts.ranks[k] : biggest;
    float *a = fnet_malloc_array((size_t)biggest, sizeof(float));
    float *q = fnet_malloc_array((size_t)biggest, sizeof(float));
    float *r = fnet_malloc_array((size_t)biggest, sizeof(float));
    fnet_status st = FNET_OK;
    if (a == NULL || q == NULL || r == NULL) {
        st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "tucker init: %lld floats", (long long)biggest);
        goto out_free;
    }
    fnet_init_fill_std(init, sigma, rng, t->T * t->S, a);
    fnet_init_put(out, a, t->T * t->S);
    for (int k = 0; k < t->ts.D; k++) {
        int64_t n = t->ts.dims[k], rk = t->ts.ranks[k];
        for (int64_t i = 0; i < n * rk; i++)
            a[i] = (float)fnet_rng_normal(rng);
        st = fnet_init_host_la->qr(ctx, n, rk, a, q, r);
        if (st != FNET_OK)
            goto out_free;
        fnet_init_put(out, q, n * rk);
    }
    fnet_init_put_zeros(out, l->n_params - (t->T * t->S + fnet_tucker_factor_size(&t->ts)));
out_free:
    fnet_free(a);
    fnet_free(q);
    fnet_free(r);
    return st;
}

static double tucker_flops(const fnet_layer *l, int64_t B)
{
    const struct tucker *t = (const struct tucker *)l;
    return t->in->ops->flops(t->in, B) + t->out->ops->flops(t->out, B) +
           2.0 * (double)B * (double)t->T * (double)t->S;
}

// W (M, N), host: core ×_k U_k on a host copy
static fnet_status tucker_to_dense(const fnet_layer *l, float *W)
{
    const struct tucker *t = (const struct tucker *)l;
    float *w = fnet_layer_host_params(l);
    if (w == NULL)
        return fnet_fail(l->ctx, FNET_ERR_OUT_OF_MEMORY, "tucker to_dense: %lld parameters",
                         (long long)l->n_params);
    fnet_status st = fnet_tucker_full(l->ctx, &t->ts, w, w + t->T * t->S, W);
    fnet_free(w);
    return st;
}

static int tucker_num_tensors(const fnet_layer *l)
{
    const struct tucker *t = (const struct tucker *)l;
    return 1 + t->ts.D + (t->has_bias ? 1 : 0);
}

// core (T, S): the core tensor (t_0..t_{q-1}, s_0..s_{p-1}) as a matrix; factor<k>; bias
static void tucker_tensor(const fnet_layer *l, int i, fnet_tensor_info *info)
{
    const struct tucker *t = (const struct tucker *)l;
    if (i == 0) {
        *info = (fnet_tensor_info){.name = "core", .ndim = 2, .shape = {t->T, t->S},
                                   .offset = 0, .numel = t->T * t->S, .decay = true};
    } else if (i <= t->ts.D) {
        int k = i - 1;
        *info = (fnet_tensor_info){.name = fnet_tn_factor_name(k), .ndim = 2,
                                   .shape = {t->ts.dims[k], t->ts.ranks[k]},
                                   .offset = factor_off(t, k),
                                   .numel = t->ts.dims[k] * t->ts.ranks[k], .decay = true};
    } else {
        *info = (fnet_tensor_info){.name = "bias", .ndim = 1, .shape = {l->n_out},
                                   .offset = l->n_params - l->n_out, .numel = l->n_out};
    }
}

static void tucker_destroy(fnet_layer *l)
{
    struct tucker *t = (struct tucker *)l;
    fnet_ctx *ctx = l->ctx;
    fnet_layer_free(t->in);
    fnet_layer_free(t->out);
    ctx->be->free(ctx, t->vt);
    ctx->be->free(ctx, t->dvt);
    ctx->be->free(ctx, t->z);
    ctx->be->free(ctx, t->dz);
    ctx->be->free(ctx, t->u);
    ctx->be->free(ctx, t->du);
}

static void tucker_describe(const fnet_layer *l, struct fnet_spec_item *it)
{
    const struct tucker *t = (const struct tucker *)l;
    fnet_spec_item_init(it, &fnet_tucker_desc);
    it->n = l->n_out;
    fnet_spec_set_list(it, "ranks", t->ts.ranks, t->ts.D);
    fnet_spec_set_list(it, "in", t->ts.dims + t->q, t->p);
    fnet_spec_set_list(it, "out", t->ts.dims, t->q);
    fnet_spec_set_flag(it, "bias", t->has_bias);
}

static const struct fnet_layer_ops tucker_ops = {
    .desc = &fnet_tucker_desc,
    .needs = FNET_OPS(FNET_OP_PERMUTE_021) | FNET_OPS(FNET_OP_TRANSPOSE),
    .init = tucker_init,
    .reserve = tucker_reserve,
    .threads_sized = true, // the TT sweeps keep a workspace per worker
    .forward = tucker_forward,
    .backward = tucker_backward,
    .flops = tucker_flops,
    .to_dense = tucker_to_dense,
    .num_tensors = tucker_num_tensors,
    .tensor = tucker_tensor,
    .destroy = tucker_destroy,
    .describe = tucker_describe,
};

fnet_tucker_params fnet_tucker_params_default(void)
{
    fnet_tucker_params p;
    memset(&p, 0, sizeof(p));
    p.rank = 16;
    p.bias = true;
    p.hooi_iters = 2;
    return p;
}

// The shape of a layer n_in -> n_out: the output modes then the input modes, and their ranks.
static fnet_status shape_of(fnet_ctx *ctx, int64_t n_in, int64_t n_out,
                            const fnet_tucker_params *p, struct fnet_tucker_shape *ts, int *q)
{
    int n_q = 0, n_p = 0;
    memset(ts, 0, sizeof(*ts));
    fnet_status st = fnet_tn_side_modes(ctx, "tucker", false, n_out, p->n_out_modes, p->out_modes,
                                        1, FNET_TN_MAX_MODES, ts->dims, &n_q);
    if (st == FNET_OK)
        st = fnet_tn_side_modes(ctx, "tucker", true, n_in, p->n_in_modes, p->in_modes, 1,
                                FNET_TN_MAX_MODES, ts->dims + n_q, &n_p);
    if (st != FNET_OK)
        return st;
    if (n_q + n_p > FNET_TN_MAX_MODES)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "tucker: %d output and %d input modes, at "
                         "most %d in all", n_q, n_p, FNET_TN_MAX_MODES);
    ts->D = n_q + n_p;
    if (p->n_ranks != 0 && p->n_ranks != ts->D)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "tucker: %d ranks given, the %d output and %d "
                         "input modes need %d", p->n_ranks, n_q, n_p, ts->D);
    if (p->n_ranks == 0 && p->rank < 1)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "tucker: rank must be >= 1, got %lld",
                         (long long)p->rank);
    for (int k = 0; k < ts->D; k++) { // a uniform rank is a maximum
        ts->ranks[k] = p->n_ranks ? p->ranks[k] : (p->rank < ts->dims[k] ? p->rank : ts->dims[k]);
        bool in = k >= n_q;
        if (ts->ranks[k] < 1 || ts->ranks[k] > ts->dims[k])
            return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "tucker: rank %lld of %s mode %d is "
                             "outside 1..%lld, the mode's size", (long long)ts->ranks[k],
                             in ? "input" : "output", in ? k - n_q : k, (long long)ts->dims[k]);
    }
    *q = n_q;
    return fnet_tucker_shape_check(ctx, ts);
}

// A rank-1 TT-matrix of d cores mapping the modes `from` to `to`.
static fnet_status kron_layer(fnet_ctx *ctx, int d, const int64_t *to, const int64_t *from,
                              fnet_layer **out)
{
    struct fnet_tt_shape s;
    memset(&s, 0, sizeof(s));
    s.d = d;
    for (int k = 0; k < d; k++) {
        s.m[k] = to[k];
        s.n[k] = from[k];
    }
    for (int k = 0; k <= d; k++)
        s.r[k] = 1;
    return fnet_tt_make_shape(ctx, &s, out);
}

fnet_status fnet_tucker_create(fnet_ctx *ctx, int64_t n_in, int64_t n_out,
                               const fnet_tucker_params *p, fnet_layer **out)
{
    if (ctx == NULL || p == NULL || out == NULL)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "tucker: ctx, params and out must not be NULL");
    *out = NULL;
    if (n_in < 1 || n_out < 1 || n_in > ((int64_t)1 << 31) || n_out > ((int64_t)1 << 31))
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "tucker: sizes must be in 1..2^31, got %lld -> "
                         "%lld", (long long)n_in, (long long)n_out);
    struct fnet_tucker_shape ts;
    int q = 0;
    fnet_status st = shape_of(ctx, n_in, n_out, p, &ts, &q);
    if (st != FNET_OK)
        return st;
    struct tucker *t = fnet_calloc(1, sizeof(*t));
    if (t == NULL)
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "tucker layer");
    t->ts = ts;
    t->q = q;
    t->p = ts.D - q;
    t->T = t->S = 1;
    for (int k = 0; k < ts.D; k++)
        *(k < q ? &t->T : &t->S) *= ts.ranks[k];
    t->has_bias = p->bias;
    int64_t nf = fnet_tucker_factor_size(&ts), nvt = nf - fnet_tucker_factor_offset(&ts, q);
    st = fnet_layer_base_init(&t->base, ctx, &tucker_ops, n_in, n_out,
                              t->T * t->S + nf + (p->bias ? n_out : 0));
    if (st != FNET_OK) {
        fnet_free(t);
        return st;
    }
    st = kron_layer(ctx, t->p, ts.ranks + q, ts.dims + q, &t->in);
    if (st == FNET_OK)
        st = kron_layer(ctx, q, ts.dims, ts.ranks, &t->out);
    if (st == FNET_OK) {
        t->vt = ctx->be->alloc(ctx, (size_t)nvt * sizeof(float));
        t->dvt = ctx->be->alloc(ctx, (size_t)nvt * sizeof(float));
        if (t->vt == NULL || t->dvt == NULL)
            st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "tucker: %lld factor floats",
                           (long long)nvt);
    }
    if (st != FNET_OK) {
        fnet_layer_free(&t->base); // destroy frees what was made
        return st;
    }
    fnet_layer_view(t->in, t->vt, t->dvt);
    fnet_layer_view(t->out, t->base.w + factor_off(t, 0), t->base.g + factor_off(t, 0));
    *out = &t->base;
    return FNET_OK;
}

fnet_status fnet_model_add_tucker(fnet_model *m, int64_t n_out, const fnet_tucker_params *p)
{
    if (m == NULL)
        return FNET_ERR_INVALID_ARG;
    fnet_layer *l;
    fnet_status st = fnet_tucker_create(fnet_model_ctx(m), fnet_model_n_out(m), n_out, p, &l);
    return st != FNET_OK ? st : fnet_model_add_layer(m, l);
}

fnet_status fnet_tucker_from_dense(fnet_ctx *ctx, const float *W, int64_t n_out, int64_t n_in,
                                   const fnet_tucker_params *p, fnet_layer **out, double *rel_err)
{
    if (ctx == NULL || W == NULL || p == NULL || out == NULL)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "tucker_from_dense: NULL argument");
    *out = NULL;
    if (p->hooi_iters < 0)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "tucker_from_dense: hooi_iters must be >= 0, "
                         "got %d", p->hooi_iters);
    fnet_status st0 = fnet_tn_check_dense(ctx, "tucker_from_dense", W, n_out, n_in);
    if (st0 != FNET_OK)
        return st0;
    fnet_layer *l = NULL;
    fnet_status st = fnet_tucker_create(ctx, n_in, n_out, p, &l);
    if (st != FNET_OK)
        return st;
    const struct tucker *t = (const struct tucker *)l;
    // the core and the factors are the parameters' first floats, in this order
    int64_t n = t->T * t->S + fnet_tucker_factor_size(&t->ts);
    float *w = fnet_malloc_array((size_t)n, sizeof(float));
    if (w == NULL)
        st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "tucker_from_dense: %lld floats", (long long)n);
    else
        st = fnet_tucker_hosvd(ctx, W, &t->ts, p->hooi_iters, w, w + t->T * t->S, rel_err);
    if (st == FNET_OK) {
        ctx->be->upload(ctx, l->w, w, (size_t)n * sizeof(float));
        *out = l;
    } else {
        fnet_layer_free(l);
    }
    fnet_free(w);
    return st;
}
