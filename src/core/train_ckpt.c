/* Checkpoints of a training run (train_loop.h; docs/design.md, "Checkpoints"): the model and the
 * optimizer's state (fnet_model_save's tensors), and beside them everything else the run needs
 * to go on bit for bit: its position (epoch, step, the epoch's summed loss), the sample order
 * ("run.order", I32) and the shuffling stream's state, the rollback factor, the totals, the
 * settings that decide its trajectory (checked, not trusted, on resume), a checksum of the
 * training data and, for L-BFGS and CG, the solver's state ("solver.*": the history pairs, their
 * scalars, the last step's length). Layers' random states (dropout) are in every checkpoint. */
#include "core/train_loop.h"
#include "core/backend.h"
#include "core/model_impl.h"
#include "io/checkpoint_impl.h"
#include "io/json.h"
#include "optim/solver.h"
#include "dist/dist.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RUN "run."
#define ORDER_TENSOR RUN "order"
#define SNAPSHOT_TENSOR RUN "snapshot" // the epoch's start, for a NaN rollback
#define SOLVER "solver."
#define VALUE_MAX 48 // one formatted setting or counter

// ---------------------------------------------------------------------------------------------
// The settings a resume must agree with: each stored as "run.<key>", compared as its exact text
// ("%a" for floating point, so no rounding hides a difference).

enum vtype { V_F32, V_F64, V_INT, V_I64, V_U64, V_BOOL };

struct setting {
    const char *key;
    enum vtype type;
    size_t off;
};

_Static_assert(sizeof(fnet_optim_kind) == sizeof(int) && sizeof(fnet_schedule) == sizeof(int) &&
                   sizeof(fnet_line_search) == sizeof(int) && sizeof(fnet_cg_beta) == sizeof(int) &&
                   sizeof(fnet_nan_policy) == sizeof(int),
               "enums are read as int");

#define OPT(f, t) {"optim." #f, t, offsetof(fnet_optim_params, f)}
static const struct setting optim_settings[] = {
    OPT(kind, V_INT),        OPT(lr, V_F32),          OPT(momentum, V_F32),
    OPT(beta1, V_F32),       OPT(beta2, V_F32),       OPT(eps, V_F32),
    OPT(rho, V_F32),         OPT(weight_decay, V_F32), OPT(schedule, V_INT),
    OPT(step_epochs, V_INT), OPT(gamma, V_F32),       OPT(lr_min, V_F32),
    OPT(history, V_INT),     OPT(iters_per_batch, V_INT), OPT(max_iter, V_INT),
    OPT(max_evals, V_I64),   OPT(line_search, V_INT), OPT(max_linesearch, V_INT),
    OPT(c1, V_F64),          OPT(c2, V_F64),          OPT(gtol, V_F64),
    OPT(past, V_INT),        OPT(delta, V_F64),       OPT(min_step, V_F64),
    OPT(max_step, V_F64),    OPT(cg_beta, V_INT),
};
#undef OPT
#define TRAIN(f, t) {"train." #f, t, offsetof(fnet_train_params, f)}
static const struct setting train_settings[] = {
    TRAIN(batch, V_I64),         TRAIN(seed, V_U64),        TRAIN(shuffle, V_BOOL),
    TRAIN(tt_round_every, V_INT), TRAIN(tt_eps, V_F64),     TRAIN(tt_max_rank, V_I64),
    TRAIN(on_nan, V_INT),        TRAIN(max_rollbacks, V_INT),
};
#undef TRAIN
#define N_OPTIM ((int)(sizeof(optim_settings) / sizeof(optim_settings[0])))
#define N_TRAIN ((int)(sizeof(train_settings) / sizeof(train_settings[0])))

static void format_value(char *buf, const void *base, const struct setting *s)
{
    const char *p = (const char *)base + s->off;
    float f;
    double d;
    int i;
    int64_t l;
    uint64_t u;
    bool b;
    switch (s->type) {
    case V_F32: memcpy(&f, p, sizeof(f)); snprintf(buf, VALUE_MAX, "%a", (double)f); break;
    case V_F64: memcpy(&d, p, sizeof(d)); snprintf(buf, VALUE_MAX, "%a", d); break;
    case V_INT: memcpy(&i, p, sizeof(i)); snprintf(buf, VALUE_MAX, "%d", i); break;
    case V_I64: memcpy(&l, p, sizeof(l)); snprintf(buf, VALUE_MAX, "%" PRId64, l); break;
    case V_U64: memcpy(&u, p, sizeof(u)); snprintf(buf, VALUE_MAX, "%" PRIu64, u); break;
    case V_BOOL: memcpy(&b, p, sizeof(b)); snprintf(buf, VALUE_MAX, "%d", b ? 1 : 0); break;
    }
}

// A value for a message: "%a" text as the shortest %g that reads back as the same float (a
// float setting) or double, the rest as it is.
static const char *readable(const char *v, char *buf)
{
    snprintf(buf, VALUE_MAX, "%s", v);
    if (strstr(v, "0x") == NULL)
        return buf;
    double x = strtod(v, NULL);
    bool is_float = (double)(float)x == x;
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, VALUE_MAX, "%.*g", p, x);
        double y = strtod(buf, NULL);
        if (y == x || (is_float && (float)y == (float)x))
            break;
    }
    return buf;
}

// The model's settings that change its loss: "model.loss", "model.l1", "model.l2", "model.fro".
static void model_settings(const fnet_model *m, char v[4][VALUE_MAX])
{
    fnet_loss loss;
    float l1, l2, fro;
    fnet_model_get_settings(m, &loss, &l1, &l2, &fro);
    snprintf(v[0], VALUE_MAX, "%d", (int)loss);
    snprintf(v[1], VALUE_MAX, "%a", (double)l1);
    snprintf(v[2], VALUE_MAX, "%a", (double)l2);
    snprintf(v[3], VALUE_MAX, "%a", (double)fro);
}
static const char *const model_keys[4] = {"model.loss", "model.l1", "model.l2", "model.fro"};

// ---------------------------------------------------------------------------------------------
// Metadata and tensors being gathered for one checkpoint.

struct gather {
    fnet_ctx *ctx;
    struct fnet_safetensors_meta *meta;
    size_t n_meta, cap_meta;
    struct fnet_safetensors_tensor *t;
    size_t n_t, cap_t;
    bool oom;
};

static void gather_free(struct gather *g)
{
    for (size_t i = 0; i < g->n_meta; i++) {
        fnet_free((void *)g->meta[i].key);
        fnet_free((void *)g->meta[i].value);
    }
    for (size_t i = 0; i < g->n_t; i++)
        fnet_free((void *)g->t[i].name);
    fnet_free(g->meta);
    fnet_free(g->t);
}

// p (old elements of size) moved into a new block of cap elements; NULL (p kept) on failure.
static void *grow(void *p, size_t old, size_t cap, size_t size)
{
    void *q = fnet_malloc_array(cap, size);
    if (q == NULL)
        return NULL;
    if (old > 0)
        memcpy(q, p, old * size);
    fnet_free(p);
    return q;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = fnet_malloc(n);
    return d ? memcpy(d, s, n) : NULL;
}

// "run."/"solver." prefixed key, printf value
static void put_meta(struct gather *g, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void put_meta(struct gather *g, const char *key, const char *fmt, ...)
{
    if (g->oom)
        return;
    if (g->n_meta == g->cap_meta) {
        size_t cap = g->cap_meta ? 2 * g->cap_meta : 64;
        void *p = grow(g->meta, g->n_meta, cap, sizeof(*g->meta));
        if (p == NULL) {
            g->oom = true;
            return;
        }
        g->meta = p;
        g->cap_meta = cap;
    }
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *v = fnet_malloc((size_t)len + 1), *k = dup_str(key);
    if (v == NULL || k == NULL) {
        fnet_free(v);
        fnet_free(k);
        g->oom = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(v, (size_t)len + 1, fmt, ap);
    va_end(ap);
    g->meta[g->n_meta++] = (struct fnet_safetensors_meta){k, v};
}

static void put_tensor(struct gather *g, const char *name, enum fnet_st_dtype dtype, int64_t n,
                       const void *data, bool on_backend)
{
    if (g->oom)
        return;
    if (g->n_t == g->cap_t) {
        size_t cap = g->cap_t ? 2 * g->cap_t : 8;
        void *p = grow(g->t, g->n_t, cap, sizeof(*g->t));
        if (p == NULL) {
            g->oom = true;
            return;
        }
        g->t = p;
        g->cap_t = cap;
    }
    char *nm = dup_str(name);
    if (nm == NULL) {
        g->oom = true;
        return;
    }
    g->t[g->n_t++] = (struct fnet_safetensors_tensor){
        .name = nm, .dtype = dtype, .ndim = 1, .shape = {n}, .data = data,
        .on_backend = on_backend};
}

// ---------------------------------------------------------------------------------------------
// Saving

fnet_status fnet_train_ckpt_check_params(fnet_ctx *ctx, const fnet_train_params *tp)
{
    if (tp->save_every < 0 || !(tp->save_every_seconds >= 0.0) ||
        !isfinite(tp->save_every_seconds) || tp->keep < 0 || tp->n_meta < 0 ||
        (tp->n_meta > 0 && tp->meta == NULL))
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "checkpoints: save_every %d, "
                         "save_every_seconds %g, keep %d, n_meta %d: each must be >= 0 (and "
                         "finite), meta given when n_meta > 0", tp->save_every,
                         tp->save_every_seconds, tp->keep, tp->n_meta);
    if ((tp->save_every > 0 || tp->save_every_seconds > 0.0 || tp->keep > 0) &&
        tp->save_path == NULL)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "checkpoints every %d epochs / %g seconds, "
                         "keeping %d: no save_path to write them to", tp->save_every,
                         tp->save_every_seconds, tp->keep);
    // the caller's entries may not collide with the checkpoint's own keys or with each other:
    // found now, not at the first save after hours of training
    static const char *const own[] = {"format", "version", "spec", "input", "classes",
                                      "optimizer", "optimizer_steps", "checksum",
                                      "metadata_crc32"};
    static const char *const own_prefix[] = {RUN, SOLVER, "crc32.", "layers."};
    // the kept list separates names by newlines
    if (tp->save_path != NULL && strchr(tp->save_path, '\n') != NULL)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "checkpoints: the save path holds a newline");
    for (int i = 0; i < tp->n_meta; i++) {
        const char *k = tp->meta[i].key;
        bool taken = k == NULL || tp->meta[i].value == NULL;
        if (!taken && (!fnet_json_utf8_valid(k, strlen(k)) ||
                       !fnet_json_utf8_valid(tp->meta[i].value, strlen(tp->meta[i].value))))
            return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "checkpoints: metadata entry %d is not "
                             "UTF-8", i);
        for (size_t j = 0; !taken && j < sizeof(own) / sizeof(own[0]); j++)
            taken = strcmp(k, own[j]) == 0;
        for (size_t j = 0; !taken && j < sizeof(own_prefix) / sizeof(own_prefix[0]); j++)
            taken = strncmp(k, own_prefix[j], strlen(own_prefix[j])) == 0;
        if (taken)
            return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "checkpoints: metadata entry %d ('%.60s')"
                             " is NULL or a key of the checkpoint's own (format, spec, ..., "
                             "run.*, solver.*, crc32.*, layers.*)", i, k ? k : "(null)");
        for (int j = 0; j < i; j++)
            if (strcmp(k, tp->meta[j].key) == 0)
                return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "checkpoints: metadata key '%.60s' "
                                 "is given twice (entries %d and %d)", k, j, i);
    }
    return FNET_OK;
}

bool fnet_train_ckpt_due(const struct fnet_train_loop *L, const fnet_train_params *tp)
{
    return tp->save_path != NULL && tp->save_every_seconds > 0.0 &&
           fnet_now() - L->last_save >= tp->save_every_seconds;
}

// The numbered name of a checkpoint at pos: "<stem>.e<E>[s<S>]<ext>", ext ".safetensors" when the
// path ends so. fnet_free().
static char *numbered_path(const char *path, const struct fnet_run_pos *pos)
{
    static const char ext[] = ".safetensors";
    size_t len = strlen(path), el = strlen(ext);
    size_t stem = len > el && strcmp(path + len - el, ext) == 0 ? len - el : len;
    char tag[64];
    if (pos->batch > 0)
        snprintf(tag, sizeof(tag), ".e%ds%" PRId64, pos->epoch, pos->batch);
    else
        snprintf(tag, sizeof(tag), ".e%d", pos->epoch);
    char *p = fnet_malloc(len + strlen(tag) + 1);
    if (p != NULL)
        snprintf(p, len + strlen(tag) + 1, "%.*s%s%s", (int)stem, path, tag, path + stem);
    return p;
}

// The solver's state: its scalars as metadata, its history pairs (oldest first) as tensors.
static void gather_solver(struct gather *g, const fnet_solver *s)
{
    put_meta(g, SOLVER "count", "%d", s->count);
    put_meta(g, SOLVER "gamma", "%a", s->gamma);
    put_meta(g, SOLVER "last_move", "%a", s->last_move);
    char name[64];
    size_t rho_len = (size_t)s->count * 32 + 1;
    char *rho = fnet_malloc(rho_len);
    if (rho == NULL) {
        g->oom = true;
        return;
    }
    rho[0] = '\0';
    size_t at = 0;
    for (int k = 0; k < s->count; k++) {
        int slot = (s->head - (s->count - 1 - k) + s->m) % s->m;
        at += (size_t)snprintf(rho + at, rho_len - at, "%s%a", k ? "," : "", s->rho[slot]);
        snprintf(name, sizeof(name), SOLVER "s%d", k);
        put_tensor(g, name, FNET_ST_F32, s->n, s->sv[slot], true);
        snprintf(name, sizeof(name), SOLVER "y%d", k);
        put_tensor(g, name, FNET_ST_F32, s->n, s->yv[slot], true);
    }
    put_meta(g, SOLVER "rho", "%s", rho);
    fnet_free(rho);
}

// Replace path by a new link to the file at src (already written in full): link to a temporary
// name, rename over path. false when the filesystem has no hard links (the caller writes path).
static bool link_over(const char *src, const char *path)
{
    size_t n = strlen(path) + 16;
    char *tmp = fnet_malloc(n);
    if (tmp == NULL)
        return false;
    snprintf(tmp, n, "%s.tmp.link", path);
    unlink(tmp);
    bool ok = link(src, tmp) == 0;
    if (ok && rename(tmp, path) != 0) {
        unlink(tmp);
        ok = false;
    }
    fnet_free(tmp);
    return ok;
}

// Whether name is one of path's numbered checkpoints, "<stem>.e<digits>[s<digits>]<ext>" (as
// numbered_path makes them): the only files the --keep rotation ever removes.
static bool is_numbered_of(const char *path, const char *name)
{
    static const char ext[] = ".safetensors";
    size_t len = strlen(path), el = strlen(ext), nl = strlen(name);
    size_t stem = len > el && strcmp(path + len - el, ext) == 0 ? len - el : len;
    size_t tail = len - stem;
    if (nl < stem + tail + 3 || strncmp(name, path, stem) != 0 ||
        strcmp(name + nl - tail, path + stem) != 0 || name[stem] != '.' || name[stem + 1] != 'e')
        return false;
    const char *p = name + stem + 2, *end = name + nl - tail;
    bool digits = false, step = false;
    for (; p < end; p++) {
        if (*p >= '0' && *p <= '9') {
            digits = true;
        } else if (*p == 's' && digits && !step) {
            step = true;
            digits = false;
        } else {
            return false;
        }
    }
    return digits;
}

// The numbered checkpoints kept after `name` joins the list `kept` ('\n'-terminated names,
// oldest first; NULL: none), trimmed to the newest `keep`: *next, and in *drop the names that
// fall out (the same form; NULL when none). fnet_free both.
static fnet_status kept_next(fnet_ctx *ctx, const char *kept, const char *name, int keep,
                             char **next, char **drop)
{
    *next = *drop = NULL;
    size_t have = kept ? strlen(kept) : 0, add = strlen(name) + 1;
    char *all = fnet_malloc(have + add + 1);
    if (all == NULL)
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "list of kept checkpoints");
    // the list without name (a resume that saves where it saved before), then name
    size_t n = 0;
    int count = 0;
    for (const char *p = kept; p != NULL && *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = (size_t)(nl - p);
        if (!(len == add - 1 && strncmp(p, name, len) == 0)) {
            memcpy(all + n, p, len + 1);
            n += len + 1;
            count++;
        }
        p = nl + 1;
    }
    memcpy(all + n, name, add - 1);
    all[n + add - 1] = '\n';
    all[n + add] = '\0';
    count++;
    // the oldest beyond keep fall out
    char *cut = all;
    for (int k = count; k > keep; k--)
        cut = strchr(cut, '\n') + 1;
    if (cut != all) {
        *drop = fnet_malloc((size_t)(cut - all) + 1);
        if (*drop == NULL) {
            fnet_free(all);
            return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "list of kept checkpoints");
        }
        memcpy(*drop, all, (size_t)(cut - all));
        (*drop)[cut - all] = '\0';
        memmove(all, cut, strlen(cut) + 1);
    }
    *next = all;
    return FNET_OK;
}

// Remove the files of a list (after the checkpoint that replaces them is written).
static void remove_listed(char *list)
{
    for (char *p = list; p != NULL && *p;) {
        char *nl = strchr(p, '\n');
        *nl = '\0';
        if (unlink(p) != 0 && errno != ENOENT)
            fnet_log(FNET_LOG_WARN, "could not remove the old checkpoint %s: %s", p,
                     strerror(errno));
        p = nl + 1;
    }
}

// Rank 0 writes a distributed run's checkpoints (its parameters are every rank's); the others
// learn whether it could.
static fnet_status ckpt_write(struct fnet_train_loop *L, const fnet_optimizer *opt,
                              const fnet_solver *solver, const fnet_optim_params *op,
                              const fnet_train_params *tp, const struct fnet_run_pos *pos);

fnet_status fnet_train_ckpt_save(struct fnet_train_loop *L, const fnet_optimizer *opt,
                                 const fnet_solver *solver, const fnet_optim_params *op,
                                 const fnet_train_params *tp, const struct fnet_run_pos *pos)
{
    fnet_ctx *ctx = fnet_model_ctx(L->m);
    const double t0 = fnet_now();
    fnet_status st = fnet_dist_ctx_rank(ctx) == 0 ? ckpt_write(L, opt, solver, op, tp, pos)
                                                  : FNET_OK;
    char what[160];
    snprintf(what, sizeof(what), "writing the checkpoint %.120s", tp->save_path);
    st = fnet_dist_bcast_status(ctx, st, what);
    L->last_save = fnet_now();
    L->acc.checkpoint_seconds += L->last_save - t0;
    if (st == FNET_OK)
        L->acc.checkpoints++;
    return st;
}

static fnet_status ckpt_write(struct fnet_train_loop *L, const fnet_optimizer *opt,
                              const fnet_solver *solver, const fnet_optim_params *op,
                              const fnet_train_params *tp, const struct fnet_run_pos *pos)
{
    fnet_model *m = L->m;
    fnet_ctx *ctx = fnet_model_ctx(m);
    struct gather g = {.ctx = ctx};
    char v[VALUE_MAX], mv[4][VALUE_MAX];
    const fnet_rng *r = &L->rng;
    put_meta(&g, RUN "epoch", "%d", pos->epoch);
    put_meta(&g, RUN "batch", "%" PRId64, pos->batch);
    put_meta(&g, RUN "epochs", "%d", tp->epochs);
    put_meta(&g, RUN "steps", "%" PRId64, L->acc.steps);
    put_meta(&g, RUN "samples", "%" PRId64, L->n);
    put_meta(&g, RUN "batch_size", "%" PRId64, L->B);
    put_meta(&g, RUN "data_crc32", "%08" PRIx32, L->data_crc);
    put_meta(&g, RUN "loss_sum", "%a", pos->loss_sum);
    put_meta(&g, RUN "epoch_seconds", "%a", pos->seconds);
    put_meta(&g, RUN "train_seconds", "%a", L->acc.train_seconds);
    put_meta(&g, RUN "lr_scale", "%a", (double)pos->lr_scale);
    put_meta(&g, RUN "rollbacks", "%d", L->acc.rollbacks);
    put_meta(&g, RUN "rng", "%016" PRIx64 ":%016" PRIx64 ":%016" PRIx64 ":%016" PRIx64, r->s[0],
             r->s[1], r->s[2], r->s[3]);
    for (int i = 0; i < N_OPTIM; i++) {
        char key[64];
        format_value(v, op, &optim_settings[i]);
        snprintf(key, sizeof(key), RUN "%s", optim_settings[i].key);
        put_meta(&g, key, "%s", v);
    }
    for (int i = 0; i < N_TRAIN; i++) {
        char key[64];
        format_value(v, tp, &train_settings[i]);
        snprintf(key, sizeof(key), RUN "%s", train_settings[i].key);
        put_meta(&g, key, "%s", v);
    }
    model_settings(m, mv);
    for (int i = 0; i < 4; i++) {
        char key[64];
        snprintf(key, sizeof(key), RUN "%s", model_keys[i]);
        put_meta(&g, key, "%s", mv[i]);
    }
    for (int i = 0; i < tp->n_meta; i++)
        put_meta(&g, tp->meta[i].key, "%s", tp->meta[i].value);
    if (solver != NULL)
        gather_solver(&g, solver);
    if (pos->batch > 0 && pos->snap != NULL) { // where a rollback in this epoch goes back to
        put_tensor(&g, SNAPSHOT_TENSOR, FNET_ST_F32, pos->snap_floats, pos->snap, true);
        put_meta(&g, RUN "snapshot_steps", "%" PRId64, pos->snap_steps);
    }
    // the sample order, int32 on the host
    int32_t *order = NULL;
    if (L->n <= INT32_MAX)
        order = fnet_malloc_array((size_t)L->n, sizeof(int32_t));
    if (order != NULL) {
        for (int64_t i = 0; i < L->n; i++)
            order[i] = (int32_t)L->perm[i];
        put_tensor(&g, ORDER_TENSOR, FNET_ST_I32, L->n, order, false);
    }
    char *numbered = tp->keep > 0 ? numbered_path(tp->save_path, pos) : NULL;
    char *next = NULL, *drop = NULL; // the kept list after this save, and what falls out of it
    if (tp->keep > 0 && numbered != NULL) {
        // the list as it will be after this one, written into the checkpoint; the files that
        // fall out are removed once it is written
        if (kept_next(ctx, L->kept, numbered, tp->keep, &next, &drop) != FNET_OK)
            g.oom = true;
        else
            put_meta(&g, RUN "kept", "%s", next);
    }
    fnet_status st;
    if (g.oom || order == NULL || (tp->keep > 0 && numbered == NULL)) {
        st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "%s: the run's state (%lld samples)",
                       tp->save_path, (long long)L->n);
    } else {
        struct fnet_ckpt_extra extra = {g.t, g.n_t, g.meta, g.n_meta};
        if (numbered != NULL) {
            // the numbered file, then save_path a second name of it (or a second write)
            st = fnet_checkpoint_write(m, opt, numbered, &extra);
            if (st == FNET_OK && !link_over(numbered, tp->save_path))
                st = fnet_checkpoint_write(m, opt, tp->save_path, &extra);
        } else {
            st = fnet_checkpoint_write(m, opt, tp->save_path, &extra);
        }
    }
    if (st == FNET_OK && next != NULL) {
        remove_listed(drop);
        fnet_free(L->kept);
        L->kept = next;
        next = NULL;
    }
    fnet_free(drop);
    fnet_free(next);
    fnet_free(numbered);
    fnet_free(order);
    gather_free(&g);
    return st;
}

// Whether the run stops here (*tp->stop) and a checkpoint is due by time: rank 0's clock and
// any rank's stop when distributed, so that every rank decides alike.
static fnet_status decide(struct fnet_train_loop *L, const fnet_train_params *tp, bool *stop,
                          bool *due)
{
    fnet_ctx *ctx = fnet_model_ctx(L->m);
    *stop = tp->stop != NULL && *tp->stop != 0;
    *due = fnet_train_ckpt_due(L, tp);
    if (fnet_dist_ctx_size(ctx) == 1)
        return FNET_OK;
    double v[2] = {*stop ? 1.0 : 0.0, *due && fnet_dist_ctx_rank(ctx) == 0 ? 1.0 : 0.0};
    fnet_status st = fnet_dist_sum(ctx, v, 2, "the stop and checkpoint decisions");
    *stop = v[0] != 0.0;
    *due = v[1] != 0.0;
    return st;
}

// FNET_ERR_CANCELLED naming where the run stopped and its checkpoint.
static fnet_status stopped(struct fnet_train_loop *L, const fnet_train_params *tp,
                           const struct fnet_run_pos *at)
{
    char where[96];
    if (at->batch > 0)
        snprintf(where, sizeof(where), "in epoch %d of %d after step %" PRId64 " of %" PRId64,
                 at->epoch + 1, tp->epochs, at->batch, L->n_batches);
    else
        snprintf(where, sizeof(where), "after epoch %d of %d", at->epoch, tp->epochs);
    if (tp->save_path != NULL)
        return fnet_fail(fnet_model_ctx(L->m), FNET_ERR_CANCELLED, "stopped on request %s; the "
                         "run's checkpoint is %s", where, tp->save_path);
    return fnet_fail(fnet_model_ctx(L->m), FNET_ERR_CANCELLED, "stopped on request %s; no "
                     "checkpoint (no save path)", where);
}

fnet_status fnet_train_loop_step_end(struct fnet_train_loop *L, const fnet_optimizer *opt,
                                     const struct fnet_solver *solver,
                                     const fnet_optim_params *op, const fnet_train_params *tp,
                                     const struct fnet_run_pos *at)
{
    bool stop = false, due = false;
    fnet_status st = decide(L, tp, &stop, &due);
    if (st != FNET_OK)
        return st;
    if (tp->save_path != NULL && (stop || due)) {
        st = fnet_train_ckpt_save(L, opt, solver, op, tp, at);
        if (st != FNET_OK)
            return st;
    }
    return stop ? stopped(L, tp, at) : FNET_OK;
}

fnet_status fnet_train_loop_epoch_saves(struct fnet_train_loop *L, const fnet_optimizer *opt,
                                        const struct fnet_solver *solver,
                                        const fnet_optim_params *op,
                                        const fnet_train_params *tp,
                                        const struct fnet_run_pos *at, bool stop)
{
    bool req = false, due = false;
    fnet_status st = decide(L, tp, &req, &due);
    if (st != FNET_OK)
        return st;
    bool end = at->epoch >= tp->epochs || stop;
    if (tp->save_path != NULL &&
        (end || req || due || (tp->save_every > 0 && at->epoch % tp->save_every == 0))) {
        st = fnet_train_ckpt_save(L, opt, solver, op, tp, at);
        if (st != FNET_OK)
            return st;
    }
    // at the run's end a stop request has nothing left to stop
    return req && !end ? stopped(L, tp, at) : FNET_OK;
}

// ---------------------------------------------------------------------------------------------
// Resuming

struct reader {
    fnet_ctx *ctx;
    const char *path;
    const struct fnet_safetensors *f;
};

// The run's metadata "run.<key>" (or "solver.<key>" with the full key): a FORMAT error when absent.
static fnet_status need(const struct reader *rd, const char *key, const char **v)
{
    *v = fnet_safetensors_meta(rd->f, key);
    if (*v == NULL)
        return fnet_fail(rd->ctx, FNET_ERR_FORMAT, "%s: metadata has no '%s': not a checkpoint "
                         "of a run (it was saved without its run state, or damaged)", rd->path,
                         key);
    return FNET_OK;
}

static fnet_status bad(const struct reader *rd, const char *key, const char *v, const char *want)
{
    return fnet_fail(rd->ctx, FNET_ERR_FORMAT, "%s: metadata '%s' is '%.40s', expected %s",
                     rd->path, key, v, want);
}

static fnet_status read_i64(const struct reader *rd, const char *key, int64_t lo, int64_t hi,
                            int64_t *out)
{
    const char *v;
    fnet_status st = need(rd, key, &v);
    if (st != FNET_OK)
        return st;
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (*v == '\0' || *end != '\0' || errno != 0 || x < lo || x > hi) {
        char want[96];
        snprintf(want, sizeof(want), "an integer in [%" PRId64 ", %" PRId64 "]", lo, hi);
        return bad(rd, key, v, want);
    }
    *out = x;
    return FNET_OK;
}

static bool parse_double(const char *v, double *out)
{
    char *end;
    *out = strtod(v, &end);
    return *v != '\0' && *end == '\0' && isfinite(*out);
}

static fnet_status read_f64(const struct reader *rd, const char *key, double lo, double *out)
{
    const char *v;
    fnet_status st = need(rd, key, &v);
    if (st != FNET_OK)
        return st;
    if (!parse_double(v, out) || !(*out >= lo))
        return bad(rd, key, v, "a finite number not below its minimum");
    return FNET_OK;
}

// The settings the run was trained with against this call's: the first difference is an error.
static fnet_status check_settings(const struct reader *rd, fnet_model *m,
                                  const fnet_optim_params *op, const fnet_train_params *tp)
{
    char key[64], v[VALUE_MAX], a[VALUE_MAX], b[VALUE_MAX];
    const char *stored;
    for (int set = 0; set < 3; set++) {
        int n = set == 0 ? N_OPTIM : set == 1 ? N_TRAIN : 4;
        char mv[4][VALUE_MAX];
        if (set == 2)
            model_settings(m, mv);
        for (int i = 0; i < n; i++) {
            const char *name = set == 0 ? optim_settings[i].key
                               : set == 1 ? train_settings[i].key : model_keys[i];
            if (set == 0)
                format_value(v, op, &optim_settings[i]);
            else if (set == 1)
                format_value(v, tp, &train_settings[i]);
            else
                snprintf(v, sizeof(v), "%s", mv[i]);
            snprintf(key, sizeof(key), RUN "%s", name);
            fnet_status st = need(rd, key, &stored);
            if (st != FNET_OK)
                return st;
            if (strcmp(stored, v) == 0)
                continue;
            if (set == 0 && i == 0) { // the optimizer's kind, by name
                int k = atoi(stored);
                return fnet_fail(rd->ctx, FNET_ERR_INVALID_ARG, "%s: the run was trained with "
                                 "the %s optimizer, not %s: resume it with its own", rd->path,
                                 fnet_optim_kind_name((fnet_optim_kind)k),
                                 fnet_optim_kind_name(op->kind));
            }
            return fnet_fail(rd->ctx, FNET_ERR_INVALID_ARG, "%s: the run was trained with %s = "
                             "%s, this one has %s: resuming must keep the run's settings",
                             rd->path, name, readable(stored, a), readable(v, b));
        }
    }
    return FNET_OK;
}

// The solver's state, checked (all of it, before anything is written) and then, with install,
// put in place: pair k at ring slot k, the newest last.
static fnet_status solver_state(const struct reader *rd, fnet_solver *s, bool install)
{
    int64_t count;
    double gamma, last_move;
    fnet_status st = read_i64(rd, SOLVER "count", 0, s->m, &count);
    if (st == FNET_OK)
        st = read_f64(rd, SOLVER "gamma", 0.0, &gamma);
    if (st == FNET_OK)
        st = read_f64(rd, SOLVER "last_move", 0.0, &last_move);
    const char *rho;
    if (st == FNET_OK)
        st = need(rd, SOLVER "rho", &rho);
    if (st != FNET_OK)
        return st;
    const char *p = rho;
    char name[64];
    for (int64_t k = 0; k < count; k++) {
        char *end;
        double r = strtod(p, &end);
        if (end == p || !isfinite(r) || !(r > 0.0) || (*end != (k + 1 < count ? ',' : '\0')))
            return bad(rd, SOLVER "rho", rho, "one positive number per history pair");
        p = end + (*end == ',');
        if (install)
            s->rho[k] = r;
        for (int which = 0; which < 2; which++) {
            snprintf(name, sizeof(name), SOLVER "%c%" PRId64, which ? 'y' : 's', k);
            const struct fnet_safetensors_tensor *t = fnet_safetensors_find(rd->f, name);
            if (t == NULL || t->dtype != FNET_ST_F32 || t->ndim != 1 || t->shape[0] != s->n)
                return fnet_fail(rd->ctx, FNET_ERR_FORMAT, "%s: tensor '%s' is missing or not "
                                 "F32 [%lld]", rd->path, name, (long long)s->n);
            if (install)
                rd->ctx->be->upload(rd->ctx, which ? s->yv[k] : s->sv[k], t->data,
                                    (size_t)s->n * sizeof(float));
        }
    }
    if (count == 0 && *rho != '\0')
        return bad(rd, SOLVER "rho", rho, "empty (no history pairs)");
    if (install) {
        s->count = (int)count;
        s->head = count > 0 ? (int)count - 1 : 0;
        s->gamma = gamma;
        s->last_move = last_move;
    }
    return FNET_OK;
}

// "hex:hex:hex:hex" -> the shuffling stream's state (not all zero: xoshiro's one bad state).
static bool parse_rng(const char *v, fnet_rng *r)
{
    for (int w = 0; w < 4; w++) {
        char *end;
        if (strlen(v) < 16)
            return false;
        errno = 0;
        unsigned long long x = strtoull(v, &end, 16);
        if (errno != 0 || end != v + 16 || *end != (w < 3 ? ':' : '\0'))
            return false;
        r->s[w] = x;
        v = end + 1;
    }
    return (r->s[0] | r->s[1] | r->s[2] | r->s[3]) != 0;
}

// The stored list of numbered checkpoints ("run.kept"): '\n'-terminated names; of them the ones
// that are numbered files of this call's save path (the rotation goes on with them; a run
// branched to another path leaves the original's files alone). *out NULL when none.
static fnet_status kept_list(const struct reader *rd, const fnet_train_params *tp, char **out)
{
    *out = NULL;
    const char *kept = fnet_safetensors_meta(rd->f, RUN "kept");
    if (kept == NULL)
        return FNET_OK;
    size_t len = strlen(kept);
    if (len > 0 && kept[len - 1] != '\n')
        return bad(rd, RUN "kept", kept, "file names, each ended by a newline");
    if (tp->save_path == NULL || tp->keep == 0 || len == 0)
        return FNET_OK;
    char *list = fnet_malloc(len + 1), *line = fnet_malloc(len + 1);
    if (list == NULL || line == NULL) {
        fnet_free(line);
        fnet_free(list);
        return fnet_fail(rd->ctx, FNET_ERR_OUT_OF_MEMORY, "%s: list of kept checkpoints",
                         rd->path);
    }
    size_t n = 0;
    for (const char *p = kept; *p;) {
        const char *nl = strchr(p, '\n');
        size_t l = (size_t)(nl - p);
        memcpy(line, p, l);
        line[l] = '\0';
        if (is_numbered_of(tp->save_path, line)) {
            memcpy(list + n, p, l + 1);
            n += l + 1;
        }
        p = nl + 1;
    }
    list[n] = '\0';
    fnet_free(line);
    if (n == 0)
        fnet_free(list);
    else
        *out = list;
    return FNET_OK;
}

fnet_status fnet_train_ckpt_resume(struct fnet_train_loop *L, fnet_optimizer *opt,
                                   fnet_solver *solver, const fnet_optim_params *op,
                                   const fnet_train_params *tp, struct fnet_run_pos *pos,
                                   bool dry)
{
    fnet_model *m = L->m;
    fnet_ctx *ctx = fnet_model_ctx(m);
    struct fnet_ckpt_file *ck = NULL;
    fnet_status st = fnet_checkpoint_open(ctx, tp->resume_path, &ck);
    if (st != FNET_OK)
        return st;
    struct reader rd = {ctx, tp->resume_path, fnet_checkpoint_contents(ck)};
    int64_t epoch, batch, steps, samples, bsize, rollbacks, epochs;
    double loss_sum, seconds, train_seconds, lr_scale;
    const char *crc_s, *rng_s;
    fnet_rng rng;
    // the run's own entries: present and well formed
    if ((st = read_i64(&rd, RUN "epoch", 0, INT32_MAX, &epoch)) != FNET_OK ||
        (st = read_i64(&rd, RUN "epochs", 1, INT32_MAX, &epochs)) != FNET_OK ||
        (st = read_i64(&rd, RUN "samples", 1, INT64_MAX, &samples)) != FNET_OK ||
        (st = read_i64(&rd, RUN "batch_size", 1, INT64_MAX, &bsize)) != FNET_OK ||
        (st = read_i64(&rd, RUN "batch", 0, INT64_MAX, &batch)) != FNET_OK ||
        (st = read_i64(&rd, RUN "steps", 0, INT64_MAX / 4, &steps)) != FNET_OK ||
        (st = read_i64(&rd, RUN "rollbacks", 0, INT32_MAX, &rollbacks)) != FNET_OK ||
        (st = read_f64(&rd, RUN "loss_sum", -INFINITY, &loss_sum)) != FNET_OK ||
        (st = read_f64(&rd, RUN "epoch_seconds", 0.0, &seconds)) != FNET_OK ||
        (st = read_f64(&rd, RUN "train_seconds", 0.0, &train_seconds)) != FNET_OK ||
        (st = read_f64(&rd, RUN "lr_scale", 0.0, &lr_scale)) != FNET_OK ||
        (st = need(&rd, RUN "data_crc32", &crc_s)) != FNET_OK ||
        (st = need(&rd, RUN "rng", &rng_s)) != FNET_OK)
        goto out_close;
    if (!parse_rng(rng_s, &rng)) {
        st = bad(&rd, RUN "rng", rng_s, "four 16-digit hex words, not all zero");
        goto out_close;
    }
    if (!(lr_scale > 0.0 && lr_scale <= 1.0)) {
        st = bad(&rd, RUN "lr_scale", fnet_safetensors_meta(rd.f, RUN "lr_scale"),
                 "a factor in (0, 1]");
        goto out_close;
    }
    // this run against the stored one: its settings, data, batch and length
    st = check_settings(&rd, m, op, tp);
    if (st != FNET_OK)
        goto out_close;
    char crc_now[16];
    snprintf(crc_now, sizeof(crc_now), "%08" PRIx32, L->data_crc);
    if (samples != L->n || bsize != L->B || strcmp(crc_s, crc_now) != 0) {
        st = fnet_fail(ctx, FNET_ERR_INVALID_ARG, "%s: the run was trained on %lld samples in "
                       "batches of %lld (data CRC-32 %s); this training set has %lld samples in "
                       "batches of %lld (CRC-32 %s): resume it on the same data", tp->resume_path,
                       (long long)samples, (long long)bsize, crc_s, (long long)L->n,
                       (long long)L->B, crc_now);
        goto out_close;
    }
    if (batch >= L->n_batches || (epoch > 0 && steps == 0)) {
        st = fnet_fail(ctx, FNET_ERR_FORMAT, "%s: the run's position (epoch %lld, step %lld, "
                       "%lld steps in all) does not fit its %lld steps per epoch",
                       tp->resume_path, (long long)epoch, (long long)batch, (long long)steps,
                       (long long)L->n_batches);
        goto out_close;
    }
    if (epoch >= tp->epochs && !dry) {
        st = fnet_fail(ctx, FNET_ERR_INVALID_ARG, "%s: the run has done %lld of its %lld epochs; "
                       "resuming it to %d epochs leaves nothing to train (ask for more epochs)",
                       tp->resume_path, (long long)epoch, (long long)epochs, tp->epochs);
        goto out_close;
    }
    const struct fnet_safetensors_tensor *order = fnet_safetensors_find(rd.f, ORDER_TENSOR);
    if (order == NULL || order->dtype != FNET_ST_I32 || order->ndim != 1 ||
        order->shape[0] != L->n) {
        st = fnet_fail(ctx, FNET_ERR_FORMAT, "%s: tensor '" ORDER_TENSOR "' is missing or not "
                       "I32 [%lld]", tp->resume_path, (long long)L->n);
        goto out_close;
    }
    // a permutation of 0..n-1 (the data view checks every index again at each batch)
    uint8_t *seen = fnet_calloc((size_t)L->n, 1);
    if (seen == NULL) {
        st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "%s: checking the sample order",
                       tp->resume_path);
        goto out_close;
    }
    const unsigned char *ob = order->data;
    for (int64_t i = 0; i < L->n && st == FNET_OK; i++) {
        int32_t x;
        memcpy(&x, ob + 4 * i, sizeof(x));
        if (x < 0 || x >= L->n || seen[x]++)
            st = fnet_fail(ctx, FNET_ERR_FORMAT, "%s: tensor '" ORDER_TENSOR "': element %lld "
                           "is %d: not a permutation of the %lld samples", tp->resume_path,
                           (long long)i, x, (long long)L->n);
    }
    fnet_free(seen);
    if (st == FNET_OK)
        st = fnet_checkpoint_check(ck, m, opt); // the model and the optimizer's state first
    if (st == FNET_OK && solver != NULL)
        st = solver_state(&rd, solver, false);
    // within an epoch of a run that rolls back: the epoch's start, where a rollback goes back to
    const struct fnet_safetensors_tensor *snap = NULL;
    int64_t snap_steps = 0;
    if (st == FNET_OK && tp->on_nan == FNET_NAN_ROLLBACK && batch > 0) {
        int64_t floats = fnet_model_num_params(m) * (1 + (opt ? fnet_optimizer_num_states(opt) : 0));
        snap = fnet_safetensors_find(rd.f, SNAPSHOT_TENSOR);
        if (snap == NULL || snap->dtype != FNET_ST_F32 || snap->ndim != 1 || snap->shape[0] != floats)
            st = fnet_fail(ctx, FNET_ERR_FORMAT, "%s: tensor '" SNAPSHOT_TENSOR "' (the epoch's "
                           "start, for a rollback) is missing or not F32 [%lld]", tp->resume_path,
                           (long long)floats);
        else
            st = read_i64(&rd, RUN "snapshot_steps", 0, INT64_MAX / 4, &snap_steps);
    }
    float *snap_host = NULL;
    if (st == FNET_OK && snap != NULL) {
        snap_host = fnet_malloc_array((size_t)snap->shape[0] + 1, sizeof(float));
        if (snap_host == NULL)
            st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "%s: the epoch's start for a rollback",
                           tp->resume_path);
        else
            memcpy(snap_host, snap->data, (size_t)snap->shape[0] * sizeof(float));
    }
    if (dry) { // checked, nothing changed: where the run stands
        fnet_free(snap_host);
        *pos = (struct fnet_run_pos){.epoch = (int)epoch, .batch = batch};
        goto out_close;
    }
    char *kept_copy = NULL;
    if (st == FNET_OK)
        st = kept_list(&rd, tp, &kept_copy);
    if (st == FNET_OK)
        st = fnet_checkpoint_install(ck, m, opt); // fails only before anything changes
    if (st != FNET_OK) {
        fnet_free(snap_host);
        fnet_free(kept_copy);
        goto out_close;
    }
    // nothing below fails
    if (solver != NULL)
        solver_state(&rd, solver, true);
    for (int64_t i = 0; i < L->n; i++) {
        int32_t x;
        memcpy(&x, ob + 4 * i, sizeof(x));
        L->perm[i] = x;
    }
    L->rng = rng;
    L->acc.steps = steps;
    L->acc.epochs_run = (int)epoch;
    L->acc.train_seconds = train_seconds;
    L->acc.rollbacks = (int)rollbacks;
    fnet_free(L->kept);
    L->kept = kept_copy;
    *pos = (struct fnet_run_pos){.epoch = (int)epoch, .batch = batch, .loss_sum = loss_sum,
                                 .seconds = seconds, .lr_scale = (float)lr_scale,
                                 .snap_host = snap_host,
                                 .snap_floats = snap ? snap->shape[0] : 0,
                                 .snap_steps = snap_steps};
out_close:
    fnet_checkpoint_close(ck);
    return st;
}
