/* Pruned dense layers into CSR layers (fnet_model_sparsify), and sparse training from scratch:
 * the topology updates of SET (Mocanu et al. 2018) and RigL (Evci et al. 2020) and the step hook
 * that runs them on their schedules (docs/sparse.md). The pattern is host-side work: each layer
 * keeps a host mirror of it; the values and the optimizer's state move with their entries. */
#include "core/backend.h"
#include "core/model_impl.h"
#include "dense/init.h"
#include "sparse/csr.h"
#include "dist/dist.h"

#include <factornet/sparse.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

fnet_status fnet_model_sparsify(fnet_model *m, double min_sparsity, int *converted)
{
    if (converted)
        *converted = 0;
    if (m == NULL)
        return FNET_ERR_INVALID_ARG;
    fnet_ctx *ctx = fnet_model_ctx(m);
    if (!(min_sparsity >= 0.0 && min_sparsity <= 1.0))
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "sparsify: minimum sparsity must be in "
                         "[0, 1], got %g", min_sparsity);
    int L = fnet_model_num_layers(m), count = 0;
    int *idx = fnet_calloc((size_t)(L > 0 ? L : 1), sizeof(int));
    fnet_layer **fresh = fnet_calloc((size_t)(L > 0 ? L : 1), sizeof(*fresh));
    fnet_status st = FNET_OK;
    if (idx == NULL || fresh == NULL) {
        st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "sparsify: %d layers", L);
        goto out;
    }
    for (int i = 0; i < L && st == FNET_OK; i++) {
        fnet_layer *l = fnet_model_layer(m, i);
        if (fnet_layer_kind_of(l) != FNET_LAYER_DENSE)
            continue;
        int64_t nw = l->n_out * l->n_in;
        float *w = fnet_malloc_array((size_t)l->n_params, sizeof(float));
        if (w == NULL) {
            st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "sparsify: layer %d", i);
            break;
        }
        fnet_layer_get_params(l, w); // pruned weights are zero: the mask is in the values
        int64_t zeros = 0;
        for (int64_t e = 0; e < nw; e++)
            zeros += w[e] == 0.0f;
        if ((double)zeros > min_sparsity * (double)nw) {
            st = fnet_sparse_from_dense(ctx, w, l->n_params > nw ? w + nw : NULL, l->n_out,
                                        l->n_in, &fresh[count]);
            if (st == FNET_OK)
                idx[count++] = i;
        }
        fnet_free(w);
    }
    if (st == FNET_OK && count > 0) {
        st = fnet_model_replace_layers(m, count, idx, fresh, NULL);
        if (st == FNET_OK && converted)
            *converted = count;
        count = 0; // freed on failure, the model's on success
    }
out:
    for (int k = 0; k < count; k++)
        fnet_layer_free(fresh[k]);
    fnet_free(fresh);
    fnet_free(idx);
    return st;
}

// ---- topology updates ----

static const char *const update_names[] = {[FNET_SPARSE_STATIC] = "static",
                                           [FNET_SPARSE_SET] = "set",
                                           [FNET_SPARSE_RIGL] = "rigl"};

fnet_status fnet_sparse_update_parse(const char *name, fnet_sparse_update *kind)
{
    for (int i = 0; name != NULL && kind != NULL && i < 3; i++)
        if (strcmp(name, update_names[i]) == 0) {
            *kind = (fnet_sparse_update)i;
            return FNET_OK;
        }
    return FNET_ERR_INVALID_ARG;
}

const char *fnet_sparse_update_name(fnet_sparse_update kind)
{
    return (unsigned)kind < 3 ? update_names[kind] : "unknown";
}

// An entry of a layer's pattern while it is rebuilt: its position and where it came from.
struct entry {
    int64_t pos;  // r·n_in + c
    int64_t from; // its index in the old values, -1 for a new one
    float key;    // what orders it: |w| when dropping, the gradient's magnitude when growing
};

static int by_key(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

static int by_pos(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

// Per-layer work of an update: the new pattern, the values' and state's moves.
struct update_ctx {
    fnet_model *m;
    fnet_optimizer *opt;
    fnet_sparse_update kind;
    double zeta;
    fnet_rng *rng;
    const float *G; // RigL: the dense gradient of the layer (host, n_out·n_in), else NULL
};

// Rebuild layer i's pattern: drop k smallest |w|, regrow k. Values and optimizer state of the
// kept entries move to their new slots; new entries get SET's draws or zero, and zero state.
static fnet_status update_layer(struct update_ctx *u, int i)
{
    fnet_model *m = u->m;
    fnet_layer *l = fnet_model_layer(m, i);
    fnet_ctx *ctx = l->ctx;
    int64_t nnz = fnet_sparse_nnz(l), n_in = l->n_in, total = l->n_out * n_in;
    int64_t k = llround(u->zeta * (double)nnz);
    if (k > total - nnz)
        k = total - nnz; // no room to regrow more (density near 1)
    if (k <= 0)
        return FNET_OK;
    const int32_t *rp = fnet_sparse_row_ptr(l), *col = fnet_sparse_col(l);
    fnet_status st = FNET_OK;
    struct entry *e = fnet_malloc_array((size_t)nnz, sizeof(*e));
    float *v = fnet_malloc_array((size_t)l->n_params, sizeof(float)), *nv = NULL;
    uint8_t *taken = fnet_calloc((size_t)total, 1);
    int32_t *nrp = fnet_malloc_array((size_t)l->n_out + 1, sizeof(int32_t));
    int32_t *ncol = fnet_malloc_array((size_t)nnz, sizeof(int32_t));
    struct entry *grow = NULL;
    int64_t *run = NULL;
    if (e == NULL || v == NULL || taken == NULL || nrp == NULL || ncol == NULL) {
        st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "sparse update of layer %d", i);
        goto out;
    }
    fnet_layer_get_params(l, v); // the nnz values, then the bias
    for (int64_t r = 0; r < l->n_out; r++)
        for (int32_t q = rp[r]; q < rp[r + 1]; q++) {
            e[q] = (struct entry){.pos = r * n_in + col[q], .from = q, .key = fabsf(v[q])};
            taken[r * n_in + col[q]] = 1;
        }
    // drop the k smallest: they sort first; their positions stay taken, so none regrows there
    qsort(e, (size_t)nnz, sizeof(*e), by_key);
    if (u->kind == FNET_SPARSE_SET) {
        for (int64_t d = 0; d < k; d++) {
            int64_t pos;
            do
                pos = (int64_t)fnet_rng_below(u->rng, (uint64_t)total);
            while (taken[pos]);
            taken[pos] = 1;
            e[d] = (struct entry){.pos = pos, .from = -1};
        }
    } else {
        // RigL: the k free positions of largest |gradient|
        int64_t free_count = total - nnz;
        grow = fnet_malloc_array((size_t)free_count, sizeof(*grow));
        if (grow == NULL) {
            st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "RigL update of layer %d", i);
            goto out;
        }
        int64_t f = 0;
        for (int64_t pos = 0; pos < total; pos++)
            if (!taken[pos])
                grow[f++] = (struct entry){.pos = pos, .from = -1, .key = -fabsf(u->G[pos])};
        qsort(grow, (size_t)f, sizeof(*grow), by_key);
        for (int64_t d = 0; d < k; d++)
            e[d] = grow[d];
    }
    qsort(e, (size_t)nnz, sizeof(*e), by_pos);
    // the new pattern and values; runs of kept entries for the optimizer's state
    nv = fnet_malloc_array((size_t)nnz, sizeof(float));
    run = fnet_malloc_array((size_t)nnz * 3 + 3, sizeof(int64_t));
    if (nv == NULL || run == NULL) {
        st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "sparse update of layer %d", i);
        goto out;
    }
    int64_t fan_in = (nnz + l->n_out - 1) / l->n_out, fan_out = (nnz + n_in - 1) / n_in;
    int64_t nr = 0, base = fnet_model_layer_offset(m, i), n = fnet_model_num_params(m);
    int64_t *src = run, *dst = run + nnz + 1, *len = run + 2 * nnz + 2;
    nrp[0] = 0;
    int64_t r = 0;
    for (int64_t q = 0; q < nnz; q++) {
        while (e[q].pos >= (r + 1) * n_in)
            nrp[++r] = (int32_t)q;
        ncol[q] = (int32_t)(e[q].pos - r * n_in);
        if (e[q].from >= 0) {
            nv[q] = v[e[q].from];
            // runs of entries that moved together (between two drops or regrowths) in one copy
            if (nr > 0 && src[nr - 1] + len[nr - 1] == base + e[q].from &&
                dst[nr - 1] + len[nr - 1] == base + q) {
                len[nr - 1]++;
            } else {
                src[nr] = base + e[q].from;
                dst[nr] = base + q;
                len[nr++] = 1;
            }
        } else if (u->kind == FNET_SPARSE_SET) {
            fnet_init_fill(fnet_sparse_init_kind(l), fan_in, fan_out, u->rng, 1, &nv[q]);
        } else {
            nv[q] = 0.0f;
        }
    }
    while (r < l->n_out)
        nrp[++r] = (int32_t)nnz;
    // the optimizer's state: the other layers' slices stay, this layer's entries move (at most
    // 2k + 1 runs: k entries dropped, k grown)
    if (u->opt != NULL) {
        int64_t before = base, after = n - (base + nnz);
        int64_t *s2 = fnet_malloc_array((size_t)(nr + 2) * 3, sizeof(int64_t));
        if (s2 == NULL) {
            st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "sparse update of layer %d", i);
            goto out;
        }
        int64_t *a = s2, *b = s2 + nr + 2, *c = s2 + 2 * (nr + 2);
        int cnt = 0;
        if (before > 0) {
            a[cnt] = 0, b[cnt] = 0, c[cnt++] = before;
        }
        for (int64_t q = 0; q < nr; q++)
            a[cnt] = src[q], b[cnt] = dst[q], c[cnt++] = len[q];
        if (after > 0) {
            a[cnt] = base + nnz, b[cnt] = base + nnz, c[cnt++] = after;
        }
        st = fnet_optimizer_remap(u->opt, n, cnt, a, b, c);
        fnet_free(s2);
        if (st != FNET_OK)
            goto out;
    }
    ctx->be->upload(ctx, l->w, nv, (size_t)nnz * sizeof(float));
    fnet_sparse_set_pattern(l, nrp, ncol);
    fnet_model_touch(m);
out:
    fnet_free(run);
    fnet_free(nv);
    fnet_free(grow);
    fnet_free(ncol);
    fnet_free(nrp);
    fnet_free(taken);
    fnet_free(v);
    fnet_free(e);
    return st;
}

fnet_status fnet_sparse_update_topology(fnet_model *m, fnet_optimizer *opt,
                                        fnet_sparse_update kind, double zeta, const float *x,
                                        const int32_t *labels, int64_t batch, fnet_rng *rng)
{
    if (m == NULL)
        return FNET_ERR_INVALID_ARG;
    fnet_ctx *ctx = fnet_model_ctx(m);
    if (!(zeta >= 0.0 && zeta <= 1.0))
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "sparse update: drop fraction must be in "
                         "[0, 1], got %g", zeta);
    if ((unsigned)kind > FNET_SPARSE_RIGL || (kind == FNET_SPARSE_SET && rng == NULL) ||
        (kind == FNET_SPARSE_RIGL && (x == NULL || labels == NULL || batch < 1)))
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "sparse update: %s needs %s",
                         (unsigned)kind > FNET_SPARSE_RIGL ? "an unknown kind" : fnet_sparse_update_name(kind),
                         kind == FNET_SPARSE_RIGL ? "a gradient batch"
                         : kind == FNET_SPARSE_SET ? "an rng" : "static, set or rigl");
    if (kind == FNET_SPARSE_STATIC || zeta == 0.0)
        return FNET_OK;
    struct update_ctx u = {.m = m, .opt = opt, .kind = kind, .zeta = zeta, .rng = rng};
    fnet_status st = FNET_OK;
    for (int i = 0; i < fnet_model_num_layers(m) && st == FNET_OK; i++) {
        fnet_layer *l = fnet_model_layer(m, i);
        if (!fnet_sparse_is(l))
            continue;
        float *Gh = NULL, *G = NULL;
        if (kind == FNET_SPARSE_RIGL) {
            // the dense gradient of this layer's whole weight matrix on the batch
            int64_t total = l->n_out * l->n_in;
            G = fnet_be_zeros(ctx, total);
            Gh = fnet_malloc_array((size_t)total, sizeof(float));
            if (G == NULL || Gh == NULL) {
                ctx->be->free(ctx, G);
                fnet_free(Gh);
                return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "RigL dense gradient of layer %d",
                                 i);
            }
            fnet_sparse_probe(l, G);
            double loss;
            st = fnet_model_loss_grad(m, x, labels, batch, &loss, NULL);
            fnet_sparse_probe(l, NULL);
            // distributed, each rank probed its rows: the batch's gradient is their sum
            if (st == FNET_OK)
                st = fnet_dist_sum_floats(ctx, G, total);
            if (st == FNET_OK)
                ctx->be->download(ctx, Gh, G, (size_t)total * sizeof(float));
            ctx->be->free(ctx, G);
            u.G = Gh;
        }
        if (st == FNET_OK)
            st = update_layer(&u, i);
        fnet_free(Gh);
    }
    return st;
}

// ---- the schedule ----

struct fnet_sparse_schedule {
    fnet_ctx *ctx;
    fnet_sparse_update kind;
    double zeta, end;
    int64_t every, batch;
    const fnet_dataset *data;
    fnet_rng rng;
    float *x;        // RigL's batch (backend memory)
    int32_t *labels; // (host)
    int64_t *idx;
    int updates;
};

fnet_status fnet_sparse_schedule_create(fnet_ctx *ctx, fnet_sparse_update kind, double zeta,
                                        int64_t every, double end, const fnet_dataset *data,
                                        int64_t batch, uint64_t seed, fnet_sparse_schedule **out)
{
    if (ctx == NULL || out == NULL)
        return FNET_ERR_INVALID_ARG;
    *out = NULL;
    if ((unsigned)kind > FNET_SPARSE_RIGL || !(zeta >= 0.0 && zeta <= 1.0) || every < 0 ||
        !(end > 0.0 && end <= 1.0))
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "sparse schedule: drop fraction %g must be in "
                         "[0, 1], interval %lld >= 0, end %g in (0, 1]", zeta, (long long)every,
                         end);
    if (kind == FNET_SPARSE_RIGL && (data == NULL || batch < 1 || fnet_dataset_size(data) < 1))
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "sparse schedule: RigL needs a dataset and a "
                         "batch size for its gradient");
    fnet_sparse_schedule *s = fnet_calloc(1, sizeof(*s));
    if (s == NULL)
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "sparse schedule");
    *s = (fnet_sparse_schedule){.ctx = ctx, .kind = kind, .zeta = zeta, .end = end,
                                .every = every, .batch = batch, .data = data};
    fnet_rng_seed(&s->rng, seed);
    if (kind == FNET_SPARSE_RIGL) {
        if (batch > fnet_dataset_size(data))
            s->batch = batch = fnet_dataset_size(data);
        s->x = ctx->be->alloc(ctx, (size_t)(batch * fnet_dataset_dim(data)) * sizeof(float));
        s->labels = fnet_malloc_array((size_t)batch, sizeof(int32_t));
        s->idx = fnet_malloc_array((size_t)batch, sizeof(int64_t));
        if (s->x == NULL || s->labels == NULL || s->idx == NULL) {
            fnet_sparse_schedule_free(s);
            return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "RigL batch of %lld", (long long)batch);
        }
    }
    *out = s;
    return FNET_OK;
}

void fnet_sparse_schedule_free(fnet_sparse_schedule *s)
{
    if (s == NULL)
        return;
    s->ctx->be->free(s->ctx, s->x);
    fnet_free(s->labels);
    fnet_free(s->idx);
    fnet_free(s);
}

int fnet_sparse_schedule_updates(const fnet_sparse_schedule *s)
{
    return s ? s->updates : 0;
}

fnet_status fnet_sparse_step_hook(fnet_model *m, fnet_optimizer *opt, const fnet_step_info *info,
                                  void *user)
{
    fnet_sparse_schedule *s = user;
    if (s == NULL || s->kind == FNET_SPARSE_STATIC)
        return FNET_OK;
    int64_t t = info->run_steps, T = info->steps_per_epoch * info->epochs;
    int64_t T_end = (int64_t)floor(s->end * (double)T);
    bool due = s->every > 0 ? t % s->every == 0 : info->step == info->steps_per_epoch;
    if (!due || t >= T_end)
        return FNET_OK;
    double zeta = s->zeta;
    if (s->kind == FNET_SPARSE_RIGL)
        zeta = s->zeta / 2.0 * (1.0 + cos(3.14159265358979323846 * (double)t / (double)T_end));
    fnet_status st = FNET_OK;
    if (s->kind == FNET_SPARSE_RIGL) {
        int64_t n = fnet_dataset_size(s->data);
        for (int64_t b = 0; b < s->batch; b++)
            s->idx[b] = (int64_t)fnet_rng_below(&s->rng, (uint64_t)n);
        st = fnet_dataset_batch(s->data, s->idx, 0, s->batch, s->x, s->labels);
    }
    if (st == FNET_OK)
        st = fnet_sparse_update_topology(m, opt, s->kind, zeta, s->x, s->labels, s->batch,
                                         &s->rng);
    if (st == FNET_OK)
        s->updates++;
    return st;
}
