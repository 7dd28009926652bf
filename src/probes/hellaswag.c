/* hellaswag: task file reading, see hellaswag.h. */
#include "probes/hellaswag.h"
#include "base/util.h"

#include <bzlib.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Whole file, decompressed when it ends in .bz2. */
static char *slurp(const char *path, size_t *len) {
    size_t n = strlen(path);
    if (n < 4 || strcmp(path + n - 4, ".bz2")) return read_file(path, len);
    FILE *f = fopen(path, "rb");
    if (!f) { rys_seterr("%s: %s", path, strerror(errno)); return NULL; }
    int err;
    BZFILE *bz = BZ2_bzReadOpen(&err, f, 0, 0, NULL, 0);
    size_t cap = 1 << 20, used = 0;
    char *buf = xmalloc(cap + 1);
    while (err == BZ_OK) {
        if (used == cap) { cap *= 2; buf = xrealloc(buf, cap + 1); }
        int got = BZ2_bzRead(&err, bz, buf + used, (int)(cap - used > (1 << 30) ? (1 << 30) : cap - used));
        if (got > 0) used += (size_t)got;
    }
    BZ2_bzReadClose(&err, bz);
    fclose(f);
    if (err != BZ_OK && err != BZ_STREAM_END && err != BZ_SEQUENCE_ERROR) {
        free(buf);
        rys_seterr("%s: corrupt bzip2 data", path);
        return NULL;
    }
    buf[used] = 0;
    *len = used;
    return buf;
}

void hellaswag_free(hellaswag_task *t, int n) {
    for (int i = 0; i < n; i++) {
        free(t[i].context);
        for (int e = 0; e < 4; e++) free(t[i].endings[e]);
    }
    free(t);
}

hellaswag_task *hellaswag_load(const char *path, int max_tasks, int *n_out) {
    size_t len;
    char *text = slurp(path, &len);
    if (!text) return NULL;
    if (memchr(text, 0, len)) { free(text); rys_seterr("%s: binary data in a text task file", path); return NULL; }
    int n_lines = 0, cap = 0, n = 0;
    char **lines = NULL;
    for (char *p = text; *p;) {
        char *e = strchr(p, '\n');
        if (e) *e = 0;
        size_t l = strlen(p);
        if (l && p[l - 1] == '\r') p[l - 1] = 0;
        if (n_lines == cap) { cap = cap ? cap * 2 : 1024; lines = xrealloc(lines, (size_t)cap * sizeof *lines); }
        lines[n_lines++] = p;
        if (!e) break;
        p = e + 1;
    }
    if (n_lines % 6) {
        rys_seterr("%s: %d lines, not a multiple of 6 (context, gold index, four endings per task)", path, n_lines);
        free(lines); free(text);
        return NULL;
    }
    int total = n_lines / 6;
    if (max_tasks > 0 && max_tasks < total) total = max_tasks;
    if (total == 0) { rys_seterr("%s: no tasks", path); free(lines); free(text); return NULL; }
    hellaswag_task *t = xcalloc((size_t)total, sizeof *t);
    for (n = 0; n < total; n++) {
        char **L = lines + 6 * n, *end;
        long g = strtol(L[1], &end, 10);
        if (end == L[1] || *end || g < 0 || g > 3) {
            rys_seterr("%s: line %d: gold index must be 0..3, got '%.20s'", path, 6 * n + 2, L[1]);
            hellaswag_free(t, n);
            free(lines); free(text);
            return NULL;
        }
        t[n].context = xstrdup(L[0]);
        t[n].gold = (int)g;
        for (int e = 0; e < 4; e++) t[n].endings[e] = xstrdup(L[2 + e]);
    }
    free(lines);
    free(text);
    *n_out = n;
    return t;
}

void hellaswag_wilson(int k, int n, double *lo, double *hi) {
    const double za = 1.95996398454;
    double freq = (double)k / n, z = za * za / n;
    double cnf = z * sqrt(n * (4.0 * freq * (1 - freq) + z)) / (za + za);
    *lo = (freq + z * 0.5 - cnf) / (1.0 + z);
    *hi = (freq + z * 0.5 + cnf) / (1.0 + z);
}
