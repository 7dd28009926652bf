/* reuse: see reuse.h. */
#include "scan/reuse.h"
#include "engine/prefix.h"
#include "base/util.h"

#include <stdlib.h>
#include <string.h>

/* What the baseline knows of one sequence besides its prompt. */
typedef struct {
    int donor, shared;              /* positions [0, shared) come from sequence donor: see plan_shared_prefixes */
    int fed;                        /* generated tokens the baseline fed back (they have states) */
    long long row0;                 /* the state row of its position 0 */
} base_seq;

struct baseline_run {
    const model *m;
    const tokenizer *tok;
    pool *pool;
    forward_ctx *f;                 /* baseline path, owns the KV slots configs borrow */
    int n, n_predict, n_ctx;
    int32_t **prompts;              /* copies */
    int *lens;                      /* prompt lengths */
    int *limits;                    /* n_predict for each sequence */
    base_seq *seqs;
    state_store *states;            /* every layer boundary; (seq s, position pos) in row seqs[s].row0 + pos */
    gen_output *out;                /* baseline generations */
    reuse_stats stats;
    /* Recurrent layers (qwen35): a state holds a sequence's whole past, so
     * nothing is copied between sequences, a configuration starts from the
     * baseline's states after the prompts (prompt_states) at the positions
     * it shares, and every token it generates runs its whole path. */
    bool recurrent;
    recurrent_snapshot *prompt_states;
};

const gen_output *baseline_outputs(const baseline_run *b) { return b->out; }
reuse_stats baseline_stats(const baseline_run *b) { return b->stats; }

void baseline_run_free(baseline_run *b) {
    if (!b) return;
    forward_free(b->f);
    if (b->out) gen_output_free(b->out, b->n);
    for (int s = 0; s < b->n; s++) free(b->prompts ? b->prompts[s] : NULL);
    free(b->prompts); free(b->out); free(b->lens); free(b->limits); free(b->seqs);
    state_store_free(b->states);
    recurrent_snapshot_free(b->prompt_states);
    free(b);
}

/* A batch of tokens with per-token seq/pos, their state rows and the
 * scratch to run it. */
typedef struct {
    int n, cap;
    int32_t *tok, *pos, *seq;
    long long *row;
    float *x;
} step_batch;

static void sb_init(step_batch *sb, int cap, int dim) {
    sb->n = 0;
    sb->cap = cap;
    sb->tok = xmalloc((size_t)cap * sizeof *sb->tok);
    sb->pos = xmalloc((size_t)cap * sizeof *sb->pos);
    sb->seq = xmalloc((size_t)cap * sizeof *sb->seq);
    sb->row = xmalloc((size_t)cap * sizeof *sb->row);
    sb->x = xmalloc((size_t)cap * dim * sizeof(float));
}

static void sb_free(step_batch *sb) { free(sb->tok); free(sb->pos); free(sb->seq); free(sb->row); free(sb->x); }

/* Row r of sb becomes token tok at position pos of sequence seq. */
static void sb_set(const baseline_run *b, step_batch *sb, int r, int32_t tok, int pos, int seq) {
    sb->tok[r] = tok;
    sb->pos[r] = pos;
    sb->seq[r] = seq;
    sb->row[r] = b->seqs[seq].row0 + pos;
}

static int common_prefix(const int32_t *a, int na, const int32_t *b, int nb) {
    int c = 0;
    while (c < na && c < nb && a[c] == b[c]) c++;
    return c;
}

/* Prompts that begin alike (a chat template's system turn, a probe set's
 * instructions) compute that beginning once: member s takes positions
 * [0, shared) of its KV rows from the root donor, copied slot by slot as
 * each layer finishes; causal attention makes them the bits s would compute
 * itself. Every member keeps its last token, whose logits it needs. */
static void plan_shared_prefixes(baseline_run *b) {
    for (int s = 0; s < b->n; s++) {
        base_seq *q = &b->seqs[s];
        q->donor = s;
        q->shared = 0;
        /* a recurrent state cannot be copied at a length its donor has passed */
        for (int r = 0; r < s && !b->recurrent; r++) {
            if (b->seqs[r].donor != r) continue;
            int c = common_prefix(b->prompts[s], b->lens[s], b->prompts[r], b->lens[r]);
            if (c > b->lens[s] - 1) c = b->lens[s] - 1;
            if (c > q->shared) { q->shared = c; q->donor = r; }
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
            if ((b->seqs[s].donor != s) != (members == 1)) continue;
            for (int i = b->seqs[s].shared; i < b->lens[s]; i++) {
                int t = sb->n++;
                sb_set(b, sb, t, b->prompts[s][i], i, s);
                want[t] = i == b->lens[s] - 1;
                if (want[t]) last_row[s] = rows++;
            }
        }
        if (!members) n_root = sb->n;
    }
    return n_root;
}

/* Path position p over some rows of the prompt batch (rows->n of them from
 * row `first`). The baseline (want NULL) keeps every row's state at
 * boundary p + 1; a configuration keeps none, so with want (the rows whose
 * logits are taken) the path's last position leaves the other rows' hidden
 * states undefined. */
static int prompt_rows(const baseline_run *b, forward_ctx *f, step_batch *sb, const fwd_batch *rows, int first, int p) {
    float *x = sb->x + (size_t)first * b->m->hp.dim;
    if (!rows->n) return 0;
    if (!rows->want_logits) return prefix_run_keep(f, rows, x, p, p + 1, b->states, sb->row + first);
    if (p == forward_path(f)->n - 1) return forward_layers_for_output(f, rows, x, p);
    return forward_layers(f, rows, x, p, p + 1);
}

/* Path position p over the prompt batch: the roots, the members' copies of
 * the rows they share, then the members (whose attention reads those rows). */
static int prompt_layer(const baseline_run *b, forward_ctx *f, step_batch *sb, const bool *want, int n_root, int p) {
    fwd_batch roots = {n_root, sb->tok, sb->pos, sb->seq, want};
    fwd_batch members = {sb->n - n_root, sb->tok + n_root, sb->pos + n_root, sb->seq + n_root, want ? want + n_root : NULL};
    if (prompt_rows(b, f, sb, &roots, 0, p)) return -1;
    for (int s = 0; s < b->n; s++) {
        const base_seq *q = &b->seqs[s];
        if (q->donor != s && forward_copy_seq_slots(f, p, p + 1, q->donor, s, q->shared)) return -1;
    }
    return prompt_rows(b, f, sb, &members, n_root, p);
}

/* One path's run over the baseline's prompts, for generate_loop: the
 * baseline's own (baseline_prefill, baseline_step) or a configuration's
 * (config_prefill, config_step). */
typedef struct {
    baseline_run *b;
    forward_ctx *f;                 /* the path's context */
    int k;                          /* path positions [0, k) are the baseline's layers 0..k-1 */
    step_batch sb;
    bool *agrees;                   /* per sequence: all its tokens so far were the baseline's */
    reuse_stats stats;
} path_run;

static void path_run_init(path_run *r, baseline_run *b, forward_ctx *f, int k) {
    int total = 0;
    for (int s = 0; s < b->n; s++) total += b->lens[s];
    *r = (path_run){.b = b, .f = f, .k = k};
    sb_init(&r->sb, total > b->n ? total : b->n, b->m->hp.dim);
    r->agrees = xmalloc((size_t)b->n * sizeof *r->agrees);
    for (int s = 0; s < b->n; s++) r->agrees[s] = true;
}

static void path_run_free(path_run *r) {
    sb_free(&r->sb);
    free(r->agrees);
}

/* The prompts along the path from position k on (embeddings at k = 0, else
 * the baseline's states at k): the logits after each prompt into logits.
 * The baseline (k = 0, keep) keeps the states of every token at every layer. */
static int prompt_run(path_run *r, bool keep, float *logits, int *logit_row) {
    const baseline_run *b = r->b;
    step_batch *sb = &r->sb;
    int P = forward_path(r->f)->n, total = 0;
    for (int s = 0; s < b->n; s++) total += b->lens[s];
    bool *want = xmalloc((size_t)total * sizeof *want);
    int n_root = prompt_batch(b, sb, want, logit_row), rc = -1;
    fwd_batch fb = {sb->n, sb->tok, sb->pos, sb->seq, want};
    if (prefix_start(b->m, &fb, r->k, b->states, sb->row, sb->x)) goto done;
    for (int p = r->k; p < P; p++)
        if (prompt_layer(b, r->f, sb, keep ? NULL : want, n_root, p)) goto done;
    if (forward_output(r->f, &fb, sb->x, logits) < 0) goto done;
    r->stats.layer_tokens_done += (long long)(P - r->k) * sb->n;
    r->stats.layer_tokens_naive += (long long)P * total;
    rc = 0;
done:
    free(want);
    return rc;
}

/* gen_runner.prefill of the baseline and of a configuration: rq is the
 * baseline's own prompts. */
static int baseline_prefill(void *self, const gen_request *rq, float *logits, int *logit_row) {
    (void)rq;
    path_run *r = self;
    baseline_run *b = r->b;
    if (prompt_run(r, true, logits, logit_row)) return -1;
    if (b->recurrent && !(b->prompt_states = recurrent_snapshot_save(r->f, forward_path(r->f)->n))) return -1;
    return 0;
}

static int config_prefill(void *self, const gen_request *rq, float *logits, int *logit_row) {
    (void)rq;
    return prompt_run(self, false, logits, logit_row);
}

/* A baseline decode step: every layer, keeping each layer's output for the
 * configurations to start from, then the logits of all rows. */
static int baseline_step(void *self, const fwd_batch *rows, float *logits, int *logit_row) {
    path_run *r = self;
    baseline_run *b = r->b;
    int N = forward_path(r->f)->n;
    fwd_batch all = {rows->n, rows->tokens, rows->pos, rows->seq, NULL};
    for (int i = 0; i < rows->n; i++) {
        base_seq *q = &b->seqs[rows->seq[i]];
        r->sb.row[i] = q->row0 + rows->pos[i];
        q->fed++;
        logit_row[i] = i;
    }
    r->stats.layer_tokens_done += (long long)N * rows->n;
    r->stats.layer_tokens_naive += (long long)N * rows->n;
    if (prefix_start(b->m, &all, 0, NULL, NULL, r->sb.x) || prefix_run_keep(r->f, &all, r->sb.x, 0, N, b->states, r->sb.row))
        return -1;
    return forward_output(r->f, &all, r->sb.x, logits) < 0 ? -1 : 0;
}

/* A configuration's decode step, in one batch: the rows whose answer has
 * left the baseline's run layers 0..k-1 first, the others start at k from
 * the baseline's states, and from k on all of them go together, so layers
 * k.. and the output matrix stream their weights once a step. */
static int config_step(void *self, const fwd_batch *rows, float *logits, int *logit_row) {
    path_run *r = self;
    const baseline_run *b = r->b;
    step_batch *sb = &r->sb;
    int n = rows->n, n_full = 0, P = forward_path(r->f)->n, dim = b->m->hp.dim;
    for (int i = 0; i < n; i++) {
        int s = rows->seq[i], step = rows->pos[i] - b->lens[s];
        /* the token the baseline fed at this position has the baseline's states */
        r->agrees[s] = r->agrees[s] && r->k > 0 && !b->recurrent && step < b->seqs[s].fed &&
                       b->out[s].tokens[step] == rows->tokens[i];
        n_full += !r->agrees[s];
    }
    /* two queues, each in sequence order: the full rows at [0, n_full), the
     * reusing ones after them */
    int next_full = 0, next_reuse = n_full;
    for (int i = 0; i < n; i++) {
        int s = rows->seq[i], at = r->agrees[s] ? next_reuse++ : next_full++;
        sb_set(b, sb, at, rows->tokens[i], rows->pos[i], s);
        logit_row[i] = at;
    }
    sb->n = n;
    fwd_batch full = {n_full, sb->tok, sb->pos, sb->seq, NULL};
    fwd_batch reusing = {n - n_full, sb->tok + n_full, sb->pos + n_full, sb->seq + n_full, NULL};
    fwd_batch all = {n, sb->tok, sb->pos, sb->seq, NULL};
    r->stats.layer_tokens_done += (long long)(P - r->k) * reusing.n + (long long)P * n_full;
    r->stats.layer_tokens_naive += (long long)P * n;
    if (prefix_start(b->m, &full, 0, NULL, NULL, sb->x)) return -1;
    if (reusing.n && prefix_start(b->m, &reusing, r->k, b->states, sb->row + n_full, sb->x + (size_t)n_full * dim))
        return -1;
    if (n_full && r->k > 0 && forward_layers(r->f, &full, sb->x, 0, r->k)) return -1;
    if (forward_layers(r->f, &all, sb->x, r->k, P) || forward_output(r->f, &all, sb->x, logits) < 0) return -1;
    return 0;
}

/* The generation every path of a scan makes: greedy, n_predict new tokens. */
static int run_greedy(baseline_run *b, path_run *r, gen_runner *gr, gen_output *out) {
    gen_request rq = {b->n, (const int32_t *const *)b->prompts, b->lens, b->limits, NULL};
    sample_params sp = {0.0f, 1.0f, 0, b->n_predict};
    gr->self = r;
    gr->n_vocab = b->m->hp.n_vocab;
    return generate_loop(gr, b->tok, &rq, &sp, out, NULL, NULL);
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
    b->limits = xmalloc((size_t)n * sizeof *b->limits);
    b->prompts = xcalloc((size_t)n, sizeof *b->prompts);
    b->seqs = xcalloc((size_t)n, sizeof *b->seqs);
    int max_len = 0;
    long long n_rows = 0;
    for (int s = 0; s < n; s++) {
        if (lens[s] < 1) { rys_seterr("scan: prompt %d is empty", s); baseline_run_free(b); return NULL; }
        b->lens[s] = lens[s];
        b->limits[s] = n_predict;
        b->prompts[s] = xmalloc((size_t)lens[s] * sizeof(int32_t));
        memcpy(b->prompts[s], prompts[s], (size_t)lens[s] * sizeof(int32_t));
        b->seqs[s].row0 = n_rows;
        n_rows += lens[s] + n_predict;
        if (lens[s] > max_len) max_len = lens[s];
    }
    b->n_ctx = max_len + n_predict;
    int N = m->hp.n_layers;
    for (int l = 0; l < N; l++) b->recurrent |= m->layers[l].recurrent;
    plan_shared_prefixes(b);
    layer_path base;
    path_baseline(N, &base);
    b->f = forward_new(m, &base, n, b->n_ctx, pool);
    path_free(&base);
    if (!b->f) { baseline_run_free(b); return NULL; }
    int *every = xmalloc((size_t)N * sizeof *every);
    for (int l = 0; l < N; l++) every[l] = l + 1;
    b->states = state_store_new(m->hp.dim, every, N, n_rows);
    free(every);
    b->out = xcalloc((size_t)n, sizeof *b->out);
    path_run r;
    path_run_init(&r, b, b->f, 0);
    gen_runner gr = {.prefill = baseline_prefill, .step = baseline_step};
    int rc = b->states ? run_greedy(b, &r, &gr, b->out) : -1;
    b->stats = r.stats;
    path_run_free(&r);
    if (rc) { baseline_run_free(b); return NULL; }
    return b;
}

int baseline_run_config(baseline_run *b, const layer_path *path, gen_output *out, reuse_stats *st) {
    int k = path_shared_prefix(path);
    forward_ctx *f = forward_new(b->m, path, b->n, b->n_ctx, b->pool);
    if (!f) return -1;
    /* the rows that leave the baseline's answer run positions 0..k-1 in the
     * baseline's slots, over the positions after each prompt: saved here and
     * written back after, so the cache stays whole for the next configuration */
    kv_snapshot *generated = kv_snapshot_save(b->f, 0, k, b->n, b->lens, b->n_predict);
    int rc = generated ? 0 : -1;
    for (int p = 0; p < k && !rc; p++)
        if (!forward_slot_recurrent(f, p)) rc = forward_share_slot(f, p, b->f, p);
    if (!rc && b->prompt_states) rc = recurrent_snapshot_restore(b->prompt_states, f, k);
    path_run r;
    path_run_init(&r, b, f, k);
    gen_runner gr = {.prefill = config_prefill, .step = config_step};
    if (!rc) rc = run_greedy(b, &r, &gr, out);
    if (generated && kv_snapshot_restore(generated, b->f) && !rc) {
        gen_output_free(out, b->n);
        rc = -1;
    }
    if (st) *st = r.stats;
    kv_snapshot_free(generated);
    path_run_free(&r);
    forward_free(f);
    return rc;
}
