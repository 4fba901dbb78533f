/* The tensor-ring layer (src/tn/tt_layer.c with r_0 = r_d = R, src/tn/tr_layer.c): the per-kind
 * checks (forward against the dense matrix of the ring, finite differences, backend against the
 * reference, out-of-memory injection) for the plain sweep, merged groupings and small chunks;
 * TR-SVD from a dense matrix; specs and checkpoints; bad input; a falling loss. On the backend
 * FNET_TEST_BACKEND names. */
#include "layer_check.h"
#include "core/backend.h"
#include "tn/tr.h"
#include "tn/tt_sweep.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static fnet_status make(fnet_ctx *ctx, uint64_t seed, int d, const int64_t *in, const int64_t *out,
                        int64_t rank, int64_t ring, bool bias, fnet_tt_plan plan, unsigned merge,
                        fnet_layer **l)
{
    fnet_tt_params p = fnet_tt_params_default();
    p.d = p.n_in_modes = p.n_out_modes = d;
    memcpy(p.in_modes, in, sizeof(int64_t) * (size_t)d);
    memcpy(p.out_modes, out, sizeof(int64_t) * (size_t)d);
    p.rank = rank;
    p.ring = ring;
    p.bias = bias;
    p.plan = plan;
    p.merge = merge;
    int64_t n_in = 1, n_out = 1;
    for (int k = 0; k < d; k++) {
        n_in *= in[k];
        n_out *= out[k];
    }
    fnet_status st = fnet_tr_create(ctx, n_in, n_out, &p, l);
    if (st != FNET_OK)
        return st;
    return fnet_test_init_layer(*l, seed, bias);
}

// 12 -> 6, three cores, ring 2, inner ranks 3 and 2 (bond 2 carries R·r_2 <= m_2·n_2 = 4),
// bias, the plain sweep
static fnet_status make_a(fnet_ctx *ctx, uint64_t seed, fnet_layer **l)
{
    const int64_t in[] = {2, 3, 2}, out[] = {3, 1, 2};
    return make(ctx, seed, 3, in, out, 3, 2, true, FNET_TT_PLAN_SWEEP, 0, l);
}

// 8 -> 9, two cores, ring 3, no bias (the first step feeds the last directly)
static fnet_status make_b(fnet_ctx *ctx, uint64_t seed, fnet_layer **l)
{
    const int64_t in[] = {2, 4}, out[] = {3, 3};
    return make(ctx, seed, 2, in, out, 2, 3, false, FNET_TT_PLAN_SWEEP, 0, l);
}

// 16 -> 16, four cores, ring 2, cores 1 and 2 merged (the sweep over a merged ring)
static fnet_status make_c(fnet_ctx *ctx, uint64_t seed, fnet_layer **l)
{
    const int64_t in[] = {2, 2, 2, 2}, out[] = {2, 2, 2, 2};
    return make(ctx, seed, 4, in, out, 2, 2, true, FNET_TT_PLAN_MERGE, 0x2, l);
}

// the same ring with the end cores merged: (01)(23), (01)23 and 01(23) (each group holds a core
// with a rank-R end bond)
static fnet_status make_merged(fnet_ctx *ctx, uint64_t seed, unsigned mask, fnet_layer **l)
{
    const int64_t in[] = {2, 2, 2, 2}, out[] = {2, 2, 2, 2};
    return make(ctx, seed, 4, in, out, 2, 2, true, FNET_TT_PLAN_MERGE, mask, l);
}

static fnet_status make_e(fnet_ctx *ctx, uint64_t seed, fnet_layer **l)
{
    return make_merged(ctx, seed, 0x5, l);
}

static fnet_status make_f(fnet_ctx *ctx, uint64_t seed, fnet_layer **l)
{
    return make_merged(ctx, seed, 0x1, l);
}

static fnet_status make_g(fnet_ctx *ctx, uint64_t seed, fnet_layer **l)
{
    return make_merged(ctx, seed, 0x4, l);
}

// fnet-compare's ring, 1024 -> 1024, planned by the cost model
static fnet_status make_big(fnet_ctx *ctx, uint64_t seed, fnet_layer **l)
{
    fnet_tt_params p = fnet_tt_params_default();
    p.rank = 8;
    p.ring = 2;
    fnet_status st = fnet_tr_create(ctx, 1024, 1024, &p, l);
    return st != FNET_OK ? st : fnet_test_init_layer(*l, seed, true);
}

// ring 1: a tensor train under the tr kind
static fnet_status make_d(fnet_ctx *ctx, uint64_t seed, fnet_layer **l)
{
    const int64_t in[] = {3, 2}, out[] = {2, 2};
    return make(ctx, seed, 2, in, out, 2, 1, true, FNET_TT_PLAN_AUTO, 0, l);
}

static void test_tr_forward_matches_the_dense_ring(void **state)
{
    check_layer_forward_matches_dense(make_a, 4, true);
    check_layer_forward_matches_dense(make_b, 3, false);
    check_layer_forward_matches_dense(make_c, 5, true);
    check_layer_forward_matches_dense(make_d, 2, true);
    check_layer_forward_matches_dense(make_e, 3, true);
    check_layer_forward_matches_dense(make_f, 2, true);
    check_layer_forward_matches_dense(make_g, 4, true);
    fnet_debug_tt_chunk(1); // every sample its own chunk: the states laid out per chunk
    check_layer_forward_matches_dense(make_a, 5, true);
    fnet_debug_tt_chunk(0);
}

static void test_tr_gradients_match_finite_differences(void **state)
{
    check_layer_gradients(make_a, 3);
    check_layer_gradients(make_b, 2);
    check_layer_gradients(make_c, 2);
    check_layer_gradients(make_e, 2);
    check_layer_gradients(make_f, 2);
    check_layer_gradients(make_g, 3);
    fnet_debug_tt_chunk(2);
    check_layer_gradients(make_a, 5);
    fnet_debug_tt_chunk(0);
}

static void test_tr_backend_matches_reference(void **state)
{
    check_layer_cpu_matches_reference(make_a, 37, 1e-5);
    check_layer_cpu_matches_reference(make_b, 64, 1e-5);
    check_layer_cpu_matches_reference(make_c, 9, 1e-5);
    check_layer_cpu_matches_reference(make_e, 21, 1e-5);
    fnet_debug_tt_chunk(2); // several chunks per worker
    check_layer_cpu_matches_reference(make_a, 37, 1e-5);
    check_layer_cpu_matches_reference(make_e, 30, 1e-5);
    fnet_debug_tt_chunk(0);
}

// The planner merges fnet-compare's ring into two pairs, (01)(23), at batch 256, as docs/tn.md
// counts it (525,312 multiply-adds per sample forward, the merge included), and at batch 1
// sweeps it; its output at batch 256 is x·Wᵀ + b of its dense matrix.
static void test_tr_planner_merges_the_compared_ring(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_REFERENCE);
    fnet_layer *l;
    fnet_assert_ok(ctx, make_big(ctx, 1, &l));
    fnet_tt_info info;
    fnet_assert_ok(ctx, fnet_tt_layer_info(l, 256, &info));
    assert_int_equal(info.merge, 0x5);
    assert_int_equal(info.merged_d, 2);
    fnet_assert_close(info.flops_forward / (2.0 * 256.0), 525312.0, 0.0, 0.5);
    assert_true(info.flops_reconstruct == 0.0);
    fnet_assert_ok(ctx, fnet_tt_layer_info(l, 1, &info));
    assert_int_equal(info.merge, 0);
    fnet_layer_free(l);
    fnet_ctx_free(ctx);
    check_layer_forward_matches_dense(make_big, 256, true);
}

static void test_tr_survives_out_of_memory(void **state)
{
    check_layer_out_of_memory(make_a, 4);
    check_layer_out_of_memory(make_c, 4);
    check_layer_out_of_memory(make_e, 4);
}

// The cores are core0..core{d-1} of shapes (r_k, m_k, n_k, r_{k+1}) with r_0 = r_d = R, the
// info reports the ring, and the parameter count is theirs plus the bias.
static void test_tr_tensors_and_info(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_REFERENCE);
    fnet_layer *l;
    fnet_assert_ok(ctx, make_a(ctx, 1, &l));
    assert_int_equal(fnet_layer_num_params(l), 2 * 3 * 2 * 3 + 3 * 1 * 3 * 2 + 2 * 2 * 2 * 2 + 6);
    assert_int_equal(fnet_layer_num_tensors(l), 4);
    fnet_tensor_info ti;
    fnet_assert_ok(ctx, fnet_layer_tensor(l, 0, &ti));
    assert_string_equal(ti.name, "core0");
    assert_int_equal(ti.ndim, 4);
    assert_int_equal(ti.shape[0], 2);
    assert_int_equal(ti.shape[3], 3);
    fnet_assert_ok(ctx, fnet_layer_tensor(l, 2, &ti));
    assert_string_equal(ti.name, "core2");
    assert_int_equal(ti.shape[0], 2);
    assert_int_equal(ti.shape[1], 2);
    assert_int_equal(ti.shape[3], 2);
    fnet_tt_info info;
    fnet_assert_ok(ctx, fnet_tt_layer_info(l, 8, &info));
    assert_true(info.ring);
    assert_int_equal(info.ranks[0], 2);
    assert_int_equal(info.ranks[3], 2);
    assert_int_equal(fnet_layer_kind_of(l), FNET_LAYER_TR);
    fnet_layer_free(l);
    fnet_ctx_free(ctx);
}

// W (M, N) of an exact ring: TR-SVD at its ranks gives a layer whose dense matrix is W again,
// where TR-SVD can recover a ring at its own ranks (d = 2, or r_1 = 1: the first SVD's split of
// its R·r_1 columns into (R, r_1) mixes the ring index into bond 1 otherwise; docs/tn.md); at
// TT rank 1 it is an approximation, never exact.
static void test_tr_from_dense_recovers_an_exact_ring(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    const struct fnet_tt_shape shapes[] = {
        {.d = 2, .m = {4, 6}, .n = {6, 4}, .r = {2, 3, 2}},
        {.d = 3, .m = {2, 3, 2}, .n = {2, 2, 3}, .r = {2, 1, 3, 2}},
    };
    for (int c = 0; c < 2; c++) {
        const struct fnet_tt_shape *s = &shapes[c];
        int64_t M = fnet_tt_rows(s), N = fnet_tt_cols(s), np = fnet_tt_num_params(s);
        float *cores = malloc(sizeof(float) * (size_t)np);
        float *W = malloc(sizeof(float) * (size_t)(M * N));
        float *back = malloc(sizeof(float) * (size_t)(M * N));
        assert_true(cores && W && back);
        fnet_test_fill_uniform(cores, np, -1.0f, 1.0f, 11);
        fnet_assert_ok(ctx, fnet_tr_full(ctx, s, cores, W));
        fnet_tt_params p = fnet_tt_params_default();
        p.d = p.n_in_modes = p.n_out_modes = s->d;
        memcpy(p.in_modes, s->n, sizeof(int64_t) * (size_t)s->d);
        memcpy(p.out_modes, s->m, sizeof(int64_t) * (size_t)s->d);
        p.n_ranks = s->d - 1;
        memcpy(p.ranks, s->r + 1, sizeof(int64_t) * (size_t)(s->d - 1));
        p.ring = s->r[0];
        fnet_layer *l;
        fnet_assert_ok(ctx, fnet_tr_from_dense(ctx, W, M, N, &p, &l));
        fnet_assert_ok(ctx, fnet_layer_to_dense(l, back));
        double err = 0.0, ref = 0.0;
        for (int64_t i = 0; i < M * N; i++) {
            err += ((double)back[i] - W[i]) * ((double)back[i] - W[i]);
            ref += (double)W[i] * W[i];
        }
        assert_true(sqrt(err / ref) < 1e-5);
        assert_int_equal(fnet_layer_num_params(l), np + M);
        float *w = fnet_test_layer_params(l);
        for (int64_t i = np; i < np + M; i++)
            assert_true(w[i] == 0.0f); // the bias starts at zero
        free(w);
        fnet_layer_free(l);
        p.n_ranks = 0;
        p.rank = 1;
        p.ring = 1;
        fnet_assert_ok(ctx, fnet_tr_from_dense(ctx, W, M, N, &p, &l));
        fnet_assert_ok(ctx, fnet_layer_to_dense(l, back));
        err = 0.0;
        for (int64_t i = 0; i < M * N; i++)
            err += ((double)back[i] - W[i]) * ((double)back[i] - W[i]);
        assert_true(sqrt(err / ref) > 1e-2);
        fnet_layer_free(l);
        free(cores), free(W), free(back);
    }
    fnet_ctx_free(ctx);
}

static void test_tr_rejects_bad_ranks_modes_and_specs(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_REFERENCE);
    fnet_tt_params p = fnet_tt_params_default();
    fnet_layer *l = (fnet_layer *)&l;
    p.ring = 0;
    p.rank = 0;
    assert_int_equal(fnet_tr_create(ctx, 16, 16, &p, &l), FNET_ERR_INVALID_ARG);
    assert_null(l);
    assert_non_null(strstr(fnet_ctx_last_message(ctx), "tr: ring rank must be >= 1, got 0"));
    // R·r_1 above what the first bond carries: 2x2 modes have m0·n0 = 4 at bond 1
    p.rank = 2;
    p.ring = 3;
    p.n_ranks = 1;
    p.ranks[0] = 2;
    p.d = p.n_in_modes = p.n_out_modes = 2;
    p.in_modes[0] = p.in_modes[1] = p.out_modes[0] = p.out_modes[1] = 2;
    assert_int_equal(fnet_tr_create(ctx, 4, 4, &p, &l), FNET_ERR_INVALID_ARG);
    assert_null(l);
    assert_non_null(strstr(fnet_ctx_last_message(ctx), "bond 1"));
    p = fnet_tt_params_default();
    p.plan = FNET_TT_PLAN_RECONSTRUCT;
    assert_int_equal(fnet_tr_create(ctx, 16, 16, &p, &l), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_message(ctx), "reconstruct plan"));
    p.plan = FNET_TT_PLAN_MERGE;
    p.d = 2;
    p.merge = 0x1; // both cores of two: the ring closed on one core
    assert_int_equal(fnet_tr_create(ctx, 16, 16, &p, &l), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_message(ctx), "closes the ring"));
    // without ring=, the ring rank is the largest of ranks=, in the API as in a spec
    p = fnet_tt_params_default();
    p.d = 3;
    p.n_ranks = 2;
    p.ranks[0] = 2;
    p.ranks[1] = 3;
    fnet_assert_ok(ctx, fnet_tr_create(ctx, 64, 64, &p, &l));
    fnet_tt_info info;
    fnet_assert_ok(ctx, fnet_tt_layer_info(l, 1, &info));
    assert_int_equal(info.ranks[0], 3);
    fnet_layer_free(l);
    p = fnet_tt_params_default();
    p.ring = 2; // a TT layer has no ring
    assert_int_equal(fnet_tt_create(ctx, 16, 16, &p, &l), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_message(ctx), "a TT layer has none"));
    p.ring = 0;
    p.n_in_modes = 2;
    p.in_modes[0] = 3;
    p.in_modes[1] = 5;
    assert_int_equal(fnet_tr_create(ctx, 16, 16, &p, &l), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_message(ctx), "tr: input modes multiply to 15"));
    fnet_model *m = (fnet_model *)&m;
    // a ring rank no order of the modes 2x2x2x2 can carry (every bond: at most 4, or 16)
    assert_int_equal(fnet_model_create_from_spec(ctx, "tr:16:rank=20", 16, 2, &m),
                     FNET_ERR_INVALID_ARG);
    assert_null(m);
    assert_non_null(strstr(fnet_ctx_last_message(ctx), "tr: ring rank 20 does not fit bond 1 of "
                                                       "the modes in=2x2x2x2 out=2x2x2x2"));
    // a large ring rank takes the order of modes where it fits: 1024's 4x4x8x8 can put
    // m0·n0 = 64 first
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, "tr:1024:rank=40", 1024, 2, &m));
    assert_non_null(strstr(fnet_model_spec(m), "ring=40:in=8x"));
    fnet_model_free(m);
    assert_int_equal(fnet_model_create_from_spec(ctx, "tr:16:rank=2:out=4x5", 16, 2, &m),
                     FNET_ERR_FORMAT);
    assert_null(m);
    assert_non_null(strstr(fnet_ctx_last_message(ctx), "out modes multiply to 20"));
    assert_int_equal(fnet_model_create_from_spec(ctx, "tr:16:rank=2:ranks=2x2", 16, 2, &m),
                     FNET_ERR_FORMAT);
    assert_non_null(strstr(fnet_ctx_last_message(ctx), "exclusive"));
    // the canonical spec names every rank, the ring and the modes, and rebuilds itself
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, "tr:16:rank=2:in=4x4:out=4x4,relu,"
                                                         "dense:2", 16, 2, &m));
    assert_string_equal(fnet_model_spec(m), "tr:16:ranks=2:ring=2:in=4x4:out=4x4,relu,dense:2");
    fnet_model *again;
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, fnet_model_spec(m), 16, 2, &again));
    assert_int_equal(fnet_model_num_params(again), fnet_model_num_params(m));
    assert_int_equal(fnet_model_num_params(m), 2 * 16 * 2 * 2 + 16 + 2 * 16 + 2);
    fnet_model_free(again);
    fnet_model_free(m);
    fnet_ctx_free(ctx);
}

// A checkpoint holds core0..core{d-1} and the bias and loads into the same model; a ring of
// another ring rank does not load into it and changes nothing.
static void test_tr_checkpoint_round_trip_and_mismatch(void **state)
{
    check_spec_checkpoint_round_trip("tr:16:rank=2:in=2x8:out=4x4,relu,dense:3",
                                     "tr:16:ranks=2:ring=1:in=2x8:out=4x4,relu,dense:3", 16);
}

static void test_tr_training_lowers_the_loss(void **state)
{
    check_spec_training_lowers_loss("tr:24:rank=3:in=4x4:out=6x4,relu,dense:4");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tr_forward_matches_the_dense_ring),
        cmocka_unit_test(test_tr_gradients_match_finite_differences),
        cmocka_unit_test(test_tr_backend_matches_reference),
        cmocka_unit_test(test_tr_survives_out_of_memory),
        cmocka_unit_test(test_tr_planner_merges_the_compared_ring),
        cmocka_unit_test(test_tr_tensors_and_info),
        cmocka_unit_test(test_tr_from_dense_recovers_an_exact_ring),
        cmocka_unit_test(test_tr_rejects_bad_ranks_modes_and_specs),
        cmocka_unit_test(test_tr_checkpoint_round_trip_and_mismatch),
        cmocka_unit_test(test_tr_training_lowers_the_loss),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
