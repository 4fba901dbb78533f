/* A training step replayed (docs/gpu.md, "The step as one graph"): the pieces the data, model
 * and optimizer modules give the trainer (src/core/train_replay.c) so that a step can be
 * recorded once with the backend's graph_make and run again with nothing but one upload of the
 * step's rows, labels and optimizer scalars before it, and nothing read back until the segment
 * of replayed steps ends. */
#ifndef FNET_CORE_REPLAY_H
#define FNET_CORE_REPLAY_H

#include "core/backend.h"

#include <factornet/data.h>
#include <factornet/model.h>
#include <factornet/optim.h>

/* The storage rows and labels (host) of positions idx[0..B) of d, as fnet_dataset_batch would
 * gather them; the positions were checked by the caller (the trainer's permutation). */
void fnet_dataset_rows(const fnet_dataset *d, const int64_t *idx, int64_t B, int64_t *rows,
                       int32_t *labels);
/* x (B, dim) = the images of storage rows rows[0..B) (backend memory) / 255. */
void fnet_dataset_gather_dev(const fnet_dataset *d, int64_t B, const int64_t *rows, float *x);

/* Whether m's step can be replayed: no layer carries random state from step to step (dropout),
 * no penalty whose value comes back to the host (L1, L2, Frobenius). */
bool fnet_model_replayable(const fnet_model *m);
/* The forward pass, the loss kept in backend memory (loss_step: acc, step), the backward pass
 * and the mask: fnet_model_loss_grad's work for B samples x with labels (backend memory), with
 * no check, no upload and no value for the host. m was reserved for B. */
void fnet_model_step_dev(fnet_model *m, const float *x, const int32_t *labels, int64_t B,
                         const int64_t *step, double *acc);

/* Whether opt's step is one fused op (every step-wise optimizer but AdamW with decay, whose
 * decoupled decay is a second op the loss cannot skip). */
bool fnet_optimizer_replayable(const fnet_optimizer *opt);
/* The scalars of opt's next step, which is counted as taken (as fnet_optimizer_step does). */
void fnet_optimizer_next_args(fnet_optimizer *opt, struct fnet_step_args *a);
/* The step with the scalars *a (backend memory), skipped when skip[1] >= 0 (loss_step's acc). */
void fnet_optimizer_step_dev(fnet_optimizer *opt, float *w, const float *g,
                             const struct fnet_step_args *a, const double *skip);

#endif
