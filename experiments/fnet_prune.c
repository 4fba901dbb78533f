/* fnet-prune: the accuracy-against-sparsity curve of iterative magnitude pruning. Train a
 * network (or load a trained one), then prune it step by step to each sparsity of a list,
 * fine-tuning after each step, and evaluate on the test set right after each pruning and after
 * its fine-tuning; a table, JSON lines and a plot with the dense accuracy as a line. Public API
 * only. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"
#include "plot.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: fnet-prune [--model SPEC | --load FILE] [options]\n"
    "\n"
    "Under mpirun -np P (or srun) it runs data-parallel: each batch split across the ranks,\n"
    "rank 0 printing and writing the files (docs/distributed.md).\n"
    "\n"
    "The accuracy-against-sparsity curve of iterative magnitude pruning (Han et al. 2015):\n"
    "train the network, or load a trained one, then prune it step by step to each sparsity of\n"
    "--sparsities, fine-tuning after each step; test accuracy right after each pruning and\n"
    "after its fine-tuning, in a table, JSON lines and a plot with the dense accuracy.\n"
    "\n"
    "  --model SPEC        the network to train (default dense:1024,relu,dense:1024,relu,dense:10)\n"
    "  --load FILE         start from a trained checkpoint instead (no training)\n"
    "  --sparsities LIST   increasing fractions of the weights removed, comma-separated\n"
    "                      (default 0.5,0.75,0.9,0.95,0.98,0.99)\n"
    "  --finetune-epochs E fine-tuning epochs after each step (default 2)\n"
    "  --finetune-lr-scale X  fine-tuning rate = lr times X (default 0.3)\n"
    "  --prune-scope NAME  global (default: one threshold over all layers) or layer\n"
    "  --optim NAME        adam (default), adamw, sgd, momentum, nesterov, rmsprop\n"
    "  --lr X              learning rate (default 1e-3 for adam/adamw/rmsprop, 1e-2 others)\n"
    "  --batch N           minibatch size (default 256)\n"
    "  --epochs N          training epochs before pruning (default 10; not with --load)\n"
    "  --plot FILE         FILE.png and FILE.svg (gnuplot), FILE.dat and FILE.gp\n"
    "  --json FILE         JSON lines: the dense model, then one object per sparsity\n"
    "  --save FILE         the model at the last sparsity\n"
    "  --data DIR          IDX files {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]\n"
    "                      (default $FNET_DATA, then /usr/share/datasets/fashion-mnist)\n"
    "  --limit-train N     use only the first N training samples\n"
    "  --seed N            seed of initialization and shuffling (default 1)\n"
    "  --threads N         threads (default: the number of cores)\n"
    "  --device DEV        cpu (default), reference, guarded, cuda[:K]\n"
    "  --help, --version\n"
    "\n"
    "Sparsity counts the weights (biases are never pruned). Exit status: 0 success, 1 runtime\n"
    "error, 2 bad usage.\n";

static bool takes_value(const char *opt)
{
    static const char *const with_value[] = {
        "--model", "--load", "--sparsities", "--finetune-epochs", "--finetune-lr-scale",
        "--prune-scope", "--optim", "--lr", "--batch", "--epochs", "--plot", "--json", "--save",
        "--data", "--limit-train", "--seed", "--threads", "--device"};
    for (size_t i = 0; i < sizeof(with_value) / sizeof(with_value[0]); i++)
        if (strcmp(opt, with_value[i]) == 0)
            return true;
    return false;
}

#define MAX_STEPS 64

struct step {
    double sparsity;
    int64_t kept; // parameters not pruned, biases included
    double acc_pruned, acc_tuned, loss_tuned, train_seconds;
};

static double train(fnet_ctx *ctx, fnet_model *m, const fnet_optim_params *op, int64_t batch,
                    int epochs, uint64_t seed, const fnet_dataset *d, const char *label)
{
    struct cli_progress w;
    cli_progress_begin(&w, label, epochs);
    fnet_train_params tp = fnet_train_params_default();
    tp.batch = batch;
    tp.epochs = epochs;
    tp.seed = seed;
    tp.on_batch = cli_is_tty() ? cli_progress : NULL;
    tp.stop = cli_stop_flag();
    cli_signals_install();
    fnet_optimizer *opt = NULL;
    cli_check(ctx, fnet_optimizer_create(ctx, op, fnet_model_num_params(m), &opt), "--optim");
    fnet_train_stats st;
    cli_check_train(ctx, fnet_train_with(m, opt, op, &tp, d, NULL, cli_on_epoch, &w, &st),
                    label);
    fnet_optimizer_free(opt);
    return st.train_seconds;
}

static void parse_sparsities(const char *text, double *s, int *n)
{
    char buf[1024];
    if (strlen(text) >= sizeof(buf) || *text == '\0')
        cli_die(2, "--sparsities", "expected increasing fractions separated by commas");
    snprintf(buf, sizeof(buf), "%s", text);
    *n = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (*n == MAX_STEPS)
            cli_die(2, "--sparsities", "at most %d values", MAX_STEPS);
        s[*n] = cli_double("--sparsities", t, 0.0, 0.9999);
        if (*n > 0 && s[*n] <= s[*n - 1])
            cli_die(2, "--sparsities", "pruning never gives weights back: the values must "
                    "increase, got %g after %g", s[*n], s[*n - 1]);
        (*n)++;
    }
}

static void plot(const char *prefix, const struct step *st, int n, double dense_acc,
                 const char *spec, int finetune)
{
    char dat[1100];
    plot_path(prefix, ".dat", dat, sizeof(dat));
    FILE *f = cli_fopen_out(dat, "w");
    if (f == NULL)
        cli_die(1, dat, "cannot write the plot data");
    fprintf(f, "# fnet-prune of %s\n# sparsity weights_kept_percent acc_pruned acc_tuned\n",
            spec);
    for (int i = 0; i < n; i++)
        fprintf(f, "%g %.6g %.6f %.6f\n", st[i].sparsity, 100.0 * (1.0 - st[i].sparsity),
                st[i].acc_pruned, st[i].acc_tuned);
    bool bad = ferror(f) != 0;
    if (fclose(f) != 0 || bad)
        cli_die(1, dat, "cannot write the plot data (disk full?)");
    FILE *g = plot_script_open(prefix, 1100, 650);
    // kept % on a log axis, growing sparsity to the right: the range by hand (reversed), a tic
    // at every step
    double hi = 100.0 * (1.0 - st[0].sparsity), lo = 100.0 * (1.0 - st[n - 1].sparsity);
    fprintf(g,
            "  set title \"fnet-prune: iterative magnitude pruning of %s\"\n"
            "  set grid\n"
            "  set key outside right top vertical box\n"
            "  set logscale x\n"
            "  set xrange [%g:%g]\n"
            "  set xtics (",
            spec, hi * 1.4, lo / 1.4);
    for (int i = 0; i < n; i++)
        fprintf(g, "%s\"%.3g\" %.6g", i ? ", " : "", 100.0 * (1.0 - st[i].sparsity),
                100.0 * (1.0 - st[i].sparsity));
    fprintf(g,
            ")\n"
            "  set xlabel \"weights kept (%%, log scale; sparsity grows to the right)\"\n"
            "  set ylabel \"test accuracy\"\n"
            "  set offsets 0, 0, graph 0.05, graph 0.05\n"
            "  dense = %.6f\n"
            "  set arrow 1 from graph 0, first dense to graph 1, first dense nohead dt 2 lw 1.5 "
            "lc rgb \"black\"\n"
            "  plot \"%s\" using 2:3 with linespoints pt 6 ps 1.5 lw 2 lc rgb \"#d62728\" "
            "title \"right after pruning\", "
            "\"\" using 2:4 with linespoints pt 7 ps 1.5 lw 2 lc rgb \"#1f77b4\" "
            "title \"after %d fine-tuning epoch%s\", "
            "NaN with lines dt 2 lw 1.5 lc rgb \"black\" title \"dense\"\n",
            dense_acc, dat, finetune, finetune == 1 ? "" : "s");
    plot_script_close(g, prefix);
    if (plot_draw(prefix))
        printf("plot: %s.png, %s.svg\n", prefix, prefix);
}

int main(int argc, char **argv)
{
    cli_init("fnet-prune", usage);
    const char *spec = NULL, *load = NULL, *data = cli_default_data(), *optim = "adam";
    const char *lr_s = NULL, *plot_arg = NULL, *json_path = NULL, *save = NULL;
    const char *device = "cpu", *sparsities = "0.5,0.75,0.9,0.95,0.98,0.99";
    int64_t batch = 256, epochs = 10, limit = 0, threads = 0, finetune = 2;
    double lr_scale = 0.3;
    bool epochs_set = false;
    uint64_t seed = 1;
    fnet_prune_scope scope = FNET_PRUNE_GLOBAL;
    struct cli_args a = {.argc = argc, .argv = argv, .i = 1};
    const char *o, *v;
    while ((o = cli_next(&a, takes_value, &v)) != NULL) {
        if (strcmp(o, "--model") == 0) {
            spec = v;
        } else if (strcmp(o, "--load") == 0) {
            load = v;
        } else if (strcmp(o, "--sparsities") == 0) {
            sparsities = v;
        } else if (strcmp(o, "--finetune-epochs") == 0) {
            finetune = cli_int(o, v, 0, 1000000);
        } else if (strcmp(o, "--finetune-lr-scale") == 0) {
            lr_scale = cli_double(o, v, 1e-6, 1e6);
        } else if (strcmp(o, "--prune-scope") == 0) {
            if (fnet_prune_scope_parse(v, &scope) != FNET_OK)
                cli_die(2, o, "expected global or layer, got '%s'", v);
        } else if (strcmp(o, "--optim") == 0) {
            optim = v;
        } else if (strcmp(o, "--lr") == 0) {
            lr_s = v;
        } else if (strcmp(o, "--batch") == 0) {
            batch = cli_int(o, v, 1, (int64_t)1 << 31);
        } else if (strcmp(o, "--epochs") == 0) {
            epochs = cli_int(o, v, 1, 1000000);
            epochs_set = true;
        } else if (strcmp(o, "--plot") == 0) {
            plot_arg = v;
        } else if (strcmp(o, "--json") == 0) {
            json_path = v;
        } else if (strcmp(o, "--save") == 0) {
            save = v;
        } else if (strcmp(o, "--data") == 0) {
            data = v;
        } else if (strcmp(o, "--limit-train") == 0) {
            limit = cli_int(o, v, 1, INT64_MAX);
        } else if (strcmp(o, "--seed") == 0) {
            seed = (uint64_t)cli_int(o, v, 0, INT64_MAX / 2);
        } else if (strcmp(o, "--threads") == 0) {
            threads = cli_int(o, v, 1, 1024);
        } else if (strcmp(o, "--device") == 0) {
            device = v;
        } else {
            cli_die(2, o, "unknown option (see --help)");
        }
    }
    if (spec && load)
        cli_die(2, "--load", "either --model (trained here) or --load (trained before)");
    if (load && epochs_set)
        cli_die(2, "--epochs", "a loaded model is trained already");
    double s[MAX_STEPS];
    int n = 0;
    parse_sparsities(sparsities, s, &n);
    fnet_optim_kind kind;
    if (fnet_optim_kind_parse(optim, &kind) != FNET_OK || kind == FNET_OPTIM_LBFGS ||
        kind == FNET_OPTIM_CG)
        cli_die(2, "--optim", "expected adam, adamw, sgd, momentum, nesterov or rmsprop, got '%s'",
                optim);
    fnet_optim_params op = fnet_optim_params_default(kind);
    if (lr_s)
        op.lr = (float)cli_double("--lr", lr_s, 1e-30, 1e6);
    fnet_optim_params fine = op;
    fine.lr = op.lr * (float)lr_scale;
    char prefix[1024];
    if (plot_arg)
        plot_prefix("--plot", plot_arg, prefix, sizeof(prefix));

    fnet_ctx *ctx = cli_ctx(device, (int)threads, false);
    char where[1100];
    fnet_dataset *train_d = NULL, *test = NULL;
    cli_load_data(ctx, data, limit, &train_d, &test);
    fnet_model *m = NULL;
    if (load) {
        snprintf(where, sizeof(where), "--load %s", load);
        cli_check(ctx, fnet_model_load(ctx, load, &m), where);
        if (fnet_model_n_in(m) != fnet_dataset_dim(test))
            cli_die(1, where, "the model takes %lld inputs but the data has %lld",
                    (long long)fnet_model_n_in(m), (long long)fnet_dataset_dim(test));
    } else {
        spec = spec ? spec : "dense:1024,relu,dense:1024,relu,dense:10";
        snprintf(where, sizeof(where), "--model %s", spec);
        cli_check_usage(ctx, fnet_model_create_from_spec(ctx, spec, fnet_dataset_dim(test), seed,
                                                         &m),
                        where);
    }
    if (fnet_dataset_classes(test) > fnet_model_n_out(m))
        cli_die(1, where, "the data has %lld classes but the model has %lld outputs",
                (long long)fnet_dataset_classes(test), (long long)fnet_model_n_out(m));
    int64_t pruned0, prunable;
    cli_check(ctx, fnet_model_pruned(m, &pruned0, &prunable), where);
    if (prunable == 0)
        cli_die(1, where, "the model %s has no weights to prune", fnet_model_spec(m));
    // pruning never gives weights back: a loaded model pruned beyond the first step would be
    // tabled and plotted at sparsities it does not have
    if (pruned0 > llround(s[0] * (double)prunable))
        cli_die(2, "--sparsities", "%s has %.4g of its weights pruned already, more than %g",
                load, (double)pruned0 / (double)prunable, s[0]);
    if (save)
        cli_check_writable("--save", save);
    char dat_path[1100];
    if (plot_arg) {
        plot_path(prefix, ".dat", dat_path, sizeof(dat_path));
        cli_check_writable("--plot", dat_path);
    }
    FILE *json = cli_json_open(json_path);
    printf("%s: %lld parameters, %lld prunable weights; %lld training, %lld test samples; %s, "
           "%d threads\n", fnet_model_spec(m), (long long)fnet_model_num_params(m),
           (long long)prunable, (long long)fnet_dataset_size(train_d),
           (long long)fnet_dataset_size(test), fnet_ctx_backend_name(ctx), fnet_ctx_threads(ctx));
    fflush(stdout);
    double train_seconds = 0.0;
    if (!load) {
        printf("training: %s lr %g, batch %lld, %lld epochs\n", fnet_optim_kind_name(kind),
               (double)op.lr, (long long)batch, (long long)epochs);
        train_seconds = train(ctx, m, &op, batch, (int)epochs, seed, train_d, "dense");
    }
    double dense_acc, dense_loss;
    cli_check(ctx, fnet_model_evaluate(m, test, &dense_acc, &dense_loss), "evaluating");
    printf("dense: test accuracy %.4f\n\n", dense_acc);
    if (json) {
        fputc('{', json);
        cli_json_string(json, "event", "dense", false);
        cli_json_string(json, "model", fnet_model_spec(m), false);
        cli_json_number(json, "params", (double)fnet_model_num_params(m), false);
        cli_json_number(json, "sparsity", (double)pruned0 / (double)prunable, false);
        cli_json_number(json, "test_acc", dense_acc, false);
        cli_json_number(json, "test_loss", dense_loss, false);
        cli_json_number(json, "train_seconds", train_seconds, true);
    }
    struct step st[MAX_STEPS];
    for (int k = 0; k < n; k++) {
        struct step *p = &st[k];
        p->sparsity = s[k];
        snprintf(where, sizeof(where), "sparsity %g", s[k]);
        printf("sparsity %g (%s, then %lld fine-tuning epoch%s at lr %g)\n", s[k],
               fnet_prune_scope_name(scope), (long long)finetune, finetune == 1 ? "" : "s",
               (double)fine.lr);
        cli_check(ctx, fnet_prune_magnitude(m, s[k], scope, NULL), where);
        double loss;
        cli_check(ctx, fnet_model_evaluate(m, test, &p->acc_pruned, &loss), "evaluating");
        p->train_seconds = 0.0;
        if (finetune > 0) {
            char label[64];
            snprintf(label, sizeof(label), "sparsity %g", s[k]);
            p->train_seconds = train(ctx, m, &fine, batch, (int)finetune, seed + 1 + (uint64_t)k,
                                     train_d, label);
        }
        cli_check(ctx, fnet_model_evaluate(m, test, &p->acc_tuned, &p->loss_tuned), "evaluating");
        int64_t pruned;
        cli_check(ctx, fnet_model_pruned(m, &pruned, &prunable), where);
        p->kept = fnet_model_num_params(m) - pruned;
        printf("  test accuracy %.4f right after pruning, %.4f fine-tuned; %lld parameters kept\n\n",
               p->acc_pruned, p->acc_tuned, (long long)p->kept);
        if (json) {
            fputc('{', json);
            cli_json_string(json, "event", "prune", false);
            cli_json_string(json, "model", fnet_model_spec(m), false);
            cli_json_string(json, "scope", fnet_prune_scope_name(scope), false);
            cli_json_number(json, "sparsity", (double)pruned / (double)prunable, false);
            cli_json_number(json, "params", (double)p->kept, false);
            cli_json_number(json, "test_acc_after_pruning", p->acc_pruned, false);
            cli_json_number(json, "finetune_epochs", (double)finetune, false);
            cli_json_number(json, "test_acc", p->acc_tuned, false);
            cli_json_number(json, "test_loss", p->loss_tuned, false);
            cli_json_number(json, "acc_diff", p->acc_tuned - dense_acc, false);
            cli_json_number(json, "train_seconds", p->train_seconds, false);
            cli_json_number(json, "peak_rss_mb", cli_peak_rss_mb(), true);
        }
        fflush(stdout);
    }
    printf("%9s %12s %11s %11s %11s\n", "sparsity", "params kept", "acc_pruned", "acc_tuned",
           "d_acc");
    printf("%9s %12lld %11s %11.4f %11s\n", "dense", (long long)fnet_model_num_params(m), "-",
           dense_acc, "-");
    for (int k = 0; k < n; k++)
        printf("%9g %12lld %11.4f %11.4f %+11.2f\n", st[k].sparsity, (long long)st[k].kept,
               st[k].acc_pruned, st[k].acc_tuned, 100.0 * (st[k].acc_tuned - dense_acc));
    printf("(d_acc: fine-tuned accuracy minus the dense model's, in points)\n");
    if (save) {
        snprintf(where, sizeof(where), "--save %s", save);
        if (cli_lead()) // rank 0 writes the files
            cli_check(ctx, fnet_model_save(m, NULL, save), where);
        printf("saved %s\n", save);
    }
    if (plot_arg)
        plot(prefix, st, n, dense_acc, fnet_model_spec(m), (int)finetune);
    cli_json_close(json, json_path);
    fnet_model_free(m);
    fnet_dataset_free(train_d);
    fnet_dataset_free(test);
    fnet_ctx_free(ctx);
    return 0;
}
