/* The public layer functions: argument checks at the boundary, then the kind's table entry; the
 * layer's own parameters in backend memory and their host copies. */
#include "core/layer_impl.h"

#include <string.h>

fnet_status fnet_layer_workspaces(fnet_layer *l, int k, float **const bufs[], const int64_t counts[],
                                  const char *what, int64_t max_batch)
{
    fnet_ctx *ctx = l->ctx;
    float *fresh[4] = {NULL};
    FNET_ASSERT(ctx, k >= 1 && k <= 4);
    bool ok = true;
    for (int i = 0; i < k; i++) {
        fresh[i] = ctx->be->alloc(ctx, (size_t)counts[i] * sizeof(float));
        ok = ok && fresh[i] != NULL;
    }
    if (!ok) {
        for (int i = 0; i < k; i++)
            ctx->be->free(ctx, fresh[i]);
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "%s for batch %lld", what,
                         (long long)max_batch);
    }
    for (int i = 0; i < k; i++) {
        ctx->be->free(ctx, *bufs[i]);
        *bufs[i] = fresh[i];
    }
    return FNET_OK;
}

fnet_status fnet_layer_base_init(fnet_layer *l, fnet_ctx *ctx, const struct fnet_layer_ops *ops,
                                 int64_t n_in, int64_t n_out, int64_t n_params)
{
    l->ops = ops;
    l->ctx = ctx;
    l->n_in = n_in;
    l->n_out = n_out;
    l->n_params = n_params;
    fnet_status st = fnet_backend_require(ctx, ops->needs, ops->desc->name);
    if (st != FNET_OK)
        return st;
    if (n_params > FNET_MAX_LAYER_PARAMS)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "%s layer: %lld parameters, more than 2^40",
                         ops->desc->name, (long long)n_params);
    if (n_params > 0) {
        l->own = fnet_be_zeros(ctx, 2 * n_params);
        if (l->own == NULL)
            return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "%s layer: %lld parameters",
                             ops->desc->name, (long long)n_params);
        l->w = l->own;
        l->g = l->own + n_params;
    }
    return FNET_OK;
}

void fnet_layer_bind(fnet_layer *l, float *w, float *g)
{
    if (l->n_params == 0)
        return;
    fnet_ctx *ctx = l->ctx;
    size_t bytes = (size_t)l->n_params * sizeof(float);
    ctx->be->copy(ctx, w, l->w, bytes);
    ctx->be->copy(ctx, g, l->g, bytes);
    ctx->be->free(ctx, l->own);
    l->own = NULL;
    l->w = w;
    l->g = g;
}

void fnet_layer_view(fnet_layer *l, float *w, float *g)
{
    l->ctx->be->free(l->ctx, l->own);
    l->own = NULL;
    l->w = w;
    l->g = g;
}

float *fnet_layer_host_params(const fnet_layer *l)
{
    float *h = fnet_malloc_array((size_t)(l->n_params > 0 ? l->n_params : 1), sizeof(float));
    if (h != NULL && l->n_params > 0)
        l->ctx->be->download(l->ctx, h, l->w, (size_t)l->n_params * sizeof(float));
    return h;
}

void fnet_layer_free(fnet_layer *l)
{
    if (l == NULL)
        return;
    if (l->ops->destroy)
        l->ops->destroy(l);
    l->ctx->be->free(l->ctx, l->own);
    fnet_free(l); // every kind's struct starts with its fnet_layer
}

fnet_status fnet_layer_init(fnet_layer *l, fnet_init init, fnet_rng *rng)
{
    if (l == NULL || rng == NULL)
        return FNET_ERR_INVALID_ARG;
    if ((int)init < FNET_INIT_GLOROT_UNIFORM || (int)init > FNET_INIT_UNIFORM)
        return fnet_fail(l->ctx, FNET_ERR_INVALID_ARG, "unknown initializer %d", (int)init);
    if (l->ops->init == NULL)
        return FNET_OK;
    // drawn on the host (the same numbers on every backend), uploaded a piece at a time
    struct fnet_init_out out = {l, 0};
    fnet_status st = l->ops->init(l, init, rng, &out);
    if (st == FNET_OK)
        FNET_ASSERT(l->ctx, out.done == l->n_params);
    return st;
}

void fnet_init_put(struct fnet_init_out *out, const float *w, int64_t n)
{
    fnet_layer *l = out->l;
    if (n > 0 && out->done + n <= l->n_params)
        l->ctx->be->upload(l->ctx, l->w + out->done, w, (size_t)n * sizeof(float));
    out->done += n;
}

void fnet_init_put_zeros(struct fnet_init_out *out, int64_t n)
{
    fnet_layer *l = out->l;
    if (n > 0 && out->done + n <= l->n_params)
        l->ctx->be->fill(l->ctx, n, 0.0f, l->w + out->done);
    out->done += n;
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
                         fnet_layer_name(l));
    fnet_status st = fnet_layer_reserve_forward(l, batch);
    if (st != FNET_OK)
        return st;
    return l->ops->forward(l, x, batch, y);
}

fnet_status fnet_layer_backward(fnet_layer *l, const float *x, const float *y, const float *dy,
                                int64_t batch, float *dx)
{
    if (l == NULL)
        return FNET_ERR_INVALID_ARG;
    if (x == NULL || y == NULL || dy == NULL)
        return fnet_fail(l->ctx, FNET_ERR_INVALID_ARG, "%s backward: x, y and dy must not be NULL",
                         fnet_layer_name(l));
    if (batch < 1 || batch > l->max_batch)
        return fnet_fail(l->ctx, FNET_ERR_INVALID_ARG,
                         "%s backward: batch %lld is not that of a forward (at most %lld)",
                         fnet_layer_name(l), (long long)batch, (long long)l->max_batch);
    return l->ops->backward(l, x, y, dy, batch, dx, true);
}

void fnet_layer_set_training(fnet_layer *l, bool training)
{
    l->training = training;
}

fnet_layer_kind fnet_layer_kind_of(const fnet_layer *l)
{
    return l->ops->desc->kind;
}

fnet_ctx *fnet_layer_ctx(const fnet_layer *l)
{
    return l->ctx;
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
                         fnet_layer_name(l));
    return l->ops->to_dense(l, W);
}

fnet_status fnet_layer_get_params(const fnet_layer *l, float *w)
{
    return l ? fnet_be_transfer(l->ctx, "layer get_params", w, l->w, l->n_params, true)
             : FNET_ERR_INVALID_ARG;
}

fnet_status fnet_layer_set_params(fnet_layer *l, const float *w)
{
    return l ? fnet_be_transfer(l->ctx, "layer set_params", l->w, w, l->n_params, false)
             : FNET_ERR_INVALID_ARG;
}

fnet_status fnet_layer_get_grads(const fnet_layer *l, float *g)
{
    return l ? fnet_be_transfer(l->ctx, "layer get_grads", g, l->g, l->n_params, true)
             : FNET_ERR_INVALID_ARG;
}

fnet_status fnet_layer_zero_grads(fnet_layer *l)
{
    if (l == NULL)
        return FNET_ERR_INVALID_ARG;
    if (l->n_params > 0)
        l->ctx->be->fill(l->ctx, l->n_params, 0.0f, l->g);
    return FNET_OK;
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
