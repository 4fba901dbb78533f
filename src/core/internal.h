/* Private core API shared across src/: the ctx, failing with a message, allocation, logging.
 * Never installed; never included by experiments/. */
#ifndef FNET_CORE_INTERNAL_H
#define FNET_CORE_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <factornet.h>

struct fnet_backend_ops;
struct fnet_dist;

struct fnet_ctx {
    const struct fnet_backend_ops *be;
    fnet_backend_kind kind;
    int threads;
    int device;             // the backend's device (CUDA), 0 elsewhere; set before state_init
    void *state;            // the backend's own (handles, streams, the CPU thread pool)
    struct fnet_dist *dist; // the job its training calls are collective over (src/dist), or NULL
    fnet_status last_status;
    int message_at;         // last_error + message_at: the message without "file.c:LINE: "
    char last_error[512];
};

/* Record "file.c:LINE: message" as the ctx's last error (the location for the library's log and
 * fnet_ctx_last_error, the message alone for fnet_ctx_last_message) and return st. ctx may be
 * NULL. */
fnet_status fnet_fail_at(fnet_ctx *ctx, fnet_status st, const char *file, int line,
                         const char *fmt, ...) __attribute__((format(printf, 5, 6)));
#define fnet_fail(ctx, st, ...) fnet_fail_at((ctx), (st), __FILE__, __LINE__, __VA_ARGS__)

/* Always-on invariant check inside functions that return fnet_status. */
#define FNET_ASSERT(ctx, cond)                                                                     \
    do {                                                                                           \
        if (!(cond))                                                                               \
            return fnet_fail((ctx), FNET_ERR_INTERNAL, "invariant failed: %s", #cond);             \
    } while (0)

/* Hot element-wise loops are compiled for AVX-512, AVX2 and baseline x86-64 and picked at load
 * time (GCC/Clang function multi-versioning), so a portable build still runs wide vectors. The
 * build uses -std=c11 (no FMA contraction) and IEEE sqrt/div, so every clone gives the same bits.
 * Unoptimized builds (Debug, the sanitizers') get one version: at -O0 nothing is vectorized, and
 * mixing AVX-512 clones with SSE code there only adds AVX-SSE transition stalls. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && defined(__OPTIMIZE__) &&  \
    !defined(FNET_NO_CLONES)
#define FNET_VECTORIZE __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define FNET_VECTORIZE
#endif

/* Logging through the settable callback (never stdout). */
void fnet_log(fnet_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Allocation: 64-byte aligned, overflow-checked, NULL on failure (also when the test hook says
 * so). fnet_free(NULL) is a no-op. */
void *fnet_malloc(size_t bytes);
void *fnet_calloc(size_t n, size_t size);
void *fnet_malloc_array(size_t n, size_t size); // n*size with overflow check, uninitialized
void fnet_free(void *p);
char *fnet_strdup(const char *s);

/* Test hook (declared here and in tests): make the k-th next allocation of this thread fail
 * (k >= 1); k = 0 disables. fnet_debug_alloc_count() counts allocations of this thread. */
FNET_API void fnet_debug_fail_alloc(long k);
/* Test hook (this thread): whether the trainer replays recorded steps: 0 where the backend
 * records them (graph_make: CUDA), 1 also where the step would merely be called again (any
 * backend with u8_gather, loss_step and step_dev: the path then runs and is checked without a
 * GPU), -1 never. Returns the previous setting. */
FNET_API int fnet_debug_train_replay(int mode);
FNET_API long fnet_debug_alloc_count(void);
/* Count one allocation and say whether the test hook makes it fail: for allocators that do not
 * go through fnet_malloc (the guarded backend's mmap). */
bool fnet_alloc_fails_now(void);

/* FNET_ERR_SHAPE unless d's samples fit m's input and d's classes its outputs; `what` names the
 * data in the message ("training", "validation"). Shared by the trainers. */
fnet_status fnet_train_check_data(fnet_model *m, const fnet_dataset *d, const char *what);

/* Counter-based random bits (docs/design.md, "Random numbers"): element i of draw `step` of the
 * stream `seed` is SplitMix64's output i + 1 from a state that mixes seed and step, so any
 * element can be computed on its own, in any order, on any backend, with the same bits. */
static inline uint64_t fnet_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static inline uint64_t fnet_counter_key(uint64_t seed, uint64_t step)
{
    return fnet_mix64(seed ^ fnet_mix64(step + UINT64_C(0x9E3779B97F4A7C15)));
}

static inline uint64_t fnet_counter_bits(uint64_t key, uint64_t i)
{
    return fnet_mix64(key + (i + 1) * UINT64_C(0x9E3779B97F4A7C15));
}

/* Monotonic wall clock in seconds. */
double fnet_now(void);

#endif
