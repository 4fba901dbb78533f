/* The guarded test backend: the reference backend's ops on backend memory mapped PROT_NONE (whole
 * pages per allocation) except while one of its own ops runs, so host code touching it faults;
 * every op first checks that each backend argument lies inside one live allocation of the ctx and
 * each host argument outside all of them. A failed check is the caller's bug: one line to stderr,
 * then abort(), on purpose: this backend is a test instrument, not a library path. */
#define _DEFAULT_SOURCE // MAP_ANONYMOUS, which POSIX 2008 lacks
#include "cpu/ref.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

// Most backend-memory arguments of one op (adam_step: w, g, m, v).
#define MAX_ARGS 6

// One live allocation: base is page-aligned; bytes asked for, mapped rounded up to whole pages.
struct region {
    char *base;
    size_t bytes;
    size_t mapped;
};

// The backend's per-ctx state: the live allocations, sorted by base, for binary search.
struct guarded {
    struct region *r;
    size_t n, cap;
    size_t page;
    bool replaying; // inside graph_run: ops that wait for the device or read host memory stop
};

// The allocations one op opens (distinct, so aliased arguments open theirs once).
struct guard {
    struct guarded *g;
    const char *op;
    int n;
    struct region open[MAX_ARGS];
};

__attribute__((format(printf, 5, 6))) _Noreturn static void
violation(const char *op, const char *arg, const void *p, size_t bytes, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    fprintf(stderr, "fnet guarded backend: %s: %s %s (pointer %p, %zu bytes)\n", op, arg, what, p,
            bytes);
    abort();
}

// A failing mprotect/munmap on our own mappings is not the caller's bug, but nothing can go on.
_Noreturn static void system_failure(const char *op, const char *call, const void *p, int err)
{
    fprintf(stderr, "fnet guarded backend: %s: %s failed on %p: errno %d\n", op, call, p, err);
    abort();
}

// Saturating size arithmetic: an extent that overflows becomes SIZE_MAX and fails its check.
static size_t mul_sat(size_t a, size_t b)
{
    return a != 0 && b > SIZE_MAX / a ? SIZE_MAX : a * b;
}

static size_t add_sat(size_t a, size_t b)
{
    return b > SIZE_MAX - a ? SIZE_MAX : a + b;
}

static size_t count(int64_t n)
{
    return n > 0 ? (size_t)n : 0;
}

// Bytes of n elements of `size` bytes (0 for n <= 0).
static size_t elems(int64_t n, size_t size)
{
    return mul_sat(count(n), size);
}

// Bytes of n1·n2 floats.
static size_t floats2(int64_t n1, int64_t n2)
{
    return mul_sat(elems(n1, sizeof(float)), count(n2));
}

// Bytes of a row-major (rows, cols) float matrix with leading dimension ld: (rows−1)·ld + cols
// elements, 0 when it has no element.
static size_t strided(int64_t rows, int64_t cols, int64_t ld)
{
    if (rows <= 0 || cols <= 0)
        return 0;
    return mul_sat(add_sat(mul_sat(count(rows) - 1, count(ld)), count(cols)), sizeof(float));
}

// Index of the allocation with the greatest base <= p, or -1 when every base is above p.
static ptrdiff_t at_or_below(const struct guarded *g, uintptr_t p)
{
    size_t lo = 0, hi = g->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if ((uintptr_t)g->r[mid].base <= p)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (ptrdiff_t)lo - 1;
}

// The allocation whose mapped pages hold p, or NULL.
static const struct region *region_of(const struct guarded *g, const void *p)
{
    ptrdiff_t i = at_or_below(g, (uintptr_t)p);
    if (i < 0 || (uintptr_t)p - (uintptr_t)g->r[i].base >= g->r[i].mapped)
        return NULL;
    return &g->r[i];
}

// The ops a replayed step may not issue: on a GPU they wait for the device (their answer comes
// back to the host) or read host memory that the replay would read again as it was recorded.
static const char *const not_replayable[] = {"upload", "download", "dot", "amax", "softmax_ce",
                                             "mse", "regularize", "u8_to_float", "all_finite",
                                             "synchronize"};

static struct guard guard_begin(fnet_ctx *ctx, const char *op)
{
    struct guarded *g = ctx->state;
    if (g->replaying)
        for (size_t i = 0; i < sizeof(not_replayable) / sizeof(not_replayable[0]); i++)
            if (strcmp(op, not_replayable[i]) == 0)
                violation(op, "the op", NULL, 0, "is inside a replayed step (graph_run): it "
                          "waits for the device or reads host memory");
    return (struct guard){.g = g, .op = op, .n = 0};
}

static void guard_add(struct guard *gd, const struct region *r)
{
    for (int i = 0; i < gd->n; i++)
        if (gd->open[i].base == r->base)
            return;
    if (gd->n == MAX_ARGS) // a wrapper with more arguments than MAX_ARGS: our bug
        violation(gd->op, "arguments", r->base, 0, "exceed MAX_ARGS");
    gd->open[gd->n++] = *r;
}

// [start, start + bytes) must lie in r's requested bytes (not its slack to the page end).
static bool inside(const struct region *r, uintptr_t start, size_t bytes)
{
    uintptr_t base = (uintptr_t)r->base;
    return start >= base && start - base <= r->bytes && bytes <= r->bytes - (start - base);
}

static void check_inside(const struct guard *gd, const char *arg, const struct region *r,
                         const void *p, size_t bytes)
{
    if (inside(r, (uintptr_t)p, bytes))
        return;
    size_t off = (size_t)((uintptr_t)p - (uintptr_t)r->base);
    violation(gd->op, arg, p, bytes, "runs %zu bytes past the end of its %zu-byte allocation %p",
              add_sat(off, bytes) - r->bytes, r->bytes, (void *)r->base);
}

// Backend argument p covering `bytes` (0: the op touches none of it, no check): inside one live
// allocation of this ctx, which the op then opens.
static void guard_arg(struct guard *gd, const char *arg, const void *p, size_t bytes)
{
    if (bytes == 0)
        return;
    if (p == NULL)
        violation(gd->op, arg, p, bytes, "is NULL where backend memory is expected");
    const struct region *r = region_of(gd->g, p);
    if (r == NULL)
        violation(gd->op, arg, p, bytes, "is not in a live allocation of this ctx");
    check_inside(gd, arg, r, p, bytes);
    guard_add(gd, r);
}

// Host argument p covering `bytes`: it must not overlap any live allocation of this ctx (which
// would fault, or worse, not fault when the op has that allocation open).
static void guard_host(const struct guard *gd, const char *arg, const void *p, size_t bytes)
{
    if (bytes == 0 || p == NULL)
        return;
    uintptr_t start = (uintptr_t)p;
    uintptr_t last = bytes - 1 > UINTPTR_MAX - start ? UINTPTR_MAX : start + (bytes - 1);
    // allocations do not overlap, so the one with the greatest base <= last is the only candidate
    ptrdiff_t i = at_or_below(gd->g, last);
    if (i < 0)
        return;
    const struct region *r = &gd->g->r[i];
    if ((uintptr_t)r->base + (r->mapped - 1) >= start)
        violation(gd->op, arg, p, bytes,
                  "is backend memory of this ctx (allocation %p) where host memory is expected",
                  (void *)r->base);
}

static void protect_all(const struct guard *gd, int prot)
{
    for (int i = 0; i < gd->n; i++)
        if (mprotect(gd->open[i].base, gd->open[i].mapped, prot) != 0)
            system_failure(gd->op, "mprotect", gd->open[i].base, errno);
}

// Open the checked allocations for the op's duration; guard_close maps them PROT_NONE again.
static void guard_open(const struct guard *gd)
{
    protect_all(gd, PROT_READ | PROT_WRITE);
}

static void guard_close(const struct guard *gd)
{
    protect_all(gd, PROT_NONE);
}

// ---- state ----

static fnet_status guarded_state_init(fnet_ctx *ctx)
{
    struct guarded *g = fnet_calloc(1, sizeof(*g));
    if (g == NULL)
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "guarded backend state");
    g->cap = 64;
    g->r = fnet_malloc_array(g->cap, sizeof(*g->r));
    if (g->r == NULL) {
        fnet_free(g);
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "guarded backend state");
    }
    long page = sysconf(_SC_PAGESIZE);
    g->page = page > 0 ? (size_t)page : 4096;
    ctx->state = g;
    return FNET_OK;
}

// Leaks are reported, not fatal: an out-of-memory test may stop anywhere, and other backends'
// leaks are ASan's to find; the mappings go back to the system either way.
static void guarded_state_free(fnet_ctx *ctx)
{
    struct guarded *g = ctx->state;
    if (g == NULL)
        return;
    size_t leaked = 0;
    for (size_t i = 0; i < g->n; i++) {
        leaked += g->r[i].bytes;
        munmap(g->r[i].base, g->r[i].mapped);
    }
    if (g->n > 0) // the caller's leak: reported through the log, as every diagnostic
        fnet_log(FNET_LOG_WARN, "guarded backend: %zu allocation(s), %zu bytes, still live when "
                 "the ctx was freed", g->n, leaked);
    fnet_free(g->r);
    fnet_free(g);
    ctx->state = NULL;
}

static fnet_status guarded_synchronize(fnet_ctx *ctx)
{
    (void)guard_begin(ctx, "synchronize"); // refused inside a replayed step
    return FNET_OK;
}

// ---- memory ----

// Room for one more allocation in the table; false when out of memory.
static bool reserve(struct guarded *g)
{
    if (g->n < g->cap)
        return true;
    if (g->cap > SIZE_MAX / 2 / sizeof(*g->r))
        return false;
    struct region *r = fnet_malloc_array(2 * g->cap, sizeof(*r));
    if (r == NULL)
        return false;
    memcpy(r, g->r, g->n * sizeof(*r));
    fnet_free(g->r);
    g->r = r;
    g->cap *= 2;
    return true;
}

// bytes (> 0): a fresh PROT_NONE mapping of whole pages, so no two allocations share a page
static void *guarded_alloc(fnet_ctx *ctx, size_t bytes)
{
    struct guarded *g = ctx->state;
    if (fnet_alloc_fails_now())
        return NULL;
    if (bytes > SIZE_MAX - g->page)
        return NULL;
    size_t mapped = bytes == 0 ? g->page : (bytes + g->page - 1) / g->page * g->page;
    if (!reserve(g))
        return NULL;
    void *p = mmap(NULL, mapped, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    size_t at = (size_t)(at_or_below(g, (uintptr_t)p) + 1);
    memmove(&g->r[at + 1], &g->r[at], (g->n - at) * sizeof(*g->r));
    g->r[at] = (struct region){.base = p, .bytes = bytes, .mapped = mapped};
    g->n++;
    return p;
}

// p: the start of a live allocation of this ctx, or NULL
static void guarded_free(fnet_ctx *ctx, void *p)
{
    struct guarded *g = ctx->state;
    if (p == NULL)
        return;
    ptrdiff_t i = at_or_below(g, (uintptr_t)p);
    if (i < 0 || g->r[i].base != (char *)p) {
        if (region_of(g, p) != NULL)
            violation("free", "p", p, 0, "points %zu bytes into allocation %p, not at its start",
                      (size_t)((char *)p - g->r[i].base), (void *)g->r[i].base);
        violation("free", "p", p, 0, "is not a live allocation of this ctx");
    }
    if (munmap(g->r[i].base, g->r[i].mapped) != 0)
        system_failure("free", "munmap", p, errno);
    memmove(&g->r[i], &g->r[i + 1], (g->n - (size_t)i - 1) * sizeof(*g->r));
    g->n--;
}

// dst (bytes, backend) = src (bytes, host)
static void guarded_upload(fnet_ctx *ctx, void *dst, const void *src, size_t bytes)
{
    struct guard gd = guard_begin(ctx, "upload");
    guard_host(&gd, "src", src, bytes);
    guard_arg(&gd, "dst", dst, bytes);
    guard_open(&gd);
    fnet_ref_memcpy(ctx, dst, src, bytes);
    guard_close(&gd);
}

// dst (bytes, host) = src (bytes, backend)
static void guarded_download(fnet_ctx *ctx, void *dst, const void *src, size_t bytes)
{
    struct guard gd = guard_begin(ctx, "download");
    guard_host(&gd, "dst", dst, bytes);
    guard_arg(&gd, "src", src, bytes);
    guard_open(&gd);
    fnet_ref_memcpy(ctx, dst, src, bytes);
    guard_close(&gd);
}

// dst (bytes) = src (bytes), both backend; they must not overlap unless dst == src
static void guarded_copy(fnet_ctx *ctx, void *dst, const void *src, size_t bytes)
{
    struct guard gd = guard_begin(ctx, "copy");
    guard_arg(&gd, "dst", dst, bytes);
    guard_arg(&gd, "src", src, bytes);
    uintptr_t d = (uintptr_t)dst, s = (uintptr_t)src;
    if (bytes > 0 && d != s && (d < s ? s - d : d - s) < bytes)
        violation("copy", "dst", dst, bytes, "overlaps src %p", src);
    guard_open(&gd);
    fnet_ref_memcpy(ctx, dst, src, bytes);
    guard_close(&gd);
}

// Arguments that must not share memory (the op's contract forbids it): a violation otherwise.
static void no_overlap(const char *op, const char *na, const void *a, size_t bytes_a,
                       const char *nb, const void *b, size_t bytes_b)
{
    uintptr_t pa = (uintptr_t)a, pb = (uintptr_t)b;
    if (bytes_a > 0 && bytes_b > 0 && pa < pb + bytes_b && pb < pa + bytes_a)
        violation(op, na, a, bytes_a, "overlaps %s %p (%zu bytes)", nb, b, bytes_b);
}

// x (n) = value
static void guarded_fill(fnet_ctx *ctx, int64_t n, float value, float *x)
{
    struct guard gd = guard_begin(ctx, "fill");
    guard_arg(&gd, "x", x, elems(n, sizeof(float)));
    guard_open(&gd);
    fnet_ref_fill(ctx, n, value, x);
    guard_close(&gd);
}

// ---- BLAS-shaped ----

// C (M, N) = alpha·op(A)·op(B) + beta·C; A (M, K) or (K, M) by lda, B (K, N) or (N, K) by ldb
static void guarded_sgemm(fnet_ctx *ctx, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                          float alpha, const float *A, int64_t lda, const float *B, int64_t ldb,
                          float beta, float *C, int64_t ldc)
{
    struct guard gd = guard_begin(ctx, "sgemm");
    // A and B are read only when C has an element to compute
    bool reads = M > 0 && N > 0;
    size_t a = reads ? strided(ta ? K : M, ta ? M : K, lda) : 0;
    size_t b = reads ? strided(tb ? N : K, tb ? K : N, ldb) : 0, c = strided(M, N, ldc);
    guard_arg(&gd, "A", A, a);
    guard_arg(&gd, "B", B, b);
    guard_arg(&gd, "C", C, c);
    no_overlap("sgemm", "C", C, c, "A", A, a);
    no_overlap("sgemm", "C", C, c, "B", B, b);
    guard_open(&gd);
    fnet_ref_sgemm(ctx, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    guard_close(&gd);
}

// count GEMMs: each operand's extent runs from its first block to the end of its last
static void guarded_sgemm_batched(fnet_ctx *ctx, bool ta, bool tb, int64_t M, int64_t N,
                                  int64_t K, float alpha, const float *A, int64_t lda, int64_t sa,
                                  const float *B, int64_t ldb, int64_t sb, float beta, float *C,
                                  int64_t ldc, int64_t sc, int64_t count)
{
    struct guard gd = guard_begin(ctx, "sgemm_batched");
    bool reads = M > 0 && N > 0 && count > 0;
    size_t last = count > 0 ? (size_t)(count - 1) : 0;
    size_t a = reads ? add_sat(mul_sat(last, elems(sa, sizeof(float))),
                               strided(ta ? K : M, ta ? M : K, lda))
                     : 0;
    size_t b = reads ? add_sat(mul_sat(last, elems(sb, sizeof(float))),
                               strided(tb ? N : K, tb ? K : N, ldb))
                     : 0;
    size_t c = count > 0 ? add_sat(mul_sat(last, elems(sc, sizeof(float))), strided(M, N, ldc))
                         : 0;
    guard_arg(&gd, "A", A, a);
    guard_arg(&gd, "B", B, b);
    guard_arg(&gd, "C", C, c);
    no_overlap("sgemm_batched", "C", C, c, "A", A, a);
    no_overlap("sgemm_batched", "C", C, c, "B", B, b);
    guard_open(&gd);
    fnet_ref_sgemm_batched(ctx, ta, tb, M, N, K, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc,
                           count);
    guard_close(&gd);
}

// y (n) += a·x (n)
static void guarded_axpy(fnet_ctx *ctx, int64_t n, float a, const float *x, float *y)
{
    struct guard gd = guard_begin(ctx, "axpy");
    guard_arg(&gd, "x", x, elems(n, sizeof(float)));
    guard_arg(&gd, "y", y, elems(n, sizeof(float)));
    guard_open(&gd);
    fnet_ref_axpy(ctx, n, a, x, y);
    guard_close(&gd);
}

// x (n) *= a
static void guarded_scal(fnet_ctx *ctx, int64_t n, float a, float *x)
{
    struct guard gd = guard_begin(ctx, "scal");
    guard_arg(&gd, "x", x, elems(n, sizeof(float)));
    guard_open(&gd);
    fnet_ref_scal(ctx, n, a, x);
    guard_close(&gd);
}

// Σ x·y over x, y (n)
static double guarded_dot(fnet_ctx *ctx, int64_t n, const float *x, const float *y)
{
    struct guard gd = guard_begin(ctx, "dot");
    guard_arg(&gd, "x", x, elems(n, sizeof(float)));
    guard_arg(&gd, "y", y, elems(n, sizeof(float)));
    guard_open(&gd);
    double s = fnet_ref_dot(ctx, n, x, y);
    guard_close(&gd);
    return s;
}

// y (n) = a·x (n) + b·y; x == y allowed
static void guarded_axpby(fnet_ctx *ctx, int64_t n, float a, const float *x, float b, float *y)
{
    struct guard gd = guard_begin(ctx, "axpby");
    guard_arg(&gd, "x", x, elems(n, sizeof(float)));
    guard_arg(&gd, "y", y, elems(n, sizeof(float)));
    guard_open(&gd);
    fnet_ref_axpby(ctx, n, a, x, b, y);
    guard_close(&gd);
}

// max |x_i| over x (n)
static double guarded_amax(fnet_ctx *ctx, int64_t n, const float *x)
{
    struct guard gd = guard_begin(ctx, "amax");
    guard_arg(&gd, "x", x, elems(n, sizeof(float)));
    guard_open(&gd);
    double m = fnet_ref_amax(ctx, n, x);
    guard_close(&gd);
    return m;
}

// ---- layout ----

// out (Q, P, R) (+)= in (P, Q, R)
static void guarded_permute_021(fnet_ctx *ctx, int64_t P, int64_t Q, int64_t R, const float *in,
                                float *out, bool accumulate)
{
    struct guard gd = guard_begin(ctx, "permute_021");
    size_t bytes = mul_sat(floats2(P, Q), count(R));
    guard_arg(&gd, "in", in, bytes);
    guard_arg(&gd, "out", out, bytes);
    no_overlap("permute_021", "out", out, bytes, "in", in, bytes);
    guard_open(&gd);
    fnet_ref_permute_021(ctx, P, Q, R, in, out, accumulate);
    guard_close(&gd);
}

// out (cols, rows) = in (rows, cols)ᵀ
static void guarded_transpose(fnet_ctx *ctx, int64_t rows, int64_t cols, const float *in,
                              float *out)
{
    struct guard gd = guard_begin(ctx, "transpose");
    guard_arg(&gd, "in", in, floats2(rows, cols));
    guard_arg(&gd, "out", out, floats2(rows, cols));
    no_overlap("transpose", "out", out, floats2(rows, cols), "in", in, floats2(rows, cols));
    guard_open(&gd);
    fnet_ref_transpose(ctx, rows, cols, in, out);
    guard_close(&gd);
}

// ---- element-wise ----

// y (B, n) = bias (n) broadcast over rows
static void guarded_bias_fill(fnet_ctx *ctx, int64_t B, int64_t n, const float *bias, float *y)
{
    struct guard gd = guard_begin(ctx, "bias_fill");
    guard_arg(&gd, "bias", bias, B > 0 ? elems(n, sizeof(float)) : 0); // unread without rows
    guard_arg(&gd, "y", y, floats2(B, n));
    guard_open(&gd);
    fnet_ref_bias_fill(ctx, B, n, bias, y);
    guard_close(&gd);
}

// y (B, n) += bias (n) broadcast over rows
static void guarded_bias_add(fnet_ctx *ctx, int64_t B, int64_t n, const float *bias, float *y)
{
    struct guard gd = guard_begin(ctx, "bias_add");
    guard_arg(&gd, "bias", bias, B > 0 ? elems(n, sizeof(float)) : 0);
    guard_arg(&gd, "y", y, floats2(B, n));
    guard_open(&gd);
    fnet_ref_bias_add(ctx, B, n, bias, y);
    guard_close(&gd);
}

// db (n) (+)= Σ_rows dy (B, n)
static void guarded_bias_grad(fnet_ctx *ctx, int64_t B, int64_t n, const float *dy, float *db,
                              bool accumulate)
{
    struct guard gd = guard_begin(ctx, "bias_grad");
    guard_arg(&gd, "dy", dy, floats2(B, n));
    guard_arg(&gd, "db", db, elems(n, sizeof(float)));
    guard_open(&gd);
    fnet_ref_bias_grad(ctx, B, n, dy, db, accumulate);
    guard_close(&gd);
}

// y (n) = f(x (n)); x == y allowed
static fnet_status guarded_act_forward(fnet_ctx *ctx, enum fnet_act act, int64_t n,
                                       const float *x, float *y)
{
    struct guard gd = guard_begin(ctx, "act_forward");
    guard_arg(&gd, "x", x, elems(n, sizeof(float)));
    guard_arg(&gd, "y", y, elems(n, sizeof(float)));
    guard_open(&gd);
    fnet_status st = fnet_ref_act_forward(ctx, act, n, x, y);
    guard_close(&gd);
    return st;
}

// dx (n) = dy (n) ⊙ f'(.) from y (n); dx == dy allowed
static fnet_status guarded_act_backward(fnet_ctx *ctx, enum fnet_act act, int64_t n,
                                        const float *y, const float *dy, float *dx)
{
    struct guard gd = guard_begin(ctx, "act_backward");
    guard_arg(&gd, "y", y, elems(n, sizeof(float)));
    guard_arg(&gd, "dy", dy, elems(n, sizeof(float)));
    guard_arg(&gd, "dx", dx, elems(n, sizeof(float)));
    guard_open(&gd);
    fnet_status st = fnet_ref_act_backward(ctx, act, n, y, dy, dx);
    guard_close(&gd);
    return st;
}

// y (n) = x (n) ⊙ mask (n); x == y allowed
static void guarded_mul(fnet_ctx *ctx, int64_t n, const float *x, const float *mask, float *y)
{
    struct guard gd = guard_begin(ctx, "mul");
    guard_arg(&gd, "x", x, elems(n, sizeof(float)));
    guard_arg(&gd, "mask", mask, elems(n, sizeof(float)));
    guard_arg(&gd, "y", y, elems(n, sizeof(float)));
    guard_open(&gd);
    fnet_ref_mul(ctx, n, x, mask, y);
    guard_close(&gd);
}

// mask (n) of the counter-based draws (seed, step)
static void guarded_dropout_mask(fnet_ctx *ctx, int64_t n, float p, uint64_t seed, uint64_t step,
                                 uint64_t first, float *mask)
{
    struct guard gd = guard_begin(ctx, "dropout_mask");
    guard_arg(&gd, "mask", mask, elems(n, sizeof(float)));
    guard_open(&gd);
    fnet_ref_dropout_mask(ctx, n, p, seed, step, first, mask);
    guard_close(&gd);
}

// ---- FFTs and spectra ----

// The plan (host memory: the reference's struct, made by fnet_ref_fft_plan) and its length.
static int64_t plan_length(const struct guard *gd, const void *plan)
{
    if (plan == NULL)
        violation(gd->op, "plan", plan, 0, "is NULL where an fft plan is expected");
    guard_host(gd, "plan", plan, sizeof(struct fnet_ref_fft_plan));
    return ((const struct fnet_ref_fft_plan *)plan)->n;
}

// x (count, n) real -> X (count, n/2+1 complex); x and X distinct
static void guarded_rfft(fnet_ctx *ctx, const void *plan, int64_t count, const float *x,
                         float *X)
{
    struct guard gd = guard_begin(ctx, "rfft");
    int64_t n = plan_length(&gd, plan);
    size_t xb = floats2(count, n), Xb = mul_sat(floats2(count, n / 2 + 1), 2);
    guard_arg(&gd, "x", x, xb);
    guard_arg(&gd, "X", X, Xb);
    no_overlap("rfft", "X", X, Xb, "x", x, xb);
    guard_open(&gd);
    fnet_ref_rfft(ctx, plan, count, x, X);
    guard_close(&gd);
}

// X (count, n/2+1 complex, may be overwritten) -> x (count, n) real; X and x distinct
static void guarded_irfft(fnet_ctx *ctx, const void *plan, int64_t count, float *X, float *x)
{
    struct guard gd = guard_begin(ctx, "irfft");
    int64_t n = plan_length(&gd, plan);
    size_t xb = floats2(count, n), Xb = mul_sat(floats2(count, n / 2 + 1), 2);
    guard_arg(&gd, "X", X, Xb);
    guard_arg(&gd, "x", x, xb);
    no_overlap("irfft", "x", x, xb, "X", X, Xb);
    guard_open(&gd);
    fnet_ref_irfft(ctx, plan, count, X, x);
    // the contract lets irfft overwrite X (FFTW's c2r does): a caller that reads X again sees NaN
    for (size_t i = 0; i < Xb / sizeof(float); i++)
        X[i] = NAN;
    guard_close(&gd);
}

// Bytes of the spectra (i, j), i < rows, j < cols, at 2F floats·(i·s_i + j·s_j): up to the end
// of the last one reached, (rows−1)·s_i + (cols−1)·s_j + 1 spectra; 0 when there is none.
static size_t spectra(int64_t F, int64_t rows, int64_t s_i, int64_t cols, int64_t s_j)
{
    if (F <= 0 || rows <= 0 || cols <= 0)
        return 0;
    size_t last = add_sat(mul_sat(count(rows) - 1, count(s_i)),
                          mul_sat(count(cols) - 1, count(s_j)));
    return mul_sat(add_sat(last, 1), floats2(F, 2));
}

// C (M, N) (+)= Σ_k op_a(A (M, K)) ∘ op_b(B (K, N)), spectra of F complex values at strides;
// A and B are read only when C has a spectrum, and C is written even when K is 0
static void guarded_cmac(fnet_ctx *ctx, int64_t F, int64_t M, int64_t N, int64_t K,
                         const float *A, int64_t a_m, int64_t a_k, bool conj_a, const float *B,
                         int64_t b_k, int64_t b_n, bool conj_b, float *C, int64_t c_m,
                         int64_t c_n, bool accumulate)
{
    struct guard gd = guard_begin(ctx, "cmac");
    bool reads = M > 0 && N > 0;
    if (a_m < 0 || a_k < 0 || b_k < 0 || b_n < 0 || c_m < 0 || c_n < 0)
        violation(gd.op, "strides", NULL, 0, "are not all >= 0 (A %lld %lld, B %lld %lld, "
                  "C %lld %lld)", (long long)a_m, (long long)a_k, (long long)b_k, (long long)b_n,
                  (long long)c_m, (long long)c_n);
    size_t a = reads ? spectra(F, M, a_m, K, a_k) : 0, b = reads ? spectra(F, K, b_k, N, b_n) : 0;
    size_t c = spectra(F, M, c_m, N, c_n);
    guard_arg(&gd, "A", A, a);
    guard_arg(&gd, "B", B, b);
    guard_arg(&gd, "C", C, c);
    no_overlap("cmac", "C", C, c, "A", A, a);
    no_overlap("cmac", "C", C, c, "B", B, b);
    guard_open(&gd);
    fnet_ref_cmac(ctx, F, M, N, K, A, a_m, a_k, conj_a, B, b_k, b_n, conj_b, C, c_m, c_n,
                  accumulate);
    guard_close(&gd);
}

// ---- sparse matrices (CSR) ----

// Opens row_ptr (M + 1 int32) and col (nnz int32) of A (M, N) for reading and checks the CSR
// structure the contract promises (row_ptr[0] = 0, not decreasing; col in [0, N), increasing
// within a row): a malformed matrix would send the op outside X or Y without a fault. Returns
// nnz = row_ptr[M], read inside the guard; the two stay open until the op's guard_close.
static int64_t guard_csr(struct guard *gd, int64_t M, int64_t N, const int32_t *row_ptr,
                         const int32_t *col)
{
    if (M < 0 || N < 0)
        violation(gd->op, "shape", NULL, 0, "is negative (M %lld, N %lld)", (long long)M,
                  (long long)N);
    guard_arg(gd, "row_ptr", row_ptr, elems(M + 1, sizeof(int32_t)));
    guard_open(gd);
    if (row_ptr[0] != 0)
        violation(gd->op, "row_ptr", row_ptr, elems(M + 1, sizeof(int32_t)),
                  "starts at %d, not 0", (int)row_ptr[0]);
    for (int64_t i = 0; i < M; i++)
        if (row_ptr[i + 1] < row_ptr[i])
            violation(gd->op, "row_ptr", row_ptr, elems(M + 1, sizeof(int32_t)),
                      "decreases at row %lld (%d after %d)", (long long)i, (int)row_ptr[i + 1],
                      (int)row_ptr[i]);
    int64_t nnz = row_ptr[M];
    guard_arg(gd, "col", col, elems(nnz, sizeof(int32_t)));
    guard_open(gd);
    for (int64_t i = 0; i < M; i++)
        for (int64_t k = row_ptr[i]; k < row_ptr[i + 1]; k++)
            if (col[k] < 0 || col[k] >= N || (k > row_ptr[i] && col[k] <= col[k - 1]))
                violation(gd->op, "col", col, elems(nnz, sizeof(int32_t)),
                          "[%lld] = %d in row %lld is outside [0, %lld) or not increasing",
                          (long long)k, (int)col[k], (long long)i, (long long)N);
    return nnz;
}

// The checks of a CSR product out (out_rows, B) (+)= op(A)·in (in_rows, B): val, in (read only
// when A has entries) and out are backend memory of their sizes, out overlaps no input; then
// the guard opens.
static void guard_csr_product(struct guard *gd, int64_t nnz, int64_t M, const int32_t *row_ptr,
                              const int32_t *col, const float *val, const char *in_name,
                              const float *in, int64_t in_rows, const char *out_name,
                              const float *out, int64_t out_rows, int64_t B)
{
    size_t v = elems(nnz, sizeof(float)), i = nnz > 0 ? floats2(in_rows, B) : 0;
    size_t o = floats2(out_rows, B);
    size_t rp = elems(M + 1, sizeof(int32_t)), c = elems(nnz, sizeof(int32_t));
    guard_arg(gd, "val", val, v);
    guard_arg(gd, in_name, in, i);
    guard_arg(gd, out_name, out, o);
    no_overlap(gd->op, out_name, out, o, "row_ptr", row_ptr, rp);
    no_overlap(gd->op, out_name, out, o, "col", col, c);
    no_overlap(gd->op, out_name, out, o, "val", val, v);
    no_overlap(gd->op, out_name, out, o, in_name, in, i);
    guard_open(gd);
}

// Y (M, B) (+)= A·X; X (N, B) read only when A has entries
static void guarded_csr_spmm(fnet_ctx *ctx, int64_t M, int64_t N, int64_t B,
                             const int32_t *row_ptr, const int32_t *col, const float *val,
                             const float *X, float *Y, bool accumulate)
{
    struct guard gd = guard_begin(ctx, "csr_spmm");
    int64_t nnz = guard_csr(&gd, M, N, row_ptr, col);
    guard_csr_product(&gd, nnz, M, row_ptr, col, val, "X", X, N, "Y", Y, M, B);
    fnet_ref_csr_spmm(ctx, M, N, B, row_ptr, col, val, X, Y, accumulate);
    guard_close(&gd);
}

// X (N, B) (+)= Aᵀ·Y; Y (M, B) read only when A has entries
static void guarded_csr_spmm_t(fnet_ctx *ctx, int64_t M, int64_t N, int64_t B,
                               const int32_t *row_ptr, const int32_t *col, const float *val,
                               const float *Y, float *X, bool accumulate)
{
    struct guard gd = guard_begin(ctx, "csr_spmm_t");
    int64_t nnz = guard_csr(&gd, M, N, row_ptr, col);
    guard_csr_product(&gd, nnz, M, row_ptr, col, val, "Y", Y, M, "X", X, N, B);
    fnet_ref_csr_spmm_t(ctx, M, N, B, row_ptr, col, val, Y, X, accumulate);
    guard_close(&gd);
}

// out (nnz) (+)= Y (M, B) rows · X (N, B) rows at A's entries; Y and X read only when A has
// entries
static void guarded_csr_sddmm(fnet_ctx *ctx, int64_t M, int64_t N, int64_t B,
                              const int32_t *row_ptr, const int32_t *col, const float *Y,
                              const float *X, float *out, bool accumulate)
{
    struct guard gd = guard_begin(ctx, "csr_sddmm");
    int64_t nnz = guard_csr(&gd, M, N, row_ptr, col);
    size_t o = elems(nnz, sizeof(float));
    size_t y = nnz > 0 ? floats2(M, B) : 0, x = nnz > 0 ? floats2(N, B) : 0;
    size_t rp = elems(M + 1, sizeof(int32_t)), c = elems(nnz, sizeof(int32_t));
    guard_arg(&gd, "Y", Y, y);
    guard_arg(&gd, "X", X, x);
    guard_arg(&gd, "out", out, o);
    no_overlap("csr_sddmm", "out", out, o, "row_ptr", row_ptr, rp);
    no_overlap("csr_sddmm", "out", out, o, "col", col, c);
    no_overlap("csr_sddmm", "out", out, o, "Y", Y, y);
    no_overlap("csr_sddmm", "out", out, o, "X", X, x);
    guard_open(&gd);
    fnet_ref_csr_sddmm(ctx, M, N, B, row_ptr, col, Y, X, out, accumulate);
    guard_close(&gd);
}

// ---- losses, data ----

// logits (B, K), labels (B) int32, dlogits (B, K) or NULL, *correct host or NULL
static double guarded_softmax_ce(fnet_ctx *ctx, int64_t B, int64_t K, const float *logits,
                                 const int32_t *labels, float scale, float *dlogits,
                                 int64_t *correct)
{
    struct guard gd = guard_begin(ctx, "softmax_ce");
    guard_host(&gd, "correct", correct, sizeof(*correct));
    guard_arg(&gd, "logits", logits, floats2(B, K));
    guard_arg(&gd, "labels", labels, elems(B, sizeof(int32_t)));
    if (dlogits != NULL)
        guard_arg(&gd, "dlogits", dlogits, floats2(B, K));
    guard_open(&gd);
    double loss = fnet_ref_softmax_ce(ctx, B, K, logits, labels, scale, dlogits, correct);
    guard_close(&gd);
    return loss;
}

// y (B, K), labels (B) int32, dy (B, K) or NULL, *correct host or NULL
static double guarded_mse(fnet_ctx *ctx, int64_t B, int64_t K, const float *y,
                          const int32_t *labels, float scale, float *dy, int64_t *correct)
{
    struct guard gd = guard_begin(ctx, "mse");
    guard_host(&gd, "correct", correct, sizeof(*correct));
    guard_arg(&gd, "y", y, floats2(B, K));
    guard_arg(&gd, "labels", labels, elems(B, sizeof(int32_t)));
    if (dy != NULL)
        guard_arg(&gd, "dy", dy, floats2(B, K));
    guard_open(&gd);
    double loss = fnet_ref_mse(ctx, B, K, y, labels, scale, dy, correct);
    guard_close(&gd);
    return loss;
}

// w, g (n); returns l1·Σ|w| + ½·l2·Σw²
static double guarded_regularize(fnet_ctx *ctx, int64_t n, const float *w, float *g, float l1,
                                 float l2)
{
    struct guard gd = guard_begin(ctx, "regularize");
    guard_arg(&gd, "w", w, elems(n, sizeof(float)));
    guard_arg(&gd, "g", g, elems(n, sizeof(float)));
    guard_open(&gd);
    double r = fnet_ref_regularize(ctx, n, w, g, l1, l2);
    guard_close(&gd);
    return r;
}

// x (B, d) = scale · src (N, d uint8) rows idx[0..B) (host)
static void guarded_u8_to_float(fnet_ctx *ctx, int64_t B, int64_t d, const uint8_t *src,
                                const int64_t *idx, float scale, float *x)
{
    struct guard gd = guard_begin(ctx, "u8_to_float");
    guard_host(&gd, "idx", idx, elems(B, sizeof(*idx)));
    if (B > 0 && d > 0) {
        // src is where row 0 starts; each row the op reads must lie in src's allocation
        if (src == NULL)
            violation(gd.op, "src", src, count(d), "is NULL where backend memory is expected");
        const struct region *r = region_of(gd.g, src);
        if (r == NULL)
            violation(gd.op, "src", src, count(d), "is not in a live allocation of this ctx");
        for (int64_t row = 0; row < B; row++) {
            char arg[64];
            snprintf(arg, sizeof(arg), "src row %lld (idx %lld)", (long long)row,
                     (long long)idx[row]);
            if (idx[row] > INT64_MAX / d || idx[row] < INT64_MIN / d)
                violation(gd.op, arg, src, count(d), "has an offset idx·d beyond int64");
            // unsigned wrap-around makes a negative offset work
            uintptr_t start = (uintptr_t)src + (uintptr_t)(idx[row] * d);
            if (!inside(r, start, count(d)))
                violation(gd.op, arg, (const void *)start, count(d),
                          "is outside src's %zu-byte allocation %p", r->bytes, (void *)r->base);
        }
        guard_add(&gd, r);
    }
    guard_arg(&gd, "x", x, floats2(B, d));
    guard_open(&gd);
    fnet_ref_u8_to_float(ctx, B, d, src, idx, scale, x);
    guard_close(&gd);
}

// x (n) all finite
static bool guarded_all_finite(fnet_ctx *ctx, int64_t n, const float *x)
{
    struct guard gd = guard_begin(ctx, "all_finite");
    guard_arg(&gd, "x", x, elems(n, sizeof(float)));
    guard_open(&gd);
    bool finite = fnet_ref_all_finite(ctx, n, x);
    guard_close(&gd);
    return finite;
}

// ---- fused optimizer steps ----

// w, g (n); a host
static void guarded_sgd_step(fnet_ctx *ctx, int64_t n, float *w, const float *g,
                             const struct fnet_step_args *a)
{
    struct guard gd = guard_begin(ctx, "sgd_step");
    guard_host(&gd, "a", a, sizeof(*a));
    guard_arg(&gd, "w", w, elems(n, sizeof(float)));
    guard_arg(&gd, "g", g, elems(n, sizeof(float)));
    guard_open(&gd);
    fnet_ref_sgd_step(ctx, n, w, g, a);
    guard_close(&gd);
}

// w, g, v (n); a host
static void guarded_momentum_step(fnet_ctx *ctx, int64_t n, float *w, const float *g, float *v,
                                  const struct fnet_step_args *a, bool nesterov)
{
    struct guard gd = guard_begin(ctx, "momentum_step");
    guard_host(&gd, "a", a, sizeof(*a));
    guard_arg(&gd, "w", w, elems(n, sizeof(float)));
    guard_arg(&gd, "g", g, elems(n, sizeof(float)));
    guard_arg(&gd, "v", v, elems(n, sizeof(float)));
    guard_open(&gd);
    fnet_ref_momentum_step(ctx, n, w, g, v, a, nesterov);
    guard_close(&gd);
}

// w, g, s (n); a host
static void guarded_rmsprop_step(fnet_ctx *ctx, int64_t n, float *w, const float *g, float *s,
                                 const struct fnet_step_args *a)
{
    struct guard gd = guard_begin(ctx, "rmsprop_step");
    guard_host(&gd, "a", a, sizeof(*a));
    guard_arg(&gd, "w", w, elems(n, sizeof(float)));
    guard_arg(&gd, "g", g, elems(n, sizeof(float)));
    guard_arg(&gd, "s", s, elems(n, sizeof(float)));
    guard_open(&gd);
    fnet_ref_rmsprop_step(ctx, n, w, g, s, a);
    guard_close(&gd);
}

// w, g, m, v (n); a host
static void guarded_adam_step(fnet_ctx *ctx, int64_t n, float *w, const float *g, float *m,
                              float *v, const struct fnet_step_args *a)
{
    struct guard gd = guard_begin(ctx, "adam_step");
    guard_host(&gd, "a", a, sizeof(*a));
    guard_arg(&gd, "w", w, elems(n, sizeof(float)));
    guard_arg(&gd, "g", g, elems(n, sizeof(float)));
    guard_arg(&gd, "m", m, elems(n, sizeof(float)));
    guard_arg(&gd, "v", v, elems(n, sizeof(float)));
    guard_open(&gd);
    fnet_ref_adam_step(ctx, n, w, g, m, v, a);
    guard_close(&gd);
}

// ---- a replayed training step ----

// x (B, d) = src rows rows[0..B) (backend) · scale
static void guarded_u8_gather(fnet_ctx *ctx, int64_t B, int64_t d, const uint8_t *src,
                              const int64_t *rows, float scale, float *x)
{
    struct guard gd = guard_begin(ctx, "u8_gather");
    guard_arg(&gd, "rows", rows, elems(B, sizeof(*rows)));
    const struct region *r = NULL;
    if (B > 0 && d > 0) {
        if (src == NULL || (r = region_of(gd.g, src)) == NULL)
            violation(gd.op, "src", src, count(d), "is not in a live allocation of this ctx");
        guard_add(&gd, r);
    }
    guard_arg(&gd, "x", x, floats2(B, d));
    guard_open(&gd);
    // each row the op reads must lie in src's allocation (rows is readable now)
    for (int64_t row = 0; r != NULL && row < B; row++) {
        uintptr_t start = (uintptr_t)src + (uintptr_t)(rows[row] * d);
        if (rows[row] < 0 || rows[row] > INT64_MAX / d || !inside(r, start, count(d)))
            violation(gd.op, "src row", (const void *)start, count(d),
                      "(rows[%lld] = %lld) is outside src's %zu-byte allocation", (long long)row,
                      (long long)rows[row], r->bytes);
    }
    fnet_ref_u8_gather(ctx, B, d, src, rows, scale, x);
    guard_close(&gd);
}

// logits, dlogits (B, K), labels (B), step (1), acc (2)
static void guarded_loss_step(fnet_ctx *ctx, bool mse, int64_t B, int64_t K, const float *logits,
                              const int32_t *labels, float scale, float *dlogits,
                              const int64_t *step, double *acc)
{
    struct guard gd = guard_begin(ctx, "loss_step");
    guard_arg(&gd, "logits", logits, floats2(B, K));
    guard_arg(&gd, "labels", labels, elems(B, sizeof(int32_t)));
    if (dlogits != NULL)
        guard_arg(&gd, "dlogits", dlogits, floats2(B, K));
    guard_arg(&gd, "step", step, sizeof(*step));
    guard_arg(&gd, "acc", acc, 2 * sizeof(*acc));
    guard_open(&gd);
    fnet_ref_loss_step(ctx, mse, B, K, logits, labels, scale, dlogits, step, acc);
    guard_close(&gd);
}

// w, g, s1, s2 (n; s1, s2 as the kind needs), a (one struct), skip (2) all backend memory
static void guarded_step_dev(fnet_ctx *ctx, int kind, bool nesterov, int64_t n, float *w,
                             const float *g, float *s1, float *s2, const struct fnet_step_args *a,
                             const double *skip)
{
    struct guard gd = guard_begin(ctx, "step_dev");
    guard_arg(&gd, "w", w, elems(n, sizeof(float)));
    guard_arg(&gd, "g", g, elems(n, sizeof(float)));
    if (kind != FNET_OP_SGD_STEP)
        guard_arg(&gd, "s1", s1, elems(n, sizeof(float)));
    if (kind == FNET_OP_ADAM_STEP)
        guard_arg(&gd, "s2", s2, elems(n, sizeof(float)));
    guard_arg(&gd, "a", a, sizeof(*a));
    if (skip != NULL)
        guard_arg(&gd, "skip", skip, 2 * sizeof(*skip));
    guard_open(&gd);
    if (skip == NULL || skip[1] < 0) {
        switch (kind) {
        case FNET_OP_SGD_STEP: fnet_ref_sgd_step(ctx, n, w, g, a); break;
        case FNET_OP_MOMENTUM_STEP: fnet_ref_momentum_step(ctx, n, w, g, s1, a, nesterov); break;
        case FNET_OP_RMSPROP_STEP: fnet_ref_rmsprop_step(ctx, n, w, g, s1, a); break;
        case FNET_OP_ADAM_STEP: fnet_ref_adam_step(ctx, n, w, g, s1, s2, a); break;
        default: violation(gd.op, "kind", NULL, 0, "%d is no fused step", kind);
        }
    }
    guard_close(&gd);
}

// The recorded step: fn(arg) run again at every graph_run, with the ops a replay may not issue
// refused (not_replayable), so that a step that would break a GPU's capture fails here.
struct guarded_graph {
    void (*fn)(void *arg);
    void *arg;
};

static fnet_status guarded_graph_make(fnet_ctx *ctx, void (*fn)(void *arg), void *arg,
                                      void **graph)
{
    struct guarded_graph *gg = fnet_malloc(sizeof(*gg));
    if (gg == NULL)
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "a recorded step");
    *gg = (struct guarded_graph){fn, arg};
    *graph = gg;
    return FNET_OK;
}

static void guarded_graph_run(fnet_ctx *ctx, void *graph)
{
    struct guarded *g = ctx->state;
    const struct guarded_graph *gg = graph;
    g->replaying = true;
    gg->fn(gg->arg);
    g->replaying = false;
}

static void guarded_graph_free(fnet_ctx *ctx, void *graph)
{
    fnet_free(graph);
}

// No run_parts: parts run one after the other, each op opening and closing its own memory.
const struct fnet_backend_ops fnet_guarded_backend = {
    .name = "guarded",
    .host_memory = false,
    .host_la = &fnet_ref_host_la,
    .state_init = guarded_state_init,
    .state_free = guarded_state_free,
    .synchronize = guarded_synchronize,
    .alloc = guarded_alloc,
    .free = guarded_free,
    .upload = guarded_upload,
    .download = guarded_download,
    .copy = guarded_copy,
    .fill = guarded_fill,
    .sgemm = guarded_sgemm,
    .sgemm_batched = guarded_sgemm_batched,
    .axpy = guarded_axpy,
    .scal = guarded_scal,
    .dot = guarded_dot,
    .axpby = guarded_axpby,
    .amax = guarded_amax,
    .permute_021 = guarded_permute_021,
    .transpose = guarded_transpose,
    .bias_fill = guarded_bias_fill,
    .bias_add = guarded_bias_add,
    .bias_grad = guarded_bias_grad,
    .act_forward = guarded_act_forward,
    .act_backward = guarded_act_backward,
    .mul = guarded_mul,
    .dropout_mask = guarded_dropout_mask,
    .fft_plan = fnet_ref_fft_plan, // host memory: the reference's plan
    .fft_plan_free = fnet_ref_fft_plan_free,
    .rfft = guarded_rfft,
    .irfft = guarded_irfft,
    .cmac = guarded_cmac,
    .csr_spmm = guarded_csr_spmm,
    .csr_spmm_t = guarded_csr_spmm_t,
    .csr_sddmm = guarded_csr_sddmm,
    .softmax_ce = guarded_softmax_ce,
    .mse = guarded_mse,
    .regularize = guarded_regularize,
    .u8_to_float = guarded_u8_to_float,
    .all_finite = guarded_all_finite,
    .sgd_step = guarded_sgd_step,
    .momentum_step = guarded_momentum_step,
    .rmsprop_step = guarded_rmsprop_step,
    .adam_step = guarded_adam_step,
    .u8_gather = guarded_u8_gather,
    .loss_step = guarded_loss_step,
    .step_dev = guarded_step_dev,
    .graph_make = guarded_graph_make,
    .graph_run = guarded_graph_run,
    .graph_free = guarded_graph_free,
};
