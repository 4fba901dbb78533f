/* Replayed training steps (src/core/train_replay.c, docs/gpu.md "The step as one graph"): a run
 * whose full batches are replayed from a recorded step against the same run step by step, on the
 * backend FNET_TEST_BACKEND names. Where the backend cannot record (cpu, reference) the test hook
 * makes the trainer take the replay path anyway, the step called again each time; on the guarded
 * backend every replay also refuses any op that would wait for a GPU or read host memory (so a
 * step a CUDA graph could not capture fails here); on cuda the step is a CUDA graph. The same
 * parameters bit for bit, the same step counts, the loss within the rounding of its sums; the
 * NaN guard and rollback stop where the plain run stops; models and optimizers that cannot be
 * replayed run plain. */
#include "test_util.h"
#include "core/internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIM 16
#define CLASSES 3

static fnet_dataset *make_data(fnet_ctx *ctx, int64_t n, uint64_t seed)
{
    return fnet_test_class_data(ctx, n, DIM, CLASSES, 150, 40, 60, seed);
}

// One run of spec with optimizer kind from seed 7, replayed (mode 1) or plain (-1): its status,
// final parameters (host, malloc) and totals.
struct run {
    fnet_status st;
    float *w;
    int64_t n, opt_steps;
    fnet_train_stats stats;
    char error[512];
};

static struct run train_once(fnet_ctx *ctx, const fnet_dataset *data, const char *spec,
                             fnet_optim_kind kind, float lr, int mode,
                             const fnet_train_params *tp_in, fnet_loss loss)
{
    struct run r = {0};
    fnet_model *m;
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, spec, DIM, 7, &m));
    fnet_assert_ok(ctx, fnet_model_set_loss(m, loss));
    fnet_optim_params op = fnet_optim_params_default(kind);
    op.lr = lr;
    fnet_optimizer *opt;
    fnet_assert_ok(ctx, fnet_optimizer_create(ctx, &op, fnet_model_num_params(m), &opt));
    int before = fnet_debug_train_replay(mode);
    r.st = fnet_train_with(m, opt, &op, tp_in, data, NULL, NULL, NULL, &r.stats);
    fnet_debug_train_replay(before);
    snprintf(r.error, sizeof(r.error), "%s", r.st == FNET_OK ? "" : fnet_ctx_last_error(ctx));
    r.n = fnet_model_num_params(m);
    r.w = fnet_test_model_params(m);
    r.opt_steps = fnet_optimizer_steps(opt);
    fnet_optimizer_free(opt);
    fnet_model_free(m);
    return r;
}

static void check_same_run(const struct run *plain, const struct run *replay, const char *what)
{
    if (plain->st != replay->st)
        fail_msg("%s: plain status %d, replayed %d (%s)", what, plain->st, replay->st,
                 replay->error);
    assert_int_equal(plain->n, replay->n);
    for (int64_t i = 0; i < plain->n; i++)
        if (memcmp(&plain->w[i], &replay->w[i], sizeof(float)) != 0)
            fail_msg("%s: parameter %lld is %.9g replayed, %.9g plain", what, (long long)i,
                     (double)replay->w[i], (double)plain->w[i]);
    assert_int_equal(plain->opt_steps, replay->opt_steps);
    assert_int_equal(plain->stats.steps, replay->stats.steps);
    assert_int_equal(plain->stats.rollbacks, replay->stats.rollbacks);
    // the loss sums differ in their last bits: Σ sum against Σ (sum / bs)·bs
    double a = plain->stats.train_loss, b = replay->stats.train_loss;
    if (plain->st == FNET_OK && !(fabs(a - b) <= 1e-12 * fabs(a)))
        fail_msg("%s: train_loss %.17g replayed, %.17g plain", what, b, a);
}

static void run_free(struct run *r)
{
    free(r->w);
}

// Every layer kind that replays and every optimizer that does: 100 samples at batch 16 are six
// full batches and a partial one, two epochs: 5 replayed steps an epoch (its first is plain).
static void test_replayed_runs_equal_plain_runs(void **state)
{
    static const struct {
        const char *spec;
        fnet_optim_kind kind;
        float lr;
    } cases[] = {
        {"dense:32,relu,dense:16,tanh,dense:3", FNET_OPTIM_ADAM, 1e-2f},
        {"tt:16:rank=3:in=4x4:out=4x4,sigmoid,dense:3", FNET_OPTIM_SGD, 0.2f},
        {"lowrank:16:rank=4,relu,dense:3", FNET_OPTIM_NESTEROV, 0.05f},
        {"circ:16:block=4,relu,dense:3", FNET_OPTIM_RMSPROP, 1e-2f},
        {"sparse:16:density=0.5,relu,dense:3", FNET_OPTIM_MOMENTUM, 0.05f},
        {"tr:16:rank=2:ring=2:in=4x4:out=4x4,relu,tucker:8:rank=2,relu,cp:3:rank=2",
         FNET_OPTIM_ADAM, 1e-2f},
    };
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    fnet_dataset *data = make_data(ctx, 100, 3);
    fnet_train_params tp = fnet_train_params_default();
    tp.batch = 16;
    tp.epochs = 2;
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        struct run plain = train_once(ctx, data, cases[c].spec, cases[c].kind, cases[c].lr, -1,
                                      &tp, FNET_LOSS_CE);
        struct run replay = train_once(ctx, data, cases[c].spec, cases[c].kind, cases[c].lr, 1,
                                       &tp, FNET_LOSS_CE);
        fnet_assert_ok(ctx, plain.st);
        check_same_run(&plain, &replay, cases[c].spec);
        assert_int_equal(plain.stats.replayed_steps, 0);
        if (replay.stats.replayed_steps != 10)
            fail_msg("%s: %lld steps replayed, want 10", cases[c].spec,
                     (long long)replay.stats.replayed_steps);
        assert_int_equal(replay.stats.steps, 14);
        run_free(&plain);
        run_free(&replay);
    }
    // MSE, and a batch that divides the data: 4 batches of 25, 3 replayed an epoch
    tp.batch = 25;
    struct run plain = train_once(ctx, data, "dense:8,relu,dense:3", FNET_OPTIM_ADAM, 1e-2f, -1,
                                  &tp, FNET_LOSS_MSE);
    struct run replay = train_once(ctx, data, "dense:8,relu,dense:3", FNET_OPTIM_ADAM, 1e-2f, 1,
                                   &tp, FNET_LOSS_MSE);
    check_same_run(&plain, &replay, "mse, batch 25");
    assert_int_equal(replay.stats.replayed_steps, 6);
    run_free(&plain);
    run_free(&replay);
    fnet_dataset_free(data);
    fnet_ctx_free(ctx);
}

// A diverging run stops at the same step with the same parameters (those before the step whose
// loss was not finite: the replayed optimizer skipped it and every one after it)
static void test_replayed_divergence_stops_where_plain_stops(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    fnet_dataset *data = make_data(ctx, 400, 1);
    fnet_train_params tp = fnet_train_params_default();
    tp.batch = 16;
    tp.epochs = 3;
    struct run plain = train_once(ctx, data, "dense:16,relu,dense:3", FNET_OPTIM_SGD, 1e6f, -1,
                                  &tp, FNET_LOSS_MSE);
    struct run replay = train_once(ctx, data, "dense:16,relu,dense:3", FNET_OPTIM_SGD, 1e6f, 1,
                                   &tp, FNET_LOSS_MSE);
    assert_int_equal(plain.st, FNET_ERR_NUMERIC);
    check_same_run(&plain, &replay, "diverging SGD");
    assert_true(replay.stats.steps > 1); // the first step is plain: it diverged in a replay
    // both name the same step
    const char *p = strstr(plain.error, "epoch 1, step ");
    const char *q = strstr(replay.error, "epoch 1, step ");
    assert_non_null(p);
    assert_non_null(q);
    assert_int_equal(atoi(p + strlen("epoch 1, step ")), atoi(q + strlen("epoch 1, step ")));
    assert_non_null(strstr(replay.error, "training stopped"));
    run_free(&plain);
    run_free(&replay);
    // with rollbacks: the same restarts, the same end
    tp.on_nan = FNET_NAN_ROLLBACK;
    tp.max_rollbacks = 40;
    plain = train_once(ctx, data, "dense:3", FNET_OPTIM_SGD, 1e8f, -1, &tp, FNET_LOSS_MSE);
    replay = train_once(ctx, data, "dense:3", FNET_OPTIM_SGD, 1e8f, 1, &tp, FNET_LOSS_MSE);
    fnet_assert_ok(ctx, plain.st);
    assert_true(plain.stats.rollbacks >= 10);
    check_same_run(&plain, &replay, "SGD with rollbacks");
    assert_true(replay.stats.replayed_steps > 0);
    run_free(&plain);
    run_free(&replay);
    fnet_dataset_free(data);
    fnet_ctx_free(ctx);
}

// A checkpoint due at every step ends every segment (the host needs the loss): still the plain
// run's parameters, and the last checkpoint loads
static void test_replay_with_checkpoints_at_every_step(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    fnet_dataset *data = make_data(ctx, 100, 5);
    char path[1024];
    snprintf(path, sizeof(path), "%s/replay.safetensors", fnet_test_tmpdir());
    fnet_train_params tp = fnet_train_params_default();
    tp.batch = 16;
    tp.epochs = 2;
    tp.save_path = path;
    tp.save_every_seconds = 1e-9;
    struct run plain = train_once(ctx, data, "dense:8,relu,dense:3", FNET_OPTIM_ADAM, 1e-2f, -1,
                                  &tp, FNET_LOSS_CE);
    struct run replay = train_once(ctx, data, "dense:8,relu,dense:3", FNET_OPTIM_ADAM, 1e-2f, 1,
                                   &tp, FNET_LOSS_CE);
    check_same_run(&plain, &replay, "a checkpoint every step");
    assert_int_equal(replay.stats.replayed_steps, 10);
    assert_true(replay.stats.checkpoints >= 10);
    fnet_model *m;
    fnet_assert_ok(ctx, fnet_model_load(ctx, path, &m));
    float *w = fnet_test_model_params(m);
    assert_memory_equal(w, replay.w, sizeof(float) * (size_t)replay.n);
    free(w);
    fnet_model_free(m);
    run_free(&plain);
    run_free(&replay);
    fnet_dataset_free(data);
    fnet_ctx_free(ctx);
}

// What cannot be replayed runs plain: dropout (its mask stream is counted on the host),
// penalties (their value comes back to the host), AdamW's decoupled decay (a second op)
static void test_what_cannot_be_replayed_runs_plain(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    fnet_dataset *data = make_data(ctx, 64, 2);
    fnet_train_params tp = fnet_train_params_default();
    tp.batch = 16;
    tp.epochs = 1;
    struct run r = train_once(ctx, data, "dense:8,dropout:0.2,dense:3", FNET_OPTIM_ADAM, 1e-2f, 1,
                              &tp, FNET_LOSS_CE);
    fnet_assert_ok(ctx, r.st);
    assert_int_equal(r.stats.replayed_steps, 0);
    assert_int_equal(r.stats.steps, 4);
    run_free(&r);
    fnet_model *m;
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, "dense:8,relu,dense:3", DIM, 7, &m));
    fnet_assert_ok(ctx, fnet_model_set_regularization(m, 0.0f, 1e-3f));
    fnet_optim_params op = fnet_optim_params_default(FNET_OPTIM_ADAMW);
    fnet_train_stats st;
    int before = fnet_debug_train_replay(1);
    fnet_assert_ok(ctx, fnet_train(m, &op, &tp, data, NULL, NULL, NULL, &st));
    assert_int_equal(st.replayed_steps, 0); // L2
    fnet_assert_ok(ctx, fnet_model_set_regularization(m, 0.0f, 0.0f));
    op.weight_decay = 1e-2f;
    fnet_assert_ok(ctx, fnet_train(m, &op, &tp, data, NULL, NULL, NULL, &st));
    assert_int_equal(st.replayed_steps, 0); // AdamW's decay
    op.weight_decay = 0.0f;
    fnet_assert_ok(ctx, fnet_train(m, &op, &tp, data, NULL, NULL, NULL, &st));
    assert_int_equal(st.replayed_steps, 3);
    // never, whatever the backend
    fnet_debug_train_replay(-1);
    fnet_assert_ok(ctx, fnet_train(m, &op, &tp, data, NULL, NULL, NULL, &st));
    assert_int_equal(st.replayed_steps, 0);
    fnet_debug_train_replay(before);
    fnet_model_free(m);
    fnet_dataset_free(data);
    fnet_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replayed_runs_equal_plain_runs),
        cmocka_unit_test(test_replayed_divergence_stops_where_plain_stops),
        cmocka_unit_test(test_replay_with_checkpoints_at_every_step),
        cmocka_unit_test(test_what_cannot_be_replayed_runs_plain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
