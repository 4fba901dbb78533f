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

/* Fill x (n) with uniform values in [lo, hi) from a seeded generator. */
void fnet_test_fill_uniform(float *x, int64_t n, float lo, float hi, uint64_t seed);

/* A fresh empty directory under $TMPDIR (or /tmp); the path is static storage. */
const char *fnet_test_tmpdir(void);

/* n synthetic uint8 samples of `dim` pixels in `classes` classes (labels drawn with seed): pixel
 * j of a sample of class c is `hot` when j % classes == c, else `cold`, plus uniform noise in
 * [0, noise). Hot and cold close together with much noise make classes that overlap. */
fnet_dataset *fnet_test_class_data(fnet_ctx *ctx, int64_t n, int dim, int classes, int hot,
                                   int cold, int noise, uint64_t seed);

#endif
