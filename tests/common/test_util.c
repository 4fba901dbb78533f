/* Shared test helpers: see test_util.h. */
#include "test_util.h"
#include "io/json.h"

#include <zlib.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void allclose(const float *af, const double *ad, const float *bf, const double *bd,
                     int64_t n, double rtol, double atol, const char *file, int line)
{
    int64_t first = -1, worst = -1;
    double worst_excess = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double a = af ? af[i] : ad[i], b = bf ? bf[i] : bd[i];
        double tol = atol + rtol * fabs(b);
        double diff = fabs(a - b);
        if (!(diff <= tol)) { // also catches NaN
            if (first < 0)
                first = i;
            double excess = isnan(diff) ? INFINITY : diff - tol;
            if (worst < 0 || excess > worst_excess) {
                worst = i;
                worst_excess = excess;
            }
        }
    }
    if (first >= 0) {
        double a0 = af ? af[first] : ad[first], b0 = bf ? bf[first] : bd[first];
        double aw = af ? af[worst] : ad[worst], bw = bf ? bf[worst] : bd[worst];
        print_error("%s:%d: not allclose (rtol %g, atol %g): first at [%lld] %.9g vs %.9g, "
                    "worst at [%lld] %.9g vs %.9g\n",
                    file, line, rtol, atol, (long long)first, a0, b0, (long long)worst, aw, bw);
        _fail(file, line);
    }
}

void fnet_check_allclose_f(const float *a, const float *b, int64_t n, double rtol, double atol,
                           const char *file, int line)
{
    allclose(a, NULL, b, NULL, n, rtol, atol, file, line);
}

void fnet_check_allclose_d(const double *a, const double *b, int64_t n, double rtol, double atol,
                           const char *file, int line)
{
    allclose(NULL, a, NULL, b, n, rtol, atol, file, line);
}

void fnet_check_close(double a, double b, double rtol, double atol, const char *file, int line)
{
    allclose(NULL, &a, NULL, &b, 1, rtol, atol, file, line);
}

void fnet_check_ok(const fnet_ctx *ctx, fnet_status st, const char *file, int line)
{
    if (st != FNET_OK) {
        print_error("%s:%d: status %d (%s): %s\n", file, line, (int)st, fnet_status_str(st),
                    ctx ? fnet_ctx_last_error(ctx) : "");
        _fail(file, line);
    }
}

bool fnet_test_cuda_name(const char *name, int *device)
{
    if (strcmp(name, "cuda") == 0) {
        *device = 0;
        return true;
    }
    if (strncmp(name, "cuda:", 5) != 0 || name[5] == '\0' || strlen(name + 5) > 6)
        return false;
    for (const char *c = name + 5; *c; c++)
        if (*c < '0' || *c > '9')
            return false;
    *device = atoi(name + 5);
    return true;
}

void fnet_test_skip_without_device(const char *var, const char *dflt)
{
    const char *name = getenv(var);
    if (name == NULL || *name == '\0')
        name = dflt;
    int device = 0;
    if (name == NULL || !fnet_test_cuda_name(name, &device))
        return;
    char why[512];
    fnet_status st = fnet_cuda_probe(device, why, sizeof(why));
    if (st == FNET_ERR_UNSUPPORTED) {
        // a skip, not a pass: CTest's SKIP_RETURN_CODE (tests/CMakeLists.txt)
        fflush(stdout);
        fprintf(stderr, "skipped: %s=%s: %s\n", var, name, why);
        exit(FNET_TEST_SKIP);
    }
    if (st != FNET_OK) {
        print_error("%s=%s: fnet_cuda_probe(%d): %s: %s\n", var, name, device,
                    fnet_status_str(st), why);
        fail();
    }
}

fnet_ctx *fnet_test_ctx(fnet_backend_kind dflt)
{
    const char *name = getenv("FNET_TEST_BACKEND");
    fnet_ctx *ctx = NULL;
    fnet_status st = FNET_ERR_INVALID_ARG;
    int device = 0;
    if (name == NULL || *name == '\0')
        st = dflt == FNET_BACKEND_CPU ? fnet_ctx_create_cpu(&ctx) : fnet_ctx_create_reference(&ctx);
    else if (strcmp(name, "reference") == 0)
        st = fnet_ctx_create_reference(&ctx);
    else if (strcmp(name, "cpu") == 0)
        st = fnet_ctx_create_cpu(&ctx);
    else if (strcmp(name, "guarded") == 0)
        st = fnet_ctx_create_guarded(&ctx);
    else if (fnet_test_cuda_name(name, &device)) {
        fnet_test_skip_without_device("FNET_TEST_BACKEND", NULL); // returns when there is one
        st = fnet_ctx_create_cuda(device, &ctx);
    } else {
        print_error("FNET_TEST_BACKEND is '%s', which is no backend: use reference, cpu, guarded, "
                    "cuda or cuda:K (device K) (or leave it unset)\n", name);
        fail_msg("FNET_TEST_BACKEND '%s' is no backend", name);
    }
    if (st != FNET_OK) {
        print_error("creating the test ctx (FNET_TEST_BACKEND '%s'): %s\n", name ? name : "",
                    fnet_status_str(st));
        fail();
    }
    return ctx;
}

float *fnet_test_upload(fnet_ctx *ctx, const float *host, int64_t n)
{
    void *p = NULL;
    fnet_assert_ok(ctx, fnet_backend_alloc(ctx, (size_t)(n > 0 ? n : 1) * sizeof(float), &p));
    if (host != NULL && n > 0)
        fnet_assert_ok(ctx, fnet_backend_upload(ctx, p, host, (size_t)n * sizeof(float)));
    return p;
}

int32_t *fnet_test_upload_i32(fnet_ctx *ctx, const int32_t *host, int64_t n)
{
    void *p = NULL;
    fnet_assert_ok(ctx, fnet_backend_alloc(ctx, (size_t)(n > 0 ? n : 1) * sizeof(int32_t), &p));
    if (host != NULL && n > 0)
        fnet_assert_ok(ctx, fnet_backend_upload(ctx, p, host, (size_t)n * sizeof(int32_t)));
    return p;
}

float *fnet_test_download(fnet_ctx *ctx, const float *be, int64_t n)
{
    float *h = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    assert_non_null(h);
    if (n > 0)
        fnet_assert_ok(ctx, fnet_backend_download(ctx, h, be, (size_t)n * sizeof(float)));
    return h;
}

static float *host_vector(int64_t n)
{
    float *h = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    assert_non_null(h);
    return h;
}

float *fnet_test_model_params(const fnet_model *m)
{
    float *h = host_vector(fnet_model_num_params(m));
    fnet_assert_ok(fnet_model_ctx(m), fnet_model_get_params(m, h));
    return h;
}

float *fnet_test_model_grads(const fnet_model *m)
{
    float *h = host_vector(fnet_model_num_params(m));
    fnet_assert_ok(fnet_model_ctx(m), fnet_model_get_grads(m, h));
    return h;
}

float *fnet_test_layer_params(const fnet_layer *l)
{
    float *h = host_vector(fnet_layer_num_params(l));
    fnet_assert_ok(fnet_layer_ctx(l), fnet_layer_get_params(l, h));
    return h;
}

float *fnet_test_layer_grads(const fnet_layer *l)
{
    float *h = host_vector(fnet_layer_num_params(l));
    fnet_assert_ok(fnet_layer_ctx(l), fnet_layer_get_grads(l, h));
    return h;
}

void fnet_test_fill_uniform(float *x, int64_t n, float lo, float hi, uint64_t seed)
{
    fnet_rng rng;
    fnet_rng_seed(&rng, seed);
    for (int64_t i = 0; i < n; i++)
        x[i] = lo + (hi - lo) * (float)fnet_rng_uniform(&rng);
}

const char *fnet_test_tmpdir(void)
{
    static char path[512];
    const char *base = getenv("TMPDIR");
    snprintf(path, sizeof(path), "%s/fnet-test-XXXXXX", base && *base ? base : "/tmp");
    if (mkdtemp(path) == NULL) {
        print_error("mkdtemp failed\n");
        fail();
    }
    return path;
}

fnet_dataset *fnet_test_class_data(fnet_ctx *ctx, int64_t n, int dim, int classes, int hot,
                                   int cold, int noise, uint64_t seed)
{
    uint8_t *img = malloc((size_t)(n * dim)), *lab = malloc((size_t)n);
    assert_true(img != NULL && lab != NULL);
    fnet_rng rng;
    fnet_rng_seed(&rng, seed);
    for (int64_t i = 0; i < n; i++) {
        lab[i] = (uint8_t)fnet_rng_below(&rng, (uint64_t)classes);
        for (int j = 0; j < dim; j++)
            img[i * dim + j] =
                (uint8_t)((j % classes == lab[i] ? hot : cold) + (int)fnet_rng_below(&rng, (uint64_t)noise));
    }
    fnet_dataset *d = NULL;
    fnet_assert_ok(ctx, fnet_dataset_from_memory(ctx, img, lab, n, dim, classes, &d));
    free(img), free(lab);
    return d;
}

struct fnet_test_bytes fnet_test_read_file(const char *path)
{
    struct fnet_test_bytes b = {NULL, 0};
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    b.n = (size_t)n;
    b.p = malloc(b.n + 1);
    assert_non_null(b.p);
    assert_int_equal(fread(b.p, 1, b.n, f), b.n);
    b.p[b.n] = '\0';
    fclose(f);
    return b;
}

void fnet_test_write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

void fnet_test_restamp_checksums(unsigned char *p, size_t n)
{
    assert_true(n >= 8);
    uint64_t h = 0;
    for (int i = 7; i >= 0; i--)
        h = h << 8 | p[i];
    assert_true(8 + h <= n);
    char *hdr = malloc(h + 1);
    assert_non_null(hdr);
    memcpy(hdr, p + 8, h);
    hdr[h] = '\0';
    struct fnet_json_doc *doc = NULL;
    assert_int_equal(fnet_json_parse(NULL, "header", hdr, h, 100000, &doc), FNET_OK);
    for (const struct fnet_json *e = fnet_json_root(doc)->child; e != NULL; e = e->next) {
        const struct fnet_json *off = fnet_json_get(e, "data_offsets");
        if (off == NULL)
            continue;
        uint64_t begin = (uint64_t)off->child->integer, end = (uint64_t)off->child->next->integer;
        char key[512], val[16];
        snprintf(key, sizeof(key), "\"crc32.%s\":\"", e->key);
        char *at = strstr(hdr, key);
        assert_non_null(at);
        snprintf(val, sizeof(val), "%08lx", crc32(0, p + 8 + h + begin, (unsigned)(end - begin)));
        memcpy(p + 8 + (size_t)(at - hdr) + strlen(key), val, 8);
    }
    // and the metadata's own: its entries before the checksums, key NUL value NUL each
    const struct fnet_json *md = fnet_json_get(fnet_json_root(doc), "__metadata__");
    char *mat = strstr(hdr, "\"metadata_crc32\":\"");
    if (md != NULL && mat != NULL) {
        // by key: the entries' keys, sorted (selection of the next smallest each time)
        uLong mc = 0;
        const char *last = NULL;
        for (;;) {
            const struct fnet_json *next = NULL;
            for (const struct fnet_json *e = md->child; e != NULL; e = e->next) {
                if (strcmp(e->key, "checksum") == 0 || strcmp(e->key, "metadata_crc32") == 0 ||
                    strncmp(e->key, "crc32.", 6) == 0)
                    continue;
                if ((last == NULL || strcmp(e->key, last) > 0) &&
                    (next == NULL || strcmp(e->key, next->key) < 0))
                    next = e;
            }
            if (next == NULL)
                break;
            mc = crc32(mc, (const unsigned char *)next->key, (unsigned)strlen(next->key) + 1);
            mc = crc32(mc, (const unsigned char *)next->str, (unsigned)strlen(next->str) + 1);
            last = next->key;
        }
        char val[16];
        snprintf(val, sizeof(val), "%08lx", mc);
        memcpy(p + 8 + (size_t)(mat - hdr) + strlen("\"metadata_crc32\":\""), val, 8);
    }
    fnet_json_free(doc);
    free(hdr);
}
