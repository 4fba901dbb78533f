/* The CUDA backend's host linear algebra (backend.h, struct fnet_host_la): thin SVD by cuSOLVER's
 * Jacobi SVD (gesvdj) and thin QR by geqrf + orgqr, on the ctx's device and stream, from host
 * matrices to host results (TT-SVD, TT rounding and the Tucker and CP decompositions call them on
 * host copies; initializations use the CPU's, fnet_init_host_la, so that a seed gives the same
 * layer on every backend). Row-major A (m, n) is column-major Aᵀ: the SVD factors Aᵀ and swaps the
 * roles of U and V; QR transposes A on the host first. The host GEMM is the CPU backend's. */
#include "gpu/cuda_internal.h"
#include "cpu/ref.h"

#include <limits.h>
#include <math.h>

// Device buffers of one factorization, freed together (stream-ordered).
struct bufs {
    void *p[8]; // gesvd takes six
    int n;
};

static void *dev(fnet_ctx *ctx, struct bufs *b, size_t bytes)
{
    void *p = NULL;
    if (cudaMallocAsync(&p, bytes > 0 ? bytes : 1, cuda_state(ctx)->stream) != cudaSuccess) {
        (void)cudaGetLastError();
        return NULL;
    }
    b->p[b->n++] = p;
    return p;
}

static void release(fnet_ctx *ctx, struct bufs *b)
{
    for (int i = 0; i < b->n; i++)
        (void)cudaFreeAsync(b->p[i], cuda_state(ctx)->stream);
    b->n = 0;
}

static fnet_status fail_cuda(fnet_ctx *ctx, const char *what, cudaError_t e)
{
    (void)cudaGetLastError();
    return fnet_fail(ctx,
                     e == cudaErrorMemoryAllocation ? FNET_ERR_OUT_OF_MEMORY : FNET_ERR_BACKEND,
                     "%s: %s", what, cudaGetErrorString(e));
}

static fnet_status to_host(fnet_ctx *ctx, void *dst, const void *src, size_t bytes)
{
    cudaStream_t st = cuda_state(ctx)->stream;
    cudaError_t e = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, st);
    if (e == cudaSuccess)
        e = cudaStreamSynchronize(st);
    return e == cudaSuccess ? FNET_OK : fail_cuda(ctx, "cuSOLVER result", e);
}

// cuSOLVER's info: > 0 the algorithm failed on these numbers, < 0 an argument of ours was wrong.
static fnet_status info_status(fnet_ctx *ctx, const char *routine, const int *d_info)
{
    int info = 0;
    fnet_status st = to_host(ctx, &info, d_info, sizeof(info));
    if (st != FNET_OK)
        return st;
    if (info > 0)
        return fnet_fail(ctx, FNET_ERR_NUMERIC, "%s did not converge (info %d)", routine, info);
    if (info < 0)
        return fnet_fail(ctx, FNET_ERR_INTERNAL, "%s: argument %d is wrong", routine, -info);
    return FNET_OK;
}

static fnet_status solver_status(fnet_ctx *ctx, const char *routine, cusolverStatus_t s)
{
    if (s == CUSOLVER_STATUS_SUCCESS)
        return FNET_OK;
    return fnet_fail(ctx, s == CUSOLVER_STATUS_ALLOC_FAILED ? FNET_ERR_OUT_OF_MEMORY
                                                            : FNET_ERR_BACKEND,
                     "%s: cusolverStatus %d", routine, (int)s);
}

// Sizes cuSOLVER's 32-bit interfaces take; larger ones go to the CPU's LAPACK.
static bool fits_int(int64_t m, int64_t n)
{
    return m <= INT_MAX && n <= INT_MAX && m * n <= INT_MAX;
}

static fnet_status cuda_gesvd(fnet_ctx *ctx, int64_t m, int64_t n, const float *A, float *U,
                              float *S, float *Vt)
{
    fnet_status st = fnet_host_la_check(ctx, "gesvd", m, n, A);
    if (st != FNET_OK)
        return st;
    if (!fits_int(m, n))
        return fnet_cpu_backend.host_la->gesvd(ctx, m, n, A, U, S, Vt);
    fnet_cuda_enter(ctx);
    struct cuda_state *s = cuda_state(ctx);
    int64_t k = m < n ? m : n, rows = n, cols = m; // Aᵀ (n, m), column-major
    float *U_host = fnet_malloc_array((size_t)(m * k), sizeof(float));
    gesvdjInfo_t params = NULL;
    struct bufs b = {0};
    float *dA = dev(ctx, &b, (size_t)(m * n) * sizeof(float));
    float *dS = dev(ctx, &b, (size_t)k * sizeof(float));
    float *dU = dev(ctx, &b, (size_t)(rows * k) * sizeof(float));
    float *dV = dev(ctx, &b, (size_t)(cols * k) * sizeof(float));
    int *dinfo = dev(ctx, &b, sizeof(int));
    if (U_host == NULL || dA == NULL || dS == NULL || dU == NULL || dV == NULL || dinfo == NULL)
        st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "gesvd of a %lldx%lld matrix", (long long)m,
                       (long long)n);
    cudaError_t e;
    if (st == FNET_OK && (e = cudaMemcpyAsync(dA, A, (size_t)(m * n) * sizeof(float),
                                              cudaMemcpyHostToDevice, s->stream)) != cudaSuccess)
        st = fail_cuda(ctx, "gesvd upload", e);
    if (st == FNET_OK)
        st = solver_status(ctx, "cusolverDnCreateGesvdjInfo", cusolverDnCreateGesvdjInfo(&params));
    int lwork = 0;
    if (st == FNET_OK)
        st = solver_status(ctx, "cusolverDnSgesvdj_bufferSize",
                           cusolverDnSgesvdj_bufferSize(s->solver, CUSOLVER_EIG_MODE_VECTOR, 1,
                                                        (int)rows, (int)cols, dA, (int)rows, dS,
                                                        dU, (int)rows, dV, (int)cols, &lwork,
                                                        params));
    float *work = st == FNET_OK ? dev(ctx, &b, (size_t)lwork * sizeof(float)) : NULL;
    if (st == FNET_OK && work == NULL)
        st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "gesvdj workspace of %d floats", lwork);
    if (st == FNET_OK)
        st = solver_status(ctx, "cusolverDnSgesvdj",
                           cusolverDnSgesvdj(s->solver, CUSOLVER_EIG_MODE_VECTOR, 1, (int)rows,
                                             (int)cols, dA, (int)rows, dS, dU, (int)rows, dV,
                                             (int)cols, work, lwork, dinfo, params));
    // gesvdj stops after 100 sweeps; short of float precision by then (a badly conditioned
    // matrix), LAPACK's bidiagonal SVD on the host does it instead
    bool converged = true;
    if (st == FNET_OK && (st = info_status(ctx, "gesvdj", dinfo)) == FNET_ERR_NUMERIC) {
        converged = false;
        fnet_ctx_clear_error(ctx); // gesvdj's failure is not the call's
        fnet_log(FNET_LOG_INFO, "gesvdj did not converge on a %lldx%lld matrix: LAPACK's SVD "
                 "instead", (long long)m, (long long)n);
        st = fnet_cpu_backend.host_la->gesvd(ctx, m, n, A, U, S, Vt);
    }
    // Aᵀ = U'·S·V'ᵀ, so A = V'·S·U'ᵀ: Vt (k, n) row-major is U' (n, k) column-major as it lies,
    // U (m, k) row-major is V' (m, k) column-major transposed
    if (st == FNET_OK && converged)
        st = to_host(ctx, S, dS, (size_t)k * sizeof(float));
    if (st == FNET_OK && converged)
        st = to_host(ctx, Vt, dU, (size_t)(k * n) * sizeof(float));
    if (st == FNET_OK && converged)
        st = to_host(ctx, U_host, dV, (size_t)(m * k) * sizeof(float));
    if (st == FNET_OK && converged)
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < k; j++)
                U[i * k + j] = U_host[i + j * m];
    if (params != NULL)
        (void)cusolverDnDestroyGesvdjInfo(params);
    release(ctx, &b);
    fnet_free(U_host);
    return st;
}

static fnet_status cuda_qr(fnet_ctx *ctx, int64_t m, int64_t n, const float *A, float *Q, float *R)
{
    fnet_status st = fnet_host_la_check(ctx, "qr", m, n, A);
    if (st != FNET_OK)
        return st;
    if (!fits_int(m, n))
        return fnet_cpu_backend.host_la->qr(ctx, m, n, A, Q, R);
    fnet_cuda_enter(ctx);
    struct cuda_state *s = cuda_state(ctx);
    int64_t k = m < n ? m : n;
    float *H = fnet_malloc_array((size_t)(m * n), sizeof(float)); // column-major A, then its QR
    struct bufs b = {0};
    float *dA = dev(ctx, &b, (size_t)(m * n) * sizeof(float));
    float *dtau = dev(ctx, &b, (size_t)k * sizeof(float));
    int *dinfo = dev(ctx, &b, sizeof(int));
    if (H == NULL || dA == NULL || dtau == NULL || dinfo == NULL)
        st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "qr of a %lldx%lld matrix", (long long)m,
                       (long long)n);
    cudaError_t e;
    if (st == FNET_OK) {
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++)
                H[i + j * m] = A[i * n + j];
        if ((e = cudaMemcpyAsync(dA, H, (size_t)(m * n) * sizeof(float), cudaMemcpyHostToDevice,
                                 s->stream)) != cudaSuccess)
            st = fail_cuda(ctx, "qr upload", e);
    }
    int lw1 = 0, lw2 = 0;
    if (st == FNET_OK)
        st = solver_status(ctx, "cusolverDnSgeqrf_bufferSize",
                           cusolverDnSgeqrf_bufferSize(s->solver, (int)m, (int)n, dA, (int)m,
                                                       &lw1));
    if (st == FNET_OK)
        st = solver_status(ctx, "cusolverDnSorgqr_bufferSize",
                           cusolverDnSorgqr_bufferSize(s->solver, (int)m, (int)k, (int)k, dA,
                                                       (int)m, dtau, &lw2));
    int lwork = lw1 > lw2 ? lw1 : lw2;
    float *work = st == FNET_OK ? dev(ctx, &b, (size_t)lwork * sizeof(float)) : NULL;
    if (st == FNET_OK && work == NULL)
        st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "qr workspace of %d floats", lwork);
    if (st == FNET_OK)
        st = solver_status(ctx, "cusolverDnSgeqrf",
                           cusolverDnSgeqrf(s->solver, (int)m, (int)n, dA, (int)m, dtau, work,
                                            lwork, dinfo));
    if (st == FNET_OK)
        st = info_status(ctx, "geqrf", dinfo);
    // R: the upper triangle of the first k rows
    if (st == FNET_OK)
        st = to_host(ctx, H, dA, (size_t)(m * n) * sizeof(float));
    if (st == FNET_OK)
        for (int64_t i = 0; i < k; i++)
            for (int64_t j = 0; j < n; j++)
                R[i * n + j] = j >= i ? H[i + j * m] : 0.0f;
    if (st == FNET_OK)
        st = solver_status(ctx, "cusolverDnSorgqr",
                           cusolverDnSorgqr(s->solver, (int)m, (int)k, (int)k, dA, (int)m, dtau,
                                            work, lwork, dinfo));
    if (st == FNET_OK)
        st = info_status(ctx, "orgqr", dinfo);
    if (st == FNET_OK)
        st = to_host(ctx, H, dA, (size_t)(m * k) * sizeof(float));
    if (st == FNET_OK)
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < k; j++)
                Q[i * k + j] = H[i + j * m];
    release(ctx, &b);
    fnet_free(H);
    return st;
}

// Host GEMMs of the algorithms (small products of factors): the CPU backend's OpenBLAS.
static void cuda_host_sgemm(fnet_ctx *ctx, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                            float alpha, const float *A, int64_t lda, const float *B, int64_t ldb,
                            float beta, float *C, int64_t ldc)
{
    fnet_cpu_backend.host_la->sgemm(ctx, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

const struct fnet_host_la fnet_cuda_host_la = {
    .name = "cusolver",
    .sgemm = cuda_host_sgemm,
    .gesvd = cuda_gesvd,
    .qr = cuda_qr,
};
