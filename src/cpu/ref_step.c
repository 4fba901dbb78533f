/* The reference's ops of a replayed training step (backend.h, "a training step replayed"): the
 * data gather, loss and optimizer step of the reference and CPU backends with their per-step
 * values read from backend memory, which on these backends is host memory. */
#include "cpu/ref.h"

#include <math.h>

void fnet_ref_u8_gather(fnet_ctx *ctx, int64_t B, int64_t d, const uint8_t *src,
                        const int64_t *rows, float scale, float *x)
{
    fnet_ref_u8_to_float(ctx, B, d, src, rows, scale, x);
}

void fnet_ref_loss_step(fnet_ctx *ctx, bool mse, int64_t B, int64_t K, const float *logits,
                        const int32_t *labels, float scale, float *dlogits, const int64_t *step,
                        double *acc)
{
    double sum = mse ? fnet_ref_mse(ctx, B, K, logits, labels, scale, dlogits, NULL)
                     : fnet_ref_softmax_ce(ctx, B, K, logits, labels, scale, dlogits, NULL);
    if (!isfinite(sum) && acc[1] < 0)
        acc[1] = (double)*step;
    acc[0] += sum;
}

// The ctx's own fused steps (the CPU backend's split over its pool), with *a as they are now.
void fnet_ref_step_dev(fnet_ctx *ctx, int kind, bool nesterov, int64_t n, float *w,
                       const float *g, float *s1, float *s2, const struct fnet_step_args *a,
                       const double *skip)
{
    if (skip != NULL && skip[1] >= 0)
        return;
    const struct fnet_backend_ops *be = ctx->be;
    switch (kind) {
    case FNET_OP_SGD_STEP: be->sgd_step(ctx, n, w, g, a); break;
    case FNET_OP_MOMENTUM_STEP: be->momentum_step(ctx, n, w, g, s1, a, nesterov); break;
    case FNET_OP_RMSPROP_STEP: be->rmsprop_step(ctx, n, w, g, s1, a); break;
    case FNET_OP_ADAM_STEP: be->adam_step(ctx, n, w, g, s1, s2, a); break;
    default: break; // the caller asked for one of the four (src/optim/optimizer.c)
    }
}
