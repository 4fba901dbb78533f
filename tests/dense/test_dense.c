/* Dense, activation and dropout layers: statuses on bad arguments, forward equal to the dense
 * reconstruction, finite-difference gradients, CPU equal to reference, out-of-memory injection. */
#include "layer_check.h"

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
    // non-zero biases so the bias path is exercised
    float *b = fnet_layer_params(*out) + 35;
    for (int i = 0; i < 5; i++)
        b[i] = 0.1f * (float)(i + 1);
    return st;
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
    fnet_ctx *ctx;
    fnet_assert_ok(NULL, fnet_ctx_create_reference(&ctx));
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
    float x[6] = {0}, y[4] = {0};
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

static void test_activation_values(void **state)
{
    fnet_ctx *ctx;
    fnet_assert_ok(NULL, fnet_ctx_create_reference(&ctx));
    const float x[4] = {-2.0f, -0.5f, 0.0f, 3.0f};
    float y[4];
    fnet_layer *l;
    fnet_assert_ok(ctx, fnet_activation_create(ctx, FNET_LAYER_RELU, 4, &l));
    fnet_assert_ok(ctx, fnet_layer_forward(l, x, 1, y));
    const float relu[4] = {0.0f, 0.0f, 0.0f, 3.0f};
    fnet_assert_allclose(y, relu, 4, 0.0, 0.0);
    fnet_layer_free(l);
    fnet_assert_ok(ctx, fnet_activation_create(ctx, FNET_LAYER_SIGMOID, 4, &l));
    fnet_assert_ok(ctx, fnet_layer_forward(l, x, 1, y));
    const float sig[4] = {0.11920292f, 0.37754067f, 0.5f, 0.95257413f};
    fnet_assert_allclose(y, sig, 4, 1e-6, 0.0);
    // no overflow far out
    const float big[2] = {-100.0f, 100.0f};
    float yb[2];
    fnet_layer_free(l);
    fnet_assert_ok(ctx, fnet_activation_create(ctx, FNET_LAYER_SIGMOID, 2, &l));
    fnet_assert_ok(ctx, fnet_layer_forward(l, big, 1, yb));
    assert_true(yb[0] >= 0.0f && yb[0] < 1e-40f && yb[1] == 1.0f);
    fnet_layer_free(l);
    fnet_assert_ok(ctx, fnet_activation_create(ctx, FNET_LAYER_TANH, 4, &l));
    fnet_assert_ok(ctx, fnet_layer_forward(l, x, 1, y));
    const float th[4] = {-0.96402758f, -0.46211716f, 0.0f, 0.99505475f};
    fnet_assert_allclose(y, th, 4, 1e-6, 0.0);
    fnet_layer_free(l);
    fnet_ctx_free(ctx);
}

static void test_dropout_masks_and_scales(void **state)
{
    fnet_ctx *ctx;
    fnet_assert_ok(NULL, fnet_ctx_create_reference(&ctx));
    fnet_layer *l;
    const int64_t n = 1000, B = 20;
    fnet_assert_ok(ctx, fnet_dropout_create(ctx, n, 0.3f, &l));
    fnet_rng rng;
    fnet_rng_seed(&rng, 5);
    fnet_assert_ok(ctx, fnet_layer_init(l, FNET_INIT_GLOROT_UNIFORM, &rng));
    fnet_layer_set_training(l, true);
    float *x = malloc(sizeof(float) * (size_t)(n * B)), *y = malloc(sizeof(float) * (size_t)(n * B));
    float *dx = malloc(sizeof(float) * (size_t)(n * B));
    for (int64_t i = 0; i < n * B; i++)
        x[i] = 1.0f;
    fnet_assert_ok(ctx, fnet_layer_forward(l, x, B, y));
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
    fnet_assert_ok(ctx, fnet_layer_backward(l, x, y, x, B, dx));
    fnet_assert_allclose(dx, y, n * B, 0.0, 0.0);
    // evaluation mode is the identity
    fnet_layer_set_training(l, false);
    fnet_assert_ok(ctx, fnet_layer_forward(l, x, B, y));
    fnet_assert_allclose(y, x, n * B, 0.0, 0.0);
    free(x), free(y), free(dx);
    fnet_layer_free(l);
    fnet_ctx_free(ctx);
}

static void test_dense_backward_accumulates(void **state)
{
    fnet_ctx *ctx;
    fnet_assert_ok(NULL, fnet_ctx_create_cpu(&ctx));
    fnet_layer *l;
    fnet_assert_ok(ctx, make_dense(ctx, 3, &l));
    float x[14], y[10], dy[10];
    fnet_test_fill_uniform(x, 14, -1, 1, 1);
    fnet_test_fill_uniform(dy, 10, -1, 1, 2);
    fnet_assert_ok(ctx, fnet_layer_forward(l, x, 2, y));
    memset(fnet_layer_grads(l), 0, sizeof(float) * 40);
    fnet_assert_ok(ctx, fnet_layer_backward(l, x, y, dy, 2, NULL));
    float once[40];
    memcpy(once, fnet_layer_grads(l), sizeof(once));
    fnet_assert_ok(ctx, fnet_layer_backward(l, x, y, dy, 2, NULL));
    for (int i = 0; i < 40; i++)
        once[i] *= 2.0f;
    fnet_assert_allclose(fnet_layer_grads(l), once, 40, 1e-6, 1e-7);
    assert_int_equal(fnet_layer_num_params(l), 40);
    fnet_assert_close(fnet_layer_flops(l, 10), 2.0 * 10 * 7 * 5, 0.0, 0.0);
    fnet_layer_free(l);
    fnet_ctx_free(ctx);
}

static void test_initializers_have_their_variance(void **state)
{
    fnet_ctx *ctx;
    fnet_assert_ok(NULL, fnet_ctx_create_reference(&ctx));
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
        const float *w = fnet_layer_params(l);
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
        cmocka_unit_test(test_dropout_masks_and_scales),
        cmocka_unit_test(test_dense_backward_accumulates),
        cmocka_unit_test(test_initializers_have_their_variance),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
