/* Layers: the public face of the layer table. A layer maps x (B, n_in) to y (B, n_out); its
 * parameters are a slice of a model's flat vector, or its own when it stands alone. Which
 * pointers are host memory and which backend memory: factornet/memory.h. */
#ifndef FACTORNET_LAYER_H
#define FACTORNET_LAYER_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <factornet/export.h>
#include <factornet/status.h>
#include <factornet/ctx.h>
#include <factornet/rng.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Opaque layer. */
typedef struct fnet_layer fnet_layer;

/** Layer kinds; the spec names are in brackets. */
typedef enum fnet_layer_kind {
    FNET_LAYER_DENSE = 0,   /**< "dense:N": y = x·Wᵀ + b, W (n_out, n_in) */
    FNET_LAYER_RELU = 1,    /**< "relu" */
    FNET_LAYER_TANH = 2,    /**< "tanh" */
    FNET_LAYER_SIGMOID = 3, /**< "sigmoid" */
    FNET_LAYER_DROPOUT = 4, /**< "dropout:P": inverted dropout, identity when not training */
    FNET_LAYER_TT = 5,      /**< "tt:N": tensor-train matrix (factornet/tt.h) */
    FNET_LAYER_LOWRANK = 6, /**< "lowrank:N": U·V factorization (factornet/lowrank.h) */
    FNET_LAYER_CIRC = 7,    /**< "circ:N": block-circulant (factornet/lowrank.h) */
    FNET_LAYER_SPARSE = 8,  /**< "sparse:N": CSR sparse (factornet/sparse.h) */
    FNET_LAYER_TR = 9,      /**< "tr:N": tensor ring (factornet/tn.h) */
    FNET_LAYER_TUCKER = 10, /**< "tucker:N": Tucker core and factors (factornet/tn.h) */
    FNET_LAYER_CP = 11,     /**< "cp:N": CP (CANDECOMP/PARAFAC) factors (factornet/tn.h) */
} fnet_layer_kind;

/** Weight initializers (biases start at zero). fan_in/fan_out are n_in/n_out. */
typedef enum fnet_init {
    FNET_INIT_GLOROT_UNIFORM = 0, /**< U(-a, a), a = sqrt(6 / (fan_in + fan_out)) (default) */
    FNET_INIT_GLOROT_NORMAL = 1,  /**< N(0, 2 / (fan_in + fan_out)) */
    FNET_INIT_HE = 2,             /**< N(0, 2 / fan_in) */
    FNET_INIT_NORMAL = 3,         /**< N(0, 0.01²) */
    FNET_INIT_UNIFORM = 4,        /**< U(-0.05, 0.05) */
} fnet_init;

/** Name of a layer kind as written in a spec ("dense", "relu", ...). */
FNET_API const char *fnet_layer_kind_name(fnet_layer_kind kind);

/** Create a stand-alone dense layer, y = x·Wᵀ + b, parameters zero (see fnet_layer_init()).
 *  @param n_in, n_out  > 0.   @param bias  whether it has a bias.
 *  @param[out] out  the layer, freed by the caller with fnet_layer_free().
 *  @return FNET_OK, FNET_ERR_INVALID_ARG, FNET_ERR_OUT_OF_MEMORY. */
FNET_API fnet_status fnet_dense_create(fnet_ctx *ctx, int64_t n_in, int64_t n_out, bool bias,
                                       fnet_layer **out);

/** Create an element-wise activation layer (RELU, TANH or SIGMOID) of width n.
 *  @return FNET_OK, FNET_ERR_INVALID_ARG, FNET_ERR_OUT_OF_MEMORY. */
FNET_API fnet_status fnet_activation_create(fnet_ctx *ctx, fnet_layer_kind kind, int64_t n,
                                            fnet_layer **out);

/** Create an inverted-dropout layer of width n that drops with probability p in [0, 1).
 *  @return FNET_OK, FNET_ERR_INVALID_ARG, FNET_ERR_OUT_OF_MEMORY. */
FNET_API fnet_status fnet_dropout_create(fnet_ctx *ctx, int64_t n, float p, fnet_layer **out);

/** Free a layer; NULL is a no-op. A layer added to a model is freed by the model. */
FNET_API void fnet_layer_free(fnet_layer *layer);

/** Initialize the parameters (weights by `init`, biases zero) drawing from `rng` (host memory):
 *  drawn on the host and uploaded, so the same rng state gives the same layer on every backend.
 *  @return FNET_OK, FNET_ERR_INVALID_ARG, FNET_ERR_OUT_OF_MEMORY, FNET_ERR_NUMERIC (a TT layer's
 *          orthogonalization). */
FNET_API fnet_status fnet_layer_init(fnet_layer *layer, fnet_init init, fnet_rng *rng);

/** Reserve workspaces for batches up to max_batch (forward/backward then never allocate, unless
 *  the ctx's thread count changes: a TT layer keeps a workspace per worker, and its next forward
 *  sizes them anew). Only grows: safe between a forward and its backward.
 *  @return FNET_OK, FNET_ERR_INVALID_ARG, FNET_ERR_OUT_OF_MEMORY. */
FNET_API fnet_status fnet_layer_reserve(fnet_layer *layer, int64_t max_batch);

/** Forward pass.
 *  @param x (batch, n_in), backend memory, borrowed.  @param y (batch, n_out), backend memory,
 *  written.
 *  Reserves workspace first if batch exceeds what was reserved, or (TT layers) if the ctx's
 *  thread count changed since.
 *  @return FNET_OK, FNET_ERR_INVALID_ARG, FNET_ERR_OUT_OF_MEMORY. */
FNET_API fnet_status fnet_layer_forward(fnet_layer *layer, const float *x, int64_t batch, float *y);

/** Backward pass of the last forward on the same x: accumulates into the layer's gradient and
 *  writes dx (batch, n_in) unless dx is NULL.
 *  @param x (batch, n_in) input of the forward, y (batch, n_out) its output, dy (batch, n_out),
 *  dx: all backend memory.
 *  @return FNET_OK, FNET_ERR_INVALID_ARG. */
FNET_API fnet_status fnet_layer_backward(fnet_layer *layer, const float *x, const float *y,
                                         const float *dy, int64_t batch, float *dx);

/** Training mode (dropout active) or evaluation mode (the default for a stand-alone layer). */
FNET_API void fnet_layer_set_training(fnet_layer *layer, bool training);

FNET_API fnet_layer_kind fnet_layer_kind_of(const fnet_layer *layer);
/** The ctx the layer was made on. */
FNET_API fnet_ctx *fnet_layer_ctx(const fnet_layer *layer);
FNET_API int64_t fnet_layer_n_in(const fnet_layer *layer);
FNET_API int64_t fnet_layer_n_out(const fnet_layer *layer);
/** Number of trainable parameters. */
FNET_API int64_t fnet_layer_num_params(const fnet_layer *layer);
/** The layer's parameters and gradient (num_params floats each, backend memory, owned by the
 *  layer or its model); NULL when it has none. */
FNET_API float *fnet_layer_params(fnet_layer *layer);
FNET_API float *fnet_layer_grads(fnet_layer *layer);
/** Host copies: w (num_params floats, host memory) = the parameters; the parameters = w; g (host)
 *  = the gradient. No-ops for a layer without parameters.
 *  @return FNET_OK, FNET_ERR_INVALID_ARG (a NULL layer or buffer). */
FNET_API fnet_status fnet_layer_get_params(const fnet_layer *layer, float *w);
FNET_API fnet_status fnet_layer_set_params(fnet_layer *layer, const float *w);
FNET_API fnet_status fnet_layer_get_grads(const fnet_layer *layer, float *g);
/** Set the gradient to zero (fnet_layer_backward() accumulates into it). */
FNET_API fnet_status fnet_layer_zero_grads(fnet_layer *layer);
/** Multiply-adds ×2 of one forward pass at this batch size. */
FNET_API double fnet_layer_flops(const fnet_layer *layer, int64_t batch);

/** The dense matrix the layer applies: W (n_out, n_in), host memory, such that y = x·Wᵀ (+ bias).
 *  @return FNET_OK, FNET_ERR_UNSUPPORTED for a layer that is not linear, FNET_ERR_OUT_OF_MEMORY. */
FNET_API fnet_status fnet_layer_to_dense(const fnet_layer *layer, float *W);

/** One named tensor of a layer, as stored in a checkpoint ("weight", "bias", ...). */
typedef struct fnet_tensor_info {
    const char *name;   /**< tensor name within the layer */
    int ndim;           /**< 1..4 */
    int64_t shape[4];   /**< row-major shape */
    int64_t offset;     /**< first element within the layer's parameters */
    int64_t numel;      /**< product of the shape */
    bool decay;         /**< subject to L1/L2 regularization (weights yes, biases no) */
} fnet_tensor_info;

/** Number of named tensors of the layer and the i-th of them. */
FNET_API int fnet_layer_num_tensors(const fnet_layer *layer);
FNET_API fnet_status fnet_layer_tensor(const fnet_layer *layer, int i, fnet_tensor_info *info);

#ifdef __cplusplus
}
#endif
#endif
