/* What the core asks of the job a ctx trains in (src/dist/dist.c; docs/distributed.md). No MPI
 * type appears here: FNET_WITH_MPI and mpi.h belong to src/dist/ alone. With no job attached
 * (ctx->dist NULL) or a job of one, every function here is local and free. */
#ifndef FNET_DIST_DIST_H
#define FNET_DIST_DIST_H

#include "core/internal.h"

/* ctx's rank and the job's size: 0 and 1 without a job. */
int fnet_dist_ctx_rank(const fnet_ctx *ctx);
int fnet_dist_ctx_size(const fnet_ctx *ctx);

/* This rank's rows [*first, *first + *count) of n (fnet_dist_shard). */
void fnet_dist_ctx_shard(const fnet_ctx *ctx, int64_t n, int64_t *first, int64_t *count);

/* The sum over the ranks of v (n doubles, host), in place, the same bits on every rank; `what`
 * names it in an error (FNET_ERR_DIST). */
fnet_status fnet_dist_sum(fnet_ctx *ctx, double *v, int n, const char *what);

/* The all-reduce (sum) of a flat gradient g (n floats, backend memory) that the backward pass
 * fills from its end: begin, then ready(from) each time g[from, n) is final (the parts worth a
 * bucket are sent while the backward pass goes on), then end, which sends the rest and waits.
 * Every rank calls the same sequence, with at most `parts` calls of ready. In a job of one:
 * nothing. begin fails only for memory (the requests, the staging copy of a backend whose memory
 * is not host memory: FNET_ERR_OUT_OF_MEMORY); end with FNET_ERR_DIST. */
fnet_status fnet_dist_grad_begin(fnet_ctx *ctx, float *g, int64_t n, int parts);
void fnet_dist_grad_ready(fnet_ctx *ctx, int64_t from);
fnet_status fnet_dist_grad_end(fnet_ctx *ctx);

/* The sum over the ranks of x (n floats, backend memory), in place (the gradient's way). */
fnet_status fnet_dist_sum_floats(fnet_ctx *ctx, float *x, int64_t n);

/* Rank 0's status st on every rank (rank 0 passes its own, the others anything): FNET_OK or,
 * on the other ranks, the same status with a message saying that rank 0 failed at `what` (its
 * own message is on its stderr). */
fnet_status fnet_dist_bcast_status(fnet_ctx *ctx, fnet_status st, const char *what);

/* Whether any rank's flag is set, on every rank (in place). */
fnet_status fnet_dist_any_ctx(fnet_ctx *ctx, bool *flag);

/* FNET_ERR_INTERNAL, naming `where`, unless w (n floats, backend memory) holds the same bits on
 * every rank (a checksum of them compared): the parameters that data-parallel training keeps
 * identical. */
fnet_status fnet_dist_check_same(fnet_ctx *ctx, const float *w, int64_t n, const char *where);

#endif
