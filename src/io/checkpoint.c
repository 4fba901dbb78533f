/* Checkpoints (include/factornet/checkpoint.h): a model's tensors "layers.<i>.<name>" and an
 * optimizer's state "optimizer.<name>" in a safetensors file with factornet metadata
 * (docs/design.md, "Checkpoints"). Built on the public model/layer/optimizer API and the
 * backend's upload and download: a save downloads the parameters and state once, a load uploads
 * each tensor from the file's buffer. A load validates the whole file against the model before it
 * writes a single float, so a failed load changes nothing. */
#include "core/backend.h"
#include "core/layer_impl.h"
#include "io/checkpoint_impl.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define FORMAT_NAME "factornet"
#define FORMAT_VERSION "1"
#define LAYER_PREFIX "layers."
#define OPTIM_PREFIX "optimizer."
#define NAME_MAX_LEN 256 // "layers.<i>.<tensor name>"
#define MASK_SUFFIX "_mask" // "layers.<i>.weight_mask": the pruning mask of a tensor, U8 0/1
#define RNG_SUFFIX ".rng"   // metadata "layers.<i>.rng": a layer's random state, "<hex16>:<hex16>"
#define RNG_VALUE_LEN 33

// What a checkpoint's metadata says, checked for form but not yet against a model.
struct ckpt {
    const char *path;
    struct fnet_safetensors *file;
    const char *spec;
    int64_t n_in, classes;
    const char *optim;  // kind name, NULL when the file holds no optimizer state
    int64_t optim_steps;
    size_t n_optim_tensors;
};

static bool has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

// A decimal count as metadata writes it: digits only, no sign, no leading zero, fits in int64.
static bool parse_count(const char *s, int64_t *v)
{
    if (s == NULL || *s == '\0' || (s[0] == '0' && s[1] != '\0'))
        return false;
    int64_t r = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        int d = *s - '0';
        if (r > (INT64_MAX - d) / 10)
            return false;
        r = r * 10 + d;
    }
    *v = r;
    return true;
}

// The optimizer's kind as written in the metadata ("adam", "adamw", "momentum", ...).
static const char *optimizer_family(const fnet_optimizer *opt)
{
    return fnet_optim_kind_name(fnet_optimizer_kind(opt));
}

static void ckpt_free(struct ckpt *ck)
{
    fnet_safetensors_free(ck->file);
    ck->file = NULL;
}

static fnet_status meta_count(fnet_ctx *ctx, const char *path, const struct fnet_safetensors *f,
                              const char *key, int64_t min, int64_t *v)
{
    const char *s = fnet_safetensors_meta(f, key);
    if (s == NULL)
        return fnet_fail(ctx, FNET_ERR_FORMAT, "%s: metadata has no '%s'", path, key);
    if (!parse_count(s, v) || *v < min)
        return fnet_fail(ctx, FNET_ERR_FORMAT, "%s: metadata '%s' is '%.40s', expected an integer "
                         ">= %" PRId64, path, key, s, min);
    return FNET_OK;
}

// Read path (its header only, or all of it) and check the factornet metadata's form.
static fnet_status ckpt_read(fnet_ctx *ctx, const char *path, bool header_only, struct ckpt *ck)
{
    memset(ck, 0, sizeof(*ck));
    ck->path = path;
    fnet_status st = fnet_safetensors_read(ctx, path, header_only, &ck->file);
    if (st != FNET_OK)
        return st;
    const struct fnet_safetensors *f = ck->file;
    if (!f->has_metadata) {
        st = fnet_fail(ctx, FNET_ERR_FORMAT, "%s: no __metadata__: not a factornet checkpoint",
                       path);
        goto out_free_file;
    }
    const char *format = fnet_safetensors_meta(f, "format");
    if (format == NULL || strcmp(format, FORMAT_NAME) != 0) {
        st = fnet_fail(ctx, FNET_ERR_FORMAT, "%s: metadata 'format' is '%.40s', expected '"
                       FORMAT_NAME "'", path, format ? format : "(missing)");
        goto out_free_file;
    }
    const char *version = fnet_safetensors_meta(f, "version");
    if (version == NULL || strcmp(version, FORMAT_VERSION) != 0) {
        st = fnet_fail(ctx, FNET_ERR_FORMAT, "%s: metadata 'version' is '%.40s'; this library "
                       "reads version " FORMAT_VERSION, path, version ? version : "(missing)");
        goto out_free_file;
    }
    ck->spec = fnet_safetensors_meta(f, "spec");
    if (ck->spec == NULL || ck->spec[0] == '\0') {
        st = fnet_fail(ctx, FNET_ERR_FORMAT, "%s: metadata has no 'spec'", path);
        goto out_free_file;
    }
    st = meta_count(ctx, path, f, "input", 1, &ck->n_in);
    if (st == FNET_OK)
        st = meta_count(ctx, path, f, "classes", 1, &ck->classes);
    if (st != FNET_OK)
        goto out_free_file;

    for (size_t i = 0; i < f->n_tensors; i++)
        ck->n_optim_tensors += has_prefix(f->tensors[i].name, OPTIM_PREFIX);
    ck->optim = fnet_safetensors_meta(f, "optimizer");
    if (ck->optim != NULL) {
        fnet_optim_kind kind;
        if (fnet_optim_kind_parse(ck->optim, &kind) != FNET_OK) {
            st = fnet_fail(ctx, FNET_ERR_FORMAT, "%s: metadata 'optimizer' is '%.40s', not an "
                           "optimizer kind", path, ck->optim);
            goto out_free_file;
        }
        st = meta_count(ctx, path, f, "optimizer_steps", 0, &ck->optim_steps);
        if (st != FNET_OK)
            goto out_free_file;
    } else if (ck->n_optim_tensors > 0 || fnet_safetensors_meta(f, "optimizer_steps") != NULL) {
        st = fnet_fail(ctx, FNET_ERR_FORMAT, "%s: optimizer state without metadata 'optimizer'",
                       path);
        goto out_free_file;
    }
    return FNET_OK;
out_free_file:
    ckpt_free(ck);
    return st;
}

// Whether name ("layers.<i>.<t>", i written without leading zeros) is a tensor of m.
static bool is_model_tensor(fnet_model *m, const char *name)
{
    const char *p = name + strlen(LAYER_PREFIX);
    if (*p < '0' || *p > '9' || (p[0] == '0' && p[1] != '.'))
        return false;
    int64_t i = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        i = i * 10 + (*p - '0');
        if (i >= fnet_model_num_layers(m))
            return false;
    }
    if (*p != '.')
        return false;
    const fnet_layer *l = fnet_model_layer(m, (int)i);
    const char *t = p + 1;
    size_t tl = strlen(t), sl = strlen(MASK_SUFFIX);
    bool is_mask = tl > sl && strcmp(t + tl - sl, MASK_SUFFIX) == 0;
    for (int j = 0; j < fnet_layer_num_tensors(l); j++) {
        fnet_tensor_info info;
        if (fnet_layer_tensor(l, j, &info) != FNET_OK)
            continue;
        if (strcmp(info.name, t) == 0 ||
            (is_mask && strlen(info.name) == tl - sl && strncmp(info.name, t, tl - sl) == 0))
            return true;
    }
    for (int j = 0; l->ops->num_aux != NULL && j < l->ops->num_aux(l); j++) {
        struct fnet_aux_info aux;
        l->ops->aux(l, j, &aux);
        if (strcmp(aux.name, t) == 0)
            return true;
    }
    return false;
}

// "0123456789abcdef:0123456789abcdef" -> two words (exactly 16 lowercase hex digits each).
static bool parse_rng(const char *s, uint64_t v[2])
{
    for (int w = 0; w < 2; w++) {
        uint64_t r = 0;
        for (int i = 0; i < 16; i++, s++) {
            if (*s >= '0' && *s <= '9')
                r = r << 4 | (uint64_t)(*s - '0');
            else if (*s >= 'a' && *s <= 'f')
                r = r << 4 | (uint64_t)(*s - 'a' + 10);
            else
                return false;
        }
        v[w] = r;
        if (*s++ != (w == 0 ? ':' : '\0'))
            return false;
    }
    return true;
}

// The metadata "layers.<i>.rng" of every layer: well formed for a layer that has random state,
// and present for no other (absent: a file from before, the layer keeps its own).
static fnet_status check_rng(fnet_ctx *ctx, const char *path, const struct ckpt *ck, fnet_model *m)
{
    const struct fnet_safetensors *f = ck->file;
    for (size_t k = 0; k < f->n_meta; k++) {
        const char *key = f->meta[k].key;
        size_t kl = strlen(key), sl = strlen(RNG_SUFFIX);
        if (!has_prefix(key, LAYER_PREFIX) || kl <= sl || strcmp(key + kl - sl, RNG_SUFFIX) != 0)
            continue;
        const char *p = key + strlen(LAYER_PREFIX);
        int64_t i = 0;
        bool digits = *p >= '0' && *p <= '9' && !(p[0] == '0' && p[1] != '.');
        for (; digits && *p >= '0' && *p <= '9' && i < fnet_model_num_layers(m); p++)
            i = i * 10 + (*p - '0');
        const fnet_layer *l = digits && i < fnet_model_num_layers(m) && p == key + kl - sl
                                  ? fnet_model_layer(m, (int)i) : NULL;
        if (l == NULL || l->ops->get_rng == NULL)
            return fnet_fail(ctx, FNET_ERR_FORMAT, "%s: metadata '%.120s': spec '%s' has no such "
                             "layer with random state", path, key, ck->spec);
        uint64_t v[2];
        if (!parse_rng(f->meta[k].value, v))
            return fnet_fail(ctx, FNET_ERR_FORMAT, "%s: metadata '%.120s' is '%.40s', expected "
                             "two 16-digit hex words 'seed:count'", path, key, f->meta[k].value);
    }
    return FNET_OK;
}

static fnet_status layer_tensor_name(fnet_ctx *ctx, int i, const fnet_tensor_info *info,
                                     char name[NAME_MAX_LEN])
{
    int k = snprintf(name, NAME_MAX_LEN, LAYER_PREFIX "%d.%s", i, info->name);
    if (k < 0 || k >= NAME_MAX_LEN)
        return fnet_fail(ctx, FNET_ERR_INTERNAL, "layer %d: tensor name '%s' too long", i,
                         info->name);
    return FNET_OK;
}

// The pruning mask "<name>_mask" of tensor t (F32, the model's `info`), when the file has one:
// U8 of t's shape, every byte 0 or 1, and t zero wherever the mask is 0 (a pruned weight is zero).
static fnet_status check_mask(fnet_ctx *ctx, const char *path, const struct fnet_safetensors *f,
                              const char *name, const struct fnet_safetensors_tensor *t,
                              const fnet_tensor_info *info)
{
    char mname[NAME_MAX_LEN + sizeof(MASK_SUFFIX)], want[160], got[160];
    snprintf(mname, sizeof(mname), "%s" MASK_SUFFIX, name);
    const struct fnet_safetensors_tensor *mt = fnet_safetensors_find(f, mname);
    if (mt == NULL)
        return FNET_OK;
    bool same = mt->ndim == info->ndim;
    for (int d = 0; same && d < info->ndim; d++)
        same = mt->shape[d] == info->shape[d];
    if (!same || mt->dtype != FNET_ST_U8)
        return fnet_fail(ctx, FNET_ERR_FORMAT, "%s: tensor '%s': %s %s does not match its "
                         "tensor's U8 %s", path, mname, fnet_st_dtype_name(mt->dtype),
                         fnet_safetensors_shape_str(got, sizeof(got), mt->ndim, mt->shape),
                         fnet_safetensors_shape_str(want, sizeof(want), info->ndim, info->shape));
    if (mt->data == NULL || t->data == NULL)
        return FNET_OK; // header only
    const unsigned char *mb = mt->data, *wb = t->data;
    for (int64_t k = 0; k < mt->numel; k++) {
        if (mb[k] > 1)
            return fnet_fail(ctx, FNET_ERR_FORMAT, "%s: tensor '%s': element %" PRId64 " is %d, "
                             "not 0 or 1", path, mname, k, mb[k]);
        float w;
        memcpy(&w, wb + 4 * k, sizeof(w));
        if (mb[k] == 0 && w != 0.0f)
            return fnet_fail(ctx, FNET_ERR_FORMAT, "%s: tensor '%s': element %" PRId64 " is %g "
                             "where its mask '%s' prunes it (pruned weights are zero)", path,
                             name, k, (double)w, mname);
    }
    return FNET_OK;
}

// Layer i's index tensors (a sparse layer's row_ptr and col_idx): present, I32 of the layer's
// length, and (with the data read) valid for the layer by its own check.
static fnet_status check_aux(fnet_ctx *ctx, const char *path, const struct fnet_safetensors *f,
                             int i, const fnet_layer *l)
{
    int n = l->ops->num_aux != NULL ? l->ops->num_aux(l) : 0;
    const void *data[4] = {0};
    char name[NAME_MAX_LEN], want[64], got[160];
    bool have_data = true;
    for (int j = 0; j < n && j < 4; j++) {
        struct fnet_aux_info aux;
        l->ops->aux(l, j, &aux);
        snprintf(name, sizeof(name), LAYER_PREFIX "%d.%s", i, aux.name);
        const struct fnet_safetensors_tensor *t = fnet_safetensors_find(f, name);
        fnet_safetensors_shape_str(want, sizeof(want), 1, &aux.numel);
        if (t == NULL)
            return fnet_fail(ctx, FNET_ERR_FORMAT, "%s: missing tensor '%s' (I32 %s)", path, name,
                             want);
        if (t->dtype != FNET_ST_I32 || t->ndim != 1 || t->shape[0] != aux.numel)
            return fnet_fail(ctx, FNET_ERR_FORMAT, "%s: tensor '%s': %s %s does not match the "
                             "model's I32 %s", path, name, fnet_st_dtype_name(t->dtype),
                             fnet_safetensors_shape_str(got, sizeof(got), t->ndim, t->shape),
                             want);
        data[j] = t->data;
        have_data = have_data && t->data != NULL;
    }
    if (n == 0 || !have_data)
        return FNET_OK;
    fnet_status st = l->ops->check_aux(l, data);
    if (st != FNET_ERR_FORMAT)
        return st;
    char why[sizeof(ctx->last_error)];
    snprintf(why, sizeof(why), "%s", fnet_ctx_last_message(ctx));
    return fnet_fail(ctx, st, "%s: layer %d (%s): %s", path, i, fnet_layer_name(l), why);
}

// Every tensor m expects is in the file with exactly its shape, the file holds no tensor m does
// not expect, and optimizer state vectors have m's parameter count. Nothing is written.
static fnet_status ckpt_check_model(fnet_ctx *ctx, const char *path, const struct ckpt *ck,
                                    fnet_model *m)
{
    const struct fnet_safetensors *f = ck->file;
    char name[NAME_MAX_LEN], want[160], got[160];
    fnet_status st = FNET_OK;
    if (ck->classes != fnet_model_n_out(m))
        return fnet_fail(ctx, FNET_ERR_FORMAT, "%s: metadata 'classes' is %" PRId64 " but spec "
                         "'%s' gives %" PRId64 " outputs", path, ck->classes, ck->spec,
                         fnet_model_n_out(m));
    for (int i = 0; i < fnet_model_num_layers(m); i++) {
        const fnet_layer *l = fnet_model_layer(m, i);
        for (int j = 0; j < fnet_layer_num_tensors(l); j++) {
            fnet_tensor_info info;
            st = fnet_layer_tensor(l, j, &info);
            if (st == FNET_OK)
                st = layer_tensor_name(ctx, i, &info, name);
            if (st != FNET_OK)
                return st;
            const struct fnet_safetensors_tensor *t = fnet_safetensors_find(f, name);
            fnet_safetensors_shape_str(want, sizeof(want), info.ndim, info.shape);
            if (t == NULL)
                return fnet_fail(ctx, FNET_ERR_FORMAT, "%s: missing tensor '%s' (shape %s)",
                                 path, name, want);
            bool same = t->ndim == info.ndim;
            for (int d = 0; same && d < info.ndim; d++)
                same = t->shape[d] == info.shape[d];
            if (!same)
                return fnet_fail(ctx, FNET_ERR_FORMAT, "%s: tensor '%s': shape %s does not match "
                                 "the model's %s", path, name,
                                 fnet_safetensors_shape_str(got, sizeof(got), t->ndim, t->shape),
                                 want);
            if (t->dtype != FNET_ST_F32)
                return fnet_fail(ctx, FNET_ERR_FORMAT, "%s: tensor '%s': dtype %s, expected F32",
                                 path, name, fnet_st_dtype_name(t->dtype));
            st = check_mask(ctx, path, f, name, t, &info);
            if (st != FNET_OK)
                return st;
        }
        st = check_aux(ctx, path, f, i, l);
        if (st != FNET_OK)
            return st;
    }
    st = check_rng(ctx, path, ck, m);
    if (st != FNET_OK)
        return st;
    int64_t n_params = fnet_model_num_params(m);
    fnet_safetensors_shape_str(want, sizeof(want), 1, &n_params);
    for (size_t k = 0; k < f->n_tensors; k++) {
        const struct fnet_safetensors_tensor *t = &f->tensors[k];
        if (has_prefix(t->name, FNET_CKPT_RUN_PREFIX) ||
            has_prefix(t->name, FNET_CKPT_SOLVER_PREFIX))
            continue; // a training run's own: read, and checked, by its resume (src/core)
        if (has_prefix(t->name, LAYER_PREFIX)) {
            if (!is_model_tensor(m, t->name))
                return fnet_fail(ctx, FNET_ERR_FORMAT, "%s: unexpected tensor '%.120s': spec "
                                 "'%s' has no such tensor", path, t->name, ck->spec);
        } else if (has_prefix(t->name, OPTIM_PREFIX)) {
            if (t->dtype != FNET_ST_F32)
                return fnet_fail(ctx, FNET_ERR_FORMAT, "%s: tensor '%.120s': dtype %s, expected "
                                 "F32", path, t->name, fnet_st_dtype_name(t->dtype));
            if (t->ndim != 1 || t->shape[0] != n_params)
                return fnet_fail(ctx, FNET_ERR_FORMAT, "%s: tensor '%.120s': shape %s does not "
                                 "match the model's %s parameters", path, t->name,
                                 fnet_safetensors_shape_str(got, sizeof(got), t->ndim, t->shape),
                                 want);
        } else {
            return fnet_fail(ctx, FNET_ERR_FORMAT, "%s: unexpected tensor '%.120s' (not "
                             LAYER_PREFIX "*, " OPTIM_PREFIX "*, " FNET_CKPT_RUN_PREFIX "* or "
                             FNET_CKPT_SOLVER_PREFIX "*)", path, t->name);
        }
    }
    return FNET_OK;
}

// After ckpt_check_model(): upload every layer tensor into m. Cannot fail.
static void ckpt_copy_params(const struct ckpt *ck, fnet_model *m)
{
    fnet_ctx *ctx = fnet_model_ctx(m);
    char name[NAME_MAX_LEN];
    for (int i = 0; i < fnet_model_num_layers(m); i++) {
        fnet_layer *l = fnet_model_layer(m, i);
        float *w = fnet_layer_params(l);
        for (int j = 0; j < fnet_layer_num_tensors(l); j++) {
            fnet_tensor_info info;
            fnet_layer_tensor(l, j, &info);
            snprintf(name, sizeof(name), LAYER_PREFIX "%d.%s", i, info.name);
            const struct fnet_safetensors_tensor *t = fnet_safetensors_find(ck->file, name);
            ctx->be->upload(ctx, w + info.offset, t->data, (size_t)info.numel * sizeof(float));
        }
        int n_aux = l->ops->num_aux != NULL ? l->ops->num_aux(l) : 0;
        const void *data[4] = {0};
        for (int j = 0; j < n_aux && j < 4; j++) {
            struct fnet_aux_info aux;
            l->ops->aux(l, j, &aux);
            snprintf(name, sizeof(name), LAYER_PREFIX "%d.%s", i, aux.name);
            data[j] = fnet_safetensors_find(ck->file, name)->data;
        }
        if (n_aux > 0)
            l->ops->set_aux(l, data);
        snprintf(name, sizeof(name), LAYER_PREFIX "%d" RNG_SUFFIX, i);
        const char *rng = fnet_safetensors_meta(ck->file, name);
        uint64_t v[2];
        if (rng != NULL && l->ops->set_rng != NULL && parse_rng(rng, v)) // checked
            l->ops->set_rng(l, v);
    }
}

// The file's pruning masks as one host vector over m's parameters (1 where a tensor has no
// mask); *mask NULL when the file has none. Called after ckpt_check_model().
static fnet_status ckpt_host_mask(fnet_ctx *ctx, const char *path, const struct ckpt *ck,
                                  fnet_model *m, float **mask)
{
    *mask = NULL;
    char name[NAME_MAX_LEN + sizeof(MASK_SUFFIX)];
    int64_t n = fnet_model_num_params(m);
    for (int i = 0; i < fnet_model_num_layers(m); i++) {
        fnet_layer *l = fnet_model_layer(m, i);
        int64_t base = fnet_model_layer_offset(m, i);
        for (int j = 0; j < fnet_layer_num_tensors(l); j++) {
            fnet_tensor_info info;
            fnet_layer_tensor(l, j, &info);
            snprintf(name, sizeof(name), LAYER_PREFIX "%d.%s" MASK_SUFFIX, i, info.name);
            const struct fnet_safetensors_tensor *t = fnet_safetensors_find(ck->file, name);
            if (t == NULL)
                continue;
            if (*mask == NULL) {
                *mask = fnet_malloc_array((size_t)(n > 0 ? n : 1), sizeof(float));
                if (*mask == NULL)
                    return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "%s: pruning mask of %lld "
                                     "floats", path, (long long)n);
                for (int64_t k = 0; k < n; k++)
                    (*mask)[k] = 1.0f;
            }
            const unsigned char *b = t->data;
            for (int64_t k = 0; k < info.numel; k++)
                (*mask)[base + info.offset + k] = (float)b[k];
        }
    }
    return FNET_OK;
}

// Checked file into m: the mask first (the one step that may fail, before anything changes),
// then the parameters and index tensors.
static fnet_status ckpt_install(fnet_ctx *ctx, const char *path, const struct ckpt *ck,
                                fnet_model *m)
{
    float *mask = NULL;
    fnet_status st = ckpt_host_mask(ctx, path, ck, m, &mask);
    if (st == FNET_OK)
        st = fnet_model_set_mask(m, mask);
    fnet_free(mask);
    if (st == FNET_OK)
        ckpt_copy_params(ck, m);
    return st;
}

// The file's optimizer state fits opt when it is of the same kind and holds exactly opt's state
// vectors, by name (a mismatch is FNET_ERR_FORMAT, as for any state of another shape). Their
// length was checked against the model's parameter count, opt's against the model's here.
static fnet_status ckpt_check_optimizer(fnet_ctx *ctx, const char *path, const struct ckpt *ck,
                                        fnet_optimizer *opt, int64_t n_params)
{
    if (fnet_optimizer_ctx(opt) != ctx)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "%s: the optimizer was made on another ctx "
                         "than the model's", path);
    if (fnet_optimizer_size(opt) != n_params)
        return fnet_fail(ctx, FNET_ERR_SHAPE, "%s: the optimizer was made for %lld parameters, "
                         "the model has %lld", path, (long long)fnet_optimizer_size(opt),
                         (long long)n_params);
    int k = fnet_optimizer_num_states(opt);
    bool same = (size_t)k == ck->n_optim_tensors && strcmp(ck->optim, optimizer_family(opt)) == 0;
    char name[NAME_MAX_LEN];
    for (int i = 0; i < k && same; i++) {
        const char *s;
        fnet_optimizer_state(opt, i, &s);
        snprintf(name, sizeof(name), OPTIM_PREFIX "%s", s);
        same = fnet_safetensors_find(ck->file, name) != NULL;
    }
    if (!same) {
        const char *family = optimizer_family(opt);
        return fnet_fail(ctx, FNET_ERR_FORMAT, "%s: the file holds the state of a '%s' optimizer "
                         "(%zu vectors), which does not fit the given '%s' optimizer (%d)", path,
                         ck->optim, ck->n_optim_tensors, family ? family : "unknown", k);
    }
    return FNET_OK;
}

static void ckpt_copy_optimizer(const struct ckpt *ck, fnet_optimizer *opt, int64_t n_params)
{
    char name[NAME_MAX_LEN];
    for (int i = 0; i < fnet_optimizer_num_states(opt); i++) {
        const char *s;
        fnet_optimizer_state(opt, i, &s);
        snprintf(name, sizeof(name), OPTIM_PREFIX "%s", s);
        const struct fnet_safetensors_tensor *t = fnet_safetensors_find(ck->file, name);
        fnet_optimizer_set_state(opt, i, t->data); // checked: cannot fail
    }
}

// Whether the tensor at w[off, off + numel) of the host mask has a pruned (0) element.
static bool any_pruned(const float *mask, int64_t off, int64_t numel)
{
    for (int64_t k = 0; k < numel; k++)
        if (mask[off + k] == 0.0f)
            return true;
    return false;
}

fnet_status fnet_model_save(fnet_model *m, const fnet_optimizer *opt, const char *path)
{
    return fnet_checkpoint_write(m, opt, path, NULL);
}

// Append the extra tensors of one dtype to t at *k.
static void extra_put(const struct fnet_ckpt_extra *x, enum fnet_st_dtype dtype,
                      struct fnet_safetensors_tensor *t, size_t *k)
{
    for (size_t i = 0; x != NULL && i < x->n_t; i++)
        if (x->t[i].dtype == dtype)
            t[(*k)++] = x->t[i];
}

fnet_status fnet_checkpoint_write(fnet_model *m, const fnet_optimizer *opt, const char *path,
                                  const struct fnet_ckpt_extra *extra)
{
    if (m == NULL)
        return FNET_ERR_INVALID_ARG;
    fnet_ctx *ctx = fnet_model_ctx(m);
    if (path == NULL)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "fnet_model_save: NULL path");
    fnet_status st = FNET_OK;
    const char *family = opt ? optimizer_family(opt) : NULL;
    if (opt != NULL && fnet_optimizer_ctx(opt) != ctx)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "%s: the optimizer was made on another ctx "
                         "than the model's", path);
    if (opt != NULL && fnet_optimizer_size(opt) != fnet_model_num_params(m))
        return fnet_fail(ctx, FNET_ERR_SHAPE, "%s: the optimizer was made for %lld parameters, "
                         "the model has %lld", path, (long long)fnet_optimizer_size(opt),
                         (long long)fnet_model_num_params(m));
    for (size_t i = 0; extra != NULL && i < extra->n_t; i++)
        if (!has_prefix(extra->t[i].name, FNET_CKPT_RUN_PREFIX) &&
            !has_prefix(extra->t[i].name, FNET_CKPT_SOLVER_PREFIX))
            return fnet_fail(ctx, FNET_ERR_INTERNAL, "%s: extra tensor '%s' outside run.* and "
                             "solver.*", path, extra->t[i].name);

    // the mask, on the host: each pruned tensor gets a U8 "<name>_mask" (one byte per element)
    int64_t n_params = fnet_model_num_params(m);
    float *mask = NULL;
    if (fnet_model_mask(m) != NULL) {
        mask = fnet_malloc_array((size_t)(n_params > 0 ? n_params : 1), sizeof(float));
        if (mask == NULL)
            return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "%s: host copy of the pruning mask",
                             path);
        fnet_model_get_mask(m, mask);
    }

    // sizes: tensors, the bytes of their names and of the masks, the layers' random states
    int n_layers = fnet_model_num_layers(m);
    int n_states = opt ? fnet_optimizer_num_states(opt) : 0;
    size_t n = (size_t)n_states + (extra ? extra->n_t : 0), name_bytes = 0, mask_bytes = 0;
    size_t n_rng = 0;
    for (int i = 0; i < n_layers; i++) {
        const fnet_layer *l = fnet_model_layer(m, i);
        int64_t base = fnet_model_layer_offset(m, i);
        if (l->ops->get_rng != NULL) {
            n_rng++;
            name_bytes += (size_t)snprintf(NULL, 0, LAYER_PREFIX "%d" RNG_SUFFIX, i) + 1 +
                          RNG_VALUE_LEN + 1;
        }
        for (int j = 0; j < fnet_layer_num_tensors(l); j++) {
            fnet_tensor_info info;
            if ((st = fnet_layer_tensor(l, j, &info)) != FNET_OK)
                goto out_free_mask;
            size_t len = (size_t)snprintf(NULL, 0, LAYER_PREFIX "%d.%s", i, info.name) + 1;
            name_bytes += len;
            n++;
            if (mask != NULL && any_pruned(mask, base + info.offset, info.numel)) {
                name_bytes += len + strlen(MASK_SUFFIX);
                mask_bytes += (size_t)info.numel;
                n++;
            }
        }
        for (int j = 0; l->ops->num_aux != NULL && j < l->ops->num_aux(l); j++) {
            struct fnet_aux_info aux;
            l->ops->aux(l, j, &aux);
            name_bytes += (size_t)snprintf(NULL, 0, LAYER_PREFIX "%d.%s", i, aux.name) + 1;
            n++;
        }
    }
    fnet_optimizer *o = (fnet_optimizer *)opt; // fnet_optimizer_state() only reads here
    for (int i = 0; i < n_states; i++) {
        const char *s;
        fnet_optimizer_state(o, i, &s);
        name_bytes += strlen(OPTIM_PREFIX) + strlen(s) + 1;
    }
    enum { BASE_META = 7 };
    size_t n_meta_cap = BASE_META + n_rng + (extra ? extra->n_meta : 0);

    // the tensors point into the parameters, the optimizer's state and the index tensors
    // (backend memory, which the writer downloads a piece at a time), the run's extras and the
    // host masks; F32 first, then I32, then U8, so every tensor's data stays aligned to its
    // element size
    struct fnet_safetensors_tensor *t = fnet_calloc(n ? n : 1, sizeof(*t));
    struct fnet_safetensors_meta *meta = fnet_calloc(n_meta_cap, sizeof(*meta));
    char *names = fnet_malloc(name_bytes ? name_bytes : 1);
    unsigned char *bytes = fnet_malloc(mask_bytes ? mask_bytes : 1);
    if (t == NULL || meta == NULL || names == NULL || bytes == NULL) {
        st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "%s: list of %zu tensors", path, n);
        goto out_free;
    }
    size_t k = 0;
    char *p = names;
#define NAME(...) (p += snprintf(p, name_bytes - (size_t)(p - names), __VA_ARGS__) + 1)
    for (int i = 0; i < n_layers; i++) {
        fnet_layer *l = fnet_model_layer(m, i);
        const float *w = fnet_layer_params(l);
        for (int j = 0; j < fnet_layer_num_tensors(l); j++, k++) {
            fnet_tensor_info info;
            fnet_layer_tensor(l, j, &info);
            t[k].name = p;
            NAME(LAYER_PREFIX "%d.%s", i, info.name);
            t[k].ndim = info.ndim;
            memcpy(t[k].shape, info.shape, (size_t)info.ndim * sizeof(int64_t));
            t[k].data = w + info.offset;
            t[k].on_backend = true;
        }
    }
    for (int i = 0; i < n_states; i++, k++) {
        const char *s;
        t[k].data = fnet_optimizer_state(o, i, &s);
        t[k].on_backend = true;
        t[k].name = p;
        NAME(OPTIM_PREFIX "%s", s);
        t[k].ndim = 1;
        t[k].shape[0] = n_params;
    }
    extra_put(extra, FNET_ST_F32, t, &k);
    for (int i = 0; i < n_layers; i++) {
        const fnet_layer *l = fnet_model_layer(m, i);
        for (int j = 0; l->ops->num_aux != NULL && j < l->ops->num_aux(l); j++, k++) {
            struct fnet_aux_info aux;
            l->ops->aux(l, j, &aux);
            t[k].name = p;
            NAME(LAYER_PREFIX "%d.%s", i, aux.name);
            t[k].dtype = FNET_ST_I32;
            t[k].ndim = 1;
            t[k].shape[0] = aux.numel;
            t[k].data = aux.data;
            t[k].on_backend = true;
        }
    }
    extra_put(extra, FNET_ST_I32, t, &k);
    unsigned char *mb = bytes;
    for (int i = 0; i < n_layers && mask != NULL; i++) {
        const fnet_layer *l = fnet_model_layer(m, i);
        int64_t base = fnet_model_layer_offset(m, i);
        for (int j = 0; j < fnet_layer_num_tensors(l); j++) {
            fnet_tensor_info info;
            fnet_layer_tensor(l, j, &info);
            if (!any_pruned(mask, base + info.offset, info.numel))
                continue;
            t[k].name = p;
            NAME(LAYER_PREFIX "%d.%s" MASK_SUFFIX, i, info.name);
            t[k].dtype = FNET_ST_U8;
            t[k].ndim = info.ndim;
            memcpy(t[k].shape, info.shape, (size_t)info.ndim * sizeof(int64_t));
            for (int64_t e = 0; e < info.numel; e++)
                mb[e] = mask[base + info.offset + e] != 0.0f;
            t[k].data = mb;
            mb += info.numel;
            k++;
        }
    }
    extra_put(extra, FNET_ST_U8, t, &k);

    char input[24], classes[24], steps[24];
    snprintf(input, sizeof(input), "%" PRId64, fnet_model_n_in(m));
    snprintf(classes, sizeof(classes), "%" PRId64, fnet_model_n_out(m));
    snprintf(steps, sizeof(steps), "%" PRId64, opt ? fnet_optimizer_steps(opt) : 0);
    size_t n_meta = 0;
    meta[n_meta++] = (struct fnet_safetensors_meta){"format", FORMAT_NAME};
    meta[n_meta++] = (struct fnet_safetensors_meta){"version", FORMAT_VERSION};
    meta[n_meta++] = (struct fnet_safetensors_meta){"spec", fnet_model_spec(m)};
    meta[n_meta++] = (struct fnet_safetensors_meta){"input", input};
    meta[n_meta++] = (struct fnet_safetensors_meta){"classes", classes};
    if (opt != NULL) {
        meta[n_meta++] = (struct fnet_safetensors_meta){"optimizer", family};
        meta[n_meta++] = (struct fnet_safetensors_meta){"optimizer_steps", steps};
    }
    for (int i = 0; i < n_layers; i++) {
        const fnet_layer *l = fnet_model_layer(m, i);
        if (l->ops->get_rng == NULL)
            continue;
        uint64_t v[2];
        l->ops->get_rng(l, v);
        meta[n_meta].key = p;
        NAME(LAYER_PREFIX "%d" RNG_SUFFIX, i);
        meta[n_meta++].value = p;
        NAME("%016" PRIx64 ":%016" PRIx64, v[0], v[1]);
    }
#undef NAME
    for (size_t i = 0; extra != NULL && i < extra->n_meta; i++) {
        for (size_t j = 0; j < n_meta; j++)
            if (strcmp(meta[j].key, extra->meta[i].key) == 0) {
                st = fnet_fail(ctx, FNET_ERR_INVALID_ARG, "%s: metadata key '%.120s' is the "
                               "checkpoint's own, or given twice", path, extra->meta[i].key);
                goto out_free;
            }
        meta[n_meta++] = extra->meta[i];
    }
    st = fnet_safetensors_write(ctx, path, t, k, meta, n_meta);
out_free:
    fnet_free(bytes);
    fnet_free(names);
    fnet_free(meta);
    fnet_free(t);
out_free_mask:
    fnet_free(mask);
    return st;
}

// A lower bound on the parameters of the model that spec builds on n_in inputs (each kind's
// descriptor gives its own), saturating at INT64_MAX. 0 when the spec does not parse (building it
// then reports why).
static int64_t spec_min_params(fnet_ctx *ctx, const char *spec, int64_t n_in)
{
    struct fnet_spec_item *items = NULL;
    int count = 0;
    if (fnet_spec_parse(ctx, spec, &items, &count) != FNET_OK)
        return 0;
    int64_t width = n_in, total = 0;
    for (int i = 0; i < count; i++) {
        const struct fnet_spec_item *it = &items[i];
        if (it->desc->min_params != NULL)
            total = fnet_sat_add(total, it->desc->min_params(it, width));
        if (it->n > 0)
            width = it->n;
    }
    fnet_free(items);
    return total;
}

// Build the model the checkpoint's spec describes; the file's fault (a spec that does not parse
// or build) is FNET_ERR_FORMAT naming the file, out-of-memory and unsupported kinds stay. A spec
// whose parameters are more than twice what the file's tensor data holds is refused before
// anything is allocated for it: a small hostile file must not make the loader allocate and zero
// gigabytes. Up to twice is built and then checked tensor by tensor, so that a file that lost a
// tensor or two gets the message naming it.
static fnet_status ckpt_build_model(fnet_ctx *ctx, const char *path, const struct ckpt *ck,
                                    fnet_model **m)
{
    int64_t min_params = spec_min_params(ctx, ck->spec, ck->n_in);
    if ((uint64_t)min_params / 2 > ck->file->data_len / 4)
        return fnet_fail(ctx, FNET_ERR_FORMAT, "%s: metadata 'spec' '%.120s' with input %" PRId64
                         " needs at least %" PRId64 " parameters, but the file holds %" PRIu64
                         " bytes of tensor data", path, ck->spec, ck->n_in, min_params,
                         ck->file->data_len);
    fnet_status st = fnet_model_create_from_spec(ctx, ck->spec, ck->n_in, 0, m);
    if (st == FNET_OK)
        return FNET_OK;
    char inner[sizeof(ctx->last_error)];
    snprintf(inner, sizeof(inner), "%s", fnet_ctx_last_message(ctx));
    if (st != FNET_ERR_OUT_OF_MEMORY && st != FNET_ERR_UNSUPPORTED)
        st = FNET_ERR_FORMAT;
    return fnet_fail(ctx, st, "%s: metadata 'spec' '%.120s' with input %" PRId64 " does not build "
                     "a model: %s", path, ck->spec, ck->n_in, inner);
}

fnet_status fnet_model_load(fnet_ctx *ctx, const char *path, fnet_model **out)
{
    if (out == NULL || ctx == NULL || path == NULL) {
        if (out != NULL)
            *out = NULL;
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "fnet_model_load: NULL ctx, path or out");
    }
    *out = NULL;
    struct ckpt ck;
    fnet_status st = ckpt_read(ctx, path, false, &ck);
    if (st != FNET_OK)
        return st;
    fnet_model *m = NULL;
    st = ckpt_build_model(ctx, path, &ck, &m);
    if (st != FNET_OK)
        goto out_free_ck;
    st = ckpt_check_model(ctx, path, &ck, m);
    if (st == FNET_OK)
        st = ckpt_install(ctx, path, &ck, m);
    if (st != FNET_OK)
        goto out_free_m;
    ckpt_free(&ck);
    *out = m;
    return FNET_OK;

out_free_m:
    fnet_model_free(m);
out_free_ck:
    ckpt_free(&ck);
    return st;
}

struct fnet_ckpt_file {
    fnet_ctx *ctx;
    struct ckpt ck;
    char path[]; // ck.path points here
};

fnet_status fnet_checkpoint_open(fnet_ctx *ctx, const char *path, struct fnet_ckpt_file **out)
{
    *out = NULL;
    size_t len = strlen(path) + 1;
    struct fnet_ckpt_file *f = fnet_malloc(sizeof(*f) + len);
    if (f == NULL)
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "%s: checkpoint reader", path);
    f->ctx = ctx;
    memcpy(f->path, path, len);
    fnet_status st = ckpt_read(ctx, f->path, false, &f->ck);
    if (st != FNET_OK) {
        fnet_free(f);
        return st;
    }
    *out = f;
    return FNET_OK;
}

void fnet_checkpoint_close(struct fnet_ckpt_file *f)
{
    if (f == NULL)
        return;
    ckpt_free(&f->ck);
    fnet_free(f);
}

const struct fnet_safetensors *fnet_checkpoint_contents(const struct fnet_ckpt_file *f)
{
    return f->ck.file;
}

fnet_status fnet_checkpoint_check(const struct fnet_ckpt_file *f, fnet_model *m,
                                  fnet_optimizer *opt)
{
    fnet_ctx *ctx = fnet_model_ctx(m);
    const struct ckpt *ck = &f->ck;
    const char *spec = fnet_model_spec(m);
    if (strcmp(ck->spec, spec) != 0 || ck->n_in != fnet_model_n_in(m))
        return fnet_fail(ctx, FNET_ERR_SHAPE, "%s: checkpoint of '%.120s' with input %" PRId64
                         " does not fit the model '%.120s' with input %" PRId64, ck->path,
                         ck->spec, ck->n_in, spec, fnet_model_n_in(m));
    fnet_status st = ckpt_check_model(ctx, ck->path, ck, m);
    if (st != FNET_OK || opt == NULL)
        return st;
    if (ck->optim == NULL)
        return fnet_fail(ctx, FNET_ERR_FORMAT, "%s: holds no optimizer state (the '%s' "
                         "optimizer's is needed)", ck->path, optimizer_family(opt));
    return ckpt_check_optimizer(ctx, ck->path, ck, opt, fnet_model_num_params(m));
}

fnet_status fnet_checkpoint_install(const struct fnet_ckpt_file *f, fnet_model *m,
                                    fnet_optimizer *opt)
{
    const struct ckpt *ck = &f->ck;
    // the mask is the only step that may fail (out of memory): before anything changes
    fnet_status st = ckpt_install(fnet_model_ctx(m), ck->path, ck, m);
    if (st != FNET_OK || opt == NULL)
        return st;
    fnet_optimizer_set_steps(opt, ck->optim_steps); // >= 0, checked: cannot fail
    ckpt_copy_optimizer(ck, opt, fnet_model_num_params(m));
    // the state of pruned weights is zero, whatever the file held
    if (fnet_model_mask(m) != NULL)
        fnet_optimizer_apply_mask(opt, fnet_model_mask(m));
    return FNET_OK;
}

fnet_status fnet_model_load_params(fnet_model *m, fnet_optimizer *opt, const char *path)
{
    if (m == NULL)
        return FNET_ERR_INVALID_ARG;
    fnet_ctx *ctx = fnet_model_ctx(m);
    if (path == NULL)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "fnet_model_load_params: NULL path");
    struct fnet_ckpt_file *f = NULL;
    fnet_status st = fnet_checkpoint_open(ctx, path, &f);
    if (st != FNET_OK)
        return st;
    // the optimizer's state only when the file holds one
    fnet_optimizer *o = f->ck.optim != NULL ? opt : NULL;
    st = fnet_checkpoint_check(f, m, o);
    if (st == FNET_OK)
        st = fnet_checkpoint_install(f, m, o);
    fnet_checkpoint_close(f);
    return st;
}

fnet_status fnet_checkpoint_peek(fnet_ctx *ctx, const char *path, char *spec, size_t cap,
                                 int64_t *n_in)
{
    if (path == NULL || (spec == NULL && cap > 0))
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "fnet_checkpoint_peek: NULL path or spec");
    struct ckpt ck;
    fnet_status st = ckpt_read(ctx, path, true, &ck);
    if (st != FNET_OK)
        return st;
    size_t len = strlen(ck.spec);
    if (spec != NULL && len >= cap) {
        st = fnet_fail(ctx, FNET_ERR_INVALID_ARG, "%s: spec of %zu bytes does not fit in %zu",
                       path, len + 1, cap);
        goto out_free_ck;
    }
    if (spec != NULL)
        memcpy(spec, ck.spec, len + 1);
    if (n_in != NULL)
        *n_in = ck.n_in;
out_free_ck:
    ckpt_free(&ck);
    return st;
}

fnet_status fnet_checkpoint_metadata(fnet_ctx *ctx, const char *path, fnet_meta **meta, int *n)
{
    if (meta == NULL || n == NULL || path == NULL)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "fnet_checkpoint_metadata: NULL argument");
    *meta = NULL;
    *n = 0;
    struct ckpt ck;
    fnet_status st = ckpt_read(ctx, path, true, &ck);
    if (st != FNET_OK)
        return st;
    const struct fnet_safetensors *f = ck.file;
    size_t bytes = (f->n_meta + 1) * sizeof(fnet_meta);
    for (size_t i = 0; i < f->n_meta; i++)
        bytes += strlen(f->meta[i].key) + strlen(f->meta[i].value) + 2;
    fnet_meta *out = fnet_malloc(bytes);
    if (out == NULL) {
        st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "%s: %zu bytes of metadata", path, bytes);
        goto out_free_ck;
    }
    char *p = (char *)(out + f->n_meta + 1);
    for (size_t i = 0; i < f->n_meta; i++) {
        size_t kl = strlen(f->meta[i].key) + 1, vl = strlen(f->meta[i].value) + 1;
        out[i].key = memcpy(p, f->meta[i].key, kl);
        p += kl;
        out[i].value = memcpy(p, f->meta[i].value, vl);
        p += vl;
    }
    out[f->n_meta] = (fnet_meta){NULL, NULL};
    *meta = out;
    *n = (int)f->n_meta;
out_free_ck:
    ckpt_free(&ck);
    return st;
}

void fnet_checkpoint_metadata_free(fnet_meta *meta)
{
    fnet_free(meta);
}

const char *fnet_meta_find(const fnet_meta *meta, int n, const char *key)
{
    for (int i = 0; meta != NULL && key != NULL && i < n; i++)
        if (strcmp(meta[i].key, key) == 0)
            return meta[i].value;
    return NULL;
}
