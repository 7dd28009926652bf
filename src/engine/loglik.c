/* loglik: see loglik.h. */
#include "engine/loglik.h"
#include "engine/forward.h"
#include "base/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SEQ 32              /* sequences (choices) per batch */
#define MAX_TOKENS 4096         /* tokens per batch */
#define MAX_ROWS 256            /* logit rows per batch (a row is n_vocab floats) */

double loglik_token(const float *lg, int n, int target, bool *is_max) {
    float mx = lg[0];
    int arg = 0;
    for (int i = 1; i < n; i++) if (lg[i] > mx) { mx = lg[i]; arg = i; }
    double sum = 0;
    for (int i = 0; i < n; i++) sum += exp((double)lg[i] - mx);
    *is_max = arg == target;
    return (double)lg[target] - mx - log(sum);
}

static int doc_tokens(const loglik_doc *d) {
    int t = d->n_ctx;
    for (int c = 0; c < d->n_choices; c++) t += d->n_cont[c];
    return t;
}

/* logit rows the continuation pass needs: all but each choice's last token */
static int doc_rows(const loglik_doc *d) {
    int r = 0;
    for (int c = 0; c < d->n_choices; c++) r += d->n_cont[c] - 1;
    return r;
}

int loglik_score(const model *m, const layer_path *path, pool *pool, const loglik_doc *docs, int n_docs,
                 loglik_result **results, loglik_progress cb, void *user) {
    int max_len = 1, cap = MAX_TOKENS, rows_cap = MAX_ROWS;
    for (int d = 0; d < n_docs; d++) {
        const loglik_doc *D = &docs[d];
        if (D->n_ctx < 1 || D->n_choices < 1 || D->n_choices > MAX_SEQ) {
            rys_seterr("document %d: needs a context and 1..%d choices", d, MAX_SEQ);
            return -1;
        }
        for (int c = 0; c < D->n_choices; c++) {
            if (D->n_cont[c] < 1) { rys_seterr("document %d: choice %d is empty", d, c); return -1; }
            if (D->n_ctx + D->n_cont[c] > max_len) max_len = D->n_ctx + D->n_cont[c];
        }
        if (doc_tokens(D) > cap) cap = doc_tokens(D);
        if (doc_rows(D) > rows_cap) rows_cap = doc_rows(D);
    }
    forward_ctx *f = forward_new(m, path, MAX_SEQ, max_len, pool);
    if (!f) return -1;
    int n_vocab = m->hp.n_vocab;
    int32_t *tok = xmalloc((size_t)cap * sizeof *tok), *pos = xmalloc((size_t)cap * sizeof *pos),
            *seq = xmalloc((size_t)cap * sizeof *seq);
    bool *want = xmalloc((size_t)cap * sizeof *want);
    float *logits = xmalloc((size_t)rows_cap * n_vocab * sizeof(float));
    int rc = -1;
    for (int d0 = 0; d0 < n_docs;) {
        /* as many documents as fit */
        int d1 = d0, n_seq = 0, n_tok = 0, n_rows = 0;
        while (d1 < n_docs && n_seq + docs[d1].n_choices <= MAX_SEQ &&
               (d1 == d0 || (n_tok + doc_tokens(&docs[d1]) <= cap && n_rows + doc_rows(&docs[d1]) <= rows_cap))) {
            n_seq += docs[d1].n_choices;
            n_tok += doc_tokens(&docs[d1]);
            n_rows += doc_rows(&docs[d1]);
            d1++;
        }
        /* 1: each context once, in the first sequence of its document */
        int n = 0, s0 = 0;
        for (int d = d0; d < d1; d++) {
            for (int i = 0; i < docs[d].n_ctx; i++) {
                tok[n] = docs[d].ctx[i]; pos[n] = i; seq[n] = s0; want[n] = i == docs[d].n_ctx - 1; n++;
            }
            s0 += docs[d].n_choices;
        }
        fwd_batch b = {n, tok, pos, seq, want};
        if (forward_batch(f, &b, logits) < 0) goto done;
        /* rows 0..d1-d0-1 hold each context's last logits; keep them apart */
        int n_first = d1 - d0;
        float *first = xmalloc((size_t)n_first * n_vocab * sizeof(float));
        memcpy(first, logits, (size_t)n_first * n_vocab * sizeof(float));
        /* 2: copy each context to its other choices, then all continuations */
        n = 0;
        s0 = 0;
        for (int d = d0; d < d1; d++) {
            for (int c = 0; c < docs[d].n_choices; c++) {
                if (c > 0 && forward_copy_seq(f, s0, s0 + c, docs[d].n_ctx)) { free(first); goto done; }
                for (int i = 0; i < docs[d].n_cont[c]; i++) {
                    tok[n] = docs[d].cont[c][i]; pos[n] = docs[d].n_ctx + i; seq[n] = s0 + c;
                    want[n] = i < docs[d].n_cont[c] - 1;
                    n++;
                }
            }
            s0 += docs[d].n_choices;
        }
        fwd_batch cb2 = {n, tok, pos, seq, want};
        if (forward_batch(f, &cb2, logits) < 0) { free(first); goto done; }
        int row = 0;
        for (int d = d0; d < d1; d++) {
            for (int c = 0; c < docs[d].n_choices; c++) {
                loglik_result *r = &results[d][c];
                const int32_t *ct = docs[d].cont[c];
                bool g;
                r->logprob = loglik_token(first + (size_t)(d - d0) * n_vocab, n_vocab, ct[0], &g);
                r->greedy = g;
                r->n_tokens = docs[d].n_cont[c];
                for (int i = 1; i < docs[d].n_cont[c]; i++) {
                    r->logprob += loglik_token(logits + (size_t)row++ * n_vocab, n_vocab, ct[i], &g);
                    r->greedy = r->greedy && g;
                }
            }
        }
        free(first);
        d0 = d1;
        if (cb) cb(user, d0);
    }
    rc = 0;
done:
    forward_free(f);
    free(tok); free(pos); free(seq); free(want); free(logits);
    return rc;
}
