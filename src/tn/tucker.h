/* Tucker tensors (Tucker 1966; De Lathauwer, De Moor & Vandewalle 2000): a D-way tensor X
 * (dims[0], .., dims[D-1]), row-major, held as a core C (ranks[0], .., ranks[D-1]) and one factor
 * U_k (dims[k], ranks[k]) per mode: X = C ×_0 U_0 ×_1 U_1 ··· ×_{D-1} U_{D-1}. A Tucker layer's
 * W (M, N) is the tensor of dims (m_0..m_{q-1}, n_0..n_{p-1}) in the same memory (docs/tn.md).
 * Host-side algebra: every pointer is host memory; the linear algebra is ctx->be->host_la. */
#ifndef FNET_TN_TUCKER_H
#define FNET_TN_TUCKER_H

#include "core/internal.h"

#define FNET_TUCKER_MAX_D 16 // modes of a Tucker (or CP) tensor: 8 output and 8 input modes

struct fnet_tucker_shape {
    int D;                              // modes, 1..FNET_TUCKER_MAX_D
    int64_t dims[FNET_TUCKER_MAX_D];    // mode sizes
    int64_t ranks[FNET_TUCKER_MAX_D];   // 1 <= ranks[k] <= dims[k]
};

/* Floats of the core (Π ranks) and of all factors (Σ dims[k]·ranks[k]); the factors are stored
 * back to back, U_k at fnet_tucker_factor_offset(s, k). */
int64_t fnet_tucker_core_size(const struct fnet_tucker_shape *s);
int64_t fnet_tucker_factor_size(const struct fnet_tucker_shape *s);
int64_t fnet_tucker_factor_offset(const struct fnet_tucker_shape *s, int k);

/* FNET_OK when 1 <= D <= 16, dims >= 1, 1 <= ranks[k] <= dims[k], and the sizes (Π dims, and
 * so Π ranks, and the factors' Σ dims[k]·ranks[k]) representable; FNET_ERR_INVALID_ARG naming the
 * mode otherwise ("rank 40 of mode 1 exceeds its size 32"). */
fnet_status fnet_tucker_shape_check(fnet_ctx *ctx, const struct fnet_tucker_shape *s);

/* X (Π dims) = core ×_k U_k for every k.
 * @return FNET_OK, FNET_ERR_INVALID_ARG (a NULL pointer, a shape the check refuses),
 *         FNET_ERR_OUT_OF_MEMORY. */
fnet_status fnet_tucker_full(fnet_ctx *ctx, const struct fnet_tucker_shape *s, const float *core,
                             const float *factors, float *X);

/* Truncated HOSVD of X: U_k the ranks[k] leading left singular vectors of the mode-k unfolding
 * X_(k) (dims[k], Π_{l≠k} dims[l]); then hooi_iters sweeps of HOOI (each U_k the leading left
 * singular vectors of X ×_{l≠k} U_lᵀ unfolded along k); then core = X ×_k U_kᵀ. The factors have
 * orthonormal columns; where ranks[k] exceeds the unfolding's rank, the extra columns are any
 * orthonormal completion. core (Π ranks floats) and factors (fnet_tucker_factor_size floats) are
 * the caller's, and unspecified after an error. rel_err, when not NULL, receives on success
 * ‖X − full‖_F / ‖X‖_F (0 for X = 0), in double.
 * @return FNET_OK, FNET_ERR_INVALID_ARG (a NULL ctx, X, core or factors, a shape the check
 *         refuses, hooi_iters < 0, a non-finite X), FNET_ERR_OUT_OF_MEMORY, FNET_ERR_NUMERIC (an
 *         SVD or QR failed). */
fnet_status fnet_tucker_hosvd(fnet_ctx *ctx, const float *X, const struct fnet_tucker_shape *s,
                              int hooi_iters, float *core, float *factors, double *rel_err);

#endif
