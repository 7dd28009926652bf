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
 * to be unmapped.
 *
 * Copies on disk (quant_cache_file): building the copies of a 1.5B model
 * takes seconds at every start, so a model file's mapping may name a cache
 * file; copies found there (same layout version, offset, shape and byte
 * samples) are used from its mapping, and when the mapping is released the
 * file is written again, whole, under another name and renamed, if the run
 * made copies it lacked. Nothing read from it is trusted that was not
 * checked: a damaged or stale file only means the copies are built. */
#include "quant/kquants.h"
#include "quant/legacy.h"
#include "quant/quant_impl.h"
#include "base/pool.h"
#include "base/util.h"

#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* w's packed form without its arrays, and the bytes of its values and of
 * each of its two scale arrays (each rounded up to 64 for alignment). */
static quant_packed packed_shape(const quant_matrix *w, const pack_format *f, size_t *q_bytes, size_t *sc_bytes) {
    quant_block_shape sh;
    quant_block_shape_of(w, f->value_bits, &sh);
    quant_packed p = {.n_in = sh.n_in, .n_out = sh.n_out, .n_groups = sh.n_groups, .blk_len = sh.blk_len,
                      .n_blk = sh.n_blk, .offset = sh.offset, .value_bits = f->value_bits, .has_min = sh.has_min};
    size_t n_vals = (size_t)(p.n_groups * QUANT_PACK_ROWS * w->n_in);
    size_t n_scales = (size_t)(p.n_groups * p.n_blk * QUANT_PACK_ROWS);
    *q_bytes = (n_vals + 63) & ~(size_t)63;
    *sc_bytes = (n_scales * sizeof(float) + 63) & ~(size_t)63;
    return p;
}

/* Points p's arrays into the q_bytes + 2 sc_bytes at base (64-byte aligned). */
static void packed_place(quant_packed *p, uint8_t *base, size_t q_bytes, size_t sc_bytes) {
    p->q = base;
    p->scale = (float *)(base + q_bytes);
    p->min = (float *)(base + q_bytes + sc_bytes);
}

static quant_packed *pack(const quant_matrix *w, const pack_format *f, struct pool *pool) {
    size_t q_bytes, sc_bytes;
    quant_packed *p = xcalloc(1, sizeof *p);
    *p = packed_shape(w, f, &q_bytes, &sc_bytes);
    /* One allocation, every array 64-byte aligned for the kernels' loads. */
    p->mem = xcalloc(1, q_bytes + 2 * sc_bytes + 64);
    packed_place(p, (uint8_t *)(((uintptr_t)p->mem + 63) & ~(uintptr_t)63), q_bytes, sc_bytes);
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

/* w's interleaved form without its words, and their bytes. */
static quant_interleaved interleaved_shape(const quant_matrix *w, const pack_format *f, size_t *bytes) {
    quant_interleaved il = {.n_in = w->n_in, .n_out = w->n_out, .n_groups = (w->n_out + QUANT_PACK_ROWS - 1) / QUANT_PACK_ROWS,
                            .n_blocks = w->n_in / quant_get_info(w->type)->block_size, .block_words = f->block_words};
    *bytes = (size_t)(il.n_groups * il.n_blocks) * (size_t)f->block_words * QUANT_PACK_ROWS * 4;
    return il;
}

static quant_interleaved *interleave(const quant_matrix *w, const pack_format *f, struct pool *pool) {
    quant_interleaved *il = xcalloc(1, sizeof *il);
    const quant_info *qi = quant_get_info(w->type);
    size_t bytes;
    *il = interleaved_shape(w, f, &bytes);
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


/* ---- copies kept on disk --------------------------------------------------- */

#define DISK_MAGIC "RYSPACK1"
#define DISK_LAYOUT 2   /* bump with any change to a packed or interleaved layout or to this file's */

enum { KIND_PACKED, KIND_INTERLEAVED };

/* The file: a header, n_entries entries sorted by (src_offset, kind), then
 * each copy at its `at`, 64-byte aligned. */
typedef struct {
    char magic[8];
    uint32_t layout, n_entries;
    uint64_t source_size;
} disk_header;

typedef struct {
    uint64_t src_offset;    /* the matrix's first byte, from the start of the source mapping */
    uint32_t kind, type;
    int64_t n_in, n_out;
    uint8_t sample[N_SAMPLES][SAMPLE_BYTES];
    uint64_t at, bytes;     /* the copy in the file */
    uint64_t check;         /* copy_check of its bytes, verified before first use */
} disk_entry;

/* A fast 64-bit check of n bytes: four independent multiply-xor lanes so
 * that reading, not the multiplier's latency, sets its speed. It guards a
 * copy against a damaged disk or a torn write, not against an adversary. */
static uint64_t copy_check(const uint8_t *p, size_t n) {
    uint64_t h[4] = {0x9e3779b97f4a7c15ull ^ n, 0xc2b2ae3d27d4eb4full, 0x165667b19e3779f9ull, 0x27d4eb2f165667c5ull};
    size_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (int l = 0; l < 4; l++) {
            uint64_t w;
            memcpy(&w, p + i + 8 * l, 8);
            h[l] = (h[l] ^ w) * 0xff51afd7ed558ccdull;
            h[l] ^= h[l] >> 29;
        }
    uint64_t r = h[0] ^ (h[1] * 3) ^ (h[2] * 5) ^ (h[3] * 7);
    for (; i < n; i++) r = (r ^ p[i]) * 0x100000001b3ull;
    return r;
}

typedef struct {
    const uint8_t *base;
    size_t size;
    char *path;
    const uint8_t *map;     /* the file as read when registered, or NULL */
    size_t map_size;
    const disk_entry *e;    /* its entries (in map) */
    uint32_t n;
    bool dirty;             /* copies were made that the file lacks */
    size_t loaded, made;
} disk_cache;

static disk_cache *disks;
static size_t n_disks;

static int cmp_disk_entry(const void *a, const void *b) {
    const disk_entry *x = a, *y = b;
    if (x->src_offset != y->src_offset) return x->src_offset < y->src_offset ? -1 : 1;
    return (x->kind > y->kind) - (x->kind < y->kind);
}

/* The registered range holding data, or NULL; with cache_lock held. */
static disk_cache *disk_of(const void *data) {
    const uint8_t *d = data;
    for (size_t k = 0; k < n_disks; k++)
        if (d >= disks[k].base && d < disks[k].base + disks[k].size) return &disks[k];
    return NULL;
}

/* Maps the file at dc->path when it is a cache of this layout for a source of
 * dc->size bytes whose every entry lies inside it; else leaves dc without one. */
static void disk_read(disk_cache *dc) {
    int fd = open(dc->path, O_RDONLY);
    if (fd < 0) return;
    struct stat st;
    void *m = MAP_FAILED;
    if (!fstat(fd, &st) && (size_t)st.st_size >= sizeof(disk_header))
        m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED) return;
    const disk_header *h = m;
    size_t size = (size_t)st.st_size, table = sizeof *h + (size_t)h->n_entries * sizeof(disk_entry);
    bool ok = !memcmp(h->magic, DISK_MAGIC, 8) && h->layout == DISK_LAYOUT && h->source_size == dc->size &&
              h->n_entries <= (size - sizeof *h) / sizeof(disk_entry);
    const disk_entry *e = (const disk_entry *)((const uint8_t *)m + sizeof *h);
    for (uint32_t k = 0; ok && k < h->n_entries; k++)
        ok = e[k].at >= table && e[k].at % 64 == 0 && e[k].bytes <= size && e[k].at <= size - e[k].bytes &&
             e[k].src_offset < dc->size && (k == 0 || cmp_disk_entry(&e[k - 1], &e[k]) < 0);
    if (!ok) { munmap(m, size); return; }
    dc->map = m;
    dc->map_size = size;
    dc->e = e;
    dc->n = h->n_entries;
}

/* The file's copy of kind for w, checked against w's shape and bytes, or NULL. */
static const disk_entry *disk_find(const disk_cache *dc, const quant_matrix *w, uint32_t kind, size_t bytes) {
    disk_entry key = {.src_offset = (uint64_t)((const uint8_t *)w->data - dc->base), .kind = kind};
    const disk_entry *e = dc->e ? bsearch(&key, dc->e, dc->n, sizeof *dc->e, cmp_disk_entry) : NULL;
    if (!e || e->type != w->type || e->n_in != w->n_in || e->n_out != w->n_out || e->bytes != bytes) return NULL;
    uint8_t now[N_SAMPLES][SAMPLE_BYTES];
    take_samples(w->data, quant_row_size(w->type, w->n_in) * (size_t)w->n_out, now);
    if (memcmp(now, e->sample, sizeof now)) return NULL;
    return copy_check(dc->map + e->at, e->bytes) == e->check ? e : NULL;
}

/* w's packed form read from its cache file, or NULL. */
static quant_packed *disk_packed(const quant_matrix *w, const pack_format *f) {
    disk_cache *dc = disk_of(w->data);
    if (!dc) return NULL;
    size_t q_bytes, sc_bytes;
    quant_packed shape = packed_shape(w, f, &q_bytes, &sc_bytes);
    const disk_entry *e = disk_find(dc, w, KIND_PACKED, q_bytes + 2 * sc_bytes);
    if (!e) { dc->dirty = true; dc->made++; return NULL; }
    quant_packed *p = xmalloc(sizeof *p);
    *p = shape;             /* mem NULL: the arrays are the file's */
    packed_place(p, (uint8_t *)dc->map + e->at, q_bytes, sc_bytes);
    dc->loaded++;
    return p;
}

/* w's interleaved form read from its cache file, or NULL. */
static quant_interleaved *disk_interleaved(const quant_matrix *w, const pack_format *f) {
    disk_cache *dc = disk_of(w->data);
    if (!dc) return NULL;
    size_t bytes;
    quant_interleaved shape = interleaved_shape(w, f, &bytes);
    const disk_entry *e = disk_find(dc, w, KIND_INTERLEAVED, bytes);
    if (!e) { dc->dirty = true; dc->made++; return NULL; }
    quant_interleaved *il = xmalloc(sizeof *il);
    *il = shape;
    il->w = (const uint32_t *)(dc->map + e->at);
    dc->loaded++;
    return il;
}

/* The copy of entry c of kind (its first byte and length), or false. */
static bool copy_bytes(const cache_entry *c, uint32_t kind, const void **at, size_t *bytes) {
    if (kind == KIND_PACKED && c->packed) {
        const quant_packed *p = c->packed;
        *at = p->q;
        *bytes = (size_t)((const uint8_t *)p->min - p->q) + ((size_t)((const uint8_t *)p->min - (const uint8_t *)p->scale));
        return true;
    }
    if (kind == KIND_INTERLEAVED && c->interleaved) {
        const quant_interleaved *il = c->interleaved;
        *at = il->w;
        *bytes = (size_t)(il->n_groups * il->n_blocks) * (size_t)il->block_words * QUANT_PACK_ROWS * 4;
        return true;
    }
    return false;
}

/* A copy to write: its entry (first, so that cmp_disk_entry sorts these) and its bytes. */
typedef struct {
    disk_entry e;
    const void *src;
} disk_copy;

/* Writes every copy of dc's range in the cache to a new file that replaces
 * dc->path; with cache_lock held. Best effort: a failure leaves the old
 * file (or none), never a partial one. */
static void disk_write(const disk_cache *dc) {
    size_t n = 0;
    for (size_t i = 0; i < cache_len; i++)
        if (disk_of(cache[i].data) == dc) n += (cache[i].packed != NULL) + (cache[i].interleaved != NULL);
    disk_copy *cp = xcalloc(n ? n : 1, sizeof *cp);
    size_t k = 0;
    for (size_t i = 0; i < cache_len; i++) {
        const cache_entry *c = &cache[i];
        if (disk_of(c->data) != dc) continue;
        for (uint32_t kind = KIND_PACKED; kind <= KIND_INTERLEAVED; kind++) {
            size_t bytes;
            if (!copy_bytes(c, kind, &cp[k].src, &bytes)) continue;
            cp[k].e = (disk_entry){(uint64_t)((const uint8_t *)c->data - dc->base), kind, c->type, c->n_in, c->n_out, {{0}}, 0,
                                   bytes, copy_check(cp[k].src, bytes)};
            memcpy(cp[k].e.sample, c->sample, sizeof cp[k].e.sample);
            k++;
        }
    }
    /* in file order for the readers' bsearch; a mixture of experts meets its matrices in any order */
    qsort(cp, n, sizeof *cp, cmp_disk_entry);
    uint64_t at = (sizeof(disk_header) + n * sizeof(disk_entry) + 63) & ~(uint64_t)63;
    for (size_t i = 0; i < n; i++) {
        cp[i].e.at = at;
        at = (at + cp[i].e.bytes + 63) & ~(uint64_t)63;
    }
    char *tmp = xmalloc(strlen(dc->path) + 32);
    sprintf(tmp, "%s.tmp.%ld", dc->path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    bool ok = f != NULL;
    disk_header h = {DISK_MAGIC, DISK_LAYOUT, (uint32_t)n, dc->size};
    static const uint8_t zeros[64];
    if (ok) ok = fwrite(&h, sizeof h, 1, f) == 1;
    for (size_t i = 0; ok && i < n; i++) ok = fwrite(&cp[i].e, sizeof cp[i].e, 1, f) == 1;
    for (size_t i = 0; ok && i < n; i++) {
        long pad = (long)cp[i].e.at - ftell(f);
        ok = pad >= 0 && pad < 64 && fwrite(zeros, 1, (size_t)pad, f) == (size_t)pad &&
             fwrite(cp[i].src, 1, cp[i].e.bytes, f) == cp[i].e.bytes;
    }
    if (f && fclose(f)) ok = false;
    if (!ok || rename(tmp, dc->path)) unlink(tmp);
    free(tmp);
    free(cp);
}

void quant_cache_file(const void *base, size_t size, const char *path) {
    pthread_mutex_lock(&cache_lock);
    disks = xrealloc(disks, (n_disks + 1) * sizeof *disks);
    disk_cache *dc = &disks[n_disks++];
    *dc = (disk_cache){.base = base, .size = size, .path = xstrdup(path)};
    disk_read(dc);
    pthread_mutex_unlock(&cache_lock);
}

void quant_cache_file_counts(const void *base, size_t *loaded, size_t *made) {
    pthread_mutex_lock(&cache_lock);
    const disk_cache *dc = disk_of(base);
    *loaded = dc ? dc->loaded : 0;
    *made = dc ? dc->made : 0;
    pthread_mutex_unlock(&cache_lock);
}

const quant_packed *quant_packed_get(const quant_matrix *w, int max_bits, struct pool *pool) {
    const pack_format *f = pack_format_of(w->type);
    if (!f || f->value_bits > max_bits || w->n_in % f->blk_len) return NULL;
    pthread_mutex_lock(&cache_lock);
    cache_entry *e = cache_entry_of(w);
    if (!e->packed && !(e->packed = disk_packed(w, f))) e->packed = pack(w, f, pool);
    const quant_packed *p = e->packed;
    pthread_mutex_unlock(&cache_lock);
    return p;
}

const quant_interleaved *quant_interleaved_get(const quant_matrix *w, struct pool *pool) {
    const pack_format *f = pack_format_of(w->type);
    if (!f || !f->words || w->n_in % quant_get_info(w->type)->block_size) return NULL;
    pthread_mutex_lock(&cache_lock);
    cache_entry *e = cache_entry_of(w);
    if (!e->interleaved && !(e->interleaved = disk_interleaved(w, f))) e->interleaved = interleave(w, f, pool);
    const quant_interleaved *il = e->interleaved;
    pthread_mutex_unlock(&cache_lock);
    return il;
}

void quant_release(const void *data, size_t size) {
    const uint8_t *lo = data, *hi = lo + size;
    pthread_mutex_lock(&cache_lock);
    /* a cache file of this range is written before its copies go (some may live in its old mapping) */
    disk_cache *dc = disk_of(data);
    if (dc && dc->base == lo && dc->dirty) disk_write(dc);
    size_t kept = 0;
    for (size_t i = 0; i < cache_len; i++) {
        const uint8_t *d = cache[i].data;
        if (d >= lo && d < hi) entry_clear(&cache[i]);
        else cache[kept++] = cache[i];
    }
    cache_len = kept;
    index_rebuild(cache_len);   /* entries moved down */
    if (dc && dc->base == lo) {
        if (dc->map) munmap((void *)dc->map, dc->map_size);
        free(dc->path);
        *dc = disks[--n_disks];
    }
    pthread_mutex_unlock(&cache_lock);
}
