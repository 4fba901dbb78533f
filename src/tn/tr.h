/* Tensor-ring matrices (Zhao et al. 2016, "Tensor ring decomposition"; Wang et al. 2018, "Wide
 * compression: tensor ring nets"): a struct fnet_tt_shape whose boundary ranks are equal,
 * r[0] = r[d] = R >= 1 (R = 1 is a TT-matrix), with
 * W[(i_0..i_{d-1}), (j_0..j_{d-1})] = Tr(G_0[:, i_0, j_0, :] · G_1[:, i_1, j_1, :] ··· G_{d-1}[:, i_{d-1}, j_{d-1}, :]),
 * cores G_k (r[k], m[k], n[k], r[k+1]) back to back as for TT (fnet_tt_core_offset), multi-indices
 * row-major. Host-side algebra: every pointer is host memory; the linear algebra is
 * ctx->be->host_la. docs/tn.md has the math. */
#ifndef FNET_TN_TR_H
#define FNET_TN_TR_H

#include "tn/tt.h"

/* FNET_OK when the shape is a valid ring: 1 <= d <= 8 (d >= 2 when R > 1), modes >= 1, r[0] ==
 * r[d] >= 1, every rank >= 1, and at every inner bond k (0 < k < d) r[0]·r[k] <= min(Π_{l<k}
 * m_l·n_l, Π_{l>=k} m_l·n_l) (the most a cut of the ring at bonds 0 and k can use; R = 1 is
 * fnet_tt_shape_check's rule), the sizes representable. FNET_ERR_INVALID_ARG otherwise, the
 * message naming the bond and the bound: "r0*r1 = 2*5 exceeds min(m0*n0, ...) = 8 at bond 1
 * (m0*n0 = 8, m1*n1*m2*n2 = 32)". */
fnet_status fnet_tr_shape_check(fnet_ctx *ctx, const struct fnet_tt_shape *s);

/* W (M, N) = the dense matrix of the ring's cores (cores: fnet_tt_num_params(s) floats), through
 * the backend's sgemm; R = 1 gives fnet_tt_full's W.
 * @return FNET_OK, FNET_ERR_INVALID_ARG (a NULL pointer, a shape fnet_tr_shape_check refuses, a
 *         W too large to address), FNET_ERR_OUT_OF_MEMORY. */
fnet_status fnet_tr_full(fnet_ctx *ctx, const struct fnet_tt_shape *s, const float *cores,
                         float *W);

/* TR-SVD (Zhao et al. 2016, Alg. 1) of a dense W (M, N) into a ring of s->d cores with the modes
 * s->m, s->n and the ring rank R = s->r[0] = s->r[d] given: the unfolding (i_0 j_0, rest) of W's
 * paired tensor cut to exactly R·s->r[1] singular triplets, split into G_0's (R, ., r_1), the
 * rest a TT-SVD of the remainder (r_1, s_1, .., s_{d-1}, R), each later rank the smallest whose
 * discarded singular values have norm <= eps·‖W‖_F/sqrt(d-1) and at most s->r[k] (eps 0: the
 * ranks s->r[k] as given, less only where a remainder unfolding (r_k·s_k, .) has fewer rows). On
 * success *cores (fnet_malloc, the caller frees) holds the cores and s->r the ranks used; on
 * failure *cores is NULL and *s unchanged.
 * Error: ‖W − TR‖_F² <= (the discarded σ² of the first SVD) + Σ_{k>=2} (those of bond k); with
 * only eps limiting the later ranks, <= that first tail + (d-2)/(d-1)·eps²·‖W‖_F².
 * The first SVD mixes the ring index R into bond 1, so the remainder's ranks exceed the ring's:
 * an exact ring of ranks r' (the same R) is recovered to rounding when s->r[1] = r'[1] and
 * s->r[k] >= min(R, r'[1])²·r'[k] for k >= 2 (so with its own ranks when d = 2, R = 1 or
 * r'[1] = 1), not in general with s->r = r' (Batselier 2018, "The trouble with tensor ring
 * decompositions").
 * @return FNET_OK, FNET_ERR_INVALID_ARG (a NULL pointer, a shape fnet_tr_shape_check refuses, a
 *         non-finite W, eps < 0 or not finite), FNET_ERR_OUT_OF_MEMORY, FNET_ERR_NUMERIC (an SVD
 *         failed). */
fnet_status fnet_tr_svd(fnet_ctx *ctx, const float *W, double eps, struct fnet_tt_shape *s,
                        float **cores);

#endif
