/* The per-kind layer checks: see layer_check.h. */
#include "layer_check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static fnet_layer *make_on(fnet_ctx *ctx, fnet_layer_factory make, uint64_t seed)
{
    fnet_layer *l = NULL;
    fnet_assert_ok(ctx, make(ctx, seed, &l));
    return l;
}

static void fill_input(float *x, int64_t n, uint64_t seed)
{
    fnet_test_fill_uniform(x, n, -1.0f, 1.0f, seed);
    for (int64_t i = 0; i < n; i++)
        if (fabsf(x[i]) < 0.1f)
            x[i] = x[i] < 0 ? -0.1f - x[i] : 0.1f + x[i];
}

void check_layer_forward_matches_dense(fnet_layer_factory make, int64_t B, bool has_bias)
{
    fnet_ctx *ctx;
    fnet_assert_ok(NULL, fnet_ctx_create_reference(&ctx));
    fnet_layer *l = make_on(ctx, make, 11);
    int64_t n_in = fnet_layer_n_in(l), n_out = fnet_layer_n_out(l);
    float *x = malloc(sizeof(float) * (size_t)(B * n_in));
    float *y = malloc(sizeof(float) * (size_t)(B * n_out));
    float *W = malloc(sizeof(float) * (size_t)(n_in * n_out));
    double *want = malloc(sizeof(double) * (size_t)(B * n_out));
    double *got = malloc(sizeof(double) * (size_t)(B * n_out));
    fill_input(x, B * n_in, 12);
    fnet_assert_ok(ctx, fnet_layer_forward(l, x, B, y));
    fnet_assert_ok(ctx, fnet_layer_to_dense(l, W));
    const float *bias = has_bias ? fnet_layer_params(l) + fnet_layer_num_params(l) - n_out : NULL;
    for (int64_t r = 0; r < B; r++)
        for (int64_t o = 0; o < n_out; o++) {
            double acc = bias ? bias[o] : 0.0;
            for (int64_t i = 0; i < n_in; i++)
                acc += (double)x[r * n_in + i] * (double)W[o * n_in + i];
            want[r * n_out + o] = acc;
            got[r * n_out + o] = y[r * n_out + o];
        }
    fnet_assert_allclose_d(got, want, B * n_out, 1e-5, 1e-6);
    free(x), free(y), free(W), free(want), free(got);
    fnet_layer_free(l);
    fnet_ctx_free(ctx);
}

// L = Σ c ⊙ f(x), in double
static double probe(fnet_layer *l, const float *x, int64_t B, const float *c, float *y)
{
    fnet_status st = fnet_layer_forward(l, x, B, y);
    assert_int_equal(st, FNET_OK);
    double s = 0.0;
    for (int64_t i = 0; i < B * fnet_layer_n_out(l); i++)
        s += (double)c[i] * (double)y[i];
    return s;
}

void check_layer_gradients(fnet_layer_factory make, int64_t B)
{
    fnet_ctx *ctx;
    fnet_assert_ok(NULL, fnet_ctx_create_reference(&ctx));
    fnet_layer *l = make_on(ctx, make, 21);
    int64_t n_in = fnet_layer_n_in(l), n_out = fnet_layer_n_out(l), np = fnet_layer_num_params(l);
    float *x = malloc(sizeof(float) * (size_t)(B * n_in));
    float *y = malloc(sizeof(float) * (size_t)(B * n_out));
    float *c = malloc(sizeof(float) * (size_t)(B * n_out));
    float *dx = malloc(sizeof(float) * (size_t)(B * n_in));
    double *num = malloc(sizeof(double) * (size_t)(np + B * n_in));
    double *ana = malloc(sizeof(double) * (size_t)(np + B * n_in));
    fill_input(x, B * n_in, 22);
    fnet_test_fill_uniform(c, B * n_out, -1.0f, 1.0f, 23);
    // analytic
    fnet_assert_ok(ctx, fnet_layer_forward(l, x, B, y));
    float *g = fnet_layer_grads(l), *w = fnet_layer_params(l);
    if (np)
        memset(g, 0, sizeof(float) * (size_t)np);
    fnet_assert_ok(ctx, fnet_layer_backward(l, x, y, c, B, dx));
    for (int64_t i = 0; i < np; i++)
        ana[i] = g[i];
    for (int64_t i = 0; i < B * n_in; i++)
        ana[np + i] = dx[i];
    // numeric, central differences
    for (int64_t i = 0; i < np; i++) {
        float keep = w[i];
        w[i] = keep + (float)FNET_FD_EPS;
        double up = probe(l, x, B, c, y);
        w[i] = keep - (float)FNET_FD_EPS;
        double down = probe(l, x, B, c, y);
        w[i] = keep;
        num[i] = (up - down) / (2.0 * FNET_FD_EPS);
    }
    for (int64_t i = 0; i < B * n_in; i++) {
        float keep = x[i];
        // half the step on inputs: they stay clear of ReLU's kink (|x| >= 0.1)
        x[i] = keep + (float)(FNET_FD_EPS / 2);
        double up = probe(l, x, B, c, y);
        x[i] = keep - (float)(FNET_FD_EPS / 2);
        double down = probe(l, x, B, c, y);
        x[i] = keep;
        num[np + i] = (up - down) / FNET_FD_EPS;
    }
    fnet_assert_allclose_d(ana, num, np + B * n_in, FNET_FD_RTOL, FNET_FD_ATOL);
    free(x), free(y), free(c), free(dx), free(num), free(ana);
    fnet_layer_free(l);
    fnet_ctx_free(ctx);
}

void check_layer_cpu_matches_reference(fnet_layer_factory make, int64_t B, double rtol)
{
    fnet_ctx *rc, *cc;
    fnet_assert_ok(NULL, fnet_ctx_create_reference(&rc));
    fnet_assert_ok(NULL, fnet_ctx_create_cpu(&cc));
    // three workers whatever the machine: layers that split work over them are checked split
    fnet_assert_ok(cc, fnet_ctx_set_threads(cc, 3));
    fnet_layer *lr = make_on(rc, make, 31), *lc = make_on(cc, make, 31);
    int64_t n_in = fnet_layer_n_in(lr), n_out = fnet_layer_n_out(lr), np = fnet_layer_num_params(lr);
    assert_int_equal(np, fnet_layer_num_params(lc));
    if (np)
        fnet_assert_allclose(fnet_layer_params(lc), fnet_layer_params(lr), np, 0.0, 0.0);
    float *x = malloc(sizeof(float) * (size_t)(B * n_in));
    float *dy = malloc(sizeof(float) * (size_t)(B * n_out));
    float *yr = malloc(sizeof(float) * (size_t)(B * n_out)), *yc = malloc(sizeof(float) * (size_t)(B * n_out));
    float *dxr = malloc(sizeof(float) * (size_t)(B * n_in)), *dxc = malloc(sizeof(float) * (size_t)(B * n_in));
    fill_input(x, B * n_in, 32);
    fnet_test_fill_uniform(dy, B * n_out, -1.0f, 1.0f, 33);
    fnet_assert_ok(rc, fnet_layer_forward(lr, x, B, yr));
    fnet_assert_ok(cc, fnet_layer_forward(lc, x, B, yc));
    fnet_assert_allclose(yc, yr, B * n_out, rtol, rtol);
    fnet_assert_ok(rc, fnet_layer_backward(lr, x, yr, dy, B, dxr));
    fnet_assert_ok(cc, fnet_layer_backward(lc, x, yc, dy, B, dxc));
    fnet_assert_allclose(dxc, dxr, B * n_in, rtol, rtol);
    if (np)
        fnet_assert_allclose(fnet_layer_grads(lc), fnet_layer_grads(lr), np, rtol, rtol);
    free(x), free(dy), free(yr), free(yc), free(dxr), free(dxc);
    fnet_layer_free(lr);
    fnet_layer_free(lc);
    fnet_ctx_free(rc);
    fnet_ctx_free(cc);
}

void check_layer_out_of_memory(fnet_layer_factory make, int64_t B)
{
    fnet_ctx *ctx;
    fnet_assert_ok(NULL, fnet_ctx_create_reference(&ctx));
    int failures = 0;
    for (long k = 1; k < 1000; k++) {
        fnet_layer *l = NULL;
        fnet_debug_fail_alloc(k);
        fnet_status st = make(ctx, 1, &l);
        if (st == FNET_OK)
            st = fnet_layer_reserve(l, B);
        fnet_debug_fail_alloc(0);
        fnet_layer_free(l);
        if (st == FNET_OK)
            break;
        assert_int_equal(st, FNET_ERR_OUT_OF_MEMORY);
        assert_true(strlen(fnet_ctx_last_error(ctx)) > 0);
        failures++;
    }
    assert_true(failures >= 1); // every kind allocates at least its struct
    fnet_ctx_free(ctx);
}
