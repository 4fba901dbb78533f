/* The CUDA backend's CSR products (cuda_sparse.h says why they are not cuSPARSE's). Every
 * output element is one double sum, rounded to float once, like the reference's. */
#include "gpu/cuda_sparse.h"

namespace {

constexpr int THREADS = 256;
constexpr int64_t MAX_BLOCKS = 8192; // grid-stride beyond this

int blocks_for(int64_t work)
{
    int64_t b = (work + THREADS - 1) / THREADS;
    return (int)(b < 1 ? 1 : (b > MAX_BLOCKS ? MAX_BLOCKS : b));
}

// Y[i, b] = Σ_k val[k]·X[col[k], b]: one thread per output element, the row's entries in order
// (consecutive threads take consecutive b, so X and Y are read and written coalesced)
__global__ void spmm_kernel(int64_t M, int64_t B, const int32_t *__restrict__ row_ptr,
                            const int32_t *__restrict__ col, const float *__restrict__ val,
                            const float *__restrict__ X, float *__restrict__ Y, bool accumulate)
{
    for (int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; t < M * B;
         t += (int64_t)gridDim.x * blockDim.x) {
        int64_t i = t / B, b = t - i * B;
        double sum = accumulate ? (double)Y[t] : 0.0;
        for (int64_t k = row_ptr[i]; k < row_ptr[i + 1]; k++)
            sum += (double)val[k] * (double)X[(int64_t)col[k] * B + b];
        Y[t] = (float)sum;
    }
}

// work (n) = x (n) in double, or 0
__global__ void widen_kernel(int64_t n, const float *__restrict__ x, double *__restrict__ work,
                             bool accumulate)
{
    for (int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; t < n;
         t += (int64_t)gridDim.x * blockDim.x)
        work[t] = accumulate ? (double)x[t] : 0.0;
}

// work[col[k], b] += val[k]·Y[i, b] for every entry k of row i: one thread per (i, b)
__global__ void scatter_kernel(int64_t M, int64_t B, const int32_t *__restrict__ row_ptr,
                               const int32_t *__restrict__ col, const float *__restrict__ val,
                               const float *__restrict__ Y, double *__restrict__ work)
{
    for (int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; t < M * B;
         t += (int64_t)gridDim.x * blockDim.x) {
        int64_t i = t / B, b = t - i * B;
        double y = (double)Y[t];
        for (int64_t k = row_ptr[i]; k < row_ptr[i + 1]; k++)
            atomicAdd(&work[(int64_t)col[k] * B + b], (double)val[k] * y);
    }
}

// x (n) = work (n) rounded to float
__global__ void narrow_kernel(int64_t n, const double *__restrict__ work, float *__restrict__ x)
{
    for (int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; t < n;
         t += (int64_t)gridDim.x * blockDim.x)
        x[t] = (float)work[t];
}

// out[k] (+)= Σ_b Y[i, b]·X[col[k], b]: one warp per entry, its lanes over b, then a shuffle
// tree (a fixed order); the warps of a block walk the entries of consecutive rows
__global__ void sddmm_kernel(int64_t M, int64_t B, const int32_t *__restrict__ row_ptr,
                             const int32_t *__restrict__ col, const float *__restrict__ Y,
                             const float *__restrict__ X, float *__restrict__ out,
                             bool accumulate)
{
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    for (int64_t i = blockIdx.x; i < M; i += gridDim.x) {
        const float *y = Y + i * B;
        for (int64_t k = row_ptr[i] + warp; k < row_ptr[i + 1]; k += warps) {
            const float *x = X + (int64_t)col[k] * B;
            double sum = 0.0;
            for (int64_t b = lane; b < B; b += 32)
                sum += (double)y[b] * (double)x[b];
            for (int off = 16; off > 0; off /= 2)
                sum += __shfl_down_sync(0xffffffffu, sum, off);
            if (lane == 0)
                out[k] = (float)(accumulate ? (double)out[k] + sum : sum);
        }
    }
}

} // namespace

extern "C" cudaError_t fnet_cuda_csr_spmm(cudaStream_t s, int64_t M, int64_t N, int64_t B,
                                          const int32_t *row_ptr, const int32_t *col,
                                          const float *val, const float *X, float *Y,
                                          bool accumulate)
{
    if (M <= 0 || B <= 0)
        return cudaSuccess;
    spmm_kernel<<<blocks_for(M * B), THREADS, 0, s>>>(M, B, row_ptr, col, val, X, Y, accumulate);
    return cudaGetLastError();
}

extern "C" cudaError_t fnet_cuda_csr_spmm_t(cudaStream_t s, int64_t M, int64_t N, int64_t B,
                                            const int32_t *row_ptr, const int32_t *col,
                                            const float *val, const float *Y, float *X,
                                            bool accumulate, double *work)
{
    if (N <= 0 || B <= 0)
        return cudaSuccess;
    widen_kernel<<<blocks_for(N * B), THREADS, 0, s>>>(N * B, X, work, accumulate);
    if (M > 0)
        scatter_kernel<<<blocks_for(M * B), THREADS, 0, s>>>(M, B, row_ptr, col, val, Y, work);
    narrow_kernel<<<blocks_for(N * B), THREADS, 0, s>>>(N * B, work, X);
    return cudaGetLastError();
}

extern "C" cudaError_t fnet_cuda_csr_sddmm(cudaStream_t s, int64_t M, int64_t N, int64_t B,
                                           const int32_t *row_ptr, const int32_t *col,
                                           const float *Y, const float *X, float *out,
                                           bool accumulate)
{
    if (M <= 0)
        return cudaSuccess;
    int64_t blocks = M < MAX_BLOCKS ? M : MAX_BLOCKS;
    sddmm_kernel<<<(int)blocks, THREADS, 0, s>>>(M, B, row_ptr, col, Y, X, out, accumulate);
    return cudaGetLastError();
}

extern "C" cudaError_t fnet_cuda_kernels_usable(void)
{
    cudaFuncAttributes attr;
    return cudaFuncGetAttributes(&attr, spmm_kernel);
}
