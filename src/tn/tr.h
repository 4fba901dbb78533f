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
 * m_l·n_l, Π_{l>=k} m_l·n_l) (the most a cut of the ring at bonds 0 and k can use), the sizes
 * representable. FNET_ERR_INVALID_ARG otherwise, the message naming the bond and the bound. */
fnet_status fnet_tr_shape_check(fnet_ctx *ctx, const struct fnet_tt_shape *s);

/* W (M, N) = the dense matrix of the ring's cores. */
fnet_status fnet_tr_full(fnet_ctx *ctx, const struct fnet_tt_shape *s, const float *cores,
                         float *W);

/* TR-SVD (Zhao et al. 2016, Alg. 1) of a dense W (M, N) into a ring of s->d cores with the modes
 * s->m, s->n and the ring rank R = s->r[0] = s->r[d] given: the unfolding (i_0 j_0, rest) of W's
 * paired tensor cut to exactly R·s->r[1] singular triplets, split into G_0's (R, ., r_1), the
 * rest a TT-SVD of the remainder (r_1, s_1, .., s_{d-1}, R), each later rank the smallest whose
 * discarded singular values have norm <= eps·‖W‖_F/sqrt(d-1) and at most s->r[k] (eps 0: the
 * ranks s->r[k] as given). On success *cores (fnet_malloc, the caller frees) holds the cores
 * and s->r the ranks used. An exact ring of ranks <= s->r is recovered to rounding.
 * @return FNET_OK, FNET_ERR_INVALID_ARG (a shape fnet_tr_shape_check refuses, a non-finite W,
 *         eps < 0), FNET_ERR_OUT_OF_MEMORY, FNET_ERR_NUMERIC (an SVD failed). */
fnet_status fnet_tr_svd(fnet_ctx *ctx, const float *W, double eps, struct fnet_tt_shape *s,
                        float **cores);

#endif
