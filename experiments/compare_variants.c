/* fnet-compare's variants: the built-in ones of the study and a user's --model values. */
#define _POSIX_C_SOURCE 200809L
#include "compare.h"

#include "cli.h"

#include <math.h>
#include <string.h>

#define MIDDLE(layer) "dense:1024,relu," layer ",relu,dense:10"

// The study: the wide network, its middle layer in every format at about the same size (the
// tensor networks at 60-190x, compare.h has the specs that fnet-bench shares), the dense network
// pruned and trained sparse, and the dense network trained by the solvers (their settings from
// docs/optim.md's search, at a tenth of the epochs: an epoch of L-BFGS with 3 iterations per
// batch costs about 4 of Adam's, one of CG with 2 about 5, its line search taking more
// evaluations; so they cost no more than the other variants in `make demo`).
static const struct cmp_variant builtins[] = {
    {.name = "dense", .spec = CMP_WIDE, .about = "the wide dense network (the reference)"},
    {.name = "tt", .spec = MIDDLE("tt:1024:rank=8"), .about = "middle layer a rank-8 tensor train"},
    {.name = "tr", .spec = MIDDLE(CMP_TR_LAYER), .about = CMP_TR_ABOUT},
    {.name = "tucker", .spec = MIDDLE(CMP_TUCKER_LAYER), .about = CMP_TUCKER_ABOUT},
    {.name = "cp", .spec = MIDDLE(CMP_CP_LAYER), .about = CMP_CP_ABOUT},
    {.name = "lowrank", .spec = MIDDLE(CMP_LOWRANK_LAYER), .about = CMP_LOWRANK_ABOUT},
    {.name = "circ", .spec = MIDDLE(CMP_CIRC_LAYER), .about = CMP_CIRC_ABOUT},
    {.name = "pruned", .spec = CMP_WIDE, .how = CMP_PRUNED, .sparsity = 0.9, .rounds = 3,
     .finetune = 1,
     .about = "the dense run pruned by global magnitude, stored as CSR"},
    {.name = "sparse", .spec = MIDDLE("sparse:1024:density=0.1"), .how = CMP_SPARSE,
     .update = FNET_SPARSE_SET,
     .about = "middle layer CSR at density 0.1 trained from scratch"},
    {.name = "lbfgs", .spec = CMP_WIDE, .has_optim = true, .optim = FNET_OPTIM_LBFGS,
     .batch = 2000, .iters = 3, .epochs_div = 10,
     .about = "the dense network by L-BFGS (m 10, More-Thuente)"},
    {.name = "cg", .spec = CMP_WIDE, .has_optim = true, .optim = FNET_OPTIM_CG, .batch = 2000,
     .iters = 2, .epochs_div = 10,
     .about = "the dense network by nonlinear CG (PR+, More-Thuente)"},
};

int cmp_builtin_count(void)
{
    return (int)(sizeof(builtins) / sizeof(builtins[0]));
}

const struct cmp_variant *cmp_builtin(int i)
{
    return &builtins[i];
}

const struct cmp_variant *cmp_builtin_find(const char *name)
{
    for (int i = 0; i < cmp_builtin_count(); i++)
        if (strcmp(builtins[i].name, name) == 0)
            return &builtins[i];
    return NULL;
}

const char *cmp_builtin_names(void)
{
    static char names[256];
    if (names[0] == '\0')
        for (int i = 0; i < cmp_builtin_count(); i++) {
            size_t n = strlen(names);
            snprintf(names + n, sizeof(names) - n, "%s%.31s", i ? ", " : "", builtins[i].name);
        }
    return names;
}

static bool is_solver(fnet_optim_kind k)
{
    return k == FNET_OPTIM_LBFGS || k == FNET_OPTIM_CG;
}

void cmp_parse_model(const char *text, int k, struct cmp_variant *v)
{
    *v = (struct cmp_variant){0};
    snprintf(v->name, sizeof(v->name), "model%d", k);
    const char *semi = strchr(text, ';');
    size_t len = semi ? (size_t)(semi - text) : strlen(text);
    if (len == 0 || len >= sizeof(v->spec))
        cli_die(2, "--model", "expected SPEC[;key=value...], got '%s'", text);
    memcpy(v->spec, text, len);
    v->spec[len] = '\0';
    char where[1200];
    while (semi) {
        const char *item = semi + 1;
        semi = strchr(item, ';');
        size_t n = semi ? (size_t)(semi - item) : strlen(item);
        char kv[256];
        if (n == 0)
            continue;
        if (n >= sizeof(kv))
            cli_die(2, "--model", "a setting is too long in '%s'", text);
        memcpy(kv, item, n);
        kv[n] = '\0';
        char *eq = strchr(kv, '=');
        snprintf(where, sizeof(where), "--model %s", text);
        if (eq == NULL)
            cli_die(2, where, "expected key=value, got '%s'", kv);
        *eq = '\0';
        const char *key = kv, *val = eq + 1;
        char opt[300];
        snprintf(opt, sizeof(opt), "--model ...;%s", key);
        if (strcmp(key, "name") == 0) {
            if (*val == '\0' || strlen(val) >= sizeof(v->name) || strpbrk(val, " \t\",;/\\"))
                cli_die(2, opt, "expected a name of 1 to %d characters without spaces, quotes, "
                        "commas, semicolons or slashes (it names files), got '%s'",
                        (int)sizeof(v->name) - 1, val);
            snprintf(v->name, sizeof(v->name), "%s", val);
        } else if (strcmp(key, "optim") == 0) {
            if (fnet_optim_kind_parse(val, &v->optim) != FNET_OK)
                cli_die(2, opt, "expected adam, adamw, sgd, momentum, nesterov, rmsprop, lbfgs "
                        "or cg, got '%s'", val);
            v->has_optim = true;
        } else if (strcmp(key, "lr") == 0) {
            v->lr = (float)cli_double(opt, val, 1e-30, 1e6);
        } else if (strcmp(key, "batch") == 0) {
            v->batch = cli_int(opt, val, 1, (int64_t)1 << 31);
        } else if (strcmp(key, "epochs") == 0) {
            v->epochs = (int)cli_int(opt, val, 1, 1000000);
        } else if (strcmp(key, "iters") == 0) {
            v->iters = (int)cli_int(opt, val, 1, 1000000);
        } else if (strcmp(key, "prune") == 0) {
            v->how = CMP_PRUNED;
            v->sparsity = cli_double(opt, val, 0.0, 0.9999);
            v->rounds = v->rounds ? v->rounds : 3;
            v->finetune = v->finetune ? v->finetune : 1;
        } else if (strcmp(key, "rounds") == 0) {
            v->rounds = (int)cli_int(opt, val, 1, 1000);
        } else if (strcmp(key, "finetune") == 0) {
            v->finetune = (int)cli_int(opt, val, 1, 1000000);
        } else if (strcmp(key, "sparse-update") == 0) {
            if (fnet_sparse_update_parse(val, &v->update) != FNET_OK)
                cli_die(2, opt, "expected static, set or rigl, got '%s'", val);
            v->how = v->update == FNET_SPARSE_STATIC ? CMP_PLAIN : CMP_SPARSE;
        } else {
            cli_die(2, opt, "unknown setting (name, optim, lr, batch, epochs, iters, prune, "
                    "rounds, finetune, sparse-update)");
        }
    }
    snprintf(where, sizeof(where), "--model %s", text);
    if ((v->rounds || v->finetune) && v->how != CMP_PRUNED)
        cli_die(2, where, "rounds and finetune are settings of prune=S");
    if (v->how == CMP_PRUNED && v->update != FNET_SPARSE_STATIC)
        cli_die(2, where, "prune and sparse-update do not go together");
    if (v->has_optim && is_solver(v->optim) && v->lr > 0.0f)
        cli_die(2, where, "%s takes no learning rate: its line search picks every step",
                fnet_optim_kind_name(v->optim));
    if (v->iters && !(v->has_optim && is_solver(v->optim)))
        cli_die(2, where, "iters is a setting of optim=lbfgs or optim=cg");
}

fnet_optim_params cmp_optim_params(const struct cmp_variant *v, const struct cmp_recipe *r)
{
    fnet_optim_kind kind = v->has_optim ? v->optim : r->optim;
    fnet_optim_params op = fnet_optim_params_default(kind);
    if (v->lr > 0.0f)
        op.lr = v->lr;
    else if (r->lr > 0.0f && !is_solver(kind) && (!v->has_optim || v->optim == r->optim))
        op.lr = r->lr;
    if (v->iters > 0)
        op.iters_per_batch = v->iters;
    return op;
}

int64_t cmp_batch(const struct cmp_variant *v, const struct cmp_recipe *r)
{
    return v->batch > 0 ? v->batch : r->batch;
}

int cmp_epochs(const struct cmp_variant *v, const struct cmp_recipe *r)
{
    if (v->epochs > 0)
        return v->epochs;
    if (v->epochs_div > 0)
        return r->epochs / v->epochs_div > 1 ? r->epochs / v->epochs_div : 1;
    return r->epochs;
}

void cmp_describe(const struct cmp_variant *v, const struct cmp_recipe *r, char *out, size_t cap)
{
    fnet_optim_params op = cmp_optim_params(v, r);
    int e = cmp_epochs(v, r);
    if (is_solver(op.kind))
        snprintf(out, cap, "%s %d iters/batch, batch %lld, %d epoch%s", fnet_optim_kind_name(op.kind),
                 op.iters_per_batch, (long long)cmp_batch(v, r), e, e == 1 ? "" : "s");
    else
        snprintf(out, cap, "%s lr %g, batch %lld, %d epoch%s", fnet_optim_kind_name(op.kind),
                 (double)op.lr, (long long)cmp_batch(v, r), e, e == 1 ? "" : "s");
    if (v->how == CMP_PRUNED) {
        size_t n = strlen(out);
        snprintf(out + n, cap - n, ", then pruned to %.3g%% in %d rounds of %d epoch%s at 0.3x "
                 "the rate", 100.0 * (1.0 - v->sparsity), v->rounds, v->finetune,
                 v->finetune == 1 ? "" : "s");
    } else if (v->how == CMP_SPARSE) {
        size_t n = strlen(out);
        snprintf(out + n, cap - n, ", %s updates of 0.3 of the weights every epoch to 3/4 of "
                 "the steps", fnet_sparse_update_name(v->update));
    }
}
