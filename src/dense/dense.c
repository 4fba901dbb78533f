/* Dense layer y = x·Wᵀ + b with W (n_out, n_in), as PyTorch's nn.Linear: parameters are W then b
 * in the flat vector. Forward and backward are three GEMMs on the backend. Also the "dense" kind's
 * descriptor: spec "dense:N[:bias=0]". */
#include "core/layer_impl.h"
#include "dense/init.h"

#include <string.h>

struct dense {
    fnet_layer base;
    bool has_bias;
};

// x (B, n_in) -> y (B, n_out) = x·Wᵀ + b
static fnet_status dense_forward(fnet_layer *l, const float *x, int64_t B, float *y)
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
    return FNET_OK;
}

// dW (n_out, n_in) (+)= dyᵀ·x; db (n_out) (+)= Σ_rows dy; dx (B, n_in) = dy·W
static fnet_status dense_backward(fnet_layer *l, const float *x, const float *y, const float *dy,
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
    return FNET_OK;
}

// W drawn by init a piece at a time (the draws in order, as one fill of all of W), the bias zero
static fnet_status dense_init(fnet_layer *l, fnet_init init, fnet_rng *rng,
                              struct fnet_init_out *out)
{
    float piece[FNET_INIT_CHUNK];
    int64_t nw = l->n_out * l->n_in;
    for (int64_t done = 0; done < nw; done += FNET_INIT_CHUNK) {
        int64_t k = nw - done < FNET_INIT_CHUNK ? nw - done : FNET_INIT_CHUNK;
        fnet_init_fill(init, l->n_in, l->n_out, rng, k, piece);
        fnet_init_put(out, piece, k);
    }
    fnet_init_put_zeros(out, l->n_params - nw);
    return FNET_OK;
}

static double dense_flops(const fnet_layer *l, int64_t B)
{
    return 2.0 * (double)B * (double)l->n_in * (double)l->n_out;
}

// W (n_out, n_in), host: the weight, downloaded
static fnet_status dense_to_dense(const fnet_layer *l, float *W)
{
    l->ctx->be->download(l->ctx, W, l->w, (size_t)(l->n_out * l->n_in) * sizeof(float));
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

static void dense_describe(const fnet_layer *l, struct fnet_spec_item *it)
{
    fnet_spec_item_init(it, &fnet_dense_desc);
    it->n = l->n_out;
    fnet_spec_set_flag(it, "bias", ((const struct dense *)l)->has_bias);
}

static const struct fnet_layer_ops dense_ops = {
    .desc = &fnet_dense_desc,
    .init = dense_init,
    .forward = dense_forward,
    .backward = dense_backward,
    .flops = dense_flops,
    .to_dense = dense_to_dense,
    .num_tensors = dense_num_tensors,
    .tensor = dense_tensor,
    .describe = dense_describe,
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
        n_in * n_out > FNET_MAX_LAYER_PARAMS)
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

fnet_status fnet_model_add_dense(fnet_model *m, int64_t n_out)
{
    if (m == NULL)
        return FNET_ERR_INVALID_ARG;
    fnet_layer *l;
    fnet_status st =
        fnet_dense_create(fnet_model_ctx(m), fnet_model_n_out(m), n_out, true, &l);
    return st != FNET_OK ? st : fnet_model_add_layer(m, l);
}

// ---- the kind ----

static fnet_status dense_create_item(fnet_ctx *ctx, const struct fnet_spec_item *it, int64_t n_in,
                                     fnet_layer **out)
{
    return fnet_dense_create(ctx, n_in, it->n, fnet_spec_flag(it, "bias"), out);
}

static int64_t dense_min_params(const struct fnet_spec_item *it, int64_t n_in)
{
    int64_t weights = fnet_sat_mul(n_in, it->n);
    return fnet_spec_flag(it, "bias") ? fnet_sat_add(weights, it->n) : weights;
}

static const struct fnet_spec_opt dense_opts[] = {
    {.name = "bias", .type = FNET_SPEC_FLAG, .flag_default = true},
};

const struct fnet_layer_desc fnet_dense_desc = {
    .kind = FNET_LAYER_DENSE,
    .name = "dense",
    .usage = "dense:N[:bias=0]",
    .arg = FNET_SPEC_ARG_SIZE,
    .opts = dense_opts,
    .n_opts = 1,
    .create = dense_create_item,
    .min_params = dense_min_params,
};
