/* Reference FFT ops: real DFTs of length n as plain O(n²) sums and the spectrum
 * multiply-accumulate of block-circulant layers as plain loops, all accumulated in double: the
 * oracle of the CPU backend's FFTW and vectorized cmac (src/core/backend.h, "FFTs and spectra";
 * docs/circulant.md). */
#include "cpu/ref.h"

#include <math.h>

static const double two_pi = 6.283185307179586476925286766559;

// The plan is the length alone: the reference needs no tables.
fnet_status fnet_ref_fft_plan(fnet_ctx *ctx, int64_t n, void **plan)
{
    *plan = NULL;
    FNET_ASSERT(ctx, n >= 1);
    struct fnet_ref_fft_plan *p = fnet_malloc(sizeof(*p));
    if (p == NULL)
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "fft plan of length %lld", (long long)n);
    p->n = n;
    *plan = p;
    return FNET_OK;
}

void fnet_ref_fft_plan_free(fnet_ctx *ctx, void *plan)
{
    fnet_free(plan);
}

// Twiddle angles are 2π·k/n with k = f·t mod n, kept as an integer (k += f, less n when it
// passes n) so that the argument of cos and sin stays below 2π and exact before the one
// division: the twiddles are correct to double rounding for any n.
static double angle(int64_t k, int64_t n)
{
    return two_pi * (double)k / (double)n;
}

// x (count, n) real -> X (count, n/2+1 complex, interleaved): X_f = Σ_t x_t·e^{−2πi·f·t/n}
void fnet_ref_rfft(fnet_ctx *ctx, const void *plan, int64_t count, const float *x, float *X)
{
    const int64_t n = ((const struct fnet_ref_fft_plan *)plan)->n, bins = n / 2 + 1;
    for (int64_t s = 0; s < count; s++) {
        const float *xs = x + s * n;
        float *Xs = X + s * 2 * bins;
        for (int64_t f = 0; f < bins; f++) {
            double re = 0.0, im = 0.0;
            for (int64_t t = 0, k = 0; t < n; t++, k = k + f < n ? k + f : k + f - n) {
                double a = angle(k, n);
                re += (double)xs[t] * cos(a);
                im -= (double)xs[t] * sin(a);
            }
            Xs[2 * f] = (float)re;
            Xs[2 * f + 1] = (float)im;
        }
    }
}

// X (count, n/2+1 complex) -> x (count, n) real: x_t = Σ_{f<n} X_f·e^{2πi·f·t/n} with
// X_{n−f} = conj(X_f). Bins 0 and n/2 (even n) are their own mirror images and count once, by
// their real parts alone; every other bin f counts twice: 2·(Re X_f·cos − Im X_f·sin). X is
// left as it was (the contract allows overwriting it; the oracle need not).
void fnet_ref_irfft(fnet_ctx *ctx, const void *plan, int64_t count, float *X, float *x)
{
    const int64_t n = ((const struct fnet_ref_fft_plan *)plan)->n, bins = n / 2 + 1;
    for (int64_t s = 0; s < count; s++) {
        const float *Xs = X + s * 2 * bins;
        float *xs = x + s * n;
        for (int64_t t = 0; t < n; t++) {
            double sum = (double)Xs[0];
            for (int64_t f = 1, k = t; f < bins; f++, k = k + t < n ? k + t : k + t - n) {
                double a = angle(k, n);
                if (2 * f == n)
                    sum += (double)Xs[2 * f] * cos(a);
                else
                    sum += 2.0 * ((double)Xs[2 * f] * cos(a) - (double)Xs[2 * f + 1] * sin(a));
            }
            xs[t] = (float)sum;
        }
    }
}

// C[m, n] (+)= Σ_k op_a(A[m, k]) ∘ op_b(B[k, n]), F complex values per spectrum, interleaved;
// spectrum (i, j) of A at A + 2F·(i·a_m + j·a_k), of B at B + 2F·(i·b_k + j·b_n), of C at
// C + 2F·(i·c_m + j·c_n). Products of floats are exact in double, so only the sums round.
void fnet_ref_cmac(fnet_ctx *ctx, int64_t F, int64_t M, int64_t N, int64_t K, const float *A,
                   int64_t a_m, int64_t a_k, bool conj_a, const float *B, int64_t b_k, int64_t b_n,
                   bool conj_b, float *C, int64_t c_m, int64_t c_n, bool accumulate)
{
    const double sa = conj_a ? -1.0 : 1.0, sb = conj_b ? -1.0 : 1.0;
    for (int64_t m = 0; m < M; m++)
        for (int64_t j = 0; j < N; j++) {
            float *c = C + 2 * F * (m * c_m + j * c_n);
            for (int64_t f = 0; f < F; f++) {
                double re = accumulate ? (double)c[2 * f] : 0.0;
                double im = accumulate ? (double)c[2 * f + 1] : 0.0;
                for (int64_t k = 0; k < K; k++) {
                    const float *a = A + 2 * F * (m * a_m + k * a_k) + 2 * f;
                    const float *b = B + 2 * F * (k * b_k + j * b_n) + 2 * f;
                    double ar = a[0], ai = sa * a[1], br = b[0], bi = sb * b[1];
                    re += ar * br - ai * bi;
                    im += ar * bi + ai * br;
                }
                c[2 * f] = (float)re;
                c[2 * f + 1] = (float)im;
            }
        }
}
