/* The TT sweep: one GEMM per core and pass, each followed by a swap of two outer axes moving
 * contiguous runs of r floats, and one transpose at each end (docs/tt.md, "The sweep"). The batch
 * is cut into chunks whose states stay in cache, shared out between the backend's workers, each
 * summing its own share of the core gradients (docs/tt.md, "Chunks and workers").
 *
 * The same sweep runs tensor rings (r_0 = r_d = R > 1; docs/tn.md, "The ring sweep"): the first
 * step (the last core) puts the ring index α among its output columns, every later state carries
 * α as its outermost row index (each swap runs per α block), and the last step (core 0) is one
 * GEMM per α block, summed, which closes the trace. R = 1 is the TT sweep, op for op. */
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
    int64_t a = k < s->d - 1 ? B * s->r[0] : B;
    for (int l = k + 1; l < s->d; l++)
        a *= s->m[l];
    for (int l = 0; l < k; l++)
        a *= s->n[l];
    return a;
}

int64_t fnet_tt_step_cols(const struct fnet_tt_shape *s, int k)
{
    return k == s->d - 1 ? s->n[k] : s->n[k] * s->r[k + 1];
}

int64_t fnet_tt_step_out(const struct fnet_tt_shape *s, int k)
{
    if (k == 0)
        return s->m[0];
    return s->m[k] * s->r[k] * (k == s->d - 1 ? s->r[s->d] : 1);
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
    ctx->be->free(ctx, w->ptmp);
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
        int64_t in_size = a * fnet_tt_step_cols(s, k);
        int64_t out_size = (k == 0 ? a / s->r[0] : a) * fnet_tt_step_out(s, k);
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
    // one core is one GEMM: nothing to keep in cache, the GEMM splits itself; a GPU takes the
    // whole batch at once in one part (chunks would only make its GEMMs small), but for the
    // tests' chunk size
    if (s->d > 1) {
        if (ctx->be->whole_batches) {
            n.chunk = B;
            n.nparts = 1;
        } else {
            n.chunk = CHUNK_FLOATS / per_sample > 1 ? CHUNK_FLOATS / per_sample : 1;
            n.nparts = ctx->threads < B ? ctx->threads : (int)B;
        }
        n.chunk = debug_chunk > 0 ? debug_chunk : n.chunk;
        n.chunk = n.chunk < B ? n.chunk : B;
        n.nparts = n.nparts < FNET_MAX_PARTS ? n.nparts : FNET_MAX_PARTS;
    }
    int64_t biggest, params = fnet_tt_num_params(s), state = B * sample_state;
    state_layout(s, n.chunk, &biggest, off);
    n.state = ctx->be->alloc(ctx, (size_t)(state > 0 ? state : 1) * sizeof(float));
    n.pcore = ctx->be->alloc(ctx, (size_t)params * sizeof(float));
    n.part = fnet_calloc((size_t)n.nparts, sizeof(*n.part));
    bool ok = n.state != NULL && n.pcore != NULL && n.part != NULL;
    if (ok && s->r[0] > 1) { // a ring's last core is permuted through a buffer of its size
        int64_t last = params - fnet_tt_core_offset(s, s->d - 1);
        n.ptmp = ctx->be->alloc(ctx, (size_t)last * sizeof(float));
        ok = n.ptmp != NULL;
    }
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

// Every core G_k (r, m, c) permuted to Gp_k (m, r, c), at the same offset, except core 0, used
// as it is: (R, m, c) holds one (m, c) matrix per ring index (for a TT, (1, m, c) is (m, 1, c)).
// A ring's last core (r, m, n, R) becomes (R, m, r, n): through tmp, a transpose to (R, r, m, n)
// and a swap per α.
static void permute_cores(fnet_ctx *ctx, const struct fnet_tt_shape *s, const float *cores,
                          float *pcores, float *tmp)
{
    int64_t R = s->r[0];
    for (int k = 0; k < s->d; k++) {
        int64_t off = fnet_tt_core_offset(s, k), c = fnet_tt_step_cols(s, k);
        int64_t r = s->r[k], m = s->m[k];
        if (k == 0) {
            ctx->be->permute_021(ctx, 1, r * m, c, cores + off, pcores + off, false);
        } else if (k == s->d - 1 && R > 1) {
            ctx->be->transpose(ctx, r * m * c, R, cores + off, tmp);
            for (int64_t al = 0; al < R; al++)
                ctx->be->permute_021(ctx, r, m, c, tmp + al * r * m * c,
                                     pcores + off + al * r * m * c, false);
        } else {
            ctx->be->permute_021(ctx, r, m, c, cores + off, pcores + off, false);
        }
    }
}

// The core gradients back from the permuted layout of permute_cores, written or added.
static void unpermute_grads(fnet_ctx *ctx, const struct fnet_tt_shape *s, const float *dp,
                            float *tmp, float *dcores, bool accumulate)
{
    int64_t R = s->r[0];
    for (int k = 0; k < s->d; k++) {
        int64_t off = fnet_tt_core_offset(s, k), c = fnet_tt_step_cols(s, k);
        int64_t r = s->r[k], m = s->m[k];
        if (k == 0) {
            ctx->be->permute_021(ctx, 1, r * m, c, dp + off, dcores + off, accumulate);
        } else if (k == s->d - 1 && R > 1) {
            for (int64_t al = 0; al < R; al++)
                ctx->be->permute_021(ctx, m, r, c, dp + off + al * r * m * c,
                                     tmp + al * r * m * c, false);
            ctx->be->permute_021(ctx, R, r * m * c, 1, tmp, dcores + off, accumulate);
        } else {
            ctx->be->permute_021(ctx, m, r, c, dp + off, dcores + off, accumulate);
        }
    }
}

// Swap the outer axes (P, Q) of each of R consecutive blocks (P, Q, rr) (one block for a TT).
static void swap_per_ring(fnet_ctx *ctx, int64_t R, int64_t P, int64_t Q, int64_t rr,
                          const float *in, float *out)
{
    for (int64_t al = 0; al < R; al++)
        ctx->be->permute_021(ctx, P, Q, rr, in + al * P * Q * rr, out + al * P * Q * rr, false);
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
//   C (a, o_k) = S_k (a, c) · Gp_kᵀ;  S_{k-1} (m_k, a, r_k) = C (a, m_k, r_k), outer axes swapped
// (per α block for a ring; the first step's output (a, R·m, r) is swapped whole, which puts α
// outermost). Step 0 is one GEMM per α block, summed (r_0 = 1 for a TT: one); then C is
// (M/m_0, b·m_0) and its transpose is y.
static void chunk_forward(fnet_ctx *ctx, const struct fnet_tt_sweep *w, float *C,
                          const float *x, int64_t b, float *state, float *y)
{
    const struct fnet_tt_shape *s = &w->s;
    const float *in = x;
    int64_t R = s->r[0];
    for (int k = s->d - 1; k >= 0; k--) {
        int64_t a = fnet_tt_step_rows(s, k, b), c = fnet_tt_step_cols(s, k);
        int64_t o = fnet_tt_step_out(s, k), m = s->m[k], r = s->r[k];
        const float *G = w->pcore + fnet_tt_core_offset(s, k);
        if (k > 0) {
            float *out = state + b * w->state_off[k - 1];
            ctx->be->sgemm(ctx, false, true, a, o, c, 1.0f, in, c, G, c, 0.0f, C, o);
            if (k == s->d - 1)
                ctx->be->permute_021(ctx, a, o / r, r, C, out, false);
            else
                swap_per_ring(ctx, R, a / R, m, r, C, out);
            in = out;
        } else {
            int64_t ab = s->d > 1 ? a / R : a;
            for (int64_t al = 0; al < (s->d > 1 ? R : 1); al++)
                ctx->be->sgemm(ctx, false, true, ab, m, c, 1.0f, in + al * ab * c, c,
                               G + al * m * c, c, al > 0 ? 1.0f : 0.0f, C, m);
            ctx->be->transpose(ctx, ab / b, b * m, C, y);
        }
    }
}

// Steps in reverse (k = 0..d-1) for a chunk of b samples, with dOut_k (a, o_k), starting
// from dyᵀ:
//   dGp_k (o_k, c) (+)= dOut_kᵀ · S_k     into the part's permuted core gradients
//   dS_k (a, c) = dOut_k · Gp_k = (m_{k+1}, a_{k+1}, r_{k+1}); swapped, it is dOut_{k+1};
//   at k = d-1 it is dx itself.
// Step 0 of a ring runs per α block: every block's dOut_0 is the same dyᵀ.
static void chunk_backward(fnet_ctx *ctx, const struct fnet_tt_sweep *w,
                           const struct fnet_tt_part *part, const float *x, const float *dy,
                           int64_t b, const float *state, bool first, float *dx)
{
    const struct fnet_tt_shape *s = &w->s;
    int64_t M = fnet_tt_rows(s), R = s->r[0];
    float *dout = part->gbuf[0], *tmp = part->gbuf[1];
    ctx->be->transpose(ctx, b * s->m[0], M / s->m[0], dy, dout);
    for (int k = 0; k < s->d; k++) {
        int64_t a = fnet_tt_step_rows(s, k, b), c = fnet_tt_step_cols(s, k);
        int64_t o = fnet_tt_step_out(s, k), off = fnet_tt_core_offset(s, k);
        int64_t blocks = k == 0 && s->d > 1 ? R : 1, ab = a / blocks;
        const float *sin = k == s->d - 1 ? x : state + b * w->state_off[k];
        // a ring's α blocks: one GEMM each, the same dOut against its block of S_k
        fnet_sgemm_batched(ctx, true, false, o, c, ab, 1.0f, dout, o, 0, sin, c, ab * c,
                           first ? 0.0f : 1.0f, part->dcore + off, c, o * c, blocks);
        if (k == s->d - 1 && dx == NULL)
            break;
        float *ds = k == s->d - 1 ? dx : tmp;
        fnet_sgemm_batched(ctx, false, false, ab, c, o, 1.0f, dout, o, 0, w->pcore + off, c,
                           o * c, 0.0f, ds, c, ab * c, blocks);
        if (k + 1 == s->d - 1)
            ctx->be->permute_021(ctx, R * s->m[k + 1], fnet_tt_step_rows(s, k + 1, b),
                                 s->r[k + 1], ds, dout, false);
        else if (k + 1 < s->d - 1)
            swap_per_ring(ctx, R, s->m[k + 1], fnet_tt_step_rows(s, k + 1, b) / R, s->r[k + 1],
                          ds, dout);
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
    permute_cores(ctx, &w->s, cores, w->pcore, w->ptmp);
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
    permute_cores(ctx, s, cores, w->pcore, w->ptmp);
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
    unpermute_grads(ctx, s, dp, w->ptmp, dcores, accumulate);
}
