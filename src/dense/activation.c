/* Element-wise activations ReLU, tanh, sigmoid, and their three kinds' descriptors (spec "relu",
 * "tanh", "sigmoid"). In place in a model: their derivatives are written in terms of the output
 * y, so the input need not be kept. */
#include "core/layer_impl.h"

struct act_layer {
    fnet_layer base;
    enum fnet_act act;
};

// x (B, n) -> y (B, n); y == x allowed
static fnet_status act_forward(fnet_layer *l, const float *x, int64_t B, float *y)
{
    return l->ctx->be->act_forward(l->ctx, ((const struct act_layer *)l)->act, B * l->n_in, x, y);
}

// dx (B, n) = dy ⊙ f'(y); dx == dy allowed
static fnet_status act_backward(fnet_layer *l, const float *x, const float *y, const float *dy,
                                int64_t B, float *dx, bool accumulate)
{
    if (dx == NULL)
        return FNET_OK;
    return l->ctx->be->act_backward(l->ctx, ((const struct act_layer *)l)->act, B * l->n_in, y,
                                    dy, dx);
}

static double act_flops(const fnet_layer *l, int64_t B)
{
    return (double)B * (double)l->n_in;
}

static void act_describe(const fnet_layer *l, struct fnet_spec_item *it)
{
    fnet_spec_item_init(it, l->ops->desc);
}

#define ACT_OPS(DESC)                                                                              \
    {                                                                                              \
        .desc = &DESC, .needs = FNET_OPS(FNET_OP_ACT_FORWARD) | FNET_OPS(FNET_OP_ACT_BACKWARD),    \
        .forward = act_forward, .backward = act_backward, .flops = act_flops,                      \
        .describe = act_describe, .in_place = true, .uses_output = true                            \
    }
static const struct fnet_layer_ops relu_ops = ACT_OPS(fnet_relu_desc);
static const struct fnet_layer_ops tanh_ops = ACT_OPS(fnet_tanh_desc);
static const struct fnet_layer_ops sigmoid_ops = ACT_OPS(fnet_sigmoid_desc);

// The three kinds, their layer ops and their backend activations, side by side.
static const struct {
    fnet_layer_kind kind;
    const struct fnet_layer_ops *ops;
    enum fnet_act act;
} acts[] = {
    {FNET_LAYER_RELU, &relu_ops, FNET_ACT_RELU},
    {FNET_LAYER_TANH, &tanh_ops, FNET_ACT_TANH},
    {FNET_LAYER_SIGMOID, &sigmoid_ops, FNET_ACT_SIGMOID},
};

fnet_status fnet_activation_create(fnet_ctx *ctx, fnet_layer_kind kind, int64_t n,
                                   fnet_layer **out)
{
    if (out == NULL || ctx == NULL)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "activation: ctx and out must not be NULL");
    *out = NULL;
    int a = -1;
    for (int i = 0; i < (int)(sizeof(acts) / sizeof(acts[0])); i++)
        if (acts[i].kind == kind)
            a = i;
    if (a < 0)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG,
                         "activation: kind %d is not relu, tanh or sigmoid", (int)kind);
    const char *name = acts[a].ops->desc->name;
    if (n < 1)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "%s: width must be positive, got %lld", name,
                         (long long)n);
    struct act_layer *l = fnet_calloc(1, sizeof(*l));
    if (l == NULL)
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "%s layer", name);
    l->act = acts[a].act;
    fnet_status st = fnet_layer_base_init(&l->base, ctx, acts[a].ops, n, n, 0);
    if (st != FNET_OK) {
        fnet_free(l);
        return st;
    }
    *out = &l->base;
    return FNET_OK;
}

fnet_status fnet_model_add_activation(fnet_model *m, fnet_layer_kind kind)
{
    if (m == NULL)
        return FNET_ERR_INVALID_ARG;
    fnet_layer *l;
    fnet_status st = fnet_activation_create(fnet_model_ctx(m), kind, fnet_model_n_out(m), &l);
    return st != FNET_OK ? st : fnet_model_add_layer(m, l);
}

// ---- the kinds ----

static fnet_status act_create_item(fnet_ctx *ctx, const struct fnet_spec_item *it, int64_t n_in,
                                   fnet_layer **out)
{
    return fnet_activation_create(ctx, it->desc->kind, n_in, out);
}

#define ACT_DESC(KIND, NAME)                                                                       \
    {                                                                                              \
        .kind = KIND, .name = NAME, .usage = NAME, .arg = FNET_SPEC_ARG_NONE,                      \
        .create = act_create_item                                                                  \
    }
const struct fnet_layer_desc fnet_relu_desc = ACT_DESC(FNET_LAYER_RELU, "relu");
const struct fnet_layer_desc fnet_tanh_desc = ACT_DESC(FNET_LAYER_TANH, "tanh");
const struct fnet_layer_desc fnet_sigmoid_desc = ACT_DESC(FNET_LAYER_SIGMOID, "sigmoid");
