/* Tests of the IDX reader through fnet_dataset_load_idx[_files]: round trips of raw and gzip
 * files, every kind of corruption (exact status and a message naming the file), missing files
 * and directories, and out-of-memory injection. All files are synthetic, written to a fresh
 * temporary directory by the test (fwrite for raw, zlib's gzwrite for .gz). */
#include "test_util.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

// The fixture: N images of H x W, labels 0..4 (so 5 classes).
#define N 7
#define H 4
#define W 3
#define DIM (H * W)
#define CLASSES 5
#define MAX_FILE 65536

static uint8_t images[N * DIM];
static const uint8_t labels[N] = {0, 3, 1, 4, 2, 0, 3};

static void fill_images(void)
{
    for (int i = 0; i < N * DIM; i++)
        images[i] = (uint8_t)(i * 37 + 11);
    images[0] = 255; // both ends of the range
    images[1] = 0;
}

/* An IDX file in memory. */
struct idx_buf {
    uint8_t b[MAX_FILE];
    size_t n;
};

/* buf = magic 00 00 type rank, dims big-endian, data (len). */
static void make_idx(struct idx_buf *buf, uint8_t type, int rank, const uint32_t *dims,
                     const uint8_t *data, size_t len)
{
    size_t n = 0;
    buf->b[n++] = 0;
    buf->b[n++] = 0;
    buf->b[n++] = type;
    buf->b[n++] = (uint8_t)rank;
    for (int k = 0; k < rank; k++) {
        buf->b[n++] = (uint8_t)(dims[k] >> 24);
        buf->b[n++] = (uint8_t)(dims[k] >> 16);
        buf->b[n++] = (uint8_t)(dims[k] >> 8);
        buf->b[n++] = (uint8_t)dims[k];
    }
    assert_true(n + len <= sizeof(buf->b));
    if (len)
        memcpy(buf->b + n, data, len);
    buf->n = n + len;
}

static void make_images(struct idx_buf *buf, int count)
{
    uint32_t dims[3] = {(uint32_t)count, H, W};
    make_idx(buf, 0x08, 3, dims, images, (size_t)count * DIM);
}

static void make_labels(struct idx_buf *buf, int count)
{
    uint32_t dims[1] = {(uint32_t)count};
    make_idx(buf, 0x08, 1, dims, labels, (size_t)count);
}

static void write_raw(const char *path, const uint8_t *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static void write_gz(const char *path, const uint8_t *b, size_t n)
{
    gzFile f = gzopen(path, "wb9");
    assert_non_null(f);
    if (n)
        assert_int_equal(gzwrite(f, b, (unsigned)n), (int)n);
    assert_int_equal(gzclose(f), Z_OK);
}

static void write_idx(const char *path, const struct idx_buf *buf, bool gz)
{
    if (gz)
        write_gz(path, buf->b, buf->n);
    else
        write_raw(path, buf->b, buf->n);
}

static size_t read_raw(const char *path, uint8_t *b, size_t cap)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t n = fread(b, 1, cap, f);
    fclose(f);
    return n;
}

/* Remove the files of a (flat) temporary directory, then the directory. */
static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *e;
    char path[1024];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

/* Per-test state: a reference ctx, a fresh directory and the two standard file paths in it. */
struct fixture {
    fnet_ctx *ctx;
    char dir[512];
    char images_path[600];
    char labels_path[600];
};

static int setup(void **state)
{
    fill_images();
    struct fixture *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    assert_int_equal(fnet_ctx_create_reference(&fx->ctx), FNET_OK);
    snprintf(fx->dir, sizeof(fx->dir), "%s", fnet_test_tmpdir());
    snprintf(fx->images_path, sizeof(fx->images_path), "%s/train-images-idx3-ubyte", fx->dir);
    snprintf(fx->labels_path, sizeof(fx->labels_path), "%s/train-labels-idx1-ubyte", fx->dir);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    fnet_debug_fail_alloc(0);
    remove_dir(fx->dir);
    fnet_ctx_free(fx->ctx);
    free(fx);
    return 0;
}

static void assert_error_contains(const fnet_ctx *ctx, const char *needle)
{
    const char *msg = fnet_ctx_last_error(ctx);
    if (strstr(msg, needle) == NULL) {
        print_error("last error \"%s\" does not contain \"%s\"\n", msg, needle);
        fail();
    }
}

/* Load images_path + labels_path and expect st with a message containing needle. */
static void check_load_fails(struct fixture *fx, const char *images_path, const char *labels_path,
                              fnet_status st, const char *needle)
{
    fnet_dataset *d = (fnet_dataset *)&d; // must be reset to NULL on failure
    assert_int_equal(fnet_dataset_load_idx_files(fx->ctx, images_path, labels_path, &d), st);
    assert_null(d);
    assert_int_equal(fnet_ctx_last_status(fx->ctx), st);
    assert_error_contains(fx->ctx, needle);
}

/* The dataset holds exactly the fixture's first `count` samples. */
static void check_fixture(fnet_dataset *d, int count)
{
    assert_int_equal(fnet_dataset_size(d), count);
    assert_int_equal(fnet_dataset_dim(d), DIM);
    assert_int_equal(fnet_dataset_classes(d), CLASSES);
    float x[N * DIM], want[N * DIM];
    int32_t y[N];
    assert_int_equal(fnet_dataset_batch(d, NULL, 0, count, x, y), FNET_OK);
    for (int i = 0; i < count * DIM; i++)
        want[i] = (float)images[i] * (1.0f / 255.0f);
    fnet_assert_allclose(x, want, count * DIM, 0.0, 0.0);
    assert_true(x[0] == 1.0f);
    assert_true(x[1] == 0.0f);
    for (int i = 0; i < count; i++)
        assert_int_equal(y[i], labels[i]);
}

static void write_pair(struct fixture *fx, bool gz)
{
    struct idx_buf im, lb;
    make_images(&im, N);
    make_labels(&lb, N);
    write_idx(fx->images_path, &im, gz);
    write_idx(fx->labels_path, &lb, gz);
}

static void test_idx_round_trip_raw(void **state)
{
    struct fixture *fx = *state;
    write_pair(fx, false);
    fnet_dataset *d;
    fnet_assert_ok(fx->ctx, fnet_dataset_load_idx_files(fx->ctx, fx->images_path,
                                                        fx->labels_path, &d));
    check_fixture(d, N);
    fnet_dataset_free(d);
}

static void test_idx_round_trip_gzip(void **state)
{
    struct fixture *fx = *state;
    char gi[700], gl[700];
    snprintf(gi, sizeof(gi), "%s.gz", fx->images_path);
    snprintf(gl, sizeof(gl), "%s.gz", fx->labels_path);
    struct idx_buf im, lb;
    make_images(&im, N);
    make_labels(&lb, N);
    write_idx(gi, &im, true);
    write_idx(gl, &lb, true);
    fnet_dataset *d;
    fnet_assert_ok(fx->ctx, fnet_dataset_load_idx_files(fx->ctx, gi, gl, &d));
    check_fixture(d, N);
    fnet_dataset_free(d);
}

static void test_idx_load_dir_prefers_gzip_then_falls_back_to_raw(void **state)
{
    struct fixture *fx = *state;
    char path[700];
    struct idx_buf im, lb;
    // train: .gz with all N samples and raw with only 3: the .gz must win.
    make_images(&im, N);
    make_labels(&lb, N);
    snprintf(path, sizeof(path), "%s/train-images-idx3-ubyte.gz", fx->dir);
    write_idx(path, &im, true);
    snprintf(path, sizeof(path), "%s/train-labels-idx1-ubyte.gz", fx->dir);
    write_idx(path, &lb, true);
    make_images(&im, 3);
    make_labels(&lb, 3);
    write_idx(fx->images_path, &im, false);
    write_idx(fx->labels_path, &lb, false);
    // t10k: raw only, 5 samples.
    make_images(&im, 5);
    make_labels(&lb, 5);
    snprintf(path, sizeof(path), "%s/t10k-images-idx3-ubyte", fx->dir);
    write_idx(path, &im, false);
    snprintf(path, sizeof(path), "%s/t10k-labels-idx1-ubyte", fx->dir);
    write_idx(path, &lb, false);

    fnet_dataset *train, *test;
    fnet_assert_ok(fx->ctx, fnet_dataset_load_idx(fx->ctx, fx->dir, FNET_SPLIT_TRAIN, &train));
    check_fixture(train, N);
    fnet_assert_ok(fx->ctx, fnet_dataset_load_idx(fx->ctx, fx->dir, FNET_SPLIT_TEST, &test));
    check_fixture(test, 5);
    fnet_dataset_free(train);
    fnet_dataset_free(test);
}

static void test_idx_accepts_rank2_and_rank4_images(void **state)
{
    struct fixture *fx = *state;
    struct idx_buf im, lb;
    make_labels(&lb, N);
    write_idx(fx->labels_path, &lb, false);
    uint32_t dims2[2] = {N, DIM};
    make_idx(&im, 0x08, 2, dims2, images, sizeof(images));
    write_idx(fx->images_path, &im, false);
    fnet_dataset *d;
    fnet_assert_ok(fx->ctx, fnet_dataset_load_idx_files(fx->ctx, fx->images_path,
                                                        fx->labels_path, &d));
    check_fixture(d, N);
    fnet_dataset_free(d);

    uint32_t dims4[4] = {N, 2, 3, 2};
    make_idx(&im, 0x08, 4, dims4, images, sizeof(images));
    write_idx(fx->images_path, &im, true); // gzip content under a raw name is read too
    fnet_assert_ok(fx->ctx, fnet_dataset_load_idx_files(fx->ctx, fx->images_path,
                                                        fx->labels_path, &d));
    check_fixture(d, N);
    fnet_dataset_free(d);
}

static void test_idx_classes_is_max_label_plus_one(void **state)
{
    struct fixture *fx = *state;
    struct idx_buf im, lb;
    uint8_t lab[N] = {9, 0, 0, 0, 0, 0, 0};
    uint32_t dims[1] = {N};
    make_images(&im, N);
    make_idx(&lb, 0x08, 1, dims, lab, N);
    write_idx(fx->images_path, &im, false);
    write_idx(fx->labels_path, &lb, false);
    fnet_dataset *d;
    fnet_assert_ok(fx->ctx, fnet_dataset_load_idx_files(fx->ctx, fx->images_path,
                                                        fx->labels_path, &d));
    assert_int_equal(fnet_dataset_classes(d), 10);
    fnet_dataset_free(d);
}

static void test_idx_rejects_bad_magic(void **state)
{
    struct fixture *fx = *state;
    write_pair(fx, false);
    struct idx_buf im;
    make_images(&im, N);
    im.b[1] = 0x01;
    write_idx(fx->images_path, &im, false);
    check_load_fails(fx, fx->images_path, fx->labels_path, FNET_ERR_FORMAT,
                      "train-images-idx3-ubyte: bad magic");
    // The same in a gzip file.
    char gi[700];
    snprintf(gi, sizeof(gi), "%s.gz", fx->images_path);
    im.b[1] = 0x00;
    im.b[0] = 0x1f;
    write_idx(gi, &im, true);
    check_load_fails(fx, gi, fx->labels_path, FNET_ERR_FORMAT,
                      "train-images-idx3-ubyte.gz: bad magic");
}

static void test_idx_rejects_wrong_type_byte(void **state)
{
    struct fixture *fx = *state;
    write_pair(fx, false);
    struct idx_buf lb;
    uint32_t dims[1] = {N};
    make_idx(&lb, 0x0D, 1, dims, labels, N); // 0x0D: float
    write_idx(fx->labels_path, &lb, false);
    check_load_fails(fx, fx->images_path, fx->labels_path, FNET_ERR_FORMAT,
                      "train-labels-idx1-ubyte: IDX data type 0x0d");
}

static void test_idx_rejects_wrong_rank(void **state)
{
    struct fixture *fx = *state;
    write_pair(fx, false);
    // labels of rank 2
    struct idx_buf buf;
    uint32_t dims2[2] = {N, 1};
    make_idx(&buf, 0x08, 2, dims2, labels, N);
    write_idx(fx->labels_path, &buf, false);
    check_load_fails(fx, fx->images_path, fx->labels_path, FNET_ERR_FORMAT,
                      "train-labels-idx1-ubyte: rank 2, expected 1");
    // images of rank 1
    make_labels(&buf, N);
    write_idx(fx->labels_path, &buf, false);
    uint32_t dims1[1] = {N};
    make_idx(&buf, 0x08, 1, dims1, images, N);
    write_idx(fx->images_path, &buf, false);
    check_load_fails(fx, fx->images_path, fx->labels_path, FNET_ERR_FORMAT,
                      "train-images-idx3-ubyte: rank 1, expected 2 to 255");
    // rank 0 labels
    make_images(&buf, N);
    write_idx(fx->images_path, &buf, false);
    make_idx(&buf, 0x08, 0, NULL, NULL, 0);
    write_idx(fx->labels_path, &buf, false);
    check_load_fails(fx, fx->images_path, fx->labels_path, FNET_ERR_FORMAT,
                      "train-labels-idx1-ubyte: rank 0");
}

static void test_idx_rejects_zero_dimension(void **state)
{
    struct fixture *fx = *state;
    write_pair(fx, true);
    struct idx_buf im;
    uint32_t dims[3] = {N, 0, W};
    make_idx(&im, 0x08, 3, dims, images, sizeof(images));
    write_idx(fx->images_path, &im, true);
    check_load_fails(fx, fx->images_path, fx->labels_path, FNET_ERR_FORMAT,
                      "train-images-idx3-ubyte: dimension 1 of 3 is 0");
    uint32_t zero[1] = {0};
    make_idx(&im, 0x08, 1, zero, NULL, 0);
    write_pair(fx, true);
    write_idx(fx->labels_path, &im, true);
    check_load_fails(fx, fx->images_path, fx->labels_path, FNET_ERR_FORMAT,
                      "train-labels-idx1-ubyte: dimension 0 of 1 is 0");
}

static void test_idx_rejects_absurd_dimensions_before_reading(void **state)
{
    struct fixture *fx = *state;
    write_pair(fx, false);
    struct idx_buf im;
    uint32_t dims[3] = {60000, 65536, 65536}; // 2^32·60000 bytes: must not be allocated
    make_idx(&im, 0x08, 3, dims, images, sizeof(images));
    write_idx(fx->images_path, &im, false);
    long before = fnet_debug_alloc_count();
    check_load_fails(fx, fx->images_path, fx->labels_path, FNET_ERR_FORMAT,
                      "train-images-idx3-ubyte: dimension 1 of 3 (= 65536) takes the data over");
    assert_int_equal(fnet_debug_alloc_count(), before);
}

static void test_idx_rejects_truncated_header(void **state)
{
    struct fixture *fx = *state;
    write_pair(fx, false);
    struct idx_buf im;
    make_images(&im, N);
    write_raw(fx->images_path, im.b, 10); // magic + 1.5 dimensions
    check_load_fails(fx, fx->images_path, fx->labels_path, FNET_ERR_FORMAT,
                      "train-images-idx3-ubyte: truncated header");
    write_raw(fx->images_path, im.b, 2);
    check_load_fails(fx, fx->images_path, fx->labels_path, FNET_ERR_FORMAT,
                      "train-images-idx3-ubyte: truncated");
    write_raw(fx->images_path, im.b, 0);
    check_load_fails(fx, fx->images_path, fx->labels_path, FNET_ERR_FORMAT,
                      "train-images-idx3-ubyte: truncated");
}

static void test_idx_rejects_truncated_raw(void **state)
{
    struct fixture *fx = *state;
    write_pair(fx, false);
    struct idx_buf im;
    make_images(&im, N);
    write_raw(fx->images_path, im.b, im.n - 5);
    check_load_fails(fx, fx->images_path, fx->labels_path, FNET_ERR_FORMAT,
                      "train-images-idx3-ubyte: truncated: expected 84 data bytes, got 79");
}

static void test_idx_rejects_truncated_gzip(void **state)
{
    struct fixture *fx = *state;
    write_pair(fx, true);
    // A complete gzip stream whose payload is short.
    struct idx_buf lb;
    make_labels(&lb, N);
    write_gz(fx->labels_path, lb.b, lb.n - 2);
    check_load_fails(fx, fx->images_path, fx->labels_path, FNET_ERR_FORMAT,
                      "train-labels-idx1-ubyte: truncated: expected 7 data bytes, got 5");
}

static void test_idx_rejects_cut_gzip_stream(void **state)
{
    struct fixture *fx = *state;
    char gi[700];
    snprintf(gi, sizeof(gi), "%s.gz", fx->images_path);
    write_pair(fx, true);
    struct idx_buf im;
    make_images(&im, N);
    write_gz(gi, im.b, im.n);
    // Cut the compressed file: first inside the deflate data, then just before the CRC trailer.
    static uint8_t z[MAX_FILE];
    size_t zn = read_raw(gi, z, sizeof(z));
    assert_true(zn > 30);
    write_raw(gi, z, zn / 2);
    check_load_fails(fx, gi, fx->labels_path, FNET_ERR_FORMAT, "train-images-idx3-ubyte.gz: ");
    write_raw(gi, z, zn - 4);
    check_load_fails(fx, gi, fx->labels_path, FNET_ERR_FORMAT,
                      "train-images-idx3-ubyte.gz: truncated gzip stream");
}

static void test_idx_rejects_trailing_garbage(void **state)
{
    struct fixture *fx = *state;
    write_pair(fx, false);
    struct idx_buf lb;
    make_labels(&lb, N);
    lb.b[lb.n++] = 0x42;
    write_idx(fx->labels_path, &lb, false);
    check_load_fails(fx, fx->images_path, fx->labels_path, FNET_ERR_FORMAT,
                      "train-labels-idx1-ubyte: trailing bytes after the expected 7 data bytes");
    write_idx(fx->labels_path, &lb, true);
    check_load_fails(fx, fx->images_path, fx->labels_path, FNET_ERR_FORMAT,
                      "train-labels-idx1-ubyte: trailing bytes");
    // Trailing bytes after a large payload (more than one internal read).
    struct idx_buf im;
    make_images(&im, N);
    memset(im.b + im.n, 7, 1000);
    im.n += 1000;
    write_pair(fx, false);
    write_idx(fx->images_path, &im, true);
    check_load_fails(fx, fx->images_path, fx->labels_path, FNET_ERR_FORMAT,
                      "train-images-idx3-ubyte: trailing bytes");
}

static void test_idx_rejects_corrupt_gzip_bytes(void **state)
{
    struct fixture *fx = *state;
    // A larger, compressible but non-trivial payload so that the deflate stream has Huffman
    // blocks to break.
    enum { n_img = 64, side = 28 };
    static uint8_t big[n_img * side * side], lab[n_img];
    fnet_rng rng;
    fnet_rng_seed(&rng, 7);
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(((i % side) * 9) ^ (fnet_rng_below(&rng, 4) * 60));
    for (int i = 0; i < n_img; i++)
        lab[i] = (uint8_t)(i % 10);
    static struct idx_buf im, lb;
    uint32_t dims[3] = {n_img, side, side}, ldims[1] = {n_img};
    make_idx(&im, 0x08, 3, dims, big, sizeof(big));
    make_idx(&lb, 0x08, 1, ldims, lab, n_img);
    char gi[700], gl[700];
    snprintf(gi, sizeof(gi), "%s.gz", fx->images_path);
    snprintf(gl, sizeof(gl), "%s.gz", fx->labels_path);
    write_idx(gi, &im, true);
    write_idx(gl, &lb, true);

    fnet_dataset *d; // intact, it loads
    fnet_assert_ok(fx->ctx, fnet_dataset_load_idx_files(fx->ctx, gi, gl, &d));
    assert_int_equal(fnet_dataset_size(d), n_img);
    assert_int_equal(fnet_dataset_dim(d), side * side);
    fnet_dataset_free(d);

    static uint8_t z[MAX_FILE];
    size_t zn = read_raw(gi, z, sizeof(z));
    assert_true(zn > 200);
    for (size_t i = zn / 2; i < zn / 2 + 16; i++)
        z[i] ^= 0xA5;
    write_raw(gi, z, zn);
    check_load_fails(fx, gi, gl, FNET_ERR_FORMAT, "train-images-idx3-ubyte.gz: ");
    // The first deflate block header (right after the 10-byte gzip header) set to the
    // reserved block type 11: inflate itself must refuse it.
    write_idx(gi, &im, true);
    zn = read_raw(gi, z, sizeof(z));
    z[10] |= 0x06;
    write_raw(gi, z, zn);
    check_load_fails(fx, gi, gl, FNET_ERR_FORMAT,
                      "train-images-idx3-ubyte.gz: corrupt gzip stream: invalid block type");
    // A single flipped byte of the CRC trailer only: the data inflate fine, the check fails.
    write_idx(gi, &im, true);
    zn = read_raw(gi, z, sizeof(z));
    z[zn - 6] ^= 0x01;
    write_raw(gi, z, zn);
    check_load_fails(fx, gi, gl, FNET_ERR_FORMAT,
                      "train-images-idx3-ubyte.gz: corrupt gzip stream");
}

static void test_idx_rejects_gz_name_without_gzip_stream(void **state)
{
    struct fixture *fx = *state;
    char gl[700];
    snprintf(gl, sizeof(gl), "%s.gz", fx->labels_path);
    write_pair(fx, false);
    struct idx_buf lb;
    make_labels(&lb, N);
    write_idx(gl, &lb, false);
    check_load_fails(fx, fx->images_path, gl, FNET_ERR_FORMAT,
                      "train-labels-idx1-ubyte.gz: named .gz but is not a gzip stream");
}

static void test_idx_rejects_counts_that_disagree(void **state)
{
    struct fixture *fx = *state;
    struct idx_buf im, lb;
    make_images(&im, N);
    make_labels(&lb, N - 1);
    write_idx(fx->images_path, &im, true);
    write_idx(fx->labels_path, &lb, false);
    check_load_fails(fx, fx->images_path, fx->labels_path, FNET_ERR_FORMAT, "counts disagree");
    char want[1400];
    snprintf(want, sizeof(want), "%s holds 7 images but %s holds 6 labels", fx->images_path,
             fx->labels_path);
    assert_error_contains(fx->ctx, want);
}

static void test_idx_rejects_missing_file(void **state)
{
    struct fixture *fx = *state;
    write_pair(fx, false);
    char missing[700];
    snprintf(missing, sizeof(missing), "%s/no-such-images", fx->dir);
    check_load_fails(fx, missing, fx->labels_path, FNET_ERR_IO, missing);
    assert_error_contains(fx->ctx, "No such file or directory");
    snprintf(missing, sizeof(missing), "%s/no-such-labels.gz", fx->dir);
    check_load_fails(fx, fx->images_path, missing, FNET_ERR_IO, missing);
    // A directory where a file should be is an I/O error too.
    check_load_fails(fx, fx->dir, fx->labels_path, FNET_ERR_IO, fx->dir);
}

static void test_idx_load_dir_names_both_paths_tried(void **state)
{
    struct fixture *fx = *state;
    fnet_dataset *d = NULL;
    assert_int_equal(fnet_dataset_load_idx(fx->ctx, fx->dir, FNET_SPLIT_TEST, &d), FNET_ERR_IO);
    assert_null(d);
    char want[1400];
    snprintf(want, sizeof(want),
             "neither %s/t10k-images-idx3-ubyte.gz nor %s/t10k-images-idx3-ubyte", fx->dir,
             fx->dir);
    assert_error_contains(fx->ctx, want);
    // Images present, labels missing: the labels are named.
    struct idx_buf im;
    make_images(&im, N);
    char path[700];
    snprintf(path, sizeof(path), "%s/t10k-images-idx3-ubyte", fx->dir);
    write_idx(path, &im, false);
    assert_int_equal(fnet_dataset_load_idx(fx->ctx, fx->dir, FNET_SPLIT_TEST, &d), FNET_ERR_IO);
    assert_error_contains(fx->ctx, "t10k-labels-idx1-ubyte.gz nor ");
}

static void test_idx_rejects_missing_directory(void **state)
{
    struct fixture *fx = *state;
    char missing[700];
    snprintf(missing, sizeof(missing), "%s/no-such-dir", fx->dir);
    fnet_dataset *d = NULL;
    assert_int_equal(fnet_dataset_load_idx(fx->ctx, missing, FNET_SPLIT_TRAIN, &d), FNET_ERR_IO);
    assert_null(d);
    assert_error_contains(fx->ctx, missing);
    assert_error_contains(fx->ctx, "train-images-idx3-ubyte");
    // A file given as the directory.
    write_pair(fx, false);
    assert_int_equal(fnet_dataset_load_idx(fx->ctx, fx->images_path, FNET_SPLIT_TRAIN, &d),
                     FNET_ERR_IO);
    assert_error_contains(fx->ctx, "is not a directory");
}

static void test_idx_rejects_bad_arguments(void **state)
{
    struct fixture *fx = *state;
    fnet_dataset *d = NULL;
    assert_int_equal(fnet_dataset_load_idx(NULL, fx->dir, FNET_SPLIT_TRAIN, &d),
                     FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_dataset_load_idx(fx->ctx, fx->dir, FNET_SPLIT_TRAIN, NULL),
                     FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_dataset_load_idx(fx->ctx, NULL, FNET_SPLIT_TRAIN, &d),
                     FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_dataset_load_idx(fx->ctx, fx->dir, (fnet_split)2, &d),
                     FNET_ERR_INVALID_ARG);
    assert_error_contains(fx->ctx, "split 2");
    assert_int_equal(fnet_dataset_load_idx_files(fx->ctx, NULL, fx->labels_path, &d),
                     FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_dataset_load_idx_files(fx->ctx, fx->images_path, NULL, &d),
                     FNET_ERR_INVALID_ARG);
    assert_null(d);
}

static void test_idx_load_out_of_memory_injection(void **state)
{
    struct fixture *fx = *state;
    write_pair(fx, true);
    bool loaded = false;
    int failures = 0;
    for (long k = 1; k <= 64 && !loaded; k++) {
        fnet_dataset *d = NULL;
        fnet_debug_fail_alloc(k);
        fnet_status st = fnet_dataset_load_idx(fx->ctx, fx->dir, FNET_SPLIT_TRAIN, &d);
        fnet_debug_fail_alloc(0);
        if (st == FNET_OK) {
            check_fixture(d, N);
            fnet_dataset_free(d);
            loaded = true;
        } else {
            assert_int_equal(st, FNET_ERR_OUT_OF_MEMORY);
            assert_null(d);
            failures++;
        }
    }
    assert_true(loaded);
    assert_true(failures >= 3); // storage, images, labels, view
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_idx_round_trip_raw, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idx_round_trip_gzip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idx_load_dir_prefers_gzip_then_falls_back_to_raw,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_idx_accepts_rank2_and_rank4_images, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idx_classes_is_max_label_plus_one, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idx_rejects_bad_magic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idx_rejects_wrong_type_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idx_rejects_wrong_rank, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idx_rejects_zero_dimension, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idx_rejects_absurd_dimensions_before_reading, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_idx_rejects_truncated_header, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idx_rejects_truncated_raw, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idx_rejects_truncated_gzip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idx_rejects_cut_gzip_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idx_rejects_trailing_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idx_rejects_corrupt_gzip_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idx_rejects_gz_name_without_gzip_stream, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_idx_rejects_counts_that_disagree, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idx_rejects_missing_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idx_load_dir_names_both_paths_tried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idx_rejects_missing_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idx_rejects_bad_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idx_load_out_of_memory_injection, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
