/* The modes of a side of a Tucker or CP layer (src/tn/tn_modes.h). */
#include "tn/tn_modes.h"
#include "tn/tt_plan.h"

#include <string.h>

fnet_status fnet_tn_side_modes(fnet_ctx *ctx, const char *kind, bool input, int64_t size,
                               int n_given, const int64_t *given, int d, int max_modes,
                               int64_t *modes, int *count)
{
    const char *side = input ? "in" : "out", *what = input ? "input" : "output";
    if (n_given < 0 || n_given > max_modes)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "%s: %d %s modes, at most %d", kind, n_given,
                         side, max_modes);
    if (n_given == 0) {
        int primes = fnet_tt_prime_count(size);
        d = primes < d ? primes : d;
        d = d < 1 ? 1 : d;
        if (d == 1)
            modes[0] = size;
        else
            fnet_tt_balanced_modes(size, d, modes);
        *count = d;
        return FNET_OK;
    }
    int64_t prod = 1;
    for (int k = 0; k < n_given; k++) {
        if (given[k] < 1)
            return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "%s: %s mode %d is %lld, must be >= 1",
                             kind, what, k, (long long)given[k]);
        if (prod > size / given[k] + 1)
            prod = size + 1; // already past the size: stop multiplying before it overflows
        else
            prod *= given[k];
    }
    if (prod > size)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "%s: %s modes multiply to more than the %s "
                         "size %lld", kind, side, what, (long long)size);
    if (prod != size)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "%s: %s modes multiply to %lld, not the %s "
                         "size %lld", kind, side, (long long)prod, what, (long long)size);
    memcpy(modes, given, sizeof(int64_t) * (size_t)n_given);
    *count = n_given;
    return FNET_OK;
}
