/* bench-csr: the CPU backend's CSR kernels (src/cpu/cpu_sparse.c) against the reference's loops
 * (src/cpu/ref_sparse.c) and against the dense GEMM of the same shape, on a 1024×1024 matrix at
 * densities 1-50% and batches 1, 32, 256: medians of repeated runs, one table. Uses src/
 * internals (the raw backend ops); every buffer is the CPU backend's (host) memory. */
#define _POSIX_C_SOURCE 200809L
#include "core/backend.h"
#include "cpu/ref.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: bench-csr [--threads N] [--seconds X] [--repeat N] [--n N] [--op NAME]\n"
    "\n"
    "Time csr_spmm (Y = A·X), csr_spmm_t (X = Aᵀ·Y) and csr_sddmm (the gradient of A's values)\n"
    "of an N×N CSR matrix A (default 1024) at densities 1, 2, 5, 10, 20, 50%% and batches B = 1,\n"
    "32, 256: (a) the reference backend's loop (one thread), (b) the CPU backend's kernel on N\n"
    "threads (default: the online cores), (c) the CPU backend's sgemm of the dense equivalent\n"
    "(cblas_sgemm, one OpenBLAS thread per worker of the same pool): A·X, Aᵀ·Y, Y·Xᵀ. Each time\n"
    "is the median over --repeat runs (default 5) of the mean of the calls in --seconds\n"
    "(default 0.05); --op spmm, spmm_t or sddmm times that op alone. OPENBLAS_CORETYPE picks\n"
    "OpenBLAS's kernels; the table names the one used.\n";

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void die(const char *what)
{
    fprintf(stderr, "bench-csr: %s\n", what);
    exit(1);
}

enum op { SPMM, SPMM_T, SDDMM };
static const char *const op_names[] = {"spmm", "spmm_t", "sddmm"};
enum impl { REF, CPU, DENSE };

// One timed call's operands: A (n, n) in CSR and dense (W), X, Y (n, B), out (nnz)
struct bench {
    fnet_ctx *cpu, *ref;
    int64_t n, B, nnz;
    int32_t *row_ptr, *col;
    float *val, *W, *X, *Y, *out, *dW;
};

static void call(const struct bench *b, enum op op, enum impl impl)
{
    const int64_t n = b->n, B = b->B;
    const struct fnet_backend_ops *be = b->cpu->be;
    switch (op) {
    case SPMM:
        if (impl == REF)
            fnet_ref_csr_spmm(b->ref, n, n, B, b->row_ptr, b->col, b->val, b->X, b->Y, false);
        else if (impl == CPU)
            be->csr_spmm(b->cpu, n, n, B, b->row_ptr, b->col, b->val, b->X, b->Y, false);
        else // Y (n, B) = W (n, n)·X (n, B)
            be->sgemm(b->cpu, false, false, n, B, n, 1.0f, b->W, n, b->X, B, 0.0f, b->Y, B);
        break;
    case SPMM_T:
        if (impl == REF)
            fnet_ref_csr_spmm_t(b->ref, n, n, B, b->row_ptr, b->col, b->val, b->Y, b->X, false);
        else if (impl == CPU)
            be->csr_spmm_t(b->cpu, n, n, B, b->row_ptr, b->col, b->val, b->Y, b->X, false);
        else // X (n, B) = Wᵀ·Y (n, B)
            be->sgemm(b->cpu, true, false, n, B, n, 1.0f, b->W, n, b->Y, B, 0.0f, b->X, B);
        break;
    case SDDMM:
        if (impl == REF)
            fnet_ref_csr_sddmm(b->ref, n, n, B, b->row_ptr, b->col, b->Y, b->X, b->out, false);
        else if (impl == CPU)
            be->csr_sddmm(b->cpu, n, n, B, b->row_ptr, b->col, b->Y, b->X, b->out, false);
        else // dW (n, n) = Y (n, B)·X (n, B)ᵀ
            be->sgemm(b->cpu, false, true, n, n, B, 1.0f, b->Y, B, b->X, B, 0.0f, b->dW, n);
        break;
    }
}

// Median seconds per call over `repeat` runs of at least `seconds` each (one run to warm up).
static double time_call(const struct bench *b, enum op op, enum impl impl, double seconds,
                        int repeat)
{
    double runs[101];
    for (int k = -1; k < repeat; k++) {
        int64_t calls = 0;
        double t0 = fnet_now(), t;
        do {
            call(b, op, impl);
            calls++;
            t = fnet_now() - t0;
        } while (t < seconds);
        if (k >= 0)
            runs[k] = t / (double)calls;
    }
    return median(runs, repeat);
}

static uint64_t state_draw(uint64_t *s)
{
    *s += UINT64_C(0x9E3779B97F4A7C15);
    return fnet_mix64(*s);
}

// A (n, n) at `density`, each entry kept independently; W its dense form; values in [-1, 1)
static void make_matrix(struct bench *b, double density, uint64_t seed)
{
    const int64_t n = b->n;
    uint64_t s = seed;
    b->nnz = 0;
    b->row_ptr[0] = 0;
    memset(b->W, 0, (size_t)(n * n) * sizeof(float));
    for (int64_t i = 0; i < n; i++) {
        for (int64_t j = 0; j < n; j++)
            if ((double)(state_draw(&s) >> 11) * 0x1p-53 < density) {
                float v = (float)((double)(state_draw(&s) >> 11) * 0x1p-52 - 1.0);
                b->col[b->nnz] = (int32_t)j;
                b->val[b->nnz++] = v;
                b->W[i * n + j] = v;
            }
        b->row_ptr[i + 1] = (int32_t)b->nnz;
    }
}

static void fill(float *x, int64_t n, uint64_t seed)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)((double)(state_draw(&seed) >> 11) * 0x1p-52 - 1.0);
}

static void *alloc_or_die(fnet_ctx *ctx, size_t bytes)
{
    void *p = ctx->be->alloc(ctx, bytes);
    if (p == NULL)
        die("out of memory");
    return p;
}

int main(int argc, char **argv)
{
    int threads = 0, repeat = 5;
    double seconds = 0.05;
    int64_t n = 1024;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(o, "--help") == 0) {
            fputs(usage, stdout);
            return 0;
        }
        if (v == NULL)
            die("an option without its value; see --help");
        if (strcmp(o, "--threads") == 0)
            threads = atoi(v);
        else if (strcmp(o, "--seconds") == 0)
            seconds = atof(v);
        else if (strcmp(o, "--repeat") == 0)
            repeat = atoi(v);
        else if (strcmp(o, "--n") == 0)
            n = atoll(v);
        else if (strcmp(o, "--op") == 0)
            only = v;
        else
            die("unknown option; see --help");
        i++;
    }
    if (repeat < 1 || repeat > 101 || !(seconds >= 0.0) || n < 1 || n > 16384 || threads < 0)
        die("--repeat 1..101, --seconds >= 0, --n 1..16384, --threads >= 1");

    static const double densities[] = {0.01, 0.02, 0.05, 0.10, 0.20, 0.50};
    static const int64_t batches[] = {1, 32, 256};
    struct bench b = {.n = n};
    if (fnet_ctx_create_cpu(&b.cpu) != FNET_OK || fnet_ctx_create_reference(&b.ref) != FNET_OK)
        die("cannot make the ctxs");
    if (threads > 0 && fnet_ctx_set_threads(b.cpu, threads) != FNET_OK)
        die("cannot set the threads");
    const int64_t Bmax = 256;
    b.row_ptr = alloc_or_die(b.cpu, (size_t)(n + 1) * sizeof(int32_t));
    b.col = alloc_or_die(b.cpu, (size_t)(n * n) * sizeof(int32_t));
    b.val = alloc_or_die(b.cpu, (size_t)(n * n) * sizeof(float));
    b.W = alloc_or_die(b.cpu, (size_t)(n * n) * sizeof(float));
    b.dW = alloc_or_die(b.cpu, (size_t)(n * n) * sizeof(float));
    b.out = alloc_or_die(b.cpu, (size_t)(n * n) * sizeof(float));
    b.X = alloc_or_die(b.cpu, (size_t)(n * Bmax) * sizeof(float));
    b.Y = alloc_or_die(b.cpu, (size_t)(n * Bmax) * sizeof(float));

    const char *coretype = getenv("OPENBLAS_CORETYPE");
    printf("bench-csr: %lldx%lld CSR, cpu backend on %d threads, reference on 1; OpenBLAS %s "
           "(core %s, OPENBLAS_CORETYPE %s); median of %d runs of >= %g s\n",
           (long long)n, (long long)n, fnet_ctx_threads(b.cpu), openblas_get_config(),
           openblas_get_corename(), coretype ? coretype : "unset", repeat, seconds);
    printf("%-7s %7s %4s %8s | %10s %10s %10s | %8s %9s\n", "op", "density", "B", "nnz",
           "ref ms", "cpu ms", "dense ms", "cpu/ref", "dense/cpu");
    for (size_t d = 0; d < sizeof(densities) / sizeof(densities[0]); d++) {
        make_matrix(&b, densities[d], 1000 + d);
        for (size_t bi = 0; bi < sizeof(batches) / sizeof(batches[0]); bi++) {
            b.B = batches[bi];
            fill(b.X, n * b.B, 7);
            fill(b.Y, n * b.B, 8);
            for (int op = SPMM; op <= SDDMM; op++) {
                if (only != NULL && strcmp(only, op_names[op]) != 0)
                    continue;
                double t[3];
                for (int impl = REF; impl <= DENSE; impl++)
                    t[impl] = time_call(&b, (enum op)op, (enum impl)impl, seconds, repeat);
                printf("%-7s %6.0f%% %4lld %8lld | %10.3f %10.3f %10.3f | %8.4f %9.2f\n",
                       op_names[op], 100.0 * densities[d], (long long)b.B, (long long)b.nnz,
                       1e3 * t[REF], 1e3 * t[CPU], 1e3 * t[DENSE], t[CPU] / t[REF],
                       t[DENSE] / t[CPU]);
                fflush(stdout);
            }
        }
    }
    float *bufs[] = {b.Y, b.X, b.out, b.dW, b.W, b.val};
    for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++)
        b.cpu->be->free(b.cpu, bufs[i]);
    b.cpu->be->free(b.cpu, b.col);
    b.cpu->be->free(b.cpu, b.row_ptr);
    fnet_ctx_free(b.ref);
    fnet_ctx_free(b.cpu);
    return 0;
}
