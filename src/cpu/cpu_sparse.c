/* The CPU backend's CSR ops (src/core/backend.h, "sparse matrices"; src/cpu/ref_sparse.c is the
 * oracle): vectorized B-long axpys and dots over the feature-major operands, spmm's block of 64
 * batch columns summed in vector registers across a row's entries, split over the ctx's pool by
 * rows of the output (bench/bench_csr.c measures them). Each output is summed in the same order
 * whatever the split, so the results are the same bits for every thread count. */
#include "cpu/ref.h"
#include "cpu/pool.h"

#include <string.h>

// Floats of one vector of partial sums (vf16 below): one AVX-512 register.
#define LANES 16
// Batch columns whose sums spmm keeps in registers while it walks a row's entries: 4 AVX-512
// (8 AVX2) registers, Y written once. Narrower pieces of a row go by 32, 16, then the rest.
#define SPMM_BLOCK (4 * LANES)

// One call's operands, split into `parts` pieces by rows of the output: Y's (spmm, sddmm) or X's
// (spmm_t). Splitting by blocks of batch columns instead (each worker a column range of every
// row) was measured on 1024×1024 and 4096×4096 at B = 32..256 on 2 threads and was never faster:
// as fast at best, 2× slower where a worker's range is one vector (B = 32), and several times
// slower when the operands are not 64-byte aligned (neighbouring ranges share cache lines).
struct csr_job {
    int64_t M, N, B;
    const int32_t *row_ptr, *col;
    const float *val;
    const float *X, *Y; // the dense inputs (X for spmm, Y for spmm_t, both for sddmm)
    float *out;         // Y for spmm, X for spmm_t, out (nnz) for sddmm
    bool accumulate;
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

// CALL(w) with w the constant n for n = 1..15, else CALL(n): a kernel inlined with a narrow
// width that is a constant unrolls into registers. With the width a variable, GCC's per-entry
// loops over fewer than 16 floats ran slower at B = 2..8 than at B = 16, which does twice the
// work or more (spmm up to 2.6×); the constant widths made B = 2..8 1.1-5.8× faster (1024×1024
// at 50%, one thread).
#define WITH_NARROW_WIDTH(n, CALL)                                                                 \
    switch (n) {                                                                                   \
    case 1: CALL(1); break;                                                                        \
    case 2: CALL(2); break;                                                                        \
    case 3: CALL(3); break;                                                                        \
    case 4: CALL(4); break;                                                                        \
    case 5: CALL(5); break;                                                                        \
    case 6: CALL(6); break;                                                                        \
    case 7: CALL(7); break;                                                                        \
    case 8: CALL(8); break;                                                                        \
    case 9: CALL(9); break;                                                                        \
    case 10: CALL(10); break;                                                                      \
    case 11: CALL(11); break;                                                                      \
    case 12: CALL(12); break;                                                                      \
    case 13: CALL(13); break;                                                                      \
    case 14: CALL(14); break;                                                                      \
    case 15: CALL(15); break;                                                                      \
    default: CALL(n); break;                                                                       \
    }

// ---- spmm: Y (M, B) (+)= A·X ----

// 16 floats as one value of GCC's (and clang's) vector extension: one AVX-512 register on the
// x86-64-v4 clone, two AVX2 ones on v3, four SSE ones on the baseline. Sums kept in plain float
// arrays stay in memory (GCC turns their set-up into memcpy/memset and loads and stores them on
// every entry); sums in variables of this type stay in registers. Element-wise + and * round as
// the scalar ones, so every clone gives the same bits.
typedef float vf16 __attribute__((vector_size(LANES * sizeof(float))));
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

// y (w), w < 16, (+)= Σ_k val[k]·x_k (w): the last columns of a row, w a constant
// (WITH_NARROW_WIDTH)
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

// Rows [r0, r1) of Y, each in blocks of SPMM_BLOCK, 32, 16 columns and the rest
FNET_VECTORIZE
static void spmm_piece(const struct csr_job *j, int64_t r0, int64_t r1)
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
        int64_t b = 0;
        for (; b + SPMM_BLOCK <= B; b += SPMM_BLOCK)
            spmm_vecs(4, B, k0, k1, col, val, X + b, y + b, acc);
        if (b + 32 <= B) {
            spmm_vecs(2, B, k0, k1, col, val, X + b, y + b, acc);
            b += 32;
        }
        if (b + 16 <= B) {
            spmm_vecs(1, B, k0, k1, col, val, X + b, y + b, acc);
            b += 16;
        }
#define SPMM_TAIL(w) spmm_tail(w, B, k0, k1, col, val, X + b, y + b, acc)
        if (b < B)
            WITH_NARROW_WIDTH(B - b, SPMM_TAIL)
#undef SPMM_TAIL
    }
}

static void spmm_range(void *arg, int64_t begin, int64_t end)
{
    const struct csr_job *j = arg;
    for (int64_t p = begin; p < end; p++) {
        int64_t r0, r1;
        piece_rows(j, p, &r0, &r1);
        spmm_piece(j, r0, r1);
    }
}

// ---- spmm_t: X (N, B) (+)= Aᵀ·Y ----

// X[col[k], :] (w) += val[k]·y (w) for the entries [k0, k1) of one row; w is the row length of X
// and Y (B), a constant when narrow (WITH_NARROW_WIDTH)
static inline __attribute__((always_inline)) void
scatter(int64_t w, int64_t k0, int64_t k1, const int32_t *restrict col, const float *restrict val,
        const float *restrict y, float *restrict X)
{
    // explicit vectors of 16, 8 and 4, then single floats: unrolled for a constant w, GCC leaves
    // a plain loop scalar (it cannot tell x from y once inlined)
    for (int64_t k = k0; k < k1; k++) {
        float *restrict x = X + (int64_t)col[k] * w;
        const float v = val[k];
        int64_t b = 0;
        for (; b + LANES <= w; b += LANES) {
            vf16 t, u;
            VLOAD(t, x + b);
            VLOAD(u, y + b);
            t += v * u;
            VSTORE(x + b, t);
        }
        if (b + 8 <= w) {
            vf8 t, u;
            memcpy(&t, x + b, sizeof(t));
            memcpy(&u, y + b, sizeof(u));
            t += v * u;
            memcpy(x + b, &t, sizeof(t));
            b += 8;
        }
        if (b + 4 <= w) {
            vf4 t, u;
            memcpy(&t, x + b, sizeof(t));
            memcpy(&u, y + b, sizeof(u));
            t += v * u;
            memcpy(x + b, &t, sizeof(t));
            b += 4;
        }
        for (; b < w; b++)
            x[b] += v * y[b];
    }
}

// Rows [x0, x1) of X: the entries of each row of A in columns [x0, x1), found by binary search
// (for the ends of the range that are not X's), scattered as B-long axpys; every row of X sums
// its terms in increasing i, as on one thread.
FNET_VECTORIZE
static void spmm_t_piece(const struct csr_job *j, int64_t x0, int64_t x1)
{
    const int64_t B = j->B;
    const int32_t *restrict row_ptr = j->row_ptr, *restrict col = j->col;
    const float *restrict val = j->val;
    float *restrict X = j->out;
    if (!j->accumulate)
        for (int64_t r = x0; r < x1; r++)
            memset(X + r * B, 0, (size_t)B * sizeof(float));
    for (int64_t i = 0; i < j->M; i++) {
        int64_t k0 = row_ptr[i], k1 = row_ptr[i + 1];
        if (x0 > 0)
            k0 = entry_at(col, k0, k1, x0);
        if (x1 < j->N)
            k1 = entry_at(col, k0, k1, x1);
        const float *restrict y = j->Y + i * B;
#define SCATTER(w) scatter(w, k0, k1, col, val, y, X)
        WITH_NARROW_WIDTH(B, SCATTER)
#undef SCATTER
    }
}

static void spmm_t_range(void *arg, int64_t begin, int64_t end)
{
    const struct csr_job *j = arg;
    for (int64_t p = begin; p < end; p++)
        spmm_t_piece(j, p * j->N / j->parts, (p + 1) * j->N / j->parts);
}

// ---- sddmm: out[k] (+)= Y[i, :]·X[col[k], :] ----

// Σ_b y[b]·x[b] over n: vector c of the n/16 whole ones goes into partial sums a(c mod 4) (four
// chains of adds that do not wait on one another), the first product of each chain set rather
// than added to zero; then the chains are added in a fixed tree, the lanes too (lanes_sum), and
// the last n mod 16 products after them. The order depends on n alone.
static inline __attribute__((always_inline)) float dot(const float *restrict y,
                                                       const float *restrict x, int64_t n)
{
    const int64_t vecs = n / LANES;
    float sum = 0.0f;
    if (vecs > 0) {
        vf16 a0, a1 = {0.0f}, a2 = {0.0f}, a3 = {0.0f}, u, t; // a1..a3 set before use
#define DOT_VEC(acc, c, op)                                                                        \
    do {                                                                                           \
        VLOAD(u, y + (c) * LANES);                                                                 \
        VLOAD(t, x + (c) * LANES);                                                                 \
        acc op u * t;                                                                              \
    } while (0)
        DOT_VEC(a0, 0, =);
        if (vecs > 1)
            DOT_VEC(a1, 1, =);
        if (vecs > 2)
            DOT_VEC(a2, 2, =);
        if (vecs > 3)
            DOT_VEC(a3, 3, =);
        int64_t c = 4;
        for (; c + 4 <= vecs; c += 4) {
            DOT_VEC(a0, c, +=);
            DOT_VEC(a1, c + 1, +=);
            DOT_VEC(a2, c + 2, +=);
            DOT_VEC(a3, c + 3, +=);
        }
        if (c < vecs)
            DOT_VEC(a0, c, +=);
        if (c + 1 < vecs)
            DOT_VEC(a1, c + 1, +=);
        if (c + 2 < vecs)
            DOT_VEC(a2, c + 2, +=);
#undef DOT_VEC
        if (vecs > 1)
            a0 += a1;
        if (vecs > 3)
            a2 += a3;
        if (vecs > 2)
            a0 += a2;
        sum = lanes_sum(&a0);
    }
    // the last n mod 16: 8 and 4 at a time, each added in a fixed tree, then one by one
    int64_t b = vecs * LANES;
    if (b + 8 <= n) {
        vf8 u, t;
        memcpy(&u, y + b, sizeof(u));
        memcpy(&t, x + b, sizeof(t));
        u *= t;
        sum += ((u[0] + u[4]) + (u[2] + u[6])) + ((u[1] + u[5]) + (u[3] + u[7]));
        b += 8;
    }
    if (b + 4 <= n) {
        vf4 u, t;
        memcpy(&u, y + b, sizeof(u));
        memcpy(&t, x + b, sizeof(t));
        u *= t;
        sum += (u[0] + u[2]) + (u[1] + u[3]);
        b += 4;
    }
    for (; b < n; b++)
        sum += y[b] * x[b];
    return sum;
}

// out[k] (+)= y (w)·X[col[k], :] (w) for the entries [k0, k1) of one row; w = B, a constant when
// narrow (WITH_NARROW_WIDTH)
static inline __attribute__((always_inline)) void
dots(int64_t w, int64_t k0, int64_t k1, const int32_t *restrict col, const float *restrict y,
     const float *restrict X, float *restrict out, bool accumulate)
{
    for (int64_t k = k0; k < k1; k++) {
        float d = dot(y, X + (int64_t)col[k] * w, w);
        out[k] = accumulate ? out[k] + d : d;
    }
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
#define DOTS(w) dots(w, k0, k1, col, y, X, out, acc)
        WITH_NARROW_WIDTH(B, DOTS)
#undef DOTS
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

// Y (M, B) (+)= A·X, split by rows balanced by entries plus rows
void fnet_cpu_csr_spmm(struct fnet_pool *pool, int threads, int64_t M, int64_t N, int64_t B,
                       const int32_t *row_ptr, const int32_t *col, const float *val,
                       const float *X, float *Y, bool accumulate)
{
    if (M <= 0 || B <= 0)
        return;
    struct csr_job j = {.M = M, .N = N, .B = B, .row_ptr = row_ptr, .col = col, .val = val,
                        .X = X, .out = Y, .accumulate = accumulate};
    j.parts = pieces(&pool, threads, row_ptr[M], B);
    fnet_pool_run(pool, j.parts, 1, spmm_range, &j);
}

// Every piece of spmm_t searches each row of A for its range of columns (two binary searches):
// it splits only where a row's axpys outweigh that, from B = SPMM_T_SPLIT_B and
// SPMM_T_SPLIT_ROW_MACS multiply-adds per row of A on average. Measured on 1024×1024, 2 threads
// against 1: B = 1..8 at 1-50% density no faster or up to 1.7× slower; B = 16 at 1% (160
// multiply-adds per row) 1.07× slower, at 5% 0.90×, at 50% 0.63×; B = 32 at 1% 0.89×.
#define SPMM_T_SPLIT_B 16
#define SPMM_T_SPLIT_ROW_MACS 256

// X (N, B) (+)= Aᵀ·Y, split by rows of X (columns of A) in equal counts
void fnet_cpu_csr_spmm_t(struct fnet_pool *pool, int threads, int64_t M, int64_t N, int64_t B,
                         const int32_t *row_ptr, const int32_t *col, const float *val,
                         const float *Y, float *X, bool accumulate)
{
    if (N <= 0 || B <= 0)
        return;
    struct csr_job j = {.M = M, .N = N, .B = B, .row_ptr = row_ptr, .col = col, .val = val,
                        .Y = Y, .out = X, .accumulate = accumulate};
    const int64_t nnz = row_ptr[M];
    if (B < SPMM_T_SPLIT_B || nnz * B < SPMM_T_SPLIT_ROW_MACS * M)
        pool = NULL;
    j.parts = pieces(&pool, threads, nnz, B);
    if (j.parts > N)
        j.parts = N;
    fnet_pool_run(pool, j.parts, 1, spmm_t_range, &j);
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
