/* Data-parallel training (src/dist, docs/distributed.md), run by CTest as `mpirun -np 2` (a
 * build without MPI runs it as one process: a job of one, where the same comparisons hold
 * trivially). Each test trains the same model twice from the same start: on a ctx attached to
 * the job (every rank its rows of each batch) and, as the oracle, on a ctx of its own (the whole
 * batch on one rank); the parameters must agree to 1e-5 relative, and be bit for bit the same
 * on every rank. On the backend FNET_TEST_BACKEND names (guarded: the gradient goes through a
 * host copy); on cuda, rank r uses GPU r and NCCL. */
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DIM 16
#define CLASSES 3
// every layer family, and penalties: the all-reduce must count them once
#define SPEC "dense:32,relu,tt:32:rank=3,tanh,lowrank:16:rank=4,relu,circ:16:block=8,relu," \
             "sparse:12:density=0.5,relu,dense:3"

static fnet_dist *job;
static const char *spec = SPEC; // what make_model builds

static fnet_ctx *make_ctx(void)
{
    const char *name = getenv("FNET_TEST_BACKEND");
    int device = 0;
    if (name != NULL && fnet_test_cuda_name(name, &device)) {
        // one GPU per rank, as the binaries choose them; every rank skips when one cannot run
        fnet_ctx *ctx = NULL;
        char why[256] = "another rank has no GPU";
        int dev = fnet_dist_local_rank(job);
        int bad = fnet_cuda_probe(dev, why, sizeof(why)) != FNET_OK;
        assert_int_equal(fnet_dist_any(job, &bad), FNET_OK);
        if (bad) {
            printf("skipped: rank %d: GPU %d: %s\n", fnet_dist_rank(job), dev, why);
            fnet_dist_finalize(job);
            exit(FNET_TEST_SKIP);
        }
        assert_int_equal(fnet_ctx_create_cuda(dev, &ctx), FNET_OK);
        return ctx;
    }
    return fnet_test_ctx(FNET_BACKEND_CPU);
}

static fnet_model *make_model(fnet_ctx *ctx, float l2)
{
    fnet_model *m = NULL;
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, spec, DIM, 7, &m));
    fnet_assert_ok(ctx, fnet_model_set_regularization(m, 0.0f, l2));
    return m;
}

// ‖a − b‖ / ‖b‖ over n floats.
static double rel_diff(const float *a, const float *b, int64_t n)
{
    double d = 0.0, s = 0.0;
    for (int64_t i = 0; i < n; i++) {
        d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        s += (double)b[i] * b[i];
    }
    return sqrt(d) / (s > 0.0 ? sqrt(s) : 1.0);
}

// Every rank holds rank 0's w (n floats, host), bit for bit; and all ranks learn it.
static void assert_same_on_every_rank(const float *w, int64_t n)
{
    float *r0 = malloc((size_t)n * sizeof(float));
    assert_non_null(r0);
    memcpy(r0, w, (size_t)n * sizeof(float));
    assert_int_equal(fnet_dist_broadcast(job, r0, (size_t)n * sizeof(float)), FNET_OK);
    int differ = memcmp(r0, w, (size_t)n * sizeof(float)) != 0;
    free(r0);
    assert_int_equal(fnet_dist_any(job, &differ), FNET_OK);
    if (differ)
        fail_msg("rank %d: the parameters differ between the ranks", fnet_dist_rank(job));
}

struct trained {
    float *w; // host copy of the parameters
    int64_t n;
    fnet_train_stats st;
    fnet_status status;
};

// Train SPEC from seed 7 on n_data synthetic samples, on ctx (attached or not).
static struct trained train_on(fnet_ctx *ctx, const fnet_optim_params *op,
                               const fnet_train_params *tp, int64_t n_data, float l2)
{
    fnet_model *m = make_model(ctx, l2);
    fnet_dataset *d = fnet_test_class_data(ctx, n_data, DIM, CLASSES, 150, 40, 60, 3);
    struct trained t = {0};
    t.status = fnet_train(m, op, tp, d, NULL, NULL, NULL, &t.st);
    t.w = fnet_test_model_params(m);
    t.n = fnet_model_num_params(m);
    fnet_dataset_free(d);
    fnet_model_free(m);
    return t;
}

// The job's run against the single process's, the same settings.
static void compare_with_single(const fnet_optim_params *op, const fnet_train_params *tp,
                                int64_t n_data, float l2, double rtol, struct trained *out_job)
{
    fnet_ctx *single = make_ctx(), *par = make_ctx();
    assert_int_equal(fnet_dist_attach(job, par), FNET_OK);
    struct trained a = train_on(single, op, tp, n_data, l2);
    struct trained b = train_on(par, op, tp, n_data, l2);
    fnet_assert_ok(single, a.status);
    fnet_assert_ok(par, b.status);
    assert_int_equal(a.n, b.n);
    assert_int_equal(a.st.steps, b.st.steps);
    double rel = rel_diff(b.w, a.w, a.n);
    if (fnet_dist_rank(job) == 0)
        printf("  %s, batch %lld, %lld steps on %d ranks: parameters within %.2g of one "
               "process's (relative)\n", fnet_optim_kind_name(op->kind), (long long)tp->batch,
               (long long)b.st.steps, fnet_dist_size(job), rel);
    if (!(rel <= rtol))
        fail_msg("rank %d of %d: the job's parameters differ from one process's by %g "
                 "(relative), more than %g", fnet_dist_rank(job), fnet_dist_size(job), rel, rtol);
    fnet_assert_close(b.st.train_loss, a.st.train_loss, 1e-5, 0.0);
    assert_same_on_every_rank(b.w, b.n);
    if (out_job)
        *out_job = b;
    else
        free(b.w);
    free(a.w);
    fnet_ctx_free(par);
    fnet_ctx_free(single);
}

// The check: 2 ranks at batch 128 each against 1 rank at batch 256, 20 Adam steps.
static void test_adam_20_steps_match_one_process(void **state)
{
    (void)state;
    fnet_optim_params op = fnet_optim_params_default(FNET_OPTIM_ADAM);
    op.lr = 3e-3f;
    fnet_train_params tp = fnet_train_params_default();
    tp.batch = 256;
    tp.epochs = 4; // 1280 samples: 5 steps an epoch, shuffled
    tp.seed = 11;
    struct trained b;
    compare_with_single(&op, &tp, 1280, 1e-3f, 1e-5, &b);
    assert_int_equal(b.st.steps, 20);
    free(b.w);
}

// A batch that does not split evenly, and a last batch of one sample: rank 1 has no rows of it.
static void test_uneven_and_empty_shards(void **state)
{
    (void)state;
    fnet_optim_params op = fnet_optim_params_default(FNET_OPTIM_MOMENTUM);
    op.lr = 0.02f;
    fnet_train_params tp = fnet_train_params_default();
    tp.batch = 51; // 26 + 25 rows
    tp.epochs = 2;
    struct trained b;
    compare_with_single(&op, &tp, 205, 0.0f, 1e-5, &b); // 4 batches of 51, then one of 1
    assert_int_equal(b.st.steps, 10);                    // the 1-sample batch a step, too
    assert_int_equal(b.st.epochs_run, 2);
    free(b.w);
}

// Dropout draws, on each rank, its rows' part of the whole batch's mask: the job trains as one
// process does, also after a last batch of one sample that leaves rank 1 without rows (its
// mask stream must move on with rank 0's).
static void test_dropout_draws_one_process_masks(void **state)
{
    (void)state;
    spec = "dense:32,dropout:0.3,relu,dense:24,relu,dropout:0.5,dense:3";
    fnet_optim_params op = fnet_optim_params_default(FNET_OPTIM_ADAM);
    fnet_train_params tp = fnet_train_params_default();
    tp.batch = 51;
    tp.epochs = 3;
    struct trained b;
    compare_with_single(&op, &tp, 205, 0.0f, 1e-5, &b);
    spec = SPEC;
    assert_int_equal(b.st.steps, 15);
    // the loss fell: dropout's masks train the model, whichever rank draws them
    assert_true(isfinite(b.st.train_loss) && b.st.train_loss < log((double)CLASSES));
    free(b.w);
}

// The gradient sent in buckets while the backward pass runs gives the same bits as one
// all-reduce after it on 2 ranks (a sum of two floats does not depend on how it is cut; on more
// ranks MPI's algorithms may add in another order: within rounding then).
static void test_buckets_give_the_same_bits(void **state)
{
    (void)state;
    fnet_optim_params op = fnet_optim_params_default(FNET_OPTIM_ADAM);
    fnet_train_params tp = fnet_train_params_default();
    tp.batch = 64;
    tp.epochs = 1;
    struct trained whole, parts;
    assert_int_equal(fnet_dist_set_bucket(job, 0), FNET_OK);
    compare_with_single(&op, &tp, 320, 1e-3f, 1e-5, &whole);
    assert_int_equal(fnet_dist_set_bucket(job, 256), FNET_OK); // a bucket after every layer
    compare_with_single(&op, &tp, 320, 1e-3f, 1e-5, &parts);
    assert_int_equal(fnet_dist_set_bucket(job, 0), FNET_OK);
    if (fnet_dist_size(job) <= 2)
        assert_memory_equal(whole.w, parts.w, (size_t)whole.n * sizeof(float));
    else if (!(rel_diff(parts.w, whole.w, whole.n) <= 1e-6))
        fail_msg("buckets and one all-reduce differ by %g (relative)",
                 rel_diff(parts.w, whole.w, whole.n));
    free(whole.w);
    free(parts.w);
}

// The check for the solvers: 5 L-BFGS iterations (full batch), and CG on minibatches.
static void test_lbfgs_5_iterations_match_one_process(void **state)
{
    (void)state;
    fnet_optim_params op = fnet_optim_params_default(FNET_OPTIM_LBFGS);
    op.iters_per_batch = 5;
    fnet_train_params tp = fnet_train_params_default();
    tp.batch = 0; // the whole set of 256: 128 rows a rank
    tp.epochs = 1;
    struct trained b;
    compare_with_single(&op, &tp, 256, 1e-3f, 1e-5, &b);
    assert_int_equal(b.st.steps, 5);
    free(b.w);
    op = fnet_optim_params_default(FNET_OPTIM_CG);
    op.iters_per_batch = 3;
    tp.batch = 100;
    compare_with_single(&op, &tp, 300, 0.0f, 1e-5, NULL);
}

// The public oracle on an attached ctx: every rank passes the whole batch.
static void test_loss_grad_and_evaluate_are_collective(void **state)
{
    (void)state;
    fnet_ctx *single = make_ctx(), *par = make_ctx();
    assert_int_equal(fnet_dist_attach(job, par), FNET_OK);
    fnet_model *ms = make_model(single, 1e-2f), *mp = make_model(par, 1e-2f);
    const int64_t B = 77;
    float *xh = malloc(sizeof(float) * B * DIM);
    int32_t labels[77];
    fnet_test_fill_uniform(xh, B * DIM, 0.0f, 1.0f, 5);
    for (int64_t i = 0; i < B; i++)
        labels[i] = (int32_t)(i % CLASSES);
    float *xs = fnet_test_upload(single, xh, B * DIM), *xp = fnet_test_upload(par, xh, B * DIM);
    double ls = 0.0, lp = 0.0;
    fnet_assert_ok(single, fnet_model_loss_grad(ms, xs, labels, B, &ls, NULL));
    fnet_assert_ok(par, fnet_model_loss_grad(mp, xp, labels, B, &lp, NULL));
    fnet_assert_close(lp, ls, 1e-6, 0.0);
    float *gs = fnet_test_model_grads(ms), *gp = fnet_test_model_grads(mp);
    double rel = rel_diff(gp, gs, fnet_model_num_params(ms));
    if (!(rel <= 1e-6))
        fail_msg("the job's gradient differs by %g (relative)", rel);
    assert_same_on_every_rank(gp, fnet_model_num_params(mp));
    // evaluation: each rank its rows, the counts added up
    fnet_dataset *ds = fnet_test_class_data(single, 301, DIM, CLASSES, 150, 40, 60, 9);
    fnet_dataset *dp = fnet_test_class_data(par, 301, DIM, CLASSES, 150, 40, 60, 9);
    double acc_s = 0, acc_p = 0, loss_s = 0, loss_p = 0;
    fnet_assert_ok(single, fnet_model_evaluate(ms, ds, &acc_s, &loss_s));
    fnet_assert_ok(par, fnet_model_evaluate(mp, dp, &acc_p, &loss_p));
    assert_true(acc_s == acc_p);
    fnet_assert_close(loss_p, loss_s, 1e-9, 0.0); // chunk sums in another grouping
    // a NaN in the last rank's rows only (a linear model: ReLU would turn it into 0): every rank
    // sees a NaN loss
    for (int64_t i = 70; i < 75; i++)
        xh[i * DIM] = NAN;
    float *xn = fnet_test_upload(par, xh, B * DIM);
    fnet_model *lin = NULL;
    fnet_assert_ok(par, fnet_model_create_from_spec(par, "dense:3", DIM, 1, &lin));
    double ln = 0.0;
    assert_int_equal(fnet_model_loss_grad(lin, xn, labels, B, &ln, NULL), FNET_ERR_NUMERIC);
    assert_true(isnan(ln));
    fnet_model_free(lin);
    fnet_backend_free(par, xn);
    free(gs), free(gp), free(xh);
    fnet_dataset_free(ds), fnet_dataset_free(dp);
    fnet_backend_free(single, xs), fnet_backend_free(par, xp);
    fnet_model_free(ms), fnet_model_free(mp);
    fnet_ctx_free(par), fnet_ctx_free(single);
}

// A loop of the caller's own: local loss_grad on its shard, then fnet_dist_allreduce_grad.
static void test_allreduce_grad_in_own_loop(void **state)
{
    (void)state;
    fnet_ctx *ctx = make_ctx();
    fnet_model *ms = make_model(ctx, 1e-2f), *mp = make_model(ctx, 1e-2f);
    const int64_t B = 41;
    float *xh = malloc(sizeof(float) * B * DIM);
    int32_t labels[41];
    fnet_test_fill_uniform(xh, B * DIM, 0.0f, 1.0f, 8);
    for (int64_t i = 0; i < B; i++)
        labels[i] = (int32_t)((i * 7) % CLASSES);
    float *x = fnet_test_upload(ctx, xh, B * DIM);
    double ls = 0.0;
    fnet_assert_ok(ctx, fnet_model_loss_grad(ms, x, labels, B, &ls, NULL));
    int64_t first = 0, count = 0;
    fnet_dist_shard(job, B, &first, &count);
    assert_true(count >= B / fnet_dist_size(job) && count <= B / fnet_dist_size(job) + 1);
    double lp = 0.0;
    fnet_assert_ok(ctx, fnet_model_loss_grad(mp, x + first * DIM, labels + first, count, &lp,
                                             NULL));
    fnet_assert_ok(ctx, fnet_dist_allreduce_grad(job, mp, count, &lp));
    fnet_assert_close(lp, ls, 1e-6, 0.0);
    float *gs = fnet_test_model_grads(ms), *gp = fnet_test_model_grads(mp);
    double rel = rel_diff(gp, gs, fnet_model_num_params(ms));
    if (!(rel <= 1e-6))
        fail_msg("the reduced gradient differs by %g (relative)", rel);
    assert_same_on_every_rank(gp, fnet_model_num_params(mp));
    // an attached ctx reduces in loss_grad already: refused
    fnet_ctx *par = make_ctx();
    assert_int_equal(fnet_dist_attach(job, par), FNET_OK);
    fnet_model *ma = make_model(par, 0.0f);
    fnet_status want = fnet_dist_size(job) > 1 ? FNET_ERR_INVALID_ARG : FNET_OK;
    double l = 1.0;
    assert_int_equal(fnet_dist_allreduce_grad(job, ma, 1, &l), want);
    fnet_model_free(ma);
    fnet_ctx_free(par);
    free(gs), free(gp), free(xh);
    fnet_backend_free(ctx, x);
    fnet_model_free(ms), fnet_model_free(mp);
    fnet_ctx_free(ctx);
}

// A checkpoint written by the job (rank 0 alone) loads in a single process, whole.
static void test_checkpoint_of_the_job_loads_alone(void **state)
{
    (void)state;
    char path[512] = "";
    if (fnet_dist_rank(job) == 0)
        snprintf(path, sizeof(path), "%s/run.safetensors", fnet_test_tmpdir());
    assert_int_equal(fnet_dist_broadcast(job, path, sizeof(path)), FNET_OK);
    fnet_ctx *par = make_ctx();
    assert_int_equal(fnet_dist_attach(job, par), FNET_OK);
    fnet_optim_params op = fnet_optim_params_default(FNET_OPTIM_ADAM);
    fnet_train_params tp = fnet_train_params_default();
    tp.batch = 64;
    tp.epochs = 2;
    tp.save_path = path;
    tp.save_every = 1;
    struct trained b = train_on(par, &op, &tp, 256, 0.0f);
    fnet_assert_ok(par, b.status);
    assert_int_equal(b.st.checkpoints, 2); // counted on every rank
    fnet_ctx *alone = make_ctx();
    fnet_model *m = NULL;
    fnet_assert_ok(alone, fnet_model_load(alone, path, &m));
    float *w = fnet_test_model_params(m);
    assert_int_equal(fnet_model_num_params(m), b.n);
    assert_memory_equal(w, b.w, (size_t)b.n * sizeof(float));
    free(w);
    fnet_model_free(m);
    fnet_ctx_free(alone);
    // resumed by the job (the checkpoint kept as it is): it continues to the same end as a run
    // in one go
    tp.resume_path = path;
    tp.save_path = NULL;
    tp.save_every = 0;
    tp.epochs = 3;
    struct trained c = train_on(par, &op, &tp, 256, 0.0f);
    fnet_assert_ok(par, c.status);
    tp.resume_path = NULL;
    struct trained d = train_on(par, &op, &tp, 256, 0.0f);
    fnet_assert_ok(par, d.status);
    assert_memory_equal(c.w, d.w, (size_t)c.n * sizeof(float));
    // ... and resumed by one process (rank 0, alone), it ends within rounding of the job
    if (fnet_dist_rank(job) == 0) {
        fnet_ctx *one = make_ctx();
        tp.resume_path = path;
        struct trained e = train_on(one, &op, &tp, 256, 0.0f);
        fnet_assert_ok(one, e.status);
        double rel = rel_diff(e.w, d.w, d.n);
        if (!(rel <= 1e-5))
            fail_msg("resumed by one process, the run ends %g (relative) from the job's", rel);
        free(e.w);
        fnet_ctx_free(one);
    }
    free(b.w), free(c.w), free(d.w);
    fnet_ctx_free(par);
}

// A stop seen by one rank stops every rank at the same step (none waits for the other).
static volatile sig_atomic_t stop_flag;

static fnet_status stop_on_rank_1(fnet_model *m, fnet_optimizer *opt, const fnet_step_info *si,
                                  void *user)
{
    (void)m, (void)opt, (void)user;
    if (si->run_steps == 3 && fnet_dist_rank(job) == fnet_dist_size(job) - 1)
        stop_flag = 1;
    return FNET_OK;
}

static void test_a_stop_on_one_rank_stops_all(void **state)
{
    (void)state;
    fnet_ctx *par = make_ctx();
    assert_int_equal(fnet_dist_attach(job, par), FNET_OK);
    stop_flag = 0;
    fnet_optim_params op = fnet_optim_params_default(FNET_OPTIM_SGD);
    fnet_train_params tp = fnet_train_params_default();
    tp.batch = 32;
    tp.epochs = 2;
    tp.stop = &stop_flag;
    tp.on_step = stop_on_rank_1;
    struct trained t = train_on(par, &op, &tp, 320, 0.0f);
    assert_int_equal(t.status, FNET_ERR_CANCELLED);
    assert_int_equal(t.st.steps, 3);
    assert_same_on_every_rank(t.w, t.n);
    free(t.w);
    fnet_ctx_free(par);
}

int main(int argc, char **argv)
{
    fnet_status st = fnet_dist_init(&argc, &argv, &job);
    if (st != FNET_OK) {
        fprintf(stderr, "fnet_dist_init: %s\n", fnet_status_str(st));
        return 1;
    }
    printf("rank %d of %d\n", fnet_dist_rank(job), fnet_dist_size(job));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adam_20_steps_match_one_process),
        cmocka_unit_test(test_uneven_and_empty_shards),
        cmocka_unit_test(test_dropout_draws_one_process_masks),
        cmocka_unit_test(test_buckets_give_the_same_bits),
        cmocka_unit_test(test_lbfgs_5_iterations_match_one_process),
        cmocka_unit_test(test_loss_grad_and_evaluate_are_collective),
        cmocka_unit_test(test_allreduce_grad_in_own_loop),
        cmocka_unit_test(test_checkpoint_of_the_job_loads_alone),
        cmocka_unit_test(test_a_stop_on_one_rank_stops_all),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    fnet_dist_finalize(job);
    return failed;
}
