/* Checkpoints: safetensors files with tensors "layers.<i>.<name>" (PyTorch nn.Sequential
 * numbering) and factornet metadata; written atomically, validated strictly on load. */
#ifndef FACTORNET_CHECKPOINT_H
#define FACTORNET_CHECKPOINT_H

#include <stdint.h>
#include <factornet/export.h>
#include <factornet/status.h>
#include <factornet/model.h>
#include <factornet/optim.h>
#include <factornet/train.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Save the model (and the optimizer's state when opt is not NULL, as "optimizer.<name>"
 *  tensors) to `path`: written to a temporary file in the same directory, flushed, then renamed
 *  over `path`, so a failure never damages an existing file.
 *  @return FNET_OK, FNET_ERR_IO, FNET_ERR_OUT_OF_MEMORY. */
FNET_API fnet_status fnet_model_save(fnet_model *m, const fnet_optimizer *opt, const char *path);

/** Load a checkpoint into a new model built from the spec in its metadata.
 *  @param[out] out freed by the caller with fnet_model_free().
 *  @return FNET_OK, FNET_ERR_IO, FNET_ERR_FORMAT (any inconsistency: header length, JSON, dtype,
 *          shapes against the spec, offsets out of bounds or overlapping; the message names the
 *          tensor and the field), FNET_ERR_UNSUPPORTED, FNET_ERR_OUT_OF_MEMORY. */
FNET_API fnet_status fnet_model_load(fnet_ctx *ctx, const char *path, fnet_model **out);

/** Load the parameters of a checkpoint into an existing model with the same architecture; the
 *  model is unchanged on failure. When opt is not NULL and the file holds a matching optimizer
 *  state, it is restored too (FNET_ERR_FORMAT if the file holds a state of another shape).
 *  @return as fnet_model_load(), and FNET_ERR_SHAPE when the spec or a shape differs. */
FNET_API fnet_status fnet_model_load_params(fnet_model *m, fnet_optimizer *opt, const char *path);

/** Read only the metadata of a checkpoint: its spec (copied into spec, of size cap) and input
 *  width. @return FNET_OK, FNET_ERR_IO, FNET_ERR_FORMAT, FNET_ERR_INVALID_ARG (cap too small). */
FNET_API fnet_status fnet_checkpoint_peek(fnet_ctx *ctx, const char *path, char *spec, size_t cap,
                                          int64_t *n_in);

/** For a signal handler about to end the process at once: remove the temporary file of the
 *  checkpoint this process is writing right now, if any (async-signal-safe: one unlink). The
 *  file the write would have replaced is untouched; without this call a killed write leaves its
 *  "<path>.tmp.XXXXXX" behind. */
FNET_API void fnet_checkpoint_abandon(void);

/** Every metadata entry of a checkpoint (its header only; the form of the factornet metadata and
 *  of the checksums is checked), in file order: factornet's own ("spec", "run.epoch", ...) and a
 *  run's caller entries (fnet_train_params.meta).
 *  @param[out] meta one allocation, freed with fnet_checkpoint_metadata_free(); *n entries.
 *  @return FNET_OK, FNET_ERR_IO, FNET_ERR_FORMAT, FNET_ERR_OUT_OF_MEMORY. */
FNET_API fnet_status fnet_checkpoint_metadata(fnet_ctx *ctx, const char *path, fnet_meta **meta,
                                              int *n);
FNET_API void fnet_checkpoint_metadata_free(fnet_meta *meta);

/** The value of metadata key in meta[0..n), or NULL. */
FNET_API const char *fnet_meta_find(const fnet_meta *meta, int n, const char *key);

#ifdef __cplusplus
}
#endif
#endif
