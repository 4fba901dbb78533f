/* Resuming a run from the command line: see resume.h. */
#define _POSIX_C_SOURCE 200809L
#include "resume.h"
#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static char *dup_or_die(const char *s)
{
    char *d = strdup(s);
    if (d == NULL)
        cli_die(1, "", "out of memory");
    return d;
}

static bool is_changeable(const char *opt, const char *const *changeable)
{
    for (int i = 0; changeable[i] != NULL; i++)
        if (strcmp(opt, changeable[i]) == 0)
            return true;
    return false;
}

// Two values of an option: the same number (1e-3 and 0.001) or the same text.
static bool same_value(const char *a, const char *b)
{
    char *ea, *eb;
    double x = strtod(a, &ea), y = strtod(b, &eb);
    if (*a != '\0' && *b != '\0' && *ea == '\0' && *eb == '\0')
        return x == y;
    return strcmp(a, b) == 0;
}

const char *run_args_stored(const struct run_args *a, const char *key)
{
    return fnet_meta_find(a->stored, a->n_stored, key);
}

void run_args_build(struct run_args *a, const char *prefix, int argc, char **argv,
                    bool (*takes_value)(const char *opt), const char *const *changeable)
{
    *a = (struct run_args){.argc = argc, .argv = argv};
    struct cli_args it = {.argc = argc, .argv = argv, .i = 1};
    const char *o, *v;
    while ((o = cli_next(&it, takes_value, &v)) != NULL)
        if (strcmp(o, "--resume") == 0)
            a->resume = v;
    if (a->resume == NULL)
        return;
    char where[1100];
    snprintf(where, sizeof(where), "--resume %s", a->resume);
    fnet_ctx *ctx = NULL;
    if (fnet_ctx_create_reference(&ctx) != FNET_OK)
        cli_die(1, where, "cannot create a context to read the checkpoint");
    cli_check(ctx, fnet_checkpoint_metadata(ctx, a->resume, &a->stored, &a->n_stored), where);
    fnet_ctx_free(ctx);
    if (run_args_stored(a, "run.epoch") == NULL)
        cli_die(1, where, "the checkpoint holds no run to resume (it was written without the "
                "run's state: by --save-sparse, by a version before resumable runs, or by "
                "fnet_model_save); start from its weights with --load instead");

    // the given options against the stored ones
    size_t plen = strlen(prefix);
    char key[128];
    it = (struct cli_args){.argc = argc, .argv = argv, .i = 1};
    while ((o = cli_next(&it, takes_value, &v)) != NULL) {
        if (strcmp(o, "--resume") == 0 || is_changeable(o, changeable))
            continue;
        if (strcmp(o, "--load") == 0)
            cli_die(2, "--load", "--resume continues a run from its own checkpoint; it takes no "
                    "--load");
        snprintf(key, sizeof(key), "%s%s", prefix, o);
        const char *stored = run_args_stored(a, key);
        if (stored != NULL && !same_value(v ? v : "", stored))
            cli_die(2, o, "the run in %s was started with %s %s; resuming it must keep that "
                    "(leave the option out, or start a new run)", a->resume, o, stored);
    }

    // argv[0], the stored options, the given ones
    int extra = 0;
    for (int i = 0; i < a->n_stored; i++)
        if (strncmp(a->stored[i].key, prefix, plen) == 0 &&
            strncmp(a->stored[i].key + plen, "--", 2) == 0)
            extra += 2;
    char **merged = calloc((size_t)(argc + extra + 1), sizeof(char *));
    if (merged == NULL)
        cli_die(1, "", "out of memory");
    int k = 0;
    merged[k++] = argv[0];
    for (int i = 0; i < a->n_stored; i++) {
        const char *opt = a->stored[i].key + plen;
        if (strncmp(a->stored[i].key, prefix, plen) != 0 || strncmp(opt, "--", 2) != 0)
            continue;
        if (!takes_value(opt) && a->stored[i].value[0] != '\0')
            cli_die(1, where, "metadata '%s' stores a value for a flag", a->stored[i].key);
        merged[k++] = (char *)opt;
        if (takes_value(opt))
            merged[k++] = (char *)a->stored[i].value;
    }
    for (int i = 1; i < argc; i++)
        merged[k++] = argv[i];
    a->argc = k;
    a->argv = merged;
}

void run_args_free(struct run_args *a)
{
    if (a->stored != NULL)
        free(a->argv);
    fnet_checkpoint_metadata_free(a->stored);
    *a = (struct run_args){0};
}

void run_record_add(struct run_record *r, const char *prefix, const char *opt, const char *value)
{
    size_t len = strlen(prefix) + strlen(opt) + 1;
    char *key = malloc(len);
    if (key == NULL)
        cli_die(1, "", "out of memory");
    snprintf(key, len, "%s%s", prefix, opt);
    for (int i = 0; i < r->n; i++) {
        if (strcmp(r->meta[i].key, key) == 0) {
            free(key);
            free((char *)r->meta[i].value);
            r->meta[i].value = dup_or_die(value ? value : "");
            return;
        }
    }
    if (r->n == r->cap) {
        int cap = r->cap ? 2 * r->cap : 32;
        fnet_meta *m = realloc(r->meta, (size_t)cap * sizeof(*m));
        if (m == NULL)
            cli_die(1, "", "out of memory");
        r->meta = m;
        r->cap = cap;
    }
    r->meta[r->n].key = key;
    r->meta[r->n].value = dup_or_die(value ? value : "");
    r->n++;
}

void run_record_free(struct run_record *r)
{
    for (int i = 0; i < r->n; i++) {
        free((char *)r->meta[i].key);
        free((char *)r->meta[i].value);
    }
    free(r->meta);
    *r = (struct run_record){0};
}
