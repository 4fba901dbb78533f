/* The checkpoint pieces a training run uses (src/core/train_ckpt.c): writing a checkpoint with
 * the run's own tensors and metadata beside the model's, and a load split into open, check and
 * install so that the run's state is checked before anything changes. */
#ifndef FNET_IO_CHECKPOINT_IMPL_H
#define FNET_IO_CHECKPOINT_IMPL_H

#include "io/safetensors.h"

#include <factornet/model.h>
#include <factornet/optim.h>

#define FNET_CKPT_RUN_PREFIX "run."       // a run's position, settings and sample order
#define FNET_CKPT_SOLVER_PREFIX "solver." // the L-BFGS/CG state a run carries between batches

/* What a run adds: tensors named "run.*" or "solver.*" (F32, I32 or U8; host or backend memory,
 * as the writer takes them) and metadata (keys the checkpoint does not use itself). */
struct fnet_ckpt_extra {
    const struct fnet_safetensors_tensor *t;
    size_t n_t;
    const struct fnet_safetensors_meta *meta;
    size_t n_meta;
};

/* fnet_model_save() with extra content (extra may be NULL). FNET_ERR_INVALID_ARG for a metadata
 * key the checkpoint writes itself or given twice. */
fnet_status fnet_checkpoint_write(fnet_model *m, const fnet_optimizer *opt, const char *path,
                                  const struct fnet_ckpt_extra *extra);

/* A checkpoint read whole, its factornet metadata and checksums checked, not yet against a
 * model. */
struct fnet_ckpt_file;
fnet_status fnet_checkpoint_open(fnet_ctx *ctx, const char *path, struct fnet_ckpt_file **out);
void fnet_checkpoint_close(struct fnet_ckpt_file *ck);
const struct fnet_safetensors *fnet_checkpoint_contents(const struct fnet_ckpt_file *ck);

/* Everything fnet_model_load_params() checks: m's spec and input, every tensor, and, when opt is
 * not NULL, an optimizer state of opt's kind in the file (FNET_ERR_FORMAT when it has none).
 * Nothing is written. */
fnet_status fnet_checkpoint_check(const struct fnet_ckpt_file *ck, fnet_model *m,
                                  fnet_optimizer *opt);
/* After a successful check: the parameters, mask, index tensors, layers' random states and (opt
 * not NULL) the optimizer's state and step count into m and opt. Fails only for out of memory,
 * before anything changes. */
fnet_status fnet_checkpoint_install(const struct fnet_ckpt_file *ck, fnet_model *m,
                                    fnet_optimizer *opt);

#endif
