/* The CUDA backend: the backend table (src/core/backend.h) on one NVIDIA GPU. Backend memory is
 * device memory from the device's stream-ordered pool; every op is queued on the ctx's stream;
 * GEMMs are cuBLAS's (row-major handled here, in sgemm, the one place), FFTs cuFFT's
 * (cuda_fft.c), the host linear algebra cuSOLVER's (cuda_solver.c), and the rest our own
 * kernels (cuda_kernels.cu, cuda_sparse.cu). docs/gpu.md describes it. */
#include "gpu/cuda_internal.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

// step_dev hands the kernels a struct fnet_step_args in device memory as a struct
// fnet_cuda_hyper (cuda_kernels.h, which cannot include backend.h): the two must be one layout.
#define SAME_FIELD(f)                                                                              \
    _Static_assert(offsetof(struct fnet_step_args, f) == offsetof(struct fnet_cuda_hyper, f) &&  \
                       sizeof(((struct fnet_step_args *)0)->f) ==                                 \
                           sizeof(((struct fnet_cuda_hyper *)0)->f),                              \
                   "fnet_step_args and fnet_cuda_hyper differ at " #f)
SAME_FIELD(lr);
SAME_FIELD(momentum);
SAME_FIELD(beta1);
SAME_FIELD(beta2);
SAME_FIELD(eps);
SAME_FIELD(rho);
SAME_FIELD(weight_decay);
SAME_FIELD(bc1);
SAME_FIELD(bc2);
#undef SAME_FIELD
_Static_assert(sizeof(struct fnet_step_args) == sizeof(struct fnet_cuda_hyper) &&
                   _Alignof(struct fnet_step_args) == _Alignof(struct fnet_cuda_hyper),
               "fnet_step_args and fnet_cuda_hyper differ in size or alignment");

// ---- errors ----

void fnet_cuda_keep(fnet_ctx *ctx, fnet_status st, const char *fmt, ...)
{
    struct cuda_state *s = cuda_state(ctx);
    if (s->err != FNET_OK)
        return;
    s->err = st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err_msg, sizeof(s->err_msg), fmt, ap);
    va_end(ap);
}

bool fnet_cuda_check(fnet_ctx *ctx, const char *op, cudaError_t e)
{
    if (e == cudaSuccess)
        return false;
    (void)cudaGetLastError(); // the runtime keeps it too: the next launch's check must not see it
    fnet_cuda_keep(ctx, e == cudaErrorMemoryAllocation ? FNET_ERR_OUT_OF_MEMORY : FNET_ERR_BACKEND,
                   "%s: %s (%s)", op, cudaGetErrorString(e), cudaGetErrorName(e));
    return true;
}

bool fnet_cuda_refuse_in_capture(fnet_ctx *ctx, const char *op, const char *why)
{
    if (!cuda_state(ctx)->capturing)
        return false;
    fnet_cuda_keep(ctx, FNET_ERR_UNSUPPORTED, "%s %s, which a CUDA graph cannot record", op, why);
    return true;
}

static void check_blas(fnet_ctx *ctx, const char *op, cublasStatus_t st)
{
    if (st != CUBLAS_STATUS_SUCCESS)
        fnet_cuda_keep(ctx, FNET_ERR_BACKEND, "%s: cuBLAS %s", op, cublasGetStatusString(st));
}

void fnet_cuda_enter(fnet_ctx *ctx)
{
    int now = -1;
    if (cudaGetDevice(&now) != cudaSuccess || now != cuda_state(ctx)->device)
        fnet_cuda_check(ctx, "cudaSetDevice", cudaSetDevice(cuda_state(ctx)->device));
}

void *fnet_cuda_grow(fnet_ctx *ctx, const char *op, struct cuda_buf *b, size_t bytes, bool *grew)
{
    if (grew != NULL)
        *grew = false;
    if (bytes <= b->bytes)
        return b->p;
    if (fnet_cuda_refuse_in_capture(ctx, op, "grows a buffer of its own"))
        return NULL;
    struct cuda_state *s = cuda_state(ctx);
    void *p = NULL;
    if (fnet_cuda_check(ctx, op, cudaMallocAsync(&p, bytes, s->stream)))
        return NULL;
    if (b->p != NULL)
        fnet_cuda_check(ctx, op, cudaFreeAsync(b->p, s->stream));
    *b = (struct cuda_buf){p, bytes};
    if (grew != NULL)
        *grew = true;
    return p;
}

void fnet_cuda_trim(fnet_ctx *ctx)
{
    struct cuda_state *s = cuda_state(ctx);
    cudaMemPool_t pool;
    if (cudaStreamSynchronize(s->stream) == cudaSuccess &&
        cudaDeviceGetDefaultMemPool(&pool, s->device) == cudaSuccess)
        (void)cudaMemPoolTrimTo(pool, 0);
    (void)cudaGetLastError();
}

// ---- the device, the ctx's state ----

fnet_status fnet_cuda_backend_probe(int device, char *why, size_t cap)
{
    char none[1];
    if (why == NULL || cap == 0) {
        why = none;
        cap = sizeof(none);
    }
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e == cudaErrorInsufficientDriver) {
        snprintf(why, cap, "no CUDA device: no NVIDIA driver on this machine, or one older than "
                 "this build's CUDA runtime %d.%d (%s)", CUDART_VERSION / 1000,
                 CUDART_VERSION % 1000 / 10, cudaGetErrorName(e));
        (void)cudaGetLastError();
        return FNET_ERR_UNSUPPORTED;
    }
    if (e != cudaSuccess) {
        snprintf(why, cap, "no CUDA device: %s (%s)", cudaGetErrorString(e), cudaGetErrorName(e));
        (void)cudaGetLastError();
        return FNET_ERR_UNSUPPORTED;
    }
    if (count < 1) {
        snprintf(why, cap, "no CUDA device on this machine");
        return FNET_ERR_UNSUPPORTED;
    }
    if (device < 0 || device >= count) {
        snprintf(why, cap, "CUDA device %d does not exist: this machine has %d (0 .. %d)", device,
                 count, count - 1);
        return FNET_ERR_UNSUPPORTED;
    }
    struct cudaDeviceProp p;
    int pools = 0;
    if ((e = cudaGetDeviceProperties(&p, device)) != cudaSuccess ||
        (e = cudaDeviceGetAttribute(&pools, cudaDevAttrMemoryPoolsSupported, device)) !=
            cudaSuccess) {
        snprintf(why, cap, "CUDA device %d: %s", device, cudaGetErrorString(e));
        (void)cudaGetLastError();
        return FNET_ERR_UNSUPPORTED;
    }
    if (!pools) {
        snprintf(why, cap, "CUDA device %d (%s) has no stream-ordered memory pools, which this "
                 "backend allocates from", device, p.name);
        return FNET_ERR_UNSUPPORTED;
    }
    int before = 0;
    (void)cudaGetDevice(&before);
    e = cudaSetDevice(device);
    if (e == cudaSuccess)
        e = fnet_cuda_kernels_usable();
    (void)cudaSetDevice(before);
    if (e != cudaSuccess) {
        snprintf(why, cap, "CUDA device %d (%s, compute capability %d.%d) cannot run this "
                 "build's kernels: %s (build for it with -DCMAKE_CUDA_ARCHITECTURES=%d%d)",
                 device, p.name, p.major, p.minor, cudaGetErrorString(e), p.major, p.minor);
        (void)cudaGetLastError();
        return FNET_ERR_UNSUPPORTED;
    }
    snprintf(why, cap, "%s, compute capability %d.%d, %.1f GiB", p.name, p.major, p.minor,
             (double)p.totalGlobalMem / (1024.0 * 1024.0 * 1024.0));
    return FNET_OK;
}

static void cuda_state_free(fnet_ctx *ctx)
{
    struct cuda_state *s = cuda_state(ctx);
    if (s == NULL)
        return;
#if FNET_WITH_NCCL
    fnet_cuda_dist_free(ctx);
#endif
    (void)cudaSetDevice(s->device);
    if (s->stream != NULL) {
        void *bufs[] = {s->scratch, s->result, s->idx.p, s->ones.p, s->sums.p, s->fft_in.p,
                        s->fft_out.p};
        for (int i = 0; i < 7; i++)
            if (bufs[i] != NULL)
                (void)cudaFreeAsync(bufs[i], s->stream);
        (void)cudaStreamSynchronize(s->stream);
    }
    if (s->host_result != NULL)
        (void)cudaFreeHost(s->host_result);
    if (s->solver != NULL)
        (void)cusolverDnDestroy(s->solver);
    if (s->blas != NULL)
        (void)cublasDestroy(s->blas);
    if (s->blas_work != NULL) // after the handle that used it
        (void)cudaFree(s->blas_work);
    if (s->stream != NULL)
        (void)cudaStreamDestroy(s->stream);
    (void)cudaGetLastError();
    fnet_free(s);
    ctx->state = NULL;
}

static fnet_status cuda_state_init(fnet_ctx *ctx)
{
    struct cuda_state *s = fnet_calloc(1, sizeof(*s));
    if (s == NULL)
        return FNET_ERR_OUT_OF_MEMORY;
    s->device = ctx->device;
    ctx->state = s;
    const char *what = "cudaSetDevice";
    cudaError_t e = cudaSetDevice(s->device);
    if (e == cudaSuccess && (what = "cudaStreamCreate") != NULL)
        e = cudaStreamCreateWithFlags(&s->stream, cudaStreamNonBlocking);
    // memory freed to the pool stays there for the next allocation instead of going back to the
    // driver at every synchronization
    cudaMemPool_t pool;
    if (e == cudaSuccess && (what = "the memory pool") != NULL &&
        (e = cudaDeviceGetDefaultMemPool(&pool, s->device)) == cudaSuccess) {
        uint64_t keep = UINT64_MAX;
        e = cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep);
    }
    if (e == cudaSuccess && (what = "the reduction buffers") != NULL &&
        (e = cudaMallocAsync((void **)&s->scratch, FNET_CUDA_SCRATCH * sizeof(double),
                             s->stream)) == cudaSuccess &&
        (e = cudaMallocAsync((void **)&s->result, CUDA_RESULTS * sizeof(double), s->stream)) ==
            cudaSuccess)
        e = cudaMallocHost((void **)&s->host_result, CUDA_RESULTS * sizeof(double));
    if (e != cudaSuccess) {
        fnet_status st = e == cudaErrorMemoryAllocation ? FNET_ERR_OUT_OF_MEMORY : FNET_ERR_BACKEND;
        fnet_log(FNET_LOG_WARN, "CUDA device %d: %s: %s", s->device, what, cudaGetErrorString(e));
        cuda_state_free(ctx);
        return st;
    }
    cublasStatus_t bs = cublasCreate(&s->blas);
    if (bs == CUBLAS_STATUS_SUCCESS)
        bs = cublasSetStream(s->blas, s->stream);
    if (bs == CUBLAS_STATUS_SUCCESS)
        bs = cublasSetMathMode(s->blas, CUBLAS_DEFAULT_MATH); // TF32 only when asked
    // cuBLAS's workspace given once, after cublasSetStream (which drops a workspace given before
    // it): a handle without one allocates its own, which a graph capture cannot have (docs/gpu.md)
    if (bs == CUBLAS_STATUS_SUCCESS) {
        e = cudaMalloc(&s->blas_work, CUDA_BLAS_WORKSPACE);
        if (e != cudaSuccess) {
            s->blas_work = NULL;
            fnet_log(FNET_LOG_WARN, "CUDA device %d: cuBLAS's workspace: %s", s->device,
                     cudaGetErrorString(e));
            cuda_state_free(ctx);
            return e == cudaErrorMemoryAllocation ? FNET_ERR_OUT_OF_MEMORY : FNET_ERR_BACKEND;
        }
        bs = cublasSetWorkspace(s->blas, s->blas_work, CUDA_BLAS_WORKSPACE);
    }
    cusolverStatus_t ss = CUSOLVER_STATUS_SUCCESS;
    if (bs == CUBLAS_STATUS_SUCCESS && (ss = cusolverDnCreate(&s->solver)) ==
                                           CUSOLVER_STATUS_SUCCESS)
        ss = cusolverDnSetStream(s->solver, s->stream);
    if (bs != CUBLAS_STATUS_SUCCESS || ss != CUSOLVER_STATUS_SUCCESS) {
        fnet_log(FNET_LOG_WARN, "CUDA device %d: cuBLAS (%s) or cuSOLVER (status %d) could not "
                 "start", s->device, cublasGetStatusString(bs), (int)ss);
        cuda_state_free(ctx);
        return bs == CUBLAS_STATUS_ALLOC_FAILED || ss == CUSOLVER_STATUS_ALLOC_FAILED
                   ? FNET_ERR_OUT_OF_MEMORY
                   : FNET_ERR_BACKEND;
    }
    return FNET_OK;
}

static fnet_status cuda_synchronize(fnet_ctx *ctx)
{
    struct cuda_state *s = cuda_state(ctx);
    fnet_cuda_enter(ctx);
    // inside a capture the failures kept so far are graph_make's to judge: none is reported here
    if (fnet_cuda_refuse_in_capture(ctx, "synchronize", "waits for the device"))
        return fnet_fail(ctx, FNET_ERR_UNSUPPORTED, "CUDA device %d: synchronize inside a CUDA "
                         "graph capture", s->device);
    fnet_cuda_check(ctx, "synchronize", cudaStreamSynchronize(s->stream));
    if (s->err == FNET_OK)
        return FNET_OK;
    fnet_status st = s->err;
    s->err = FNET_OK;
    return fnet_fail(ctx, st, "CUDA device %d: %s", s->device, s->err_msg);
}

static fnet_status cuda_set_tf32(fnet_ctx *ctx, bool on)
{
    fnet_cuda_enter(ctx);
    cublasStatus_t st =
        cublasSetMathMode(cuda_state(ctx)->blas,
                          on ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH);
    if (st != CUBLAS_STATUS_SUCCESS)
        return fnet_fail(ctx, FNET_ERR_BACKEND, "cublasSetMathMode: %s", cublasGetStatusString(st));
    return FNET_OK;
}

// ---- memory ----

static void *cuda_alloc(fnet_ctx *ctx, size_t bytes)
{
    fnet_cuda_enter(ctx);
    void *p = NULL;
    // fault injection of the tests (fnet_malloc's counter) reaches device memory too
    if (fnet_alloc_fails_now())
        return NULL;
    cudaStream_t st = cuda_state(ctx)->stream;
    if (cudaMallocAsync(&p, bytes > 0 ? bytes : 1, st) == cudaSuccess)
        return p;
    (void)cudaGetLastError(); // out of memory is an answer, not a failure to keep
    fnet_cuda_trim(ctx);      // what the pool keeps may be what is missing
    if (cudaMallocAsync(&p, bytes > 0 ? bytes : 1, st) == cudaSuccess)
        return p;
    (void)cudaGetLastError();
    return NULL;
}

static void cuda_free(fnet_ctx *ctx, void *p)
{
    if (p == NULL)
        return;
    fnet_cuda_enter(ctx);
    fnet_cuda_check(ctx, "free", cudaFreeAsync(p, cuda_state(ctx)->stream));
}

static void cuda_upload(fnet_ctx *ctx, void *dst, const void *src, size_t bytes)
{
    if (bytes == 0 || fnet_cuda_refuse_in_capture(ctx, "upload", "reads host memory"))
        return;
    fnet_cuda_enter(ctx);
    // from pageable memory the call returns once src has been read, so the caller may reuse it;
    // from pinned memory the copy is truly asynchronous, so it is waited for
    cudaStream_t st = cuda_state(ctx)->stream;
    if (fnet_cuda_check(ctx, "upload",
                        cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, st)))
        return;
    struct cudaPointerAttributes a;
    if (cudaPointerGetAttributes(&a, src) != cudaSuccess)
        (void)cudaGetLastError(); // an ordinary host pointer on older runtimes
    else if (a.type == cudaMemoryTypeHost)
        fnet_cuda_check(ctx, "upload", cudaStreamSynchronize(st));
}

static void cuda_download(fnet_ctx *ctx, void *dst, const void *src, size_t bytes)
{
    if (bytes == 0 || fnet_cuda_refuse_in_capture(ctx, "download", "waits for the device"))
        return;
    fnet_cuda_enter(ctx);
    cudaStream_t st = cuda_state(ctx)->stream;
    if (!fnet_cuda_check(ctx, "download",
                         cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, st)))
        fnet_cuda_check(ctx, "download", cudaStreamSynchronize(st));
}

static void cuda_copy(fnet_ctx *ctx, void *dst, const void *src, size_t bytes)
{
    if (bytes == 0 || dst == src)
        return;
    fnet_cuda_enter(ctx);
    fnet_cuda_check(ctx, "copy", cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice,
                                                 cuda_state(ctx)->stream));
}

static void cuda_fill(fnet_ctx *ctx, int64_t n, float value, float *x)
{
    fnet_cuda_enter(ctx);
    fnet_cuda_check(ctx, "fill", fnet_cuda_fill(cuda_state(ctx)->stream, n, value, x));
}

// What a reduction left in s->result: its first `n` doubles, waited for.
static const double *read_results(fnet_ctx *ctx, const char *op, int n, cudaError_t launched)
{
    struct cuda_state *s = cuda_state(ctx);
    for (int i = 0; i < n; i++)
        s->host_result[i] = NAN; // what a failed op reports
    if (fnet_cuda_check(ctx, op, launched) ||
        fnet_cuda_refuse_in_capture(ctx, op, "returns a value to the host"))
        return s->host_result;
    if (!fnet_cuda_check(ctx, op, cudaMemcpyAsync(s->host_result, s->result,
                                                  (size_t)n * sizeof(double),
                                                  cudaMemcpyDeviceToHost, s->stream)))
        fnet_cuda_check(ctx, op, cudaStreamSynchronize(s->stream));
    return s->host_result;
}

// ---- BLAS-shaped ----

// Row-major C (M, N) is column-major Cᵀ (N, M) = op(B)ᵀ·op(A)ᵀ: the one place the layouts meet.
static void cuda_sgemm(fnet_ctx *ctx, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                       float alpha, const float *A, int64_t lda, const float *B, int64_t ldb,
                       float beta, float *C, int64_t ldc)
{
    if (M == 0 || N == 0)
        return;
    fnet_cuda_enter(ctx);
    struct cuda_state *s = cuda_state(ctx);
    if (K == 0) { // C = beta·C, and beta == 0 ignores what C held (cuBLAS may read it)
        if (beta == 0.0f)
            fnet_cuda_check(ctx, "sgemm", cudaMemset2DAsync(C, (size_t)ldc * sizeof(float), 0,
                                                            (size_t)N * sizeof(float), (size_t)M,
                                                            s->stream));
        else
            for (int64_t i = 0; i < M; i++)
                check_blas(ctx, "sgemm", cublasSscal_64(s->blas, N, &beta, C + i * ldc, 1));
        return;
    }
    check_blas(ctx, "sgemm",
               cublasSgemm_64(s->blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N,
                              ta ? CUBLAS_OP_T : CUBLAS_OP_N,
                              N, M, K, &alpha, B, ldb, A, lda, &beta, C, ldc));
}

// The batched form of cuda_sgemm's swap: Cᵀ_i = op(B_i)ᵀ·op(A_i)ᵀ, count of them in one call.
static void cuda_sgemm_batched(fnet_ctx *ctx, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                               float alpha, const float *A, int64_t lda, int64_t sa,
                               const float *B, int64_t ldb, int64_t sb, float beta, float *C,
                               int64_t ldc, int64_t sc, int64_t count)
{
    if (M == 0 || N == 0 || count <= 0)
        return;
    if (K == 0) { // as sgemm's K = 0, block by block
        for (int64_t i = 0; i < count; i++)
            cuda_sgemm(ctx, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C + i * sc, ldc);
        return;
    }
    fnet_cuda_enter(ctx);
    check_blas(ctx, "sgemm_batched",
               cublasSgemmStridedBatched_64(cuda_state(ctx)->blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N,
                                            ta ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &alpha, B,
                                            ldb, sb, A, lda, sa, &beta, C, ldc, sc, count));
}

static void cuda_axpy(fnet_ctx *ctx, int64_t n, float a, const float *x, float *y)
{
    if (n <= 0)
        return;
    fnet_cuda_enter(ctx);
    check_blas(ctx, "axpy", cublasSaxpy_64(cuda_state(ctx)->blas, n, &a, x, 1, y, 1));
}

static void cuda_scal(fnet_ctx *ctx, int64_t n, float a, float *x)
{
    if (n <= 0)
        return;
    fnet_cuda_enter(ctx);
    check_blas(ctx, "scal", cublasSscal_64(cuda_state(ctx)->blas, n, &a, x, 1));
}

static double cuda_dot(fnet_ctx *ctx, int64_t n, const float *x, const float *y)
{
    fnet_cuda_enter(ctx);
    struct cuda_state *s = cuda_state(ctx);
    return read_results(ctx, "dot", 1,
                        fnet_cuda_dot(s->stream, n, x, y, s->scratch, s->result))[0];
}

static void cuda_axpby(fnet_ctx *ctx, int64_t n, float a, const float *x, float b, float *y)
{
    fnet_cuda_enter(ctx);
    fnet_cuda_check(ctx, "axpby", fnet_cuda_axpby(cuda_state(ctx)->stream, n, a, x, b, y));
}

static double cuda_amax(fnet_ctx *ctx, int64_t n, const float *x)
{
    fnet_cuda_enter(ctx);
    struct cuda_state *s = cuda_state(ctx);
    return read_results(ctx, "amax", 1, fnet_cuda_amax(s->stream, n, x, s->scratch, s->result))[0];
}

// ---- layout, element-wise ----

static void cuda_permute_021(fnet_ctx *ctx, int64_t P, int64_t Q, int64_t R, const float *in,
                             float *out, bool accumulate)
{
    fnet_cuda_enter(ctx);
    fnet_cuda_check(ctx, "permute_021",
                    fnet_cuda_permute_021(cuda_state(ctx)->stream, P, Q, R, in, out, accumulate));
}

static void cuda_transpose(fnet_ctx *ctx, int64_t rows, int64_t cols, const float *in, float *out)
{
    fnet_cuda_enter(ctx);
    fnet_cuda_check(ctx, "transpose",
                    fnet_cuda_transpose(cuda_state(ctx)->stream, rows, cols, in, out));
}

static void cuda_bias_fill(fnet_ctx *ctx, int64_t B, int64_t n, const float *bias, float *y)
{
    fnet_cuda_enter(ctx);
    fnet_cuda_check(ctx, "bias_fill", fnet_cuda_bias_fill(cuda_state(ctx)->stream, B, n, bias, y));
}

static void cuda_bias_add(fnet_ctx *ctx, int64_t B, int64_t n, const float *bias, float *y)
{
    fnet_cuda_enter(ctx);
    fnet_cuda_check(ctx, "bias_add", fnet_cuda_bias_add(cuda_state(ctx)->stream, B, n, bias, y));
}

// db (n) (+)= dyᵀ·1: row-major dy (B, n) is column-major (n, B), so a GEMV against a vector of
// ones, which cuBLAS spreads over the whole GPU (a thread per column cannot fill it at n = 1024:
// its B-long sums would take longer than the layer's GEMMs at large batches).
static void cuda_bias_grad(fnet_ctx *ctx, int64_t B, int64_t n, const float *dy, float *db,
                           bool accumulate)
{
    if (n <= 0)
        return;
    fnet_cuda_enter(ctx);
    struct cuda_state *s = cuda_state(ctx);
    if (B <= 0) { // no rows: nothing to add (a GEMV of width 0 would leave db as it was)
        if (!accumulate)
            fnet_cuda_check(ctx, "bias_grad", fnet_cuda_fill(s->stream, n, 0.0f, db));
        return;
    }
    bool grew;
    float *ones = fnet_cuda_grow(ctx, "bias_grad", &s->ones, (size_t)B * sizeof(float), &grew);
    if (ones == NULL)
        return;
    if (grew)
        fnet_cuda_check(ctx, "bias_grad",
                        fnet_cuda_fill(s->stream, (int64_t)(s->ones.bytes / sizeof(float)), 1.0f,
                                       ones));
    const float one = 1.0f, beta = accumulate ? 1.0f : 0.0f;
    check_blas(ctx, "bias_grad", cublasSgemv_64(s->blas, CUBLAS_OP_N, n, B, &one, dy, n, ones, 1,
                                                &beta, db, 1));
}

static bool known_act(enum fnet_act act)
{
    return act == FNET_ACT_RELU || act == FNET_ACT_TANH || act == FNET_ACT_SIGMOID;
}

static fnet_status cuda_act_forward(fnet_ctx *ctx, enum fnet_act act, int64_t n, const float *x,
                                    float *y)
{
    if (!known_act(act))
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "unknown activation %d", (int)act);
    fnet_cuda_enter(ctx);
    fnet_cuda_check(ctx, "act_forward",
                    fnet_cuda_act_forward(cuda_state(ctx)->stream, (int)act, n, x, y));
    return FNET_OK;
}

static fnet_status cuda_act_backward(fnet_ctx *ctx, enum fnet_act act, int64_t n, const float *y,
                                     const float *dy, float *dx)
{
    if (!known_act(act))
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "unknown activation %d", (int)act);
    fnet_cuda_enter(ctx);
    fnet_cuda_check(ctx, "act_backward",
                    fnet_cuda_act_backward(cuda_state(ctx)->stream, (int)act, n, y, dy, dx));
    return FNET_OK;
}

static void cuda_mul(fnet_ctx *ctx, int64_t n, const float *x, const float *mask, float *y)
{
    fnet_cuda_enter(ctx);
    fnet_cuda_check(ctx, "mul", fnet_cuda_mul(cuda_state(ctx)->stream, n, x, mask, y));
}

static void cuda_dropout_mask(fnet_ctx *ctx, int64_t n, float p, uint64_t seed, uint64_t step,
                              uint64_t first, float *mask)
{
    fnet_cuda_enter(ctx);
    fnet_cuda_check(ctx, "dropout_mask", fnet_cuda_dropout_mask(cuda_state(ctx)->stream, n, p,
                                                                seed, step, first, mask));
}

static void cuda_cmac(fnet_ctx *ctx, int64_t F, int64_t M, int64_t N, int64_t K, const float *A,
                      int64_t a_m, int64_t a_k, bool conj_a, const float *B, int64_t b_k,
                      int64_t b_n, bool conj_b, float *C, int64_t c_m, int64_t c_n,
                      bool accumulate)
{
    fnet_cuda_enter(ctx);
    fnet_cuda_check(ctx, "cmac",
                    fnet_cuda_cmac(cuda_state(ctx)->stream, F, M, N, K, A, a_m, a_k, conj_a, B,
                                   b_k, b_n, conj_b, C, c_m, c_n, accumulate));
}

// ---- sparse ----

static void cuda_csr_spmm(fnet_ctx *ctx, int64_t M, int64_t N, int64_t B, const int32_t *row_ptr,
                          const int32_t *col, const float *val, const float *X, float *Y,
                          bool accumulate)
{
    fnet_cuda_enter(ctx);
    fnet_cuda_check(ctx, "csr_spmm", fnet_cuda_csr_spmm(cuda_state(ctx)->stream, M, N, B, row_ptr,
                                                        col, val, X, Y, accumulate));
}

static void cuda_csr_spmm_t(fnet_ctx *ctx, int64_t M, int64_t N, int64_t B,
                            const int32_t *row_ptr, const int32_t *col, const float *val,
                            const float *Y, float *X, bool accumulate)
{
    if (N <= 0 || B <= 0)
        return;
    fnet_cuda_enter(ctx);
    struct cuda_state *s = cuda_state(ctx);
    double *work = fnet_cuda_grow(ctx, "csr_spmm_t", &s->sums, (size_t)(N * B) * sizeof(double),
                                  NULL);
    if (work != NULL)
        fnet_cuda_check(ctx, "csr_spmm_t", fnet_cuda_csr_spmm_t(s->stream, M, N, B, row_ptr, col,
                                                                val, Y, X, accumulate, work));
}

static void cuda_csr_sddmm(fnet_ctx *ctx, int64_t M, int64_t N, int64_t B, const int32_t *row_ptr,
                           const int32_t *col, const float *Y, const float *X, float *out,
                           bool accumulate)
{
    fnet_cuda_enter(ctx);
    fnet_cuda_check(ctx, "csr_sddmm", fnet_cuda_csr_sddmm(cuda_state(ctx)->stream, M, N, B,
                                                          row_ptr, col, Y, X, out, accumulate));
}

// ---- losses, data ----

static double cuda_loss(fnet_ctx *ctx, const char *op, cudaError_t launched, int64_t *correct)
{
    const double *r = read_results(ctx, op, 2, launched);
    if (correct != NULL)
        *correct = r[1] == r[1] ? (int64_t)r[1] : 0;
    return r[0];
}

static double cuda_softmax_ce(fnet_ctx *ctx, int64_t B, int64_t K, const float *logits,
                              const int32_t *labels, float scale, float *dlogits, int64_t *correct)
{
    fnet_cuda_enter(ctx);
    struct cuda_state *s = cuda_state(ctx);
    return cuda_loss(ctx, "softmax_ce",
                     fnet_cuda_softmax_ce(s->stream, B, K, logits, labels, scale, dlogits,
                                          s->scratch, s->result),
                     correct);
}

static double cuda_mse(fnet_ctx *ctx, int64_t B, int64_t K, const float *y, const int32_t *labels,
                       float scale, float *dy, int64_t *correct)
{
    fnet_cuda_enter(ctx);
    struct cuda_state *s = cuda_state(ctx);
    return cuda_loss(ctx, "mse",
                     fnet_cuda_mse(s->stream, B, K, y, labels, scale, dy, s->scratch, s->result),
                     correct);
}

static double cuda_regularize(fnet_ctx *ctx, int64_t n, const float *w, float *g, float l1,
                              float l2)
{
    fnet_cuda_enter(ctx);
    struct cuda_state *s = cuda_state(ctx);
    return read_results(ctx, "regularize", 1,
                        fnet_cuda_regularize(s->stream, n, w, g, l1, l2, s->scratch, s->result))[0];
}

static void cuda_u8_to_float(fnet_ctx *ctx, int64_t B, int64_t d, const uint8_t *src,
                             const int64_t *idx, float scale, float *x)
{
    if (B <= 0 || d <= 0 ||
        fnet_cuda_refuse_in_capture(ctx, "u8_to_float", "reads its rows from host memory"))
        return;
    fnet_cuda_enter(ctx);
    struct cuda_state *s = cuda_state(ctx);
    int64_t *rows = fnet_cuda_grow(ctx, "u8_to_float", &s->idx, (size_t)B * sizeof(int64_t), NULL);
    if (rows == NULL ||
        fnet_cuda_check(ctx, "u8_to_float", cudaMemcpyAsync(rows, idx, (size_t)B * sizeof(int64_t),
                                                            cudaMemcpyHostToDevice, s->stream)))
        return;
    fnet_cuda_check(ctx, "u8_to_float",
                    fnet_cuda_u8_to_float(s->stream, B, d, src, rows, scale, x));
}

static bool cuda_all_finite(fnet_ctx *ctx, int64_t n, const float *x)
{
    fnet_cuda_enter(ctx);
    struct cuda_state *s = cuda_state(ctx);
    int *flag = (int *)(s->result + CUDA_RESULTS - 1);
    cudaError_t e = fnet_cuda_all_finite(s->stream, n, x, flag);
    const double *r = read_results(ctx, "all_finite", CUDA_RESULTS, e);
    int got = 0;
    memcpy(&got, r + CUDA_RESULTS - 1, sizeof(got));
    return e == cudaSuccess && got == 1;
}

// ---- optimizer steps ----

static struct fnet_cuda_hyper hyper(const struct fnet_step_args *a)
{
    return (struct fnet_cuda_hyper){a->lr, a->momentum, a->beta1, a->beta2, a->eps, a->rho,
                                    a->weight_decay, a->bc1, a->bc2};
}

static void cuda_sgd_step(fnet_ctx *ctx, int64_t n, float *w, const float *g,
                          const struct fnet_step_args *a)
{
    fnet_cuda_enter(ctx);
    struct fnet_cuda_hyper h = hyper(a);
    fnet_cuda_check(ctx, "sgd_step", fnet_cuda_sgd_step(cuda_state(ctx)->stream, n, w, g, &h));
}

static void cuda_momentum_step(fnet_ctx *ctx, int64_t n, float *w, const float *g, float *v,
                               const struct fnet_step_args *a, bool nesterov)
{
    fnet_cuda_enter(ctx);
    struct fnet_cuda_hyper h = hyper(a);
    fnet_cuda_check(ctx, "momentum_step",
                    fnet_cuda_momentum_step(cuda_state(ctx)->stream, n, w, g, v, &h, nesterov));
}

static void cuda_rmsprop_step(fnet_ctx *ctx, int64_t n, float *w, const float *g, float *sq,
                              const struct fnet_step_args *a)
{
    fnet_cuda_enter(ctx);
    struct fnet_cuda_hyper h = hyper(a);
    fnet_cuda_check(ctx, "rmsprop_step",
                    fnet_cuda_rmsprop_step(cuda_state(ctx)->stream, n, w, g, sq, &h));
}

static void cuda_adam_step(fnet_ctx *ctx, int64_t n, float *w, const float *g, float *m, float *v,
                           const struct fnet_step_args *a)
{
    fnet_cuda_enter(ctx);
    struct fnet_cuda_hyper h = hyper(a);
    fnet_cuda_check(ctx, "adam_step",
                    fnet_cuda_adam_step(cuda_state(ctx)->stream, n, w, g, m, v, &h));
}

// ---- a training step replayed (backend.h; docs/gpu.md, "The step as one CUDA graph") ----

static void cuda_u8_gather(fnet_ctx *ctx, int64_t B, int64_t d, const uint8_t *src,
                           const int64_t *rows, float scale, float *x)
{
    fnet_cuda_enter(ctx);
    fnet_cuda_check(ctx, "u8_gather",
                    fnet_cuda_u8_to_float(cuda_state(ctx)->stream, B, d, src, rows, scale, x));
}

// The loss kernels into the reduction buffers, then acc updated on the device from them
static void cuda_loss_step(fnet_ctx *ctx, bool mse, int64_t B, int64_t K, const float *logits,
                           const int32_t *labels, float scale, float *dlogits,
                           const int64_t *step, double *acc)
{
    fnet_cuda_enter(ctx);
    struct cuda_state *s = cuda_state(ctx);
    fnet_cuda_check(ctx, "loss_step",
                    fnet_cuda_loss_step(s->stream, mse, B, K, logits, labels, scale, dlogits, step,
                                        acc, s->scratch, s->result));
}

static void cuda_step_dev(fnet_ctx *ctx, int kind, bool nesterov, int64_t n, float *w,
                          const float *g, float *s1, float *s2, const struct fnet_step_args *a,
                          const double *skip)
{
    fnet_cuda_enter(ctx);
    cudaStream_t st = cuda_state(ctx)->stream;
    // device memory, never dereferenced here: the layouts are checked equal at the top
    const struct fnet_cuda_hyper *h = (const struct fnet_cuda_hyper *)(const void *)a;
    cudaError_t e;
    switch (kind) {
    case FNET_OP_SGD_STEP:
        e = fnet_cuda_sgd_step_dev(st, n, w, g, h, skip);
        break;
    case FNET_OP_MOMENTUM_STEP:
        e = fnet_cuda_momentum_step_dev(st, n, w, g, s1, h, nesterov, skip);
        break;
    case FNET_OP_RMSPROP_STEP:
        e = fnet_cuda_rmsprop_step_dev(st, n, w, g, s1, h, skip);
        break;
    case FNET_OP_ADAM_STEP:
        e = fnet_cuda_adam_step_dev(st, n, w, g, s1, s2, h, skip);
        break;
    default:
        fnet_cuda_keep(ctx, FNET_ERR_INVALID_ARG, "step_dev: %d is not an optimizer step", kind);
        return;
    }
    fnet_cuda_check(ctx, "step_dev", e);
}

// A captured step: the graph and its executable instance.
struct cuda_graph {
    cudaGraph_t graph;
    cudaGraphExec_t exec;
};

// fn's ops captured from the ctx's stream (thread-local mode: this thread may not make the calls
// a capture cannot see, such as cudaMalloc, while other threads' ctxs go on as usual) and
// instantiated. A capture refused by CUDA (an op waited for the device, say, which invalidates
// it) or by an op (fnet_cuda_refuse_in_capture, or any failure kept meanwhile) leaves nothing:
// what was made is destroyed and the failures of the refused ops are dropped, the ctx's kept
// failure being again what it was before.
static fnet_status cuda_graph_make(fnet_ctx *ctx, void (*fn)(void *arg), void *arg, void **graph)
{
    *graph = NULL;
    fnet_cuda_enter(ctx);
    struct cuda_state *s = cuda_state(ctx);
    if (s->capturing)
        return fnet_fail(ctx, FNET_ERR_UNSUPPORTED, "CUDA graph: graph_make inside a capture");
    struct cuda_graph *g = fnet_calloc(1, sizeof(*g));
    if (g == NULL)
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "CUDA graph");

    // the failure kept before, set aside: what is kept during the capture is the capture's
    const fnet_status kept = s->err;
    char kept_msg[sizeof(s->err_msg)];
    memcpy(kept_msg, s->err_msg, sizeof(kept_msg));
    s->err = FNET_OK;
    s->err_msg[0] = '\0';
    // every check clears the runtime's last error; one left over must not fail a captured launch
    (void)cudaGetLastError();

    const char *what = "cudaStreamBeginCapture";
    cudaError_t e = cudaStreamBeginCapture(s->stream, cudaStreamCaptureModeThreadLocal);
    if (e == cudaSuccess) {
        s->capturing = true;
        fn(arg);
        s->capturing = false;
        what = "cudaStreamEndCapture";
        e = cudaStreamEndCapture(s->stream, &g->graph);
        if (e == cudaSuccess && s->err == FNET_OK) {
            what = "cudaGraphInstantiate";
            e = cudaGraphInstantiate(&g->exec, g->graph, 0);
            if (e != cudaSuccess)
                g->exec = NULL; // nothing made to destroy
        }
    }
    const fnet_status inside = s->err;
    char inside_msg[sizeof(s->err_msg)];
    memcpy(inside_msg, s->err_msg, sizeof(inside_msg));
    s->err = kept;
    memcpy(s->err_msg, kept_msg, sizeof(kept_msg));
    if (e == cudaSuccess && inside == FNET_OK) {
        *graph = g;
        return FNET_OK;
    }

    // refused: nothing of it stays, on the stream, in the runtime or in the ctx
    enum cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
    if (cudaStreamIsCapturing(s->stream, &cs) == cudaSuccess && cs != cudaStreamCaptureStatusNone) {
        cudaGraph_t dead = NULL; // EndCapture did not end it: ended here
        if (cudaStreamEndCapture(s->stream, &dead) == cudaSuccess && dead != NULL)
            (void)cudaGraphDestroy(dead);
    }
    if (g->exec != NULL)
        (void)cudaGraphExecDestroy(g->exec);
    if (g->graph != NULL)
        (void)cudaGraphDestroy(g->graph);
    fnet_free(g);
    (void)cudaGetLastError();
    if (e == cudaSuccess) // captured, but an op inside failed or refused
        return fnet_fail(ctx, FNET_ERR_UNSUPPORTED, "CUDA graph capture refused: %s", inside_msg);
    return fnet_fail(ctx, FNET_ERR_UNSUPPORTED, "CUDA graph capture refused: %s: %s (%s)%s%s", what,
                     cudaGetErrorString(e), cudaGetErrorName(e),
                     inside != FNET_OK ? "; first failure inside: " : "",
                     inside != FNET_OK ? inside_msg : "");
}

static void cuda_graph_run(fnet_ctx *ctx, void *graph)
{
    struct cuda_graph *g = graph;
    if (g == NULL)
        return;
    fnet_cuda_enter(ctx);
    fnet_cuda_check(ctx, "graph_run", cudaGraphLaunch(g->exec, cuda_state(ctx)->stream));
}

// No wait: an executable graph destroyed while it runs is freed when it completes (CUDA's
// cuGraphExecDestroy), and the graph it was made from is no longer needed once it exists.
static void cuda_graph_free(fnet_ctx *ctx, void *graph)
{
    struct cuda_graph *g = graph;
    if (g == NULL)
        return;
    fnet_cuda_enter(ctx);
    fnet_cuda_check(ctx, "graph_free", cudaGraphExecDestroy(g->exec));
    fnet_cuda_check(ctx, "graph_free", cudaGraphDestroy(g->graph));
    fnet_free(g);
}

const struct fnet_backend_ops fnet_cuda_backend = {
    .name = "cuda",
    .host_memory = false,
    .whole_batches = true,
    .host_la = &fnet_cuda_host_la,
    .state_init = cuda_state_init,
    .state_free = cuda_state_free,
    .synchronize = cuda_synchronize,
    .set_tf32 = cuda_set_tf32,
    .alloc = cuda_alloc,
    .free = cuda_free,
    .upload = cuda_upload,
    .download = cuda_download,
    .copy = cuda_copy,
    .fill = cuda_fill,
    .sgemm = cuda_sgemm,
    .sgemm_batched = cuda_sgemm_batched,
    .axpy = cuda_axpy,
    .scal = cuda_scal,
    .dot = cuda_dot,
    .axpby = cuda_axpby,
    .amax = cuda_amax,
    .permute_021 = cuda_permute_021,
    .transpose = cuda_transpose,
    .bias_fill = cuda_bias_fill,
    .bias_add = cuda_bias_add,
    .bias_grad = cuda_bias_grad,
    .act_forward = cuda_act_forward,
    .act_backward = cuda_act_backward,
    .mul = cuda_mul,
    .dropout_mask = cuda_dropout_mask,
#if FNET_WITH_NCCL
    .dist_id = fnet_cuda_dist_id,
    .dist_init = fnet_cuda_dist_init,
    .dist_allreduce = fnet_cuda_dist_allreduce,
    .dist_wait = fnet_cuda_dist_wait,
    .dist_free = fnet_cuda_dist_free,
#endif
    .fft_plan = fnet_cuda_fft_plan,
    .fft_plan_free = fnet_cuda_fft_plan_free,
    .rfft = fnet_cuda_rfft,
    .irfft = fnet_cuda_irfft,
    .cmac = cuda_cmac,
    .csr_spmm = cuda_csr_spmm,
    .csr_spmm_t = cuda_csr_spmm_t,
    .csr_sddmm = cuda_csr_sddmm,
    .softmax_ce = cuda_softmax_ce,
    .mse = cuda_mse,
    .regularize = cuda_regularize,
    .u8_to_float = cuda_u8_to_float,
    .all_finite = cuda_all_finite,
    .sgd_step = cuda_sgd_step,
    .momentum_step = cuda_momentum_step,
    .rmsprop_step = cuda_rmsprop_step,
    .adam_step = cuda_adam_step,
    .u8_gather = cuda_u8_gather,
    .loss_step = cuda_loss_step,
    .step_dev = cuda_step_dev,
    .graph_make = cuda_graph_make,
    .graph_run = cuda_graph_run,
    .graph_free = cuda_graph_free,
};
