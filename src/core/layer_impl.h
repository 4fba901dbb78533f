/* The layer table: what every layer kind implements (docs/design.md, "Layer kinds"). Layer code
 * calls backend ops only: every pointer a layer op receives or keeps is backend memory, except
 * where a comment says host. */
#ifndef FNET_CORE_LAYER_IMPL_H
#define FNET_CORE_LAYER_IMPL_H

#include "core/internal.h"
#include "core/backend.h"
#include "core/layer_kind.h"

struct fnet_init_out;

/* An index tensor of a layer (layer ops aux). */
struct fnet_aux_info {
    const char *name;   // in the checkpoint: "layers.<i>.<name>"
    int64_t numel;      // 1-D
    const int32_t *data; // backend memory
};

struct fnet_layer_ops {
    const struct fnet_layer_desc *desc; // the kind: its enum value and spec name
    // Backend ops beyond the required ones that the kind runs on (FNET_OPS(FNET_OP_...)): a
    // backend that lacks one is refused when the layer is created.
    uint64_t needs;
    // Weights drawn from rng by init, biases zero, written in order through out
    // (fnet_init_put): all n_params of them. May be NULL (no parameters, nothing drawn).
    fnet_status (*init)(fnet_layer *l, fnet_init init, fnet_rng *rng, struct fnet_init_out *out);
    // size workspaces for max_batch (called when it grows, and for kinds with threads_sized when
    // the ctx's thread count changed since); may be NULL
    fnet_status (*reserve)(fnet_layer *l, int64_t max_batch);
    // x (B, n_in) -> y (B, n_out); y == x for in-place kinds (activations, dropout)
    fnet_status (*forward)(fnet_layer *l, const float *x, int64_t B, float *y);
    // writes (accumulate false) or adds to (true) the gradient slice; dx (B, n_in) unless NULL;
    // dx == dy allowed for in-place kinds
    fnet_status (*backward)(fnet_layer *l, const float *x, const float *y, const float *dy,
                            int64_t B, float *dx, bool accumulate);
    // Frobenius decay λ/2·‖W‖²_F of the layer's matrix, its gradient added to the layer's
    // gradient; returns the value. NULL: the kind has none (fnet_model_set_frobenius_decay).
    double (*penalty)(fnet_layer *l, float lambda);
    double (*flops)(const fnet_layer *l, int64_t B);
    // W (n_out, n_in), host memory: the dense matrix the layer applies. NULL: not linear
    fnet_status (*to_dense)(const fnet_layer *l, float *W);
    int (*num_tensors)(const fnet_layer *l);
    void (*tensor)(const fnet_layer *l, int i, fnet_tensor_info *info);
    // Index tensors that are not parameters (a sparse layer's row_ptr and col_idx): 1-D int32,
    // backend memory, saved and loaded beside the parameters. NULL num_aux: none.
    int (*num_aux)(const fnet_layer *l);
    void (*aux)(const fnet_layer *l, int i, struct fnet_aux_info *info);
    // Loading: data[i] (host memory, info.numel int32 each, maybe unaligned) for every aux
    // tensor, checked against each other and the layer: FNET_ERR_FORMAT naming the tensor and
    // the fault (nothing changed), FNET_ERR_OUT_OF_MEMORY; then uploaded (set_aux cannot fail).
    fnet_status (*check_aux)(const fnet_layer *l, const void *const *data);
    void (*set_aux)(fnet_layer *l, const void *const *data);
    // Random state carried from step to step (dropout: the seed of its mask stream and the
    // count of masks drawn), saved in checkpoints as metadata "layers.<i>.rng" so that a loaded
    // model, or a resumed run, draws on where it stopped. NULL: the kind has none.
    void (*get_rng)(const fnet_layer *l, uint64_t state[2]);
    void (*set_rng)(fnet_layer *l, const uint64_t state[2]);
    void (*destroy)(fnet_layer *l); // frees the kind's own workspaces, not the struct
    // its spec item, every size and rank named so that the item rebuilds this very layout
    void (*describe)(const fnet_layer *l, struct fnet_spec_item *it);
    // Rank-adaptive rounding to accuracy eps and rank cap max_rank (0: none): *out a new
    // stand-alone layer of the same kind with smaller ranks, or NULL when no rank would change.
    // NULL: the kind has no ranks to round.
    fnet_status (*round)(const fnet_layer *l, double eps, int64_t max_rank, fnet_layer **out);
    bool in_place;      // forward may run with y == x (the model then shares buffers)
    bool uses_output;   // backward reads y: a following layer must not overwrite it in place
    bool threads_sized; // workspaces depend on the ctx's thread count (one per worker)
};

struct fnet_layer {
    const struct fnet_layer_ops *ops;
    fnet_ctx *ctx;
    int64_t n_in, n_out, n_params;
    float *w, *g;         // views into the model's flat vectors, or into own (backend memory)
    float *own;           // stand-alone layers: 2·n_params floats (w then g); NULL in a model
    int64_t max_batch;    // workspaces are sized for this
    int reserved_threads; // ... and, for threads_sized kinds, this many threads
    bool training;
    int64_t row0;         // the first row of the batch this forward sees, within the whole batch
                          // that ranks of a job share (src/dist; 0 otherwise): layers that draw
                          // per-sample randomness (dropout) draw those rows' part of it
    bool in_model;
};

/* What a forward pass reserves: fnet_layer_reserve, and for threads_sized kinds a new
 * workspace when the ctx's thread count changed since the last one (never between a forward
 * and its backward: fnet_layer_reserve itself only grows). */
fnet_status fnet_layer_reserve_forward(fnet_layer *l, int64_t batch);

/* A reserve's workspaces: new backend buffers of counts[i] floats for *bufs[i] (k <= 4), all or
 * none. On success the old buffers are freed; on failure they stay and the message names `what`
 * and max_batch (FNET_ERR_OUT_OF_MEMORY). */
fnet_status fnet_layer_workspaces(fnet_layer *l, int k, float **const bufs[], const int64_t counts[],
                                  const char *what, int64_t max_batch);

/* The most parameters one layer may have (dense: n_in·n_out): the flat vector's indices, its
 * gradient twin and every kind's size products stay far from int64 overflow. */
#define FNET_MAX_LAYER_PARAMS ((int64_t)1 << 40)

/* Common part of every kind's create: the backend has the kind's ops (FNET_ERR_UNSUPPORTED),
 * n_params is at most FNET_MAX_LAYER_PARAMS (FNET_ERR_INVALID_ARG; each kind checks its own
 * size products before it multiplies), fill base, allocate own parameters and gradient (zeroed,
 * backend memory). */
fnet_status fnet_layer_base_init(fnet_layer *l, fnet_ctx *ctx, const struct fnet_layer_ops *ops,
                                 int64_t n_in, int64_t n_out, int64_t n_params);
/* Point the layer at slices of a model's flat vectors, dropping its own storage after copying
 * its values over. */
void fnet_layer_bind(fnet_layer *l, float *w, float *g);

/* Point a stand-alone layer at parameters and gradient that another layer owns (w and g, n_params
 * floats each, backend memory), dropping its own storage without copying: a layer built from
 * other layers (Tucker's mode products) runs them on slices or workspaces of its own. */
void fnet_layer_view(fnet_layer *l, float *w, float *g);

/* Where init writes: the layer's parameters, filled in order from host memory, a piece at a time
 * (so a large dense layer needs no host copy of itself). The one place parameters are uploaded
 * at initialization: the same draws give the same layer on every backend. */
struct fnet_init_out {
    fnet_layer *l;
    int64_t done; // parameters written so far
};
/* The next n parameters = w (n floats, host memory); FNET_INIT_CHUNK zeros at a time for
 * fnet_init_put_zeros. */
void fnet_init_put(struct fnet_init_out *out, const float *w, int64_t n);
void fnet_init_put_zeros(struct fnet_init_out *out, int64_t n);
#define FNET_INIT_CHUNK 4096 // floats a layer's init draws per piece

/* The layer's parameters as host memory: a new host copy (fnet_free), or NULL when out of
 * memory (no message). What a host-side algorithm (TT to_dense, rounding, norms) starts from. */
float *fnet_layer_host_params(const fnet_layer *l);

/* The kind's name ("dense", "tt"). */
static inline const char *fnet_layer_name(const fnet_layer *l)
{
    return l->ops->desc->name;
}

#endif
