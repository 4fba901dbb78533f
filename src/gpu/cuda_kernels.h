/* The CUDA backend's own kernels (src/gpu/cuda_kernels.cu): the element-wise, layout, reduction,
 * loss, data and optimizer ops of the backend table that no CUDA library does. Each op's contract
 * is its entry in src/core/backend.h; the reference backend (src/cpu/ref_*.c) is the oracle they
 * match: the same formulas in the same order of operations, compiled without fused multiply-adds
 * (--fmad=false), so that the element-wise ops agree with it bit for bit except where CUDA's
 * expf/tanhf/logf differ from glibc's by an ulp or two.
 *
 * Each launcher enqueues its kernels on stream s, never synchronizes, and returns
 * cudaGetLastError() (cudaSuccess when there is nothing to do). Pointers are device memory unless
 * marked host. Reductions are deterministic (a fixed split into blocks, a fixed tree) and write
 * their result to device memory, `out`, which the backend reads back when the op's caller needs
 * it on the host; `scratch` is device memory of FNET_CUDA_SCRATCH doubles that they may use. */
#ifndef FNET_GPU_CUDA_KERNELS_H
#define FNET_GPU_CUDA_KERNELS_H

#include <cuda_runtime_api.h>
#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Doubles of the scratch space every reduction may use (its blocks' partial results). */
#define FNET_CUDA_SCRATCH 4096

/* struct fnet_step_args (src/core/backend.h), field for field, for the optimizer kernels; the
 * replayed step's kernels read one through a pointer to the other (cuda_backend.c checks that
 * the two layouts are the same). */
struct fnet_cuda_hyper {
    float lr, momentum, beta1, beta2, eps, rho, weight_decay;
    float bc1, bc2;
};

// x (n) = value
cudaError_t fnet_cuda_fill(cudaStream_t s, int64_t n, float value, float *x);
// y (n) = (a·x) + (b·y), no fused multiply-add; b == 0 writes a·x without reading y; x == y ok
cudaError_t fnet_cuda_axpby(cudaStream_t s, int64_t n, float a, const float *x, float b,
                            float *y);
// out[0] = Σ x·y, each product and the sum in double
cudaError_t fnet_cuda_dot(cudaStream_t s, int64_t n, const float *x, const float *y,
                          double *scratch, double *out);
// out[0] = max |x_i|, NaNs skipped, 0 for n = 0
cudaError_t fnet_cuda_amax(cudaStream_t s, int64_t n, const float *x, double *scratch,
                           double *out);

// out (Q, P, R) (+)= in (P, Q, R)
cudaError_t fnet_cuda_permute_021(cudaStream_t s, int64_t P, int64_t Q, int64_t R,
                                  const float *in, float *out, bool accumulate);
// out (cols, rows) = in (rows, cols)ᵀ
cudaError_t fnet_cuda_transpose(cudaStream_t s, int64_t rows, int64_t cols, const float *in,
                                float *out);

// y (B, n) = bias broadcast;  y (B, n) += bias  (bias_grad is a cuBLAS GEMV: cuda_backend.c)
cudaError_t fnet_cuda_bias_fill(cudaStream_t s, int64_t B, int64_t n, const float *bias,
                                float *y);
cudaError_t fnet_cuda_bias_add(cudaStream_t s, int64_t B, int64_t n, const float *bias,
                               float *y);
// act: enum fnet_act (0 relu, 1 tanh, 2 sigmoid), checked by the caller
cudaError_t fnet_cuda_act_forward(cudaStream_t s, int act, int64_t n, const float *x, float *y);
cudaError_t fnet_cuda_act_backward(cudaStream_t s, int act, int64_t n, const float *y,
                                   const float *dy, float *dx);
// y (n) = x ⊙ mask
cudaError_t fnet_cuda_mul(cudaStream_t s, int64_t n, const float *x, const float *mask,
                          float *y);
// the counter-based dropout mask of docs/design.md ("Random numbers"), bit for bit the
// reference's (fnet_ref_dropout_span)
cudaError_t fnet_cuda_dropout_mask(cudaStream_t s, int64_t n, float p, uint64_t seed,
                                   uint64_t step, uint64_t first, float *mask);
// the complex multiply-accumulate of block-circulant layers (backend.h, cmac)
cudaError_t fnet_cuda_cmac(cudaStream_t s, int64_t F, int64_t M, int64_t N, int64_t K,
                           const float *A, int64_t a_m, int64_t a_k, bool conj_a,
                           const float *B, int64_t b_k, int64_t b_n, bool conj_b, float *C,
                           int64_t c_m, int64_t c_n, bool accumulate);

// Softmax cross-entropy (mse: ½‖y − onehot‖²) of (B, K) against labels (B): out[0] = Σ loss
// (double), out[1] = the number of rows whose argmax (first maximum) is the label; dlogits
// (dy) written when not NULL; logits == dlogits allowed
cudaError_t fnet_cuda_softmax_ce(cudaStream_t s, int64_t B, int64_t K, const float *logits,
                                 const int32_t *labels, float scale, float *dlogits,
                                 double *scratch, double *out);
cudaError_t fnet_cuda_mse(cudaStream_t s, int64_t B, int64_t K, const float *y,
                          const int32_t *labels, float scale, float *dy, double *scratch,
                          double *out);
// out[0] = l1·Σ|w| + ½·l2·Σw²; g += l1·sign(w) + l2·w
cudaError_t fnet_cuda_regularize(cudaStream_t s, int64_t n, const float *w, float *g, float l1,
                                 float l2, double *scratch, double *out);
// x (B, d) = src rows idx[0..B) (device int64) · scale
cudaError_t fnet_cuda_u8_to_float(cudaStream_t s, int64_t B, int64_t d, const uint8_t *src,
                                  const int64_t *idx, float scale, float *x);
// out[0] = 1 when every element of x (n) is finite, else 0
cudaError_t fnet_cuda_all_finite(cudaStream_t s, int64_t n, const float *x, int *out);

// One fused pass of each optimizer over the whole flat vectors (n each); a (host) is copied
cudaError_t fnet_cuda_sgd_step(cudaStream_t s, int64_t n, float *w, const float *g,
                               const struct fnet_cuda_hyper *a);
cudaError_t fnet_cuda_momentum_step(cudaStream_t s, int64_t n, float *w, const float *g,
                                    float *v, const struct fnet_cuda_hyper *a, bool nesterov);
cudaError_t fnet_cuda_rmsprop_step(cudaStream_t s, int64_t n, float *w, const float *g,
                                   float *sq, const struct fnet_cuda_hyper *a);
cudaError_t fnet_cuda_adam_step(cudaStream_t s, int64_t n, float *w, const float *g, float *m,
                                float *v, const struct fnet_cuda_hyper *a);

// ---- the replayed step's (src/core/backend.h, "a training step replayed") ----
// Every value that changes from one replay of a captured graph to the next is read from device
// memory when the kernels run; nothing is read back. (u8_gather is fnet_cuda_u8_to_float with
// the caller's device rows.)

// softmax_ce's (mse's when mse) kernels into out (as fnet_cuda_softmax_ce), then, on the device,
// acc[0] += out[0] and acc[1] = (double)*step when out[0] is not finite and acc[1] < 0. step
// (one int64) and acc (two doubles) are device memory.
cudaError_t fnet_cuda_loss_step(cudaStream_t s, bool mse, int64_t B, int64_t K,
                                const float *logits, const int32_t *labels, float scale,
                                float *dlogits, const int64_t *step, double *acc,
                                double *scratch, double *out);

// The optimizer steps above with their hyper-parameters *a read from device memory when the
// kernels run (Adam's scalars computed there, bit for bit as the host computes them), and
// nothing done when skip (device, 2 doubles) is not NULL and skip[1] >= 0
cudaError_t fnet_cuda_sgd_step_dev(cudaStream_t s, int64_t n, float *w, const float *g,
                                   const struct fnet_cuda_hyper *a, const double *skip);
cudaError_t fnet_cuda_momentum_step_dev(cudaStream_t s, int64_t n, float *w, const float *g,
                                        float *v, const struct fnet_cuda_hyper *a, bool nesterov,
                                        const double *skip);
cudaError_t fnet_cuda_rmsprop_step_dev(cudaStream_t s, int64_t n, float *w, const float *g,
                                       float *sq, const struct fnet_cuda_hyper *a,
                                       const double *skip);
cudaError_t fnet_cuda_adam_step_dev(cudaStream_t s, int64_t n, float *w, const float *g,
                                    float *m, float *v, const struct fnet_cuda_hyper *a,
                                    const double *skip);

#ifdef __cplusplus
}
#endif
#endif
