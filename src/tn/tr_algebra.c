/* Tensor-ring algebra (src/tn/tr.h): the shape check, the dense matrix of a ring, and TR-SVD
 * (Zhao, Zhou, Xie, Zhang & Cichocki, "Tensor ring decomposition", arXiv:1606.05535, 2016,
 * Algorithm 1) on the backend's host linear algebra (ctx->be->host_la). A ring is a TT shape
 * with r[0] = r[d] = R, worked on in the paired view of src/tn/tt_paired.h (docs/tt_algebra.md,
 * "Paired indices"); R = 1 is a TT. Host memory only. */
#include "tn/tr.h"
#include "tn/tt_paired.h"
#include "core/backend.h"

#include <math.h>
#include <string.h>

// s_k, the size of core k's paired index (i_k, j_k)
static int64_t mode(const struct fnet_tt_shape *s, int k)
{
    return s->m[k] * s->n[k];
}

fnet_status fnet_tr_shape_check(fnet_ctx *ctx, const struct fnet_tt_shape *s)
{
    fnet_status st = fnet_tt_check_modes(ctx, s);
    if (st != FNET_OK)
        return st;
    const int64_t R = s->r[0];
    if (R < 1 || s->r[s->d] != R)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "boundary ranks r0 = %lld, r%d = %lld must "
                         "be equal and >= 1 (the ring rank)", (long long)R, s->d,
                         (long long)s->r[s->d]);
    // One core closing on itself would hold R² copies' worth of floats for one W, and there is
    // no bond for TR-SVD to cut.
    if (s->d == 1 && R > 1)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "ring rank r0 = %lld > 1 needs d >= 2 "
                         "(d = 1)", (long long)R);
    for (int k = 1; k < s->d; k++) {
        int64_t left, right, bound = fnet_tt_bond_bound(s, k, &left, &right);
        if (s->r[k] < 1)
            return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "rank %lld at bond %d must be >= 1",
                             (long long)s->r[k], k);
        // Cut at bonds 0 and k, the ring is a matrix (Π_{l<k} s_l, Π_{l>=k} s_l) of rank at
        // most R·r_k: more is redundant, and TR-SVD's first SVD could not deliver R·r_1.
        if (s->r[k] > bound / R) {
            char ln[8 * 16], rn[8 * 16];
            fnet_tt_mode_names(ln, sizeof(ln), 0, k);
            fnet_tt_mode_names(rn, sizeof(rn), k, s->d);
            return fnet_fail(ctx, FNET_ERR_INVALID_ARG,
                             "r0*r%d = %lld*%lld exceeds min(%s, ...) = %lld at bond %d "
                             "(%s = %lld, %s = %lld)", k, (long long)R, (long long)s->r[k], ln,
                             (long long)bound, k, ln, (long long)left, rn, (long long)right);
        }
    }
    if (fnet_tt_num_params_sat(s) == INT64_MAX)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "the cores' sizes overflow");
    return FNET_OK;
}

// The chain of cores with the ring index α of G_0 kept outermost: T = G_0 (R·s_0, r_1), then
// T (R·P_k, r_k) · G_k (r_k, s_k·r_{k+1}) for k = 1..d-2, P_k = Π_{l<k} s_l, ping-ponging
// between W and tmp so that the last product lands in W. Every T has R·P_k·r_k <= M·N floats
// (the bond bound R·r_k <= Π_{l>=k} s_l). Returns T, (R, P_{d-1}, r_{d-1}).
static const float *chain(fnet_ctx *ctx, const struct fnet_tt_shape *s, const float *cores,
                          float *W, float *tmp)
{
    const float *T = cores;
    const int64_t R = s->r[0];
    int64_t P = mode(s, 0);
    for (int k = 1; k < s->d - 1; k++) {
        float *out = (s->d - 2 - k) % 2 == 0 ? W : tmp;
        int64_t nk = mode(s, k) * s->r[k + 1];
        ctx->be->host_la->sgemm(ctx, false, false, R * P, nk, s->r[k], 1.0f, T, s->r[k],
                                cores + fnet_tt_core_offset(s, k), nk, 0.0f, out, nk);
        T = out;
        P *= mode(s, k);
    }
    return T;
}

fnet_status fnet_tr_full(fnet_ctx *ctx, const struct fnet_tt_shape *s, const float *cores,
                         float *W)
{
    if (ctx == NULL || cores == NULL || W == NULL)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "tr_full: NULL argument");
    fnet_status st = fnet_tr_shape_check(ctx, s);
    int64_t MN = 0;
    if (st == FNET_OK)
        st = fnet_tt_dense_size(ctx, s, &MN);
    if (st != FNET_OK)
        return st;
    const int d = s->d;
    const int64_t R = s->r[0];
    if (d == 1) { // R = 1: the core (1, m_0, n_0, 1) is W
        memcpy(W, cores, (size_t)MN * sizeof(float));
        return FNET_OK;
    }
    const int64_t rl = s->r[d - 1], sl = mode(s, d - 1), P = MN / sl;
    float *tmp = fnet_malloc_array((size_t)MN, sizeof(float));
    float *last = fnet_malloc_array((size_t)(R * rl * sl), sizeof(float));
    if (tmp == NULL || last == NULL) {
        st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "tr_full: workspace of %lld floats",
                       (long long)(MN + R * rl * sl));
        goto out_free;
    }
    // G_{d-1} (r_{d-1}, s_{d-1}, R) as (R, r_{d-1}, s_{d-1}): each α's slice a matrix for sgemm
    const float *G = cores + fnet_tt_core_offset(s, d - 1);
    for (int64_t b = 0; b < rl; b++)
        for (int64_t p = 0; p < sl; p++)
            for (int64_t a = 0; a < R; a++)
                last[(a * rl + b) * sl + p] = G[(b * sl + p) * R + a];
    const float *T = chain(ctx, s, cores, W, tmp);
    // The trace closes the ring: A (P_{d-1}, s_{d-1}) = Σ_α T[α] (P_{d-1}, r_{d-1}) · last[α],
    // the paired tensor, into tmp (T is in W or the cores)
    for (int64_t a = 0; a < R; a++)
        ctx->be->host_la->sgemm(ctx, false, false, P, sl, rl, 1.0f, T + a * P * rl, rl,
                                last + a * rl * sl, sl, a > 0 ? 1.0f : 0.0f, tmp, sl);
    fnet_tt_permute_paired(s, tmp, W, true);
out_free:
    fnet_free(last);
    fnet_free(tmp);
    return st;
}

// ‖x (n)‖_F in double
static double norm_f(int64_t n, const float *x)
{
    double acc = 0.0;
    for (int64_t i = 0; i < n; i++)
        acc += (double)x[i] * (double)x[i];
    return sqrt(acc);
}

// W (M, N) finite, eps >= 0 finite; the message names the first bad entry
static fnet_status check_svd_args(fnet_ctx *ctx, const struct fnet_tt_shape *s, const float *W,
                                  int64_t MN, double eps)
{
    if (!(eps >= 0.0) || isinf(eps))
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "eps = %g must be finite and >= 0", eps);
    int64_t N = fnet_tt_cols(s);
    for (int64_t i = 0; i < MN; i++)
        if (!isfinite(W[i]))
            return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "W has a non-finite entry at (%lld, %lld)",
                             (long long)(i / N), (long long)(i % N));
    return FNET_OK;
}

// Floats of TR-SVD's workspaces for ranks at most the caps s->r: the largest U (rows, kk),
// S (kk) and Vt (kk, cols) of the d-1 SVDs, and the cores at the caps. Step 0 factors the paired
// tensor (s_0, rest_0); step k >= 1 the remainder C (r_k·s_k, rest_k·R), rest_k = Π_{l>k} s_l.
struct tr_work {
    int64_t rest[FNET_TT_MAX_D], u, s, vt, stage;
};

static void tr_work_sizes(const struct fnet_tt_shape *s, struct tr_work *w)
{
    const int d = s->d;
    const int64_t R = s->r[0];
    w->rest[d - 1] = 1;
    for (int k = d - 2; k >= 0; k--)
        w->rest[k] = w->rest[k + 1] * mode(s, k + 1);
    w->u = w->s = w->vt = 1;
    w->stage = s->r[d - 1] * mode(s, d - 1) * R;
    for (int k = 0; k < d - 1; k++) {
        int64_t rows = (k == 0 ? 1 : s->r[k]) * mode(s, k);
        int64_t cols = w->rest[k] * (k == 0 ? 1 : R), kk = rows < cols ? rows : cols;
        w->u = rows * kk > w->u ? rows * kk : w->u;
        w->vt = kk * cols > w->vt ? kk * cols : w->vt;
        w->s = kk > w->s ? kk : w->s;
        w->stage += s->r[k] * mode(s, k) * s->r[k + 1];
    }
}

// *cores = a fnet_malloc copy of W (MN floats): TR-SVD with one core
static fnet_status copy_core(fnet_ctx *ctx, const float *W, int64_t MN, float **cores)
{
    float *out = fnet_malloc_array((size_t)MN, sizeof(float));
    if (out == NULL)
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "tr_svd: core (%lld floats)",
                         (long long)MN);
    memcpy(out, W, (size_t)MN * sizeof(float));
    *cores = out;
    return FNET_OK;
}

fnet_status fnet_tr_svd(fnet_ctx *ctx, const float *W, double eps, struct fnet_tt_shape *s,
                        float **cores)
{
    if (cores != NULL)
        *cores = NULL;
    if (ctx == NULL || W == NULL || s == NULL || cores == NULL)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "tr_svd: NULL argument");
    fnet_status st = fnet_tr_shape_check(ctx, s);
    int64_t MN = 0;
    if (st == FNET_OK)
        st = fnet_tt_dense_size(ctx, s, &MN);
    if (st == FNET_OK)
        st = check_svd_args(ctx, s, W, MN, eps);
    if (st != FNET_OK)
        return st;
    const int d = s->d;
    const int64_t R = s->r[0];
    if (d == 1) // R = 1: the core (1, m_0, n_0, 1) is W
        return copy_core(ctx, W, MN, cores);
    struct tr_work w;
    tr_work_sizes(s, &w);
    float *C = fnet_malloc_array((size_t)MN, sizeof(float));
    float *U = fnet_malloc_array((size_t)w.u, sizeof(float));
    float *S = fnet_malloc_array((size_t)w.s, sizeof(float));
    float *Vt = fnet_malloc_array((size_t)w.vt, sizeof(float));
    float *staged = fnet_malloc_array((size_t)w.stage, sizeof(float));
    float *out = NULL;
    if (C == NULL || U == NULL || S == NULL || Vt == NULL || staged == NULL) {
        st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "tr_svd: workspace for W (%lld, %lld)",
                       (long long)fnet_tt_rows(s), (long long)fnet_tt_cols(s));
        goto out_free;
    }
    fnet_tt_permute_paired(s, W, C, false);
    struct fnet_tt_shape res = *s;
    // Step 0: the paired tensor (s_0, rest_0) = U·S·Vt cut to exactly R·r_1 triplets (the
    // shape check keeps R·r_1 <= min(s_0, rest_0)). U's columns read as (R, r_1) give
    // G_0[α, p, β] = U[p, α·r_1 + β]; the remainder S·Vt (R·r_1, rest_0) read as (R, r_1, rest_0)
    // goes to C as (r_1, rest_0, R), the ring index last, where the last core will close it.
    const int64_t s0 = mode(s, 0), r1 = s->r[1], rest0 = w.rest[0];
    const int64_t kk0 = s0 < rest0 ? s0 : rest0;
    st = ctx->be->host_la->gesvd(ctx, s0, rest0, C, U, S, Vt);
    if (st != FNET_OK)
        goto out_free;
    for (int64_t a = 0; a < R; a++)
        for (int64_t p = 0; p < s0; p++)
            memcpy(staged + (a * s0 + p) * r1, U + p * kk0 + a * r1, (size_t)r1 * sizeof(float));
    for (int64_t a = 0; a < R; a++)
        for (int64_t b = 0; b < r1; b++) {
            const int64_t c = a * r1 + b;
            for (int64_t q = 0; q < rest0; q++)
                C[(b * rest0 + q) * R + a] = S[c] * Vt[c * rest0 + q];
        }
    int64_t off = R * s0 * r1;
    // Steps 1..d-2: TT-SVD of the remainder (r_1, s_1, .., s_{d-1}, R) with R folded into the
    // columns: C (r_k·s_k, rest_k·R) = U·S·Vt, G_k = U[:, :r], C = diag(S[:r])·Vt[:r, :] read as
    // (r·s_{k+1}, rest_{k+1}·R). eps 0 keeps the caps; else the TT-SVD rule under the caps.
    // For an exact ring, U = G_0's columns times some invertible (R·r_1)² matrix that mixes α
    // with β, so the remainder's rank at bond k is up to min(R, r_1)²·r_k, not r_k (tr.h).
    const double delta = eps * norm_f(MN, W) / sqrt((double)(d - 1));
    for (int k = 1; k < d - 1; k++) {
        st = fnet_tt_svd_step(ctx, C, res.r[k] * mode(s, k), w.rest[k] * R, U, S, Vt, delta,
                              s->r[k + 1], eps == 0.0, staged, &off, &res.r[k + 1]);
        if (st != FNET_OK)
            goto out_free;
    }
    // the last core (r_{d-1}, s_{d-1}, R) is what remains
    memcpy(staged + off, C, (size_t)(res.r[d - 1] * mode(s, d - 1) * R) * sizeof(float));
    // ranks only shrink from valid caps, so res is a valid ring
    if (fnet_tr_shape_check(ctx, &res) != FNET_OK) {
        st = fnet_fail(ctx, FNET_ERR_INTERNAL, "tr_svd: ranks out of their bounds");
        goto out_free;
    }
    out = fnet_malloc_array((size_t)fnet_tt_num_params(&res), sizeof(float));
    if (out == NULL) {
        st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "tr_svd: cores (%lld floats)",
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
