/* Tests of the line searches (src/optim/linesearch.c): at every step a search accepts, its
 * conditions hold (strong Wolfe for Moré–Thuente and backtracking strong Wolfe, Wolfe, Armijo),
 * rechecked independently in double, on Moré & Thuente's six test functions (ACM TOMS 1994,
 * section 5) from four initial steps and on n-dimensional functions; a NaN region is survived;
 * the objective's error and the evaluation limits are reported; the name parsers. The searches
 * run on the backend FNET_TEST_BACKEND names (else reference or cpu, as each test says). */
#include "objectives.h"
#include "optim/solver.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Slack on the rechecked conditions: f and dᵀg are recomputed from the same float point, so
// only the dot product's summation order differs.
#define COND_RTOL 1e-9
#define PI 3.14159265358979323846

static const fnet_line_search all_ls[] = {
    FNET_LINESEARCH_MORE_THUENTE,
    FNET_LINESEARCH_STRONG_WOLFE,
    FNET_LINESEARCH_WOLFE,
    FNET_LINESEARCH_ARMIJO,
};
#define NUM_LS 4

// ---------------------------------------------------------------------------------------------
// Moré & Thuente's one-dimensional functions φ(α), as objectives of n = 1 with x = α.

struct mt_fn {
    int which;
    double beta, beta1, beta2;
};

static double gamma_of(double b)
{
    return sqrt(1.0 + b * b) - b;
}

static fnet_status mt_objective(const float *x, int64_t n, double *f, float *g, void *user)
{
    (void)n;
    const struct mt_fn *p = user;
    double a = x[0], v, dv;
    switch (p->which) {
    case 1: // −α/(α² + β)
        v = -a / (a * a + p->beta);
        dv = (a * a - p->beta) / ((a * a + p->beta) * (a * a + p->beta));
        break;
    case 2: // (α + β)^5 − 2(α + β)^4
        v = pow(a + p->beta, 5) - 2.0 * pow(a + p->beta, 4);
        dv = 5.0 * pow(a + p->beta, 4) - 8.0 * pow(a + p->beta, 3);
        break;
    case 3: { // φ0(α) + 2(1 − β)/(lπ)·sin(lπα/2), l = 39
        const double l = 39.0, b = p->beta;
        double v0, d0;
        if (a <= 1.0 - b) {
            v0 = 1.0 - a;
            d0 = -1.0;
        } else if (a >= 1.0 + b) {
            v0 = a - 1.0;
            d0 = 1.0;
        } else {
            v0 = (a - 1.0) * (a - 1.0) / (2.0 * b) + b / 2.0;
            d0 = (a - 1.0) / b;
        }
        v = v0 + 2.0 * (1.0 - b) / (l * PI) * sin(l * PI * a / 2.0);
        dv = d0 + (1.0 - b) * cos(l * PI * a / 2.0);
        break;
    }
    default: { // γ(β1)·√((1 − α)² + β2²) + γ(β2)·√(α² + β1²)
        double g1 = gamma_of(p->beta1), g2 = gamma_of(p->beta2);
        double r1 = sqrt((1.0 - a) * (1.0 - a) + p->beta2 * p->beta2);
        double r2 = sqrt(a * a + p->beta1 * p->beta1);
        v = g1 * r1 + g2 * r2;
        dv = -g1 * (1.0 - a) / r1 + g2 * a / r2;
        break;
    }
    }
    *f = v;
    g[0] = (float)dv;
    return FNET_OK;
}

// ---------------------------------------------------------------------------------------------
// n-dimensional functions: the chained Rosenbrock function (tests/common/objectives.c) and a
// diagonal quadratic with a NaN region.

// ½Σ (i+1)(x_i − 1)², NaN wherever some x_i > 3
static fnet_status nan_quadratic(const float *x, int64_t n, double *f, float *g, void *user)
{
    (void)user;
    double s = 0.0;
    bool bad = false;
    for (int64_t i = 0; i < n; i++) {
        double c = (double)(i + 1), t = (double)x[i] - 1.0;
        s += 0.5 * c * t * t;
        g[i] = (float)(c * t);
        bad = bad || x[i] > 3.0f;
    }
    *f = bad ? NAN : s;
    return FNET_OK;
}

static fnet_status failing(const float *x, int64_t n, double *f, float *g, void *user)
{
    int *calls = user;
    (*calls)++;
    if (*calls >= 2)
        return FNET_ERR_IO;
    return nan_quadratic(x, n, f, g, NULL);
}

// ---------------------------------------------------------------------------------------------

// A search from xp along d of the host objective fn. The test writes xp and d on the host;
// case_start uploads them, and the search runs on backend memory (bxp, bd, bx, bg) with fn
// behind fnet_test_on_backend.
struct ls_case {
    fnet_ctx *ctx;
    fnet_optim_params p;
    int64_t n;
    float *xp, *d, *g0;        // host
    float *bxp, *bd, *bx, *bg; // backend
    double f0, dg0;
    fnet_objective_fn fn; // a host objective
    void *user;
    struct fnet_test_objective obj; // fn on backend memory
};

static void case_init(struct ls_case *c, fnet_ctx *ctx, int64_t n, fnet_objective_fn fn,
                      void *user)
{
    memset(c, 0, sizeof(*c));
    c->ctx = ctx;
    c->p = fnet_optim_params_default(FNET_OPTIM_LBFGS);
    c->n = n;
    c->fn = fn;
    c->user = user;
    c->obj = fnet_test_objective_of(ctx, fn, user);
    c->xp = calloc((size_t)n, sizeof(float));
    c->d = calloc((size_t)n, sizeof(float));
    c->g0 = calloc((size_t)n, sizeof(float));
    assert_true(c->xp && c->d && c->g0);
    c->bxp = fnet_test_upload(ctx, c->xp, n);
    c->bd = fnet_test_upload(ctx, c->d, n);
    c->bx = fnet_test_upload(ctx, c->xp, n);
    c->bg = fnet_test_upload(ctx, c->g0, n);
}

static void case_free(struct ls_case *c)
{
    free(c->xp), free(c->d), free(c->g0);
    fnet_backend_free(c->ctx, c->bxp);
    fnet_backend_free(c->ctx, c->bd);
    fnet_backend_free(c->ctx, c->bx);
    fnet_backend_free(c->ctx, c->bg);
}

static double ddot(int64_t n, const float *a, const float *b)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++)
        s += (double)a[i] * (double)b[i];
    return s;
}

// f0, g0 and dg0 at xp along d; xp and d go to backend memory
static void case_start(struct ls_case *c)
{
    size_t bytes = (size_t)c->n * sizeof(float);
    fnet_assert_ok(c->ctx, fnet_backend_upload(c->ctx, c->bxp, c->xp, bytes));
    fnet_assert_ok(c->ctx, fnet_backend_upload(c->ctx, c->bd, c->d, bytes));
    assert_int_equal(c->fn(c->xp, c->n, &c->f0, c->g0, c->user), FNET_OK);
    c->dg0 = ddot(c->n, c->g0, c->d);
    assert_true(c->dg0 < 0.0);
}

static enum ls_outcome case_run(struct ls_case *c, double step, struct fnet_ls *ls)
{
    memset(ls, 0, sizeof(*ls));
    ls->ctx = c->ctx;
    ls->p = &c->p;
    ls->n = c->n;
    ls->xp = c->bxp;
    ls->d = c->bd;
    ls->f0 = c->f0;
    ls->dg0 = c->dg0;
    ls->fn = fnet_test_on_backend;
    ls->user = &c->obj;
    ls->budget = -1;
    ls->x = c->bx;
    ls->g = c->bg;
    ls->step = step;
    return fnet_linesearch(ls);
}

// The accepted point, rechecked independently: it is xp + step·d, its f and g are the
// objective's, and the conditions of the search kind hold.
static void check_accepted(struct ls_case *c, const struct fnet_ls *ls, const char *what)
{
    float *bxr = fnet_test_upload(c->ctx, NULL, c->n);
    fnet_ls_trial(c->ctx, c->n, bxr, c->bxp, c->bd, ls->step);
    float *xr = fnet_test_download(c->ctx, bxr, c->n), *x = fnet_test_download(c->ctx, c->bx, c->n);
    float *gr = malloc((size_t)c->n * sizeof(float));
    assert_non_null(gr);
    assert_memory_equal(xr, x, (size_t)c->n * sizeof(float));
    double f;
    assert_int_equal(c->fn(xr, c->n, &f, gr, c->user), FNET_OK);
    assert_true(f == ls->f);
    double dg = ddot(c->n, gr, c->d), slack = COND_RTOL * fabs(c->dg0);
    const fnet_optim_params *p = &c->p;
    bool armijo = f <= c->f0 + p->c1 * ls->step * c->dg0 + COND_RTOL * fabs(c->f0);
    bool wolfe = dg >= p->c2 * c->dg0 - slack;
    bool strong = fabs(dg) <= p->c2 * fabs(c->dg0) + slack;
    bool ok = armijo;
    if (p->line_search == FNET_LINESEARCH_WOLFE)
        ok = ok && wolfe;
    if (p->line_search == FNET_LINESEARCH_MORE_THUENTE ||
        p->line_search == FNET_LINESEARCH_STRONG_WOLFE)
        ok = ok && strong;
    if (!ok)
        fail_msg("%s, %s: step %g f %.17g (f0 %.17g) dg %.6g (dg0 %.6g): armijo %d wolfe %d "
                 "strong %d",
                 what, fnet_line_search_name(p->line_search), ls->step, f, c->f0, dg, c->dg0,
                 armijo, wolfe, strong);
    fnet_backend_free(c->ctx, bxr);
    free(xr), free(x), free(gr);
}

static void test_conditions_hold_on_more_thuente_functions(void **state)
{
    (void)state;
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_REFERENCE);
    // the six functions with their constants; c1, c2 as in the paper (μ, η), except that
    // functions 4-6 use c1 = 1e-4 < c2 = 1e-3 where the paper has μ = η = 1e-3
    const struct mt_fn fns[6] = {
        {1, 2.0, 0, 0},       {2, 0.004, 0, 0},          {3, 0.01, 0, 0},
        {4, 0, 0.001, 0.001}, {5, 0, 0.01, 0.001},       {6, 0, 0.001, 0.01},
    };
    const double c1[6] = {1e-3, 0.1, 0.1, 1e-4, 1e-4, 1e-4};
    const double c2[6] = {0.1, 0.1, 0.1, 1e-3, 1e-3, 1e-3};
    const double steps[4] = {1e-3, 1e-1, 1e1, 1e3};
    int mt_converged = 0;
    for (int k = 0; k < NUM_LS; k++) {
        for (int f = 0; f < 6; f++) {
            for (int s = 0; s < 4; s++) {
                struct ls_case c;
                struct mt_fn fn = fns[f];
                case_init(&c, ctx, 1, mt_objective, &fn);
                c.p.line_search = all_ls[k];
                c.p.c1 = c1[f];
                c.p.c2 = c2[f];
                c.p.max_linesearch = 60;
                c.xp[0] = 0.0f;
                c.d[0] = 1.0f;
                case_start(&c);
                struct fnet_ls ls;
                enum ls_outcome o = case_run(&c, steps[s], &ls);
                char what[64];
                snprintf(what, sizeof(what), "function %d from step %g", fn.which, steps[s]);
                if (o == LS_OK)
                    check_accepted(&c, &ls, what);
                // Moré–Thuente finds an acceptable step on every one of them
                // Moré–Thuente finds an acceptable step on every one of them but function 2,
                // whose φ'(0) = −5.1e-7 asks for |φ'| ≤ 5.1e-8: a window of ±2.5e-9 around
                // α* = 1.596, where floats are 1.2e-7 apart. There it reports rounding errors
                // with its best step within one float of α*.
                if (all_ls[k] == FNET_LINESEARCH_MORE_THUENTE) {
                    if (fn.which == 2) {
                        assert_int_equal(o, LS_ROUNDING);
                        fnet_assert_close(ls.best_step, 1.596, 0.0, 1.2e-7);
                    } else if (o != LS_OK) {
                        fail_msg("%s: Moré–Thuente returned '%s'", what, fnet_ls_outcome_str(o));
                    } else {
                        mt_converged++;
                    }
                }
                assert_true(ls.evals >= 1 && ls.evals <= c.p.max_linesearch);
                case_free(&c);
            }
        }
    }
    assert_int_equal(mt_converged, 20);
    fnet_ctx_free(ctx);
}

// The searches along steepest descent and along a poorly scaled direction of the chained
// Rosenbrock function in 10 dimensions, from many points: every accepted step checked.
static void test_conditions_hold_on_rosenbrock(void **state)
{
    (void)state;
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    const int64_t n = 10;
    for (int k = 0; k < NUM_LS; k++) {
        int accepted = 0;
        for (int trial = 0; trial < 20; trial++) {
            struct ls_case c;
            case_init(&c, ctx, n, fnet_test_rosenbrock, NULL);
            c.p.line_search = all_ls[k];
            fnet_test_fill_uniform(c.xp, n, -2.0f, 2.0f, 100 + (uint64_t)trial);
            float *gx = malloc((size_t)n * sizeof(float));
            double fx;
            fnet_test_rosenbrock(c.xp, n, &fx, gx, NULL);
            for (int64_t i = 0; i < n; i++) // −g, every other component scaled down
                c.d[i] = -gx[i] * (trial % 2 && i % 2 ? 0.01f : 1.0f);
            free(gx);
            case_start(&c);
            struct fnet_ls ls;
            if (case_run(&c, 1.0, &ls) == LS_OK) {
                check_accepted(&c, &ls, "rosenbrock");
                accepted++;
            }
            case_free(&c);
        }
        // the steps are badly scaled (|g| ~ 1e3), but every kind accepts almost all
        if (accepted < 18)
            fail_msg("%s accepted only %d of 20", fnet_line_search_name(all_ls[k]), accepted);
    }
    fnet_ctx_free(ctx);
}

// A first step into a NaN region shrinks until it is out of it, and the accepted step is a
// proper one; the count of non-finite trials is reported.
static void test_nan_at_trial_point_shrinks_the_step(void **state)
{
    (void)state;
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    for (int k = 0; k < NUM_LS; k++) {
        struct ls_case c;
        case_init(&c, ctx, 4, nan_quadratic, NULL);
        c.p.line_search = all_ls[k];
        for (int i = 0; i < 4; i++)
            c.d[i] = 1.0f; // from 0 toward 1, NaN beyond 3
        case_start(&c);
        struct fnet_ls ls;
        enum ls_outcome o = case_run(&c, 1000.0, &ls);
        if (o != LS_OK)
            fail_msg("%s: '%s' after a NaN", fnet_line_search_name(all_ls[k]),
                     fnet_ls_outcome_str(o));
        assert_true(ls.nonfinite >= 1);
        assert_true(isfinite(ls.f) && ls.f < c.f0);
        check_accepted(&c, &ls, "NaN region");
        case_free(&c);
    }
    fnet_ctx_free(ctx);
}

static void test_objective_error_and_limits_are_reported(void **state)
{
    (void)state;
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    for (int k = 0; k < NUM_LS; k++) {
        int calls = 0;
        struct ls_case c;
        case_init(&c, ctx, 3, failing, &calls);
        c.p.line_search = all_ls[k];
        for (int i = 0; i < 3; i++)
            c.d[i] = 1.0f;
        case_start(&c); // call 1
        struct fnet_ls ls;
        // call 2 fails: the status comes back, with the best step still "none"
        assert_int_equal(case_run(&c, 1e3, &ls), LS_CALLBACK);
        assert_int_equal(ls.status, FNET_ERR_IO);
        assert_true(ls.best_step == 0.0);
        assert_non_null(strstr(fnet_ctx_last_error(ctx), "objective"));
        case_free(&c);

        // a budget of one evaluation, spent on a NaN: the evaluation limit
        case_init(&c, ctx, 3, nan_quadratic, NULL);
        c.p.line_search = all_ls[k];
        for (int i = 0; i < 3; i++)
            c.d[i] = 1.0f;
        case_start(&c);
        memset(&ls, 0, sizeof(ls));
        ls.ctx = ctx, ls.p = &c.p, ls.n = 3, ls.xp = c.bxp, ls.d = c.bd, ls.f0 = c.f0;
        ls.dg0 = c.dg0, ls.fn = fnet_test_on_backend, ls.user = &c.obj, ls.budget = 1;
        ls.x = c.bx, ls.g = c.bg, ls.step = 1e3;
        assert_int_equal(fnet_linesearch(&ls), LS_MAX_EVALS);
        assert_int_equal(ls.evals, 1);
        // max_linesearch = 1 with a first step that fails
        c.p.max_linesearch = 1;
        assert_int_equal(case_run(&c, 1e3, &ls), LS_MAX_EVALS);
        // not a descent direction
        c.dg0 = 1.0;
        assert_int_equal(case_run(&c, 1.0, &ls), LS_NOT_DESCENT);
        assert_int_equal(ls.evals, 0);
        case_free(&c);
    }
    fnet_ctx_free(ctx);
}

static void test_names_parse_and_print(void **state)
{
    (void)state;
    const char *ls_names[] = {"morethuente", "armijo", "wolfe", "strongwolfe"};
    for (int k = 0; k < 4; k++) {
        fnet_line_search ls;
        assert_int_equal(fnet_line_search_parse(ls_names[k], &ls), FNET_OK);
        assert_int_equal((int)ls, k);
        assert_string_equal(fnet_line_search_name(ls), ls_names[k]);
    }
    const char *betas[] = {"pr+", "fr", "hs", "dy"};
    for (int k = 0; k < 4; k++) {
        fnet_cg_beta b;
        assert_int_equal(fnet_cg_beta_parse(betas[k], &b), FNET_OK);
        assert_int_equal((int)b, k);
        assert_string_equal(fnet_cg_beta_name(b), betas[k]);
    }
    fnet_line_search ls;
    fnet_cg_beta b;
    assert_int_equal(fnet_line_search_parse("backtracking", &ls), FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_line_search_parse(NULL, &ls), FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_cg_beta_parse("pr", &b), FNET_ERR_INVALID_ARG);
    assert_string_equal(fnet_line_search_name((fnet_line_search)9), "unknown");
    assert_string_equal(fnet_cg_beta_name((fnet_cg_beta)-1), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conditions_hold_on_more_thuente_functions),
        cmocka_unit_test(test_conditions_hold_on_rosenbrock),
        cmocka_unit_test(test_nan_at_trial_point_shrinks_the_step),
        cmocka_unit_test(test_objective_error_and_limits_are_reported),
        cmocka_unit_test(test_names_parse_and_print),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
