/* The low-rank layer W = U·V (src/lowrank/lowrank.c): the per-kind checks (forward against U·V,
 * finite differences, backend against the reference, out-of-memory injection), both inits, the
 * truncated SVD of a dense matrix (Eckart–Young), Frobenius decay against the dense formula,
 * specs and checkpoints, bad input, a falling loss, and a trained dense layer compressed in place
 * and fine-tuned. On the backend FNET_TEST_BACKEND names. */
#include "layer_check.h"
#include "linalg_check.h"
#include "core/backend.h"
#include "io/safetensors.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static fnet_status make(fnet_ctx *ctx, uint64_t seed, int64_t n_in, int64_t n_out, int64_t r,
                        bool bias, fnet_lowrank_init init, fnet_layer **l)
{
    fnet_lowrank_params p = fnet_lowrank_params_default();
    p.rank = r;
    p.bias = bias;
    p.init = init;
    fnet_status st = fnet_lowrank_create(ctx, n_in, n_out, &p, l);
    if (st != FNET_OK)
        return st;
    return fnet_test_init_layer(*l, seed, bias);
}

// 9 -> 7, rank 3, bias, spectral
static fnet_status make_a(fnet_ctx *ctx, uint64_t seed, fnet_layer **l)
{
    return make(ctx, seed, 9, 7, 3, true, FNET_LOWRANK_INIT_SPECTRAL, l);
}

// 5 -> 11, rank 5 (= min), no bias, random
static fnet_status make_b(fnet_ctx *ctx, uint64_t seed, fnet_layer **l)
{
    return make(ctx, seed, 5, 11, 5, false, FNET_LOWRANK_INIT_RANDOM, l);
}

// rank 1
static fnet_status make_c(fnet_ctx *ctx, uint64_t seed, fnet_layer **l)
{
    return make(ctx, seed, 6, 4, 1, true, FNET_LOWRANK_INIT_RANDOM, l);
}

static void test_lowrank_forward_matches_u_times_v(void **state)
{
    check_layer_forward_matches_dense(make_a, 4, true);
    check_layer_forward_matches_dense(make_b, 3, false);
    check_layer_forward_matches_dense(make_c, 1, true);
}

static void test_lowrank_gradients_match_finite_differences(void **state)
{
    check_layer_gradients(make_a, 3);
    check_layer_gradients(make_b, 2);
    check_layer_gradients(make_c, 4);
}

static void test_lowrank_backend_matches_reference(void **state)
{
    check_layer_cpu_matches_reference(make_a, 5, 1e-5);
    check_layer_cpu_matches_reference(make_b, 33, 1e-5);
}

static void test_lowrank_survives_out_of_memory(void **state)
{
    check_layer_out_of_memory(make_a, 4);
    check_layer_out_of_memory(make_b, 4);
}

// to_dense is U·V: check it against the two tensors, and the tensors' names and shapes
static void test_lowrank_tensors_are_u_v_and_bias(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_REFERENCE);
    fnet_layer *l;
    fnet_assert_ok(ctx, make_a(ctx, 3, &l));
    assert_int_equal(fnet_layer_num_params(l), 3 * (9 + 7) + 7);
    assert_int_equal(fnet_layer_num_tensors(l), 3);
    const char *names[3] = {"U", "V", "bias"};
    const int64_t shapes[3][2] = {{7, 3}, {3, 9}, {7, 0}};
    for (int i = 0; i < 3; i++) {
        fnet_tensor_info t;
        fnet_assert_ok(ctx, fnet_layer_tensor(l, i, &t));
        assert_string_equal(t.name, names[i]);
        assert_int_equal(t.shape[0], shapes[i][0]);
        if (i < 2)
            assert_int_equal(t.shape[1], shapes[i][1]);
        assert_int_equal(t.decay, i < 2);
    }
    float *w = fnet_test_layer_params(l), W[63], want[63];
    fnet_assert_ok(ctx, fnet_layer_to_dense(l, W));
    for (int o = 0; o < 7; o++)
        for (int i = 0; i < 9; i++) {
            double acc = 0.0;
            for (int k = 0; k < 3; k++)
                acc += (double)w[o * 3 + k] * (double)w[21 + k * 9 + i];
            want[o * 9 + i] = (float)acc;
        }
    fnet_assert_allclose(W, want, 63, 1e-6, 1e-7);
    int64_t r = 0;
    fnet_assert_ok(ctx, fnet_lowrank_layer_rank(l, &r));
    assert_int_equal(r, 3);
    free(w);
    fnet_layer_free(l);
    fnet_ctx_free(ctx);
}

// Spectral init is the best rank-r approximation of a dense Glorot draw: U·V has that draw's
// leading singular values, and UᵀU = V·Vᵀ (the balanced split). Random init has the dense
// variance on U·V's entries.
static void test_lowrank_inits(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_REFERENCE);
    enum { N_IN = 64, N_OUT = 48, R = 8 };
    fnet_layer *l;
    fnet_assert_ok(ctx, make(ctx, 5, N_IN, N_OUT, R, false, FNET_LOWRANK_INIT_SPECTRAL, &l));
    float *w = fnet_test_layer_params(l);
    float *U = w, *V = w + N_OUT * R;
    // the balanced split: UᵀU and V·Vᵀ are the same diagonal matrix
    for (int a = 0; a < R; a++)
        for (int b = 0; b < R; b++) {
            double uu = 0.0, vv = 0.0;
            for (int i = 0; i < N_OUT; i++)
                uu += (double)U[i * R + a] * (double)U[i * R + b];
            for (int j = 0; j < N_IN; j++)
                vv += (double)V[a * N_IN + j] * (double)V[b * N_IN + j];
            fnet_assert_close(uu, vv, 1e-4, 1e-5);
            if (a != b)
                fnet_assert_close(uu, 0.0, 0.0, 1e-4);
        }
    free(w);
    fnet_layer_free(l);

    // random: the variance of U·V's entries is Glorot's 2/(n_in + n_out), within sampling error
    fnet_assert_ok(ctx, make(ctx, 6, 200, 150, 16, false, FNET_LOWRANK_INIT_RANDOM, &l));
    float *W = malloc(sizeof(float) * 200 * 150);
    assert_non_null(W);
    fnet_assert_ok(ctx, fnet_layer_to_dense(l, W));
    double var = 0.0;
    for (int i = 0; i < 200 * 150; i++)
        var += (double)W[i] * (double)W[i];
    var /= 200.0 * 150.0;
    fnet_assert_close(var, 2.0 / 350.0, 0.1, 0.0);
    free(W);
    fnet_layer_free(l);
    fnet_ctx_free(ctx);
}

// A (m, n) = P·diag(s)·Q with orthonormal P (m, k), Q (k, n), k = min(m, n), from seed.
static float *with_spectrum(fnet_ctx *ctx, int64_t m, int64_t n, const double *s, uint64_t seed)
{
    int64_t k = m < n ? m : n;
    float *G1 = malloc(sizeof(float) * (size_t)(m * k)), *G2 = malloc(sizeof(float) * (size_t)(n * k));
    float *P = malloc(sizeof(float) * (size_t)(m * k)), *R1 = malloc(sizeof(float) * (size_t)(k * k));
    float *Q = malloc(sizeof(float) * (size_t)(n * k)), *R2 = malloc(sizeof(float) * (size_t)(k * k));
    float *A = calloc((size_t)(m * n), sizeof(float));
    assert_true(G1 && G2 && P && R1 && Q && R2 && A);
    fnet_test_fill_uniform(G1, m * k, -1.0f, 1.0f, seed);
    fnet_test_fill_uniform(G2, n * k, -1.0f, 1.0f, seed + 1);
    fnet_assert_ok(ctx, ctx->be->host_la->qr(ctx, m, k, G1, P, R1));
    fnet_assert_ok(ctx, ctx->be->host_la->qr(ctx, n, k, G2, Q, R2));
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double acc = 0.0;
            for (int64_t l = 0; l < k; l++)
                acc += (double)P[i * k + l] * s[l] * (double)Q[j * k + l];
            A[i * n + j] = (float)acc;
        }
    free(G1), free(G2), free(P), free(R1), free(Q), free(R2);
    return A;
}

// fnet_lowrank_from_dense reaches the Eckart–Young error Σ_{i>=r} σ_i² to 1e-4 relative, and the
// energy cut keeps the smallest rank holding the fraction asked for.
static void test_lowrank_from_dense_is_the_best_rank_r(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_REFERENCE);
    enum { M = 30, N = 20 };
    double s[N];
    for (int i = 0; i < N; i++)
        s[i] = pow(0.7, i);
    float *A = with_spectrum(ctx, M, N, s, 9);
    const int64_t ranks[] = {1, 4, 11, 20};
    for (int c = 0; c < 4; c++) {
        fnet_lowrank_params p = fnet_lowrank_params_default();
        p.rank = ranks[c];
        fnet_layer *l;
        fnet_assert_ok(ctx, fnet_lowrank_from_dense(ctx, A, M, N, &p, &l));
        float W[M * N];
        fnet_assert_ok(ctx, fnet_layer_to_dense(l, W));
        double err = 0.0, best = 0.0;
        for (int i = 0; i < M * N; i++)
            err += ((double)W[i] - A[i]) * ((double)W[i] - A[i]);
        for (int64_t i = ranks[c]; i < N; i++)
            best += s[i] * s[i];
        if (ranks[c] < N)
            fnet_assert_close(err, best, 1e-4, 0.0);
        else
            assert_true(err < 1e-9);
        float *w = fnet_test_layer_params(l);
        for (int i = 0; i < M; i++) // zero bias
            assert_true(w[fnet_layer_num_params(l) - M + i] == 0.0f);
        free(w);
        fnet_layer_free(l);
    }
    // energy: Σ_{i<r} s_i² / Σ s_i² >= 0.9 first holds at r = 4 for s_i = 0.7^i
    double total = 0.0, run = 0.0;
    for (int i = 0; i < N; i++)
        total += s[i] * s[i];
    int64_t want = 0;
    while (run < 0.9 * total)
        run += s[want] * s[want], want++;
    fnet_lowrank_params p = fnet_lowrank_params_default();
    p.rank = 15;
    p.energy = 0.9;
    fnet_layer *l;
    fnet_assert_ok(ctx, fnet_lowrank_from_dense(ctx, A, M, N, &p, &l));
    int64_t r = 0;
    fnet_assert_ok(ctx, fnet_lowrank_layer_rank(l, &r));
    assert_int_equal(r, want);
    fnet_layer_free(l);
    p.energy = 1.5;
    assert_int_equal(fnet_lowrank_from_dense(ctx, A, M, N, &p, &l), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_message(ctx), "energy 1.5"));
    p.energy = -0.1;
    assert_int_equal(fnet_lowrank_from_dense(ctx, A, M, N, &p, &l), FNET_ERR_INVALID_ARG);
    assert_null(l);
    free(A);
    fnet_ctx_free(ctx);
}

// The Frobenius decay of a model's low-rank layer: the value λ/2·‖U·V‖²_F and the gradient
// λ·W·Vᵀ (on U) and λ·Uᵀ·W (on V) of the dense formula, with W = U·V assembled on the host.
static void test_frobenius_decay_equals_the_dense_formula(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    enum { D = 6, H = 9, R = 3, B = 4 };
    const float lambda = 0.3f;
    fnet_model *m;
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, "lowrank:9:rank=3:bias=0,tanh,dense:3", D,
                                                    2, &m));
    float xh[B * D];
    int32_t labels[B] = {0, 1, 2, 1};
    fnet_test_fill_uniform(xh, B * D, -1.0f, 1.0f, 3);
    float *x = fnet_test_upload(ctx, xh, B * D);
    double plain, decayed;
    fnet_assert_ok(ctx, fnet_model_loss_grad(m, x, labels, B, &plain, NULL));
    float *g0 = fnet_test_model_grads(m);
    fnet_assert_ok(ctx, fnet_model_set_frobenius_decay(m, lambda));
    fnet_assert_ok(ctx, fnet_model_loss_grad(m, x, labels, B, &decayed, NULL));
    float *g1 = fnet_test_model_grads(m), *w = fnet_test_model_params(m);
    const float *U = w, *V = w + H * R;
    double W[H * D], fro = 0.0;
    for (int o = 0; o < H; o++)
        for (int i = 0; i < D; i++) {
            double acc = 0.0;
            for (int k = 0; k < R; k++)
                acc += (double)U[o * R + k] * (double)V[k * D + i];
            W[o * D + i] = acc;
            fro += acc * acc;
        }
    fnet_assert_close(decayed - plain, 0.5 * lambda * fro, 1e-5, 1e-9);
    for (int o = 0; o < H; o++)
        for (int k = 0; k < R; k++) { // dU = λ·W·Vᵀ
            double acc = 0.0;
            for (int i = 0; i < D; i++)
                acc += W[o * D + i] * (double)V[k * D + i];
            fnet_assert_close(g1[o * R + k] - g0[o * R + k], lambda * acc, 1e-4, 1e-6);
        }
    for (int k = 0; k < R; k++)
        for (int i = 0; i < D; i++) { // dV = λ·Uᵀ·W
            double acc = 0.0;
            for (int o = 0; o < H; o++)
                acc += (double)U[o * R + k] * W[o * D + i];
            fnet_assert_close(g1[H * R + k * D + i] - g0[H * R + k * D + i], lambda * acc, 1e-4,
                              1e-6);
        }
    // the dense layer after it is not decayed
    int64_t n = fnet_model_num_params(m);
    fnet_assert_allclose(g1 + R * (H + D), g0 + R * (H + D), n - R * (H + D), 0.0, 0.0);
    assert_int_equal(fnet_model_set_frobenius_decay(m, -1.0f), FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_model_set_frobenius_decay(m, NAN), FNET_ERR_INVALID_ARG);
    free(g0), free(g1), free(w);
    fnet_backend_free(ctx, x);
    fnet_model_free(m);
    fnet_ctx_free(ctx);
}

static void test_lowrank_rejects_bad_ranks_and_specs(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_REFERENCE);
    fnet_lowrank_params p = fnet_lowrank_params_default();
    fnet_layer *l = (fnet_layer *)&l;
    p.rank = 0;
    assert_int_equal(fnet_lowrank_create(ctx, 8, 6, &p, &l), FNET_ERR_INVALID_ARG);
    assert_null(l);
    p.rank = 7;
    assert_int_equal(fnet_lowrank_create(ctx, 8, 6, &p, &l), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_message(ctx), "rank 7 is outside 1..min(n_in, n_out) = 6"));
    p.rank = 2;
    p.init = (fnet_lowrank_init)9;
    assert_int_equal(fnet_lowrank_create(ctx, 8, 6, &p, &l), FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_lowrank_create(ctx, 0, 6, &p, &l), FNET_ERR_INVALID_ARG);
    // sizes whose parameter count would overflow are refused before anything is multiplied
    p.init = FNET_LOWRANK_INIT_SPECTRAL;
    p.rank = (int64_t)1 << 30;
    assert_int_equal(fnet_lowrank_create(ctx, (int64_t)1 << 31, (int64_t)1 << 31, &p, &l),
                     FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_message(ctx), "more than 2^40 parameters"));
    assert_null(l);
    fnet_model *m = (fnet_model *)&m;
    assert_int_equal(fnet_model_create_from_spec(ctx, "dense:16,lowrank:8:rank=9", 4, 1, &m),
                     FNET_ERR_INVALID_ARG);
    assert_null(m);
    assert_non_null(strstr(fnet_ctx_last_message(ctx), "spec item 2 'lowrank:8:rank=9': lowrank: "
                                                       "rank 9 is outside"));
    assert_int_equal(fnet_model_create_from_spec(ctx, "lowrank:8:rank=0", 4, 1, &m),
                     FNET_ERR_FORMAT);
    assert_int_equal(fnet_model_create_from_spec(ctx, "lowrank:8", 4, 1, &m), FNET_ERR_FORMAT);
    assert_non_null(strstr(fnet_ctx_last_message(ctx), "missing required option rank"));
    // the spec names the rank and the bias; it rebuilds itself
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, "lowrank:8:rank=3:bias=0,relu,"
                                                         "lowrank:5:rank=2", 4, 1, &m));
    assert_string_equal(fnet_model_spec(m), "lowrank:8:rank=3:bias=0,relu,lowrank:5:rank=2");
    assert_int_equal(fnet_model_num_params(m), 3 * (4 + 8) + 2 * (8 + 5) + 5);
    fnet_model_free(m);
    fnet_ctx_free(ctx);
}

// A checkpoint holds U, V and bias, and loads into the same layer; a file whose U and V do not
// chain (another rank) is refused, naming the tensor, and changes nothing.
static void test_lowrank_checkpoint_round_trip_and_mismatch(void **state)
{
    // a rank-3 file into the rank-2 model: U (8, 3) is not U (8, 2)
    check_spec_checkpoint_round_trip("lowrank:8:rank=2,relu,dense:3", "lowrank:8:rank=3,relu,dense:3",
                                     6);
}

// A file whose spec says rank 3 but whose U and V are of rank 2 (they chain with each other, not
// with the spec): refused, naming the tensor, and no model comes out.
static void test_lowrank_checkpoint_with_factors_of_another_rank_is_refused(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_REFERENCE);
    char path[600];
    const char *dir = fnet_test_tmpdir();
    snprintf(path, sizeof(path), "%s/bad.safetensors", dir);
    float data[64] = {0};
    const struct fnet_safetensors_tensor t[] = {
        {.name = "layers.0.U", .ndim = 2, .shape = {8, 2}, .data = data},
        {.name = "layers.0.V", .ndim = 2, .shape = {2, 6}, .data = data},
        {.name = "layers.0.bias", .ndim = 1, .shape = {8}, .data = data},
        {.name = "layers.2.weight", .ndim = 2, .shape = {3, 8}, .data = data},
        {.name = "layers.2.bias", .ndim = 1, .shape = {3}, .data = data},
    };
    const struct fnet_safetensors_meta meta[] = {
        {"format", "factornet"}, {"version", "1"}, {"spec", "lowrank:8:rank=3,relu,dense:3"},
        {"input", "6"}, {"classes", "3"},
    };
    fnet_assert_ok(ctx, fnet_safetensors_write(ctx, path, t, 5, meta, 5));
    fnet_model *m = (fnet_model *)&m;
    assert_int_equal(fnet_model_load(ctx, path, &m), FNET_ERR_FORMAT);
    assert_null(m);
    const char *msg = fnet_ctx_last_message(ctx);
    if (strstr(msg, "tensor 'layers.0.U': shape [8, 2] does not match the model's [8, 3]") == NULL)
        fail_msg("message: %s", msg);
    unlink(path);
    rmdir(dir);
    fnet_ctx_free(ctx);
}

static void test_lowrank_training_lowers_the_loss(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    fnet_dataset *d = fnet_test_class_data(ctx, 300, 16, 4, 150, 50, 80, 4);
    fnet_model *m;
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, "lowrank:24:rank=4,relu,dense:4",
                                                    16, 7, &m));
    fnet_assert_ok(ctx, fnet_model_set_frobenius_decay(m, 1e-4f));
    double acc0, loss0, acc1, loss1;
    fnet_assert_ok(ctx, fnet_model_evaluate(m, d, &acc0, &loss0));
    fnet_optim_params op = fnet_optim_params_default(FNET_OPTIM_ADAM);
    op.lr = 1e-2f;
    fnet_train_params tp = fnet_train_params_default();
    tp.epochs = 5;
    fnet_assert_ok(ctx, fnet_train(m, &op, &tp, d, NULL, NULL, NULL, NULL));
    fnet_assert_ok(ctx, fnet_model_evaluate(m, d, &acc1, &loss1));
    print_message("lowrank: loss %.4f -> %.4f, accuracy %.3f -> %.3f\n", loss0, loss1, acc0, acc1);
    assert_true(loss1 < 0.5 * loss0);
    assert_true(acc1 > 0.9);
    fnet_model_free(m);
    fnet_dataset_free(d);
    fnet_ctx_free(ctx);
}

// What a user does to compress a trained model: the truncated SVD of a trained dense layer, its
// bias carried over, put in the dense layer's place. At full rank the model computes what it
// did; at a lower rank fine-tuning wins back what truncation lost.
static void test_compressing_a_trained_dense_layer_and_fine_tuning(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    fnet_dataset *d = fnet_test_class_data(ctx, 300, 16, 4, 150, 50, 80, 4);
    fnet_optim_params op = fnet_optim_params_default(FNET_OPTIM_ADAM);
    op.lr = 1e-2f;
    fnet_train_params tp = fnet_train_params_default();
    tp.epochs = 5;
    const int64_t ranks[] = {16, 2};
    for (int c = 0; c < 2; c++) {
        fnet_model *m;
        fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, "dense:24,relu,dense:4", 16, 7, &m));
        fnet_assert_ok(ctx, fnet_train(m, &op, &tp, d, NULL, NULL, NULL, NULL));
        double acc_dense, loss_dense;
        fnet_assert_ok(ctx, fnet_model_evaluate(m, d, &acc_dense, &loss_dense));

        fnet_layer *dense = fnet_model_layer(m, 0);
        float W[24 * 16], wd[24 * 16 + 24];
        fnet_assert_ok(ctx, fnet_layer_to_dense(dense, W));
        fnet_assert_ok(ctx, fnet_layer_get_params(dense, wd)); // weight, then bias
        fnet_lowrank_params p = fnet_lowrank_params_default();
        p.rank = ranks[c];
        fnet_layer *l;
        fnet_assert_ok(ctx, fnet_lowrank_from_dense(ctx, W, 24, 16, &p, &l));
        int64_t n = fnet_layer_num_params(l); // U, V, then bias
        assert_int_equal(n, ranks[c] * (24 + 16) + 24);
        float *w = malloc(sizeof(float) * (size_t)n);
        assert_non_null(w);
        fnet_assert_ok(ctx, fnet_layer_get_params(l, w));
        memcpy(w + n - 24, wd + 24 * 16, sizeof(float) * 24);
        fnet_assert_ok(ctx, fnet_layer_set_params(l, w));
        free(w);
        fnet_assert_ok(ctx, fnet_model_replace_layer(m, 0, l));
        assert_string_equal(fnet_model_spec(m),
                            ranks[c] == 16 ? "lowrank:24:rank=16,relu,dense:4"
                                           : "lowrank:24:rank=2,relu,dense:4");

        double acc_cut, loss_cut, acc_tuned, loss_tuned;
        fnet_assert_ok(ctx, fnet_model_evaluate(m, d, &acc_cut, &loss_cut));
        fnet_assert_ok(ctx, fnet_train(m, &op, &tp, d, NULL, NULL, NULL, NULL));
        fnet_assert_ok(ctx, fnet_model_evaluate(m, d, &acc_tuned, &loss_tuned));
        print_message("rank %lld: dense loss %.4f, truncated %.4f, fine-tuned %.4f\n",
                      (long long)ranks[c], loss_dense, loss_cut, loss_tuned);
        if (ranks[c] == 16) {
            fnet_assert_close(loss_cut, loss_dense, 1e-4, 1e-6);
            assert_true(acc_cut == acc_dense);
        } else {
            assert_true(loss_cut > loss_dense * 1.05); // rank 2 of 16 loses something
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
        cmocka_unit_test(test_lowrank_forward_matches_u_times_v),
        cmocka_unit_test(test_lowrank_gradients_match_finite_differences),
        cmocka_unit_test(test_lowrank_backend_matches_reference),
        cmocka_unit_test(test_lowrank_survives_out_of_memory),
        cmocka_unit_test(test_lowrank_tensors_are_u_v_and_bias),
        cmocka_unit_test(test_lowrank_inits),
        cmocka_unit_test(test_lowrank_from_dense_is_the_best_rank_r),
        cmocka_unit_test(test_frobenius_decay_equals_the_dense_formula),
        cmocka_unit_test(test_lowrank_rejects_bad_ranks_and_specs),
        cmocka_unit_test(test_lowrank_checkpoint_round_trip_and_mismatch),
        cmocka_unit_test(test_lowrank_checkpoint_with_factors_of_another_rank_is_refused),
        cmocka_unit_test(test_lowrank_training_lowers_the_loss),
        cmocka_unit_test(test_compressing_a_trained_dense_layer_and_fine_tuning),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
