/* Writes the seed corpora of the fuzz targets into DIR/<target>/ (usage: fnet-fuzz-corpus DIR).
 * Seeds are small valid inputs (and a few near-misses) so that the fuzzer starts from the formats'
 * deep paths: JSON documents, model specs, IDX image/label pairs (raw and gzip) in the framing of
 * fuzz_idx.c, and checkpoints written by the library itself. The output is checked in under
 * tests/fuzz/corpus/; rerun this after a format change. */
#include <factornet.h>

#include "fuzz_run_data.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

static const char *root;

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static void write_seed(const char *target, const char *name, const void *p, size_t n)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", root, target);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/%s/%s", root, target, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0)
        die(path);
}

static void write_text(const char *target, const char *name, const char *s)
{
    write_seed(target, name, s, strlen(s));
}

// ---------------------------------------------------------------- JSON

static void json_seeds(void)
{
    write_text("json", "header", "{\"layers.0.weight\":{\"dtype\":\"F32\",\"shape\":[4,5],"
               "\"data_offsets\":[0,80]},\"__metadata__\":{\"format\":\"factornet\"}}");
    write_text("json", "scalars", "[null,true,false,0,-0,1.5e-3,-12345678901234567890,"
               "9223372036854775807,-9223372036854775808,1E400]");
    write_text("json", "strings", "{\"a\\u00e9\\ud83d\\ude00\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\","
               "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\":\"\"}");
    write_text("json", "nested", "{\"a\":[[[[{\"b\":[]}]]]],\"c\":{}}  \n");
    write_text("json", "duplicate", "{\"a\":1,\"a\":2}");
}

// ---------------------------------------------------------------- specs

static void spec_seeds(void)
{
    static const char *const specs[] = {
        "dense:64,relu,dense:32,relu,dense:10",
        "dense:1024,relu,tt:1024:rank=8,relu,dense:10",
        "tt:64:ranks=2x3:in=2x2x2:out=4x4x4",
        "lowrank:10:rank=2,tanh,circ:16:block=4,sigmoid,sparse:8:density=0.25",
        " dense : 3 , dropout : 0.5 , relu ",
        "dense:4,dropout:1e-3,dense:2",
        "tr:16:ranks=2x2:ring=2:in=2x2x2:out=4x2x2,relu,tr:8:rank=3",
        "tucker:12:ranks=2x3x4:in=4x4:out=12,cp:6:rank=3:in=2x2x3:out=6,tucker:4:rank=2",
    };
    char name[32];
    for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
        snprintf(name, sizeof(name), "spec%zu", i);
        write_text("spec", name, specs[i]);
    }
}

// ---------------------------------------------------------------- IDX pairs

struct buf {
    unsigned char p[4096];
    size_t n;
};

static void put(struct buf *b, const void *p, size_t n)
{
    if (b->n + n > sizeof(b->p))
        die("seed too large");
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

// An IDX file of uint8 with the given dimensions; data[i] = (i * 37 + salt) % modulo.
static void idx_file(struct buf *b, int rank, const unsigned *dims, int salt, int modulo)
{
    unsigned char h[4] = {0, 0, 8, (unsigned char)rank};
    put(b, h, 4);
    size_t total = 1;
    for (int k = 0; k < rank; k++) {
        unsigned char d[4] = {(unsigned char)(dims[k] >> 24), (unsigned char)(dims[k] >> 16),
                              (unsigned char)(dims[k] >> 8), (unsigned char)dims[k]};
        put(b, d, 4);
        total *= dims[k];
    }
    for (size_t i = 0; i < total; i++) {
        unsigned char v = (unsigned char)((i * 37 + (size_t)salt) % (size_t)modulo);
        put(b, &v, 1);
    }
}

static void gzip_buf(struct buf *out, const struct buf *in)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        die("deflateInit2");
    z.next_in = (unsigned char *)in->p;
    z.avail_in = (unsigned)in->n;
    z.next_out = out->p;
    z.avail_out = sizeof(out->p);
    if (deflate(&z, Z_FINISH) != Z_STREAM_END)
        die("deflate");
    out->n = z.total_out;
    deflateEnd(&z);
}

// The framing of fuzz_idx.c: flags, u16 image length, image file, label file.
static void idx_seed(const char *name, unsigned flags, const struct buf *im, const struct buf *lb)
{
    struct buf s = {.n = 0};
    unsigned char h[3] = {(unsigned char)flags, (unsigned char)(im->n & 0xff),
                          (unsigned char)(im->n >> 8)};
    put(&s, h, 3);
    put(&s, im->p, im->n);
    put(&s, lb->p, lb->n);
    write_seed("idx", name, s.p, s.n);
}

static void idx_seeds(void)
{
    struct buf im = {.n = 0}, lb = {.n = 0}, gim = {.n = 0}, glb = {.n = 0};
    idx_file(&im, 3, (const unsigned[]){5, 3, 4}, 1, 256);
    idx_file(&lb, 1, (const unsigned[]){5}, 2, 10);
    gzip_buf(&gim, &im);
    gzip_buf(&glb, &lb);
    idx_seed("raw", 0, &im, &lb);
    idx_seed("gzip", 3, &gim, &glb);
    idx_seed("gzip_dir", 7, &gim, &glb);
    idx_seed("mixed_dir", 5, &gim, &lb);
    struct buf im2 = {.n = 0}, lb2 = {.n = 0};
    idx_file(&im2, 2, (const unsigned[]){3, 7}, 0, 256);
    idx_file(&lb2, 1, (const unsigned[]){4}, 0, 3); // count disagrees
    idx_seed("count_mismatch", 0, &im2, &lb2);
    lb2.n = 0;
    idx_file(&lb2, 1, (const unsigned[]){3}, 5, 256);
    idx_seed("rank2_big_labels", 0, &im2, &lb2);
}

// ---------------------------------------------------------------- checkpoints

// The checkpoint written at tmp becomes the seed `name` (tmp removed).
static void seed_from_file(const char *tmp, const char *name)
{
    FILE *f = fopen(tmp, "rb");
    static unsigned char data[1 << 16];
    size_t n = f ? fread(data, 1, sizeof(data), f) : 0;
    if (f == NULL || n == 0 || n == sizeof(data))
        die(tmp);
    fclose(f);
    remove(tmp);
    write_seed("checkpoint", name, data, n);
}

// The step hook of run_seed: raise the stop flag at the step its user pointer (an int) names.
static volatile sig_atomic_t *seed_stop_flag;
static fnet_status seed_stop_hook(fnet_model *m, fnet_optimizer *opt, const fnet_step_info *info,
                                  void *user)
{
    (void)m;
    (void)opt;
    if (info->run_steps == *(const int *)user)
        *seed_stop_flag = 1;
    return FNET_OK;
}

static void checkpoint_seed(fnet_ctx *ctx, const char *name, const char *spec, int64_t n_in,
                            fnet_optim_kind kind, bool with_opt, double prune)
{
    char tmp[1024];
    snprintf(tmp, sizeof(tmp), "%s/.tmp-%s", root, name);
    fnet_model *m = NULL;
    fnet_optimizer *opt = NULL;
    fnet_optim_params op = fnet_optim_params_default(kind);
    if (fnet_model_create_from_spec(ctx, spec, n_in, 3, &m) != FNET_OK ||
        (with_opt && fnet_optimizer_create(ctx, &op, fnet_model_num_params(m), &opt) != FNET_OK))
        die(fnet_ctx_last_error(ctx));
    // pruned: U8 "<tensor>_mask" tensors beside the weights
    if (prune > 0.0 && fnet_prune_magnitude(m, prune, FNET_PRUNE_GLOBAL, NULL) != FNET_OK)
        die(fnet_ctx_last_error(ctx));
    if (with_opt) {
        int64_t n;
        float *w = fnet_model_params(m, &n);
        float *g = calloc((size_t)n, sizeof(float));
        for (int64_t i = 0; i < n; i++)
            g[i] = (float)(i % 7) - 3.0f;
        fnet_optimizer_step(opt, w, g);
        free(g);
    }
    if (fnet_model_save(m, opt, tmp) != FNET_OK)
        die(fnet_ctx_last_error(ctx));
    seed_from_file(tmp, name);
    fnet_optimizer_free(opt);
    fnet_model_free(m);
}

// A run's checkpoint (run.* metadata, the sample order, solver.* for L-BFGS) of the load_params
// model on fuzz_run_data, stopped after `steps` steps.
static void run_seed(fnet_ctx *ctx, const char *name, fnet_optim_kind kind, int steps)
{
    char tmp[1024];
    snprintf(tmp, sizeof(tmp), "%s/.tmp-%s", root, name);
    fnet_model *m = NULL;
    if (fnet_model_create_from_spec(ctx, "dense:4,relu,dense:3", 5, 3, &m) != FNET_OK)
        die(fnet_ctx_last_error(ctx));
    fnet_optim_params op = fnet_optim_params_default(kind);
    op.iters_per_batch = FUZZ_RUN_ITERS;
    fnet_train_params tp = fnet_train_params_default();
    tp.batch = FUZZ_RUN_BATCH;
    tp.epochs = 3;
    tp.save_path = tmp;
    static volatile sig_atomic_t stop;
    stop = 0;
    tp.stop = &stop;
    // stopped after `steps` steps: the step hook raises the flag
    tp.on_step = seed_stop_hook;
    tp.step_user = (void *)&steps;
    seed_stop_flag = &stop;
    fnet_status st = fnet_train(m, &op, &tp, fuzz_run_data(ctx), NULL, NULL, NULL, NULL);
    if (st != FNET_ERR_CANCELLED)
        die(fnet_ctx_last_error(ctx));
    seed_from_file(tmp, name);
    fnet_model_free(m);
}

static void checkpoint_seeds(void)
{
    fnet_ctx *ctx;
    if (fnet_ctx_create_reference(&ctx) != FNET_OK)
        die("ctx");
    // the model of fuzz_checkpoint.c's load_params, with and without optimizer state
    checkpoint_seed(ctx, "plain", "dense:4,relu,dense:3", 5, FNET_OPTIM_ADAM, false, 0.0);
    checkpoint_seed(ctx, "adam", "dense:4,relu,dense:3", 5, FNET_OPTIM_ADAM, true, 0.0);
    checkpoint_seed(ctx, "momentum", "dense:4,relu,dense:3", 5, FNET_OPTIM_MOMENTUM, true, 0.0);
    checkpoint_seed(ctx, "other", "dense:2,tanh,dropout:0.25,dense:2", 3, FNET_OPTIM_RMSPROP, true,
                    0.0);
    // the load_params model pruned (masks), and a sparse layer (I32 row_ptr and col_idx)
    checkpoint_seed(ctx, "pruned", "dense:4,relu,dense:3", 5, FNET_OPTIM_ADAM, true, 0.5);
    checkpoint_seed(ctx, "sparse", "sparse:4:nnz=9,relu,dense:3", 5, FNET_OPTIM_ADAM, false, 0.0);
    checkpoint_seed(ctx, "tn", "tr:4:ranks=1:ring=2:in=1x5:out=2x2,tucker:4:ranks=2x3,"
                    "cp:3:rank=2", 5, FNET_OPTIM_ADAM, false, 0.0);
    // runs to resume: within the first epoch and at the second's start, Adam and L-BFGS
    run_seed(ctx, "run_adam_mid", FNET_OPTIM_ADAM, 2);
    run_seed(ctx, "run_adam_epoch", FNET_OPTIM_ADAM, 3);
    run_seed(ctx, "run_lbfgs", FNET_OPTIM_LBFGS, 4);
    fnet_ctx_free(ctx);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR (e.g. tests/fuzz/corpus)\n", argv[0]);
        return 2;
    }
    root = argv[1];
    mkdir(root, 0755);
    json_seeds();
    spec_seeds();
    idx_seeds();
    checkpoint_seeds();
    return 0;
}
