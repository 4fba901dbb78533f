/* Weight initializers shared by the layer kinds. */
#ifndef FNET_DENSE_INIT_H
#define FNET_DENSE_INIT_H

#include "core/internal.h"

/* Fill w (n) for a layer with the given fans: Glorot uniform/normal, He normal, N(0, 0.01²) or
 * U(-0.05, 0.05), drawn in order from rng (host memory). */
void fnet_init_fill(fnet_init init, int64_t fan_in, int64_t fan_out, fnet_rng *rng, int64_t n,
                    float *w);

/* The variance of fnet_init_fill's draws for these fans: what a factored layer's product of
 * factors is scaled to have. */
double fnet_init_variance(fnet_init init, int64_t fan_in, int64_t fan_out);

/* Fill w (n) i.i.d. with mean 0 and standard deviation sigma, uniform for the uniform
 * initializers (Glorot uniform, uniform) and normal for the others, drawn in order from rng
 * (host memory): the factors of a factored layer. */
void fnet_init_fill_std(fnet_init init, double sigma, fnet_rng *rng, int64_t n, float *w);

#endif
