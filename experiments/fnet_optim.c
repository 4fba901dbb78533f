/* fnet-optim: the seed and wide networks on Fashion-MNIST trained by Adam, SGD, momentum,
 * RMSprop, L-BFGS and CG on equal terms (same model seed, data and clock); test accuracy and
 * loss against training time and gradient evaluations, the time each needs to reach a target
 * accuracy, JSON lines and a gnuplot plot. Public API only. docs/optim.md. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"
#include "plot.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char usage[] =
    "usage: fnet-optim [options]\n"
    "\n"
    "Under mpirun -np P (or srun) it runs data-parallel: each batch split across the ranks,\n"
    "rank 0 printing and writing the files (docs/distributed.md).\n"
    "\n"
    "Train one network with several optimizers from the same initial weights, record test\n"
    "accuracy and loss against training time and gradient evaluations, print the time and\n"
    "evaluations each needs to reach a target test accuracy, write JSON lines and a plot.\n"
    "\n"
    "  --network NAME      seed (dense:64,relu,dense:32,relu,dense:10), wide\n"
    "                      (dense:1024,relu,dense:1024,relu,dense:10) or a model spec;\n"
    "                      repeatable (default: seed)\n"
    "  --optims LIST       comma-separated: adam, sgd, momentum, rmsprop, lbfgs, cg, adamw,\n"
    "                      nesterov (default adam,sgd,momentum,rmsprop,lbfgs,cg)\n"
    "  --seconds X         training-time budget of each run (default 30)\n"
    "  --epochs N          epoch limit of each run (default 50)\n"
    "  --target A          test accuracy whose time to reach is reported (default 0.85)\n"
    "  --stop-at-target    end each run when it reaches the target\n"
    "  --eval-every X      seconds of training between test evaluations, the resolution of the\n"
    "                      time to the target (default seconds/120)\n"
    "  --batch N           minibatch of the first-order optimizers (default 32)\n"
    "  --solver-batch N    minibatch of lbfgs and cg, 0 = full batch (default 2000 for lbfgs,\n"
    "                      1000 for cg)\n"
    "  --iters-per-batch K lbfgs, cg: solver iterations on each minibatch (default 3 for\n"
    "                      lbfgs, 5 for cg)\n"
    "  --reset-history     lbfgs: start every minibatch with an empty history (default: keep\n"
    "                      it across minibatches)\n"
    "  --history M         lbfgs: correction pairs (default 10)\n"
    "  --line-search NAME  lbfgs, cg: morethuente (default), armijo, wolfe, strongwolfe\n"
    "  --cg-beta NAME      cg: pr+ (default), fr, hs, dy\n"
    "  --data DIR          IDX files (default $FNET_DATA, then /usr/share/datasets/fashion-mnist)\n"
    "  --limit-train N     use only the first N training samples\n"
    "  --seed N            seed of initialization and shuffling (default 1)\n"
    "  --threads N         worker threads: GEMMs, element-wise work, TT chunks (default: the\n"
    "                      number of cores)\n"
    "  --json FILE         JSON lines (default fnet-optim.jsonl; '-' for none)\n"
    "  --plot PREFIX       write PREFIX-<network>.png and .svg with gnuplot, and the data and\n"
    "                      script beside them (default fnet-optim; '-' for none)\n"
    "  --help, --version\n"
    "\n"
    "Optimizer settings are each one's usual ones: Adam and RMSprop lr 1e-3, SGD and momentum\n"
    "(0.9) lr 1e-2; L-BFGS (m = 10) and CG (PR+) with Moré-Thuente line searches, on the\n"
    "minibatch sizes and iterations that reached 0.85 soonest on the seed network (docs/optim.md).\n"
    "Training time\n"
    "excludes the test evaluations. A gradient evaluation is one call of the loss-and-gradient\n"
    "oracle on one minibatch; the plot's x axis counts per-sample gradients, in epochs.\n"
    "\n"
    "Exit status: 0 success, 1 runtime error, 2 bad usage.\n";

#define MAX_NETS 8
#define MAX_OPTIMS 8
#define SEED_SPEC "dense:64,relu,dense:32,relu,dense:10"
#define WIDE_SPEC "dense:1024,relu,dense:1024,relu,dense:10"

static bool takes_value(const char *opt)
{
    static const char *const with_value[] = {
        "--network", "--optims", "--seconds", "--epochs", "--target", "--eval-every", "--batch",
        "--solver-batch", "--iters-per-batch", "--history", "--line-search", "--cg-beta", "--data",
        "--limit-train", "--seed", "--threads", "--json", "--plot"};
    for (size_t i = 0; i < sizeof(with_value) / sizeof(with_value[0]); i++)
        if (strcmp(opt, with_value[i]) == 0)
            return true;
    return false;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

struct config {
    const char *data;
    double seconds, target, eval_every;
    int64_t epochs, batch, limit;
    int64_t solver_batch; // -1: each solver's default
    int iters;            // 0: each solver's default
    int history;
    bool reset_history;
    fnet_line_search ls;
    fnet_cg_beta beta;
    bool stop_at_target;
    uint64_t seed;
};

// One run: its clock (training time only), counters and the running training loss.
struct run {
    const struct config *cfg;
    fnet_model *m;
    const fnet_dataset *test;
    FILE *json, *dat;
    const char *net, *spec, *optim;
    double train_s;     // training seconds so far (evaluations excluded)
    int64_t pass;       // the epoch (pass over the minibatches) running, from 0
    double seg_start;   // start of the current training segment
    double next_eval;   // training time of the next evaluation
    int64_t evals, samples, n_train;
    double loss_sum;    // Σ loss·batch since the last point
    int64_t loss_n;
    double last_acc, last_loss, best_acc;
    double t_target, e_target, s_target; // NaN until the target is reached
    bool reached, stop;
};

// In a job, rank 0's clock: every rank evaluates and stops at the same step.
static void run_pause(struct run *r)
{
    r->train_s += now() - r->seg_start;
    if (fnet_dist_broadcast(cli_job(), &r->train_s, sizeof(r->train_s)) != FNET_OK)
        cli_die(1, "mpirun", "the ranks cannot agree on the time");
}

static void run_resume(struct run *r)
{
    r->seg_start = now();
}

// Evaluate on the test set and write one point (the clock is paused meanwhile).
static void record(fnet_ctx *ctx, struct run *r)
{
    run_pause(r);
    double acc = 0.0, loss = 0.0;
    cli_check(ctx, fnet_model_evaluate(r->m, r->test, &acc, &loss), "evaluating on the test set");
    double train_loss = r->loss_n > 0 ? r->loss_sum / (double)r->loss_n : NAN;
    r->loss_sum = 0.0;
    r->loss_n = 0;
    double epochs = (double)r->samples / (double)r->n_train;
    r->last_acc = acc;
    r->last_loss = loss;
    if (acc > r->best_acc)
        r->best_acc = acc;
    if (!r->reached && acc >= r->cfg->target) {
        r->reached = true;
        r->t_target = r->train_s;
        r->e_target = (double)r->evals;
        r->s_target = epochs;
        if (r->cfg->stop_at_target)
            r->stop = true;
    }
    if (r->json) {
        FILE *f = r->json;
        fputc('{', f);
        cli_json_string(f, "event", "point", false);
        cli_json_string(f, "network", r->net, false);
        cli_json_string(f, "model", r->spec, false);
        cli_json_string(f, "optim", r->optim, false);
        cli_json_number(f, "seconds", r->train_s, false);
        cli_json_number(f, "evals", (double)r->evals, false);
        cli_json_number(f, "samples", (double)r->samples, false);
        cli_json_number(f, "epochs", epochs, false);
        cli_json_number(f, "train_loss", train_loss, false);
        cli_json_number(f, "test_loss", loss, false);
        cli_json_number(f, "test_acc", acc, true);
    }
    if (r->dat)
        fprintf(r->dat, "%.6f %lld %.6f %.6f %.6f %.6f\n", r->train_s, (long long)r->evals, epochs,
                acc, loss, train_loss);
    r->next_eval = r->train_s + r->cfg->eval_every;
    if (r->train_s >= r->cfg->seconds)
        r->stop = true;
    // the bar: the time budget or the epoch limit, whichever comes first
    double f = fmax(r->train_s / r->cfg->seconds, (double)r->pass / (double)r->cfg->epochs);
    char label[128];
    snprintf(label, sizeof(label), "%s, %s", r->net, r->optim);
    cli_progress_line(label, f, f > 0.0 ? r->train_s * (1.0 - f) / f : -1.0);
    run_resume(r);
}

// After each step or solver iteration: the budget, and a point when one is due.
static void after_step(fnet_ctx *ctx, struct run *r)
{
    // in a job, every rank decides alike: a signal on any rank, rank 0's clock
    int sig = cli_signal_received() != 0;
    double t = r->train_s + (now() - r->seg_start);
    cli_check(ctx, fnet_dist_broadcast(cli_job(), &t, sizeof(t)), "mpirun");
    if (sig) // SIGINT/SIGTERM: this run ends here, the program below
        r->stop = true;
    if (t >= r->next_eval || t >= r->cfg->seconds)
        record(ctx, r);
}

struct solver_cb {
    fnet_ctx *ctx;
    struct run *r;
    int64_t batch;
    int64_t evals_before; // evaluations counted before this minimize call
};

static fnet_status on_iteration(const fnet_solver_info *info, void *user)
{
    struct solver_cb *cb = user;
    struct run *r = cb->r;
    int64_t new_evals = cb->evals_before + info->evaluations - r->evals;
    r->evals += new_evals;
    r->samples += new_evals * cb->batch;
    r->loss_sum += info->f * (double)cb->batch;
    r->loss_n += cb->batch;
    after_step(cb->ctx, r);
    return r->stop ? FNET_ERR_CANCELLED : FNET_OK;
}

// n floats of backend memory for a batch, or the program stops.
static float *batch_buffer(fnet_ctx *ctx, int64_t n, const char *where)
{
    void *p = NULL;
    cli_check(ctx, fnet_backend_alloc(ctx, (size_t)n * sizeof(float), &p), where);
    return p;
}

static void train_first_order(fnet_ctx *ctx, struct run *r, fnet_optim_kind kind,
                              const fnet_dataset *train)
{
    const struct config *c = r->cfg;
    fnet_model *m = r->m;
    int64_t n = fnet_dataset_size(train), dim = fnet_dataset_dim(train);
    int64_t B = c->batch > n ? n : c->batch, np = 0;
    fnet_optim_params op = fnet_optim_params_default(kind);
    fnet_optimizer *opt = NULL;
    cli_check(ctx, fnet_optimizer_create(ctx, &op, fnet_model_num_params(m), &opt), r->optim);
    float *w = fnet_model_params(m, &np);
    const float *g = fnet_model_grads(m, NULL);
    float *x = batch_buffer(ctx, B * dim, r->optim); // backend memory, as the model takes its input
    int32_t *labels = malloc((size_t)B * sizeof(int32_t));
    int64_t *perm = malloc((size_t)n * sizeof(int64_t));
    if (x == NULL || labels == NULL || perm == NULL)
        cli_die(1, r->optim, "out of memory for a batch of %lld", (long long)B);
    for (int64_t i = 0; i < n; i++)
        perm[i] = i;
    fnet_rng rng;
    fnet_rng_seed(&rng, c->seed);
    cli_check(ctx, fnet_model_reserve(m, B), r->optim);
    run_resume(r);
    for (int64_t e = 0; e < c->epochs && !r->stop; e++) {
        r->pass = e;
        fnet_rng_shuffle(&rng, perm, n);
        fnet_model_set_training(m, true);
        for (int64_t first = 0; first < n && !r->stop; first += B) {
            int64_t bs = n - first < B ? n - first : B;
            double loss = 0.0;
            cli_check(ctx, fnet_dataset_batch(train, perm + first, 0, bs, x, labels), "batch");
            fnet_status st = fnet_model_loss_grad(m, x, labels, bs, &loss, NULL);
            if (st == FNET_ERR_NUMERIC)
                cli_die(1, r->optim, "the loss became %g at epoch %lld", loss, (long long)e + 1);
            cli_check(ctx, st, r->optim);
            cli_check(ctx, fnet_optimizer_step(opt, w, g), r->optim);
            r->evals++;
            r->samples += bs;
            r->loss_sum += loss * (double)bs;
            r->loss_n += bs;
            after_step(ctx, r);
        }
    }
    run_pause(r);
    free(perm), free(labels);
    fnet_backend_free(ctx, x);
    fnet_optimizer_free(opt);
}

static void train_solver(fnet_ctx *ctx, struct run *r, fnet_optim_kind kind,
                         const fnet_dataset *train)
{
    const struct config *c = r->cfg;
    fnet_model *m = r->m;
    int64_t n = fnet_dataset_size(train), dim = fnet_dataset_dim(train), np = 0;
    // the settings that reached 0.85 soonest on the seed network (docs/optim.md, "Measured")
    int64_t want = c->solver_batch >= 0 ? c->solver_batch
                   : kind == FNET_OPTIM_LBFGS ? 2000 : 1000;
    int iters = c->iters > 0 ? c->iters : kind == FNET_OPTIM_LBFGS ? 3 : 5;
    int64_t B = want == 0 || want > n ? n : want;
    bool full = B == n;
    fnet_optim_params op = fnet_optim_params_default(kind);
    op.history = c->history;
    op.line_search = c->ls;
    op.cg_beta = c->beta;
    op.max_iter = iters;
    fnet_solver *s = NULL;
    cli_check(ctx, fnet_solver_create(ctx, &op, fnet_model_num_params(m), &s), r->optim);
    float *w = fnet_model_params(m, &np);
    float *x = batch_buffer(ctx, B * dim, r->optim); // backend memory, as the model takes its input
    int32_t *labels = malloc((size_t)B * sizeof(int32_t));
    int64_t *perm = malloc((size_t)n * sizeof(int64_t));
    if (x == NULL || labels == NULL || perm == NULL)
        cli_die(1, r->optim, "out of memory for a batch of %lld", (long long)B);
    for (int64_t i = 0; i < n; i++)
        perm[i] = i;
    fnet_rng rng;
    fnet_rng_seed(&rng, c->seed);
    cli_check(ctx, fnet_model_reserve(m, B), r->optim);
    if (full)
        cli_check(ctx, fnet_dataset_batch(train, NULL, 0, n, x, labels), "batch");
    run_resume(r);
    for (int64_t e = 0; e < c->epochs && !r->stop; e++) {
        r->pass = e;
        if (!full)
            fnet_rng_shuffle(&rng, perm, n);
        fnet_model_set_training(m, true);
        for (int64_t first = 0; first < n && !r->stop; first += B) {
            int64_t bs = n - first < B ? n - first : B;
            if (!full) {
                cli_check(ctx, fnet_dataset_batch(train, perm + first, 0, bs, x, labels), "batch");
                if (c->reset_history)
                    fnet_solver_reset(s); // a new minibatch as a new function
            }
            fnet_model_batch_info info = {.model = m, .x = x, .labels = labels, .batch = bs};
            struct solver_cb cb = {.ctx = ctx, .r = r, .batch = bs, .evals_before = r->evals};
            fnet_solver_stats st;
            fnet_status status =
                fnet_solver_minimize(s, w, fnet_model_objective, &info, on_iteration, &cb, &st);
            // evaluations after the last iteration (a failed line search) count too
            int64_t rest = cb.evals_before + st.evaluations - r->evals;
            r->evals += rest;
            r->samples += rest * bs;
            if (status == FNET_ERR_CANCELLED)
                break;
            if (status == FNET_ERR_NUMERIC)
                cli_die(1, r->optim, "the loss is %g at the start of a batch (epoch %lld)", st.f0,
                        (long long)e + 1);
            cli_check(ctx, status, r->optim);
        }
    }
    run_pause(r);
    free(perm), free(labels);
    fnet_backend_free(ctx, x);
    fnet_solver_free(s);
}

static void parse_optims(const char *list, fnet_optim_kind *kinds, int *count)
{
    char buf[256];
    if (strlen(list) >= sizeof(buf))
        cli_die(2, "--optims", "list too long");
    strcpy(buf, list);
    *count = 0;
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        if (*count >= MAX_OPTIMS)
            cli_die(2, "--optims", "at most %d optimizers", MAX_OPTIMS);
        if (fnet_optim_kind_parse(tok, &kinds[*count]) != FNET_OK)
            cli_die(2, "--optims",
                    "expected adam, sgd, momentum, rmsprop, lbfgs, cg, adamw or nesterov, got '%s'",
                    tok);
        (*count)++;
    }
    if (*count == 0)
        cli_die(2, "--optims", "no optimizer named");
}

// Network names: "seed", "wide", or a spec; the file-name-safe label used in plot names.
static const char *net_spec(const char *name)
{
    if (strcmp(name, "seed") == 0)
        return SEED_SPEC;
    if (strcmp(name, "wide") == 0)
        return WIDE_SPEC;
    return name;
}

static void net_label(const char *name, int index, char *out, size_t cap)
{
    if (strcmp(name, "seed") == 0 || strcmp(name, "wide") == 0)
        snprintf(out, cap, "%s", name);
    else
        snprintf(out, cap, "net%d", index + 1);
}

// The gnuplot script for one network: four panels (test accuracy and training loss against
// time and against per-sample gradient evaluations), PNG (pngcairo, else png) and SVG.
static void write_plot_script(const char *dat, const char *out, const char *title,
                              const char *const *names, int count, double target)
{
    FILE *f = plot_script_open(out, 1400, 1000);
    fprintf(f,
            "  # fnet-optim: %s. Columns of %s: train seconds, gradient evaluations, epochs of\n"
            "  # per-sample gradients, test accuracy, test loss, training loss; one block per\n"
            "  # optimizer.\n",
            title, dat);
    fprintf(f, "  names = \"");
    for (int i = 0; i < count; i++)
        fprintf(f, "%s%s", i ? " " : "", names[i]);
    fprintf(f, "\"\n");
    fprintf(f, "  target = %g\n", target);
    fprintf(f,
            "  set multiplot layout 2,2 title \"%s\"\n"
            "  set grid\n"
            "  set key bottom right\n"
            "  set ylabel \"test accuracy\"\n"
            "  set yrange [0.6:0.92]\n"
            "  set xlabel \"training time (s)\"\n"
            "  set arrow 1 from graph 0, first target to graph 1, first target nohead dt 2\n"
            "  plot for [i=0:words(names)-1] \"%s\" index i using 1:4 with lines lw 2 "
            "title word(names, i+1)\n"
            "  set xlabel \"gradient evaluations (epochs of per-sample gradients)\"\n"
            "  plot for [i=0:words(names)-1] \"%s\" index i using 3:4 with lines lw 2 "
            "title word(names, i+1)\n"
            "  unset arrow 1\n"
            "  set yrange [*:*]\n"
            "  set logscale y\n"
            "  set key top right\n"
            "  set ylabel \"training loss (running mean)\"\n"
            "  set xlabel \"training time (s)\"\n"
            "  plot for [i=0:words(names)-1] \"%s\" index i using 1:6 with lines lw 2 "
            "title word(names, i+1)\n"
            "  set xlabel \"gradient evaluations (epochs of per-sample gradients)\"\n"
            "  plot for [i=0:words(names)-1] \"%s\" index i using 3:6 with lines lw 2 "
            "title word(names, i+1)\n"
            "  unset logscale y\n"
            "  unset multiplot\n",
            title, dat, dat, dat, dat);
    plot_script_close(f, out);
}

int main(int argc, char **argv)
{
    cli_init("fnet-optim", usage);
    struct config c = {
        .data = cli_default_data(),
        .seconds = 30.0,
        .target = 0.85,
        .eval_every = 0.0,
        .epochs = 50,
        .batch = 32,
        .solver_batch = -1,
        .iters = 0,
        .history = 10,
        .ls = FNET_LINESEARCH_MORE_THUENTE,
        .beta = FNET_CG_PR_PLUS,
        .seed = 1,
    };
    const char *nets[MAX_NETS];
    int n_nets = 0;
    const char *optims = "adam,sgd,momentum,rmsprop,lbfgs,cg";
    const char *json_path = "fnet-optim.jsonl", *plot = "fnet-optim";
    int64_t threads = 0;

    struct cli_args a = {.argc = argc, .argv = argv, .i = 1};
    const char *o, *v;
    while ((o = cli_next(&a, takes_value, &v)) != NULL) {
        if (strcmp(o, "--network") == 0) {
            if (n_nets >= MAX_NETS)
                cli_die(2, o, "at most %d networks", MAX_NETS);
            nets[n_nets++] = v;
        } else if (strcmp(o, "--optims") == 0) {
            optims = v;
        } else if (strcmp(o, "--seconds") == 0) {
            c.seconds = cli_double(o, v, 0.01, 1e7);
        } else if (strcmp(o, "--epochs") == 0) {
            c.epochs = cli_int(o, v, 1, 1000000);
        } else if (strcmp(o, "--target") == 0) {
            c.target = cli_double(o, v, 0.0, 1.0);
        } else if (strcmp(o, "--stop-at-target") == 0) {
            c.stop_at_target = true;
        } else if (strcmp(o, "--reset-history") == 0) {
            c.reset_history = true;
        } else if (strcmp(o, "--eval-every") == 0) {
            c.eval_every = cli_double(o, v, 1e-3, 1e7);
        } else if (strcmp(o, "--batch") == 0) {
            c.batch = cli_int(o, v, 1, (int64_t)1 << 31);
        } else if (strcmp(o, "--solver-batch") == 0) {
            c.solver_batch = cli_int(o, v, 0, (int64_t)1 << 31);
        } else if (strcmp(o, "--iters-per-batch") == 0) {
            c.iters = (int)cli_int(o, v, 1, 1000000);
        } else if (strcmp(o, "--history") == 0) {
            c.history = (int)cli_int(o, v, 1, 100000);
        } else if (strcmp(o, "--line-search") == 0) {
            if (fnet_line_search_parse(v, &c.ls) != FNET_OK)
                cli_die(2, o, "expected morethuente, armijo, wolfe or strongwolfe, got '%s'", v);
        } else if (strcmp(o, "--cg-beta") == 0) {
            if (fnet_cg_beta_parse(v, &c.beta) != FNET_OK)
                cli_die(2, o, "expected pr+, fr, hs or dy, got '%s'", v);
        } else if (strcmp(o, "--data") == 0) {
            c.data = v;
        } else if (strcmp(o, "--limit-train") == 0) {
            c.limit = cli_int(o, v, 1, INT64_MAX);
        } else if (strcmp(o, "--seed") == 0) {
            c.seed = (uint64_t)cli_int(o, v, 0, INT64_MAX);
        } else if (strcmp(o, "--threads") == 0) {
            threads = cli_int(o, v, 1, 1024);
        } else if (strcmp(o, "--json") == 0) {
            json_path = v;
        } else if (strcmp(o, "--plot") == 0) {
            plot = v;
        } else {
            cli_die(2, o, "unknown option (see --help)");
        }
    }
    if (n_nets == 0)
        nets[n_nets++] = "seed";
    fnet_optim_kind kinds[MAX_OPTIMS];
    int n_kinds = 0;
    parse_optims(optims, kinds, &n_kinds);
    for (int k = 0; k < n_kinds; k++)
        if (kinds[k] == FNET_OPTIM_CG && (c.ls == FNET_LINESEARCH_ARMIJO ||
                                          c.ls == FNET_LINESEARCH_WOLFE))
            cli_die(2, "--line-search", "cg needs a strong Wolfe line search (morethuente or "
                    "strongwolfe)");
    if (c.eval_every == 0.0)
        c.eval_every = c.seconds / 120.0;
    bool plotting = strcmp(plot, "-") != 0;
    if (strlen(plot) > 900)
        cli_die(2, "--plot", "the prefix is too long");

    fnet_ctx *ctx = cli_ctx("cpu", (int)threads, false);
    char where[1200];
    fnet_dataset *train = NULL, *test = NULL;
    snprintf(where, sizeof(where), "--data %s", c.data);
    cli_check(ctx, fnet_dataset_load_idx(ctx, c.data, FNET_SPLIT_TRAIN, &train), where);
    cli_check(ctx, fnet_dataset_load_idx(ctx, c.data, FNET_SPLIT_TEST, &test), where);
    if (c.limit > 0 && c.limit < fnet_dataset_size(train)) {
        fnet_dataset *sub = NULL;
        cli_check(ctx, fnet_dataset_subset(train, c.limit, &sub), "--limit-train");
        fnet_dataset_free(train);
        train = sub;
    }
    FILE *json = strcmp(json_path, "-") == 0 ? NULL : cli_json_open(json_path);
    printf("fnet-optim: %lld training, %lld test samples; %d threads; budget %.0f s and %lld "
           "epochs a run; target test accuracy %.3f\n",
           (long long)fnet_dataset_size(train), (long long)fnet_dataset_size(test),
           fnet_ctx_threads(ctx), c.seconds, (long long)c.epochs, c.target);
    fflush(stdout);

    for (int ni = 0; ni < n_nets; ni++) {
        const char *spec = net_spec(nets[ni]);
        char label[32], dat_path[1100], gp_path[1100], out_prefix[1000];
        net_label(nets[ni], ni, label, sizeof(label));
        FILE *dat = NULL;
        if (plotting) {
            snprintf(out_prefix, sizeof(out_prefix), "%s-%s", plot, label);
            snprintf(dat_path, sizeof(dat_path), "%s.dat", out_prefix);
            snprintf(gp_path, sizeof(gp_path), "%s.gp", out_prefix);
            dat = cli_fopen_out(dat_path, "w");
            if (dat == NULL)
                cli_die(1, dat_path, "cannot write the plot data: %s", strerror(errno));
        }
        struct run runs[MAX_OPTIMS];
        const char *names[MAX_OPTIMS];
        int64_t params = 0;
        cli_signals_install(); // SIGINT/SIGTERM: the run in progress ends, then the program
        for (int k = 0; k < n_kinds; k++) {
            fnet_model *m = NULL;
            cli_check_usage(ctx, fnet_model_create_from_spec(ctx, spec, fnet_dataset_dim(train),
                                                             c.seed, &m),
                            "--network");
            if (fnet_dataset_classes(train) > fnet_model_n_out(m))
                cli_die(1, "--network", "the data has %lld classes but %s has %lld outputs",
                        (long long)fnet_dataset_classes(train), spec,
                        (long long)fnet_model_n_out(m));
            params = fnet_model_num_params(m);
            names[k] = fnet_optim_kind_name(kinds[k]);
            struct run *r = &runs[k];
            *r = (struct run){
                .cfg = &c, .m = m, .test = test, .json = json, .dat = dat, .net = label,
                .spec = spec, .optim = names[k], .n_train = fnet_dataset_size(train),
                .t_target = NAN, .e_target = NAN, .s_target = NAN, .seg_start = now(),
            };
            if (k > 0 && dat)
                fprintf(dat, "\n\n");
            if (dat)
                fprintf(dat, "# %s\n", names[k]);
            printf("%s %s (%lld parameters), %s\n", label, spec, (long long)params, names[k]);
            fflush(stdout);
            record(ctx, r); // the starting point, at time 0
            bool solver = kinds[k] == FNET_OPTIM_LBFGS || kinds[k] == FNET_OPTIM_CG;
            if (solver)
                train_solver(ctx, r, kinds[k], train);
            else
                train_first_order(ctx, r, kinds[k], train);
            run_resume(r);
            record(ctx, r); // the last point
            run_pause(r);
            cli_progress_clear();
            printf("  test accuracy %.4f after %.1f s, %lld gradient evaluations\n", r->last_acc,
                   r->train_s, (long long)r->evals);
            fflush(stdout);
            if (json) {
                fputc('{', json);
                cli_json_string(json, "event", "final", false);
                cli_json_string(json, "network", label, false);
                cli_json_string(json, "model", spec, false);
                cli_json_string(json, "optim", names[k], false);
                cli_json_number(json, "params", (double)params, false);
                cli_json_number(json, "test_acc", r->last_acc, false);
                cli_json_number(json, "test_loss", r->last_loss, false);
                cli_json_number(json, "best_test_acc", r->best_acc, false);
                cli_json_number(json, "train_seconds", r->train_s, false);
                cli_json_number(json, "samples_per_s",
                                r->train_s > 0 ? (double)r->samples / r->train_s : 0.0, false);
                cli_json_number(json, "evals", (double)r->evals, false);
                cli_json_number(json, "epochs", (double)r->samples / (double)r->n_train, false);
                cli_json_number(json, "target", c.target, false);
                cli_json_number(json, "seconds_to_target", r->t_target, false);
                cli_json_number(json, "evals_to_target", r->e_target, false);
                cli_json_number(json, "epochs_to_target", r->s_target, false);
                cli_json_number(json, "peak_rss_mb", cli_peak_rss_mb(), true);
            }
            fnet_model_free(m);
            r->m = NULL;
            if (cli_signal_received())
                cli_exit_interrupted("the results of the runs so far are written", NULL);
        }
        // the table: time and evaluations to the target, side by side
        printf("\n%s (%s, %lld parameters): time to test accuracy %.3f (training time, test "
               "evaluations excluded; one evaluation every %.3g s)\n",
               label, spec, (long long)params, c.target, c.eval_every);
        printf("  %-9s %12s %16s %12s %10s %10s %10s %12s\n", "optim", "seconds", "grad evals",
               "epochs", "best acc", "final acc", "train s", "grad evals");
        for (int k = 0; k < n_kinds; k++) {
            const struct run *r = &runs[k];
            char ts[32], es[32], ss[32];
            if (r->reached) {
                snprintf(ts, sizeof(ts), "%.2f", r->t_target);
                snprintf(es, sizeof(es), "%.0f", r->e_target);
                snprintf(ss, sizeof(ss), "%.2f", r->s_target);
            } else {
                snprintf(ts, sizeof(ts), "not reached");
                snprintf(es, sizeof(es), "-");
                snprintf(ss, sizeof(ss), "-");
            }
            printf("  %-9s %12s %16s %12s %10.4f %10.4f %10.1f %12lld\n", names[k], ts, es, ss,
                   r->best_acc, r->last_acc, r->train_s, (long long)r->evals);
        }
        printf("\n");
        if (dat && fclose(dat) != 0)
            cli_die(1, dat_path, "cannot write the plot data");
        if (plotting) {
            char title[1200];
            snprintf(title, sizeof(title), "%s: %s on Fashion-MNIST", label, spec);
            write_plot_script(dat_path, out_prefix, title, names, n_kinds, c.target);
            if (plot_draw(out_prefix))
                printf("plot: %s.png, %s.svg (data %s, script %s)\n", out_prefix, out_prefix,
                       dat_path, gp_path);
        }
        fflush(stdout);
    }
    cli_json_close(json, json_path);
    fnet_dataset_free(test);
    fnet_dataset_free(train);
    fnet_ctx_free(ctx);
    return 0;
}
