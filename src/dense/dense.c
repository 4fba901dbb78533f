/* Dense layer y = x·Wᵀ + b with W (n_out, n_in), as PyTorch's nn.Linear: parameters are W then b
 * in the flat vector. Forward and backward are three GEMMs on the backend. */
#include "core/layer_impl.h"
#include "dense/init.h"
#include "io/spec.h"

#include <stdio.h>
#include <string.h>

struct dense {
    fnet_layer base;
    bool has_bias;
};

// x (B, n_in) -> y (B, n_out) = x·Wᵀ + b
static void dense_forward(fnet_layer *l, const float *x, int64_t B, float *y)
{
    const struct dense *d = (const struct dense *)l;
    fnet_ctx *ctx = l->ctx;
    const float *W = l->w, *b = l->w + l->n_out * l->n_in;
    float beta = 0.0f;
    if (d->has_bias) {
        ctx->be->bias_fill(ctx, B, l->n_out, b, y);
        beta = 1.0f;
    }
    ctx->be->sgemm(ctx, false, true, B, l->n_out, l->n_in, 1.0f, x, l->n_in, W, l->n_in, beta, y,
                   l->n_out);
}

// dW (n_out, n_in) (+)= dyᵀ·x; db (n_out) (+)= Σ_rows dy; dx (B, n_in) = dy·W
static void dense_backward(fnet_layer *l, const float *x, const float *y, const float *dy,
                           int64_t B, float *dx, bool accumulate)
{
    const struct dense *d = (const struct dense *)l;
    fnet_ctx *ctx = l->ctx;
    int64_t n_in = l->n_in, n_out = l->n_out;
    ctx->be->sgemm(ctx, true, false, n_out, n_in, B, 1.0f, dy, n_out, x, n_in,
                   accumulate ? 1.0f : 0.0f, l->g, n_in);
    if (d->has_bias)
        ctx->be->bias_grad(ctx, B, n_out, dy, l->g + n_out * n_in, accumulate);
    if (dx)
        ctx->be->sgemm(ctx, false, false, B, n_in, n_out, 1.0f, dy, n_out, l->w, n_in, 0.0f, dx,
                       n_in);
}

static fnet_status dense_init(fnet_layer *l, fnet_init init, fnet_rng *rng)
{
    int64_t nw = l->n_out * l->n_in;
    fnet_init_fill(init, l->n_in, l->n_out, rng, nw, l->w);
    memset(l->w + nw, 0, (size_t)(l->n_params - nw) * sizeof(float));
    return FNET_OK;
}

static double dense_flops(const fnet_layer *l, int64_t B)
{
    return 2.0 * (double)B * (double)l->n_in * (double)l->n_out;
}

static fnet_status dense_to_dense(const fnet_layer *l, float *W)
{
    memcpy(W, l->w, (size_t)(l->n_out * l->n_in) * sizeof(float));
    return FNET_OK;
}

static int dense_num_tensors(const fnet_layer *l)
{
    return ((const struct dense *)l)->has_bias ? 2 : 1;
}

static void dense_tensor(const fnet_layer *l, int i, fnet_tensor_info *t)
{
    if (i == 0) {
        t->name = "weight";
        t->ndim = 2;
        t->shape[0] = l->n_out;
        t->shape[1] = l->n_in;
        t->offset = 0;
        t->numel = l->n_out * l->n_in;
        t->decay = true;
    } else {
        t->name = "bias";
        t->ndim = 1;
        t->shape[0] = l->n_out;
        t->offset = l->n_out * l->n_in;
        t->numel = l->n_out;
        t->decay = false;
    }
}

static int dense_describe(const fnet_layer *l, char *buf, size_t cap)
{
    struct fnet_spec_item it = {.kind = FNET_LAYER_DENSE, .n = l->n_out,
                                .no_bias = !((const struct dense *)l)->has_bias};
    return fnet_spec_item_format(&it, buf, cap);
}

static const struct fnet_layer_ops dense_ops = {
    .describe = dense_describe,
    .kind = FNET_LAYER_DENSE,
    .init = dense_init,
    .forward = dense_forward,
    .backward = dense_backward,
    .flops = dense_flops,
    .to_dense = dense_to_dense,
    .num_tensors = dense_num_tensors,
    .tensor = dense_tensor,
};

// Sizes whose product would not fit the flat vector's indices are refused up front.
#define MAX_WIDTH ((int64_t)1 << 31)

fnet_status fnet_dense_create(fnet_ctx *ctx, int64_t n_in, int64_t n_out, bool bias,
                              fnet_layer **out)
{
    if (out == NULL || ctx == NULL)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "dense: ctx and out must not be NULL");
    *out = NULL;
    if (n_in < 1 || n_out < 1 || n_in > MAX_WIDTH || n_out > MAX_WIDTH ||
        n_in * n_out > ((int64_t)1 << 40))
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG,
                         "dense: sizes must be positive and n_in·n_out at most 2^40, got %lld x %lld",
                         (long long)n_out, (long long)n_in);
    struct dense *d = fnet_calloc(1, sizeof(*d));
    if (d == NULL)
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "dense layer");
    d->has_bias = bias;
    fnet_status st = fnet_layer_base_init(&d->base, ctx, &dense_ops, n_in, n_out,
                                          n_in * n_out + (bias ? n_out : 0));
    if (st != FNET_OK)
        goto out_free_d;
    *out = &d->base;
    return FNET_OK;
out_free_d:
    fnet_free(d);
    return st;
}
