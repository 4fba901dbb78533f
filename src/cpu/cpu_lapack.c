/* CPU backend LAPACK ops: thin SVD by LAPACKE sgesdd (sgesvd when gesdd's divide and conquer does
 * not converge) and thin QR by an LQ factorization of the transpose. A row-major (m, n) matrix is
 * the column-major (n, m) matrix Aᵀ in the same memory, so we call the column-major *_work routines
 * on Aᵀ: no transposed copies and no allocation behind fnet_malloc's back (the LAPACKE row-major
 * path would malloc both), so every out-of-memory path is testable. docs/tt_algebra.md. */
#include "cpu/cpu_lapack.h"
#include "cpu/ref.h"

#include <lapacke.h>
#include <limits.h>
#include <math.h>
#include <string.h>

fnet_status fnet_cpu_lapack_status(fnet_ctx *ctx, const char *routine, int64_t info)
{
    if (info == 0)
        return FNET_OK;
    if (info == LAPACK_WORK_MEMORY_ERROR || info == LAPACK_TRANSPOSE_MEMORY_ERROR)
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "%s: LAPACKE could not allocate", routine);
    if (info < 0)
        return fnet_fail(ctx, FNET_ERR_INTERNAL, "%s: argument %lld had an illegal value", routine,
                         (long long)-info);
    return fnet_fail(ctx, FNET_ERR_NUMERIC, "%s: did not converge (info %lld)", routine,
                     (long long)info);
}

// Shapes LAPACK's 32-bit integers can index, and a finite A (m, n) (LAPACK may loop or return
// garbage on NaN).
static fnet_status check_input(fnet_ctx *ctx, const char *op, int64_t m, int64_t n, const float *A)
{
    if (m > INT_MAX || n > INT_MAX)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "%s: shape (%lld, %lld) out of range", op,
                         (long long)m, (long long)n);
    return fnet_host_la_check(ctx, op, m, n, A);
}

// A workspace-query answer (a float) as a size: rounded up, at least 1.
static lapack_int lwork_from(float q)
{
    double w = ceil((double)q * (1.0 + 1e-6)) + 1.0;
    return w > (double)INT_MAX ? INT_MAX : (lapack_int)w;
}

// Row-major A (m, n) is column-major X = Aᵀ (n, m). With X = U'·S·V'ᵀ, A = V'·S·U'ᵀ, so LAPACK's
// U' (n, k), ld n, column-major is our Vt (k, n) row-major, and its V'ᵀ (k, m), ld k, is our
// U (m, k) row-major: LAPACK writes straight into the outputs.
fnet_status fnet_cpu_gesvd(fnet_ctx *ctx, int64_t m, int64_t n, const float *A, float *U, float *S,
                           float *Vt)
{
    fnet_status st = check_input(ctx, "gesvd", m, n, A);
    if (st != FNET_OK)
        return st;
    lapack_int M = (lapack_int)n, N = (lapack_int)m, K = M < N ? M : N;
    float *x = fnet_malloc_array((size_t)(m * n), sizeof(float));
    lapack_int *iwork = fnet_malloc_array((size_t)8 * (size_t)K, sizeof(lapack_int));
    float *work = NULL;
    if (x == NULL || iwork == NULL) {
        st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "gesvd: copy of A (%lld, %lld)", (long long)m,
                       (long long)n);
        goto out_free;
    }
    memcpy(x, A, (size_t)(m * n) * sizeof(float));
    float q = 0.0f;
    lapack_int info = LAPACKE_sgesdd_work(LAPACK_COL_MAJOR, 'S', M, N, x, M, S, Vt, M, U, K, &q,
                                          -1, iwork);
    if (info != 0) {
        st = fnet_cpu_lapack_status(ctx, "sgesdd workspace query", info);
        goto out_free;
    }
    lapack_int lwork = lwork_from(q);
    work = fnet_malloc_array((size_t)lwork, sizeof(float));
    if (work == NULL) {
        st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "gesvd: sgesdd workspace (%d floats)",
                       (int)lwork);
        goto out_free;
    }
    info = LAPACKE_sgesdd_work(LAPACK_COL_MAJOR, 'S', M, N, x, M, S, Vt, M, U, K, work, lwork,
                               iwork);
    if (info > 0) {
        // divide and conquer did not converge: the slower QR iteration of sgesvd usually does
        fnet_log(FNET_LOG_DEBUG, "gesvd: sgesdd info %d, falling back to sgesvd", (int)info);
        memcpy(x, A, (size_t)(m * n) * sizeof(float));
        info = LAPACKE_sgesvd_work(LAPACK_COL_MAJOR, 'S', 'S', M, N, x, M, S, Vt, M, U, K, &q, -1);
        if (info != 0) {
            st = fnet_cpu_lapack_status(ctx, "sgesvd workspace query", info);
            goto out_free;
        }
        if (lwork_from(q) > lwork) {
            fnet_free(work);
            lwork = lwork_from(q);
            work = fnet_malloc_array((size_t)lwork, sizeof(float));
            if (work == NULL) {
                st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "gesvd: sgesvd workspace (%d floats)",
                               (int)lwork);
                goto out_free;
            }
        }
        info = LAPACKE_sgesvd_work(LAPACK_COL_MAJOR, 'S', 'S', M, N, x, M, S, Vt, M, U, K, work,
                                   lwork);
        st = fnet_cpu_lapack_status(ctx, "sgesvd", info);
    } else {
        st = fnet_cpu_lapack_status(ctx, "sgesdd", info);
    }
out_free:
    fnet_free(work);
    fnet_free(iwork);
    fnet_free(x);
    return st;
}

// Row-major A (m, n) is column-major X = Aᵀ (n, m), and A = Q·R is X = Rᵀ·Qᵀ = L·Q_lq: the LQ
// factorization of X (sgelqf, then sorglq for the k × m factor with orthonormal rows). L (n, k)
// column-major, ld n, read row-major is R (k, n); Q_lq (k, m), ld n, read row-major is Q (m, ·).
fnet_status fnet_cpu_qr(fnet_ctx *ctx, int64_t m, int64_t n, const float *A, float *Q, float *R)
{
    fnet_status st = check_input(ctx, "qr", m, n, A);
    if (st != FNET_OK)
        return st;
    lapack_int M = (lapack_int)n, N = (lapack_int)m, K = M < N ? M : N;
    int64_t k = K;
    float *x = fnet_malloc_array((size_t)(m * n), sizeof(float));
    float *tau = fnet_malloc_array((size_t)K, sizeof(float));
    float *work = NULL;
    if (x == NULL || tau == NULL) {
        st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "qr: copy of A (%lld, %lld)", (long long)m,
                       (long long)n);
        goto out_free;
    }
    memcpy(x, A, (size_t)(m * n) * sizeof(float));
    float q1 = 0.0f, q2 = 0.0f;
    lapack_int info = LAPACKE_sgelqf_work(LAPACK_COL_MAJOR, M, N, x, M, tau, &q1, -1);
    if (info == 0)
        info = LAPACKE_sorglq_work(LAPACK_COL_MAJOR, K, N, K, x, M, tau, &q2, -1);
    if (info != 0) {
        st = fnet_cpu_lapack_status(ctx, "sgelqf/sorglq workspace query", info);
        goto out_free;
    }
    lapack_int lwork = lwork_from(q1 > q2 ? q1 : q2);
    work = fnet_malloc_array((size_t)lwork, sizeof(float));
    if (work == NULL) {
        st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "qr: workspace (%d floats)", (int)lwork);
        goto out_free;
    }
    info = LAPACKE_sgelqf_work(LAPACK_COL_MAJOR, M, N, x, M, tau, work, lwork);
    if (info != 0) {
        st = fnet_cpu_lapack_status(ctx, "sgelqf", info);
        goto out_free;
    }
    // R (k, n): row a is column a of L, zero left of the diagonal
    for (int64_t a = 0; a < k; a++)
        for (int64_t c = 0; c < n; c++)
            R[a * n + c] = c < a ? 0.0f : x[a * n + c];
    info = LAPACKE_sorglq_work(LAPACK_COL_MAJOR, K, N, K, x, M, tau, work, lwork);
    if (info != 0) {
        st = fnet_cpu_lapack_status(ctx, "sorglq", info);
        goto out_free;
    }
    // Q (m, k): Q[b][a] = Q_lq(a, b), stored at b·n + a
    for (int64_t b = 0; b < m; b++)
        for (int64_t a = 0; a < k; a++)
            Q[b * k + a] = x[b * n + a];
out_free:
    fnet_free(work);
    fnet_free(tau);
    fnet_free(x);
    return st;
}
