/* eqlogit: see eqlogit.h. Items run in groups of GROUP sequences. For each
 * emotion line one batch feeds every item's new context tokens (what its
 * sequence already holds is kept), then EQLOGIT_VALUES rounds feed each
 * item's score continuations in lexicographic token order: continuations
 * sharing tokens ("1" and "1" "0") share those positions, so every node of the
 * continuations' prefix tree is computed exactly once, and its logits serve
 * every continuation passing through it. */
#include "scan/eqlogit.h"
#include "engine/forward.h"
#include "base/util.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GROUP 16                    /* sequences per forward context */
#define SLACK 32                    /* positions beyond the longest answer we foresee */

/* The answer format every EQ-Bench prompt asks for; the first line is fixed,
 * then one "Name: score" line per emotion. */
static const char HEADER[] = "First pass scores:\n";

typedef struct {
    const eqlogit_item *item;
    eqlogit_result *res;
    char *answer;
    int32_t *kv;                    /* the tokens sequence `seq` holds, by position */
    int n_kv;
    int order[EQLOGIT_VALUES];      /* values in lexicographic order of their tokens */
    double lp[EQLOGIT_VALUES];      /* log P(value's tokens, then a non-digit) */
} item_state;

static char *concat(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    char *r = xmalloc(na + nb + 1);
    memcpy(r, a, na);
    memcpy(r + na, b, nb + 1);
    return r;
}

static int common_prefix(const int32_t *a, int na, const int32_t *b, int nb) {
    int k = 0;
    while (k < na && k < nb && a[k] == b[k]) k++;
    return k;
}

/* Lexicographic order of token strings; a prefix sorts before its extensions. */
static int compare_tokens(const int32_t *a, int na, const int32_t *b, int nb) {
    int c = common_prefix(a, na, b, nb);
    if (c < na && c < nb) return a[c] < b[c] ? -1 : 1;
    return na - nb;
}

static int tokenize(const tokenizer *tok, const char *text, int32_t **out, int *n) {
    size_t len;
    if (tokenizer_encode(tok, text, strlen(text), true, true, out, &len)) return -1;
    *n = (int)len;
    return 0;
}

/* Tokenizes prompt + answer + "Name: " + v for every v; the tokens all
 * eleven share are the context, the rest each value's continuation. Whole
 * texts are tokenized (not pieces glued together), so every id is the one
 * the model would see for that text. */
static int build_line(const tokenizer *tok, item_state *st, int e) {
    eqlogit_line *L = &st->res->line[e];
    char *base = concat(st->item->prompt, st->answer);
    size_t nb = strlen(base), nn = strlen(st->item->emotion[e]);
    char *text = xmalloc(nb + nn + 8);
    int32_t *full[EQLOGIT_VALUES] = {0};
    int n_full[EQLOGIT_VALUES], rc = -1;
    for (int v = 0; v < EQLOGIT_VALUES; v++) {
        snprintf(text, nb + nn + 8, "%s%s: %d", base, st->item->emotion[e], v);
        if (tokenize(tok, text, &full[v], &n_full[v])) goto done;
    }
    int lcp = n_full[0];
    for (int v = 1; v < EQLOGIT_VALUES; v++) lcp = common_prefix(full[0], lcp, full[v], n_full[v]);
    for (int v = 0; v < EQLOGIT_VALUES; v++)
        if (n_full[v] == lcp || lcp == 0) {
            rys_seterr("eq logit: emotion \"%s\": the score %d has no tokens of its own", st->item->emotion[e], v);
            goto done;
        }
    L->n_ctx = lcp;
    L->ctx = xmalloc((size_t)lcp * sizeof(int32_t));
    memcpy(L->ctx, full[0], (size_t)lcp * sizeof(int32_t));
    for (int v = 0; v < EQLOGIT_VALUES; v++) {
        L->n_value[v] = n_full[v] - lcp;
        L->value[v] = xmalloc((size_t)L->n_value[v] * sizeof(int32_t));
        memcpy(L->value[v], full[v] + lcp, (size_t)L->n_value[v] * sizeof(int32_t));
    }
    for (int k = 0; k < EQLOGIT_VALUES; k++) {   /* insertion sort of 11 */
        int at = k;
        for (; at > 0; at--) {
            int u = st->order[at - 1];
            if (compare_tokens(L->value[u], L->n_value[u], L->value[k], L->n_value[k]) < 0) break;
            st->order[at] = u;
        }
        st->order[at] = k;
        st->lp[k] = 0;
    }
    rc = 0;
done:
    for (int v = 0; v < EQLOGIT_VALUES; v++) free(full[v]);
    free(text);
    free(base);
    return rc;
}

typedef struct {
    double lse;                     /* log of the softmax denominator */
    double log_end;                 /* log P(next token does not start with a digit) */
    const float *logits;
} row_stats;

static row_stats row_of(const float *lg, int n_vocab, const bool *digit) {
    float mx = lg[0];
    for (int i = 1; i < n_vocab; i++) if (lg[i] > mx) mx = lg[i];
    /* the two masses are summed apart so that P(end) keeps its precision
     * when nearly everything goes to digits (after "1", most goes to "0") */
    double s_digit = 0, s_end = 0;
    for (int i = 0; i < n_vocab; i++) {
        double x = exp((double)lg[i] - mx);
        if (digit[i]) s_digit += x;
        else s_end += x;
    }
    row_stats r = {mx + log(s_digit + s_end), log(s_end) - log(s_digit + s_end), lg};
    return r;
}

/* The logits after `depth` tokens of value ref's continuation: every value
 * whose continuation starts with the same depth tokens takes its next
 * token's log-probability, or, if it ends here, that of the number ending. */
static void accumulate(item_state *st, const eqlogit_line *L, int ref, int depth, const row_stats *r) {
    for (int v = 0; v < EQLOGIT_VALUES; v++) {
        if (common_prefix(L->value[v], L->n_value[v], L->value[ref], L->n_value[ref]) < depth) continue;
        if (L->n_value[v] > depth) st->lp[v] += (double)r->logits[L->value[v][depth]] - r->lse;
        else if (L->n_value[v] == depth) st->lp[v] += r->log_end;
    }
}

static void set_kv(item_state *st, const int32_t *a, int na, const int32_t *b, int nb) {
    if (na) memcpy(st->kv, a, (size_t)na * sizeof(int32_t));   /* a may be NULL when empty */
    if (nb) memcpy(st->kv + na, b, (size_t)nb * sizeof(int32_t));
    st->n_kv = na + nb;
}

typedef struct {
    int32_t *tok, *pos, *seq;
    bool *want;
    int n, cap;
} batch_buf;

static void push(batch_buf *b, int32_t tok, int32_t pos, int32_t seq, bool want) {
    if (b->n == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 1024;
        b->tok = xrealloc(b->tok, (size_t)b->cap * sizeof *b->tok);
        b->pos = xrealloc(b->pos, (size_t)b->cap * sizeof *b->pos);
        b->seq = xrealloc(b->seq, (size_t)b->cap * sizeof *b->seq);
        b->want = xrealloc(b->want, (size_t)b->cap * sizeof *b->want);
    }
    b->tok[b->n] = tok; b->pos[b->n] = pos; b->seq[b->n] = seq; b->want[b->n] = want;
    b->n++;
}

/* One emotion line for the items of a group: context, then the rounds. */
static int run_line(forward_ctx *f, const tokenizer *tok, item_state *sts, int n, int e, int n_pos, const bool *digit,
                    int n_vocab, batch_buf *bb, float **logits, int *logit_rows) {
    int max_cont = 1;
    for (int i = 0; i < n; i++) {
        if (build_line(tok, &sts[i], e)) return -1;
        const eqlogit_line *L = &sts[i].res->line[e];
        for (int v = 0; v < EQLOGIT_VALUES; v++) {
            if (L->n_ctx + L->n_value[v] > n_pos) {
                rys_seterr("eq logit: the answer outgrew its %d positions", n_pos);
                return -1;
            }
            if (L->n_value[v] > max_cont) max_cont = L->n_value[v];
        }
    }
    if (n * max_cont > *logit_rows) {
        *logit_rows = n * max_cont;
        *logits = xrealloc(*logits, (size_t)*logit_rows * n_vocab * sizeof(float));
    }
    /* the context: from where each sequence's held tokens stop matching, and
     * at least its last token, whose logits are the first row */
    bb->n = 0;
    for (int i = 0; i < n; i++) {
        const eqlogit_line *L = &sts[i].res->line[e];
        int from = common_prefix(sts[i].kv, sts[i].n_kv, L->ctx, L->n_ctx);
        if (from >= L->n_ctx) from = L->n_ctx - 1;
        for (int p = from; p < L->n_ctx; p++) push(bb, L->ctx[p], p, i, p == L->n_ctx - 1);
        sts[i].res->tokens_run += L->n_ctx - from;
        set_kv(&sts[i], L->ctx, L->n_ctx, NULL, 0);
    }
    fwd_batch b = {bb->n, bb->tok, bb->pos, bb->seq, bb->want};
    if (forward_batch(f, &b, *logits) < 0) return -1;
    for (int i = 0; i < n; i++) {
        row_stats r = row_of(*logits + (size_t)i * n_vocab, n_vocab, digit);
        accumulate(&sts[i], &sts[i].res->line[e], 0, 0, &r);
    }
    for (int round = 0; round < EQLOGIT_VALUES; round++) {
        bb->n = 0;
        int *first = xmalloc((size_t)n * sizeof *first);
        for (int i = 0; i < n; i++) {
            const eqlogit_line *L = &sts[i].res->line[e];
            int v = sts[i].order[round], s = 0;
            if (round > 0) {
                int u = sts[i].order[round - 1];
                s = common_prefix(L->value[u], L->n_value[u], L->value[v], L->n_value[v]);
            }
            first[i] = s;
            for (int d = s; d < L->n_value[v]; d++) push(bb, L->value[v][d], L->n_ctx + d, i, true);
            sts[i].res->tokens_run += L->n_value[v] - s;
            set_kv(&sts[i], L->ctx, L->n_ctx, L->value[v], L->n_value[v]);
        }
        fwd_batch rb = {bb->n, bb->tok, bb->pos, bb->seq, bb->want};
        if (forward_batch(f, &rb, *logits) < 0) { free(first); return -1; }
        int row = 0;
        for (int i = 0; i < n; i++) {
            const eqlogit_line *L = &sts[i].res->line[e];
            int v = sts[i].order[round];
            for (int d = first[i]; d < L->n_value[v]; d++) {
                row_stats r = row_of(*logits + (size_t)row++ * n_vocab, n_vocab, digit);
                accumulate(&sts[i], L, v, d + 1, &r);
            }
        }
        free(first);
    }
    for (int i = 0; i < n; i++) {
        item_state *st = &sts[i];
        eqlogit_result *res = st->res;
        double mx = -INFINITY;
        for (int v = 0; v < EQLOGIT_VALUES; v++) if (st->lp[v] > mx) mx = st->lp[v];
        if (!isfinite(mx)) {
            rys_seterr("eq logit: emotion \"%s\": no score has a probability", st->item->emotion[e]);
            return -1;
        }
        double sum = 0;
        for (int v = 0; v < EQLOGIT_VALUES; v++) sum += res->probs[e][v] = exp(st->lp[v] - mx);
        int best = 0;
        for (int v = 0; v < EQLOGIT_VALUES; v++) {
            res->probs[e][v] /= sum;
            if (res->probs[e][v] > res->probs[e][best]) best = v;
        }
        res->mass[e] = exp(mx) * sum;
        res->choice[e] = best;
        char line[256];
        snprintf(line, sizeof line, "%s: %d\n", st->item->emotion[e], best);
        char *a = concat(st->answer, line);
        free(st->answer);
        st->answer = a;
    }
    return 0;
}

/* A bound on the positions an item can need: its answer with "10" for every
 * score, plus slack for tokenizations that spell other numbers longer. */
static int positions_needed(const tokenizer *tok, const eqlogit_item *it, int *out) {
    char *text = concat(it->prompt, HEADER);
    for (int e = 0; e < 4; e++) {
        char *line = concat(it->emotion[e], ": 10\n"), *t = concat(text, line);
        free(line);
        free(text);
        text = t;
    }
    int32_t *ids;
    int n;
    int rc = tokenize(tok, text, &ids, &n);
    free(text);
    if (rc) return -1;
    free(ids);
    *out = n + SLACK;
    return 0;
}

static int run_group(const model *m, const tokenizer *tok, const layer_path *path, pool *pool, const eqlogit_item *items,
                     int n, eqlogit_result *out, const bool *digit) {
    int n_pos = 0, rc = -1, n_vocab = m->hp.n_vocab, logit_rows = 0;
    for (int i = 0; i < n; i++) {
        int need;
        if (positions_needed(tok, &items[i], &need)) return -1;
        if (need > n_pos) n_pos = need;
    }
    forward_ctx *f = forward_new(m, path, n, n_pos, pool);
    if (!f) return -1;
    item_state *sts = xcalloc((size_t)n, sizeof *sts);
    for (int i = 0; i < n; i++) {
        sts[i].item = &items[i];
        sts[i].res = &out[i];
        sts[i].answer = xstrdup(HEADER);
        sts[i].kv = xmalloc((size_t)n_pos * sizeof(int32_t));
    }
    batch_buf bb = {0};
    float *logits = NULL;
    for (int e = 0; e < 4; e++)
        if (run_line(f, tok, sts, n, e, n_pos, digit, n_vocab, &bb, &logits, &logit_rows)) goto done;
    for (int i = 0; i < n; i++) {
        out[i].answer = sts[i].answer;
        sts[i].answer = NULL;
    }
    rc = 0;
done:
    for (int i = 0; i < n; i++) { free(sts[i].answer); free(sts[i].kv); }
    free(sts);
    free(bb.tok); free(bb.pos); free(bb.seq); free(bb.want);
    free(logits);
    forward_free(f);
    return rc;
}

int eqlogit_run(const model *m, const tokenizer *tok, const layer_path *path, pool *pool, const eqlogit_item *items,
                int n, eqlogit_result *out) {
    memset(out, 0, (size_t)n * sizeof *out);
    int n_vocab = m->hp.n_vocab, n_tok = tokenizer_n_vocab(tok);
    bool *digit = xcalloc((size_t)n_vocab, sizeof *digit);
    for (int id = 0; id < n_vocab && id < n_tok; id++) {
        size_t len;
        const char *s = tokenizer_token_bytes(tok, id, &len);
        digit[id] = len > 0 && s[0] >= '0' && s[0] <= '9';
    }
    int rc = 0;
    for (int g = 0; g < n && !rc; g += GROUP)
        rc = run_group(m, tok, path, pool, items + g, n - g < GROUP ? n - g : GROUP, out + g, digit);
    free(digit);
    if (rc) eqlogit_result_free(out, n);
    return rc;
}

void eqlogit_result_free(eqlogit_result *r, int n) {
    for (int i = 0; i < n; i++) {
        free(r[i].answer);
        for (int e = 0; e < 4; e++) {
            free(r[i].line[e].ctx);
            for (int v = 0; v < EQLOGIT_VALUES; v++) free(r[i].line[e].value[v]);
        }
        memset(&r[i], 0, sizeof r[i]);
    }
}

static char *dump(json_t *o) {
    char *txt = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
    json_decref(o);
    char *r = xstrdup(txt);
    free(txt);
    return r;
}

static json_t *ids_json(const int32_t *ids, int n) {
    json_t *a = json_array();
    for (int k = 0; k < n; k++) json_array_append_new(a, json_integer(ids[k]));
    return a;
}

char *eqlogit_result_json(const eqlogit_result *r, const double expected[4], double score) {
    json_t *probs = json_array(), *ev = json_array(), *ch = json_array(), *mass = json_array();
    for (int e = 0; e < 4; e++) {
        json_t *row = json_array();
        for (int v = 0; v < EQLOGIT_VALUES; v++) json_array_append_new(row, json_real(r->probs[e][v]));
        json_array_append_new(probs, row);
        json_array_append_new(ev, json_real(expected[e]));
        json_array_append_new(ch, json_integer(r->choice[e]));
        json_array_append_new(mass, json_real(r->mass[e]));
    }
    return dump(json_pack("{s:o, s:o, s:o, s:o, s:f}", "probs", probs, "expected", ev, "choices", ch, "mass", mass,
                          "score", score));
}

char *eqlogit_trace_json(const eqlogit_result *r) {
    json_t *lines = json_array();
    for (int e = 0; e < 4; e++) {
        const eqlogit_line *L = &r->line[e];
        int from = e ? common_prefix(r->line[e - 1].ctx, r->line[e - 1].n_ctx, L->ctx, L->n_ctx) : 0;
        json_t *vals = json_array();
        for (int v = 0; v < EQLOGIT_VALUES; v++) json_array_append_new(vals, ids_json(L->value[v], L->n_value[v]));
        json_array_append_new(lines, json_pack("{s:i, s:o, s:o}", "context_from", from, "context_tail",
                                               ids_json(L->ctx + from, L->n_ctx - from), "values", vals));
    }
    return dump(json_pack("{s:o}", "lines", lines));
}
