/* The low-rank layer y = x·(U·V)ᵀ + b with U (n_out, r) and V (r, n_in) (docs/lowrank.md):
 * forward h = x·Vᵀ, y = h·Uᵀ + b, and backward, as GEMMs on the backend; the spectral and random
 * initializations, the truncated SVD of a dense matrix, and Frobenius decay in factored form.
 * Parameters: U, then V, then the bias. Also the "lowrank" kind's descriptor. */
#include "core/layer_impl.h"
#include "dense/init.h"
#include "lowrank/lowrank_svd.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

struct lowrank {
    fnet_layer base;
    int64_t r;
    bool has_bias;
    fnet_lowrank_init init;
    float *h, *dh; // (max_batch, r): x·Vᵀ of the last forward, and its gradient
    float *gram;   // (2, r, r): UᵀU and V·Vᵀ, for Frobenius decay
};

// Where U, V and the bias start in the layer's parameters.
static float *U_of(const fnet_layer *l, float *w)
{
    (void)l;
    return w;
}

static float *V_of(const fnet_layer *l, float *w)
{
    return w + l->n_out * ((const struct lowrank *)l)->r;
}

static float *bias_of(const fnet_layer *l, float *w)
{
    int64_t r = ((const struct lowrank *)l)->r;
    return w + r * (l->n_out + l->n_in);
}

static fnet_status lowrank_reserve(fnet_layer *l, int64_t max_batch)
{
    struct lowrank *t = (struct lowrank *)l;
    float **const bufs[] = {&t->h, &t->dh};
    const int64_t counts[] = {max_batch * t->r, max_batch * t->r};
    return fnet_layer_workspaces(l, 2, bufs, counts, "lowrank workspace", max_batch);
}

// x (B, n_in) -> h (B, r) = x·Vᵀ -> y (B, n_out) = h·Uᵀ + b
static fnet_status lowrank_forward(fnet_layer *l, const float *x, int64_t B, float *y)
{
    struct lowrank *t = (struct lowrank *)l;
    fnet_ctx *ctx = l->ctx;
    int64_t r = t->r, n_in = l->n_in, n_out = l->n_out;
    ctx->be->sgemm(ctx, false, true, B, r, n_in, 1.0f, x, n_in, V_of(l, l->w), n_in, 0.0f, t->h,
                   r);
    float beta = 0.0f;
    if (t->has_bias) {
        ctx->be->bias_fill(ctx, B, n_out, bias_of(l, l->w), y);
        beta = 1.0f;
    }
    ctx->be->sgemm(ctx, false, true, B, n_out, r, 1.0f, t->h, r, U_of(l, l->w), r, beta, y, n_out);
    return FNET_OK;
}

// dU (n_out, r) (+)= dyᵀ·h; db (+)= Σ_rows dy; dh (B, r) = dy·U; dV (r, n_in) (+)= dhᵀ·x;
// dx (B, n_in) = dh·V
static fnet_status lowrank_backward(fnet_layer *l, const float *x, const float *y,
                                    const float *dy, int64_t B, float *dx, bool accumulate)
{
    struct lowrank *t = (struct lowrank *)l;
    fnet_ctx *ctx = l->ctx;
    int64_t r = t->r, n_in = l->n_in, n_out = l->n_out;
    float beta = accumulate ? 1.0f : 0.0f;
    ctx->be->sgemm(ctx, true, false, n_out, r, B, 1.0f, dy, n_out, t->h, r, beta, U_of(l, l->g),
                   r);
    if (t->has_bias)
        ctx->be->bias_grad(ctx, B, n_out, dy, bias_of(l, l->g), accumulate);
    ctx->be->sgemm(ctx, false, false, B, r, n_out, 1.0f, dy, n_out, U_of(l, l->w), r, 0.0f, t->dh,
                   r);
    ctx->be->sgemm(ctx, true, false, r, n_in, B, 1.0f, t->dh, r, x, n_in, beta, V_of(l, l->g),
                   n_in);
    if (dx)
        ctx->be->sgemm(ctx, false, false, B, n_in, r, 1.0f, t->dh, r, V_of(l, l->w), n_in, 0.0f, dx,
                       n_in);
    return FNET_OK;
}

// λ/2·‖U·V‖²_F = λ/2·Σ (UᵀU) ∘ (V·Vᵀ), its gradient added: dU += λ·U·(V·Vᵀ), dV += λ·(UᵀU)·V.
// Never forms W: 2·r²·(n_out + n_in) multiply-adds for the Gram matrices, as many for the
// gradient (docs/lowrank.md, "Frobenius decay").
static double lowrank_penalty(fnet_layer *l, float lambda)
{
    struct lowrank *t = (struct lowrank *)l;
    fnet_ctx *ctx = l->ctx;
    int64_t r = t->r, n_in = l->n_in, n_out = l->n_out;
    float *gu = t->gram, *gv = t->gram + r * r;
    const float *U = U_of(l, l->w), *V = V_of(l, l->w);
    ctx->be->sgemm(ctx, true, false, r, r, n_out, 1.0f, U, r, U, r, 0.0f, gu, r);
    ctx->be->sgemm(ctx, false, true, r, r, n_in, 1.0f, V, n_in, V, n_in, 0.0f, gv, r);
    double value = 0.5 * (double)lambda * ctx->be->dot(ctx, r * r, gu, gv);
    ctx->be->sgemm(ctx, false, false, n_out, r, r, lambda, U, r, gv, r, 1.0f, U_of(l, l->g), r);
    ctx->be->sgemm(ctx, false, false, r, n_in, r, lambda, gu, r, V, n_in, 1.0f, V_of(l, l->g),
                   n_in);
    return value;
}

// Spectral: the best rank-r approximation of a dense W drawn by the initializer (U = Ũ·√Σ,
// V = √Σ·Ṽᵀ), on the host with the initializations' linear algebra; random: U and V i.i.d. with
// variance σ² each, r·σ⁴ = the dense variance, so that U·V has it. Then the bias zero.
static fnet_status lowrank_init(fnet_layer *l, fnet_init init, fnet_rng *rng,
                                struct fnet_init_out *out)
{
    struct lowrank *t = (struct lowrank *)l;
    fnet_ctx *ctx = l->ctx;
    int64_t r = t->r, n_in = l->n_in, n_out = l->n_out, nf = r * (n_in + n_out);
    fnet_status st = FNET_OK;
    if (t->init == FNET_LOWRANK_INIT_RANDOM) {
        double sigma = pow(fnet_init_variance(init, n_in, n_out) / (double)r, 0.25);
        float piece[FNET_INIT_CHUNK];
        for (int64_t done = 0; done < nf; done += FNET_INIT_CHUNK) {
            int64_t k = nf - done < FNET_INIT_CHUNK ? nf - done : FNET_INIT_CHUNK;
            fnet_init_fill_std(init, sigma, rng, k, piece);
            fnet_init_put(out, piece, k);
        }
    } else {
        float *W = fnet_malloc_array((size_t)(n_out * n_in), sizeof(float));
        if (W == NULL)
            return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "lowrank spectral init: %lld x %lld",
                             (long long)n_out, (long long)n_in);
        fnet_init_fill(init, n_in, n_out, rng, n_out * n_in, W);
        struct fnet_lowrank_cut cut = {r, 0.0};
        int64_t got = 0;
        float *U = NULL, *V = NULL;
        st = fnet_lowrank_svd(ctx, fnet_init_host_la, W, n_out, n_in, &cut, -1,
                              fnet_rng_next(rng), &got, &U, &V);
        if (st == FNET_OK && got != r) // the cut is the rank alone: only a bug gives another
            st = fnet_fail(ctx, FNET_ERR_INTERNAL, "lowrank init: rank %lld, not %lld",
                           (long long)got, (long long)r);
        if (st == FNET_OK) {
            fnet_init_put(out, U, n_out * r);
            fnet_init_put(out, V, r * n_in);
        }
        fnet_free(U);
        fnet_free(V);
        fnet_free(W);
    }
    if (st == FNET_OK)
        fnet_init_put_zeros(out, l->n_params - nf);
    return st;
}

static double lowrank_flops(const fnet_layer *l, int64_t B)
{
    int64_t r = ((const struct lowrank *)l)->r;
    return 2.0 * (double)B * (double)r * (double)(l->n_in + l->n_out);
}

// W (n_out, n_in), host: U·V on host copies
static fnet_status lowrank_to_dense(const fnet_layer *l, float *W)
{
    int64_t r = ((const struct lowrank *)l)->r;
    float *w = fnet_layer_host_params(l);
    if (w == NULL)
        return fnet_fail(l->ctx, FNET_ERR_OUT_OF_MEMORY, "lowrank to_dense: %lld parameters",
                         (long long)l->n_params);
    l->ctx->be->host_la->sgemm(l->ctx, false, false, l->n_out, l->n_in, r, 1.0f, w, r,
                               V_of(l, w), l->n_in, 0.0f, W, l->n_in);
    fnet_free(w);
    return FNET_OK;
}

static int lowrank_num_tensors(const fnet_layer *l)
{
    return ((const struct lowrank *)l)->has_bias ? 3 : 2;
}

static void lowrank_tensor(const fnet_layer *l, int i, fnet_tensor_info *t)
{
    int64_t r = ((const struct lowrank *)l)->r;
    if (i == 0) {
        *t = (fnet_tensor_info){.name = "U", .ndim = 2, .shape = {l->n_out, r}, .offset = 0,
                                .numel = l->n_out * r, .decay = true};
    } else if (i == 1) {
        *t = (fnet_tensor_info){.name = "V", .ndim = 2, .shape = {r, l->n_in},
                                .offset = l->n_out * r, .numel = r * l->n_in, .decay = true};
    } else {
        *t = (fnet_tensor_info){.name = "bias", .ndim = 1, .shape = {l->n_out},
                                .offset = r * (l->n_out + l->n_in), .numel = l->n_out};
    }
}

static void lowrank_destroy(fnet_layer *l)
{
    struct lowrank *t = (struct lowrank *)l;
    l->ctx->be->free(l->ctx, t->h);
    l->ctx->be->free(l->ctx, t->dh);
    l->ctx->be->free(l->ctx, t->gram);
}

static void lowrank_describe(const fnet_layer *l, struct fnet_spec_item *it)
{
    const struct lowrank *t = (const struct lowrank *)l;
    fnet_spec_item_init(it, &fnet_lowrank_desc);
    it->n = l->n_out;
    fnet_spec_set_int(it, "rank", t->r);
    fnet_spec_set_flag(it, "bias", t->has_bias);
}

static const struct fnet_layer_ops lowrank_ops = {
    .desc = &fnet_lowrank_desc,
    .init = lowrank_init,
    .reserve = lowrank_reserve,
    .forward = lowrank_forward,
    .backward = lowrank_backward,
    .penalty = lowrank_penalty,
    .flops = lowrank_flops,
    .to_dense = lowrank_to_dense,
    .num_tensors = lowrank_num_tensors,
    .tensor = lowrank_tensor,
    .destroy = lowrank_destroy,
    .describe = lowrank_describe,
};

fnet_lowrank_params fnet_lowrank_params_default(void)
{
    fnet_lowrank_params p;
    memset(&p, 0, sizeof(p));
    p.rank = 32;
    p.bias = true;
    p.init = FNET_LOWRANK_INIT_SPECTRAL;
    p.energy = 0.0;
    return p;
}

// Sizes whose products would not fit the flat vector's indices are refused up front.
#define MAX_WIDTH ((int64_t)1 << 31)

// Sizes, rank and init of a layer n_in -> n_out.
static fnet_status check_params(fnet_ctx *ctx, int64_t n_in, int64_t n_out,
                                const fnet_lowrank_params *p)
{
    if (n_in < 1 || n_out < 1 || n_in > MAX_WIDTH || n_out > MAX_WIDTH)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "lowrank: sizes must be in 1..2^31, got %lld "
                         "-> %lld", (long long)n_in, (long long)n_out);
    int64_t most = n_in < n_out ? n_in : n_out;
    if (p->rank < 1 || p->rank > most)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "lowrank: rank %lld is outside 1..min(n_in, "
                         "n_out) = %lld", (long long)p->rank, (long long)most);
    if (p->rank > FNET_MAX_LAYER_PARAMS / (n_in + n_out))
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "lowrank: rank·(n_in + n_out) = %lld·%lld "
                         "is more than 2^40 parameters", (long long)p->rank,
                         (long long)(n_in + n_out));
    if (p->init != FNET_LOWRANK_INIT_SPECTRAL && p->init != FNET_LOWRANK_INIT_RANDOM)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "lowrank: unknown init %d", (int)p->init);
    return FNET_OK;
}

fnet_status fnet_lowrank_create(fnet_ctx *ctx, int64_t n_in, int64_t n_out,
                                const fnet_lowrank_params *p, fnet_layer **out)
{
    if (ctx == NULL || p == NULL || out == NULL)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "lowrank: ctx, params and out must not be NULL");
    *out = NULL;
    fnet_status st = check_params(ctx, n_in, n_out, p);
    if (st != FNET_OK)
        return st;
    struct lowrank *t = fnet_calloc(1, sizeof(*t));
    if (t == NULL)
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "lowrank layer");
    t->r = p->rank;
    t->has_bias = p->bias;
    t->init = p->init;
    st = fnet_layer_base_init(&t->base, ctx, &lowrank_ops, n_in, n_out,
                                          p->rank * (n_in + n_out) + (p->bias ? n_out : 0));
    if (st != FNET_OK)
        goto out_free_t;
    t->gram = ctx->be->alloc(ctx, (size_t)(2 * p->rank * p->rank) * sizeof(float));
    if (t->gram == NULL) {
        st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "lowrank Gram matrices of rank %lld",
                       (long long)p->rank);
        goto out_free_layer;
    }
    *out = &t->base;
    return FNET_OK;
out_free_layer:
    fnet_layer_free(&t->base); // frees t too
    return st;
out_free_t:
    fnet_free(t);
    return st;
}

fnet_status fnet_model_add_lowrank(fnet_model *m, int64_t n_out, const fnet_lowrank_params *p)
{
    if (m == NULL)
        return FNET_ERR_INVALID_ARG;
    fnet_layer *l;
    fnet_status st = fnet_lowrank_create(fnet_model_ctx(m), fnet_model_n_out(m), n_out, p, &l);
    return st != FNET_OK ? st : fnet_model_add_layer(m, l);
}

fnet_status fnet_lowrank_from_dense(fnet_ctx *ctx, const float *W, int64_t n_out, int64_t n_in,
                                    const fnet_lowrank_params *p, fnet_layer **out)
{
    if (ctx == NULL || W == NULL || p == NULL || out == NULL)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "lowrank_from_dense: NULL argument");
    *out = NULL;
    if (!(p->energy >= 0.0 && p->energy <= 1.0))
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "lowrank_from_dense: energy %g is outside "
                         "(0, 1] (0: the rank alone)", p->energy);
    fnet_lowrank_params q = *p;
    fnet_status st = check_params(ctx, n_in, n_out, p);
    if (st != FNET_OK)
        return st;
    struct fnet_lowrank_cut cut = {p->rank, p->energy};
    int64_t r = 0;
    float *U = NULL, *V = NULL;
    st = fnet_lowrank_svd(ctx, ctx->be->host_la, W, n_out, n_in, &cut, -1, 1, &r, &U, &V);
    if (st != FNET_OK)
        return st;
    q.rank = r;
    fnet_layer *l = NULL;
    st = fnet_lowrank_create(ctx, n_in, n_out, &q, &l);
    if (st == FNET_OK) {
        ctx->be->upload(ctx, U_of(l, l->w), U, (size_t)(n_out * r) * sizeof(float));
        ctx->be->upload(ctx, V_of(l, l->w), V, (size_t)(r * n_in) * sizeof(float));
        *out = l; // the bias, if any, is zero
    }
    fnet_free(U);
    fnet_free(V);
    return st;
}

fnet_status fnet_lowrank_layer_rank(const fnet_layer *l, int64_t *rank)
{
    if (l == NULL || rank == NULL || l->ops != &lowrank_ops)
        return l ? fnet_fail(l->ctx, FNET_ERR_INVALID_ARG, "lowrank_layer_rank: not a low-rank "
                             "layer")
                 : FNET_ERR_INVALID_ARG;
    *rank = ((const struct lowrank *)l)->r;
    return FNET_OK;
}

// ---- the kind ----

static fnet_status lowrank_create_item(fnet_ctx *ctx, const struct fnet_spec_item *it,
                                       int64_t n_in, fnet_layer **out)
{
    fnet_lowrank_params p = fnet_lowrank_params_default();
    p.rank = fnet_spec_int(it, "rank", p.rank);
    p.bias = fnet_spec_flag(it, "bias");
    return fnet_lowrank_create(ctx, n_in, it->n, &p, out);
}

static int64_t lowrank_min_params(const struct fnet_spec_item *it, int64_t n_in)
{
    int64_t r = fnet_spec_int(it, "rank", 1);
    int64_t total = fnet_sat_mul(r, fnet_sat_add(n_in, it->n));
    return fnet_spec_flag(it, "bias") ? fnet_sat_add(total, it->n) : total;
}

static const struct fnet_spec_opt lowrank_opts[] = {
    {.name = "rank", .type = FNET_SPEC_INT, .required = true},
    {.name = "bias", .type = FNET_SPEC_FLAG, .flag_default = true},
};

const struct fnet_layer_desc fnet_lowrank_desc = {
    .kind = FNET_LAYER_LOWRANK,
    .name = "lowrank",
    .usage = "lowrank:N:rank=R[:bias=0]",
    .arg = FNET_SPEC_ARG_SIZE,
    .opts = lowrank_opts,
    .n_opts = 2,
    .create = lowrank_create_item,
    .min_params = lowrank_min_params,
};
