/* Low-rank layers: W = U·V with U (n_out, r) and V (r, n_in), the two matrices of two stacked
 * nn.Linear layers without a bias between them, and block-circulant layers: W made of
 * (n_out/b)·(n_in/b) circulant b×b blocks, each given by its first column and applied through
 * FFTs. docs/lowrank.md and docs/circulant.md have the math. */
#ifndef FACTORNET_LOWRANK_H
#define FACTORNET_LOWRANK_H

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

/** How fnet_layer_init() draws a low-rank layer. */
typedef enum fnet_lowrank_init {
    /** The truncated SVD of a dense matrix drawn by the initializer: U = Ũ·√Σ, V = √Σ·Ṽᵀ, the
     *  best rank-r approximation of a dense layer's initial W (Khodak et al. 2021). The default. */
    FNET_LOWRANK_INIT_SPECTRAL = 0,
    /** U and V drawn i.i.d. so that the entries of U·V have the initializer's variance. */
    FNET_LOWRANK_INIT_RANDOM = 1,
} fnet_lowrank_init;

/** Settings of a low-rank layer; get them from fnet_lowrank_params_default(). */
typedef struct fnet_lowrank_params {
    int64_t rank;           /**< r, 1..min(n_in, n_out); default 32 */
    bool bias;              /**< default true */
    fnet_lowrank_init init; /**< default FNET_LOWRANK_INIT_SPECTRAL */
    double energy;          /**< fnet_lowrank_from_dense: the smallest rank whose singular values
                                 hold this fraction of Σσ², in (0, 1], capped at rank; 0 (the
                                 default): rank alone */
} fnet_lowrank_params;

FNET_API fnet_lowrank_params fnet_lowrank_params_default(void);

/** Create a stand-alone low-rank layer n_in -> n_out; parameters zero (see fnet_layer_init()).
 *  @param[out] out freed by the caller with fnet_layer_free().
 *  @return FNET_OK, FNET_ERR_INVALID_ARG (a size < 1, a rank outside 1..min(n_in, n_out), an
 *          unknown init; the message names it), FNET_ERR_OUT_OF_MEMORY. */
FNET_API fnet_status fnet_lowrank_create(fnet_ctx *ctx, int64_t n_in, int64_t n_out,
                                         const fnet_lowrank_params *p, fnet_layer **out);

/** Append a low-rank layer of n_out outputs to a model. */
FNET_API fnet_status fnet_model_add_lowrank(fnet_model *m, int64_t n_out,
                                            const fnet_lowrank_params *p);

/** The truncated SVD of a dense W (n_out, n_in; host memory) as a new stand-alone low-rank layer
 *  with zero bias: the best approximation (Eckart–Young) of rank p->rank, or of the smallest
 *  rank holding the fraction p->energy of W's Σσ² (capped at p->rank); a randomized SVD for
 *  matrices of more than 2^22 elements when p->rank + 10 is below half of min(n_out, n_in)
 *  (docs/lowrank.md).
 *  @return FNET_OK, FNET_ERR_INVALID_ARG (sizes, rank, energy outside [0, 1], a non-finite W),
 *          FNET_ERR_NUMERIC (an SVD did not converge), FNET_ERR_OUT_OF_MEMORY. */
FNET_API fnet_status fnet_lowrank_from_dense(fnet_ctx *ctx, const float *W, int64_t n_out,
                                             int64_t n_in, const fnet_lowrank_params *p,
                                             fnet_layer **out);

/** The rank of a low-rank layer. @return FNET_OK, FNET_ERR_INVALID_ARG (not a low-rank layer). */
FNET_API fnet_status fnet_lowrank_layer_rank(const fnet_layer *layer, int64_t *rank);

/** Settings of a block-circulant layer; get them from fnet_circ_params_default(). */
typedef struct fnet_circ_params {
    int64_t block; /**< b, dividing n_in and n_out; default 64 */
    bool bias;     /**< default true */
} fnet_circ_params;

FNET_API fnet_circ_params fnet_circ_params_default(void);

/** Create a stand-alone block-circulant layer n_in -> n_out: (n_out/b)·(n_in/b) circulant b×b
 *  blocks, parameters c (n_out/b, n_in/b, b) (each block's first column) then the bias; zero
 *  (see fnet_layer_init(), which draws c as a dense layer of the same fans draws W).
 *  @return FNET_OK, FNET_ERR_INVALID_ARG (a block that does not divide both sizes; the message
 *          names the size), FNET_ERR_UNSUPPORTED (a backend without FFTs), FNET_ERR_OUT_OF_MEMORY. */
FNET_API fnet_status fnet_circ_create(fnet_ctx *ctx, int64_t n_in, int64_t n_out,
                                      const fnet_circ_params *p, fnet_layer **out);

/** Append a block-circulant layer of n_out outputs to a model. */
FNET_API fnet_status fnet_model_add_circ(fnet_model *m, int64_t n_out, const fnet_circ_params *p);

#ifdef __cplusplus
}
#endif
#endif
