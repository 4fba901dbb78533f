/* Invariants of factorizations for the tests: see linalg_check.h. */
#include "linalg_check.h"

#include <math.h>
#include <stddef.h>

double fnet_test_fro(int64_t n, const float *x)
{
    double acc = 0.0;
    for (int64_t i = 0; i < n; i++)
        acc += (double)x[i] * (double)x[i];
    return sqrt(acc);
}

double fnet_test_ortho_cols_error(int64_t rows, int64_t k, const float *X)
{
    double worst = 0.0;
    for (int64_t a = 0; a < k; a++)
        for (int64_t b = 0; b < k; b++) {
            double acc = a == b ? -1.0 : 0.0;
            for (int64_t i = 0; i < rows; i++)
                acc += (double)X[i * k + a] * (double)X[i * k + b];
            worst = fmax(worst, fabs(acc));
        }
    return worst;
}

double fnet_test_ortho_rows_error(int64_t k, int64_t cols, const float *X)
{
    double worst = 0.0;
    for (int64_t a = 0; a < k; a++)
        for (int64_t b = 0; b < k; b++) {
            double acc = a == b ? -1.0 : 0.0;
            for (int64_t j = 0; j < cols; j++)
                acc += (double)X[a * cols + j] * (double)X[b * cols + j];
            worst = fmax(worst, fabs(acc));
        }
    return worst;
}

double fnet_test_recon_error(int64_t m, int64_t n, int64_t k, const float *L, const float *S,
                             const float *Rt, const float *A)
{
    double acc = 0.0;
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double v = -(double)A[i * n + j];
            for (int64_t l = 0; l < k; l++)
                v += (double)L[i * k + l] * (S ? (double)S[l] : 1.0) * (double)Rt[l * n + j];
            acc += v * v;
        }
    return sqrt(acc);
}
