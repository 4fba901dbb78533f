/* The TT sweep (docs/tt.md, "The sweep"): forward and backward of y = x·Wᵀ for the TT-matrix of
 * a shape and its cores, with the workspaces sized for a maximum batch. Used by the TT layer on
 * its own cores or on cores it merged. No bias. */
#ifndef FNET_TN_TT_SWEEP_H
#define FNET_TN_TT_SWEEP_H

#include "tn/tt.h"

/* One worker's workspaces: its chunks' GEMM outputs and its share of the core gradients. */
struct fnet_tt_part {
    float *gbuf[2]; // GEMM outputs and backward gradients of one chunk: its largest state
    float *dcore;   // core gradients summed over its chunks, every core permuted to (m, r, c)
};

/* The batch is cut into chunks of at most `chunk` samples whose states stay in a core's cache,
 * and at least one chunk per worker; the chunks are shared out between up to `nparts` workers
 * (docs/tt.md, "Chunks and workers"). */
struct fnet_tt_sweep {
    struct fnet_tt_shape s;
    int64_t max_batch;
    int64_t chunk;                    // samples per chunk at most
    int64_t forward_chunk;            // the chunk size the last forward pass used
    int nparts;                       // workers with workspaces
    struct fnet_tt_part *part;        // nparts of them
    float *state;                     // S_k, the input of step k, k = 0..d-2, chunk after chunk
    int64_t state_off[FNET_TT_MAX_D]; // where S_k starts within a chunk's block, per sample
    int64_t sample_state;             // floats of the states of one sample
    float *pcore;                     // the cores permuted to (m, r, c), back to back
    float *ptmp;                      // a ring's last core on its way to (R, m, r, n); else NULL
};

/* Size the workspaces for shape s (a TT-matrix, or a ring with d >= 2), batches up to B and ctx's threads (frees what was there on
 * success).
 * @return FNET_OK or FNET_ERR_OUT_OF_MEMORY. */
fnet_status fnet_tt_sweep_reserve(fnet_ctx *ctx, struct fnet_tt_sweep *w,
                                  const struct fnet_tt_shape *s, int64_t B);
void fnet_tt_sweep_free(fnet_ctx *ctx, struct fnet_tt_sweep *w);

/* y (B, M) = x (B, N) · Wᵀ of the cores (laid out as fnet_tt_core_offset says). B <= max_batch.
 * Keeps the states for the backward pass. */
void fnet_tt_sweep_forward(fnet_ctx *ctx, struct fnet_tt_sweep *w, const float *cores,
                           const float *x, int64_t B, float *y);

/* After a forward on the same x: core gradients written to (accumulate false) or added to
 * dcores, and dx (B, N) = dy · W unless dx is NULL. */
void fnet_tt_sweep_backward(fnet_ctx *ctx, struct fnet_tt_sweep *w, const float *cores,
                            const float *x, const float *dy, int64_t B, float *dcores,
                            bool accumulate, float *dx);

/* Tests: cut batches into chunks of this many samples instead of the cache-sized default (0), at
 * the next reserve. */
FNET_API void fnet_debug_tt_chunk(int64_t samples);

/* Rows a, contracted columns c and output columns o of step k at batch B: a counts the ring
 * index α for k < d-1, c = n_k·r_{k+1} (n_{d-1} for the last core: α is not contracted there),
 * o = m_k·r_k (times R for k = d-1; m_0 per α block for k = 0). A TT has R = 1. */
int64_t fnet_tt_step_rows(const struct fnet_tt_shape *s, int k, int64_t B);
int64_t fnet_tt_step_cols(const struct fnet_tt_shape *s, int k);
int64_t fnet_tt_step_out(const struct fnet_tt_shape *s, int k);

#endif
