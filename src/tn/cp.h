/* CP (CANDECOMP/PARAFAC) tensors (Hitchcock 1927; Kolda & Bader 2009): a D-way tensor X (dims[0],
 * .., dims[D-1]), row-major, held as R rank-one terms, X[i_0, .., i_{D-1}] = Σ_r Π_k A_k[i_k, r],
 * with one factor A_k (dims[k], R) per mode stored back to back (A_k at Σ_{l<k} dims[l]·R). The
 * term weights are spread over the factors (no separate λ). A CP layer's W (M, N) is the tensor
 * of dims (m_0..m_{q-1}, n_0..n_{p-1}) in the same memory (docs/tn.md). Host-side algebra: every
 * pointer is host memory; the linear algebra is ctx->be->host_la. */
#ifndef FNET_TN_CP_H
#define FNET_TN_CP_H

#include "tn/tucker.h"

struct fnet_cp_shape {
    int D;                          // modes, 1..FNET_TUCKER_MAX_D
    int64_t dims[FNET_TUCKER_MAX_D]; // mode sizes >= 1
    int64_t rank;                   // R >= 1
};

/* Floats of all factors: R·Σ dims; where factor k starts: R·Σ_{l<k} dims. */
int64_t fnet_cp_num_params(const struct fnet_cp_shape *s);
int64_t fnet_cp_factor_offset(const struct fnet_cp_shape *s, int k);

/* FNET_OK when 1 <= D <= 16, dims >= 1, R >= 1 and the sizes representable; FNET_ERR_INVALID_ARG
 * naming what is wrong otherwise ("cp rank must be >= 1, got 0"). */
fnet_status fnet_cp_shape_check(fnet_ctx *ctx, const struct fnet_cp_shape *s);

/* X (Π dims) = Σ_r A_0[:, r] ∘ A_1[:, r] ∘ ··· (outer products).
 * @return FNET_OK, FNET_ERR_INVALID_ARG (a NULL pointer, a shape the check refuses),
 *         FNET_ERR_OUT_OF_MEMORY. */
fnet_status fnet_cp_full(fnet_ctx *ctx, const struct fnet_cp_shape *s, const float *factors,
                         float *X);

/* CP-ALS (Kolda & Bader 2009, Fig. 3.3) settings. */
struct fnet_cp_als_params {
    int max_iters;  // sweeps over the modes at most (the fixed budget), >= 1
    double tol;     // stop when the fit changes by less than this between sweeps (0: never)
    uint64_t seed;  // the random start: factors drawn N(0, 1) from fnet_rng_seed(seed)
};

/* CP-ALS of X at rank s->rank from a random start: each sweep solves every factor in turn by
 * least squares, A_k = X_(k)·KR(others) · (⊛_{l≠k} A_lᵀA_l)^+ (the MTTKRP and the Hadamard
 * product of the Gram matrices, pseudo-inverted by SVD so that rank-deficient steps stay
 * finite). On return the column norms of the factors are balanced (each rank-one term's weight
 * spread evenly over its D factors). factors (fnet_cp_num_params floats) is the caller's; an
 * invalid argument leaves it alone, after any other error it holds no result. fit, when not
 * NULL, receives 1 − ‖X − full‖_F/‖X‖_F (1 for X = 0), in double, from the residual itself;
 * iters, when not NULL, the sweeps run. With tol > 0 each sweep's fit is estimated from the
 * normal equations (the residual formed instead once it is below 1% of ‖X‖_F, where that
 * estimate cancels to rounding); with tol = 0 none is computed before the end.
 * @return FNET_OK, FNET_ERR_INVALID_ARG (a NULL pointer, a shape the check refuses,
 *         max_iters < 1, tol < 0 or not finite, a non-finite X), FNET_ERR_OUT_OF_MEMORY,
 *         FNET_ERR_NUMERIC (an SVD failed or the factors stopped being finite). */
fnet_status fnet_cp_als(fnet_ctx *ctx, const float *X, const struct fnet_cp_shape *s,
                        const struct fnet_cp_als_params *p, float *factors, double *fit,
                        int *iters);

#endif
