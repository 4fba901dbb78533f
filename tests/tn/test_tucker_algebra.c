/* Tucker algebra (src/tn/tucker_algebra.c) on the reference and CPU backends: the dense tensor of
 * a Tucker form against a naive sum over the core, HOSVD recovering tensors of exact multilinear
 * rank with orthonormal factors, HOOI never raising the error and the HOSVD error bound, CPU
 * against reference, shape and argument checks with their messages, and out-of-memory injection.
 * Every pointer here is host memory, on every backend (host-side algebra on ctx->be->host_la). */
#include "test_util.h"
#include "linalg_check.h"
#include "core/backend.h"
#include "tn/tucker.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

// fnet_tucker_full against a double evaluation of the definition
#define FULL_RTOL 1e-5
// ‖X − X̂‖_F / ‖X‖_F after HOSVD of a float X of exact multilinear rank, and how far the factors'
// columns may be from orthonormal
#define EXACT_RTOL 1e-5
#define ORTHO_TOL 1e-5
// HOOI sweeps may not raise the relative error by more than float rounding
#define HOOI_SLACK 1e-6
// rel_err against the error of the same core and factors evaluated in double: the reported one
// comes from a float reconstruction
#define REL_ERR_ATOL 1e-6
#define REL_ERR_RTOL 1e-5
// A pivot of the unfolding's Gram matrix below this times the first ends its numerical rank:
// float rounding of an exact-rank X leaves ~1e-14, a true direction of these random tensors
// more than 1e-4.
#define RANK_TOL 1e-8

static const fnet_backend_kind backend_defaults[] = {FNET_BACKEND_REFERENCE, FNET_BACKEND_CPU};
#define N_BACKENDS 2

static struct fnet_tucker_shape make_shape(int D, const int64_t *dims, const int64_t *ranks)
{
    struct fnet_tucker_shape s;
    memset(&s, 0, sizeof(s));
    s.D = D;
    for (int k = 0; k < D; k++) {
        s.dims[k] = dims[k];
        s.ranks[k] = ranks ? ranks[k] : dims[k];
    }
    return s;
}

static int64_t numel(const struct fnet_tucker_shape *s)
{
    int64_t n = 1;
    for (int k = 0; k < s->D; k++)
        n *= s->dims[k];
    return n;
}

// n floats uniform in [-1, 1) (test_malloc: the caller frees)
static float *random_floats(int64_t n, uint64_t seed)
{
    float *x = test_malloc((size_t)n * sizeof(float));
    fnet_test_fill_uniform(x, n, -1.0f, 1.0f, seed);
    return x;
}

// X[i_0..] = Σ_{j_0..} core[j_0..]·Π_k U_k[i_k, j_k], one entry at a time in double: the
// definition, for small shapes
static double *naive_full(const struct fnet_tucker_shape *s, const float *core,
                          const float *factors)
{
    int64_t N = numel(s), Rc = fnet_tucker_core_size(s);
    double *X = test_malloc((size_t)N * sizeof(double));
    for (int64_t p = 0; p < N; p++) {
        int64_t i[FNET_TUCKER_MAX_D], a = p;
        for (int k = s->D - 1; k >= 0; k--) {
            i[k] = a % s->dims[k];
            a /= s->dims[k];
        }
        double acc = 0.0;
        for (int64_t q = 0; q < Rc; q++) {
            double t = (double)core[q];
            int64_t b = q;
            for (int k = s->D - 1; k >= 0; k--) {
                const float *U = factors + fnet_tucker_factor_offset(s, k);
                t *= (double)U[i[k] * s->ranks[k] + b % s->ranks[k]];
                b /= s->ranks[k];
            }
            acc += t;
        }
        X[p] = acc;
    }
    return X;
}

// The same tensor by mode products in double, T (A, r_k, C) -> (A, n_k, C) for k = 0, 1, ..: plain
// loops, no GEMM, for shapes where naive_full is too slow
static double *mode_products(const struct fnet_tucker_shape *s, const float *core,
                             const float *factors)
{
    int64_t size = fnet_tucker_core_size(s), N = numel(s);
    double *T = test_malloc((size_t)N * sizeof(double));
    double *O = test_malloc((size_t)N * sizeof(double));
    for (int64_t i = 0; i < size; i++)
        T[i] = core[i];
    for (int k = 0; k < s->D; k++) {
        int64_t A = 1, C = 1, r = s->ranks[k], n = s->dims[k];
        for (int l = 0; l < k; l++)
            A *= s->dims[l];
        for (int l = k + 1; l < s->D; l++)
            C *= s->ranks[l];
        const float *U = factors + fnet_tucker_factor_offset(s, k);
        for (int64_t a = 0; a < A; a++)
            for (int64_t i = 0; i < n; i++)
                for (int64_t c = 0; c < C; c++) {
                    double acc = 0.0;
                    for (int64_t j = 0; j < r; j++)
                        acc += (double)U[i * r + j] * T[(a * r + j) * C + c];
                    O[(a * n + i) * C + c] = acc;
                }
        double *sw = T;
        T = O;
        O = sw;
    }
    test_free(O);
    return T;
}

// ‖X − T‖_F / ‖X‖_F in double
static double rel_diff(int64_t n, const float *X, const double *T)
{
    double d2 = 0.0, x2 = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)X[i] - T[i];
        d2 += d * d;
        x2 += (double)X[i] * (double)X[i];
    }
    return x2 > 0.0 ? sqrt(d2 / x2) : 0.0;
}

// X's mode-k unfolding (dims[k], Π others), columns in row-major order of the other modes
static double *unfolding(const struct fnet_tucker_shape *s, const float *X, int k)
{
    int64_t N = numel(s), C = 1;
    for (int l = k + 1; l < s->D; l++)
        C *= s->dims[l];
    int64_t c = N / s->dims[k];
    double *A = test_malloc((size_t)N * sizeof(double));
    for (int64_t p = 0; p < N; p++) {
        int64_t before = p / (s->dims[k] * C), i = (p / C) % s->dims[k], after = p % C;
        A[i * c + before * C + after] = X[p];
    }
    return A;
}

// Numerical rank of X_(k): pivoted Cholesky of its Gram matrix in double, stopping at a pivot
// below RANK_TOL times the first
static int64_t unfolding_rank(const struct fnet_tucker_shape *s, const float *X, int k)
{
    int64_t m = s->dims[k], c = numel(s) / m;
    double *A = unfolding(s, X, k);
    double *G = test_malloc((size_t)(m * m) * sizeof(double));
    bool *done = test_calloc((size_t)m, sizeof(bool));
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < m; j++) {
            double acc = 0.0;
            for (int64_t t = 0; t < c; t++)
                acc += A[i * c + t] * A[j * c + t];
            G[i * m + j] = acc;
        }
    double first = 0.0;
    int64_t rank = 0;
    for (; rank < m; rank++) {
        int64_t p = -1;
        for (int64_t i = 0; i < m; i++)
            if (!done[i] && (p < 0 || G[i * m + i] > G[p * m + p]))
                p = i;
        double d = G[p * m + p];
        if (rank == 0)
            first = d;
        if (!(d > RANK_TOL * first))
            break;
        done[p] = true;
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < m; j++)
                if (!done[i] && !done[j])
                    G[i * m + j] -= G[i * m + p] * G[p * m + j] / d;
    }
    test_free(done);
    test_free(G);
    test_free(A);
    return rank;
}

// Σ_{i >= r} σ_i² of X_(k), its discarded energy, with the oracle's SVD
static double discarded_energy(fnet_ctx *oracle, const struct fnet_tucker_shape *s,
                               const float *X, int k)
{
    int64_t m = s->dims[k], c = numel(s) / m, kk = m < c ? m : c;
    double *A = unfolding(s, X, k);
    float *Af = test_malloc((size_t)(m * c) * sizeof(float));
    float *U = test_malloc((size_t)(m * kk) * sizeof(float));
    float *S = test_malloc((size_t)kk * sizeof(float));
    float *Vt = test_malloc((size_t)(kk * c) * sizeof(float));
    for (int64_t i = 0; i < m * c; i++)
        Af[i] = (float)A[i];
    fnet_assert_ok(oracle, oracle->be->host_la->gesvd(oracle, m, c, Af, U, S, Vt));
    double e = 0.0;
    for (int64_t i = s->ranks[k]; i < kk; i++)
        e += (double)S[i] * (double)S[i];
    test_free(Vt);
    test_free(S);
    test_free(U);
    test_free(Af);
    test_free(A);
    return e;
}

// HOSVD outputs for s, in test_malloc'd buffers
struct result {
    float *core, *factors;
    double rel_err;
};

static struct result hosvd(fnet_ctx *ctx, const float *X, const struct fnet_tucker_shape *s,
                           int iters)
{
    struct result r;
    r.core = test_malloc((size_t)fnet_tucker_core_size(s) * sizeof(float));
    r.factors = test_malloc((size_t)fnet_tucker_factor_size(s) * sizeof(float));
    r.rel_err = -1.0;
    fnet_assert_ok(ctx, fnet_tucker_hosvd(ctx, X, s, iters, r.core, r.factors, &r.rel_err));
    return r;
}

static void result_free(struct result *r)
{
    test_free(r->factors);
    test_free(r->core);
}

// The factors have orthonormal columns, and rel_err is the error of core and factors evaluated
// in double; returns that error
static double check_result(const struct fnet_tucker_shape *s, const float *X,
                           const struct result *r)
{
    for (int k = 0; k < s->D; k++)
        assert_true(fnet_test_ortho_cols_error(s->dims[k], s->ranks[k],
                                               r->factors + fnet_tucker_factor_offset(s, k)) <=
                    ORTHO_TOL);
    double *T = mode_products(s, r->core, r->factors);
    double e = rel_diff(numel(s), X, T);
    fnet_assert_close(r->rel_err, e, REL_ERR_RTOL, REL_ERR_ATOL);
    test_free(T);
    return e;
}

// X (float) of exact multilinear rank: a random core and random (not orthonormal) factors,
// multiplied out in double
static float *exact_rank_tensor(const struct fnet_tucker_shape *s, uint64_t seed)
{
    float *core = random_floats(fnet_tucker_core_size(s), seed);
    float *fac = random_floats(fnet_tucker_factor_size(s), seed + 1);
    double *Xd = mode_products(s, core, fac);
    int64_t N = numel(s);
    float *X = test_malloc((size_t)N * sizeof(float));
    for (int64_t i = 0; i < N; i++)
        X[i] = (float)Xd[i];
    test_free(Xd);
    test_free(fac);
    test_free(core);
    return X;
}

// ---- sizes ----

static void test_tucker_sizes_and_offsets(void **state)
{
    const int64_t dims[] = {5, 3, 7}, ranks[] = {2, 3, 4};
    struct fnet_tucker_shape s = make_shape(3, dims, ranks);
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_REFERENCE);
    fnet_assert_ok(ctx, fnet_tucker_shape_check(ctx, &s));
    assert_int_equal(fnet_tucker_core_size(&s), 24);
    assert_int_equal(fnet_tucker_factor_offset(&s, 0), 0);
    assert_int_equal(fnet_tucker_factor_offset(&s, 1), 10);
    assert_int_equal(fnet_tucker_factor_offset(&s, 2), 19);
    assert_int_equal(fnet_tucker_factor_size(&s), 47);
    fnet_ctx_free(ctx);
}

// ---- fnet_tucker_full ----

static void test_tucker_full_matches_naive_sum_over_the_core(void **state)
{
    const int64_t d1[] = {7}, r1[] = {3};
    const int64_t d2[] = {6, 5}, r2[] = {3, 4};
    const int64_t d3[] = {4, 5, 3}, r3[] = {2, 3, 3};
    const int64_t d4[] = {3, 4, 2, 5}, r4[] = {2, 3, 1, 4};
    struct fnet_tucker_shape shapes[] = {make_shape(1, d1, r1), make_shape(2, d2, r2),
                                         make_shape(3, d3, r3), make_shape(4, d4, r4)};
    for (int b = 0; b < N_BACKENDS; b++) {
        fnet_ctx *ctx = fnet_test_ctx(backend_defaults[b]);
        for (size_t t = 0; t < sizeof(shapes) / sizeof(shapes[0]); t++) {
            const struct fnet_tucker_shape *s = &shapes[t];
            fnet_assert_ok(ctx, fnet_tucker_shape_check(ctx, s));
            int64_t N = numel(s);
            float *core = random_floats(fnet_tucker_core_size(s), 10 + t);
            float *fac = random_floats(fnet_tucker_factor_size(s), 20 + t);
            float *X = test_malloc((size_t)N * sizeof(float));
            fnet_assert_ok(ctx, fnet_tucker_full(ctx, s, core, fac, X));
            double *ref = naive_full(s, core, fac);
            double *Xd = test_malloc((size_t)N * sizeof(double));
            for (int64_t i = 0; i < N; i++)
                Xd[i] = X[i];
            fnet_assert_allclose_d(Xd, ref, N, FULL_RTOL, 1e-6);
            if (s->D == 2) { // a matrix: U_0·C·U_1ᵀ
                const float *U0 = fac, *U1 = fac + fnet_tucker_factor_offset(s, 1);
                int64_t m = s->dims[0], n = s->dims[1], p = s->ranks[0], q = s->ranks[1];
                for (int64_t i = 0; i < m; i++)
                    for (int64_t j = 0; j < n; j++) {
                        double acc = 0.0;
                        for (int64_t a = 0; a < p; a++)
                            for (int64_t c = 0; c < q; c++)
                                acc += (double)U0[i * p + a] * core[a * q + c] * U1[j * q + c];
                        fnet_assert_close(X[i * n + j], acc, FULL_RTOL, 1e-6);
                    }
            }
            test_free(Xd);
            test_free(ref);
            test_free(X);
            test_free(fac);
            test_free(core);
        }
        fnet_ctx_free(ctx);
    }
}

static void test_tucker_full_at_large_sizes_matches_mode_products(void **state)
{
    const int64_t d2[] = {1024, 1024}, r2[] = {16, 16};
    const int64_t d4[] = {32, 32, 32, 32}, r4[] = {8, 8, 8, 8};
    struct fnet_tucker_shape shapes[] = {make_shape(2, d2, r2), make_shape(4, d4, r4)};
    for (int b = 0; b < N_BACKENDS; b++) {
        fnet_ctx *ctx = fnet_test_ctx(backend_defaults[b]);
        for (size_t t = 0; t < sizeof(shapes) / sizeof(shapes[0]); t++) {
            const struct fnet_tucker_shape *s = &shapes[t];
            int64_t N = numel(s);
            float *core = random_floats(fnet_tucker_core_size(s), 30 + t);
            float *fac = random_floats(fnet_tucker_factor_size(s), 40 + t);
            float *X = test_malloc((size_t)N * sizeof(float));
            fnet_assert_ok(ctx, fnet_tucker_full(ctx, s, core, fac, X));
            double *ref = mode_products(s, core, fac);
            double *Xd = test_malloc((size_t)N * sizeof(double));
            double mx = 0.0;
            for (int64_t i = 0; i < N; i++) {
                Xd[i] = X[i];
                mx = fabs(ref[i]) > mx ? fabs(ref[i]) : mx;
            }
            assert_true(mx > 1.0);
            fnet_assert_allclose_d(Xd, ref, N, FULL_RTOL, FULL_RTOL * mx);
            test_free(Xd);
            test_free(ref);
            test_free(X);
            test_free(fac);
            test_free(core);
        }
        fnet_ctx_free(ctx);
    }
}

// ---- HOSVD and HOOI ----

static void test_tucker_hosvd_recovers_exact_multilinear_rank(void **state)
{
    // A matrix's two ranks are one: core (5, 7) makes a rank-5 (64, 48) matrix, multilinear rank
    // (5, 5), and HOSVD at ranks (5, 7) recovers it with two spare columns in U_1.
    const int64_t d2[] = {64, 48}, r2[] = {5, 7}, m2[] = {5, 5};
    const int64_t d4[] = {8, 6, 10, 4}, r4[] = {3, 2, 4, 2};
    const int64_t d5[] = {32, 32, 32, 32}, r5[] = {4, 4, 4, 4};
    struct fnet_tucker_shape shapes[] = {make_shape(2, d2, r2), make_shape(4, d4, r4),
                                         make_shape(4, d5, r5)};
    const int64_t *mlrank[] = {m2, r4, r5};
    const int iters[] = {0, 2};
    for (int b = 0; b < N_BACKENDS; b++) {
        fnet_ctx *ctx = fnet_test_ctx(backend_defaults[b]);
        for (size_t t = 0; t < sizeof(shapes) / sizeof(shapes[0]); t++) {
            const struct fnet_tucker_shape *s = &shapes[t];
            float *X = exact_rank_tensor(s, 60 + 2 * t);
            if (b == 0) // the setup really has the multilinear rank the test claims
                for (int k = 0; k < s->D; k++)
                    assert_int_equal(unfolding_rank(s, X, k), mlrank[t][k]);
            for (size_t i = 0; i < sizeof(iters) / sizeof(iters[0]); i++) {
                struct result r = hosvd(ctx, X, s, iters[i]);
                assert_true(r.rel_err <= EXACT_RTOL);
                assert_true(check_result(s, X, &r) <= EXACT_RTOL);
                result_free(&r);
            }
            test_free(X);
        }
        fnet_ctx_free(ctx);
    }
}

// X: uniform noise, or a tensor of multilinear rank `lr` plus noise of relative size 5e-2 (a
// decaying spectrum that truncation at lower ranks cuts into); full multilinear rank either way
static float *noisy_tensor(const struct fnet_tucker_shape *s, const int64_t *lr, uint64_t seed)
{
    int64_t N = numel(s);
    float *X = random_floats(N, seed);
    if (lr == NULL)
        return X;
    struct fnet_tucker_shape l = make_shape(s->D, s->dims, lr);
    float *L = exact_rank_tensor(&l, seed + 1);
    double scale = 5e-2 * fnet_test_fro(N, L) / fnet_test_fro(N, X);
    for (int64_t i = 0; i < N; i++)
        X[i] = L[i] + (float)scale * X[i];
    test_free(L);
    return X;
}

static void test_tucker_hooi_never_increases_error_and_meets_hosvd_bound(void **state)
{
    const int64_t d2[] = {20, 15}, r2[] = {4, 6}, l2[] = {6, 8};
    const int64_t d3[] = {12, 10, 9}, r3[] = {4, 3, 5}, l3[] = {6, 5, 7};
    const int64_t d4[] = {8, 6, 10, 4}, r4[] = {3, 2, 4, 2}, l4[] = {5, 4, 6, 3};
    struct fnet_tucker_shape shapes[] = {make_shape(2, d2, r2), make_shape(3, d3, r3),
                                         make_shape(4, d4, r4)};
    const int64_t *low[] = {l2, l3, l4};
    const int iters[] = {0, 1, 3};
    fnet_ctx *oracle;
    fnet_assert_ok(NULL, fnet_ctx_create_reference(&oracle));
    for (int b = 0; b < N_BACKENDS; b++) {
        fnet_ctx *ctx = fnet_test_ctx(backend_defaults[b]);
        for (size_t t = 0; t < 2 * sizeof(shapes) / sizeof(shapes[0]); t++) {
            const struct fnet_tucker_shape *s = &shapes[t / 2];
            int64_t N = numel(s);
            bool structured = t % 2 == 1;
            float *X = noisy_tensor(s, structured ? low[t / 2] : NULL, 80 + 2 * t);
            // T-HOSVD's bound (De Lathauwer et al. 2000, property 10): with P_k = U_k·U_kᵀ,
            // X − X̂ = Σ_k X ×_0 P_0 ··· ×_{k-1} P_{k-1} ×_k (I − P_k), terms orthogonal to one
            // another, each of norm <= ‖X ×_k (I − P_k)‖_F (the P_l are contractions), whose
            // square is what mode k's truncation discards. So ‖X − X̂‖² <= Σ_k Σ_{i>r_k} σ_i²,
            // and HOOI, never worse than the HOSVD it starts from, meets it too. Conversely no
            // approximation at these ranks beats mode k's truncation alone, so the error is at
            // least max_k sqrt(Σ_{i>r_k} σ_i²) >= bound/sqrt(D) (the bound is <= sqrt(D)·best).
            double bound = 0.0, nx = fnet_test_fro(N, X), disc[FNET_TUCKER_MAX_D];
            for (int k = 0; k < s->D; k++) {
                disc[k] = discarded_energy(oracle, s, X, k);
                bound += disc[k];
            }
            bound = sqrt(bound) / nx;
            // a real truncation; on the structured X a bound below the trivial 1
            assert_true(bound > 0.05 && (!structured || bound < 0.9));
            double prev = INFINITY, first = 0.0;
            for (size_t i = 0; i < sizeof(iters) / sizeof(iters[0]); i++) {
                struct result r = hosvd(ctx, X, s, iters[i]);
                double e = check_result(s, X, &r);
                assert_true(e <= prev + HOOI_SLACK);
                assert_true(e <= bound * (1.0 + 1e-5));
                assert_true(e >= bound / sqrt((double)s->D) * (1.0 - 1e-5));
                first = i == 0 ? e : first;
                prev = e;
                result_free(&r);
            }
            if (s->D > 2) // HOOI does improve on HOSVD here
                assert_true(prev < first - 1e-4);
            else // a matrix's HOSVD is already its best approximation of rank min(r_0, r_1) = r_0
                fnet_assert_close(prev, sqrt(disc[0]) / nx, 1e-5, 0.0);
            test_free(X);
        }
        fnet_ctx_free(ctx);
    }
    fnet_ctx_free(oracle);
}

static void test_tucker_hosvd_cpu_matches_reference(void **state)
{
    const int64_t dims[] = {6, 8, 5, 7}, ranks[] = {2, 3, 2, 3};
    struct fnet_tucker_shape s = make_shape(4, dims, ranks);
    int64_t N = numel(&s);
    fnet_ctx *ref, *cpu = fnet_test_ctx(FNET_BACKEND_CPU);
    fnet_assert_ok(NULL, fnet_ctx_create_reference(&ref)); // the oracle
    // low rank plus 1e-2 noise: a clear gap at the ranks, so both find the same subspaces
    float *X = exact_rank_tensor(&s, 100);
    float *noise = random_floats(N, 102);
    double scale = 1e-2 * fnet_test_fro(N, X) / fnet_test_fro(N, noise);
    for (int64_t i = 0; i < N; i++)
        X[i] += (float)scale * noise[i];
    struct result a = hosvd(ref, X, &s, 2), c = hosvd(cpu, X, &s, 2);
    float *Xa = test_malloc((size_t)N * sizeof(float));
    float *Xc = test_malloc((size_t)N * sizeof(float));
    fnet_assert_ok(ref, fnet_tucker_full(ref, &s, a.core, a.factors, Xa));
    fnet_assert_ok(cpu, fnet_tucker_full(cpu, &s, c.core, c.factors, Xc));
    double *Xad = test_malloc((size_t)N * sizeof(double));
    for (int64_t i = 0; i < N; i++)
        Xad[i] = Xa[i];
    // the same approximation up to float rounding (factors differ by signs, not the product)
    assert_true(rel_diff(N, Xc, Xad) <= 1e-5);
    assert_true(a.rel_err > 1e-3 && a.rel_err < 2e-2);
    fnet_assert_close(c.rel_err, a.rel_err, 1e-5, 0.0);
    test_free(Xad);
    test_free(Xc);
    test_free(Xa);
    result_free(&c);
    result_free(&a);
    test_free(noise);
    test_free(X);
    fnet_ctx_free(cpu);
    fnet_ctx_free(ref);
}

// One mode, X = 0, full ranks, and ranks above what an unfolding can hold
static void test_tucker_hosvd_handles_vectors_zero_and_redundant_ranks(void **state)
{
    const int64_t d1[] = {7}, r1[] = {3};
    const int64_t dz[] = {4, 3, 5}, rz[] = {2, 2, 2};
    // mode 0's rank 5 exceeds 2·2 = 4, the columns of HOOI's unfolding: multilinear rank
    // (4, 2, 2); a (12, 3) matrix at ranks (5, 3) has rank 3 and is factored mode by mode; a
    // wide (10, 60) one at ranks (6, 2) has rank 2 and comes from its one SVD
    const int64_t dr[] = {12, 2, 3}, rr[] = {5, 2, 2}, dm[] = {12, 3}, rm[] = {5, 3};
    const int64_t dw[] = {10, 60}, rw[] = {6, 2};
    struct fnet_tucker_shape vec = make_shape(1, d1, r1), zero = make_shape(3, dz, rz),
                             full = make_shape(3, dz, NULL);
    struct fnet_tucker_shape red[] = {make_shape(3, dr, rr), make_shape(2, dm, rm),
                                      make_shape(2, dw, rw)};
    const int64_t red_rank[][3] = {{4, 2, 2}, {3, 3, 0}, {2, 2, 0}};
    for (int b = 0; b < N_BACKENDS; b++) {
        fnet_ctx *ctx = fnet_test_ctx(backend_defaults[b]);
        // a vector: U_0's first column is ±X/‖X‖, the core (±‖X‖, 0, 0)
        float *x = random_floats(7, 110);
        double nx = fnet_test_fro(7, x);
        struct result r = hosvd(ctx, x, &vec, 1);
        assert_true(check_result(&vec, x, &r) <= EXACT_RTOL);
        float sign = r.core[0] > 0.0f ? 1.0f : -1.0f;
        fnet_assert_close(sign * r.core[0], nx, 1e-6, 0.0);
        fnet_assert_close(r.core[1], 0.0, 0.0, 1e-6 * nx);
        fnet_assert_close(r.core[2], 0.0, 0.0, 1e-6 * nx);
        for (int i = 0; i < 7; i++)
            fnet_assert_close(sign * r.factors[i * 3], x[i] / nx, 0.0, 1e-6);
        result_free(&r);
        test_free(x);
        // X = 0: error 0, core 0, factors still orthonormal
        float *X = test_calloc((size_t)numel(&zero), sizeof(float));
        r = hosvd(ctx, X, &zero, 2);
        assert_true(r.rel_err == 0.0);
        for (int64_t i = 0; i < fnet_tucker_core_size(&zero); i++)
            assert_true(r.core[i] == 0.0f);
        check_result(&zero, X, &r);
        result_free(&r);
        test_free(X);
        // full ranks: lossless
        X = random_floats(numel(&full), 111);
        r = hosvd(ctx, X, &full, 1);
        assert_true(r.rel_err <= 1e-6);
        check_result(&full, X, &r);
        result_free(&r);
        test_free(X);
        // redundant ranks: exact recovery with spare columns
        for (int t = 0; t < 3; t++) {
            X = exact_rank_tensor(&red[t], 112 + (uint64_t)t);
            for (int k = 0; k < red[t].D && b == 0; k++)
                assert_int_equal(unfolding_rank(&red[t], X, k), red_rank[t][k]);
            r = hosvd(ctx, X, &red[t], 2);
            assert_true(r.rel_err <= EXACT_RTOL);
            assert_true(check_result(&red[t], X, &r) <= EXACT_RTOL);
            result_free(&r);
            test_free(X);
        }
        fnet_ctx_free(ctx);
    }
}

// ---- bad shapes and arguments ----

static void test_tucker_shape_check_rejects_bad_shapes_with_messages(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_REFERENCE);
    const int64_t dims[] = {8, 32, 4}, ranks[] = {2, 16, 4};
    struct fnet_tucker_shape good = make_shape(3, dims, ranks), s;
    fnet_assert_ok(ctx, fnet_tucker_shape_check(ctx, &good));
    struct {
        int mode;
        int64_t dim, rank;
        const char *msg;
    } bad[] = {
        {1, 32, 40, "rank 40 of mode 1 exceeds its size 32"},
        {2, 4, 0, "rank 0 of mode 2 must be >= 1"},
        {0, 8, -2, "rank -2 of mode 0 must be >= 1"},
        {0, 0, 1, "size 0 of mode 0 must be >= 1"},
        {2, -3, 1, "size -3 of mode 2 must be >= 1"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        s = good;
        s.dims[bad[i].mode] = bad[i].dim;
        s.ranks[bad[i].mode] = bad[i].rank;
        assert_int_equal(fnet_tucker_shape_check(ctx, &s), FNET_ERR_INVALID_ARG);
        assert_non_null(strstr(fnet_ctx_last_error(ctx), bad[i].msg));
        assert_non_null(strstr(fnet_ctx_last_error(ctx), "tucker_algebra.c:"));
    }
    s = good;
    s.D = 17;
    assert_int_equal(fnet_tucker_shape_check(ctx, &s), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "D = 17 out of range 1..16"));
    s.D = 0;
    assert_int_equal(fnet_tucker_shape_check(ctx, &s), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "D = 0 out of range 1..16"));
    assert_int_equal(fnet_tucker_shape_check(ctx, NULL), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "tucker shape is NULL"));
    // sizes whose product overflows, and factors too large though the tensor is not
    const int64_t big[] = {(int64_t)1 << 31, (int64_t)1 << 31, 4};
    s = make_shape(3, big, ranks);
    assert_int_equal(fnet_tucker_shape_check(ctx, &s), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "sizes overflow at mode 1"));
    const int64_t huge[] = {(int64_t)1 << 40}, huge_rank[] = {(int64_t)1 << 30};
    s = make_shape(1, huge, huge_rank);
    assert_int_equal(fnet_tucker_shape_check(ctx, &s), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "sizes overflow at mode 0"));
    s.ranks[0] = 1;
    fnet_assert_ok(ctx, fnet_tucker_shape_check(ctx, &s));
    fnet_ctx_free(ctx);
}

static void test_tucker_hosvd_and_full_reject_bad_arguments(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    const int64_t dims[] = {3, 4}, ranks[] = {2, 2};
    struct fnet_tucker_shape s = make_shape(2, dims, ranks), t;
    float X[12], core[4], fac[14];
    fnet_test_fill_uniform(X, 12, -1.0f, 1.0f, 120);
    fnet_test_fill_uniform(core, 4, -1.0f, 1.0f, 121);
    fnet_test_fill_uniform(fac, 14, -1.0f, 1.0f, 122);
    double e = -1.0;
    assert_int_equal(fnet_tucker_hosvd(ctx, X, &s, -1, core, fac, &e), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "hooi_iters = -1 must be >= 0"));
    assert_int_equal(fnet_tucker_hosvd(ctx, NULL, &s, 0, core, fac, &e), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "tucker_hosvd: NULL argument"));
    assert_int_equal(fnet_tucker_hosvd(ctx, X, &s, 0, NULL, fac, &e), FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_tucker_hosvd(ctx, X, &s, 0, core, NULL, &e), FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_tucker_hosvd(NULL, X, &s, 0, core, fac, &e), FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_tucker_hosvd(ctx, X, NULL, 0, core, fac, &e), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "tucker shape is NULL"));
    t = s;
    t.ranks[1] = 5;
    assert_int_equal(fnet_tucker_hosvd(ctx, X, &t, 0, core, fac, &e), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "rank 5 of mode 1 exceeds its size 4"));
    assert_int_equal(fnet_tucker_full(ctx, &t, core, fac, X), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "rank 5 of mode 1 exceeds its size 4"));
    assert_int_equal(fnet_tucker_full(ctx, &s, core, fac, NULL), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "tucker_full: NULL argument"));
    assert_int_equal(fnet_tucker_full(ctx, &s, NULL, fac, X), FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_tucker_full(ctx, &s, core, NULL, X), FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_tucker_full(NULL, &s, core, fac, X), FNET_ERR_INVALID_ARG);
    X[7] = NAN;
    assert_int_equal(fnet_tucker_hosvd(ctx, X, &s, 0, core, fac, &e), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "X has a non-finite entry at flat index 7"));
    X[7] = 0.0f;
    X[11] = -INFINITY;
    assert_int_equal(fnet_tucker_hosvd(ctx, X, &s, 0, core, fac, &e), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "X has a non-finite entry at flat index 11"));
    assert_true(e == -1.0); // nothing reported on failure
    // rel_err NULL is allowed
    X[11] = 1.0f;
    fnet_assert_ok(ctx, fnet_tucker_hosvd(ctx, X, &s, 1, core, fac, NULL));
    fnet_ctx_free(ctx);
}

// ---- out of memory ----

// Fail the k-th allocation for k = 1, 2, .. until the call succeeds: each failure is
// FNET_ERR_OUT_OF_MEMORY (no leak under ASan), then the result is the one without injection.
static void test_tucker_algebra_reports_out_of_memory_at_every_allocation(void **state)
{
    // mode 0 tall (12 > 2·3) with a rank above HOOI's 2·2 columns (padding), modes 1, 2 wide
    // a vector; a matrix from its one SVD, and one whose rank 5 exceeds min(7, 3) (per mode)
    const int64_t dims[] = {12, 2, 3}, ranks[] = {5, 2, 2}, dv[] = {6}, rv[] = {2};
    const int64_t dm[] = {5, 9}, rm[] = {4, 2}, dp[] = {7, 3}, rp[] = {5, 2};
    struct fnet_tucker_shape shapes[] = {make_shape(3, dims, ranks), make_shape(1, dv, rv),
                                         make_shape(2, dm, rm), make_shape(2, dp, rp)};
    for (int b = 0; b < N_BACKENDS; b++) {
        fnet_ctx *ctx = fnet_test_ctx(backend_defaults[b]);
        for (size_t t = 0; t < sizeof(shapes) / sizeof(shapes[0]); t++) {
            const struct fnet_tucker_shape *s = &shapes[t];
            int64_t N = numel(s), nc = fnet_tucker_core_size(s), nf = fnet_tucker_factor_size(s);
            float *X = random_floats(N, 130 + t);
            struct result want = hosvd(ctx, X, s, 2);
            float *Xw = test_malloc((size_t)N * sizeof(float));
            fnet_assert_ok(ctx, fnet_tucker_full(ctx, s, want.core, want.factors, Xw));
            for (int op = 0; op < 2; op++) {
                float *core = test_malloc((size_t)nc * sizeof(float));
                float *fac = test_malloc((size_t)nf * sizeof(float));
                float *Y = test_malloc((size_t)N * sizeof(float));
                double e = -1.0;
                fnet_status st;
                long k = 1;
                for (;; k++) {
                    fnet_debug_fail_alloc(k);
                    if (op == 0)
                        st = fnet_tucker_hosvd(ctx, X, s, 2, core, fac, &e);
                    else
                        st = fnet_tucker_full(ctx, s, want.core, want.factors, Y);
                    fnet_debug_fail_alloc(0);
                    if (st == FNET_OK)
                        break;
                    assert_int_equal(st, FNET_ERR_OUT_OF_MEMORY);
                    assert_true(e == -1.0);
                    assert_true(k < 500);
                }
                assert_true(k > 1);
                if (op == 0) { // deterministic: the same bits as without injection
                    assert_memory_equal(core, want.core, (size_t)nc * sizeof(float));
                    assert_memory_equal(fac, want.factors, (size_t)nf * sizeof(float));
                    assert_true(e == want.rel_err);
                } else {
                    assert_memory_equal(Y, Xw, (size_t)N * sizeof(float));
                }
                test_free(Y);
                test_free(fac);
                test_free(core);
            }
            test_free(Xw);
            result_free(&want);
            test_free(X);
        }
        fnet_ctx_free(ctx);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tucker_sizes_and_offsets),
        cmocka_unit_test(test_tucker_full_matches_naive_sum_over_the_core),
        cmocka_unit_test(test_tucker_full_at_large_sizes_matches_mode_products),
        cmocka_unit_test(test_tucker_hosvd_recovers_exact_multilinear_rank),
        cmocka_unit_test(test_tucker_hooi_never_increases_error_and_meets_hosvd_bound),
        cmocka_unit_test(test_tucker_hosvd_cpu_matches_reference),
        cmocka_unit_test(test_tucker_hosvd_handles_vectors_zero_and_redundant_ranks),
        cmocka_unit_test(test_tucker_shape_check_rejects_bad_shapes_with_messages),
        cmocka_unit_test(test_tucker_hosvd_and_full_reject_bad_arguments),
        cmocka_unit_test(test_tucker_algebra_reports_out_of_memory_at_every_allocation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
