/* fnet-train: train and evaluate one model on an IDX dataset (docs/design.md, "Checkpoints and
 * the command line"); --save/--load write and resume safetensors checkpoints. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"
#include "resume.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// --help: two literals (C caps one at 4095 characters), joined in main
static const char usage_train[] =
    "usage: fnet-train --model SPEC [options]\n"
    "\n"
    "Under mpirun -np P (or srun) it runs data-parallel: each batch split across the ranks,\n"
    "rank 0 printing and writing the files (docs/distributed.md).\n"
    "\n"
    "Train a model on an IDX dataset (Fashion-MNIST by default) and evaluate it on the test set.\n"
    "\n"
    "  --model SPEC        layers, comma-separated: dense:N, tt:N:rank=R, lowrank:N:rank=R,\n"
    "                      circ:N:block=B, sparse:N:density=D, relu, tanh, sigmoid, dropout:P\n"
    "                      (e.g. dense:64,relu,dense:32,relu,dense:10); optional with --load\n"
    "  --data DIR          IDX files {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]\n"
    "                      (default $FNET_DATA, then /usr/share/datasets/fashion-mnist)\n"
    "  --optim NAME        adam (default), adamw, sgd, momentum, nesterov, rmsprop, or the\n"
    "                      solvers lbfgs, cg (a line search picks every step: no --lr)\n"
    "  --lr X              learning rate (default 1e-3 for adam/adamw/rmsprop, 1e-2 others)\n"
    "  --momentum X        momentum of momentum/nesterov (default 0.9)\n"
    "  --weight-decay X    AdamW's decoupled decay (default 0.01 for adamw)\n"
    "  --schedule NAME     constant (default), step, cosine\n"
    "  --step-epochs N     step schedule: epochs between decays (default 10)\n"
    "  --gamma X           step schedule: decay factor (default 0.1)\n"
    "  --batch N           minibatch size, 0 = full batch (default 32; 10000 for lbfgs, cg)\n"
    "  --iters-per-batch K lbfgs, cg: solver iterations on each minibatch, or per epoch with\n"
    "                      --batch 0 (default 10)\n"
    "  --history M         lbfgs: correction pairs kept (default 10)\n"
    "  --line-search NAME  lbfgs, cg: morethuente (default), armijo, wolfe, strongwolfe\n"
    "                      (cg: morethuente or strongwolfe)\n"
    "  --cg-beta NAME      cg: pr+ (default), fr, hs, dy\n"
    "  --epochs N          epochs (default 10); 0 with --load only evaluates\n"
    "  --val-split F       fraction of the training set held out for validation (default 0)\n"
    "  --limit-train N     use only the first N training samples\n"
    "  --seed N            seed of initialization, split and shuffling (default 1)\n"
    "  --threads N         worker threads: GEMMs, element-wise work, TT chunks (default: the\n"
    "                      number of cores, shared by the ranks of a job on one machine)\n"
    "  --l1 X, --l2 X      L1 and L2 penalties on the weights (default 0)\n"
    "  --fro-decay X       Frobenius decay X/2·‖U·V‖²_F of every low-rank layer, in factored\n"
    "                      form (default 0)\n"
    "  --loss ce|mse       softmax cross-entropy (default) or squared error\n"
    "  --init NAME         glorot (default), glorot-normal, he, normal, uniform\n"
    "  --device DEV        cpu (default), reference, guarded (the test backend whose memory\n"
    "                      faults when touched from outside its ops; slow), cuda[:K]\n"
    "  --on-nan POLICY     stop (default): a NaN/Inf loss ends the run with an error; rollback:\n"
    "                      restore the start of the epoch, halve the learning rate, run it again\n"
    "  --max-rollbacks N   rollback: at most N in a run (default 3)\n"
    "  --tt-round-every E  rank-adaptive training: re-round the TT layers every E epochs, which\n"
    "                      shrinks their ranks for real (default 0: never)\n"
    "  --tt-eps X          rounding accuracy, relative Frobenius error (default 0.1)\n"
    "  --tt-max-rank R     rounding rank cap (default 0: none)\n"
    ;
static const char usage_prune[] =
    "  --prune S           magnitude pruning to sparsity S in [0, 1) of the weights (not biases)\n"
    "  --prune-scope NAME  global (default: one threshold over all layers) or layer\n"
    "  --prune-schedule S  iterative (default: train, then K rounds of prune and retrain; Han\n"
    "                      et al.), oneshot (train, prune, fine-tune), gradual (prune while\n"
    "                      training on Zhu & Gupta's cubic schedule, then fine-tune)\n"
    "  --prune-rounds K    iterative: rounds (default 3)\n"
    "  --finetune-epochs E epochs of retraining after each prune (default 2)\n"
    "  --finetune-lr-scale X  retraining rate = lr times X (default 0.3)\n"
    "  --prune-every N     gradual: steps between prunings (default 100)\n"
    "  --prune-structured  remove whole neurons of the hidden dense layers (S of each layer's\n"
    "                      neurons): the layers shrink, nothing is masked\n"
    "  --sparse-update U   sparse:N:density=D layers: static (default), set (drop the smallest\n"
    "                      weights, regrow at random; Mocanu et al.), rigl (regrow where the\n"
    "                      gradient is largest; Evci et al.)\n"
    "  --sparse-zeta X     fraction of each sparse layer's weights dropped per update (0.3)\n"
    "  --sparse-every N    steps between updates (default 0: at the end of every epoch)\n"
    "  --sparse-end F      no updates after this fraction of the steps (default 0.75)\n"
    "  --save-sparse       with --save: store every dense layer more than half zero (pruned)\n"
    "                      as a CSR sparse layer (smaller; faster below about 15-40% density);\n"
    "                      that checkpoint holds the model only, no run to --resume\n"
    "  --load FILE         start a new run from a checkpoint's model (its spec and weights, and\n"
    "                      the optimizer's state when it is of the same kind)\n"
    "  --save FILE         the run's checkpoint, written at the end (atomic: temporary file,\n"
    "                      rename) and on SIGINT/SIGTERM: the model, the optimizer's or solver's\n"
    "                      state and where the run stands, so --resume continues it exactly\n"
    "  --save-every E      also write it after every E epochs\n"
    "  --save-every-seconds S  also write it after the first step S seconds after the last\n"
    "  --keep K            also keep the K newest as numbered files beside it, removing\n"
    "                      older ones: w.safetensors gives w.e<E>[s<S>].safetensors (E epochs\n"
    "                      done, S steps of the next), w.st gives w.st.e<E>[s<S>]\n"
    "  --resume FILE       continue the run saved in FILE up to its --epochs (the run's total;\n"
    "                      give a larger one to extend it), with the options it was started with;\n"
    "                      options given again must agree, except --epochs, --threads, --device,\n"
    "                      --tf32, --data, --json (appended to), --save*, --keep,\n"
    "                      --predictions. The\n"
    "                      same threads and device give the same bits as an uninterrupted run\n"
    "  --json FILE         JSON lines: one object per epoch and a final one\n"
    "  --predictions FILE  the predicted class (argmax of the model's output) of every test\n"
    "                      image, one per line, in the test set's order (atomic, as --save)\n"
    "  --help, --version\n"
    "\n"
    "Exit status: 0 success, 1 runtime error, 2 bad usage.\n";

// The options of a run, stored in its checkpoints for --resume: metadata "fnet-train.--lr", ...
#define RECORD_PREFIX "fnet-train."

// Options that take a value; every other option is a flag (and an unknown one is reported as
// unknown by the option loop, not as missing its value).
static bool takes_value(const char *opt)
{
    static const char *const with_value[] = {
        "--model", "--data", "--optim", "--lr", "--momentum", "--weight-decay", "--schedule",
        "--step-epochs", "--gamma", "--batch", "--epochs", "--val-split", "--limit-train", "--seed",
        "--threads", "--l1", "--l2", "--fro-decay", "--loss", "--init", "--device", "--load", "--save", "--json",
        "--iters-per-batch", "--history", "--line-search", "--cg-beta", "--tt-round-every",
        "--tt-eps", "--tt-max-rank", "--on-nan", "--max-rollbacks", "--prune", "--prune-scope",
        "--prune-schedule", "--prune-rounds", "--finetune-epochs", "--finetune-lr-scale",
        "--prune-every", "--sparse-update", "--sparse-zeta", "--sparse-every", "--sparse-end",
        "--predictions", "--save-every", "--save-every-seconds", "--keep", "--resume"};
    for (size_t i = 0; i < sizeof(with_value) / sizeof(with_value[0]); i++)
        if (strcmp(opt, with_value[i]) == 0)
            return true;
    return false;
}

struct run {
    struct cli_progress bar; // first: the progress callback reads it from the same pointer
    FILE *json;
    bool tty;
    fnet_model *m;
    double flops; // of one training sample in this epoch: 3 forward passes' (cli_model_flops)
    int64_t batch;
};
// the trainer hands on_batch the pointer it hands on_epoch; cli_progress reads its bar from it
_Static_assert(offsetof(struct run, bar) == 0, "struct run must begin with its progress bar");

// The ranks of every TT layer, "8x8x8 6x4" (empty when there is none).
static void tt_ranks(fnet_model *m, char *buf, size_t cap)
{
    size_t pos = 0;
    buf[0] = '\0';
    for (int i = 0; m != NULL && i < fnet_model_num_layers(m); i++) {
        fnet_tt_info info;
        if (fnet_layer_kind_of(fnet_model_layer(m, i)) != FNET_LAYER_TT ||
            fnet_tt_layer_info(fnet_model_layer(m, i), 1, &info) != FNET_OK)
            continue;
        for (int k = 1; k < info.d && pos + 24 < cap; k++)
            pos += (size_t)snprintf(buf + pos, cap - pos, "%s%lld", k == 1 ? (pos ? " " : "") : "x",
                                    (long long)info.ranks[k]);
    }
}

static int on_epoch(const fnet_epoch_info *e, void *user)
{
    struct run *r = user;
    cli_progress_epoch(&r->bar, e->epoch, e->epochs);
    // the validation figures only with a validation set; the learning rate only when there is
    // one (a solver's line search picks its steps)
    char val[64] = "", lr[32] = "";
    if (!isnan(e->val_loss))
        snprintf(val, sizeof(val), "  val_loss %.4f  val_acc %.4f", e->val_loss, e->val_acc);
    if (!isnan(e->lr))
        snprintf(lr, sizeof(lr), "  lr %.3g", e->lr);
    printf("epoch %2d/%d  loss %.4f%s%s  %.1fs  %.0f samples/s  %.3g TFLOP/s\n", e->epoch,
           e->epochs, e->train_loss, val, lr, e->seconds, e->samples_per_s,
           r->flops * e->samples_per_s / 1e12);
    char ranks[256];
    tt_ranks(r->m, ranks, sizeof(ranks));
    if (ranks[0])
        printf("           tt ranks %s  params %lld\n", ranks, (long long)e->params);
    fflush(stdout);
    FILE *f = r->json;
    if (f) {
        fputc('{', f);
        cli_json_string(f, "event", "epoch", false);
        cli_json_number(f, "epoch", e->epoch, false);
        cli_json_number(f, "train_loss", e->train_loss, false);
        cli_json_number(f, "val_loss", e->val_loss, false);
        cli_json_number(f, "val_acc", e->val_acc, false);
        cli_json_number(f, "lr", e->lr, false);
        cli_json_number(f, "seconds", e->seconds, false);
        if (ranks[0]) {
            cli_json_string(f, "tt_ranks", ranks, false);
            cli_json_number(f, "params", (double)e->params, false);
        }
        cli_json_number(f, "samples_per_s", e->samples_per_s, false);
        cli_json_number(f, "tflops", r->flops * e->samples_per_s / 1e12, true);
    }
    // TT rounding and structured pruning change the model between epochs: the next one's flops
    if (r->m != NULL)
        r->flops = 3.0 * cli_model_flops(r->m, r->batch);
    return 0;
}

// The test set is run through the model in batches of this many, as fnet_model_evaluate does, so
// that --predictions are what test_acc scored (a TT layer's plan depends on the batch).
#define PREDICT_CHUNK 1024

// Index of the largest of z (K): the first one on ties, as the loss's count of correct answers.
static int64_t argmax(const float *z, int64_t K)
{
    int64_t best = 0;
    for (int64_t k = 1; k < K; k++)
        if (z[k] > z[best])
            best = k;
    return best;
}

// The predicted class of every sample of test, one per line in the set's order, into path: the
// model in evaluation mode, its logits copied to the host a batch at a time. A regular file (or a
// new one) is written to a temporary file in the same directory, flushed, synced and renamed, so
// that a failed write never leaves a partial FILE; anything else (/dev/stdout, a pipe) directly.
static void write_predictions(fnet_ctx *ctx, fnet_model *m, const fnet_dataset *test,
                              const char *path, const char *where)
{
    int64_t n = fnet_dataset_size(test), dim = fnet_dataset_dim(test), K = fnet_model_n_out(m);
    int64_t chunk = n < PREDICT_CHUNK ? n : PREDICT_CHUNK;
    void *x = NULL; // backend memory, as the model takes its input
    cli_check(ctx, fnet_backend_alloc(ctx, (size_t)(chunk * dim) * sizeof(float), &x), where);
    int32_t *labels = malloc((size_t)chunk * sizeof(int32_t));
    float *logits = malloc((size_t)(chunk * K) * sizeof(float));
    size_t len = strlen(path) + sizeof(".tmp.XXXXXX");
    char *tmp = malloc(len);
    if (labels == NULL || logits == NULL || tmp == NULL)
        cli_die(1, where, "out of memory for a batch of %lld", (long long)chunk);
    struct stat sb;
    bool direct = stat(path, &sb) == 0 && !S_ISREG(sb.st_mode);
    FILE *f = NULL;
    if (direct) {
        f = fopen(path, "w");
        if (f == NULL)
            cli_die(1, where, "%s", strerror(errno));
    } else {
        snprintf(tmp, len, "%s.tmp.XXXXXX", path);
        int fd = mkstemp(tmp);
        if (fd < 0)
            cli_die(1, where, "cannot create a temporary file beside it: %s", strerror(errno));
        f = fdopen(fd, "w");
        if (f == NULL) {
            int err = errno;
            close(fd);
            unlink(tmp);
            cli_die(1, where, "%s", strerror(err));
        }
    }
    fnet_model_set_training(m, false);
    fnet_status st = FNET_OK;
    for (int64_t first = 0; first < n && st == FNET_OK; first += chunk) {
        int64_t bs = n - first < chunk ? n - first : chunk;
        st = fnet_dataset_batch(test, NULL, first, bs, x, labels);
        if (st == FNET_OK)
            st = fnet_model_forward(m, x, bs, logits);
        for (int64_t r = 0; st == FNET_OK && r < bs; r++)
            fprintf(f, "%lld\n", (long long)argmax(logits + r * K, K));
    }
    int err = 0;
    errno = 0;
    if (st == FNET_OK && (fflush(f) != 0 || ferror(f) || (!direct && fsync(fileno(f)) != 0)))
        err = errno ? errno : EIO;
    if (fclose(f) != 0 && st == FNET_OK && err == 0)
        err = errno ? errno : EIO;
    if (!direct && st == FNET_OK && err == 0 && rename(tmp, path) != 0)
        err = errno;
    if (!direct && (st != FNET_OK || err != 0))
        unlink(tmp);
    free(tmp);
    free(logits);
    free(labels);
    fnet_backend_free(ctx, x);
    cli_check(ctx, st, where);
    if (err != 0)
        cli_die(1, where, "cannot write: %s", strerror(err));
}

static fnet_init parse_init(const char *s)
{
    if (strcmp(s, "glorot") == 0 || strcmp(s, "glorot-uniform") == 0)
        return FNET_INIT_GLOROT_UNIFORM;
    if (strcmp(s, "glorot-normal") == 0)
        return FNET_INIT_GLOROT_NORMAL;
    if (strcmp(s, "he") == 0)
        return FNET_INIT_HE;
    if (strcmp(s, "normal") == 0)
        return FNET_INIT_NORMAL;
    if (strcmp(s, "uniform") == 0)
        return FNET_INIT_UNIFORM;
    cli_die(2, "--init", "expected glorot, glorot-normal, he, normal or uniform, got '%s'", s);
}

int main(int argc, char **argv)
{
    static char usage[sizeof(usage_train) + sizeof(usage_prune)];
    snprintf(usage, sizeof(usage), "%s%s", usage_train, usage_prune);
    cli_init("fnet-train", usage);
    const char *spec = NULL, *data = cli_default_data(), *device = "cpu";
    const char *load = NULL, *save = NULL, *json_path = NULL, *optim = "adam";
    const char *predictions = NULL;
    const char *lr_s = NULL, *mom_s = NULL, *wd_s = NULL, *sched = NULL, *step_s = NULL,
               *gamma_s = NULL;
    int64_t batch = 32, epochs = 10, limit = 0, threads = 0;
    bool batch_set = false;
    const char *iters_s = NULL, *history_s = NULL, *ls_s = NULL, *beta_s = NULL;
    uint64_t seed = 1;
    int64_t tt_every = 0, tt_max_rank = 0, max_rollbacks = 3;
    fnet_nan_policy on_nan = FNET_NAN_STOP;
    double tt_eps = 0.1;
    double val_split = 0.0, l1 = 0.0, l2 = 0.0, fro = 0.0;
    fnet_loss loss = FNET_LOSS_CE;
    fnet_init init = FNET_INIT_GLOROT_UNIFORM;
    bool init_set = false;
    fnet_prune_params pp = fnet_prune_params_default();
    bool prune = false, save_sparse = false, prune_opts = false, sparse_opts = false;
    bool every_set = false, rounds_set = false, tf32 = false;
    fnet_sparse_update sparse_update = FNET_SPARSE_STATIC;
    double sparse_zeta = 0.3, sparse_end = 0.75;
    int64_t sparse_every = 0;

    const char *resume = NULL;
    int64_t save_every = 0, keep = 0;
    double save_every_seconds = 0.0;
    // with --resume, the options the run was started with come first (resume.h)
    static const char *const changeable[] = {
        "--epochs", "--threads", "--device", "--tf32", "--data", "--json", "--save",
        "--save-every",
        "--save-every-seconds", "--keep", "--predictions", "--save-sparse", NULL};
    struct run_args ra;
    run_args_build(&ra, RECORD_PREFIX, argc, argv, takes_value, changeable);
    struct run_record rec = {0}; // this run's options, for its checkpoints
    struct cli_args a = {.argc = ra.argc, .argv = ra.argv, .i = 1};
    const char *arg, *v;
    while ((arg = cli_next(&a, takes_value, &v)) != NULL) {
        const char *o = arg;
        if (strcmp(o, "--resume") != 0 && strcmp(o, "--load") != 0)
            run_record_add(&rec, RECORD_PREFIX, o, v);
        if (strcmp(o, "--resume") == 0) {
            resume = v;
        } else if (strcmp(o, "--save-every") == 0) {
            save_every = cli_int(o, v, 1, 1000000);
        } else if (strcmp(o, "--save-every-seconds") == 0) {
            save_every_seconds = cli_double(o, v, 1e-3, 1e9);
        } else if (strcmp(o, "--keep") == 0) {
            keep = cli_int(o, v, 1, 1000000);
        } else if (strcmp(o, "--model") == 0) {
            spec = v;
        } else if (strcmp(o, "--data") == 0) {
            data = v;
        } else if (strcmp(o, "--optim") == 0) {
            optim = v;
        } else if (strcmp(o, "--lr") == 0) {
            lr_s = v;
        } else if (strcmp(o, "--momentum") == 0) {
            mom_s = v;
        } else if (strcmp(o, "--weight-decay") == 0) {
            wd_s = v;
        } else if (strcmp(o, "--schedule") == 0) {
            sched = v;
        } else if (strcmp(o, "--step-epochs") == 0) {
            step_s = v;
        } else if (strcmp(o, "--gamma") == 0) {
            gamma_s = v;
        } else if (strcmp(o, "--batch") == 0) {
            batch = cli_int(o, v, 0, (int64_t)1 << 31);
            batch_set = true;
        } else if (strcmp(o, "--iters-per-batch") == 0) {
            iters_s = v;
        } else if (strcmp(o, "--history") == 0) {
            history_s = v;
        } else if (strcmp(o, "--line-search") == 0) {
            ls_s = v;
        } else if (strcmp(o, "--cg-beta") == 0) {
            beta_s = v;
        } else if (strcmp(o, "--epochs") == 0) {
            epochs = cli_int(o, v, 0, 1000000);
        } else if (strcmp(o, "--val-split") == 0) {
            val_split = cli_double(o, v, 0.0, 0.99);
        } else if (strcmp(o, "--limit-train") == 0) {
            limit = cli_int(o, v, 1, INT64_MAX);
        } else if (strcmp(o, "--seed") == 0) {
            seed = (uint64_t)cli_int(o, v, 0, INT64_MAX);
        } else if (strcmp(o, "--threads") == 0) {
            threads = cli_int(o, v, 1, 1024);
        } else if (strcmp(o, "--l1") == 0) {
            l1 = cli_double(o, v, 0.0, 1e6);
        } else if (strcmp(o, "--l2") == 0) {
            l2 = cli_double(o, v, 0.0, 1e6);
        } else if (strcmp(o, "--fro-decay") == 0) {
            fro = cli_double(o, v, 0.0, 1e6);
        } else if (strcmp(o, "--loss") == 0) {
            if (strcmp(v, "ce") == 0)
                loss = FNET_LOSS_CE;
            else if (strcmp(v, "mse") == 0)
                loss = FNET_LOSS_MSE;
            else
                cli_die(2, o, "expected ce or mse, got '%s'", v);
        } else if (strcmp(o, "--init") == 0) {
            init = parse_init(v);
            init_set = true;
        } else if (strcmp(o, "--device") == 0) {
            device = v;
        } else if (strcmp(o, "--tf32") == 0) {
            tf32 = true;
        } else if (strcmp(o, "--load") == 0) {
            load = v;
        } else if (strcmp(o, "--save") == 0) {
            save = v;
        } else if (strcmp(o, "--json") == 0) {
            json_path = v;
        } else if (strcmp(o, "--predictions") == 0) {
            predictions = v;
        } else if (strcmp(o, "--on-nan") == 0) {
            if (strcmp(v, "stop") == 0)
                on_nan = FNET_NAN_STOP;
            else if (strcmp(v, "rollback") == 0)
                on_nan = FNET_NAN_ROLLBACK;
            else
                cli_die(2, o, "expected stop or rollback, got '%s'", v);
        } else if (strcmp(o, "--max-rollbacks") == 0) {
            max_rollbacks = cli_int(o, v, 0, 1000);
        } else if (strcmp(o, "--prune") == 0) {
            pp.sparsity = cli_double(o, v, 0.0, 1.0);
            if (pp.sparsity >= 1.0)
                cli_die(2, o, "sparsity must be in [0, 1), got %s", v);
            prune = true;
        } else if (strcmp(o, "--prune-scope") == 0) {
            if (fnet_prune_scope_parse(v, &pp.scope) != FNET_OK)
                cli_die(2, o, "expected global or layer, got '%s'", v);
            prune_opts = true;
        } else if (strcmp(o, "--prune-schedule") == 0) {
            if (fnet_prune_schedule_parse(v, &pp.schedule) != FNET_OK)
                cli_die(2, o, "expected iterative, oneshot or gradual, got '%s'", v);
            prune_opts = true;
        } else if (strcmp(o, "--prune-rounds") == 0) {
            pp.rounds = (int)cli_int(o, v, 1, 1000);
            prune_opts = rounds_set = true;
        } else if (strcmp(o, "--finetune-epochs") == 0) {
            pp.finetune_epochs = (int)cli_int(o, v, 0, 100000);
            prune_opts = true;
        } else if (strcmp(o, "--finetune-lr-scale") == 0) {
            pp.finetune_lr_scale = (float)cli_double(o, v, 1e-9, 1e6);
            prune_opts = true;
        } else if (strcmp(o, "--prune-every") == 0) {
            pp.gradual_every = cli_int(o, v, 1, (int64_t)1 << 40);
            prune_opts = every_set = true;
        } else if (strcmp(o, "--prune-structured") == 0) {
            pp.structured = true;
            prune_opts = true;
        } else if (strcmp(o, "--save-sparse") == 0) {
            save_sparse = true;
        } else if (strcmp(o, "--sparse-update") == 0) {
            if (fnet_sparse_update_parse(v, &sparse_update) != FNET_OK)
                cli_die(2, o, "expected static, set or rigl, got '%s'", v);
        } else if (strcmp(o, "--sparse-zeta") == 0) {
            sparse_zeta = cli_double(o, v, 0.0, 1.0);
            sparse_opts = true;
        } else if (strcmp(o, "--sparse-every") == 0) {
            sparse_every = cli_int(o, v, 0, (int64_t)1 << 40);
            sparse_opts = true;
        } else if (strcmp(o, "--sparse-end") == 0) {
            sparse_end = cli_double(o, v, 1e-9, 1.0);
            sparse_opts = true;
        } else if (strcmp(o, "--tt-round-every") == 0) {
            tt_every = cli_int(o, v, 0, 1000000);
        } else if (strcmp(o, "--tt-eps") == 0) {
            tt_eps = cli_double(o, v, 0.0, 1.0);
        } else if (strcmp(o, "--tt-max-rank") == 0) {
            tt_max_rank = cli_int(o, v, 0, (int64_t)1 << 31);
        } else {
            cli_die(2, o, "unknown option (see --help)");
        }
    }
    if (spec == NULL && load == NULL && resume == NULL)
        cli_die(2, "--model", "a model spec is required (or --load FILE, or --resume FILE)");
    if ((save_every > 0 || save_every_seconds > 0.0 || keep > 0) && save == NULL)
        cli_die(2, save_every > 0 ? "--save-every" : save_every_seconds > 0.0 ?
                "--save-every-seconds" : "--keep", "needs --save FILE, the checkpoint to write");
    if (resume && epochs == 0)
        cli_die(2, "--resume", "a resumed run trains (--epochs is the run's total); evaluate a "
                "checkpoint with --load FILE --epochs 0");
    if ((resume || save_every > 0 || save_every_seconds > 0.0) && (prune || sparse_update !=
                                                                   FNET_SPARSE_STATIC))
        cli_die(2, resume ? "--resume" : "--save-every", "runs with --prune or --sparse-update "
                "set|rigl cannot be resumed yet (their schedules' state is not checkpointed); "
                "--save writes their model at the end");
    if (epochs == 0 && load == NULL)
        cli_die(2, "--epochs", "0 epochs only makes sense with --load (evaluation)");
    if (prune_opts && !prune)
        cli_die(2, "--prune", "the --prune-* and --finetune-* options need --prune S");
    if (prune && epochs == 0)
        cli_die(2, "--prune", "pruning needs training epochs (--epochs >= 1)");
    if (prune && pp.structured && pp.schedule == FNET_PRUNE_GRADUAL)
        cli_die(2, "--prune-structured", "structured pruning runs with the oneshot or iterative "
                "schedule, not gradual");
    if (save_sparse && save == NULL)
        cli_die(2, "--save-sparse", "needs --save FILE");
    if (sparse_update == FNET_SPARSE_STATIC && sparse_opts)
        cli_die(2, "--sparse-update", "--sparse-zeta, --sparse-every and --sparse-end need "
                "--sparse-update set or rigl");
    if (prune && pp.schedule != FNET_PRUNE_GRADUAL && every_set)
        cli_die(2, "--prune-every", "is for --prune-schedule gradual");
    if (prune && pp.schedule != FNET_PRUNE_ITERATIVE && rounds_set)
        cli_die(2, "--prune-rounds", "is for --prune-schedule iterative");

    fnet_optim_kind kind;
    if (fnet_optim_kind_parse(optim, &kind) != FNET_OK)
        cli_die(2, "--optim",
                "expected adam, adamw, sgd, momentum, nesterov, rmsprop, lbfgs or cg, got '%s'",
                optim);
    const bool solver = kind == FNET_OPTIM_LBFGS || kind == FNET_OPTIM_CG;
    fnet_optim_params op = fnet_optim_params_default(kind);
    if (solver) {
        if (lr_s || mom_s || wd_s || sched || step_s || gamma_s)
            cli_die(2, "--optim", "%s takes no learning rate, momentum, decay or schedule: its "
                    "line search picks every step", optim);
        if (!batch_set)
            batch = 10000; // large fixed minibatches (Le et al. 2011)
    } else if (iters_s || history_s || ls_s || beta_s) {
        cli_die(2, "--optim", "--iters-per-batch, --history, --line-search and --cg-beta are for "
                "lbfgs and cg, not %s", optim);
    }
    if (iters_s)
        op.iters_per_batch = (int)cli_int("--iters-per-batch", iters_s, 1, 1000000);
    if (history_s) {
        if (kind != FNET_OPTIM_LBFGS)
            cli_die(2, "--history", "only lbfgs keeps a history");
        op.history = (int)cli_int("--history", history_s, 1, 100000);
    }
    if (ls_s && fnet_line_search_parse(ls_s, &op.line_search) != FNET_OK)
        cli_die(2, "--line-search", "expected morethuente, armijo, wolfe or strongwolfe, got '%s'",
                ls_s);
    if (kind == FNET_OPTIM_CG && (op.line_search == FNET_LINESEARCH_ARMIJO ||
                                  op.line_search == FNET_LINESEARCH_WOLFE))
        cli_die(2, "--line-search", "cg needs a strong Wolfe line search (morethuente or "
                "strongwolfe), got '%s'", ls_s);
    if (beta_s) {
        if (kind != FNET_OPTIM_CG)
            cli_die(2, "--cg-beta", "only cg has a beta formula");
        if (fnet_cg_beta_parse(beta_s, &op.cg_beta) != FNET_OK)
            cli_die(2, "--cg-beta", "expected pr+, fr, hs or dy, got '%s'", beta_s);
    }
    if (lr_s)
        op.lr = (float)cli_double("--lr", lr_s, 1e-30, 1e6);
    if (mom_s)
        op.momentum = (float)cli_double("--momentum", mom_s, 0.0, 0.999999);
    if (wd_s)
        op.weight_decay = (float)cli_double("--weight-decay", wd_s, 0.0, 1e6);
    if (sched) {
        if (strcmp(sched, "constant") == 0)
            op.schedule = FNET_SCHEDULE_CONSTANT;
        else if (strcmp(sched, "step") == 0)
            op.schedule = FNET_SCHEDULE_STEP;
        else if (strcmp(sched, "cosine") == 0)
            op.schedule = FNET_SCHEDULE_COSINE;
        else
            cli_die(2, "--schedule", "expected constant, step or cosine, got '%s'", sched);
    }
    if (step_s)
        op.step_epochs = (int)cli_int("--step-epochs", step_s, 1, 1000000);
    if (gamma_s)
        op.gamma = (float)cli_double("--gamma", gamma_s, 1e-9, 1.0);

    char where[1200];
    if (predictions) {
        if (*predictions == '\0')
            cli_die(2, "--predictions", "an empty file name");
        cli_check_writable("--predictions", predictions);
    }
    fnet_ctx *ctx = cli_ctx(device, (int)threads, tf32);

    // data
    fnet_dataset *train_all = NULL, *test = NULL, *train = NULL, *val = NULL;
    snprintf(where, sizeof(where), "--data %s", data);
    cli_check(ctx, fnet_dataset_load_idx(ctx, data, FNET_SPLIT_TRAIN, &train_all), where);
    cli_check(ctx, fnet_dataset_load_idx(ctx, data, FNET_SPLIT_TEST, &test), where);
    if (limit > 0) {
        if (limit > fnet_dataset_size(train_all))
            limit = fnet_dataset_size(train_all);
        fnet_dataset *sub = NULL;
        cli_check(ctx, fnet_dataset_subset(train_all, limit, &sub), "--limit-train");
        fnet_dataset_free(train_all);
        train_all = sub;
    }
    if (val_split > 0.0) {
        cli_check(ctx, fnet_dataset_split(train_all, val_split, seed, &train, &val), "--val-split");
    } else {
        cli_check(ctx, fnet_dataset_subset(train_all, fnet_dataset_size(train_all), &train),
                  "training set");
    }
    int64_t n_in = fnet_dataset_dim(train_all);

    // model and optimizer
    fnet_model *m = NULL;
    if (resume) {
        // the run's model as it stands (TT rounding may have changed its ranks), checked against
        // the spec the run began with
        snprintf(where, sizeof(where), "--resume %s", resume);
        cli_check(ctx, fnet_model_load(ctx, resume, &m), where);
        const char *began = run_args_stored(&ra, RECORD_PREFIX "spec");
        if (spec != NULL && began != NULL) {
            fnet_model *given = NULL;
            cli_check_usage(ctx, fnet_model_create_from_spec(ctx, spec, n_in, seed, &given),
                            "--model");
            if (strcmp(fnet_model_spec(given), began) != 0)
                cli_die(2, "--model", "the run in %s trains '%s', not '%s'", resume, began,
                        fnet_model_spec(given));
            fnet_model_free(given);
        }
        if (fnet_model_n_in(m) != n_in)
            cli_die(1, where, "the checkpoint's model takes %lld inputs, the data has %lld",
                    (long long)fnet_model_n_in(m), (long long)n_in);
    } else if (spec) {
        cli_check_usage(ctx, fnet_model_create_from_spec(ctx, spec, n_in, seed, &m), "--model");
        if (init_set)
            cli_check(ctx, fnet_model_init(m, init, seed), "--init");
    } else {
        snprintf(where, sizeof(where), "--load %s", load);
        cli_check(ctx, fnet_model_load(ctx, load, &m), where);
        if (fnet_model_n_in(m) != n_in)
            cli_die(1, where, "the checkpoint's model takes %lld inputs, the data has %lld",
                    (long long)fnet_model_n_in(m), (long long)n_in);
    }
    cli_check(ctx, fnet_model_set_loss(m, loss), "--loss");
    cli_check(ctx, fnet_model_set_regularization(m, (float)l1, (float)l2), "--l1/--l2");
    cli_check(ctx, fnet_model_set_frobenius_decay(m, (float)fro), "--fro-decay");
    // the solvers are no optimizer object: fnet_train() runs them, and they keep no state
    fnet_optimizer *opt = NULL;
    if (!solver)
        cli_check(ctx, fnet_optimizer_create(ctx, &op, fnet_model_num_params(m), &opt),
                  "--optim/--lr");
    if (load && !resume) {
        snprintf(where, sizeof(where), "--load %s", load);
        // evaluation needs no optimizer state (and the file's may be of another optimizer), nor
        // does pruning (each of its phases starts an optimizer of its own)
        cli_check(ctx, fnet_model_load_params(m, epochs > 0 && !prune ? opt : NULL, load), where);
    }
    if (fnet_dataset_classes(train_all) > fnet_model_n_out(m))
        cli_die(1, "--model", "the data has %lld classes but the model has %lld outputs",
                (long long)fnet_dataset_classes(train_all), (long long)fnet_model_n_out(m));

    // the spec the run began with, and where it runs (a resume elsewhere is not bit-identical)
    if (resume) {
        const char *th = run_args_stored(&ra, RECORD_PREFIX "threads");
        const char *dev = run_args_stored(&ra, RECORD_PREFIX "backend");
        if ((th != NULL && atoi(th) != fnet_ctx_threads(ctx)) ||
            (dev != NULL && strcmp(dev, fnet_ctx_backend_name(ctx)) != 0))
            cli_warn("the run was trained on the %s backend with %s threads, this piece runs on "
                     "%s with %d: it goes on, but not bit for bit as an uninterrupted run would",
                     dev ? dev : "?", th ? th : "?", fnet_ctx_backend_name(ctx),
                     fnet_ctx_threads(ctx));
        run_record_add(&rec, RECORD_PREFIX, "spec", run_args_stored(&ra, RECORD_PREFIX "spec")
                                                        ? run_args_stored(&ra, RECORD_PREFIX "spec")
                                                        : fnet_model_spec(m));
    } else {
        run_record_add(&rec, RECORD_PREFIX, "spec", fnet_model_spec(m));
    }
    char threads_s[24];
    snprintf(threads_s, sizeof(threads_s), "%d", fnet_ctx_threads(ctx));
    run_record_add(&rec, RECORD_PREFIX, "threads", threads_s);
    run_record_add(&rec, RECORD_PREFIX, "backend", fnet_ctx_backend_name(ctx));

    struct run r = {.json = resume ? cli_json_append(json_path) : cli_json_open(json_path),
                    .tty = cli_is_tty(), .m = m,
                    .flops = 3.0 * cli_model_flops(m, batch > 0 ? batch : 1),
                    .batch = batch > 0 ? batch : 1};
    char ranks[48] = ""; // data-parallel over a job's ranks (docs/distributed.md)
    if (fnet_dist_size(cli_job()) > 1)
        snprintf(ranks, sizeof(ranks), " each, %d ranks", fnet_dist_size(cli_job()));
    printf("model %s: %lld parameters; %lld training, %lld validation, %lld test samples; %s, %d "
           "threads%s\n", fnet_model_spec(m), (long long)fnet_model_num_params(m),
           (long long)fnet_dataset_size(train), (long long)(val ? fnet_dataset_size(val) : 0),
           (long long)fnet_dataset_size(test), fnet_ctx_backend_name(ctx), fnet_ctx_threads(ctx),
           ranks);
    fflush(stdout);

    if (resume) {
        // the schedule and TT rounding's last epoch follow the total: another one changes them
        const char *planned = run_args_stored(&ra, "run.epochs");
        if (planned != NULL && atoll(planned) != epochs &&
            (op.schedule != FNET_SCHEDULE_CONSTANT || tt_every > 0))
            cli_warn("the run was planned for %s epochs; with --epochs %lld its learning-rate "
                     "schedule and TT rounding follow the new total from here on", planned,
                     (long long)epochs);
        const char *b = run_args_stored(&ra, "run.batch");
        int e = atoi(run_args_stored(&ra, "run.epoch")) + 1;
        if (b != NULL && strcmp(b, "0") != 0)
            printf("resuming %s: in epoch %d of %lld, after step %s\n", resume, e,
                   (long long)epochs, b);
        else
            printf("resuming %s: at the start of epoch %d of %lld\n", resume, e,
                   (long long)epochs);
    }
    fflush(stdout);

    fnet_train_stats st = {0};
    bool saved = false; // the trainer wrote --save
    if (epochs > 0) {
        fnet_train_params tp = fnet_train_params_default();
        if (!prune) { // the pruning schedules make their own runs: saved at the end below
            tp.save_path = save;
            tp.save_every = (int)save_every;
            tp.save_every_seconds = save_every_seconds;
            tp.keep = (int)keep;
            tp.resume_path = resume;
            tp.meta = rec.meta;
            tp.n_meta = rec.n;
        }
        tp.stop = cli_stop_flag();
        cli_signals_install();
        tp.batch = batch;
        tp.epochs = (int)epochs;
        tp.seed = seed;
        tp.on_batch = r.tty ? cli_progress : NULL;
        cli_progress_begin(&r.bar, "training", (int)epochs);
        tp.tt_round_every = (int)tt_every;
        tp.tt_eps = tt_eps;
        tp.tt_max_rank = tt_max_rank;
        tp.on_nan = on_nan;
        tp.max_rollbacks = (int)max_rollbacks;
        fnet_sparse_schedule *ss = NULL;
        if (sparse_update != FNET_SPARSE_STATIC) {
            cli_check_usage(ctx, fnet_sparse_schedule_create(ctx, sparse_update, sparse_zeta,
                                                             sparse_every, sparse_end, train,
                                                             batch > 0 ? batch : 256, seed + 7,
                                                             &ss),
                            "--sparse-update");
            tp.on_step = fnet_sparse_step_hook;
            tp.step_user = ss;
        }
        fnet_status ts;
        if (prune) {
            // the schedule's phases each make their optimizer; structured pruning replaces m
            fnet_optimizer_free(opt);
            opt = NULL;
            r.m = NULL;
            ts = fnet_train_pruned(&m, &op, &tp, &pp, train, val, on_epoch, &r, &st);
        } else if (solver) {
            ts = fnet_train(m, &op, &tp, train, val, on_epoch, &r, &st);
        } else {
            ts = fnet_train_with(m, opt, &op, &tp, train, val, on_epoch, &r, &st);
        }
        cli_signals_uninstall(); // from here on a signal acts as it did before training
        if (cli_signal_received()) {
            // stopped (or finished just as the signal came): what is written stays
            cli_json_close(r.json, json_path);
            char hint[1200];
            snprintf(hint, sizeof(hint), "fnet-train --resume %s", tp.save_path);
            // SET/RigL runs write their checkpoint but cannot be resumed yet
            bool resumable = ts == FNET_ERR_CANCELLED && tp.save_path != NULL &&
                             sparse_update == FNET_SPARSE_STATIC;
            cli_exit_interrupted(ts == FNET_OK ? "the run had finished; its checkpoint is "
                                 "complete" : fnet_ctx_last_message(ctx),
                                 resumable ? hint : NULL);
        }
        cli_check(ctx, ts, prune ? "training with pruning" : "training");
        saved = tp.save_path != NULL;
        if (ss != NULL)
            printf("sparse topology: %d %s updates\n", fnet_sparse_schedule_updates(ss),
                   fnet_sparse_update_name(sparse_update));
        fnet_sparse_schedule_free(ss);
    }
    int64_t pruned = 0, prunable = 0;
    cli_check(ctx, fnet_model_pruned(m, &pruned, &prunable), "pruning mask");
    if (pruned > 0)
        printf("pruned %lld of %lld weights (%.2f%%)\n", (long long)pruned, (long long)prunable,
               100.0 * (double)pruned / (double)prunable);
    if (save_sparse) {
        // before the test: what is reported is the model that is saved, run by the CSR kernels
        int converted = 0;
        // CSR stores 8 bytes per entry against 4 per dense weight: worth it above half zero
        cli_check(ctx, fnet_model_sparsify(m, 0.5, &converted), "--save-sparse");
        fnet_optimizer_free(opt); // made for the dense layout
        opt = NULL;
        printf("saved sparse: %d dense layers stored as CSR; model %s, %lld parameters\n",
               converted, fnet_model_spec(m), (long long)fnet_model_num_params(m));
    }
    if (saved)
        printf("%d checkpoints written to %s in %.2f s (%.1f%% of the training time)\n",
               st.checkpoints, save, st.checkpoint_seconds,
               st.train_seconds > 0 ? 100.0 * st.checkpoint_seconds / st.train_seconds : 0.0);
    double test_acc = 0.0, test_loss = 0.0;
    cli_check(ctx, fnet_model_evaluate(m, test, &test_acc, &test_loss), "evaluating on the test set");
    double rss = cli_peak_rss_mb();
    printf("test_acc %.4f  test_loss %.4f  params %lld  train_seconds %.2f  samples_per_s %.0f  "
           "tflops %.3g  peak_rss_mb %.1f\n",
           test_acc, test_loss, (long long)fnet_model_num_params(m), st.train_seconds,
           st.samples_per_s, r.flops * st.samples_per_s / 1e12, rss);
    if (r.json) {
        fputc('{', r.json);
        cli_json_string(r.json, "event", "final", false);
        cli_json_string(r.json, "model", fnet_model_spec(m), false);
        cli_json_string(r.json, "optim", fnet_optim_kind_name(kind), false);
        cli_json_number(r.json, "params", (double)fnet_model_num_params(m), false);
        cli_json_number(r.json, "pruned", (double)pruned, false);
        cli_json_number(r.json, "sparsity", prunable ? (double)pruned / (double)prunable : 0.0,
                        false);
        cli_json_number(r.json, "test_acc", test_acc, false);
        cli_json_number(r.json, "test_loss", test_loss, false);
        cli_json_number(r.json, "train_seconds", st.train_seconds, false);
        cli_json_number(r.json, "samples_per_s", st.samples_per_s, false);
        cli_json_number(r.json, "tflops", r.flops * st.samples_per_s / 1e12, false);
        if (saved) {
            cli_json_number(r.json, "checkpoints", st.checkpoints, false);
            cli_json_number(r.json, "checkpoint_seconds", st.checkpoint_seconds, false);
        }
        cli_json_number(r.json, "peak_rss_mb", rss, true);
        cli_json_close(r.json, json_path);
    }
    if (save && (!saved || save_sparse) && cli_lead()) { // the trainer's checkpoint holds the run
        snprintf(where, sizeof(where), "--save %s", save);
        cli_check(ctx, fnet_model_save(m, opt, save), where);
    }
    if (predictions) { // after the save: a bad path found only now still keeps the checkpoint
        snprintf(where, sizeof(where), "--predictions %s", predictions);
        if (cli_lead()) // rank 0 writes the files
            write_predictions(ctx, m, test, predictions, where);
    }
    fnet_optimizer_free(opt);
    fnet_model_free(m);
    run_record_free(&rec);
    run_args_free(&ra);
    fnet_dataset_free(val);
    fnet_dataset_free(train);
    fnet_dataset_free(train_all);
    fnet_dataset_free(test);
    fnet_ctx_free(ctx);
    return 0;
}
