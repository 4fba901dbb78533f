/* The model: a sequence of layers over one flat parameter vector and one gradient vector, with
 * the loss-and-gradient oracle that every optimizer uses. Which pointers are host memory and
 * which backend memory: factornet/memory.h. */
#ifndef FACTORNET_MODEL_H
#define FACTORNET_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <factornet/export.h>
#include <factornet/status.h>
#include <factornet/ctx.h>
#include <factornet/layer.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Opaque model. */
typedef struct fnet_model fnet_model;

/** Losses. */
typedef enum fnet_loss {
    FNET_LOSS_CE = 0,  /**< softmax cross-entropy on logits, mean over the batch (default) */
    FNET_LOSS_MSE = 1, /**< ½‖y − onehot(label)‖² summed over classes, mean over the batch */
} fnet_loss;

/** Create an empty model taking n_in inputs.
 *  @param[out] out freed by the caller with fnet_model_free().
 *  @return FNET_OK, FNET_ERR_INVALID_ARG, FNET_ERR_OUT_OF_MEMORY. */
FNET_API fnet_status fnet_model_create(fnet_ctx *ctx, int64_t n_in, fnet_model **out);

/** Build a model from a spec string ("dense:64,relu,dense:10"; grammar in the README), with
 *  parameters initialized by FNET_INIT_GLOROT_UNIFORM from `seed`.
 *  @return FNET_OK, FNET_ERR_FORMAT (the spec does not parse; the message names the item),
 *          FNET_ERR_INVALID_ARG, FNET_ERR_UNSUPPORTED (a kind not built yet), FNET_ERR_OUT_OF_MEMORY. */
FNET_API fnet_status fnet_model_create_from_spec(fnet_ctx *ctx, const char *spec, int64_t n_in,
                                                 uint64_t seed, fnet_model **out);

/** Free a model and its layers; NULL is a no-op. */
FNET_API void fnet_model_free(fnet_model *m);

/** Append layers. Parameters of earlier layers are kept; new ones start at zero. */
FNET_API fnet_status fnet_model_add_dense(fnet_model *m, int64_t n_out);
FNET_API fnet_status fnet_model_add_activation(fnet_model *m, fnet_layer_kind kind);
FNET_API fnet_status fnet_model_add_dropout(fnet_model *m, float p);
/** Append a layer created on the same ctx; the model takes ownership, also on failure.
 *  @return FNET_OK, FNET_ERR_SHAPE (its n_in is not the model's current width), ... */
FNET_API fnet_status fnet_model_add_layer(fnet_model *m, fnet_layer *layer);

/** Replace layer i by `layer` (same n_in and n_out, made on the model's ctx): the flat vectors
 *  are rebuilt with the other layers' values kept; the old layer is freed. The model takes
 *  ownership of `layer`, also on failure (then the model is unchanged).
 *  @return FNET_OK, FNET_ERR_INVALID_ARG, FNET_ERR_SHAPE, FNET_ERR_OUT_OF_MEMORY. */
FNET_API fnet_status fnet_model_replace_layer(fnet_model *m, int i, fnet_layer *layer);

/** Where layer i's parameters start in the flat vector. */
FNET_API int64_t fnet_model_layer_offset(const fnet_model *m, int i);

/** Initialize every layer from `seed` (same seed, same model, on every backend). */
FNET_API fnet_status fnet_model_init(fnet_model *m, fnet_init init, uint64_t seed);

/** The spec string that rebuilds this model's architecture (owned by the model). */
FNET_API const char *fnet_model_spec(const fnet_model *m);
FNET_API int64_t fnet_model_n_in(const fnet_model *m);
FNET_API int64_t fnet_model_n_out(const fnet_model *m);
FNET_API int fnet_model_num_layers(const fnet_model *m);
/** The i-th layer (borrowed; owned by the model). */
FNET_API fnet_layer *fnet_model_layer(fnet_model *m, int i);
FNET_API int64_t fnet_model_num_params(const fnet_model *m);
FNET_API fnet_ctx *fnet_model_ctx(const fnet_model *m);

/** The flat parameter vector and gradient vector (n floats each, backend memory, owned by the
 *  model). The pointers stay valid until a layer is added or replaced. */
FNET_API float *fnet_model_params(fnet_model *m, int64_t *n);
FNET_API float *fnet_model_grads(fnet_model *m, int64_t *n);
/** Host copies of the flat vectors: w (num_params floats, host memory) = the parameters; the
 *  parameters = w; g (host) = the gradient.
 *  @return FNET_OK, FNET_ERR_INVALID_ARG (a NULL model or buffer). */
FNET_API fnet_status fnet_model_get_params(const fnet_model *m, float *w);
FNET_API fnet_status fnet_model_set_params(fnet_model *m, const float *w);
FNET_API fnet_status fnet_model_get_grads(const fnet_model *m, float *g);

/** The pruning mask (factornet/sparse.h prunes with it): one float per parameter, 1 kept and 0
 *  pruned, beside the flat vector. Pruned parameters are set to zero and get a zero gradient from
 *  fnet_model_loss_grad(), so every optimizer and solver leaves them at exactly zero once its
 *  state there is zero too: an optimizer that has taken steps needs fnet_optimizer_apply_mask()
 *  after a new mask (fnet_prune_magnitude() does it). The mask is saved with the model
 *  (docs/sparse.md); fnet_model_set_params() and fnet_model_init() apply it too.
 *  @param mask n floats, host memory, each 0 or 1; NULL removes the mask (nothing pruned).
 *  @return FNET_OK, FNET_ERR_INVALID_ARG (an element not 0 or 1; nothing changed),
 *          FNET_ERR_OUT_OF_MEMORY. */
FNET_API fnet_status fnet_model_set_mask(fnet_model *m, const float *mask);
/** A host copy of the mask: n floats, all 1 when the model has none. */
FNET_API fnet_status fnet_model_get_mask(const fnet_model *m, float *mask);
/** The mask (n floats, backend memory, owned by the model), NULL when none was set. */
FNET_API const float *fnet_model_mask(const fnet_model *m);

/** Loss and regularization: L1 and L2 penalties l1·Σ|w| + ½·l2·Σw² over weights (not biases),
 *  added to the loss that fnet_model_loss_grad() returns. Defaults: CE, 0, 0. */
FNET_API fnet_status fnet_model_set_loss(fnet_model *m, fnet_loss loss);
FNET_API fnet_status fnet_model_set_regularization(fnet_model *m, float l1, float l2);

/** Frobenius decay (Khodak et al. 2021): add λ/2·‖W‖²_F of every layer whose kind computes it
 *  in factored form (low-rank layers: ‖U·V‖²_F, never forming W) to the loss that
 *  fnet_model_loss_grad() returns, with its gradient. Dense layers are not affected (for a dense
 *  W it is the l2 penalty above), nor block-circulant ones (‖W‖²_F = b·‖c‖², the l2 penalty with
 *  b·l2), nor TT layers. @param lambda finite, >= 0; default 0.
 *  @return FNET_OK, FNET_ERR_INVALID_ARG. */
FNET_API fnet_status fnet_model_set_frobenius_decay(fnet_model *m, float lambda);

/** Training mode (dropout active) or evaluation mode (the default). */
FNET_API void fnet_model_set_training(fnet_model *m, bool training);

/** Size activations and workspaces for batches up to max_batch; later calls with a larger batch
 *  grow them once. @return FNET_OK, FNET_ERR_INVALID_ARG, FNET_ERR_OUT_OF_MEMORY. */
FNET_API fnet_status fnet_model_reserve(fnet_model *m, int64_t max_batch);

/** Forward pass. @param x (batch, n_in), backend memory. @param out (batch, n_out), host
 *  memory: the logits, copied; may be NULL (then fnet_model_get_output() or fnet_model_output()
 *  reads them). @return FNET_OK, FNET_ERR_INVALID_ARG, FNET_ERR_OUT_OF_MEMORY. */
FNET_API fnet_status fnet_model_forward(fnet_model *m, const float *x, int64_t batch, float *out);
/** The model's output buffer of the last forward, (batch, n_out), backend memory. */
FNET_API const float *fnet_model_output(const fnet_model *m);
/** A host copy of the last forward's output: y (batch, n_out), host memory.
 *  @return FNET_OK, FNET_ERR_INVALID_ARG (no forward yet, NULL y). */
FNET_API fnet_status fnet_model_get_output(const fnet_model *m, float *y);

/** The loss-and-gradient oracle: mean loss over the batch plus the regularization penalty, and
 *  its gradient with respect to the flat parameter vector.
 *  @param x (batch, n_in), backend memory  @param labels (batch) class indices in [0, n_out),
 *  host memory
 *  @param[out] loss  the loss (double)
 *  @param[out] grad  n floats, backend memory; NULL or fnet_model_grads() leaves the gradient in
 *  the model's own vector.
 *  On a ctx attached to a job (factornet/dist.h) the call is collective: every rank passes the
 *  whole batch, computes the loss and gradient of its share of the rows (fnet_dist_shard), and
 *  the all-reduce leaves the whole batch's on every rank.
 *  @return FNET_OK, FNET_ERR_INVALID_ARG (a label out of range, batch < 1), FNET_ERR_NUMERIC
 *          (the loss is NaN or Inf; the gradient is then unspecified), FNET_ERR_OUT_OF_MEMORY,
 *          FNET_ERR_DIST (an all-reduce failed). */
FNET_API fnet_status fnet_model_loss_grad(fnet_model *m, const float *x, const int32_t *labels,
                                          int64_t batch, double *loss, float *grad);

/** Loss (without regularization) and the number of correct argmax predictions on one batch:
 *  x backend memory, labels host memory, as fnet_model_loss_grad(). */
FNET_API fnet_status fnet_model_loss_correct(fnet_model *m, const float *x, const int32_t *labels,
                                             int64_t batch, double *loss, int64_t *correct);

#ifdef __cplusplus
}
#endif
#endif
