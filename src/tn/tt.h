/* Tensor-train matrices (Oseledets 2011; Novikov et al. 2015): the shape, the core layout and the
 * TT algebra shared by the TT layer, TT-SVD, rounding and the checkpoint code. docs/tt.md has the
 * math. A TT-matrix maps N = n[0]···n[d-1] inputs to M = m[0]···m[d-1] outputs with cores
 * G_k (r[k], m[k], n[k], r[k+1]), r[0] = r[d] = 1, stored back to back, and
 * W[(i_0..i_{d-1}), (j_0..j_{d-1})] = G_0[:, i_0, j_0, :] ··· G_{d-1}[:, i_{d-1}, j_{d-1}, :],
 * multi-indices flattened row-major (first mode most significant). */
#ifndef FNET_TN_TT_H
#define FNET_TN_TT_H

#include "core/internal.h"

#define FNET_TT_MAX_D 8

struct fnet_tt_shape {
    int d;                        // number of cores, 1..FNET_TT_MAX_D
    int64_t m[FNET_TT_MAX_D];     // output modes
    int64_t n[FNET_TT_MAX_D];     // input modes
    int64_t r[FNET_TT_MAX_D + 1]; // ranks, r[0] = r[d] = 1
};

/* Π m, Π n, the number of floats of all cores, and where core k starts. */
int64_t fnet_tt_rows(const struct fnet_tt_shape *s);
int64_t fnet_tt_cols(const struct fnet_tt_shape *s);
int64_t fnet_tt_num_params(const struct fnet_tt_shape *s);
int64_t fnet_tt_core_offset(const struct fnet_tt_shape *s, int k);

/* FNET_OK when d, modes and ranks are consistent: 1 <= d <= 8, modes >= 1, r[0] = r[d] = 1,
 * 1 <= r[k] <= min(r[k-1]·m[k-1]·n[k-1], m[k]·n[k]·r[k+1]) ... (the largest rank a TT-matrix of
 * these modes can have at bond k: min(Π_{l<k} m[l]n[l], Π_{l>=k} m[l]n[l])). The message names the
 * offending core and the bound: "rank 9 exceeds min(m0*n0, ...) = 8 at bond 1". */
fnet_status fnet_tt_shape_check(fnet_ctx *ctx, const struct fnet_tt_shape *s);

/* W (M, N) = the dense matrix of the cores (host memory; uses the backend's sgemm). */
fnet_status fnet_tt_full(fnet_ctx *ctx, const struct fnet_tt_shape *s, const float *cores,
                         float *W);

/* TT-SVD of a dense W (M, N) with s->d, s->m, s->n given: sequential truncated SVDs of the
 * unfoldings of W with paired indices (i_k, j_k), each truncated to the smallest rank whose
 * discarded singular values have norm <= eps·‖W‖_F / sqrt(d-1), and to max_rank when > 0 (eps 0:
 * rank bound only). On success *cores (fnet_malloc, caller frees) holds the cores and s->r the
 * ranks; then ‖W − TT‖_F <= eps·‖W‖_F when only eps limits the ranks.
 * @return FNET_OK, FNET_ERR_INVALID_ARG, FNET_ERR_OUT_OF_MEMORY, FNET_ERR_NUMERIC (SVD failed). */
fnet_status fnet_tt_svd(fnet_ctx *ctx, const float *W, double eps, int64_t max_rank,
                        struct fnet_tt_shape *s, float **cores);

/* TT-rounding (Oseledets 2011, Alg. 2): right-to-left QR orthogonalization, then left-to-right
 * truncated SVDs with the same truncation rule as fnet_tt_svd. Never increases a rank. *out
 * (fnet_malloc) holds the new cores and *out_shape their shape. */
fnet_status fnet_tt_round(fnet_ctx *ctx, const struct fnet_tt_shape *s, const float *cores,
                          double eps, int64_t max_rank, struct fnet_tt_shape *out_shape,
                          float **out);

/* ‖W‖_F and ⟨A, B⟩_F computed in TT form (never the dense matrix), in double. a and b must have
 * the same d, m and n. */
fnet_status fnet_tt_norm(fnet_ctx *ctx, const struct fnet_tt_shape *s, const float *cores,
                         double *norm);
fnet_status fnet_tt_inner(fnet_ctx *ctx, const struct fnet_tt_shape *a, const float *ca,
                          const struct fnet_tt_shape *b, const float *cb, double *dot);

#endif
