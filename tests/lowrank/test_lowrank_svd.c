/* fnet_lowrank_svd (src/lowrank/lowrank_svd.c) on the reference and CPU host linear algebra:
 * Eckart–Young errors against an independent SVD, the balanced split UᵀU = VVᵀ = Σ, the energy
 * cut on matrices of known spectrum, the randomized SVD against the full one on 2000×1500
 * matrices (errors, determinism, times printed), exact statuses and messages on bad input, and
 * out-of-memory injection at every allocation. Errors are measured in double (linalg_check.h). */
#include "test_util.h"
#include "linalg_check.h"
#include "core/backend.h"
#include "lowrank/lowrank_svd.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

// ‖A − U·V‖_F² against Σ_{i>=r} σ_i², relative (Eckart–Young, the tolerance)
#define TAIL_RTOL 1e-4
// a full-rank cut reconstructs A to float rounding, relative to ‖A‖_F
#define RECON_RTOL 1e-5
// UᵀU and VVᵀ against diag(σ), relative to σ_1
#define SPLIT_ATOL 2e-5
// randomized rank-r error against the full SVD's, relative; exact-rank reconstruction, relative
#define RAND_RTOL 1e-3
#define EXACT_RTOL 1e-4

struct la_case {
    fnet_ctx *ctx; // the ctx the errors go to
    const struct fnet_host_la *la;
};

// [0]: the reference's host_la (reference ctx), [1]: the test ctx's (the CPU backend by default).
// Returns how many differ: 1 when the test ctx's is the reference's too (guarded, reference).
static int make_cases(struct la_case c[2])
{
    fnet_assert_ok(NULL, fnet_ctx_create_reference(&c[0].ctx));
    c[0].la = c[0].ctx->be->host_la;
    c[1].ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    c[1].la = c[1].ctx->be->host_la;
    return c[1].la == c[0].la ? 1 : 2;
}

static void free_cases(struct la_case c[2])
{
    fnet_ctx_free(c[1].ctx);
    fnet_ctx_free(c[0].ctx);
}

static float *alloc_f(int64_t n)
{
    return test_malloc((size_t)n * sizeof(float));
}

static void fill_normal(float *x, int64_t n, uint64_t seed)
{
    fnet_rng rng;
    fnet_rng_seed(&rng, seed);
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)fnet_rng_normal(&rng);
}

// A (m, n) = P·diag(s)·Qᵀ with P (m, c), Q (n, c) the orthonormal factors of the QR of Gaussian
// matrices (ctx's host_la): singular values s (c), descending, the rest zero
static float *spectrum_matrix(fnet_ctx *ctx, int64_t m, int64_t n, int64_t c, const double *s,
                              uint64_t seed)
{
    const struct fnet_host_la *la = ctx->be->host_la;
    float *G = alloc_f((m > n ? m : n) * c), *R = alloc_f(c * c);
    float *P = alloc_f(m * c), *Q = alloc_f(n * c), *A = alloc_f(m * n);
    fill_normal(G, m * c, seed);
    fnet_assert_ok(ctx, la->qr(ctx, m, c, G, P, R));
    fill_normal(G, n * c, seed + 1);
    fnet_assert_ok(ctx, la->qr(ctx, n, c, G, Q, R));
    for (int64_t i = 0; i < m; i++)
        for (int64_t a = 0; a < c; a++)
            P[i * c + a] = (float)((double)P[i * c + a] * s[a]);
    la->sgemm(ctx, false, true, m, n, c, 1.0f, P, c, Q, c, 0.0f, A, n);
    test_free(Q);
    test_free(P);
    test_free(R);
    test_free(G);
    return A;
}

// ‖A − U·V‖_F² in double
static double err2(int64_t m, int64_t n, int64_t r, const float *U, const float *V, const float *A)
{
    double e = fnet_test_recon_error(m, n, r, U, NULL, V, A);
    return e * e;
}

// σ (min(m, n)) of A by the reference's Jacobi SVD in double: independent of the code under test
static float *ref_singular_values(fnet_ctx *ref, int64_t m, int64_t n, const float *A)
{
    int64_t k = m < n ? m : n;
    float *U = alloc_f(m * k), *S = alloc_f(k), *Vt = alloc_f(k * n);
    fnet_assert_ok(ref, ref->be->host_la->gesvd(ref, m, n, A, U, S, Vt));
    test_free(Vt);
    test_free(U);
    return S;
}

static void test_full_svd_error_is_the_eckart_young_tail_on_both_host_la(void **state)
{
    struct la_case c[2];
    int nc = make_cases(c);
    const int64_t m = 60, n = 40, ranks[] = {1, 5, 17, 40};
    float *A = alloc_f(m * n);
    fill_normal(A, m * n, 11);
    float *S = ref_singular_values(c[0].ctx, m, n, A);
    double nA2 = 0.0;
    for (int64_t i = 0; i < m * n; i++)
        nA2 += (double)A[i] * (double)A[i];
    for (int b = 0; b < nc; b++)
        for (size_t t = 0; t < sizeof(ranks) / sizeof(ranks[0]); t++) {
            int64_t rk = ranks[t], r = -1;
            float *U, *V;
            struct fnet_lowrank_cut cut = {.max_rank = rk, .energy = 0.0};
            fnet_assert_ok(c[b].ctx, fnet_lowrank_svd(c[b].ctx, c[b].la, A, m, n, &cut, 0, 1, &r,
                                                      &U, &V));
            assert_int_equal(r, rk);
            double tail = 0.0;
            for (int64_t i = rk; i < n; i++)
                tail += (double)S[i] * (double)S[i];
            double e = err2(m, n, r, U, V, A);
            printf("# %s host_la, 60x40 rank %2lld: |A - UV|^2 = %.9g, tail = %.9g, rel %.2e\n",
                   c[b].la->name, (long long)rk, e, tail, tail > 0 ? fabs(e - tail) / tail : 0.0);
            if (rk < n)
                fnet_assert_close(e, tail, TAIL_RTOL, 0.0);
            else // r = min(m, n): A itself
                assert_true(sqrt(e) <= RECON_RTOL * sqrt(nA2));
            fnet_free(V);
            fnet_free(U);
        }
    test_free(S);
    test_free(A);
    free_cases(c);
}

// max |XᵀX − diag(d)| for X (rows, k) (cols true), or |X·Xᵀ − diag(d)| for X (k, rows)
static double gram_diag_error(int64_t rows, int64_t k, const float *X, bool cols, const double *d)
{
    double worst = 0.0;
    for (int64_t a = 0; a < k; a++)
        for (int64_t b = 0; b < k; b++) {
            double acc = a == b ? -d[a] : 0.0;
            for (int64_t i = 0; i < rows; i++)
                acc += cols ? (double)X[i * k + a] * (double)X[i * k + b]
                            : (double)X[a * rows + i] * (double)X[b * rows + i];
            worst = fmax(worst, fabs(acc));
        }
    return worst;
}

static void test_split_is_balanced_utu_equals_vvt_equals_sigma(void **state)
{
    struct la_case c[2];
    int nc = make_cases(c);
    const int64_t m = 60, n = 40, rk = 17;
    float *A = alloc_f(m * n);
    fill_normal(A, m * n, 12);
    float *S = ref_singular_values(c[0].ctx, m, n, A);
    double sig[40];
    for (int64_t i = 0; i < n; i++)
        sig[i] = S[i];
    for (int b = 0; b < nc; b++)
        for (int rnd = 0; rnd < 2; rnd++) {
            int64_t r;
            float *U, *V;
            struct fnet_lowrank_cut cut = {.max_rank = rk, .energy = 0.0};
            fnet_assert_ok(c[b].ctx, fnet_lowrank_svd(c[b].ctx, c[b].la, A, m, n, &cut, rnd, 5,
                                                      &r, &U, &V));
            assert_int_equal(r, rk);
            double d[40];
            if (rnd == 0) { // the full SVD: exactly the singular values of A
                for (int64_t i = 0; i < r; i++)
                    d[i] = sig[i];
            } else { // the randomized one: its own σ (of QᵀA), read off VVᵀ's diagonal
                for (int64_t i = 0; i < r; i++) {
                    d[i] = 0.0;
                    for (int64_t j = 0; j < n; j++)
                        d[i] += (double)V[i * n + j] * (double)V[i * n + j];
                    assert_true(d[i] <= sig[i] * (1.0 + 1e-5)); // σ_i(QᵀA) <= σ_i(A)
                    if (i > 0)
                        assert_true(d[i] <= d[i - 1] * (1.0 + 1e-6));
                }
            }
            double eu = gram_diag_error(m, r, U, true, d), ev = gram_diag_error(n, r, V, false, d);
            printf("# %s host_la, %s: max|U'U - S| = %.2e, max|VV' - S| = %.2e (sigma_1 %.3f)\n",
                   c[b].la->name, rnd ? "randomized" : "full", eu, ev, sig[0]);
            assert_true(eu <= SPLIT_ATOL * sig[0]);
            assert_true(ev <= SPLIT_ATOL * sig[0]);
            fnet_free(V);
            fnet_free(U);
        }
    test_free(S);
    test_free(A);
    free_cases(c);
}

// The cut rule on exact values: the smallest r >= 1 with Σ_{i<r} s_i² >= e·Σ s², then the cap.
static int64_t expected_rank(const double *s, int64_t k, double e, int64_t max_rank)
{
    if (e == 0.0)
        return max_rank;
    double total = 0.0, acc = 0.0;
    for (int64_t i = 0; i < k; i++)
        total += s[i] * s[i];
    int64_t r = 0;
    while (r < k) {
        acc += s[r] * s[r];
        r++;
        if (acc >= e * total)
            break;
    }
    return r < max_rank ? r : max_rank;
}

static void test_energy_cut_keeps_the_smallest_rank_holding_the_energy(void **state)
{
    struct la_case c[2];
    int nc = make_cases(c);
    const int64_t m = 30, n = 20;
    // six nonzero singular values; the cumulative energy fractions are .7502 .9377 .9846 .9963
    // .99927 1, so each energy below falls well inside one step
    double s[20] = {8, 4, 2, 1, 0.5, 0.25};
    float *A = spectrum_matrix(c[1].ctx, m, n, 20, s, 21);
    const struct {
        double energy;
        int64_t max_rank, r;
    } cases[] = {
        {0.5, 20, 1},   {0.8, 20, 2},  {0.95, 20, 3}, {0.99, 20, 4},  {0.999, 20, 5},
        {0.9995, 20, 6}, {1.0, 20, 6}, {1.0, 10, 6},  {0.99, 3, 3},   {0.0, 7, 7},
        {1e-9, 20, 1},
    };
    for (size_t t = 0; t < sizeof(cases) / sizeof(cases[0]); t++)
        assert_int_equal(expected_rank(s, 20, cases[t].energy, cases[t].max_rank), cases[t].r);
    for (int b = 0; b < nc; b++)
        for (int rnd = 0; rnd < 2; rnd++)
            for (size_t t = 0; t < sizeof(cases) / sizeof(cases[0]); t++) {
                int64_t r;
                float *U, *V;
                struct fnet_lowrank_cut cut = {cases[t].max_rank, cases[t].energy};
                fnet_assert_ok(c[b].ctx, fnet_lowrank_svd(c[b].ctx, c[b].la, A, m, n, &cut, rnd,
                                                          3, &r, &U, &V));
                if (r != cases[t].r)
                    fail_msg("%s host_la, %s, energy %g, max_rank %lld: r = %lld, expected %lld",
                             c[b].la->name, rnd ? "randomized" : "full", cases[t].energy,
                             (long long)cases[t].max_rank, (long long)r, (long long)cases[t].r);
                double tail = 0.0;
                for (int64_t i = r; i < 20; i++)
                    tail += s[i] * s[i];
                double e = err2(m, n, r, U, V, A);
                if (tail > 0.0)
                    fnet_assert_close(e, tail, TAIL_RTOL, 0.0);
                else // every nonzero one kept: A to float rounding (‖A‖_F² = 85.3125)
                    assert_true(sqrt(e) <= RECON_RTOL * sqrt(85.3125));
                fnet_free(V);
                fnet_free(U);
            }
    test_free(A);
    free_cases(c);
}

// One run timed: the factors, their rank-r error ‖A − UV‖_F², seconds
struct run {
    int64_t r;
    float *U, *V;
    double e, seconds;
};

static struct run timed_svd(const struct la_case *c, const float *A, int64_t m, int64_t n,
                            int64_t rk, int randomized, uint64_t seed)
{
    struct run o = {0};
    struct fnet_lowrank_cut cut = {.max_rank = rk, .energy = 0.0};
    double t0 = fnet_now();
    fnet_assert_ok(c->ctx, fnet_lowrank_svd(c->ctx, c->la, A, m, n, &cut, randomized, seed, &o.r,
                                            &o.U, &o.V));
    o.seconds = fnet_now() - t0;
    assert_int_equal(o.r, rk);
    o.e = err2(m, n, o.r, o.U, o.V, A);
    return o;
}

static void free_run(struct run *o)
{
    fnet_free(o->V);
    fnet_free(o->U);
}

static void test_randomized_svd_is_near_optimal_and_deterministic(void **state)
{
    struct la_case c[2];
    int nc = make_cases(c);
    const int64_t m = 2000, n = 1500, rk = 20, C = 200;
    // σ_i = 0.8^i: below i = 200 (0.8^200 ≈ 4e-20) float A cannot tell them from 0
    double s[200], tail = 0.0, total = 0.0;
    for (int64_t i = 0; i < C; i++) {
        s[i] = pow(0.8, (double)i);
        total += s[i] * s[i];
        tail += i >= rk ? s[i] * s[i] : 0.0;
    }
    // the optimal error from LAPACK's full SVD whichever backend the test ctx is on (the
    // reference's Jacobi would take minutes on 2000×1500)
    struct la_case lapack;
    fnet_assert_ok(NULL, fnet_ctx_create_cpu(&lapack.ctx));
    lapack.la = lapack.ctx->be->host_la;
    float *A = spectrum_matrix(lapack.ctx, m, n, C, s, 31);

    struct run full = timed_svd(&lapack, A, m, n, rk, 0, 0);
    struct run rnd = timed_svd(&c[1], A, m, n, rk, 1, 42);
    struct run again = timed_svd(&c[1], A, m, n, rk, 1, 42);
    struct run other = timed_svd(&c[1], A, m, n, rk, 1, 43);
    struct run ref = nc == 2 ? timed_svd(&c[0], A, m, n, rk, 1, 42) : again;
    printf("# 2000x1500, sigma_i = 0.8^i, rank 20: exact tail %.6e (|A|^2 %.4f)\n", tail, total);
    printf("#   full (%s host_la):       %7.3f s, |A - UV|^2 = %.6e\n", lapack.la->name,
           full.seconds, full.e);
    printf("#   randomized (%s host_la): %7.3f s, |A - UV|^2 = %.6e, rel to full %.2e\n",
           c[1].la->name, rnd.seconds, rnd.e, fabs(rnd.e - full.e) / full.e);
    printf("#   randomized, seed 43:      %7.3f s, |A - UV|^2 = %.6e, rel to full %.2e\n",
           other.seconds, other.e, fabs(other.e - full.e) / full.e);
    printf("#   randomized (%s host_la): %7.3f s, |A - UV|^2 = %.6e, rel to full %.2e\n",
           c[0].la->name, ref.seconds, ref.e, fabs(ref.e - full.e) / full.e);
    fnet_assert_close(full.e, tail, TAIL_RTOL, 0.0);
    fnet_assert_close(rnd.e, full.e, RAND_RTOL, 0.0);
    fnet_assert_close(other.e, full.e, RAND_RTOL, 0.0);
    fnet_assert_close(ref.e, full.e, RAND_RTOL, 0.0);
    // the same seed: the same bits; another seed: another Ω, so other factors
    assert_memory_equal(rnd.U, again.U, (size_t)(m * rk) * sizeof(float));
    assert_memory_equal(rnd.V, again.V, (size_t)(rk * n) * sizeof(float));
    assert_memory_not_equal(rnd.U, other.U, (size_t)(m * rk) * sizeof(float));
    if (nc == 2)
        free_run(&ref);
    free_run(&other);
    free_run(&again);
    free_run(&rnd);
    free_run(&full);
    test_free(A);

    // exact rank 20 (σ_i = 0.9^i, i < 20): the randomized rank-20 factors give A back
    for (int64_t i = 0; i < rk; i++)
        s[i] = pow(0.9, (double)i);
    A = spectrum_matrix(lapack.ctx, m, n, rk, s, 32);
    double nA = fnet_test_fro(m * n, A);
    for (int b = nc - 1; b >= 0; b--) {
        struct run o = timed_svd(&c[b], A, m, n, rk, 1, 7);
        printf("# 2000x1500 of rank 20, randomized (%s host_la): %7.3f s, |A - UV|/|A| = %.2e\n",
               c[b].la->name, o.seconds, sqrt(o.e) / nA);
        assert_true(sqrt(o.e) <= EXACT_RTOL * nA);
        free_run(&o);
    }
    test_free(A);
    fnet_ctx_free(lapack.ctx);
    free_cases(c);
}

// randomized -1 picks the full SVD up to FNET_LOWRANK_FULL_SVD_MAX elements, the randomized one
// above: the same bits as the forced choice
static void test_path_is_chosen_by_size(void **state)
{
    struct la_case c[2];
    int nc = make_cases(c);
    // small: full; large with a sketch of 1 + 10 columns below half of min(m, n) = 64:
    // randomized; large with min(m, n) = 16: full again
    const int64_t sizes[3][2] = {{60, 40},
                                 {64, FNET_LOWRANK_FULL_SVD_MAX / 64 + 1},
                                 {16, FNET_LOWRANK_FULL_SVD_MAX / 16 + 1}};
    const int path[3] = {0, 1, 0};
    for (int b = 0; b < nc; b++)
        for (int big = 0; big < 3; big++) {
            int64_t m = sizes[big][0], n = sizes[big][1], r1, r2;
            float *A = alloc_f(m * n), *U1, *V1, *U2, *V2;
            fill_normal(A, m * n, 40 + (uint64_t)big);
            struct fnet_lowrank_cut cut = {.max_rank = 1, .energy = 0.0};
            fnet_assert_ok(c[b].ctx, fnet_lowrank_svd(c[b].ctx, c[b].la, A, m, n, &cut, -1, 9,
                                                      &r1, &U1, &V1));
            fnet_assert_ok(c[b].ctx, fnet_lowrank_svd(c[b].ctx, c[b].la, A, m, n, &cut,
                                                      path[big], 9, &r2, &U2, &V2));
            assert_int_equal(r1, r2);
            assert_memory_equal(U1, U2, (size_t)(m * r1) * sizeof(float));
            assert_memory_equal(V1, V2, (size_t)(r1 * n) * sizeof(float));
            fnet_free(V2);
            fnet_free(U2);
            fnet_free(V1);
            fnet_free(U1);
            test_free(A);
        }
    free_cases(c);
}

static void test_lowrank_svd_rejects_bad_arguments_with_exact_statuses(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_CPU);
    const struct fnet_host_la *la = ctx->be->host_la;
    float A[12];
    fill_normal(A, 12, 50);
    const struct fnet_lowrank_cut ok = {.max_rank = 2, .energy = 0.5};
    const struct {
        int64_t m, n, max_rank;
        double energy;
        int randomized;
        int64_t nan_at; // -1: none
        const char *msg;
    } bad[] = {
        {0, 3, 1, 0.0, 0, -1, "lowrank svd: shape (0, 3): m and n must be >= 1"},
        {4, -2, 1, 0.0, 0, -1, "lowrank svd: shape (4, -2): m and n must be >= 1"},
        {INT64_MAX / 2, 4, 1, 0.0, 0, -1, "lowrank svd: A (4611686018427387903, 4) is too large"},
        {4, 3, 0, 0.0, 0, -1, "lowrank svd: max_rank 0 outside 1..3"},
        {4, 3, 4, 0.0, 1, -1, "lowrank svd: max_rank 4 outside 1..3"},
        {40, 32, 40, 0.0, 0, -1, "lowrank svd: max_rank 40 outside 1..32"},
        {4, 3, 2, -0.25, 0, -1, "lowrank svd: energy -0.25 outside [0, 1]"},
        {4, 3, 2, 1.5, 0, -1, "lowrank svd: energy 1.5 outside [0, 1]"},
        {4, 3, 2, NAN, 0, -1, "nan outside [0, 1]"},
        {4, 3, 2, 0.5, 2, -1, "lowrank svd: randomized 2 is not -1"},
        {4, 3, 2, 0.5, 0, 7, "lowrank svd: A has a non-finite entry at (2, 1)"},
        {4, 3, 2, 0.5, 1, 11, "lowrank svd: A has a non-finite entry at (3, 2)"},
    };
    for (size_t t = 0; t < sizeof(bad) / sizeof(bad[0]); t++) {
        float B[12];
        memcpy(B, A, sizeof(B));
        if (bad[t].nan_at >= 0)
            B[bad[t].nan_at] = t % 2 ? INFINITY : NAN;
        float sentinel, *U = &sentinel, *V = &sentinel;
        int64_t r = 99;
        struct fnet_lowrank_cut cut = {bad[t].max_rank, bad[t].energy};
        assert_int_equal(fnet_lowrank_svd(ctx, la, B, bad[t].m, bad[t].n, &cut,
                                          bad[t].randomized, 1, &r, &U, &V),
                         FNET_ERR_INVALID_ARG);
        if (strstr(fnet_ctx_last_error(ctx), bad[t].msg) == NULL)
            fail_msg("case %zu: \"%s\" does not say \"%s\"", t, fnet_ctx_last_error(ctx),
                     bad[t].msg);
        assert_null(U);
        assert_null(V);
        assert_int_equal(r, 0);
    }
    // NULL arguments
    float *U, *V;
    int64_t r;
    assert_int_equal(fnet_lowrank_svd(ctx, la, NULL, 4, 3, &ok, 0, 1, &r, &U, &V),
                     FNET_ERR_INVALID_ARG);
    assert_null(U);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "lowrank svd: NULL argument"));
    assert_int_equal(fnet_lowrank_svd(ctx, la, A, 4, 3, NULL, 0, 1, &r, &U, &V),
                     FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_lowrank_svd(ctx, NULL, A, 4, 3, &ok, 0, 1, &r, &U, &V),
                     FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_lowrank_svd(NULL, la, A, 4, 3, &ok, 0, 1, &r, &U, &V),
                     FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_lowrank_svd(ctx, la, A, 4, 3, &ok, 0, 1, &r, NULL, &V),
                     FNET_ERR_INVALID_ARG);
    assert_null(V);
    fnet_ctx_free(ctx);
}

static void test_lowrank_svd_reports_out_of_memory_at_every_allocation(void **state)
{
    struct la_case c[2];
    int nc = make_cases(c);
    const int64_t m = 24, n = 17;
    float *A = alloc_f(m * n);
    fill_normal(A, m * n, 60);
    for (int b = 0; b < nc; b++)
        for (int rnd = 0; rnd < 2; rnd++) {
            struct fnet_lowrank_cut cut = {.max_rank = 5, .energy = 0.9};
            int64_t r0, r;
            float *U0, *V0, *U, *V;
            fnet_assert_ok(c[b].ctx, fnet_lowrank_svd(c[b].ctx, c[b].la, A, m, n, &cut, rnd, 4,
                                                      &r0, &U0, &V0));
            long k = 1;
            fnet_status st;
            for (;; k++) {
                fnet_debug_fail_alloc(k);
                st = fnet_lowrank_svd(c[b].ctx, c[b].la, A, m, n, &cut, rnd, 4, &r, &U, &V);
                fnet_debug_fail_alloc(0);
                if (st == FNET_OK)
                    break;
                assert_int_equal(st, FNET_ERR_OUT_OF_MEMORY);
                assert_null(U);
                assert_null(V);
                assert_true(k < 500);
            }
            printf("# %s host_la, %s: %ld allocations failed one at a time\n", c[b].la->name,
                   rnd ? "randomized" : "full", k - 1);
            assert_true(k > 1);
            // the run that succeeded is the one without injection, bit for bit
            assert_int_equal(r, r0);
            assert_memory_equal(U, U0, (size_t)(m * r) * sizeof(float));
            assert_memory_equal(V, V0, (size_t)(r * n) * sizeof(float));
            fnet_free(V);
            fnet_free(U);
            fnet_free(V0);
            fnet_free(U0);
        }
    test_free(A);
    free_cases(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_svd_error_is_the_eckart_young_tail_on_both_host_la),
        cmocka_unit_test(test_split_is_balanced_utu_equals_vvt_equals_sigma),
        cmocka_unit_test(test_energy_cut_keeps_the_smallest_rank_holding_the_energy),
        cmocka_unit_test(test_randomized_svd_is_near_optimal_and_deterministic),
        cmocka_unit_test(test_path_is_chosen_by_size),
        cmocka_unit_test(test_lowrank_svd_rejects_bad_arguments_with_exact_statuses),
        cmocka_unit_test(test_lowrank_svd_reports_out_of_memory_at_every_allocation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
