/* Conformance of every backend table against the reference backend, as ggml's test-backend-ops:
 * each op of each backend under test (cpu, guarded, and the one FNET_TEST_BACKEND names) runs on
 * random inputs in that backend's memory and is compared with the reference's own function run
 * on host copies (src/core/backend.h gives each op's contract). A table indexed by enum fnet_op
 * holds every op's case or the reason it has none, so an op added to the enum needs a case here.
 * With FNET_TEST_BACKEND=cuda (the test_backend_ops_cuda test, label gpu) the third backend is
 * the GPU, held to the tolerances below, and the whole test skips (exit 77) without a device. */
#include "test_util.h"
#include "linalg_check.h"
#include "core/backend.h"
#include "cpu/pool.h"
#include "cpu/ref.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ---- what is compared, and how closely ----

// Element-wise ops, the losses, dropout, the optimizer steps and layout ops: bit-exact. The cpu
// backend runs the reference's own loop (whole or in pieces over its pool) or moves the same
// floats, so any other bit is a bug.
// BLAS-shaped ops: OpenBLAS sums in float (FMA, blocked) where the reference sums in double, so
// |got − want| <= rtol · (a bound on the sum of the magnitudes of the terms), elementwise:
#define SUM_RTOL 1e-5        // sgemm, bias_grad: float sums of up to ~1000 terms
// dot: backend.h says "Σ x·y in double", but OpenBLAS 0.3.21's dsdot (the cpu backend's) sums
// partly in float on its Sandybridge-and-later x86 kernels (up to ~2e-8 of Σ|x·y|; in double on
// Prescott), so dot is held to float sums until cpu_dot sums in double (then 1e-12).
#define DOT_RTOL 1e-6
#define ONE_ROUNDING_RTOL 2.5e-7 // axpy, scal: one float operation per element, maybe fused
// rfft, irfft: FFTW's float FFT against the reference's double DFT (exact to ~1e-16), elementwise
// relative to the sum of the magnitudes of the n terms of the bin or sample. A float FFT of
// n <= 128 rounds its partial sums (each bounded by that sum) along at most log2(128) = 7 stages,
// about 2 roundings of u = 2^-24 per stage with the twiddles' own error, plus the output's: ~15u
// = 9e-7. Measured with FFTW 3.3.10 (FFTW_ESTIMATE, on an AVX-512 Xeon) over the lengths
// 1..1024: at most 1.5u, so a wrong bin, sign or scale fails by orders of magnitude.
#define FFT_RTOL 1e-6
// irfft(rfft(x)) = n·x: two float FFTs are stable in the L2 norm, ‖error‖₂ <= ~2·log2(n)·u·n‖x‖₂
// (~14u for n = 128), which bounds every sample; measured at most 1.5u of n·‖x‖₂.
#define FFT_ROUNDTRIP_RTOL 1e-6
// cmac: float sums of 2K products (+ C), K <= 64 here, against the reference's double sums:
// (2K + 2)·u·Σ|terms| <= 7.8e-6 <= SUM_RTOL, elementwise (the bound of a sequential float sum)
// sgemm with TF32 on (set_tf32, backends that have it): each input rounded to TF32's 10-bit
// mantissa, to nearest (2^-11) or toward zero (2^-10), so each product within 2^-9 relative, plus
// the float sum's SUM_RTOL: 2.5e-3 of the sum of the magnitudes; off again, SUM_RTOL.
#define TF32_RTOL 2.5e-3
// host_la: factorizations are compared through what they must satisfy, signs being free
#define RECON_RTOL 1e-5 // ‖U·S·Vt − A‖_F, ‖Q·R − A‖_F relative to ‖A‖_F
#define ORTHO_ATOL 1e-5 // max |XᵀX − I|
#define SVAL_RTOL 1e-5  // singular values against the reference's (unique, unlike the vectors)
#define SVAL_ATOL 2e-6  // relative to the largest singular value
#define RABS_RTOL 1e-4  // |R| against the reference's (unique up to row signs at full rank)
#define RABS_ATOL 1e-5  // relative to ‖R‖_F

// The CUDA backend (src/gpu/) against the same oracle. Its own kernels follow the reference's
// formulas in the reference's order, compiled without fused multiply-adds (nvcc --fmad=false,
// src/gpu/cuda_kernels.h), so every op not listed here is held bit for bit, as on the cpu backend:
// fill, copy, axpby, amax, permute_021, transpose, bias_fill, bias_add, relu, act_backward, mul,
// dropout_mask, mse's and regularize's outputs, u8_to_float, all_finite and the optimizer steps.
// Where a GPU differs:
// - sgemm (cuBLAS: float sums in any order, split-K or not; TF32 off unless set_tf32), bias_grad
//   (a cuBLAS GEMV against ones), cmac, host_la.sgemm: SUM_RTOL, a bound that holds for a float
//   sum in any order or tree; the CSR ops (src/gpu/cuda_sparse.cu, double sums, spmm_t's by
//   atomics in any order): the CSR cases' (n + 2)·u, which holds for any order too; axpy, scal
//   (cuBLAS, maybe fused): ONE_ROUNDING_RTOL.
// - dot, and the double sums mse and regularize return: each term is exact in double (a product
//   or square of floats has at most 48 significant bits), and a double sum of n terms in any
//   order or tree is within (n − 1)·2^-53 of Σ|terms| of the exact sum (Higham, "Accuracy and
//   Stability of Numerical Algorithms", §4.2), the reference's sum in a row as well as the GPU's
//   blocks and tree: DOUBLE_SUM_RTOL(n) = 2·n·2^-53 of Σ|terms|, 1.6e-11 at n = 70001, which a
//   sum kept in float anywhere misses by orders of magnitude.
// - tanh and sigmoid (act_forward): CUDA's tanhf and expf are within 2 ulps of the exact value
//   (CUDA C++ Programming Guide, "Mathematical Functions"), glibc's too, and sigmoid adds a sum
//   and a quotient, each rounded: TRANSCENDENTAL_RTOL = 8·2^-23 of |y|, 8 ulps at the bottom of a
//   binade and 4 at its top, room for the 2 + 2 ulps of the two libraries and sigmoid's two
//   roundings; a 10-ulp error still fails near the top of a binade.
// - softmax_ce: CUDA's exp and log against glibc's (in double, as the reference), or expf and
//   logf: each row's loss lse − z[label] within TRANSCENDENTAL_RTOL·(1 + |lse| + |z[label]|),
//   the two terms' magnitudes (lse rounded to float, logf's ulps); each element of dz =
//   scale·(p_k − [k = label]) within TRANSCENDENTAL_RTOL·|scale|·(p_k·(1 + |z_k| + |lse|) +
//   [k = label]): exp's ulps, and the float rounding of its argument z_k − lse, an absolute error
//   of about 2^-24·(|z_k| + |lse|) that exp turns into a relative one. The sum over rows as dot's.
// - rfft, irfft (cuFFT): FFT_RTOL and FFT_ROUNDTRIP_RTOL: their bounds are for any float FFT of
//   n <= 128 in log2(n) radix stages, with twiddles accurate to a few u, as cuFFT's are.
// - host_la.gesvd, host_la.qr (cuSOLVER): the invariants and tolerances above, as for LAPACKE.
#define DOUBLE_U 1.1102230246251565e-16 // 2^-53
#define DOUBLE_SUM_RTOL(n) (2.0 * (double)(n) * DOUBLE_U)
#define TRANSCENDENTAL_RTOL 9.5367431640625e-7 // 8·2^-23

// ---- shapes ----

#define TEST_THREADS 3 // the cpu ctx's pool: 3 workers, so split ops run in 3 pieces
// Split over the pool (cpu_backend.c): element-wise ops from 2·32768 elements, in pieces of
// whole 32768s: ceil(70001 / 3) rounds up to 32768, so three pieces, the last one short and odd.
#define SPLIT_N 70001
// On the GPU also GPU_BIG_N, odd, more elements than its kernels launch threads or reduction
// blocks for (src/gpu/cuda_kernels.cu: 4096 blocks of 256 threads, at most 1024 reduction
// blocks of 4096 elements), so that the grid-stride loops and capped reductions run too.
#define GPU_BIG_N (4194304 + 4097)
static const int64_t sizes[] = {1, 3, 17, 33, 127, 1000, SPLIT_N, GPU_BIG_N};

#define TAIL 3               // floats after every vector the cases allocate, holding SENTINEL:
#define SENTINEL 12345.5f    // an op writing past its n is caught on every backend
#define PAD 16               // bytes before and after the spans of the memory cases

// ---- the backends under test ----

static fnet_ctx *make_cpu(void)
{
    fnet_ctx *ctx = NULL;
    fnet_assert_ok(NULL, fnet_ctx_create_cpu(&ctx));
    return ctx;
}

static fnet_ctx *make_guarded(void)
{
    fnet_ctx *ctx = NULL;
    fnet_assert_ok(NULL, fnet_ctx_create_guarded(&ctx));
    return ctx;
}

static fnet_ctx *make_env(void)
{
    return fnet_test_ctx(FNET_BACKEND_CPU); // fails the test on a misspelt name
}

struct backend_entry {
    const char *label; // for cmocka's test names; the printed lines use the table's own name
    fnet_ctx *(*make)(void);
};

static const struct backend_entry backends[] = {
    {"cpu", make_cpu},
    {"guarded", make_guarded},
    {"FNET_TEST_BACKEND", make_env}, // cpu when unset: duplicates are fine
};
#define N_BACKENDS (sizeof(backends) / sizeof(backends[0]))

// How often each backend's harness ops were called, over all of its tests (cmocka runs the
// tests in order: the harness-ops test of a backend comes after its op tests).
static long harness_calls[N_BACKENDS][FNET_OP_COUNT];

// ---- the harness: one backend ctx under test, the oracle's ctx, the case being run ----

#define MAX_LIVE 16

struct harness {
    size_t backend; // index into backends[]
    enum fnet_op op;
    fnet_ctx *ctx; // the backend under test, TEST_THREADS threads
    const struct fnet_backend_ops *be;
    bool gpu;           // the CUDA backend: the tolerances of "what is compared" for it
    fnet_ctx *ref;      // the reference ctx the oracle runs on
    const char *opname; // for messages and the printed line
    char shape[200];    // the case being run, for messages
    void *live[MAX_LIVE];
    int n_live;
};

__attribute__((format(printf, 2, 3))) static void set_shape(struct harness *h, const char *fmt,
                                                            ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(h->shape, sizeof(h->shape), fmt, ap);
    va_end(ap);
}

// Fail the test with "backend: op (shape): what message".
__attribute__((format(printf, 3, 4))) static void fail_case(const struct harness *h,
                                                            const char *what, const char *fmt,
                                                            ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    print_error("%s: %s (%s): %s %s\n", h->be->name, h->opname, h->shape, what, msg);
    fail();
}

// How many of sizes[] the element-wise and reduction cases take on h's backend
static size_t n_sizes(const struct harness *h)
{
    return sizeof(sizes) / sizeof(sizes[0]) - (h->gpu ? 0 : 1);
}

static void count_call(const struct harness *h, enum fnet_op op)
{
    harness_calls[h->backend][op]++;
}

// bytes (> 0) of backend memory through the table's alloc; freed by dev_free or the teardown
static void *dev_alloc(struct harness *h, size_t bytes)
{
    void *p = h->be->alloc(h->ctx, bytes > 0 ? bytes : 1);
    count_call(h, FNET_OP_ALLOC);
    if (p == NULL)
        fail_case(h, "alloc", "returned NULL for %zu bytes", bytes);
    assert_true(h->n_live < MAX_LIVE);
    h->live[h->n_live++] = p;
    return p;
}

static void dev_free(struct harness *h, void *p)
{
    for (int i = 0; i < h->n_live; i++)
        if (h->live[i] == p) {
            h->live[i] = h->live[--h->n_live];
            h->be->free(h->ctx, p);
            count_call(h, FNET_OP_FREE);
            return;
        }
    fail_case(h, "free", "of %p, which the case did not allocate", p);
}

// dst (bytes, backend) = src (bytes, host)
static void dev_put(struct harness *h, void *dst, const void *src, size_t bytes)
{
    if (bytes > 0)
        h->be->upload(h->ctx, dst, src, bytes);
}

// dst (bytes, host) = src (bytes, backend)
static void dev_get(struct harness *h, void *dst, const void *src, size_t bytes)
{
    if (bytes > 0)
        h->be->download(h->ctx, dst, src, bytes);
}

// A new backend copy of bytes of host memory.
static void *dev_copy_of(struct harness *h, const void *host, size_t bytes)
{
    void *p = dev_alloc(h, bytes);
    dev_put(h, p, host, bytes);
    return p;
}

// Host memory of the cases: plain malloc, not cmocka's test_malloc, so that a failing case
// reports its own message as a failure rather than the blocks it could not free as an error.
static void *xmalloc(size_t bytes)
{
    void *p = malloc(bytes > 0 ? bytes : 1);
    assert_non_null(p);
    return p;
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    assert_non_null(p);
    return p;
}

static size_t fbytes(int64_t n)
{
    return (size_t)(n > 0 ? n : 1) * sizeof(float);
}

static float *host_floats(int64_t n)
{
    return xmalloc(fbytes(n));
}

static uint32_t bits_of(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof(u));
    return u;
}

// got == want bit for bit over total floats; the first n are the result, the rest sentinels
static void check_exact(const struct harness *h, const char *what, const float *got,
                        const float *want, int64_t n, int64_t total)
{
    for (int64_t i = 0; i < total; i++)
        if (bits_of(got[i]) != bits_of(want[i]))
            fail_case(h, what, "differs at [%lld] of %lld%s: got %.9g (0x%08x), want %.9g (0x%08x)",
                      (long long)i, (long long)n, i >= n ? " (past the end)" : "",
                      (double)got[i], bits_of(got[i]), (double)want[i], bits_of(want[i]));
}

// |got − want| <= rtol·mag[i] + atol over n floats (mag NULL: |want|; a tolerance of 0: bit for
// bit), then the total − n after them bit for bit
static void check_close(const struct harness *h, const char *what, const float *got,
                        const float *want, const double *mag, int64_t n, int64_t total,
                        double rtol, double atol)
{
    for (int64_t i = 0; i < n; i++) {
        double m = mag ? mag[i] : fabs((double)want[i]);
        double diff = fabs((double)got[i] - (double)want[i]), tol = rtol * m + atol;
        if (!(diff <= tol) && !(tol == 0.0 && bits_of(got[i]) == bits_of(want[i])))
            fail_case(h, what, "differs at [%lld] of %lld: got %.9g, want %.9g (|diff| %.3g > "
                      "tolerance %.3g = %g · %.3g + %.3g)", (long long)i, (long long)n,
                      (double)got[i], (double)want[i], diff, tol, rtol, m, atol);
    }
    check_exact(h, what, got + n, want + n, 0, total - n);
}

// Scalars returned by an op: equal (NaN == NaN) when tol is 0, else |got − want| <= tol.
static void check_scalar(const struct harness *h, const char *what, double got, double want,
                         double tol)
{
    bool same = tol == 0.0 ? (got == want || (isnan(got) && isnan(want)))
                           : fabs(got - want) <= tol;
    if (!same)
        fail_case(h, what, "is %.17g, want %.17g (tolerance %.3g)", got, want, tol);
}

static void check_int(const struct harness *h, const char *what, long long got, long long want)
{
    if (got != want)
        fail_case(h, what, "is %lld, want %lld", got, want);
}

// ---- vectors held twice: the oracle's host copy and the backend's ----

struct vec {
    int64_t n;
    float *host; // n + TAIL floats, the oracle's operand
    float *dev;  // n + TAIL floats of backend memory holding the same numbers
};

static struct vec vec_from(struct harness *h, const float *values, int64_t n)
{
    struct vec v = {n, host_floats(n + TAIL), NULL};
    if (n > 0)
        memcpy(v.host, values, (size_t)n * sizeof(float));
    for (int64_t i = n; i < n + TAIL; i++)
        v.host[i] = SENTINEL;
    v.dev = dev_copy_of(h, v.host, fbytes(n + TAIL));
    return v;
}

// n floats uniform in [lo, hi), with exact zeros at first, first + every, ... when every > 0
static struct vec vec_random_zeros(struct harness *h, int64_t n, float lo, float hi,
                                   uint64_t seed, int64_t first, int64_t every)
{
    float *x = host_floats(n);
    fnet_test_fill_uniform(x, n, lo, hi, seed);
    for (int64_t i = first; every > 0 && i < n; i += every)
        x[i] = 0.0f;
    struct vec v = vec_from(h, x, n);
    free(x);
    return v;
}

// n floats uniform in [lo, hi)
static struct vec vec_random(struct harness *h, int64_t n, float lo, float hi, uint64_t seed)
{
    return vec_random_zeros(h, n, lo, hi, seed, 0, 0);
}

// n floats all `value` (NaN for outputs the op must overwrite without reading)
static struct vec vec_filled(struct harness *h, int64_t n, float value)
{
    float *x = host_floats(n);
    for (int64_t i = 0; i < n; i++)
        x[i] = value;
    struct vec v = vec_from(h, x, n);
    free(x);
    return v;
}

static void vec_free(struct harness *h, struct vec *v)
{
    dev_free(h, v->dev);
    free(v->host);
    v->dev = NULL;
    v->host = NULL;
}

// Element i of both copies = value (one float uploaded at an offset into backend memory).
static void vec_set(struct harness *h, struct vec *v, int64_t i, float value)
{
    v->host[i] = value;
    dev_put(h, v->dev + i, &value, sizeof(float));
}

// The backend's copy equals the oracle's bit for bit, sentinels included.
static void vec_check(struct harness *h, const char *what, const struct vec *v)
{
    float *got = host_floats(v->n + TAIL);
    dev_get(h, got, v->dev, fbytes(v->n + TAIL));
    check_exact(h, what, got, v->host, v->n, v->n + TAIL);
    free(got);
}

// The backend's copy within rtol·mag[i] of the oracle's; sentinels exact.
static void vec_check_close(struct harness *h, const char *what, const struct vec *v,
                            const double *mag, double rtol)
{
    float *got = host_floats(v->n + TAIL);
    dev_get(h, got, v->dev, fbytes(v->n + TAIL));
    check_close(h, what, got, v->host, mag, v->n, v->n + TAIL, rtol, 0.0);
    free(got);
}

static double *host_doubles(int64_t n)
{
    double *x = xmalloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    for (int64_t i = 0; i < n; i++)
        x[i] = 0.0;
    return x;
}

// SplitMix64 draws for the integer inputs (labels, pixels, row indices)
static uint64_t next_u64(uint64_t *state)
{
    *state += UINT64_C(0x9E3779B97F4A7C15);
    return fnet_mix64(*state);
}

// ---- memory ops ----

static const unsigned byte_sizes[] = {1, 3, 68, 4003, SPLIT_N * sizeof(float)};
#define N_BYTE_SIZES (sizeof(byte_sizes) / sizeof(byte_sizes[0]))

static uint8_t *random_bytes(size_t n, uint64_t seed)
{
    uint8_t *b = xmalloc(n > 0 ? n : 1);
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(next_u64(&seed) >> 56);
    return b;
}

static void check_bytes(const struct harness *h, const char *what, const uint8_t *got,
                        const uint8_t *want, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (got[i] != want[i])
            fail_case(h, what, "differs at byte [%zu] of %zu: got 0x%02x, want 0x%02x", i, n,
                      got[i], want[i]);
}

// Backend buffer of PAD + bytes + PAD (host copy `want`): the whole of it equals want.
static void check_dev_bytes(struct harness *h, const char *what, const void *dev,
                            const uint8_t *want, size_t bytes)
{
    uint8_t *got = random_bytes(bytes, 99); // noise: a download that writes nothing is caught
    dev_get(h, got, dev, bytes);
    check_bytes(h, what, got, want, bytes);
    free(got);
}

// dst (bytes, backend) = src (bytes, host) and back: whole buffers, then a span in the middle of
// one (the PAD bytes around it unchanged), downloaded to an odd host address
static void case_upload_download(struct harness *h)
{
    for (size_t s = 0; s < N_BYTE_SIZES; s++) {
        size_t bytes = (size_t)byte_sizes[s], whole = bytes + 2 * PAD;
        set_shape(h, "%zu bytes at offset %d of %zu", bytes, PAD, whole);
        uint8_t *want = random_bytes(whole, 10 + s), *span = random_bytes(bytes, 20 + s);
        void *d = dev_copy_of(h, want, whole);
        check_dev_bytes(h, "the whole buffer", d, want, whole);
        dev_put(h, (char *)d + PAD, span, bytes);
        memcpy(want + PAD, span, bytes);
        check_dev_bytes(h, "the buffer after a span upload", d, want, whole);
        uint8_t *odd = xmalloc(bytes + 1);
        dev_get(h, odd + 1, (char *)d + PAD, bytes);
        check_bytes(h, "the span downloaded", odd + 1, span, bytes);
        free(odd);
        dev_free(h, d);
        free(span);
        free(want);
    }
}

// dst (bytes) = src (bytes): into the middle of another buffer, between the halves of one buffer,
// and dst == src (a no-op)
static void case_copy(struct harness *h)
{
    for (size_t s = 0; s < N_BYTE_SIZES; s++) {
        size_t bytes = (size_t)byte_sizes[s], whole = bytes + 2 * PAD;
        set_shape(h, "%zu bytes", bytes);
        uint8_t *src = random_bytes(bytes, 30 + s), *dst = random_bytes(whole, 40 + s);
        void *ds = dev_copy_of(h, src, bytes), *dd = dev_copy_of(h, dst, whole);
        h->be->copy(h->ctx, (char *)dd + PAD, ds, bytes);
        memcpy(dst + PAD, src, bytes);
        check_dev_bytes(h, "dst", dd, dst, whole);
        check_dev_bytes(h, "src (input)", ds, src, bytes);
        h->be->copy(h->ctx, ds, ds, bytes); // dst == src: no-op
        check_dev_bytes(h, "src after copying onto itself", ds, src, bytes);
        // within one buffer: its first half to its second
        uint8_t *two = random_bytes(2 * bytes, 50 + s);
        void *dt = dev_copy_of(h, two, 2 * bytes);
        h->be->copy(h->ctx, (char *)dt + bytes, dt, bytes);
        memcpy(two + bytes, two, bytes);
        check_dev_bytes(h, "a buffer copied half onto half", dt, two, 2 * bytes);
        dev_free(h, dt);
        dev_free(h, dd);
        dev_free(h, ds);
        free(two);
        free(dst);
        free(src);
    }
}

// x (n) = value; n = 0 writes nothing
static void case_fill(struct harness *h)
{
    static const float values[] = {0.0f, -1.5f, 3.25e-3f};
    for (size_t s = 0; s <= n_sizes(h); s++) {
        int64_t n = s < n_sizes(h) ? sizes[s] : 0;
        for (size_t v = 0; v < 3; v++) {
            set_shape(h, "n %lld, value %g", (long long)n, (double)values[v]);
            struct vec x = vec_filled(h, n, NAN);
            fnet_reference_backend.fill(h->ref, n, values[v], x.host);
            h->be->fill(h->ctx, n, values[v], x.dev);
            vec_check(h, "x", &x);
            vec_free(h, &x);
        }
    }
}

// ---- BLAS-shaped ----

typedef void (*sgemm_fn)(fnet_ctx *ctx, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                         float alpha, const float *A, int64_t lda, const float *B, int64_t ldb,
                         float beta, float *C, int64_t ldc);

#define GEMM_SPLIT_MACS (4 * 1024 * 1024) // cpu_backend.c: GEMM_SERIAL_MACS

struct gemm_shape {
    int64_t M, N, K;
};

static const struct gemm_shape gemm_shapes[] = {
    {1, 1, 1}, {1, 17, 3}, {3, 1, 17}, {17, 33, 127}, {127, 3, 33}, {33, 1000, 1}, {3, 5, 0},
    // from GEMM_SPLIT_MACS multiply-adds, the cpu backend splits a GEMM over its pool:
    {257, 129, 127}, // 4.2M multiply-adds and M >= N: split along C's rows
    {33, 1031, 127}, // 4.3M and M < N: split along C's columns
};
#define N_GEMM_SHAPES (sizeof(gemm_shapes) / sizeof(gemm_shapes[0]))
#define N_SMALL_GEMM_SHAPES (N_GEMM_SHAPES - 2)
static const float gemm_alphas[] = {0.75f, -1.25f, 1.0f};
static const float gemm_betas[] = {0.0f, 1.0f, -0.6f}; // beta 0: C holds NaN, to be ignored

// A (rows, cols) with leading dimension ld: random, NaN in the padding no op may read
static float *padded_matrix(int64_t rows, int64_t cols, int64_t ld, uint64_t seed)
{
    float *A = host_floats(rows * ld), *v = host_floats(cols);
    for (int64_t r = 0; r < rows; r++) {
        fnet_test_fill_uniform(v, cols, -1.0f, 1.0f, seed * 1000 + (uint64_t)r);
        for (int64_t c = 0; c < ld; c++)
            A[r * ld + c] = c < cols ? v[c] : NAN;
    }
    free(v);
    return A;
}

// op(X)[r, c] of X row-major with leading dimension ld, transposed when t
static float op_at(const float *X, bool t, int64_t ld, int64_t r, int64_t c)
{
    return t ? X[c * ld + r] : X[r * ld + c];
}

static double square(float x)
{
    return (double)x * (double)x;
}

// C (M, N) = alpha·op(A)·op(B) + beta·C with lda, ldb, ldc wider than the matrices (C's padding
// columns hold SENTINEL and must stay so), for each beta: f on backend memory (be->sgemm) or on
// host memory (host_la->sgemm), against the reference's loop
static void check_gemm(struct harness *h, sgemm_fn f, bool on_backend, const struct gemm_shape *g,
                       int tr, float alpha, uint64_t seed, double rtol)
{
    const bool ta = tr & 1, tb = tr & 2;
    const int64_t M = g->M, N = g->N, K = g->K;
    const int64_t ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
    const int64_t lda = ac + 3, ldb = bc + 5, ldc = N + 2, csize = M * ldc;
    float *A = padded_matrix(ar, ac, lda, seed), *B = padded_matrix(br, bc, ldb, seed + 1);
    // The scale of the rounding errors of a float sum: Σ_k |op(A)_ik·op(B)_kj| <=
    // ‖row i of op(A)‖·‖column j of op(B)‖ (Cauchy–Schwarz), at a fraction of a GEMM's cost
    double *rowA = host_doubles(M), *colB = host_doubles(N);
    for (int64_t k = 0; k < K; k++) {
        for (int64_t i = 0; i < M; i++)
            rowA[i] += square(op_at(A, ta, lda, i, k));
        for (int64_t j = 0; j < N; j++)
            colB[j] += square(op_at(B, tb, ldb, k, j));
    }
    float *dA = NULL, *dB = NULL;
    if (on_backend) {
        dA = dev_copy_of(h, A, fbytes(ar * lda));
        dB = dev_copy_of(h, B, fbytes(br * ldb));
    }
    float *C0 = host_floats(csize), *want = host_floats(csize), *got = host_floats(csize);
    double *mag = host_doubles(csize);
    for (size_t b = 0; b < sizeof(gemm_betas) / sizeof(gemm_betas[0]); b++) {
        // the split shapes take one beta per transpose pair (all three over the four pairs)
        if (M * N * K >= GEMM_SPLIT_MACS && b != (size_t)tr % 3)
            continue;
        float beta = gemm_betas[b];
        set_shape(h, "M %lld, N %lld, K %lld, ta %d, tb %d, lda %lld, ldb %lld, ldc %lld, "
                  "alpha %g, beta %g", (long long)M, (long long)N, (long long)K, ta, tb,
                  (long long)lda, (long long)ldb, (long long)ldc, (double)alpha, (double)beta);
        fnet_test_fill_uniform(C0, csize, -1.0f, 1.0f, seed + 2 + b);
        for (int64_t i = 0; i < csize; i++) {
            bool pad = i % ldc >= N;
            if (pad)
                C0[i] = SENTINEL;
            else if (beta == 0.0f)
                C0[i] = NAN;
            mag[i] = pad ? 0.0
                         : fabs((double)alpha) * sqrt(rowA[i / ldc] * colB[i % ldc]) +
                               (beta == 0.0f ? 0.0 : fabs((double)beta * C0[i]));
        }
        memcpy(want, C0, (size_t)csize * sizeof(float));
        fnet_reference_backend.sgemm(h->ref, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, want,
                                     ldc);
        if (on_backend) {
            float *dC = dev_copy_of(h, C0, fbytes(csize));
            f(h->ctx, ta, tb, M, N, K, alpha, dA, lda, dB, ldb, beta, dC, ldc);
            dev_get(h, got, dC, fbytes(csize));
            dev_free(h, dC);
        } else {
            memcpy(got, C0, (size_t)csize * sizeof(float));
            f(h->ctx, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, got, ldc);
        }
        check_close(h, "C (padding columns included)", got, want, mag, csize, csize, rtol, 0.0);
    }
    if (on_backend) {
        dev_free(h, dB);
        dev_free(h, dA);
    }
    free(mag), free(got), free(want), free(C0);
    free(colB), free(rowA), free(B), free(A);
}

// C (M, N) = alpha·op(A)·op(B) + beta·C for every shape, transpose pair and beta
static void case_sgemm(struct harness *h)
{
    for (size_t s = 0; s < N_GEMM_SHAPES; s++)
        for (int tr = 0; tr < 4; tr++)
            check_gemm(h, h->be->sgemm, true, &gemm_shapes[s], tr, gemm_alphas[s % 3],
                       100 * s + 10 * (size_t)tr, SUM_RTOL);
}

// count GEMMs with strided operands, one shared (stride 0) or not, both transposes, beta 0 (C NaN)
// and 1: each block against the reference's sgemm within SUM_RTOL of its terms' magnitudes
static void case_sgemm_batched(struct harness *h)
{
    static const int64_t shapes[][4] = {{1, 1, 1, 1}, {7, 5, 3, 4}, {33, 17, 9, 3}, {64, 40, 32, 2}};
    for (size_t s = 0; s < 4; s++)
        for (int tr = 0; tr < 4; tr++)
            for (int shared = 0; shared < 2; shared++) {
                const bool ta = tr & 1, tb = tr & 2, acc = (tr + (int)s) % 2;
                int64_t M = shapes[s][0], N = shapes[s][1], K = shapes[s][2],
                        count = shapes[s][3];
                int64_t lda = (ta ? M : K) + 1, ldb = tb ? K : N, ldc = N + 2;
                int64_t a_size = (ta ? K : M) * lda, b_size = (tb ? N : K) * ldb,
                        c_size = M * ldc;
                int64_t sa = shared ? 0 : a_size, sb = b_size + 3, sc = c_size;
                set_shape(h, "%lld GEMMs (%lld, %lld, %lld), %s%s, A %s, beta %d",
                          (long long)count, (long long)M, (long long)N, (long long)K,
                          ta ? "Aᵀ" : "A", tb ? "Bᵀ" : "B", shared ? "shared" : "strided", acc);
                struct vec A = vec_random(h, sa * (count - 1) + a_size, -1.0f, 1.0f, 240 + s);
                struct vec B = vec_random(h, sb * (count - 1) + b_size, -1.0f, 1.0f, 250 + s);
                struct vec C = acc ? vec_random(h, sc * count, -1.0f, 1.0f, 260 + s)
                                   : vec_filled(h, sc * count, NAN);
                double *mag = host_doubles(sc * count);
                for (int64_t i = 0; i < count; i++)
                    for (int64_t r = 0; r < M; r++)
                        for (int64_t c = 0; c < N; c++) {
                            double m = acc ? fabs((double)C.host[i * sc + r * ldc + c]) : 0.0;
                            for (int64_t k = 0; k < K; k++) {
                                float a = A.host[i * sa + (ta ? k * lda + r : r * lda + k)];
                                float b = B.host[i * sb + (tb ? c * ldb + k : k * ldb + c)];
                                m += 0.75 * fabs((double)a * b);
                            }
                            mag[i * sc + r * ldc + c] = m;
                        }
                fnet_ref_sgemm_batched(h->ref, ta, tb, M, N, K, 0.75f, A.host, lda, sa, B.host,
                                       ldb, sb, acc ? 1.0f : 0.0f, C.host, ldc, sc, count);
                h->be->sgemm_batched(h->ctx, ta, tb, M, N, K, 0.75f, A.dev, lda, sa, B.dev, ldb,
                                     sb, acc ? 1.0f : 0.0f, C.dev, ldc, sc, count);
                vec_check_close(h, "C", &C, mag, SUM_RTOL);
                vec_check(h, "A (input)", &A);
                vec_check(h, "B (input)", &B);
                free(mag);
                vec_free(h, &C);
                vec_free(h, &B);
                vec_free(h, &A);
            }
}

// set_tf32: on, sgemm on every shape and transpose pair within TF32_RTOL; off again, within
// SUM_RTOL as in the sgemm case, so the switch goes both ways (TF32's errors are ~100 times
// SUM_RTOL on the shapes with K >= 17)
static void case_set_tf32(struct harness *h)
{
    for (int on = 1; on >= 0; on--) {
        set_shape(h, "set_tf32(ctx, %s)", on ? "true" : "false");
        check_int(h, "the status", h->be->set_tf32(h->ctx, on), FNET_OK);
        for (size_t s = 0; s < N_GEMM_SHAPES; s++)
            for (int tr = 0; tr < 4; tr++)
                check_gemm(h, h->be->sgemm, true, &gemm_shapes[s], tr, gemm_alphas[s % 3],
                           100 * s + 10 * (size_t)tr + 5, on ? TF32_RTOL : SUM_RTOL);
    }
}

// y (n) += a·x (n)
static void case_axpy(struct harness *h)
{
    static const float as[] = {-0.7f, 2.5f};
    for (size_t s = 0; s < n_sizes(h); s++)
        for (size_t k = 0; k < 2; k++) {
            int64_t n = sizes[s];
            set_shape(h, "n %lld, a %g", (long long)n, (double)as[k]);
            struct vec x = vec_random(h, n, -1.0f, 1.0f, 200 + s);
            struct vec y = vec_random(h, n, -1.0f, 1.0f, 210 + s);
            double *mag = host_doubles(n);
            for (int64_t i = 0; i < n; i++)
                mag[i] = fabs((double)y.host[i]) + fabs((double)as[k] * x.host[i]);
            fnet_reference_backend.axpy(h->ref, n, as[k], x.host, y.host);
            h->be->axpy(h->ctx, n, as[k], x.dev, y.dev);
            vec_check_close(h, "y", &y, mag, ONE_ROUNDING_RTOL);
            vec_check(h, "x (input)", &x);
            free(mag);
            vec_free(h, &y);
            vec_free(h, &x);
        }
}

// x (n) *= a
static void case_scal(struct harness *h)
{
    static const float as[] = {-1.3f, 0.5f, 0.0f};
    for (size_t s = 0; s < n_sizes(h); s++)
        for (size_t k = 0; k < 3; k++) {
            int64_t n = sizes[s];
            set_shape(h, "n %lld, a %g", (long long)n, (double)as[k]);
            struct vec x = vec_random(h, n, -1.0f, 1.0f, 220 + s);
            double *mag = host_doubles(n);
            for (int64_t i = 0; i < n; i++)
                mag[i] = fabs((double)as[k] * x.host[i]);
            fnet_reference_backend.scal(h->ref, n, as[k], x.host);
            h->be->scal(h->ctx, n, as[k], x.dev);
            vec_check_close(h, "x", &x, mag, ONE_ROUNDING_RTOL);
            free(mag);
            vec_free(h, &x);
        }
}

// Σ x·y (n) in double; n = 0 gives 0
static void case_dot(struct harness *h)
{
    for (size_t s = 0; s <= n_sizes(h); s++) {
        int64_t n = s < n_sizes(h) ? sizes[s] : 0;
        set_shape(h, "n %lld", (long long)n);
        struct vec x = vec_random(h, n, -1.0f, 1.0f, 230 + s);
        struct vec y = vec_random(h, n, -1.0f, 1.0f, 240 + s);
        double mag = 0.0;
        for (int64_t i = 0; i < n; i++)
            mag += fabs((double)x.host[i] * (double)y.host[i]);
        double want = fnet_reference_backend.dot(h->ref, n, x.host, y.host);
        double got = h->be->dot(h->ctx, n, x.dev, y.dev);
        check_scalar(h, "the sum", got, want, (h->gpu ? DOUBLE_SUM_RTOL(n) : DOT_RTOL) * mag);
        vec_check(h, "x (input)", &x);
        vec_check(h, "y (input)", &y);
        vec_free(h, &y);
        vec_free(h, &x);
    }
}

// y (n) = a·x + b·y: b = 0 (y NaN, unread), b = 1, general b, and x == y
static void case_axpby(struct harness *h)
{
    struct ab {
        float a, b;
        bool alias;
    };
    static const struct ab abs[] = {
        {0.5f, 0.0f, false}, {1.25f, 1.0f, false}, {-0.3f, 0.7f, false},
        {0.5f, -1.5f, true}, {-2.0f, 0.0f, true},
    };
    for (size_t s = 0; s < n_sizes(h); s++)
        for (size_t k = 0; k < sizeof(abs) / sizeof(abs[0]); k++) {
            int64_t n = sizes[s];
            const struct ab *c = &abs[k];
            set_shape(h, "n %lld, a %g, b %g%s", (long long)n, (double)c->a, (double)c->b,
                      c->alias ? ", x == y" : "");
            struct vec x = vec_random(h, n, -1.0f, 1.0f, 250 + s);
            struct vec y = c->alias ? x
                           : c->b == 0.0f ? vec_filled(h, n, NAN)
                                          : vec_random(h, n, -1.0f, 1.0f, 260 + s);
            fnet_reference_backend.axpby(h->ref, n, c->a, x.host, c->b, y.host);
            h->be->axpby(h->ctx, n, c->a, x.dev, c->b, y.dev);
            vec_check(h, "y", &y);
            if (!c->alias) {
                vec_check(h, "x (input)", &x);
                vec_free(h, &y);
            }
            vec_free(h, &x);
        }
}

// max |x_i| (n): NaNs skipped, Inf counted, the maximum first or last; n = 0 gives 0
static void case_amax(struct harness *h)
{
    for (size_t s = 0; s <= n_sizes(h); s++) {
        int64_t n = s < n_sizes(h) ? sizes[s] : 0;
        struct vec x = vec_random(h, n, -3.0f, 3.0f, 270 + s);
        for (int variant = 0; variant < (n > 0 ? 5 : 1); variant++) {
            static const char *const what[] = {
                "random", "-5 last", "-6 first", "NaN first, middle and last", "-Inf in the middle",
            };
            if (variant == 1)
                vec_set(h, &x, n - 1, -5.0f);
            if (variant == 2)
                vec_set(h, &x, 0, -6.0f);
            if (variant == 3) {
                vec_set(h, &x, 0, NAN);
                vec_set(h, &x, n / 2, NAN);
                vec_set(h, &x, n - 1, NAN);
            }
            if (variant == 4)
                vec_set(h, &x, n / 2, -INFINITY);
            set_shape(h, "n %lld, %s", (long long)n, what[variant]);
            double want = fnet_reference_backend.amax(h->ref, n, x.host);
            double got = h->be->amax(h->ctx, n, x.dev);
            check_scalar(h, "the maximum", got, want, 0.0);
            vec_check(h, "x (input)", &x);
        }
        vec_free(h, &x);
    }
}

// ---- layout ----

// out (Q, P, R) (+)= in (P, Q, R); overwrite (out NaN) and accumulate
static void case_permute_021(struct harness *h)
{
    static const int64_t pqr[][3] = {
        {1, 1, 1}, {3, 17, 1}, {17, 3, 2}, {5, 7, 16}, {33, 3, 5}, {1, 127, 4}, {127, 1, 8},
        {257, 13, 11}, // 36751 elements, over 32768: split over the pool in 128-row pieces
    };
    for (size_t s = 0; s < sizeof(pqr) / sizeof(pqr[0]); s++)
        for (int acc = 0; acc < 2; acc++) {
            int64_t P = pqr[s][0], Q = pqr[s][1], R = pqr[s][2], n = P * Q * R;
            set_shape(h, "P %lld, Q %lld, R %lld, accumulate %d", (long long)P, (long long)Q,
                      (long long)R, acc);
            struct vec in = vec_random(h, n, -1.0f, 1.0f, 300 + s);
            struct vec out = acc ? vec_random(h, n, -1.0f, 1.0f, 310 + s) : vec_filled(h, n, NAN);
            fnet_reference_backend.permute_021(h->ref, P, Q, R, in.host, out.host, acc);
            h->be->permute_021(h->ctx, P, Q, R, in.dev, out.dev, acc);
            vec_check(h, "out", &out);
            vec_check(h, "in (input)", &in);
            vec_free(h, &out);
            vec_free(h, &in);
        }
}

// out (cols, rows) = in (rows, cols)ᵀ
static void case_transpose(struct harness *h)
{
    static const int64_t rc[][2] = {
        {1, 1}, {1, 17}, {17, 1}, {3, 1000}, {33, 127}, {127, 33},
        {301, 131}, // 39431 elements, over 32768: split over the pool in 32-row tiles
        {64, 96}, {40, 72}, {256, 1024}, {1024, 256}, // full 32×32 tiles (8×8 in registers)
    };
    for (size_t s = 0; s < sizeof(rc) / sizeof(rc[0]); s++) {
        int64_t rows = rc[s][0], cols = rc[s][1];
        set_shape(h, "rows %lld, cols %lld", (long long)rows, (long long)cols);
        struct vec in = vec_random(h, rows * cols, -1.0f, 1.0f, 320 + s);
        struct vec out = vec_filled(h, rows * cols, NAN);
        fnet_reference_backend.transpose(h->ref, rows, cols, in.host, out.host);
        h->be->transpose(h->ctx, rows, cols, in.dev, out.dev);
        vec_check(h, "out", &out);
        vec_check(h, "in (input)", &in);
        vec_free(h, &out);
        vec_free(h, &in);
    }
}

// ---- element-wise ----

static const int64_t bn_shapes[][2] = {{1, 1}, {3, 17}, {17, 3}, {127, 33}, {1000, 1}, {1, 1000},
                                       {257, 131}};
#define N_BN_SHAPES (sizeof(bn_shapes) / sizeof(bn_shapes[0]))

typedef void (*bias_fn)(fnet_ctx *ctx, int64_t B, int64_t n, const float *bias, float *y);

// y (B, n) (+)= bias (n) over rows: bias_fill (y NaN) and bias_add
static void bias_case(struct harness *h, bias_fn ref, bias_fn f, bool add)
{
    for (size_t s = 0; s < N_BN_SHAPES; s++) {
        int64_t B = bn_shapes[s][0], n = bn_shapes[s][1];
        set_shape(h, "B %lld, n %lld", (long long)B, (long long)n);
        struct vec bias = vec_random(h, n, -1.0f, 1.0f, 330 + s);
        struct vec y = add ? vec_random(h, B * n, -1.0f, 1.0f, 340 + s) : vec_filled(h, B * n, NAN);
        ref(h->ref, B, n, bias.host, y.host);
        f(h->ctx, B, n, bias.dev, y.dev);
        vec_check(h, "y", &y);
        vec_check(h, "bias (input)", &bias);
        vec_free(h, &y);
        vec_free(h, &bias);
    }
}

static void case_bias_fill(struct harness *h)
{
    bias_case(h, fnet_reference_backend.bias_fill, h->be->bias_fill, false);
}

static void case_bias_add(struct harness *h)
{
    bias_case(h, fnet_reference_backend.bias_add, h->be->bias_add, true);
}

// db (n) (+)= Σ_rows dy (B, n): overwrite (db NaN) and accumulate
static void case_bias_grad(struct harness *h)
{
    for (size_t s = 0; s < N_BN_SHAPES; s++)
        for (int acc = 0; acc < 2; acc++) {
            int64_t B = bn_shapes[s][0], n = bn_shapes[s][1];
            set_shape(h, "B %lld, n %lld, accumulate %d", (long long)B, (long long)n, acc);
            struct vec dy = vec_random(h, B * n, -1.0f, 1.0f, 350 + s);
            struct vec db = acc ? vec_random(h, n, -1.0f, 1.0f, 360 + s) : vec_filled(h, n, NAN);
            double *mag = host_doubles(n);
            for (int64_t j = 0; j < n; j++) {
                mag[j] = acc ? fabs((double)db.host[j]) : 0.0;
                for (int64_t r = 0; r < B; r++)
                    mag[j] += fabs((double)dy.host[r * n + j]);
            }
            fnet_reference_backend.bias_grad(h->ref, B, n, dy.host, db.host, acc);
            h->be->bias_grad(h->ctx, B, n, dy.dev, db.dev, acc);
            vec_check_close(h, "db", &db, mag, SUM_RTOL);
            vec_check(h, "dy (input)", &dy);
            free(mag);
            vec_free(h, &db);
            vec_free(h, &dy);
        }
}

static const enum fnet_act acts[] = {FNET_ACT_RELU, FNET_ACT_TANH, FNET_ACT_SIGMOID};
static const char *const act_names[] = {"relu", "tanh", "sigmoid"};
// Values no enum fnet_act has: both ops must refuse them on every backend, touching nothing.
static const int unknown_acts[] = {3, 99};

// x (n) in [-12, 12) with exact zeros every 11th element (relu's kink)
static struct vec act_input(struct harness *h, int64_t n, uint64_t seed)
{
    return vec_random_zeros(h, n, -12.0f, 12.0f, seed, 0, 11);
}

// y (n) = f(x): each activation, y apart (NaN) and x == y; unknown activations refused
static void case_act_forward(struct harness *h)
{
    for (size_t s = 0; s < n_sizes(h); s++)
        for (size_t a = 0; a < 3; a++)
            for (int alias = 0; alias < 2; alias++) {
                int64_t n = sizes[s];
                set_shape(h, "n %lld, %s%s", (long long)n, act_names[a], alias ? ", x == y" : "");
                struct vec x = act_input(h, n, 400 + s);
                struct vec y = alias ? x : vec_filled(h, n, NAN);
                fnet_status want = fnet_reference_backend.act_forward(h->ref, acts[a], n, x.host,
                                                                      y.host);
                fnet_status got = h->be->act_forward(h->ctx, acts[a], n, x.dev, y.dev);
                check_int(h, "the status", got, want);
                check_int(h, "the reference's status", want, FNET_OK);
                if (h->gpu && acts[a] != FNET_ACT_RELU)
                    vec_check_close(h, "y", &y, NULL, TRANSCENDENTAL_RTOL);
                else
                    vec_check(h, "y", &y);
                if (!alias) {
                    vec_check(h, "x (input)", &x);
                    vec_free(h, &y);
                }
                vec_free(h, &x);
            }
    for (size_t u = 0; u < sizeof(unknown_acts) / sizeof(unknown_acts[0]); u++) {
        enum fnet_act act = (enum fnet_act)unknown_acts[u];
        set_shape(h, "n 17, unknown activation %d", unknown_acts[u]);
        struct vec x = act_input(h, 17, 410), y = vec_random(h, 17, -1.0f, 1.0f, 411);
        check_int(h, "the reference's status",
                  fnet_reference_backend.act_forward(h->ref, act, 17, x.host, y.host),
                  FNET_ERR_INVALID_ARG);
        check_int(h, "the status", h->be->act_forward(h->ctx, act, 17, x.dev, y.dev),
                  FNET_ERR_INVALID_ARG);
        vec_check(h, "y (untouched)", &y);
        vec_free(h, &y);
        vec_free(h, &x);
    }
}

// dx (n) = dy ⊙ f'(.) from y = f(x) (n): each activation, dx apart (NaN) and dx == dy; unknown
// activations refused
static void case_act_backward(struct harness *h)
{
    for (size_t s = 0; s < n_sizes(h); s++)
        for (size_t a = 0; a < 3; a++)
            for (int alias = 0; alias < 2; alias++) {
                int64_t n = sizes[s];
                set_shape(h, "n %lld, %s%s", (long long)n, act_names[a],
                          alias ? ", dx == dy" : "");
                float *yv = host_floats(n + TAIL);
                struct vec x = act_input(h, n, 420 + s);
                fnet_reference_backend.act_forward(h->ref, acts[a], n, x.host, yv);
                struct vec y = vec_from(h, yv, n);
                struct vec dy = vec_random(h, n, -1.0f, 1.0f, 430 + s);
                struct vec dx = alias ? dy : vec_filled(h, n, NAN);
                fnet_status want = fnet_reference_backend.act_backward(h->ref, acts[a], n, y.host,
                                                                       dy.host, dx.host);
                fnet_status got = h->be->act_backward(h->ctx, acts[a], n, y.dev, dy.dev, dx.dev);
                check_int(h, "the status", got, want);
                check_int(h, "the reference's status", want, FNET_OK);
                vec_check(h, "dx", &dx);
                vec_check(h, "y (input)", &y);
                if (!alias) {
                    vec_check(h, "dy (input)", &dy);
                    vec_free(h, &dx);
                }
                vec_free(h, &dy);
                vec_free(h, &y);
                vec_free(h, &x);
                free(yv);
            }
    for (size_t u = 0; u < sizeof(unknown_acts) / sizeof(unknown_acts[0]); u++) {
        enum fnet_act act = (enum fnet_act)unknown_acts[u];
        set_shape(h, "n 17, unknown activation %d", unknown_acts[u]);
        struct vec y = vec_random(h, 17, 0.0f, 1.0f, 440);
        struct vec dy = vec_random(h, 17, -1.0f, 1.0f, 441);
        struct vec dx = vec_random(h, 17, -1.0f, 1.0f, 442);
        check_int(h, "the reference's status",
                  fnet_reference_backend.act_backward(h->ref, act, 17, y.host, dy.host, dx.host),
                  FNET_ERR_INVALID_ARG);
        check_int(h, "the status", h->be->act_backward(h->ctx, act, 17, y.dev, dy.dev, dx.dev),
                  FNET_ERR_INVALID_ARG);
        vec_check(h, "dx (untouched)", &dx);
        vec_free(h, &dx);
        vec_free(h, &dy);
        vec_free(h, &y);
    }
}

// y (n) = x ⊙ mask (n): y apart (NaN) and x == y
static void case_mul(struct harness *h)
{
    for (size_t s = 0; s < n_sizes(h); s++)
        for (int alias = 0; alias < 2; alias++) {
            int64_t n = sizes[s];
            set_shape(h, "n %lld%s", (long long)n, alias ? ", x == y" : "");
            struct vec x = vec_random(h, n, -2.0f, 2.0f, 450 + s);
            struct vec mask = vec_random(h, n, 0.0f, 2.0f, 460 + s);
            struct vec y = alias ? x : vec_filled(h, n, NAN);
            fnet_reference_backend.mul(h->ref, n, x.host, mask.host, y.host);
            h->be->mul(h->ctx, n, x.dev, mask.dev, y.dev);
            vec_check(h, "y", &y);
            vec_check(h, "mask (input)", &mask);
            if (!alias) {
                vec_check(h, "x (input)", &x);
                vec_free(h, &y);
            }
            vec_free(h, &mask);
            vec_free(h, &x);
        }
}

// mask (n) of draws (seed, step) from draw `first` on: exactly the reference's mask, for each p;
// two steps differ; a mask from `first` is the tail of the mask from 0 (a rank's rows of a batch)
static void case_dropout_mask(struct harness *h)
{
    static const float ps[] = {0.0f, 0.1f, 0.5f, 0.999f};
    const uint64_t seed = 20240611, shift = 7;
    for (size_t s = 0; s < n_sizes(h); s++)
        for (size_t k = 0; k < 4; k++) {
            int64_t n = sizes[s];
            struct vec mask[2];
            for (uint64_t step = 0; step < 2; step++) {
                set_shape(h, "n %lld, p %g, seed %llu, step %llu", (long long)n, (double)ps[k],
                          (unsigned long long)seed, (unsigned long long)step);
                mask[step] = vec_filled(h, n, NAN);
                fnet_reference_backend.dropout_mask(h->ref, n, ps[k], seed, step, 0,
                                                    mask[step].host);
                h->be->dropout_mask(h->ctx, n, ps[k], seed, step, 0, mask[step].dev);
                vec_check(h, "mask", &mask[step]);
            }
            if (n > (int64_t)shift) {
                set_shape(h, "n %lld, p %g, step 1, from draw %llu", (long long)n - (long long)shift,
                          (double)ps[k], (unsigned long long)shift);
                struct vec tail = vec_filled(h, n - (int64_t)shift, NAN);
                fnet_reference_backend.dropout_mask(h->ref, n - (int64_t)shift, ps[k], seed, 1,
                                                    shift, tail.host);
                h->be->dropout_mask(h->ctx, n - (int64_t)shift, ps[k], seed, 1, shift, tail.dev);
                vec_check(h, "mask", &tail);
                if (memcmp(tail.host, mask[1].host + shift,
                           (size_t)(n - (int64_t)shift) * sizeof(float)) != 0)
                    fail_case(h, "mask", "from draw 7 is not the tail of the mask from draw 0");
                vec_free(h, &tail);
            }
            // a mask of 1000 draws or more with 0 < p < 1 cannot repeat across steps
            if (n >= 1000 && ps[k] > 0.0f &&
                memcmp(mask[0].host, mask[1].host, (size_t)n * sizeof(float)) == 0)
                fail_case(h, "mask", "of step 1 equals that of step 0");
            vec_free(h, &mask[1]);
            vec_free(h, &mask[0]);
        }
}

// ---- FFTs and spectra ----

// A plan of length n on the backend under test (fft_plan, counted for the harness ops), and the
// reference's own for the oracle; fft_plan_free frees either.
static void *plan_on(struct harness *h, int64_t n)
{
    void *plan = NULL;
    fnet_status st = h->be->fft_plan(h->ctx, n, &plan);
    count_call(h, FNET_OP_FFT_PLAN);
    if (st != FNET_OK || plan == NULL)
        fail_case(h, "fft_plan", "of length %lld: %s: %s", (long long)n, fnet_status_str(st),
                  fnet_ctx_last_error(h->ctx));
    return plan;
}

static void plan_free_on(struct harness *h, void *plan)
{
    h->be->fft_plan_free(h->ctx, plan);
    count_call(h, FNET_OP_FFT_PLAN_FREE);
}

static void *ref_plan(struct harness *h, int64_t n)
{
    void *plan = NULL;
    fnet_assert_ok(h->ref, fnet_reference_backend.fft_plan(h->ref, n, &plan));
    return plan;
}

// fft_plan when the k-th allocation fails, k = 1, 2, ... until it succeeds: each failure is
// FNET_ERR_OUT_OF_MEMORY with no plan (and nothing leaked: ASan, under `make test`); the first
// allocation must be reached. fft_plan_free(NULL) is a no-op.
static void check_fft_plan_out_of_memory(struct harness *h, int64_t n)
{
    for (long k = 1;; k++) {
        set_shape(h, "n %lld, allocation %ld fails", (long long)n, k);
        void *plan = (void *)&plan; // must become NULL
        fnet_debug_fail_alloc(k);
        fnet_status st = h->be->fft_plan(h->ctx, n, &plan);
        fnet_debug_fail_alloc(0);
        count_call(h, FNET_OP_FFT_PLAN);
        if (st == FNET_OK) {
            if (k == 1)
                fail_case(h, "fft_plan", "succeeded with its first allocation failing");
            plan_free_on(h, plan);
            break;
        }
        check_int(h, "the status", st, FNET_ERR_OUT_OF_MEMORY);
        if (plan != NULL)
            fail_case(h, "*plan", "is %p after a failure, not NULL", plan);
        if (k == 16)
            fail_case(h, "fft_plan", "still fails with allocation %ld failing", k);
    }
    plan_free_on(h, NULL);
}

// Lengths: 1, 2 (no bins between 0 and n/2), odd and even, powers of 2, a prime; counts around
// the cpu plan's chunk of 64 signals: one chunk, one more, whole chunks and a rest. The
// reference's DFT costs n²/2 per signal, so the two longest take the counts up to 65 alone.
static const int64_t fft_lengths[] = {1, 2, 3, 7, 8, 48, 64, 100, 127};
static const int64_t fft_counts[] = {1, 3, 64, 65, 200};
#define N_FFT_LENGTHS (sizeof(fft_lengths) / sizeof(fft_lengths[0]))
#define N_FFT_COUNTS (sizeof(fft_counts) / sizeof(fft_counts[0]))
#define FFT_LONG 100 // from this length, counts up to 65
// From FNET_POOL_GRAIN floats of signal the cpu backend splits its items (chunks, then the
// rest) over the pool (cpu_fft.c): 65 chunks and a rest of 40 in pieces of 22 items; 32 chunks
// and a rest of 52 in pieces of 11
static const int64_t fft_split_shapes[][2] = {{8, 4200}, {16, 2100}};
#define N_FFT_SPLIT (sizeof(fft_split_shapes) / sizeof(fft_split_shapes[0]))
#define N_FFT_SHAPES (N_FFT_LENGTHS * N_FFT_COUNTS + N_FFT_SPLIT)

// Shape s of the FFT cases: false for the combinations left out
static bool fft_shape(size_t s, int64_t *n, int64_t *count)
{
    if (s < N_FFT_LENGTHS * N_FFT_COUNTS) {
        *n = fft_lengths[s / N_FFT_COUNTS];
        *count = fft_counts[s % N_FFT_COUNTS];
        return *n < FFT_LONG || *count <= 65;
    }
    *n = fft_split_shapes[s - N_FFT_LENGTHS * N_FFT_COUNTS][0];
    *count = fft_split_shapes[s - N_FFT_LENGTHS * N_FFT_COUNTS][1];
    assert_true(*count * *n >= FNET_POOL_GRAIN);
    return true;
}

// X (count, n/2+1 complex) = DFT of x (count, n) against the reference's double DFT; x unchanged.
// The out-of-memory paths of fft_plan first.
static void case_rfft(struct harness *h)
{
    check_fft_plan_out_of_memory(h, 64);
    for (size_t s = 0; s < N_FFT_SHAPES; s++) {
        int64_t n, count;
        if (!fft_shape(s, &n, &count))
            continue;
        const int64_t bins = n / 2 + 1;
        set_shape(h, "n %lld, count %lld", (long long)n, (long long)count);
        void *plan = plan_on(h, n), *rplan = ref_plan(h, n);
        struct vec x = vec_random(h, count * n, -1.0f, 1.0f, 1000 + s);
        struct vec X = vec_filled(h, count * bins * 2, NAN);
        // every bin of signal i sums the n terms x_t·e^{−iθ}: |terms| = Σ_t |x_t|
        double *mag = host_doubles(count * bins * 2);
        for (int64_t i = 0; i < count; i++) {
            double sum = 0.0;
            for (int64_t t = 0; t < n; t++)
                sum += fabs((double)x.host[i * n + t]);
            for (int64_t f = 0; f < 2 * bins; f++)
                mag[i * 2 * bins + f] = sum;
        }
        fnet_reference_backend.rfft(h->ref, rplan, count, x.host, X.host);
        h->be->rfft(h->ctx, plan, count, x.dev, X.dev);
        vec_check_close(h, "X", &X, mag, FFT_RTOL);
        vec_check(h, "x (input)", &x);
        free(mag);
        vec_free(h, &X);
        vec_free(h, &x);
        fnet_reference_backend.fft_plan_free(h->ref, rplan);
        plan_free_on(h, plan);
    }
}

// irfft(rfft(x)) = n·x on the backend alone: |y_t − n·x_t| <= FFT_ROUNDTRIP_RTOL·n·‖x_i‖₂ for
// every sample t of signal i
static void check_fft_roundtrip(struct harness *h, void *plan, int64_t n, int64_t count,
                                uint64_t seed)
{
    const int64_t bins = n / 2 + 1;
    set_shape(h, "n %lld, count %lld, irfft(rfft(x)) = n·x", (long long)n, (long long)count);
    struct vec x = vec_random(h, count * n, -1.0f, 1.0f, seed);
    struct vec X = vec_filled(h, count * bins * 2, NAN);
    struct vec y = vec_filled(h, count * n, NAN);
    h->be->rfft(h->ctx, plan, count, x.dev, X.dev);
    h->be->irfft(h->ctx, plan, count, X.dev, y.dev);
    double *mag = host_doubles(count * n);
    for (int64_t i = 0; i < count; i++) {
        double norm = 0.0;
        for (int64_t t = 0; t < n; t++)
            norm += square(x.host[i * n + t]);
        for (int64_t t = 0; t < n; t++) {
            y.host[i * n + t] = (float)n * x.host[i * n + t];
            mag[i * n + t] = (double)n * sqrt(norm);
        }
    }
    vec_check_close(h, "irfft(rfft(x))", &y, mag, FFT_ROUNDTRIP_RTOL);
    free(mag);
    vec_free(h, &y);
    vec_free(h, &X);
    vec_free(h, &x);
}

// x (count, n) = unnormalized inverse DFT of X (count, n/2+1 complex): of a random
// Hermitian-consistent X (imaginary parts of bin 0 and bin n/2 zero), and of the same X with
// those imaginary parts random, which the op must ignore (the same x); then the round trip
static void case_irfft(struct harness *h)
{
    for (size_t s = 0; s < N_FFT_SHAPES; s++) {
        int64_t n, count;
        if (!fft_shape(s, &n, &count))
            continue;
        const int64_t bins = n / 2 + 1;
        // the ignored imaginary parts and the round trip on the counts that cost least and on
        // one split shape
        const bool more = count <= 3 || count == 65 || n == fft_split_shapes[0][0];
        void *plan = plan_on(h, n), *rplan = ref_plan(h, n);
        float *spec = host_floats(count * bins * 2);
        fnet_test_fill_uniform(spec, count * bins * 2, -1.0f, 1.0f, 1100 + s);
        double *mag = host_doubles(count * n);
        for (int64_t i = 0; i < count; i++) {
            float *Xi = spec + i * 2 * bins;
            Xi[1] = 0.0f;
            if (n % 2 == 0)
                Xi[2 * (bins - 1) + 1] = 0.0f;
            // x_t sums X_0, X_{n/2} once and every other bin twice, each as re·cos − im·sin
            double sum = 0.0;
            for (int64_t f = 0; f < bins; f++)
                sum += (f == 0 || 2 * f == n ? 1.0 : 2.0) *
                       (fabs((double)Xi[2 * f]) + fabs((double)Xi[2 * f + 1]));
            for (int64_t t = 0; t < n; t++)
                mag[i * n + t] = sum;
        }
        float *want = host_floats(count * n + TAIL);
        fnet_reference_backend.irfft(h->ref, rplan, count, spec, want);
        for (int variant = 0; variant < (more ? 2 : 1); variant++) {
            set_shape(h, "n %lld, count %lld, %s", (long long)n, (long long)count,
                      variant ? "imaginary parts of bins 0 and n/2 random (ignored)"
                              : "Hermitian-consistent");
            if (variant == 1) {
                float *noise = host_floats(2 * count);
                fnet_test_fill_uniform(noise, 2 * count, -1.0f, 1.0f, 1200 + s);
                for (int64_t i = 0; i < count; i++) {
                    spec[i * 2 * bins + 1] = noise[2 * i];
                    if (n % 2 == 0)
                        spec[i * 2 * bins + 2 * (bins - 1) + 1] = noise[2 * i + 1];
                }
                free(noise);
            }
            struct vec X = vec_from(h, spec, count * bins * 2); // the op may overwrite it
            struct vec x = vec_filled(h, count * n, NAN);
            memcpy(x.host, want, (size_t)(count * n) * sizeof(float));
            h->be->irfft(h->ctx, plan, count, X.dev, x.dev);
            vec_check_close(h, "x", &x, mag, FFT_RTOL);
            vec_free(h, &x);
            vec_free(h, &X);
        }
        if (more)
            check_fft_roundtrip(h, plan, n, count, 1300 + s);
        free(want);
        free(mag);
        free(spec);
        fnet_reference_backend.fft_plan_free(h->ref, rplan);
        plan_free_on(h, plan);
    }
}

// The layouts of cmac's callers, the block-circulant layer of P×Q blocks on a batch of S (docs/
// circulant.md), every spectrum of X (S, Q), W (P, Q), Y (S, P) row-major:
enum cmac_pattern {
    CMAC_FORWARD,      // Y[s,p] = Σ_q X[s,q]·W[p,q]: A = X (Q, 1), B = W as (Q, P) (1, Q)
    CMAC_INPUT_GRAD,   // DX[s,q] = Σ_p DY[s,p]·conj(W[p,q]): A = DY (P, 1), B = W (Q, 1)
    CMAC_FILTER_GRAD,  // DW[p,q] = Σ_s DY[s,p]·conj(X[s,q]): A = DY as (P, S) (1, P), B = X
    CMAC_FILTER_GRAD_T, // the same with the conjugate on A: A = X as (Q, S) (1, Q), C = DW as
                        // (Q, P) (1, Q)
    CMAC_BOTH_CONJ,    // the forward layout, both operands conjugated
    N_CMAC_PATTERNS
};
static const char *const cmac_pattern_names[] = {"forward", "input gradient", "filter gradient",
                                                 "filter gradient, A conjugated",
                                                 "forward, both conjugated"};

struct cmac_args {
    int64_t M, N, K, a_m, a_k, b_k, b_n, c_m, c_n;
    int64_t a_spectra, b_spectra, c_spectra;
    bool conj_a, conj_b;
};

static struct cmac_args cmac_layout(enum cmac_pattern p, int64_t S, int64_t P, int64_t Q)
{
    switch (p) {
    case CMAC_FORWARD:
    case CMAC_BOTH_CONJ:
        return (struct cmac_args){S, P, Q, Q, 1, 1, Q, P, 1, S * Q, P * Q, S * P,
                                  p == CMAC_BOTH_CONJ, p == CMAC_BOTH_CONJ};
    case CMAC_INPUT_GRAD:
        return (struct cmac_args){S, Q, P, P, 1, Q, 1, Q, 1, S * P, P * Q, S * Q, false, true};
    case CMAC_FILTER_GRAD:
        return (struct cmac_args){P, Q, S, 1, P, Q, 1, Q, 1, S * P, S * Q, P * Q, false, true};
    case CMAC_FILTER_GRAD_T:
        return (struct cmac_args){Q, P, S, 1, Q, P, 1, 1, Q, S * Q, S * P, P * Q, true, false};
    case N_CMAC_PATTERNS: break;
    }
    return (struct cmac_args){0};
}

// Batch S, blocks P×Q. From CMAC_SPLIT_MACS complex multiply-adds (M·N·K·F) the cpu backend
// splits C's rows over its pool, or its columns when N > M (cpu_fft.c): the last two split at
// F = 17 and 33 (S = 1: along N in the forward and input-gradient layouts), the one with K = 0
// writes zeros (or keeps C) in the forward layouts and has no C in the others.
#define CMAC_SPLIT_MACS 32768
static const int64_t cmac_shapes[][3] = {{1, 1, 1}, {3, 2, 5}, {5, 7, 3}, {2, 3, 0},
                                         {64, 16, 8}, {1, 64, 48}};
static const int64_t cmac_Fs[] = {1, 2, 17, 33};

// C[m, n] (+)= Σ_k op_a(A[m, k]) ∘ op_b(B[k, n]) for every pattern, shape, F and accumulate mode
static void case_cmac(struct harness *h)
{
    for (size_t s = 0; s < sizeof(cmac_shapes) / sizeof(cmac_shapes[0]); s++)
        for (size_t fi = 0; fi < sizeof(cmac_Fs) / sizeof(cmac_Fs[0]); fi++)
            for (int p = 0; p < N_CMAC_PATTERNS; p++)
                for (int acc = 0; acc < 2; acc++) {
                    const int64_t F = cmac_Fs[fi];
                    struct cmac_args g = cmac_layout((enum cmac_pattern)p, cmac_shapes[s][0],
                                                     cmac_shapes[s][1], cmac_shapes[s][2]);
                    set_shape(h, "%s, S %lld, P %lld, Q %lld: F %lld, M %lld, N %lld, K %lld%s, "
                              "accumulate %d", cmac_pattern_names[p], (long long)cmac_shapes[s][0],
                              (long long)cmac_shapes[s][1], (long long)cmac_shapes[s][2],
                              (long long)F, (long long)g.M, (long long)g.N, (long long)g.K,
                              g.M * g.N * g.K * F >= CMAC_SPLIT_MACS ? " (split)" : "", acc);
                    uint64_t seed = 1400 + 100 * s + 10 * fi + (uint64_t)p;
                    struct vec A = vec_random(h, g.a_spectra * 2 * F, -1.0f, 1.0f, seed);
                    struct vec B = vec_random(h, g.b_spectra * 2 * F, -1.0f, 1.0f, seed + 1000);
                    struct vec C = acc ? vec_random(h, g.c_spectra * 2 * F, -1.0f, 1.0f,
                                                    seed + 2000)
                                       : vec_filled(h, g.c_spectra * 2 * F, NAN);
                    // each real or imaginary part of C sums 2K products (and C itself)
                    double *mag = host_doubles(g.c_spectra * 2 * F);
                    for (int64_t m = 0; m < g.M; m++)
                        for (int64_t j = 0; j < g.N; j++)
                            for (int64_t f = 0; f < F; f++) {
                                int64_t c = (m * g.c_m + j * g.c_n) * 2 * F + 2 * f;
                                double re = acc ? fabs((double)C.host[c]) : 0.0;
                                double im = acc ? fabs((double)C.host[c + 1]) : 0.0;
                                for (int64_t k = 0; k < g.K; k++) {
                                    const float *a = A.host + (m * g.a_m + k * g.a_k) * 2 * F;
                                    const float *b = B.host + (k * g.b_k + j * g.b_n) * 2 * F;
                                    double ar = fabs((double)a[2 * f]);
                                    double ai = fabs((double)a[2 * f + 1]);
                                    double br = fabs((double)b[2 * f]);
                                    double bi = fabs((double)b[2 * f + 1]);
                                    re += ar * br + ai * bi;
                                    im += ar * bi + ai * br;
                                }
                                mag[c] = re;
                                mag[c + 1] = im;
                            }
                    fnet_reference_backend.cmac(h->ref, F, g.M, g.N, g.K, A.host, g.a_m, g.a_k,
                                                g.conj_a, B.host, g.b_k, g.b_n, g.conj_b, C.host,
                                                g.c_m, g.c_n, acc);
                    h->be->cmac(h->ctx, F, g.M, g.N, g.K, A.dev, g.a_m, g.a_k, g.conj_a, B.dev,
                                g.b_k, g.b_n, g.conj_b, C.dev, g.c_m, g.c_n, acc);
                    vec_check_close(h, "C", &C, mag, SUM_RTOL);
                    vec_check(h, "A (input)", &A);
                    vec_check(h, "B (input)", &B);
                    free(mag);
                    vec_free(h, &C);
                    vec_free(h, &B);
                    vec_free(h, &A);
                }
}

// ---- sparse matrices (CSR) ----

// The CSR ops' float sums against the reference's double ones, elementwise: a float sum of n
// rounded products and the accumulated value, in any order or tree, is within γ_{n+1} ≈
// (n + 1)·u of the sum of the terms' magnitudes (Higham, "Accuracy and Stability of Numerical
// Algorithms", 2nd ed., §3.1), and the reference's one rounding to float adds u/2 of the result:
// rtol = (n + 2)·u, n the most products any element of the case sums.
#define FLOAT_U 5.9604644775390625e-8 // 2^-24

// A (M, N) in CSR on the host: row r is empty when r % 7 == 3 and full when r % 11 == 5 (neither
// in a `plain` matrix), else it keeps each column with probability `density`; values in [-1, 1).
struct csr_host {
    int64_t M, N, nnz;
    int32_t *row_ptr, *col; // M + 1 and nnz, increasing within each row
    float *val;             // nnz
};

static struct csr_host csr_random(int64_t M, int64_t N, double density, bool plain, uint64_t seed)
{
    struct csr_host a = {M, N, 0, xmalloc((size_t)(M + 1) * sizeof(int32_t)),
                         xmalloc((size_t)(M * N > 0 ? M * N : 1) * sizeof(int32_t)), NULL};
    uint64_t state = seed;
    a.row_ptr[0] = 0;
    for (int64_t r = 0; r < M; r++) {
        bool empty = !plain && r % 7 == 3, full = !plain && !empty && r % 11 == 5;
        for (int64_t c = 0; c < N && !empty; c++) {
            double draw = (double)(next_u64(&state) >> 11) * 0x1p-53;
            if (full || draw < density)
                a.col[a.nnz++] = (int32_t)c;
        }
        a.row_ptr[r + 1] = (int32_t)a.nnz;
    }
    a.val = host_floats(a.nnz);
    fnet_test_fill_uniform(a.val, a.nnz, -1.0f, 1.0f, seed + 7);
    return a;
}

static void csr_free(struct csr_host *a)
{
    free(a->val);
    free(a->col);
    free(a->row_ptr);
}

enum csr_op { CSR_SPMM, CSR_SPMM_T, CSR_SDDMM };

// The operands of one CSR call: A's structure and the two float inputs, on the host (the
// oracle's) and in backend memory. spmm: in1 = val, in2 = X (N, B), out Y (M, B); spmm_t: in1 =
// val, in2 = Y, out X; sddmm: in1 = Y, in2 = X, out (nnz).
struct csr_operands {
    enum csr_op op;
    int64_t M, N, B;
    const struct csr_host *a;
    int32_t *row_ptr, *col; // backend copies
    struct vec in1, in2;
};

// out (+)= the op on backend memory of ctx (be's table), or on the host copies (the reference)
static void csr_call(const struct fnet_backend_ops *be, fnet_ctx *ctx,
                     const struct csr_operands *o, bool on_backend, float *out, bool acc)
{
    const int32_t *rp = on_backend ? o->row_ptr : o->a->row_ptr;
    const int32_t *col = on_backend ? o->col : o->a->col;
    const float *in1 = on_backend ? o->in1.dev : o->in1.host;
    const float *in2 = on_backend ? o->in2.dev : o->in2.host;
    switch (o->op) {
    case CSR_SPMM: be->csr_spmm(ctx, o->M, o->N, o->B, rp, col, in1, in2, out, acc); break;
    case CSR_SPMM_T: be->csr_spmm_t(ctx, o->M, o->N, o->B, rp, col, in1, in2, out, acc); break;
    case CSR_SDDMM: be->csr_sddmm(ctx, o->M, o->N, o->B, rp, col, in1, in2, out, acc); break;
    }
}

// Floats of the op's output.
static int64_t csr_out_n(const struct csr_operands *o)
{
    switch (o->op) {
    case CSR_SPMM: return o->M * o->B;
    case CSR_SPMM_T: return o->N * o->B;
    case CSR_SDDMM: return o->a->nnz;
    }
    return 0;
}

// mag (out) = Σ |terms| of each output element (|out| included when accumulating); returns the
// most products one element sums
static int64_t csr_magnitudes(const struct csr_operands *o, const float *out, bool acc,
                              double *mag)
{
    const struct csr_host *a = o->a;
    const int64_t B = o->B, n = csr_out_n(o);
    int64_t *terms = xcalloc((size_t)(n > 0 ? n : 1), sizeof(int64_t));
    for (int64_t e = 0; e < n; e++)
        mag[e] = acc ? fabs((double)out[e]) : 0.0;
    for (int64_t i = 0; i < o->M; i++)
        for (int64_t k = a->row_ptr[i]; k < a->row_ptr[i + 1]; k++) {
            const int64_t c = a->col[k];
            for (int64_t b = 0; b < B; b++) {
                // spmm: val·X[c, b] into Y[i, b]; spmm_t: val·Y[i, b] into X[c, b]; sddmm:
                // Y[i, b]·X[c, b] into out[k]
                int64_t e = o->op == CSR_SPMM ? i * B + b : o->op == CSR_SPMM_T ? c * B + b : k;
                double t = o->op == CSR_SPMM ? (double)a->val[k] * o->in2.host[c * B + b]
                         : o->op == CSR_SPMM_T ? (double)a->val[k] * o->in2.host[i * B + b]
                                               : (double)o->in1.host[i * B + b] *
                                                     o->in2.host[c * B + b];
                mag[e] += fabs(t);
                terms[e]++;
            }
        }
    int64_t most = 0;
    for (int64_t e = 0; e < n; e++)
        most = terms[e] > most ? terms[e] : most;
    free(terms);
    return most;
}

// A fresh output: random in [-1, 1) to accumulate onto, else NaN (written, never read)
static struct vec csr_output(struct harness *h, int64_t n, bool acc, uint64_t seed)
{
    return acc ? vec_random(h, n, -1.0f, 1.0f, seed) : vec_filled(h, n, NAN);
}

// The backend's copy of v bit for bit equal to `want` (n floats and the sentinels)
static void vec_check_same(struct harness *h, const char *what, const struct vec *v,
                           const struct vec *want)
{
    float *got = host_floats(v->n + TAIL), *w = host_floats(v->n + TAIL);
    dev_get(h, got, v->dev, fbytes(v->n + TAIL));
    dev_get(h, w, want->dev, fbytes(v->n + TAIL));
    check_exact(h, what, got, w, v->n, v->n + TAIL);
    free(w);
    free(got);
}

// One case of op on A: the backend's output against the reference's within (n + 2)·u of the
// magnitudes, the inputs unchanged; a second call gives the same bits; with 1 and with 2 threads
// it is as close to the reference; then the ctx's threads are set back.
static void csr_check(struct harness *h, enum csr_op op, const struct csr_host *a, int64_t B,
                      bool acc, uint64_t seed)
{
    struct csr_operands o = {op, a->M, a->N, B, a, NULL, NULL, {0}, {0}};
    const size_t rp_bytes = (size_t)(a->M + 1) * sizeof(int32_t);
    const size_t col_bytes = (size_t)a->nnz * sizeof(int32_t);
    o.row_ptr = dev_copy_of(h, a->row_ptr, rp_bytes);
    o.col = dev_copy_of(h, a->col, col_bytes);
    if (op == CSR_SDDMM)
        o.in1 = vec_random(h, a->M * B, -1.0f, 1.0f, seed + 1);
    else
        o.in1 = vec_from(h, a->val, a->nnz);
    o.in2 = vec_random(h, (op == CSR_SPMM_T ? a->M : a->N) * B, -1.0f, 1.0f, seed + 2);
    const int64_t n = csr_out_n(&o);
    struct vec out = csr_output(h, n, acc, seed + 3);
    double *mag = host_doubles(n);
    const double rtol = (double)(csr_magnitudes(&o, out.host, acc, mag) + 2) * FLOAT_U;

    csr_call(&fnet_reference_backend, h->ref, &o, false, out.host, acc);
    csr_call(h->be, h->ctx, &o, true, out.dev, acc);
    vec_check_close(h, "the output", &out, mag, rtol);
    vec_check(h, op == CSR_SDDMM ? "Y (input)" : "val (input)", &o.in1);
    vec_check(h, op == CSR_SPMM_T ? "Y (input)" : "X (input)", &o.in2);
    check_dev_bytes(h, "row_ptr (input)", o.row_ptr, (const uint8_t *)a->row_ptr, rp_bytes);
    check_dev_bytes(h, "col (input)", o.col, (const uint8_t *)a->col, col_bytes);

    // deterministic: the same bits from a second call on the same operands
    struct vec again = csr_output(h, n, acc, seed + 3);
    csr_call(h->be, h->ctx, &o, true, again.dev, acc);
    vec_check_same(h, "the output of a second call", &again, &out);
    vec_free(h, &again);

    // one thread and two: each as close to the reference
    for (int threads = 1; threads <= 2; threads++) {
        fnet_assert_ok(h->ctx, fnet_ctx_set_threads(h->ctx, threads));
        struct vec t = csr_output(h, n, acc, seed + 3);
        memcpy(t.host, out.host, fbytes(n + TAIL));
        csr_call(h->be, h->ctx, &o, true, t.dev, acc);
        vec_check_close(h, threads == 1 ? "the output on 1 thread" : "the output on 2 threads",
                        &t, mag, rtol);
        vec_free(h, &t);
    }
    fnet_assert_ok(h->ctx, fnet_ctx_set_threads(h->ctx, TEST_THREADS));

    free(mag);
    vec_free(h, &out);
    vec_free(h, &o.in2);
    vec_free(h, &o.in1);
    dev_free(h, o.col);
    dev_free(h, o.row_ptr);
}

// Every combination of M, N, B in csr_dims at a density cycling through csr_densities, then
// the extra shapes: a layer-sized one (1024×1024 at 10%, B = 32), matrices without entries, a
// dense one, and batches that are several vectors long. From FNET_POOL_GRAIN multiply-adds
// (nnz·B) the cpu backend splits the rows of its output over the pool, in 3 pieces here
// (spmm_t from B = 16 and 256 multiply-adds per row of A: cpu_sparse.c); most shapes with 64
// or 257 do.
static const int64_t csr_dims[] = {1, 3, 17, 64, 257};
#define N_CSR_DIMS (sizeof(csr_dims) / sizeof(csr_dims[0]))
static const double csr_densities[] = {0.01, 0.05, 0.2, 0.5};
struct csr_shape {
    int64_t M, N, B;
    double density;
    bool plain; // no forced empty or full rows
};
static const struct csr_shape csr_extra_shapes[] = {
    {1024, 1024, 32, 0.10, false}, {17, 64, 3, 0.0, true}, {1, 1, 1, 0.0, true},
    {64, 17, 257, 1.0, true},
    // batches of 3, 6 and 7 whole vectors of 16 (and a tail of 4): every block width of spmm's
    // kernel and every number of partial-sum chains of sddmm's; tails of 8 + 4 + 1 floats
    {64, 257, 48, 0.2, false}, {17, 257, 100, 0.5, false}, {257, 64, 112, 0.05, false},
    {257, 17, 13, 0.5, false}, {64, 64, 29, 0.2, false},
};
#define N_CSR_EXTRA (sizeof(csr_extra_shapes) / sizeof(csr_extra_shapes[0]))
#define N_CSR_SHAPES (N_CSR_DIMS * N_CSR_DIMS * N_CSR_DIMS + N_CSR_EXTRA)

static struct csr_shape csr_shape(size_t s)
{
    if (s >= N_CSR_DIMS * N_CSR_DIMS * N_CSR_DIMS)
        return csr_extra_shapes[s - N_CSR_DIMS * N_CSR_DIMS * N_CSR_DIMS];
    size_t m = s / (N_CSR_DIMS * N_CSR_DIMS), n = s / N_CSR_DIMS % N_CSR_DIMS;
    size_t b = s % N_CSR_DIMS;
    return (struct csr_shape){csr_dims[m], csr_dims[n], csr_dims[b],
                              csr_densities[(m + n + b) % 4], false};
}

static const char *const csr_op_names[] = {"spmm", "spmm_t", "sddmm"};

// op on every shape, overwriting (the output NaN) and accumulating
static void csr_case(struct harness *h, enum csr_op op)
{
    for (size_t s = 0; s < N_CSR_SHAPES; s++) {
        struct csr_shape g = csr_shape(s);
        struct csr_host a = csr_random(g.M, g.N, g.density, g.plain, 1700 + 10 * s);
        for (int acc = 0; acc < 2; acc++) {
            set_shape(h, "%s: M %lld, N %lld, B %lld, nnz %lld (density %g%s), accumulate %d",
                      csr_op_names[op], (long long)g.M, (long long)g.N, (long long)g.B,
                      (long long)a.nnz, g.density, g.plain ? "" : ", empty and full rows", acc);
            csr_check(h, op, &a, g.B, acc, 1700 + 10 * s + 5 * (uint64_t)acc);
        }
        csr_free(&a);
    }
}

// Y (M, B) (+)= A·X
static void case_csr_spmm(struct harness *h)
{
    csr_case(h, CSR_SPMM);
}

// X (N, B) (+)= Aᵀ·Y
static void case_csr_spmm_t(struct harness *h)
{
    csr_case(h, CSR_SPMM_T);
}

// out (nnz) (+)= Y[i, :]·X[col[k], :]
static void case_csr_sddmm(struct harness *h)
{
    csr_case(h, CSR_SDDMM);
}

// ---- losses, data ----

typedef double (*loss_fn)(fnet_ctx *ctx, int64_t B, int64_t K, const float *logits,
                          const int32_t *labels, float scale, float *dlogits, int64_t *correct);

enum loss_kind { LOSS_SOFTMAX_CE, LOSS_MSE };

// The GPU's tolerances for a loss of z (B, K) against labels (see "what is compared"): returns
// that of the sum; for softmax, mag (B·K) gets the magnitude each element of dz is held to with
// TRANSCENDENTAL_RTOL (mse's dz is exact: mag is left alone).
static double loss_tolerance(enum loss_kind kind, int64_t B, int64_t K, const float *z,
                             const int32_t *labels, float scale, double *mag)
{
    double terms = 0.0, rows = 0.0;
    for (int64_t r = 0; r < B; r++) {
        const float *zr = z + r * K;
        const int64_t y = labels[r];
        if (kind == LOSS_MSE) {
            for (int64_t k = 0; k < K; k++) {
                double e = (double)zr[k] - (k == y ? 1.0 : 0.0);
                terms += 0.5 * e * e;
            }
            continue;
        }
        double zmax = zr[0], sum = 0.0;
        for (int64_t k = 1; k < K; k++)
            zmax = zr[k] > zmax ? zr[k] : zmax;
        for (int64_t k = 0; k < K; k++)
            sum += exp((double)zr[k] - zmax);
        const double lse = zmax + log(sum);
        terms += fabs(lse - (double)zr[y]);
        rows += 1.0 + fabs(lse) + fabs((double)zr[y]);
        for (int64_t k = 0; k < K; k++) {
            double p = exp((double)zr[k] - lse);
            mag[r * K + k] = fabs((double)scale) *
                             (p * (1.0 + fabs((double)zr[k]) + fabs(lse)) + (k == y ? 1.0 : 0.0));
        }
    }
    return TRANSCENDENTAL_RTOL * rows + DOUBLE_SUM_RTOL(B * K) * terms;
}

// Σ loss over rows of z (B, K) against labels (B): with the gradient dz (NaN before) and the
// count of correct argmaxes, with neither, and with z == dz; row 1 ties across K (argmax: first)
static void loss_case(struct harness *h, enum loss_kind kind, float lo, float hi)
{
    static const int64_t bk[][2] = {{1, 1}, {1, 3}, {3, 17}, {17, 10}, {127, 33}, {1000, 3},
                                    {33, 1000}};
    static const char *const variants[] = {"gradient and count", "neither", "z == dz"};
    const loss_fn ref = kind == LOSS_MSE ? fnet_reference_backend.mse
                                         : fnet_reference_backend.softmax_ce;
    const loss_fn f = kind == LOSS_MSE ? h->be->mse : h->be->softmax_ce;
    for (size_t s = 0; s < sizeof(bk) / sizeof(bk[0]); s++)
        for (int v = 0; v < 3; v++) {
            int64_t B = bk[s][0], K = bk[s][1];
            float scale = 1.0f / (float)B;
            set_shape(h, "B %lld, K %lld, scale %g, %s", (long long)B, (long long)K,
                      (double)scale, variants[v]);
            float *zv = host_floats(B * K);
            fnet_test_fill_uniform(zv, B * K, lo, hi, 500 + s);
            for (int64_t k = 0; B > 1 && k < K; k++)
                zv[K + k] = 0.5f;
            struct vec z = vec_from(h, zv, B * K);
            free(zv);
            int32_t *labels = xmalloc((size_t)B * sizeof(int32_t));
            uint64_t rng = 510 + s;
            for (int64_t r = 0; r < B; r++)
                labels[r] = (int32_t)(next_u64(&rng) % (uint64_t)K);
            int32_t *dlabels = dev_copy_of(h, labels, (size_t)B * sizeof(int32_t));
            // exact on the other backends; on the GPU from z before the oracle overwrites it
            double *mag = host_doubles(B * K), tol = 0.0;
            if (h->gpu)
                tol = loss_tolerance(kind, B, K, z.host, labels, scale, mag);
            const bool dz_exact = !h->gpu || kind == LOSS_MSE;
            struct vec dz = v == 0 ? vec_filled(h, B * K, NAN) : z;
            int64_t want_correct = -1, got_correct = -1;
            double want = ref(h->ref, B, K, z.host, labels, scale, v == 1 ? NULL : dz.host,
                              v == 1 ? NULL : &want_correct);
            double got = f(h->ctx, B, K, z.dev, dlabels, scale, v == 1 ? NULL : dz.dev,
                           v == 1 ? NULL : &got_correct);
            check_scalar(h, "the loss", got, want, tol);
            check_int(h, "the correct count", got_correct, want_correct);
            if (v == 2 && !dz_exact)
                vec_check_close(h, "z == dz", &z, mag, TRANSCENDENTAL_RTOL);
            else
                vec_check(h, v == 2 ? "z == dz" : "z (input)", &z);
            if (v == 0) {
                if (dz_exact)
                    vec_check(h, "dz", &dz);
                else
                    vec_check_close(h, "dz", &dz, mag, TRANSCENDENTAL_RTOL);
                vec_free(h, &dz);
            }
            free(mag);
            dev_free(h, dlabels);
            free(labels);
            vec_free(h, &z);
        }
}

static void case_softmax_ce(struct harness *h)
{
    loss_case(h, LOSS_SOFTMAX_CE, -8.0f, 8.0f);
}

static void case_mse(struct harness *h)
{
    loss_case(h, LOSS_MSE, -1.0f, 2.0f);
}

// l1·Σ|w| + ½·l2·Σw² over w (n), exact zeros every 7th; g += l1·sign(w) + l2·w
static void case_regularize(struct harness *h)
{
    static const float l12[][2] = {{1e-3f, 1e-4f}, {0.0f, 0.1f}, {0.05f, 0.0f}};
    for (size_t s = 0; s < n_sizes(h); s++)
        for (size_t k = 0; k < 3; k++) {
            int64_t n = sizes[s];
            set_shape(h, "n %lld, l1 %g, l2 %g", (long long)n, (double)l12[k][0],
                      (double)l12[k][1]);
            struct vec w = vec_random_zeros(h, n, -1.0f, 1.0f, 520 + s, 3, 7);
            struct vec g = vec_random(h, n, -1.0f, 1.0f, 530 + s);
            double want = fnet_reference_backend.regularize(h->ref, n, w.host, g.host,
                                                            l12[k][0], l12[k][1]);
            double got = h->be->regularize(h->ctx, n, w.dev, g.dev, l12[k][0], l12[k][1]);
            // every term is >= 0: the sum of their magnitudes is the penalty itself
            check_scalar(h, "the penalty", got, want, h->gpu ? DOUBLE_SUM_RTOL(n) * want : 0.0);
            vec_check(h, "g", &g);
            vec_check(h, "w (input)", &w);
            vec_free(h, &g);
            vec_free(h, &w);
        }
}

// x (B, d) = scale · src (N, d uint8, backend) rows idx[0..B) (host): rows repeated, out of
// order, the first and the last
static void case_u8_to_float(struct harness *h)
{
    enum { N_ROWS = 41 };
    static const int64_t ds[] = {1, 3, 17, 784};
    static const int64_t bs[] = {1, 7, 64};
    static const float scales[] = {1.0f / 255.0f, 1.0f};
    for (size_t di = 0; di < 4; di++)
        for (size_t bi = 0; bi < 3; bi++) {
            int64_t d = ds[di], B = bs[bi];
            float scale = scales[(di + bi) % 2];
            uint8_t *src = random_bytes((size_t)(N_ROWS * d), 600 + di);
            int64_t *idx = xmalloc((size_t)B * sizeof(int64_t));
            uint64_t rng = 610 + bi;
            for (int64_t r = 0; r < B; r++)
                idx[r] = (int64_t)(next_u64(&rng) % N_ROWS);
            idx[B - 1] = N_ROWS - 1; // the last row
            if (B >= 7) {
                idx[0] = 0;
                idx[1] = 17, idx[2] = 5, idx[3] = 17; // out of order, repeated
            }
            set_shape(h, "B %lld of %d rows, d %lld, scale %g", (long long)B, N_ROWS,
                      (long long)d, (double)scale);
            uint8_t *dsrc = dev_copy_of(h, src, (size_t)(N_ROWS * d));
            struct vec x = vec_filled(h, B * d, NAN);
            fnet_reference_backend.u8_to_float(h->ref, B, d, src, idx, scale, x.host);
            h->be->u8_to_float(h->ctx, B, d, dsrc, idx, scale, x.dev);
            vec_check(h, "x", &x);
            check_dev_bytes(h, "src (input)", dsrc, src, (size_t)(N_ROWS * d));
            vec_free(h, &x);
            dev_free(h, dsrc);
            free(idx);
            free(src);
        }
}

// every x (n) finite: true for random x (and n = 0); false with NaN, Inf or -Inf first, in the
// middle or last
static void case_all_finite(struct harness *h)
{
    static const float specials[] = {NAN, INFINITY, -INFINITY};
    for (size_t s = 0; s <= n_sizes(h); s++) {
        int64_t n = s < n_sizes(h) ? sizes[s] : 0;
        set_shape(h, "n %lld, finite", (long long)n);
        struct vec x = vec_random(h, n, -1e30f, 1e30f, 700 + s);
        bool want = fnet_reference_backend.all_finite(h->ref, n, x.host);
        check_int(h, "the reference's answer", want, true);
        check_int(h, "the answer", h->be->all_finite(h->ctx, n, x.dev), want);
        const int64_t at[] = {0, n / 2, n - 1};
        for (int p = 0; n > 0 && p < 3; p++)
            for (int k = 0; k < 3; k++) {
                float keep = x.host[at[p]];
                vec_set(h, &x, at[p], specials[k]);
                set_shape(h, "n %lld, %g at [%lld]", (long long)n, (double)specials[k],
                          (long long)at[p]);
                want = fnet_reference_backend.all_finite(h->ref, n, x.host);
                check_int(h, "the reference's answer", want, false);
                check_int(h, "the answer", h->be->all_finite(h->ctx, n, x.dev), want);
                vec_set(h, &x, at[p], keep);
            }
        vec_check(h, "x (input)", &x);
        vec_free(h, &x);
    }
}

// ---- fused optimizer steps ----

// Realistic hyper-parameters at step 3, with a nonzero weight decay
static struct fnet_step_args step_args(void)
{
    struct fnet_step_args a = {.lr = 0.01f, .momentum = 0.9f, .beta1 = 0.9f, .beta2 = 0.999f,
                               .eps = 1e-8f, .rho = 0.99f, .weight_decay = 5e-4f};
    a.bc1 = (float)(1.0 - pow(0.9, 3));
    a.bc2 = (float)(1.0 - pow(0.999, 3));
    return a;
}

// The operands of one step over n: w, g, and two state vectors (s1 signed, s2 >= 0).
struct step_vecs {
    struct vec w, g, s1, s2;
};

static struct step_vecs step_vecs(struct harness *h, int64_t n, uint64_t seed)
{
    return (struct step_vecs){
        vec_random(h, n, -1.0f, 1.0f, seed), vec_random(h, n, -0.5f, 0.5f, seed + 1),
        vec_random(h, n, -0.1f, 0.1f, seed + 2), vec_random(h, n, 0.0f, 0.01f, seed + 3)};
}

static void step_check_free(struct harness *h, struct step_vecs *v, const char *s1,
                            const char *s2)
{
    vec_check(h, "w", &v->w);
    vec_check(h, "g (input)", &v->g);
    vec_check(h, s1, &v->s1);
    vec_check(h, s2, &v->s2);
    vec_free(h, &v->s2);
    vec_free(h, &v->s1);
    vec_free(h, &v->g);
    vec_free(h, &v->w);
}

// w (n) -= lr·(g + wd·w)
static void case_sgd_step(struct harness *h)
{
    struct fnet_step_args a = step_args();
    for (size_t s = 0; s < n_sizes(h); s++) {
        set_shape(h, "n %lld, lr %g, weight_decay %g", (long long)sizes[s], (double)a.lr,
                  (double)a.weight_decay);
        struct step_vecs v = step_vecs(h, sizes[s], 800 + 10 * s);
        fnet_reference_backend.sgd_step(h->ref, sizes[s], v.w.host, v.g.host, &a);
        h->be->sgd_step(h->ctx, sizes[s], v.w.dev, v.g.dev, &a);
        step_check_free(h, &v, "(unused)", "(unused)");
    }
}

// w, v (n) after one momentum step, plain and Nesterov
static void case_momentum_step(struct harness *h)
{
    struct fnet_step_args a = step_args();
    for (size_t s = 0; s < n_sizes(h); s++)
        for (int nesterov = 0; nesterov < 2; nesterov++) {
            set_shape(h, "n %lld, %s, lr %g, momentum %g, weight_decay %g", (long long)sizes[s],
                      nesterov ? "Nesterov" : "plain", (double)a.lr, (double)a.momentum,
                      (double)a.weight_decay);
            struct step_vecs v = step_vecs(h, sizes[s], 810 + 10 * s);
            fnet_reference_backend.momentum_step(h->ref, sizes[s], v.w.host, v.g.host, v.s1.host,
                                                 &a, nesterov);
            h->be->momentum_step(h->ctx, sizes[s], v.w.dev, v.g.dev, v.s1.dev, &a, nesterov);
            step_check_free(h, &v, "v", "(unused)");
        }
}

// w, s (n) after one RMSprop step
static void case_rmsprop_step(struct harness *h)
{
    struct fnet_step_args a = step_args();
    for (size_t s = 0; s < n_sizes(h); s++) {
        set_shape(h, "n %lld, lr %g, rho %g, eps %g, weight_decay %g", (long long)sizes[s],
                  (double)a.lr, (double)a.rho, (double)a.eps, (double)a.weight_decay);
        struct step_vecs v = step_vecs(h, sizes[s], 820 + 10 * s);
        fnet_reference_backend.rmsprop_step(h->ref, sizes[s], v.w.host, v.g.host, v.s2.host, &a);
        h->be->rmsprop_step(h->ctx, sizes[s], v.w.dev, v.g.dev, v.s2.dev, &a);
        step_check_free(h, &v, "(unused)", "s");
    }
}

// w, m, v (n) after one Adam step (step 3: bias corrections bc1, bc2)
static void case_adam_step(struct harness *h)
{
    struct fnet_step_args a = step_args();
    for (size_t s = 0; s < n_sizes(h); s++) {
        set_shape(h, "n %lld, lr %g, betas %g %g, eps %g, bc1 %g, bc2 %g, weight_decay %g",
                  (long long)sizes[s], (double)a.lr, (double)a.beta1, (double)a.beta2,
                  (double)a.eps, (double)a.bc1, (double)a.bc2, (double)a.weight_decay);
        struct step_vecs v = step_vecs(h, sizes[s], 830 + 10 * s);
        fnet_reference_backend.adam_step(h->ref, sizes[s], v.w.host, v.g.host, v.s1.host,
                                         v.s2.host, &a);
        h->be->adam_step(h->ctx, sizes[s], v.w.dev, v.g.dev, v.s1.dev, v.s2.dev, &a);
        step_check_free(h, &v, "m", "v");
    }
}

// ---- a replayed training step's ops ----

// u8_gather: u8_to_float with its rows in backend memory, against the reference's u8_to_float
static void case_u8_gather(struct harness *h)
{
    enum { N_ROWS = 41 };
    static const int64_t ds[] = {1, 17, 784};
    static const int64_t bs[] = {1, 9, 64};
    for (size_t di = 0; di < 3; di++)
        for (size_t bi = 0; bi < 3; bi++) {
            int64_t d = ds[di], B = bs[bi];
            uint8_t *src = random_bytes((size_t)(N_ROWS * d), 640 + di);
            int64_t *rows = xmalloc((size_t)B * sizeof(int64_t));
            uint64_t rng = 650 + bi;
            for (int64_t r = 0; r < B; r++)
                rows[r] = (int64_t)(next_u64(&rng) % N_ROWS);
            rows[B - 1] = N_ROWS - 1;
            set_shape(h, "B %lld of %d rows, d %lld", (long long)B, N_ROWS, (long long)d);
            uint8_t *dsrc = dev_copy_of(h, src, (size_t)(N_ROWS * d));
            int64_t *drows = dev_copy_of(h, rows, (size_t)B * sizeof(int64_t));
            struct vec x = vec_filled(h, B * d, NAN);
            fnet_reference_backend.u8_to_float(h->ref, B, d, src, rows, 1.0f / 255.0f, x.host);
            h->be->u8_gather(h->ctx, B, d, dsrc, drows, 1.0f / 255.0f, x.dev);
            vec_check(h, "x", &x);
            check_dev_bytes(h, "rows (input)", drows, (const uint8_t *)rows,
                            (size_t)B * sizeof(int64_t));
            vec_free(h, &x);
            dev_free(h, drows);
            dev_free(h, dsrc);
            free(rows);
            free(src);
        }
}

// loss_step: the backend's own softmax_ce (mse) kept in memory: acc[0] grows by exactly the
// loss that op returns, dlogits are that op's bits; a non-finite loss records its step once
static void case_loss_step(struct harness *h)
{
    static const int64_t shapes[][2] = {{1, 10}, {37, 10}, {64, 3}, {5, 1000}};
    for (int mse = 0; mse < 2; mse++)
        for (size_t s = 0; s < 4; s++) {
            int64_t B = shapes[s][0], K = shapes[s][1];
            set_shape(h, "%s, B %lld, K %lld", mse ? "mse" : "softmax_ce", (long long)B,
                      (long long)K);
            struct vec z = vec_random(h, B * K, -6.0f, 6.0f, 660 + s);
            int32_t *labels = xmalloc((size_t)B * sizeof(int32_t));
            uint64_t rng = 670 + s;
            for (int64_t r = 0; r < B; r++)
                labels[r] = (int32_t)(next_u64(&rng) % (uint64_t)K);
            int32_t *dlabels = dev_copy_of(h, labels, (size_t)B * sizeof(int32_t));
            struct vec want_dz = vec_filled(h, B * K, NAN), dz = vec_filled(h, B * K, NAN);
            const float scale = 1.0f / (float)B;
            double want = mse ? h->be->mse(h->ctx, B, K, z.dev, dlabels, scale, want_dz.dev, NULL)
                              : h->be->softmax_ce(h->ctx, B, K, z.dev, dlabels, scale,
                                                  want_dz.dev, NULL);
            const int64_t step = 7;
            double acc[2] = {0.375, -1.0};
            int64_t *dstep = dev_copy_of(h, &step, sizeof(step));
            double *dacc = dev_copy_of(h, acc, sizeof(acc));
            h->be->loss_step(h->ctx, mse, B, K, z.dev, dlabels, scale, dz.dev, dstep, dacc);
            acc[0] += want;
            check_dev_bytes(h, "acc after a finite loss", dacc, (const uint8_t *)acc,
                            sizeof(acc));
            vec_check_same(h, "dlogits", &dz, &want_dz);
            // without dlogits, then a NaN logit: the sum goes NaN, step 7 is recorded, and a
            // later non-finite step (9) does not replace it
            h->be->loss_step(h->ctx, mse, B, K, z.dev, dlabels, scale, NULL, dstep, dacc);
            acc[0] += want;
            check_dev_bytes(h, "acc after a second loss", dacc, (const uint8_t *)acc,
                            sizeof(acc));
            vec_set(h, &z, (B - 1) * K, NAN);
            h->be->loss_step(h->ctx, mse, B, K, z.dev, dlabels, scale, NULL, dstep, dacc);
            const int64_t later = 9;
            dev_put(h, dstep, &later, sizeof(later));
            h->be->loss_step(h->ctx, mse, B, K, z.dev, dlabels, scale, NULL, dstep, dacc);
            double got[2];
            dev_get(h, got, dacc, sizeof(got));
            if (!isnan(got[0]) || got[1] != 7.0)
                fail_case(h, "acc after non-finite losses", "is {%g, %g}, want {NaN, 7}", got[0],
                          got[1]);
            dev_free(h, dacc);
            dev_free(h, dstep);
            vec_free(h, &dz);
            vec_free(h, &want_dz);
            dev_free(h, dlabels);
            free(labels);
            vec_free(h, &z);
        }
}

// step_dev: each fused step with its scalars read from backend memory equals the backend's own
// fused op bit for bit, and does nothing at all when skip[1] >= 0
static void case_step_dev(struct harness *h)
{
    static const int kinds[] = {FNET_OP_SGD_STEP, FNET_OP_MOMENTUM_STEP, FNET_OP_MOMENTUM_STEP,
                                FNET_OP_RMSPROP_STEP, FNET_OP_ADAM_STEP};
    struct fnet_step_args a = step_args();
    for (size_t s = 0; s < n_sizes(h); s++)
        for (int k = 0; k < 5; k++) {
            int64_t n = sizes[s];
            bool nesterov = k == 2;
            set_shape(h, "n %lld, %s%s", (long long)n,
                      fnet_backend_op_info((enum fnet_op)kinds[k])->name,
                      nesterov ? " (Nesterov)" : "");
            struct step_vecs v = step_vecs(h, n, 860 + 10 * s);
            struct step_vecs want = step_vecs(h, n, 860 + 10 * s);
            struct fnet_step_args *da = dev_copy_of(h, &a, sizeof(a));
            double skip[2] = {0.0, -1.0};
            double *dskip = dev_copy_of(h, skip, sizeof(skip));
            switch (kinds[k]) {
            case FNET_OP_SGD_STEP: h->be->sgd_step(h->ctx, n, want.w.dev, want.g.dev, &a); break;
            case FNET_OP_MOMENTUM_STEP:
                h->be->momentum_step(h->ctx, n, want.w.dev, want.g.dev, want.s1.dev, &a,
                                     nesterov);
                break;
            case FNET_OP_RMSPROP_STEP:
                h->be->rmsprop_step(h->ctx, n, want.w.dev, want.g.dev, want.s1.dev, &a);
                break;
            default:
                h->be->adam_step(h->ctx, n, want.w.dev, want.g.dev, want.s1.dev, want.s2.dev, &a);
            }
            h->be->step_dev(h->ctx, kinds[k], nesterov, n, v.w.dev, v.g.dev, v.s1.dev, v.s2.dev,
                            da, dskip);
            vec_check_same(h, "w", &v.w, &want.w);
            vec_check_same(h, "s1", &v.s1, &want.s1);
            vec_check_same(h, "s2", &v.s2, &want.s2);
            // skipped: nothing moves (skip[1] = 3, a step that saw a non-finite loss)
            skip[1] = 3.0;
            dev_put(h, dskip, skip, sizeof(skip));
            h->be->step_dev(h->ctx, kinds[k], nesterov, n, v.w.dev, v.g.dev, v.s1.dev, v.s2.dev,
                            da, dskip);
            vec_check_same(h, "w (skipped)", &v.w, &want.w);
            vec_check_same(h, "s1 (skipped)", &v.s1, &want.s1);
            vec_check_same(h, "s2 (skipped)", &v.s2, &want.s2);
            dev_free(h, dskip);
            dev_free(h, da);
            struct step_vecs *both[] = {&want, &v};
            for (int b = 0; b < 2; b++) {
                vec_free(h, &both[b]->s2);
                vec_free(h, &both[b]->s1);
                vec_free(h, &both[b]->g);
                vec_free(h, &both[b]->w);
            }
        }
}

// graph_make records without running; each graph_run runs the recorded ops again on what the
// memory holds then: x = 1, y += 2·x, twice, is y + 4
struct graph_job {
    struct harness *h;
    int64_t n;
    float *x, *y;
};

static void graph_job_run(void *arg)
{
    struct graph_job *j = arg;
    j->h->be->fill(j->h->ctx, j->n, 1.0f, j->x);
    j->h->be->axpy(j->h->ctx, j->n, 2.0f, j->x, j->y);
}

static void case_graph(struct harness *h)
{
    for (size_t s = 0; s < n_sizes(h); s++) {
        int64_t n = sizes[s];
        set_shape(h, "n %lld: fill, axpy", (long long)n);
        struct vec x = vec_filled(h, n, NAN), y = vec_random(h, n, -1.0f, 1.0f, 880 + s);
        struct graph_job j = {h, n, x.dev, y.dev};
        void *graph = NULL;
        fnet_status st = h->be->graph_make(h->ctx, graph_job_run, &j, &graph);
        if (st != FNET_OK || graph == NULL)
            fail_case(h, "graph_make", "failed (%s): %s", fnet_status_str(st),
                      fnet_ctx_last_message(h->ctx));
        vec_check(h, "y after graph_make (nothing ran)", &y);
        for (int run = 0; run < 2; run++) {
            h->be->graph_run(h->ctx, graph);
            count_call(h, FNET_OP_GRAPH_RUN);
        }
        h->be->graph_free(h->ctx, graph);
        count_call(h, FNET_OP_GRAPH_FREE);
        for (int64_t i = 0; i < n; i++) {
            x.host[i] = 1.0f;
            y.host[i] = (y.host[i] + 2.0f) + 2.0f;
        }
        vec_check(h, "x after two runs", &x);
        vec_check(h, "y after two runs", &y);
        vec_free(h, &y);
        vec_free(h, &x);
    }
}

// ---- parallel parts ----

// Floats each part writes with the backend's ops: past 2·32768, so an op inside a part that
// split over the pool the parts already occupy would show (or hang).
#define PART_N SPLIT_N

struct part_slot {
    pthread_mutex_t lock; // one per part: a part run twice at once still counts right
    int calls;
};

struct parts_job {
    struct harness *h;
    float *buf; // backend memory, PART_N floats per part
    atomic_int bad_part;
    struct part_slot slot[FNET_MAX_PARTS];
};

// Part p counts itself in its own slot and writes its own PART_N floats: fill, then scal.
static void one_part(void *arg, int part)
{
    struct parts_job *j = arg;
    if (part < 0 || part >= FNET_MAX_PARTS) {
        atomic_store(&j->bad_part, part);
        return;
    }
    pthread_mutex_lock(&j->slot[part].lock);
    j->slot[part].calls++;
    pthread_mutex_unlock(&j->slot[part].lock);
    float *mine = j->buf + (int64_t)part * PART_N;
    j->h->be->fill(j->h->ctx, PART_N, (float)(part + 1), mine);
    j->h->be->scal(j->h->ctx, PART_N, 2.5f, mine);
}

// fn(arg, part) for part = 0..parts-1, each exactly once, for parts = 1, 2, 3 and the ctx's
// thread count
static void case_run_parts(struct harness *h)
{
    int threads = fnet_ctx_threads(h->ctx);
    const int counts[] = {1, 2, 3, threads};
    for (int c = 0; c < 4; c++) {
        int parts = counts[c];
        if (parts > threads || parts > FNET_MAX_PARTS)
            continue;
        set_shape(h, "%d parts on %d threads, each writing %d floats", parts, threads, PART_N);
        struct parts_job *j = xcalloc(1, sizeof(*j));
        j->h = h;
        atomic_init(&j->bad_part, 0);
        for (int p = 0; p < FNET_MAX_PARTS; p++)
            pthread_mutex_init(&j->slot[p].lock, NULL);
        j->buf = dev_alloc(h, fbytes((int64_t)parts * PART_N));
        // through the dispatcher the layers use: a backend without run_parts runs the parts
        // one after the other, which must keep the same contract
        fnet_run_parts(h->ctx, parts, one_part, j);
        check_int(h, "a part index out of range", atomic_load(&j->bad_part), 0);
        for (int p = 0; p < FNET_MAX_PARTS; p++) {
            char what[48];
            snprintf(what, sizeof(what), "the number of calls of part %d", p);
            check_int(h, what, j->slot[p].calls, p < parts ? 1 : 0);
            pthread_mutex_destroy(&j->slot[p].lock);
        }
        float *got = host_floats((int64_t)parts * PART_N), *want = host_floats(parts * PART_N);
        dev_get(h, got, j->buf, fbytes((int64_t)parts * PART_N));
        for (int64_t i = 0; i < (int64_t)parts * PART_N; i++)
            want[i] = (float)(i / PART_N + 1) * 2.5f;
        check_exact(h, "the parts' output", got, want, parts * PART_N, parts * PART_N);
        free(want);
        free(got);
        dev_free(h, j->buf);
        free(j);
    }
}

// ---- the op table: every op's case, or what exercises it instead ----

struct op_case {
    void (*run)(struct harness *h); // the conformance case, or NULL:
    const char *harness;            // how the harness exercises an op without a numeric case
    bool contract_only;             // checked against its contract, not the reference's entry
};

static const struct op_case op_cases[FNET_OP_COUNT] = {
    [FNET_OP_STATE_INIT] = {.harness = "made with every ctx of this test, which must succeed"},
    [FNET_OP_STATE_FREE] = {.harness = "freed with every ctx of this test (leaks: ASan, valgrind, "
                                       "the guarded backend's report)"},
    [FNET_OP_SET_THREADS] = {.harness = "fnet_ctx_set_threads(ctx, 3) before every case must "
                                        "return FNET_OK; the split cases run on those threads"},
    [FNET_OP_SYNCHRONIZE] = {.harness = "called after every case, must return FNET_OK"},
    [FNET_OP_SET_TF32] = {.run = case_set_tf32, .contract_only = true}, // the reference has none
    [FNET_OP_ALLOC] = {.harness = "every backend buffer of the cases (never NULL)"},
    [FNET_OP_FREE] = {.harness = "every backend buffer of the cases: none live after a case"},
    [FNET_OP_UPLOAD] = {.run = case_upload_download},
    [FNET_OP_DOWNLOAD] = {.run = case_upload_download},
    [FNET_OP_COPY] = {.run = case_copy},
    [FNET_OP_FILL] = {.run = case_fill},
    [FNET_OP_SGEMM] = {.run = case_sgemm},
    [FNET_OP_SGEMM_BATCHED] = {.run = case_sgemm_batched},
    [FNET_OP_AXPY] = {.run = case_axpy},
    [FNET_OP_SCAL] = {.run = case_scal},
    [FNET_OP_DOT] = {.run = case_dot},
    [FNET_OP_AXPBY] = {.run = case_axpby},
    [FNET_OP_AMAX] = {.run = case_amax},
    [FNET_OP_PERMUTE_021] = {.run = case_permute_021},
    [FNET_OP_TRANSPOSE] = {.run = case_transpose},
    [FNET_OP_BIAS_FILL] = {.run = case_bias_fill},
    [FNET_OP_BIAS_ADD] = {.run = case_bias_add},
    [FNET_OP_BIAS_GRAD] = {.run = case_bias_grad},
    [FNET_OP_ACT_FORWARD] = {.run = case_act_forward},
    [FNET_OP_ACT_BACKWARD] = {.run = case_act_backward},
    [FNET_OP_MUL] = {.run = case_mul},
    [FNET_OP_DROPOUT_MASK] = {.run = case_dropout_mask},
    [FNET_OP_FFT_PLAN] = {.harness = "a plan for every shape of the rfft and irfft cases (must "
                                     "succeed), and with each of its allocations failing in turn "
                                     "(FNET_ERR_OUT_OF_MEMORY, no plan)"},
    [FNET_OP_FFT_PLAN_FREE] = {.harness = "frees every plan of the rfft and irfft cases, and NULL"},
    [FNET_OP_RFFT] = {.run = case_rfft},
    [FNET_OP_IRFFT] = {.run = case_irfft},
    [FNET_OP_CMAC] = {.run = case_cmac},
    [FNET_OP_CSR_SPMM] = {.run = case_csr_spmm},
    [FNET_OP_CSR_SPMM_T] = {.run = case_csr_spmm_t},
    [FNET_OP_CSR_SDDMM] = {.run = case_csr_sddmm},
    [FNET_OP_SOFTMAX_CE] = {.run = case_softmax_ce},
    [FNET_OP_MSE] = {.run = case_mse},
    [FNET_OP_REGULARIZE] = {.run = case_regularize},
    [FNET_OP_U8_TO_FLOAT] = {.run = case_u8_to_float},
    [FNET_OP_ALL_FINITE] = {.run = case_all_finite},
    [FNET_OP_SGD_STEP] = {.run = case_sgd_step},
    [FNET_OP_MOMENTUM_STEP] = {.run = case_momentum_step},
    [FNET_OP_RMSPROP_STEP] = {.run = case_rmsprop_step},
    [FNET_OP_ADAM_STEP] = {.run = case_adam_step},
    [FNET_OP_U8_GATHER] = {.run = case_u8_gather},
    [FNET_OP_LOSS_STEP] = {.run = case_loss_step, .contract_only = true},
    [FNET_OP_STEP_DEV] = {.run = case_step_dev, .contract_only = true},
    [FNET_OP_GRAPH_MAKE] = {.run = case_graph, .contract_only = true},
    [FNET_OP_GRAPH_RUN] = {.harness = "graph_make's case runs each graph twice"},
    [FNET_OP_GRAPH_FREE] = {.harness = "graph_make's case frees each graph"},
    [FNET_OP_DIST_ID] = {.harness = "collectives need a job of several ranks: tests/dist (mpi)"},
    [FNET_OP_DIST_INIT] = {.harness = "collectives need a job of several ranks: tests/dist (mpi)"},
    [FNET_OP_DIST_ALLREDUCE] = {.harness = "collectives need a job of several ranks: tests/dist "
                                           "(mpi)"},
    [FNET_OP_DIST_WAIT] = {.harness = "collectives need a job of several ranks: tests/dist (mpi)"},
    [FNET_OP_DIST_FREE] = {.harness = "collectives need a job of several ranks: tests/dist (mpi)"},
    [FNET_OP_RUN_PARTS] = {.run = case_run_parts, .contract_only = true},
};

// Whether be's entry for op is the reference table's own function (NULL in both included). A
// switch, so an op added to the enum without a line here fails the build (-Wswitch).
static bool is_reference_own(const struct fnet_backend_ops *be, enum fnet_op op)
{
    const struct fnet_backend_ops *r = &fnet_reference_backend;
    switch (op) {
    case FNET_OP_STATE_INIT: return be->state_init == r->state_init;
    case FNET_OP_STATE_FREE: return be->state_free == r->state_free;
    case FNET_OP_SET_THREADS: return be->set_threads == r->set_threads;
    case FNET_OP_SYNCHRONIZE: return be->synchronize == r->synchronize;
    case FNET_OP_SET_TF32: return be->set_tf32 == r->set_tf32;
    case FNET_OP_ALLOC: return be->alloc == r->alloc;
    case FNET_OP_FREE: return be->free == r->free;
    case FNET_OP_UPLOAD: return be->upload == r->upload;
    case FNET_OP_DOWNLOAD: return be->download == r->download;
    case FNET_OP_COPY: return be->copy == r->copy;
    case FNET_OP_FILL: return be->fill == r->fill;
    case FNET_OP_SGEMM: return be->sgemm == r->sgemm;
    case FNET_OP_SGEMM_BATCHED: return be->sgemm_batched == r->sgemm_batched;
    case FNET_OP_AXPY: return be->axpy == r->axpy;
    case FNET_OP_SCAL: return be->scal == r->scal;
    case FNET_OP_DOT: return be->dot == r->dot;
    case FNET_OP_AXPBY: return be->axpby == r->axpby;
    case FNET_OP_AMAX: return be->amax == r->amax;
    case FNET_OP_PERMUTE_021: return be->permute_021 == r->permute_021;
    case FNET_OP_TRANSPOSE: return be->transpose == r->transpose;
    case FNET_OP_BIAS_FILL: return be->bias_fill == r->bias_fill;
    case FNET_OP_BIAS_ADD: return be->bias_add == r->bias_add;
    case FNET_OP_BIAS_GRAD: return be->bias_grad == r->bias_grad;
    case FNET_OP_ACT_FORWARD: return be->act_forward == r->act_forward;
    case FNET_OP_ACT_BACKWARD: return be->act_backward == r->act_backward;
    case FNET_OP_MUL: return be->mul == r->mul;
    case FNET_OP_DROPOUT_MASK: return be->dropout_mask == r->dropout_mask;
    case FNET_OP_FFT_PLAN: return be->fft_plan == r->fft_plan;
    case FNET_OP_FFT_PLAN_FREE: return be->fft_plan_free == r->fft_plan_free;
    case FNET_OP_RFFT: return be->rfft == r->rfft;
    case FNET_OP_IRFFT: return be->irfft == r->irfft;
    case FNET_OP_CMAC: return be->cmac == r->cmac;
    case FNET_OP_CSR_SPMM: return be->csr_spmm == r->csr_spmm;
    case FNET_OP_CSR_SPMM_T: return be->csr_spmm_t == r->csr_spmm_t;
    case FNET_OP_CSR_SDDMM: return be->csr_sddmm == r->csr_sddmm;
    case FNET_OP_SOFTMAX_CE: return be->softmax_ce == r->softmax_ce;
    case FNET_OP_MSE: return be->mse == r->mse;
    case FNET_OP_REGULARIZE: return be->regularize == r->regularize;
    case FNET_OP_U8_TO_FLOAT: return be->u8_to_float == r->u8_to_float;
    case FNET_OP_ALL_FINITE: return be->all_finite == r->all_finite;
    case FNET_OP_SGD_STEP: return be->sgd_step == r->sgd_step;
    case FNET_OP_MOMENTUM_STEP: return be->momentum_step == r->momentum_step;
    case FNET_OP_RMSPROP_STEP: return be->rmsprop_step == r->rmsprop_step;
    case FNET_OP_ADAM_STEP: return be->adam_step == r->adam_step;
    case FNET_OP_U8_GATHER: return be->u8_gather == r->u8_gather;
    case FNET_OP_LOSS_STEP: return be->loss_step == r->loss_step;
    case FNET_OP_STEP_DEV: return be->step_dev == r->step_dev;
    case FNET_OP_GRAPH_MAKE: return be->graph_make == r->graph_make;
    case FNET_OP_GRAPH_RUN: return be->graph_run == r->graph_run;
    case FNET_OP_GRAPH_FREE: return be->graph_free == r->graph_free;
    case FNET_OP_DIST_ID: return be->dist_id == r->dist_id;
    case FNET_OP_DIST_INIT: return be->dist_init == r->dist_init;
    case FNET_OP_DIST_ALLREDUCE: return be->dist_allreduce == r->dist_allreduce;
    case FNET_OP_DIST_WAIT: return be->dist_wait == r->dist_wait;
    case FNET_OP_DIST_FREE: return be->dist_free == r->dist_free;
    case FNET_OP_RUN_PARTS: return be->run_parts == r->run_parts;
    case FNET_OP_COUNT: break;
    }
    return false;
}

static const char *provenance(bool reference_own)
{
    return reference_own ? "reference's own" : "own";
}

// ---- the tests ----

static void test_every_op_has_a_case_or_a_reason(void **state)
{
    (void)state;
    for (int op = 0; op < FNET_OP_COUNT; op++) {
        const struct fnet_op_info *info = fnet_backend_op_info((enum fnet_op)op);
        assert_non_null(info);
        assert_non_null(info->name);
        const struct op_case *c = &op_cases[op];
        if ((c->run == NULL) == (c->harness == NULL)) {
            print_error("op %d (%s) needs exactly one of a conformance case and a reason it has "
                        "none in op_cases[] of %s\n", op, info->name, __FILE__);
            fail();
        }
    }
    assert_null(fnet_backend_op_info(FNET_OP_COUNT));
}

// The reference is the oracle: it has every op a case compares with. The cpu backend has all but
// the GPU's TF32 switch, graphs (a recorded step is run by calling it again) and device
// collectives (MPI reduces its memory in place).
static void test_reference_and_cpu_have_every_op(void **state)
{
    (void)state;
    for (int op = 0; op < FNET_OP_COUNT; op++) {
        const char *name = fnet_backend_op_info((enum fnet_op)op)->name;
        bool gpu_only = op == FNET_OP_SET_TF32 || op == FNET_OP_GRAPH_MAKE ||
                        op == FNET_OP_GRAPH_RUN || op == FNET_OP_GRAPH_FREE ||
                        (op >= FNET_OP_DIST_ID && op <= FNET_OP_DIST_FREE);
        if (!fnet_backend_has(&fnet_cpu_backend, (enum fnet_op)op) && !gpu_only)
            fail_msg("the cpu backend has no %s", name);
        bool oracle = op_cases[op].run != NULL && !op_cases[op].contract_only;
        if (oracle && !fnet_backend_has(&fnet_reference_backend, (enum fnet_op)op))
            fail_msg("the reference backend has no %s, which the cases use as the oracle", name);
        if (fnet_backend_op_info((enum fnet_op)op)->required)
            assert_true(fnet_backend_has(&fnet_reference_backend, (enum fnet_op)op));
    }
    assert_non_null(fnet_reference_backend.host_la);
    assert_ptr_equal(fnet_reference_backend.host_la, &fnet_ref_host_la);
}

struct test_cell {
    size_t backend;
    enum fnet_op op;
};

static int setup_harness(void **state)
{
    const struct test_cell *cell = *state;
    struct harness *h = xcalloc(1, sizeof(*h));
    h->backend = cell->backend;
    h->op = cell->op;
    h->ctx = backends[h->backend].make();
    h->be = h->ctx->be;
    h->gpu = fnet_ctx_backend(h->ctx) == FNET_BACKEND_CUDA;
    if (fnet_backend_has(h->be, FNET_OP_STATE_INIT))
        count_call(h, FNET_OP_STATE_INIT);
    fnet_assert_ok(h->ctx, fnet_ctx_set_threads(h->ctx, TEST_THREADS));
    assert_int_equal(fnet_ctx_threads(h->ctx), TEST_THREADS);
    if (fnet_backend_has(h->be, FNET_OP_SET_THREADS))
        count_call(h, FNET_OP_SET_THREADS);
    fnet_assert_ok(NULL, fnet_ctx_create_reference(&h->ref));
    h->opname = fnet_backend_op_info(h->op)->name;
    *state = h;
    return 0;
}

// Frees what a failed case left live, then the ctxs.
static int teardown_harness(void **state)
{
    struct harness *h = *state;
    while (h->n_live > 0)
        dev_free(h, h->live[h->n_live - 1]);
    fnet_ctx_free(h->ref);
    if (fnet_backend_has(h->be, FNET_OP_STATE_FREE))
        count_call(h, FNET_OP_STATE_FREE);
    fnet_ctx_free(h->ctx);
    free(h);
    return 0;
}

// One op of one backend against the reference. A missing op must not be required; only
// run_parts has a fallback its callers use (fnet_run_parts runs the parts in turn), which is
// checked in its place; any other missing op is reported and has nothing to run.
static void test_op_conforms(void **state)
{
    struct harness *h = *state;
    const struct fnet_op_info *info = fnet_backend_op_info(h->op);
    if (!fnet_backend_has(h->be, h->op)) {
        if (info->required)
            fail_msg("%s: %s is missing, and every backend must have it", h->be->name,
                     info->name);
        if (h->op != FNET_OP_RUN_PARTS) {
            print_message("%s: %s absent (not required): nothing to run\n", h->be->name,
                          info->name);
            return;
        }
        print_message("%s: %s absent: the parts run in turn (fnet_run_parts)\n", h->be->name,
                      info->name);
    }
    set_shape(h, "-");
    op_cases[h->op].run(h);
    set_shape(h, "after the case");
    check_int(h, "synchronize", h->be->synchronize(h->ctx), FNET_OK);
    count_call(h, FNET_OP_SYNCHRONIZE);
    check_int(h, "backend buffers still live", h->n_live, 0);
    print_message("%s: %s (%s) ok\n", h->be->name, info->name,
                  fnet_backend_has(h->be, h->op) ? provenance(is_reference_own(h->be, h->op))
                                                 : "the callers' fallback");
}

// ---- host linear algebra (host memory): against fnet_ref_host_la ----

static void check_bound(const struct harness *h, const char *what, double value, double bound)
{
    if (!(value <= bound))
        fail_case(h, what, "is %.3g, over %.3g", value, bound);
}

static const int64_t la_shapes[][2] = {{1, 1}, {1, 17}, {17, 1}, {33, 17}, {17, 33}, {64, 64},
                                       {127, 3}};
#define N_LA_SHAPES (sizeof(la_shapes) / sizeof(la_shapes[0]))

// Thin SVD of A (m, n): A unchanged, S >= 0 descending and equal to the reference's, U·S·Vt ≈ A,
// orthonormal U columns and Vt rows
static void check_gesvd(struct harness *h, int64_t m, int64_t n, uint64_t seed)
{
    const struct fnet_host_la *la = h->be->host_la;
    int64_t k = m < n ? m : n;
    set_shape(h, "m %lld, n %lld", (long long)m, (long long)n);
    float *A = host_floats(m * n), *copy = host_floats(m * n);
    fnet_test_fill_uniform(A, m * n, -1.0f, 1.0f, seed);
    memcpy(copy, A, (size_t)(m * n) * sizeof(float));
    float *U = host_floats(m * k), *S = host_floats(k), *Vt = host_floats(k * n);
    float *rU = host_floats(m * k), *rS = host_floats(k), *rVt = host_floats(k * n);
    fnet_status st = la->gesvd(h->ctx, m, n, A, U, S, Vt);
    if (st != FNET_OK)
        fail_case(h, "status", "%s: %s", fnet_status_str(st), fnet_ctx_last_error(h->ctx));
    fnet_assert_ok(h->ref, fnet_ref_host_la.gesvd(h->ref, m, n, A, rU, rS, rVt));
    check_exact(h, "A (input)", A, copy, m * n, m * n);
    for (int64_t i = 0; i < k; i++)
        if (!(S[i] >= 0.0f) || (i > 0 && !(S[i] <= S[i - 1])))
            fail_case(h, "S", "is not descending and >= 0 at [%lld]: %.9g after %.9g",
                      (long long)i, (double)S[i], i > 0 ? (double)S[i - 1] : 0.0);
    check_bound(h, "‖U·S·Vt − A‖_F", fnet_test_recon_error(m, n, k, U, S, Vt, A),
                RECON_RTOL * fnet_test_fro(m * n, A));
    check_bound(h, "max |UᵀU − I|", fnet_test_ortho_cols_error(m, k, U), ORTHO_ATOL);
    check_bound(h, "max |Vt·Vtᵀ − I|", fnet_test_ortho_rows_error(k, n, Vt), ORTHO_ATOL);
    check_close(h, "S against the reference's", S, rS, NULL, k, k, SVAL_RTOL,
                SVAL_ATOL * rS[0]);
    free(rVt), free(rS), free(rU), free(Vt), free(S), free(U);
    free(copy), free(A);
}

// Thin QR of A (m, n): A unchanged, R upper triangular (exact zeros below), Q·R ≈ A, QᵀQ ≈ I,
// |R| equal to the reference's (full rank: R is unique up to the signs of its rows)
static void check_qr(struct harness *h, int64_t m, int64_t n, uint64_t seed)
{
    const struct fnet_host_la *la = h->be->host_la;
    int64_t k = m < n ? m : n;
    set_shape(h, "m %lld, n %lld", (long long)m, (long long)n);
    float *A = host_floats(m * n), *copy = host_floats(m * n);
    fnet_test_fill_uniform(A, m * n, -1.0f, 1.0f, seed);
    memcpy(copy, A, (size_t)(m * n) * sizeof(float));
    float *Q = host_floats(m * k), *R = host_floats(k * n);
    float *rQ = host_floats(m * k), *rR = host_floats(k * n);
    fnet_status st = la->qr(h->ctx, m, n, A, Q, R);
    if (st != FNET_OK)
        fail_case(h, "status", "%s: %s", fnet_status_str(st), fnet_ctx_last_error(h->ctx));
    fnet_assert_ok(h->ref, fnet_ref_host_la.qr(h->ref, m, n, A, rQ, rR));
    check_exact(h, "A (input)", A, copy, m * n, m * n);
    for (int64_t a = 0; a < k; a++)
        for (int64_t j = 0; j < a; j++)
            if (R[a * n + j] != 0.0f)
                fail_case(h, "R", "is not upper triangular: R[%lld, %lld] = %.9g", (long long)a,
                          (long long)j, (double)R[a * n + j]);
    check_bound(h, "‖Q·R − A‖_F", fnet_test_recon_error(m, n, k, Q, NULL, R, A),
                RECON_RTOL * fnet_test_fro(m * n, A));
    check_bound(h, "max |QᵀQ − I|", fnet_test_ortho_cols_error(m, k, Q), ORTHO_ATOL);
    for (int64_t i = 0; i < k * n; i++) {
        R[i] = fabsf(R[i]);
        rR[i] = fabsf(rR[i]);
    }
    check_close(h, "|R| against the reference's", R, rR, NULL, k * n, k * n, RABS_RTOL,
                RABS_ATOL * fnet_test_fro(k * n, rR));
    free(rR), free(rQ), free(R), free(Q), free(copy), free(A);
}

// be->host_la: sgemm against the reference's on host memory (every transpose pair and beta,
// padded leading dimensions), gesvd and qr through their invariants
static void test_host_la_conforms(void **state)
{
    struct harness *h = *state;
    const struct fnet_host_la *la = h->be->host_la;
    assert_non_null(la);
    assert_true(la->sgemm && la->gesvd && la->qr);
    h->opname = "host_la.sgemm";
    for (size_t s = 0; s < N_SMALL_GEMM_SHAPES; s++)
        for (int tr = 0; tr < 4; tr++)
            check_gemm(h, la->sgemm, false, &gemm_shapes[s], tr, gemm_alphas[s % 3],
                       900 + 10 * s + (size_t)tr, SUM_RTOL);
    print_message("%s: host_la.sgemm (%s) ok\n", h->be->name,
                  provenance(la->sgemm == fnet_ref_host_la.sgemm));
    h->opname = "host_la.gesvd";
    for (size_t s = 0; s < N_LA_SHAPES; s++)
        check_gesvd(h, la_shapes[s][0], la_shapes[s][1], 950 + s);
    print_message("%s: host_la.gesvd (%s) ok\n", h->be->name,
                  provenance(la->gesvd == fnet_ref_host_la.gesvd));
    h->opname = "host_la.qr";
    for (size_t s = 0; s < N_LA_SHAPES; s++)
        check_qr(h, la_shapes[s][0], la_shapes[s][1], 970 + s);
    print_message("%s: host_la.qr (%s) ok\n", h->be->name,
                  provenance(la->qr == fnet_ref_host_la.qr));
    check_int(h, "backend buffers still live", h->n_live, 0);
}

// The ops without a numeric case were exercised by this backend's tests (which ran before).
static void test_harness_ops_were_exercised(void **state)
{
    struct harness *h = *state;
    for (int op = 0; op < FNET_OP_COUNT; op++) {
        const struct op_case *c = &op_cases[op];
        const struct fnet_op_info *info = fnet_backend_op_info((enum fnet_op)op);
        if (c->run != NULL)
            continue;
        if (!fnet_backend_has(h->be, (enum fnet_op)op)) {
            if (info->required)
                fail_msg("%s: %s is missing, and every backend must have it", h->be->name,
                         info->name);
            print_message("%s: %s absent (not required): skipped\n", h->be->name, info->name);
            continue;
        }
        long calls = harness_calls[h->backend][op];
        if (calls == 0)
            fail_msg("%s: %s was never called by the harness (%s)", h->be->name, info->name,
                     c->harness);
        print_message("%s: %s (%s) ok: %ld calls; %s\n", h->be->name, info->name,
                      provenance(is_reference_own(h->be, (enum fnet_op)op)), calls, c->harness);
    }
}

// One test per (backend, op), then the backend's host_la and harness ops: cmocka's runner on a
// table made at run time, so a backend or an op added to the tables gets its tests.
#define MAX_TESTS (2 + N_BACKENDS * (FNET_OP_COUNT + 2))

int main(void)
{
    // FNET_TEST_BACKEND=cuda without a device: skip now, before the cpu and guarded tests
    fnet_test_skip_without_device("FNET_TEST_BACKEND", NULL);
    static struct CMUnitTest tests[MAX_TESTS];
    static struct test_cell cells[MAX_TESTS];
    static char names[MAX_TESTS][80];
    size_t n = 0;
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_every_op_has_a_case_or_a_reason);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_reference_and_cpu_have_every_op);
    for (size_t b = 0; b < N_BACKENDS; b++)
        for (int op = 0; op <= FNET_OP_COUNT + 1; op++) {
            const char *what;
            CMUnitTestFunction fn;
            if (op < FNET_OP_COUNT) {
                if (op_cases[op].run == NULL)
                    continue;
                what = fnet_backend_op_info((enum fnet_op)op)->name;
                fn = test_op_conforms;
            } else if (op == FNET_OP_COUNT) {
                what = "host_la";
                fn = test_host_la_conforms;
            } else {
                what = "harness ops";
                fn = test_harness_ops_were_exercised;
            }
            cells[n] = (struct test_cell){b, op < FNET_OP_COUNT ? (enum fnet_op)op
                                                                : FNET_OP_SYNCHRONIZE};
            snprintf(names[n], sizeof(names[n]), "%s: %s", backends[b].label, what);
            tests[n] = (struct CMUnitTest){names[n], fn, setup_harness, teardown_harness,
                                           &cells[n]};
            n++;
        }
    return _cmocka_run_group_tests("test_backend_ops", tests, n, NULL, NULL);
}
