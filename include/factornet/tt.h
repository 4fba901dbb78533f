/* Tensor-train (TT-matrix) layers (Novikov et al. 2015, "Tensorizing Neural Networks") and the TT
 * algebra on them (Oseledets 2011, "Tensor-Train Decomposition"). docs/tt.md has the math. */
#ifndef FACTORNET_TT_H
#define FACTORNET_TT_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <factornet/export.h>
#include <factornet/status.h>
#include <factornet/ctx.h>
#include <factornet/layer.h>
#include <factornet/model.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Most cores a TT layer may have. */
#define FNET_TT_MAX_CORES 8

/** How a TT layer computes its forward and backward passes. Every plan is a grouping of adjacent
 *  cores, each group merged into one core before the sweep (docs/tt.md). */
typedef enum fnet_tt_plan {
    FNET_TT_PLAN_AUTO = 0,        /**< the cost model chooses the grouping per batch size (default) */
    FNET_TT_PLAN_SWEEP = 1,       /**< no merging: contract x with the cores one by one */
    FNET_TT_PLAN_RECONSTRUCT = 2, /**< all cores merged: the dense W, then the dense GEMMs */
    FNET_TT_PLAN_MERGE = 3,       /**< the grouping given by fnet_tt_params.merge */
} fnet_tt_plan;

/** Settings of a TT layer; get them from fnet_tt_params_default(). */
typedef struct fnet_tt_params {
    int d;          /**< number of cores, 2..8; 0 (default) = from the modes, else 4 (fewer when a
                         size has fewer prime factors) */
    int64_t rank;   /**< inner rank of every bond; default 8 */
    int n_ranks;    /**< when > 0, ranks[0..d-2] give each inner rank (overrides rank); default 0 */
    int64_t ranks[FNET_TT_MAX_CORES - 1];
    int n_in_modes, n_out_modes; /**< when > 0, the modes (in=..., out=...); default 0: chosen */
    int64_t in_modes[FNET_TT_MAX_CORES], out_modes[FNET_TT_MAX_CORES];
    bool bias;       /**< default true */
    bool orthogonal; /**< initialize with orthogonalized cores; default false */
    fnet_tt_plan plan; /**< default FNET_TT_PLAN_AUTO */
    unsigned merge;    /**< FNET_TT_PLAN_MERGE: bit k merges core k with core k+1; default 0 */
    double eps;      /**< fnet_tt_from_dense: relative accuracy (0 = ranks only); default 0 */
    int64_t ring;    /**< tensor-ring layers only (factornet/tn.h): the ring rank r_0 = r_d; 0
                          (default): the largest of ranks when given, else rank. A TT layer
                          refuses any value but 0 */
} fnet_tt_params;

/** What a TT layer is and what its planner chose. */
typedef struct fnet_tt_info {
    int d;
    int64_t in_modes[FNET_TT_MAX_CORES], out_modes[FNET_TT_MAX_CORES];
    int64_t ranks[FNET_TT_MAX_CORES + 1]; /**< r[0] = r[d] = 1 (a tensor ring's: its ring rank) */
    bool ring;            /**< a tensor-ring layer (fnet_tr_create) */
    unsigned merge;       /**< the grouping the planner uses at the batch size asked about */
    int merged_d;         /**< cores after merging */
    double flops_forward; /**< of that grouping at that batch size, merging included */
    double flops_backward;
    double flops_sweep, flops_reconstruct; /**< forward + backward of no and of full merging
                                                (0 for a ring of rank > 1: it never merges whole) */
} fnet_tt_info;

FNET_API fnet_tt_params fnet_tt_params_default(void);

/** Create a stand-alone TT layer n_in -> n_out; parameters zero (see fnet_layer_init()).
 *  @return FNET_OK, FNET_ERR_INVALID_ARG (a mode product that is not the size, a rank that does
 *          not fit the modes, d over 8, a size that does not factor into d modes: the message
 *          names it), FNET_ERR_OUT_OF_MEMORY. */
FNET_API fnet_status fnet_tt_create(fnet_ctx *ctx, int64_t n_in, int64_t n_out,
                                    const fnet_tt_params *p, fnet_layer **out);

/** Append a TT layer of n_out outputs to a model. */
FNET_API fnet_status fnet_model_add_tt(fnet_model *m, int64_t n_out, const fnet_tt_params *p);

/** Shape, ranks and the planner's choice and FLOP counts at batch size `batch`.
 *  @return FNET_OK, FNET_ERR_INVALID_ARG (not a TT layer). */
FNET_API fnet_status fnet_tt_layer_info(const fnet_layer *layer, int64_t batch, fnet_tt_info *info);

/** TT-SVD (Oseledets 2011) of a dense W (n_out, n_in; host memory) into a new stand-alone TT
 *  layer with zero bias (computed on the host, then uploaded): modes as fnet_tt_create() chooses them (or p's), each rank the smallest with
 *  ‖W − TT‖_F <= p->eps·‖W‖_F, capped at p->rank (p->eps 0: the cap alone).
 *  @param[out] out freed by the caller with fnet_layer_free().
 *  @return FNET_OK, FNET_ERR_INVALID_ARG (eps < 0 or NaN, eps 0 with no rank cap, bad shapes),
 *          FNET_ERR_NUMERIC (an SVD failed), FNET_ERR_OUT_OF_MEMORY. */
FNET_API fnet_status fnet_tt_from_dense(fnet_ctx *ctx, const float *W, int64_t n_out, int64_t n_in,
                                        const fnet_tt_params *p, fnet_layer **out);

/** TT-rounding of a stand-alone TT layer in place (on a host copy of the cores, uploaded back):
 *  ranks shrink to the smallest meeting
 *  ‖W − W'‖_F <= eps·‖W‖_F, capped at max_rank when > 0; never grow. The parameters are
 *  reallocated (pointers from fnet_layer_params() become invalid); the bias is kept.
 *  @return FNET_OK, FNET_ERR_INVALID_ARG (not a TT layer, a layer inside a model: use
 *          fnet_model_tt_round(), eps < 0), FNET_ERR_NUMERIC, FNET_ERR_OUT_OF_MEMORY. */
FNET_API fnet_status fnet_tt_layer_round(fnet_layer *layer, double eps, int64_t max_rank);

/** ‖W‖_F of a TT layer's matrix, and ⟨W_a, W_b⟩_F of two TT layers of the same modes, computed
 *  in TT form (never the dense matrix), in double. Biases are not included. */
FNET_API fnet_status fnet_tt_layer_norm(const fnet_layer *layer, double *norm);
FNET_API fnet_status fnet_tt_layer_dot(const fnet_layer *a, const fnet_layer *b, double *dot);

/** Round every TT layer of a model (rank-adaptive training, fnet-train --tt-round-every): layers
 *  whose ranks shrink are replaced and the flat parameter and gradient vectors rebuilt (pointers
 *  from fnet_model_params() become invalid). *changed (may be NULL) is set to whether any rank
 *  changed. @return as fnet_tt_layer_round(); each layer is replaced whole or not at all. */
FNET_API fnet_status fnet_model_tt_round(fnet_model *m, double eps, int64_t max_rank,
                                         bool *changed);

#ifdef __cplusplus
}
#endif
#endif
