/* Seeded random numbers (xoshiro256**, seeded through splitmix64): the only source of randomness. */
#ifndef FACTORNET_RNG_H
#define FACTORNET_RNG_H

#include <stdint.h>
#include <factornet/export.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Generator state; plain data, copy it to fork a stream. Seed it with fnet_rng_seed(). */
typedef struct fnet_rng {
    uint64_t s[4];
} fnet_rng;

/** Seed: the same seed gives the same stream on every platform. */
FNET_API void fnet_rng_seed(fnet_rng *rng, uint64_t seed);
/** Next 64 random bits. */
FNET_API uint64_t fnet_rng_next(fnet_rng *rng);
/** Uniform double in [0, 1). */
FNET_API double fnet_rng_uniform(fnet_rng *rng);
/** Standard normal (Box-Muller on two uniforms). */
FNET_API double fnet_rng_normal(fnet_rng *rng);
/** Uniform integer in [0, n), unbiased; n > 0. */
FNET_API uint64_t fnet_rng_below(fnet_rng *rng, uint64_t n);
/** Fisher-Yates shuffle of idx[0..n) (host memory). */
FNET_API void fnet_rng_shuffle(fnet_rng *rng, int64_t *idx, int64_t n);

#ifdef __cplusplus
}
#endif
#endif
