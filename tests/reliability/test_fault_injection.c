/* Fault injection (docs/reliability.md): every public function that allocates, with the k-th
 * allocation failing for every k (the modules' own tests cover layer, dataset, optimizer, spec,
 * JSON, model-from-spec, train, load and plain-save paths; this file covers the rest), and every
 * save with failing writes: each write-path operation failing in turn (fnet_debug_fail_io), a
 * file-size limit (RLIMIT_FSIZE, as a full disk looks to write()) and a really full tmpfs where
 * mounting one is permitted. Each failure must give its exact status and a message, leak nothing
 * (LeakSanitizer in the ASan build), leave the existing file byte-for-byte and no temporary file. */
#define _GNU_SOURCE // unshare, CLONE_NEWNS
#include "rel_util.h"
#include "io/safetensors.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <zlib.h>

#define SPEC "dense:16,relu,dense:8,dropout:0.25,tanh,dense:3"
#define N_IN 10
#define MAX_K 1000 // no call here makes that many allocations
#define SKIPPED 77 // exit status of a child that could not set up its environment

// ---------------------------------------------------------------- the k-th allocation fails

/* One call under test: `run` makes it (returning its status), `check_failed` checks what a
 * failure must leave (may be NULL), `undo` releases what a success made (may be NULL). */
struct oom_case {
    const char *name;
    fnet_ctx *ctx; // where the message goes (NULL: the call made no ctx)
    fnet_status (*run)(void *arg);
    void (*check_failed)(void *arg);
    void (*undo)(void *arg);
    void *arg;
};

static long oom_k; // the k of the call running now

/* Fail the k-th allocation for k = 1, 2, ... until the call succeeds; every failure must be
 * FNET_ERR_OUT_OF_MEMORY with a message. Returns the number of failures. */
static int oom_loop(const struct oom_case *c)
{
    for (long k = 1; k < MAX_K; k++) {
        if (c->ctx)
            fnet_ctx_clear_error(c->ctx);
        oom_k = k;
        fnet_debug_fail_alloc(k);
        fnet_status st = c->run(c->arg);
        fnet_debug_fail_alloc(0);
        if (st == FNET_OK) {
            if (c->undo)
                c->undo(c->arg);
            return (int)(k - 1);
        }
        if (st != FNET_ERR_OUT_OF_MEMORY)
            fail_msg("%s: allocation %ld failing gave status %d (%s): %s", c->name, k, (int)st,
                     fnet_status_str(st), c->ctx ? fnet_ctx_last_error(c->ctx) : "");
        if (c->ctx)
            assert_true(strlen(fnet_ctx_last_error(c->ctx)) > 0);
        if (c->check_failed)
            c->check_failed(c->arg);
    }
    fail_msg("%s: still failing after %d injected allocation failures", c->name, MAX_K);
    return -1;
}

struct ctx_arg {
    fnet_ctx *out;
    bool cpu;
    int threads;
};

static fnet_status run_ctx_create(void *varg)
{
    struct ctx_arg *a = varg;
    a->out = (fnet_ctx *)a; // must be reset to NULL on failure
    fnet_status st = a->cpu ? fnet_ctx_create_cpu(&a->out) : fnet_ctx_create_reference(&a->out);
    if (st == FNET_OK && a->threads > 0) {
        st = fnet_ctx_set_threads(a->out, a->threads);
        if (st != FNET_OK) {
            assert_int_equal(fnet_ctx_threads(a->out), 1); // unchanged
            fnet_ctx_free(a->out);
            a->out = NULL;
        }
    }
    return st;
}

static void check_ctx_failed(void *varg)
{
    assert_null(((struct ctx_arg *)varg)->out);
}

static void undo_ctx(void *varg)
{
    fnet_ctx_free(((struct ctx_arg *)varg)->out);
}

static void test_ctx_create_and_set_threads_report_out_of_memory(void **state)
{
    (void)state;
    struct ctx_arg a = {0};
    struct oom_case c = {"fnet_ctx_create_reference", NULL, run_ctx_create, check_ctx_failed,
                         undo_ctx, &a};
    assert_true(oom_loop(&c) >= 1);
    a.cpu = true;
    c.name = "fnet_ctx_create_cpu";
    assert_true(oom_loop(&c) >= 1);

    // growing the thread pool: a failure leaves the ctx as it was (here: 1 thread)
    fnet_ctx *ctx;
    fnet_assert_ok(NULL, fnet_ctx_create_cpu(&ctx));
    fnet_assert_ok(ctx, fnet_ctx_set_threads(ctx, 1));
    int failures = 0;
    for (long k = 1; k < MAX_K; k++) {
        fnet_debug_fail_alloc(k);
        fnet_status st = fnet_ctx_set_threads(ctx, 3);
        fnet_debug_fail_alloc(0);
        if (st == FNET_OK)
            break;
        assert_int_equal(st, FNET_ERR_OUT_OF_MEMORY);
        assert_int_equal(fnet_ctx_threads(ctx), 1);
        failures++;
    }
    assert_int_equal(failures, 4); // pool, thread ids, two worker arguments
    assert_int_equal(fnet_ctx_threads(ctx), 3);
    fnet_ctx_free(ctx);
}

// A model and what it looked like before the call under test.
struct model_arg {
    fnet_ctx *ctx;
    fnet_model *m;
    fnet_model *out;
    char spec[256];
    int layers;
    int64_t n;
    float *w;
    double loss;
    fnet_layer *layer; // for add_layer
};

static const float xs[2 * N_IN] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f, 0.9f, 1.0f,
                                   1.0f, 0.9f, 0.8f, 0.7f, 0.6f, 0.5f, 0.4f, 0.3f, 0.2f, 0.1f};
static const int32_t ys[2] = {0, 2};

static void snapshot(struct model_arg *a)
{
    snprintf(a->spec, sizeof(a->spec), "%s", fnet_model_spec(a->m));
    a->layers = fnet_model_num_layers(a->m);
    free(a->w);
    a->w = rel_params_copy(a->m, &a->n);
}

static void check_model_unchanged(void *varg)
{
    struct model_arg *a = varg;
    assert_string_equal(fnet_model_spec(a->m), a->spec);
    assert_int_equal(fnet_model_num_layers(a->m), a->layers);
    int64_t n;
    const float *w = fnet_model_params(a->m, &n);
    assert_int_equal(n, a->n);
    assert_memory_equal(w, a->w, (size_t)n * sizeof(float));
}

static fnet_status run_model_create(void *varg)
{
    struct model_arg *a = varg;
    a->out = (fnet_model *)a;
    fnet_status st = fnet_model_create(a->ctx, N_IN, &a->out);
    if (st != FNET_OK)
        assert_null(a->out);
    return st;
}

static void undo_model_create(void *varg)
{
    struct model_arg *a = varg;
    fnet_model_free(a->out);
    a->out = NULL;
}

static fnet_status run_add_dense(void *varg)
{
    return fnet_model_add_dense(((struct model_arg *)varg)->m, 5);
}

static fnet_status run_add_activation(void *varg)
{
    return fnet_model_add_activation(((struct model_arg *)varg)->m, FNET_LAYER_SIGMOID);
}

static fnet_status run_add_dropout(void *varg)
{
    return fnet_model_add_dropout(((struct model_arg *)varg)->m, 0.5f);
}

// The model owns the layer from the call on, also on failure (LSan checks it is freed).
static fnet_status run_add_layer(void *varg)
{
    struct model_arg *a = varg;
    fnet_layer *l = NULL;
    fnet_debug_fail_alloc(0); // the layer itself is made outside the injection
    fnet_assert_ok(a->ctx, fnet_dense_create(a->ctx, fnet_model_n_out(a->m), 4, false, &l));
    fnet_debug_fail_alloc(oom_k);
    return fnet_model_add_layer(a->m, l);
}

static void undo_add(void *varg)
{
    snapshot(varg); // the model grew: the next case compares against this
}

static void test_model_create_and_add_report_out_of_memory_and_change_nothing(void **state)
{
    (void)state;
    struct model_arg a = {0};
    fnet_assert_ok(NULL, fnet_ctx_create_reference(&a.ctx));
    struct oom_case c = {"fnet_model_create", a.ctx, run_model_create, NULL, undo_model_create,
                         &a};
    assert_int_equal(oom_loop(&c), 2); // the model, its empty spec

    fnet_assert_ok(a.ctx, fnet_model_create_from_spec(a.ctx, "dense:6,relu", N_IN, 4, &a.m));
    snapshot(&a);
    const struct {
        const char *name;
        fnet_status (*run)(void *);
        int min_failures;
    } adds[] = {
        {"fnet_model_add_dense", run_add_dense, 5},   // layer, its params, spec, w, g
        {"fnet_model_add_activation", run_add_activation, 2},
        {"fnet_model_add_dropout", run_add_dropout, 2},
        {"fnet_model_add_layer", run_add_layer, 3},   // spec, w, g
    };
    for (size_t i = 0; i < sizeof(adds) / sizeof(adds[0]); i++) {
        struct oom_case ci = {adds[i].name, a.ctx, adds[i].run, check_model_unchanged, undo_add,
                              &a};
        int failures = oom_loop(&ci);
        if (failures < adds[i].min_failures)
            fail_msg("%s: %d failures, expected at least %d", adds[i].name, failures,
                     adds[i].min_failures);
    }
    assert_string_equal(fnet_model_spec(a.m),
                        "dense:6,relu,dense:5,sigmoid,dropout:0.5,dense:4:bias=0");
    free(a.w);
    fnet_model_free(a.m);
    fnet_ctx_free(a.ctx);
}

// The first forward of a model reserves its activations: out of memory there must leave a model
// that still works and gives the same numbers as one that never failed.
static fnet_status run_loss_grad(void *varg)
{
    struct model_arg *a = varg;
    return fnet_model_loss_grad(a->m, xs, ys, 2, &a->loss, NULL);
}

static fnet_status run_forward(void *varg)
{
    struct model_arg *a = varg;
    float out[2 * 3];
    return fnet_model_forward(a->m, xs, 2, out);
}

static fnet_status run_loss_correct(void *varg)
{
    struct model_arg *a = varg;
    int64_t correct;
    return fnet_model_loss_correct(a->m, xs, ys, 2, &a->loss, &correct);
}

static void test_first_forward_reports_out_of_memory_and_recovers(void **state)
{
    (void)state;
    struct model_arg a = {0};
    fnet_assert_ok(NULL, fnet_ctx_create_cpu(&a.ctx));
    fnet_assert_ok(a.ctx, fnet_ctx_set_threads(a.ctx, 1));
    fnet_model *fresh;
    fnet_assert_ok(a.ctx, fnet_model_create_from_spec(a.ctx, SPEC, N_IN, 9, &fresh));
    double want;
    fnet_assert_ok(a.ctx, fnet_model_loss_grad(fresh, xs, ys, 2, &want, NULL));
    int64_t n;
    const float *g = fnet_model_grads(fresh, &n);
    float *g_want = malloc(sizeof(float) * (size_t)n);
    memcpy(g_want, g, (size_t)n * sizeof(float));

    fnet_status (*const runs[])(void *) = {run_loss_grad, run_forward, run_loss_correct};
    const char *names[] = {"fnet_model_loss_grad", "fnet_model_forward",
                           "fnet_model_loss_correct"};
    for (int i = 0; i < 3; i++) {
        fnet_assert_ok(a.ctx, fnet_model_create_from_spec(a.ctx, SPEC, N_IN, 9, &a.m));
        snapshot(&a);
        struct oom_case c = {names[i], a.ctx, runs[i], check_model_unchanged, NULL, &a};
        assert_true(oom_loop(&c) >= 4); // every layer's workspace, activations, 2 gradients
        fnet_assert_ok(a.ctx, fnet_model_loss_grad(a.m, xs, ys, 2, &a.loss, NULL));
        assert_memory_equal(&a.loss, &want, sizeof(double));
        assert_memory_equal(fnet_model_grads(a.m, NULL), g_want, (size_t)n * sizeof(float));
        fnet_model_free(a.m);
    }
    free(g_want);
    free(a.w);
    fnet_model_free(fresh);
    fnet_ctx_free(a.ctx);
}

struct train_arg {
    fnet_ctx *ctx;
    fnet_model *m;
    fnet_optimizer *opt;
    fnet_dataset *d;
    double acc, loss;
};

static fnet_status run_evaluate(void *varg)
{
    struct train_arg *a = varg;
    return fnet_model_evaluate(a->m, a->d, &a->acc, &a->loss);
}

static fnet_status run_train_with(void *varg)
{
    struct train_arg *a = varg;
    fnet_optim_params op = fnet_optim_params_default(FNET_OPTIM_ADAM);
    fnet_train_params tp = fnet_train_params_default();
    tp.epochs = 1;
    tp.batch = 8;
    return fnet_train_with(a->m, a->opt, &op, &tp, a->d, a->d, NULL, NULL, NULL);
}

static void test_evaluate_and_train_with_report_out_of_memory(void **state)
{
    (void)state;
    struct train_arg a = {0};
    fnet_assert_ok(NULL, fnet_ctx_create_reference(&a.ctx));
    enum { N = 40 };
    uint8_t images[N * N_IN], labels[N];
    for (int i = 0; i < N * N_IN; i++)
        images[i] = (uint8_t)(i * 37 % 251);
    for (int i = 0; i < N; i++)
        labels[i] = (uint8_t)(i % 3);
    fnet_assert_ok(a.ctx, fnet_dataset_from_memory(a.ctx, images, labels, N, N_IN, 3, &a.d));
    fnet_assert_ok(a.ctx, fnet_model_create_from_spec(a.ctx, SPEC, N_IN, 2, &a.m));
    fnet_optim_params op = fnet_optim_params_default(FNET_OPTIM_ADAM);
    fnet_assert_ok(a.ctx, fnet_optimizer_create(a.ctx, &op, fnet_model_num_params(a.m), &a.opt));

    struct oom_case c = {"fnet_model_evaluate", a.ctx, run_evaluate, NULL, NULL, &a};
    assert_true(oom_loop(&c) >= 2); // the batch buffers (then the model's reservation)
    double acc = a.acc, loss = a.loss;
    fnet_assert_ok(a.ctx, run_evaluate(&a));
    assert_memory_equal(&acc, &a.acc, sizeof(double));
    assert_memory_equal(&loss, &a.loss, sizeof(double));

    c = (struct oom_case){"fnet_train_with", a.ctx, run_train_with, NULL, NULL, &a};
    assert_true(oom_loop(&c) >= 3); // permutation, batch, labels (the evaluation's come after)

    fnet_optimizer_free(a.opt);
    fnet_model_free(a.m);
    fnet_dataset_free(a.d);
    fnet_ctx_free(a.ctx);
}

// ---------------------------------------------------------------- checkpoints and IDX files

struct file_arg {
    fnet_ctx *ctx;
    fnet_model *m;
    fnet_optimizer *opt;
    const char *path, *dir, *images, *labels;
    struct rel_bytes before; // the file at path before the call
    fnet_dataset *d;
};

static fnet_status run_peek(void *varg)
{
    struct file_arg *a = varg;
    char spec[256];
    int64_t n_in = 0;
    fnet_status st = fnet_checkpoint_peek(a->ctx, a->path, spec, sizeof(spec), &n_in);
    if (st == FNET_OK) {
        assert_string_equal(spec, fnet_model_spec(a->m));
        assert_int_equal(n_in, N_IN);
    }
    return st;
}

static fnet_status run_save(void *varg)
{
    struct file_arg *a = varg;
    return fnet_model_save(a->m, a->opt, a->path);
}

static void check_file_unchanged(void *varg)
{
    struct file_arg *a = varg;
    if (a->before.p != NULL)
        assert_true(rel_file_is(a->path, a->before));
    else
        assert_int_equal(access(a->path, F_OK), -1);
    assert_int_equal(rel_count_tmp_files(a->dir), 0);
}

static fnet_status run_load_idx_files(void *varg)
{
    struct file_arg *a = varg;
    a->d = (fnet_dataset *)a;
    fnet_status st = fnet_dataset_load_idx_files(a->ctx, a->images, a->labels, &a->d);
    if (st != FNET_OK)
        assert_null(a->d);
    return st;
}

static void undo_load_idx(void *varg)
{
    struct file_arg *a = varg;
    assert_int_equal(fnet_dataset_size(a->d), 6);
    assert_int_equal(fnet_dataset_dim(a->d), 4);
    fnet_dataset_free(a->d);
    a->d = NULL;
}

// A minimal IDX file through zlib: gzip when gz, else raw.
static void write_idx(const char *path, bool gz, int rank, const uint32_t *dims)
{
    unsigned char buf[64] = {0, 0, 8, (unsigned char)rank};
    size_t n = 4, total = 1;
    for (int k = 0; k < rank; k++, n += 4) {
        buf[n] = (unsigned char)(dims[k] >> 24);
        buf[n + 1] = (unsigned char)(dims[k] >> 16);
        buf[n + 2] = (unsigned char)(dims[k] >> 8);
        buf[n + 3] = (unsigned char)dims[k];
        total *= dims[k];
    }
    for (size_t i = 0; i < total; i++)
        buf[n++] = (unsigned char)(i % 3);
    gzFile f = gzopen(path, gz ? "wb" : "wbT");
    assert_non_null(f);
    assert_int_equal(gzwrite(f, buf, (unsigned)n), (int)n);
    assert_int_equal(gzclose(f), Z_OK);
}

static void test_peek_save_and_idx_load_report_out_of_memory(void **state)
{
    (void)state;
    struct file_arg a = {0};
    char *dir = rel_tmpdir(), *path = rel_join(dir, "m.safetensors");
    a.dir = dir;
    a.path = path;
    fnet_assert_ok(NULL, fnet_ctx_create_reference(&a.ctx));
    fnet_assert_ok(a.ctx, fnet_model_create_from_spec(a.ctx, SPEC, N_IN, 5, &a.m));
    fnet_optim_params op = fnet_optim_params_default(FNET_OPTIM_MOMENTUM);
    fnet_assert_ok(a.ctx, fnet_optimizer_create(a.ctx, &op, fnet_model_num_params(a.m), &a.opt));

    // a new file with optimizer state: failures leave no file at all
    struct oom_case c = {"fnet_model_save (new file)", a.ctx, run_save, check_file_unchanged,
                         NULL, &a};
    assert_true(oom_loop(&c) >= 4); // tensor list, names, header, temporary name
    // over an existing file: it stays byte for byte
    a.before = rel_read_file(path);
    fnet_assert_ok(a.ctx, fnet_model_init(a.m, FNET_INIT_HE, 77));
    c.name = "fnet_model_save (over a file)";
    assert_true(oom_loop(&c) >= 4);
    assert_false(rel_file_is(path, a.before)); // the last call went through

    c = (struct oom_case){"fnet_checkpoint_peek", a.ctx, run_peek, NULL, NULL, &a};
    assert_true(oom_loop(&c) >= 4); // reader, header, JSON document, index

    // IDX: raw and gzip, through the two-file entry point
    char *images = rel_join(dir, "im"), *labels = rel_join(dir, "lb");
    a.images = images;
    a.labels = labels;
    for (int gz = 0; gz < 2; gz++) {
        write_idx(images, gz, 3, (const uint32_t[]){6, 2, 2});
        write_idx(labels, gz, 1, (const uint32_t[]){6});
        c = (struct oom_case){gz ? "fnet_dataset_load_idx_files (gzip)"
                                 : "fnet_dataset_load_idx_files (raw)",
                              a.ctx, run_load_idx_files, NULL, undo_load_idx, &a};
        assert_true(oom_loop(&c) >= 4); // storage, images, labels, view
    }

    free(a.before.p);
    fnet_optimizer_free(a.opt);
    fnet_model_free(a.m);
    fnet_ctx_free(a.ctx);
    free(images);
    free(labels);
    rel_remove_dir(dir);
    free(path);
    free(dir);
}

// ---------------------------------------------------------------- failing writes

// Save b over a's checkpoint with the k-th write-path operation failing, for every k: each must
// be FNET_ERR_IO naming the path, leave a's file byte for byte and loadable, and no temporary
// file; then the save goes through. With no file there first, none may appear.
static void save_with_io_failures(fnet_ctx *ctx, const char *dir, bool existing, bool with_opt)
{
    char *path = rel_join(dir, "ck.safetensors");
    fnet_model *a = NULL, *b = NULL;
    fnet_optimizer *opt = NULL;
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, SPEC, N_IN, 1, &a));
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, SPEC, N_IN, 2, &b));
    if (with_opt) {
        fnet_optim_params op = fnet_optim_params_default(FNET_OPTIM_ADAM);
        fnet_assert_ok(ctx, fnet_optimizer_create(ctx, &op, fnet_model_num_params(b), &opt));
    }
    int64_t n;
    float *wa = rel_params_copy(a, &n), *wb = rel_params_copy(b, &n);
    struct rel_bytes good = {NULL, 0};
    if (existing) {
        fnet_assert_ok(ctx, fnet_model_save(a, NULL, path));
        good = rel_read_file(path);
    }
    // the operations of one save: create, fdopen, the length, the header, one per tensor, the
    // seek back and the header again (with the checksums), fflush, fsync, fclose, rename
    int tensors = 6 + (with_opt ? 2 : 0);
    int want_ops = 2 + 2 + tensors + 2 + 4;
    int failures = 0;
    for (long k = 1; k <= 100; k++) {
        fnet_ctx_clear_error(ctx);
        long before = fnet_debug_io_count();
        fnet_debug_fail_io(k);
        fnet_status st = fnet_model_save(b, opt, path);
        fnet_debug_fail_io(0);
        if (st == FNET_OK) {
            assert_int_equal(fnet_debug_io_count() - before, want_ops);
            break;
        }
        assert_int_equal(st, FNET_ERR_IO);
        assert_non_null(strstr(fnet_ctx_last_error(ctx), path));
        if (existing) {
            assert_true(rel_file_is(path, good));
            assert_true(rel_checkpoint_holds(ctx, path, wa, n));
        } else {
            assert_int_equal(access(path, F_OK), -1);
        }
        assert_int_equal(rel_count_tmp_files(dir), 0);
        failures++;
    }
    assert_int_equal(failures, want_ops);
    assert_true(rel_checkpoint_holds(ctx, path, wb, n));
    assert_int_equal(rel_count_tmp_files(dir), 0);
    unlink(path);
    free(good.p);
    free(wa);
    free(wb);
    fnet_optimizer_free(opt);
    fnet_model_free(a);
    fnet_model_free(b);
    free(path);
}

static void test_save_fails_cleanly_at_every_write_operation(void **state)
{
    (void)state;
    fnet_ctx *ctx;
    fnet_assert_ok(NULL, fnet_ctx_create_reference(&ctx));
    char *dir = rel_tmpdir();
    for (int existing = 0; existing < 2; existing++)
        for (int with_opt = 0; with_opt < 2; with_opt++)
            save_with_io_failures(ctx, dir, existing, with_opt);
    rel_remove_dir(dir);
    free(dir);
    fnet_ctx_free(ctx);
}

// In a child (so the limit, a mount or a signal disposition never reaches the test runner): save
// a model too big for the room left over an existing checkpoint; the save must fail with
// FNET_ERR_IO and leave the old file whole and no temporary file. Returns 0 when all held, the
// number of the failed check otherwise. The parent checks the files again.
static int save_big_over_small(const char *dir, const char *path)
{
    fnet_ctx *ctx;
    fnet_model *small = NULL, *big = NULL;
    if (fnet_ctx_create_reference(&ctx) != FNET_OK ||
        fnet_model_create_from_spec(ctx, "dense:4", N_IN, 1, &small) != FNET_OK ||
        fnet_model_create_from_spec(ctx, "dense:4096", N_IN, 1, &big) != FNET_OK)
        return 1;
    if (fnet_model_save(small, NULL, path) != FNET_OK)
        return 2;
    struct rel_bytes good = rel_read_file(path);
    fnet_status st = fnet_model_save(big, NULL, path); // ~180 KB
    int rc = 0;
    if (st != FNET_ERR_IO)
        rc = 3;
    else if (strstr(fnet_ctx_last_error(ctx), path) == NULL)
        rc = 4;
    else if (!rel_file_is(path, good))
        rc = 5;
    else if (rel_count_tmp_files(dir) != 0)
        rc = 6;
    else if (!rel_checkpoint_holds(ctx, path, fnet_model_params(small, NULL), 4 * N_IN + 4))
        rc = 7;
    free(good.p);
    fnet_model_free(big);
    fnet_model_free(small);
    fnet_ctx_free(ctx);
    return rc;
}

static int wait_child(pid_t pid)
{
    int ws;
    assert_int_equal(waitpid(pid, &ws, 0), pid);
    if (!WIFEXITED(ws))
        fail_msg("child ended by signal %d", WIFSIGNALED(ws) ? WTERMSIG(ws) : -1);
    return WEXITSTATUS(ws);
}

static void test_save_beyond_the_file_size_limit_fails_cleanly(void **state)
{
    (void)state;
    char *dir = rel_tmpdir(), *path = rel_join(dir, "ck.safetensors");
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        // write() past the limit fails with EFBIG, as it fails with ENOSPC on a full disk
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {64 * 1024, 64 * 1024};
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
            _exit(SKIPPED);
        _exit(save_big_over_small(dir, path));
    }
    int rc = wait_child(pid);
    if (rc != 0)
        fail_msg("check %d failed in the child (see save_big_over_small)", rc);
    fnet_ctx *ctx;
    fnet_assert_ok(NULL, fnet_ctx_create_reference(&ctx));
    fnet_model *m = NULL;
    fnet_assert_ok(ctx, fnet_model_load(ctx, path, &m));
    assert_string_equal(fnet_model_spec(m), "dense:4");
    assert_int_equal(rel_count_tmp_files(dir), 0);
    fnet_model_free(m);
    fnet_ctx_free(ctx);
    rel_remove_dir(dir);
    free(path);
    free(dir);
}

static void test_save_to_a_full_tmpfs_fails_cleanly(void **state)
{
    (void)state;
    char *dir = rel_tmpdir(), *path = rel_join(dir, "ck.safetensors");
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        // a private mount namespace: the tmpfs goes away with the child, whatever happens
        if (unshare(CLONE_NEWNS) != 0 || mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) != 0 ||
            mount("fnet-test", dir, "tmpfs", 0, "size=64k") != 0)
            _exit(SKIPPED);
        int rc = save_big_over_small(dir, path);
        umount(dir);
        _exit(rc);
    }
    int rc = wait_child(pid);
    rel_remove_dir(dir);
    free(path);
    free(dir);
    if (rc == SKIPPED)
        skip(); // mounting a tmpfs needs root (CAP_SYS_ADMIN); the size-limit test still ran
    if (rc != 0)
        fail_msg("check %d failed in the child (see save_big_over_small)", rc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ctx_create_and_set_threads_report_out_of_memory),
        cmocka_unit_test(test_model_create_and_add_report_out_of_memory_and_change_nothing),
        cmocka_unit_test(test_first_forward_reports_out_of_memory_and_recovers),
        cmocka_unit_test(test_evaluate_and_train_with_report_out_of_memory),
        cmocka_unit_test(test_peek_save_and_idx_load_report_out_of_memory),
        cmocka_unit_test(test_save_fails_cleanly_at_every_write_operation),
        cmocka_unit_test(test_save_beyond_the_file_size_limit_fails_cleanly),
        cmocka_unit_test(test_save_to_a_full_tmpfs_fails_cleanly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
