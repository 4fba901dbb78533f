/* The CSR sparse layer (src/sparse/csr.c): the per-kind checks (forward against its dense
 * matrix, finite differences at the stored entries, backend against the reference, out-of-memory
 * injection) on patterns with empty and full rows, the spec, conversion from a pruned dense
 * layer, checkpoints with their index tensors and what a corrupt one is refused for, SET and
 * RigL keeping the density exact, and a falling loss. On the backend FNET_TEST_BACKEND names. */
#include "layer_check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// A sparse layer of nnz entries drawn by init and a bias, n_in -> n_out.
static fnet_status make(fnet_ctx *ctx, uint64_t seed, int64_t n_in, int64_t n_out, int64_t nnz,
                        fnet_layer **l)
{
    fnet_status st = fnet_sparse_create(ctx, n_in, n_out, nnz, l);
    if (st != FNET_OK)
        return st;
    return fnet_test_init_layer(*l, seed, true);
}

// 12 -> 9 at density 0.2: some rows empty
static fnet_status make_sparse(fnet_ctx *ctx, uint64_t seed, fnet_layer **l)
{
    return make(ctx, seed, 12, 9, 22, l);
}

// 5 -> 7, every entry stored (density 1)
static fnet_status make_full(fnet_ctx *ctx, uint64_t seed, fnet_layer **l)
{
    return make(ctx, seed, 5, 7, 35, l);
}

// 64 -> 40 at 10%: the CPU kernels' blocked paths
static fnet_status make_wide(fnet_ctx *ctx, uint64_t seed, fnet_layer **l)
{
    return make(ctx, seed, 64, 40, 256, l);
}

// a single stored entry
static fnet_status make_one(fnet_ctx *ctx, uint64_t seed, fnet_layer **l)
{
    return make(ctx, seed, 6, 4, 1, l);
}

static void test_sparse_forward_matches_masked_dense(void **state)
{
    check_layer_forward_matches_dense(make_sparse, 3, true);
    check_layer_forward_matches_dense(make_sparse, 1, true);
    check_layer_forward_matches_dense(make_full, 4, true);
    check_layer_forward_matches_dense(make_wide, 33, true);
    check_layer_forward_matches_dense(make_one, 2, true);
}

static void test_sparse_gradients_match_finite_differences(void **state)
{
    check_layer_gradients(make_sparse, 3);
    check_layer_gradients(make_sparse, 1);
    check_layer_gradients(make_full, 2);
    check_layer_gradients(make_one, 2);
}

static void test_sparse_backend_matches_reference(void **state)
{
    check_layer_cpu_matches_reference(make_sparse, 5, 1e-5);
    check_layer_cpu_matches_reference(make_full, 1, 1e-5);
    check_layer_cpu_matches_reference(make_wide, 70, 1e-5);
}

static void test_sparse_survives_out_of_memory(void **state)
{
    check_layer_out_of_memory(make_sparse, 4);
    check_layer_out_of_memory(make_wide, 2);
}

// The pattern init draws is uniform: over many layers every position is stored about equally
// often, the count per layer is exact and rows are sorted (to_dense places entries by it); below
// and above half full (where the positions left out are drawn instead).
static void check_uniform(fnet_ctx *ctx, int nnz)
{
    enum { IN = 8, OUT = 6, DRAWS = 400 };
    int hits[IN * OUT] = {0};
    float W[IN * OUT];
    for (int d = 0; d < DRAWS; d++) {
        fnet_layer *l;
        fnet_assert_ok(ctx, make(ctx, (uint64_t)d + 1, IN, OUT, nnz, &l));
        assert_int_equal(fnet_sparse_nnz(l), nnz);
        assert_int_equal(fnet_layer_num_params(l), nnz + OUT);
        fnet_assert_ok(ctx, fnet_layer_to_dense(l, W));
        int nonzero = 0;
        for (int e = 0; e < IN * OUT; e++) {
            nonzero += W[e] != 0.0f;
            hits[e] += W[e] != 0.0f;
        }
        assert_int_equal(nonzero, nnz); // Glorot normal draws are never exactly zero
        fnet_layer_free(l);
    }
    // binomial counts, p = nnz/48: within 5 standard deviations of DRAWS·p
    double p = (double)nnz / (IN * OUT), mean = DRAWS * p, sd = sqrt(DRAWS * p * (1.0 - p));
    for (int e = 0; e < IN * OUT; e++) {
        assert_true(hits[e] > mean - 5.0 * sd);
        assert_true(hits[e] < mean + 5.0 * sd);
    }
}

static void test_sparse_pattern_is_exact_and_uniform(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_REFERENCE);
    check_uniform(ctx, 12);
    check_uniform(ctx, 36);
    // a huge matrix with few entries: drawn in O(nnz log nnz), not one draw per position
    fnet_model *m;
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, "sparse:100000:nnz=5", (int64_t)1 << 30,
                                                    1, &m));
    assert_int_equal(fnet_sparse_nnz(fnet_model_layer(m, 0)), 5);
    fnet_model_free(m);
    fnet_ctx_free(ctx);
}

static void test_sparse_spec_and_bad_input(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_REFERENCE);
    fnet_model *m = (fnet_model *)&m;
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, "sparse:20:density=0.25,relu,dense:3",
                                                    16, 1, &m));
    // density 0.25 of 16·20 = 80 stored entries, written back as their count
    assert_string_equal(fnet_model_spec(m), "sparse:20:nnz=80,relu,dense:3");
    assert_int_equal(fnet_model_num_params(m), 80 + 20 + 20 * 3 + 3);
    fnet_model_free(m);
    m = (fnet_model *)&m;
    const char *bad[] = {"sparse:20:density=0", "sparse:20:density=1.5", "sparse:20:density=-1",
                         "sparse:20", "sparse:20:density=0.5:nnz=3", "sparse:20:nnz=0"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(fnet_model_create_from_spec(ctx, bad[i], 16, 1, &m), FNET_ERR_FORMAT);
        assert_null(m);
        assert_non_null(strstr(fnet_ctx_last_message(ctx), "spec item 1"));
    }
    // more entries than the matrix holds: refused by the builder, naming the item
    assert_int_equal(fnet_model_create_from_spec(ctx, "sparse:4:nnz=65", 16, 1, &m),
                     FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_message(ctx), "65 stored entries do not fit a 4 x 16"));
    fnet_layer *l = (fnet_layer *)&l;
    assert_int_equal(fnet_sparse_create(ctx, 4, 4, 0, &l), FNET_ERR_INVALID_ARG);
    assert_null(l);
    assert_int_equal(fnet_sparse_create(ctx, (int64_t)1 << 32, 4, 1, &l), FNET_ERR_INVALID_ARG);
    fnet_ctx_free(ctx);
}

// A pruned dense layer as CSR: the same matrix, the same outputs.
static void test_sparse_from_dense_is_the_same_layer(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    enum { IN = 10, OUT = 7, B = 3 };
    float W[OUT * IN], bias[OUT], x[B * IN], Wb[OUT * IN];
    fnet_test_fill_uniform(W, OUT * IN, -1.0f, 1.0f, 3);
    fnet_test_fill_uniform(bias, OUT, -0.5f, 0.5f, 4);
    fnet_test_fill_uniform(x, B * IN, -1.0f, 1.0f, 5);
    for (int e = 0; e < OUT * IN; e++)
        if (e % 3 != 0 || e / IN == 2) // row 2 empty
            W[e] = 0.0f;
    fnet_layer *l;
    fnet_assert_ok(ctx, fnet_sparse_from_dense(ctx, W, bias, OUT, IN, &l));
    int64_t nnz = 0;
    for (int e = 0; e < OUT * IN; e++)
        nnz += W[e] != 0.0f;
    assert_int_equal(fnet_sparse_nnz(l), nnz);
    fnet_assert_ok(ctx, fnet_layer_to_dense(l, Wb));
    assert_memory_equal(W, Wb, sizeof(W));
    float *xd = fnet_test_upload(ctx, x, B * IN), *yd = fnet_test_upload(ctx, NULL, B * OUT);
    fnet_assert_ok(ctx, fnet_layer_forward(l, xd, B, yd));
    float *y = fnet_test_download(ctx, yd, B * OUT), want[B * OUT];
    for (int r = 0; r < B; r++)
        for (int o = 0; o < OUT; o++) {
            double s = bias[o];
            for (int i = 0; i < IN; i++)
                s += (double)x[r * IN + i] * W[o * IN + i];
            want[r * OUT + o] = (float)s;
        }
    fnet_assert_allclose(y, want, B * OUT, 1e-5, 1e-6);
    free(y);
    fnet_backend_free(ctx, xd);
    fnet_backend_free(ctx, yd);
    fnet_layer_free(l);
    // an all-zero matrix keeps one stored zero
    memset(W, 0, sizeof(W));
    fnet_assert_ok(ctx, fnet_sparse_from_dense(ctx, W, NULL, OUT, IN, &l));
    assert_int_equal(fnet_sparse_nnz(l), 1);
    fnet_assert_ok(ctx, fnet_layer_to_dense(l, Wb));
    assert_memory_equal(W, Wb, sizeof(W));
    fnet_layer_free(l);
    fnet_ctx_free(ctx);
}

// fnet_model_sparsify: the pruned dense layers become CSR, the outputs stay.
static void test_sparsify_keeps_outputs(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    fnet_model *m;
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, "dense:30,relu,dense:20,relu,dense:4",
                                                    12, 5, &m));
    fnet_assert_ok(ctx, fnet_prune_magnitude(m, 0.8, FNET_PRUNE_LAYER, NULL));
    enum { B = 6 };
    float x[B * 12], before[B * 4], after[B * 4];
    fnet_test_fill_uniform(x, B * 12, -1.0f, 1.0f, 9);
    float *xd = fnet_test_upload(ctx, x, B * 12);
    fnet_assert_ok(ctx, fnet_model_forward(m, xd, B, before));
    int converted = -1;
    // the last layer is 80% pruned too; a threshold of 0.9 converts none
    fnet_assert_ok(ctx, fnet_model_sparsify(m, 0.9, &converted));
    assert_int_equal(converted, 0);
    fnet_assert_ok(ctx, fnet_model_sparsify(m, 0.5, &converted));
    assert_int_equal(converted, 3);
    assert_string_equal(fnet_model_spec(m),
                        "sparse:30:nnz=72,relu,sparse:20:nnz=120,relu,sparse:4:nnz=16");
    assert_int_equal(fnet_model_num_params(m), 72 + 30 + 120 + 20 + 16 + 4);
    fnet_assert_ok(ctx, fnet_model_forward(m, xd, B, after));
    fnet_assert_allclose(after, before, B * 4, 1e-5, 1e-6);
    fnet_backend_free(ctx, xd);
    fnet_model_free(m);
    fnet_ctx_free(ctx);
}

// The byte range of tensor `name` in a safetensors file read into buf, from its header.
static unsigned char *tensor_bytes(unsigned char *buf, const char *name, size_t *len)
{
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++)
        hlen |= (uint64_t)buf[i] << (8 * i);
    char key[128];
    snprintf(key, sizeof(key), "\"%s\":", name);
    char *h = strstr((char *)buf + 8, key);
    assert_non_null(h);
    char *off = strstr(h, "\"data_offsets\":[");
    assert_non_null(off);
    unsigned long long b, e;
    assert_int_equal(sscanf(off, "\"data_offsets\":[%llu,%llu]", &b, &e), 2);
    *len = (size_t)(e - b);
    return buf + 8 + hlen + b;
}

// The index tensors round-trip, and a file whose pattern is broken is refused naming the file
// and the tensor, with the model given to load_params unchanged.
static void test_sparse_checkpoint_and_corrupt_patterns(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    char path[600], bad[640];
    const char *dir = fnet_test_tmpdir();
    snprintf(path, sizeof(path), "%s/sparse.safetensors", dir);
    snprintf(bad, sizeof(bad), "%s/bad.safetensors", dir);
    fnet_model *m, *back, *other;
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, "sparse:10:nnz=25,tanh,dense:3", 8, 3, &m));
    fnet_assert_ok(ctx, fnet_model_save(m, NULL, path));
    fnet_assert_ok(ctx, fnet_model_load(ctx, path, &back));
    assert_string_equal(fnet_model_spec(back), "sparse:10:nnz=25,tanh,dense:3");
    float W0[10 * 8], W1[10 * 8];
    fnet_assert_ok(ctx, fnet_layer_to_dense(fnet_model_layer(m, 0), W0));
    fnet_assert_ok(ctx, fnet_layer_to_dense(fnet_model_layer(back, 0), W1));
    assert_memory_equal(W0, W1, sizeof(W0));
    fnet_model_free(back);

    // another model of the same spec (another pattern) that a failed load must leave alone
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, "sparse:10:nnz=25,tanh,dense:3", 8, 99,
                                                    &other));
    float Wo[10 * 8], Wa[10 * 8];
    fnet_assert_ok(ctx, fnet_layer_to_dense(fnet_model_layer(other, 0), Wo));
    size_t len;
    struct fnet_test_bytes file = fnet_test_read_file(path);
    unsigned char *good = file.p;
    size_t size = file.n;
    struct {
        const char *tensor;
        int index;
        int32_t value;
        const char *says;
    } cases[] = {
        {"layers.0.col_idx", 3, 8, "outside [0, 8)"},
        {"layers.0.col_idx", 0, -1, "outside [0, 8)"},
        {"layers.0.row_ptr", 0, 1, "element 0 is 1, not 0"},
        {"layers.0.row_ptr", 10, 24, "last element is 24, expected nnz 25"},
        {"layers.0.row_ptr", 5, 30, "row pointers must not decrease"},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        unsigned char *buf = malloc(size);
        memcpy(buf, good, size);
        int32_t *v = (int32_t *)(void *)tensor_bytes(buf, cases[c].tensor, &len);
        memcpy(&v[cases[c].index], &cases[c].value, sizeof(int32_t));
        fnet_test_restamp_checksums(buf, size); // past the checksums, to the pattern checks
        fnet_test_write_file(bad, buf, size);
        free(buf);
        assert_int_equal(fnet_model_load(ctx, bad, &back), FNET_ERR_FORMAT);
        const char *msg = fnet_ctx_last_message(ctx);
        assert_non_null(strstr(msg, bad));
        assert_non_null(strstr(msg, cases[c].tensor + strlen("layers.0.")));
        assert_non_null(strstr(msg, cases[c].says));
        assert_int_equal(fnet_model_load_params(other, NULL, bad), FNET_ERR_FORMAT);
        fnet_assert_ok(ctx, fnet_layer_to_dense(fnet_model_layer(other, 0), Wa));
        assert_memory_equal(Wa, Wo, sizeof(Wa));
    }
    // columns out of order within a row: swap two entries of a row with two or more
    {
        unsigned char *buf = malloc(size);
        memcpy(buf, good, size);
        int32_t *rp = (int32_t *)(void *)tensor_bytes(buf, "layers.0.row_ptr", &len);
        int32_t *col = (int32_t *)(void *)tensor_bytes(buf, "layers.0.col_idx", &len);
        int r = 0;
        while (rp[r + 1] - rp[r] < 2)
            r++;
        int32_t t = col[rp[r]];
        col[rp[r]] = col[rp[r] + 1];
        col[rp[r] + 1] = t;
        fnet_test_restamp_checksums(buf, size); // past the checksums, to the pattern checks
        fnet_test_write_file(bad, buf, size);
        free(buf);
        assert_int_equal(fnet_model_load(ctx, bad, &back), FNET_ERR_FORMAT);
        assert_non_null(strstr(fnet_ctx_last_message(ctx), "columns must increase within a row"));
    }
    // an index tensor of the wrong length: the spec says 25
    fnet_model *small;
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, "sparse:10:nnz=24,tanh,dense:3", 8, 3, &small));
    fnet_assert_ok(ctx, fnet_model_save(small, NULL, bad));
    fnet_model_free(small);
    assert_int_equal(fnet_model_load_params(other, NULL, bad), FNET_ERR_SHAPE);
    free(good);
    fnet_model_free(other);
    fnet_model_free(m);
    unlink(path);
    unlink(bad);
    rmdir(dir);
    fnet_ctx_free(ctx);
}

// SET and RigL: the stored count stays exact, the pattern stays valid CSR, the entries that stay
// keep their values, and (RigL) regrown ones start at zero; the optimizer's state moves along.
static void check_update(fnet_sparse_update kind)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    fnet_model *m;
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, "sparse:24:density=0.2,relu,dense:4",
                                                    16, 11, &m));
    fnet_dataset *d = fnet_test_class_data(ctx, 64, 16, 4, 150, 50, 80, 4);
    fnet_optim_params op = fnet_optim_params_default(FNET_OPTIM_ADAM);
    fnet_optimizer *opt;
    fnet_assert_ok(ctx, fnet_optimizer_create(ctx, &op, fnet_model_num_params(m), &opt));
    fnet_train_params tp = fnet_train_params_default();
    tp.epochs = 1;
    fnet_assert_ok(ctx, fnet_train_with(m, opt, &op, &tp, d, NULL, NULL, NULL, NULL));
    fnet_layer *l = fnet_model_layer(m, 0);
    int64_t nnz = fnet_sparse_nnz(l), n = fnet_model_num_params(m);
    assert_int_equal(nnz, 77); // 0.2·16·24 = 76.8
    float W0[24 * 16], W1[24 * 16];
    fnet_assert_ok(ctx, fnet_layer_to_dense(l, W0));
    float *m0 = malloc(sizeof(float) * (size_t)n), *m1 = malloc(sizeof(float) * (size_t)n);
    float *w0 = fnet_test_model_params(m);
    fnet_assert_ok(ctx, fnet_optimizer_get_state(opt, 0, m0));
    fnet_rng rng;
    fnet_rng_seed(&rng, 5);
    float x[32 * 16];
    int32_t labels[32];
    float *xd = fnet_test_upload(ctx, NULL, 32 * 16);
    fnet_assert_ok(ctx, fnet_dataset_batch(d, NULL, 0, 32, xd, labels));
    (void)x;
    fnet_assert_ok(ctx, fnet_sparse_update_topology(m, opt, kind, 0.3, xd, labels, 32, &rng));
    assert_int_equal(fnet_sparse_nnz(l), nnz);
    fnet_assert_ok(ctx, fnet_layer_to_dense(l, W1));
    fnet_assert_ok(ctx, fnet_optimizer_get_state(opt, 0, m1));
    float *w1 = fnet_test_model_params(m);
    // the other layers' parameters and state did not move
    assert_memory_equal(w0 + nnz, w1 + nnz, sizeof(float) * (size_t)(n - nnz));
    assert_memory_equal(m0 + nnz, m1 + nnz, sizeof(float) * (size_t)(n - nnz));
    // 23 dropped (the smallest), 23 regrown where nothing was
    int kept = 0, grown = 0, dropped = 0;
    float max_dropped = 0.0f, min_kept = INFINITY;
    for (int e = 0; e < 24 * 16; e++) {
        if (W0[e] != 0.0f && W1[e] != 0.0f) {
            assert_true(W0[e] == W1[e]);
            kept++;
            if (fabsf(W0[e]) < min_kept)
                min_kept = fabsf(W0[e]);
        } else if (W0[e] != 0.0f) {
            dropped++;
            if (fabsf(W0[e]) > max_dropped)
                max_dropped = fabsf(W0[e]);
        } else if (W1[e] != 0.0f) {
            grown++;
        }
    }
    assert_int_equal(dropped, 23);
    assert_true(max_dropped <= min_kept);
    // SET draws new weights (never exactly zero); RigL's start at zero, so to_dense hides them
    if (kind == FNET_SPARSE_SET)
        assert_int_equal(grown, 23);
    else
        assert_int_equal(grown, 0);
    assert_int_equal(kept, nnz - 23);
    // the state of kept entries moved with them: find each kept value in the old and new slots
    const int32_t *dummy = NULL;
    (void)dummy;
    int matched = 0;
    for (int64_t q = 0; q < nnz; q++)
        for (int64_t p = 0; p < nnz; p++)
            if (w1[q] != 0.0f && w1[q] == w0[p] && m1[q] == m0[p]) {
                matched++;
                break;
            }
    assert_true(matched >= kept);
    // training goes on with the new pattern
    fnet_assert_ok(ctx, fnet_train_with(m, opt, &op, &tp, d, NULL, NULL, NULL, NULL));
    free(w0), free(w1), free(m0), free(m1);
    fnet_backend_free(ctx, xd);
    fnet_optimizer_free(opt);
    fnet_dataset_free(d);
    fnet_model_free(m);
    fnet_ctx_free(ctx);
}

static void test_set_keeps_density_exact(void **state)
{
    check_update(FNET_SPARSE_SET);
}

static void test_rigl_keeps_density_exact(void **state)
{
    check_update(FNET_SPARSE_RIGL);
}

// Sparse training from scratch with the schedules: the loss falls, the density stays.
static void test_sparse_training_lowers_the_loss(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    fnet_dataset *d = fnet_test_class_data(ctx, 300, 16, 4, 150, 50, 80, 4);
    for (int kind = FNET_SPARSE_STATIC; kind <= FNET_SPARSE_RIGL; kind++) {
        fnet_model *m;
        fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, "sparse:32:density=0.3,relu,dense:4",
                                                        16, 7, &m));
        double acc0, loss0, acc1, loss1;
        fnet_assert_ok(ctx, fnet_model_evaluate(m, d, &acc0, &loss0));
        fnet_sparse_schedule *s;
        fnet_assert_ok(ctx, fnet_sparse_schedule_create(ctx, (fnet_sparse_update)kind, 0.3, 0,
                                                        0.75, d, 32, 3, &s));
        fnet_optim_params op = fnet_optim_params_default(FNET_OPTIM_ADAM);
        op.lr = 1e-2f;
        fnet_train_params tp = fnet_train_params_default();
        tp.epochs = 5;
        tp.on_step = fnet_sparse_step_hook;
        tp.step_user = s;
        fnet_assert_ok(ctx, fnet_train(m, &op, &tp, d, NULL, NULL, NULL, NULL));
        fnet_assert_ok(ctx, fnet_model_evaluate(m, d, &acc1, &loss1));
        print_message("sparse %s: loss %.4f -> %.4f, accuracy %.3f -> %.3f, %d updates\n",
                      fnet_sparse_update_name((fnet_sparse_update)kind), loss0, loss1, acc0, acc1,
                      fnet_sparse_schedule_updates(s));
        // updates at the end of epochs 1..3 (epoch 4 ends at 0.8 > 0.75 of the run)
        assert_int_equal(fnet_sparse_schedule_updates(s), kind == FNET_SPARSE_STATIC ? 0 : 3);
        assert_int_equal(fnet_sparse_nnz(fnet_model_layer(m, 0)), 154); // 0.3·16·32 = 153.6
        assert_true(loss1 < 0.5 * loss0);
        assert_true(acc1 > 0.9);
        fnet_sparse_schedule_free(s);
        fnet_model_free(m);
    }
    fnet_dataset_free(d);
    fnet_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sparse_forward_matches_masked_dense),
        cmocka_unit_test(test_sparse_gradients_match_finite_differences),
        cmocka_unit_test(test_sparse_backend_matches_reference),
        cmocka_unit_test(test_sparse_survives_out_of_memory),
        cmocka_unit_test(test_sparse_pattern_is_exact_and_uniform),
        cmocka_unit_test(test_sparse_spec_and_bad_input),
        cmocka_unit_test(test_sparse_from_dense_is_the_same_layer),
        cmocka_unit_test(test_sparsify_keeps_outputs),
        cmocka_unit_test(test_sparse_checkpoint_and_corrupt_patterns),
        cmocka_unit_test(test_set_keeps_density_exact),
        cmocka_unit_test(test_rigl_keeps_density_exact),
        cmocka_unit_test(test_sparse_training_lowers_the_loss),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
