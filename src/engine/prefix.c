/* prefix: see prefix.h. */
#include "engine/prefix.h"
#include "base/util.h"

#include <stdlib.h>
#include <string.h>

struct state_store {
    int dim, n_bounds;
    int *bounds;                /* ascending */
    long long cap;              /* rows there is room for */
    float *states;              /* [cap][n_bounds][dim]: a row's boundaries together, so growing keeps them */
};

state_store *state_store_new(int dim, const int *bounds, int n_bounds, long long n_rows) {
    for (int j = 0; j < n_bounds; j++)
        if (bounds[j] < 1 || (j > 0 && bounds[j] <= bounds[j - 1])) {
            rys_seterr("prefix: kept boundaries must be ascending path positions >= 1");
            return NULL;
        }
    state_store *st = xcalloc(1, sizeof *st);
    st->dim = dim;
    st->n_bounds = n_bounds;
    st->bounds = xmalloc((size_t)n_bounds * sizeof *st->bounds);
    memcpy(st->bounds, bounds, (size_t)n_bounds * sizeof *bounds);
    state_store_reserve(st, n_rows);
    return st;
}

void state_store_free(state_store *st) {
    if (!st) return;
    free(st->bounds);
    free(st->states);
    free(st);
}

void state_store_reserve(state_store *st, long long n_rows) {
    if (n_rows <= st->cap && st->states) return;
    if (n_rows > st->cap) st->cap = n_rows;
    st->states = xrealloc(st->states, (size_t)st->cap * st->n_bounds * st->dim * sizeof *st->states);
}

size_t state_store_bytes(const state_store *st) { return (size_t)st->cap * st->n_bounds * st->dim * sizeof(float); }

/* The index of boundary b among the kept ones, or -1. */
static int bound_index(const state_store *st, int b) {
    for (int j = 0; j < st->n_bounds; j++)
        if (st->bounds[j] == b) return j;
    return -1;
}

bool state_store_keeps(const state_store *st, int b) { return bound_index(st, b) >= 0; }

static float *state_at(const state_store *st, int j, long long row) {
    return st->states + ((size_t)row * st->n_bounds + j) * st->dim;
}

/* The store row of batch row t, or -1 with an error when it has no room. */
static long long store_row(const state_store *st, const long long *rows, int t) {
    long long row = rows ? rows[t] : t;
    if (row < 0 || row >= st->cap) {
        rys_seterr("prefix: state row %lld outside the store's %lld", row, st->cap);
        return -1;
    }
    return row;
}

int prefix_run_keep(forward_ctx *f, const fwd_batch *b, float *x, int p_begin, int p_end, state_store *st,
                    const long long *rows) {
    int p = p_begin;
    for (int j = 0; j < st->n_bounds; j++) {
        int bound = st->bounds[j];
        if (bound <= p_begin || bound > p_end) continue;
        if (forward_layers(f, b, x, p, bound)) return -1;
        for (int t = 0; t < b->n; t++) {
            long long row = store_row(st, rows, t);
            if (row < 0) return -1;
            memcpy(state_at(st, j, row), x + (size_t)t * st->dim, (size_t)st->dim * sizeof *x);
        }
        p = bound;
    }
    return p < p_end || p_begin > p_end ? forward_layers(f, b, x, p, p_end) : 0;
}

int prefix_start(const model *m, const fwd_batch *b, int k, const state_store *st, const long long *rows, float *x) {
    int dim = m->hp.dim;
    if (k == 0) {
        for (int t = 0; t < b->n; t++) model_embed(m, b->tokens[t], x + (size_t)t * dim);
        return 0;
    }
    int j = st && st->dim == dim ? bound_index(st, k) : -1;
    if (j < 0) { rys_seterr("prefix: no states kept at boundary %d", k); return -1; }
    for (int t = 0; t < b->n; t++) {
        long long row = store_row(st, rows, t);
        if (row < 0) return -1;
        memcpy(x + (size_t)t * dim, state_at(st, j, row), (size_t)dim * sizeof *x);
    }
    return 0;
}

struct kv_snapshot {
    int slot_begin, slot_end, n_seq, n_pos;
    int *pos;                   /* [n_seq] first saved position of each sequence */
    size_t per_seq;             /* fp16 values per sequence and slot: n_pos x kv_dim */
    uint16_t *k, *v;            /* [slot][seq][n_pos][kv_dim] */
};

/* The saved rows of (slot, seq). */
static size_t snap_at(const kv_snapshot *s, int slot, int seq) {
    return ((size_t)(slot - s->slot_begin) * s->n_seq + seq) * s->per_seq;
}

kv_snapshot *kv_snapshot_save(const forward_ctx *f, int slot_begin, int slot_end, int n_seq, const int *pos, int n_pos) {
    kv_shape kv = forward_kv_shape(f);
    if (slot_begin < 0 || slot_end > kv.n_slots || slot_begin > slot_end || n_seq < 0 || n_seq > kv.n_seq) {
        rys_seterr("prefix: cannot save KV slots %d..%d of %d sequences", slot_begin, slot_end - 1, n_seq);
        return NULL;
    }
    kv_snapshot *s = xcalloc(1, sizeof *s);
    *s = (kv_snapshot){slot_begin, slot_end, n_seq, n_pos, NULL, (size_t)n_pos * kv.kv_dim, NULL, NULL};
    s->pos = xmalloc((size_t)n_seq * sizeof *s->pos);
    memcpy(s->pos, pos, (size_t)n_seq * sizeof *pos);
    size_t n = (size_t)(slot_end - slot_begin) * n_seq * s->per_seq;
    s->k = xmalloc(n * sizeof *s->k);
    s->v = xmalloc(n * sizeof *s->v);
    for (int p = slot_begin; p < slot_end; p++)
        for (int q = 0; q < n_seq; q++)
            if (forward_kv_read(f, p, q, pos[q], n_pos, s->k + snap_at(s, p, q), s->v + snap_at(s, p, q))) {
                kv_snapshot_free(s);
                return NULL;
            }
    return s;
}

int kv_snapshot_restore(const kv_snapshot *s, forward_ctx *f) {
    for (int p = s->slot_begin; p < s->slot_end; p++)
        for (int q = 0; q < s->n_seq; q++)
            if (forward_kv_write(f, p, q, s->pos[q], s->n_pos, s->k + snap_at(s, p, q), s->v + snap_at(s, p, q)))
                return -1;
    return 0;
}

void kv_snapshot_free(kv_snapshot *s) {
    if (!s) return;
    free(s->pos); free(s->k); free(s->v);
    free(s);
}

struct recurrent_snapshot {
    int n_slots, n_seq;
    size_t per_seq;             /* floats per sequence and position */
    float **state;              /* [slot] -> [n_seq][per_seq], NULL where not recurrent */
    int **held;                 /* [slot] -> [n_seq] tokens absorbed */
};

recurrent_snapshot *recurrent_snapshot_save(const forward_ctx *f, int n_slots) {
    kv_shape kv = forward_kv_shape(f);
    if (n_slots < 0 || n_slots > kv.n_slots) {
        rys_seterr("prefix: cannot save the recurrent states of %d positions of %d", n_slots, kv.n_slots);
        return NULL;
    }
    recurrent_snapshot *s = xcalloc(1, sizeof *s);
    *s = (recurrent_snapshot){n_slots, kv.n_seq, forward_recurrent_floats(f), NULL, NULL};
    s->state = xcalloc((size_t)n_slots + 1, sizeof *s->state);
    s->held = xcalloc((size_t)n_slots + 1, sizeof *s->held);
    for (int p = 0; p < n_slots; p++) {
        if (!forward_slot_recurrent(f, p)) continue;
        s->state[p] = xmalloc((size_t)s->n_seq * s->per_seq * sizeof(float));
        s->held[p] = xmalloc((size_t)s->n_seq * sizeof(int));
        for (int q = 0; q < s->n_seq; q++)
            if (forward_recurrent_read(f, p, q, s->state[p] + (size_t)q * s->per_seq, &s->held[p][q])) {
                recurrent_snapshot_free(s);
                return NULL;
            }
    }
    return s;
}

int recurrent_snapshot_restore(const recurrent_snapshot *s, forward_ctx *f, int k) {
    if (k < 0 || k > s->n_slots || forward_kv_shape(f).n_seq != s->n_seq) {
        rys_seterr("prefix: cannot restore the recurrent states of %d positions (%d saved)", k, s->n_slots);
        return -1;
    }
    for (int p = 0; p < k; p++) {
        if (!s->state[p] != !forward_slot_recurrent(f, p)) {
            rys_seterr("prefix: path position %d is recurrent in one context only", p);
            return -1;
        }
        for (int q = 0; s->state[p] && q < s->n_seq; q++)
            if (forward_recurrent_write(f, p, q, s->state[p] + (size_t)q * s->per_seq, s->held[p][q])) return -1;
    }
    return 0;
}

void recurrent_snapshot_free(recurrent_snapshot *s) {
    if (!s) return;
    for (int p = 0; p < s->n_slots; p++) {
        free(s->state[p]);
        free(s->held[p]);
    }
    free(s->state);
    free(s->held);
    free(s);
}
