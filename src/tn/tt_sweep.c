/* The TT sweep: one GEMM per core and pass, each followed by a swap of two outer axes moving
 * contiguous runs of r floats, and one transpose at each end (docs/tt.md, "The sweep"). The batch
 * is cut into chunks whose states stay in cache, shared out between the backend's workers, each
 * summing its own share of the core gradients (docs/tt.md, "Chunks and workers"). */
#include "tn/tt_sweep.h"
#include "core/backend.h"

#include <string.h>

// A chunk's largest state is held to about this many floats (256 KB): with the other buffer
// and the state being read, a chunk's working set stays in a core's L2 cache.
#define CHUNK_FLOATS ((int64_t)1 << 16)

static int64_t debug_chunk; // fnet_debug_tt_chunk: samples per chunk, 0 for the default

void fnet_debug_tt_chunk(int64_t samples)
{
    debug_chunk = samples > 0 ? samples : 0;
}

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

static void free_parts(fnet_ctx *ctx, struct fnet_tt_part *part, int n)
{
    for (int p = 0; p < n && part != NULL; p++) {
        ctx->be->free(ctx, part[p].gbuf[0]);
        ctx->be->free(ctx, part[p].gbuf[1]);
        ctx->be->free(ctx, part[p].dcore);
    }
    fnet_free(part);
}

void fnet_tt_sweep_free(fnet_ctx *ctx, struct fnet_tt_sweep *w)
{
    free_parts(ctx, w->part, w->nparts);
    ctx->be->free(ctx, w->state);
    ctx->be->free(ctx, w->pcore);
    memset(w, 0, sizeof(*w));
}

// The largest state or GEMM output of a batch of B, and where each S_k starts in a block of
// states for B samples (returns the block's size).
static int64_t state_layout(const struct fnet_tt_shape *s, int64_t B, int64_t *biggest,
                            int64_t *off)
{
    int64_t total = 0;
    *biggest = B * fnet_tt_rows(s);
    for (int k = 0; k < s->d; k++) {
        int64_t a = fnet_tt_step_rows(s, k, B);
        int64_t in_size = a * fnet_tt_step_cols(s, k), out_size = a * s->m[k] * s->r[k];
        if (k < s->d - 1) {
            off[k] = total;
            total += in_size;
        }
        *biggest = in_size > *biggest ? in_size : *biggest;
        *biggest = out_size > *biggest ? out_size : *biggest;
    }
    return total;
}

fnet_status fnet_tt_sweep_reserve(fnet_ctx *ctx, struct fnet_tt_sweep *w,
                                  const struct fnet_tt_shape *s, int64_t B)
{
    // states grow linearly with the batch: a chunk of b samples starting at sample b0 keeps its
    // states at b0·sample_state, S_k at b·state_off[k] within them
    int64_t per_sample, off[FNET_TT_MAX_D] = {0};
    int64_t sample_state = state_layout(s, 1, &per_sample, off);
    struct fnet_tt_sweep n = {.s = *s, .max_batch = B, .chunk = B, .nparts = 1};
    n.sample_state = sample_state;
    memcpy(n.state_off, off, sizeof(off));
    if (s->d > 1) { // one core is one GEMM: nothing to keep in cache, the GEMM splits itself
        n.chunk = CHUNK_FLOATS / per_sample > 1 ? CHUNK_FLOATS / per_sample : 1;
        n.chunk = debug_chunk > 0 ? debug_chunk : n.chunk;
        n.chunk = n.chunk < B ? n.chunk : B;
        n.nparts = ctx->threads < B ? ctx->threads : (int)B;
        n.nparts = n.nparts < FNET_MAX_PARTS ? n.nparts : FNET_MAX_PARTS;
    }
    int64_t biggest, params = fnet_tt_num_params(s), state = B * sample_state;
    state_layout(s, n.chunk, &biggest, off);
    n.state = ctx->be->alloc(ctx, (size_t)(state > 0 ? state : 1) * sizeof(float));
    n.pcore = ctx->be->alloc(ctx, (size_t)params * sizeof(float));
    n.part = fnet_calloc((size_t)n.nparts, sizeof(*n.part));
    bool ok = n.state != NULL && n.pcore != NULL && n.part != NULL;
    for (int p = 0; ok && p < n.nparts; p++) {
        struct fnet_tt_part *q = &n.part[p];
        q->gbuf[0] = ctx->be->alloc(ctx, (size_t)biggest * sizeof(float));
        q->gbuf[1] = ctx->be->alloc(ctx, (size_t)biggest * sizeof(float));
        q->dcore = ctx->be->alloc(ctx, (size_t)params * sizeof(float));
        ok = q->gbuf[0] != NULL && q->gbuf[1] != NULL && q->dcore != NULL;
    }
    if (!ok) {
        fnet_tt_sweep_free(ctx, &n);
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY,
                         "tt sweep workspace for batch %lld (%lld floats)", (long long)B,
                         (long long)(state + params + n.nparts * (2 * biggest + params)));
    }
    fnet_tt_sweep_free(ctx, w);
    *w = n;
    return FNET_OK;
}

// Every core G_k (r, m, c) permuted to Gp_k (m, r, c), at the same offset.
static void permute_cores(fnet_ctx *ctx, const struct fnet_tt_shape *s, const float *cores,
                          float *pcores)
{
    for (int k = 0; k < s->d; k++) {
        int64_t off = fnet_tt_core_offset(s, k);
        ctx->be->permute_021(ctx, s->r[k], s->m[k], fnet_tt_step_cols(s, k), cores + off,
                             pcores + off, false);
    }
}

// One pass (forward or backward) over the batch: which chunks are whose.
struct pass {
    fnet_ctx *ctx;
    struct fnet_tt_sweep *w;
    const float *x, *dy;
    float *y, *dx;
    int64_t B, chunk, chunks;
    int parts;
    bool backward;
};

// As many parts as workers and samples allow, each cut into chunks of at most w->chunk; the
// backward pass cuts the batch as its forward pass did (chunk > 0), since a chunk's states are
// laid out for its own size.
static struct pass plan_pass(fnet_ctx *ctx, struct fnet_tt_sweep *w, int64_t B, int64_t chunk)
{
    struct pass ps = {.ctx = ctx, .w = w, .B = B};
    int64_t parts = w->nparts < ctx->threads ? w->nparts : ctx->threads;
    parts = parts < B ? parts : B;
    ps.chunk = (B + parts - 1) / parts;
    ps.chunk = ps.chunk < w->chunk ? ps.chunk : w->chunk;
    ps.chunk = chunk > 0 ? chunk : ps.chunk;
    ps.chunks = (B + ps.chunk - 1) / ps.chunk;
    ps.parts = (int)(parts < ps.chunks ? parts : ps.chunks);
    return ps;
}

// Chunk q's first sample and size (*b); its states.
static int64_t chunk_of(const struct pass *ps, int64_t q, int64_t *b, float **state)
{
    int64_t b0 = q * ps->chunk;
    *b = ps->B - b0 < ps->chunk ? ps->B - b0 : ps->chunk;
    *state = ps->w->state + b0 * ps->w->sample_state;
    return b0;
}

// Part p's chunks: [first, last).
static void chunks_of(const struct pass *ps, int p, int64_t *first, int64_t *last)
{
    *first = ps->chunks * p / ps->parts;
    *last = ps->chunks * (p + 1) / ps->parts;
}

// Step k = d-1..0 of a chunk of b samples:
//   C (a, m_k·r_k) = S_k (a, c) · Gp_kᵀ;  S_{k-1} (m_k, a, r_k) = C (a, m_k, r_k), outer axes swapped
// After step 0 (r_0 = 1), C is (M/m_0, b·m_0) and its transpose is y.
static void chunk_forward(fnet_ctx *ctx, const struct fnet_tt_sweep *w, float *C,
                          const float *x, int64_t b, float *state, float *y)
{
    const struct fnet_tt_shape *s = &w->s;
    const float *in = x;
    for (int k = s->d - 1; k >= 0; k--) {
        int64_t a = fnet_tt_step_rows(s, k, b), c = fnet_tt_step_cols(s, k);
        int64_t m = s->m[k], r = s->r[k];
        ctx->be->sgemm(ctx, false, true, a, m * r, c, 1.0f, in, c,
                       w->pcore + fnet_tt_core_offset(s, k), c, 0.0f, C, m * r);
        if (k > 0) {
            float *out = state + b * w->state_off[k - 1];
            ctx->be->permute_021(ctx, a, m, r, C, out, false);
            in = out;
        } else {
            ctx->be->transpose(ctx, a / b, b * m, C, y);
        }
    }
}

// Steps in reverse (k = 0..d-1) for a chunk of b samples, with dOut_k (a, m_k·r_k), starting
// from dyᵀ:
//   dGp_k (m_k·r_k, c) (+)= dOut_kᵀ · S_k     into the part's permuted core gradients
//   dS_k (a, c) = dOut_k · Gp_k = (m_{k+1}, a_{k+1}, r_{k+1}); swapped, it is dOut_{k+1};
//   at k = d-1 it is dx itself.
static void chunk_backward(fnet_ctx *ctx, const struct fnet_tt_sweep *w,
                           const struct fnet_tt_part *part, const float *x, const float *dy,
                           int64_t b, const float *state, bool first, float *dx)
{
    const struct fnet_tt_shape *s = &w->s;
    int64_t M = fnet_tt_rows(s);
    float *dout = part->gbuf[0], *tmp = part->gbuf[1];
    ctx->be->transpose(ctx, b * s->m[0], M / s->m[0], dy, dout);
    for (int k = 0; k < s->d; k++) {
        int64_t a = fnet_tt_step_rows(s, k, b), c = fnet_tt_step_cols(s, k);
        int64_t mr = s->m[k] * s->r[k], off = fnet_tt_core_offset(s, k);
        const float *sin = k == s->d - 1 ? x : state + b * w->state_off[k];
        ctx->be->sgemm(ctx, true, false, mr, c, a, 1.0f, dout, mr, sin, c, first ? 0.0f : 1.0f,
                       part->dcore + off, c);
        if (k == s->d - 1 && dx == NULL)
            break;
        float *ds = k == s->d - 1 ? dx : tmp;
        ctx->be->sgemm(ctx, false, false, a, c, mr, 1.0f, dout, mr, w->pcore + off, c, 0.0f, ds,
                       c);
        if (k < s->d - 1)
            ctx->be->permute_021(ctx, s->m[k + 1], fnet_tt_step_rows(s, k + 1, b), s->r[k + 1],
                                 ds, dout, false);
    }
}

// Part p's chunks, one after the other, forward or backward.
static void sweep_part(void *arg, int p)
{
    const struct pass *ps = arg;
    const struct fnet_tt_sweep *w = ps->w;
    int64_t first, last, N = fnet_tt_cols(&w->s), M = fnet_tt_rows(&w->s);
    chunks_of(ps, p, &first, &last);
    for (int64_t q = first; q < last; q++) {
        int64_t b;
        float *state;
        int64_t b0 = chunk_of(ps, q, &b, &state);
        if (ps->backward)
            chunk_backward(ps->ctx, w, &w->part[p], ps->x + b0 * N, ps->dy + b0 * M, b, state,
                           q == first, ps->dx ? ps->dx + b0 * N : NULL);
        else
            chunk_forward(ps->ctx, w, w->part[p].gbuf[0], ps->x + b0 * N, b, state,
                          ps->y + b0 * M);
    }
}

void fnet_tt_sweep_forward(fnet_ctx *ctx, struct fnet_tt_sweep *w, const float *cores,
                           const float *x, int64_t B, float *y)
{
    permute_cores(ctx, &w->s, cores, w->pcore);
    struct pass ps = plan_pass(ctx, w, B, 0);
    w->forward_chunk = ps.chunk;
    ps.x = x;
    ps.y = y;
    fnet_run_parts(ctx, ps.parts, sweep_part, &ps);
}

void fnet_tt_sweep_backward(fnet_ctx *ctx, struct fnet_tt_sweep *w, const float *cores,
                            const float *x, const float *dy, int64_t B, float *dcores,
                            bool accumulate, float *dx)
{
    const struct fnet_tt_shape *s = &w->s;
    permute_cores(ctx, s, cores, w->pcore);
    struct pass ps = plan_pass(ctx, w, B, w->forward_chunk);
    ps.x = x;
    ps.dy = dy;
    ps.dx = dx;
    ps.backward = true;
    fnet_run_parts(ctx, ps.parts, sweep_part, &ps);
    // the parts' gradients summed into part 0's, then each core swapped back to (r, m, c)
    float *dp = w->part[0].dcore;
    for (int p = 1; p < ps.parts; p++)
        ctx->be->axpy(ctx, fnet_tt_num_params(s), 1.0f, w->part[p].dcore, dp);
    for (int k = 0; k < s->d; k++) {
        int64_t off = fnet_tt_core_offset(s, k);
        ctx->be->permute_021(ctx, s->m[k], s->r[k], fnet_tt_step_cols(s, k), dp + off,
                             dcores + off, accumulate);
    }
}
