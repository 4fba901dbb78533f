/* The reference backend table: every op in plain C (src/cpu/ref_*.c), the oracle of the others. */
#include "cpu/ref.h"

#include <string.h>

static void *ref_alloc(fnet_ctx *ctx, size_t bytes)
{
    return fnet_malloc(bytes);
}

static void ref_free(fnet_ctx *ctx, void *p)
{
    fnet_free(p);
}

static void ref_synchronize(fnet_ctx *ctx)
{
}

const struct fnet_backend_ops fnet_reference_backend = {
    .name = "reference",
    .alloc = ref_alloc,
    .free = ref_free,
    .set_threads = NULL,
    .sgemm = fnet_ref_sgemm,
    .transpose = fnet_ref_transpose,
    .permute_021 = fnet_ref_permute_021,
    .axpy = fnet_ref_axpy,
    .scal = fnet_ref_scal,
    .dot = fnet_ref_dot,
    .bias_fill = fnet_ref_bias_fill,
    .bias_add = fnet_ref_bias_add,
    .bias_grad = fnet_ref_bias_grad,
    .act_forward = fnet_ref_act_forward,
    .act_backward = fnet_ref_act_backward,
    .mul = fnet_ref_mul,
    .softmax_ce = fnet_ref_softmax_ce,
    .mse = fnet_ref_mse,
    .regularize = fnet_ref_regularize,
    .u8_to_float = fnet_ref_u8_to_float,
    .all_finite = fnet_ref_all_finite,
    .sgd_step = fnet_ref_sgd_step,
    .momentum_step = fnet_ref_momentum_step,
    .rmsprop_step = fnet_ref_rmsprop_step,
    .adam_step = fnet_ref_adam_step,
    .gesvd = fnet_ref_gesvd,
    .qr = fnet_ref_qr,
    .synchronize = ref_synchronize,
};
