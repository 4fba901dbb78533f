/* The CUDA backend's real FFTs: cuFFT plans on the ctx's stream. backend.h's plan is made per
 * length; cuFFT's per length and number of signals, so a layer's plan keeps a few of those
 * (each a forward and an inverse) for the signal counts it meets: a block-circulant layer uses
 * three per batch size (its weights' spectra, its inputs', its outputs'), for training, a last
 * partial batch and evaluation, and the oldest is replaced when a seventeenth turns up. */
#include "gpu/cuda_internal.h"

#include <cufft.h>
#include <stdint.h>

#define FFT_COUNTS 16

struct cuda_fft_plan {
    int64_t n;
    int next; // the slot the next new count takes
    struct {
        int64_t count; // 0: the slot is empty
        cufftHandle r2c, c2r;
    } slot[FFT_COUNTS];
};

fnet_status fnet_cuda_fft_plan(fnet_ctx *ctx, int64_t n, void **plan)
{
    *plan = NULL;
    if (n < 1)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "FFT length %lld", (long long)n);
    struct cuda_fft_plan *p = fnet_calloc(1, sizeof(*p));
    if (p == NULL)
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "FFT plan of length %lld", (long long)n);
    p->n = n;
    *plan = p;
    return FNET_OK;
}

static void destroy_slot(struct cuda_fft_plan *p, int i)
{
    if (p->slot[i].count > 0) {
        (void)cufftDestroy(p->slot[i].r2c);
        (void)cufftDestroy(p->slot[i].c2r);
    }
    p->slot[i].count = 0;
}

void fnet_cuda_fft_plan_free(fnet_ctx *ctx, void *plan)
{
    struct cuda_fft_plan *p = plan;
    if (p == NULL)
        return;
    fnet_cuda_enter(ctx);
    // the plans may still be in use by queued transforms
    (void)cudaStreamSynchronize(cuda_state(ctx)->stream);
    for (int i = 0; i < FFT_COUNTS; i++)
        destroy_slot(p, i);
    fnet_free(p);
}

static cufftResult make_one(cufftHandle *h, int64_t n, int64_t count, cufftType type,
                            cudaStream_t stream)
{
    size_t work = 0;
    long long dims[1] = {(long long)n};
    cufftResult r = cufftCreate(h);
    if (r != CUFFT_SUCCESS)
        return r;
    // contiguous signals: real ones n apart, spectra n/2 + 1 complex values apart
    if ((r = cufftMakePlanMany64(*h, 1, dims, NULL, 1, 0, NULL, 1, 0, type, (long long)count,
                                 &work)) == CUFFT_SUCCESS)
        r = cufftSetStream(*h, stream);
    if (r != CUFFT_SUCCESS)
        (void)cufftDestroy(*h);
    return r;
}

// The slot of `count` signals, made when missing; -1 (kept as the ctx's failure) when cuFFT
// cannot make it.
static int slot_for(fnet_ctx *ctx, struct cuda_fft_plan *p, int64_t count)
{
    for (int i = 0; i < FFT_COUNTS; i++)
        if (p->slot[i].count == count)
            return i;
    // a plan is made with cudaMalloc, and a replaced one waited for: neither can be captured
    // (the first step of an epoch, run before the capture, makes the ones a step needs)
    if (fnet_cuda_refuse_in_capture(ctx, "rfft/irfft", "makes a cuFFT plan"))
        return -1;
    int i = p->next;
    p->next = (p->next + 1) % FFT_COUNTS;
    // a replaced plan may still be in use by queued transforms
    if (p->slot[i].count > 0)
        (void)cudaStreamSynchronize(cuda_state(ctx)->stream);
    destroy_slot(p, i);
    cudaStream_t st = cuda_state(ctx)->stream;
    cufftResult r = CUFFT_ALLOC_FAILED;
    for (int attempt = 0; attempt < 2 && r == CUFFT_ALLOC_FAILED; attempt++) {
        if (attempt > 0) // the pool may hold what cuFFT's cudaMalloc is missing
            fnet_cuda_trim(ctx);
        r = make_one(&p->slot[i].r2c, p->n, count, CUFFT_R2C, st);
        if (r == CUFFT_SUCCESS) {
            r = make_one(&p->slot[i].c2r, p->n, count, CUFFT_C2R, st);
            if (r != CUFFT_SUCCESS)
                (void)cufftDestroy(p->slot[i].r2c);
        }
    }
    if (r != CUFFT_SUCCESS) {
        (void)cudaGetLastError();
        fnet_cuda_keep(ctx, r == CUFFT_ALLOC_FAILED ? FNET_ERR_OUT_OF_MEMORY : FNET_ERR_BACKEND,
                       "cuFFT plan of %lld signals of length %lld: cufftResult %d",
                       (long long)count, (long long)p->n, (int)r);
        return -1;
    }
    p->slot[i].count = count;
    return i;
}

// cuFFT wants its real and complex arrays aligned to a complex value (8 bytes); the layers'
// signals are slices of the flat vector and of activations, so they may sit 4 bytes off. Such a
// one goes through the ctx's buffer b (kept and grown: fnet_cuda_grow). NULL when that fails
// (kept).
static float *aligned(fnet_ctx *ctx, const char *op, struct cuda_buf *b, float *p, size_t floats,
                      bool copy_in)
{
    if (((uintptr_t)p & 7) == 0)
        return p;
    float *tmp = fnet_cuda_grow(ctx, op, b, floats * sizeof(float), NULL);
    if (tmp != NULL && copy_in)
        fnet_cuda_check(ctx, op, cudaMemcpyAsync(tmp, p, floats * sizeof(float),
                                                 cudaMemcpyDeviceToDevice,
                                                 cuda_state(ctx)->stream));
    return tmp;
}

// The end of aligned(): tmp copied out to p when asked (nothing when tmp is p).
static void unaligned(fnet_ctx *ctx, const char *op, float *p, float *tmp, size_t floats,
                      bool copy_out)
{
    if (tmp != p && tmp != NULL && copy_out)
        fnet_cuda_check(ctx, op, cudaMemcpyAsync(p, tmp, floats * sizeof(float),
                                                 cudaMemcpyDeviceToDevice,
                                                 cuda_state(ctx)->stream));
}

void fnet_cuda_rfft(fnet_ctx *ctx, const void *plan, int64_t count, const float *x, float *X)
{
    // the plan is backend-private: its cache of cuFFT plans changes behind the const
    struct cuda_fft_plan *p = (struct cuda_fft_plan *)plan;
    if (count <= 0)
        return;
    fnet_cuda_enter(ctx);
    cudaStream_t st = cuda_state(ctx)->stream;
    if (p->n == 1) { // X_0 = x_0 + 0i
        if (!fnet_cuda_check(ctx, "rfft", cudaMemsetAsync(X, 0, (size_t)count * 2 * sizeof(float),
                                                          st)))
            fnet_cuda_check(ctx, "rfft", cudaMemcpy2DAsync(X, 2 * sizeof(float), x, sizeof(float),
                                                           sizeof(float), (size_t)count,
                                                           cudaMemcpyDeviceToDevice, st));
        return;
    }
    int i = slot_for(ctx, p, count);
    if (i < 0)
        return;
    size_t nx = (size_t)(count * p->n), nX = (size_t)(count * (p->n / 2 + 1) * 2);
    struct cuda_state *s = cuda_state(ctx);
    float *ax = aligned(ctx, "rfft", &s->fft_in, (float *)x, nx, true);
    float *aX = aligned(ctx, "rfft", &s->fft_out, X, nX, false);
    if (ax != NULL && aX != NULL) {
        cufftResult r = cufftExecR2C(p->slot[i].r2c, (cufftReal *)ax, (cufftComplex *)aX);
        if (r != CUFFT_SUCCESS)
            fnet_cuda_keep(ctx, FNET_ERR_BACKEND, "rfft: cufftExecR2C: cufftResult %d", (int)r);
    }
    unaligned(ctx, "rfft", (float *)x, ax, nx, false);
    unaligned(ctx, "rfft", X, aX, nX, true);
}

void fnet_cuda_irfft(fnet_ctx *ctx, const void *plan, int64_t count, float *X, float *x)
{
    struct cuda_fft_plan *p = (struct cuda_fft_plan *)plan;
    if (count <= 0)
        return;
    fnet_cuda_enter(ctx);
    cudaStream_t st = cuda_state(ctx)->stream;
    if (p->n == 1) { // x_0 = Re X_0
        fnet_cuda_check(ctx, "irfft", cudaMemcpy2DAsync(x, sizeof(float), X, 2 * sizeof(float),
                                                        sizeof(float), (size_t)count,
                                                        cudaMemcpyDeviceToDevice, st));
        return;
    }
    int i = slot_for(ctx, p, count);
    if (i < 0)
        return;
    int64_t bins = p->n / 2 + 1;
    size_t nx = (size_t)(count * p->n), nX = (size_t)(count * bins * 2);
    // the contract ignores the imaginary parts of bin 0 and, for even n, of bin n/2, which
    // cuFFT's C2R does not promise to: they are zeroed (X may be overwritten), one per signal
    size_t pitch = (size_t)bins * 2 * sizeof(float);
    fnet_cuda_check(ctx, "irfft", cudaMemset2DAsync(X + 1, pitch, 0, sizeof(float),
                                                    (size_t)count, st));
    if (p->n % 2 == 0)
        fnet_cuda_check(ctx, "irfft", cudaMemset2DAsync(X + 2 * (bins - 1) + 1, pitch, 0,
                                                        sizeof(float), (size_t)count, st));
    struct cuda_state *s = cuda_state(ctx);
    float *aX = aligned(ctx, "irfft", &s->fft_in, X, nX, true);
    float *ax = aligned(ctx, "irfft", &s->fft_out, x, nx, false);
    if (ax != NULL && aX != NULL) {
        // cuFFT's C2R overwrites its input, which the contract allows
        cufftResult r = cufftExecC2R(p->slot[i].c2r, (cufftComplex *)aX, (cufftReal *)ax);
        if (r != CUFFT_SUCCESS)
            fnet_cuda_keep(ctx, FNET_ERR_BACKEND, "irfft: cufftExecC2R: cufftResult %d", (int)r);
    }
    unaligned(ctx, "irfft", X, aX, nX, false);
    unaligned(ctx, "irfft", x, ax, nx, true);
}
