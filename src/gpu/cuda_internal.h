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
    // cuBLAS's workspace (CUDA_BLAS_WORKSPACE bytes, cudaMalloc'd), given to it once so that it
    // never allocates its own while a graph is captured
    void *blas_work;
    cusolverDnHandle_t solver;
    double *scratch;     // FNET_CUDA_SCRATCH doubles: the reductions' partial results
    double *result;      // CUDA_RESULTS doubles: what a reduction leaves for the host
    double *host_result; // pinned host copy of result
    // device buffers the ops keep and grow to the largest size asked (fnet_cuda_grow): the
    // rows of u8_to_float, the ones of bias_grad's GEMV, csr_spmm_t's double sums, and the
    // FFTs' aligned copies of their input and output
    struct cuda_buf {
        void *p;
        size_t bytes;
    } idx, ones, sums, fft_in, fft_out;
    // the first failure of an op that cannot return one (backend.h: kept for synchronize)
    fnet_status err;
    char err_msg[256];
    // graph_make is capturing the stream: the ops that cannot be recorded refuse (below)
    bool capturing;
    // the job's communicator between the GPUs (cuda_nccl.c), NULL when not attached
    struct cuda_nccl *nccl;
};

#define CUDA_RESULTS 8

/* cuBLAS's workspace: what NVIDIA's cuBLAS guide recommends for Hopper (4 MiB for earlier GPUs). */
#define CUDA_BLAS_WORKSPACE ((size_t)32 << 20)

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

/* Inside graph_make's capture, an op that reads host memory, returns a value to the host, waits
 * for the device or makes something that outlives the step cannot be recorded: it calls this
 * first, which keeps FNET_ERR_UNSUPPORTED naming op and why (graph_make then refuses the
 * capture) and answers true, and the op does nothing. False, and nothing kept, outside one. */
bool fnet_cuda_refuse_in_capture(fnet_ctx *ctx, const char *op, const char *why);

/* Give the device's pool back what it holds unused (after waiting for the stream): before a
 * second try of an allocation that failed, ours or a library's (cuFFT's plans use cudaMalloc,
 * which cannot take what the pool keeps). */
void fnet_cuda_trim(fnet_ctx *ctx);

/* b's buffer, grown (stream-ordered: the old one is freed behind the ops queued on it) to at
 * least `bytes`; *grew says whether it was (its contents are then undefined). NULL, kept as the
 * ctx's failure naming op, when it cannot be made, or must grow inside a graph capture (a
 * buffer allocated there would exist only inside the graph). */
void *fnet_cuda_grow(fnet_ctx *ctx, const char *op, struct cuda_buf *b, size_t bytes, bool *grew);

/* Make ctx's device current for this thread (several ctxs may share a thread, each its own
 * device); the first thing every op does. */
void fnet_cuda_enter(fnet_ctx *ctx);

// cuda_fft.c
fnet_status fnet_cuda_fft_plan(fnet_ctx *ctx, int64_t n, void **plan);
void fnet_cuda_fft_plan_free(fnet_ctx *ctx, void *plan);
void fnet_cuda_rfft(fnet_ctx *ctx, const void *plan, int64_t count, const float *x, float *X);
void fnet_cuda_irfft(fnet_ctx *ctx, const void *plan, int64_t count, float *X, float *x);

// cuda_nccl.c: the table's dist_* ops (NCCL), where the toolkit has NCCL
#if FNET_WITH_NCCL
fnet_status fnet_cuda_dist_id(fnet_ctx *ctx, unsigned char id[FNET_DIST_ID_BYTES]);
fnet_status fnet_cuda_dist_init(fnet_ctx *ctx, const unsigned char id[FNET_DIST_ID_BYTES],
                                int rank, int size);
void fnet_cuda_dist_allreduce(fnet_ctx *ctx, float *x, int64_t n);
fnet_status fnet_cuda_dist_wait(fnet_ctx *ctx);
void fnet_cuda_dist_free(fnet_ctx *ctx);
#endif

// cuda_solver.c: the host linear algebra of a CUDA ctx (cuSOLVER on its device)
extern const struct fnet_host_la fnet_cuda_host_la;

#endif
