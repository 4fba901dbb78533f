/* Pruning schedules around the trainer (docs/sparse.md): one-shot and iterative (Han et al.
 * 2015) as phases of fnet_train(), gradual (Zhu & Gupta 2017) as a step hook that grows the mask
 * on the cubic schedule. The epochs of all phases reach the caller's callback as one run. */
#include "core/internal.h"

#include <factornet/sparse.h>

#include <math.h>
#include <string.h>

fnet_prune_params fnet_prune_params_default(void)
{
    fnet_prune_params p = {
        .sparsity = 0.9,
        .scope = FNET_PRUNE_GLOBAL,
        .schedule = FNET_PRUNE_ITERATIVE,
        .rounds = 3,
        .finetune_epochs = 2,
        .finetune_lr_scale = 0.3f,
        .gradual_end = 0.75,
        .gradual_every = 100,
        .structured = false,
    };
    return p;
}

// The caller's callback, with the epochs of every phase numbered as one run.
struct relay {
    fnet_epoch_fn fn;
    fnet_batch_fn batch_fn; // the caller's progress callback, given the caller's user pointer
    void *user;
    int offset, total;
    fnet_step_hook inner; // the caller's own step hook, run before the gradual one
    void *inner_user;
    const fnet_prune_params *p;
    int64_t total_steps; // GRADUAL: steps of the pruning phase
    fnet_status failed;  // a pruning step that failed inside the hook
};

static int relay_epoch(const fnet_epoch_info *info, void *user)
{
    struct relay *r = user;
    if (r->fn == NULL)
        return 0;
    fnet_epoch_info shifted = *info;
    shifted.epoch += r->offset;
    shifted.epochs = r->total;
    return r->fn(&shifted, r->user);
}

static void relay_batch(int64_t done, int64_t total, void *user)
{
    struct relay *r = user;
    r->batch_fn(done, total, r->user);
}

// Zhu & Gupta's s_t = s·(1 − (1 − t/T)³) for t <= T steps, then s.
static double gradual_target(double s, int64_t t, int64_t T)
{
    if (t >= T)
        return s;
    double u = 1.0 - (double)t / (double)T;
    return s * (1.0 - u * u * u);
}

static fnet_status gradual_hook(fnet_model *m, fnet_optimizer *opt, const fnet_step_info *info,
                                void *user)
{
    struct relay *r = user;
    if (r->inner != NULL) {
        fnet_status st = r->inner(m, opt, info, r->inner_user);
        if (st != FNET_OK)
            return st;
    }
    // the optimizer's step count (a fresh optimizer of this phase) is what a NaN rollback winds
    // back; the solvers have none and count the minibatches done
    int64_t t = opt != NULL ? fnet_optimizer_steps(opt) : info->run_steps, T = r->total_steps;
    if (t > T || (t % r->p->gradual_every != 0 && t != T))
        return FNET_OK;
    return fnet_prune_magnitude(m, gradual_target(r->p->sparsity, t, T), r->p->scope, opt);
}

static void add_stats(fnet_train_stats *acc, const fnet_train_stats *s)
{
    acc->epochs_run += s->epochs_run;
    acc->steps += s->steps;
    acc->train_seconds += s->train_seconds;
    acc->train_loss = s->train_loss;
    acc->val_loss = s->val_loss;
    acc->val_acc = s->val_acc;
    acc->rollbacks += s->rollbacks;
}

// Structured pruning: *m replaced by the model without those neurons.
static fnet_status replace_model(fnet_model **m, double fraction)
{
    fnet_model *nm = NULL;
    fnet_status st = fnet_prune_neurons(*m, fraction, &nm);
    if (st != FNET_OK)
        return st;
    fnet_model_free(*m);
    *m = nm;
    return FNET_OK;
}

fnet_status fnet_train_pruned(fnet_model **mp, const fnet_optim_params *op,
                              const fnet_train_params *tp, const fnet_prune_params *p,
                              const fnet_dataset *train, const fnet_dataset *val,
                              fnet_epoch_fn on_epoch, void *user, fnet_train_stats *stats)
{
    if (mp == NULL || *mp == NULL || op == NULL || tp == NULL || p == NULL)
        return FNET_ERR_INVALID_ARG;
    fnet_ctx *ctx = fnet_model_ctx(*mp);
    if (!(p->sparsity >= 0.0 && p->sparsity < 1.0))
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "prune: sparsity must be in [0, 1), got %g",
                         p->sparsity);
    if ((unsigned)p->schedule > FNET_PRUNE_GRADUAL || (unsigned)p->scope > FNET_PRUNE_GLOBAL)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "prune: unknown schedule %d or scope %d",
                         (int)p->schedule, (int)p->scope);
    if (p->schedule == FNET_PRUNE_ITERATIVE && p->rounds < 1)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "prune: rounds must be >= 1, got %d",
                         p->rounds);
    if (p->finetune_epochs < 0 || !(p->finetune_lr_scale > 0.0f && isfinite(p->finetune_lr_scale)))
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "prune: fine-tune epochs must be >= 0 and "
                         "the rate scale positive, got %d and %g", p->finetune_epochs,
                         (double)p->finetune_lr_scale);
    if (p->schedule == FNET_PRUNE_GRADUAL &&
        (p->structured || !(p->gradual_end > 0.0 && p->gradual_end <= 1.0) ||
         p->gradual_every < 1))
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "prune: gradual pruning needs end in (0, 1] "
                         "and an interval >= 1 (got %g, %lld), and is not structured",
                         p->gradual_end, (long long)p->gradual_every);
    // the schedule's phases are runs of their own, and its state is not in a run's checkpoint
    if (tp->save_path != NULL || tp->resume_path != NULL)
        return fnet_fail(ctx, FNET_ERR_UNSUPPORTED, "prune: pruning schedules cannot be "
                         "checkpointed and resumed yet (their state is not in a run's "
                         "checkpoint): no save_path or resume_path; stop works");
    // 0 epochs: the model is already trained (fnet-compress, fnet-prune); only the rounds run
    if (tp->epochs < (p->schedule == FNET_PRUNE_GRADUAL ? 1 : 0))
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "epochs must be >= %d for %s pruning, got %d",
                         p->schedule == FNET_PRUNE_GRADUAL ? 1 : 0,
                         fnet_prune_schedule_name(p->schedule), tp->epochs);
    int rounds = p->schedule == FNET_PRUNE_ITERATIVE ? p->rounds
                 : p->schedule == FNET_PRUNE_ONESHOT ? 1 : 0;
    struct relay r = {.fn = on_epoch, .user = user, .p = p,
                      .total = tp->epochs + (rounds > 0 ? rounds : 1) * p->finetune_epochs};
    fnet_train_stats acc = {0}, s = {0};
    fnet_train_params t = *tp;
    fnet_status st = FNET_OK;
    r.batch_fn = tp->on_batch;
    if (tp->on_batch)
        t.on_batch = relay_batch;

    // the training phase: dense, or with the mask growing (GRADUAL)
    if (p->schedule == FNET_PRUNE_GRADUAL) {
        int64_t n = fnet_dataset_size(train);
        int64_t B = tp->batch < 1 || tp->batch > n ? n : tp->batch;
        int64_t steps = (n + B - 1) / B * tp->epochs;
        r.total_steps = (int64_t)llround(p->gradual_end * (double)steps);
        if (r.total_steps < 1)
            r.total_steps = 1;
        r.inner = tp->on_step;
        r.inner_user = tp->step_user;
        t.on_step = gradual_hook;
        t.step_user = &r;
    }
    if (tp->epochs > 0) {
        st = fnet_train(*mp, op, &t, train, val, relay_epoch, &r, &s);
        add_stats(&acc, &s);
        r.offset += s.epochs_run;
        if (st == FNET_OK && s.epochs_run < tp->epochs)
            goto out; // the callback stopped the run
    }
    // the pruning rounds and fine-tuning, at the reduced rate
    fnet_optim_params fine = *op;
    fine.lr = op->lr * p->finetune_lr_scale;
    fine.lr_min = op->lr_min * p->finetune_lr_scale;
    t = *tp;
    t.on_batch = tp->on_batch ? relay_batch : NULL;
    t.epochs = p->finetune_epochs;
    t.seed = tp->seed + 1;
    for (int k = 1; k <= (rounds > 0 ? rounds : 1) && st == FNET_OK; k++) {
        if (rounds > 0) {
            // each round removes the same fraction of what is left: 1 − (1 − s)^(k/K)
            double target = 1.0 - pow(1.0 - p->sparsity, (double)k / (double)rounds);
            if (k == rounds)
                target = p->sparsity;
            if (p->structured) {
                // neurons: each round removes 1 − (1 − s)^(1/K) of the ones left
                st = replace_model(mp, 1.0 - pow(1.0 - p->sparsity, 1.0 / (double)rounds));
            } else {
                st = fnet_prune_magnitude(*mp, target, p->scope, NULL);
            }
            if (st != FNET_OK)
                break;
        }
        if (p->finetune_epochs == 0)
            continue;
        t.seed++;
        st = fnet_train(*mp, &fine, &t, train, val, relay_epoch, &r, &s);
        add_stats(&acc, &s);
        r.offset += s.epochs_run;
        if (st == FNET_OK && s.epochs_run < t.epochs)
            break;
    }
out:
    acc.samples_per_s = acc.train_seconds > 0.0 ? (double)fnet_dataset_size(train) *
                                                      (double)acc.epochs_run / acc.train_seconds
                                                : 0.0;
    if (stats)
        *stats = acc;
    return st;
}
