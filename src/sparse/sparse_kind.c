/* The "sparse" kind (a CSR layer of density D): its spec grammar, "sparse:N:density=D" with D in
 * (0, 1], parsed and checked. The layer itself is not built yet (README, "Status"): a model that
 * names it is refused with FNET_ERR_UNSUPPORTED before anything is allocated. */
#include "core/layer_kind.h"

static const struct fnet_spec_opt sparse_opts[] = {
    {.name = "density", .type = FNET_SPEC_REAL, .required = true, .range = {0.0, 1.0, true, false}},
};

const struct fnet_layer_desc fnet_sparse_desc = {
    .kind = FNET_LAYER_SPARSE,
    .name = "sparse",
    .usage = "sparse:N:density=D",
    .arg = FNET_SPEC_ARG_SIZE,
    .opts = sparse_opts,
    .n_opts = 1,
};
