/* Datasets of uint8 images and labels (IDX files: MNIST, Fashion-MNIST, KMNIST), kept as uint8
 * in the ctx's backend memory (uploaded once) and converted to float one batch at a time. */
#ifndef FACTORNET_DATA_H
#define FACTORNET_DATA_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <factornet/export.h>
#include <factornet/status.h>
#include <factornet/ctx.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Opaque dataset: shared uint8 storage and a list of sample indices into it. Views made by
 *  fnet_dataset_split()/fnet_dataset_subset() share the storage and are freed independently. */
typedef struct fnet_dataset fnet_dataset;

typedef enum fnet_split {
    FNET_SPLIT_TRAIN = 0, /**< train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz] */
    FNET_SPLIT_TEST = 1,  /**< t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz] */
} fnet_split;

/** Load one split from a directory holding the standard IDX file names, each gzip-compressed
 *  (".gz", preferred when both exist) or raw.
 *  @param[out] out freed by the caller with fnet_dataset_free().
 *  @return FNET_OK, FNET_ERR_IO (missing or unreadable file), FNET_ERR_FORMAT (bad magic, rank,
 *          dimensions, counts that disagree, truncated or corrupt data), FNET_ERR_OUT_OF_MEMORY. */
FNET_API fnet_status fnet_dataset_load_idx(fnet_ctx *ctx, const char *dir, fnet_split split,
                                           fnet_dataset **out);

/** Load from two explicit IDX files (images: rank ≥ 2 of uint8; labels: rank 1 of uint8). */
FNET_API fnet_status fnet_dataset_load_idx_files(fnet_ctx *ctx, const char *images_path,
                                                 const char *labels_path, fnet_dataset **out);

/** Make a dataset from memory (copied): images (n, dim) uint8, labels (n) in [0, classes), both
 *  host memory. */
FNET_API fnet_status fnet_dataset_from_memory(fnet_ctx *ctx, const uint8_t *images,
                                              const uint8_t *labels, int64_t n, int64_t dim,
                                              int64_t classes, fnet_dataset **out);

FNET_API void fnet_dataset_free(fnet_dataset *d);

/** The ctx the dataset was loaded on: its images live in that ctx's backend memory, and only
 *  models on the same ctx train or evaluate on it. */
FNET_API fnet_ctx *fnet_dataset_ctx(const fnet_dataset *d);
FNET_API int64_t fnet_dataset_size(const fnet_dataset *d);
/** Values per sample (784 for 28×28 images). */
FNET_API int64_t fnet_dataset_dim(const fnet_dataset *d);
/** Number of classes: the largest label of the whole file plus one. */
FNET_API int64_t fnet_dataset_classes(const fnet_dataset *d);

/** Split into a training part and a validation part of round(frac·n) samples, chosen by a
 *  seeded shuffle; frac in [0, 1). Both are views.
 *  @return FNET_OK, FNET_ERR_INVALID_ARG, FNET_ERR_OUT_OF_MEMORY. */
FNET_API fnet_status fnet_dataset_split(const fnet_dataset *d, double frac, uint64_t seed,
                                        fnet_dataset **train, fnet_dataset **val);

/** A view of the first n samples (n ≤ size): what --limit-train does. */
FNET_API fnet_status fnet_dataset_subset(const fnet_dataset *d, int64_t n, fnet_dataset **out);

/** The CRC-32 (zlib's) of d's samples in its order: each label byte, then the sample's pixels.
 *  Two datasets with the same value hold the same samples in the same order (up to the odds of a
 *  32-bit collision): the trainer stores it in a run's checkpoints and refuses to resume the run
 *  on other data. Reads the images back from backend memory (all of them: O(size·dim)).
 *  @return FNET_OK, FNET_ERR_INVALID_ARG, FNET_ERR_OUT_OF_MEMORY. */
FNET_API fnet_status fnet_dataset_crc32(const fnet_dataset *d, uint32_t *crc);

/** Gather a batch: samples idx[0..batch) of this view (host memory), images scaled to [0, 1]
 *  into x (batch, dim; backend memory, as the model's input) and labels into labels (batch; host
 *  memory, as fnet_model_loss_grad() takes them). idx NULL means samples first..first+batch-1.
 *  @return FNET_OK, FNET_ERR_INVALID_ARG (an index out of range). */
FNET_API fnet_status fnet_dataset_batch(const fnet_dataset *d, const int64_t *idx, int64_t first,
                                        int64_t batch, float *x, int32_t *labels);

#ifdef __cplusplus
}
#endif
#endif
