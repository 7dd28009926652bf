/* rys info: what a GGUF file holds, without loading a model from it.
 *
 * Text is for people (long strings and arrays shortened); --json is the full
 * machine-readable dump tests/ref/check_gguf.py compares with the Python
 * `gguf` package. Each section has a text and a JSON builder so new sections
 * (architecture, layer path) slot in beside the existing ones. */
#include "cli/cli.h"
#include "export/export.h"
#include "engine/gguf.h"
#include "cli/models.h"
#include "quant/quant.h"
#include "base/util.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longer arrays appear in JSON as type and length only. */
#define INFO_JSON_MAX_ARRAY 64
#define INFO_TEXT_MAX_STRING 80

/* ---- text ------------------------------------------------------------------ */

/* A string from the file on one line: quoted, escaped, shortened to about
 * INFO_TEXT_MAX_STRING bytes without cutting a UTF-8 sequence. */
static void print_str(FILE *out, gguf_str s, size_t max) {
    size_t n = s.len < max ? (size_t)s.len : max;
    while (n < s.len && n > 0 && ((unsigned char)s.ptr[n] & 0xC0) == 0x80) n--;
    fputc('"', out);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c == '"' || c == '\\') fprintf(out, "\\%c", c);
        else if (c == '\n') fputs("\\n", out);
        else if (c == '\t') fputs("\\t", out);
        else if (c < 0x20 || c == 0x7F) fprintf(out, "\\x%02x", c);
        else fputc(c, out);
    }
    fputc('"', out);
    if (n < s.len) fprintf(out, "... (%llu bytes)", (unsigned long long)s.len);
}

static void print_scalar(FILE *out, const gguf_value *v) {
    switch (v->type) {
    case GGUF_T_U8: case GGUF_T_U16: case GGUF_T_U32: case GGUF_T_U64:
        fprintf(out, "%llu", (unsigned long long)v->u);
        break;
    case GGUF_T_I8: case GGUF_T_I16: case GGUF_T_I32: case GGUF_T_I64:
        fprintf(out, "%lld", (long long)v->i);
        break;
    case GGUF_T_F32: case GGUF_T_F64: fprintf(out, "%g", v->f); break;
    case GGUF_T_BOOL: fputs(v->u ? "true" : "false", out); break;
    case GGUF_T_STRING: print_str(out, v->s, INFO_TEXT_MAX_STRING); break;
    }
}

static void print_value(FILE *out, const gguf_value *v);

/* "[string x 49152] "a", "b", ..." with the first few items. */
static void print_array(FILE *out, const gguf_value *v) {
    uint64_t n = v->arr.n, shown = v->arr.type == GGUF_T_STRING || v->arr.type == GGUF_T_ARRAY ? 4 : 8;
    fprintf(out, "[%s x %llu]", gguf_type_name(v->arr.type), (unsigned long long)n);
    for (uint64_t i = 0; i < n && i < shown; i++) {
        fputs(i ? ", " : " ", out);
        if (v->arr.type == GGUF_T_STRING) {
            print_str(out, v->arr.strs[i], 24);
        } else if (v->arr.type == GGUF_T_ARRAY) {
            print_value(out, &v->arr.items[i]);
        } else {
            gguf_value e = {.type = v->arr.type};
            if (v->arr.type == GGUF_T_F32 || v->arr.type == GGUF_T_F64) e.f = gguf_arr_f64(v, i);
            else e.i = gguf_arr_i64(v, i);  /* u shares i's bits, so unsigned prints right too */
            print_scalar(out, &e);
        }
    }
    if (n > shown) fputs(", ...", out);
}

static void print_value(FILE *out, const gguf_value *v) {
    if (v->type == GGUF_T_ARRAY) print_array(out, v);
    else print_scalar(out, v);
}

static uint64_t total_tensor_bytes(const gguf_file *g) {
    uint64_t total = 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) total += g->tensors[i].nbytes;
    return total;
}

static const char *tensor_type_name(uint32_t type) {
    const quant_info *qi = quant_get_info(type);
    return qi ? qi->name : "?";
}

static void info_print_header(const gguf_file *g, FILE *out) {
    fprintf(out, "file:      %s\n", g->path);
    fprintf(out, "format:    GGUF v%u, alignment %u, data section at byte %llu, %zu bytes in all\n",
            g->version, g->alignment, (unsigned long long)g->data_offset, g->map_size);
}

static void info_print_metadata(const gguf_file *g, FILE *out) {
    fprintf(out, "metadata:  %llu keys\n", (unsigned long long)g->n_kv);
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const gguf_kv *kv = &g->kv[i];
        fputs("  ", out);
        int w = (int)(kv->key.len < 40 ? kv->key.len : 40);
        fprintf(out, "%.*s%*s ", w, kv->key.ptr, 40 - w, "");
        if (kv->val.type != GGUF_T_ARRAY) fprintf(out, "%-7s ", gguf_type_name(kv->val.type));
        print_value(out, &kv->val);
        fputc('\n', out);
    }
}

static void info_print_tensor_summary(const gguf_file *g, FILE *out) {
    uint64_t total = total_tensor_bytes(g);
    fprintf(out, "tensors:   %llu, %.1f MiB (%llu bytes)\n", (unsigned long long)g->n_tensors,
            (double)total / (1024.0 * 1024.0), (unsigned long long)total);
}

static void info_print_tensors(const gguf_file *g, FILE *out) {
    fprintf(out, "  %5s %-40s %-6s %-24s %12s %12s\n", "#", "name", "type", "shape", "offset", "bytes");
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const gguf_tensor *t = &g->tensors[i];
        char shape[96];
        int k = 0;
        for (uint32_t d = 0; d < t->n_dims; d++)
            k += snprintf(shape + k, sizeof shape - (size_t)k, d ? " x %lld" : "%lld", (long long)t->ne[d]);
        fprintf(out, "  %5llu %-40.*s %-6s %-24s %12llu %12llu\n", (unsigned long long)i, (int)t->name.len,
                t->name.ptr, tensor_type_name(t->type), shape, (unsigned long long)t->offset,
                (unsigned long long)t->nbytes);
    }
}

/* ---- JSON ------------------------------------------------------------------ */

/* Length of the valid UTF-8 sequence at p (at most n bytes), 0 if invalid
 * (overlong forms, surrogates and code points past U+10FFFF included). */
static size_t utf8_seq_len(const unsigned char *p, uint64_t n) {
    unsigned char c = p[0];
    size_t len = c < 0x80 ? 1 : c >= 0xC2 && c < 0xE0 ? 2 : c >= 0xE0 && c < 0xF0 ? 3 : c >= 0xF0 && c < 0xF5 ? 4 : 0;
    if (!len || len > n) return 0;
    for (size_t k = 1; k < len; k++)
        if ((p[k] & 0xC0) != 0x80) return 0;
    if ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] >= 0xA0) || (c == 0xF0 && p[1] < 0x90) ||
        (c == 0xF4 && p[1] >= 0x90))
        return 0;
    return len;
}

/* JSON strings must be UTF-8: bytes that do not form a valid sequence become U+FFFD. */
static json_t *json_from_str(gguf_str s) {
    json_t *j = json_stringn(s.ptr ? s.ptr : "", s.len);
    if (j) return j;
    char *buf = xmalloc(s.len * 3 + 1);
    const unsigned char *p = (const unsigned char *)s.ptr;
    size_t n = 0;
    for (uint64_t i = 0; i < s.len;) {
        size_t len = utf8_seq_len(p + i, s.len - i);
        if (len) {
            memcpy(buf + n, p + i, len);
            n += len;
            i += len;
        } else {
            memcpy(buf + n, "\xEF\xBF\xBD", 3);
            n += 3;
            i++;
        }
    }
    j = json_stringn(buf, n);
    free(buf);
    return j;
}

/* Non-finite floats have no JSON number: they are written as strings. */
static json_t *json_from_double(double f) {
    if (isfinite(f)) return json_real(f);
    return json_string(isnan(f) ? "nan" : f > 0 ? "inf" : "-inf");
}

static json_t *json_from_scalar(const gguf_value *v) {
    switch (v->type) {
    case GGUF_T_U8: case GGUF_T_U16: case GGUF_T_U32: case GGUF_T_U64:
        if (v->u <= INT64_MAX) return json_integer((json_int_t)v->u);
        return json_sprintf("%llu", (unsigned long long)v->u);
    case GGUF_T_I8: case GGUF_T_I16: case GGUF_T_I32: case GGUF_T_I64: return json_integer(v->i);
    case GGUF_T_F32: case GGUF_T_F64: return json_from_double(v->f);
    case GGUF_T_BOOL: return json_boolean(v->u != 0);
    case GGUF_T_STRING: return json_from_str(v->s);
    }
    return json_null();
}

/* {"type": T, "value": V} for scalars; arrays add "elem_type" and "length",
 * and "value" only when they hold at most INFO_JSON_MAX_ARRAY elements. */
static json_t *json_from_value(const gguf_value *v) {
    json_t *o = json_object();
    json_object_set_new(o, "type", json_string(gguf_type_name(v->type)));
    if (v->type != GGUF_T_ARRAY) {
        json_object_set_new(o, "value", json_from_scalar(v));
        return o;
    }
    json_object_set_new(o, "elem_type", json_string(gguf_type_name(v->arr.type)));
    json_object_set_new(o, "length", json_integer((json_int_t)v->arr.n));
    if (v->arr.n > INFO_JSON_MAX_ARRAY) return o;
    json_t *items = json_array();
    for (uint64_t i = 0; i < v->arr.n; i++) {
        json_t *e;
        if (v->arr.type == GGUF_T_STRING) e = json_from_str(v->arr.strs[i]);
        else if (v->arr.type == GGUF_T_ARRAY) e = json_from_value(&v->arr.items[i]);
        else if (v->arr.type == GGUF_T_F32 || v->arr.type == GGUF_T_F64) e = json_from_double(gguf_arr_f64(v, i));
        else if (v->arr.type == GGUF_T_BOOL) e = json_boolean(gguf_arr_i64(v, i) != 0);
        else if (v->arr.type == GGUF_T_U64 && (uint64_t)gguf_arr_i64(v, i) > INT64_MAX)
            e = json_sprintf("%llu", (unsigned long long)(uint64_t)gguf_arr_i64(v, i));
        else e = json_integer(gguf_arr_i64(v, i));
        json_array_append_new(items, e);
    }
    json_object_set_new(o, "value", items);
    return o;
}

static void info_json_header(const gguf_file *g, json_t *root) {
    json_object_set_new(root, "file", json_string(g->path));
    json_object_set_new(root, "version", json_integer(g->version));
    json_object_set_new(root, "alignment", json_integer(g->alignment));
    json_object_set_new(root, "data_offset", json_integer((json_int_t)g->data_offset));
    json_object_set_new(root, "file_size", json_integer((json_int_t)g->map_size));
}

static void info_json_metadata(const gguf_file *g, json_t *root) {
    json_t *md = json_object();
    for (uint64_t i = 0; i < g->n_kv; i++) {
        json_t *key = json_from_str(g->kv[i].key);
        json_object_set_new(md, json_string_value(key), json_from_value(&g->kv[i].val));
        json_decref(key);
    }
    json_object_set_new(root, "metadata", md);
}

static void info_json_tensors(const gguf_file *g, json_t *root) {
    json_t *ts = json_array();
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const gguf_tensor *t = &g->tensors[i];
        json_t *shape = json_array();
        for (uint32_t d = 0; d < t->n_dims; d++) json_array_append_new(shape, json_integer(t->ne[d]));
        json_t *o = json_object();
        json_object_set_new(o, "name", json_from_str(t->name));
        json_object_set_new(o, "type", json_string(tensor_type_name(t->type)));
        json_object_set_new(o, "type_id", json_integer(t->type));
        json_object_set_new(o, "shape", shape);
        json_object_set_new(o, "offset", json_integer((json_int_t)t->offset));
        json_object_set_new(o, "nbytes", json_integer((json_int_t)t->nbytes));
        json_array_append_new(ts, o);
    }
    json_object_set_new(root, "n_tensors", json_integer((json_int_t)g->n_tensors));
    json_object_set_new(root, "tensor_bytes", json_integer((json_int_t)total_tensor_bytes(g)));
    json_object_set_new(root, "tensors", ts);
}

/* ---- command ------------------------------------------------------------- */

/* The architecture rys reads from the metadata and the layer path a run would
 * take: the --blocks/--layers spec, else a virtual export's recorded path,
 * else the baseline. */
static void info_model(gguf_file **gp, const char *blocks, const char *layers, FILE *out, json_t *root) {
    model *m = model_from_gguf(*gp);
    if (!m) {
        if (blocks || layers) rys_die("%s", rys_lasterr());
        if (root) json_object_set_new(root, "model_error", json_string(rys_lasterr()));
        else fprintf(out, "model: cannot run: %s\n", rys_lasterr());
        return;
    }
    const model_hparams *hp = &m->hp;
    layer_path path;
    const char *source = blocks ? "blocks" : layers ? "layers" : "baseline";
    if (blocks || layers) {
        if (path_from_specs(blocks, layers, hp->n_layers, &path)) rys_die("%s", rys_lasterr());
    } else {
        int v = export_read_virtual_path(m->gguf, &path);
        if (v < 0) rys_die("%s", rys_lasterr());
        if (v) source = "virtual (rys.layer_path)";
        else path_baseline(hp->n_layers, &path);
    }
    char *canon = path_canonical(&path), *ranges = path_ranges(&path);
    size_t kv_per_token = (size_t)2 * path.n * hp->n_head_kv * hp->head_dim * sizeof(float);
    /* hybrid models: each position's kind, in runs of consecutive layers of one kind ("0-2 recurrent, 3 attention") */
    bool hybrid = false;
    for (int l = 0; l < hp->n_layers; l++) hybrid |= m->layers[l].recurrent;
    char *kinds = NULL;
    json_t *kinds_json = json_array();
    if (hybrid) {
        size_t cap = (size_t)path.n * 32 + 1, len = 0;
        kinds = xmalloc(cap);
        kinds[0] = 0;
        for (int p = 0; p < path.n;) {
            bool rec = m->layers[path.layers[p]].recurrent;
            int q = p;
            while (q + 1 < path.n && path.layers[q + 1] == path.layers[q] + 1 && m->layers[path.layers[q + 1]].recurrent == rec) q++;
            if (path.layers[q] > path.layers[p])
                len += (size_t)snprintf(kinds + len, cap - len, "%s%d-%d %s", p ? ", " : "", path.layers[p], path.layers[q],
                                        rec ? "recurrent" : "attention");
            else len += (size_t)snprintf(kinds + len, cap - len, "%s%d %s", p ? ", " : "", path.layers[p], rec ? "recurrent" : "attention");
            p = q + 1;
        }
        for (int p = 0; p < path.n; p++) json_array_append_new(kinds_json, json_string(m->layers[path.layers[p]].recurrent ? "recurrent" : "attention"));
    }
    if (root) {
        json_object_set_new(root, "model", json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:f, s:f}", "arch", hp->arch_name,
                                                     "n_layers", hp->n_layers, "n_ctx_train", hp->n_ctx_train, "dim", hp->dim, "ffn_dim", hp->ffn_dim, "n_head",
                                                     hp->n_head, "n_head_kv", hp->n_head_kv, "head_dim", hp->head_dim, "n_vocab",
                                                     hp->n_vocab, "rope_base", hp->rope_base, "rms_eps", hp->rms_eps));
        if (hp->n_expert) {
            json_t *ex = json_pack("{s:i, s:i, s:i}", "n_expert", hp->n_expert, "n_expert_used", hp->n_expert_used,
                                   "expert_ffn_dim", hp->expert_ffn_dim);
            json_object_update(json_object_get(root, "model"), ex);
            json_decref(ex);
        }
        json_object_set_new(root, "path", json_pack("{s:s, s:s, s:s, s:i, s:i, s:I}", "source", source, "canonical", canon,
                                                    "ranges", ranges, "length", path.n, "extra_layers", path_extra_layers(&path),
                                                    "kv_bytes_per_token", (json_int_t)kv_per_token));
        if (hybrid) json_object_set(json_object_get(root, "path"), "kinds", kinds_json);
    } else {
        fprintf(out, "model: %s, %d layers, dim %d, ffn %d, heads %d/%d (kv), head dim %d, vocab %d, rope base %g\n",
                hp->arch_name, hp->n_layers, hp->dim, hp->ffn_dim, hp->n_head, hp->n_head_kv, hp->head_dim, hp->n_vocab,
                hp->rope_base);
        if (hp->n_expert)
            fprintf(out, "experts: %d, %d used per token, width %d\n", hp->n_expert, hp->n_expert_used,
                    hp->expert_ffn_dim);
        fprintf(out, "path (%s): %s = %d layers (%+d, +%.2f%%), KV cache %.1f KiB per token\n  %s\n", source, ranges, path.n,
                path_extra_layers(&path), 100.0 * path_extra_layers(&path) / hp->n_layers, kv_per_token / 1024.0, canon);
        if (hybrid) fprintf(out, "  kinds: %s\n", kinds);
    }
    json_decref(kinds_json);
    free(kinds);
    free(canon);
    free(ranges);
    path_free(&path);
    *gp = m->gguf;
    m->gguf = NULL;     /* keep the file open for the sections that follow */
    model_free(m);
}

int cmd_info(int argc, char **argv) {
    const char *spec = NULL, *blocks = NULL, *layers = NULL;
    bool json = false, tensors = false;
    const cli_opt opts[] = {
        CLI_BLOCKS(&blocks),
        CLI_LAYERS(&layers),
        CLI_FLAG_OPT("--tensors", NULL, &tensors, "also list every tensor (name, type, shape, offset, bytes)"),
        CLI_JSON(&json, "print everything (metadata, tensors) as one JSON object"),
        CLI_END,
    };
    const cli_arg args[] = {CLI_MODEL_ARG(&spec), CLI_ARG_END};
    const cli_spec cs = {"info", "MODEL [--blocks SPEC | --layers SPEC] [--json] [--tensors]", opts, args, NULL, NULL, false,
                         "--blocks and --layers show the layer path a run would take."};
    cli_parse_or_exit(&cs, argc, argv);

    char path[4096];
    if (!models_resolve(spec, path, sizeof path)) rys_die("%s", rys_lasterr());
    gguf_file *g = gguf_open(path);
    if (!g) rys_die("%s", rys_lasterr());

    if (json) {
        json_t *root = json_object();
        info_json_header(g, root);
        info_model(&g, blocks, layers, stdout, root);
        info_json_metadata(g, root);
        info_json_tensors(g, root);
        if (json_dumpf(root, stdout, JSON_INDENT(1)) != 0) rys_die("info: could not write JSON");
        putchar('\n');
        json_decref(root);
    } else {
        info_print_header(g, stdout);
        info_model(&g, blocks, layers, stdout, NULL);
        info_print_metadata(g, stdout);
        info_print_tensor_summary(g, stdout);
        if (tensors) info_print_tensors(g, stdout);
    }
    gguf_close(g);
    return fflush(stdout) == 0 ? 0 : 2;
}
