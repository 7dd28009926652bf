/* packed: block-format weight matrices unpacked once into the interleaved
 * layout the matrix-matrix kernels read (quant_impl.h), and the cache that
 * keeps them.
 *
 * Why a cache keyed by data pointer: weights are shared by pointer along a
 * layer path and live in the model's mapping, so the pointer names a matrix
 * for as long as the model is open. A pointer can be reused after a free,
 * so each entry also keeps samples of the bytes it was made from and is
 * rebuilt when they differ; quant_release drops the entries of memory about
 * to be unmapped. */
#include "quant/quant_impl.h"
#include "pool.h"
#include "util.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    quant_unpack_fn unpack;
    int blk_len, offset, value_bits;
    bool has_min;
} pack_format;

static const pack_format *pack_format_of(uint32_t type) {
    static const pack_format formats[QT_COUNT] = {
        [QT_Q4_0] = {quant_unpack_q4_0, 32, 8, 4, false},   [QT_Q4_1] = {quant_unpack_q4_1, 32, 0, 4, true},
        [QT_Q5_0] = {quant_unpack_q5_0, 32, 16, 5, false},  [QT_Q5_1] = {quant_unpack_q5_1, 32, 0, 5, true},
        [QT_Q8_0] = {quant_unpack_q8_0, 32, 128, 8, false}, [QT_Q4_K] = {quant_unpack_q4_K, 32, 0, 4, true},
        [QT_Q5_K] = {quant_unpack_q5_K, 32, 0, 5, true},    [QT_Q6_K] = {quant_unpack_q6_K, 16, 32, 6, false},
    };
    return type < QT_COUNT && formats[type].unpack ? &formats[type] : NULL;
}

typedef struct {
    const quant_matrix *w;
    const pack_format *f;
    quant_packed *p;
    size_t row_bytes;
} pack_job;

/* Each worker unpacks whole groups, a row at a time, then interleaves. */
static void pack_worker(void *ctx, int ith, int nth) {
    const pack_job *j = ctx;
    quant_packed *p = j->p;
    int64_t n_in = p->n_in, n_blk = p->n_blk, quads = p->blk_len / 4;
    uint8_t *q = xmalloc((size_t)n_in);
    float *sc = xmalloc(sizeof(float) * (size_t)n_blk), *mn = xmalloc(sizeof(float) * (size_t)n_blk);
    long lo, hi;
    pool_split((long)p->n_groups, ith, nth, &lo, &hi);
    for (long g = lo; g < hi; g++)
        for (int r = 0; r < QUANT_PACK_ROWS; r++) {
            int64_t o = g * QUANT_PACK_ROWS + r;
            if (o >= p->n_out) break; /* padding rows stay zero */
            j->f->unpack((const uint8_t *)j->w->data + (size_t)o * j->row_bytes, n_in, q, sc, mn);
            for (int64_t b = 0; b < n_blk; b++) {
                size_t gb = (size_t)(g * n_blk + b);
                p->scale[gb * QUANT_PACK_ROWS + r] = sc[b];
                p->min[gb * QUANT_PACK_ROWS + r] = mn[b];
                uint8_t *dst = p->q + gb * (size_t)quads * 64 + (size_t)r * 4;
                const uint8_t *src = q + b * p->blk_len;
                for (int64_t k = 0; k < quads; k++) memcpy(dst + k * 64, src + 4 * k, 4);
            }
        }
    free(q);
    free(sc);
    free(mn);
}

static quant_packed *pack(const quant_matrix *w, const pack_format *f, struct pool *pool) {
    quant_packed *p = xcalloc(1, sizeof *p);
    p->n_in = w->n_in;
    p->n_out = w->n_out;
    p->n_groups = (w->n_out + QUANT_PACK_ROWS - 1) / QUANT_PACK_ROWS;
    p->blk_len = f->blk_len;
    p->n_blk = w->n_in / f->blk_len;
    p->offset = f->offset;
    p->value_bits = f->value_bits;
    p->has_min = f->has_min;
    size_t n_vals = (size_t)(p->n_groups * QUANT_PACK_ROWS * w->n_in);
    size_t n_scales = (size_t)(p->n_groups * p->n_blk * QUANT_PACK_ROWS);
    /* One allocation, every array 64-byte aligned for the kernels' loads. */
    size_t q_bytes = (n_vals + 63) & ~(size_t)63, sc_bytes = (n_scales * sizeof(float) + 63) & ~(size_t)63;
    p->mem = xcalloc(1, q_bytes + 2 * sc_bytes + 64);
    uint8_t *base = (uint8_t *)(((uintptr_t)p->mem + 63) & ~(uintptr_t)63);
    p->q = base;
    p->scale = (float *)(base + q_bytes);
    p->min = (float *)(base + q_bytes + sc_bytes);
    pack_job j = {w, f, p, quant_row_size(w->type, w->n_in)};
    pool_run(pool, pack_worker, &j);
    return p;
}

static void packed_free(quant_packed *p) {
    if (!p) return;
    free(p->mem);
    free(p);
}

/* ---- the cache ------------------------------------------------------------ */

#define SAMPLE_BYTES 32
#define N_SAMPLES 4

typedef struct {
    const void *data;
    size_t bytes;
    uint32_t type;
    int64_t n_in, n_out;
    uint8_t sample[N_SAMPLES][SAMPLE_BYTES];
    quant_packed *packed;
} cache_entry;

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static cache_entry *cache;
static size_t cache_len, cache_cap;

/* Samples at the start, the end and two places between. */
static void take_samples(const uint8_t *data, size_t bytes, uint8_t out[N_SAMPLES][SAMPLE_BYTES]) {
    memset(out, 0, N_SAMPLES * SAMPLE_BYTES);
    size_t len = bytes < SAMPLE_BYTES ? bytes : SAMPLE_BYTES;
    for (int s = 0; s < N_SAMPLES; s++) memcpy(out[s], data + (bytes - len) * (size_t)s / (N_SAMPLES - 1), len);
}

static bool entry_matches(const cache_entry *e, const quant_matrix *w, size_t bytes) {
    if (e->type != w->type || e->n_in != w->n_in || e->n_out != w->n_out || e->bytes != bytes) return false;
    uint8_t now[N_SAMPLES][SAMPLE_BYTES];
    take_samples(w->data, bytes, now);
    return !memcmp(now, e->sample, sizeof now);
}

const quant_packed *quant_packed_get(const quant_matrix *w, int max_bits, struct pool *pool) {
    const pack_format *f = pack_format_of(w->type);
    if (!f || f->value_bits > max_bits || w->n_in % f->blk_len) return NULL;
    size_t bytes = quant_row_size(w->type, w->n_in) * (size_t)w->n_out;
    pthread_mutex_lock(&cache_lock);
    cache_entry *e = NULL;
    for (size_t i = 0; i < cache_len; i++)
        if (cache[i].data == w->data) {
            e = &cache[i];
            break;
        }
    if (e && !entry_matches(e, w, bytes)) {
        packed_free(e->packed);
        e->packed = NULL;
    }
    if (!e) {
        if (cache_len == cache_cap) {
            cache_cap = cache_cap ? 2 * cache_cap : 256;
            cache = xrealloc(cache, cache_cap * sizeof *cache);
        }
        e = &cache[cache_len++];
        e->packed = NULL;
    }
    if (!e->packed) {
        e->data = w->data;
        e->bytes = bytes;
        e->type = w->type;
        e->n_in = w->n_in;
        e->n_out = w->n_out;
        take_samples(w->data, bytes, e->sample);
        e->packed = pack(w, f, pool);
    }
    const quant_packed *p = e->packed;
    pthread_mutex_unlock(&cache_lock);
    return p;
}

void quant_release(const void *data, size_t size) {
    const uint8_t *lo = data, *hi = lo + size;
    pthread_mutex_lock(&cache_lock);
    size_t kept = 0;
    for (size_t i = 0; i < cache_len; i++) {
        const uint8_t *d = cache[i].data;
        if (d >= lo && d < hi) packed_free(cache[i].packed);
        else cache[kept++] = cache[i];
    }
    cache_len = kept;
    pthread_mutex_unlock(&cache_lock);
}
