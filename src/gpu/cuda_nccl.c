/* The CUDA backend's collectives (the table's dist_* ops, src/dist/dist.c): NCCL all-reduces of
 * the flat gradient between the job's GPUs, one GPU per rank, the communicator's id sent over
 * MPI by src/dist. Each all-reduce runs on a stream of its own, after the ops queued so far on
 * the ctx's stream (an event between them) and beside the backward kernels queued after it;
 * dist_wait makes the ctx's stream wait for the last one. docs/distributed.md. Built where the
 * CUDA toolkit has NCCL (FNET_WITH_NCCL); elsewhere the ops are absent and MPI reduces through
 * host memory. */
#include "gpu/cuda_internal.h"

#if FNET_WITH_NCCL
#include <nccl.h>
#include <string.h>

_Static_assert(sizeof(ncclUniqueId) == FNET_DIST_ID_BYTES, "FNET_DIST_ID_BYTES is NCCL's id");

struct cuda_nccl {
    ncclComm_t comm;
    cudaStream_t stream; // the all-reduces
    cudaEvent_t ready;   // on the ctx's stream: what an all-reduce waits for
    cudaEvent_t done;    // on `stream`: what the ctx's stream waits for
    bool pending;        // an all-reduce was queued since the last dist_wait
    bool failed;         // NCCL reported an error: the communicator is aborted, not destroyed
};

static fnet_status nccl_fail(fnet_ctx *ctx, const char *what, ncclResult_t r)
{
    return fnet_fail(ctx, FNET_ERR_DIST, "%s: %s", what, ncclGetErrorString(r));
}

fnet_status fnet_cuda_dist_id(fnet_ctx *ctx, unsigned char id[FNET_DIST_ID_BYTES])
{
    fnet_cuda_enter(ctx);
    ncclUniqueId u;
    ncclResult_t r = ncclGetUniqueId(&u);
    if (r != ncclSuccess)
        return nccl_fail(ctx, "ncclGetUniqueId", r);
    memcpy(id, &u, sizeof(u));
    return FNET_OK;
}

void fnet_cuda_dist_free(fnet_ctx *ctx)
{
    struct cuda_state *s = cuda_state(ctx);
    struct cuda_nccl *c = s ? s->nccl : NULL;
    if (c == NULL)
        return;
    fnet_cuda_enter(ctx);
    // after a failure (a peer gone) a destroy or a wait for the stream would block for ever
    if (c->comm != NULL && c->failed)
        (void)ncclCommAbort(c->comm);
    else if (c->comm != NULL) {
        (void)cudaStreamSynchronize(c->stream);
        (void)ncclCommDestroy(c->comm);
    }
    if (c->done != NULL)
        (void)cudaEventDestroy(c->done);
    if (c->ready != NULL)
        (void)cudaEventDestroy(c->ready);
    if (c->stream != NULL)
        (void)cudaStreamDestroy(c->stream);
    (void)cudaGetLastError();
    fnet_free(c);
    s->nccl = NULL;
}

fnet_status fnet_cuda_dist_init(fnet_ctx *ctx, const unsigned char id[FNET_DIST_ID_BYTES],
                                int rank, int size)
{
    fnet_cuda_enter(ctx);
    struct cuda_state *s = cuda_state(ctx);
    fnet_cuda_dist_free(ctx);
    struct cuda_nccl *c = fnet_calloc(1, sizeof(*c));
    if (c == NULL)
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "the GPUs' communicator");
    s->nccl = c;
    cudaError_t e = cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking);
    if (e == cudaSuccess)
        e = cudaEventCreateWithFlags(&c->ready, cudaEventDisableTiming);
    if (e == cudaSuccess)
        e = cudaEventCreateWithFlags(&c->done, cudaEventDisableTiming);
    if (e != cudaSuccess) {
        fnet_cuda_dist_free(ctx);
        return fnet_fail(ctx, FNET_ERR_DIST, "the all-reduce's stream on GPU %d: %s", s->device,
                         cudaGetErrorString(e));
    }
    ncclUniqueId u;
    memcpy(&u, id, sizeof(u));
    ncclResult_t r = ncclCommInitRank(&c->comm, size, u, rank);
    if (r != ncclSuccess) {
        c->comm = NULL;
        fnet_cuda_dist_free(ctx);
        return fnet_fail(ctx, FNET_ERR_DIST, "ncclCommInitRank (rank %d of %d, GPU %d): %s (each "
                         "rank needs a GPU of its own)", rank, size, s->device,
                         ncclGetErrorString(r));
    }
    return FNET_OK;
}

void fnet_cuda_dist_allreduce(fnet_ctx *ctx, float *x, int64_t n)
{
    fnet_cuda_enter(ctx);
    struct cuda_state *s = cuda_state(ctx);
    struct cuda_nccl *c = s->nccl;
    if (c == NULL) {
        fnet_cuda_keep(ctx, FNET_ERR_DIST, "dist_allreduce: no communicator (not attached)");
        return;
    }
    if (n <= 0)
        return;
    if (fnet_cuda_check(ctx, "dist_allreduce", cudaEventRecord(c->ready, s->stream)) ||
        fnet_cuda_check(ctx, "dist_allreduce", cudaStreamWaitEvent(c->stream, c->ready, 0)))
        return;
    ncclResult_t r = ncclAllReduce(x, x, (size_t)n, ncclFloat, ncclSum, c->comm, c->stream);
    if (r != ncclSuccess) {
        c->failed = true;
        fnet_cuda_keep(ctx, FNET_ERR_DIST, "ncclAllReduce of %lld floats: %s", (long long)n,
                       ncclGetErrorString(r));
    }
    c->pending = true;
}

fnet_status fnet_cuda_dist_wait(fnet_ctx *ctx)
{
    fnet_cuda_enter(ctx);
    struct cuda_state *s = cuda_state(ctx);
    struct cuda_nccl *c = s->nccl;
    if (c == NULL)
        return fnet_fail(ctx, FNET_ERR_DIST, "dist_wait: no communicator (not attached)");
    if (c->pending) {
        c->pending = false;
        if (fnet_cuda_check(ctx, "dist_wait", cudaEventRecord(c->done, c->stream)) ||
            fnet_cuda_check(ctx, "dist_wait", cudaStreamWaitEvent(s->stream, c->done, 0)))
            return fnet_fail(ctx, FNET_ERR_DIST, "%s", s->err_msg);
    }
    // what NCCL has seen go wrong so far (an all-reduce still running reports at a later call)
    ncclResult_t async = ncclSuccess;
    ncclResult_t r = ncclCommGetAsyncError(c->comm, &async);
    if (r != ncclSuccess || (async != ncclSuccess && async != ncclInProgress)) {
        c->failed = true;
        return nccl_fail(ctx, "the GPUs' all-reduce", r != ncclSuccess ? r : async);
    }
    if (s->err == FNET_ERR_DIST) { // an all-reduce that could not be queued
        s->err = FNET_OK;
        return fnet_fail(ctx, FNET_ERR_DIST, "%s", s->err_msg);
    }
    return FNET_OK;
}
#endif
