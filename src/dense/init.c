/* Initializers: Glorot & Bengio 2010 (uniform and normal), He et al. 2015, plain normal/uniform. */
#include "dense/init.h"

#include <math.h>

void fnet_init_fill(fnet_init init, int64_t fan_in, int64_t fan_out, fnet_rng *rng, int64_t n,
                    float *w)
{
    double fi = (double)fan_in, fo = (double)fan_out;
    switch (init) {
    case FNET_INIT_GLOROT_UNIFORM: {
        double a = sqrt(6.0 / (fi + fo));
        for (int64_t i = 0; i < n; i++)
            w[i] = (float)(a * (2.0 * fnet_rng_uniform(rng) - 1.0));
        break;
    }
    case FNET_INIT_GLOROT_NORMAL: {
        double s = sqrt(2.0 / (fi + fo));
        for (int64_t i = 0; i < n; i++)
            w[i] = (float)(s * fnet_rng_normal(rng));
        break;
    }
    case FNET_INIT_HE: {
        double s = sqrt(2.0 / fi);
        for (int64_t i = 0; i < n; i++)
            w[i] = (float)(s * fnet_rng_normal(rng));
        break;
    }
    case FNET_INIT_NORMAL:
        for (int64_t i = 0; i < n; i++)
            w[i] = (float)(0.01 * fnet_rng_normal(rng));
        break;
    case FNET_INIT_UNIFORM:
        for (int64_t i = 0; i < n; i++)
            w[i] = (float)(0.05 * (2.0 * fnet_rng_uniform(rng) - 1.0));
        break;
    }
}

double fnet_init_variance(fnet_init init, int64_t fan_in, int64_t fan_out)
{
    double fi = (double)fan_in, fo = (double)fan_out;
    switch (init) {
    case FNET_INIT_GLOROT_UNIFORM:
    case FNET_INIT_GLOROT_NORMAL: return 2.0 / (fi + fo);
    case FNET_INIT_HE: return 2.0 / fi;
    case FNET_INIT_NORMAL: return 1e-4;
    case FNET_INIT_UNIFORM: break;
    }
    return 0.05 * 0.05 / 3.0;
}

void fnet_init_fill_std(fnet_init init, double sigma, fnet_rng *rng, int64_t n, float *w)
{
    bool uniform = init == FNET_INIT_GLOROT_UNIFORM || init == FNET_INIT_UNIFORM;
    for (int64_t i = 0; i < n; i++)
        w[i] = uniform ? (float)(sigma * sqrt(3.0) * (2.0 * fnet_rng_uniform(rng) - 1.0))
                       : (float)(sigma * fnet_rng_normal(rng));
}
