/* Tests of pruning (src/sparse/prune.c, prune_train.c, the mask in src/core/model.c and
 * src/io/checkpoint.c): magnitude pruning keeps exactly round(s·N) of the smallest weights per
 * layer or over the model and never unprunes; masked weights, gradients and optimizer state stay
 * exactly zero under every optimizer and solver; pruned checkpoints round-trip and bad masks are
 * refused; structured pruning equals the masked network; bad input; the three schedules. On the
 * backend FNET_TEST_BACKEND names (else cpu), through host copies only. */
#include "test_util.h"
#include "io/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N_IN 16
#define CLASSES 4
#define MLP "dense:24,relu,dense:4"
// dense, low-rank and TT (16 -> 16 as 4x4 -> 4x4) layers, each with a bias
#define MIXED "dense:16,relu,lowrank:16:rank=3,tanh,tt:16:rank=2:in=4x4:out=4x4,relu,dense:4"
// structured pruning: the shrunk model against the masked original
#define STRUCT_RTOL 1e-5
#define STRUCT_ATOL 1e-6
#define MAX_STEPS 256

static fnet_ctx *ctx;

static int setup(void **state)
{
    (void)state;
    ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fnet_ctx_free(ctx);
    return 0;
}

// ---------------------------------------------------------------- helpers

static fnet_model *make_model(const char *spec, uint64_t seed)
{
    fnet_model *m = NULL;
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, spec, N_IN, seed, &m));
    return m;
}

// A host copy (free()) of the model's mask (all 1 without one).
static float *mask_copy(const fnet_model *m)
{
    int64_t n = fnet_model_num_params(m);
    float *mask = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    assert_non_null(mask);
    fnet_assert_ok(ctx, fnet_model_get_mask(m, mask));
    return mask;
}

// For every parameter: the layer it belongs to when it is prunable (a tensor with `decay` set,
// not a sparse layer's), else -1. From the tensor infos, independently of the library's count.
static int *prunable_layer(fnet_model *m)
{
    int64_t n = fnet_model_num_params(m);
    int *layer = malloc((size_t)(n > 0 ? n : 1) * sizeof(int));
    assert_non_null(layer);
    for (int64_t i = 0; i < n; i++)
        layer[i] = -1;
    for (int i = 0; i < fnet_model_num_layers(m); i++) {
        const fnet_layer *l = fnet_model_layer(m, i);
        int64_t base = fnet_model_layer_offset(m, i);
        for (int j = 0; j < fnet_layer_num_tensors(l); j++) {
            fnet_tensor_info t;
            fnet_assert_ok(ctx, fnet_layer_tensor(l, j, &t));
            if (!t.decay || fnet_layer_kind_of(l) == FNET_LAYER_SPARSE)
                continue;
            for (int64_t k = 0; k < t.numel; k++)
                layer[base + t.offset + k] = i;
        }
    }
    return layer;
}

static int64_t count_zeros(const float *mask, int64_t n)
{
    int64_t z = 0;
    for (int64_t i = 0; i < n; i++)
        z += mask[i] == 0.0f;
    return z;
}

// The pruned count the library reports, checked against the mask's zeros.
static int64_t pruned_now(const fnet_model *m)
{
    int64_t pruned = -1, prunable = -1;
    fnet_assert_ok(ctx, fnet_model_pruned(m, &pruned, &prunable));
    return pruned;
}

// Every parameter masked by mask (host) is exactly zero in the model.
static void assert_masked_zero(const fnet_model *m, const float *mask)
{
    int64_t n = fnet_model_num_params(m);
    float *w = fnet_test_model_params(m);
    for (int64_t i = 0; i < n; i++)
        if (mask[i] == 0.0f && w[i] != 0.0f)
            fail_msg("parameter %lld is %.9g where it is pruned", (long long)i, (double)w[i]);
    free(w);
}

static void assert_same_floats(const float *a, const float *b, int64_t n)
{
    assert_memory_equal(a, b, (size_t)n * sizeof(float)); // bit for bit
}

// The model's parameters and mask are bit for bit w and mask (host).
static void assert_model_is(const fnet_model *m, const float *w, const float *mask)
{
    int64_t n = fnet_model_num_params(m);
    float *w2 = fnet_test_model_params(m), *mask2 = mask_copy(m);
    assert_same_floats(w2, w, n);
    assert_same_floats(mask2, mask, n);
    free(mask2);
    free(w2);
}

// Outputs (host, free()) of the model on x (host, batch × n_in).
static float *outputs(fnet_model *m, const float *x, int64_t batch)
{
    int64_t n_out = fnet_model_n_out(m);
    float *xd = fnet_test_upload(ctx, x, batch * fnet_model_n_in(m));
    float *y = malloc((size_t)(batch * n_out) * sizeof(float));
    assert_non_null(y);
    fnet_assert_ok(ctx, fnet_model_forward(m, xd, batch, y));
    fnet_backend_free(ctx, xd);
    return y;
}

static float *random_inputs(int64_t batch, uint64_t seed)
{
    float *x = malloc((size_t)(batch * N_IN) * sizeof(float));
    assert_non_null(x);
    fnet_test_fill_uniform(x, batch * N_IN, -1.0f, 1.0f, seed);
    return x;
}

// Well separated classes: class c lights up pixels j with j % 4 == c.
static fnet_dataset *make_data(int64_t n, uint64_t seed)
{
    return fnet_test_class_data(ctx, n, N_IN, CLASSES, 200, 40, 60, seed);
}

static void expect_status(fnet_status st, fnet_status want, const char *what)
{
    if (st != want)
        fail_msg("%s: status %d (%s), want %d: %s", what, (int)st, fnet_status_str(st), (int)want,
                 fnet_ctx_last_error(ctx));
}

// ---------------------------------------------------------------- magnitude pruning: counts

// Prune a fresh model of `spec` to s with scope and check: exactly llround(s·N) pruned per group
// (the whole model, or each layer), what fnet_model_pruned() says, biases kept, pruned weights
// exactly zero, kept ones untouched, and every pruned |w| <= every kept |w| within a group.
static void check_exact_fraction(const char *spec, fnet_prune_scope scope, double s)
{
    fnet_model *m = make_model(spec, 3);
    int64_t n = fnet_model_num_params(m);
    int L = fnet_model_num_layers(m);
    int *layer = prunable_layer(m);
    float *w0 = fnet_test_model_params(m);
    fnet_assert_ok(ctx, fnet_prune_magnitude(m, s, scope, NULL));
    float *w = fnet_test_model_params(m), *mask = mask_copy(m);

    int groups = scope == FNET_PRUNE_GLOBAL ? 1 : L;
    int64_t total = 0, total_pruned = 0;
    for (int g = 0; g < groups; g++) {
        int64_t count = 0, pruned = 0;
        double max_pruned = -1.0, min_kept = INFINITY;
        for (int64_t i = 0; i < n; i++) {
            if (layer[i] < 0 || (scope == FNET_PRUNE_LAYER && layer[i] != g))
                continue;
            count++;
            double a = fabs((double)w0[i]);
            if (mask[i] == 0.0f) {
                pruned++;
                max_pruned = a > max_pruned ? a : max_pruned;
            } else {
                min_kept = a < min_kept ? a : min_kept;
            }
        }
        if (pruned != llround(s * (double)count))
            fail_msg("%s, scope %s, sparsity %g, group %d: %lld of %lld pruned, want %lld", spec,
                     fnet_prune_scope_name(scope), s, g, (long long)pruned, (long long)count,
                     (long long)llround(s * (double)count));
        if (!(max_pruned <= min_kept))
            fail_msg("%s, scope %s, sparsity %g, group %d: a pruned |w| %.9g above a kept |w| "
                     "%.9g", spec, fnet_prune_scope_name(scope), s, g, max_pruned, min_kept);
        total += count;
        total_pruned += pruned;
    }
    for (int64_t i = 0; i < n; i++) {
        assert_true(mask[i] == 0.0f || mask[i] == 1.0f);
        if (layer[i] < 0)
            assert_true(mask[i] == 1.0f); // biases are never pruned
        if (mask[i] == 0.0f)
            assert_true(w[i] == 0.0f);
        else
            assert_true(w[i] == w0[i]);
    }
    int64_t pruned = -1, prunable = -1;
    fnet_assert_ok(ctx, fnet_model_pruned(m, &pruned, &prunable));
    assert_int_equal(prunable, total);
    assert_int_equal(pruned, total_pruned);
    assert_int_equal(count_zeros(mask, n), total_pruned);
    if (scope == FNET_PRUNE_GLOBAL)
        assert_int_equal(pruned, llround(s * (double)total));

    free(mask);
    free(w);
    free(w0);
    free(layer);
    fnet_model_free(m);
}

static void test_prune_magnitude_prunes_exact_fraction_of_smallest_weights(void **state)
{
    (void)state;
    const char *specs[] = {MLP, MIXED};
    const fnet_prune_scope scopes[] = {FNET_PRUNE_GLOBAL, FNET_PRUNE_LAYER};
    const double sparsities[] = {0.0, 0.3, 0.5, 0.9};
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++)
            for (int c = 0; c < 4; c++)
                check_exact_fraction(specs[a], scopes[b], sparsities[c]);
}

static void test_prune_model_pruned_counts_decayed_tensors_of_every_kind(void **state)
{
    (void)state;
    fnet_model *m = make_model(MIXED, 5);
    int64_t pruned = -1, prunable = -1;
    fnet_assert_ok(ctx, fnet_model_pruned(m, &pruned, &prunable));
    assert_int_equal(pruned, 0);
    // dense 16x16; U (16, 3) and V (3, 16); TT cores (1,4,4,2) and (2,4,4,1); dense 4x16
    assert_int_equal(prunable, 16 * 16 + (16 * 3 + 3 * 16) + (32 + 32) + 4 * 16);
    assert_null(fnet_model_mask(m)); // nothing pruned yet
    fnet_model_free(m);
}

// Equal magnitudes everywhere: the count stays exact, and the first positions go first.
static void test_prune_magnitude_breaks_ties_by_position(void **state)
{
    (void)state;
    for (int sc = 0; sc < 2; sc++) {
        fnet_prune_scope scope = sc ? FNET_PRUNE_LAYER : FNET_PRUNE_GLOBAL;
        fnet_model *m = make_model(MIXED, 6);
        int64_t n = fnet_model_num_params(m);
        int L = fnet_model_num_layers(m);
        int *layer = prunable_layer(m);
        float *w = fnet_test_model_params(m);
        for (int64_t i = 0; i < n; i++)
            w[i] = i % 2 ? 0.25f : -0.25f;
        fnet_assert_ok(ctx, fnet_model_set_params(m, w));
        const double s = 0.3;
        fnet_assert_ok(ctx, fnet_prune_magnitude(m, s, scope, NULL));
        float *mask = mask_copy(m);
        for (int g = 0; g < (sc ? L : 1); g++) {
            int64_t count = 0;
            for (int64_t i = 0; i < n; i++)
                count += layer[i] >= 0 && (!sc || layer[i] == g);
            int64_t k = llround(s * (double)count), seen = 0;
            for (int64_t i = 0; i < n; i++) {
                if (layer[i] < 0 || (sc && layer[i] != g))
                    continue;
                if ((seen++ < k) != (mask[i] == 0.0f))
                    fail_msg("scope %s, group %d: prunable weight %lld (parameter %lld) is %s",
                             fnet_prune_scope_name(scope), g, (long long)(seen - 1),
                             (long long)i, mask[i] == 0.0f ? "pruned" : "kept");
            }
        }
        free(mask);
        free(w);
        free(layer);
        fnet_model_free(m);
    }
}

// A higher target keeps what is pruned, even against kept weights that are exactly zero at
// earlier positions; a lower one changes nothing.
static void test_prune_magnitude_never_unprunes(void **state)
{
    (void)state;
    for (int sc = 0; sc < 2; sc++) {
        fnet_prune_scope scope = sc ? FNET_PRUNE_LAYER : FNET_PRUNE_GLOBAL;
        fnet_model *m = make_model(MIXED, 7);
        int64_t n = fnet_model_num_params(m);
        int *layer = prunable_layer(m);
        fnet_assert_ok(ctx, fnet_prune_magnitude(m, 0.3, scope, NULL));
        float *mask1 = mask_copy(m);
        int64_t pruned1 = pruned_now(m);
        assert_int_equal(count_zeros(mask1, n), pruned1);

        // kept weights in the first half of each layer's parameters become exactly zero: more
        // ties with the pruned ones than the next target takes, many at earlier positions
        float *w = fnet_test_model_params(m);
        int64_t zeroed = 0;
        for (int i = 0; i < fnet_model_num_layers(m); i++) {
            int64_t base = fnet_model_layer_offset(m, i);
            int64_t len = fnet_layer_num_params(fnet_model_layer(m, i));
            for (int64_t k = 0; k < len / 2; k++)
                if (layer[base + k] >= 0 && mask1[base + k] == 1.0f) {
                    w[base + k] = 0.0f;
                    zeroed++;
                }
        }
        int64_t prunable;
        fnet_assert_ok(ctx, fnet_model_pruned(m, NULL, &prunable));
        assert_true(pruned1 + zeroed > llround(0.4 * (double)prunable));
        fnet_assert_ok(ctx, fnet_model_set_params(m, w));

        fnet_assert_ok(ctx, fnet_prune_magnitude(m, 0.4, scope, NULL));
        float *mask2 = mask_copy(m);
        for (int64_t i = 0; i < n; i++)
            if (mask1[i] == 0.0f && mask2[i] != 0.0f)
                fail_msg("scope %s: parameter %lld was pruned at 0.3 and is kept at 0.4",
                         fnet_prune_scope_name(scope), (long long)i);
        int64_t pruned2 = pruned_now(m);
        assert_int_equal(count_zeros(mask2, n), pruned2);
        assert_true(pruned2 > pruned1);
        if (scope == FNET_PRUNE_GLOBAL)
            assert_int_equal(pruned2, llround(0.4 * (double)prunable));

        // a lower target, and the same one again: nothing changes
        float *w2 = fnet_test_model_params(m);
        const double lower[] = {0.2, 0.0, 0.4};
        for (int k = 0; k < 3; k++) {
            fnet_assert_ok(ctx, fnet_prune_magnitude(m, lower[k], scope, NULL));
            assert_model_is(m, w2, mask2);
        }

        free(w2);
        free(mask2);
        free(w);
        free(mask1);
        free(layer);
        fnet_model_free(m);
    }
}

// ---------------------------------------------------------------- masked weights stay zero

static const fnet_optim_kind every_kind[] = {
    FNET_OPTIM_SGD,  FNET_OPTIM_MOMENTUM, FNET_OPTIM_NESTEROV, FNET_OPTIM_RMSPROP,
    FNET_OPTIM_ADAM, FNET_OPTIM_ADAMW,    FNET_OPTIM_LBFGS,    FNET_OPTIM_CG,
};
#define NUM_KINDS ((int)(sizeof(every_kind) / sizeof(every_kind[0])))
#define NUM_FIRST_ORDER 6 // the first six of every_kind

static void test_prune_masked_weights_stay_exactly_zero_under_every_optimizer(void **state)
{
    (void)state;
    fnet_dataset *d = make_data(64, 11);
    for (int k = 0; k < NUM_KINDS; k++) {
        fnet_model *m = make_model(MLP, 12);
        int64_t n = fnet_model_num_params(m);
        fnet_assert_ok(ctx, fnet_prune_magnitude(m, 0.5, FNET_PRUNE_GLOBAL, NULL));
        float *mask = mask_copy(m), *w0 = fnet_test_model_params(m);
        fnet_optim_params op = fnet_optim_params_default(every_kind[k]);
        op.iters_per_batch = 3;
        fnet_train_params tp = fnet_train_params_default();
        tp.batch = every_kind[k] >= FNET_OPTIM_LBFGS ? 32 : 16;
        tp.epochs = 2;
        fnet_assert_ok(ctx, fnet_train(m, &op, &tp, d, NULL, NULL, NULL, NULL));

        float *w = fnet_test_model_params(m), *mask2 = mask_copy(m);
        assert_same_floats(mask2, mask, n);
        int64_t moved = 0;
        for (int64_t i = 0; i < n; i++) {
            if (mask[i] == 0.0f && w[i] != 0.0f)
                fail_msg("%s: pruned parameter %lld is %.9g after training",
                         fnet_optim_kind_name(every_kind[k]), (long long)i, (double)w[i]);
            moved += mask[i] == 1.0f && w[i] != w0[i];
        }
        if (moved == 0)
            fail_msg("%s: training moved no kept weight", fnet_optim_kind_name(every_kind[k]));
        free(mask2);
        free(w);
        free(w0);
        free(mask);
        fnet_model_free(m);
    }
    fnet_dataset_free(d);
}

// fnet_prune_magnitude(..., opt) zeroes the state of what it prunes, leaves the rest, and later
// steps keep it zero.
static void test_prune_zeroes_optimizer_state_of_pruned_weights(void **state)
{
    (void)state;
    fnet_dataset *d = make_data(64, 13);
    for (int k = 0; k < NUM_FIRST_ORDER; k++) {
        fnet_optim_kind kind = every_kind[k];
        fnet_model *m = make_model(MLP, 14);
        int64_t n = fnet_model_num_params(m);
        fnet_optim_params op = fnet_optim_params_default(kind);
        fnet_optimizer *opt = NULL;
        fnet_assert_ok(ctx, fnet_optimizer_create(ctx, &op, n, &opt));
        fnet_train_params tp = fnet_train_params_default();
        tp.batch = 16;
        tp.epochs = 1;
        fnet_assert_ok(ctx, fnet_train_with(m, opt, &op, &tp, d, NULL, NULL, NULL, NULL));

        int ns = fnet_optimizer_num_states(opt);
        assert_int_equal(ns, kind == FNET_OPTIM_SGD ? 0 : kind >= FNET_OPTIM_ADAM ? 2 : 1);
        float *before = malloc((size_t)(ns > 0 ? ns : 1) * (size_t)n * sizeof(float));
        float *s = malloc((size_t)n * sizeof(float));
        assert_true(before != NULL && s != NULL);
        for (int i = 0; i < ns; i++)
            fnet_assert_ok(ctx, fnet_optimizer_get_state(opt, i, before + (size_t)i * (size_t)n));

        fnet_assert_ok(ctx, fnet_prune_magnitude(m, 0.6, FNET_PRUNE_GLOBAL, opt));
        float *mask = mask_copy(m);
        assert_true(count_zeros(mask, n) > 0);
        for (int i = 0; i < ns; i++) {
            fnet_assert_ok(ctx, fnet_optimizer_get_state(opt, i, s));
            const float *b = before + (size_t)i * (size_t)n;
            int64_t nonzero = 0;
            for (int64_t j = 0; j < n; j++) {
                if (mask[j] == 0.0f) {
                    if (s[j] != 0.0f)
                        fail_msg("%s state %d: pruned parameter %lld has state %.9g",
                                 fnet_optim_kind_name(kind), i, (long long)j, (double)s[j]);
                    nonzero += b[j] != 0.0f; // the state that pruning removed
                } else {
                    assert_true(s[j] == b[j]); // the rest untouched
                }
            }
            assert_true(nonzero > 0);
        }

        tp.epochs = 2;
        tp.seed = 2;
        fnet_assert_ok(ctx, fnet_train_with(m, opt, &op, &tp, d, NULL, NULL, NULL, NULL));
        assert_masked_zero(m, mask);
        for (int i = 0; i < ns; i++) {
            fnet_assert_ok(ctx, fnet_optimizer_get_state(opt, i, s));
            int64_t kept_nonzero = 0;
            for (int64_t j = 0; j < n; j++) {
                if (mask[j] == 0.0f && s[j] != 0.0f)
                    fail_msg("%s state %d: pruned parameter %lld has state %.9g after training",
                             fnet_optim_kind_name(kind), i, (long long)j, (double)s[j]);
                kept_nonzero += mask[j] == 1.0f && s[j] != 0.0f;
            }
            assert_true(kept_nonzero > 0);
        }
        free(mask);
        free(s);
        free(before);
        fnet_optimizer_free(opt);
        fnet_model_free(m);
    }
    fnet_dataset_free(d);
}

// The gradient is exactly zero where masked, and elsewhere the gradient of the same (zeroed)
// weights without a mask.
static void test_prune_loss_grad_is_exactly_zero_at_masked_positions(void **state)
{
    (void)state;
    const int64_t B = 32;
    fnet_dataset *d = make_data(B, 15);
    float *x = fnet_test_upload(ctx, NULL, B * N_IN);
    int32_t labels[32];
    fnet_assert_ok(ctx, fnet_dataset_batch(d, NULL, 0, B, x, labels));
    const char *specs[] = {MLP, MIXED};
    for (int a = 0; a < 2; a++) {
        fnet_model *m = make_model(specs[a], 16), *plain = make_model(specs[a], 17);
        int64_t n = fnet_model_num_params(m);
        fnet_assert_ok(ctx, fnet_prune_magnitude(m, 0.7, FNET_PRUNE_LAYER, NULL));
        float *mask = mask_copy(m), *w = fnet_test_model_params(m);
        fnet_assert_ok(ctx, fnet_model_set_params(plain, w));
        double loss, loss_plain;
        fnet_assert_ok(ctx, fnet_model_loss_grad(m, x, labels, B, &loss, NULL));
        fnet_assert_ok(ctx, fnet_model_loss_grad(plain, x, labels, B, &loss_plain, NULL));
        assert_true(loss == loss_plain);
        float *g = fnet_test_model_grads(m), *gp = fnet_test_model_grads(plain);
        int64_t masked_nonzero = 0;
        for (int64_t i = 0; i < n; i++) {
            if (mask[i] == 0.0f) {
                if (g[i] != 0.0f)
                    fail_msg("%s: gradient %.9g at pruned parameter %lld", specs[a],
                             (double)g[i], (long long)i);
                masked_nonzero += gp[i] != 0.0f; // what the mask took away
            } else {
                assert_true(g[i] == gp[i]);
            }
        }
        assert_true(masked_nonzero > 0);
        free(gp);
        free(g);
        free(w);
        free(mask);
        fnet_model_free(plain);
        fnet_model_free(m);
    }
    fnet_backend_free(ctx, x);
    fnet_dataset_free(d);
}

// ---------------------------------------------------------------- checkpoints

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

// Where a tensor of a saved file lies: its data (from the file's start) and its shape's text.
struct located {
    size_t begin, end;  // data bytes [begin, end) within the file
    size_t shape_pos;   // the shape array's first byte within the file
};

static struct located locate(const struct fnet_test_bytes *b, const char *name)
{
    uint64_t h = 0;
    for (int i = 7; i >= 0; i--)
        h = h << 8 | b->p[i];
    struct fnet_json_doc *doc = NULL;
    fnet_assert_ok(ctx, fnet_json_parse(ctx, "header", (const char *)b->p + 8, h, 1000, &doc));
    const struct fnet_json *e = fnet_json_get(fnet_json_root(doc), name);
    if (e == NULL)
        fail_msg("the saved file has no tensor '%s'", name);
    const struct fnet_json *off = fnet_json_get(e, "data_offsets");
    struct located at = {
        .begin = 8 + h + (size_t)off->child->integer,
        .end = 8 + h + (size_t)off->child->next->integer,
        .shape_pos = 8 + fnet_json_get(e, "shape")->pos,
    };
    fnet_json_free(doc);
    return at;
}

static void test_prune_checkpoint_round_trip_keeps_mask_params_and_outputs(void **state)
{
    (void)state;
    const char *dir = fnet_test_tmpdir();
    char *path = join(dir, "pruned.safetensors");
    float *x = random_inputs(8, 21);
    const char *specs[] = {MLP, MIXED};
    for (int a = 0; a < 2; a++) {
        fnet_model *m = make_model(specs[a], 22);
        int64_t n = fnet_model_num_params(m);
        fnet_assert_ok(ctx, fnet_prune_magnitude(m, 0.6, FNET_PRUNE_GLOBAL, NULL));
        float *w = fnet_test_model_params(m), *mask = mask_copy(m), *y = outputs(m, x, 8);
        int64_t pruned = pruned_now(m);
        fnet_assert_ok(ctx, fnet_model_save(m, NULL, path));

        fnet_model *loaded = NULL;
        fnet_assert_ok(ctx, fnet_model_load(ctx, path, &loaded));
        assert_string_equal(fnet_model_spec(loaded), fnet_model_spec(m));
        assert_non_null(fnet_model_mask(loaded));
        assert_model_is(loaded, w, mask);
        assert_masked_zero(loaded, mask);
        assert_int_equal(pruned_now(loaded), pruned);
        float *y2 = outputs(loaded, x, 8);
        assert_same_floats(y2, y, 8 * CLASSES);
        free(y2);

        // into a fresh model of the same spec (other weights, no mask)
        fnet_model *fresh = make_model(specs[a], 23);
        assert_null(fnet_model_mask(fresh));
        fnet_assert_ok(ctx, fnet_model_load_params(fresh, NULL, path));
        assert_model_is(fresh, w, mask);
        assert_int_equal(pruned_now(fresh), pruned);
        y2 = outputs(fresh, x, 8);
        assert_same_floats(y2, y, 8 * CLASSES);
        free(y2);

        // and the mask works after loading: training keeps the pruned weights at zero
        fnet_dataset *d = make_data(32, 24);
        fnet_optim_params op = fnet_optim_params_default(FNET_OPTIM_ADAM);
        fnet_train_params tp = fnet_train_params_default();
        tp.epochs = 1;
        tp.batch = 8;
        fnet_assert_ok(ctx, fnet_train(fresh, &op, &tp, d, NULL, NULL, NULL, NULL));
        assert_masked_zero(fresh, mask);
        float *mask2 = mask_copy(fresh);
        assert_same_floats(mask2, mask, n);
        free(mask2);
        fnet_dataset_free(d);

        fnet_model_free(fresh);
        fnet_model_free(loaded);
        free(y);
        free(mask);
        free(w);
        fnet_model_free(m);
    }
    unlink(path);
    rmdir(dir);
    free(path);
    free(x);
}

static void test_prune_checkpoint_rejects_bad_masks_and_keeps_model(void **state)
{
    (void)state;
    const char *dir = fnet_test_tmpdir();
    char *good = join(dir, "good.safetensors"), *bad = join(dir, "bad.safetensors");
    fnet_model *m = make_model(MLP, 31);
    fnet_assert_ok(ctx, fnet_prune_magnitude(m, 0.5, FNET_PRUNE_LAYER, NULL));
    fnet_assert_ok(ctx, fnet_model_save(m, NULL, good));
    float *mask = mask_copy(m);
    struct fnet_test_bytes b = fnet_test_read_file(good);
    struct located wt = locate(&b, "layers.0.weight"), mt = locate(&b, "layers.0.weight_mask");
    assert_int_equal(mt.end - mt.begin, 24 * 16);
    assert_int_equal(wt.end - wt.begin, 4 * 24 * 16);
    // the first pruned and the first kept element of layer 0's weight
    int64_t pruned_at = -1, kept_at = -1;
    for (int64_t k = 0; k < 24 * 16; k++) {
        if (b.p[mt.begin + k] == 0 && pruned_at < 0)
            pruned_at = k;
        if (b.p[mt.begin + k] == 1 && kept_at < 0)
            kept_at = k;
        assert_true(b.p[mt.begin + k] == (mask[k] != 0.0f)); // layer 0 starts the flat vector
    }
    assert_true(pruned_at >= 0 && kept_at >= 0);

    // the model load_params must leave alone: pruned otherwise, with other weights
    fnet_model *target = make_model(MLP, 32);
    fnet_assert_ok(ctx, fnet_prune_magnitude(target, 0.3, FNET_PRUNE_GLOBAL, NULL));
    float *tw = fnet_test_model_params(target), *tmask = mask_copy(target);

    const char *what[] = {"a kept mask element of 2", "a pruned mask element of 2",
                          "a mask of another shape", "a nonzero weight where the mask prunes it"};
    for (int c = 0; c < 4; c++) {
        char want[200]; // the message, besides the path
        if (c < 2)
            snprintf(want, sizeof(want), "tensor 'layers.0.weight_mask': element %lld is 2, not 0 "
                     "or 1", (long long)(c == 0 ? kept_at : pruned_at));
        else if (c == 2)
            snprintf(want, sizeof(want), "tensor 'layers.0.weight_mask': U8 [16, 24] does not "
                     "match its tensor's U8 [24, 16]");
        else
            snprintf(want, sizeof(want), "tensor 'layers.0.weight': element %lld is 0.5 where "
                     "its mask 'layers.0.weight_mask' prunes it", (long long)pruned_at);
        unsigned char *p = malloc(b.n);
        assert_non_null(p);
        memcpy(p, b.p, b.n);
        if (c == 0)
            p[mt.begin + (size_t)kept_at] = 2;
        else if (c == 1)
            p[mt.begin + (size_t)pruned_at] = 2;
        else if (c == 2) {
            assert_memory_equal(p + mt.shape_pos, "[24,16]", 7);
            memcpy(p + mt.shape_pos, "[16,24]", 7);
        } else {
            float v = 0.5f;
            memcpy(p + wt.begin + 4 * (size_t)pruned_at, &v, 4);
        }
        fnet_test_restamp_checksums(p, b.n); // past the checksums, to the mask checks
        fnet_test_write_file(bad, p, b.n);
        free(p);

        fnet_model *out = (fnet_model *)&out; // must be reset to NULL
        fnet_status st = fnet_model_load(ctx, bad, &out);
        const char *msg = fnet_ctx_last_error(ctx);
        if (st != FNET_ERR_FORMAT || strstr(msg, bad) == NULL || strstr(msg, want) == NULL)
            fail_msg("load, %s: status %d (want %d), message '%s' (want the path and '%s')",
                     what[c], (int)st, (int)FNET_ERR_FORMAT, msg, want);
        assert_null(out);

        st = fnet_model_load_params(target, NULL, bad);
        msg = fnet_ctx_last_error(ctx);
        if (st != FNET_ERR_FORMAT || strstr(msg, bad) == NULL || strstr(msg, want) == NULL)
            fail_msg("load_params, %s: status %d (want %d), message '%s' (want the path and "
                     "'%s')", what[c], (int)st, (int)FNET_ERR_FORMAT, msg, want);
        assert_model_is(target, tw, tmask);
    }
    // the unedited file still loads, into the same target
    fnet_assert_ok(ctx, fnet_model_load_params(target, NULL, good));
    float *w = fnet_test_model_params(m);
    assert_model_is(target, w, mask);
    free(w);

    free(tmask);
    free(tw);
    fnet_model_free(target);
    free(b.p);
    free(mask);
    fnet_model_free(m);
    unlink(bad);
    unlink(good);
    rmdir(dir);
    free(bad);
    free(good);
}

// ---------------------------------------------------------------- structured pruning

// Pruned neurons of a dense layer as the test computes them: the k rows of W (n_out, n_in, host)
// of smallest L2 norm, ties by index (lower first).
static void smallest_rows(const float *W, int64_t n_out, int64_t n_in, int64_t k, bool *pruned)
{
    double *norm = malloc((size_t)n_out * sizeof(double));
    assert_non_null(norm);
    for (int64_t r = 0; r < n_out; r++) {
        norm[r] = 0.0;
        for (int64_t c = 0; c < n_in; c++)
            norm[r] += (double)W[r * n_in + c] * (double)W[r * n_in + c];
        pruned[r] = false;
    }
    for (int64_t e = 0; e < k; e++) { // k times the smallest not yet taken
        int64_t best = -1;
        for (int64_t r = 0; r < n_out; r++)
            if (!pruned[r] && (best < 0 || norm[r] < norm[best]))
                best = r;
        pruned[best] = true;
    }
    free(norm);
}

// The offset (in the flat vector) of dense layer i's tensor `name`.
static int64_t tensor_at(fnet_model *m, int i, const char *name)
{
    const fnet_layer *l = fnet_model_layer(m, i);
    for (int j = 0; j < fnet_layer_num_tensors(l); j++) {
        fnet_tensor_info t;
        fnet_assert_ok(ctx, fnet_layer_tensor(l, j, &t));
        if (strcmp(t.name, name) == 0)
            return fnet_model_layer_offset(m, i) + t.offset;
    }
    fail_msg("layer %d has no tensor '%s'", i, name);
    return -1;
}

// dense:24,relu,dense:16,<act>,dense:4 on 16 inputs: fnet_prune_neurons(frac) against the
// original with the test's own choice of neurons masked (rows, bias entries, next layer's
// columns), optionally after magnitude pruning (whose mask the shrunk model keeps).
static void check_structured(const char *act, double frac, double magnitude)
{
    const int64_t width[3] = {24, 16, 4}; // dense layers 0, 2, 4
    char spec[128], want_spec[128];
    snprintf(spec, sizeof(spec), "dense:24,relu,dense:16,%s,dense:4", act);
    fnet_model *m = make_model(spec, 41);
    if (magnitude > 0.0)
        fnet_assert_ok(ctx, fnet_prune_magnitude(m, magnitude, FNET_PRUNE_GLOBAL, NULL));
    int64_t n = fnet_model_num_params(m);
    float *w = fnet_test_model_params(m), *mask = mask_copy(m);
    bool has_mask = fnet_model_mask(m) != NULL;

    fnet_model *small = NULL;
    fnet_assert_ok(ctx, fnet_prune_neurons(m, frac, &small));
    assert_non_null(small);
    assert_model_is(m, w, mask); // the original is unchanged
    assert_true((fnet_model_mask(m) != NULL) == has_mask);

    // the test's choice: hidden dense layers 0 and 2 lose k of their neurons; layer 4 none
    bool pruned[2][24];
    int64_t kept[2];
    int64_t n_in_of[2] = {N_IN, 24};
    for (int h = 0; h < 2; h++) {
        int64_t k = llround(frac * (double)width[h]);
        if (k > width[h] - 1)
            k = width[h] - 1;
        kept[h] = width[h] - k;
        smallest_rows(w + tensor_at(m, 2 * h, "weight"), width[h], n_in_of[h], k, pruned[h]);
    }
    snprintf(want_spec, sizeof(want_spec), "dense:%lld,relu,dense:%lld,%s,dense:4",
             (long long)kept[0], (long long)kept[1], act);
    assert_string_equal(fnet_model_spec(small), want_spec);
    int64_t want_params = (N_IN * kept[0] + kept[0]) + (kept[0] * kept[1] + kept[1]) +
                          (kept[1] * 4 + 4);
    assert_int_equal(fnet_model_num_params(small), want_params);
    assert_true(frac == 0.0 ? want_params == n : want_params < n);

    // mask the original: the pruned rows and bias entries, and the next layer's columns
    bool *removed = calloc((size_t)n, sizeof(bool));
    assert_non_null(removed);
    for (int h = 0; h < 2; h++) {
        int64_t W = tensor_at(m, 2 * h, "weight"), b = tensor_at(m, 2 * h, "bias");
        int64_t Wn = tensor_at(m, 2 * h + 2, "weight"), next_out = width[h + 1];
        for (int64_t r = 0; r < width[h]; r++) {
            if (!pruned[h][r])
                continue;
            for (int64_t c = 0; c < n_in_of[h]; c++)
                removed[W + r * n_in_of[h] + c] = true;
            removed[b + r] = true;
            for (int64_t o = 0; o < next_out; o++)
                removed[Wn + o * width[h] + r] = true;
        }
    }
    float *masked = malloc((size_t)n * sizeof(float));
    assert_non_null(masked);
    for (int64_t i = 0; i < n; i++)
        masked[i] = removed[i] ? 0.0f : mask[i];
    fnet_assert_ok(ctx, fnet_model_set_mask(m, masked));

    float *x = random_inputs(16, 42);
    float *y = outputs(m, x, 16), *ys = outputs(small, x, 16);
    fnet_assert_allclose(ys, y, 16 * CLASSES, STRUCT_RTOL, STRUCT_ATOL);

    // what is left, in order (rows, then columns, then bias entries of each layer, as the flat
    // vector lays them out), is the shrunk model's parameters and mask
    float *sw = fnet_test_model_params(small), *smask = mask_copy(small);
    int64_t q = 0;
    for (int64_t i = 0; i < n; i++) {
        if (removed[i])
            continue;
        assert_true(q < want_params);
        if (sw[q] != w[i] || smask[q] != mask[i])
            fail_msg("%s, fraction %g: parameter %lld of the shrunk model is %.9g (mask %g), "
                     "want parameter %lld of the original, %.9g (mask %g)", spec, frac,
                     (long long)q, (double)sw[q], (double)smask[q], (long long)i, (double)w[i],
                     (double)mask[i]);
        q++;
    }
    assert_int_equal(q, want_params);
    assert_true((fnet_model_mask(small) != NULL) == has_mask);
    free(smask);
    free(sw);
    free(masked);
    free(removed);
    free(ys);
    free(y);
    free(x);
    fnet_model_free(small);
    free(mask);
    free(w);
    fnet_model_free(m);
}

static void test_prune_neurons_matches_masked_original_with_tanh(void **state)
{
    (void)state;
    check_structured("tanh", 0.25, 0.0);
    check_structured("tanh", 0.5, 0.0);
    check_structured("tanh", 0.0, 0.0);
}

// sigmoid(0) = 0.5: a zeroed neuron still sends a value on, which the masked columns stop
static void test_prune_neurons_matches_masked_original_with_sigmoid(void **state)
{
    (void)state;
    check_structured("sigmoid", 0.25, 0.0);
    check_structured("sigmoid", 0.6, 0.0);
}

static void test_prune_neurons_keeps_the_magnitude_mask_of_what_is_left(void **state)
{
    (void)state;
    check_structured("sigmoid", 0.25, 0.4);
    check_structured("tanh", 0.5, 0.7);
}

// ---------------------------------------------------------------- bad input

static int count_epochs(const fnet_epoch_info *info, void *user)
{
    (void)info;
    ++*(int *)user;
    return 0;
}

static void test_prune_rejects_bad_arguments_and_changes_nothing(void **state)
{
    (void)state;
    fnet_model *m = make_model(MLP, 51);
    int64_t n = fnet_model_num_params(m);
    fnet_optim_params op = fnet_optim_params_default(FNET_OPTIM_ADAM);
    fnet_optimizer *opt = NULL, *other = NULL;
    fnet_assert_ok(ctx, fnet_optimizer_create(ctx, &op, n, &opt));
    fnet_assert_ok(ctx, fnet_optimizer_create(ctx, &op, n + 1, &other));
    fnet_dataset *d = make_data(32, 52);
    fnet_train_params tp = fnet_train_params_default();
    tp.epochs = 1;
    tp.batch = 8;
    fnet_assert_ok(ctx, fnet_train_with(m, opt, &op, &tp, d, NULL, NULL, NULL, NULL));
    fnet_assert_ok(ctx, fnet_prune_magnitude(m, 0.3, FNET_PRUNE_GLOBAL, opt));
    float *w = fnet_test_model_params(m), *mask = mask_copy(m);
    float *s0 = malloc((size_t)n * sizeof(float)), *s = malloc((size_t)n * sizeof(float));
    assert_true(s0 != NULL && s != NULL);
    fnet_assert_ok(ctx, fnet_optimizer_get_state(opt, 0, s0));

    const double bad[] = {-0.1, 1.0, NAN, 1.5, -INFINITY};
    for (int i = 0; i < 5; i++) {
        for (int sc = 0; sc < 2; sc++) {
            fnet_status st = fnet_prune_magnitude(m, bad[i], sc ? FNET_PRUNE_LAYER
                                                                : FNET_PRUNE_GLOBAL, opt);
            char what[64];
            snprintf(what, sizeof(what), "prune_magnitude(%g)", bad[i]);
            expect_status(st, FNET_ERR_INVALID_ARG, what);
            assert_model_is(m, w, mask);
            fnet_assert_ok(ctx, fnet_optimizer_get_state(opt, 0, s));
            assert_same_floats(s, s0, n);
        }
    }
    expect_status(fnet_prune_magnitude(m, 0.5, (fnet_prune_scope)7, NULL), FNET_ERR_INVALID_ARG,
                  "prune_magnitude, scope 7");
    expect_status(fnet_prune_magnitude(m, 0.5, FNET_PRUNE_GLOBAL, other), FNET_ERR_INVALID_ARG,
                  "prune_magnitude, optimizer of another size");
    expect_status(fnet_prune_magnitude(NULL, 0.5, FNET_PRUNE_GLOBAL, NULL), FNET_ERR_INVALID_ARG,
                  "prune_magnitude, NULL model");
    assert_model_is(m, w, mask);

    // a mask element that is neither 0 nor 1
    float *half = malloc((size_t)n * sizeof(float));
    assert_non_null(half);
    for (int64_t i = 0; i < n; i++)
        half[i] = 1.0f;
    half[n / 2] = 0.5f;
    expect_status(fnet_model_set_mask(m, half), FNET_ERR_INVALID_ARG, "set_mask with 0.5");
    assert_model_is(m, w, mask);
    half[n / 2] = NAN;
    expect_status(fnet_model_set_mask(m, half), FNET_ERR_INVALID_ARG, "set_mask with NaN");
    assert_model_is(m, w, mask);
    // also on a model without a mask: it gets none
    fnet_model *plain = make_model(MLP, 53);
    half[n / 2] = 0.5f;
    expect_status(fnet_model_set_mask(plain, half), FNET_ERR_INVALID_ARG, "set_mask with 0.5");
    assert_null(fnet_model_mask(plain));
    fnet_model_free(plain);
    free(half);

    // structured pruning: fraction outside [0, 1)
    fnet_model *out = (fnet_model *)&out;
    expect_status(fnet_prune_neurons(m, 1.0, &out), FNET_ERR_INVALID_ARG, "prune_neurons(1)");
    assert_null(out);
    out = (fnet_model *)&out;
    expect_status(fnet_prune_neurons(m, -0.5, &out), FNET_ERR_INVALID_ARG, "prune_neurons(-0.5)");
    assert_null(out);
    assert_model_is(m, w, mask);

    // fnet_train_pruned: bad settings, nothing trained
    fnet_prune_params p0 = fnet_prune_params_default();
    struct {
        const char *what;
        fnet_prune_params p;
    } cases[5];
    for (int i = 0; i < 5; i++)
        cases[i].p = p0;
    cases[0].what = "iterative with 0 rounds";
    cases[0].p.schedule = FNET_PRUNE_ITERATIVE;
    cases[0].p.rounds = 0;
    cases[1].what = "structured gradual";
    cases[1].p.schedule = FNET_PRUNE_GRADUAL;
    cases[1].p.structured = true;
    cases[2].what = "sparsity 1";
    cases[2].p.sparsity = 1.0;
    cases[3].what = "iterative with -1 rounds";
    cases[3].p.rounds = -1;
    cases[4].what = "gradual with 0 epochs of training";
    cases[4].p.schedule = FNET_PRUNE_GRADUAL;
    for (int i = 0; i < 5; i++) {
        fnet_model *mp = m;
        int epochs = 0;
        fnet_train_params t = tp;
        if (i == 4)
            t.epochs = 0;
        fnet_status st = fnet_train_pruned(&mp, &op, &t, &cases[i].p, d, NULL, count_epochs,
                                           &epochs, NULL);
        expect_status(st, FNET_ERR_INVALID_ARG, cases[i].what);
        assert_ptr_equal(mp, m);
        assert_int_equal(epochs, 0);
        assert_model_is(m, w, mask);
    }
    // a schedule is not checkpointed: a save or resume path is refused, said so, nothing trained
    for (int i = 0; i < 2; i++) {
        fnet_model *mp = m;
        int epochs = 0;
        fnet_train_params t = tp;
        if (i == 0)
            t.save_path = "never-written.safetensors";
        else
            t.resume_path = "never-read.safetensors";
        fnet_status st = fnet_train_pruned(&mp, &op, &t, &p0, d, NULL, count_epochs, &epochs,
                                           NULL);
        expect_status(st, FNET_ERR_UNSUPPORTED, "a save or resume path");
        assert_non_null(strstr(fnet_ctx_last_error(ctx), "cannot be checkpointed"));
        assert_int_equal(epochs, 0);
        assert_model_is(m, w, mask);
        assert_int_equal(access("never-written.safetensors", F_OK), -1);
    }

    free(s);
    free(s0);
    free(mask);
    free(w);
    fnet_dataset_free(d);
    fnet_optimizer_free(other);
    fnet_optimizer_free(opt);
    fnet_model_free(m);
}

// ---------------------------------------------------------------- schedules

struct run_log {
    int epochs_seen;   // epochs the callback saw
    int total;         // the total every callback must report
    int steps;         // step hook calls
    int batches;       // progress callback calls, which get the caller's user pointer
    int64_t run_step[MAX_STEPS];
    int64_t pruned[MAX_STEPS]; // pruned weights when the hook ran
};

static int log_epoch(const fnet_epoch_info *info, void *user)
{
    struct run_log *r = user;
    r->epochs_seen++;
    if (info->epoch != r->epochs_seen || info->epochs != r->total)
        fail_msg("epoch callback: epoch %d of %d, want %d of %d", info->epoch, info->epochs,
                 r->epochs_seen, r->total);
    return 0;
}

static void log_batch(int64_t done, int64_t total, void *user)
{
    struct run_log *r = user;
    assert_true(done >= 1 && done <= total);
    r->batches++;
}

static fnet_status log_step(fnet_model *m, fnet_optimizer *opt, const fnet_step_info *info,
                            void *user)
{
    (void)opt;
    struct run_log *r = user;
    assert_true(r->steps < MAX_STEPS);
    r->run_step[r->steps] = info->run_steps;
    r->pruned[r->steps] = pruned_now(m);
    r->steps++;
    return FNET_OK;
}

#define SCHED_SAMPLES 128
#define SCHED_BATCH 16
#define SCHED_EPOCHS 3
#define SCHED_STEPS_PER_EPOCH (SCHED_SAMPLES / SCHED_BATCH)

// Train MLP with pruning on the schedule; the log of epochs and steps, the final model.
static fnet_model *run_schedule(const fnet_prune_params *p, const fnet_dataset *d,
                                struct run_log *log, double *loss0, double *loss1)
{
    fnet_model *m = make_model(MLP, 61);
    double acc;
    fnet_assert_ok(ctx, fnet_model_evaluate(m, d, &acc, loss0));
    fnet_optim_params op = fnet_optim_params_default(FNET_OPTIM_ADAM);
    op.lr = 0.01f;
    fnet_train_params tp = fnet_train_params_default();
    tp.batch = SCHED_BATCH;
    tp.epochs = SCHED_EPOCHS;
    tp.on_step = log_step;
    tp.step_user = log;
    tp.on_batch = log_batch;
    int rounds = p->schedule == FNET_PRUNE_ITERATIVE ? p->rounds : 1;
    log->total = SCHED_EPOCHS + rounds * p->finetune_epochs;
    fnet_train_stats st;
    fnet_assert_ok(ctx, fnet_train_pruned(&m, &op, &tp, p, d, NULL, log_epoch, log, &st));
    assert_int_equal(log->epochs_seen, log->total);
    assert_int_equal(st.epochs_run, log->total);
    assert_int_equal(log->steps, log->total * SCHED_STEPS_PER_EPOCH);
    assert_int_equal(log->batches, log->total * SCHED_STEPS_PER_EPOCH);
    fnet_assert_ok(ctx, fnet_model_evaluate(m, d, &acc, loss1));
    print_message("%s%s: loss %.4f -> %.4f\n", p->structured ? "structured " : "",
                  fnet_prune_schedule_name(p->schedule), *loss0, *loss1);
    return m;
}

static fnet_prune_params schedule_params(fnet_prune_schedule schedule)
{
    fnet_prune_params p = fnet_prune_params_default();
    p.sparsity = 0.75;
    p.scope = FNET_PRUNE_GLOBAL;
    p.schedule = schedule;
    p.rounds = 3;
    p.finetune_epochs = 1;
    p.gradual_every = 4;
    p.gradual_end = 0.75;
    return p;
}

static void test_prune_oneshot_and_iterative_reach_the_target(void **state)
{
    (void)state;
    fnet_dataset *d = make_data(SCHED_SAMPLES, 62);
    for (int it = 0; it < 2; it++) {
        fnet_prune_params p = schedule_params(it ? FNET_PRUNE_ITERATIVE : FNET_PRUNE_ONESHOT);
        struct run_log *log = calloc(1, sizeof(*log));
        assert_non_null(log);
        double loss0, loss1;
        fnet_model *m = run_schedule(&p, d, log, &loss0, &loss1);
        int64_t pruned, prunable;
        fnet_assert_ok(ctx, fnet_model_pruned(m, &pruned, &prunable));
        assert_int_equal(prunable, 24 * 16 + 4 * 24);
        assert_int_equal(pruned, llround(0.75 * (double)prunable));
        assert_true(loss1 < loss0);
        float *mask = mask_copy(m);
        assert_masked_zero(m, mask);
        free(mask);

        // the phases, as the step hook saw them: dense training, then each round's fine-tune
        // at the round's sparsity 1 − (1 − s)^(k/K) (oneshot: s at once)
        int rounds = it ? p.rounds : 1;
        for (int s = 0; s < log->steps; s++) {
            int phase = s / SCHED_STEPS_PER_EPOCH - SCHED_EPOCHS + 1; // 0: dense training
            int64_t want = 0;
            if (phase > 0) {
                double target = 1.0 - pow(1.0 - p.sparsity, (double)phase / (double)rounds);
                want = llround((phase == rounds ? p.sparsity : target) * (double)prunable);
            }
            if (log->pruned[s] != want)
                fail_msg("%s, step %d: %lld pruned, want %lld",
                         fnet_prune_schedule_name(p.schedule), s, (long long)log->pruned[s],
                         (long long)want);
        }
        free(log);
        fnet_model_free(m);
    }
    fnet_dataset_free(d);
}

// tp->epochs 0: a model trained before (fnet-compress, fnet-prune) is only pruned and
// fine-tuned, its first step already at the first round's sparsity.
static void test_prune_iterative_from_a_trained_model_runs_only_the_rounds(void **state)
{
    (void)state;
    fnet_dataset *d = make_data(SCHED_SAMPLES, 64);
    fnet_model *m = make_model(MLP, 65);
    fnet_optim_params op = fnet_optim_params_default(FNET_OPTIM_ADAM);
    op.lr = 0.01f;
    fnet_train_params tp = fnet_train_params_default();
    tp.batch = SCHED_BATCH;
    tp.epochs = SCHED_EPOCHS;
    fnet_assert_ok(ctx, fnet_train(m, &op, &tp, d, NULL, NULL, NULL, NULL));
    double acc, loss_trained, loss_pruned;
    fnet_assert_ok(ctx, fnet_model_evaluate(m, d, &acc, &loss_trained));

    fnet_prune_params p = schedule_params(FNET_PRUNE_ITERATIVE);
    struct run_log *log = calloc(1, sizeof(*log));
    assert_non_null(log);
    log->total = p.rounds * p.finetune_epochs;
    tp.epochs = 0;
    tp.on_step = log_step;
    tp.step_user = log;
    fnet_train_stats st;
    fnet_assert_ok(ctx, fnet_train_pruned(&m, &op, &tp, &p, d, NULL, log_epoch, log, &st));
    assert_int_equal(st.epochs_run, log->total);
    assert_int_equal(log->epochs_seen, log->total);
    assert_int_equal(log->steps, log->total * SCHED_STEPS_PER_EPOCH);
    int64_t pruned, prunable;
    fnet_assert_ok(ctx, fnet_model_pruned(m, &pruned, &prunable));
    for (int s = 0; s < log->steps; s++) {
        int round = s / SCHED_STEPS_PER_EPOCH + 1;
        double target = round == p.rounds ? p.sparsity
                                          : 1.0 - pow(1.0 - p.sparsity, (double)round / p.rounds);
        assert_int_equal(log->pruned[s], llround(target * (double)prunable));
    }
    assert_int_equal(pruned, llround(p.sparsity * (double)prunable));
    // three quarters of the weights gone, and the fine-tuned loss still near the trained one
    fnet_assert_ok(ctx, fnet_model_evaluate(m, d, &acc, &loss_pruned));
    print_message("trained loss %.4f, pruned and fine-tuned %.4f\n", loss_trained, loss_pruned);
    assert_true(loss_pruned < 2.0 * loss_trained + 0.05);
    free(log);
    fnet_model_free(m);
    fnet_dataset_free(d);
}

// Zhu & Gupta: at run step t the mask is the one of the last pruning step u < t (every 4 steps
// and at T = 0.75 of the steps), llround(N·s·(1 − (1 − u/T)³)); then s through fine-tuning.
static void test_prune_gradual_follows_the_cubic_schedule_to_the_target(void **state)
{
    (void)state;
    fnet_dataset *d = make_data(SCHED_SAMPLES, 63);
    fnet_prune_params p = schedule_params(FNET_PRUNE_GRADUAL);
    struct run_log *log = calloc(1, sizeof(*log));
    assert_non_null(log);
    double loss0, loss1;
    fnet_model *m = run_schedule(&p, d, log, &loss0, &loss1);
    int64_t pruned, prunable;
    fnet_assert_ok(ctx, fnet_model_pruned(m, &pruned, &prunable));
    assert_int_equal(pruned, llround(0.75 * (double)prunable));
    assert_true(loss1 < loss0);

    const int64_t steps = SCHED_EPOCHS * SCHED_STEPS_PER_EPOCH;
    const int64_t T = llround(p.gradual_end * (double)steps);
    for (int s = 0; s < log->steps; s++) {
        int64_t want;
        if (s >= steps) {
            want = llround(p.sparsity * (double)prunable); // fine-tuning
        } else {
            int64_t t = log->run_step[s];
            assert_int_equal(t, s + 1);
            int64_t u = 0; // the last pruning step before t
            for (int64_t v = 1; v < t && v <= T; v++)
                if (v % p.gradual_every == 0 || v == T)
                    u = v;
            double x = 1.0 - (double)u / (double)T;
            want = u == 0 ? 0 : llround(p.sparsity * (1.0 - x * x * x) * (double)prunable);
        }
        if (log->pruned[s] != want)
            fail_msg("gradual, step %d: %lld pruned, want %lld", s, (long long)log->pruned[s],
                     (long long)want);
    }
    float *mask = mask_copy(m);
    assert_masked_zero(m, mask);
    free(mask);
    free(log);
    fnet_model_free(m);
    fnet_dataset_free(d);
}

// Structured iterative pruning: each round removes 1 − (1 − s)^(1/K) of the hidden neurons
// left; *m becomes the smaller model.
static void test_prune_structured_iterative_returns_a_smaller_model(void **state)
{
    (void)state;
    fnet_dataset *d = make_data(SCHED_SAMPLES, 64);
    fnet_prune_params p = schedule_params(FNET_PRUNE_ITERATIVE);
    p.structured = true;
    p.sparsity = 0.5;
    p.rounds = 2;
    struct run_log *log = calloc(1, sizeof(*log));
    assert_non_null(log);
    double loss0, loss1;
    fnet_model *m = run_schedule(&p, d, log, &loss0, &loss1);
    int64_t width = 24;
    double f = 1.0 - pow(1.0 - p.sparsity, 1.0 / (double)p.rounds);
    for (int k = 0; k < p.rounds; k++)
        width -= llround(f * (double)width);
    char want[64];
    snprintf(want, sizeof(want), "dense:%lld,relu,dense:4", (long long)width);
    assert_string_equal(fnet_model_spec(m), want);
    assert_int_equal(fnet_model_num_params(m), N_IN * width + width + width * 4 + 4);
    assert_true(width < 24);
    assert_true(loss1 < loss0);
    assert_int_equal(pruned_now(m), 0); // nothing masked: the neurons are gone
    free(log);
    fnet_model_free(m);
    fnet_dataset_free(d);
}

// Structured pruning carries over what is not pruned: a sparse layer's pattern and values, the
// loss and penalties (the same loss on the same batch with nothing removed), and re-initializing
// a pruned model keeps its pruned weights at zero.
static void test_prune_neurons_keeps_sparse_layers_and_settings(void **state)
{
    (void)state;
    fnet_model *m, *out;
    fnet_assert_ok(ctx, fnet_model_create_from_spec(
                            ctx, "dense:24,relu,sparse:16:density=0.3,relu,dense:12,relu,dense:4",
                            16, 5, &m));
    fnet_assert_ok(ctx, fnet_model_set_loss(m, FNET_LOSS_MSE));
    fnet_assert_ok(ctx, fnet_model_set_regularization(m, 1e-3f, 1e-2f));
    enum { B = 5 };
    float x[B * 16];
    int32_t labels[B] = {0, 1, 2, 3, 1};
    fnet_test_fill_uniform(x, B * 16, -1.0f, 1.0f, 8);
    float *xd = fnet_test_upload(ctx, x, B * 16);
    double l0, l1;
    fnet_assert_ok(ctx, fnet_model_loss_grad(m, xd, labels, B, &l0, NULL));
    fnet_assert_ok(ctx, fnet_prune_neurons(m, 0.0, &out));
    fnet_assert_ok(ctx, fnet_model_loss_grad(out, xd, labels, B, &l1, NULL));
    assert_true(l0 == l1); // same layers, same pattern, same MSE and penalties: the same bits
    float W0[16 * 24], W1[16 * 24];
    fnet_assert_ok(ctx, fnet_layer_to_dense(fnet_model_layer(m, 2), W0));
    fnet_assert_ok(ctx, fnet_layer_to_dense(fnet_model_layer(out, 2), W1));
    assert_memory_equal(W0, W1, sizeof(W0));
    fnet_model_free(out);
    // dense:12 loses 3 neurons (it feeds dense:4 through relu); the sparse layer stays
    fnet_assert_ok(ctx, fnet_prune_neurons(m, 0.25, &out));
    assert_string_equal(fnet_model_spec(out), "dense:24,relu,sparse:16:nnz=115,relu,dense:9,relu,dense:4");
    fnet_assert_ok(ctx, fnet_layer_to_dense(fnet_model_layer(out, 2), W1));
    assert_memory_equal(W0, W1, sizeof(W0));
    fnet_model_free(out);
    // fnet_model_init on a pruned model: new draws, pruned weights still zero
    fnet_assert_ok(ctx, fnet_prune_magnitude(m, 0.6, FNET_PRUNE_GLOBAL, NULL));
    fnet_assert_ok(ctx, fnet_model_init(m, FNET_INIT_HE, 99));
    int64_t n = fnet_model_num_params(m);
    float *w = fnet_test_model_params(m), *mask = malloc(sizeof(float) * (size_t)n);
    fnet_assert_ok(ctx, fnet_model_get_mask(m, mask));
    int64_t zeroed = 0;
    for (int64_t i = 0; i < n; i++)
        if (mask[i] == 0.0f) {
            assert_true(w[i] == 0.0f);
            zeroed++;
        }
    assert_true(zeroed > 0);
    free(w);
    free(mask);
    fnet_backend_free(ctx, xd);
    fnet_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prune_magnitude_prunes_exact_fraction_of_smallest_weights),
        cmocka_unit_test(test_prune_model_pruned_counts_decayed_tensors_of_every_kind),
        cmocka_unit_test(test_prune_magnitude_breaks_ties_by_position),
        cmocka_unit_test(test_prune_magnitude_never_unprunes),
        cmocka_unit_test(test_prune_masked_weights_stay_exactly_zero_under_every_optimizer),
        cmocka_unit_test(test_prune_zeroes_optimizer_state_of_pruned_weights),
        cmocka_unit_test(test_prune_loss_grad_is_exactly_zero_at_masked_positions),
        cmocka_unit_test(test_prune_checkpoint_round_trip_keeps_mask_params_and_outputs),
        cmocka_unit_test(test_prune_checkpoint_rejects_bad_masks_and_keeps_model),
        cmocka_unit_test(test_prune_rejects_bad_arguments_and_changes_nothing),
        cmocka_unit_test(test_prune_oneshot_and_iterative_reach_the_target),
        cmocka_unit_test(test_prune_iterative_from_a_trained_model_runs_only_the_rounds),
        cmocka_unit_test(test_prune_gradual_follows_the_cubic_schedule_to_the_target),
        cmocka_unit_test(test_prune_neurons_matches_masked_original_with_tanh),
        cmocka_unit_test(test_prune_neurons_matches_masked_original_with_sigmoid),
        cmocka_unit_test(test_prune_neurons_keeps_the_magnitude_mask_of_what_is_left),
        cmocka_unit_test(test_prune_structured_iterative_returns_a_smaller_model),
        cmocka_unit_test(test_prune_neurons_keeps_sparse_layers_and_settings),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
