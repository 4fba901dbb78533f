/* What the TT layer (src/tn/tt_layer.c) shares with its spec kinds (src/tn/tt_kind.c) and the
 * tensor-ring layer's API (src/tn/tr_layer.c): a TR layer is the TT layer with r_0 = r_d = R. */
#ifndef FNET_TN_TT_LAYER_H
#define FNET_TN_TT_LAYER_H

#include "core/layer_impl.h"
#include "tn/tt.h"

/* The shape of a layer n_in -> n_out with settings p: modes chosen or checked, ordered by the cost
 * model when not given, ranks set (a uniform rank is a maximum) and checked; a tensor ring
 * (is_ring, ring rank `ring`: fnet_tr_shape_check) or a TT (ring 1: fnet_tt_shape_check). */
fnet_status fnet_tt_shape_from_params(fnet_ctx *ctx, int64_t n_in, int64_t n_out,
                                      const fnet_tt_params *p, bool is_ring, int64_t ring,
                                      struct fnet_tt_shape *s);

/* A ring's rank r_0 = r_d from its settings: p->ring, else the largest of p->ranks when given,
 * else p->rank. */
int64_t fnet_tt_ring_rank(const fnet_tt_params *p);

/* A stand-alone TT layer (ring false) or tensor ring (ring true: R = p->ring, or p->rank when 0),
 * parameters zero. */
fnet_status fnet_tt_make(fnet_ctx *ctx, int64_t n_in, int64_t n_out, const fnet_tt_params *p,
                         bool ring, fnet_layer **out);

/* A stand-alone TT layer of exactly shape s (d = 1 allowed; fnet_tt_shape_check), no bias,
 * planned by the cost model, parameters zero: the Tucker layer's mode products (rank-1 TTs). */
fnet_status fnet_tt_make_shape(fnet_ctx *ctx, const struct fnet_tt_shape *s, fnet_layer **out);

/* A new stand-alone layer of shape s (modes and ranks as given; a ring when ring), with the given
 * plan, and the cores and bias (host memory; b read only when bias) uploaded. */
fnet_status fnet_tt_layer_from_cores(fnet_ctx *ctx, const struct fnet_tt_shape *s, bool ring,
                                     bool bias, fnet_tt_plan plan, unsigned merge,
                                     const float *cores, const float *b, fnet_layer **out);

#endif
