/* tokenizer_internal: what tokenizer.c (vocabulary, special tokens, decoding)
 * shares with the two segmentation algorithms in tokenizer_bpe.c and
 * tokenizer_spm.c. Not part of the public API. */
#ifndef RYS_TOKENIZER_INTERNAL_H
#define RYS_TOKENIZER_INTERNAL_H

#include "engine/tokenizer.h"

enum tokenizer_kind { TOK_KIND_BPE, TOK_KIND_SPM };

/* Growable id array that encode() appends to. */
typedef struct { int32_t *v; size_t n, cap; } id_vec;
void id_vec_push(id_vec *a, int32_t id);

/* Open-addressing map from a token's vocabulary spelling to its id. */
typedef struct { int32_t *slot; size_t mask; } spell_map;

/* (left id, right id) -> (rank, merged id) for BPE merges. */
typedef struct { uint64_t *key; int32_t *rank, *merged; size_t mask; } merge_map;

typedef struct bpe_pre bpe_pre;     /* compiled pre-tokenizer regexes */

struct tokenizer {
    enum tokenizer_kind kind;
    int32_t n;
    char *spell;                    /* arena of NUL-terminated spellings */
    size_t *spell_off;              /* n + 1 offsets into spell */
    char *bytes;                    /* arena of decoded bytes per token */
    size_t *bytes_off;              /* n + 1 offsets into bytes */
    uint8_t *type;                  /* enum token_type */
    float *score;
    bool *eog;
    spell_map map;
    int32_t *specials;              /* tokens matched in raw text, longest first */
    size_t n_specials;
    int32_t byte_token[256];        /* the token spelling one byte, -1 if none (SmolLM2 lacks 0x04) */
    int32_t bos, eos, eot, eom, unk;
    bool add_bos, add_eos, add_space_prefix;
    /* BPE only */
    merge_map merges;
    bpe_pre *pre;
    bool ignore_merges;             /* a whole pre-token in the vocabulary wins (Llama 3) */
};

int32_t spell_lookup(const tokenizer *t, const char *s, size_t len);

/* The UTF-8 spelling (1 or 2 bytes) of byte b under GPT-2's byte-to-unicode
 * map; returns its length. */
size_t bpe_byte_spelling(uint8_t b, char out[2]);
/* Inverse: the byte a code point stands for, -1 if it is not in the map. */
int bpe_codepoint_byte(uint32_t cp);

/* Whether llama.cpp adds BOS by default for this pre-tokenizer (Llama 3). */
bool bpe_pre_adds_bos(const char *pre_name);
/* Set up the BPE side (pre-tokenizer by name, merges); -1 + rys_seterr(). */
int bpe_init(tokenizer *t, const char *pre_name, const tok_str *merges, size_t n_merges);
void bpe_free(tokenizer *t);
/* Segment one run of raw text (no special tokens inside). */
int bpe_encode_text(const tokenizer *t, const char *text, size_t len, id_vec *out);
/* SentencePiece: text has had spaces escaped to U+2581 already. */
void spm_encode_text(const tokenizer *t, const char *text, size_t len, id_vec *out);

/* Length of the UTF-8 sequence a lead byte announces, the way llama.cpp
 * counts it (continuation and invalid bytes count as 1, 0xF8.. as 4). */
static inline size_t utf8_seq_len(uint8_t b) {
    static const uint8_t by_high_nibble[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return by_high_nibble[b >> 4];
}

#endif
