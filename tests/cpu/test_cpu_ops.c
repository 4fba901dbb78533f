/* The CPU backend's own parallelism: GEMMs of 4M multiply-adds or more split over the ctx's pool
 * (one single-threaded OpenBLAS GEMM per worker, along C's rows or columns) against the
 * reference GEMM, for every transpose, leading dimensions wider than the matrix, beta != 0 and more workers than pieces;
 * and run_parts: every part once, on its own worker, nested calls one after the other. Under
 * ThreadSanitizer (make tsan) these check the pool's hand-off around BLAS. */
#include "test_util.h"
#include "core/backend.h"

#include <pthread.h>
#include <string.h>

struct gemm_case {
    int64_t M, N, K; // M >= N splits rows, M < N columns; all over 4M multiply-adds
};

static const struct gemm_case gemm_cases[] = {{301, 171, 97}, {67, 1029, 77}, {1000, 5000, 1}};

// C (M, N) = 0.75·op(A)·op(B) + 0.5·C on both backends, with lda/ldb/ldc 3 wider than needed
static void check_gemm(fnet_ctx *cc, const struct gemm_case *g, bool ta, bool tb)
{
    int64_t M = g->M, N = g->N, K = g->K;
    int64_t ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
    int64_t lda = ac + 3, ldb = bc + 3, ldc = N + 3;
    float *A = test_malloc((size_t)(ar * lda) * sizeof(float));
    float *B = test_malloc((size_t)(br * ldb) * sizeof(float));
    float *Cr = test_malloc((size_t)(M * ldc) * sizeof(float));
    float *Cc = test_malloc((size_t)(M * ldc) * sizeof(float));
    fnet_test_fill_uniform(A, ar * lda, -1.0f, 1.0f, 1);
    fnet_test_fill_uniform(B, br * ldb, -1.0f, 1.0f, 2);
    fnet_test_fill_uniform(Cr, M * ldc, -1.0f, 1.0f, 3);
    memcpy(Cc, Cr, (size_t)(M * ldc) * sizeof(float));
    fnet_reference_backend.sgemm(cc, ta, tb, M, N, K, 0.75f, A, lda, B, ldb, 0.5f, Cr, ldc);
    cc->be->sgemm(cc, ta, tb, M, N, K, 0.75f, A, lda, B, ldb, 0.5f, Cc, ldc);
    fnet_assert_allclose(Cc, Cr, M * ldc, 1e-5, 1e-5); // the padding columns untouched too
    test_free(A), test_free(B), test_free(Cr), test_free(Cc);
}

static void test_split_gemm_matches_reference(void **state)
{
    fnet_ctx *cc;
    fnet_assert_ok(NULL, fnet_ctx_create_cpu(&cc));
    const int thread_counts[] = {1, 2, 3, 80}; // 80: more workers than pieces (FNET_MAX_PARTS)
    for (int t = 0; t < 4; t++) {
        fnet_assert_ok(cc, fnet_ctx_set_threads(cc, thread_counts[t]));
        for (size_t i = 0; i < sizeof(gemm_cases) / sizeof(gemm_cases[0]); i++)
            for (int tr = 0; tr < 4; tr++)
                check_gemm(cc, &gemm_cases[i], tr & 1, tr & 2);
    }
    fnet_ctx_free(cc);
}

#define MAX_PARTS 8

struct parts_record {
    fnet_ctx *ctx;
    int calls[MAX_PARTS];
    pthread_t thread[MAX_PARTS];
    int nested_calls[MAX_PARTS][MAX_PARTS];
    float *C[MAX_PARTS]; // each part's own GEMM output (4.2M multiply-adds: split if not in a part)
    const float *A, *B;
};

struct nested_arg {
    struct parts_record *rec;
    int outer;
};

static void nested_part(void *arg, int part)
{
    struct nested_arg *n = arg;
    n->rec->nested_calls[n->outer][part]++;
}

static void one_part(void *arg, int part)
{
    struct parts_record *r = arg;
    r->calls[part]++;
    r->thread[part] = pthread_self();
    r->ctx->be->sgemm(r->ctx, false, false, 256, 128, 128, 1.0f, r->A, 128, r->B, 128, 0.0f,
                      r->C[part], 128);
    struct nested_arg n = {r, part};
    fnet_run_parts(r->ctx, 3, nested_part, &n);
}

static void test_run_parts_runs_each_part_once_on_its_own_worker(void **state)
{
    fnet_ctx *cc;
    fnet_assert_ok(NULL, fnet_ctx_create_cpu(&cc));
    float *A = test_malloc(256 * 128 * sizeof(float)), *B = test_malloc(128 * 128 * sizeof(float));
    float *want = test_malloc(256 * 128 * sizeof(float));
    fnet_test_fill_uniform(A, 256 * 128, -1.0f, 1.0f, 4);
    fnet_test_fill_uniform(B, 128 * 128, -1.0f, 1.0f, 5);
    fnet_reference_backend.sgemm(cc, false, false, 256, 128, 128, 1.0f, A, 128, B, 128, 0.0f,
                                 want, 128);
    for (int threads = 1; threads <= 4; threads++) {
        fnet_assert_ok(cc, fnet_ctx_set_threads(cc, threads));
        for (int parts = 1; parts <= threads; parts++) {
            struct parts_record r = {.ctx = cc, .A = A, .B = B};
            for (int p = 0; p < parts; p++)
                r.C[p] = test_malloc(256 * 128 * sizeof(float));
            fnet_run_parts(cc, parts, one_part, &r);
            for (int p = 0; p < parts; p++) {
                assert_int_equal(r.calls[p], 1);
                for (int q = 0; q < p; q++) // one worker each
                    assert_false(pthread_equal(r.thread[p], r.thread[q]));
                for (int q = 0; q < 3; q++)
                    assert_int_equal(r.nested_calls[p][q], 1);
                fnet_assert_allclose(r.C[p], want, 256 * 128, 1e-5, 1e-5);
                test_free(r.C[p]);
            }
            for (int p = parts; p < MAX_PARTS; p++)
                assert_int_equal(r.calls[p], 0);
        }
    }
    test_free(A), test_free(B), test_free(want);
    fnet_ctx_free(cc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_gemm_matches_reference),
        cmocka_unit_test(test_run_parts_runs_each_part_once_on_its_own_worker),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
