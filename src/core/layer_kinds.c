/* The table of layer kinds: one row per kind, in the order the spec grammar lists them (the
 * order of "expected dense, tt, ..." in a message). The only list of kinds in the library. */
#include "core/layer_kind.h"

static const struct fnet_layer_desc *const kinds[] = {
    &fnet_dense_desc,   &fnet_tt_desc,      &fnet_tr_desc,     &fnet_tucker_desc,
    &fnet_cp_desc,      &fnet_lowrank_desc, &fnet_circ_desc,   &fnet_sparse_desc,
    &fnet_relu_desc,    &fnet_tanh_desc,    &fnet_sigmoid_desc, &fnet_dropout_desc,
};

#define N_KINDS ((int)(sizeof(kinds) / sizeof(kinds[0])))

int fnet_layer_kind_count(void)
{
    return N_KINDS;
}

const struct fnet_layer_desc *fnet_layer_kind_at(int i)
{
    return i >= 0 && i < N_KINDS ? kinds[i] : NULL;
}

const struct fnet_layer_desc *fnet_layer_kind_desc(fnet_layer_kind kind)
{
    for (int i = 0; i < N_KINDS; i++)
        if (kinds[i]->kind == kind)
            return kinds[i];
    return NULL;
}

const char *fnet_layer_kind_name(fnet_layer_kind kind)
{
    const struct fnet_layer_desc *d = fnet_layer_kind_desc(kind);
    return d ? d->name : "unknown";
}
