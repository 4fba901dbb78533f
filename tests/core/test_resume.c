/* Tests of runs that survive interruption (fnet_train_params save_path, stop, resume_path;
 * src/core/train_ckpt.c): a run trained in one go and the same run stopped (within an epoch and
 * at an epoch's end) and resumed from its checkpoint, twice, end with bit-identical parameters,
 * optimizer state, step counts and epoch reports, for Adam, SGD with momentum, RMSprop with
 * dropout, Adam on a cosine schedule, Adam with TT rank rounding, L-BFGS and CG; periodic and
 * numbered checkpoints; resumes that do not fit the run refused with nothing changed. */
#include "test_util.h"
#include "io/safetensors.h" // fnet_debug_fail_io

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DIM 16
#define SAMPLES 200
#define MAX_EPOCHS 8
#ifndef ROLLBACK_LR
#define ROLLBACK_LR 1e6f
#endif

static fnet_ctx *ctx;
static fnet_dataset *train, *val, *other;
static char dir[512]; // one directory for the test's files

static int setup(void **state)
{
    (void)state;
    ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    snprintf(dir, sizeof(dir), "%s", fnet_test_tmpdir());
    train = fnet_test_class_data(ctx, SAMPLES, DIM, 3, 200, 60, 120, 11);
    val = fnet_test_class_data(ctx, 60, DIM, 3, 200, 60, 120, 12);
    other = fnet_test_class_data(ctx, SAMPLES, DIM, 3, 200, 60, 120, 13);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fnet_dataset_free(other);
    fnet_dataset_free(val);
    fnet_dataset_free(train);
    fnet_ctx_free(ctx);
    return 0;
}

static char *tmp_path(const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

// What a run reports: every epoch's figures (by epoch number, the whole run's), and the stop.
struct recorder {
    double train_loss[MAX_EPOCHS + 1], val_loss[MAX_EPOCHS + 1], lr[MAX_EPOCHS + 1];
    int64_t params[MAX_EPOCHS + 1];
    int64_t calls, stop_at; // on_batch calls in this piece; raise the flag at this one (0: never)
    volatile sig_atomic_t flag;
};

static void on_batch(int64_t done, int64_t total, void *user)
{
    (void)done;
    (void)total;
    struct recorder *r = user;
    if (++r->calls == r->stop_at)
        r->flag = 1;
}

static int on_epoch(const fnet_epoch_info *e, void *user)
{
    struct recorder *r = user;
    assert_true(e->epoch >= 1 && e->epoch <= MAX_EPOCHS);
    r->train_loss[e->epoch] = e->train_loss;
    r->val_loss[e->epoch] = e->val_loss;
    r->lr[e->epoch] = e->lr;
    r->params[e->epoch] = e->params;
    return 0;
}

struct config {
    const char *name, *spec;
    bool shrinks; // TT rounding changes the ranks during the run
    bool rolls_back; // NaN losses roll epochs back
    fnet_optim_params op;
    fnet_train_params tp;
};

struct outcome {
    float *w;           // final parameters (host)
    float *state[3];    // optimizer state vectors (host), first-order only
    int n_states;
    int64_t n, steps;
    int epochs_run, rollbacks;
    char spec[256];
    struct recorder rec;
};

static void outcome_free(struct outcome *o)
{
    free(o->w);
    for (int i = 0; i < o->n_states; i++)
        free(o->state[i]);
}

static bool is_solver(const struct config *c)
{
    return c->op.kind == FNET_OPTIM_LBFGS || c->op.kind == FNET_OPTIM_CG;
}

// One call of the trainer: a new model (resume NULL) or the checkpoint's, run with tp as the
// config says plus save/resume/stop; its status is returned, the model's end state in *o.
static fnet_status train_piece(const struct config *c, const char *save, const char *resume,
                               int64_t stop_at, struct recorder *rec, struct outcome *o)
{
    fnet_model *m = NULL;
    if (resume == NULL)
        fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, c->spec, DIM, 5, &m));
    else
        fnet_assert_ok(ctx, fnet_model_load(ctx, resume, &m));
    fnet_assert_ok(ctx, fnet_model_set_regularization(m, 0.0f, 1e-4f));
    fnet_train_params tp = c->tp;
    tp.on_batch = on_batch;
    tp.save_path = save;
    tp.resume_path = resume;
    tp.stop = &rec->flag;
    rec->calls = 0;
    rec->stop_at = stop_at;
    rec->flag = 0;
    fnet_train_stats st = {0};
    fnet_optimizer *opt = NULL;
    fnet_status s;
    if (is_solver(c)) {
        s = fnet_train(m, &c->op, &tp, train, val, on_epoch, rec, &st);
    } else {
        fnet_assert_ok(ctx, fnet_optimizer_create(ctx, &c->op, fnet_model_num_params(m), &opt));
        s = fnet_train_with(m, opt, &c->op, &tp, train, val, on_epoch, rec, &st);
    }
    if (o != NULL) {
        o->n = fnet_model_num_params(m);
        o->w = fnet_test_model_params(m);
        o->n_states = opt ? fnet_optimizer_num_states(opt) : 0;
        for (int i = 0; i < o->n_states; i++) {
            o->state[i] = malloc((size_t)o->n * sizeof(float));
            assert_non_null(o->state[i]);
            fnet_assert_ok(ctx, fnet_optimizer_get_state(opt, i, o->state[i]));
        }
        o->steps = st.steps;
        o->epochs_run = st.epochs_run;
        o->rollbacks = st.rollbacks;
        snprintf(o->spec, sizeof(o->spec), "%s", fnet_model_spec(m));
    }
    fnet_optimizer_free(opt);
    fnet_model_free(m);
    return s;
}

// The config trained in one go, and in pieces stopped after stops[i] on_batch calls of each
// piece: the same bits at the end, and the same reports for every epoch.
static void check_resume_is_exact(const struct config *c, const int64_t *stops, int n_stops)
{
    char *whole_path = tmp_path("whole.safetensors"), *path = tmp_path("run.safetensors");
    struct outcome whole = {0}, split = {0};
    struct recorder *r1 = calloc(1, sizeof(*r1)), *r2 = calloc(1, sizeof(*r2));
    assert_non_null(r1);
    assert_non_null(r2);
    fnet_assert_ok(ctx, train_piece(c, whole_path, NULL, 0, r1, &whole));
    assert_int_equal(whole.epochs_run, c->tp.epochs);

    unlink(path);
    for (int i = 0; i <= n_stops; i++) {
        fnet_status s = train_piece(c, path, i == 0 ? NULL : path, i < n_stops ? stops[i] : 0,
                                    r2, i == n_stops ? &split : NULL);
        if (i < n_stops) {
            if (s != FNET_ERR_CANCELLED)
                fail_msg("%s, piece %d: status %d (%s), want a stop", c->name, i, (int)s,
                         fnet_ctx_last_error(ctx));
            assert_non_null(strstr(fnet_ctx_last_error(ctx), "stopped on request"));
            assert_non_null(strstr(fnet_ctx_last_error(ctx), path));
        } else if (s != FNET_OK) {
            fail_msg("%s, last piece: status %d (%s)", c->name, (int)s, fnet_ctx_last_error(ctx));
        }
    }
    assert_string_equal(split.spec, whole.spec);
    assert_int_equal(split.n, whole.n);
    if (memcmp(split.w, whole.w, (size_t)whole.n * sizeof(float)) != 0) {
        int64_t k = 0;
        while (split.w[k] == whole.w[k])
            k++;
        fail_msg("%s: parameters differ from %lld on (%.9g against %.9g)", c->name, (long long)k,
                 (double)split.w[k], (double)whole.w[k]);
    }
    assert_int_equal(split.n_states, whole.n_states);
    for (int i = 0; i < whole.n_states; i++)
        assert_memory_equal(split.state[i], whole.state[i], (size_t)whole.n * sizeof(float));
    assert_int_equal(split.steps, whole.steps);
    assert_int_equal(split.rollbacks, whole.rollbacks);
    if (c->rolls_back && whole.rollbacks < 2)
        fail_msg("%s: %d rollbacks in one go; the test needs them", c->name, whole.rollbacks);
    assert_int_equal(split.epochs_run, whole.epochs_run);
    for (int e = 1; e <= c->tp.epochs; e++) {
        // bitwise: the split epoch's loss sums its pieces in the same order
        if (memcmp(&r2->train_loss[e], &r1->train_loss[e], sizeof(double)) != 0 ||
            memcmp(&r2->val_loss[e], &r1->val_loss[e], sizeof(double)) != 0 ||
            r2->params[e] != r1->params[e])
            fail_msg("%s: epoch %d reports differ: loss %.17g / %.17g, val %.17g / %.17g",
                     c->name, e, r2->train_loss[e], r1->train_loss[e], r2->val_loss[e],
                     r1->val_loss[e]);
        if (!(isnan(r1->lr[e]) && isnan(r2->lr[e])))
            assert_true(r2->lr[e] == r1->lr[e]);
    }
    if (c->shrinks) { // the rounding did change the ranks, and the layout with them
        fnet_model *fresh = NULL;
        fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, c->spec, DIM, 5, &fresh));
        assert_true(whole.n < fnet_model_num_params(fresh));
        fnet_model_free(fresh);
    }
    outcome_free(&whole);
    outcome_free(&split);
    free(r2);
    free(r1);
    free(path);
    free(whole_path);
}

static struct config first_order(const char *name, const char *spec, fnet_optim_kind kind,
                                 int epochs)
{
    struct config c = {.name = name, .spec = spec};
    c.op = fnet_optim_params_default(kind);
    c.tp = fnet_train_params_default();
    c.tp.batch = 16; // 13 steps per epoch, the last of 8 samples
    c.tp.epochs = epochs;
    c.tp.seed = 3;
    return c;
}

// 13 steps per epoch: stopped after 5 (within epoch 1), then after 8 more (epoch 1's end: the
// stop lands on the epoch's last step and is saved after its report), then after 10 (within
// epoch 3).
static const int64_t stops_first_order[] = {5, 8, 10};

static void test_adam_resumes_exactly(void **state)
{
    (void)state;
    struct config c = first_order("adam", "dense:12,relu,dense:3", FNET_OPTIM_ADAM, 4);
    check_resume_is_exact(&c, stops_first_order, 3);
}

static void test_momentum_resumes_exactly(void **state)
{
    (void)state;
    struct config c = first_order("momentum", "dense:12,tanh,dense:3", FNET_OPTIM_MOMENTUM, 4);
    check_resume_is_exact(&c, stops_first_order, 3);
}

static void test_rmsprop_with_dropout_resumes_exactly(void **state)
{
    (void)state;
    struct config c = first_order("rmsprop+dropout", "dense:12,relu,dropout:0.3,dense:3",
                                  FNET_OPTIM_RMSPROP, 4);
    check_resume_is_exact(&c, stops_first_order, 3);
}

static void test_cosine_schedule_resumes_exactly(void **state)
{
    (void)state;
    struct config c = first_order("adam+cosine", "dense:12,relu,dense:3", FNET_OPTIM_ADAM, 4);
    c.op.schedule = FNET_SCHEDULE_COSINE;
    c.op.lr = 0.01f;
    check_resume_is_exact(&c, stops_first_order, 3);
}

static void test_tt_rounding_resumes_exactly(void **state)
{
    (void)state;
    struct config c = first_order("adam+tt rounding", "dense:16,tt:16:rank=4,relu,dense:3",
                                  FNET_OPTIM_ADAM, 4);
    c.tp.tt_round_every = 1;
    c.tp.tt_eps = 0.3;
    c.tp.tt_max_rank = 3; // from 4 at the first rounding, and on with eps
    c.shrinks = true;
    check_resume_is_exact(&c, stops_first_order, 3);
}

// A rate so high that epochs diverge and roll back (halving it) several times, some after a
// stop within the same epoch: the rollback goes back to the epoch's start, which a mid-epoch
// checkpoint carries, and reshuffles as the run in one go does.
static void test_nan_rollback_resumes_exactly(void **state)
{
    (void)state;
    struct config c = first_order("sgd+rollback", "dense:12,relu,dense:3", FNET_OPTIM_SGD, 4);
    c.op.lr = ROLLBACK_LR;
    c.tp.on_nan = FNET_NAN_ROLLBACK;
    c.tp.max_rollbacks = 40;
    c.rolls_back = true;
    check_resume_is_exact(&c, stops_first_order, 3);
}

static struct config solver(const char *name, fnet_optim_kind kind)
{
    struct config c = {.name = name, .spec = "dense:12,relu,dense:3"};
    c.op = fnet_optim_params_default(kind);
    c.op.iters_per_batch = 3;
    c.tp = fnet_train_params_default();
    c.tp.batch = 50; // 4 minibatches per epoch, 3 solver iterations (progress calls) each
    c.tp.epochs = 3;
    c.tp.seed = 3;
    return c;
}

// 3 progress calls per minibatch: stopped within batch 2 (saved after it), at epoch 1's end, and
// within epoch 3
static const int64_t stops_solver[] = {5, 6, 7};

static void test_lbfgs_resumes_exactly(void **state)
{
    (void)state;
    struct config c = solver("lbfgs", FNET_OPTIM_LBFGS);
    check_resume_is_exact(&c, stops_solver, 3);
}

static void test_cg_resumes_exactly(void **state)
{
    (void)state;
    struct config c = solver("cg", FNET_OPTIM_CG);
    check_resume_is_exact(&c, stops_solver, 3);
}

// save_every 1 writes after every epoch, keep 2 leaves the two newest numbered copies, the last
// one the same file as save_path; save_every_seconds tiny writes after every step.
static void test_periodic_and_numbered_checkpoints(void **state)
{
    (void)state;
    char *path = tmp_path("periodic.safetensors");
    char *e1 = tmp_path("periodic.e1.safetensors"), *e2 = tmp_path("periodic.e2.safetensors");
    char *e3 = tmp_path("periodic.e3.safetensors"), *e4 = tmp_path("periodic.e4.safetensors");
    fnet_model *m = NULL;
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, "dense:8,relu,dense:3", DIM, 1, &m));
    fnet_optim_params op = fnet_optim_params_default(FNET_OPTIM_ADAM);
    fnet_train_params tp = fnet_train_params_default();
    tp.batch = 16;
    tp.epochs = 4;
    tp.save_path = path;
    tp.save_every = 1;
    tp.keep = 2;
    fnet_train_stats st;
    fnet_assert_ok(ctx, fnet_train(m, &op, &tp, train, NULL, NULL, NULL, &st));
    assert_int_equal(st.checkpoints, 4);
    assert_int_equal(access(e1, F_OK), -1);
    assert_int_equal(access(e2, F_OK), -1);
    assert_int_equal(access(e3, F_OK), 0);
    struct stat a, b;
    assert_int_equal(stat(e4, &a), 0);
    assert_int_equal(stat(path, &b), 0);
    assert_true(a.st_ino == b.st_ino); // one file, two names
    fnet_meta *meta = NULL;
    int n = 0;
    fnet_assert_ok(ctx, fnet_checkpoint_metadata(ctx, path, &meta, &n));
    assert_string_equal(fnet_meta_find(meta, n, "run.epoch"), "4");
    assert_string_equal(fnet_meta_find(meta, n, "run.batch"), "0");
    fnet_checkpoint_metadata_free(meta);

    // by time, every step: 13 steps per epoch, each one a checkpoint (the epoch's last after its
    // report)
    tp.save_every = 0;
    tp.keep = 0;
    tp.epochs = 2;
    tp.save_every_seconds = 1e-9;
    fnet_assert_ok(ctx, fnet_train(m, &op, &tp, train, NULL, NULL, NULL, &st));
    assert_int_equal(st.steps, 26);
    assert_int_equal(st.checkpoints, 26);

    // the checkpoint fields checked
    tp.save_every = -1;
    assert_int_equal(fnet_train(m, &op, &tp, train, NULL, NULL, NULL, &st), FNET_ERR_INVALID_ARG);
    tp.save_every = 1;
    tp.save_path = NULL;
    assert_int_equal(fnet_train(m, &op, &tp, train, NULL, NULL, NULL, &st), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "no save_path"));
    // the caller's metadata: a key of the checkpoint's own, or one given twice, is refused
    // before training (not at the first save)
    tp.save_path = path;
    tp.save_every = 0;
    const fnet_meta clash[] = {{"spec", "x"}}, twice[] = {{"a", "1"}, {"a", "2"}};
    tp.meta = clash;
    tp.n_meta = 1;
    st = (fnet_train_stats){0};
    assert_int_equal(fnet_train(m, &op, &tp, train, NULL, NULL, NULL, &st), FNET_ERR_INVALID_ARG);
    assert_int_equal(st.steps, 0); // nothing trained
    tp.meta = twice;
    tp.n_meta = 2;
    assert_int_equal(fnet_train(m, &op, &tp, train, NULL, NULL, NULL, &st), FNET_ERR_INVALID_ARG);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "given twice"));
    fnet_model_free(m);
    free(e4);
    free(e3);
    free(e2);
    free(e1);
    free(path);
}

// A resume that does not fit the run is refused before anything changes: another learning rate,
// batch, optimizer, penalty, training set, too few epochs, a checkpoint without a run, a damaged
// sample order.
static void test_resume_refuses_what_does_not_fit(void **state)
{
    (void)state;
    char *path = tmp_path("fit.safetensors"), *plain = tmp_path("plain.safetensors");
    char *bad = tmp_path("bad.safetensors");
    struct config c = first_order("adam", "dense:12,relu,dense:3", FNET_OPTIM_ADAM, 3);
    struct recorder *rec = calloc(1, sizeof(*rec));
    assert_non_null(rec);
    unlink(path);
    assert_int_equal(train_piece(&c, path, NULL, 18, rec, NULL), FNET_ERR_CANCELLED); // epoch 2

    struct {
        const char *what, *says;
        fnet_status st;
    } cases[] = {
        {"lr", "optim.lr = 0.001, this one has 0.002", FNET_ERR_INVALID_ARG},
        {"batch", "train.batch = 16, this one has 20", FNET_ERR_INVALID_ARG},
        {"optimizer", "the adam optimizer, not momentum", FNET_ERR_INVALID_ARG},
        {"l2", "model.l2 = ", FNET_ERR_INVALID_ARG},
        {"data", "resume it on the same data", FNET_ERR_INVALID_ARG},
        {"epochs", "leaves nothing to train", FNET_ERR_INVALID_ARG},
        {"plain", "not a checkpoint of a run", FNET_ERR_FORMAT},
        {"order", "not a permutation of the 200 samples", FNET_ERR_FORMAT},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *w = cases[i].what;
        fnet_model *m = NULL;
        fnet_assert_ok(ctx, fnet_model_load(ctx, path, &m));
        fnet_assert_ok(ctx, fnet_model_set_regularization(m, 0.0f, strcmp(w, "l2") ? 1e-4f : 0));
        fnet_optim_params op = c.op;
        fnet_train_params tp = c.tp;
        tp.resume_path = path;
        const fnet_dataset *data = train;
        if (strcmp(w, "lr") == 0)
            op.lr = 0.002f;
        if (strcmp(w, "batch") == 0)
            tp.batch = 20;
        if (strcmp(w, "optimizer") == 0)
            op = fnet_optim_params_default(FNET_OPTIM_MOMENTUM);
        if (strcmp(w, "data") == 0)
            data = other;
        if (strcmp(w, "epochs") == 0)
            tp.epochs = 1; // the run is in its epoch 2
        if (strcmp(w, "plain") == 0) {
            fnet_assert_ok(ctx, fnet_model_save(m, NULL, plain));
            tp.resume_path = plain;
        }
        if (strcmp(w, "order") == 0) {
            // two samples in the order made the same: a copy with its checksums made to fit
            struct fnet_test_bytes f = fnet_test_read_file(path);
            fnet_meta *meta = NULL;
            int nm = 0;
            fnet_assert_ok(ctx, fnet_checkpoint_metadata(ctx, path, &meta, &nm));
            fnet_checkpoint_metadata_free(meta);
            uint64_t h = 0;
            for (int k = 7; k >= 0; k--)
                h = h << 8 | f.p[k];
            const char *at = strstr((const char *)f.p + 8, "\"run.order\"");
            assert_non_null(at);
            const char *off = strstr(at, "data_offsets\":[");
            long begin = strtol(off + strlen("data_offsets\":["), NULL, 10);
            memcpy(f.p + 8 + h + begin + 4, f.p + 8 + h + begin, 4);
            fnet_test_restamp_checksums(f.p, f.n);
            fnet_test_write_file(bad, f.p, f.n);
            free(f.p);
            tp.resume_path = bad;
        }
        fnet_optimizer *opt = NULL;
        fnet_assert_ok(ctx, fnet_optimizer_create(ctx, &op, fnet_model_num_params(m), &opt));
        float *w0 = fnet_test_model_params(m);
        fnet_status st = fnet_train_with(m, opt, &op, &tp, data, NULL, NULL, NULL, NULL);
        if (st != cases[i].st || strstr(fnet_ctx_last_error(ctx), cases[i].says) == NULL)
            fail_msg("%s: status %d, '%s' (want %d and \"%s\")", w, (int)st,
                     fnet_ctx_last_error(ctx), (int)cases[i].st, cases[i].says);
        assert_non_null(strstr(fnet_ctx_last_error(ctx), tp.resume_path));
        float *w1 = fnet_test_model_params(m);
        assert_memory_equal(w1, w0, (size_t)fnet_model_num_params(m) * sizeof(float));
        assert_int_equal(fnet_optimizer_steps(opt), 0); // its state not loaded either
        free(w1);
        free(w0);
        fnet_optimizer_free(opt);
        fnet_model_free(m);
    }
    free(rec);
    free(bad);
    free(plain);
    free(path);
}

// The --keep rotation removes only this run's own numbered files, and only once the checkpoint
// that replaces them is written: a run branched to another path leaves the original's alone, and
// a save that fails removes nothing.
static void test_keep_rotation_removes_only_its_own_files(void **state)
{
    (void)state;
    char *k = tmp_path("k.safetensors"), *k1 = tmp_path("k.e1.safetensors");
    char *k2 = tmp_path("k.e2.safetensors"), *br = tmp_path("branch.safetensors");
    char *br3 = tmp_path("branch.e3.safetensors");
    fnet_model *m = NULL;
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, "dense:8,relu,dense:3", DIM, 1, &m));
    fnet_optim_params op = fnet_optim_params_default(FNET_OPTIM_ADAM);
    fnet_train_params tp = fnet_train_params_default();
    tp.batch = 16;
    tp.epochs = 1;
    tp.save_path = k;
    tp.save_every = 1;
    tp.keep = 1;
    fnet_assert_ok(ctx, fnet_train(m, &op, &tp, train, NULL, NULL, NULL, NULL));
    fnet_model_free(m);
    assert_int_equal(access(k1, F_OK), 0);

    // a save that fails (its temporary file cannot be made) keeps k.e1
    fnet_assert_ok(ctx, fnet_model_load(ctx, k1, &m));
    tp.epochs = 2;
    tp.resume_path = k1;
    fnet_debug_fail_io(1);
    fnet_status st = fnet_train(m, &op, &tp, train, NULL, NULL, NULL, NULL);
    fnet_debug_fail_io(0);
    assert_int_equal(st, FNET_ERR_IO);
    assert_int_equal(access(k1, F_OK), 0);
    assert_int_equal(access(k2, F_OK), -1);
    fnet_model_free(m);
    // the same resume goes through: k.e2 replaces k.e1
    fnet_assert_ok(ctx, fnet_model_load(ctx, k1, &m));
    fnet_assert_ok(ctx, fnet_train(m, &op, &tp, train, NULL, NULL, NULL, NULL));
    fnet_model_free(m);
    assert_int_equal(access(k1, F_OK), -1);
    assert_int_equal(access(k2, F_OK), 0);

    // branched to another path: its own numbered files rotate, k.e2 stays
    fnet_assert_ok(ctx, fnet_model_load(ctx, k2, &m));
    tp.epochs = 3;
    tp.resume_path = k2;
    tp.save_path = br;
    fnet_assert_ok(ctx, fnet_train(m, &op, &tp, train, NULL, NULL, NULL, NULL));
    fnet_model_free(m);
    assert_int_equal(access(k2, F_OK), 0);
    assert_int_equal(access(br3, F_OK), 0);
    free(br3);
    free(br);
    free(k2);
    free(k1);
    free(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adam_resumes_exactly),
        cmocka_unit_test(test_momentum_resumes_exactly),
        cmocka_unit_test(test_rmsprop_with_dropout_resumes_exactly),
        cmocka_unit_test(test_cosine_schedule_resumes_exactly),
        cmocka_unit_test(test_tt_rounding_resumes_exactly),
        cmocka_unit_test(test_nan_rollback_resumes_exactly),
        cmocka_unit_test(test_lbfgs_resumes_exactly),
        cmocka_unit_test(test_cg_resumes_exactly),
        cmocka_unit_test(test_periodic_and_numbered_checkpoints),
        cmocka_unit_test(test_resume_refuses_what_does_not_fit),
        cmocka_unit_test(test_keep_rotation_removes_only_its_own_files),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
