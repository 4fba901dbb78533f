/* Thread safety (docs/reliability.md): contexts are independent, so two threads that each own a
 * ctx and load data, build, train, evaluate, save and reload a model at the same time must get
 * bit-identical results to the same jobs run one after the other. OpenBLAS's thread count is
 * process-wide: both contexts run with 1 thread, so BLAS never runs its own workers under a
 * concurrent caller (the contract documented in docs/reliability.md). A third test runs one ctx
 * with a 2-thread element-wise pool and checks it gives the bits of 1 thread. Built with
 * FNET_TSAN (`make tsan`), these run under ThreadSanitizer. */
#include "rel_util.h"

#include <pthread.h>
#include <zlib.h>

#define N 512
#define DIM 256
#define CLASSES 4
#define EPOCHS 2
#define ROUNDS 3 // concurrent runs compared against the sequential ones

struct job {
    // in
    const char *spec;
    uint64_t seed;
    fnet_optim_kind optim;
    fnet_ctx *ctx;    // made by the caller, on the main thread (see make_ctx)
    int threads;
    double val_frac;  // validation share of the data
    int64_t eval_n;   // samples of the final evaluation (the first ones)
    const char *images, *labels, *save_path;
    // out
    fnet_status st;
    char error[512];
    int64_t n_params;
    float *params; // malloc'd
    double train_loss, val_loss, val_acc, test_acc, test_loss;
};

#define JOB_CHECK(expr)                                                                            \
    do {                                                                                           \
        if ((j->st = (expr)) != FNET_OK) {                                                         \
            snprintf(j->error, sizeof(j->error), "%s: %s", #expr, fnet_ctx_last_error(ctx));      \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

// Everything a user does with one ctx, start to end. Runs on any thread; no cmocka asserts here
// (they are not thread-safe): failures go to j->st and j->error.
static void *run_job(void *arg)
{
    struct job *j = arg;
    fnet_ctx *ctx = j->ctx;
    fnet_dataset *all = NULL, *train = NULL, *val = NULL, *sub = NULL;
    fnet_model *m = NULL, *back = NULL;
    fnet_optimizer *opt = NULL;
    JOB_CHECK(fnet_ctx_set_threads(ctx, j->threads));
    JOB_CHECK(fnet_dataset_load_idx_files(ctx, j->images, j->labels, &all));
    JOB_CHECK(fnet_dataset_split(all, j->val_frac, j->seed, &train, &val));
    JOB_CHECK(fnet_dataset_subset(all, j->eval_n, &sub));
    JOB_CHECK(fnet_model_create_from_spec(ctx, j->spec, DIM, j->seed, &m));
    fnet_optim_params op = fnet_optim_params_default(j->optim);
    JOB_CHECK(fnet_optimizer_create(ctx, &op, fnet_model_num_params(m), &opt));
    fnet_train_params tp = fnet_train_params_default();
    tp.epochs = EPOCHS;
    tp.batch = 32;
    tp.seed = j->seed;
    fnet_train_stats st;
    JOB_CHECK(fnet_train_with(m, opt, &op, &tp, train, val, NULL, NULL, &st));
    j->train_loss = st.train_loss;
    j->val_loss = st.val_loss;
    j->val_acc = st.val_acc;
    JOB_CHECK(fnet_model_evaluate(m, sub, &j->test_acc, &j->test_loss));
    JOB_CHECK(fnet_model_save(m, opt, j->save_path));
    JOB_CHECK(fnet_model_load(ctx, j->save_path, &back));
    int64_t n;
    const float *w = fnet_model_params(m, &n);
    if (memcmp(w, fnet_model_params(back, NULL), (size_t)n * sizeof(float)) != 0) {
        j->st = FNET_ERR_INTERNAL;
        snprintf(j->error, sizeof(j->error), "the reloaded checkpoint differs");
        goto out;
    }
    j->n_params = n;
    j->params = malloc((size_t)n * sizeof(float));
    if (j->params != NULL)
        memcpy(j->params, w, (size_t)n * sizeof(float));
out:
    fnet_model_free(back);
    fnet_optimizer_free(opt);
    fnet_model_free(m);
    fnet_dataset_free(sub);
    fnet_dataset_free(val);
    fnet_dataset_free(train);
    fnet_dataset_free(all);
    return NULL;
}

static void job_ok(const struct job *j)
{
    if (j->st != FNET_OK)
        fail_msg("job '%s' seed %llu: %s", j->spec, (unsigned long long)j->seed, j->error);
    assert_non_null(j->params);
}

static void assert_same_result(const struct job *a, const struct job *b)
{
    job_ok(a);
    job_ok(b);
    assert_int_equal(a->n_params, b->n_params);
    assert_memory_equal(a->params, b->params, (size_t)a->n_params * sizeof(float)); // bit for bit
    const double x[5] = {a->train_loss, a->val_loss, a->val_acc, a->test_acc, a->test_loss};
    const double y[5] = {b->train_loss, b->val_loss, b->val_acc, b->test_acc, b->test_loss};
    assert_memory_equal(x, y, sizeof(x));
}

static void job_reset(struct job *j)
{
    free(j->params);
    j->params = NULL;
    j->st = FNET_OK;
    j->error[0] = '\0';
}

static void job_free(struct job *j)
{
    job_reset(j);
    fnet_ctx_free(j->ctx);
    j->ctx = NULL;
}

/* A ctx with one thread, made on the calling (main) thread. Creating a CPU ctx sets BLAS's
 * process-wide thread count to the number of cores until fnet_ctx_set_threads() runs: made
 * inside a job, it would change the BLAS threads of a ctx training in the other job (see
 * docs/reliability.md, "Threads"). */
static fnet_ctx *make_ctx(fnet_backend_kind backend)
{
    fnet_ctx *ctx = NULL;
    fnet_assert_ok(NULL, backend == FNET_BACKEND_CPU ? fnet_ctx_create_cpu(&ctx)
                                                     : fnet_ctx_create_reference(&ctx));
    fnet_assert_ok(ctx, fnet_ctx_set_threads(ctx, 1));
    return ctx;
}

// The data: gzip IDX files of N images (DIM bytes) and labels, a class per quarter of the
// pixel range so that the models learn something.
struct fixture {
    char *dir, *images, *labels, *save[2];
};

static void write_gz(const char *path, const unsigned char *header, size_t hn,
                     const unsigned char *data, size_t n)
{
    gzFile f = gzopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(gzwrite(f, header, (unsigned)hn), (int)hn);
    assert_int_equal(gzwrite(f, data, (unsigned)n), (int)n);
    assert_int_equal(gzclose(f), Z_OK);
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    fx->dir = rel_tmpdir();
    fx->images = rel_join(fx->dir, "images.gz");
    fx->labels = rel_join(fx->dir, "labels.gz");
    fx->save[0] = rel_join(fx->dir, "a.safetensors");
    fx->save[1] = rel_join(fx->dir, "b.safetensors");
    static unsigned char images[N * DIM], labels[N];
    fnet_rng rng;
    fnet_rng_seed(&rng, 42);
    for (int i = 0; i < N; i++) {
        labels[i] = (unsigned char)(i % CLASSES);
        for (int k = 0; k < DIM; k++)
            images[i * DIM + k] = (unsigned char)(labels[i] * 48 + fnet_rng_below(&rng, 96));
    }
    const unsigned char hi[16] = {0, 0, 8, 3, 0, 0, N >> 8, N & 255, 0, 0, 0, 16, 0, 0, 0, 16};
    const unsigned char hl[8] = {0, 0, 8, 1, 0, 0, N >> 8, N & 255};
    write_gz(fx->images, hi, sizeof(hi), images, sizeof(images));
    write_gz(fx->labels, hl, sizeof(hl), labels, sizeof(labels));
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    rel_remove_dir(fx->dir);
    free(fx->save[1]);
    free(fx->save[0]);
    free(fx->labels);
    free(fx->images);
    free(fx->dir);
    free(fx);
    return 0;
}

static void two_jobs(struct fixture *fx, struct job jobs[2], fnet_backend_kind backend)
{
    const char *specs[2] = {"dense:64,relu,dense:4", "dense:32,tanh,dropout:0.2,dense:16,relu,dense:4"};
    const fnet_optim_kind optims[2] = {FNET_OPTIM_ADAM, FNET_OPTIM_MOMENTUM};
    for (int i = 0; i < 2; i++) {
        memset(&jobs[i], 0, sizeof(jobs[i]));
        jobs[i].spec = specs[i];
        jobs[i].seed = (uint64_t)i + 7;
        jobs[i].optim = optims[i];
        jobs[i].ctx = make_ctx(backend);
        jobs[i].threads = 1;
        jobs[i].val_frac = 0.25;
        jobs[i].eval_n = N;
        jobs[i].images = fx->images;
        jobs[i].labels = fx->labels;
        jobs[i].save_path = fx->save[i];
    }
}

static void concurrent_equals_sequential(struct fixture *fx, fnet_backend_kind backend)
{
    struct job seq[2], par[2];
    two_jobs(fx, seq, backend);
    run_job(&seq[0]);
    run_job(&seq[1]);
    job_ok(&seq[0]);
    job_ok(&seq[1]);
    for (int round = 0; round < ROUNDS; round++) {
        two_jobs(fx, par, backend);
        pthread_t tid[2];
        for (int i = 0; i < 2; i++)
            assert_int_equal(pthread_create(&tid[i], NULL, run_job, &par[i]), 0);
        for (int i = 0; i < 2; i++)
            assert_int_equal(pthread_join(tid[i], NULL), 0);
        for (int i = 0; i < 2; i++) {
            assert_same_result(&seq[i], &par[i]);
            job_free(&par[i]);
        }
    }
    job_free(&seq[0]);
    job_free(&seq[1]);
}

static void test_two_cpu_contexts_in_two_threads_equal_one_after_the_other(void **state)
{
    concurrent_equals_sequential(*state, FNET_BACKEND_CPU);
}

static void test_two_reference_contexts_in_two_threads_equal_one_after_the_other(void **state)
{
    concurrent_equals_sequential(*state, FNET_BACKEND_REFERENCE);
}

// One ctx whose element-wise work (here the Adam step over 67k parameters, above the pool's
// grain) runs on 2 threads gives the bits of 1 thread; under TSan this checks the pool itself.
// Every GEMM stays below the size where BLAS would use its own threads (which may reorder sums
// and is not instrumented): batches of 32, a small validation set and evaluation.
static void test_element_wise_pool_gives_the_bits_of_one_thread(void **state)
{
    struct fixture *fx = *state;
    struct job one[2], pool[2];
    two_jobs(fx, one, FNET_BACKEND_CPU);
    two_jobs(fx, pool, FNET_BACKEND_CPU);
    one[0].spec = pool[0].spec = "dense:256,relu,dense:4"; // 67076 parameters
    one[0].val_frac = pool[0].val_frac = 0.05;              // 26 samples
    one[0].eval_n = pool[0].eval_n = 48;
    pool[0].threads = 2;
    run_job(&one[0]);
    run_job(&pool[0]);
    assert_same_result(&one[0], &pool[0]);
    for (int i = 0; i < 2; i++) {
        job_free(&one[i]);
        job_free(&pool[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_cpu_contexts_in_two_threads_equal_one_after_the_other),
        cmocka_unit_test(test_two_reference_contexts_in_two_threads_equal_one_after_the_other),
        cmocka_unit_test(test_element_wise_pool_gives_the_bits_of_one_thread),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
