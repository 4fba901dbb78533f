/* The model: layers over one flat parameter vector and one gradient vector, activation buffers
 * sized for a maximum batch, and the loss-and-gradient oracle (docs/design.md, "The flat
 * parameter vector"). Every float buffer is backend memory; the model builder walks the table of
 * layer kinds and knows none of them. */
#include "core/layer_impl.h"
#include "core/model_impl.h"
#include "core/replay.h"
#include "dist/dist.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

struct fnet_model {
    fnet_ctx *ctx;
    int64_t n_in;
    int n_layers, cap_layers;
    fnet_layer **layers;
    int64_t n_params;
    float *w, *g;        // flat vectors (backend memory)
    float *mask;         // n_params floats, 1 kept and 0 pruned (backend memory); NULL: none
    uint64_t generation; // bumped when the mask or a layer's sparsity pattern changes
    char *spec;          // rebuilt on every add
    fnet_loss loss;
    float l1, l2;
    float fro;           // Frobenius decay of the layers that have a penalty op
    bool training;
    int64_t max_batch;   // activations are sized for this
    float *act;          // one allocation for every layer output that is not in place
    float **out;         // out[i]: output of layer i (B, n_out_i); in-place layers share
    float *gbuf[2];      // backward ping-pong (max_batch, max width)
    int32_t *labels;     // (max_batch): the labels of the batch, uploaded
    int64_t last_batch;  // the batch of the last forward (for fnet_model_get_output)
    int64_t row0;        // the first row of the forward's batch within the job's whole batch
};

static int64_t model_width(const fnet_model *m)
{
    return m->n_layers ? m->layers[m->n_layers - 1]->n_out : m->n_in;
}

fnet_status fnet_model_create(fnet_ctx *ctx, int64_t n_in, fnet_model **out)
{
    if (ctx == NULL || out == NULL)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "model: ctx and out must not be NULL");
    *out = NULL;
    if (n_in < 1 || n_in > ((int64_t)1 << 31))
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "model: input width must be in 1..2^31, got %lld",
                         (long long)n_in);
    fnet_model *m = fnet_calloc(1, sizeof(*m));
    if (m == NULL)
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "model");
    m->spec = fnet_strdup("");
    if (m->spec == NULL) {
        fnet_free(m);
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "model spec");
    }
    m->ctx = ctx;
    m->n_in = n_in;
    m->loss = FNET_LOSS_CE;
    *out = m;
    return FNET_OK;
}

static void free_buffers(fnet_model *m)
{
    const struct fnet_backend_ops *be = m->ctx->be;
    be->free(m->ctx, m->act);
    be->free(m->ctx, m->gbuf[0]);
    be->free(m->ctx, m->gbuf[1]);
    be->free(m->ctx, m->labels);
    fnet_free(m->out);
    m->act = m->gbuf[0] = m->gbuf[1] = NULL;
    m->labels = NULL;
    m->out = NULL;
    m->max_batch = 0;
    m->last_batch = 0;
}

void fnet_model_free(fnet_model *m)
{
    if (m == NULL)
        return;
    free_buffers(m);
    for (int i = 0; i < m->n_layers; i++)
        fnet_layer_free(m->layers[i]);
    fnet_free(m->layers);
    m->ctx->be->free(m->ctx, m->w);
    m->ctx->be->free(m->ctx, m->g);
    m->ctx->be->free(m->ctx, m->mask);
    fnet_free(m->spec);
    fnet_free(m);
}

// Layer l's spec item as text into buf (cap), like snprintf.
static int describe(const fnet_layer *l, char *buf, size_t cap)
{
    struct fnet_spec_item it;
    l->ops->describe(l, &it);
    return fnet_spec_item_format(&it, buf, cap);
}

// The spec of layers[0..n): items joined by commas.
static char *build_spec(fnet_layer **layers, int n)
{
    size_t len = 0;
    char item[256];
    for (int i = 0; i < n; i++) {
        int k = describe(layers[i], item, sizeof(item));
        len += (size_t)(k > 0 ? k : 0) + 1;
    }
    char *s = fnet_malloc(len + 1);
    if (s == NULL)
        return NULL;
    size_t pos = 0;
    s[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (i)
            s[pos++] = ',';
        int k = describe(layers[i], s + pos, len + 1 - pos);
        pos += (size_t)(k > 0 ? k : 0);
    }
    s[pos] = '\0';
    return s;
}

// New flat parameter and gradient vectors of n floats. @return FNET_OK or _OUT_OF_MEMORY.
static fnet_status alloc_vectors(fnet_model *m, int64_t n, float **w, float **g)
{
    fnet_ctx *ctx = m->ctx;
    *w = ctx->be->alloc(ctx, (size_t)(n > 0 ? n : 1) * sizeof(float));
    *g = ctx->be->alloc(ctx, (size_t)(n > 0 ? n : 1) * sizeof(float));
    if (*w != NULL && *g != NULL)
        return FNET_OK;
    ctx->be->free(ctx, *w);
    ctx->be->free(ctx, *g);
    *w = *g = NULL;
    return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "flat parameter vector of %lld floats", (long long)n);
}

// A new mask of n floats for a rebuilt flat vector: runs k of len[k] values from src[k] of the
// current mask to dst[k], the rest 1 (new layers start unpruned). m->mask must not be NULL.
static fnet_status remap_mask(fnet_model *m, int64_t n, int count, const int64_t *src,
                              const int64_t *dst, const int64_t *len, float **out)
{
    fnet_ctx *ctx = m->ctx;
    *out = ctx->be->alloc(ctx, (size_t)(n > 0 ? n : 1) * sizeof(float));
    if (*out == NULL)
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "pruning mask of %lld floats", (long long)n);
    ctx->be->fill(ctx, n, 1.0f, *out);
    for (int k = 0; k < count; k++)
        ctx->be->copy(ctx, *out + dst[k], m->mask + src[k], (size_t)len[k] * sizeof(float));
    return FNET_OK;
}

// Make mask (NULL: keep none) the model's, freeing the old one.
static void adopt_mask(fnet_model *m, float *mask)
{
    m->ctx->be->free(m->ctx, m->mask);
    m->mask = mask;
    m->generation++;
}

// Point layers[0..count) at consecutive slices of w and g (their values move along) and make
// those the model's vectors; cannot fail.
static void adopt_vectors(fnet_model *m, int count, float *w, float *g, int64_t n)
{
    int64_t off = 0;
    for (int i = 0; i < count; i++) {
        fnet_layer_bind(m->layers[i], w + off, g + off);
        off += m->layers[i]->n_params;
    }
    m->ctx->be->free(m->ctx, m->w);
    m->ctx->be->free(m->ctx, m->g);
    m->w = w;
    m->g = g;
    m->n_params = n;
}

fnet_status fnet_model_add_layer(fnet_model *m, fnet_layer *l)
{
    if (m == NULL || l == NULL) {
        fnet_layer_free(l);
        return m ? fnet_fail(m->ctx, FNET_ERR_INVALID_ARG, "add_layer: layer is NULL")
                 : FNET_ERR_INVALID_ARG;
    }
    fnet_ctx *ctx = m->ctx;
    fnet_status st = FNET_OK;
    float *w = NULL, *g = NULL;
    char *spec = NULL;
    if (l->ctx != ctx) {
        st = fnet_fail(ctx, FNET_ERR_INVALID_ARG, "add_layer: the layer was made on another ctx");
        goto out_free_layer;
    }
    if (l->in_model) {
        st = fnet_fail(ctx, FNET_ERR_INVALID_ARG, "add_layer: the layer already belongs to a model");
        return st; // not ours to free
    }
    if (l->n_in != model_width(m)) {
        st = fnet_fail(ctx, FNET_ERR_SHAPE, "add_layer: %s layer takes %lld inputs, the model gives %lld",
                       fnet_layer_name(l), (long long)l->n_in, (long long)model_width(m));
        goto out_free_layer;
    }
    if (m->n_layers == m->cap_layers) {
        int cap = m->cap_layers ? 2 * m->cap_layers : 8;
        fnet_layer **layers = fnet_malloc_array((size_t)cap, sizeof(*layers));
        if (layers == NULL) {
            st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "model layer list");
            goto out_free_layer;
        }
        if (m->n_layers)
            memcpy(layers, m->layers, (size_t)m->n_layers * sizeof(*layers));
        fnet_free(m->layers);
        m->layers = layers;
        m->cap_layers = cap;
    }
    m->layers[m->n_layers] = l; // tentatively, for the spec
    spec = build_spec(m->layers, m->n_layers + 1);
    if (spec == NULL) {
        st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "model spec");
        goto out_free_layer;
    }
    int64_t n = m->n_params + l->n_params;
    if (l->n_params > 0) {
        float *mask = NULL;
        if ((st = alloc_vectors(m, n, &w, &g)) != FNET_OK)
            goto out_free_spec;
        if (m->mask != NULL) {
            int64_t src = 0, len = m->n_params;
            if ((st = remap_mask(m, n, 1, &src, &src, &len, &mask)) != FNET_OK) {
                ctx->be->free(ctx, w);
                ctx->be->free(ctx, g);
                goto out_free_spec;
            }
        }
        adopt_vectors(m, m->n_layers + 1, w, g, n);
        adopt_mask(m, mask);
    }
    l->in_model = true;
    l->training = m->training;
    m->n_layers++;
    fnet_free(m->spec);
    m->spec = spec;
    free_buffers(m); // the next forward reserves for the new shape
    return FNET_OK;
out_free_spec:
    fnet_free(spec);
out_free_layer:
    fnet_layer_free(l);
    return st;
}

// FNET_ERR_INVALID_ARG unless opt was made on m's ctx, FNET_ERR_SHAPE unless for its parameters.
static fnet_status check_optimizer(fnet_model *m, const fnet_optimizer *opt, const char *what)
{
    if (fnet_optimizer_ctx(opt) != m->ctx)
        return fnet_fail(m->ctx, FNET_ERR_INVALID_ARG, "%s: the optimizer was made on another ctx",
                         what);
    if (fnet_optimizer_size(opt) != m->n_params)
        return fnet_fail(m->ctx, FNET_ERR_SHAPE, "%s: the optimizer was made for %lld parameters, "
                         "the model has %lld", what, (long long)fnet_optimizer_size(opt),
                         (long long)m->n_params);
    return FNET_OK;
}

// Replace layers idx[0..count) (distinct) by fresh[0..count) (stand-alone, on m's ctx, each
// with the n_in and n_out of the layer it replaces) in one rebuild of the flat vectors; opt (may be
// NULL, made for m's parameters) is remapped in the same step: the state of the kept layers
// moves to their new offsets, the new layers' state starts at zero. All or nothing: on failure
// the model and opt are unchanged and the fresh layers are freed. The model owns them on success.
static fnet_status replace_layers(fnet_model *m, int count, const int *idx, fnet_layer **fresh,
                                  fnet_optimizer *opt)
{
    fnet_ctx *ctx = m->ctx;
    fnet_status st = FNET_OK;
    float *w = NULL, *g = NULL, *mask = NULL;
    char *spec = NULL;
    fnet_layer **old = NULL;
    int64_t *runs = NULL;
    for (int k = 0; k < count; k++) {
        fnet_layer *l = fresh[k];
        int i = idx[k];
        if (l->in_model) {
            fresh[k] = NULL; // not ours to free
            st = fnet_fail(ctx, FNET_ERR_INVALID_ARG,
                           "replace_layer: the layer already belongs to a model");
            goto out_free_new;
        }
        if (i < 0 || i >= m->n_layers || l->ctx != ctx) {
            st = fnet_fail(ctx, FNET_ERR_INVALID_ARG, "replace_layer: no layer %d (the model has "
                           "%d), or the layer was made on another ctx", i, m->n_layers);
            goto out_free_new;
        }
        fnet_layer *was = m->layers[i];
        if (l->n_in != was->n_in || l->n_out != was->n_out) {
            st = fnet_fail(ctx, FNET_ERR_SHAPE, "replace_layer: layer %d maps %lld -> %lld, the "
                           "new one %lld -> %lld", i, (long long)was->n_in, (long long)was->n_out,
                           (long long)l->n_in, (long long)l->n_out);
            goto out_free_new;
        }
        if (m->max_batch > 0 && (st = fnet_layer_reserve(l, m->max_batch)) != FNET_OK)
            goto out_free_new;
    }
    if (opt != NULL && (st = check_optimizer(m, opt, "replace_layer")) != FNET_OK)
        goto out_free_new;
    old = fnet_malloc_array((size_t)m->n_layers, sizeof(*old));
    runs = fnet_malloc_array((size_t)m->n_layers * 3, sizeof(int64_t));
    if (old == NULL || runs == NULL) {
        st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "replace_layer: %d layers", m->n_layers);
        goto out_free_new;
    }
    // the new list, tentatively, for the spec and the new offsets
    int64_t n = m->n_params, *src = runs, *dst = runs + m->n_layers, *len = runs + 2 * m->n_layers;
    memcpy(old, m->layers, (size_t)m->n_layers * sizeof(*old));
    for (int k = 0; k < count; k++) {
        n += fresh[k]->n_params - m->layers[idx[k]]->n_params;
        m->layers[idx[k]] = fresh[k];
    }
    spec = build_spec(m->layers, m->n_layers);
    int nruns = 0;
    int64_t off_old = 0, off_new = 0;
    for (int i = 0; i < m->n_layers; i++) {
        if (m->layers[i] == old[i] && old[i]->n_params > 0) {
            src[nruns] = off_old;
            dst[nruns] = off_new;
            len[nruns++] = old[i]->n_params;
        }
        off_old += old[i]->n_params;
        off_new += m->layers[i]->n_params;
    }
    memcpy(m->layers, old, (size_t)m->n_layers * sizeof(*old));
    if (spec == NULL) {
        st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "model spec");
        goto out_free_new;
    }
    if ((st = alloc_vectors(m, n, &w, &g)) != FNET_OK)
        goto out_free_new;
    if (m->mask != NULL && (st = remap_mask(m, n, nruns, src, dst, len, &mask)) != FNET_OK)
        goto out_free_new;
    if (opt != NULL && (st = fnet_optimizer_remap(opt, n, nruns, src, dst, len)) != FNET_OK)
        goto out_free_new;
    // nothing can fail from here on
    for (int k = 0; k < count; k++) {
        m->layers[idx[k]] = fresh[k];
        fresh[k]->in_model = true;
        fresh[k]->training = m->training;
    }
    adopt_vectors(m, m->n_layers, w, g, n);
    if (m->mask != NULL)
        adopt_mask(m, mask);
    fnet_free(m->spec);
    m->spec = spec;
    // which layers share their input's buffer follows the layers' kinds: when a new layer runs
    // in place where the old one did not (or reads its output where the old one did not), the
    // activations are laid out again at the next forward
    bool relayout = false;
    for (int k = 0; k < count; k++) {
        const struct fnet_layer_ops *a = old[idx[k]]->ops, *b = fresh[k]->ops;
        relayout = relayout || a->in_place != b->in_place || a->uses_output != b->uses_output;
    }
    if (relayout)
        free_buffers(m);
    for (int k = 0; k < count; k++) {
        fnet_layer *was = old[idx[k]];
        was->in_model = false;
        was->w = was->g = NULL; // its values lived in the old flat vector
        was->n_params = 0;
        fnet_layer_free(was);
    }
    fnet_free(runs);
    fnet_free(old);
    return FNET_OK;
out_free_new:
    ctx->be->free(ctx, w);
    ctx->be->free(ctx, g);
    ctx->be->free(ctx, mask);
    fnet_free(spec);
    fnet_free(runs);
    fnet_free(old);
    for (int k = 0; k < count; k++)
        fnet_layer_free(fresh[k]);
    return st;
}

fnet_status fnet_model_replace_layers(fnet_model *m, int count, const int *idx,
                                     fnet_layer **fresh, fnet_optimizer *opt)
{
    return replace_layers(m, count, idx, fresh, opt);
}

fnet_status fnet_model_replace_layer(fnet_model *m, int i, fnet_layer *l)
{
    if (m == NULL || l == NULL) {
        if (l != NULL && !l->in_model)
            fnet_layer_free(l);
        return m ? fnet_fail(m->ctx, FNET_ERR_INVALID_ARG, "replace_layer: layer is NULL")
                 : FNET_ERR_INVALID_ARG;
    }
    return replace_layers(m, 1, &i, &l, NULL);
}

fnet_status fnet_model_round_layers(fnet_model *m, double eps, int64_t max_rank,
                                    fnet_optimizer *opt, bool *changed)
{
    if (changed)
        *changed = false;
    if (m == NULL)
        return FNET_ERR_INVALID_ARG;
    fnet_ctx *ctx = m->ctx;
    fnet_status st = opt != NULL ? check_optimizer(m, opt, "round layers") : FNET_OK;
    if (st != FNET_OK)
        return st;
    int *idx = fnet_malloc_array((size_t)(m->n_layers > 0 ? m->n_layers : 1), sizeof(int));
    fnet_layer **fresh = fnet_calloc((size_t)(m->n_layers > 0 ? m->n_layers : 1), sizeof(*fresh));
    int count = 0;
    if (idx == NULL || fresh == NULL) {
        st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "rounding %d layers", m->n_layers);
        goto out_free;
    }
    // every layer rounded first, then all replaced at once: a failure changes nothing
    for (int i = 0; i < m->n_layers; i++) {
        fnet_layer *l = m->layers[i];
        if (l->ops->round == NULL)
            continue;
        fnet_layer *r = NULL;
        st = l->ops->round(l, eps, max_rank, &r);
        if (st != FNET_OK)
            goto out_free;
        if (r != NULL) {
            idx[count] = i;
            fresh[count++] = r;
        }
    }
    if (count > 0) {
        st = replace_layers(m, count, idx, fresh, opt);
        count = 0; // freed by replace_layers on failure, owned by the model on success
        if (st == FNET_OK && changed)
            *changed = true;
    }
out_free:
    for (int k = 0; k < count; k++)
        fnet_layer_free(fresh[k]);
    fnet_free(fresh);
    fnet_free(idx);
    return st;
}

int64_t fnet_model_layer_offset(const fnet_model *m, int i)
{
    int64_t off = 0;
    for (int k = 0; k < i && k < m->n_layers; k++)
        off += m->layers[k]->n_params;
    return off;
}

void fnet_model_get_settings(const fnet_model *m, fnet_loss *loss, float *l1, float *l2,
                             float *fro)
{
    *loss = m->loss;
    *l1 = m->l1;
    *l2 = m->l2;
    *fro = m->fro;
}

void fnet_model_copy_settings(fnet_model *dst, const fnet_model *src)
{
    dst->loss = src->loss;
    dst->l1 = src->l1;
    dst->l2 = src->l2;
    dst->fro = src->fro;
    fnet_model_set_training(dst, src->training);
}

fnet_status fnet_model_init(fnet_model *m, fnet_init init, uint64_t seed)
{
    if (m == NULL)
        return FNET_ERR_INVALID_ARG;
    fnet_status st = FNET_OK;
    // Each layer draws from its own stream forked from the seed: adding a layer at the end never
    // changes the initial values of the others.
    fnet_rng root;
    fnet_rng_seed(&root, seed);
    for (int i = 0; i < m->n_layers; i++) {
        fnet_rng rng;
        fnet_rng_seed(&rng, fnet_rng_next(&root));
        st = fnet_layer_init(m->layers[i], init, &rng);
        if (st != FNET_OK)
            break;
    }
    // pruned weights stay pruned: new draws there are zeroed
    if (m->mask != NULL)
        m->ctx->be->mul(m->ctx, m->n_params, m->w, m->mask, m->w);
    return st;
}

// Append the layer an item makes; a failure names the item in front of the kind's own words.
static fnet_status add_item(fnet_model *m, const struct fnet_spec_item *it, int pos)
{
    fnet_layer *l = NULL;
    fnet_status st = it->desc->create(m->ctx, it, model_width(m), &l);
    if (st == FNET_OK)
        return fnet_model_add_layer(m, l);
    if (st == FNET_ERR_OUT_OF_MEMORY)
        return st;
    char text[256], why[512];
    fnet_spec_item_format(it, text, sizeof(text));
    snprintf(why, sizeof(why), "%s", fnet_ctx_last_message(m->ctx));
    return fnet_fail(m->ctx, st, "spec item %d '%s': %s", pos, text, why);
}

fnet_status fnet_model_create_from_spec(fnet_ctx *ctx, const char *spec, int64_t n_in,
                                        uint64_t seed, fnet_model **out)
{
    if (ctx == NULL || spec == NULL || out == NULL)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "model: ctx, spec and out must not be NULL");
    *out = NULL;
    struct fnet_spec_item *items = NULL;
    int count = 0;
    fnet_model *m = NULL;
    fnet_status st = fnet_spec_parse(ctx, spec, &items, &count);
    if (st != FNET_OK)
        return st;
    // Kinds that are not built are refused before anything is allocated for the model.
    for (int i = 0; i < count; i++) {
        if (items[i].desc->create == NULL) {
            char text[256], built[160];
            fnet_spec_item_format(&items[i], text, sizeof(text));
            fnet_spec_built_kinds(built, sizeof(built));
            st = fnet_fail(ctx, FNET_ERR_UNSUPPORTED,
                           "spec item %d '%s': %s layers are not built yet (built: %s)", i + 1,
                           text, items[i].desc->name, built);
            goto out_free_items;
        }
    }
    st = fnet_model_create(ctx, n_in, &m);
    if (st != FNET_OK)
        goto out_free_items;
    for (int i = 0; i < count; i++) {
        st = add_item(m, &items[i], i + 1);
        if (st != FNET_OK)
            goto out_free_model;
    }
    st = fnet_model_init(m, FNET_INIT_GLOROT_UNIFORM, seed);
    if (st != FNET_OK)
        goto out_free_model;
    fnet_free(items);
    *out = m;
    return FNET_OK;
out_free_model:
    fnet_model_free(m);
out_free_items:
    fnet_free(items);
    return st;
}

const char *fnet_model_spec(const fnet_model *m)
{
    return m->spec;
}

int64_t fnet_model_n_in(const fnet_model *m)
{
    return m->n_in;
}

int64_t fnet_model_n_out(const fnet_model *m)
{
    return model_width(m);
}

int fnet_model_num_layers(const fnet_model *m)
{
    return m->n_layers;
}

fnet_layer *fnet_model_layer(fnet_model *m, int i)
{
    return m && i >= 0 && i < m->n_layers ? m->layers[i] : NULL;
}

int64_t fnet_model_num_params(const fnet_model *m)
{
    return m->n_params;
}

fnet_ctx *fnet_model_ctx(const fnet_model *m)
{
    return m->ctx;
}

float *fnet_model_params(fnet_model *m, int64_t *n)
{
    if (n)
        *n = m->n_params;
    return m->w;
}

float *fnet_model_grads(fnet_model *m, int64_t *n)
{
    if (n)
        *n = m->n_params;
    return m->g;
}

fnet_status fnet_model_get_params(const fnet_model *m, float *w)
{
    return m ? fnet_be_transfer(m->ctx, "model get_params", w, m->w, m->n_params, true)
             : FNET_ERR_INVALID_ARG;
}

fnet_status fnet_model_set_params(fnet_model *m, const float *w)
{
    if (m == NULL)
        return FNET_ERR_INVALID_ARG;
    fnet_status st = fnet_be_transfer(m->ctx, "model set_params", m->w, w, m->n_params, false);
    if (st == FNET_OK && m->mask != NULL)
        m->ctx->be->mul(m->ctx, m->n_params, m->w, m->mask, m->w);
    return st;
}

fnet_status fnet_model_set_mask(fnet_model *m, const float *mask)
{
    if (m == NULL)
        return FNET_ERR_INVALID_ARG;
    fnet_ctx *ctx = m->ctx;
    if (mask == NULL) {
        if (m->mask != NULL)
            adopt_mask(m, NULL);
        return FNET_OK;
    }
    for (int64_t i = 0; i < m->n_params; i++)
        if (mask[i] != 0.0f && mask[i] != 1.0f)
            return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "mask: element %lld is %g, not 0 or 1",
                             (long long)i, (double)mask[i]);
    if (m->n_params == 0)
        return FNET_OK;
    float *dev = m->mask;
    if (dev == NULL) {
        dev = ctx->be->alloc(ctx, (size_t)m->n_params * sizeof(float));
        if (dev == NULL)
            return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "pruning mask of %lld floats",
                             (long long)m->n_params);
    }
    ctx->be->upload(ctx, dev, mask, (size_t)m->n_params * sizeof(float));
    ctx->be->mul(ctx, m->n_params, m->w, dev, m->w);
    if (dev != m->mask)
        adopt_mask(m, dev);
    else
        m->generation++;
    return FNET_OK;
}

fnet_status fnet_model_get_mask(const fnet_model *m, float *mask)
{
    if (m == NULL)
        return FNET_ERR_INVALID_ARG;
    if (mask == NULL)
        return fnet_fail(m->ctx, FNET_ERR_INVALID_ARG, "model get_mask: NULL host buffer");
    if (m->mask == NULL) {
        for (int64_t i = 0; i < m->n_params; i++)
            mask[i] = 1.0f;
        return FNET_OK;
    }
    return fnet_be_transfer(m->ctx, "model get_mask", mask, m->mask, m->n_params, true);
}

const float *fnet_model_mask(const fnet_model *m)
{
    return m ? m->mask : NULL;
}

uint64_t fnet_model_generation(const fnet_model *m)
{
    return m->generation;
}

void fnet_model_touch(fnet_model *m)
{
    m->generation++;
}

fnet_status fnet_model_get_grads(const fnet_model *m, float *g)
{
    return m ? fnet_be_transfer(m->ctx, "model get_grads", g, m->g, m->n_params, true)
             : FNET_ERR_INVALID_ARG;
}

fnet_status fnet_model_set_loss(fnet_model *m, fnet_loss loss)
{
    if (m == NULL)
        return FNET_ERR_INVALID_ARG;
    if (loss != FNET_LOSS_CE && loss != FNET_LOSS_MSE)
        return fnet_fail(m->ctx, FNET_ERR_INVALID_ARG, "unknown loss %d", (int)loss);
    m->loss = loss;
    return FNET_OK;
}

fnet_status fnet_model_set_regularization(fnet_model *m, float l1, float l2)
{
    if (m == NULL)
        return FNET_ERR_INVALID_ARG;
    if (!(l1 >= 0.0f && isfinite(l1)) || !(l2 >= 0.0f && isfinite(l2)))
        return fnet_fail(m->ctx, FNET_ERR_INVALID_ARG,
                         "regularization must be finite and >= 0, got l1 %g, l2 %g", (double)l1,
                         (double)l2);
    m->l1 = l1;
    m->l2 = l2;
    return FNET_OK;
}

fnet_status fnet_model_set_frobenius_decay(fnet_model *m, float lambda)
{
    if (m == NULL)
        return FNET_ERR_INVALID_ARG;
    if (!(lambda >= 0.0f && isfinite(lambda)))
        return fnet_fail(m->ctx, FNET_ERR_INVALID_ARG,
                         "Frobenius decay must be finite and >= 0, got %g", (double)lambda);
    m->fro = lambda;
    return FNET_OK;
}

void fnet_model_set_training(fnet_model *m, bool training)
{
    m->training = training;
    for (int i = 0; i < m->n_layers; i++)
        m->layers[i]->training = training;
}

// Layer i writes over its input (shares the buffer) when it can run in place, is not first (the
// input x belongs to the caller) and the layer before does not read its own output backward.
static bool runs_in_place(const fnet_model *m, int i)
{
    return i > 0 && m->layers[i]->ops->in_place && !m->layers[i - 1]->ops->uses_output;
}

fnet_status fnet_model_reserve(fnet_model *m, int64_t max_batch)
{
    if (m == NULL)
        return FNET_ERR_INVALID_ARG;
    fnet_ctx *ctx = m->ctx;
    if (max_batch < 1 || max_batch > ((int64_t)1 << 31))
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "batch must be in 1..2^31, got %lld",
                         (long long)max_batch);
    if (m->n_layers == 0)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "the model has no layers");
    if (max_batch <= m->max_batch)
        return FNET_OK;
    for (int i = 0; i < m->n_layers; i++) {
        fnet_status st = fnet_layer_reserve(m->layers[i], max_batch);
        if (st != FNET_OK)
            return st;
    }
    // batch and widths are at most 2^31 each, so each product fits int64; their sum saturates,
    // and what does not fit size_t bytes is refused
    int64_t act_floats = 0, width = m->n_in;
    for (int i = 0; i < m->n_layers; i++) {
        if (!runs_in_place(m, i))
            act_floats = fnet_sat_add(act_floats, max_batch * m->layers[i]->n_out);
        if (m->layers[i]->n_out > width)
            width = m->layers[i]->n_out;
    }
    if ((uint64_t)act_floats > SIZE_MAX / sizeof(float) / 4 ||
        (uint64_t)(max_batch * width) > SIZE_MAX / sizeof(float) / 4)
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY,
                         "activations for batch %lld: %lld floats do not fit in memory",
                         (long long)max_batch, (long long)(act_floats + 2 * max_batch * width));
    float **out = fnet_calloc((size_t)m->n_layers, sizeof(*out));
    float *act = ctx->be->alloc(ctx, (size_t)(act_floats > 0 ? act_floats : 1) * sizeof(float));
    float *g0 = ctx->be->alloc(ctx, (size_t)(max_batch * width) * sizeof(float));
    float *g1 = ctx->be->alloc(ctx, (size_t)(max_batch * width) * sizeof(float));
    int32_t *labels = ctx->be->alloc(ctx, (size_t)max_batch * sizeof(int32_t));
    if (out == NULL || act == NULL || g0 == NULL || g1 == NULL || labels == NULL) {
        fnet_free(out);
        ctx->be->free(ctx, act);
        ctx->be->free(ctx, g0);
        ctx->be->free(ctx, g1);
        ctx->be->free(ctx, labels);
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY,
                         "activations for batch %lld (%lld floats)", (long long)max_batch,
                         (long long)(act_floats + 2 * max_batch * width));
    }
    free_buffers(m);
    int64_t off = 0;
    for (int i = 0; i < m->n_layers; i++) {
        if (runs_in_place(m, i)) {
            out[i] = out[i - 1];
        } else {
            out[i] = act + off;
            off += max_batch * m->layers[i]->n_out;
        }
    }
    m->out = out;
    m->act = act;
    m->gbuf[0] = g0;
    m->gbuf[1] = g1;
    m->labels = labels;
    m->max_batch = max_batch;
    return FNET_OK;
}

static fnet_status check_batch(fnet_model *m, const float *x, int64_t batch)
{
    if (x == NULL)
        return fnet_fail(m->ctx, FNET_ERR_INVALID_ARG, "input x must not be NULL");
    if (batch < 1)
        return fnet_fail(m->ctx, FNET_ERR_INVALID_ARG, "batch must be >= 1, got %lld",
                         (long long)batch);
    fnet_status st = fnet_model_reserve(m, batch);
    // a forward pass: layers with a workspace per worker follow a changed thread count
    for (int i = 0; i < m->n_layers && st == FNET_OK; i++)
        st = fnet_layer_reserve_forward(m->layers[i], m->max_batch);
    return st;
}

// x (B, n_in) -> out[L-1] (B, n_out)
static fnet_status forward(fnet_model *m, const float *x, int64_t B)
{
    const float *in = x;
    m->last_batch = 0;
    for (int i = 0; i < m->n_layers; i++) {
        fnet_layer *l = m->layers[i];
        l->row0 = m->row0;
        fnet_status st = l->ops->forward(l, in, B, m->out[i]);
        if (st != FNET_OK)
            return st;
        in = m->out[i];
    }
    m->last_batch = B;
    return FNET_OK;
}

fnet_status fnet_model_forward(fnet_model *m, const float *x, int64_t batch, float *out)
{
    if (m == NULL)
        return FNET_ERR_INVALID_ARG;
    fnet_status st = check_batch(m, x, batch);
    if (st == FNET_OK)
        st = forward(m, x, batch);
    if (st == FNET_OK && out)
        st = fnet_model_get_output(m, out);
    return st;
}

const float *fnet_model_output(const fnet_model *m)
{
    return m->out ? m->out[m->n_layers - 1] : NULL;
}

fnet_status fnet_model_get_output(const fnet_model *m, float *y)
{
    if (m == NULL)
        return FNET_ERR_INVALID_ARG;
    if (y == NULL || m->last_batch == 0)
        return fnet_fail(m->ctx, FNET_ERR_INVALID_ARG, "get_output: %s",
                         y ? "no forward pass yet" : "NULL host buffer");
    m->ctx->be->download(m->ctx, y, m->out[m->n_layers - 1],
                         (size_t)(m->last_batch * model_width(m)) * sizeof(float));
    return FNET_OK;
}

fnet_status fnet_model_check_labels(fnet_model *m, const int32_t *labels, int64_t batch)
{
    if (labels == NULL)
        return fnet_fail(m->ctx, FNET_ERR_INVALID_ARG, "labels must not be NULL");
    int64_t K = model_width(m);
    for (int64_t r = 0; r < batch; r++)
        if (labels[r] < 0 || labels[r] >= K)
            return fnet_fail(m->ctx, FNET_ERR_INVALID_ARG,
                             "label %d of sample %lld is outside [0, %lld)", (int)labels[r],
                             (long long)r, (long long)K);
    return FNET_OK;
}

// The checks every labelled entry point makes, the labels (host) uploaded, the forward pass.
static fnet_status forward_checked(fnet_model *m, const float *x, const int32_t *labels,
                                   int64_t batch)
{
    if (m == NULL)
        return FNET_ERR_INVALID_ARG;
    fnet_status st = check_batch(m, x, batch);
    if (st == FNET_OK)
        st = fnet_model_check_labels(m, labels, batch);
    if (st != FNET_OK)
        return st;
    m->ctx->be->upload(m->ctx, m->labels, labels, (size_t)batch * sizeof(int32_t));
    return forward(m, x, batch);
}

// Σ loss over the batch of the last forward against m->labels; dlogits (B, K) =
// scale·∂loss/∂logits when asked.
static double batch_loss(fnet_model *m, int64_t B, float scale, float *dlogits, int64_t *correct)
{
    fnet_ctx *ctx = m->ctx;
    const float *logits = m->out[m->n_layers - 1];
    int64_t K = model_width(m);
    if (m->loss == FNET_LOSS_MSE)
        return ctx->be->mse(ctx, B, K, logits, m->labels, scale, dlogits, correct);
    return ctx->be->softmax_ce(ctx, B, K, logits, m->labels, scale, dlogits, correct);
}

// After layer i's backward pass: the gradients of its penalties when `penalize` (l1·Σ|w| +
// ½·l2·Σw² over its decaying tensors and its Frobenius decay, their values returned), the pruning
// mask on its slice (pruned weights get no gradient: every optimizer and solver then leaves them
// at zero), and its slice handed to the all-reduce when distributed.
static double layer_done(fnet_model *m, int i, int64_t off, bool penalize)
{
    fnet_ctx *ctx = m->ctx;
    fnet_layer *l = m->layers[i];
    double penalty = 0.0;
    if (penalize && m->fro > 0.0f && l->ops->penalty != NULL)
        penalty += l->ops->penalty(l, m->fro);
    if (penalize && (m->l1 != 0.0f || m->l2 != 0.0f)) {
        int nt = fnet_layer_num_tensors(l);
        for (int t = 0; t < nt; t++) {
            fnet_tensor_info info = {0};
            l->ops->tensor(l, t, &info);
            if (info.decay)
                penalty += ctx->be->regularize(ctx, info.numel, l->w + info.offset,
                                               l->g + info.offset, m->l1, m->l2);
        }
    }
    if (m->mask != NULL && l->n_params > 0)
        ctx->be->mul(ctx, l->n_params, m->g + off, m->mask + off, m->g + off);
    fnet_dist_grad_ready(ctx, off);
    return penalty;
}

// Backward from dlogits in gbuf[0] through every layer, writing (not accumulating) gradients,
// each layer finished by layer_done as soon as its pass is over. Returns the penalties' value
// in *penalty.
static fnet_status backward(fnet_model *m, const float *x, int64_t B, bool penalize,
                            double *penalty)
{
    int cur = 0;
    float *dy = m->gbuf[0];
    int64_t off = m->n_params; // of layer i's slice
    *penalty = 0.0;
    for (int i = m->n_layers - 1; i >= 0; i--) {
        fnet_layer *l = m->layers[i];
        const float *in = i == 0 ? x : m->out[i - 1];
        float *dx = NULL;
        if (i > 0)
            dx = l->ops->in_place ? dy : m->gbuf[1 - cur];
        fnet_status st = l->ops->backward(l, in, m->out[i], dy, B, dx, false);
        if (st != FNET_OK)
            return st;
        off -= l->n_params;
        *penalty += layer_done(m, i, off, penalize);
        if (dx != NULL && dx != dy) {
            cur = 1 - cur;
            dy = dx;
        }
    }
    return FNET_OK;
}

fnet_status fnet_model_loss_grad_part(fnet_model *m, const float *x, const int32_t *labels,
                                      int64_t first, int64_t batch, int64_t total, double *loss)
{
    fnet_ctx *ctx = m->ctx;
    // the penalties once in the sum over the ranks: rank 0's
    const bool lead = fnet_dist_ctx_rank(ctx) == 0;
    // A rank without rows of this batch runs one row of it with weight 0: its gradient adds
    // nothing, and its layers' random streams (dropout's step) move on with the other ranks'.
    // Scaled by the whole batch, the ranks' gradients sum to its mean.
    const int64_t rows = batch > 0 ? batch : 1;
    const float scale = batch > 0 ? 1.0f / (float)total : 0.0f;
    m->row0 = batch > 0 ? first : total;
    double penalty = 0.0, sum = 0.0;
    fnet_status st = forward_checked(m, x, labels, rows);
    m->row0 = 0;
    if (st != FNET_OK)
        return st;
    sum = batch_loss(m, rows, scale, m->gbuf[0], NULL);
    if ((st = fnet_dist_grad_begin(ctx, m->g, m->n_params, m->n_layers)) != FNET_OK ||
        (st = backward(m, x, rows, lead, &penalty)) != FNET_OK)
        return st;
    double value = (batch > 0 ? sum / (double)total : 0.0) + penalty;
    if ((st = fnet_dist_grad_end(ctx)) != FNET_OK ||
        (st = fnet_dist_sum(ctx, &value, 1, "the loss")) != FNET_OK)
        return st;
    if (loss)
        *loss = value;
    if (!isfinite(value))
        return fnet_fail(ctx, FNET_ERR_NUMERIC, "loss is %g", value);
    return FNET_OK;
}

fnet_status fnet_model_loss_grad(fnet_model *m, const float *x, const int32_t *labels,
                                 int64_t batch, double *loss, float *grad)
{
    if (m == NULL)
        return FNET_ERR_INVALID_ARG;
    if (batch < 1)
        return fnet_fail(m->ctx, FNET_ERR_INVALID_ARG, "batch must be >= 1, got %lld",
                         (long long)batch);
    // distributed: this rank's rows of the batch (every rank holds all of them); every rank
    // checks every label, so that a bad one stops all ranks alike
    int64_t first = 0, count = batch;
    fnet_dist_ctx_shard(m->ctx, batch, &first, &count);
    if (first > 0 && (x == NULL || labels == NULL))
        return fnet_fail(m->ctx, FNET_ERR_INVALID_ARG, "loss_grad: %s must not be NULL",
                         x == NULL ? "input x" : "labels");
    fnet_status st0 = count < batch ? fnet_model_check_labels(m, labels, batch) : FNET_OK;
    if (st0 != FNET_OK)
        return st0;
    // a rank without rows runs row 0 with weight 0 (fnet_model_loss_grad_part)
    const int64_t at = count > 0 ? first : 0;
    fnet_status st = fnet_model_loss_grad_part(m, at > 0 ? x + at * m->n_in : x,
                                               at > 0 ? labels + at : labels, first, count, batch,
                                               loss);
    if ((st == FNET_OK || st == FNET_ERR_NUMERIC) && grad != NULL && grad != m->g)
        m->ctx->be->copy(m->ctx, grad, m->g, (size_t)m->n_params * sizeof(float));
    return st;
}

bool fnet_model_replayable(const fnet_model *m)
{
    if (m->l1 != 0.0f || m->l2 != 0.0f || m->fro != 0.0f)
        return false;
    for (int i = 0; i < m->n_layers; i++)
        if (m->layers[i]->ops->get_rng != NULL) // a mask stream counted on the host
            return false;
    return true;
}

void fnet_model_step_dev(fnet_model *m, const float *x, const int32_t *labels, int64_t B,
                         const int64_t *step, double *acc)
{
    fnet_ctx *ctx = m->ctx;
    // the layers' own checks passed on the plain step before: nothing here can fail on them
    (void)forward(m, x, B);
    ctx->be->loss_step(ctx, m->loss == FNET_LOSS_MSE, B, model_width(m), m->out[m->n_layers - 1],
                       labels, 1.0f / (float)B, m->gbuf[0], step, acc);
    double penalty = 0.0; // none: a replayable model has no penalties
    (void)backward(m, x, B, false, &penalty);
}

fnet_status fnet_model_loss_correct(fnet_model *m, const float *x, const int32_t *labels,
                                    int64_t batch, double *loss, int64_t *correct)
{
    fnet_status st = forward_checked(m, x, labels, batch);
    if (st != FNET_OK)
        return st;
    int64_t right = 0;
    double sum = batch_loss(m, batch, 1.0f, NULL, &right);
    if (loss)
        *loss = sum / (double)batch;
    if (correct)
        *correct = right;
    return FNET_OK;
}
