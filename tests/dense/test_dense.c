/* Dense, activation and dropout layers: statuses on bad arguments, forward equal to the dense
 * reconstruction, finite-difference gradients, CPU equal to reference, out-of-memory injection.
 * Run on the backend FNET_TEST_BACKEND names (fnet_test_ctx), through uploads, downloads and
 * host copies of the parameters. */
#include "layer_check.h"
#include "core/backend.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static fnet_status make_dense(fnet_ctx *ctx, uint64_t seed, fnet_layer **out)
{
    fnet_status st = fnet_dense_create(ctx, 7, 5, true, out);
    if (st != FNET_OK)
        return st;
    fnet_rng rng;
    fnet_rng_seed(&rng, seed);
    st = fnet_layer_init(*out, FNET_INIT_GLOROT_UNIFORM, &rng);
    if (st != FNET_OK)
        return st;
    // non-zero biases so the bias path is exercised
    float b[5];
    for (int i = 0; i < 5; i++)
        b[i] = 0.1f * (float)(i + 1);
    return fnet_test_set_layer_bias(*out, b, 5);
}

static fnet_status make_dense_nobias(fnet_ctx *ctx, uint64_t seed, fnet_layer **out)
{
    fnet_status st = fnet_dense_create(ctx, 6, 9, false, out);
    fnet_rng rng;
    fnet_rng_seed(&rng, seed);
    return st != FNET_OK ? st : fnet_layer_init(*out, FNET_INIT_HE, &rng);
}

static fnet_status make_relu(fnet_ctx *ctx, uint64_t seed, fnet_layer **out)
{
    return fnet_activation_create(ctx, FNET_LAYER_RELU, 6, out);
}

static fnet_status make_tanh(fnet_ctx *ctx, uint64_t seed, fnet_layer **out)
{
    return fnet_activation_create(ctx, FNET_LAYER_TANH, 6, out);
}

static fnet_status make_sigmoid(fnet_ctx *ctx, uint64_t seed, fnet_layer **out)
{
    return fnet_activation_create(ctx, FNET_LAYER_SIGMOID, 6, out);
}

// dropout in training mode with a fixed mask seed: forward and backward see the same mask as
// long as the forward is not repeated, so gradients are checked in evaluation mode and the
// masked path is checked by test_dropout_masks_and_scales.
static fnet_status make_dropout(fnet_ctx *ctx, uint64_t seed, fnet_layer **out)
{
    fnet_status st = fnet_dropout_create(ctx, 6, 0.25f, out);
    if (st != FNET_OK)
        return st;
    fnet_rng rng;
    fnet_rng_seed(&rng, seed);
    return fnet_layer_init(*out, FNET_INIT_GLOROT_UNIFORM, &rng);
}

static void test_dense_rejects_bad_arguments(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_REFERENCE);
    fnet_layer *l = (fnet_layer *)&l;
    assert_int_equal(fnet_dense_create(ctx, 0, 5, true, &l), FNET_ERR_INVALID_ARG);
    assert_null(l);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "sizes must be positive"));
    assert_int_equal(fnet_dense_create(ctx, 5, -1, true, &l), FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_dense_create(ctx, (int64_t)1 << 32, 5, true, &l), FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_dense_create(NULL, 5, 5, true, &l), FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_activation_create(ctx, FNET_LAYER_DENSE, 5, &l), FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_activation_create(ctx, FNET_LAYER_RELU, 0, &l), FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_dropout_create(ctx, 5, 1.0f, &l), FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_dropout_create(ctx, 5, -0.1f, &l), FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_dropout_create(ctx, 5, NAN, &l), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "p must be in [0, 1)"));
    // forward/backward argument checks
    fnet_assert_ok(ctx, fnet_dense_create(ctx, 3, 2, true, &l));
    const float zeros[6] = {0};
    float *x = fnet_test_upload(ctx, zeros, 6), *y = fnet_test_upload(ctx, zeros, 4);
    assert_int_equal(fnet_layer_forward(l, NULL, 2, y), FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_layer_forward(l, x, 0, y), FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_layer_backward(l, x, y, y, 2, NULL), FNET_ERR_INVALID_ARG); // no forward yet
    fnet_assert_ok(ctx, fnet_layer_forward(l, x, 2, y));
    assert_int_equal(fnet_layer_backward(l, x, y, y, 3, NULL), FNET_ERR_INVALID_ARG);
    fnet_layer *act;
    fnet_assert_ok(ctx, fnet_activation_create(ctx, FNET_LAYER_TANH, 3, &act));
    float W[9];
    assert_int_equal(fnet_layer_to_dense(act, W), FNET_ERR_UNSUPPORTED);
    fnet_layer_free(act);
    fnet_layer_free(l);
    fnet_layer_free(NULL);
    fnet_backend_free(ctx, x);
    fnet_backend_free(ctx, y);
    fnet_ctx_free(ctx);
}

static void test_dense_forward_matches_dense_matrix(void **state)
{
    check_layer_forward_matches_dense(make_dense, 4, true);
    check_layer_forward_matches_dense(make_dense_nobias, 3, false);
}

static void test_dense_gradients_match_finite_differences(void **state)
{
    check_layer_gradients(make_dense, 3);
    check_layer_gradients(make_dense_nobias, 2);
}

static void test_activation_gradients_match_finite_differences(void **state)
{
    check_layer_gradients(make_relu, 4);
    check_layer_gradients(make_tanh, 4);
    check_layer_gradients(make_sigmoid, 4);
    check_layer_gradients(make_dropout, 4); // evaluation mode: identity
}

static void test_cpu_matches_reference(void **state)
{
    check_layer_cpu_matches_reference(make_dense, 33, 1e-5);
    check_layer_cpu_matches_reference(make_dense_nobias, 5, 1e-5);
    check_layer_cpu_matches_reference(make_relu, 7, 0.0);
    check_layer_cpu_matches_reference(make_tanh, 7, 1e-6);
    check_layer_cpu_matches_reference(make_sigmoid, 7, 1e-6);
    check_layer_cpu_matches_reference(make_dropout, 7, 0.0);
}

static void test_layers_survive_out_of_memory(void **state)
{
    check_layer_out_of_memory(make_dense, 8);
    check_layer_out_of_memory(make_relu, 8);
    check_layer_out_of_memory(make_dropout, 8);
}

// y (B, n_out, host) = the layer's forward pass of x (B, n_in, host), through backend memory
static void forward_on_host(fnet_ctx *ctx, fnet_layer *l, const float *x, int64_t B, float *y)
{
    int64_t n_in = fnet_layer_n_in(l), n_out = fnet_layer_n_out(l);
    float *xd = fnet_test_upload(ctx, x, B * n_in), *yd = fnet_test_upload(ctx, NULL, B * n_out);
    fnet_assert_ok(ctx, fnet_layer_forward(l, xd, B, yd));
    fnet_assert_ok(ctx, fnet_backend_download(ctx, y, yd, sizeof(float) * (size_t)(B * n_out)));
    fnet_backend_free(ctx, xd);
    fnet_backend_free(ctx, yd);
}

static void test_activation_values(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_REFERENCE);
    const float x[4] = {-2.0f, -0.5f, 0.0f, 3.0f};
    float y[4];
    fnet_layer *l;
    fnet_assert_ok(ctx, fnet_activation_create(ctx, FNET_LAYER_RELU, 4, &l));
    forward_on_host(ctx, l, x, 1, y);
    const float relu[4] = {0.0f, 0.0f, 0.0f, 3.0f};
    fnet_assert_allclose(y, relu, 4, 0.0, 0.0);
    fnet_layer_free(l);
    fnet_assert_ok(ctx, fnet_activation_create(ctx, FNET_LAYER_SIGMOID, 4, &l));
    forward_on_host(ctx, l, x, 1, y);
    const float sig[4] = {0.11920292f, 0.37754067f, 0.5f, 0.95257413f};
    fnet_assert_allclose(y, sig, 4, 1e-6, 0.0);
    // no overflow far out
    const float big[2] = {-100.0f, 100.0f};
    float yb[2];
    fnet_layer_free(l);
    fnet_assert_ok(ctx, fnet_activation_create(ctx, FNET_LAYER_SIGMOID, 2, &l));
    forward_on_host(ctx, l, big, 1, yb);
    assert_true(yb[0] >= 0.0f && yb[0] < 1e-40f && yb[1] == 1.0f);
    fnet_layer_free(l);
    fnet_assert_ok(ctx, fnet_activation_create(ctx, FNET_LAYER_TANH, 4, &l));
    forward_on_host(ctx, l, x, 1, y);
    const float th[4] = {-0.96402758f, -0.46211716f, 0.0f, 0.99505475f};
    fnet_assert_allclose(y, th, 4, 1e-6, 0.0);
    fnet_layer_free(l);
    fnet_ctx_free(ctx);
}

// The activation ops check the activation themselves (a layer never hands them an unknown one,
// so the op table is asked directly): an unknown one fails with its number and leaves the
// output as it was.
static void check_act_ops_reject_unknown_activation(fnet_ctx *ctx)
{
    const int64_t n = 6;
    const float x[6] = {-2.0f, -0.5f, 0.0f, 0.5f, 1.0f, 3.0f};
    const float sentinel[6] = {7.0f, 7.0f, 7.0f, 7.0f, 7.0f, 7.0f};
    float *xd = fnet_test_upload(ctx, x, n), *yd = fnet_test_upload(ctx, sentinel, n);
    assert_int_equal(ctx->be->act_forward(ctx, (enum fnet_act)7, n, xd, yd), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "unknown activation 7"));
    float *y = fnet_test_download(ctx, yd, n);
    assert_memory_equal(y, sentinel, sizeof(sentinel));
    free(y);
    // act_backward (y, dy, dx): dx keeps the sentinel
    fnet_ctx_clear_error(ctx);
    float *dyd = fnet_test_upload(ctx, x, n);
    assert_int_equal(ctx->be->act_backward(ctx, (enum fnet_act)7, n, xd, dyd, yd),
                     FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "unknown activation 7"));
    float *dx = fnet_test_download(ctx, yd, n);
    assert_memory_equal(dx, sentinel, sizeof(sentinel));
    free(dx);
    fnet_backend_free(ctx, xd);
    fnet_backend_free(ctx, yd);
    fnet_backend_free(ctx, dyd);
}

static void test_activation_ops_reject_unknown_activation(void **state)
{
    // the reference and the CPU backend check in different places (the CPU one before it splits
    // the work): both by default, the one FNET_TEST_BACKEND names when set
    const fnet_backend_kind kinds[2] = {FNET_BACKEND_REFERENCE, FNET_BACKEND_CPU};
    for (int k = 0; k < 2; k++) {
        fnet_ctx *ctx = fnet_test_ctx(kinds[k]);
        check_act_ops_reject_unknown_activation(ctx);
        fnet_ctx_free(ctx);
    }
}

static void test_dropout_masks_and_scales(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_REFERENCE);
    fnet_layer *l;
    const int64_t n = 1000, B = 20;
    fnet_assert_ok(ctx, fnet_dropout_create(ctx, n, 0.3f, &l));
    fnet_rng rng;
    fnet_rng_seed(&rng, 5);
    fnet_assert_ok(ctx, fnet_layer_init(l, FNET_INIT_GLOROT_UNIFORM, &rng));
    fnet_layer_set_training(l, true);
    float *x = malloc(sizeof(float) * (size_t)(n * B));
    assert_non_null(x);
    for (int64_t i = 0; i < n * B; i++)
        x[i] = 1.0f;
    float *xd = fnet_test_upload(ctx, x, n * B), *yd = fnet_test_upload(ctx, NULL, n * B);
    float *dxd = fnet_test_upload(ctx, NULL, n * B);
    fnet_assert_ok(ctx, fnet_layer_forward(l, xd, B, yd));
    float *y = fnet_test_download(ctx, yd, n * B);
    int64_t zeros = 0;
    for (int64_t i = 0; i < n * B; i++) {
        if (y[i] == 0.0f)
            zeros++;
        else
            fnet_assert_close(y[i], 1.0 / 0.7, 1e-6, 0.0);
    }
    // 20,000 Bernoulli(0.3) draws: mean 6000, sd 65
    assert_true(zeros > 5700 && zeros < 6300);
    // backward uses the same mask
    fnet_assert_ok(ctx, fnet_layer_backward(l, xd, yd, xd, B, dxd));
    float *dx = fnet_test_download(ctx, dxd, n * B);
    fnet_assert_allclose(dx, y, n * B, 0.0, 0.0);
    // evaluation mode is the identity
    fnet_layer_set_training(l, false);
    fnet_assert_ok(ctx, fnet_layer_forward(l, xd, B, yd));
    free(y);
    y = fnet_test_download(ctx, yd, n * B);
    fnet_assert_allclose(y, x, n * B, 0.0, 0.0);
    free(x), free(y), free(dx);
    fnet_backend_free(ctx, xd);
    fnet_backend_free(ctx, yd);
    fnet_backend_free(ctx, dxd);
    fnet_layer_free(l);
    fnet_ctx_free(ctx);
}

static void test_dense_backward_accumulates(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    fnet_layer *l;
    fnet_assert_ok(ctx, make_dense(ctx, 3, &l));
    float x[14], dy[10];
    fnet_test_fill_uniform(x, 14, -1, 1, 1);
    fnet_test_fill_uniform(dy, 10, -1, 1, 2);
    float *xd = fnet_test_upload(ctx, x, 14), *dyd = fnet_test_upload(ctx, dy, 10);
    float *yd = fnet_test_upload(ctx, NULL, 10);
    fnet_assert_ok(ctx, fnet_layer_forward(l, xd, 2, yd));
    fnet_assert_ok(ctx, fnet_layer_zero_grads(l));
    fnet_assert_ok(ctx, fnet_layer_backward(l, xd, yd, dyd, 2, NULL));
    float once[40], twice[40];
    fnet_assert_ok(ctx, fnet_layer_get_grads(l, once));
    fnet_assert_ok(ctx, fnet_layer_backward(l, xd, yd, dyd, 2, NULL));
    for (int i = 0; i < 40; i++)
        once[i] *= 2.0f;
    fnet_assert_ok(ctx, fnet_layer_get_grads(l, twice));
    fnet_assert_allclose(twice, once, 40, 1e-6, 1e-7);
    assert_int_equal(fnet_layer_num_params(l), 40);
    fnet_assert_close(fnet_layer_flops(l, 10), 2.0 * 10 * 7 * 5, 0.0, 0.0);
    fnet_backend_free(ctx, xd);
    fnet_backend_free(ctx, dyd);
    fnet_backend_free(ctx, yd);
    fnet_layer_free(l);
    fnet_ctx_free(ctx);
}

static void test_initializers_have_their_variance(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_REFERENCE);
    const int64_t n_in = 300, n_out = 200;
    const fnet_init kinds[5] = {FNET_INIT_GLOROT_UNIFORM, FNET_INIT_GLOROT_NORMAL, FNET_INIT_HE,
                                FNET_INIT_NORMAL, FNET_INIT_UNIFORM};
    const double var[5] = {2.0 / 500, 2.0 / 500, 2.0 / 300, 1e-4, 0.05 * 0.05 / 3};
    for (int k = 0; k < 5; k++) {
        fnet_layer *l;
        fnet_assert_ok(ctx, fnet_dense_create(ctx, n_in, n_out, true, &l));
        fnet_rng rng;
        fnet_rng_seed(&rng, 9);
        fnet_assert_ok(ctx, fnet_layer_init(l, kinds[k], &rng));
        float *w = fnet_test_layer_params(l);
        double s = 0.0, s2 = 0.0;
        for (int64_t i = 0; i < n_in * n_out; i++) {
            s += w[i];
            s2 += (double)w[i] * w[i];
        }
        double mean = s / (double)(n_in * n_out), v = s2 / (double)(n_in * n_out) - mean * mean;
        fnet_assert_close(v, var[k], 0.03, 0.0);
        assert_true(fabs(mean) < 0.02 * sqrt(var[k]) * 10);
        for (int64_t i = 0; i < n_out; i++)
            assert_true(w[n_in * n_out + i] == 0.0f);
        free(w);
        fnet_layer_free(l);
    }
    fnet_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dense_rejects_bad_arguments),
        cmocka_unit_test(test_dense_forward_matches_dense_matrix),
        cmocka_unit_test(test_dense_gradients_match_finite_differences),
        cmocka_unit_test(test_activation_gradients_match_finite_differences),
        cmocka_unit_test(test_cpu_matches_reference),
        cmocka_unit_test(test_layers_survive_out_of_memory),
        cmocka_unit_test(test_activation_values),
        cmocka_unit_test(test_activation_ops_reject_unknown_activation),
        cmocka_unit_test(test_dropout_masks_and_scales),
        cmocka_unit_test(test_dense_backward_accumulates),
        cmocka_unit_test(test_initializers_have_their_variance),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
