/* libFuzzer target: the IDX reader (src/data/idx.c, gzip or raw through zlib) and the dataset
 * built from it (src/data/dataset.c). The input is split into an image file and a label file:
 *
 *   byte 0      flags: bit 0 names the image file *.gz, bit 1 the label file, bit 2 loads through
 *               fnet_dataset_load_idx(dir) instead of fnet_dataset_load_idx_files()
 *   bytes 1..2  little-endian length L of the image file (clipped to what follows)
 *   then        L bytes of the image file, and the rest: the label file
 *
 * Every pair must load, into a dataset whose batches stay in range, or fail with a documented
 * status and a message; never crash, leak or read out of bounds. */
#include "fuzz_util.h"

#include <sys/stat.h>

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_ctx();
    return 0;
}

static void check_dataset(fnet_ctx *ctx, fnet_dataset *d)
{
    int64_t n = fnet_dataset_size(d), dim = fnet_dataset_dim(d), classes = fnet_dataset_classes(d);
    FUZZ_CHECK(n >= 1 && dim >= 1 && classes >= 1 && classes <= 256);
    int64_t b = n < 3 ? n : 3;
    float *x = malloc((size_t)(b * dim) * sizeof(float));
    int32_t labels[3];
    FUZZ_CHECK(x != NULL);
    FUZZ_CHECK(fnet_dataset_batch(d, NULL, n - b, b, x, labels) == FNET_OK);
    for (int64_t i = 0; i < b * dim; i++)
        FUZZ_CHECK(x[i] >= 0.0f && x[i] <= 1.0f);
    for (int64_t i = 0; i < b; i++)
        FUZZ_CHECK(labels[i] >= 0 && labels[i] < classes);
    free(x);
    if (n >= 2) {
        fnet_dataset *t = NULL, *v = NULL;
        FUZZ_CHECK(fnet_dataset_split(d, 0.5, 7, &t, &v) == FNET_OK);
        FUZZ_CHECK(fnet_dataset_size(t) + fnet_dataset_size(v) == n);
        fnet_dataset_free(t);
        fnet_dataset_free(v);
    }
    (void)ctx;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    fnet_ctx *ctx = fuzz_ctx();
    unsigned flags = data[0];
    size_t len = (size_t)data[1] | (size_t)data[2] << 8;
    data += 3;
    size -= 3;
    if (len > size)
        len = size;

    char images[512], labels[512];
    fuzz_path(images, sizeof(images), flags & 1 ? "train-images-idx3-ubyte.gz"
                                                : "train-images-idx3-ubyte");
    fuzz_path(labels, sizeof(labels), flags & 2 ? "train-labels-idx1-ubyte.gz"
                                                : "train-labels-idx1-ubyte");
    fuzz_write_file(images, data, len);
    fuzz_write_file(labels, data + len, size - len);

    fnet_dataset *d = (fnet_dataset *)&d; // must be reset to NULL on failure
    fnet_ctx_clear_error(ctx);
    fnet_status st = flags & 4 ? fnet_dataset_load_idx(ctx, fuzz_scratch_dir(), FNET_SPLIT_TRAIN, &d)
                               : fnet_dataset_load_idx_files(ctx, images, labels, &d);
    if (st == FNET_OK) {
        check_dataset(ctx, d);
        fnet_dataset_free(d);
    } else {
        fuzz_check_error(ctx, st);
        // the files are regular and readable: any failure is the content's (or a huge header's)
        FUZZ_CHECK(st == FNET_ERR_FORMAT || st == FNET_ERR_OUT_OF_MEMORY);
        FUZZ_CHECK(d == NULL);
    }
    unlink(images);
    unlink(labels);
    return 0;
}
