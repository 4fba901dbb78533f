/* More tensor networks beside the tensor train (factornet/tt.h): tensor-ring, Tucker and CP
 * layers, each with its initialization from a trained dense matrix. Every format factors the
 * dense layer's W (n_out, n_in) read as a tensor: its output size as modes m_0..m_{q-1} and its
 * input size as modes n_0..n_{p-1}, row-major, first mode most significant. docs/tn.md has the
 * math, the costs and the derivations. */
#ifndef FACTORNET_TN_H
#define FACTORNET_TN_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <factornet/export.h>
#include <factornet/status.h>
#include <factornet/ctx.h>
#include <factornet/layer.h>
#include <factornet/model.h>
#include <factornet/tt.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Tensor ring (Zhao et al. 2016; Wang et al. 2018) ----
 * W[(i), (j)] = Tr(G_0[:, i_0, j_0, :] ··· G_{d-1}[:, i_{d-1}, j_{d-1}, :]), cores G_k (r_k, m_k,
 * n_k, r_{k+1}) with r_0 = r_d = R, the ring rank. Settings are the TT layer's (fnet_tt_params):
 * d, modes, rank or ranks (the inner ranks r_1..r_{d-1}), bias, plan (AUTO, SWEEP or MERGE; a
 * ring of R > 1 cannot be merged into one core, so RECONSTRUCT and the mask merging every core
 * are refused) and ring (the ring rank; 0: the largest of ranks when given, else rank). A
 * uniform rank is a maximum: each inner rank is capped so that R·r_k fits its bond, and the
 * modes, when chosen, are ordered where R fits every bond. Rings have no rounding
 * (fnet_model_tt_round and rank-adaptive training leave them as they are). */

/** Create a stand-alone tensor-ring layer n_in -> n_out; parameters zero (fnet_layer_init()).
 *  @return FNET_OK, FNET_ERR_INVALID_ARG (as fnet_tt_create(), a ring rank < 1, R·r_k above
 *          what bond k of the modes can carry, orthogonal or the reconstruct plan asked for: the
 *          message names it), FNET_ERR_OUT_OF_MEMORY. */
FNET_API fnet_status fnet_tr_create(fnet_ctx *ctx, int64_t n_in, int64_t n_out,
                                    const fnet_tt_params *p, fnet_layer **out);

/** Append a tensor-ring layer of n_out outputs to a model. */
FNET_API fnet_status fnet_model_add_tr(fnet_model *m, int64_t n_out, const fnet_tt_params *p);

/** TR-SVD (Zhao et al. 2016, Alg. 1) of a dense W (n_out, n_in; host memory) into a new
 *  stand-alone tensor-ring layer with zero bias: modes as fnet_tr_create() chooses them, the
 *  ring rank and r_1 as asked, each later rank the smallest with its share of
 *  ‖W − TR‖_F <= p->eps·‖W‖_F, capped at the asked rank (p->eps 0: the ranks as asked).
 *  @return as fnet_tr_create(), FNET_ERR_NUMERIC (an SVD failed). */
FNET_API fnet_status fnet_tr_from_dense(fnet_ctx *ctx, const float *W, int64_t n_out, int64_t n_in,
                                        const fnet_tt_params *p, fnet_layer **out);

/* ---- Tucker (Tucker 1966; De Lathauwer et al. 2000) ----
 * W read as the tensor (m_0..m_{q-1}, n_0..n_{p-1}) = core ×_k U_k: a core (t_0..t_{q-1},
 * s_0..s_{p-1}) and one factor per mode, U_k (m_k, t_k) for the outputs and (n_k, s_k) for the
 * inputs. With one mode a side (the default) it is Tucker-2 of the matrix: W = U·C·Vᵀ. */

/** Most modes of a Tucker or CP layer, its input and output modes together. */
#define FNET_TN_MAX_MODES 8

/** Settings of a Tucker layer; get them from fnet_tucker_params_default(). */
typedef struct fnet_tucker_params {
    int n_in_modes, n_out_modes; /**< 0 (default): one mode, the size itself */
    int64_t in_modes[FNET_TN_MAX_MODES], out_modes[FNET_TN_MAX_MODES];
    int64_t rank;  /**< every rank, capped at its mode's size; default 16 */
    int n_ranks;   /**< when > 0: ranks[0..] for the output modes, then the input modes
                        (one per mode; overrides rank); default 0 */
    int64_t ranks[FNET_TN_MAX_MODES];
    bool bias;     /**< default true */
    int hooi_iters; /**< fnet_tucker_from_dense: HOOI sweeps after the HOSVD; default 2 */
} fnet_tucker_params;

FNET_API fnet_tucker_params fnet_tucker_params_default(void);

/** Create a stand-alone Tucker layer n_in -> n_out; parameters zero (fnet_layer_init()).
 *  @return FNET_OK, FNET_ERR_INVALID_ARG (modes that do not multiply to the sizes, a rank outside
 *          1..its mode's size, the wrong count of ranks: the message names it),
 *          FNET_ERR_OUT_OF_MEMORY. */
FNET_API fnet_status fnet_tucker_create(fnet_ctx *ctx, int64_t n_in, int64_t n_out,
                                        const fnet_tucker_params *p, fnet_layer **out);

/** Append a Tucker layer of n_out outputs to a model. */
FNET_API fnet_status fnet_model_add_tucker(fnet_model *m, int64_t n_out,
                                           const fnet_tucker_params *p);

/** Truncated HOSVD of a dense W (n_out, n_in; host memory), refined by p->hooi_iters HOOI sweeps,
 *  into a new stand-alone Tucker layer with zero bias. rel_err (may be NULL) receives
 *  ‖W − Tucker‖_F / ‖W‖_F. @return as fnet_tucker_create(), FNET_ERR_NUMERIC (an SVD failed). */
FNET_API fnet_status fnet_tucker_from_dense(fnet_ctx *ctx, const float *W, int64_t n_out,
                                            int64_t n_in, const fnet_tucker_params *p,
                                            fnet_layer **out, double *rel_err);

/* ---- CP (Hitchcock 1927; Lebedev et al. 2015) ----
 * W read as the tensor (m_0..m_{q-1}, n_0..n_{p-1}) = Σ_{ρ<R} of outer products of the factors'
 * columns, one factor per mode: A_k (m_k, R) for the outputs, B_k (n_k, R) for the inputs. The
 * layer runs as the low-rank product W = KR(A)·KR(B)ᵀ of the Khatri–Rao products of each side. */

/** Settings of a CP layer; get them from fnet_cp_params_default(). */
typedef struct fnet_cp_params {
    int n_in_modes, n_out_modes; /**< 0 (default): two modes, the size's most balanced
                                      factorization (one when the size is prime) */
    int64_t in_modes[FNET_TN_MAX_MODES], out_modes[FNET_TN_MAX_MODES];
    int64_t rank;     /**< R >= 1; default 32 */
    bool bias;        /**< default true */
    int als_iters;    /**< fnet_cp_from_dense: CP-ALS sweeps at most; default 100 */
    double als_tol;   /**< ... stopping when the fit changes less; default 1e-7 */
    uint64_t seed;    /**< ... the random start; default 1 */
} fnet_cp_params;

FNET_API fnet_cp_params fnet_cp_params_default(void);

/** Create a stand-alone CP layer n_in -> n_out; parameters zero (fnet_layer_init()).
 *  @return FNET_OK, FNET_ERR_INVALID_ARG (modes that do not multiply to the sizes, a rank < 1:
 *          the message names it), FNET_ERR_OUT_OF_MEMORY. */
FNET_API fnet_status fnet_cp_create(fnet_ctx *ctx, int64_t n_in, int64_t n_out,
                                    const fnet_cp_params *p, fnet_layer **out);

/** Append a CP layer of n_out outputs to a model. */
FNET_API fnet_status fnet_model_add_cp(fnet_model *m, int64_t n_out, const fnet_cp_params *p);

/** CP-ALS of a dense W (n_out, n_in; host memory) from a random start (p->seed), at most
 *  p->als_iters sweeps, into a new stand-alone CP layer with zero bias. fit (may be NULL)
 *  receives 1 − ‖W − CP‖_F / ‖W‖_F: CP-ALS finds a local optimum, and a fit well below 1 means
 *  the rank is too small for W (or the sweeps too few); fnet-compress warns below 0.5.
 *  @return as fnet_cp_create(), FNET_ERR_NUMERIC (the factors stopped being finite). */
FNET_API fnet_status fnet_cp_from_dense(fnet_ctx *ctx, const float *W, int64_t n_out,
                                        int64_t n_in, const fnet_cp_params *p, fnet_layer **out,
                                        double *fit);

#ifdef __cplusplus
}
#endif
#endif
