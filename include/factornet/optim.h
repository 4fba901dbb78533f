/* Optimizers on a flat parameter vector: the first-order ones (SGD, momentum, Nesterov, RMSprop,
 * Adam, AdamW) with learning-rate schedules, and the settings of the L-BFGS and nonlinear-CG
 * solvers (factornet/solver.h, docs/optim.md). They see (n, w, g) and never know what a layer is. */
#ifndef FACTORNET_OPTIM_H
#define FACTORNET_OPTIM_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <factornet/export.h>
#include <factornet/status.h>
#include <factornet/ctx.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum fnet_optim_kind {
    FNET_OPTIM_SGD = 0,      /**< w -= lr·g */
    FNET_OPTIM_MOMENTUM = 1, /**< v = μv + g; w -= lr·v (PyTorch's SGD with momentum) */
    FNET_OPTIM_NESTEROV = 2, /**< v = μv + g; w -= lr·(g + μv) */
    FNET_OPTIM_RMSPROP = 3,  /**< s = ρs + (1−ρ)g²; w -= lr·g/(√s + ε) */
    FNET_OPTIM_ADAM = 4,     /**< Kingma & Ba, with bias correction */
    FNET_OPTIM_ADAMW = 5,    /**< Adam with decoupled weight decay (Loshchilov & Hutter) */
    FNET_OPTIM_LBFGS = 6,    /**< L-BFGS solver (factornet/solver.h); not a step-wise optimizer */
    FNET_OPTIM_CG = 7,       /**< nonlinear conjugate gradient solver (factornet/solver.h) */
} fnet_optim_kind;

/** Line searches of the L-BFGS and CG solvers (docs/optim.md). */
typedef enum fnet_line_search {
    FNET_LINESEARCH_MORE_THUENTE = 0, /**< Moré–Thuente (strong Wolfe, safeguarded cubic
                                           interpolation); the default */
    FNET_LINESEARCH_ARMIJO = 1,       /**< backtracking to sufficient decrease only (L-BFGS only) */
    FNET_LINESEARCH_WOLFE = 2,        /**< backtracking/extrapolating to the Wolfe conditions
                                           (L-BFGS only) */
    FNET_LINESEARCH_STRONG_WOLFE = 3, /**< backtracking/extrapolating to the strong Wolfe
                                           conditions */
} fnet_line_search;

/** The β of nonlinear conjugate gradient, d = −g + β·d_prev (docs/optim.md). */
typedef enum fnet_cg_beta {
    FNET_CG_PR_PLUS = 0, /**< Polak–Ribière+, max(0, gᵀ(g − g_prev)/‖g_prev‖²); the default */
    FNET_CG_FR = 1,      /**< Fletcher–Reeves, ‖g‖²/‖g_prev‖² */
    FNET_CG_HS = 2,      /**< Hestenes–Stiefel, gᵀy/d_prevᵀy with y = g − g_prev */
    FNET_CG_DY = 3,      /**< Dai–Yuan, ‖g‖²/d_prevᵀy */
} fnet_cg_beta;

typedef enum fnet_schedule {
    FNET_SCHEDULE_CONSTANT = 0, /**< lr */
    FNET_SCHEDULE_STEP = 1,     /**< lr·gamma^floor(epoch / step_epochs) */
    FNET_SCHEDULE_COSINE = 2,   /**< lr_min + ½(lr − lr_min)(1 + cos(π·epoch / epochs)) */
} fnet_schedule;

/** Optimizer settings; get them from fnet_optim_params_default(kind). */
typedef struct fnet_optim_params {
    fnet_optim_kind kind;
    float lr;            /**< learning rate; default 1e-3 (Adam, AdamW, RMSprop), 1e-2 (others) */
    float momentum;      /**< μ of momentum/Nesterov; default 0.9 */
    float beta1, beta2;  /**< Adam moments; default 0.9, 0.999 */
    float eps;           /**< Adam/RMSprop ε; default 1e-8 (Adam), 1e-7 (RMSprop) */
    float rho;           /**< RMSprop decay; default 0.9 */
    float weight_decay;  /**< AdamW decoupled decay; default 0.01 for AdamW, 0 otherwise */
    fnet_schedule schedule; /**< default FNET_SCHEDULE_CONSTANT */
    int step_epochs;     /**< STEP: epochs between decays; default 10 */
    float gamma;         /**< STEP: factor; default 0.1 */
    float lr_min;        /**< COSINE: final rate; default 0 */

    /* L-BFGS and CG (factornet/solver.h); the first-order kinds ignore these fields. */
    int history;         /**< L-BFGS: correction pairs m kept, ≥ 1; default 10 */
    int iters_per_batch; /**< fnet_train(): solver iterations K on each minibatch (each epoch
                              with batch 0), ≥ 1; default 10 */
    int max_iter;        /**< fnet_solver_minimize(): iteration limit, 0 = none; default 0 */
    int64_t max_evals;   /**< objective evaluations per minimize call, 0 = none; default 0 */
    fnet_line_search line_search; /**< default FNET_LINESEARCH_MORE_THUENTE */
    int max_linesearch;  /**< evaluations per line search, ≥ 1; default 20 */
    double c1;           /**< sufficient decrease (Armijo) constant, 0 < c1 < c2; default 1e-4 */
    double c2;           /**< curvature constant, c1 < c2 < 1; default 0.9 (L-BFGS), 0.1 (CG) */
    double gtol;         /**< stop when ‖g‖∞ ≤ gtol (absolute); default 1e-5 */
    int past;            /**< stop when (f[k−past] − f[k]) / max(1, |f[k]|) ≤ delta; 0 (the
                              default) turns this test off */
    double delta;        /**< see past; default 1e-5 */
    double min_step, max_step; /**< line-search step bounds; default 1e-20, 1e20 */
    fnet_cg_beta cg_beta; /**< CG: the β formula; default FNET_CG_PR_PLUS */
} fnet_optim_params;

/** Defaults for one kind, as documented field by field above. */
FNET_API fnet_optim_params fnet_optim_params_default(fnet_optim_kind kind);
/** Parse "adam", "adamw", "sgd", "momentum", "nesterov", "rmsprop", "lbfgs", "cg".
 *  @return FNET_OK or FNET_ERR_INVALID_ARG. */
FNET_API fnet_status fnet_optim_kind_parse(const char *name, fnet_optim_kind *kind);
FNET_API const char *fnet_optim_kind_name(fnet_optim_kind kind);

/** Parse "morethuente", "armijo", "wolfe", "strongwolfe". @return FNET_OK or FNET_ERR_INVALID_ARG. */
FNET_API fnet_status fnet_line_search_parse(const char *name, fnet_line_search *ls);
FNET_API const char *fnet_line_search_name(fnet_line_search ls);
/** Parse "pr+", "fr", "hs", "dy". @return FNET_OK or FNET_ERR_INVALID_ARG. */
FNET_API fnet_status fnet_cg_beta_parse(const char *name, fnet_cg_beta *beta);
FNET_API const char *fnet_cg_beta_name(fnet_cg_beta beta);

/** The learning rate a schedule gives at `epoch` (0-based) of `epochs`. */
FNET_API float fnet_schedule_lr(const fnet_optim_params *p, int epoch, int epochs);

/** Opaque optimizer: the parameters and its state vectors (n floats each). */
typedef struct fnet_optimizer fnet_optimizer;

/** Create an optimizer for vectors of n floats, on ctx's backend.
 *  @param[out] out freed by the caller with fnet_optimizer_free().
 *  @return FNET_OK, FNET_ERR_INVALID_ARG (lr ≤ 0 or not finite, a β outside [0,1), ε ≤ 0,
 *          a negative decay, n < 1), FNET_ERR_UNSUPPORTED (LBFGS and CG are solvers, not
 *          step-wise optimizers: use fnet_train() or factornet/solver.h), FNET_ERR_OUT_OF_MEMORY. */
FNET_API fnet_status fnet_optimizer_create(fnet_ctx *ctx, const fnet_optim_params *p, int64_t n,
                                           fnet_optimizer **out);
FNET_API void fnet_optimizer_free(fnet_optimizer *opt);

/** One step: update w (n, backend memory) in place from g (n, backend memory). Never
 *  allocates. @return FNET_OK, FNET_ERR_INVALID_ARG (NULL or equal w and g). */
FNET_API fnet_status fnet_optimizer_step(fnet_optimizer *opt, float *w, const float *g);

/** Current learning rate (what the schedule set last) and setting it. */
FNET_API float fnet_optimizer_lr(const fnet_optimizer *opt);
FNET_API fnet_status fnet_optimizer_set_lr(fnet_optimizer *opt, float lr);
/** The ctx the optimizer was made on (its state lives in that ctx's backend memory). */
FNET_API fnet_ctx *fnet_optimizer_ctx(const fnet_optimizer *opt);
/** The optimizer's kind and the length n of the vectors it was made for. */
FNET_API fnet_optim_kind fnet_optimizer_kind(const fnet_optimizer *opt);
FNET_API int64_t fnet_optimizer_size(const fnet_optimizer *opt);
/** Resize the optimizer to vectors of n floats: run k copies len[k] state floats from src[k]
 *  to dst[k] (the three arrays are host memory); all else starts at zero. Steps and learning rate are kept. Used when a model's
 *  flat vector is rebuilt (rank-adaptive training).
 *  @return FNET_OK, FNET_ERR_INVALID_ARG (a run out of bounds), FNET_ERR_OUT_OF_MEMORY (the
 *          optimizer is then unchanged). */
FNET_API fnet_status fnet_optimizer_remap(fnet_optimizer *opt, int64_t n, int count,
                                          const int64_t *src, const int64_t *dst,
                                          const int64_t *len);
/** Multiply every state vector by mask (n floats, backend memory: a model's pruning mask,
 *  fnet_model_mask()), so that the state of pruned parameters is exactly zero.
 *  @return FNET_OK, FNET_ERR_INVALID_ARG (NULL). */
FNET_API fnet_status fnet_optimizer_apply_mask(fnet_optimizer *opt, const float *mask);
/** Steps taken so far. */
FNET_API int64_t fnet_optimizer_steps(const fnet_optimizer *opt);

/** The optimizer's state: `count` vectors of n floats (Adam: m, v; backend memory, owned by the
 *  optimizer) and the step count, for checkpoints. @param i < count. Names: "m", "v",
 *  "velocity", "square_avg". */
FNET_API int fnet_optimizer_num_states(const fnet_optimizer *opt);
FNET_API float *fnet_optimizer_state(fnet_optimizer *opt, int i, const char **name);
/** Host copies of state vector i: v (n floats, host memory) = the state; the state = v.
 *  @return FNET_OK, FNET_ERR_INVALID_ARG (no state i, NULL v). */
FNET_API fnet_status fnet_optimizer_get_state(const fnet_optimizer *opt, int i, float *v);
FNET_API fnet_status fnet_optimizer_set_state(fnet_optimizer *opt, int i, const float *v);
FNET_API fnet_status fnet_optimizer_set_steps(fnet_optimizer *opt, int64_t steps);

#ifdef __cplusplus
}
#endif
#endif
