/* The ctx and the backend registry: the one place that picks an implementation, and the check of
 * which ops a backend table has (docs/design.md, "Backends"). */
#include "core/internal.h"
#include "core/backend.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int online_cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (n > 1024 ? 1024 : (int)n);
}

// Names, and whether every backend must have the op; indexed by enum fnet_op.
static const struct fnet_op_info op_info[FNET_OP_COUNT] = {
    [FNET_OP_STATE_INIT] = {"state_init", false},
    [FNET_OP_STATE_FREE] = {"state_free", false},
    [FNET_OP_SET_THREADS] = {"set_threads", false},
    [FNET_OP_SYNCHRONIZE] = {"synchronize", true},
    [FNET_OP_SET_TF32] = {"set_tf32", false},
    [FNET_OP_ALLOC] = {"alloc", true},
    [FNET_OP_FREE] = {"free", true},
    [FNET_OP_UPLOAD] = {"upload", true},
    [FNET_OP_DOWNLOAD] = {"download", true},
    [FNET_OP_COPY] = {"copy", true},
    [FNET_OP_FILL] = {"fill", true},
    [FNET_OP_SGEMM] = {"sgemm", true},
    [FNET_OP_SGEMM_BATCHED] = {"sgemm_batched", false},
    [FNET_OP_AXPY] = {"axpy", true},
    [FNET_OP_SCAL] = {"scal", true},
    [FNET_OP_DOT] = {"dot", true},
    [FNET_OP_AXPBY] = {"axpby", false},
    [FNET_OP_AMAX] = {"amax", false},
    [FNET_OP_PERMUTE_021] = {"permute_021", false},
    [FNET_OP_TRANSPOSE] = {"transpose", false},
    [FNET_OP_BIAS_FILL] = {"bias_fill", true},
    [FNET_OP_BIAS_ADD] = {"bias_add", true},
    [FNET_OP_BIAS_GRAD] = {"bias_grad", true},
    [FNET_OP_ACT_FORWARD] = {"act_forward", false},
    [FNET_OP_ACT_BACKWARD] = {"act_backward", false},
    [FNET_OP_MUL] = {"mul", false},
    [FNET_OP_DROPOUT_MASK] = {"dropout_mask", false},
    [FNET_OP_FFT_PLAN] = {"fft_plan", false},
    [FNET_OP_FFT_PLAN_FREE] = {"fft_plan_free", false},
    [FNET_OP_RFFT] = {"rfft", false},
    [FNET_OP_IRFFT] = {"irfft", false},
    [FNET_OP_CMAC] = {"cmac", false},
    [FNET_OP_CSR_SPMM] = {"csr_spmm", false},
    [FNET_OP_CSR_SPMM_T] = {"csr_spmm_t", false},
    [FNET_OP_CSR_SDDMM] = {"csr_sddmm", false},
    [FNET_OP_SOFTMAX_CE] = {"softmax_ce", true},
    [FNET_OP_MSE] = {"mse", true},
    [FNET_OP_REGULARIZE] = {"regularize", true},
    [FNET_OP_U8_TO_FLOAT] = {"u8_to_float", true},
    [FNET_OP_ALL_FINITE] = {"all_finite", true},
    [FNET_OP_SGD_STEP] = {"sgd_step", false},
    [FNET_OP_MOMENTUM_STEP] = {"momentum_step", false},
    [FNET_OP_RMSPROP_STEP] = {"rmsprop_step", false},
    [FNET_OP_ADAM_STEP] = {"adam_step", false},
    [FNET_OP_U8_GATHER] = {"u8_gather", false},
    [FNET_OP_LOSS_STEP] = {"loss_step", false},
    [FNET_OP_STEP_DEV] = {"step_dev", false},
    [FNET_OP_GRAPH_MAKE] = {"graph_make", false},
    [FNET_OP_GRAPH_RUN] = {"graph_run", false},
    [FNET_OP_GRAPH_FREE] = {"graph_free", false},
    [FNET_OP_DIST_ID] = {"dist_id", false},
    [FNET_OP_DIST_INIT] = {"dist_init", false},
    [FNET_OP_DIST_ALLREDUCE] = {"dist_allreduce", false},
    [FNET_OP_DIST_WAIT] = {"dist_wait", false},
    [FNET_OP_DIST_FREE] = {"dist_free", false},
    [FNET_OP_RUN_PARTS] = {"run_parts", false},
};

const struct fnet_op_info *fnet_backend_op_info(enum fnet_op op)
{
    return (int)op >= 0 && op < FNET_OP_COUNT ? &op_info[op] : NULL;
}

bool fnet_backend_has(const struct fnet_backend_ops *be, enum fnet_op op)
{
    switch (op) {
    case FNET_OP_STATE_INIT: return be->state_init != NULL;
    case FNET_OP_STATE_FREE: return be->state_free != NULL;
    case FNET_OP_SET_THREADS: return be->set_threads != NULL;
    case FNET_OP_SYNCHRONIZE: return be->synchronize != NULL;
    case FNET_OP_SET_TF32: return be->set_tf32 != NULL;
    case FNET_OP_ALLOC: return be->alloc != NULL;
    case FNET_OP_FREE: return be->free != NULL;
    case FNET_OP_UPLOAD: return be->upload != NULL;
    case FNET_OP_DOWNLOAD: return be->download != NULL;
    case FNET_OP_COPY: return be->copy != NULL;
    case FNET_OP_FILL: return be->fill != NULL;
    case FNET_OP_SGEMM: return be->sgemm != NULL;
    case FNET_OP_SGEMM_BATCHED: return be->sgemm_batched != NULL;
    case FNET_OP_AXPY: return be->axpy != NULL;
    case FNET_OP_SCAL: return be->scal != NULL;
    case FNET_OP_DOT: return be->dot != NULL;
    case FNET_OP_AXPBY: return be->axpby != NULL;
    case FNET_OP_AMAX: return be->amax != NULL;
    case FNET_OP_PERMUTE_021: return be->permute_021 != NULL;
    case FNET_OP_TRANSPOSE: return be->transpose != NULL;
    case FNET_OP_BIAS_FILL: return be->bias_fill != NULL;
    case FNET_OP_BIAS_ADD: return be->bias_add != NULL;
    case FNET_OP_BIAS_GRAD: return be->bias_grad != NULL;
    case FNET_OP_ACT_FORWARD: return be->act_forward != NULL;
    case FNET_OP_ACT_BACKWARD: return be->act_backward != NULL;
    case FNET_OP_MUL: return be->mul != NULL;
    case FNET_OP_DROPOUT_MASK: return be->dropout_mask != NULL;
    case FNET_OP_FFT_PLAN: return be->fft_plan != NULL;
    case FNET_OP_FFT_PLAN_FREE: return be->fft_plan_free != NULL;
    case FNET_OP_RFFT: return be->rfft != NULL;
    case FNET_OP_IRFFT: return be->irfft != NULL;
    case FNET_OP_CMAC: return be->cmac != NULL;
    case FNET_OP_CSR_SPMM: return be->csr_spmm != NULL;
    case FNET_OP_CSR_SPMM_T: return be->csr_spmm_t != NULL;
    case FNET_OP_CSR_SDDMM: return be->csr_sddmm != NULL;
    case FNET_OP_SOFTMAX_CE: return be->softmax_ce != NULL;
    case FNET_OP_MSE: return be->mse != NULL;
    case FNET_OP_REGULARIZE: return be->regularize != NULL;
    case FNET_OP_U8_TO_FLOAT: return be->u8_to_float != NULL;
    case FNET_OP_ALL_FINITE: return be->all_finite != NULL;
    case FNET_OP_SGD_STEP: return be->sgd_step != NULL;
    case FNET_OP_MOMENTUM_STEP: return be->momentum_step != NULL;
    case FNET_OP_RMSPROP_STEP: return be->rmsprop_step != NULL;
    case FNET_OP_ADAM_STEP: return be->adam_step != NULL;
    case FNET_OP_U8_GATHER: return be->u8_gather != NULL;
    case FNET_OP_LOSS_STEP: return be->loss_step != NULL;
    case FNET_OP_STEP_DEV: return be->step_dev != NULL;
    case FNET_OP_GRAPH_MAKE: return be->graph_make != NULL;
    case FNET_OP_GRAPH_RUN: return be->graph_run != NULL;
    case FNET_OP_GRAPH_FREE: return be->graph_free != NULL;
    case FNET_OP_DIST_ID: return be->dist_id != NULL;
    case FNET_OP_DIST_INIT: return be->dist_init != NULL;
    case FNET_OP_DIST_ALLREDUCE: return be->dist_allreduce != NULL;
    case FNET_OP_DIST_WAIT: return be->dist_wait != NULL;
    case FNET_OP_DIST_FREE: return be->dist_free != NULL;
    case FNET_OP_RUN_PARTS: return be->run_parts != NULL;
    case FNET_OP_COUNT: break;
    }
    return false;
}

fnet_status fnet_backend_require(fnet_ctx *ctx, uint64_t ops, const char *what)
{
    for (int op = 0; op < FNET_OP_COUNT; op++)
        if ((ops & FNET_OPS(op)) && !fnet_backend_has(ctx->be, (enum fnet_op)op))
            return fnet_fail(ctx, FNET_ERR_UNSUPPORTED, "backend %s has no %s op (needed by %s)",
                             ctx->be->name, op_info[op].name, what);
    return FNET_OK;
}

fnet_status fnet_ctx_create_backend(const struct fnet_backend_ops *be, fnet_backend_kind kind,
                                    fnet_ctx **out)
{
    return fnet_ctx_create_device(be, kind, 0, out);
}

fnet_status fnet_ctx_create_device(const struct fnet_backend_ops *be, fnet_backend_kind kind,
                                   int device, fnet_ctx **out)
{
    if (out == NULL || be == NULL)
        return FNET_ERR_INVALID_ARG;
    *out = NULL;
    // a table without its required ops or host linear algebra is refused here, once, rather
    // than failing in the middle of training
    for (int op = 0; op < FNET_OP_COUNT; op++)
        if (op_info[op].required && !fnet_backend_has(be, (enum fnet_op)op))
            return FNET_ERR_UNSUPPORTED;
    if (be->host_la == NULL || be->host_la->sgemm == NULL || be->host_la->gesvd == NULL ||
        be->host_la->qr == NULL)
        return FNET_ERR_UNSUPPORTED;
    fnet_ctx *ctx = fnet_calloc(1, sizeof(*ctx));
    if (ctx == NULL)
        return FNET_ERR_OUT_OF_MEMORY;
    ctx->be = be;
    ctx->kind = kind;
    ctx->threads = 1;
    ctx->device = device;
    fnet_status st = be->state_init ? be->state_init(ctx) : FNET_OK;
    if (st != FNET_OK) {
        fnet_free(ctx);
        return st;
    }
    st = fnet_ctx_set_threads(ctx, online_cores());
    if (st != FNET_OK) {
        fnet_ctx_free(ctx);
        return st;
    }
    *out = ctx;
    return FNET_OK;
}

fnet_status fnet_ctx_create_cpu(fnet_ctx **out)
{
    return fnet_ctx_create_backend(&fnet_cpu_backend, FNET_BACKEND_CPU, out);
}

fnet_status fnet_ctx_create_reference(fnet_ctx **out)
{
    return fnet_ctx_create_backend(&fnet_reference_backend, FNET_BACKEND_REFERENCE, out);
}

fnet_status fnet_ctx_create_guarded(fnet_ctx **out)
{
    return fnet_ctx_create_backend(&fnet_guarded_backend, FNET_BACKEND_GUARDED, out);
}

fnet_status fnet_cuda_probe(int device, char *why, size_t cap)
{
#if FNET_WITH_CUDA
    return fnet_cuda_backend_probe(device, why, cap);
#else
    (void)device;
    if (why != NULL && cap > 0)
        snprintf(why, cap, "this build has no CUDA backend (configure with -DFNET_WITH_CUDA=ON)");
    return FNET_ERR_UNSUPPORTED;
#endif
}

fnet_status fnet_ctx_create_cuda(int device, fnet_ctx **out)
{
    if (out == NULL)
        return FNET_ERR_INVALID_ARG;
    *out = NULL;
    char why[256];
    fnet_status st = fnet_cuda_probe(device, why, sizeof(why));
    if (st != FNET_OK) {
        fnet_log(FNET_LOG_DEBUG, "fnet_ctx_create_cuda(%d): %s", device, why);
        return st;
    }
#if FNET_WITH_CUDA
    return fnet_ctx_create_device(&fnet_cuda_backend, FNET_BACKEND_CUDA, device, out);
#else
    return FNET_ERR_INTERNAL; // the probe refuses every device in such a build
#endif
}

fnet_status fnet_ctx_set_tf32(fnet_ctx *ctx, bool on)
{
    if (ctx == NULL)
        return FNET_ERR_INVALID_ARG;
    if (ctx->be->set_tf32 == NULL)
        return fnet_fail(ctx, FNET_ERR_UNSUPPORTED, "backend %s has no TF32 mode (CUDA only)",
                         ctx->be->name);
    return ctx->be->set_tf32(ctx, on);
}

void fnet_ctx_free(fnet_ctx *ctx)
{
    if (ctx == NULL)
        return;
    if (ctx->be->state_free)
        ctx->be->state_free(ctx);
    fnet_free(ctx);
}

fnet_backend_kind fnet_ctx_backend(const fnet_ctx *ctx)
{
    return ctx->kind;
}

const char *fnet_ctx_backend_name(const fnet_ctx *ctx)
{
    return ctx->be->name;
}

fnet_status fnet_ctx_set_threads(fnet_ctx *ctx, int n)
{
    if (ctx == NULL)
        return FNET_ERR_INVALID_ARG;
    if (n < 1 || n > 1024)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "threads must be in 1..1024, got %d", n);
    int before = ctx->threads;
    ctx->threads = n;
    fnet_status st = ctx->be->set_threads ? ctx->be->set_threads(ctx, n) : FNET_OK;
    if (st != FNET_OK)
        ctx->threads = before;
    return st;
}

int fnet_ctx_threads(const fnet_ctx *ctx)
{
    return ctx->threads;
}

fnet_status fnet_ctx_synchronize(fnet_ctx *ctx)
{
    if (ctx == NULL)
        return FNET_ERR_INVALID_ARG;
    return ctx->be->synchronize(ctx);
}

// ---- steps recorded once, run many times ----

struct fnet_graph {
    fnet_ctx *ctx;
    void *native; // the backend's, or NULL: fn is called at every run
    void (*fn)(void *arg);
    void *arg;
};

fnet_status fnet_graph_make(fnet_ctx *ctx, void (*fn)(void *arg), void *arg,
                            struct fnet_graph **out)
{
    *out = NULL;
    struct fnet_graph *g = fnet_calloc(1, sizeof(*g));
    if (g == NULL)
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "a recorded step");
    *g = (struct fnet_graph){.ctx = ctx, .fn = fn, .arg = arg};
    bool native = ctx->be->graph_make != NULL && ctx->be->graph_run != NULL &&
                  ctx->be->graph_free != NULL;
    fnet_status st = native ? ctx->be->graph_make(ctx, fn, arg, &g->native) : FNET_OK;
    if (st != FNET_OK) {
        fnet_free(g);
        return st;
    }
    *out = g;
    return FNET_OK;
}

void fnet_graph_run(struct fnet_graph *g)
{
    if (g->native != NULL)
        g->ctx->be->graph_run(g->ctx, g->native);
    else
        g->fn(g->arg);
}

void fnet_graph_free(struct fnet_graph *g)
{
    if (g == NULL)
        return;
    if (g->native != NULL)
        g->ctx->be->graph_free(g->ctx, g->native);
    fnet_free(g);
}

void fnet_sgemm_batched(fnet_ctx *ctx, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                        float alpha, const float *A, int64_t lda, int64_t sa, const float *B,
                        int64_t ldb, int64_t sb, float beta, float *C, int64_t ldc, int64_t sc,
                        int64_t count)
{
    if (ctx->be->sgemm_batched != NULL) {
        ctx->be->sgemm_batched(ctx, ta, tb, M, N, K, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc,
                               sc, count);
        return;
    }
    for (int64_t i = 0; i < count; i++)
        ctx->be->sgemm(ctx, ta, tb, M, N, K, alpha, A + i * sa, lda, B + i * sb, ldb, beta,
                       C + i * sc, ldc);
}
