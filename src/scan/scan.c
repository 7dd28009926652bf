/* scan: see scan.h. */
#include "scan/scan.h"
#include "base/sha256.h"
#include "probes/probe_text.h"
#include "scan/reuse.h"
#include "scan/objective.h"
#include "base/util.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void scan_free_configs(scan_config *c, int n) {
    for (int k = 0; k < n; k++) {
        path_free(&c[k].path);
        free(c[k].spec);
        free(c[k].key);
    }
    free(c);
}

int scan_parse_only(const char *s, scan_sweep *sw) {
    int a, b, c, d, n = 0;
    if (sscanf(s, "%d-%d,%d-%d%n", &a, &b, &c, &d, &n) != 4 || s[n] || a < 0 || b < a || c < 0 || d < c) {
        rys_seterr("--only '%s': expected \"i0-i1,j0-j1\" with i0 <= i1 and j0 <= j1", s);
        return -1;
    }
    sw->i_lo = a; sw->i_hi = b; sw->j_lo = c; sw->j_hi = d;
    return 0;
}

/* Coarse-to-fine rank: the largest power of two dividing both i and j (N
 * counts as divisible), so the first configurations already span the map. */
static int coarseness(int i, int j, int n) {
    int g = 1;
    while (g < n && i % (2 * g) == 0 && (j % (2 * g) == 0 || j == n)) g *= 2;
    return g;
}

/* The path of the single block (i, j), 0 <= i < j <= n_layers: layers
 * 0..j-1, then i..n_layers-1 again, as path_from_blocks reads "i,j" (a
 * sweep's bounds are valid by construction, so no spec text is made and
 * parsed back). */
typedef struct { scan_config c; int key1, key2, key3; } keyed;

static int by_keys(const void *a, const void *b) {
    const keyed *x = a, *y = b;
    if (x->key1 != y->key1) return x->key1 - y->key1;
    if (x->key2 != y->key2) return x->key2 - y->key2;
    return x->key3 - y->key3;
}

int scan_build_configs(int n_layers, const scan_sweep *sw, scan_config **out, int *n_out) {
    int N = n_layers, cap = N * (N + 1) / 2 + N * (sw->max_repeat > 0 ? sw->max_repeat : 1) + 1, n = 0;
    keyed *ks = xcalloc((size_t)cap, sizeof *ks);
    if (sw->repeat) {
        if (sw->max_repeat < 2) { free(ks); rys_seterr("--max-repeat must be at least 2"); return -1; }
        for (int r = 2; r <= sw->max_repeat; r++)
            for (int l = 0; l < N; l++) {
                keyed *k = &ks[n++];
                char spec[48];
                snprintf(spec, sizeof spec, "repeat:%d,%d", l, r);
                k->c.spec = xstrdup(spec);
                k->c.i = k->c.j = -1;
                path_from_repeat(l, r, N, &k->c.path);
                k->key1 = r; k->key2 = l;
            }
    } else {
        int stride = sw->stride > 0 ? sw->stride : 1;
        for (int i = 0; i < N; i++)
            for (int j = i + 1; j <= N; j++) {
                if (sw->max_extra > 0 && j - i > sw->max_extra) continue;
                if (i % stride || (j % stride && j != N)) continue;
                if (sw->i_hi > 0 || sw->j_hi > 0)
                    if (i < sw->i_lo || i > sw->i_hi || j < sw->j_lo || j > sw->j_hi) continue;
                keyed *k = &ks[n++];
                char spec[48];
                snprintf(spec, sizeof spec, "blocks:%d,%d", i, j);
                k->c.spec = xstrdup(spec);
                k->c.i = i;
                k->c.j = j;
                path_from_block(i, j, N, &k->c.path);
                k->key1 = sw->order == ORDER_COARSE ? -coarseness(i, j, N) : 0;
                k->key2 = i;
                k->key3 = j;
            }
    }
    qsort(ks, (size_t)n, sizeof *ks, by_keys);
    scan_config *c = xcalloc((size_t)n + 1, sizeof *c);
    c[0].spec = xstrdup("baseline");
    c[0].i = c[0].j = -1;
    path_baseline(N, &c[0].path);
    for (int k = 0; k < n; k++) c[k + 1] = ks[k].c;
    free(ks);
    for (int k = 0; k <= n; k++) c[k].key = path_canonical(&c[k].path);
    *out = c;
    *n_out = n + 1;
    return 0;
}

void scan_order_by_prescreen(scan_config *cfgs, int n, const store_prescreen_block *b, int nb) {
    if (n < 2) return;
    keyed *ks = xcalloc((size_t)n - 1, sizeof *ks);
    for (int k = 1; k < n; k++) {
        keyed *kk = &ks[k - 1];
        kk->c = cfgs[k];
        kk->key1 = nb;              /* not ranked: after every ranked block */
        for (int r = 0; r < nb && cfgs[k].i >= 0; r++)
            if (b[r].i == cfgs[k].i && b[r].j == cfgs[k].j) { kk->key1 = r; break; }
        kk->key2 = k;
    }
    qsort(ks, (size_t)n - 1, sizeof *ks, by_keys);
    for (int k = 1; k < n; k++) cfgs[k] = ks[k - 1].c;
    free(ks);
}

int scan_apply_scales(scan_config **cfgs, int *n, const float *scales, int n_scales) {
    for (int a = 0; a < n_scales; a++)
        for (int b = 0; b < a; b++)
            if (scales[a] == scales[b]) { rys_seterr("--scales: %g given twice", (double)scales[a]); return -1; }
    scan_config *in = *cfgs, *out = xcalloc((size_t)(1 + (*n - 1) * n_scales), sizeof *out);
    int m = 0;
    out[m++] = in[0];                       /* the baseline, once */
    for (int k = 1; k < *n; k++) {
        for (int a = 0; a < n_scales; a++) {
            scan_config c = {0};
            c.i = in[k].i;
            c.j = in[k].j;
            path_copy(&in[k].path, &c.path);
            if (path_scale_repeats(&c.path, scales[a])) {
                path_free(&c.path);
                scan_free_configs(out, m);
                return -1;
            }
            if (scales[a] == 1.0f) {
                c.spec = xstrdup(in[k].spec);
            } else {
                char num[32];
                path_format_scale(num, sizeof num, scales[a]);
                c.spec = xmalloc(strlen(in[k].spec) + strlen(num) + 2);
                sprintf(c.spec, "%s@%s", in[k].spec, num);
                c.i = c.j = -1;             /* the report's heatmaps are of unscaled blocks */
            }
            c.key = path_canonical(&c.path);
            out[m++] = c;
        }
    }
    in[0] = (scan_config){0};               /* moved to out */
    scan_free_configs(in, *n);
    *cfgs = out;
    *n = m;
    return 0;
}

/* The path of one paths-file spec (whitespace already removed) into c, with
 * i, j set when the spec is a single block; 0, or -1 with the problem as the error. */
static int parse_path_spec(const char *spec, int n_layers, scan_config *c) {
    c->i = c->j = -1;
    if (!strcmp(spec, "baseline")) return path_baseline(n_layers, &c->path);
    if (!strncmp(spec, "blocks:", 7)) {
        if (path_from_blocks(spec + 7, n_layers, &c->path)) return -1;
        /* the report draws single blocks on its heatmaps by i, j; "0,0" is the baseline */
        int i, j, used = 0;
        if (sscanf(spec + 7, "%d,%d%n", &i, &j, &used) == 2 && !spec[7 + used] && i < j) {
            c->i = i;
            c->j = j;
        }
        return 0;
    }
    if (!strncmp(spec, "layers:", 7)) return path_from_layers(spec + 7, n_layers, &c->path);
    if (!strncmp(spec, "repeat:", 7)) {
        const char *a = spec + 7;
        char *comma, *end;
        /* digits only, as the other grammars read them: strtol alone would take "+3" or "-1" */
        bool digits = strspn(a, "0123456789,") == strlen(a);
        errno = 0;
        long layer = strtol(a, &comma, 10), times = digits && *comma == ',' ? strtol(comma + 1, &end, 10) : 0;
        if (!digits || comma == a || *comma != ',' || end == comma + 1 || *end || errno || layer > 1000000 || times > 1000000) {
            rys_seterr("repeat '%s': expected \"L,r\" (layer L traversed r times)", a);
            return -1;
        }
        return path_from_repeat((int)layer, (int)times, n_layers, &c->path);
    }
    if (!strncmp(spec, "counts:", 7)) return path_from_counts_spec(spec + 7, n_layers, &c->path);
    rys_seterr("unknown path '%s': expected baseline, blocks:i,j[;k,l...], layers:A-B[,C-D...], repeat:L,r or counts:c0,c1,...", spec);
    return -1;
}

int scan_parse_paths(const char *text, const char *name, int n_layers, scan_config **out, int *n_out) {
    int cap = 16, n = 1, line_no = 0, n_specs = 0;
    scan_config *c = xcalloc((size_t)cap, sizeof *c);
    /* the baseline first: every delta needs it, and it is measured first */
    c[0].spec = xstrdup("baseline");
    c[0].i = c[0].j = -1;
    path_baseline(n_layers, &c[0].path);
    char *spec = xmalloc(strlen(text) + 1);
    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        line_no++;
        /* the spec without comment and whitespace: "blocks:1, 3" is stored as "blocks:1,3" */
        size_t m = 0;
        for (size_t k = 0; k < len && line[k] != '#'; k++)
            if (!strchr(" \t\r\v\f", line[k])) spec[m++] = line[k];
        spec[m] = 0;
        line = end ? end + 1 : line + len;
        if (!m) continue;
        n_specs++;
        scan_config cfg = {0};
        if (parse_path_spec(spec, n_layers, &cfg)) {
            /* the grammar's messages name the command-line option ("--blocks '...'"); here it is a line */
            const char *why = rys_lasterr();
            char *msg = xstrdup(why + (strncmp(why, "--", 2) ? 0 : 2));
            rys_seterr("%s:%d: %s", name, line_no, msg);
            free(msg);
            goto fail;
        }
        bool seen = false;
        for (int k = 0; k < n && !seen; k++)
            seen = path_equal(&c[k].path, &cfg.path);
        if (seen) { path_free(&cfg.path); continue; }   /* another spelling of a path already listed */
        if (n == cap) {
            cap *= 2;
            c = xrealloc(c, (size_t)cap * sizeof *c);
        }
        cfg.spec = xstrdup(spec);
        c[n++] = cfg;
    }
    if (!n_specs) {
        /* measuring the baseline alone is surely not what a paths file meant */
        rys_seterr("%s: no paths (every line is blank or a comment)", name);
        goto fail;
    }
    free(spec);
    for (int k = 0; k < n; k++) c[k].key = path_canonical(&c[k].path);
    *out = c;
    *n_out = n;
    return 0;
fail:
    free(spec);
    scan_free_configs(c, n);
    return -1;
}

int scan_load_paths(const char *path, int n_layers, scan_config **out, int *n_out) {
    size_t len;
    char *text = read_file(path, &len);
    if (!text) return -1;
    if (strlen(text) != len) {
        free(text);
        rys_seterr("%s: not a text file (it holds a NUL byte)", path);
        return -1;
    }
    int rc = scan_parse_paths(text, path, n_layers, out, n_out);
    free(text);
    return rc;
}

int scan_generate_naive(const model *m, const tokenizer *tok, const evalset *es, pool *pool, const layer_path *path,
                        gen_output *outs, reuse_stats *rs) {
    int n = evalset_n_prompts(es), n_predict = evalset_n_predict(es), max_len = 0;
    const int *lens = evalset_lens(es);
    long long tokens = 0;
    if (n == 0) { rs->layer_tokens_done = rs->layer_tokens_naive = 0; return 0; }   /* only logit-read sets */
    for (int k = 0; k < n; k++) {
        if (lens[k] > max_len) max_len = lens[k];
        tokens += lens[k];
    }
    forward_ctx *f = forward_new(m, path, n, max_len + n_predict, pool);
    if (!f) return -1;
    sample_params sp = {0.0f, 1.0f, 0, n_predict};
    int rc = generate(f, tok, evalset_prompts(es), lens, n, &sp, outs, NULL, NULL);
    forward_free(f);
    if (rc) return -1;
    for (int k = 0; k < n; k++)   /* the last token is not fed back when the budget ran out */
        tokens += outs[k].n - (outs[k].hit_eog ? 0 : outs[k].n > 0);
    rs->layer_tokens_done = rs->layer_tokens_naive = tokens * path->n;
    return 0;
}

char *scan_output_text(const tokenizer *tok, const gen_output *o) {
    /* the reference sees a Python str: invalid UTF-8 (a byte token cut short
     * by the token budget, say) becomes U+FFFD before parsing and storing */
    char *raw = tokenizer_decode(tok, o->tokens, (size_t)o->n), *text = probe_utf8_sanitize(raw);
    free(raw);
    return text;
}

int scan_logit_naive(const model *m, const tokenizer *tok, const evalset *es, pool *pool, const layer_path *path,
                     eqlogit_result *out, reuse_stats *rs) {
    int n = evalset_n_logit(es);
    rs->layer_tokens_done = rs->layer_tokens_naive = 0;
    if (n == 0) return 0;
    if (eqlogit_run(m, tok, path, pool, evalset_logit_items(es), n, out)) return -1;
    for (int k = 0; k < n; k++) rs->layer_tokens_done += out[k].tokens_run * path->n;
    rs->layer_tokens_naive = rs->layer_tokens_done;
    return 0;
}

/* Items of es's objectives: each document once per score. */
static int objective_items(const evalset *es) {
    int n = 0;
    for (int k = 0; k < evalset_n_objectives(es); k++)
        n += evalset_objectives(es)[k].ts.n_docs * objective_n_scores(&evalset_objectives(es)[k]);
    return n;
}

/* Score one configuration's outputs (generated, logit-read items, then the
 * objectives' documents from ores's path slot) and commit them in one
 * transaction. */
static int save_outputs(store *st, const tokenizer *tok, const evalset *es, const scan_config *c, const gen_output *outs,
                        const eqlogit_result *lres, const validate_results *ores, int slot, double seconds,
                        const reuse_stats *rs) {
    int n_gen = evalset_n_prompts(es), n_items = n_gen + evalset_n_logit(es), n = n_items + objective_items(es),
        n_sets = evalset_n_sets(es), rc = -1;
    store_item *items = xcalloc((size_t)n, sizeof *items);
    char **texts = xcalloc((size_t)n, sizeof *texts), **parsed = xcalloc((size_t)n, sizeof *parsed);
    double *sums = xcalloc((size_t)n_sets, sizeof *sums);
    const char **names = xcalloc((size_t)n_sets, sizeof *names);
    long long gen_tokens = 0, prompt_tokens = 0;
    for (int k = 0; k < n_gen; k++) {
        texts[k] = scan_output_text(tok, &outs[k]);
        double sc = evalset_score(es, k, texts[k], &parsed[k]);
        int s = evalset_prompt_set(es, k);
        sums[s] += sc;
        items[k] = (store_item){evalset_set_name(es, s), evalset_prompt_key(es, k), texts[k], parsed[k], sc};
        gen_tokens += outs[k].n;
        prompt_tokens += evalset_lens(es)[k];
    }
    for (int k = n_gen; k < n_items; k++) {
        const eqlogit_result *r = &lres[k - n_gen];
        double sc = evalset_logit_score(es, k - n_gen, r, &parsed[k]);
        if (sc < 0) goto done;
        texts[k] = xstrdup(r->answer);
        int s = evalset_logit_set(es, k - n_gen);
        sums[s] += sc;
        items[k] = (store_item){evalset_set_name(es, s), evalset_logit_key(es, k - n_gen), texts[k], parsed[k], sc};
        prompt_tokens += r->tokens_run;   /* teacher-forced: every token is read, none generated */
    }
    /* objectives: an item per document and score (accuracy, margin; ppl: one), keyed by its doc_id */
    for (int o = 0, k = n_items; o < evalset_n_objectives(es); o++) {
        const objective_set *ob = &evalset_objectives(es)[o];
        const validate_task_result *vr = &ores->r[slot * ores->n_tasks + o];
        int s = evalset_objective_set(es, o), ns = objective_n_scores(ob);
        for (int d = 0; d < ob->ts.n_docs; d++, k += ns) {
            double sc[2];
            const char *gen;
            if (objective_doc_score(ob, &vr->docs[d], d, sc, &gen, &parsed[k])) goto done;
            for (int w = 0; w < ns; w++) {
                if (w) parsed[k + w] = xstrdup(parsed[k]);
                texts[k + w] = xstrdup(gen);
                sums[s + w] += sc[w];
                items[k + w] = (store_item){evalset_set_name(es, s + w), ob->ts.docs[d].doc_id, texts[k + w], parsed[k + w], sc[w]};
            }
        }
    }
    for (int s = 0; s < n_sets; s++) {
        names[s] = evalset_set_name(es, s);
        sums[s] /= evalset_set_items(es, s);
    }
    store_result r = {c->key, seconds, prompt_tokens, gen_tokens, rs->layer_tokens_done, rs->layer_tokens_naive,
                      names, sums, n_sets, items, n};
    rc = store_save_result(st, &r);
done:
    for (int k = 0; k < n; k++) { free(texts[k]); free(parsed[k]); }
    free(items); free(texts); free(parsed); free(sums); free(names);
    return rc;
}

static bool is_baseline(const layer_path *p) {
    return p->n == p->n_model && path_shared_prefix(p) == p->n_model;
}

store *scan_store_open(const char *db_path, const char *model_path, const model *m, const evalset *es) {
    char model_sha[65];
    if (sha256_file(model_path, model_sha)) return NULL;
    /* refused before the store is created or changed */
    if (objective_check_validated(db_path, evalset_objectives(es), evalset_n_objectives(es))) return NULL;
    store *st = store_open(db_path);
    if (!st) return NULL;
    int n_sets = evalset_n_sets(es);
    store_probe *sp = xcalloc((size_t)n_sets, sizeof *sp);
    for (int s = 0; s < n_sets; s++)
        sp[s] = (store_probe){evalset_set_name(es, s), evalset_set_path(es, s), evalset_set_sha256(es, s),
                              evalset_set_kind(es, s), evalset_set_items(es, s)};
    char *settings = evalset_settings_json(es);
    store_identity id = {model_path, model_sha, m->hp.arch_name, m->hp.n_layers, sp, n_sets, settings};
    int rc = store_set_identity(st, &id);
    free(settings);
    free(sp);
    if (rc) {
        store_close(st);
        return NULL;
    }
    return st;
}

store *scan_store_attach(const char *db_path, const char *model_path) {
    if (access(db_path, R_OK)) { rys_seterr("%s: no such scan store", db_path); return NULL; }
    char model_sha[65], *sha = NULL;
    if (sha256_file(model_path, model_sha)) return NULL;
    store *st = store_open(db_path);
    if (!st) return NULL;
    int has = store_model_sha256(st, &sha);
    if (has <= 0 || strcmp(sha, model_sha)) {
        if (has == 0) rys_seterr("%s: holds no scan", db_path);
        else if (has > 0) rys_seterr("%s: holds a scan of another model (sha256 %.12s..., this one %.12s...)", db_path, sha, model_sha);
        free(sha);
        store_close(st);
        return NULL;
    }
    free(sha);
    return st;
}

int scan_add_configs(store *st, const scan_config *cfgs, int n_cfgs, const char *search) {
    store_config *sc = xcalloc((size_t)(n_cfgs ? n_cfgs : 1), sizeof *sc);
    for (int k = 0; k < n_cfgs; k++)
        sc[k] = (store_config){cfgs[k].spec, cfgs[k].key, cfgs[k].i, cfgs[k].j, path_extra_layers(&cfgs[k].path), k, search};
    int rc = store_add_configs(st, sc, n_cfgs);
    free(sc);
    return rc;
}

/* Configurations scored together by validate's engine: each group reruns
 * the baseline once for its states (its cost spread over the group), and
 * holds a forward context (KV slots) per path at once. */
#define OBJECTIVE_GROUP 8

/* The objectives of es along configurations todo[t0..t1) through
 * objective_run, with the baseline's states unless naive: slot[t - t0] is a
 * configuration's path index in out. *base_cost gets the layer-token
 * evaluations of a baseline pass run only for its states (0 when the
 * baseline is one of the group). */
static int objective_group(const model *m, const tokenizer *tok, pool *pool, const evalset *es, const scan_config *cfgs,
                           const int *todo, int t0, int t1, bool naive, bool progress, validate_results *out, int *slot,
                           long long *base_cost) {
    int n = 0;
    layer_path *paths = xcalloc((size_t)(t1 - t0 + 1), sizeof *paths);
    const char **specs = xcalloc((size_t)(t1 - t0 + 1), sizeof *specs);
    bool base_in = false;
    if (!naive) {
        paths[n] = (layer_path){0};
        path_baseline(m->hp.n_layers, &paths[n]);
        specs[n++] = "baseline";
    }
    for (int t = t0; t < t1; t++) {
        const scan_config *c = &cfgs[todo[t]];
        if (!naive && is_baseline(&c->path)) {
            slot[t - t0] = 0;
            base_in = true;
            continue;
        }
        slot[t - t0] = n;
        path_copy(&c->path, &paths[n]);
        specs[n++] = c->spec;
    }
    int rc = objective_run(m, tok, pool, evalset_objectives(es), evalset_n_objectives(es), paths, specs, n, !naive, NULL, progress, out);
    *base_cost = 0;
    if (!rc && !naive && !base_in)
        for (int k = 0; k < out->n_tasks; k++) *base_cost += out->r[k].layer_tokens_done;
    for (int k = 0; k < n; k++) path_free(&paths[k]);
    free(paths);
    free(specs);
    return rc;
}

int scan_run(store *st, const model *m, const tokenizer *tok, const evalset *es, pool *pool,
             const scan_config *cfgs, int n_cfgs, const scan_run_opts *o, scan_summary *sum) {
    memset(sum, 0, sizeof *sum);
    /* An objective's continuations copy their shared context from sequence
     * to sequence at positions a configuration borrows; a recurrent state
     * cannot be copied from a run that went past that length, so on such
     * models objectives run every configuration from scratch (generation
     * keeps its reuse: reuse.c starts from the baseline's states). */
    bool recurrent = false;
    for (int l = 0; l < m->hp.n_layers; l++) recurrent |= m->layers[l].recurrent;
    sum->objectives_from_scratch = recurrent && !o->naive && evalset_n_objectives(es) > 0;
    sum->total = n_cfgs;
    int *todo = xmalloc((size_t)n_cfgs * sizeof *todo), n_todo = 0;
    for (int k = 0; k < n_cfgs; k++) {
        int d = store_is_done(st, cfgs[k].key);
        if (d < 0) { free(todo); return -1; }
        if (d) sum->done_before++;
        else todo[n_todo++] = k;
    }
    if (o->limit > 0 && n_todo > o->limit) n_todo = o->limit;
    if (n_todo == 0) { free(todo); return 0; }

    int n = evalset_n_prompts(es);
    double t_start = rys_now();
    baseline_run *base = NULL;
    if (!o->naive && n > 0) {
        base = baseline_run_new(m, tok, evalset_prompts(es), evalset_lens(es), n, evalset_n_predict(es), pool);
        if (!base) { free(todo); return -1; }
        /* The baseline's own pass is real work: it is charged to the baseline's
         * row below, or here when that row was finished by an earlier run. */
        if (!is_baseline(&cfgs[todo[0]].path)) {
            sum->layer_tokens_done += baseline_stats(base).layer_tokens_done;
            sum->layer_tokens_naive += baseline_stats(base).layer_tokens_naive;
        }
    }
    progress pg;
    progress_start(&pg, o->label ? o->label : "scan", n_todo);
    int rc = 0, n_obj = evalset_n_objectives(es), slot[OBJECTIVE_GROUP];
    validate_results ores = {0};
    for (int t = 0; t < n_todo; t++) {
        if (rys_stop_requested()) { sum->stopped = true; break; }  /* the safe point: nothing in flight */
        if (o->deadline > 0 && rys_now() >= o->deadline) { sum->out_of_time = true; break; }
        const scan_config *c = &cfgs[todo[t]];
        if (n_obj && t % OBJECTIVE_GROUP == 0) {
            int t1 = t + OBJECTIVE_GROUP < n_todo ? t + OBJECTIVE_GROUP : n_todo;
            long long base_cost;
            validate_results_free(&ores);
            /* the group's documents take minutes before its first configuration is kept: validate's bar shows them */
            rc = objective_group(m, tok, pool, es, cfgs, todo, t, t1, o->naive || recurrent, o->progress, &ores, slot, &base_cost);
            if (rc) break;
            if (ores.stopped) { sum->stopped = true; break; }  /* the group's documents are incomplete: none is kept */
            sum->layer_tokens_done += base_cost;
        }
        rc = store_mark_running(st, c->key);
        if (rc) break;
        double t0 = rys_now();
        gen_output *outs = xcalloc((size_t)n, sizeof *outs);
        int n_logit = evalset_n_logit(es);
        eqlogit_result *lres = xcalloc((size_t)n_logit, sizeof *lres);
        reuse_stats rs, lrs;
        if (base) {
            rc = baseline_run_config(base, &c->path, outs, &rs);
            if (is_baseline(&c->path)) rs = baseline_stats(base);
        } else {
            rc = scan_generate_naive(m, tok, es, pool, &c->path, outs, &rs);
        }
        if (rc) { free(outs); free(lres); break; }
        rc = scan_logit_naive(m, tok, es, pool, &c->path, lres, &lrs);
        if (rc) { gen_output_free(outs, n); free(outs); free(lres); break; }
        rs.layer_tokens_done += lrs.layer_tokens_done;
        rs.layer_tokens_naive += lrs.layer_tokens_naive;
        double dt = rys_now() - t0;
        int sl = n_obj ? slot[t % OBJECTIVE_GROUP] : 0;
        for (int k = 0; k < n_obj; k++) {   /* its share of the group's objective run */
            const validate_task_result *vr = &ores.r[sl * ores.n_tasks + k];
            rs.layer_tokens_done += vr->layer_tokens_done;
            rs.layer_tokens_naive += vr->layer_tokens_naive;
            dt += vr->seconds;
        }
        rc = save_outputs(st, tok, es, c, outs, lres, &ores, sl, dt, &rs);
        gen_output_free(outs, n);
        free(outs);
        eqlogit_result_free(lres, n_logit);
        free(lres);
        if (rc) break;
        sum->done_now++;
        sum->layer_tokens_done += rs.layer_tokens_done;
        sum->layer_tokens_naive += rs.layer_tokens_naive;
        char extra[96];
        double el = rys_now() - t_start;
        snprintf(extra, sizeof extra, "%s  %.1f cfg/min", c->spec, el > 0 ? 60.0 * (t + 1) / el : 0);
        progress_update(&pg, t + 1, extra);
    }
    progress_finish(&pg);
    validate_results_free(&ores);
    sum->seconds = rys_now() - t_start;
    baseline_run_free(base);
    free(todo);
    return rc;
}
