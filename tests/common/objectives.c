/* Objectives of the solver tests: see objectives.h. */
#include "objectives.h"

#include <math.h>
#include <stdlib.h>

fnet_ctx *fnet_test_solver_ctx(void)
{
    fnet_ctx *ctx = NULL;
    assert_int_equal(fnet_ctx_create_cpu(&ctx), FNET_OK);
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

double fnet_test_f_at(fnet_objective_fn fn, void *user, const float *x, int64_t n)
{
    float *g = malloc((size_t)n * sizeof(float));
    assert_non_null(g);
    double f;
    assert_int_equal(fn(x, n, &f, g, user), FNET_OK);
    free(g);
    return f;
}
