/* Tensor-ring algebra (src/tn/tr_algebra.c) on the reference and CPU backends: the dense matrix of
 * a ring against a naive trace of products of core slices and, for R = 1, against fnet_tt_full;
 * TR-SVD recovering exact rings and meeting its error bound as eps grows; shape and argument
 * checks with their messages; out-of-memory injection. Host-side algebra: every pointer here is
 * host memory, on every backend. */
#include "test_util.h"
#include "linalg_check.h"
#include "core/backend.h"
#include "tn/tr.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

// fnet_tr_full against the naive double trace of slices
#define FULL_RTOL 1e-5
// exact-ring recovery: ‖W − TR‖_F / ‖W‖_F after TR-SVD of a float W that is an exact ring
#define EXACT_RTOL 1e-5
// slack on error bounds that are exact in exact arithmetic: the float SVDs and the float result
// add errors of a few 1e-7·‖W‖_F
#define FLOAT_SLACK 1e-5

// The tests that loop over backends run on the ctx fnet_test_ctx gives for each of these
// defaults, or, when FNET_TEST_BACKEND is set, on the backend it names twice.
static const fnet_backend_kind backend_defaults[] = {FNET_BACKEND_REFERENCE, FNET_BACKEND_CPU};
#define N_BACKENDS 2

// the largest rank a naive evaluation below handles
#define MAX_R 16

static struct fnet_tt_shape make_shape(int d, const int64_t *m, const int64_t *n,
                                       const int64_t *r)
{
    struct fnet_tt_shape s;
    memset(&s, 0, sizeof(s));
    s.d = d;
    for (int k = 0; k < d; k++) {
        s.m[k] = m[k];
        s.n[k] = n[k];
    }
    for (int k = 0; k <= d; k++)
        s.r[k] = r[k];
    return s;
}

static int64_t mn(const struct fnet_tt_shape *s)
{
    return fnet_tt_rows(s) * fnet_tt_cols(s);
}

// s_k = m[k]·n[k]
static int64_t mode_at(const struct fnet_tt_shape *s, int k)
{
    return s->m[k] * s->n[k];
}

// cores of s, uniform in [-1, 1) (test_malloc: the caller frees)
static float *random_cores(const struct fnet_tt_shape *s, uint64_t seed)
{
    int64_t np = fnet_tt_num_params(s);
    float *c = test_malloc((size_t)np * sizeof(float));
    fnet_test_fill_uniform(c, np, -1.0f, 1.0f, seed);
    return c;
}

// W[(i..), (j..)] = Tr(G_0[:, i_0, j_0, :] ··· G_{d-1}[:, i_{d-1}, j_{d-1}, :]), one entry at a
// time, in double: the definition
static double *naive_full(const struct fnet_tt_shape *s, const float *cores)
{
    int64_t M = fnet_tt_rows(s), N = fnet_tt_cols(s), R = s->r[0];
    double *W = test_malloc((size_t)(M * N) * sizeof(double));
    double v[MAX_R * MAX_R], w[MAX_R * MAX_R];
    for (int k = 0; k <= s->d; k++)
        assert_true(s->r[k] <= MAX_R);
    for (int64_t row = 0; row < M; row++)
        for (int64_t col = 0; col < N; col++) {
            int64_t i[FNET_TT_MAX_D], j[FNET_TT_MAX_D], a = row, b = col;
            for (int k = s->d - 1; k >= 0; k--) {
                i[k] = a % s->m[k];
                a /= s->m[k];
                j[k] = b % s->n[k];
                b /= s->n[k];
            }
            // v (R, r_k) = the product of the slices so far, from the identity (R, R)
            for (int64_t x = 0; x < R * R; x++)
                v[x] = x % (R + 1) == 0 ? 1.0 : 0.0;
            for (int k = 0; k < s->d; k++) {
                const float *G = cores + fnet_tt_core_offset(s, k);
                int64_t r0 = s->r[k], r1 = s->r[k + 1];
                for (int64_t x = 0; x < R; x++)
                    for (int64_t c = 0; c < r1; c++) {
                        double acc = 0.0;
                        for (int64_t l = 0; l < r0; l++)
                            acc += v[x * r0 + l] *
                                   (double)G[((l * s->m[k] + i[k]) * s->n[k] + j[k]) * r1 + c];
                        w[x * r1 + c] = acc;
                    }
                memcpy(v, w, (size_t)(R * r1) * sizeof(double));
            }
            double tr = 0.0;
            for (int64_t x = 0; x < R; x++)
                tr += v[x * R + x];
            W[row * N + col] = tr;
        }
    return W;
}

static float *full(fnet_ctx *ctx, const struct fnet_tt_shape *s, const float *cores)
{
    float *W = test_malloc((size_t)mn(s) * sizeof(float));
    fnet_assert_ok(ctx, fnet_tr_full(ctx, s, cores, W));
    return W;
}

static double fro_diff(int64_t n, const float *x, const float *y)
{
    double acc = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double t = (double)x[i] - (double)y[i];
        acc += t * t;
    }
    return sqrt(acc);
}

// the largest r[k] the shape check allows at bond k: min(Π_{l<k} s_l, Π_{l>=k} s_l) / R
static int64_t max_rank_at(const struct fnet_tt_shape *s, int k)
{
    int64_t left = 1, right = 1;
    for (int l = 0; l < s->d; l++)
        *(l < k ? &left : &right) *= s->m[l] * s->n[l];
    return (left < right ? left : right) / s->r[0];
}

// The most TR-SVD can keep at bond k >= 2 given r[1..k-1]: what the check allows, and at most
// the rows r_{k-1}·s_{k-1} of the remainder's unfolding
static int64_t remainder_cap(const struct fnet_tt_shape *s, int k)
{
    int64_t rows = s->r[k - 1] * mode_at(s, k - 1), cap = max_rank_at(s, k);
    return rows < cap ? rows : cap;
}

// Σ σ_i² over the singular values of the unfolding (s_0, rest) of W's paired tensor beyond the
// first `keep`: what TR-SVD's first truncation discards (Eckart–Young), in double
static double first_tail_sq(fnet_ctx *ctx, const struct fnet_tt_shape *s, const float *W,
                            int64_t keep)
{
    int64_t M = fnet_tt_rows(s), N = fnet_tt_cols(s), MN = M * N;
    int64_t s0 = s->m[0] * s->n[0], rest = MN / s0, kk = s0 < rest ? s0 : rest;
    float *A = test_malloc((size_t)MN * sizeof(float));
    // paired index (i_0 j_0 i_1 j_1 ...), row-major over the pairs
    for (int64_t row = 0; row < M; row++)
        for (int64_t col = 0; col < N; col++) {
            int64_t a = row, b = col, p = 0, scale = 1;
            for (int k = s->d - 1; k >= 0; k--) {
                p += (a % s->m[k] * s->n[k] + b % s->n[k]) * scale;
                scale *= s->m[k] * s->n[k];
                a /= s->m[k];
                b /= s->n[k];
            }
            A[p] = W[row * N + col];
        }
    float *U = test_malloc((size_t)(s0 * kk) * sizeof(float));
    float *S = test_malloc((size_t)kk * sizeof(float));
    float *Vt = test_malloc((size_t)(kk * rest) * sizeof(float));
    fnet_assert_ok(ctx, ctx->be->host_la->gesvd(ctx, s0, rest, A, U, S, Vt));
    double tail = 0.0;
    for (int64_t i = keep; i < kk; i++)
        tail += (double)S[i] * (double)S[i];
    test_free(Vt);
    test_free(S);
    test_free(U);
    test_free(A);
    return tail;
}

// ---- fnet_tr_full ----

static void test_tr_full_matches_trace_of_core_slices(void **state)
{
    (void)state;
    const int64_t m2[] = {3, 5}, n2[] = {4, 2}, r2[] = {2, 3, 2};
    const int64_t m2b[] = {4, 4}, n2b[] = {2, 3}, r2b[] = {4, 2, 4};
    const int64_t m3[] = {2, 3, 4}, n3[] = {3, 1, 2}, r3[] = {3, 2, 2, 3};
    const int64_t r3t[] = {1, 2, 4, 1};
    const int64_t m4[] = {2, 3, 2, 2}, n4[] = {3, 2, 1, 4}, r4[] = {2, 3, 4, 2, 2};
    const int64_t m1[] = {3}, n1[] = {5}, r1[] = {1, 1};
    struct fnet_tt_shape shapes[] = {make_shape(2, m2, n2, r2), make_shape(2, m2b, n2b, r2b),
                                     make_shape(3, m3, n3, r3), make_shape(3, m3, n3, r3t),
                                     make_shape(4, m4, n4, r4), make_shape(1, m1, n1, r1)};
    for (int b = 0; b < N_BACKENDS; b++) {
        fnet_ctx *ctx = fnet_test_ctx(backend_defaults[b]);
        for (size_t t = 0; t < sizeof(shapes) / sizeof(shapes[0]); t++) {
            const struct fnet_tt_shape *s = &shapes[t];
            fnet_assert_ok(ctx, fnet_tr_shape_check(ctx, s));
            float *cores = random_cores(s, 10 + t);
            float *W = full(ctx, s, cores);
            double *ref = naive_full(s, cores);
            double *Wd = test_malloc((size_t)mn(s) * sizeof(double));
            for (int64_t i = 0; i < mn(s); i++)
                Wd[i] = W[i];
            fnet_assert_allclose_d(Wd, ref, mn(s), FULL_RTOL, 1e-6);
            test_free(Wd);
            test_free(ref);
            test_free(W);
            test_free(cores);
        }
        fnet_ctx_free(ctx);
    }
}

// R = 1 is a TT: the same GEMMs in the same order as fnet_tt_full, so the same W to rounding
static void test_tr_full_of_ring_rank_one_equals_tt_full(void **state)
{
    (void)state;
    const int64_t m1[] = {3}, n1[] = {5}, r1[] = {1, 1};
    const int64_t m2[] = {3, 5}, n2[] = {4, 2}, r2[] = {1, 3, 1};
    const int64_t m3[] = {2, 3, 4}, n3[] = {3, 1, 2}, r3[] = {1, 2, 4, 1};
    const int64_t m4[] = {2, 3, 2, 2}, n4[] = {3, 2, 1, 4}, r4[] = {1, 3, 4, 2, 1};
    struct fnet_tt_shape shapes[] = {make_shape(1, m1, n1, r1), make_shape(2, m2, n2, r2),
                                     make_shape(3, m3, n3, r3), make_shape(4, m4, n4, r4)};
    for (int b = 0; b < N_BACKENDS; b++) {
        fnet_ctx *ctx = fnet_test_ctx(backend_defaults[b]);
        for (size_t t = 0; t < sizeof(shapes) / sizeof(shapes[0]); t++) {
            const struct fnet_tt_shape *s = &shapes[t];
            float *cores = random_cores(s, 20 + t);
            float *W = full(ctx, s, cores);
            float *V = test_malloc((size_t)mn(s) * sizeof(float));
            fnet_assert_ok(ctx, fnet_tt_full(ctx, s, cores, V));
            fnet_assert_allclose(W, V, mn(s), 1e-6, 1e-7);
            test_free(V);
            test_free(W);
            test_free(cores);
        }
        fnet_ctx_free(ctx);
    }
}

// ---- TR-SVD ----

struct ring_case {
    struct fnet_tt_shape s; // the exact ring's shape
    int64_t caps[FNET_TT_MAX_D + 1];
};

// Exact rings and the ranks TR-SVD needs for them (tr.h): r_1 and, for k >= 2,
// min(R, r_1)²·r_k, since the first SVD mixes the ring index into bond 1. For d = 2, and for
// r_1 = 1, those are the ring's own ranks.
static void test_tr_svd_recovers_an_exact_ring(void **state)
{
    (void)state;
    const int64_t ma[] = {4, 3}, na[] = {2, 4}, ra[] = {3, 2, 3};
    const int64_t mb[] = {2, 2, 4}, nb[] = {2, 2, 4}, rb[] = {2, 2, 2, 2};
    const int64_t mc[] = {4, 3, 4}, nc[] = {2, 4, 3}, rc[] = {4, 1, 3, 4};
    const int64_t md[] = {2, 2, 2, 4}, nd[] = {2, 2, 1, 2}, rd[] = {2, 2, 1, 1, 2};
    const int64_t me[] = {3, 2, 2, 4}, ne[] = {2, 2, 2, 3}, re[] = {3, 2, 1, 1, 3};
    struct ring_case cases[] = {
        {make_shape(2, ma, na, ra), {3, 2, 3}},
        {make_shape(3, mb, nb, rb), {2, 2, 8, 2}},
        {make_shape(3, mc, nc, rc), {4, 1, 3, 4}},
        {make_shape(4, md, nd, rd), {2, 2, 4, 4, 2}},
        {make_shape(4, me, ne, re), {3, 2, 4, 4, 3}},
    };
    for (int b = 0; b < N_BACKENDS; b++) {
        fnet_ctx *ctx = fnet_test_ctx(backend_defaults[b]);
        for (size_t t = 0; t < sizeof(cases) / sizeof(cases[0]); t++) {
            const struct fnet_tt_shape *s = &cases[t].s;
            const int d = s->d;
            const int64_t R = s->r[0], MN = mn(s);
            float *cores = random_cores(s, 50 + t);
            float *W = full(ctx, s, cores);
            double nw = fnet_test_fro(MN, W);
            // eps 0: exactly the caps, and W back to rounding
            struct fnet_tt_shape got = *s;
            memcpy(got.r, cases[t].caps, sizeof(got.r));
            fnet_assert_ok(ctx, fnet_tr_shape_check(ctx, &got));
            float *g = NULL;
            fnet_assert_ok(ctx, fnet_tr_svd(ctx, W, 0.0, &got, &g));
            for (int k = 0; k <= d; k++)
                assert_int_equal(got.r[k], cases[t].caps[k]);
            float *W2 = full(ctx, &got, g);
            assert_true(fro_diff(MN, W2, W) <= EXACT_RTOL * nw);
            fnet_free(g);
            test_free(W2);
            // eps 1e-5 under the largest caps: the ranks it finds are at most those, W back
            // within the eps bound (the first SVD is exact)
            got = *s;
            for (int k = 2; k < d; k++)
                got.r[k] = max_rank_at(s, k);
            fnet_assert_ok(ctx, fnet_tr_svd(ctx, W, 1e-5, &got, &g));
            int64_t mix = R < s->r[1] ? R : s->r[1];
            assert_int_equal(got.r[0], R);
            assert_int_equal(got.r[1], s->r[1]);
            assert_int_equal(got.r[d], R);
            for (int k = 2; k < d; k++)
                assert_true(got.r[k] >= 1 && got.r[k] <= mix * mix * s->r[k]);
            W2 = full(ctx, &got, g);
            assert_true(fro_diff(MN, W2, W) <= (1e-5 + FLOAT_SLACK) * nw);
            fnet_free(g);
            test_free(W2);
            test_free(W);
            test_free(cores);
        }
        fnet_ctx_free(ctx);
    }
}

// With r_1 > 1 and R > 1, the ring's own ranks are too few after bond 1 (tr.h): the remainder
// of a generic exact ring has rank min(R, r_1)²·r_2 = 8 at bond 2, and a cap of 2 or 4 loses
// much of W while 8 recovers it.
static void test_tr_svd_needs_more_than_the_rings_own_ranks_after_bond_1(void **state)
{
    (void)state;
    const int64_t m[] = {2, 2, 4}, n[] = {2, 2, 4}, r[] = {2, 2, 2, 2};
    struct fnet_tt_shape s = make_shape(3, m, n, r);
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    float *cores = random_cores(&s, 60);
    float *W = full(ctx, &s, cores);
    double nw = fnet_test_fro(mn(&s), W), err[3];
    const int64_t caps[] = {2, 4, 8};
    for (int c = 0; c < 3; c++) {
        struct fnet_tt_shape t = s;
        t.r[2] = caps[c];
        float *g = NULL;
        fnet_assert_ok(ctx, fnet_tr_svd(ctx, W, 0.0, &t, &g));
        float *W2 = full(ctx, &t, g);
        err[c] = fro_diff(mn(&s), W2, W) / nw;
        fnet_free(g);
        test_free(W2);
    }
    assert_true(err[0] > 0.05);
    assert_true(err[1] > 0.01 && err[1] < err[0]);
    assert_true(err[2] <= EXACT_RTOL);
    test_free(W);
    test_free(cores);
    fnet_ctx_free(ctx);
}

// W uniform noise (every spectrum flat); caps the largest TR-SVD can use (remainder_cap), which
// on these shapes are the remainder's whole rows, so that eps alone picks every later rank. The
// bound: TR-SVD's first cut discards tail_0 (the σ² of the unfolding (s_0, rest) beyond R·r_1)
// and leaves a remainder orthogonal to it; the later cuts act on that remainder through the
// orthonormal columns of the first U, which keep norms, so as in TT-SVD
// ‖W − TR‖² <= tail_0 + Σ_{k>=2} tail_k with each tail_k <= δ² = eps²·‖W‖²/(d−1) where eps chose
// the rank: ‖W − TR‖² <= tail_0 + (d−2)/(d−1)·eps²·‖W‖². No ring of first ranks (R, r_1) does
// better than sqrt(tail_0) (Eckart–Young on that unfolding).
static void test_tr_svd_ranks_shrink_as_eps_grows_within_the_error_bound(void **state)
{
    (void)state;
    // s = (8, 4, 16), (8, 2, 2, 32), (6, 4, 36): R·r_1 < s_0, and r_{k-1}·s_{k-1} <= the cap
    const int64_t ma[] = {4, 2, 4}, na[] = {2, 2, 4}, ra[] = {2, 2, 1, 2};
    const int64_t mb[] = {4, 2, 2, 8}, nb[] = {2, 1, 1, 4}, rb[] = {2, 2, 1, 1, 2};
    const int64_t mc[] = {3, 2, 6}, nc[] = {2, 2, 6}, rc[] = {3, 1, 1, 3};
    struct fnet_tt_shape shapes[] = {make_shape(3, ma, na, ra), make_shape(4, mb, nb, rb),
                                     make_shape(3, mc, nc, rc)};
    const double eps[] = {0.0, 0.1, 0.3, 0.5, 0.7, 0.9};
    const int n_eps = (int)(sizeof(eps) / sizeof(eps[0]));
    for (int b = 0; b < N_BACKENDS; b++) {
        fnet_ctx *ctx = fnet_test_ctx(backend_defaults[b]);
        for (size_t t = 0; t < sizeof(shapes) / sizeof(shapes[0]); t++) {
            struct fnet_tt_shape s = shapes[t];
            const int d = s.d;
            const int64_t MN = mn(&s), R = s.r[0];
            for (int k = 2; k < d; k++)
                s.r[k] = remainder_cap(&s, k);
            float *W = test_malloc((size_t)MN * sizeof(float));
            fnet_test_fill_uniform(W, MN, -1.0f, 1.0f, 70 + t);
            double nw = fnet_test_fro(MN, W);
            double tail0 = first_tail_sq(ctx, &s, W, R * s.r[1]);
            assert_true(tail0 > 0.1 * nw * nw); // noise: the first cut alone loses much
            int64_t prev_np = INT64_MAX, np_at_0 = 0, prev_r[FNET_TT_MAX_D + 1];
            memcpy(prev_r, s.r, sizeof(prev_r));
            for (int e = 0; e < n_eps; e++) {
                struct fnet_tt_shape got = s;
                float *g = NULL;
                fnet_assert_ok(ctx, fnet_tr_svd(ctx, W, eps[e], &got, &g));
                fnet_assert_ok(ctx, fnet_tr_shape_check(ctx, &got));
                assert_int_equal(got.r[0], R);
                assert_int_equal(got.r[1], s.r[1]);
                assert_int_equal(got.r[d], R);
                // eps chose a rank when it is below the cap or the remainder's whole rows
                // (nothing discarded)
                bool eps_alone = true;
                for (int k = 2; k < d; k++) {
                    if (e == 0)
                        assert_int_equal(got.r[k], s.r[k]); // eps 0: the caps
                    eps_alone = eps_alone && (got.r[k] < s.r[k] ||
                                              got.r[k] == got.r[k - 1] * mode_at(&s, k - 1));
                }
                assert_true(eps_alone);
                for (int k = 2; k < d; k++)
                    assert_true(got.r[k] <= prev_r[k]);
                memcpy(prev_r, got.r, sizeof(prev_r));
                int64_t np = fnet_tt_num_params(&got);
                assert_true(np <= prev_np);
                prev_np = np;
                if (e == 0)
                    np_at_0 = np;
                float *T = full(ctx, &got, g);
                double err = fro_diff(MN, T, W);
                assert_true(err >= sqrt(tail0) * (1.0 - FLOAT_SLACK));
                double bound = sqrt(tail0 + (double)(d - 2) / (d - 1) * eps[e] * eps[e] * nw * nw);
                assert_true(err <= bound + FLOAT_SLACK * nw);
                assert_true(err < nw);
                fnet_free(g);
                test_free(T);
            }
            assert_true(prev_np < np_at_0); // the largest eps compressed
            test_free(W);
        }
        fnet_ctx_free(ctx);
    }
}

// The CPU's LAPACK and the reference's Jacobi SVD. TR-SVD's result depends on the basis the
// first SVD picks for its R·r_1 kept vectors (a rotation there mixes the ring index with bond 1
// before the later cuts), so the two agree on W to rounding only where the later cuts discard
// nothing, as on an exact ring; on a ring plus noise they agree on the ranks, both meet the
// bound, and their errors are within 1% of each other.
static void test_tr_svd_cpu_matches_reference(void **state)
{
    (void)state;
    const int64_t m[] = {2, 4, 4}, n[] = {4, 2, 4}, r[] = {2, 2, 1, 2};
    struct fnet_tt_shape s = make_shape(3, m, n, r);
    fnet_ctx *ref, *cpu = fnet_test_ctx(FNET_BACKEND_CPU);
    fnet_assert_ok(NULL, fnet_ctx_create_reference(&ref)); // the oracle
    float *cores = random_cores(&s, 95);
    float *W = full(cpu, &s, cores);
    const int64_t MN = mn(&s);
    const double eps = 0.05;
    for (int noisy = 0; noisy < 2; noisy++) {
        if (noisy) // noise of relative size about 1e-2
            for (int64_t i = 0; i < MN; i++)
                W[i] += 1e-2f * (float)((i * 7919) % 13 - 6) / 6.0f;
        double nw = fnet_test_fro(MN, W);
        struct fnet_tt_shape ta = s, tb = s;
        ta.r[2] = tb.r[2] = 8; // the largest the check allows
        float *ga = NULL, *gb = NULL;
        fnet_assert_ok(ref, fnet_tr_svd(ref, W, eps, &ta, &ga));
        fnet_assert_ok(cpu, fnet_tr_svd(cpu, W, eps, &tb, &gb));
        for (int k = 0; k <= s.d; k++)
            assert_int_equal(ta.r[k], tb.r[k]);
        assert_int_equal(ta.r[2], 4); // min(R, r_1)²·r_2, below the cap: eps chose it
        float *Wa = full(ref, &ta, ga), *Wb = full(cpu, &tb, gb);
        double ea = fro_diff(MN, Wa, W), eb = fro_diff(MN, Wb, W);
        if (!noisy) {
            assert_true(fro_diff(MN, Wa, Wb) <= EXACT_RTOL * nw);
            assert_true(ea <= EXACT_RTOL * nw && eb <= EXACT_RTOL * nw);
        } else {
            double tail0 = first_tail_sq(cpu, &s, W, s.r[0] * s.r[1]);
            double bound = sqrt(tail0 + 0.5 * eps * eps * nw * nw) + FLOAT_SLACK * nw;
            assert_true(ea <= bound && eb <= bound);
            assert_true(ea > 1e-3 * nw); // the noise is not representable
            assert_true(fabs(ea - eb) <= 0.01 * ea);
        }
        test_free(Wb);
        test_free(Wa);
        fnet_free(gb);
        fnet_free(ga);
    }
    test_free(W);
    test_free(cores);
    fnet_ctx_free(cpu);
    fnet_ctx_free(ref);
}

static void test_tr_svd_with_one_core_copies_w(void **state)
{
    (void)state;
    const int64_t m[] = {3}, n[] = {4}, r[] = {1, 1};
    struct fnet_tt_shape s = make_shape(1, m, n, r), t = s;
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    float W[12];
    fnet_test_fill_uniform(W, 12, -1.0f, 1.0f, 3);
    float *g = NULL;
    fnet_assert_ok(ctx, fnet_tr_svd(ctx, W, 0.1, &t, &g));
    assert_memory_equal(&t, &s, sizeof(s));
    assert_memory_equal(g, W, sizeof(W));
    float V[12];
    fnet_assert_ok(ctx, fnet_tr_full(ctx, &t, g, V));
    assert_memory_equal(V, W, sizeof(W));
    fnet_free(g);
    fnet_ctx_free(ctx);
}

// ---- bad shapes and arguments ----

static void expect_refused(fnet_ctx *ctx, const struct fnet_tt_shape *s, const char *msg)
{
    assert_int_equal(fnet_tr_shape_check(ctx, s), FNET_ERR_INVALID_ARG);
    const char *got = fnet_ctx_last_error(ctx);
    if (strstr(got, msg) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", got, msg);
}

static void test_tr_shape_check_rejects_bad_shapes_with_messages(void **state)
{
    (void)state;
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_REFERENCE);
    // s = (8, 8, 4): bond 1 bounds R·r_1 by min(8, 32), bond 2 R·r_2 by min(64, 4)
    const int64_t m[] = {2, 4, 2}, n[] = {4, 2, 2}, r[] = {2, 4, 2, 2};
    struct fnet_tt_shape good = make_shape(3, m, n, r), s;
    fnet_assert_ok(ctx, fnet_tr_shape_check(ctx, &good));
    s = good;
    s.r[1] = 5;
    expect_refused(ctx, &s, "r0*r1 = 2*5 exceeds min(m0*n0, ...) = 8 at bond 1 (m0*n0 = 8, "
                            "m1*n1*m2*n2 = 32)");
    expect_refused(ctx, &s, "tr_algebra.c:");
    s = good;
    s.r[2] = 3;
    expect_refused(ctx, &s, "r0*r2 = 2*3 exceeds min(m0*n0*m1*n1, ...) = 4 at bond 2");
    // the same ranks pass as a TT's would not: the ring rank multiplies the bound
    s = good;
    s.r[0] = s.r[3] = 1;
    s.r[1] = 8;
    s.r[2] = 4;
    fnet_assert_ok(ctx, fnet_tr_shape_check(ctx, &s));
    s.r[0] = s.r[3] = 2;
    expect_refused(ctx, &s, "r0*r1 = 2*8 exceeds");
    s = good;
    s.r[3] = 3;
    expect_refused(ctx, &s, "boundary ranks r0 = 2, r3 = 3 must be equal and >= 1");
    s = good;
    s.r[0] = s.r[3] = 0;
    expect_refused(ctx, &s, "boundary ranks r0 = 0, r3 = 0 must be equal and >= 1");
    s = good;
    s.r[2] = 0;
    expect_refused(ctx, &s, "rank 0 at bond 2 must be >= 1");
    s = good;
    s.n[1] = 0;
    expect_refused(ctx, &s, "n1 = 0: each must be >= 1");
    s = good;
    s.m[2] = 0;
    expect_refused(ctx, &s, "modes of core 2 are m2 = 0, n2 = 2: each must be >= 1");
    s = good;
    s.d = 9;
    expect_refused(ctx, &s, "d = 9 out of range 1..8");
    s = good;
    s.d = 0;
    expect_refused(ctx, &s, "d = 0 out of range 1..8");
    // one core: only R = 1 (a TT, W itself)
    const int64_t m1[] = {4}, n1[] = {4}, rr1[] = {2, 2}, r11[] = {1, 1};
    s = make_shape(1, m1, n1, rr1);
    expect_refused(ctx, &s, "ring rank r0 = 2 > 1 needs d >= 2 (d = 1)");
    s = make_shape(1, m1, n1, r11);
    fnet_assert_ok(ctx, fnet_tr_shape_check(ctx, &s));
    assert_int_equal(fnet_tr_shape_check(ctx, NULL), FNET_ERR_INVALID_ARG);
    // sizes that overflow
    const int64_t big[] = {(int64_t)1 << 40, (int64_t)1 << 40};
    s = make_shape(2, big, n, (const int64_t[]){1, 1, 1});
    expect_refused(ctx, &s, "overflow");
    fnet_ctx_free(ctx);
}

static void test_tr_svd_and_full_reject_bad_arguments(void **state)
{
    (void)state;
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    const int64_t m[] = {2, 2}, n[] = {2, 2}, r[] = {2, 1, 2};
    struct fnet_tt_shape s = make_shape(2, m, n, r), t;
    float W[16], cores[16], out[16];
    fnet_test_fill_uniform(W, 16, -1.0f, 1.0f, 5);
    fnet_test_fill_uniform(cores, 16, -1.0f, 1.0f, 6);
    float *g = W; // must come back NULL
    struct {
        double eps;
        const char *msg;
    } bad[] = {
        {-0.1, "eps = -0.1 must be finite and >= 0"},
        {NAN, "eps = nan must be finite and >= 0"},
        {INFINITY, "eps = inf must be finite and >= 0"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        t = s;
        assert_int_equal(fnet_tr_svd(ctx, W, bad[i].eps, &t, &g), FNET_ERR_INVALID_ARG);
        assert_null(g);
        assert_memory_equal(&t, &s, sizeof(s)); // the shape is left alone
        assert_non_null(strstr(fnet_ctx_last_error(ctx), bad[i].msg));
        g = W;
    }
    // NULL pointers
    assert_int_equal(fnet_tr_svd(ctx, NULL, 0.1, &t, &g), FNET_ERR_INVALID_ARG);
    assert_null(g);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "tr_svd: NULL argument"));
    assert_int_equal(fnet_tr_svd(ctx, W, 0.1, NULL, &g), FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_tr_svd(ctx, W, 0.1, &t, NULL), FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_tr_svd(NULL, W, 0.1, &t, &g), FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_tr_full(ctx, &s, cores, NULL), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "tr_full: NULL argument"));
    assert_int_equal(fnet_tr_full(ctx, &s, NULL, out), FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_tr_full(NULL, &s, cores, out), FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_tr_full(ctx, NULL, cores, out), FNET_ERR_INVALID_ARG);
    // a shape the check refuses, in both
    t = s;
    t.r[1] = 3;
    g = W;
    assert_int_equal(fnet_tr_svd(ctx, W, 0.1, &t, &g), FNET_ERR_INVALID_ARG);
    assert_null(g);
    assert_int_equal(t.r[1], 3);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "r0*r1 = 2*3 exceeds min(m0*n0, ...) = 4"));
    assert_int_equal(fnet_tr_full(ctx, &t, cores, out), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "r0*r1 = 2*3 exceeds"));
    // a non-finite W, named by its entry
    W[6] = NAN;
    t = s;
    assert_int_equal(fnet_tr_svd(ctx, W, 0.1, &t, &g), FNET_ERR_INVALID_ARG);
    assert_null(g);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "W has a non-finite entry at (1, 2)"));
    W[6] = 0.5f;
    W[15] = -INFINITY;
    assert_int_equal(fnet_tr_svd(ctx, W, 0.0, &t, &g), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "W has a non-finite entry at (3, 3)"));
    assert_memory_equal(&t, &s, sizeof(s));
    fnet_ctx_free(ctx);
}

// ---- out of memory ----

// Fail the k-th allocation for k = 1, 2, .. until the call succeeds: each failure is
// FNET_ERR_OUT_OF_MEMORY with no output and no leak (ASan), then the result is right.
static void test_tr_algebra_reports_out_of_memory_at_every_allocation(void **state)
{
    (void)state;
    const int64_t m[] = {2, 3, 2}, n[] = {3, 2, 4}, r[] = {2, 2, 4, 2};
    const int64_t m1[] = {3}, n1[] = {2}, r1[] = {1, 1};
    struct fnet_tt_shape shapes[] = {make_shape(3, m, n, r), make_shape(1, m1, n1, r1)};
    for (int b = 0; b < N_BACKENDS; b++) {
        fnet_ctx *ctx = fnet_test_ctx(backend_defaults[b]);
        for (size_t sh = 0; sh < 2; sh++) {
            const struct fnet_tt_shape *s = &shapes[sh];
            int64_t MN = mn(s);
            float *c = random_cores(s, 180 + sh);
            float *A = full(ctx, s, c);
            double na = fnet_test_fro(MN, A);
            for (int op = 0; op < 2; op++) {
                float *W = test_malloc((size_t)MN * sizeof(float));
                float *g = NULL;
                struct fnet_tt_shape t = *s;
                fnet_status st;
                long k = 1;
                for (;; k++) {
                    t = *s;
                    fnet_debug_fail_alloc(k);
                    st = op == 0 ? fnet_tr_svd(ctx, A, 0.0, &t, &g) : fnet_tr_full(ctx, s, c, W);
                    fnet_debug_fail_alloc(0);
                    if (st == FNET_OK)
                        break;
                    assert_int_equal(st, FNET_ERR_OUT_OF_MEMORY);
                    assert_null(g);
                    assert_memory_equal(&t, s, sizeof(t));
                    assert_true(k < 500);
                }
                // one core: fnet_tr_full copies and allocates nothing; else at least one
                // failure was injected and reported
                if (op == 1 && s->d == 1)
                    assert_int_equal(k, 1);
                else
                    assert_true(k > 1);
                if (op == 0) {
                    // the ring's own ranks: exact for r_1 = 2, R = 2 only up to rank 8 at
                    // bond 2, so the check is against W, not exactness
                    fnet_assert_ok(ctx, fnet_tr_full(ctx, &t, g, W));
                    assert_true(fro_diff(MN, W, A) < na);
                    if (s->d == 1)
                        assert_true(fro_diff(MN, W, A) == 0.0);
                    fnet_free(g);
                } else {
                    assert_true(fro_diff(MN, W, A) == 0.0);
                }
                test_free(W);
            }
            test_free(A);
            test_free(c);
        }
        fnet_ctx_free(ctx);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tr_full_matches_trace_of_core_slices),
        cmocka_unit_test(test_tr_full_of_ring_rank_one_equals_tt_full),
        cmocka_unit_test(test_tr_svd_recovers_an_exact_ring),
        cmocka_unit_test(test_tr_svd_needs_more_than_the_rings_own_ranks_after_bond_1),
        cmocka_unit_test(test_tr_svd_ranks_shrink_as_eps_grows_within_the_error_bound),
        cmocka_unit_test(test_tr_svd_cpu_matches_reference),
        cmocka_unit_test(test_tr_svd_with_one_core_copies_w),
        cmocka_unit_test(test_tr_shape_check_rejects_bad_shapes_with_messages),
        cmocka_unit_test(test_tr_svd_and_full_reject_bad_arguments),
        cmocka_unit_test(test_tr_algebra_reports_out_of_memory_at_every_allocation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
