/* model: architecture tables and tensor binding, see model.h.
 * Every tensor's shape and type is checked here against the hyper-parameters
 * so that forward.c can index weights without further checks. */
#include "engine/model.h"
#include "base/util.h"

#include <dirent.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    const char *name;
    enum model_arch arch;
    enum rope_kind rope;
} arch_entry;

static const arch_entry arch_table[] = {
    {"llama", ARCH_LLAMA, ROPE_NORMAL},
    {"qwen2", ARCH_QWEN2, ROPE_NEOX},
    {"qwen3", ARCH_QWEN3, ROPE_NEOX},
    {"gemma3", ARCH_GEMMA3, ROPE_NEOX},
    {"qwen3moe", ARCH_QWEN3MOE, ROPE_NEOX},
    {"qwen35", ARCH_QWEN35, ROPE_NEOX},
    {"qwen35moe", ARCH_QWEN35MOE, ROPE_NEOX},
};

static bool get_int(const gguf_file *g, const char *arch, const char *suffix, int64_t *out) {
    char key[160];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    return gguf_get_i64(g, key, out);
}

static bool get_f(const gguf_file *g, const char *arch, const char *suffix, double *out) {
    char key[160];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    return gguf_get_f64(g, key, out);
}

/* Look up a tensor and check its shape: ne0 x ne1 (ne1 = 1 for vectors). */
static const gguf_tensor *need_tensor(const gguf_file *g, const char *name, int64_t ne0, int64_t ne1, bool optional) {
    const gguf_tensor *t = gguf_find_tensor(g, name);
    if (!t) {
        if (!optional) rys_seterr("%s: missing tensor %s", g->path, name);
        return NULL;
    }
    int64_t rows = 1;
    for (uint32_t d = 1; d < t->n_dims; d++) rows *= t->ne[d];
    if (t->ne[0] != ne0 || rows != ne1) {
        rys_seterr("%s: tensor %s has shape [%lld, %lld], expected [%lld, %lld]", g->path, name,
                   (long long)t->ne[0], (long long)rows, (long long)ne0, (long long)ne1);
        return NULL;
    }
    const quant_info *qi = quant_get_info(t->type);
    if (!qi || !qi->supported) {
        rys_seterr("%s: tensor %s has unsupported type %s", g->path, name, qi ? qi->name : "unknown");
        return NULL;
    }
    return t;
}

static bool bind_matrix(const gguf_file *g, const char *name, int64_t n_in, int64_t n_out, quant_matrix *out, bool optional) {
    const gguf_tensor *t = need_tensor(g, name, n_in, n_out, optional);
    if (!t) return false;
    out->type = t->type;
    out->n_in = n_in;
    out->n_out = n_out;
    out->data = t->data;
    return true;
}

/* 1-D vectors are small: convert to f32 once so kernels need one code path. */
static bool bind_vector(const gguf_file *g, const char *name, int64_t n, float **out, bool optional) {
    const gguf_tensor *t = need_tensor(g, name, n, 1, optional);
    *out = NULL;
    if (!t) return false;
    *out = xmalloc((size_t)n * sizeof(float));
    quant_dequantize_row(t->type, t->data, *out, n);
    return true;
}

/* The experts of one MoE tensor [n_in, n_out, n_expert]: out[e] is slice e,
 * a matrix of n_out rows that points into the file like any other weight
 * (a path that repeats the layer shares them). NULL with an error when the
 * tensor is missing or of another shape. */
static quant_matrix *bind_experts(const gguf_file *g, const char *name, int64_t n_in, int64_t n_out,
                                  int64_t n_expert) {
    const gguf_tensor *t = gguf_find_tensor(g, name);
    if (t && (t->n_dims != 3 || t->ne[0] != n_in || t->ne[1] != n_out || t->ne[2] != n_expert)) {
        rys_seterr("%s: tensor %s has %u dimensions [%lld, %lld, %lld], expected [%lld, %lld, %lld] (%lld experts)",
                   g->path, name, t->n_dims, (long long)t->ne[0], (long long)(t->n_dims > 1 ? t->ne[1] : 1),
                   (long long)(t->n_dims > 2 ? t->ne[2] : 1), (long long)n_in, (long long)n_out, (long long)n_expert,
                   (long long)n_expert);
        return NULL;
    }
    t = need_tensor(g, name, n_in, n_out * n_expert, false);   /* missing, or a type rys cannot compute */
    if (!t) return NULL;
    size_t slice = quant_row_size(t->type, n_in) * (size_t)n_out;
    quant_matrix *out = xcalloc((size_t)n_expert, sizeof *out);
    for (int64_t e = 0; e < n_expert; e++)
        out[e] = (quant_matrix){.type = t->type, .n_in = n_in, .n_out = n_out,
                                .data = (const uint8_t *)t->data + (size_t)e * slice};
    return out;
}

static void free_layers(model *m) {
    if (!m->layers) return;
    for (int l = 0; l < m->hp.n_layers; l++) {
        layer_weights *L = &m->layers[l];
        free(L->gate_exps); free(L->up_exps); free(L->down_exps);
        free(L->ssm_conv); free(L->ssm_dt); free(L->ssm_a); free(L->ssm_norm);
        free(L->attn_norm); free(L->ffn_norm);
        free(L->bq); free(L->bk); free(L->bv);
        free(L->q_norm); free(L->k_norm);
        free(L->post_attn_norm); free(L->post_ffn_norm);
    }
    free(m->layers);
}

void model_free(model *m) {
    if (!m) return;
    free_layers(m);
    free(m->output_norm);
    free(m->name);
    if (m->gguf && m->gguf->map) quant_release(m->gguf->map, m->gguf->map_size);
    gguf_close(m->gguf);
    free(m);
}

static int read_hparams(const gguf_file *g, model_hparams *hp) {
    char *arch = gguf_get_strdup(g, "general.architecture");
    if (!arch) { rys_seterr("%s: no general.architecture in metadata", g->path); return -1; }
    const arch_entry *e = NULL;
    for (size_t i = 0; i < sizeof arch_table / sizeof arch_table[0]; i++)
        if (!strcmp(arch, arch_table[i].name)) e = &arch_table[i];
    if (!e) {
        rys_seterr("%s: architecture '%s' is not supported (supported: llama, qwen2, qwen3, gemma3, qwen3moe, qwen35, qwen35moe)", g->path,
                   arch);
        free(arch);
        return -1;
    }
    free(arch);
    hp->arch = e->arch;
    hp->arch_name = e->name;
    hp->rope = e->rope;
    const char *a = e->name;

    int64_t v;
    double f;
#define NEED_INT(field, key, lo, hi)                                                          \
    do {                                                                                     \
        if (!get_int(g, a, key, &v)) { rys_seterr("%s: missing %s.%s", g->path, a, key); return -1; } \
        if (v < (lo) || v > (hi)) { rys_seterr("%s: %s.%s = %lld out of range", g->path, a, key, (long long)v); return -1; } \
        hp->field = (int)v;                                                                  \
    } while (0)
    NEED_INT(n_layers, "block_count", 1, 4096);
    NEED_INT(dim, "embedding_length", 1, 1 << 17);
    hp->shexp_ffn_dim = 0;
    if (e->arch == ARCH_QWEN3MOE || e->arch == ARCH_QWEN35MOE) {
        /* the experts' width is what the layers use; feed_forward_length (the
         * dense equivalent) only stands in for it when it is missing, as
         * llama.cpp's n_ff / n_expert_used */
        NEED_INT(n_expert, "expert_count", 1, 4096);
        NEED_INT(n_expert_used, "expert_used_count", 1, hp->n_expert);
        hp->ffn_dim = get_int(g, a, "feed_forward_length", &v) && v > 0 && v <= (1 << 20) ? (int)v : 0;
        if (get_int(g, a, "expert_feed_forward_length", &v)) {
            if (v < 1 || v > (1 << 20)) {
                rys_seterr("%s: %s.expert_feed_forward_length = %lld out of range", g->path, a, (long long)v);
                return -1;
            }
            hp->expert_ffn_dim = (int)v;
        } else {
            hp->expert_ffn_dim = hp->ffn_dim / hp->n_expert_used;
            if (hp->expert_ffn_dim < 1) {
                rys_seterr("%s: missing %s.expert_feed_forward_length", g->path, a);
                return -1;
            }
        }
        /* qwen35moe's shared expert: its own width, else feed_forward_length, as llama.cpp reads it */
        if (e->arch == ARCH_QWEN35MOE) {
            hp->shexp_ffn_dim = get_int(g, a, "expert_shared_feed_forward_length", &v) ? (int)v : hp->ffn_dim;
            if (hp->shexp_ffn_dim < 1 || hp->shexp_ffn_dim > (1 << 20)) {
                rys_seterr("%s: bad %s.expert_shared_feed_forward_length %d", g->path, a, hp->shexp_ffn_dim);
                return -1;
            }
        }
    } else {
        NEED_INT(ffn_dim, "feed_forward_length", 1, 1 << 20);
        hp->n_expert = hp->n_expert_used = hp->expert_ffn_dim = 0;
    }
    NEED_INT(n_head, "attention.head_count", 1, 4096);
#undef NEED_INT
    hp->n_head_kv = get_int(g, a, "attention.head_count_kv", &v) ? (int)v : hp->n_head;
    if (hp->n_head_kv < 1 || hp->n_head % hp->n_head_kv) {
        rys_seterr("%s: head_count %d is not a multiple of head_count_kv %d", g->path, hp->n_head, hp->n_head_kv);
        return -1;
    }
    hp->head_dim = get_int(g, a, "attention.key_length", &v) ? (int)v : hp->dim / hp->n_head;
    if (hp->head_dim < 2 || hp->head_dim > 1024 || hp->head_dim % 2) {
        rys_seterr("%s: bad head dimension %d", g->path, hp->head_dim);
        return -1;
    }
    int64_t vlen;
    if (get_int(g, a, "attention.value_length", &vlen) && vlen != hp->head_dim) {
        rys_seterr("%s: key_length != value_length is not supported", g->path);
        return -1;
    }
    hp->n_ctx_train = get_int(g, a, "context_length", &v) ? (int)v : 2048;
    hp->rms_eps = get_f(g, a, "attention.layer_norm_rms_epsilon", &f) ? (float)f : 1e-5f;
    hp->rope_base = get_f(g, a, "rope.freq_base", &f) ? (float)f : 10000.0f;
    hp->rope_base_local = 10000.0f;
    hp->rope_scale = 1.0f;
    char key[160];
    snprintf(key, sizeof key, "%s.rope.scaling.type", a);
    char *stype = gguf_get_strdup(g, key);
    if (stype && strcmp(stype, "none")) {
        if (strcmp(stype, "linear")) {
            rys_seterr("%s: rope scaling '%s' is not supported", g->path, stype);
            free(stype);
            return -1;
        }
        if (get_f(g, a, "rope.scaling.factor", &f) && f > 0) hp->rope_scale = (float)(1.0 / f);
    }
    free(stype);
    hp->rope_dims = get_int(g, a, "rope.dimension_count", &v) ? (int)v : hp->head_dim;
    if (hp->rope_dims > hp->head_dim || hp->rope_dims % 2) {
        rys_seterr("%s: bad rope.dimension_count %d", g->path, hp->rope_dims);
        return -1;
    }
    hp->attn_scale = 1.0f / sqrtf((float)hp->head_dim);
    hp->embd_scale = 1.0f;
    hp->sliding_window = 0;
    hp->gelu = false;
    if (hp->arch == ARCH_GEMMA3) {
        hp->embd_scale = sqrtf((float)hp->dim);
        hp->gelu = true;
        hp->sliding_window = get_int(g, a, "attention.sliding_window", &v) ? (int)v : 512;
        /* Gemma 3 27B (62 layers) was trained with query_pre_attn_scalar =
         * dim / n_head (168), not head_dim (128); llama.cpp keys it on the
         * layer count the same way, as the GGUF carries no such field. */
        if (hp->n_layers == 62) hp->attn_scale = 1.0f / sqrtf((float)(hp->dim / hp->n_head));
    }
    hp->attn_gate = false;
    hp->ssm_d_conv = hp->ssm_s = hp->ssm_n_k = hp->ssm_n_v = 0;
    if (hp->arch == ARCH_QWEN35 || hp->arch == ARCH_QWEN35MOE) {
        hp->attn_gate = true;
        /* IMROPE sections: a text token has the same position in every
         * section, which makes them NEOX RoPE over rope_dims */
#define NEED_SSM(field, key, lo, hi)                                                          \
    do {                                                                                     \
        if (!get_int(g, a, key, &v)) { rys_seterr("%s: missing %s.%s", g->path, a, key); return -1; } \
        if (v < (lo) || v > (hi)) { rys_seterr("%s: %s.%s = %lld out of range", g->path, a, key, (long long)v); return -1; } \
        hp->field = (int)v;                                                                  \
    } while (0)
        NEED_SSM(ssm_d_conv, "ssm.conv_kernel", 1, 64);
        NEED_SSM(ssm_s, "ssm.state_size", 1, 1024);
        NEED_SSM(ssm_n_k, "ssm.group_count", 1, 1024);
        NEED_SSM(ssm_n_v, "ssm.time_step_rank", 1, 1024);
#undef NEED_SSM
        if (hp->ssm_n_v % hp->ssm_n_k) {
            rys_seterr("%s: %s.ssm.time_step_rank %d is not a multiple of ssm.group_count %d", g->path, a, hp->ssm_n_v,
                       hp->ssm_n_k);
            return -1;
        }
        if (get_int(g, a, "ssm.inner_size", &v) && v != (int64_t)hp->ssm_s * hp->ssm_n_v) {
            rys_seterr("%s: %s.ssm.inner_size %lld != state_size x time_step_rank", g->path, a, (long long)v);
            return -1;
        }
    }
    return 0;
}

/* Whether layer l of a qwen35 file is a Gated DeltaNet layer: the file's
 * attention.recurrent_layers list where it has one, else every layer but
 * each full_attention_interval-th (default 4), as llama.cpp decides. */
static bool qwen35_recurrent(const gguf_file *g, const char *arch, int l) {
    char key[160];
    snprintf(key, sizeof key, "%s.attention.recurrent_layers", arch);
    const gguf_kv *kv = gguf_find(g, key);
    if (kv && kv->val.type == GGUF_T_ARRAY && kv->val.arr.type != GGUF_T_STRING && kv->val.arr.type != GGUF_T_ARRAY &&
        (uint64_t)l < kv->val.arr.n)
        return gguf_arr_i64(&kv->val, (uint64_t)l) != 0;
    int64_t interval = 4;
    if (!get_int(g, arch, "full_attention_interval", &interval) || interval < 1) interval = 4;
    return (l + 1) % interval != 0;
}

/* A qwen35 Gated DeltaNet layer's tensors (see model.h); 0, or -1 with an error. */
static int bind_deltanet(const gguf_file *g, const model_hparams *hp, int l, layer_weights *L) {
    int64_t key_dim = (int64_t)hp->ssm_s * hp->ssm_n_k, value_dim = (int64_t)hp->ssm_s * hp->ssm_n_v;
    int64_t conv_dim = 2 * key_dim + value_dim;
    char n[96];
#define T(suffix) (snprintf(n, sizeof n, "blk.%d.%s", l, suffix), n)
    if (!bind_matrix(g, T("attn_qkv.weight"), hp->dim, conv_dim, &L->ssm_qkv, false)) return -1;
    if (!bind_matrix(g, T("attn_gate.weight"), hp->dim, value_dim, &L->ssm_z, false)) return -1;
    if (!bind_matrix(g, T("ssm_beta.weight"), hp->dim, hp->ssm_n_v, &L->ssm_beta, false)) return -1;
    if (!bind_matrix(g, T("ssm_alpha.weight"), hp->dim, hp->ssm_n_v, &L->ssm_alpha, false)) return -1;
    if (!bind_matrix(g, T("ssm_out.weight"), value_dim, hp->dim, &L->ssm_out, false)) return -1;
    /* the convolution: conv_dim rows of d_conv weights (oldest input first), kept in f32 */
    const gguf_tensor *t = need_tensor(g, T("ssm_conv1d.weight"), hp->ssm_d_conv, conv_dim, false);
    if (!t) return -1;
    L->ssm_conv = xmalloc((size_t)(hp->ssm_d_conv * conv_dim) * sizeof(float));
    if (quant_dequantize_row(t->type, t->data, L->ssm_conv, hp->ssm_d_conv * conv_dim)) {
        rys_seterr("%s: tensor %s has a type rys cannot read as f32", g->path, n);
        return -1;
    }
    if (!bind_vector(g, T("ssm_dt.bias"), hp->ssm_n_v, &L->ssm_dt, false)) return -1;
    if (!bind_vector(g, T("ssm_a"), hp->ssm_n_v, &L->ssm_a, false)) return -1;
    if (!bind_vector(g, T("ssm_norm.weight"), hp->ssm_s, &L->ssm_norm, false)) return -1;
#undef T
    return 0;
}

model *model_from_gguf(gguf_file *g) {
    model *m = xcalloc(1, sizeof *m);
    m->gguf = g;
    model_hparams *hp = &m->hp;
    if (read_hparams(g, hp)) goto fail;

    const gguf_tensor *te = gguf_find_tensor(g, "token_embd.weight");
    if (!te || te->n_dims != 2) { rys_seterr("%s: missing or malformed token_embd.weight", g->path); goto fail; }
    hp->n_vocab = (int)te->ne[1];
    if (!bind_matrix(g, "token_embd.weight", hp->dim, hp->n_vocab, &m->tok_embd, false)) goto fail;
    if (!bind_matrix(g, "output.weight", hp->dim, hp->n_vocab, &m->output, true)) {
        if (gguf_find_tensor(g, "output.weight")) goto fail;   /* present but malformed */
        m->output = m->tok_embd;                                /* tied embeddings */
    }
    if (!bind_vector(g, "output_norm.weight", hp->dim, &m->output_norm, false)) goto fail;

    int q_dim = hp->n_head * hp->head_dim, kv_dim = hp->n_head_kv * hp->head_dim;
    m->layers = xcalloc((size_t)hp->n_layers, sizeof *m->layers);
    for (int l = 0; l < hp->n_layers; l++) {
        layer_weights *L = &m->layers[l];
        char n[96];
#define T(suffix) (snprintf(n, sizeof n, "blk.%d.%s", l, suffix), n)
        if (!bind_vector(g, T("attn_norm.weight"), hp->dim, &L->attn_norm, false)) goto fail;
        /* qwen35's feed-forward input norm is named post_attention_norm */
        bool q35 = hp->arch == ARCH_QWEN35 || hp->arch == ARCH_QWEN35MOE;
        if (!bind_vector(g, T(q35 ? "post_attention_norm.weight" : "ffn_norm.weight"), hp->dim, &L->ffn_norm, false))
            goto fail;
        L->recurrent = q35 && qwen35_recurrent(g, hp->arch_name, l);
        if (L->recurrent) {
            if (bind_deltanet(g, hp, l, L)) goto fail;
        } else {
            if (!bind_matrix(g, T("attn_q.weight"), hp->dim, hp->attn_gate ? 2 * q_dim : q_dim, &L->wq, false)) goto fail;
            if (!bind_matrix(g, T("attn_k.weight"), hp->dim, kv_dim, &L->wk, false)) goto fail;
            if (!bind_matrix(g, T("attn_v.weight"), hp->dim, kv_dim, &L->wv, false)) goto fail;
            if (!bind_matrix(g, T("attn_output.weight"), q_dim, hp->dim, &L->wo, false)) goto fail;
        }
        if (hp->n_expert) {
            int64_t ne = hp->n_expert, ef = hp->expert_ffn_dim;
            if (!bind_matrix(g, T("ffn_gate_inp.weight"), hp->dim, ne, &L->router, false)) goto fail;
            if (!(L->gate_exps = bind_experts(g, T("ffn_gate_exps.weight"), hp->dim, ef, ne))) goto fail;
            if (!(L->up_exps = bind_experts(g, T("ffn_up_exps.weight"), hp->dim, ef, ne))) goto fail;
            if (!(L->down_exps = bind_experts(g, T("ffn_down_exps.weight"), ef, hp->dim, ne))) goto fail;
            if (hp->shexp_ffn_dim) {
                int64_t sf = hp->shexp_ffn_dim;
                if (!bind_matrix(g, T("ffn_gate_inp_shexp.weight"), hp->dim, 1, &L->shexp_gate_inp, false)) goto fail;
                if (!bind_matrix(g, T("ffn_gate_shexp.weight"), hp->dim, sf, &L->shexp_gate, false)) goto fail;
                if (!bind_matrix(g, T("ffn_up_shexp.weight"), hp->dim, sf, &L->shexp_up, false)) goto fail;
                if (!bind_matrix(g, T("ffn_down_shexp.weight"), sf, hp->dim, &L->shexp_down, false)) goto fail;
            }
        } else {
            if (!bind_matrix(g, T("ffn_gate.weight"), hp->dim, hp->ffn_dim, &L->w_gate, false)) goto fail;
            if (!bind_matrix(g, T("ffn_up.weight"), hp->dim, hp->ffn_dim, &L->w_up, false)) goto fail;
            if (!bind_matrix(g, T("ffn_down.weight"), hp->ffn_dim, hp->dim, &L->w_down, false)) goto fail;
        }
        /* Optional tensors: absent is fine, present-but-malformed is not. */
#define OPT_VEC(field, suffix, len)                                                    \
        if (!bind_vector(g, T(suffix), len, &L->field, true) && gguf_find_tensor(g, n)) goto fail;
        OPT_VEC(bq, "attn_q.bias", q_dim);
        OPT_VEC(bk, "attn_k.bias", kv_dim);
        OPT_VEC(bv, "attn_v.bias", kv_dim);
        OPT_VEC(q_norm, "attn_q_norm.weight", hp->head_dim);
        OPT_VEC(k_norm, "attn_k_norm.weight", hp->head_dim);
        if (!q35) OPT_VEC(post_attn_norm, "post_attention_norm.weight", hp->dim);
        OPT_VEC(post_ffn_norm, "post_ffw_norm.weight", hp->dim);
#undef OPT_VEC
#undef T
        if (hp->arch == ARCH_QWEN2 && !(L->bq && L->bk && L->bv)) {
            rys_seterr("%s: qwen2 layer %d lacks q/k/v biases", g->path, l);
            goto fail;
        }
        if ((hp->arch == ARCH_QWEN3 || hp->arch == ARCH_QWEN3MOE || hp->arch == ARCH_GEMMA3 ||
             (q35 && !L->recurrent)) &&
            !(L->q_norm && L->k_norm)) {
            rys_seterr("%s: %s layer %d lacks q/k norms", g->path, hp->arch_name, l);
            goto fail;
        }
        if (hp->arch == ARCH_GEMMA3) {
            if (!(L->post_attn_norm && L->post_ffn_norm)) {
                rys_seterr("%s: gemma3 layer %d lacks post-norms", g->path, l);
                goto fail;
            }
            L->sliding = model_layer_sliding(hp->arch_name, l);
        }
    }
    char *name = gguf_get_strdup(g, "general.name");
    if (!name) {
        const char *slash = strrchr(g->path, '/');
        name = xstrdup(slash ? slash + 1 : g->path);
    }
    m->name = name;
    return m;
fail:
    m->gguf = NULL;      /* the caller still owns g on failure */
    free_layers(m);
    free(m->output_norm);
    free(m);
    return NULL;
}

bool model_layer_sliding(const char *arch, int l) { return !strcmp(arch, "gemma3") && (l + 1) % 6 != 0; }

/* FNV-1a of s: a short, stable name for a path. */
static uint64_t fnv1a(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
    return h;
}

/* Keeps the kernels' copies of the file's matrices in rys's cache
 * (quant_cache_file), unless RYS_PACK_CACHE=0 or the file is smaller than
 * RYS_PACK_CACHE_MIN bytes (default 64 MiB: a smaller model builds them in a
 * blink, and tests' temporary models would only litter the cache). The
 * cache file is named by the model file's real path, size, modification
 * time and inode; the same path's files of other versions are removed. */
static void attach_pack_cache(const gguf_file *g, const char *path) {
    const char *off = getenv("RYS_PACK_CACHE"), *min_env = getenv("RYS_PACK_CACHE_MIN");
    long long min_bytes = min_env && *min_env ? atoll(min_env) : 64ll << 20;
    struct stat st;
    char dir[4096], real[4096], name[160], file[4400];
    if ((off && !strcmp(off, "0")) || stat(path, &st) || (long long)st.st_size < min_bytes || !realpath(path, real) ||
        !rys_cache_dir("packed", dir, sizeof dir) || rys_mkdirs(dir))
        return;
    char prefix[32];
    snprintf(prefix, sizeof prefix, "%016llx-", (unsigned long long)fnv1a(real));
    snprintf(name, sizeof name, "%s%lld-%lld%09ld-%llu.pack", prefix, (long long)st.st_size, (long long)st.st_mtim.tv_sec,
             st.st_mtim.tv_nsec, (unsigned long long)st.st_ino);
    DIR *d = opendir(dir);
    for (struct dirent *de; d && (de = readdir(d));)
        if (!strncmp(de->d_name, prefix, strlen(prefix)) && strcmp(de->d_name, name) && !strstr(de->d_name, ".tmp.")) {
            snprintf(file, sizeof file, "%s/%s", dir, de->d_name);
            unlink(file);
        }
    if (d) closedir(d);
    snprintf(file, sizeof file, "%s/%s", dir, name);
    quant_cache_file(g->map, g->map_size, file);
}

model *model_load(const char *path) {
    gguf_file *g = gguf_open(path);
    if (!g) return NULL;
    model *m = model_from_gguf(g);
    if (!m) gguf_close(g);
    else if (g->map) attach_pack_cache(g, path);
    return m;
}

void model_embed(const model *m, int32_t token, float *out) {
    const quant_matrix *e = &m->tok_embd;
    size_t row = quant_row_size(e->type, e->n_in);
    quant_dequantize_row(e->type, (const uint8_t *)e->data + row * (size_t)token, out, e->n_in);
    if (m->hp.embd_scale != 1.0f)
        for (int i = 0; i < m->hp.dim; i++) out[i] *= m->hp.embd_scale;
}
