/* tokenizer: vocabulary tables, special-token splitting, BOS/EOS, decoding and
 * the GGUF loader. Segmentation itself lives in tokenizer_bpe.c and
 * tokenizer_spm.c. Behaviour follows llama.cpp's llama-vocab.cpp so that rys
 * feeds models the same ids llama.cpp does (tests/ref/check_tokenizer.py). */
#include "engine/tokenizer_internal.h"
#include "base/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void id_vec_push(id_vec *a, int32_t id) {
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 64;
        a->v = xrealloc(a->v, a->cap * sizeof *a->v);
    }
    a->v[a->n++] = id;
}

static uint64_t hash_bytes(const char *s, size_t len) {
    uint64_t h = 1469598103934665603ull;            /* FNV-1a */
    for (size_t i = 0; i < len; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

static const char *spelling(const tokenizer *t, int32_t id, size_t *len) {
    *len = t->spell_off[id + 1] - t->spell_off[id] - 1;
    return t->spell + t->spell_off[id];
}

int32_t spell_lookup(const tokenizer *t, const char *s, size_t len) {
    for (size_t i = hash_bytes(s, len) & t->map.mask;; i = (i + 1) & t->map.mask) {
        int32_t id = t->map.slot[i];
        if (id < 0) return -1;
        size_t l;
        const char *p = spelling(t, id, &l);
        if (l == len && !memcmp(p, s, len)) return id;
    }
}

/* Later duplicates win, as in llama.cpp's token_to_id map. */
static void spell_map_build(tokenizer *t) {
    size_t cap = 16;
    while (cap < (size_t)t->n * 2) cap *= 2;
    t->map.mask = cap - 1;
    t->map.slot = xmalloc(cap * sizeof *t->map.slot);
    memset(t->map.slot, 0xff, cap * sizeof *t->map.slot);
    for (int32_t id = 0; id < t->n; id++) {
        size_t len;
        const char *s = spelling(t, id, &len);
        for (size_t i = hash_bytes(s, len) & t->map.mask;; i = (i + 1) & t->map.mask) {
            int32_t other = t->map.slot[i];
            size_t other_len = 0;
            const char *o = other >= 0 ? spelling(t, other, &other_len) : NULL;
            if (other < 0 || (other_len == len && !memcmp(o, s, len))) {
                t->map.slot[i] = id;
                break;
            }
        }
    }
}

/* Decode one UTF-8 code point at s (n bytes left); returns its length, or 0
 * for an invalid sequence. */
static size_t utf8_decode(const uint8_t *s, size_t n, uint32_t *cp) {
    size_t len = s[0] < 0x80 ? 1 : s[0] < 0xC2 ? 0 : s[0] < 0xE0 ? 2 : s[0] < 0xF0 ? 3 : s[0] < 0xF5 ? 4 : 0;
    if (!len || len > n) return 0;
    uint32_t c = len == 1 ? s[0] : s[0] & (0x7F >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && c < 0x800) || (len == 4 && (c < 0x10000 || c > 0x10FFFF))) return 0;
    *cp = c;
    return len;
}

static int hex_digit(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* "<0xAB>" -> 0xAB, else -1. */
static int byte_token_value(const char *s, size_t len) {
    if (len != 6 || memcmp(s, "<0x", 3) || s[5] != '>') return -1;
    int hi = hex_digit(s[3]), lo = hex_digit(s[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

/* The bytes a token stands for when decoded, appended to *buf. */
static void token_decoded_bytes(const tokenizer *t, int32_t id, char **buf, size_t *n, size_t *cap) {
    size_t len;
    const char *s = spelling(t, id, &len);
    if (*n + len + 1 > *cap) {
        while (*n + len + 1 > *cap) *cap *= 2;
        *buf = xrealloc(*buf, *cap);
    }
    char *o = *buf + *n;
    switch (t->type[id]) {
    case TOKEN_CONTROL: case TOKEN_UNKNOWN: case TOKEN_USER_DEFINED:
        memcpy(o, s, len);
        *n += len;
        return;
    case TOKEN_UNUSED:
        return;
    case TOKEN_BYTE: {
        int b = byte_token_value(s, len);
        if (b >= 0) { o[0] = (char)b; *n += 1; return; }
        memcpy(o, s, len);
        *n += len;
        return;
    }
    default: break;
    }
    size_t k = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t l = utf8_decode((const uint8_t *)s + i, len - i, &cp);
        if (!l) { o[k++] = s[i++]; continue; }
        if (t->kind == TOK_KIND_BPE) {
            int b = bpe_codepoint_byte(cp);
            if (b >= 0) o[k++] = (char)b;
            else { memcpy(o + k, s + i, l); k += l; }
        } else if (cp == 0x2581) {
            o[k++] = ' ';
        } else {
            memcpy(o + k, s + i, l);
            k += l;
        }
        i += l;
    }
    *n += k;
}

void tokenizer_vocab_defaults(tokenizer_vocab *v, const char *model) {
    memset(v, 0, sizeof *v);
    v->model = model;
    v->bos_id = v->eos_id = v->eot_id = v->eom_id = v->unk_id = -1;
    bool spm = model && !strcmp(model, "llama");
    v->add_bos = spm;
    v->add_space_prefix = spm;
}

/* Tokens that end generation by their spelling (llama.cpp's list, trimmed to
 * the families rys meets), plus the FIM pad/repo/file-separator tokens that
 * llama.cpp also treats as end of generation. */
static const char *const eog_names[] = {
    "<|eot_id|>", "<|eom_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
    "<|end_of_text|>", "<EOT>", "<eos>", "</s>",
    "<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<reponame>",
    "<|file_sep|>",
};

static bool is_special_type(uint8_t ty) {
    return ty == TOKEN_CONTROL || ty == TOKEN_USER_DEFINED || ty == TOKEN_UNKNOWN;
}

typedef struct { size_t len; int32_t id; } special_key;

static int by_length_desc(const void *a, const void *b) {
    const special_key *x = a, *y = b;
    if (x->len != y->len) return x->len > y->len ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static bool id_ok(const tokenizer *t, int32_t id) { return id >= -1 && id < t->n; }

tokenizer *tokenizer_from_vocab(const tokenizer_vocab *v) {
    enum tokenizer_kind kind;
    if (!v->model) { rys_seterr("tokenizer: no tokenizer model named"); return NULL; }
    if (!strcmp(v->model, "gpt2")) kind = TOK_KIND_BPE;
    else if (!strcmp(v->model, "llama")) kind = TOK_KIND_SPM;
    else { rys_seterr("tokenizer: unsupported tokenizer model '%s' (rys knows gpt2, llama)", v->model); return NULL; }
    if (v->n_tokens == 0 || v->n_tokens > INT32_MAX / 2) {
        rys_seterr("tokenizer: vocabulary size %zu out of range", v->n_tokens);
        return NULL;
    }
    tokenizer *t = xcalloc(1, sizeof *t);
    t->kind = kind;
    t->n = (int32_t)v->n_tokens;
    t->spell_off = xmalloc((v->n_tokens + 1) * sizeof *t->spell_off);
    size_t total = 0;
    for (size_t i = 0; i < v->n_tokens; i++) {
        t->spell_off[i] = total;
        total += v->tokens[i].len + 1;
    }
    t->spell_off[v->n_tokens] = total;
    t->spell = xmalloc(total);
    for (size_t i = 0; i < v->n_tokens; i++) {
        memcpy(t->spell + t->spell_off[i], v->tokens[i].ptr, v->tokens[i].len);
        t->spell[t->spell_off[i] + v->tokens[i].len] = 0;
    }
    t->type = xmalloc(v->n_tokens);
    t->score = xmalloc(v->n_tokens * sizeof *t->score);
    t->eog = xcalloc(v->n_tokens, sizeof *t->eog);
    for (size_t i = 0; i < v->n_tokens; i++) {
        int32_t ty = v->types ? v->types[i] : TOKEN_NORMAL;
        t->type[i] = ty >= TOKEN_NORMAL && ty <= TOKEN_BYTE ? (uint8_t)ty : TOKEN_NORMAL;
        t->score[i] = v->scores ? v->scores[i] : 0.0f;
    }
    spell_map_build(t);
    t->bos = v->bos_id; t->eos = v->eos_id; t->eot = v->eot_id; t->eom = v->eom_id; t->unk = v->unk_id;
    t->add_bos = v->add_bos; t->add_eos = v->add_eos;
    t->add_space_prefix = kind == TOK_KIND_SPM && v->add_space_prefix;
    if (!id_ok(t, t->bos) || !id_ok(t, t->eos) || !id_ok(t, t->eot) || !id_ok(t, t->eom) || !id_ok(t, t->unk)) {
        rys_seterr("tokenizer: a special token id is outside the vocabulary of %d", t->n);
        tokenizer_free(t);
        return NULL;
    }
    if ((t->add_bos && t->bos < 0) || (t->add_eos && t->eos < 0)) {
        rys_seterr("tokenizer: metadata asks to add %s but names no such token", t->add_bos && t->bos < 0 ? "BOS" : "EOS");
        tokenizer_free(t);
        return NULL;
    }

    for (size_t k = 0; k < sizeof eog_names / sizeof eog_names[0]; k++) {
        int32_t id = spell_lookup(t, eog_names[k], strlen(eog_names[k]));
        if (id < 0) continue;
        t->eog[id] = true;
        t->type[id] = TOKEN_CONTROL;    /* as llama.cpp: Gemma 3's user-defined </s> then needs parse_special */
    }
    if (t->eos >= 0) t->eog[t->eos] = true;
    if (t->eot >= 0) t->eog[t->eot] = true;
    if (t->eom >= 0) t->eog[t->eom] = true;

    special_key *keys = xmalloc(v->n_tokens * sizeof *keys);
    for (int32_t id = 0; id < t->n; id++) {
        size_t len = t->spell_off[id + 1] - t->spell_off[id] - 1;
        if (is_special_type(t->type[id]) && len) keys[t->n_specials++] = (special_key){len, id};
    }
    qsort(keys, t->n_specials, sizeof *keys, by_length_desc);
    t->specials = xmalloc((t->n_specials + 1) * sizeof *t->specials);
    for (size_t k = 0; k < t->n_specials; k++) t->specials[k] = keys[k].id;
    free(keys);

    for (int b = 0; b < 256; b++) {
        char s[8];
        size_t len;
        if (kind == TOK_KIND_BPE) {
            len = bpe_byte_spelling((uint8_t)b, s);
            t->byte_token[b] = spell_lookup(t, s, len);
        } else {
            snprintf(s, sizeof s, "<0x%02X>", b);
            t->byte_token[b] = spell_lookup(t, s, 6);
            if (t->byte_token[b] < 0) { s[0] = (char)b; t->byte_token[b] = spell_lookup(t, s, 1); }
        }
    }

    size_t cap = 1024, n = 0;
    t->bytes = xmalloc(cap);
    t->bytes_off = xmalloc((v->n_tokens + 1) * sizeof *t->bytes_off);
    for (int32_t id = 0; id < t->n; id++) {
        t->bytes_off[id] = n;
        token_decoded_bytes(t, id, &t->bytes, &n, &cap);
    }
    t->bytes_off[t->n] = n;

    if (kind == TOK_KIND_BPE && bpe_init(t, v->pre ? v->pre : "default", v->merges, v->n_merges)) {
        tokenizer_free(t);
        return NULL;
    }
    return t;
}

void tokenizer_free(tokenizer *t) {
    if (!t) return;
    bpe_free(t);
    free(t->spell); free(t->spell_off); free(t->bytes); free(t->bytes_off);
    free(t->type); free(t->score); free(t->eog); free(t->map.slot); free(t->specials);
    free(t);
}

/* ---- GGUF loader ---------------------------------------------------------- */

static const gguf_value *find_array(const gguf_file *g, const char *key, uint32_t elem_type, uint64_t min_n,
                                    bool required, bool *bad) {
    const gguf_kv *kv = gguf_find(g, key);
    if (!kv) {
        if (required) { rys_seterr("%s: no %s", g->path ? g->path : "gguf", key); *bad = true; }
        return NULL;
    }
    bool numeric_ok = elem_type == GGUF_T_F32 && (kv->val.arr.type == GGUF_T_F32 || kv->val.arr.type == GGUF_T_I32);
    if (kv->val.type != GGUF_T_ARRAY || (kv->val.arr.type != elem_type && !numeric_ok) || kv->val.arr.n < min_n) {
        rys_seterr("%s: %s is not an array of %s with at least %llu entries", g->path ? g->path : "gguf", key,
                   gguf_type_name(elem_type), (unsigned long long)min_n);
        *bad = true;
        return NULL;
    }
    return &kv->val;
}

static int32_t get_id(const gguf_file *g, const char *key) {
    int64_t v;
    return gguf_get_i64(g, key, &v) && v >= 0 && v <= INT32_MAX ? (int32_t)v : -1;
}

tokenizer *tokenizer_from_gguf(const gguf_file *g) {
    const char *path = g->path ? g->path : "gguf";
    char *model = gguf_get_strdup(g, "tokenizer.ggml.model");
    if (!model) { rys_seterr("%s: no tokenizer.ggml.model", path); return NULL; }
    char *pre = gguf_get_strdup(g, "tokenizer.ggml.pre");
    tokenizer_vocab v;
    tokenizer_vocab_defaults(&v, model);
    v.pre = pre;
    if (!strcmp(model, "gpt2") && pre && bpe_pre_adds_bos(pre)) v.add_bos = true;

    bool bad = false;
    const gguf_value *toks = find_array(g, "tokenizer.ggml.tokens", GGUF_T_STRING, 1, true, &bad);
    uint64_t n = toks ? toks->arr.n : 0;
    const gguf_value *scores = bad ? NULL : find_array(g, "tokenizer.ggml.scores", GGUF_T_F32, n, false, &bad);
    const gguf_value *types = bad ? NULL : find_array(g, "tokenizer.ggml.token_type", GGUF_T_I32, n, false, &bad);
    const gguf_value *merges = bad ? NULL : find_array(g, "tokenizer.ggml.merges", GGUF_T_STRING, 0, false, &bad);
    tokenizer *t = NULL;
    tok_str *tok_strs = NULL, *merge_strs = NULL;
    float *sc = NULL;
    int32_t *ty = NULL;
    if (bad) goto done;

    tok_strs = xmalloc(n * sizeof *tok_strs);
    for (uint64_t i = 0; i < n; i++) tok_strs[i] = (tok_str){toks->arr.strs[i].ptr, (size_t)toks->arr.strs[i].len};
    v.n_tokens = n;
    v.tokens = tok_strs;
    if (scores) {
        sc = xmalloc(n * sizeof *sc);
        for (uint64_t i = 0; i < n; i++) sc[i] = (float)gguf_arr_f64(scores, i);
        v.scores = sc;
    }
    if (types) {
        ty = xmalloc(n * sizeof *ty);
        for (uint64_t i = 0; i < n; i++) ty[i] = (int32_t)gguf_arr_i64(types, i);
        v.types = ty;
    }
    if (merges) {
        merge_strs = xmalloc((merges->arr.n ? merges->arr.n : 1) * sizeof *merge_strs);
        for (uint64_t i = 0; i < merges->arr.n; i++)
            merge_strs[i] = (tok_str){merges->arr.strs[i].ptr, (size_t)merges->arr.strs[i].len};
        v.n_merges = merges->arr.n;
        v.merges = merge_strs;
    }
    v.bos_id = get_id(g, "tokenizer.ggml.bos_token_id");
    v.eos_id = get_id(g, "tokenizer.ggml.eos_token_id");
    v.eot_id = get_id(g, "tokenizer.ggml.eot_token_id");
    v.eom_id = get_id(g, "tokenizer.ggml.eom_token_id");
    v.unk_id = get_id(g, "tokenizer.ggml.unknown_token_id");
    gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &v.add_bos);
    gguf_get_bool(g, "tokenizer.ggml.add_eos_token", &v.add_eos);
    gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &v.add_space_prefix);
    t = tokenizer_from_vocab(&v);
    if (!t) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", rys_lasterr());
        rys_seterr("%s: %s", path, msg);
    }
done:
    free(tok_strs); free(merge_strs); free(sc); free(ty);
    free(model); free(pre);
    return t;
}

/* ---- encoding --------------------------------------------------------------- */

typedef struct { size_t start, len; int32_t token; } fragment;   /* token < 0: raw text */
typedef struct { fragment *v; size_t n, cap; } frag_vec;

static void frag_push(frag_vec *a, size_t start, size_t len, int32_t token) {
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 16;
        a->v = xrealloc(a->v, a->cap * sizeof *a->v);
    }
    a->v[a->n++] = (fragment){start, len, token};
}

/* Cut the raw fragments at every occurrence of each special token, longest
 * tokens first, as llama.cpp's tokenizer_st_partition does. */
static void split_specials(const tokenizer *t, const char *text, size_t len, bool parse_special, frag_vec *out) {
    frag_vec cur = {0}, next = {0};
    if (len) frag_push(&cur, 0, len, -1);
    for (size_t k = 0; k < t->n_specials && cur.n; k++) {
        int32_t id = t->specials[k];
        if (!parse_special && t->type[id] != TOKEN_USER_DEFINED) continue;
        size_t sl;
        const char *s = spelling(t, id, &sl);
        bool found = false;
        next.n = 0;
        for (size_t f = 0; f < cur.n; f++) {
            fragment fr = cur.v[f];
            if (fr.token >= 0 || fr.len < sl) { frag_push(&next, fr.start, fr.len, fr.token); continue; }
            size_t pos = fr.start, end = fr.start + fr.len;
            for (;;) {
                const char *hit = memmem(text + pos, end - pos, s, sl);
                if (!hit) break;
                size_t at = (size_t)(hit - text);
                if (at > pos) frag_push(&next, pos, at - pos, -1);
                frag_push(&next, at, sl, id);
                pos = at + sl;
                found = true;
            }
            if (pos < end) frag_push(&next, pos, end - pos, -1);
        }
        if (found) { frag_vec tmp = cur; cur = next; next = tmp; }
    }
    free(next.v);
    *out = cur;
}

int tokenizer_encode(const tokenizer *t, const char *text, size_t len, bool add_bos, bool parse_special,
                     int32_t **out, size_t *n_out) {
    id_vec ids = {0};
    if (add_bos && t->add_bos) id_vec_push(&ids, t->bos);
    frag_vec frags;
    split_specials(t, text, len, parse_special, &frags);
    bool prev_special = true;
    char *esc = NULL;
    size_t esc_cap = 0;
    for (size_t f = 0; f < frags.n; f++) {
        fragment fr = frags.v[f];
        if (fr.token >= 0) {
            id_vec_push(&ids, fr.token);
            prev_special = true;
            continue;
        }
        if (t->kind == TOK_KIND_BPE) {
            if (bpe_encode_text(t, text + fr.start, fr.len, &ids)) {
                free(ids.v); free(frags.v);
                return -1;
            }
            continue;
        }
        /* SentencePiece sees spaces as U+2581 (3 bytes) and, with a space
         * prefix, one more at the start of each run of text. */
        size_t need = 3 * (fr.len + 1);
        if (need > esc_cap) { esc_cap = need; esc = xrealloc(esc, esc_cap); }
        size_t k = 0;
        if (t->add_space_prefix && prev_special) { memcpy(esc, "\xe2\x96\x81", 3); k = 3; }
        for (size_t i = 0; i < fr.len; i++) {
            if (text[fr.start + i] == ' ') { memcpy(esc + k, "\xe2\x96\x81", 3); k += 3; }
            else esc[k++] = text[fr.start + i];
        }
        spm_encode_text(t, esc, k, &ids);
        prev_special = false;
    }
    free(esc);
    free(frags.v);
    if (add_bos && t->add_eos) id_vec_push(&ids, t->eos);
    if (!ids.v) ids.v = xmalloc(sizeof *ids.v);     /* never NULL, even for no tokens */
    *out = ids.v;
    *n_out = ids.n;
    return 0;
}

/* ---- decoding --------------------------------------------------------------- */

const char *tokenizer_token_bytes(const tokenizer *t, int32_t id, size_t *len) {
    if (id < 0 || id >= t->n) { *len = 0; return ""; }
    *len = t->bytes_off[id + 1] - t->bytes_off[id];
    return t->bytes + t->bytes_off[id];
}

char *tokenizer_decode_len(const tokenizer *t, const int32_t *ids, size_t n, size_t *len_out) {
    size_t total = 1;
    for (size_t i = 0; i < n; i++) {
        size_t len;
        tokenizer_token_bytes(t, ids[i], &len);
        total += len;
    }
    char *s = xmalloc(total);
    size_t k = 0;
    bool after_special = true;
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const char *b = tokenizer_token_bytes(t, ids[i], &len);
        bool special = ids[i] >= 0 && ids[i] < t->n && is_special_type(t->type[ids[i]]);
        if (len) {
            if (t->add_space_prefix && after_special && !special && b[0] == ' ') { b++; len--; }
            after_special = special;
        }
        memcpy(s + k, b, len);
        k += len;
    }
    s[k] = 0;
    *len_out = k;
    return s;
}

char *tokenizer_decode(const tokenizer *t, const int32_t *ids, size_t n) {
    size_t len;
    return tokenizer_decode_len(t, ids, n, &len);
}

/* Bytes at the end of s[0..n) that begin a multi-byte character and are still
 * waiting for its continuation bytes. */
static size_t utf8_unfinished_tail(const char *s, size_t n) {
    for (size_t back = 1; back <= 3 && back <= n; back++) {
        uint8_t b = (uint8_t)s[n - back];
        if ((b & 0xC0) == 0x80) continue;                   /* continuation: keep looking for the lead */
        size_t need = b >= 0xF0 && b < 0xF5 ? 4 : b >= 0xE0 && b < 0xF0 ? 3 : b >= 0xC2 && b < 0xE0 ? 2 : 1;
        return need > back ? back : 0;
    }
    return 0;
}

size_t tokenizer_stream_token(const tokenizer *t, tokenizer_stream *s, int32_t id, char *buf, size_t cap) {
    size_t len;
    const char *b = tokenizer_token_bytes(t, id, &len);
    size_t room = cap > s->n_held ? cap - s->n_held : 0;
    if (len > room) len = room;
    memcpy(buf, s->held, s->n_held);
    memcpy(buf + s->n_held, b, len);
    size_t n = s->n_held + len;
    size_t tail = utf8_unfinished_tail(buf, n);
    memcpy(s->held, buf + n - tail, tail);
    s->n_held = tail;
    return n - tail;
}

size_t tokenizer_stream_flush(tokenizer_stream *s, char *buf, size_t cap) {
    size_t n = s->n_held < cap ? s->n_held : cap;
    memcpy(buf, s->held, n);
    s->n_held = 0;
    return n;
}

/* ---- lookups ----------------------------------------------------------------- */

int32_t tokenizer_bos(const tokenizer *t) { return t->bos; }
int32_t tokenizer_eos(const tokenizer *t) { return t->eos; }
int32_t tokenizer_n_vocab(const tokenizer *t) { return t->n; }
bool tokenizer_is_eog(const tokenizer *t, int32_t id) { return id >= 0 && id < t->n && t->eog[id]; }
bool tokenizer_is_control(const tokenizer *t, int32_t id) { return id >= 0 && id < t->n && t->type[id] == TOKEN_CONTROL; }
int32_t tokenizer_find(const tokenizer *t, const char *piece) { return spell_lookup(t, piece, strlen(piece)); }
const char *tokenizer_piece(const tokenizer *t, int32_t id) {
    return id >= 0 && id < t->n ? t->spell + t->spell_off[id] : NULL;
}
