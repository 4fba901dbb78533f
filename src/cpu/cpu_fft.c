/* The CPU backend's FFT ops: real DFTs by FFTW in single precision (plans for a chunk of
 * FFT_CHUNK contiguous signals and for one signal, run with the new-array execute functions on
 * the ctx's pool, chunk by chunk), and the spectrum multiply-accumulate of block-circulant layers
 * as a vectorized loop nest split over the pool. src/core/backend.h, "FFTs and spectra", is the
 * contract; src/cpu/ref_fft.c the oracle; docs/circulant.md the layer that uses them. */
#include "cpu/ref.h"
#include "cpu/pool.h"

#include <fftw3.h>
#include <limits.h>
#include <pthread.h>

// Signals one FFTW plan transforms per call (howmany): the unit the pool splits, large enough
// that a call's overhead vanishes (with FFTW_ESTIMATE at n = 64 a chunk runs ~3% faster per
// signal than 64 one-signal calls), small enough that a piece of a split is whole chunks.
#define FFT_CHUNK 64
// Below FNET_POOL_GRAIN floats of signal (rfft, irfft) or complex multiply-adds (cmac) an op
// runs on the calling thread.

// FFTW's planner and plan destruction read and write process-wide state (its wisdom and the
// planner's tables), shared by every ctx and every thread: a per-ctx lock could not keep two
// ctxs from planning at once, so this one global lock serializes them. Executing a made plan
// (fftwf_execute_dft_*) is thread-safe and takes no lock.
static pthread_mutex_t planner_lock = PTHREAD_MUTEX_INITIALIZER;

struct cpu_fft_plan {
    int64_t n, bins;                 // signal length, n/2 + 1 complex values per spectrum
    fftwf_plan r2c_chunk, c2r_chunk; // FFT_CHUNK signals, n floats apart in, bins complex out
    fftwf_plan r2c_one, c2r_one;     // one signal
};

// Destroys the plans that were made (NULL ones skipped) and the struct; planner_lock held.
static void plan_destroy_locked(struct cpu_fft_plan *p)
{
    fftwf_plan all[] = {p->r2c_chunk, p->c2r_chunk, p->r2c_one, p->c2r_one};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        if (all[i] != NULL)
            fftwf_destroy_plan(all[i]);
    fnet_free(p);
}

// The plans that were made (NULL ones skipped) and the struct; NULL: no-op.
void fnet_cpu_fft_plan_free(fnet_ctx *ctx, void *plan)
{
    if (plan == NULL)
        return;
    pthread_mutex_lock(&planner_lock);
    plan_destroy_locked(plan);
    pthread_mutex_unlock(&planner_lock);
}

// FFTW's failures (a NULL plan) as our status: the contract knows one, "cannot be made".
static fnet_status fftw_failed(fnet_ctx *ctx, const char *what, int64_t n)
{
    return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "FFTW could not plan the %s of length %lld",
                     what, (long long)n);
}

// p's four plans, on the planning arrays in (FFT_CHUNK·n floats) and out (FFT_CHUNK·bins
// complex); false when FFTW returns NULL for any. FFTW_ESTIMATE makes the same plan on every run
// (no timing) and does not touch the arrays, which only tell FFTW the transforms are out of
// place; FFTW_UNALIGNED lets the execute functions take any float pointer; c2r may destroy its
// input (irfft may overwrite X).
static bool make_plans(struct cpu_fft_plan *p, float *in, fftwf_complex *out)
{
    const int len = (int)p->n, bins = (int)p->bins, chunk = FFT_CHUNK;
    const unsigned flags = FFTW_ESTIMATE | FFTW_UNALIGNED;
    pthread_mutex_lock(&planner_lock);
    p->r2c_chunk = fftwf_plan_many_dft_r2c(1, &len, chunk, in, NULL, 1, len, out, NULL, 1, bins,
                                           flags);
    p->c2r_chunk = fftwf_plan_many_dft_c2r(1, &len, chunk, out, NULL, 1, bins, in, NULL, 1, len,
                                           flags | FFTW_DESTROY_INPUT);
    p->r2c_one = fftwf_plan_dft_r2c_1d(len, in, out, flags);
    p->c2r_one = fftwf_plan_dft_c2r_1d(len, out, in, flags | FFTW_DESTROY_INPUT);
    pthread_mutex_unlock(&planner_lock);
    return p->r2c_chunk && p->c2r_chunk && p->r2c_one && p->c2r_one;
}

// Plans for real DFTs of length n >= 1: r2c and c2r, for FFT_CHUNK signals and for one.
fnet_status fnet_cpu_fft_plan(fnet_ctx *ctx, int64_t n, void **plan)
{
    *plan = NULL;
    FNET_ASSERT(ctx, n >= 1);
    if (n > INT_MAX / FFT_CHUNK)
        return fnet_fail(ctx, FNET_ERR_UNSUPPORTED, "fft length %lld exceeds FFTW's int",
                         (long long)n);
    fnet_status st = FNET_OK;
    struct cpu_fft_plan *p = fnet_calloc(1, sizeof(*p));
    if (p == NULL)
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "fft plan of length %lld", (long long)n);
    p->n = n;
    p->bins = n / 2 + 1;
    float *in = fnet_malloc_array((size_t)(FFT_CHUNK * n), sizeof(float));
    fftwf_complex *out = fnet_malloc_array((size_t)(FFT_CHUNK * p->bins), sizeof(fftwf_complex));
    if (in == NULL || out == NULL) {
        st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "fft plan of length %lld", (long long)n);
        goto out_free_plan;
    }
    if (!make_plans(p, in, out)) {
        st = fftw_failed(ctx, "real DFTs", n);
        goto out_free_plan;
    }
    *plan = p;
    goto out_free_arrays;
out_free_plan:
    fnet_cpu_fft_plan_free(ctx, p);
out_free_arrays:
    fnet_free(out);
    fnet_free(in);
    return st;
}

// One pool job of rfft or irfft: items 0..whole-1 are chunks of FFT_CHUNK signals, item whole
// (when rest > 0) the last rest signals one by one.
struct fft_job {
    const struct cpu_fft_plan *p;
    bool inverse;
    int64_t whole, rest;
    float *real;         // (count, n): rfft's input, irfft's output
    fftwf_complex *spec; // (count, bins): rfft's output, irfft's input (destroyed)
};

// Signal s of the job with plan (a chunk plan: signals s..s+FFT_CHUNK-1).
static void fft_exec(const struct fft_job *j, fftwf_plan plan, int64_t s)
{
    const struct cpu_fft_plan *p = j->p;
    if (j->inverse)
        fftwf_execute_dft_c2r(plan, j->spec + s * p->bins, j->real + s * p->n);
    else
        fftwf_execute_dft_r2c(plan, j->real + s * p->n, j->spec + s * p->bins);
}

static void fft_range(void *arg, int64_t begin, int64_t end)
{
    const struct fft_job *j = arg;
    const struct cpu_fft_plan *p = j->p;
    for (int64_t i = begin; i < end; i++) {
        if (i < j->whole) {
            fft_exec(j, j->inverse ? p->c2r_chunk : p->r2c_chunk, i * FFT_CHUNK);
            continue;
        }
        for (int64_t s = i * FFT_CHUNK; s < i * FFT_CHUNK + j->rest; s++)
            fft_exec(j, j->inverse ? p->c2r_one : p->r2c_one, s);
    }
}

static void fft_run(struct fnet_pool *pool, const struct cpu_fft_plan *p, bool inverse,
                    int64_t count, float *real, float *spec)
{
    struct fft_job j = {p, inverse, count / FFT_CHUNK, count % FFT_CHUNK, real,
                        (fftwf_complex *)spec};
    int64_t items = j.whole + (j.rest > 0);
    fnet_pool_run(count * p->n < FNET_POOL_GRAIN ? NULL : pool, items, 1, fft_range, &j);
}

// x (count, n) real -> X (count, n/2+1 complex). FFTW's out-of-place r2c leaves x as it was
// (FFTW_PRESERVE_INPUT is its default there), so x's const is kept in fact.
void fnet_cpu_rfft(struct fnet_pool *pool, const void *plan, int64_t count, const float *x,
                   float *X)
{
    fft_run(pool, plan, false, count, (float *)x, X);
}

// X (count, n/2+1 complex, destroyed) -> x (count, n) real, unnormalized; FFTW's c2r reads
// neither the imaginary part of bin 0 nor that of bin n/2 (even n), as the contract says.
void fnet_cpu_irfft(struct fnet_pool *pool, const void *plan, int64_t count, float *X, float *x)
{
    fft_run(pool, plan, true, count, x, X);
}

// ---- cmac ----

// Complex values per block of the inner loop: the block's real and imaginary sums live in two
// float arrays of CMAC_BLOCK (a vector register or two each) across the whole loop over k.
#define CMAC_BLOCK 16

// c (fb complex, fb <= CMAC_BLOCK) (+)= Σ_k op_a(a_k) ∘ op_b(b_k), a_k at A + 2F·k·a_k, b_k at
// B + 2F·k·b_k. Sums are kept apart as real and imaginary parts: the interleaved form
// (c[2f] += ..., c[2f+1] += ...) is what GCC 12 turns into vfmaddsub even under -std=c11's
// -ffp-contract=off, so the x86-64-v3/v4 clones would round differently from the baseline one.
// This form gives every clone the same bits. Inlined into each clone of cmac_range with
// conj_a and conj_b constant.
static inline __attribute__((always_inline)) void
cmac_block(int64_t fb, int64_t F, int64_t K, const float *A, int64_t a_k, bool conj_a,
           const float *B, int64_t b_k, bool conj_b, float *restrict c, bool accumulate)
{
    float re[CMAC_BLOCK], im[CMAC_BLOCK];
    for (int64_t i = 0; i < CMAC_BLOCK; i++) {
        re[i] = accumulate && i < fb ? c[2 * i] : 0.0f;
        im[i] = accumulate && i < fb ? c[2 * i + 1] : 0.0f;
    }
    // a whole block (the constant trip count vectorizes without a remainder), then a short one
#define CMAC_SUMS(LEN)                                                                             \
    for (int64_t k = 0; k < K; k++) {                                                              \
        const float *restrict a = A + 2 * F * k * a_k, *restrict b = B + 2 * F * k * b_k;         \
        for (int64_t i = 0; i < (LEN); i++) {                                                      \
            float ar = a[2 * i], ai = conj_a ? -a[2 * i + 1] : a[2 * i + 1];                       \
            float br = b[2 * i], bi = conj_b ? -b[2 * i + 1] : b[2 * i + 1];                       \
            re[i] += ar * br - ai * bi;                                                            \
            im[i] += ar * bi + ai * br;                                                            \
        }                                                                                          \
    }
    if (fb == CMAC_BLOCK) {
        CMAC_SUMS(CMAC_BLOCK)
    } else {
        CMAC_SUMS(fb)
    }
#undef CMAC_SUMS
    for (int64_t i = 0; i < fb; i++) {
        c[2 * i] = re[i];
        c[2 * i + 1] = im[i];
    }
}

// C[m, j] (F complex) (+)= Σ_k op_a(A[m, k]) ∘ op_b(B[k, j]) for one (m, j), block by block
static inline __attribute__((always_inline)) void
cmac_one(int64_t F, int64_t K, const float *A, int64_t a_k, bool conj_a, const float *B,
         int64_t b_k, bool conj_b, float *c, bool accumulate)
{
    for (int64_t f0 = 0; f0 < F; f0 += CMAC_BLOCK)
        cmac_block(F - f0 < CMAC_BLOCK ? F - f0 : CMAC_BLOCK, F, K, A + 2 * f0, a_k, conj_a,
                   B + 2 * f0, b_k, conj_b, c + 2 * f0, accumulate);
}

struct cmac_job {
    int64_t F, M, N, K, a_m, a_k, b_k, b_n, c_m, c_n;
    const float *A, *B;
    float *C;
    bool conj_a, conj_b, accumulate, by_rows;
};

// Rows [begin, end) of C (by_rows), or its columns: every (m, j) of them.
FNET_VECTORIZE
static void cmac_range(void *arg, int64_t begin, int64_t end)
{
    const struct cmac_job *j = arg;
    const int64_t F = j->F, K = j->K, a_k = j->a_k, b_k = j->b_k;
    const int64_t m0 = j->by_rows ? begin : 0, m1 = j->by_rows ? end : j->M;
    const int64_t n0 = j->by_rows ? 0 : begin, n1 = j->by_rows ? j->N : end;
    const bool ca = j->conj_a, cb = j->conj_b, acc = j->accumulate;
    for (int64_t m = m0; m < m1; m++)
        for (int64_t n = n0; n < n1; n++) {
            const float *a = j->A + 2 * F * m * j->a_m, *b = j->B + 2 * F * n * j->b_n;
            float *c = j->C + 2 * F * (m * j->c_m + n * j->c_n);
            if (!ca && !cb)
                cmac_one(F, K, a, a_k, false, b, b_k, false, c, acc);
            else if (ca && !cb)
                cmac_one(F, K, a, a_k, true, b, b_k, false, c, acc);
            else if (!ca && cb)
                cmac_one(F, K, a, a_k, false, b, b_k, true, c, acc);
            else
                cmac_one(F, K, a, a_k, true, b, b_k, true, c, acc);
        }
}

// C (M, N spectra) (+)= Σ_k op_a(A (M, K)) ∘ op_b(B (K, N)), F complex values per spectrum,
// strides in spectra (backend.h); large ones split along C's longer side, M or N
void fnet_cpu_cmac(struct fnet_pool *pool, int64_t F, int64_t M, int64_t N, int64_t K,
                   const float *A, int64_t a_m, int64_t a_k, bool conj_a, const float *B,
                   int64_t b_k, int64_t b_n, bool conj_b, float *C, int64_t c_m, int64_t c_n,
                   bool accumulate)
{
    if (F <= 0 || M <= 0 || N <= 0)
        return;
    struct cmac_job j = {F, M, N, K, a_m, a_k, b_k, b_n, c_m, c_n, A, B, C,
                         conj_a, conj_b, accumulate, M >= N};
    bool serial = M * N * (K > 0 ? K : 1) * F < FNET_POOL_GRAIN;
    fnet_pool_run(serial ? NULL : pool, j.by_rows ? M : N, 1, cmac_range, &j);
}
