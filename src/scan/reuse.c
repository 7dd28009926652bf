/* reuse: see reuse.h. States are kept in f32 so that reuse is exact. */
#include "scan/reuse.h"
#include "base/util.h"

#include <stdlib.h>
#include <string.h>

struct baseline_run {
    const model *m;
    const tokenizer *tok;
    pool *pool;
    forward_ctx *f;                 /* baseline path, owns the KV slots configs borrow */
    int n, n_predict, n_ctx;
    int *lens;                      /* prompt lengths */
    int32_t **prompts;              /* copies */
    gen_output *out;                /* baseline generations */
    int *fed;                       /* generated tokens the baseline fed back (have states) */
    int *donor, *shared;            /* shared prompt beginnings: see plan_shared_prefixes */
    long long *row0;                /* first state row of each sequence */
    long long n_rows;               /* rows per layer boundary */
    float *states;                  /* [n_layers][n_rows][dim]: input of layer l+1 (output of layer l) */
    reuse_stats stats;
};

/* state row of (seq s, position pos) at layer boundary l (1..N) */
static float *state_at(const baseline_run *b, int l, int s, int pos) {
    return b->states + (((size_t)(l - 1) * b->n_rows) + (size_t)(b->row0[s] + pos)) * b->m->hp.dim;
}

const gen_output *baseline_outputs(const baseline_run *b) { return b->out; }
reuse_stats baseline_stats(const baseline_run *b) { return b->stats; }

size_t baseline_bytes(const baseline_run *b) {
    return (size_t)b->m->hp.n_layers * b->n_rows * b->m->hp.dim * sizeof(float) + forward_kv_bytes(b->f);
}

void baseline_run_free(baseline_run *b) {
    if (!b) return;
    forward_free(b->f);
    if (b->out) gen_output_free(b->out, b->n);
    for (int s = 0; s < b->n; s++) free(b->prompts ? b->prompts[s] : NULL);
    free(b->prompts); free(b->out); free(b->lens); free(b->fed); free(b->row0); free(b->states);
    free(b->donor); free(b->shared);
    free(b);
}

/* A batch of tokens with per-token seq/pos and the scratch to run it. */
typedef struct {
    int n, cap;
    int32_t *tok, *pos, *seq;
    float *x;
} step_batch;

static void sb_init(step_batch *sb, int cap, int dim) {
    sb->n = 0;
    sb->cap = cap;
    sb->tok = xmalloc((size_t)cap * sizeof *sb->tok);
    sb->pos = xmalloc((size_t)cap * sizeof *sb->pos);
    sb->seq = xmalloc((size_t)cap * sizeof *sb->seq);
    sb->x = xmalloc((size_t)cap * dim * sizeof(float));
}

static void sb_free(step_batch *sb) { free(sb->tok); free(sb->pos); free(sb->seq); free(sb->x); }

/* One decode step of the baseline: every layer of its path on sb (x holding
 * the embeddings), keeping each layer's output for the configurations to
 * borrow, then the logits of all rows into logits. */
static int baseline_step(baseline_run *b, step_batch *sb, float *logits) {
    if (sb->n == 0) return 0;
    fwd_batch fb = {sb->n, sb->tok, sb->pos, sb->seq, NULL};
    int P = forward_path(b->f)->n, dim = b->m->hp.dim;
    for (int p = 0; p < P; p++) {
        if (forward_layers(b->f, &fb, sb->x, p, p + 1)) return -1;
        for (int t = 0; t < sb->n; t++)
            memcpy(state_at(b, p + 1, sb->seq[t], sb->pos[t]), sb->x + (size_t)t * dim, dim * sizeof(float));
    }
    return forward_output(b->f, &fb, sb->x, logits) < 0 ? -1 : 0;
}

static int common_prefix(const int32_t *a, int na, const int32_t *b, int nb) {
    int c = 0;
    while (c < na && c < nb && a[c] == b[c]) c++;
    return c;
}

/* Prompts that begin alike (a chat template's system turn, a probe set's
 * instructions) compute that beginning once: member s takes positions
 * [0, shared[s]) of its KV rows from the root donor[s], copied slot by slot as
 * each layer finishes; causal attention makes them the bits s would compute
 * itself. Every member keeps its last token, whose logits it needs. */
static void plan_shared_prefixes(baseline_run *b) {
    for (int s = 0; s < b->n; s++) {
        b->donor[s] = s;
        b->shared[s] = 0;
        for (int r = 0; r < s; r++) {
            if (b->donor[r] != r) continue;
            int c = common_prefix(b->prompts[s], b->lens[s], b->prompts[r], b->lens[r]);
            if (c > b->lens[s] - 1) c = b->lens[s] - 1;
            if (c > b->shared[s]) { b->shared[s] = c; b->donor[s] = r; }
        }
    }
}

/* The prompt tokens each sequence computes itself, the roots' first. want
 * marks each sequence's last token, last_row[s] is its row among the logits.
 * Returns the number of root tokens. */
static int prompt_batch(const baseline_run *b, step_batch *sb, bool *want, int *last_row) {
    int n_root = 0, rows = 0;
    sb->n = 0;
    for (int members = 0; members < 2; members++) {
        for (int s = 0; s < b->n; s++) {
            if ((b->donor[s] != s) != (members == 1)) continue;
            for (int i = b->shared[s]; i < b->lens[s]; i++) {
                int t = sb->n++;
                sb->tok[t] = b->prompts[s][i];
                sb->pos[t] = i;
                sb->seq[t] = s;
                want[t] = i == b->lens[s] - 1;
                if (want[t]) last_row[s] = rows++;
            }
        }
        if (!members) n_root = sb->n;
    }
    return n_root;
}

/* Path position p over the prompt batch: the roots, the members' copies of
 * the rows they share, then the members (whose attention reads those rows).
 * With want (the rows whose logits are taken), the path's last position
 * leaves the other rows' hidden states undefined: a configuration keeps no
 * states, the baseline (want NULL) keeps them all. */
static int prompt_layer(const baseline_run *b, forward_ctx *f, step_batch *sb, const bool *want, int n_root, int p) {
    fwd_batch roots = {n_root, sb->tok, sb->pos, sb->seq, want};
    fwd_batch members = {sb->n - n_root, sb->tok + n_root, sb->pos + n_root, sb->seq + n_root, want ? want + n_root : NULL};
    bool last = want && p == forward_path(f)->n - 1;
    float *members_x = sb->x + (size_t)n_root * b->m->hp.dim;
    if (roots.n && (last ? forward_layers_for_output(f, &roots, sb->x, p) : forward_layers(f, &roots, sb->x, p, p + 1)))
        return -1;
    for (int s = 0; s < b->n; s++)
        if (b->donor[s] != s && forward_copy_seq_slots(f, p, p + 1, b->donor[s], s, b->shared[s])) return -1;
    if (!members.n) return 0;
    return last ? forward_layers_for_output(f, &members, members_x, p) : forward_layers(f, &members, members_x, p, p + 1);
}

baseline_run *baseline_run_new(const model *m, const tokenizer *tok, const int32_t *const *prompts, const int *lens,
                               int n, int n_predict, pool *pool) {
    baseline_run *b = xcalloc(1, sizeof *b);
    b->m = m;
    b->tok = tok;
    b->pool = pool;
    b->n = n;
    b->n_predict = n_predict;
    b->lens = xmalloc((size_t)n * sizeof *b->lens);
    b->prompts = xcalloc((size_t)n, sizeof *b->prompts);
    b->fed = xcalloc((size_t)n, sizeof *b->fed);
    b->row0 = xmalloc((size_t)n * sizeof *b->row0);
    b->donor = xmalloc((size_t)n * sizeof *b->donor);
    b->shared = xmalloc((size_t)n * sizeof *b->shared);
    int max_len = 0, total = 0;
    for (int s = 0; s < n; s++) {
        if (lens[s] < 1) { rys_seterr("scan: prompt %d is empty", s); baseline_run_free(b); return NULL; }
        b->lens[s] = lens[s];
        b->prompts[s] = xmalloc((size_t)lens[s] * sizeof(int32_t));
        memcpy(b->prompts[s], prompts[s], (size_t)lens[s] * sizeof(int32_t));
        b->row0[s] = b->n_rows;
        b->n_rows += lens[s] + n_predict;
        if (lens[s] > max_len) max_len = lens[s];
        total += lens[s];
    }
    b->n_ctx = max_len + n_predict;
    plan_shared_prefixes(b);
    layer_path base;
    path_baseline(m->hp.n_layers, &base);
    b->f = forward_new(m, &base, n, b->n_ctx, pool);
    path_free(&base);
    if (!b->f) { baseline_run_free(b); return NULL; }
    int dim = m->hp.dim, N = m->hp.n_layers, n_vocab = m->hp.n_vocab;
    b->states = xmalloc((size_t)N * b->n_rows * dim * sizeof(float));
    b->out = xcalloc((size_t)n, sizeof *b->out);

    /* prompts */
    step_batch sb;
    sb_init(&sb, total > n ? total : n, dim);
    float *logits = xmalloc((size_t)n * n_vocab * sizeof(float)); /* a row per sequence: last tokens only */
    bool *want = xmalloc((size_t)total * sizeof *want);
    int *row = xmalloc((size_t)n * sizeof *row);
    int n_root = prompt_batch(b, &sb, want, row);
    for (int t = 0; t < sb.n; t++) model_embed(m, sb.tok[t], sb.x + (size_t)t * dim);
    fwd_batch fb = {sb.n, sb.tok, sb.pos, sb.seq, want};
    int rc = -1;
    for (int p = 0; p < N; p++) {
        if (prompt_layer(b, b->f, &sb, NULL, n_root, p)) goto done;
        for (int t = 0; t < sb.n; t++)
            memcpy(state_at(b, p + 1, sb.seq[t], sb.pos[t]), sb.x + (size_t)t * dim, dim * sizeof(float));
    }
    if (forward_output(b->f, &fb, sb.x, logits) < 0) goto done;
    b->stats.layer_tokens_done = (long long)N * sb.n;
    b->stats.layer_tokens_naive = (long long)N * total;

    /* greedy continuation, keeping states of every token fed back */
    bool *active = xmalloc((size_t)n * sizeof *active);
    for (int s = 0; s < n; s++) {
        b->out[s].tokens = xmalloc((size_t)(n_predict > 0 ? n_predict : 1) * sizeof(int32_t));
        active[s] = n_predict > 0;
    }
    for (int step = 0; step < n_predict; step++) {
        sb.n = 0;
        for (int s = 0; s < n; s++) {
            if (!active[s]) continue;
            int32_t t = sample_argmax(logits + (size_t)row[s] * n_vocab, n_vocab);
            if (tokenizer_is_eog(tok, t)) { active[s] = false; b->out[s].hit_eog = true; continue; }
            b->out[s].tokens[b->out[s].n++] = t;
            if (b->out[s].n >= n_predict) { active[s] = false; continue; }
            sb.tok[sb.n] = t;
            sb.pos[sb.n] = lens[s] + step;
            sb.seq[sb.n] = s;
            model_embed(m, t, sb.x + (size_t)sb.n * dim);
            row[s] = sb.n++;
            b->fed[s]++;
        }
        if (!sb.n) break;
        b->stats.layer_tokens_done += (long long)N * sb.n;
        b->stats.layer_tokens_naive += (long long)N * sb.n;
        if (baseline_step(b, &sb, logits)) { free(active); goto done; }
    }
    free(active);
    rc = 0;
done:
    sb_free(&sb);
    free(logits);
    free(want);
    free(row);
    if (rc) { baseline_run_free(b); return NULL; }
    return b;
}

/* The part of the borrowed slots a configuration may overwrite: positions at
 * and after each prompt's end. Saved before and restored after, so the
 * baseline's cache stays intact for the next configuration. */
typedef struct { uint16_t *k, *v; } gen_region;

static void regions(baseline_run *b, int k, gen_region *save, bool restore) {
    const kv_cache *kv = forward_kv(b->f);
    size_t per = (size_t)b->n_predict * kv->kv_dim;
    for (int p = 0; p < k; p++)
        for (int s = 0; s < b->n; s++) {
            size_t at = ((size_t)s * kv->n_ctx + b->lens[s]) * kv->kv_dim, off = ((size_t)p * b->n + s) * per;
            if (restore) {
                memcpy(kv->k[p] + at, save->k + off, per * sizeof(uint16_t));
                memcpy(kv->v[p] + at, save->v + off, per * sizeof(uint16_t));
            } else {
                memcpy(save->k + off, kv->k[p] + at, per * sizeof(uint16_t));
                memcpy(save->v + off, kv->v[p] + at, per * sizeof(uint16_t));
            }
        }
}

int baseline_run_config(baseline_run *b, const layer_path *path, gen_output *out, reuse_stats *st) {
    const model *m = b->m;
    int dim = m->hp.dim, n_vocab = m->hp.n_vocab, n = b->n, P = path->n;
    int k = path_shared_prefix(path);
    forward_ctx *f = forward_new(m, path, n, b->n_ctx, b->pool);
    if (!f) return -1;
    for (int p = 0; p < k; p++) forward_share_slot(f, p, b->f, p);
    size_t per = (size_t)b->n_predict * forward_kv(b->f)->kv_dim * n * (k ? k : 1);
    gen_region save = {xmalloc(per * sizeof(uint16_t)), xmalloc(per * sizeof(uint16_t))};
    regions(b, k, &save, false);

    int total = 0;
    for (int s = 0; s < n; s++) total += b->lens[s];
    int cap = total > n ? total : n;
    step_batch sb;
    sb_init(&sb, cap, dim);
    float *logits = xmalloc((size_t)n * n_vocab * sizeof(float)); /* a row per sequence: last tokens only */
    bool *want = xmalloc((size_t)total * sizeof *want);
    int *row = xmalloc((size_t)n * sizeof *row);
    int32_t *next = xmalloc((size_t)n * sizeof *next);
    bool *active = xmalloc((size_t)n * sizeof *active), *agree = xmalloc((size_t)n * sizeof *agree);
    int rc = -1;
    reuse_stats rs = {0, 0};

    /* prompts: start at position k from the baseline's states */
    int n_root = prompt_batch(b, &sb, want, row);
    for (int t = 0; t < sb.n; t++) {
        float *x = sb.x + (size_t)t * dim;
        if (k > 0) memcpy(x, state_at(b, k, sb.seq[t], sb.pos[t]), dim * sizeof(float));
        else model_embed(m, sb.tok[t], x);
    }
    fwd_batch fb = {sb.n, sb.tok, sb.pos, sb.seq, want};
    for (int p = k; p < P; p++)
        if (prompt_layer(b, f, &sb, want, n_root, p)) goto done;
    if (forward_output(f, &fb, sb.x, logits) < 0) goto done;
    rs.layer_tokens_done += (long long)(P - k) * sb.n;
    rs.layer_tokens_naive += (long long)P * total;

    for (int s = 0; s < n; s++) {
        out[s].tokens = xmalloc((size_t)(b->n_predict > 0 ? b->n_predict : 1) * sizeof(int32_t));
        out[s].n = 0;
        out[s].hit_eog = false;
        active[s] = b->n_predict > 0;
        agree[s] = true;
    }
    /* Each step's rows in one batch: those whose answer has left the
     * baseline's run from layer 0 first, the rest from the baseline's states
     * at k, and from k on all of them together, so layers k.. and the output
     * matrix stream their weights once a step. */
    for (int step = 0; step < b->n_predict; step++) {
        int n_rows = 0, n_full = 0;
        for (int s = 0; s < n; s++) {
            next[s] = -1;
            if (!active[s]) continue;
            int32_t t = sample_argmax(logits + (size_t)row[s] * n_vocab, n_vocab);
            if (tokenizer_is_eog(b->tok, t)) { active[s] = false; out[s].hit_eog = true; continue; }
            out[s].tokens[out[s].n++] = t;
            if (out[s].n >= b->n_predict) { active[s] = false; continue; }
            agree[s] = agree[s] && k > 0 && step < b->fed[s] && b->out[s].tokens[step] == t;
            next[s] = t;
            n_rows++;
            n_full += !agree[s];
        }
        if (!n_rows) break;
        sb.n = n_rows;
        for (int s = 0, r_full = 0, r_reuse = n_full; s < n; s++) {
            if (next[s] < 0) continue;
            int r = agree[s] ? r_reuse++ : r_full++, pos = b->lens[s] + step;
            sb.tok[r] = next[s];
            sb.pos[r] = pos;
            sb.seq[r] = s;
            if (agree[s]) memcpy(sb.x + (size_t)r * dim, state_at(b, k, s, pos), dim * sizeof(float));
            else model_embed(m, next[s], sb.x + (size_t)r * dim);
            row[s] = r;
        }
        rs.layer_tokens_done += (long long)(P - k) * (n_rows - n_full) + (long long)P * n_full;
        rs.layer_tokens_naive += (long long)P * n_rows;
        fwd_batch full = {n_full, sb.tok, sb.pos, sb.seq, NULL}, all = {n_rows, sb.tok, sb.pos, sb.seq, NULL};
        if (n_full && k > 0 && forward_layers(f, &full, sb.x, 0, k)) goto done;
        if (forward_layers(f, &all, sb.x, k, P) || forward_output(f, &all, sb.x, logits) < 0) goto done;
    }
    rc = 0;
done:
    regions(b, k, &save, true);
    if (rc) gen_output_free(out, n);
    if (st) *st = rs;
    forward_free(f);
    sb_free(&sb);
    free(save.k); free(save.v);
    free(logits); free(want); free(row); free(next); free(active); free(agree);
    return rc;
}
