/* The report on a synthetic partial scan of a 6-layer model with known
 * deltas: rankings, Pareto front, clip and counts against values worked out
 * by hand below, and the pictures read back pixel by pixel at cells whose
 * colour is known. */
#include "testutil.h"

#include "report/report.h"
#include "scan/store.h"
#include "base/util.h"

#include <cairo.h>
#include <sys/stat.h>
#include <math.h>
#include <string.h>

static const char *db_path, *out_dir;

/* fontconfig (under cairo's text) keeps its parsed configuration and font
 * patterns for the life of the process; LeakSanitizer reads this hook */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) { return "leak:libfontconfig.so\n"; }

/* Deltas in units of U = 1/16 (exact in binary, so ties are exact ties).
 * Baselines: math 0.5, eq 0.5. Measured (math, eq, extra layers):
 *   blocks:0,1 (+2, 0) 1    blocks:1,3 (0, +2) 2    blocks:2,4 (-2, -4) 2
 *   blocks:0,4 (+6, +4) 4   blocks:3,6 (+4, +6) 3   blocks:4,5 (-4, -2) 1
 *   repeat:2,2 (+1, -1) 1   repeat:2,3 (-1, +1) 2
 * blocks:1,2 is pending, repeat:3,2 running; the other 14 blocks never added.
 *
 * The math and EQ deltas are the same multiset {-4,-2,-1,0,1,2,4,6}: mean
 * 0.75 U, population variance 73.5/8 = 9.1875 U^2, so both z use the same
 * mean and std and balanced = (math + eq - 1.5 U) / (sqrt(9.1875) U):
 *   (0,4), (3,6): 8.5/3.0311   (0,1), (1,3): 0.5/3.0311
 *   r(2,2), r(2,3): -1.5/3.0311   (2,4), (4,5): -7.5/3.0311
 * Ties go to the higher EQ delta: (3,6) (0,4) (1,3) (0,1) r(2,3) r(2,2) (4,5) (2,4).
 * Combined = math + eq: (0,4) and (3,6) 10 U, (0,1) and (1,3) 2 U, repeats 0,
 * (2,4) and (4,5) -6 U. Pareto front by (extra, combined): (0,1) at (1, 2U)
 * and (3,6) at (3, 10U); (1,3) ties (0,1) with more layers, (0,4) ties
 * (3,6) with more. */
#define U (1.0 / 16)

static const char *const balanced_order[8] = {"blocks:3,6", "blocks:0,4", "blocks:1,3", "blocks:0,1",
                                              "repeat:2,3", "repeat:2,2", "blocks:4,5", "blocks:2,4"};

static void make_db(const char *path, bool score_baseline) {
    unlink(path);
    store *st = store_open(path);
    assert_non_null(st);
    store_probe pr[2] = {{"math_t", "/m.json", "aa", "math", 1}, {"eq_t", "/e.json", "bb", "eq", 1}};
    store_identity id = {"/tiny.gguf", "cafe", "llama", 6, pr, 2, "{}"};
    assert_int_equal(store_set_identity(st, &id), 0);
    struct { const char *spec, *path; int i, j, extra; double math, eq; bool done; } c[] = {
        {"baseline", "layers:0,1,2,3,4,5", -1, -1, 0, 0, 0, score_baseline},
        {"blocks:0,1", "layers:0,0,1,2,3,4,5", 0, 1, 1, 2, 0, true},
        {"blocks:1,3", "layers:0,1,2,1,2,3,4,5", 1, 3, 2, 0, 2, true},
        {"blocks:2,4", "layers:0,1,2,3,2,3,4,5", 2, 4, 2, -2, -4, true},
        {"blocks:0,4", "layers:0,1,2,3,0,1,2,3,4,5", 0, 4, 4, 6, 4, true},
        {"blocks:3,6", "layers:0,1,2,3,4,5,3,4,5", 3, 6, 3, 4, 6, true},
        {"blocks:4,5", "layers:0,1,2,3,4,4,5", 4, 5, 1, -4, -2, true},
        {"repeat:2,2", "layers:0,1,2,2,3,4,5", -1, -1, 1, 1, -1, true},
        {"repeat:2,3", "layers:0,1,2,2,2,3,4,5", -1, -1, 2, -1, 1, true},
        {"blocks:1,2", "layers:0,1,1,2,3,4,5", 1, 2, 1, 0, 0, false},
        {"repeat:3,2", "layers:0,1,2,3,3,4,5", -1, -1, 1, 0, 0, false},
    };
    int n = (int)(sizeof c / sizeof c[0]);
    for (int k = 0; k < n; k++) {
        store_config sc = {c[k].spec, c[k].path, c[k].i, c[k].j, c[k].extra, k, NULL};
        assert_int_equal(store_add_configs(st, &sc, 1), 0);
        if (!c[k].done) continue;
        const char *names[2] = {"math_t", "eq_t"};
        double scores[2] = {0.5 + c[k].math * U, 0.5 + c[k].eq * U};
        store_result r = {c[k].path, 1, 1, 1, 1, 1, names, scores, 2, NULL, 0};
        assert_int_equal(store_save_result(st, &r), 0);
    }
    assert_int_equal(store_mark_running(st, "layers:0,1,2,3,3,4,5"), 0);
    store_close(st);
}

static int setup(void **state) {
    (void)state;
    db_path = test_tmp_path("report.sqlite");
    out_dir = test_tmp_path("report-out");
    make_db(db_path, true);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    test_remove_db(db_path);
    test_remove_dir(out_dir);
    return 0;
}

static int find(const report_data *d, const char *spec) {
    for (int k = 0; k < d->n_cfg; k++) if (!strcmp(d->cfg[k].spec, spec)) return k;
    fail_msg("no %s", spec);
    return -1;
}

static void test_numbers(void **state) {
    (void)state;
    report_data *d = report_load(db_path);
    assert_non_null(d);
    assert_int_equal(d->n_layers, 6);
    assert_int_equal(d->n_cfg, 8);
    assert_int_equal(d->n_blocks, 6);
    assert_int_equal(d->n_repeats, 2);
    assert_int_equal(d->n_unfinished, 2);
    assert_int_equal(report_blocks_missing(d), 21 - 6);
    assert_float_equal(d->baseline[0], 0.5, 1e-12);
    assert_float_equal(d->baseline[1], 0.5, 1e-12);
    const report_config *c = &d->cfg[find(d, "repeat:2,3")];
    assert_int_equal(c->repeat_layer, 2);
    assert_int_equal(c->repeat_n, 3);
    assert_int_equal(c->i, -1);
    assert_float_equal(d->cfg[find(d, "blocks:0,4")].combined, 10 * U, 1e-12);
    assert_float_equal(d->cfg[find(d, "blocks:2,4")].combined, -6 * U, 1e-12);

    int idx[8];
    report_rank_balanced(d, idx);
    double sd = sqrt(9.1875);
    for (int r = 0; r < 8; r++) assert_string_equal(d->cfg[idx[r]].spec, balanced_order[r]);
    assert_float_equal(d->cfg[idx[0]].balanced, 8.5 / sd, 1e-9);
    assert_float_equal(d->cfg[idx[2]].balanced, 0.5 / sd, 1e-9);
    assert_float_equal(d->cfg[idx[7]].balanced, -7.5 / sd, 1e-9);

    report_rank_by(d, 0, idx);   /* math: 6, 4, 2, 1, 0, -1, -2, -4 */
    static const char *const by_math[8] = {"blocks:0,4", "blocks:3,6", "blocks:0,1", "repeat:2,2",
                                           "blocks:1,3", "repeat:2,3", "blocks:2,4", "blocks:4,5"};
    for (int r = 0; r < 8; r++) assert_string_equal(d->cfg[idx[r]].spec, by_math[r]);
    report_rank_by(d, REPORT_COMBINED, idx);   /* same ties as balanced */
    for (int r = 0; r < 8; r++) assert_string_equal(d->cfg[idx[r]].spec, balanced_order[r]);

    int front[8];
    assert_int_equal(report_pareto(d, front), 2);
    assert_string_equal(d->cfg[front[0]].spec, "blocks:0,1");
    assert_string_equal(d->cfg[front[1]].spec, "blocks:3,6");

    /* |combined| over blocks 2,2,6,6,10,10 U: position 0.98*5 = 4.9 lies between 10 and 10 */
    assert_float_equal(report_clip(d, REPORT_COMBINED, REPORT_BLOCKS), 10 * U, 1e-12);
    /* |math| over blocks 0,2,2,4,4,6 U: 4 + 0.9*(6-4) */
    assert_float_equal(report_clip(d, 0, REPORT_BLOCKS), 5.8 * U, 1e-12);
    assert_float_equal(report_clip(d, 0, REPORT_REPEATS), 1 * U, 1e-12);
    assert_string_equal(d->cfg[report_best(d, REPORT_COMBINED, REPORT_BLOCKS)].spec, "blocks:3,6");
    assert_string_equal(d->cfg[report_best(d, 0, REPORT_REPEATS)].spec, "repeat:2,2");
    report_free(d);
}

/* combined and balanced use only the first math and first EQ set when a scan has more */
static void test_combined_definition(void **state) {
    (void)state;
    report_config cfg[2] = {{.delta = {1, 2, 100}}, {.delta = {3, 6, -100}}};
    report_data d = {.n_probes = 3, .kind = {"math", "eq_logit", "math"}, .math = 0, .eq = 1, .cfg = cfg, .n_cfg = 2};
    report_derive(&d);
    assert_float_equal(cfg[0].combined, 3, 1e-12);
    assert_float_equal(cfg[1].combined, 9, 1e-12);
    /* math: mean 2, std 1; eq: mean 4, std 2 */
    assert_float_equal(cfg[0].balanced, -1 + -1, 1e-12);
    assert_float_equal(cfg[1].balanced, 1 + 1, 1e-12);
    d.math = d.eq = -1;   /* without the pair: every probe */
    report_derive(&d);
    assert_float_equal(cfg[0].combined, 103, 1e-12);
}

static cairo_surface_t *png(const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", out_dir, name);
    cairo_surface_t *s = cairo_image_surface_create_from_png(path);
    assert_int_equal(cairo_surface_status(s), CAIRO_STATUS_SUCCESS);
    return s;
}

static void pixel(cairo_surface_t *s, double x, double y, double rgb[3]) {
    cairo_surface_flush(s);
    unsigned char *data = cairo_image_surface_get_data(s);
    int stride = cairo_image_surface_get_stride(s);
    assert_true(x >= 0 && y >= 0 && x < cairo_image_surface_get_width(s) && y < cairo_image_surface_get_height(s));
    uint32_t p = *(uint32_t *)(data + (int)y * stride + 4 * (int)x);
    rgb[0] = ((p >> 16) & 255) / 255.0;
    rgb[1] = ((p >> 8) & 255) / 255.0;
    rgb[2] = (p & 255) / 255.0;
}

static void assert_mask(const double rgb[3]) {
    for (int c = 0; c < 3; c++) assert_float_equal(rgb[c], report_mask_rgb[c], 0.01);
}

static void assert_file(const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", out_dir, name);
    assert_int_equal(access(path, R_OK), 0);
}

static void test_heatmap(void **state) {
    (void)state;
    report_data *d = report_load(db_path);
    assert_int_equal(report_write(d, out_dir, 0, 10), 0);
    report_free(d);
    static const char *const files[] = {"heatmap_math_t.svg", "heatmap_eq_t.png", "heatmap_combined.svg", "skyline_math_t.png",
                                        "skyline_combined.svg", "repeat_combined.png", "repeat_eq_t.svg", "pareto.png",
                                        "pareto.svg", "index.html"};
    for (size_t k = 0; k < sizeof files / sizeof files[0]; k++) assert_file(files[k]);

    cairo_surface_t *s = png("heatmap_combined.png");
    report_grid g = report_heat_layout(6);
    assert_int_equal(cairo_image_surface_get_width(s), g.width);
    assert_int_equal(cairo_image_surface_get_height(s), g.height);
    assert_int_equal(g.rows, 6);
    assert_int_equal(g.cols, 6);
    assert_true(g.x0 + 6 * g.cell < g.width && g.y0 + 6 * g.cell < g.height && g.cell >= 20);
    double x, y, rgb[3];
    report_heat_cell_centre(&g, 0, 4, &x, &y);     /* +10 U = +clip: the red end */
    pixel(s, x, y, rgb);
    assert_true(rgb[0] > 0.6 && rgb[1] < 0.2 && rgb[2] < 0.25);
    report_heat_cell_centre(&g, 1, 3, &x, &y);     /* +2 U: pale red */
    pixel(s, x, y, rgb);
    assert_true(rgb[0] > rgb[2] + 0.05 && rgb[1] > 0.6);
    report_heat_cell_centre(&g, 2, 4, &x, &y);     /* -6 U = -0.6 clip: blue */
    pixel(s, x, y, rgb);
    assert_true(rgb[2] > rgb[0] + 0.25);
    report_heat_cell_centre(&g, 1, 2, &x, &y);     /* pending */
    pixel(s, x, y, rgb);
    assert_mask(rgb);
    report_heat_cell_centre(&g, 2, 3, &x, &y);     /* never in the sweep */
    pixel(s, x, y, rgb);
    assert_mask(rgb);
    report_heat_cell_centre(&g, 3, 2, &x, &y);     /* below the diagonal */
    pixel(s, x, y, rgb);
    assert_mask(rgb);
    report_heat_cell_centre(&g, 4, 4, &x, &y);     /* on it (i = j) */
    pixel(s, x, y, rgb);
    assert_mask(rgb);
    /* the best, (3,6) (it ties (0,4) on combined and wins on EQ), is circled in
     * black: the ring crosses the row through the centre at radius cell/2 + 3 */
    report_heat_cell_centre(&g, 3, 6, &x, &y);
    pixel(s, x + g.cell / 2 + 3, y, rgb);
    assert_true(rgb[0] < 0.2 && rgb[1] < 0.2 && rgb[2] < 0.2);
    pixel(s, x, y, rgb);                           /* its centre keeps its colour */
    assert_true(rgb[0] > 0.6 && rgb[1] < 0.2);
    report_heat_cell_centre(&g, 0, 4, &x, &y);     /* (0,4) is not circled: mask right of it */
    pixel(s, x + g.cell / 2 + 3, y, rgb);
    assert_mask(rgb);
    cairo_surface_destroy(s);

    s = png("heatmap_math_t.png");                 /* math clip 5.8 U: (0,4) at +6 U is full red, (4,5) -4 U blue */
    report_heat_cell_centre(&g, 0, 4, &x, &y);
    pixel(s, x + g.cell / 2 + 3, y, rgb);          /* and (0,4) is the circled one here */
    assert_true(rgb[0] < 0.2 && rgb[1] < 0.2 && rgb[2] < 0.2);
    report_heat_cell_centre(&g, 4, 5, &x, &y);
    pixel(s, x, y, rgb);
    assert_true(rgb[2] > rgb[0] + 0.3);
    cairo_surface_destroy(s);
}

static void test_repeat_map(void **state) {
    (void)state;
    cairo_surface_t *s = png("repeat_math_t.png"); /* clip 1 U: +1 U full red, -1 U full blue */
    report_grid g = report_repeat_layout(6, 3);
    assert_int_equal(cairo_image_surface_get_width(s), g.width);
    assert_int_equal(cairo_image_surface_get_height(s), g.height);
    assert_int_equal(g.rows, 2);
    double x, y, rgb[3];
    report_repeat_cell_centre(&g, 2, 2, &x, &y);
    pixel(s, x, y, rgb);
    assert_true(rgb[0] > 0.6 && rgb[1] < 0.2 && rgb[2] < 0.25);
    pixel(s, x + g.cell / 2 + 3, y, rgb);          /* the best repeat, circled */
    assert_true(rgb[0] < 0.2 && rgb[1] < 0.2 && rgb[2] < 0.2);
    report_repeat_cell_centre(&g, 2, 3, &x, &y);
    pixel(s, x, y, rgb);
    assert_true(rgb[2] > 0.6 && rgb[0] < 0.2);
    report_repeat_cell_centre(&g, 3, 2, &x, &y);   /* running, not done */
    pixel(s, x, y, rgb);
    assert_mask(rgb);
    report_repeat_cell_centre(&g, 0, 3, &x, &y);
    pixel(s, x, y, rgb);
    assert_mask(rgb);
    cairo_surface_destroy(s);
}

static void test_index(void **state) {
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/index.html", out_dir);
    size_t len;
    char *html = read_file(path, &len);
    assert_non_null(html);
    assert_non_null(strstr(html, "Partial scan"));
    assert_non_null(strstr(html, "2 configurations are still missing"));
    assert_non_null(strstr(html, "6 of the 21 single blocks"));
    assert_non_null(strstr(html, "15 single blocks have no result"));
    assert_non_null(strstr(html, "src=\"heatmap_combined.png\""));
    assert_non_null(strstr(html, "href=\"repeat_eq_t.svg\""));
    assert_non_null(strstr(html, "src=\"pareto.png\""));
    /* offline: nothing fetched from elsewhere */
    assert_null(strstr(html, "http:"));
    assert_null(strstr(html, "https:"));
    assert_null(strstr(html, "<script"));
    /* the balanced table lists the hand-ranked order */
    const char *at = strstr(html, "<h3>balanced</h3>");
    assert_non_null(at);
    for (int r = 0; r < 8; r++) {
        const char *next = strstr(at, balanced_order[r]);
        assert_non_null(next);
        at = next;
    }
    free(html);
}

static void test_refusals(void **state) {
    (void)state;
    const char *p = test_tmp_path("empty.sqlite");
    unlink(p);
    store_close(store_open(p));   /* schema but no scan */
    assert_null(report_load(p));
    assert_non_null(strstr(rys_lasterr(), "not a rys scan"));
    make_db(p, false);
    assert_null(report_load(p));
    assert_non_null(strstr(rys_lasterr(), "baseline is not scored"));
    test_remove_db(p);
}

/* The search views on hand-made data: 4 paths of 4 searches, 3 of them validated.
 *   (extra, combined, search, validated): A (1, +0.10, scan, yes)  B (2, +0.30, beam, yes)
 *   C (3, +0.20, surrogate, yes)  D (2, +0.50, paths, no)
 * The validated front over (extra, combined) with the baseline (0, 0): baseline, A, B; C is beaten by B
 * (fewer layers, more gain) and D is not validated. */
static void test_search_views(void **state) {
    (void)state;
    report_config cfg[4] = {0};
    const char *spec[4] = {"blocks:0,1", "blocks:1,3", "layers:0-5,2-4", "blocks:0,2"};
    const char *search[4] = {"scan", "beam", "surrogate", "paths"};
    int extra[4] = {1, 2, 3, 2};
    double comb[4] = {0.10, 0.30, 0.20, 0.50};
    for (int k = 0; k < 4; k++) {
        cfg[k].spec = (char *)spec[k];
        cfg[k].search = (char *)search[k];
        cfg[k].extra = extra[k];
        cfg[k].combined = comb[k];
    }
    report_val_config vc[3] = {0};
    for (int k = 0; k < 3; k++) snprintf(vc[k].spec, sizeof vc[k].spec, "%s", spec[k]);
    report_validation v = {.n_layers = 6, .cfg = vc, .n_cfg = 3};
    report_data d = {.n_layers = 6, .cfg = cfg, .n_cfg = 4, .validation = &v};
    int front[5];
    assert_int_equal(report_validated_front(&d, front), 3);
    assert_int_equal(front[0], -1);
    assert_int_equal(front[1], 0);
    assert_int_equal(front[2], 1);
    const char *dir = test_tmp_path("report-search");
    mkdir(dir, 0755);
    assert_int_equal(report_plot_search(&d, dir, "searches"), 0);
    char path[512];
    snprintf(path, sizeof path, "%s/searches.png", dir);
    cairo_surface_t *s = cairo_image_surface_create_from_png(path);
    assert_int_equal(cairo_surface_status(s), CAIRO_STATUS_SUCCESS);
    report_scatter g = report_search_layout(&d);
    /* x: extra -0.5..3.5; y: the gains 0..0.5 and a step of 0.1 beyond each end, as the Pareto figure pads */
    assert_float_equal(g.xlo, -0.5, 1e-12);
    assert_float_equal(g.xhi, 3.5, 1e-12);
    assert_float_equal(g.ylo, -0.1, 1e-9);
    assert_float_equal(g.yhi, 0.6, 1e-9);
    double x, y, rgb[3], want[3];
    /* each point's centre has its search's colour: D (paths) is not validated, C (surrogate) is off the front */
    for (int k = 0; k < 4; k++) {
        report_scatter_xy(&g, extra[k], comb[k], &x, &y);
        pixel(s, x, y, rgb);
        report_search_rgb(search[k], want);
        for (int c = 0; c < 3; c++) assert_float_equal(rgb[c], want[c], 0.02);
    }
    /* the rings of the front: black 8 px right of A and B, none right of C */
    report_scatter_xy(&g, 1, 0.10, &x, &y);
    pixel(s, x + 8, y, rgb);
    for (int c = 0; c < 3; c++) assert_true(rgb[c] < 0.2);
    report_scatter_xy(&g, 3, 0.20, &x, &y);
    pixel(s, x + 8, y, rgb);
    for (int c = 0; c < 3; c++) assert_true(rgb[c] > 0.8);
    /* the staircase's riser at extra 2, halfway between A's and B's gain */
    report_scatter_xy(&g, 2, 0.20, &x, &y);
    pixel(s, x, y, rgb);
    for (int c = 0; c < 3; c++) assert_true(rgb[c] < 0.3);
    cairo_surface_destroy(s);
    /* colours: the four searches differ from each other and from any other */
    double other[3];
    report_search_rgb("genetic", other);
    for (int k = 0; k < 4; k++) {
        report_search_rgb(search[k], want);
        assert_true(fabs(want[0] - other[0]) + fabs(want[1] - other[1]) + fabs(want[2] - other[2]) > 0.2);
    }
    test_remove_dir(dir);
}

/* Through the store: the search marks and the surrogate's holdout fit reach the report. */
static void test_search_store(void **state) {
    (void)state;
    const char *p = test_tmp_path("search.sqlite");
    make_db(p, true);
    store *st = store_open(p);
    assert_non_null(st);
    store_config sc = {"counts:1,1,3,1,1,1", "layers:0,1,2,2,2,3,4,5", -1, -1, 2, 20, "surrogate"};
    /* the same path as repeat:2,3: it keeps its first mark (scan) */
    assert_int_equal(store_add_configs(st, &sc, 1), 0);
    store_config sb = {"blocks:0,2", "layers:0,1,0,1,2,3,4,5", 0, 2, 2, 21, "beam"};
    assert_int_equal(store_add_configs(st, &sb, 1), 0);
    const char *names[2] = {"math_t", "eq_t"};
    double scores[2] = {0.5 + 3 * U, 0.5 + 1 * U};
    store_result r = {"layers:0,1,0,1,2,3,4,5", 1, 1, 1, 1, 1, names, scores, 2, NULL, 0};
    assert_int_equal(store_save_result(st, &r), 0);
    /* a holdout of three rows per target */
    const char *hp[3] = {"layers:0,0,1,2,3,4,5", "layers:0,1,2,1,2,3,4,5", "layers:0,1,2,3,2,3,4,5"};
    double meas[3] = {-1.0, 0.5, 2.0}, pred[3] = {-0.5, 0.4, 1.5};
    store_surrogate_target t[3] = {
        {"math_delta", 0.5, 0.1, 17, 3, true, hp, meas, pred},
        {"eq_delta", 1.0, 0.2, 17, 3, true, hp, meas, pred},
        {"balanced", 1.0, 0.3, 17, 3, true, hp, meas, pred},
    };
    assert_int_equal(store_save_surrogate(st, t, 3), 0);
    store_close(st);
    report_data *d = report_load(p);
    assert_non_null(d);
    assert_string_equal(d->cfg[find(d, "blocks:0,2")].search, "beam");
    assert_string_equal(d->cfg[find(d, "repeat:2,3")].search, "scan");
    assert_non_null(d->surrogate);
    assert_int_equal(d->surrogate->n, 3);
    assert_string_equal(d->surrogate->t[2].target, "balanced");
    assert_int_equal(d->surrogate->t[2].n_train, 17);
    assert_float_equal(d->surrogate->t[1].predicted[2], 1.5, 1e-12);
    const char *dir = test_tmp_path("report-search-out");
    assert_int_equal(report_write(d, dir, 0, 10), 0);
    char path[512];
    snprintf(path, sizeof path, "%s/index.html", dir);
    size_t len;
    char *html = read_file(path, &len);
    assert_non_null(html);
    assert_non_null(strstr(html, "src=\"searches.png\""));
    assert_non_null(strstr(html, "src=\"surrogate.png\""));
    free(html);
    /* the surrogate figure: each holdout point where its (measured, predicted) says, in the points' blue; the
     * diagonal's grey at a spot no point covers */
    snprintf(path, sizeof path, "%s/surrogate.png", dir);
    cairo_surface_t *s = cairo_image_surface_create_from_png(path);
    assert_int_equal(cairo_surface_status(s), CAIRO_STATUS_SUCCESS);
    double x, y, rgb[3];
    for (int k = 0; k < 3; k++) {
        report_scatter g = report_surrogate_layout(d->surrogate, k);
        /* range: -1..2 padded by 6% each side */
        assert_float_equal(g.xlo, -1 - 0.18, 1e-9);
        assert_float_equal(g.yhi, 2 + 0.18, 1e-9);
        for (int q = 0; q < 3; q++) {
            report_scatter_xy(&g, meas[q], pred[q], &x, &y);
            pixel(s, x, y, rgb);
            assert_float_equal(rgb[0], 0.12, 0.02);
            assert_float_equal(rgb[1], 0.30, 0.02);
            assert_float_equal(rgb[2], 0.62, 0.02);
        }
        report_scatter_xy(&g, 1.0, 1.0, &x, &y);
        pixel(s, x, y, rgb);
        assert_float_equal(rgb[0], rgb[2], 0.02);
        assert_true(rgb[0] > 0.5 && rgb[0] < 0.85);
    }
    cairo_surface_destroy(s);
    /* a store without a fit: no surrogate figure */
    report_free(d);
    test_remove_dir(dir);
    make_db(p, true);
    d = report_load(p);
    assert_null(d->surrogate);
    report_free(d);
    test_remove_db(p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numbers), cmocka_unit_test(test_combined_definition), cmocka_unit_test(test_heatmap),
        cmocka_unit_test(test_repeat_map), cmocka_unit_test(test_index), cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_search_views), cmocka_unit_test(test_search_store),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
