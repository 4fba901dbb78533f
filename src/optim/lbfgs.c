/* The solver object and its minimize loop, shared by L-BFGS and nonlinear CG (cg.c gives CG's
 * direction), and L-BFGS itself: the two-loop recursion with the sᵀy/yᵀy scaling and a
 * curvature check. Nocedal, "Updating quasi-Newton matrices with limited storage", Math. Comp.
 * 1980; Liu & Nocedal, Math. Prog. 1989; Nocedal & Wright, "Numerical Optimization", ch. 7;
 * the stopping tests and statuses follow libLBFGS. docs/optim.md. */
#include "optim/solver.h"
#include "core/backend.h"

#include <float.h>
#include <math.h>
#include <string.h>

// A pair enters the history only when sᵀy > CURV_EPS·yᵀy: the scaling sᵀy/yᵀy it implies is
// then above float resolution, and the updated matrix stays positive definite.
#define CURV_EPS ((double)FLT_EPSILON)

const char *fnet_solver_stop_str(fnet_solver_stop stop)
{
    switch (stop) {
    case FNET_SOLVER_GRADIENT: return "gradient norm below gtol";
    case FNET_SOLVER_DECREASE: return "relative decrease below delta";
    case FNET_SOLVER_MAX_ITER: return "iteration limit reached";
    case FNET_SOLVER_MAX_EVALS: return "evaluation limit reached";
    case FNET_SOLVER_LINESEARCH: return "the line search failed along steepest descent";
    case FNET_SOLVER_CANCELLED: return "cancelled by the progress callback";
    case FNET_SOLVER_ERROR: return "error";
    }
    return "unknown stop reason";
}

fnet_status fnet_solver_params_check(fnet_ctx *ctx, const fnet_optim_params *p)
{
    fnet_optim_kind k = p->kind;
    if (k != FNET_OPTIM_LBFGS && k != FNET_OPTIM_CG)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG,
                         "kind %s is not a solver (lbfgs or cg); step-wise optimizers are made "
                         "with fnet_optimizer_create()",
                         fnet_optim_kind_name(k));
    if (k == FNET_OPTIM_LBFGS && p->history < 1)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "history (m) must be at least 1, got %d",
                         p->history);
    if (!(p->c1 > 0.0 && p->c1 < 1.0) || !(p->c2 > 0.0 && p->c2 < 1.0))
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG,
                         "c1 and c2 must be in (0, 1), got c1 = %g, c2 = %g", p->c1, p->c2);
    if (!(p->c1 < p->c2))
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG,
                         "c1 must be smaller than c2, got c1 = %g, c2 = %g", p->c1, p->c2);
    if ((int)p->line_search < 0 || (int)p->line_search > FNET_LINESEARCH_STRONG_WOLFE)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "line_search %d is not a line search",
                         (int)p->line_search);
    if (k == FNET_OPTIM_CG && (p->line_search == FNET_LINESEARCH_ARMIJO ||
                               p->line_search == FNET_LINESEARCH_WOLFE))
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG,
                         "CG needs a strong Wolfe line search (morethuente or strongwolfe), got %s",
                         fnet_line_search_name(p->line_search));
    if (k == FNET_OPTIM_CG && ((int)p->cg_beta < 0 || (int)p->cg_beta > FNET_CG_DY))
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "cg_beta %d is not a CG formula",
                         (int)p->cg_beta);
    if (p->max_linesearch < 1)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "max_linesearch must be at least 1, got %d",
                         p->max_linesearch);
    if (!(p->gtol >= 0.0) || !isfinite(p->gtol))
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "gtol must be non-negative, got %g", p->gtol);
    if (p->past < 0 || !(p->delta >= 0.0) || !isfinite(p->delta))
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG,
                         "past and delta must be non-negative, got past = %d, delta = %g",
                         p->past, p->delta);
    if (p->max_iter < 0 || p->max_evals < 0)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG,
                         "max_iter and max_evals must be non-negative (0: no limit), got %d, %lld",
                         p->max_iter, (long long)p->max_evals);
    if (!(p->min_step > 0.0) || !(p->max_step > p->min_step) || !isfinite(p->max_step))
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG,
                         "the step bounds must satisfy 0 < min_step < max_step, got %g, %g",
                         p->min_step, p->max_step);
    return FNET_OK;
}

fnet_status fnet_solver_create(fnet_ctx *ctx, const fnet_optim_params *p, int64_t n,
                               fnet_solver **out)
{
    if (out)
        *out = NULL;
    if (ctx == NULL)
        return FNET_ERR_INVALID_ARG;
    if (out == NULL || p == NULL)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "params and out must not be NULL");
    fnet_status st = fnet_solver_params_check(ctx, p);
    if (st != FNET_OK)
        return st;
    if (n < 1)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "n must be at least 1, got %lld",
                         (long long)n);
    st = fnet_backend_require(ctx, FNET_OPS(FNET_OP_AXPBY) | FNET_OPS(FNET_OP_AMAX),
                              "the L-BFGS and CG solvers");
    if (st != FNET_OK)
        return st;
    int m = p->kind == FNET_OPTIM_LBFGS ? p->history : 0;
    size_t vectors = 4 + 2 * (size_t)m;
    // each vector starts on a 64-byte boundary: n rounded up to 16 floats
    if ((uint64_t)n > SIZE_MAX / sizeof(float) / vectors - 16)
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "solver work vectors: %zu of %lld floats",
                         vectors, (long long)n);
    size_t stride = ((size_t)n + 15) / 16 * 16;

    fnet_solver *s = fnet_calloc(1, sizeof(*s));
    if (s == NULL)
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "solver");
    s->ctx = ctx;
    s->p = *p;
    s->n = n;
    s->m = m;
    float *block = fnet_be_zeros(ctx, (int64_t)(stride * vectors));
    if (block == NULL) {
        st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "solver work vectors: %zu of %lld floats",
                       vectors, (long long)n);
        goto out_free_s;
    }
    s->xp = block;
    s->g = block + stride;
    s->gp = block + 2 * stride;
    s->d = block + 3 * stride;
    size_t doubles = 2 * (size_t)m + (size_t)p->past;
    if (doubles > 0) {
        s->rho = fnet_calloc(doubles, sizeof(double));
        if (s->rho == NULL) {
            st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "solver scalars");
            goto out_free_block;
        }
        s->alpha = s->rho + m;
        s->fpast = p->past > 0 ? s->rho + 2 * m : NULL;
    }
    if (m > 0) {
        s->sv = fnet_calloc(2 * (size_t)m, sizeof(float *));
        if (s->sv == NULL) {
            st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "L-BFGS history of %d pairs", m);
            goto out_free_rho;
        }
        s->yv = s->sv + m;
        for (int i = 0; i < m; i++) {
            s->sv[i] = block + (4 + 2 * (size_t)i) * stride;
            s->yv[i] = block + (5 + 2 * (size_t)i) * stride;
        }
    }
    *out = s;
    return FNET_OK;

out_free_rho:
    fnet_free(s->rho);
out_free_block:
    ctx->be->free(ctx, block);
out_free_s:
    fnet_free(s);
    return st;
}

// The float block is owned through the lowest of its views: pairs and xp/gp swap pointers.
static float *block_of(const fnet_solver *s)
{
    float *lo = s->xp;
    const float *v[4] = {s->g, s->gp, s->d, NULL};
    for (int i = 0; i < 3; i++)
        if (v[i] < lo)
            lo = (float *)v[i];
    for (int i = 0; i < s->m; i++) {
        if (s->sv[i] < lo)
            lo = s->sv[i];
        if (s->yv[i] < lo)
            lo = s->yv[i];
    }
    return lo;
}

void fnet_solver_free(fnet_solver *s)
{
    if (s == NULL)
        return;
    s->ctx->be->free(s->ctx, block_of(s));
    fnet_free(s->sv);
    fnet_free(s->rho);
    fnet_free(s);
}

void fnet_solver_reset(fnet_solver *s)
{
    if (s == NULL)
        return;
    s->count = 0;
    s->head = 0;
    s->last_move = 0.0;
}

// d (n) = −g
static void negate(fnet_ctx *ctx, int64_t n, const float *g, float *d)
{
    ctx->be->axpby(ctx, n, -1.0f, g, 0.0f, d);
}

// L-BFGS: the pair (x − xp, g − gp) enters the history when it passes the curvature check;
// xp and gp are consumed (they become the evicted slot's storage). Returns false when skipped.
static bool lbfgs_push(fnet_solver *s, const float *x)
{
    fnet_ctx *ctx = s->ctx;
    int64_t n = s->n;
    // xp = x − xp (s), gp = g − gp (y), in place
    ctx->be->axpby(ctx, n, 1.0f, x, -1.0f, s->xp);
    ctx->be->axpby(ctx, n, 1.0f, s->g, -1.0f, s->gp);
    double sy = ctx->be->dot(ctx, n, s->xp, s->gp);
    double yy = ctx->be->dot(ctx, n, s->gp, s->gp);
    if (!(sy > CURV_EPS * yy) || !isfinite(sy) || !isfinite(yy))
        return false;
    int idx = s->count == 0 ? 0 : (s->head + 1) % s->m;
    float *t = s->sv[idx];
    s->sv[idx] = s->xp;
    s->xp = t;
    t = s->yv[idx];
    s->yv[idx] = s->gp;
    s->gp = t;
    s->rho[idx] = 1.0 / sy;
    s->gamma = sy / yy;
    s->head = idx;
    if (s->count < s->m)
        s->count++;
    return true;
}

// L-BFGS two-loop recursion: d = −H·g with H built from γ·I and the stored pairs (N&W alg. 7.4).
static void lbfgs_direction(fnet_solver *s)
{
    fnet_ctx *ctx = s->ctx;
    const struct fnet_backend_ops *be = ctx->be;
    int64_t n = s->n;
    int m = s->m;
    float *d = s->d;
    negate(ctx, n, s->g, d);
    for (int j = 0; j < s->count; j++) { // newest to oldest
        int i = (s->head - j + m) % m;
        s->alpha[i] = s->rho[i] * be->dot(ctx, n, s->sv[i], d);
        be->axpy(ctx, n, (float)-s->alpha[i], s->yv[i], d);
    }
    be->scal(ctx, n, (float)s->gamma, d);
    for (int j = s->count - 1; j >= 0; j--) { // oldest to newest
        int i = (s->head - j + m) % m;
        double beta = s->rho[i] * be->dot(ctx, n, s->yv[i], d);
        be->axpy(ctx, n, (float)(s->alpha[i] - beta), s->sv[i], d);
    }
}

// d = −g; returns 1/‖g‖, the step of unit length in x.
static double steepest(fnet_solver *s)
{
    negate(s->ctx, s->n, s->g, s->d);
    double gg = s->ctx->be->dot(s->ctx, s->n, s->g, s->g);
    return gg > 0.0 ? 1.0 / sqrt(gg) : 1.0;
}

fnet_status fnet_solver_minimize(fnet_solver *s, float *x, fnet_objective_fn fn, void *fn_user,
                                 fnet_solver_progress_fn progress, void *progress_user,
                                 fnet_solver_stats *out)
{
    fnet_solver_stats st = {.stop = FNET_SOLVER_ERROR, .f0 = NAN, .f = NAN, .gnorm = NAN};
    if (out)
        *out = st;
    if (s == NULL)
        return FNET_ERR_INVALID_ARG;
    fnet_ctx *ctx = s->ctx;
    if (x == NULL || fn == NULL)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "x and the objective must not be NULL");
    const struct fnet_backend_ops *be = ctx->be;
    const fnet_optim_params *p = &s->p;
    const bool lbfgs = p->kind == FNET_OPTIM_LBFGS;
    const int64_t n = s->n;
    const int64_t budget = p->max_evals > 0 ? p->max_evals : -1;
    bool finite;
    double f;

    fnet_status status = fnet_ls_eval(ctx, fn, fn_user, n, x, &f, s->g, &finite);
    st.evaluations = 1;
    if (status != FNET_OK)
        goto out;
    if (!finite) {
        status = fnet_fail(ctx, FNET_ERR_NUMERIC,
                           "the objective is not finite at the start point (f = %g)", f);
        goto out;
    }
    st.f0 = st.f = f;
    st.gnorm = be->amax(ctx, n, s->g);
    if (st.gnorm <= p->gtol) {
        st.stop = FNET_SOLVER_GRADIENT;
        goto out;
    }
    if (s->fpast)
        s->fpast[0] = f;

    bool is_steepest; // d = −g: nothing left to fall back on when its line search fails
    double step;
    if (lbfgs && s->count > 0) {
        lbfgs_direction(s);
        is_steepest = false;
        step = 1.0;
    } else {
        step = steepest(s);
        is_steepest = true;
        if (s->last_move > 0.0) // a call after another (a new minibatch): the last step's length
            step *= s->last_move;
        else if (!lbfgs) // SciPy's CG: the first step as if f had dropped by ‖g‖/2 before
            step = fmin(1.0, 1.01 * step);
    }
    double dg = be->dot(ctx, n, s->g, s->d);
    int64_t since_restart = 0;
    for (;;) {
        if (!(dg < 0.0)) {
            // rounding lost the descent property: start again from steepest descent
            if (is_steepest) {
                st.stop = FNET_SOLVER_LINESEARCH;
                break;
            }
            fnet_solver_reset(s);
            st.restarts++;
            since_restart = 0;
            step = steepest(s);
            is_steepest = true;
            dg = be->dot(ctx, n, s->g, s->d);
            continue;
        }
        be->copy(ctx, s->xp, x, (size_t)n * sizeof(float));
        be->copy(ctx, s->gp, s->g, (size_t)n * sizeof(float));
        const double fp = f;
        struct fnet_ls ls = {
            .ctx = ctx,
            .p = p,
            .n = n,
            .xp = s->xp,
            .d = s->d,
            .f0 = f,
            .dg0 = dg,
            .fn = fn,
            .user = fn_user,
            .budget = budget < 0 ? -1 : budget - st.evaluations,
            .x = x,
            .g = s->g,
            .step = step,
        };
        enum ls_outcome o = fnet_linesearch(&ls);
        st.evaluations += ls.evals;
        st.nonfinite += ls.nonfinite;
        if (o == LS_OK) {
            f = ls.f;
        } else {
            // back to the best point of this line search, or to xp
            bool moved = ls.best_step > 0.0 && ls.best_f < fp;
            if (moved) {
                fnet_ls_trial(ctx, n, x, s->xp, s->d, ls.best_step);
                f = ls.best_f;
            } else {
                be->copy(ctx, x, s->xp, (size_t)n * sizeof(float));
                be->copy(ctx, s->g, s->gp, (size_t)n * sizeof(float));
                f = fp;
            }
            if (o == LS_CALLBACK) {
                status = ls.status;
                break;
            }
            if (moved && (budget < 0 || st.evaluations < budget)) {
                // the gradient at the restored point (the line search's last one is elsewhere)
                double fb;
                status = fnet_ls_eval(ctx, fn, fn_user, n, x, &fb, s->g, &finite);
                st.evaluations++;
                if (status != FNET_OK)
                    break;
                if (!finite || fb > fp) { // a stochastic objective: give the point up
                    be->copy(ctx, x, s->xp, (size_t)n * sizeof(float));
                    be->copy(ctx, s->g, s->gp, (size_t)n * sizeof(float));
                    f = fp;
                    moved = false;
                } else {
                    f = fb;
                }
            } else if (moved) {
                st.stop = FNET_SOLVER_MAX_EVALS; // x is the best point; its gradient unknown
                break;
            }
            if (budget >= 0 && st.evaluations >= budget) {
                st.stop = FNET_SOLVER_MAX_EVALS;
                if (moved)
                    st.iterations++;
                break;
            }
            // forget what led here and go on from steepest descent
            if (lbfgs)
                fnet_solver_reset(s);
            st.restarts++;
            since_restart = 0;
            if (!moved) {
                if (is_steepest) {
                    st.stop = FNET_SOLVER_LINESEARCH;
                    break;
                }
                step = steepest(s);
                is_steepest = true;
                dg = be->dot(ctx, n, s->g, s->d);
                continue;
            }
            ls.step = ls.best_step;
        }
        st.iterations++;
        st.f = f;
        st.gnorm = be->amax(ctx, n, s->g);
        const double step_taken = ls.step;
        s->last_move = step_taken * sqrt(be->dot(ctx, n, s->d, s->d));
        // new curvature information, then the next direction
        bool restarted = false;
        if (lbfgs) {
            if (!lbfgs_push(s, x))
                st.skipped++;
        } else if (o == LS_OK) {
            restarted = fnet_cg_direction(s, since_restart + 1);
            st.restarts += restarted;
        } else {
            steepest(s);
            restarted = true;
        }
        if (progress) {
            fnet_solver_info info = {
                .iteration = st.iterations,
                .evaluations = st.evaluations,
                .f = f,
                .gnorm = st.gnorm,
                .xnorm = sqrt(be->dot(ctx, n, x, x)),
                .step = step_taken,
                .ls_evals = ls.evals,
                .n = n,
                .x = x,
                .g = s->g,
            };
            status = progress(&info, progress_user);
            if (status != FNET_OK) {
                st.stop = FNET_SOLVER_CANCELLED;
                break;
            }
        }
        if (st.gnorm <= p->gtol) {
            st.stop = FNET_SOLVER_GRADIENT;
            break;
        }
        if (s->fpast) {
            int slot = (int)(st.iterations % p->past);
            if (st.iterations >= p->past &&
                (s->fpast[slot] - f) / fmax(1.0, fabs(f)) <= p->delta) {
                st.stop = FNET_SOLVER_DECREASE;
                break;
            }
            s->fpast[slot] = f;
        }
        if (p->max_iter > 0 && st.iterations >= p->max_iter) {
            st.stop = FNET_SOLVER_MAX_ITER;
            break;
        }
        if (budget >= 0 && st.evaluations >= budget) {
            st.stop = FNET_SOLVER_MAX_EVALS;
            break;
        }
        if (lbfgs) {
            if (s->count > 0) {
                lbfgs_direction(s);
                step = 1.0;
                is_steepest = false;
            } else {
                step = steepest(s);
                is_steepest = true;
            }
            dg = be->dot(ctx, n, s->g, s->d);
        } else {
            since_restart = restarted ? 0 : since_restart + 1;
            is_steepest = restarted;
            dg = be->dot(ctx, n, s->g, s->d);
            // SciPy's CG initial step: the quadratic through the last decrease, at most 1
            step = 1.01 * 2.0 * (f - fp) / dg;
            if (!(step > 0.0) || !isfinite(step))
                step = 1.0;
            step = fmin(1.0, step);
        }
    }
out:
    st.f = f;
    if (st.evaluations == 1 && status != FNET_OK)
        st.f = NAN;
    if (status != FNET_OK && st.stop != FNET_SOLVER_CANCELLED)
        st.stop = FNET_SOLVER_ERROR;
    if (out)
        *out = st;
    return status;
}

fnet_status fnet_minimize(fnet_ctx *ctx, const fnet_optim_params *p, int64_t n, float *x,
                          fnet_objective_fn fn, void *fn_user, fnet_solver_progress_fn progress,
                          void *progress_user, fnet_solver_stats *st)
{
    if (st) {
        memset(st, 0, sizeof(*st));
        st->stop = FNET_SOLVER_ERROR;
        st->f0 = st->f = st->gnorm = NAN;
    }
    if (ctx == NULL)
        return FNET_ERR_INVALID_ARG;
    if (x == NULL || fn == NULL)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "x and the objective must not be NULL");
    fnet_solver *s = NULL;
    fnet_status status = fnet_solver_create(ctx, p, n, &s);
    if (status != FNET_OK)
        return status;
    status = fnet_solver_minimize(s, x, fn, fn_user, progress, progress_user, st);
    fnet_solver_free(s);
    return status;
}
