/* The Tucker layer (src/tn/tucker_layer.c): the per-kind checks (forward against core ×_k U_k,
 * finite differences, backend against the reference, out-of-memory injection) for Tucker-2 of
 * the matrix and for tensorized modes; HOSVD from a dense matrix; specs and checkpoints; bad
 * input; a falling loss; a trained dense layer compressed and fine-tuned. On the backend
 * FNET_TEST_BACKEND names. */
#include "layer_check.h"
#include "core/backend.h"
#include "tn/tucker.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static fnet_status make(fnet_ctx *ctx, uint64_t seed, int64_t n_in, int64_t n_out, int q,
                        const int64_t *out, int p, const int64_t *in, const int64_t *ranks,
                        bool bias, fnet_layer **l)
{
    fnet_tucker_params tp = fnet_tucker_params_default();
    tp.n_out_modes = q;
    tp.n_in_modes = p;
    memcpy(tp.out_modes, out, sizeof(int64_t) * (size_t)q);
    memcpy(tp.in_modes, in, sizeof(int64_t) * (size_t)p);
    tp.n_ranks = q + p;
    memcpy(tp.ranks, ranks, sizeof(int64_t) * (size_t)(q + p));
    tp.bias = bias;
    fnet_status st = fnet_tucker_create(ctx, n_in, n_out, &tp, l);
    if (st != FNET_OK)
        return st;
    return fnet_test_init_layer(*l, seed, bias);
}

// Tucker-2 of a matrix: 10 -> 7, ranks (3, 4), bias
static fnet_status make_a(fnet_ctx *ctx, uint64_t seed, fnet_layer **l)
{
    const int64_t out[] = {7}, in[] = {10}, ranks[] = {3, 4};
    return make(ctx, seed, 10, 7, 1, out, 1, in, ranks, true, l);
}

// 12 = 3x4 -> 8 = 2x2x2, ranks (2, 1, 2 | 2, 3), no bias
static fnet_status make_b(fnet_ctx *ctx, uint64_t seed, fnet_layer **l)
{
    const int64_t out[] = {2, 2, 2}, in[] = {3, 4}, ranks[] = {2, 1, 2, 2, 3};
    return make(ctx, seed, 12, 8, 3, out, 2, in, ranks, false, l);
}

// full ranks: 6 = 2x3 -> 4 = 4, ranks (4 | 2, 3): any W of that size
static fnet_status make_c(fnet_ctx *ctx, uint64_t seed, fnet_layer **l)
{
    const int64_t out[] = {4}, in[] = {2, 3}, ranks[] = {4, 2, 3};
    return make(ctx, seed, 6, 4, 1, out, 2, in, ranks, true, l);
}

static void test_tucker_forward_matches_core_times_factors(void **state)
{
    check_layer_forward_matches_dense(make_a, 4, true);
    check_layer_forward_matches_dense(make_b, 3, false);
    check_layer_forward_matches_dense(make_c, 1, true);
}

static void test_tucker_gradients_match_finite_differences(void **state)
{
    check_layer_gradients(make_a, 3);
    check_layer_gradients(make_b, 2);
    check_layer_gradients(make_c, 4);
}

static void test_tucker_backend_matches_reference(void **state)
{
    check_layer_cpu_matches_reference(make_a, 33, 1e-5);
    check_layer_cpu_matches_reference(make_b, 40, 1e-5);
}

static void test_tucker_survives_out_of_memory(void **state)
{
    check_layer_out_of_memory(make_a, 4);
    check_layer_out_of_memory(make_b, 4);
}

// core (T, S), factor<k> (dims_k, ranks_k) with the output modes first, bias; the init's factors
// have orthonormal columns and its W the initializer's scale.
static void test_tucker_tensors_and_init(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_REFERENCE);
    fnet_layer *l;
    fnet_assert_ok(ctx, make_b(ctx, 5, &l));
    assert_int_equal(fnet_layer_num_params(l), 4 * 6 + (2 * 2 + 2 * 1 + 2 * 2) + (3 * 2 + 4 * 3));
    assert_int_equal(fnet_layer_num_tensors(l), 6);
    fnet_tensor_info ti;
    fnet_assert_ok(ctx, fnet_layer_tensor(l, 0, &ti));
    assert_string_equal(ti.name, "core");
    assert_int_equal(ti.shape[0], 4);
    assert_int_equal(ti.shape[1], 6);
    fnet_assert_ok(ctx, fnet_layer_tensor(l, 5, &ti));
    assert_string_equal(ti.name, "factor4");
    assert_int_equal(ti.shape[0], 4);
    assert_int_equal(ti.shape[1], 3);
    assert_int_equal(fnet_layer_kind_of(l), FNET_LAYER_TUCKER);
    fnet_layer_free(l);
    // Glorot-uniform init of 512 -> 256 at ranks (16, 16): factors orthonormal, ‖W‖_F² near
    // M·N·V = 512·256·2/768
    fnet_tucker_params tp = fnet_tucker_params_default();
    fnet_assert_ok(ctx, fnet_tucker_create(ctx, 512, 256, &tp, &l));
    fnet_rng rng;
    fnet_rng_seed(&rng, 3);
    fnet_assert_ok(ctx, fnet_layer_init(l, FNET_INIT_GLOROT_UNIFORM, &rng));
    float *w = fnet_test_layer_params(l);
    const float *U = w + 256, *V = w + 256 + 256 * 16;
    for (int a = 0; a < 16; a++)
        for (int b = 0; b < 16; b++) {
            double du = 0.0, dv = 0.0;
            for (int i = 0; i < 256; i++)
                du += (double)U[i * 16 + a] * U[i * 16 + b];
            for (int i = 0; i < 512; i++)
                dv += (double)V[i * 16 + a] * V[i * 16 + b];
            fnet_assert_close(du, a == b ? 1.0 : 0.0, 0.0, 1e-5);
            fnet_assert_close(dv, a == b ? 1.0 : 0.0, 0.0, 1e-5);
        }
    float *W = malloc(sizeof(float) * 512 * 256);
    assert_non_null(W);
    fnet_assert_ok(ctx, fnet_layer_to_dense(l, W));
    double n2 = 0.0;
    for (int i = 0; i < 512 * 256; i++)
        n2 += (double)W[i] * W[i];
    fnet_assert_close(n2, 512.0 * 256.0 * 2.0 / 768.0, 0.2, 0.0); // a sum of 256 squares
    free(W), free(w);
    fnet_layer_free(l);
    fnet_ctx_free(ctx);
}

// A W of exact multilinear ranks, made by a Tucker layer with a random core and random
// (not orthonormal) factors: the HOSVD gives a layer whose dense matrix is W to 1e-5.
static void test_tucker_from_dense_recovers_exact_ranks(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    const int64_t out[] = {4, 6}, in[] = {5, 6}, ranks[] = {2, 3, 3, 2};
    fnet_layer *src;
    fnet_assert_ok(ctx, make(ctx, 9, 30, 24, 2, out, 2, in, ranks, false, &src));
    int64_t n = fnet_layer_num_params(src);
    float *w = malloc(sizeof(float) * (size_t)n);
    assert_non_null(w);
    fnet_test_fill_uniform(w, n, -1.0f, 1.0f, 21);
    fnet_assert_ok(ctx, fnet_layer_set_params(src, w));
    float W[24 * 30], back[24 * 30];
    fnet_assert_ok(ctx, fnet_layer_to_dense(src, W));
    fnet_tucker_params tp = fnet_tucker_params_default();
    tp.n_out_modes = tp.n_in_modes = 2;
    memcpy(tp.out_modes, out, sizeof(out));
    memcpy(tp.in_modes, in, sizeof(in));
    tp.n_ranks = 4;
    memcpy(tp.ranks, ranks, sizeof(ranks));
    for (int hooi = 0; hooi <= 2; hooi += 2) {
        tp.hooi_iters = hooi;
        fnet_layer *l;
        double rel = -1.0;
        fnet_assert_ok(ctx, fnet_tucker_from_dense(ctx, W, 24, 30, &tp, &l, &rel));
        fnet_assert_ok(ctx, fnet_layer_to_dense(l, back));
        double err = 0.0, ref = 0.0;
        for (int i = 0; i < 24 * 30; i++) {
            err += ((double)back[i] - W[i]) * ((double)back[i] - W[i]);
            ref += (double)W[i] * W[i];
        }
        assert_true(sqrt(err / ref) < 1e-5);
        assert_true(rel >= 0.0 && rel < 1e-5);
        fnet_layer_free(l);
    }
    free(w);
    fnet_layer_free(src);
    fnet_ctx_free(ctx);
}

static void test_tucker_rejects_bad_ranks_modes_and_specs(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_REFERENCE);
    fnet_tucker_params p = fnet_tucker_params_default();
    fnet_layer *l = (fnet_layer *)&l;
    p.rank = 0;
    assert_int_equal(fnet_tucker_create(ctx, 16, 8, &p, &l), FNET_ERR_INVALID_ARG);
    assert_null(l);
    assert_non_null(strstr(fnet_ctx_last_message(ctx), "tucker: rank must be >= 1, got 0"));
    p.rank = 4;
    p.n_ranks = 2;
    p.ranks[0] = 9; // the output mode is 8
    p.ranks[1] = 2;
    assert_int_equal(fnet_tucker_create(ctx, 16, 8, &p, &l), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_message(ctx), "mode 0"));
    p.n_ranks = 3;
    assert_int_equal(fnet_tucker_create(ctx, 16, 8, &p, &l), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_message(ctx), "3 ranks given"));
    p.n_ranks = 0;
    p.n_in_modes = 2;
    p.in_modes[0] = 3;
    p.in_modes[1] = 5;
    assert_int_equal(fnet_tucker_create(ctx, 16, 8, &p, &l), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_message(ctx), "tucker: in modes multiply to 15, not the "
                                                       "input size 16"));
    assert_null(l);
    fnet_model *m = (fnet_model *)&m;
    assert_int_equal(fnet_model_create_from_spec(ctx, "tucker:8:ranks=2x2x2", 16, 2, &m),
                     FNET_ERR_FORMAT);
    assert_null(m);
    assert_non_null(strstr(fnet_ctx_last_message(ctx), "ranks has 3 values"));
    assert_int_equal(fnet_model_create_from_spec(ctx, "tucker:8:out=2x2", 16, 2, &m),
                     FNET_ERR_FORMAT);
    assert_non_null(strstr(fnet_ctx_last_message(ctx), "out modes multiply to 4"));
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, "tucker:8:ranks=3x5,relu,dense:2", 16, 2,
                                                    &m));
    assert_string_equal(fnet_model_spec(m), "tucker:8:ranks=3x5:in=16:out=8,relu,dense:2");
    assert_int_equal(fnet_model_num_params(m), 15 + 8 * 3 + 16 * 5 + 8 + 8 * 2 + 2);
    fnet_model_free(m);
    fnet_ctx_free(ctx);
}

static void test_tucker_checkpoint_round_trip_and_mismatch(void **state)
{
    check_spec_checkpoint_round_trip("tucker:12:ranks=2x3x4:in=4x4:out=12,relu,dense:3",
                                     "tucker:12:ranks=2x3x3:in=4x4:out=12,relu,dense:3", 16);
}

static void test_tucker_training_lowers_the_loss(void **state)
{
    check_spec_training_lowers_loss("tucker:24:ranks=2x4x3x3:out=4x6:in=4x4,relu,dense:4");
    check_spec_training_lowers_loss("tucker:24:ranks=6x8,relu,dense:4");
}

// A trained dense layer compressed by HOSVD at full ranks computes what it did; at small ranks,
// fine-tuning wins back what truncation lost.
static void test_compressing_a_trained_dense_layer_and_fine_tuning(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    fnet_dataset *d = fnet_test_class_data(ctx, 300, 16, 4, 150, 50, 80, 4);
    fnet_optim_params op = fnet_optim_params_default(FNET_OPTIM_ADAM);
    op.lr = 1e-2f;
    fnet_train_params tp = fnet_train_params_default();
    tp.epochs = 5;
    const int64_t ranks[2][2] = {{24, 16}, {2, 2}};
    for (int c = 0; c < 2; c++) {
        fnet_model *m;
        fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, "dense:24,relu,dense:4", 16, 7, &m));
        fnet_assert_ok(ctx, fnet_train(m, &op, &tp, d, NULL, NULL, NULL, NULL));
        double acc_dense, loss_dense;
        fnet_assert_ok(ctx, fnet_model_evaluate(m, d, &acc_dense, &loss_dense));
        fnet_layer *dense = fnet_model_layer(m, 0);
        float W[24 * 16], wd[24 * 16 + 24];
        fnet_assert_ok(ctx, fnet_layer_to_dense(dense, W));
        fnet_assert_ok(ctx, fnet_layer_get_params(dense, wd));
        fnet_tucker_params p = fnet_tucker_params_default();
        p.n_ranks = 2;
        memcpy(p.ranks, ranks[c], sizeof(ranks[c]));
        fnet_layer *l;
        fnet_assert_ok(ctx, fnet_tucker_from_dense(ctx, W, 24, 16, &p, &l, NULL));
        int64_t n = fnet_layer_num_params(l);
        float *w = malloc(sizeof(float) * (size_t)n);
        assert_non_null(w);
        fnet_assert_ok(ctx, fnet_layer_get_params(l, w));
        memcpy(w + n - 24, wd + 24 * 16, sizeof(float) * 24);
        fnet_assert_ok(ctx, fnet_layer_set_params(l, w));
        free(w);
        fnet_assert_ok(ctx, fnet_model_replace_layer(m, 0, l));
        double acc_cut, loss_cut, acc_tuned, loss_tuned;
        fnet_assert_ok(ctx, fnet_model_evaluate(m, d, &acc_cut, &loss_cut));
        fnet_assert_ok(ctx, fnet_train(m, &op, &tp, d, NULL, NULL, NULL, NULL));
        fnet_assert_ok(ctx, fnet_model_evaluate(m, d, &acc_tuned, &loss_tuned));
        print_message("ranks %lldx%lld: dense loss %.4f, truncated %.4f, fine-tuned %.4f\n",
                      (long long)ranks[c][0], (long long)ranks[c][1], loss_dense, loss_cut,
                      loss_tuned);
        if (c == 0) {
            fnet_assert_close(loss_cut, loss_dense, 1e-4, 1e-6);
        } else {
            assert_true(loss_cut > loss_dense * 1.05);
            assert_true(loss_tuned < loss_cut);
            assert_true(acc_tuned > 0.9);
        }
        fnet_model_free(m);
    }
    fnet_dataset_free(d);
    fnet_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tucker_forward_matches_core_times_factors),
        cmocka_unit_test(test_tucker_gradients_match_finite_differences),
        cmocka_unit_test(test_tucker_backend_matches_reference),
        cmocka_unit_test(test_tucker_survives_out_of_memory),
        cmocka_unit_test(test_tucker_tensors_and_init),
        cmocka_unit_test(test_tucker_from_dense_recovers_exact_ranks),
        cmocka_unit_test(test_tucker_rejects_bad_ranks_modes_and_specs),
        cmocka_unit_test(test_tucker_checkpoint_round_trip_and_mismatch),
        cmocka_unit_test(test_tucker_training_lowers_the_loss),
        cmocka_unit_test(test_compressing_a_trained_dense_layer_and_fine_tuning),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
