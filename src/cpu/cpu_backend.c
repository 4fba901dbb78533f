/* The CPU backend: the reference table with OpenBLAS for the BLAS-shaped ops and FFTW for the
 * FFTs (cpu_fft.c). All parallelism is the ctx's sleeping thread pool, the backend's per-ctx
 * state: large GEMMs split into one single-threaded OpenBLAS GEMM per worker, large element-wise
 * ops, FFTs and CSR products (cpu_sparse.c) split likewise, and run_parts runs independent parts
 * of one job (the TT sweep's sample chunks) one per worker. Entries that are the reference's own
 * functions are marked so in the table. */
#include "cpu/ref.h"
#include "cpu/pool.h"
#include "cpu/cpu_lapack.h"

#include <cblas.h>
#include <string.h>

// The backend's per-ctx state.
struct cpu_state {
    struct fnet_pool *pool; // ctx->threads - 1 sleeping workers; NULL with one thread
};

// OpenBLAS always runs on one thread: a large GEMM is split into one GEMM per worker of the ctx's
// pool instead. OpenBLAS's own workers spin (sched_yield) for a while after every threaded call
// and took the cores from the pool's workers whenever the two alternated (the TT sweep's parts
// after a dense layer ran at half speed; docs/tt.md, "Chunks and workers"). OpenBLAS's thread
// count is process-wide: compare with what it is now and set it only when it differs.
static void use_one_blas_thread(void)
{
    if (openblas_get_num_threads() != 1)
        openblas_set_num_threads(1);
}

// Set on a pool worker while it runs a part of run_parts: ops then run on that worker alone.
static _Thread_local bool in_part;

// The pool an op may split its work over: none inside a part (parts already use every worker).
static struct fnet_pool *pool_of(const fnet_ctx *ctx)
{
    return in_part ? NULL : ((const struct cpu_state *)ctx->state)->pool;
}

static fnet_status cpu_state_init(fnet_ctx *ctx)
{
    ctx->state = fnet_calloc(1, sizeof(struct cpu_state));
    return ctx->state ? FNET_OK : FNET_ERR_OUT_OF_MEMORY;
}

static void cpu_state_free(fnet_ctx *ctx)
{
    struct cpu_state *cs = ctx->state;
    if (cs != NULL)
        fnet_pool_free(cs->pool);
    fnet_free(cs);
    ctx->state = NULL;
}

// A pool of n workers (the caller one of them) replaces the old one; on failure the old one
// stays.
static fnet_status cpu_set_threads(fnet_ctx *ctx, int n)
{
    struct cpu_state *cs = ctx->state;
    use_one_blas_thread();
    struct fnet_pool *pool = NULL;
    if (n > 1) {
        pool = fnet_pool_create(n);
        if (pool == NULL)
            return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "thread pool of %d threads", n);
    }
    fnet_pool_free(cs->pool);
    cs->pool = pool;
    return FNET_OK;
}

// Below this many multiply-adds a GEMM runs on the calling thread: waking the workers costs
// more than splitting saves (measured with fnet-bench on the seed network).
#define GEMM_SERIAL_MACS (4 * 1024 * 1024)
// Pieces of a split GEMM are multiples of this many rows or columns (whole vector registers).
#define GEMM_SPLIT_GRAIN 16

static void blas_sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                       const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                       float *C, int64_t ldc)
{
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                (blasint)M, (blasint)N, (blasint)K, alpha, A, (blasint)lda, B, (blasint)ldb, beta,
                C, (blasint)ldc);
}

// The host linear algebra's GEMM: one OpenBLAS thread, no pool (it runs for any ctx).
static void host_sgemm(fnet_ctx *ctx, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                       float alpha, const float *A, int64_t lda, const float *B, int64_t ldb,
                       float beta, float *C, int64_t ldc)
{
    if (M == 0 || N == 0)
        return;
    use_one_blas_thread();
    blas_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

// One worker's piece of a split GEMM: rows [begin, end) of C, or its columns.
struct gemm_job {
    bool ta, tb, by_rows;
    int64_t M, N, K, lda, ldb, ldc;
    float alpha, beta;
    const float *A, *B;
    float *C;
};

static void gemm_range(void *arg, int64_t begin, int64_t end)
{
    const struct gemm_job *j = arg;
    if (j->by_rows) // rows of op(A): A's rows, or its columns when transposed
        blas_sgemm(j->ta, j->tb, end - begin, j->N, j->K, j->alpha,
                   j->A + begin * (j->ta ? 1 : j->lda), j->lda, j->B, j->ldb, j->beta,
                   j->C + begin * j->ldc, j->ldc);
    else // columns of op(B): B's columns, or its rows when transposed
        blas_sgemm(j->ta, j->tb, j->M, end - begin, j->K, j->alpha, j->A, j->lda,
                   j->B + begin * (j->tb ? j->ldb : 1), j->ldb, j->beta, j->C + begin, j->ldc);
}

// C (M, N) = alpha·op(A)·op(B) + beta·C, row-major; large ones split along C's longer side
static void cpu_sgemm(fnet_ctx *ctx, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                      float alpha, const float *A, int64_t lda, const float *B, int64_t ldb,
                      float beta, float *C, int64_t ldc)
{
    if (M == 0 || N == 0)
        return;
    use_one_blas_thread();
    struct gemm_job j = {ta, tb, M >= N, M, N, K, lda, ldb, ldc, alpha, beta, A, B, C};
    struct fnet_pool *pool = M * N * K < GEMM_SERIAL_MACS ? NULL : pool_of(ctx);
    // pieces of whole GEMM_SPLIT_GRAINs, one per worker, at most FNET_MAX_PARTS of them
    int64_t n = j.by_rows ? M : N, grain = GEMM_SPLIT_GRAIN;
    if (ctx->threads > FNET_MAX_PARTS) {
        grain = (n + FNET_MAX_PARTS - 1) / FNET_MAX_PARTS;
        grain = (grain + GEMM_SPLIT_GRAIN - 1) / GEMM_SPLIT_GRAIN * GEMM_SPLIT_GRAIN;
    }
    fnet_pool_run(pool, n, grain, gemm_range, &j);
}

// count GEMMs, each split over the pool as sgemm splits one (OpenBLAS 0.3.21 has no batched
// GEMM)
static void cpu_sgemm_batched(fnet_ctx *ctx, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                              float alpha, const float *A, int64_t lda, int64_t sa,
                              const float *B, int64_t ldb, int64_t sb, float beta, float *C,
                              int64_t ldc, int64_t sc, int64_t count)
{
    for (int64_t i = 0; i < count; i++)
        cpu_sgemm(ctx, ta, tb, M, N, K, alpha, A + i * sa, lda, B + i * sb, ldb, beta, C + i * sc,
                  ldc);
}

// out (cols, rows) = in (rows, cols)ᵀ in 32×32 tiles; a full tile as 16 blocks of 8×8, each
// loaded as 8 vectors and transposed in registers by three rounds of shuffles (2.6× faster than
// the element loop from (1024, 256) to (256, 1024), 1.2× the other way, one thread), the rest
// element by element
struct transpose_job {
    int64_t rows, cols;
    const float *in;
    float *out;
};

typedef float tf8 __attribute__((vector_size(8 * sizeof(float))));
typedef int32_t ti8 __attribute__((vector_size(8 * sizeof(int32_t))));
#if defined(__clang__)
#define SHUF8(a, b, i0, i1, i2, i3, i4, i5, i6, i7)                                               \
    __builtin_shufflevector(a, b, i0, i1, i2, i3, i4, i5, i6, i7)
#else
#define SHUF8(a, b, i0, i1, i2, i3, i4, i5, i6, i7)                                               \
    __builtin_shuffle(a, b, (ti8){i0, i1, i2, i3, i4, i5, i6, i7})
#endif

// out[c·ldo + i] = in[i·ldi + c] for i, c < 8
static inline __attribute__((always_inline)) void
transpose8(const float *in, int64_t ldi, float *out, int64_t ldo)
{
    tf8 r[8], t[8], u[8];
    for (int k = 0; k < 8; k++)
        memcpy(&r[k], in + k * ldi, sizeof(tf8));
    for (int k = 0; k < 8; k += 2) { // pairs of rows interleaved
        t[k] = SHUF8(r[k], r[k + 1], 0, 8, 1, 9, 4, 12, 5, 13);
        t[k + 1] = SHUF8(r[k], r[k + 1], 2, 10, 3, 11, 6, 14, 7, 15);
    }
    for (int k = 0; k < 8; k += 4) { // then pairs of pairs
        u[k] = SHUF8(t[k], t[k + 2], 0, 1, 8, 9, 4, 5, 12, 13);
        u[k + 1] = SHUF8(t[k], t[k + 2], 2, 3, 10, 11, 6, 7, 14, 15);
        u[k + 2] = SHUF8(t[k + 1], t[k + 3], 0, 1, 8, 9, 4, 5, 12, 13);
        u[k + 3] = SHUF8(t[k + 1], t[k + 3], 2, 3, 10, 11, 6, 7, 14, 15);
    }
    for (int k = 0; k < 4; k++) { // then the two halves
        r[k] = SHUF8(u[k], u[k + 4], 0, 1, 2, 3, 8, 9, 10, 11);
        r[k + 4] = SHUF8(u[k], u[k + 4], 4, 5, 6, 7, 12, 13, 14, 15);
    }
    for (int k = 0; k < 8; k++)
        memcpy(out + k * ldo, &r[k], sizeof(tf8));
}

FNET_VECTORIZE
static void transpose_range(void *arg, int64_t t0, int64_t t1)
{
    const struct transpose_job *j = arg;
    for (int64_t i0 = t0 * 32; i0 < t1 * 32 && i0 < j->rows; i0 += 32) {
        int64_t i1 = i0 + 32 < j->rows ? i0 + 32 : j->rows;
        for (int64_t c0 = 0; c0 < j->cols; c0 += 32) {
            int64_t c1 = c0 + 32 < j->cols ? c0 + 32 : j->cols;
            if (i1 - i0 == 32 && c1 - c0 == 32) {
                for (int64_t i = i0; i < i1; i += 8)
                    for (int64_t c = c0; c < c1; c += 8)
                        transpose8(j->in + i * j->cols + c, j->cols, j->out + c * j->rows + i,
                                   j->rows);
                continue;
            }
            for (int64_t i = i0; i < i1; i++)
                for (int64_t c = c0; c < c1; c++)
                    j->out[c * j->rows + i] = j->in[i * j->cols + c];
        }
    }
}

static void cpu_transpose(fnet_ctx *ctx, int64_t rows, int64_t cols, const float *in, float *out)
{
    struct transpose_job j = {rows, cols, in, out};
    int64_t tiles = (rows + 31) / 32;
    fnet_pool_run(rows * cols >= FNET_POOL_GRAIN ? pool_of(ctx) : NULL, tiles, 1, transpose_range, &j);
}

// out (Q, P, R) (+)= in (P, Q, R), split over p: each thread writes its own rows of every q
struct permute_job {
    fnet_ctx *ctx;
    int64_t P, Q, R;
    const float *in;
    float *out;
    bool accumulate;
};

// Copy (or add) runs of R floats: fixed R for the common TT ranks lets the compiler emit one or
// two vector moves per run instead of a loop with a tail.
#define PERMUTE_RUNS(RLEN)                                                                         \
    for (int64_t p = p0; p < p1; p++)                                                              \
        for (int64_t q = 0; q < Q; q++) {                                                          \
            const float *restrict src = in + (p * Q + q) * (RLEN);                                 \
            float *restrict dst = out + (q * P + p) * (RLEN);                                      \
            if (acc)                                                                               \
                for (int64_t r = 0; r < (RLEN); r++)                                               \
                    dst[r] += src[r];                                                              \
            else                                                                                   \
                memcpy(dst, src, sizeof(float) * (size_t)(RLEN));                                  \
        }

FNET_VECTORIZE
static void permute_range(void *arg, int64_t p0, int64_t p1)
{
    const struct permute_job *j = arg;
    // rows p0..p1 of in (P, Q, R) go to rows p0..p1 of every q-slab of out (Q, P, R): one read
    // stream, Q sequential write streams
    const int64_t P = j->P, Q = j->Q, R = j->R;
    const float *in = j->in;
    float *out = j->out;
    bool acc = j->accumulate;
    switch (R) {
    case 1: PERMUTE_RUNS(1) break;
    case 2: PERMUTE_RUNS(2) break;
    case 4: PERMUTE_RUNS(4) break;
    case 8: PERMUTE_RUNS(8) break;
    case 16: PERMUTE_RUNS(16) break;
    default: PERMUTE_RUNS(R) break;
    }
}

static void cpu_permute_021(fnet_ctx *ctx, int64_t P, int64_t Q, int64_t R, const float *in,
                            float *out, bool accumulate)
{
    struct permute_job j = {ctx, P, Q, R, in, out, accumulate};
    fnet_pool_run(P * Q * R < FNET_POOL_GRAIN ? NULL : pool_of(ctx), P, 64, permute_range, &j);
}

static void cpu_axpy(fnet_ctx *ctx, int64_t n, float a, const float *x, float *y)
{
    cblas_saxpy((blasint)n, a, x, 1, y, 1);
}

static void cpu_scal(fnet_ctx *ctx, int64_t n, float a, float *x)
{
    cblas_sscal((blasint)n, a, x, 1);
}

// Σ x·y with double accumulation (BLAS dsdot)
static double cpu_dot(fnet_ctx *ctx, int64_t n, const float *x, const float *y)
{
    return cblas_dsdot((blasint)n, x, 1, y, 1);
}

// db (n) (+)= Σ_r dy (B, n)[r], row by row so the inner loop runs along memory
FNET_VECTORIZE
static void cpu_bias_grad(fnet_ctx *ctx, int64_t B, int64_t n, const float *dy, float *db,
                          bool accumulate)
{
    if (!accumulate)
        for (int64_t j = 0; j < n; j++)
            db[j] = 0.0f;
    for (int64_t r = 0; r < B; r++) {
        const float *restrict d = dy + r * n;
        float *restrict o = db;
        for (int64_t j = 0; j < n; j++)
            o[j] += d[j];
    }
}

// ---- element-wise ops over the pool: each job carries its arguments and offsets pointers ----

struct ew_job {
    fnet_ctx *ctx;
    enum fnet_act act;
    const float *x, *y, *mask;
    float *out, *w, *s1, *s2;
    const float *g;
    const struct fnet_step_args *args;
    bool nesterov;
    float value, value2;
    uint64_t seed, step, first;
};

// The activations are checked once here, so the split pieces (which cannot report) never see
// an unknown one.
static bool known_act(enum fnet_act act)
{
    return act == FNET_ACT_RELU || act == FNET_ACT_TANH || act == FNET_ACT_SIGMOID;
}

static void act_forward_range(void *p, int64_t b, int64_t e)
{
    struct ew_job *j = p;
    fnet_ref_act_forward(j->ctx, j->act, e - b, j->x + b, j->out + b);
}

static fnet_status cpu_act_forward(fnet_ctx *ctx, enum fnet_act act, int64_t n, const float *x,
                                   float *y)
{
    if (!known_act(act))
        return fnet_ref_act_forward(ctx, act, n, x, y); // the reference's message
    struct ew_job j = {.ctx = ctx, .act = act, .x = x, .out = y};
    fnet_pool_run(pool_of(ctx), n, FNET_POOL_GRAIN, act_forward_range, &j);
    return FNET_OK;
}

static void act_backward_range(void *p, int64_t b, int64_t e)
{
    struct ew_job *j = p;
    fnet_ref_act_backward(j->ctx, j->act, e - b, j->y + b, j->x + b, j->out + b);
}

static fnet_status cpu_act_backward(fnet_ctx *ctx, enum fnet_act act, int64_t n, const float *y,
                                    const float *dy, float *dx)
{
    if (!known_act(act))
        return fnet_ref_act_backward(ctx, act, n, y, dy, dx);
    struct ew_job j = {.ctx = ctx, .act = act, .y = y, .x = dy, .out = dx};
    fnet_pool_run(pool_of(ctx), n, FNET_POOL_GRAIN, act_backward_range, &j);
    return FNET_OK;
}

static void mul_range(void *p, int64_t b, int64_t e)
{
    struct ew_job *j = p;
    fnet_ref_mul(j->ctx, e - b, j->x + b, j->mask + b, j->out + b);
}

static void cpu_mul(fnet_ctx *ctx, int64_t n, const float *x, const float *mask, float *y)
{
    struct ew_job j = {.ctx = ctx, .x = x, .mask = mask, .out = y};
    fnet_pool_run(pool_of(ctx), n, FNET_POOL_GRAIN, mul_range, &j);
}

static void sgd_range(void *p, int64_t b, int64_t e)
{
    struct ew_job *j = p;
    fnet_ref_sgd_step(j->ctx, e - b, j->w + b, j->g + b, j->args);
}

static void cpu_sgd_step(fnet_ctx *ctx, int64_t n, float *w, const float *g,
                         const struct fnet_step_args *a)
{
    struct ew_job j = {.ctx = ctx, .w = w, .g = g, .args = a};
    fnet_pool_run(pool_of(ctx), n, FNET_POOL_GRAIN, sgd_range, &j);
}

static void momentum_range(void *p, int64_t b, int64_t e)
{
    struct ew_job *j = p;
    fnet_ref_momentum_step(j->ctx, e - b, j->w + b, j->g + b, j->s1 + b, j->args, j->nesterov);
}

static void cpu_momentum_step(fnet_ctx *ctx, int64_t n, float *w, const float *g, float *v,
                              const struct fnet_step_args *a, bool nesterov)
{
    struct ew_job j = {.ctx = ctx, .w = w, .g = g, .s1 = v, .args = a, .nesterov = nesterov};
    fnet_pool_run(pool_of(ctx), n, FNET_POOL_GRAIN, momentum_range, &j);
}

static void rmsprop_range(void *p, int64_t b, int64_t e)
{
    struct ew_job *j = p;
    fnet_ref_rmsprop_step(j->ctx, e - b, j->w + b, j->g + b, j->s1 + b, j->args);
}

static void cpu_rmsprop_step(fnet_ctx *ctx, int64_t n, float *w, const float *g, float *s,
                             const struct fnet_step_args *a)
{
    struct ew_job j = {.ctx = ctx, .w = w, .g = g, .s1 = s, .args = a};
    fnet_pool_run(pool_of(ctx), n, FNET_POOL_GRAIN, rmsprop_range, &j);
}

static void adam_range(void *p, int64_t b, int64_t e)
{
    struct ew_job *j = p;
    fnet_ref_adam_step(j->ctx, e - b, j->w + b, j->g + b, j->s1 + b, j->s2 + b, j->args);
}

static void cpu_adam_step(fnet_ctx *ctx, int64_t n, float *w, const float *g, float *m, float *v,
                          const struct fnet_step_args *a)
{
    struct ew_job j = {.ctx = ctx, .w = w, .g = g, .s1 = m, .s2 = v, .args = a};
    fnet_pool_run(pool_of(ctx), n, FNET_POOL_GRAIN, adam_range, &j);
}

static void fill_range(void *p, int64_t b, int64_t e)
{
    struct ew_job *j = p;
    fnet_ref_fill(j->ctx, e - b, j->value, j->out + b);
}

// x (n) = value
static void cpu_fill(fnet_ctx *ctx, int64_t n, float value, float *x)
{
    struct ew_job j = {.ctx = ctx, .value = value, .out = x};
    fnet_pool_run(pool_of(ctx), n, FNET_POOL_GRAIN, fill_range, &j);
}

static void axpby_range(void *p, int64_t b, int64_t e)
{
    struct ew_job *j = p;
    fnet_ref_axpby(j->ctx, e - b, j->value, j->x + b, j->value2, j->out + b);
}

// y (n) = a·x (n) + b·y: the reference's loop, split; element-wise, so every split gives the
// same bits
static void cpu_axpby(fnet_ctx *ctx, int64_t n, float a, const float *x, float b, float *y)
{
    struct ew_job j = {.ctx = ctx, .value = a, .x = x, .value2 = b, .out = y};
    fnet_pool_run(pool_of(ctx), n, FNET_POOL_GRAIN, axpby_range, &j);
}

// Element i depends on (seed, step, i) alone: each piece draws its own indices.
static void dropout_range(void *p, int64_t b, int64_t e)
{
    struct ew_job *j = p;
    fnet_ref_dropout_span((int64_t)j->first + b, e - b, j->value, j->seed, j->step, j->out + b);
}

// mask (n): the reference's draws, each piece with its own indices
static void cpu_dropout_mask(fnet_ctx *ctx, int64_t n, float p, uint64_t seed, uint64_t step,
                             uint64_t first, float *mask)
{
    struct ew_job j = {.ctx = ctx, .value = p, .seed = seed, .step = step, .first = first,
                       .out = mask};
    fnet_pool_run(pool_of(ctx), n, FNET_POOL_GRAIN, dropout_range, &j);
}

// ---- FFTs and spectra: cpu_fft.c's FFTW plans and vectorized cmac, on the ctx's pool ----

static void cpu_rfft(fnet_ctx *ctx, const void *plan, int64_t count, const float *x, float *X)
{
    fnet_cpu_rfft(pool_of(ctx), plan, count, x, X);
}

static void cpu_irfft(fnet_ctx *ctx, const void *plan, int64_t count, float *X, float *x)
{
    fnet_cpu_irfft(pool_of(ctx), plan, count, X, x);
}

static void cpu_cmac(fnet_ctx *ctx, int64_t F, int64_t M, int64_t N, int64_t K, const float *A,
                     int64_t a_m, int64_t a_k, bool conj_a, const float *B, int64_t b_k,
                     int64_t b_n, bool conj_b, float *C, int64_t c_m, int64_t c_n, bool accumulate)
{
    fnet_cpu_cmac(pool_of(ctx), F, M, N, K, A, a_m, a_k, conj_a, B, b_k, b_n, conj_b, C, c_m, c_n,
                  accumulate);
}

// ---- sparse matrices: cpu_sparse.c's blocked CSR kernels, on the ctx's pool ----

// Threads the pool of an op has: ctx->threads, or 1 inside a part or without a pool.
static int threads_of(const fnet_ctx *ctx)
{
    return pool_of(ctx) != NULL ? ctx->threads : 1;
}

static void cpu_csr_spmm(fnet_ctx *ctx, int64_t M, int64_t N, int64_t B, const int32_t *row_ptr,
                         const int32_t *col, const float *val, const float *X, float *Y,
                         bool accumulate)
{
    fnet_cpu_csr_spmm(pool_of(ctx), threads_of(ctx), M, N, B, row_ptr, col, val, X, Y,
                      accumulate);
}

static void cpu_csr_spmm_t(fnet_ctx *ctx, int64_t M, int64_t N, int64_t B,
                           const int32_t *row_ptr, const int32_t *col, const float *val,
                           const float *Y, float *X, bool accumulate)
{
    fnet_cpu_csr_spmm_t(pool_of(ctx), threads_of(ctx), M, N, B, row_ptr, col, val, Y, X,
                        accumulate);
}

static void cpu_csr_sddmm(fnet_ctx *ctx, int64_t M, int64_t N, int64_t B,
                          const int32_t *row_ptr, const int32_t *col, const float *Y,
                          const float *X, float *out, bool accumulate)
{
    fnet_cpu_csr_sddmm(pool_of(ctx), threads_of(ctx), M, N, B, row_ptr, col, Y, X, out,
                       accumulate);
}

struct parts_job {
    void (*fn)(void *arg, int part);
    void *arg;
};

static void parts_range(void *arg, int64_t begin, int64_t end)
{
    const struct parts_job *j = arg;
    in_part = true;
    for (int64_t p = begin; p < end; p++)
        j->fn(j->arg, (int)p);
    in_part = false;
}

static void cpu_run_parts(fnet_ctx *ctx, int parts, void (*fn)(void *arg, int part), void *arg)
{
    struct parts_job j = {fn, arg};
    struct fnet_pool *pool = pool_of(ctx);
    if (pool == NULL) { // nested, or one thread: one after the other
        for (int p = 0; p < parts; p++)
            fn(arg, p);
        return;
    }
    fnet_pool_run(pool, parts, 1, parts_range, &j);
}

static const struct fnet_host_la cpu_host_la = {
    .name = "cpu",
    .sgemm = host_sgemm,
    .gesvd = fnet_cpu_gesvd,
    .qr = fnet_cpu_qr,
};

// Entries that are the reference's own functions are grouped last: the conformance test
// (tests/cpu/test_backend_ops.c) names them as such.
const struct fnet_backend_ops fnet_cpu_backend = {
    .name = "cpu",
    .host_memory = true,
    .host_la = &cpu_host_la,
    .state_init = cpu_state_init,
    .state_free = cpu_state_free,
    .set_threads = cpu_set_threads,
    .fill = cpu_fill,
    .sgemm = cpu_sgemm,
    .sgemm_batched = cpu_sgemm_batched,
    .transpose = cpu_transpose,
    .permute_021 = cpu_permute_021,
    .axpy = cpu_axpy,
    .scal = cpu_scal,
    .dot = cpu_dot,
    .axpby = cpu_axpby,
    .bias_grad = cpu_bias_grad,
    .act_forward = cpu_act_forward,
    .act_backward = cpu_act_backward,
    .mul = cpu_mul,
    .dropout_mask = cpu_dropout_mask,
    .fft_plan = fnet_cpu_fft_plan,
    .fft_plan_free = fnet_cpu_fft_plan_free,
    .rfft = cpu_rfft,
    .irfft = cpu_irfft,
    .cmac = cpu_cmac,
    .csr_spmm = cpu_csr_spmm,
    .csr_spmm_t = cpu_csr_spmm_t,
    .csr_sddmm = cpu_csr_sddmm,
    .sgd_step = cpu_sgd_step,
    .momentum_step = cpu_momentum_step,
    .rmsprop_step = cpu_rmsprop_step,
    .adam_step = cpu_adam_step,
    .run_parts = cpu_run_parts,
    // the reference's own: host memory, and loops too small or too light to split
    .synchronize = fnet_ref_synchronize,
    .alloc = fnet_ref_alloc,
    .free = fnet_ref_free,
    .upload = fnet_ref_memcpy,
    .download = fnet_ref_memcpy,
    .copy = fnet_ref_memcpy,
    .amax = fnet_ref_amax,
    .bias_fill = fnet_ref_bias_fill,
    .bias_add = fnet_ref_bias_add,
    .softmax_ce = fnet_ref_softmax_ce,
    .mse = fnet_ref_mse,
    .regularize = fnet_ref_regularize,
    .u8_to_float = fnet_ref_u8_to_float,
    .all_finite = fnet_ref_all_finite,
    .u8_gather = fnet_ref_u8_gather,
    .loss_step = fnet_ref_loss_step,
    .step_dev = fnet_ref_step_dev,
};
