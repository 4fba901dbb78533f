/* The trainer: epochs of shuffled minibatches, validation each epoch, a NaN/Inf guard. */
#ifndef FACTORNET_TRAIN_H
#define FACTORNET_TRAIN_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <factornet/export.h>
#include <factornet/status.h>
#include <factornet/model.h>
#include <factornet/optim.h>
#include <factornet/data.h>

#ifdef __cplusplus
extern "C" {
#endif

/** What one epoch did, passed to the epoch callback. NaN where not measured (no validation set). */
typedef struct fnet_epoch_info {
    int epoch;            /**< 1-based */
    int epochs;           /**< planned */
    double train_loss;    /**< mean minibatch loss over the epoch (with regularization) */
    double val_loss;      /**< on the validation set, evaluation mode */
    double val_acc;
    double lr;            /**< the learning rate used in this epoch */
    double seconds;       /**< wall time of the epoch's training steps */
    double samples_per_s; /**< training samples per second of those steps */
    int64_t params;       /**< the model's parameters after this epoch (TT rounding shrinks them) */
} fnet_epoch_info;

/** Called after each epoch; return nonzero to stop training (fnet_train then returns FNET_OK). */
typedef int (*fnet_epoch_fn)(const fnet_epoch_info *info, void *user);
/** Called after each minibatch with the number done and the total of the epoch. */
typedef void (*fnet_batch_fn)(int64_t done, int64_t total, void *user);

/** Where a run stands, for the step hook. */
typedef struct fnet_step_info {
    int epoch;               /**< 0-based */
    int epochs;              /**< planned */
    int64_t step;            /**< 1-based within the epoch (minibatches for L-BFGS and CG) */
    int64_t steps_per_epoch;
    int64_t run_steps;       /**< steps (minibatches) done in this run, this one included */
} fnet_step_info;

/** Called after every optimizer step (after every minibatch's solver call for L-BFGS and CG,
 *  with opt NULL). It may change the model's pruning mask or a sparse layer's pattern
 *  (factornet/sparse.h: gradual pruning, SET, RigL), not its parameter count; it keeps opt's
 *  state consistent itself (the sparse module's hooks do), and the solvers restart their
 *  history when the mask or a pattern changed. A status other than FNET_OK stops training with
 *  it. */
typedef fnet_status (*fnet_step_hook)(fnet_model *m, fnet_optimizer *opt,
                                      const fnet_step_info *info, void *user);

/** A metadata entry of a checkpoint: two UTF-8 strings. */
typedef struct fnet_meta {
    const char *key;
    const char *value;
} fnet_meta;

/** What the trainer does when a minibatch loss is NaN or Inf. */
typedef enum fnet_nan_policy {
    FNET_NAN_STOP = 0,     /**< stop with FNET_ERR_NUMERIC (default) */
    FNET_NAN_ROLLBACK = 1, /**< restore the parameters and optimizer state of the start of the
                                epoch, halve the learning rate and run the epoch again, at most
                                max_rollbacks times in a run; then stop as STOP does */
} fnet_nan_policy;

typedef struct fnet_train_params {
    int64_t batch;        /**< minibatch size; 0 = the whole training set (full batch). Default 32 */
    int epochs;           /**< default 10 */
    uint64_t seed;        /**< shuffling seed; default 1 */
    bool shuffle;         /**< reshuffle every epoch; default true */
    fnet_batch_fn on_batch; /**< optional progress callback; default NULL */
    int tt_round_every;   /**< rank-adaptive training: after every this many epochs (but the last),
                               round the TT layers (fnet_model_tt_round) and rebuild the flat
                               vectors and the optimizer's state; 0 (default) never */
    double tt_eps;        /**< rounding accuracy; default 0.1 (relative Frobenius error) */
    int64_t tt_max_rank;  /**< rounding rank cap, 0 (default) none */
    fnet_nan_policy on_nan; /**< default FNET_NAN_STOP */
    int max_rollbacks;    /**< FNET_NAN_ROLLBACK: at most this many in a run; default 3 */
    fnet_step_hook on_step; /**< optional, see fnet_step_hook; default NULL */
    void *step_user;      /**< passed to on_step */

    /* Runs that survive interruption (docs/design.md, "Checkpoints"). A run's checkpoint holds
     * the model, the optimizer's state (the solver's for L-BFGS and CG), the run's position
     * (epoch, step, the sample order, the shuffling and dropout random states, the learning-rate
     * schedule's place, rollbacks), its settings and a checksum of the training data, so that
     * resuming it continues bit for bit (same backend and thread count) where it stopped. */
    const char *save_path;  /**< the run's checkpoint, written atomically (temporary file and
                                 rename): after every save_every epochs, after the first step
                                 that ends save_every_seconds after the last write, when *stop
                                 stops the run, and when the run ends. NULL (default): none */
    int save_every;         /**< epochs between checkpoints; 0 (default): not by epochs */
    double save_every_seconds; /**< seconds between checkpoints (written after the step that
                                    crosses the mark, also within an epoch); 0 (default): not
                                    by time */
    int keep;               /**< also keep the `keep` newest checkpoints as numbered files beside
                                 save_path, "<stem>.e<E>[s<S>]<ext>" (E epochs and S steps of
                                 the next done), the older ones removed; 0 (default): none */
    const volatile sig_atomic_t *stop; /**< read after every step (every minibatch's solver call
                                 for L-BFGS and CG): when nonzero the run stops there, writes
                                 save_path (when set) and returns FNET_ERR_CANCELLED, the
                                 message saying where it stopped. A signal handler may set it.
                                 NULL (default): never */
    const char *resume_path; /**< continue the run saved in this checkpoint, up to `epochs` in
                                 all (the run's total, not more epochs on top). The model must
                                 have the checkpoint's spec (fnet_model_load() builds it; else
                                 FNET_ERR_SHAPE), and the optimizer settings, batch, seed,
                                 shuffle, TT rounding and NaN settings, the model's loss and
                                 penalties and the training data must be the run's (else
                                 FNET_ERR_INVALID_ARG naming the setting); a damaged checkpoint
                                 or one without a run is FNET_ERR_FORMAT. Nothing changes on
                                 any of these. The caller's on_step hook keeps its own state
                                 (SET/RigL schedules): not in the checkpoint. NULL (default): a
                                 new run */
    const fnet_meta *meta;  /**< the caller's entries, stored in every checkpoint of the run (keys
                                 the checkpoint does not use itself); read them back with
                                 fnet_checkpoint_metadata(). Default NULL */
    int n_meta;
} fnet_train_params;

/** Totals of a training run. */
typedef struct fnet_train_stats {
    int epochs_run;
    int64_t steps;
    double train_seconds;  /**< wall time of the training steps, validation excluded */
    double samples_per_s;  /**< training samples / train_seconds */
    double train_loss, val_loss, val_acc; /**< of the last epoch */
    int rollbacks;         /**< epochs rolled back after a NaN/Inf loss */
    int checkpoints;       /**< checkpoints written to save_path by this call */
    double checkpoint_seconds; /**< wall time of writing them, and of the training data's
                                    checksum that a run with save_path or resume_path takes
                                    first; not in train_seconds */
    int64_t replayed_steps; /**< steps run as a recorded step replayed (a CUDA graph on a GPU:
                                 docs/gpu.md), of `steps` */
} fnet_train_stats;

FNET_API fnet_train_params fnet_train_params_default(void);

/** Train m with the optimizer described by op on `train`, validating on `val` (may be NULL)
 *  after every epoch; `on_epoch` (may be NULL) is called with `user` after each.
 *  On a ctx attached to a job (factornet/dist.h, docs/distributed.md) the call is collective
 *  and data-parallel: tp->batch is the global batch, each rank computes its rows of it, the
 *  gradient is all-reduced, stops and checkpoints are agreed, rank 0 writes the checkpoints,
 *  and the ranks' parameters are compared (a checksum) after every epoch.
 *  The model's loss and regularization settings are used. The datasets must be loaded on the
 *  model's ctx.
 *  @param[out] st totals (may be NULL).
 *  With tp->resume_path the run continues from its checkpoint: the totals in *st, the epochs
 *  reported to on_epoch and the steps to on_step count the whole run.
 *  @return FNET_OK, FNET_ERR_INVALID_ARG (also: a dataset on another ctx, a resume that does not
 *          fit), FNET_ERR_SHAPE (data width or classes do not fit the model), FNET_ERR_NUMERIC (a
 *          NaN or Inf loss: training stopped at that step, the message names the epoch and
 *          step), FNET_ERR_CANCELLED (*tp->stop), FNET_ERR_IO (a checkpoint could not be
 *          written: training stopped there; the previous checkpoint is intact), FNET_ERR_FORMAT
 *          (the resume checkpoint is corrupt or holds no run), FNET_ERR_OUT_OF_MEMORY,
 *          FNET_ERR_DIST (a collective failed), FNET_ERR_INTERNAL (the ranks' parameters
 *          differ). */
FNET_API fnet_status fnet_train(fnet_model *m, const fnet_optim_params *op,
                                const fnet_train_params *tp, const fnet_dataset *train,
                                const fnet_dataset *val, fnet_epoch_fn on_epoch, void *user,
                                fnet_train_stats *st);

/** Like fnet_train() with an optimizer the caller made (and may keep across calls: resuming), on
 *  the model's ctx and for its parameter count: FNET_ERR_INVALID_ARG for another ctx,
 *  FNET_ERR_SHAPE for another count (nothing is changed then). */
FNET_API fnet_status fnet_train_with(fnet_model *m, fnet_optimizer *opt,
                                     const fnet_optim_params *op, const fnet_train_params *tp,
                                     const fnet_dataset *train, const fnet_dataset *val,
                                     fnet_epoch_fn on_epoch, void *user, fnet_train_stats *st);

/** Whether tp->resume_path holds a run that this call of fnet_train() (same m, op, tp, train)
 *  would continue: every check the resume makes (the spec, every setting, the training data's
 *  checksum, the run's state), and a finished run passes too. Nothing changes.
 *  @param[out] epochs_done the epochs the run has done (may be NULL)
 *  @param[out] steps_done the steps of the next epoch it has done (may be NULL)
 *  @return FNET_OK or the status fnet_train() would return for the resume. */
FNET_API fnet_status fnet_train_check_resume(fnet_model *m, const fnet_optim_params *op,
                                             const fnet_train_params *tp,
                                             const fnet_dataset *train, int *epochs_done,
                                             int64_t *steps_done);

/** Accuracy and mean loss (without regularization) of m on d (loaded on m's ctx), in evaluation
 *  mode. On a ctx attached to a job (factornet/dist.h) the call is collective: each rank
 *  evaluates its rows of d and the sums are added up.
 *  @return FNET_OK, FNET_ERR_SHAPE, FNET_ERR_INVALID_ARG (empty dataset, another ctx),
 *  FNET_ERR_OUT_OF_MEMORY, FNET_ERR_DIST. */
FNET_API fnet_status fnet_model_evaluate(fnet_model *m, const fnet_dataset *d, double *accuracy,
                                         double *loss);

#ifdef __cplusplus
}
#endif
#endif
