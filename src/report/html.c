/* report page: writes every figure and an index.html that shows them. The page
 * must open offline from a copied folder, so it has inline CSS, relative links
 * only, and no scripts, fonts or images from elsewhere. */
#include "report/report.h"
#include "base/stats.h"
#include "base/util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void esc(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else if (*s == '&') fputs("&amp;", f);
        else if (*s == '"') fputs("&quot;", f);
        else fputc(*s, f);
    }
}

/* A file name stem for a figure: probe names come from the user's probe files. */
static void stem(char *out, size_t n, const char *kind, const char *name) {
    int k = snprintf(out, n, "%s_", kind);
    for (const char *s = name; *s && (size_t)k + 1 < n; s++, k++)
        out[k] = (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' ? *s : '_';
    out[k] = 0;
}

static const char *name_of(const report_data *d, int p) { return p == REPORT_COMBINED ? "combined" : d->probe[p]; }

static void figure(FILE *f, const char *file_stem, const char *caption) {
    fprintf(f, "<figure><a href=\"%s.svg\"><img src=\"%s.png\" alt=\"", file_stem, file_stem);
    esc(f, caption);
    fputs("\"></a><figcaption>", f);
    esc(f, caption);
    fprintf(f, " <a href=\"%s.svg\">SVG</a> &middot; <a href=\"%s.png\">PNG</a></figcaption></figure>\n", file_stem, file_stem);
}

static void table(FILE *f, const report_data *d, const int *idx, int n, bool show_balanced) {
    fputs("<table><tr><th>#</th><th class=l>configuration</th><th>extra layers</th><th>size</th>", f);
    for (int p = 0; p < d->n_probes; p++) {
        fputs("<th>&Delta; ", f);
        esc(f, d->probe[p]);
        fputs("</th>", f);
    }
    if (d->n_probes > 1) fputs("<th>&Delta; combined</th>", f);
    if (show_balanced) fputs("<th>balanced z</th>", f);
    fputs("</tr>\n", f);
    for (int r = 0; r < n; r++) {
        const report_config *c = &d->cfg[idx[r]];
        fprintf(f, "<tr><td>%d</td><td class=l>", r + 1);
        esc(f, c->spec);
        fprintf(f, "</td><td>%d</td><td>%+.1f%%</td>", c->extra, 100.0 * c->extra / d->n_layers);
        for (int p = 0; p < d->n_probes; p++)
            fprintf(f, "<td class=%s>%+.4f</td>", c->delta[p] > 0 ? "pos" : c->delta[p] < 0 ? "neg" : "nil", c->delta[p]);
        if (d->n_probes > 1)
            fprintf(f, "<td class=%s>%+.4f</td>", c->combined > 0 ? "pos" : c->combined < 0 ? "neg" : "nil", c->combined);
        if (show_balanced) fprintf(f, "<td>%+.3f</td>", c->balanced);
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
}

static const char css[] =
    "body{font-family:'DejaVu Sans',Verdana,sans-serif;margin:24px auto;max-width:1660px;padding:0 16px;color:#222;line-height:1.45}"
    "nav{font-size:14px;margin:6px 0 14px}nav a{margin-right:14px}"
    ".tables{display:flex;flex-wrap:wrap;gap:0 28px}"
    "h1{font-size:26px;margin-bottom:4px}h2{font-size:20px;margin-top:36px;border-bottom:1px solid #ddd;padding-bottom:4px}"
    "h3{font-size:16px;margin:18px 0 6px}p.cap{color:#555;font-size:14px;max-width:920px}"
    "code{background:#f4f4f4;padding:1px 4px;border-radius:3px}"
    ".status{background:#f6f8fa;border:1px solid #dde;border-radius:6px;padding:10px 14px;font-size:14px;max-width:900px}"
    ".partial{background:#fff6e5;border-color:#e8c27a}"
    "table{border-collapse:collapse;margin:6px 0 18px;font-size:13px}"
    "td,th{border:1px solid #d6d6d6;padding:3px 9px;text-align:right;white-space:nowrap}th{background:#f3f3f3}"
    ".l{text-align:left}.pos{color:#a0101f}.neg{color:#1f4f8f}.nil{color:#777}"
    ".figs{display:flex;flex-wrap:wrap;gap:18px}figure{margin:0}figcaption{font-size:13px;color:#555;max-width:640px}"
    "img{max-width:100%;height:auto;border:1px solid #e4e4e4}";

static void status(FILE *f, const report_data *d) {
    int full = d->n_layers * (d->n_layers + 1) / 2, missing = report_blocks_missing(d);
    bool partial = d->n_unfinished > 0;
    fprintf(f, "<div class=\"status%s\"><b>%s.</b> %d configurations measured besides the baseline: %d of the %d single "
               "blocks (i, j)",
            partial ? " partial" : "", partial ? "Partial scan" : "Scan finished", d->n_cfg, d->n_blocks, full);
    if (d->n_repeats) fprintf(f, ", %d single-layer repeats", d->n_repeats);
    if (d->n_cfg - d->n_blocks - d->n_repeats) fprintf(f, ", %d other paths", d->n_cfg - d->n_blocks - d->n_repeats);
    fputs(".", f);
    if (partial) fprintf(f, " <b>%d configurations are still missing</b> (pending in the store; resume the scan).", d->n_unfinished);
    if (missing && d->n_blocks)
        fprintf(f, " %d single blocks have no result (grey cells), whether the sweep left them out or they are pending.", missing);
    fputs("</div>\n", f);
}

/* The headline: the best configuration by the balanced score, and the sections. */
static void summary(FILE *f, const report_data *d) {
    if (d->n_cfg) {
        int *idx = xmalloc((size_t)d->n_cfg * sizeof *idx);
        report_rank_balanced(d, idx);
        const report_config *c = &d->cfg[idx[0]];
        fputs("<p>Best by the balanced score: <b>", f);
        esc(f, c->spec);
        fprintf(f, "</b>, %d extra layers (%+.1f%%):", c->extra, 100.0 * c->extra / d->n_layers);
        for (int p = 0; p < d->n_probes; p++) {
            fputs(p ? ", &Delta; " : " &Delta; ", f);
            esc(f, d->probe[p]);
            fprintf(f, " %+.4f", c->delta[p]);
        }
        fputs(".</p>\n", f);
        free(idx);
    }
    fputs("<nav>", f);
    if (d->n_blocks) fputs("<a href=\"#heatmaps\">heatmaps</a><a href=\"#skylines\">skylines</a>", f);
    if (d->n_repeats) fputs("<a href=\"#repeats\">repeats</a>", f);
    fputs("<a href=\"#rankings\">rankings</a><a href=\"#pareto\">Pareto front</a><a href=\"#searches\">searches</a>", f);
    if (d->validation) fputs("<a href=\"#validation\">standard benchmarks</a>", f);
    fputs("</nav>\n", f);
}

/* The standard-benchmark section: per configuration a table of tasks and a
 * bar chart of the deltas with their intervals. */
static void validation_section(FILE *f, const report_data *d) {
    const report_validation *v = d->validation;
    char st[160];
    fputs("<h2 id=validation>Standard benchmarks</h2>\n<p class=cap>From <code>rys validate</code>: each task's primary metric "
          "(accuracy, in points) along the baseline and along each validated configuration, on the documents both answered. "
          "&Delta; is the configuration minus the baseline; the interval is a paired bootstrap 95% interval of &Delta; "
          "(2000 resamples of the documents, fixed seed); p is the exact two-sided McNemar test on the documents the two "
          "paths disagree on. The average row is the mean over tasks, as the leaderboards average.</p>\n", f);
    fputs("<table><tr><th class=l>task</th><th class=l>metric</th><th>n</th><th>baseline</th></tr>\n", f);
    for (int k = 0; k < v->baseline.n_rows; k++) {
        const report_val_row *r = &v->baseline.row[k];
        fputs("<tr><td class=l>", f);
        esc(f, r->task);
        fputs("</td><td class=l>", f);
        esc(f, r->metric);
        fprintf(f, "</td><td>%d</td><td>%.2f &plusmn; %.2f</td></tr>\n", r->n, 100 * r->value, 100 * r->stderr_);
    }
    fputs("</table>\n", f);
    for (int c = 0; c < v->n_cfg; c++) {
        const report_val_config *cfg = &v->cfg[c];
        fputs("<h3>", f);
        esc(f, cfg->spec);
        fputs("</h3>\n<table><tr><th class=l>task</th><th>n</th><th>baseline</th><th>configuration</th><th>&Delta;</th>"
              "<th>95% interval</th><th>McNemar p</th></tr>\n", f);
        for (int k = 0; k < cfg->n_rows; k++) {
            const report_val_row *r = &cfg->row[k];
            fputs("<tr><td class=l>", f);
            esc(f, r->task);
            fprintf(f, "</td><td>%d</td><td>%.2f</td><td>%.2f &plusmn; %.2f</td><td class=%s>%+.2f</td><td>[%+.2f, %+.2f]</td>",
                    r->n, 100 * r->base, 100 * r->value, 100 * r->stderr_, r->delta > 0 ? "pos" : r->delta < 0 ? "neg" : "nil",
                    100 * r->delta, 100 * r->ci_lo, 100 * r->ci_hi);
            if (r->p == r->p) fprintf(f, "<td>%.3g</td></tr>\n", r->p);
            else fputs("<td></td></tr>\n", f);
        }
        fputs("</table>\n", f);
        char cap[160];
        stem(st, sizeof st, "validation", cfg->spec);
        snprintf(cap, sizeof cap, "%s: deltas per task with 95%% intervals.", cfg->spec);
        figure(f, st, cap);
    }
}

/* A database holding only validation results: the page is that section. */
/* Every measured path by the search that proposed it, and the surrogate's holdout fit. */
static void searches_section(FILE *f, const report_data *d) {
    fputs("<h2 id=searches>Searches</h2>\n<p class=cap>Every measured path's combined delta against its extra layers, coloured by "
          "what proposed it: the sweep (<code>scan</code>), a paths file (<code>paths</code>), <code>rys beam</code> or "
          "<code>rys surrogate rank</code>. ", f);
    if (d->validation) {
        int *front = xmalloc(((size_t)d->n_cfg + 1) * sizeof *front);
        fprintf(f, "Ringed and joined by the black staircase: the Pareto front of the paths <code>rys validate</code> scored "
                   "(%d on it, the baseline included), over the same two axes.", report_validated_front(d, front));
        free(front);
    }
    fputs("</p>\n", f);
    figure(f, "searches", "Combined delta against extra layers, by search.");
    if (!d->surrogate) return;
    const report_sur_target *b = &d->surrogate->t[d->surrogate->n - 1];
    char rho[32];
    if (isnan(b->spearman)) snprintf(rho, sizeof rho, "undefined");
    else snprintf(rho, sizeof rho, "%.3f", b->spearman);
    fprintf(f, "<h3>Surrogate</h3>\n<p class=cap>From <code>rys surrogate train</code>: the gradient-boosted trees' predictions "
               "against the measured values on the %d holdout rows (trained on %d); the balanced score's Spearman %s %s the "
               "gate. Predictions only rank candidates; they are never results.</p>\n",
            b->n_holdout, b->n_train, rho, b->gate_passed ? "passed" : "failed");
    figure(f, "surrogate", "Surrogate holdout: predicted against measured, per target.");
}

/* The pre-screen's ranking against the measured one, and its top blocks. */
static void prescreen_section(FILE *f, const report_data *d) {
    const report_prescreen *p = d->prescreen;
    if (!p) return;
    fprintf(f, "<h2 id=prescreen>Pre-screen</h2>\n<p class=cap>From <code>rys prescreen</code> (CircuitProbe, arXiv 2604.00716, "
               "%s score over %d calibration prompts of the unmodified model): its rank of each measured single block against "
               "the block's rank by the balanced score. ", p->method, p->n_prompts);
    if (p->n >= 2 && !isnan(p->spearman)) fprintf(f, "Spearman %.3f over %d blocks. ", p->spearman, p->n);
    if (p->best_cfg >= 0) {
        const report_config *b = &d->cfg[p->best_cfg];
        fprintf(f, "Its top block (%d,%d) is %d layers from the best measured (%d,%d) at the start and %d at the end.",
                p->top_i, p->top_j, abs(p->top_i - b->i), b->i, b->j, abs(p->top_j - b->j));
    }
    fputs("</p>\n", f);
    if (p->n) figure(f, "prescreen", "Pre-screen rank against measured rank; red: its top block and the best measured.");
    /* the measured blocks it ranks highest */
    int *order = xmalloc((size_t)(p->n + 1) * sizeof *order);
    stat_order(p->score, p->n, true, order);
    fputs("<table><tr><th>pre-screen rank (of the measured)</th><th>block</th><th>measured rank</th><th>balanced</th></tr>\n", f);
    for (int r = 0; r < p->n && r < 10; r++) {
        const report_config *c = &d->cfg[p->cfg[order[r]]];
        fprintf(f, "<tr><td>%g</td><td>(%d,%d)</td><td>%g of %d</td><td>%+.3f</td></tr>\n", p->pre_rank[order[r]], c->i, c->j,
                p->measured_rank[order[r]], p->n, c->balanced);
    }
    free(order);
    fputs("</table>\n", f);
}

static int write_validation_index(const report_data *d, const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/index.html", dir);
    FILE *f = fopen(path, "w");
    if (!f) { rys_seterr("%s: %s", path, strerror(errno)); return -1; }
    fprintf(f, "<!doctype html>\n<html lang=en><head><meta charset=utf-8><title>rys report</title><style>%s</style></head><body>\n", css);
    fputs("<h1>rys report</h1>\n<p>Model <code>", f);
    esc(f, d->model);
    fprintf(f, "</code>, %d layers.</p>\n", d->n_layers);
    validation_section(f, d);
    fputs("</body></html>\n", f);
    int bad = ferror(f);
    if (fclose(f) || bad) { rys_seterr("%s: write failed", path); return -1; }
    return 0;
}

static int write_index(const report_data *d, const char *dir, int top_k) {
    if (!d->n_probes) return write_validation_index(d, dir);
    char path[4096], st[160];
    snprintf(path, sizeof path, "%s/index.html", dir);
    FILE *f = fopen(path, "w");
    if (!f) { rys_seterr("%s: %s", path, strerror(errno)); return -1; }
    int n_maps = d->n_probes > 1 ? d->n_probes + 1 : 1;
    fprintf(f, "<!doctype html>\n<html lang=en><head><meta charset=utf-8><title>rys scan report</title><style>%s</style></head><body>\n", css);
    fputs("<h1>rys scan report</h1>\n<p>Model <code>", f);
    esc(f, d->model);
    fprintf(f, "</code>, %d layers. Every number is a score delta: the configuration's score minus the baseline's "
               "(the unmodified layer path) on the same probe set.", d->n_layers);
    if (d->n_probes > 1) {
        if (d->math >= 0 && d->eq >= 0) {
            fputs(" <b>Combined</b> = &Delta; ", f);
            esc(f, d->probe[d->math]);
            fputs(" + &Delta; ", f);
            esc(f, d->probe[d->eq]);
            fputs(".", f);
        } else {
            fputs(" <b>Combined</b> = the sum of every probe set's &Delta;.", f);
        }
    }
    fputs("</p>\n", f);
    status(f, d);
    fputs("<table><tr><th class=l>probe set</th><th class=l>kind</th><th>baseline score</th></tr>\n", f);
    for (int p = 0; p < d->n_probes; p++) {
        fputs("<tr><td class=l>", f);
        esc(f, d->probe[p]);
        fputs("</td><td class=l>", f);
        esc(f, d->kind[p]);
        fprintf(f, "</td><td>%.4f</td></tr>\n", d->baseline[p]);
    }
    fputs("</table>\n", f);
    summary(f, d);

    if (d->n_blocks) {
        fputs("<h2 id=heatmaps>Heatmaps of single blocks</h2>\n<p class=cap>Cell (i, j) is the path 0..j-1 then i..N-1: layers i..j-1 "
              "run twice. Red is better than the baseline, blue worse, white unchanged; the colours are clipped "
              "symmetrically at the value printed on each map (the 98th percentile of |&Delta;| unless <code>--clip</code> "
              "was given). Grey cells have no result: i &ge; j, or not measured. The circle marks the best block.</p>\n"
              "<div class=figs>\n", f);
        for (int m = 0; m < n_maps; m++) {
            int p = m < d->n_probes ? m : REPORT_COMBINED;
            char cap[256];
            stem(st, sizeof st, "heatmap", name_of(d, p));
            snprintf(cap, sizeof cap, "%s: delta per block (i, j).", name_of(d, p));
            figure(f, st, cap);
        }
        fputs("</div>\n<h2 id=skylines>Skylines</h2>\n<p class=cap>The heatmap averaged along rows (each start layer i, over the "
              "measured blocks starting there) and along columns (each end layer j): which part of the stack gains from "
              "being run twice.</p>\n<div class=figs>\n", f);
        for (int m = 0; m < n_maps; m++) {
            int p = m < d->n_probes ? m : REPORT_COMBINED;
            char cap[256];
            stem(st, sizeof st, "skyline", name_of(d, p));
            snprintf(cap, sizeof cap, "%s: mean delta by start and by end layer.", name_of(d, p));
            figure(f, st, cap);
        }
        fputs("</div>\n", f);
    }
    if (d->n_repeats) {
        fputs("<h2 id=repeats>Single-layer repeats</h2>\n<p class=cap>Configuration <code>repeat:L,r</code> runs layer L r times in a "
              "row (r - 1 extra layers). Same colours, clip and circle as the heatmaps.</p>\n<div class=figs>\n", f);
        for (int m = 0; m < n_maps; m++) {
            int p = m < d->n_probes ? m : REPORT_COMBINED;
            char cap[256];
            stem(st, sizeof st, "repeat", name_of(d, p));
            snprintf(cap, sizeof cap, "%s: delta per layer and repeat count.", name_of(d, p));
            figure(f, st, cap);
        }
        fputs("</div>\n", f);
    }

    int *idx = xmalloc(((size_t)d->n_cfg + 1) * sizeof *idx);
    int k = top_k < d->n_cfg ? top_k : d->n_cfg;
    fprintf(f, "<h2 id=rankings>Rankings</h2>\n<p class=cap>Top %d of %d configurations. <b>Balanced</b> (the RYS reference's ranking): ", k, d->n_cfg);
    if (d->math >= 0 && d->eq >= 0) fputs("z(&Delta; math) + z(&Delta; EQ)", f);
    else fputs("the sum of z(&Delta;) over the probe sets", f);
    fputs(", each z over all measured configurations with the population standard deviation; ties go to the higher EQ "
          "delta, then math. Size is the extra layers as a share of the model's layers.</p>\n<h3>balanced</h3>\n", f);
    report_rank_balanced(d, idx);
    table(f, d, idx, k, true);
    fputs("<div class=tables>\n", f);
    for (int m = 0; m < n_maps; m++) {
        int p = m < d->n_probes ? m : REPORT_COMBINED;
        report_rank_by(d, p, idx);
        fputs("<div><h3>by &Delta; ", f);
        esc(f, name_of(d, p));
        fputs("</h3>\n", f);
        table(f, d, idx, k, false);
        fputs("</div>\n", f);
    }
    fputs("</div>\n", f);
    int n_front = report_pareto(d, idx);
    fprintf(f, "<h2 id=pareto>Pareto front</h2>\n<p class=cap>Combined delta against extra layers (the cost in compute and KV cache). "
               "A configuration is on the front (red, %d of %d) when no other has at least its combined delta with no more "
               "extra layers, one of the two strictly.</p>\n",
            n_front, d->n_cfg);
    figure(f, "pareto", "Pareto front.");
    table(f, d, idx, n_front, false);
    free(idx);
    searches_section(f, d);
    prescreen_section(f, d);
    if (d->validation) validation_section(f, d);
    fputs("</body></html>\n", f);
    int bad = ferror(f);
    if (fclose(f) || bad) { rys_seterr("%s: write failed", path); return -1; }
    return 0;
}

int report_write(const report_data *d, const char *dir, double clip, int top_k) {
    if (mkdir(dir, 0755) && errno != EEXIST) { rys_seterr("%s: cannot create: %s", dir, strerror(errno)); return -1; }
    int n_maps = d->n_probes > 1 ? d->n_probes + 1 : 1;
    char st[160];
    for (int c = 0; d->validation && c < d->validation->n_cfg; c++) {
        stem(st, sizeof st, "validation", d->validation->cfg[c].spec);
        if (report_plot_validation(d->validation, c, dir, st)) return -1;
    }
    if (!d->n_probes) return write_index(d, dir, top_k);
    for (int m = 0; m < n_maps; m++) {
        int p = m < d->n_probes ? m : REPORT_COMBINED;
        if (d->n_blocks) {
            stem(st, sizeof st, "heatmap", name_of(d, p));
            if (report_plot_heatmap(d, p, clip, dir, st)) return -1;
            stem(st, sizeof st, "skyline", name_of(d, p));
            if (report_plot_skyline(d, p, dir, st)) return -1;
        }
        if (d->n_repeats) {
            stem(st, sizeof st, "repeat", name_of(d, p));
            if (report_plot_repeats(d, p, clip, dir, st)) return -1;
        }
    }
    if (report_plot_pareto(d, dir, "pareto")) return -1;
    if (report_plot_search(d, dir, "searches")) return -1;
    if (d->surrogate && report_plot_surrogate(d, dir, "surrogate")) return -1;
    if (d->prescreen && d->prescreen->n && report_plot_prescreen(d, dir, "prescreen")) return -1;
    return write_index(d, dir, top_k);
}
