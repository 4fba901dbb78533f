/* CP algebra (src/tn/cp_algebra.c) on the reference and CPU backends: the dense tensor of a CP
 * decomposition against a naive double sum of outer products, CP-ALS recovering exact-rank tensors
 * from a random start, its fit never decreasing from one sweep to the next, the CPU against the
 * reference, shape and argument checks with their messages, and out-of-memory injection. All
 * host memory, on every backend (ctx->be->host_la). */
#include "test_util.h"
#include "linalg_check.h"
#include "core/backend.h"
#include "tn/cp.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

// fnet_cp_full against the naive double sum of outer products
#define FULL_RTOL 1e-5
// exact-rank recovery: ‖X − CP‖_F/‖X‖_F after ALS, and 1 − the reported fit
#define RECOVERY_TOL 1e-4
// the reported fit against 1 − ‖X − CP‖/‖X‖ evaluated here in double
#define FIT_MATCH_TOL 1e-6
// how much the fit may drop from one sweep to the next (ALS is monotone in exact arithmetic; the
// float MTTKRPs and pseudo-inverses perturb each least-squares step a little)
#define MONOTONE_SLACK 1e-6
// the same ALS run on the CPU and the reference host linear algebra: same fit
#define BACKEND_FIT_TOL 1e-4
// sweeps of the exact-recovery runs. Over ALS seeds 0..29 (both backends alike), the sweeps
// needed to reach RECOVERY_TOL were 10..45 for the (6, 5, 7, 4) and (16, 16, 16, 16) cases; for
// (10, 12, 8) mostly 15..25, but seeds 6, 8, 11 and 15 cross a swamp (a long plateau of the fit,
// Kolda & Bader §3.4) and needed 100, 95, 95 and 80: the budget leaves room for seed 6, tested too.
#define RECOVERY_SWEEPS 200

static const fnet_backend_kind backend_defaults[] = {FNET_BACKEND_REFERENCE, FNET_BACKEND_CPU};
#define N_BACKENDS 2

static struct fnet_cp_shape make_shape(int D, const int64_t *dims, int64_t rank)
{
    struct fnet_cp_shape s;
    memset(&s, 0, sizeof(s));
    s.D = D;
    for (int k = 0; k < D; k++)
        s.dims[k] = dims[k];
    s.rank = rank;
    return s;
}

static int64_t numel(const struct fnet_cp_shape *s)
{
    int64_t n = 1;
    for (int k = 0; k < s->D; k++)
        n *= s->dims[k];
    return n;
}

// factors of s, uniform in [-1, 1) (test_malloc: the caller frees)
static float *random_factors(const struct fnet_cp_shape *s, uint64_t seed)
{
    int64_t np = fnet_cp_num_params(s);
    float *f = test_malloc((size_t)np * sizeof(float));
    fnet_test_fill_uniform(f, np, -1.0f, 1.0f, seed);
    return f;
}

// X[i_0, .., i_{D-1}] = Σ_r Π_k A_k[i_k, r], one entry at a time in double: the definition
static double *naive_full(const struct fnet_cp_shape *s, const float *factors)
{
    int64_t N = numel(s), R = s->rank, off[FNET_TUCKER_MAX_D], o = 0;
    for (int k = 0; k < s->D; k++) {
        off[k] = o;
        o += s->dims[k] * R;
    }
    double *X = test_malloc((size_t)N * sizeof(double));
    for (int64_t flat = 0; flat < N; flat++) {
        int64_t idx[FNET_TUCKER_MAX_D], rest = flat;
        for (int k = s->D - 1; k >= 0; k--) {
            idx[k] = rest % s->dims[k];
            rest /= s->dims[k];
        }
        double sum = 0.0;
        for (int64_t r = 0; r < R; r++) {
            double p = 1.0;
            for (int k = 0; k < s->D; k++)
                p *= (double)factors[off[k] + idx[k] * R + r];
            sum += p;
        }
        X[flat] = sum;
    }
    return X;
}

// ‖X − CP(factors)‖_F / ‖X‖_F, the CP evaluated naively in double
static double rel_error(const struct fnet_cp_shape *s, const float *X, const float *factors)
{
    double *Y = naive_full(s, factors), e = 0.0, n = 0.0;
    for (int64_t i = 0; i < numel(s); i++) {
        double d = (double)X[i] - Y[i];
        e += d * d;
        n += (double)X[i] * (double)X[i];
    }
    test_free(Y);
    return sqrt(e / n);
}

static float *full(fnet_ctx *ctx, const struct fnet_cp_shape *s, const float *factors)
{
    float *X = test_malloc((size_t)numel(s) * sizeof(float));
    fnet_assert_ok(ctx, fnet_cp_full(ctx, s, factors, X));
    return X;
}

static struct fnet_cp_als_params als_params(int max_iters, double tol, uint64_t seed)
{
    struct fnet_cp_als_params p = {max_iters, tol, seed};
    return p;
}

// ---- counting and the dense tensor ----

static void test_cp_num_params_counts_every_factor(void **state)
{
    struct fnet_cp_shape s = make_shape(3, (const int64_t[]){3, 4, 5}, 2);
    assert_int_equal(fnet_cp_num_params(&s), 24);
    s = make_shape(1, (const int64_t[]){7}, 5);
    assert_int_equal(fnet_cp_num_params(&s), 35);
    s = make_shape(4, (const int64_t[]){32, 32, 32, 32}, 64);
    assert_int_equal(fnet_cp_num_params(&s), 8192);
}

static void test_cp_full_matches_sum_of_outer_products(void **state)
{
    struct fnet_cp_shape shapes[] = {
        make_shape(1, (const int64_t[]){7}, 3),
        make_shape(2, (const int64_t[]){5, 6}, 4),
        make_shape(3, (const int64_t[]){3, 4, 5}, 2),
        make_shape(4, (const int64_t[]){2, 3, 4, 3}, 5),
        make_shape(4, (const int64_t[]){1, 6, 1, 2}, 3), // modes of size 1
        make_shape(3, (const int64_t[]){2, 2, 2}, 9),   // rank above every mode size
    };
    for (int b = 0; b < N_BACKENDS; b++) {
        fnet_ctx *ctx = fnet_test_ctx(backend_defaults[b]);
        for (size_t t = 0; t < sizeof(shapes) / sizeof(shapes[0]); t++) {
            const struct fnet_cp_shape *s = &shapes[t];
            fnet_assert_ok(ctx, fnet_cp_shape_check(ctx, s));
            float *f = random_factors(s, 10 + t);
            float *X = full(ctx, s, f);
            double *ref = naive_full(s, f);
            int64_t N = numel(s);
            double *Xd = test_malloc((size_t)N * sizeof(double));
            for (int64_t i = 0; i < N; i++)
                Xd[i] = X[i];
            fnet_assert_allclose_d(Xd, ref, N, FULL_RTOL, 1e-6);
            test_free(Xd);
            test_free(ref);
            test_free(X);
            test_free(f);
        }
        fnet_ctx_free(ctx);
    }
}

// ---- CP-ALS ----

// X = CP of random factors at rank R; ALS at rank R from another seed's random start, a fixed
// budget of RECOVERY_SWEEPS sweeps (tol 0): X back to RECOVERY_TOL, the fit reported equal to the
// one computed here, and each term's weight spread evenly over its factors.
static void test_cp_als_recovers_exact_rank_from_random_start(void **state)
{
    struct {
        struct fnet_cp_shape s;
        uint64_t data_seed, als_seed;
    } cases[] = {
        {make_shape(3, (const int64_t[]){10, 12, 8}, 3), 21, 1},
        {make_shape(3, (const int64_t[]){10, 12, 8}, 3), 21, 6}, // through a swamp
        {make_shape(4, (const int64_t[]){6, 5, 7, 4}, 4), 22, 2},
        {make_shape(4, (const int64_t[]){16, 16, 16, 16}, 8), 23, 3}, // X is (256, 256)
    };
    for (int b = 0; b < N_BACKENDS; b++) {
        fnet_ctx *ctx = fnet_test_ctx(backend_defaults[b]);
        for (size_t t = 0; t < sizeof(cases) / sizeof(cases[0]); t++) {
            const struct fnet_cp_shape *s = &cases[t].s;
            const int64_t R = s->rank;
            float *truth = random_factors(s, cases[t].data_seed);
            float *X = full(ctx, s, truth);
            float *f = test_malloc((size_t)fnet_cp_num_params(s) * sizeof(float));
            struct fnet_cp_als_params p = als_params(RECOVERY_SWEEPS, 0.0, cases[t].als_seed);
            double fit = -1.0;
            int iters = 0;
            fnet_assert_ok(ctx, fnet_cp_als(ctx, X, s, &p, f, &fit, &iters));
            assert_int_equal(iters, RECOVERY_SWEEPS);
            double err = rel_error(s, X, f);
            assert_true(err <= RECOVERY_TOL);
            assert_true(fit >= 1.0 - RECOVERY_TOL && fit <= 1.0);
            fnet_assert_close(fit, 1.0 - err, 0.0, FIT_MATCH_TOL);
            // balanced: column r has the same norm in every factor
            for (int64_t r = 0; r < R; r++) {
                double n0 = 0.0;
                const float *A = f;
                for (int k = 0; k < s->D; k++) {
                    double nk = 0.0;
                    for (int64_t i = 0; i < s->dims[k]; i++)
                        nk += (double)A[i * R + r] * (double)A[i * R + r];
                    nk = sqrt(nk);
                    if (k == 0)
                        n0 = nk;
                    assert_true(n0 > 0.0);
                    fnet_assert_close(nk, n0, 1e-5, 0.0);
                    A += s->dims[k] * R;
                }
            }
            test_free(f);
            test_free(X);
            test_free(truth);
        }
        fnet_ctx_free(ctx);
    }
}

// With tol > 0 the sweeps stop once the fit settles: before the budget, at the same accuracy
static void test_cp_als_stops_early_when_the_fit_settles(void **state)
{
    struct fnet_cp_shape s = make_shape(3, (const int64_t[]){10, 12, 8}, 3);
    for (int b = 0; b < N_BACKENDS; b++) {
        fnet_ctx *ctx = fnet_test_ctx(backend_defaults[b]);
        float *truth = random_factors(&s, 21);
        float *X = full(ctx, &s, truth);
        float *f = test_malloc((size_t)fnet_cp_num_params(&s) * sizeof(float));
        struct fnet_cp_als_params p = als_params(500, 1e-6, 1);
        double fit = 0.0;
        int iters = 0;
        fnet_assert_ok(ctx, fnet_cp_als(ctx, X, &s, &p, f, &fit, &iters));
        assert_true(iters >= 2 && iters < 500);
        double err = rel_error(&s, X, f);
        assert_true(err <= RECOVERY_TOL);
        fnet_assert_close(fit, 1.0 - err, 0.0, FIT_MATCH_TOL);
        // a loose tol stops sooner
        int loose = 0;
        p.tol = 1e-2;
        fnet_assert_ok(ctx, fnet_cp_als(ctx, X, &s, &p, f, NULL, &loose));
        assert_true(loose >= 2 && loose < iters);
        test_free(f);
        test_free(X);
        test_free(truth);
        fnet_ctx_free(ctx);
    }
}

// Uniform noise has no exact low-rank form: the fit stays in [0, 1) and, run after run with one
// more sweep each from the same seed (the same trajectory), never goes down.
static void test_cp_als_fit_never_decreases_on_random_data(void **state)
{
    struct fnet_cp_shape shapes[] = {make_shape(3, (const int64_t[]){5, 6, 7}, 3),
                                     make_shape(4, (const int64_t[]){4, 3, 5, 2}, 5)};
    const int max_sweeps = 25;
    for (int b = 0; b < N_BACKENDS; b++) {
        fnet_ctx *ctx = fnet_test_ctx(backend_defaults[b]);
        for (size_t t = 0; t < sizeof(shapes) / sizeof(shapes[0]); t++) {
            const struct fnet_cp_shape *s = &shapes[t];
            float *X = test_malloc((size_t)numel(s) * sizeof(float));
            fnet_test_fill_uniform(X, numel(s), -1.0f, 1.0f, 40 + t);
            float *f = test_malloc((size_t)fnet_cp_num_params(s) * sizeof(float));
            double prev = 0.0, first = 0.0;
            for (int n = 1; n <= max_sweeps; n++) {
                struct fnet_cp_als_params p = als_params(n, 0.0, 7);
                double fit = -1.0;
                int iters = 0;
                fnet_assert_ok(ctx, fnet_cp_als(ctx, X, s, &p, f, &fit, &iters));
                assert_int_equal(iters, n);
                assert_true(fit >= 0.0 && fit < 1.0);
                fnet_assert_close(fit, 1.0 - rel_error(s, X, f), 0.0, FIT_MATCH_TOL);
                if (n == 1)
                    first = fit;
                else
                    assert_true(fit >= prev - MONOTONE_SLACK);
                prev = fit;
            }
            assert_true(prev > first + 1e-3); // the sweeps did improve it
            test_free(f);
            test_free(X);
        }
        fnet_ctx_free(ctx);
    }
}

// The same seed on the CPU's LAPACK and BLAS and on the reference's double loops: the same fit
static void test_cp_als_cpu_matches_reference(void **state)
{
    struct fnet_cp_shape s = make_shape(3, (const int64_t[]){8, 9, 7}, 4);
    fnet_ctx *ref, *cpu = fnet_test_ctx(FNET_BACKEND_CPU);
    fnet_assert_ok(NULL, fnet_ctx_create_reference(&ref)); // the oracle
    int64_t N = numel(&s), np = fnet_cp_num_params(&s);
    // rank 4 plus 5% noise, and plain noise
    float *X = test_malloc((size_t)N * sizeof(float));
    float *noise = test_malloc((size_t)N * sizeof(float));
    float *truth = random_factors(&s, 60);
    fnet_assert_ok(ref, fnet_cp_full(ref, &s, truth, X));
    fnet_test_fill_uniform(noise, N, -1.0f, 1.0f, 61);
    double scale = 0.05 * fnet_test_fro(N, X) / fnet_test_fro(N, noise);
    float *fa = test_malloc((size_t)np * sizeof(float));
    float *fb = test_malloc((size_t)np * sizeof(float));
    for (int data = 0; data < 2; data++) {
        for (int64_t i = 0; i < N; i++)
            X[i] = data == 0 ? X[i] + (float)scale * noise[i] : noise[i];
        // seed 0 finds the rank-4 part (fit 0.955 on the noisy data); seeds 4 and 5 of 0..7
        // settle in a local minimum at 0.684 on both backends, a property of ALS
        struct fnet_cp_als_params p = als_params(30, 0.0, 0);
        double fit_ref = -1.0, fit_cpu = -2.0;
        fnet_assert_ok(ref, fnet_cp_als(ref, X, &s, &p, fa, &fit_ref, NULL));
        fnet_assert_ok(cpu, fnet_cp_als(cpu, X, &s, &p, fb, &fit_cpu, NULL));
        fnet_assert_close(fit_cpu, fit_ref, 0.0, BACKEND_FIT_TOL);
        if (data == 0)
            assert_true(fit_ref > 0.95); // about 1 − 5%: the rank-4 part
    }
    test_free(fb);
    test_free(fa);
    test_free(truth);
    test_free(noise);
    test_free(X);
    fnet_ctx_free(cpu);
    fnet_ctx_free(ref);
}

// X = 0 gives zero factors and fit 1; one mode (a vector) is fitted exactly at any rank
static void test_cp_als_zero_tensor_and_one_mode(void **state)
{
    for (int b = 0; b < N_BACKENDS; b++) {
        fnet_ctx *ctx = fnet_test_ctx(backend_defaults[b]);
        struct fnet_cp_shape s = make_shape(3, (const int64_t[]){3, 4, 2}, 2);
        float X[24] = {0}, f[18];
        struct fnet_cp_als_params p = als_params(3, 1e-6, 9);
        double fit = -1.0;
        int iters = 0;
        fnet_assert_ok(ctx, fnet_cp_als(ctx, X, &s, &p, f, &fit, &iters));
        assert_true(fit == 1.0);
        assert_int_equal(iters, 2); // the fit is 1 twice: settled
        for (int i = 0; i < 18; i++)
            assert_true(f[i] == 0.0f);
        for (int64_t R = 1; R <= 3; R++) {
            struct fnet_cp_shape v = make_shape(1, (const int64_t[]){6}, R);
            float x[6], g[18];
            fnet_test_fill_uniform(x, 6, -1.0f, 1.0f, 90 + (uint64_t)R);
            fnet_assert_ok(ctx, fnet_cp_als(ctx, x, &v, &p, g, &fit, NULL));
            double err = rel_error(&v, x, g);
            assert_true(err <= 1e-6);
            fnet_assert_close(fit, 1.0 - err, 0.0, FIT_MATCH_TOL);
        }
        fnet_ctx_free(ctx);
    }
}

// A tensor whose MTTKRP overflows float: FNET_ERR_NUMERIC, not a non-finite result
static void test_cp_als_reports_non_finite_factors(void **state)
{
    for (int b = 0; b < N_BACKENDS; b++) {
        fnet_ctx *ctx = fnet_test_ctx(backend_defaults[b]);
        struct fnet_cp_shape s = make_shape(3, (const int64_t[]){8, 8, 8}, 2);
        float *X = test_malloc(512 * sizeof(float)), f[48];
        for (int i = 0; i < 512; i++)
            X[i] = FLT_MAX;
        struct fnet_cp_als_params p = als_params(3, 0.0, 4);
        assert_int_equal(fnet_cp_als(ctx, X, &s, &p, f, NULL, NULL), FNET_ERR_NUMERIC);
        assert_non_null(strstr(fnet_ctx_last_error(ctx), "stopped being finite"));
        test_free(X);
        fnet_ctx_free(ctx);
    }
}

// ---- bad shapes and arguments ----

static void test_cp_shape_check_rejects_bad_shapes_with_messages(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_REFERENCE);
    struct fnet_cp_shape good = make_shape(3, (const int64_t[]){2, 4, 3}, 5), s;
    fnet_assert_ok(ctx, fnet_cp_shape_check(ctx, &good));
    s = good;
    s.rank = 0;
    assert_int_equal(fnet_cp_shape_check(ctx, &s), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "cp rank must be >= 1, got 0"));
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "cp_algebra.c:"));
    s.rank = -2;
    assert_int_equal(fnet_cp_shape_check(ctx, &s), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "cp rank must be >= 1, got -2"));
    s = good;
    s.dims[1] = 0;
    assert_int_equal(fnet_cp_shape_check(ctx, &s), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "cp mode 1 has size 0: must be >= 1"));
    s = good;
    s.dims[2] = -4;
    assert_int_equal(fnet_cp_shape_check(ctx, &s), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "cp mode 2 has size -4"));
    s = good;
    s.D = 0;
    assert_int_equal(fnet_cp_shape_check(ctx, &s), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "cp D = 0 out of range 1..16"));
    s.D = 17;
    assert_int_equal(fnet_cp_shape_check(ctx, &s), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "cp D = 17 out of range 1..16"));
    assert_int_equal(fnet_cp_shape_check(ctx, NULL), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "cp shape is NULL"));
    // sizes that overflow: the dense tensor, then the factors
    s = make_shape(3, (const int64_t[]){(int64_t)1 << 30, (int64_t)1 << 30, 1 << 10}, 2);
    assert_int_equal(fnet_cp_shape_check(ctx, &s), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "cp dims overflow at mode 2"));
    s = make_shape(1, (const int64_t[]){(int64_t)1 << 40}, (int64_t)1 << 40);
    assert_int_equal(fnet_cp_shape_check(ctx, &s), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "cp factors (rank 1099511627776"));
    // the largest D is fine
    s = make_shape(16, (const int64_t[]){2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2}, 3);
    fnet_assert_ok(ctx, fnet_cp_shape_check(ctx, &s));
    fnet_ctx_free(ctx);
}

static void test_cp_rejects_bad_arguments_with_messages(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    struct fnet_cp_shape s = make_shape(3, (const int64_t[]){2, 3, 4}, 2), bad = s;
    float X[24], f[18];
    fnet_test_fill_uniform(X, 24, -1.0f, 1.0f, 5);
    fnet_test_fill_uniform(f, 18, -1.0f, 1.0f, 6);
    struct fnet_cp_als_params p = als_params(5, 1e-6, 1), q;
    struct {
        int max_iters;
        double tol;
        const char *msg;
    } params[] = {
        {0, 1e-6, "cp_als: max_iters = 0 must be >= 1"},
        {-3, 1e-6, "cp_als: max_iters = -3 must be >= 1"},
        {5, -0.5, "cp_als: tol = -0.5 must be finite and >= 0"},
        {5, NAN, "cp_als: tol = nan must be finite and >= 0"},
        {5, INFINITY, "cp_als: tol = inf must be finite and >= 0"},
    };
    for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++) {
        q = als_params(params[i].max_iters, params[i].tol, 1);
        assert_int_equal(fnet_cp_als(ctx, X, &s, &q, f, NULL, NULL), FNET_ERR_INVALID_ARG);
        assert_non_null(strstr(fnet_ctx_last_error(ctx), params[i].msg));
    }
    bad.rank = 0;
    assert_int_equal(fnet_cp_als(ctx, X, &bad, &p, f, NULL, NULL), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "cp rank must be >= 1, got 0"));
    assert_int_equal(fnet_cp_full(ctx, &bad, f, X), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "cp rank must be >= 1, got 0"));
    bad = s;
    bad.dims[0] = 0;
    assert_int_equal(fnet_cp_als(ctx, X, &bad, &p, f, NULL, NULL), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "cp mode 0 has size 0"));
    assert_int_equal(fnet_cp_als(ctx, X, NULL, &p, f, NULL, NULL), FNET_ERR_INVALID_ARG);
    // NULL pointers
    assert_int_equal(fnet_cp_als(NULL, X, &s, &p, f, NULL, NULL), FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_cp_als(ctx, NULL, &s, &p, f, NULL, NULL), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "cp_als: NULL argument"));
    assert_int_equal(fnet_cp_als(ctx, X, &s, NULL, f, NULL, NULL), FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_cp_als(ctx, X, &s, &p, NULL, NULL, NULL), FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_cp_full(ctx, &s, NULL, X), FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_cp_full(ctx, &s, f, NULL), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "cp_full: NULL argument"));
    assert_int_equal(fnet_cp_full(NULL, &s, f, X), FNET_ERR_INVALID_ARG);
    // a non-finite X, named by its flat index; the factors are left alone
    float f0[18];
    memcpy(f0, f, sizeof(f));
    X[17] = NAN;
    assert_int_equal(fnet_cp_als(ctx, X, &s, &p, f, NULL, NULL), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "cp_als: X has a non-finite entry at [17]"));
    X[17] = 0.0f;
    X[23] = -INFINITY;
    assert_int_equal(fnet_cp_als(ctx, X, &s, &p, f, NULL, NULL), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "non-finite entry at [23]"));
    assert_memory_equal(f, f0, sizeof(f));
    fnet_ctx_free(ctx);
}

// ---- out of memory ----

// Fail the k-th allocation for k = 1, 2, .. until the call succeeds: each failure is
// FNET_ERR_OUT_OF_MEMORY with no leak (ASan), then the result is the one without injection.
static void test_cp_algebra_reports_out_of_memory_at_every_allocation(void **state)
{
    struct fnet_cp_shape s = make_shape(4, (const int64_t[]){3, 4, 2, 3}, 3);
    const int64_t N = numel(&s), np = fnet_cp_num_params(&s);
    for (int b = 0; b < N_BACKENDS; b++) {
        fnet_ctx *ctx = fnet_test_ctx(backend_defaults[b]);
        float *truth = random_factors(&s, 180);
        float *X = full(ctx, &s, truth);
        float *W = test_malloc((size_t)N * sizeof(float));
        float *f = test_malloc((size_t)np * sizeof(float));
        float *f0 = test_malloc((size_t)np * sizeof(float));
        // tol > 0 takes the per-sweep fit too
        struct fnet_cp_als_params p = als_params(2, 1e-9, 3);
        double fit0 = 0.0, fit = 0.0;
        fnet_assert_ok(ctx, fnet_cp_als(ctx, X, &s, &p, f0, &fit0, NULL));
        for (int op = 0; op < 2; op++) {
            fnet_status st;
            long k = 1;
            for (;; k++) {
                fnet_debug_fail_alloc(k);
                st = op == 0 ? fnet_cp_full(ctx, &s, truth, W)
                             : fnet_cp_als(ctx, X, &s, &p, f, &fit, NULL);
                fnet_debug_fail_alloc(0);
                if (st == FNET_OK)
                    break;
                assert_int_equal(st, FNET_ERR_OUT_OF_MEMORY);
                assert_true(k < 500);
            }
            if (op == 0) {
                assert_int_equal(k, 2); // one workspace
                assert_memory_equal(W, X, (size_t)N * sizeof(float));
            } else {
                assert_true(k > 3); // the workspace and the SVDs' own
                assert_memory_equal(f, f0, (size_t)np * sizeof(float));
                assert_true(fit == fit0);
            }
        }
        test_free(f0);
        test_free(f);
        test_free(W);
        test_free(X);
        test_free(truth);
        fnet_ctx_free(ctx);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cp_num_params_counts_every_factor),
        cmocka_unit_test(test_cp_full_matches_sum_of_outer_products),
        cmocka_unit_test(test_cp_als_recovers_exact_rank_from_random_start),
        cmocka_unit_test(test_cp_als_stops_early_when_the_fit_settles),
        cmocka_unit_test(test_cp_als_fit_never_decreases_on_random_data),
        cmocka_unit_test(test_cp_als_cpu_matches_reference),
        cmocka_unit_test(test_cp_als_zero_tensor_and_one_mode),
        cmocka_unit_test(test_cp_als_reports_non_finite_factors),
        cmocka_unit_test(test_cp_shape_check_rejects_bad_shapes_with_messages),
        cmocka_unit_test(test_cp_rejects_bad_arguments_with_messages),
        cmocka_unit_test(test_cp_algebra_reports_out_of_memory_at_every_allocation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
