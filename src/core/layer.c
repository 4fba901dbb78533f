/* The public layer functions: argument checks at the boundary, then the kind's table entry. */
#include "core/layer_impl.h"

#include <string.h>

const char *fnet_layer_kind_name(fnet_layer_kind kind)
{
    switch (kind) {
    case FNET_LAYER_DENSE: return "dense";
    case FNET_LAYER_RELU: return "relu";
    case FNET_LAYER_TANH: return "tanh";
    case FNET_LAYER_SIGMOID: return "sigmoid";
    case FNET_LAYER_DROPOUT: return "dropout";
    case FNET_LAYER_TT: return "tt";
    case FNET_LAYER_LOWRANK: return "lowrank";
    case FNET_LAYER_CIRC: return "circ";
    case FNET_LAYER_SPARSE: return "sparse";
    }
    return "unknown";
}

fnet_status fnet_layer_base_init(fnet_layer *l, fnet_ctx *ctx, const struct fnet_layer_ops *ops,
                                 int64_t n_in, int64_t n_out, int64_t n_params)
{
    l->ops = ops;
    l->ctx = ctx;
    l->n_in = n_in;
    l->n_out = n_out;
    l->n_params = n_params;
    if (n_params > 0) {
        l->own = fnet_calloc((size_t)n_params * 2, sizeof(float));
        if (l->own == NULL)
            return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "%s layer: %lld parameters",
                             fnet_layer_kind_name(ops->kind), (long long)n_params);
        l->w = l->own;
        l->g = l->own + n_params;
    }
    return FNET_OK;
}

void fnet_layer_bind(fnet_layer *l, float *w, float *g)
{
    if (l->n_params == 0)
        return;
    if (l->w != w)
        memcpy(w, l->w, (size_t)l->n_params * sizeof(float));
    if (l->g != g)
        memcpy(g, l->g, (size_t)l->n_params * sizeof(float));
    fnet_free(l->own);
    l->own = NULL;
    l->w = w;
    l->g = g;
}

void fnet_layer_free(fnet_layer *l)
{
    if (l == NULL)
        return;
    if (l->ops->destroy)
        l->ops->destroy(l);
    fnet_free(l->own);
    fnet_free(l); // every kind's struct starts with its fnet_layer
}

fnet_status fnet_layer_init(fnet_layer *l, fnet_init init, fnet_rng *rng)
{
    if (l == NULL || rng == NULL)
        return FNET_ERR_INVALID_ARG;
    if ((int)init < FNET_INIT_GLOROT_UNIFORM || (int)init > FNET_INIT_UNIFORM)
        return fnet_fail(l->ctx, FNET_ERR_INVALID_ARG, "unknown initializer %d", (int)init);
    return l->ops->init ? l->ops->init(l, init, rng) : FNET_OK;
}

// Size l's workspaces for max_batch when it grows, and, when follow_threads, also when l's kind
// keeps a workspace per worker and the ctx's thread count changed since (its results then depend
// on the thread count now, not on the one its workspaces were first sized for). Only a forward
// pass follows the threads: between a forward and its backward the saved states must stay.
static fnet_status reserve(fnet_layer *l, int64_t max_batch, bool follow_threads)
{
    if (l == NULL)
        return FNET_ERR_INVALID_ARG;
    if (max_batch < 1)
        return fnet_fail(l->ctx, FNET_ERR_INVALID_ARG, "batch must be >= 1, got %lld",
                         (long long)max_batch);
    bool resize = follow_threads && l->ops->threads_sized && l->max_batch > 0 &&
                  l->reserved_threads != l->ctx->threads;
    if (max_batch <= l->max_batch && !resize)
        return FNET_OK;
    max_batch = max_batch > l->max_batch ? max_batch : l->max_batch;
    if (l->ops->reserve) {
        fnet_status st = l->ops->reserve(l, max_batch);
        if (st != FNET_OK)
            return st;
    }
    l->max_batch = max_batch;
    l->reserved_threads = l->ctx->threads;
    return FNET_OK;
}

fnet_status fnet_layer_reserve(fnet_layer *l, int64_t max_batch)
{
    return reserve(l, max_batch, false);
}

fnet_status fnet_layer_reserve_forward(fnet_layer *l, int64_t batch)
{
    return reserve(l, batch, true);
}

fnet_status fnet_layer_forward(fnet_layer *l, const float *x, int64_t batch, float *y)
{
    if (l == NULL)
        return FNET_ERR_INVALID_ARG;
    if (x == NULL || y == NULL)
        return fnet_fail(l->ctx, FNET_ERR_INVALID_ARG, "%s forward: x and y must not be NULL",
                         fnet_layer_kind_name(l->ops->kind));
    fnet_status st = fnet_layer_reserve_forward(l, batch);
    if (st != FNET_OK)
        return st;
    l->ops->forward(l, x, batch, y);
    return FNET_OK;
}

fnet_status fnet_layer_backward(fnet_layer *l, const float *x, const float *y, const float *dy,
                                int64_t batch, float *dx)
{
    if (l == NULL)
        return FNET_ERR_INVALID_ARG;
    if (x == NULL || y == NULL || dy == NULL)
        return fnet_fail(l->ctx, FNET_ERR_INVALID_ARG, "%s backward: x, y and dy must not be NULL",
                         fnet_layer_kind_name(l->ops->kind));
    if (batch < 1 || batch > l->max_batch)
        return fnet_fail(l->ctx, FNET_ERR_INVALID_ARG,
                         "%s backward: batch %lld is not that of a forward (at most %lld)",
                         fnet_layer_kind_name(l->ops->kind), (long long)batch,
                         (long long)l->max_batch);
    l->ops->backward(l, x, y, dy, batch, dx, true);
    return FNET_OK;
}

void fnet_layer_set_training(fnet_layer *l, bool training)
{
    l->training = training;
}

fnet_layer_kind fnet_layer_kind_of(const fnet_layer *l)
{
    return l->ops->kind;
}

int64_t fnet_layer_n_in(const fnet_layer *l)
{
    return l->n_in;
}

int64_t fnet_layer_n_out(const fnet_layer *l)
{
    return l->n_out;
}

int64_t fnet_layer_num_params(const fnet_layer *l)
{
    return l->n_params;
}

float *fnet_layer_params(fnet_layer *l)
{
    return l->w;
}

float *fnet_layer_grads(fnet_layer *l)
{
    return l->g;
}

double fnet_layer_flops(const fnet_layer *l, int64_t batch)
{
    return l->ops->flops ? l->ops->flops(l, batch) : 0.0;
}

fnet_status fnet_layer_to_dense(const fnet_layer *l, float *W)
{
    if (l == NULL || W == NULL)
        return FNET_ERR_INVALID_ARG;
    if (l->ops->to_dense == NULL)
        return fnet_fail(l->ctx, FNET_ERR_UNSUPPORTED, "%s layer is not linear: no dense matrix",
                         fnet_layer_kind_name(l->ops->kind));
    return l->ops->to_dense(l, W);
}

int fnet_layer_num_tensors(const fnet_layer *l)
{
    return l->ops->num_tensors ? l->ops->num_tensors(l) : 0;
}

fnet_status fnet_layer_tensor(const fnet_layer *l, int i, fnet_tensor_info *info)
{
    if (l == NULL || info == NULL || i < 0 || i >= fnet_layer_num_tensors(l))
        return FNET_ERR_INVALID_ARG;
    memset(info, 0, sizeof(*info));
    l->ops->tensor(l, i, info);
    return FNET_OK;
}
