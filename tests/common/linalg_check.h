/* What the tests of factorizations check instead of raw factors (their signs are free): norms,
 * orthonormality and reconstruction errors, all in double. Shared by the LAPACK-op, backend
 * conformance and TT algebra tests. */
#ifndef FNET_TEST_LINALG_CHECK_H
#define FNET_TEST_LINALG_CHECK_H

#include <stdint.h>

/* ‖x (n)‖_F */
double fnet_test_fro(int64_t n, const float *x);
/* max |XᵀX − I| over X (rows, k) row-major: how far its columns are from orthonormal */
double fnet_test_ortho_cols_error(int64_t rows, int64_t k, const float *X);
/* max |X·Xᵀ − I| over X (k, cols) row-major: how far its rows are from orthonormal */
double fnet_test_ortho_rows_error(int64_t k, int64_t cols, const float *X);
/* ‖L (m, k) · diag(S) · Rt (k, n) − A (m, n)‖_F; S NULL for the identity */
double fnet_test_recon_error(int64_t m, int64_t n, int64_t k, const float *L, const float *S,
                             const float *Rt, const float *A);

#endif
