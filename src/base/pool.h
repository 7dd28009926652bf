/* pool: a fixed set of worker threads that run one job at a time.
 *
 * Why not OpenMP or a thread per op: a forward pass issues thousands of small
 * parallel ops per second; waking parked workers through one generation
 * counter costs microseconds, creating threads costs tens of them. */
#ifndef RYS_POOL_H
#define RYS_POOL_H

typedef struct pool pool;
typedef void (*pool_fn)(void *ctx, int ith, int nth);

/* n_threads >= 1; the calling thread is worker 0. */
pool *pool_new(int n_threads);
void pool_free(pool *p);
int pool_size(const pool *p);
/* Run fn(ctx, ith, nth) on every worker; returns when all have finished.
 * p may be NULL: then fn(ctx, 0, 1) runs on the caller. */
void pool_run(pool *p, pool_fn fn, void *ctx);

/* Split [0,n) into nth nearly equal parts; part ith is [*lo,*hi). */
static inline void pool_split(long n, int ith, int nth, long *lo, long *hi) {
    long q = n / nth, r = n % nth;
    *lo = ith * q + (ith < r ? ith : r);
    *hi = *lo + q + (ith < r ? 1 : 0);
}

#endif
