/* The context: one per thread, it owns the backend, the thread setting and the last error. */
#ifndef FACTORNET_CTX_H
#define FACTORNET_CTX_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <factornet/export.h>
#include <factornet/status.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Opaque context. Not thread-safe: use one per thread. */
typedef struct fnet_ctx fnet_ctx;

/** Which implementation of the backend table a ctx runs on. */
typedef enum fnet_backend_kind {
    FNET_BACKEND_REFERENCE = 0, /**< plain C, the test oracle; slow */
    FNET_BACKEND_CPU = 1,       /**< OpenBLAS, LAPACKE (and FFTW) overrides of the reference */
    FNET_BACKEND_CUDA = 2,      /**< cuBLAS, cuSOLVER, cuFFT (builds with FNET_WITH_CUDA only) */
    FNET_BACKEND_GUARDED = 3,   /**< a test backend: the reference's ops on memory that faults
                                     when host code touches it (docs/design.md) */
} fnet_backend_kind;

/** Create a ctx on the CPU backend.
 *  @param[out] out new ctx, freed by the caller with fnet_ctx_free().
 *  @return FNET_OK or FNET_ERR_OUT_OF_MEMORY. */
FNET_API fnet_status fnet_ctx_create_cpu(fnet_ctx **out);

/** Create a ctx on the plain-C reference backend (the oracle of the tests). Same contract as
 *  fnet_ctx_create_cpu(). */
FNET_API fnet_status fnet_ctx_create_reference(fnet_ctx **out);

/** Create a ctx on the guarded test backend: the reference backend's ops, on backend memory that
 *  is mapped PROT_NONE except while one of the backend's own ops runs, so host code that reads
 *  or writes it faults at once; an op handed host memory where it expects backend memory aborts
 *  with a message naming the op and the argument. For checking that code keeps to the memory
 *  domains of factornet/memory.h without a GPU; slow. Same contract as fnet_ctx_create_cpu(). */
FNET_API fnet_status fnet_ctx_create_guarded(fnet_ctx **out);

/** Create a ctx on CUDA device `device`: a stream, cuBLAS, cuSOLVER and cuFFT on it, and the
 *  device's stream-ordered memory pool for backend memory (docs/gpu.md).
 *  @param device 0 .. the number of devices − 1
 *  @param[out] out new ctx, freed by the caller with fnet_ctx_free().
 *  @return FNET_OK; FNET_ERR_INVALID_ARG when out is NULL; FNET_ERR_UNSUPPORTED in a build
 *  without FNET_WITH_CUDA, on a machine with no usable CUDA device or driver, for a device index
 *  that does not exist, or a GPU this build has no code for (then *out is NULL and
 *  fnet_cuda_probe() says why); FNET_ERR_BACKEND or FNET_ERR_OUT_OF_MEMORY when a library handle
 *  or the backend's buffers cannot be made (nothing is left allocated). */
FNET_API fnet_status fnet_ctx_create_cuda(int device, fnet_ctx **out);

/** Whether fnet_ctx_create_cuda(device) can work here, and why not.
 *  @param device the device index
 *  @param[out] why cap bytes (may be NULL when cap is 0), always NUL-terminated: the device
 *  (for example "NVIDIA H100 80GB HBM3, compute capability 9.0, 79.1 GiB") or the reason
 *  ("this build has no CUDA backend (configure with -DFNET_WITH_CUDA=ON)", "no CUDA device:
 *  ...", "CUDA device 3 does not exist: this machine has 1 (0 .. 0)").
 *  @return FNET_OK, or the status fnet_ctx_create_cuda() would return. */
FNET_API fnet_status fnet_cuda_probe(int device, char *why, size_t cap);

/** Let the CUDA backend's float GEMMs use TF32 tensor cores (inputs rounded to 10-bit
 *  mantissas, a relative error of 2^-11 to 2^-10 per input; off by default, as without
 *  `--tf32`).
 *  @return FNET_OK; FNET_ERR_INVALID_ARG when ctx is NULL; FNET_ERR_UNSUPPORTED on a backend
 *  without TF32 (every one but cuda); FNET_ERR_BACKEND when cuBLAS refuses. */
FNET_API fnet_status fnet_ctx_set_tf32(fnet_ctx *ctx, bool on);

/** Free a ctx; NULL is a no-op. Every object created on it must be freed first. */
FNET_API void fnet_ctx_free(fnet_ctx *ctx);

/** The message of the last failure on this ctx, "file.c:LINE: what" (empty string if none): the
 *  library's source location, then what went wrong. The pointer stays valid until the next
 *  failing call on the ctx. */
FNET_API const char *fnet_ctx_last_error(const fnet_ctx *ctx);

/** The same message without the source location ("what" alone): the words to show a user. */
FNET_API const char *fnet_ctx_last_message(const fnet_ctx *ctx);

/** The status of the last failure on this ctx (FNET_OK if none). */
FNET_API fnet_status fnet_ctx_last_status(const fnet_ctx *ctx);

/** Clear the last error. */
FNET_API void fnet_ctx_clear_error(fnet_ctx *ctx);

/** Backend kind and name ("reference", "cpu", "cuda"). */
FNET_API fnet_backend_kind fnet_ctx_backend(const fnet_ctx *ctx);
FNET_API const char *fnet_ctx_backend_name(const fnet_ctx *ctx);

/** Set the number of threads of the ctx's worker pool: large GEMMs (each worker calling
 *  single-threaded BLAS; the CPU backend sets OpenBLAS's process-wide thread count to 1), large
 *  element-wise work and the TT sweep's sample chunks run on them; at most 64 call BLAS at once.
 *  TT layers follow a new count at their next forward pass.
 *  @param n 1..1024; default at creation: the number of online cores.
 *  @return FNET_OK or FNET_ERR_INVALID_ARG. */
FNET_API fnet_status fnet_ctx_set_threads(fnet_ctx *ctx, int n);
FNET_API int fnet_ctx_threads(const fnet_ctx *ctx);

/** Wait until the backend has finished all work queued on this ctx (a no-op on the CPU), e.g.
 *  before reading a clock. @return FNET_OK, or FNET_ERR_BACKEND for a failure the backend kept
 *  from an earlier operation. */
FNET_API fnet_status fnet_ctx_synchronize(fnet_ctx *ctx);

/** Log levels of the log callback. */
typedef enum fnet_log_level {
    FNET_LOG_DEBUG = 0,
    FNET_LOG_INFO = 1,
    FNET_LOG_WARN = 2,
    FNET_LOG_ERROR = 3,
} fnet_log_level;

/** Log callback: receives one line without its newline. */
typedef void (*fnet_log_fn)(fnet_log_level level, const char *msg, void *user);

/** Set the process-wide log callback (the library's only global). NULL (the default) drops all
 *  messages. The library never writes to stdout or stderr itself. */
FNET_API void fnet_set_log_callback(fnet_log_fn fn, void *user);

/** The library's version, "MAJOR.MINOR.PATCH". */
FNET_API const char *fnet_version_string(void);

#ifdef __cplusplus
}
#endif
#endif
