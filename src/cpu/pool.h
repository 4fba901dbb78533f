/* A small thread pool for the library's element-wise work. Workers sleep on a condition variable
 * between jobs (never spin), so they do not compete with BLAS's threads. */
#ifndef FNET_CPU_POOL_H
#define FNET_CPU_POOL_H

#include <stdint.h>

struct fnet_pool;

/* fn(arg, begin, end) processes the half-open range [begin, end) of a job's n items. */
typedef void (*fnet_range_fn)(void *arg, int64_t begin, int64_t end);

/* A pool of `threads` workers in all, the caller included (threads - 1 are created). NULL on
 * failure. */
struct fnet_pool *fnet_pool_create(int threads);
void fnet_pool_free(struct fnet_pool *pool);

/* Below this much element-wise work (floats, or multiply-adds) an op runs on the calling thread:
 * waking the workers costs more. The grain the CPU backend's ops split their work by. */
#define FNET_POOL_GRAIN 32768

/* Run fn over [0, n) split into contiguous chunks (multiples of `grain`, one per thread), the
 * caller taking the first; returns when all are done. pool NULL or n small: runs inline. */
void fnet_pool_run(struct fnet_pool *pool, int64_t n, int64_t grain, fnet_range_fn fn, void *arg);

#endif
