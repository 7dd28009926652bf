/* validate: see validate.h.
 *
 * Shape of one batch (several documents, each with one or two groups of
 * requests: the choices after the context, and after the unconditional
 * context where the task has one):
 *   root  tokens most groups of the batch start with (the few-shot
 *         examples), run once in sequence 0 and kept there while the next
 *         batch has the same root;
 *   pre   each group's own shared tokens, in the group's first sequence
 *         after copying the root's KV entries;
 *   tail  each request's remaining tokens, in its own sequence after copying
 *         the group's KV entries.
 * A request's scored tokens are its last n_cont; the logits before the first
 * one come from the pre stage when the group's shared part ends there. */
#include "validate/validate.h"
#include "engine/forward.h"
#include "engine/loglik.h"
#include "engine/prefix.h"
#include "base/util.h"
#include "validate/validate_store.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SEQ 64              /* sequences per batch (KV cache rows) */
#define MAX_TOKENS 2048         /* pre + tail tokens per batch */
#define MAX_ROWS 128            /* tail logit rows per batch (a row is n_vocab floats) */
#define MIN_ROOT 16             /* shorter common prefixes are not worth a root */

/* ---- documents as token requests ------------------------------------------ */

typedef struct {
    int32_t *ids;               /* context + continuation */
    int n, n_cont;              /* the last n_cont tokens are scored */
    int doc, choice;
    bool uncond;
} vreq;

typedef struct {
    int first, n_req;           /* requests sharing the first n_shared tokens */
    int n_shared;
} vgroup;

typedef struct {
    vreq *req;
    int n_req;
    vgroup *grp;
    int n_grp;
    int *doc_grp;               /* first group of each document (n_docs + 1 entries) */
    int max_len;
} vtask;

static void vtask_free(vtask *t) {
    for (int r = 0; r < t->n_req; r++) free(t->req[r].ids);
    free(t->req); free(t->grp); free(t->doc_grp);
    memset(t, 0, sizeof *t);
}

static int add_request(vtask *t, const tokenizer *tok, const char *ctx, const char *cont, int doc, int choice, bool uncond) {
    int32_t *c_ids, *k_ids;
    int n_c, n_k;
    if (task_encode_pair(tok, ctx, cont, true, &c_ids, &n_c, &k_ids, &n_k)) return -1;
    vreq *r = &t->req[t->n_req++];
    r->n = n_c + n_k;
    r->n_cont = n_k;
    r->ids = xmalloc((size_t)r->n * sizeof *r->ids);
    memcpy(r->ids, c_ids, (size_t)n_c * sizeof *c_ids);
    memcpy(r->ids + n_c, k_ids, (size_t)n_k * sizeof *k_ids);
    free(c_ids);
    free(k_ids);
    r->doc = doc;
    r->choice = choice;
    r->uncond = uncond;
    if (r->n > t->max_len) t->max_len = r->n;
    return 0;
}

/* A request given as tokens (task_doc.ids): scored as it is, nothing encoded. */
static void add_request_ids(vtask *t, const task_doc *D, int doc) {
    vreq *r = &t->req[t->n_req++];
    r->n = D->n_ids;
    r->n_cont = D->n_cont_ids;
    r->ids = xmalloc((size_t)r->n * sizeof *r->ids);
    memcpy(r->ids, D->ids, (size_t)r->n * sizeof *r->ids);
    r->doc = doc;
    r->choice = 0;
    r->uncond = false;
    if (r->n > t->max_len) t->max_len = r->n;
}

/* Tokens all requests of the group share, never reaching into a
 * continuation: the pre stage then ends where some context ends. */
static void close_group(vtask *t, int first) {
    vgroup *g = &t->grp[t->n_grp++];
    g->first = first;
    g->n_req = t->n_req - first;
    const vreq *r0 = &t->req[first];
    int p = r0->n - r0->n_cont;
    for (int r = first + 1; r < t->n_req; r++) {
        const vreq *q = &t->req[r];
        int lim = q->n - q->n_cont < p ? q->n - q->n_cont : p, i = 0;
        while (i < lim && q->ids[i] == r0->ids[i]) i++;
        p = i;
    }
    g->n_shared = p;
}

static int vtask_build(vtask *t, const task_set *ts, const tokenizer *tok, int n_ctx_max) {
    memset(t, 0, sizeof *t);
    int n_req = 0;
    for (int d = 0; d < ts->n_docs; d++) {
        const task_doc *D = &ts->docs[d];
        if (D->n_choices < 1 || D->n_choices > MAX_SEQ / 2 - 1) {
            rys_seterr("%s:%ld: document %s has %d choices (1..%d supported)", ts->file, D->line, D->doc_id, D->n_choices,
                       MAX_SEQ / 2 - 1);
            return -1;
        }
        if (D->ids && (D->n_choices != 1 || D->uncond_context || D->n_cont_ids < 1 || D->n_cont_ids >= D->n_ids)) {
            rys_seterr("%s: document %s: a request as tokens needs one choice and a context", ts->file, D->doc_id);
            return -1;
        }
        if (D->label < 0 || D->label >= D->n_choices) {
            rys_seterr("%s:%ld: document %s: label %d is not one of its %d choices", ts->file, D->line, D->doc_id, D->label,
                       D->n_choices);
            return -1;
        }
        n_req += D->n_choices * (D->uncond_context ? 2 : 1);
    }
    t->req = xcalloc((size_t)n_req, sizeof *t->req);
    t->grp = xcalloc((size_t)2 * ts->n_docs, sizeof *t->grp);
    t->doc_grp = xcalloc((size_t)ts->n_docs + 1, sizeof *t->doc_grp);
    for (int d = 0; d < ts->n_docs; d++) {
        const task_doc *D = &ts->docs[d];
        t->doc_grp[d] = t->n_grp;
        for (int u = 0; u < (D->uncond_context ? 2 : 1); u++) {
            int first = t->n_req;
            if (D->ids) {
                add_request_ids(t, D, d);
                close_group(t, first);
                continue;
            }
            for (int c = 0; c < D->n_choices; c++)
                if (add_request(t, tok, u ? D->uncond_context : D->contexts[c], D->continuations[c], d, c, u)) {
                    rys_seterr("%s:%ld: document %s, choice %d: %s", ts->file, D->line, D->doc_id, c, rys_lasterr());
                    vtask_free(t);
                    return -1;
                }
            close_group(t, first);
        }
    }
    t->doc_grp[ts->n_docs] = t->n_grp;
    if (t->max_len > n_ctx_max) {
        rys_seterr("%s: a request of %d tokens exceeds the model's context of %d", ts->file, t->max_len, n_ctx_max);
        vtask_free(t);
        return -1;
    }
    return 0;
}

/* ---- stages and paths ------------------------------------------------------ */

typedef struct {
    int n, cap, dim;
    int32_t *tok, *pos, *seq;
    bool *want;
    float *x;                   /* [n][dim] */
    state_store *states;        /* row t: the baseline's output at each kept boundary */
} stage;

static void stage_reserve(stage *s, int n) {
    if (n <= s->cap) return;
    s->cap = n;
    s->tok = xrealloc(s->tok, (size_t)n * sizeof *s->tok);
    s->pos = xrealloc(s->pos, (size_t)n * sizeof *s->pos);
    s->seq = xrealloc(s->seq, (size_t)n * sizeof *s->seq);
    s->want = xrealloc(s->want, (size_t)n * sizeof *s->want);
    s->x = xrealloc(s->x, (size_t)n * s->dim * sizeof *s->x);
    if (s->states) state_store_reserve(s->states, n);
}

static void stage_push(stage *s, int32_t tok, int pos, int seq, bool want) {
    if (s->n == s->cap) stage_reserve(s, s->cap ? 2 * s->cap : 256);
    s->tok[s->n] = tok;
    s->pos[s->n] = pos;
    s->seq[s->n] = seq;
    s->want[s->n] = want;
    s->n++;
}

static void stage_free(stage *s) {
    free(s->tok); free(s->pos); free(s->seq); free(s->want); free(s->x);
    state_store_free(s->states);
}

typedef struct {
    forward_ctx *f;
    int k;                      /* first path position run; earlier ones come from the baseline's states */
    int32_t *root;              /* tokens held in sequence 0 */
    int n_root;
    long long layer_tokens;
} path_eval;

typedef struct {
    const model *m;
    int n_keep;
    int *keep;                  /* boundaries whose states the baseline keeps, ascending */
    stage root, pre, tail;
    float *logits;
    int rows_cap;
} evaluator;

/* Runs a stage's tokens along the path. The baseline (keep set) keeps its
 * states at the kept boundaries; a configuration starts from the states at
 * its k. */
static int run_stage(const evaluator *ev, path_eval *pe, stage *s, bool keep) {
    if (s->n == 0) return 0;
    int P = forward_path(pe->f)->n;
    fwd_batch fb = {s->n, s->tok, s->pos, s->seq, s->want};
    if (prefix_start(ev->m, &fb, pe->k, s->states, NULL, s->x)) return -1;
    int p = pe->k;
    if (keep) {
        int last_kept = ev->keep[ev->n_keep - 1];
        if (prefix_run_keep(pe->f, &fb, s->x, p, last_kept, s->states, NULL)) return -1;
        p = last_kept;
    }
    if (forward_layers_for_output(pe->f, &fb, s->x, p)) return -1; /* no states kept past here */
    pe->layer_tokens += (long long)(P - pe->k) * s->n;
    return forward_output(pe->f, &fb, s->x, ev->logits) < 0 ? -1 : 0;
}

/* One batch: groups [g0, g1) of the task, their sequences and stages. */
typedef struct {
    int g0, g1;
    const int32_t *root;
    int n_root;
    int *base;                  /* first sequence of each group */
    bool *uses_root;            /* per group: starts with the root (else its pre stage starts at 0) */
    double *lp;                 /* per request of the batch */
    bool *greedy;
} batch;

/* Scores one batch along one path: results in b->lp / b->greedy. */
static int eval_batch(evaluator *ev, path_eval *pe, const vtask *t, batch *b, bool keep) {
    int n_vocab = ev->m->hp.n_vocab, r0 = t->grp[b->g0].first;
    if (b->n_root > 0 && (pe->n_root != b->n_root || memcmp(pe->root, b->root, (size_t)b->n_root * sizeof *b->root))) {
        ev->root.n = 0;
        for (int i = 0; i < b->n_root; i++) stage_push(&ev->root, b->root[i], i, 0, false);
        if (run_stage(ev, pe, &ev->root, keep)) return -1;
        pe->root = xrealloc(pe->root, (size_t)b->n_root * sizeof *pe->root);
        memcpy(pe->root, b->root, (size_t)b->n_root * sizeof *pe->root);
        pe->n_root = b->n_root;
    }
    for (int g = b->g0; g < b->g1; g++)
        if (b->uses_root[g - b->g0] && forward_copy_seq(pe->f, 0, b->base[g - b->g0], b->n_root)) return -1;
    if (run_stage(ev, pe, &ev->pre, keep)) return -1;
    int pre_row = 0;
    for (int g = b->g0; g < b->g1; g++) {
        const vgroup *G = &t->grp[g];
        int base = b->base[g - b->g0];
        for (int r = 0; r < G->n_req; r++) {
            const vreq *q = &t->req[G->first + r];
            int k = G->first + r - r0;
            b->lp[k] = 0;
            b->greedy[k] = true;
            if (q->n - q->n_cont == G->n_shared) {
                bool g1;
                b->lp[k] = loglik_token(ev->logits + (size_t)pre_row * n_vocab, n_vocab, q->ids[G->n_shared], &g1);
                b->greedy[k] = g1;
            }
            /* a request with tokens of its own after the shared part runs them in its own sequence */
            if (r > 0 && q->n - 1 > G->n_shared && forward_copy_seq(pe->f, base, base + r, G->n_shared)) return -1;
        }
        pre_row += G->n_shared > 0;
    }
    if (run_stage(ev, pe, &ev->tail, keep)) return -1;
    int row = 0;
    for (int g = b->g0; g < b->g1; g++) {
        const vgroup *G = &t->grp[g];
        for (int r = 0; r < G->n_req; r++) {
            const vreq *q = &t->req[G->first + r];
            int k = G->first + r - r0;
            for (int i = G->n_shared; i < q->n - 1; i++) {
                if (i < q->n - q->n_cont - 1) continue;
                bool gi;
                b->lp[k] += loglik_token(ev->logits + (size_t)row++ * n_vocab, n_vocab, q->ids[i + 1], &gi);
                b->greedy[k] = b->greedy[k] && gi;
            }
        }
    }
    return 0;
}

static int group_rows(const vtask *t, const vgroup *G) {
    int rows = 0;
    for (int r = 0; r < G->n_req; r++) {
        const vreq *q = &t->req[G->first + r];
        int from = q->n - q->n_cont - 1 > G->n_shared ? q->n - q->n_cont - 1 : G->n_shared;
        rows += q->n - 1 - from;
    }
    return rows;
}

/* A request's last token is never run: nothing reads its logits or its KV. */
static int group_tokens(const vtask *t, const vgroup *G) {
    int n = 0;
    for (int r = 0; r < G->n_req; r++) n += t->req[G->first + r].n - 1 - G->n_shared;
    return n + G->n_shared;
}

/* Tokens two groups' shared parts have in common (each keeping one of its own). */
static int group_lcp(const vtask *t, const vgroup *a, const vgroup *b) {
    const int32_t *x = t->req[a->first].ids, *y = t->req[b->first].ids;
    int lim = (a->n_shared < b->n_shared ? a->n_shared : b->n_shared) - 1, i = 0;
    while (i < lim && x[i] == y[i]) i++;
    return i;
}

/* Plans the batch starting at group g0, not beyond group g_end: fills the
 * evaluator's pre and tail stages (the root stage is filled when a path
 * needs it). */
static void plan_batch(evaluator *ev, const vtask *t, int g0, int g_end, batch *b) {
    int g1 = g0, seqs = 1, tokens = 0, rows = 0;
    const vgroup *ref = NULL;   /* the first group with a long shared part: what the root will likely be */
    while (g1 < g_end) {
        const vgroup *grp = &t->grp[g1];
        int grp_tokens = group_tokens(t, grp), grp_rows = group_rows(t, grp);
        /* the budget counts what the batch runs: a likely root once */
        if (!ref && grp->n_shared > MIN_ROOT) ref = grp;
        else if (ref && group_lcp(t, ref, grp) >= MIN_ROOT) grp_tokens -= group_lcp(t, ref, grp);
        if (g1 > g0 && (seqs + grp->n_req > MAX_SEQ || tokens + grp_tokens > MAX_TOKENS || rows + grp_rows > ev->rows_cap))
            break;
        seqs += grp->n_req;
        tokens += grp_tokens;
        rows += grp_rows;
        g1++;
    }
    b->g0 = g0;
    b->g1 = g1;
    /* root: the prefix the group with the longest shared part has in common
     * with every group sharing at least MIN_ROOT tokens with it, leaving
     * each of them at least one token of its own (the unconditional groups
     * of a task, "Answer:", share nothing and go without) */
    int root_ref = g0;
    for (int g = g0 + 1; g < g1; g++)
        if (t->grp[g].n_shared > t->grp[root_ref].n_shared) root_ref = g;
    const int32_t *ids0 = t->req[t->grp[root_ref].first].ids;
    int root_len = t->grp[root_ref].n_shared - 1;
    for (int g = g0; g < g1; g++) {
        int common = group_lcp(t, &t->grp[root_ref], &t->grp[g]);
        if (common > root_len) common = root_len;
        b->uses_root[g - g0] = common >= MIN_ROOT;
        if (common >= MIN_ROOT) root_len = common;
    }
    /* no longer than what the neighbouring groups share with it too: a batch
     * of one long document (MMLU's 5-shot history passages) then roots at
     * the few-shot prefix, which the next batch finds cached, instead of at
     * its whole context, which no other batch can use */
    for (int g = g0 - 1; g <= g1; g += g1 - g0 + 1) {
        if (g < 0 || g >= t->n_grp) continue;
        int common = group_lcp(t, &t->grp[root_ref], &t->grp[g]);
        if (common >= MIN_ROOT && common < root_len) root_len = common;
    }
    if (root_len < MIN_ROOT) root_len = 0;
    for (int g = g0; g < g1; g++) b->uses_root[g - g0] = b->uses_root[g - g0] && root_len > 0;
    b->root = ids0;
    b->n_root = root_len;
    ev->pre.n = ev->tail.n = 0;
    int seq = 1;
    for (int g = g0; g < g1; g++) {
        const vgroup *grp = &t->grp[g];
        b->base[g - g0] = seq;
        const int32_t *ids = t->req[grp->first].ids;
        for (int i = b->uses_root[g - g0] ? root_len : 0; i < grp->n_shared; i++)
            stage_push(&ev->pre, ids[i], i, seq, i == grp->n_shared - 1);
        for (int r = 0; r < grp->n_req; r++) {
            const vreq *q = &t->req[grp->first + r];
            for (int i = grp->n_shared; i < q->n - 1; i++)
                stage_push(&ev->tail, q->ids[i], i, seq + r, i >= q->n - q->n_cont - 1);
        }
        seq += grp->n_req;
    }
}

/* ---- the run --------------------------------------------------------------- */

static void copy_results(const vtask *t, const batch *b, validate_doc *docs) {
    int r0 = t->grp[b->g0].first, r1 = t->grp[b->g1 - 1].first + t->grp[b->g1 - 1].n_req;
    for (int r = r0; r < r1; r++) {
        const vreq *q = &t->req[r];
        choice_score *c = &docs[q->doc].choices[q->choice];
        if (q->uncond) {
            c->uncond_logprob = b->lp[r - r0];
            c->uncond_n_tokens = q->n_cont;
            c->uncond_greedy = b->greedy[r - r0];
        } else {
            c->logprob = b->lp[r - r0];
            c->n_tokens = q->n_cont;
            c->greedy = b->greedy[r - r0];
        }
    }
}

static void init_docs(const task_set *ts, validate_doc *docs) {
    for (int d = 0; d < ts->n_docs; d++) {
        const task_doc *D = &ts->docs[d];
        docs[d].n_choices = D->n_choices;
        docs[d].choices = xcalloc((size_t)D->n_choices, sizeof *docs[d].choices);
        for (int c = 0; c < D->n_choices; c++) {
            docs[d].choices[c].n_chars = D->cont_chars[c];
            docs[d].choices[c].uncond_logprob = NAN;
        }
    }
}

static void dump_task(FILE *f, const task_set *ts, const vtask *t, const validate_config *cfg, const validate_doc *docs) {
    for (int r = 0; r < t->n_req; r++) {
        const vreq *q = &t->req[r];
        const choice_score *c = &docs[q->doc].choices[q->choice];
        fprintf(f, "{\"task\": \"%s:%s\", \"config\": \"%s\", \"doc\": %d, \"label\": %d, \"choice\": %d, \"uncond\": %s, "
                   "\"n_chars\": %d, \"ctx\": [", ts->name, ts->variant, cfg->spec, q->doc, ts->docs[q->doc].label, q->choice,
                q->uncond ? "true" : "false", c->n_chars);
        for (int i = 0; i < q->n - q->n_cont; i++) fprintf(f, "%s%d", i ? "," : "", q->ids[i]);
        fprintf(f, "], \"cont\": [");
        for (int i = q->n - q->n_cont; i < q->n; i++) fprintf(f, "%s%d", i > q->n - q->n_cont ? "," : "", q->ids[i]);
        fprintf(f, "], \"logprob\": %.17g, \"greedy\": %s}\n", q->uncond ? c->uncond_logprob : c->logprob,
                (q->uncond ? c->uncond_greedy : c->greedy) ? "true" : "false");
    }
}

typedef struct {
    progress pg;
    long long done, computed;
    double t0;
    bool stopped;               /* a stop was asked for: the run ends after the chunk in flight */
} run_progress;

static void progress_add(run_progress *rp, const validate_opts *o, int docs, bool computed) {
    rp->done += docs;
    if (computed) rp->computed += docs;
    if (!o->progress) return;
    char extra[64];
    double dt = rys_now() - rp->t0;
    snprintf(extra, sizeof extra, "%.2f docs/s", dt > 0 ? rp->computed / dt : 0.0);
    progress_update(&rp->pg, rp->done, extra);
}

/* Documents whose every group lies before group g. */
static int docs_before(const vtask *t, int g, int n_docs) { return g < t->n_grp ? t->req[t->grp[g].first].doc : n_docs; }

/* Per task: one evaluator, one forward context per path (kept across
 * batches so the root stays in sequence 0), the store's done flags. */
typedef struct {
    evaluator ev;
    path_eval *pe;
    bool **done, *need, *had_all;
    long long *cfg_id, task_id;
    double *secs;
    long long *lt0;
    batch b;
} task_run;

static void task_run_free(task_run *tr, int n_cfgs) {
    for (int c = 0; c < n_cfgs; c++) {
        forward_free(tr->pe[c].f);
        free(tr->pe[c].root);
        free(tr->done[c]);
    }
    free(tr->pe); free(tr->done); free(tr->need); free(tr->had_all); free(tr->cfg_id); free(tr->secs); free(tr->lt0);
    stage_free(&tr->ev.root); stage_free(&tr->ev.pre); stage_free(&tr->ev.tail);
    free(tr->ev.keep); free(tr->ev.logits);
    free(tr->b.base); free(tr->b.uses_root); free(tr->b.lp); free(tr->b.greedy);
}

static void task_run_init(task_run *tr, const model *m, const vtask *t, const validate_config *cfgs, int n_cfgs, bool reuse) {
    memset(tr, 0, sizeof *tr);
    tr->pe = xcalloc((size_t)n_cfgs, sizeof *tr->pe);
    tr->done = xcalloc((size_t)n_cfgs, sizeof *tr->done);
    tr->need = xcalloc((size_t)n_cfgs, sizeof *tr->need);
    tr->had_all = xcalloc((size_t)n_cfgs, sizeof *tr->had_all);
    tr->cfg_id = xcalloc((size_t)n_cfgs, sizeof *tr->cfg_id);
    tr->secs = xcalloc((size_t)n_cfgs, sizeof *tr->secs);
    tr->lt0 = xcalloc((size_t)n_cfgs, sizeof *tr->lt0);
    evaluator *ev = &tr->ev;
    ev->m = m;
    ev->keep = xcalloc((size_t)n_cfgs, sizeof *ev->keep);
    /* kept boundaries: every configuration's k, ascending, once each */
    for (int c = 1; c < n_cfgs && reuse; c++) {
        int k = path_shared_prefix(&cfgs[c].path), j = 0;
        if (k <= 0) continue;
        while (j < ev->n_keep && ev->keep[j] < k) j++;
        if (j < ev->n_keep && ev->keep[j] == k) continue;
        memmove(ev->keep + j + 1, ev->keep + j, (size_t)(ev->n_keep - j) * sizeof *ev->keep);
        ev->keep[j] = k;
        ev->n_keep++;
    }
    for (int c = 0; c < n_cfgs; c++) tr->pe[c].k = c > 0 && reuse ? path_shared_prefix(&cfgs[c].path) : 0;
    ev->rows_cap = MAX_ROWS;
    for (int g = 0; g < t->n_grp; g++)
        if (group_rows(t, &t->grp[g]) > ev->rows_cap) ev->rows_cap = group_rows(t, &t->grp[g]);
    /* rows: the tail's, or one per group from the pre stage */
    size_t rows = ev->rows_cap > MAX_SEQ ? (size_t)ev->rows_cap : MAX_SEQ;
    ev->logits = xmalloc(rows * m->hp.n_vocab * sizeof(float));
    stage *stages[] = {&ev->root, &ev->pre, &ev->tail};
    for (int i = 0; i < 3; i++) {
        stages[i]->dim = m->hp.dim;
        if (ev->n_keep) stages[i]->states = state_store_new(m->hp.dim, ev->keep, ev->n_keep, 0);
    }
    tr->b.base = xmalloc(MAX_SEQ * sizeof *tr->b.base);
    tr->b.uses_root = xmalloc(MAX_SEQ * sizeof *tr->b.uses_root);
    tr->b.lp = xmalloc(MAX_SEQ * sizeof *tr->b.lp);
    tr->b.greedy = xmalloc(MAX_SEQ * sizeof *tr->b.greedy);
}

/* Documents [d0, d1) along every path that lacks some of them. */
static int run_chunk(task_run *tr, const model *m, pool *pool, const task_set *ts, const vtask *t, const validate_config *cfgs,
                     int n_cfgs, const validate_opts *o, validate_task_result *res, run_progress *rp, int d0, int d1) {
    bool any = false;
    for (int c = 0; c < n_cfgs; c++) {
        tr->need[c] = false;
        tr->had_all[c] = true;
        for (int d = d0; d < d1; d++) tr->had_all[c] = tr->had_all[c] && tr->done[c][d];
        tr->need[c] = !tr->had_all[c];
        any = any || tr->need[c];
    }
    if (!any) return 0;
    /* the baseline runs whenever a configuration starts from its states */
    for (int c = 1; c < n_cfgs; c++) tr->need[0] = tr->need[0] || (tr->need[c] && tr->pe[c].k > 0);
    for (int c = 0; c < n_cfgs; c++) {
        tr->secs[c] = 0;
        tr->lt0[c] = tr->pe[c].layer_tokens;
        if (tr->need[c] && !tr->pe[c].f && !(tr->pe[c].f = forward_new(m, &cfgs[c].path, MAX_SEQ, t->max_len, pool))) return -1;
    }
    batch *b = &tr->b;
    for (int g = t->doc_grp[d0]; g < t->doc_grp[d1]; g = b->g1) {
        plan_batch(&tr->ev, t, g, t->doc_grp[d1], b);
        int docs_in = docs_before(t, b->g1, ts->n_docs) - docs_before(t, b->g0, ts->n_docs);
        for (int c = 0; c < n_cfgs; c++) {
            if (!tr->need[c]) continue;
            double t0 = rys_now();
            if (eval_batch(&tr->ev, &tr->pe[c], t, b, c == 0 && tr->ev.n_keep > 0)) return -1;
            copy_results(t, b, res[c].docs);
            tr->secs[c] += rys_now() - t0;
            /* a baseline rerun only for its states scores documents counted when they were loaded */
            if (!tr->had_all[c]) progress_add(rp, o, docs_in, true);
        }
    }
    for (int c = 0; c < n_cfgs; c++) {
        if (!tr->need[c]) continue;
        long long naive = 0; /* the harness runs each request but its last token */
        for (int g = t->doc_grp[d0]; g < t->doc_grp[d1]; g++)
            for (int r = 0; r < t->grp[g].n_req; r++) naive += t->req[t->grp[g].first + r].n - 1;
        validate_chunk_stats st = {tr->secs[c], tr->pe[c].layer_tokens - tr->lt0[c], naive * forward_path(tr->pe[c].f)->n};
        res[c].seconds += st.seconds;
        res[c].layer_tokens_done += st.layer_tokens_done;
        res[c].layer_tokens_naive += st.layer_tokens_naive;
        res[c].docs_run += d1 - d0;
        /* a baseline rerun only for its states computed what is stored already */
        if (tr->had_all[c]) continue;
        if (o->store && validate_store_save(o->store, tr->cfg_id[c], tr->task_id, ts, d0, d1, res[c].docs, &st)) return -1;
        for (int d = d0; d < d1; d++) tr->done[c][d] = true;
    }
    return 0;
}

static int run_task(const model *m, pool *pool, const task_set *ts, const vtask *t, const validate_config *cfgs, int n_cfgs,
                    const validate_opts *o, validate_task_result *res, run_progress *rp) {
    task_run tr;
    task_run_init(&tr, m, t, cfgs, n_cfgs, o->reuse);
    int rc = -1;
    for (int c = 0; c < n_cfgs; c++) {
        tr.done[c] = xcalloc((size_t)ts->n_docs + 1, sizeof **tr.done);
        init_docs(ts, res[c].docs);
    }
    if (o->store) {
        if (validate_store_task(o->store, ts, &tr.task_id)) goto out;
        for (int c = 0; c < n_cfgs; c++) {
            if (validate_store_config(o->store, &cfgs[c], &tr.cfg_id[c])) goto out;
            int n = validate_store_load(o->store, tr.cfg_id[c], tr.task_id, ts, res[c].docs, tr.done[c]);
            if (n < 0) goto out;
            progress_add(rp, o, n, false);
        }
    }
    for (int d0 = 0; d0 < ts->n_docs; d0 += VALIDATE_CHUNK) {
        if (rys_stop_requested()) {     /* the safe point: every earlier chunk is committed */
            rp->stopped = true;
            rc = 0;
            goto out;
        }
        int d1 = d0 + VALIDATE_CHUNK < ts->n_docs ? d0 + VALIDATE_CHUNK : ts->n_docs;
        if (run_chunk(&tr, m, pool, ts, t, cfgs, n_cfgs, o, res, rp, d0, d1)) goto out;
    }
    if (o->dump)
        for (int c = 0; c < n_cfgs; c++) dump_task(o->dump, ts, t, &cfgs[c], res[c].docs);
    rc = 0;
out:
    task_run_free(&tr, n_cfgs);
    return rc;
}

int validate_run(const model *m, const tokenizer *tok, pool *pool, const task_set *tasks, int n_tasks,
                 const validate_config *cfgs, int n_cfgs, const validate_opts *o, validate_results *out) {
    memset(out, 0, sizeof *out);
    /* without reuse or a store nothing depends on cfgs[0] being the baseline: `rys eval` scores one path alone */
    bool base0 = n_cfgs >= 1 && path_shared_prefix(&cfgs[0].path) == m->hp.n_layers && cfgs[0].path.n == m->hp.n_layers;
    if (n_cfgs < 1 || (!base0 && (o->reuse || o->store))) {
        rys_seterr("validate: the first path must be the baseline");
        return -1;
    }
    out->n_cfgs = n_cfgs;
    out->n_tasks = n_tasks;
    out->r = xcalloc((size_t)n_cfgs * n_tasks, sizeof *out->r);
    for (int c = 0; c < n_cfgs; c++)
        for (int k = 0; k < n_tasks; k++) {
            validate_task_result *r = &out->r[c * n_tasks + k];
            r->n_docs = tasks[k].n_docs;
            r->docs = xcalloc((size_t)tasks[k].n_docs, sizeof *r->docs);
        }
    run_progress rp = {0};
    long long total = 0;
    for (int k = 0; k < n_tasks; k++) total += (long long)tasks[k].n_docs * n_cfgs;
    if (o->progress) progress_start(&rp.pg, "validate", total);
    rp.t0 = rys_now();
    validate_task_result *per = xcalloc((size_t)n_cfgs, sizeof *per);
    int rc = 0;
    for (int k = 0; k < n_tasks && !rc && !rp.stopped; k++) {
        vtask t;
        if (vtask_build(&t, &tasks[k], tok, m->hp.n_ctx_train > 0 ? m->hp.n_ctx_train : 1 << 30)) { rc = -1; break; }
        for (int c = 0; c < n_cfgs; c++) per[c] = out->r[c * n_tasks + k];
        rc = run_task(m, pool, &tasks[k], &t, cfgs, n_cfgs, o, per, &rp);
        for (int c = 0; c < n_cfgs; c++) out->r[c * n_tasks + k] = per[c];
        vtask_free(&t);
    }
    free(per);
    if (o->progress) progress_finish(&rp.pg);
    out->stopped = rp.stopped;
    out->docs_done = rp.done;
    out->docs_total = total;
    if (rc) validate_results_free(out);
    return rc;
}

void validate_results_free(validate_results *r) {
    if (!r->r) return;
    for (int k = 0; k < r->n_cfgs * r->n_tasks; k++) {
        for (int d = 0; d < r->r[k].n_docs; d++) free(r->r[k].docs[d].choices);
        free(r->r[k].docs);
    }
    free(r->r);
    memset(r, 0, sizeof *r);
}

/* ---- the table --------------------------------------------------------------- */

int validate_correct(const task_set *ts, const validate_task_result *r, metric_kind k, uint8_t *correct) {
    for (int d = 0; d < r->n_docs; d++) {
        int p = metric_predict(k, r->docs[d].choices, r->docs[d].n_choices);
        if (p < 0) {
            rys_seterr("%s: %s cannot be computed for document %s", ts->file, metric_name(k), ts->docs[d].doc_id);
            return -1;
        }
        correct[d] = p == ts->docs[d].label;
    }
    return 0;
}

int validate_subjects(const task_set *ts, const validate_task_result *r, metric_kind k, const char ***names, double **acc,
                      int **n_docs) {
    int n = 0;
    *names = NULL;
    *acc = NULL;
    *n_docs = NULL;
    for (int d = 0; d < ts->n_docs; d++) {
        const char *s = ts->docs[d].subject;
        if (!s) continue;
        int i = 0;
        while (i < n && strcmp((*names)[i], s)) i++;
        if (i == n) {
            *names = xrealloc(*names, (size_t)(n + 1) * sizeof **names);
            *acc = xrealloc(*acc, (size_t)(n + 1) * sizeof **acc);
            *n_docs = xrealloc(*n_docs, (size_t)(n + 1) * sizeof **n_docs);
            (*names)[n] = s;
            (*acc)[n] = 0;
            (*n_docs)[n] = 0;
            n++;
        }
        int p = metric_predict(k, r->docs[d].choices, r->docs[d].n_choices);
        (*acc)[i] += p == ts->docs[d].label;
        (*n_docs)[i]++;
    }
    for (int i = 0; i < n; i++) (*acc)[i] /= (*n_docs)[i];
    return n;
}

int validate_summarize(const task_set *tasks, int n_tasks, const validate_results *r, int cfg, validate_row *rows) {
    paired_task *pt = xcalloc((size_t)n_tasks, sizeof *pt);
    uint8_t **cb = xcalloc((size_t)n_tasks, sizeof *cb), **cc = xcalloc((size_t)n_tasks, sizeof *cc);
    double *lo = xmalloc((size_t)(n_tasks + 1) * sizeof *lo), *hi = xmalloc((size_t)(n_tasks + 1) * sizeof *hi);
    int rc = -1;
    validate_row *avg = &rows[n_tasks];
    memset(avg, 0, sizeof *avg);
    avg->macro = NAN;
    avg->p = NAN;
    double var = 0;
    for (int k = 0; k < n_tasks; k++) {
        const task_set *ts = &tasks[k];
        validate_row *row = &rows[k];
        memset(row, 0, sizeof *row);
        int metric = metric_from_name(ts->primary_metric);
        if (metric < 0) { rys_seterr("%s: unknown primary metric '%s'", ts->file, ts->primary_metric); goto out; }
        row->metric = (metric_kind)metric;
        row->n = ts->n_docs;
        cb[k] = xmalloc((size_t)(ts->n_docs ? ts->n_docs : 1));
        cc[k] = xmalloc((size_t)(ts->n_docs ? ts->n_docs : 1));
        if (validate_correct(ts, &r->r[k], row->metric, cb[k]) ||
            validate_correct(ts, &r->r[cfg * n_tasks + k], row->metric, cc[k])) goto out;
        accuracy_stderr(cc[k], ts->n_docs, &row->value, &row->stderr_);
        double base_acc, base_se;
        accuracy_stderr(cb[k], ts->n_docs, &base_acc, &base_se);
        row->delta = row->value - base_acc;
        for (int d = 0; d < ts->n_docs; d++) {
            row->only_base += cb[k][d] && !cc[k][d];
            row->only_cfg += cc[k][d] && !cb[k][d];
        }
        row->p = mcnemar_exact_p(row->only_base, row->only_cfg);
        const char **names;
        double *acc;
        int *nd;
        int ns = validate_subjects(ts, &r->r[cfg * n_tasks + k], row->metric, &names, &acc, &nd);
        row->macro = NAN;
        if (ns > 1) {
            row->macro = 0;
            for (int i = 0; i < ns; i++) row->macro += acc[i] / ns;
        }
        free(names); free(acc); free(nd);
        pt[k] = (paired_task){ts->name, cb[k], cc[k], ts->n_docs};
        avg->n += ts->n_docs;
        avg->value += row->value / n_tasks;
        avg->delta += row->delta / n_tasks;
        avg->only_base += row->only_base;
        avg->only_cfg += row->only_cfg;
        var += row->stderr_ * row->stderr_;
    }
    avg->stderr_ = sqrt(var) / n_tasks;
    if (paired_bootstrap_ci(pt, n_tasks, BOOTSTRAP_REPS, BOOTSTRAP_SEED, lo, hi)) goto out;
    for (int k = 0; k <= n_tasks; k++) {
        rows[k].ci_lo = lo[k];
        rows[k].ci_hi = hi[k];
    }
    rc = 0;
out:
    for (int k = 0; k < n_tasks; k++) { free(cb[k]); free(cc[k]); }
    free(cb); free(cc); free(pt); free(lo); free(hi);
    return rc;
}
