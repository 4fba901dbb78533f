/* Test helpers shared by every CMocka test: CMocka's includes in the right order, closeness
 * checks in double (cmocka 1.1.5 has none), temporary directories. */
#ifndef FNET_TEST_UTIL_H
#define FNET_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <factornet.h>
#include "core/internal.h"

/* Fail the test unless |a[i] − b[i]| <= atol + rtol·|b[i]| for every i < n; the message names
 * the first index that differs and the worst one. */
#define fnet_assert_allclose(a, b, n, rtol, atol)                                                 \
    fnet_check_allclose_f((a), (b), (n), (rtol), (atol), __FILE__, __LINE__)
#define fnet_assert_allclose_d(a, b, n, rtol, atol)                                               \
    fnet_check_allclose_d((a), (b), (n), (rtol), (atol), __FILE__, __LINE__)
/* Scalar closeness. */
#define fnet_assert_close(a, b, rtol, atol)                                                       \
    fnet_check_close((double)(a), (double)(b), (rtol), (atol), __FILE__, __LINE__)
/* Fail unless st == FNET_OK, printing the ctx's last error. */
#define fnet_assert_ok(ctx, st) fnet_check_ok((ctx), (st), __FILE__, __LINE__)

void fnet_check_allclose_f(const float *a, const float *b, int64_t n, double rtol, double atol,
                           const char *file, int line);
void fnet_check_allclose_d(const double *a, const double *b, int64_t n, double rtol, double atol,
                           const char *file, int line);
void fnet_check_close(double a, double b, double rtol, double atol, const char *file, int line);
void fnet_check_ok(const fnet_ctx *ctx, fnet_status st, const char *file, int line);

/* The ctx a test runs on: the backend FNET_TEST_BACKEND names ("reference", "cpu", "guarded",
 * "cuda" for CUDA device 0, "cuda:K" for device K) when it is set, else `dflt`
 * (FNET_BACKEND_REFERENCE or FNET_BACKEND_CPU). A name that is no backend fails the test with a
 * message naming it, so a misspelt one cannot pass silently. A CUDA device that
 * fnet_cuda_probe() refuses (a build without CUDA, no GPU, no such device) is no failure: the
 * process prints "skipped: " and the probe's reason and exits with FNET_TEST_SKIP, which CTest
 * reports as Skipped. Tests that read it run on every backend in `make test` (tests/CMakeLists.txt,
 * label "backends") and on CUDA under `ctest -L gpu` (their `_cuda` copies). Oracles (the
 * reference side of a comparison) are made with fnet_ctx_create_reference(). */
fnet_ctx *fnet_test_ctx(fnet_backend_kind dflt);

/* The exit status of a test that cannot run here (CTest's SKIP_RETURN_CODE). */
#define FNET_TEST_SKIP 77

/* Whether name is "cuda" (then *device = 0) or "cuda:K", K decimal digits (*device = K). */
bool fnet_test_cuda_name(const char *name, int *device);

/* When the environment variable `var` (or `dflt` when it is unset or empty; dflt may be NULL)
 * names a CUDA device ("cuda", "cuda:K") that fnet_cuda_probe() refuses with
 * FNET_ERR_UNSUPPORTED: print "skipped: " and the reason, exit with FNET_TEST_SKIP. Any other
 * refusal fails the test; otherwise it returns. For a main() to skip before it runs tests on
 * other backends first. */
void fnet_test_skip_without_device(const char *var, const char *dflt);

/* Backend memory for tests, failing the test when out of memory: n floats (or int32s) on ctx,
 * holding a copy of host when it is not NULL (else uninitialized); freed with
 * fnet_backend_free(). */
float *fnet_test_upload(fnet_ctx *ctx, const float *host, int64_t n);
int32_t *fnet_test_upload_i32(fnet_ctx *ctx, const int32_t *host, int64_t n);
/* A new host copy (free()) of n floats of backend memory be. */
float *fnet_test_download(fnet_ctx *ctx, const float *be, int64_t n);
/* Host copies (free()) of a model's or a layer's parameters and gradients. */
float *fnet_test_model_params(const fnet_model *m);
float *fnet_test_model_grads(const fnet_model *m);
float *fnet_test_layer_params(const fnet_layer *l);
float *fnet_test_layer_grads(const fnet_layer *l);

/* Fill x (n) with uniform values in [lo, hi) from a seeded generator. */
void fnet_test_fill_uniform(float *x, int64_t n, float lo, float hi, uint64_t seed);

/* A whole file read into memory (p: n bytes and a NUL, free()), and n bytes written as a file;
 * either fails the test when the file cannot be read or written. */
struct fnet_test_bytes {
    unsigned char *p;
    size_t n;
};
struct fnet_test_bytes fnet_test_read_file(const char *path);
void fnet_test_write_file(const char *path, const void *p, size_t n);

/* In a checkpoint's bytes p (n), set every "crc32.<name>" metadata value to the CRC-32 of its
 * tensor's bytes as they are now, and "metadata_crc32" to the metadata's (values edited in place,
 * the same length): a file edited after it was written, as a tool that keeps the
 * checksums would, so that a test reaches the loader's checks behind them. */
void fnet_test_restamp_checksums(unsigned char *p, size_t n);

/* A fresh empty directory under $TMPDIR (or /tmp); the path is static storage. */
const char *fnet_test_tmpdir(void);

/* n synthetic uint8 samples of `dim` pixels in `classes` classes (labels drawn with seed): pixel
 * j of a sample of class c is `hot` when j % classes == c, else `cold`, plus uniform noise in
 * [0, noise). Hot and cold close together with much noise make classes that overlap. */
fnet_dataset *fnet_test_class_data(fnet_ctx *ctx, int64_t n, int dim, int classes, int hot,
                                   int cold, int noise, uint64_t seed);

#endif
