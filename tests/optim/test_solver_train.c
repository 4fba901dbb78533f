/* Training with L-BFGS and CG (src/optim/solver_train.c through fnet_train()) on small
 * synthetic data: the loss falls, full batch and K iterations per minibatch; seeded runs repeat
 * exactly; the model objective; the NaN guard; bad settings; out-of-memory injection. On the
 * backend FNET_TEST_BACKEND names (else cpu). */
#include "test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DIM 16
#define CLASSES 3
#define SPEC "dense:12,tanh,dense:3"

// Class c lights up pixels j with j % 3 == c, under enough uniform noise that the classes
// overlap a little (the loss stays above 0).
static fnet_dataset *make_data(fnet_ctx *ctx, int64_t n, uint64_t seed)
{
    return fnet_test_class_data(ctx, n, DIM, CLASSES, 110, 60, 120, seed);
}

struct history {
    int n;
    double loss[64], val_acc[64];
};

static int record(const fnet_epoch_info *e, void *user)
{
    struct history *h = user;
    h->loss[h->n] = e->train_loss;
    h->val_acc[h->n] = e->val_acc;
    h->n++;
    assert_int_equal(e->epoch, h->n);
    assert_true(isnan(e->lr)); // solvers have no learning rate
    assert_true(e->seconds >= 0.0 && e->samples_per_s > 0.0);
    return 0;
}

static double initial_loss(fnet_ctx *ctx, const fnet_dataset *d)
{
    fnet_model *m;
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, SPEC, DIM, 7, &m));
    double acc, loss;
    fnet_assert_ok(ctx, fnet_model_evaluate(m, d, &acc, &loss));
    fnet_model_free(m);
    return loss;
}

static void check_training(fnet_optim_kind kind, int64_t batch, int iters, int epochs)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    fnet_dataset *train = make_data(ctx, 300, 1), *val = make_data(ctx, 90, 2);
    double loss0 = initial_loss(ctx, train);
    double final_loss[2], final_acc[2];
    float first_w[2] = {0};
    for (int run = 0; run < 2; run++) { // twice: seeded runs repeat exactly
        fnet_model *m;
        fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, SPEC, DIM, 7, &m));
        fnet_optim_params op = fnet_optim_params_default(kind);
        op.iters_per_batch = iters;
        fnet_train_params tp = fnet_train_params_default();
        tp.batch = batch;
        tp.epochs = epochs;
        struct history h = {0};
        fnet_train_stats st;
        fnet_assert_ok(ctx, fnet_train(m, &op, &tp, train, val, record, &h, &st));
        assert_int_equal(h.n, epochs);
        assert_int_equal(st.epochs_run, epochs);
        assert_true(st.steps > 0);
        int64_t batches = batch == 0 ? 1 : (300 + batch - 1) / batch;
        assert_true(st.steps <= (int64_t)epochs * batches * iters);
        double acc, loss;
        fnet_assert_ok(ctx, fnet_model_evaluate(m, train, &acc, &loss));
        print_message("%s, batch %lld, K = %d, %d epochs: loss %.4f -> %.4f, train accuracy "
                      "%.3f, %lld iterations\n",
                      fnet_optim_kind_name(kind), (long long)batch, iters, epochs, loss0, loss,
                      acc, (long long)st.steps);
        assert_true(loss < 0.5 * loss0);
        assert_true(h.loss[epochs - 1] < h.loss[0]);
        assert_true(acc > 0.9 && h.val_acc[epochs - 1] > 0.85);
        final_loss[run] = loss;
        final_acc[run] = acc;
        float *w = fnet_test_model_params(m);
        first_w[run] = w[0];
        free(w);
        fnet_model_free(m);
    }
    assert_true(final_loss[0] == final_loss[1] && final_acc[0] == final_acc[1]);
    assert_true(first_w[0] == first_w[1]);
    fnet_dataset_free(val);
    fnet_dataset_free(train);
    fnet_ctx_free(ctx);
}

static void test_lbfgs_full_batch_lowers_the_loss(void **state)
{
    (void)state;
    check_training(FNET_OPTIM_LBFGS, 0, 10, 3);
}

static void test_lbfgs_minibatches_lower_the_loss(void **state)
{
    (void)state;
    check_training(FNET_OPTIM_LBFGS, 100, 5, 3);
}

static void test_cg_full_batch_lowers_the_loss(void **state)
{
    (void)state;
    check_training(FNET_OPTIM_CG, 0, 10, 3);
}

static void test_cg_minibatches_lower_the_loss(void **state)
{
    (void)state;
    check_training(FNET_OPTIM_CG, 100, 5, 3);
}

// The model objective on its own: the point is copied into the model when it is not the
// model's own vector, the value is the oracle's, a wrong length is a shape error, and a NaN
// loss comes back as a NaN value with FNET_OK.
static void test_model_objective(void **state)
{
    (void)state;
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    fnet_dataset *d = make_data(ctx, 20, 3);
    fnet_model *m;
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, SPEC, DIM, 7, &m));
    fnet_assert_ok(ctx, fnet_model_reserve(m, 20));
    int64_t n;
    float *w = fnet_model_params(m, &n); // the model's own vector
    float *x = fnet_test_upload(ctx, NULL, 20 * DIM), *g = fnet_test_upload(ctx, NULL, n);
    float *g2 = fnet_test_upload(ctx, NULL, n), *w2 = fnet_test_upload(ctx, NULL, n);
    int32_t labels[20];
    fnet_assert_ok(ctx, fnet_dataset_batch(d, NULL, 0, 20, x, labels));
    fnet_model_batch_info info = {.model = m, .x = x, .labels = labels, .batch = 20};
    double f, f2;
    fnet_assert_ok(ctx, fnet_model_objective(w, n, &f, g, &info));
    fnet_assert_ok(ctx, fnet_model_loss_grad(m, x, labels, 20, &f2, g2));
    assert_true(f == f2);
    float *hg = fnet_test_download(ctx, g, n), *hg2 = fnet_test_download(ctx, g2, n);
    assert_memory_equal(hg, hg2, (size_t)n * sizeof(float));
    float *hw = fnet_test_model_params(m), *hw2 = malloc((size_t)n * sizeof(float));
    assert_non_null(hw2);
    for (int64_t i = 0; i < n; i++)
        hw2[i] = hw[i] * 0.5f;
    fnet_assert_ok(ctx, fnet_backend_upload(ctx, w2, hw2, (size_t)n * sizeof(float)));
    fnet_assert_ok(ctx, fnet_model_objective(w2, n, &f, g, &info));
    free(hw);
    hw = fnet_test_model_params(m);
    assert_memory_equal(hw, hw2, (size_t)n * sizeof(float)); // loaded into the model
    assert_int_equal(fnet_model_objective(w2, n - 1, &f, g, &info), FNET_ERR_SHAPE);
    assert_int_equal(fnet_model_objective(w2, n, &f, g, NULL), FNET_ERR_INVALID_ARG);
    hw2[0] = NAN;
    fnet_assert_ok(ctx, fnet_backend_upload(ctx, w2, hw2, sizeof(float)));
    fnet_assert_ok(ctx, fnet_model_objective(w2, n, &f, g, &info));
    assert_true(isnan(f));
    free(hg), free(hg2), free(hw), free(hw2);
    fnet_backend_free(ctx, x);
    fnet_backend_free(ctx, g);
    fnet_backend_free(ctx, g2);
    fnet_backend_free(ctx, w2);
    fnet_model_free(m);
    fnet_dataset_free(d);
    fnet_ctx_free(ctx);
}

// A model whose parameters are already NaN: training stops with FNET_ERR_NUMERIC naming the
// epoch and batch, as the first-order trainer does.
static void test_nan_guard(void **state)
{
    (void)state;
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    fnet_dataset *d = make_data(ctx, 60, 3);
    const fnet_optim_kind kinds[] = {FNET_OPTIM_LBFGS, FNET_OPTIM_CG};
    for (int k = 0; k < 2; k++) {
        fnet_model *m;
        fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, SPEC, DIM, 7, &m));
        float *w = fnet_test_model_params(m);
        w[0] = NAN;
        fnet_assert_ok(ctx, fnet_model_set_params(m, w));
        free(w);
        fnet_optim_params op = fnet_optim_params_default(kinds[k]);
        fnet_train_params tp = fnet_train_params_default();
        tp.batch = 30;
        tp.epochs = 2;
        assert_int_equal(fnet_train(m, &op, &tp, d, NULL, NULL, NULL, NULL), FNET_ERR_NUMERIC);
        assert_non_null(strstr(fnet_ctx_last_error(ctx), "epoch 1, batch 1"));
        fnet_model_free(m);
    }
    fnet_dataset_free(d);
    fnet_ctx_free(ctx);
}

static void test_bad_settings(void **state)
{
    (void)state;
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    fnet_dataset *d = make_data(ctx, 60, 3);
    fnet_model *m;
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, SPEC, DIM, 7, &m));
    fnet_train_params tp = fnet_train_params_default();
    fnet_optim_params op = fnet_optim_params_default(FNET_OPTIM_LBFGS);
    op.iters_per_batch = 0;
    assert_int_equal(fnet_train(m, &op, &tp, d, NULL, NULL, NULL, NULL), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "iters_per_batch"));
    op = fnet_optim_params_default(FNET_OPTIM_LBFGS);
    op.history = 0;
    assert_int_equal(fnet_train(m, &op, &tp, d, NULL, NULL, NULL, NULL), FNET_ERR_INVALID_ARG);
    op = fnet_optim_params_default(FNET_OPTIM_CG);
    op.c2 = 1e-5;
    assert_int_equal(fnet_train(m, &op, &tp, d, NULL, NULL, NULL, NULL), FNET_ERR_INVALID_ARG);
    op = fnet_optim_params_default(FNET_OPTIM_CG);
    tp.batch = -1;
    assert_int_equal(fnet_train(m, &op, &tp, d, NULL, NULL, NULL, NULL), FNET_ERR_INVALID_ARG);
    tp = fnet_train_params_default();
    tp.epochs = 0;
    assert_int_equal(fnet_train(m, &op, &tp, d, NULL, NULL, NULL, NULL), FNET_ERR_INVALID_ARG);
    // settings the solvers do not implement are refused, not ignored
    tp = fnet_train_params_default();
    tp.on_nan = FNET_NAN_ROLLBACK;
    assert_int_equal(fnet_train(m, &op, &tp, d, NULL, NULL, NULL, NULL), FNET_ERR_UNSUPPORTED);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "rollback is not built for cg"));
    tp = fnet_train_params_default();
    tp.tt_round_every = 1;
    assert_int_equal(fnet_train(m, &op, &tp, d, NULL, NULL, NULL, NULL), FNET_ERR_UNSUPPORTED);
    // fnet_train_with takes step-wise optimizers only
    tp = fnet_train_params_default();
    fnet_optim_params adam = fnet_optim_params_default(FNET_OPTIM_ADAM);
    fnet_optimizer *opt = NULL;
    fnet_assert_ok(ctx, fnet_optimizer_create(ctx, &adam, fnet_model_num_params(m), &opt));
    assert_int_equal(fnet_train_with(m, opt, &op, &tp, d, NULL, NULL, NULL, NULL),
                     FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "cg is a solver"));
    fnet_optimizer_free(opt);
    // data that does not fit the model
    fnet_model *wide;
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, "dense:3", DIM + 1, 7, &wide));
    assert_int_equal(fnet_train(wide, &op, &tp, d, NULL, NULL, NULL, NULL), FNET_ERR_SHAPE);
    fnet_model_free(wide);
    fnet_model_free(m);
    fnet_dataset_free(d);
    fnet_ctx_free(ctx);
}

// Fail the k-th allocation of a solver training run for every k: out of memory, the model's
// parameters untouched, nothing leaked (ASan).
static void test_out_of_memory_at_every_allocation(void **state)
{
    (void)state;
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    fnet_dataset *d = make_data(ctx, 40, 3);
    const fnet_optim_kind kinds[] = {FNET_OPTIM_LBFGS, FNET_OPTIM_CG};
    for (int kk = 0; kk < 2; kk++) {
        int failures = 0;
        for (long k = 1;; k++) {
            fnet_model *m;
            fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, SPEC, DIM, 7, &m));
            int64_t n = fnet_model_num_params(m);
            float *w0 = fnet_test_model_params(m);
            fnet_optim_params op = fnet_optim_params_default(kinds[kk]);
            op.iters_per_batch = 2;
            fnet_train_params tp = fnet_train_params_default();
            tp.batch = 20;
            tp.epochs = 1;
            fnet_debug_fail_alloc(k);
            fnet_status st = fnet_train(m, &op, &tp, d, d, NULL, NULL, NULL);
            fnet_debug_fail_alloc(0);
            bool done = st == FNET_OK;
            if (!done) {
                assert_int_equal(st, FNET_ERR_OUT_OF_MEMORY);
                failures++;
            }
            if (!done && failures <= 5) { // before training starts, nothing has moved
                float *w = fnet_test_model_params(m);
                assert_memory_equal(w, w0, (size_t)n * sizeof(float));
                free(w);
            }
            free(w0);
            fnet_model_free(m);
            if (done)
                break;
            assert_true(k < 100);
        }
        assert_true(failures >= 4);
    }
    fnet_dataset_free(d);
    fnet_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lbfgs_full_batch_lowers_the_loss),
        cmocka_unit_test(test_lbfgs_minibatches_lower_the_loss),
        cmocka_unit_test(test_cg_full_batch_lowers_the_loss),
        cmocka_unit_test(test_cg_minibatches_lower_the_loss),
        cmocka_unit_test(test_model_objective),
        cmocka_unit_test(test_nan_guard),
        cmocka_unit_test(test_bad_settings),
        cmocka_unit_test(test_out_of_memory_at_every_allocation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
