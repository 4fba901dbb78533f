/* The CUDA backend's CSR kernels (src/gpu/cuda_sparse.cu), launched like those of
 * cuda_kernels.h (stream s, no synchronization, cudaGetLastError() returned), with the shapes of
 * backend.h's "sparse matrices". Own kernels rather than cuSPARSE: its descriptors need the
 * number of entries on the host, which lives in row_ptr[M] on the device, so every call would
 * wait for the GPU. Every output is summed in double, as the reference does (src/cpu/ref_sparse.c),
 * and rounded to float once: spmm bit for bit the reference's (the same order), sddmm in a fixed
 * tree order, spmm_t by atomic adds in double in any order (so almost always the reference's
 * float too: the sums differ from its in the last bits of a double). */
#ifndef FNET_GPU_CUDA_SPARSE_H
#define FNET_GPU_CUDA_SPARSE_H

#include <cuda_runtime_api.h>
#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Y (M, B) (+)= A·X (N, B)
cudaError_t fnet_cuda_csr_spmm(cudaStream_t s, int64_t M, int64_t N, int64_t B,
                               const int32_t *row_ptr, const int32_t *col, const float *val,
                               const float *X, float *Y, bool accumulate);
// X (N, B) (+)= Aᵀ·Y (M, B); work: N·B doubles of device memory for the sums
cudaError_t fnet_cuda_csr_spmm_t(cudaStream_t s, int64_t M, int64_t N, int64_t B,
                                 const int32_t *row_ptr, const int32_t *col, const float *val,
                                 const float *Y, float *X, bool accumulate, double *work);
// out[k] (+)= Σ_b Y[i, b]·X[col[k], b] for the entries k of row i
cudaError_t fnet_cuda_csr_sddmm(cudaStream_t s, int64_t M, int64_t N, int64_t B,
                                const int32_t *row_ptr, const int32_t *col, const float *Y,
                                const float *X, float *out, bool accumulate);

/* cudaSuccess when this build's kernels hold code the current device can run (else
 * cudaErrorNoKernelImageForDevice: built for another architecture, see
 * CMAKE_CUDA_ARCHITECTURES). */
cudaError_t fnet_cuda_kernels_usable(void);

#ifdef __cplusplus
}
#endif
#endif
