/* The "circ" kind (block-circulant, blocks of size b): its spec grammar, "circ:N:block=B" with B
 * dividing N, parsed and checked. The layer itself is not built yet (README, "Status"): a model
 * that names it is refused with FNET_ERR_UNSUPPORTED before anything is allocated. */
#include "core/layer_kind.h"

#include <inttypes.h>

static fnet_status circ_check(const struct fnet_spec_where *w, const struct fnet_spec_item *it)
{
    int64_t block = fnet_spec_int(it, "block", 1);
    if (it->n % block != 0)
        return fnet_spec_fail(w, "block %" PRId64 " does not divide the size %" PRId64, block,
                              it->n);
    return FNET_OK;
}

static const struct fnet_spec_opt circ_opts[] = {
    {.name = "block", .type = FNET_SPEC_INT, .required = true},
};

const struct fnet_layer_desc fnet_circ_desc = {
    .kind = FNET_LAYER_CIRC,
    .name = "circ",
    .usage = "circ:N:block=B",
    .arg = FNET_SPEC_ARG_SIZE,
    .opts = circ_opts,
    .n_opts = 1,
    .check = circ_check,
};
