/* tokenizer_spm: SentencePiece-style segmentation (GGUF model "llama" with
 * scores, e.g. Gemma 3), the way llama.cpp's llm_tokenizer_spm does it.
 *
 * Start from one symbol per UTF-8 character; repeatedly join the adjacent
 * pair whose concatenation is a vocabulary token with the highest score
 * (leftmost on ties); a final symbol that is not a token (an unknown
 * character) falls back to its bytes as <0xXX> tokens. A heap keeps it
 * O(n log n) per text. */
#include "engine/tokenizer_internal.h"
#include "base/util.h"

#include <stdlib.h>
#include <string.h>

typedef struct { size_t off, len; int32_t prev, next; } sp_symbol;  /* len 0: joined into its left neighbour */
typedef struct { float score; int32_t left, right; size_t len; } sp_pair;
typedef struct { sp_pair *v; size_t n, cap; } sp_heap;

static bool pair_before(const sp_pair *a, const sp_pair *b) {
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static void heap_push(sp_heap *h, sp_pair p) {
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 64;
        h->v = xrealloc(h->v, h->cap * sizeof *h->v);
    }
    size_t i = h->n++;
    while (i > 0 && pair_before(&p, &h->v[(i - 1) / 2])) {
        h->v[i] = h->v[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->v[i] = p;
}

static sp_pair heap_pop(sp_heap *h) {
    sp_pair top = h->v[0], last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && pair_before(&h->v[c + 1], &h->v[c])) c++;
        if (!pair_before(&h->v[c], &last)) break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n) h->v[i] = last;
    return top;
}

static void try_pair(const tokenizer *t, const char *text, const sp_symbol *sym, int32_t l, int32_t r, sp_heap *h) {
    if (l < 0 || r < 0) return;
    size_t len = sym[l].len + sym[r].len;
    int32_t id = spell_lookup(t, text + sym[l].off, len);
    if (id >= 0) heap_push(h, (sp_pair){t->score[id], l, r, len});
}

void spm_encode_text(const tokenizer *t, const char *text, size_t len, id_vec *out) {
    if (!len) return;
    sp_symbol *sym = xmalloc(len * sizeof *sym);
    int32_t n = 0;
    for (size_t off = 0; off < len; n++) {
        size_t l = utf8_seq_len((uint8_t)text[off]);
        if (l > len - off) l = len - off;
        sym[n] = (sp_symbol){off, l, n - 1, off + l < len ? n + 1 : -1};
        off += l;
    }
    sp_heap h = {0};
    for (int32_t i = 1; i < n; i++) try_pair(t, text, sym, i - 1, i, &h);
    while (h.n) {
        sp_pair p = heap_pop(&h);
        sp_symbol *l = &sym[p.left], *r = &sym[p.right];
        /* stale if either side has been joined since: lengths no longer add up */
        if (l->len == 0 || r->len == 0 || l->len + r->len != p.len) continue;
        l->len += r->len;
        r->len = 0;
        l->next = r->next;
        if (r->next >= 0) sym[r->next].prev = p.left;
        try_pair(t, text, sym, l->prev, p.left, &h);
        try_pair(t, text, sym, p.left, l->next, &h);
    }
    for (int32_t i = 0; i >= 0; i = sym[i].next) {
        int32_t id = spell_lookup(t, text + sym[i].off, sym[i].len);
        if (id >= 0) { id_vec_push(out, id); continue; }
        for (size_t k = 0; k < sym[i].len; k++) {
            int32_t b = t->byte_token[(uint8_t)text[sym[i].off + k]];
            if (b < 0) b = t->unk;
            if (b >= 0) id_vec_push(out, b);
        }
    }
    free(h.v);
    free(sym);
}
