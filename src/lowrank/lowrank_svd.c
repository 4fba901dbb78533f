/* Truncated SVDs A (m, n) ≈ U (m, r)·V (r, n) for low-rank layers (src/lowrank/lowrank_svd.h): the
 * full SVD cut to rank r, or the randomized SVD of Halko, Martinsson & Tropp, "Finding Structure
 * with Randomness", SIAM Review 53(2), 2011 (Algorithm 4.4, the randomized subspace iteration, then
 * Algorithm 5.1, the direct SVD of the small QᵀA). Host-side, on a backend's host linear algebra
 * `la`. docs/lowrank.md, "Truncated and randomized SVD". */
#include "lowrank/lowrank_svd.h"

#include <float.h>
#include <math.h>
#include <string.h>

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

// Arguments, in the order the header lists them: sizes, their product, the cut, the path choice.
// Every buffer below has at most m·n floats (k <= min(m, n)), so checking m·n checks them all.
static fnet_status check_args(fnet_ctx *ctx, int64_t m, int64_t n,
                              const struct fnet_lowrank_cut *cut, int randomized)
{
    if (m < 1 || n < 1)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "lowrank svd: shape (%lld, %lld): m and n "
                         "must be >= 1", (long long)m, (long long)n);
    if (m > INT64_MAX / n || (uint64_t)(m * n) > SIZE_MAX / sizeof(float))
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "lowrank svd: A (%lld, %lld) is too large",
                         (long long)m, (long long)n);
    int64_t kmax = min64(m, n);
    if (cut->max_rank < 1 || cut->max_rank > kmax)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "lowrank svd: max_rank %lld outside 1..%lld "
                         "(min(m, n) of A (%lld, %lld))", (long long)cut->max_rank,
                         (long long)kmax, (long long)m, (long long)n);
    if (!(cut->energy >= 0.0 && cut->energy <= 1.0)) // NaN fails both
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "lowrank svd: energy %g outside [0, 1]",
                         cut->energy);
    if (randomized < -1 || randomized > 1)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "lowrank svd: randomized %d is not -1 (by "
                         "size), 0 (full) or 1 (randomized)", randomized);
    return FNET_OK;
}

// The rank the cut keeps of the singular values S (kk) descending, of a matrix whose larger side
// is `big`: max_rank alone when energy is 0, else the smallest r >= 1 with
//   Σ_{i<r} σ_i² >= energy·Σ_i σ_i²   (in double),
// capped at max_rank. Singular values at or below big·ε_float·σ_0 are the float rounding of a
// rank-deficient A, not signal (the default numerical-rank threshold of NumPy's matrix_rank),
// and count as zero in both sums: otherwise energy 1 would keep the noise too.
static int64_t cut_rank(const float *S, int64_t kk, int64_t big,
                        const struct fnet_lowrank_cut *cut)
{
    if (cut->energy == 0.0)
        return min64(cut->max_rank, kk);
    double tol = (double)big * (double)FLT_EPSILON * (double)S[0];
    int64_t nz = 0; // S is descending: the values above tol are a prefix
    while (nz < kk && (double)S[nz] > tol)
        nz++;
    double total = 0.0;
    for (int64_t i = 0; i < nz; i++)
        total += (double)S[i] * (double)S[i];
    // the same sums in the same order, so the prefix of all nz reaches total exactly, and
    // energy·total <= total for energy <= 1: the loop stops at r <= max(nz, 1)
    double target = cut->energy * total, acc = 0.0;
    int64_t r = 0;
    while (r < kk) {
        if (r < nz)
            acc += (double)S[r] * (double)S[r];
        r++;
        if (acc >= target)
            break;
    }
    return min64(r, cut->max_rank);
}

// The balanced factors of rank r from an SVD with Ub (rows, ku), S, Vt (., n) row-major:
// U (rows, r) = Ub[:, :r]·diag(√σ), V (r, n) = diag(√σ)·Vt[:r, :]. Ub is scaled in place.
static void balanced_split(int64_t rows, int64_t ku, int64_t n, int64_t r, float *Ub,
                           const float *S, const float *Vt, float *U, float *V)
{
    for (int64_t a = 0; a < r; a++) {
        float s = (float)sqrt((double)S[a]);
        for (int64_t j = 0; j < n; j++)
            V[a * n + j] = s * Vt[a * n + j];
    }
    for (int64_t a = 0; a < r; a++) {
        float s = (float)sqrt((double)S[a]);
        for (int64_t i = 0; i < rows; i++)
            Ub[i * ku + a] *= s;
    }
    if (U != NULL)
        for (int64_t i = 0; i < rows; i++)
            memcpy(U + i * r, Ub + i * ku, (size_t)r * sizeof(float));
}

// The factors U (m, r) and V (r, n): both or neither.
static fnet_status alloc_factors(fnet_ctx *ctx, int64_t m, int64_t r, int64_t n, float **U,
                                 float **V)
{
    *U = fnet_malloc_array((size_t)(m * r), sizeof(float));
    *V = fnet_malloc_array((size_t)(r * n), sizeof(float));
    if (*U == NULL || *V == NULL) {
        fnet_free(*V);
        fnet_free(*U);
        *U = *V = NULL;
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "lowrank svd: factors U (%lld, %lld) and V "
                         "(%lld, %lld)", (long long)m, (long long)r, (long long)r, (long long)n);
    }
    return FNET_OK;
}

// The full path: A = Ũ·Σ·Ṽᵀ (thin, kk = min(m, n)), cut, then the balanced split.
static fnet_status full_svd(fnet_ctx *ctx, const struct fnet_host_la *la, const float *A,
                            int64_t m, int64_t n, const struct fnet_lowrank_cut *cut,
                            int64_t *r_out, float **U_out, float **V_out)
{
    // A (m, n) -> Uf (m, kk), S (kk), Vt (kk, n); U (m, r), V (r, n)
    int64_t kk = min64(m, n);
    fnet_status st = FNET_OK;
    float *Uf = fnet_malloc_array((size_t)(m * kk), sizeof(float));
    float *S = fnet_malloc_array((size_t)kk, sizeof(float));
    float *Vt = fnet_malloc_array((size_t)(kk * n), sizeof(float));
    float *U = NULL, *V = NULL;
    if (Uf == NULL || S == NULL || Vt == NULL) {
        st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "lowrank svd: SVD workspace for A (%lld, "
                       "%lld)", (long long)m, (long long)n);
        goto out_free;
    }
    st = la->gesvd(ctx, m, n, A, Uf, S, Vt);
    if (st != FNET_OK)
        goto out_free;
    int64_t r = cut_rank(S, kk, m > n ? m : n, cut);
    st = alloc_factors(ctx, m, r, n, &U, &V);
    if (st != FNET_OK)
        goto out_free;
    balanced_split(m, kk, n, r, Uf, S, Vt, U, V);
    *r_out = r;
    *U_out = U;
    *V_out = V;
out_free:
    fnet_free(Vt);
    fnet_free(S);
    fnet_free(Uf);
    return st;
}

// The randomized path, k = min(max_rank + p, min(m, n)) columns:
//   Ω (n, k) ~ N(0, 1);  Y = A·Ω;  Q = qr(Y);
//   q times: Z = qr(Aᵀ·Q); Q = qr(A·Z)      (Algorithm 4.4: QR after every product, so the
//                                            small singular directions survive in float)
//   B (k, n) = Qᵀ·A = Ũ_B·Σ·Ṽᵀ;  U = Q·Ũ_B    (Algorithm 5.1)
// Buffers are reused: Om holds Ω, then qr(AᵀQ), then Ṽᵀ; Z holds AᵀQ, then B; R holds the
// discarded R factors, then Ũ_B.
static fnet_status randomized_svd(fnet_ctx *ctx, const struct fnet_host_la *la, const float *A,
                                  int64_t m, int64_t n, const struct fnet_lowrank_cut *cut,
                                  uint64_t seed, int64_t *r_out, float **U_out, float **V_out)
{
    int64_t kmin = min64(m, n);
    int64_t k = min64(cut->max_rank + FNET_LOWRANK_OVERSAMPLE, kmin);
    fnet_status st = FNET_OK;
    float *Om = fnet_malloc_array((size_t)(n * k), sizeof(float)); // (n, k), then (k, n)
    float *Z = fnet_malloc_array((size_t)(n * k), sizeof(float));  // (n, k), then (k, n)
    float *Y = fnet_malloc_array((size_t)(m * k), sizeof(float));  // (m, k)
    float *Q = fnet_malloc_array((size_t)(m * k), sizeof(float));  // (m, k)
    float *R = fnet_malloc_array((size_t)(k * k), sizeof(float));  // (k, k)
    float *S = fnet_malloc_array((size_t)k, sizeof(float));
    float *U = NULL, *V = NULL;
    if (Om == NULL || Z == NULL || Y == NULL || Q == NULL || R == NULL || S == NULL) {
        st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "lowrank svd: randomized SVD workspace for A "
                       "(%lld, %lld), k = %lld", (long long)m, (long long)n, (long long)k);
        goto out_free;
    }
    // Ω drawn on the host in row-major order, so every host_la gets the same test matrix
    fnet_rng rng;
    fnet_rng_seed(&rng, seed);
    for (int64_t i = 0; i < n * k; i++)
        Om[i] = (float)fnet_rng_normal(&rng);
    la->sgemm(ctx, false, false, m, k, n, 1.0f, A, n, Om, k, 0.0f, Y, k);
    st = la->qr(ctx, m, k, Y, Q, R); // k <= m: Q (m, k), R (k, k)
    if (st != FNET_OK)
        goto out_free;
    for (int it = 0; it < FNET_LOWRANK_POWER_ITERS; it++) {
        la->sgemm(ctx, true, false, n, k, m, 1.0f, A, n, Q, k, 0.0f, Z, k);
        st = la->qr(ctx, n, k, Z, Om, R); // k <= n: Om (n, k)
        if (st != FNET_OK)
            goto out_free;
        la->sgemm(ctx, false, false, m, k, n, 1.0f, A, n, Om, k, 0.0f, Y, k);
        st = la->qr(ctx, m, k, Y, Q, R);
        if (st != FNET_OK)
            goto out_free;
    }
    la->sgemm(ctx, true, false, k, n, m, 1.0f, Q, k, A, n, 0.0f, Z, n); // B = QᵀA (k, n) in Z
    st = la->gesvd(ctx, k, n, Z, R, S, Om); // k <= n: Ũ_B (k, k) in R, S (k), Ṽᵀ (k, n) in Om
    if (st != FNET_OK)
        goto out_free;
    int64_t r = cut_rank(S, k, m > n ? m : n, cut);
    st = alloc_factors(ctx, m, r, n, &U, &V);
    if (st != FNET_OK)
        goto out_free;
    // Ũ_B[:, :r]·diag(√σ) in R, then U (m, r) = Q (m, k)·that (k, r)
    balanced_split(k, k, n, r, R, S, Om, NULL, V);
    la->sgemm(ctx, false, false, m, r, k, 1.0f, Q, k, R, k, 0.0f, U, r);
    *r_out = r;
    *U_out = U;
    *V_out = V;
out_free:
    fnet_free(S);
    fnet_free(R);
    fnet_free(Q);
    fnet_free(Y);
    fnet_free(Z);
    fnet_free(Om);
    return st;
}

fnet_status fnet_lowrank_svd(fnet_ctx *ctx, const struct fnet_host_la *la, const float *A,
                             int64_t m, int64_t n, const struct fnet_lowrank_cut *cut,
                             int randomized, uint64_t seed, int64_t *r, float **U, float **V)
{
    if (U != NULL)
        *U = NULL;
    if (V != NULL)
        *V = NULL;
    if (r != NULL)
        *r = 0;
    if (ctx == NULL || la == NULL || A == NULL || cut == NULL || r == NULL || U == NULL ||
        V == NULL)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "lowrank svd: NULL argument");
    fnet_status st = check_args(ctx, m, n, cut, randomized);
    if (st != FNET_OK)
        return st;
    for (int64_t i = 0; i < m * n; i++)
        if (!isfinite(A[i]))
            return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "lowrank svd: A has a non-finite entry "
                             "at (%lld, %lld)", (long long)(i / n), (long long)(i % n));
    // large, and the sketch (rank + oversampling columns) well below min(m, n)
    if (randomized < 0)
        randomized = m * n > FNET_LOWRANK_FULL_SVD_MAX &&
                     2 * (cut->max_rank + FNET_LOWRANK_OVERSAMPLE) < min64(m, n);
    if (randomized)
        return randomized_svd(ctx, la, A, m, n, cut, seed, r, U, V);
    return full_svd(ctx, la, A, m, n, cut, r, U, V);
}
