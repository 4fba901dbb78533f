/* Reference CSR ops: every output element summed on its own in double, the oracle of the CPU
 * backend's blocked kernels (src/cpu/cpu_sparse.c). src/core/backend.h, "sparse matrices", is the
 * contract: A (M, N) as row_ptr (M + 1), col (nnz, increasing within a row), val (nnz); X (N, B)
 * and Y (M, B) feature-major, leading dimension B. Products of floats are exact in double, so
 * only the sums round, then the one conversion to float. */
#include "cpu/ref.h"

// Y (M, B) (+)= A·X: Y[i, b] = Σ_k val[k]·X[col[k], b] over the entries k of row i
void fnet_ref_csr_spmm(fnet_ctx *ctx, int64_t M, int64_t N, int64_t B, const int32_t *row_ptr,
                       const int32_t *col, const float *val, const float *X, float *Y,
                       bool accumulate)
{
    for (int64_t i = 0; i < M; i++)
        for (int64_t b = 0; b < B; b++) {
            double sum = accumulate ? (double)Y[i * B + b] : 0.0;
            for (int64_t k = row_ptr[i]; k < row_ptr[i + 1]; k++)
                sum += (double)val[k] * (double)X[(int64_t)col[k] * B + b];
            Y[i * B + b] = (float)sum;
        }
}

// The entry of row i in column j, or -1: col is increasing within the row (the contract), so a
// binary search over [row_ptr[i], row_ptr[i + 1]).
static int64_t find_entry(const int32_t *row_ptr, const int32_t *col, int64_t i, int64_t j)
{
    int64_t lo = row_ptr[i], hi = row_ptr[i + 1];
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (col[mid] < j)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < row_ptr[i + 1] && col[lo] == j ? lo : -1;
}

// Columns of X one block at a time: the block's double sums live on the stack, so the reference
// needs no workspace and cannot fail.
#define REF_BLOCK 64

// X (N, B) (+)= Aᵀ·Y: X[j, b] = Σ_i A[i, j]·Y[i, b], over the rows i that store column j, in
// increasing i. CSR gives no list of a column's rows: each row is searched for j.
void fnet_ref_csr_spmm_t(fnet_ctx *ctx, int64_t M, int64_t N, int64_t B, const int32_t *row_ptr,
                         const int32_t *col, const float *val, const float *Y, float *X,
                         bool accumulate)
{
    double sum[REF_BLOCK];
    for (int64_t j = 0; j < N; j++)
        for (int64_t b0 = 0; b0 < B; b0 += REF_BLOCK) {
            int64_t w = B - b0 < REF_BLOCK ? B - b0 : REF_BLOCK;
            float *x = X + j * B + b0;
            for (int64_t b = 0; b < w; b++)
                sum[b] = accumulate ? (double)x[b] : 0.0;
            for (int64_t i = 0; i < M; i++) {
                int64_t k = find_entry(row_ptr, col, i, j);
                if (k < 0)
                    continue;
                for (int64_t b = 0; b < w; b++)
                    sum[b] += (double)val[k] * (double)Y[i * B + b0 + b];
            }
            for (int64_t b = 0; b < w; b++)
                x[b] = (float)sum[b];
        }
}

// out[k] (+)= Σ_b Y[i, b]·X[col[k], b] for every entry k of row i (out has nnz floats)
void fnet_ref_csr_sddmm(fnet_ctx *ctx, int64_t M, int64_t N, int64_t B, const int32_t *row_ptr,
                        const int32_t *col, const float *Y, const float *X, float *out,
                        bool accumulate)
{
    for (int64_t i = 0; i < M; i++)
        for (int64_t k = row_ptr[i]; k < row_ptr[i + 1]; k++) {
            double sum = accumulate ? (double)out[k] : 0.0;
            for (int64_t b = 0; b < B; b++)
                sum += (double)Y[i * B + b] * (double)X[(int64_t)col[k] * B + b];
            out[k] = (float)sum;
        }
}
