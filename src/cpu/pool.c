/* Thread pool of sleeping workers: see pool.h. A job is split into one contiguous chunk per
 * thread so each thread's chunk stays in its own cache. */
#include "cpu/pool.h"
#include "core/internal.h"

#include <pthread.h>

struct fnet_pool {
    int threads;
    pthread_t *tid;
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    uint64_t generation; // bumped for each job
    int pending;         // workers still running the current job
    bool quit;
    // the current job
    fnet_range_fn fn;
    void *arg;
    int64_t n, chunk;
};

struct worker_arg {
    struct fnet_pool *pool;
    int index; // 1..threads-1; the caller is 0
};

static void run_chunk(struct fnet_pool *p, int index)
{
    int64_t begin = (int64_t)index * p->chunk;
    int64_t end = begin + p->chunk < p->n ? begin + p->chunk : p->n;
    if (begin < end)
        p->fn(p->arg, begin, end);
}

static void *worker_main(void *varg)
{
    struct worker_arg *wa = varg;
    struct fnet_pool *p = wa->pool;
    int index = wa->index;
    fnet_free(wa);
    uint64_t seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->quit && p->generation == seen)
            pthread_cond_wait(&p->wake, &p->mu);
        if (p->quit)
            break;
        seen = p->generation;
        pthread_mutex_unlock(&p->mu);
        run_chunk(p, index);
        pthread_mutex_lock(&p->mu);
        if (--p->pending == 0)
            pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

struct fnet_pool *fnet_pool_create(int threads)
{
    struct fnet_pool *p = fnet_calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->tid = fnet_calloc((size_t)threads, sizeof(pthread_t));
    if (p->tid == NULL)
        goto out_free_pool;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    for (int i = 1; i < threads; i++) {
        struct worker_arg *wa = fnet_malloc(sizeof(*wa));
        if (wa == NULL)
            goto out_stop;
        wa->pool = p;
        wa->index = i;
        if (pthread_create(&p->tid[i], NULL, worker_main, wa) != 0) {
            fnet_free(wa);
            goto out_stop;
        }
        p->threads = i + 1;
    }
    p->threads = threads;
    return p;
out_stop:
    fnet_pool_free(p);
    return NULL;
out_free_pool:
    fnet_free(p);
    return NULL;
}

void fnet_pool_free(struct fnet_pool *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    p->quit = true;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->threads; i++)
        pthread_join(p->tid[i], NULL);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->mu);
    fnet_free(p->tid);
    fnet_free(p);
}

void fnet_pool_run(struct fnet_pool *p, int64_t n, int64_t grain, fnet_range_fn fn, void *arg)
{
    if (n <= 0)
        return;
    if (grain < 1)
        grain = 1;
    if (p == NULL || p->threads < 2 || n < 2 * grain) {
        fn(arg, 0, n);
        return;
    }
    int64_t per = (n + p->threads - 1) / p->threads;
    per = (per + grain - 1) / grain * grain;
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->arg = arg;
    p->n = n;
    p->chunk = per;
    p->pending = p->threads - 1;
    p->generation++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    run_chunk(p, 0);
    pthread_mutex_lock(&p->mu);
    while (p->pending > 0)
        pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
