/* packed: block-format weight matrices rearranged once into the layouts
 * the kernels read (quant_impl.h): unpacked to 8-bit values for the
 * matrix-matrix kernels, or their own blocks interleaved for the one-row
 * ones; and the cache that keeps both.
 *
 * Why a cache keyed by data pointer: weights are shared by pointer along a
 * layer path and live in the model's mapping, so the pointer names a matrix
 * for as long as the model is open. A pointer can be reused after a free,
 * so each entry also keeps samples of the bytes it was made from and is
 * rebuilt when they differ; quant_release drops the entries of memory about
 * to be unmapped. */
#include "quant/kquants.h"
#include "quant/legacy.h"
#include "quant/quant_impl.h"
#include "base/pool.h"
#include "base/util.h"

#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* A block's words in its interleaved layout (quant_impl.h). */
typedef void (*block_words_fn)(const uint8_t *blk, uint32_t *words);

static uint32_t half_word(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }

/* qh rearranged for the words of qs: bit 8k+t from bit 4t+k, bit 8k+4+t
 * from bit 16+4t+k. */
static uint32_t fifth_bit_word(const uint8_t *qh_bytes) {
    uint32_t qh, out = 0;
    memcpy(&qh, qh_bytes, sizeof qh);
    for (int t = 0; t < 4; t++)
        for (int k = 0; k < 4; k++) {
            out |= (qh >> (4 * t + k) & 1u) << (8 * k + t);
            out |= (qh >> (16 + 4 * t + k) & 1u) << (8 * k + 4 + t);
        }
    return out;
}

static void words_q4_0(const uint8_t *b, uint32_t *w) {
    w[0] = half_word(b);
    memcpy(w + 1, b + offsetof(block_q4_0, qs), QK_LEGACY / 2);
}
static void words_q4_1(const uint8_t *b, uint32_t *w) { memcpy(w, b, sizeof(block_q4_1)); }
static void words_q5_0(const uint8_t *b, uint32_t *w) {
    w[0] = half_word(b);
    w[1] = fifth_bit_word(b + offsetof(block_q5_0, qh));
    memcpy(w + 2, b + offsetof(block_q5_0, qs), QK_LEGACY / 2);
}
static void words_q5_1(const uint8_t *b, uint32_t *w) {
    memcpy(w, b, 4);
    w[1] = fifth_bit_word(b + offsetof(block_q5_1, qh));
    memcpy(w + 2, b + offsetof(block_q5_1, qs), QK_LEGACY / 2);
}
static void words_q4_K(const uint8_t *b, uint32_t *w) { memcpy(w, b, sizeof(block_q4_K)); }
/* In the order the kernel reads them, so that a group is one forward
 * stream: scales, d, then per half n and t < 8 the two words of low
 * nibbles and the word of high parts that make 16 values. */
static void words_q6_K(const uint8_t *b, uint32_t *w) {
    memcpy(w, b + offsetof(block_q6_K, scales), QK_K / 16);
    w[4] = half_word(b + offsetof(block_q6_K, d));
    for (int n = 0; n < 2; n++)
        for (int t = 0; t < 8; t++) {
            uint32_t *o = w + 5 + 24 * n + 3 * t;
            memcpy(o, b + offsetof(block_q6_K, ql) + 64 * n + 4 * t, 4);
            memcpy(o + 1, b + offsetof(block_q6_K, ql) + 64 * n + 32 + 4 * t, 4);
            memcpy(o + 2, b + offsetof(block_q6_K, qh) + 32 * n + 4 * t, 4);
        }
}

typedef struct {
    quant_unpack_fn unpack;
    int blk_len, offset, value_bits;
    bool has_min;
    block_words_fn words; /* NULL: no interleaved layout */
    int block_words;
} pack_format;

static const pack_format *pack_format_of(uint32_t type) {
    static const pack_format formats[QT_COUNT] = {
        [QT_Q4_0] = {quant_unpack_q4_0, 32, 8, 4, false, words_q4_0, 5},
        [QT_Q4_1] = {quant_unpack_q4_1, 32, 0, 4, true, words_q4_1, 5},
        [QT_Q5_0] = {quant_unpack_q5_0, 32, 16, 5, false, words_q5_0, 6},
        [QT_Q5_1] = {quant_unpack_q5_1, 32, 0, 5, true, words_q5_1, 6},
        [QT_Q8_0] = {quant_unpack_q8_0, 32, 128, 8, false, NULL, 0},
        [QT_Q4_K] = {quant_unpack_q4_K, 32, 0, 4, true, words_q4_K, 36},
        [QT_Q5_K] = {quant_unpack_q5_K, 32, 0, 5, true, NULL, 0},
        [QT_Q6_K] = {quant_unpack_q6_K, 16, 32, 6, false, words_q6_K, 53},
    };
    return type < QT_COUNT && formats[type].unpack ? &formats[type] : NULL;
}

bool quant_block_shape_of(const quant_matrix *w, int max_bits, quant_block_shape *s) {
    const pack_format *f = pack_format_of(w->type);
    if (!f || f->value_bits > max_bits || w->n_in % f->blk_len) return false;
    *s = (quant_block_shape){
        .n_in = w->n_in,
        .n_out = w->n_out,
        .n_groups = (w->n_out + QUANT_PACK_ROWS - 1) / QUANT_PACK_ROWS,
        .blk_len = f->blk_len,
        .n_blk = w->n_in / f->blk_len,
        .offset = f->offset,
        .has_min = f->has_min,
    };
    return true;
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
    quant_block_shape sh;
    quant_block_shape_of(w, f->value_bits, &sh);
    quant_packed *p = xcalloc(1, sizeof *p);
    *p = (quant_packed){.n_in = sh.n_in, .n_out = sh.n_out, .n_groups = sh.n_groups, .blk_len = sh.blk_len,
                        .n_blk = sh.n_blk, .offset = sh.offset, .value_bits = f->value_bits, .has_min = sh.has_min};
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

typedef struct {
    const quant_matrix *w;
    const pack_format *f;
    quant_interleaved *il;
    size_t row_bytes, blk_bytes;
} interleave_job;

static void interleave_worker(void *ctx, int ith, int nth) {
    const interleave_job *j = ctx;
    const quant_interleaved *il = j->il;
    const pack_format *f = j->f;
    uint32_t *out = (uint32_t *)il->w;
    long lo, hi;
    pool_split((long)il->n_groups, ith, nth, &lo, &hi);
    for (long g = lo; g < hi; g++)
        for (int r = 0; r < QUANT_PACK_ROWS; r++) {
            int64_t o = g * QUANT_PACK_ROWS + r;
            if (o >= il->n_out) break; /* padding rows stay zero */
            const uint8_t *row = (const uint8_t *)j->w->data + (size_t)o * j->row_bytes;
            for (int64_t b = 0; b < il->n_blocks; b++) {
                const uint8_t *blk = row + (size_t)b * j->blk_bytes;
                uint32_t words[64];
                f->words(blk, words);
                uint32_t *dst = out + ((size_t)(g * il->n_blocks + b) * (size_t)il->block_words) * QUANT_PACK_ROWS + r;
                for (int k = 0; k < il->block_words; k++) dst[(size_t)k * QUANT_PACK_ROWS] = words[k];
            }
        }
}

static quant_interleaved *interleave(const quant_matrix *w, const pack_format *f, struct pool *pool) {
    quant_interleaved *il = xcalloc(1, sizeof *il);
    const quant_info *qi = quant_get_info(w->type);
    il->n_in = w->n_in;
    il->n_out = w->n_out;
    il->n_groups = (w->n_out + QUANT_PACK_ROWS - 1) / QUANT_PACK_ROWS;
    il->n_blocks = w->n_in / qi->block_size;
    il->block_words = f->block_words;
    size_t bytes = (size_t)(il->n_groups * il->n_blocks) * (size_t)f->block_words * QUANT_PACK_ROWS * 4;
    il->mem = xcalloc(1, bytes + 64);
    il->w = (const uint32_t *)(((uintptr_t)il->mem + 63) & ~(uintptr_t)63);
    interleave_job j = {w, f, il, quant_row_size(w->type, w->n_in), (size_t)qi->type_size};
    pool_run(pool, interleave_worker, &j);
    return il;
}

static void interleaved_free(quant_interleaved *il) {
    if (!il) return;
    free(il->mem);
    free(il);
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
    quant_interleaved *interleaved;
} cache_entry;

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static cache_entry *cache;
static size_t cache_len, cache_cap;
/* Open-addressing index of the entries by data pointer (slot = entry + 1,
 * 0 empty; at most half full): a mixture-of-experts model has a matrix per
 * expert, tens of thousands in a large one, and a linear search through
 * them on every product cost more than the product of a decode step. */
static size_t *index_slots, index_cap;

static size_t ptr_hash(const void *p) {
    uint64_t h = (uint64_t)(uintptr_t)p * 0x9e3779b97f4a7c15ull;
    return (size_t)(h ^ h >> 29);
}

/* Rebuilds the index for the current entries, with room for at least
 * twice as many; called with cache_lock held. */
static void index_rebuild(size_t min_cap) {
    size_t cap = 64;
    while (cap < 2 * min_cap) cap *= 2;
    free(index_slots);
    index_slots = xcalloc(cap, sizeof *index_slots);
    index_cap = cap;
    for (size_t i = 0; i < cache_len; i++) {
        size_t h = ptr_hash(cache[i].data) & (cap - 1);
        while (index_slots[h]) h = (h + 1) & (cap - 1);
        index_slots[h] = i + 1;
    }
}

/* The entry of data, or NULL; called with cache_lock held. */
static cache_entry *index_find(const void *data) {
    if (!index_cap) return NULL;
    for (size_t h = ptr_hash(data) & (index_cap - 1); index_slots[h]; h = (h + 1) & (index_cap - 1))
        if (cache[index_slots[h] - 1].data == data) return &cache[index_slots[h] - 1];
    return NULL;
}

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

static void entry_clear(cache_entry *e) {
    packed_free(e->packed);
    interleaved_free(e->interleaved);
    e->packed = NULL;
    e->interleaved = NULL;
}

/* w's entry, emptied if its bytes changed; called with cache_lock held. */
static cache_entry *cache_entry_of(const quant_matrix *w) {
    size_t bytes = quant_row_size(w->type, w->n_in) * (size_t)w->n_out;
    cache_entry *e = index_find(w->data);
    if (e && !entry_matches(e, w, bytes)) entry_clear(e);
    if (!e) {
        if (cache_len == cache_cap) {
            cache_cap = cache_cap ? 2 * cache_cap : 256;
            cache = xrealloc(cache, cache_cap * sizeof *cache);
        }
        e = &cache[cache_len++];
        e->data = w->data;
        e->packed = NULL;
        e->interleaved = NULL;
        if (2 * cache_len > index_cap) index_rebuild(cache_len);
        else {
            size_t h = ptr_hash(e->data) & (index_cap - 1);
            while (index_slots[h]) h = (h + 1) & (index_cap - 1);
            index_slots[h] = cache_len;
        }
    }
    if (!e->packed && !e->interleaved) {
        e->data = w->data;
        e->bytes = bytes;
        e->type = w->type;
        e->n_in = w->n_in;
        e->n_out = w->n_out;
        take_samples(w->data, bytes, e->sample);
    }
    return e;
}

const quant_packed *quant_packed_get(const quant_matrix *w, int max_bits, struct pool *pool) {
    const pack_format *f = pack_format_of(w->type);
    if (!f || f->value_bits > max_bits || w->n_in % f->blk_len) return NULL;
    pthread_mutex_lock(&cache_lock);
    cache_entry *e = cache_entry_of(w);
    if (!e->packed) e->packed = pack(w, f, pool);
    const quant_packed *p = e->packed;
    pthread_mutex_unlock(&cache_lock);
    return p;
}

const quant_interleaved *quant_interleaved_get(const quant_matrix *w, struct pool *pool) {
    const pack_format *f = pack_format_of(w->type);
    if (!f || !f->words || w->n_in % quant_get_info(w->type)->block_size) return NULL;
    pthread_mutex_lock(&cache_lock);
    cache_entry *e = cache_entry_of(w);
    if (!e->interleaved) e->interleaved = interleave(w, f, pool);
    const quant_interleaved *il = e->interleaved;
    pthread_mutex_unlock(&cache_lock);
    return il;
}

void quant_release(const void *data, size_t size) {
    const uint8_t *lo = data, *hi = lo + size;
    pthread_mutex_lock(&cache_lock);
    size_t kept = 0;
    for (size_t i = 0; i < cache_len; i++) {
        const uint8_t *d = cache[i].data;
        if (d >= lo && d < hi) entry_clear(&cache[i]);
        else cache[kept++] = cache[i];
    }
    cache_len = kept;
    index_rebuild(cache_len);   /* entries moved down */
    pthread_mutex_unlock(&cache_lock);
}
