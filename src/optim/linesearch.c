/* Line searches of the L-BFGS and CG solvers along x = xp + step·d: Moré–Thuente (MINPACK-2's
 * dcsrch/dcstep, strong Wolfe) and backtracking (Armijo, Wolfe, strong Wolfe; libLBFGS's, with
 * bisection once the acceptable steps are bracketed).
 * A NaN or Inf at a trial point shrinks the step. Float vectors, double scalars and dots.
 * Moré & Thuente, "Line search algorithms with guaranteed sufficient decrease", ACM TOMS 1994;
 * docs/optim.md. */
#include "optim/solver.h"
#include "core/backend.h"

#include <float.h>
#include <math.h>
#include <string.h>

// Moré–Thuente: extrapolation bounds of the unbracketed phase (MINPACK-2's xtrapl, xtrapu) and
// the relative interval width below which float trial points stop differing.
#define MT_XTRAPL 1.1
#define MT_XTRAPU 4.0
#define MT_XTOL ((double)FLT_EPSILON)
// Backtracking: shrink and grow factors (libLBFGS's).
#define BT_DEC 0.5
#define BT_INC 2.1

static const char *const ls_names[] = {
    [FNET_LINESEARCH_MORE_THUENTE] = "morethuente",
    [FNET_LINESEARCH_ARMIJO] = "armijo",
    [FNET_LINESEARCH_WOLFE] = "wolfe",
    [FNET_LINESEARCH_STRONG_WOLFE] = "strongwolfe",
};
#define NUM_LS ((int)(sizeof(ls_names) / sizeof(ls_names[0])))

fnet_status fnet_line_search_parse(const char *name, fnet_line_search *ls)
{
    if (name == NULL || ls == NULL)
        return FNET_ERR_INVALID_ARG;
    for (int k = 0; k < NUM_LS; k++) {
        if (strcmp(name, ls_names[k]) == 0) {
            *ls = (fnet_line_search)k;
            return FNET_OK;
        }
    }
    return FNET_ERR_INVALID_ARG;
}

const char *fnet_line_search_name(fnet_line_search ls)
{
    if ((int)ls < 0 || (int)ls >= NUM_LS)
        return "unknown";
    return ls_names[ls];
}

const char *fnet_ls_outcome_str(enum ls_outcome o)
{
    switch (o) {
    case LS_OK: return "converged";
    case LS_MAX_EVALS: return "evaluation limit reached";
    case LS_ROUNDING: return "rounding errors prevent progress";
    case LS_MIN_STEP: return "the step reached min_step";
    case LS_MAX_STEP: return "the step reached max_step";
    case LS_NOT_DESCENT: return "not a descent direction";
    case LS_CALLBACK: return "the objective failed";
    }
    return "unknown";
}

// x (n) = xp + step·d, as x = xp, then x = (step·d) + (1·x): the same float as xp + step·d. The
// step is rounded to float once, so a restore recomputes the very point that was evaluated.
void fnet_ls_trial(fnet_ctx *ctx, int64_t n, float *x, const float *xp, const float *d,
                   double step)
{
    ctx->be->copy(ctx, x, xp, (size_t)n * sizeof(float));
    ctx->be->axpby(ctx, n, (float)step, d, 1.0f, x);
}

fnet_status fnet_ls_eval(fnet_ctx *ctx, fnet_objective_fn fn, void *user, int64_t n,
                         const float *x, double *f, float *g, bool *finite)
{
    *f = NAN;
    fnet_status st = fn(x, n, f, g, user);
    if (st != FNET_OK) {
        *finite = false;
        // keep the objective's own message when it left one on this ctx
        if (fnet_ctx_last_status(ctx) != st)
            fnet_fail(ctx, st, "the objective returned %d (%s)", (int)st, fnet_status_str(st));
        return st;
    }
    *finite = isfinite(*f) && ctx->be->all_finite(ctx, n, g);
    return FNET_OK;
}

// One evaluation at ls->step: x, f, g written; *dg = gᵀd; false in *finite for NaN/Inf. Returns
// LS_OK, LS_MAX_EVALS (no budget left: nothing evaluated) or LS_CALLBACK.
static enum ls_outcome ls_eval(struct fnet_ls *ls, double *dg, bool *finite)
{
    if (ls->budget >= 0 && ls->evals >= ls->budget)
        return LS_MAX_EVALS;
    fnet_ls_trial(ls->ctx, ls->n, ls->x, ls->xp, ls->d, ls->step);
    ls->evals++;
    ls->status = fnet_ls_eval(ls->ctx, ls->fn, ls->user, ls->n, ls->x, &ls->f, ls->g, finite);
    if (ls->status != FNET_OK)
        return LS_CALLBACK;
    *dg = *finite ? ls->ctx->be->dot(ls->ctx, ls->n, ls->g, ls->d) : NAN;
    if (*finite && !isfinite(*dg))
        *finite = false;
    if (!*finite) {
        ls->nonfinite++;
    } else if (ls->f < ls->best_f) {
        ls->best_f = ls->f;
        ls->best_step = ls->step;
    }
    return LS_OK;
}

static double max3(double a, double b, double c)
{
    double m = a > b ? a : b;
    return m > c ? m : c;
}

// MINPACK-2 dcstep: one safeguarded step of the Moré–Thuente search. (stx, fx, dx) is the best
// step so far, (sty, fy, dy) the other end of the interval, (stp, fp, dp) the trial; the
// interval is updated and the next trial returned in *stp, within [stpmin, stpmax].
static void mt_step(double *stx, double *fx, double *dx, double *sty, double *fy, double *dy,
                    double *stp, double fp, double dp, bool *brackt, double stpmin,
                    double stpmax)
{
    double sgnd = dp * (*dx / fabs(*dx));
    double stpf, stpc, stpq, theta, s, gamma, p, q, r;
    if (fp > *fx) {
        // 1: higher value: the minimum is bracketed; cubic, or halfway to the quadratic
        theta = 3.0 * (*fx - fp) / (*stp - *stx) + *dx + dp;
        s = max3(fabs(theta), fabs(*dx), fabs(dp));
        gamma = s * sqrt(fmax(0.0, (theta / s) * (theta / s) - (*dx / s) * (dp / s)));
        if (*stp < *stx)
            gamma = -gamma;
        p = (gamma - *dx) + theta;
        q = ((gamma - *dx) + gamma) + dp;
        r = p / q;
        stpc = *stx + r * (*stp - *stx);
        stpq = *stx + ((*dx / ((*fx - fp) / (*stp - *stx) + *dx)) / 2.0) * (*stp - *stx);
        if (fabs(stpc - *stx) < fabs(stpq - *stx))
            stpf = stpc;
        else
            stpf = stpc + (stpq - stpc) / 2.0;
        *brackt = true;
    } else if (sgnd < 0.0) {
        // 2: lower value, derivatives of opposite sign: bracketed; cubic or secant
        theta = 3.0 * (*fx - fp) / (*stp - *stx) + *dx + dp;
        s = max3(fabs(theta), fabs(*dx), fabs(dp));
        gamma = s * sqrt(fmax(0.0, (theta / s) * (theta / s) - (*dx / s) * (dp / s)));
        if (*stp > *stx)
            gamma = -gamma;
        p = (gamma - dp) + theta;
        q = ((gamma - dp) + gamma) + *dx;
        r = p / q;
        stpc = *stp + r * (*stx - *stp);
        stpq = *stp + (dp / (dp - *dx)) * (*stx - *stp);
        stpf = fabs(stpc - *stp) > fabs(stpq - *stp) ? stpc : stpq;
        *brackt = true;
    } else if (fabs(dp) < fabs(*dx)) {
        // 3: lower value, same sign, smaller derivative: cubic only if it tends to infinity in
        // the direction of the step or its minimum lies beyond the trial
        theta = 3.0 * (*fx - fp) / (*stp - *stx) + *dx + dp;
        s = max3(fabs(theta), fabs(*dx), fabs(dp));
        gamma = s * sqrt(fmax(0.0, (theta / s) * (theta / s) - (*dx / s) * (dp / s)));
        if (*stp > *stx)
            gamma = -gamma;
        p = (gamma - dp) + theta;
        q = (gamma + (*dx - dp)) + gamma;
        r = p / q;
        if (r < 0.0 && gamma != 0.0)
            stpc = *stp + r * (*stx - *stp);
        else if (*stp > *stx)
            stpc = stpmax;
        else
            stpc = stpmin;
        stpq = *stp + (dp / (dp - *dx)) * (*stx - *stp);
        if (*brackt) {
            stpf = fabs(stpc - *stp) < fabs(stpq - *stp) ? stpc : stpq;
            if (*stp > *stx)
                stpf = fmin(*stp + 0.66 * (*sty - *stp), stpf);
            else
                stpf = fmax(*stp + 0.66 * (*sty - *stp), stpf);
        } else {
            stpf = fabs(stpc - *stp) > fabs(stpq - *stp) ? stpc : stpq;
            stpf = fmin(stpmax, stpf);
            stpf = fmax(stpmin, stpf);
        }
    } else {
        // 4: lower value, same sign, derivative not smaller: cubic toward sty, or to the bound
        if (*brackt) {
            theta = 3.0 * (fp - *fy) / (*sty - *stp) + *dy + dp;
            s = max3(fabs(theta), fabs(*dy), fabs(dp));
            gamma = s * sqrt(fmax(0.0, (theta / s) * (theta / s) - (*dy / s) * (dp / s)));
            if (*stp > *sty)
                gamma = -gamma;
            p = (gamma - dp) + theta;
            q = ((gamma - dp) + gamma) + *dy;
            r = p / q;
            stpc = *stp + r * (*sty - *stp);
            stpf = stpc;
        } else {
            stpf = *stp > *stx ? stpmax : stpmin;
        }
    }
    if (fp > *fx) {
        *sty = *stp;
        *fy = fp;
        *dy = dp;
    } else {
        if (sgnd < 0.0) {
            *sty = *stx;
            *fy = *fx;
            *dy = *dx;
        }
        *stx = *stp;
        *fx = fp;
        *dx = dp;
    }
    *stp = stpf;
}

// MINPACK-2 dcsrch, driven in a loop. A non-finite trial caps every later step below it and
// retries halfway between the best step and it.
static enum ls_outcome more_thuente(struct fnet_ls *ls)
{
    const fnet_optim_params *p = ls->p;
    const double ftol = p->c1, gtol = p->c2, stpmin = p->min_step, stpmax0 = p->max_step;
    const double finit = ls->f0, ginit = ls->dg0, gtest = ftol * ginit;
    double stpmax = stpmax0; // lowered by non-finite trials
    bool brackt = false;
    int stage = 1;
    double width = stpmax - stpmin, width1 = 2.0 * width;
    double stx = 0.0, fx = finit, gx = ginit, sty = 0.0, fy = finit, gy = ginit;
    double stmin = 0.0, stmax = ls->step + MT_XTRAPU * ls->step;
    ls->step = fmin(fmax(ls->step, stpmin), stpmax);
    for (;;) {
        double f, g;
        bool finite;
        enum ls_outcome o = ls_eval(ls, &g, &finite);
        if (o != LS_OK)
            return o;
        f = ls->f;
        double stp = ls->step;
        if (!finite) {
            if (ls->evals >= p->max_linesearch)
                return LS_MAX_EVALS;
            stpmax = stp;
            stmax = fmin(stmax, stp);
            ls->step = stx + 0.5 * (stp - stx);
            if (ls->step <= stpmin || ls->step - stx <= MT_XTOL * ls->step)
                return ls->step <= stpmin ? LS_MIN_STEP : LS_ROUNDING;
            continue;
        }
        double ftest = finit + stp * gtest;
        if (stage == 1 && f <= ftest && g >= 0.0)
            stage = 2;
        if (f <= ftest && fabs(g) <= gtol * (-ginit))
            return LS_OK;
        if (brackt && (stp <= stmin || stp >= stmax))
            return LS_ROUNDING;
        if (brackt && stmax - stmin <= MT_XTOL * stmax)
            return LS_ROUNDING;
        if (stp >= stpmax && f <= ftest && g <= gtest)
            return stpmax < stpmax0 ? LS_ROUNDING : LS_MAX_STEP;
        if (stp <= stpmin && (f > ftest || g >= gtest))
            return LS_MIN_STEP;
        if (ls->evals >= p->max_linesearch)
            return LS_MAX_EVALS;
        // In the first stage a modified function ψ(α) = f(α) − f(0) − α·ftest·f'(0) is used
        // while the step has a lower f than the best one but no sufficient decrease.
        if (stage == 1 && f <= fx && f > ftest) {
            double fm = f - stp * gtest, fxm = fx - stx * gtest, fym = fy - sty * gtest;
            double gm = g - gtest, gxm = gx - gtest, gym = gy - gtest;
            mt_step(&stx, &fxm, &gxm, &sty, &fym, &gym, &stp, fm, gm, &brackt, stmin, stmax);
            fx = fxm + stx * gtest;
            fy = fym + sty * gtest;
            gx = gxm + gtest;
            gy = gym + gtest;
        } else {
            mt_step(&stx, &fx, &gx, &sty, &fy, &gy, &stp, f, g, &brackt, stmin, stmax);
        }
        // force a sufficient decrease of the interval's width
        if (brackt) {
            if (fabs(sty - stx) >= 0.66 * width1)
                stp = stx + 0.5 * (sty - stx);
            width1 = width;
            width = fabs(sty - stx);
            stmin = fmin(stx, sty);
            stmax = fmax(stx, sty);
        } else {
            stmin = stp + MT_XTRAPL * (stp - stx);
            stmax = stp + MT_XTRAPU * (stp - stx);
        }
        stp = fmax(stp, stpmin);
        stp = fmin(stp, stpmax);
        if (stp >= stpmax && stpmax < stpmax0) // below a non-finite step: halfway to it
            stp = stx + 0.5 * (stpmax - stx);
        // no progress possible: the best step so far is tried last
        if ((brackt && (stp <= stmin || stp >= stmax)) ||
            (brackt && stmax - stmin <= MT_XTOL * stmax))
            stp = stx;
        ls->step = stp;
    }
}

// Backtracking as libLBFGS's: shrink by BT_DEC while the step is too long (no sufficient
// decrease, a NaN, or for strong Wolfe a slope above c2·|f'(0)|), grow by BT_INC while it is
// too short (slope below c2·f'(0)). Once a too-short and a too-long step are both known, the
// acceptable steps lie between them and the search bisects, where libLBFGS's ×0.5/×2.1 would
// cycle around a narrow strong Wolfe window. A step whose value was not finite bounds the
// search only once seen twice: when a too-short step turns up below it, it is tried again, since
// a NaN from a stochastic objective (or a transient overflow) would otherwise fence the search
// off from a strong Wolfe window beyond it and close in on the NaN until the evaluations run out.
static enum ls_outcome backtracking(struct fnet_ls *ls)
{
    const fnet_optim_params *p = ls->p;
    const fnet_line_search kind = p->line_search;
    const double finit = ls->f0, dginit = ls->dg0, dgtest = p->c1 * dginit;
    double lo = 0.0, hi = INFINITY; // longest too-short step, shortest too-long step
    bool hi_nonfinite = false;      // hi is a step whose value was not finite, seen once
    for (;;) {
        double dg;
        bool finite;
        enum ls_outcome o = ls_eval(ls, &dg, &finite);
        if (o != LS_OK)
            return o;
        double stp = ls->step;
        bool too_long;
        if (!finite || ls->f > finit + stp * dgtest)
            too_long = true;
        else if (kind == FNET_LINESEARCH_ARMIJO)
            return LS_OK;
        else if (dg < p->c2 * dginit)
            too_long = false;
        else if (kind == FNET_LINESEARCH_WOLFE)
            return LS_OK;
        else if (dg > -p->c2 * dginit)
            too_long = true;
        else
            return LS_OK;
        if (too_long && stp <= p->min_step)
            return LS_MIN_STEP;
        if (!too_long && stp >= p->max_step)
            return LS_MAX_STEP;
        if (ls->evals >= p->max_linesearch)
            return LS_MAX_EVALS;
        double next;
        if (too_long) {
            // a second non-finite value at the same step: a hard bound from now on
            bool again = !finite && hi_nonfinite && stp == hi;
            hi = stp;
            hi_nonfinite = !finite && !again;
            next = lo > 0.0 ? 0.5 * (lo + hi) : stp * BT_DEC;
        } else {
            lo = stp;
            if (stp >= hi) { // the non-finite bound, tried again, was finite and too short
                hi = INFINITY;
                hi_nonfinite = false;
            }
            next = isfinite(hi) ? 0.5 * (lo + hi) : stp * BT_INC;
            if (hi_nonfinite)
                next = hi; // try the non-finite bound again before closing in on it
        }
        if (fabs(next - stp) <= MT_XTOL * stp)
            return LS_ROUNDING;
        ls->step = fmin(fmax(next, p->min_step), p->max_step);
    }
}

enum ls_outcome fnet_linesearch(struct fnet_ls *ls)
{
    ls->evals = 0;
    ls->nonfinite = 0;
    ls->status = FNET_OK;
    ls->best_f = ls->f0;
    ls->best_step = 0.0;
    ls->f = NAN;
    if (!(ls->dg0 < 0.0))
        return LS_NOT_DESCENT;
    if (!(ls->step > 0.0) || !isfinite(ls->step))
        ls->step = 1.0;
    if (ls->p->line_search == FNET_LINESEARCH_MORE_THUENTE)
        return more_thuente(ls);
    return backtracking(ls);
}
