/* Reference LAPACK-shaped ops in double, plain and obviously correct: the thin SVD by one-sided
 * (Hestenes) Jacobi rotations and the thin QR by Householder reflections (Golub & Van Loan, Matrix
 * Computations, 4th ed., §8.6.3 and §5.2). The oracle of the CPU (LAPACKE) versions;
 * docs/tt_algebra.md. */
#include "cpu/ref.h"

#include <float.h>
#include <math.h>

// a Jacobi sweep over all column pairs; more than this many sweeps means it does not converge
#define JACOBI_MAX_SWEEPS 80

fnet_status fnet_host_la_check(fnet_ctx *ctx, const char *op, int64_t m, int64_t n, const float *A)
{
    if (m < 1 || n < 1)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "%s: shape (%lld, %lld) out of range", op,
                         (long long)m, (long long)n);
    for (int64_t i = 0; i < m * n; i++)
        if (!isfinite(A[i]))
            return fnet_fail(ctx, FNET_ERR_NUMERIC, "%s: A has a non-finite entry at [%lld]", op,
                             (long long)i);
    return FNET_OK;
}

static double dot_d(int64_t n, const double *x, const double *y)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++)
        s += x[i] * y[i];
    return s;
}

// One-sided Jacobi on X (p, q), p >= q, stored by columns (x_j = X + j·p): rotate column pairs
// until every pair is orthogonal to working precision, accumulating the rotations in V (q, q),
// also by columns. Then X = U·Σ with orthogonal columns and A = X·Vᵀ at the start.
static fnet_status jacobi(fnet_ctx *ctx, int64_t p, int64_t q, double *X, double *V)
{
    const double tol = (double)p * DBL_EPSILON;
    for (int sweep = 0; sweep < JACOBI_MAX_SWEEPS; sweep++) {
        bool rotated = false;
        for (int64_t j = 0; j < q - 1; j++) {
            for (int64_t l = j + 1; l < q; l++) {
                double *xj = X + j * p, *xl = X + l * p;
                double alpha = dot_d(p, xj, xj), beta = dot_d(p, xl, xl);
                double gamma = dot_d(p, xj, xl);
                if (gamma == 0.0 || fabs(gamma) <= tol * sqrt(alpha) * sqrt(beta))
                    continue;
                rotated = true;
                // the rotation that zeroes the (j, l) entry of XᵀX: tan θ = t, smaller root
                double zeta = (beta - alpha) / (2.0 * gamma);
                double t = fabs(zeta) > 1e150 ? 0.5 / zeta
                                              : (zeta >= 0.0 ? 1.0 : -1.0) /
                                                    (fabs(zeta) + sqrt(1.0 + zeta * zeta));
                double c = 1.0 / sqrt(1.0 + t * t), s = c * t;
                for (int64_t i = 0; i < p; i++) {
                    double a = xj[i], b = xl[i];
                    xj[i] = c * a - s * b;
                    xl[i] = s * a + c * b;
                }
                double *vj = V + j * q, *vl = V + l * q;
                for (int64_t i = 0; i < q; i++) {
                    double a = vj[i], b = vl[i];
                    vj[i] = c * a - s * b;
                    vl[i] = s * a + c * b;
                }
            }
        }
        if (!rotated)
            return FNET_OK;
    }
    return fnet_fail(ctx, FNET_ERR_NUMERIC, "gesvd: Jacobi did not converge in %d sweeps",
                     JACOBI_MAX_SWEEPS);
}

// Columns of Uc (p, q), by columns, whose flag is false are replaced by unit vectors orthogonal
// to all others (the singular vectors of zero singular values are any such completion). The
// unit vector e_i with the largest residual 1 − Σ_j U[i][j]² is projected and normalized (twice
// Gram-Schmidt); that residual sums to p − (columns kept) >= 1 over i, so it is never tiny.
static void complete_basis(int64_t p, int64_t q, double *Uc, const bool *valid, double *rownorm)
{
    for (int64_t i = 0; i < p; i++) {
        rownorm[i] = 0.0;
        for (int64_t j = 0; j < q; j++)
            if (valid[j])
                rownorm[i] += Uc[j * p + i] * Uc[j * p + i];
    }
    for (int64_t j = 0; j < q; j++) {
        if (valid[j])
            continue;
        int64_t best = 0;
        for (int64_t i = 1; i < p; i++)
            if (rownorm[i] < rownorm[best])
                best = i;
        double *u = Uc + j * p;
        for (int64_t i = 0; i < p; i++)
            u[i] = i == best ? 1.0 : 0.0;
        for (int pass = 0; pass < 2; pass++) {
            for (int64_t l = 0; l < q; l++) {
                if (l == j || (!valid[l] && l > j))
                    continue; // only columns already orthonormal
                double *w = Uc + l * p;
                double h = dot_d(p, w, u);
                for (int64_t i = 0; i < p; i++)
                    u[i] -= h * w[i];
            }
        }
        double nu = sqrt(dot_d(p, u, u));
        for (int64_t i = 0; i < p; i++) {
            u[i] /= nu;
            rownorm[i] += u[i] * u[i];
        }
    }
}

// A (m, n) -> U (m, k), S (k) descending, Vt (k, n), k = min(m, n). With p = max(m, n) and
// q = k, Jacobi runs on X (p, q) = A (m >= n) or Aᵀ (m < n): A = X·Vᵀ = (X/σ)·Σ·Vᵀ, or for the
// transpose Aᵀ = U'·Σ·V'ᵀ, so A = V'·Σ·U'ᵀ.
fnet_status fnet_ref_gesvd(fnet_ctx *ctx, int64_t m, int64_t n, const float *A, float *U, float *S,
                           float *Vt)
{
    fnet_status st = fnet_host_la_check(ctx, "gesvd", m, n, A);
    if (st != FNET_OK)
        return st;
    bool tall = m >= n;
    int64_t p = tall ? m : n, q = tall ? n : m;
    double *X = fnet_malloc_array((size_t)(p * q), sizeof(double));
    double *V = fnet_malloc_array((size_t)(q * q), sizeof(double));
    double *sig = fnet_malloc_array((size_t)q, sizeof(double));
    double *rownorm = fnet_malloc_array((size_t)p, sizeof(double));
    int64_t *order = fnet_malloc_array((size_t)q, sizeof(int64_t));
    bool *valid = fnet_malloc_array((size_t)q, sizeof(bool));
    if (X == NULL || V == NULL || sig == NULL || rownorm == NULL || order == NULL ||
        valid == NULL) {
        st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "gesvd: workspace for (%lld, %lld)",
                       (long long)m, (long long)n);
        goto out_free;
    }
    // X by columns: column j of A (tall) or row j of A (wide)
    for (int64_t j = 0; j < q; j++)
        for (int64_t i = 0; i < p; i++)
            X[j * p + i] = tall ? (double)A[i * n + j] : (double)A[j * n + i];
    for (int64_t i = 0; i < q * q; i++)
        V[i] = 0.0;
    for (int64_t j = 0; j < q; j++)
        V[j * q + j] = 1.0;
    st = jacobi(ctx, p, q, X, V);
    if (st != FNET_OK)
        goto out_free;
    // σ_j = ‖x_j‖; x_j/σ_j are the left singular vectors (exactly zero columns are completed)
    for (int64_t j = 0; j < q; j++) {
        sig[j] = sqrt(dot_d(p, X + j * p, X + j * p));
        valid[j] = sig[j] > DBL_MIN / DBL_EPSILON;
        if (!valid[j])
            sig[j] = 0.0;
        for (int64_t i = 0; i < p && valid[j]; i++)
            X[j * p + i] /= sig[j];
    }
    complete_basis(p, q, X, valid, rownorm);
    // order: indices by σ descending (insertion sort, stable)
    for (int64_t j = 0; j < q; j++) {
        int64_t l = j;
        while (l > 0 && sig[order[l - 1]] < sig[j]) {
            order[l] = order[l - 1];
            l--;
        }
        order[l] = j;
    }
    for (int64_t a = 0; a < q; a++) {
        int64_t j = order[a];
        S[a] = (float)sig[j];
        const double *x = X + j * p, *v = V + j * q;
        if (tall) { // U (m, k) = x/σ, Vt (k, n) = vᵀ
            for (int64_t i = 0; i < m; i++)
                U[i * q + a] = (float)x[i];
            for (int64_t c = 0; c < n; c++)
                Vt[a * n + c] = (float)v[c];
        } else { // U (m, k) = V', Vt (k, n) = (x/σ)ᵀ
            for (int64_t i = 0; i < m; i++)
                U[i * q + a] = (float)v[i];
            for (int64_t c = 0; c < n; c++)
                Vt[a * n + c] = (float)x[c];
        }
    }
out_free:
    fnet_free(valid);
    fnet_free(order);
    fnet_free(rownorm);
    fnet_free(sig);
    fnet_free(V);
    fnet_free(X);
    return st;
}

// A (m, n) -> Q (m, k), R (k, n), k = min(m, n). Householder: H_j = I − 2·v_j·v_jᵀ (‖v_j‖ = 1,
// zero above row j) zeroes column j below the diagonal; R is what remains of the first k rows and
// Q = H_0···H_{k-1}·[I_k; 0], accumulated backwards.
fnet_status fnet_ref_qr(fnet_ctx *ctx, int64_t m, int64_t n, const float *A, float *Q, float *R)
{
    fnet_status st = fnet_host_la_check(ctx, "qr", m, n, A);
    if (st != FNET_OK)
        return st;
    int64_t k = m < n ? m : n;
    double *X = fnet_malloc_array((size_t)(m * n), sizeof(double));
    double *Vh = fnet_calloc((size_t)(m * k), sizeof(double)); // v_j in column j, by columns
    double *Qd = fnet_calloc((size_t)(m * k), sizeof(double)); // Q by columns
    if (X == NULL || Vh == NULL || Qd == NULL) {
        st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "qr: workspace for (%lld, %lld)",
                       (long long)m, (long long)n);
        goto out_free;
    }
    for (int64_t i = 0; i < m * n; i++)
        X[i] = (double)A[i];
    for (int64_t j = 0; j < k; j++) {
        double *v = Vh + j * m;
        double nx = 0.0;
        for (int64_t i = j; i < m; i++)
            nx += X[i * n + j] * X[i * n + j];
        nx = sqrt(nx);
        if (nx == 0.0)
            continue; // column already zero: H_j = I
        // v = x − α·e_j with α = −sign(x_j)·‖x‖ (no cancellation), then normalized
        double alpha = X[j * n + j] >= 0.0 ? -nx : nx;
        for (int64_t i = j; i < m; i++)
            v[i] = X[i * n + j];
        v[j] -= alpha;
        double nv = sqrt(dot_d(m - j, v + j, v + j));
        for (int64_t i = j; i < m; i++)
            v[i] /= nv;
        for (int64_t c = j; c < n; c++) {
            double s = 0.0;
            for (int64_t i = j; i < m; i++)
                s += v[i] * X[i * n + c];
            for (int64_t i = j; i < m; i++)
                X[i * n + c] -= 2.0 * s * v[i];
        }
    }
    for (int64_t a = 0; a < k; a++)
        for (int64_t c = 0; c < n; c++)
            R[a * n + c] = c < a ? 0.0f : (float)X[a * n + c];
    for (int64_t j = 0; j < k; j++)
        Qd[j * m + j] = 1.0;
    for (int64_t j = k - 1; j >= 0; j--) {
        const double *v = Vh + j * m;
        for (int64_t c = 0; c < k; c++) {
            double *qc = Qd + c * m;
            double s = dot_d(m - j, v + j, qc + j);
            for (int64_t i = j; i < m; i++)
                qc[i] -= 2.0 * s * v[i];
        }
    }
    for (int64_t i = 0; i < m; i++)
        for (int64_t c = 0; c < k; c++)
            Q[i * k + c] = (float)Qd[c * m + i];
out_free:
    fnet_free(Qd);
    fnet_free(Vh);
    fnet_free(X);
    return st;
}
