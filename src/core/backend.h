/* The backend table: every numeric primitive a layer, loss or optimizer needs. The reference
 * backend (src/cpu/ref_*.c) implements all of them in plain C and is the oracle; the CPU backend
 * copies it and overrides entries with OpenBLAS/LAPACKE. Optional entries may be NULL. */
#ifndef FNET_CORE_BACKEND_H
#define FNET_CORE_BACKEND_H

#include "core/internal.h"

/* Hyper-parameters of one fused optimizer step (scalars precomputed by src/optim). */
struct fnet_step_args {
    float lr, momentum, beta1, beta2, eps, rho, weight_decay;
    float bc1, bc2; // Adam bias corrections 1 − β1^t, 1 − β2^t
};

/* At most this many workers call BLAS at once (run_parts, split GEMMs): OpenBLAS keeps a fixed
 * table of buffers for concurrent callers, and Debian's is built for 64 threads. */
#define FNET_MAX_PARTS 64

struct fnet_backend_ops {
    const char *name;

    // memory (device memory on a GPU; host elsewhere)
    void *(*alloc)(fnet_ctx *ctx, size_t bytes);
    void (*free)(fnet_ctx *ctx, void *p);
    void (*set_threads)(fnet_ctx *ctx, int n);

    // C (M, N) = alpha·op(A)·op(B) + beta·C, row-major; op(A) (M, K), op(B) (K, N).
    void (*sgemm)(fnet_ctx *ctx, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                  const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                  int64_t ldc);
    // y (n) += a·x (n);  x (n) *= a;  Σ x·y and ‖x‖² in double
    void (*axpy)(fnet_ctx *ctx, int64_t n, float a, const float *x, float *y);
    void (*scal)(fnet_ctx *ctx, int64_t n, float a, float *x);
    double (*dot)(fnet_ctx *ctx, int64_t n, const float *x, const float *y);

    // out (Q, P, R) (+)= in (P, Q, R): swap the two outer axes, moving contiguous runs of R
    void (*permute_021)(fnet_ctx *ctx, int64_t P, int64_t Q, int64_t R, const float *in,
                        float *out, bool accumulate);
    // out (cols, rows) = in (rows, cols)ᵀ
    void (*transpose)(fnet_ctx *ctx, int64_t rows, int64_t cols, const float *in, float *out);
    // y (B, n) = bias broadcast over rows (the GEMM then accumulates with beta = 1)
    void (*bias_fill)(fnet_ctx *ctx, int64_t B, int64_t n, const float *bias, float *y);
    // y (B, n) += bias broadcast over rows
    void (*bias_add)(fnet_ctx *ctx, int64_t B, int64_t n, const float *bias, float *y);
    // db (n) (+)= Σ_rows dy (B, n)
    void (*bias_grad)(fnet_ctx *ctx, int64_t B, int64_t n, const float *dy, float *db,
                      bool accumulate);
    // y (n) = f(x (n)), x == y allowed; f is relu, tanh or sigmoid (fnet_layer_kind)
    void (*act_forward)(fnet_ctx *ctx, int kind, int64_t n, const float *x, float *y);
    // dx (n) = dy ⊙ f'(.) written from the output y (n); dx == dy allowed
    void (*act_backward)(fnet_ctx *ctx, int kind, int64_t n, const float *y, const float *dy,
                         float *dx);
    // y (n) = x ⊙ mask (n) (mask holds 0 or 1/(1−p)); x == y allowed
    void (*mul)(fnet_ctx *ctx, int64_t n, const float *x, const float *mask, float *y);

    // Softmax cross-entropy of logits (B, K) against labels (B): returns Σ loss (double);
    // writes dlogits (B, K) = scale·(softmax − onehot) when dlogits != NULL; counts correct
    // argmax predictions into *correct when not NULL. logits == dlogits allowed.
    double (*softmax_ce)(fnet_ctx *ctx, int64_t B, int64_t K, const float *logits,
                         const int32_t *labels, float scale, float *dlogits, int64_t *correct);
    // MSE ½‖y − onehot‖² per row: as softmax_ce, dlogits = scale·(y − onehot).
    double (*mse)(fnet_ctx *ctx, int64_t B, int64_t K, const float *y, const int32_t *labels,
                  float scale, float *dy, int64_t *correct);
    // Regularization over w (n): returns l1·Σ|w| + ½·l2·Σw²; g += l1·sign(w) + l2·w.
    double (*regularize)(fnet_ctx *ctx, int64_t n, const float *w, float *g, float l1, float l2);
    // x (B, d) = images (B, d) uint8 · scale, gathered from rows idx[0..B) of src (N, d)
    void (*u8_to_float)(fnet_ctx *ctx, int64_t B, int64_t d, const uint8_t *src,
                        const int64_t *idx, float scale, float *x);
    // true when every element of x (n) is finite
    bool (*all_finite)(fnet_ctx *ctx, int64_t n, const float *x);

    // fused optimizer steps over w, g and state vectors (n each)
    void (*sgd_step)(fnet_ctx *ctx, int64_t n, float *w, const float *g,
                     const struct fnet_step_args *a);
    void (*momentum_step)(fnet_ctx *ctx, int64_t n, float *w, const float *g, float *v,
                          const struct fnet_step_args *a, bool nesterov);
    void (*rmsprop_step)(fnet_ctx *ctx, int64_t n, float *w, const float *g, float *s,
                         const struct fnet_step_args *a);
    void (*adam_step)(fnet_ctx *ctx, int64_t n, float *w, const float *g, float *m, float *v,
                      const struct fnet_step_args *a);

    // Thin SVD of A (m, n) row-major, k = min(m, n): U (m, k), S (k) descending, Vt (k, n);
    // A unchanged. Thin QR: Q (m, k) orthonormal columns, R (k, n) upper triangular. Both allocate
    // their workspace (not for the training hot path); FNET_ERR_NUMERIC when A is not finite or
    // the factorization fails to converge.
    fnet_status (*gesvd)(fnet_ctx *ctx, int64_t m, int64_t n, const float *A, float *U, float *S,
                         float *Vt);
    fnet_status (*qr)(fnet_ctx *ctx, int64_t m, int64_t n, const float *A, float *Q, float *R);

    void (*synchronize)(fnet_ctx *ctx);

    // Run fn(arg, part) for part = 0..parts-1 at once, one part per worker (parts <=
    // min(ctx->threads, FNET_MAX_PARTS)), and return when all are done. Inside fn the backend's ops run on the calling
    // worker alone (one BLAS thread, no pool), so parts must touch disjoint outputs. NULL: the
    // caller runs the parts one after the other (fnet_run_parts).
    void (*run_parts)(fnet_ctx *ctx, int parts, void (*fn)(void *arg, int part), void *arg);
};

/* ctx->be->run_parts when the backend has it, else the parts one after the other. */
static inline void fnet_run_parts(fnet_ctx *ctx, int parts, void (*fn)(void *arg, int part),
                                  void *arg)
{
    if (ctx->be->run_parts != NULL && parts > 1) {
        ctx->be->run_parts(ctx, parts, fn, arg);
        return;
    }
    for (int p = 0; p < parts; p++)
        fn(arg, p);
}

extern const struct fnet_backend_ops fnet_reference_backend;
extern const struct fnet_backend_ops fnet_cpu_backend;

#endif
