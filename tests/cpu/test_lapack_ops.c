/* The gesvd and qr backend ops: reference (Jacobi, Householder) and CPU (LAPACKE) on tall, wide,
 * square, 1×n and rank-deficient matrices, checked through invariants (sign conventions differ):
 * U·S·Vt and Q·R reconstruct A, orthonormal factors, equal singular values and |R|; bad input,
 * out-of-memory injection, and the LAPACK info conversion. */
#include "test_util.h"
#include "linalg_check.h"
#include "core/backend.h"
#include "cpu/cpu_lapack.h"

#include <math.h>
#include <string.h>

// float storage, double checks: reconstruction and orthonormality to a few float ulps times size
#define RECON_RTOL 1e-5
#define ORTHO_ATOL 1e-5
#define SVAL_RTOL 1e-5
#define SVAL_ATOL 2e-6 // relative to the largest singular value

typedef fnet_status (*ctx_create_fn)(fnet_ctx **out);
static const ctx_create_fn ctx_creators[] = {fnet_ctx_create_reference, fnet_ctx_create_cpu};

struct mat_case {
    int64_t m, n, rank; // rank 0: a full random matrix, else a product of rank r
};

static const struct mat_case cases[] = {
    {64, 64, 0}, {128, 48, 0}, {40, 100, 0}, {1, 37, 0}, {37, 1, 0}, {1, 1, 0},
    {60, 50, 7}, {30, 70, 3},  {8, 5, -1}, // -1: the zero matrix
};

// A (m, n): random in [-1, 1), or a random rank-r product, or zero
static float *make_matrix(const struct mat_case *c, uint64_t seed)
{
    float *A = test_malloc((size_t)(c->m * c->n) * sizeof(float));
    if (c->rank == 0) {
        fnet_test_fill_uniform(A, c->m * c->n, -1.0f, 1.0f, seed);
    } else if (c->rank < 0) {
        memset(A, 0, (size_t)(c->m * c->n) * sizeof(float));
    } else {
        int64_t r = c->rank;
        float *L = test_malloc((size_t)(c->m * r) * sizeof(float));
        float *R = test_malloc((size_t)(r * c->n) * sizeof(float));
        fnet_test_fill_uniform(L, c->m * r, -1.0f, 1.0f, seed);
        fnet_test_fill_uniform(R, r * c->n, -1.0f, 1.0f, seed + 1);
        for (int64_t i = 0; i < c->m; i++)
            for (int64_t j = 0; j < c->n; j++) {
                double acc = 0.0;
                for (int64_t l = 0; l < r; l++)
                    acc += (double)L[i * r + l] * (double)R[l * c->n + j];
                A[i * c->n + j] = (float)acc;
            }
        test_free(R);
        test_free(L);
    }
    return A;
}

struct svd_out {
    float *U, *S, *Vt;
};

// gesvd on ctx, checking every invariant; the caller frees the factors
static struct svd_out checked_svd(fnet_ctx *ctx, const struct mat_case *c, const float *A)
{
    int64_t m = c->m, n = c->n, k = m < n ? m : n;
    struct svd_out o = {test_malloc((size_t)(m * k) * sizeof(float)),
                        test_malloc((size_t)k * sizeof(float)),
                        test_malloc((size_t)(k * n) * sizeof(float))};
    float *copy = test_malloc((size_t)(m * n) * sizeof(float));
    memcpy(copy, A, (size_t)(m * n) * sizeof(float));
    fnet_assert_ok(ctx, ctx->be->host_la->gesvd(ctx, m, n, A, o.U, o.S, o.Vt));
    assert_memory_equal(copy, A, (size_t)(m * n) * sizeof(float)); // A unchanged
    test_free(copy);
    for (int64_t i = 0; i < k; i++) {
        assert_true(o.S[i] >= 0.0f);
        if (i > 0)
            assert_true(o.S[i] <= o.S[i - 1]);
    }
    double na = fnet_test_fro(m * n, A);
    assert_true(fnet_test_recon_error(m, n, k, o.U, o.S, o.Vt, A) <= RECON_RTOL * (na > 0 ? na : 1.0));
    assert_true(fnet_test_ortho_cols_error(m, k, o.U) <= ORTHO_ATOL);
    assert_true(fnet_test_ortho_rows_error(k, n, o.Vt) <= ORTHO_ATOL);
    if (c->rank > 0) // exactly rank r: the rest of the spectrum is float noise
        for (int64_t i = c->rank; i < k; i++)
            assert_true(o.S[i] <= 1e-5f * o.S[0]);
    if (c->rank < 0)
        for (int64_t i = 0; i < k; i++)
            assert_true(o.S[i] == 0.0f);
    return o;
}

static void free_svd(struct svd_out o)
{
    test_free(o.Vt);
    test_free(o.S);
    test_free(o.U);
}

static void test_gesvd_reconstructs_with_orthonormal_factors_on_both_backends(void **state)
{
    fnet_ctx *ref, *cpu;
    fnet_assert_ok(NULL, fnet_ctx_create_reference(&ref));
    fnet_assert_ok(NULL, fnet_ctx_create_cpu(&cpu));
    for (size_t t = 0; t < sizeof(cases) / sizeof(cases[0]); t++) {
        const struct mat_case *c = &cases[t];
        float *A = make_matrix(c, 100 + t);
        struct svd_out a = checked_svd(ref, c, A), b = checked_svd(cpu, c, A);
        // the same singular values from Jacobi in double and from LAPACK in float
        int64_t k = c->m < c->n ? c->m : c->n;
        fnet_assert_allclose(b.S, a.S, k, SVAL_RTOL, SVAL_ATOL * (a.S[0] > 0 ? a.S[0] : 1.0f));
        free_svd(a);
        free_svd(b);
        test_free(A);
    }
    fnet_ctx_free(cpu);
    fnet_ctx_free(ref);
}

// Q·R on ctx with every invariant; returns R (k, n), the caller frees it
static float *checked_qr(fnet_ctx *ctx, const struct mat_case *c, const float *A)
{
    int64_t m = c->m, n = c->n, k = m < n ? m : n;
    float *Q = test_malloc((size_t)(m * k) * sizeof(float));
    float *R = test_malloc((size_t)(k * n) * sizeof(float));
    float *copy = test_malloc((size_t)(m * n) * sizeof(float));
    memcpy(copy, A, (size_t)(m * n) * sizeof(float));
    fnet_assert_ok(ctx, ctx->be->host_la->qr(ctx, m, n, A, Q, R));
    assert_memory_equal(copy, A, (size_t)(m * n) * sizeof(float));
    test_free(copy);
    for (int64_t a = 0; a < k; a++)
        for (int64_t j = 0; j < a; j++)
            assert_true(R[a * n + j] == 0.0f); // upper triangular, exactly
    double na = fnet_test_fro(m * n, A);
    assert_true(fnet_test_recon_error(m, n, k, Q, NULL, R, A) <= RECON_RTOL * (na > 0 ? na : 1.0));
    assert_true(fnet_test_ortho_cols_error(m, k, Q) <= ORTHO_ATOL);
    test_free(Q);
    return R;
}

static void test_qr_reconstructs_with_orthonormal_q_on_both_backends(void **state)
{
    fnet_ctx *ref, *cpu;
    fnet_assert_ok(NULL, fnet_ctx_create_reference(&ref));
    fnet_assert_ok(NULL, fnet_ctx_create_cpu(&cpu));
    for (size_t t = 0; t < sizeof(cases) / sizeof(cases[0]); t++) {
        const struct mat_case *c = &cases[t];
        float *A = make_matrix(c, 200 + t);
        float *ra = checked_qr(ref, c, A), *rb = checked_qr(cpu, c, A);
        if (c->rank == 0) {
            // full rank: R is unique up to the sign of each row, so |R| agrees
            int64_t k = c->m < c->n ? c->m : c->n, kn = k * c->n;
            for (int64_t i = 0; i < kn; i++) {
                ra[i] = fabsf(ra[i]);
                rb[i] = fabsf(rb[i]);
            }
            fnet_assert_allclose(rb, ra, kn, 1e-4, 1e-5 * fnet_test_fro(kn, ra));
        }
        test_free(rb);
        test_free(ra);
        test_free(A);
    }
    fnet_ctx_free(cpu);
    fnet_ctx_free(ref);
}

static void test_lapack_ops_reject_non_finite_and_empty_input(void **state)
{
    for (size_t b = 0; b < 2; b++) {
        fnet_ctx *ctx;
        fnet_assert_ok(NULL, ctx_creators[b](&ctx));
        float A[6] = {1, 2, 3, 4, NAN, 6}, U[6], S[2], Vt[6], Q[6], R[6];
        assert_int_equal(ctx->be->host_la->gesvd(ctx, 3, 2, A, U, S, Vt), FNET_ERR_NUMERIC);
        assert_non_null(strstr(fnet_ctx_last_error(ctx), "gesvd: A has a non-finite entry at [4]"));
        A[4] = INFINITY;
        assert_int_equal(ctx->be->host_la->qr(ctx, 2, 3, A, Q, R), FNET_ERR_NUMERIC);
        assert_non_null(strstr(fnet_ctx_last_error(ctx), "qr: A has a non-finite entry at [4]"));
        A[4] = 5;
        assert_int_equal(ctx->be->host_la->gesvd(ctx, 0, 2, A, U, S, Vt), FNET_ERR_INVALID_ARG);
        assert_int_equal(ctx->be->host_la->qr(ctx, 2, -1, A, Q, R), FNET_ERR_INVALID_ARG);
        assert_non_null(strstr(fnet_ctx_last_error(ctx), "qr: shape (2, -1) out of range"));
        fnet_ctx_free(ctx);
    }
}

static void test_lapack_ops_report_out_of_memory_at_every_allocation(void **state)
{
    const struct mat_case c = {24, 17, 0};
    for (size_t b = 0; b < 2; b++) {
        fnet_ctx *ctx;
        fnet_assert_ok(NULL, ctx_creators[b](&ctx));
        float *A = make_matrix(&c, 7);
        float U[24 * 17], S[17], Vt[17 * 17], Q[24 * 17], R[17 * 17];
        for (int op = 0; op < 2; op++) {
            long k = 1;
            fnet_status st;
            for (;; k++) {
                fnet_debug_fail_alloc(k);
                st = op == 0 ? ctx->be->host_la->gesvd(ctx, c.m, c.n, A, U, S, Vt)
                             : ctx->be->host_la->qr(ctx, c.m, c.n, A, Q, R);
                fnet_debug_fail_alloc(0);
                if (st == FNET_OK)
                    break;
                assert_int_equal(st, FNET_ERR_OUT_OF_MEMORY);
                assert_non_null(strstr(fnet_ctx_last_error(ctx), op == 0 ? "gesvd" : "qr"));
                assert_true(k < 100);
            }
            assert_true(k > 1); // at least one allocation was failed and reported
            double na = fnet_test_fro(c.m * c.n, A);
            if (op == 0)
                assert_true(fnet_test_recon_error(c.m, c.n, 17, U, S, Vt, A) <= RECON_RTOL * na);
            else
                assert_true(fnet_test_recon_error(c.m, c.n, 17, Q, NULL, R, A) <= RECON_RTOL * na);
        }
        test_free(A);
        fnet_ctx_free(ctx);
    }
}

static void test_lapack_info_converts_to_status(void **state)
{
    fnet_ctx *ctx;
    fnet_assert_ok(NULL, fnet_ctx_create_cpu(&ctx));
    assert_int_equal(fnet_cpu_lapack_status(ctx, "sgesdd", 0), FNET_OK);
    assert_int_equal(fnet_cpu_lapack_status(ctx, "sgesdd", -3), FNET_ERR_INTERNAL);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "sgesdd: argument 3 had an illegal value"));
    assert_int_equal(fnet_cpu_lapack_status(ctx, "sgesvd", 2), FNET_ERR_NUMERIC);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "sgesvd: did not converge (info 2)"));
    assert_int_equal(fnet_cpu_lapack_status(ctx, "sgelqf", -1010), FNET_ERR_OUT_OF_MEMORY);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "cpu_lapack.c:"));
    fnet_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gesvd_reconstructs_with_orthonormal_factors_on_both_backends),
        cmocka_unit_test(test_qr_reconstructs_with_orthonormal_q_on_both_backends),
        cmocka_unit_test(test_lapack_ops_reject_non_finite_and_empty_input),
        cmocka_unit_test(test_lapack_ops_report_out_of_memory_at_every_allocation),
        cmocka_unit_test(test_lapack_info_converts_to_status),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
