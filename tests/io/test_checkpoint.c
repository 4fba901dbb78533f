/* Tests of safetensors checkpoints: bit-exact round trips of parameters and optimizer state, the
 * header's names, order and alignment, every kind of corrupt file with its status and message,
 * atomic saves, out-of-memory paths, and random damage to a valid file (for the sanitizer build).
 * The models live on the backend FNET_TEST_BACKEND names (fnet_test_ctx); parameters and
 * optimizer state are compared on host copies. */
#include "test_util.h"
#include "io/json.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define SPEC "dense:16,relu,dense:8,tanh,dense:3"
#define N_IN 10
#define FUZZ_ROUNDS 200

static fnet_ctx *ctx;

static int setup(void **state)
{
    (void)state;
    ctx = fnet_test_ctx(FNET_BACKEND_REFERENCE);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fnet_ctx_free(ctx);
    return 0;
}

// ---------------------------------------------------------------- helpers

// A safetensors file from a header text and `data_len` bytes of data (floats 0, 1, 2, ...).
static void write_st(const char *path, const char *header, size_t data_len)
{
    size_t h = strlen(header);
    size_t total = 8 + h + data_len;
    unsigned char *buf = calloc(1, total);
    assert_non_null(buf);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)((uint64_t)h >> (8 * i));
    memcpy(buf + 8, header, h);
    for (size_t i = 0; i + 4 <= data_len; i += 4) {
        float v = (float)(i / 4);
        memcpy(buf + 8 + h + i, &v, 4);
    }
    fnet_test_write_file(path, buf, total);
    free(buf);
}

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static char *tmpdir(void)
{
    const char *d = fnet_test_tmpdir();
    char *p = malloc(strlen(d) + 1);
    assert_non_null(p);
    strcpy(p, d);
    return p;
}

static int count_tmp_files(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strstr(e->d_name, ".tmp.") != NULL;
    closedir(d);
    return n;
}

static fnet_model *make_model(const char *spec, uint64_t seed)
{
    fnet_model *m = NULL;
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, spec, N_IN, seed, &m));
    return m;
}

// A host copy of the model's parameters (free()).
static float *params_copy(fnet_model *m, int64_t *n)
{
    *n = fnet_model_num_params(m);
    return fnet_test_model_params(m);
}

static void assert_params_equal(fnet_model *m, const float *expect, int64_t n)
{
    assert_int_equal(fnet_model_num_params(m), n);
    float *w = fnet_test_model_params(m);
    assert_memory_equal(w, expect, (size_t)n * sizeof(float)); // bit for bit
    free(w);
}

// The parameters of a and b (host copies) are bit for bit the same.
static void assert_same_params(fnet_model *a, fnet_model *b)
{
    int64_t n;
    float *w = params_copy(a, &n);
    assert_params_equal(b, w, n);
    free(w);
}

// A host copy of state vector i of opt (free()).
static float *state_copy(const fnet_optimizer *opt, int i)
{
    int64_t n = fnet_optimizer_size(opt);
    float *v = malloc((size_t)n * sizeof(float));
    assert_non_null(v);
    assert_int_equal(fnet_optimizer_get_state(opt, i, v), FNET_OK);
    return v;
}

// a and b hold the same steps and state vectors, names and values bit for bit.
static void assert_same_state(fnet_optimizer *a, fnet_optimizer *b)
{
    int64_t n = fnet_optimizer_size(a);
    assert_int_equal(fnet_optimizer_size(b), n);
    assert_int_equal(fnet_optimizer_steps(b), fnet_optimizer_steps(a));
    assert_int_equal(fnet_optimizer_num_states(b), fnet_optimizer_num_states(a));
    for (int i = 0; i < fnet_optimizer_num_states(a); i++) {
        const char *na, *nb;
        fnet_optimizer_state(a, i, &na); // the name only: the vector is backend memory
        fnet_optimizer_state(b, i, &nb);
        assert_string_equal(na, nb);
        float *sa = state_copy(a, i), *sb = state_copy(b, i);
        assert_memory_equal(sa, sb, (size_t)n * sizeof(float));
        free(sa), free(sb);
    }
}

static void expect_failure(fnet_status st, fnet_status want, const char *msg)
{
    if (st != want || strstr(fnet_ctx_last_error(ctx), msg) == NULL)
        fail_msg("status %d (want %d), message '%s' (want '%s')", (int)st, (int)want,
                 fnet_ctx_last_error(ctx), msg);
}

// fnet_model_load(path) must fail with `want` and a message holding msg, returning no model.
static void expect_load_failure(const char *path, fnet_status want, const char *msg)
{
    fnet_model *m = (fnet_model *)&m; // must be reset to NULL
    fnet_status st = fnet_model_load(ctx, path, &m);
    expect_failure(st, want, msg);
    assert_null(m);
}

static fnet_optimizer *make_adam(fnet_model *m, int steps, uint64_t seed)
{
    fnet_ctx *mctx = fnet_model_ctx(m);
    fnet_optim_params op = fnet_optim_params_default(FNET_OPTIM_ADAM);
    fnet_optimizer *opt = NULL;
    fnet_assert_ok(mctx, fnet_optimizer_create(mctx, &op, fnet_model_num_params(m), &opt));
    int64_t n;
    float *w = fnet_model_params(m, &n); // backend memory: only handed to the optimizer
    float *g = malloc((size_t)n * sizeof(float));
    assert_non_null(g);
    float *gd = fnet_test_upload(mctx, NULL, n);
    for (int s = 0; s < steps; s++) {
        fnet_test_fill_uniform(g, n, -1.0f, 1.0f, seed + (uint64_t)s);
        fnet_assert_ok(mctx, fnet_backend_upload(mctx, gd, g, (size_t)n * sizeof(float)));
        fnet_assert_ok(mctx, fnet_optimizer_step(opt, w, gd));
    }
    fnet_backend_free(mctx, gd);
    free(g);
    return opt;
}

// ---------------------------------------------------------------- round trips

static void test_checkpoint_round_trip_restores_params_bit_for_bit(void **state)
{
    (void)state;
    char *dir = tmpdir(), *path = join(dir, "model.safetensors");
    fnet_model *m = make_model(SPEC, 7);
    int64_t n;
    float *w = params_copy(m, &n);
    assert_int_equal(n, 16 * 10 + 16 + 8 * 16 + 8 + 3 * 8 + 3);
    fnet_assert_ok(ctx, fnet_model_save(m, NULL, path));

    fnet_model *l = NULL;
    fnet_assert_ok(ctx, fnet_model_load(ctx, path, &l));
    assert_string_equal(fnet_model_spec(l), fnet_model_spec(m));
    assert_int_equal(fnet_model_n_in(l), N_IN);
    assert_int_equal(fnet_model_n_out(l), 3);
    assert_int_equal(fnet_model_num_layers(l), 5);
    assert_params_equal(l, w, n);

    // into an existing model of the same architecture but other values
    fnet_model *o = make_model(SPEC, 99);
    fnet_assert_ok(ctx, fnet_model_load_params(o, NULL, path));
    assert_params_equal(o, w, n);

    // the loaded model computes what the saved one does
    float xh[2 * N_IN], y0[2 * 3], y1[2 * 3];
    fnet_test_fill_uniform(xh, 2 * N_IN, -1.0f, 1.0f, 3);
    float *x = fnet_test_upload(ctx, xh, 2 * N_IN);
    fnet_assert_ok(ctx, fnet_model_forward(m, x, 2, y0));
    fnet_assert_ok(ctx, fnet_model_forward(l, x, 2, y1));
    assert_memory_equal(y0, y1, sizeof(y0));
    fnet_backend_free(ctx, x);

    fnet_model_free(o);
    fnet_model_free(l);
    fnet_model_free(m);
    free(w);
    free(path);
    free(dir);
}

static void test_checkpoint_header_names_tensors_like_nn_sequential_and_aligns_data(void **state)
{
    (void)state;
    char *dir = tmpdir(), *path = join(dir, "model.safetensors");
    fnet_model *m = make_model(SPEC, 11);
    fnet_assert_ok(ctx, fnet_model_save(m, NULL, path));
    struct fnet_test_bytes b = fnet_test_read_file(path);
    assert_true(b.n >= 8);
    uint64_t h = 0;
    for (int i = 7; i >= 0; i--)
        h = h << 8 | b.p[i];
    assert_int_equal((8 + h) % 8, 0);
    int64_t n_params = fnet_model_num_params(m);
    assert_int_equal(b.n, 8 + h + 4 * (uint64_t)n_params);

    struct fnet_json_doc *doc = NULL;
    fnet_assert_ok(ctx, fnet_json_parse(ctx, "header", (const char *)b.p + 8, h, 1000, &doc));
    const struct fnet_json *root = fnet_json_root(doc);
    const char *names[] = {"layers.0.weight", "layers.0.bias", "layers.2.weight",
                           "layers.2.bias",   "layers.4.weight", "layers.4.bias", "__metadata__"};
    const int64_t shapes[][2] = {{16, 10}, {16, 0}, {8, 16}, {8, 0}, {3, 8}, {3, 0}};
    int layer_of[] = {0, 0, 2, 2, 4, 4};
    int i = 0;
    int64_t expect_begin = 0;
    for (const struct fnet_json *e = root->child; e != NULL; e = e->next, i++) {
        assert_true(i < 7);
        assert_string_equal(e->key, names[i]);
        if (i == 6)
            break;
        assert_string_equal(fnet_json_get(e, "dtype")->str, "F32");
        const struct fnet_json *sh = fnet_json_get(e, "shape");
        assert_int_equal(sh->len, shapes[i][1] ? 2 : 1);
        assert_int_equal(sh->child->integer, shapes[i][0]);
        if (shapes[i][1])
            assert_int_equal(sh->child->next->integer, shapes[i][1]);
        const struct fnet_json *off = fnet_json_get(e, "data_offsets");
        int64_t begin = off->child->integer, end = off->child->next->integer;
        assert_int_equal(begin, expect_begin); // packed in layer order
        int64_t numel = shapes[i][0] * (shapes[i][1] ? shapes[i][1] : 1);
        assert_int_equal(end - begin, 4 * numel);
        expect_begin = end;

        // the bytes are the layer's tensor, little-endian float32
        fnet_layer *layer = fnet_model_layer(m, layer_of[i]);
        fnet_tensor_info info;
        fnet_assert_ok(ctx, fnet_layer_tensor(layer, i % 2, &info));
        assert_int_equal(info.numel, numel);
        float *lw = fnet_test_layer_params(layer);
        assert_memory_equal(b.p + 8 + h + begin, lw + info.offset, (size_t)numel * 4);
        free(lw);
    }
    assert_int_equal(i, 6);
    assert_int_equal(expect_begin, 4 * n_params);
    const struct fnet_json *md = fnet_json_get(root, "__metadata__");
    assert_string_equal(fnet_json_get(md, "format")->str, "factornet");
    assert_string_equal(fnet_json_get(md, "version")->str, "1");
    assert_string_equal(fnet_json_get(md, "spec")->str, fnet_model_spec(m));
    assert_string_equal(fnet_json_get(md, "input")->str, "10");
    assert_string_equal(fnet_json_get(md, "classes")->str, "3");
    assert_null(fnet_json_get(md, "optimizer"));
    // and the checksums: "checksum" and one CRC-32 of each tensor's bytes, zlib's polynomial
    assert_string_equal(fnet_json_get(md, "checksum")->str, "crc32");
    assert_int_equal(md->len, 5 + 2 + 6);
    // the metadata's own: the entries before the checksums, key NUL value NUL, by key:
    // classes, format, input, spec, version
    static const char *const by_key[] = {"classes", "format", "input", "spec", "version"};
    uLong mc = 0;
    for (int k = 0; k < 5; k++) {
        const struct fnet_json *e = fnet_json_get(md, by_key[k]);
        mc = crc32(mc, (const unsigned char *)e->key, (unsigned)strlen(e->key) + 1);
        mc = crc32(mc, (const unsigned char *)e->str, (unsigned)strlen(e->str) + 1);
    }
    char mcs[16];
    snprintf(mcs, sizeof(mcs), "%08lx", mc);
    assert_string_equal(fnet_json_get(md, "metadata_crc32")->str, mcs);
    i = 0;
    for (const struct fnet_json *e = root->child; e != NULL && i < 6; e = e->next, i++) {
        char key[64], want[16];
        snprintf(key, sizeof(key), "crc32.%s", e->key);
        const struct fnet_json *off = fnet_json_get(e, "data_offsets");
        int64_t begin = off->child->integer, end = off->child->next->integer;
        snprintf(want, sizeof(want), "%08lx",
                 crc32(0, b.p + 8 + h + begin, (unsigned)(end - begin)));
        assert_string_equal(fnet_json_get(md, key)->str, want);
    }

    fnet_json_free(doc);
    free(b.p);
    fnet_model_free(m);
    free(path);
    free(dir);
}

static void test_checkpoint_round_trip_restores_adam_state(void **state)
{
    (void)state;
    char *dir = tmpdir(), *path = join(dir, "adam.safetensors");
    fnet_model *m = make_model(SPEC, 5);
    fnet_optimizer *opt = make_adam(m, 3, 100);
    assert_int_equal(fnet_optimizer_steps(opt), 3);
    int64_t n;
    float *w = params_copy(m, &n);
    fnet_assert_ok(ctx, fnet_model_save(m, opt, path));

    fnet_model *m2 = make_model(SPEC, 6);
    fnet_optimizer *opt2 = make_adam(m2, 0, 0);
    fnet_assert_ok(ctx, fnet_model_load_params(m2, opt2, path));
    assert_params_equal(m2, w, n);
    assert_int_equal(fnet_optimizer_steps(opt2), 3);
    assert_int_equal(fnet_optimizer_num_states(opt2), 2);
    assert_same_state(opt, opt2);
    float *v = state_copy(opt2, 1);
    bool nonzero = false;
    for (int64_t i = 0; i < n; i++)
        nonzero |= v[i] != 0.0f;
    assert_true(nonzero); // the steps left a real state to compare
    free(v);

    // the header names the state and the step count; fnet_model_load ignores the state
    struct fnet_test_bytes b = fnet_test_read_file(path);
    uint64_t h = 0;
    for (int i = 7; i >= 0; i--)
        h = h << 8 | b.p[i];
    struct fnet_json_doc *doc = NULL;
    fnet_assert_ok(ctx, fnet_json_parse(ctx, "header", (const char *)b.p + 8, h, 1000, &doc));
    const struct fnet_json *root = fnet_json_root(doc);
    const struct fnet_json *md = fnet_json_get(root, "__metadata__");
    assert_string_equal(fnet_json_get(md, "optimizer")->str, "adam");
    assert_string_equal(fnet_json_get(md, "optimizer_steps")->str, "3");
    const struct fnet_json *sv = fnet_json_get(root, "optimizer.v");
    assert_non_null(sv);
    assert_int_equal(fnet_json_get(sv, "shape")->child->integer, n);
    assert_non_null(fnet_json_get(root, "optimizer.m"));
    fnet_json_free(doc);
    free(b.p);
    fnet_model *l = NULL;
    fnet_assert_ok(ctx, fnet_model_load(ctx, path, &l));
    assert_params_equal(l, w, n);

    fnet_model_free(l);
    fnet_optimizer_free(opt2);
    fnet_model_free(m2);
    fnet_optimizer_free(opt);
    fnet_model_free(m);
    free(w);
    free(path);
    free(dir);
}

// A checkpoint holds numbers, not a backend's memory: saved with its Adam state on the backend
// under test, it loads on the reference backend (the oracle) with the same parameters and
// state, and the other way round.
static void test_checkpoint_moves_between_the_backend_under_test_and_the_reference(void **state)
{
    (void)state;
    char *dir = tmpdir(), *path = join(dir, "adam.safetensors");
    fnet_ctx *ref = NULL;
    fnet_assert_ok(NULL, fnet_ctx_create_reference(&ref));
    fnet_ctx *ctxs[2] = {ctx, ref};
    for (int from = 0; from < 2; from++) {
        fnet_ctx *src = ctxs[from], *dst = ctxs[1 - from];
        fnet_model *m = NULL, *m2 = NULL;
        fnet_assert_ok(src, fnet_model_create_from_spec(src, SPEC, N_IN, 21, &m));
        fnet_optimizer *opt = make_adam(m, 4, 300);
        fnet_assert_ok(src, fnet_model_save(m, opt, path));

        fnet_assert_ok(dst, fnet_model_create_from_spec(dst, SPEC, N_IN, 22, &m2));
        fnet_optimizer *opt2 = make_adam(m2, 0, 0);
        fnet_assert_ok(dst, fnet_model_load_params(m2, opt2, path));
        assert_same_params(m, m2);
        assert_same_state(opt, opt2);
        fnet_model *l = NULL;
        fnet_assert_ok(dst, fnet_model_load(dst, path, &l));
        assert_same_params(m, l);

        fnet_model_free(l);
        fnet_optimizer_free(opt2);
        fnet_model_free(m2);
        fnet_optimizer_free(opt);
        fnet_model_free(m);
    }
    fnet_ctx_free(ref);
    free(path);
    free(dir);
}

static void test_checkpoint_without_optimizer_state_leaves_optimizer_alone(void **state)
{
    (void)state;
    char *dir = tmpdir(), *path = join(dir, "plain.safetensors");
    fnet_model *m = make_model(SPEC, 1);
    fnet_assert_ok(ctx, fnet_model_save(m, NULL, path));
    fnet_model *m2 = make_model(SPEC, 2);
    fnet_optimizer *opt = make_adam(m2, 2, 50);
    int64_t n = fnet_model_num_params(m2);
    float *before = state_copy(opt, 0);

    fnet_assert_ok(ctx, fnet_model_load_params(m2, opt, path));
    assert_same_params(m, m2);
    assert_int_equal(fnet_optimizer_steps(opt), 2);
    float *after = state_copy(opt, 0);
    assert_memory_equal(after, before, (size_t)n * sizeof(float));

    free(after);
    free(before);
    fnet_optimizer_free(opt);
    fnet_model_free(m2);
    fnet_model_free(m);
    free(path);
    free(dir);
}

static void test_checkpoint_rejects_state_of_another_optimizer_kind(void **state)
{
    (void)state;
    char *dir = tmpdir(), *path = join(dir, "adam.safetensors");
    fnet_model *m = make_model(SPEC, 1);
    fnet_optimizer *adam = make_adam(m, 2, 9);
    fnet_assert_ok(ctx, fnet_model_save(m, adam, path));

    fnet_model *m2 = make_model(SPEC, 2);
    int64_t n;
    float *w2 = params_copy(m2, &n);
    fnet_optim_params op = fnet_optim_params_default(FNET_OPTIM_MOMENTUM);
    fnet_optimizer *mom = NULL;
    fnet_assert_ok(ctx, fnet_optimizer_create(ctx, &op, n, &mom));
    expect_failure(fnet_model_load_params(m2, mom, path), FNET_ERR_FORMAT,
                   "adam.safetensors: the file holds the state of a 'adam' optimizer (2 vectors), "
                   "which does not fit the given 'momentum' optimizer (1)");
    assert_params_equal(m2, w2, n); // unchanged
    assert_int_equal(fnet_optimizer_steps(mom), 0);

    free(w2);
    fnet_optimizer_free(mom);
    fnet_model_free(m2);
    fnet_optimizer_free(adam);
    fnet_model_free(m);
    free(path);
    free(dir);
}

static void test_checkpoint_peek_reads_spec_and_input_only(void **state)
{
    (void)state;
    char *dir = tmpdir(), *path = join(dir, "peek.safetensors");
    fnet_model *m = make_model(SPEC, 1);
    fnet_assert_ok(ctx, fnet_model_save(m, NULL, path));
    char spec[128];
    int64_t n_in = 0;
    fnet_assert_ok(ctx, fnet_checkpoint_peek(ctx, path, spec, sizeof(spec), &n_in));
    assert_string_equal(spec, fnet_model_spec(m));
    assert_int_equal(n_in, N_IN);

    size_t need = strlen(fnet_model_spec(m)) + 1;
    expect_failure(fnet_checkpoint_peek(ctx, path, spec, need - 1, &n_in), FNET_ERR_INVALID_ARG,
                   "does not fit in");
    fnet_assert_ok(ctx, fnet_checkpoint_peek(ctx, path, spec, need, NULL));
    assert_string_equal(spec, fnet_model_spec(m));

    // only the header is read, but checked against the file's size: a cut file does not peek
    struct fnet_test_bytes b = fnet_test_read_file(path);
    fnet_test_write_file(path, b.p, b.n - 4);
    expect_failure(fnet_checkpoint_peek(ctx, path, spec, sizeof(spec), &n_in), FNET_ERR_FORMAT,
                   "truncated file?");
    free(b.p);
    expect_failure(fnet_checkpoint_peek(ctx, "/nonexistent/x.safetensors", spec, sizeof(spec),
                                        &n_in),
                   FNET_ERR_IO, "/nonexistent/x.safetensors: cannot open: No such file");
    fnet_model_free(m);
    free(path);
    free(dir);
}

// ---------------------------------------------------------------- corrupt files

// A hand-written checkpoint of "dense:2,relu,dense:2" with 2 inputs: 12 floats, 48 bytes.
#define TENSOR(name, dtype, shape, b, e)                                                           \
    "\"" name "\":{\"dtype\":\"" dtype "\",\"shape\":" shape ",\"data_offsets\":[" #b "," #e "]}"
#define META_WITH(format, spec, input, classes)                                                    \
    "\"__metadata__\":{\"format\":\"" format "\",\"version\":\"1\",\"spec\":\"" spec               \
    "\",\"input\":\"" input "\",\"classes\":\"" classes "\"}"
#define META META_WITH("factornet", "dense:2,relu,dense:2", "2", "2")
#define W0 TENSOR("layers.0.weight", "F32", "[2,2]", 0, 16)
#define B0 TENSOR("layers.0.bias", "F32", "[2]", 16, 24)
#define W2 TENSOR("layers.2.weight", "F32", "[2,2]", 24, 40)
#define B2 TENSOR("layers.2.bias", "F32", "[2]", 40, 48)

struct corrupt_case {
    const char *header;
    size_t data_len;
    fnet_status status;
    const char *message; // a part of the message
};

static void test_checkpoint_hand_written_file_loads(void **state)
{
    (void)state;
    char *dir = tmpdir(), *path = join(dir, "model.safetensors");
    write_st(path, "{" W0 "," B0 "," W2 "," B2 "," META "}", 48);
    fnet_model *m = NULL;
    fnet_assert_ok(ctx, fnet_model_load(ctx, path, &m));
    int64_t n;
    float *w = params_copy(m, &n);
    assert_int_equal(n, 12);
    for (int i = 0; i < 12; i++)
        assert_true(w[i] == (float)i); // the data as written, in layer order
    free(w);
    fnet_model_free(m);
    free(path);
    free(dir);
}

static void test_checkpoint_rejects_every_corruption_with_a_precise_message(void **state)
{
    (void)state;
    const struct corrupt_case cases[] = {
        {"[1,2]", 0, FNET_ERR_FORMAT, "model.safetensors: header is a JSON array, not an object"},
        {"{\"a\":", 0, FNET_ERR_FORMAT, "model.safetensors: invalid JSON at byte 5"},
        {"{" W0 "," B0 "," W2 "," B2 "," META "} x", 48, FNET_ERR_FORMAT,
         "trailing characters after the document"},
        {"{" TENSOR("layers.0.weight", "F16", "[2,2]", 0, 16) "," B0 "," W2 "," B2 "," META "}",
         48, FNET_ERR_FORMAT,
         "model.safetensors: tensor 'layers.0.weight': dtype 'F16' is not supported (F32, I32, U8)"},
        {"{" TENSOR("layers.0.weight", "F32", "[2,3]", 0, 16) "," B0 "," W2 "," B2 "," META "}",
         48, FNET_ERR_FORMAT,
         "tensor 'layers.0.weight': data_offsets [0, 16] hold 16 bytes but shape [2, 3] of F32 "
         "needs 24"},
        {"{" W0 "," B0 "," W2 "," TENSOR("layers.2.bias", "F32", "[2]", 48, 56) "," META "}", 48,
         FNET_ERR_FORMAT,
         "tensor 'layers.2.bias': data_offsets [48, 56] exceed the data buffer of 48 bytes"},
        {"{" W0 "," TENSOR("layers.0.bias", "F32", "[2]", 8, 16) "," W2 "," B2 "," META "}", 48,
         FNET_ERR_FORMAT,
         "tensor 'layers.0.bias': data_offsets [8, 16] overlap tensor 'layers.0.weight' ending "
         "at 16"},
        {"{" W0 "," TENSOR("layers.0.bias", "F32", "[2]", 20, 28) "," TENSOR(
             "layers.2.weight", "F32", "[2,2]", 28, 44) "," TENSOR("layers.2.bias", "F32", "[2]",
                                                                   44, 52) "," META "}",
         52, FNET_ERR_FORMAT,
         "tensor 'layers.0.bias': data_offsets [20, 28] leave a gap of 4 bytes before them"},
        {"{" W0 "," B0 "," W2 "," B2 "," META "}", 52, FNET_ERR_FORMAT,
         "model.safetensors: 4 bytes at the end of the data belong to no tensor"},
        {"{" TENSOR("layers.0.weight", "F32", "[2,-2]", 0, 16) "," B0 "," W2 "," B2 "," META "}",
         48, FNET_ERR_FORMAT, "tensor 'layers.0.weight': shape[1] is not a non-negative integer"},
        {"{" TENSOR("layers.0.weight", "F32", "[2,2.0]", 0, 16) "," B0 "," W2 "," B2 "," META "}",
         48, FNET_ERR_FORMAT, "tensor 'layers.0.weight': shape[1] is not a non-negative integer"},
        {"{" TENSOR("layers.0.weight", "F32", "[1,1,1,1,1,1,1,1,4]", 0, 16) "," B0 "," W2 "," B2
         "," META "}",
         48, FNET_ERR_FORMAT, "tensor 'layers.0.weight': shape has 9 dimensions, more than 8"},
        {"{" TENSOR("layers.0.weight", "F32", "[4294967296,4294967296]", 0, 16) "," B0 "," W2 ","
         B2 "," META "}",
         48, FNET_ERR_FORMAT, "tensor 'layers.0.weight': shape's element count overflows"},
        {"{" TENSOR("layers.0.weight", "F32", "[2,2]", 16, 0) "," B0 "," W2 "," B2 "," META "}",
         48, FNET_ERR_FORMAT, "data_offsets [16, 0] begin after they end"},
        {"{" TENSOR("layers.0.weight", "F32", "[2,2]", 0, 1e1) "," B0 "," W2 "," B2 "," META "}",
         48, FNET_ERR_FORMAT,
         "tensor 'layers.0.weight': data_offsets is not [begin, end] of two non-negative"},
        {"{\"layers.0.weight\":{\"dtype\":\"F32\",\"shape\":[2,2]}," B0 "," W2 "," B2 "," META "}",
         48, FNET_ERR_FORMAT, "tensor 'layers.0.weight': missing field 'data_offsets'"},
        {"{\"layers.0.weight\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16],"
         "\"x\":1}," B0 "," W2 "," B2 "," META "}",
         48, FNET_ERR_FORMAT, "tensor 'layers.0.weight': unexpected field 'x'"},
        {"{\"layers.0.weight\":[]," B0 "," W2 "," B2 "," META "}", 48, FNET_ERR_FORMAT,
         "tensor 'layers.0.weight': entry is a JSON array, not an object"},
        {"{" W0 "," W0 "," B0 "," W2 "," B2 "," META "}", 48, FNET_ERR_FORMAT,
         "duplicate key 'layers.0.weight'"},
        {"{" W0 "," B0 "," W2 "," B2 "}", 48, FNET_ERR_FORMAT,
         "model.safetensors: no __metadata__: not a factornet checkpoint"},
        {"{" W0 "," B0 "," W2 "," B2 ",\"__metadata__\":[]}", 48, FNET_ERR_FORMAT,
         "__metadata__ is a JSON array, not an object"},
        {"{" W0 "," B0 "," W2 "," B2 ",\"__metadata__\":{\"format\":1}}", 48, FNET_ERR_FORMAT,
         "metadata 'format' is a JSON integer, not a string"},
        {"{" W0 "," B0 "," W2 "," B2 "," META_WITH("pytorch", "dense:2,relu,dense:2", "2", "2")
         "}",
         48, FNET_ERR_FORMAT,
         "model.safetensors: metadata 'format' is 'pytorch', expected 'factornet'"},
        {"{" W0 "," B0 "," W2 "," B2 ",\"__metadata__\":{\"format\":\"factornet\",\"version\":"
         "\"2\",\"spec\":\"dense:2,relu,dense:2\",\"input\":\"2\",\"classes\":\"2\"}}",
         48, FNET_ERR_FORMAT, "metadata 'version' is '2'; this library reads version 1"},
        {"{" W0 "," B0 "," W2 "," B2 "," META_WITH("factornet", "dense:2,bogus,dense:2", "2", "2")
         "}",
         48, FNET_ERR_FORMAT,
         "model.safetensors: metadata 'spec' 'dense:2,bogus,dense:2' with input 2 does not build "
         "a model"},
        {"{" W0 "," B0 "," W2 "," B2 "," META_WITH("factornet", "dense:2,relu,dense:2", "x", "2")
         "}",
         48, FNET_ERR_FORMAT, "metadata 'input' is 'x', expected an integer >= 1"},
        {"{" W0 "," B0 "," W2 "," B2 "," META_WITH("factornet", "dense:2,relu,dense:2", "2", "3")
         "}",
         48, FNET_ERR_FORMAT,
         "metadata 'classes' is 3 but spec 'dense:2,relu,dense:2' gives 2 outputs"},
        {"{" W0 "," B0 "," W2 "," META "}", 40, FNET_ERR_FORMAT,
         "model.safetensors: missing tensor 'layers.2.bias' (shape [2])"},
        {"{" W0 "," B0 "," W2 "," B2 "," TENSOR("layers.1.weight", "F32", "[1]", 48, 52) ","
         META "}",
         52, FNET_ERR_FORMAT, "model.safetensors: unexpected tensor 'layers.1.weight'"},
        {"{" W0 "," B0 "," W2 "," B2 "," TENSOR("extra", "F32", "[1]", 48, 52) "," META "}", 52,
         FNET_ERR_FORMAT,
         "unexpected tensor 'extra' (not layers.*, optimizer.*, run.* or solver.*)"},
        {"{" TENSOR("layers.0.weight", "F32", "[4]", 0, 16) "," B0 "," W2 "," B2 "," META "}", 48,
         FNET_ERR_FORMAT,
         "model.safetensors: tensor 'layers.0.weight': shape [4] does not match the model's "
         "[2, 2]"},
        {"{" W0 "," B0 "," W2 "," B2 "," TENSOR("optimizer.m", "F32", "[12]", 48, 96) "," META
         "}",
         96, FNET_ERR_FORMAT, "optimizer state without metadata 'optimizer'"},
    };
    char *dir = tmpdir(), *path = join(dir, "model.safetensors");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        write_st(path, cases[i].header, cases[i].data_len);
        fnet_model *m = (fnet_model *)&m;
        fnet_status st = fnet_model_load(ctx, path, &m);
        if (st != cases[i].status || strstr(fnet_ctx_last_error(ctx), cases[i].message) == NULL)
            fail_msg("case %zu: status %d (want %d), message '%s' (want '%s')", i, (int)st,
                     (int)cases[i].status, fnet_ctx_last_error(ctx), cases[i].message);
        assert_null(m);
    }
    free(path);
    free(dir);
}

static void test_checkpoint_rejects_short_files_and_bad_header_lengths(void **state)
{
    (void)state;
    char *dir = tmpdir(), *path = join(dir, "model.safetensors");
    fnet_test_write_file(path, "", 0);
    expect_load_failure(path, FNET_ERR_FORMAT, "model.safetensors: file is 0 bytes, too short");
    fnet_test_write_file(path, "\x02\0\0\0\0", 5);
    expect_load_failure(path, FNET_ERR_FORMAT, "model.safetensors: file is 5 bytes, too short");
    // header length 1000 with 4 bytes after it
    fnet_test_write_file(path, "\xe8\x03\0\0\0\0\0\0{}  ", 12);
    expect_load_failure(path, FNET_ERR_FORMAT,
                        "model.safetensors: header length 1000 exceeds the 4 bytes that follow it");
    // a header length of 2^64 - 1 must not overflow the check
    fnet_test_write_file(path, "\xff\xff\xff\xff\xff\xff\xff\xff{}", 10);
    expect_load_failure(path, FNET_ERR_FORMAT, "header length 18446744073709551615 exceeds");
    // a header over the 100 MiB limit is refused before it is read (sparse file)
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite("\0\0\0\x07\0\0\0\0", 1, 8, f), 8); // 7·2^24 = 112 MiB
    assert_int_equal(fseek(f, 120L << 20, SEEK_SET), 0);
    assert_int_equal(fwrite("x", 1, 1, f), 1);
    assert_int_equal(fclose(f), 0);
    expect_load_failure(path, FNET_ERR_FORMAT, "header length 117440512 exceeds the limit of "
                                               "104857600 bytes");
    // an empty header is not JSON
    fnet_test_write_file(path, "\0\0\0\0\0\0\0\0", 8);
    expect_load_failure(path, FNET_ERR_FORMAT, "invalid JSON at byte 0: unexpected end of input");
    expect_load_failure("/nonexistent/dir/model.safetensors", FNET_ERR_IO,
                        "/nonexistent/dir/model.safetensors: cannot open: No such file or "
                        "directory");
    expect_load_failure(dir, FNET_ERR_IO, "not a regular file");
    free(path);
    free(dir);
}

static void test_checkpoint_rejects_truncated_data(void **state)
{
    (void)state;
    char *dir = tmpdir(), *path = join(dir, "model.safetensors");
    fnet_model *m = make_model(SPEC, 3);
    fnet_assert_ok(ctx, fnet_model_save(m, NULL, path));
    struct fnet_test_bytes b = fnet_test_read_file(path);
    fnet_test_write_file(path, b.p, b.n - 6);
    int64_t n = fnet_model_num_params(m);
    char msg[256];
    snprintf(msg, sizeof(msg), "tensor 'layers.4.bias': data_offsets [%lld, %lld] exceed the data "
             "buffer of %lld bytes (truncated file?)", (long long)(4 * n - 12),
             (long long)(4 * n), (long long)(4 * n - 6));
    expect_load_failure(path, FNET_ERR_FORMAT, msg);
    // cut inside the header
    fnet_test_write_file(path, b.p, 20);
    expect_load_failure(path, FNET_ERR_FORMAT, "exceeds the 12 bytes that follow it");
    free(b.p);
    fnet_model_free(m);
    free(path);
    free(dir);
}

static void test_checkpoint_load_params_rejects_other_spec_and_keeps_model(void **state)
{
    (void)state;
    char *dir = tmpdir(), *path = join(dir, "model.safetensors");
    fnet_model *m = make_model(SPEC, 3);
    fnet_assert_ok(ctx, fnet_model_save(m, NULL, path));

    fnet_model *other = make_model("dense:16,relu,dense:8,relu,dense:3", 4);
    int64_t n;
    float *w = params_copy(other, &n);
    assert_int_equal(n, fnet_model_num_params(m)); // same sizes, another architecture
    expect_failure(fnet_model_load_params(other, NULL, path), FNET_ERR_SHAPE,
                   "model.safetensors: checkpoint of '" SPEC "' with input 10 does not fit the "
                   "model 'dense:16,relu,dense:8,relu,dense:3' with input 10");
    assert_params_equal(other, w, n);
    free(w);

    // the same architecture but a corrupt tensor: FORMAT, and still nothing written
    fnet_model *same = make_model(SPEC, 5);
    w = params_copy(same, &n);
    struct fnet_test_bytes b = fnet_test_read_file(path);
    fnet_test_write_file(path, b.p, b.n - 4);
    expect_failure(fnet_model_load_params(same, NULL, path), FNET_ERR_FORMAT, "truncated file?");
    assert_params_equal(same, w, n);
    free(b.p);
    free(w);

    fnet_model_free(same);
    fnet_model_free(other);
    fnet_model_free(m);
    free(path);
    free(dir);
}

// ---------------------------------------------------------------- atomic save

static void test_checkpoint_failed_save_leaves_existing_file_untouched(void **state)
{
    (void)state;
    char *dir = tmpdir(), *path = join(dir, "a.safetensors");
    fnet_model *a = make_model(SPEC, 1), *b = make_model(SPEC, 2);
    fnet_assert_ok(ctx, fnet_model_save(a, NULL, path));
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0644); // not mkstemp's 0600
    struct fnet_test_bytes good = fnet_test_read_file(path);

    // a directory that does not exist
    char *missing = join(dir, "no/such/dir/a.safetensors");
    expect_failure(fnet_model_save(b, NULL, missing), FNET_ERR_IO, "no/such/dir/a.safetensors: "
                   "cannot create a temporary file beside it: No such file or directory");
    // a destination that is a directory: the temporary file is written, the rename fails
    char *sub = join(dir, "sub");
    assert_int_equal(mkdir(sub, 0755), 0);
    expect_failure(fnet_model_save(b, NULL, sub), FNET_ERR_IO, "not a regular file");
    assert_int_equal(count_tmp_files(dir), 0);

    // out of memory at each allocation in turn, until the save goes through
    int failures = 0;
    for (long k = 1;; k++) {
        fnet_debug_fail_alloc(k);
        fnet_status st = fnet_model_save(b, NULL, path);
        fnet_debug_fail_alloc(0);
        if (st == FNET_OK)
            break;
        assert_true(st == FNET_ERR_OUT_OF_MEMORY || st == FNET_ERR_IO);
        failures++;
        struct fnet_test_bytes now = fnet_test_read_file(path);
        assert_int_equal(now.n, good.n);
        assert_memory_equal(now.p, good.p, good.n);
        free(now.p);
        assert_int_equal(count_tmp_files(dir), 0);
        fnet_model *l = NULL;
        fnet_assert_ok(ctx, fnet_model_load(ctx, path, &l)); // A still loads
        assert_same_params(a, l);
        fnet_model_free(l);
        assert_true(k < 100);
    }
    assert_true(failures >= 3); // tensor list, names, header, temporary name
    assert_int_equal(count_tmp_files(dir), 0);
    fnet_model *l = NULL;
    fnet_assert_ok(ctx, fnet_model_load(ctx, path, &l)); // now B
    assert_same_params(b, l);
    fnet_model_free(l);

    free(good.p);
    free(sub);
    free(missing);
    fnet_model_free(b);
    fnet_model_free(a);
    free(path);
    free(dir);
}

// ---------------------------------------------------------------- out of memory on load

static void test_checkpoint_load_reports_out_of_memory_for_each_allocation(void **state)
{
    (void)state;
    char *dir = tmpdir(), *path = join(dir, "model.safetensors");
    fnet_model *m = make_model(SPEC, 8);
    fnet_optimizer *opt = make_adam(m, 1, 4);
    fnet_assert_ok(ctx, fnet_model_save(m, opt, path));
    int64_t n;
    float *w = params_copy(m, &n);

    int failures = 0;
    for (long k = 1;; k++) {
        fnet_model *l = (fnet_model *)&l;
        fnet_debug_fail_alloc(k);
        fnet_status st = fnet_model_load(ctx, path, &l);
        fnet_debug_fail_alloc(0);
        if (st == FNET_OK) {
            assert_params_equal(l, w, n);
            fnet_model_free(l);
            break;
        }
        expect_failure(st, FNET_ERR_OUT_OF_MEMORY, "");
        assert_null(l);
        failures++;
        assert_true(k < 1000);
    }
    assert_true(failures >= 6); // reader, file, JSON (3), index, then the model's own

    // load_params: out of memory changes neither the model nor the optimizer
    fnet_model *m2 = make_model(SPEC, 9);
    fnet_optimizer *opt2 = make_adam(m2, 0, 0);
    float *w2 = params_copy(m2, &n);
    for (long k = 1;; k++) {
        fnet_debug_fail_alloc(k);
        fnet_status st = fnet_model_load_params(m2, opt2, path);
        fnet_debug_fail_alloc(0);
        if (st == FNET_OK)
            break;
        expect_failure(st, FNET_ERR_OUT_OF_MEMORY, "");
        assert_params_equal(m2, w2, n);
        assert_int_equal(fnet_optimizer_steps(opt2), 0);
        assert_true(k < 1000);
    }
    assert_params_equal(m2, w, n);
    assert_int_equal(fnet_optimizer_steps(opt2), 1);

    free(w2);
    fnet_optimizer_free(opt2);
    fnet_model_free(m2);
    free(w);
    fnet_optimizer_free(opt);
    fnet_model_free(m);
    free(path);
    free(dir);
}

// ---------------------------------------------------------------- random damage

static bool tolerated(fnet_status st)
{
    return st == FNET_OK || st == FNET_ERR_FORMAT || st == FNET_ERR_IO || st == FNET_ERR_SHAPE;
}

static void test_checkpoint_survives_random_flips_and_truncations(void **state)
{
    (void)state;
    char *dir = tmpdir(), *path = join(dir, "good.safetensors"), *bad = join(dir, "bad.st");
    fnet_model *m = make_model(SPEC, 12);
    fnet_optimizer *opt = make_adam(m, 2, 77);
    fnet_assert_ok(ctx, fnet_model_save(m, opt, path));
    struct fnet_test_bytes good = fnet_test_read_file(path);
    uint64_t h = 0;
    for (int i = 7; i >= 0; i--)
        h = h << 8 | good.p[i];
    unsigned char *buf = malloc(good.n);
    assert_non_null(buf);
    fnet_model *target = make_model(SPEC, 13);
    fnet_optim_params op = fnet_optim_params_default(FNET_OPTIM_ADAM);
    fnet_optimizer *topt = NULL;
    fnet_assert_ok(ctx, fnet_optimizer_create(ctx, &op, fnet_model_num_params(target), &topt));

    fnet_rng rng;
    fnet_rng_seed(&rng, 2024);
    int ok = 0, rejected = 0;
    for (int round = 0; round < FUZZ_ROUNDS; round++) {
        memcpy(buf, good.p, good.n);
        size_t len = good.n;
        bool data_damaged = false;
        if (fnet_rng_below(&rng, 4) == 0) {
            len = (size_t)fnet_rng_below(&rng, good.n);
        } else {
            int flips = 1 + (int)fnet_rng_below(&rng, 4);
            for (int f = 0; f < flips; f++) {
                // mostly in the length and header, where damage matters
                size_t span = fnet_rng_below(&rng, 4) ? 8 + (size_t)h : good.n;
                size_t at = (size_t)fnet_rng_below(&rng, span);
                buf[at] ^= (unsigned char)(1 + fnet_rng_below(&rng, 255));
            }
            data_damaged = memcmp(buf + 8 + h, good.p + 8 + h, good.n - 8 - h) != 0;
        }
        fnet_test_write_file(bad, buf, len);

        fnet_model *l = NULL;
        fnet_status st = fnet_model_load(ctx, bad, &l);
        if (!tolerated(st))
            fail_msg("round %d: load status %d: %s", round, (int)st, fnet_ctx_last_error(ctx));
        if (st == FNET_OK) {
            assert_non_null(l);
            if (data_damaged) // the checksums see every change to the tensors' bytes
                fail_msg("round %d: damaged tensor data loaded", round);
            ok++;
        } else {
            assert_null(l);
            rejected++;
        }
        fnet_model_free(l);
        st = fnet_model_load_params(target, topt, bad);
        if (!tolerated(st))
            fail_msg("round %d: load_params status %d: %s", round, (int)st,
                     fnet_ctx_last_error(ctx));
        char spec[256];
        int64_t n_in;
        st = fnet_checkpoint_peek(ctx, bad, spec, sizeof(spec), &n_in);
        if (!tolerated(st))
            fail_msg("round %d: peek status %d: %s", round, (int)st, fnet_ctx_last_error(ctx));
    }
    assert_int_equal(ok + rejected, FUZZ_ROUNDS);
    assert_true(rejected > FUZZ_ROUNDS / 2); // most damage to the header is caught

    fnet_optimizer_free(topt);
    fnet_model_free(target);
    free(buf);
    free(good.p);
    fnet_optimizer_free(opt);
    fnet_model_free(m);
    free(bad);
    free(path);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checkpoint_round_trip_restores_params_bit_for_bit),
        cmocka_unit_test(test_checkpoint_header_names_tensors_like_nn_sequential_and_aligns_data),
        cmocka_unit_test(test_checkpoint_round_trip_restores_adam_state),
        cmocka_unit_test(test_checkpoint_moves_between_the_backend_under_test_and_the_reference),
        cmocka_unit_test(test_checkpoint_without_optimizer_state_leaves_optimizer_alone),
        cmocka_unit_test(test_checkpoint_rejects_state_of_another_optimizer_kind),
        cmocka_unit_test(test_checkpoint_peek_reads_spec_and_input_only),
        cmocka_unit_test(test_checkpoint_hand_written_file_loads),
        cmocka_unit_test(test_checkpoint_rejects_every_corruption_with_a_precise_message),
        cmocka_unit_test(test_checkpoint_rejects_short_files_and_bad_header_lengths),
        cmocka_unit_test(test_checkpoint_rejects_truncated_data),
        cmocka_unit_test(test_checkpoint_load_params_rejects_other_spec_and_keeps_model),
        cmocka_unit_test(test_checkpoint_failed_save_leaves_existing_file_untouched),
        cmocka_unit_test(test_checkpoint_load_reports_out_of_memory_for_each_allocation),
        cmocka_unit_test(test_checkpoint_survives_random_flips_and_truncations),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
