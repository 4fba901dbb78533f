/* Training with the L-BFGS and CG solvers: full batch, or large fixed minibatches with K solver
 * iterations on each (Le et al., "On optimization methods for deep learning", ICML 2011), the
 * model's minibatch loss being the objective (fnet_model_objective). Same contract, epoch
 * reports and NaN guard as the first-order trainer (src/core/train.c). docs/optim.md. */
#include "optim/solver.h"
#include "core/backend.h"
#include "core/train_loop.h"
#include "core/model_impl.h"

#include <math.h>
#include <string.h>

// Load the solver's point x (n floats) into m's parameters (nothing to copy when x is them).
static fnet_status load_point(fnet_model *m, const float *x, int64_t n)
{
    int64_t np = 0;
    float *w = fnet_model_params(m, &np);
    if (n != np)
        return fnet_fail(fnet_model_ctx(m), FNET_ERR_SHAPE,
                         "the solver's vector has %lld values, the model %lld parameters",
                         (long long)n, (long long)np);
    if (x != w) {
        fnet_ctx *ctx = fnet_model_ctx(m);
        ctx->be->copy(ctx, w, x, (size_t)n * sizeof(float));
    }
    return FNET_OK;
}

// The oracle's status as a solver takes it: a NaN or Inf loss is a value (a diverging trial
// point: the line search steps back), not an error.
static fnet_status as_value(fnet_status st, double *f)
{
    if (st == FNET_ERR_NUMERIC) {
        *f = NAN;
        return FNET_OK;
    }
    return st;
}

fnet_status fnet_model_objective(const float *x, int64_t n, double *f, float *g, void *user)
{
    const fnet_model_batch_info *b = user;
    if (b == NULL || b->model == NULL || x == NULL || f == NULL || g == NULL)
        return FNET_ERR_INVALID_ARG;
    fnet_status st = load_point(b->model, x, n);
    if (st != FNET_OK)
        return st;
    // (distributed, loss_grad takes this rank's rows of the batch itself)
    return as_value(fnet_model_loss_grad(b->model, b->x, b->labels, b->batch, f, g), f);
}

// The trainer's objective: the rows of a batch this rank gathered (all of them without a job).
struct part_info {
    fnet_model *m;
    const float *x;
    const int32_t *labels;
    int64_t first, rows, total;
};

static fnet_status part_objective(const float *x, int64_t n, double *f, float *g, void *user)
{
    const struct part_info *p = user;
    fnet_status st = load_point(p->m, x, n);
    if (st != FNET_OK)
        return st;
    st = fnet_model_loss_grad_part(p->m, p->x, p->labels, p->first, p->rows, p->total, f);
    float *mg = fnet_model_grads(p->m, NULL);
    if ((st == FNET_OK || st == FNET_ERR_NUMERIC) && g != mg) {
        fnet_ctx *ctx = fnet_model_ctx(p->m);
        ctx->be->copy(ctx, g, mg, (size_t)n * sizeof(float));
    }
    return as_value(st, f);
}

// The trainer's progress bar counts solver iterations: K per batch.
struct progress {
    const fnet_train_params *tp;
    void *user;
    int64_t done, total;
};

static fnet_status on_iteration(const fnet_solver_info *info, void *user)
{
    struct progress *pr = user;
    pr->done++;
    if (pr->tp->on_batch)
        pr->tp->on_batch(pr->done < pr->total ? pr->done : pr->total, pr->total, pr->user);
    (void)info;
    return FNET_OK;
}

fnet_status fnet_train_solver(fnet_model *m, const fnet_optim_params *op,
                              const fnet_train_params *tp, const fnet_dataset *train,
                              const fnet_dataset *val, fnet_epoch_fn on_epoch, void *user,
                              fnet_train_stats *stats)
{
    if (m == NULL || op == NULL || tp == NULL || train == NULL)
        return fnet_fail(m ? fnet_model_ctx(m) : NULL, FNET_ERR_INVALID_ARG,
                         "train: model, parameters and training data are required");
    fnet_ctx *ctx = fnet_model_ctx(m);
    int64_t n = fnet_dataset_size(train);
    if (tp->batch < 0)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG,
                         "batch must be >= 1 (or 0 for full batch), got %lld", (long long)tp->batch);
    if (tp->epochs < 1)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "epochs must be >= 1, got %d", tp->epochs);
    if (op->iters_per_batch < 1)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "iters_per_batch must be >= 1, got %d",
                         op->iters_per_batch);
    // Not built for the solvers yet: refused rather than silently ignored.
    if (tp->on_nan == FNET_NAN_ROLLBACK)
        return fnet_fail(ctx, FNET_ERR_UNSUPPORTED, "--on-nan rollback is not built for %s yet "
                         "(its line search already shrinks a step that gives NaN)",
                         fnet_optim_kind_name(op->kind));
    if (tp->tt_round_every > 0)
        return fnet_fail(ctx, FNET_ERR_UNSUPPORTED, "rank-adaptive TT rounding is not built for "
                         "%s yet", fnet_optim_kind_name(op->kind));
    fnet_status st = fnet_solver_params_check(ctx, op);
    if (st == FNET_OK)
        st = fnet_train_ckpt_check_params(ctx, tp);
    if (st != FNET_OK)
        return st;
    if (n < 1)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "the training set is empty");
    struct fnet_train_loop L;
    st = fnet_train_loop_open(&L, m, tp, train, val);
    if (st != FNET_OK)
        return st;
    fnet_solver *solver = NULL;
    st = fnet_solver_create(ctx, op, fnet_model_num_params(m), &solver);
    if (st != FNET_OK) {
        fnet_train_loop_close(&L);
        return st;
    }
    // The solver's own copy of the settings: K iterations per call.
    solver->p.max_iter = op->iters_per_batch;
    struct fnet_run_pos start = {.lr_scale = 1.0f}; // where this call begins
    if (tp->resume_path != NULL &&
        (st = fnet_train_ckpt_resume(&L, NULL, solver, op, tp, &start, false)) != FNET_OK) {
        fnet_solver_free(solver);
        fnet_train_loop_close(&L);
        return st;
    }
    float *w = fnet_model_params(m, NULL);
    // Full batch: one fixed objective, gathered once. Minibatches: each batch is a new function,
    // but large ones share most of their curvature: L-BFGS keeps its history across them (the
    // curvature check guards every new pair), which reached 0.85 test accuracy on the seed
    // network where a fresh history per batch did not (docs/optim.md).
    const bool full = L.n_batches == 1;
    int64_t bs = L.B, first = 0, rows = 0; // the batch's samples, and this rank's rows of them
    if (full)
        st = fnet_train_loop_gather(&L, 0, &bs, &first, &rows);
    struct progress pr = {.tp = tp, .user = user, .total = L.n_batches * op->iters_per_batch};
    // minibatches done in the run, for the step hook
    int64_t batches = (int64_t)start.epoch * L.n_batches + start.batch;
    for (int epoch = start.epoch; epoch < tp->epochs && st == FNET_OK; epoch++) {
        // resumed within this epoch: its order is drawn and its first start.batch batches done
        const bool mid = epoch == start.epoch && start.batch > 0;
        if (tp->shuffle && !full && !mid)
            fnet_rng_shuffle(&L.rng, L.perm, L.n);
        fnet_model_set_training(m, true);
        double t0 = fnet_now(), loss_sum = mid ? start.loss_sum : 0.0;
        const double ck0 = L.acc.checkpoint_seconds; // checkpoints are not training time
        const double before = mid ? start.seconds : 0.0; // the epoch's time in earlier calls
        pr.done = mid ? start.batch * op->iters_per_batch : 0;
        for (int64_t b = mid ? start.batch : 0; b < L.n_batches && st == FNET_OK; b++) {
            if (!full && (st = fnet_train_loop_gather(&L, b, &bs, &first, &rows)) != FNET_OK)
                break;
            struct part_info info = {.m = m, .x = L.x, .labels = L.labels, .first = first,
                                     .rows = rows, .total = bs};
            fnet_solver_stats ss;
            st = fnet_solver_minimize(solver, w, part_objective, &info, on_iteration, &pr, &ss);
            if (st == FNET_ERR_NUMERIC) {
                char ls[32];
                st = fnet_fail(ctx, FNET_ERR_NUMERIC,
                               "epoch %d, batch %lld: the loss is %s at the start of the batch; "
                               "training stopped",
                               epoch + 1, (long long)b + 1, fnet_train_loss_str(ss.f0, ls, sizeof(ls)));
                break;
            }
            if (st != FNET_OK)
                break;
            loss_sum += ss.f * (double)bs;
            L.acc.steps += ss.iterations;
            if (tp->on_step != NULL) {
                uint64_t gen = fnet_model_generation(m);
                fnet_step_info si = {.epoch = epoch, .epochs = tp->epochs, .step = b + 1,
                                     .steps_per_epoch = L.n_batches, .run_steps = ++batches};
                st = fnet_train_loop_hook(&L, tp->on_step(m, NULL, &si, tp->step_user), &si);
                // history from before a new mask or pattern would step into pruned weights
                if (fnet_model_generation(m) != gen)
                    fnet_solver_reset(solver);
                if (st != FNET_OK)
                    break;
            }
            // the bar jumps to the batch's end when the solver stopped early
            pr.done = (b + 1) * op->iters_per_batch;
            if (tp->on_batch)
                tp->on_batch(pr.done, pr.total, user);
            // within the epoch: a stop or a checkpoint by time (at its end, after its report)
            if (b + 1 < L.n_batches) {
                struct fnet_run_pos at = {
                    .epoch = epoch, .batch = b + 1, .loss_sum = loss_sum,
                    .seconds = before + fnet_train_loop_elapsed(&L, t0, ck0), .lr_scale = 1.0f};
                st = fnet_train_loop_step_end(&L, NULL, solver, op, tp, &at);
            }
        }
        double seconds = before + fnet_train_loop_elapsed(&L, t0, ck0);
        fnet_model_set_training(m, false);
        if (st != FNET_OK)
            break;
        // a solver has no learning rate: its line search picks every step
        fnet_epoch_info info;
        st = fnet_train_loop_epoch_info(&L, epoch, tp->epochs, loss_sum, NAN, seconds, &info);
        if (st != FNET_OK)
            break;
        bool stop = false;
        if ((st = fnet_train_loop_epoch_end(&L, &info, on_epoch, user, &stop)) != FNET_OK)
            break;
        struct fnet_run_pos at = {.epoch = epoch + 1, .lr_scale = 1.0f};
        st = fnet_train_loop_epoch_saves(&L, NULL, solver, op, tp, &at, stop);
        if (st != FNET_OK || stop)
            break;
    }
    fnet_train_loop_stats(&L, stats);
    fnet_train_loop_close(&L);
    fnet_solver_free(solver);
    return st;
}
