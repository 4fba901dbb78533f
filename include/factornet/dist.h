/* Data-parallel training across processes (MPI) and GPUs (NCCL): docs/distributed.md.
 *
 * A job is the processes one launcher started (`mpirun -np P`, `srun`). Every process (a rank)
 * holds the whole model; each global batch is split across the ranks, each computes the loss and
 * gradient of its share, and one all-reduce of the flat gradient gives every rank the batch's
 * mean, so the parameters stay identical on every rank.
 *
 * Two ways to use it:
 *  - attach the job to a ctx (fnet_dist_attach): the library's training calls on that ctx become
 *    collective (every rank calls them, in the same order, with the same arguments) and split
 *    their batches themselves: fnet_train(), fnet_model_loss_grad(), fnet_model_objective() (so
 *    L-BFGS and CG), fnet_model_evaluate();
 *  - or keep the ctx local and write the loop: each rank runs fnet_model_loss_grad() on its own
 *    samples (fnet_dist_shard() says which) and then fnet_dist_allreduce_grad().
 *
 * In a build without MPI (FNET_WITH_MPI=OFF) every process is a job of one. */
#ifndef FACTORNET_DIST_H
#define FACTORNET_DIST_H

#include <stddef.h>
#include <stdint.h>
#include <factornet/export.h>
#include <factornet/status.h>
#include <factornet/ctx.h>
#include <factornet/model.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fnet_dist fnet_dist;

/** Join the job this process was started in. Under a launcher of more than one process, MPI is
 *  initialized (MPI_Init_thread, FUNNELED: only the thread that calls factornet calls MPI)
 *  unless the caller did so already, and the job is MPI_COMM_WORLD. Without a launcher, or
 *  with one process, nothing is initialized and the job is this process: rank 0 of 1.
 *  @param argc,argv the program's, for MPI_Init (may be NULL)
 *  @return FNET_OK; FNET_ERR_UNSUPPORTED when a launcher started several processes but the
 *          library was built without MPI (each would train alone and overwrite the others'
 *          files); FNET_ERR_DIST when MPI cannot start; FNET_ERR_OUT_OF_MEMORY. The message
 *          goes to the library's log. */
FNET_API fnet_status fnet_dist_init(int *argc, char ***argv, fnet_dist **out);

/** This process's rank (0 to size - 1) and the number of ranks; for d NULL, 0 and 1. */
FNET_API int fnet_dist_rank(const fnet_dist *d);
FNET_API int fnet_dist_size(const fnet_dist *d);
/** The ranks on this machine (the launcher's count; 1 when it does not say), e.g. to divide the
 *  cores among them. */
FNET_API int fnet_dist_local_size(const fnet_dist *d);
/** This rank's place among them (0 to local_size - 1): its GPU, when each rank has one. */
FNET_API int fnet_dist_local_rank(const fnet_dist *d);

/** Make ctx's training calls collective over d's ranks (see above); d NULL detaches. On a CUDA
 *  ctx in a build with NCCL, a NCCL communicator over the ranks' GPUs is made (collective:
 *  every rank attaches at once) and the gradient is all-reduced on the GPUs; elsewhere MPI
 *  all-reduces it (through host memory when backend memory is not). d must outlive ctx's use.
 *  @return FNET_OK, FNET_ERR_DIST (NCCL could not start: the message says why),
 *          FNET_ERR_OUT_OF_MEMORY. */
FNET_API fnet_status fnet_dist_attach(fnet_dist *d, fnet_ctx *ctx);

/** How much of the gradient is all-reduced at once while the backward pass still runs: after a
 *  layer's backward pass, the finished part of the flat gradient is sent when it holds at least
 *  `bytes`; the rest after the last layer. The ranks must use the same size (it decides which
 *  all-reduces they post): fnet_dist_attach gives every rank rank 0's; a change after it must
 *  be made on every rank alike. 0 (the default on MPI: on the CPU an all-reduce
 *  progresses only inside MPI calls, so it cannot overlap the backward pass, and one call is
 *  the fastest: docs/distributed.md) sends all of it after the backward pass. The default with
 *  NCCL is 25 MiB (the all-reduce runs on its own CUDA stream beside the backward kernels). */
FNET_API fnet_status fnet_dist_set_bucket(fnet_dist *d, size_t bytes);

/** The rows [*first, *first + *count) of n that this rank takes: n / size each, the first
 *  n % size ranks one more (so a rank may get none). d NULL: all of them. */
FNET_API void fnet_dist_shard(const fnet_dist *d, int64_t n, int64_t *first, int64_t *count);

/** For a loop of the caller's own (collective): m's gradient, which fnet_model_loss_grad() left
 *  for this rank's `batch` samples (0: none; the gradient is then ignored), becomes the mean
 *  over every rank's samples (each rank's weighted by its batch), the same on every rank.
 *  Dropout layers in such a loop draw the same mask rows on every rank (their rows are rows
 *  0.. of their own batch), and a rank that skips loss_grad leaves its mask stream behind the
 *  others': attach the ctx instead for the masks one process would draw.
 *  *loss (may be NULL): in, this rank's mean loss; out, the mean over all samples.
 *  m's ctx must not be attached to a job (its loss_grad already reduces).
 *  @return FNET_OK, FNET_ERR_INVALID_ARG (no samples on any rank, an attached ctx),
 *          FNET_ERR_NUMERIC (the mean loss is NaN or Inf: on every rank), FNET_ERR_DIST. */
FNET_API fnet_status fnet_dist_allreduce_grad(fnet_dist *d, fnet_model *m, int64_t batch,
                                              double *loss);

/** Rank 0's `bytes` at buf on every rank (collective): for decisions only one rank may make,
 *  such as a time budget read from its clock. @return FNET_OK or FNET_ERR_DIST. */
FNET_API fnet_status fnet_dist_broadcast(fnet_dist *d, void *buf, size_t bytes);

/** *flag becomes nonzero on every rank when it is nonzero on any (collective).
 *  @return FNET_OK or FNET_ERR_DIST. */
FNET_API fnet_status fnet_dist_any(fnet_dist *d, int *flag);

/** End every rank of the job now with exit status `code` (MPI_Abort), after an error this rank
 *  cannot recover from while the others wait in a collective. In a job of one: exit(code). */
FNET_API void fnet_dist_abort(fnet_dist *d, int code);

/** Leave the job (MPI_Finalize when fnet_dist_init initialized MPI) and free d. NULL: no-op. */
FNET_API void fnet_dist_finalize(fnet_dist *d);

#ifdef __cplusplus
}
#endif
#endif
