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
    return 0;
}

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
    out->n_model = n_model;
    out->n = n_model + (j - i);
    out->layers = xmalloc((size_t)out->n * sizeof *out->layers);
    int p = 0;
    for (int l = 0; l < j; l++) out->layers[p++] = l;
    for (int l = i; l < n_model; l++) out->layers[p++] = l;
    return 0;
}

int path_from_blocks(const char *spec, int n_model, layer_path *out) {
    ivec a = {0};
    const char *s = spec;
    int n_blocks = 0;
    if (!*spec) { rys_seterr("--blocks '': empty spec"); return -1; }
    for (;;) {
        long i, j;
        if (parse_uint(&s, &i) || *s != ',') goto garbage;
        s++;
        if (parse_uint(&s, &j)) goto garbage;
        if (*s && *s != ';') goto garbage;
        bool baseline = i == 0 && j == 0;
        if (!baseline && i >= j) { rys_seterr("--blocks '%s': block (%ld,%ld) needs i < j", spec, i, j); goto fail; }
        if (j > n_model) { rys_seterr("--blocks '%s': block (%ld,%ld) ends past the model's %d layers", spec, i, j, n_model); goto fail; }
        if (baseline && (n_blocks > 0 || *s)) { rys_seterr("--blocks '%s': (0,0) means the baseline and cannot be combined", spec); goto fail; }
        if (n_blocks == 0) {
            if (baseline) { for (int l = 0; l < n_model; l++) ivec_push(&a, l); }
            else {
                for (int l = 0; l < j; l++) ivec_push(&a, l);
                for (int l = (int)i; l < n_model; l++) ivec_push(&a, l);
            }
        } else {
            int last = -1;
            for (int p = 0; p < a.n; p++) if (a.v[p] == j - 1) last = p;
            if (last >= 0) {
                int blk[j - i];
                for (int l = (int)i; l < j; l++) blk[l - i] = l;
                ivec_insert(&a, last + 1, blk, (int)(j - i));
            }
        }
        n_blocks++;
        if (!*s) break;
        s++;
    }
    return finish(&a, n_model, out);
garbage:
    rys_seterr("--blocks '%s': expected \"i,j\" or \"i,j;i,j...\" with integers 0 <= i < j <= %d", spec, n_model);
fail:
    free(a.v);
    return -1;
}

int path_from_layers(const char *spec, int n_model, layer_path *out) {
    ivec a = {0};
    const char *s = spec;
    if (!*spec) { rys_seterr("--layers '': empty spec"); return -1; }
    for (;;) {
        long lo, hi;
        if (parse_uint(&s, &lo)) goto garbage;
        hi = lo;
        if (*s == '-') {
            s++;
            if (parse_uint(&s, &hi)) goto garbage;
            if (hi < lo) { rys_seterr("--layers '%s': range %ld-%ld runs backwards", spec, lo, hi); goto fail; }
        }
        if (hi >= n_model) { rys_seterr("--layers '%s': layer %ld out of range (model has %d layers, 0..%d)", spec, hi, n_model, n_model - 1); goto fail; }
        if (a.n + (hi - lo + 1) > 64 * (long)n_model + 1024) { rys_seterr("--layers '%s': path too long", spec); goto fail; }
        for (long l = lo; l <= hi; l++) ivec_push(&a, (int)l);
        if (!*s) break;
        if (*s != ',') goto garbage;
        s++;
    }
    return finish(&a, n_model, out);
garbage:
    rys_seterr("--layers '%s': expected comma-separated layer indices or ranges like \"0-11,6-23\"", spec);
fail:
    free(a.v);
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
    return 0;
}

char *path_canonical(const layer_path *p) {
    size_t cap = 16 + (size_t)p->n * 8, len = 0;
    char *s = xmalloc(cap);
    len += (size_t)snprintf(s, cap, "layers:");
    for (int k = 0; k < p->n; k++)
        len += (size_t)snprintf(s + len, cap - len, k ? ",%d" : "%d", p->layers[k]);
    return s;
}

char *path_ranges(const layer_path *p) {
    size_t cap = 16 + (size_t)p->n * 16, len = 0;
    char *s = xmalloc(cap);
    s[0] = 0;
    for (int k = 0; k < p->n;) {
        int e = k;
        while (e + 1 < p->n && p->layers[e + 1] == p->layers[e] + 1) e++;
        const char *sep = len ? "," : "";
        if (e == k) len += (size_t)snprintf(s + len, cap - len, "%s%d", sep, p->layers[k]);
        else len += (size_t)snprintf(s + len, cap - len, "%s%d-%d", sep, p->layers[k], p->layers[e]);
        k = e + 1;
    }
    return s;
}

int path_extra_layers(const layer_path *p) { return p->n - p->n_model; }

void path_free(layer_path *p) {
    free(p->layers);
    p->layers = NULL;
    p->n = 0;
}

int path_shared_prefix(const layer_path *path) {
    int k = 0;
    while (k < path->n && k < path->n_model && path->layers[k] == k) k++;
    return k;
}
