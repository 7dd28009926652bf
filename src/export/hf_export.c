/* hf_export: a relayered Hugging Face model directory (see export.h).
 *
 * Why a whole new directory instead of patching the source in place: the
 * renumbered layers change every shard's header and the index, and a
 * directory half converted is worse than none. Everything is written into a
 * temporary sibling directory and renamed to the final name only when every
 * file is complete; any failure removes the temporary directory. */
#include "export/export.h"
#include "export/safetensors.h"
#include "quant/quant.h"
#include "base/sha256.h"
#include "base/util.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HF_MAX_LAYERS 100000
#define HF_INDEX "model.safetensors.index.json"
#define HF_MANIFEST "rys_export_manifest.json"

/* Where decoder layers live in the tensor names of the architectures we know
 * (text-only models, and the language half of multimodal ones). */
static const char *const layer_prefixes[] = {
    "model.layers.", "model.language_model.layers.", "language_model.layers.", "language_model.model.layers.",
};

/* Copied as they are when present: everything a loader needs besides weights. */
static const char *const side_files[] = {
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json",
    "vocab.json", "merges.txt", "vocab.txt", "tokenizer.model", "added_tokens.json",
    "chat_template.jinja", "chat_template.json", "preprocessor_config.json", "processor_config.json",
};

typedef struct {
    const st_tensor *t;
    int layer;          /* -1 for non-layer tensors */
    size_t rest;        /* offset of the name after "<prefix><layer>." */
} hf_tensor;

typedef struct {
    const char *src_dir;
    json_t *config;
    st_file **shards;
    size_t n_shards;
    bool sharded;       /* the source has an index: write one too */
    hf_tensor *tensors;
    size_t n_tensors;
    const char *prefix;
    int n_model;
} hf_source;

typedef struct {
    char *dir;          /* the temporary output directory */
    json_t *files;      /* name -> sha256 of every file written */
    progress pr;
    bool show_progress;
    uint64_t done;
} hf_out;

static char *join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = xmalloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static bool file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* Which object of config.json describes the decoder: text_config for
 * multimodal models, the top level otherwise. */
static json_t *decoder_config(json_t *config) {
    json_t *tc = json_object_get(config, "text_config");
    if (json_is_object(tc) && json_is_integer(json_object_get(tc, "num_hidden_layers"))) return tc;
    return config;
}

static int load_config(hf_source *s) {
    char *path = join(s->src_dir, "config.json");
    json_error_t err;
    s->config = json_load_file(path, 0, &err);
    int rc = -1;
    if (!s->config) {
        rys_seterr("%s: %s", path, file_exists(path) ? err.text : "missing");
    } else if (!json_is_object(s->config)) {
        rys_seterr("%s: not a JSON object", path);
    } else {
        json_t *n = json_object_get(decoder_config(s->config), "num_hidden_layers");
        if (!json_is_integer(n) || json_integer_value(n) < 1 || json_integer_value(n) > HF_MAX_LAYERS) {
            rys_seterr("%s: no usable num_hidden_layers", path);
        } else {
            s->n_model = (int)json_integer_value(n);
            rc = 0;
        }
    }
    free(path);
    return rc;
}

static int open_shard(hf_source *s, const char *name, const char *listed_in) {
    if (strchr(name, '/') || !strcmp(name, "..") || !*name) {
        rys_seterr("%s: shard name '%s' is not a plain file name", s->src_dir, name);
        return -1;
    }
    char *path = join(s->src_dir, name);
    if (!file_exists(path)) {
        if (listed_in) rys_seterr("%s: missing shard (listed in %s)", path, listed_in);
        else rys_seterr("%s: missing", path);
        free(path);
        return -1;
    }
    st_file *f = st_open(path);
    free(path);
    if (!f) return -1;
    s->shards = xrealloc(s->shards, (s->n_shards + 1) * sizeof *s->shards);
    s->shards[s->n_shards++] = f;
    return 0;
}

static const char *base_name(const char *path) {
    const char *b = strrchr(path, '/');
    return b ? b + 1 : path;
}

/* Opens every shard the index names and checks the index and the shard
 * headers agree tensor for tensor. */
static int open_shards(hf_source *s) {
    char *index_path = join(s->src_dir, HF_INDEX);
    int rc = -1;
    json_t *index = NULL;
    if (!file_exists(index_path)) {
        free(index_path);
        return open_shard(s, "model.safetensors", NULL);
    }
    s->sharded = true;
    json_error_t err;
    index = json_load_file(index_path, 0, &err);
    json_t *wm = json_object_get(index, "weight_map");
    if (!index) { rys_seterr("%s: %s", index_path, err.text); goto out; }
    if (!json_is_object(wm) || !json_object_size(wm)) { rys_seterr("%s: no weight_map object", index_path); goto out; }
    const char *name;
    json_t *v;
    json_object_foreach(wm, name, v) {
        if (!json_is_string(v)) { rys_seterr("%s: weight_map['%s'] is not a string", index_path, name); goto out; }
        bool seen = false;
        for (size_t k = 0; k < s->n_shards && !seen; k++)
            seen = !strcmp(base_name(s->shards[k]->path), json_string_value(v));
        if (!seen && open_shard(s, json_string_value(v), HF_INDEX)) goto out;
    }
    json_object_foreach(wm, name, v) {
        bool found = false;
        for (size_t k = 0; k < s->n_shards && !found; k++)
            found = !strcmp(base_name(s->shards[k]->path), json_string_value(v)) && st_find(s->shards[k], name);
        if (!found) {
            rys_seterr("%s: tensor '%s' is not in %s as the index says", index_path, name, json_string_value(v));
            goto out;
        }
    }
    for (size_t k = 0; k < s->n_shards; k++)
        for (size_t i = 0; i < s->shards[k]->n_tensors; i++) {
            const char *tn = s->shards[k]->tensors[i].name;
            json_t *want = json_object_get(wm, tn);
            if (!want || strcmp(json_string_value(want), base_name(s->shards[k]->path))) {
                rys_seterr("%s: tensor '%s' of %s is not mapped to it by the index", index_path, tn,
                           base_name(s->shards[k]->path));
                goto out;
            }
        }
    rc = 0;
out:
    json_decref(index);
    free(index_path);
    return rc;
}

/* For "<prefix><L>.<rest>" the layer L and the offset of <rest>; -1 otherwise. */
static int layer_of(const char *name, const char *prefix, size_t *rest) {
    size_t k = strlen(prefix);
    if (strncmp(name, prefix, k)) return -1;
    long l = 0;
    size_t d = k;
    while (name[d] >= '0' && name[d] <= '9' && d - k < 7) l = l * 10 + (name[d++] - '0');
    if (d == k || name[d] != '.') return -1;
    *rest = d + 1;
    return (int)l;
}

static int classify_tensors(hf_source *s, const layer_path *path) {
    size_t total = 0;
    for (size_t k = 0; k < s->n_shards; k++) total += s->shards[k]->n_tensors;
    s->tensors = xcalloc(total ? total : 1, sizeof *s->tensors);
    int *count = xcalloc((size_t)s->n_model, sizeof *count);
    int rc = -1;
    for (size_t k = 0; k < s->n_shards; k++)
        for (size_t i = 0; i < s->shards[k]->n_tensors; i++) {
            hf_tensor *h = &s->tensors[s->n_tensors++];
            h->t = &s->shards[k]->tensors[i];
            h->layer = -1;
            for (size_t p = 0; p < sizeof layer_prefixes / sizeof layer_prefixes[0] && h->layer < 0; p++) {
                h->layer = layer_of(h->t->name, layer_prefixes[p], &h->rest);
                if (h->layer < 0) continue;
                if (s->prefix && strcmp(s->prefix, layer_prefixes[p])) {
                    rys_seterr("%s: decoder layers under both '%sN.' and '%sN.'", s->src_dir, s->prefix,
                               layer_prefixes[p]);
                    goto out;
                }
                s->prefix = layer_prefixes[p];
            }
            if (h->layer >= s->n_model) {
                rys_seterr("%s: tensor '%s' is past num_hidden_layers %d", s->shards[k]->path, h->t->name,
                           s->n_model);
                goto out;
            }
            if (h->layer >= 0) count[h->layer]++;
        }
    if (!s->prefix) {
        rys_seterr("%s: unknown tensor naming scheme: no decoder layers named model.layers.N.*, "
                   "model.language_model.layers.N.* or language_model.layers.N.*", s->src_dir);
        goto out;
    }
    for (int p = 0; p < path->n; p++)
        if (!count[path->layers[p]]) {
            rys_seterr("%s: layer %d has no %s%d.* tensors", s->src_dir, path->layers[p], s->prefix, path->layers[p]);
            goto out;
        }
    rc = 0;
out:
    free(count);
    return rc;
}

/* The output projections that carry a layer's attention and feed-forward
 * updates into the residual stream: where a residual scale is folded. */
static const char *const residual_factors[] = {
    "self_attn.o_proj.weight", "self_attn.o_proj.bias", "mlp.down_proj.weight", "mlp.down_proj.bias",
};

static bool is_residual_factor(const char *rest) {
    for (size_t k = 0; k < sizeof residual_factors / sizeof residual_factors[0]; k++)
        if (!strcmp(rest, residual_factors[k])) return true;
    return false;
}

/* Whether every scaled position of path can take its scale in its
 * projections: no damped-Euler traversals, both projection weights present,
 * no post-norms (Gemma's norm(out) * (1 + w) would need w' = a (1 + w) - 1,
 * which bf16 cannot hold exactly; a scale on the projection is normalized
 * away). 0, or -1 with the reason. */
static int check_foldable(const hf_source *s, const layer_path *path) {
    if (path->n_seg) {
        rys_seterr("%s: the damped-Euler rule (@euler) mixes a traversal's input and output state, which no layer "
                   "weight can express; use a repeat scale (i,j@a)", s->src_dir);
        return -1;
    }
    for (int p = 0; p < path->n; p++) {
        if (path_scale(path, p) == 1.0f) continue;
        int found = 0;
        for (size_t i = 0; i < s->n_tensors; i++) {
            const hf_tensor *h = &s->tensors[i];
            if (h->layer != path->layers[p]) continue;
            const char *rest = h->t->name + h->rest;
            if (!strcmp(rest, "post_feedforward_layernorm.weight")) {
                rys_seterr("%s: layer %d normalizes its outputs before the residual add (post-norms), so residual "
                           "scale %g cannot go into its projections, and Gemma's (1 + w) norm weights cannot take "
                           "it exactly in bf16; export a GGUF instead (its norm weights hold 1 + w)",
                           s->src_dir, path->layers[p], (double)path_scale(path, p));
                return -1;
            }
            found += !strcmp(rest, "self_attn.o_proj.weight") || !strcmp(rest, "mlp.down_proj.weight");
        }
        if (found != 2) {
            rys_seterr("%s: layer %d lacks self_attn.o_proj.weight or mlp.down_proj.weight, so residual scale %g "
                       "has nowhere to go", s->src_dir, path->layers[p], (double)path_scale(path, p));
            return -1;
        }
    }
    return 0;
}

/* The bytes of t times a, F32 / F16 / BF16 value by value (rounded back to
 * the dtype), into a new buffer; NULL with the error set for other dtypes. */
static uint8_t *scaled_bytes(const char *dir, const st_tensor *t, float a) {
    uint32_t type = !strcmp(t->dtype, "F32") ? QT_F32 : !strcmp(t->dtype, "F16") ? QT_F16
                  : !strcmp(t->dtype, "BF16") ? QT_BF16 : QT_COUNT;
    if (type == QT_COUNT) {
        rys_seterr("%s: cannot fold a residual scale into %s of dtype %s (F32, F16 or BF16 only)", dir, t->name, t->dtype);
        return NULL;
    }
    uint8_t *buf = xmalloc(t->nbytes ? t->nbytes : 1);
    memcpy(buf, t->data, t->nbytes);
    int64_t n = (int64_t)(t->nbytes / (type == QT_F32 ? 4 : 2));
    if (n && quant_scale_row(type, buf, n, a)) { free(buf); return NULL; }
    return buf;
}

static void count_bytes(void *ctx, uint64_t n) {
    hf_out *o = ctx;
    o->done += n;
    progress_update(&o->pr, (int64_t)(o->done >> 20), NULL);
}

/* Output shards: non-layer tensors, then path position by position, cut so
 * no shard grows past the largest source shard (at least one tensor each). */
static int write_shards(const hf_source *s, const layer_path *path, hf_out *o) {
    size_t n_out = 0;
    for (size_t i = 0; i < s->n_tensors; i++) n_out += s->tensors[i].layer < 0;
    size_t n_layer_out = 0;
    for (int p = 0; p < path->n; p++)
        for (size_t i = 0; i < s->n_tensors; i++) n_layer_out += s->tensors[i].layer == path->layers[p];
    n_out += n_layer_out;
    const hf_tensor **order = xmalloc((n_out ? n_out : 1) * sizeof *order);
    int *position = xmalloc((n_out ? n_out : 1) * sizeof *position);
    size_t m = 0;
    for (size_t i = 0; i < s->n_tensors; i++)
        if (s->tensors[i].layer < 0) { position[m] = -1; order[m++] = &s->tensors[i]; }
    for (int p = 0; p < path->n; p++)
        for (size_t i = 0; i < s->n_tensors; i++)
            if (s->tensors[i].layer == path->layers[p]) { position[m] = p; order[m++] = &s->tensors[i]; }

    uint64_t cap = 0, total = 0;
    for (size_t k = 0; k < s->n_shards; k++) {
        uint64_t b = 0;
        for (size_t i = 0; i < s->shards[k]->n_tensors; i++) b += s->shards[k]->tensors[i].nbytes;
        if (b > cap) cap = b;
    }
    size_t *shard_of = xmalloc((n_out ? n_out : 1) * sizeof *shard_of);
    size_t n_shards = 1;
    uint64_t fill = 0;
    for (size_t i = 0; i < n_out; i++) {
        uint64_t b = order[i]->t->nbytes;
        if (s->sharded && fill > 0 && fill + b > cap) { n_shards++; fill = 0; }
        fill += b;
        total += b;
        shard_of[i] = n_shards - 1;
    }

    json_t *weight_map = json_object();
    json_t *meta = s->shards[0]->metadata ? json_incref(s->shards[0]->metadata) : json_pack("{s:s}", "format", "pt");
    progress_start(&o->pr, "writing shards (MiB)", (int64_t)(total >> 20));
    o->pr.enabled &= o->show_progress;
    int rc = -1;
    size_t i = 0;
    uint8_t **bufs = xcalloc(n_out ? n_out : 1, sizeof *bufs);   /* scaled copies, kept until written */
    for (size_t k = 0; k < n_shards; k++) {
        char fname[64];
        if (s->sharded) snprintf(fname, sizeof fname, "model-%05zu-of-%05zu.safetensors", k + 1, n_shards);
        else snprintf(fname, sizeof fname, "model.safetensors");
        st_writer *w = st_writer_new();
        st_writer_set_metadata(w, meta);
        for (; i < n_out && shard_of[i] == k; i++) {
            const hf_tensor *h = order[i];
            char name[1024];
            if (position[i] < 0) snprintf(name, sizeof name, "%s", h->t->name);
            else snprintf(name, sizeof name, "%s%d.%s", s->prefix, position[i], h->t->name + h->rest);
            float a = position[i] < 0 ? 1.0f : path_scale(path, position[i]);
            if (a != 1.0f && is_residual_factor(h->t->name + h->rest)) {
                if (!(bufs[i] = scaled_bytes(s->src_dir, h->t, a))) { st_writer_free(w); progress_finish(&o->pr); goto out; }
                st_tensor scaled = *h->t;
                scaled.data = bufs[i];
                st_writer_add(w, name, &scaled);
            } else {
                st_writer_add(w, name, h->t);
            }
            json_object_set_new(weight_map, name, json_string(fname));
        }
        char *path_out = join(o->dir, fname), hex[65];
        int wr = st_writer_write(w, path_out, count_bytes, o, hex);
        st_writer_free(w);
        free(path_out);
        if (wr) { progress_finish(&o->pr); goto out; }
        json_object_set_new(o->files, fname, json_string(hex));
    }
    progress_finish(&o->pr);
    if (s->sharded) {
        json_t *index = json_pack("{s:{s:I}, s:O}", "metadata", "total_size", (json_int_t)total, "weight_map", weight_map);
        char *ip = join(o->dir, HF_INDEX);
        int wr = json_dump_file(index, ip, JSON_INDENT(2) | JSON_SORT_KEYS);
        json_decref(index);
        char hex[65];
        if (wr || sha256_file(ip, hex)) {
            rys_seterr("%s: cannot write", ip);
            free(ip);
            goto out;
        }
        free(ip);
        json_object_set_new(o->files, HF_INDEX, json_string(hex));
    }
    rc = 0;
out:
    for (size_t k = 0; k < n_out; k++) free(bufs[k]);
    free(bufs);
    json_decref(meta);
    json_decref(weight_map);
    free(shard_of);
    free(position);
    free(order);
    return rc;
}

/* num_hidden_layers = path length; every list with one entry per layer
 * (layer_types and the like) follows the path. */
static void relayer_config_object(json_t *obj, const layer_path *path) {
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        if (!json_is_array(v) || json_array_size(v) != (size_t)path->n_model || !strcmp(key, "architectures")) continue;
        json_t *a = json_array();
        for (int p = 0; p < path->n; p++) json_array_append(a, json_array_get(v, (size_t)path->layers[p]));
        json_object_set_new(obj, key, a);
    }
    json_object_set_new(obj, "num_hidden_layers", json_integer(path->n));
}

static int write_json(hf_out *o, const char *name, json_t *j) {
    char *p = join(o->dir, name), hex[65];
    int rc = json_dump_file(j, p, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (rc) rys_seterr("%s: cannot write", p);
    else if ((rc = sha256_file(p, hex)) == 0) json_object_set_new(o->files, name, json_string(hex));
    free(p);
    return rc;
}

static int write_config(const hf_source *s, const layer_path *path, hf_out *o) {
    json_t *c = json_deep_copy(s->config);
    json_t *tc = decoder_config(c);
    relayer_config_object(tc, path);
    /* some multimodal configs repeat the decoder's layer count at the top */
    json_t *top_n = json_object_get(c, "num_hidden_layers");
    if (tc != c && json_is_integer(top_n) && json_integer_value(top_n) == path->n_model) relayer_config_object(c, path);
    int rc = write_json(o, "config.json", c);
    json_decref(c);
    return rc;
}

static int copy_side_files(const hf_source *s, hf_out *o) {
    for (size_t i = 0; i < sizeof side_files / sizeof side_files[0]; i++) {
        char *src = join(s->src_dir, side_files[i]);
        if (!file_exists(src)) { free(src); continue; }
        size_t n;
        char *buf = read_file(src, &n);
        free(src);
        if (!buf) return -1;
        char *dst = join(o->dir, side_files[i]), hex[65];
        FILE *f = fopen(dst, "wb");
        bool ok = f && (n == 0 || fwrite(buf, 1, n, f) == n);
        if (f && fclose(f)) ok = false;
        if (!ok) rys_seterr("%s: %s", dst, strerror(errno));
        else {
            sha256_buf(buf, n, hex);
            json_object_set_new(o->files, side_files[i], json_string(hex));
        }
        free(buf);
        free(dst);
        if (!ok) return -1;
    }
    return 0;
}

static int write_manifest(const hf_source *s, const layer_path *path, const export_opts *opt, hf_out *o) {
    char real[PATH_MAX], *canon = path_canonical(path);
    json_t *m = json_pack("{s:s, s:s, s:s?, s:s?, s:s, s:i, s:i, s:O}", "rys_version", RYS_VERSION, "source_dir",
                          realpath(s->src_dir, real) ? real : s->src_dir, "blocks", opt->blocks, "layers",
                          opt->layers, "layer_path", canon, "source_num_hidden_layers", s->n_model,
                          "num_hidden_layers", path->n, "files", o->files);
    free(canon);
    char *p = join(o->dir, HF_MANIFEST);
    int rc = json_dump_file(m, p, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (rc) rys_seterr("%s: cannot write", p);
    free(p);
    json_decref(m);
    return rc;
}

/* Removes the temporary directory and what this export put in it. */
static void remove_tree(const char *dir) {
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                char *p = join(dir, e->d_name);
                unlink(p);
                free(p);
            }
        closedir(d);
    }
    rmdir(dir);
}

/* 1 when dir is missing or an empty directory, 0 otherwise. */
static int usable_destination(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT;
    struct dirent *e;
    int empty = 1;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) empty = 0;
    closedir(d);
    return empty;
}

int export_hf(const char *src_dir, const char *dst_dir, const export_opts *opt) {
    if (opt->virtual_path) {
        rys_seterr("%s: --virtual applies to GGUF files only", src_dir);
        return -1;
    }
    char *dst = xstrdup(dst_dir), *src = xstrdup(src_dir);
    for (size_t n = strlen(dst); n > 1 && dst[n - 1] == '/'; n--) dst[n - 1] = 0;
    for (size_t n = strlen(src); n > 1 && src[n - 1] == '/'; n--) src[n - 1] = 0;
    hf_source s = {.src_dir = src};
    hf_out o = {.files = json_object(), .show_progress = opt->progress};
    layer_path path = {0};
    int rc = -1;
    if (!usable_destination(dst)) { rys_seterr("%s: exists and is not an empty directory", dst); goto out; }
    if (load_config(&s) || open_shards(&s)) goto out;
    if (path_from_specs(opt->blocks, opt->layers, s.n_model, &path)) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", rys_lasterr());
        rys_seterr("%s: %s", src, msg);
        goto out;
    }
    if (classify_tensors(&s, &path) || check_foldable(&s, &path)) goto out;

    size_t tn = strlen(dst) + 32;
    o.dir = xmalloc(tn);
    snprintf(o.dir, tn, "%s.rys-tmp-%d", dst, (int)getpid());
    if (mkdir(o.dir, 0755)) {
        rys_seterr("%s: %s", o.dir, strerror(errno));
        free(o.dir);
        o.dir = NULL;
        goto out;
    }
    if (write_shards(&s, &path, &o) || write_config(&s, &path, &o) || copy_side_files(&s, &o) ||
        write_manifest(&s, &path, opt, &o))
        goto out;
    if (rename(o.dir, dst)) { rys_seterr("%s: %s", dst, strerror(errno)); goto out; }
    free(o.dir);
    o.dir = NULL;
    rc = 0;
out:
    if (o.dir) { remove_tree(o.dir); free(o.dir); }
    json_decref(o.files);
    for (size_t k = 0; k < s.n_shards; k++) st_close(s.shards[k]);
    free(s.shards);
    free(s.tensors);
    json_decref(s.config);
    path_free(&path);
    free(dst);
    free(src);
    return rc;
}
