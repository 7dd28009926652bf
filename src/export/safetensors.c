/* safetensors: reader and writer, see safetensors.h. The reader validates the
 * whole header before anyone sees a tensor; the writer streams tensor bytes
 * from their source mappings and hashes the output as it goes, so an export
 * reads each byte once and writes it once. */
#include "export/safetensors.h"
#include "base/sha256.h"
#include "base/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Write tensor data in pieces of this size (progress and hashing granularity). */
#define ST_WRITE_CHUNK (16u << 20)

static const struct { const char *name; unsigned size; } st_dtypes[] = {
    {"BOOL", 1}, {"U8", 1}, {"I8", 1}, {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"F8_E8M0", 1},
    {"U16", 2}, {"I16", 2}, {"F16", 2}, {"BF16", 2},
    {"U32", 4}, {"I32", 4}, {"F32", 4},
    {"U64", 8}, {"I64", 8}, {"F64", 8},
};

static unsigned dtype_size(const char *name) {
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
        if (!strcmp(st_dtypes[i].name, name)) return st_dtypes[i].size;
    return 0;
}

typedef struct { uint64_t begin, end; size_t idx; } st_range;

static int cmp_range(const void *a, const void *b) {
    const st_range *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

static bool json_u64(json_t *v, uint64_t *out) {
    if (!json_is_integer(v) || json_integer_value(v) < 0) return false;
    *out = (uint64_t)json_integer_value(v);
    return true;
}

/* One header entry into t (name set by the caller); -1 with the error set. */
static int parse_entry(const char *path, const char *name, json_t *e, uint64_t data_size, st_tensor *t,
                       uint64_t *begin, uint64_t *end) {
    json_t *dt = json_object_get(e, "dtype"), *shape = json_object_get(e, "shape"),
           *offs = json_object_get(e, "data_offsets");
    if (!json_is_object(e) || !json_is_string(dt) || !json_is_array(shape) || !json_is_array(offs) ||
        json_array_size(offs) != 2) {
        rys_seterr("%s: tensor '%s': header entry needs dtype, shape and data_offsets [begin, end]", path, name);
        return -1;
    }
    unsigned es = dtype_size(json_string_value(dt));
    if (!es) { rys_seterr("%s: tensor '%s': unknown dtype '%.20s'", path, name, json_string_value(dt)); return -1; }
    snprintf(t->dtype, sizeof t->dtype, "%s", json_string_value(dt));
    if (json_array_size(shape) > ST_MAX_DIMS) {
        rys_seterr("%s: tensor '%s': %zu dimensions (at most %d)", path, name, json_array_size(shape), ST_MAX_DIMS);
        return -1;
    }
    t->n_dims = (int)json_array_size(shape);
    uint64_t elems = 1;
    for (int d = 0; d < t->n_dims; d++) {
        uint64_t n;
        if (!json_u64(json_array_get(shape, (size_t)d), &n) || n > (uint64_t)INT64_MAX) {
            rys_seterr("%s: tensor '%s': shape entry %d is not a non-negative integer", path, name, d);
            return -1;
        }
        t->shape[d] = (int64_t)n;
        if (n && elems > UINT64_MAX / n) { rys_seterr("%s: tensor '%s': shape overflows", path, name); return -1; }
        elems *= n;
    }
    if (elems > UINT64_MAX / es) { rys_seterr("%s: tensor '%s': size overflows", path, name); return -1; }
    t->nbytes = elems * es;
    if (!json_u64(json_array_get(offs, 0), begin) || !json_u64(json_array_get(offs, 1), end) || *begin > *end ||
        *end > data_size) {
        rys_seterr("%s: tensor '%s': data_offsets outside the %llu-byte data section", path, name,
                   (unsigned long long)data_size);
        return -1;
    }
    if (*end - *begin != t->nbytes) {
        rys_seterr("%s: tensor '%s': data_offsets span %llu bytes but %s x shape needs %llu", path, name,
                   (unsigned long long)(*end - *begin), t->dtype, (unsigned long long)t->nbytes);
        return -1;
    }
    return 0;
}

static int parse_header(st_file *f) {
    if (f->size < 8) { rys_seterr("%s: too short for a safetensors header", f->path); return -1; }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | f->map[i];
    if (hlen < 2 || hlen > ST_MAX_HEADER || hlen > f->size - 8) {
        rys_seterr("%s: header length %llu does not fit the %zu-byte file", f->path, (unsigned long long)hlen, f->size);
        return -1;
    }
    json_error_t err;
    json_t *h = json_loadb((const char *)f->map + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &err);
    if (!h || !json_is_object(h)) {
        rys_seterr("%s: header is not a JSON object (%s)", f->path, h ? "other JSON value" : err.text);
        json_decref(h);
        return -1;
    }
    const uint8_t *data = f->map + 8 + hlen;
    uint64_t data_size = f->size - 8 - hlen;
    size_t cap = json_object_size(h);
    st_tensor *ts = xcalloc(cap ? cap : 1, sizeof *ts);
    st_range *rg = xcalloc(cap ? cap : 1, sizeof *rg);
    size_t n = 0;
    int rc = -1;
    const char *name;
    json_t *e;
    json_object_foreach(h, name, e) {
        if (!strcmp(name, "__metadata__")) {
            const char *k;
            json_t *v;
            if (!json_is_object(e)) { rys_seterr("%s: __metadata__ is not an object", f->path); goto out; }
            json_object_foreach(e, k, v) if (!json_is_string(v)) {
                rys_seterr("%s: __metadata__ '%s' is not a string", f->path, k);
                goto out;
            }
            f->metadata = json_incref(e);
            continue;
        }
        st_tensor *t = &ts[n];
        if (parse_entry(f->path, name, e, data_size, t, &rg[n].begin, &rg[n].end)) goto out;
        t->name = xstrdup(name);
        t->data = data + rg[n].begin;
        rg[n].idx = n;
        n++;
    }
    qsort(rg, n, sizeof *rg, cmp_range);
    uint64_t prev_end = 0;
    size_t prev = 0;
    for (size_t k = 0; k < n; k++) {
        if (rg[k].begin == rg[k].end) continue;
        if (rg[k].begin < prev_end) {
            rys_seterr("%s: tensors '%s' and '%s' overlap", f->path, ts[prev].name, ts[rg[k].idx].name);
            goto out;
        }
        prev_end = rg[k].end;
        prev = rg[k].idx;
    }
    f->tensors = xcalloc(n ? n : 1, sizeof *f->tensors);
    for (size_t k = 0; k < n; k++) f->tensors[k] = ts[rg[k].idx];
    f->n_tensors = n;
    rc = 0;
out:
    if (rc) for (size_t k = 0; k < n; k++) free(ts[k].name);
    free(ts);
    free(rg);
    json_decref(h);
    return rc;
}

st_file *st_open(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) { rys_seterr("%s: %s", path, strerror(errno)); return NULL; }
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        rys_seterr("%s: not a regular file", path);
        close(fd);
        return NULL;
    }
    st_file *f = xcalloc(1, sizeof *f);
    f->path = xstrdup(path);
    f->size = (size_t)st.st_size;
    if (f->size) {
        void *m = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            rys_seterr("%s: mmap: %s", path, strerror(errno));
            close(fd);
            f->size = 0;
            st_close(f);
            return NULL;
        }
        f->map = m;
    }
    close(fd);
    if (parse_header(f)) { st_close(f); return NULL; }
    return f;
}

void st_close(st_file *f) {
    if (!f) return;
    if (f->map) munmap((void *)f->map, f->size);
    for (size_t i = 0; i < f->n_tensors; i++) free(f->tensors[i].name);
    free(f->tensors);
    json_decref(f->metadata);
    free(f->path);
    free(f);
}

const st_tensor *st_find(const st_file *f, const char *name) {
    for (size_t i = 0; i < f->n_tensors; i++)
        if (!strcmp(f->tensors[i].name, name)) return &f->tensors[i];
    return NULL;
}

/* ---- writer ---------------------------------------------------------------- */

struct st_writer {
    st_tensor *t;
    size_t n, cap;
    json_t *metadata;
};

st_writer *st_writer_new(void) { return xcalloc(1, sizeof(st_writer)); }

void st_writer_free(st_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n; i++) free(w->t[i].name);
    free(w->t);
    json_decref(w->metadata);
    free(w);
}

void st_writer_set_metadata(st_writer *w, json_t *metadata) {
    json_decref(w->metadata);
    w->metadata = metadata ? json_deep_copy(metadata) : NULL;
}

void st_writer_add(st_writer *w, const char *name, const st_tensor *t) {
    if (w->n == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 64;
        w->t = xrealloc(w->t, w->cap * sizeof *w->t);
    }
    w->t[w->n] = *t;
    w->t[w->n].name = xstrdup(name);
    w->n++;
}

/* The JSON header, padded with spaces so the data section starts 8-aligned. */
static char *build_header(const st_writer *w, size_t *len) {
    json_t *h = json_object();
    if (w->metadata) json_object_set(h, "__metadata__", w->metadata);
    uint64_t off = 0;
    for (size_t i = 0; i < w->n; i++) {
        const st_tensor *t = &w->t[i];
        json_t *shape = json_array();
        for (int d = 0; d < t->n_dims; d++) json_array_append_new(shape, json_integer(t->shape[d]));
        json_object_set_new(h, t->name,
                            json_pack("{s:s, s:o, s:[I,I]}", "dtype", t->dtype, "shape", shape, "data_offsets",
                                      (json_int_t)off, (json_int_t)(off + t->nbytes)));
        off += t->nbytes;
    }
    char *s = json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(h);
    if (!s) return NULL;
    size_t n = strlen(s), padded = (n + 7) & ~(size_t)7;
    s = xrealloc(s, padded + 1);
    memset(s + n, ' ', padded - n);
    s[padded] = 0;
    *len = padded;
    return s;
}

static bool hashed_write(FILE *fp, sha256_ctx *c, const void *p, size_t n) {
    sha256_update(c, p, n);
    return n == 0 || fwrite(p, 1, n, fp) == n;
}

int st_writer_write(st_writer *w, const char *path, void (*on_bytes)(void *ctx, uint64_t n), void *ctx,
                    char hex_out[65]) {
    size_t hlen;
    char *header = build_header(w, &hlen);
    if (!header) { rys_seterr("%s: cannot encode the safetensors header", path); return -1; }
    FILE *fp = fopen(path, "wb");
    if (!fp) { rys_seterr("%s: %s", path, strerror(errno)); free(header); return -1; }
    sha256_ctx c;
    sha256_init(&c);
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
    bool ok = hashed_write(fp, &c, len8, 8) && hashed_write(fp, &c, header, hlen);
    for (size_t i = 0; ok && i < w->n; i++)
        for (uint64_t off = 0; ok && off < w->t[i].nbytes; off += ST_WRITE_CHUNK) {
            size_t k = w->t[i].nbytes - off < ST_WRITE_CHUNK ? (size_t)(w->t[i].nbytes - off) : ST_WRITE_CHUNK;
            ok = hashed_write(fp, &c, w->t[i].data + off, k);
            if (ok && on_bytes) on_bytes(ctx, k);
        }
    int err = errno;
    if (fclose(fp) && ok) { ok = false; err = errno; }
    free(header);
    if (!ok) {
        rys_seterr("%s: write failed: %s", path, strerror(err));
        unlink(path);
        return -1;
    }
    uint8_t d[32];
    sha256_final(&c, d);
    if (hex_out) sha256_hex(d, hex_out);
    return 0;
}
