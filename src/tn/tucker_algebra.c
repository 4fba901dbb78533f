/* Tucker algebra (src/tn/tucker.h): shape bookkeeping and checks, the dense tensor of a Tucker
 * form (one GEMM per mode), and truncated HOSVD followed by HOOI sweeps (De Lathauwer, De Moor &
 * Vandewalle, SIAM J. Matrix Anal. Appl. 21(4), 2000: "A multilinear singular value
 * decomposition" and "On the best rank-1 and rank-(R1, ..., RN) approximation") on the backend's
 * host linear algebra (ctx->be->host_la). Host memory only; not in the training hot path, so it
 * allocates its workspace. */
#include "tn/tucker.h"
#include "core/backend.h"

#include <math.h>
#include <string.h>

// Every tensor here is row-major with mode 0 most significant. The GEMM chains below keep their
// tensors in a *cyclic* mode order (j, j+1, .., D-1, 0, .., j-1): a row-major view of such a
// tensor as (size of mode j, the rest) is a plain matrix, and so is its mode-j unfolding.

static int64_t sat_mul(int64_t a, int64_t b)
{
    return b != 0 && a > INT64_MAX / b ? INT64_MAX : a * b;
}

int64_t fnet_tucker_core_size(const struct fnet_tucker_shape *s)
{
    int64_t p = 1;
    for (int k = 0; k < s->D; k++)
        p *= s->ranks[k];
    return p;
}

int64_t fnet_tucker_factor_offset(const struct fnet_tucker_shape *s, int k)
{
    int64_t off = 0;
    for (int l = 0; l < k; l++)
        off += s->dims[l] * s->ranks[l];
    return off;
}

int64_t fnet_tucker_factor_size(const struct fnet_tucker_shape *s)
{
    return fnet_tucker_factor_offset(s, s->D);
}

static int64_t dense_size(const struct fnet_tucker_shape *s)
{
    int64_t p = 1;
    for (int k = 0; k < s->D; k++)
        p *= s->dims[k];
    return p;
}

// Counts of floats (tensor, core, factors, the workspaces sized from them) stay below this, so
// that they are int64 and size_t byte counts, even of doubles.
static int64_t size_limit(void)
{
    uint64_t a = (uint64_t)INT64_MAX / sizeof(double), b = SIZE_MAX / sizeof(double);
    return (int64_t)(a < b ? a : b);
}

fnet_status fnet_tucker_shape_check(fnet_ctx *ctx, const struct fnet_tucker_shape *s)
{
    if (s == NULL)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "tucker shape is NULL");
    if (s->D < 1 || s->D > FNET_TUCKER_MAX_D)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "D = %d out of range 1..%d", s->D,
                         FNET_TUCKER_MAX_D);
    const int64_t lim = size_limit();
    int64_t n = 1, f = 0;
    for (int k = 0; k < s->D; k++) {
        int64_t dk = s->dims[k], rk = s->ranks[k];
        if (dk < 1)
            return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "size %lld of mode %d must be >= 1",
                             (long long)dk, k);
        if (rk < 1)
            return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "rank %lld of mode %d must be >= 1",
                             (long long)rk, k);
        if (rk > dk)
            return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "rank %lld of mode %d exceeds its size "
                             "%lld", (long long)rk, k, (long long)dk);
        int64_t fk = sat_mul(dk, rk);
        n = sat_mul(n, dk);
        if (n > lim || fk > lim - f) // Π ranks <= Π dims
            return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "sizes overflow at mode %d: the tensor "
                             "or its factors would exceed %lld floats", k, (long long)lim);
        f += fk;
    }
    return FNET_OK;
}

// dst (cols, rows) = src (rows, cols)ᵀ, by 32 × 32 tiles so that both sides stay in cache
static void transpose(int64_t rows, int64_t cols, const float *src, float *dst)
{
    enum { TILE = 32 };
    if (rows == 1 || cols == 1) {
        memcpy(dst, src, (size_t)(rows * cols) * sizeof(float));
        return;
    }
    for (int64_t i0 = 0; i0 < rows; i0 += TILE)
        for (int64_t j0 = 0; j0 < cols; j0 += TILE) {
            int64_t i1 = i0 + TILE < rows ? i0 + TILE : rows;
            int64_t j1 = j0 + TILE < cols ? j0 + TILE : cols;
            for (int64_t i = i0; i < i1; i++)
                for (int64_t j = j0; j < j1; j++)
                    dst[j * rows + i] = src[i * cols + j];
        }
}

// The tensor X (order 0..D-1) in the cyclic order starting at mode j: X read as the matrix
// (Π_{l<j} dims, Π_{l>=j} dims), transposed.
static void rotate(const struct fnet_tucker_shape *s, const float *X, int j, float *dst)
{
    int64_t P = 1;
    for (int l = 0; l < j; l++)
        P *= s->dims[l];
    transpose(P, dense_size(s) / P, X, dst);
}

// A (m, c) row-major, in place, becomes (m, cp) with zero columns c..cp-1 (cp >= c). Rows move
// from the last: row i's new place starts at i·cp >= i·c, where the rows not yet moved end.
static void pad_columns(float *A, int64_t m, int64_t c, int64_t cp)
{
    if (cp == c)
        return;
    for (int64_t i = m - 1; i >= 0; i--) {
        memmove(A + i * cp, A + i * c, (size_t)c * sizeof(float));
        memset(A + i * cp + c, 0, (size_t)(cp - c) * sizeof(float));
    }
}

// One mode of a chain, one GEMM. T is a tensor whose first mode has size a, read as (a, R).
// expand:  out (R, b) = Tᵀ·Uᵀ with U (b, a): mode product with a factor U_k (dims, ranks).
// project: out (R, b) = Tᵀ·U  with U (a, b): mode product with U_kᵀ.
// The new mode lands last: the cyclic order turns by one place, and the next mode is first.
static void mode_step(fnet_ctx *ctx, int64_t size, int64_t a, int64_t b, const float *T,
                      const float *U, bool expand, float *out)
{
    int64_t R = size / a;
    ctx->be->host_la->sgemm(ctx, true, expand, R, b, a, 1.0f, T, R, U, expand ? a : b, 0.0f, out,
                            b);
}

// Floats of a tensor whose modes first, .., first+count-1 (cyclic) have sizes to[] and the
// others from[]: the intermediates of the chains.
static int64_t window_size(const struct fnet_tucker_shape *s, int first, int count,
                           const int64_t *from, const int64_t *to)
{
    int64_t p = 1;
    for (int l = 0; l < s->D; l++) {
        int off = (l - first + s->D) % s->D;
        p *= off < count ? to[l] : from[l];
    }
    return p;
}

// X = core ×_0 U_0 ··· ×_{D-1} U_{D-1}: D expand steps on modes 0, 1, .., D-1. The chain starts
// in order 0..D-1 and every step turns it by one, so after D steps it is in order again: no
// permutation, one GEMM per mode, Σ_k (Π_{l<=k} dims·Π_{l>=k} ranks) multiply-adds. The steps
// ping-pong between X and tmp (full_tmp_size floats) so that the last lands in X.
static void full_into(fnet_ctx *ctx, const struct fnet_tucker_shape *s, const float *core,
                      const float *factors, float *X, float *tmp)
{
    const float *T = core;
    int64_t size = fnet_tucker_core_size(s);
    for (int k = 0; k < s->D; k++) {
        float *out = (s->D - 1 - k) % 2 == 0 ? X : tmp;
        mode_step(ctx, size, s->ranks[k], s->dims[k], T,
                  factors + fnet_tucker_factor_offset(s, k), true, out);
        size = size / s->ranks[k] * s->dims[k];
        T = out;
    }
}

static int64_t full_tmp_size(const struct fnet_tucker_shape *s)
{
    int64_t t = 1;
    for (int k = 0; k < s->D - 1; k++) {
        int64_t w = window_size(s, 0, k + 1, s->ranks, s->dims);
        t = w > t ? w : t;
    }
    return t;
}

fnet_status fnet_tucker_full(fnet_ctx *ctx, const struct fnet_tucker_shape *s, const float *core,
                             const float *factors, float *X)
{
    if (ctx == NULL || core == NULL || factors == NULL || X == NULL)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "tucker_full: NULL argument");
    fnet_status st = fnet_tucker_shape_check(ctx, s);
    if (st != FNET_OK)
        return st;
    int64_t nt = full_tmp_size(s);
    float *tmp = fnet_malloc_array((size_t)nt, sizeof(float));
    if (tmp == NULL)
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "tucker_full: workspace of %lld floats",
                         (long long)nt);
    full_into(ctx, s, core, factors, X, tmp);
    fnet_free(tmp);
    return FNET_OK;
}

// ---- HOSVD and HOOI ----
//
// The leading left singular vectors of an unfolding A (m, c), Π of the other modes' sizes in c:
// - wide (c > m, the usual case): Aᵀ (c, m) = Q·R by a thin QR, then the SVD of R (m, m) alone:
//   A = Rᵀ·Qᵀ has Rᵀ's left singular vectors. Both steps are backward stable. The Gram matrix
//   A·Aᵀ would cost about the same m²·c but square the condition number: its eigenvectors are
//   off by ~eps·σ_1²/σ_j², so a tensor of exact multilinear rank would come back with a relative
//   error of ~eps·σ_1/σ_r (and up to sqrt(eps) = 3e-4 when σ_r is small). The reference's Jacobi
//   SVD on the wide A itself would cost m²·c per sweep, and LAPACK's would also form the (m, c)
//   right factor.
// - tall or square (c <= m): the SVD of A, with zero columns appended when c < rank (a mode may
//   ask for more vectors than A has columns: D = 1, a rank above Π of the others, or HOOI's
//   A (m, Π other ranks); the extra vectors are an orthonormal completion, which the SVD's U has).
// - a matrix (D = 2): its one SVD X = U·S·Vt gives both factors, U_0 = U[:, :r_0] and
//   U_1 = Vt[:r_1, :]ᵀ, when both ranks fit in min(m_0, m_1); that halves the cost of the
//   largest case, a square matrix.
// Then one step of subspace iteration in double (refine) removes the float rounding of the long
// sums along c inside LAPACK's QR, which leaves U ~sqrt(c)·eps off the leading subspace (2.5e-6
// relative for a (32, 32768) unfolding): the recovery of an exact-rank tensor goes from a few
// 1e-6 to ~1e-7, its float rounding.

struct hosvd_work {
    float *unf; // the unfolding (wide: transposed; tall: padded), then the reconstruction
    float *q;   // Q of the QR or U of an SVD; the reconstruction's scratch
    float *rm;  // R (m, m) of the QR
    float *vt;  // Vt of an SVD
    float *sv;  // singular values
    float *ch[2]; // the chains' intermediates
    double *dw;   // refine's A·Aᵀ·U, basis and Aᵀ·U
};

// true when a matrix's one SVD gives both factors (see above)
static bool matrix_case(const struct fnet_tucker_shape *s)
{
    if (s->D != 2)
        return false;
    int64_t kk = s->dims[0] < s->dims[1] ? s->dims[0] : s->dims[1];
    return s->ranks[0] <= kk && s->ranks[1] <= kk;
}

// Sizes of the hosvd_work buffers, in floats (dw in doubles). For mode k (m = dims[k],
// c = Π dims / m, r = ranks[k]) the HOSVD step needs the most: HOOI's unfolding (m, Π_{l≠k}
// ranks) is no wider, and it is wide only where the HOSVD one is; the matrix case's U and Vt fit
// in q and unf (Π dims each). ch holds every intermediate of the HOOI chains and of the core's
// chain; the reconstruction uses unf (Π dims) and q as its scratch. refine needs 2·m·r doubles
// and Aᵀ·U: r (wide), at most m·r (tall) or, for a matrix's mode 0, m_1·r_0.
struct hosvd_sizes {
    int64_t unf, q, rm, vt, sv, ch, dw;
};

static struct hosvd_sizes hosvd_sizes(const struct fnet_tucker_shape *s, int hooi_iters)
{
    struct hosvd_sizes z = {1, 1, 1, 1, 1, 1, 1};
    int64_t N = dense_size(s);
    for (int k = 0; k < s->D; k++) {
        int64_t m = s->dims[k], c = N / m, r = s->ranks[k], cp = c > r ? c : r;
        bool wide = c > m;
        int64_t unf = wide ? N : m * cp, vt = wide ? m * m : cp * cp, sv = wide ? m : cp;
        z.unf = unf > z.unf ? unf : z.unf;
        z.vt = vt > z.vt ? vt : z.vt;
        z.sv = sv > z.sv ? sv : z.sv;
        if (wide && m * m > z.rm)
            z.rm = m * m;
        z.dw = 3 * m * r > z.dw ? 3 * m * r : z.dw;
    }
    if (matrix_case(s)) {
        int64_t dw = (2 * s->dims[0] + s->dims[1]) * s->ranks[0];
        z.dw = dw > z.dw ? dw : z.dw;
    }
    z.q = z.unf; // Q (c, m) or U (m, cp), each at most unf; full_into's scratch is < Π dims
    for (int i = 0; i < s->D - 1; i++) { // the core's chain, projecting modes 0..i
        int64_t w = window_size(s, 0, i + 1, s->dims, s->ranks);
        z.ch = w > z.ch ? w : z.ch;
    }
    if (hooi_iters > 0)
        for (int k = 0; k < s->D; k++) // HOOI for mode k projects modes k+1, .., k-1
            for (int i = 0; i < s->D - 1; i++) {
                int64_t w = window_size(s, (k + 1) % s->D, i + 1, s->dims, s->ranks);
                z.ch = w > z.ch ? w : z.ch;
            }
    return z;
}

// U (m, r) ← orth(A·Aᵀ·U) in double, for an unfolding held as A (m, c) row-major (at false) or
// as Aᵀ (c, m) (at true). Every product of floats is exact in double and the sums are rounded
// to 1e-16, so A·Aᵀ·U lies in A's leading subspace up to X's own float rounding; for any X the
// step only moves U towards that subspace. Modified Gram–Schmidt (twice) in U's column order,
// σ descending: a column with σ_j <= 1e-6·σ_1 (numerically null: padding, a rank above A's, X =
// 0) or one that Gram–Schmidt would mostly cancel (its σ_j² below the earlier ones' times U's
// rounding) keeps U's column, only orthogonalized; if even that cancels, U stays as it is.
static void refine(struct hosvd_work *w, const float *A, bool at, int64_t m, int64_t c,
                   int64_t r, const float *sv, float *U)
{
    double *W = w->dw, *Qd = W + m * r, *B = Qd + m * r; // W (m, r), Qd by columns, B (c, r) or (r)
    memset(W, 0, (size_t)(m * r) * sizeof(double));
    if (at) { // per row a of Aᵀ: b = aᵀ·U (r), W += a·bᵀ
        for (int64_t t = 0; t < c; t++) {
            const float *a = A + t * m;
            for (int64_t j = 0; j < r; j++)
                B[j] = 0.0;
            for (int64_t i = 0; i < m; i++)
                for (int64_t j = 0; j < r; j++)
                    B[j] += (double)a[i] * (double)U[i * r + j];
            for (int64_t i = 0; i < m; i++)
                for (int64_t j = 0; j < r; j++)
                    W[i * r + j] += (double)a[i] * B[j];
        }
    } else { // B = Aᵀ·U, W = A·B
        memset(B, 0, (size_t)(c * r) * sizeof(double));
        for (int64_t i = 0; i < m; i++)
            for (int64_t t = 0; t < c; t++)
                for (int64_t j = 0; j < r; j++)
                    B[t * r + j] += (double)A[i * c + t] * (double)U[i * r + j];
        for (int64_t i = 0; i < m; i++)
            for (int64_t t = 0; t < c; t++)
                for (int64_t j = 0; j < r; j++)
                    W[i * r + j] += (double)A[i * c + t] * B[t * r + j];
    }
    for (int64_t j = 0; j < r; j++) {
        double *q = Qd + j * m;
        bool ok = false;
        for (int from_u = sv[j] > 1e-6 * sv[0] ? 0 : 1; from_u < 2 && !ok; from_u++) {
            double before = 0.0, after = 0.0;
            for (int64_t i = 0; i < m; i++) {
                q[i] = from_u ? (double)U[i * r + j] : W[i * r + j];
                before += q[i] * q[i];
            }
            for (int pass = 0; pass < 2; pass++)
                for (int64_t l = 0; l < j; l++) {
                    const double *p = Qd + l * m;
                    double h = 0.0;
                    for (int64_t i = 0; i < m; i++)
                        h += p[i] * q[i];
                    for (int64_t i = 0; i < m; i++)
                        q[i] -= h * p[i];
                }
            for (int64_t i = 0; i < m; i++)
                after += q[i] * q[i];
            ok = after > 0.25 * before && after > 0.0; // kept more than half its norm
            for (int64_t i = 0; i < m && ok; i++)
                q[i] /= sqrt(after);
        }
        if (!ok)
            return;
    }
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < r; j++)
            U[i * r + j] = (float)Qd[j * m + i];
}

// U (m, r): the r leading left singular vectors of an unfolding A (m, c). w->unf holds Aᵀ
// (c, m) when c > m, else A padded to (m, max(c, r)) (see above).
static fnet_status leading_vectors(fnet_ctx *ctx, struct hosvd_work *w, int64_t m, int64_t c,
                                   int64_t r, float *U)
{
    const struct fnet_host_la *la = ctx->be->host_la;
    fnet_status st;
    if (c > m) {
        // Aᵀ = Q·R and R = U'·S·V'ᵀ, so A = V'·S·(Q·U')ᵀ: A's left singular vectors are V', the
        // rows of R's Vt
        st = la->qr(ctx, c, m, w->unf, w->q, w->rm);
        if (st == FNET_OK)
            st = la->gesvd(ctx, m, m, w->rm, w->q, w->sv, w->vt);
        if (st != FNET_OK)
            return st;
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < r; j++)
                U[i * r + j] = w->vt[j * m + i];
        refine(w, w->unf, true, m, c, r, w->sv, U);
    } else {
        int64_t cp = c > r ? c : r; // cp <= m: U (m, cp)
        st = la->gesvd(ctx, m, cp, w->unf, w->q, w->sv, w->vt);
        if (st != FNET_OK)
            return st;
        for (int64_t i = 0; i < m; i++)
            memcpy(U + i * r, w->q + i * cp, (size_t)r * sizeof(float));
        refine(w, w->unf, false, m, cp, r, w->sv, U);
    }
    return FNET_OK;
}

// HOSVD factor k: X's mode-k unfolding, in the cyclic column order, is X rotated to start at
// mode k, read as (m, c); its transpose is X rotated to start at mode k+1, read as (c, m). (The
// order of A's columns does not change its left singular vectors.)
static fnet_status hosvd_mode(fnet_ctx *ctx, const struct fnet_tucker_shape *s, const float *X,
                              int k, struct hosvd_work *w, float *U)
{
    int64_t m = s->dims[k], c = dense_size(s) / m, r = s->ranks[k];
    if (c > m) {
        rotate(s, X, (k + 1) % s->D, w->unf);
    } else {
        rotate(s, X, k, w->unf);
        pad_columns(w->unf, m, c, c > r ? c : r);
    }
    return leading_vectors(ctx, w, m, c, r, U);
}

// HOSVD of a matrix X (m0, m1) from its one SVD (r0, r1 <= min(m0, m1)): U (m0, k) in q,
// Vt (k, m1) in unf, S (k) in sv, k = min(m0, m1).
static fnet_status hosvd_matrix(fnet_ctx *ctx, const struct fnet_tucker_shape *s, const float *X,
                                struct hosvd_work *w, float *factors)
{
    int64_t m0 = s->dims[0], m1 = s->dims[1], r0 = s->ranks[0], r1 = s->ranks[1];
    int64_t kk = m0 < m1 ? m0 : m1;
    float *U0 = factors, *U1 = factors + fnet_tucker_factor_offset(s, 1);
    fnet_status st = ctx->be->host_la->gesvd(ctx, m0, m1, X, w->q, w->sv, w->unf);
    if (st != FNET_OK)
        return st;
    for (int64_t i = 0; i < m0; i++)
        memcpy(U0 + i * r0, w->q + i * kk, (size_t)r0 * sizeof(float));
    for (int64_t i = 0; i < m1; i++)
        for (int64_t j = 0; j < r1; j++)
            U1[i * r1 + j] = w->unf[j * m1 + i];
    // X is mode 0's unfolding and the transpose of mode 1's
    refine(w, X, false, m0, m1, r0, w->sv, U0);
    refine(w, X, true, m1, m0, r1, w->sv, U1);
    return FNET_OK;
}

// HOOI update of factor k: Y = X ×_l U_lᵀ for every l ≠ k, then U_k = Y_(k)'s leading left
// singular vectors. The chain starts from X rotated to mode k+1 and projects modes k+1, .., k-1
// in turn; each step turns the order by one, so Y ends in order (k, k+1, .., k-1), which read
// as (m, Π_{l≠k} ranks) is Y_(k).
static fnet_status hooi_mode(fnet_ctx *ctx, const struct fnet_tucker_shape *s, const float *X,
                             int k, struct hosvd_work *w, float *factors)
{
    const int D = s->D;
    int64_t m = s->dims[k], r = s->ranks[k], size = dense_size(s);
    rotate(s, X, (k + 1) % D, w->unf);
    const float *T = w->unf;
    for (int i = 0; i < D - 1; i++) {
        int l = (k + 1 + i) % D;
        mode_step(ctx, size, s->dims[l], s->ranks[l], T,
                  factors + fnet_tucker_factor_offset(s, l), false, w->ch[i % 2]);
        size = size / s->dims[l] * s->ranks[l];
        T = w->ch[i % 2];
    }
    int64_t c = size / m;
    if (c > m) {
        transpose(m, c, T, w->unf);
    } else {
        memcpy(w->unf, T, (size_t)size * sizeof(float));
        pad_columns(w->unf, m, c, c > r ? c : r);
    }
    return leading_vectors(ctx, w, m, c, r, factors + fnet_tucker_factor_offset(s, k));
}

// core (Π ranks) = X ×_0 U_0ᵀ ··· ×_{D-1} U_{D-1}ᵀ: D project steps from X in order 0..D-1,
// which again end in order; the last lands in core.
static void project_core(fnet_ctx *ctx, const struct fnet_tucker_shape *s, const float *X,
                         const float *factors, struct hosvd_work *w, float *core)
{
    const float *T = X;
    int64_t size = dense_size(s);
    for (int j = 0; j < s->D; j++) {
        float *out = j == s->D - 1 ? core : w->ch[j % 2];
        mode_step(ctx, size, s->dims[j], s->ranks[j], T,
                  factors + fnet_tucker_factor_offset(s, j), false, out);
        size = size / s->dims[j] * s->ranks[j];
        T = out;
    }
}

// ‖X − full‖_F / ‖X‖_F in double (0 for X = 0), with the reconstruction in w->unf. Computed from
// the difference, not as sqrt(‖X‖² − ‖core‖²) (orthonormal factors): that difference of two
// float-accurate numbers would be noise of ~sqrt(eps)·‖X‖ for a small error.
static double relative_error(fnet_ctx *ctx, const struct fnet_tucker_shape *s, const float *X,
                             const float *core, const float *factors, struct hosvd_work *w)
{
    full_into(ctx, s, core, factors, w->unf, w->q);
    int64_t N = dense_size(s);
    double d2 = 0.0, x2 = 0.0;
    for (int64_t i = 0; i < N; i++) {
        double x = (double)X[i], d = x - (double)w->unf[i];
        d2 += d * d;
        x2 += x * x;
    }
    return x2 > 0.0 ? sqrt(d2 / x2) : 0.0;
}

static fnet_status hosvd_check(fnet_ctx *ctx, const float *X, const struct fnet_tucker_shape *s,
                               int hooi_iters, const float *core, const float *factors)
{
    if (ctx == NULL || X == NULL || core == NULL || factors == NULL)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "tucker_hosvd: NULL argument (ctx, X, core "
                         "and factors are required)");
    fnet_status st = fnet_tucker_shape_check(ctx, s);
    if (st != FNET_OK)
        return st;
    if (hooi_iters < 0)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "tucker_hosvd: hooi_iters = %d must be >= 0",
                         hooi_iters);
    int64_t N = dense_size(s);
    for (int64_t i = 0; i < N; i++)
        if (!isfinite(X[i]))
            return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "tucker_hosvd: X has a non-finite entry "
                             "at flat index %lld", (long long)i);
    return FNET_OK;
}

fnet_status fnet_tucker_hosvd(fnet_ctx *ctx, const float *X, const struct fnet_tucker_shape *s,
                              int hooi_iters, float *core, float *factors, double *rel_err)
{
    fnet_status st = hosvd_check(ctx, X, s, hooi_iters, core, factors);
    if (st != FNET_OK)
        return st;
    // With one mode, Y = X: a HOOI sweep would recompute the HOSVD factor.
    int sweeps = s->D > 1 ? hooi_iters : 0;
    struct hosvd_sizes z = hosvd_sizes(s, sweeps);
    struct hosvd_work w;
    w.unf = fnet_malloc_array((size_t)z.unf, sizeof(float));
    w.q = fnet_malloc_array((size_t)z.q, sizeof(float));
    w.rm = fnet_malloc_array((size_t)z.rm, sizeof(float));
    w.vt = fnet_malloc_array((size_t)z.vt, sizeof(float));
    w.sv = fnet_malloc_array((size_t)z.sv, sizeof(float));
    w.ch[0] = fnet_malloc_array((size_t)z.ch, sizeof(float));
    w.ch[1] = fnet_malloc_array((size_t)z.ch, sizeof(float));
    w.dw = fnet_malloc_array((size_t)z.dw, sizeof(double));
    if (w.unf == NULL || w.q == NULL || w.rm == NULL || w.vt == NULL || w.sv == NULL ||
        w.ch[0] == NULL || w.ch[1] == NULL || w.dw == NULL) {
        st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "tucker_hosvd: workspace (%lld floats)",
                       (long long)(2 * z.unf + z.rm + z.vt + z.sv + 2 * z.ch + 2 * z.dw));
        goto out_free;
    }
    if (matrix_case(s))
        st = hosvd_matrix(ctx, s, X, &w, factors);
    else
        for (int k = 0; k < s->D && st == FNET_OK; k++)
            st = hosvd_mode(ctx, s, X, k, &w, factors + fnet_tucker_factor_offset(s, k));
    for (int it = 0; it < sweeps && st == FNET_OK; it++)
        for (int k = 0; k < s->D && st == FNET_OK; k++)
            st = hooi_mode(ctx, s, X, k, &w, factors);
    if (st != FNET_OK)
        goto out_free;
    project_core(ctx, s, X, factors, &w, core);
    if (rel_err != NULL)
        *rel_err = relative_error(ctx, s, X, core, factors, &w);
out_free:
    fnet_free(w.dw);
    fnet_free(w.ch[1]);
    fnet_free(w.ch[0]);
    fnet_free(w.sv);
    fnet_free(w.vt);
    fnet_free(w.rm);
    fnet_free(w.q);
    fnet_free(w.unf);
    return st;
}
