/* Objectives of the solver tests: see objectives.h. */
#include "objectives.h"

#include <math.h>
#include <stdlib.h>

fnet_ctx *fnet_test_solver_ctx(void)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    fnet_assert_ok(ctx, fnet_ctx_set_threads(ctx, 1));
    return ctx;
}

fnet_status fnet_test_rosenbrock(const float *x, int64_t n, double *f, float *g, void *user)
{
    (void)user;
    double s = 0.0, carry = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double gi = carry;
        carry = 0.0;
        if (i + 1 < n) {
            double a = x[i], t = (double)x[i + 1] - a * a;
            s += 100.0 * t * t + (1.0 - a) * (1.0 - a);
            gi += -400.0 * a * t - 2.0 * (1.0 - a);
            carry = 200.0 * t;
        }
        g[i] = (float)gi;
    }
    *f = s;
    return FNET_OK;
}

void fnet_test_rosen_start(float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = i % 2 == 0 ? -1.2f : 1.0f;
}

struct fnet_test_wrap fnet_test_wrap_of(fnet_objective_fn fn, void *user)
{
    struct fnet_test_wrap w = {.fn = fn, .user = user, .best_f = INFINITY};
    return w;
}

fnet_status fnet_test_wrapped(const float *x, int64_t n, double *f, float *g, void *user)
{
    struct fnet_test_wrap *w = user;
    w->calls++;
    if (w->fail_at > 0 && w->calls >= w->fail_at)
        return w->fail_status;
    fnet_status st = w->fn(x, n, f, g, w->user);
    if (w->nan_every > 0 && w->calls > 1 && (w->calls + w->nan_phase) % w->nan_every == 0) {
        if (w->nan_in_grad)
            g[0] = NAN;
        else
            *f = NAN;
        return st;
    }
    if (isfinite(*f) && *f < w->best_f)
        w->best_f = *f;
    return st;
}

struct fnet_test_objective fnet_test_objective_of(fnet_ctx *ctx, fnet_objective_fn fn,
                                                  void *user)
{
    struct fnet_test_objective o = {.ctx = ctx, .fn = fn, .user = user};
    return o;
}

fnet_status fnet_test_on_backend(const float *x, int64_t n, double *f, float *g, void *user)
{
    const struct fnet_test_objective *o = user;
    if (fnet_backend_is_host(o->ctx))
        return o->fn(x, n, f, g, o->user);
    // Statuses, not test failures, on the way: this runs inside the solver, and a failed
    // transfer must come back through it like any objective error.
    size_t bytes = (size_t)n * sizeof(float);
    float *hx = malloc(bytes), *hg = malloc(bytes);
    fnet_status st = hx && hg ? FNET_OK : FNET_ERR_OUT_OF_MEMORY;
    if (st == FNET_OK)
        st = fnet_backend_download(o->ctx, hx, x, bytes);
    if (st == FNET_OK)
        st = o->fn(hx, n, f, hg, o->user);
    if (st == FNET_OK)
        st = fnet_backend_upload(o->ctx, g, hg, bytes);
    free(hx);
    free(hg);
    return st;
}

fnet_status fnet_test_minimize(fnet_ctx *ctx, const fnet_optim_params *p, int64_t n, float *x,
                               fnet_objective_fn fn, void *user, fnet_solver_progress_fn progress,
                               void *progress_user, fnet_solver_stats *st)
{
    assert_true(n >= 1);
    float *bx = fnet_test_upload(ctx, x, n);
    struct fnet_test_objective o = fnet_test_objective_of(ctx, fn, user);
    fnet_status s = fnet_minimize(ctx, p, n, bx, fnet_test_on_backend, &o, progress,
                                  progress_user, st);
    fnet_assert_ok(ctx, fnet_backend_download(ctx, x, bx, (size_t)n * sizeof(float)));
    fnet_backend_free(ctx, bx);
    return s;
}

double fnet_test_f_at(fnet_objective_fn fn, void *user, const float *x, int64_t n)
{
    float *g = malloc((size_t)n * sizeof(float));
    assert_non_null(g);
    double f;
    assert_int_equal(fn(x, n, &f, g, user), FNET_OK);
    free(g);
    return f;
}
