/* The CUDA backend's private state and helpers, shared by its files: cuda_backend.c (the table,
 * memory, cuBLAS), cuda_fft.c (cuFFT), cuda_solver.c (cuSOLVER, the host linear algebra),
 * cuda_sparse.cu and cuda_kernels.cu (its own kernels). docs/gpu.md describes the backend. */
#ifndef FNET_GPU_CUDA_INTERNAL_H
#define FNET_GPU_CUDA_INTERNAL_H

#include "core/backend.h"
#include "gpu/cuda_kernels.h"
#include "gpu/cuda_sparse.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cusolverDn.h>

/* ctx->state of a CUDA ctx. Every op is queued on `stream` and nothing waits for it except the
 * ops that return a host value (dot, amax, the losses, regularize, all_finite) and download. */
struct cuda_state {
    int device;
    cudaStream_t stream;
    cublasHandle_t blas;
    cusolverDnHandle_t solver;
    double *scratch;     // FNET_CUDA_SCRATCH doubles: the reductions' partial results
    double *result;      // CUDA_RESULTS doubles: what a reduction leaves for the host
    double *host_result; // pinned host copy of result
    int64_t *idx;        // u8_to_float's rows on the device (idx_cap of them)
    int64_t idx_cap;
    float *ones;         // ones_cap ones: bias_grad's column sums as a cuBLAS GEMV
    int64_t ones_cap;
    // the first failure of an op that cannot return one (backend.h: kept for synchronize)
    fnet_status err;
    char err_msg[256];
};

#define CUDA_RESULTS 8

static inline struct cuda_state *cuda_state(fnet_ctx *ctx)
{
    return (struct cuda_state *)ctx->state;
}

/* Keep the first failure of an asynchronous op ("sgemm: cublasSgemm failed: ...") for
 * synchronize to report; later ones are dropped (they usually follow from it). */
void fnet_cuda_keep(fnet_ctx *ctx, fnet_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A launcher's or runtime call's error kept as FNET_ERR_BACKEND naming op; true when it failed. */
bool fnet_cuda_check(fnet_ctx *ctx, const char *op, cudaError_t e);

/* Give the device's pool back what it holds unused (after waiting for the stream): before a
 * second try of an allocation that failed, ours or a library's (cuFFT's plans use cudaMalloc,
 * which cannot take what the pool keeps). */
void fnet_cuda_trim(fnet_ctx *ctx);

/* Make ctx's device current for this thread (several ctxs may share a thread, each its own
 * device); the first thing every op does. */
void fnet_cuda_enter(fnet_ctx *ctx);

// cuda_fft.c
fnet_status fnet_cuda_fft_plan(fnet_ctx *ctx, int64_t n, void **plan);
void fnet_cuda_fft_plan_free(fnet_ctx *ctx, void *plan);
void fnet_cuda_rfft(fnet_ctx *ctx, const void *plan, int64_t count, const float *x, float *X);
void fnet_cuda_irfft(fnet_ctx *ctx, const void *plan, int64_t count, float *X, float *x);

// cuda_solver.c: the host linear algebra of a CUDA ctx (cuSOLVER on its device)
extern const struct fnet_host_la fnet_cuda_host_la;

#endif
