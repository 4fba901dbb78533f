/* The paired-index view of a TT-matrix shape (docs/tt_algebra.md, "Paired indices"), shared by the
 * TT algebra (tt_algebra.c) and the tensor-ring algebra (tr_algebra.c): i_k and j_k paired into
 * one index of size s_k = m[k]·n[k], the bound a cut at a bond puts on a rank, the permutation
 * between the paired tensor and the dense W, and the truncation rule of TT-SVD and rounding.
 * Defined in tt_algebra.c; host memory only. */
#ifndef FNET_TN_TT_PAIRED_H
#define FNET_TN_TT_PAIRED_H

#include "tn/tt.h"

/* FNET_OK when 1 <= d <= FNET_TT_MAX_D, every mode >= 1 and M, N are representable (the ranks
 * are not looked at); FNET_ERR_INVALID_ARG naming the core otherwise. */
fnet_status fnet_tt_check_modes(fnet_ctx *ctx, const struct fnet_tt_shape *s);

/* min(Π_{l<k} s_l, Π_{l>=k} s_l) for 0 < k < d: the rank of the (Π_{l<k} s_l, Π_{l>=k} s_l)
 * unfolding of the paired tensor at most. Products saturate at INT64_MAX; they are stored in
 * *left and *right when those are not NULL. */
int64_t fnet_tt_bond_bound(const struct fnet_tt_shape *s, int k, int64_t *left, int64_t *right);

/* "m{a}*n{a}*...*m{b-1}*n{b-1}" into buf (cap bytes, NUL-terminated, cut at cap): the product a
 * message names as a bound. */
void fnet_tt_mode_names(char *buf, size_t cap, int a, int b);

/* fnet_tt_num_params of a shape whose ranks are >= 1, or INT64_MAX when it overflows. */
int64_t fnet_tt_num_params_sat(const struct fnet_tt_shape *s);

/* *size = M·N, the floats of a dense W (M, N) of a shape that passed fnet_tt_check_modes;
 * FNET_ERR_INVALID_ARG when that many doubles are not addressable. */
fnet_status fnet_tt_dense_size(fnet_ctx *ctx, const struct fnet_tt_shape *s, int64_t *size);

/* Between the paired order (i_0, j_0, i_1, j_1, ..) of the full tensor and the dense
 * W[(i_0..i_{d-1}), (j_0..j_{d-1})] (M, N), both M·N floats that do not overlap: to_dense writes
 * dst (M, N) from the paired src, else the paired dst from src (M, N). Only s->d, s->m and s->n
 * are read. */
void fnet_tt_permute_paired(const struct fnet_tt_shape *s, const float *src, float *dst,
                            bool to_dense);

/* The truncation rule of TT-SVD and rounding: of the singular values S (kk, descending), the
 * smallest rank r >= 1 whose discarded S[r..kk) have Σ S_i² <= delta² (summed from the smallest,
 * in double), then at most max_rank when max_rank > 0. */
int64_t fnet_tt_truncation_rank(const float *S, int64_t kk, double delta, int64_t max_rank);

/* One step of the sequential truncated SVDs of TT-SVD and TR-SVD: C (rows, cols) = U·S·Vt
 * (workspaces U, S, Vt sized for min(rows, cols) triplets); the rank r is max_rank (at most
 * min(rows, cols)) when exact, else fnet_tt_truncation_rank(S, .., delta, max_rank); U[:, :r]
 * is appended to staged at *off (advanced) and C becomes diag(S[:r])·Vt[:r, :] (r, cols), the
 * next step's input. *r set. @return FNET_OK or the SVD's FNET_ERR_NUMERIC. */
fnet_status fnet_tt_svd_step(fnet_ctx *ctx, float *C, int64_t rows, int64_t cols, float *U,
                             float *S, float *Vt, double delta, int64_t max_rank, bool exact,
                             float *staged, int64_t *off, int64_t *r);

#endif
