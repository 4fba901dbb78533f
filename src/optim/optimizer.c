/* First-order optimizers on one flat vector (include/factornet/optim.h): parameter checks, state
 * vectors (backend memory), the step counter and Adam's bias corrections. The fused update is the backend's
 * (reference: src/cpu/ref_optim.c). Semantics are PyTorch's torch.optim; weight_decay is the
 * coupled L2 term g += wd·w for every kind except AdamW, whose decay is decoupled
 * (Loshchilov & Hutter, "Decoupled Weight Decay Regularization", 2019). */
#include "core/internal.h"
#include "core/backend.h"
#include "core/replay.h"

#include <math.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>

#define MAX_STATES 2

struct fnet_optimizer {
    fnet_ctx *ctx;
    fnet_optim_params p;
    int64_t n;
    int64_t steps;
    float lr; // current rate: p.lr until fnet_optimizer_set_lr()
    int num_states;
    float *state[MAX_STATES]; // views into one block owned by state[0]
    const char *state_name[MAX_STATES];
};

static const char *const kind_names[] = {
    [FNET_OPTIM_SGD] = "sgd",         [FNET_OPTIM_MOMENTUM] = "momentum",
    [FNET_OPTIM_NESTEROV] = "nesterov", [FNET_OPTIM_RMSPROP] = "rmsprop",
    [FNET_OPTIM_ADAM] = "adam",       [FNET_OPTIM_ADAMW] = "adamw",
    [FNET_OPTIM_LBFGS] = "lbfgs",     [FNET_OPTIM_CG] = "cg",
};
#define NUM_KINDS ((int)(sizeof(kind_names) / sizeof(kind_names[0])))

fnet_optim_params fnet_optim_params_default(fnet_optim_kind kind)
{
    bool adaptive =
        kind == FNET_OPTIM_ADAM || kind == FNET_OPTIM_ADAMW || kind == FNET_OPTIM_RMSPROP;
    fnet_optim_params p = {
        .kind = kind,
        .lr = adaptive ? 1e-3f : 1e-2f,
        .momentum = 0.9f,
        .beta1 = 0.9f,
        .beta2 = 0.999f,
        .eps = kind == FNET_OPTIM_RMSPROP ? 1e-7f : 1e-8f, // Keras's RMSprop ε
        .rho = 0.9f,
        .weight_decay = kind == FNET_OPTIM_ADAMW ? 0.01f : 0.0f,
        .schedule = FNET_SCHEDULE_CONSTANT,
        .step_epochs = 10,
        .gamma = 0.1f,
        .lr_min = 0.0f,
        // L-BFGS and CG (src/optim/lbfgs.c, cg.c; docs/optim.md)
        .history = 10,
        .iters_per_batch = 10,
        .max_iter = 0,
        .max_evals = 0,
        .line_search = FNET_LINESEARCH_MORE_THUENTE,
        .max_linesearch = 20,
        .c1 = 1e-4,
        .c2 = kind == FNET_OPTIM_CG ? 0.1 : 0.9, // Nocedal & Wright's usual values
        .gtol = 1e-5,
        .past = 0,
        .delta = 1e-5,
        .min_step = 1e-20,
        .max_step = 1e20,
        .cg_beta = FNET_CG_PR_PLUS,
    };
    return p;
}

fnet_status fnet_optim_kind_parse(const char *name, fnet_optim_kind *kind)
{
    if (name == NULL || kind == NULL)
        return FNET_ERR_INVALID_ARG;
    for (int k = 0; k < NUM_KINDS; k++) {
        if (strcmp(name, kind_names[k]) == 0) {
            *kind = (fnet_optim_kind)k;
            return FNET_OK;
        }
    }
    return FNET_ERR_INVALID_ARG;
}

const char *fnet_optim_kind_name(fnet_optim_kind kind)
{
    if ((int)kind < 0 || (int)kind >= NUM_KINDS)
        return "unknown";
    return kind_names[kind];
}

static bool in_unit_interval(float x) // [0, 1); false for NaN
{
    return x >= 0.0f && x < 1.0f;
}

static bool positive_finite(float x)
{
    return x > 0.0f && isfinite(x);
}

static int states_of(fnet_optim_kind kind)
{
    switch (kind) {
    case FNET_OPTIM_MOMENTUM:
    case FNET_OPTIM_NESTEROV:
    case FNET_OPTIM_RMSPROP: return 1;
    case FNET_OPTIM_ADAM:
    case FNET_OPTIM_ADAMW: return 2;
    default: return 0;
    }
}

// Only the fields the kind and the schedule use are checked, as torch.optim checks only the
// arguments an optimizer takes.
static fnet_status params_check(fnet_ctx *ctx, const fnet_optim_params *p)
{
    fnet_optim_kind k = p->kind;
    if ((int)k < 0 || (int)k >= NUM_KINDS)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "kind %d is not an optimizer kind", (int)k);
    // The solvers call the objective as often as they need: they are not step-wise.
    if (k == FNET_OPTIM_LBFGS)
        return fnet_fail(ctx, FNET_ERR_UNSUPPORTED,
                         "L-BFGS is not built yet as a step-wise optimizer: it is a solver "
                         "(fnet_train() or fnet_solver_create())");
    if (k == FNET_OPTIM_CG)
        return fnet_fail(ctx, FNET_ERR_UNSUPPORTED,
                         "nonlinear CG is not built yet as a step-wise optimizer: it is a solver "
                         "(fnet_train() or fnet_solver_create())");
    if (!positive_finite(p->lr))
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "lr must be positive and finite, got %g",
                         (double)p->lr);
    if (!(p->weight_decay >= 0.0f) || !isfinite(p->weight_decay))
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG,
                         "weight_decay must be non-negative and finite, got %g",
                         (double)p->weight_decay);
    if ((k == FNET_OPTIM_MOMENTUM || k == FNET_OPTIM_NESTEROV) && !in_unit_interval(p->momentum))
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "momentum must be in [0, 1), got %g",
                         (double)p->momentum);
    if (k == FNET_OPTIM_RMSPROP && !in_unit_interval(p->rho))
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "rho must be in [0, 1), got %g",
                         (double)p->rho);
    if (k == FNET_OPTIM_ADAM || k == FNET_OPTIM_ADAMW) {
        if (!in_unit_interval(p->beta1))
            return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "beta1 must be in [0, 1), got %g",
                             (double)p->beta1);
        if (!in_unit_interval(p->beta2))
            return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "beta2 must be in [0, 1), got %g",
                             (double)p->beta2);
    }
    bool uses_eps = k == FNET_OPTIM_RMSPROP || k == FNET_OPTIM_ADAM || k == FNET_OPTIM_ADAMW;
    if (uses_eps && !positive_finite(p->eps))
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "eps must be positive and finite, got %g",
                         (double)p->eps);
    switch (p->schedule) {
    case FNET_SCHEDULE_CONSTANT: break;
    case FNET_SCHEDULE_STEP:
        if (p->step_epochs < 1)
            return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "step_epochs must be at least 1, got %d",
                             p->step_epochs);
        if (!(p->gamma > 0.0f && p->gamma <= 1.0f))
            return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "gamma must be in (0, 1], got %g",
                             (double)p->gamma);
        break;
    case FNET_SCHEDULE_COSINE:
        if (!(p->lr_min >= 0.0f && p->lr_min <= p->lr))
            return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "lr_min must be in [0, lr = %g], got %g",
                             (double)p->lr, (double)p->lr_min);
        break;
    default:
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "schedule %d is not a schedule",
                         (int)p->schedule);
    }
    return FNET_OK;
}

// The backend ops a kind steps through; missing ones are refused here, not mid-training.
static fnet_status backend_check(fnet_ctx *ctx, fnet_optim_kind k)
{
    uint64_t ops = 0;
    switch (k) {
    case FNET_OPTIM_SGD: ops = FNET_OPS(FNET_OP_SGD_STEP); break;
    case FNET_OPTIM_MOMENTUM:
    case FNET_OPTIM_NESTEROV: ops = FNET_OPS(FNET_OP_MOMENTUM_STEP); break;
    case FNET_OPTIM_RMSPROP: ops = FNET_OPS(FNET_OP_RMSPROP_STEP); break;
    case FNET_OPTIM_ADAM: ops = FNET_OPS(FNET_OP_ADAM_STEP); break;
    case FNET_OPTIM_ADAMW: ops = FNET_OPS(FNET_OP_ADAM_STEP) | FNET_OPS(FNET_OP_SCAL); break;
    default: break;
    }
    char what[48];
    snprintf(what, sizeof(what), "the %s optimizer", fnet_optim_kind_name(k));
    return fnet_backend_require(ctx, ops, what);
}

fnet_status fnet_optimizer_create(fnet_ctx *ctx, const fnet_optim_params *p, int64_t n,
                                  fnet_optimizer **out)
{
    if (out)
        *out = NULL;
    if (ctx == NULL)
        return FNET_ERR_INVALID_ARG;
    if (out == NULL)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "out must not be NULL");
    if (p == NULL)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "params must not be NULL");
    fnet_status st = params_check(ctx, p);
    if (st != FNET_OK)
        return st;
    if (n < 1)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "n must be at least 1, got %lld",
                         (long long)n);
    st = backend_check(ctx, p->kind);
    if (st != FNET_OK)
        return st;
    int count = states_of(p->kind);
    // Each state vector starts on a 64-byte boundary: its stride is n rounded up to 16 floats.
    if ((uint64_t)n > SIZE_MAX / (MAX_STATES * sizeof(float)) - 16)
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "optimizer state of %lld floats",
                         (long long)n);
    size_t stride = ((size_t)n + 15) / 16 * 16;

    fnet_optimizer *opt = fnet_calloc(1, sizeof(*opt));
    if (opt == NULL)
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "optimizer");
    opt->ctx = ctx;
    opt->p = *p;
    opt->n = n;
    opt->lr = p->lr;
    opt->num_states = count;
    if (count > 0) {
        float *block = fnet_be_zeros(ctx, (int64_t)(stride * (size_t)count));
        if (block == NULL) {
            st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY,
                           "optimizer state: %d vectors of %lld floats", count, (long long)n);
            goto out_free_opt;
        }
        for (int i = 0; i < count; i++)
            opt->state[i] = block + (size_t)i * stride;
    }
    switch (p->kind) {
    case FNET_OPTIM_MOMENTUM:
    case FNET_OPTIM_NESTEROV: opt->state_name[0] = "velocity"; break;
    case FNET_OPTIM_RMSPROP: opt->state_name[0] = "square_avg"; break;
    case FNET_OPTIM_ADAM:
    case FNET_OPTIM_ADAMW:
        opt->state_name[0] = "m";
        opt->state_name[1] = "v";
        break;
    default: break;
    }
    *out = opt;
    return FNET_OK;

out_free_opt:
    fnet_free(opt);
    return st;
}

void fnet_optimizer_free(fnet_optimizer *opt)
{
    if (opt == NULL)
        return;
    opt->ctx->be->free(opt->ctx, opt->state[0]);
    fnet_free(opt);
}

// w, g (n). Adam's t is the number of this step, from 1; the bias corrections are computed in
// double (β2^t with β2 = 0.999 needs it for small t) and handed to the kernel rounded once.
// The fused op of opt's kind (FNET_OP_*_STEP), Nesterov's flag for momentum.
static int step_op(const fnet_optimizer *opt, bool *nesterov)
{
    fnet_optim_kind k = opt->p.kind;
    *nesterov = k == FNET_OPTIM_NESTEROV;
    switch (k) {
    case FNET_OPTIM_SGD: return FNET_OP_SGD_STEP;
    case FNET_OPTIM_MOMENTUM:
    case FNET_OPTIM_NESTEROV: return FNET_OP_MOMENTUM_STEP;
    case FNET_OPTIM_RMSPROP: return FNET_OP_RMSPROP_STEP;
    default: return FNET_OP_ADAM_STEP; // Adam, AdamW
    }
}

// The scalars of step t = steps + 1 and the fused op that takes them; AdamW's decoupled decay
// factor (1 − lr·wd) in *decay, 1 for the others.
static void step_args(const fnet_optimizer *opt, struct fnet_step_args *a, int *op,
                      bool *nesterov, float *decay)
{
    const fnet_optim_params *p = &opt->p;
    int64_t t = opt->steps + 1;
    *a = (struct fnet_step_args){
        .lr = opt->lr,
        .momentum = p->momentum,
        .beta1 = p->beta1,
        .beta2 = p->beta2,
        .eps = p->eps,
        .rho = p->rho,
        .weight_decay = p->weight_decay,
        .bc1 = 1.0f,
        .bc2 = 1.0f,
    };
    *op = step_op(opt, nesterov);
    *decay = 1.0f;
    if (*op == FNET_OP_ADAM_STEP) {
        if (p->kind == FNET_OPTIM_ADAMW) {
            // Decoupled decay first, w *= 1 − lr·wd, as torch.optim.AdamW; then plain Adam.
            // (struct fnet_step_args has no field to tell the kernel which decay it is.)
            if (p->weight_decay > 0.0f)
                *decay = (float)(1.0 - (double)opt->lr * p->weight_decay);
            a->weight_decay = 0.0f;
        }
        a->bc1 = (float)(1.0 - pow((double)p->beta1, (double)t));
        a->bc2 = (float)(1.0 - pow((double)p->beta2, (double)t));
    }
}

fnet_status fnet_optimizer_step(fnet_optimizer *opt, float *w, const float *g)
{
    if (opt == NULL)
        return FNET_ERR_INVALID_ARG;
    fnet_ctx *ctx = opt->ctx;
    if (w == NULL || g == NULL)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "w and g must not be NULL");
    if ((const float *)w == g)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "w and g must be distinct vectors");
    if (opt->p.kind == FNET_OPTIM_LBFGS || opt->p.kind == FNET_OPTIM_CG || opt->p.kind < 0 ||
        opt->p.kind >= NUM_KINDS)
        return fnet_fail(ctx, FNET_ERR_INTERNAL, "optimizer of kind %d cannot step",
                         (int)opt->p.kind);
    const struct fnet_backend_ops *be = ctx->be;
    struct fnet_step_args a;
    int op;
    bool nesterov;
    float decay;
    step_args(opt, &a, &op, &nesterov, &decay);
    switch (op) {
    case FNET_OP_SGD_STEP: be->sgd_step(ctx, opt->n, w, g, &a); break;
    case FNET_OP_MOMENTUM_STEP:
        be->momentum_step(ctx, opt->n, w, g, opt->state[0], &a, nesterov);
        break;
    case FNET_OP_RMSPROP_STEP: be->rmsprop_step(ctx, opt->n, w, g, opt->state[0], &a); break;
    default:
        if (decay != 1.0f)
            be->scal(ctx, opt->n, decay, w);
        be->adam_step(ctx, opt->n, w, g, opt->state[0], opt->state[1], &a);
    }
    opt->steps++;
    return FNET_OK;
}

bool fnet_optimizer_replayable(const fnet_optimizer *opt)
{
    fnet_optim_kind k = opt->p.kind;
    return k == FNET_OPTIM_SGD || k == FNET_OPTIM_MOMENTUM || k == FNET_OPTIM_NESTEROV ||
           k == FNET_OPTIM_RMSPROP || k == FNET_OPTIM_ADAM ||
           (k == FNET_OPTIM_ADAMW && !(opt->p.weight_decay > 0.0f));
}

void fnet_optimizer_next_args(fnet_optimizer *opt, struct fnet_step_args *a)
{
    int op;
    bool nesterov;
    float decay;
    step_args(opt, a, &op, &nesterov, &decay);
    opt->steps++;
}

void fnet_optimizer_step_dev(fnet_optimizer *opt, float *w, const float *g,
                             const struct fnet_step_args *a, const double *skip)
{
    fnet_ctx *ctx = opt->ctx;
    bool nesterov;
    int op = step_op(opt, &nesterov); // the scalars are *a's
    ctx->be->step_dev(ctx, op, nesterov, opt->n, w, g, opt->state[0],
                      opt->num_states > 1 ? opt->state[1] : NULL, a, skip);
}

float fnet_optimizer_lr(const fnet_optimizer *opt)
{
    return opt ? opt->lr : 0.0f;
}

// Zero is accepted here (unlike at create): a schedule may anneal to exactly lr_min = 0.
fnet_status fnet_optimizer_set_lr(fnet_optimizer *opt, float lr)
{
    if (opt == NULL)
        return FNET_ERR_INVALID_ARG;
    if (!(lr >= 0.0f) || !isfinite(lr))
        return fnet_fail(opt->ctx, FNET_ERR_INVALID_ARG,
                         "lr must be non-negative and finite, got %g", (double)lr);
    opt->lr = lr;
    return FNET_OK;
}

int64_t fnet_optimizer_steps(const fnet_optimizer *opt)
{
    return opt ? opt->steps : 0;
}

fnet_status fnet_optimizer_set_steps(fnet_optimizer *opt, int64_t steps)
{
    if (opt == NULL)
        return FNET_ERR_INVALID_ARG;
    if (steps < 0)
        return fnet_fail(opt->ctx, FNET_ERR_INVALID_ARG, "steps must be non-negative, got %lld",
                         (long long)steps);
    opt->steps = steps;
    return FNET_OK;
}

fnet_status fnet_optimizer_apply_mask(fnet_optimizer *opt, const float *mask)
{
    if (opt == NULL)
        return FNET_ERR_INVALID_ARG;
    if (mask == NULL)
        return fnet_fail(opt->ctx, FNET_ERR_INVALID_ARG, "optimizer apply_mask: NULL mask");
    for (int i = 0; i < opt->num_states; i++)
        opt->ctx->be->mul(opt->ctx, opt->n, opt->state[i], mask, opt->state[i]);
    return FNET_OK;
}

int fnet_optimizer_num_states(const fnet_optimizer *opt)
{
    return opt ? opt->num_states : 0;
}

float *fnet_optimizer_state(fnet_optimizer *opt, int i, const char **name)
{
    if (opt == NULL || i < 0 || i >= opt->num_states) {
        if (name)
            *name = NULL;
        return NULL;
    }
    if (name)
        *name = opt->state_name[i];
    return opt->state[i];
}

// v (n, host) <-> state vector i (backend)
static fnet_status state_copy(const fnet_optimizer *opt, int i, float *v, bool down)
{
    if (opt == NULL)
        return FNET_ERR_INVALID_ARG;
    if (i < 0 || i >= opt->num_states)
        return fnet_fail(opt->ctx, FNET_ERR_INVALID_ARG, "optimizer %s has no state %d",
                         fnet_optim_kind_name(opt->p.kind), i);
    return down ? fnet_be_transfer(opt->ctx, "optimizer get_state", v, opt->state[i], opt->n, true)
                : fnet_be_transfer(opt->ctx, "optimizer set_state", opt->state[i], v, opt->n,
                                   false);
}

fnet_status fnet_optimizer_get_state(const fnet_optimizer *opt, int i, float *v)
{
    return state_copy(opt, i, v, true);
}

fnet_status fnet_optimizer_set_state(fnet_optimizer *opt, int i, const float *v)
{
    return state_copy(opt, i, (float *)v, false);
}

fnet_ctx *fnet_optimizer_ctx(const fnet_optimizer *opt)
{
    return opt ? opt->ctx : NULL;
}

fnet_optim_kind fnet_optimizer_kind(const fnet_optimizer *opt)
{
    return opt->p.kind;
}

int64_t fnet_optimizer_size(const fnet_optimizer *opt)
{
    return opt->n;
}

// Resize the state to n floats per vector: each (src[k], dst[k], len[k]) run of the old vectors
// is copied to the new ones, everything else starts at zero (rank-adaptive training rebuilds the
// state of the layers it rounded). The step count and learning rate are kept.
fnet_status fnet_optimizer_remap(fnet_optimizer *opt, int64_t n, int count, const int64_t *src,
                                 const int64_t *dst, const int64_t *len)
{
    if (opt == NULL)
        return FNET_ERR_INVALID_ARG;
    fnet_ctx *ctx = opt->ctx;
    if (n < 1 || count < 0 || (count > 0 && (src == NULL || dst == NULL || len == NULL)))
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "optimizer remap: n %lld, %d runs",
                         (long long)n, count);
    if ((uint64_t)n > SIZE_MAX / (MAX_STATES * sizeof(float)) - 16)
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "optimizer state of %lld floats",
                         (long long)n);
    for (int k = 0; k < count; k++)
        if (len[k] < 0 || src[k] < 0 || dst[k] < 0 || src[k] + len[k] > opt->n ||
            dst[k] + len[k] > n)
            return fnet_fail(ctx, FNET_ERR_INVALID_ARG,
                             "optimizer remap: run %d [%lld, +%lld) -> [%lld, ...) out of bounds", k,
                             (long long)src[k], (long long)len[k], (long long)dst[k]);
    if (opt->num_states > 0) {
        size_t stride = ((size_t)n + 15) / 16 * 16;
        float *block = fnet_be_zeros(ctx, (int64_t)(stride * (size_t)opt->num_states));
        if (block == NULL)
            return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "optimizer state: %d vectors of %lld floats",
                             opt->num_states, (long long)n);
        for (int i = 0; i < opt->num_states; i++)
            for (int k = 0; k < count; k++)
                ctx->be->copy(ctx, block + (size_t)i * stride + dst[k], opt->state[i] + src[k],
                              (size_t)len[k] * sizeof(float));
        ctx->be->free(ctx, opt->state[0]);
        for (int i = 0; i < opt->num_states; i++)
            opt->state[i] = block + (size_t)i * stride;
    }
    opt->n = n;
    return FNET_OK;
}
