/* The ctx and the backend registry: the one place that picks an implementation. */
#include "core/internal.h"
#include "core/backend.h"
#include "core/pool.h"

#include <string.h>
#include <unistd.h>

static int online_cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (n > 1024 ? 1024 : (int)n);
}

static fnet_status ctx_create(fnet_backend_kind kind, const struct fnet_backend_ops *be,
                              fnet_ctx **out)
{
    if (out == NULL)
        return FNET_ERR_INVALID_ARG;
    *out = NULL;
    fnet_ctx *ctx = fnet_calloc(1, sizeof(*ctx));
    if (ctx == NULL)
        return FNET_ERR_OUT_OF_MEMORY;
    ctx->be = be;
    ctx->kind = kind;
    fnet_status st = fnet_ctx_set_threads(ctx, online_cores());
    if (st != FNET_OK) {
        fnet_free(ctx);
        return st;
    }
    *out = ctx;
    return FNET_OK;
}

fnet_status fnet_ctx_create_cpu(fnet_ctx **out)
{
    return ctx_create(FNET_BACKEND_CPU, &fnet_cpu_backend, out);
}

fnet_status fnet_ctx_create_reference(fnet_ctx **out)
{
    return ctx_create(FNET_BACKEND_REFERENCE, &fnet_reference_backend, out);
}

fnet_status fnet_ctx_create_cuda(int device, fnet_ctx **out)
{
    if (out)
        *out = NULL;
    (void)device;
    // The CUDA backend is not built yet; a build with FNET_WITH_CUDA is refused by CMake.
    return FNET_ERR_UNSUPPORTED;
}

void fnet_ctx_free(fnet_ctx *ctx)
{
    if (ctx == NULL)
        return;
    fnet_pool_free(ctx->pool);
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
    struct fnet_pool *pool = NULL;
    if (n > 1 && ctx->kind == FNET_BACKEND_CPU) {
        pool = fnet_pool_create(n);
        if (pool == NULL)
            return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "thread pool of %d threads", n);
    }
    fnet_pool_free(ctx->pool);
    ctx->pool = pool;
    ctx->threads = n;
    if (ctx->be->set_threads)
        ctx->be->set_threads(ctx, n);
    return FNET_OK;
}

int fnet_ctx_threads(const fnet_ctx *ctx)
{
    return ctx->threads;
}
