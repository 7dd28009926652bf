/* gguf_export: relayered GGUF files (see export.h).
 *
 * Why the writer gets pointers into the source mapping instead of copies:
 * a 70B model does not fit in RAM twice. The writer streams every tensor's
 * bytes from the mmap to the output, so the only memory a materialized export
 * costs is the page cache the kernel can drop at will. */
#include "export/export.h"
#include "engine/model.h"
#include "quant/quant.h"
#include "base/sha256.h"
#include "base/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Layer counts beyond this are a corrupt file, not a model. */
#define EXPORT_MAX_LAYERS 100000
/* Hash the source in chunks this size so the progress bar moves. */
#define EXPORT_HASH_CHUNK (64u << 20)

static char *str_dup(gguf_str s) {
    char *c = xmalloc(s.len + 1);
    memcpy(c, s.ptr, s.len);
    c[s.len] = 0;
    return c;
}

/* The architecture name and its block_count; -1 with the error set. */
static int read_arch(const gguf_file *g, char **arch, int *n_layers) {
    *arch = gguf_get_strdup(g, "general.architecture");
    if (!*arch) { rys_seterr("%s: no general.architecture string", g->path); return -1; }
    char key[256];
    snprintf(key, sizeof key, "%s.block_count", *arch);
    uint64_t n;
    if (!gguf_get_u64(g, key, &n) || n < 1 || n > EXPORT_MAX_LAYERS) {
        rys_seterr("%s: no usable %s", g->path, key);
        free(*arch);
        *arch = NULL;
        return -1;
    }
    *n_layers = (int)n;
    return 0;
}

/* For "blk.<L>.<rest>" the layer L and the offset of <rest>; -1 otherwise. */
static int tensor_layer(gguf_str name, size_t *rest) {
    static const char prefix[] = "blk.";
    size_t k = sizeof prefix - 1;
    if (name.len <= k || memcmp(name.ptr, prefix, k)) return -1;
    long l = 0;
    size_t d = k;
    while (d < name.len && name.ptr[d] >= '0' && name.ptr[d] <= '9' && d - k < 7) l = l * 10 + (name.ptr[d++] - '0');
    if (d == k || d >= name.len || name.ptr[d] != '.') return -1;
    *rest = d + 1;
    return (int)l;
}

static size_t numeric_size(uint32_t t) {
    switch (t) {
    case GGUF_T_U8: case GGUF_T_I8: case GGUF_T_BOOL: return 1;
    case GGUF_T_U16: case GGUF_T_I16: return 2;
    case GGUF_T_U32: case GGUF_T_I32: case GGUF_T_F32: return 4;
    case GGUF_T_U64: case GGUF_T_I64: case GGUF_T_F64: return 8;
    default: return 0;
    }
}

/* A per-layer array (one element per source layer) rewritten so element p
 * is the source element of layer path[p], whatever the element type. */
static void copy_array_along_path(gguf_writer *w, const gguf_kv *kv, const layer_path *path) {
    const gguf_value *v = &kv->val;
    gguf_kv out = *kv;
    out.val.arr.n = (uint64_t)path->n;
    void *buf = NULL;
    if (v->arr.type == GGUF_T_STRING) {
        gguf_str *s = xmalloc((size_t)path->n * sizeof *s);
        for (int p = 0; p < path->n; p++) s[p] = v->arr.strs[path->layers[p]];
        out.val.arr.strs = s;
        buf = s;
    } else if (v->arr.type == GGUF_T_ARRAY) {
        gguf_value *it = xmalloc((size_t)path->n * sizeof *it);
        for (int p = 0; p < path->n; p++) it[p] = v->arr.items[path->layers[p]];
        out.val.arr.items = it;
        buf = it;
    } else {
        size_t es = numeric_size(v->arr.type);
        uint8_t *raw = xmalloc((size_t)path->n * es + 1);
        for (int p = 0; p < path->n; p++)
            memcpy(raw + (size_t)p * es, (const uint8_t *)v->arr.raw + (size_t)path->layers[p] * es, es);
        out.val.arr.raw = raw;
        buf = raw;
    }
    gguf_writer_copy_kv(w, &out, NULL);
    free(buf);
}

static bool key_has_prefix(gguf_str key, const char *prefix) {
    size_t n = strlen(prefix);
    return key.len >= n && !memcmp(key.ptr, prefix, n);
}

/* The source's sha256 from its mapping (one read, with a progress bar). */
static void hash_mapping(const gguf_file *g, bool show, char hex[65]) {
    sha256_ctx c;
    sha256_init(&c);
    progress pr;
    progress_start(&pr, "hashing source (MiB)", (int64_t)(g->map_size >> 20));
    pr.enabled &= show;
    for (size_t off = 0; off < g->map_size; off += EXPORT_HASH_CHUNK) {
        size_t n = g->map_size - off < EXPORT_HASH_CHUNK ? g->map_size - off : EXPORT_HASH_CHUNK;
        sha256_update(&c, g->map + off, n);
        progress_update(&pr, (int64_t)((off + n) >> 20), NULL);
    }
    progress_finish(&pr);
    uint8_t d[32];
    sha256_final(&c, d);
    sha256_hex(d, hex);
}

static void show_written(void *ctx, uint64_t done, uint64_t total) {
    progress *pr = ctx;
    pr->total = (int64_t)(total >> 20);
    progress_update(pr, (int64_t)(done >> 20), NULL);
}

static bool same_file(const char *a, const char *b) {
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* Metadata: the source's (its own rys.* dropped, they described another
 * export), block_count and per-layer arrays following a materialized path. */
static void copy_metadata(gguf_writer *w, const gguf_file *g, const char *arch, int n_model,
                          const layer_path *path, bool materialize) {
    char arch_prefix[256], block_count_key[256];
    snprintf(arch_prefix, sizeof arch_prefix, "%s.", arch);
    snprintf(block_count_key, sizeof block_count_key, "%s.block_count", arch);
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const gguf_kv *kv = &g->kv[i];
        if (key_has_prefix(kv->key, "rys.")) continue;
        if (materialize && gguf_str_eq(kv->key, block_count_key)) {
            gguf_writer_set_u32(w, block_count_key, (uint32_t)path->n);
        } else if (materialize && kv->val.type == GGUF_T_ARRAY && kv->val.arr.n == (uint64_t)n_model &&
                   key_has_prefix(kv->key, arch_prefix)) {
            copy_array_along_path(w, kv, path);
        } else {
            gguf_writer_copy_kv(w, kv, NULL);
        }
    }
}

/* Whether the layer with tensor `rest` ("<name>.weight" after "blk.<L>.")
 * among its siblings adds its attention or feed-forward output to the residual
 * stream as this tensor's last linear factor: the output projections and
 * their biases, or, where the layer normalizes an output before adding it
 * (gemma3's post-norms: the update is norm(out) * w), that norm's weight,
 * since a scale on the projection would be normalized away. */
static bool residual_factor(const char *rest, bool post_norms) {
    static const char *const proj[] = {"attn_output.weight", "attn_output.bias", "ffn_down.weight", "ffn_down.bias"};
    static const char *const post[] = {"post_attention_norm.weight", "post_ffw_norm.weight"};
    const char *const *names = post_norms ? post : proj;
    int n = post_norms ? 2 : 4;
    for (int k = 0; k < n; k++)
        if (!strcmp(rest, names[k])) return true;
    return false;
}

/* Whether source layer l normalizes its outputs before the residual add. */
static bool layer_has_post_norms(const gguf_file *g, int l) {
    char a[64], f[64];
    snprintf(a, sizeof a, "blk.%d.post_attention_norm.weight", l);
    snprintf(f, sizeof f, "blk.%d.post_ffw_norm.weight", l);
    bool has_a = false, has_f = false;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        has_a |= gguf_str_eq(g->tensors[i].name, a);
        has_f |= gguf_str_eq(g->tensors[i].name, f);
    }
    return has_a && has_f;
}

/* A copy of tensor t with every value times a (quant_scale_row: float
 * formats value by value, block formats through their fp16 scales), into
 * *keep for the writer; NULL with the error set for a format without scales. */
static const void *scaled_copy(const gguf_file *g, const gguf_tensor *t, const char *name, float a, void **keep) {
    int64_t rows = 1;
    for (uint32_t d = 1; d < t->n_dims; d++) rows *= t->ne[d];
    uint8_t *buf = xmalloc(t->nbytes ? t->nbytes : 1);
    memcpy(buf, t->data, t->nbytes);
    size_t row_bytes = quant_row_size(t->type, t->ne[0]);
    for (int64_t r = 0; r < rows; r++)
        if (!row_bytes || quant_scale_row(t->type, buf + (size_t)r * row_bytes, t->ne[0], a)) {
            char msg[256];
            snprintf(msg, sizeof msg, "%s", row_bytes ? rys_lasterr() : "unknown format");
            rys_seterr("%s: cannot fold the residual scale into %s: %s", g->path, name, msg);
            free(buf);
            return NULL;
        }
    *keep = buf;
    return buf;
}

/* Tensors: non-layer ones as they come; at the first layer tensor, all path
 * positions' layers renamed blk.<p>.*, in the source's order within a layer.
 * A position with residual scale a != 1 gets its residual factors
 * (residual_factor) as scaled copies, kept in *bufs (n_bufs of them) until
 * the file is written. */
static int add_tensors(gguf_writer *w, const gguf_file *g, int n_model, const layer_path *path,
                       bool materialize, void ***bufs, int *n_bufs) {
    int *count = xcalloc((size_t)n_model, sizeof *count);
    int rc = -1;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        size_t rest;
        int l = tensor_layer(g->tensors[i].name, &rest);
        if (l >= n_model) {
            char *nm = str_dup(g->tensors[i].name);
            rys_seterr("%s: tensor '%s' is past block_count %d", g->path, nm, n_model);
            free(nm);
            goto out;
        }
        if (l >= 0) count[l]++;
    }
    for (int p = 0; p < path->n; p++)
        if (!count[path->layers[p]]) {
            rys_seterr("%s: layer %d has no blk.%d.* tensors", g->path, path->layers[p], path->layers[p]);
            goto out;
        }
    bool layers_done = false;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const gguf_tensor *t = &g->tensors[i];
        size_t rest;
        if (!materialize || tensor_layer(t->name, &rest) < 0) {
            char *nm = str_dup(t->name);
            gguf_writer_add_tensor(w, nm, t->type, t->n_dims, t->ne, t->data);
            free(nm);
            continue;
        }
        if (layers_done) continue;
        layers_done = true;
        for (int p = 0; p < path->n; p++) {
            float a = path_scale(path, p);
            bool post_norms = a != 1.0f && layer_has_post_norms(g, path->layers[p]);
            int folded = 0;
            for (uint64_t k = i; k < g->n_tensors; k++) {
                const gguf_tensor *s = &g->tensors[k];
                if (tensor_layer(s->name, &rest) != path->layers[p]) continue;
                char nm[512];
                snprintf(nm, sizeof nm, "blk.%d.%.*s", p, (int)(s->name.len - rest), s->name.ptr + rest);
                const void *data = s->data;
                if (a != 1.0f && residual_factor(strchr(nm + 4, '.') + 1, post_norms)) {
                    *bufs = xrealloc(*bufs, (size_t)(*n_bufs + 1) * sizeof **bufs);
                    if (!(data = scaled_copy(g, s, nm, a, &(*bufs)[*n_bufs]))) goto out;
                    (*n_bufs)++;
                    folded += !strstr(nm, ".bias");
                }
                gguf_writer_add_tensor(w, nm, s->type, s->n_dims, s->ne, data);
            }
            if (a != 1.0f && folded != 2) {
                rys_seterr("%s: layer %d lacks its %s weights, so residual scale %g at position %d has nowhere to go",
                           g->path, path->layers[p], post_norms ? "post-norm" : "attn_output / ffn_down", (double)a, p);
                goto out;
            }
        }
    }
    rc = 0;
out:
    free(count);
    return rc;
}

int export_gguf(const char *src_path, const char *dst_path, const export_opts *o) {
    if (same_file(src_path, dst_path)) {
        rys_seterr("%s: output would overwrite the source", dst_path);
        return -1;
    }
    gguf_file *g = gguf_open(src_path);
    if (!g) return -1;
    char *arch = NULL, *canon = NULL;
    layer_path path = {0};
    gguf_writer *w = NULL;
    void **bufs = NULL;
    int n_model, rc = -1, n_bufs = 0;
    if (read_arch(g, &arch, &n_model)) goto out;
    if (path_from_specs(o->blocks, o->layers, n_model, &path)) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", rys_lasterr());
        rys_seterr("%s: %s", src_path, msg);
        goto out;
    }
    bool materialize = !o->virtual_path;
    if (materialize && path.n_seg) {
        rys_seterr("%s: the damped-Euler rule (@euler) sets the state after a traversal to x0 + h (x - x0), its input "
                   "and output mixed, which no layer weight of a GGUF can express; use --virtual (rys runs it) or a "
                   "repeat scale (i,j@a), which folds into the copied layers",
                   src_path);
        goto out;
    }
    for (int p = 0; materialize && p < path.n; p++)
        if (model_layer_sliding(arch, path.layers[p]) != model_layer_sliding(arch, p)) {
            const char *kind[2] = {"global", "sliding-window"};
            rys_seterr("%s: %s takes each layer's attention kind from its position, and this path puts layer %d "
                       "(%s) at position %d (%s): a materialized copy would run differently from --blocks; use "
                       "blocks whose lengths are multiples of 6, --virtual, or a Hugging Face export "
                       "(config layer_types follows the path)",
                       src_path, arch, path.layers[p], kind[model_layer_sliding(arch, path.layers[p])], p,
                       kind[model_layer_sliding(arch, p)]);
            goto out;
        }
    /* qwen35 without a per-layer list: the reader takes each layer's kind (Gated DeltaNet or attention)
     * from its position, every full_attention_interval-th being attention; a copy that moves a layer to a
     * position of the other kind would not load */
    int64_t interval = 4;
    char rkey[160], ikey[160];
    snprintf(rkey, sizeof rkey, "%s.attention.recurrent_layers", arch);
    snprintf(ikey, sizeof ikey, "%s.full_attention_interval", arch);
    if ((!strcmp(arch, "qwen35") || !strcmp(arch, "qwen35moe")) && !gguf_find(g, rkey)) {
        if (!gguf_get_i64(g, ikey, &interval) || interval < 1) interval = 4;
        for (int p = 0; materialize && p < path.n; p++)
            if (((path.layers[p] + 1) % interval != 0) != ((p + 1) % interval != 0)) {
                rys_seterr("%s: %s takes each layer's kind from its position, and this path puts layer %d at "
                           "position %d, of the other kind (attention every %lld): use blocks whose lengths are "
                           "multiples of %lld, or --virtual",
                           src_path, arch, path.layers[p], p, (long long)interval, (long long)interval);
                goto out;
            }
    }
    w = gguf_writer_new(g->alignment);
    copy_metadata(w, g, arch, n_model, &path, materialize);
    if (add_tensors(w, g, n_model, &path, materialize, &bufs, &n_bufs)) goto out;

    char hex[65];
    hash_mapping(g, o->progress, hex);
    canon = path_canonical(&path);
    gguf_writer_set_str(w, "rys.version", RYS_VERSION);
    gguf_writer_set_str(w, "rys.export_kind", materialize ? "materialized" : "virtual");
    gguf_writer_set_str(w, "rys.source_sha256", hex);
    gguf_writer_set_str(w, "rys.layer_path", canon);
    if (o->blocks) gguf_writer_set_str(w, "rys.blocks", o->blocks);

    progress pr;
    progress_start(&pr, "writing tensors (MiB)", 0);
    pr.enabled &= o->progress;
    gguf_writer_set_progress(w, show_written, &pr);
    int wr = gguf_writer_write(w, dst_path);
    progress_finish(&pr);
    if (wr) goto out;
    rc = 0;
out:
    gguf_writer_free(w);
    for (int k = 0; k < n_bufs; k++) free(bufs[k]);
    free(bufs);
    free(canon);
    free(arch);
    path_free(&path);
    gguf_close(g);
    return rc;
}

int export_read_virtual_path(const gguf_file *g, layer_path *out) {
    const gguf_kv *kv = gguf_find(g, "rys.layer_path");
    if (!kv) return 0;
    const gguf_kv *kind = gguf_find(g, "rys.export_kind");
    if (kind && kind->val.type == GGUF_T_STRING && gguf_str_eq(kind->val.s, "materialized")) return 0;
    if (kv->val.type != GGUF_T_STRING) { rys_seterr("%s: rys.layer_path is not a string", g->path); return -1; }
    char *arch = NULL;
    int n_model;
    if (read_arch(g, &arch, &n_model)) return -1;
    free(arch);
    char *spec = str_dup(kv->val.s);
    static const char prefix[] = "layers:";
    int rc = -1;
    if (strncmp(spec, prefix, sizeof prefix - 1)) {
        rys_seterr("%s: rys.layer_path '%.80s' does not start with \"layers:\"", g->path, spec);
    } else if (path_from_layers(spec + sizeof prefix - 1, n_model, out)) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", rys_lasterr());
        rys_seterr("%s: rys.layer_path: %s", g->path, msg);
    } else {
        rc = 1;
    }
    free(spec);
    return rc;
}
