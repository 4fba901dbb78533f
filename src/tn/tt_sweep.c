/* The TT sweep: one GEMM per core and pass, each followed by a swap of two outer axes moving
 * contiguous runs of r floats, and one transpose at each end (docs/tt.md, "The sweep"). */
#include "tn/tt_sweep.h"
#include "core/backend.h"

#include <string.h>

int64_t fnet_tt_step_rows(const struct fnet_tt_shape *s, int k, int64_t B)
{
    int64_t a = B;
    for (int l = k + 1; l < s->d; l++)
        a *= s->m[l];
    for (int l = 0; l < k; l++)
        a *= s->n[l];
    return a;
}

int64_t fnet_tt_step_cols(const struct fnet_tt_shape *s, int k)
{
    return s->n[k] * s->r[k + 1];
}

void fnet_tt_sweep_free(fnet_ctx *ctx, struct fnet_tt_sweep *w)
{
    ctx->be->free(ctx, w->state);
    ctx->be->free(ctx, w->gbuf[0]);
    ctx->be->free(ctx, w->gbuf[1]);
    ctx->be->free(ctx, w->core);
    ctx->be->free(ctx, w->dcore);
    memset(w, 0, sizeof(*w));
}

fnet_status fnet_tt_sweep_reserve(fnet_ctx *ctx, struct fnet_tt_sweep *w,
                                  const struct fnet_tt_shape *s, int64_t B)
{
    int64_t total = 0, biggest = B * fnet_tt_rows(s), max_core = 1;
    int64_t off[FNET_TT_MAX_D] = {0};
    for (int k = 0; k < s->d; k++) {
        int64_t a = fnet_tt_step_rows(s, k, B);
        int64_t in_size = a * fnet_tt_step_cols(s, k), out_size = a * s->m[k] * s->r[k];
        if (k < s->d - 1) {
            off[k] = total;
            total += in_size;
        }
        biggest = in_size > biggest ? in_size : biggest;
        biggest = out_size > biggest ? out_size : biggest;
        int64_t core = s->r[k] * s->m[k] * s->n[k] * s->r[k + 1];
        max_core = core > max_core ? core : max_core;
    }
    struct fnet_tt_sweep n = {.s = *s, .max_batch = B};
    n.state = ctx->be->alloc(ctx, (size_t)(total > 0 ? total : 1) * sizeof(float));
    n.gbuf[0] = ctx->be->alloc(ctx, (size_t)biggest * sizeof(float));
    n.gbuf[1] = ctx->be->alloc(ctx, (size_t)biggest * sizeof(float));
    n.core = ctx->be->alloc(ctx, (size_t)max_core * sizeof(float));
    n.dcore = ctx->be->alloc(ctx, (size_t)max_core * sizeof(float));
    if (n.state == NULL || n.gbuf[0] == NULL || n.gbuf[1] == NULL || n.core == NULL ||
        n.dcore == NULL) {
        fnet_tt_sweep_free(ctx, &n);
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY,
                         "tt sweep workspace for batch %lld (%lld floats)", (long long)B,
                         (long long)(total + 2 * biggest + 2 * max_core));
    }
    memcpy(n.state_off, off, sizeof(off));
    fnet_tt_sweep_free(ctx, w);
    *w = n;
    return FNET_OK;
}

// Step k = d-1..0, with the core permuted to Gp_k (m_k, r_k, c):
//   C (a, m_k·r_k) = S_k (a, c) · Gp_kᵀ;  S_{k-1} (m_k, a, r_k) = C (a, m_k, r_k), outer axes swapped
// After step 0 (r_0 = 1), C is (M/m_0, B·m_0) and its transpose is y.
void fnet_tt_sweep_forward(fnet_ctx *ctx, struct fnet_tt_sweep *w, const float *cores,
                           const float *x, int64_t B, float *y)
{
    const struct fnet_tt_shape *s = &w->s;
    const float *in = x;
    for (int k = s->d - 1; k >= 0; k--) {
        int64_t a = fnet_tt_step_rows(s, k, B), c = fnet_tt_step_cols(s, k);
        int64_t m = s->m[k], r = s->r[k];
        ctx->be->permute_021(ctx, r, m, c, cores + fnet_tt_core_offset(s, k), w->core, false);
        float *C = w->gbuf[0];
        ctx->be->sgemm(ctx, false, true, a, m * r, c, 1.0f, in, c, w->core, c, 0.0f, C, m * r);
        if (k > 0) {
            float *out = w->state + w->state_off[k - 1];
            ctx->be->permute_021(ctx, a, m, r, C, out, false);
            in = out;
        } else {
            ctx->be->transpose(ctx, a / B, B * m, C, y);
        }
    }
}

// Steps in reverse (k = 0..d-1) with dOut_k (a, m_k·r_k), starting from dyᵀ:
//   dGp_k (m_k·r_k, c) = dOut_kᵀ · S_k       swapped back to (r, m, c) into the core's gradient
//   dS_k (a, c) = dOut_k · Gp_k = (m_{k+1}, a_{k+1}, r_{k+1}); swapped, it is dOut_{k+1};
//   at k = d-1 it is dx itself.
void fnet_tt_sweep_backward(fnet_ctx *ctx, struct fnet_tt_sweep *w, const float *cores,
                            const float *x, const float *dy, int64_t B, float *dcores,
                            bool accumulate, float *dx)
{
    const struct fnet_tt_shape *s = &w->s;
    int64_t M = fnet_tt_rows(s);
    float *dout = w->gbuf[0], *tmp = w->gbuf[1];
    ctx->be->transpose(ctx, B * s->m[0], M / s->m[0], dy, dout);
    for (int k = 0; k < s->d; k++) {
        int64_t a = fnet_tt_step_rows(s, k, B), c = fnet_tt_step_cols(s, k);
        int64_t m = s->m[k], r = s->r[k], off = fnet_tt_core_offset(s, k);
        const float *sin = k == s->d - 1 ? x : w->state + w->state_off[k];
        ctx->be->sgemm(ctx, true, false, m * r, c, a, 1.0f, dout, m * r, sin, c, 0.0f, w->dcore, c);
        ctx->be->permute_021(ctx, m, r, c, w->dcore, dcores + off, accumulate);
        if (k == s->d - 1 && dx == NULL)
            break;
        ctx->be->permute_021(ctx, r, m, c, cores + off, w->core, false);
        float *ds = k == s->d - 1 ? dx : tmp;
        ctx->be->sgemm(ctx, false, false, a, c, m * r, 1.0f, dout, m * r, w->core, c, 0.0f, ds, c);
        if (k < s->d - 1)
            ctx->be->permute_021(ctx, s->m[k + 1], fnet_tt_step_rows(s, k + 1, B), s->r[k + 1], ds,
                                 dout, false);
    }
}
