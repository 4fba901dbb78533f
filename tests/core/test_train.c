/* The trainer on small synthetic data: every layer kind and optimizer lowers the loss, seeded
 * runs repeat exactly, full batch, the NaN guard, early stopping, evaluation by hand, bad input
 * and out-of-memory injection. */
#include "test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DIM 16
#define CLASSES 3

// Class c lights up pixels j with j % 3 == c; uniform noise on top.
static fnet_dataset *make_data(fnet_ctx *ctx, int64_t n, uint64_t seed)
{
    return fnet_test_class_data(ctx, n, DIM, CLASSES, 150, 40, 60, seed);
}

struct history {
    int n;
    double loss[64], val_acc[64];
    int stop_after;
};

static int record(const fnet_epoch_info *e, void *user)
{
    struct history *h = user;
    h->loss[h->n] = e->train_loss;
    h->val_acc[h->n] = e->val_acc;
    h->n++;
    assert_int_equal(e->epoch, h->n);
    assert_true(e->seconds >= 0.0 && e->samples_per_s > 0.0);
    return h->stop_after > 0 && h->n >= h->stop_after;
}

static void train_and_check(fnet_ctx *ctx, const char *spec, fnet_optim_kind kind, float lr,
                            int64_t batch, int epochs)
{
    fnet_dataset *train = make_data(ctx, 300, 1), *val = make_data(ctx, 90, 2);
    fnet_model *m;
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, spec, DIM, 7, &m));
    fnet_optim_params op = fnet_optim_params_default(kind);
    if (lr > 0)
        op.lr = lr;
    fnet_train_params tp = fnet_train_params_default();
    tp.batch = batch;
    tp.epochs = epochs;
    struct history h = {0};
    fnet_train_stats st;
    fnet_assert_ok(ctx, fnet_train(m, &op, &tp, train, val, record, &h, &st));
    assert_int_equal(h.n, epochs);
    assert_int_equal(st.epochs_run, epochs);
    if (!(h.loss[epochs - 1] < 0.5 * h.loss[0]) || !(h.val_acc[epochs - 1] > 0.9))
        fail_msg("%s with %s: loss %g -> %g, val_acc %g", spec, fnet_optim_kind_name(kind), h.loss[0],
                 h.loss[epochs - 1], h.val_acc[epochs - 1]);
    fnet_model_free(m);
    fnet_dataset_free(train);
    fnet_dataset_free(val);
}

static void test_every_layer_kind_lowers_the_loss(void **state)
{
    fnet_ctx *ctx;
    fnet_assert_ok(NULL, fnet_ctx_create_cpu(&ctx));
    const char *specs[] = {"dense:3", "dense:16,relu,dense:3", "dense:16,tanh,dense:3",
                           "dense:16,sigmoid,dense:3", "dense:16,relu,dropout:0.2,dense:3"};
    for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++)
        train_and_check(ctx, specs[i], FNET_OPTIM_ADAM, 1e-2f, 16, 8);
    fnet_ctx_free(ctx);
}

static void test_every_optimizer_lowers_the_loss(void **state)
{
    fnet_ctx *ctx;
    fnet_assert_ok(NULL, fnet_ctx_create_cpu(&ctx));
    const fnet_optim_kind kinds[] = {FNET_OPTIM_SGD, FNET_OPTIM_MOMENTUM, FNET_OPTIM_NESTEROV,
                                     FNET_OPTIM_RMSPROP, FNET_OPTIM_ADAM, FNET_OPTIM_ADAMW};
    const float lrs[] = {0.1f, 0.05f, 0.05f, 3e-3f, 1e-2f, 1e-2f};
    for (int i = 0; i < 6; i++)
        train_and_check(ctx, "dense:16,relu,dense:3", kinds[i], lrs[i], 16, 8);
    fnet_ctx_free(ctx);
}

static void test_full_batch_training(void **state)
{
    fnet_ctx *ctx;
    fnet_assert_ok(NULL, fnet_ctx_create_reference(&ctx));
    train_and_check(ctx, "dense:16,tanh,dense:3", FNET_OPTIM_ADAM, 5e-2f, 0, 30);
    fnet_ctx_free(ctx);
}

static void test_seeded_runs_repeat_exactly(void **state)
{
    float *params[2];
    int64_t n = 0;
    for (int run = 0; run < 2; run++) {
        fnet_ctx *ctx;
        fnet_assert_ok(NULL, fnet_ctx_create_cpu(&ctx));
        fnet_dataset *train = make_data(ctx, 200, 1);
        fnet_model *m;
        fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, "dense:16,relu,dropout:0.3,dense:3", DIM, 5, &m));
        fnet_optim_params op = fnet_optim_params_default(FNET_OPTIM_ADAM);
        fnet_train_params tp = fnet_train_params_default();
        tp.batch = 8;
        tp.epochs = 3;
        tp.seed = 99;
        fnet_assert_ok(ctx, fnet_train(m, &op, &tp, train, NULL, NULL, NULL, NULL));
        float *w = fnet_model_params(m, &n);
        params[run] = malloc(sizeof(float) * (size_t)n);
        memcpy(params[run], w, sizeof(float) * (size_t)n);
        fnet_model_free(m);
        fnet_dataset_free(train);
        fnet_ctx_free(ctx);
    }
    assert_memory_equal(params[0], params[1], sizeof(float) * (size_t)n);
    free(params[0]), free(params[1]);
}

static void test_diverging_run_stops_with_numeric_error(void **state)
{
    fnet_ctx *ctx;
    fnet_assert_ok(NULL, fnet_ctx_create_cpu(&ctx));
    fnet_dataset *train = make_data(ctx, 200, 1);
    fnet_model *m;
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, "dense:16,relu,dense:3", DIM, 5, &m));
    fnet_assert_ok(ctx, fnet_model_set_loss(m, FNET_LOSS_MSE));
    fnet_optim_params op = fnet_optim_params_default(FNET_OPTIM_SGD);
    op.lr = 1e6f;
    fnet_train_params tp = fnet_train_params_default();
    tp.epochs = 5;
    struct history h = {0};
    assert_int_equal(fnet_train(m, &op, &tp, train, NULL, record, &h, NULL), FNET_ERR_NUMERIC);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "training stopped"));
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "epoch 1, step"));
    assert_int_equal(h.n, 0); // stopped inside the first epoch
    fnet_model_free(m);
    fnet_dataset_free(train);
    fnet_ctx_free(ctx);
}

// A learning rate far too high: with --on-nan rollback the trainer restores the start of the
// epoch and halves the rate until the run converges; with a small budget it stops cleanly.
static void test_rollback_recovers_from_divergence(void **state)
{
    fnet_ctx *ctx;
    fnet_assert_ok(NULL, fnet_ctx_create_cpu(&ctx));
    fnet_dataset *train = make_data(ctx, 400, 1);
    fnet_optim_params op = fnet_optim_params_default(FNET_OPTIM_SGD);
    op.lr = 1e8f; // the loss overflows within the first epoch's 25 steps
    fnet_train_params tp = fnet_train_params_default();
    tp.batch = 16;
    tp.epochs = 4;
    tp.on_nan = FNET_NAN_ROLLBACK;
    tp.max_rollbacks = 40;
    fnet_model *m;
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, "dense:3", DIM, 5, &m));
    fnet_assert_ok(ctx, fnet_model_set_loss(m, FNET_LOSS_MSE));
    struct history h = {0};
    fnet_train_stats st;
    fnet_assert_ok(ctx, fnet_train(m, &op, &tp, train, NULL, record, &h, &st));
    assert_int_equal(st.epochs_run, 4);
    assert_true(st.rollbacks >= 20); // 1e8 must halve to below ~0.5
    assert_true(isfinite(h.loss[3]) && h.loss[3] < h.loss[0] + 1.0);
    int64_t n;
    const float *w = fnet_model_params(m, &n);
    for (int64_t i = 0; i < n; i++)
        assert_true(isfinite(w[i]));
    fnet_model_free(m);
    // a budget too small: stops with FNET_ERR_NUMERIC, and says so
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, "dense:3", DIM, 5, &m));
    fnet_assert_ok(ctx, fnet_model_set_loss(m, FNET_LOSS_MSE));
    tp.max_rollbacks = 2;
    assert_int_equal(fnet_train(m, &op, &tp, train, NULL, NULL, NULL, &st), FNET_ERR_NUMERIC);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "after the last rollback"));
    fnet_model_free(m);
    fnet_dataset_free(train);
    fnet_ctx_free(ctx);
}

static void test_callback_stops_training(void **state)
{
    fnet_ctx *ctx;
    fnet_assert_ok(NULL, fnet_ctx_create_cpu(&ctx));
    fnet_dataset *train = make_data(ctx, 100, 1);
    fnet_model *m;
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, "dense:3", DIM, 5, &m));
    fnet_optim_params op = fnet_optim_params_default(FNET_OPTIM_ADAM);
    fnet_train_params tp = fnet_train_params_default();
    tp.epochs = 10;
    struct history h = {.stop_after = 2};
    fnet_train_stats st;
    fnet_assert_ok(ctx, fnet_train(m, &op, &tp, train, NULL, record, &h, &st));
    assert_int_equal(st.epochs_run, 2);
    assert_int_equal(st.steps, 2 * ((100 + 31) / 32));
    assert_true(isnan(st.val_acc)); // no validation set
    fnet_model_free(m);
    fnet_dataset_free(train);
    fnet_ctx_free(ctx);
}

// A 1 -> 2 model set by hand: logits (x − 0.02, −x + 0.02) for x = pixel/255.
static void test_evaluate_by_hand(void **state)
{
    fnet_ctx *ctx;
    fnet_assert_ok(NULL, fnet_ctx_create_cpu(&ctx));
    fnet_model *m;
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, "dense:2", 1, 1, &m));
    float *w = fnet_model_params(m, NULL);
    w[0] = 1.0f, w[1] = -1.0f, w[2] = -0.02f, w[3] = 0.02f;
    const uint8_t img[4] = {10, 200, 0, 0}, lab[4] = {0, 1, 1, 1};
    fnet_dataset *d;
    fnet_assert_ok(ctx, fnet_dataset_from_memory(ctx, img, lab, 4, 1, 2, &d));
    double acc, loss;
    fnet_assert_ok(ctx, fnet_model_evaluate(m, d, &acc, &loss));
    fnet_assert_close(acc, 0.75, 0.0, 0.0);
    double want = 0.0;
    for (int i = 0; i < 4; i++) {
        double x = (double)img[i] / 255.0, z0 = x - 0.02, z1 = -x + 0.02;
        double lse = log(exp(z0) + exp(z1));
        want += lse - (lab[i] == 0 ? z0 : z1);
    }
    fnet_assert_close(loss, want / 4, 1e-6, 0.0);
    fnet_dataset_free(d);
    fnet_model_free(m);
    fnet_ctx_free(ctx);
}

static void test_train_rejects_bad_input(void **state)
{
    fnet_ctx *ctx;
    fnet_assert_ok(NULL, fnet_ctx_create_cpu(&ctx));
    fnet_dataset *train = make_data(ctx, 50, 1);
    fnet_model *m, *wide, *narrow;
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, "dense:3", DIM, 5, &m));
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, "dense:3", DIM + 1, 5, &wide));
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, "dense:2", DIM, 5, &narrow));
    fnet_optim_params op = fnet_optim_params_default(FNET_OPTIM_ADAM);
    fnet_train_params tp = fnet_train_params_default();
    float *w = fnet_model_params(m, NULL);
    float before = w[0];
    assert_int_equal(fnet_train(wide, &op, &tp, train, NULL, NULL, NULL, NULL), FNET_ERR_SHAPE);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "samples have 16 values, the model takes 17"));
    assert_int_equal(fnet_train(narrow, &op, &tp, train, NULL, NULL, NULL, NULL), FNET_ERR_SHAPE);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "3 classes"));
    tp.epochs = 0;
    assert_int_equal(fnet_train(m, &op, &tp, train, NULL, NULL, NULL, NULL), FNET_ERR_INVALID_ARG);
    tp.epochs = 1;
    tp.batch = -1;
    assert_int_equal(fnet_train(m, &op, &tp, train, NULL, NULL, NULL, NULL), FNET_ERR_INVALID_ARG);
    tp.batch = 8;
    op.lr = -0.1f;
    assert_int_equal(fnet_train(m, &op, &tp, train, NULL, NULL, NULL, NULL), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "lr"));
    assert_true(w[0] == before); // nothing trained
    fnet_model_free(m);
    fnet_model_free(wide);
    fnet_model_free(narrow);
    fnet_dataset_free(train);
    fnet_ctx_free(ctx);
}

static void test_train_survives_out_of_memory(void **state)
{
    fnet_ctx *ctx;
    fnet_assert_ok(NULL, fnet_ctx_create_cpu(&ctx));
    fnet_dataset *train = make_data(ctx, 40, 1), *val = make_data(ctx, 10, 2);
    int failures = 0;
    for (long k = 1; k < 200; k++) {
        fnet_model *m;
        fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, "dense:8,relu,dense:3", DIM, 5, &m));
        fnet_optim_params op = fnet_optim_params_default(FNET_OPTIM_ADAM);
        fnet_train_params tp = fnet_train_params_default();
        tp.epochs = 1;
        fnet_debug_fail_alloc(k);
        fnet_status st = fnet_train(m, &op, &tp, train, val, NULL, NULL, NULL);
        fnet_debug_fail_alloc(0);
        fnet_model_free(m);
        if (st == FNET_OK)
            break;
        assert_int_equal(st, FNET_ERR_OUT_OF_MEMORY);
        failures++;
    }
    assert_true(failures >= 4);
    fnet_dataset_free(train);
    fnet_dataset_free(val);
    fnet_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_layer_kind_lowers_the_loss),
        cmocka_unit_test(test_every_optimizer_lowers_the_loss),
        cmocka_unit_test(test_full_batch_training),
        cmocka_unit_test(test_seeded_runs_repeat_exactly),
        cmocka_unit_test(test_diverging_run_stops_with_numeric_error),
        cmocka_unit_test(test_rollback_recovers_from_divergence),
        cmocka_unit_test(test_callback_stops_training),
        cmocka_unit_test(test_evaluate_by_hand),
        cmocka_unit_test(test_train_rejects_bad_input),
        cmocka_unit_test(test_train_survives_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
