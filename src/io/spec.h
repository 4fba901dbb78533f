/* The model-spec parser: "dense:1024,relu,tt:1024:rank=8,relu,dense:10" into items. It checks
 * syntax and ranges only; whether a kind is built is the model builder's business. */
#ifndef FNET_IO_SPEC_H
#define FNET_IO_SPEC_H

#include "core/internal.h"

#define FNET_SPEC_MAX_MODES 8

struct fnet_spec_item {
    fnet_layer_kind kind;
    int64_t n;          // outputs (dense, tt, lowrank, circ, sparse); 0 for activations
    float p;            // dropout probability in [0, 1)
    float density;      // sparse: in (0, 1]
    int64_t rank;       // tt (uniform rank) or lowrank; 0 when not given
    int64_t block;      // circ block size
    bool no_bias;       // dense, tt: ":bias=0"
    int n_ranks;        // tt ranks=R1xR2x..: the d-1 inner ranks
    int64_t ranks[FNET_SPEC_MAX_MODES];
    int n_in_modes, n_out_modes; // tt in=a1xa2.., out=b1xb2..
    int64_t in_modes[FNET_SPEC_MAX_MODES], out_modes[FNET_SPEC_MAX_MODES];
};

/* Parse a spec. On success *items (fnet_free) holds *count >= 1 items. On failure returns
 * FNET_ERR_FORMAT (or _INVALID_ARG for NULL, _OUT_OF_MEMORY) with a message naming the item's
 * position (1-based) and text, e.g. "spec item 3 'dense:0': size must be a positive integer". */
fnet_status fnet_spec_parse(fnet_ctx *ctx, const char *spec, struct fnet_spec_item **items,
                            int *count);

/* Write the canonical text of one item into buf (size cap); returns the length written. */
int fnet_spec_item_format(const struct fnet_spec_item *it, char *buf, size_t cap);

#endif
