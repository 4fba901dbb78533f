/* Pruning and sparse layers (docs/sparse.md): magnitude pruning by a mask on the flat parameter
 * vector (per layer or global; one-shot, iterative and gradual schedules), structured pruning
 * that removes whole neurons, the CSR sparse layer that stores and runs only the weights that
 * are left, and sparse training from scratch (SET, RigL). Which pointers are host memory and
 * which backend memory: factornet/memory.h. */
#ifndef FACTORNET_SPARSE_H
#define FACTORNET_SPARSE_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <factornet/export.h>
#include <factornet/status.h>
#include <factornet/ctx.h>
#include <factornet/layer.h>
#include <factornet/model.h>
#include <factornet/optim.h>
#include <factornet/train.h>
#include <factornet/data.h>
#include <factornet/rng.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- magnitude pruning ---- */

typedef enum fnet_prune_scope {
    FNET_PRUNE_LAYER = 0,  /**< every layer loses the same fraction of its weights */
    FNET_PRUNE_GLOBAL = 1, /**< one threshold across all layers (the default) */
} fnet_prune_scope;

typedef enum fnet_prune_schedule {
    FNET_PRUNE_ONESHOT = 0,   /**< train, prune to the target once, fine-tune */
    FNET_PRUNE_ITERATIVE = 1, /**< train, then `rounds` times: prune a step, retrain (Han et al.
                                   2015); the default */
    FNET_PRUNE_GRADUAL = 2,   /**< prune during training on Zhu & Gupta's (2017) cubic schedule */
} fnet_prune_schedule;

/** Parse "layer", "global" / "oneshot", "iterative", "gradual".
 *  @return FNET_OK or FNET_ERR_INVALID_ARG. */
FNET_API fnet_status fnet_prune_scope_parse(const char *name, fnet_prune_scope *scope);
FNET_API fnet_status fnet_prune_schedule_parse(const char *name, fnet_prune_schedule *schedule);
FNET_API const char *fnet_prune_scope_name(fnet_prune_scope scope);
FNET_API const char *fnet_prune_schedule_name(fnet_prune_schedule schedule);

/** Magnitude pruning: grow the model's mask (fnet_model_set_mask()) so that exactly
 *  round(sparsity·N) of the N prunable weights are pruned, the smallest in magnitude, N counted
 *  per layer (FNET_PRUNE_LAYER) or over the model (FNET_PRUNE_GLOBAL). Prunable: the tensors
 *  that L1/L2 regularization decays (dense weights, TT cores, U and V, circulant vectors; not
 *  biases) of every layer but sparse ones. Pruned weights stay pruned: a target below what is
 *  already pruned leaves those weights as they are. Ties break by position, so the count is exact.
 *  @param opt  may be NULL; else its state of the pruned weights is set to zero as well.
 *  @return FNET_OK, FNET_ERR_INVALID_ARG (sparsity outside [0, 1), NULL model, an optimizer of
 *          another size; nothing changed), FNET_ERR_OUT_OF_MEMORY (nothing changed). */
FNET_API fnet_status fnet_prune_magnitude(fnet_model *m, double sparsity, fnet_prune_scope scope,
                                          fnet_optimizer *opt);

/** The prunable weights (as fnet_prune_magnitude() counts them) and how many are pruned now. */
FNET_API fnet_status fnet_model_pruned(const fnet_model *m, int64_t *pruned, int64_t *prunable);

/** Structured pruning: a new model without the round(fraction·n) neurons of smallest L2 norm
 *  (their incoming weights) of every hidden dense layer whose output reaches another dense layer
 *  through element-wise layers only (activations, dropout): the layer loses those rows and bias
 *  entries, the next dense layer the matching columns, so the model gets smaller, not masked. It
 *  computes what the original computes with those neurons' rows, biases and outgoing columns
 *  masked. Other layers are copied as they are, with their masks (and a sparse layer's pattern);
 *  the loss, L1/L2 and Frobenius-decay settings carry over. At least one neuron stays.
 *  @param[out] out  the new model on m's ctx (freed by the caller); m is unchanged.
 *  @return FNET_OK, FNET_ERR_INVALID_ARG (fraction outside [0, 1)), FNET_ERR_OUT_OF_MEMORY. */
FNET_API fnet_status fnet_prune_neurons(fnet_model *m, double fraction, fnet_model **out);

/** Pruning settings; get them from fnet_prune_params_default(). */
typedef struct fnet_prune_params {
    double sparsity;              /**< target fraction of the prunable weights (structured:
                                       of each layer's neurons) pruned, [0, 1); default 0.9 */
    fnet_prune_scope scope;       /**< default FNET_PRUNE_GLOBAL */
    fnet_prune_schedule schedule; /**< default FNET_PRUNE_ITERATIVE */
    int rounds;                   /**< ITERATIVE: prune-and-retrain rounds, each removing the
                                       same fraction of what is left; default 3 */
    int finetune_epochs;          /**< ONESHOT, ITERATIVE: retraining epochs after each prune;
                                       GRADUAL: epochs after the last prune; default 2 */
    float finetune_lr_scale;      /**< fine-tuning rate = lr times this, in every schedule
                                       (Han et al. retrain at a reduced rate); default 0.3 */
    double gradual_end;           /**< GRADUAL: pruning runs from the first step to this fraction
                                       of the training steps; default 0.75 */
    int64_t gradual_every;        /**< GRADUAL: steps between prunings (Δt); default 100 */
    bool structured;              /**< remove whole neurons (fnet_prune_neurons()); ONESHOT and
                                       ITERATIVE only; default false */
} fnet_prune_params;

FNET_API fnet_prune_params fnet_prune_params_default(void);

/** Train with pruning. ONESHOT and ITERATIVE: tp->epochs of training, then the pruning rounds,
 *  each followed by p->finetune_epochs at the reduced rate (total epochs: tp->epochs +
 *  rounds·finetune_epochs; tp->epochs 0 prunes and fine-tunes a model trained before).
 *  GRADUAL: tp->epochs (at least 1) with the mask growing every gradual_every steps as
 *  s_t = s·(1 − (1 − t/T)³) up to T = gradual_end of the steps, then finetune_epochs more.
 *  on_epoch sees the epochs of all phases numbered as one run. With structured pruning *m is
 *  replaced by the smaller model (the old one freed).
 *  tp->stop stops it as it stops fnet_train() (FNET_ERR_CANCELLED); a schedule cannot be
 *  checkpointed and resumed yet: tp->save_path and resume_path must be NULL.
 *  @return as fnet_train(), FNET_ERR_INVALID_ARG for bad settings, FNET_ERR_UNSUPPORTED for a
 *          save or resume path (nothing trained). */
FNET_API fnet_status fnet_train_pruned(fnet_model **m, const fnet_optim_params *op,
                                       const fnet_train_params *tp, const fnet_prune_params *p,
                                       const fnet_dataset *train, const fnet_dataset *val,
                                       fnet_epoch_fn on_epoch, void *user, fnet_train_stats *st);

/* ---- the CSR sparse layer ---- */

/** A sparse layer y = x·Wᵀ + b, W (n_out, n_in) stored as CSR with nnz entries (spec
 *  "sparse:N:density=D" or "sparse:N:nnz=K"), parameters the nnz values then the bias; the
 *  pattern is drawn uniformly at random by fnet_layer_init().
 *  @return FNET_OK, FNET_ERR_INVALID_ARG (nnz outside 1..n_in·n_out or above 2^31−1, n_in above
 *          2^31−1), FNET_ERR_UNSUPPORTED (the backend lacks the CSR ops), FNET_ERR_OUT_OF_MEMORY. */
FNET_API fnet_status fnet_sparse_create(fnet_ctx *ctx, int64_t n_in, int64_t n_out, int64_t nnz,
                                        fnet_layer **out);

/** A sparse layer holding the nonzero entries of W (n_out, n_in, host memory) and bias (n_out,
 *  host memory; NULL: zero). A W without a nonzero entry keeps one stored zero.
 *  @return as fnet_sparse_create(). */
FNET_API fnet_status fnet_sparse_from_dense(fnet_ctx *ctx, const float *W, const float *bias,
                                            int64_t n_out, int64_t n_in, fnet_layer **out);

/** Stored entries of a sparse layer (0 for another kind). */
FNET_API int64_t fnet_sparse_nnz(const fnet_layer *layer);

/** Replace every dense layer of m with more than `min_sparsity` of its weights zero (pruned) by
 *  the sparse layer of its nonzero weights (fnet_sparse_from_dense()), in place: the spec
 *  changes, outputs stay the same. CSR takes 8 bytes per stored entry against the dense 4 per
 *  weight, so it only saves memory above 50% sparsity (and is faster than dense from batch 32
 *  only below about 15-40% density: docs/sparse.md).
 *  @param[out] converted  layers replaced (may be NULL).
 *  @return FNET_OK, FNET_ERR_INVALID_ARG, FNET_ERR_UNSUPPORTED, FNET_ERR_OUT_OF_MEMORY (m is
 *          then unchanged). */
FNET_API fnet_status fnet_model_sparsify(fnet_model *m, double min_sparsity, int *converted);

/* ---- sparse training from scratch ---- */

typedef enum fnet_sparse_update {
    FNET_SPARSE_STATIC = 0, /**< the pattern drawn at init stays */
    FNET_SPARSE_SET = 1,    /**< Mocanu et al. 2018: drop the smallest |w|, regrow at random */
    FNET_SPARSE_RIGL = 2,   /**< Evci et al. 2020: drop the smallest |w|, regrow where the dense
                                 gradient is largest, drop fraction on a cosine schedule */
} fnet_sparse_update;

/** Parse "static", "set", "rigl". @return FNET_OK or FNET_ERR_INVALID_ARG. */
FNET_API fnet_status fnet_sparse_update_parse(const char *name, fnet_sparse_update *kind);
FNET_API const char *fnet_sparse_update_name(fnet_sparse_update kind);

/** One topology update of every sparse layer of m: drop the round(zeta·nnz) stored weights of
 *  smallest magnitude of each layer and regrow as many at positions not stored: SET at random,
 *  with new weights drawn as the layer's initializer draws them; RigL where the magnitude of the
 *  dense gradient of the loss on (x, labels) is largest, new weights zero. nnz stays exact.
 *  Weights that stay keep their values and optimizer state; new ones start with zero state.
 *  Layers are updated one after the other, each all or nothing: after a failure the layers
 *  before it are updated and the rest unchanged.
 *  @param opt  may be NULL.  @param x (batch, n_in) backend memory, labels host memory: RigL's
 *  batch (NULL for SET).  @param rng  SET's draws (host memory).
 *  @return FNET_OK, FNET_ERR_INVALID_ARG (zeta outside [0, 1], RigL without a batch),
 *          FNET_ERR_OUT_OF_MEMORY. */
FNET_API fnet_status fnet_sparse_update_topology(fnet_model *m, fnet_optimizer *opt,
                                                 fnet_sparse_update kind, double zeta,
                                                 const float *x, const int32_t *labels,
                                                 int64_t batch, fnet_rng *rng);

/** A schedule of topology updates run by the trainer (fnet_train_params.on_step =
 *  fnet_sparse_step_hook, step_user = the schedule). */
typedef struct fnet_sparse_schedule fnet_sparse_schedule;

/** Updates of `kind` every `every` steps (0: at the end of every epoch, SET's choice) until
 *  `end` (fraction of the run's steps; RigL's T_end, default 0.75), dropping zeta (SET: every
 *  time; RigL: zeta/2·(1 + cos(π·t/T_end))) of each layer's weights. RigL draws its gradient
 *  batch of `batch` samples from `data` (loaded on m's ctx).
 *  @return FNET_OK, FNET_ERR_INVALID_ARG, FNET_ERR_OUT_OF_MEMORY. */
FNET_API fnet_status fnet_sparse_schedule_create(fnet_ctx *ctx, fnet_sparse_update kind,
                                                 double zeta, int64_t every, double end,
                                                 const fnet_dataset *data, int64_t batch,
                                                 uint64_t seed, fnet_sparse_schedule **out);
FNET_API void fnet_sparse_schedule_free(fnet_sparse_schedule *s);
/** Updates done so far. */
FNET_API int fnet_sparse_schedule_updates(const fnet_sparse_schedule *s);
/** The fnet_step_hook of a schedule (user = the fnet_sparse_schedule). */
FNET_API fnet_status fnet_sparse_step_hook(fnet_model *m, fnet_optimizer *opt,
                                           const fnet_step_info *info, void *user);

#ifdef __cplusplus
}
#endif
#endif
