/* fnet-compare: train several models on the same data with the same recipe, one after the other,
 * evaluate each on the test set, and print a table against the first (the reference, usually
 * the dense model): parameters, how much smaller the compressed layers are than the dense layers
 * of the same shapes, test accuracy, and training samples/s. `make demo` runs it. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: fnet-compare [options]\n"
    "\n"
    "Train models one after the other on the same data with the same recipe, evaluate each on\n"
    "the test set and compare them with the first: parameters, how many times smaller the\n"
    "compressed (non-dense) layers are than dense layers of the same shapes, test accuracy,\n"
    "training samples/s and its ratio to the first model's.\n"
    "\n"
    "  --model SPEC        a model (repeatable, at most 8; the first is the reference); default:\n"
    "                      dense:1024,relu,dense:1024,relu,dense:10, then its middle layer as\n"
    "                      tt:1024:rank=8, lowrank:1024:rank=32 and circ:1024:block=64\n"
    "  --data DIR          IDX files {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]\n"
    "                      (default $FNET_DATA, then /usr/share/datasets/fashion-mnist)\n"
    "  --optim NAME        adam (default), adamw, sgd, momentum, nesterov, rmsprop\n"
    "  --lr X              learning rate (default 1e-3 for adam/adamw/rmsprop, 1e-2 others)\n"
    "  --batch N           minibatch size (default 256)\n"
    "  --epochs N          epochs (default 10)\n"
    "  --limit-train N     use only the first N training samples\n"
    "  --seed N            seed of initialization and shuffling (default 1)\n"
    "  --fro-decay X       Frobenius decay X/2·‖U·V‖²_F of every low-rank layer (default 0)\n"
    "  --threads N         threads (default: the number of cores)\n"
    "  --json FILE         JSON lines: one object per model\n"
    "  --help, --version\n"
    "\n"
    "A model whose loss becomes NaN or Inf is marked 'diverged' and the others are still\n"
    "trained and compared; the run then exits 1 with that model's error.\n"
    "Exit status: 0 success, 1 runtime error, 2 bad usage.\n";

#define MAX_MODELS 8

static bool takes_value(const char *opt)
{
    static const char *const with_value[] = {"--model", "--data", "--optim", "--lr",
                                             "--batch", "--epochs", "--limit-train", "--seed",
                                             "--threads", "--json", "--fro-decay"};
    for (size_t i = 0; i < sizeof(with_value) / sizeof(with_value[0]); i++)
        if (strcmp(opt, with_value[i]) == 0)
            return true;
    return false;
}

struct result {
    const char *spec;
    int64_t params;
    int64_t compressed, as_dense; // parameters of the non-dense layers, and of dense ones instead
    double test_acc, samples_per_s, train_seconds;
    char error[1024]; // why its training stopped (a NaN/Inf loss); empty when it did not
};

// The non-dense layers with weights: their parameters, and those of dense layers (with a bias)
// of the same shapes.
static void compressed_layers(fnet_model *m, int64_t *params, int64_t *as_dense)
{
    *params = *as_dense = 0;
    for (int i = 0; i < fnet_model_num_layers(m); i++) {
        fnet_layer *l = fnet_model_layer(m, i);
        if (fnet_layer_kind_of(l) == FNET_LAYER_DENSE || fnet_layer_num_params(l) == 0)
            continue;
        *params += fnet_layer_num_params(l);
        *as_dense += (fnet_layer_n_in(l) + 1) * fnet_layer_n_out(l);
    }
}

static int on_epoch(const fnet_epoch_info *e, void *user)
{
    (void)user;
    if (cli_is_tty())
        printf("\r%60s\r", "");
    printf("  epoch %2d/%d  loss %.4f  %.1fs  %.0f samples/s\n", e->epoch, e->epochs,
           e->train_loss, e->seconds, e->samples_per_s);
    fflush(stdout);
    return 0;
}

static float fro_decay; // --fro-decay, for every model

// The model of spec for this data, or die naming it: a spec that does not parse or is not built
// is bad usage (2), a model with fewer outputs than the data has classes a runtime error (1).
static fnet_model *build(fnet_ctx *ctx, const char *spec, const fnet_dataset *train,
                         uint64_t seed)
{
    fnet_model *m = NULL;
    char where[1100];
    snprintf(where, sizeof(where), "--model %s", spec);
    cli_check_usage(ctx, fnet_model_create_from_spec(ctx, spec, fnet_dataset_dim(train), seed, &m),
                    where);
    if (fnet_dataset_classes(train) > fnet_model_n_out(m))
        cli_die(1, where, "the data has %lld classes but the model has %lld outputs",
                (long long)fnet_dataset_classes(train), (long long)fnet_model_n_out(m));
    cli_check(ctx, fnet_model_set_frobenius_decay(m, fro_decay), "--fro-decay");
    return m;
}

static struct result train_one(fnet_ctx *ctx, const char *spec, const fnet_optim_params *op,
                               const fnet_train_params *tp, const fnet_dataset *train,
                               const fnet_dataset *test)
{
    struct result r = {.spec = spec};
    fnet_model *m = build(ctx, spec, train, tp->seed);
    char where[1100];
    snprintf(where, sizeof(where), "--model %s", spec);
    r.params = fnet_model_num_params(m);
    compressed_layers(m, &r.compressed, &r.as_dense);
    printf("%s: %lld parameters\n", fnet_model_spec(m), (long long)r.params);
    fflush(stdout);
    fnet_optimizer *opt = NULL;
    cli_check(ctx, fnet_optimizer_create(ctx, op, r.params, &opt), "--optim/--lr");
    fnet_train_stats st = {0};
    fnet_status status = fnet_train_with(m, opt, op, tp, train, NULL, on_epoch, NULL, &st);
    if (status == FNET_ERR_NUMERIC) {
        // a diverging model: the others are still compared, the run ends with its error
        snprintf(r.error, sizeof(r.error), "%s: %s", fnet_status_str(status),
                 fnet_ctx_last_message(ctx));
        r.test_acc = r.samples_per_s = r.train_seconds = NAN;
    } else {
        cli_check(ctx, status, where);
        double loss;
        cli_check(ctx, fnet_model_evaluate(m, test, &r.test_acc, &loss),
                  "evaluating on the test set");
        r.samples_per_s = st.samples_per_s;
        r.train_seconds = st.train_seconds;
    }
    fnet_optimizer_free(opt);
    fnet_model_free(m);
    return r;
}

static void print_table(const struct result *r, int n)
{
    int w = 5;
    for (int i = 0; i < n; i++)
        w = (int)strlen(r[i].spec) > w ? (int)strlen(r[i].spec) : w;
    printf("\n%-*s %10s %11s %9s %11s %9s\n", w, "model", "params", "compressed", "test_acc",
           "samples/s", "speed");
    for (int i = 0; i < n; i++) {
        char ratio[32] = "-";
        if (r[i].compressed > 0)
            snprintf(ratio, sizeof(ratio), "%.1fx", (double)r[i].as_dense / (double)r[i].compressed);
        if (r[i].error[0]) {
            printf("%-*s %10lld %11s %9s %11s %9s\n", w, r[i].spec, (long long)r[i].params, ratio,
                   "diverged", "-", "-");
            continue;
        }
        char speed[32] = "-";
        if (r[0].samples_per_s > 0) // not when the reference diverged
            snprintf(speed, sizeof(speed), "%.2fx", r[i].samples_per_s / r[0].samples_per_s);
        printf("%-*s %10lld %11s %9.4f %11.0f %9s\n", w, r[i].spec, (long long)r[i].params, ratio,
               r[i].test_acc, r[i].samples_per_s, speed);
    }
    printf("(compressed: the dense layers of the same shapes over the non-dense layers, in "
           "parameters;\n speed: training samples/s over the first model's, measured in this run)\n");
}

int main(int argc, char **argv)
{
    cli_init("fnet-compare", usage);
    const char *specs[MAX_MODELS], *data = cli_default_data(), *optim = "adam", *lr_s = NULL;
    const char *json_path = NULL;
    int n = 0;
    int64_t batch = 256, epochs = 10, limit = 0, threads = 0;
    uint64_t seed = 1;
    struct cli_args a = {.argc = argc, .argv = argv, .i = 1};
    const char *o, *v;
    while ((o = cli_next(&a, takes_value, &v)) != NULL) {
        if (strcmp(o, "--model") == 0) {
            if (n == MAX_MODELS)
                cli_die(2, o, "at most %d models", MAX_MODELS);
            specs[n++] = v;
        } else if (strcmp(o, "--data") == 0) {
            data = v;
        } else if (strcmp(o, "--optim") == 0) {
            optim = v;
        } else if (strcmp(o, "--lr") == 0) {
            lr_s = v;
        } else if (strcmp(o, "--batch") == 0) {
            batch = cli_int(o, v, 1, (int64_t)1 << 31);
        } else if (strcmp(o, "--epochs") == 0) {
            epochs = cli_int(o, v, 1, 1000000);
        } else if (strcmp(o, "--limit-train") == 0) {
            limit = cli_int(o, v, 1, INT64_MAX);
        } else if (strcmp(o, "--seed") == 0) {
            seed = (uint64_t)cli_int(o, v, 0, INT64_MAX);
        } else if (strcmp(o, "--threads") == 0) {
            threads = cli_int(o, v, 1, 1024);
        } else if (strcmp(o, "--json") == 0) {
            json_path = v;
        } else if (strcmp(o, "--fro-decay") == 0) {
            fro_decay = (float)cli_double(o, v, 0.0, 1e6);
        } else {
            cli_die(2, o, "unknown option (see --help)");
        }
    }
    if (n == 0) {
        specs[n++] = "dense:1024,relu,dense:1024,relu,dense:10";
        specs[n++] = "dense:1024,relu,tt:1024:rank=8,relu,dense:10";
        specs[n++] = "dense:1024,relu,lowrank:1024:rank=32,relu,dense:10";
        specs[n++] = "dense:1024,relu,circ:1024:block=64,relu,dense:10";
    }
    fnet_optim_kind kind;
    if (fnet_optim_kind_parse(optim, &kind) != FNET_OK || kind == FNET_OPTIM_LBFGS ||
        kind == FNET_OPTIM_CG)
        cli_die(2, "--optim", "expected adam, adamw, sgd, momentum, nesterov or rmsprop, got '%s'",
                optim);
    fnet_optim_params op = fnet_optim_params_default(kind);
    if (lr_s)
        op.lr = (float)cli_double("--lr", lr_s, 1e-30, 1e6);
    fnet_train_params tp = fnet_train_params_default();
    tp.batch = batch;
    tp.epochs = (int)epochs;
    tp.seed = seed;
    tp.on_batch = cli_is_tty() ? cli_progress : NULL;

    fnet_ctx *ctx = cli_ctx("cpu", (int)threads);
    char where[1100];
    snprintf(where, sizeof(where), "--data %s", data);
    fnet_dataset *train = NULL, *test = NULL;
    cli_check(ctx, fnet_dataset_load_idx(ctx, data, FNET_SPLIT_TRAIN, &train), where);
    cli_check(ctx, fnet_dataset_load_idx(ctx, data, FNET_SPLIT_TEST, &test), where);
    if (limit > 0 && limit < fnet_dataset_size(train)) {
        fnet_dataset *sub = NULL;
        cli_check(ctx, fnet_dataset_subset(train, limit, &sub), "--limit-train");
        fnet_dataset_free(train);
        train = sub;
    }
    for (int i = 0; i < n; i++) // every model builds before the first one trains
        fnet_model_free(build(ctx, specs[i], train, seed));
    FILE *json = cli_json_open(json_path);
    printf("%lld training, %lld test samples; %s, batch %lld, %lld epochs; %s, %d threads\n\n",
           (long long)fnet_dataset_size(train), (long long)fnet_dataset_size(test),
           fnet_optim_kind_name(kind), (long long)batch, (long long)epochs,
           fnet_ctx_backend_name(ctx), fnet_ctx_threads(ctx));
    struct result r[MAX_MODELS];
    for (int i = 0; i < n; i++) {
        r[i] = train_one(ctx, specs[i], &op, &tp, train, test);
        if (r[i].error[0])
            printf("  diverged: %s\n\n", r[i].error);
        else
            printf("  test_acc %.4f  %.0f samples/s\n\n", r[i].test_acc, r[i].samples_per_s);
        if (json) {
            fputc('{', json);
            cli_json_string(json, "event", "model", false);
            cli_json_string(json, "model", r[i].spec, false);
            cli_json_number(json, "params", (double)r[i].params, false);
            cli_json_number(json, "compressed_params", (double)r[i].compressed, false);
            cli_json_number(json, "as_dense_params", (double)r[i].as_dense, false);
            cli_json_number(json, "test_acc", r[i].test_acc, false);
            cli_json_number(json, "train_seconds", r[i].train_seconds, false);
            if (r[i].error[0])
                cli_json_string(json, "error", r[i].error, false);
            cli_json_number(json, "samples_per_s", r[i].samples_per_s, true);
        }
    }
    print_table(r, n);
    cli_json_close(json, json_path);
    for (int i = 0; i < n; i++) // the table is out; a model that diverged fails the run
        if (r[i].error[0]) {
            snprintf(where, sizeof(where), "--model %s", r[i].spec);
            cli_die(1, where, "%s", r[i].error);
        }
    fnet_dataset_free(train);
    fnet_dataset_free(test);
    fnet_ctx_free(ctx);
    return 0;
}
