/* libFuzzer target: the safetensors reader (src/io/safetensors.c) and the checkpoint loader on top
 * of it (src/io/checkpoint.c). The input is the file. It must be read, or refused with a
 * documented status and a message, by every entry point: the raw reader (header only and whole),
 * fnet_checkpoint_peek, fnet_model_load and fnet_model_load_params. A failed load_params must leave
 * the model and optimizer unchanged; a model that loads must save and load back bit-exactly (its
 * pruning masks and a sparse layer's index tensors included). A training run resumed from it
 * (Adam and L-BFGS, on fuzz_run_data) either goes on (one step, then stopped) or is refused with
 * a documented status, the model and optimizer unchanged: the run's metadata (run.*, solver.*),
 * the sample order and the checksums are all read from the input. */
#include "fuzz_util.h"
#include "io/safetensors.h"

#include <signal.h>

// The model and optimizer load_params writes into: the seed corpus holds checkpoints of it.
#define CKPT_SPEC "dense:4,relu,dense:3"
#define CKPT_N_IN 5

static fnet_model *model;
static fnet_optimizer *adam;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fnet_ctx *ctx = fuzz_ctx();
    fnet_optim_params op = fnet_optim_params_default(FNET_OPTIM_ADAM);
    if (fnet_model_create_from_spec(ctx, CKPT_SPEC, CKPT_N_IN, 3, &model) != FNET_OK ||
        fnet_optimizer_create(ctx, &op, fnet_model_num_params(model), &adam) != FNET_OK)
        abort();
    return 0;
}

static bool status_is_the_files(fnet_status st)
{
    // the file is regular and readable: a failure is its content's (or a size it claims)
    return st == FNET_ERR_FORMAT || st == FNET_ERR_OUT_OF_MEMORY || st == FNET_ERR_UNSUPPORTED;
}

static void check_reader(fnet_ctx *ctx, const char *path, bool header_only, size_t size)
{
    struct fnet_safetensors *f = (struct fnet_safetensors *)&f;
    fnet_ctx_clear_error(ctx);
    fnet_status st = fnet_safetensors_read(ctx, path, header_only, &f);
    if (st != FNET_OK) {
        fuzz_check_error(ctx, st);
        FUZZ_CHECK(st == FNET_ERR_FORMAT || st == FNET_ERR_OUT_OF_MEMORY);
        FUZZ_CHECK(f == NULL);
        return;
    }
    FUZZ_CHECK(8 + f->header_len + f->data_len == size);
    uint64_t covered = 0;
    float scratch[16];
    for (size_t i = 0; i < f->n_tensors; i++) {
        const struct fnet_safetensors_tensor *t = &f->tensors[i];
        FUZZ_CHECK(t->begin <= t->end && t->end <= f->data_len);
        FUZZ_CHECK(t->end - t->begin == (uint64_t)fnet_st_dtype_size(t->dtype) * (uint64_t)t->numel);
        FUZZ_CHECK(fnet_safetensors_find(f, t->name) == t);
        covered += t->end - t->begin;
        if (!header_only) {
            // touch the first and last bytes of the tensor: ASan checks they are in the buffer
            size_t n = (size_t)(t->end - t->begin);
            if (n > 0) {
                memcpy(scratch, t->data, n < sizeof(scratch) ? n : sizeof(scratch));
                memcpy(scratch, (const char *)t->data + n - 1, 1);
            }
        } else {
            FUZZ_CHECK(t->data == NULL);
        }
    }
    FUZZ_CHECK(covered == f->data_len);
    for (size_t i = 0; i < f->n_meta; i++)
        FUZZ_CHECK(fnet_safetensors_meta(f, f->meta[i].key) != NULL);
    fnet_safetensors_free(f);
}

static void check_load(fnet_ctx *ctx, const char *path, const char *copy)
{
    fnet_model *m = (fnet_model *)&m;
    fnet_ctx_clear_error(ctx);
    fnet_status st = fnet_model_load(ctx, path, &m);
    if (st != FNET_OK) {
        fuzz_check_error(ctx, st);
        FUZZ_CHECK(status_is_the_files(st));
        FUZZ_CHECK(m == NULL);
        return;
    }
    // what loads saves and loads back to the same parameters and spec
    int64_t n = 0;
    const float *w = fnet_model_params(m, &n);
    FUZZ_CHECK(fnet_model_save(m, NULL, copy) == FNET_OK);
    fnet_model *m2 = NULL;
    FUZZ_CHECK(fnet_model_load(ctx, copy, &m2) == FNET_OK);
    FUZZ_CHECK(strcmp(fnet_model_spec(m), fnet_model_spec(m2)) == 0);
    FUZZ_CHECK(fnet_model_num_params(m2) == n);
    FUZZ_CHECK(n == 0 || memcmp(w, fnet_model_params(m2, NULL), (size_t)n * sizeof(float)) == 0);
    // and to the same pruning mask
    FUZZ_CHECK((fnet_model_mask(m) == NULL) == (fnet_model_mask(m2) == NULL));
    FUZZ_CHECK(fnet_model_mask(m) == NULL ||
               memcmp(fnet_model_mask(m), fnet_model_mask(m2), (size_t)n * sizeof(float)) == 0);
    fnet_model_free(m2);
    fnet_model_free(m);
    unlink(copy);
}

static void check_load_params(fnet_ctx *ctx, const char *path)
{
    int64_t n = 0;
    float *w = fnet_model_params(model, &n);
    float before[64]; // CKPT_SPEC has 5·4 + 4 + 4·3 + 3 = 39 parameters
    FUZZ_CHECK(n <= 64);
    memcpy(before, w, (size_t)n * sizeof(float));
    int64_t steps = fnet_optimizer_steps(adam);
    fnet_ctx_clear_error(ctx);
    fnet_status st = fnet_model_load_params(model, adam, path);
    if (st != FNET_OK) {
        fuzz_check_error(ctx, st);
        FUZZ_CHECK(status_is_the_files(st) || st == FNET_ERR_SHAPE);
        FUZZ_CHECK(memcmp(before, w, (size_t)n * sizeof(float)) == 0);
        FUZZ_CHECK(fnet_optimizer_steps(adam) == steps);
    }
}

// Resume a run of the load_params model from the file: one step and a stop when it fits (a
// fresh optimizer or solver each time), else a refusal that changed nothing.
static void check_resume(fnet_ctx *ctx, const char *path, fnet_optim_kind kind)
{
    int64_t n = 0;
    float *w = fnet_model_params(model, &n);
    float before[64];
    memcpy(before, w, (size_t)n * sizeof(float));
    fnet_optim_params op = fnet_optim_params_default(kind);
    op.iters_per_batch = FUZZ_RUN_ITERS;
    fnet_train_params tp = fnet_train_params_default();
    tp.batch = FUZZ_RUN_BATCH;
    tp.epochs = 1000;
    tp.resume_path = path;
    static volatile sig_atomic_t stop = 1; // after the first step
    tp.stop = &stop;
    fnet_optimizer *opt = NULL;
    if (kind != FNET_OPTIM_LBFGS)
        FUZZ_CHECK(fnet_optimizer_create(ctx, &op, n, &opt) == FNET_OK);
    fnet_ctx_clear_error(ctx);
    fnet_status st = opt ? fnet_train_with(model, opt, &op, &tp, fuzz_run_data(ctx), NULL, NULL,
                                           NULL, NULL)
                         : fnet_train(model, &op, &tp, fuzz_run_data(ctx), NULL, NULL, NULL,
                                      NULL);
    if (st != FNET_ERR_CANCELLED) {
        fuzz_check_error(ctx, st);
        // the file's fault, or a run that is not this one (settings, data, length)
        FUZZ_CHECK(status_is_the_files(st) || st == FNET_ERR_SHAPE ||
                   st == FNET_ERR_INVALID_ARG);
        FUZZ_CHECK(memcmp(before, w, (size_t)n * sizeof(float)) == 0);
        FUZZ_CHECK(opt == NULL || fnet_optimizer_steps(opt) == 0);
    }
    fnet_optimizer_free(opt);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fnet_ctx *ctx = fuzz_ctx();
    char path[512], copy[512];
    fuzz_path(path, sizeof(path), "in.safetensors");
    fuzz_path(copy, sizeof(copy), "copy.safetensors");
    fuzz_write_file(path, data, size);

    check_reader(ctx, path, true, size);
    check_reader(ctx, path, false, size);

    char spec[256];
    int64_t n_in = 0;
    fnet_ctx_clear_error(ctx);
    fnet_status st = fnet_checkpoint_peek(ctx, path, spec, sizeof(spec), &n_in);
    if (st == FNET_OK) {
        FUZZ_CHECK(n_in >= 1 && strlen(spec) < sizeof(spec));
    } else {
        fuzz_check_error(ctx, st);
        FUZZ_CHECK(status_is_the_files(st) || st == FNET_ERR_INVALID_ARG); // spec over 256 bytes
    }

    check_load(ctx, path, copy);
    check_load_params(ctx, path);
    check_resume(ctx, path, FNET_OPTIM_ADAM);
    check_resume(ctx, path, FNET_OPTIM_LBFGS);
    unlink(path);
    return 0;
}
