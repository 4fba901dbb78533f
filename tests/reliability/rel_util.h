/* Helpers of the reliability tests (tests/reliability): files, directories and checkpoints. */
#ifndef FNET_REL_UTIL_H
#define FNET_REL_UTIL_H

#include "test_util.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct rel_bytes {
    unsigned char *p;
    size_t n;
};

/* A fresh temporary directory (malloc'd path). */
static inline char *rel_tmpdir(void)
{
    const char *d = fnet_test_tmpdir();
    char *p = malloc(strlen(d) + 1);
    assert_non_null(p);
    strcpy(p, d);
    return p;
}

/* dir/name (malloc'd). */
static inline char *rel_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* The whole file (p malloc'd), or {NULL, 0} when it cannot be opened. */
static inline struct rel_bytes rel_read_file(const char *path)
{
    struct rel_bytes b = {NULL, 0};
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return b;
    struct stat sb;
    assert_int_equal(fstat(fileno(f), &sb), 0);
    b.n = (size_t)sb.st_size;
    b.p = malloc(b.n + 1);
    assert_non_null(b.p);
    assert_int_equal(fread(b.p, 1, b.n, f), b.n);
    fclose(f);
    return b;
}

static inline void rel_write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* Whether path holds exactly b's bytes. */
static inline bool rel_file_is(const char *path, struct rel_bytes b)
{
    struct rel_bytes now = rel_read_file(path);
    bool same = now.p != NULL && now.n == b.n && memcmp(now.p, b.p, b.n) == 0;
    free(now.p);
    return same;
}

/* Entries of dir whose name holds ".tmp." (the checkpoint writer's temporary files). */
static inline int rel_count_tmp_files(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strstr(e->d_name, ".tmp.") != NULL;
    closedir(d);
    return n;
}

/* Remove every entry of dir (not recursive), then dir. */
static inline void rel_remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char *p = rel_join(dir, e->d_name);
        unlink(p);
        free(p);
    }
    closedir(d);
    rmdir(dir);
}

/* A copy of the model's parameters (free()). */
static inline float *rel_params_copy(fnet_model *m, int64_t *n)
{
    const float *w = fnet_model_params(m, n);
    float *c = malloc((size_t)*n * sizeof(float) + 1);
    assert_non_null(c);
    memcpy(c, w, (size_t)*n * sizeof(float));
    return c;
}

/* Whether the checkpoint at path loads into a model with exactly these parameters. */
static inline bool rel_checkpoint_holds(fnet_ctx *ctx, const char *path, const float *w, int64_t n)
{
    fnet_model *m = NULL;
    if (fnet_model_load(ctx, path, &m) != FNET_OK)
        return false;
    int64_t k;
    const float *v = fnet_model_params(m, &k);
    bool same = k == n && memcmp(v, w, (size_t)n * sizeof(float)) == 0;
    fnet_model_free(m);
    return same;
}

#endif
