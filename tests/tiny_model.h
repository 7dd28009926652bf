/* A tiny llama-architecture model written with rys's own GGUF writer:
 * random f32 weights (seeded), a 259-token byte-level BPE vocabulary (the 256
 * GPT-2 byte symbols plus ChatML specials, no merges) and a ChatML template.
 * Tests that need a runnable model but no particular weights use it (scan
 * resume, reuse equivalence, store); numerical correctness of the forward
 * pass is checked elsewhere against independent references. */
#ifndef RYS_TINY_MODEL_H
#define RYS_TINY_MODEL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/gguf.h"
#include "quant/quant.h"

#define TINY_DIM 32
#define TINY_FFN 64
#define TINY_HEADS 4
#define TINY_KV_HEADS 2
#define TINY_VOCAB 259

static uint64_t tiny_rng_state;

static float tiny_randf(void) {
    tiny_rng_state = tiny_rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return ((float)(tiny_rng_state >> 40) / (float)(1ull << 24) - 0.5f);
}

/* GPT-2's byte-to-unicode map, UTF-8 encoded into out (>= 3 bytes). */
static void tiny_byte_symbol(int b, char *out) {
    int cp;
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) cp = b;
    else {
        int n = 0;
        for (int x = 0; x < b; x++)
            if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255))) n++;
        cp = 256 + n;
    }
    if (cp < 0x80) { out[0] = (char)cp; out[1] = 0; }
    else { out[0] = (char)(0xC0 | (cp >> 6)); out[1] = (char)(0x80 | (cp & 0x3F)); out[2] = 0; }
}

/* Writes the model; returns 0 on success. Tensors are kept in a list freed
 * after writing. */
static int tiny_model_write(const char *path, int n_layers, uint64_t seed) {
    tiny_rng_state = seed;
    gguf_writer *w = gguf_writer_new(32);
    gguf_writer_set_str(w, "general.architecture", "llama");
    gguf_writer_set_str(w, "general.name", "tiny-llama");
    gguf_writer_set_u32(w, "llama.block_count", (uint32_t)n_layers);
    gguf_writer_set_u32(w, "llama.embedding_length", TINY_DIM);
    gguf_writer_set_u32(w, "llama.feed_forward_length", TINY_FFN);
    gguf_writer_set_u32(w, "llama.attention.head_count", TINY_HEADS);
    gguf_writer_set_u32(w, "llama.attention.head_count_kv", TINY_KV_HEADS);
    gguf_writer_set_u32(w, "llama.context_length", 512);
    gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    gguf_writer_set_f32(w, "llama.rope.freq_base", 10000.0f);
    gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
    gguf_writer_set_str(w, "tokenizer.ggml.pre", "default");
    char sym[256][4];
    const char *toks[TINY_VOCAB];
    int32_t types[TINY_VOCAB];
    for (int b = 0; b < 256; b++) { tiny_byte_symbol(b, sym[b]); toks[b] = sym[b]; types[b] = 1; }
    toks[256] = "<|im_start|>"; toks[257] = "<|im_end|>"; toks[258] = "<|endoftext|>";
    types[256] = types[257] = types[258] = 3;
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, TINY_VOCAB);
    gguf_writer_set_arr_i32(w, "tokenizer.ggml.token_type", types, TINY_VOCAB);
    gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", toks, 0);
    gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 257);
    gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 258);
    gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", false);
    gguf_writer_set_str(w, "tokenizer.chat_template",
                        "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
                        "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}");

    int hd = TINY_DIM / TINY_HEADS, kv = TINY_KV_HEADS * hd;
    float *bufs[512];
    int nb = 0;
#define TINY_TENSOR(name, ne0, ne1, scale, one)                                                  \
    do {                                                                                         \
        int64_t ne[2] = {ne0, ne1};                                                              \
        float *d = malloc(sizeof(float) * (ne0) * (ne1));                                        \
        for (int64_t q = 0; q < (int64_t)(ne0) * (ne1); q++) d[q] = (one) ? 1.0f + 0.1f * tiny_randf() : (scale) * tiny_randf(); \
        bufs[nb++] = d;                                                                          \
        gguf_writer_add_tensor(w, name, QT_F32, (ne1) > 1 ? 2 : 1, ne, d);                       \
    } while (0)
    TINY_TENSOR("token_embd.weight", TINY_DIM, TINY_VOCAB, 2.0f, 0);
    TINY_TENSOR("output_norm.weight", TINY_DIM, 1, 0, 1);
    for (int l = 0; l < n_layers && nb < 500; l++) {
        char n[64];
#define TN(s) (snprintf(n, sizeof n, "blk.%d.%s", l, s), n)
        TINY_TENSOR(TN("attn_norm.weight"), TINY_DIM, 1, 0, 1);
        TINY_TENSOR(TN("attn_q.weight"), TINY_DIM, TINY_DIM, 0.6f, 0);
        TINY_TENSOR(TN("attn_k.weight"), TINY_DIM, kv, 0.6f, 0);
        TINY_TENSOR(TN("attn_v.weight"), TINY_DIM, kv, 0.6f, 0);
        TINY_TENSOR(TN("attn_output.weight"), TINY_DIM, TINY_DIM, 0.6f, 0);
        TINY_TENSOR(TN("ffn_norm.weight"), TINY_DIM, 1, 0, 1);
        TINY_TENSOR(TN("ffn_gate.weight"), TINY_DIM, TINY_FFN, 0.6f, 0);
        TINY_TENSOR(TN("ffn_up.weight"), TINY_DIM, TINY_FFN, 0.6f, 0);
        TINY_TENSOR(TN("ffn_down.weight"), TINY_FFN, TINY_DIM, 0.4f, 0);
#undef TN
    }
#undef TINY_TENSOR
    int rc = gguf_writer_write(w, path);
    gguf_writer_free(w);
    for (int i = 0; i < nb; i++) free(bufs[i]);
    return rc;
}

#endif
