/* CP algebra (src/tn/cp.h): shape checks, the dense tensor of a CP decomposition as one GEMM of two
 * Khatri–Rao products, and CP-ALS (Kolda & Bader, "Tensor Decompositions and Applications", SIAM
 * Review 51(3), 2009, §3.4 and Fig. 3.3) on the backend's host linear algebra (ctx->be->host_la:
 * sgemm for the MTTKRPs, gesvd for the pseudo-inverses). Host-side: every pointer is host memory;
 * the small (R, R) algebra, the norms and the fit are in double. */
#include "tn/cp.h"
#include "core/backend.h"

#include <math.h>
#include <string.h>

// The normal equations' matrix V (R, R) is pseudo-inverted with the singular values below
// PINV_RCOND·σ_max dropped. V is rounded to float for gesvd, whose singular values then carry
// absolute errors of a few FLT_EPSILON·σ_max (ε ≈ 1.2e-7): one below about 10 ε·σ_max is mostly
// rounding, and inverting it would blow that noise up more than 1e6-fold into the factor (a
// swamp's near-collinear components are where this happens). 1e-6 ≈ 8 ε cuts only there: a V
// with condition number below 1e6 is inverted whole, so a least-squares step is never changed
// where the float SVD can resolve it.
#define PINV_RCOND 1e-6
// The stopping rule's fit comes from the normal equations (cheap_res2) while ‖X − X̂‖² >=
// CHEAP_RES2_MIN·‖X‖² (a relative residual of 1%): there the estimate's rounding, about
// 1e-8·‖X‖², is 1e-4 of it at most; below, the residual is formed (one more GEMM per sweep).
#define CHEAP_RES2_MIN 1e-4
// Floats of one block of the dense tensor when the final fit is computed exactly (256 KiB)
#define FIT_BLOCK_FLOATS 65536

static int64_t sat_mul(int64_t a, int64_t b)
{
    return b != 0 && a > INT64_MAX / b ? INT64_MAX : a * b;
}

static int64_t sat_add(int64_t a, int64_t b)
{
    return a > INT64_MAX - b ? INT64_MAX : a + b;
}

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

// Π dims[a..b) (1 when a == b); only for checked shapes, whose full product is representable
static int64_t dims_prod(const struct fnet_cp_shape *s, int a, int b)
{
    int64_t p = 1;
    for (int l = a; l < b; l++)
        p *= s->dims[l];
    return p;
}

// where A_k starts in the factors
int64_t fnet_cp_factor_offset(const struct fnet_cp_shape *s, int k)
{
    int64_t off = 0;
    for (int l = 0; l < k; l++)
        off += s->dims[l] * s->rank;
    return off;
}

int64_t fnet_cp_num_params(const struct fnet_cp_shape *s)
{
    return fnet_cp_factor_offset(s, s->D);
}

fnet_status fnet_cp_shape_check(fnet_ctx *ctx, const struct fnet_cp_shape *s)
{
    if (s == NULL)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "cp shape is NULL");
    if (s->D < 1 || s->D > FNET_TUCKER_MAX_D)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "cp D = %d out of range 1..%d", s->D,
                         FNET_TUCKER_MAX_D);
    int64_t n = 1, sum = 0;
    for (int k = 0; k < s->D; k++) {
        if (s->dims[k] < 1)
            return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "cp mode %d has size %lld: must be >= 1",
                             k, (long long)s->dims[k]);
        n = sat_mul(n, s->dims[k]);
        sum = sat_add(sum, s->dims[k]);
        // the dense tensor is addressed in bytes, as doubles at most (the tests' naive oracles)
        if (n == INT64_MAX || (uint64_t)n > SIZE_MAX / sizeof(double))
            return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "cp dims overflow at mode %d: the dense "
                             "tensor is not addressable", k);
    }
    if (s->rank < 1)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "cp rank must be >= 1, got %lld",
                         (long long)s->rank);
    int64_t np = sat_mul(sum, s->rank);
    if (np == INT64_MAX || (uint64_t)np > SIZE_MAX / sizeof(double))
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "cp factors (rank %lld × Σ dims %lld) are "
                         "not addressable", (long long)s->rank, (long long)sum);
    return FNET_OK;
}

// K (Π_{a<=l<b} dims[l], R) = A_a ⊙ ··· ⊙ A_{b-1}, the Khatri–Rao product: K[(i_a, .., i_{b-1}), r]
// = Π_l A_l[i_l, r], the multi-index row-major like the tensor's; a == b gives one row of ones.
// Built in place one mode at a time: row p·d + i of the next product reads only row p of the
// last, and p <= p·d + i, so writing rows from the last down never overwrites one still unread.
static void khatri_rao(const struct fnet_cp_shape *s, const float *factors, int a, int b, float *K)
{
    const int64_t R = s->rank;
    for (int64_t r = 0; r < R; r++)
        K[r] = 1.0f;
    int64_t rows = 1;
    for (int l = a; l < b; l++) {
        const float *A = factors + fnet_cp_factor_offset(s, l);
        const int64_t d = s->dims[l];
        for (int64_t p = rows - 1; p >= 0; p--)
            for (int64_t i = d - 1; i >= 0; i--) {
                float *dst = K + (p * d + i) * R;
                const float *src = K + p * R, *ai = A + i * R;
                for (int64_t r = 0; r < R; r++)
                    dst[r] = src[r] * ai[r];
            }
        rows *= d;
    }
}

// The split h (0 <= h <= D) of the modes that makes the dense tensor's matricization X (P, Q),
// P = Π_{k<h} dims[k], Q = Π_{k>=h} dims[k], most nearly square: its Khatri–Rao factors
// (P, R) and (Q, R) are then the smallest and the GEMM's shape the most even.
static int full_split(const struct fnet_cp_shape *s, int64_t *P, int64_t *Q)
{
    int best = 0;
    int64_t n = dims_prod(s, 0, s->D), best_sum = INT64_MAX;
    for (int h = 0; h <= s->D; h++) {
        int64_t p = dims_prod(s, 0, h), q = n / p;
        if (p + q < best_sum) {
            best_sum = p + q;
            best = h;
        }
    }
    *P = dims_prod(s, 0, best);
    *Q = n / *P;
    return best;
}

fnet_status fnet_cp_full(fnet_ctx *ctx, const struct fnet_cp_shape *s, const float *factors,
                         float *X)
{
    if (ctx == NULL || factors == NULL || X == NULL)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "cp_full: NULL argument");
    fnet_status st = fnet_cp_shape_check(ctx, s);
    if (st != FNET_OK)
        return st;
    const int64_t R = s->rank;
    int64_t P, Q;
    int h = full_split(s, &P, &Q);
    int64_t size = sat_mul(sat_add(P, Q), R);
    float *K = fnet_malloc_array((size_t)size, sizeof(float));
    if (K == NULL)
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "cp_full: Khatri–Rao products (%lld floats)",
                         (long long)size);
    float *KL = K, *KR = K + P * R;
    khatri_rao(s, factors, 0, h, KL);
    khatri_rao(s, factors, h, s->D, KR);
    // X (P, Q) = KL (P, R) · KRᵀ (R, Q): Σ_r of the outer products, split at h
    ctx->be->host_la->sgemm(ctx, false, true, P, Q, R, 1.0f, KL, R, KR, R, 0.0f, X, Q);
    fnet_free(K);
    return FNET_OK;
}

// ---- CP-ALS ----

// CP-ALS's workspace, carved from one float and one double buffer. The MTTKRPs go through the
// split of full_split, X (P, Q): the modes before h are the left half, the others the right.
struct als_ws {
    int h;
    int64_t P, Q, block_rows; // block_rows: rows of X̂ (P, Q) per block of the exact fit
    float *KL, *KR;           // Khatri–Rao products of the halves (P, R), (Q, R)
    float *Y;                 // X contracted with one half's product: (P, R) or (Q, R)
    float *K1, *K2;           // Khatri–Rao products within a half, (max(P, Q), R) each
    float *blk;               // (block_rows, Q)
    float *Vf, *U, *S, *Vt;   // V (R, R) rounded for gesvd, and its SVD
    double *M, *Ad;           // MTTKRP and the new factor (dims[k], R)
    double *G;                // Gram matrices A_lᵀA_l (R, R) of the normalized factors, D of them
    double *V, *W;            // ⊛_{l≠k} G_l and its pseudo-inverse (R, R)
    double *lambda;           // (R) the column norms of the factor solved last
    float *fbuf;
    double *dbuf;
};

static void als_ws_free(struct als_ws *w)
{
    fnet_free(w->dbuf);
    fnet_free(w->fbuf);
}

// Sizes, then the two allocations; FNET_ERR_OUT_OF_MEMORY (nothing held) when either fails.
static fnet_status als_ws_alloc(fnet_ctx *ctx, const struct fnet_cp_shape *s, struct als_ws *w)
{
    const int64_t R = s->rank;
    int64_t dmax = 1;
    for (int k = 0; k < s->D; k++)
        dmax = max64(dmax, s->dims[k]);
    w->h = full_split(s, &w->P, &w->Q);
    w->block_rows = w->P < FIT_BLOCK_FLOATS / w->Q ? w->P : max64(1, FIT_BLOCK_FLOATS / w->Q);
    const int64_t RR = sat_mul(R, R), half = sat_mul(max64(w->P, w->Q), R);
    int64_t fl[] = {sat_mul(w->P, R), sat_mul(w->Q, R), half, half, half,
                    sat_mul(w->block_rows, w->Q), RR, RR, R, RR};
    int64_t db[] = {sat_mul(dmax, R), sat_mul(dmax, R), sat_mul(s->D, RR), RR, RR, R};
    int64_t nf = 0, nd = 0;
    for (size_t i = 0; i < sizeof(fl) / sizeof(fl[0]); i++)
        nf = sat_add(nf, fl[i]);
    for (size_t i = 0; i < sizeof(db) / sizeof(db[0]); i++)
        nd = sat_add(nd, db[i]);
    w->fbuf = fnet_malloc_array((size_t)nf, sizeof(float));
    w->dbuf = fnet_malloc_array((size_t)nd, sizeof(double));
    if (w->fbuf == NULL || w->dbuf == NULL) {
        als_ws_free(w);
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "cp_als: workspace (%lld floats, %lld "
                         "doubles)", (long long)nf, (long long)nd);
    }
    float *f = w->fbuf;
    float **fp[] = {&w->KL, &w->KR, &w->Y, &w->K1, &w->K2, &w->blk, &w->Vf, &w->U, &w->S, &w->Vt};
    for (size_t i = 0; i < sizeof(fl) / sizeof(fl[0]); i++) {
        *fp[i] = f;
        f += fl[i];
    }
    double *d = w->dbuf;
    double **dp[] = {&w->M, &w->Ad, &w->G, &w->V, &w->W, &w->lambda};
    for (size_t i = 0; i < sizeof(db) / sizeof(db[0]); i++) {
        *dp[i] = d;
        d += db[i];
    }
    return FNET_OK;
}

// The MTTKRPs M_k = X_(k)·(⊙_{l≠k} A_l) share their expensive part within a half (a two-level
// dimension tree; Phan, Tichavský & Cichocki, IEEE Trans. Signal Process. 61(19), 2013): for
// every mode k < h, X (P, Q) is first contracted with the right half's Khatri–Rao product,
// Y (P, R) = X·KR, which no left-mode update changes, and M_k then needs only Y and the left
// factors; the right half likewise from Y (Q, R) = Xᵀ·KL once the left factors are new. Two
// GEMMs (4·N·R flops) per sweep instead of one per mode, never an unfolded copy of X.
static void contract_right(fnet_ctx *ctx, const struct fnet_cp_shape *s, const float *X,
                           const float *factors, struct als_ws *w)
{
    const int64_t R = s->rank;
    khatri_rao(s, factors, w->h, s->D, w->KR);
    // Y (P, R) = X (P, Q) · KR (Q, R)
    ctx->be->host_la->sgemm(ctx, false, false, w->P, R, w->Q, 1.0f, X, w->Q, w->KR, R, 0.0f, w->Y,
                            R);
}

static void contract_left(fnet_ctx *ctx, const struct fnet_cp_shape *s, const float *X,
                          const float *factors, struct als_ws *w)
{
    const int64_t R = s->rank;
    khatri_rao(s, factors, 0, w->h, w->KL);
    // Y (Q, R) = Xᵀ (Q, P) · KL (P, R)
    ctx->be->host_la->sgemm(ctx, true, false, w->Q, R, w->P, 1.0f, X, w->Q, w->KL, R, 0.0f, w->Y,
                            R);
}

// M (dims[k], R) for a mode k of the half [a0, a1) that Y (Π_{a0<=l<a1} dims[l], R) holds: with
// Y viewed as (La, dims[k], Lb, R), La and Lb the sizes of the half's modes before and after k,
// M[i, r] = Σ_{a, b} Y[a, i, b, r]·K1[a, r]·K2[b, r], K1 and K2 their Khatri–Rao products;
// 2·|Y| multiply-adds, in double.
static void mttkrp_from_half(const struct fnet_cp_shape *s, const float *factors, int a0, int a1,
                             int k, struct als_ws *w)
{
    const int64_t R = s->rank, d = s->dims[k], La = dims_prod(s, a0, k),
                  Lb = dims_prod(s, k + 1, a1);
    khatri_rao(s, factors, a0, k, w->K1);
    khatri_rao(s, factors, k + 1, a1, w->K2);
    double *M = w->M;
    for (int64_t i = 0; i < d * R; i++)
        M[i] = 0.0;
    for (int64_t a = 0; a < La; a++) {
        const float *k1 = w->K1 + a * R;
        for (int64_t i = 0; i < d; i++)
            for (int64_t b = 0; b < Lb; b++) {
                const float *y = w->Y + ((a * d + i) * Lb + b) * R, *k2 = w->K2 + b * R;
                double *m = M + i * R;
                for (int64_t r = 0; r < R; r++)
                    m[r] += (double)y[r] * ((double)k1[r] * (double)k2[r]);
            }
    }
}

// G (R, R) = AᵀA for A (d, R), in double
static void gram(int64_t d, int64_t R, const float *A, double *G)
{
    for (int64_t i = 0; i < R * R; i++)
        G[i] = 0.0;
    for (int64_t i = 0; i < d; i++) {
        const float *a = A + i * R;
        for (int64_t r = 0; r < R; r++)
            for (int64_t c = r; c < R; c++)
                G[r * R + c] += (double)a[r] * (double)a[c];
    }
    for (int64_t r = 0; r < R; r++)
        for (int64_t c = 0; c < r; c++)
            G[r * R + c] = G[c * R + r];
}

// W = V^+ (R, R) for V = ⊛_{l≠k} G_l (1 everywhere when D = 1), through the float SVD
// V = U·diag(S)·Vt: W = Vtᵀ·diag(1/S)·Uᵀ over the singular values kept (PINV_RCOND).
static fnet_status pinv_normal_matrix(fnet_ctx *ctx, const struct fnet_cp_shape *s, int k,
                                      struct als_ws *w)
{
    const int64_t R = s->rank, RR = R * R;
    for (int64_t i = 0; i < RR; i++)
        w->V[i] = 1.0;
    for (int l = 0; l < s->D; l++)
        if (l != k)
            for (int64_t i = 0; i < RR; i++)
                w->V[i] *= w->G[l * RR + i];
    for (int64_t i = 0; i < RR; i++)
        w->Vf[i] = (float)w->V[i];
    fnet_status st = ctx->be->host_la->gesvd(ctx, R, R, w->Vf, w->U, w->S, w->Vt);
    if (st != FNET_OK)
        return st;
    const double cut = PINV_RCOND * (double)w->S[0];
    for (int64_t i = 0; i < RR; i++)
        w->W[i] = 0.0;
    for (int64_t j = 0; j < R; j++) {
        if (!((double)w->S[j] > cut)) // σ_max = 0 (V = 0) keeps none: W = 0
            break;
        double inv = 1.0 / (double)w->S[j];
        for (int64_t a = 0; a < R; a++) {
            double va = (double)w->Vt[j * R + a] * inv;
            for (int64_t b = 0; b < R; b++)
                w->W[a * R + b] += va * (double)w->U[b * R + j];
        }
    }
    return FNET_OK;
}

// A_k = M·V^+ (dims[k], R), the least-squares update: Ad keeps it unnormalized; A_k (float)
// gets it with unit columns, lambda its column norms (0 for a zero column, left at zero), and
// G_k the Gram matrix of the normalized factor. FNET_ERR_NUMERIC when it is not finite.
static fnet_status update_factor(fnet_ctx *ctx, const struct fnet_cp_shape *s, int k, int sweep,
                                 float *factors, struct als_ws *w)
{
    const int64_t R = s->rank, d = s->dims[k];
    fnet_status st = pinv_normal_matrix(ctx, s, k, w);
    if (st != FNET_OK)
        return st;
    for (int64_t r = 0; r < R; r++)
        w->lambda[r] = 0.0;
    for (int64_t i = 0; i < d; i++) {
        const double *m = w->M + i * R;
        double *a = w->Ad + i * R;
        for (int64_t c = 0; c < R; c++)
            a[c] = 0.0;
        for (int64_t r = 0; r < R; r++)
            for (int64_t c = 0; c < R; c++)
                a[c] += m[r] * w->W[r * R + c];
        for (int64_t c = 0; c < R; c++)
            w->lambda[c] += a[c] * a[c];
    }
    float *A = factors + fnet_cp_factor_offset(s, k);
    for (int64_t r = 0; r < R; r++) {
        w->lambda[r] = sqrt(w->lambda[r]);
        // the norm is finite only when every entry is (and their squares do not overflow)
        if (!isfinite(w->lambda[r]))
            return fnet_fail(ctx, FNET_ERR_NUMERIC, "cp_als: factor %d stopped being finite "
                             "(column %lld, sweep %d)", k, (long long)r, sweep);
    }
    for (int64_t i = 0; i < d; i++)
        for (int64_t r = 0; r < R; r++)
            A[i * R + r] = w->lambda[r] > 0.0 ? (float)(w->Ad[i * R + r] / w->lambda[r]) : 0.0f;
    gram(d, R, A, w->G + k * R * R);
    return FNET_OK;
}

// ‖X − X̂‖² right after the last mode's update, without forming X̂: with Ã that factor
// unnormalized (Ad), ⟨X, X̂⟩ = Σ M ∗ Ã (its MTTKRP) and ‖X̂‖² = Σ V ∗ ÃᵀÃ (V its normal matrix,
// ÃᵀÃ = diag(λ)·G·diag(λ)). ‖X‖² + ‖X̂‖² − 2⟨X, X̂⟩ cancels: what is left carries the float
// MTTKRP's rounding, measured near 1e-8·‖X‖² (so up to 1e-4 in a fit near 1), and may be < 0.
static double cheap_res2(const struct fnet_cp_shape *s, const struct als_ws *w, double x2)
{
    const int D = s->D;
    const int64_t R = s->rank, d = s->dims[D - 1];
    const double *G = w->G + (D - 1) * R * R;
    double ip = 0.0, xh2 = 0.0;
    for (int64_t i = 0; i < d * R; i++)
        ip += w->M[i] * w->Ad[i];
    for (int64_t r = 0; r < R; r++)
        for (int64_t c = 0; c < R; c++)
            xh2 += w->V[r * R + c] * w->lambda[r] * w->lambda[c] * G[r * R + c];
    return x2 + xh2 - 2.0 * ip;
}

// ‖X − X̂‖² with X̂ = Σ_r λ_r·(columns r of the factors) (λ NULL: all 1) formed block by block of
// rows of its (P, Q) matricization (fnet_cp_full's split), summed in double: one GEMM over the
// tensor, accurate to the float rounding of X̂ itself
static double exact_res2(fnet_ctx *ctx, const struct fnet_cp_shape *s, const float *X,
                         const float *factors, const double *lambda, struct als_ws *w)
{
    const int64_t R = s->rank, P = w->P, Q = w->Q;
    khatri_rao(s, factors, 0, w->h, w->KL);
    khatri_rao(s, factors, w->h, s->D, w->KR);
    if (lambda != NULL)
        for (int64_t p = 0; p < P; p++)
            for (int64_t r = 0; r < R; r++)
                w->KL[p * R + r] = (float)((double)w->KL[p * R + r] * lambda[r]);
    double res2 = 0.0;
    for (int64_t p0 = 0; p0 < P; p0 += w->block_rows) {
        int64_t rows = P - p0 < w->block_rows ? P - p0 : w->block_rows;
        ctx->be->host_la->sgemm(ctx, false, true, rows, Q, R, 1.0f, w->KL + p0 * R, R, w->KR, R,
                                0.0f, w->blk, Q);
        const float *x = X + p0 * Q;
        for (int64_t i = 0; i < rows * Q; i++) {
            double e = (double)x[i] - (double)w->blk[i];
            res2 += e * e;
        }
    }
    return res2;
}

// 1 − ‖X − X̂‖/‖X‖ (1 for X = 0), clamped to [0, 1] against rounding: in exact arithmetic each
// least-squares step does at least as well as a zero factor, so the fit is never below 0
static double fit_from_res2(double res2, double x2)
{
    if (x2 == 0.0)
        return 1.0;
    double fit = 1.0 - sqrt((res2 > 0.0 ? res2 : 0.0) / x2);
    return fit > 0.0 ? fit : 0.0;
}

// The fit after a sweep, for the stopping rule: the cheap estimate while it has correct digits,
// directly once ‖X − X̂‖² < CHEAP_RES2_MIN·‖X‖², where its rounding would decide the stop
static double sweep_fit(fnet_ctx *ctx, const struct fnet_cp_shape *s, const float *X,
                        const float *factors, struct als_ws *w, double x2)
{
    double res2 = cheap_res2(s, w, x2);
    if (res2 < CHEAP_RES2_MIN * x2)
        res2 = exact_res2(ctx, s, X, factors, w->lambda, w);
    return fit_from_res2(res2, x2);
}

// factors N(0, 1) from seed, then each with unit columns and its Gram matrix
static void random_start(const struct fnet_cp_shape *s, uint64_t seed, float *factors,
                         struct als_ws *w)
{
    const int64_t R = s->rank, np = fnet_cp_num_params(s);
    fnet_rng rng;
    fnet_rng_seed(&rng, seed);
    for (int64_t i = 0; i < np; i++)
        factors[i] = (float)fnet_rng_normal(&rng);
    for (int k = 0; k < s->D; k++) {
        float *A = factors + fnet_cp_factor_offset(s, k);
        const int64_t d = s->dims[k];
        for (int64_t r = 0; r < R; r++) {
            double n2 = 0.0;
            for (int64_t i = 0; i < d; i++)
                n2 += (double)A[i * R + r] * (double)A[i * R + r];
            double inv = n2 > 0.0 ? 1.0 / sqrt(n2) : 0.0;
            for (int64_t i = 0; i < d; i++)
                A[i * R + r] = (float)((double)A[i * R + r] * inv);
        }
        gram(d, R, A, w->G + k * R * R);
    }
}

// Term r's weight λ_r >= 0 (a norm: the signs are in the columns) spread evenly: every factor's
// column r times λ_r^(1/D), so that all D columns of a term have the same norm.
static void balance(const struct fnet_cp_shape *s, const double *lambda, float *factors)
{
    const int64_t R = s->rank;
    for (int64_t r = 0; r < R; r++) {
        double f = pow(lambda[r], 1.0 / (double)s->D);
        for (int k = 0; k < s->D; k++) {
            float *A = factors + fnet_cp_factor_offset(s, k);
            for (int64_t i = 0; i < s->dims[k]; i++)
                A[i * R + r] = (float)((double)A[i * R + r] * f);
        }
    }
}

static fnet_status check_als_args(fnet_ctx *ctx, const float *X, const struct fnet_cp_shape *s,
                                  const struct fnet_cp_als_params *p, const float *factors,
                                  double *x2)
{
    if (ctx == NULL || X == NULL || p == NULL || factors == NULL)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "cp_als: NULL argument");
    fnet_status st = fnet_cp_shape_check(ctx, s);
    if (st != FNET_OK)
        return st;
    if (p->max_iters < 1)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "cp_als: max_iters = %d must be >= 1",
                         p->max_iters);
    if (!(p->tol >= 0.0) || isinf(p->tol))
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "cp_als: tol = %g must be finite and >= 0",
                         p->tol);
    const int64_t N = dims_prod(s, 0, s->D);
    double acc = 0.0;
    for (int64_t i = 0; i < N; i++) {
        if (!isfinite(X[i]))
            return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "cp_als: X has a non-finite entry at "
                             "[%lld]", (long long)i);
        acc += (double)X[i] * (double)X[i];
    }
    *x2 = acc;
    return FNET_OK;
}

fnet_status fnet_cp_als(fnet_ctx *ctx, const float *X, const struct fnet_cp_shape *s,
                        const struct fnet_cp_als_params *p, float *factors, double *fit,
                        int *iters)
{
    double x2 = 0.0;
    fnet_status st = check_als_args(ctx, X, s, p, factors, &x2);
    if (st != FNET_OK)
        return st;
    struct als_ws w;
    memset(&w, 0, sizeof(w));
    st = als_ws_alloc(ctx, s, &w);
    if (st != FNET_OK)
        return st;
    random_start(s, p->seed, factors, &w);
    // Gauss–Seidel sweeps: each A_k solved with the others fixed, the earlier modes already
    // updated in this sweep; the factors stay normalized and the weights ride on lambda.
    double prev = 0.0;
    int sweep = 0;
    while (sweep < p->max_iters) {
        sweep++;
        for (int k = 0; k < s->D; k++) {
            bool left = k < w.h;
            if (k == 0 && left)
                contract_right(ctx, s, X, factors, &w);
            if (k == w.h)
                contract_left(ctx, s, X, factors, &w);
            mttkrp_from_half(s, factors, left ? 0 : w.h, left ? w.h : s->D, k, &w);
            st = update_factor(ctx, s, k, sweep, factors, &w);
            if (st != FNET_OK)
                goto out_free_ws;
        }
        if (p->tol == 0.0)
            continue; // no stopping rule: no fit needed before the end
        double f = sweep_fit(ctx, s, X, factors, &w, x2);
        if (sweep > 1 && fabs(f - prev) < p->tol)
            break;
        prev = f;
    }
    balance(s, w.lambda, factors);
    if (fit != NULL)
        *fit = x2 == 0.0 ? 1.0 : fit_from_res2(exact_res2(ctx, s, X, factors, NULL, &w), x2);
    if (iters != NULL)
        *iters = sweep;
out_free_ws:
    als_ws_free(&w);
    return st;
}
