/* Magnitude pruning on the model's mask, per layer or global, and structured pruning that
 * removes whole neurons (docs/sparse.md). Host-side algorithms: the parameters and the mask are
 * downloaded once, the new mask uploaded once (fnet_model_set_mask). */
#include "core/layer_impl.h"
#include "core/model_impl.h"
#include "io/spec.h"
#include "sparse/csr.h"

#include <factornet/sparse.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const scope_names[] = {[FNET_PRUNE_LAYER] = "layer",
                                          [FNET_PRUNE_GLOBAL] = "global"};
static const char *const schedule_names[] = {[FNET_PRUNE_ONESHOT] = "oneshot",
                                             [FNET_PRUNE_ITERATIVE] = "iterative",
                                             [FNET_PRUNE_GRADUAL] = "gradual"};

fnet_status fnet_prune_scope_parse(const char *name, fnet_prune_scope *scope)
{
    for (int i = 0; name != NULL && scope != NULL && i < 2; i++)
        if (strcmp(name, scope_names[i]) == 0) {
            *scope = (fnet_prune_scope)i;
            return FNET_OK;
        }
    return FNET_ERR_INVALID_ARG;
}

fnet_status fnet_prune_schedule_parse(const char *name, fnet_prune_schedule *schedule)
{
    for (int i = 0; name != NULL && schedule != NULL && i < 3; i++)
        if (strcmp(name, schedule_names[i]) == 0) {
            *schedule = (fnet_prune_schedule)i;
            return FNET_OK;
        }
    return FNET_ERR_INVALID_ARG;
}

const char *fnet_prune_scope_name(fnet_prune_scope scope)
{
    return (unsigned)scope < 2 ? scope_names[scope] : "unknown";
}

const char *fnet_prune_schedule_name(fnet_prune_schedule schedule)
{
    return (unsigned)schedule < 3 ? schedule_names[schedule] : "unknown";
}

// Whether tensor t of layer l is prunable: decayed (a weight, not a bias) and not a sparse
// layer's stored values (those are the pattern itself).
static bool prunable(const fnet_layer *l, const fnet_tensor_info *t)
{
    return t->decay && fnet_layer_kind_of(l) != FNET_LAYER_SPARSE;
}

fnet_status fnet_model_pruned(const fnet_model *m, int64_t *pruned, int64_t *prunable_count)
{
    if (m == NULL)
        return FNET_ERR_INVALID_ARG;
    fnet_model *mm = (fnet_model *)m; // layers are only read
    int64_t n = fnet_model_num_params(m), total = 0, zeros = 0;
    float *mask = NULL;
    if (pruned != NULL && fnet_model_mask(m) != NULL) { // the count of prunable needs no mask
        mask = fnet_malloc_array((size_t)(n > 0 ? n : 1), sizeof(float));
        if (mask == NULL)
            return fnet_fail(fnet_model_ctx(m), FNET_ERR_OUT_OF_MEMORY, "host copy of the mask");
        fnet_model_get_mask(m, mask);
    }
    for (int i = 0; i < fnet_model_num_layers(m); i++) {
        const fnet_layer *l = fnet_model_layer(mm, i);
        int64_t base = fnet_model_layer_offset(m, i);
        for (int j = 0; j < fnet_layer_num_tensors(l); j++) {
            fnet_tensor_info t;
            fnet_layer_tensor(l, j, &t);
            if (!prunable(l, &t))
                continue;
            total += t.numel;
            for (int64_t k = 0; mask != NULL && k < t.numel; k++)
                zeros += mask[base + t.offset + k] == 0.0f;
        }
    }
    fnet_free(mask);
    if (pruned)
        *pruned = zeros;
    if (prunable_count)
        *prunable_count = total;
    return FNET_OK;
}

// ---- selection: the k smallest keys, exactly ----

static void swap64(uint64_t *a, uint64_t *b)
{
    uint64_t t = *a;
    *a = *b;
    *b = t;
}

// Rearrange key[0..n) so that key[k] is the (k+1)-th smallest and nothing before it is larger
// (Hoare's selection with a median-of-three pivot; keys are distinct). O(n) expected.
static void select_kth(uint64_t *key, int64_t n, int64_t k)
{
    int64_t lo = 0, hi = n - 1;
    while (hi > lo) {
        int64_t mid = lo + (hi - lo) / 2;
        if (key[mid] < key[lo])
            swap64(&key[mid], &key[lo]);
        if (key[hi] < key[lo])
            swap64(&key[hi], &key[lo]);
        if (key[hi] < key[mid])
            swap64(&key[hi], &key[mid]);
        uint64_t pivot = key[mid];
        int64_t i = lo, j = hi;
        while (i <= j) {
            while (key[i] < pivot)
                i++;
            while (key[j] > pivot)
                j--;
            if (i <= j) {
                swap64(&key[i], &key[j]);
                i++;
                j--;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            return;
    }
}

// The key of a weight: pruned ones first (0), then by magnitude (its bits order like its value),
// the position in the low 32 bits breaking ties.
static uint64_t weight_key(float w, float mask, int64_t pos)
{
    uint32_t bits;
    float a = fabsf(w);
    memcpy(&bits, &a, sizeof(bits));
    uint64_t rank = mask == 0.0f ? 0 : (uint64_t)bits + 1;
    return rank << 32 | (uint64_t)pos;
}

// One group of prunable tensors (a layer, or the whole model): prune the k smallest.
struct group {
    int64_t count;  // prunable weights
    int64_t first;  // its first key in the key array
};

fnet_status fnet_prune_magnitude(fnet_model *m, double sparsity, fnet_prune_scope scope,
                                 fnet_optimizer *opt)
{
    if (m == NULL)
        return FNET_ERR_INVALID_ARG;
    fnet_ctx *ctx = fnet_model_ctx(m);
    if (!(sparsity >= 0.0 && sparsity < 1.0))
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "prune: sparsity must be in [0, 1), got %g",
                         sparsity);
    if (scope != FNET_PRUNE_LAYER && scope != FNET_PRUNE_GLOBAL)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "prune: unknown scope %d", (int)scope);
    int64_t n = fnet_model_num_params(m);
    if (opt != NULL && (fnet_optimizer_size(opt) != n || fnet_optimizer_ctx(opt) != ctx))
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "prune: the optimizer was made for %lld "
                         "parameters (or another ctx), the model has %lld",
                         (long long)fnet_optimizer_size(opt), (long long)n);
    int64_t total = 0;
    fnet_status st = fnet_model_pruned(m, NULL, &total);
    if (st != FNET_OK)
        return st;
    if (total == 0)
        return FNET_OK;
    if (total > (int64_t)UINT32_MAX)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "prune: %lld prunable weights, more than "
                         "2^32", (long long)total);
    float *w = fnet_malloc_array((size_t)n, sizeof(float));
    float *mask = fnet_malloc_array((size_t)n, sizeof(float));
    uint64_t *key = fnet_malloc_array((size_t)total, sizeof(uint64_t));
    int64_t *where = fnet_malloc_array((size_t)total, sizeof(int64_t)); // key pos -> param index
    if (w == NULL || mask == NULL || key == NULL || where == NULL) {
        st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "prune: host copies of %lld parameters",
                       (long long)n);
        goto out_free;
    }
    fnet_model_get_params(m, w);
    fnet_model_get_mask(m, mask);
    // keys layer by layer; with LAYER scope each layer is selected on its own
    int64_t pos = 0;
    int n_layers = fnet_model_num_layers(m);
    for (int i = 0; i < n_layers; i++) {
        const fnet_layer *l = fnet_model_layer(m, i);
        int64_t base = fnet_model_layer_offset(m, i), first = pos;
        for (int j = 0; j < fnet_layer_num_tensors(l); j++) {
            fnet_tensor_info t;
            fnet_layer_tensor(l, j, &t);
            if (!prunable(l, &t))
                continue;
            for (int64_t k = 0; k < t.numel; k++, pos++) {
                int64_t at = base + t.offset + k;
                where[pos] = at;
                int64_t local = scope == FNET_PRUNE_GLOBAL ? pos : pos - first;
                key[pos] = weight_key(w[at], mask[at], local);
            }
        }
        if (scope == FNET_PRUNE_LAYER && pos > first) {
            int64_t count = pos - first, k = llround(sparsity * (double)count);
            if (k > 0) {
                select_kth(key + first, count, k - 1);
                for (int64_t e = 0; e < k; e++)
                    mask[where[first + (int64_t)(key[first + e] & 0xffffffffu)]] = 0.0f;
            }
        }
    }
    if (scope == FNET_PRUNE_GLOBAL) {
        int64_t k = llround(sparsity * (double)total);
        if (k > 0) {
            select_kth(key, total, k - 1);
            for (int64_t e = 0; e < k; e++)
                mask[where[(int64_t)(key[e] & 0xffffffffu)]] = 0.0f;
        }
    }
    st = fnet_model_set_mask(m, mask);
    if (st == FNET_OK && opt != NULL)
        st = fnet_optimizer_apply_mask(opt, fnet_model_mask(m));
out_free:
    fnet_free(where);
    fnet_free(key);
    fnet_free(mask);
    fnet_free(w);
    return st;
}

// ---- structured pruning ----

static bool elementwise(const fnet_layer *l)
{
    return l->n_params == 0 && l->n_in == l->n_out;
}

// The dense layer that layer i's output reaches through element-wise layers only, or -1.
static int next_dense(fnet_model *m, int i)
{
    for (int j = i + 1; j < fnet_model_num_layers(m); j++) {
        const fnet_layer *l = fnet_model_layer(m, j);
        if (fnet_layer_kind_of(l) == FNET_LAYER_DENSE)
            return j;
        if (!elementwise(l))
            return -1;
    }
    return -1;
}

// A dense layer's bias offset within its parameters (-1 without one).
static int64_t bias_offset(const fnet_layer *l)
{
    return fnet_layer_num_tensors(l) > 1 ? l->n_out * l->n_in : -1;
}

struct ranked {
    double norm;
    int64_t row;
};

static int cmp_ranked(const void *a, const void *b)
{
    const struct ranked *x = a, *y = b;
    if (x->norm != y->norm)
        return x->norm < y->norm ? -1 : 1;
    return (x->row > y->row) - (x->row < y->row);
}

// keep[0..n_out) of dense layer l (host params w): false for the k rows of smallest L2 norm,
// ties broken by position
static void choose_neurons(const fnet_layer *l, const float *w, int64_t k, struct ranked *rank,
                           bool *keep)
{
    for (int64_t r = 0; r < l->n_out; r++) {
        double s = 0.0;
        for (int64_t c = 0; c < l->n_in; c++)
            s += (double)w[r * l->n_in + c] * w[r * l->n_in + c];
        rank[r].norm = s;
        rank[r].row = r;
        keep[r] = true;
    }
    qsort(rank, (size_t)l->n_out, sizeof(*rank), cmp_ranked);
    for (int64_t e = 0; e < k; e++)
        keep[rank[e].row] = false;
}

fnet_status fnet_prune_neurons(fnet_model *m, double fraction, fnet_model **out)
{
    if (m == NULL || out == NULL)
        return m ? fnet_fail(fnet_model_ctx(m), FNET_ERR_INVALID_ARG, "prune_neurons: NULL out")
                 : FNET_ERR_INVALID_ARG;
    *out = NULL;
    fnet_ctx *ctx = fnet_model_ctx(m);
    if (!(fraction >= 0.0 && fraction < 1.0))
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "prune_neurons: fraction must be in [0, 1), "
                         "got %g", fraction);
    int L = fnet_model_num_layers(m);
    int64_t n = fnet_model_num_params(m), width = fnet_model_n_in(m);
    for (int i = 0; i < L; i++)
        if (fnet_model_layer(m, i)->n_out > width)
            width = fnet_model_layer(m, i)->n_out;
    fnet_status st = FNET_OK;
    struct fnet_spec_item *items = NULL;
    int count = 0;
    fnet_model *nm = NULL;
    char *spec = NULL;
    float *w = fnet_malloc_array((size_t)(n > 0 ? n : 1), sizeof(float));
    float *mask = fnet_malloc_array((size_t)(n > 0 ? n : 1), sizeof(float));
    bool *keep = fnet_malloc_array((size_t)L * (size_t)width, sizeof(bool)); // per layer's outputs
    struct ranked *rank = fnet_malloc_array((size_t)width, sizeof(*rank));
    if (w == NULL || mask == NULL || keep == NULL || rank == NULL) {
        st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "prune_neurons: host copies");
        goto out_free;
    }
    fnet_model_get_params(m, w);
    fnet_model_get_mask(m, mask);
    if ((st = fnet_spec_parse(ctx, fnet_model_spec(m), &items, &count)) != FNET_OK)
        goto out_free;
    if (count != L) {
        st = fnet_fail(ctx, FNET_ERR_INTERNAL, "prune_neurons: spec has %d items, model %d layers",
                       count, L);
        goto out_free;
    }
    // which outputs of every layer stay: all but the pruned neurons of hidden dense layers (the
    // element-wise layers after one carry its choice, set when the dense layer is reached)
    for (size_t e = 0; e < (size_t)L * (size_t)width; e++)
        keep[e] = true;
    for (int i = 0; i < L; i++) {
        fnet_layer *l = fnet_model_layer(m, i);
        bool *kp = keep + (size_t)i * (size_t)width;
        int next = fnet_layer_kind_of(l) == FNET_LAYER_DENSE ? next_dense(m, i) : -1;
        if (next < 0)
            continue;
        int64_t k = llround(fraction * (double)l->n_out);
        if (k > l->n_out - 1)
            k = l->n_out - 1;
        choose_neurons(l, w + fnet_model_layer_offset(m, i), k, rank, kp);
        items[i].n = l->n_out - k;
        // the element-wise layers up to the next dense one carry the same neurons
        for (int j = i + 1; j < next; j++)
            memcpy(keep + (size_t)j * (size_t)width, kp, (size_t)l->n_out * sizeof(bool));
    }
    // the new spec, built and filled
    size_t cap = 0;
    char item[256];
    for (int i = 0; i < L; i++)
        cap += (size_t)fnet_spec_item_format(&items[i], item, sizeof(item)) + 1;
    spec = fnet_malloc(cap + 1);
    if (spec == NULL) {
        st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "prune_neurons: spec");
        goto out_free;
    }
    size_t len = 0;
    for (int i = 0; i < L; i++)
        len += (size_t)snprintf(spec + len, cap + 1 - len, "%s", i ? "," : ""),
        len += (size_t)fnet_spec_item_format(&items[i], spec + len, cap + 1 - len);
    if ((st = fnet_model_create_from_spec(ctx, spec, fnet_model_n_in(m), 0, &nm)) != FNET_OK)
        goto out_free;
    int64_t nn = fnet_model_num_params(nm);
    float *nw = fnet_malloc_array((size_t)(nn > 0 ? nn : 1), sizeof(float));
    float *nmask = fnet_malloc_array((size_t)(nn > 0 ? nn : 1), sizeof(float));
    if (nw == NULL || nmask == NULL) {
        fnet_free(nw);
        fnet_free(nmask);
        st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "prune_neurons: host copies");
        goto out_free;
    }
    for (int i = 0; i < L; i++) {
        fnet_layer *l = fnet_model_layer(m, i);
        int64_t off = fnet_model_layer_offset(m, i), noff = fnet_model_layer_offset(nm, i);
        if (fnet_layer_kind_of(l) != FNET_LAYER_DENSE) {
            // not dense: copied as it is (its sizes did not change), a sparse layer's pattern too
            memcpy(nw + noff, w + off, (size_t)l->n_params * sizeof(float));
            memcpy(nmask + noff, mask + off, (size_t)l->n_params * sizeof(float));
            if (fnet_sparse_is(l))
                fnet_sparse_set_pattern(fnet_model_layer(nm, i), fnet_sparse_row_ptr(l),
                                        fnet_sparse_col(l));
            continue;
        }
        // rows kept by this layer, columns kept by the layer before (its inputs)
        const bool *rows = keep + (size_t)i * (size_t)width;
        const bool *cols = i > 0 ? keep + (size_t)(i - 1) * (size_t)width : NULL;
        int64_t q = noff, b = bias_offset(l);
        for (int64_t r = 0; r < l->n_out; r++) {
            if (!rows[r])
                continue;
            for (int64_t c = 0; c < l->n_in; c++) {
                if (cols != NULL && !cols[c])
                    continue;
                nw[q] = w[off + r * l->n_in + c];
                nmask[q++] = mask[off + r * l->n_in + c];
            }
        }
        for (int64_t r = 0; b >= 0 && r < l->n_out; r++) {
            if (!rows[r])
                continue;
            nw[q] = w[off + b + r];
            nmask[q++] = mask[off + b + r];
        }
    }
    bool any_masked = fnet_model_mask(m) != NULL;
    st = any_masked ? fnet_model_set_mask(nm, nmask) : FNET_OK;
    if (st == FNET_OK)
        st = fnet_model_set_params(nm, nw);
    fnet_free(nw);
    fnet_free(nmask);
    if (st == FNET_OK) {
        fnet_model_copy_settings(nm, m);
        *out = nm;
        nm = NULL;
    }
out_free:
    fnet_model_free(nm);
    fnet_free(spec);
    fnet_free(items);
    fnet_free(rank);
    fnet_free(keep);
    fnet_free(mask);
    fnet_free(w);
    return st;
}
