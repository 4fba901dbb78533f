/* Truncated SVDs for low-rank layers (docs/lowrank.md): the best rank-r factors A ≈ U·V of a dense
 * matrix, by a full SVD, or by a randomized SVD (Halko, Martinsson & Tropp 2011: a Gaussian range
 * finder with power iterations, then the SVD of a small matrix) when A is too large for a full
 * one. Host-side: every pointer is host memory, the linear algebra is `la` (a backend's host_la).
 * The split of the singular values is balanced: U = Ũ·√Σ, V = √Σ·Ṽᵀ. */
#ifndef FNET_LOWRANK_SVD_H
#define FNET_LOWRANK_SVD_H

#include "core/backend.h"

/* Above this many elements (m·n), fnet_lowrank_svd uses the randomized SVD, unless its sketch of
 * max_rank + FNET_LOWRANK_OVERSAMPLE columns is half of min(m, n) or more (then it would save
 * little and be less exact). */
#define FNET_LOWRANK_FULL_SVD_MAX ((int64_t)1 << 22)
/* Oversampling and power iterations of the randomized SVD (Halko et al.'s p and q). */
#define FNET_LOWRANK_OVERSAMPLE 10
#define FNET_LOWRANK_POWER_ITERS 3

/* How the rank is chosen: at most max_rank (>= 1), and, when 0 < energy <= 1, the smallest r
 * whose leading singular values hold that fraction of Σσ² (energy 0: max_rank alone). */
struct fnet_lowrank_cut {
    int64_t max_rank;
    double energy;
};

/* A (m, n) ≈ U (m, r) · V (r, n), the best rank-r approximation (Eckart–Young) under the cut,
 * with U = Ũ·√Σ and V = √Σ·Ṽᵀ; *U and *V are fnet_malloc'd (the caller frees), *r the rank.
 * randomized: -1 chooses by size (FNET_LOWRANK_FULL_SVD_MAX above), 0 forces the full SVD, 1 the
 * randomized one (its Gaussian test matrix drawn from seed). With the randomized SVD and an
 * energy cut, the energy is that of the r + p singular values it computes.
 * @return FNET_OK, FNET_ERR_INVALID_ARG (sizes < 1, max_rank outside 1..min(m, n), energy
 *         outside [0, 1], a non-finite A), FNET_ERR_NUMERIC (an SVD did not converge),
 *         FNET_ERR_OUT_OF_MEMORY. */
fnet_status fnet_lowrank_svd(fnet_ctx *ctx, const struct fnet_host_la *la, const float *A,
                             int64_t m, int64_t n, const struct fnet_lowrank_cut *cut,
                             int randomized, uint64_t seed, int64_t *r, float **U, float **V);

#endif
