/* The CPU backend's CSR ops (src/core/backend.h, "sparse matrices"; src/cpu/ref_sparse.c is the
 * oracle): vectorized B-long axpys and dots over the feature-major operands, a block of batch
 * columns summed in registers across a row's entries, split over the ctx's pool into pieces that
 * write disjoint outputs. Each output is summed in the same order whatever the split, so the
 * results are the same bits for every thread count. */
#include "cpu/ref.h"
#include "cpu/pool.h"

#include <stdlib.h>
#include <string.h>

// Batch columns whose sums spmm keeps in registers while it walks a row's entries: 4 AVX-512
// (8 AVX2) registers, Y written once. Narrower pieces of a row go by 32, 16, then the rest.
#define SPMM_BLOCK 64
// Columns are split between workers in whole vectors of this many floats.
#define COL_GRAIN 16
// Partial sums of the dot products (sddmm) and of B = 1 spmm (SpMV): one AVX-512 register,
// added in a fixed tree at the end.
#define LANES 16

// TEMPORARY (measurement): split overrides, 0 = the built-in choice, 1 = rows, 2 = columns
static int split_override(void)
{
    const char *s = getenv("FNET_CSR_SPLIT");
    return s ? atoi(s) : 0;
}

// One call's operands and how it is split: `parts` pieces, by rows of the output or by batch
// columns.
struct csr_job {
    int64_t M, N, B;
    const int32_t *row_ptr, *col;
    const float *val;
    const float *X, *Y; // the dense inputs (X for spmm, Y for spmm_t, both for sddmm)
    float *out;         // Y for spmm, X for spmm_t, out (nnz) for sddmm
    bool accumulate, by_cols;
    int64_t parts;
};

// The first row i with row_ptr[i] + i >= target: piece p of a split by rows starts at
// target = p·(nnz + M)/parts, so each piece has about the same entries plus rows (a row costs
// its entries' axpys or dots and, in spmm, one pass over its output).
static int64_t row_at(const int32_t *row_ptr, int64_t M, int64_t target)
{
    int64_t lo = 0, hi = M;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (row_ptr[mid] + mid < target)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

// Rows [*r0, *r1) of piece p of M rows split by rows, balanced by entries plus rows.
static void piece_rows(const struct csr_job *j, int64_t p, int64_t *r0, int64_t *r1)
{
    int64_t total = j->row_ptr[j->M] + j->M;
    *r0 = row_at(j->row_ptr, j->M, p * total / j->parts);
    *r1 = row_at(j->row_ptr, j->M, (p + 1) * total / j->parts);
}

// Columns [*c0, *c1) of piece p of a split by batch columns, in whole COL_GRAINs.
static void piece_cols(const struct csr_job *j, int64_t p, int64_t *c0, int64_t *c1)
{
    int64_t units = (j->B + COL_GRAIN - 1) / COL_GRAIN;
    *c0 = p * units / j->parts * COL_GRAIN;
    *c1 = (p + 1) * units / j->parts * COL_GRAIN;
    if (*c1 > j->B)
        *c1 = j->B;
}

// The first entry in [k0, k1) whose column is >= c (col increasing within a row).
static int64_t entry_at(const int32_t *col, int64_t k0, int64_t k1, int64_t c)
{
    while (k0 < k1) {
        int64_t mid = k0 + (k1 - k0) / 2;
        if (col[mid] < c)
            k0 = mid + 1;
        else
            k1 = mid;
    }
    return k0;
}

// ---- spmm: Y (M, B) (+)= A·X ----

// 16 floats as one value of GCC's (and clang's) vector extension: one AVX-512 register on the
// x86-64-v4 clone, two AVX2 ones on v3, four SSE ones on the baseline. Sums kept in plain float
// arrays stay in memory (GCC turns their set-up into memcpy/memset and loads and stores them on
// every entry); sums in variables of this type stay in registers. Element-wise + and * round as
// the scalar ones, so every clone gives the same bits.
typedef float vf16 __attribute__((vector_size(16 * sizeof(float))));
#define VLOAD(v, p) memcpy(&(v), (p), sizeof(vf16))  // unaligned vector load
#define VSTORE(p, v) memcpy((p), &(v), sizeof(vf16)) // unaligned vector store
typedef float vf8 __attribute__((vector_size(8 * sizeof(float))));
typedef float vf4 __attribute__((vector_size(4 * sizeof(float))));

// The sum of the 16 lanes of *v in a fixed tree (lane l plus lane l + 8, then l + 4, then l + 2,
// then the last two): the same order on every clone and every split.
static inline __attribute__((always_inline)) float lanes_sum(const vf16 *v)
{
    vf8 lo, hi;
    memcpy(&lo, v, sizeof(lo));
    memcpy(&hi, (const char *)v + sizeof(lo), sizeof(hi));
    lo += hi;
    vf4 l4, h4;
    memcpy(&l4, &lo, sizeof(l4));
    memcpy(&h4, (const char *)&lo + sizeof(l4), sizeof(h4));
    l4 += h4;
    return (l4[0] + l4[2]) + (l4[1] + l4[3]);
}

// y (16·nv) (+)= Σ_k val[k]·x_k (16·nv) over the entries [k0, k1), x_k = X + col[k]·B (X already
// offset to the block's first column), nv = 1, 2 or 4 constant after inlining: the sums stay in
// nv vector registers across the whole row, and y is read (accumulate) and written once.
static inline __attribute__((always_inline)) void
spmm_vecs(int nv, int64_t B, int64_t k0, int64_t k1, const int32_t *restrict col,
          const float *restrict val, const float *restrict X, float *restrict y, bool accumulate)
{
    vf16 a0 = {0.0f}, a1 = {0.0f}, a2 = {0.0f}, a3 = {0.0f}, t;
    if (accumulate) {
        VLOAD(a0, y);
        if (nv > 1)
            VLOAD(a1, y + 16);
        if (nv > 2) {
            VLOAD(a2, y + 32);
            VLOAD(a3, y + 48);
        }
    }
    for (int64_t k = k0; k < k1; k++) {
        const float *restrict x = X + (int64_t)col[k] * B;
        const float v = val[k];
        VLOAD(t, x);
        a0 += v * t;
        if (nv > 1) {
            VLOAD(t, x + 16);
            a1 += v * t;
        }
        if (nv > 2) {
            VLOAD(t, x + 32);
            a2 += v * t;
            VLOAD(t, x + 48);
            a3 += v * t;
        }
    }
    VSTORE(y, a0);
    if (nv > 1)
        VSTORE(y + 16, a1);
    if (nv > 2) {
        VSTORE(y + 32, a2);
        VSTORE(y + 48, a3);
    }
}

// y (w), w < 16, (+)= Σ_k val[k]·x_k (w): the last columns of a row
static inline __attribute__((always_inline)) void
spmm_tail(int64_t w, int64_t B, int64_t k0, int64_t k1, const int32_t *restrict col,
          const float *restrict val, const float *restrict X, float *restrict y, bool accumulate)
{
    float acc[16];
    for (int64_t b = 0; b < w; b++)
        acc[b] = accumulate ? y[b] : 0.0f;
    for (int64_t k = k0; k < k1; k++) {
        const float *restrict x = X + (int64_t)col[k] * B;
        const float v = val[k];
        for (int64_t b = 0; b < w; b++)
            acc[b] += v * x[b];
    }
    for (int64_t b = 0; b < w; b++)
        y[b] = acc[b];
}

// y (1) (+)= Σ_k val[k]·x[col[k]] over [k0, k1): the B = 1 product (SpMV). Whole runs of 16
// entries go as one vector of 16 partial sums, their x gathered through a small array, added in
// the fixed tree at the end; the last < 16 (and short rows) one by one. Measured on 1024×1024
// against one scalar sum and against four: four interleaved scalar sums are what GCC 12's SLP
// vectorizer turns into emulated gathers (2.5× slower than this at 50% density).
static inline __attribute__((always_inline)) void
spmv_row(int64_t k0, int64_t k1, const int32_t *restrict col, const float *restrict val,
         const float *restrict x, float *restrict y, bool accumulate)
{
    float sum = 0.0f;
    int64_t k = k0;
    if (k1 - k0 >= LANES) {
        vf16 acc = {0.0f}, v, t;
        float g[LANES];
        for (; k + LANES <= k1; k += LANES) {
            for (int64_t l = 0; l < LANES; l++)
                g[l] = x[col[k + l]];
            VLOAD(t, g);
            VLOAD(v, val + k);
            acc += v * t;
        }
        sum = lanes_sum(&acc);
    }
    for (; k < k1; k++)
        sum += val[k] * x[col[k]];
    *y = accumulate ? *y + sum : sum;
}

// Rows [r0, r1), batch columns [c0, c1) of Y
FNET_VECTORIZE
static void spmm_piece(const struct csr_job *j, int64_t r0, int64_t r1, int64_t c0, int64_t c1)
{
    const int64_t B = j->B;
    const int32_t *restrict row_ptr = j->row_ptr, *restrict col = j->col;
    const float *restrict val = j->val, *restrict X = j->X;
    const bool acc = j->accumulate;
    for (int64_t i = r0; i < r1; i++) {
        const int64_t k0 = row_ptr[i], k1 = row_ptr[i + 1];
        float *y = j->out + i * B;
        if (B == 1) {
            spmv_row(k0, k1, col, val, X, y, acc);
            continue;
        }
        int64_t b = c0;
        for (; b + 64 <= c1; b += 64)
            spmm_vecs(4, B, k0, k1, col, val, X + b, y + b, acc);
        if (b + 32 <= c1) {
            spmm_vecs(2, B, k0, k1, col, val, X + b, y + b, acc);
            b += 32;
        }
        if (b + 16 <= c1) {
            spmm_vecs(1, B, k0, k1, col, val, X + b, y + b, acc);
            b += 16;
        }
        if (b < c1)
            spmm_tail(c1 - b, B, k0, k1, col, val, X + b, y + b, acc);
    }
}

static void spmm_range(void *arg, int64_t begin, int64_t end)
{
    const struct csr_job *j = arg;
    for (int64_t p = begin; p < end; p++) {
        int64_t r0 = 0, r1 = j->M, c0 = 0, c1 = j->B;
        if (j->by_cols)
            piece_cols(j, p, &c0, &c1);
        else
            piece_rows(j, p, &r0, &r1);
        spmm_piece(j, r0, r1, c0, c1);
    }
}

// ---- spmm_t: X (N, B) (+)= Aᵀ·Y ----

// Rows [x0, x1) of X (the entries of every row of A in those columns, found by binary search
// when the piece is not all of them), batch columns [c0, c1): X's rows are summed in increasing
// i, as on one thread.
FNET_VECTORIZE
static void spmm_t_piece(const struct csr_job *j, int64_t x0, int64_t x1, int64_t c0, int64_t c1)
{
    const int64_t B = j->B, w = c1 - c0;
    const int32_t *restrict row_ptr = j->row_ptr, *restrict col = j->col;
    const float *restrict val = j->val;
    float *restrict X = j->out;
    const bool every_row = x0 == 0 && x1 == j->N;
    if (!j->accumulate)
        for (int64_t r = x0; r < x1; r++)
            memset(X + r * B + c0, 0, (size_t)w * sizeof(float));
    for (int64_t i = 0; i < j->M; i++) {
        int64_t k0 = row_ptr[i], k1 = row_ptr[i + 1];
        if (!every_row) {
            k0 = entry_at(col, k0, k1, x0);
            k1 = entry_at(col, k0, k1, x1);
        }
        const float *restrict y = j->Y + i * B + c0;
        if (B == 1) {
            for (int64_t k = k0; k < k1; k++)
                X[col[k]] += val[k] * y[0];
            continue;
        }
        for (int64_t k = k0; k < k1; k++) {
            float *restrict x = X + (int64_t)col[k] * B + c0;
            const float v = val[k];
            for (int64_t b = 0; b < w; b++)
                x[b] += v * y[b];
        }
    }
}

static void spmm_t_range(void *arg, int64_t begin, int64_t end)
{
    const struct csr_job *j = arg;
    for (int64_t p = begin; p < end; p++) {
        int64_t x0 = 0, x1 = j->N, c0 = 0, c1 = j->B;
        if (j->by_cols) {
            piece_cols(j, p, &c0, &c1);
        } else {
            x0 = p * j->N / j->parts;
            x1 = (p + 1) * j->N / j->parts;
        }
        spmm_t_piece(j, x0, x1, c0, c1);
    }
}

// ---- sddmm: out[k] (+)= Y[i, :]·X[col[k], :] ----

// Σ_b y[b]·x[b] over n: whole runs of 64 into four vectors of 16 partial sums (so that the adds
// do not wait on one another), runs of 16 into the first, the vectors added in a fixed tree,
// then the last < 16 one by one.
static inline __attribute__((always_inline)) float dot(const float *restrict y,
                                                       const float *restrict x, int64_t n)
{
    float sum = 0.0f;
    int64_t b = 0;
    if (n >= LANES) {
        vf16 a0 = {0.0f}, a1 = {0.0f}, a2 = {0.0f}, a3 = {0.0f}, u, t;
        for (; b + 4 * LANES <= n; b += 4 * LANES) {
            VLOAD(u, y + b);
            VLOAD(t, x + b);
            a0 += u * t;
            VLOAD(u, y + b + LANES);
            VLOAD(t, x + b + LANES);
            a1 += u * t;
            VLOAD(u, y + b + 2 * LANES);
            VLOAD(t, x + b + 2 * LANES);
            a2 += u * t;
            VLOAD(u, y + b + 3 * LANES);
            VLOAD(t, x + b + 3 * LANES);
            a3 += u * t;
        }
        for (; b + LANES <= n; b += LANES) {
            VLOAD(u, y + b);
            VLOAD(t, x + b);
            a0 += u * t;
        }
        a0 = (a0 + a1) + (a2 + a3);
        sum = lanes_sum(&a0);
    }
    for (; b < n; b++)
        sum += y[b] * x[b];
    return sum;
}

// The entries of rows [r0, r1)
FNET_VECTORIZE
static void sddmm_piece(const struct csr_job *j, int64_t r0, int64_t r1)
{
    const int64_t B = j->B;
    const int32_t *restrict row_ptr = j->row_ptr, *restrict col = j->col;
    const float *restrict X = j->X;
    float *restrict out = j->out;
    const bool acc = j->accumulate;
    for (int64_t i = r0; i < r1; i++) {
        const float *restrict y = j->Y + i * B;
        const int64_t k0 = row_ptr[i], k1 = row_ptr[i + 1];
        if (B == 1) {
            for (int64_t k = k0; k < k1; k++)
                out[k] = acc ? out[k] + y[0] * X[col[k]] : y[0] * X[col[k]];
            continue;
        }
        for (int64_t k = k0; k < k1; k++) {
            float d = dot(y, X + (int64_t)col[k] * B, B);
            out[k] = acc ? out[k] + d : d;
        }
    }
}

static void sddmm_range(void *arg, int64_t begin, int64_t end)
{
    const struct csr_job *j = arg;
    for (int64_t p = begin; p < end; p++) {
        int64_t r0, r1;
        piece_rows(j, p, &r0, &r1);
        sddmm_piece(j, r0, r1);
    }
}

// ---- the ops ----

// Pieces for nnz·B multiply-adds on `threads` threads: one per thread, none below
// FNET_POOL_GRAIN (*pool set to NULL: the calling thread alone).
static int64_t pieces(struct fnet_pool **pool, int threads, int64_t nnz, int64_t B)
{
    if (*pool == NULL || threads < 2 || nnz * B < FNET_POOL_GRAIN) {
        *pool = NULL;
        return 1;
    }
    return threads;
}

// Y (M, B) (+)= A·X, split by batch columns when every piece gets SPLIT_COLS_MIN of them, else
// by rows balanced by entries (B = 1 is SpMV: rows).
#define SPMM_SPLIT_COLS_MIN 1024
void fnet_cpu_csr_spmm(struct fnet_pool *pool, int threads, int64_t M, int64_t N, int64_t B,
                       const int32_t *row_ptr, const int32_t *col, const float *val,
                       const float *X, float *Y, bool accumulate)
{
    if (M <= 0 || B <= 0)
        return;
    struct csr_job j = {.M = M, .N = N, .B = B, .row_ptr = row_ptr, .col = col, .val = val,
                        .X = X, .out = Y, .accumulate = accumulate};
    j.parts = pieces(&pool, threads, row_ptr[M], B);
    j.by_cols = B >= j.parts * SPMM_SPLIT_COLS_MIN;
    int o = split_override();
    if (o)
        j.by_cols = o == 2 && B >= j.parts * COL_GRAIN;
    fnet_pool_run(pool, j.parts, 1, spmm_range, &j);
}

#define SPMM_T_SPLIT_COLS_MIN 1024
void fnet_cpu_csr_spmm_t(struct fnet_pool *pool, int threads, int64_t M, int64_t N, int64_t B,
                         const int32_t *row_ptr, const int32_t *col, const float *val,
                         const float *Y, float *X, bool accumulate)
{
    if (N <= 0 || B <= 0)
        return;
    struct csr_job j = {.M = M, .N = N, .B = B, .row_ptr = row_ptr, .col = col, .val = val,
                        .Y = Y, .out = X, .accumulate = accumulate};
    j.parts = pieces(&pool, threads, row_ptr[M], B);
    if (j.parts > N)
        j.parts = N;
    j.by_cols = B >= j.parts * SPMM_T_SPLIT_COLS_MIN;
    int o = split_override();
    if (o)
        j.by_cols = o == 2 && B >= j.parts * COL_GRAIN;
    fnet_pool_run(j.parts > 1 ? pool : NULL, j.parts, 1, spmm_t_range, &j);
}

// out (nnz) (+)= the dots of Y's rows with X's rows at the entries, split by rows balanced by
// entries plus rows
void fnet_cpu_csr_sddmm(struct fnet_pool *pool, int threads, int64_t M, int64_t N, int64_t B,
                        const int32_t *row_ptr, const int32_t *col, const float *Y,
                        const float *X, float *out, bool accumulate)
{
    if (M <= 0)
        return;
    struct csr_job j = {.M = M, .N = N, .B = B, .row_ptr = row_ptr, .col = col, .X = X, .Y = Y,
                        .out = out, .accumulate = accumulate};
    j.parts = pieces(&pool, threads, row_ptr[M], B);
    fnet_pool_run(pool, j.parts, 1, sddmm_range, &j);
}
