/* The CPU backend's LAPACK ops (cpu_lapack.c): thin SVD (sgesdd, falling back to sgesvd) and thin
 * QR, on row-major float matrices. Private to src/cpu. */
#ifndef FNET_CPU_CPU_LAPACK_H
#define FNET_CPU_CPU_LAPACK_H

#include "core/backend.h"

// A (m, n) -> U (m, k), S (k) descending, Vt (k, n), k = min(m, n); A unchanged
fnet_status fnet_cpu_gesvd(fnet_ctx *ctx, int64_t m, int64_t n, const float *A, float *U, float *S,
                           float *Vt);
// A (m, n) -> Q (m, k) orthonormal columns, R (k, n) upper triangular, k = min(m, n)
fnet_status fnet_cpu_qr(fnet_ctx *ctx, int64_t m, int64_t n, const float *A, float *Q, float *R);

// The one conversion of a LAPACK(E) info into a status, with "routine: what" as the message:
// info < 0 (an argument we passed was wrong) is FNET_ERR_INTERNAL, info > 0 (the algorithm failed
// on these numbers) FNET_ERR_NUMERIC, LAPACKE's own allocation failures FNET_ERR_OUT_OF_MEMORY.
fnet_status fnet_cpu_lapack_status(fnet_ctx *ctx, const char *routine, int64_t info);

#endif
