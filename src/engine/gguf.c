/* gguf: the reader validates a whole GGUF file before anyone touches it, the
 * writer produces files that reader (and llama.cpp) accept; see gguf.h.
 *
 * Why every count is checked against the bytes left: a hostile count (2^60
 * strings in a 1 KB file) must fail before it becomes an allocation, so the
 * memory the reader uses is bounded by a small multiple of the file size. */
#include "engine/gguf.h"
#include "quant/quant.h"
#include "base/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define GGUF_MAGIC "GGUF"
#define GGUF_DEFAULT_ALIGNMENT 32
/* Real files nest arrays at most once; the limit keeps hostile nesting from
 * exhausting the stack. */
#define GGUF_MAX_ARRAY_DEPTH 16
/* Fewest bytes a metadata entry (key length, type, smallest value) and a
 * tensor info (name length, n_dims, one dim, type, offset) can occupy. */
#define GGUF_MIN_KV_BYTES 13
#define GGUF_MIN_TENSOR_INFO_BYTES 32
/* An array element that is itself an array holds at least its type and count. */
#define GGUF_MIN_NESTED_ARRAY_BYTES 12

/* The public struct comes first so a gguf_file * is the whole object; the
 * name-sorted indexes give duplicate detection and O(log n) lookups. */
typedef struct {
    gguf_file pub;
    const gguf_kv **kv_by_key;
    const gguf_tensor **tensor_by_name;
    bool mapped;
} gguf_impl;

/* ---- small helpers ------------------------------------------------------ */

static const size_t scalar_sizes[GGUF_T_COUNT] = {
    [GGUF_T_U8] = 1, [GGUF_T_I8] = 1, [GGUF_T_U16] = 2, [GGUF_T_I16] = 2, [GGUF_T_U32] = 4,
    [GGUF_T_I32] = 4, [GGUF_T_F32] = 4, [GGUF_T_BOOL] = 1, [GGUF_T_U64] = 8, [GGUF_T_I64] = 8,
    [GGUF_T_F64] = 8,
};

/* Bytes of one element of a fixed-size type; 0 for strings, arrays, unknown. */
static size_t scalar_size(uint32_t type) { return type < GGUF_T_COUNT ? scalar_sizes[type] : 0; }

const char *gguf_type_name(uint32_t vtype) {
    static const char *const names[GGUF_T_COUNT] = {
        "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64",
    };
    return vtype < GGUF_T_COUNT ? names[vtype] : "unknown";
}

static int str_cmp(gguf_str a, gguf_str b) {
    uint64_t n = a.len < b.len ? a.len : b.len;
    int c = n ? memcmp(a.ptr, b.ptr, n) : 0;
    if (c) return c;
    return a.len < b.len ? -1 : a.len > b.len;
}

bool gguf_str_eq(gguf_str s, const char *c) {
    size_t n = strlen(c);
    return s.len == n && (n == 0 || memcmp(s.ptr, c, n) == 0);
}

/* A name from the file made safe for a one-line message: printable ASCII,
 * at most 64 characters shown. */
static const char *shown(gguf_str s, char buf[80]) {
    size_t n = s.len < 64 ? (size_t)s.len : 64, j = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s.ptr[i];
        buf[j++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    if (s.len > n) { memcpy(buf + j, "...", 3); j += 3; }
    buf[j] = 0;
    return buf;
}

static bool add_overflows(uint64_t a, uint64_t b, uint64_t *out) { return __builtin_add_overflow(a, b, out); }
static bool mul_overflows(uint64_t a, uint64_t b, uint64_t *out) { return __builtin_mul_overflow(a, b, out); }

/* Rounds up to a power-of-two alignment; false on overflow. */
static bool align_up(uint64_t x, uint64_t alignment, uint64_t *out) {
    if (add_overflows(x, alignment - 1, out)) return false;
    *out &= ~(alignment - 1);
    return true;
}

/* ---- reader ------------------------------------------------------------- */

typedef struct {
    const uint8_t *buf;
    uint64_t len, pos;
    const char *name;       /* file name, prefix of every message */
    char what[128];         /* the item being read, for truncation messages */
} reader;

static bool fail(reader *r, const char *fmt, ...) RYS_PRINTF(2, 3);
static bool fail(reader *r, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    rys_seterr("%s: %s", r->name, msg);
    return false;
}

static uint64_t remaining(const reader *r) { return r->len - r->pos; }

static bool take(reader *r, uint64_t n, const uint8_t **out) {
    *out = NULL;
    if (n > remaining(r)) return fail(r, "truncated: %s runs past end of file", r->what);
    *out = r->buf + r->pos;
    r->pos += n;
    return true;
}

static bool read_u32(reader *r, uint32_t *v) {
    const uint8_t *p;
    if (!take(r, 4, &p)) return false;
    memcpy(v, p, 4);
    return true;
}

static bool read_u64(reader *r, uint64_t *v) {
    const uint8_t *p;
    if (!take(r, 8, &p)) return false;
    memcpy(v, p, 8);
    return true;
}

static bool read_str(reader *r, gguf_str *s) {
    const uint8_t *p;
    if (!read_u64(r, &s->len) || !take(r, s->len, &p)) return false;
    s->ptr = (const char *)p;
    return true;
}

static void load_scalar(uint32_t type, const uint8_t *p, gguf_value *v) {
    switch (type) {
    case GGUF_T_U8: case GGUF_T_BOOL: v->u = p[0]; break;
    case GGUF_T_I8: v->i = (int8_t)p[0]; break;
    case GGUF_T_U16: { uint16_t x; memcpy(&x, p, 2); v->u = x; break; }
    case GGUF_T_I16: { int16_t x; memcpy(&x, p, 2); v->i = x; break; }
    case GGUF_T_U32: { uint32_t x; memcpy(&x, p, 4); v->u = x; break; }
    case GGUF_T_I32: { int32_t x; memcpy(&x, p, 4); v->i = x; break; }
    case GGUF_T_U64: memcpy(&v->u, p, 8); break;
    case GGUF_T_I64: memcpy(&v->i, p, 8); break;
    case GGUF_T_F32: { float x; memcpy(&x, p, 4); v->f = x; break; }
    case GGUF_T_F64: memcpy(&v->f, p, 8); break;
    }
}

static void free_value(gguf_value *v) {
    if (v->type != GGUF_T_ARRAY) return;
    free(v->arr.strs);
    if (v->arr.items)
        for (uint64_t i = 0; i < v->arr.n; i++) free_value(&v->arr.items[i]);
    free(v->arr.items);
    v->arr.strs = NULL;
    v->arr.items = NULL;
}

static bool read_value(reader *r, uint32_t type, gguf_value *v, int depth);

/* The body of an array value: element type, count, elements. */
static bool read_array(reader *r, gguf_value *v, int depth) {
    v->type = GGUF_T_ARRAY;
    if (depth >= GGUF_MAX_ARRAY_DEPTH)
        return fail(r, "%s: arrays nested deeper than %d levels", r->what, GGUF_MAX_ARRAY_DEPTH);
    uint32_t et;
    uint64_t n;
    if (!read_u32(r, &et) || !read_u64(r, &n)) return false;
    if (et >= GGUF_T_COUNT) return fail(r, "%s: unknown array element type %u", r->what, et);
    size_t es = scalar_size(et);
    if (es) {
        uint64_t bytes;
        const uint8_t *p;
        if (mul_overflows(n, es, &bytes) || bytes > remaining(r))
            return fail(r, "truncated: %s: array of %llu %s runs past end of file", r->what,
                        (unsigned long long)n, gguf_type_name(et));
        take(r, bytes, &p);
        v->arr.type = et;
        v->arr.n = n;
        v->arr.raw = p;
        return true;
    }
    uint64_t min_elem = et == GGUF_T_STRING ? 8 : GGUF_MIN_NESTED_ARRAY_BYTES;
    if (n > remaining(r) / min_elem)
        return fail(r, "truncated: %s: array of %llu %s runs past end of file", r->what,
                    (unsigned long long)n, gguf_type_name(et));
    /* n and the element storage are set before reading so a failure part way
     * leaves a value free_value() can release (calloc'ed elements are empty) */
    v->arr.type = et;
    v->arr.n = n;
    if (et == GGUF_T_STRING) {
        v->arr.strs = xcalloc(n, sizeof *v->arr.strs);
        for (uint64_t i = 0; i < n; i++)
            if (!read_str(r, &v->arr.strs[i])) return false;
    } else {
        v->arr.items = xcalloc(n, sizeof *v->arr.items);
        for (uint64_t i = 0; i < n; i++)
            if (!read_value(r, GGUF_T_ARRAY, &v->arr.items[i], depth + 1)) return false;
    }
    return true;
}

static bool read_value(reader *r, uint32_t type, gguf_value *v, int depth) {
    if (type >= GGUF_T_COUNT) return fail(r, "%s: unknown value type %u", r->what, type);
    v->type = type;
    if (type == GGUF_T_STRING) return read_str(r, &v->s);
    if (type == GGUF_T_ARRAY) return read_array(r, v, depth);
    const uint8_t *p;
    if (!take(r, scalar_size(type), &p)) return false;
    load_scalar(type, p, v);
    return true;
}

static int cmp_kv_ptr(const void *a, const void *b) {
    return str_cmp((*(const gguf_kv *const *)a)->key, (*(const gguf_kv *const *)b)->key);
}

static int cmp_tensor_ptr(const void *a, const void *b) {
    return str_cmp((*(const gguf_tensor *const *)a)->name, (*(const gguf_tensor *const *)b)->name);
}

static int cmp_tensor_offset(const void *a, const void *b) {
    uint64_t x = (*(const gguf_tensor *const *)a)->offset, y = (*(const gguf_tensor *const *)b)->offset;
    return x < y ? -1 : x > y;
}

static bool read_header(reader *r, gguf_file *g) {
    const uint8_t *magic;
    snprintf(r->what, sizeof r->what, "header");
    if (!take(r, 4, &magic)) return false;
    if (memcmp(magic, GGUF_MAGIC, 4))
        return fail(r, "not a GGUF file (bad magic %02x %02x %02x %02x)", magic[0], magic[1], magic[2], magic[3]);
    if (!read_u32(r, &g->version)) return false;
    if (g->version == 1) return fail(r, "GGUF version 1 is not supported (only versions 2 and 3)");
    if (g->version != 2 && g->version != 3) {
        if ((g->version & 0xffff) == 0) return fail(r, "big-endian GGUF files are not supported");
        return fail(r, "unsupported GGUF version %u (only versions 2 and 3)", g->version);
    }
    if (!read_u64(r, &g->n_tensors) || !read_u64(r, &g->n_kv)) return false;
    if (g->n_kv > remaining(r) / GGUF_MIN_KV_BYTES)
        return fail(r, "truncated: %llu metadata entries cannot fit in the remaining %llu bytes",
                    (unsigned long long)g->n_kv, (unsigned long long)remaining(r));
    return true;
}

static bool read_metadata(reader *r, gguf_impl *im) {
    gguf_file *g = &im->pub;
    g->kv = xcalloc(g->n_kv, sizeof *g->kv);
    char name[80];
    for (uint64_t i = 0; i < g->n_kv; i++) {
        gguf_kv *kv = &g->kv[i];
        uint32_t type;
        snprintf(r->what, sizeof r->what, "metadata entry %llu", (unsigned long long)i);
        if (!read_str(r, &kv->key)) return false;
        snprintf(r->what, sizeof r->what, "metadata entry %llu ('%s')", (unsigned long long)i, shown(kv->key, name));
        if (memchr(kv->key.ptr, 0, kv->key.len)) return fail(r, "%s: key contains a NUL byte", r->what);
        if (!read_u32(r, &type) || !read_value(r, type, &kv->val, 0)) return false;
    }
    im->kv_by_key = xcalloc(g->n_kv, sizeof *im->kv_by_key);
    for (uint64_t i = 0; i < g->n_kv; i++) im->kv_by_key[i] = &g->kv[i];
    qsort(im->kv_by_key, g->n_kv, sizeof *im->kv_by_key, cmp_kv_ptr);
    for (uint64_t i = 1; i < g->n_kv; i++)
        if (!str_cmp(im->kv_by_key[i - 1]->key, im->kv_by_key[i]->key))
            return fail(r, "duplicate metadata key '%s'", shown(im->kv_by_key[i]->key, name));
    return true;
}

static bool read_alignment(reader *r, gguf_impl *im) {
    const gguf_kv *kv = gguf_find(&im->pub, "general.alignment");
    im->pub.alignment = GGUF_DEFAULT_ALIGNMENT;
    if (!kv) return true;
    if (kv->val.type != GGUF_T_U32)
        return fail(r, "general.alignment has type %s, expected u32", gguf_type_name(kv->val.type));
    uint64_t a = kv->val.u;
    if (a == 0 || (a & (a - 1)))
        return fail(r, "general.alignment %llu is not a nonzero power of two", (unsigned long long)a);
    im->pub.alignment = (uint32_t)a;
    return true;
}

static bool read_tensor_info(reader *r, gguf_tensor *t, uint64_t idx) {
    char name[80];
    snprintf(r->what, sizeof r->what, "tensor info %llu", (unsigned long long)idx);
    if (!read_str(r, &t->name) || !read_u32(r, &t->n_dims)) return false;
    shown(t->name, name);
    if (memchr(t->name.ptr, 0, t->name.len)) return fail(r, "tensor '%s': name contains a NUL byte", name);
    if (t->n_dims < 1 || t->n_dims > GGUF_MAX_DIMS)
        return fail(r, "tensor '%s': n_dims %u out of range 1..%d", name, t->n_dims, GGUF_MAX_DIMS);
    uint64_t n_elems = 1;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) {
        uint64_t ne = 1;
        if (d < t->n_dims && !read_u64(r, &ne)) return false;
        if (ne == 0 || ne > INT64_MAX)
            return fail(r, "tensor '%s': dimension %u is %llu", name, d, (unsigned long long)ne);
        if (mul_overflows(n_elems, ne, &n_elems) || n_elems > INT64_MAX)
            return fail(r, "tensor '%s': element count overflows", name);
        t->ne[d] = (int64_t)ne;
    }
    if (!read_u32(r, &t->type) || !read_u64(r, &t->offset)) return false;
    const quant_info *qi = quant_get_info(t->type);
    if (!qi) return fail(r, "tensor '%s': unknown ggml type id %u", name, t->type);
    size_t row = quant_row_size(t->type, t->ne[0]);
    if (row == 0)
        return fail(r, "tensor '%s': row of %lld elements is not a multiple of the %s block size %d", name,
                    (long long)t->ne[0], qi->name, qi->block_size);
    uint64_t rows = n_elems / (uint64_t)t->ne[0];
    if (mul_overflows(row, rows, &t->nbytes)) return fail(r, "tensor '%s': byte size overflows", name);
    return true;
}

static bool read_tensors(reader *r, gguf_impl *im) {
    gguf_file *g = &im->pub;
    if (g->n_tensors > remaining(r) / GGUF_MIN_TENSOR_INFO_BYTES)
        return fail(r, "truncated: %llu tensor infos cannot fit in the remaining %llu bytes",
                    (unsigned long long)g->n_tensors, (unsigned long long)remaining(r));
    g->tensors = xcalloc(g->n_tensors, sizeof *g->tensors);
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if (!read_tensor_info(r, &g->tensors[i], i)) return false;

    char name[80], other[80];
    if (!align_up(r->pos, g->alignment, &g->data_offset)) return fail(r, "data offset overflows");
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        gguf_tensor *t = &g->tensors[i];
        uint64_t start, end;
        if (t->offset % g->alignment)
            return fail(r, "tensor '%s': data offset %llu is not a multiple of the alignment %u",
                        shown(t->name, name), (unsigned long long)t->offset, g->alignment);
        if (add_overflows(g->data_offset, t->offset, &start) || add_overflows(start, t->nbytes, &end) ||
            end > r->len)
            return fail(r, "truncated: tensor '%s' data (%llu bytes at offset %llu) runs past end of file",
                        shown(t->name, name), (unsigned long long)t->nbytes, (unsigned long long)t->offset);
        t->data = r->buf + start;
    }

    im->tensor_by_name = xcalloc(g->n_tensors, sizeof *im->tensor_by_name);
    for (uint64_t i = 0; i < g->n_tensors; i++) im->tensor_by_name[i] = &g->tensors[i];
    qsort(im->tensor_by_name, g->n_tensors, sizeof *im->tensor_by_name, cmp_tensor_ptr);
    for (uint64_t i = 1; i < g->n_tensors; i++)
        if (!str_cmp(im->tensor_by_name[i - 1]->name, im->tensor_by_name[i]->name))
            return fail(r, "duplicate tensor name '%s'", shown(im->tensor_by_name[i]->name, name));

    /* overlap is checked on a copy of the index sorted by offset */
    const gguf_tensor **by_offset = xmalloc(g->n_tensors * sizeof *by_offset);
    memcpy(by_offset, im->tensor_by_name, g->n_tensors * sizeof *by_offset);
    qsort(by_offset, g->n_tensors, sizeof *by_offset, cmp_tensor_offset);
    bool ok = true;
    for (uint64_t i = 1; i < g->n_tensors && ok; i++)
        if (by_offset[i - 1]->offset + by_offset[i - 1]->nbytes > by_offset[i]->offset)
            ok = fail(r, "tensors '%s' and '%s' overlap", shown(by_offset[i - 1]->name, name),
                      shown(by_offset[i]->name, other));
    free(by_offset);
    return ok;
}

static gguf_file *parse(const uint8_t *buf, size_t len, const char *name, bool mapped) {
    gguf_impl *im = xcalloc(1, sizeof *im);
    im->mapped = mapped;
    gguf_file *g = &im->pub;
    g->path = xstrdup(name);
    g->map = buf;
    g->map_size = len;
    reader r = {.buf = buf, .len = len, .name = g->path};
    if (read_header(&r, g) && read_metadata(&r, im) && read_alignment(&r, im) && read_tensors(&r, im)) return g;
    gguf_close(g);
    return NULL;
}

gguf_file *gguf_open_mem(const void *buf, size_t len, const char *name) {
    return parse(buf, len, name, false);
}

gguf_file *gguf_open(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) { rys_seterr("%s: %s", path, strerror(errno)); return NULL; }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rys_seterr("%s: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        rys_seterr("%s: not a regular file", path);
        close(fd);
        return NULL;
    }
    if (st.st_size == 0) {
        rys_seterr("%s: truncated: empty file, not a GGUF file", path);
        close(fd);
        return NULL;
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int map_errno = errno;
    close(fd);
    if (map == MAP_FAILED) { rys_seterr("%s: mmap: %s", path, strerror(map_errno)); return NULL; }
    return parse(map, (size_t)st.st_size, path, true);
}

void gguf_close(gguf_file *g) {
    if (!g) return;
    gguf_impl *im = (gguf_impl *)g;
    if (g->kv)
        for (uint64_t i = 0; i < g->n_kv; i++) free_value(&g->kv[i].val);
    free(g->kv);
    free(g->tensors);
    free(im->kv_by_key);
    free(im->tensor_by_name);
    if (im->mapped && g->map) munmap((void *)g->map, g->map_size);
    free(g->path);
    free(im);
}

/* ---- lookups ------------------------------------------------------------ */

static int cmp_key_kv(const void *key, const void *elem) {
    return str_cmp(*(const gguf_str *)key, (*(const gguf_kv *const *)elem)->key);
}

static int cmp_key_tensor(const void *key, const void *elem) {
    return str_cmp(*(const gguf_str *)key, (*(const gguf_tensor *const *)elem)->name);
}

const gguf_kv *gguf_find(const gguf_file *g, const char *key) {
    const gguf_impl *im = (const gguf_impl *)g;
    if (!g->n_kv) return NULL;
    gguf_str k = {key, strlen(key)};
    const gguf_kv *const *hit = bsearch(&k, im->kv_by_key, g->n_kv, sizeof *im->kv_by_key, cmp_key_kv);
    return hit ? *hit : NULL;
}

const gguf_tensor *gguf_find_tensor(const gguf_file *g, const char *name) {
    const gguf_impl *im = (const gguf_impl *)g;
    if (!g->n_tensors) return NULL;
    gguf_str k = {name, strlen(name)};
    const gguf_tensor *const *hit =
        bsearch(&k, im->tensor_by_name, g->n_tensors, sizeof *im->tensor_by_name, cmp_key_tensor);
    return hit ? *hit : NULL;
}

static bool is_unsigned(uint32_t t) {
    return t == GGUF_T_U8 || t == GGUF_T_U16 || t == GGUF_T_U32 || t == GGUF_T_U64;
}

static bool is_signed(uint32_t t) {
    return t == GGUF_T_I8 || t == GGUF_T_I16 || t == GGUF_T_I32 || t == GGUF_T_I64;
}

bool gguf_get_u64(const gguf_file *g, const char *key, uint64_t *out) {
    const gguf_kv *kv = gguf_find(g, key);
    if (!kv) return false;
    if (is_unsigned(kv->val.type)) { *out = kv->val.u; return true; }
    if (is_signed(kv->val.type) && kv->val.i >= 0) { *out = (uint64_t)kv->val.i; return true; }
    return false;
}

bool gguf_get_i64(const gguf_file *g, const char *key, int64_t *out) {
    const gguf_kv *kv = gguf_find(g, key);
    if (!kv) return false;
    if (is_signed(kv->val.type)) { *out = kv->val.i; return true; }
    if (is_unsigned(kv->val.type) && kv->val.u <= INT64_MAX) { *out = (int64_t)kv->val.u; return true; }
    return false;
}

bool gguf_get_f64(const gguf_file *g, const char *key, double *out) {
    const gguf_kv *kv = gguf_find(g, key);
    if (!kv) return false;
    uint32_t t = kv->val.type;
    if (t == GGUF_T_F32 || t == GGUF_T_F64) *out = kv->val.f;
    else if (is_signed(t)) *out = (double)kv->val.i;
    else if (is_unsigned(t)) *out = (double)kv->val.u;
    else return false;
    return true;
}

bool gguf_get_bool(const gguf_file *g, const char *key, bool *out) {
    const gguf_kv *kv = gguf_find(g, key);
    if (!kv || kv->val.type != GGUF_T_BOOL) return false;
    *out = kv->val.u != 0;
    return true;
}

char *gguf_get_strdup(const gguf_file *g, const char *key) {
    const gguf_kv *kv = gguf_find(g, key);
    if (!kv || kv->val.type != GGUF_T_STRING) return NULL;
    char *s = xmalloc(kv->val.s.len + 1);
    if (kv->val.s.len) memcpy(s, kv->val.s.ptr, kv->val.s.len);
    s[kv->val.s.len] = 0;
    return s;
}

/* Element i of a numeric array as a value of the element type. */
static bool arr_elem(const gguf_value *arr, uint64_t i, gguf_value *out) {
    if (arr->type != GGUF_T_ARRAY || i >= arr->arr.n) return false;
    size_t es = scalar_size(arr->arr.type);
    if (!es) return false;
    out->type = arr->arr.type;
    load_scalar(arr->arr.type, (const uint8_t *)arr->arr.raw + i * es, out);
    return true;
}

int64_t gguf_arr_i64(const gguf_value *arr, uint64_t i) {
    gguf_value v;
    if (!arr_elem(arr, i, &v)) return 0;
    if (is_signed(v.type)) return v.i;
    if (v.type == GGUF_T_F32 || v.type == GGUF_T_F64) {
        /* saturate: converting an out-of-range float to an integer is undefined */
        if (!(v.f == v.f)) return 0;
        if (v.f >= 0x1p63) return INT64_MAX;
        if (v.f < -0x1p63) return INT64_MIN;
        return (int64_t)v.f;
    }
    return (int64_t)v.u;
}

double gguf_arr_f64(const gguf_value *arr, uint64_t i) {
    gguf_value v;
    if (!arr_elem(arr, i, &v)) return 0;
    if (is_signed(v.type)) return (double)v.i;
    if (v.type == GGUF_T_F32 || v.type == GGUF_T_F64) return v.f;
    return (double)v.u;
}

/* ---- writer ------------------------------------------------------------- */

typedef struct {
    uint8_t *p;
    size_t n, cap;
} bytes;

static void put(bytes *b, const void *src, size_t n) {
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n) cap *= 2;
        b->p = xrealloc(b->p, cap);
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, src, n);
    b->n += n;
}

static void put_u32(bytes *b, uint32_t v) { put(b, &v, 4); }
static void put_u64(bytes *b, uint64_t v) { put(b, &v, 8); }
static void put_str(bytes *b, const char *s, uint64_t n) { put_u64(b, n); put(b, s, n); }

typedef struct {
    char *key;
    bytes value;            /* type tag and payload, encoded as in the file */
} writer_kv;

typedef struct {
    char *name;
    uint32_t type, n_dims;
    int64_t ne[GGUF_MAX_DIMS];
    const void *data;
    uint64_t nbytes, offset;
} writer_tensor;

struct gguf_writer {
    uint32_t alignment;
    writer_kv *kv;
    size_t n_kv, cap_kv;
    writer_tensor *tensors;
    size_t n_tensors, cap_tensors;
    char error[400];        /* first misuse, reported by gguf_writer_write */
    void (*on_tensor)(void *ctx, uint64_t done, uint64_t total);
    void *on_tensor_ctx;
};

static void writer_error(gguf_writer *w, const char *fmt, ...) RYS_PRINTF(2, 3);
static void writer_error(gguf_writer *w, const char *fmt, ...) {
    if (w->error[0]) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->error, sizeof w->error, fmt, ap);
    va_end(ap);
}

gguf_writer *gguf_writer_new(uint32_t alignment) {
    gguf_writer *w = xcalloc(1, sizeof *w);
    w->alignment = alignment ? alignment : GGUF_DEFAULT_ALIGNMENT;
    if (w->alignment & (w->alignment - 1)) writer_error(w, "alignment %u is not a power of two", alignment);
    return w;
}

void gguf_writer_free(gguf_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kv[i].key);
        free(w->kv[i].value.p);
    }
    for (size_t i = 0; i < w->n_tensors; i++) free(w->tensors[i].name);
    free(w->kv);
    free(w->tensors);
    free(w);
}

/* Takes ownership of value; a key set twice keeps its first position. */
static void writer_set(gguf_writer *w, const char *key, bytes value) {
    if (!key) {
        writer_error(w, "metadata key is NULL");
        free(value.p);
        return;
    }
    for (size_t i = 0; i < w->n_kv; i++)
        if (!strcmp(w->kv[i].key, key)) {
            free(w->kv[i].value.p);
            w->kv[i].value = value;
            return;
        }
    if (w->n_kv == w->cap_kv) {
        w->cap_kv = w->cap_kv ? 2 * w->cap_kv : 16;
        w->kv = xrealloc(w->kv, w->cap_kv * sizeof *w->kv);
    }
    w->kv[w->n_kv++] = (writer_kv){xstrdup(key), value};
}

static void set_scalar(gguf_writer *w, const char *key, uint32_t type, const void *v) {
    bytes b = {0};
    put_u32(&b, type);
    put(&b, v, scalar_size(type));
    writer_set(w, key, b);
}

void gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v) { set_scalar(w, key, GGUF_T_U32, &v); }
void gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v) { set_scalar(w, key, GGUF_T_I32, &v); }
void gguf_writer_set_u64(gguf_writer *w, const char *key, uint64_t v) { set_scalar(w, key, GGUF_T_U64, &v); }
void gguf_writer_set_f32(gguf_writer *w, const char *key, float v) { set_scalar(w, key, GGUF_T_F32, &v); }

void gguf_writer_set_bool(gguf_writer *w, const char *key, bool v) {
    uint8_t b = v;
    set_scalar(w, key, GGUF_T_BOOL, &b);
}

void gguf_writer_set_str(gguf_writer *w, const char *key, const char *v) {
    if (!v) { writer_error(w, "%s: string value is NULL", key ? key : "(null)"); return; }
    bytes b = {0};
    put_u32(&b, GGUF_T_STRING);
    put_str(&b, v, strlen(v));
    writer_set(w, key, b);
}

static void set_numeric_array(gguf_writer *w, const char *key, uint32_t et, const void *v, uint64_t n) {
    if (!v && n) { writer_error(w, "%s: array data is NULL", key ? key : "(null)"); return; }
    bytes b = {0};
    put_u32(&b, GGUF_T_ARRAY);
    put_u32(&b, et);
    put_u64(&b, n);
    put(&b, v, n * scalar_size(et));
    writer_set(w, key, b);
}

void gguf_writer_set_arr_i32(gguf_writer *w, const char *key, const int32_t *v, uint64_t n) {
    set_numeric_array(w, key, GGUF_T_I32, v, n);
}

void gguf_writer_set_arr_f32(gguf_writer *w, const char *key, const float *v, uint64_t n) {
    set_numeric_array(w, key, GGUF_T_F32, v, n);
}

void gguf_writer_set_arr_str(gguf_writer *w, const char *key, const char *const *v, uint64_t n) {
    if (!v && n) { writer_error(w, "%s: array data is NULL", key ? key : "(null)"); return; }
    bytes b = {0};
    put_u32(&b, GGUF_T_ARRAY);
    put_u32(&b, GGUF_T_STRING);
    put_u64(&b, n);
    for (uint64_t i = 0; i < n; i++) put_str(&b, v[i] ? v[i] : "", v[i] ? strlen(v[i]) : 0);
    writer_set(w, key, b);
}

/* The value without its type tag, as the file holds it. */
static void encode_payload(bytes *b, const gguf_value *v) {
    uint8_t tmp[8];
    switch (v->type) {
    case GGUF_T_STRING: put_str(b, v->s.ptr, v->s.len); return;
    case GGUF_T_ARRAY: {
        put_u32(b, v->arr.type);
        put_u64(b, v->arr.n);
        if (v->arr.type == GGUF_T_STRING)
            for (uint64_t i = 0; i < v->arr.n; i++) put_str(b, v->arr.strs[i].ptr, v->arr.strs[i].len);
        else if (v->arr.type == GGUF_T_ARRAY)
            for (uint64_t i = 0; i < v->arr.n; i++) encode_payload(b, &v->arr.items[i]);
        else
            put(b, v->arr.raw, v->arr.n * scalar_size(v->arr.type));
        return;
    }
    case GGUF_T_F32: { float f = (float)v->f; put(b, &f, 4); return; }
    case GGUF_T_F64: put(b, &v->f, 8); return;
    default:
        /* integers are stored little-endian in the low bytes of u / i alike */
        memcpy(tmp, &v->u, 8);
        put(b, tmp, scalar_size(v->type));
    }
}

void gguf_writer_copy_kv(gguf_writer *w, const gguf_kv *kv, const char *new_key) {
    if (kv->val.type >= GGUF_T_COUNT) { writer_error(w, "metadata value type %u is unknown", kv->val.type); return; }
    bytes b = {0};
    put_u32(&b, kv->val.type);
    encode_payload(&b, &kv->val);
    if (new_key) { writer_set(w, new_key, b); return; }
    char *key = xmalloc(kv->key.len + 1);
    memcpy(key, kv->key.ptr, kv->key.len);
    key[kv->key.len] = 0;
    writer_set(w, key, b);
    free(key);
}

void gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                            const int64_t *ne, const void *data) {
    if (!name) { writer_error(w, "tensor name is NULL"); return; }
    if (n_dims < 1 || n_dims > GGUF_MAX_DIMS) {
        writer_error(w, "tensor '%s': n_dims %u out of range 1..%d", name, n_dims, GGUF_MAX_DIMS);
        return;
    }
    const quant_info *qi = quant_get_info(type);
    if (!qi) { writer_error(w, "tensor '%s': unknown ggml type id %u", name, type); return; }
    for (size_t i = 0; i < w->n_tensors; i++)
        if (!strcmp(w->tensors[i].name, name)) { writer_error(w, "duplicate tensor name '%s'", name); return; }
    writer_tensor t = {.type = type, .n_dims = n_dims, .data = data, .ne = {1, 1, 1, 1}};
    uint64_t rows = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        if (ne[d] <= 0) { writer_error(w, "tensor '%s': dimension %u is %lld", name, d, (long long)ne[d]); return; }
        t.ne[d] = ne[d];
        if (d > 0 && mul_overflows(rows, (uint64_t)ne[d], &rows)) {
            writer_error(w, "tensor '%s': element count overflows", name);
            return;
        }
    }
    size_t row = quant_row_size(type, t.ne[0]);
    if (!row) {
        writer_error(w, "tensor '%s': row of %lld elements is not a multiple of the %s block size %d", name,
                     (long long)t.ne[0], qi->name, qi->block_size);
        return;
    }
    if (mul_overflows(row, rows, &t.nbytes)) { writer_error(w, "tensor '%s': byte size overflows", name); return; }
    if (!data) { writer_error(w, "tensor '%s': data is NULL", name); return; }
    t.name = xstrdup(name);
    if (w->n_tensors == w->cap_tensors) {
        w->cap_tensors = w->cap_tensors ? 2 * w->cap_tensors : 16;
        w->tensors = xrealloc(w->tensors, w->cap_tensors * sizeof *w->tensors);
    }
    w->tensors[w->n_tensors++] = t;
}

void gguf_writer_set_progress(gguf_writer *w, void (*on_tensor)(void *ctx, uint64_t done, uint64_t total),
                              void *ctx) {
    w->on_tensor = on_tensor;
    w->on_tensor_ctx = ctx;
}

static bool write_all(FILE *f, const void *p, size_t n) { return n == 0 || fwrite(p, 1, n, f) == n; }

static bool write_padding(FILE *f, uint64_t pos, uint32_t alignment) {
    static const uint8_t zeros[256];
    uint64_t pad = (alignment - pos % alignment) % alignment;
    while (pad) {
        size_t n = pad < sizeof zeros ? (size_t)pad : sizeof zeros;
        if (!write_all(f, zeros, n)) return false;
        pad -= n;
    }
    return true;
}

int gguf_writer_write(gguf_writer *w, const char *path) {
    if (w->error[0]) { rys_seterr("%s: %s", path, w->error); return -1; }
    /* the file's alignment key must agree with the padding actually written */
    bool has_alignment_key = false;
    for (size_t i = 0; i < w->n_kv; i++) has_alignment_key |= !strcmp(w->kv[i].key, "general.alignment");
    if (has_alignment_key || w->alignment != GGUF_DEFAULT_ALIGNMENT)
        gguf_writer_set_u32(w, "general.alignment", w->alignment);

    bytes head = {0};
    put(&head, GGUF_MAGIC, 4);
    put_u32(&head, 3);
    put_u64(&head, w->n_tensors);
    put_u64(&head, w->n_kv);
    for (size_t i = 0; i < w->n_kv; i++) {
        put_str(&head, w->kv[i].key, strlen(w->kv[i].key));
        put(&head, w->kv[i].value.p, w->kv[i].value.n);
    }
    uint64_t offset = 0;
    for (size_t i = 0; i < w->n_tensors; i++) {
        writer_tensor *t = &w->tensors[i];
        t->offset = offset;
        align_up(offset + t->nbytes, w->alignment, &offset);
        put_str(&head, t->name, strlen(t->name));
        put_u32(&head, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++) put_u64(&head, (uint64_t)t->ne[d]);
        put_u32(&head, t->type);
        put_u64(&head, t->offset);
    }

    size_t tmp_len = strlen(path) + 5;
    char *tmp = xmalloc(tmp_len);
    snprintf(tmp, tmp_len, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    int rc = -1;
    if (!f) {
        rys_seterr("%s: cannot create %s: %s", path, tmp, strerror(errno));
        goto out;
    }
    bool ok = write_all(f, head.p, head.n) && write_padding(f, head.n, w->alignment);
    uint64_t total = 0, done = 0;
    for (size_t i = 0; i < w->n_tensors; i++) total += w->tensors[i].nbytes;
    for (size_t i = 0; ok && i < w->n_tensors; i++) {
        ok = write_all(f, w->tensors[i].data, w->tensors[i].nbytes) &&
             write_padding(f, w->tensors[i].nbytes, w->alignment);
        done += w->tensors[i].nbytes;
        if (ok && w->on_tensor) w->on_tensor(w->on_tensor_ctx, done, total);
    }
    ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
    int saved_errno = errno;
    if (fclose(f) != 0 && ok) { ok = false; saved_errno = errno; }
    if (ok && rename(tmp, path) != 0) { ok = false; saved_errno = errno; }
    if (!ok) {
        rys_seterr("%s: write failed: %s", path, strerror(saved_errno));
        unlink(tmp);
        goto out;
    }
    rc = 0;
out:
    free(tmp);
    free(head.p);
    return rc;
}
