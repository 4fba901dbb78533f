/* TT algebra on TT-matrices (src/tn/tt.h): shape bookkeeping and checks, the dense matrix of a
 * TT, TT-SVD and TT-rounding (Oseledets, "Tensor-Train Decomposition", SIAM J. Sci. Comput. 33(5),
 * 2011, Algorithms 1 and 2) on the backend's host linear algebra (gesvd, qr, sgemm:
 * ctx->be->host_la), and the Frobenius norm and inner product contracted core by core in double. A host-side
 * algorithm: every pointer here is host memory; the TT layer downloads and uploads around it
 * (tt_layer.c). docs/tt_algebra.md. */
#include "tn/tt.h"
#include "tn/tt_paired.h"
#include "core/backend.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

// A TT-matrix's core k, with i_k and j_k paired into one index of size s_k = m[k]·n[k], is the
// 3-tensor (r[k], s_k, r[k+1]): its left unfolding is (r[k]·s_k, r[k+1]), its right one
// (r[k], s_k·r[k+1]), both row-major views of the same memory.

static int64_t sat_mul(int64_t a, int64_t b)
{
    return b != 0 && a > INT64_MAX / b ? INT64_MAX : a * b;
}

static int64_t mode(const struct fnet_tt_shape *s, int k)
{
    return s->m[k] * s->n[k];
}

int64_t fnet_tt_rows(const struct fnet_tt_shape *s)
{
    int64_t p = 1;
    for (int k = 0; k < s->d; k++)
        p *= s->m[k];
    return p;
}

int64_t fnet_tt_cols(const struct fnet_tt_shape *s)
{
    int64_t p = 1;
    for (int k = 0; k < s->d; k++)
        p *= s->n[k];
    return p;
}

int64_t fnet_tt_core_offset(const struct fnet_tt_shape *s, int k)
{
    int64_t off = 0;
    for (int l = 0; l < k; l++)
        off += s->r[l] * mode(s, l) * s->r[l + 1];
    return off;
}

int64_t fnet_tt_num_params(const struct fnet_tt_shape *s)
{
    return fnet_tt_core_offset(s, s->d);
}

int64_t fnet_tt_num_params_sat(const struct fnet_tt_shape *s)
{
    int64_t total = 0;
    for (int k = 0; k < s->d; k++) {
        int64_t size = sat_mul(sat_mul(s->r[k], mode(s, k)), s->r[k + 1]);
        total = size == INT64_MAX || total > INT64_MAX - size ? INT64_MAX : total + size;
    }
    return total;
}

// The largest rank at bond k (0 < k < d): min(Π_{l<k} s_l, Π_{l>=k} s_l), saturating.
int64_t fnet_tt_bond_bound(const struct fnet_tt_shape *s, int k, int64_t *left, int64_t *right)
{
    int64_t lp = 1, rp = 1;
    for (int l = 0; l < k; l++)
        lp = sat_mul(lp, mode(s, l));
    for (int l = k; l < s->d; l++)
        rp = sat_mul(rp, mode(s, l));
    if (left)
        *left = lp;
    if (right)
        *right = rp;
    return lp < rp ? lp : rp;
}

// "m{a}*n{a}*...*m{b-1}*n{b-1}" into buf
void fnet_tt_mode_names(char *buf, size_t cap, int a, int b)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int l = a; l < b && len < cap; l++) {
        int k = snprintf(buf + len, cap - len, "%sm%d*n%d", l > a ? "*" : "", l, l);
        if (k < 0)
            break;
        len += (size_t)k;
    }
}

// d and modes in range and the products M, N representable (ranks are not looked at)
fnet_status fnet_tt_check_modes(fnet_ctx *ctx, const struct fnet_tt_shape *s)
{
    if (s == NULL)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "tt shape is NULL");
    if (s->d < 1 || s->d > FNET_TT_MAX_D)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "d = %d out of range 1..%d", s->d,
                         FNET_TT_MAX_D);
    int64_t M = 1, N = 1;
    for (int k = 0; k < s->d; k++) {
        if (s->m[k] < 1 || s->n[k] < 1)
            return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "modes of core %d are m%d = %lld, n%d = "
                             "%lld: each must be >= 1", k, k, (long long)s->m[k], k,
                             (long long)s->n[k]);
        if (sat_mul(M, s->m[k]) == INT64_MAX || sat_mul(N, s->n[k]) == INT64_MAX)
            return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "modes of core %d overflow the sizes", k);
        M *= s->m[k];
        N *= s->n[k];
    }
    return FNET_OK;
}

fnet_status fnet_tt_shape_check(fnet_ctx *ctx, const struct fnet_tt_shape *s)
{
    fnet_status st = fnet_tt_check_modes(ctx, s);
    if (st != FNET_OK)
        return st;
    if (s->r[0] != 1 || s->r[s->d] != 1)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "boundary ranks r0 = %lld, r%d = %lld must "
                         "be 1", (long long)s->r[0], s->d, (long long)s->r[s->d]);
    for (int k = 1; k < s->d; k++) {
        int64_t left, right, bound = fnet_tt_bond_bound(s, k, &left, &right);
        if (s->r[k] < 1)
            return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "rank %lld at bond %d must be >= 1",
                             (long long)s->r[k], k);
        if (s->r[k] > bound) {
            char ln[8 * 16], rn[8 * 16];
            fnet_tt_mode_names(ln, sizeof(ln), 0, k);
            fnet_tt_mode_names(rn, sizeof(rn), k, s->d);
            return fnet_fail(ctx, FNET_ERR_INVALID_ARG,
                             "rank %lld exceeds min(%s, ...) = %lld at bond %d (%s = %lld, "
                             "%s = %lld)", (long long)s->r[k], ln, (long long)bound, k, ln,
                             (long long)left, rn, (long long)right);
        }
    }
    if (fnet_tt_num_params_sat(s) == INT64_MAX)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "the cores' sizes overflow");
    return FNET_OK;
}

// M·N floats of a dense W, or an error when that is not addressable
fnet_status fnet_tt_dense_size(fnet_ctx *ctx, const struct fnet_tt_shape *s, int64_t *size)
{
    int64_t M = fnet_tt_rows(s), N = fnet_tt_cols(s), MN = sat_mul(M, N);
    if (MN == INT64_MAX || (uint64_t)MN > SIZE_MAX / sizeof(double))
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "dense W (%lld, %lld) is too large",
                         (long long)M, (long long)N);
    *size = MN;
    return FNET_OK;
}

// eps >= 0 finite (0 only with a rank cap), max_rank >= 0
static fnet_status check_truncation(fnet_ctx *ctx, double eps, int64_t max_rank)
{
    if (!(eps >= 0.0) || isinf(eps) || (eps == 0.0 && max_rank <= 0))
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG,
                         "eps = %g must be finite and > 0 (0 only with max_rank > 0)", eps);
    if (max_rank < 0)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "max_rank = %lld must be >= 0 (0: no cap)",
                         (long long)max_rank);
    return FNET_OK;
}

// Between the paired order (i_0, j_0, i_1, j_1, ..) of a TT's full tensor and the dense
// W[(i_0..i_{d-1}), (j_0..j_{d-1})] (M, N): to_dense writes dense[...] = paired[...], else the
// reverse. An odometer over the 2d digits of the paired index carries the dense offset along.
void fnet_tt_permute_paired(const struct fnet_tt_shape *s, const float *src, float *dst,
                            bool to_dense)
{
    int64_t dim[2 * FNET_TT_MAX_D], stride[2 * FNET_TT_MAX_D], idx[2 * FNET_TT_MAX_D];
    int64_t M = fnet_tt_rows(s), N = fnet_tt_cols(s), ms = 1, ns = 1;
    int nd = 2 * s->d;
    for (int k = s->d - 1; k >= 0; k--) {
        dim[2 * k] = s->m[k];
        stride[2 * k] = ms * N;
        dim[2 * k + 1] = s->n[k];
        stride[2 * k + 1] = ns;
        ms *= s->m[k];
        ns *= s->n[k];
    }
    for (int t = 0; t < nd; t++)
        idx[t] = 0;
    int64_t off = 0;
    for (int64_t p = 0; p < M * N; p++) {
        if (to_dense)
            dst[off] = src[p];
        else
            dst[p] = src[off];
        for (int t = nd - 1; t >= 0; t--) {
            off += stride[t];
            if (++idx[t] < dim[t])
                break;
            off -= dim[t] * stride[t];
            idx[t] = 0;
        }
    }
}

fnet_status fnet_tt_full(fnet_ctx *ctx, const struct fnet_tt_shape *s, const float *cores,
                         float *W)
{
    if (ctx == NULL || cores == NULL || W == NULL)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "tt_full: NULL argument");
    fnet_status st = fnet_tt_shape_check(ctx, s);
    int64_t MN = 0;
    if (st == FNET_OK)
        st = fnet_tt_dense_size(ctx, s, &MN);
    if (st != FNET_OK)
        return st;
    float *tmp = fnet_malloc_array((size_t)MN, sizeof(float));
    if (tmp == NULL)
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "tt_full: workspace of %lld floats",
                         (long long)MN);
    // T (P_k, r[k]) · G_k (r[k], s_k·r[k+1]) = T' (P_k·s_k, r[k+1]), P_k = Π_{l<k} s_l, ping-pong
    // between W and tmp so that the last product (the paired tensor) lands in tmp.
    const float *T = cores;
    int64_t P = mode(s, 0);
    for (int k = 1; k < s->d; k++) {
        float *out = (s->d - 1 - k) % 2 == 0 ? tmp : W;
        int64_t nk = mode(s, k) * s->r[k + 1];
        ctx->be->host_la->sgemm(ctx, false, false, P, nk, s->r[k], 1.0f, T, s->r[k],
                       cores + fnet_tt_core_offset(s, k), nk, 0.0f, out, nk);
        T = out;
        P *= mode(s, k);
    }
    fnet_tt_permute_paired(s, T, W, true);
    fnet_free(tmp);
    return FNET_OK;
}

// The TT-SVD/rounding truncation rule: the smallest r >= 1 whose discarded singular values
// S[r..kk) have Σ S_i² <= δ² (summed from the smallest), then at most max_rank when > 0.
int64_t fnet_tt_truncation_rank(const float *S, int64_t kk, double delta, int64_t max_rank)
{
    double tail = 0.0, d2 = delta * delta;
    int64_t r = kk;
    while (r > 1) {
        double t = tail + (double)S[r - 1] * (double)S[r - 1];
        if (t > d2)
            break;
        tail = t;
        r--;
    }
    return max_rank > 0 && r > max_rank ? max_rank : r;
}

// ‖x (n)‖_F in double
static double norm_f(int64_t n, const float *x)
{
    double acc = 0.0;
    for (int64_t i = 0; i < n; i++)
        acc += (double)x[i] * (double)x[i];
    return sqrt(acc);
}

fnet_status fnet_tt_svd_step(fnet_ctx *ctx, float *C, int64_t rows, int64_t cols, float *U,
                             float *S, float *Vt, double delta, int64_t max_rank, bool exact,
                             float *staged, int64_t *off, int64_t *r)
{
    int64_t kk = rows < cols ? rows : cols;
    fnet_status st = ctx->be->host_la->gesvd(ctx, rows, cols, C, U, S, Vt);
    if (st != FNET_OK)
        return st;
    int64_t k = exact ? (max_rank < kk ? max_rank : kk)
                      : fnet_tt_truncation_rank(S, kk, delta, max_rank);
    for (int64_t i = 0; i < rows; i++)
        memcpy(staged + *off + i * k, U + i * kk, (size_t)k * sizeof(float));
    *off += rows * k;
    for (int64_t a = 0; a < k; a++)
        for (int64_t c = 0; c < cols; c++)
            C[a * cols + c] = S[a] * Vt[a * cols + c];
    *r = k;
    return FNET_OK;
}

fnet_status fnet_tt_svd(fnet_ctx *ctx, const float *W, double eps, int64_t max_rank,
                        struct fnet_tt_shape *s, float **cores)
{
    if (cores != NULL)
        *cores = NULL;
    if (ctx == NULL || W == NULL || cores == NULL)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "tt_svd: NULL argument");
    fnet_status st = fnet_tt_check_modes(ctx, s);
    int64_t MN = 0;
    if (st == FNET_OK)
        st = check_truncation(ctx, eps, max_rank);
    if (st == FNET_OK)
        st = fnet_tt_dense_size(ctx, s, &MN);
    if (st != FNET_OK)
        return st;
    int64_t N = fnet_tt_cols(s);
    for (int64_t i = 0; i < MN; i++)
        if (!isfinite(W[i]))
            return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "W has a non-finite entry at (%lld, %lld)",
                             (long long)(i / N), (long long)(i % N));
    const int d = s->d;
    // Workspace from the largest ranks possible: rb_k = min(bond bound, max_rank). Step k
    // factors C (rb_k·s_k, rest_k), rest_k = Π_{l>k} s_l, into U (., kk), S (kk), Vt (kk, .).
    int64_t rb[FNET_TT_MAX_D + 1], rest[FNET_TT_MAX_D];
    rb[0] = rb[d] = 1;
    for (int k = 1; k < d; k++) {
        rb[k] = fnet_tt_bond_bound(s, k, NULL, NULL);
        if (max_rank > 0 && rb[k] > max_rank)
            rb[k] = max_rank;
    }
    rest[d - 1] = 1;
    for (int k = d - 2; k >= 0; k--)
        rest[k] = rest[k + 1] * mode(s, k + 1);
    int64_t u_max = 1, vt_max = 1, s_max = 1, stage = 0;
    for (int k = 0; k < d; k++) {
        int64_t rows = rb[k] * mode(s, k), kk = rows < rest[k] ? rows : rest[k];
        u_max = rows * kk > u_max ? rows * kk : u_max;
        vt_max = kk * rest[k] > vt_max ? kk * rest[k] : vt_max;
        s_max = kk > s_max ? kk : s_max;
        stage += rows * rb[k + 1];
    }
    float *C = fnet_malloc_array((size_t)MN, sizeof(float));
    float *U = fnet_malloc_array((size_t)u_max, sizeof(float));
    float *S = fnet_malloc_array((size_t)s_max, sizeof(float));
    float *Vt = fnet_malloc_array((size_t)vt_max, sizeof(float));
    float *staged = fnet_malloc_array((size_t)stage, sizeof(float));
    float *out = NULL;
    if (C == NULL || U == NULL || S == NULL || Vt == NULL || staged == NULL) {
        st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "tt_svd: workspace for W (%lld, %lld)",
                       (long long)fnet_tt_rows(s), (long long)N);
        goto out_free;
    }
    fnet_tt_permute_paired(s, W, C, false);
    double delta = d > 1 ? eps * norm_f(MN, W) / sqrt((double)(d - 1)) : 0.0;
    struct fnet_tt_shape res = *s;
    res.r[0] = res.r[d] = 1;
    int64_t off = 0;
    for (int k = 0; k < d - 1; k++) {
        // C (rows, rest_k) = U·S·Vt; core k = U[:, :r], then C = diag(S[:r])·Vt[:r, :] read as
        // (r·s_{k+1}, rest_{k+1}) for the next step
        st = fnet_tt_svd_step(ctx, C, res.r[k] * mode(s, k), rest[k], U, S, Vt, delta, max_rank,
                              false, staged, &off, &res.r[k + 1]);
        if (st != FNET_OK)
            goto out_free;
    }
    memcpy(staged + off, C, (size_t)(res.r[d - 1] * mode(s, d - 1)) * sizeof(float));
    FNET_ASSERT(ctx, fnet_tt_shape_check(ctx, &res) == FNET_OK);
    out = fnet_malloc_array((size_t)fnet_tt_num_params(&res), sizeof(float));
    if (out == NULL) {
        st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "tt_svd: cores (%lld floats)",
                       (long long)fnet_tt_num_params(&res));
        goto out_free;
    }
    memcpy(out, staged, (size_t)fnet_tt_num_params(&res) * sizeof(float));
    *s = res;
    *cores = out;
out_free:
    fnet_free(staged);
    fnet_free(Vt);
    fnet_free(S);
    fnet_free(U);
    fnet_free(C);
    return st;
}

fnet_status fnet_tt_round(fnet_ctx *ctx, const struct fnet_tt_shape *s, const float *cores,
                          double eps, int64_t max_rank, struct fnet_tt_shape *out_shape,
                          float **out)
{
    if (out != NULL)
        *out = NULL;
    if (ctx == NULL || cores == NULL || out_shape == NULL || out == NULL)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "tt_round: NULL argument");
    fnet_status st = fnet_tt_shape_check(ctx, s);
    if (st == FNET_OK)
        st = check_truncation(ctx, eps, max_rank);
    if (st != FNET_OK)
        return st;
    const int d = s->d;
    const int64_t np = fnet_tt_num_params(s);
    for (int64_t i = 0; i < np; i++)
        if (!isfinite(cores[i]))
            return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "cores have a non-finite entry at [%lld]",
                             (long long)i);
    // Ranks only shrink, so every core stays inside its input slot: off[k] of the input shape.
    // tmp and U hold at most one core, R and Vt at most r_max² (r_max the largest input rank).
    int64_t off[FNET_TT_MAX_D], c_max = 1, r_max = 1;
    for (int k = 0; k < d; k++) {
        off[k] = fnet_tt_core_offset(s, k);
        int64_t size = s->r[k] * mode(s, k) * s->r[k + 1];
        c_max = size > c_max ? size : c_max;
        r_max = s->r[k] > r_max ? s->r[k] : r_max;
    }
    float *G = fnet_malloc_array((size_t)np, sizeof(float));
    float *tmp = fnet_malloc_array((size_t)c_max, sizeof(float));
    float *U = fnet_malloc_array((size_t)c_max, sizeof(float));
    float *Rv = fnet_malloc_array((size_t)(r_max * r_max), sizeof(float));
    float *S = fnet_malloc_array((size_t)r_max, sizeof(float));
    float *res = NULL;
    if (G == NULL || tmp == NULL || U == NULL || Rv == NULL || S == NULL) {
        st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "tt_round: workspace (%lld floats)",
                       (long long)np);
        goto out_free;
    }
    memcpy(G, cores, (size_t)np * sizeof(float));
    struct fnet_tt_shape t = *s;
    // right-to-left: G_k (r_k, s_k·r_{k+1}) = Rᵀ·Qᵀ from G_kᵀ = Q·R; G_k = Qᵀ (k', .) has
    // orthonormal rows, R is pushed into G_{k-1} (r_{k-1}·s_{k-1}, r_k)·Rᵀ, and r_k becomes k'
    for (int k = d - 1; k >= 1; k--) {
        int64_t a = t.r[k], b = mode(&t, k) * t.r[k + 1], kq = a < b ? a : b;
        float *Gk = G + off[k], *Gp = G + off[k - 1];
        for (int64_t i = 0; i < a; i++)
            for (int64_t j = 0; j < b; j++)
                tmp[j * a + i] = Gk[i * b + j];
        st = ctx->be->host_la->qr(ctx, b, a, tmp, U, Rv); // U: Q (b, kq), Rv: R (kq, a)
        if (st != FNET_OK)
            goto out_free;
        for (int64_t i = 0; i < kq; i++)
            for (int64_t j = 0; j < b; j++)
                Gk[i * b + j] = U[j * kq + i];
        int64_t rows = t.r[k - 1] * mode(&t, k - 1);
        ctx->be->host_la->sgemm(ctx, false, true, rows, kq, a, 1.0f, Gp, a, Rv, a, 0.0f, tmp, kq);
        memcpy(Gp, tmp, (size_t)(rows * kq) * sizeof(float));
        t.r[k] = kq;
    }
    // every core but the first is now right-orthogonal: ‖TT‖_F = ‖G_0‖_F
    double nrm = norm_f(mode(&t, 0) * t.r[1], G);
    double delta = d > 1 ? eps * nrm / sqrt((double)(d - 1)) : 0.0;
    // left-to-right: G_k (r_k·s_k, r_{k+1}) = U·S·Vt truncated to r; G_k = U[:, :r] and
    // diag(S[:r])·Vt[:r, :] (r, r_{k+1}) multiplies G_{k+1} (r_{k+1}, s_{k+1}·r_{k+2})
    for (int k = 0; k < d - 1; k++) {
        int64_t a = t.r[k] * mode(&t, k), b = t.r[k + 1], kk = a < b ? a : b;
        float *Gk = G + off[k], *Gn = G + off[k + 1];
        st = ctx->be->host_la->gesvd(ctx, a, b, Gk, U, S, Rv); // U (a, kk), Rv: Vt (kk, b)
        if (st != FNET_OK)
            goto out_free;
        int64_t r = fnet_tt_truncation_rank(S, kk, delta, max_rank);
        for (int64_t i = 0; i < a; i++)
            memcpy(Gk + i * r, U + i * kk, (size_t)r * sizeof(float));
        for (int64_t i = 0; i < r; i++)
            for (int64_t j = 0; j < b; j++)
                Rv[i * b + j] *= S[i];
        int64_t nn = mode(&t, k + 1) * t.r[k + 2];
        ctx->be->host_la->sgemm(ctx, false, false, r, nn, b, 1.0f, Rv, b, Gn, nn, 0.0f, tmp, nn);
        memcpy(Gn, tmp, (size_t)(r * nn) * sizeof(float));
        t.r[k + 1] = r;
    }
    FNET_ASSERT(ctx, fnet_tt_shape_check(ctx, &t) == FNET_OK);
    res = fnet_malloc_array((size_t)fnet_tt_num_params(&t), sizeof(float));
    if (res == NULL) {
        st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "tt_round: cores (%lld floats)",
                       (long long)fnet_tt_num_params(&t));
        goto out_free;
    }
    for (int k = 0; k < d; k++)
        memcpy(res + fnet_tt_core_offset(&t, k), G + off[k],
               (size_t)(t.r[k] * mode(&t, k) * t.r[k + 1]) * sizeof(float));
    *out_shape = t;
    *out = res;
out_free:
    fnet_free(S);
    fnet_free(Rv);
    fnet_free(U);
    fnet_free(tmp);
    fnet_free(G);
    return st;
}

fnet_status fnet_tt_inner(fnet_ctx *ctx, const struct fnet_tt_shape *a, const float *ca,
                          const struct fnet_tt_shape *b, const float *cb, double *dot)
{
    if (ctx == NULL || ca == NULL || cb == NULL || dot == NULL)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "tt_inner: NULL argument");
    fnet_status st = fnet_tt_shape_check(ctx, a);
    if (st == FNET_OK)
        st = fnet_tt_shape_check(ctx, b);
    if (st != FNET_OK)
        return st;
    if (a->d != b->d)
        return fnet_fail(ctx, FNET_ERR_SHAPE, "tt_inner: d = %d vs %d", a->d, b->d);
    for (int k = 0; k < a->d; k++)
        if (a->m[k] != b->m[k] || a->n[k] != b->n[k])
            return fnet_fail(ctx, FNET_ERR_SHAPE, "tt_inner: modes of core %d differ: (%lld, %lld)"
                             " vs (%lld, %lld)", k, (long long)a->m[k], (long long)a->n[k],
                             (long long)b->m[k], (long long)b->n[k]);
    const int d = a->d;
    int64_t phi_max = 1, t_max = 1;
    for (int k = 0; k < d; k++) {
        int64_t p = a->r[k + 1] * b->r[k + 1], q = b->r[k] * mode(a, k) * a->r[k + 1];
        phi_max = p > phi_max ? p : phi_max;
        t_max = q > t_max ? q : t_max;
    }
    double *phi = fnet_malloc_array((size_t)phi_max, sizeof(double));
    double *phi2 = fnet_malloc_array((size_t)phi_max, sizeof(double));
    double *T = fnet_malloc_array((size_t)t_max, sizeof(double));
    if (phi == NULL || phi2 == NULL || T == NULL) {
        st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "tt_inner: workspace");
        goto out_free;
    }
    // Φ_0 = 1; Φ_{k+1}[α', β'] = Σ_{α, β, p} Φ_k[α, β]·A_k[α, p, α']·B_k[β, p, β'], in two
    // steps through T[β, p, α'] = Σ_α Φ_k[α, β]·A_k[α, p, α']; ⟨A, B⟩ = Φ_d.
    phi[0] = 1.0;
    for (int k = 0; k < d; k++) {
        int64_t ra = a->r[k], ra1 = a->r[k + 1], rb = b->r[k], rb1 = b->r[k + 1], sk = mode(a, k);
        const float *A = ca + fnet_tt_core_offset(a, k), *B = cb + fnet_tt_core_offset(b, k);
        for (int64_t i = 0; i < rb * sk * ra1; i++)
            T[i] = 0.0;
        for (int64_t al = 0; al < ra; al++)
            for (int64_t be = 0; be < rb; be++) {
                double f = phi[al * rb + be];
                const float *Ar = A + al * sk * ra1;
                double *Tr = T + be * sk * ra1;
                for (int64_t i = 0; i < sk * ra1; i++)
                    Tr[i] += f * (double)Ar[i];
            }
        for (int64_t i = 0; i < ra1 * rb1; i++)
            phi2[i] = 0.0;
        for (int64_t be = 0; be < rb; be++)
            for (int64_t p = 0; p < sk; p++) {
                const double *Tr = T + (be * sk + p) * ra1;
                const float *Br = B + (be * sk + p) * rb1;
                for (int64_t al = 0; al < ra1; al++)
                    for (int64_t b1 = 0; b1 < rb1; b1++)
                        phi2[al * rb1 + b1] += Tr[al] * (double)Br[b1];
            }
        double *sw = phi;
        phi = phi2;
        phi2 = sw;
    }
    *dot = phi[0];
out_free:
    fnet_free(T);
    fnet_free(phi2);
    fnet_free(phi);
    return st;
}

fnet_status fnet_tt_norm(fnet_ctx *ctx, const struct fnet_tt_shape *s, const float *cores,
                         double *norm)
{
    if (norm == NULL)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "tt_norm: NULL argument");
    double sq = 0.0;
    fnet_status st = fnet_tt_inner(ctx, s, cores, s, cores, &sq);
    if (st == FNET_OK)
        *norm = sqrt(sq > 0.0 ? sq : 0.0);
    return st;
}
