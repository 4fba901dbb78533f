/* The reference backend table: every op in plain C (src/cpu/ref_*.c), the oracle of the others.
 * Its memory is host memory, so upload, download and copy are memcpy; it keeps no state and runs
 * on the calling thread. */
#include "cpu/ref.h"

#include <string.h>

void *fnet_ref_alloc(fnet_ctx *ctx, size_t bytes)
{
    return fnet_malloc(bytes);
}

void fnet_ref_free(fnet_ctx *ctx, void *p)
{
    fnet_free(p);
}

// dst (bytes) = src (bytes): upload, download and copy alike on host memory
void fnet_ref_memcpy(fnet_ctx *ctx, void *dst, const void *src, size_t bytes)
{
    if (dst != src && bytes > 0)
        memcpy(dst, src, bytes);
}

// x (n) = value
FNET_VECTORIZE
void fnet_ref_fill(fnet_ctx *ctx, int64_t n, float value, float *x)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = value;
}

fnet_status fnet_ref_synchronize(fnet_ctx *ctx)
{
    return FNET_OK;
}

const struct fnet_host_la fnet_ref_host_la = {
    .name = "reference",
    .sgemm = fnet_ref_sgemm,
    .gesvd = fnet_ref_gesvd,
    .qr = fnet_ref_qr,
};

const struct fnet_backend_ops fnet_reference_backend = {
    .name = "reference",
    .host_memory = true,
    .host_la = &fnet_ref_host_la,
    .synchronize = fnet_ref_synchronize,
    .alloc = fnet_ref_alloc,
    .free = fnet_ref_free,
    .upload = fnet_ref_memcpy,
    .download = fnet_ref_memcpy,
    .copy = fnet_ref_memcpy,
    .fill = fnet_ref_fill,
    .sgemm = fnet_ref_sgemm,
    .sgemm_batched = fnet_ref_sgemm_batched,
    .axpy = fnet_ref_axpy,
    .scal = fnet_ref_scal,
    .dot = fnet_ref_dot,
    .axpby = fnet_ref_axpby,
    .amax = fnet_ref_amax,
    .permute_021 = fnet_ref_permute_021,
    .transpose = fnet_ref_transpose,
    .bias_fill = fnet_ref_bias_fill,
    .bias_add = fnet_ref_bias_add,
    .bias_grad = fnet_ref_bias_grad,
    .act_forward = fnet_ref_act_forward,
    .act_backward = fnet_ref_act_backward,
    .mul = fnet_ref_mul,
    .dropout_mask = fnet_ref_dropout_mask,
    .fft_plan = fnet_ref_fft_plan,
    .fft_plan_free = fnet_ref_fft_plan_free,
    .rfft = fnet_ref_rfft,
    .irfft = fnet_ref_irfft,
    .cmac = fnet_ref_cmac,
    .csr_spmm = fnet_ref_csr_spmm,
    .csr_spmm_t = fnet_ref_csr_spmm_t,
    .csr_sddmm = fnet_ref_csr_sddmm,
    .softmax_ce = fnet_ref_softmax_ce,
    .mse = fnet_ref_mse,
    .regularize = fnet_ref_regularize,
    .u8_to_float = fnet_ref_u8_to_float,
    .all_finite = fnet_ref_all_finite,
    .sgd_step = fnet_ref_sgd_step,
    .momentum_step = fnet_ref_momentum_step,
    .rmsprop_step = fnet_ref_rmsprop_step,
    .adam_step = fnet_ref_adam_step,
    .u8_gather = fnet_ref_u8_gather,
    .loss_step = fnet_ref_loss_step,
    .step_dev = fnet_ref_step_dev,
};
