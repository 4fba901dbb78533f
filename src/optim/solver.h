/* Private pieces of the L-BFGS and CG solvers shared by src/optim/{linesearch,lbfgs,cg,
 * solver_train}.c: the solver object, the line-search interface and the training entry point.
 * docs/optim.md has the math. */
#ifndef FNET_OPTIM_SOLVER_H
#define FNET_OPTIM_SOLVER_H

#include "core/internal.h"

/* The vectors are backend memory and only backend ops touch them; the scalar logic (line-search
 * steps, β, history bookkeeping, stopping tests) runs on the host on the doubles those ops return
 * (dot, amax, the objective's f): the solvers have no other transfer. */
struct fnet_solver {
    fnet_ctx *ctx;
    fnet_optim_params p;
    int64_t n;
    // work vectors (n floats each, backend memory), views into one block
    float *xp, *g, *gp, *d;
    float **sv, **yv; // L-BFGS: the m history pairs s = Δx, y = Δg, a ring of views; a pair
                      // enters by swapping pointers with xp and gp, never by copying
    double *rho;    // L-BFGS: 1/sᵀy of each pair (m)
    double *alpha;  // L-BFGS: two-loop coefficients (m)
    double gamma;   // L-BFGS: sᵀy/yᵀy of the newest pair, the initial Hessian scaling
    double *fpast;  // the last `past` values of f (past), a ring
    double last_move; // ‖x − xp‖ of the last accepted step: the length of the first steepest-
                      // descent trial of the next call (0: none yet, unit step 1/‖g‖ instead)
    int m;          // L-BFGS history capacity
    int count;      // pairs stored
    int head;       // ring index of the newest pair
};

// ---------------------------------------------------------------------------------------------
// Line search along x = xp + step·d (src/optim/linesearch.c)

enum ls_outcome {
    LS_OK = 0,        // the line search's conditions hold at the returned step
    LS_MAX_EVALS,     // max_linesearch evaluations, or the caller's evaluation budget, spent
    LS_ROUNDING,      // rounding errors prevent progress, or the interval is below xtol
    LS_MIN_STEP,      // the step reached min_step
    LS_MAX_STEP,      // the step reached max_step
    LS_NOT_DESCENT,   // dg0 >= 0: not a descent direction
    LS_CALLBACK,      // the objective returned an error (status in ls->status)
};

struct fnet_ls {
    // in
    fnet_ctx *ctx;
    const fnet_optim_params *p;
    int64_t n;
    const float *xp, *d;      // start point and direction (n)
    double f0, dg0;           // f(xp) and g(xp)ᵀd (< 0)
    fnet_objective_fn fn;
    void *user;
    int64_t budget;           // evaluations allowed (≤ 0: unlimited), counted across the run
    // in/out
    float *x, *g;             // the last point evaluated and its gradient (n)
    double step;              // in: first trial step; out: the last step evaluated
    double f;                 // f at x
    int evals;                // evaluations of this line search
    int nonfinite;            // trial points with a NaN/Inf value or gradient
    fnet_status status;       // the objective's error for LS_CALLBACK
    double best_step, best_f; // the lowest finite f seen (best_step 0: none below f0)
};

/* Run the line search p->line_search (Moré–Thuente or backtracking). On LS_OK, x = xp + step·d
 * and (f, g) are its value and gradient. On any other outcome x is the last point tried. */
enum ls_outcome fnet_linesearch(struct fnet_ls *ls);

/* x (n) = xp + step·d, the one formula every trial point and every restore uses (bitwise). */
void fnet_ls_trial(fnet_ctx *ctx, int64_t n, float *x, const float *xp, const float *d,
                   double step);

/* Evaluate fn at x: *f and g, a status, and false in *finite when f or any g is NaN/Inf. */
fnet_status fnet_ls_eval(fnet_ctx *ctx, fnet_objective_fn fn, void *user, int64_t n,
                         const float *x, double *f, float *g, bool *finite);

const char *fnet_ls_outcome_str(enum ls_outcome o);

// ---------------------------------------------------------------------------------------------
// Directions (src/optim/lbfgs.c, src/optim/cg.c)

/* Solver parameter checks, shared by create and the trainer. */
fnet_status fnet_solver_params_check(fnet_ctx *ctx, const fnet_optim_params *p);

/* CG: d = −g + β·d, β from (g, gp, d) by p->cg_beta, with Powell's restart test and the restart
 * every n iterations (since_restart counts iterations since the last one). Returns true when it
 * restarted (d = −g). */
bool fnet_cg_direction(fnet_solver *s, int64_t since_restart);

// ---------------------------------------------------------------------------------------------
// Training (src/optim/solver_train.c)

/* fnet_train() for FNET_OPTIM_LBFGS and FNET_OPTIM_CG: the same contract (train.h). */
fnet_status fnet_train_solver(fnet_model *m, const fnet_optim_params *op,
                              const fnet_train_params *tp, const fnet_dataset *train,
                              const fnet_dataset *val, fnet_epoch_fn on_epoch, void *user,
                              fnet_train_stats *stats);

#endif
