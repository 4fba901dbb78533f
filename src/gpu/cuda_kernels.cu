/* The CUDA backend's own kernels (declared in src/gpu/cuda_kernels.h): element-wise, layout,
 * reduction, loss, data and optimizer ops, each the reference backend's loop (src/cpu/ref_*.c)
 * spread over threads with the same per-element arithmetic. Built with --fmad=false so that no
 * a·b + c is fused; reductions are deterministic: a fixed split into blocks that depends on the
 * size alone, fixed trees in shared memory, partials in `scratch`, one block for the result. */
#include "gpu/cuda_kernels.h"

#include <math.h>

namespace {

// ---- launch shapes ----

constexpr int kThreads = 256;          // threads of the element-wise blocks
constexpr int64_t kMaxBlocks = 4096;   // grid-stride loops beyond this many blocks
constexpr int kReduceThreads = 256;    // a power of two: the shared-memory trees halve it
constexpr int64_t kReduceBlocks = 1024; // partial results of one reduction, at most
constexpr int64_t kReduceChunk = 4096; // elements per reduction block before another is added
constexpr int kWarps = kThreads / 32;  // loss kernels: one warp per row
constexpr int kTile = 32, kTileRows = 8; // transpose tiles: 32x32 floats, 32x8 threads
constexpr unsigned kFullMask = 0xffffffffu;

// Two partial results per block (regularize, the losses) must fit the scratch space.
static_assert(2 * kReduceBlocks <= FNET_CUDA_SCRATCH, "scratch too small for the partials");
static_assert((kReduceThreads & (kReduceThreads - 1)) == 0, "tree reduction needs a power of 2");
static_assert(kThreads % 32 == 0, "whole warps");

// ceil(work / per) blocks, at least 1, at most cap (then the kernels' loops stride over the rest)
unsigned blocks_for(int64_t work, int64_t per, int64_t cap)
{
    const int64_t b = work / per + (work % per != 0);
    return (unsigned)(b < 1 ? 1 : b > cap ? cap : b);
}

// The number of reduction blocks: a function of n alone, never of the device, so that the same
// n sums in the same order everywhere.
unsigned reduce_blocks(int64_t n)
{
    return blocks_for(n, kReduceChunk, kReduceBlocks);
}

// Element-wise kernels: one thread per element up to kMaxBlocks blocks, then grid-stride loops.
unsigned elementwise_blocks(int64_t n)
{
    return blocks_for(n, kThreads, kMaxBlocks);
}

// Kernels that split a flat index with / and % run them in 32 bits when the whole range fits:
// 64-bit division is a long software routine. i + stride (stride <= kMaxBlocks·kThreads = 2^20)
// stays below 2^32, so the unsigned 32-bit loop never wraps.
bool fits32(int64_t total)
{
    return total <= INT32_MAX;
}

__device__ inline int64_t thread_first()
{
    return (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
}

__device__ inline int64_t thread_stride()
{
    return (int64_t)gridDim.x * blockDim.x;
}

// ---- per-element arithmetic (__host__ too, so that it can be compiled for the host and compared
// with the reference's formulas, as it was when it was written) ----
// Each is the reference's expression as written (C's left-to-right association, float where it
// computes in float); with --fmad=false the device rounds every step as the host does.

__host__ __device__ inline float axpby_elem(float a, float x, float b, float y)
{
    return a * x + b * y;
}

__host__ __device__ inline float sigmoid_elem(float x)
{
    // stable for large |x|: never overflows expf (ref_elementwise.c's sigmoidf)
    if (x >= 0.0f)
        return 1.0f / (1.0f + expf(-x));
    const float e = expf(x);
    return e / (1.0f + e);
}

__host__ __device__ inline float act_forward_elem(int act, float x)
{
    switch (act) {
    case 0: return x > 0.0f ? x : 0.0f;
    case 1: return tanhf(x);
    default: return sigmoid_elem(x);
    }
}

// f' written through y = f(x): relu 1[y>0], tanh 1−y², sigmoid y(1−y)
__host__ __device__ inline float act_backward_elem(int act, float y, float dy)
{
    switch (act) {
    case 0: return y > 0.0f ? dy : 0.0f;
    case 1: return dy * (1.0f - y * y);
    default: return dy * y * (1.0f - y);
    }
}

// SplitMix64's finalizer and the counter-based generator of core/internal.h (docs/design.md,
// "Random numbers"), callable on the device
__host__ __device__ inline uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

__host__ __device__ inline uint64_t counter_key(uint64_t seed, uint64_t step)
{
    return mix64(seed ^ mix64(step + UINT64_C(0x9E3779B97F4A7C15)));
}

__host__ __device__ inline float dropout_elem(uint64_t key, uint64_t i, uint32_t threshold,
                                              float keep)
{
    const uint64_t bits = mix64(key + (i + 1) * UINT64_C(0x9E3779B97F4A7C15));
    return (uint32_t)(bits >> 40) < threshold ? 0.0f : keep;
}

// The dropout scalars, computed as fnet_ref_dropout_span computes them (on the host, in the
// launcher: nothing device-specific can enter)
struct DropoutScalars {
    uint32_t threshold;
    float keep;
};

__host__ __device__ inline DropoutScalars dropout_scalars(float p)
{
    return DropoutScalars{(uint32_t)((double)p * 16777216.0), 1.0f / (1.0f - p)};
}

// g += l1·sign(w) + l2·w, sign(0) = 0
__host__ __device__ inline float regularize_grad_elem(float g, float w, float l1, float l2)
{
    const float sgn = (float)((w > 0.0f) - (w < 0.0f));
    return g + (l1 * sgn + l2 * w);
}

__host__ __device__ inline void sgd_elem(float &w, float g, float lr, float wd)
{
    const float gi = g + wd * w;
    w -= lr * gi;
}

__host__ __device__ inline void momentum_elem(float &w, float g, float &v, float lr, float mu,
                                              float wd, bool nesterov)
{
    const float gi = g + wd * w;
    const float vi = mu * v + gi;
    v = vi;
    if (nesterov)
        w -= lr * (gi + mu * vi);
    else
        w -= lr * vi;
}

__host__ __device__ inline void rmsprop_elem(float &w, float g, float &s, float lr, float rho,
                                             float one_m_rho, float eps, float wd)
{
    const float gi = g + wd * w;
    const float si = rho * s + one_m_rho * gi * gi;
    s = si;
    w -= lr * gi / (sqrtf(si) + eps);
}

// Adam's two scalars, in double and rounded once, as fnet_ref_adam_step computes them. On the
// host for the eager step, on the device for the replayed one (step_dev): double division,
// reciprocal and sqrt are correctly rounded on both (PTX div.rn/rcp.rn/sqrt.rn.f64; nvcc's
// fast-math options touch single precision only, and none is used), and so is the rounding to
// float, so the two agree bit for bit. (nvcc makes the first one float division, div.rn.f32:
// the same value, a double having more than twice a float's precision.)
struct AdamScalars {
    float step, inv_sqrt_bc2;
};

__host__ __device__ inline AdamScalars adam_scalars(const struct fnet_cuda_hyper &a)
{
    return AdamScalars{(float)((double)a.lr / (double)a.bc1),
                       (float)(1.0 / sqrt((double)a.bc2))};
}

// Where an optimizer kernel's hyper-parameters come from: one kernel per optimizer, templated
// on this. load(a) gives them to the thread, or false when the step is to be skipped; adam(a)
// gives Adam's scalars for them.
//
// HyperByValue: the eager steps' (sgd_step, ..., adam_step), copied into the launch with Adam's
// scalars computed on the host; never skipped.
struct HyperByValue {
    fnet_cuda_hyper h;
    AdamScalars sc;

    __device__ bool load(fnet_cuda_hyper &a) const
    {
        a = h;
        return true;
    }
    __device__ AdamScalars adam(const fnet_cuda_hyper &) const { return sc; }
};

// HyperOnDevice: the replayed step's (step_dev), read from device memory when the kernel runs,
// so that a captured graph sees each replay's values; Adam's scalars computed by every thread
// from them. skip (device, may be NULL): loss_step's accumulator, the step skipped once its [1]
// (the first step whose loss was not finite) is set, i.e. >= 0. Each thread reads both once.
struct HyperOnDevice {
    const fnet_cuda_hyper *h;
    const double *skip;

    __device__ bool load(fnet_cuda_hyper &a) const
    {
        if (skip != nullptr && skip[1] >= 0.0)
            return false;
        a = *h;
        return true;
    }
    __device__ AdamScalars adam(const fnet_cuda_hyper &a) const { return adam_scalars(a); }
};

__host__ __device__ inline void adam_elem(float &w, float g, float &m, float &v, float b1,
                                          float one_m_b1, float b2, float one_m_b2, float eps,
                                          float wd, AdamScalars sc)
{
    const float gi = g + wd * w;
    const float mi = b1 * m + one_m_b1 * gi;
    const float vi = b2 * v + one_m_b2 * gi * gi;
    m = mi;
    v = vi;
    w -= sc.step * mi / (sqrtf(vi) * sc.inv_sqrt_bc2 + eps);
}

// ---- the transpose's tiles ----

// Thread (tx, ty)'s share of loading tile (r0, c0) of in (rows, cols): tile[i][tx] =
// in[r0 + i, c0 + tx], neighbouring threads reading neighbouring columns
__host__ __device__ inline void tile_load(float (*tile)[kTile + 1], int64_t rows, int64_t cols,
                                          const float *__restrict__ in, int64_t r0, int64_t c0,
                                          int tx, int ty)
{
    for (int i = ty; i < kTile; i += kTileRows) {
        const int64_t r = r0 + i, c = c0 + tx;
        if (r < rows && c < cols)
            tile[i][tx] = in[r * cols + c];
    }
}

// Thread (tx, ty)'s share of storing the tile into out (cols, rows): out[c0 + i, r0 + tx] =
// in[r0 + tx, c0 + i] = tile[tx][i], neighbouring threads writing neighbouring columns
__host__ __device__ inline void tile_store(const float (*tile)[kTile + 1], int64_t rows,
                                           int64_t cols, float *__restrict__ out, int64_t r0,
                                           int64_t c0, int tx, int ty, bool accumulate)
{
    for (int i = ty; i < kTile; i += kTileRows) {
        const int64_t orow = c0 + i, ocol = r0 + tx;
        if (orow < cols && ocol < rows) {
            float *o = out + orow * rows + ocol;
            const float v = tile[tx][i];
            *o = accumulate ? *o + v : v;
        }
    }
}

// ---- one element of the kernels that split a flat index (I: uint32_t or uint64_t) ----

// out (Q, P, R) element o (+)= in (P, Q, R) element (p, q, r)
template <typename I>
__host__ __device__ inline void permute_021_at(I o, I P, I Q, I R, const float *__restrict__ in,
                                               float *__restrict__ out, bool accumulate)
{
    const I r = o % R, qp = o / R;
    const I p = qp % P, q = qp / P;
    const float v = in[((int64_t)p * Q + q) * R + r];
    out[o] = accumulate ? out[o] + v : v;
}

// y (·, n) element i = bias[i mod n], or += it
template <typename I>
__host__ __device__ inline void bias_at(I i, I n, const float *bias, float *y, bool add)
{
    const float b = bias[i % n];
    y[i] = add ? y[i] + b : b;
}

// Complex value f of C[m, j] (+)= Σ_k op_a(A[m, k]) ∘ op_b(B[k, j]), i = (m·N + j)·F + f, k in
// order and in double as fnet_ref_cmac: the products of floats are exact in double, so only the
// sums round. sa, sb: −1 to conjugate.
template <typename I>
__host__ __device__ inline void cmac_at(I i, I F, I N, int64_t K, const float *__restrict__ A,
                                        int64_t a_m, int64_t a_k, double sa,
                                        const float *__restrict__ B, int64_t b_k, int64_t b_n,
                                        double sb, float *__restrict__ C, int64_t c_m,
                                        int64_t c_n, bool accumulate)
{
    const int64_t F2 = 2 * (int64_t)F;
    const I f = i % F, mj = i / F;
    const I j = mj % N, m = mj / N;
    float *c = C + F2 * ((int64_t)m * c_m + (int64_t)j * c_n) + 2 * (int64_t)f;
    double re = accumulate ? (double)c[0] : 0.0;
    double im = accumulate ? (double)c[1] : 0.0;
    const float *a = A + F2 * ((int64_t)m * a_m) + 2 * (int64_t)f;
    const float *b = B + F2 * ((int64_t)j * b_n) + 2 * (int64_t)f;
    for (int64_t k = 0; k < K; k++) {
        const float *ak = a + F2 * (k * a_k), *bk = b + F2 * (k * b_k);
        const double ar = ak[0], ai = sa * ak[1], br = bk[0], bi = sb * bk[1];
        re += ar * br - ai * bi;
        im += ar * bi + ai * br;
    }
    c[0] = (float)re;
    c[1] = (float)im;
}

// x (B, d) element i = (float)src[idx[r]·d + j] · scale, i = r·d + j
template <typename I>
__host__ __device__ inline void u8_to_float_at(I i, I d, const uint8_t *__restrict__ src,
                                               const int64_t *__restrict__ idx, float scale,
                                               float *__restrict__ x)
{
    const I r = i / d, j = i - r * d;
    x[i] = (float)src[idx[r] * (int64_t)d + (int64_t)j] * scale;
}

// The argmax of a row as the reference's scan finds it (the first maximum; `v[k] > v[best]`
// never moves onto a NaN, and a NaN at 0 stays the answer) as an associative pick over
// candidates, so that each lane can scan its own elements and the lanes combine in any tree.
// i < 0: no candidate yet (the lane saw only NaNs).
struct ArgBest {
    float v;
    int64_t i;
};

__host__ __device__ inline ArgBest arg_pick(ArgBest a, ArgBest b)
{
    if (b.i < 0)
        return a;
    if (a.i < 0)
        return b;
    if (b.v > a.v)
        return b;
    if (a.v > b.v)
        return a;
    return b.i < a.i ? b : a; // equal (±0 included): the first
}

// Element k (value v) scanned after the lane's earlier, smaller k: strictly greater moves.
__host__ __device__ inline ArgBest arg_scan(ArgBest best, float v, int64_t k)
{
    if (v == v && (best.i < 0 || v > best.v))
        return ArgBest{v, k};
    return best;
}

// The scan's answer from the combined candidates and the row's first element.
__host__ __device__ inline ArgBest arg_finish(ArgBest best, float z0)
{
    return z0 != z0 ? ArgBest{z0, 0} : best;
}

// ---- warp and block helpers ----

// The row's argmax on every lane of the warp; all 32 lanes call it.
__device__ ArgBest warp_argmax(const float *z, int64_t K, int lane)
{
    const float z0 = z[0]; // read before the shuffles, which the row's writers wait for
    ArgBest best{0.0f, -1};
    for (int64_t k = lane; k < K; k += 32)
        best = arg_scan(best, z[k], k);
    for (int off = 16; off > 0; off >>= 1) {
        ArgBest other;
        other.v = __shfl_xor_sync(kFullMask, best.v, off);
        other.i = __shfl_xor_sync(kFullMask, (long long)best.i, off);
        best = arg_pick(best, other);
    }
    return arg_finish(best, z0);
}

// Σ of the warp's terms in the order of k: term (on lane k % 32 of chunk c) for k = c..c+cnt−1,
// added one after the other on every lane, so a row sums in the reference's order. All lanes
// call it with the same cnt.
__device__ double warp_ordered_sum(double sum, double term, int cnt)
{
    for (int l = 0; l < cnt; l++)
        sum += __shfl_sync(kFullMask, term, l);
    return sum;
}

struct SumOp {
    __device__ double operator()(double a, double b) const { return a + b; }
};

// max with NaNs skipped; the partials it sees are never NaN (amax's start at 0)
struct MaxOp {
    __device__ double operator()(double a, double b) const { return b > a ? b : a; }
};

// v of every thread combined in a fixed tree; the result on every thread. blockDim.x must be
// kReduceThreads and every thread of the block must call it.
template <typename Op>
__device__ double block_reduce(double v, double *sh, Op op)
{
    const int t = threadIdx.x;
    sh[t] = v;
    __syncthreads();
    for (int half = kReduceThreads / 2; half > 0; half >>= 1) {
        if (t < half)
            sh[t] = op(sh[t], sh[t + half]);
        __syncthreads();
    }
    const double r = sh[0];
    __syncthreads(); // sh free for the next call
    return r;
}

// Thread t's share of `count` partials (t, t + kReduceThreads, ...) folded in order, then the
// block's tree; one block of kReduceThreads.
template <typename Op>
__device__ double fold_partials(int64_t count, const double *partials, double init, Op op,
                                double *sh)
{
    double v = init;
    for (int64_t i = threadIdx.x; i < count; i += kReduceThreads)
        v = op(v, partials[i]);
    return block_reduce(v, sh, op);
}

// ---- memory, BLAS-shaped ----

// x (n) = value
__global__ void __launch_bounds__(kThreads) fill_kernel(int64_t n, float value, float *x)
{
    for (int64_t i = thread_first(); i < n; i += thread_stride())
        x[i] = value;
}

// y (n) = (a·x) + (b·y), or a·x without reading y when b == 0; x == y allowed
__global__ void __launch_bounds__(kThreads)
    axpby_kernel(int64_t n, float a, const float *x, float b, float *y)
{
    if (b == 0.0f) {
        for (int64_t i = thread_first(); i < n; i += thread_stride())
            y[i] = a * x[i];
    } else {
        for (int64_t i = thread_first(); i < n; i += thread_stride())
            y[i] = axpby_elem(a, x[i], b, y[i]);
    }
}

// partials (gridDim.x) = Σ x·y over each block's share, products and sums in double
__global__ void __launch_bounds__(kReduceThreads)
    dot_partial_kernel(int64_t n, const float *x, const float *y, double *partials)
{
    __shared__ double sh[kReduceThreads];
    double acc = 0.0;
    for (int64_t i = thread_first(); i < n; i += thread_stride())
        acc += (double)x[i] * (double)y[i];
    const double r = block_reduce(acc, sh, SumOp());
    if (threadIdx.x == 0)
        partials[blockIdx.x] = r;
}

// partials (gridDim.x) = max |x| over each block's share, NaNs skipped, in float as the reference
__global__ void __launch_bounds__(kReduceThreads)
    amax_partial_kernel(int64_t n, const float *x, double *partials)
{
    __shared__ double sh[kReduceThreads];
    float m = 0.0f;
    for (int64_t i = thread_first(); i < n; i += thread_stride()) {
        const float a = fabsf(x[i]);
        m = a > m ? a : m;
    }
    const double r = block_reduce((double)m, sh, MaxOp());
    if (threadIdx.x == 0)
        partials[blockIdx.x] = r;
}

// out[0] = Σ partials (count); 0 for count 0
__global__ void __launch_bounds__(kReduceThreads)
    sum_finish_kernel(int64_t count, const double *partials, double *out)
{
    __shared__ double sh[kReduceThreads];
    const double r = fold_partials(count, partials, 0.0, SumOp(), sh);
    if (threadIdx.x == 0)
        out[0] = r;
}

// out[0] = max partials (count); 0 for count 0
__global__ void __launch_bounds__(kReduceThreads)
    max_finish_kernel(int64_t count, const double *partials, double *out)
{
    __shared__ double sh[kReduceThreads];
    const double r = fold_partials(count, partials, 0.0, MaxOp(), sh);
    if (threadIdx.x == 0)
        out[0] = r;
}

// ---- layout ----

// out (cols, rows) (+)= in (rows, cols)ᵀ through 32x32 tiles in shared memory, so that both the
// reads and the writes are whole rows of 32 floats; the grid strides over the tiles.
__global__ void __launch_bounds__(kTile * kTileRows)
    transpose_kernel(int64_t rows, int64_t cols, const float *__restrict__ in,
                     float *__restrict__ out, bool accumulate)
{
    __shared__ float tile[kTile][kTile + 1]; // +1: a column of the tile spans 32 banks
    const int tx = threadIdx.x, ty = threadIdx.y;
    const int64_t tiles_r = rows / kTile + (rows % kTile != 0);
    const int64_t tiles_c = cols / kTile + (cols % kTile != 0);
    // loop bounds depend on the block alone: every thread reaches every __syncthreads
    for (int64_t tr = blockIdx.y; tr < tiles_r; tr += gridDim.y)
        for (int64_t tc = blockIdx.x; tc < tiles_c; tc += gridDim.x) {
            tile_load(tile, rows, cols, in, tr * kTile, tc * kTile, tx, ty);
            __syncthreads();
            tile_store(tile, rows, cols, out, tr * kTile, tc * kTile, tx, ty, accumulate);
            __syncthreads(); // the tile is read before the next one overwrites it
        }
}

// out (Q, P, R) (+)= in (P, Q, R) for R > 1, one thread per element of out: the writes are
// coalesced and the reads come in runs of R (R == 1 is a transpose and takes the tiles).
template <typename I>
__global__ void __launch_bounds__(kThreads)
    permute_021_kernel(I total, I P, I Q, I R, const float *__restrict__ in,
                       float *__restrict__ out, bool accumulate)
{
    for (I o = (I)blockIdx.x * blockDim.x + threadIdx.x; o < total;
         o += (I)gridDim.x * blockDim.x)
        permute_021_at(o, P, Q, R, in, out, accumulate);
}

// ---- element-wise ----

// y (B, n) = bias (n) broadcast, or y += bias; flat over the B·n elements
template <typename I>
__global__ void __launch_bounds__(kThreads)
    bias_kernel(I total, I n, const float *bias, float *y, bool add)
{
    for (I i = (I)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (I)gridDim.x * blockDim.x)
        bias_at(i, n, bias, y, add);
}

// y (n) = f(x (n)); x == y allowed
template <int ACT>
__global__ void __launch_bounds__(kThreads) act_forward_kernel(int64_t n, const float *x, float *y)
{
    for (int64_t i = thread_first(); i < n; i += thread_stride())
        y[i] = act_forward_elem(ACT, x[i]);
}

// dx (n) = dy ⊙ f'(.) from y (n); dx == dy allowed
template <int ACT>
__global__ void __launch_bounds__(kThreads)
    act_backward_kernel(int64_t n, const float *y, const float *dy, float *dx)
{
    for (int64_t i = thread_first(); i < n; i += thread_stride())
        dx[i] = act_backward_elem(ACT, y[i], dy[i]);
}

// y (n) = x ⊙ mask; x == y allowed
__global__ void __launch_bounds__(kThreads)
    mul_kernel(int64_t n, const float *x, const float *mask, float *y)
{
    for (int64_t i = thread_first(); i < n; i += thread_stride())
        y[i] = x[i] * mask[i];
}

// mask (n): element i from draw first + i of the counter-based stream `key`
__global__ void __launch_bounds__(kThreads)
    dropout_kernel(int64_t n, uint64_t key, uint64_t first, DropoutScalars sc, float *mask)
{
    for (int64_t i = thread_first(); i < n; i += thread_stride())
        mask[i] = dropout_elem(key, first + (uint64_t)i, sc.threshold, sc.keep);
}

// ---- spectra ----

// C[m, j] (+)= Σ_k op_a(A[m, k]) ∘ op_b(B[k, j]), F complex values per spectrum: one thread per
// (m, j, f), f fastest so neighbouring threads read neighbouring values; k summed in order.
template <typename I>
__global__ void __launch_bounds__(kThreads)
    cmac_kernel(I total, I F, I N, int64_t K, const float *__restrict__ A, int64_t a_m,
                int64_t a_k, double sa, const float *__restrict__ B, int64_t b_k, int64_t b_n,
                double sb, float *__restrict__ C, int64_t c_m, int64_t c_n, bool accumulate)
{
    for (I i = (I)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (I)gridDim.x * blockDim.x)
        cmac_at(i, F, N, K, A, a_m, a_k, sa, B, b_k, b_n, sb, C, c_m, c_n, accumulate);
}

// ---- losses, regularization, data ----

// The per-block results of the losses, lane 0 of each warp having its warp's: partials[block] =
// Σ loss, partials[gridDim.x + block] = Σ correct, the warps in order.
__device__ void loss_block_store(double loss, double right, double *partials)
{
    __shared__ double loss_sh[kWarps], right_sh[kWarps];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) {
        loss_sh[warp] = loss;
        right_sh[warp] = right;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        double l = 0.0, c = 0.0;
        for (int w = 0; w < kWarps; w++) {
            l += loss_sh[w];
            c += right_sh[w];
        }
        partials[blockIdx.x] = l;
        partials[gridDim.x + blockIdx.x] = c;
    }
}

// Softmax cross-entropy of logits (B, K), one warp per row (rows strided over the grid's warps):
// loss = lse(z) − z[label] around the row maximum, exp and log in double as the reference, the
// row's Σ exp added in the order of k; dlogits = scale·(softmax − onehot) when not NULL.
// In place (dlogits == logits): every lane reads all it needs of a row before any lane writes.
// (Min. 1 block per SM: ptxas's default register target spills a few bytes around exp and log.)
__global__ void __launch_bounds__(kThreads, 1)
    softmax_ce_kernel(int64_t B, int64_t K, const float *logits, const int32_t *labels,
                      float scale, float *dlogits, double *partials)
{
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    double loss = 0.0, right = 0.0;
    for (int64_t r = (int64_t)blockIdx.x * kWarps + warp; r < B; r += (int64_t)gridDim.x * kWarps) {
        const float *z = logits + r * K;
        const int32_t label = labels[r];
        const float zlabel = z[label];
        const ArgBest best = warp_argmax(z, K, lane);
        const float zmax = best.v; // z[best.i]
        double sum = 0.0;
        for (int64_t c0 = 0; c0 < K; c0 += 32) {
            const int64_t k = c0 + lane;
            const double term = k < K ? exp((double)z[k] - (double)zmax) : 0.0;
            sum = warp_ordered_sum(sum, term, K - c0 < 32 ? (int)(K - c0) : 32);
        }
        const double lse = (double)zmax + log(sum);
        loss += lse - (double)zlabel;
        right += best.i == label ? 1.0 : 0.0;
        if (dlogits != nullptr) {
            __syncwarp(); // the row's reads above, on every lane, come before its writes
            float *d = dlogits + r * K;
            for (int64_t k = lane; k < K; k += 32) {
                float v = scale * (float)exp((double)z[k] - lse);
                if (k == label)
                    v -= scale;
                d[k] = v;
            }
        }
    }
    loss_block_store(loss, right, partials);
}

// ½‖y − onehot‖² of y (B, K), one warp per row as softmax_ce_kernel; dy = scale·(y − onehot).
// In place (dy == y) each lane writes only the elements it alone reads, but for y[r, 0], which
// every lane reads before the warp syncs.
__global__ void __launch_bounds__(kThreads)
    mse_kernel(int64_t B, int64_t K, const float *y, const int32_t *labels, float scale,
               float *dy, double *partials)
{
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    double loss = 0.0, right = 0.0;
    for (int64_t r = (int64_t)blockIdx.x * kWarps + warp; r < B; r += (int64_t)gridDim.x * kWarps) {
        const float *yr = y + r * K;
        const int32_t label = labels[r];
        right += warp_argmax(yr, K, lane).i == label ? 1.0 : 0.0;
        __syncwarp(); // every lane has read y[r, 0] (the argmax's NaN rule) before dy is written
        double sum = 0.0;
        for (int64_t c0 = 0; c0 < K; c0 += 32) {
            const int64_t k = c0 + lane;
            double term = 0.0;
            if (k < K) {
                const float t = k == label ? 1.0f : 0.0f;
                const float e = yr[k] - t;
                term = 0.5 * (double)e * (double)e;
                if (dy != nullptr)
                    dy[r * K + k] = scale * e;
            }
            sum = warp_ordered_sum(sum, term, K - c0 < 32 ? (int)(K - c0) : 32);
        }
        loss += sum;
    }
    loss_block_store(loss, right, partials);
}

// out[0] = Σ partials[0..count), out[1] = Σ partials[count..2·count): the losses' total and
// number correct; 0 and 0 for count 0
__global__ void __launch_bounds__(kReduceThreads)
    loss_finish_kernel(int64_t count, const double *partials, double *out)
{
    __shared__ double sh[kReduceThreads];
    const double loss = fold_partials(count, partials, 0.0, SumOp(), sh);
    const double right = fold_partials(count, partials + count, 0.0, SumOp(), sh);
    if (threadIdx.x == 0) {
        out[0] = loss;
        out[1] = right;
    }
}

// The replayed step's loss kept on the device (loss_step): acc[0] += out[0] (the loss
// kernels' Σ loss), and acc[1] = *step when that Σ is not finite and acc[1] is not yet set (< 0).
// One thread: nothing comes back to the host.
__global__ void __launch_bounds__(1)
    loss_accumulate_kernel(const double *out, const int64_t *step, double *acc)
{
    const double sum = out[0];
    if (!isfinite(sum) && acc[1] < 0.0)
        acc[1] = (double)*step;
    acc[0] += sum;
}

// g (n) += l1·sign(w) + l2·w; partials[block] = Σ|w|, partials[gridDim.x + block] = Σw² in double
__global__ void __launch_bounds__(kReduceThreads)
    regularize_partial_kernel(int64_t n, const float *__restrict__ w, float *__restrict__ g,
                              float l1, float l2, double *partials)
{
    __shared__ double sh[kReduceThreads];
    double s1 = 0.0, s2 = 0.0;
    for (int64_t i = thread_first(); i < n; i += thread_stride()) {
        const float wi = w[i];
        s1 += fabs((double)wi);
        s2 += (double)wi * (double)wi;
        g[i] = regularize_grad_elem(g[i], wi, l1, l2);
    }
    const double r1 = block_reduce(s1, sh, SumOp());
    const double r2 = block_reduce(s2, sh, SumOp());
    if (threadIdx.x == 0) {
        partials[blockIdx.x] = r1;
        partials[gridDim.x + blockIdx.x] = r2;
    }
}

// out[0] = l1·Σ|w| + ½·l2·Σw² from the partials of regularize_partial_kernel
__global__ void __launch_bounds__(kReduceThreads)
    regularize_finish_kernel(int64_t count, const double *partials, float l1, float l2,
                             double *out)
{
    __shared__ double sh[kReduceThreads];
    const double s1 = fold_partials(count, partials, 0.0, SumOp(), sh);
    const double s2 = fold_partials(count, partials + count, 0.0, SumOp(), sh);
    if (threadIdx.x == 0)
        out[0] = (double)l1 * s1 + 0.5 * (double)l2 * s2;
}

// x (B, d) = (float)src[idx[r]·d + j] · scale, flat over the B·d elements of x
template <typename I>
__global__ void __launch_bounds__(kThreads)
    u8_to_float_kernel(I total, I d, const uint8_t *__restrict__ src,
                       const int64_t *__restrict__ idx, float scale, float *__restrict__ x)
{
    for (I i = (I)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (I)gridDim.x * blockDim.x)
        u8_to_float_at(i, d, src, idx, scale, x);
}

// out[0] = 1 (all_finite's answer until an element says otherwise)
__global__ void all_finite_init_kernel(int *out)
{
    out[0] = 1;
}

// out[0] = 0 when an element of x (n) is infinite or NaN. Every thread that finds one stores the
// same 0, so the answer does not depend on which store lands last: the AND of all elements
// needs neither partials nor atomics (and the launcher has no scratch space).
__global__ void __launch_bounds__(kThreads) all_finite_kernel(int64_t n, const float *x, int *out)
{
    for (int64_t i = thread_first(); i < n; i += thread_stride())
        if (!isfinite(x[i])) {
            out[0] = 0;
            return;
        }
}

// ---- optimizers: the reference's per-element steps (src/cpu/ref_optim.c) ----
// Hyper: HyperByValue or HyperOnDevice. A skipped step returns before touching any element.

// w (n) -= lr·(g + wd·w)
template <typename Hyper>
__global__ void __launch_bounds__(kThreads)
    sgd_kernel(int64_t n, float *__restrict__ w, const float *__restrict__ g, Hyper src)
{
    fnet_cuda_hyper a;
    if (!src.load(a))
        return;
    for (int64_t i = thread_first(); i < n; i += thread_stride()) {
        float wi = w[i];
        sgd_elem(wi, g[i], a.lr, a.weight_decay);
        w[i] = wi;
    }
}

// v = μv + g';  w -= lr·v, or lr·(g' + μv) for Nesterov
template <typename Hyper>
__global__ void __launch_bounds__(kThreads)
    momentum_kernel(int64_t n, float *__restrict__ w, const float *__restrict__ g,
                    float *__restrict__ v, Hyper src, bool nesterov)
{
    fnet_cuda_hyper a;
    if (!src.load(a))
        return;
    for (int64_t i = thread_first(); i < n; i += thread_stride()) {
        float wi = w[i], vi = v[i];
        momentum_elem(wi, g[i], vi, a.lr, a.momentum, a.weight_decay, nesterov);
        v[i] = vi;
        w[i] = wi;
    }
}

// s = ρs + (1−ρ)g'²;  w -= lr·g'/(√s + ε)
template <typename Hyper>
__global__ void __launch_bounds__(kThreads)
    rmsprop_kernel(int64_t n, float *__restrict__ w, const float *__restrict__ g,
                   float *__restrict__ s, Hyper src)
{
    fnet_cuda_hyper a;
    if (!src.load(a))
        return;
    const float one_m_rho = 1.0f - a.rho;
    for (int64_t i = thread_first(); i < n; i += thread_stride()) {
        float wi = w[i], si = s[i];
        rmsprop_elem(wi, g[i], si, a.lr, a.rho, one_m_rho, a.eps, a.weight_decay);
        s[i] = si;
        w[i] = wi;
    }
}

// m = β1·m + (1−β1)g';  v = β2·v + (1−β2)g'²;  w -= (lr/bc1)·m / (√v/√bc2 + ε)
template <typename Hyper>
__global__ void __launch_bounds__(kThreads)
    adam_kernel(int64_t n, float *__restrict__ w, const float *__restrict__ g,
                float *__restrict__ m, float *__restrict__ v, Hyper src)
{
    fnet_cuda_hyper a;
    if (!src.load(a))
        return;
    const AdamScalars sc = src.adam(a);
    const float one_m_b1 = 1.0f - a.beta1, one_m_b2 = 1.0f - a.beta2;
    for (int64_t i = thread_first(); i < n; i += thread_stride()) {
        float wi = w[i], mi = m[i], vi = v[i];
        adam_elem(wi, g[i], mi, vi, a.beta1, one_m_b1, a.beta2, one_m_b2, a.eps, a.weight_decay,
                  sc);
        m[i] = mi;
        v[i] = vi;
        w[i] = wi;
    }
}

} // namespace

// ---- the launchers (cuda_kernels.h) ----

cudaError_t fnet_cuda_fill(cudaStream_t s, int64_t n, float value, float *x)
{
    if (n <= 0)
        return cudaSuccess;
    fill_kernel<<<elementwise_blocks(n), kThreads, 0, s>>>(n, value, x);
    return cudaGetLastError();
}

cudaError_t fnet_cuda_axpby(cudaStream_t s, int64_t n, float a, const float *x, float b,
                            float *y)
{
    if (n <= 0)
        return cudaSuccess;
    axpby_kernel<<<elementwise_blocks(n), kThreads, 0, s>>>(n, a, x, b, y);
    return cudaGetLastError();
}

// Reductions write `out` also for n = 0 (the finish kernel over no partials): the caller reads
// it back either way.
cudaError_t fnet_cuda_dot(cudaStream_t s, int64_t n, const float *x, const float *y,
                          double *scratch, double *out)
{
    const unsigned blocks = n > 0 ? reduce_blocks(n) : 0;
    if (blocks > 0)
        dot_partial_kernel<<<blocks, kReduceThreads, 0, s>>>(n, x, y, scratch);
    sum_finish_kernel<<<1, kReduceThreads, 0, s>>>(blocks, scratch, out);
    return cudaGetLastError();
}

cudaError_t fnet_cuda_amax(cudaStream_t s, int64_t n, const float *x, double *scratch,
                           double *out)
{
    const unsigned blocks = n > 0 ? reduce_blocks(n) : 0;
    if (blocks > 0)
        amax_partial_kernel<<<blocks, kReduceThreads, 0, s>>>(n, x, scratch);
    max_finish_kernel<<<1, kReduceThreads, 0, s>>>(blocks, scratch, out);
    return cudaGetLastError();
}

// A transpose of in (rows, cols) into out (cols, rows), written or added to
static cudaError_t launch_transpose(cudaStream_t s, int64_t rows, int64_t cols, const float *in,
                                    float *out, bool accumulate)
{
    const dim3 grid(blocks_for(cols, kTile, kMaxBlocks), blocks_for(rows, kTile, kMaxBlocks));
    transpose_kernel<<<grid, dim3(kTile, kTileRows), 0, s>>>(rows, cols, in, out, accumulate);
    return cudaGetLastError();
}

cudaError_t fnet_cuda_permute_021(cudaStream_t s, int64_t P, int64_t Q, int64_t R,
                                  const float *in, float *out, bool accumulate)
{
    if (P <= 0 || Q <= 0 || R <= 0)
        return cudaSuccess;
    if (R == 1) // out (Q, P) = in (P, Q)ᵀ
        return launch_transpose(s, P, Q, in, out, accumulate);
    const int64_t total = P * Q * R;
    const unsigned blocks = elementwise_blocks(total);
    if (fits32(total))
        permute_021_kernel<uint32_t><<<blocks, kThreads, 0, s>>>(
            (uint32_t)total, (uint32_t)P, (uint32_t)Q, (uint32_t)R, in, out, accumulate);
    else
        permute_021_kernel<uint64_t><<<blocks, kThreads, 0, s>>>(
            (uint64_t)total, (uint64_t)P, (uint64_t)Q, (uint64_t)R, in, out, accumulate);
    return cudaGetLastError();
}

cudaError_t fnet_cuda_transpose(cudaStream_t s, int64_t rows, int64_t cols, const float *in,
                                float *out)
{
    if (rows <= 0 || cols <= 0)
        return cudaSuccess;
    return launch_transpose(s, rows, cols, in, out, false);
}

static cudaError_t launch_bias(cudaStream_t s, int64_t B, int64_t n, const float *bias, float *y,
                               bool add)
{
    if (B <= 0 || n <= 0)
        return cudaSuccess;
    const int64_t total = B * n;
    const unsigned blocks = elementwise_blocks(total);
    if (fits32(total))
        bias_kernel<uint32_t><<<blocks, kThreads, 0, s>>>((uint32_t)total, (uint32_t)n, bias, y,
                                                          add);
    else
        bias_kernel<uint64_t><<<blocks, kThreads, 0, s>>>((uint64_t)total, (uint64_t)n, bias, y,
                                                          add);
    return cudaGetLastError();
}

cudaError_t fnet_cuda_bias_fill(cudaStream_t s, int64_t B, int64_t n, const float *bias,
                                float *y)
{
    return launch_bias(s, B, n, bias, y, false);
}

cudaError_t fnet_cuda_bias_add(cudaStream_t s, int64_t B, int64_t n, const float *bias,
                               float *y)
{
    return launch_bias(s, B, n, bias, y, true);
}

cudaError_t fnet_cuda_act_forward(cudaStream_t s, int act, int64_t n, const float *x, float *y)
{
    if (n <= 0)
        return cudaSuccess;
    const unsigned blocks = elementwise_blocks(n);
    switch (act) {
    case 0: act_forward_kernel<0><<<blocks, kThreads, 0, s>>>(n, x, y); break;
    case 1: act_forward_kernel<1><<<blocks, kThreads, 0, s>>>(n, x, y); break;
    case 2: act_forward_kernel<2><<<blocks, kThreads, 0, s>>>(n, x, y); break;
    default: return cudaErrorInvalidValue; // the caller checks act: never reached
    }
    return cudaGetLastError();
}

cudaError_t fnet_cuda_act_backward(cudaStream_t s, int act, int64_t n, const float *y,
                                   const float *dy, float *dx)
{
    if (n <= 0)
        return cudaSuccess;
    const unsigned blocks = elementwise_blocks(n);
    switch (act) {
    case 0: act_backward_kernel<0><<<blocks, kThreads, 0, s>>>(n, y, dy, dx); break;
    case 1: act_backward_kernel<1><<<blocks, kThreads, 0, s>>>(n, y, dy, dx); break;
    case 2: act_backward_kernel<2><<<blocks, kThreads, 0, s>>>(n, y, dy, dx); break;
    default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}

cudaError_t fnet_cuda_mul(cudaStream_t s, int64_t n, const float *x, const float *mask,
                          float *y)
{
    if (n <= 0)
        return cudaSuccess;
    mul_kernel<<<elementwise_blocks(n), kThreads, 0, s>>>(n, x, mask, y);
    return cudaGetLastError();
}

cudaError_t fnet_cuda_dropout_mask(cudaStream_t s, int64_t n, float p, uint64_t seed,
                                   uint64_t step, uint64_t first, float *mask)
{
    if (n <= 0)
        return cudaSuccess;
    dropout_kernel<<<elementwise_blocks(n), kThreads, 0, s>>>(n, counter_key(seed, step), first,
                                                              dropout_scalars(p), mask);
    return cudaGetLastError();
}

cudaError_t fnet_cuda_cmac(cudaStream_t s, int64_t F, int64_t M, int64_t N, int64_t K,
                           const float *A, int64_t a_m, int64_t a_k, bool conj_a,
                           const float *B, int64_t b_k, int64_t b_n, bool conj_b, float *C,
                           int64_t c_m, int64_t c_n, bool accumulate)
{
    if (F <= 0 || M <= 0 || N <= 0)
        return cudaSuccess;
    const int64_t total = M * N * F, k = K < 0 ? 0 : K;
    const double sa = conj_a ? -1.0 : 1.0, sb = conj_b ? -1.0 : 1.0;
    const unsigned blocks = elementwise_blocks(total);
    if (fits32(total))
        cmac_kernel<uint32_t><<<blocks, kThreads, 0, s>>>((uint32_t)total, (uint32_t)F,
                                                          (uint32_t)N, k, A, a_m, a_k, sa, B,
                                                          b_k, b_n, sb, C, c_m, c_n, accumulate);
    else
        cmac_kernel<uint64_t><<<blocks, kThreads, 0, s>>>((uint64_t)total, (uint64_t)F,
                                                          (uint64_t)N, k, A, a_m, a_k, sa, B,
                                                          b_k, b_n, sb, C, c_m, c_n, accumulate);
    return cudaGetLastError();
}

// Blocks of the loss kernels: kWarps rows each, at most kReduceBlocks; 0 for no rows.
static unsigned loss_blocks(int64_t B, int64_t K)
{
    return B > 0 && K > 0 ? blocks_for(B, kWarps, kReduceBlocks) : 0;
}

cudaError_t fnet_cuda_softmax_ce(cudaStream_t s, int64_t B, int64_t K, const float *logits,
                                 const int32_t *labels, float scale, float *dlogits,
                                 double *scratch, double *out)
{
    const unsigned blocks = loss_blocks(B, K);
    if (blocks > 0)
        softmax_ce_kernel<<<blocks, kThreads, 0, s>>>(B, K, logits, labels, scale, dlogits,
                                                      scratch);
    loss_finish_kernel<<<1, kReduceThreads, 0, s>>>(blocks, scratch, out);
    return cudaGetLastError();
}

cudaError_t fnet_cuda_mse(cudaStream_t s, int64_t B, int64_t K, const float *y,
                          const int32_t *labels, float scale, float *dy, double *scratch,
                          double *out)
{
    const unsigned blocks = loss_blocks(B, K);
    if (blocks > 0)
        mse_kernel<<<blocks, kThreads, 0, s>>>(B, K, y, labels, scale, dy, scratch);
    loss_finish_kernel<<<1, kReduceThreads, 0, s>>>(blocks, scratch, out);
    return cudaGetLastError();
}

cudaError_t fnet_cuda_regularize(cudaStream_t s, int64_t n, const float *w, float *g, float l1,
                                 float l2, double *scratch, double *out)
{
    const unsigned blocks = n > 0 ? reduce_blocks(n) : 0;
    if (blocks > 0)
        regularize_partial_kernel<<<blocks, kReduceThreads, 0, s>>>(n, w, g, l1, l2, scratch);
    regularize_finish_kernel<<<1, kReduceThreads, 0, s>>>(blocks, scratch, l1, l2, out);
    return cudaGetLastError();
}

cudaError_t fnet_cuda_u8_to_float(cudaStream_t s, int64_t B, int64_t d, const uint8_t *src,
                                  const int64_t *idx, float scale, float *x)
{
    if (B <= 0 || d <= 0)
        return cudaSuccess;
    const int64_t total = B * d;
    const unsigned blocks = elementwise_blocks(total);
    if (fits32(total))
        u8_to_float_kernel<uint32_t><<<blocks, kThreads, 0, s>>>((uint32_t)total, (uint32_t)d,
                                                                 src, idx, scale, x);
    else
        u8_to_float_kernel<uint64_t><<<blocks, kThreads, 0, s>>>((uint64_t)total, (uint64_t)d,
                                                                 src, idx, scale, x);
    return cudaGetLastError();
}

cudaError_t fnet_cuda_all_finite(cudaStream_t s, int64_t n, const float *x, int *out)
{
    all_finite_init_kernel<<<1, 1, 0, s>>>(out); // also for n = 0: the caller reads out back
    if (n > 0)
        all_finite_kernel<<<elementwise_blocks(n), kThreads, 0, s>>>(n, x, out);
    return cudaGetLastError();
}

cudaError_t fnet_cuda_sgd_step(cudaStream_t s, int64_t n, float *w, const float *g,
                               const struct fnet_cuda_hyper *a)
{
    if (n <= 0)
        return cudaSuccess;
    sgd_kernel<<<elementwise_blocks(n), kThreads, 0, s>>>(n, w, g, HyperByValue{*a, {}});
    return cudaGetLastError();
}

cudaError_t fnet_cuda_momentum_step(cudaStream_t s, int64_t n, float *w, const float *g,
                                    float *v, const struct fnet_cuda_hyper *a, bool nesterov)
{
    if (n <= 0)
        return cudaSuccess;
    momentum_kernel<<<elementwise_blocks(n), kThreads, 0, s>>>(n, w, g, v, HyperByValue{*a, {}},
                                                               nesterov);
    return cudaGetLastError();
}

cudaError_t fnet_cuda_rmsprop_step(cudaStream_t s, int64_t n, float *w, const float *g,
                                   float *sq, const struct fnet_cuda_hyper *a)
{
    if (n <= 0)
        return cudaSuccess;
    rmsprop_kernel<<<elementwise_blocks(n), kThreads, 0, s>>>(n, w, g, sq, HyperByValue{*a, {}});
    return cudaGetLastError();
}

cudaError_t fnet_cuda_adam_step(cudaStream_t s, int64_t n, float *w, const float *g, float *m,
                                float *v, const struct fnet_cuda_hyper *a)
{
    if (n <= 0)
        return cudaSuccess;
    adam_kernel<<<elementwise_blocks(n), kThreads, 0, s>>>(n, w, g, m, v,
                                                           HyperByValue{*a, adam_scalars(*a)});
    return cudaGetLastError();
}

// ---- the replayed step's (backend.h, "a training step replayed") ----

cudaError_t fnet_cuda_loss_step(cudaStream_t s, bool mse, int64_t B, int64_t K,
                                const float *logits, const int32_t *labels, float scale,
                                float *dlogits, const int64_t *step, double *acc,
                                double *scratch, double *out)
{
    const cudaError_t e =
        mse ? fnet_cuda_mse(s, B, K, logits, labels, scale, dlogits, scratch, out)
            : fnet_cuda_softmax_ce(s, B, K, logits, labels, scale, dlogits, scratch, out);
    if (e != cudaSuccess) // out was not written: nothing to add
        return e;
    loss_accumulate_kernel<<<1, 1, 0, s>>>(out, step, acc);
    return cudaGetLastError();
}

cudaError_t fnet_cuda_sgd_step_dev(cudaStream_t s, int64_t n, float *w, const float *g,
                                   const struct fnet_cuda_hyper *a, const double *skip)
{
    if (n <= 0)
        return cudaSuccess;
    sgd_kernel<<<elementwise_blocks(n), kThreads, 0, s>>>(n, w, g, HyperOnDevice{a, skip});
    return cudaGetLastError();
}

cudaError_t fnet_cuda_momentum_step_dev(cudaStream_t s, int64_t n, float *w, const float *g,
                                        float *v, const struct fnet_cuda_hyper *a, bool nesterov,
                                        const double *skip)
{
    if (n <= 0)
        return cudaSuccess;
    momentum_kernel<<<elementwise_blocks(n), kThreads, 0, s>>>(n, w, g, v,
                                                               HyperOnDevice{a, skip}, nesterov);
    return cudaGetLastError();
}

cudaError_t fnet_cuda_rmsprop_step_dev(cudaStream_t s, int64_t n, float *w, const float *g,
                                       float *sq, const struct fnet_cuda_hyper *a,
                                       const double *skip)
{
    if (n <= 0)
        return cudaSuccess;
    rmsprop_kernel<<<elementwise_blocks(n), kThreads, 0, s>>>(n, w, g, sq,
                                                              HyperOnDevice{a, skip});
    return cudaGetLastError();
}

cudaError_t fnet_cuda_adam_step_dev(cudaStream_t s, int64_t n, float *w, const float *g,
                                    float *m, float *v, const struct fnet_cuda_hyper *a,
                                    const double *skip)
{
    if (n <= 0)
        return cudaSuccess;
    adam_kernel<<<elementwise_blocks(n), kThreads, 0, s>>>(n, w, g, m, v,
                                                           HyperOnDevice{a, skip});
    return cudaGetLastError();
}
