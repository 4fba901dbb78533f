/* Objectives of the solver tests (tests/optim): the chained Rosenbrock function and a wrapper
 * that counts calls, keeps the lowest value and injects NaN or failures. */
#ifndef FNET_TEST_OBJECTIVES_H
#define FNET_TEST_OBJECTIVES_H

#include "test_util.h"

/* A CPU ctx on one thread (solver results then repeat bit for bit). */
fnet_ctx *fnet_test_solver_ctx(void);

/* Chained Rosenbrock Σ 100(x[i+1] − x[i]²)² + (1 − x[i])², in double from float x; user unused. */
fnet_status fnet_test_rosenbrock(const float *x, int64_t n, double *f, float *g, void *user);

/* The classic start (-1.2, 1, -1.2, 1, ...). */
void fnet_test_rosen_start(float *x, int64_t n);

/* Wraps another objective: counts calls, records the lowest f, returns NaN (value, or one
 * gradient entry) at chosen calls, fails with `fail_status` at call `fail_at`. */
struct fnet_test_wrap {
    fnet_objective_fn fn;
    void *user;
    int calls;
    int nan_every;    // NaN value at every nan_every-th call (after the first), 0 = never
    int nan_phase;    // ... counted from call -nan_phase: NaN when (calls + nan_phase) % nan_every == 0
    bool nan_in_grad; // put the NaN in g[0] instead of f
    int fail_at;      // 0 = never
    fnet_status fail_status;
    double best_f;
};

struct fnet_test_wrap fnet_test_wrap_of(fnet_objective_fn fn, void *user);
/* The objective to pass with a struct fnet_test_wrap as user. */
fnet_status fnet_test_wrapped(const float *x, int64_t n, double *f, float *g, void *user);

/* fn's value at x. */
double fnet_test_f_at(fnet_objective_fn fn, void *user, const float *x, int64_t n);

#endif
