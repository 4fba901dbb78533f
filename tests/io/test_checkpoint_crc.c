/* Tests of the checkpoints' checksums (src/io/safetensors.c): every single-bit flip in the tensor
 * data of a small checkpoint is refused with an error naming the file and the tensor, and every
 * single-bit flip anywhere in the file (length, header, metadata) is refused; damaged or
 * missing checksum metadata is refused; checkpoints written before the checksums (fixtures in
 * tests/io/data, written by the library of commit 2269cec) still load, and save again with them. */
#include "test_util.h"
#include "io/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SPEC "dense:3,relu,dense:2"
#define N_IN 4

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

static char *path_in_tmp(const char *name)
{
    const char *d = fnet_test_tmpdir();
    size_t n = strlen(d) + strlen(name) + 2;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/%s", d, name);
    return p;
}

static uint64_t header_len(const struct fnet_test_bytes *b)
{
    uint64_t h = 0;
    for (int i = 7; i >= 0; i--)
        h = h << 8 | b->p[i];
    return h;
}

// The tensor whose data holds byte `at` of the data section (the header's data_offsets).
static const char *tensor_at(const struct fnet_json *root, uint64_t at)
{
    for (const struct fnet_json *e = root->child; e != NULL; e = e->next) {
        const struct fnet_json *off = fnet_json_get(e, "data_offsets");
        if (off != NULL && (uint64_t)off->child->integer <= at &&
            at < (uint64_t)off->child->next->integer)
            return e->key;
    }
    return NULL;
}

// Every single-bit flip anywhere in the tensor data (weights and Adam's two state vectors) is
// refused by every loader, as a format error naming the file and the tensor that holds the bit.
static void test_every_single_bit_flip_in_the_data_is_detected(void **state)
{
    (void)state;
    char *path = path_in_tmp("crc.safetensors"), *bad = path_in_tmp("crc-bad.safetensors");
    fnet_model *m = NULL, *target = NULL;
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, SPEC, N_IN, 5, &m));
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, SPEC, N_IN, 6, &target));
    fnet_optim_params op = fnet_optim_params_default(FNET_OPTIM_ADAM);
    fnet_optimizer *opt = NULL;
    fnet_assert_ok(ctx, fnet_optimizer_create(ctx, &op, fnet_model_num_params(m), &opt));
    fnet_assert_ok(ctx, fnet_model_save(m, opt, path));
    struct fnet_test_bytes good = fnet_test_read_file(path);
    uint64_t h = header_len(&good);
    struct fnet_json_doc *doc = NULL;
    fnet_assert_ok(ctx, fnet_json_parse(ctx, "header", (const char *)good.p + 8, h, 1000, &doc));
    const struct fnet_json *root = fnet_json_root(doc);
    float *before = fnet_test_model_params(target);
    int64_t n = fnet_model_num_params(target);

    unsigned char *buf = malloc(good.n);
    assert_non_null(buf);
    size_t data = good.n - 8 - h, flips = 0;
    assert_int_equal(data, 3 * 4 * (size_t)n); // weights, m, v
    for (size_t byte = 0; byte < data; byte++) {
        const char *tensor = tensor_at(root, byte);
        assert_non_null(tensor);
        char want[160];
        snprintf(want, sizeof(want), "tensor '%s': its bytes do not match their CRC-32", tensor);
        for (int bit = 0; bit < 8; bit++, flips++) {
            memcpy(buf, good.p, good.n);
            buf[8 + h + byte] ^= (unsigned char)(1u << bit);
            fnet_test_write_file(bad, buf, good.n);
            fnet_model *l = (fnet_model *)&l;
            assert_int_equal(fnet_model_load(ctx, bad, &l), FNET_ERR_FORMAT);
            assert_null(l);
            assert_non_null(strstr(fnet_ctx_last_error(ctx), bad));
            if (strstr(fnet_ctx_last_error(ctx), want) == NULL)
                fail_msg("byte %zu bit %d: '%s' lacks \"%s\"", byte, bit,
                         fnet_ctx_last_error(ctx), want);
            assert_int_equal(fnet_model_load_params(target, opt, bad), FNET_ERR_FORMAT);
        }
    }
    assert_int_equal(flips, 8 * data);
    // and nothing of the target changed
    float *after = fnet_test_model_params(target);
    assert_memory_equal(after, before, (size_t)n * sizeof(float));
    // the undamaged file loads
    fnet_model *l = NULL;
    fnet_assert_ok(ctx, fnet_model_load(ctx, path, &l));
    fnet_model_free(l);

    free(after);
    free(before);
    free(buf);
    fnet_json_free(doc);
    free(good.p);
    fnet_optimizer_free(opt);
    fnet_model_free(target);
    fnet_model_free(m);
    free(bad);
    free(path);
}

// Every single-bit flip anywhere in a checkpoint with a run's metadata (the length field, the
// header's JSON, the metadata values, the padding, the data): refused by every loader. The
// metadata has its own CRC-32, so even a flip that leaves a well-formed file (a digit of
// optimizer_steps, a letter of the spec) is caught.
static void test_every_single_bit_flip_in_the_file_is_refused(void **state)
{
    (void)state;
    char *path = path_in_tmp("all.safetensors"), *bad = path_in_tmp("all-bad.safetensors");
    fnet_model *m = NULL;
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, "dense:2,tanh,dropout:0.25,dense:2", 3, 5,
                                                    &m));
    fnet_optim_params op = fnet_optim_params_default(FNET_OPTIM_ADAM);
    fnet_optimizer *opt = NULL;
    fnet_assert_ok(ctx, fnet_optimizer_create(ctx, &op, fnet_model_num_params(m), &opt));
    fnet_assert_ok(ctx, fnet_optimizer_set_steps(opt, 14));
    fnet_assert_ok(ctx, fnet_model_save(m, opt, path));
    struct fnet_test_bytes good = fnet_test_read_file(path);
    unsigned char *buf = malloc(good.n);
    assert_non_null(buf);
    size_t refused = 0;
    for (size_t byte = 0; byte < good.n; byte++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(buf, good.p, good.n);
            buf[byte] ^= (unsigned char)(1u << bit);
            fnet_test_write_file(bad, buf, good.n);
            fnet_model *l = NULL;
            fnet_status st = fnet_model_load(ctx, bad, &l);
            if (st == FNET_OK)
                fail_msg("byte %zu bit %d: a damaged file loaded", byte, bit);
            assert_null(l);
            assert_true(st == FNET_ERR_FORMAT || st == FNET_ERR_OUT_OF_MEMORY);
            refused++;
        }
    }
    assert_int_equal(refused, 8 * good.n);
    free(buf);
    free(good.p);
    fnet_optimizer_free(opt);
    fnet_model_free(m);
    free(bad);
    free(path);
}

// Replace the first occurrence of `from` in the file's header by `to` (same length or not: the
// header length is rewritten and padded with spaces to keep the data 8-byte aligned).
static void edit_header(const char *src, const char *dst, const char *from, const char *to)
{
    struct fnet_test_bytes b = fnet_test_read_file(src);
    uint64_t h = header_len(&b);
    char *hdr = malloc(h + 1);
    assert_non_null(hdr);
    memcpy(hdr, b.p + 8, h);
    hdr[h] = '\0';
    char *at = strstr(hdr, from);
    assert_non_null(at);
    size_t nh = h - strlen(from) + strlen(to);
    size_t pad = (8 - (8 + nh) % 8) % 8;
    size_t total = 8 + nh + pad + (b.n - 8 - h);
    unsigned char *out = malloc(total);
    assert_non_null(out);
    for (int i = 0; i < 8; i++)
        out[i] = (unsigned char)((uint64_t)(nh + pad) >> (8 * i));
    size_t k = 8, pre = (size_t)(at - hdr);
    memcpy(out + k, hdr, pre);
    k += pre;
    memcpy(out + k, to, strlen(to));
    k += strlen(to);
    memcpy(out + k, at + strlen(from), h - pre - strlen(from));
    k += h - pre - strlen(from);
    // the header ends with '}' then padding spaces: keep the JSON closed before the new padding
    memset(out + k, ' ', pad);
    k += pad;
    memcpy(out + k, b.p + 8 + h, b.n - 8 - h);
    fnet_test_write_file(dst, out, total);
    free(out);
    free(hdr);
    free(b.p);
}

// A checksum that is missing for one tensor, malformed, of an unknown algorithm or for a tensor
// the file does not have: each a format error naming what.
static void test_damaged_checksum_metadata_is_refused(void **state)
{
    (void)state;
    char *path = path_in_tmp("meta.safetensors"), *bad = path_in_tmp("meta-bad.safetensors");
    fnet_model *m = NULL;
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, SPEC, N_IN, 5, &m));
    fnet_assert_ok(ctx, fnet_model_save(m, NULL, path));
    struct {
        const char *from, *to, *message;
    } cases[] = {
        {"\"crc32.layers.2.bias\"", "\"crc32.layers.2.bogus\"",
         "'crc32.layers.2.bogus' is the checksum of a tensor the file does not have"},
        {"\"crc32.layers.2.bias\"", "\"crc32-layers.2.bias\"",
         "the metadata does not match its CRC-32"},
        {"\"spec\":\"dense:3", "\"spec\":\"dense:2", "the metadata does not match its CRC-32"},
        {"\"metadata_crc32\":\"", "\"metadata_crc32\":\"Z", "metadata_crc32' is missing or not"},
        // the same entries in another order stay valid (below); another value does not
        {"\"checksum\":\"crc32\"", "\"checksum\":\"md5\"", "'checksum' is 'md5'"},
        {"\"crc32.layers.0.weight\":\"", "\"crc32.layers.0.weight\":\"X", "not a CRC-32"},
    };
    // the metadata in another order (as Python's safetensors may write it): still valid
    edit_header(path, bad, "\"format\":\"factornet\",\"version\":\"1\",",
                "\"version\":\"1\",\"format\":\"factornet\",");
    fnet_model *reordered = NULL;
    fnet_assert_ok(ctx, fnet_model_load(ctx, bad, &reordered));
    fnet_model_free(reordered);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        edit_header(path, bad, cases[i].from, cases[i].to);
        fnet_model *l = NULL;
        assert_int_equal(fnet_model_load(ctx, bad, &l), FNET_ERR_FORMAT);
        if (strstr(fnet_ctx_last_error(ctx), cases[i].message) == NULL)
            fail_msg("case %zu: '%s' lacks \"%s\"", i, fnet_ctx_last_error(ctx), cases[i].message);
        // the header-only reader checks the metadata's form too
        char spec[64];
        assert_int_equal(fnet_checkpoint_peek(ctx, bad, spec, sizeof(spec), NULL),
                         FNET_ERR_FORMAT);
    }
    fnet_model_free(m);
    free(bad);
    free(path);
}

// Checkpoints written before the checksums load as they did, optimizer state included; saved
// again, they carry checksums and load back the same.
static void test_checkpoints_from_before_the_checksums_load(void **state)
{
    (void)state;
    const char *fixtures[] = {FNET_TEST_DATA_DIR "/../io/data/pre_crc_adam.safetensors",
                              FNET_TEST_DATA_DIR "/../io/data/pre_crc_rmsprop_dropout.safetensors"};
    const char *specs[] = {"dense:4,relu,dense:3", "dense:2,tanh,dropout:0.25,dense:2"};
    const fnet_optim_kind kinds[] = {FNET_OPTIM_ADAM, FNET_OPTIM_RMSPROP};
    const int64_t first_weights[] = {4 * 5, 2 * 3};
    char *again = path_in_tmp("again.safetensors");
    for (int i = 0; i < 2; i++) {
        struct fnet_test_bytes b = fnet_test_read_file(fixtures[i]);
        assert_null(strstr((const char *)b.p + 8, "crc32")); // truly from before
        fnet_model *m = NULL;
        fnet_assert_ok(ctx, fnet_model_load(ctx, fixtures[i], &m));
        assert_string_equal(fnet_model_spec(m), specs[i]);
        fnet_optim_params op = fnet_optim_params_default(kinds[i]);
        fnet_optimizer *opt = NULL;
        fnet_assert_ok(ctx, fnet_optimizer_create(ctx, &op, fnet_model_num_params(m), &opt));
        fnet_assert_ok(ctx, fnet_model_load_params(m, opt, fixtures[i]));
        assert_int_equal(fnet_optimizer_steps(opt), 1);
        // the first tensor, layers.0.weight, begins the data: the model holds its bytes
        uint64_t h = header_len(&b);
        float *w = fnet_test_model_params(m);
        assert_memory_equal(w, b.p + 8 + h, (size_t)first_weights[i] * sizeof(float));
        fnet_assert_ok(ctx, fnet_model_save(m, opt, again));
        struct fnet_test_bytes c = fnet_test_read_file(again);
        assert_non_null(strstr((const char *)c.p + 8, "\"checksum\":\"crc32\""));
        fnet_model *m2 = NULL;
        fnet_assert_ok(ctx, fnet_model_load(ctx, again, &m2));
        float *w2 = fnet_test_model_params(m2);
        assert_memory_equal(w2, w, (size_t)fnet_model_num_params(m) * sizeof(float));
        free(w2);
        free(w);
        free(c.p);
        free(b.p);
        fnet_model_free(m2);
        fnet_optimizer_free(opt);
        fnet_model_free(m);
    }
    free(again);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_single_bit_flip_in_the_data_is_detected),
        cmocka_unit_test(test_damaged_checksum_metadata_is_refused),
        cmocka_unit_test(test_every_single_bit_flip_in_the_file_is_refused),
        cmocka_unit_test(test_checkpoints_from_before_the_checksums_load),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
