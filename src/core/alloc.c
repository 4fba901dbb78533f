/* Allocation: 64-byte aligned, overflow-checked, with a per-thread fail-the-k-th hook so that
 * every out-of-memory path can be tested. */
#include "core/internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FNET_ALIGN 64

static _Thread_local long fail_countdown; // 0: off; k: the k-th next allocation fails
static _Thread_local long alloc_count;

void fnet_debug_fail_alloc(long k)
{
    fail_countdown = k > 0 ? k : 0;
}

long fnet_debug_alloc_count(void)
{
    return alloc_count;
}

bool fnet_alloc_fails_now(void)
{
    alloc_count++;
    return fail_countdown > 0 && --fail_countdown == 0;
}

void *fnet_malloc(size_t bytes)
{
    if (fnet_alloc_fails_now())
        return NULL;
    if (bytes == 0)
        bytes = 1;
    if (bytes > SIZE_MAX - FNET_ALIGN)
        return NULL;
    void *p = NULL;
    if (posix_memalign(&p, FNET_ALIGN, bytes) != 0)
        return NULL;
    return p;
}

void *fnet_malloc_array(size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    return fnet_malloc(n * size);
}

void *fnet_calloc(size_t n, size_t size)
{
    void *p = fnet_malloc_array(n, size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

void fnet_free(void *p)
{
    free(p);
}

char *fnet_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = fnet_malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

double fnet_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}
