/* What the two trainers share (src/core/train.c, step-wise optimizers; src/optim/solver_train.c,
 * L-BFGS and CG): the data checks, the batch buffers and the sample order, and the end of an
 * epoch (validation, the running statistics, the caller's report). */
#ifndef FNET_CORE_TRAIN_LOOP_H
#define FNET_CORE_TRAIN_LOOP_H

#include "core/internal.h"

#include <factornet/data.h>
#include <factornet/model.h>
#include <factornet/rng.h>
#include <factornet/train.h>

struct fnet_train_loop {
    fnet_model *m;
    const fnet_dataset *train, *val; // val NULL when there is no validation set
    int64_t n, B, n_batches;         // samples, batch size, batches per epoch
    int64_t part;                    // the most rows of a batch this rank takes (B alone)
    int64_t *perm;                   // the sample order (identity until shuffled)
    float *x;                        // this rank's rows of one batch (part, dim), backend memory
    int32_t *labels;                 // their labels (part)
    fnet_rng rng;                    // seeded with tp->seed, for the shuffles
    fnet_train_stats acc;            // the run so far
    // the run's checkpoints (src/core/train_ckpt.c)
    uint32_t data_crc;               // of the training set, when saving or resuming
    double last_save;                // fnet_now() of the last checkpoint, or of the start
    char *kept;                      // numbered checkpoints kept (tp->keep), oldest first, each
                                     // followed by '\n'; NULL: none
};

/* Where a run stands between two steps, as a checkpoint records it. */
struct fnet_run_pos {
    int epoch;        // the epoch in progress, 0-based; at an epoch's end, the next one
    int64_t batch;    // its batches done (0 at an epoch's end)
    double loss_sum;  // its summed loss so far
    double seconds;   // its training time so far
    float lr_scale;   // the learning rate's factor from rollbacks (1, halved by each)
    // on_nan rollback, within an epoch: the state at the epoch's start (parameters, then the
    // optimizer's state vectors; snap_floats floats) and its step count, to save (snap, backend
    // memory) or as a resume read it (snap_host, host memory, fnet_free)
    const float *snap;
    float *snap_host;
    int64_t snap_floats, snap_steps;
};

/* Check the training (and validation, when it has samples) data against m, size the batch
 * (tp->batch; 0 or more than the data: full batch), allocate the buffers and reserve m for the
 * batch. On failure nothing is left allocated. */
fnet_status fnet_train_loop_open(struct fnet_train_loop *L, fnet_model *m,
                                 const fnet_train_params *tp, const fnet_dataset *train,
                                 const fnet_dataset *val);
void fnet_train_loop_close(struct fnet_train_loop *L);

/* Batch b (0-based) of the epoch's order into L->x and L->labels: this rank's rows of it when
 * distributed (src/dist), all of them alone. *size: the batch's samples on all ranks; *first,
 * *count: the rows that are this rank's (count 0 on a rank the batch has none for: one row of
 * it is gathered all the same, for fnet_model_loss_grad_part). */
fnet_status fnet_train_loop_gather(struct fnet_train_loop *L, int64_t b, int64_t *size,
                                   int64_t *first, int64_t *count);

/* The report of an epoch that took `seconds` with the summed loss loss_sum; its validation
 * figures when there is a validation set (else NaN). */
fnet_status fnet_train_loop_epoch_info(struct fnet_train_loop *L, int epoch, int epochs,
                                       double loss_sum, double lr, double seconds,
                                       fnet_epoch_info *info);

/* Set info->params to the model's parameters now (after any TT rounding), count the epoch into
 * L->acc and hand it to on_epoch (when not NULL); *stop: whether on_epoch asks to stop (on any
 * rank, when distributed: every rank stops alike). FNET_ERR_DIST when the ranks cannot agree. */
fnet_status fnet_train_loop_epoch_end(struct fnet_train_loop *L, fnet_epoch_info *info,
                                      fnet_epoch_fn on_epoch, void *user, bool *stop);

/* The step hook's status st at si: distributed, a failure on any rank is one on every rank
 * (FNET_ERR_DIST on the others, naming the step), so that all stop there. */
fnet_status fnet_train_loop_hook(struct fnet_train_loop *L, fnet_status st,
                                 const fnet_step_info *si);

/* A loss for a message: "NaN", "Inf", "-Inf" (glibc prints "-nan" for some NaNs), else %g.
 * Returns buf. */
const char *fnet_train_loss_str(double loss, char *buf, size_t cap);

/* Checkpoints of a run (src/core/train_ckpt.c). solver is the L-BFGS/CG solver (opt NULL) or
 * NULL (a first-order run, opt its optimizer). */
struct fnet_solver;

/* Write tp->save_path at pos (and the numbered copy of tp->keep); counts it in L->acc. */
fnet_status fnet_train_ckpt_save(struct fnet_train_loop *L, const fnet_optimizer *opt,
                                 const struct fnet_solver *solver, const fnet_optim_params *op,
                                 const fnet_train_params *tp, const struct fnet_run_pos *pos);

/* Whether a checkpoint is due by time (tp->save_every_seconds since the last). */
bool fnet_train_ckpt_due(const struct fnet_train_loop *L, const fnet_train_params *tp);

/* Read tp->resume_path, check it against the run's settings, model, optimizer and data, then
 * restore the model, opt or solver, the sample order, the random state and L->acc; *pos says
 * where to go on. All or nothing. dry: only the checks (a finished run passes too), nothing
 * changed; pos->epoch and pos->batch say where the run stands. */
fnet_status fnet_train_ckpt_resume(struct fnet_train_loop *L, fnet_optimizer *opt,
                                   struct fnet_solver *solver, const fnet_optim_params *op,
                                   const fnet_train_params *tp, struct fnet_run_pos *pos,
                                   bool dry);

/* After a step within an epoch (at: the position after it): the checkpoint due by time, and a
 * stop request: the checkpoint (with tp->save_path) and FNET_ERR_CANCELLED saying where. */
fnet_status fnet_train_loop_step_end(struct fnet_train_loop *L, const fnet_optimizer *opt,
                                     const struct fnet_solver *solver,
                                     const fnet_optim_params *op, const fnet_train_params *tp,
                                     const struct fnet_run_pos *at);

/* After an epoch's report (at: the next epoch's start; stop: the caller's callback asked to
 * stop): the checkpoint when one is due (every save_every epochs, by time, at the run's end, on
 * a stop) and FNET_ERR_CANCELLED for a stop request before the run's end. */
fnet_status fnet_train_loop_epoch_saves(struct fnet_train_loop *L, const fnet_optimizer *opt,
                                        const struct fnet_solver *solver,
                                        const fnet_optim_params *op,
                                        const fnet_train_params *tp,
                                        const struct fnet_run_pos *at, bool stop);

/* Check tp's checkpoint fields (save_every, keep, ...). */
fnet_status fnet_train_ckpt_check_params(fnet_ctx *ctx, const fnet_train_params *tp);

/* Training seconds since t0 (fnet_now()), the time spent writing checkpoints since L->acc's
 * checkpoint_seconds was ck0 left out. */
double fnet_train_loop_elapsed(const struct fnet_train_loop *L, double t0, double ck0);

/* The run's samples/s into L->acc; *stats = L->acc when stats is not NULL. */
void fnet_train_loop_stats(struct fnet_train_loop *L, fnet_train_stats *stats);

#endif
