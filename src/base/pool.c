/* pool: see pool.h. Workers spin on a generation counter for up to
 * SPIN_SECONDS, then sleep on a condition variable, so back-to-back ops stay
 * cheap and an idle pool burns no CPU. The budget is time, not iterations:
 * a decode step leaves a few to a few tens of microseconds of serial work
 * between ops (norms, RoPE, sampling), and a sleeping worker costs 20-60 us
 * to wake in the VMs this runs on (measured: a pool_run after 7 us of
 * serial work took 15-68 us with a 20,000-iteration spin, 7-8 us with
 * this budget; Qwen2.5-Coder-1.5B decode put workers to sleep on 18% of
 * its ops). With more threads than CPUs a spinning thread would hold a CPU
 * that the one still working needs, so such a pool spins OVERSUBSCRIBED_SPIN
 * only. */
#include "base/pool.h"
#include "base/util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#define SPIN_SECONDS 200e-6
#define OVERSUBSCRIBED_SPIN 2e-6

struct pool {
    int n;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t cv_start, cv_done;
    atomic_uint generation;
    atomic_int pending;
    pool_fn fn;
    void *ctx;
    bool stop;
    double spin_seconds;
};

/* A wait's polls so far and when its budget ends (0: not yet read). */
typedef struct { int n; double end; } spin_until;

/* True while the spin budget lasts; the clock is read every 256 polls
 * (first after 256), so a short wait never pays for it. */
static bool spin_more(spin_until *s, double budget) {
    if (++s->n & 255) return true;
    double now = rys_now();
    if (s->end == 0) s->end = now + budget;
    return now < s->end;
}

typedef struct { pool *p; int ith; } worker_arg;

static void *worker_main(void *arg) {
    worker_arg wa = *(worker_arg *)arg;
    free(arg);
    pool *p = wa.p;
    unsigned seen = 0;
    for (;;) {
        unsigned g;
        spin_until s = {0, 0};
        while ((g = atomic_load_explicit(&p->generation, memory_order_acquire)) == seen &&
               spin_more(&s, p->spin_seconds)) {}
        if (g == seen) {
            pthread_mutex_lock(&p->mu);
            while ((g = atomic_load(&p->generation)) == seen && !p->stop) pthread_cond_wait(&p->cv_start, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        if (p->stop) return NULL;
        seen = g;
        p->fn(p->ctx, wa.ith, p->n);
        if (atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->cv_done);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

pool *pool_new(int n_threads) {
    if (n_threads < 1) n_threads = 1;
    pool *p = xcalloc(1, sizeof *p);
    p->n = n_threads;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    p->spin_seconds = cpus > 0 && n_threads > cpus ? OVERSUBSCRIBED_SPIN : SPIN_SECONDS;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv_start, NULL);
    pthread_cond_init(&p->cv_done, NULL);
    p->threads = xcalloc((size_t)n_threads, sizeof *p->threads);
    for (int i = 1; i < n_threads; i++) {
        worker_arg *wa = xmalloc(sizeof *wa);
        wa->p = p;
        wa->ith = i;
        pthread_create(&p->threads[i], NULL, worker_main, wa);
    }
    return p;
}

void pool_free(pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    atomic_fetch_add(&p->generation, 1);
    pthread_cond_broadcast(&p->cv_start);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++) pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv_start);
    pthread_cond_destroy(&p->cv_done);
    free(p->threads);
    free(p);
}

int pool_size(const pool *p) { return p ? p->n : 1; }

void pool_run(pool *p, pool_fn fn, void *ctx) {
    if (!p || p->n == 1) { fn(ctx, 0, 1); return; }
    p->fn = fn;
    p->ctx = ctx;
    atomic_store(&p->pending, p->n - 1);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
    pthread_cond_broadcast(&p->cv_start);
    pthread_mutex_unlock(&p->mu);
    fn(ctx, 0, p->n);
    spin_until s = {0, 0};
    while (atomic_load_explicit(&p->pending, memory_order_acquire) > 0 && spin_more(&s, p->spin_seconds)) {}
    if (atomic_load(&p->pending) > 0) {
        pthread_mutex_lock(&p->mu);
        while (atomic_load(&p->pending) > 0) pthread_cond_wait(&p->cv_done, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
}
