/* Checks every layer kind must pass (STYLE.md, Tests): forward equal to the dense
 * reconstruction, central finite-difference gradients for parameters and input, CPU equal to the
 * reference backend. Reused by each kind's test file. */
#ifndef FNET_TEST_LAYER_CHECK_H
#define FNET_TEST_LAYER_CHECK_H

#include "test_util.h"

/* Makes a layer on ctx; the same call with the same seed must give the same layer. */
typedef fnet_status (*fnet_layer_factory)(fnet_ctx *ctx, uint64_t seed, fnet_layer **out);

/* Finite-difference tolerances: float32 storage, double accumulation of the probe loss. */
#define FNET_FD_EPS 1e-2
#define FNET_FD_RTOL 2e-2
#define FNET_FD_ATOL 2e-3

/* y = f(x) against x·Wᵀ (+ bias, given as the layer's trailing n_out params when has_bias). */
void check_layer_forward_matches_dense(fnet_layer_factory make, int64_t B, bool has_bias);

/* Central differences of L = Σ c ⊙ f(x) against backward with dy = c, for every parameter
 * and every input; x drawn with |x| >= 0.1 to keep away from ReLU's kink. */
void check_layer_gradients(fnet_layer_factory make, int64_t B);

/* Forward and backward on the CPU backend equal the reference backend's within rtol. */
void check_layer_cpu_matches_reference(fnet_layer_factory make, int64_t B, double rtol);

/* Fail the k-th allocation for k = 1, 2, ... until creation (and reserve) succeeds: every
 * failure must be FNET_ERR_OUT_OF_MEMORY; leaks are caught by LeakSanitizer. */
void check_layer_out_of_memory(fnet_layer_factory make, int64_t B);

#endif
