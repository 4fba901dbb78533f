/* The TT layer: statuses on bad arguments, forward equal to its dense reconstruction, central
 * finite differences for every core and the input, CPU equal to reference, out-of-memory
 * injection, the planner's modes and costs, specs and checkpoints, and a falling loss. Run on the
 * backend FNET_TEST_BACKEND names (fnet_test_ctx), through uploads, downloads and host copies. */
#include "layer_check.h"
#include "tn/tt_plan.h"
#include "tn/tt_sweep.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static fnet_tt_plan plan_for_test = FNET_TT_PLAN_SWEEP;
static unsigned merge_for_test;

static fnet_status make_tt(fnet_ctx *ctx, uint64_t seed, int d, const int64_t *in,
                           const int64_t *out, const int64_t *ranks, bool bias, fnet_layer **l)
{
    fnet_tt_params p = fnet_tt_params_default();
    p.plan = plan_for_test;
    p.merge = merge_for_test;
    p.n_in_modes = p.n_out_modes = d;
    int64_t n_in = 1, n_out = 1;
    for (int k = 0; k < d; k++) {
        p.in_modes[k] = in[k];
        p.out_modes[k] = out[k];
        n_in *= in[k];
        n_out *= out[k];
    }
    p.n_ranks = d - 1;
    memcpy(p.ranks, ranks, sizeof(int64_t) * (size_t)(d - 1));
    p.bias = bias;
    fnet_status st = fnet_tt_create(ctx, n_in, n_out, &p, l);
    if (st != FNET_OK)
        return st;
    return fnet_test_init_layer(*l, seed, bias);
}

// d = 2, uneven modes
static fnet_status make_tt2(fnet_ctx *ctx, uint64_t seed, fnet_layer **l)
{
    return make_tt(ctx, seed, 2, (int64_t[]){3, 4}, (int64_t[]){2, 5}, (int64_t[]){3}, true, l);
}

// d = 3, different ranks per bond, no bias
static fnet_status make_tt3(fnet_ctx *ctx, uint64_t seed, fnet_layer **l)
{
    return make_tt(ctx, seed, 3, (int64_t[]){2, 3, 2}, (int64_t[]){3, 2, 2}, (int64_t[]){2, 4},
                   false, l);
}

// d = 4 with modes 1 in the mix
static fnet_status make_tt4(fnet_ctx *ctx, uint64_t seed, fnet_layer **l)
{
    return make_tt(ctx, seed, 4, (int64_t[]){2, 1, 3, 2}, (int64_t[]){2, 2, 1, 3},
                   (int64_t[]){2, 3, 2}, true, l);
}

static void test_tt_forward_matches_dense_matrix(void **state)
{
    check_layer_forward_matches_dense(make_tt2, 3, true);
    check_layer_forward_matches_dense(make_tt3, 4, false);
    check_layer_forward_matches_dense(make_tt4, 2, true);
}

static void test_tt_gradients_match_finite_differences(void **state)
{
    check_layer_gradients(make_tt2, 3);
    check_layer_gradients(make_tt3, 2);
    check_layer_gradients(make_tt4, 2);
}

static void test_tt_cpu_matches_reference(void **state)
{
    check_layer_cpu_matches_reference(make_tt2, 37, 1e-5);
    check_layer_cpu_matches_reference(make_tt3, 5, 1e-5);
    check_layer_cpu_matches_reference(make_tt4, 64, 1e-5);
}

static fnet_status make_tt_big(fnet_ctx *ctx, uint64_t seed, fnet_layer **l);

static void test_tt_survives_out_of_memory(void **state)
{
    check_layer_out_of_memory(make_tt3, 16);
    plan_for_test = FNET_TT_PLAN_RECONSTRUCT;
    check_layer_out_of_memory(make_tt3, 16);
    plan_for_test = FNET_TT_PLAN_SWEEP;
}

// Every grouping of merged cores computes the same layer: forward against the dense matrix,
// gradients against central differences, CPU against reference.
static void check_every_grouping_of_tt4(int64_t B_dense, int64_t B_grad, int64_t B_cpu)
{
    plan_for_test = FNET_TT_PLAN_MERGE;
    for (unsigned mask = 1; mask < 8; mask++) {
        merge_for_test = mask;
        check_layer_forward_matches_dense(make_tt4, B_dense, true);
        check_layer_gradients(make_tt4, B_grad);
        check_layer_cpu_matches_reference(make_tt4, B_cpu, 1e-5);
    }
}

static void test_tt_every_grouping_is_the_same_layer(void **state)
{
    check_every_grouping_of_tt4(3, 2, 17);
    for (unsigned mask = 1; mask < 4; mask++) {
        merge_for_test = mask;
        check_layer_gradients(make_tt3, 2);
    }
    plan_for_test = FNET_TT_PLAN_RECONSTRUCT;
    check_layer_forward_matches_dense(make_tt2, 4, true);
    check_layer_gradients(make_tt2, 2);
    plan_for_test = FNET_TT_PLAN_MERGE;
    merge_for_test = 5; // (core0 core1)(core2 core3) on the big layer
    check_layer_cpu_matches_reference(make_tt_big, 40, 1e-4);
    plan_for_test = FNET_TT_PLAN_SWEEP;
    merge_for_test = 0;
}

// A larger layer on the CPU backend (the blocked, threaded batched GEMMs) against the reference.
static fnet_status make_tt_big(fnet_ctx *ctx, uint64_t seed, fnet_layer **l)
{
    return make_tt(ctx, seed, 4, (int64_t[]){4, 4, 8, 8}, (int64_t[]){8, 8, 4, 4},
                   (int64_t[]){8, 8, 8}, true, l);
}

static void test_tt_large_layer_cpu_matches_reference(void **state)
{
    check_layer_cpu_matches_reference(make_tt_big, 33, 1e-4);
}

// Batches cut into chunks of 1, 2 or 3 samples, shared out between the workers (three on the
// CPU backend, run one after the other on the reference): the same layer as in one piece,
// for the plain sweep and for every grouping.
static void test_tt_chunks_and_workers_are_the_same_layer(void **state)
{
    for (int64_t chunk = 1; chunk <= 3; chunk++) {
        fnet_debug_tt_chunk(chunk);
        plan_for_test = FNET_TT_PLAN_SWEEP;
        check_layer_forward_matches_dense(make_tt3, 7, false);
        check_layer_gradients(make_tt2, 5);
        check_layer_cpu_matches_reference(make_tt4, 37, 1e-5);
        check_layer_cpu_matches_reference(make_tt_big, 11, 1e-4);
        check_every_grouping_of_tt4(5, 4, 9);
    }
    plan_for_test = FNET_TT_PLAN_SWEEP;
    merge_for_test = 0;
    check_layer_out_of_memory(make_tt3, 16); // with a workspace per worker
    fnet_debug_tt_chunk(0);
}

// The buffers of one forward and backward pass of a layer (B, n_in) -> (B, n_out) on ctx:
// x and dy uploaded from the host, y and dx written by the passes.
struct pass {
    fnet_ctx *ctx;
    float *x, *dy, *y, *dx; // backend
};

static struct pass pass_make(fnet_ctx *ctx, const fnet_layer *l, int64_t B, const float *x,
                             const float *dy)
{
    int64_t n_in = fnet_layer_n_in(l), n_out = fnet_layer_n_out(l);
    return (struct pass){.ctx = ctx,
                         .x = fnet_test_upload(ctx, x, B * n_in),
                         .dy = fnet_test_upload(ctx, dy, B * n_out),
                         .y = fnet_test_upload(ctx, NULL, B * n_out),
                         .dx = fnet_test_upload(ctx, NULL, B * n_in)};
}

static void pass_free(struct pass *p)
{
    fnet_backend_free(p->ctx, p->x);
    fnet_backend_free(p->ctx, p->dy);
    fnet_backend_free(p->ctx, p->y);
    fnet_backend_free(p->ctx, p->dx);
}

// The backward pass cuts the batch as the forward pass did, even when the ctx's thread count
// changed in between (a chunk's saved states are laid out for its own size), and a reserve in
// between keeps the saved states.
static void test_tt_threads_changed_between_passes(void **state)
{
    fnet_ctx *rc, *cc = fnet_test_ctx(FNET_BACKEND_CPU);
    fnet_assert_ok(NULL, fnet_ctx_create_reference(&rc)); // the oracle
    fnet_layer *lr, *lc; // small: the chunk size is the batch over the threads
    fnet_assert_ok(rc, make_tt4(rc, 3, &lr));
    fnet_assert_ok(cc, make_tt4(cc, 3, &lc));
    const int64_t B = 13, n_in = fnet_layer_n_in(lr), n_out = fnet_layer_n_out(lr);
    const int64_t np = fnet_layer_num_params(lr);
    float *x = malloc(sizeof(float) * (size_t)(B * n_in)), *dy = malloc(sizeof(float) * (size_t)(B * n_out));
    fnet_test_fill_uniform(x, B * n_in, -1.0f, 1.0f, 8);
    fnet_test_fill_uniform(dy, B * n_out, -1.0f, 1.0f, 9);
    struct pass pr = pass_make(rc, lr, B, x, dy), pc = pass_make(cc, lc, B, x, dy);
    fnet_assert_ok(rc, fnet_layer_forward(lr, pr.x, B, pr.y));
    fnet_assert_ok(rc, fnet_layer_backward(lr, pr.x, pr.y, pr.dy, B, pr.dx));
    float *dxr = fnet_test_download(rc, pr.dx, B * n_in), *gr = fnet_test_layer_grads(lr);
    for (int threads = 4; threads >= 1; threads--) { // the forward sizes its workers
        fnet_assert_ok(cc, fnet_ctx_set_threads(cc, threads));
        fnet_assert_ok(cc, fnet_layer_forward(lc, pc.x, B, pc.y));
        fnet_assert_ok(cc, fnet_ctx_set_threads(cc, 5 - threads));
        fnet_assert_ok(cc, fnet_layer_reserve(lc, B)); // must keep what the forward saved
        fnet_assert_ok(cc, fnet_layer_zero_grads(lc));
        // backward adds to the gradients
        fnet_assert_ok(cc, fnet_layer_backward(lc, pc.x, pc.y, pc.dy, B, pc.dx));
        float *dx = fnet_test_download(cc, pc.dx, B * n_in), *g = fnet_test_layer_grads(lc);
        fnet_assert_allclose(dx, dxr, B * n_in, 1e-5, 1e-5);
        fnet_assert_allclose(g, gr, np, 1e-5, 1e-5);
        free(dx), free(g);
    }
    free(x), free(dy), free(dxr), free(gr);
    pass_free(&pr);
    pass_free(&pc);
    fnet_layer_free(lr);
    fnet_layer_free(lc);
    fnet_ctx_free(rc);
    fnet_ctx_free(cc);
}

// Results depend on the thread count now, not on the one a layer first reserved for: a layer
// reserved on 1 thread and run on 3 gives the bits of one that was on 3 all along.
static void test_tt_follows_the_thread_count(void **state)
{
    fnet_ctx *a = fnet_test_ctx(FNET_BACKEND_CPU), *b = fnet_test_ctx(FNET_BACKEND_CPU);
    fnet_assert_ok(a, fnet_ctx_set_threads(a, 1));
    fnet_assert_ok(b, fnet_ctx_set_threads(b, 3));
    fnet_layer *la, *lb;
    fnet_assert_ok(a, make_tt_big(a, 3, &la));
    fnet_assert_ok(b, make_tt_big(b, 3, &lb));
    const int64_t B = 96, n_in = fnet_layer_n_in(la), n_out = fnet_layer_n_out(la);
    const int64_t np = fnet_layer_num_params(la);
    float *x = malloc(sizeof(float) * (size_t)(B * n_in)), *dy = malloc(sizeof(float) * (size_t)(B * n_out));
    fnet_test_fill_uniform(x, B * n_in, -1.0f, 1.0f, 10);
    fnet_test_fill_uniform(dy, B * n_out, -1.0f, 1.0f, 11);
    struct pass pa = pass_make(a, la, B, x, dy), pb = pass_make(b, lb, B, x, dy);
    fnet_assert_ok(a, fnet_layer_forward(la, pa.x, B, pa.y)); // reserves for 1 thread
    fnet_assert_ok(a, fnet_ctx_set_threads(a, 3));
    fnet_assert_ok(a, fnet_layer_zero_grads(la));
    fnet_assert_ok(a, fnet_layer_forward(la, pa.x, B, pa.y));
    fnet_assert_ok(a, fnet_layer_backward(la, pa.x, pa.y, pa.dy, B, pa.dx));
    fnet_assert_ok(b, fnet_layer_forward(lb, pb.x, B, pb.y));
    fnet_assert_ok(b, fnet_layer_backward(lb, pb.x, pb.y, pb.dy, B, pb.dx));
    float *ya = fnet_test_download(a, pa.y, B * n_out);
    float *yb = fnet_test_download(b, pb.y, B * n_out);
    float *dxa = fnet_test_download(a, pa.dx, B * n_in);
    float *dxb = fnet_test_download(b, pb.dx, B * n_in);
    float *ga = fnet_test_layer_grads(la), *gb = fnet_test_layer_grads(lb);
    assert_memory_equal(ya, yb, sizeof(float) * (size_t)(B * n_out));
    assert_memory_equal(dxa, dxb, sizeof(float) * (size_t)(B * n_in));
    assert_memory_equal(ga, gb, sizeof(float) * (size_t)np);
    free(x), free(dy), free(ya), free(yb), free(dxa), free(dxb), free(ga), free(gb);
    pass_free(&pa);
    pass_free(&pb);
    fnet_layer_free(la);
    fnet_layer_free(lb);
    fnet_ctx_free(a);
    fnet_ctx_free(b);
}

static void test_tt_rejects_bad_shapes(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_REFERENCE);
    fnet_layer *l = (fnet_layer *)&l;
    fnet_tt_params p = fnet_tt_params_default();
    // modes whose product is not the size
    p.n_in_modes = p.n_out_modes = 2;
    p.in_modes[0] = 4, p.in_modes[1] = 4, p.out_modes[0] = 2, p.out_modes[1] = 8;
    assert_int_equal(fnet_tt_create(ctx, 15, 16, &p, &l), FNET_ERR_INVALID_ARG);
    assert_null(l);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "input modes multiply to 16, not the input size 15"));
    // a rank that does not fit the modes: bond 1 of 2x2 -> 2x2 allows at most 4
    p.in_modes[0] = 2, p.in_modes[1] = 2, p.out_modes[0] = 2, p.out_modes[1] = 2;
    p.n_ranks = 1;
    p.ranks[0] = 5;
    assert_int_equal(fnet_tt_create(ctx, 4, 4, &p, &l), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "rank 5"));
    // wrong number of ranks, d over 8, a size that does not factor
    p.n_ranks = 2;
    assert_int_equal(fnet_tt_create(ctx, 4, 4, &p, &l), FNET_ERR_INVALID_ARG);
    fnet_tt_params q = fnet_tt_params_default();
    q.d = 9;
    assert_int_equal(fnet_tt_create(ctx, 1024, 1024, &q, &l), FNET_ERR_INVALID_ARG);
    q.d = 4;
    assert_int_equal(fnet_tt_create(ctx, 1024, 7 * 11, &q, &l), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "size 77 does not factor into 4 modes"));
    q.d = 0;
    assert_int_equal(fnet_tt_create(ctx, 1024, 13, &q, &l), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "13"));
    q.rank = 0;
    assert_int_equal(fnet_tt_create(ctx, 1024, 1024, &q, &l), FNET_ERR_INVALID_ARG);
    q = fnet_tt_params_default();
    q.plan = FNET_TT_PLAN_MERGE;
    q.merge = 8; // bond 3 of 4 cores does not exist
    assert_int_equal(fnet_tt_create(ctx, 1024, 1024, &q, &l), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "merge mask 0x8"));
    fnet_ctx_free(ctx);
}

static void test_tt_balanced_modes_and_planner(void **state)
{
    int64_t m[8];
    assert_true(fnet_tt_balanced_modes(784, 4, m));
    assert_true(m[0] == 4 && m[1] == 4 && m[2] == 7 && m[3] == 7);
    assert_true(fnet_tt_balanced_modes(1024, 4, m));
    assert_true(m[0] == 4 && m[1] == 4 && m[2] == 8 && m[3] == 8);
    assert_false(fnet_tt_balanced_modes(77, 4, m));
    assert_int_equal(fnet_tt_prime_count(25088), 11); // 2^9·7^2

    // the planner's order for 1024 -> 1024 at rank 8: inputs ascending, outputs descending, and
    // no permutation costs less
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    fnet_layer *l;
    fnet_tt_params p = fnet_tt_params_default();
    fnet_assert_ok(ctx, fnet_tt_create(ctx, 1024, 1024, &p, &l));
    fnet_tt_info info;
    fnet_assert_ok(ctx, fnet_tt_layer_info(l, 256, &info));
    assert_int_equal(info.d, 4);
    const int64_t want_in[4] = {4, 4, 8, 8}, want_out[4] = {8, 8, 4, 4};
    for (int k = 0; k < 4; k++) {
        assert_int_equal(info.in_modes[k], want_in[k]);
        assert_int_equal(info.out_modes[k], want_out[k]);
    }
    // the sweep's forward multiply-adds Σ_k r_k r_{k+1} Π_{l>=k} m_l Π_{l<=k} n_l per sample are
    // 327,680 (backward twice that); merging (core0 core1)(core2 core3) costs 262,144 per sample
    // plus 32,768·... to merge, and the planner takes it at batch 256
    fnet_assert_close(info.flops_sweep, 3 * 2.0 * 256 * 327680, 0.0, 0.0);
    assert_int_equal(info.merge, 5);
    assert_int_equal(info.merged_d, 2);
    assert_true(info.flops_forward < 2.0 * 256 * 270000);
    // at batch 1 nothing is worth merging
    fnet_assert_ok(ctx, fnet_tt_layer_info(l, 1, &info));
    assert_int_equal(info.merge, 0);
    assert_int_equal(fnet_layer_num_params(l), 4608 + 1024);
    // the fixed order in=4x8x8x4:out=4x8x8x4 has as many multiply-adds as the dense layer
    struct fnet_tt_shape s = {.d = 4, .m = {4, 8, 8, 4}, .n = {4, 8, 8, 4}, .r = {1, 8, 8, 8, 1}};
    double fwd;
    fnet_tt_cost_sweep(&s, 1, &fwd, NULL);
    fnet_assert_close(fwd, 2.0 * (32768 + 524288 + 524288 + 32768), 0.0, 0.0);
    fnet_layer_free(l);
    fnet_ctx_free(ctx);
}

static void test_tt_in_a_model_from_spec(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    fnet_model *m;
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, "dense:64,relu,tt:64:rank=4,relu,dense:3", 12, 1, &m));
    assert_int_equal(fnet_layer_kind_of(fnet_model_layer(m, 2)), FNET_LAYER_TT);
    // the model's spec names every mode and rank, so it rebuilds the same layout
    const char *spec = fnet_model_spec(m);
    assert_non_null(strstr(spec, "tt:64:ranks=4x4x4:in=2x2x4x4:out=4x4x2x2"));
    fnet_model *again;
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, spec, 12, 1, &again));
    assert_string_equal(fnet_model_spec(again), spec);
    assert_int_equal(fnet_model_num_params(again), fnet_model_num_params(m));
    fnet_tensor_info t;
    fnet_assert_ok(ctx, fnet_layer_tensor(fnet_model_layer(m, 2), 1, &t));
    assert_string_equal(t.name, "core1");
    assert_int_equal(t.ndim, 4);
    fnet_model_free(again);
    fnet_model_free(m);
    // a bad tt item names the item
    assert_int_equal(fnet_model_create_from_spec(ctx, "dense:64,tt:64:ranks=9x4x4:in=2x2x4x4:out=4x4x2x2", 12, 1, &m),
                     FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "spec item 2"));
    fnet_ctx_free(ctx);
}

// The reconstructed W has the initializer's variance.
static void test_tt_init_has_glorot_variance(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    fnet_layer *l;
    fnet_tt_params p = fnet_tt_params_default();
    fnet_assert_ok(ctx, fnet_tt_create(ctx, 256, 256, &p, &l));
    fnet_rng rng;
    fnet_rng_seed(&rng, 3);
    fnet_assert_ok(ctx, fnet_layer_init(l, FNET_INIT_GLOROT_UNIFORM, &rng));
    float *W = malloc(sizeof(float) * 256 * 256);
    fnet_assert_ok(ctx, fnet_layer_to_dense(l, W));
    double s2 = 0.0;
    for (int i = 0; i < 256 * 256; i++)
        s2 += (double)W[i] * W[i];
    // products of 4 cores are heavy-tailed; the mean square is within 20% of 2/(256+256)
    fnet_assert_close(s2 / (256.0 * 256.0), 2.0 / 512.0, 0.2, 0.0);
    free(W);
    fnet_layer_free(l);
    fnet_ctx_free(ctx);
}

// Orthogonalized cores: every core but the last is left-orthogonal, and W has the variance.
static void test_tt_orthogonal_init(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    fnet_layer *l;
    fnet_tt_params p = fnet_tt_params_default();
    p.orthogonal = true;
    fnet_assert_ok(ctx, fnet_tt_create(ctx, 256, 256, &p, &l));
    fnet_rng rng;
    fnet_rng_seed(&rng, 8);
    fnet_assert_ok(ctx, fnet_layer_init(l, FNET_INIT_GLOROT_NORMAL, &rng));
    fnet_tt_info info;
    fnet_assert_ok(ctx, fnet_tt_layer_info(l, 1, &info));
    float *w = fnet_test_layer_params(l);
    int64_t off = 0;
    for (int k = 0; k < info.d - 1; k++) {
        int64_t rows = info.ranks[k] * info.out_modes[k] * info.in_modes[k], cols = info.ranks[k + 1];
        for (int64_t a = 0; a < cols; a++)
            for (int64_t b = 0; b < cols; b++) {
                double dot = 0.0;
                for (int64_t i = 0; i < rows; i++)
                    dot += (double)w[off + i * cols + a] * w[off + i * cols + b];
                fnet_assert_close(dot, a == b ? 1.0 : 0.0, 0.0, 1e-5);
            }
        off += rows * cols;
    }
    double norm;
    fnet_assert_ok(ctx, fnet_tt_layer_norm(l, &norm));
    fnet_assert_close(norm * norm, 256.0 * 256.0 * 2.0 / 512.0, 1e-4, 0.0);
    free(w);
    fnet_layer_free(l);
    fnet_ctx_free(ctx);
}

static void test_tt_model_loss_falls(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    const int dim = 16;
    fnet_dataset *d = fnet_test_class_data(ctx, 400, dim, 4, 160, 30, 60, 5);
    fnet_model *m;
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, "tt:64:rank=4,relu,dense:4", dim, 2, &m));
    fnet_optim_params op = fnet_optim_params_default(FNET_OPTIM_ADAM);
    op.lr = 1e-2f;
    fnet_train_params tp = fnet_train_params_default();
    tp.batch = 16;
    tp.epochs = 1;
    double acc0, loss0, acc, loss;
    fnet_assert_ok(ctx, fnet_model_evaluate(m, d, &acc0, &loss0));
    tp.epochs = 6;
    fnet_assert_ok(ctx, fnet_train(m, &op, &tp, d, NULL, NULL, NULL, NULL));
    fnet_assert_ok(ctx, fnet_model_evaluate(m, d, &acc, &loss));
    if (!(loss < 0.3 * loss0 && acc > 0.9))
        fail_msg("loss %g -> %g, accuracy %g -> %g", loss0, loss, acc0, acc);
    fnet_model_free(m);
    fnet_dataset_free(d);
    fnet_ctx_free(ctx);
}

static double rel_diff(const float *a, const float *b, int64_t n)
{
    double d = 0.0, nb = 0.0;
    for (int64_t i = 0; i < n; i++) {
        d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        nb += (double)b[i] * b[i];
    }
    return sqrt(d / nb);
}

// TT-SVD of the dense matrix of a rank-(2,3,2) TT finds those ranks and the same matrix.
static void test_tt_from_dense_recovers_exact_ranks(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    fnet_layer *src, *back;
    fnet_assert_ok(ctx, make_tt(ctx, 4, 4, (int64_t[]){2, 3, 2, 2}, (int64_t[]){3, 2, 2, 2},
                                (int64_t[]){2, 3, 2}, false, &src));
    float W[24 * 24], W2[24 * 24];
    fnet_assert_ok(ctx, fnet_layer_to_dense(src, W));
    fnet_tt_params p = fnet_tt_params_default();
    p.n_in_modes = p.n_out_modes = 4;
    memcpy(p.in_modes, (int64_t[]){2, 3, 2, 2}, sizeof(int64_t) * 4);
    memcpy(p.out_modes, (int64_t[]){3, 2, 2, 2}, sizeof(int64_t) * 4);
    p.eps = 1e-5;
    p.bias = false;
    fnet_assert_ok(ctx, fnet_tt_from_dense(ctx, W, 24, 24, &p, &back));
    fnet_tt_info info;
    fnet_assert_ok(ctx, fnet_tt_layer_info(back, 1, &info));
    assert_true(info.ranks[1] == 2 && info.ranks[2] == 3 && info.ranks[3] == 2);
    fnet_assert_ok(ctx, fnet_layer_to_dense(back, W2));
    assert_true(rel_diff(W2, W, 24 * 24) < 1e-5);
    // norm and inner product in TT form against the dense ones
    double nrm, dot, dn = 0.0;
    for (int i = 0; i < 24 * 24; i++)
        dn += (double)W[i] * W[i];
    fnet_assert_ok(ctx, fnet_tt_layer_norm(src, &nrm));
    fnet_assert_close(nrm, sqrt(dn), 1e-5, 0.0);
    fnet_assert_ok(ctx, fnet_tt_layer_dot(src, back, &dot));
    fnet_assert_close(dot, dn, 1e-4, 0.0);
    // bad input
    p.eps = -1.0;
    fnet_layer *bad = NULL;
    assert_int_equal(fnet_tt_from_dense(ctx, W, 24, 24, &p, &bad), FNET_ERR_INVALID_ARG);
    assert_null(bad);
    fnet_layer_free(src);
    fnet_layer_free(back);
    fnet_ctx_free(ctx);
}

static void test_tt_layer_round_shrinks_ranks(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    fnet_layer *l;
    fnet_assert_ok(ctx, make_tt(ctx, 9, 4, (int64_t[]){2, 2, 2, 2}, (int64_t[]){2, 2, 2, 2},
                                (int64_t[]){4, 6, 4}, true, &l));
    float W[256], W2[256], b[16];
    fnet_assert_ok(ctx, fnet_layer_to_dense(l, W));
    float *w = fnet_test_layer_params(l);
    memcpy(b, w + fnet_layer_num_params(l) - 16, sizeof(b));
    free(w);
    // a loose eps keeps the error bound and never grows a rank
    fnet_assert_ok(ctx, fnet_tt_layer_round(l, 0.3, 0));
    fnet_tt_info info;
    fnet_assert_ok(ctx, fnet_tt_layer_info(l, 1, &info));
    assert_true(info.ranks[1] <= 4 && info.ranks[2] <= 6 && info.ranks[3] <= 4);
    fnet_assert_ok(ctx, fnet_layer_to_dense(l, W2));
    assert_true(rel_diff(W2, W, 256) <= 0.3 + 1e-5);
    // a rank cap
    fnet_assert_ok(ctx, fnet_tt_layer_round(l, 0.0, 2));
    fnet_assert_ok(ctx, fnet_tt_layer_info(l, 1, &info));
    assert_true(info.ranks[1] <= 2 && info.ranks[2] <= 2 && info.ranks[3] <= 2);
    int64_t n = fnet_layer_num_params(l);
    assert_true(n <= 2 * 4 * 2 + 2 * 4 * 2 * 2 + 16 + 16);
    w = fnet_test_layer_params(l);
    fnet_assert_allclose(w + n - 16, b, 16, 0.0, 0.0); // bias kept
    free(w);
    // the rounded layer still runs
    float x[32];
    fnet_test_fill_uniform(x, 32, -1, 1, 3);
    float *xd = fnet_test_upload(ctx, x, 32), *yd = fnet_test_upload(ctx, NULL, 32);
    fnet_assert_ok(ctx, fnet_layer_forward(l, xd, 2, yd));
    fnet_backend_free(ctx, xd);
    fnet_backend_free(ctx, yd);
    assert_int_equal(fnet_tt_layer_round(l, -1.0, 0), FNET_ERR_INVALID_ARG);
    fnet_layer_free(l);
    fnet_ctx_free(ctx);
}

// Rank-adaptive training's building block: rounding a model's TT layers rebuilds the flat
// vector and keeps every other layer's values.
static void test_model_tt_round_rebuilds_the_flat_vector(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    fnet_model *m;
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, "dense:16,relu,tt:16:rank=4,relu,dense:3", 8, 1, &m));
    int64_t n0 = fnet_model_num_params(m);
    float dense0[8 * 16 + 16], dense4[16 * 3 + 3];
    float *w0 = fnet_test_model_params(m);
    memcpy(dense0, w0, sizeof(dense0));
    memcpy(dense4, w0 + fnet_model_layer_offset(m, 4), sizeof(dense4));
    free(w0);
    bool changed = false;
    fnet_assert_ok(ctx, fnet_model_tt_round(m, 0.0, 2, &changed));
    assert_true(changed);
    int64_t n1 = fnet_model_num_params(m);
    assert_true(n1 < n0);
    float *w = fnet_test_model_params(m);
    fnet_assert_allclose(w, dense0, 8 * 16 + 16, 0.0, 0.0);
    fnet_assert_allclose(w + fnet_model_layer_offset(m, 4), dense4, 16 * 3 + 3, 0.0, 0.0);
    free(w);
    assert_non_null(strstr(fnet_model_spec(m), "tt:16:ranks=2x2x2"));
    float x[2 * 8];
    int32_t y[2] = {0, 2};
    double loss;
    fnet_test_fill_uniform(x, 16, -1, 1, 4);
    float *xd = fnet_test_upload(ctx, x, 16);
    fnet_assert_ok(ctx, fnet_model_loss_grad(m, xd, y, 2, &loss, NULL));
    fnet_backend_free(ctx, xd);
    assert_true(isfinite(loss));
    // rounding again at the same cap changes nothing
    fnet_assert_ok(ctx, fnet_model_tt_round(m, 0.0, 2, &changed));
    assert_false(changed);
    assert_int_equal(fnet_model_num_params(m), n1);
    fnet_model_free(m);
    fnet_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tt_forward_matches_dense_matrix),
        cmocka_unit_test(test_tt_gradients_match_finite_differences),
        cmocka_unit_test(test_tt_cpu_matches_reference),
        cmocka_unit_test(test_tt_survives_out_of_memory),
        cmocka_unit_test(test_tt_every_grouping_is_the_same_layer),
        cmocka_unit_test(test_tt_large_layer_cpu_matches_reference),
        cmocka_unit_test(test_tt_chunks_and_workers_are_the_same_layer),
        cmocka_unit_test(test_tt_threads_changed_between_passes),
        cmocka_unit_test(test_tt_follows_the_thread_count),
        cmocka_unit_test(test_tt_rejects_bad_shapes),
        cmocka_unit_test(test_tt_balanced_modes_and_planner),
        cmocka_unit_test(test_tt_in_a_model_from_spec),
        cmocka_unit_test(test_tt_init_has_glorot_variance),
        cmocka_unit_test(test_tt_model_loss_falls),
        cmocka_unit_test(test_tt_orthogonal_init),
        cmocka_unit_test(test_tt_from_dense_recovers_exact_ranks),
        cmocka_unit_test(test_tt_layer_round_shrinks_ranks),
        cmocka_unit_test(test_model_tt_round_rebuilds_the_flat_vector),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
