/* The model: the loss-and-gradient oracle against finite differences (both losses, with
 * regularization), in-place buffers against a layer-by-layer composition, CPU against reference,
 * specs, determinism, bad input and out-of-memory injection. Each test runs on the backend
 * FNET_TEST_BACKEND names (fnet_test_ctx); inputs live in backend memory and every comparison is
 * made on host copies. */
#include "test_util.h"
#include "core/backend.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FD_EPS 1e-2
#define FD_RTOL 2e-2
#define FD_ATOL 2e-3

static void fill_batch(float *x, int32_t *labels, int64_t B, int64_t d, int64_t K, uint64_t seed)
{
    fnet_test_fill_uniform(x, B * d, -1.0f, 1.0f, seed);
    for (int64_t r = 0; r < B; r++)
        labels[r] = (int32_t)((r * 7 + (int64_t)seed) % K);
}

// Parameter i of m set to v through a host copy w of all of them (w[i] is left at v).
static void set_param(fnet_model *m, float *w, int64_t i, float v)
{
    w[i] = v;
    fnet_assert_ok(fnet_model_ctx(m), fnet_model_set_params(m, w));
}

static void check_model_gradient(const char *spec, fnet_loss loss, float l1, float l2)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_REFERENCE);
    fnet_model *m;
    const int64_t d = 5, B = 4;
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, spec, d, 3, &m));
    fnet_assert_ok(ctx, fnet_model_set_loss(m, loss));
    fnet_assert_ok(ctx, fnet_model_set_regularization(m, l1, l2));
    int64_t n = fnet_model_num_params(m), K = fnet_model_n_out(m);
    float *w = fnet_test_model_params(m);
    float xh[B * d];
    int32_t labels[B];
    fill_batch(xh, labels, B, d, K, 1);
    float *x = fnet_test_upload(ctx, xh, B * d);
    double *ana = malloc(sizeof(double) * (size_t)n), *num = malloc(sizeof(double) * (size_t)n);
    assert_true(ana != NULL && num != NULL);
    double f0;
    fnet_assert_ok(ctx, fnet_model_loss_grad(m, x, labels, B, &f0, NULL));
    float *g = fnet_test_model_grads(m);
    for (int64_t i = 0; i < n; i++) {
        ana[i] = g[i];
        float keep = w[i];
        double up, down;
        set_param(m, w, i, keep + (float)FD_EPS);
        fnet_assert_ok(ctx, fnet_model_loss_grad(m, x, labels, B, &up, NULL));
        set_param(m, w, i, keep - (float)FD_EPS);
        fnet_assert_ok(ctx, fnet_model_loss_grad(m, x, labels, B, &down, NULL));
        set_param(m, w, i, keep);
        num[i] = (up - down) / (2 * FD_EPS);
    }
    fnet_assert_allclose_d(ana, num, n, FD_RTOL, FD_ATOL);
    free(g), free(w), free(ana), free(num);
    fnet_backend_free(ctx, x);
    fnet_model_free(m);
    fnet_ctx_free(ctx);
}

static void test_loss_grad_matches_finite_differences_ce(void **state)
{
    check_model_gradient("dense:6,tanh,dense:4,relu,dense:3", FNET_LOSS_CE, 0.0f, 0.0f);
    check_model_gradient("dense:6,sigmoid,dropout:0.5,dense:3", FNET_LOSS_CE, 0.0f, 0.0f);
    // the tensor formats inside a model (their gradients written, not added, into the flat
    // vector; Tucker's sub-layers on the model's slices)
    check_model_gradient("tr:6:ranks=2x1:ring=2:in=5x1x1:out=1x2x3,tanh,dense:3", FNET_LOSS_CE,
                         0.0f, 0.0f);
    check_model_gradient("tucker:6:ranks=2x3:in=5:out=6,tanh,tucker:4:ranks=2x2x2:out=2x2,dense:3",
                         FNET_LOSS_CE, 0.0f, 0.0f);
    check_model_gradient("cp:6:rank=3,tanh,cp:4:rank=2:in=2x3,dense:3", FNET_LOSS_CE, 0.0f, 0.0f);
}

static void test_loss_grad_matches_finite_differences_mse(void **state)
{
    check_model_gradient("dense:6,tanh,dense:3", FNET_LOSS_MSE, 0.0f, 0.0f);
}

static void test_loss_grad_includes_regularization(void **state)
{
    check_model_gradient("dense:6,relu,dense:3", FNET_LOSS_CE, 0.01f, 0.1f);
    // the penalty itself: weights only, biases excluded
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    fnet_model *m;
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, "dense:2", 3, 1, &m));
    assert_int_equal(fnet_model_num_params(m), 8);
    const float vals[8] = {1, -2, 0, 0.5f, 0, 3, /* bias */ 10, -10};
    fnet_assert_ok(ctx, fnet_model_set_params(m, vals));
    const float zeros[3] = {0, 0, 0};
    float *x = fnet_test_upload(ctx, zeros, 3);
    int32_t label = 0;
    double plain, reg;
    fnet_assert_ok(ctx, fnet_model_loss_grad(m, x, &label, 1, &plain, NULL));
    fnet_assert_ok(ctx, fnet_model_set_regularization(m, 0.5f, 0.25f));
    fnet_assert_ok(ctx, fnet_model_loss_grad(m, x, &label, 1, &reg, NULL));
    // l1·Σ|w| = 0.5·6.5, ½·l2·Σw² = 0.125·14.25
    fnet_assert_close(reg - plain, 0.5 * 6.5 + 0.125 * 14.25, 1e-6, 0.0);
    assert_int_equal(fnet_model_set_regularization(m, -1.0f, 0.0f), FNET_ERR_INVALID_ARG);
    fnet_backend_free(ctx, x);
    fnet_model_free(m);
    fnet_ctx_free(ctx);
}

// The model shares buffers between a layer and the in-place activation after it; its output
// must equal the layers applied one by one into separate buffers.
static void test_in_place_buffers_match_layer_by_layer(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    fnet_model *m;
    const int64_t d = 5, B = 3;
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, "relu,dense:7,tanh,dropout:0.2,sigmoid,dense:4", d, 9, &m));
    float xh[B * d];
    fnet_test_fill_uniform(xh, B * d, -1, 1, 4);
    float *x = fnet_test_upload(ctx, xh, B * d);
    float out[B * 4];
    fnet_assert_ok(ctx, fnet_model_forward(m, x, B, out));
    // two separate buffers of the widest layer, used in turn
    float *a = fnet_test_upload(ctx, NULL, B * 7), *b = fnet_test_upload(ctx, NULL, B * 7);
    const float *in = x;
    float *bufs[2] = {a, b};
    for (int i = 0; i < fnet_model_num_layers(m); i++) {
        float *o = bufs[i % 2];
        fnet_assert_ok(ctx, fnet_layer_forward(fnet_model_layer(m, i), in, B, o));
        in = o;
    }
    float *last = fnet_test_download(ctx, in, B * 4);
    fnet_assert_allclose(out, last, B * 4, 0.0, 0.0);
    free(last);
    fnet_backend_free(ctx, b);
    fnet_backend_free(ctx, a);
    fnet_backend_free(ctx, x);
    assert_string_equal(fnet_model_spec(m), "relu,dense:7,tanh,dropout:0.2,sigmoid,dense:4");
    assert_int_equal(fnet_model_num_params(m), 5 * 7 + 7 + 7 * 4 + 4);
    fnet_model_free(m);
    fnet_ctx_free(ctx);
}

// Replacing a layer by one of another in-place behaviour after a forward pass (when the model's
// buffers are laid out) gives what a fresh model of the new spec and parameters gives: the
// layout follows the new layers.
static void test_replace_layer_relays_out_the_buffers(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    enum { d = 8, B = 5 };
    float xh[B * d];
    int32_t labels[B] = {0, 1, 2, 3, 4};
    fnet_test_fill_uniform(xh, B * d, -1, 1, 6);
    float *x = fnet_test_upload(ctx, xh, B * d);
    // relu (in place, over the first dense's output) -> dense; dense -> relu before dropout:0
    const char *from[2] = {"dense:8,relu,dense:8", "dense:8,relu,dense:8,dropout:0,dense:6"};
    const char *to[2] = {"dense:8,dense:8,dense:8", "dense:8,relu,relu,dropout:0,dense:6"};
    for (int c = 0; c < 2; c++) {
        fnet_model *m, *fresh;
        fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, from[c], d, 3, &m));
        double loss;
        fnet_assert_ok(ctx, fnet_model_loss_grad(m, x, labels, B, &loss, NULL));
        fnet_layer *l;
        if (c == 0)
            fnet_assert_ok(ctx, fnet_dense_create(ctx, 8, 8, true, &l));
        else
            fnet_assert_ok(ctx, fnet_activation_create(ctx, FNET_LAYER_RELU, 8, &l));
        if (c == 0) {
            fnet_rng rng;
            fnet_rng_seed(&rng, 11);
            fnet_assert_ok(ctx, fnet_layer_init(l, FNET_INIT_GLOROT_UNIFORM, &rng));
        }
        fnet_assert_ok(ctx, fnet_model_replace_layer(m, c == 0 ? 1 : 2, l));
        assert_string_equal(fnet_model_spec(m), to[c]);
        fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, to[c], d, 1, &fresh));
        float *w = fnet_test_model_params(m);
        fnet_assert_ok(ctx, fnet_model_set_params(fresh, w));
        double l1, l2;
        fnet_assert_ok(ctx, fnet_model_loss_grad(m, x, labels, B, &l1, NULL));
        fnet_assert_ok(ctx, fnet_model_loss_grad(fresh, x, labels, B, &l2, NULL));
        assert_true(l1 == l2);
        float *g1 = fnet_test_model_grads(m), *g2 = fnet_test_model_grads(fresh);
        fnet_assert_allclose(g1, g2, fnet_model_num_params(m), 0.0, 0.0);
        free(g1), free(g2), free(w);
        fnet_model_free(fresh);
        fnet_model_free(m);
    }
    fnet_backend_free(ctx, x);
    fnet_ctx_free(ctx);
}

// The backend under test (the CPU one by default) against the reference oracle.
static void test_cpu_model_matches_reference(void **state)
{
    fnet_ctx *rc, *cc = fnet_test_ctx(FNET_BACKEND_CPU);
    fnet_assert_ok(NULL, fnet_ctx_create_reference(&rc));
    fnet_model *mr, *mc;
    const char *spec = "dense:32,relu,dense:16,tanh,dense:10";
    const int64_t d = 20, B = 17;
    fnet_assert_ok(rc, fnet_model_create_from_spec(rc, spec, d, 5, &mr));
    fnet_assert_ok(cc, fnet_model_create_from_spec(cc, spec, d, 5, &mc));
    int64_t n = fnet_model_num_params(mr);
    assert_int_equal(fnet_model_num_params(mc), n);
    float *wr = fnet_test_model_params(mr), *wc = fnet_test_model_params(mc);
    fnet_assert_allclose(wc, wr, n, 0.0, 0.0); // same seed, same model, on every backend
    float xh[B * d];
    int32_t labels[B];
    fill_batch(xh, labels, B, d, 10, 3);
    float *xr = fnet_test_upload(rc, xh, B * d), *xc = fnet_test_upload(cc, xh, B * d);
    double lr, lc;
    fnet_assert_ok(rc, fnet_model_loss_grad(mr, xr, labels, B, &lr, NULL));
    fnet_assert_ok(cc, fnet_model_loss_grad(mc, xc, labels, B, &lc, NULL));
    fnet_assert_close(lc, lr, 1e-6, 0.0);
    float *gr = fnet_test_model_grads(mr), *gc = fnet_test_model_grads(mc);
    fnet_assert_allclose(gc, gr, n, 1e-4, 1e-6);
    free(gr), free(gc), free(wr), free(wc);
    fnet_backend_free(rc, xr);
    fnet_backend_free(cc, xc);
    fnet_model_free(mr);
    fnet_model_free(mc);
    fnet_ctx_free(rc);
    fnet_ctx_free(cc);
}

static void test_same_seed_same_model(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    fnet_model *a, *b, *c;
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, "dense:8,relu,dense:3", 4, 42, &a));
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, "dense:8,relu,dense:3", 4, 42, &b));
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, "dense:8,relu,dense:3", 4, 43, &c));
    int64_t n = fnet_model_num_params(a);
    float *wa = fnet_test_model_params(a), *wb = fnet_test_model_params(b);
    float *wc = fnet_test_model_params(c);
    assert_memory_equal(wa, wb, sizeof(float) * (size_t)n);
    assert_memory_not_equal(wa, wc, sizeof(float) * (size_t)n);
    free(wa), free(wb), free(wc);
    fnet_model_free(a);
    fnet_model_free(b);
    fnet_model_free(c);
    fnet_ctx_free(ctx);
}

// Every layer's spec item parses back to the same layer: bias-free dense and TT layers, and a
// dropout probability that %g would round (found by fuzzing).
static void test_model_spec_round_trips(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    const char *spec = "dense:8:bias=0,relu,dropout:0.99999964,tt:16:ranks=2x2x2:in=2x2x2x1:out=2x2x2x2:bias=0,dense:3";
    fnet_model *m, *again;
    const char *canonical = "dense:8:bias=0,relu,dropout:0.999999642,tt:16:ranks=2x2x2:in=2x2x2x1:out=2x2x2x2:bias=0,dense:3";
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, spec, 4, 1, &m));
    assert_string_equal(fnet_model_spec(m), canonical);
    assert_int_equal(fnet_layer_num_params(fnet_model_layer(m, 0)), 4 * 8);
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, fnet_model_spec(m), 4, 1, &again));
    assert_string_equal(fnet_model_spec(again), canonical);
    assert_int_equal(fnet_model_num_params(again), fnet_model_num_params(m));
    fnet_model_free(again);
    fnet_model_free(m);
    fnet_ctx_free(ctx);
}

static void test_model_rejects_bad_specs_and_input(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    fnet_model *m = (fnet_model *)&m;
    assert_int_equal(fnet_model_create_from_spec(ctx, "dense:64,relu,dense", 784, 1, &m), FNET_ERR_FORMAT);
    assert_null(m);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "spec item 3"));
    assert_int_equal(fnet_model_create_from_spec(ctx, "dense:0", 784, 1, &m), FNET_ERR_FORMAT);
    assert_int_equal(fnet_model_create_from_spec(ctx, "", 784, 1, &m), FNET_ERR_FORMAT);
    assert_int_equal(fnet_model_create_from_spec(ctx, "dense:64,relu,sparse:10:nnz=641", 784, 1, &m),
                     FNET_ERR_INVALID_ARG);
    assert_null(m);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "spec item 3 'sparse:10:nnz=641'"));
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "do not fit a 10 x 64 matrix"));
    assert_int_equal(fnet_model_create_from_spec(ctx, "dense:4", 0, 1, &m), FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_model_create_from_spec(ctx, "dense:4", -5, 1, &m), FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_model_create_from_spec(ctx, NULL, 5, 1, &m), FNET_ERR_INVALID_ARG);

    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, "dense:3", 2, 1, &m));
    const float xh[4] = {0.1f, 0.2f, 0.3f, 0.4f};
    float *x = fnet_test_upload(ctx, xh, 4);
    int32_t bad[2] = {0, 3};
    double loss;
    assert_int_equal(fnet_model_loss_grad(m, x, bad, 2, &loss, NULL), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "label 3 of sample 1"));
    int32_t good[2] = {0, 2};
    assert_int_equal(fnet_model_loss_grad(m, x, good, 0, &loss, NULL), FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_model_loss_grad(m, NULL, good, 2, &loss, NULL), FNET_ERR_INVALID_ARG);
    // a layer whose width does not fit is refused and freed
    fnet_layer *l;
    fnet_assert_ok(ctx, fnet_dense_create(ctx, 7, 2, true, &l));
    assert_int_equal(fnet_model_add_layer(m, l), FNET_ERR_SHAPE);
    assert_int_equal(fnet_model_n_out(m), 3);
    // a NaN in the parameters is a numeric error, not a silent NaN loss
    float *w = fnet_test_model_params(m);
    set_param(m, w, 0, NAN);
    assert_int_equal(fnet_model_loss_grad(m, x, good, 2, &loss, NULL), FNET_ERR_NUMERIC);
    free(w);
    fnet_backend_free(ctx, x);
    fnet_model_free(m);
    fnet_ctx_free(ctx);
}

static void test_model_survives_out_of_memory(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    int failures = 0;
    for (long k = 1; k < 1000; k++) {
        fnet_model *m = NULL;
        fnet_debug_fail_alloc(k);
        fnet_status st = fnet_model_create_from_spec(ctx, "dense:8,relu,dropout:0.1,dense:3", 4, 1, &m);
        if (st == FNET_OK)
            st = fnet_model_reserve(m, 16);
        fnet_debug_fail_alloc(0);
        fnet_model_free(m);
        if (st == FNET_OK)
            break;
        assert_int_equal(st, FNET_ERR_OUT_OF_MEMORY);
        failures++;
    }
    assert_true(failures > 5);
    // a model that fails to grow keeps working
    fnet_model *m;
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, "dense:3", 2, 1, &m));
    const float xh[4] = {1, 2, 3, 4};
    float *x = fnet_test_upload(ctx, xh, 4);
    int32_t y[2] = {0, 1};
    double before, after;
    fnet_assert_ok(ctx, fnet_model_loss_grad(m, x, y, 2, &before, NULL));
    fnet_debug_fail_alloc(1);
    assert_int_equal(fnet_model_add_dense(m, 5), FNET_ERR_OUT_OF_MEMORY);
    fnet_debug_fail_alloc(0);
    fnet_assert_ok(ctx, fnet_model_loss_grad(m, x, y, 2, &after, NULL));
    fnet_assert_close(after, before, 0.0, 0.0);
    assert_string_equal(fnet_model_spec(m), "dense:3");
    fnet_backend_free(ctx, x);
    fnet_model_free(m);
    fnet_ctx_free(ctx);
}

// The backend op itself: logits, labels and dlogits in backend memory, *correct on the host.
static void test_softmax_ce_is_stable_and_exact(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_REFERENCE);
    // logits far out: lse must not overflow
    const float zh[6] = {1000.0f, 0.0f, -1000.0f, 1.0f, 2.0f, 3.0f};
    const int32_t labh[2] = {1, 2};
    float *z = fnet_test_upload(ctx, zh, 6), *dd = fnet_test_upload(ctx, NULL, 6);
    int32_t *lab = fnet_test_upload_i32(ctx, labh, 2);
    int64_t correct;
    double total = ctx->be->softmax_ce(ctx, 2, 3, z, lab, 0.5f, dd, &correct);
    float d[6];
    fnet_assert_ok(ctx, fnet_backend_download(ctx, d, dd, sizeof(d)));
    double row2 = log(exp(1.0) + exp(2.0) + exp(3.0)) - 3.0;
    fnet_assert_close(total, 1000.0 + row2, 1e-9, 0.0);
    assert_int_equal(correct, 1);
    const float want[6] = {0.5f, -0.5f, 0.0f, (float)(0.5 * exp(1 - 3 - row2)),
                           (float)(0.5 * exp(2 - 3 - row2)), (float)(0.5 * (exp(-row2) - 1))};
    fnet_assert_allclose(d, want, 6, 1e-6, 1e-7);
    fnet_backend_free(ctx, lab);
    fnet_backend_free(ctx, dd);
    fnet_backend_free(ctx, z);
    fnet_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loss_grad_matches_finite_differences_ce),
        cmocka_unit_test(test_loss_grad_matches_finite_differences_mse),
        cmocka_unit_test(test_loss_grad_includes_regularization),
        cmocka_unit_test(test_in_place_buffers_match_layer_by_layer),
        cmocka_unit_test(test_replace_layer_relays_out_the_buffers),
        cmocka_unit_test(test_cpu_model_matches_reference),
        cmocka_unit_test(test_same_seed_same_model),
        cmocka_unit_test(test_model_spec_round_trips),
        cmocka_unit_test(test_model_rejects_bad_specs_and_input),
        cmocka_unit_test(test_model_survives_out_of_memory),
        cmocka_unit_test(test_softmax_ce_is_stable_and_exact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
