/* Status codes shared by every factornet function (libLBFGS style: 0 ok, negative errors). */
#ifndef FACTORNET_STATUS_H
#define FACTORNET_STATUS_H

#include <factornet/export.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Result of every factornet call that can fail. The details of the last failure are kept on the
 *  ctx: see fnet_ctx_last_error(). */
typedef enum fnet_status {
    FNET_OK = 0,
    FNET_ERR_INVALID_ARG = -1,   /**< an argument is out of its documented range */
    FNET_ERR_SHAPE = -2,         /**< shapes or sizes do not agree */
    FNET_ERR_OUT_OF_MEMORY = -3, /**< an allocation failed */
    FNET_ERR_UNSUPPORTED = -4,   /**< the backend or build lacks what was asked */
    FNET_ERR_BACKEND = -5,       /**< a foreign library (BLAS, LAPACK, CUDA) failed */
    FNET_ERR_NUMERIC = -6,       /**< NaN/Inf, divergence, or a failed factorization */
    FNET_ERR_IO = -7,            /**< a file could not be opened, read or written */
    FNET_ERR_FORMAT = -8,        /**< a file or string does not have the expected format */
    FNET_ERR_INTERNAL = -9,      /**< a bug in factornet */
    FNET_ERR_CANCELLED = -10,    /**< a user callback asked to stop */
    FNET_ERR_DIST = -11,         /**< a collective across the job's processes failed (MPI or
                                      NCCL: another process died or the network failed) */
} fnet_status;

/** Short constant description of a status ("out of memory"); never NULL. */
FNET_API const char *fnet_status_str(fnet_status st);

#ifdef __cplusplus
}
#endif
#endif
