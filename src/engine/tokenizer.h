/* tokenizer: text <-> token ids for the two vocabulary kinds GGUF models use,
 * byte-level BPE ("gpt2": SmolLM2, Qwen2.5, Llama 3) and SentencePiece
 * ("llama" with scores: Gemma 3).
 *
 * Why the tokenizer_vocab struct: the algorithms do not need a GGUF file,
 * only arrays. tokenizer_from_gguf() is a thin loader that fills the struct,
 * and the unit tests build tiny vocabularies by hand the same way. The
 * reference for every behaviour is llama.cpp (llama-vocab.cpp), since rys
 * must feed a model exactly the ids llama.cpp would. */
#ifndef RYS_TOKENIZER_H
#define RYS_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/gguf.h"

/* Values of tokenizer.ggml.token_type. */
enum token_type {
    TOKEN_NORMAL = 1, TOKEN_UNKNOWN = 2, TOKEN_CONTROL = 3,
    TOKEN_USER_DEFINED = 4, TOKEN_UNUSED = 5, TOKEN_BYTE = 6
};

/* A byte string that need not be NUL-terminated. */
typedef struct { const char *ptr; size_t len; } tok_str;

typedef struct {
    const char *model;          /* "gpt2" (byte-level BPE) or "llama" (SentencePiece) */
    const char *pre;            /* BPE pre-tokenizer name (tokenizer.ggml.pre); NULL = "default" */
    size_t n_tokens;
    const tok_str *tokens;      /* as spelled in the vocabulary */
    const float *scores;        /* SentencePiece merge priority, higher first; NULL = all 0 */
    const int32_t *types;       /* enum token_type per token; NULL = all normal */
    size_t n_merges;
    const tok_str *merges;      /* BPE: "left right", rank = index */
    int32_t bos_id, eos_id, eot_id, eom_id, unk_id;   /* -1 = none */
    bool add_bos, add_eos;      /* what encode(add_bos=true) adds */
    bool add_space_prefix;      /* SentencePiece: a space before the text */
} tokenizer_vocab;

typedef struct tokenizer tokenizer;

/* A vocab with every id -1 and the defaults llama.cpp uses for the model kind
 * (SentencePiece: add_bos and add_space_prefix on; BPE: off). */
void tokenizer_vocab_defaults(tokenizer_vocab *v, const char *model);

/* Copies everything it needs from v. NULL + rys_seterr() on an unsupported
 * model or pre-tokenizer, a malformed merge, or ids out of range. */
tokenizer *tokenizer_from_vocab(const tokenizer_vocab *v);
/* Reads tokenizer.ggml.* from the file. */
tokenizer *tokenizer_from_gguf(const gguf_file *g);
void tokenizer_free(tokenizer *t);

/* Text -> ids in *out (malloc'd, caller frees; non-NULL even when empty).
 * add_bos: add BOS/EOS where the vocabulary's add_bos/add_eos say so.
 * parse_special: text spelling a control token (e.g. "<|im_start|>") becomes
 * that token; user-defined tokens are always matched, as llama.cpp does.
 * Bytes that are not valid UTF-8 are kept (byte-level BPE and byte fallback
 * can spell any byte), where llama.cpp would replace them by U+FFFD. A byte
 * the vocabulary has no token for (SmolLM2 lacks 0x04) is dropped, as
 * llama.cpp drops it.
 * Returns 0, or -1 with rys_seterr(). */
int tokenizer_encode(const tokenizer *t, const char *text, size_t len, bool add_bos, bool parse_special,
                     int32_t **out, size_t *n_out);

/* The bytes a token stands for (control tokens: their text). The bytes of
 * one token may be an incomplete UTF-8 sequence that the next token ends. */
const char *tokenizer_token_bytes(const tokenizer *t, int32_t id, size_t *len);
/* All tokens' bytes, NUL-terminated, malloc'd. SentencePiece with a space
 * prefix: the space encode() added at the start and after control tokens is
 * removed again, so decode(encode(s)) == s. */
char *tokenizer_decode(const tokenizer *t, const int32_t *ids, size_t n);
/* The same, with the length, for texts that hold NUL bytes. */
char *tokenizer_decode_len(const tokenizer *t, const int32_t *ids, size_t n, size_t *len);

/* Streaming decode that never splits a UTF-8 character: bytes of an unfinished
 * sequence at the end are held until the token that completes it. */
typedef struct { char held[4]; size_t n_held; } tokenizer_stream;
/* Writes the token's bytes (after any held ones) to buf, keeping back an
 * unfinished tail; cap must be >= tokenizer_token_bytes length + 4. Returns
 * the number of bytes written. */
size_t tokenizer_stream_token(const tokenizer *t, tokenizer_stream *s, int32_t id, char *buf, size_t cap);
/* Held bytes that will never complete (end of generation): writes them and
 * returns how many (at most 4). */
size_t tokenizer_stream_flush(tokenizer_stream *s, char *buf, size_t cap);

int32_t tokenizer_bos(const tokenizer *t);     /* -1 if none */
int32_t tokenizer_eos(const tokenizer *t);     /* -1 if none */
/* End of generation: EOS, EOT, EOM and the known turn/text terminators
 * (<|im_end|>, <|endoftext|>, <|eot_id|>, <end_of_turn>, ...). */
bool tokenizer_is_eog(const tokenizer *t, int32_t id);
bool tokenizer_is_control(const tokenizer *t, int32_t id);
int32_t tokenizer_n_vocab(const tokenizer *t);
/* Id of the token spelled exactly piece in the vocabulary (GGUF spelling:
 * "Ġthe" for byte-level BPE, "▁the" for SentencePiece), -1 if none. */
int32_t tokenizer_find(const tokenizer *t, const char *piece);
/* The vocabulary spelling of a token, NUL-terminated; NULL if out of range. */
const char *tokenizer_piece(const tokenizer *t, int32_t id);

#endif
