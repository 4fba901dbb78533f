/* Inverted dropout (Srivastava et al. 2014): in training each unit is kept with probability 1−p
 * and scaled by 1/(1−p), so evaluation is the identity. The mask of the k-th training forward is
 * the backend's counter-based draw (seed, k) (docs/design.md, "Random numbers"), the seed from
 * fnet_layer_init's rng: every backend draws the same mask. Kept for the backward pass. Also the
 * "dropout" kind's descriptor: spec "dropout:P". */
#include "core/layer_impl.h"

struct dropout {
    fnet_layer base;
    float p;
    uint64_t seed;  // of the mask stream, from fnet_layer_init
    uint64_t step;  // training forwards so far: the counter of the next mask
    float *mask;    // (max_batch, n): 0 or 1/(1−p), of the last training forward
};

static fnet_status dropout_reserve(fnet_layer *l, int64_t max_batch)
{
    struct dropout *d = (struct dropout *)l;
    float **const bufs[] = {&d->mask};
    const int64_t counts[] = {max_batch * l->n_in};
    return fnet_layer_workspaces(l, 1, bufs, counts, "dropout mask", max_batch);
}

// x (B, n) -> y (B, n); y == x allowed
static fnet_status dropout_forward(fnet_layer *l, const float *x, int64_t B, float *y)
{
    struct dropout *d = (struct dropout *)l;
    fnet_ctx *ctx = l->ctx;
    int64_t n = B * l->n_in;
    if (!l->training || d->p == 0.0f) {
        ctx->be->copy(ctx, y, x, (size_t)n * sizeof(float));
        return FNET_OK;
    }
    // distributed, this rank's rows are rows row0.. of the batch: their part of its mask
    ctx->be->dropout_mask(ctx, n, d->p, d->seed, d->step++, (uint64_t)(l->row0 * l->n_in),
                          d->mask);
    ctx->be->mul(ctx, n, x, d->mask, y);
    return FNET_OK;
}

// dx (B, n) = dy ⊙ mask
static fnet_status dropout_backward(fnet_layer *l, const float *x, const float *y,
                                    const float *dy, int64_t B, float *dx, bool accumulate)
{
    struct dropout *d = (struct dropout *)l;
    fnet_ctx *ctx = l->ctx;
    if (dx == NULL)
        return FNET_OK;
    int64_t n = B * l->n_in;
    if (!l->training || d->p == 0.0f)
        ctx->be->copy(ctx, dx, dy, (size_t)n * sizeof(float));
    else
        ctx->be->mul(ctx, n, dy, d->mask, dx);
    return FNET_OK;
}

static fnet_status dropout_init(fnet_layer *l, fnet_init init, fnet_rng *rng,
                                struct fnet_init_out *out)
{
    struct dropout *d = (struct dropout *)l;
    d->seed = fnet_rng_next(rng);
    d->step = 0;
    return FNET_OK;
}

static void dropout_get_rng(const fnet_layer *l, uint64_t state[2])
{
    const struct dropout *d = (const struct dropout *)l;
    state[0] = d->seed;
    state[1] = d->step;
}

static void dropout_set_rng(fnet_layer *l, const uint64_t state[2])
{
    struct dropout *d = (struct dropout *)l;
    d->seed = state[0];
    d->step = state[1];
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

static void dropout_describe(const fnet_layer *l, struct fnet_spec_item *it)
{
    fnet_spec_item_init(it, &fnet_dropout_desc);
    it->p = ((const struct dropout *)l)->p;
}

static const struct fnet_layer_ops dropout_ops = {
    .desc = &fnet_dropout_desc,
    .needs = FNET_OPS(FNET_OP_MUL) | FNET_OPS(FNET_OP_DROPOUT_MASK),
    .init = dropout_init,
    .reserve = dropout_reserve,
    .forward = dropout_forward,
    .backward = dropout_backward,
    .flops = dropout_flops,
    .get_rng = dropout_get_rng,
    .set_rng = dropout_set_rng,
    .destroy = dropout_destroy,
    .describe = dropout_describe,
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
    fnet_status st = fnet_layer_base_init(&d->base, ctx, &dropout_ops, n, n, 0);
    if (st != FNET_OK) {
        fnet_free(d);
        return st;
    }
    *out = &d->base;
    return FNET_OK;
}

fnet_status fnet_model_add_dropout(fnet_model *m, float p)
{
    if (m == NULL)
        return FNET_ERR_INVALID_ARG;
    fnet_layer *l;
    fnet_status st = fnet_dropout_create(fnet_model_ctx(m), fnet_model_n_out(m), p, &l);
    return st != FNET_OK ? st : fnet_model_add_layer(m, l);
}

// ---- the kind ----

static fnet_status dropout_create_item(fnet_ctx *ctx, const struct fnet_spec_item *it,
                                       int64_t n_in, fnet_layer **out)
{
    return fnet_dropout_create(ctx, n_in, it->p, out);
}

const struct fnet_layer_desc fnet_dropout_desc = {
    .kind = FNET_LAYER_DROPOUT,
    .name = "dropout",
    .usage = "dropout:P",
    .arg = FNET_SPEC_ARG_REAL,
    .arg_name = "probability",
    .arg_symbol = "P",
    .arg_range = {0.0, 1.0, false, true},
    .create = dropout_create_item,
};
