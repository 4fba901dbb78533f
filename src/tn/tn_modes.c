/* The modes of a side of a Tucker or CP layer (src/tn/tn_modes.h). */
#include "tn/tn_modes.h"
#include "tn/tt_plan.h"

#include <math.h>
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

const char *fnet_tn_factor_name(int k)
{
    static const char *const names[] = {"factor0", "factor1", "factor2", "factor3",
                                        "factor4", "factor5", "factor6", "factor7"};
    return k >= 0 && k < (int)(sizeof(names) / sizeof(names[0])) ? names[k] : "factor";
}

fnet_status fnet_tn_check_dense(fnet_ctx *ctx, const char *what, const float *W, int64_t n_out,
                                int64_t n_in)
{
    if (n_out < 1 || n_in < 1 || n_out > ((int64_t)1 << 31) || n_in > ((int64_t)1 << 31))
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "%s: sizes must be in 1..2^31, got %lld -> "
                         "%lld", what, (long long)n_in, (long long)n_out);
    for (int64_t i = 0; i < n_out * n_in; i++)
        if (!isfinite(W[i]))
            return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "%s: W has a non-finite entry at (%lld, "
                             "%lld)", what, (long long)(i / n_in), (long long)(i % n_in));
    return FNET_OK;
}
