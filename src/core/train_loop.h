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
    int64_t *perm;                   // the sample order (identity until shuffled)
    float *x;                        // one batch (B, dim) in backend memory
    int32_t *labels;                 // its labels (B)
    fnet_rng rng;                    // seeded with tp->seed, for the shuffles
    fnet_train_stats acc;            // the run so far
};

/* Check the training (and validation, when it has samples) data against m, size the batch
 * (tp->batch; 0 or more than the data: full batch), allocate the buffers and reserve m for the
 * batch. On failure nothing is left allocated. */
fnet_status fnet_train_loop_open(struct fnet_train_loop *L, fnet_model *m,
                                 const fnet_train_params *tp, const fnet_dataset *train,
                                 const fnet_dataset *val);
void fnet_train_loop_close(struct fnet_train_loop *L);

/* The report of an epoch that took `seconds` with the summed loss loss_sum; its validation
 * figures when there is a validation set (else NaN). */
fnet_status fnet_train_loop_epoch_info(struct fnet_train_loop *L, int epoch, int epochs,
                                       double loss_sum, double lr, double seconds,
                                       fnet_epoch_info *info);

/* Set info->params to the model's parameters now (after any TT rounding), count the epoch into
 * L->acc and hand it to on_epoch (when not NULL); true when on_epoch asks to stop. */
bool fnet_train_loop_epoch_end(struct fnet_train_loop *L, fnet_epoch_info *info,
                               fnet_epoch_fn on_epoch, void *user);

/* A loss for a message: "NaN", "Inf", "-Inf" (glibc prints "-nan" for some NaNs), else %g.
 * Returns buf. */
const char *fnet_train_loss_str(double loss, char *buf, size_t cap);

/* The run's samples/s into L->acc; *stats = L->acc when stats is not NULL. */
void fnet_train_loop_stats(struct fnet_train_loop *L, fnet_train_stats *stats);

#endif
