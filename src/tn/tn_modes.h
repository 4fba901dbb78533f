/* The modes of one side (inputs or outputs) of a Tucker or CP layer, shared by both kinds. */
#ifndef FNET_TN_TN_MODES_H
#define FNET_TN_TN_MODES_H

#include "core/internal.h"

/* modes[0..*count) for a side of `size`: the n_given modes `given` when n_given > 0 (each >= 1,
 * at most max_modes, multiplying to size), else `d` balanced modes (fnet_tt_balanced_modes;
 * fewer when size has fewer prime factors, one for size 1). Messages start with kind and name
 * the side ("cp: in modes multiply to 700, not the input size 784").
 * @return FNET_OK, FNET_ERR_INVALID_ARG. */
fnet_status fnet_tn_side_modes(fnet_ctx *ctx, const char *kind, bool input, int64_t size,
                               int n_given, const int64_t *given, int d, int max_modes,
                               int64_t *modes, int *count);

/* "factor0".."factor7": a Tucker or CP layer's checkpoint tensor k. */
const char *fnet_tn_factor_name(int k);

/* FNET_OK when W (n_out, n_in; host memory) is finite, else FNET_ERR_INVALID_ARG naming `what`
 * and the entry: "cp_from_dense: W has a non-finite entry at (3, 17)". */
fnet_status fnet_tn_check_dense(fnet_ctx *ctx, const char *what, const float *W, int64_t n_out,
                                int64_t n_in);

#endif
