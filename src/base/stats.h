/* stats: rank statistics shared by the layers that compare two orderings
 * (the surrogate's holdout, the pre-screen against a measured scan). */
#ifndef RYS_STATS_H
#define RYS_STATS_H

#include <stdbool.h>

/* idx[0..n) = 0..n-1 sorted by v, ascending or descending, ties by index. */
void stat_order(const double *v, int n, bool descending, int *idx);
/* Ranks of v[0..n) into r, 1-based, ties given the average of their ranks. */
void stat_ranks(const double *v, int n, double *r);
/* Spearman's rho: Pearson's correlation of the average ranks; NAN when n < 2
 * or either side is constant. */
double stat_spearman(const double *a, const double *b, int n);
/* Mean absolute difference of a and b (0 for n = 0). */
double stat_mae(const double *a, const double *b, int n);

#endif
