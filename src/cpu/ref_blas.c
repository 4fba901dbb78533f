/* Reference BLAS-shaped ops: obviously correct loops with double accumulation. The oracle of the
 * CPU (OpenBLAS) and CUDA (cuBLAS) versions. */
#include "cpu/ref.h"

#include <math.h>

// C (M, N) = alpha·op(A)·op(B) + beta·C; op(A) (M, K) from A (M, K) or A (K, M) transposed.
void fnet_ref_sgemm(fnet_ctx *ctx, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                    const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                    int64_t ldc)
{
    for (int64_t i = 0; i < M; i++) {
        for (int64_t j = 0; j < N; j++) {
            double acc = 0.0;
            for (int64_t k = 0; k < K; k++) {
                float a = ta ? A[k * lda + i] : A[i * lda + k];
                float b = tb ? B[j * ldb + k] : B[k * ldb + j];
                acc += (double)a * (double)b;
            }
            float prev = beta == 0.0f ? 0.0f : beta * C[i * ldc + j]; // beta 0 ignores NaN in C
            C[i * ldc + j] = (float)((double)alpha * acc) + prev;
        }
    }
}

// out (Q, P, R) (+)= in (P, Q, R)
FNET_VECTORIZE
void fnet_ref_sgemm_batched(fnet_ctx *ctx, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                            float alpha, const float *A, int64_t lda, int64_t sa, const float *B,
                            int64_t ldb, int64_t sb, float beta, float *C, int64_t ldc,
                            int64_t sc, int64_t count)
{
    for (int64_t i = 0; i < count; i++)
        fnet_ref_sgemm(ctx, ta, tb, M, N, K, alpha, A + i * sa, lda, B + i * sb, ldb, beta,
                       C + i * sc, ldc);
}

void fnet_ref_permute_021(fnet_ctx *ctx, int64_t P, int64_t Q, int64_t R, const float *in,
                          float *out, bool accumulate)
{
    for (int64_t p = 0; p < P; p++)
        for (int64_t q = 0; q < Q; q++) {
            const float *restrict src = in + (p * Q + q) * R;
            float *restrict dst = out + (q * P + p) * R;
            if (accumulate)
                for (int64_t r = 0; r < R; r++)
                    dst[r] += src[r];
            else
                for (int64_t r = 0; r < R; r++)
                    dst[r] = src[r];
        }
}

// out (cols, rows) = in (rows, cols)ᵀ
void fnet_ref_transpose(fnet_ctx *ctx, int64_t rows, int64_t cols, const float *in, float *out)
{
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++)
            out[j * rows + i] = in[i * cols + j];
}

// y (n) += a·x (n)
void fnet_ref_axpy(fnet_ctx *ctx, int64_t n, float a, const float *x, float *y)
{
    for (int64_t i = 0; i < n; i++)
        y[i] += a * x[i];
}

// x (n) *= a
void fnet_ref_scal(fnet_ctx *ctx, int64_t n, float a, float *x)
{
    for (int64_t i = 0; i < n; i++)
        x[i] *= a;
}

// Σ x·y (n), accumulated in double
double fnet_ref_dot(fnet_ctx *ctx, int64_t n, const float *x, const float *y)
{
    double acc = 0.0;
    for (int64_t i = 0; i < n; i++)
        acc += (double)x[i] * (double)y[i];
    return acc;
}

// y (n) = (a·x) + (b·y); b == 0 writes a·x without reading y (so NaN in y does not leak)
FNET_VECTORIZE
void fnet_ref_axpby(fnet_ctx *ctx, int64_t n, float a, const float *x, float b, float *y)
{
    if (b == 0.0f) {
        for (int64_t i = 0; i < n; i++)
            y[i] = a * x[i];
        return;
    }
    for (int64_t i = 0; i < n; i++)
        y[i] = a * x[i] + b * y[i];
}

// max |x_i| (n), NaNs skipped
double fnet_ref_amax(fnet_ctx *ctx, int64_t n, const float *x)
{
    float m = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        m = a > m ? a : m;
    }
    return (double)m;
}
