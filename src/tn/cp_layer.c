/* The CP layer (docs/tn.md, "CP"): W (M, N), read as the tensor (m_0..m_{q-1}, n_0..n_{p-1}), is
 * Σ_{ρ<R} the outer products of column ρ of one factor per mode. Grouping the output modes and the
 * input modes, W = KA·KBᵀ with KA = A_0 ⊙ ··· ⊙ A_{q-1} (M, R) and KB = B_0 ⊙ ··· ⊙ B_{p-1} (N, R)
 * the Khatri–Rao products (row (i, i') of A ⊙ B is A[i, :] ∘ B[i', :]): the layer builds both at
 * every forward pass (about (M + N)·R floats) and runs as a low-rank product, two GEMMs forward,
 * four backward, then back through the Khatri–Rao products onto the factors. Parameters: the
 * factors A_k (m_k, R), then B_k (n_k, R), then the bias. The "cp" spec kind: src/tn/tn_kind.c. */
#include "core/layer_impl.h"
#include "core/model_impl.h"
#include "dense/init.h"
#include "tn/cp.h"
#include "tn/tn_modes.h"

#include <factornet/tn.h>

#include <math.h>
#include <string.h>

// One side's Khatri–Rao chain: K_0 = F_0, K_l = K_{l-1} ⊙ F_l (P_l = P_{l-1}·dims_l rows), kept
// with the replicas each product multiplied (for the backward pass).
struct kr_side {
    int first, n;                       // its modes: cs.dims[first .. first + n)
    int64_t rows;                       // P_{n-1}: M or N
    float *K[FNET_TN_MAX_MODES];        // K_l, l >= 1 (K_0 is the factor itself)
    float *arep[FNET_TN_MAX_MODES];     // K_{l-1} repeated: (P_{l-1}, dims_l, R)
    float *brep[FNET_TN_MAX_MODES];     // F_l repeated: (P_{l-1}, dims_l, R)
    float *dk[2], *tmp[2];              // rows·R each: gradients of K_l, products
};

struct cp {
    fnet_layer base;
    struct fnet_cp_shape cs; // D = q + p modes: the outputs', then the inputs'
    int q;
    bool has_bias;
    struct kr_side side[2];  // 0: outputs (KA), 1: inputs (KB)
    float *h, *dh;           // (max_batch, R)
};

static int64_t factor_off(const struct cp *c, int k)
{
    return fnet_cp_factor_offset(&c->cs, k);
}

// The side's Khatri–Rao product (rows, R), read-only: a buffer, or the one factor itself.
static const float *kr_of(const struct cp *c, const struct kr_side *sd, const float *w)
{
    return sd->n == 1 ? w + factor_off(c, sd->first) : sd->K[sd->n - 1];
}

// K_l = K_{l-1} ⊙ F_l for l = 1..n-1: the replicas (P, Q, R) of both, multiplied.
static void kr_forward(fnet_ctx *ctx, const struct cp *c, struct kr_side *sd, const float *w)
{
    int64_t R = c->cs.rank, P = c->cs.dims[sd->first];
    const float *prev = w + factor_off(c, sd->first);
    for (int l = 1; l < sd->n; l++) {
        int64_t Q = c->cs.dims[sd->first + l];
        const float *F = w + factor_off(c, sd->first + l);
        ctx->be->bias_fill(ctx, P, Q * R, F, sd->brep[l]);
        ctx->be->bias_fill(ctx, Q, P * R, prev, sd->tmp[0]);
        ctx->be->permute_021(ctx, Q, P, R, sd->tmp[0], sd->arep[l], false);
        ctx->be->mul(ctx, P * Q * R, sd->arep[l], sd->brep[l], sd->K[l]);
        prev = sd->K[l];
        P *= Q;
    }
}

// From dK (rows, R) in sd->dk[0] back onto the factors' gradient g, written or added:
// dF_l[q, ρ] = Σ_p dK_l[p, q, ρ]·K_{l-1}[p, ρ];  dK_{l-1}[p, ρ] = Σ_q dK_l[p, q, ρ]·F_l[q, ρ].
static void kr_backward(fnet_ctx *ctx, const struct cp *c, struct kr_side *sd, float *g,
                        bool accumulate)
{
    int64_t R = c->cs.rank, P = sd->rows;
    int cur = 0;
    for (int l = sd->n - 1; l >= 1; l--) {
        int64_t Q = c->cs.dims[sd->first + l];
        P /= Q;
        const float *dk = sd->dk[cur];
        ctx->be->mul(ctx, P * Q * R, dk, sd->arep[l], sd->tmp[0]);
        ctx->be->bias_grad(ctx, P, Q * R, sd->tmp[0], g + factor_off(c, sd->first + l),
                           accumulate);
        ctx->be->mul(ctx, P * Q * R, dk, sd->brep[l], sd->tmp[0]);
        ctx->be->permute_021(ctx, P, Q, R, sd->tmp[0], sd->tmp[1], false);
        bool to_factor = l == 1;
        float *dst = to_factor ? g + factor_off(c, sd->first) : sd->dk[1 - cur];
        ctx->be->bias_grad(ctx, Q, P * R, sd->tmp[1], dst, to_factor && accumulate);
        cur = 1 - cur;
    }
}

static fnet_status cp_reserve(fnet_layer *l, int64_t B)
{
    struct cp *c = (struct cp *)l;
    float **const bufs[] = {&c->h, &c->dh};
    const int64_t counts[] = {B * c->cs.rank, B * c->cs.rank};
    return fnet_layer_workspaces(l, 2, bufs, counts, "cp workspace", B);
}

// h (B, R) = x·KB; y = h·KAᵀ + b
static fnet_status cp_forward(fnet_layer *l, const float *x, int64_t B, float *y)
{
    struct cp *c = (struct cp *)l;
    fnet_ctx *ctx = l->ctx;
    int64_t R = c->cs.rank, M = l->n_out, N = l->n_in;
    kr_forward(ctx, c, &c->side[0], l->w);
    kr_forward(ctx, c, &c->side[1], l->w);
    const float *KA = kr_of(c, &c->side[0], l->w), *KB = kr_of(c, &c->side[1], l->w);
    ctx->be->sgemm(ctx, false, false, B, R, N, 1.0f, x, N, KB, R, 0.0f, c->h, R);
    float beta = 0.0f;
    if (c->has_bias) {
        ctx->be->bias_fill(ctx, B, M, l->w + l->n_params - M, y);
        beta = 1.0f;
    }
    ctx->be->sgemm(ctx, false, true, B, M, R, 1.0f, c->h, R, KA, R, beta, y, M);
    return FNET_OK;
}

// dKA (M, R) = dyᵀ·h; dh = dy·KA; dKB (N, R) = xᵀ·dh; dx = dh·KBᵀ; each dK back through its
// side's Khatri–Rao chain (a one-mode side's GEMM writes its factor's gradient directly).
static fnet_status cp_backward(fnet_layer *l, const float *x, const float *y, const float *dy,
                               int64_t B, float *dx, bool accumulate)
{
    struct cp *c = (struct cp *)l;
    fnet_ctx *ctx = l->ctx;
    (void)y;
    int64_t R = c->cs.rank, M = l->n_out, N = l->n_in;
    float beta = accumulate ? 1.0f : 0.0f;
    const float *KA = kr_of(c, &c->side[0], l->w), *KB = kr_of(c, &c->side[1], l->w);
    if (c->has_bias)
        ctx->be->bias_grad(ctx, B, M, dy, l->g + l->n_params - M, accumulate);
    struct kr_side *sa = &c->side[0], *sb = &c->side[1];
    float *dka = sa->n == 1 ? l->g + factor_off(c, sa->first) : sa->dk[0];
    ctx->be->sgemm(ctx, true, false, M, R, B, 1.0f, dy, M, c->h, R, sa->n == 1 ? beta : 0.0f,
                   dka, R);
    ctx->be->sgemm(ctx, false, false, B, R, M, 1.0f, dy, M, KA, R, 0.0f, c->dh, R);
    float *dkb = sb->n == 1 ? l->g + factor_off(c, sb->first) : sb->dk[0];
    ctx->be->sgemm(ctx, true, false, N, R, B, 1.0f, x, N, c->dh, R, sb->n == 1 ? beta : 0.0f,
                   dkb, R);
    if (dx)
        ctx->be->sgemm(ctx, false, true, B, N, R, 1.0f, c->dh, R, KB, R, 0.0f, dx, N);
    kr_backward(ctx, c, sa, l->g, accumulate);
    kr_backward(ctx, c, sb, l->g, accumulate);
    return FNET_OK;
}

// Every factor entry drawn by the initializer with variance σ², R·σ^(2D) = the dense variance V,
// so that each entry of W, a sum of R products of D factor entries, has variance V.
static fnet_status cp_init(fnet_layer *l, fnet_init init, fnet_rng *rng, struct fnet_init_out *out)
{
    struct cp *c = (struct cp *)l;
    double V = fnet_init_variance(init, l->n_in, l->n_out);
    double sigma = pow(V / (double)c->cs.rank, 0.5 / (double)c->cs.D);
    int64_t nf = fnet_cp_num_params(&c->cs);
    float piece[FNET_INIT_CHUNK];
    for (int64_t done = 0; done < nf; done += FNET_INIT_CHUNK) {
        int64_t k = nf - done < FNET_INIT_CHUNK ? nf - done : FNET_INIT_CHUNK;
        fnet_init_fill_std(init, sigma, rng, k, piece);
        fnet_init_put(out, piece, k);
    }
    fnet_init_put_zeros(out, l->n_params - nf);
    return FNET_OK;
}

static double cp_flops(const fnet_layer *l, int64_t B)
{
    const struct cp *c = (const struct cp *)l;
    return 2.0 * (double)B * (double)c->cs.rank * (double)(l->n_in + l->n_out) +
           (double)c->cs.rank * (double)(l->n_in + l->n_out);
}

static fnet_status cp_to_dense(const fnet_layer *l, float *W)
{
    const struct cp *c = (const struct cp *)l;
    float *w = fnet_layer_host_params(l);
    if (w == NULL)
        return fnet_fail(l->ctx, FNET_ERR_OUT_OF_MEMORY, "cp to_dense: %lld parameters",
                         (long long)l->n_params);
    fnet_status st = fnet_cp_full(l->ctx, &c->cs, w, W);
    fnet_free(w);
    return st;
}

static int cp_num_tensors(const fnet_layer *l)
{
    const struct cp *c = (const struct cp *)l;
    return c->cs.D + (c->has_bias ? 1 : 0);
}

static void cp_tensor(const fnet_layer *l, int i, fnet_tensor_info *info)
{
    const struct cp *c = (const struct cp *)l;
    if (i < c->cs.D)
        *info = (fnet_tensor_info){.name = fnet_tn_factor_name(i), .ndim = 2,
                                   .shape = {c->cs.dims[i], c->cs.rank},
                                   .offset = factor_off(c, i),
                                   .numel = c->cs.dims[i] * c->cs.rank, .decay = true};
    else
        *info = (fnet_tensor_info){.name = "bias", .ndim = 1, .shape = {l->n_out},
                                   .offset = l->n_params - l->n_out, .numel = l->n_out};
}

static void free_side(fnet_ctx *ctx, struct kr_side *sd)
{
    for (int l = 0; l < FNET_TN_MAX_MODES; l++) {
        ctx->be->free(ctx, sd->K[l]);
        ctx->be->free(ctx, sd->arep[l]);
        ctx->be->free(ctx, sd->brep[l]);
    }
    for (int i = 0; i < 2; i++) {
        ctx->be->free(ctx, sd->dk[i]);
        ctx->be->free(ctx, sd->tmp[i]);
    }
}

static void cp_destroy(fnet_layer *l)
{
    struct cp *c = (struct cp *)l;
    free_side(l->ctx, &c->side[0]);
    free_side(l->ctx, &c->side[1]);
    l->ctx->be->free(l->ctx, c->h);
    l->ctx->be->free(l->ctx, c->dh);
}

static void cp_describe(const fnet_layer *l, struct fnet_spec_item *it)
{
    const struct cp *c = (const struct cp *)l;
    fnet_spec_item_init(it, &fnet_cp_desc);
    it->n = l->n_out;
    fnet_spec_set_int(it, "rank", c->cs.rank);
    fnet_spec_set_list(it, "in", c->cs.dims + c->q, c->cs.D - c->q);
    fnet_spec_set_list(it, "out", c->cs.dims, c->q);
    fnet_spec_set_flag(it, "bias", c->has_bias);
}

static const struct fnet_layer_ops cp_ops = {
    .desc = &fnet_cp_desc,
    .needs = FNET_OPS(FNET_OP_PERMUTE_021) | FNET_OPS(FNET_OP_MUL),
    .init = cp_init,
    .reserve = cp_reserve,
    .forward = cp_forward,
    .backward = cp_backward,
    .flops = cp_flops,
    .to_dense = cp_to_dense,
    .num_tensors = cp_num_tensors,
    .tensor = cp_tensor,
    .destroy = cp_destroy,
    .describe = cp_describe,
};

fnet_cp_params fnet_cp_params_default(void)
{
    fnet_cp_params p;
    memset(&p, 0, sizeof(p));
    p.rank = 32;
    p.bias = true;
    p.als_iters = 100;
    p.als_tol = 1e-7;
    p.seed = 1;
    return p;
}

// The Khatri–Rao buffers of a side with n modes starting at mode first: all or none.
static fnet_status alloc_side(fnet_ctx *ctx, const struct fnet_cp_shape *cs, int first, int n,
                              struct kr_side *sd)
{
    int64_t R = cs->rank, P = cs->dims[first];
    sd->first = first;
    sd->n = n;
    bool ok = true;
    for (int l = 1; l < n; l++) {
        P *= cs->dims[first + l];
        sd->K[l] = ctx->be->alloc(ctx, (size_t)(P * R) * sizeof(float));
        sd->arep[l] = ctx->be->alloc(ctx, (size_t)(P * R) * sizeof(float));
        sd->brep[l] = ctx->be->alloc(ctx, (size_t)(P * R) * sizeof(float));
        ok = ok && sd->K[l] && sd->arep[l] && sd->brep[l];
    }
    sd->rows = P;
    for (int i = 0; n > 1 && i < 2; i++) {
        sd->dk[i] = ctx->be->alloc(ctx, (size_t)(P * R) * sizeof(float));
        sd->tmp[i] = ctx->be->alloc(ctx, (size_t)(P * R) * sizeof(float));
        ok = ok && sd->dk[i] && sd->tmp[i];
    }
    return ok ? FNET_OK
              : fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "cp Khatri-Rao buffers (%lld x %lld)",
                          (long long)P, (long long)R);
}

fnet_status fnet_cp_create(fnet_ctx *ctx, int64_t n_in, int64_t n_out, const fnet_cp_params *p,
                           fnet_layer **out)
{
    if (ctx == NULL || p == NULL || out == NULL)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "cp: ctx, params and out must not be NULL");
    *out = NULL;
    if (n_in < 1 || n_out < 1 || n_in > ((int64_t)1 << 31) || n_out > ((int64_t)1 << 31))
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "cp: sizes must be in 1..2^31, got %lld -> "
                         "%lld", (long long)n_in, (long long)n_out);
    struct fnet_cp_shape cs;
    memset(&cs, 0, sizeof(cs));
    int q = 0, np = 0;
    fnet_status st = fnet_tn_side_modes(ctx, "cp", false, n_out, p->n_out_modes, p->out_modes, 2,
                                        FNET_TN_MAX_MODES, cs.dims, &q);
    if (st == FNET_OK)
        st = fnet_tn_side_modes(ctx, "cp", true, n_in, p->n_in_modes, p->in_modes, 2,
                                FNET_TN_MAX_MODES, cs.dims + q, &np);
    if (st != FNET_OK)
        return st;
    if (q + np > FNET_TN_MAX_MODES)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "cp: %d output and %d input modes, at most %d "
                         "in all", q, np, FNET_TN_MAX_MODES);
    cs.D = q + np;
    cs.rank = p->rank;
    st = fnet_cp_shape_check(ctx, &cs);
    // every tensor of these modes is a sum of at most min_k Π_{l≠k} dims_l rank-one terms (the
    // columns of its mode-k unfolding): a larger rank only adds redundant terms
    int64_t most = INT64_MAX;
    for (int k = 0; k < cs.D && cs.D > 1; k++) {
        int64_t prod = 1;
        for (int l = 0; l < cs.D; l++)
            prod = l == k ? prod : fnet_sat_mul(prod, cs.dims[l]);
        most = prod < most ? prod : most;
    }
    if (st == FNET_OK && cs.D > 1 && p->rank > most)
        st = fnet_fail(ctx, FNET_ERR_INVALID_ARG, "cp: rank %lld exceeds %lld, the largest CP rank "
                       "of a tensor of these %d modes (the product of all modes but the largest)",
                       (long long)p->rank, (long long)most, cs.D);
    if (st == FNET_OK && p->rank > FNET_MAX_LAYER_PARAMS / (n_in + n_out))
        st = fnet_fail(ctx, FNET_ERR_INVALID_ARG, "cp: rank %lld makes Khatri-Rao products of "
                       "rank·(n_in + n_out) = %lld·%lld floats, more than 2^40",
                       (long long)p->rank, (long long)p->rank, (long long)(n_in + n_out));
    if (st != FNET_OK)
        return st;
    struct cp *c = fnet_calloc(1, sizeof(*c));
    if (c == NULL)
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "cp layer");
    c->cs = cs;
    c->q = q;
    c->has_bias = p->bias;
    st = fnet_layer_base_init(&c->base, ctx, &cp_ops, n_in, n_out,
                              fnet_cp_num_params(&cs) + (p->bias ? n_out : 0));
    if (st != FNET_OK) {
        fnet_free(c);
        return st;
    }
    st = alloc_side(ctx, &cs, 0, q, &c->side[0]);
    if (st == FNET_OK)
        st = alloc_side(ctx, &cs, q, np, &c->side[1]);
    if (st != FNET_OK) {
        fnet_layer_free(&c->base);
        return st;
    }
    *out = &c->base;
    return FNET_OK;
}

fnet_status fnet_model_add_cp(fnet_model *m, int64_t n_out, const fnet_cp_params *p)
{
    if (m == NULL)
        return FNET_ERR_INVALID_ARG;
    fnet_layer *l;
    fnet_status st = fnet_cp_create(fnet_model_ctx(m), fnet_model_n_out(m), n_out, p, &l);
    return st != FNET_OK ? st : fnet_model_add_layer(m, l);
}

fnet_status fnet_cp_from_dense(fnet_ctx *ctx, const float *W, int64_t n_out, int64_t n_in,
                               const fnet_cp_params *p, fnet_layer **out, double *fit)
{
    if (ctx == NULL || W == NULL || p == NULL || out == NULL)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "cp_from_dense: NULL argument");
    *out = NULL;
    if (p->als_iters < 1 || !(p->als_tol >= 0.0) || isinf(p->als_tol))
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "cp_from_dense: als_iters must be >= 1 and "
                         "als_tol finite and >= 0, got %d and %g", p->als_iters, p->als_tol);
    fnet_status st0 = fnet_tn_check_dense(ctx, "cp_from_dense", W, n_out, n_in);
    if (st0 != FNET_OK)
        return st0;
    fnet_layer *l = NULL;
    fnet_status st = fnet_cp_create(ctx, n_in, n_out, p, &l);
    if (st != FNET_OK)
        return st;
    const struct cp *c = (const struct cp *)l;
    struct fnet_cp_als_params als = {.max_iters = p->als_iters, .tol = p->als_tol,
                                     .seed = p->seed};
    int64_t nf = fnet_cp_num_params(&c->cs);
    float *w = fnet_malloc_array((size_t)nf, sizeof(float));
    if (w == NULL)
        st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "cp_from_dense: %lld floats", (long long)nf);
    else
        st = fnet_cp_als(ctx, W, &c->cs, &als, w, fit, NULL);
    if (st == FNET_OK) {
        ctx->be->upload(ctx, l->w, w, (size_t)nf * sizeof(float));
        *out = l;
    } else {
        fnet_layer_free(l);
    }
    fnet_free(w);
    return st;
}
