/* tokenizer_bpe: byte-level BPE (GPT-2 family: SmolLM2, Qwen2.5, Llama 3).
 *
 * Text is first cut into pre-tokens by a model-specific list of regexes
 * (named by tokenizer.ggml.pre; each regex re-splits the pieces the previous
 * one left, matches and gaps alike, as llama.cpp's unicode_regex_split does),
 * then each pre-token's bytes are merged pairwise, lowest merge rank first.
 * Merges work on token ids through a hash map and a heap, so a long word
 * costs O(n log n), not the O(n^2) of rescanning for the best pair. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "engine/tokenizer_internal.h"
#include "base/util.h"

#include <stdlib.h>
#include <string.h>

/* ---- GPT-2 byte <-> unicode map ------------------------------------------
 * Printable bytes stand for themselves; the other 68 (controls, space, 0x7F..
 * 0xA0, 0xAD) are moved to U+0100.. in byte order so every byte is a visible
 * character in the vocabulary. */
static bool byte_is_printable(int b) {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

/* The 68 moved bytes in order: 0x00..0x20, 0x7F..0xA0, 0xAD. */
static uint32_t byte_codepoint(uint8_t b) {
    if (byte_is_printable(b)) return b;
    if (b <= 0x20) return 256u + b;
    if (b <= 0xA0) return 256u + 33 + (b - 0x7Fu);
    return 256u + 67;                                   /* 0xAD */
}

size_t bpe_byte_spelling(uint8_t b, char out[2]) {
    uint32_t cp = byte_codepoint(b);
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

int bpe_codepoint_byte(uint32_t cp) {
    if (cp < 256) return byte_is_printable((int)cp) ? (int)cp : -1;
    uint32_t k = cp - 256;
    return k <= 32 ? (int)k : k <= 66 ? (int)(0x7F + k - 33) : k == 67 ? 0xAD : -1;
}

/* ---- pre-tokenizers ---------------------------------------------------------
 * \s is spelled out as llama.cpp's whitespace set (Unicode White_Space), so
 * the result does not depend on PCRE2's idea of \s. */
#define WS "\\t\\n\\x0B\\f\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"

#define RE_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" WS "\\p{L}\\p{N}]+|[" WS "]+(?![^" WS "])"
#define RE_CONTRACTIONS "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
#define RE_LLAMA3_TAIL "| ?[^" WS "\\p{L}\\p{N}]+[\\r\\n]*|[" WS "]*[\\r\\n]+|[" WS "]+(?![^" WS "])|[" WS "]+"
#define RE_LLAMA3 RE_CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}" RE_LLAMA3_TAIL
#define RE_QWEN2 RE_CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}" RE_LLAMA3_TAIL

enum { MAX_STAGES = 4 };

typedef struct {
    const char *names[4];
    const char *stages[MAX_STAGES];
    bool ignore_merges, adds_bos;
} pre_kind;

static const pre_kind pre_kinds[] = {
    {{"default"}, {"[\\p{P}\\$\\+<=>\\^~\\|]+", RE_GPT2, "\\p{N}+", "[0-9][0-9][0-9]"}, false, false},
    {{"gpt2", "gpt-2"}, {RE_GPT2}, false, false},
    {{"llama3", "llama-v3", "llama-bpe"}, {RE_LLAMA3}, true, true},
    {{"qwen2", "deepseek-r1-qwen"}, {RE_QWEN2}, false, false},
    {{"smollm", "starcoder"}, {"\\p{N}", RE_GPT2}, false, false},
};

struct bpe_pre {
    int n_stages;
    pcre2_code *re[MAX_STAGES];
};

static const pre_kind *find_pre(const char *name) {
    for (size_t k = 0; k < sizeof pre_kinds / sizeof pre_kinds[0]; k++)
        for (int j = 0; j < 4 && pre_kinds[k].names[j]; j++)
            if (!strcmp(pre_kinds[k].names[j], name)) return &pre_kinds[k];
    return NULL;
}

bool bpe_pre_adds_bos(const char *pre_name) {
    const pre_kind *k = find_pre(pre_name);
    return k && k->adds_bos;
}

/* ---- merges ----------------------------------------------------------------- */

static uint64_t mix64(uint64_t x) {
    x ^= x >> 33; x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

static uint64_t merge_key(int32_t l, int32_t r) { return (uint64_t)(uint32_t)l << 32 | (uint32_t)r; }

/* Rank of merging l and r, -1 if none; *merged gets the result. */
static int32_t merge_find(const merge_map *m, int32_t l, int32_t r, int32_t *merged) {
    if (!m->key || l < 0 || r < 0) return -1;
    uint64_t k = merge_key(l, r);
    for (size_t i = mix64(k) & m->mask;; i = (i + 1) & m->mask) {
        if (m->rank[i] < 0) return -1;
        if (m->key[i] == k) { *merged = m->merged[i]; return m->rank[i]; }
    }
}

static int merges_build(tokenizer *t, const tok_str *merges, size_t n) {
    merge_map *m = &t->merges;
    size_t cap = 16;
    while (cap < n * 2) cap *= 2;
    m->mask = cap - 1;
    m->key = xmalloc(cap * sizeof *m->key);
    m->rank = xmalloc(cap * sizeof *m->rank);
    m->merged = xmalloc(cap * sizeof *m->merged);
    memset(m->rank, 0xff, cap * sizeof *m->rank);
    char *joined = NULL;
    size_t joined_cap = 0;
    for (size_t r = 0; r < n; r++) {
        const char *s = merges[r].ptr;
        size_t len = merges[r].len;
        const char *sp = len > 1 ? memchr(s + 1, ' ', len - 1) : NULL;
        if (!sp) { rys_seterr("tokenizer: merge %zu '%.*s' is not 'left right'", r, (int)len, s); free(joined); return -1; }
        size_t ll = (size_t)(sp - s), rl = len - ll - 1;
        if (ll + rl > joined_cap) { joined_cap = ll + rl; joined = xrealloc(joined, joined_cap); }
        memcpy(joined, s, ll);
        memcpy(joined + ll, sp + 1, rl);
        int32_t l = spell_lookup(t, s, ll), rt = spell_lookup(t, sp + 1, rl), res = spell_lookup(t, joined, ll + rl);
        if (l < 0 || rt < 0 || res < 0) {
            rys_seterr("tokenizer: merge %zu '%.*s' names a piece that is not in the vocabulary", r, (int)len, s);
            free(joined);
            return -1;
        }
        uint64_t k = merge_key(l, rt);
        for (size_t i = mix64(k) & m->mask;; i = (i + 1) & m->mask) {
            if (m->rank[i] < 0) { m->key[i] = k; m->rank[i] = (int32_t)r; m->merged[i] = res; break; }
            if (m->key[i] == k) break;                  /* first (lowest) rank wins */
        }
    }
    free(joined);
    return 0;
}

int bpe_init(tokenizer *t, const char *pre_name, const tok_str *merges, size_t n_merges) {
    const pre_kind *k = find_pre(pre_name);
    if (!k) {
        rys_seterr("tokenizer: unknown pre-tokenizer '%s' (tokenizer.ggml.pre; rys knows default, gpt2, llama3, "
                   "llama-bpe, qwen2, smollm)", pre_name);
        return -1;
    }
    t->ignore_merges = k->ignore_merges;
    t->pre = xcalloc(1, sizeof *t->pre);
    for (int s = 0; s < MAX_STAGES && k->stages[s]; s++) {
        int err;
        PCRE2_SIZE off;
        pcre2_code *re = pcre2_compile((PCRE2_SPTR)k->stages[s], PCRE2_ZERO_TERMINATED,
                                       PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &err, &off, NULL);
        if (!re) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(err, msg, sizeof msg);
            rys_seterr("tokenizer: pre-tokenizer '%s' regex %d: %s at %zu", pre_name, s, (const char *)msg, (size_t)off);
            return -1;
        }
        pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);     /* the interpreter still works if JIT is missing */
        t->pre->re[t->pre->n_stages++] = re;
    }
    return merges_build(t, merges, n_merges);
}

void bpe_free(tokenizer *t) {
    if (t->pre) {
        for (int s = 0; s < t->pre->n_stages; s++) pcre2_code_free(t->pre->re[s]);
        free(t->pre);
    }
    free(t->merges.key); free(t->merges.rank); free(t->merges.merged);
}

/* ---- segmentation ----------------------------------------------------------- */

typedef struct { size_t start, len; } span;
typedef struct { span *v; size_t n, cap; } span_vec;

static void span_push(span_vec *a, size_t start, size_t len) {
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 64;
        a->v = xrealloc(a->v, a->cap * sizeof *a->v);
    }
    a->v[a->n++] = (span){start, len};
}

/* Split each piece in *in by re: matches and the gaps between them. */
static int split_stage(const pcre2_code *re, pcre2_match_data *md, const char *text, const span_vec *in, span_vec *out) {
    out->n = 0;
    for (size_t p = 0; p < in->n; p++) {
        const char *s = text + in->v[p].start;
        size_t len = in->v[p].len, last = 0, off = 0;
        while (off < len) {
            int rc = pcre2_match(re, (PCRE2_SPTR)s, len, off, 0, md, NULL);
            if (rc == PCRE2_ERROR_NOMATCH) break;
            if (rc < 0) {
                PCRE2_UCHAR msg[256];
                pcre2_get_error_message(rc, msg, sizeof msg);
                rys_seterr("tokenizer: pre-tokenizer regex failed: %s", (const char *)msg);
                return -1;
            }
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            if (ov[1] == ov[0]) { off = ov[0] + 1; continue; }   /* no empty pieces */
            if (ov[0] > last) span_push(out, in->v[p].start + last, ov[0] - last);
            span_push(out, in->v[p].start + ov[0], ov[1] - ov[0]);
            last = off = ov[1];
        }
        if (last < len) span_push(out, in->v[p].start + last, len - last);
    }
    return 0;
}

/* A symbol's id is a token, MERGED_AWAY once joined into its left neighbour,
 * or NO_TOKEN(b) for a byte the vocabulary cannot spell: such a byte is
 * dropped from the output, as llama.cpp drops it. */
typedef struct { int32_t id, prev, next; } symbol;
#define MERGED_AWAY INT32_MIN
#define NO_TOKEN(b) (-2 - (int32_t)(b))
typedef struct { int32_t rank, left, lid, rid, merged; } bigram;
typedef struct { bigram *v; size_t n, cap; } bigram_heap;

static bool bigram_before(const bigram *a, const bigram *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static void heap_push(bigram_heap *h, bigram b) {
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 64;
        h->v = xrealloc(h->v, h->cap * sizeof *h->v);
    }
    size_t i = h->n++;
    while (i > 0 && bigram_before(&b, &h->v[(i - 1) / 2])) {
        h->v[i] = h->v[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->v[i] = b;
}

static bigram heap_pop(bigram_heap *h) {
    bigram top = h->v[0], last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && bigram_before(&h->v[c + 1], &h->v[c])) c++;
        if (!bigram_before(&h->v[c], &last)) break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n) h->v[i] = last;
    return top;
}

static void try_bigram(const tokenizer *t, const symbol *sym, int32_t left, int32_t right, bigram_heap *h) {
    if (left < 0 || right < 0) return;
    int32_t merged;
    int32_t rank = merge_find(&t->merges, sym[left].id, sym[right].id, &merged);
    if (rank >= 0) heap_push(h, (bigram){rank, left, sym[left].id, sym[right].id, merged});
}

static void merge_word(const tokenizer *t, const uint8_t *w, size_t m, symbol *sym, bigram_heap *h, id_vec *out) {
    for (size_t i = 0; i < m; i++)
        sym[i] = (symbol){t->byte_token[w[i]] >= 0 ? t->byte_token[w[i]] : NO_TOKEN(w[i]), (int32_t)i - 1,
                          i + 1 < m ? (int32_t)i + 1 : -1};
    h->n = 0;
    for (size_t i = 1; i < m; i++) try_bigram(t, sym, (int32_t)i - 1, (int32_t)i, h);
    while (h->n) {
        bigram b = heap_pop(h);
        symbol *l = &sym[b.left];
        int32_t r = l->next;
        if (l->id != b.lid || r < 0 || sym[r].id != b.rid) continue;   /* a neighbour changed since */
        l->id = b.merged;
        l->next = sym[r].next;
        if (l->next >= 0) sym[l->next].prev = b.left;
        sym[r].id = MERGED_AWAY;
        try_bigram(t, sym, l->prev, b.left, h);
        try_bigram(t, sym, b.left, l->next, h);
    }
    for (int32_t i = 0; i >= 0; i = sym[i].next)
        if (sym[i].id >= 0) id_vec_push(out, sym[i].id);
}

int bpe_encode_text(const tokenizer *t, const char *text, size_t len, id_vec *out) {
    if (!len) return 0;
    span_vec a = {0}, b = {0};
    span_push(&a, 0, len);
    pcre2_match_data *md = pcre2_match_data_create(4, NULL);
    int rc = 0;
    for (int s = 0; s < t->pre->n_stages && !rc; s++) {
        rc = split_stage(t->pre->re[s], md, text, &a, &b);
        span_vec tmp = a; a = b; b = tmp;
    }
    pcre2_match_data_free(md);
    if (rc) { free(a.v); free(b.v); return -1; }

    size_t longest = 0;
    for (size_t i = 0; i < a.n; i++) if (a.v[i].len > longest) longest = a.v[i].len;
    symbol *sym = xmalloc(longest * sizeof *sym);
    char *spelled = t->ignore_merges ? xmalloc(2 * longest) : NULL;
    bigram_heap h = {0};
    for (size_t i = 0; i < a.n; i++) {
        const uint8_t *w = (const uint8_t *)text + a.v[i].start;
        size_t m = a.v[i].len;
        if (t->ignore_merges) {
            size_t k = 0;
            for (size_t j = 0; j < m; j++) k += bpe_byte_spelling(w[j], spelled + k);
            int32_t id = spell_lookup(t, spelled, k);
            if (id >= 0) { id_vec_push(out, id); continue; }
        }
        merge_word(t, w, m, sym, &h, out);
    }
    free(h.v); free(sym); free(spelled);
    free(a.v); free(b.v);
    return 0;
}
