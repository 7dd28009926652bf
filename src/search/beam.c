/* beam: see beam.h. */
#include "search/beam.h"
#include "engine/path.h"
#include "scan/scan.h"
#include "base/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

beam_opts beam_default_opts(void) {
    return (beam_opts){.width = 8, .depth = 3, .seeds = 16, .expand = 16, .max_extra = 0, .max_new = 64, .patience = 0};
}

char *beam_name(const beam_opts *o) {
    char buf[160];
    snprintf(buf, sizeof buf, "width=%d seeds=%d expand=%d max_new=%d max_extra=%d", o->width, o->seeds, o->expand, o->max_new,
             o->max_extra);
    return xstrdup(buf);
}

void beam_candidates_free(beam_candidate *c, int n) {
    for (int k = 0; k < n; k++) {
        free(c[k].spec);
        free(c[k].path);
    }
    free(c);
}

typedef struct {
    beam_candidate c;
    int order;              /* proposal order: the heuristic's tie-break */
} proposal;

static int cmp_proposal(const void *x, const void *y) {
    const proposal *a = x, *b = y;
    if (a->c.heuristic != b->c.heuristic) return a->c.heuristic < b->c.heuristic ? 1 : -1;
    return a->order - b->order;
}

static int cmp_str(const void *x, const void *y) {
    return strcmp(*(char *const *)x, *(char *const *)y);
}

int beam_propose(int n_layers, const beam_member *frontier, int n_frontier, const beam_member *pool, int n_pool, int max_extra,
                 int max_new, beam_stored_fn stored, void *ctx, beam_candidate **out, int *n) {
    *out = NULL;
    *n = 0;
    proposal *p = xcalloc((size_t)n_frontier * (size_t)n_pool + 1, sizeof *p);
    int np = 0, rc = -1;
    for (int f = 0; f < n_frontier; f++)
        for (int b = 0; b < n_pool; b++) {
            size_t len = strlen(frontier[f].blocks) + strlen(pool[b].blocks) + 16;
            char *spec = xmalloc(len);
            snprintf(spec, len, "blocks:%s;%s", frontier[f].blocks, pool[b].blocks);
            layer_path lp;
            if (path_from_blocks(spec + 7, n_layers, &lp)) { free(spec); goto out; }
            int extra = path_extra_layers(&lp);
            if (max_extra > 0 && extra > max_extra) {
                path_free(&lp);
                free(spec);
                continue;
            }
            p[np] = (proposal){{spec, path_canonical(&lp), extra, frontier[f].score + pool[b].score, false}, np};
            np++;
            path_free(&lp);
        }
    qsort(p, (size_t)np, sizeof *p, cmp_proposal);
    /* the kept paths, sorted, to skip a path proposed twice (its first proposal wins) */
    char **seen = xcalloc((size_t)np + 1, sizeof *seen);
    int n_seen = 0, n_new = 0;
    beam_candidate *c = xcalloc((size_t)np + 1, sizeof *c);
    for (int k = 0; k < np && !(max_new > 0 && n_new >= max_new); k++) {
        if (n_seen && bsearch(&p[k].c.path, seen, (size_t)n_seen, sizeof *seen, cmp_str)) continue;
        p[k].c.stored = stored && stored(p[k].c.path, ctx);
        if (!p[k].c.stored) n_new++;
        /* insertion keeps seen sorted: a depth proposes at most width x expand paths */
        int at = n_seen;
        while (at > 0 && strcmp(seen[at - 1], p[k].c.path) > 0) { seen[at] = seen[at - 1]; at--; }
        seen[at] = p[k].c.path;
        n_seen++;
        c[(*n)++] = p[k].c;
        p[k].c.spec = p[k].c.path = NULL;   /* moved into c */
    }
    free(seen);
    *out = c;
    rc = 0;
out:
    for (int k = 0; k < np; k++) {
        free(p[k].c.spec);
        free(p[k].c.path);
    }
    free(p);
    return rc;
}

/* ---- the search ----------------------------------------------------------------- */

void beam_summary_free(beam_summary *s) {
    for (int k = 0; k < s->n_depths; k++) free(s->depth[k].best_spec);
    free(s->best_spec);
    free(s->best_path);
    memset(s, 0, sizeof *s);
}

static bool in_report(const char *path, void *ctx) {
    return report_find_path(ctx, path) >= 0;
}

typedef struct {
    const report_data *d;
    const int *cfg;         /* per entry: its report_config, or -1 */
    const double *score;
} rank_ctx;

/* Best first by balanced score under the beam's statistics, the report's tie rules, then rank. */
static int cmp_ranked(const void *x, const void *y, void *vctx) {
    const rank_ctx *r = vctx;
    int a = *(const int *)x, b = *(const int *)y;
    int o = report_compare(r->d, &r->d->cfg[r->cfg[a]], &r->d->cfg[r->cfg[b]], r->score[a], r->score[b]);
    return o ? o : a - b;
}

/* Entries e[0..n) that have scores in d, best first, into idx (their count
 * returned); score[k] and cfg[k] are filled for every entry. */
static int rank_entries(const report_data *d, const report_zstats *z, const store_beam_entry *e, int n, int *cfg, double *score,
                        int *idx) {
    int m = 0;
    for (int k = 0; k < n; k++) {
        cfg[k] = report_find_path(d, e[k].path);
        score[k] = cfg[k] >= 0 ? report_balanced_of(d, z, d->cfg[cfg[k]].delta) : 0;
        if (cfg[k] >= 0) idx[m++] = k;
    }
    rank_ctx r = {d, cfg, score};
    qsort_r(idx, (size_t)m, sizeof *idx, cmp_ranked, &r);
    return m;
}

/* Freezes the beam's statistics and seeds: the single blocks' z statistics
 * and the best max(seeds, expand) of them. */
static int create_beam(store *st, const char *name, const char *db_path, const report_data *d, const beam_opts *o) {
    int *idx = xmalloc(((size_t)d->n_cfg + 1) * sizeof *idx), n = 0;
    for (int k = 0; k < d->n_cfg; k++)
        if (d->cfg[k].i >= 0) idx[n++] = k;
    if (n == 0) {
        free(idx);
        rys_seterr("%s: no single blocks measured to seed the beam (run rys scan MODEL --db %s first)", db_path, db_path);
        return -1;
    }
    report_zstats z;
    report_zstats_of(d, idx, n, &z);
    store_beam_entry *e = xcalloc((size_t)n, sizeof *e);
    for (int k = 0; k < n; k++) e[k] = (store_beam_entry){d->cfg[idx[k]].spec, d->cfg[idx[k]].path, 0};
    int *cfg = xmalloc((size_t)n * sizeof *cfg), *order = xmalloc((size_t)n * sizeof *order);
    double *score = xmalloc((size_t)n * sizeof *score);
    int m = rank_entries(d, &z, e, n, cfg, score, order);
    int keep = o->seeds > o->expand ? o->seeds : o->expand;
    if (keep > m) keep = m;
    store_beam_entry *seeds = xcalloc((size_t)keep + 1, sizeof *seeds);
    for (int k = 0; k < keep; k++) seeds[k] = (store_beam_entry){e[order[k]].spec, e[order[k]].path, score[order[k]]};
    int rc = store_beam_create(st, name, z.mean, z.sd, d->n_probes, seeds, keep);
    free(seeds); free(e); free(cfg); free(order); free(score); free(idx);
    return rc;
}

/* sum's best becomes entry e (in d as cfg c) when it scores above the best so far. */
static void offer_best(beam_summary *sum, const report_data *d, const store_beam_entry *e, int c, double score, int depth) {
    if (sum->best_spec && !(score > sum->best_score)) return;
    free(sum->best_spec);
    free(sum->best_path);
    sum->best_spec = xstrdup(e->spec);
    sum->best_path = xstrdup(e->path);
    sum->best_score = score;
    sum->best_depth = depth;
    sum->best_extra = d->cfg[c].extra;
    memcpy(sum->best_delta, d->cfg[c].delta, sizeof sum->best_delta);
}

/* Measures the depth's entries the store lacks (scan_run skips the rest). */
static int measure(store *st, const model *m, const tokenizer *tok, const evalset *es, pool *pool, const store_beam_entry *e, int n,
                   int depth, bool progress, double deadline, scan_summary *ss) {
    scan_config *cfgs = xcalloc((size_t)n + 1, sizeof *cfgs);
    int rc = 0;
    for (int k = 0; k < n && !rc; k++) {
        cfgs[k] = (scan_config){xstrdup(e[k].spec), -1, -1, {0}, NULL};
        rc = path_from_blocks(e[k].spec + strlen("blocks:"), m->hp.n_layers, &cfgs[k].path);
        if (!rc) cfgs[k].key = path_canonical(&cfgs[k].path);
    }
    char label[32];
    snprintf(label, sizeof label, "beam depth %d", depth);
    scan_run_opts ro = {progress, false, 0, deadline, label};
    if (!rc) rc = scan_run(st, m, tok, es, pool, cfgs, n, &ro, ss);
    scan_free_configs(cfgs, n);
    return rc;
}

int beam_run(store *st, const char *db_path, const model *m, const tokenizer *tok, const evalset *es, pool *pool, const beam_opts *o,
             bool progress, beam_summary *sum) {
    memset(sum, 0, sizeof *sum);
    double t0 = rys_now();
    char *name = beam_name(o);
    report_data *d = report_load(db_path);
    store_beam_entry *seeds = NULL, *prev = NULL, *cur = NULL;
    int n_seeds = 0, n_prev = 0, n_cur = 0, rc = -1;
    int *cfg = NULL, *idx = NULL;
    double *score = NULL;
    beam_member *front = NULL, *pool_b = NULL;
    if (!d) goto out;
    if (d->n_layers != m->hp.n_layers) {
        rys_seterr("%s: a scan of %d layers, the model has %d", db_path, d->n_layers, m->hp.n_layers);
        goto out;
    }
    sum->n_probes = d->n_probes;
    for (int p = 0; p < d->n_probes; p++) snprintf(sum->probe[p], sizeof sum->probe[p], "%s", d->probe[p]);
    report_zstats z;
    int got = store_beam_get(st, name, z.mean, z.sd, d->n_probes);
    if (got < 0) goto out;
    if (!got && create_beam(st, name, db_path, d, o)) goto out;
    if (!got && store_beam_get(st, name, z.mean, z.sd, d->n_probes) != 1) goto out;
    if (store_beam_depth(st, name, 1, &seeds, &n_seeds) < 0) goto out;
    if (n_seeds == 0) { rys_seterr("%s: beam '%s' has no seeds", db_path, name); goto out; }

    /* depth 1: the seeds lead, the best `expand` single blocks extend (pool_b points into seeds throughout) */
    int n_front = o->seeds < n_seeds ? o->seeds : n_seeds, n_pool = o->expand < n_seeds ? o->expand : n_seeds;
    front = xcalloc((size_t)(n_seeds > o->width ? n_seeds : o->width), sizeof *front);
    pool_b = xcalloc((size_t)n_seeds, sizeof *pool_b);
    for (int k = 0; k < n_seeds; k++) pool_b[k] = (beam_member){seeds[k].spec + strlen("blocks:"), seeds[k].heuristic};
    memcpy(front, pool_b, (size_t)n_front * sizeof *front);
    int c0 = report_find_path(d, seeds[0].path);
    if (c0 < 0) { rys_seterr("%s: the beam's seed %s is no longer in the store", db_path, seeds[0].spec); goto out; }
    offer_best(sum, d, &seeds[0], c0, seeds[0].heuristic, 1);
    sum->seed_score = seeds[0].heuristic;
    sum->end = "depth";
    int streak = 0;
    for (int depth = 2; depth <= o->depth; depth++) {
        int planned = store_beam_depth(st, name, depth, &cur, &n_cur);
        if (planned < 0) goto out;
        if (!planned) {
            beam_candidate *c;
            int n;
            if (beam_propose(m->hp.n_layers, front, n_front, pool_b, n_pool, o->max_extra, o->max_new, in_report, d, &c, &n)) goto out;
            if (n == 0) {
                free(c);
                sum->end = "exhausted";
                break;
            }
            store_beam_entry *e = xcalloc((size_t)n, sizeof *e);
            store_config *sc = xcalloc((size_t)n, sizeof *sc);
            for (int k = 0; k < n; k++) {
                e[k] = (store_beam_entry){c[k].spec, c[k].path, c[k].heuristic};
                /* after any sweep's rows, in depth and proposal order */
                sc[k] = (store_config){c[k].spec, c[k].path, -1, -1, c[k].extra, (depth << 20) + k, "beam"};
            }
            int src = store_beam_plan(st, name, depth, e, n, sc);
            free(e);
            free(sc);
            beam_candidates_free(c, n);
            if (src || store_beam_depth(st, name, depth, &cur, &n_cur) != 1) goto out;
        }
        scan_summary ss;
        if (measure(st, m, tok, es, pool, cur, n_cur, depth, progress, o->deadline, &ss)) goto out;
        sum->candidates += n_cur;
        sum->measured_now += ss.done_now;
        sum->done_before += ss.done_before;
        if (ss.stopped) {
            sum->stopped = true;
            sum->end = "stopped";
            break;
        }
        if (ss.out_of_time) {
            /* a depth measured in part is not ranked: the same beam continues it when given time */
            sum->end = "deadline";
            break;
        }
        report_free(d);
        if (!(d = report_load(db_path))) goto out;
        cfg = xrealloc(cfg, (size_t)n_cur * sizeof *cfg);
        idx = xrealloc(idx, (size_t)n_cur * sizeof *idx);
        score = xrealloc(score, (size_t)n_cur * sizeof *score);
        int ranked = rank_entries(d, &z, cur, n_cur, cfg, score, idx);
        beam_depth_summary *ds = &sum->depth[sum->n_depths++];
        *ds = (beam_depth_summary){n_cur, ss.done_now, ss.done_before, NULL, 0};
        if (ranked == 0) {
            sum->end = "exhausted";
            break;
        }
        ds->best_spec = xstrdup(cur[idx[0]].spec);
        ds->best_score = score[idx[0]];
        double before = sum->best_score;
        offer_best(sum, d, &cur[idx[0]], cfg[idx[0]], score[idx[0]], depth);
        streak = sum->best_score > before ? 0 : streak + 1;
        /* the next frontier: this depth's best `width`; it points into cur, kept as prev */
        store_beam_entries_free(prev, n_prev);
        prev = cur;
        n_prev = n_cur;
        cur = NULL;
        n_cur = 0;
        n_front = ranked < o->width ? ranked : o->width;
        for (int k = 0; k < n_front; k++) front[k] = (beam_member){prev[idx[k]].spec + strlen("blocks:"), score[idx[k]]};
        if (o->patience > 0 && streak >= o->patience) {
            sum->end = "plateau";
            break;
        }
    }
    rc = 0;
out:
    sum->seconds = rys_now() - t0;
    /* front and pool_b point into seeds and prev, which go last */
    free(front);
    free(pool_b);
    free(cfg);
    free(idx);
    free(score);
    store_beam_entries_free(cur, n_cur);
    store_beam_entries_free(prev, n_prev);
    store_beam_entries_free(seeds, n_seeds);
    report_free(d);
    free(name);
    return rc;
}
