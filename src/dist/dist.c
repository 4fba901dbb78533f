/* Data parallelism: the job (MPI_COMM_WORLD, or this process alone), the all-reduce of the flat
 * gradient in buckets, and the few small collectives the trainers need to agree (the loss, a
 * stop, rank 0's checkpoint status, a checksum of the parameters). docs/distributed.md.
 *
 * The gradient goes by one of three ways: MPI in place where backend memory is host memory (the
 * CPU backends); the backend's own collective where it has one (NCCL on a CUDA ctx: the ops
 * dist_* of the backend table, src/gpu/cuda_nccl.c); else through a host copy (the guarded
 * backend, a CUDA build without NCCL). */
#include "dist/dist.h"
#include "core/backend.h"

#include <factornet/dist.h>

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#if FNET_WITH_MPI
#include <mpi.h>
#endif

// MPI counts are int: larger vectors go in pieces of this many floats.
#define PIECE (INT32_C(1) << 30)

enum grad_way { GRAD_MPI, GRAD_DEVICE, GRAD_STAGED };

struct fnet_dist {
    int rank, size, local_rank, local_size;
    bool mpi_ours;      // fnet_dist_init initialized MPI: fnet_dist_finalize ends it
    bool bucket_set;    // fnet_dist_set_bucket was called
    size_t bucket;      // bytes (see fnet_dist_set_bucket)
#if FNET_WITH_MPI
    MPI_Comm comm;      // a duplicate of MPI_COMM_WORLD whose errors return (MPI_ERRORS_RETURN)
    MPI_Request *req;   // the buckets in flight
    int n_req, cap_req;
#endif
    // the gradient in flight (one at a time)
    enum grad_way way;
    float *g;
    int64_t n, sent;    // g[sent, n) has been handed to the all-reduce
    int err;            // the first MPI error of a bucket, 0 none
    float *host;        // the host copy (GRAD_STAGED) and the checksum's, host_cap floats
    int64_t host_cap;
};

// ---------------------------------------------------------------------------------------------
// The launcher's word, read before MPI starts: how many processes it started.

struct launcher {
    const char *name; // of the variable that said it
    long size, local_size;
};

static long env_long(const char *name)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0')
        return -1;
    char *end = NULL;
    long x = strtol(v, &end, 10);
    return *end == '\0' && x >= 0 ? x : -1;
}

static struct launcher launcher(void)
{
    // Open MPI's mpirun, Hydra (MPICH), Slurm's srun (a step; SLURM_NTASKS alone is also set
    // in the batch script that runs srun)
    static const char *const size_vars[][2] = {{"OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_SIZE"},
                                               {"PMI_SIZE", "MPI_LOCALNRANKS"},
                                               {"SLURM_STEP_NUM_TASKS", NULL}};
    for (size_t i = 0; i < sizeof(size_vars) / sizeof(size_vars[0]); i++) {
        long s = env_long(size_vars[i][0]);
        if (s >= 1) {
            long local = size_vars[i][1] ? env_long(size_vars[i][1]) : -1;
            return (struct launcher){size_vars[i][0], s, local};
        }
    }
    return (struct launcher){NULL, 1, -1};
}

// ---------------------------------------------------------------------------------------------
// The job

#if FNET_WITH_MPI
// "<call> of <what> failed on rank R of P: <MPI's words> ..." (call NULL: what alone).
static fnet_status mpi_fail(fnet_ctx *ctx, const fnet_dist *d, int rc, const char *call,
                            const char *what)
{
    char s[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    if (MPI_Error_string(rc, s, &len) != MPI_SUCCESS)
        snprintf(s, sizeof(s), "MPI error %d", rc);
    return fnet_fail(ctx, FNET_ERR_DIST, "%s%s%s failed on rank %d of %d: %s (another rank may "
                     "have died: the job cannot go on)", call ? call : "", call ? " of " : "",
                     what, d->rank, d->size, s);
}

// MPI is running (this process joined a job of several, or its caller started MPI).
static bool mpi_on(const fnet_dist *d)
{
    return d->comm != MPI_COMM_NULL;
}
#endif

fnet_status fnet_dist_init(int *argc, char ***argv, fnet_dist **out)
{
    if (out == NULL)
        return fnet_fail(NULL, FNET_ERR_INVALID_ARG, "dist_init: out is NULL");
    *out = NULL;
    fnet_dist *d = fnet_calloc(1, sizeof(*d));
    if (d == NULL)
        return fnet_fail(NULL, FNET_ERR_OUT_OF_MEMORY, "dist_init");
    d->size = d->local_size = 1;
    struct launcher l = launcher();
#if FNET_WITH_MPI
    d->comm = MPI_COMM_NULL;
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited && l.size > 1) {
        int provided = 0;
        if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
            fnet_free(d);
            return fnet_fail(NULL, FNET_ERR_DIST, "MPI could not start (%s=%ld)", l.name, l.size);
        }
        d->mpi_ours = true;
        inited = 1;
    }
    if (inited) {
        MPI_Comm local = MPI_COMM_NULL;
        int rc = MPI_Comm_dup(MPI_COMM_WORLD, &d->comm);
        if (rc == MPI_SUCCESS)
            rc = MPI_Comm_set_errhandler(d->comm, MPI_ERRORS_RETURN);
        if (rc == MPI_SUCCESS)
            rc = MPI_Comm_rank(d->comm, &d->rank);
        if (rc == MPI_SUCCESS)
            rc = MPI_Comm_size(d->comm, &d->size);
        if (rc == MPI_SUCCESS) // the ranks that share this machine's memory
            rc = MPI_Comm_split_type(d->comm, MPI_COMM_TYPE_SHARED, d->rank, MPI_INFO_NULL,
                                     &local);
        if (rc == MPI_SUCCESS)
            rc = MPI_Comm_rank(local, &d->local_rank);
        if (rc == MPI_SUCCESS)
            rc = MPI_Comm_size(local, &d->local_size);
        if (local != MPI_COMM_NULL)
            MPI_Comm_free(&local);
        if (rc != MPI_SUCCESS) {
            fnet_status st = mpi_fail(NULL, d, rc, NULL, "joining the job (MPI_COMM_WORLD)");
            fnet_dist_finalize(d);
            return st;
        }
    }
#else
    (void)argc;
    (void)argv;
    if (l.size > 1) {
        fnet_free(d);
        return fnet_fail(NULL, FNET_ERR_UNSUPPORTED,
                         "started as one of %ld processes (%s), but this factornet was built "
                         "without MPI (FNET_WITH_MPI=OFF): each would train alone and write the "
                         "same files; rebuild with libopenmpi-dev installed", l.size, l.name);
    }
#endif
    *out = d;
    return FNET_OK;
}

int fnet_dist_rank(const fnet_dist *d)
{
    return d ? d->rank : 0;
}

int fnet_dist_size(const fnet_dist *d)
{
    return d ? d->size : 1;
}

int fnet_dist_local_size(const fnet_dist *d)
{
    return d ? d->local_size : 1;
}

int fnet_dist_local_rank(const fnet_dist *d)
{
    return d ? d->local_rank : 0;
}

void fnet_dist_finalize(fnet_dist *d)
{
    if (d == NULL)
        return;
#if FNET_WITH_MPI
    fnet_free(d->req);
    if (mpi_on(d))
        MPI_Comm_free(&d->comm);
    if (d->mpi_ours) {
        int done = 0;
        MPI_Finalized(&done);
        if (!done)
            MPI_Finalize();
    }
#endif
    fnet_free(d->host);
    fnet_free(d);
}

void fnet_dist_abort(fnet_dist *d, int code)
{
#if FNET_WITH_MPI
    if (d != NULL && mpi_on(d) && d->size > 1) {
        fflush(stdout);
        fflush(stderr);
        MPI_Abort(d->comm, code);
    }
#else
    (void)d;
#endif
    exit(code);
}

fnet_status fnet_dist_set_bucket(fnet_dist *d, size_t bytes)
{
    if (d == NULL)
        return fnet_fail(NULL, FNET_ERR_INVALID_ARG, "dist_set_bucket: d is NULL");
    d->bucket = bytes;
    d->bucket_set = true;
    return FNET_OK;
}

// ---------------------------------------------------------------------------------------------
// Small collectives (on d; ctx for the message)

static fnet_status sum_on(fnet_dist *d, fnet_ctx *ctx, double *v, int n, const char *what)
{
    if (d == NULL || d->size == 1)
        return FNET_OK;
#if FNET_WITH_MPI
    int rc = MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_SUM, d->comm);
    if (rc != MPI_SUCCESS)
        return mpi_fail(ctx, d, rc, "MPI_Allreduce", what);
#else
    (void)ctx, (void)v, (void)n, (void)what;
#endif
    return FNET_OK;
}

static fnet_status any_on(fnet_dist *d, fnet_ctx *ctx, bool *flag)
{
    double v = *flag ? 1.0 : 0.0;
    fnet_status st = sum_on(d, ctx, &v, 1, "a flag");
    *flag = v != 0.0;
    return st;
}

static fnet_status bcast_on(fnet_dist *d, fnet_ctx *ctx, void *buf, size_t bytes,
                            const char *what)
{
    if (d == NULL || d->size == 1)
        return FNET_OK;
#if FNET_WITH_MPI
    for (size_t at = 0; at < bytes; at += (size_t)PIECE) {
        size_t k = bytes - at < (size_t)PIECE ? bytes - at : (size_t)PIECE;
        int rc = MPI_Bcast((char *)buf + at, (int)k, MPI_BYTE, 0, d->comm);
        if (rc != MPI_SUCCESS)
            return mpi_fail(ctx, d, rc, "MPI_Bcast", what);
    }
#else
    (void)ctx, (void)buf, (void)bytes, (void)what;
#endif
    return FNET_OK;
}

static fnet_status bcast_status_on(fnet_dist *d, fnet_ctx *ctx, fnet_status st,
                                   const char *what)
{
    if (d == NULL || d->size == 1)
        return st;
    int v = (int)st;
    fnet_status b = bcast_on(d, ctx, &v, sizeof(v), "rank 0's status");
    if (b != FNET_OK)
        return b;
    if (d->rank == 0 || v == FNET_OK)
        return (fnet_status)v;
    return fnet_fail(ctx, (fnet_status)v, "rank 0 failed %s: %s (its message is on its stderr)",
                     what, fnet_status_str((fnet_status)v));
}

fnet_status fnet_dist_broadcast(fnet_dist *d, void *buf, size_t bytes)
{
    if (buf == NULL && bytes > 0)
        return fnet_fail(NULL, FNET_ERR_INVALID_ARG, "dist_broadcast: buf is NULL");
    return bcast_on(d, NULL, buf, bytes, "the caller's buffer");
}

fnet_status fnet_dist_any(fnet_dist *d, int *flag)
{
    if (flag == NULL)
        return fnet_fail(NULL, FNET_ERR_INVALID_ARG, "dist_any: flag is NULL");
    bool b = *flag != 0;
    fnet_status st = any_on(d, NULL, &b);
    *flag = b;
    return st;
}

void fnet_dist_shard(const fnet_dist *d, int64_t n, int64_t *first, int64_t *count)
{
    int64_t P = d ? d->size : 1, r = d ? d->rank : 0;
    int64_t each = n / P, extra = n % P;
    *first = r * each + (r < extra ? r : extra);
    *count = each + (r < extra ? 1 : 0);
}

// ---------------------------------------------------------------------------------------------
// The gradient's all-reduce

static fnet_status host_reserve(fnet_dist *d, fnet_ctx *ctx, int64_t n)
{
    if (d->host_cap >= n)
        return FNET_OK;
    float *h = fnet_malloc_array((size_t)n, sizeof(float));
    if (h == NULL)
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "the gradient's host copy for the "
                         "all-reduce (%lld floats)", (long long)n);
    fnet_free(d->host);
    d->host = h;
    d->host_cap = n;
    return FNET_OK;
}

static fnet_status grad_begin(fnet_dist *d, fnet_ctx *ctx, float *g, int64_t n, int parts)
{
    d->g = g;
    d->n = d->sent = n;
    d->err = 0;
#if FNET_WITH_MPI
    d->n_req = 0;
    // room for every bucket in flight (at most one per part, each in pieces), made here so that
    // posting one never fails halfway through the ranks' common sequence
    int64_t cap = (int64_t)parts + n / PIECE + 2;
    if (cap > d->cap_req) {
        MPI_Request *r = fnet_malloc_array((size_t)cap, sizeof(*r));
        if (r == NULL)
            return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "the all-reduce's %lld requests",
                             (long long)cap);
        fnet_free(d->req);
        d->req = r;
        d->cap_req = (int)cap;
    }
#else
    (void)parts;
#endif
    if (ctx->be->dist_allreduce != NULL && ctx->dist == d)
        d->way = GRAD_DEVICE;
    else if (ctx->be->host_memory)
        d->way = GRAD_MPI;
    else
        d->way = GRAD_STAGED;
    return d->way == GRAD_STAGED ? host_reserve(d, ctx, n) : FNET_OK;
}

// Hand g[from, sent) to the all-reduce now.
static void grad_post(fnet_dist *d, fnet_ctx *ctx, int64_t from)
{
    if (from >= d->sent)
        return;
    if (d->way == GRAD_DEVICE) {
        ctx->be->dist_allreduce(ctx, d->g + from, d->sent - from);
        d->sent = from;
        return;
    }
#if FNET_WITH_MPI
    for (int64_t end = d->sent; end > from && d->err == 0;) {
        int64_t k = end - from < PIECE ? end - from : PIECE;
        if (d->n_req == d->cap_req) { // more parts than grad_begin was told: a bug
            d->err = MPI_ERR_INTERN;
            break;
        }
        int rc = MPI_Iallreduce(MPI_IN_PLACE, d->g + end - k, (int)k, MPI_FLOAT, MPI_SUM, d->comm,
                                &d->req[d->n_req]);
        if (rc != MPI_SUCCESS)
            d->err = rc;
        else
            d->n_req++;
        end -= k;
    }
#endif
    d->sent = from;
}

static void grad_ready(fnet_dist *d, fnet_ctx *ctx, int64_t from)
{
    if (d->way == GRAD_STAGED || d->bucket == 0)
        return;
    if ((size_t)(d->sent - from) * sizeof(float) >= d->bucket)
        grad_post(d, ctx, from);
#if FNET_WITH_MPI
    if (d->way == GRAD_MPI && d->n_req > 0) { // let the buckets in flight progress
        int done = 0;
        MPI_Testall(d->n_req, d->req, &done, MPI_STATUSES_IGNORE);
    }
#endif
}

static fnet_status grad_end(fnet_dist *d, fnet_ctx *ctx)
{
    char what[96];
    snprintf(what, sizeof(what), "the all-reduce of the gradient (%lld floats)", (long long)d->n);
    if (d->way == GRAD_DEVICE) {
        grad_post(d, ctx, 0);
        fnet_status st = ctx->be->dist_wait(ctx);
        return st == FNET_OK ? FNET_OK : fnet_fail(ctx, FNET_ERR_DIST, "%s failed on rank %d of "
                                                   "%d: %s", what, d->rank, d->size,
                                                   fnet_ctx_last_message(ctx));
    }
#if FNET_WITH_MPI
    int rc = MPI_SUCCESS;
    if (d->way == GRAD_STAGED) {
        ctx->be->download(ctx, d->host, d->g, (size_t)d->n * sizeof(float));
        for (int64_t at = 0; at < d->n && rc == MPI_SUCCESS; at += PIECE) {
            int64_t k = d->n - at < PIECE ? d->n - at : PIECE;
            rc = MPI_Allreduce(MPI_IN_PLACE, d->host + at, (int)k, MPI_FLOAT, MPI_SUM, d->comm);
        }
        if (rc == MPI_SUCCESS)
            ctx->be->upload(ctx, d->g, d->host, (size_t)d->n * sizeof(float));
    } else if (d->n_req == 0 && d->err == 0) {
        // nothing went early: one blocking all-reduce (MPI's tuned algorithms)
        for (int64_t at = 0; at < d->sent && rc == MPI_SUCCESS; at += PIECE) {
            int64_t k = d->sent - at < PIECE ? d->sent - at : PIECE;
            rc = MPI_Allreduce(MPI_IN_PLACE, d->g + at, (int)k, MPI_FLOAT, MPI_SUM, d->comm);
        }
        d->sent = 0;
    } else {
        grad_post(d, ctx, 0);
        rc = MPI_Waitall(d->n_req, d->req, MPI_STATUSES_IGNORE);
        d->n_req = 0;
    }
    if (rc == MPI_SUCCESS && d->err != 0)
        rc = d->err;
    if (rc != MPI_SUCCESS)
        return mpi_fail(ctx, d, rc, NULL, what);
#else
    (void)what;
#endif
    return FNET_OK;
}

fnet_status fnet_dist_allreduce_grad(fnet_dist *d, fnet_model *m, int64_t batch, double *loss)
{
    if (m == NULL)
        return fnet_fail(NULL, FNET_ERR_INVALID_ARG, "dist_allreduce_grad: the model is NULL");
    fnet_ctx *ctx = fnet_model_ctx(m);
    if (batch < 0)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "dist_allreduce_grad: batch %lld < 0",
                         (long long)batch);
    if (ctx->dist != NULL && ctx->dist->size > 1)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "dist_allreduce_grad: the model's ctx is "
                         "attached to the job, so its loss_grad reduces the gradient already");
    int64_t n = 0;
    float *g = fnet_model_grads(m, &n);
    double v[2] = {batch > 0 && loss ? *loss * (double)batch : 0.0, (double)batch};
    fnet_status st = sum_on(d, ctx, v, 2, "the batch sizes and losses");
    if (st != FNET_OK)
        return st;
    if (v[1] < 1.0)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "dist_allreduce_grad: no rank has samples");
    if (batch == 0)
        ctx->be->fill(ctx, n, 0.0f, g);
    else if ((double)batch != v[1])
        ctx->be->scal(ctx, n, (float)((double)batch / v[1]), g);
    if (d != NULL && d->size > 1) {
        if ((st = grad_begin(d, ctx, g, n, 1)) != FNET_OK)
            return st;
        if ((st = grad_end(d, ctx)) != FNET_OK)
            return st;
    }
    if (loss != NULL) {
        *loss = v[0] / v[1];
        if (!isfinite(*loss))
            return fnet_fail(ctx, FNET_ERR_NUMERIC, "the mean loss over the ranks is %g", *loss);
    }
    return FNET_OK;
}

// ---------------------------------------------------------------------------------------------
// What the core asks, by ctx

static fnet_dist *job(const fnet_ctx *ctx)
{
    return ctx->dist != NULL && ctx->dist->size > 1 ? ctx->dist : NULL;
}

int fnet_dist_ctx_rank(const fnet_ctx *ctx)
{
    return fnet_dist_rank(job(ctx));
}

int fnet_dist_ctx_size(const fnet_ctx *ctx)
{
    return fnet_dist_size(job(ctx));
}

void fnet_dist_ctx_shard(const fnet_ctx *ctx, int64_t n, int64_t *first, int64_t *count)
{
    fnet_dist_shard(job(ctx), n, first, count);
}

fnet_status fnet_dist_sum(fnet_ctx *ctx, double *v, int n, const char *what)
{
    return sum_on(job(ctx), ctx, v, n, what);
}

fnet_status fnet_dist_any_ctx(fnet_ctx *ctx, bool *flag)
{
    return any_on(job(ctx), ctx, flag);
}

fnet_status fnet_dist_bcast_status(fnet_ctx *ctx, fnet_status st, const char *what)
{
    return bcast_status_on(job(ctx), ctx, st, what);
}

fnet_status fnet_dist_grad_begin(fnet_ctx *ctx, float *g, int64_t n, int parts)
{
    fnet_dist *d = job(ctx);
    return d ? grad_begin(d, ctx, g, n, parts) : FNET_OK;
}

fnet_status fnet_dist_sum_floats(fnet_ctx *ctx, float *x, int64_t n)
{
    fnet_dist *d = job(ctx);
    if (d == NULL)
        return FNET_OK;
    fnet_status st = grad_begin(d, ctx, x, n, 1);
    return st == FNET_OK ? grad_end(d, ctx) : st;
}

void fnet_dist_grad_ready(fnet_ctx *ctx, int64_t from)
{
    fnet_dist *d = job(ctx);
    if (d)
        grad_ready(d, ctx, from);
}

fnet_status fnet_dist_grad_end(fnet_ctx *ctx)
{
    fnet_dist *d = job(ctx);
    return d ? grad_end(d, ctx) : FNET_OK;
}

fnet_status fnet_dist_check_same(fnet_ctx *ctx, const float *w, int64_t n, const char *where)
{
    fnet_dist *d = job(ctx);
    if (d == NULL || n == 0)
        return FNET_OK;
    const float *h = w;
    if (!ctx->be->host_memory) {
        fnet_status st = host_reserve(d, ctx, n);
        if (st != FNET_OK)
            return st;
        ctx->be->download(ctx, d->host, w, (size_t)n * sizeof(float));
        h = d->host;
    }
    uLong crc = crc32(0L, Z_NULL, 0);
    const int64_t piece = INT64_C(1) << 28; // floats: 1 GiB, within zlib's uInt
    for (int64_t at = 0; at < n; at += piece) {
        int64_t k = n - at < piece ? n - at : piece;
        crc = crc32(crc, (const Bytef *)(h + at), (uInt)((size_t)k * sizeof(float)));
    }
    // the largest checksum and the largest complement: equal on every rank iff all agree
    double v[2] = {(double)crc, (double)(0xFFFFFFFFu - (uint32_t)crc)};
    double hi[2] = {v[0], v[1]};
#if FNET_WITH_MPI
    int rc = MPI_Allreduce(v, hi, 2, MPI_DOUBLE, MPI_MAX, d->comm);
    if (rc != MPI_SUCCESS)
        return mpi_fail(ctx, d, rc, "MPI_Allreduce", "the parameters' checksum");
#endif
    if (hi[0] != v[0] || hi[1] != v[1] || hi[0] + hi[1] != (double)0xFFFFFFFFu)
        return fnet_fail(ctx, FNET_ERR_INTERNAL, "%s: the parameters differ between the ranks "
                         "(rank %d's checksum %08lx): the job's all-reduces gave the ranks "
                         "different sums", where, d->rank, (unsigned long)crc);
    return FNET_OK;
}

fnet_status fnet_dist_attach(fnet_dist *d, fnet_ctx *ctx)
{
    if (ctx == NULL)
        return fnet_fail(NULL, FNET_ERR_INVALID_ARG, "dist_attach: ctx is NULL");
    if (ctx->dist != NULL && ctx->be->dist_free != NULL)
        ctx->be->dist_free(ctx);
    ctx->dist = NULL;
    if (d == NULL || d->size == 1) {
        ctx->dist = d;
        return FNET_OK;
    }
#if FNET_WITH_MPI
    if (ctx->be->dist_init != NULL) {
        // the backend's communicator (NCCL): rank 0's id reaches the others over MPI
        unsigned char id[FNET_DIST_ID_BYTES] = {0};
        fnet_status st = FNET_OK;
        if (d->rank == 0)
            st = ctx->be->dist_id(ctx, id);
        fnet_status all = bcast_status_on(d, ctx, st, "making the GPUs' communicator");
        if (all != FNET_OK)
            return all;
        int rc = MPI_Bcast(id, (int)sizeof(id), MPI_BYTE, 0, d->comm);
        if (rc != MPI_SUCCESS)
            return mpi_fail(ctx, d, rc, "MPI_Bcast", "the GPUs' communicator id");
        // NCCL's own collective: a rank that cannot join leaves the others waiting inside it,
        // so its error goes straight back (the binaries then end the job)
        if ((st = ctx->be->dist_init(ctx, id, d->rank, d->size)) != FNET_OK)
            return st;
        if (!d->bucket_set)
            d->bucket = (size_t)25 << 20;
    }
    // one bucket size for all: it decides which all-reduces each rank posts
    uint64_t bucket = d->bucket;
    fnet_status st = bcast_on(d, ctx, &bucket, sizeof(bucket), "the bucket size");
    if (st != FNET_OK)
        return st;
    d->bucket = (size_t)bucket;
#endif
    ctx->dist = d;
    return FNET_OK;
}
