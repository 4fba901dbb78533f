/* Merging adjacent TT cores (docs/tt.md, "Merged cores"): a grouping of the d cores into runs,
 * each run contracted into one core of the product modes, so the sweep runs over fewer, larger
 * cores with larger GEMMs. All cores in one run is the dense W (reconstruct-then-GEMM). */
#ifndef FNET_TN_TT_MERGE_H
#define FNET_TN_TT_MERGE_H

#include "tn/tt.h"

/* A grouping is a mask: bit k (k < d-1) set merges core k with core k+1. */
struct fnet_tt_merge {
    unsigned mask;
    int ng;                            // number of groups (cores of the merged shape)
    int start[FNET_TT_MAX_D + 1];      // group g holds cores start[g] .. start[g+1]-1
    struct fnet_tt_shape ms;           // the merged shape
    float *mcore, *mgrad;              // merged cores and their gradient, laid out as ms
    float *partial;                    // P_l = G_start ··· G_l of every core l, for the backward
    int64_t partial_off[FNET_TT_MAX_D];
    float *tmp, *dp[2];                // the largest partial product, three times
};

/* The merged shape of s under mask, and the floats of its partial products. */
void fnet_tt_merge_shape(const struct fnet_tt_shape *s, unsigned mask, struct fnet_tt_shape *ms,
                         int64_t *partial_floats);

/* Multiply-adds of merging (forward) under mask. */
double fnet_tt_merge_macs(const struct fnet_tt_shape *s, unsigned mask);

/* Set up m for s and mask (frees what was there on success). @return FNET_OK, _OUT_OF_MEMORY. */
fnet_status fnet_tt_merge_reserve(fnet_ctx *ctx, struct fnet_tt_merge *m,
                                  const struct fnet_tt_shape *s, unsigned mask);
void fnet_tt_merge_free(fnet_ctx *ctx, struct fnet_tt_merge *m);

/* m->mcore = the merged cores of `cores` (shape s), keeping the partial products. */
void fnet_tt_merge_forward(fnet_ctx *ctx, struct fnet_tt_merge *m, const struct fnet_tt_shape *s,
                           const float *cores);

/* From m->mgrad (the merged cores' gradient) to the cores' gradient, written or added. */
void fnet_tt_merge_backward(fnet_ctx *ctx, struct fnet_tt_merge *m, const struct fnet_tt_shape *s,
                            const float *cores, float *grads, bool accumulate);

#endif
