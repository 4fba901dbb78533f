/* The CP layer (src/tn/cp_layer.c): the per-kind checks (forward against the sum of outer
 * products, finite differences through the Khatri–Rao products, backend against the reference,
 * out-of-memory injection) for one to three modes a side; CP-ALS from a dense matrix; specs and
 * checkpoints; bad input (a rank of 0 among them); a falling loss. On the backend
 * FNET_TEST_BACKEND names. */
#include "layer_check.h"
#include "core/backend.h"
#include "tn/cp.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static fnet_status make(fnet_ctx *ctx, uint64_t seed, int64_t n_in, int64_t n_out, int q,
                        const int64_t *out, int p, const int64_t *in, int64_t rank, bool bias,
                        fnet_layer **l)
{
    fnet_cp_params cp = fnet_cp_params_default();
    cp.n_out_modes = q;
    cp.n_in_modes = p;
    memcpy(cp.out_modes, out, sizeof(int64_t) * (size_t)q);
    memcpy(cp.in_modes, in, sizeof(int64_t) * (size_t)p);
    cp.rank = rank;
    cp.bias = bias;
    fnet_status st = fnet_cp_create(ctx, n_in, n_out, &cp, l);
    if (st != FNET_OK)
        return st;
    return fnet_test_init_layer(*l, seed, bias);
}

// 12 = 3x4 -> 6 = 2x3, rank 3, bias
static fnet_status make_a(fnet_ctx *ctx, uint64_t seed, fnet_layer **l)
{
    const int64_t out[] = {2, 3}, in[] = {3, 4};
    return make(ctx, seed, 12, 6, 2, out, 2, in, 3, true, l);
}

// 8 = 2x2x2 -> 5 (one mode: the side's factor is its Khatri–Rao product), rank 4, no bias
static fnet_status make_b(fnet_ctx *ctx, uint64_t seed, fnet_layer **l)
{
    const int64_t out[] = {5}, in[] = {2, 2, 2};
    return make(ctx, seed, 8, 5, 1, out, 3, in, 4, false, l);
}

// rank 1, one mode a side: an outer product
static fnet_status make_c(fnet_ctx *ctx, uint64_t seed, fnet_layer **l)
{
    const int64_t out[] = {4}, in[] = {6};
    return make(ctx, seed, 6, 4, 1, out, 1, in, 1, true, l);
}

static void test_cp_forward_matches_the_sum_of_outer_products(void **state)
{
    check_layer_forward_matches_dense(make_a, 4, true);
    check_layer_forward_matches_dense(make_b, 3, false);
    check_layer_forward_matches_dense(make_c, 1, true);
}

static void test_cp_gradients_match_finite_differences(void **state)
{
    check_layer_gradients(make_a, 3);
    check_layer_gradients(make_b, 2);
    check_layer_gradients(make_c, 4);
}

static void test_cp_backend_matches_reference(void **state)
{
    check_layer_cpu_matches_reference(make_a, 33, 1e-5);
    check_layer_cpu_matches_reference(make_b, 17, 1e-5);
}

static void test_cp_survives_out_of_memory(void **state)
{
    check_layer_out_of_memory(make_a, 4);
    check_layer_out_of_memory(make_b, 4);
}

// factor<k> (dims_k, R), the output modes first, then the bias; the default modes are two
// balanced ones a side; the init gives W the initializer's scale.
static void test_cp_tensors_modes_and_init(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_REFERENCE);
    fnet_layer *l;
    fnet_assert_ok(ctx, make_b(ctx, 5, &l));
    assert_int_equal(fnet_layer_num_params(l), 4 * (5 + 2 + 2 + 2));
    assert_int_equal(fnet_layer_num_tensors(l), 4);
    fnet_tensor_info ti;
    fnet_assert_ok(ctx, fnet_layer_tensor(l, 1, &ti));
    assert_string_equal(ti.name, "factor1");
    assert_int_equal(ti.shape[0], 2);
    assert_int_equal(ti.shape[1], 4);
    assert_int_equal(fnet_layer_kind_of(l), FNET_LAYER_CP);
    fnet_layer_free(l);
    fnet_model *m;
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, "cp:1024:rank=64", 784, 2, &m));
    assert_string_equal(fnet_model_spec(m), "cp:1024:rank=64:in=28x28:out=32x32");
    fnet_model_free(m);
    fnet_cp_params p = fnet_cp_params_default();
    p.rank = 64;
    fnet_assert_ok(ctx, fnet_cp_create(ctx, 784, 1024, &p, &l));
    fnet_rng rng;
    fnet_rng_seed(&rng, 3);
    fnet_assert_ok(ctx, fnet_layer_init(l, FNET_INIT_GLOROT_NORMAL, &rng));
    float *W = malloc(sizeof(float) * 784 * 1024);
    assert_non_null(W);
    fnet_assert_ok(ctx, fnet_layer_to_dense(l, W));
    double n2 = 0.0;
    for (int i = 0; i < 784 * 1024; i++)
        n2 += (double)W[i] * W[i];
    // E‖W‖² = M·N·V; the 64 terms' norms are products of four factor norms, so the sum varies
    // by a few tenths of its mean
    fnet_assert_close(n2, 784.0 * 1024.0 * 2.0 / 1808.0, 0.5, 0.0);
    free(W);
    fnet_layer_free(l);
    fnet_ctx_free(ctx);
}

// A W of exact CP rank 3 over the modes (4, 3 | 5, 2), made by a CP layer with random factors:
// CP-ALS from a random start gives a layer whose dense matrix is W to 1e-4 and says so in its
// fit; at rank 1 the fit is poor and reported as such.
static void test_cp_from_dense_recovers_an_exact_rank_and_reports_the_fit(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    const int64_t out[] = {4, 3}, in[] = {5, 2};
    fnet_layer *src;
    fnet_assert_ok(ctx, make(ctx, 9, 10, 12, 2, out, 2, in, 3, false, &src));
    int64_t n = fnet_layer_num_params(src);
    float *w = malloc(sizeof(float) * (size_t)n);
    assert_non_null(w);
    fnet_test_fill_uniform(w, n, -1.0f, 1.0f, 21);
    fnet_assert_ok(ctx, fnet_layer_set_params(src, w));
    float W[12 * 10], back[12 * 10];
    fnet_assert_ok(ctx, fnet_layer_to_dense(src, W));
    fnet_cp_params p = fnet_cp_params_default();
    p.n_out_modes = p.n_in_modes = 2;
    memcpy(p.out_modes, out, sizeof(out));
    memcpy(p.in_modes, in, sizeof(in));
    p.rank = 3;
    p.als_iters = 500;
    p.als_tol = 0.0;
    fnet_layer *l;
    double fit = -1.0;
    fnet_assert_ok(ctx, fnet_cp_from_dense(ctx, W, 12, 10, &p, &l, &fit));
    fnet_assert_ok(ctx, fnet_layer_to_dense(l, back));
    double err = 0.0, ref = 0.0;
    for (int i = 0; i < 120; i++) {
        err += ((double)back[i] - W[i]) * ((double)back[i] - W[i]);
        ref += (double)W[i] * W[i];
    }
    print_message("cp rank 3: fit %.7f, error %.3g\n", fit, sqrt(err / ref));
    assert_true(sqrt(err / ref) < 1e-4);
    fnet_assert_close(fit, 1.0 - sqrt(err / ref), 0.0, 1e-5);
    fnet_layer_free(l);
    p.rank = 1;
    fnet_assert_ok(ctx, fnet_cp_from_dense(ctx, W, 12, 10, &p, &l, &fit));
    assert_true(fit < 0.9);
    assert_true(fit > 0.0);
    fnet_layer_free(l);
    free(w);
    fnet_layer_free(src);
    fnet_ctx_free(ctx);
}

static void test_cp_rejects_bad_ranks_modes_and_specs(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_REFERENCE);
    fnet_cp_params p = fnet_cp_params_default();
    fnet_layer *l = (fnet_layer *)&l;
    p.rank = 0;
    assert_int_equal(fnet_cp_create(ctx, 16, 8, &p, &l), FNET_ERR_INVALID_ARG);
    assert_null(l);
    assert_non_null(strstr(fnet_ctx_last_message(ctx), "cp rank must be >= 1, got 0"));
    p.rank = 4;
    p.n_out_modes = 2;
    p.out_modes[0] = 2;
    p.out_modes[1] = 3;
    assert_int_equal(fnet_cp_create(ctx, 16, 8, &p, &l), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_message(ctx), "cp: out modes multiply to 6, not the "
                                                       "output size 8"));
    p.n_out_modes = 0;
    p.n_in_modes = 2;
    p.in_modes[0] = 0;
    p.in_modes[1] = 16;
    assert_int_equal(fnet_cp_create(ctx, 16, 8, &p, &l), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_message(ctx), "input mode 0 is 0"));
    assert_null(l);
    // modes (2, 4 | 4, 4): every such tensor has CP rank <= 2·4·4 = 32
    p.n_in_modes = 0;
    p.rank = 33;
    assert_int_equal(fnet_cp_create(ctx, 16, 8, &p, &l), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_message(ctx), "cp: rank 33 exceeds 32"));
    assert_null(l);
    p.rank = 32;
    fnet_assert_ok(ctx, fnet_cp_create(ctx, 16, 8, &p, &l));
    fnet_layer_free(l);
    fnet_model *m = (fnet_model *)&m;
    assert_int_equal(fnet_model_create_from_spec(ctx, "cp:8:rank=0", 16, 2, &m), FNET_ERR_FORMAT);
    assert_null(m);
    assert_non_null(strstr(fnet_ctx_last_message(ctx), "rank must be a positive integer, got '0'"));
    assert_int_equal(fnet_model_create_from_spec(ctx, "cp:8", 16, 2, &m), FNET_ERR_FORMAT);
    assert_non_null(strstr(fnet_ctx_last_message(ctx), "missing required option rank"));
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, "cp:8:rank=3:in=2x2x4,relu,dense:2", 16,
                                                    2, &m));
    assert_string_equal(fnet_model_spec(m), "cp:8:rank=3:in=2x2x4:out=2x4,relu,dense:2");
    assert_int_equal(fnet_model_num_params(m), 3 * (2 + 2 + 4 + 2 + 4) + 8 + 8 * 2 + 2);
    fnet_model_free(m);
    fnet_ctx_free(ctx);
}

static void test_cp_checkpoint_round_trip_and_mismatch(void **state)
{
    check_spec_checkpoint_round_trip("cp:12:rank=3,relu,dense:3", "cp:12:rank=2,relu,dense:3", 16);
}

static void test_cp_training_lowers_the_loss(void **state)
{
    check_spec_training_lowers_loss("cp:24:rank=8,relu,dense:4");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cp_forward_matches_the_sum_of_outer_products),
        cmocka_unit_test(test_cp_gradients_match_finite_differences),
        cmocka_unit_test(test_cp_backend_matches_reference),
        cmocka_unit_test(test_cp_survives_out_of_memory),
        cmocka_unit_test(test_cp_tensors_modes_and_init),
        cmocka_unit_test(test_cp_from_dense_recovers_an_exact_rank_and_reports_the_fit),
        cmocka_unit_test(test_cp_rejects_bad_ranks_modes_and_specs),
        cmocka_unit_test(test_cp_checkpoint_round_trip_and_mismatch),
        cmocka_unit_test(test_cp_training_lowers_the_loss),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
