/* The per-kind layer checks: see layer_check.h. Inputs and outputs of the passes live in backend
 * memory; every comparison is made on host copies. */
#include "layer_check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

fnet_status fnet_test_set_layer_bias(fnet_layer *l, const float *b, int64_t n)
{
    int64_t np = fnet_layer_num_params(l);
    if (n < 0 || n > np)
        return FNET_ERR_INVALID_ARG;
    float *w = malloc(sizeof(float) * (size_t)(np > 0 ? np : 1));
    if (w == NULL)
        return FNET_ERR_OUT_OF_MEMORY;
    fnet_status st = fnet_layer_get_params(l, w);
    if (st == FNET_OK) {
        memcpy(w + np - n, b, sizeof(float) * (size_t)n);
        st = fnet_layer_set_params(l, w);
    }
    free(w);
    return st;
}

fnet_status fnet_test_init_layer(fnet_layer *l, uint64_t seed, bool bias)
{
    fnet_rng rng;
    fnet_rng_seed(&rng, seed);
    fnet_status st = fnet_layer_init(l, FNET_INIT_GLOROT_NORMAL, &rng);
    if (st != FNET_OK || !bias)
        return st;
    int64_t n = fnet_layer_n_out(l);
    float *b = malloc(sizeof(float) * (size_t)n);
    if (b == NULL)
        return FNET_ERR_OUT_OF_MEMORY;
    for (int64_t i = 0; i < n; i++)
        b[i] = 0.01f * (float)(i % 7) - 0.03f;
    st = fnet_test_set_layer_bias(l, b, n);
    free(b);
    return st;
}

static fnet_layer *make_on(fnet_ctx *ctx, fnet_layer_factory make, uint64_t seed)
{
    fnet_layer *l = NULL;
    fnet_assert_ok(ctx, make(ctx, seed, &l));
    return l;
}

static float *host_floats(int64_t n)
{
    float *p = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    assert_non_null(p);
    return p;
}

static double *host_doubles(int64_t n)
{
    double *p = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    assert_non_null(p);
    return p;
}

// host (n) = backend memory be (n) of ctx
static void download_into(fnet_ctx *ctx, float *host, const float *be, int64_t n)
{
    fnet_assert_ok(ctx, fnet_backend_download(ctx, host, be, sizeof(float) * (size_t)n));
}

// backend memory be[i] = v: one element, so a probe moves one float per step
static void upload_one(fnet_ctx *ctx, float *be, int64_t i, float v)
{
    fnet_assert_ok(ctx, fnet_backend_upload(ctx, be + i, &v, sizeof(float)));
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
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_REFERENCE);
    fnet_layer *l = make_on(ctx, make, 11);
    int64_t n_in = fnet_layer_n_in(l), n_out = fnet_layer_n_out(l);
    float *x = host_floats(B * n_in), *y = host_floats(B * n_out);
    float *W = host_floats(n_in * n_out);
    double *want = host_doubles(B * n_out), *got = host_doubles(B * n_out);
    fill_input(x, B * n_in, 12);
    float *xd = fnet_test_upload(ctx, x, B * n_in), *yd = fnet_test_upload(ctx, NULL, B * n_out);
    fnet_assert_ok(ctx, fnet_layer_forward(l, xd, B, yd));
    download_into(ctx, y, yd, B * n_out);
    fnet_assert_ok(ctx, fnet_layer_to_dense(l, W));
    float *w = fnet_test_layer_params(l);
    const float *bias = has_bias ? w + fnet_layer_num_params(l) - n_out : NULL;
    for (int64_t r = 0; r < B; r++)
        for (int64_t o = 0; o < n_out; o++) {
            double acc = bias ? bias[o] : 0.0;
            for (int64_t i = 0; i < n_in; i++)
                acc += (double)x[r * n_in + i] * (double)W[o * n_in + i];
            want[r * n_out + o] = acc;
            got[r * n_out + o] = y[r * n_out + o];
        }
    fnet_assert_allclose_d(got, want, B * n_out, 1e-5, 1e-6);
    free(x), free(y), free(W), free(want), free(got), free(w);
    fnet_backend_free(ctx, xd);
    fnet_backend_free(ctx, yd);
    fnet_layer_free(l);
    fnet_ctx_free(ctx);
}

// What the probe needs: the layer, its input x (backend), the weights c of L (host), and an
// output buffer on each side.
struct probe {
    fnet_layer *l;
    fnet_ctx *ctx;
    const float *xd;
    int64_t B;
    const float *c;
    float *yd, *y;
};

// L = Σ c ⊙ f(x), in double
static double probe(const struct probe *p)
{
    fnet_status st = fnet_layer_forward(p->l, p->xd, p->B, p->yd);
    assert_int_equal(st, FNET_OK);
    int64_t n = p->B * fnet_layer_n_out(p->l);
    download_into(p->ctx, p->y, p->yd, n);
    double s = 0.0;
    for (int64_t i = 0; i < n; i++)
        s += (double)p->c[i] * (double)p->y[i];
    return s;
}

void check_layer_gradients(fnet_layer_factory make, int64_t B)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_REFERENCE);
    fnet_layer *l = make_on(ctx, make, 21);
    int64_t n_in = fnet_layer_n_in(l), n_out = fnet_layer_n_out(l), np = fnet_layer_num_params(l);
    float *x = host_floats(B * n_in), *y = host_floats(B * n_out);
    float *c = host_floats(B * n_out), *dx = host_floats(B * n_in);
    double *num = host_doubles(np + B * n_in), *ana = host_doubles(np + B * n_in);
    fill_input(x, B * n_in, 22);
    fnet_test_fill_uniform(c, B * n_out, -1.0f, 1.0f, 23);
    float *xd = fnet_test_upload(ctx, x, B * n_in), *cd = fnet_test_upload(ctx, c, B * n_out);
    float *yd = fnet_test_upload(ctx, NULL, B * n_out);
    float *dxd = fnet_test_upload(ctx, NULL, B * n_in);
    // analytic
    fnet_assert_ok(ctx, fnet_layer_forward(l, xd, B, yd));
    fnet_assert_ok(ctx, fnet_layer_zero_grads(l));
    fnet_assert_ok(ctx, fnet_layer_backward(l, xd, yd, cd, B, dxd));
    float *g = fnet_test_layer_grads(l), *w = fnet_test_layer_params(l);
    download_into(ctx, dx, dxd, B * n_in);
    for (int64_t i = 0; i < np; i++)
        ana[i] = g[i];
    for (int64_t i = 0; i < B * n_in; i++)
        ana[np + i] = dx[i];
    // a second backward of the same forward adds the same gradient and writes the same dx
    fnet_assert_ok(ctx, fnet_layer_backward(l, xd, yd, cd, B, dxd));
    float *g2 = fnet_test_layer_grads(l), *dx2 = fnet_test_download(ctx, dxd, B * n_in);
    for (int64_t i = 0; i < np; i++)
        fnet_assert_close(g2[i], 2.0 * g[i], 1e-6, 1e-7);
    fnet_assert_allclose(dx2, dx, B * n_in, 1e-6, 1e-7);
    free(g2), free(dx2);
    // numeric, central differences: one parameter at a time through the host copy
    const struct probe p = {.l = l, .ctx = ctx, .xd = xd, .B = B, .c = c, .yd = yd, .y = y};
    for (int64_t i = 0; i < np; i++) {
        float keep = w[i];
        w[i] = keep + (float)FNET_FD_EPS;
        fnet_assert_ok(ctx, fnet_layer_set_params(l, w));
        double up = probe(&p);
        w[i] = keep - (float)FNET_FD_EPS;
        fnet_assert_ok(ctx, fnet_layer_set_params(l, w));
        double down = probe(&p);
        w[i] = keep;
        fnet_assert_ok(ctx, fnet_layer_set_params(l, w));
        num[i] = (up - down) / (2.0 * FNET_FD_EPS);
    }
    for (int64_t i = 0; i < B * n_in; i++) {
        float keep = x[i];
        // half the step on inputs: they stay clear of ReLU's kink (|x| >= 0.1)
        upload_one(ctx, xd, i, keep + (float)(FNET_FD_EPS / 2));
        double up = probe(&p);
        upload_one(ctx, xd, i, keep - (float)(FNET_FD_EPS / 2));
        double down = probe(&p);
        upload_one(ctx, xd, i, keep);
        num[np + i] = (up - down) / FNET_FD_EPS;
    }
    fnet_assert_allclose_d(ana, num, np + B * n_in, FNET_FD_RTOL, FNET_FD_ATOL);
    free(x), free(y), free(c), free(dx), free(num), free(ana), free(g), free(w);
    fnet_backend_free(ctx, xd);
    fnet_backend_free(ctx, cd);
    fnet_backend_free(ctx, yd);
    fnet_backend_free(ctx, dxd);
    fnet_layer_free(l);
    fnet_ctx_free(ctx);
}

// One side of the comparison: a layer on its ctx, the pass's buffers in its backend memory, and
// host copies of what it computed.
struct side {
    fnet_ctx *ctx;
    fnet_layer *l;
    float *xd, *dyd, *yd, *dxd; // backend
    float *y, *dx, *w, *g;      // host
};

static void side_run(struct side *s, const float *x, const float *dy, int64_t B)
{
    int64_t n_in = fnet_layer_n_in(s->l), n_out = fnet_layer_n_out(s->l);
    s->xd = fnet_test_upload(s->ctx, x, B * n_in);
    s->dyd = fnet_test_upload(s->ctx, dy, B * n_out);
    s->yd = fnet_test_upload(s->ctx, NULL, B * n_out);
    s->dxd = fnet_test_upload(s->ctx, NULL, B * n_in);
    fnet_assert_ok(s->ctx, fnet_layer_forward(s->l, s->xd, B, s->yd));
    s->y = fnet_test_download(s->ctx, s->yd, B * n_out);
    fnet_assert_ok(s->ctx, fnet_layer_backward(s->l, s->xd, s->yd, s->dyd, B, s->dxd));
    s->dx = fnet_test_download(s->ctx, s->dxd, B * n_in);
    s->g = fnet_test_layer_grads(s->l);
}

static void side_free(struct side *s)
{
    free(s->y), free(s->dx), free(s->w), free(s->g);
    fnet_backend_free(s->ctx, s->xd);
    fnet_backend_free(s->ctx, s->dyd);
    fnet_backend_free(s->ctx, s->yd);
    fnet_backend_free(s->ctx, s->dxd);
    fnet_layer_free(s->l);
    fnet_ctx_free(s->ctx);
}

void check_layer_cpu_matches_reference(fnet_layer_factory make, int64_t B, double rtol)
{
    struct side r = {0}, c = {0};
    fnet_assert_ok(NULL, fnet_ctx_create_reference(&r.ctx)); // the oracle
    c.ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    // three workers whatever the machine: layers that split work over them are checked split
    fnet_assert_ok(c.ctx, fnet_ctx_set_threads(c.ctx, 3));
    r.l = make_on(r.ctx, make, 31);
    c.l = make_on(c.ctx, make, 31);
    int64_t n_in = fnet_layer_n_in(r.l), n_out = fnet_layer_n_out(r.l);
    int64_t np = fnet_layer_num_params(r.l);
    assert_int_equal(np, fnet_layer_num_params(c.l));
    r.w = fnet_test_layer_params(r.l);
    c.w = fnet_test_layer_params(c.l);
    if (np)
        fnet_assert_allclose(c.w, r.w, np, 0.0, 0.0);
    float *x = host_floats(B * n_in), *dy = host_floats(B * n_out);
    fill_input(x, B * n_in, 32);
    fnet_test_fill_uniform(dy, B * n_out, -1.0f, 1.0f, 33);
    side_run(&r, x, dy, B);
    side_run(&c, x, dy, B);
    fnet_assert_allclose(c.y, r.y, B * n_out, rtol, rtol);
    fnet_assert_allclose(c.dx, r.dx, B * n_in, rtol, rtol);
    if (np)
        fnet_assert_allclose(c.g, r.g, np, rtol, rtol);
    free(x), free(dy);
    side_free(&r);
    side_free(&c);
}

void check_layer_out_of_memory(fnet_layer_factory make, int64_t B)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_REFERENCE);
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

void check_spec_checkpoint_round_trip(const char *spec, const char *other, int64_t n_in)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    char path[600], path2[600];
    const char *dir = fnet_test_tmpdir();
    snprintf(path, sizeof(path), "%s/a.safetensors", dir);
    snprintf(path2, sizeof(path2), "%s/b.safetensors", dir);
    fnet_model *m, *back, *m2;
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, spec, n_in, 4, &m));
    fnet_assert_ok(ctx, fnet_model_save(m, NULL, path));
    fnet_assert_ok(ctx, fnet_model_load(ctx, path, &back));
    assert_string_equal(fnet_model_spec(back), fnet_model_spec(m));
    int64_t n = fnet_model_num_params(m);
    float *w = fnet_test_model_params(m), *wb = fnet_test_model_params(back);
    assert_memory_equal(w, wb, sizeof(float) * (size_t)n);
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, other, n_in, 4, &m2));
    fnet_assert_ok(ctx, fnet_model_save(m2, NULL, path2));
    assert_int_equal(fnet_model_load_params(back, NULL, path2), FNET_ERR_SHAPE);
    float *wc = fnet_test_model_params(back);
    assert_memory_equal(wc, w, sizeof(float) * (size_t)n);
    free(w), free(wb), free(wc);
    fnet_model_free(m2);
    fnet_model_free(back);
    fnet_model_free(m);
    unlink(path);
    unlink(path2);
    rmdir(dir);
    fnet_ctx_free(ctx);
}

void check_spec_training_lowers_loss(const char *spec)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    fnet_dataset *d = fnet_test_class_data(ctx, 300, 16, 4, 150, 50, 80, 4);
    fnet_model *m;
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, spec, 16, 7, &m));
    double acc0, loss0, acc1, loss1;
    fnet_assert_ok(ctx, fnet_model_evaluate(m, d, &acc0, &loss0));
    fnet_optim_params op = fnet_optim_params_default(FNET_OPTIM_ADAM);
    op.lr = 1e-2f;
    fnet_train_params tp = fnet_train_params_default();
    tp.epochs = 5;
    fnet_assert_ok(ctx, fnet_train(m, &op, &tp, d, NULL, NULL, NULL, NULL));
    fnet_assert_ok(ctx, fnet_model_evaluate(m, d, &acc1, &loss1));
    print_message("%s: loss %.4f -> %.4f, accuracy %.3f -> %.3f\n", spec, loss0, loss1, acc0, acc1);
    assert_true(loss1 < 0.5 * loss0);
    assert_true(acc1 > 0.9);
    fnet_model_free(m);
    fnet_dataset_free(d);
    fnet_ctx_free(ctx);
}
