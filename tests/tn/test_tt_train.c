/* Rank-adaptive training: TT layers re-rounded between epochs shrink for real (the flat vector
 * and the optimizer's state are rebuilt) and training goes on and still learns. Run on the
 * backend FNET_TEST_BACKEND names (fnet_test_ctx); optimizer state is read through host copies. */
#include "test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DIM 16

static fnet_dataset *make_data(fnet_ctx *ctx, int64_t n)
{
    return fnet_test_class_data(ctx, n, DIM, 4, 170, 30, 50, 11);
}

struct seen {
    int n;
    int64_t params[16];
    double loss[16];
};

static int record(const fnet_epoch_info *e, void *user)
{
    struct seen *s = user;
    s->params[s->n] = e->params;
    s->loss[s->n] = e->train_loss;
    s->n++;
    return 0;
}

static void check_rank_adaptive(fnet_optim_kind kind, float lr)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    fnet_dataset *d = make_data(ctx, 320);
    fnet_model *m;
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, "tt:64:rank=6,relu,dense:4", DIM, 3, &m));
    int64_t n0 = fnet_model_num_params(m);
    fnet_optim_params op = fnet_optim_params_default(kind);
    op.lr = lr;
    fnet_train_params tp = fnet_train_params_default();
    tp.batch = 16;
    tp.epochs = 6;
    tp.tt_round_every = 2;
    tp.tt_eps = 1e-3;
    tp.tt_max_rank = 2;
    struct seen s = {0};
    fnet_assert_ok(ctx, fnet_train(m, &op, &tp, d, NULL, record, &s, NULL));
    assert_int_equal(s.n, 6);
    // rounded after epochs 2 and 4 (not after the last): the count drops after epoch 2
    assert_int_equal(s.params[0], n0);
    assert_true(s.params[1] < n0);
    assert_int_equal(s.params[5], fnet_model_num_params(m));
    fnet_tt_info info;
    fnet_assert_ok(ctx, fnet_tt_layer_info(fnet_model_layer(m, 0), 16, &info));
    for (int k = 1; k < info.d; k++)
        assert_true(info.ranks[k] <= 2);
    double acc, loss;
    fnet_assert_ok(ctx, fnet_model_evaluate(m, d, &acc, &loss));
    if (!(acc > 0.9 && s.loss[5] < s.loss[0]))
        fail_msg("%s: accuracy %g, loss %g -> %g", fnet_optim_kind_name(kind), acc, s.loss[0],
                 s.loss[5]);
    fnet_model_free(m);
    fnet_dataset_free(d);
    fnet_ctx_free(ctx);
}

static void test_rank_adaptive_training_shrinks_ranks_and_learns(void **state)
{
    check_rank_adaptive(FNET_OPTIM_ADAM, 1e-2f);
    check_rank_adaptive(FNET_OPTIM_MOMENTUM, 5e-2f);
    check_rank_adaptive(FNET_OPTIM_SGD, 0.2f);
}

// The remap keeps the state of the layers that were not rounded, zeroes the rounded ones'.
static void test_optimizer_remap_moves_runs(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    fnet_optim_params op = fnet_optim_params_default(FNET_OPTIM_ADAM);
    fnet_optimizer *opt;
    fnet_assert_ok(ctx, fnet_optimizer_create(ctx, &op, 10, &opt));
    float w[10], g[10];
    for (int i = 0; i < 10; i++)
        w[i] = 0.0f, g[i] = (float)(i + 1);
    float *wd = fnet_test_upload(ctx, w, 10), *gd = fnet_test_upload(ctx, g, 10);
    fnet_assert_ok(ctx, fnet_optimizer_step(opt, wd, gd));
    float m_before[10];
    fnet_assert_ok(ctx, fnet_optimizer_get_state(opt, 0, m_before));
    const int64_t src[2] = {0, 7}, dst[2] = {0, 4}, len[2] = {3, 3};
    fnet_assert_ok(ctx, fnet_optimizer_remap(opt, 8, 2, src, dst, len));
    float m[8];
    fnet_assert_ok(ctx, fnet_optimizer_get_state(opt, 0, m));
    const float want[8] = {m_before[0], m_before[1], m_before[2], 0.0f,
                           m_before[7], m_before[8], m_before[9], 0.0f};
    fnet_assert_allclose(m, want, 8, 0.0, 0.0);
    assert_int_equal(fnet_optimizer_size(opt), 8);
    assert_int_equal(fnet_optimizer_steps(opt), 1);
    const int64_t bad[1] = {9};
    assert_int_equal(fnet_optimizer_remap(opt, 8, 1, bad, dst, len), FNET_ERR_INVALID_ARG);
    fnet_backend_free(ctx, wd);
    fnet_backend_free(ctx, gd);
    fnet_optimizer_free(opt);
    fnet_ctx_free(ctx);
}

static void test_rank_adaptive_settings_are_checked(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    fnet_dataset *d = make_data(ctx, 32);
    fnet_model *m;
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, "tt:64:rank=4,relu,dense:4", DIM, 3, &m));
    fnet_optim_params op = fnet_optim_params_default(FNET_OPTIM_ADAM);
    fnet_train_params tp = fnet_train_params_default();
    tp.epochs = 2;
    tp.tt_round_every = 1;
    tp.tt_eps = 0.0;
    assert_int_equal(fnet_train(m, &op, &tp, d, NULL, NULL, NULL, NULL), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "TT rounding"));
    tp.tt_eps = NAN;
    assert_int_equal(fnet_train(m, &op, &tp, d, NULL, NULL, NULL, NULL), FNET_ERR_INVALID_ARG);
    tp.tt_round_every = -1;
    tp.tt_eps = 0.1;
    assert_int_equal(fnet_train(m, &op, &tp, d, NULL, NULL, NULL, NULL), FNET_ERR_INVALID_ARG);
    fnet_model_free(m);
    fnet_dataset_free(d);
    fnet_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rank_adaptive_training_shrinks_ranks_and_learns),
        cmocka_unit_test(test_optimizer_remap_moves_runs),
        cmocka_unit_test(test_rank_adaptive_settings_are_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
