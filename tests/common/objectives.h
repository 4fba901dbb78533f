/* Objectives of the solver tests (tests/optim): the chained Rosenbrock function, a wrapper that
 * counts calls, keeps the lowest value and injects NaN or failures, and the bridge that runs
 * these host functions as solver objectives on backend memory.
 *
 * A "host objective" has the signature of fnet_objective_fn, but its x and g are host memory;
 * the solvers hand their objective backend memory (factornet/solver.h), so a host objective
 * reaches them through fnet_test_on_backend (or fnet_test_minimize). */
#ifndef FNET_TEST_OBJECTIVES_H
#define FNET_TEST_OBJECTIVES_H

#include "test_util.h"

/* The solver tests' ctx: the backend FNET_TEST_BACKEND names, else cpu (fnet_test_ctx), on one
 * thread (solver results then repeat bit for bit). */
fnet_ctx *fnet_test_solver_ctx(void);

/* Chained Rosenbrock Σ 100(x[i+1] − x[i]²)² + (1 − x[i])², in double from float x; a host
 * objective, user unused. */
fnet_status fnet_test_rosenbrock(const float *x, int64_t n, double *f, float *g, void *user);

/* The classic start (-1.2, 1, -1.2, 1, ...). */
void fnet_test_rosen_start(float *x, int64_t n);

/* Wraps another host objective (itself a host objective): counts calls, records the lowest f,
 * returns NaN (value, or one gradient entry) at chosen calls, fails with `fail_status` at call
 * `fail_at`. */
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
/* The host objective to pass with a struct fnet_test_wrap as user. */
fnet_status fnet_test_wrapped(const float *x, int64_t n, double *f, float *g, void *user);

/* A host objective as a solver objective on ctx's backend memory: pass fnet_test_on_backend with
 * a struct fnet_test_objective as user. It downloads x, calls fn on host copies and uploads g
 * (fn's own error status comes back as is, g then not uploaded); where ctx's backend memory is
 * host memory fn works on x and g in place. */
struct fnet_test_objective {
    fnet_ctx *ctx;
    fnet_objective_fn fn; // a host objective
    void *user;
};

struct fnet_test_objective fnet_test_objective_of(fnet_ctx *ctx, fnet_objective_fn fn,
                                                  void *user);
fnet_status fnet_test_on_backend(const float *x, int64_t n, double *f, float *g, void *user);

/* fnet_minimize() from the host point x (n ≥ 1), which receives the point it returned: x travels
 * through backend memory of ctx and the host objective fn through fnet_test_on_backend. The
 * progress callback sees backend memory, as always. */
fnet_status fnet_test_minimize(fnet_ctx *ctx, const fnet_optim_params *p, int64_t n, float *x,
                               fnet_objective_fn fn, void *user, fnet_solver_progress_fn progress,
                               void *progress_user, fnet_solver_stats *st);

/* The host objective fn's value at the host point x. */
double fnet_test_f_at(fnet_objective_fn fn, void *user, const float *x, int64_t n);

#endif
