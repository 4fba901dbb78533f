/* fnet-compare: the study's harness. Train variants of a network (every compression, every
 * optimizer) on the same data, one after the other, for one or more seeds; evaluate each on the
 * test set and report against the first (the reference): parameters, compression, FLOPs,
 * training speed and time, accuracy, inference latency, checkpoint size; a table, CSV, JSON
 * lines and a plot. `make demo` runs it. Public API only. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"
#include "compare.h"
#include "plot.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// --help: two literals (C caps one at 4095 characters), joined in main
static const char usage_head[] =
    "usage: fnet-compare [options]\n"
    "\n"
    "Under mpirun -np P (or srun) it runs data-parallel: each batch split across the ranks,\n"
    "rank 0 printing and writing the files (docs/distributed.md).\n"
    "\n"
    "Train variants of a network one after the other on the same data, evaluate each on the\n"
    "test set and compare them with the first (the reference): parameters, compression, FLOPs,\n"
    "training samples/s and time, test accuracy, inference time, checkpoint size.\n"
    "\n"
    "  --variants LIST     built-in variants, comma-separated, or all (the default when no\n"
    "                      --model is given): dense (the wide network dense:1024,relu,\n"
    "                      dense:1024,relu,dense:10, the reference), tt (its middle layer\n"
    "                      tt:1024:rank=8), tr (" CMP_TR_LAYER "), tucker\n"
    "                      (" CMP_TUCKER_LAYER "), cp (" CMP_CP_LAYER "),\n"
    "                      lowrank (" CMP_LOWRANK_LAYER "), circ (" CMP_CIRC_LAYER "),\n"
    "                      pruned (the dense run pruned to 10%, iterative), sparse (middle\n"
    "                      layer at density 0.1 trained sparse with SET), lbfgs, cg (the dense\n"
    "                      network by the solvers: batch 2000, 3 (lbfgs) or 2 (cg) iterations\n"
    "                      per batch, epochs/10 epochs)\n"
    "  --model SPEC[;key=value...]\n"
    "                      a model of your own (repeatable), after the --variants ones; alone,\n"
    "                      the models only. Keys: name, optim, lr, batch, epochs, iters\n"
    "                      (lbfgs/cg), prune=S (then rounds=K, finetune=E), sparse-update=\n"
    "                      set|rigl; e.g. 'dense:1024,relu,tt:1024:rank=8,relu,dense:10;\n"
    "                      optim=cg;batch=2000;iters=3;epochs=2;name=tt-cg' (quote the ;)\n"
    "  --data DIR          IDX files {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]\n"
    "                      (default $FNET_DATA, then /usr/share/datasets/fashion-mnist)\n"
    "  --optim NAME        the recipe's optimizer: adam (default), adamw, sgd, momentum,\n"
    "                      nesterov, rmsprop, lbfgs, cg\n"
    "  --lr X              learning rate (default 1e-3 for adam/adamw/rmsprop, 1e-2 others)\n"
    "  --batch N           minibatch size (default 256)\n"
    "  --epochs N          epochs (default 10)\n";
static const char usage_tail[] =
    "  --seed N            first seed of initialization and shuffling (default 1)\n"
    "  --seeds N           repeat every variant with seeds seed..seed+N-1 and report mean ±\n"
    "                      standard deviation (default 1)\n"
    "  --limit-train N     use only the first N training samples\n"
    "  --fro-decay X       Frobenius decay X/2·‖U·V‖²_F of every low-rank layer (default 0)\n"
    "  --threads N         threads (default: the number of cores)\n"
    "  --device DEV        cpu (default), reference, guarded, cuda[:K]\n"
    "  --tf32              cuda: GEMMs on TF32 tensor cores (about 3e-4 relative error)\n"
    "  --json FILE         JSON lines: one object per variant and seed\n"
    "  --csv FILE          the same as CSV, with a header line\n"
    "  --plot FILE         FILE.png and FILE.svg (gnuplot): test accuracy against parameters\n"
    "                      beside training throughput; FILE.dat and FILE.gp beside them\n"
    "  --save-dir DIR      keep every trained model there as NAME-seedS.safetensors, and each\n"
    "                      training run's checkpoint as NAME-seedS.run.safetensors (written at\n"
    "                      its end and on SIGINT/SIGTERM)\n"
    "  --save-every E      with --save-dir: also write the run's checkpoint every E epochs\n"
    "  --save-every-seconds S  ... and S seconds after the last\n"
    "  --resume            with --save-dir: go on after an interruption: runs whose checkpoint\n"
    "                      is complete are not trained again, an interrupted one continues\n"
    "                      where it stopped (bit for bit), the others train; every record is\n"
    "                      written again. The pruned variant's rounds and an interrupted SET\n"
    "                      run start over\n"
    "  --help, --version\n"
    "\n"
    "Each variant's training samples/s is over the reference's of the same seed, measured in\n"
    "this run; inference is the forward pass alone, per sample, at batch 1 and 256. A variant\n"
    "whose loss becomes NaN or Inf is marked 'diverged' and the others are still trained and\n"
    "compared; the run then exits 1 with its error. Output files are checked before training\n"
    "and written as results arrive.\n"
    "Exit status: 0 success, 1 runtime error, 2 bad usage.\n";

static bool takes_value(const char *opt)
{
    static const char *const with_value[] = {
        "--variants", "--model", "--data", "--optim", "--lr", "--batch", "--epochs", "--seed",
        "--seeds", "--limit-train", "--fro-decay", "--threads", "--device", "--json", "--csv",
        "--plot", "--save-dir", "--save-every", "--save-every-seconds"};
    for (size_t i = 0; i < sizeof(with_value) / sizeof(with_value[0]); i++)
        if (strcmp(opt, with_value[i]) == 0)
            return true;
    return false;
}

// The stored parameters (a pruned weight is not stored: the model's CSR form has none); those of
// the layers that are not plain dense (other kinds, and dense layers with pruned weights), and
// of dense layers (with a bias) of the same shapes instead.
static void count_params(fnet_ctx *ctx, fnet_model *m, int64_t *stored, int64_t *params,
                         int64_t *as_dense)
{
    int64_t n = fnet_model_num_params(m);
    float *mask = NULL;
    if (fnet_model_mask(m) != NULL) {
        mask = malloc((size_t)n * sizeof(float));
        if (mask == NULL)
            cli_die(1, "counting parameters", "out of memory");
        cli_check(ctx, fnet_model_get_mask(m, mask), "counting parameters");
    }
    *stored = n;
    *params = *as_dense = 0;
    for (int i = 0; i < fnet_model_num_layers(m); i++) {
        fnet_layer *l = fnet_model_layer(m, i);
        int64_t np = fnet_layer_num_params(l), off = fnet_model_layer_offset(m, i), zeros = 0;
        for (int64_t k = 0; mask && k < np; k++)
            zeros += mask[off + k] == 0.0f;
        *stored -= zeros;
        if (np == 0 || (fnet_layer_kind_of(l) == FNET_LAYER_DENSE && zeros == 0))
            continue;
        *params += np - zeros;
        *as_dense += (fnet_layer_n_in(l) + 1) * fnet_layer_n_out(l);
    }
    free(mask);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// Forward time per sample at batch 1 and 256, the median of 5 passes over the same test
// samples (gathered once, so the gather is not timed).
static void inference_time(fnet_ctx *ctx, fnet_model *m, const fnet_dataset *test, double *us1,
                           double *us256)
{
    const int64_t dim = fnet_dataset_dim(test), n = 256, n1 = 64;
    int64_t B = fnet_dataset_size(test) < n ? fnet_dataset_size(test) : n;
    float *x = NULL;
    int32_t *labels = malloc((size_t)B * sizeof(*labels));
    if (labels == NULL)
        cli_die(1, "inference timing", "out of memory");
    cli_check(ctx, fnet_backend_alloc(ctx, (size_t)(B * dim) * sizeof(float), (void **)&x),
              "inference timing");
    cli_check(ctx, fnet_dataset_batch(test, NULL, 0, B, x, labels), "inference timing");
    cli_check(ctx, fnet_model_reserve(m, B), "inference timing");
    fnet_model_set_training(m, false);
    double t1[5], tb[5];
    int64_t b1 = B < n1 ? B : n1;
    for (int rep = 0; rep < 5; rep++) {
        double t = cli_seconds();
        for (int64_t i = 0; i < b1; i++)
            cli_check(ctx, fnet_model_forward(m, x + i * dim, 1, NULL), "inference");
        cli_check(ctx, fnet_ctx_synchronize(ctx), "inference");
        t1[rep] = (cli_seconds() - t) / (double)b1;
        t = cli_seconds();
        for (int k = 0; k < 4; k++)
            cli_check(ctx, fnet_model_forward(m, x, B, NULL), "inference");
        cli_check(ctx, fnet_ctx_synchronize(ctx), "inference");
        tb[rep] = (cli_seconds() - t) / (4.0 * (double)B);
    }
    qsort(t1, 5, sizeof(double), cmp_double);
    qsort(tb, 5, sizeof(double), cmp_double);
    *us1 = 1e6 * t1[2];
    *us256 = 1e6 * tb[2];
    fnet_backend_free(ctx, x);
    free(labels);
}

// The checkpoint's size: written to save_dir (kept) or to a temporary file (removed).
static int64_t checkpoint_bytes(fnet_ctx *ctx, fnet_model *m, const char *save_dir,
                                const char *name, uint64_t seed)
{
    // in a job rank 0 writes and measures, and tells the others
    int64_t bytes = 0;
    if (!cli_lead()) {
        cli_check(ctx, fnet_dist_broadcast(cli_job(), &bytes, sizeof(bytes)), "mpirun");
        return bytes;
    }
    char path[1400];
    int fd = -1;
    if (save_dir) {
        snprintf(path, sizeof(path), "%.1000s/%.31s-seed%llu.safetensors", save_dir, name,
                 (unsigned long long)seed);
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(path, sizeof(path), "%s/fnet-compare-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        fd = mkstemp(path);
        if (fd < 0)
            cli_die(1, path, "cannot make a temporary file for the checkpoint's size");
        close(fd);
    }
    cli_check(ctx, fnet_model_save(m, NULL, path), path);
    struct stat sb;
    if (stat(path, &sb) != 0)
        cli_die(1, path, "cannot read the checkpoint's size");
    if (!save_dir)
        remove(path);
    bytes = (int64_t)sb.st_size;
    cli_check(ctx, fnet_dist_broadcast(cli_job(), &bytes, sizeof(bytes)), "mpirun");
    return bytes;
}

// A plain run's trained parameters, kept when a pruned variant of the same spec comes later:
// the pruned variant starts from the dense variant's run of the same seed and recipe instead
// of training it again.
struct cache {
    char spec[1024];
    uint64_t seed;
    fnet_optim_params op;
    int64_t batch;
    int epochs;
    float *w;
    int64_t n;
    double train_seconds;
    int64_t samples;
};

static bool cache_matches(const struct cache *c, const char *spec, uint64_t seed,
                          const fnet_optim_params *op, int64_t batch, int epochs)
{
    return c->w != NULL && strcmp(c->spec, spec) == 0 && c->seed == seed && c->batch == batch &&
           c->epochs == epochs && c->op.kind == op->kind && c->op.lr == op->lr &&
           c->op.iters_per_batch == op->iters_per_batch;
}

struct setup {
    fnet_ctx *ctx;
    const fnet_dataset *train, *test;
    const struct cmp_recipe *recipe;
    const char *save_dir;
    int save_every;            // the runs' checkpoints (with save_dir)
    double save_every_seconds;
    bool resume;               // --resume: reuse or continue the runs' checkpoints
    struct cache cache[CMP_MAX_VARIANTS]; // by variant
    bool keep[CMP_MAX_VARIANTS];          // a pruned variant of the same spec comes later
};

static fnet_model *build(struct setup *S, const char *spec, uint64_t seed)
{
    fnet_model *m = NULL;
    char where[1100];
    snprintf(where, sizeof(where), "--model %s", spec);
    cli_check_usage(S->ctx, fnet_model_create_from_spec(S->ctx, spec, fnet_dataset_dim(S->train),
                                                        seed, &m),
                    where);
    if (fnet_dataset_classes(S->train) > fnet_model_n_out(m))
        cli_die(1, where, "the data has %lld classes but the model has %lld outputs",
                (long long)fnet_dataset_classes(S->train), (long long)fnet_model_n_out(m));
    cli_check(S->ctx, fnet_model_set_frobenius_decay(m, S->recipe->fro_decay), "--fro-decay");
    return m;
}

// A NaN/Inf loss marks the run diverged (the others still run); any other error ends the run.
static bool trained(struct setup *S, fnet_status st, const char *where, struct cmp_run *r)
{
    if (st == FNET_ERR_CANCELLED && cli_signal_received()) {
        char what[1400];
        snprintf(what, sizeof(what), "%s: %s; the records of the runs before it are written",
                 where, fnet_ctx_last_message(S->ctx));
        cli_exit_interrupted(what, S->save_dir ? "the same fnet-compare command with --resume"
                                               : NULL);
    }
    if (st == FNET_ERR_NUMERIC) {
        snprintf(r->error, sizeof(r->error), "%s: %s", fnet_status_str(st),
                 fnet_ctx_last_message(S->ctx));
        return false;
    }
    cli_check(S->ctx, st, where);
    return true;
}

// DIR/NAME-seedS.run.safetensors: a variant's training run's checkpoint.
static void run_path(const struct setup *S, const char *name, uint64_t seed, char *path,
                     size_t cap)
{
    snprintf(path, cap, "%.1000s/%.31s-seed%llu.run.safetensors", S->save_dir, name,
             (unsigned long long)seed);
}

// With --resume: how far the run's checkpoint at path got (-1: none), after every check a resume
// makes against this command's run (m, op, tp): a checkpoint of another model, recipe or data is
// refused (exit 2), never reused. *step: the steps of the next epoch it has done.
static int run_done(struct setup *S, fnet_model *m, const fnet_optim_params *op,
                    const fnet_train_params *tp, const char *path, const char *where,
                    int64_t *step)
{
    *step = 0;
    // in a job, rank 0's answer: every rank trains the same steps (the others read the file
    // when they resume from it)
    int64_t got[2] = {-1, 0};
    if (S->resume && cli_lead() && access(path, F_OK) == 0) {
        fnet_train_params t = *tp;
        t.resume_path = path;
        int done = 0;
        fnet_status st = fnet_train_check_resume(m, op, &t, S->train, &done, &got[1]);
        if (st != FNET_OK) {
            char w[2700];
            snprintf(w, sizeof(w), "%s, --resume %s", where, path);
            cli_die(st == FNET_ERR_INVALID_ARG || st == FNET_ERR_SHAPE ? 2 : 1, w,
                    "%s; this command's run is another (its model, recipe or data): remove the "
                    "checkpoint or use another --save-dir", fnet_ctx_last_message(S->ctx));
        }
        got[0] = done;
    }
    cli_check(S->ctx, fnet_dist_broadcast(cli_job(), got, sizeof(got)), "mpirun");
    *step = got[1];
    return (int)got[0];
}

static bool train_plain(struct setup *S, fnet_model *m, const fnet_optim_params *op,
                        fnet_train_params *tp, struct cli_progress *w, const char *where,
                        struct cmp_run *r, fnet_train_stats *st)
{
    fnet_status status;
    if (op->kind == FNET_OPTIM_LBFGS || op->kind == FNET_OPTIM_CG) {
        status = fnet_train(m, op, tp, S->train, NULL, cli_on_epoch, w, st);
    } else {
        fnet_optimizer *opt = NULL;
        cli_check(S->ctx, fnet_optimizer_create(S->ctx, op, fnet_model_num_params(m), &opt),
                  where);
        status = fnet_train_with(m, opt, op, tp, S->train, NULL, cli_on_epoch, w, st);
        fnet_optimizer_free(opt);
    }
    return trained(S, status, where, r);
}

static void run_variant(struct setup *S, const struct cmp_variant *v, int vi, uint64_t seed,
                        struct cmp_run *r)
{
    char where[1200];
    snprintf(where, sizeof(where), "variant %.31s, seed %llu", v->name, (unsigned long long)seed);
    fnet_optim_params op = cmp_optim_params(v, S->recipe);
    fnet_model *m = build(S, v->spec, seed);
    *r = (struct cmp_run){.seed = seed, .optim = fnet_optim_kind_name(op.kind),
                          .batch = cmp_batch(v, S->recipe)};
    int epochs = cmp_epochs(v, S->recipe);
    printf("%s (seed %llu): %s, %lld parameters\n", v->name, (unsigned long long)seed,
           fnet_model_spec(m), (long long)fnet_model_num_params(m));
    fflush(stdout);

    struct cli_progress w;
    char label[64];
    snprintf(label, sizeof(label), "%.31s, seed %llu", v->name, (unsigned long long)seed);
    cli_progress_begin(&w, label, epochs);
    fnet_train_params tp = fnet_train_params_default();
    tp.batch = r->batch;
    tp.epochs = epochs;
    tp.seed = seed;
    tp.on_batch = cli_is_tty() ? cli_progress : NULL;
    tp.stop = cli_stop_flag();
    fnet_train_stats st = {0};
    double seconds = 0.0;
    int64_t samples = 0, n_train = fnet_dataset_size(S->train);
    bool ok = true;
    fnet_sparse_schedule *ss = NULL;

    const struct cache *hit = NULL;
    for (int i = 0; i < vi && v->how == CMP_PRUNED && hit == NULL; i++)
        if (cache_matches(&S->cache[i], v->spec, seed, &op, r->batch, epochs))
            hit = &S->cache[i];
    if (hit) {
        printf("  the dense run of seed %llu, trained above (%.1f s), pruned\n",
               (unsigned long long)seed, hit->train_seconds);
        cli_check(S->ctx, fnet_model_set_params(m, hit->w), where);
        seconds = hit->train_seconds;
        samples = hit->samples;
        r->epochs = epochs;
    } else {
        if (v->how == CMP_SPARSE) {
            cli_check_usage(S->ctx, fnet_sparse_schedule_create(S->ctx, v->update, 0.3, 0, 0.75,
                                                                S->train, r->batch, seed + 7, &ss),
                            where);
            tp.on_step = fnet_sparse_step_hook;
            tp.step_user = ss;
        }
        // the run's checkpoint (--save-dir): reused when complete, continued when interrupted
        char rpath[1400];
        int64_t step = 0;
        int done = -1;
        if (S->save_dir) {
            run_path(S, v->name, seed, rpath, sizeof(rpath));
            tp.save_path = rpath;
            tp.save_every = S->save_every;
            tp.save_every_seconds = S->save_every_seconds;
            done = run_done(S, m, &op, &tp, rpath, where, &step);
            if (done >= 0 && v->how == CMP_SPARSE && done < epochs)
                done = -1; // SET's schedule is not in the checkpoint: this run starts over
        }
        if (done >= 0) {
            fnet_model_free(m);
            m = NULL;
            char w2[2700];
            snprintf(w2, sizeof(w2), "%s, --resume %s", where, rpath);
            cli_check(S->ctx, fnet_model_load(S->ctx, rpath, &m), w2);
            cli_check(S->ctx, fnet_model_set_frobenius_decay(m, S->recipe->fro_decay), w2);
        }
        if (done >= epochs) {
            // trained before: its totals come from the checkpoint
            fnet_meta *meta = NULL;
            int n = 0;
            cli_check(S->ctx, fnet_checkpoint_metadata(S->ctx, rpath, &meta, &n), rpath);
            const char *ts = fnet_meta_find(meta, n, "run.train_seconds");
            st.train_seconds = ts ? strtod(ts, NULL) : 0.0;
            st.epochs_run = done;
            fnet_checkpoint_metadata_free(meta);
            printf("  trained before: %s (%d epochs, %.1f s)\n", rpath, done, st.train_seconds);
        } else {
            if (done >= 0) {
                tp.resume_path = rpath;
                printf("  resuming %s: epoch %d, after step %lld\n", rpath, done + 1,
                       (long long)step);
            }
            ok = train_plain(S, m, &op, &tp, &w, where, r, &st);
        }
        seconds = st.train_seconds;
        samples = (int64_t)st.epochs_run * n_train;
        r->epochs = st.epochs_run;
        fnet_sparse_schedule_free(ss);
        if (ok && S->keep[vi]) { // remembered for a pruned variant
            struct cache *c = &S->cache[vi];
            int64_t n = fnet_model_num_params(m);
            if (c->n != n) {
                free(c->w);
                c->w = malloc((size_t)n * sizeof(float));
                if (c->w == NULL)
                    cli_die(1, where, "out of memory");
                c->n = n;
            }
            cli_check(S->ctx, fnet_model_get_params(m, c->w), where);
            snprintf(c->spec, sizeof(c->spec), "%s", v->spec);
            c->seed = seed;
            c->op = op;
            c->batch = r->batch;
            c->epochs = epochs;
            c->train_seconds = seconds;
            c->samples = samples;
        }
    }
    if (ok && v->how == CMP_PRUNED) {
        fnet_prune_params pp = fnet_prune_params_default();
        pp.sparsity = v->sparsity;
        pp.schedule = FNET_PRUNE_ITERATIVE;
        pp.rounds = v->rounds;
        pp.finetune_epochs = v->finetune;
        fnet_train_params ft = tp;
        ft.epochs = 0; // trained above: the rounds only
        ft.save_path = ft.resume_path = NULL; // a schedule's rounds are not checkpointed
        ft.save_every = 0;
        ft.save_every_seconds = 0.0;
        cli_progress_begin(&w, label, v->rounds * v->finetune);
        fnet_model *before = m;
        fnet_status status =
            fnet_train_pruned(&m, &op, &ft, &pp, S->train, NULL, cli_on_epoch, &w, &st);
        ok = trained(S, status, where, r);
        if (m != before)
            cli_die(1, where, "internal: unstructured pruning replaced the model");
        seconds += st.train_seconds;
        samples += (int64_t)st.epochs_run * n_train;
        r->epochs += st.epochs_run;
        if (ok) // deployed as CSR: layers more than half zero
            cli_check(S->ctx, fnet_model_sparsify(m, 0.5, NULL), where);
    }
    if (!ok) {
        r->test_acc = r->test_loss = r->samples_per_s = r->train_seconds = NAN;
        r->us_batch1 = r->us_batch256 = NAN;
    } else {
        r->train_seconds = seconds;
        r->samples_per_s = seconds > 0.0 ? (double)samples / seconds : 0.0;
        cli_check(S->ctx, fnet_model_evaluate(m, S->test, &r->test_acc, &r->test_loss),
                  "evaluating on the test set");
        inference_time(S->ctx, m, S->test, &r->us_batch1, &r->us_batch256);
        r->checkpoint_bytes = checkpoint_bytes(S->ctx, m, S->save_dir, v->name, seed);
    }
    snprintf(r->spec, sizeof(r->spec), "%s", fnet_model_spec(m));
    count_params(S->ctx, m, &r->params, &r->compressed, &r->as_dense);
    r->flops = cli_model_flops(m, 256);
    fnet_model_free(m);
    if (r->error[0])
        printf("  diverged: %s\n\n", r->error);
    else
        printf("  test_acc %.4f  %.0f samples/s  %.1f s\n\n", r->test_acc, r->samples_per_s,
               r->train_seconds);
    fflush(stdout);
}

static void add_variant(struct cmp_variant *vars, int *n, const struct cmp_variant *v)
{
    for (int i = 0; i < *n; i++)
        if (strcmp(vars[i].name, v->name) == 0)
            cli_die(2, "--variants/--model", "the name '%s' is used twice", v->name);
    if (*n == CMP_MAX_VARIANTS)
        cli_die(2, "--variants/--model", "at most %d variants", CMP_MAX_VARIANTS);
    vars[(*n)++] = *v;
}

static void parse_variants(const char *list, struct cmp_variant *vars, int *n)
{
    if (strcmp(list, "all") == 0) {
        for (int i = 0; i < cmp_builtin_count(); i++)
            add_variant(vars, n, cmp_builtin(i));
        return;
    }
    char buf[1024];
    if (strlen(list) >= sizeof(buf) || *list == '\0')
        cli_die(2, "--variants", "expected names separated by commas, or all");
    snprintf(buf, sizeof(buf), "%s", list);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        const struct cmp_variant *v = cmp_builtin_find(t);
        if (v == NULL)
            cli_die(2, "--variants", "no variant named '%s' (there are %s, or all)", t,
                    cmp_builtin_names());
        add_variant(vars, n, v);
    }
}

int main(int argc, char **argv)
{
    static char usage[sizeof(usage_head) + sizeof(usage_tail)];
    snprintf(usage, sizeof(usage), "%s%s", usage_head, usage_tail);
    cli_init("fnet-compare", usage);
    const char *data = cli_default_data(), *optim = "adam", *lr_s = NULL, *variants = NULL;
    const char *json_path = NULL, *csv_path = NULL, *plot_arg = NULL, *save_dir = NULL;
    const char *device = "cpu";
    bool tf32 = false;
    const char *models[CMP_MAX_VARIANTS];
    int n_models = 0;
    int64_t limit = 0, threads = 0, seeds = 1, save_every = 0;
    double save_every_seconds = 0.0;
    bool resume = false;
    uint64_t seed = 1;
    struct cmp_recipe recipe = {.batch = 256, .epochs = 10};
    struct cli_args a = {.argc = argc, .argv = argv, .i = 1};
    const char *o, *v;
    while ((o = cli_next(&a, takes_value, &v)) != NULL) {
        if (strcmp(o, "--variants") == 0) {
            variants = v;
        } else if (strcmp(o, "--model") == 0) {
            if (n_models == CMP_MAX_VARIANTS)
                cli_die(2, o, "at most %d models", CMP_MAX_VARIANTS);
            models[n_models++] = v;
        } else if (strcmp(o, "--data") == 0) {
            data = v;
        } else if (strcmp(o, "--optim") == 0) {
            optim = v;
        } else if (strcmp(o, "--lr") == 0) {
            lr_s = v;
        } else if (strcmp(o, "--batch") == 0) {
            recipe.batch = cli_int(o, v, 1, (int64_t)1 << 31);
        } else if (strcmp(o, "--epochs") == 0) {
            recipe.epochs = (int)cli_int(o, v, 1, 1000000);
        } else if (strcmp(o, "--limit-train") == 0) {
            limit = cli_int(o, v, 1, INT64_MAX);
        } else if (strcmp(o, "--seed") == 0) {
            seed = (uint64_t)cli_int(o, v, 0, INT64_MAX / 2);
        } else if (strcmp(o, "--seeds") == 0) {
            seeds = cli_int(o, v, 1, 1000);
        } else if (strcmp(o, "--threads") == 0) {
            threads = cli_int(o, v, 1, 1024);
        } else if (strcmp(o, "--device") == 0) {
            device = v;
        } else if (strcmp(o, "--tf32") == 0) {
            tf32 = true;
        } else if (strcmp(o, "--json") == 0) {
            json_path = v;
        } else if (strcmp(o, "--csv") == 0) {
            csv_path = v;
        } else if (strcmp(o, "--plot") == 0) {
            plot_arg = v;
        } else if (strcmp(o, "--save-dir") == 0) {
            save_dir = v;
        } else if (strcmp(o, "--save-every") == 0) {
            save_every = cli_int(o, v, 1, 1000000);
        } else if (strcmp(o, "--save-every-seconds") == 0) {
            save_every_seconds = cli_double(o, v, 1e-3, 1e9);
        } else if (strcmp(o, "--resume") == 0) {
            resume = true;
        } else if (strcmp(o, "--fro-decay") == 0) {
            recipe.fro_decay = (float)cli_double(o, v, 0.0, 1e6);
        } else {
            cli_die(2, o, "unknown option (see --help)");
        }
    }
    if ((save_every > 0 || save_every_seconds > 0.0 || resume) && save_dir == NULL)
        cli_die(2, resume ? "--resume" : "--save-every", "needs --save-dir DIR, where the runs' "
                "checkpoints are");
    if (fnet_optim_kind_parse(optim, &recipe.optim) != FNET_OK)
        cli_die(2, "--optim", "expected adam, adamw, sgd, momentum, nesterov, rmsprop, lbfgs or "
                "cg, got '%s'", optim);
    if (lr_s) {
        if (recipe.optim == FNET_OPTIM_LBFGS || recipe.optim == FNET_OPTIM_CG)
            cli_die(2, "--lr", "%s takes no learning rate: its line search picks every step",
                    optim);
        recipe.lr = (float)cli_double("--lr", lr_s, 1e-30, 1e6);
    }
    struct cmp_variant vars[CMP_MAX_VARIANTS];
    int n = 0;
    if (variants || n_models == 0)
        parse_variants(variants ? variants : "all", vars, &n);
    for (int i = 0; i < n_models; i++) {
        struct cmp_variant mv;
        cmp_parse_model(models[i], i + 1, &mv);
        add_variant(vars, &n, &mv);
    }
    char prefix[1024];
    if (plot_arg)
        plot_prefix("--plot", plot_arg, prefix, sizeof(prefix));

    fnet_ctx *ctx = cli_ctx(device, (int)threads, tf32);
    char where[1100];
    fnet_dataset *train = NULL, *test = NULL;
    cli_load_data(ctx, data, limit, &train, &test);
    struct setup S = {.ctx = ctx, .train = train, .test = test, .recipe = &recipe,
                      .save_dir = save_dir, .save_every = (int)save_every,
                      .save_every_seconds = save_every_seconds, .resume = resume};
    for (int i = 0; i < n; i++) { // every model builds before the first one trains
        fnet_model *m = build(&S, vars[i].spec, seed);
        bool sparse = false;
        for (int k = 0; k < fnet_model_num_layers(m); k++)
            sparse |= fnet_layer_kind_of(fnet_model_layer(m, k)) == FNET_LAYER_SPARSE;
        fnet_model_free(m);
        if (vars[i].how == CMP_SPARSE && !sparse)
            cli_die(2, vars[i].name, "sparse-update needs a sparse:N layer in the spec, and %s "
                    "has none", vars[i].spec);
        for (int j = i + 1; j < n; j++)
            S.keep[i] |= vars[i].how == CMP_PLAIN && vars[j].how == CMP_PRUNED &&
                         strcmp(vars[i].spec, vars[j].spec) == 0;
    }
    // every output can be written before hours are spent
    if (save_dir) {
        struct stat sb;
        if (stat(save_dir, &sb) != 0 || !S_ISDIR(sb.st_mode) || access(save_dir, W_OK) != 0)
            cli_die(1, save_dir, "--save-dir: not a writable directory");
    }
    char dat_path[1100];
    if (plot_arg) {
        plot_path(prefix, ".dat", dat_path, sizeof(dat_path));
        cli_check_writable("--plot", dat_path);
    }
    if (csv_path)
        cli_check_writable("--csv", csv_path);
    if (json_path)
        cli_check_writable("--json", json_path);
    FILE *json = NULL, *csv = NULL; // opened at the first record: an earlier file outlives a
                                    // run that fails before it
    printf("%lld training, %lld test samples; %s, %d threads; %d variant%s, %lld seed%s\n\n",
           (long long)fnet_dataset_size(train), (long long)fnet_dataset_size(test),
           fnet_ctx_backend_name(ctx), fnet_ctx_threads(ctx), n, n == 1 ? "" : "s",
           (long long)seeds, seeds == 1 ? "" : "s");
    fflush(stdout);
    struct cmp_run *runs = calloc((size_t)(n * seeds), sizeof(*runs));
    if (runs == NULL)
        cli_die(1, NULL, "out of memory");
    cli_signals_install(); // SIGINT/SIGTERM: the run in progress stops at its step
    for (int64_t s = 0; s < seeds; s++) {
        for (int i = 0; i < n; i++) {
            struct cmp_run *r = &runs[s * n + i];
            run_variant(&S, &vars[i], i, seed + (uint64_t)s, r);
            r->variant = i;
            const struct cmp_run *ref = &runs[s * n];
            r->speed = ref->samples_per_s > 0.0 ? r->samples_per_s / ref->samples_per_s : NAN;
            r->acc_diff = r->test_acc - ref->test_acc;
            if (json == NULL && json_path)
                json = cli_json_open(json_path);
            if (csv == NULL && csv_path) {
                csv = cli_fopen_out(csv_path, "w");
                if (csv == NULL)
                    cli_die(1, csv_path, "cannot open the CSV file");
                cmp_csv_header(csv);
            }
            cmp_json_run(json, &vars[i], r);
            cmp_csv_run(csv, &vars[i], r);
        }
    }
    cli_signals_uninstall();
    if (cli_signal_received()) // after the last run's training: its evaluation was cut short
        cli_exit_interrupted("after the last training run", S.save_dir ? "the same fnet-compare "
                             "command with --resume" : NULL);
    for (int i = 0; i < n; i++)
        free(S.cache[i].w);
    cmp_print_table(vars, n, runs, (int)seeds, &recipe);
    cli_json_close(json, json_path);
    if (csv) {
        bool bad = ferror(csv) != 0;
        if (fclose(csv) != 0 || bad)
            cli_die(1, csv_path, "cannot write the CSV file (disk full?)");
    }
    if (plot_arg) {
        char title[256];
        snprintf(title, sizeof(title), "fnet-compare: %lld training samples, %d epochs, %lld seed%s",
                 (long long)fnet_dataset_size(train), recipe.epochs, (long long)seeds,
                 seeds == 1 ? "" : "s");
        if (cmp_plot(prefix, vars, n, runs, (int)seeds, title))
            printf("plot: %s.png, %s.svg\n", prefix, prefix);
    }
    for (int64_t i = 0; i < n * seeds; i++) // the table is out; a variant that diverged fails
        if (runs[i].error[0]) {
            snprintf(where, sizeof(where), "variant %s, seed %llu", vars[runs[i].variant].name,
                     (unsigned long long)runs[i].seed);
            cli_die(1, where, "%s", runs[i].error);
        }
    free(runs);
    fnet_dataset_free(train);
    fnet_dataset_free(test);
    fnet_ctx_free(ctx);
    return 0;
}
