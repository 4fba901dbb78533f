/* The TT contraction planner: balanced mode factorizations, the cost model of each way to
 * contract a TT layer (docs/tt.md, "Cost model"), and the mode order it prefers. */
#ifndef FNET_TN_TT_PLAN_H
#define FNET_TN_TT_PLAN_H

#include "tn/tt.h"

/* Split n into d factors >= 2 as equal as possible (largest primes first into the smallest
 * factor), written in ascending order. Returns false when n has fewer than d prime factors. */
bool fnet_tt_balanced_modes(int64_t n, int d, int64_t *modes);
/* Number of prime factors of n, with multiplicity. */
int fnet_tt_prime_count(int64_t n);

/* Estimated time, in units of one GEMM multiply-add at full speed, of one forward plus backward
 * sweep at batch B: its GEMMs, the states they move, the swaps and transposes. The flop counts
 * (2 per multiply-add) of each pass go to *fwd and *bwd when not NULL. */
double fnet_tt_cost_sweep(const struct fnet_tt_shape *s, int64_t B, double *fwd, double *bwd);

/* Set every inner rank of s to R capped by its bond's bound min(Π_{l<k} m_l n_l, Π_{l>=k} m_l n_l)
 * (a uniform rank is a maximum). The boundary ranks stay a ring's r_0 = r_d when r_0 > 1, else 1. */
void fnet_tt_uniform_ranks(struct fnet_tt_shape *s, int64_t R);

/* Reorder s->m and s->n (each a permutation of itself) to the order whose sweep costs least at
 * batch B; R > 0 re-derives uniform ranks for each order, R = 0 keeps s->r. Exhaustive for
 * d <= 5, otherwise n ascending and m descending (which the cost model favours: docs/tt.md). */
void fnet_tt_order_modes(struct fnet_tt_shape *s, int64_t B, int64_t R);

#endif
