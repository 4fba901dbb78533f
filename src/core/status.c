/* Status strings, the ctx's last error and the log callback. */
#include "core/internal.h"

#include <stdio.h>
#include <string.h>

const char *fnet_status_str(fnet_status st)
{
    switch (st) {
    case FNET_OK: return "ok";
    case FNET_ERR_INVALID_ARG: return "invalid argument";
    case FNET_ERR_SHAPE: return "shape mismatch";
    case FNET_ERR_OUT_OF_MEMORY: return "out of memory";
    case FNET_ERR_UNSUPPORTED: return "unsupported";
    case FNET_ERR_BACKEND: return "backend failure";
    case FNET_ERR_NUMERIC: return "numerical failure";
    case FNET_ERR_IO: return "input/output error";
    case FNET_ERR_FORMAT: return "bad format";
    case FNET_ERR_INTERNAL: return "internal error";
    case FNET_ERR_CANCELLED: return "cancelled";
    case FNET_ERR_DIST: return "a collective across processes failed";
    }
    return "unknown status";
}

static fnet_log_fn log_fn;
static void *log_user;

void fnet_set_log_callback(fnet_log_fn fn, void *user)
{
    log_fn = fn;
    log_user = user;
}

void fnet_log(fnet_log_level level, const char *fmt, ...)
{
    if (log_fn == NULL)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log_fn(level, msg, log_user);
}

fnet_status fnet_fail_at(fnet_ctx *ctx, fnet_status st, const char *file, int line,
                         const char *fmt, ...)
{
    if (ctx == NULL)
        return st;
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    int k = snprintf(ctx->last_error, sizeof(ctx->last_error), "%s:%d: ", base, line);
    if (k < 0 || (size_t)k >= sizeof(ctx->last_error))
        k = 0;
    ctx->message_at = k;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->last_error + k, sizeof(ctx->last_error) - (size_t)k, fmt, ap);
    va_end(ap);
    ctx->last_status = st;
    fnet_log(FNET_LOG_DEBUG, "%s", ctx->last_error);
    return st;
}

const char *fnet_ctx_last_error(const fnet_ctx *ctx)
{
    return ctx ? ctx->last_error : "no ctx";
}

const char *fnet_ctx_last_message(const fnet_ctx *ctx)
{
    return ctx ? ctx->last_error + ctx->message_at : "no ctx";
}

fnet_status fnet_ctx_last_status(const fnet_ctx *ctx)
{
    return ctx ? ctx->last_status : FNET_ERR_INVALID_ARG;
}

void fnet_ctx_clear_error(fnet_ctx *ctx)
{
    if (ctx) {
        ctx->last_error[0] = '\0';
        ctx->message_at = 0;
        ctx->last_status = FNET_OK;
    }
}

const char *fnet_version_string(void)
{
    return FNET_VERSION_STRING;
}
