/* The "lowrank" kind (W = U·V, U (n_out, r), V (r, n_in)): its spec grammar, "lowrank:N:rank=R",
 * parsed and checked. The layer itself is not built yet (README, "Status"): a model that names
 * it is refused with FNET_ERR_UNSUPPORTED before anything is allocated. */
#include "core/layer_kind.h"

static const struct fnet_spec_opt lowrank_opts[] = {
    {.name = "rank", .type = FNET_SPEC_INT, .required = true},
};

const struct fnet_layer_desc fnet_lowrank_desc = {
    .kind = FNET_LAYER_LOWRANK,
    .name = "lowrank",
    .usage = "lowrank:N:rank=R",
    .arg = FNET_SPEC_ARG_SIZE,
    .opts = lowrank_opts,
    .n_opts = 1,
};
