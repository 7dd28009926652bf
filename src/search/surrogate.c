/* surrogate: see surrogate.h. Statistics, the training rows read from the
 * scan store, XGBoost training through its C API, and the JSON file. */
#include "search/surrogate.h"
#include "report/report.h"
#include "scan/store.h"
#include "engine/path.h"
#include "base/stats.h"
#include "base/util.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <xgboost/c_api.h>

const char *const sur_target_name[SUR_N_TARGETS] = {"math_delta", "eq_delta", "balanced"};

/* The reference scripts' presets (RYS II's train_surrogate): depth and rate
 * trade against rounds; the later ones are only tried when the gate fails. */
const sur_params sur_presets[SUR_N_PRESETS] = {
    {500, 6, 0.05, 0.90, 0.90},
    {700, 4, 0.08, 0.85, 0.85},
    {900, 8, 0.03, 0.90, 0.80},
    {350, 6, 0.10, 0.95, 0.95},
};

/* ---- generator ------------------------------------------------------------- */

uint64_t sur_rng_next(sur_rng *r) { return rys_splitmix64(&r->s); }

double sur_rng_unit(sur_rng *r) { return (double)(sur_rng_next(r) >> 11) * (1.0 / 9007199254740992.0); }

int sur_rng_below(sur_rng *r, int n) {
    int k = (int)(sur_rng_unit(r) * n);
    return k < n ? k : n - 1;
}

int sur_holdout(const double *y, int n, double frac, uint64_t seed, bool *hold) {
    for (int k = 0; k < n; k++) hold[k] = false;
    if (n < 3) return 0;
    int target = (int)lround(n * frac);
    if (target < 1) target = 1;
    if (target > n - 1) target = n - 1;
    int bins = n / 20 < 2 ? 2 : n / 20 > 10 ? 10 : n / 20;
    int *idx = xmalloc((size_t)n * sizeof *idx);
    stat_order(y, n, false, idx);
    /* bin b holds sorted positions [start[b], start[b+1]) : rank r goes to floor((r + 0.5) / n * bins) */
    int start[11] = {0}, take[10] = {0};
    double rem[10];
    for (int r = 0, b = 0; r < n; r++) {
        int rb = (int)floor((r + 0.5) / n * bins);
        if (rb > bins - 1) rb = bins - 1;
        while (b < rb) start[++b] = r;
    }
    start[bins] = n;
    sur_rng g = {seed};
    int used = 0;
    for (int b = 0; b < bins; b++) {
        int len = start[b + 1] - start[b];
        /* a seeded Fisher-Yates shuffle of the bin, whose first `take` rows are held out */
        for (int k = len - 1; k > 0; k--) {
            int j = sur_rng_below(&g, k + 1), t = idx[start[b] + k];
            idx[start[b] + k] = idx[start[b] + j];
            idx[start[b] + j] = t;
        }
        double raw = frac * len;
        take[b] = (int)floor(raw);
        if (take[b] > len - 1) take[b] = len > 0 ? len - 1 : 0;
        rem[b] = raw - take[b];
        used += take[b];
    }
    /* the rest to the largest remainders (earlier bin first on a tie), never a whole bin */
    while (used < target) {
        int best = -1;
        for (int b = 0; b < bins; b++)
            if (take[b] < start[b + 1] - start[b] - 1 && (best < 0 || rem[b] > rem[best])) best = b;
        if (best < 0) break;
        take[best]++;
        rem[best] -= 1;
        used++;
    }
    for (int b = 0; b < bins; b++)
        for (int k = 0; k < take[b]; k++) hold[idx[start[b] + k]] = true;
    free(idx);
    return used;
}

/* ---- training rows ---------------------------------------------------------- */

void sur_rows_free(sur_rows *r) {
    if (!r) return;
    free(r->model_path);
    free(r->model_sha256);
    free(r->math_probe);
    free(r->eq_probe);
    free(r->x);
    for (int t = 0; t < SUR_N_TARGETS; t++) free(r->y[t]);
    for (int k = 0; k < r->n; k++) free(r->paths[k]);
    free(r->paths);
    memset(r, 0, sizeof *r);
}

/* counts of a canonical "layers:..." path; -1 with the error set when it does not parse for this model. */
static int path_row(const char *canon, int n_layers, float *x) {
    layer_path p;
    const char *spec = strncmp(canon, "layers:", 7) ? canon : canon + 7;
    if (path_from_layers(spec, n_layers, &p)) return -1;
    int *c = xmalloc((size_t)n_layers * sizeof *c);
    path_counts(&p, c);
    for (int l = 0; l < n_layers; l++) x[l] = (float)c[l];
    free(c);
    path_free(&p);
    return 0;
}

int sur_rows_load(const char *db_path, sur_rows *out) {
    memset(out, 0, sizeof *out);
    store *st = store_open_readonly(db_path);
    if (!st) return -1;
    store_probe_set *sets = NULL;
    store_done *rows = NULL;
    int n_sets = 0, n_rows = 0, rc = -1, base = -1;
    report_data d = {0};
    if (!store_get_run(st, &out->model_path, &out->n_layers)) {
        rys_seterr("%s: not a rys scan database (no scan identity)", db_path);
        goto out;
    }
    if (store_model_sha256(st, &out->model_sha256) != 1 || store_probe_sets(st, &sets, &n_sets)) goto out;
    int pm = -1, pe = -1;
    for (int p = 0; p < n_sets; p++) {
        if (pm < 0 && !strcmp(sets[p].kind, "math")) pm = p;
        if (pe < 0 && !strncmp(sets[p].kind, "eq", 2)) pe = p;
    }
    if (pm < 0) {
        rys_seterr("%s: the surrogate needs a math probe set (its targets are the math and EQ deltas); this scan has none", db_path);
        goto out;
    }
    out->math_probe = xstrdup(sets[pm].name);
    const bool has_eq = pe >= 0;
    out->eq_probe = has_eq ? xstrdup(sets[pe].name) : NULL;
    const int n_probes = has_eq ? 2 : 1;
    const char *probes[2] = {out->math_probe, out->eq_probe};
    if (store_done_configs(st, probes, n_probes, &rows, &n_rows)) goto out;
    int N = out->n_layers;
    out->x = xcalloc((size_t)(n_rows ? n_rows : 1) * (size_t)N, sizeof *out->x);
    out->paths = xcalloc((size_t)(n_rows ? n_rows : 1), sizeof *out->paths);
    for (int t = 0; t < SUR_N_TARGETS; t++) out->y[t] = xcalloc((size_t)(n_rows ? n_rows : 1), sizeof *out->y[t]);
    /* the deltas and balanced scores as the report computes them: report_derive over the non-baseline rows */
    d.n_probes = n_probes;
    d.math = 0;
    d.eq = has_eq ? 1 : -1;
    d.cfg = xcalloc((size_t)(n_rows ? n_rows : 1), sizeof *d.cfg);
    double bscore[2] = {0, 0};
    for (int k = 0; k < n_rows; k++)
        if (rows[k].complete && !strcmp(rows[k].spec, "baseline")) {
            base = k;
            bscore[0] = rows[k].scores[0];
            if (has_eq) bscore[1] = rows[k].scores[1];
        }
    if (base < 0) { rys_seterr("%s: the baseline is not scored yet, and every target is a delta from it", db_path); goto out; }
    int *row_of = xmalloc((size_t)(n_rows ? n_rows : 1) * sizeof *row_of);
    for (int k = 0; k < n_rows; k++) {
        /* a done row without both scores cannot come from store_save_result; skipped, never scored 0 */
        if (!rows[k].complete) continue;
        if (path_row(rows[k].path, N, out->x + (size_t)out->n * N)) {
            rys_seterr("%s: stored path of %s: %s", db_path, rows[k].spec, rys_lasterr());
            free(row_of);
            goto out;
        }
        out->paths[out->n] = xstrdup(rows[k].path);
        out->y[SUR_MATH][out->n] = rows[k].scores[0] - bscore[0];
        if (has_eq) out->y[SUR_EQ][out->n] = rows[k].scores[1] - bscore[1];
        if (k != base) {
            d.cfg[d.n_cfg].delta[0] = out->y[SUR_MATH][out->n];
            if (has_eq) d.cfg[d.n_cfg].delta[1] = out->y[SUR_EQ][out->n];
            row_of[d.n_cfg++] = out->n;
        }
        out->n++;
    }
    report_derive(&d);
    /* the baseline's balanced score: the same z-scores at deltas of 0 (mean and population std of the others) */
    double zb = 0;
    for (int p = 0; p < n_probes; p++) {
        double m = 0, ss = 0;
        for (int k = 0; k < d.n_cfg; k++) m += d.cfg[k].delta[p];
        m = d.n_cfg ? m / d.n_cfg : 0;
        for (int k = 0; k < d.n_cfg; k++) ss += (d.cfg[k].delta[p] - m) * (d.cfg[k].delta[p] - m);
        double sd = d.n_cfg ? sqrt(ss / d.n_cfg) : 0;
        zb += -m / (sd < 1e-12 ? 1 : sd);
    }
    for (int r = 0; r < out->n; r++) out->y[SUR_BALANCED][r] = zb;
    for (int k = 0; k < d.n_cfg; k++) out->y[SUR_BALANCED][row_of[k]] = d.cfg[k].balanced;
    free(row_of);
    rc = 0;
out:
    free(d.cfg);
    store_done_free(rows, n_rows);
    store_probe_sets_free(sets, n_sets);
    store_close(st);
    if (rc) sur_rows_free(out);
    return rc;
}

/* ---- XGBoost ------------------------------------------------------------------ */

/* XGBoost's own message behind a failed call, as the one-line error. */
static int xgb_fail(const char *what) {
    const char *m = XGBGetLastError();
    const char *nl = m ? strrchr(m, '\n') : NULL;
    rys_seterr("xgboost: %s: %s", what, nl && nl[1] ? nl + 1 : m ? m : "failed");
    return -1;
}

static int set_param(BoosterHandle b, const char *k, const char *fmt, double v) {
    char s[64];
    snprintf(s, sizeof s, fmt, v);
    return XGBoosterSetParam(b, k, s) ? xgb_fail(k) : 0;
}

static int fit(const float *x, const double *y, int n, int n_layers, const sur_params *p, uint64_t seed, int n_threads,
               BoosterHandle *out) {
    *out = NULL;
    DMatrixHandle dm;
    if (XGDMatrixCreateFromMat(x, (bst_ulong)n, (bst_ulong)n_layers, NAN, &dm)) return xgb_fail("building the training matrix");
    float *label = xmalloc((size_t)(n ? n : 1) * sizeof *label);
    for (int k = 0; k < n; k++) label[k] = (float)y[k];
    int rc = -1;
    BoosterHandle b = NULL;
    if (XGDMatrixSetFloatInfo(dm, "label", label, (bst_ulong)n)) { xgb_fail("setting labels"); goto out; }
    if (XGBoosterCreate(&dm, 1, &b)) { xgb_fail("creating a booster"); goto out; }
    if (XGBoosterSetParam(b, "objective", "reg:squarederror") || XGBoosterSetParam(b, "tree_method", "hist") ||
        XGBoosterSetParam(b, "verbosity", "0")) {
        xgb_fail("setting parameters");
        goto out;
    }
    if (set_param(b, "max_depth", "%.0f", p->max_depth) || set_param(b, "eta", "%.17g", p->eta) ||
        set_param(b, "subsample", "%.17g", p->subsample) || set_param(b, "colsample_bytree", "%.17g", p->colsample) ||
        set_param(b, "lambda", "%.0f", 1) || set_param(b, "alpha", "%.0f", 0) ||
        set_param(b, "seed", "%.0f", (double)(seed & 0x7fffffff)) || set_param(b, "nthread", "%.0f", n_threads))
        goto out;
    for (int it = 0; it < p->rounds; it++)
        if (XGBoosterUpdateOneIter(b, it, dm)) { xgb_fail("training"); goto out; }
    *out = b;
    b = NULL;
    rc = 0;
out:
    if (b) XGBoosterFree(b);
    XGDMatrixFree(dm);
    free(label);
    return rc;
}

static int predict_with(BoosterHandle b, const float *x, int n, int n_layers, int n_threads, float *out) {
    DMatrixHandle dm;
    if (n == 0) return 0;
    if (XGDMatrixCreateFromMat_omp(x, (bst_ulong)n, (bst_ulong)n_layers, NAN, &dm, n_threads))
        return xgb_fail("building a prediction matrix");
    char nt[32];
    snprintf(nt, sizeof nt, "%d", n_threads);
    const bst_ulong *shape;
    bst_ulong dim;
    const float *res;
    int rc = 0;
    if (XGBoosterSetParam(b, "nthread", nt) ||
        XGBoosterPredictFromDMatrix(b, dm, "{\"type\": 0, \"training\": false, \"iteration_begin\": 0, \"iteration_end\": 0, "
                                           "\"strict_shape\": false}", &shape, &dim, &res))
        rc = xgb_fail("predicting");
    else memcpy(out, res, (size_t)n * sizeof *out);
    XGDMatrixFree(dm);
    return rc;
}

bool sur_has_target(const surrogate *s, int t) { return t != SUR_EQ || s->eq_probe; }

int sur_predict(const surrogate *s, int t, const float *x, int n, int n_threads, float *out) {
    return predict_with(s->booster[t], x, n, s->n_layers, n_threads, out);
}

void sur_free(surrogate *s) {
    if (!s) return;
    free(s->model_path);
    free(s->model_sha256);
    free(s->math_probe);
    free(s->eq_probe);
    free(s->db_path);
    for (int t = 0; t < SUR_N_TARGETS; t++) {
        if (s->booster[t]) XGBoosterFree(s->booster[t]);
        free(s->hold_y[t]);
        free(s->hold_pred[t]);
    }
    for (int k = 0; k < s->n_holdout && s->hold_paths; k++) free(s->hold_paths[k]);
    free(s->hold_paths);
    free(s->anchors);
    memset(s, 0, sizeof *s);
}



int sur_train(const sur_rows *rows, const char *db_path, const sur_train_opts *o, surrogate *s) {
    memset(s, 0, sizeof *s);
    int n = rows->n, N = rows->n_layers;
    if (n < 20) {
        rys_seterr("%s: %d measured configurations; the surrogate needs at least 20 (scan more first)", db_path, n);
        return -1;
    }
    s->n_layers = N;
    s->model_path = xstrdup(rows->model_path);
    s->model_sha256 = xstrdup(rows->model_sha256);
    s->math_probe = xstrdup(rows->math_probe);
    s->eq_probe = rows->eq_probe ? xstrdup(rows->eq_probe) : NULL;
    s->db_path = xstrdup(db_path);
    s->seed = o->seed;
    s->holdout_frac = o->holdout_frac;
    s->gate = o->gate;
    s->n_threads = o->n_threads;
    bool *hold = xmalloc((size_t)n * sizeof *hold);
    int nh = sur_holdout(rows->y[SUR_BALANCED], n, o->holdout_frac, o->seed, hold);
    int nt = n - nh;
    float *xt = xmalloc((size_t)nt * N * sizeof *xt), *xh = xmalloc((size_t)nh * N * sizeof *xh);
    double *yt[SUR_N_TARGETS];
    s->hold_paths = xcalloc((size_t)nh, sizeof *s->hold_paths);
    for (int t = 0; t < SUR_N_TARGETS; t++) {
        yt[t] = xmalloc((size_t)nt * sizeof *yt[t]);
        s->hold_y[t] = xmalloc((size_t)nh * sizeof *s->hold_y[t]);
        s->hold_pred[t] = xcalloc((size_t)nh, sizeof *s->hold_pred[t]);
    }
    for (int k = 0, a = 0, h = 0; k < n; k++) {
        const float *xr = rows->x + (size_t)k * N;
        if (hold[k]) {
            memcpy(xh + (size_t)h * N, xr, (size_t)N * sizeof *xr);
            s->hold_paths[h] = xstrdup(rows->paths[k]);
            for (int t = 0; t < SUR_N_TARGETS; t++) s->hold_y[t][h] = rows->y[t][k];
            h++;
        } else {
            memcpy(xt + (size_t)a * N, xr, (size_t)N * sizeof *xr);
            for (int t = 0; t < SUR_N_TARGETS; t++) yt[t][a] = rows->y[t][k];
            a++;
        }
    }
    s->n_train = nt;
    s->n_holdout = nh;
    int rc = -1, tries = 1 + (o->retries < 0 ? 0 : o->retries);
    if (tries > SUR_N_PRESETS) tries = SUR_N_PRESETS;
    float *pred = xmalloc((size_t)nh * sizeof *pred);
    double *pd = xmalloc((size_t)nh * sizeof *pd);
    double best_rho = -INFINITY;
    for (int trial = 0; trial < tries; trial++) {
        BoosterHandle b[SUR_N_TARGETS] = {0};
        double rho[SUR_N_TARGETS] = {NAN, NAN, NAN}, mae[SUR_N_TARGETS] = {NAN, NAN, NAN};
        bool ok = true;
        for (int t = 0; t < SUR_N_TARGETS && ok; t++) {
            if (!sur_has_target(s, t)) continue;
            /* each trial a different subsampling seed, as in the reference's retries */
            ok = !fit(xt, yt[t], nt, N, &sur_presets[trial], o->seed + (uint64_t)trial, o->n_threads, &b[t]) &&
                 !predict_with(b[t], xh, nh, N, o->n_threads, pred);
            if (!ok) break;
            for (int k = 0; k < nh; k++) pd[k] = pred[k];
            rho[t] = stat_spearman(s->hold_y[t], pd, nh);
            mae[t] = stat_mae(s->hold_y[t], pd, nh);
        }
        if (!ok) {
            for (int t = 0; t < SUR_N_TARGETS; t++) if (b[t]) XGBoosterFree(b[t]);
            goto out;
        }
        /* an undefined rho (a constant holdout or prediction) never passes the gate */
        double r = isnan(rho[SUR_BALANCED]) ? -INFINITY : rho[SUR_BALANCED];
        s->trial_spearman[trial] = rho[SUR_BALANCED];
        s->n_trials = trial + 1;
        if (o->log) {
            fprintf(o->log, "trial %d (rounds %d, depth %d, eta %g, subsample %g, colsample %g): holdout Spearman balanced %.3f, "
                    "math %.3f", trial + 1, sur_presets[trial].rounds, sur_presets[trial].max_depth, sur_presets[trial].eta,
                    sur_presets[trial].subsample, sur_presets[trial].colsample, rho[SUR_BALANCED], rho[SUR_MATH]);
            if (s->eq_probe) fprintf(o->log, ", eq %.3f", rho[SUR_EQ]);
            fputc('\n', o->log);
        }
        if (r > best_rho || trial == 0) {
            best_rho = r;
            for (int t = 0; t < SUR_N_TARGETS; t++) {
                if (s->booster[t]) XGBoosterFree(s->booster[t]);
                s->booster[t] = b[t];
                s->spearman[t] = rho[t];
                s->mae[t] = mae[t];
                if (!b[t]) continue;
                if (predict_with(b[t], xh, nh, N, o->n_threads, pred)) goto out;
                for (int k = 0; k < nh; k++) s->hold_pred[t][k] = pred[k];
            }
            s->trial = trial + 1;
            s->params = sur_presets[trial];
        } else {
            for (int t = 0; t < SUR_N_TARGETS; t++) if (b[t]) XGBoosterFree(b[t]);
        }
        if (r >= o->gate) break;
    }
    s->gate_passed = best_rho >= o->gate;
    /* anchors: the best measured paths by balanced score, for the candidates' mutations */
    int *idx = xmalloc((size_t)n * sizeof *idx);
    stat_order(rows->y[SUR_BALANCED], n, true, idx);
    s->n_anchors = o->n_anchors < n ? o->n_anchors : n;
    s->anchors = xmalloc((size_t)(s->n_anchors ? s->n_anchors : 1) * N * sizeof *s->anchors);
    for (int a = 0; a < s->n_anchors; a++)
        for (int l = 0; l < N; l++) s->anchors[(size_t)a * N + l] = (int)rows->x[(size_t)idx[a] * N + l];
    free(idx);
    rc = 0;
out:
    free(pred);
    free(pd);
    free(hold);
    free(xt);
    free(xh);
    for (int t = 0; t < SUR_N_TARGETS; t++) free(yt[t]);
    if (rc) sur_free(s);
    return rc;
}

/* ---- the file ------------------------------------------------------------------- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *b64_encode(const unsigned char *p, size_t n) {
    char *s = xmalloc(4 * ((n + 2) / 3) + 1), *o = s;
    for (size_t k = 0; k < n; k += 3) {
        uint32_t v = (uint32_t)p[k] << 16 | (k + 1 < n ? (uint32_t)p[k + 1] << 8 : 0) | (k + 2 < n ? p[k + 2] : 0);
        *o++ = b64[v >> 18 & 63];
        *o++ = b64[v >> 12 & 63];
        *o++ = k + 1 < n ? b64[v >> 6 & 63] : '=';
        *o++ = k + 2 < n ? b64[v & 63] : '=';
    }
    *o = 0;
    return s;
}

/* Decodes base64 text (no whitespace); NULL when it is not base64. */
static unsigned char *b64_decode(const char *s, size_t *n) {
    size_t len = strlen(s);
    if (len % 4) return NULL;
    unsigned char *out = xmalloc(len / 4 * 3 + 1);
    size_t o = 0;
    for (size_t k = 0; k < len; k += 4) {
        uint32_t v = 0;
        int pad = 0;
        for (int q = 0; q < 4; q++) {
            const char *f = s[k + q] ? strchr(b64, s[k + q]) : NULL;
            if (s[k + q] == '=' && k + 4 == len && q >= 2) { pad++; v <<= 6; continue; }
            if (!f || pad) { free(out); return NULL; }
            v = v << 6 | (uint32_t)(f - b64);
        }
        out[o++] = (unsigned char)(v >> 16);
        if (pad < 2) out[o++] = (unsigned char)(v >> 8 & 255);
        if (pad < 1) out[o++] = (unsigned char)(v & 255);
    }
    *n = o;
    return out;
}

/* NaN as JSON null. */
static json_t *jreal(double v) { return isfinite(v) ? json_real(v) : json_null(); }

int sur_save(const surrogate *s, const char *path) {
    json_t *o = json_object();
    json_object_set_new(o, "format", json_string("rys-surrogate"));
    json_object_set_new(o, "version", json_integer(1));
    json_object_set_new(o, "model", json_pack("{s:s, s:s, s:i}", "path", s->model_path, "sha256", s->model_sha256, "n_layers", s->n_layers));
    json_object_set_new(o, "store", json_string(s->db_path ? s->db_path : ""));
    json_object_set_new(o, "probes", json_pack("{s:s, s:o}", "math", s->math_probe, "eq",
                                               s->eq_probe ? json_string(s->eq_probe) : json_null()));
    json_t *tg = json_array();
    for (int t = 0; t < SUR_N_TARGETS; t++)
        if (sur_has_target(s, t)) json_array_append_new(tg, json_string(sur_target_name[t]));
    json_object_set_new(o, "targets", tg);
    json_object_set_new(o, "features", json_string("per-layer traversal counts"));
    json_object_set_new(o, "objective", json_string("reg:squarederror"));
    json_object_set_new(o, "seed", json_integer((json_int_t)s->seed));
    json_object_set_new(o, "holdout_frac", json_real(s->holdout_frac));
    json_object_set_new(o, "n_threads", json_integer(s->n_threads));
    json_object_set_new(o, "params", json_pack("{s:i, s:i, s:f, s:f, s:f}", "rounds", s->params.rounds, "max_depth", s->params.max_depth,
                                               "eta", s->params.eta, "subsample", s->params.subsample, "colsample_bytree", s->params.colsample));
    json_t *tr = json_array();
    for (int k = 0; k < s->n_trials; k++) json_array_append_new(tr, jreal(s->trial_spearman[k]));
    json_object_set_new(o, "gate", json_pack("{s:s, s:f, s:b, s:i, s:o}", "target", "balanced", "spearman_min", s->gate, "passed", s->gate_passed,
                                             "trial", s->trial, "trial_spearman", tr));
    json_t *ho = json_object();
    for (int t = 0; t < SUR_N_TARGETS; t++)
        if (sur_has_target(s, t))
            json_object_set_new(ho, sur_target_name[t], json_pack("{s:o, s:o}", "spearman", jreal(s->spearman[t]), "mae", jreal(s->mae[t])));
    json_object_set_new(o, "holdout", ho);
    json_object_set_new(o, "rows", json_pack("{s:i, s:i}", "train", s->n_train, "holdout", s->n_holdout));
    json_t *an = json_array();
    for (int a = 0; a < s->n_anchors; a++) {
        json_t *v = json_array();
        for (int l = 0; l < s->n_layers; l++) json_array_append_new(v, json_integer(s->anchors[(size_t)a * s->n_layers + l]));
        json_array_append_new(an, v);
    }
    json_object_set_new(o, "anchors", an);
    json_t *bo = json_object();
    for (int t = 0; t < SUR_N_TARGETS; t++) {
        if (!sur_has_target(s, t)) continue;
        bst_ulong len;
        const char *buf;
        if (XGBoosterSaveModelToBuffer(s->booster[t], "{\"format\": \"ubj\"}", &len, &buf)) {
            json_decref(o);
            json_decref(bo);
            return xgb_fail("saving a booster");
        }
        char *e = b64_encode((const unsigned char *)buf, (size_t)len);
        json_object_set_new(bo, sur_target_name[t], json_string(e));
        free(e);
    }
    json_object_set_new(o, "boosters_ubj_base64", bo);
    int rc = json_dump_file(o, path, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (rc) { rys_seterr("%s: cannot write", path); return -1; }
    return 0;
}

int sur_load(const char *path, surrogate *s) {
    memset(s, 0, sizeof *s);
    json_error_t je;
    json_t *o = json_load_file(path, 0, &je);
    if (!o) { rys_seterr("%s: not a surrogate file: %s (line %d)", path, je.text, je.line); return -1; }
    const char *fmt = NULL, *mp = NULL, *sha = NULL, *pm = NULL, *db = "";
    json_t *pe = NULL;
    int ver = 0, nl = 0, passed = 0, trial = 0;
    json_t *params = NULL, *hold = NULL, *anchors = NULL, *boosters = NULL;
    json_int_t seed = 0;
    if (json_unpack_ex(o, &je, 0, "{s:s, s:i, s:{s:s, s:s, s:i}, s?s, s:{s:s, s:o}, s:I, s:F, s:i, s:o, s:{s:b, s:F, s:i}, s:o, "
                                  "s:{s:i, s:i}, s:o, s:o}",
                       "format", &fmt, "version", &ver, "model", "path", &mp, "sha256", &sha, "n_layers", &nl, "store", &db,
                       "probes", "math", &pm, "eq", &pe, "seed", &seed, "holdout_frac", &s->holdout_frac, "n_threads", &s->n_threads,
                       "params", &params, "gate", "passed", &passed, "spearman_min", &s->gate, "trial", &trial, "holdout", &hold,
                       "rows", "train", &s->n_train, "holdout", &s->n_holdout, "anchors", &anchors,
                       "boosters_ubj_base64", &boosters) ||
        strcmp(fmt, "rys-surrogate")) {
        rys_seterr("%s: not a rys surrogate file (%s)", path, fmt && strcmp(fmt, "rys-surrogate") ? "another format" : je.text);
        goto fail;
    }
    if (ver != 1) { rys_seterr("%s: surrogate file version %d; this rys reads version 1", path, ver); goto fail; }
    if (nl < 1 || nl > 4096) { rys_seterr("%s: model of %d layers", path, nl); goto fail; }
    s->n_layers = nl;
    s->model_path = xstrdup(mp);
    s->model_sha256 = xstrdup(sha);
    s->math_probe = xstrdup(pm);
    if (!json_is_string(pe) && !json_is_null(pe)) { rys_seterr("%s: probes.eq is neither a name nor null", path); goto fail; }
    s->eq_probe = json_is_string(pe) ? xstrdup(json_string_value(pe)) : NULL;
    s->db_path = xstrdup(db);
    s->seed = (uint64_t)seed;
    s->gate_passed = passed;
    s->trial = trial;
    if (json_unpack_ex(params, &je, 0, "{s:i, s:i, s:F, s:F, s:F}", "rounds", &s->params.rounds, "max_depth", &s->params.max_depth,
                       "eta", &s->params.eta, "subsample", &s->params.subsample, "colsample_bytree", &s->params.colsample)) {
        rys_seterr("%s: params: %s", path, je.text);
        goto fail;
    }
    for (int t = 0; t < SUR_N_TARGETS; t++) {
        s->spearman[t] = s->mae[t] = NAN;
        if (!sur_has_target(s, t)) continue;
        json_t *h = json_object_get(hold, sur_target_name[t]), *r = json_object_get(h, "spearman"), *e1 = json_object_get(h, "mae");
        s->spearman[t] = json_is_number(r) ? json_number_value(r) : NAN;
        s->mae[t] = json_is_number(e1) ? json_number_value(e1) : NAN;
        const char *e = json_string_value(json_object_get(boosters, sur_target_name[t]));
        size_t len = 0;
        unsigned char *buf = e ? b64_decode(e, &len) : NULL;
        if (!buf) { rys_seterr("%s: booster %s missing or not base64", path, sur_target_name[t]); goto fail; }
        int bad = XGBoosterCreate(NULL, 0, &s->booster[t]) || XGBoosterLoadModelFromBuffer(s->booster[t], buf, (bst_ulong)len);
        free(buf);
        if (bad) {
            xgb_fail("loading a booster");
            rys_seterr("%s: booster %s: %s", path, sur_target_name[t], rys_lasterr());
            goto fail;
        }
    }
    if (!json_is_array(anchors)) { rys_seterr("%s: anchors is not an array", path); goto fail; }
    s->n_anchors = (int)json_array_size(anchors);
    s->anchors = xmalloc((size_t)(s->n_anchors ? s->n_anchors : 1) * (size_t)nl * sizeof *s->anchors);
    for (int a = 0; a < s->n_anchors; a++) {
        json_t *v = json_array_get(anchors, (size_t)a);
        if (!json_is_array(v) || (int)json_array_size(v) != nl) {
            rys_seterr("%s: anchor %d is not %d counts", path, a + 1, nl);
            goto fail;
        }
        for (int l = 0; l < nl; l++) {
            json_t *c = json_array_get(v, (size_t)l);
            if (!json_is_integer(c) || json_integer_value(c) < 0 || json_integer_value(c) > 64) {
                rys_seterr("%s: anchor %d: count %d is not an integer in 0..64", path, a + 1, l);
                goto fail;
            }
            s->anchors[(size_t)a * nl + l] = (int)json_integer_value(c);
        }
    }
    json_decref(o);
    return 0;
fail:
    json_decref(o);
    sur_free(s);
    return -1;
}

int sur_train_store(const char *db_path, const sur_train_opts *o, surrogate *s) {
    sur_rows rows;
    if (sur_rows_load(db_path, &rows)) return -1;
    if (o->log)
        fprintf(o->log, "rys: surrogate: %d rows (the baseline and every measured configuration) of %d layers, targets %s%s%s and balanced%s\n",
                rows.n, rows.n_layers, rows.math_probe, rows.eq_probe ? ", " : "", rows.eq_probe ? rows.eq_probe : "",
                rows.eq_probe ? "" : " (no EQ set in the scan: balanced is the math delta's z-score)");
    int rc = sur_train(&rows, db_path, o, s);
    sur_rows_free(&rows);
    if (rc) return -1;
    /* the holdout into the store, where rys report reads it */
    store *st = store_open(db_path);
    if (!st) {
        sur_free(s);
        return -1;
    }
    store_surrogate_target tg[SUR_N_TARGETS];
    int n_tg = 0;
    for (int t = 0; t < SUR_N_TARGETS; t++)
        if (sur_has_target(s, t))
            tg[n_tg++] = (store_surrogate_target){sur_target_name[t], s->spearman[t], s->mae[t], s->n_train, s->n_holdout,
                                                  s->gate_passed, (const char *const *)s->hold_paths, s->hold_y[t], s->hold_pred[t]};
    rc = store_save_surrogate(st, tg, n_tg);
    store_close(st);
    if (rc) sur_free(s);
    return rc;
}

int sur_measured_counts(const char *db_path, const surrogate *s, int **counts, int *n) {
    *counts = NULL;
    *n = 0;
    store *st = store_open_readonly(db_path);
    if (!st) return -1;
    char *model = NULL, *sha = NULL;
    int nl = 0, rc = -1;
    store_done *rows = NULL;
    int n_rows = 0;
    if (!store_get_run(st, &model, &nl)) {
        rys_seterr("%s: not a rys scan database (no scan identity)", db_path);
        goto out;
    }
    if (store_model_sha256(st, &sha) != 1) goto out;
    if (nl != s->n_layers || strcmp(sha, s->model_sha256)) {
        rys_seterr("the surrogate is of another model (%d layers, sha256 %.12s...) than %s (%d layers, sha256 %.12s...); train one on it",
                   s->n_layers, s->model_sha256, db_path, nl, sha);
        goto out;
    }
    if (store_done_configs(st, NULL, 0, &rows, &n_rows)) goto out;
    int *c = xmalloc((size_t)(n_rows ? n_rows : 1) * (size_t)nl * sizeof *c);
    for (int k = 0; k < n_rows; k++) {
        layer_path p;
        const char *spec = strncmp(rows[k].path, "layers:", 7) ? rows[k].path : rows[k].path + 7;
        if (path_from_layers(spec, nl, &p)) continue;   /* a path this model cannot run cannot be a candidate either */
        path_counts(&p, c + (size_t)(*n)++ * nl);
        path_free(&p);
    }
    *counts = c;
    rc = 0;
out:
    store_done_free(rows, n_rows);
    free(model);
    free(sha);
    store_close(st);
    return rc;
}

char *sur_counts_spec(const uint8_t *c, int n_layers) {
    size_t cap = 8 + 4 * (size_t)n_layers, len = 0;
    char *s = xmalloc(cap);
    len += (size_t)snprintf(s, cap, "counts:");
    for (int l = 0; l < n_layers; l++) len += (size_t)snprintf(s + len, cap - len, l ? ",%d" : "%d", c[l]);
    return s;
}
