/* Nonlinear conjugate gradient directions: Polak–Ribière+ (the default), Fletcher–Reeves,
 * Hestenes–Stiefel and Dai–Yuan, restarted every n iterations and by Powell's orthogonality test
 * |gᵀg_prev| ≥ 0.2‖g‖². The loop and the strong Wolfe line search are shared with L-BFGS
 * (lbfgs.c, linesearch.c). Nocedal & Wright, "Numerical Optimization", ch. 5.2; Powell 1977;
 * Dai & Yuan, SIAM J. Optim. 1999. docs/optim.md. */
#include "optim/solver.h"
#include "core/backend.h"

#include <math.h>
#include <string.h>

// Powell's restart threshold on |gᵀg_prev| / ‖g‖²
#define POWELL 0.2

static const char *const beta_names[] = {
    [FNET_CG_PR_PLUS] = "pr+",
    [FNET_CG_FR] = "fr",
    [FNET_CG_HS] = "hs",
    [FNET_CG_DY] = "dy",
};
#define NUM_BETAS ((int)(sizeof(beta_names) / sizeof(beta_names[0])))

fnet_status fnet_cg_beta_parse(const char *name, fnet_cg_beta *beta)
{
    if (name == NULL || beta == NULL)
        return FNET_ERR_INVALID_ARG;
    for (int k = 0; k < NUM_BETAS; k++) {
        if (strcmp(name, beta_names[k]) == 0) {
            *beta = (fnet_cg_beta)k;
            return FNET_OK;
        }
    }
    return FNET_ERR_INVALID_ARG;
}

const char *fnet_cg_beta_name(fnet_cg_beta beta)
{
    if ((int)beta < 0 || (int)beta >= NUM_BETAS)
        return "unknown";
    return beta_names[beta];
}

// g (new gradient), gp (previous), d (previous direction) -> d (new direction), n each.
// With y = g − gp: gᵀy = ‖g‖² − gᵀgp and dᵀy = dᵀg − dᵀgp, so no y vector is formed; under
// strong Wolfe dᵀy ≥ (1 − c2)|dᵀgp| > 0, and Powell's test keeps gᵀy away from cancellation.
bool fnet_cg_direction(fnet_solver *s, int64_t since_restart)
{
    fnet_ctx *ctx = s->ctx;
    const struct fnet_backend_ops *be = ctx->be;
    int64_t n = s->n;
    const float *g = s->g, *gp = s->gp;
    float *d = s->d;
    double gg = be->dot(ctx, n, g, g);
    double ggp = be->dot(ctx, n, g, gp);
    bool restart = since_restart >= n || fabs(ggp) >= POWELL * gg;
    double beta = 0.0;
    if (!restart) {
        double gpgp, dy;
        switch (s->p.cg_beta) {
        case FNET_CG_FR:
            gpgp = be->dot(ctx, n, gp, gp);
            beta = gg / gpgp;
            break;
        case FNET_CG_HS:
            dy = be->dot(ctx, n, d, g) - be->dot(ctx, n, d, gp);
            beta = (gg - ggp) / dy;
            break;
        case FNET_CG_DY:
            dy = be->dot(ctx, n, d, g) - be->dot(ctx, n, d, gp);
            beta = gg / dy;
            break;
        case FNET_CG_PR_PLUS:
        default:
            gpgp = be->dot(ctx, n, gp, gp);
            beta = fmax(0.0, (gg - ggp) / gpgp);
            break;
        }
        if (!isfinite(beta))
            restart = true;
    }
    // d = −g, or d = β·d − g written as (−1·g) + (β·d): the same float in both orders
    be->axpby(ctx, n, -1.0f, g, restart ? 0.0f : (float)beta, d);
    return restart;
}
