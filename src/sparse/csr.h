/* The CSR sparse layer's private face, for the topology updates of sparse training (SET, RigL;
 * src/sparse/sparse_train.c). */
#ifndef FNET_SPARSE_CSR_H
#define FNET_SPARSE_CSR_H

#include "core/layer_impl.h"

/* Whether l is a sparse layer. */
bool fnet_sparse_is(const fnet_layer *l);

/* The pattern, host memory owned by the layer: row_ptr (n_out + 1) and col (nnz), kept equal to
 * the backend's copy. */
const int32_t *fnet_sparse_row_ptr(const fnet_layer *l);
const int32_t *fnet_sparse_col(const fnet_layer *l);

/* A new pattern with the same nnz (host, checked by the caller: sorted, in range), uploaded. */
void fnet_sparse_set_pattern(fnet_layer *l, const int32_t *row_ptr, const int32_t *col);

/* While G (n_out, n_in floats, backend memory) is not NULL, every backward adds the dense
 * gradient dyᵀ·x of the whole weight matrix to it (RigL's regrowth criterion). */
void fnet_sparse_probe(fnet_layer *l, float *G);

/* The initializer the layer was drawn with, for new weights (SET). */
fnet_init fnet_sparse_init_kind(const fnet_layer *l);

#endif
