/* Reference element-wise ops: bias, activations, dropout masks, the losses, regularization,
 * uint8 batches. Plain loops the compiler vectorizes; the CPU backend splits them over threads. */
#include "cpu/ref.h"

#include <math.h>

// y (B, n) = bias (n) broadcast over rows
FNET_VECTORIZE
void fnet_ref_bias_fill(fnet_ctx *ctx, int64_t B, int64_t n, const float *bias, float *y)
{
    for (int64_t r = 0; r < B; r++) {
        float *restrict yr = y + r * n;
        for (int64_t j = 0; j < n; j++)
            yr[j] = bias[j];
    }
}

// y (B, n) += bias (n) broadcast over rows
FNET_VECTORIZE
void fnet_ref_bias_add(fnet_ctx *ctx, int64_t B, int64_t n, const float *bias, float *y)
{
    for (int64_t r = 0; r < B; r++) {
        float *restrict yr = y + r * n;
        for (int64_t j = 0; j < n; j++)
            yr[j] += bias[j];
    }
}

// db (n) (+)= Σ_r dy (B, n)[r]; float accumulation per column is what BLAS would do, but the
// reference sums in double to be the more accurate side of any comparison.
void fnet_ref_bias_grad(fnet_ctx *ctx, int64_t B, int64_t n, const float *dy, float *db,
                        bool accumulate)
{
    for (int64_t j = 0; j < n; j++) {
        double acc = accumulate ? (double)db[j] : 0.0;
        for (int64_t r = 0; r < B; r++)
            acc += (double)dy[r * n + j];
        db[j] = (float)acc;
    }
}

static float sigmoidf(float x)
{
    // stable for large |x|: never overflows expf
    if (x >= 0.0f)
        return 1.0f / (1.0f + expf(-x));
    float e = expf(x);
    return e / (1.0f + e);
}

// y (n) = f(x (n)); x == y allowed
FNET_VECTORIZE
fnet_status fnet_ref_act_forward(fnet_ctx *ctx, enum fnet_act act, int64_t n, const float *x,
                                 float *y)
{
    switch (act) {
    case FNET_ACT_RELU:
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] > 0.0f ? x[i] : 0.0f;
        return FNET_OK;
    case FNET_ACT_TANH:
        for (int64_t i = 0; i < n; i++)
            y[i] = tanhf(x[i]);
        return FNET_OK;
    case FNET_ACT_SIGMOID:
        for (int64_t i = 0; i < n; i++)
            y[i] = sigmoidf(x[i]);
        return FNET_OK;
    }
    return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "act_forward: unknown activation %d", (int)act);
}

// dx (n) = dy ⊙ f'(x) expressed through y = f(x): relu 1[y>0], tanh 1−y², sigmoid y(1−y)
FNET_VECTORIZE
fnet_status fnet_ref_act_backward(fnet_ctx *ctx, enum fnet_act act, int64_t n, const float *y,
                                  const float *dy, float *dx)
{
    switch (act) {
    case FNET_ACT_RELU:
        for (int64_t i = 0; i < n; i++)
            dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
        return FNET_OK;
    case FNET_ACT_TANH:
        for (int64_t i = 0; i < n; i++)
            dx[i] = dy[i] * (1.0f - y[i] * y[i]);
        return FNET_OK;
    case FNET_ACT_SIGMOID:
        for (int64_t i = 0; i < n; i++)
            dx[i] = dy[i] * y[i] * (1.0f - y[i]);
        return FNET_OK;
    }
    return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "act_backward: unknown activation %d", (int)act);
}

// y (n) = x ⊙ mask
FNET_VECTORIZE
void fnet_ref_mul(fnet_ctx *ctx, int64_t n, const float *x, const float *mask, float *y)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] * mask[i];
}

// mask (n) = 0 where the draw's top 24 bits fall below p·2^24, else 1/(1−p): exact for any p
// representable on 24 bits. mask[k] takes draw first + k of (seed, step), fnet_counter_bits
// (core/internal.h), so pieces of one mask can be drawn apart.
void fnet_ref_dropout_span(int64_t first, int64_t n, float p, uint64_t seed, uint64_t step,
                           float *mask)
{
    uint32_t threshold = (uint32_t)((double)p * 16777216.0);
    float keep = 1.0f / (1.0f - p);
    uint64_t key = fnet_counter_key(seed, step);
    for (int64_t k = 0; k < n; k++)
        mask[k] = (uint32_t)(fnet_counter_bits(key, (uint64_t)(first + k)) >> 40) < threshold
                      ? 0.0f
                      : keep;
}

void fnet_ref_dropout_mask(fnet_ctx *ctx, int64_t n, float p, uint64_t seed, uint64_t step,
                           uint64_t first, float *mask)
{
    fnet_ref_dropout_span((int64_t)first, n, p, seed, step, mask);
}

static int64_t argmax(const float *v, int64_t K)
{
    int64_t best = 0;
    for (int64_t k = 1; k < K; k++)
        if (v[k] > v[best])
            best = k;
    return best;
}

// Softmax cross-entropy per row r of logits (B, K): lse(z) − z[label], computed around the row
// maximum so exp never overflows. Returns the sum over rows; dlogits = scale·(softmax − onehot).
double fnet_ref_softmax_ce(fnet_ctx *ctx, int64_t B, int64_t K, const float *logits,
                           const int32_t *labels, float scale, float *dlogits, int64_t *correct)
{
    double total = 0.0;
    int64_t right = 0;
    for (int64_t r = 0; r < B; r++) {
        const float *z = logits + r * K;
        int64_t best = argmax(z, K);
        right += best == labels[r];
        float zmax = z[best];
        double sum = 0.0;
        for (int64_t k = 0; k < K; k++)
            sum += exp((double)z[k] - (double)zmax);
        double lse = (double)zmax + log(sum);
        total += lse - (double)z[labels[r]];
        if (dlogits) {
            float *d = dlogits + r * K;
            for (int64_t k = 0; k < K; k++)
                d[k] = scale * (float)exp((double)z[k] - lse);
            d[labels[r]] -= scale;
        }
    }
    if (correct)
        *correct = right;
    return total;
}

// ½‖y − onehot(label)‖² per row of y (B, K); dy = scale·(y − onehot).
double fnet_ref_mse(fnet_ctx *ctx, int64_t B, int64_t K, const float *y, const int32_t *labels,
                    float scale, float *dy, int64_t *correct)
{
    double total = 0.0;
    int64_t right = 0;
    for (int64_t r = 0; r < B; r++) {
        const float *yr = y + r * K;
        right += argmax(yr, K) == labels[r];
        for (int64_t k = 0; k < K; k++) {
            float t = k == labels[r] ? 1.0f : 0.0f;
            float e = yr[k] - t;
            total += 0.5 * (double)e * (double)e;
            if (dy)
                dy[r * K + k] = scale * e;
        }
    }
    if (correct)
        *correct = right;
    return total;
}

// l1·Σ|w| + ½·l2·Σw² over w (n); g += l1·sign(w) + l2·w (sign(0) = 0).
FNET_VECTORIZE
double fnet_ref_regularize(fnet_ctx *ctx, int64_t n, const float *w, float *g, float l1, float l2)
{
    double s1 = 0.0, s2 = 0.0;
    for (int64_t i = 0; i < n; i++) {
        float wi = w[i];
        float sgn = (float)((wi > 0.0f) - (wi < 0.0f));
        s1 += fabs((double)wi);
        s2 += (double)wi * (double)wi;
        g[i] += l1 * sgn + l2 * wi;
    }
    return (double)l1 * s1 + 0.5 * (double)l2 * s2;
}

// x (B, d) = scale · src rows idx[0..B) (each row d uint8 values)
FNET_VECTORIZE
void fnet_ref_u8_to_float(fnet_ctx *ctx, int64_t B, int64_t d, const uint8_t *src,
                          const int64_t *idx, float scale, float *x)
{
    for (int64_t r = 0; r < B; r++) {
        const uint8_t *restrict s = src + idx[r] * d;
        float *restrict xr = x + r * d;
        for (int64_t j = 0; j < d; j++)
            xr[j] = (float)s[j] * scale;
    }
}

// every x[i] finite; x − x is 0 for finite values and NaN otherwise, so no branch per element
bool fnet_ref_all_finite(fnet_ctx *ctx, int64_t n, const float *x)
{
    float acc = 0.0f;
    for (int64_t i = 0; i < n; i++)
        acc += x[i] - x[i];
    return acc == 0.0f;
}
