/* Private model operations shared by the trainer (src/core/train.c) and the layer families that
 * expose a model-wide operation of their own (fnet_model_tt_round in src/tn/). */
#ifndef FNET_CORE_MODEL_IMPL_H
#define FNET_CORE_MODEL_IMPL_H

#include "core/internal.h"

/* Rank-adaptive rounding of every layer whose kind has a round op (TT layers today), to accuracy
 * eps and rank cap max_rank (0: none). The layers whose ranks shrink are replaced and the flat
 * vectors rebuilt in one step, with opt (may be NULL; made for the model's parameters) remapped
 * in the same step: the state of the other layers moves along, the rounded layers' starts at
 * zero. All or nothing: on any failure the model and opt are unchanged. *changed (may be NULL)
 * says whether a rank changed.
 * @return FNET_OK, FNET_ERR_SHAPE (opt made for another size), FNET_ERR_INVALID_ARG (eps),
 *         FNET_ERR_NUMERIC (an SVD failed), FNET_ERR_OUT_OF_MEMORY. */
fnet_status fnet_model_round_layers(fnet_model *m, double eps, int64_t max_rank,
                                    fnet_optimizer *opt, bool *changed);

/* Replace layers idx[0..count) (distinct) by fresh[0..count) (stand-alone, on m's ctx, each
 * with the n_in and n_out of the layer it replaces) in one rebuild of the flat vectors, the mask
 * and opt (may be NULL) remapped alike (the new layers unpruned, their state zero). All or
 * nothing: on failure m and opt are unchanged and the fresh layers freed; on success m owns them. */
fnet_status fnet_model_replace_layers(fnet_model *m, int count, const int *idx,
                                      fnet_layer **fresh, fnet_optimizer *opt);

/* dst takes src's loss, L1/L2 and Frobenius-decay settings and its training mode (a model
 * rebuilt from another: structured pruning). */
void fnet_model_copy_settings(fnet_model *dst, const fnet_model *src);

/* The loss and the L1, L2 and Frobenius-decay factors set on m. */
void fnet_model_get_settings(const fnet_model *m, fnet_loss *loss, float *l1, float *l2,
                             float *fro);

/* A counter that changes whenever the model's pruning mask or a layer's sparsity pattern changes
 * (fnet_model_set_mask, SET and RigL updates): a solver that keeps history across calls resets
 * when it sees a new value. fnet_model_touch bumps it. */
uint64_t fnet_model_generation(const fnet_model *m);
void fnet_model_touch(fnet_model *m);

/* FNET_ERR_INVALID_ARG naming the sample unless every label (host) is a class of m's output. */
fnet_status fnet_model_check_labels(fnet_model *m, const int32_t *labels, int64_t batch);

/* The loss and gradient of `batch` samples (x, backend memory; labels, host), rows first.. of a
 * batch of `total` (the others on the job's other ranks; first 0 and batch == total without a
 * job): m's gradient and *loss (may be NULL) become the whole batch's mean, with the penalties,
 * on every rank (one all-reduce, in buckets during the backward pass: src/dist/dist.c).
 * batch may be 0 on a rank other than 0: x and labels then hold one row of the batch, run with
 * weight 0 (so that the layers' random streams move on alike). Collective when distributed.
 * FNET_ERR_NUMERIC (on every rank) for a NaN or Inf loss; a rank's own failure (a layer's,
 * FNET_ERR_OUT_OF_MEMORY) returns on that rank alone: the caller ends the job. */
fnet_status fnet_model_loss_grad_part(fnet_model *m, const float *x, const int32_t *labels,
                                      int64_t first, int64_t batch, int64_t total, double *loss);

#endif
