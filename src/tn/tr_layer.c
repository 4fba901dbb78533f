/* The tensor-ring layer's API (docs/tn.md, "Tensor ring"): the TT layer of src/tn/tt_layer.c with
 * the ring closed, r_0 = r_d = R, and TR-SVD (src/tn/tr_algebra.c) to start it from a dense W. */
#include "tn/tr.h"
#include "tn/tt_layer.h"
#include "core/model_impl.h"

#include <factornet/tn.h>

fnet_status fnet_tr_create(fnet_ctx *ctx, int64_t n_in, int64_t n_out, const fnet_tt_params *p,
                           fnet_layer **out)
{
    return fnet_tt_make(ctx, n_in, n_out, p, true, out);
}

fnet_status fnet_model_add_tr(fnet_model *m, int64_t n_out, const fnet_tt_params *p)
{
    if (m == NULL)
        return FNET_ERR_INVALID_ARG;
    fnet_layer *l;
    fnet_status st = fnet_tr_create(fnet_model_ctx(m), fnet_model_n_out(m), n_out, p, &l);
    return st != FNET_OK ? st : fnet_model_add_layer(m, l);
}

fnet_status fnet_tr_from_dense(fnet_ctx *ctx, const float *W, int64_t n_out, int64_t n_in,
                               const fnet_tt_params *p, fnet_layer **out)
{
    if (ctx == NULL || W == NULL || p == NULL || out == NULL)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "tr_from_dense: NULL argument");
    *out = NULL;
    if (n_in < 1 || n_out < 1)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "tr_from_dense: sizes must be positive");
    // the layer this would make, checked in full first: its shape gives TR-SVD its ranks
    fnet_layer *probe = NULL;
    fnet_status st = fnet_tr_create(ctx, n_in, n_out, p, &probe);
    if (st != FNET_OK)
        return st;
    fnet_tt_info info;
    st = fnet_tt_layer_info(probe, 1, &info);
    fnet_layer_free(probe);
    if (st != FNET_OK)
        return st;
    struct fnet_tt_shape s = {.d = info.d};
    for (int k = 0; k < info.d; k++) {
        s.m[k] = info.out_modes[k];
        s.n[k] = info.in_modes[k];
    }
    for (int k = 0; k <= info.d; k++)
        s.r[k] = info.ranks[k];
    float *cores = NULL;
    st = fnet_tr_svd(ctx, W, p->eps, &s, &cores);
    if (st != FNET_OK)
        return st;
    float *zero = p->bias ? fnet_calloc((size_t)n_out, sizeof(float)) : NULL;
    if (p->bias && zero == NULL)
        st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "tr_from_dense: bias");
    else
        st = fnet_tt_layer_from_cores(ctx, &s, true, p->bias, p->plan, p->merge, cores, zero, out);
    fnet_free(zero);
    fnet_free(cores);
    return st;
}
