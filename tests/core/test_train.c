/* The trainer on small synthetic data: every layer kind and optimizer lowers the loss, seeded
 * runs repeat exactly, full batch, the NaN guard, early stopping, evaluation by hand, bad input
 * and out-of-memory injection; rank-adaptive rounding with the optimizer's state, all or nothing.
 * Each test runs on the backend FNET_TEST_BACKEND names (fnet_test_ctx); parameters and
 * optimizer state are compared on host copies. */
#include "test_util.h"
#include "core/model_impl.h"

#include <math.h>
#include <stdio.h>
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

static void check_error_contains(const fnet_ctx *ctx, const char *needle)
{
    if (strstr(fnet_ctx_last_error(ctx), needle) == NULL)
        fail_msg("last error '%s' does not contain '%s'", fnet_ctx_last_error(ctx), needle);
}

// n floats of backend memory, uniform in [-1, 1) from seed.
static float *upload_uniform(fnet_ctx *ctx, int64_t n, uint64_t seed)
{
    float *h = malloc(sizeof(float) * (size_t)n);
    assert_non_null(h);
    fnet_test_fill_uniform(h, n, -1.0f, 1.0f, seed);
    float *be = fnet_test_upload(ctx, h, n);
    free(h);
    return be;
}

// `steps` Adam steps on w (n floats, backend memory) with random gradients drawn from seed.
static void take_adam_steps(fnet_ctx *ctx, fnet_optimizer *opt, float *w, int64_t n, int steps,
                            uint64_t seed)
{
    for (int s = 0; s < steps; s++) {
        float *g = upload_uniform(ctx, n, seed + (uint64_t)s);
        fnet_assert_ok(ctx, fnet_optimizer_step(opt, w, g));
        fnet_backend_free(ctx, g);
    }
}

// A host copy of an Adam optimizer: its size, steps and the m and v vectors.
struct adam_copy {
    int64_t n, steps;
    float *m, *v;
};

static struct adam_copy adam_copy_take(const fnet_optimizer *opt)
{
    struct adam_copy c = {fnet_optimizer_size(opt), fnet_optimizer_steps(opt), NULL, NULL};
    assert_int_equal(fnet_optimizer_num_states(opt), 2);
    c.m = malloc(sizeof(float) * (size_t)c.n);
    c.v = malloc(sizeof(float) * (size_t)c.n);
    assert_true(c.m != NULL && c.v != NULL);
    assert_int_equal(fnet_optimizer_get_state(opt, 0, c.m), FNET_OK);
    assert_int_equal(fnet_optimizer_get_state(opt, 1, c.v), FNET_OK);
    return c;
}

static void adam_copy_free(struct adam_copy *c)
{
    free(c->m);
    free(c->v);
}

// opt holds exactly what `was` copied: size, steps and both state vectors bit for bit.
static void check_adam_unchanged(const fnet_optimizer *opt, const struct adam_copy *was)
{
    struct adam_copy now = adam_copy_take(opt);
    assert_int_equal(now.n, was->n);
    assert_int_equal(now.steps, was->steps);
    assert_memory_equal(now.m, was->m, sizeof(float) * (size_t)was->n);
    assert_memory_equal(now.v, was->v, sizeof(float) * (size_t)was->n);
    adam_copy_free(&now);
}

static void check_zero(const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (x[i] != 0.0f)
            fail_msg("element %lld is %g, not 0", (long long)i, (double)x[i]);
}

static void check_nonzero(const float *x, int64_t n)
{
    bool nonzero = false;
    for (int64_t i = 0; i < n; i++)
        nonzero |= x[i] != 0.0f;
    assert_true(nonzero);
}

// The model's parameters (host copy) are bit for bit want (n floats, host).
static void check_params_equal(const fnet_model *m, const float *want, int64_t n)
{
    assert_int_equal(fnet_model_num_params(m), n);
    float *w = fnet_test_model_params(m);
    assert_memory_equal(w, want, sizeof(float) * (size_t)n);
    free(w);
}

// m still has the spec, parameter count and parameters (host copy w) it had.
static void check_model_unchanged(const fnet_model *m, const char *spec, const float *w,
                                  int64_t n)
{
    assert_string_equal(fnet_model_spec(m), spec);
    check_params_equal(m, w, n);
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
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    const char *specs[] = {"dense:3", "dense:16,relu,dense:3", "dense:16,tanh,dense:3",
                           "dense:16,sigmoid,dense:3", "dense:16,relu,dropout:0.2,dense:3",
                           "dense:16,relu,tt:16:rank=2,relu,dense:3",
                           "dense:16,relu,lowrank:16:rank=3,relu,dense:3",
                           "dense:16,relu,circ:16:block=4,relu,dense:3",
                           "dense:16,relu,sparse:16:density=0.5,relu,dense:3"};
    for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++)
        train_and_check(ctx, specs[i], FNET_OPTIM_ADAM, 1e-2f, 16, 8);
    fnet_ctx_free(ctx);
}

static void test_every_optimizer_lowers_the_loss(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    const fnet_optim_kind kinds[] = {FNET_OPTIM_SGD, FNET_OPTIM_MOMENTUM, FNET_OPTIM_NESTEROV,
                                     FNET_OPTIM_RMSPROP, FNET_OPTIM_ADAM, FNET_OPTIM_ADAMW};
    const float lrs[] = {0.1f, 0.05f, 0.05f, 3e-3f, 1e-2f, 1e-2f};
    for (int i = 0; i < 6; i++)
        train_and_check(ctx, "dense:16,relu,dense:3", kinds[i], lrs[i], 16, 8);
    fnet_ctx_free(ctx);
}

static void test_full_batch_training(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_REFERENCE);
    train_and_check(ctx, "dense:16,tanh,dense:3", FNET_OPTIM_ADAM, 5e-2f, 0, 30);
    fnet_ctx_free(ctx);
}

static void test_seeded_runs_repeat_exactly(void **state)
{
    float *params[2];
    int64_t n = 0;
    for (int run = 0; run < 2; run++) {
        fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
        fnet_dataset *train = make_data(ctx, 200, 1);
        fnet_model *m;
        fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, "dense:16,relu,dropout:0.3,dense:3", DIM, 5, &m));
        fnet_optim_params op = fnet_optim_params_default(FNET_OPTIM_ADAM);
        fnet_train_params tp = fnet_train_params_default();
        tp.batch = 8;
        tp.epochs = 3;
        tp.seed = 99;
        fnet_assert_ok(ctx, fnet_train(m, &op, &tp, train, NULL, NULL, NULL, NULL));
        n = fnet_model_num_params(m);
        params[run] = fnet_test_model_params(m);
        fnet_model_free(m);
        fnet_dataset_free(train);
        fnet_ctx_free(ctx);
    }
    assert_memory_equal(params[0], params[1], sizeof(float) * (size_t)n);
    free(params[0]), free(params[1]);
}

static void test_diverging_run_stops_with_numeric_error(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
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
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
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
    int64_t n = fnet_model_num_params(m);
    float *w = fnet_test_model_params(m);
    for (int64_t i = 0; i < n; i++)
        assert_true(isfinite(w[i]));
    free(w);
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
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
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
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    fnet_model *m;
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, "dense:2", 1, 1, &m));
    const float w[4] = {1.0f, -1.0f, -0.02f, 0.02f};
    fnet_assert_ok(ctx, fnet_model_set_params(m, w));
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
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    fnet_dataset *train = make_data(ctx, 50, 1);
    fnet_model *m, *wide, *narrow;
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, "dense:3", DIM, 5, &m));
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, "dense:3", DIM + 1, 5, &wide));
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, "dense:2", DIM, 5, &narrow));
    fnet_optim_params op = fnet_optim_params_default(FNET_OPTIM_ADAM);
    fnet_train_params tp = fnet_train_params_default();
    float *before = fnet_test_model_params(m);
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
    check_params_equal(m, before, fnet_model_num_params(m)); // nothing trained
    free(before);
    fnet_model_free(m);
    fnet_model_free(wide);
    fnet_model_free(narrow);
    fnet_dataset_free(train);
    fnet_ctx_free(ctx);
}

static void test_train_survives_out_of_memory(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
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

// An optimizer made for another number of parameters is refused before anything is trained.
static void test_train_with_rejects_optimizer_of_another_size(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    fnet_dataset *train = make_data(ctx, 50, 1);
    fnet_model *m;
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, "dense:8,relu,dense:3", DIM, 5, &m));
    int64_t n = fnet_model_num_params(m), other = n + 7;
    fnet_optim_params op = fnet_optim_params_default(FNET_OPTIM_ADAM);
    fnet_optimizer *opt;
    fnet_assert_ok(ctx, fnet_optimizer_create(ctx, &op, other, &opt));
    float *w = fnet_test_model_params(m);
    struct adam_copy before = adam_copy_take(opt);
    fnet_train_params tp = fnet_train_params_default();
    tp.epochs = 1;
    assert_int_equal(fnet_train_with(m, opt, &op, &tp, train, NULL, NULL, NULL, NULL),
                     FNET_ERR_SHAPE);
    char msg[128];
    snprintf(msg, sizeof(msg), "the optimizer was made for %lld parameters, the model has %lld",
             (long long)other, (long long)n);
    check_error_contains(ctx, msg);
    check_params_equal(m, w, n);
    check_adam_unchanged(opt, &before);
    adam_copy_free(&before);
    free(w);
    fnet_optimizer_free(opt);
    fnet_model_free(m);
    fnet_dataset_free(train);
    fnet_ctx_free(ctx);
}

// A dataset or an optimizer made on another ctx than the model's is refused at the boundary
// (its memory is another backend's), and nothing changes.
static void test_train_refuses_data_and_optimizers_of_another_ctx(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU), *other = fnet_test_ctx(FNET_BACKEND_CPU);
    fnet_dataset *mine = make_data(ctx, 60, 1), *theirs = make_data(other, 60, 1);
    fnet_model *m;
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, "dense:8,relu,dense:3", DIM, 2, &m));
    int64_t n = fnet_model_num_params(m);
    float *w = fnet_test_model_params(m);
    fnet_optim_params op = fnet_optim_params_default(FNET_OPTIM_ADAM);
    fnet_train_params tp = fnet_train_params_default();
    tp.epochs = 1;
    assert_int_equal(fnet_train(m, &op, &tp, theirs, NULL, NULL, NULL, NULL), FNET_ERR_INVALID_ARG);
    check_error_contains(ctx, "training data was loaded on another ctx");
    assert_int_equal(fnet_train(m, &op, &tp, mine, theirs, NULL, NULL, NULL), FNET_ERR_INVALID_ARG);
    check_error_contains(ctx, "validation data was loaded on another ctx");
    double acc, loss;
    assert_int_equal(fnet_model_evaluate(m, theirs, &acc, &loss), FNET_ERR_INVALID_ARG);
    fnet_optimizer *opt;
    fnet_assert_ok(other, fnet_optimizer_create(other, &op, n, &opt));
    assert_int_equal(fnet_train_with(m, opt, &op, &tp, mine, NULL, NULL, NULL, NULL),
                     FNET_ERR_INVALID_ARG);
    check_error_contains(ctx, "the optimizer was made on another ctx");
    bool changed = true;
    assert_int_equal(fnet_model_round_layers(m, 0.5, 0, opt, &changed), FNET_ERR_INVALID_ARG);
    assert_false(changed);
    check_params_equal(m, w, n);
    assert_int_equal(fnet_optimizer_steps(opt), 0);
    free(w);
    fnet_optimizer_free(opt);
    fnet_model_free(m);
    fnet_dataset_free(theirs);
    fnet_dataset_free(mine);
    fnet_ctx_free(other);
    fnet_ctx_free(ctx);
}

// An optimizer of another size is refused before any layer is rounded, also when no rank would
// shrink (nothing would be replaced, and the caller's optimizer would still not fit the model).
static void test_rank_rounding_refuses_an_optimizer_of_another_size(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    fnet_model *m;
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, "dense:16,tt:16:rank=1,dense:3", DIM, 3, &m));
    int64_t n = fnet_model_num_params(m);
    fnet_optim_params op = fnet_optim_params_default(FNET_OPTIM_ADAM);
    fnet_optimizer *wrong;
    fnet_assert_ok(ctx, fnet_optimizer_create(ctx, &op, n + 1, &wrong));
    float *w = fnet_test_model_params(m);
    bool changed = true;
    assert_int_equal(fnet_model_round_layers(m, 0.5, 0, wrong, &changed), FNET_ERR_SHAPE);
    assert_false(changed);
    assert_non_null(strstr(fnet_ctx_last_message(ctx), "the optimizer was made for"));
    assert_int_equal(fnet_model_num_params(m), n);
    assert_int_equal(fnet_optimizer_size(wrong), n + 1);
    check_params_equal(m, w, n);
    free(w);
    fnet_optimizer_free(wrong);
    fnet_model_free(m);
    fnet_ctx_free(ctx);
}

// Two TT layers whose ranks shrink when rounded, between dense layers that are kept: the first
// dense layer stays at offset 0, the other two move.
#define ROUND_SPEC "dense:16,tt:16:rank=4,relu,dense:16,tt:16:rank=4,tanh,dense:3"
#define ROUND_EPS 0.5
#define ROUND_LAYERS 7

// Rounding is all or nothing: failing any allocation leaves the model and the optimizer as they
// were; the success keeps the dense layers' parameters and Adam state at their new offsets and
// starts the rounded TT layers' state at zero.
static void test_rank_rounding_is_all_or_nothing(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    fnet_model *m;
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, ROUND_SPEC, DIM, 3, &m));
    assert_int_equal(fnet_model_num_layers(m), ROUND_LAYERS);
    int64_t n = fnet_model_num_params(m);
    fnet_optim_params op = fnet_optim_params_default(FNET_OPTIM_ADAM);
    fnet_optimizer *opt, *wrong;
    fnet_assert_ok(ctx, fnet_optimizer_create(ctx, &op, n, &opt));
    fnet_assert_ok(ctx, fnet_optimizer_create(ctx, &op, n + 1, &wrong));
    take_adam_steps(ctx, opt, fnet_model_params(m, NULL), n, 3, 10);
    float *wrong_w = upload_uniform(ctx, n + 1, 21);
    take_adam_steps(ctx, wrong, wrong_w, n + 1, 2, 20);

    char *spec = strdup(fnet_model_spec(m));
    assert_non_null(spec);
    float *w = fnet_test_model_params(m);
    struct adam_copy st0 = adam_copy_take(opt), wrong0 = adam_copy_take(wrong);
    check_nonzero(st0.v, n); // the steps left a real state to keep or drop
    int64_t off0[ROUND_LAYERS], np0[ROUND_LAYERS];
    for (int i = 0; i < ROUND_LAYERS; i++) {
        off0[i] = fnet_model_layer_offset(m, i);
        np0[i] = fnet_layer_num_params(fnet_model_layer(m, i));
    }

    // an optimizer made for another size: refused, nothing changed
    bool changed = true;
    assert_int_equal(fnet_model_round_layers(m, ROUND_EPS, 0, wrong, &changed), FNET_ERR_SHAPE);
    char msg[128];
    snprintf(msg, sizeof(msg), "made for %lld parameters, the model has %lld",
             (long long)(n + 1), (long long)n);
    check_error_contains(ctx, msg);
    assert_false(changed);
    check_model_unchanged(m, spec, w, n);
    check_adam_unchanged(wrong, &wrong0);
    check_adam_unchanged(opt, &st0);

    // out of memory at each allocation in turn, until the rounding goes through
    int failures = 0;
    fnet_status st;
    for (long k = 1;; k++) {
        changed = true;
        fnet_debug_fail_alloc(k);
        st = fnet_model_round_layers(m, ROUND_EPS, 0, opt, &changed);
        fnet_debug_fail_alloc(0);
        if (st == FNET_OK)
            break;
        if (st != FNET_ERR_OUT_OF_MEMORY)
            fail_msg("allocation %ld failed: status %d (%s): %s", k, (int)st,
                     fnet_status_str(st), fnet_ctx_last_error(ctx));
        assert_false(changed);
        check_model_unchanged(m, spec, w, n);
        check_adam_unchanged(opt, &st0);
        failures++;
        assert_true(k < 1000);
    }
    // both layers' SVDs, the new flat vectors and the optimizer's new state can all fail
    assert_true(failures >= 8);
    assert_true(changed);

    int64_t n1 = fnet_model_num_params(m);
    assert_true(n1 < n);
    assert_int_equal(fnet_optimizer_size(opt), n1);
    assert_int_equal(fnet_optimizer_steps(opt), st0.steps);
    assert_string_not_equal(fnet_model_spec(m), spec);
    float *w1 = fnet_test_model_params(m);
    struct adam_copy st1 = adam_copy_take(opt);
    int moved = 0;
    for (int i = 0; i < ROUND_LAYERS; i++) {
        fnet_layer *l = fnet_model_layer(m, i);
        int64_t off1 = fnet_model_layer_offset(m, i), np1 = fnet_layer_num_params(l);
        if (fnet_layer_kind_of(l) == FNET_LAYER_TT) {
            assert_true(np1 < np0[i]); // its ranks shrank
            check_zero(st1.m + off1, np1);
            check_zero(st1.v + off1, np1);
            continue;
        }
        assert_int_equal(np1, np0[i]);
        moved += np1 > 0 && off1 != off0[i];
        assert_memory_equal(w1 + off1, w + off0[i], sizeof(float) * (size_t)np1);
        assert_memory_equal(st1.m + off1, st0.m + off0[i], sizeof(float) * (size_t)np1);
        assert_memory_equal(st1.v + off1, st0.v + off0[i], sizeof(float) * (size_t)np1);
    }
    assert_int_equal(moved, 2); // the dense layers behind a TT layer

    adam_copy_free(&st1);
    free(w1);
    adam_copy_free(&wrong0);
    adam_copy_free(&st0);
    free(w);
    free(spec);
    fnet_backend_free(ctx, wrong_w);
    fnet_optimizer_free(wrong);
    fnet_optimizer_free(opt);
    fnet_model_free(m);
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
        cmocka_unit_test(test_train_with_rejects_optimizer_of_another_size),
        cmocka_unit_test(test_rank_rounding_is_all_or_nothing),
        cmocka_unit_test(test_rank_rounding_refuses_an_optimizer_of_another_size),
        cmocka_unit_test(test_train_refuses_data_and_optimizers_of_another_ctx),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
