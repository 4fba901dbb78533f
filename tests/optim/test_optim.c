/* Tests of the first-order optimizers and LR schedules (include/factornet/optim.h): every kind
 * against an independent double-precision implementation of torch.optim's formulas and against
 * hand-computed steps, reference vs CPU backend bit for bit, AdamW's decoupled decay, descent on
 * a convex quadratic, parameter checks, out-of-memory injection and schedule values. On the
 * backend FNET_TEST_BACKEND names (else reference); w, g and the states are read back through
 * downloads and fnet_optimizer_get_state. */
#include "test_util.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

// float steps against the double implementation over a few steps
#define RTOL 1e-5
#define ATOL 1e-6
// hand-computed values (written to 7+ significant digits)
#define HAND_RTOL 1e-6
#define HAND_ATOL 1e-7

static const fnet_optim_kind first_order[] = {
    FNET_OPTIM_SGD,     FNET_OPTIM_MOMENTUM, FNET_OPTIM_NESTEROV,
    FNET_OPTIM_RMSPROP, FNET_OPTIM_ADAM,     FNET_OPTIM_ADAMW,
};
#define NUM_FIRST_ORDER ((int)(sizeof(first_order) / sizeof(first_order[0])))

static float *alloc_floats(int64_t n)
{
    float *x = calloc((size_t)n, sizeof(float));
    assert_non_null(x);
    return x;
}

static double *alloc_doubles(int64_t n)
{
    double *x = calloc((size_t)n, sizeof(double));
    assert_non_null(x);
    return x;
}

// The ctx under test: the backend FNET_TEST_BACKEND names, else the reference.
static fnet_ctx *test_ctx(void)
{
    return fnet_test_ctx(FNET_BACKEND_REFERENCE);
}

// w, g and the state vectors are backend memory: the tests keep host copies and move them.
static void to_backend(fnet_ctx *ctx, float *be, const float *host, int64_t n)
{
    fnet_assert_ok(ctx, fnet_backend_upload(ctx, be, host, (size_t)n * sizeof(float)));
}

static void to_host(fnet_ctx *ctx, float *host, const float *be, int64_t n)
{
    fnet_assert_ok(ctx, fnet_backend_download(ctx, host, be, (size_t)n * sizeof(float)));
}

// A host copy (free()) of state vector i (n floats).
static float *state_copy(fnet_ctx *ctx, const fnet_optimizer *opt, int i, int64_t n)
{
    float *s = alloc_floats(n);
    fnet_assert_ok(ctx, fnet_optimizer_get_state(opt, i, s));
    return s;
}

static fnet_optimizer *make_opt(fnet_ctx *ctx, const fnet_optim_params *p, int64_t n)
{
    fnet_optimizer *opt = NULL;
    fnet_assert_ok(ctx, fnet_optimizer_create(ctx, p, n, &opt));
    assert_non_null(opt);
    return opt;
}

// ---------------------------------------------------------------------------------------------
// An independent implementation, in double, written from torch.optim's documented algorithms
// (the textbook form of Adam: m̂ = m/(1−β1^t), v̂ = v/(1−β2^t), w -= lr·m̂/(√v̂ + ε)).

struct dref {
    fnet_optim_params p;
    int64_t n, t;
    double *w, *s0, *s1; // s0: velocity, square_avg or m; s1: v
};

static void dref_init(struct dref *r, const fnet_optim_params *p, int64_t n, const float *w)
{
    r->p = *p;
    r->n = n;
    r->t = 0;
    r->w = alloc_doubles(n);
    r->s0 = alloc_doubles(n);
    r->s1 = alloc_doubles(n);
    for (int64_t i = 0; i < n; i++)
        r->w[i] = w[i];
}

static void dref_free(struct dref *r)
{
    free(r->w);
    free(r->s0);
    free(r->s1);
}

static void dref_step(struct dref *r, const float *g)
{
    const fnet_optim_params *p = &r->p;
    double lr = p->lr, wd = p->weight_decay, mu = p->momentum, rho = p->rho, eps = p->eps;
    double b1 = p->beta1, b2 = p->beta2;
    r->t++;
    double bc1 = 1.0 - pow(b1, (double)r->t), bc2 = 1.0 - pow(b2, (double)r->t);
    for (int64_t i = 0; i < r->n; i++) {
        double w = r->w[i], gi = g[i];
        double *s0 = &r->s0[i], *s1 = &r->s1[i];
        if (p->kind == FNET_OPTIM_ADAMW)
            w = w - lr * wd * w; // decoupled
        else
            gi = gi + wd * w; // L2, coupled
        switch (p->kind) {
        case FNET_OPTIM_SGD: w -= lr * gi; break;
        case FNET_OPTIM_MOMENTUM:
            *s0 = mu * *s0 + gi;
            w -= lr * *s0;
            break;
        case FNET_OPTIM_NESTEROV:
            *s0 = mu * *s0 + gi;
            w -= lr * (gi + mu * *s0);
            break;
        case FNET_OPTIM_RMSPROP:
            *s0 = rho * *s0 + (1.0 - rho) * gi * gi;
            w -= lr * gi / (sqrt(*s0) + eps);
            break;
        case FNET_OPTIM_ADAM:
        case FNET_OPTIM_ADAMW:
            *s0 = b1 * *s0 + (1.0 - b1) * gi;
            *s1 = b2 * *s1 + (1.0 - b2) * gi * gi;
            w -= lr * (*s0 / bc1) / (sqrt(*s1 / bc2) + eps);
            break;
        default: fail_msg("no reference for kind %d", (int)p->kind);
        }
        r->w[i] = w;
    }
}

static void assert_float_vs_double(const float *a, const double *b, int64_t n)
{
    double *ad = alloc_doubles(n);
    for (int64_t i = 0; i < n; i++)
        ad[i] = a[i];
    fnet_assert_allclose_d(ad, b, n, RTOL, ATOL);
    free(ad);
}

// Several steps on random w and g of size n; w and every state vector against the double run.
static void check_against_double(fnet_optim_kind kind, int64_t n, float weight_decay)
{
    fnet_ctx *ctx = test_ctx();
    fnet_optim_params p = fnet_optim_params_default(kind);
    p.lr = kind == FNET_OPTIM_RMSPROP ? 0.01f : 0.05f;
    p.weight_decay = weight_decay;
    fnet_optimizer *opt = make_opt(ctx, &p, n);
    float *w = alloc_floats(n), *g = alloc_floats(n);
    fnet_test_fill_uniform(w, n, -1.0f, 1.0f, 11 + (uint64_t)n);
    float *bw = fnet_test_upload(ctx, w, n), *bg = fnet_test_upload(ctx, NULL, n);
    struct dref r;
    dref_init(&r, &p, n, w);
    for (int step = 0; step < 6; step++) {
        fnet_test_fill_uniform(g, n, -1.0f, 1.0f, 1000 + (uint64_t)step * 7 + (uint64_t)n);
        to_backend(ctx, bg, g, n);
        fnet_assert_ok(ctx, fnet_optimizer_step(opt, bw, bg));
        dref_step(&r, g);
    }
    assert_int_equal(fnet_optimizer_steps(opt), 6);
    to_host(ctx, w, bw, n);
    assert_float_vs_double(w, r.w, n);
    int count = fnet_optimizer_num_states(opt);
    for (int i = 0; i < count && i < 2; i++) {
        float *st = state_copy(ctx, opt, i, n);
        assert_float_vs_double(st, i == 0 ? r.s0 : r.s1, n);
        free(st);
    }
    dref_free(&r);
    free(w);
    free(g);
    fnet_backend_free(ctx, bw);
    fnet_backend_free(ctx, bg);
    fnet_optimizer_free(opt);
    fnet_ctx_free(ctx);
}

static void test_every_kind_matches_double_reference(void **state)
{
    (void)state;
    static const int64_t sizes[] = {1, 37, 1000};
    for (int k = 0; k < NUM_FIRST_ORDER; k++) {
        for (int s = 0; s < 3; s++) {
            check_against_double(first_order[k], sizes[s], 0.0f);
            check_against_double(first_order[k], sizes[s], 0.05f);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Hand-computed steps. Common data: w0 = (1, −2), g1 = (0.5, 0.25), g2 = (1, −1).

static const float hand_w0[2] = {1.0f, -2.0f};
static const float hand_g1[2] = {0.5f, 0.25f};
static const float hand_g2[2] = {1.0f, -1.0f};

static void hand_run(const fnet_optim_params *p, int steps, float w[2], float *s0, float *s1)
{
    fnet_ctx *ctx = test_ctx();
    fnet_optimizer *opt = make_opt(ctx, p, 2);
    float *bw = fnet_test_upload(ctx, hand_w0, 2), *bg1 = fnet_test_upload(ctx, hand_g1, 2);
    float *bg2 = fnet_test_upload(ctx, hand_g2, 2);
    fnet_assert_ok(ctx, fnet_optimizer_step(opt, bw, bg1));
    if (steps > 1)
        fnet_assert_ok(ctx, fnet_optimizer_step(opt, bw, bg2));
    to_host(ctx, w, bw, 2);
    if (s0)
        fnet_assert_ok(ctx, fnet_optimizer_get_state(opt, 0, s0));
    if (s1)
        fnet_assert_ok(ctx, fnet_optimizer_get_state(opt, 1, s1));
    fnet_backend_free(ctx, bw);
    fnet_backend_free(ctx, bg1);
    fnet_backend_free(ctx, bg2);
    fnet_optimizer_free(opt);
    fnet_ctx_free(ctx);
}

static void test_sgd_step_matches_hand_values(void **state)
{
    (void)state;
    float w[2];
    fnet_optim_params p = fnet_optim_params_default(FNET_OPTIM_SGD);
    p.lr = 0.1f;
    // w = w0 − 0.1·g1 = (1 − 0.05, −2 − 0.025)
    hand_run(&p, 1, w, NULL, NULL);
    fnet_assert_allclose(w, ((float[]){0.95f, -2.025f}), 2, HAND_RTOL, HAND_ATOL);
    // coupled L2, wd = 0.1: g' = g1 + 0.1·w0 = (0.6, 0.05); w = (1 − 0.06, −2 − 0.005)
    p.weight_decay = 0.1f;
    hand_run(&p, 1, w, NULL, NULL);
    fnet_assert_allclose(w, ((float[]){0.94f, -2.005f}), 2, HAND_RTOL, HAND_ATOL);
}

static void test_momentum_and_nesterov_match_hand_values(void **state)
{
    (void)state;
    float w[2], v[2];
    fnet_optim_params p = fnet_optim_params_default(FNET_OPTIM_MOMENTUM);
    p.lr = 0.1f; // μ = 0.9 (default)
    // step 1: v = g1 = (0.5, 0.25); w = (1 − 0.05, −2 − 0.025) = (0.95, −2.025)
    // step 2: v = 0.9·(0.5, 0.25) + (1, −1) = (1.45, −0.775);
    //         w = (0.95 − 0.145, −2.025 + 0.0775) = (0.805, −1.9475)
    hand_run(&p, 2, w, v, NULL);
    fnet_assert_allclose(v, ((float[]){1.45f, -0.775f}), 2, HAND_RTOL, HAND_ATOL);
    fnet_assert_allclose(w, ((float[]){0.805f, -1.9475f}), 2, HAND_RTOL, HAND_ATOL);

    p.kind = FNET_OPTIM_NESTEROV;
    // step 1: v = (0.5, 0.25); g + μv = (0.95, 0.475); w = (0.905, −2.0475)
    // step 2: v = (1.45, −0.775); g + μv = (1 + 1.305, −1 − 0.6975) = (2.305, −1.6975);
    //         w = (0.905 − 0.2305, −2.0475 + 0.16975) = (0.6745, −1.87775)
    hand_run(&p, 2, w, v, NULL);
    fnet_assert_allclose(v, ((float[]){1.45f, -0.775f}), 2, HAND_RTOL, HAND_ATOL);
    fnet_assert_allclose(w, ((float[]){0.6745f, -1.87775f}), 2, HAND_RTOL, HAND_ATOL);
}

static void test_rmsprop_step_matches_hand_values(void **state)
{
    (void)state;
    fnet_ctx *ctx = test_ctx();
    fnet_optim_params p = fnet_optim_params_default(FNET_OPTIM_RMSPROP);
    p.lr = 0.1f;
    p.rho = 0.75f;
    p.eps = 0.5f; // large, so that it shows in the result
    fnet_optimizer *opt = make_opt(ctx, &p, 2);
    float w[2] = {1.0f, -2.0f};
    const float g[2] = {2.0f, -4.0f};
    float *bw = fnet_test_upload(ctx, w, 2), *bg = fnet_test_upload(ctx, g, 2);
    // s = 0.25·g² = (1, 4); √s + ε = (1.5, 2.5); w = (1 − 0.1·2/1.5, −2 + 0.1·4/2.5)
    //   = (0.8666667, −1.84)
    fnet_assert_ok(ctx, fnet_optimizer_step(opt, bw, bg));
    to_host(ctx, w, bw, 2);
    const char *name = NULL;
    assert_non_null(fnet_optimizer_state(opt, 0, &name));
    assert_string_equal(name, "square_avg");
    float s[2];
    fnet_assert_ok(ctx, fnet_optimizer_get_state(opt, 0, s));
    fnet_assert_allclose(s, ((float[]){1.0f, 4.0f}), 2, HAND_RTOL, HAND_ATOL);
    fnet_assert_allclose(w, ((float[]){0.86666667f, -1.84f}), 2, HAND_RTOL, HAND_ATOL);
    fnet_backend_free(ctx, bw);
    fnet_backend_free(ctx, bg);
    fnet_optimizer_free(opt);
    fnet_ctx_free(ctx);
}

static void test_adam_steps_match_hand_values(void **state)
{
    (void)state;
    float w[2], m[2], v[2];
    fnet_optim_params p = fnet_optim_params_default(FNET_OPTIM_ADAM);
    p.lr = 0.1f; // β1 = 0.9, β2 = 0.999, ε = 1e-8
    // step 1: m̂ = g1, v̂ = g1², so w = w0 − 0.1·sign(g1) = (0.9, −2.1) (ε shifts it by 2e-9)
    // step 2: m = 0.9·0.1·g1 + 0.1·g2 = (0.145, −0.0775);
    //         v = 0.999·0.001·g1² + 0.001·g2² = (0.00124975, 0.0010624375);
    //         bc1 = 1 − 0.81 = 0.19, bc2 = 1 − 0.998001 = 0.001999;
    //         m̂ = (0.76315789, −0.40789474), v̂ = (0.62518759, 0.53148449),
    //         m̂/√v̂ = (0.96518199, −0.55950353); w = (0.80348180, −2.04404965)
    hand_run(&p, 2, w, m, v);
    fnet_assert_allclose(m, ((float[]){0.145f, -0.0775f}), 2, HAND_RTOL, HAND_ATOL);
    // float β2 = 0.999f is 0.99900001287, so the kernel's 1 − β2 is 0.00099998713: v is 1.3e-5
    // below the decimal value (the bias correction uses the same β2, so w is not affected).
    fnet_assert_allclose(v, ((float[]){0.00124975f, 0.0010624375f}), 2, 2e-5, 1e-10);
    fnet_assert_allclose(w, ((float[]){0.8034818f, -2.0440496f}), 2, HAND_RTOL, HAND_ATOL);

    // Adam's weight_decay is coupled L2 (torch.optim.Adam): wd = 0.5 gives
    // g' = g1 + 0.5·w0 = (1, −0.75), and step 1 moves by −0.1·sign(g'): w = (0.9, −1.9)
    p.weight_decay = 0.5f;
    hand_run(&p, 1, w, NULL, NULL);
    fnet_assert_allclose(w, ((float[]){0.9f, -1.9f}), 2, HAND_RTOL, HAND_ATOL);
}

static void test_adamw_step_matches_hand_values(void **state)
{
    (void)state;
    float w[2], m[2];
    fnet_optim_params p = fnet_optim_params_default(FNET_OPTIM_ADAMW);
    p.lr = 0.1f;
    p.weight_decay = 0.1f;
    // decay first: w0·(1 − 0.01) = (0.99, −1.98); then Adam on g1 alone (m̂ = g1, v̂ = g1²):
    // w = (0.99 − 0.1, −1.98 − 0.1) = (0.89, −2.08); m = 0.1·g1 (the decay never enters m)
    hand_run(&p, 1, w, m, NULL);
    fnet_assert_allclose(m, ((float[]){0.05f, 0.025f}), 2, HAND_RTOL, HAND_ATOL);
    fnet_assert_allclose(w, ((float[]){0.89f, -2.08f}), 2, HAND_RTOL, HAND_ATOL);
}

// ---------------------------------------------------------------------------------------------

// The CPU backend runs the same element-wise steps, possibly split over threads: same bits. (With
// FNET_TEST_BACKEND set, the backend it names stands where the CPU one does.)
static void test_cpu_backend_equals_reference_exactly(void **state)
{
    (void)state;
    // the oracle, and the backend under test (cpu unless FNET_TEST_BACKEND names another)
    fnet_ctx *ref = NULL, *cpu = fnet_test_ctx(FNET_BACKEND_CPU);
    assert_int_equal(fnet_ctx_create_reference(&ref), FNET_OK);
    fnet_assert_ok(cpu, fnet_ctx_set_threads(cpu, 4));
    static const int64_t sizes[] = {1, 37, 1000, 100003};
    for (int k = 0; k < NUM_FIRST_ORDER; k++) {
        for (int s = 0; s < 4; s++) {
            int64_t n = sizes[s];
            fnet_optim_params p = fnet_optim_params_default(first_order[k]);
            p.weight_decay = 0.01f;
            fnet_optimizer *a = make_opt(ref, &p, n), *b = make_opt(cpu, &p, n);
            float *w = alloc_floats(n), *g = alloc_floats(n);
            fnet_test_fill_uniform(w, n, -1.0f, 1.0f, 5);
            float *wa = fnet_test_upload(ref, w, n), *ga = fnet_test_upload(ref, NULL, n);
            float *wb = fnet_test_upload(cpu, w, n), *gb = fnet_test_upload(cpu, NULL, n);
            for (int step = 0; step < 5; step++) {
                fnet_test_fill_uniform(g, n, -2.0f, 2.0f, 100 + (uint64_t)step);
                to_backend(ref, ga, g, n);
                to_backend(cpu, gb, g, n);
                fnet_assert_ok(ref, fnet_optimizer_step(a, wa, ga));
                fnet_assert_ok(cpu, fnet_optimizer_step(b, wb, gb));
            }
            float *ha = fnet_test_download(ref, wa, n), *hb = fnet_test_download(cpu, wb, n);
            fnet_assert_allclose(hb, ha, n, 0.0, 0.0);
            free(ha);
            free(hb);
            for (int i = 0; i < fnet_optimizer_num_states(a); i++) {
                float *sa = state_copy(ref, a, i, n), *sb = state_copy(cpu, b, i, n);
                fnet_assert_allclose(sb, sa, n, 0.0, 0.0);
                free(sa);
                free(sb);
            }
            free(w);
            free(g);
            fnet_backend_free(ref, wa);
            fnet_backend_free(ref, ga);
            fnet_backend_free(cpu, wb);
            fnet_backend_free(cpu, gb);
            fnet_optimizer_free(a);
            fnet_optimizer_free(b);
        }
    }
    fnet_ctx_free(cpu);
    fnet_ctx_free(ref);
}

static void test_adamw_decay_is_decoupled(void **state)
{
    (void)state;
    fnet_ctx *ctx = test_ctx();
    const int64_t n = 37;
    fnet_optim_params p = fnet_optim_params_default(FNET_OPTIM_ADAMW);
    p.lr = 0.01f;
    p.weight_decay = 0.1f;
    fnet_optimizer *opt = make_opt(ctx, &p, n);
    float *w = alloc_floats(n), *expect = alloc_floats(n), *zeros = alloc_floats(n);
    fnet_test_fill_uniform(w, n, -1.0f, 1.0f, 3);
    memcpy(expect, w, (size_t)n * sizeof(float));
    float *bw = fnet_test_upload(ctx, w, n), *bg = fnet_test_upload(ctx, zeros, n); // g = 0
    // With g = 0, m = v = 0 and Adam's update is 0/(0 + ε) = 0: only the decay acts, exactly
    // w ← w·(1 − lr·wd) per step, whatever the step number.
    const float factor = (float)(1.0 - (double)p.lr * (double)p.weight_decay);
    for (int step = 0; step < 10; step++) {
        fnet_assert_ok(ctx, fnet_optimizer_step(opt, bw, bg));
        for (int64_t i = 0; i < n; i++)
            expect[i] *= factor;
        to_host(ctx, w, bw, n);
        fnet_assert_allclose(w, expect, n, 0.0, 0.0);
    }
    for (int i = 0; i < 2; i++) {
        float *st = state_copy(ctx, opt, i, n);
        fnet_assert_allclose(st, zeros, n, 0.0, 0.0);
        free(st);
    }
    fnet_optimizer_free(opt);

    // Plain Adam with the same weight_decay and g = 0 is not a shrink: the L2 gradient wd·w goes
    // through the moments, and step 1 moves every w by lr·sign(w).
    p.kind = FNET_OPTIM_ADAM;
    opt = make_opt(ctx, &p, n);
    fnet_test_fill_uniform(w, n, -1.0f, 1.0f, 3);
    for (int64_t i = 0; i < n; i++)
        expect[i] = w[i] - p.lr * (w[i] > 0.0f ? 1.0f : -1.0f);
    to_backend(ctx, bw, w, n);
    fnet_assert_ok(ctx, fnet_optimizer_step(opt, bw, bg));
    to_host(ctx, w, bw, n);
    fnet_assert_allclose(w, expect, n, 1e-5, 1e-6);
    fnet_optimizer_free(opt);
    fnet_backend_free(ctx, bw);
    fnet_backend_free(ctx, bg);
    free(zeros);
    free(w);
    free(expect);
    fnet_ctx_free(ctx);
}

static double quadratic(const double *a, const float *w, int64_t n)
{
    double f = 0.0;
    for (int64_t i = 0; i < n; i++)
        f += 0.5 * a[i] * (double)w[i] * (double)w[i];
    return f;
}

// f(w) = ½ Σ a_i w_i², a_i in [0.5, 2], from w ~ U(−1, 1): 200 steps bring f down 100-fold.
static void test_every_kind_minimizes_a_convex_quadratic(void **state)
{
    (void)state;
    fnet_ctx *ctx = test_ctx();
    const int64_t n = 64;
    double *a = alloc_doubles(n);
    float *w = alloc_floats(n), *g = alloc_floats(n);
    float *bw = fnet_test_upload(ctx, NULL, n), *bg = fnet_test_upload(ctx, NULL, n);
    for (int k = 0; k < NUM_FIRST_ORDER; k++) {
        fnet_optim_params p = fnet_optim_params_default(first_order[k]);
        p.lr = first_order[k] == FNET_OPTIM_SGD ? 0.1f
               : first_order[k] == FNET_OPTIM_RMSPROP ? 0.01f
                                                      : 0.05f;
        fnet_optimizer *opt = make_opt(ctx, &p, n);
        fnet_test_fill_uniform(w, n, -1.0f, 1.0f, 21);
        fnet_test_fill_uniform(g, n, 0.5f, 2.0f, 22);
        for (int64_t i = 0; i < n; i++)
            a[i] = g[i];
        double f0 = quadratic(a, w, n);
        to_backend(ctx, bw, w, n);
        for (int step = 0; step < 200; step++) {
            for (int64_t i = 0; i < n; i++)
                g[i] = (float)(a[i] * w[i]);
            to_backend(ctx, bg, g, n);
            fnet_assert_ok(ctx, fnet_optimizer_step(opt, bw, bg));
            to_host(ctx, w, bw, n);
        }
        double f = quadratic(a, w, n);
        if (!(f < 1e-2 * f0))
            fail_msg("%s: f went from %g to %g in 200 steps", fnet_optim_kind_name(p.kind), f0,
                     f);
        fnet_optimizer_free(opt);
    }
    fnet_backend_free(ctx, bw);
    fnet_backend_free(ctx, bg);
    free(a);
    free(w);
    free(g);
    fnet_ctx_free(ctx);
}

static void test_step_never_allocates(void **state)
{
    (void)state;
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    const int64_t n = 1000;
    float *hw = alloc_floats(n), *hg = alloc_floats(n);
    fnet_test_fill_uniform(hg, n, -1.0f, 1.0f, 8);
    float *w = fnet_test_upload(ctx, hw, n), *g = fnet_test_upload(ctx, hg, n);
    for (int k = 0; k < NUM_FIRST_ORDER; k++) {
        fnet_optim_params p = fnet_optim_params_default(first_order[k]);
        fnet_optimizer *opt = make_opt(ctx, &p, n);
        long before = fnet_debug_alloc_count();
        for (int step = 0; step < 10; step++)
            fnet_assert_ok(ctx, fnet_optimizer_step(opt, w, g));
        assert_int_equal(fnet_debug_alloc_count(), before);
        fnet_optimizer_free(opt);
    }
    fnet_backend_free(ctx, w);
    fnet_backend_free(ctx, g);
    free(hw);
    free(hg);
    fnet_ctx_free(ctx);
}

// ---------------------------------------------------------------------------------------------

struct bad_case {
    fnet_optim_kind kind;
    fnet_schedule schedule;
    size_t offset; // of a float field
    float value;
    const char *message; // expected inside the last error
};

static void check_invalid(fnet_ctx *ctx, const fnet_optim_params *p, int64_t n,
                           fnet_status expected, const char *message)
{
    fnet_optimizer *sentinel = (fnet_optimizer *)&sentinel, *opt = sentinel;
    long before = fnet_debug_alloc_count();
    fnet_status st = fnet_optimizer_create(ctx, p, n, &opt);
    if (st != expected)
        fail_msg("expected status %d for \"%s\", got %d (%s)", (int)expected, message, (int)st,
                 fnet_ctx_last_error(ctx));
    assert_null(opt);
    assert_int_equal(fnet_debug_alloc_count(), before); // refused before allocating
    const char *err = fnet_ctx_last_error(ctx);
    assert_true(strncmp(err, "optimizer.c:", 12) == 0);
    if (strstr(err, message) == NULL)
        fail_msg("last error \"%s\" does not say \"%s\"", err, message);
}

static void test_create_rejects_each_invalid_field(void **state)
{
    (void)state;
    fnet_ctx *ctx = test_ctx();
    const fnet_schedule C = FNET_SCHEDULE_CONSTANT;
    const struct bad_case cases[] = {
        {FNET_OPTIM_SGD, C, offsetof(fnet_optim_params, lr), -0.1f,
         "lr must be positive and finite, got -0.1"},
        {FNET_OPTIM_SGD, C, offsetof(fnet_optim_params, lr), 0.0f, "lr must be positive"},
        {FNET_OPTIM_ADAM, C, offsetof(fnet_optim_params, lr), NAN, "lr must be positive"},
        {FNET_OPTIM_ADAMW, C, offsetof(fnet_optim_params, lr), INFINITY, "lr must be positive"},
        {FNET_OPTIM_MOMENTUM, C, offsetof(fnet_optim_params, momentum), 1.0f,
         "momentum must be in [0, 1), got 1"},
        {FNET_OPTIM_NESTEROV, C, offsetof(fnet_optim_params, momentum), -0.1f, "momentum"},
        {FNET_OPTIM_MOMENTUM, C, offsetof(fnet_optim_params, momentum), NAN, "momentum"},
        {FNET_OPTIM_ADAM, C, offsetof(fnet_optim_params, beta1), 1.0f,
         "beta1 must be in [0, 1), got 1"},
        {FNET_OPTIM_ADAMW, C, offsetof(fnet_optim_params, beta1), -0.5f, "beta1"},
        {FNET_OPTIM_ADAM, C, offsetof(fnet_optim_params, beta2), 1.0f, "beta2"},
        {FNET_OPTIM_ADAMW, C, offsetof(fnet_optim_params, beta2), NAN, "beta2"},
        {FNET_OPTIM_ADAM, C, offsetof(fnet_optim_params, eps), 0.0f,
         "eps must be positive and finite, got 0"},
        {FNET_OPTIM_RMSPROP, C, offsetof(fnet_optim_params, eps), -1e-8f, "eps"},
        {FNET_OPTIM_ADAMW, C, offsetof(fnet_optim_params, eps), INFINITY, "eps"},
        {FNET_OPTIM_RMSPROP, C, offsetof(fnet_optim_params, rho), 1.0f,
         "rho must be in [0, 1), got 1"},
        {FNET_OPTIM_RMSPROP, C, offsetof(fnet_optim_params, rho), -0.1f, "rho"},
        {FNET_OPTIM_SGD, C, offsetof(fnet_optim_params, weight_decay), -0.01f,
         "weight_decay must be non-negative and finite, got -0.01"},
        {FNET_OPTIM_ADAMW, C, offsetof(fnet_optim_params, weight_decay), INFINITY,
         "weight_decay"},
        {FNET_OPTIM_ADAM, C, offsetof(fnet_optim_params, weight_decay), NAN, "weight_decay"},
        {FNET_OPTIM_SGD, FNET_SCHEDULE_STEP, offsetof(fnet_optim_params, gamma), 0.0f,
         "gamma must be in (0, 1], got 0"},
        {FNET_OPTIM_ADAM, FNET_SCHEDULE_STEP, offsetof(fnet_optim_params, gamma), 1.5f,
         "gamma"},
        {FNET_OPTIM_SGD, FNET_SCHEDULE_COSINE, offsetof(fnet_optim_params, lr_min), -0.1f,
         "lr_min must be in [0, lr = 0.01], got -0.1"},
        {FNET_OPTIM_ADAM, FNET_SCHEDULE_COSINE, offsetof(fnet_optim_params, lr_min), 0.5f,
         "lr_min"},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        fnet_optim_params p = fnet_optim_params_default(cases[c].kind);
        p.schedule = cases[c].schedule;
        memcpy((char *)&p + cases[c].offset, &cases[c].value, sizeof(float));
        check_invalid(ctx, &p, 100, FNET_ERR_INVALID_ARG, cases[c].message);
    }

    fnet_optim_params p = fnet_optim_params_default(FNET_OPTIM_SGD);
    p.schedule = FNET_SCHEDULE_STEP;
    p.step_epochs = 0;
    check_invalid(ctx, &p, 100, FNET_ERR_INVALID_ARG, "step_epochs must be at least 1, got 0");
    p = fnet_optim_params_default(FNET_OPTIM_SGD);
    p.schedule = (fnet_schedule)9;
    check_invalid(ctx, &p, 100, FNET_ERR_INVALID_ARG, "schedule 9");
    p = fnet_optim_params_default(FNET_OPTIM_SGD);
    p.kind = (fnet_optim_kind)42;
    check_invalid(ctx, &p, 100, FNET_ERR_INVALID_ARG, "kind 42");
    p = fnet_optim_params_default(FNET_OPTIM_ADAM);
    check_invalid(ctx, &p, 0, FNET_ERR_INVALID_ARG, "n must be at least 1, got 0");
    check_invalid(ctx, &p, -3, FNET_ERR_INVALID_ARG, "n must be at least 1, got -3");
    check_invalid(ctx, NULL, 100, FNET_ERR_INVALID_ARG, "params must not be NULL");

    // Fields the kind does not use are not checked (as torch.optim takes only its own).
    p = fnet_optim_params_default(FNET_OPTIM_SGD);
    p.momentum = 5.0f;
    p.beta1 = -1.0f;
    p.eps = 0.0f;
    fnet_optimizer *opt = make_opt(ctx, &p, 10);
    fnet_optimizer_free(opt);

    assert_int_equal(fnet_optimizer_create(ctx, &p, 10, NULL), FNET_ERR_INVALID_ARG);
    opt = (fnet_optimizer *)&opt;
    assert_int_equal(fnet_optimizer_create(NULL, &p, 10, &opt), FNET_ERR_INVALID_ARG);
    assert_null(opt);
    fnet_ctx_free(ctx);
}

static void test_lbfgs_and_cg_are_unsupported(void **state)
{
    (void)state;
    fnet_ctx *ctx = test_ctx();
    fnet_optim_params p = fnet_optim_params_default(FNET_OPTIM_LBFGS);
    check_invalid(ctx, &p, 100, FNET_ERR_UNSUPPORTED, "L-BFGS is not built yet");
    p = fnet_optim_params_default(FNET_OPTIM_CG);
    check_invalid(ctx, &p, 100, FNET_ERR_UNSUPPORTED, "CG is not built yet");
    fnet_ctx_free(ctx);
}

// Fail the k-th allocation of create for k = 1, 2, ...: out of memory (and nothing kept, which
// ASan's leak check sees) until k passes the number of allocations create makes.
static void test_create_reports_out_of_memory_at_every_allocation(void **state)
{
    (void)state;
    fnet_ctx *ctx = test_ctx();
    for (int k = 0; k < NUM_FIRST_ORDER; k++) {
        fnet_optim_params p = fnet_optim_params_default(first_order[k]);
        long before = fnet_debug_alloc_count();
        fnet_optimizer_free(make_opt(ctx, &p, 1000));
        long allocations = fnet_debug_alloc_count() - before;
        assert_true(allocations >= 1);
        long failures = 0;
        for (long fail_at = 1;; fail_at++) {
            fnet_optimizer *opt = (fnet_optimizer *)&opt;
            fnet_debug_fail_alloc(fail_at);
            fnet_status st = fnet_optimizer_create(ctx, &p, 1000, &opt);
            fnet_debug_fail_alloc(0);
            if (st == FNET_OK) {
                assert_non_null(opt);
                fnet_optimizer_free(opt);
                break;
            }
            assert_int_equal(st, FNET_ERR_OUT_OF_MEMORY);
            assert_null(opt);
            assert_non_null(strstr(fnet_ctx_last_error(ctx), "optimizer"));
            failures++;
            assert_true(fail_at <= allocations);
        }
        assert_int_equal(failures, allocations);
    }
    fnet_ctx_free(ctx);
}

// ---------------------------------------------------------------------------------------------

static void test_states_have_documented_names(void **state)
{
    (void)state;
    fnet_ctx *ctx = test_ctx();
    static const struct {
        fnet_optim_kind kind;
        int count;
        const char *names[2];
    } expect[] = {
        {FNET_OPTIM_SGD, 0, {NULL, NULL}},
        {FNET_OPTIM_MOMENTUM, 1, {"velocity", NULL}},
        {FNET_OPTIM_NESTEROV, 1, {"velocity", NULL}},
        {FNET_OPTIM_RMSPROP, 1, {"square_avg", NULL}},
        {FNET_OPTIM_ADAM, 2, {"m", "v"}},
        {FNET_OPTIM_ADAMW, 2, {"m", "v"}},
    };
    const int64_t n = 37;
    float *zeros = alloc_floats(n);
    for (size_t e = 0; e < sizeof(expect) / sizeof(expect[0]); e++) {
        fnet_optim_params p = fnet_optim_params_default(expect[e].kind);
        fnet_optimizer *opt = make_opt(ctx, &p, n);
        assert_int_equal(fnet_optimizer_num_states(opt), expect[e].count);
        for (int i = 0; i < expect[e].count; i++) {
            const char *name = NULL;
            assert_non_null(fnet_optimizer_state(opt, i, &name));
            assert_string_equal(name, expect[e].names[i]);
            float *s = state_copy(ctx, opt, i, n);
            fnet_assert_allclose(s, zeros, n, 0.0, 0.0); // zero before the first step
            free(s);
        }
        const char *name = "x";
        assert_null(fnet_optimizer_state(opt, expect[e].count, &name));
        assert_null(name);
        assert_null(fnet_optimizer_state(opt, -1, NULL));
        fnet_optimizer_free(opt);
    }
    free(zeros);
    fnet_ctx_free(ctx);
}

// A checkpointed Adam (m, v, steps) resumed in a fresh optimizer takes the same next step; without
// set_steps its bias correction would restart at t = 1 and the step would differ.
static void test_set_steps_resumes_adam_exactly(void **state)
{
    (void)state;
    fnet_ctx *ctx = test_ctx();
    const int64_t n = 37;
    fnet_optim_params p = fnet_optim_params_default(FNET_OPTIM_ADAM);
    fnet_optimizer *a = make_opt(ctx, &p, n), *b = make_opt(ctx, &p, n), *c = make_opt(ctx, &p, n);
    float *wa = alloc_floats(n), *wb = alloc_floats(n), *wc = alloc_floats(n);
    float *g = alloc_floats(n);
    fnet_test_fill_uniform(wa, n, -1.0f, 1.0f, 1);
    float *bwa = fnet_test_upload(ctx, wa, n), *bg = fnet_test_upload(ctx, NULL, n);
    for (int step = 0; step < 3; step++) {
        fnet_test_fill_uniform(g, n, -1.0f, 1.0f, 50 + (uint64_t)step);
        to_backend(ctx, bg, g, n);
        fnet_assert_ok(ctx, fnet_optimizer_step(a, bwa, bg));
    }
    assert_int_equal(fnet_optimizer_steps(a), 3);
    for (int i = 0; i < 2; i++) { // the checkpoint's way: through host copies
        float *s = state_copy(ctx, a, i, n);
        fnet_assert_ok(ctx, fnet_optimizer_set_state(b, i, s));
        fnet_assert_ok(ctx, fnet_optimizer_set_state(c, i, s));
        free(s);
    }
    fnet_assert_ok(ctx, fnet_optimizer_set_steps(b, 3));
    assert_int_equal(fnet_optimizer_steps(b), 3);
    to_host(ctx, wa, bwa, n);
    float *bwb = fnet_test_upload(ctx, wa, n), *bwc = fnet_test_upload(ctx, wa, n);
    fnet_test_fill_uniform(g, n, -1.0f, 1.0f, 99);
    to_backend(ctx, bg, g, n);
    fnet_assert_ok(ctx, fnet_optimizer_step(a, bwa, bg));
    fnet_assert_ok(ctx, fnet_optimizer_step(b, bwb, bg));
    fnet_assert_ok(ctx, fnet_optimizer_step(c, bwc, bg));
    to_host(ctx, wa, bwa, n);
    to_host(ctx, wb, bwb, n);
    to_host(ctx, wc, bwc, n);
    fnet_assert_allclose(wb, wa, n, 0.0, 0.0);
    assert_int_equal(fnet_optimizer_steps(b), 4);
    double diff = 0.0;
    for (int64_t i = 0; i < n; i++)
        diff += fabs((double)wc[i] - (double)wa[i]);
    assert_true(diff > 1e-4);

    assert_int_equal(fnet_optimizer_set_steps(b, -1), FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_optimizer_steps(b), 4);
    fnet_backend_free(ctx, bwa);
    fnet_backend_free(ctx, bwb);
    fnet_backend_free(ctx, bwc);
    fnet_backend_free(ctx, bg);
    free(wa);
    free(wb);
    free(wc);
    free(g);
    fnet_optimizer_free(a);
    fnet_optimizer_free(b);
    fnet_optimizer_free(c);
    fnet_ctx_free(ctx);
}

static void test_set_lr_validates_and_applies(void **state)
{
    (void)state;
    fnet_ctx *ctx = test_ctx();
    fnet_optim_params p = fnet_optim_params_default(FNET_OPTIM_SGD);
    fnet_optimizer *opt = make_opt(ctx, &p, 2);
    fnet_assert_close(fnet_optimizer_lr(opt), 0.01f, 0.0, 0.0);
    fnet_assert_ok(ctx, fnet_optimizer_set_lr(opt, 0.5f));
    fnet_assert_close(fnet_optimizer_lr(opt), 0.5, 0.0, 0.0);
    float *w = fnet_test_upload(ctx, (const float[]){1.0f, -2.0f}, 2);
    float *g = fnet_test_upload(ctx, (const float[]){0.5f, 0.25f}, 2);
    float hw[2];
    fnet_assert_ok(ctx, fnet_optimizer_step(opt, w, g)); // w − 0.5·g = (0.75, −2.125)
    to_host(ctx, hw, w, 2);
    fnet_assert_allclose(hw, ((float[]){0.75f, -2.125f}), 2, 0.0, 0.0);

    assert_int_equal(fnet_optimizer_set_lr(opt, -1.0f), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "lr must be non-negative and finite"));
    assert_int_equal(fnet_optimizer_set_lr(opt, NAN), FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_optimizer_set_lr(opt, INFINITY), FNET_ERR_INVALID_ARG);
    fnet_assert_close(fnet_optimizer_lr(opt), 0.5, 0.0, 0.0);
    // 0 is allowed (a schedule may anneal to lr_min = 0) and leaves w as it is
    fnet_assert_ok(ctx, fnet_optimizer_set_lr(opt, 0.0f));
    fnet_assert_ok(ctx, fnet_optimizer_step(opt, w, g));
    to_host(ctx, hw, w, 2);
    fnet_assert_allclose(hw, ((float[]){0.75f, -2.125f}), 2, 0.0, 0.0);
    assert_int_equal(fnet_optimizer_steps(opt), 2);

    // bad step arguments change nothing
    assert_int_equal(fnet_optimizer_step(opt, NULL, g), FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_optimizer_step(opt, w, NULL), FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_optimizer_step(opt, w, w), FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_optimizer_step(NULL, w, g), FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_optimizer_steps(opt), 2);
    fnet_backend_free(ctx, w);
    fnet_backend_free(ctx, g);
    fnet_optimizer_free(opt);
    fnet_optimizer_free(NULL);
    fnet_ctx_free(ctx);
}

static void test_defaults_follow_the_header(void **state)
{
    (void)state;
    for (int k = 0; k <= FNET_OPTIM_CG; k++) {
        fnet_optim_kind kind = (fnet_optim_kind)k;
        fnet_optim_params p = fnet_optim_params_default(kind);
        bool adaptive =
            kind == FNET_OPTIM_ADAM || kind == FNET_OPTIM_ADAMW || kind == FNET_OPTIM_RMSPROP;
        assert_int_equal(p.kind, kind);
        fnet_assert_close(p.lr, adaptive ? 1e-3 : 1e-2, 1e-7, 0.0);
        fnet_assert_close(p.momentum, 0.9, 1e-7, 0.0);
        fnet_assert_close(p.beta1, 0.9, 1e-7, 0.0);
        fnet_assert_close(p.beta2, 0.999, 1e-7, 0.0);
        fnet_assert_close(p.eps, kind == FNET_OPTIM_RMSPROP ? 1e-7 : 1e-8, 1e-7, 0.0);
        fnet_assert_close(p.rho, 0.9, 1e-7, 0.0);
        fnet_assert_close(p.weight_decay, kind == FNET_OPTIM_ADAMW ? 0.01 : 0.0, 1e-7, 0.0);
        assert_int_equal(p.schedule, FNET_SCHEDULE_CONSTANT);
        assert_int_equal(p.step_epochs, 10);
        fnet_assert_close(p.gamma, 0.1, 1e-7, 0.0);
        fnet_assert_close(p.lr_min, 0.0, 0.0, 0.0);
    }
}

static void test_kind_names_parse_back(void **state)
{
    (void)state;
    static const char *const names[] = {"sgd",  "momentum", "nesterov", "rmsprop",
                                        "adam", "adamw",    "lbfgs",    "cg"};
    for (int k = 0; k < 8; k++) {
        fnet_optim_kind kind = FNET_OPTIM_SGD;
        assert_int_equal(fnet_optim_kind_parse(names[k], &kind), FNET_OK);
        assert_int_equal(kind, k);
        assert_string_equal(fnet_optim_kind_name(kind), names[k]);
    }
    fnet_optim_kind kind = FNET_OPTIM_ADAM;
    assert_int_equal(fnet_optim_kind_parse("adamax", &kind), FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_optim_kind_parse("", &kind), FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_optim_kind_parse(NULL, &kind), FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_optim_kind_parse("sgd", NULL), FNET_ERR_INVALID_ARG);
    assert_int_equal(kind, FNET_OPTIM_ADAM); // untouched on failure
    assert_string_equal(fnet_optim_kind_name((fnet_optim_kind)99), "unknown");
}

static void test_schedules_follow_their_formulas(void **state)
{
    (void)state;
    fnet_optim_params p = fnet_optim_params_default(FNET_OPTIM_SGD);
    p.lr = 0.1f;
    for (int e = 0; e < 50; e += 7)
        fnet_assert_close(fnet_schedule_lr(&p, e, 50), 0.1, 1e-7, 0.0);

    // STEP, step_epochs 3, γ 0.5: lr·0.5^⌊e/3⌋
    p.schedule = FNET_SCHEDULE_STEP;
    p.step_epochs = 3;
    p.gamma = 0.5f;
    static const struct {
        int epoch;
        double lr;
    } step[] = {{0, 0.1}, {2, 0.1}, {3, 0.05}, {5, 0.05}, {6, 0.025}, {10, 0.0125}, {-1, 0.1}};
    for (size_t i = 0; i < sizeof(step) / sizeof(step[0]); i++)
        fnet_assert_close(fnet_schedule_lr(&p, step[i].epoch, 20), step[i].lr, 1e-6, 0.0);

    // COSINE over 10 epochs from 0.1 to 0.01: 0.01 + 0.045·(1 + cos(π·e/10))
    p.schedule = FNET_SCHEDULE_COSINE;
    p.lr_min = 0.01f;
    const double pi = 3.14159265358979323846;
    for (int e = 0; e <= 10; e++) {
        double expect = (double)p.lr_min +
                        0.5 * ((double)p.lr - (double)p.lr_min) * (1.0 + cos(pi * e / 10.0));
        fnet_assert_close(fnet_schedule_lr(&p, e, 10), expect, 1e-6, 0.0);
    }
    fnet_assert_close(fnet_schedule_lr(&p, 0, 10), 0.1, 1e-6, 0.0);
    fnet_assert_close(fnet_schedule_lr(&p, 5, 10), 0.055, 1e-6, 0.0);
    fnet_assert_close(fnet_schedule_lr(&p, 10, 10), 0.01, 1e-6, 0.0);
    fnet_assert_close(fnet_schedule_lr(&p, 3, 1), p.lr, 0.0, 0.0); // epochs <= 1: lr
    fnet_assert_close(fnet_schedule_lr(&p, 0, 0), p.lr, 0.0, 0.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_kind_matches_double_reference),
        cmocka_unit_test(test_sgd_step_matches_hand_values),
        cmocka_unit_test(test_momentum_and_nesterov_match_hand_values),
        cmocka_unit_test(test_rmsprop_step_matches_hand_values),
        cmocka_unit_test(test_adam_steps_match_hand_values),
        cmocka_unit_test(test_adamw_step_matches_hand_values),
        cmocka_unit_test(test_cpu_backend_equals_reference_exactly),
        cmocka_unit_test(test_adamw_decay_is_decoupled),
        cmocka_unit_test(test_every_kind_minimizes_a_convex_quadratic),
        cmocka_unit_test(test_step_never_allocates),
        cmocka_unit_test(test_create_rejects_each_invalid_field),
        cmocka_unit_test(test_lbfgs_and_cg_are_unsupported),
        cmocka_unit_test(test_create_reports_out_of_memory_at_every_allocation),
        cmocka_unit_test(test_states_have_documented_names),
        cmocka_unit_test(test_set_steps_resumes_adam_exactly),
        cmocka_unit_test(test_set_lr_validates_and_applies),
        cmocka_unit_test(test_defaults_follow_the_header),
        cmocka_unit_test(test_kind_names_parse_back),
        cmocka_unit_test(test_schedules_follow_their_formulas),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
