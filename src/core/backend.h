/* The backend table: every numeric primitive a layer, loss, optimizer or solver needs, and the
 * memory they work on (docs/design.md, "Backends" and "Memory domains"). The reference backend
 * (src/cpu/ref_*.c) implements all of them in plain C and is the oracle; the CPU backend copies
 * it and overrides entries with OpenBLAS/LAPACKE and its thread pool; the guarded backend
 * (src/guarded/) runs the reference's ops on memory that faults when touched from outside an op.
 *
 * Memory domains. "Backend memory" is what alloc returns; only the ops below read or write it.
 * Every pointer argument is backend memory unless its comment says host. Host code moves data
 * with upload and download and never dereferences backend memory, even on backends whose memory
 * happens to be host memory (host_memory), so that the same code runs on a GPU.
 *
 * Errors. Ops that can fail on the numbers they are given return fnet_status; the others cannot
 * fail once a ctx exists (a GPU backend keeps an asynchronous failure as a sticky error that
 * synchronize reports). */
#ifndef FNET_CORE_BACKEND_H
#define FNET_CORE_BACKEND_H

#include "core/internal.h"

/* Hyper-parameters of one fused optimizer step (scalars precomputed by src/optim). */
struct fnet_step_args {
    float lr, momentum, beta1, beta2, eps, rho, weight_decay;
    float bc1, bc2; // Adam bias corrections 1 − β1^t, 1 − β2^t
};

/* The element-wise activations of act_forward and act_backward. */
enum fnet_act {
    FNET_ACT_RELU = 0,
    FNET_ACT_TANH = 1,
    FNET_ACT_SIGMOID = 2,
};

/* At most this many workers call BLAS at once (run_parts, split GEMMs): OpenBLAS keeps a fixed
 * table of buffers for concurrent callers, and Debian's is built for 64 threads. */
#define FNET_MAX_PARTS 64

/* Linear algebra on host memory for the host-side algorithms (TT-SVD, TT rounding, the TT
 * layer's orthogonal initialization): each backend names the one its host side uses. ctx only
 * receives error messages; these never touch the ctx's backend state or backend memory. */
struct fnet_host_la {
    const char *name;
    // C (M, N) = alpha·op(A)·op(B) + beta·C, row-major, all host memory
    void (*sgemm)(fnet_ctx *ctx, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                  const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                  int64_t ldc);
    // Thin SVD of A (m, n), k = min(m, n): U (m, k), S (k) descending, Vt (k, n); A unchanged.
    // Thin QR: Q (m, k) orthonormal columns, R (k, n) upper triangular. Both allocate their
    // workspace; FNET_ERR_NUMERIC when A is not finite or the factorization fails to converge.
    fnet_status (*gesvd)(fnet_ctx *ctx, int64_t m, int64_t n, const float *A, float *U,
                         float *S, float *Vt);
    fnet_status (*qr)(fnet_ctx *ctx, int64_t m, int64_t n, const float *A, float *Q, float *R);
};

/* The bytes of a device communicator's id (NCCL's ncclUniqueId). */
#define FNET_DIST_ID_BYTES 128

struct fnet_backend_ops {
    const char *name;
    bool host_memory; // backend memory is ordinary host memory (reference, cpu)
    // A GPU: layers hand it whole batches, one GEMM per product, rather than cache-sized chunks
    // of samples split over workers (the TT sweep's chunks and parts)
    bool whole_batches;
    const struct fnet_host_la *host_la;

    // ---- per-ctx state (handles, streams, thread pools): ctx->state ----
    // Made when the ctx is made and freed with it; NULL entries: the backend keeps none.
    fnet_status (*state_init)(fnet_ctx *ctx);
    void (*state_free)(fnet_ctx *ctx);
    // ctx->threads was set to n (1..1024); FNET_ERR_OUT_OF_MEMORY leaves the old state working.
    fnet_status (*set_threads)(fnet_ctx *ctx, int n);
    // Wait for every queued op; report (and clear) a failure kept since the last call.
    fnet_status (*synchronize)(fnet_ctx *ctx);
    // Let float GEMMs use reduced-precision tensor cores (TF32) or not; NULL: the backend has
    // none (fnet_ctx_set_tf32 answers FNET_ERR_UNSUPPORTED).
    fnet_status (*set_tf32)(fnet_ctx *ctx, bool on);

    // ---- memory ----
    // bytes (> 0) of backend memory, 64-byte aligned; NULL when out of memory. free(NULL) no-op.
    void *(*alloc)(fnet_ctx *ctx, size_t bytes);
    void (*free)(fnet_ctx *ctx, void *p);
    // dst (bytes, backend) = src (bytes, host)
    void (*upload)(fnet_ctx *ctx, void *dst, const void *src, size_t bytes);
    // dst (bytes, host) = src (bytes, backend)
    void (*download)(fnet_ctx *ctx, void *dst, const void *src, size_t bytes);
    // dst (bytes) = src (bytes); the two do not overlap (dst == src is a no-op)
    void (*copy)(fnet_ctx *ctx, void *dst, const void *src, size_t bytes);
    // x (n) = value
    void (*fill)(fnet_ctx *ctx, int64_t n, float value, float *x);

    // ---- BLAS-shaped ----
    // C (M, N) = alpha·op(A)·op(B) + beta·C, row-major; op(A) (M, K), op(B) (K, N). beta == 0
    // ignores what C held (NaN included). C shares no memory with A or B.
    void (*sgemm)(fnet_ctx *ctx, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                  const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                  int64_t ldc);
    // count GEMMs C_i = alpha·op(A_i)·op(B_i) + beta·C_i as sgemm's, A_i = A + i·sa, B_i = B + i·sb,
    // C_i = C + i·sc (floats; sa, sb >= 0: 0 shares one operand among all); the C_i share no
    // memory with each other or with an A_i or B_i. NULL: fnet_sgemm_batched loops over sgemm.
    void (*sgemm_batched)(fnet_ctx *ctx, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                          float alpha, const float *A, int64_t lda, int64_t sa, const float *B,
                          int64_t ldb, int64_t sb, float beta, float *C, int64_t ldc, int64_t sc,
                          int64_t count);
    // y (n) += a·x (n);  x (n) *= a;  Σ x·y returned as a double (the reference accumulates in
    // double; the CPU backend's BLAS dsdot partly in float, within 1e-6 of Σ|x·y|)
    void (*axpy)(fnet_ctx *ctx, int64_t n, float a, const float *x, float *y);
    void (*scal)(fnet_ctx *ctx, int64_t n, float a, float *x);
    double (*dot)(fnet_ctx *ctx, int64_t n, const float *x, const float *y);
    // y (n) = a·x + b·y, computed as (a·x) + (b·y) in float without fused multiply-adds; b == 0
    // writes a·x without reading y. x == y allowed.
    void (*axpby)(fnet_ctx *ctx, int64_t n, float a, const float *x, float b, float *y);
    // max |x_i| over x (n), NaNs skipped; 0 for n = 0
    double (*amax)(fnet_ctx *ctx, int64_t n, const float *x);

    // ---- layout ----
    // out (Q, P, R) (+)= in (P, Q, R): swap the two outer axes, moving contiguous runs of R;
    // in and out share no memory
    void (*permute_021)(fnet_ctx *ctx, int64_t P, int64_t Q, int64_t R, const float *in,
                        float *out, bool accumulate);
    // out (cols, rows) = in (rows, cols)ᵀ; in and out share no memory
    void (*transpose)(fnet_ctx *ctx, int64_t rows, int64_t cols, const float *in, float *out);

    // ---- element-wise ----
    // y (B, n) = bias broadcast over rows (the GEMM then accumulates with beta = 1)
    void (*bias_fill)(fnet_ctx *ctx, int64_t B, int64_t n, const float *bias, float *y);
    // y (B, n) += bias broadcast over rows
    void (*bias_add)(fnet_ctx *ctx, int64_t B, int64_t n, const float *bias, float *y);
    // db (n) (+)= Σ_rows dy (B, n)
    void (*bias_grad)(fnet_ctx *ctx, int64_t B, int64_t n, const float *dy, float *db,
                      bool accumulate);
    // y (n) = f(x (n)), x == y allowed. FNET_ERR_INVALID_ARG for an unknown act (y untouched).
    fnet_status (*act_forward)(fnet_ctx *ctx, enum fnet_act act, int64_t n, const float *x,
                               float *y);
    // dx (n) = dy ⊙ f'(.) written from the output y (n); dx == dy allowed. As act_forward.
    fnet_status (*act_backward)(fnet_ctx *ctx, enum fnet_act act, int64_t n, const float *y,
                                const float *dy, float *dx);
    // y (n) = x ⊙ mask (n); x == y allowed
    void (*mul)(fnet_ctx *ctx, int64_t n, const float *x, const float *mask, float *y);
    // mask (n): element i is 0 with probability p and 1/(1−p) otherwise, drawn from the
    // counter-based generator (seed, step, first + i) of docs/design.md ("Random numbers"), so
    // every backend draws the same mask, and a rank holding rows of a batch from `first` on
    // draws those rows' part of the whole batch's mask. 0 <= p < 1.
    void (*dropout_mask)(fnet_ctx *ctx, int64_t n, float p, uint64_t seed, uint64_t step,
                         uint64_t first, float *mask);

    // ---- FFTs and spectra (block-circulant layers; docs/circulant.md) ----
    // A plan (backend-private, host memory) for real DFTs of length n >= 1 on any number of
    // contiguous signals; made once per shape, when a layer is made (FFTW's planner is not
    // thread-safe: the CPU backend serializes it). FNET_ERR_OUT_OF_MEMORY when it cannot be made.
    fnet_status (*fft_plan)(fnet_ctx *ctx, int64_t n, void **plan);
    void (*fft_plan_free)(fnet_ctx *ctx, void *plan); // NULL: no-op
    // X (count, n/2+1 complex, re and im interleaved) = the DFT of x (count, n) real, signal by
    // signal: X_f = Σ_t x_t·e^{−2πi·f·t/n}
    void (*rfft)(fnet_ctx *ctx, const void *plan, int64_t count, const float *x, float *X);
    // x (count, n) = the unnormalized inverse DFT of X (count, n/2+1 complex) extended by
    // Hermitian symmetry: x_t = Σ_{f<n} X_f·e^{2πi·f·t/n} (the imaginary parts of bin 0, and of
    // bin n/2 for even n, ignored). X may be overwritten.
    void (*irfft)(fnet_ctx *ctx, const void *plan, int64_t count, float *X, float *x);
    // Complex multiply-accumulate over spectra of F complex values each (re, im interleaved):
    // C[m, n] (+)= Σ_k op_a(A[m, k]) ∘ op_b(B[k, n]) for m < M, n < N, element by element over
    // the F values, op = complex conjugate when conj_* is set. Spectrum (i, j) of A starts at
    // A + 2·F·(i·a_m + j·a_k), of B at B + 2·F·(i·b_k + j·b_n), of C at C + 2·F·(i·c_m + j·c_n)
    // (strides >= 0, in spectra). C shares no memory with A or B. accumulate false: C is written.
    void (*cmac)(fnet_ctx *ctx, int64_t F, int64_t M, int64_t N, int64_t K, const float *A,
                 int64_t a_m, int64_t a_k, bool conj_a, const float *B, int64_t b_k, int64_t b_n,
                 bool conj_b, float *C, int64_t c_m, int64_t c_n, bool accumulate);

    // ---- sparse matrices (CSR; sparse layers, docs/sparse.md) ----
    // A (M, N) in compressed sparse row form: row_ptr (M + 1, int32, row_ptr[0] = 0, not
    // decreasing), col (nnz = row_ptr[M], int32, in [0, N), increasing within a row) and val
    // (nnz). The dense operands are feature-major: X (N, B) and Y (M, B), row-major with leading
    // dimension B (a batch of B samples is a layer's (B, n) activations transposed; for B = 1
    // the two layouts are the same memory). Outputs share no memory with inputs.
    // Y (M, B) (+)= A·X  (accumulate false: Y is written, rows without entries included)
    void (*csr_spmm)(fnet_ctx *ctx, int64_t M, int64_t N, int64_t B, const int32_t *row_ptr,
                     const int32_t *col, const float *val, const float *X, float *Y,
                     bool accumulate);
    // X (N, B) (+)= Aᵀ·Y  (accumulate false: X is written, columns without entries included)
    void (*csr_spmm_t)(fnet_ctx *ctx, int64_t M, int64_t N, int64_t B, const int32_t *row_ptr,
                       const int32_t *col, const float *val, const float *Y, float *X,
                       bool accumulate);
    // SDDMM, the gradient of val: out[k] (+)= Σ_b Y[i, b]·X[col[k], b] for every stored entry k
    // of row i (out has nnz floats)
    void (*csr_sddmm)(fnet_ctx *ctx, int64_t M, int64_t N, int64_t B, const int32_t *row_ptr,
                      const int32_t *col, const float *Y, const float *X, float *out,
                      bool accumulate);

    // ---- losses, data ----
    // Softmax cross-entropy of logits (B, K) against labels (B, int32): returns Σ loss (double);
    // writes dlogits (B, K) = scale·(softmax − onehot) when dlogits != NULL; counts correct
    // argmax predictions into *correct (host) when not NULL. logits == dlogits allowed.
    double (*softmax_ce)(fnet_ctx *ctx, int64_t B, int64_t K, const float *logits,
                         const int32_t *labels, float scale, float *dlogits, int64_t *correct);
    // MSE ½‖y − onehot‖² per row: as softmax_ce, dy = scale·(y − onehot).
    double (*mse)(fnet_ctx *ctx, int64_t B, int64_t K, const float *y, const int32_t *labels,
                  float scale, float *dy, int64_t *correct);
    // Regularization over w (n): returns l1·Σ|w| + ½·l2·Σw²; g += l1·sign(w) + l2·w.
    double (*regularize)(fnet_ctx *ctx, int64_t n, const float *w, float *g, float l1, float l2);
    // x (B, d) = src (N, d uint8) rows idx[0..B) (host) · scale
    void (*u8_to_float)(fnet_ctx *ctx, int64_t B, int64_t d, const uint8_t *src,
                        const int64_t *idx, float scale, float *x);
    // true when every element of x (n) is finite
    bool (*all_finite)(fnet_ctx *ctx, int64_t n, const float *x);

    // ---- fused optimizer steps over w, g and state vectors (n each) ----
    void (*sgd_step)(fnet_ctx *ctx, int64_t n, float *w, const float *g,
                     const struct fnet_step_args *a);
    void (*momentum_step)(fnet_ctx *ctx, int64_t n, float *w, const float *g, float *v,
                          const struct fnet_step_args *a, bool nesterov);
    void (*rmsprop_step)(fnet_ctx *ctx, int64_t n, float *w, const float *g, float *s,
                         const struct fnet_step_args *a);
    void (*adam_step)(fnet_ctx *ctx, int64_t n, float *w, const float *g, float *m, float *v,
                      const struct fnet_step_args *a);

    // ---- a training step replayed (docs/gpu.md, "The step as one CUDA graph") ----
    // Every value that changes from one replayed step to the next is read from backend memory
    // when the op runs, never passed by value, and nothing comes back to the host.
    // x (B, d) = src rows rows[0..B) · scale: u8_to_float with its rows in backend memory
    void (*u8_gather)(fnet_ctx *ctx, int64_t B, int64_t d, const uint8_t *src,
                      const int64_t *rows, float scale, float *x);
    // softmax_ce's loss (mse's when mse) kept in backend memory: acc[0] += Σ loss over the batch;
    // when that Σ is not finite and acc[1] < 0, acc[1] = (double)*step (the first step whose loss
    // was not finite). dlogits as softmax_ce writes it (NULL: none). acc: 2 doubles, step: one
    // int64, both backend memory.
    void (*loss_step)(fnet_ctx *ctx, bool mse, int64_t B, int64_t K, const float *logits,
                      const int32_t *labels, float scale, float *dlogits, const int64_t *step,
                      double *acc);
    // The fused step `kind` (FNET_OP_SGD_STEP, _MOMENTUM_STEP with nesterov, _RMSPROP_STEP,
    // _ADAM_STEP) with its hyper-parameters *a read from backend memory when it runs, and
    // skipped entirely when skip != NULL and skip[1] >= 0 (loss_step's acc after a non-finite
    // loss). s1: v (momentum), s (rmsprop), m (adam); s2: adam's v; unused ones NULL.
    void (*step_dev)(fnet_ctx *ctx, int kind, bool nesterov, int64_t n, float *w, const float *g,
                     float *s1, float *s2, const struct fnet_step_args *a, const double *skip);
    // Record the ops fn(arg) issues, without running them, for graph_run to run as one unit
    // (CUDA: a stream capture made into an executable graph). FNET_ERR_UNSUPPORTED when they
    // cannot be recorded (an op that waits for the device, say): *graph NULL, nothing ran, the
    // device state as before. NULL entries: fnet_graph_* calls fn at every run instead.
    fnet_status (*graph_make)(fnet_ctx *ctx, void (*fn)(void *arg), void *arg, void **graph);
    void (*graph_run)(fnet_ctx *ctx, void *graph);
    void (*graph_free)(fnet_ctx *ctx, void *graph); // NULL graph: no-op

    // ---- collectives across the job's ranks (src/dist/dist.c; NCCL: src/gpu/cuda_nccl.c) ----
    // NULL: MPI reduces backend memory itself (in place where it is host memory, else through a
    // host copy). dist_id: a new communicator's id, on rank 0; dist_init: join it as `rank` of
    // `size` (collective; FNET_ERR_DIST when it cannot); dist_allreduce: x (n floats) = its sum
    // over the ranks, after the ops queued so far and beside those queued later; dist_wait: the
    // ops queued from now on wait for those all-reduces, and a failure the collective library
    // has seen so far is reported (FNET_ERR_DIST; one still running reports at a later call);
    // dist_free: leave the communicator (aborted after a failure; state_free does too).
    fnet_status (*dist_id)(fnet_ctx *ctx, unsigned char id[FNET_DIST_ID_BYTES]);
    fnet_status (*dist_init)(fnet_ctx *ctx, const unsigned char id[FNET_DIST_ID_BYTES], int rank,
                             int size);
    void (*dist_allreduce)(fnet_ctx *ctx, float *x, int64_t n);
    fnet_status (*dist_wait)(fnet_ctx *ctx);
    void (*dist_free)(fnet_ctx *ctx);

    // ---- parallel parts ----
    // Run fn(arg, part) for part = 0..parts-1 at once, one part per worker (parts <=
    // min(ctx->threads, FNET_MAX_PARTS)), and return when all are done. Inside fn the backend's
    // ops run on the calling worker alone (one BLAS thread, no pool), so parts must touch
    // disjoint outputs. NULL: the caller runs the parts one after the other (fnet_run_parts).
    void (*run_parts)(fnet_ctx *ctx, int parts, void (*fn)(void *arg, int part), void *arg);
};

/* The ops of the table, for the checks of which ones a backend has. */
enum fnet_op {
    FNET_OP_STATE_INIT, FNET_OP_STATE_FREE, FNET_OP_SET_THREADS, FNET_OP_SYNCHRONIZE,
    FNET_OP_SET_TF32,
    FNET_OP_ALLOC, FNET_OP_FREE, FNET_OP_UPLOAD, FNET_OP_DOWNLOAD, FNET_OP_COPY, FNET_OP_FILL,
    FNET_OP_SGEMM, FNET_OP_SGEMM_BATCHED, FNET_OP_AXPY, FNET_OP_SCAL, FNET_OP_DOT, FNET_OP_AXPBY, FNET_OP_AMAX,
    FNET_OP_PERMUTE_021, FNET_OP_TRANSPOSE,
    FNET_OP_BIAS_FILL, FNET_OP_BIAS_ADD, FNET_OP_BIAS_GRAD, FNET_OP_ACT_FORWARD,
    FNET_OP_ACT_BACKWARD, FNET_OP_MUL, FNET_OP_DROPOUT_MASK,
    FNET_OP_FFT_PLAN, FNET_OP_FFT_PLAN_FREE, FNET_OP_RFFT, FNET_OP_IRFFT, FNET_OP_CMAC,
    FNET_OP_CSR_SPMM, FNET_OP_CSR_SPMM_T, FNET_OP_CSR_SDDMM,
    FNET_OP_SOFTMAX_CE, FNET_OP_MSE, FNET_OP_REGULARIZE, FNET_OP_U8_TO_FLOAT, FNET_OP_ALL_FINITE,
    FNET_OP_SGD_STEP, FNET_OP_MOMENTUM_STEP, FNET_OP_RMSPROP_STEP, FNET_OP_ADAM_STEP,
    FNET_OP_U8_GATHER, FNET_OP_LOSS_STEP, FNET_OP_STEP_DEV, FNET_OP_GRAPH_MAKE, FNET_OP_GRAPH_RUN,
    FNET_OP_GRAPH_FREE,
    FNET_OP_DIST_ID, FNET_OP_DIST_INIT, FNET_OP_DIST_ALLREDUCE, FNET_OP_DIST_WAIT, FNET_OP_DIST_FREE,
    FNET_OP_RUN_PARTS,
    FNET_OP_COUNT
};

/* A set of ops: bit (1 << op). */
#define FNET_OPS(op) ((uint64_t)1 << (op))

/* What the table check knows of op `op`: its name and whether every backend must have it (the
 * rest are asked for by the layers, optimizers and solvers that use them, when they are made). */
struct fnet_op_info {
    const char *name;
    bool required;
};
const struct fnet_op_info *fnet_backend_op_info(enum fnet_op op);

/* Whether be has op `op` (its entry is not NULL). */
bool fnet_backend_has(const struct fnet_backend_ops *be, enum fnet_op op);

/* FNET_ERR_UNSUPPORTED, naming the first op of `ops` that ctx's backend lacks and `what` needs
 * it ("backend cpu has no permute_021, which tt layers need"), else FNET_OK. */
fnet_status fnet_backend_require(fnet_ctx *ctx, uint64_t ops, const char *what);

/* Make a ctx on table be: the required ops and host_la are checked (FNET_ERR_UNSUPPORTED naming
 * the first missing one), then the backend's state is made and the threads set to the online
 * cores. The one constructor behind every fnet_ctx_create_*; tests use it with altered tables. */
fnet_status fnet_ctx_create_backend(const struct fnet_backend_ops *be, fnet_backend_kind kind,
                                    fnet_ctx **out);
/* The same on a device of the backend's (ctx->device = device before state_init). */
fnet_status fnet_ctx_create_device(const struct fnet_backend_ops *be, fnet_backend_kind kind,
                                   int device, fnet_ctx **out);

/* ctx->be->run_parts when the backend has it, else the parts one after the other. */
static inline void fnet_run_parts(fnet_ctx *ctx, int parts, void (*fn)(void *arg, int part),
                                  void *arg)
{
    if (ctx->be->run_parts != NULL && parts > 1) {
        ctx->be->run_parts(ctx, parts, fn, arg);
        return;
    }
    for (int p = 0; p < parts; p++)
        fn(arg, p);
}

/* ctx's sgemm_batched, or its sgemm once per block where the backend has none. */
void fnet_sgemm_batched(fnet_ctx *ctx, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                        float alpha, const float *A, int64_t lda, int64_t sa, const float *B,
                        int64_t ldb, int64_t sb, float beta, float *C, int64_t ldc, int64_t sc,
                        int64_t count);

/* A step recorded once and run many times (the backend's graph_make, or fn called each time on
 * a backend without one). */
struct fnet_graph;
/* FNET_ERR_UNSUPPORTED (nothing made, nothing ran) when the backend cannot record fn's ops;
 * FNET_ERR_OUT_OF_MEMORY. */
fnet_status fnet_graph_make(fnet_ctx *ctx, void (*fn)(void *arg), void *arg,
                            struct fnet_graph **out);
void fnet_graph_run(struct fnet_graph *g);
void fnet_graph_free(struct fnet_graph *g); // NULL: no-op

/* The backend memory helpers every module uses: n floats (or bytes) allocated on ctx's backend
 * and set to zero; NULL when out of memory (no message: the caller names what it was for). */
float *fnet_be_zeros(fnet_ctx *ctx, int64_t n);

/* n floats from backend src to host dst (download), or from host src to backend dst: the host
 * copies of the public API (get/set params, grads, state). FNET_ERR_INVALID_ARG naming `what`
 * when a buffer is NULL; nothing to do for n <= 0. */
fnet_status fnet_be_transfer(fnet_ctx *ctx, const char *what, float *dst, const float *src,
                             int64_t n, bool download);

/* The host linear algebra of initializations (a low-rank layer's spectral init): the CPU
 * backend's on every backend, so that the same seed gives the same layer everywhere. */
#define fnet_init_host_la (fnet_cpu_backend.host_la)

extern const struct fnet_backend_ops fnet_reference_backend;
extern const struct fnet_backend_ops fnet_cpu_backend;
extern const struct fnet_backend_ops fnet_guarded_backend;
/* The CUDA backend (src/gpu/), in CUDA builds only: the registry (core/ctx.c) is
 * the one place that names it. The probe is fnet_cuda_probe's answer in such a build. */
extern const struct fnet_backend_ops fnet_cuda_backend;
fnet_status fnet_cuda_backend_probe(int device, char *why, size_t cap);

#endif
