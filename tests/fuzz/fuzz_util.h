/* Shared by the libFuzzer targets of tests/fuzz: a private scratch directory (under $TMPDIR when
 * set, else on /dev/shm, so the loaders that take a path cost no disk I/O), writing an input to a
 * file there, and an always-on check that aborts (libFuzzer then reports the input as a crash). */
#ifndef FNET_FUZZ_UTIL_H
#define FNET_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <factornet.h>

#include "fuzz_run_data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* A property of the code under test that must hold for every input: abort (a crash) if not. */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n", __FILE__, __LINE__, #cond);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* The scratch directory of this process, made on first use and removed at exit. */
static char fuzz_dir[256];

static inline void fuzz_remove_dir(void)
{
    rmdir(fuzz_dir); // succeeds once the targets have unlinked their files
}

static inline const char *fuzz_scratch_dir(void)
{
    if (fuzz_dir[0] == '\0') {
        // $TMPDIR when set (run.sh points it at a directory it removes), else /dev/shm, /tmp
        const char *base = getenv("TMPDIR");
        if (base == NULL || base[0] == '\0')
            base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(fuzz_dir, sizeof(fuzz_dir), "%s/fnet-fuzz-XXXXXX", base);
        if (mkdtemp(fuzz_dir) == NULL) {
            perror("fuzz: mkdtemp");
            abort();
        }
        atexit(fuzz_remove_dir);
    }
    return fuzz_dir;
}

/* path (cap) = scratch/name. */
static inline void fuzz_path(char *path, size_t cap, const char *name)
{
    snprintf(path, cap, "%s/%s", fuzz_scratch_dir(), name);
}

/* Write data (n bytes) to path, replacing it. */
static inline void fuzz_write_file(const char *path, const uint8_t *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL || (n > 0 && fwrite(data, 1, n, f) != n) || fclose(f) != 0) {
        perror(path);
        abort();
    }
}

/* A ctx on the reference backend with one thread, made once per process. */
static inline fnet_ctx *fuzz_ctx(void)
{
    static fnet_ctx *ctx;
    if (ctx == NULL) {
        if (fnet_ctx_create_reference(&ctx) != FNET_OK || fnet_ctx_set_threads(ctx, 1) != FNET_OK)
            abort();
    }
    return ctx;
}

/* After fnet_ctx_clear_error(ctx) and one failing call: the status is a documented error (never
 * FNET_ERR_INTERNAL, which would be a bug of ours) and the ctx holds it with a message. */
static inline void fuzz_check_error(const fnet_ctx *ctx, fnet_status st)
{
    FUZZ_CHECK(st < 0 && st >= FNET_ERR_CANCELLED);
    FUZZ_CHECK(st != FNET_ERR_INTERNAL);
    FUZZ_CHECK(fnet_ctx_last_status(ctx) == st);
    FUZZ_CHECK(fnet_ctx_last_error(ctx)[0] != '\0');
}

#endif
