/* pipeline: coarse scan, focused scan, beam, surrogate, validation and the
 * report in one resumable run; see pipeline.h for the stages and how the
 * budget is split. */
#include "search/pipeline.h"
#include "base/sha256.h"
#include "base/util.h"
#include "probes/math.h"
#include "report/report.h"
#include "scan/evalset.h"
#include "search/beam.h"
#include "search/surrogate.h"
#include "scan/scan.h"
#include "scan/store.h"
#include "tasks/metrics.h"
#include "tasks/tasks.h"
#include "validate/validate.h"
#include "validate/validate_store.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { ST_COARSE, ST_FOCUS, ST_BEAM, ST_SURROGATE, ST_VALIDATE, ST_REPORT };

const char *const pipeline_stage_name[PIPELINE_N_STAGES] = {"coarse", "focus", "beam", "surrogate", "validate", "report"};
/* Validation gets the largest share: its numbers are the result; the report takes seconds. */
const double pipeline_stage_share[PIPELINE_N_STAGES] = {0.15, 0.15, 0.25, 0.15, 0.29, 0.01};

typedef struct {
    const pipeline_opts *o;
    store *st;
    evalset *es;
    pipeline_result *res;
    double t_start;         /* rys_now() when this run began */
    double spent_before;    /* seconds the stages spent in earlier runs */
    store_stage stage[PIPELINE_N_STAGES];
    task_set *tasks;        /* the validation tasks, loaded before any work so a bad name costs nothing */
    int n_tasks;
} pipeline;

int pipeline_coarse_stride(int n_layers) {
    int s = (n_layers + 5) / 10;
    return s < 1 ? 1 : s;
}

/* Seconds stage s may use from now: what is left of the budget, split over
 * s and the later stages not done in proportion to their shares. */
static double stage_allowance(const pipeline *p, int s) {
    double left = p->o->budget_s - p->spent_before - (rys_now() - p->t_start);
    double share = 0;
    for (int k = s; k < PIPELINE_N_STAGES; k++)
        if (!p->stage[k].done) share += pipeline_stage_share[k];
    if (left <= 0 || share <= 0) return 0;
    return left * pipeline_stage_share[s] / share;
}

/* Records seconds spent in stage s (and whether it is done) in the store. */
static int stage_end(pipeline *p, int s, double seconds, bool done, const char *note) {
    if (store_stage_add(p->st, pipeline_stage_name[s], seconds, done, note)) return -1;
    p->stage[s].seconds += seconds;
    p->stage[s].done |= done;
    return 0;
}

/* Measures cfgs (marked search) until the stage's deadline; the stage is done
 * when every configuration is measured or the time is up, not when a stop
 * was asked for. */
static int measure(pipeline *p, int s, const scan_config *cfgs, int n, const char *search, const char *note) {
    double t0 = rys_now(), allow = stage_allowance(p, s);
    if (scan_add_configs(p->st, cfgs, n, search)) return -1;
    scan_run_opts ro = {p->o->progress, false, 0, t0 + allow, NULL};
    scan_summary sum;
    if (allow <= 0) {
        /* no time left for this stage: mark it done so that the run goes on to validation */
        return stage_end(p, s, 0, true, note);
    }
    fprintf(stderr, "rys: pipeline %s: %d configurations, %.0f s allowed\n", pipeline_stage_name[s], n, allow);
    if (scan_run(p->st, p->o->m, p->o->tok, p->es, p->o->pool, cfgs, n, &ro, &sum)) return -1;
    if (sum.stopped) p->res->stopped = true;
    if (sum.out_of_time)
        fprintf(stderr, "rys: pipeline %s: its share of the budget is used; %d of %d measured\n", pipeline_stage_name[s],
                sum.done_before + sum.done_now, sum.total);
    return stage_end(p, s, rys_now() - t0, !sum.stopped, note);
}

/* The best measured single block by the balanced score into *bi, *bj: 1, 0
 * when none is measured, -1 + error. */
static int best_block(const pipeline *p, int *bi, int *bj) {
    report_data *d = report_load(p->res->db_path);
    if (!d) return -1;
    int *idx = xmalloc((size_t)(d->n_cfg ? d->n_cfg : 1) * sizeof *idx);
    report_rank_balanced(d, idx);
    int found = -1;
    for (int k = 0; k < d->n_cfg && found < 0; k++)
        if (d->cfg[idx[k]].i >= 0) found = idx[k];
    if (found >= 0) {
        *bi = d->cfg[found].i;
        *bj = d->cfg[found].j;
    }
    free(idx);
    report_free(d);
    return found >= 0;
}

/* Measures the baseline if the store lacks it, whatever the budget says:
 * every delta and every later stage needs it. */
static int measure_baseline(pipeline *p) {
    scan_config base = {.spec = "baseline", .i = -1, .j = -1};
    path_baseline(p->o->m->hp.n_layers, &base.path);
    base.key = path_canonical(&base.path);
    scan_run_opts ro = {p->o->progress, false, 0, 0, NULL};
    scan_summary sum;
    int rc = scan_add_configs(p->st, &base, 1, "scan");
    if (!rc) rc = scan_run(p->st, p->o->m, p->o->tok, p->es, p->o->pool, &base, 1, &ro, &sum);
    if (!rc && sum.stopped) p->res->stopped = true;
    path_free(&base.path);
    free(base.key);
    return rc;
}

static int stage_coarse(pipeline *p) {
    scan_sweep sw = {0};
    sw.stride = pipeline_coarse_stride(p->o->m->hp.n_layers);
    sw.order = ORDER_COARSE;
    scan_config *cfgs;
    int n;
    if (scan_build_configs(p->o->m->hp.n_layers, &sw, &cfgs, &n)) return -1;
    char note[64];
    snprintf(note, sizeof note, "stride %d", sw.stride);
    int rc = measure(p, ST_COARSE, cfgs, n, "scan", note);
    scan_free_configs(cfgs, n);
    return rc;
}

static int stage_focus(pipeline *p) {
    int N = p->o->m->hp.n_layers, s = pipeline_coarse_stride(N), bi, bj;
    int found = best_block(p, &bi, &bj);
    if (found < 0) return -1;
    /* a budget too small for the coarse grid leaves nothing to focus on; validation still runs */
    if (!found) return stage_end(p, ST_FOCUS, 0, true, "no single block measured");
    scan_sweep sw = {0};
    sw.i_lo = bi - s < 0 ? 0 : bi - s;
    sw.i_hi = bi + s;
    sw.j_lo = bj - s < 1 ? 1 : bj - s;
    sw.j_hi = bj + s > N ? N : bj + s;
    scan_config *cfgs;
    int n;
    if (scan_build_configs(N, &sw, &cfgs, &n)) return -1;
    char note[96];
    snprintf(note, sizeof note, "around blocks:%d,%d (i %d-%d, j %d-%d)", bi, bj, sw.i_lo, sw.i_hi, sw.j_lo, sw.j_hi);
    int rc = measure(p, ST_FOCUS, cfgs, n, "scan", note);
    scan_free_configs(cfgs, n);
    return rc;
}

static int stage_beam(pipeline *p) {
    const pipeline_opts *o = p->o;
    double t0 = rys_now(), allow = stage_allowance(p, ST_BEAM);
    int bi, bj, found = best_block(p, &bi, &bj);
    if (found < 0) return -1;
    if (!found) return stage_end(p, ST_BEAM, 0, true, "no single block measured to seed from");
    if (allow <= 0) return stage_end(p, ST_BEAM, 0, true, "no time left");
    beam_opts bo = beam_default_opts();
    bo.width = o->beam_width;
    bo.depth = o->beam_depth;
    bo.deadline = t0 + allow;
    fprintf(stderr, "rys: pipeline beam: width %d, depth %d, %.0f s allowed\n", bo.width, bo.depth, allow);
    beam_summary bs;
    if (beam_run(p->st, p->res->db_path, o->m, o->tok, p->es, o->pool, &bo, o->progress, &bs)) return -1;
    char note[256];
    snprintf(note, sizeof note, "%d measured, ended by %s; best %s (balanced %+.3f)", bs.measured_now + bs.done_before, bs.end,
             bs.best_spec ? bs.best_spec : "-", bs.best_score);
    if (bs.stopped) p->res->stopped = true;
    int rc = stage_end(p, ST_BEAM, rys_now() - t0, !bs.stopped, note);
    beam_summary_free(&bs);
    return rc;
}

/* Trains the surrogate on every measured path, ranks o->surrogate_candidates
 * count vectors and measures its top o->surrogate_top under the stage's
 * share of the budget. A surrogate that cannot be trained (too few rows) or
 * fails its Spearman gate ends the stage with the reason: its ranking is not
 * trusted, as the reference does. */
static int stage_surrogate(pipeline *p) {
    const pipeline_opts *o = p->o;
    const char *db = p->res->db_path;
    double t0 = rys_now();
    if (stage_allowance(p, ST_SURROGATE) <= 0) return stage_end(p, ST_SURROGATE, 0, true, "no time left");
    /* A stopped stage continues with the picks it made: trained again on more
     * rows the surrogate would rank others and leave those unmeasured. */
    char **left = NULL;
    int n_left = 0;
    if (store_unfinished_specs(p->st, "surrogate", &left, &n_left)) return -1;
    if (n_left > 0) {
        size_t len = 1;
        for (int k = 0; k < n_left; k++) len += strlen(left[k]) + 1;
        char *text = xmalloc(len), *at = text;
        for (int k = 0; k < n_left; k++) at += sprintf(at, "%s\n", left[k]);
        *at = 0;
        store_specs_free(left, n_left);
        scan_config *cfgs = NULL;
        int n = 0;
        int rc = scan_parse_paths(text, "the store's surrogate picks", o->m->hp.n_layers, &cfgs, &n);
        free(text);
        if (rc) return -1;
        fprintf(stderr, "rys: pipeline surrogate: continuing with the %d picks of the stopped run not measured yet\n", n_left);
        rc = measure(p, ST_SURROGATE, cfgs, n, "surrogate", NULL);
        scan_free_configs(cfgs, n);
        return rc;
    }
    sur_train_opts to = {0.05, 42, 0.60, 3, 2, 32, NULL};
    surrogate s;
    char note[256];
    if (sur_train_store(db, &to, &s)) {
        snprintf(note, sizeof note, "not trained: %s", rys_lasterr());
        fprintf(stderr, "rys: pipeline surrogate: %s\n", note);
        return stage_end(p, ST_SURROGATE, rys_now() - t0, true, note);
    }
    char eq_rho[32] = "";
    if (sur_has_target(&s, SUR_EQ)) snprintf(eq_rho, sizeof eq_rho, ", EQ %.3f", s.spearman[SUR_EQ]);
    fprintf(stderr, "rys: pipeline surrogate: %d rows, holdout Spearman balanced %.3f, math %.3f%s (gate %.2f: %s)\n",
            s.n_train + s.n_holdout, s.spearman[SUR_BALANCED], s.spearman[SUR_MATH], eq_rho, s.gate, s.gate_passed ? "passed" : "failed");
    if (!s.gate_passed) {
        snprintf(note, sizeof note, "gate failed: balanced holdout Spearman %.3f < %.2f; its ranking not used", s.spearman[SUR_BALANCED],
                 s.gate);
        sur_free(&s);
        return stage_end(p, ST_SURROGATE, rys_now() - t0, true, note);
    }
    int n_ex = 0, *ex = NULL, rc = -1;
    sur_cand_opts co = {s.n_layers, o->surrogate_candidates, 24, 8, 0.45, 8, 42};
    sur_rank_opts ro = {0.5, -0.02, -0.02, o->surrogate_top, o->pool ? pool_size(o->pool) : 1};
    uint8_t *cand = xmalloc((size_t)co.n * (size_t)s.n_layers);
    int64_t *best = xmalloc((size_t)ro.top * sizeof *best);
    double *score = xmalloc((size_t)ro.top * sizeof *score), t_pred;
    scan_config *cfgs = NULL;
    int n = 0;
    if (sur_measured_counts(db, &s, &ex, &n_ex)) goto out;
    sur_candidates(&co, s.anchors, s.n_anchors, cand);
    int n_best = sur_rank(&s, &co, cand, ex, n_ex, &ro, best, score, &t_pred);
    if (n_best < 0) goto out;
    cfgs = xcalloc((size_t)(n_best ? n_best : 1), sizeof *cfgs);
    int *counts = xmalloc((size_t)s.n_layers * sizeof *counts);
    for (int k = 0; k < n_best; k++) {
        const uint8_t *c = cand + (size_t)best[k] * s.n_layers;
        for (int l = 0; l < s.n_layers; l++) counts[l] = c[l];
        scan_config *sc = &cfgs[n];
        sc->spec = sur_counts_spec(c, s.n_layers);
        sc->i = sc->j = -1;
        if (path_from_counts(counts, s.n_layers, &sc->path)) { free(sc->spec); continue; }
        sc->key = path_canonical(&sc->path);
        n++;
    }
    free(counts);
    snprintf(note, sizeof note, "%d rows, balanced holdout Spearman %.3f; top %d of %lld candidates proposed", s.n_train + s.n_holdout,
             s.spearman[SUR_BALANCED], n, (long long)co.n);
    /* the time spent training and ranking counts against the stage: measure() starts its own clock */
    if (stage_end(p, ST_SURROGATE, rys_now() - t0, false, NULL)) goto out;
    rc = measure(p, ST_SURROGATE, cfgs, n, "surrogate", note);
out:
    scan_free_configs(cfgs, n);
    free(cand);
    free(best);
    free(score);
    free(ex);
    sur_free(&s);
    return rc;
}

/* The configurations to validate: the baseline, then per search family (in
 * the order first seen) its best per_family by the balanced score. */
static int choose_validation(const pipeline *p, validate_config **out, int *n_out, char ***search_out) {
    report_data *d = report_load(p->res->db_path);
    if (!d) return -1;
    int N = p->o->m->hp.n_layers, n = 0, cap = 1 + d->n_cfg;
    validate_config *cfgs = xcalloc((size_t)cap, sizeof *cfgs);
    char **search = xcalloc((size_t)cap, sizeof *search);
    cfgs[n].spec = xstrdup("baseline");
    search[n] = xstrdup("baseline");
    path_baseline(N, &cfgs[n++].path);
    int *idx = xmalloc((size_t)(d->n_cfg ? d->n_cfg : 1) * sizeof *idx);
    report_rank_balanced(d, idx);
    for (int f = 0; f < d->n_cfg; f++) {
        const char *fam = d->cfg[f].search;
        bool seen = false;
        for (int g = 0; g < f && !seen; g++) seen = !strcmp(d->cfg[g].search, fam);
        if (seen) continue;
        int taken = 0;
        for (int k = 0; k < d->n_cfg && taken < p->o->per_family; k++) {
            const report_config *c = &d->cfg[idx[k]];
            if (strcmp(c->search, fam)) continue;
            if (path_from_layers(c->path + strlen("layers:"), N, &cfgs[n].path)) {
                rys_seterr("%s: stored path of %s: %s", p->res->db_path, c->spec, rys_lasterr());
                goto fail;
            }
            cfgs[n].spec = xstrdup(c->spec);
            search[n++] = xstrdup(fam);
            taken++;
        }
    }
    free(idx);
    report_free(d);
    *out = cfgs;
    *n_out = n;
    *search_out = search;
    return 0;
fail:
    free(idx);
    report_free(d);
    for (int k = 0; k < n; k++) { free(cfgs[k].spec); path_free(&cfgs[k].path); free(search[k]); }
    free(cfgs);
    free(search);
    return -1;
}

static int by_delta(const void *a, const void *b) {
    const pipeline_pick *x = a, *y = b;
    if (x->delta != y->delta) return x->delta < y->delta ? 1 : -1;
    return x->extra_layers - y->extra_layers;
}

/* Seed of the generated math set: fixed, so every run validates on the same items. */
#define MATH_VAL_SEED 20261207
#define MATH_VAL_ITEMS 120

/* The chosen configurations (cfgs[0] the baseline) on a generated math set
 * of MATH_VAL_ITEMS items, larger than the search's probes and never seen by
 * it, measured into DIR/math_val.sqlite (resumable like any scan); each
 * pick's mean item-score delta and its paired bootstrap interval. */
static int validate_math(pipeline *p, const validate_config *cfgs, int n_cfgs, pipeline_pick *picks) {
    const pipeline_opts *o = p->o;
    char file[4200], db[4200];
    snprintf(file, sizeof file, "%s/math_%d.json", o->dir, MATH_VAL_ITEMS);
    snprintf(db, sizeof db, "%s/math_val.sqlite", o->dir);
    int n_parts, rc = -1;
    mathgen_part *parts = mathgen_default_mix(MATH_VAL_ITEMS, &n_parts);
    char *json = mathgen_json(parts, n_parts, MATH_VAL_SEED, MATHGEN_NEAREST);
    free(parts);
    /* written each time: the same seed writes the same bytes, and the store checks the file's sha256 */
    FILE *f = fopen(file, "wb");
    bool ok = f && fwrite(json, 1, strlen(json), f) == strlen(json);
    if (f && fclose(f)) ok = false;
    free(json);
    if (!ok) { rys_seterr("%s: cannot write the generated math set", file); return -1; }
    const char *files[1] = {file};
    evalset_options eo = {64, NULL, false};
    evalset *es = evalset_load(files, 1, o->m, o->tok, &eo);
    store *st = es ? scan_store_open(db, o->model_path, o->m, es) : NULL;
    scan_config *sc = xcalloc((size_t)n_cfgs, sizeof *sc);
    for (int c = 0; c < n_cfgs; c++) {
        sc[c].spec = cfgs[c].spec;
        sc[c].i = sc[c].j = -1;
        sc[c].path = cfgs[c].path;
        sc[c].key = path_canonical(&cfgs[c].path);
    }
    if (!st || scan_add_configs(st, sc, n_cfgs, "validate")) goto out;
    fprintf(stderr, "rys: pipeline validate: %d paths on %d generated math items (%s)\n", n_cfgs, MATH_VAL_ITEMS, file);
    scan_run_opts ro = {o->progress, false, 0, 0, NULL};
    scan_summary sum;
    if (scan_run(st, o->m, o->tok, es, o->pool, sc, n_cfgs, &ro, &sum)) goto out;
    if (sum.stopped) {
        p->res->stopped = true;
        rc = 0;
        goto out;
    }
    char **bkeys, **ckeys;
    double *bscore, *cscore;
    int nb, nc;
    const char *set = evalset_set_name(es, 0);
    if (store_item_scores(st, sc[0].key, set, &bkeys, &bscore, &nb)) goto out;
    rc = 0;
    for (int c = 1; c < n_cfgs && !rc; c++) {
        if (store_item_scores(st, sc[c].key, set, &ckeys, &cscore, &nc)) { rc = -1; break; }
        bool same = nb == nc && nb > 0;
        for (int k = 0; k < nb && same; k++) same = !strcmp(bkeys[k], ckeys[k]);
        pipeline_pick *pk = &picks[c - 1];
        if (same) {
            double d = 0;
            for (int k = 0; k < nb; k++) d += cscore[k] - bscore[k];
            pk->math_delta = d / nb;
            rc = paired_bootstrap_scores(set, bscore, cscore, nb, BOOTSTRAP_REPS, BOOTSTRAP_SEED, &pk->math_lo, &pk->math_hi);
        } else {
            rys_seterr("%s: %s and the baseline hold different items of %s", db, sc[c].spec, set);
            rc = -1;
        }
        for (int k = 0; k < nc; k++) free(ckeys[k]);
        free(ckeys);
        free(cscore);
    }
    for (int k = 0; k < nb; k++) free(bkeys[k]);
    free(bkeys);
    free(bscore);
out:
    for (int c = 0; c < n_cfgs; c++) free(sc[c].key);
    free(sc);
    store_close(st);
    evalset_free(es);
    return rc;
}

/* Loads the validation tasks of o->tasks, "TASK:VARIANT[@N]" each, into p. */
static int load_tasks(pipeline *p) {
    const pipeline_opts *o = p->o;
    char *list = xstrdup(o->tasks), *save = NULL;
    int rc = -1;
    for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        /* "TASK:VARIANT@N": the first N documents of that task (MMLU: of each subject) */
        int limit = o->task_limit;
        char *at = strrchr(t, '@');
        if (at) {
            char *end;
            long v = strtol(at + 1, &end, 10);
            if (end == at + 1 || *end || v < 1 || v > 1000000000) {
                rys_seterr("pipeline --tasks '%s': expected TASK:VARIANT[@N] with N a document count", t);
                goto out;
            }
            *at = 0;
            limit = (int)v;
        }
        p->tasks = xrealloc(p->tasks, (size_t)(p->n_tasks + 1) * sizeof *p->tasks);
        if (task_load(o->data_dir, t, limit, &p->tasks[p->n_tasks])) goto out;
        p->n_tasks++;
    }
    if (!p->n_tasks) rys_seterr("pipeline --tasks: no task given");
    else rc = 0;
out:
    free(list);
    return rc;
}

static int stage_validate(pipeline *p) {
    const pipeline_opts *o = p->o;
    double t0 = rys_now();
    int n_tasks = p->n_tasks;
    const task_set *tasks = p->tasks;
    validate_config *cfgs = NULL;
    char **search = NULL;
    int n_cfgs = 0, rc = -1;
    validate_results res = {0};
    validate_row *rows = NULL;
    validate_opts vo = {NULL, NULL, true, o->progress};
    if (choose_validation(p, &cfgs, &n_cfgs, &search)) goto out;
    char sha[65];
    if (sha256_file(o->model_path, sha)) goto out;
    if (!(vo.store = validate_store_open(p->res->db_path))) goto out;
    if (validate_store_identity(vo.store, o->model_path, sha, o->m->hp.arch_name, o->m->hp.n_layers)) goto out;
    fprintf(stderr, "rys: pipeline validate: %d configurations and the baseline on %d tasks\n", n_cfgs - 1, n_tasks);
    if (validate_run(o->m, o->tok, o->pool, tasks, n_tasks, cfgs, n_cfgs, &vo, &res)) goto out;
    if (res.stopped) {
        p->res->stopped = true;
        rc = stage_end(p, ST_VALIDATE, rys_now() - t0, false, NULL);
        goto out;
    }
    rows = xcalloc((size_t)n_tasks + 1, sizeof *rows);
    p->res->picks = xcalloc((size_t)n_cfgs, sizeof *p->res->picks);
    for (int c = 1; c < n_cfgs; c++) {
        if (validate_summarize(tasks, n_tasks, &res, c, rows)) goto out;
        const validate_row *avg = &rows[n_tasks];
        p->res->picks[p->res->n_picks++] = (pipeline_pick){xstrdup(cfgs[c].spec), path_ranges(&cfgs[c].path), xstrdup(search[c]),
                                                           path_extra_layers(&cfgs[c].path),
                                                           avg->delta, avg->ci_lo, avg->ci_hi, avg->n, NAN, NAN, NAN};
    }
    if (validate_math(p, cfgs, n_cfgs, p->res->picks)) goto out;
    if (p->res->stopped) {
        rc = stage_end(p, ST_VALIDATE, rys_now() - t0, false, NULL);
        goto out;
    }
    rc = stage_end(p, ST_VALIDATE, rys_now() - t0, true, NULL);
out:
    free(rows);
    validate_results_free(&res);
    validate_store_close(vo.store);
    for (int c = 0; c < n_cfgs; c++) { free(cfgs[c].spec); path_free(&cfgs[c].path); free(search[c]); }
    free(cfgs);
    free(search);
    return rc;
}

static int stage_report(pipeline *p) {
    double t0 = rys_now();
    report_data *d = report_load(p->res->db_path);
    if (!d) return -1;
    int rc = report_write(d, p->res->report_dir, 0, 10);
    report_free(d);
    if (rc) return -1;
    return stage_end(p, ST_REPORT, rys_now() - t0, true, NULL);
}

int pipeline_run(const pipeline_opts *o, pipeline_result *res) {
    memset(res, 0, sizeof *res);
    res->winner = -1;
    if (rys_mkdirs(o->dir)) {
        rys_seterr("%s: cannot create the pipeline's folder", o->dir);
        return -1;
    }
    snprintf(res->db_path, sizeof res->db_path, "%s/pipeline.sqlite", o->dir);
    snprintf(res->report_dir, sizeof res->report_dir, "%s/report", o->dir);
    pipeline p = {.o = o, .res = res, .t_start = rys_now()};
    int n_files = 0, rc = -1;
    char **files = NULL;
    char *list = xstrdup(o->probes), *save = NULL;
    for (char *f = strtok_r(list, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
        files = xrealloc(files, (size_t)(n_files + 1) * sizeof *files);
        files[n_files++] = f;
    }
    if (load_tasks(&p)) goto out;
    evalset_options eo = {64, NULL, false};
    if (!(p.es = evalset_load((const char *const *)files, n_files, o->m, o->tok, &eo))) goto out;
    if (!(p.st = scan_store_open(res->db_path, o->model_path, o->m, p.es))) goto out;
    for (int s = 0; s < PIPELINE_N_STAGES; s++) {
        if (store_stage_get(p.st, pipeline_stage_name[s], &p.stage[s])) goto out;
        p.spent_before += p.stage[s].seconds;
    }
    if (measure_baseline(&p)) goto out;
    for (int s = 0; s < PIPELINE_N_STAGES && !res->stopped; s++) {
        /* a finished validation still runs: it reads its results back from the store (no document recomputed) */
        if (p.stage[s].done && s != ST_VALIDATE) continue;
        int st_rc;
        switch (s) {
        case ST_COARSE: st_rc = stage_coarse(&p); break;
        case ST_FOCUS: st_rc = stage_focus(&p); break;
        case ST_BEAM: st_rc = stage_beam(&p); break;
        case ST_SURROGATE: st_rc = stage_surrogate(&p); break;
        case ST_VALIDATE: st_rc = stage_validate(&p); break;
        case ST_REPORT: st_rc = stage_report(&p); break;
        default: rys_seterr("pipeline: no stage %d", s); st_rc = -1; break;
        }
        if (st_rc) goto out;
    }
    res->complete = !res->stopped;
    if (res->picks) {
        qsort(res->picks, (size_t)res->n_picks, sizeof *res->picks, by_delta);
        for (int k = 0; k < res->n_picks && res->winner < 0; k++)
            if (res->picks[k].ci_lo > 0) res->winner = k;
    }
    rc = 0;
out:
    for (int k = 0; k < p.n_tasks; k++) task_set_free(&p.tasks[k]);
    free(p.tasks);
    store_close(p.st);
    evalset_free(p.es);
    free(files);
    free(list);
    return rc;
}

void pipeline_result_free(pipeline_result *res) {
    for (int k = 0; k < res->n_picks; k++) {
        free(res->picks[k].spec);
        free(res->picks[k].layers);
        free(res->picks[k].search);
    }
    free(res->picks);
    res->picks = NULL;
    res->n_picks = 0;
}
