/* TT algebra (src/tn/tt_algebra.c) on the reference and CPU backends: the dense matrix of a TT
 * against a naive product of core slices, norm and inner product against dense sums, TT-SVD
 * recovering exact TT-ranks and meeting its error bound, TT-rounding's bound and ranks, shape and
 * argument checks with their messages, and out-of-memory injection. The algebra works on host
 * memory with the backend's host linear algebra (ctx->be->host_la), so every pointer here is a
 * host pointer, on every backend. */
#include "test_util.h"
#include "linalg_check.h"
#include "core/backend.h"
#include "tn/tt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

// exact TT-rank recovery: ‖W − TT‖_F / ‖W‖_F after TT-SVD of a float W of exact TT-rank r
#define EXACT_RTOL 1e-5
// ‖A − T‖_F <= (eps + FLOAT_SLACK)·‖A‖_F: the bound is exact in exact arithmetic; the float
// SVDs and the float result add errors of a few 1e-7·‖A‖_F
#define FLOAT_SLACK 1e-5
// fnet_tt_full against the naive double product of slices
#define FULL_RTOL 1e-5

// The tests that loop over backends run on the ctx fnet_test_ctx gives for each of these
// defaults: the reference's host linear algebra and the CPU's, or, when FNET_TEST_BACKEND is set,
// the backend it names twice.
static const fnet_backend_kind backend_defaults[] = {FNET_BACKEND_REFERENCE, FNET_BACKEND_CPU};
#define N_BACKENDS 2

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
        s.r[k] = r ? r[k] : 1;
    return s;
}

// cores of s, uniform in [-1, 1) (test_malloc: the caller frees)
static float *random_cores(const struct fnet_tt_shape *s, uint64_t seed)
{
    int64_t np = fnet_tt_num_params(s);
    float *c = test_malloc((size_t)np * sizeof(float));
    fnet_test_fill_uniform(c, np, -1.0f, 1.0f, seed);
    return c;
}

// W[(i..), (j..)] = G_0[:, i_0, j_0, :] ··· G_{d-1}[:, i_{d-1}, j_{d-1}, :], one entry at a time,
// in double: the obviously correct definition
static double *naive_full(const struct fnet_tt_shape *s, const float *cores)
{
    int64_t M = fnet_tt_rows(s), N = fnet_tt_cols(s);
    double *W = test_malloc((size_t)(M * N) * sizeof(double));
    double v[64], w[64];
    for (int64_t row = 0; row < M; row++)
        for (int64_t col = 0; col < N; col++) {
            int64_t i[FNET_TT_MAX_D], j[FNET_TT_MAX_D], a = row, b = col;
            for (int k = s->d - 1; k >= 0; k--) {
                i[k] = a % s->m[k];
                a /= s->m[k];
                j[k] = b % s->n[k];
                b /= s->n[k];
            }
            v[0] = 1.0;
            for (int k = 0; k < s->d; k++) {
                const float *G = cores + fnet_tt_core_offset(s, k);
                int64_t r0 = s->r[k], r1 = s->r[k + 1];
                assert_true(r0 <= 64 && r1 <= 64);
                for (int64_t c = 0; c < r1; c++) {
                    w[c] = 0.0;
                    for (int64_t l = 0; l < r0; l++)
                        w[c] += v[l] * (double)G[((l * s->m[k] + i[k]) * s->n[k] + j[k]) * r1 + c];
                }
                memcpy(v, w, (size_t)r1 * sizeof(double));
            }
            W[row * N + col] = v[0];
        }
    return W;
}

static float *full(fnet_ctx *ctx, const struct fnet_tt_shape *s, const float *cores)
{
    float *W = test_malloc((size_t)(fnet_tt_rows(s) * fnet_tt_cols(s)) * sizeof(float));
    fnet_assert_ok(ctx, fnet_tt_full(ctx, s, cores, W));
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

// ---- fnet_tt_full ----

static void test_tt_full_matches_product_of_core_slices(void **state)
{
    const int64_t m2[] = {3, 5}, n2[] = {4, 2}, r2[] = {1, 3, 1};
    const int64_t m3[] = {2, 3, 4}, n3[] = {3, 1, 2}, r3[] = {1, 2, 4, 1};
    const int64_t m4[] = {2, 3, 2, 2}, n4[] = {3, 2, 1, 4}, r4[] = {1, 3, 4, 2, 1};
    const int64_t m1[] = {3}, n1[] = {5};
    struct fnet_tt_shape shapes[] = {make_shape(2, m2, n2, r2), make_shape(3, m3, n3, r3),
                                     make_shape(4, m4, n4, r4), make_shape(1, m1, n1, NULL)};
    for (int b = 0; b < N_BACKENDS; b++) {
        fnet_ctx *ctx = fnet_test_ctx(backend_defaults[b]);
        for (size_t t = 0; t < sizeof(shapes) / sizeof(shapes[0]); t++) {
            const struct fnet_tt_shape *s = &shapes[t];
            fnet_assert_ok(ctx, fnet_tt_shape_check(ctx, s));
            float *cores = random_cores(s, 10 + t);
            float *W = full(ctx, s, cores);
            double *ref = naive_full(s, cores);
            int64_t MN = fnet_tt_rows(s) * fnet_tt_cols(s);
            double *Wd = test_malloc((size_t)MN * sizeof(double));
            for (int64_t i = 0; i < MN; i++)
                Wd[i] = W[i];
            fnet_assert_allclose_d(Wd, ref, MN, FULL_RTOL, 1e-6);
            test_free(Wd);
            test_free(ref);
            test_free(W);
            test_free(cores);
        }
        fnet_ctx_free(ctx);
    }
}

// ---- norm and inner product ----

static void test_tt_norm_and_inner_match_dense_sums(void **state)
{
    const int64_t m[] = {2, 3, 2, 3}, n[] = {3, 2, 2, 2}, ra[] = {1, 4, 5, 3, 1},
                  rb[] = {1, 2, 7, 2, 1};
    struct fnet_tt_shape a = make_shape(4, m, n, ra), b = make_shape(4, m, n, rb);
    for (int be = 0; be < N_BACKENDS; be++) {
        fnet_ctx *ctx = fnet_test_ctx(backend_defaults[be]);
        float *ca = random_cores(&a, 31), *cb = random_cores(&b, 32);
        double *Wa = naive_full(&a, ca), *Wb = naive_full(&b, cb);
        int64_t MN = fnet_tt_rows(&a) * fnet_tt_cols(&a);
        double dot = 0.0, na = 0.0, nb = 0.0;
        for (int64_t i = 0; i < MN; i++) {
            dot += Wa[i] * Wb[i];
            na += Wa[i] * Wa[i];
            nb += Wb[i] * Wb[i];
        }
        na = sqrt(na);
        nb = sqrt(nb);
        double got = 0.0;
        fnet_assert_ok(ctx, fnet_tt_inner(ctx, &a, ca, &b, cb, &got));
        fnet_assert_close(got, dot, 0.0, 1e-10 * na * nb);
        fnet_assert_ok(ctx, fnet_tt_inner(ctx, &b, cb, &a, ca, &got));
        fnet_assert_close(got, dot, 0.0, 1e-10 * na * nb);
        fnet_assert_ok(ctx, fnet_tt_norm(ctx, &a, ca, &got));
        fnet_assert_close(got, na, 1e-10, 0.0);
        fnet_assert_ok(ctx, fnet_tt_norm(ctx, &b, cb, &got));
        fnet_assert_close(got, nb, 1e-10, 0.0);
        // modes that differ are a shape error
        struct fnet_tt_shape c = a;
        c.m[1] = 2;
        c.n[1] = 3;
        float *cc = random_cores(&c, 33);
        assert_int_equal(fnet_tt_inner(ctx, &a, ca, &c, cc, &got), FNET_ERR_SHAPE);
        assert_non_null(strstr(fnet_ctx_last_error(ctx), "modes of core 1 differ: (3, 2) vs (2, 3)"));
        test_free(cc);
        test_free(Wb);
        test_free(Wa);
        test_free(cb);
        test_free(ca);
        fnet_ctx_free(ctx);
    }
}

// ---- TT-SVD ----

static void test_tt_svd_recovers_exact_tt_rank(void **state)
{
    const int64_t m3[] = {4, 4, 4}, n3[] = {4, 4, 4}, r3[] = {1, 3, 5, 1};
    const int64_t m4[] = {4, 2, 2, 4}, n4[] = {2, 4, 4, 2}, r4[] = {1, 2, 6, 3, 1};
    const int64_t m2[] = {8, 8}, n2[] = {8, 8}, r2[] = {1, 4, 1};
    struct fnet_tt_shape shapes[] = {make_shape(3, m3, n3, r3), make_shape(4, m4, n4, r4),
                                     make_shape(2, m2, n2, r2)};
    for (int b = 0; b < N_BACKENDS; b++) {
        fnet_ctx *ctx = fnet_test_ctx(backend_defaults[b]);
        for (size_t t = 0; t < sizeof(shapes) / sizeof(shapes[0]); t++) {
            const struct fnet_tt_shape *s = &shapes[t];
            float *cores = random_cores(s, 50 + t);
            float *W = full(ctx, s, cores);
            struct fnet_tt_shape got = *s;
            memset(got.r, 0, sizeof(got.r)); // ranks are an output
            float *g = NULL;
            fnet_assert_ok(ctx, fnet_tt_svd(ctx, W, 1e-5, 0, &got, &g));
            for (int k = 0; k <= s->d; k++)
                assert_int_equal(got.r[k], s->r[k]);
            float *W2 = full(ctx, &got, g);
            int64_t MN = fnet_tt_rows(s) * fnet_tt_cols(s);
            assert_true(fro_diff(MN, W2, W) <= EXACT_RTOL * fnet_test_fro(MN, W));
            fnet_free(g);
            test_free(W2);
            test_free(W);
            test_free(cores);
        }
        fnet_ctx_free(ctx);
    }
}

// W (M, N): uniform noise, or a rank-4 TT plus noise of relative size 1e-2 (a decaying spectrum)
static float *test_matrix(fnet_ctx *ctx, const struct fnet_tt_shape *s, bool low_rank, uint64_t seed)
{
    int64_t MN = fnet_tt_rows(s) * fnet_tt_cols(s);
    float *W = test_malloc((size_t)MN * sizeof(float));
    fnet_test_fill_uniform(W, MN, -1.0f, 1.0f, seed);
    if (low_rank) {
        struct fnet_tt_shape l = *s;
        for (int k = 1; k < s->d; k++)
            l.r[k] = 4;
        float *c = random_cores(&l, seed + 1);
        float *L = full(ctx, &l, c);
        double scale = 1e-2 * fnet_test_fro(MN, L) / fnet_test_fro(MN, W);
        for (int64_t i = 0; i < MN; i++)
            W[i] = L[i] + (float)scale * W[i];
        test_free(L);
        test_free(c);
    }
    return W;
}

static void test_tt_svd_meets_error_bound_for_each_eps(void **state)
{
    // 256 × 256 on the CPU's LAPACK; 64 × 64 on the reference's host linear algebra (its Jacobi
    // SVD is O(n³) per sweep), which the guarded backend uses too
    const int64_t m4[] = {4, 4, 4, 4}, m3[] = {4, 4, 4};
    const double eps[] = {0.05, 0.2, 0.5};
    for (int b = 0; b < N_BACKENDS; b++) {
        fnet_ctx *ctx = fnet_test_ctx(backend_defaults[b]);
        bool jacobi = strcmp(ctx->be->host_la->name, "reference") == 0;
        struct fnet_tt_shape s = jacobi ? make_shape(3, m3, m3, NULL) : make_shape(4, m4, m4, NULL);
        int64_t MN = fnet_tt_rows(&s) * fnet_tt_cols(&s);
        for (int lr = 0; lr < 2; lr++) {
            float *W = test_matrix(ctx, &s, lr == 1, 70 + (uint64_t)lr);
            double nw = fnet_test_fro(MN, W);
            for (size_t e = 0; e < sizeof(eps) / sizeof(eps[0]); e++) {
                struct fnet_tt_shape t = s;
                float *g = NULL;
                fnet_assert_ok(ctx, fnet_tt_svd(ctx, W, eps[e], 0, &t, &g));
                fnet_assert_ok(ctx, fnet_tt_shape_check(ctx, &t));
                float *T = full(ctx, &t, g);
                double err = fro_diff(MN, T, W);
                assert_true(err <= (eps[e] + FLOAT_SLACK) * nw);
                // on the low-rank matrix it finds rank 4 under the noise; on noise, eps = 0.5
                // still compresses (some rank below its bond bound)
                if (lr == 1)
                    for (int k = 1; k < s.d; k++)
                        assert_true(t.r[k] <= 4);
                if (lr == 0 && eps[e] == 0.5) {
                    int64_t below = 0;
                    for (int k = 1; k < s.d; k++) {
                        struct fnet_tt_shape u = t;
                        u.r[k]++;
                        below += fnet_tt_shape_check(ctx, &u) == FNET_OK;
                    }
                    assert_true(below > 0);
                }
                fnet_free(g);
                test_free(T);
            }
            test_free(W);
        }
        fnet_ctx_free(ctx);
    }
}

static void test_tt_svd_caps_ranks_with_max_rank(void **state)
{
    const int64_t m[] = {4, 4, 4};
    struct fnet_tt_shape s = make_shape(3, m, m, NULL);
    for (int b = 0; b < N_BACKENDS; b++) {
        fnet_ctx *ctx = fnet_test_ctx(backend_defaults[b]);
        float *W = test_matrix(ctx, &s, false, 90);
        int64_t MN = fnet_tt_rows(&s) * fnet_tt_cols(&s);
        struct fnet_tt_shape t = s;
        float *g = NULL;
        // eps 0 with a cap: the rank bound alone; eps with a cap: whichever is smaller
        fnet_assert_ok(ctx, fnet_tt_svd(ctx, W, 0.0, 3, &t, &g));
        assert_int_equal(t.r[1], 3);
        assert_int_equal(t.r[2], 3);
        float *T = full(ctx, &t, g);
        double err3 = fro_diff(MN, T, W);
        assert_true(err3 < fnet_test_fro(MN, W));
        fnet_free(g);
        test_free(T);
        fnet_assert_ok(ctx, fnet_tt_svd(ctx, W, 0.5, 7, &t, &g));
        assert_true(t.r[1] <= 7 && t.r[2] <= 7);
        T = full(ctx, &t, g);
        assert_true(fro_diff(MN, T, W) < err3); // more rank, less error
        fnet_free(g);
        test_free(T);
        test_free(W);
        fnet_ctx_free(ctx);
    }
}

static void test_tt_svd_cpu_matches_reference(void **state)
{
    const int64_t m[] = {2, 4, 4}, n[] = {4, 2, 4};
    struct fnet_tt_shape s = make_shape(3, m, n, NULL);
    fnet_ctx *ref, *cpu = fnet_test_ctx(FNET_BACKEND_CPU);
    fnet_assert_ok(NULL, fnet_ctx_create_reference(&ref)); // the oracle
    float *W = test_matrix(cpu, &s, true, 95);
    int64_t MN = fnet_tt_rows(&s) * fnet_tt_cols(&s);
    struct fnet_tt_shape ta = s, tb = s;
    float *ga = NULL, *gb = NULL;
    fnet_assert_ok(ref, fnet_tt_svd(ref, W, 0.1, 0, &ta, &ga));
    fnet_assert_ok(cpu, fnet_tt_svd(cpu, W, 0.1, 0, &tb, &gb));
    for (int k = 0; k <= s.d; k++)
        assert_int_equal(ta.r[k], tb.r[k]);
    float *Wa = full(ref, &ta, ga), *Wb = full(cpu, &tb, gb);
    // the same approximation up to float rounding (cores differ by signs, not the product)
    assert_true(fro_diff(MN, Wa, Wb) <= 1e-5 * fnet_test_fro(MN, W));
    test_free(Wb);
    test_free(Wa);
    fnet_free(gb);
    fnet_free(ga);
    test_free(W);
    fnet_ctx_free(cpu);
    fnet_ctx_free(ref);
}

static void test_tt_svd_and_round_with_one_core_copy(void **state)
{
    const int64_t m[] = {3}, n[] = {4};
    struct fnet_tt_shape s = make_shape(1, m, n, NULL);
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    float W[12];
    fnet_test_fill_uniform(W, 12, -1.0f, 1.0f, 3);
    float *g = NULL, *h = NULL;
    struct fnet_tt_shape t = s, u;
    fnet_assert_ok(ctx, fnet_tt_svd(ctx, W, 0.1, 0, &t, &g));
    assert_int_equal(t.r[0], 1);
    assert_int_equal(t.r[1], 1);
    assert_memory_equal(g, W, sizeof(W));
    fnet_assert_ok(ctx, fnet_tt_round(ctx, &t, g, 0.1, 0, &u, &h));
    assert_memory_equal(h, W, sizeof(W));
    fnet_free(h);
    fnet_free(g);
    fnet_ctx_free(ctx);
}

// ---- TT-rounding ----

static void test_tt_round_meets_error_bound_and_never_increases_a_rank(void **state)
{
    const int64_t m1[] = {2, 3, 2, 2}, n1[] = {3, 2, 2, 3}, r1[] = {1, 6, 12, 6, 1};
    // rank 4 at bond 2 exceeds r1·m1·n1 = 2 (redundant though within the bond bound 4)
    const int64_t m2[] = {1, 2, 2, 2}, n2[] = {2, 1, 4, 1}, r2[] = {1, 1, 4, 2, 1};
    const int64_t m3[] = {4, 4, 4}, n3[] = {4, 4, 4}, r3[] = {1, 16, 16, 1};
    struct fnet_tt_shape shapes[] = {make_shape(4, m1, n1, r1), make_shape(4, m2, n2, r2),
                                     make_shape(3, m3, n3, r3)};
    const double eps[] = {1e-6, 0.05, 0.2, 0.5};
    for (int b = 0; b < N_BACKENDS; b++) {
        fnet_ctx *ctx = fnet_test_ctx(backend_defaults[b]);
        for (size_t t = 0; t < sizeof(shapes) / sizeof(shapes[0]); t++) {
            const struct fnet_tt_shape *s = &shapes[t];
            fnet_assert_ok(ctx, fnet_tt_shape_check(ctx, s));
            float *cores = random_cores(s, 120 + t);
            float *A = full(ctx, s, cores);
            int64_t MN = fnet_tt_rows(s) * fnet_tt_cols(s);
            double na = fnet_test_fro(MN, A);
            for (size_t e = 0; e < sizeof(eps) / sizeof(eps[0]); e++) {
                struct fnet_tt_shape o;
                float *g = NULL;
                fnet_assert_ok(ctx, fnet_tt_round(ctx, s, cores, eps[e], 0, &o, &g));
                fnet_assert_ok(ctx, fnet_tt_shape_check(ctx, &o));
                for (int k = 0; k <= s->d; k++)
                    assert_true(o.r[k] <= s->r[k]);
                if (t == 1)
                    assert_true(o.r[2] <= 2); // the redundant rank goes
                float *T = full(ctx, &o, g);
                assert_true(fro_diff(MN, T, A) <= (eps[e] + FLOAT_SLACK) * na);
                fnet_free(g);
                test_free(T);
            }
            test_free(A);
            test_free(cores);
        }
        fnet_ctx_free(ctx);
    }
}

// T + T by core concatenation (ranks doubled, block-diagonal middle cores) rounds back to the
// ranks of T and the matrix 2·T
static void test_tt_round_recovers_ranks_of_a_sum(void **state)
{
    const int64_t m[] = {2, 3, 4}, n[] = {3, 2, 2}, r[] = {1, 3, 4, 1};
    struct fnet_tt_shape s = make_shape(3, m, n, r), s2 = s;
    for (int k = 1; k < s.d; k++)
        s2.r[k] = 2 * s.r[k];
    for (int b = 0; b < N_BACKENDS; b++) {
        fnet_ctx *ctx = fnet_test_ctx(backend_defaults[b]);
        float *c = random_cores(&s, 140);
        float *c2 = test_calloc((size_t)fnet_tt_num_params(&s2), sizeof(float));
        for (int k = 0; k < s.d; k++) {
            int64_t r0 = s.r[k], r1 = s.r[k + 1], q1 = s2.r[k + 1];
            int64_t mk = s.m[k] * s.n[k];
            const float *G = c + fnet_tt_core_offset(&s, k);
            float *H = c2 + fnet_tt_core_offset(&s2, k);
            // the first core is [G G], the last [G; G], the middle ones diag(G, G)
            for (int copy = 0; copy < 2; copy++) {
                int64_t o0 = k == 0 ? 0 : copy * r0, o1 = k == s.d - 1 ? 0 : copy * r1;
                for (int64_t a = 0; a < r0; a++)
                    for (int64_t p = 0; p < mk; p++)
                        for (int64_t z = 0; z < r1; z++)
                            H[((o0 + a) * mk + p) * q1 + o1 + z] = G[(a * mk + p) * r1 + z];
            }
        }
        float *A = full(ctx, &s, c), *A2 = full(ctx, &s2, c2);
        int64_t MN = fnet_tt_rows(&s) * fnet_tt_cols(&s);
        for (int64_t i = 0; i < MN; i++)
            A[i] *= 2.0f;
        assert_true(fro_diff(MN, A2, A) <= 1e-6 * fnet_test_fro(MN, A));
        struct fnet_tt_shape o;
        float *g = NULL;
        fnet_assert_ok(ctx, fnet_tt_round(ctx, &s2, c2, 1e-5, 0, &o, &g));
        for (int k = 0; k <= s.d; k++)
            assert_int_equal(o.r[k], s.r[k]);
        float *T = full(ctx, &o, g);
        assert_true(fro_diff(MN, T, A) <= 1e-5 * fnet_test_fro(MN, A));
        test_free(T);
        fnet_free(g);
        test_free(A2);
        test_free(A);
        test_free(c2);
        test_free(c);
        fnet_ctx_free(ctx);
    }
}

static void test_tt_round_caps_ranks_with_max_rank(void **state)
{
    const int64_t m[] = {2, 3, 2, 2}, n[] = {3, 2, 2, 3}, r[] = {1, 6, 12, 6, 1};
    struct fnet_tt_shape s = make_shape(4, m, n, r);
    for (int b = 0; b < N_BACKENDS; b++) {
        fnet_ctx *ctx = fnet_test_ctx(backend_defaults[b]);
        float *c = random_cores(&s, 160);
        float *A = full(ctx, &s, c);
        int64_t MN = fnet_tt_rows(&s) * fnet_tt_cols(&s);
        struct fnet_tt_shape o;
        float *g = NULL;
        fnet_assert_ok(ctx, fnet_tt_round(ctx, &s, c, 0.0, 3, &o, &g));
        assert_int_equal(o.r[1], 3);
        assert_int_equal(o.r[2], 3);
        assert_int_equal(o.r[3], 3);
        float *T = full(ctx, &o, g);
        double err = fro_diff(MN, T, A);
        assert_true(err > 0.0 && err < fnet_test_fro(MN, A));
        fnet_free(g);
        test_free(T);
        // eps and a cap: the cap wins where eps would keep more
        fnet_assert_ok(ctx, fnet_tt_round(ctx, &s, c, 1e-6, 5, &o, &g));
        for (int k = 1; k < s.d; k++)
            assert_int_equal(o.r[k], 5);
        fnet_free(g);
        test_free(A);
        test_free(c);
        fnet_ctx_free(ctx);
    }
}

// ---- bad shapes and arguments ----

static void test_tt_shape_check_rejects_bad_shapes_with_messages(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_REFERENCE);
    const int64_t m[] = {2, 4, 2}, n[] = {4, 2, 2}, r[] = {1, 8, 4, 1};
    struct fnet_tt_shape good = make_shape(3, m, n, r), s;
    fnet_assert_ok(ctx, fnet_tt_shape_check(ctx, &good));
    s = good;
    s.r[1] = 9;
    assert_int_equal(fnet_tt_shape_check(ctx, &s), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "rank 9 exceeds min(m0*n0, ...) = 8 at bond 1"));
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "m1*n1*m2*n2 = 32)"));
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "tt_algebra.c:"));
    s = good;
    s.r[2] = 5;
    assert_int_equal(fnet_tt_shape_check(ctx, &s), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "rank 5 exceeds min(m0*n0*m1*n1, ...) = 4 at bond 2"));
    s = good;
    s.r[2] = 0;
    assert_int_equal(fnet_tt_shape_check(ctx, &s), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "rank 0 at bond 2 must be >= 1"));
    s = good;
    s.r[3] = 2;
    assert_int_equal(fnet_tt_shape_check(ctx, &s), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "boundary ranks r0 = 1, r3 = 2 must be 1"));
    s = good;
    s.n[2] = 0;
    assert_int_equal(fnet_tt_shape_check(ctx, &s), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "n2 = 0: each must be >= 1"));
    s = good;
    s.m[0] = -3;
    assert_int_equal(fnet_tt_shape_check(ctx, &s), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "m0 = -3"));
    s = good;
    s.d = 9;
    assert_int_equal(fnet_tt_shape_check(ctx, &s), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "d = 9 out of range 1..8"));
    s.d = 0;
    assert_int_equal(fnet_tt_shape_check(ctx, &s), FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_tt_shape_check(ctx, NULL), FNET_ERR_INVALID_ARG);
    // modes whose product overflows
    s = make_shape(2, (const int64_t[]){(int64_t)1 << 40, (int64_t)1 << 40}, n, NULL);
    assert_int_equal(fnet_tt_shape_check(ctx, &s), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "overflow"));
    fnet_ctx_free(ctx);
}

static void test_tt_svd_and_round_reject_bad_truncation_arguments(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    const int64_t m[] = {2, 2}, n[] = {2, 2}, r[] = {1, 2, 1};
    struct fnet_tt_shape s = make_shape(2, m, n, r), t;
    float W[16], cores[16];
    fnet_test_fill_uniform(W, 16, -1.0f, 1.0f, 5);
    fnet_test_fill_uniform(cores, 16, -1.0f, 1.0f, 6);
    float *g = (float *)W; // must come back NULL
    struct {
        double eps;
        int64_t max_rank;
        const char *msg;
    } bad[] = {
        {0.0, 0, "eps = 0 must be finite and > 0 (0 only with max_rank > 0)"},
        {-0.1, 0, "eps = -0.1 must be finite"},
        {-0.1, 4, "eps = -0.1 must be finite"},
        {NAN, 0, "eps = nan must be finite"},
        {INFINITY, 2, "eps = inf must be finite"},
        {0.1, -1, "max_rank = -1 must be >= 0 (0: no cap)"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        t = s;
        assert_int_equal(fnet_tt_svd(ctx, W, bad[i].eps, bad[i].max_rank, &t, &g),
                         FNET_ERR_INVALID_ARG);
        assert_null(g);
        assert_memory_equal(&t, &s, sizeof(s)); // the shape is left alone
        assert_non_null(strstr(fnet_ctx_last_error(ctx), bad[i].msg));
        g = (float *)W;
        assert_int_equal(fnet_tt_round(ctx, &s, cores, bad[i].eps, bad[i].max_rank, &t, &g),
                         FNET_ERR_INVALID_ARG);
        assert_null(g);
        assert_non_null(strstr(fnet_ctx_last_error(ctx), bad[i].msg));
        g = (float *)W;
    }
    // a bad shape, NULL pointers, a non-finite W or core
    t = s;
    t.d = 9;
    assert_int_equal(fnet_tt_svd(ctx, W, 0.1, 0, &t, &g), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "d = 9"));
    t = s;
    t.r[1] = 5;
    assert_int_equal(fnet_tt_round(ctx, &t, cores, 0.1, 0, &s, &g), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "rank 5 exceeds min(m0*n0, ...) = 4 at bond 1"));
    assert_int_equal(fnet_tt_svd(ctx, NULL, 0.1, 0, &t, &g), FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_tt_svd(NULL, W, 0.1, 0, &t, &g), FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_tt_round(ctx, &s, NULL, 0.1, 0, &t, &g), FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_tt_full(ctx, &s, cores, NULL), FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_tt_norm(ctx, &s, cores, NULL), FNET_ERR_INVALID_ARG);
    W[5] = NAN;
    t = s;
    assert_int_equal(fnet_tt_svd(ctx, W, 0.1, 0, &t, &g), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "W has a non-finite entry at (1, 1)"));
    cores[3] = INFINITY;
    assert_int_equal(fnet_tt_round(ctx, &s, cores, 0.1, 0, &t, &g), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "cores have a non-finite entry at [3]"));
    assert_null(g);
    fnet_ctx_free(ctx);
}

// ---- out of memory ----

// Fail the k-th allocation for k = 1, 2, .. until the call succeeds: each failure is
// FNET_ERR_OUT_OF_MEMORY with no output and no leak (ASan), then the result is right.
static void test_tt_algebra_reports_out_of_memory_at_every_allocation(void **state)
{
    const int64_t m[] = {2, 3, 2}, n[] = {3, 2, 2}, r[] = {1, 4, 3, 1};
    struct fnet_tt_shape s = make_shape(3, m, n, r);
    int64_t MN = fnet_tt_rows(&s) * fnet_tt_cols(&s);
    for (int b = 0; b < N_BACKENDS; b++) {
        fnet_ctx *ctx = fnet_test_ctx(backend_defaults[b]);
        float *c = random_cores(&s, 180);
        float *A = full(ctx, &s, c);
        double na = fnet_test_fro(MN, A);
        for (int op = 0; op < 4; op++) {
            float *W = test_malloc((size_t)MN * sizeof(float));
            float *g = NULL;
            struct fnet_tt_shape t = s;
            double x = 0.0;
            fnet_status st;
            long k = 1;
            for (;; k++) {
                fnet_debug_fail_alloc(k);
                switch (op) {
                case 0: st = fnet_tt_svd(ctx, A, 0.1, 0, &t, &g); break;
                case 1: st = fnet_tt_round(ctx, &s, c, 0.1, 0, &t, &g); break;
                case 2: st = fnet_tt_full(ctx, &s, c, W); break;
                default: st = fnet_tt_norm(ctx, &s, c, &x); break;
                }
                fnet_debug_fail_alloc(0);
                if (st == FNET_OK)
                    break;
                assert_int_equal(st, FNET_ERR_OUT_OF_MEMORY);
                assert_null(g);
                assert_true(k < 500);
            }
            assert_true(k > 1);
            if (op <= 1) {
                fnet_assert_ok(ctx, fnet_tt_full(ctx, &t, g, W));
                assert_true(fro_diff(MN, W, A) <= (0.1 + FLOAT_SLACK) * na);
                fnet_free(g);
            } else if (op == 2) {
                assert_true(fro_diff(MN, W, A) == 0.0);
            } else {
                fnet_assert_close(x, na, 1e-6, 0.0);
            }
            test_free(W);
        }
        test_free(A);
        test_free(c);
        fnet_ctx_free(ctx);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tt_full_matches_product_of_core_slices),
        cmocka_unit_test(test_tt_norm_and_inner_match_dense_sums),
        cmocka_unit_test(test_tt_svd_recovers_exact_tt_rank),
        cmocka_unit_test(test_tt_svd_meets_error_bound_for_each_eps),
        cmocka_unit_test(test_tt_svd_caps_ranks_with_max_rank),
        cmocka_unit_test(test_tt_svd_cpu_matches_reference),
        cmocka_unit_test(test_tt_svd_and_round_with_one_core_copy),
        cmocka_unit_test(test_tt_round_meets_error_bound_and_never_increases_a_rank),
        cmocka_unit_test(test_tt_round_recovers_ranks_of_a_sum),
        cmocka_unit_test(test_tt_round_caps_ranks_with_max_rank),
        cmocka_unit_test(test_tt_shape_check_rejects_bad_shapes_with_messages),
        cmocka_unit_test(test_tt_svd_and_round_reject_bad_truncation_arguments),
        cmocka_unit_test(test_tt_algebra_reports_out_of_memory_at_every_allocation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
