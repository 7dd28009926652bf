/* path: layer path grammar, see path.h. Parsing is strict: a spec either
 * means exactly one path or is rejected with a message naming the problem,
 * because a silently misread spec would mislabel every result of a scan. */
#include "engine/path.h"
#include "base/util.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { int *v; int n, cap; } ivec;

static void ivec_push(ivec *a, int x) {
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 64;
        a->v = xrealloc(a->v, (size_t)a->cap * sizeof *a->v);
    }
    a->v[a->n++] = x;
}

static void ivec_insert(ivec *a, int at, const int *src, int n) {
    for (int k = 0; k < n; k++) ivec_push(a, 0);
    memmove(a->v + at + n, a->v + at, (size_t)(a->n - n - at) * sizeof *a->v);
    memcpy(a->v + at, src, (size_t)n * sizeof *src);
}

typedef struct { float *v; int n, cap; } fvec;

static void fvec_push(fvec *a, float x) {
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 64;
        a->v = xrealloc(a->v, (size_t)a->cap * sizeof *a->v);
    }
    a->v[a->n++] = x;
}

static void fvec_insert(fvec *a, int at, float x, int n) {
    for (int k = 0; k < n; k++) fvec_push(a, 0);
    memmove(a->v + at + n, a->v + at, (size_t)(a->n - n - at) * sizeof *a->v);
    for (int k = 0; k < n; k++) a->v[at + k] = x;
}

/* Largest residual scale or Euler alpha a spec may give: past it a path is
 * surely a typo, and scales that large only overflow the residual stream. */
#define MAX_SCALE 16.0f

/* A scale at *s (after its '@'): a finite decimal 0 <= a <= MAX_SCALE. */
static int parse_scale(const char **s, float *out) {
    const char *p = *s;
    if (!isdigit((unsigned char)*p) && *p != '.') return -1;
    char *end;
    /* no errno test: strtof's ERANGE for a result below float's normal range
     * would refuse the very keys such a scale is spelled with */
    float v = strtof(p, &end);
    if (end == p || !(v >= 0.0f && v <= MAX_SCALE)) return -1;
    *s = end;
    *out = v;
    return 0;
}

void path_format_scale(char *buf, size_t cap, float v) {
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(buf, cap, "%.*g", prec, (double)v);
        if (strtof(buf, NULL) == v) return;
    }
}

/* Parse a non-negative decimal integer at *s, skipping spaces around it. */
static int parse_uint(const char **s, long *out) {
    const char *p = *s;
    while (*p == ' ') p++;
    if (!isdigit((unsigned char)*p)) return -1;
    errno = 0;
    char *end;
    long v = strtol(p, &end, 10);
    if (errno || v > 1000000) return -1;
    while (*end == ' ') end++;
    *s = end;
    *out = v;
    return 0;
}

static int finish(ivec *a, int n_model, layer_path *out) {
    out->layers = a->v;
    out->n = a->n;
    out->n_model = n_model;
    out->scale = NULL;
    out->seg = NULL;
    out->n_seg = 0;
    return 0;
}

/* Attaches scales sc (a->n of them, owned) to out, or frees them when all
 * are 1: a path whose scales are all 1 is the unscaled path, key and bits. */
static void attach_scales(layer_path *out, float *sc) {
    bool any = false;
    for (int k = 0; sc && k < out->n; k++) any |= sc[k] != 1.0f;
    if (any) out->scale = sc;
    else free(sc);
}

/* The longest path a spec may ask for: each layer 64 times and some, so
 * that every parser accepts what another's canonical key spells. */
static long max_positions(int n_model) { return 64 * (long)n_model + 1024; }

int path_baseline(int n_model, layer_path *out) {
    ivec a = {0};
    for (int l = 0; l < n_model; l++) ivec_push(&a, l);
    return finish(&a, n_model, out);
}

int path_from_block(int i, int j, int n_model, layer_path *out) {
    if (i < 0 || i >= j || j > n_model) {
        rys_seterr("block (%d,%d): needs 0 <= i < j <= %d", i, j, n_model);
        return -1;
    }
    *out = (layer_path){.n_model = n_model, .n = n_model + (j - i)};
    out->layers = xmalloc((size_t)out->n * sizeof *out->layers);
    int p = 0;
    for (int l = 0; l < j; l++) out->layers[p++] = l;
    for (int l = i; l < n_model; l++) out->layers[p++] = l;
    return 0;
}

int path_from_blocks(const char *spec, int n_model, layer_path *out) {
    ivec a = {0};
    fvec sc = {0};
    const char *s = spec;
    int n_blocks = 0;
    float euler_alpha = -1;     /* >= 0: the single block is damped by the paper's rule */
    int euler_i = 0, euler_j = 0;
    if (!*spec) { rys_seterr("--blocks '': empty spec"); return -1; }
    for (;;) {
        long i, j;
        float scale = 1.0f;
        if (parse_uint(&s, &i) || *s != ',') goto garbage;
        s++;
        if (parse_uint(&s, &j)) goto garbage;
        if (*s == '@') {
            s++;
            if (!strncmp(s, "euler", 5)) {
                s += 5;
                euler_alpha = 1.0f;
                if (*s == ':' && (s++, parse_scale(&s, &euler_alpha))) goto bad_scale;
                euler_i = (int)i;
                euler_j = (int)j;
            } else if (parse_scale(&s, &scale)) goto bad_scale;
            while (*s == ' ') s++;
        }
        if (*s && *s != ';') goto garbage;
        bool baseline = i == 0 && j == 0;
        if (!baseline && i >= j) { rys_seterr("--blocks '%s': block (%ld,%ld) needs i < j", spec, i, j); goto fail; }
        if (j > n_model) { rys_seterr("--blocks '%s': block (%ld,%ld) ends past the model's %d layers", spec, i, j, n_model); goto fail; }
        if (baseline && (n_blocks > 0 || *s)) { rys_seterr("--blocks '%s': (0,0) means the baseline and cannot be combined", spec); goto fail; }
        if (baseline && (scale != 1.0f || euler_alpha >= 0)) { rys_seterr("--blocks '%s': the baseline (0,0) repeats nothing to scale", spec); goto fail; }
        if (n_blocks == 0) {
            if (baseline) { for (int l = 0; l < n_model; l++) { ivec_push(&a, l); fvec_push(&sc, 1.0f); } }
            else {
                for (int l = 0; l < j; l++) { ivec_push(&a, l); fvec_push(&sc, 1.0f); }
                for (int l = (int)i; l < n_model; l++) { ivec_push(&a, l); fvec_push(&sc, l < j ? scale : 1.0f); }
            }
        } else {
            int last = -1;
            for (int p = 0; p < a.n; p++) if (a.v[p] == j - 1) last = p;
            if (last >= 0) {
                int blk[j - i];
                for (int l = (int)i; l < j; l++) blk[l - i] = l;
                ivec_insert(&a, last + 1, blk, (int)(j - i));
                fvec_insert(&sc, last + 1, scale, (int)(j - i));
            }
        }
        n_blocks++;
        if (a.n > max_positions(n_model)) {
            rys_seterr("--blocks: path too long (at most %ld positions for %d layers)", max_positions(n_model), n_model);
            goto fail;
        }
        if (!*s) break;
        s++;
    }
    if (euler_alpha >= 0 && n_blocks > 1) {
        rys_seterr("--blocks '%s': @euler damps the traversals of one block, not of several", spec);
        goto fail;
    }
    finish(&a, n_model, out);
    attach_scales(out, sc.v);
    if (euler_alpha >= 0) {
        /* K = 2 traversals of layers i..j-1: positions [i, j) and [j, 2j - i),
         * each moving the state by h = alpha / K of its update */
        float h = euler_alpha / 2.0f;
        if (h != 1.0f) {
            int len = euler_j - euler_i;
            out->seg = xmalloc(2 * sizeof *out->seg);
            out->seg[0] = (path_seg){euler_i, euler_j, h};
            out->seg[1] = (path_seg){euler_j, euler_j + len, h};
            out->n_seg = 2;
        }
    }
    return 0;
bad_scale:
    rys_seterr("--blocks '%s': a scale after '@' is a number 0..%g, \"euler\" or \"euler:ALPHA\"", spec, (double)MAX_SCALE);
    goto fail;
garbage:
    rys_seterr("--blocks '%s': expected \"i,j\" or \"i,j;i,j...\" with integers 0 <= i < j <= %d, each optionally \"@SCALE\"", spec, n_model);
fail:
    free(a.v);
    free(sc.v);
    return -1;
}

/* The "+euler:b-e@h,..." suffix of a canonical key into out->seg: inclusive
 * path positions, ascending and disjoint. */
static int parse_euler_suffix(const char *spec, const char *s, layer_path *out) {
    int cap = 4;
    out->seg = xmalloc((size_t)cap * sizeof *out->seg);
    for (;;) {
        long b, e;
        float h;
        if (parse_uint(&s, &b) || *s++ != '-' || parse_uint(&s, &e) || *s++ != '@' || parse_scale(&s, &h)) {
            rys_seterr("--layers '%s': expected \"+euler:B-E@H,...\" (inclusive path positions, step H)", spec);
            return -1;
        }
        if (b > e || e >= out->n || (out->n_seg && b < out->seg[out->n_seg - 1].end)) {
            rys_seterr("--layers '%s': damped traversal %ld-%ld must lie in positions 0..%d, after the previous one", spec, b, e, out->n - 1);
            return -1;
        }
        if (out->n_seg == cap) out->seg = xrealloc(out->seg, (size_t)(cap *= 2) * sizeof *out->seg);
        out->seg[out->n_seg++] = (path_seg){(int)b, (int)e + 1, h};
        if (!*s) return 0;
        if (*s++ != ',') {
            rys_seterr("--layers '%s': expected \"+euler:B-E@H,...\" (inclusive path positions, step H)", spec);
            return -1;
        }
    }
}

int path_from_layers(const char *spec, int n_model, layer_path *out) {
    ivec a = {0};
    fvec sc = {0};
    const char *s = spec;
    if (!*spec) { rys_seterr("--layers '': empty spec"); return -1; }
    const char *plus = strstr(spec, "+euler");     /* not strchr: "5e+0" is a scale */
    for (;;) {
        long lo, hi;
        float scale = 1.0f;
        if (parse_uint(&s, &lo)) goto garbage;
        hi = lo;
        if (*s == '-') {
            s++;
            if (parse_uint(&s, &hi)) goto garbage;
            if (hi < lo) { rys_seterr("--layers '%s': range %ld-%ld runs backwards", spec, lo, hi); goto fail; }
        }
        if (*s == '@') {
            s++;
            if (parse_scale(&s, &scale)) {
                rys_seterr("--layers '%s': a scale after '@' is a number 0..%g", spec, (double)MAX_SCALE);
                goto fail;
            }
            while (*s == ' ') s++;
        }
        if (hi >= n_model) { rys_seterr("--layers '%s': layer %ld out of range (model has %d layers, 0..%d)", spec, hi, n_model, n_model - 1); goto fail; }
        if (a.n + (hi - lo + 1) > max_positions(n_model)) {
            rys_seterr("--layers: path too long (at most %ld positions for %d layers)", max_positions(n_model), n_model);
            goto fail;
        }
        for (long l = lo; l <= hi; l++) { ivec_push(&a, (int)l); fvec_push(&sc, scale); }
        if (!*s || s == plus) break;
        if (*s != ',') goto garbage;
        s++;
    }
    finish(&a, n_model, out);
    attach_scales(out, sc.v);
    if (plus) {
        if (strncmp(plus, "+euler:", 7)) goto garbage_freed;
        if (parse_euler_suffix(spec, plus + 7, out)) { path_free(out); return -1; }
    }
    return 0;
garbage_freed:
    path_free(out);
    rys_seterr("--layers '%s': expected comma-separated layer indices or ranges like \"0-11,6-23\", each optionally \"@SCALE\"", spec);
    return -1;
garbage:
    rys_seterr("--layers '%s': expected comma-separated layer indices or ranges like \"0-11,6-23\", each optionally \"@SCALE\"", spec);
fail:
    free(a.v);
    free(sc.v);
    return -1;
}

int path_from_repeat(int layer, int times, int n_model, layer_path *out) {
    if (layer < 0 || layer >= n_model) { rys_seterr("repeat: layer %d out of range 0..%d", layer, n_model - 1); return -1; }
    if (times < 1 || times > 64) { rys_seterr("repeat: count %d out of range 1..64", times); return -1; }
    ivec a = {0};
    for (int l = 0; l < n_model; l++) {
        ivec_push(&a, l);
        if (l == layer) for (int r = 1; r < times; r++) ivec_push(&a, l);
    }
    return finish(&a, n_model, out);
}

int path_from_counts(const int *counts, int n_model, layer_path *out) {
    ivec a = {0};
    for (int l = 0; l < n_model; l++) {
        if (counts[l] < 1 || counts[l] > 64) {
            free(a.v);
            rys_seterr("counts: layer %d traversed %d times; each layer runs 1..64 times", l, counts[l]);
            return -1;
        }
        for (int r = 0; r < counts[l]; r++) ivec_push(&a, l);
    }
    return finish(&a, n_model, out);
}

int path_from_counts_spec(const char *spec, int n_model, layer_path *out) {
    int *counts = xcalloc((size_t)(n_model ? n_model : 1), sizeof *counts), n = 0;
    const char *s = spec;
    for (;;) {
        long v;
        if (parse_uint(&s, &v)) {
            rys_seterr("counts '%s': expected %d comma-separated traversal counts", spec, n_model);
            goto fail;
        }
        if (n == n_model) {
            rys_seterr("counts '%s': more than the model's %d layers", spec, n_model);
            goto fail;
        }
        counts[n++] = (int)v;
        if (!*s) break;
        if (*s++ != ',') {
            rys_seterr("counts '%s': expected %d comma-separated traversal counts", spec, n_model);
            goto fail;
        }
    }
    if (n != n_model) {
        rys_seterr("counts '%s': %d counts for a model of %d layers", spec, n, n_model);
        goto fail;
    }
    int rc = path_from_counts(counts, n_model, out);
    free(counts);
    return rc;
fail:
    free(counts);
    return -1;
}

void path_counts(const layer_path *p, int *counts) {
    memset(counts, 0, (size_t)p->n_model * sizeof *counts);
    for (int k = 0; k < p->n; k++) counts[p->layers[k]]++;
}

int path_from_specs(const char *blocks, const char *layers, int n_model, layer_path *out) {
    if (blocks && layers) { rys_seterr("--blocks and --layers cannot be combined"); return -1; }
    if (blocks) return path_from_blocks(blocks, n_model, out);
    if (layers) return path_from_layers(layers, n_model, out);
    return path_baseline(n_model, out);
}

int path_copy(const layer_path *src, layer_path *out) {
    out->n = src->n;
    out->n_model = src->n_model;
    out->layers = xmalloc((size_t)(src->n ? src->n : 1) * sizeof *out->layers);
    memcpy(out->layers, src->layers, (size_t)src->n * sizeof *out->layers);
    out->scale = NULL;
    if (src->scale) {
        out->scale = xmalloc((size_t)(src->n ? src->n : 1) * sizeof *out->scale);
        memcpy(out->scale, src->scale, (size_t)src->n * sizeof *out->scale);
    }
    out->n_seg = src->n_seg;
    out->seg = NULL;
    if (src->n_seg) {
        out->seg = xmalloc((size_t)src->n_seg * sizeof *out->seg);
        memcpy(out->seg, src->seg, (size_t)src->n_seg * sizeof *out->seg);
    }
    return 0;
}

float path_scale(const layer_path *p, int pos) { return p->scale ? p->scale[pos] : 1.0f; }

bool path_is_damped(const layer_path *p) { return p->scale != NULL || p->n_seg > 0; }

int path_scale_repeats(layer_path *p, float a) {
    if (!(a >= 0.0f && a <= MAX_SCALE)) { rys_seterr("scale %g: needs 0 <= scale <= %g", (double)a, (double)MAX_SCALE); return -1; }
    if (a == 1.0f) return 0;
    float *sc = xmalloc((size_t)(p->n ? p->n : 1) * sizeof *sc);
    bool *seen = xcalloc((size_t)(p->n_model ? p->n_model : 1), sizeof *seen);
    for (int k = 0; k < p->n; k++) {
        sc[k] = seen[p->layers[k]] ? a : path_scale(p, k);
        seen[p->layers[k]] = true;
    }
    free(seen);
    free(p->scale);
    p->scale = NULL;
    attach_scales(p, sc);
    return 0;
}

bool path_equal(const layer_path *a, const layer_path *b) {
    if (a->n != b->n || a->n_seg != b->n_seg) return false;
    for (int k = 0; k < a->n; k++)
        if (a->layers[k] != b->layers[k] || path_scale(a, k) != path_scale(b, k)) return false;
    for (int k = 0; k < a->n_seg; k++)
        if (a->seg[k].begin != b->seg[k].begin || a->seg[k].end != b->seg[k].end || a->seg[k].h != b->seg[k].h) return false;
    return true;
}

/* The "+euler:b-e@h,..." suffix of p, appended to s (capacity cap, length *len). */
static void append_segs(const layer_path *p, char *s, size_t cap, size_t *len) {
    char num[32];
    for (int k = 0; k < p->n_seg; k++) {
        path_format_scale(num, sizeof num, p->seg[k].h);
        *len += (size_t)snprintf(s + *len, cap - *len, "%s%d-%d@%s", k ? "," : "+euler:", p->seg[k].begin, p->seg[k].end - 1, num);
    }
}

char *path_canonical(const layer_path *p) {
    size_t cap = 16 + (size_t)p->n * 24 + (size_t)p->n_seg * 48, len = 0;
    char *s = xmalloc(cap), num[32];
    len += (size_t)snprintf(s, cap, "layers:");
    for (int k = 0; k < p->n; k++) {
        len += (size_t)snprintf(s + len, cap - len, k ? ",%d" : "%d", p->layers[k]);
        if (path_scale(p, k) != 1.0f) {
            path_format_scale(num, sizeof num, path_scale(p, k));
            len += (size_t)snprintf(s + len, cap - len, "@%s", num);
        }
    }
    append_segs(p, s, cap, &len);
    return s;
}

char *path_ranges(const layer_path *p) {
    size_t cap = 16 + (size_t)p->n * 32 + (size_t)p->n_seg * 48, len = 0;
    char *s = xmalloc(cap), num[32];
    s[0] = 0;
    for (int k = 0; k < p->n;) {
        int e = k;
        while (e + 1 < p->n && p->layers[e + 1] == p->layers[e] + 1 && path_scale(p, e + 1) == path_scale(p, k)) e++;
        const char *sep = len ? "," : "";
        if (e == k) len += (size_t)snprintf(s + len, cap - len, "%s%d", sep, p->layers[k]);
        else len += (size_t)snprintf(s + len, cap - len, "%s%d-%d", sep, p->layers[k], p->layers[e]);
        if (path_scale(p, k) != 1.0f) {
            path_format_scale(num, sizeof num, path_scale(p, k));
            len += (size_t)snprintf(s + len, cap - len, "@%s", num);
        }
        k = e + 1;
    }
    append_segs(p, s, cap, &len);
    return s;
}

int path_extra_layers(const layer_path *p) { return p->n - p->n_model; }

void path_free(layer_path *p) {
    free(p->layers);
    free(p->scale);
    free(p->seg);
    p->layers = NULL;
    p->scale = NULL;
    p->seg = NULL;
    p->n = p->n_seg = 0;
}

int path_shared_prefix(const layer_path *path) {
    int k = 0;
    /* a scaled position or a damped traversal computes what the baseline did not */
    int stop = path->n_seg ? path->seg[0].begin : path->n;
    while (k < path->n && k < path->n_model && k < stop && path->layers[k] == k && path_scale(path, k) == 1.0f) k++;
    return k;
}
