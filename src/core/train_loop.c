/* What the two trainers share: see train_loop.h. */
#include "core/train_loop.h"
#include "core/backend.h"
#include "dist/dist.h"

#include <math.h>
#include <stdio.h>

fnet_status fnet_train_loop_open(struct fnet_train_loop *L, fnet_model *m,
                                 const fnet_train_params *tp, const fnet_dataset *train,
                                 const fnet_dataset *val)
{
    fnet_ctx *ctx = fnet_model_ctx(m);
    *L = (struct fnet_train_loop){.m = m, .train = train};
    L->val = val != NULL && fnet_dataset_size(val) > 0 ? val : NULL;
    L->acc.val_loss = L->acc.val_acc = NAN;
    fnet_status st = fnet_train_check_data(m, train, "training");
    if (st == FNET_OK && L->val != NULL)
        st = fnet_train_check_data(m, L->val, "validation");
    if (st != FNET_OK)
        return st;
    L->n = fnet_dataset_size(train);
    L->B = tp->batch == 0 || tp->batch > L->n ? L->n : tp->batch;
    L->n_batches = (L->n + L->B - 1) / L->B;
    // distributed, a rank holds its rows of a batch only: rank 0 has the most
    L->part = (L->B + fnet_dist_ctx_size(ctx) - 1) / fnet_dist_ctx_size(ctx);
    L->perm = fnet_malloc_array((size_t)L->n, sizeof(int64_t));
    L->x = ctx->be->alloc(ctx, (size_t)(L->part * fnet_dataset_dim(train)) * sizeof(float));
    L->labels = fnet_malloc_array((size_t)L->part, sizeof(int32_t));
    if (L->perm == NULL || L->x == NULL || L->labels == NULL)
        st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "training batch of %lld", (long long)L->part);
    else
        st = fnet_model_reserve(m, L->part);
    if (st != FNET_OK) {
        fnet_train_loop_close(L);
        return st;
    }
    for (int64_t i = 0; i < L->n; i++)
        L->perm[i] = i;
    fnet_rng_seed(&L->rng, tp->seed);
    // a run's checkpoints name the data they were trained on
    if (tp->save_path != NULL || tp->resume_path != NULL) {
        double t0 = fnet_now();
        st = fnet_dataset_crc32(train, &L->data_crc);
        L->acc.checkpoint_seconds = fnet_now() - t0;
        if (st != FNET_OK) {
            fnet_train_loop_close(L);
            return st;
        }
    }
    L->last_save = fnet_now();
    return FNET_OK;
}

void fnet_train_loop_close(struct fnet_train_loop *L)
{
    fnet_ctx *ctx = fnet_model_ctx(L->m);
    fnet_free(L->labels);
    ctx->be->free(ctx, L->x);
    fnet_free(L->perm);
    fnet_free(L->kept);
    L->kept = NULL;
    L->labels = NULL;
    L->x = NULL;
    L->perm = NULL;
}

fnet_status fnet_train_loop_gather(struct fnet_train_loop *L, int64_t b, int64_t *size,
                                   int64_t *first, int64_t *count)
{
    int64_t bs = L->n - b * L->B < L->B ? L->n - b * L->B : L->B, f = 0, k = bs;
    fnet_dist_ctx_shard(fnet_model_ctx(L->m), bs, &f, &k);
    *size = bs;
    *first = f;
    *count = k;
    const int64_t *rows = L->perm + b * L->B + (k > 0 ? f : 0); // no rows: the batch's first
    return fnet_dataset_batch(L->train, rows, 0, k > 0 ? k : 1, L->x, L->labels);
}

fnet_status fnet_train_loop_epoch_info(struct fnet_train_loop *L, int epoch, int epochs,
                                       double loss_sum, double lr, double seconds,
                                       fnet_epoch_info *info)
{
    *info = (fnet_epoch_info){
        .epoch = epoch + 1,
        .epochs = epochs,
        .train_loss = loss_sum / (double)L->n,
        .val_loss = NAN,
        .val_acc = NAN,
        .lr = lr,
        .seconds = seconds,
        .samples_per_s = seconds > 0 ? (double)L->n / seconds : 0.0,
    };
    // distributed: the ranks' parameters must have stayed identical (a checksum compared)
    char where[48];
    snprintf(where, sizeof(where), "after epoch %d", epoch + 1);
    int64_t np = 0;
    const float *w = fnet_model_params(L->m, &np);
    fnet_status st = fnet_dist_check_same(fnet_model_ctx(L->m), w, np, where);
    if (st != FNET_OK || L->val == NULL)
        return st;
    return fnet_model_evaluate(L->m, L->val, &info->val_acc, &info->val_loss);
}

fnet_status fnet_train_loop_epoch_end(struct fnet_train_loop *L, fnet_epoch_info *info,
                                      fnet_epoch_fn on_epoch, void *user, bool *stop)
{
    info->params = fnet_model_num_params(L->m);
    L->acc.epochs_run = info->epoch;
    L->acc.train_seconds += info->seconds;
    L->acc.train_loss = info->train_loss;
    L->acc.val_loss = info->val_loss;
    L->acc.val_acc = info->val_acc;
    *stop = on_epoch != NULL && on_epoch(info, user) != 0;
    return fnet_dist_any_ctx(fnet_model_ctx(L->m), stop);
}

fnet_status fnet_train_loop_hook(struct fnet_train_loop *L, fnet_status st,
                                 const fnet_step_info *si)
{
    fnet_ctx *ctx = fnet_model_ctx(L->m);
    if (fnet_dist_ctx_size(ctx) == 1)
        return st;
    bool bad = st != FNET_OK;
    fnet_status agreed = fnet_dist_any_ctx(ctx, &bad);
    if (st != FNET_OK)
        return st;
    if (agreed != FNET_OK)
        return agreed;
    return bad ? fnet_fail(ctx, FNET_ERR_DIST, "epoch %d, step %lld: the step hook failed on "
                           "another rank (its message is on its stderr)", si->epoch + 1,
                           (long long)si->step)
               : FNET_OK;
}

const char *fnet_train_loss_str(double loss, char *buf, size_t cap)
{
    if (isnan(loss))
        snprintf(buf, cap, "NaN");
    else if (isinf(loss))
        snprintf(buf, cap, "%sInf", loss < 0 ? "-" : "");
    else
        snprintf(buf, cap, "%g", loss);
    return buf;
}

double fnet_train_loop_elapsed(const struct fnet_train_loop *L, double t0, double ck0)
{
    return fnet_now() - t0 - (L->acc.checkpoint_seconds - ck0);
}

void fnet_train_loop_stats(struct fnet_train_loop *L, fnet_train_stats *stats)
{
    fnet_train_stats *a = &L->acc;
    a->samples_per_s =
        a->train_seconds > 0 ? (double)L->n * (double)a->epochs_run / a->train_seconds : 0.0;
    if (stats)
        *stats = *a;
}
