/* Reference fused optimizer steps: one branch-free, vectorizable pass over (w, g, state) each,
 * in float, with PyTorch's torch.optim semantics (SGD, momentum/Nesterov with dampening 0,
 * RMSprop, Adam). Purely element-wise, so the CPU backend may run them on any chunking of [0, n)
 * and get the same bits. weight_decay is PyTorch's coupled L2 term, g' = g + wd·w, in every
 * step; AdamW's decoupled decay is applied by src/optim before adam_step (with wd = 0 here). */
#include "cpu/ref.h"

#include <math.h>

// The loops calling sqrtf vectorize only under -fno-math-errno (which changes no result: sqrtss
// and sqrtps round alike); GCC 12 ignores it as a per-function attribute, so it is a build flag.

// w (n) -= lr·g',  g' = g + wd·w
FNET_VECTORIZE
void fnet_ref_sgd_step(fnet_ctx *ctx, int64_t n, float *restrict w, const float *restrict g,
                       const struct fnet_step_args *a)
{
    const float lr = a->lr, wd = a->weight_decay;
    for (int64_t i = 0; i < n; i++) {
        float gi = g[i] + wd * w[i];
        w[i] -= lr * gi;
    }
}

// w, g, v (n).  v = μv + g';  momentum: w -= lr·v;  Nesterov: w -= lr·(g' + μv)
FNET_VECTORIZE
void fnet_ref_momentum_step(fnet_ctx *ctx, int64_t n, float *restrict w, const float *restrict g,
                            float *restrict v, const struct fnet_step_args *a, bool nesterov)
{
    const float lr = a->lr, mu = a->momentum, wd = a->weight_decay;
    // Two loops rather than a select inside one, so each stays branch-free.
    if (nesterov) {
        for (int64_t i = 0; i < n; i++) {
            float gi = g[i] + wd * w[i];
            float vi = mu * v[i] + gi;
            v[i] = vi;
            w[i] -= lr * (gi + mu * vi);
        }
    } else {
        for (int64_t i = 0; i < n; i++) {
            float gi = g[i] + wd * w[i];
            float vi = mu * v[i] + gi;
            v[i] = vi;
            w[i] -= lr * vi;
        }
    }
}

// w, g, s (n).  s = ρs + (1−ρ)g'²;  w -= lr·g'/(√s + ε)
FNET_VECTORIZE
void fnet_ref_rmsprop_step(fnet_ctx *ctx, int64_t n, float *restrict w, const float *restrict g,
                           float *restrict s, const struct fnet_step_args *a)
{
    const float lr = a->lr, rho = a->rho, one_m_rho = 1.0f - a->rho, eps = a->eps;
    const float wd = a->weight_decay;
    for (int64_t i = 0; i < n; i++) {
        float gi = g[i] + wd * w[i];
        float si = rho * s[i] + one_m_rho * gi * gi;
        s[i] = si;
        w[i] -= lr * gi / (sqrtf(si) + eps);
    }
}

// w, g, m, v (n).  m = β1·m + (1−β1)g';  v = β2·v + (1−β2)g'²;
// w -= (lr/bc1)·m / (√v/√bc2 + ε), which is lr·m̂/(√v̂ + ε) arranged as PyTorch does.
FNET_VECTORIZE
void fnet_ref_adam_step(fnet_ctx *ctx, int64_t n, float *restrict w, const float *restrict g,
                        float *restrict m, float *restrict v, const struct fnet_step_args *a)
{
    const float b1 = a->beta1, one_m_b1 = 1.0f - a->beta1;
    const float b2 = a->beta2, one_m_b2 = 1.0f - a->beta2;
    const float eps = a->eps, wd = a->weight_decay;
    // Scalars in double, rounded once: every chunk of a split call computes the same ones.
    const float step = (float)((double)a->lr / (double)a->bc1);
    const float inv_sqrt_bc2 = (float)(1.0 / sqrt((double)a->bc2));
    for (int64_t i = 0; i < n; i++) {
        float gi = g[i] + wd * w[i];
        float mi = b1 * m[i] + one_m_b1 * gi;
        float vi = b2 * v[i] + one_m_b2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        w[i] -= step * mi / (sqrtf(vi) * inv_sqrt_bc2 + eps);
    }
}
