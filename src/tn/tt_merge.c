/* Merging adjacent TT cores and back-propagating through the merge (docs/tt.md, "Merged cores").
 * P (r, Ma, Na, r_l) merged with G_l (r_l, m, n, r'') is one GEMM, (r·Ma·Na, r_l)·(r_l, m·n·r''),
 * whose (Na, m) axes are then swapped for every (r, Ma) row to give (r, Ma·m, Na·n, r''). */
#include "tn/tt_merge.h"
#include "core/backend.h"

#include <string.h>

static int groups_of(const struct fnet_tt_shape *s, unsigned mask, int *start)
{
    int ng = 0;
    start[ng++] = 0;
    for (int k = 0; k < s->d - 1; k++)
        if (!(mask & (1u << k)))
            start[ng++] = k + 1;
    start[ng] = s->d;
    return ng;
}

// The shape of the product P_l = G_g ··· G_l of a group starting at core g.
static void partial_shape(const struct fnet_tt_shape *s, int g, int l, int64_t *r0, int64_t *M,
                          int64_t *N, int64_t *r1)
{
    *r0 = s->r[g];
    *r1 = s->r[l + 1];
    *M = *N = 1;
    for (int k = g; k <= l; k++) {
        *M *= s->m[k];
        *N *= s->n[k];
    }
}

void fnet_tt_merge_shape(const struct fnet_tt_shape *s, unsigned mask, struct fnet_tt_shape *ms,
                         int64_t *partial_floats)
{
    int start[FNET_TT_MAX_D + 1];
    int ng = groups_of(s, mask, start);
    memset(ms, 0, sizeof(*ms));
    ms->d = ng;
    int64_t floats = 0;
    for (int g = 0; g < ng; g++) {
        int64_t r0 = 1, M = 1, N = 1, r1 = 1;
        for (int l = start[g]; l < start[g + 1]; l++) {
            partial_shape(s, start[g], l, &r0, &M, &N, &r1);
            floats += r0 * M * N * r1;
        }
        ms->m[g] = M;
        ms->n[g] = N;
        ms->r[g] = r0;
    }
    ms->r[ng] = s->r[s->d]; // a ring's boundary rank stays
    if (partial_floats)
        *partial_floats = floats;
}

double fnet_tt_merge_macs(const struct fnet_tt_shape *s, unsigned mask)
{
    int start[FNET_TT_MAX_D + 1];
    int ng = groups_of(s, mask, start);
    double macs = 0.0;
    for (int g = 0; g < ng; g++)
        for (int l = start[g] + 1; l < start[g + 1]; l++) {
            int64_t r0, M, N, r1;
            partial_shape(s, start[g], l - 1, &r0, &M, &N, &r1);
            macs += (double)(r0 * M * N) * (double)r1 * (double)(s->m[l] * s->n[l] * s->r[l + 1]);
        }
    return macs;
}

void fnet_tt_merge_free(fnet_ctx *ctx, struct fnet_tt_merge *m)
{
    ctx->be->free(ctx, m->mcore);
    ctx->be->free(ctx, m->mgrad);
    ctx->be->free(ctx, m->partial);
    ctx->be->free(ctx, m->tmp);
    ctx->be->free(ctx, m->dp[0]);
    ctx->be->free(ctx, m->dp[1]);
    memset(m, 0, sizeof(*m));
}

fnet_status fnet_tt_merge_reserve(fnet_ctx *ctx, struct fnet_tt_merge *m,
                                  const struct fnet_tt_shape *s, unsigned mask)
{
    struct fnet_tt_merge n = {.mask = mask};
    n.ng = groups_of(s, mask, n.start);
    int64_t partial_floats = 0, biggest = 1;
    fnet_tt_merge_shape(s, mask, &n.ms, &partial_floats);
    for (int g = 0; g < n.ng; g++)
        for (int l = n.start[g]; l < n.start[g + 1]; l++) {
            int64_t r0, M, N, r1;
            partial_shape(s, n.start[g], l, &r0, &M, &N, &r1);
            biggest = r0 * M * N * r1 > biggest ? r0 * M * N * r1 : biggest;
        }
    int64_t off = 0;
    for (int g = 0; g < n.ng; g++)
        for (int l = n.start[g]; l < n.start[g + 1]; l++) {
            int64_t r0, M, N, r1;
            partial_shape(s, n.start[g], l, &r0, &M, &N, &r1);
            n.partial_off[l] = off;
            off += r0 * M * N * r1;
        }
    int64_t mfloats = fnet_tt_num_params(&n.ms);
    n.mcore = ctx->be->alloc(ctx, (size_t)mfloats * sizeof(float));
    n.mgrad = ctx->be->alloc(ctx, (size_t)mfloats * sizeof(float));
    n.partial = ctx->be->alloc(ctx, (size_t)partial_floats * sizeof(float));
    n.tmp = ctx->be->alloc(ctx, (size_t)biggest * sizeof(float));
    n.dp[0] = ctx->be->alloc(ctx, (size_t)biggest * sizeof(float));
    n.dp[1] = ctx->be->alloc(ctx, (size_t)biggest * sizeof(float));
    if (!n.mcore || !n.mgrad || !n.partial || !n.tmp || !n.dp[0] || !n.dp[1]) {
        fnet_tt_merge_free(ctx, &n);
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "merged tt cores (%lld floats)",
                         (long long)(2 * mfloats + partial_floats + 3 * biggest));
    }
    fnet_tt_merge_free(ctx, m);
    *m = n;
    return FNET_OK;
}

// Swap the (A, B) axes of every one of `rows` blocks (A, B, R): out block (B, A, R).
static void swap_blocks(fnet_ctx *ctx, int64_t rows, int64_t A, int64_t B, int64_t R,
                        const float *in, float *out)
{
    for (int64_t o = 0; o < rows; o++)
        ctx->be->permute_021(ctx, A, B, R, in + o * A * B * R, out + o * A * B * R, false);
}

void fnet_tt_merge_forward(fnet_ctx *ctx, struct fnet_tt_merge *m, const struct fnet_tt_shape *s,
                           const float *cores)
{
    for (int g = 0; g < m->ng; g++) {
        int first = m->start[g], last = m->start[g + 1] - 1;
        float *P = m->partial + m->partial_off[first];
        int64_t size = s->r[first] * s->m[first] * s->n[first] * s->r[first + 1];
        ctx->be->copy(ctx, P, cores + fnet_tt_core_offset(s, first), (size_t)size * sizeof(float));
        for (int l = first + 1; l <= last; l++) {
            int64_t r0, Ma, Na, rl;
            partial_shape(s, first, l - 1, &r0, &Ma, &Na, &rl);
            int64_t cols = s->m[l] * s->n[l] * s->r[l + 1];
            // tmp (r0·Ma·Na, m·n·r'') = P_{l-1} · G_l, then (Na, m) swapped per (r0, Ma) row
            ctx->be->sgemm(ctx, false, false, r0 * Ma * Na, cols, rl, 1.0f,
                           m->partial + m->partial_off[l - 1], rl,
                           cores + fnet_tt_core_offset(s, l), cols, 0.0f, m->tmp, cols);
            swap_blocks(ctx, r0 * Ma, Na, s->m[l], s->n[l] * s->r[l + 1], m->tmp,
                        m->partial + m->partial_off[l]);
        }
        int64_t r0, M, N, r1;
        partial_shape(s, first, last, &r0, &M, &N, &r1);
        ctx->be->copy(ctx, m->mcore + fnet_tt_core_offset(&m->ms, g),
                      m->partial + m->partial_off[last], (size_t)(r0 * M * N * r1) * sizeof(float));
    }
}

void fnet_tt_merge_backward(fnet_ctx *ctx, struct fnet_tt_merge *m, const struct fnet_tt_shape *s,
                            const float *cores, float *grads, bool accumulate)
{
    for (int g = 0; g < m->ng; g++) {
        int first = m->start[g], last = m->start[g + 1] - 1;
        const float *dq = m->mgrad + fnet_tt_core_offset(&m->ms, g);
        int buf = 0;
        for (int l = last; l > first; l--) {
            int64_t r0, Ma, Na, rl;
            partial_shape(s, first, l - 1, &r0, &Ma, &Na, &rl);
            int64_t cols = s->m[l] * s->n[l] * s->r[l + 1], rows = r0 * Ma * Na;
            // undo the swap: dtmp (r0·Ma·Na, m·n·r'')
            swap_blocks(ctx, r0 * Ma, s->m[l], Na, s->n[l] * s->r[l + 1], dq, m->tmp);
            // dG_l (r_l, m·n·r'') (+)= P_{l-1}ᵀ · dtmp;  dP_{l-1} = dtmp · G_lᵀ
            ctx->be->sgemm(ctx, true, false, rl, cols, rows, 1.0f, m->partial + m->partial_off[l - 1],
                           rl, m->tmp, cols, accumulate ? 1.0f : 0.0f,
                           grads + fnet_tt_core_offset(s, l), cols);
            ctx->be->sgemm(ctx, false, true, rows, rl, cols, 1.0f, m->tmp, cols,
                           cores + fnet_tt_core_offset(s, l), cols, 0.0f, m->dp[buf], rl);
            dq = m->dp[buf];
            buf = 1 - buf;
        }
        int64_t size = s->r[first] * s->m[first] * s->n[first] * s->r[first + 1];
        float *gf = grads + fnet_tt_core_offset(s, first);
        if (accumulate)
            ctx->be->axpy(ctx, size, 1.0f, dq, gf);
        else
            ctx->be->copy(ctx, gf, dq, (size_t)size * sizeof(float));
    }
}
