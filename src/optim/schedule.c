/* Learning-rate schedules: constant, step decay (lr·γ^⌊epoch/step_epochs⌋) and cosine annealing
 * (Loshchilov & Hutter, "SGDR", 2017, without restarts; PyTorch's CosineAnnealingLR with
 * T_max = epochs). Evaluated in double, rounded once to float. */
#include "core/internal.h"

#include <math.h>

// Out-of-range inputs are clamped rather than refused (this function has no status): a
// negative epoch counts as 0, a cosine epoch past `epochs` as `epochs`, a non-positive
// step_epochs as no decay. fnet_optimizer_create() refuses such params anyway.
float fnet_schedule_lr(const fnet_optim_params *p, int epoch, int epochs)
{
    static const double pi = 3.14159265358979323846;
    if (p == NULL)
        return 0.0f;
    if (epoch < 0)
        epoch = 0;
    double lr = p->lr;
    switch (p->schedule) {
    case FNET_SCHEDULE_STEP:
        if (p->step_epochs < 1)
            return p->lr;
        return (float)(lr * pow((double)p->gamma, (double)(epoch / p->step_epochs)));
    case FNET_SCHEDULE_COSINE: {
        if (epochs <= 1)
            return p->lr;
        if (epoch > epochs)
            epoch = epochs;
        double lo = p->lr_min;
        return (float)(lo + 0.5 * (lr - lo) * (1.0 + cos(pi * (double)epoch / (double)epochs)));
    }
    case FNET_SCHEDULE_CONSTANT:
    default: return p->lr;
    }
}
