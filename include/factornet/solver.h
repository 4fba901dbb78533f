/* L-BFGS and nonlinear conjugate gradient on any function f(x) -> (f, ∇f) of a float vector, and
 * on a model's minibatch loss through fnet_model_loss_grad(). Settings are the solver fields of
 * fnet_optim_params (factornet/optim.h); the algorithms and references are in docs/optim.md. */
#ifndef FACTORNET_SOLVER_H
#define FACTORNET_SOLVER_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <factornet/export.h>
#include <factornet/status.h>
#include <factornet/ctx.h>
#include <factornet/model.h>
#include <factornet/optim.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The objective: the value f(x) (double) and the gradient g (n floats, written) at x (n floats,
 *  read only); x and g are backend memory of the solver's ctx (host memory on the cpu and
 *  reference backends, so a plain C function can read x and write g there; on others it moves
 *  them with fnet_backend_download() and fnet_backend_upload()). A value or gradient that is NaN or Inf tells the solver that the point is not
 *  usable: the line search shrinks its step and nothing from that point enters the history.
 *  @return FNET_OK, or any error, which stops the solver and is returned by it as is. */
typedef fnet_status (*fnet_objective_fn)(const float *x, int64_t n, double *f, float *g,
                                         void *user);

/** Why a solver stopped (the libLBFGS idea; one reason per exit). */
typedef enum fnet_solver_stop {
    FNET_SOLVER_GRADIENT = 0,   /**< ‖g‖∞ ≤ gtol (also when it already held at the start) */
    FNET_SOLVER_DECREASE = 1,   /**< relative decrease over `past` iterations ≤ delta */
    FNET_SOLVER_MAX_ITER = 2,   /**< max_iter iterations done */
    FNET_SOLVER_MAX_EVALS = 3,  /**< max_evals evaluations done */
    FNET_SOLVER_LINESEARCH = 4, /**< no step along the steepest-descent direction satisfied the
                                     line search (rounding errors, a flat or noisy function,
                                     max_linesearch or the step bounds reached) */
    FNET_SOLVER_CANCELLED = 5,  /**< the progress callback returned a status other than OK */
    FNET_SOLVER_ERROR = 6,      /**< the objective failed, or was NaN/Inf at the start point */
} fnet_solver_stop;

/** A short constant description of a stop reason; never NULL. */
FNET_API const char *fnet_solver_stop_str(fnet_solver_stop stop);

/** What a minimize call did. */
typedef struct fnet_solver_stats {
    fnet_solver_stop stop;
    int64_t iterations;   /**< accepted steps */
    int64_t evaluations;  /**< objective calls */
    double f0;            /**< f at the start point */
    double f;             /**< f at the point returned in x */
    double gnorm;         /**< ‖g‖∞ at the last accepted iterate */
    int64_t skipped;      /**< L-BFGS pairs skipped by the curvature check (sᵀy ≤ ε·yᵀy) */
    int64_t restarts;     /**< CG restarts (every n iterations, Powell's test, lost descent) and
                               L-BFGS history resets after a failed line search */
    int64_t nonfinite;    /**< trial points where the objective was NaN or Inf */
} fnet_solver_stats;

/** Passed to the progress callback after every accepted step. */
typedef struct fnet_solver_info {
    int64_t iteration;    /**< 1-based */
    int64_t evaluations;  /**< objective calls so far in this minimize call */
    double f;             /**< at the new iterate */
    double gnorm;         /**< ‖g‖∞ at the new iterate */
    double xnorm;         /**< ‖x‖₂ */
    double step;          /**< the accepted step length along the search direction */
    int ls_evals;         /**< evaluations of this iteration's line search */
    int64_t n;
    const float *x, *g;   /**< the iterate and its gradient (n, backend memory; borrowed, read
                               only) */
} fnet_solver_info;

/** Progress callback: FNET_OK continues; any other status stops the solver, which then returns
 *  that status as is (FNET_ERR_CANCELLED is the natural choice), with x at the new iterate. */
typedef fnet_status (*fnet_solver_progress_fn)(const fnet_solver_info *info, void *user);

/** Opaque solver: the settings and every work vector, allocated once. */
typedef struct fnet_solver fnet_solver;

/** Create an L-BFGS (p->kind FNET_OPTIM_LBFGS) or CG (FNET_OPTIM_CG) solver for vectors of n
 *  floats. Work memory (backend memory): (2·history + 4)·n floats for L-BFGS, 4·n for CG. The
 *  vector arithmetic runs on the ctx's backend; only scalars (dot products, norms, f) come back
 *  to the host, where the line search and the stopping tests run.
 *  @param[out] out freed by the caller with fnet_solver_free().
 *  @return FNET_OK; FNET_ERR_INVALID_ARG (n < 1, another kind, history < 1, c1 and c2 not
 *          0 < c1 < c2 < 1, max_linesearch < 1, a negative gtol, delta, past, max_iter or
 *          max_evals, step bounds not 0 < min_step < max_step, an unknown line search or β,
 *          Armijo or plain Wolfe backtracking for CG, which needs strong Wolfe);
 *          FNET_ERR_UNSUPPORTED (the backend lacks the vector ops); FNET_ERR_OUT_OF_MEMORY. */
FNET_API fnet_status fnet_solver_create(fnet_ctx *ctx, const fnet_optim_params *p, int64_t n,
                                        fnet_solver **out);
/** Free a solver; NULL is a no-op. */
FNET_API void fnet_solver_free(fnet_solver *s);

/** Forget the L-BFGS history and the last step's length: the next minimize starts as a fresh
 *  solver's first one. */
FNET_API void fnet_solver_reset(fnet_solver *s);

/** Minimize fn from x (n floats, backend memory), updating x in place. Never allocates.
 *  L-BFGS keeps its history across calls (so a call can continue the previous one, or start on
 *  a new minibatch with the curvature learned so far) until fnet_solver_reset(); CG starts
 *  every call with steepest descent, its first trial as long as the previous call's last step
 *  (until a reset). The objective is called at x itself, with trial points
 *  written into x: an objective that reads parameters from somewhere else (a model) can point
 *  them at x. Stops at the first of: ‖g‖∞ ≤ gtol, the relative-decrease test, max_iter
 *  iterations, max_evals evaluations, a line search that fails along −g, the progress callback.
 *  On every return, error or not, x holds the best point found (the lowest finite f evaluated)
 *  and st (may be NULL) says what happened.
 *  @param progress may be NULL.
 *  @return FNET_OK (whichever criterion stopped it: see st->stop); FNET_ERR_INVALID_ARG (NULL
 *          x or fn); FNET_ERR_NUMERIC (f or g is NaN or Inf at the start point); the objective's
 *          own error status; the progress callback's non-OK status. */
FNET_API fnet_status fnet_solver_minimize(fnet_solver *s, float *x, fnet_objective_fn fn,
                                          void *fn_user, fnet_solver_progress_fn progress,
                                          void *progress_user, fnet_solver_stats *st);

/** One call: create a solver for p->kind, minimize, free. The statuses of both. x (n floats) is
 *  backend memory, as for fnet_solver_minimize().
 *
 *  Example: the 2-D Rosenbrock function with L-BFGS on a cpu ctx, whose backend memory is host
 *  memory, so x and g are plain arrays (the full program is in docs/optim.md).
 *  @code
 *  static fnet_status rosen(const float *x, int64_t n, double *f, float *g, void *user)
 *  {
 *      double a = x[0], b = x[1];
 *      *f = 100 * (b - a * a) * (b - a * a) + (1 - a) * (1 - a);
 *      g[0] = (float)(-400 * a * (b - a * a) - 2 * (1 - a));
 *      g[1] = (float)(200 * (b - a * a));
 *      return FNET_OK;
 *  }
 *  ...
 *  float x[2] = {-1.2f, 1.0f};
 *  fnet_optim_params p = fnet_optim_params_default(FNET_OPTIM_LBFGS);
 *  p.gtol = 1e-4;
 *  fnet_solver_stats st;
 *  fnet_status s = fnet_minimize(ctx, &p, 2, x, rosen, NULL, NULL, NULL, &st);
 *  // s == FNET_OK, st.stop == FNET_SOLVER_GRADIENT, x ≈ (1, 1)
 *  @endcode */
FNET_API fnet_status fnet_minimize(fnet_ctx *ctx, const fnet_optim_params *p, int64_t n, float *x,
                                   fnet_objective_fn fn, void *fn_user,
                                   fnet_solver_progress_fn progress, void *progress_user,
                                   fnet_solver_stats *st);

/** One minibatch of a model, for fnet_model_objective(). */
typedef struct fnet_model_batch_info {
    fnet_model *model;
    const float *x;        /**< (batch, n_in) inputs, backend memory, borrowed */
    const int32_t *labels; /**< (batch) class indices, host memory, borrowed */
    int64_t batch;
} fnet_model_batch_info;

/** An fnet_objective_fn over a model's parameters: `user` is an fnet_model_batch_info. It loads
 *  the point into the model's parameter vector (nothing to copy when the solver's x is
 *  fnet_model_params() itself, the cheap way) and returns fnet_model_loss_grad() on the batch;
 *  a NaN or Inf loss is handed to the solver as a non-finite value (the step shrinks), not as
 *  an error. The solver and the model must be on the same ctx.
 *  @return FNET_OK, FNET_ERR_SHAPE (n is not the model's parameter count), the oracle's errors. */
FNET_API fnet_status fnet_model_objective(const float *x, int64_t n, double *f, float *g,
                                          void *user);

#ifdef __cplusplus
}
#endif
#endif
