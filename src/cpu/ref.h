/* The reference backend's functions, plain C: the oracle of every other backend. The CPU backend
 * reuses the element-wise ones (split over its thread pool) and overrides the BLAS-shaped ones;
 * its FFT ops (cpu_fft.c) and CSR kernels (cpu_sparse.c) are declared here too, for its table. */
#ifndef FNET_CPU_REF_H
#define FNET_CPU_REF_H

#include "core/backend.h"

// ref_backend.c: host memory, so the memory ops are plain memcpy/memset
void *fnet_ref_alloc(fnet_ctx *ctx, size_t bytes);
void fnet_ref_free(fnet_ctx *ctx, void *p);
void fnet_ref_memcpy(fnet_ctx *ctx, void *dst, const void *src, size_t bytes);
void fnet_ref_fill(fnet_ctx *ctx, int64_t n, float value, float *x);
fnet_status fnet_ref_synchronize(fnet_ctx *ctx);

// ref_blas.c
void fnet_ref_sgemm(fnet_ctx *ctx, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                    const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                    int64_t ldc);
void fnet_ref_sgemm_batched(fnet_ctx *ctx, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                            float alpha, const float *A, int64_t lda, int64_t sa, const float *B,
                            int64_t ldb, int64_t sb, float beta, float *C, int64_t ldc,
                            int64_t sc, int64_t count);
void fnet_ref_permute_021(fnet_ctx *ctx, int64_t P, int64_t Q, int64_t R, const float *in,
                          float *out, bool accumulate);
void fnet_ref_transpose(fnet_ctx *ctx, int64_t rows, int64_t cols, const float *in, float *out);
void fnet_ref_axpy(fnet_ctx *ctx, int64_t n, float a, const float *x, float *y);
void fnet_ref_scal(fnet_ctx *ctx, int64_t n, float a, float *x);
double fnet_ref_dot(fnet_ctx *ctx, int64_t n, const float *x, const float *y);
void fnet_ref_axpby(fnet_ctx *ctx, int64_t n, float a, const float *x, float b, float *y);
double fnet_ref_amax(fnet_ctx *ctx, int64_t n, const float *x);

// ref_elementwise.c
void fnet_ref_bias_fill(fnet_ctx *ctx, int64_t B, int64_t n, const float *bias, float *y);
void fnet_ref_bias_add(fnet_ctx *ctx, int64_t B, int64_t n, const float *bias, float *y);
void fnet_ref_bias_grad(fnet_ctx *ctx, int64_t B, int64_t n, const float *dy, float *db,
                        bool accumulate);
fnet_status fnet_ref_act_forward(fnet_ctx *ctx, enum fnet_act act, int64_t n, const float *x,
                                 float *y);
fnet_status fnet_ref_act_backward(fnet_ctx *ctx, enum fnet_act act, int64_t n, const float *y,
                                  const float *dy, float *dx);
void fnet_ref_mul(fnet_ctx *ctx, int64_t n, const float *x, const float *mask, float *y);
void fnet_ref_dropout_mask(fnet_ctx *ctx, int64_t n, float p, uint64_t seed, uint64_t step,
                           uint64_t first, float *mask);
// mask (n) with the draws first..first+n-1 of the mask above: the pieces of a split one
void fnet_ref_dropout_span(int64_t first, int64_t n, float p, uint64_t seed, uint64_t step,
                           float *mask);
double fnet_ref_softmax_ce(fnet_ctx *ctx, int64_t B, int64_t K, const float *logits,
                           const int32_t *labels, float scale, float *dlogits, int64_t *correct);
double fnet_ref_mse(fnet_ctx *ctx, int64_t B, int64_t K, const float *y, const int32_t *labels,
                    float scale, float *dy, int64_t *correct);
double fnet_ref_regularize(fnet_ctx *ctx, int64_t n, const float *w, float *g, float l1, float l2);
void fnet_ref_u8_to_float(fnet_ctx *ctx, int64_t B, int64_t d, const uint8_t *src,
                          const int64_t *idx, float scale, float *x);
bool fnet_ref_all_finite(fnet_ctx *ctx, int64_t n, const float *x);

// ref_fft.c: plain DFTs and spectrum products accumulated in double, O(n²) per signal (the
// oracle of the CPU backend's FFTW). The plan is a host struct holding the length alone; the
// guarded backend checks its pointer as host memory of this size.
struct fnet_ref_fft_plan {
    int64_t n;
};
fnet_status fnet_ref_fft_plan(fnet_ctx *ctx, int64_t n, void **plan);
void fnet_ref_fft_plan_free(fnet_ctx *ctx, void *plan);
void fnet_ref_rfft(fnet_ctx *ctx, const void *plan, int64_t count, const float *x, float *X);
void fnet_ref_irfft(fnet_ctx *ctx, const void *plan, int64_t count, float *X, float *x);
void fnet_ref_cmac(fnet_ctx *ctx, int64_t F, int64_t M, int64_t N, int64_t K, const float *A,
                   int64_t a_m, int64_t a_k, bool conj_a, const float *B, int64_t b_k, int64_t b_n,
                   bool conj_b, float *C, int64_t c_m, int64_t c_n, bool accumulate);

// cpu_fft.c: the CPU backend's FFT ops (FFTW, and cmac vectorized), for its table in
// cpu_backend.c, which passes the pool an op may split over (NULL: the calling thread alone)
struct fnet_pool;
fnet_status fnet_cpu_fft_plan(fnet_ctx *ctx, int64_t n, void **plan);
void fnet_cpu_fft_plan_free(fnet_ctx *ctx, void *plan);
void fnet_cpu_rfft(struct fnet_pool *pool, const void *plan, int64_t count, const float *x,
                   float *X);
void fnet_cpu_irfft(struct fnet_pool *pool, const void *plan, int64_t count, float *X, float *x);
void fnet_cpu_cmac(struct fnet_pool *pool, int64_t F, int64_t M, int64_t N, int64_t K,
                   const float *A, int64_t a_m, int64_t a_k, bool conj_a, const float *B,
                   int64_t b_k, int64_t b_n, bool conj_b, float *C, int64_t c_m, int64_t c_n,
                   bool accumulate);

// ref_sparse.c: CSR products with every output summed on its own in double (the oracle of
// cpu_sparse.c); backend.h, "sparse matrices", gives the shapes
void fnet_ref_csr_spmm(fnet_ctx *ctx, int64_t M, int64_t N, int64_t B, const int32_t *row_ptr,
                       const int32_t *col, const float *val, const float *X, float *Y,
                       bool accumulate);
void fnet_ref_csr_spmm_t(fnet_ctx *ctx, int64_t M, int64_t N, int64_t B, const int32_t *row_ptr,
                         const int32_t *col, const float *val, const float *Y, float *X,
                         bool accumulate);
void fnet_ref_csr_sddmm(fnet_ctx *ctx, int64_t M, int64_t N, int64_t B, const int32_t *row_ptr,
                        const int32_t *col, const float *Y, const float *X, float *out,
                        bool accumulate);

// cpu_sparse.c: the CPU backend's CSR kernels, blocked over batch columns and split over the
// pool (NULL: the calling thread alone) in up to `threads` pieces
void fnet_cpu_csr_spmm(struct fnet_pool *pool, int threads, int64_t M, int64_t N, int64_t B,
                       const int32_t *row_ptr, const int32_t *col, const float *val,
                       const float *X, float *Y, bool accumulate);
void fnet_cpu_csr_spmm_t(struct fnet_pool *pool, int threads, int64_t M, int64_t N, int64_t B,
                         const int32_t *row_ptr, const int32_t *col, const float *val,
                         const float *Y, float *X, bool accumulate);
void fnet_cpu_csr_sddmm(struct fnet_pool *pool, int threads, int64_t M, int64_t N, int64_t B,
                        const int32_t *row_ptr, const int32_t *col, const float *Y,
                        const float *X, float *out, bool accumulate);

// ref_optim.c: one fused pass over the vectors each
void fnet_ref_sgd_step(fnet_ctx *ctx, int64_t n, float *w, const float *g,
                       const struct fnet_step_args *a);
void fnet_ref_momentum_step(fnet_ctx *ctx, int64_t n, float *w, const float *g, float *v,
                            const struct fnet_step_args *a, bool nesterov);
void fnet_ref_rmsprop_step(fnet_ctx *ctx, int64_t n, float *w, const float *g, float *s,
                           const struct fnet_step_args *a);
void fnet_ref_adam_step(fnet_ctx *ctx, int64_t n, float *w, const float *g, float *m, float *v,
                        const struct fnet_step_args *a);

// ref_step.c: the ops of a replayed training step, per-step values read from (host) memory
void fnet_ref_u8_gather(fnet_ctx *ctx, int64_t B, int64_t d, const uint8_t *src,
                        const int64_t *rows, float scale, float *x);
void fnet_ref_loss_step(fnet_ctx *ctx, bool mse, int64_t B, int64_t K, const float *logits,
                        const int32_t *labels, float scale, float *dlogits, const int64_t *step,
                        double *acc);
void fnet_ref_step_dev(fnet_ctx *ctx, int kind, bool nesterov, int64_t n, float *w,
                       const float *g, float *s1, float *s2, const struct fnet_step_args *a,
                       const double *skip);

// ref_lapack.c: thin SVD by one-sided Jacobi and Householder QR, both in double, on host memory
// (the reference's host linear algebra, fnet_ref_host_la)
fnet_status fnet_ref_gesvd(fnet_ctx *ctx, int64_t m, int64_t n, const float *A, float *U, float *S,
                           float *Vt);
fnet_status fnet_ref_qr(fnet_ctx *ctx, int64_t m, int64_t n, const float *A, float *Q, float *R);

extern const struct fnet_host_la fnet_ref_host_la;

// What every host_la's gesvd and qr accept (reference, cpu, cuda): m, n >= 1 (else
// FNET_ERR_INVALID_ARG) and A (m, n) finite (else FNET_ERR_NUMERIC), with "op: ..." messages.
fnet_status fnet_host_la_check(fnet_ctx *ctx, const char *op, int64_t m, int64_t n,
                               const float *A);

#endif
