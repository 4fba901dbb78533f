/* Datasets: refcounted uint8 storage (images (N, dim) in backend memory, uploaded once; labels
 * (N) and classes on the host) shared by views, each view an optional list of storage rows.
 * Split (seeded Fisher-Yates), subset and batching never copy images; a batch is gathered and
 * converted to float by the backend's u8_to_float op, with no heap allocation (it runs every
 * training step). A dataset keeps the ctx it was made on. */
#include "data/data_impl.h"
#include "core/replay.h"
#include "core/backend.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define BATCH_CHUNK 256          // storage rows composed on the stack per u8_to_float call
#define DATA_PATH_MAX 4096       // longest directory + file name accepted by load_idx
#define PIXEL_SCALE (1.0f / 255.0f)

struct data_storage {
    fnet_ctx *ctx;    // whose backend holds the images
    int64_t refs;     // views alive; freed when it drops to 0 (not atomic: one ctx, one thread)
    int64_t n, dim, classes;
    uint8_t *images;  // (n, dim), backend memory
    uint8_t *labels;  // (n), each < classes, host memory
};

struct fnet_dataset {
    fnet_ctx *ctx;           // borrowed: errors go there, batches run on its backend
    struct data_storage *s;  // shared, one reference held
    int64_t *rows;           // (count) storage row of each position, owned; NULL: row = position
    int64_t count;
};

static inline int64_t view_row(const fnet_dataset *d, int64_t pos)
{
    return d->rows ? d->rows[pos] : pos;
}

static void storage_free(struct data_storage *s)
{
    if (s == NULL)
        return;
    fnet_free(s->labels);
    if (s->images != NULL)
        s->ctx->be->free(s->ctx, s->images);
    fnet_free(s);
}

/* images (n, dim) and labels (n) uninitialized, refs 0. */
static fnet_status storage_create(fnet_ctx *ctx, int64_t n, int64_t dim,
                                  struct data_storage **out)
{
    *out = NULL;
    struct data_storage *s = fnet_calloc(1, sizeof(*s));
    if (s == NULL)
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "dataset storage");
    s->ctx = ctx;
    s->n = n;
    s->dim = dim;
    s->images = ctx->be->alloc(ctx, (size_t)n * (size_t)dim);
    if (s->images == NULL) {
        storage_free(s);
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "dataset images (%lld x %lld bytes)",
                         (long long)n, (long long)dim);
    }
    s->labels = fnet_malloc((size_t)n);
    if (s->labels == NULL) {
        storage_free(s);
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "dataset labels (%lld bytes)",
                         (long long)n);
    }
    *out = s;
    return FNET_OK;
}

/* Attach an allocated view struct to s: it takes one reference and ownership of rows. */
static fnet_dataset *view_attach(fnet_dataset *v, fnet_ctx *ctx, struct data_storage *s,
                                 int64_t *rows, int64_t count)
{
    v->ctx = ctx;
    v->s = s;
    v->rows = rows;
    v->count = count;
    s->refs++;
    return v;
}

void fnet_dataset_free(fnet_dataset *d)
{
    if (d == NULL)
        return;
    struct data_storage *s = d->s;
    fnet_free(d->rows);
    fnet_free(d);
    if (s != NULL && --s->refs == 0)
        storage_free(s);
}

fnet_ctx *fnet_dataset_ctx(const fnet_dataset *d)
{
    return d ? d->ctx : NULL;
}

int64_t fnet_dataset_size(const fnet_dataset *d)
{
    return d ? d->count : 0;
}

int64_t fnet_dataset_dim(const fnet_dataset *d)
{
    return d ? d->s->dim : 0;
}

int64_t fnet_dataset_classes(const fnet_dataset *d)
{
    return d ? d->s->classes : 0;
}

fnet_status fnet_dataset_from_memory(fnet_ctx *ctx, const uint8_t *images, const uint8_t *labels,
                                     int64_t n, int64_t dim, int64_t classes, fnet_dataset **out)
{
    if (ctx == NULL || out == NULL)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "ctx and out must not be NULL");
    *out = NULL;
    if (images == NULL || labels == NULL)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "images and labels must not be NULL");
    if (n < 1 || dim < 1)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "n = %lld and dim = %lld must be >= 1",
                         (long long)n, (long long)dim);
    if (classes < 1 || classes > 256)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "classes = %lld must be in 1..256",
                         (long long)classes);
    if ((uint64_t)n > SIZE_MAX / (uint64_t)dim || n > INT64_MAX / dim)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "n x dim = %lld x %lld bytes overflows",
                         (long long)n, (long long)dim);
    for (int64_t i = 0; i < n; i++)
        if (labels[i] >= classes)
            return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "label %d of sample %lld is not below "
                             "classes = %lld", labels[i], (long long)i, (long long)classes);

    struct data_storage *s;
    fnet_status st = storage_create(ctx, n, dim, &s);
    if (st != FNET_OK)
        return st;
    fnet_dataset *v = fnet_calloc(1, sizeof(*v));
    if (v == NULL) {
        st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "dataset view");
        goto out_free_storage;
    }
    ctx->be->upload(ctx, s->images, images, (size_t)n * (size_t)dim);
    memcpy(s->labels, labels, (size_t)n);
    s->classes = classes;
    *out = view_attach(v, ctx, s, NULL, n);
    return FNET_OK;

out_free_storage:
    storage_free(s);
    return st;
}

fnet_status fnet_dataset_load_idx_files(fnet_ctx *ctx, const char *images_path,
                                        const char *labels_path, fnet_dataset **out)
{
    if (ctx == NULL || out == NULL)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "ctx and out must not be NULL");
    *out = NULL;
    if (images_path == NULL || labels_path == NULL)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "images_path and labels_path must not be NULL");

    // Both headers first, so that files that disagree fail before any data is read.
    struct fnet_idx im, lb;
    fnet_status st = fnet_data_idx_open(ctx, images_path, "images", 2, 255, &im);
    if (st != FNET_OK)
        return st;
    st = fnet_data_idx_open(ctx, labels_path, "labels", 1, 1, &lb);
    if (st != FNET_OK)
        goto out_close_images;
    if (im.count != lb.count) {
        st = fnet_fail(ctx, FNET_ERR_FORMAT,
                       "counts disagree: %s holds %lld images but %s holds %lld labels",
                       images_path, (long long)im.count, labels_path, (long long)lb.count);
        goto out_close_labels;
    }

    struct data_storage *s;
    st = storage_create(ctx, im.count, im.item, &s);
    if (st != FNET_OK)
        goto out_close_labels;
    fnet_dataset *v = fnet_calloc(1, sizeof(*v));
    if (v == NULL) {
        st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "dataset view");
        goto out_free_storage;
    }

    if ((st = fnet_data_idx_read(ctx, &im, s->images, true)) != FNET_OK)
        goto out_free_view;
    if ((st = fnet_data_idx_read(ctx, &lb, s->labels, false)) != FNET_OK)
        goto out_free_view;
    int max_label = 0;
    for (int64_t i = 0; i < s->n; i++)
        if (s->labels[i] > max_label)
            max_label = s->labels[i];
    s->classes = max_label + 1; // <= 256: labels are bytes
    *out = view_attach(v, ctx, s, NULL, s->n);
    fnet_data_idx_close(&lb);
    fnet_data_idx_close(&im);
    return FNET_OK;

out_free_view:
    fnet_free(v);
out_free_storage:
    storage_free(s);
out_close_labels:
    fnet_data_idx_close(&lb);
out_close_images:
    fnet_data_idx_close(&im);
    return st;
}

/* path (cap) = dir/name.gz when that exists, else dir/name when that exists; otherwise
 * FNET_ERR_IO naming both paths tried (or the directory, when it is missing). */
static fnet_status find_idx_file(fnet_ctx *ctx, const char *dir, const char *name, char *path,
                                 size_t cap)
{
    struct stat sb;
    int k = snprintf(path, cap, "%s/%s.gz", dir, name);
    if (k < 0 || (size_t)k >= cap)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "data directory path too long: %s", dir);
    if (stat(path, &sb) == 0)
        return FNET_OK;
    snprintf(path, cap, "%s/%s", dir, name);
    if (stat(path, &sb) == 0)
        return FNET_OK;
    int err = errno;
    if (stat(dir, &sb) != 0)
        return fnet_fail(ctx, FNET_ERR_IO,
                         "%s: cannot open the data directory: %s (looking for %s.gz or %s)", dir,
                         strerror(errno), name, name);
    if (!S_ISDIR(sb.st_mode))
        return fnet_fail(ctx, FNET_ERR_IO,
                         "%s: the data directory is not a directory (looking for %s.gz or %s)",
                         dir, name, name);
    return fnet_fail(ctx, FNET_ERR_IO, "neither %s/%s.gz nor %s/%s can be found: %s", dir, name,
                     dir, name, strerror(err));
}

fnet_status fnet_dataset_load_idx(fnet_ctx *ctx, const char *dir, fnet_split split,
                                  fnet_dataset **out)
{
    if (ctx == NULL || out == NULL)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "ctx and out must not be NULL");
    *out = NULL;
    if (dir == NULL)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "dir must not be NULL");
    if (split != FNET_SPLIT_TRAIN && split != FNET_SPLIT_TEST)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "split %d is neither FNET_SPLIT_TRAIN nor "
                         "FNET_SPLIT_TEST", (int)split);
    const char *prefix = split == FNET_SPLIT_TRAIN ? "train" : "t10k";
    char images_name[32], labels_name[32];
    snprintf(images_name, sizeof(images_name), "%s-images-idx3-ubyte", prefix);
    snprintf(labels_name, sizeof(labels_name), "%s-labels-idx1-ubyte", prefix);

    char images_path[DATA_PATH_MAX], labels_path[DATA_PATH_MAX];
    fnet_status st = find_idx_file(ctx, dir, images_name, images_path, sizeof(images_path));
    if (st != FNET_OK)
        return st;
    st = find_idx_file(ctx, dir, labels_name, labels_path, sizeof(labels_path));
    if (st != FNET_OK)
        return st;
    return fnet_dataset_load_idx_files(ctx, images_path, labels_path, out);
}

fnet_status fnet_dataset_split(const fnet_dataset *d, double frac, uint64_t seed,
                               fnet_dataset **train, fnet_dataset **val)
{
    if (d == NULL || train == NULL || val == NULL)
        return FNET_ERR_INVALID_ARG; // no ctx to hold a message
    *train = NULL;
    *val = NULL;
    fnet_ctx *ctx = d->ctx;
    if (!(frac >= 0.0 && frac < 1.0))
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "validation fraction %g is not in [0, 1)",
                         frac);
    int64_t n = d->count;
    int64_t n_val = (int64_t)(frac * (double)n + 0.5); // round(frac·n), frac·n >= 0
    if (frac > 0.0 && n_val == 0)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG,
                         "validation fraction %g of %lld samples rounds to an empty validation set",
                         frac, (long long)n);
    if (n_val >= n)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG,
                         "validation fraction %g of %lld samples leaves no training samples", frac,
                         (long long)n);
    int64_t n_train = n - n_val;

    fnet_status st = FNET_OK;
    // rows_train holds the whole permutation first; its tail then moves to the front.
    int64_t *rows_train = fnet_malloc_array((size_t)n, sizeof(int64_t));
    if (rows_train == NULL)
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "split: %lld row indices", (long long)n);
    int64_t *rows_val = NULL;
    if (n_val > 0) {
        rows_val = fnet_malloc_array((size_t)n_val, sizeof(int64_t));
        if (rows_val == NULL) {
            st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "split: %lld row indices",
                           (long long)n_val);
            goto out_free_rows_train;
        }
    }
    fnet_dataset *t = fnet_calloc(1, sizeof(*t));
    if (t == NULL) {
        st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "split: training view");
        goto out_free_rows_val;
    }
    fnet_dataset *v = NULL;
    if (n_val > 0) {
        v = fnet_calloc(1, sizeof(*v));
        if (v == NULL) {
            st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "split: validation view");
            goto out_free_train;
        }
    }

    // Shuffle positions of this view, then compose with its rows: views of views stay flat.
    fnet_rng rng;
    fnet_rng_seed(&rng, seed);
    for (int64_t i = 0; i < n; i++)
        rows_train[i] = i;
    fnet_rng_shuffle(&rng, rows_train, n);
    for (int64_t i = 0; i < n; i++)
        rows_train[i] = view_row(d, rows_train[i]);
    if (n_val > 0) {
        memcpy(rows_val, rows_train, (size_t)n_val * sizeof(int64_t));
        memmove(rows_train, rows_train + n_val, (size_t)n_train * sizeof(int64_t));
        *val = view_attach(v, ctx, d->s, rows_val, n_val);
    }
    *train = view_attach(t, ctx, d->s, rows_train, n_train);
    return FNET_OK;

out_free_train:
    fnet_free(t);
out_free_rows_val:
    fnet_free(rows_val);
out_free_rows_train:
    fnet_free(rows_train);
    return st;
}

fnet_status fnet_dataset_subset(const fnet_dataset *d, int64_t n, fnet_dataset **out)
{
    if (d == NULL || out == NULL)
        return FNET_ERR_INVALID_ARG; // no ctx to hold a message
    *out = NULL;
    fnet_ctx *ctx = d->ctx;
    if (n < 1 || n > d->count)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "subset of %lld samples: must be in 1..%lld",
                         (long long)n, (long long)d->count);
    int64_t *rows = NULL;
    if (d->rows != NULL) {
        rows = fnet_malloc_array((size_t)n, sizeof(int64_t));
        if (rows == NULL)
            return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "subset: %lld row indices",
                             (long long)n);
    }
    fnet_dataset *v = fnet_calloc(1, sizeof(*v));
    if (v == NULL) {
        fnet_free(rows);
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "subset: view");
    }
    if (rows != NULL)
        memcpy(rows, d->rows, (size_t)n * sizeof(int64_t));
    *out = view_attach(v, ctx, d->s, rows, n);
    return FNET_OK;
}

void fnet_dataset_rows(const fnet_dataset *d, const int64_t *idx, int64_t B, int64_t *rows,
                       int32_t *labels)
{
    for (int64_t j = 0; j < B; j++) {
        rows[j] = view_row(d, idx[j]);
        labels[j] = (int32_t)d->s->labels[rows[j]];
    }
}

void fnet_dataset_gather_dev(const fnet_dataset *d, int64_t B, const int64_t *rows, float *x)
{
    fnet_ctx *ctx = d->ctx;
    ctx->be->u8_gather(ctx, B, d->s->dim, d->s->images, rows, PIXEL_SCALE, x);
}

// x (batch, dim) = images of positions idx[0..batch) (or first..first+batch-1) / 255;
// labels (batch) as int32. Storage rows are composed BATCH_CHUNK at a time on the stack.
fnet_status fnet_dataset_batch(const fnet_dataset *d, const int64_t *idx, int64_t first,
                               int64_t batch, float *x, int32_t *labels)
{
    if (d == NULL)
        return FNET_ERR_INVALID_ARG; // no ctx to hold a message
    fnet_ctx *ctx = d->ctx;
    if (x == NULL || labels == NULL)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "batch: x and labels must not be NULL");
    if (batch < 1)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "batch size %lld must be >= 1",
                         (long long)batch);
    if (idx == NULL) {
        if (first < 0 || first > d->count - batch)
            return fnet_fail(ctx, FNET_ERR_INVALID_ARG,
                             "batch of %lld samples starting at %lld exceeds the %lld samples of "
                             "the dataset", (long long)batch, (long long)first,
                             (long long)d->count);
    } else {
        for (int64_t i = 0; i < batch; i++)
            if (idx[i] < 0 || idx[i] >= d->count)
                return fnet_fail(ctx, FNET_ERR_INVALID_ARG,
                                 "batch index idx[%lld] = %lld out of range 0..%lld",
                                 (long long)i, (long long)idx[i], (long long)d->count - 1);
    }
    if (ctx->be->u8_to_float == NULL)
        return fnet_fail(ctx, FNET_ERR_UNSUPPORTED, "backend %s has no u8_to_float",
                         ctx->be->name);

    const struct data_storage *s = d->s;
    int64_t rows[BATCH_CHUNK];
    for (int64_t off = 0; off < batch; off += BATCH_CHUNK) {
        int64_t c = batch - off < BATCH_CHUNK ? batch - off : BATCH_CHUNK;
        for (int64_t j = 0; j < c; j++) {
            int64_t pos = idx ? idx[off + j] : first + off + j;
            rows[j] = view_row(d, pos);
            labels[off + j] = (int32_t)s->labels[rows[j]];
        }
        ctx->be->u8_to_float(ctx, c, s->dim, s->images, rows, PIXEL_SCALE, x + off * s->dim);
    }
    return FNET_OK;
}

fnet_status fnet_dataset_crc32(const fnet_dataset *d, uint32_t *crc)
{
    if (d == NULL)
        return FNET_ERR_INVALID_ARG;
    if (crc == NULL)
        return fnet_fail(d->ctx, FNET_ERR_INVALID_ARG, "fnet_dataset_crc32: NULL crc");
    const struct data_storage *s = d->s;
    // the images come back a block of consecutive storage rows at a time (a whole subset in
    // one go when the view keeps the storage's order), through a buffer of about CRC_BLOCK bytes
    enum { CRC_BLOCK = 1 << 20 };
    int64_t rows_per_block = s->dim > 0 && s->dim < CRC_BLOCK ? CRC_BLOCK / s->dim : 1;
    uint8_t *buf = fnet_malloc((size_t)(rows_per_block * s->dim) + 1);
    if (buf == NULL)
        return fnet_fail(d->ctx, FNET_ERR_OUT_OF_MEMORY, "checksum of %lld samples: a buffer of "
                         "%lld rows", (long long)d->count, (long long)rows_per_block);
    uLong c = crc32(0L, Z_NULL, 0);
    for (int64_t pos = 0; pos < d->count;) {
        int64_t first = view_row(d, pos), run = 1;
        while (run < rows_per_block && pos + run < d->count && view_row(d, pos + run) == first + run)
            run++;
        s->ctx->be->download(s->ctx, buf, s->images + first * s->dim, (size_t)(run * s->dim));
        for (int64_t k = 0; k < run; k++) {
            c = crc32(c, &s->labels[first + k], 1);
            c = crc32_z(c, buf + k * s->dim, (size_t)s->dim);
        }
        pos += run;
    }
    fnet_free(buf);
    *crc = (uint32_t)c;
    return FNET_OK;
}
