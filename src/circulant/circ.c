/* The block-circulant layer (Cheng et al. 2015; Ding et al. 2017, CirCNN), docs/circulant.md:
 * W is (n_out/b)·(n_in/b) circulant b×b blocks, block (p, q) given by its first column
 * c[p, q, :], so y_p = Σ_q c_pq ⊛ x_q (circular convolutions) = Σ_q IFFT(FFT(c_pq) ∘ FFT(x_q)).
 * Forward and backward run on the backend's real FFTs and complex multiply-accumulate; the
 * spectra of c are computed once per forward pass and kept for the backward. Parameters: c
 * (P, Q, b), then the bias. Also the "circ" kind's descriptor. */
#include "core/layer_impl.h"
#include "dense/init.h"

#include <inttypes.h>
#include <string.h>

struct circ {
    fnet_layer base;
    int64_t b, P, Q, F; // block, output and input blocks, frequencies b/2 + 1
    bool has_bias;
    void *plan;         // the backend's real FFTs of length b
    // backend memory, complex spectra of F values (re, im interleaved):
    float *cs;  // (P, Q): FFT(c)/b, of the last forward (the 1/b of the inverse folded in)
    float *dcs; // (P, Q): the spectra of c's gradient
    float *dc;  // (P, Q, b): c's gradient before it is scaled into the layer's
    float *xs;  // (max_batch, Q): FFT(x) of the last forward, kept for every backward of it
    float *ys;  // (max_batch, P): the output's spectra; FFT(dy) in backward
    float *dxs; // (max_batch, Q): the input gradient's spectra
};

// The floats of n spectra.
static int64_t spectra(const struct circ *t, int64_t n)
{
    return 2 * t->F * n;
}

static fnet_status circ_reserve(fnet_layer *l, int64_t max_batch)
{
    struct circ *t = (struct circ *)l;
    float **const bufs[] = {&t->xs, &t->ys, &t->dxs};
    const int64_t counts[] = {spectra(t, max_batch * t->Q), spectra(t, max_batch * t->P),
                              spectra(t, max_batch * t->Q)};
    return fnet_layer_workspaces(l, 3, bufs, counts, "circ spectra", max_batch);
}

// x (B, n_in) -> y (B, n_out): Cs = FFT(c)/b, Xs = FFT(x_q), Ys[s, p] = Σ_q Xs[s, q]·Cs[p, q],
// y = IFFT(Ys) + bias
static fnet_status circ_forward(fnet_layer *l, const float *x, int64_t B, float *y)
{
    struct circ *t = (struct circ *)l;
    fnet_ctx *ctx = l->ctx;
    int64_t P = t->P, Q = t->Q;
    ctx->be->rfft(ctx, t->plan, P * Q, l->w, t->cs);
    ctx->be->scal(ctx, spectra(t, P * Q), 1.0f / (float)t->b, t->cs);
    ctx->be->rfft(ctx, t->plan, B * Q, x, t->xs);
    // A = Xs (S, Q): strides (Q, 1); B = Cs read as (K = Q, N = P): strides (1, Q)
    ctx->be->cmac(ctx, t->F, B, P, Q, t->xs, Q, 1, false, t->cs, 1, Q, false, t->ys, P, 1, false);
    ctx->be->irfft(ctx, t->plan, B * P, t->ys, y);
    if (t->has_bias)
        ctx->be->bias_add(ctx, B, l->n_out, l->w + l->n_params - l->n_out, y);
    return FNET_OK;
}

// DYs = FFT(dy); dc = IFFT(Σ_s conj(Xs[s, q])·DYs[s, p]) / b (the correlation of x and dy);
// dx = IFFT(Σ_p conj(Cs[p, q])·DYs[s, p]) (Cs holds FFT(c)/b: the inverse's 1/b already in)
static fnet_status circ_backward(fnet_layer *l, const float *x, const float *y, const float *dy,
                                 int64_t B, float *dx, bool accumulate)
{
    struct circ *t = (struct circ *)l;
    fnet_ctx *ctx = l->ctx;
    int64_t P = t->P, Q = t->Q, nc = P * Q * t->b;
    if (t->has_bias)
        ctx->be->bias_grad(ctx, B, l->n_out, dy, l->g + nc, accumulate);
    ctx->be->rfft(ctx, t->plan, B * P, dy, t->ys);
    // DCs (P, Q) = Σ_s conj(Xs)·DYs: A = DYs read as (M = P, K = S): strides (1, P); B = Xs (S, Q)
    ctx->be->cmac(ctx, t->F, P, Q, B, t->ys, 1, P, false, t->xs, Q, 1, true, t->dcs, Q, 1, false);
    ctx->be->irfft(ctx, t->plan, P * Q, t->dcs, t->dc);
    ctx->be->axpby(ctx, nc, 1.0f / (float)t->b, t->dc, accumulate ? 1.0f : 0.0f, l->g);
    if (dx == NULL)
        return FNET_OK;
    // DXs (S, Q) = Σ_p DYs[s, p]·conj(Cs[p, q]): A = DYs (S, P); B = Cs as (K = P, N = Q)
    ctx->be->cmac(ctx, t->F, B, Q, P, t->ys, P, 1, false, t->cs, Q, 1, true, t->dxs, Q, 1, false);
    ctx->be->irfft(ctx, t->plan, B * Q, t->dxs, dx);
    return FNET_OK;
}

// c drawn as a dense layer of the same fans draws W (each entry of W is one c value), bias zero
static fnet_status circ_init(fnet_layer *l, fnet_init init, fnet_rng *rng,
                             struct fnet_init_out *out)
{
    struct circ *t = (struct circ *)l;
    float piece[FNET_INIT_CHUNK];
    int64_t nc = t->P * t->Q * t->b;
    for (int64_t done = 0; done < nc; done += FNET_INIT_CHUNK) {
        int64_t k = nc - done < FNET_INIT_CHUNK ? nc - done : FNET_INIT_CHUNK;
        fnet_init_fill(init, l->n_in, l->n_out, rng, k, piece);
        fnet_init_put(out, piece, k);
    }
    fnet_init_put_zeros(out, l->n_params - nc);
    return FNET_OK;
}

// Real FFTs of length b at ~2.5·b·log2(b) flops each, and 8 flops per complex multiply-add.
static double circ_flops(const fnet_layer *l, int64_t B)
{
    const struct circ *t = (const struct circ *)l;
    double lg = 1.0;
    for (int64_t k = 2; k < t->b; k *= 2)
        lg += 1.0;
    double fft = 2.5 * (double)t->b * lg;
    return fft * (double)(B * (t->P + t->Q) + t->P * t->Q) +
           8.0 * (double)(B * t->P * t->Q * t->F);
}

// W (n_out, n_in), host: block (p, q) row k, column m is c[p, q, (k − m) mod b]
static fnet_status circ_to_dense(const fnet_layer *l, float *W)
{
    const struct circ *t = (const struct circ *)l;
    float *w = fnet_layer_host_params(l);
    if (w == NULL)
        return fnet_fail(l->ctx, FNET_ERR_OUT_OF_MEMORY, "circ to_dense: %lld parameters",
                         (long long)l->n_params);
    int64_t b = t->b;
    for (int64_t p = 0; p < t->P; p++)
        for (int64_t q = 0; q < t->Q; q++) {
            const float *c = w + (p * t->Q + q) * b;
            for (int64_t k = 0; k < b; k++)
                for (int64_t m = 0; m < b; m++)
                    W[(p * b + k) * l->n_in + q * b + m] = c[(k - m + b) % b];
        }
    fnet_free(w);
    return FNET_OK;
}

static int circ_num_tensors(const fnet_layer *l)
{
    return ((const struct circ *)l)->has_bias ? 2 : 1;
}

static void circ_tensor(const fnet_layer *l, int i, fnet_tensor_info *info)
{
    const struct circ *t = (const struct circ *)l;
    if (i == 0)
        *info = (fnet_tensor_info){.name = "c", .ndim = 3, .shape = {t->P, t->Q, t->b},
                                   .offset = 0, .numel = t->P * t->Q * t->b, .decay = true};
    else
        *info = (fnet_tensor_info){.name = "bias", .ndim = 1, .shape = {l->n_out},
                                   .offset = l->n_params - l->n_out, .numel = l->n_out};
}

static void circ_destroy(fnet_layer *l)
{
    struct circ *t = (struct circ *)l;
    fnet_ctx *ctx = l->ctx;
    if (t->plan != NULL)
        ctx->be->fft_plan_free(ctx, t->plan);
    ctx->be->free(ctx, t->cs);
    ctx->be->free(ctx, t->dcs);
    ctx->be->free(ctx, t->dc);
    ctx->be->free(ctx, t->xs);
    ctx->be->free(ctx, t->ys);
    ctx->be->free(ctx, t->dxs);
}

static void circ_describe(const fnet_layer *l, struct fnet_spec_item *it)
{
    const struct circ *t = (const struct circ *)l;
    fnet_spec_item_init(it, &fnet_circ_desc);
    it->n = l->n_out;
    fnet_spec_set_int(it, "block", t->b);
    fnet_spec_set_flag(it, "bias", t->has_bias);
}

static const struct fnet_layer_ops circ_ops = {
    .desc = &fnet_circ_desc,
    .needs = FNET_OPS(FNET_OP_FFT_PLAN) | FNET_OPS(FNET_OP_FFT_PLAN_FREE) | FNET_OPS(FNET_OP_RFFT) |
             FNET_OPS(FNET_OP_IRFFT) | FNET_OPS(FNET_OP_CMAC) | FNET_OPS(FNET_OP_AXPBY),
    .init = circ_init,
    .reserve = circ_reserve,
    .forward = circ_forward,
    .backward = circ_backward,
    .flops = circ_flops,
    .to_dense = circ_to_dense,
    .num_tensors = circ_num_tensors,
    .tensor = circ_tensor,
    .destroy = circ_destroy,
    .describe = circ_describe,
};

fnet_circ_params fnet_circ_params_default(void)
{
    fnet_circ_params p;
    memset(&p, 0, sizeof(p));
    p.block = 64;
    p.bias = true;
    return p;
}

#define MAX_WIDTH ((int64_t)1 << 31)
#define MAX_BLOCK ((int64_t)1 << 24) // FFT lengths the backends plan in int

fnet_status fnet_circ_create(fnet_ctx *ctx, int64_t n_in, int64_t n_out, const fnet_circ_params *p,
                             fnet_layer **out)
{
    if (ctx == NULL || p == NULL || out == NULL)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "circ: ctx, params and out must not be NULL");
    *out = NULL;
    if (n_in < 1 || n_out < 1 || n_in > MAX_WIDTH || n_out > MAX_WIDTH)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "circ: sizes must be in 1..2^31, got %lld -> "
                         "%lld", (long long)n_in, (long long)n_out);
    if (p->block < 1 || p->block > MAX_BLOCK)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "circ: block %lld is outside 1..2^24",
                         (long long)p->block);
    if (n_in % p->block != 0 || n_out % p->block != 0) {
        bool in = n_out % p->block == 0; // the output size is fine, so the input's is not
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "circ: block %lld does not divide the %s size "
                         "%lld", (long long)p->block, in ? "input" : "output",
                         (long long)(in ? n_in : n_out));
    }
    if (n_in / p->block * n_out > FNET_MAX_LAYER_PARAMS) // <= 2^62: no overflow
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "circ: n_in·n_out/block = %lld·%lld/%lld is "
                         "more than 2^40 parameters", (long long)n_in, (long long)n_out,
                         (long long)p->block);
    struct circ *t = fnet_calloc(1, sizeof(*t));
    if (t == NULL)
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "circ layer");
    t->b = p->block;
    t->P = n_out / p->block;
    t->Q = n_in / p->block;
    t->F = p->block / 2 + 1;
    t->has_bias = p->bias;
    int64_t nc = t->P * t->Q * t->b;
    fnet_status st = fnet_layer_base_init(&t->base, ctx, &circ_ops, n_in, n_out,
                                          nc + (p->bias ? n_out : 0));
    if (st != FNET_OK) {
        fnet_free(t);
        return st;
    }
    // from here on, fnet_layer_free frees whatever was made
    st = ctx->be->fft_plan(ctx, t->b, &t->plan);
    if (st == FNET_OK) {
        t->cs = ctx->be->alloc(ctx, (size_t)spectra(t, t->P * t->Q) * sizeof(float));
        t->dcs = ctx->be->alloc(ctx, (size_t)spectra(t, t->P * t->Q) * sizeof(float));
        t->dc = ctx->be->alloc(ctx, (size_t)nc * sizeof(float));
        if (t->cs == NULL || t->dcs == NULL || t->dc == NULL)
            st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "circ spectra of c (%lld blocks)",
                           (long long)(t->P * t->Q));
    }
    if (st != FNET_OK) {
        fnet_layer_free(&t->base);
        return st;
    }
    *out = &t->base;
    return FNET_OK;
}

fnet_status fnet_model_add_circ(fnet_model *m, int64_t n_out, const fnet_circ_params *p)
{
    if (m == NULL)
        return FNET_ERR_INVALID_ARG;
    fnet_layer *l;
    fnet_status st = fnet_circ_create(fnet_model_ctx(m), fnet_model_n_out(m), n_out, p, &l);
    return st != FNET_OK ? st : fnet_model_add_layer(m, l);
}

// ---- the kind ----

static fnet_status circ_check(const struct fnet_spec_where *w, const struct fnet_spec_item *it)
{
    int64_t block = fnet_spec_int(it, "block", 1);
    if (it->n % block != 0)
        return fnet_spec_fail(w, "block %" PRId64 " does not divide the size %" PRId64, block,
                              it->n);
    return FNET_OK;
}

static fnet_status circ_create_item(fnet_ctx *ctx, const struct fnet_spec_item *it, int64_t n_in,
                                    fnet_layer **out)
{
    fnet_circ_params p = fnet_circ_params_default();
    p.block = fnet_spec_int(it, "block", p.block);
    p.bias = fnet_spec_flag(it, "bias");
    return fnet_circ_create(ctx, n_in, it->n, &p, out);
}

// (n_in / b)·n_out parameters of c, and the bias
static int64_t circ_min_params(const struct fnet_spec_item *it, int64_t n_in)
{
    int64_t b = fnet_spec_int(it, "block", 1);
    int64_t nc = fnet_sat_mul(n_in / (b > 0 ? b : 1), it->n);
    return fnet_spec_flag(it, "bias") ? fnet_sat_add(nc, it->n) : nc;
}

static const struct fnet_spec_opt circ_opts[] = {
    {.name = "block", .type = FNET_SPEC_INT, .required = true},
    {.name = "bias", .type = FNET_SPEC_FLAG, .flag_default = true},
};

const struct fnet_layer_desc fnet_circ_desc = {
    .kind = FNET_LAYER_CIRC,
    .name = "circ",
    .usage = "circ:N:block=B[:bias=0]",
    .arg = FNET_SPEC_ARG_SIZE,
    .opts = circ_opts,
    .n_opts = 2,
    .check = circ_check,
    .create = circ_create_item,
    .min_params = circ_min_params,
};
