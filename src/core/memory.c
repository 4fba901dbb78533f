/* Backend memory for host code: the public allocation and transfer calls (factornet/memory.h)
 * and the zeroed buffers every module allocates. */
#include "core/internal.h"
#include "core/backend.h"

float *fnet_be_zeros(fnet_ctx *ctx, int64_t n)
{
    if (n < 0 || (uint64_t)n > SIZE_MAX / sizeof(float))
        return NULL;
    float *p = ctx->be->alloc(ctx, (size_t)(n > 0 ? n : 1) * sizeof(float));
    if (p != NULL && n > 0)
        ctx->be->fill(ctx, n, 0.0f, p);
    return p;
}

fnet_status fnet_be_transfer(fnet_ctx *ctx, const char *what, float *dst, const float *src,
                             int64_t n, bool download)
{
    if (n <= 0)
        return FNET_OK;
    if (dst == NULL || src == NULL)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "%s: NULL host buffer", what);
    if (download)
        ctx->be->download(ctx, dst, src, (size_t)n * sizeof(float));
    else
        ctx->be->upload(ctx, dst, src, (size_t)n * sizeof(float));
    return FNET_OK;
}

bool fnet_backend_is_host(const fnet_ctx *ctx)
{
    return ctx != NULL && ctx->be->host_memory;
}

fnet_status fnet_backend_alloc(fnet_ctx *ctx, size_t bytes, void **out)
{
    if (ctx == NULL)
        return FNET_ERR_INVALID_ARG;
    if (out == NULL || bytes == 0)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "backend_alloc: %zu bytes into %s", bytes,
                         out ? "out" : "a NULL out");
    *out = ctx->be->alloc(ctx, bytes);
    if (*out == NULL)
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "backend_alloc: %zu bytes on %s", bytes,
                         ctx->be->name);
    return FNET_OK;
}

void fnet_backend_free(fnet_ctx *ctx, void *p)
{
    if (ctx != NULL && p != NULL)
        ctx->be->free(ctx, p);
}

fnet_status fnet_backend_upload(fnet_ctx *ctx, void *dst, const void *src, size_t bytes)
{
    if (ctx == NULL)
        return FNET_ERR_INVALID_ARG;
    if (bytes == 0)
        return FNET_OK;
    if (dst == NULL || src == NULL)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "backend_upload: NULL %s", dst ? "src" : "dst");
    ctx->be->upload(ctx, dst, src, bytes);
    return FNET_OK;
}

fnet_status fnet_backend_download(fnet_ctx *ctx, void *dst, const void *src, size_t bytes)
{
    if (ctx == NULL)
        return FNET_ERR_INVALID_ARG;
    if (bytes == 0)
        return FNET_OK;
    if (dst == NULL || src == NULL)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "backend_download: NULL %s",
                         dst ? "src" : "dst");
    ctx->be->download(ctx, dst, src, bytes);
    return FNET_OK;
}
