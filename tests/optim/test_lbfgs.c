/* Tests of L-BFGS and the solver loop (src/optim/lbfgs.c, include/factornet/solver.h): the
 * chained Rosenbrock function in 2 and 100 dimensions within 1.2× SciPy's L-BFGS-B evaluations,
 * the same iterates as a dense double BFGS on a strictly convex quadratic (m ≥ n, exact line
 * searches), every line search, NaN at trial points, cancelling, every stop reason, bad input
 * with the vector left at the best point, history kept across calls, out-of-memory injection.
 * On the backend FNET_TEST_BACKEND names (else cpu); the objectives are host functions behind
 * fnet_test_on_backend (tests/common/objectives.h). */
#include "objectives.h"
#include "optim/solver.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// SciPy 1.10.1's L-BFGS-B (m = 10) on scipy.optimize.rosen from (-1.2, 1, -1.2, 1, ...): 44
// evaluations at n = 2, 619 at n = 100 (its own stopping rule; at n = 100 it stops at
// ‖g‖∞ = 1.4e-4). The issue allows 1.2 times as many to reach ‖g‖∞ ≤ 1e-4.
#define SCIPY_LBFGSB_N2 44
#define SCIPY_LBFGSB_N100 619
#define GTOL 1e-4
// L-BFGS (float) against dense BFGS (double) on the quadratic: iterates agree to this, relative
// to ‖x*‖∞.
#define BFGS_RTOL 1e-5

// ---------------------------------------------------------------------------------------------
// Objectives

// A strictly convex quadratic ½xᵀAx − bᵀx, A = Q·diag(λ)·Qᵀ (n ≤ QN), in double.
#define QN 10
struct quad {
    int n;
    double A[QN * QN], b[QN];
};

static void quad_init(struct quad *q, int n, double lmin, double lmax, uint64_t seed)
{
    q->n = n;
    float r[QN * QN];
    fnet_test_fill_uniform(r, (int64_t)n * n, -1.0f, 1.0f, seed);
    double Q[QN * QN];
    for (int i = 0; i < n * n; i++)
        Q[i] = r[i];
    // Gram-Schmidt (twice) on the columns of Q
    for (int pass = 0; pass < 2; pass++) {
        for (int j = 0; j < n; j++) {
            for (int k = 0; k < j; k++) {
                double d = 0.0;
                for (int i = 0; i < n; i++)
                    d += Q[i * n + j] * Q[i * n + k];
                for (int i = 0; i < n; i++)
                    Q[i * n + j] -= d * Q[i * n + k];
            }
            double nn = 0.0;
            for (int i = 0; i < n; i++)
                nn += Q[i * n + j] * Q[i * n + j];
            for (int i = 0; i < n; i++)
                Q[i * n + j] /= sqrt(nn);
        }
    }
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < n; j++) {
            double s = 0.0;
            for (int k = 0; k < n; k++) {
                double lk = lmin + (lmax - lmin) * k / (n - 1);
                s += Q[i * n + k] * lk * Q[j * n + k];
            }
            q->A[i * n + j] = s;
        }
    }
    float bf[QN];
    fnet_test_fill_uniform(bf, n, -1.0f, 1.0f, seed + 1);
    for (int i = 0; i < n; i++)
        q->b[i] = bf[i];
}

static fnet_status quad_objective(const float *x, int64_t n, double *f, float *g, void *user)
{
    const struct quad *q = user;
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double ax = 0.0;
        for (int64_t j = 0; j < n; j++)
            ax += q->A[i * n + j] * x[j];
        s += 0.5 * x[i] * ax - q->b[i] * x[i];
        g[i] = (float)(ax - q->b[i]);
    }
    *f = s;
    return FNET_OK;
}

// ---------------------------------------------------------------------------------------------

static void check_rosenbrock(int64_t n, int64_t max_evals_allowed)
{
    fnet_ctx *ctx = fnet_test_solver_ctx();
    float *x = malloc((size_t)n * sizeof(float));
    assert_non_null(x);
    fnet_test_rosen_start(x, n);
    fnet_optim_params p = fnet_optim_params_default(FNET_OPTIM_LBFGS);
    p.gtol = GTOL;
    fnet_solver_stats st;
    fnet_assert_ok(ctx, fnet_test_minimize(ctx, &p, n, x, fnet_test_rosenbrock, NULL, NULL, NULL,
                                           &st));
    print_message("L-BFGS (m = 10, Moré–Thuente) on Rosenbrock n = %lld: %lld evaluations, "
                  "%lld iterations, f = %.3g, |g|inf = %.3g (allowed: %lld evaluations)\n",
                  (long long)n, (long long)st.evaluations, (long long)st.iterations, st.f,
                  st.gnorm, (long long)max_evals_allowed);
    assert_int_equal(st.stop, FNET_SOLVER_GRADIENT);
    assert_true(st.gnorm <= GTOL);
    assert_true(st.evaluations <= max_evals_allowed);
    float *g = malloc((size_t)n * sizeof(float));
    double f;
    fnet_test_rosenbrock(x, n, &f, g, NULL);
    assert_true(f == st.f);
    for (int64_t i = 0; i < n; i++) {
        assert_true(fabsf(g[i]) <= GTOL);
        fnet_assert_close(x[i], 1.0, 0.0, 1e-4);
    }
    free(g);
    free(x);
    fnet_ctx_free(ctx);
}

static void test_rosenbrock_2d_within_scipy_budget(void **state)
{
    (void)state;
    check_rosenbrock(2, SCIPY_LBFGSB_N2 * 12 / 10);
}

static void test_rosenbrock_100d_within_scipy_budget(void **state)
{
    (void)state;
    check_rosenbrock(100, SCIPY_LBFGSB_N100 * 12 / 10);
}

// Every line search minimizes the 10-D Rosenbrock function; the strong Wolfe ones never skip
// a pair (their sᵀy > 0 is guaranteed).
static void test_every_line_search_converges(void **state)
{
    (void)state;
    fnet_ctx *ctx = fnet_test_solver_ctx();
    const fnet_line_search kinds[] = {FNET_LINESEARCH_MORE_THUENTE, FNET_LINESEARCH_STRONG_WOLFE,
                                      FNET_LINESEARCH_WOLFE, FNET_LINESEARCH_ARMIJO};
    for (int k = 0; k < 4; k++) {
        float x[10];
        fnet_test_rosen_start(x, 10);
        fnet_optim_params p = fnet_optim_params_default(FNET_OPTIM_LBFGS);
        p.gtol = GTOL;
        p.line_search = kinds[k];
        p.max_evals = 5000;
        fnet_solver_stats st;
        fnet_assert_ok(ctx, fnet_test_minimize(ctx, &p, 10, x, fnet_test_rosenbrock, NULL, NULL,
                                               NULL, &st));
        print_message("L-BFGS with %s on Rosenbrock n = 10: %lld evaluations, %lld skipped\n",
                      fnet_line_search_name(kinds[k]), (long long)st.evaluations,
                      (long long)st.skipped);
        assert_int_equal(st.stop, FNET_SOLVER_GRADIENT);
        if (kinds[k] != FNET_LINESEARCH_ARMIJO)
            assert_int_equal(st.skipped, 0);
    }
    fnet_ctx_free(ctx);
}

// ---------------------------------------------------------------------------------------------
// L-BFGS with m ≥ n against textbook BFGS (H0 = γ0·I after the first step, Nocedal & Wright
// eq. 6.20), both with exact line searches on a strictly convex quadratic: the iterates are the
// same (both are the conjugate-gradient iterates), and both reach the minimizer in n steps.

struct iterates {
    fnet_ctx *ctx; // of info->x
    int count;
    float x[QN + 4][QN];
};

static fnet_status record_iterate(const fnet_solver_info *info, void *user)
{
    struct iterates *it = user;
    if (it->count < QN + 4)
        fnet_assert_ok(it->ctx, fnet_backend_download(it->ctx, it->x[it->count], info->x,
                                                      (size_t)info->n * sizeof(float)));
    it->count++;
    return FNET_OK;
}

static int dense_bfgs(const struct quad *q, double xs[][QN], int max_iter)
{
    int n = q->n;
    double x[QN] = {0}, g[QN], H[QN * QN] = {0};
    bool have_h = false;
    for (int i = 0; i < n; i++)
        g[i] = -q->b[i];
    int k = 0;
    for (; k < max_iter; k++) {
        double d[QN], Ad[QN], gd = 0.0, dAd = 0.0;
        for (int i = 0; i < n; i++) {
            d[i] = -g[i];
            if (have_h) {
                d[i] = 0.0;
                for (int j = 0; j < n; j++)
                    d[i] -= H[i * n + j] * g[j];
            }
        }
        for (int i = 0; i < n; i++) {
            Ad[i] = 0.0;
            for (int j = 0; j < n; j++)
                Ad[i] += q->A[i * n + j] * d[j];
            gd += g[i] * d[i];
            dAd += d[i] * Ad[i];
        }
        double a = -gd / dAd, s[QN], y[QN], sy = 0.0, yy = 0.0;
        for (int i = 0; i < n; i++) {
            s[i] = a * d[i];
            y[i] = a * Ad[i];
            x[i] += s[i];
            g[i] += y[i];
            sy += s[i] * y[i];
            yy += y[i] * y[i];
            xs[k][i] = x[i];
        }
        if (!have_h) {
            for (int i = 0; i < n * n; i++)
                H[i] = i % (n + 1) == 0 ? sy / yy : 0.0;
            have_h = true;
        }
        // H = (I − ρsyᵀ)H(I − ρysᵀ) + ρssᵀ
        double rho = 1.0 / sy, Hy[QN], yHy = 0.0;
        for (int i = 0; i < n; i++) {
            Hy[i] = 0.0;
            for (int j = 0; j < n; j++)
                Hy[i] += H[i * n + j] * y[j];
            yHy += y[i] * Hy[i];
        }
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                H[i * n + j] += -rho * (s[i] * Hy[j] + Hy[i] * s[j]) +
                                (rho * rho * yHy + rho) * s[i] * s[j];
    }
    return k;
}

static void test_matches_dense_bfgs_on_a_quadratic(void **state)
{
    (void)state;
    fnet_ctx *ctx = fnet_test_solver_ctx();
    struct quad q;
    quad_init(&q, QN, 1.0, 10.0, 11);
    double xs[QN][QN];
    dense_bfgs(&q, xs, QN);
    double xmax = 0.0;
    for (int i = 0; i < QN; i++)
        xmax = fmax(xmax, fabs(xs[QN - 1][i]));

    for (int m = QN; m <= QN + 5; m += 5) {
        float x[QN] = {0};
        fnet_optim_params p = fnet_optim_params_default(FNET_OPTIM_LBFGS);
        p.history = m;
        p.c1 = 1e-5; // (nearly) exact line searches: the cubic fit of a quadratic is exact
        p.c2 = 1e-4;
        p.gtol = 1e-5;
        p.max_iter = QN + 4;
        struct iterates it = {.ctx = ctx};
        fnet_solver_stats st;
        fnet_assert_ok(ctx, fnet_test_minimize(ctx, &p, QN, x, quad_objective, &q, record_iterate,
                                               &it, &st));
        double worst = 0.0;
        for (int k = 0; k < QN && k < it.count; k++)
            for (int i = 0; i < QN; i++)
                worst = fmax(worst, fabs(it.x[k][i] - xs[k][i]) / xmax);
        print_message("L-BFGS m = %d on a %d-D quadratic: %lld iterations, %lld evaluations; "
                      "iterates within %.2g·‖x*‖∞ of dense BFGS\n",
                      m, QN, (long long)st.iterations, (long long)st.evaluations, worst);
        assert_int_equal(st.stop, FNET_SOLVER_GRADIENT);
        assert_true(st.iterations <= QN + 1);
        assert_true(it.count >= QN);
        for (int k = 0; k < QN; k++) {
            for (int i = 0; i < QN; i++) {
                if (fabs(it.x[k][i] - xs[k][i]) > BFGS_RTOL * xmax)
                    fail_msg("iterate %d, x[%d]: L-BFGS %.7g, BFGS %.7g", k + 1, i,
                             (double)it.x[k][i], xs[k][i]);
            }
        }
    }
    fnet_ctx_free(ctx);
}

// ---------------------------------------------------------------------------------------------

static void test_nan_at_trial_points_is_survived(void **state)
{
    (void)state;
    fnet_ctx *ctx = fnet_test_solver_ctx();
    for (int in_grad = 0; in_grad < 2; in_grad++) {
        for (int ls = 0; ls < 4; ls++) {
            float x[10];
            fnet_test_rosen_start(x, 10);
            struct fnet_test_wrap w = fnet_test_wrap_of(fnet_test_rosenbrock, NULL);
            w.nan_every = 7;
            w.nan_in_grad = in_grad;
            fnet_optim_params p = fnet_optim_params_default(FNET_OPTIM_LBFGS);
            p.gtol = GTOL;
            p.line_search = (fnet_line_search)ls;
            p.max_evals = 5000;
            fnet_solver_stats st;
            fnet_assert_ok(ctx, fnet_test_minimize(ctx, &p, 10, x, fnet_test_wrapped, &w, NULL,
                                                   NULL, &st));
            assert_int_equal(st.stop, FNET_SOLVER_GRADIENT);
            assert_true(st.nonfinite > 0);
            assert_true(isfinite(st.f));
            for (int i = 0; i < 10; i++)
                fnet_assert_close(x[i], 1.0, 0.0, 1e-3);
        }
    }
    fnet_ctx_free(ctx);
}

// NaN at the start point: FNET_ERR_NUMERIC, x untouched.
static void test_nan_at_start_is_numeric(void **state)
{
    (void)state;
    fnet_ctx *ctx = fnet_test_solver_ctx();
    float x[4] = {NAN, 1, 2, 3}, x0[4];
    memcpy(x0, x, sizeof(x));
    fnet_optim_params p = fnet_optim_params_default(FNET_OPTIM_LBFGS);
    fnet_solver_stats st;
    assert_int_equal(fnet_test_minimize(ctx, &p, 4, x, fnet_test_rosenbrock, NULL, NULL, NULL,
                                        &st),
                     FNET_ERR_NUMERIC);
    assert_int_equal(st.stop, FNET_SOLVER_ERROR);
    assert_int_equal(st.evaluations, 1);
    assert_memory_equal(x, x0, sizeof(x));
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "start point"));
    fnet_ctx_free(ctx);
}

struct cancel {
    fnet_ctx *ctx; // of info->x
    int at;
    fnet_status status;
    float x[10];
    double f;
};

static fnet_status cancel_at(const fnet_solver_info *info, void *user)
{
    struct cancel *c = user;
    assert_true(info->step > 0.0 && info->ls_evals >= 1 && info->n == 10);
    if (info->iteration < c->at)
        return FNET_OK;
    fnet_assert_ok(c->ctx, fnet_backend_download(c->ctx, c->x, info->x, sizeof(c->x)));
    c->f = info->f;
    return c->status;
}

static void test_progress_callback_cancels_with_its_status(void **state)
{
    (void)state;
    fnet_ctx *ctx = fnet_test_solver_ctx();
    const fnet_status statuses[] = {FNET_ERR_CANCELLED, FNET_ERR_IO};
    for (int k = 0; k < 2; k++) {
        float x[10];
        fnet_test_rosen_start(x, 10);
        struct cancel c = {.ctx = ctx, .at = 3, .status = statuses[k]};
        fnet_optim_params p = fnet_optim_params_default(FNET_OPTIM_LBFGS);
        fnet_solver_stats st;
        assert_int_equal(fnet_test_minimize(ctx, &p, 10, x, fnet_test_rosenbrock, NULL, cancel_at,
                                            &c, &st),
                         statuses[k]);
        assert_int_equal(st.stop, FNET_SOLVER_CANCELLED);
        assert_int_equal(st.iterations, 3);
        assert_memory_equal(x, c.x, sizeof(x)); // the iterate the callback saw
        assert_true(st.f == c.f && st.f < st.f0);
    }
    fnet_ctx_free(ctx);
}

// Bad settings and arguments: exact statuses, nothing allocated, x untouched.
static void expect_rejected(fnet_ctx *ctx, const fnet_optim_params *p, int64_t n,
                            const char *message)
{
    // four floats whatever n is, so that a bad n that reached them would show
    float x[4], x0[4] = {-1.2f, 1.0f, -1.2f, 1.0f};
    float *bx = fnet_test_upload(ctx, x0, 4);
    struct fnet_test_objective rosen = fnet_test_objective_of(ctx, fnet_test_rosenbrock, NULL);
    long before = fnet_debug_alloc_count();
    fnet_solver_stats st;
    fnet_status s = fnet_minimize(ctx, p, n, bx, fnet_test_on_backend, &rosen, NULL, NULL, &st);
    if (s != FNET_ERR_INVALID_ARG)
        fail_msg("\"%s\": expected FNET_ERR_INVALID_ARG, got %d", message, (int)s);
    assert_int_equal(fnet_debug_alloc_count(), before);
    fnet_assert_ok(ctx, fnet_backend_download(ctx, x, bx, sizeof(x)));
    fnet_backend_free(ctx, bx);
    assert_memory_equal(x, x0, sizeof(x));
    assert_int_equal(st.stop, FNET_SOLVER_ERROR);
    if (strstr(fnet_ctx_last_error(ctx), message) == NULL)
        fail_msg("last error \"%s\" does not say \"%s\"", fnet_ctx_last_error(ctx), message);
    fnet_solver *s_out = (fnet_solver *)&s_out;
    assert_int_equal(fnet_solver_create(ctx, p, n, &s_out), FNET_ERR_INVALID_ARG);
    assert_null(s_out);
}

static void test_bad_input_is_rejected(void **state)
{
    (void)state;
    fnet_ctx *ctx = fnet_test_solver_ctx();
    fnet_optim_params p = fnet_optim_params_default(FNET_OPTIM_LBFGS);
    p.history = 0;
    expect_rejected(ctx, &p, 4, "history (m) must be at least 1, got 0");
    p = fnet_optim_params_default(FNET_OPTIM_LBFGS);
    p.c1 = 0.9, p.c2 = 0.9;
    expect_rejected(ctx, &p, 4, "c1 must be smaller than c2");
    p.c1 = 0.5, p.c2 = 0.1;
    expect_rejected(ctx, &p, 4, "c1 must be smaller than c2");
    p.c1 = 0.0, p.c2 = 0.9;
    expect_rejected(ctx, &p, 4, "c1 and c2 must be in (0, 1)");
    p.c1 = 1e-4, p.c2 = 1.0;
    expect_rejected(ctx, &p, 4, "c1 and c2 must be in (0, 1)");
    p.c1 = NAN, p.c2 = 0.9;
    expect_rejected(ctx, &p, 4, "c1 and c2 must be in (0, 1)");
    p = fnet_optim_params_default(FNET_OPTIM_LBFGS);
    expect_rejected(ctx, &p, 0, "n must be at least 1, got 0");
    expect_rejected(ctx, &p, -3, "n must be at least 1");
    p.max_linesearch = 0;
    expect_rejected(ctx, &p, 4, "max_linesearch");
    p = fnet_optim_params_default(FNET_OPTIM_LBFGS);
    p.gtol = -1.0;
    expect_rejected(ctx, &p, 4, "gtol");
    p = fnet_optim_params_default(FNET_OPTIM_LBFGS);
    p.past = -1;
    expect_rejected(ctx, &p, 4, "past and delta");
    p = fnet_optim_params_default(FNET_OPTIM_LBFGS);
    p.max_evals = -1;
    expect_rejected(ctx, &p, 4, "max_iter and max_evals");
    p = fnet_optim_params_default(FNET_OPTIM_LBFGS);
    p.min_step = 0.0;
    expect_rejected(ctx, &p, 4, "step bounds");
    p = fnet_optim_params_default(FNET_OPTIM_LBFGS);
    p.line_search = (fnet_line_search)7;
    expect_rejected(ctx, &p, 4, "not a line search");
    p = fnet_optim_params_default(FNET_OPTIM_ADAM);
    expect_rejected(ctx, &p, 4, "kind adam is not a solver");

    // NULL arguments
    p = fnet_optim_params_default(FNET_OPTIM_LBFGS);
    float *x = fnet_test_upload(ctx, (const float[4]){0}, 4);
    struct fnet_test_objective rosen = fnet_test_objective_of(ctx, fnet_test_rosenbrock, NULL);
    fnet_objective_fn fn = fnet_test_on_backend;
    assert_int_equal(fnet_minimize(ctx, &p, 4, NULL, fn, &rosen, NULL, NULL, NULL),
                     FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_minimize(ctx, &p, 4, x, NULL, NULL, NULL, NULL, NULL),
                     FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_minimize(ctx, NULL, 4, x, fn, &rosen, NULL, NULL, NULL),
                     FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_minimize(NULL, &p, 4, x, fn, &rosen, NULL, NULL, NULL),
                     FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_solver_create(ctx, &p, 4, NULL), FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_solver_minimize(NULL, x, fn, &rosen, NULL, NULL, NULL),
                     FNET_ERR_INVALID_ARG);
    fnet_solver_free(NULL);
    fnet_solver_reset(NULL);
    fnet_backend_free(ctx, x);
    fnet_ctx_free(ctx);
}

// The objective fails at its k-th call, for many k: its status comes back, and x holds the best
// point found, never worse than the start and never a point the objective did not value.
static void test_objective_error_leaves_the_best_point(void **state)
{
    (void)state;
    fnet_ctx *ctx = fnet_test_solver_ctx();
    for (int k = 1; k <= 40; k++) {
        float x[10];
        fnet_test_rosen_start(x, 10);
        double f0 = fnet_test_f_at(fnet_test_rosenbrock, NULL, x, 10);
        struct fnet_test_wrap w = fnet_test_wrap_of(fnet_test_rosenbrock, NULL);
        w.fail_at = k;
        w.fail_status = FNET_ERR_IO;
        fnet_optim_params p = fnet_optim_params_default(FNET_OPTIM_LBFGS);
        fnet_solver_stats st;
        assert_int_equal(fnet_test_minimize(ctx, &p, 10, x, fnet_test_wrapped, &w, NULL, NULL,
                                            &st),
                         FNET_ERR_IO);
        assert_int_equal(st.stop, FNET_SOLVER_ERROR);
        double f = fnet_test_f_at(fnet_test_rosenbrock, NULL, x, 10);
        assert_true(f <= f0);
        if (k > 1) {
            assert_true(f == w.best_f); // the lowest value the objective returned
            assert_true(f == st.f);
        }
    }
    fnet_ctx_free(ctx);
}

static void test_each_stop_reason(void **state)
{
    (void)state;
    fnet_ctx *ctx = fnet_test_solver_ctx();
    float x[10];
    fnet_solver_stats st;
    fnet_optim_params p = fnet_optim_params_default(FNET_OPTIM_LBFGS);

    fnet_test_rosen_start(x, 10);
    p.max_iter = 5;
    fnet_assert_ok(ctx, fnet_test_minimize(ctx, &p, 10, x, fnet_test_rosenbrock, NULL, NULL, NULL,
                                           &st));
    assert_int_equal(st.stop, FNET_SOLVER_MAX_ITER);
    assert_int_equal(st.iterations, 5);
    assert_true(st.f < st.f0);

    fnet_test_rosen_start(x, 10);
    p = fnet_optim_params_default(FNET_OPTIM_LBFGS);
    p.max_evals = 17;
    fnet_assert_ok(ctx, fnet_test_minimize(ctx, &p, 10, x, fnet_test_rosenbrock, NULL, NULL, NULL,
                                           &st));
    assert_int_equal(st.stop, FNET_SOLVER_MAX_EVALS);
    assert_true(st.evaluations <= 17);
    assert_true(fnet_test_f_at(fnet_test_rosenbrock, NULL, x, 10) == st.f);

    fnet_test_rosen_start(x, 10);
    p = fnet_optim_params_default(FNET_OPTIM_LBFGS);
    p.past = 3;
    p.delta = 1e-3;
    fnet_assert_ok(ctx, fnet_test_minimize(ctx, &p, 10, x, fnet_test_rosenbrock, NULL, NULL, NULL,
                                           &st));
    assert_int_equal(st.stop, FNET_SOLVER_DECREASE);
    assert_true(st.iterations >= 3);

    // already minimized: no iteration
    for (int i = 0; i < 10; i++)
        x[i] = 1.0f;
    p = fnet_optim_params_default(FNET_OPTIM_LBFGS);
    fnet_assert_ok(ctx, fnet_test_minimize(ctx, &p, 10, x, fnet_test_rosenbrock, NULL, NULL, NULL,
                                           &st));
    assert_int_equal(st.stop, FNET_SOLVER_GRADIENT);
    assert_int_equal(st.iterations, 0);
    assert_int_equal(st.evaluations, 1);

    // gtol = 0 on a float problem: it runs until no step along −g decreases f any more
    fnet_test_rosen_start(x, 2);
    p.gtol = 0.0;
    fnet_assert_ok(ctx, fnet_test_minimize(ctx, &p, 2, x, fnet_test_rosenbrock, NULL, NULL, NULL,
                                           &st));
    assert_true(st.stop == FNET_SOLVER_LINESEARCH || st.stop == FNET_SOLVER_GRADIENT);
    assert_true(st.f < 1e-10);

    for (int s = 0; s <= FNET_SOLVER_ERROR; s++)
        assert_true(strlen(fnet_solver_stop_str((fnet_solver_stop)s)) > 3);
    assert_string_equal(fnet_solver_stop_str((fnet_solver_stop)42), "unknown stop reason");
    fnet_ctx_free(ctx);
}

// A solver object keeps its history across calls: five calls of 20 iterations end where one
// call of 100 would (to the gradient tolerance), and reset forgets.
static void test_history_is_kept_across_calls(void **state)
{
    (void)state;
    fnet_ctx *ctx = fnet_test_solver_ctx();
    fnet_optim_params p = fnet_optim_params_default(FNET_OPTIM_LBFGS);
    p.gtol = GTOL;
    p.max_iter = 20;
    fnet_solver *s = NULL;
    fnet_assert_ok(ctx, fnet_solver_create(ctx, &p, 100, &s));
    struct fnet_test_objective rosen = fnet_test_objective_of(ctx, fnet_test_rosenbrock, NULL);
    float start[100];
    fnet_test_rosen_start(start, 100);
    float *x = fnet_test_upload(ctx, start, 100); // stays in backend memory from call to call
    fnet_solver_stats st;
    int64_t evals = 0;
    for (int call = 0; call < 100; call++) {
        fnet_assert_ok(ctx, fnet_solver_minimize(s, x, fnet_test_on_backend, &rosen, NULL, NULL,
                                                 &st));
        evals += st.evaluations;
        if (st.stop == FNET_SOLVER_GRADIENT)
            break;
        assert_int_equal(st.stop, FNET_SOLVER_MAX_ITER);
    }
    assert_int_equal(st.stop, FNET_SOLVER_GRADIENT);
    print_message("L-BFGS in calls of 20 iterations on Rosenbrock n = 100: %lld evaluations\n",
                  (long long)evals);
    assert_true(evals <= SCIPY_LBFGSB_N100 * 12 / 10 + 40);
    // after a reset the first step is steepest descent again: one call of one iteration from
    // the start costs what a fresh solver's does
    fnet_solver_reset(s);
    fnet_assert_ok(ctx, fnet_backend_upload(ctx, x, start, sizeof(start)));
    p.max_iter = 1;
    fnet_solver *fresh = NULL;
    fnet_assert_ok(ctx, fnet_solver_create(ctx, &p, 100, &fresh));
    float *x2 = fnet_test_upload(ctx, start, 100);
    fnet_solver_stats st2;
    s->p.max_iter = 1;
    fnet_assert_ok(ctx, fnet_solver_minimize(s, x, fnet_test_on_backend, &rosen, NULL, NULL, &st));
    fnet_assert_ok(ctx, fnet_solver_minimize(fresh, x2, fnet_test_on_backend, &rosen, NULL, NULL,
                                             &st2));
    float *hx = fnet_test_download(ctx, x, 100), *hx2 = fnet_test_download(ctx, x2, 100);
    assert_memory_equal(hx, hx2, 100 * sizeof(float));
    assert_int_equal(st.evaluations, st2.evaluations);
    free(hx);
    free(hx2);
    fnet_backend_free(ctx, x);
    fnet_backend_free(ctx, x2);
    fnet_solver_free(fresh);
    fnet_solver_free(s);
    fnet_ctx_free(ctx);
}

// Fail the k-th allocation of create (and of the one-call minimize) for every k: out of memory,
// x untouched, nothing leaked (ASan), until k passes the allocations made.
static void test_out_of_memory_at_every_allocation(void **state)
{
    (void)state;
    fnet_ctx *ctx = fnet_test_solver_ctx();
    struct fnet_test_objective rosen = fnet_test_objective_of(ctx, fnet_test_rosenbrock, NULL);
    const fnet_optim_kind kinds[] = {FNET_OPTIM_LBFGS, FNET_OPTIM_CG};
    for (int kk = 0; kk < 2; kk++) {
        fnet_optim_params p = fnet_optim_params_default(kinds[kk]);
        p.past = 2;
        for (int entry = 0; entry < 2; entry++) {
            int failures = 0;
            for (long k = 1;; k++) {
                const float x0[4] = {-1.2f, 1.0f, -1.2f, 1.0f};
                float *x = fnet_test_upload(ctx, x0, 4), hx[4]; // before the failing countdown
                fnet_solver *s = NULL;
                fnet_debug_fail_alloc(k);
                fnet_status st = entry == 0
                                     ? fnet_solver_create(ctx, &p, 4, &s)
                                     : fnet_minimize(ctx, &p, 4, x, fnet_test_on_backend, &rosen,
                                                     NULL, NULL, NULL);
                fnet_debug_fail_alloc(0);
                fnet_assert_ok(ctx, fnet_backend_download(ctx, hx, x, sizeof(hx)));
                fnet_backend_free(ctx, x);
                if (st == FNET_OK) {
                    fnet_solver_free(s);
                    break;
                }
                assert_int_equal(st, FNET_ERR_OUT_OF_MEMORY);
                assert_null(s);
                assert_memory_equal(hx, x0, sizeof(hx));
                failures++;
                assert_true(k < 20);
            }
            assert_true(failures >= 3);
        }
    }
    fnet_ctx_free(ctx);
}

// No allocation once the solver exists: minimize allocates nothing.
static void test_minimize_never_allocates(void **state)
{
    (void)state;
    fnet_ctx *ctx = fnet_test_solver_ctx();
    fnet_optim_params p = fnet_optim_params_default(FNET_OPTIM_LBFGS);
    p.past = 3;
    fnet_solver *s = NULL;
    fnet_assert_ok(ctx, fnet_solver_create(ctx, &p, 10, &s));
    float start[10];
    fnet_test_rosen_start(start, 10);
    float *x = fnet_test_upload(ctx, start, 10);
    struct fnet_test_objective rosen = fnet_test_objective_of(ctx, fnet_test_rosenbrock, NULL);
    long before = fnet_debug_alloc_count();
    fnet_assert_ok(ctx, fnet_solver_minimize(s, x, fnet_test_on_backend, &rosen, NULL, NULL, NULL));
    assert_int_equal(fnet_debug_alloc_count(), before);
    fnet_backend_free(ctx, x);
    fnet_solver_free(s);
    fnet_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rosenbrock_2d_within_scipy_budget),
        cmocka_unit_test(test_rosenbrock_100d_within_scipy_budget),
        cmocka_unit_test(test_every_line_search_converges),
        cmocka_unit_test(test_matches_dense_bfgs_on_a_quadratic),
        cmocka_unit_test(test_nan_at_trial_points_is_survived),
        cmocka_unit_test(test_nan_at_start_is_numeric),
        cmocka_unit_test(test_progress_callback_cancels_with_its_status),
        cmocka_unit_test(test_bad_input_is_rejected),
        cmocka_unit_test(test_objective_error_leaves_the_best_point),
        cmocka_unit_test(test_each_stop_reason),
        cmocka_unit_test(test_history_is_kept_across_calls),
        cmocka_unit_test(test_out_of_memory_at_every_allocation),
        cmocka_unit_test(test_minimize_never_allocates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
