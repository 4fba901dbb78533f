/* The trainer: epochs of shuffled minibatches through the loss-and-gradient oracle and an
 * optimizer step, validation after every epoch, and a guard that stops on a NaN or Inf loss. */
#include "core/internal.h"
#include "core/backend.h"
#include "core/train_loop.h"
#include "core/train_replay.h"
#include "core/layer_impl.h"
#include "core/model_impl.h"
#include "optim/solver.h"
#include "dist/dist.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

// Evaluation runs in chunks of this many samples (or the training batch, if larger).
#define EVAL_CHUNK 1024

fnet_train_params fnet_train_params_default(void)
{
    fnet_train_params p = {
        .batch = 32,
        .epochs = 10,
        .seed = 1,
        .shuffle = true,
        .on_batch = NULL,
        .tt_round_every = 0,
        .tt_eps = 0.1,
        .tt_max_rank = 0,
        .on_nan = FNET_NAN_STOP,
        .max_rollbacks = 3,
    };
    return p;
}

fnet_status fnet_train_check_data(fnet_model *m, const fnet_dataset *d, const char *what)
{
    fnet_ctx *ctx = fnet_model_ctx(m);
    if (fnet_dataset_ctx(d) != ctx)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "%s data was loaded on another ctx than the "
                         "model's (its images live in that ctx's backend memory)", what);
    if (fnet_dataset_dim(d) != fnet_model_n_in(m))
        return fnet_fail(ctx, FNET_ERR_SHAPE, "%s samples have %lld values, the model takes %lld",
                         what, (long long)fnet_dataset_dim(d), (long long)fnet_model_n_in(m));
    if (fnet_dataset_classes(d) > fnet_model_n_out(m))
        return fnet_fail(ctx, FNET_ERR_SHAPE,
                         "%s data has %lld classes, the model has only %lld outputs", what,
                         (long long)fnet_dataset_classes(d), (long long)fnet_model_n_out(m));
    return FNET_OK;
}

fnet_status fnet_model_evaluate(fnet_model *m, const fnet_dataset *d, double *accuracy,
                                double *loss)
{
    if (m == NULL || d == NULL)
        return FNET_ERR_INVALID_ARG;
    fnet_ctx *ctx = fnet_model_ctx(m);
    int64_t n = fnet_dataset_size(d), dim = fnet_dataset_dim(d);
    if (n < 1)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "evaluate: the dataset is empty");
    fnet_status st = fnet_train_check_data(m, d, "evaluation");
    if (st != FNET_OK)
        return st;
    // distributed: each rank its rows [lo, hi), the sums added up at the end
    int64_t lo = 0, rows = n;
    fnet_dist_ctx_shard(ctx, n, &lo, &rows);
    const int64_t hi = lo + rows;
    int64_t chunk = n < EVAL_CHUNK ? n : EVAL_CHUNK;
    float *x = ctx->be->alloc(ctx, (size_t)(chunk * dim) * sizeof(float));
    int32_t *labels = fnet_malloc_array((size_t)chunk, sizeof(int32_t));
    if (x == NULL || labels == NULL) {
        st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "evaluation batch of %lld", (long long)chunk);
        goto out_free;
    }
    bool was_training = false;
    if (fnet_model_num_layers(m) > 0)
        was_training = fnet_model_layer(m, 0) && fnet_model_layer(m, 0)->training;
    fnet_model_set_training(m, false);
    double loss_sum = 0.0;
    int64_t right = 0;
    for (int64_t first = lo; first < hi; first += chunk) {
        int64_t bs = hi - first < chunk ? hi - first : chunk;
        st = fnet_dataset_batch(d, NULL, first, bs, x, labels);
        if (st != FNET_OK)
            break;
        double l = 0.0;
        int64_t c = 0;
        st = fnet_model_loss_correct(m, x, labels, bs, &l, &c);
        if (st != FNET_OK)
            break;
        loss_sum += l * (double)bs;
        right += c;
    }
    fnet_model_set_training(m, was_training);
    double sums[2] = {loss_sum, (double)right}; // exact integers up to 2^53 samples
    if (st == FNET_OK && (st = fnet_dist_sum(ctx, sums, 2, "the evaluation's sums")) == FNET_OK) {
        loss_sum = sums[0];
        right = (int64_t)sums[1];
        if (accuracy)
            *accuracy = (double)right / (double)n;
        if (loss)
            *loss = loss_sum / (double)n;
    }
out_free:
    fnet_free(labels);
    ctx->be->free(ctx, x);
    return st;
}

// The last good state for --on-nan rollback: parameters, optimizer state vectors and steps, taken
// at the start of every epoch (sized again when TT rounding changes the parameter count). The
// copies stay in backend memory.
struct snapshot {
    fnet_ctx *ctx;
    int64_t n;
    float *w;      // n floats, then the optimizer's state vectors (backend memory)
    int64_t steps;
};

static fnet_status snapshot_take(fnet_model *m, fnet_optimizer *opt, struct snapshot *s)
{
    fnet_ctx *ctx = fnet_model_ctx(m);
    int64_t n = fnet_model_num_params(m);
    int states = fnet_optimizer_num_states(opt);
    size_t bytes = (size_t)n * sizeof(float);
    if (s->n != n) {
        float *w = ctx->be->alloc(ctx, bytes * (size_t)(1 + states));
        if (w == NULL)
            return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "rollback snapshot of %lld parameters",
                             (long long)n);
        ctx->be->free(ctx, s->w);
        s->ctx = ctx;
        s->w = w;
        s->n = n;
    }
    ctx->be->copy(ctx, s->w, fnet_model_params(m, NULL), bytes);
    for (int i = 0; i < states; i++)
        ctx->be->copy(ctx, s->w + (size_t)(i + 1) * (size_t)n, fnet_optimizer_state(opt, i, NULL),
                      bytes);
    s->steps = fnet_optimizer_steps(opt);
    return FNET_OK;
}

// The snapshot as a resumed run read it (host: parameters, then the state vectors; n·(1+states)
// floats): the start of the epoch it resumed in.
static fnet_status snapshot_from_host(fnet_model *m, fnet_optimizer *opt, struct snapshot *s,
                                      const float *host, int64_t steps)
{
    fnet_status st = snapshot_take(m, opt, s); // sized for the model and optimizer
    if (st != FNET_OK)
        return st;
    fnet_ctx *ctx = fnet_model_ctx(m);
    ctx->be->upload(ctx, s->w, host,
                    (size_t)s->n * (size_t)(1 + fnet_optimizer_num_states(opt)) * sizeof(float));
    s->steps = steps;
    return FNET_OK;
}

static void snapshot_restore(fnet_model *m, fnet_optimizer *opt, const struct snapshot *s)
{
    fnet_ctx *ctx = fnet_model_ctx(m);
    size_t bytes = (size_t)s->n * sizeof(float);
    ctx->be->copy(ctx, fnet_model_params(m, NULL), s->w, bytes);
    for (int i = 0; i < fnet_optimizer_num_states(opt); i++)
        ctx->be->copy(ctx, fnet_optimizer_state(opt, i, NULL), s->w + (size_t)(i + 1) * (size_t)s->n,
                      bytes);
    fnet_optimizer_set_steps(opt, s->steps);
    // a mask that grew since the snapshot (gradual pruning) stays: its weights and state are zero
    const float *mask = fnet_model_mask(m);
    if (mask != NULL) {
        ctx->be->mul(ctx, s->n, fnet_model_params(m, NULL), mask, fnet_model_params(m, NULL));
        fnet_optimizer_apply_mask(opt, mask);
    }
}

// Where a run stands after batch `batch` of `epoch` (0-based), for a checkpoint within the epoch.
static struct fnet_run_pos mid_epoch(int epoch, int64_t batch, double loss_sum, double seconds,
                                     float lr_scale, const struct snapshot *snap,
                                     const fnet_optimizer *opt)
{
    return (struct fnet_run_pos){
        .epoch = epoch, .batch = batch, .loss_sum = loss_sum, .seconds = seconds,
        .lr_scale = lr_scale, .snap = snap->w,
        .snap_floats = snap->n * (1 + fnet_optimizer_num_states(opt)), .snap_steps = snap->steps};
}

fnet_status fnet_train_with(fnet_model *m, fnet_optimizer *opt, const fnet_optim_params *op,
                            const fnet_train_params *tp, const fnet_dataset *train,
                            const fnet_dataset *val, fnet_epoch_fn on_epoch, void *user,
                            fnet_train_stats *stats)
{
    if (m == NULL || opt == NULL || op == NULL || tp == NULL || train == NULL)
        return fnet_fail(m ? fnet_model_ctx(m) : NULL, FNET_ERR_INVALID_ARG,
                         "train: model, optimizer, parameters and training data are required");
    fnet_ctx *ctx = fnet_model_ctx(m);
    if (op->kind == FNET_OPTIM_LBFGS || op->kind == FNET_OPTIM_CG)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG,
                         "%s is a solver, not a step-wise optimizer: train with fnet_train()",
                         fnet_optim_kind_name(op->kind));
    int64_t n = fnet_dataset_size(train);
    if (tp->batch < 0)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "batch must be >= 1 (or 0 for full batch), got %lld",
                         (long long)tp->batch);
    if (tp->epochs < 1)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "epochs must be >= 1, got %d", tp->epochs);
    if (n < 1)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "the training set is empty");
    if (fnet_optimizer_ctx(opt) != ctx)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "train: the optimizer was made on another ctx "
                         "than the model's");
    if (fnet_optimizer_size(opt) != fnet_model_num_params(m))
        return fnet_fail(ctx, FNET_ERR_SHAPE, "train: the optimizer was made for %lld parameters, "
                         "the model has %lld", (long long)fnet_optimizer_size(opt),
                         (long long)fnet_model_num_params(m));
    if (tp->on_nan != FNET_NAN_STOP && tp->on_nan != FNET_NAN_ROLLBACK)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "unknown NaN policy %d", (int)tp->on_nan);
    if (tp->max_rollbacks < 0)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "max_rollbacks must be >= 0, got %d",
                         tp->max_rollbacks);
    if (tp->tt_round_every < 0 ||
        (tp->tt_round_every > 0 && (!(tp->tt_eps >= 0.0 && isfinite(tp->tt_eps)) ||
                                    tp->tt_max_rank < 0 ||
                                    (tp->tt_eps == 0.0 && tp->tt_max_rank == 0))))
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG,
                         "TT rounding every %d epochs with eps %g and rank cap %lld: the interval "
                         "must be >= 0, eps finite and >= 0, and eps or the cap positive",
                         tp->tt_round_every, tp->tt_eps, (long long)tp->tt_max_rank);
    fnet_status st = fnet_train_ckpt_check_params(ctx, tp);
    if (st != FNET_OK)
        return st;
    struct fnet_train_loop L;
    st = fnet_train_loop_open(&L, m, tp, train, val);
    if (st != FNET_OK)
        return st;
    struct fnet_run_pos start = {.lr_scale = 1.0f}; // where this call begins
    if (tp->resume_path != NULL && (st = fnet_train_ckpt_resume(&L, opt, NULL, op, tp,
                                                                &start, false)) != FNET_OK) {
        fnet_train_loop_close(&L);
        return st;
    }
    // full batches replayed from a recorded step where the backend records them (train_replay.c)
    struct fnet_replay R;
    if ((st = fnet_replay_open(&R, m, opt, tp, train, L.x, L.B)) != FNET_OK) {
        fnet_free(start.snap_host);
        fnet_train_loop_close(&L);
        return st;
    }
    float *w = fnet_model_params(m, NULL);
    const float *g = fnet_model_grads(m, NULL);
    fnet_train_stats *acc = &L.acc;
    struct snapshot snap = {0};
    float lr_scale = start.lr_scale; // halved by every rollback
    for (int epoch = start.epoch; epoch < tp->epochs; epoch++) {
        // resumed within this epoch: its order is drawn and its first start.batch steps are done
        const bool mid = epoch == start.epoch && start.batch > 0;
        float lr = fnet_schedule_lr(op, epoch, tp->epochs) * lr_scale;
        st = fnet_optimizer_set_lr(opt, lr);
        if (st == FNET_OK && tp->on_nan == FNET_NAN_ROLLBACK)
            st = mid && start.snap_host != NULL
                     ? snapshot_from_host(m, opt, &snap, start.snap_host, start.snap_steps)
                     : snapshot_take(m, opt, &snap);
        if (st != FNET_OK)
            break;
        if (tp->shuffle && !mid)
            fnet_rng_shuffle(&L.rng, L.perm, L.n);
        fnet_model_set_training(m, true);
        double t0 = fnet_now(), loss_sum = mid ? start.loss_sum : 0.0;
        const double ck0 = L.acc.checkpoint_seconds; // checkpoints are not training time
        const double before = mid ? start.seconds : 0.0; // the epoch's time in earlier calls
        const int64_t b0 = mid ? start.batch : 0; // runs plain: it makes the plans replays use
        for (int64_t b = b0; b < L.n_batches && st == FNET_OK; b++) {
            int64_t bs = L.n - b * L.B < L.B ? L.n - b * L.B : L.B;
            if (R.on && R.graph == NULL && b > b0 && bs == L.B)
                st = fnet_replay_begin(&R, b);
            if (st == FNET_OK && R.graph != NULL) {
                fnet_replay_step(&R, L.perm + b * L.B, b);
                acc->steps++;
                acc->replayed_steps++;
                if (tp->on_batch)
                    tp->on_batch(b + 1, L.n_batches, user);
                // the segment ends before a partial batch or the epoch's end, and where the host
                // needs the loss: a checkpoint by time, a stop
                bool last = b + 1 == L.n_batches || L.n - (b + 1) * L.B < L.B;
                bool host = tp->save_path != NULL && fnet_train_ckpt_due(&L, tp);
                if (!last && !host && !(tp->stop != NULL && *tp->stop != 0))
                    continue;
                double sum = 0.0;
                int64_t bad = -1;
                st = fnet_replay_end(&R, &sum, &bad);
                loss_sum += sum;
                if (st == FNET_OK && bad >= 0) { // as a plain step's non-finite loss below
                    acc->steps -= b + 1 - bad;
                    acc->replayed_steps -= b + 1 - bad;
                    if (tp->on_nan == FNET_NAN_ROLLBACK && acc->rollbacks < tp->max_rollbacks)
                        st = fnet_fail(ctx, FNET_ERR_NUMERIC, "epoch %d, step %lld: the loss is "
                                       "not finite", epoch + 1, (long long)bad + 1);
                    else
                        st = fnet_fail(ctx, FNET_ERR_NUMERIC,
                                       "epoch %d, step %lld: the loss is not finite; training "
                                       "stopped%s (the learning rate %g may be too high)",
                                       epoch + 1, (long long)bad + 1,
                                       tp->on_nan == FNET_NAN_ROLLBACK ? " after the last rollback"
                                                                       : "",
                                       (double)lr);
                    break;
                }
                if (st == FNET_OK && b + 1 < L.n_batches) {
                    struct fnet_run_pos at = mid_epoch(epoch, b + 1, loss_sum,
                                                       before + fnet_train_loop_elapsed(&L, t0, ck0),
                                                       lr_scale, &snap, opt);
                    st = fnet_train_loop_step_end(&L, opt, NULL, op, tp, &at);
                }
                continue;
            }
            if (st != FNET_OK)
                break;
            double loss = 0.0;
            int64_t first = 0, rows = 0; // this rank's rows of the batch (all without a job)
            st = fnet_train_loop_gather(&L, b, &bs, &first, &rows);
            if (st == FNET_OK)
                st = fnet_model_loss_grad_part(m, L.x, L.labels, first, rows, bs, &loss);
            if (st == FNET_ERR_NUMERIC) {
                if (tp->on_nan == FNET_NAN_ROLLBACK && acc->rollbacks < tp->max_rollbacks)
                    break; // rolled back below
                char ls[32];
                st = fnet_fail(ctx, FNET_ERR_NUMERIC,
                               "epoch %d, step %lld: the loss is %s; training stopped%s (the "
                               "learning rate %g may be too high)",
                               epoch + 1, (long long)b + 1, fnet_train_loss_str(loss, ls, sizeof(ls)),
                               tp->on_nan == FNET_NAN_ROLLBACK ? " after the last rollback" : "",
                               (double)lr);
                break;
            }
            if (st == FNET_OK)
                st = fnet_optimizer_step(opt, w, g);
            loss_sum += loss * (double)bs;
            acc->steps++;
            if (st == FNET_OK && tp->on_step != NULL) {
                fnet_step_info si = {.epoch = epoch, .epochs = tp->epochs, .step = b + 1,
                                     .steps_per_epoch = L.n_batches, .run_steps = acc->steps};
                uint64_t gen = fnet_model_generation(m);
                st = fnet_train_loop_hook(&L, tp->on_step(m, opt, &si, tp->step_user), &si);
                w = fnet_model_params(m, NULL);
                g = fnet_model_grads(m, NULL);
                // a new sparse pattern: the snapshot's values belong to the old one, so the
                // last good state is now
                if (st == FNET_OK && tp->on_nan == FNET_NAN_ROLLBACK &&
                    fnet_model_generation(m) != gen)
                    st = snapshot_take(m, opt, &snap);
            }
            if (tp->on_batch)
                tp->on_batch(b + 1, L.n_batches, user);
            // within the epoch: a stop or a checkpoint by time (at its end, after its report)
            if (st == FNET_OK && b + 1 < L.n_batches) {
                struct fnet_run_pos at = mid_epoch(epoch, b + 1, loss_sum,
                                                   before + fnet_train_loop_elapsed(&L, t0, ck0),
                                                   lr_scale, &snap, opt);
                st = fnet_train_loop_step_end(&L, opt, NULL, op, tp, &at);
            }
        }
        double seconds = before + fnet_train_loop_elapsed(&L, t0, ck0);
        fnet_model_set_training(m, false);
        if (st == FNET_ERR_NUMERIC && tp->on_nan == FNET_NAN_ROLLBACK &&
            acc->rollbacks < tp->max_rollbacks && fnet_ctx_last_status(ctx) == FNET_ERR_NUMERIC &&
            snap.w != NULL) {
            // restore the start of this epoch (or of this call, in the epoch it resumed in),
            // halve the rate, run it again
            snapshot_restore(m, opt, &snap);
            acc->rollbacks++;
            lr_scale *= 0.5f;
            fnet_log(FNET_LOG_WARN, "epoch %d: the loss became NaN/Inf; rolled back, learning "
                     "rate halved to %g (rollback %d of %d)", epoch + 1, (double)(lr * 0.5f),
                     acc->rollbacks, tp->max_rollbacks);
            st = FNET_OK;
            start.batch = 0; // the epoch runs again from its start, reshuffled, as in one go
            epoch--;
            continue;
        }
        if (st != FNET_OK)
            break;
        fnet_epoch_info info;
        st = fnet_train_loop_epoch_info(&L, epoch, tp->epochs, loss_sum, lr, seconds, &info);
        if (st != FNET_OK)
            break;
        if (tp->tt_round_every > 0 && (epoch + 1) % tp->tt_round_every == 0 &&
            epoch + 1 < tp->epochs) {
            // the optimizer's state follows the rebuilt flat vector in the same step
            st = fnet_model_round_layers(m, tp->tt_eps, tp->tt_max_rank, opt, NULL);
            if (st != FNET_OK)
                break;
            w = fnet_model_params(m, NULL); // rebuilt
            g = fnet_model_grads(m, NULL);
            // distributed: every rank's SVDs must have chosen the same ranks and values
            char where[64];
            snprintf(where, sizeof(where), "TT rounding after epoch %d", epoch + 1);
            if ((st = fnet_dist_check_same(ctx, w, fnet_model_num_params(m), where)) != FNET_OK)
                break;
        }
        bool stop = false;
        if ((st = fnet_train_loop_epoch_end(&L, &info, on_epoch, user, &stop)) != FNET_OK)
            break;
        struct fnet_run_pos at = {.epoch = epoch + 1, .lr_scale = lr_scale};
        st = fnet_train_loop_epoch_saves(&L, opt, NULL, op, tp, &at, stop);
        if (st != FNET_OK || stop)
            break;
    }
    fnet_train_loop_stats(&L, stats);
    fnet_replay_close(&R);
    fnet_free(start.snap_host);
    ctx->be->free(ctx, snap.w);
    fnet_train_loop_close(&L);
    return st;
}

fnet_status fnet_train(fnet_model *m, const fnet_optim_params *op, const fnet_train_params *tp,
                       const fnet_dataset *train, const fnet_dataset *val, fnet_epoch_fn on_epoch,
                       void *user, fnet_train_stats *stats)
{
    if (m == NULL || op == NULL)
        return FNET_ERR_INVALID_ARG;
    // L-BFGS and CG call the loss-and-gradient oracle as often as they need (src/optim/)
    if (op->kind == FNET_OPTIM_LBFGS || op->kind == FNET_OPTIM_CG)
        return fnet_train_solver(m, op, tp, train, val, on_epoch, user, stats);
    fnet_optimizer *opt = NULL;
    fnet_status st = fnet_optimizer_create(fnet_model_ctx(m), op, fnet_model_num_params(m), &opt);
    if (st != FNET_OK)
        return st;
    st = fnet_train_with(m, opt, op, tp, train, val, on_epoch, user, stats);
    fnet_optimizer_free(opt);
    return st;
}

fnet_status fnet_train_check_resume(fnet_model *m, const fnet_optim_params *op,
                                    const fnet_train_params *tp, const fnet_dataset *train,
                                    int *epochs_done, int64_t *steps_done)
{
    if (m == NULL || op == NULL || tp == NULL || train == NULL || tp->resume_path == NULL)
        return fnet_fail(m ? fnet_model_ctx(m) : NULL, FNET_ERR_INVALID_ARG,
                         "check_resume: model, parameters, training data and a resume path are "
                         "required");
    fnet_ctx *ctx = fnet_model_ctx(m);
    if (tp->batch < 0 || fnet_dataset_size(train) < 1)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "check_resume: batch %lld, %lld samples",
                         (long long)tp->batch, (long long)fnet_dataset_size(train));
    struct fnet_train_loop L;
    fnet_status st = fnet_train_loop_open(&L, m, tp, train, NULL);
    if (st != FNET_OK)
        return st;
    // an optimizer or a solver of the run's kind, as the resume would restore into
    fnet_optimizer *opt = NULL;
    fnet_solver *solver = NULL;
    if (op->kind == FNET_OPTIM_LBFGS || op->kind == FNET_OPTIM_CG)
        st = fnet_solver_create(ctx, op, fnet_model_num_params(m), &solver);
    else
        st = fnet_optimizer_create(ctx, op, fnet_model_num_params(m), &opt);
    struct fnet_run_pos pos = {0};
    if (st == FNET_OK)
        st = fnet_train_ckpt_resume(&L, opt, solver, op, tp, &pos, true);
    if (st == FNET_OK) {
        if (epochs_done)
            *epochs_done = pos.epoch;
        if (steps_done)
            *steps_done = pos.batch;
    }
    fnet_solver_free(solver);
    fnet_optimizer_free(opt);
    fnet_train_loop_close(&L);
    return st;
}
