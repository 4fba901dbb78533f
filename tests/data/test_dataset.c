/* Tests of datasets: from_memory, views (split, subset) sharing refcounted storage, batching
 * (values u8/255, int32 labels, identical on the reference and CPU backends, range checks before
 * any write) and out-of-memory injection. Each sample's image encodes its storage row, so a
 * batch reveals exactly which rows a view holds. The datasets live on the backend
 * FNET_TEST_BACKEND names (fnet_test_ctx); batches are gathered into backend memory and read
 * back through host copies. */
#include "test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define N 600 // more than two batch chunks of 256
#define DIM 4
#define CLASSES 10

static uint8_t images[N * DIM];
static uint8_t labels[N];

static void fill_data(void)
{
    for (int r = 0; r < N; r++) {
        images[r * DIM + 0] = (uint8_t)(r & 0xff);
        images[r * DIM + 1] = (uint8_t)(r >> 8);
        images[r * DIM + 2] = (uint8_t)((r * 7 + 3) & 0xff);
        images[r * DIM + 3] = (uint8_t)(255 - (r & 0xff));
        labels[r] = (uint8_t)((r * 3) % CLASSES);
    }
}

struct fixture {
    fnet_ctx *ref; // the ctx under test (the reference backend by default)
    fnet_dataset *d; // all N samples, on ref
};

static int setup(void **state)
{
    fill_data();
    struct fixture *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    fx->ref = fnet_test_ctx(FNET_BACKEND_REFERENCE);
    assert_int_equal(fnet_dataset_from_memory(fx->ref, images, labels, N, DIM, CLASSES, &fx->d),
                     FNET_OK);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    fnet_debug_fail_alloc(0);
    fnet_dataset_free(fx->d);
    fnet_ctx_free(fx->ref);
    free(fx);
    return 0;
}

/* fnet_dataset_batch() of d (on ctx) through backend memory: x (batch, dim) is host memory that
 * is uploaded first and downloaded after, so what the batch leaves unwritten reads back as it
 * was; y (host) is passed as is. */
static fnet_status batch_via_backend(fnet_ctx *ctx, const fnet_dataset *d, const int64_t *idx,
                                     int64_t first, int64_t batch, float *x, int32_t *y)
{
    int64_t n = batch * fnet_dataset_dim(d);
    float *xd = fnet_test_upload(ctx, x, n);
    fnet_status st = fnet_dataset_batch(d, idx, first, batch, xd, y);
    fnet_assert_ok(ctx, fnet_backend_download(ctx, x, xd, (size_t)n * sizeof(float)));
    fnet_backend_free(ctx, xd);
    return st;
}

static void assert_error_contains(const fnet_ctx *ctx, const char *needle)
{
    const char *msg = fnet_ctx_last_error(ctx);
    if (strstr(msg, needle) == NULL) {
        print_error("last error \"%s\" does not contain \"%s\"\n", msg, needle);
        fail();
    }
}

/* rows (size(d)) = the storage row of each position of d, read back through a batch; also
 * checks that every image and label is the one of that row. */
static void view_rows(fnet_ctx *ctx, const fnet_dataset *d, int64_t *rows)
{
    int64_t n = fnet_dataset_size(d);
    float *x = malloc((size_t)n * DIM * sizeof(float));
    int32_t *y = malloc((size_t)n * sizeof(int32_t));
    assert_non_null(x);
    assert_non_null(y);
    assert_int_equal(batch_via_backend(ctx, d, NULL, 0, n, x, y), FNET_OK);
    for (int64_t i = 0; i < n; i++) {
        long lo = lroundf(x[i * DIM] * 255.0f), hi = lroundf(x[i * DIM + 1] * 255.0f);
        int64_t r = lo + 256 * hi;
        assert_in_range(r, 0, N - 1);
        rows[i] = r;
        assert_int_equal(y[i], labels[r]);
        for (int j = 0; j < DIM; j++)
            assert_true(x[i * DIM + j] == (float)images[r * DIM + j] * (1.0f / 255.0f));
    }
    free(y);
    free(x);
}

static void test_dataset_from_memory_copies_and_reports_shape(void **state)
{
    struct fixture *fx = *state;
    uint8_t im[3 * 2] = {1, 2, 3, 4, 5, 6}, lb[3] = {2, 0, 1};
    fnet_dataset *d;
    fnet_assert_ok(fx->ref, fnet_dataset_from_memory(fx->ref, im, lb, 3, 2, 7, &d));
    im[0] = 99; // a copy: later changes to the caller's arrays do not show
    lb[0] = 6;
    assert_int_equal(fnet_dataset_size(d), 3);
    assert_int_equal(fnet_dataset_dim(d), 2);
    assert_int_equal(fnet_dataset_classes(d), 7);
    float x[6];
    int32_t y[3];
    fnet_assert_ok(fx->ref, batch_via_backend(fx->ref, d, NULL, 0, 3, x, y));
    const float want[6] = {1 / 255.0f, 2 / 255.0f, 3 / 255.0f, 4 / 255.0f, 5 / 255.0f, 6 / 255.0f};
    fnet_assert_allclose(x, want, 6, 2.5e-7, 0.0);
    assert_int_equal(y[0], 2);
    assert_int_equal(y[1], 0);
    assert_int_equal(y[2], 1);
    fnet_dataset_free(d);
}

static void test_dataset_from_memory_rejects_bad_arguments(void **state)
{
    struct fixture *fx = *state;
    fnet_ctx *ctx = fx->ref;
    fnet_dataset *d = NULL;
    assert_int_equal(fnet_dataset_from_memory(ctx, images, labels, N, DIM, 3, &d),
                     FNET_ERR_INVALID_ARG);
    assert_error_contains(ctx, "label 3 of sample 1 is not below classes = 3");
    assert_null(d);
    assert_int_equal(fnet_dataset_from_memory(ctx, images, labels, 0, DIM, CLASSES, &d),
                     FNET_ERR_INVALID_ARG);
    assert_error_contains(ctx, "n = 0");
    assert_int_equal(fnet_dataset_from_memory(ctx, images, labels, N, 0, CLASSES, &d),
                     FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_dataset_from_memory(ctx, images, labels, N, DIM, 0, &d),
                     FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_dataset_from_memory(ctx, images, labels, N, DIM, 257, &d),
                     FNET_ERR_INVALID_ARG);
    assert_error_contains(ctx, "classes = 257");
    assert_int_equal(fnet_dataset_from_memory(ctx, images, labels, INT64_MAX / 2, 4, CLASSES, &d),
                     FNET_ERR_INVALID_ARG);
    assert_error_contains(ctx, "overflows");
    assert_int_equal(fnet_dataset_from_memory(ctx, NULL, labels, N, DIM, CLASSES, &d),
                     FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_dataset_from_memory(ctx, images, NULL, N, DIM, CLASSES, &d),
                     FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_dataset_from_memory(ctx, images, labels, N, DIM, CLASSES, NULL),
                     FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_dataset_from_memory(NULL, images, labels, N, DIM, CLASSES, &d),
                     FNET_ERR_INVALID_ARG);
    assert_null(d);
}

static void test_dataset_free_null_is_noop(void **state)
{
    (void)state;
    fnet_dataset_free(NULL);
    assert_int_equal(fnet_dataset_size(NULL), 0);
}

static void test_dataset_batch_scales_u8_by_one_over_255_across_chunks(void **state)
{
    struct fixture *fx = *state;
    enum { first = 17, batch = N - 17 }; // three chunks: 256 + 256 + 71
    static float x[batch * DIM], want[batch * DIM];
    static double want_d[batch * DIM], got_d[batch * DIM];
    int32_t y[batch];
    fnet_assert_ok(fx->ref, batch_via_backend(fx->ref, fx->d, NULL, first, batch, x, y));
    for (int i = 0; i < batch; i++) {
        assert_int_equal(y[i], labels[first + i]);
        for (int j = 0; j < DIM; j++) {
            uint8_t u = images[(first + i) * DIM + j];
            want[i * DIM + j] = (float)u * (1.0f / 255.0f);
            want_d[i * DIM + j] = u / 255.0;
            got_d[i * DIM + j] = x[i * DIM + j];
        }
    }
    fnet_assert_allclose(x, want, batch * DIM, 0.0, 0.0);           // exactly u·fl(1/255)
    fnet_assert_allclose_d(got_d, want_d, batch * DIM, 2.5e-7, 0.0); // u/255 to float rounding

    // Explicit positions: reversed, repeated, across chunk boundaries.
    enum { nb = 300 };
    static int64_t idx[nb];
    static float xi[nb * DIM], wi[nb * DIM];
    int32_t yi[nb];
    for (int i = 0; i < nb; i++)
        idx[i] = (i % 2) ? N - 1 - i : 5;
    fnet_assert_ok(fx->ref, batch_via_backend(fx->ref, fx->d, idx, 12345 /* ignored */, nb, xi, yi));
    for (int i = 0; i < nb; i++) {
        assert_int_equal(yi[i], labels[idx[i]]);
        for (int j = 0; j < DIM; j++)
            wi[i * DIM + j] = (float)images[idx[i] * DIM + j] * (1.0f / 255.0f);
    }
    fnet_assert_allclose(xi, wi, nb * DIM, 0.0, 0.0);
}

// The CRC-32 of a view, computed here from what its batches give back: each label byte, then the
// sample's pixels (the floats are b/255, so b comes back exactly).
static uint32_t view_crc(fnet_ctx *ctx, const fnet_dataset *d)
{
    int64_t n = fnet_dataset_size(d);
    float *x = malloc((size_t)(n * DIM) * sizeof(float));
    int32_t *y = malloc((size_t)n * sizeof(int32_t));
    assert_non_null(x);
    assert_non_null(y);
    fnet_assert_ok(ctx, batch_via_backend(ctx, d, NULL, 0, n, x, y));
    uLong c = crc32(0L, Z_NULL, 0);
    for (int64_t i = 0; i < n; i++) {
        unsigned char b[DIM + 1];
        b[0] = (unsigned char)y[i];
        for (int j = 0; j < DIM; j++)
            b[j + 1] = (unsigned char)lrintf(x[i * DIM + j] * 255.0f);
        c = crc32(c, b, DIM + 1);
    }
    free(y);
    free(x);
    return (uint32_t)c;
}

// fnet_dataset_crc32: labels and pixels in the view's order; views of other samples or another
// order differ, the same samples in the same order agree.
static void test_dataset_crc32_follows_the_views_order(void **state)
{
    struct fixture *fx = *state;
    uint32_t all, sub, tr, va, tr2;
    fnet_assert_ok(fx->ref, fnet_dataset_crc32(fx->d, &all));
    // the whole storage, straight from the arrays
    uLong c = crc32(0L, Z_NULL, 0);
    for (int r = 0; r < N; r++) {
        c = crc32(c, &labels[r], 1);
        c = crc32(c, &images[r * DIM], DIM);
    }
    assert_int_equal(all, (uint32_t)c);
    assert_int_equal(all, view_crc(fx->ref, fx->d));
    fnet_dataset *s = NULL, *t = NULL, *v = NULL, *t2 = NULL, *v2 = NULL;
    fnet_assert_ok(fx->ref, fnet_dataset_subset(fx->d, N - 1, &s));
    fnet_assert_ok(fx->ref, fnet_dataset_crc32(s, &sub));
    assert_int_equal(sub, view_crc(fx->ref, s));
    assert_true(sub != all);
    // shuffled views (rows out of the storage's order)
    fnet_assert_ok(fx->ref, fnet_dataset_split(fx->d, 0.25, 42, &t, &v));
    fnet_assert_ok(fx->ref, fnet_dataset_crc32(t, &tr));
    fnet_assert_ok(fx->ref, fnet_dataset_crc32(v, &va));
    assert_int_equal(tr, view_crc(fx->ref, t));
    assert_int_equal(va, view_crc(fx->ref, v));
    fnet_assert_ok(fx->ref, fnet_dataset_split(fx->d, 0.25, 43, &t2, &v2));
    fnet_assert_ok(fx->ref, fnet_dataset_crc32(t2, &tr2));
    assert_true(tr2 != tr);
    assert_int_equal(fnet_dataset_crc32(fx->d, NULL), FNET_ERR_INVALID_ARG);
    fnet_dataset_free(v2);
    fnet_dataset_free(t2);
    fnet_dataset_free(v);
    fnet_dataset_free(t);
    fnet_dataset_free(s);
}

// The backend under test (the CPU one by default) against the reference oracle.
static void test_dataset_batch_reference_and_cpu_agree_bitwise(void **state)
{
    (void)state;
    fnet_ctx *ref, *cpu = fnet_test_ctx(FNET_BACKEND_CPU);
    fnet_assert_ok(NULL, fnet_ctx_create_reference(&ref));
    fnet_dataset *dr, *dc;
    fnet_assert_ok(ref, fnet_dataset_from_memory(ref, images, labels, N, DIM, CLASSES, &dr));
    fnet_assert_ok(cpu, fnet_dataset_from_memory(cpu, images, labels, N, DIM, CLASSES, &dc));
    fnet_dataset *tr_r, *va_r, *tr_c, *va_c;
    fnet_assert_ok(ref, fnet_dataset_split(dr, 0.2, 11, &tr_r, &va_r));
    fnet_assert_ok(cpu, fnet_dataset_split(dc, 0.2, 11, &tr_c, &va_c));
    enum { nb = 400 };
    static int64_t idx[nb];
    static float xr[nb * DIM], xc[nb * DIM];
    int32_t yr[nb], yc[nb];
    fnet_rng rng;
    fnet_rng_seed(&rng, 3);
    for (int i = 0; i < nb; i++)
        idx[i] = (int64_t)fnet_rng_below(&rng, (uint64_t)fnet_dataset_size(tr_r));
    memset(xc, 0xff, sizeof(xc));
    fnet_assert_ok(ref, batch_via_backend(ref, tr_r, idx, 0, nb, xr, yr));
    fnet_assert_ok(cpu, batch_via_backend(cpu, tr_c, idx, 0, nb, xc, yc));
    assert_memory_equal(xr, xc, sizeof(xr));
    assert_memory_equal(yr, yc, sizeof(yr));
    fnet_assert_ok(ref, batch_via_backend(ref, va_r, NULL, 0, 120, xr, yr));
    fnet_assert_ok(cpu, batch_via_backend(cpu, va_c, NULL, 0, 120, xc, yc));
    assert_memory_equal(xr, xc, 120 * DIM * sizeof(float));
    assert_memory_equal(yr, yc, 120 * sizeof(int32_t));
    fnet_dataset_free(va_c);
    fnet_dataset_free(tr_c);
    fnet_dataset_free(va_r);
    fnet_dataset_free(tr_r);
    fnet_dataset_free(dc);
    fnet_dataset_free(dr);
    fnet_ctx_free(cpu);
    fnet_ctx_free(ref);
}

static void test_dataset_batch_rejects_out_of_range_before_writing(void **state)
{
    struct fixture *fx = *state;
    enum { nb = 300 };
    static int64_t idx[nb];
    static float x[nb * DIM];
    int32_t y[nb];
    for (int i = 0; i < nb; i++)
        idx[i] = i;
    idx[nb - 1] = N; // only the last one, after a whole chunk would have been written
    for (int i = 0; i < nb * DIM; i++)
        x[i] = -7.0f;
    for (int i = 0; i < nb; i++)
        y[i] = -7;
    fnet_ctx *ctx = fx->ref;
    assert_int_equal(batch_via_backend(ctx, fx->d, idx, 0, nb, x, y), FNET_ERR_INVALID_ARG);
    assert_error_contains(fx->ref, "idx[299] = 600 out of range 0..599");
    idx[nb - 1] = -1;
    assert_int_equal(batch_via_backend(ctx, fx->d, idx, 0, nb, x, y), FNET_ERR_INVALID_ARG);
    assert_int_equal(batch_via_backend(ctx, fx->d, NULL, N - nb + 1, nb, x, y),
                     FNET_ERR_INVALID_ARG);
    assert_error_contains(fx->ref, "batch of 300 samples starting at 301 exceeds the 600 samples");
    assert_int_equal(batch_via_backend(ctx, fx->d, NULL, -1, nb, x, y), FNET_ERR_INVALID_ARG);
    // the calls refused on their arguments alone, with x in backend memory as the call takes it
    float *xd = fnet_test_upload(ctx, x, nb * DIM);
    assert_int_equal(fnet_dataset_batch(fx->d, NULL, 0, 0, xd, y), FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_dataset_batch(fx->d, NULL, INT64_MAX, 2, xd, y), FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_dataset_batch(fx->d, NULL, 0, nb, NULL, y), FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_dataset_batch(fx->d, NULL, 0, nb, xd, NULL), FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_dataset_batch(NULL, NULL, 0, nb, xd, y), FNET_ERR_INVALID_ARG);
    fnet_assert_ok(ctx, fnet_backend_download(ctx, x, xd, sizeof(x)));
    fnet_backend_free(ctx, xd);
    for (int i = 0; i < nb * DIM; i++)
        assert_true(x[i] == -7.0f);
    for (int i = 0; i < nb; i++)
        assert_int_equal(y[i], -7);
    // A view's range is its own size, not the storage's.
    fnet_dataset *sub;
    fnet_assert_ok(fx->ref, fnet_dataset_subset(fx->d, 10, &sub));
    assert_int_equal(batch_via_backend(ctx, sub, NULL, 5, 6, x, y), FNET_ERR_INVALID_ARG);
    fnet_assert_ok(fx->ref, batch_via_backend(ctx, sub, NULL, 4, 6, x, y));
    assert_int_equal(y[5], labels[9]);
    fnet_dataset_free(sub);
}

static void test_dataset_split_same_seed_gives_same_split(void **state)
{
    struct fixture *fx = *state;
    fnet_dataset *t1, *v1, *t2, *v2;
    fnet_assert_ok(fx->ref, fnet_dataset_split(fx->d, 0.25, 42, &t1, &v1));
    fnet_assert_ok(fx->ref, fnet_dataset_split(fx->d, 0.25, 42, &t2, &v2));
    assert_int_equal(fnet_dataset_size(v1), 150);
    assert_int_equal(fnet_dataset_size(t1), 450);
    static int64_t a[N], b[N];
    view_rows(fx->ref, v1, a);
    view_rows(fx->ref, v2, b);
    assert_memory_equal(a, b, 150 * sizeof(int64_t));
    view_rows(fx->ref, t1, a);
    view_rows(fx->ref, t2, b);
    assert_memory_equal(a, b, 450 * sizeof(int64_t));
    // The split is a shuffle: the training part is not simply the file's tail.
    int in_order = 1;
    for (int i = 1; i < 450; i++)
        in_order &= a[i] > a[i - 1];
    assert_false(in_order);
    fnet_dataset_free(t1);
    fnet_dataset_free(v1);
    fnet_dataset_free(t2);
    fnet_dataset_free(v2);
}

static void test_dataset_split_different_seeds_differ(void **state)
{
    struct fixture *fx = *state;
    fnet_dataset *t1, *v1, *t2, *v2;
    fnet_assert_ok(fx->ref, fnet_dataset_split(fx->d, 0.25, 42, &t1, &v1));
    fnet_assert_ok(fx->ref, fnet_dataset_split(fx->d, 0.25, 43, &t2, &v2));
    static int64_t a[N], b[N];
    view_rows(fx->ref, v1, a);
    view_rows(fx->ref, v2, b);
    int same = 0;
    for (int i = 0; i < 150; i++)
        same += a[i] == b[i];
    assert_true(same < 10); // 150/600 expected by chance: ~0.25 per position
    fnet_dataset_free(t1);
    fnet_dataset_free(v1);
    fnet_dataset_free(t2);
    fnet_dataset_free(v2);
}

/* train ∪ val = exactly the rows of d, each once. */
static void assert_disjoint_cover(fnet_ctx *ctx, const fnet_dataset *d,
                                  const fnet_dataset *train, const fnet_dataset *val)
{
    static int64_t rows[N], tr[N], va[N];
    static int seen[N];
    int64_t n = fnet_dataset_size(d), nt = fnet_dataset_size(train);
    int64_t nv = val ? fnet_dataset_size(val) : 0;
    assert_int_equal(nt + nv, n);
    view_rows(ctx, d, rows);
    view_rows(ctx, train, tr);
    if (val)
        view_rows(ctx, val, va);
    memset(seen, 0, sizeof(seen));
    for (int64_t i = 0; i < n; i++)
        seen[rows[i]] = 1;
    for (int64_t i = 0; i < nt; i++) {
        assert_int_equal(seen[tr[i]], 1); // in d, and not seen in train or val before
        seen[tr[i]] = 2;
    }
    for (int64_t i = 0; i < nv; i++) {
        assert_int_equal(seen[va[i]], 1);
        seen[va[i]] = 2;
    }
}

static void test_dataset_split_is_disjoint_and_covers_the_view(void **state)
{
    struct fixture *fx = *state;
    const double fracs[] = {0.1, 1.0 / 3.0, 0.5, 0.999};
    const int64_t want_val[] = {60, 200, 300, 599};
    for (int k = 0; k < 4; k++) {
        fnet_dataset *t, *v;
        fnet_assert_ok(fx->ref, fnet_dataset_split(fx->d, fracs[k], (uint64_t)k, &t, &v));
        assert_int_equal(fnet_dataset_size(v), want_val[k]);
        assert_int_equal(fnet_dataset_dim(v), DIM);
        assert_int_equal(fnet_dataset_classes(v), CLASSES);
        assert_disjoint_cover(fx->ref, fx->d, t, v);
        fnet_dataset_free(t);
        fnet_dataset_free(v);
    }
    // round(frac·n) rounds half up: 0.25·10 = 2.5 -> 3.
    fnet_dataset *small, *t, *v;
    fnet_assert_ok(fx->ref, fnet_dataset_from_memory(fx->ref, images, labels, 10, DIM, CLASSES,
                                                     &small));
    fnet_assert_ok(fx->ref, fnet_dataset_split(small, 0.25, 1, &t, &v));
    assert_int_equal(fnet_dataset_size(v), 3);
    assert_int_equal(fnet_dataset_size(t), 7);
    assert_disjoint_cover(fx->ref, small, t, v);
    fnet_dataset_free(t);
    fnet_dataset_free(v);
    fnet_dataset_free(small);
}

static void test_dataset_split_zero_fraction_gives_null_val(void **state)
{
    struct fixture *fx = *state;
    fnet_dataset *t, *v = (fnet_dataset *)&v;
    fnet_assert_ok(fx->ref, fnet_dataset_split(fx->d, 0.0, 5, &t, &v));
    assert_null(v);
    assert_int_equal(fnet_dataset_size(t), N);
    assert_disjoint_cover(fx->ref, fx->d, t, NULL);
    fnet_dataset_free(v);
    fnet_dataset_free(t);
}

static void test_dataset_split_rejects_bad_fraction(void **state)
{
    struct fixture *fx = *state;
    fnet_dataset *t = NULL, *v = NULL;
    assert_int_equal(fnet_dataset_split(fx->d, -0.1, 1, &t, &v), FNET_ERR_INVALID_ARG);
    assert_error_contains(fx->ref, "validation fraction -0.1 is not in [0, 1)");
    assert_int_equal(fnet_dataset_split(fx->d, 1.0, 1, &t, &v), FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_dataset_split(fx->d, NAN, 1, &t, &v), FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_dataset_split(fx->d, 0.0005, 1, &t, &v), FNET_ERR_INVALID_ARG);
    assert_error_contains(fx->ref, "rounds to an empty validation set");
    assert_null(t);
    assert_null(v);
    assert_int_equal(fnet_dataset_split(NULL, 0.1, 1, &t, &v), FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_dataset_split(fx->d, 0.1, 1, NULL, &v), FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_dataset_split(fx->d, 0.1, 1, &t, NULL), FNET_ERR_INVALID_ARG);
    // One sample: any positive fraction that rounds to 1 leaves no training sample.
    fnet_dataset *one;
    fnet_assert_ok(fx->ref, fnet_dataset_from_memory(fx->ref, images, labels, 1, DIM, CLASSES,
                                                     &one));
    assert_int_equal(fnet_dataset_split(one, 0.6, 1, &t, &v), FNET_ERR_INVALID_ARG);
    assert_error_contains(fx->ref, "leaves no training samples");
    assert_null(t);
    assert_null(v);
    fnet_dataset_free(one);
}

static void test_dataset_split_of_a_view_stays_inside_it(void **state)
{
    struct fixture *fx = *state;
    fnet_dataset *t, *v, *t2, *v2, *sub, *t3, *v3;
    fnet_assert_ok(fx->ref, fnet_dataset_split(fx->d, 0.5, 9, &t, &v));
    fnet_assert_ok(fx->ref, fnet_dataset_split(t, 0.2, 10, &t2, &v2));
    assert_int_equal(fnet_dataset_size(v2), 60);
    assert_disjoint_cover(fx->ref, t, t2, v2);
    fnet_assert_ok(fx->ref, fnet_dataset_subset(v, 100, &sub));
    fnet_assert_ok(fx->ref, fnet_dataset_split(sub, 0.3, 11, &t3, &v3));
    assert_disjoint_cover(fx->ref, sub, t3, v3);
    fnet_dataset_free(v3);
    fnet_dataset_free(t3);
    fnet_dataset_free(sub);
    fnet_dataset_free(v2);
    fnet_dataset_free(t2);
    fnet_dataset_free(v);
    fnet_dataset_free(t);
}

static void test_dataset_subset_takes_first_n_of_the_view(void **state)
{
    struct fixture *fx = *state;
    static int64_t rows[N], sub_rows[N];
    fnet_dataset *sub;
    fnet_assert_ok(fx->ref, fnet_dataset_subset(fx->d, 37, &sub));
    assert_int_equal(fnet_dataset_size(sub), 37);
    assert_int_equal(fnet_dataset_dim(sub), DIM);
    assert_int_equal(fnet_dataset_classes(sub), CLASSES);
    view_rows(fx->ref, sub, sub_rows);
    for (int i = 0; i < 37; i++)
        assert_int_equal(sub_rows[i], i);
    fnet_dataset_free(sub);

    fnet_dataset *t, *v;
    fnet_assert_ok(fx->ref, fnet_dataset_split(fx->d, 0.1, 2, &t, &v));
    fnet_assert_ok(fx->ref, fnet_dataset_subset(t, 300, &sub));
    view_rows(fx->ref, t, rows);
    view_rows(fx->ref, sub, sub_rows);
    assert_memory_equal(rows, sub_rows, 300 * sizeof(int64_t));
    fnet_dataset *all;
    fnet_assert_ok(fx->ref, fnet_dataset_subset(t, fnet_dataset_size(t), &all));
    assert_int_equal(fnet_dataset_size(all), 540);
    fnet_dataset_free(all);
    fnet_dataset_free(sub);
    fnet_dataset_free(v);
    fnet_dataset_free(t);
}

static void test_dataset_subset_rejects_bad_n(void **state)
{
    struct fixture *fx = *state;
    fnet_dataset *sub = (fnet_dataset *)&sub;
    assert_int_equal(fnet_dataset_subset(fx->d, 0, &sub), FNET_ERR_INVALID_ARG);
    assert_null(sub);
    assert_int_equal(fnet_dataset_subset(fx->d, N + 1, &sub), FNET_ERR_INVALID_ARG);
    assert_error_contains(fx->ref, "subset of 601 samples: must be in 1..600");
    assert_int_equal(fnet_dataset_subset(fx->d, -3, &sub), FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_dataset_subset(NULL, 1, &sub), FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_dataset_subset(fx->d, 1, NULL), FNET_ERR_INVALID_ARG);
    assert_null(sub);
}

static void test_dataset_views_outlive_the_parent(void **state)
{
    struct fixture *fx = *state;
    fnet_dataset *d, *t, *v, *sub;
    fnet_assert_ok(fx->ref, fnet_dataset_from_memory(fx->ref, images, labels, N, DIM, CLASSES,
                                                     &d));
    fnet_assert_ok(fx->ref, fnet_dataset_split(d, 0.5, 3, &t, &v));
    fnet_assert_ok(fx->ref, fnet_dataset_subset(d, 20, &sub));
    fnet_dataset_free(d); // storage stays: three views still hold it
    static int64_t rows[N];
    view_rows(fx->ref, sub, rows);
    assert_int_equal(rows[19], 19);
    fnet_dataset_free(sub);
    view_rows(fx->ref, t, rows); // checks images and labels against the source
    fnet_dataset_free(t);
    view_rows(fx->ref, v, rows);
    fnet_dataset_free(v); // the last view frees the storage (LSan would report it otherwise)
}

/* Fail the k-th allocation for k = 1, 2, ... until the call succeeds; every failure must be
 * FNET_ERR_OUT_OF_MEMORY with the outputs NULL. Returns the number of failures. */
enum oom_op { OOM_FROM_MEMORY, OOM_SPLIT, OOM_SUBSET };

static int oom_loop(struct fixture *fx, const fnet_dataset *view, enum oom_op op)
{
    for (long k = 1; k <= 64; k++) {
        fnet_dataset *a = (fnet_dataset *)&a, *b = (fnet_dataset *)&b;
        fnet_status st;
        fnet_debug_fail_alloc(k);
        if (op == OOM_FROM_MEMORY) {
            b = NULL;
            st = fnet_dataset_from_memory(fx->ref, images, labels, N, DIM, CLASSES, &a);
        } else if (op == OOM_SPLIT) {
            st = fnet_dataset_split(view, 0.3, 8, &a, &b);
        } else {
            b = NULL;
            st = fnet_dataset_subset(view, 50, &a);
        }
        fnet_debug_fail_alloc(0);
        if (st == FNET_OK) {
            assert_non_null(a);
            assert_int_equal(fnet_dataset_dim(a), DIM);
            fnet_dataset_free(a);
            fnet_dataset_free(b);
            return (int)(k - 1);
        }
        assert_int_equal(st, FNET_ERR_OUT_OF_MEMORY);
        assert_int_equal(fnet_ctx_last_status(fx->ref), FNET_ERR_OUT_OF_MEMORY);
        assert_null(a);
        assert_null(b);
    }
    fail_msg("still failing after 64 injected allocation failures");
    return -1;
}

static void test_dataset_out_of_memory_injection(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(oom_loop(fx, NULL, OOM_FROM_MEMORY), 4); // storage, images, labels, view
    assert_int_equal(oom_loop(fx, fx->d, OOM_SPLIT), 4);      // two row lists, two views
    assert_int_equal(oom_loop(fx, fx->d, OOM_SUBSET), 1);     // identity view: no row list
    fnet_dataset *t, *v;
    fnet_assert_ok(fx->ref, fnet_dataset_split(fx->d, 0.5, 1, &t, &v));
    assert_int_equal(oom_loop(fx, t, OOM_SPLIT), 4);
    assert_int_equal(oom_loop(fx, t, OOM_SUBSET), 2); // row list and view
    fnet_dataset_free(t);
    fnet_dataset_free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_dataset_from_memory_copies_and_reports_shape, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_dataset_from_memory_rejects_bad_arguments, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_dataset_free_null_is_noop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dataset_batch_scales_u8_by_one_over_255_across_chunks,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_dataset_batch_reference_and_cpu_agree_bitwise, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_dataset_batch_rejects_out_of_range_before_writing,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_dataset_split_same_seed_gives_same_split, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_dataset_split_different_seeds_differ, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_dataset_split_is_disjoint_and_covers_the_view, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_dataset_split_zero_fraction_gives_null_val, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_dataset_split_rejects_bad_fraction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dataset_split_of_a_view_stays_inside_it, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_dataset_subset_takes_first_n_of_the_view, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_dataset_subset_rejects_bad_n, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dataset_views_outlive_the_parent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dataset_out_of_memory_injection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dataset_crc32_follows_the_views_order, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
