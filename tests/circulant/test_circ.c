/* The block-circulant layer (src/circulant/circ.c): the per-kind checks (forward against the
 * matrix assembled from its blocks, finite differences, backend against the reference,
 * out-of-memory injection) for blocks of 1, 3, 4, 5 and 48 (not powers of two), the tensor and
 * spec, checkpoints, bad input, and a falling loss. On the backend FNET_TEST_BACKEND names. */
#include "layer_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static fnet_status make(fnet_ctx *ctx, uint64_t seed, int64_t n_in, int64_t n_out, int64_t b,
                        bool bias, fnet_layer **l)
{
    fnet_circ_params p = fnet_circ_params_default();
    p.block = b;
    p.bias = bias;
    fnet_status st = fnet_circ_create(ctx, n_in, n_out, &p, l);
    if (st != FNET_OK)
        return st;
    return fnet_test_init_layer(*l, seed, bias);
}

// 12 -> 8, block 4 (3 x 2 blocks), bias
static fnet_status make_4(fnet_ctx *ctx, uint64_t seed, fnet_layer **l)
{
    return make(ctx, seed, 12, 8, 4, true, l);
}

// 15 -> 10, block 5 (odd), no bias
static fnet_status make_5(fnet_ctx *ctx, uint64_t seed, fnet_layer **l)
{
    return make(ctx, seed, 15, 10, 5, false, l);
}

// 9 -> 6, block 3
static fnet_status make_3(fnet_ctx *ctx, uint64_t seed, fnet_layer **l)
{
    return make(ctx, seed, 9, 6, 3, true, l);
}

// block 1: a dense layer in disguise
static fnet_status make_1(fnet_ctx *ctx, uint64_t seed, fnet_layer **l)
{
    return make(ctx, seed, 3, 4, 1, true, l);
}

// 96 -> 48, block 48: one row of two blocks of a size that is not a power of two
static fnet_status make_48(fnet_ctx *ctx, uint64_t seed, fnet_layer **l)
{
    return make(ctx, seed, 96, 48, 48, true, l);
}

static void test_circ_forward_matches_assembled_blocks(void **state)
{
    check_layer_forward_matches_dense(make_4, 3, true);
    check_layer_forward_matches_dense(make_5, 2, false);
    check_layer_forward_matches_dense(make_3, 4, true);
    check_layer_forward_matches_dense(make_1, 2, true);
    check_layer_forward_matches_dense(make_48, 5, true);
}

static void test_circ_gradients_match_finite_differences(void **state)
{
    check_layer_gradients(make_4, 3);
    check_layer_gradients(make_5, 2);
    check_layer_gradients(make_3, 2);
    check_layer_gradients(make_1, 3);
    check_layer_gradients(make_48, 2);
}

static void test_circ_backend_matches_reference(void **state)
{
    check_layer_cpu_matches_reference(make_4, 37, 1e-5);
    check_layer_cpu_matches_reference(make_48, 70, 1e-5);
}

static void test_circ_survives_out_of_memory(void **state)
{
    check_layer_out_of_memory(make_4, 4);
    check_layer_out_of_memory(make_48, 3);
}

// fnet_layer_to_dense against the matrix this test assembles from c itself: block (p, q) row k,
// column m is c[p, q, (k − m) mod b]; and c's tensor is (P, Q, b)
static void test_circ_dense_matrix_is_its_circulant_blocks(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_REFERENCE);
    fnet_layer *l;
    fnet_assert_ok(ctx, make_4(ctx, 8, &l));
    fnet_tensor_info t;
    fnet_assert_ok(ctx, fnet_layer_tensor(l, 0, &t));
    assert_string_equal(t.name, "c");
    assert_int_equal(t.ndim, 3);
    assert_int_equal(t.shape[0], 2);
    assert_int_equal(t.shape[1], 3);
    assert_int_equal(t.shape[2], 4);
    fnet_assert_ok(ctx, fnet_layer_tensor(l, 1, &t));
    assert_string_equal(t.name, "bias");
    assert_int_equal(fnet_layer_num_params(l), 2 * 3 * 4 + 8);
    float *w = fnet_test_layer_params(l), W[8 * 12], want[8 * 12];
    fnet_assert_ok(ctx, fnet_layer_to_dense(l, W));
    for (int p = 0; p < 2; p++)
        for (int q = 0; q < 3; q++)
            for (int k = 0; k < 4; k++)
                for (int m = 0; m < 4; m++) {
                    int shift = ((k - m) % 4 + 4) % 4;
                    want[(p * 4 + k) * 12 + q * 4 + m] = w[(p * 3 + q) * 4 + shift];
                }
    fnet_assert_allclose(W, want, 8 * 12, 0.0, 0.0);
    free(w);
    fnet_layer_free(l);
    fnet_ctx_free(ctx);
}

static void test_circ_rejects_blocks_that_do_not_divide(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_REFERENCE);
    fnet_circ_params p = fnet_circ_params_default();
    fnet_layer *l = (fnet_layer *)&l;
    p.block = 5;
    assert_int_equal(fnet_circ_create(ctx, 12, 10, &p, &l), FNET_ERR_INVALID_ARG);
    assert_null(l);
    assert_non_null(strstr(fnet_ctx_last_message(ctx), "block 5 does not divide the input size 12"));
    assert_int_equal(fnet_circ_create(ctx, 10, 12, &p, &l), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_message(ctx), "block 5 does not divide the output size 12"));
    p.block = 0;
    assert_int_equal(fnet_circ_create(ctx, 10, 10, &p, &l), FNET_ERR_INVALID_ARG);
    p.block = (int64_t)1 << 25;
    assert_int_equal(fnet_circ_create(ctx, p.block, p.block, &p, &l), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_message(ctx), "block 33554432 is outside 1..2^24"));
    // 2^31·2^31/2 parameters: refused before anything is multiplied or allocated
    p.block = 2;
    assert_int_equal(fnet_circ_create(ctx, (int64_t)1 << 31, (int64_t)1 << 31, &p, &l),
                     FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_message(ctx), "more than 2^40 parameters"));
    assert_null(l);
    fnet_model *m = (fnet_model *)&m;
    // the output size is checked by the parser, the input size by the builder
    assert_int_equal(fnet_model_create_from_spec(ctx, "circ:64:block=48", 96, 1, &m),
                     FNET_ERR_FORMAT);
    assert_non_null(strstr(fnet_ctx_last_message(ctx), "block 48 does not divide the size 64"));
    assert_int_equal(fnet_model_create_from_spec(ctx, "dense:20,circ:64:block=16", 96, 1, &m),
                     FNET_ERR_INVALID_ARG);
    assert_null(m);
    assert_non_null(strstr(fnet_ctx_last_message(ctx),
                           "spec item 2 'circ:64:block=16': circ: block 16 does not divide the "
                           "input size 20"));
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, "circ:64:block=16:bias=0,relu,circ:8:block=8",
                                                    96, 1, &m));
    assert_string_equal(fnet_model_spec(m), "circ:64:block=16:bias=0,relu,circ:8:block=8");
    assert_int_equal(fnet_model_num_params(m), 6 * 64 + 8 * 8 + 8);
    fnet_model_free(m);
    fnet_ctx_free(ctx);
}

static void test_circ_checkpoint_round_trip(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    char path[600];
    const char *dir = fnet_test_tmpdir();
    snprintf(path, sizeof(path), "%s/circ.safetensors", dir);
    fnet_model *m, *back;
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, "circ:12:block=4,tanh,dense:3", 8, 3, &m));
    fnet_assert_ok(ctx, fnet_model_save(m, NULL, path));
    fnet_assert_ok(ctx, fnet_model_load(ctx, path, &back));
    assert_string_equal(fnet_model_spec(back), fnet_model_spec(m));
    int64_t n = fnet_model_num_params(m);
    float *w = fnet_test_model_params(m), *wb = fnet_test_model_params(back);
    assert_memory_equal(w, wb, sizeof(float) * (size_t)n);
    free(w), free(wb);
    fnet_model_free(back);
    fnet_model_free(m);
    unlink(path);
    rmdir(dir);
    fnet_ctx_free(ctx);
}

static void test_circ_training_lowers_the_loss(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    fnet_dataset *d = fnet_test_class_data(ctx, 300, 16, 4, 150, 50, 80, 4);
    fnet_model *m;
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, "circ:32:block=8,relu,dense:4", 16, 7, &m));
    double acc0, loss0, acc1, loss1;
    fnet_assert_ok(ctx, fnet_model_evaluate(m, d, &acc0, &loss0));
    fnet_optim_params op = fnet_optim_params_default(FNET_OPTIM_ADAM);
    op.lr = 1e-2f;
    fnet_train_params tp = fnet_train_params_default();
    tp.epochs = 5;
    fnet_assert_ok(ctx, fnet_train(m, &op, &tp, d, NULL, NULL, NULL, NULL));
    fnet_assert_ok(ctx, fnet_model_evaluate(m, d, &acc1, &loss1));
    print_message("circ: loss %.4f -> %.4f, accuracy %.3f -> %.3f\n", loss0, loss1, acc0, acc1);
    assert_true(loss1 < 0.5 * loss0);
    assert_true(acc1 > 0.9);
    fnet_model_free(m);
    fnet_dataset_free(d);
    fnet_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_circ_forward_matches_assembled_blocks),
        cmocka_unit_test(test_circ_gradients_match_finite_differences),
        cmocka_unit_test(test_circ_backend_matches_reference),
        cmocka_unit_test(test_circ_survives_out_of_memory),
        cmocka_unit_test(test_circ_dense_matrix_is_its_circulant_blocks),
        cmocka_unit_test(test_circ_rejects_blocks_that_do_not_divide),
        cmocka_unit_test(test_circ_checkpoint_round_trip),
        cmocka_unit_test(test_circ_training_lowers_the_loss),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
