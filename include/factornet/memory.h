/* Backend memory: where the library's numbers live, and how host code reaches them.
 *
 * Every pointer the public API takes or returns is documented as host memory (ordinary memory:
 * malloc, the stack, a static array) or backend memory (allocated on a ctx's backend: by
 * fnet_backend_alloc(), or owned by the library's objects: parameters, gradients, activations,
 * optimizer state). On the cpu and reference backends both are ordinary memory
 * (fnet_backend_is_host() is true), so either kind works in either place; on the guarded and
 * CUDA backends backend memory cannot be touched from host code: move data with
 * fnet_backend_upload() and fnet_backend_download(), or use the host copies the model, layer and
 * optimizer calls offer (fnet_model_get_params(), ...). Strings, structs, callbacks' user
 * pointers and scalar results (double *loss, int64_t *n) are host memory everywhere; arrays of
 * numbers are documented one by one. docs/design.md, "Memory domains". */
#ifndef FACTORNET_MEMORY_H
#define FACTORNET_MEMORY_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <factornet/export.h>
#include <factornet/status.h>
#include <factornet/ctx.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Whether ctx's backend memory is ordinary host memory (cpu, reference: true; guarded, cuda:
 *  false). */
FNET_API bool fnet_backend_is_host(const fnet_ctx *ctx);

/** Allocate `bytes` (> 0) of backend memory, 64-byte aligned, uninitialized.
 *  @param[out] out the buffer, freed by the caller with fnet_backend_free() on the same ctx.
 *  @return FNET_OK, FNET_ERR_INVALID_ARG (bytes 0, NULL out), FNET_ERR_OUT_OF_MEMORY. */
FNET_API fnet_status fnet_backend_alloc(fnet_ctx *ctx, size_t bytes, void **out);

/** Free a buffer of fnet_backend_alloc(); NULL is a no-op. */
FNET_API void fnet_backend_free(fnet_ctx *ctx, void *p);

/** Copy `bytes` from host memory src to backend memory dst.
 *  @return FNET_OK, FNET_ERR_INVALID_ARG (a NULL pointer with bytes > 0). */
FNET_API fnet_status fnet_backend_upload(fnet_ctx *ctx, void *dst, const void *src, size_t bytes);

/** Copy `bytes` from backend memory src to host memory dst.
 *  @return FNET_OK, FNET_ERR_INVALID_ARG (a NULL pointer with bytes > 0). */
FNET_API fnet_status fnet_backend_download(fnet_ctx *ctx, void *dst, const void *src,
                                           size_t bytes);

#ifdef __cplusplus
}
#endif
#endif
