/* Element-wise activations ReLU, tanh, sigmoid. In place in a model: their derivatives are
 * written in terms of the output y, so the input need not be kept. */
#include "core/layer_impl.h"

#include <stdio.h>
#include <string.h>

// x (B, n) -> y (B, n); y == x allowed
static void act_forward(fnet_layer *l, const float *x, int64_t B, float *y)
{
    l->ctx->be->act_forward(l->ctx, l->ops->kind, B * l->n_in, x, y);
}

// dx (B, n) = dy ⊙ f'(y); dx == dy allowed
static void act_backward(fnet_layer *l, const float *x, const float *y, const float *dy,
                         int64_t B, float *dx, bool accumulate)
{
    if (dx)
        l->ctx->be->act_backward(l->ctx, l->ops->kind, B * l->n_in, y, dy, dx);
}

static double act_flops(const fnet_layer *l, int64_t B)
{
    return (double)B * (double)l->n_in;
}

static int act_describe(const fnet_layer *l, char *buf, size_t cap)
{
    return snprintf(buf, cap, "%s", fnet_layer_kind_name(l->ops->kind));
}

#define ACT_OPS(KIND)                                                                              \
    {                                                                                              \
        .kind = KIND, .forward = act_forward, .backward = act_backward, .flops = act_flops,        \
        .describe = act_describe, .in_place = true, .uses_output = true                            \
    }
static const struct fnet_layer_ops relu_ops = ACT_OPS(FNET_LAYER_RELU);
static const struct fnet_layer_ops tanh_ops = ACT_OPS(FNET_LAYER_TANH);
static const struct fnet_layer_ops sigmoid_ops = ACT_OPS(FNET_LAYER_SIGMOID);

fnet_status fnet_activation_create(fnet_ctx *ctx, fnet_layer_kind kind, int64_t n,
                                   fnet_layer **out)
{
    if (out == NULL || ctx == NULL)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "activation: ctx and out must not be NULL");
    *out = NULL;
    const struct fnet_layer_ops *ops = kind == FNET_LAYER_RELU      ? &relu_ops
                                       : kind == FNET_LAYER_TANH    ? &tanh_ops
                                       : kind == FNET_LAYER_SIGMOID ? &sigmoid_ops
                                                                    : NULL;
    if (ops == NULL)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "activation: kind %d is not relu, tanh or sigmoid",
                         (int)kind);
    if (n < 1)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "%s: width must be positive, got %lld",
                         fnet_layer_kind_name(kind), (long long)n);
    fnet_layer *l = fnet_calloc(1, sizeof(*l));
    if (l == NULL)
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "%s layer", fnet_layer_kind_name(kind));
    fnet_status st = fnet_layer_base_init(l, ctx, ops, n, n, 0);
    if (st != FNET_OK) {
        fnet_free(l);
        return st;
    }
    *out = l;
    return FNET_OK;
}
