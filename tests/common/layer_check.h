/* Checks every layer kind must pass (docs/design.md, "Layer kinds"): forward equal to the dense
 * reconstruction, central finite-difference gradients for parameters and input, the backend
 * under test equal to the reference backend, out-of-memory injection. Reused by each kind's test
 * file. They run on the backend FNET_TEST_BACKEND names (fnet_test_ctx) and reach its memory
 * only through uploads, downloads and the layers' host copies (factornet/memory.h). */
#ifndef FNET_TEST_LAYER_CHECK_H
#define FNET_TEST_LAYER_CHECK_H

#include "test_util.h"

/* Makes a layer on ctx; the same call with the same seed must give the same layer. */
typedef fnet_status (*fnet_layer_factory)(fnet_ctx *ctx, uint64_t seed, fnet_layer **out);

/* Finite-difference tolerances: float32 storage, double accumulation of the probe loss. */
#define FNET_FD_EPS 1e-2
#define FNET_FD_RTOL 2e-2
#define FNET_FD_ATOL 2e-3

/* For factories: the layer's last n parameters (its bias) = b (host memory), through the host
 * copies. Allocates host memory only (malloc, which the out-of-memory hook leaves alone).
 * @return FNET_OK, FNET_ERR_INVALID_ARG (n above the parameter count), FNET_ERR_OUT_OF_MEMORY. */
fnet_status fnet_test_set_layer_bias(fnet_layer *l, const float *b, int64_t n);

/* For factories: initialize l from seed (Glorot normal, as fnet_layer_init draws it) and, when
 * bias, give its trailing n_out parameters a fixed pattern of distinct nonzero values.
 * @return as fnet_layer_init and fnet_test_set_layer_bias. */
fnet_status fnet_test_init_layer(fnet_layer *l, uint64_t seed, bool bias);

/* y = f(x) against x·Wᵀ (+ bias, given as the layer's trailing n_out params when has_bias), on
 * the backend under test (default: reference). */
void check_layer_forward_matches_dense(fnet_layer_factory make, int64_t B, bool has_bias);

/* Central differences of L = Σ c ⊙ f(x) against backward with dy = c, for every parameter
 * and every input; x drawn with |x| >= 0.1 to keep away from ReLU's kink. On the backend under
 * test (default: reference). */
void check_layer_gradients(fnet_layer_factory make, int64_t B);

/* Forward and backward on the backend under test (default: CPU, on three threads) equal the
 * reference backend's within rtol. */
void check_layer_cpu_matches_reference(fnet_layer_factory make, int64_t B, double rtol);

/* Fail the k-th allocation for k = 1, 2, ... until creation (and reserve) succeeds: every
 * failure must be FNET_ERR_OUT_OF_MEMORY; leaks are caught by LeakSanitizer. On the backend
 * under test (default: reference). */
void check_layer_out_of_memory(fnet_layer_factory make, int64_t B);

/* A model of `spec` on n_in inputs saved and loaded again has the same spec and parameters; a
 * checkpoint of `other` (the same layers in another shape) is refused by
 * fnet_model_load_params (FNET_ERR_SHAPE) and changes nothing. CPU backend. */
void check_spec_checkpoint_round_trip(const char *spec, const char *other, int64_t n_in);

/* A model of `spec` (16 inputs, 4 classes) trained by Adam (lr 1e-2, 5 epochs) on the tests'
 * synthetic classes: the loss falls to under half and the training accuracy passes 0.9. */
void check_spec_training_lowers_loss(const char *spec);

#endif
