/* libFuzzer target: the model-spec parser (src/io/spec.c) and the model builder behind it. Any
 * text must parse or fail with FNET_ERR_FORMAT and a message. What parses must print back as a
 * canonical spec that parses to the same items and prints to the same text (a fixed point), and,
 * when small enough to build, give a model (or a clean refusal, for kinds not built) whose own
 * spec builds the same model again. */
#include "fuzz_util.h"
#include "core/layer_kind.h"

#define SPEC_N_IN 6
#define MAX_MODEL_PARAMS 200000 // build only models this small (a huge spec is legal, not a bug)

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_ctx();
    return 0;
}

static void check_same_item(const struct fnet_spec_item *a, const struct fnet_spec_item *b)
{
    FUZZ_CHECK(a->desc == b->desc && a->n == b->n && a->p == b->p);
    for (int i = 0; i < a->desc->n_opts; i++) {
        const struct fnet_spec_value *x = &a->opt[i], *y = &b->opt[i];
        if (a->desc->opts[i].type == FNET_SPEC_FLAG) { // the default may print as nothing
            FUZZ_CHECK(fnet_spec_flag(a, a->desc->opts[i].name) ==
                       fnet_spec_flag(b, a->desc->opts[i].name));
            continue;
        }
        FUZZ_CHECK(x->set == y->set && x->count == y->count && x->real == y->real);
        for (int k = 0; k < x->count; k++)
            FUZZ_CHECK(x->v[k] == y->v[k]);
    }
}

// The canonical text of items[0..n) joined with commas, malloc'd.
static char *canonical(const struct fnet_spec_item *items, int n)
{
    size_t cap = 1, len = 0;
    for (int i = 0; i < n; i++) {
        int k = fnet_spec_item_format(&items[i], NULL, 0);
        FUZZ_CHECK(k > 0);
        cap += (size_t)k + 1;
    }
    char *s = malloc(cap);
    FUZZ_CHECK(s != NULL);
    s[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (i > 0)
            s[len++] = ',';
        int k = fnet_spec_item_format(&items[i], s + len, cap - len);
        FUZZ_CHECK(k > 0 && (size_t)k < cap - len && strlen(s + len) == (size_t)k);
        len += (size_t)k;
    }
    return s;
}

// What building a spec's model should give: the exact parameter count when every layer is dense,
// an activation or dropout; for the other kinds (TT, TR, Tucker, CP, low-rank, circulant,
// sparse) that it builds or is refused cleanly, within a bound on its parameters.
struct expect {
    bool too_big;   // over MAX_MODEL_PARAMS even as dense layers: not built here
    bool exotic;    // a kind other than dense, activation, dropout
    int64_t params; // exact when !exotic
    int64_t bound;  // the most parameters the model may have when built
    bool inexact;   // a kind whose descriptor's count is a lower bound only (not Tucker or CP)
    int64_t counted; // Σ of the descriptors' counts: the parameters when !inexact
};

static struct expect model_size(const struct fnet_spec_item *items, int n)
{
    struct expect e = {false, false, 0, 0, false, 0};
    int64_t width = SPEC_N_IN;
    for (int i = 0; i < n && !e.too_big; i++) {
        const struct fnet_spec_item *it = &items[i];
        if (it->n == 0) // activation, dropout: width unchanged
            continue;
        bool dense_kind = it->desc->kind == FNET_LAYER_DENSE;
        if (!dense_kind)
            e.exotic = true;
        if (it->n > MAX_MODEL_PARAMS) {
            e.too_big = true;
            break;
        }
        // ":bias=0": no bias
        int64_t dense = (width + (dense_kind && !fnet_spec_flag(it, "bias") ? 0 : 1)) * it->n;
        e.params += dense;
        // a factorized layer holds about as many parameters as the dense one it replaces or
        // fewer (its builder refuses ranks its modes cannot use): 4x is generous. Tucker at full
        // ranks holds its core and square factors, more than the dense matrix: its descriptor's
        // count, exact for Tucker and CP, bounds it instead, and must be what it holds.
        int64_t implied = it->desc->min_params ? it->desc->min_params(it, width) : 0;
        bool exact = dense_kind || it->desc->kind == FNET_LAYER_TUCKER ||
                     it->desc->kind == FNET_LAYER_CP;
        e.inexact = e.inexact || !exact;
        e.counted = fnet_sat_add(e.counted, dense_kind ? dense : implied);
        int64_t most = dense_kind ? dense : (implied > 4 * dense ? implied : 4 * dense);
        e.bound = most > MAX_MODEL_PARAMS ? MAX_MODEL_PARAMS + 1 : e.bound + most;
        width = it->n;
        e.too_big = e.bound > MAX_MODEL_PARAMS;
    }
    return e;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fnet_ctx *ctx = fuzz_ctx();
    char *spec = malloc(size + 1);
    if (spec == NULL)
        return 0;
    memcpy(spec, data, size);
    spec[size] = '\0';

    struct fnet_spec_item *items = NULL;
    int n = -1;
    fnet_ctx_clear_error(ctx);
    fnet_status st = fnet_spec_parse(ctx, spec, &items, &n);
    if (st != FNET_OK) {
        fuzz_check_error(ctx, st);
        FUZZ_CHECK(st == FNET_ERR_FORMAT);
        FUZZ_CHECK(items == NULL && n == 0);
        free(spec);
        return 0;
    }
    FUZZ_CHECK(items != NULL && n >= 1);

    // canonical text: parses to the same items and prints to itself
    char *canon = canonical(items, n);
    struct fnet_spec_item *again = NULL;
    int n2 = 0;
    st = fnet_spec_parse(ctx, canon, &again, &n2);
    FUZZ_CHECK(st == FNET_OK && n2 == n);
    for (int i = 0; i < n; i++)
        check_same_item(&items[i], &again[i]);
    char *canon2 = canonical(again, n2);
    FUZZ_CHECK(strcmp(canon, canon2) == 0);

    // small models: build it, then rebuild it from its own spec (what its checkpoints carry)
    struct expect e = model_size(items, n);
    if (!e.too_big) {
        fnet_model *m = (fnet_model *)&m, *m2 = NULL;
        fnet_ctx_clear_error(ctx);
        st = fnet_model_create_from_spec(ctx, spec, SPEC_N_IN, 1, &m);
        if (e.exotic && st != FNET_OK) {
            // not built (yet), or shapes its builder refuses (modes that do not factorize, ...)
            fuzz_check_error(ctx, st);
            FUZZ_CHECK(st == FNET_ERR_UNSUPPORTED || st == FNET_ERR_SHAPE ||
                       st == FNET_ERR_INVALID_ARG || st == FNET_ERR_FORMAT);
            FUZZ_CHECK(m == NULL);
            goto out;
        }
        FUZZ_CHECK(st == FNET_OK);
        int64_t np = fnet_model_num_params(m);
        FUZZ_CHECK(!e.exotic ? np == e.params : e.inexact ? np <= e.bound : np == e.counted);
        if (!e.exotic) // factorized layers may print the modes and ranks they chose
            FUZZ_CHECK(strcmp(fnet_model_spec(m), canon) == 0);
        st = fnet_model_create_from_spec(ctx, fnet_model_spec(m), SPEC_N_IN, 1, &m2);
        FUZZ_CHECK(st == FNET_OK);
        FUZZ_CHECK(strcmp(fnet_model_spec(m), fnet_model_spec(m2)) == 0);
        FUZZ_CHECK(fnet_model_num_params(m2) == np);
        float *w = malloc(sizeof(float) * (size_t)(np + 1)), *w2 = malloc(sizeof(float) * (size_t)(np + 1));
        FUZZ_CHECK(w != NULL && w2 != NULL);
        FUZZ_CHECK(fnet_model_get_params(m, w) == FNET_OK && fnet_model_get_params(m2, w2) == FNET_OK);
        FUZZ_CHECK(np == 0 || memcmp(w, w2, (size_t)np * sizeof(float)) == 0);
        free(w), free(w2);
        fnet_model_free(m2);
        fnet_model_free(m);
    }

out:
    free(canon2);
    fnet_free(again);
    free(canon);
    fnet_free(items);
    free(spec);
    return 0;
}
