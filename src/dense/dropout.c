/* Inverted dropout (Srivastava et al. 2014): in training each unit is kept with probability 1−p
 * and scaled by 1/(1−p), so evaluation is the identity. The mask is drawn from the layer's own
 * seeded rng (seeded by fnet_layer_init) and kept for the backward pass. */
#include "core/layer_impl.h"
#include "io/spec.h"

#include <stdio.h>
#include <string.h>

struct dropout {
    fnet_layer base;
    float p;
    fnet_rng rng;
    float *mask; // (max_batch, n): 0 or 1/(1−p)
};

static fnet_status dropout_reserve(fnet_layer *l, int64_t max_batch)
{
    struct dropout *d = (struct dropout *)l;
    float *mask = l->ctx->be->alloc(l->ctx, (size_t)(max_batch * l->n_in) * sizeof(float));
    if (mask == NULL)
        return fnet_fail(l->ctx, FNET_ERR_OUT_OF_MEMORY, "dropout mask for batch %lld",
                         (long long)max_batch);
    l->ctx->be->free(l->ctx, d->mask);
    d->mask = mask;
    return FNET_OK;
}

// x (B, n) -> y (B, n); y == x allowed
static void dropout_forward(fnet_layer *l, const float *x, int64_t B, float *y)
{
    struct dropout *d = (struct dropout *)l;
    int64_t n = B * l->n_in;
    if (!l->training || d->p == 0.0f) {
        if (x != y)
            memcpy(y, x, (size_t)n * sizeof(float));
        return;
    }
    // The uniform draw is compared against p on 24 bits: exact for any p representable so.
    uint32_t threshold = (uint32_t)((double)d->p * 16777216.0);
    float keep = 1.0f / (1.0f - d->p);
    for (int64_t i = 0; i < n; i++)
        d->mask[i] = (uint32_t)(fnet_rng_next(&d->rng) >> 40) < threshold ? 0.0f : keep;
    l->ctx->be->mul(l->ctx, n, x, d->mask, y);
}

// dx (B, n) = dy ⊙ mask
static void dropout_backward(fnet_layer *l, const float *x, const float *y, const float *dy,
                             int64_t B, float *dx, bool accumulate)
{
    struct dropout *d = (struct dropout *)l;
    if (dx == NULL)
        return;
    int64_t n = B * l->n_in;
    if (!l->training || d->p == 0.0f) {
        if (dx != dy)
            memcpy(dx, dy, (size_t)n * sizeof(float));
        return;
    }
    l->ctx->be->mul(l->ctx, n, dy, d->mask, dx);
}

static fnet_status dropout_init(fnet_layer *l, fnet_init init, fnet_rng *rng)
{
    struct dropout *d = (struct dropout *)l;
    fnet_rng_seed(&d->rng, fnet_rng_next(rng));
    return FNET_OK;
}

static double dropout_flops(const fnet_layer *l, int64_t B)
{
    return (double)B * (double)l->n_in;
}

static void dropout_destroy(fnet_layer *l)
{
    struct dropout *d = (struct dropout *)l;
    l->ctx->be->free(l->ctx, d->mask);
}

// The spec parser's canonical text, which prints p so that it parses back to the same float.
static int dropout_describe(const fnet_layer *l, char *buf, size_t cap)
{
    struct fnet_spec_item it = {.kind = FNET_LAYER_DROPOUT, .p = ((const struct dropout *)l)->p};
    return fnet_spec_item_format(&it, buf, cap);
}

static const struct fnet_layer_ops dropout_ops = {
    .describe = dropout_describe,
    .kind = FNET_LAYER_DROPOUT,
    .init = dropout_init,
    .reserve = dropout_reserve,
    .forward = dropout_forward,
    .backward = dropout_backward,
    .flops = dropout_flops,
    .destroy = dropout_destroy,
    .in_place = true,
};

fnet_status fnet_dropout_create(fnet_ctx *ctx, int64_t n, float p, fnet_layer **out)
{
    if (out == NULL || ctx == NULL)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "dropout: ctx and out must not be NULL");
    *out = NULL;
    if (n < 1)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "dropout: width must be positive, got %lld",
                         (long long)n);
    if (!(p >= 0.0f && p < 1.0f))
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "dropout: p must be in [0, 1), got %g",
                         (double)p);
    struct dropout *d = fnet_calloc(1, sizeof(*d));
    if (d == NULL)
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "dropout layer");
    d->p = p;
    fnet_rng_seed(&d->rng, 0);
    fnet_status st = fnet_layer_base_init(&d->base, ctx, &dropout_ops, n, n, 0);
    if (st != FNET_OK) {
        fnet_free(d);
        return st;
    }
    *out = &d->base;
    return FNET_OK;
}
