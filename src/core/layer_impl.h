/* The layer table: what every layer kind implements. Layer code calls backend ops only. */
#ifndef FNET_CORE_LAYER_IMPL_H
#define FNET_CORE_LAYER_IMPL_H

#include "core/internal.h"
#include "core/backend.h"

struct fnet_layer_ops {
    fnet_layer_kind kind;
    // weights from rng by init, biases zero
    fnet_status (*init)(fnet_layer *l, fnet_init init, fnet_rng *rng);
    // size workspaces for max_batch (called when it grows, and for kinds with threads_sized when
    // the ctx's thread count changed since); may be NULL
    fnet_status (*reserve)(fnet_layer *l, int64_t max_batch);
    // x (B, n_in) -> y (B, n_out); y == x for in-place kinds (activations, dropout)
    void (*forward)(fnet_layer *l, const float *x, int64_t B, float *y);
    // writes (accumulate false) or adds to (true) the gradient slice; dx (B, n_in) unless NULL;
    // dx == dy allowed for in-place kinds
    void (*backward)(fnet_layer *l, const float *x, const float *y, const float *dy, int64_t B,
                     float *dx, bool accumulate);
    double (*flops)(const fnet_layer *l, int64_t B);
    fnet_status (*to_dense)(const fnet_layer *l, float *W); // NULL: not linear
    int (*num_tensors)(const fnet_layer *l);
    void (*tensor)(const fnet_layer *l, int i, fnet_tensor_info *info);
    void (*destroy)(fnet_layer *l); // frees the kind's own workspaces, not the struct
    // its item in a spec string ("dense:64", "dropout:0.5"); returns the length (snprintf)
    int (*describe)(const fnet_layer *l, char *buf, size_t cap);
    bool in_place;    // forward may run with y == x (the model then shares buffers)
    bool uses_output; // backward reads y: a following layer must not overwrite it in place
    bool threads_sized; // workspaces depend on the ctx's thread count (one per worker)
};

struct fnet_layer {
    const struct fnet_layer_ops *ops;
    fnet_ctx *ctx;
    int64_t n_in, n_out, n_params;
    float *w, *g;         // views into the model's flat vectors, or into own
    float *own;           // stand-alone layers: 2·n_params floats (w then g); NULL in a model
    int64_t max_batch;    // workspaces are sized for this
    int reserved_threads; // ... and, for threads_sized kinds, this many threads
    bool training;
    bool in_model;
};

/* What a forward pass reserves: fnet_layer_reserve, and for threads_sized kinds a new
 * workspace when the ctx's thread count changed since the last one (never between a forward
 * and its backward: fnet_layer_reserve itself only grows). */
fnet_status fnet_layer_reserve_forward(fnet_layer *l, int64_t batch);

/* Common part of every kind's create: fill base, allocate own parameters (zeroed). */
fnet_status fnet_layer_base_init(fnet_layer *l, fnet_ctx *ctx, const struct fnet_layer_ops *ops,
                                 int64_t n_in, int64_t n_out, int64_t n_params);
/* Point the layer at slices of a model's flat vectors, dropping its own storage after copying
 * its values over. */
void fnet_layer_bind(fnet_layer *l, float *w, float *g);

#endif
