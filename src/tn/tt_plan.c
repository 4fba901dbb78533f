/* The TT planner: balanced modes, the cost model and the mode order (docs/tt.md, "Cost model").
 * The model counts multiply-adds and the bytes the sweep moves; the constants weighing them were
 * measured with fnet-bench on the 2-core AMD EPYC machine named in the README. */
#include "tn/tt_plan.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

// Skinny GEMMs of the sweep (one dimension a rank) run at about half the rate of a large square
// GEMM; a float moved by a transpose or a low-intensity pass costs about two multiply-adds.
#define SWEEP_GEMM_SLOWDOWN 2.0
#define COST_PER_FLOAT 2.0

int fnet_tt_prime_count(int64_t n)
{
    int c = 0;
    for (int64_t p = 2; p * p <= n; p++)
        while (n % p == 0) {
            n /= p;
            c++;
        }
    return c + (n > 1);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

bool fnet_tt_balanced_modes(int64_t n, int d, int64_t *modes)
{
    int64_t primes[64];
    int np = 0;
    for (int64_t p = 2; p * p <= n; p++)
        while (n % p == 0 && np < 64) {
            primes[np++] = p;
            n /= p;
        }
    if (n > 1 && np < 64)
        primes[np++] = n;
    if (np < d)
        return false;
    for (int k = 0; k < d; k++)
        modes[k] = 1;
    // largest prime first into the currently smallest factor (LPT scheduling)
    for (int i = np - 1; i >= 0; i--) {
        int best = 0;
        for (int k = 1; k < d; k++)
            if (modes[k] < modes[best])
                best = k;
        modes[best] *= primes[i];
    }
    qsort(modes, (size_t)d, sizeof(int64_t), cmp_i64);
    return true;
}

// Step k of the sweep: rows a = B·Π_{l>k} m_l·Π_{l<k} n_l, c = n_k·r_{k+1}; forward multiply-adds
// a·c·m_k·r_k; input state a·c floats, output a·m_k·r_k floats. A ring (r_0 = r_d = R) carries
// α in the rows of every step but the first (k = d-1), whose output has R·m·r columns; its last
// step runs R GEMMs of a/R rows (fnet_tt_step_rows, _cols and _out in tt_sweep.c).
double fnet_tt_cost_sweep(const struct fnet_tt_shape *s, int64_t B, double *fwd, double *bwd)
{
    double M = (double)fnet_tt_rows(s), N = (double)fnet_tt_cols(s), R = (double)s->r[0];
    double macs = 0.0, floats = 0.0;
    for (int k = 0; k < s->d; k++) {
        double m_gt = 1.0, n_lt = 1.0;
        for (int l = k + 1; l < s->d; l++)
            m_gt *= (double)s->m[l];
        for (int l = 0; l < k; l++)
            n_lt *= (double)s->n[l];
        bool last = k == s->d - 1;
        double a = (double)B * m_gt * n_lt * (last ? 1.0 : R);
        double c = (double)s->n[k] * (last ? 1.0 : (double)s->r[k + 1]);
        double o = k == 0 ? (double)s->m[0] : (double)(s->m[k] * s->r[k]) * (last ? R : 1.0);
        macs += a * c * o;
        floats += a * c + (k == 0 && !last ? a / R : a) * o;
    }
    if (fwd)
        *fwd = 2.0 * macs;
    if (bwd)
        *bwd = 4.0 * macs; // core gradients and the input gradient, each as many as forward
    // forward: the GEMMs, the states they read and write, one (M, B) transpose; backward: twice
    // the GEMMs, the input gradient's accumulation passes over its output per output mode, and
    // the transpose of dy.
    double t_fwd = macs * SWEEP_GEMM_SLOWDOWN + COST_PER_FLOAT * (floats + 2.0 * M * (double)B);
    double t_bwd = 2.0 * macs * SWEEP_GEMM_SLOWDOWN +
                   COST_PER_FLOAT * (3.0 * floats + 2.0 * M * (double)B);
    (void)N;
    return t_fwd + t_bwd;
}

// Next permutation of v (n) in lexicographic order; false after the last one.
static bool next_permutation(int64_t *v, int n)
{
    int i = n - 2;
    while (i >= 0 && v[i] >= v[i + 1])
        i--;
    if (i < 0)
        return false;
    int j = n - 1;
    while (v[j] <= v[i])
        j--;
    int64_t t = v[i];
    v[i] = v[j];
    v[j] = t;
    for (int a = i + 1, b = n - 1; a < b; a++, b--) {
        t = v[a];
        v[a] = v[b];
        v[b] = t;
    }
    return true;
}

void fnet_tt_uniform_ranks(struct fnet_tt_shape *s, int64_t R)
{
    // a ring keeps its ring rank r_0 = r_d; anything else (a TT, a zeroed shape) gets 1
    s->r[0] = s->r[s->d] = s->r[0] > 1 ? s->r[0] : 1;
    for (int k = 1; k < s->d; k++) {
        double left = 1.0, right = 1.0; // double: products of large modes overflow int64
        for (int l = 0; l < k; l++)
            left *= (double)(s->m[l] * s->n[l]);
        for (int l = k; l < s->d; l++)
            right *= (double)(s->m[l] * s->n[l]);
        // a ring cut at bonds 0 and k carries r_0·r_k: the bound is shared with the ring rank
        double bound = floor((left < right ? left : right) / (double)s->r[0]);
        bound = bound < 1.0 ? 1.0 : bound;
        s->r[k] = (double)R < bound ? R : (int64_t)bound;
    }
}

// Whether a ring's rank r_0 leaves room at every bond: r_0·r_k <= min(Π_{l<k} m_l n_l, Π_{l>=k}
// m_l n_l). Always true for a train.
static bool ring_fits(const struct fnet_tt_shape *s)
{
    for (int k = 1; k < s->d && s->r[0] > 1; k++) {
        double left = 1.0, right = 1.0;
        for (int l = 0; l < s->d; l++)
            *(l < k ? &left : &right) *= (double)(s->m[l] * s->n[l]);
        if ((double)s->r[0] * (double)s->r[k] > (left < right ? left : right))
            return false;
    }
    return true;
}

void fnet_tt_order_modes(struct fnet_tt_shape *s, int64_t B, int64_t R)
{
    int d = s->d;
    int64_t m[FNET_TT_MAX_D], n[FNET_TT_MAX_D];
    memcpy(m, s->m, sizeof(int64_t) * (size_t)d);
    memcpy(n, s->n, sizeof(int64_t) * (size_t)d);
    qsort(m, (size_t)d, sizeof(int64_t), cmp_i64);
    qsort(n, (size_t)d, sizeof(int64_t), cmp_i64);
    if (d > 5) {
        // inputs ascending, outputs descending
        for (int k = 0; k < d; k++) {
            s->n[k] = n[k];
            s->m[k] = m[d - 1 - k];
        }
        if (R > 0)
            fnet_tt_uniform_ranks(s, R);
        return;
    }
    struct fnet_tt_shape best = *s, t = *s;
    double best_cost = -1.0;
    bool best_fits = false; // a ring prefers the orders where its rank fits every bond
    int64_t pm[FNET_TT_MAX_D];
    memcpy(pm, m, sizeof(pm));
    do {
        int64_t pn[FNET_TT_MAX_D];
        memcpy(pn, n, sizeof(pn));
        do {
            memcpy(t.m, pm, sizeof(int64_t) * (size_t)d);
            memcpy(t.n, pn, sizeof(int64_t) * (size_t)d);
            if (R > 0)
                fnet_tt_uniform_ranks(&t, R);
            double c = fnet_tt_cost_sweep(&t, B, NULL, NULL);
            bool fits = ring_fits(&t);
            if (best_cost < 0.0 || (fits && !best_fits) || (fits == best_fits && c < best_cost)) {
                best_cost = c;
                best = t;
                best_fits = fits;
            }
        } while (next_permutation(pn, d));
    } while (next_permutation(pm, d));
    *s = best;
}
