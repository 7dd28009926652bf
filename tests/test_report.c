/* The report on a synthetic scan with known deltas: rankings, Pareto front
 * and clip checked against values computed by hand, and the pictures checked
 * pixel by pixel at cells whose colour is known. */
#include "testutil.h"

#include "report.h"
#include "store.h"
#include "util.h"

#include <cairo.h>
#include <math.h>
#include <string.h>

static const char *db_path, *out_dir;

/* N = 4; baseline math 0.5, eq 0.5; deltas (math, eq):
 *   (0,1): +0.1, 0     (1,3): -0.1, +0.2    (2,4): 0, -0.1    (0,4): +0.3, +0.1
 * and (1,2) added but never scored (pending). */
static int setup(void **state) {
    (void)state;
    db_path = test_tmp_path("report.sqlite");
    out_dir = test_tmp_path("report-out");
    unlink(db_path);
    store *st = store_open(db_path);
    assert_non_null(st);
    store_probe pr[2] = {{"math_x", "/m.json", "aa", "math", 1}, {"eq_x", "/e.json", "bb", "eq", 1}};
    store_identity id = {"/tiny.gguf", "cafe", "llama", 4, pr, 2, "{}"};
    assert_int_equal(store_set_identity(st, &id), 0);
    struct { const char *spec, *path; int i, j, extra; double math, eq; } c[] = {
        {"baseline", "layers:0,1,2,3", -1, -1, 0, 0.5, 0.5},
        {"blocks:0,1", "layers:0,0,1,2,3", 0, 1, 1, 0.6, 0.5},
        {"blocks:1,3", "layers:0,1,2,1,2,3", 1, 3, 2, 0.4, 0.7},
        {"blocks:2,4", "layers:0,1,2,3,2,3", 2, 4, 2, 0.5, 0.4},
        {"blocks:0,4", "layers:0,1,2,3,0,1,2,3", 0, 4, 4, 0.8, 0.6},
        {"blocks:1,2", "layers:0,1,1,2,3", 1, 2, 1, 0, 0},
    };
    for (int k = 0; k < 6; k++) {
        store_config sc = {c[k].spec, c[k].path, c[k].i, c[k].j, c[k].extra, k};
        assert_int_equal(store_add_configs(st, &sc, 1), 0);
        if (k == 5) break;
        const char *names[2] = {"math_x", "eq_x"};
        double scores[2] = {c[k].math, c[k].eq};
        store_result r = {c[k].path, 1, 1, 1, 1, 1, names, scores, 2, NULL, 0};
        assert_int_equal(store_save_result(st, &r), 0);
    }
    store_close(st);
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
    assert_int_equal(d->n_cfg, 4);
    assert_int_equal(d->n_pending, 1);
    assert_float_equal(d->baseline[0], 0.5, 1e-12);
    assert_float_equal(d->cfg[find(d, "blocks:0,4")].combined, 0.4, 1e-12);
    int idx[4];
    report_rank_balanced(d, idx);
    /* by hand: math deltas mean .075, population std .1479020; eq mean .05, std .1118034 */
    assert_string_equal(d->cfg[idx[0]].spec, "blocks:0,4");
    assert_string_equal(d->cfg[idx[1]].spec, "blocks:1,3");
    assert_string_equal(d->cfg[idx[2]].spec, "blocks:0,1");
    assert_string_equal(d->cfg[idx[3]].spec, "blocks:2,4");
    assert_float_equal(d->cfg[idx[0]].balanced, 0.225 / 0.14790199 + 0.05 / 0.11180340, 1e-6);
    assert_float_equal(d->cfg[idx[3]].balanced, -0.075 / 0.14790199 - 0.15 / 0.11180340, 1e-6);
    report_rank_probe(d, 1, idx);
    assert_string_equal(d->cfg[idx[0]].spec, "blocks:1,3");
    int front[4];
    int nf = report_pareto(d, front);
    assert_int_equal(nf, 2);   /* (0,1) and (0,4); (1,3) ties (0,1) but costs more */
    assert_string_equal(d->cfg[front[0]].spec, "blocks:0,1");
    assert_string_equal(d->cfg[front[1]].spec, "blocks:0,4");
    assert_float_equal(report_clip(d, -1), 0.1, 1e-12);   /* 98th percentile of |combined| */
    report_free(d);
}

static void pixel(cairo_surface_t *s, double x, double y, double rgb[3]) {
    unsigned char *data = cairo_image_surface_get_data(s);
    int stride = cairo_image_surface_get_stride(s);
    uint32_t p = *(uint32_t *)(data + (int)y * stride + 4 * (int)x);
    rgb[0] = ((p >> 16) & 255) / 255.0;
    rgb[1] = ((p >> 8) & 255) / 255.0;
    rgb[2] = (p & 255) / 255.0;
}

static void test_pictures(void **state) {
    (void)state;
    report_data *d = report_load(db_path);
    assert_int_equal(report_write(d, out_dir, 0, 10), 0);
    char path[512];
    snprintf(path, sizeof path, "%s/heatmap_combined.png", out_dir);
    cairo_surface_t *s = cairo_image_surface_create_from_png(path);
    assert_int_equal(cairo_surface_status(s), CAIRO_STATUS_SUCCESS);
    heat_layout L = report_heat_layout(4);
    assert_true(cairo_image_surface_get_width(s) >= L.x0 + 4 * L.cell);
    assert_true(cairo_image_surface_get_height(s) >= L.y0 + 4 * L.cell);
    double x, y, rgb[3];
    report_cell_centre(&L, 0, 4, &x, &y);          /* +0.4, beyond the clip: full red */
    pixel(s, x, y, rgb);
    assert_true(rgb[0] > 0.6 && rgb[1] < 0.2 && rgb[2] < 0.2);
    report_cell_centre(&L, 2, 4, &x, &y);          /* -0.1 = -clip: full blue */
    pixel(s, x, y, rgb);
    assert_true(rgb[2] > 0.5 && rgb[0] < 0.2);
    report_cell_centre(&L, 1, 2, &x, &y);          /* pending: mask grey */
    pixel(s, x, y, rgb);
    assert_float_equal(rgb[0], 0.80, 0.01);
    assert_float_equal(rgb[1], 0.80, 0.01);
    assert_float_equal(rgb[2], 0.80, 0.01);
    report_cell_centre(&L, 3, 1, &x, &y);          /* below the diagonal: masked too */
    pixel(s, x, y, rgb);
    assert_float_equal(rgb[0], 0.80, 0.01);
    report_cell_centre(&L, 0, 4, &x, &y);          /* the best cell is circled in black */
    pixel(s, x + 0.75 * L.cell, y, rgb);
    assert_true(rgb[0] < 0.3 && rgb[1] < 0.3 && rgb[2] < 0.3);
    cairo_surface_destroy(s);
    snprintf(path, sizeof path, "%s/index.html", out_dir);
    size_t len;
    char *html = read_file(path, &len);
    assert_non_null(html);
    assert_non_null(strstr(html, "1 still pending"));
    assert_non_null(strstr(html, "heatmap_math_x.png"));
    assert_non_null(strstr(html, "pareto.png"));
    free(html);
    report_free(d);
}

static void test_not_a_scan(void **state) {
    (void)state;
    const char *p = test_tmp_path("empty.sqlite");
    unlink(p);
    store *st = store_open(p);   /* schema but no scan */
    store_close(st);
    assert_null(report_load(p));
    assert_non_null(strstr(rys_lasterr(), "not a rys scan"));
    unlink(p);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_numbers), cmocka_unit_test(test_pictures),
                                       cmocka_unit_test(test_not_a_scan)};
    return cmocka_run_group_tests(tests, setup, NULL);
}
