/* xoshiro256** (Blackman & Vigna 2018) seeded by splitmix64: fast, reproducible everywhere. */
#include "core/internal.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void fnet_rng_seed(fnet_rng *rng, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        rng->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t fnet_rng_next(fnet_rng *rng)
{
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double fnet_rng_uniform(fnet_rng *rng)
{
    return (double)(fnet_rng_next(rng) >> 11) * 0x1.0p-53;
}

double fnet_rng_normal(fnet_rng *rng)
{
    double u1 = fnet_rng_uniform(rng), u2 = fnet_rng_uniform(rng);
    return sqrt(-2.0 * log(1.0 - u1)) * cos(6.283185307179586 * u2);
}

uint64_t fnet_rng_below(fnet_rng *rng, uint64_t n)
{
    // Lemire's rejection keeps it unbiased.
    uint64_t threshold = (0 - n) % n;
    for (;;) {
        uint64_t r = fnet_rng_next(rng);
        if (r >= threshold)
            return r % n;
    }
}

void fnet_rng_shuffle(fnet_rng *rng, int64_t *idx, int64_t n)
{
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)fnet_rng_below(rng, (uint64_t)i + 1);
        int64_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}
