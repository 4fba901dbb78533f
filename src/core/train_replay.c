/* Replayed training steps (docs/gpu.md, "The step as one graph"): after an epoch's first step,
 * the step (gather, forward, loss, backward, optimizer) is recorded once with the backend's
 * graph_make and run again for every full batch, with one upload before each run (its rows,
 * labels, step number and optimizer scalars) and nothing read back until the segment ends: at
 * the epoch's last full batch, or when the host needs the loss (a checkpoint, a stop). The loss
 * is summed on the device with the first step whose loss was not finite; the optimizer skips
 * every step from that one on, so the parameters are those the plain trainer stops with. */
#include "core/train_replay.h"
#include "dist/dist.h"

#include <string.h>

static _Thread_local int replay_mode; // fnet_debug_train_replay

int fnet_debug_train_replay(int mode)
{
    int before = replay_mode;
    replay_mode = mode;
    return before;
}

// The upload block of one step: the optimizer's scalars, the step number, the rows, the labels.
struct block {
    struct fnet_step_args args;
    int64_t step;
    int64_t rows[]; // B of them, then B int32 labels
};

static size_t block_bytes(int64_t B)
{
    return sizeof(struct block) + (size_t)B * (sizeof(int64_t) + sizeof(int32_t));
}

static int32_t *block_labels(struct block *b, int64_t B)
{
    return (int32_t *)(b->rows + B);
}

// The recorded step: reads everything from the device block, so that each run takes the block's
// values as they are then.
static void replay_fn(void *arg)
{
    struct fnet_replay *r = arg;
    struct block *d = r->dev;
    fnet_dataset_gather_dev(r->train, r->B, d->rows, r->x);
    fnet_model_step_dev(r->m, r->x, block_labels(d, r->B), r->B, &d->step, r->acc);
    fnet_optimizer_step_dev(r->opt, fnet_model_params(r->m, NULL), fnet_model_grads(r->m, NULL),
                            &d->args, r->acc);
}

fnet_status fnet_replay_open(struct fnet_replay *r, fnet_model *m, fnet_optimizer *opt,
                             const fnet_train_params *tp, const fnet_dataset *train, float *x,
                             int64_t B)
{
    *r = (struct fnet_replay){.m = m, .opt = opt, .train = train, .x = x, .B = B};
    fnet_ctx *ctx = fnet_model_ctx(m);
    const struct fnet_backend_ops *be = ctx->be;
    bool records = be->graph_make != NULL && be->graph_run != NULL && be->graph_free != NULL;
    bool can = be->u8_gather != NULL && be->loss_step != NULL && be->step_dev != NULL;
    // distributed, every step all-reduces between its backward pass and its optimizer step
    if (replay_mode < 0 || (replay_mode == 0 && !records) || !can || tp->on_step != NULL ||
        !fnet_model_replayable(m) || !fnet_optimizer_replayable(opt) ||
        fnet_dist_ctx_size(ctx) > 1)
        return FNET_OK; // r->on false: every step plain
    r->host = fnet_malloc(block_bytes(B));
    r->dev = be->alloc(ctx, block_bytes(B));
    r->acc = be->alloc(ctx, 2 * sizeof(double));
    if (r->host == NULL || r->dev == NULL || r->acc == NULL) {
        fnet_replay_close(r);
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "the replayed step's buffers");
    }
    r->on = true;
    return FNET_OK;
}

void fnet_replay_close(struct fnet_replay *r)
{
    fnet_ctx *ctx = fnet_model_ctx(r->m);
    fnet_graph_free(r->graph);
    ctx->be->free(ctx, r->acc);
    ctx->be->free(ctx, r->dev);
    fnet_free(r->host);
    r->graph = NULL;
    r->acc = NULL;
    r->dev = NULL;
    r->host = NULL;
    r->on = false;
}

fnet_status fnet_replay_begin(struct fnet_replay *r, int64_t b)
{
    fnet_ctx *ctx = fnet_model_ctx(r->m);
    const double zero[2] = {0.0, -1.0};
    ctx->be->upload(ctx, r->acc, zero, sizeof(zero));
    fnet_status st = fnet_graph_make(ctx, replay_fn, r, &r->graph);
    if (st == FNET_ERR_UNSUPPORTED) { // this step cannot be recorded: plain steps from now on
        fnet_log(FNET_LOG_INFO, "training step not recorded (%s): every step runs as it is",
                 fnet_ctx_last_message(ctx));
        fnet_ctx_clear_error(ctx);
        r->on = false;
        return FNET_OK;
    }
    if (st != FNET_OK)
        return st;
    r->first = b;
    r->done = 0;
    return FNET_OK;
}

void fnet_replay_step(struct fnet_replay *r, const int64_t *idx, int64_t b)
{
    fnet_ctx *ctx = fnet_model_ctx(r->m);
    struct block *h = r->host;
    fnet_optimizer_next_args(r->opt, &h->args);
    h->step = b;
    fnet_dataset_rows(r->train, idx, r->B, h->rows, block_labels(h, r->B));
    ctx->be->upload(ctx, r->dev, h, block_bytes(r->B));
    fnet_graph_run(r->graph);
    r->done++;
}

fnet_status fnet_replay_end(struct fnet_replay *r, double *loss_sum, int64_t *bad)
{
    fnet_ctx *ctx = fnet_model_ctx(r->m);
    double acc[2];
    ctx->be->download(ctx, acc, r->acc, sizeof(acc));
    fnet_graph_free(r->graph);
    r->graph = NULL;
    *loss_sum = acc[0];
    *bad = acc[1] >= 0 ? (int64_t)acc[1] : -1;
    if (*bad >= 0) // the steps from the bad one on were skipped: not taken
        fnet_optimizer_set_steps(r->opt,
                                 fnet_optimizer_steps(r->opt) - (r->first + r->done - *bad));
    return fnet_ctx_synchronize(ctx);
}
