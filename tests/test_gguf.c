/* GGUF reader and writer against files assembled byte by byte here from the
 * format specification (the independent reference), plus a table of crafted
 * bad files that must each be refused with a one-line message naming the file.
 * tests/ref/check_gguf.py covers the comparison with the Python gguf package. */
#include "testutil.h"
#include "engine/gguf.h"
#include "quant/quant.h"
#include "base/util.h"

#include <math.h>
#include <string.h>

/* ---- a byte builder that encodes GGUF by hand, per the spec ----------------- */

typedef struct {
    uint8_t *p;
    size_t n, cap;
} buf;

static void b_raw(buf *b, const void *src, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}

static void b_u8(buf *b, uint8_t v) { b_raw(b, &v, 1); }
static void b_u32(buf *b, uint32_t v) {
    uint8_t x[4] = {v, v >> 8, v >> 16, v >> 24};
    b_raw(b, x, 4);
}
static void b_u64(buf *b, uint64_t v) {
    b_u32(b, (uint32_t)v);
    b_u32(b, (uint32_t)(v >> 32));
}
static void b_f32(buf *b, float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    b_u32(b, u);
}
static void b_str(buf *b, const char *s) {
    b_u64(b, strlen(s));
    b_raw(b, s, strlen(s));
}
static void b_pad(buf *b, size_t alignment) {
    while (b->n % alignment) b_u8(b, 0);
}
static void patch_u32(buf *b, size_t at, uint32_t v) {
    uint8_t x[4] = {v, v >> 8, v >> 16, v >> 24};
    memcpy(b->p + at, x, 4);
}
static void patch_u64(buf *b, size_t at, uint64_t v) {
    patch_u32(b, at, (uint32_t)v);
    patch_u32(b, at + 4, (uint32_t)(v >> 32));
}

/* Where the fields that the bad-file table corrupts live in the base file. */
typedef struct {
    size_t version, n_tensors, n_kv;
    size_t align_type, align_value;
    size_t key_bb_name;          /* first byte of "key.bb" */
    size_t key_aa_strlen;        /* length of the string value of key.aa */
    size_t key_aa_type;
    size_t strarr_count, strarr_elem_type, nested_count, nested_inner_count;
    size_t t0_ndims, t0_dim0, t0_type, t0_offset;
    size_t t1_name, t1_ndims, t1_dim0, t1_type, t1_offset;
    size_t data;                 /* start of the data section */
} base_layout;

static const float base_t0[8] = {1, 2, 3, 4, -1, -2, -3, 0.5f};

/* Q8_0 block: fp16 scale then 32 int8 */
static void q8_0_block(uint8_t out[34]) {
    out[0] = 0x00;
    out[1] = 0x3c;  /* fp16 1.0 */
    for (int i = 0; i < 32; i++) out[2 + i] = (uint8_t)(i - 16);
}

/* A valid v3 file with five keys (scalar, string, string array, f32 array,
 * nested array) and two tensors; the last tensor's data ends the file, so
 * cutting any byte makes it invalid. */
static buf base_file(base_layout *L) {
    buf b = {0};
    b_raw(&b, "GGUF", 4);
    L->version = b.n; b_u32(&b, 3);
    L->n_tensors = b.n; b_u64(&b, 2);
    L->n_kv = b.n; b_u64(&b, 5);

    b_str(&b, "general.alignment");
    L->align_type = b.n; b_u32(&b, GGUF_T_U32);
    L->align_value = b.n; b_u32(&b, 32);

    b_str(&b, "key.aa");
    L->key_aa_type = b.n; b_u32(&b, GGUF_T_STRING);
    L->key_aa_strlen = b.n; b_str(&b, "hello");

    L->key_bb_name = b.n + 8; b_str(&b, "key.bb");
    b_u32(&b, GGUF_T_ARRAY);
    L->strarr_elem_type = b.n; b_u32(&b, GGUF_T_STRING);
    L->strarr_count = b.n; b_u64(&b, 2);
    b_str(&b, "x");
    b_str(&b, "yz");

    b_str(&b, "key.cc");
    b_u32(&b, GGUF_T_ARRAY);
    b_u32(&b, GGUF_T_F32);
    b_u64(&b, 3);
    b_f32(&b, 0.5f); b_f32(&b, -2.0f); b_f32(&b, 1e10f);

    b_str(&b, "key.dd");        /* [[1, 2], [3]] as arrays of i32 */
    b_u32(&b, GGUF_T_ARRAY);
    b_u32(&b, GGUF_T_ARRAY);
    L->nested_count = b.n; b_u64(&b, 2);
    b_u32(&b, GGUF_T_I32);
    L->nested_inner_count = b.n; b_u64(&b, 2);
    b_u32(&b, 1); b_u32(&b, 2);
    b_u32(&b, GGUF_T_I32);
    b_u64(&b, 1);
    b_u32(&b, 3);

    b_str(&b, "t0.weight");
    L->t0_ndims = b.n; b_u32(&b, 2);
    L->t0_dim0 = b.n; b_u64(&b, 4); b_u64(&b, 2);
    L->t0_type = b.n; b_u32(&b, QT_F32);
    L->t0_offset = b.n; b_u64(&b, 0);

    L->t1_name = b.n + 8; b_str(&b, "t1.weight");
    L->t1_ndims = b.n; b_u32(&b, 1);
    L->t1_dim0 = b.n; b_u64(&b, 32);
    L->t1_type = b.n; b_u32(&b, QT_Q8_0);
    L->t1_offset = b.n; b_u64(&b, 32);

    b_pad(&b, 32);
    L->data = b.n;
    b_raw(&b, base_t0, sizeof base_t0);
    uint8_t q[34];
    q8_0_block(q);
    b_raw(&b, q, sizeof q);
    return b;
}

/* ---- helpers --------------------------------------------------------------- */

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* Opening from an exactly-sized heap copy lets ASan see any read past the end. */
static gguf_file *open_exact(const uint8_t *p, size_t n, const char *name, uint8_t **copy) {
    *copy = malloc(n ? n : 1);
    if (n) memcpy(*copy, p, n);
    return gguf_open_mem(*copy, n, name);
}

static void expect_refused(const char *what, const uint8_t *p, size_t n, const char *needle) {
    const char *path = test_tmp_path("bad.gguf");
    write_bytes(path, p, n);
    gguf_file *g = gguf_open(path);
    if (g) fail_msg("%s: file accepted, expected an error with '%s'", what, needle);
    const char *e = rys_lasterr();
    if (getenv("RYS_TEST_VERBOSE")) fprintf(stderr, "%-28s %s\n", what, e);
    if (strncmp(e, path, strlen(path)) || e[strlen(path)] != ':')
        fail_msg("%s: error '%s' does not start with the file name", what, e);
    if (!strstr(e, needle)) fail_msg("%s: error '%s' lacks '%s'", what, e, needle);
    if (strchr(e, '\n')) fail_msg("%s: error '%s' spans lines", what, e);
    unlink(path);

    uint8_t *copy;
    g = open_exact(p, n, "mem.gguf", &copy);
    assert_null(g);
    assert_non_null(strstr(rys_lasterr(), "mem.gguf: "));
    free(copy);
}

static void check_base_contents(const gguf_file *g, const base_layout *L) {
    assert_int_equal(g->version, 3);
    assert_int_equal(g->n_kv, 5);
    assert_int_equal(g->n_tensors, 2);
    assert_int_equal(g->alignment, 32);
    assert_int_equal(g->data_offset, L->data);

    char *s = gguf_get_strdup(g, "key.aa");
    assert_string_equal(s, "hello");
    free(s);
    assert_null(gguf_get_strdup(g, "general.alignment"));   /* wrong type */
    assert_null(gguf_find(g, "key.zz"));

    const gguf_kv *bb = gguf_find(g, "key.bb");
    assert_non_null(bb);
    assert_int_equal(bb->val.type, GGUF_T_ARRAY);
    assert_int_equal(bb->val.arr.type, GGUF_T_STRING);
    assert_int_equal(bb->val.arr.n, 2);
    assert_true(gguf_str_eq(bb->val.arr.strs[0], "x"));
    assert_true(gguf_str_eq(bb->val.arr.strs[1], "yz"));

    const gguf_kv *cc = gguf_find(g, "key.cc");
    assert_int_equal(cc->val.arr.type, GGUF_T_F32);
    assert_int_equal(cc->val.arr.n, 3);
    assert_true(gguf_arr_f64(&cc->val, 0) == 0.5);
    assert_true(gguf_arr_f64(&cc->val, 1) == -2.0);
    assert_true(gguf_arr_f64(&cc->val, 2) == (double)1e10f);

    const gguf_kv *dd = gguf_find(g, "key.dd");
    assert_int_equal(dd->val.arr.type, GGUF_T_ARRAY);
    assert_int_equal(dd->val.arr.n, 2);
    const gguf_value *in0 = &dd->val.arr.items[0], *in1 = &dd->val.arr.items[1];
    assert_int_equal(in0->type, GGUF_T_ARRAY);
    assert_int_equal(in0->arr.type, GGUF_T_I32);
    assert_int_equal(in0->arr.n, 2);
    assert_int_equal(gguf_arr_i64(in0, 0), 1);
    assert_int_equal(gguf_arr_i64(in0, 1), 2);
    assert_int_equal(in1->arr.n, 1);
    assert_int_equal(gguf_arr_i64(in1, 0), 3);

    const gguf_tensor *t0 = gguf_find_tensor(g, "t0.weight"), *t1 = gguf_find_tensor(g, "t1.weight");
    assert_non_null(t0);
    assert_non_null(t1);
    assert_null(gguf_find_tensor(g, "t2.weight"));
    assert_int_equal(t0->type, QT_F32);
    assert_int_equal(t0->n_dims, 2);
    assert_int_equal(t0->ne[0], 4);
    assert_int_equal(t0->ne[1], 2);
    assert_int_equal(t0->ne[2], 1);
    assert_int_equal(t0->ne[3], 1);
    assert_int_equal(t0->nbytes, 32);
    assert_memory_equal(t0->data, base_t0, 32);
    assert_int_equal(t1->type, QT_Q8_0);
    assert_int_equal(t1->offset, 32);
    assert_int_equal(t1->nbytes, 34);
    uint8_t q[34];
    q8_0_block(q);
    assert_memory_equal(t1->data, q, 34);
    assert_ptr_equal(t1->data, g->map + L->data + 32);
}

/* ---- tests ---------------------------------------------------------------- */

static void test_read_hand_built(void **s) {
    (void)s;
    base_layout L;
    buf b = base_file(&L);
    const char *path = test_tmp_path("base.gguf");
    write_bytes(path, b.p, b.n);
    gguf_file *g = gguf_open(path);
    if (!g) fail_msg("%s", rys_lasterr());
    check_base_contents(g, &L);
    assert_string_equal(g->path, path);
    gguf_close(g);

    /* version 2 has the same layout */
    patch_u32(&b, L.version, 2);
    uint8_t *copy;
    g = open_exact(b.p, b.n, "v2.gguf", &copy);
    if (!g) fail_msg("%s", rys_lasterr());
    assert_int_equal(g->version, 2);
    gguf_close(g);
    free(copy);
    unlink(path);
    free(b.p);
}

static gguf_kv make_kv(const char *key, gguf_value v) {
    return (gguf_kv){.key = {key, strlen(key)}, .val = v};
}

/* The writer, given the base file's content, must produce the base file's
 * bytes followed by the padding after the last tensor. */
static void test_writer_matches_hand_built(void **s) {
    (void)s;
    base_layout L;
    buf b = base_file(&L);
    gguf_writer *w = gguf_writer_new(32);
    gguf_writer_set_u32(w, "general.alignment", 32);
    gguf_writer_set_str(w, "key.aa", "hello");
    const char *strs[] = {"x", "yz"};
    gguf_writer_set_arr_str(w, "key.bb", strs, 2);
    const float fs[] = {0.5f, -2.0f, 1e10f};
    gguf_writer_set_arr_f32(w, "key.cc", fs, 3);
    const int32_t a0[] = {1, 2}, a1[] = {3};
    gguf_value inner[2] = {
        {.type = GGUF_T_ARRAY, .arr = {.type = GGUF_T_I32, .n = 2, .raw = a0}},
        {.type = GGUF_T_ARRAY, .arr = {.type = GGUF_T_I32, .n = 1, .raw = a1}},
    };
    gguf_kv dd = make_kv("key.dd", (gguf_value){.type = GGUF_T_ARRAY, .arr = {.type = GGUF_T_ARRAY, .n = 2, .items = inner}});
    gguf_writer_copy_kv(w, &dd, NULL);
    const int64_t ne0[] = {4, 2}, ne1[] = {32};
    uint8_t q[34];
    q8_0_block(q);
    gguf_writer_add_tensor(w, "t0.weight", QT_F32, 2, ne0, base_t0);
    gguf_writer_add_tensor(w, "t1.weight", QT_Q8_0, 1, ne1, q);
    const char *path = test_tmp_path("written.gguf");
    if (gguf_writer_write(w, path)) fail_msg("%s", rys_lasterr());
    gguf_writer_free(w);

    size_t n;
    char *got = read_file(path, &n);
    assert_non_null(got);
    b_pad(&b, 32);
    assert_int_equal(n, b.n);
    assert_memory_equal(got, b.p, n);
    free(got);
    /* no temporary file left behind */
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    assert_int_not_equal(access(tmp, F_OK), 0);
    unlink(path);
    free(b.p);
}

/* Every value type, nested arrays three deep, several tensor types: writer,
 * then reader; then copy every key into a second writer after closing the
 * source, which only works if copy_kv copied deeply. */
static void check_all_types(const gguf_file *g, const uint8_t *q4k, const uint16_t *f16) {
    uint64_t u;
    int64_t i;
    double f;
    bool bv;
    const gguf_kv *kv;
    kv = gguf_find(g, "t.u8");   assert_int_equal(kv->val.type, GGUF_T_U8);   assert_int_equal(kv->val.u, 200);
    kv = gguf_find(g, "t.i8");   assert_int_equal(kv->val.type, GGUF_T_I8);   assert_int_equal(kv->val.i, -100);
    kv = gguf_find(g, "t.u16");  assert_int_equal(kv->val.type, GGUF_T_U16);  assert_int_equal(kv->val.u, 60000);
    kv = gguf_find(g, "t.i16");  assert_int_equal(kv->val.type, GGUF_T_I16);  assert_int_equal(kv->val.i, -30000);
    kv = gguf_find(g, "t.u32");  assert_int_equal(kv->val.type, GGUF_T_U32);  assert_int_equal(kv->val.u, 4000000000u);
    kv = gguf_find(g, "t.i32");  assert_int_equal(kv->val.type, GGUF_T_I32);  assert_int_equal(kv->val.i, -2000000000);
    kv = gguf_find(g, "t.u64");  assert_int_equal(kv->val.type, GGUF_T_U64);  assert_true(kv->val.u == UINT64_MAX);
    kv = gguf_find(g, "t.i64");  assert_int_equal(kv->val.type, GGUF_T_I64);  assert_true(kv->val.i == INT64_MIN);
    kv = gguf_find(g, "t.f32");  assert_int_equal(kv->val.type, GGUF_T_F32);  assert_true(kv->val.f == 0.1f);
    kv = gguf_find(g, "t.f64");  assert_int_equal(kv->val.type, GGUF_T_F64);  assert_true(kv->val.f == 0.1);
    kv = gguf_find(g, "t.bool"); assert_int_equal(kv->val.type, GGUF_T_BOOL);
    kv = gguf_find(g, "t.str");  assert_int_equal(kv->val.type, GGUF_T_STRING);
    assert_true(kv->val.s.len == 3 && !memcmp(kv->val.s.ptr, "a\0b", 3));  /* embedded NUL survives */

    /* typed getters: conversions allowed and refused */
    assert_true(gguf_get_u64(g, "t.u64", &u) && u == UINT64_MAX);
    assert_false(gguf_get_i64(g, "t.u64", &i));
    assert_false(gguf_get_u64(g, "t.i8", &u));
    assert_true(gguf_get_i64(g, "t.i8", &i) && i == -100);
    assert_true(gguf_get_u64(g, "t.u16", &u) && u == 60000);
    assert_true(gguf_get_f64(g, "t.i32", &f) && f == -2000000000.0);
    assert_true(gguf_get_f64(g, "t.f32", &f) && f == (double)0.1f);
    assert_false(gguf_get_f64(g, "t.str", &f));
    assert_true(gguf_get_bool(g, "t.bool", &bv) && bv);
    assert_false(gguf_get_bool(g, "t.u8", &bv));
    assert_false(gguf_get_u64(g, "missing", &u));

    kv = gguf_find(g, "t.arr_i32");
    assert_int_equal(kv->val.arr.type, GGUF_T_I32);
    assert_int_equal(kv->val.arr.n, 3);
    assert_int_equal(gguf_arr_i64(&kv->val, 2), -7);
    kv = gguf_find(g, "t.arr_f32");
    assert_true(gguf_arr_f64(&kv->val, 1) == 2.5);
    kv = gguf_find(g, "t.arr_str");
    assert_int_equal(kv->val.arr.n, 3);
    assert_true(gguf_str_eq(kv->val.arr.strs[0], "one"));
    assert_true(gguf_str_eq(kv->val.arr.strs[1], ""));
    assert_true(gguf_str_eq(kv->val.arr.strs[2], "three"));
    kv = gguf_find(g, "t.arr_empty");
    assert_int_equal(kv->val.arr.n, 0);
    kv = gguf_find(g, "t.arr_u64");
    assert_int_equal(kv->val.arr.type, GGUF_T_U64);
    assert_true((uint64_t)gguf_arr_i64(&kv->val, 0) == UINT64_MAX);
    assert_true(gguf_arr_i64(&kv->val, 1) == 5);
    kv = gguf_find(g, "t.arr_bool");
    assert_int_equal(kv->val.arr.type, GGUF_T_BOOL);
    assert_int_equal(gguf_arr_i64(&kv->val, 0), 1);
    assert_int_equal(gguf_arr_i64(&kv->val, 1), 0);

    /* [[["p", "q"]], [], [[]]] : arrays of arrays of arrays of strings */
    kv = gguf_find(g, "t.nested");
    const gguf_value *v = &kv->val;
    assert_int_equal(v->arr.type, GGUF_T_ARRAY);
    assert_int_equal(v->arr.n, 3);
    assert_int_equal(v->arr.items[0].arr.type, GGUF_T_ARRAY);
    assert_int_equal(v->arr.items[0].arr.n, 1);
    const gguf_value *leaf = &v->arr.items[0].arr.items[0];
    assert_int_equal(leaf->arr.type, GGUF_T_STRING);
    assert_int_equal(leaf->arr.n, 2);
    assert_true(gguf_str_eq(leaf->arr.strs[0], "p"));
    assert_true(gguf_str_eq(leaf->arr.strs[1], "q"));
    assert_int_equal(v->arr.items[1].arr.n, 0);
    assert_int_equal(v->arr.items[2].arr.n, 1);
    assert_int_equal(v->arr.items[2].arr.items[0].arr.n, 0);

    const gguf_tensor *t = gguf_find_tensor(g, "q4k");
    assert_int_equal(t->type, QT_Q4_K);
    assert_int_equal(t->ne[0], 512);
    assert_int_equal(t->ne[1], 3);
    assert_int_equal(t->nbytes, 2 * 144 * 3);
    assert_memory_equal(t->data, q4k, t->nbytes);
    t = gguf_find_tensor(g, "f16");
    assert_int_equal(t->type, QT_F16);
    assert_int_equal(t->n_dims, 4);
    assert_int_equal(t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3], 2 * 3 * 1 * 5);
    assert_int_equal(t->nbytes, 60);
    assert_memory_equal(t->data, f16, 60);
    t = gguf_find_tensor(g, "q6k");
    assert_int_equal(t->nbytes, 210);
    for (uint64_t k = 0; k < g->n_tensors; k++) {
        assert_int_equal(g->tensors[k].offset % g->alignment, 0);
        assert_int_equal(((const uint8_t *)g->tensors[k].data - g->map) % g->alignment, 0);
    }
}

static void test_roundtrip_all_types(void **s) {
    (void)s;
    gguf_writer *w = gguf_writer_new(0);
    const struct { const char *key; gguf_value v; } scalars[] = {
        {"t.u8", {.type = GGUF_T_U8, .u = 200}},
        {"t.i8", {.type = GGUF_T_I8, .i = -100}},
        {"t.u16", {.type = GGUF_T_U16, .u = 60000}},
        {"t.i16", {.type = GGUF_T_I16, .i = -30000}},
        {"t.i64", {.type = GGUF_T_I64, .i = INT64_MIN}},
        {"t.f64", {.type = GGUF_T_F64, .f = 0.1}},
        {"t.str", {.type = GGUF_T_STRING, .s = {"a\0b", 3}}},
    };
    for (size_t k = 0; k < sizeof scalars / sizeof scalars[0]; k++) {
        gguf_kv kv = make_kv(scalars[k].key, scalars[k].v);
        gguf_writer_copy_kv(w, &kv, NULL);
    }
    gguf_writer_set_u32(w, "t.u32", 4000000000u);
    gguf_writer_set_i32(w, "t.i32", -2000000000);
    gguf_writer_set_u64(w, "t.u64", UINT64_MAX);
    gguf_writer_set_f32(w, "t.f32", 0.1f);
    gguf_writer_set_bool(w, "t.bool", false);
    gguf_writer_set_bool(w, "t.bool", true);     /* replaces */
    const int32_t ai[] = {1, 0, -7};
    gguf_writer_set_arr_i32(w, "t.arr_i32", ai, 3);
    const float af[] = {1.0f, 2.5f};
    gguf_writer_set_arr_f32(w, "t.arr_f32", af, 2);
    const char *as[] = {"one", "", "three"};
    gguf_writer_set_arr_str(w, "t.arr_str", as, 3);
    gguf_writer_set_arr_i32(w, "t.arr_empty", NULL, 0);
    const uint64_t au[] = {UINT64_MAX, 5};
    gguf_kv kv_u64 = make_kv("t.arr_u64", (gguf_value){.type = GGUF_T_ARRAY, .arr = {.type = GGUF_T_U64, .n = 2, .raw = au}});
    gguf_writer_copy_kv(w, &kv_u64, NULL);
    const uint8_t ab[] = {1, 0};
    gguf_kv kv_b = make_kv("t.arr_bool", (gguf_value){.type = GGUF_T_ARRAY, .arr = {.type = GGUF_T_BOOL, .n = 2, .raw = ab}});
    gguf_writer_copy_kv(w, &kv_b, "t.arr_bool");
    gguf_str pq[] = {{"p", 1}, {"q", 1}};
    gguf_value leaf = {.type = GGUF_T_ARRAY, .arr = {.type = GGUF_T_STRING, .n = 2, .strs = pq}};
    gguf_value empty_leaf = {.type = GGUF_T_ARRAY, .arr = {.type = GGUF_T_STRING, .n = 0}};
    gguf_value mid[3] = {
        {.type = GGUF_T_ARRAY, .arr = {.type = GGUF_T_ARRAY, .n = 1, .items = &leaf}},
        {.type = GGUF_T_ARRAY, .arr = {.type = GGUF_T_ARRAY, .n = 0}},
        {.type = GGUF_T_ARRAY, .arr = {.type = GGUF_T_ARRAY, .n = 1, .items = &empty_leaf}},
    };
    gguf_kv nested = make_kv("ignored", (gguf_value){.type = GGUF_T_ARRAY, .arr = {.type = GGUF_T_ARRAY, .n = 3, .items = mid}});
    gguf_writer_copy_kv(w, &nested, "t.nested");

    uint8_t q4k[2 * 144 * 3], q6k[210];
    uint16_t f16[30];
    for (size_t k = 0; k < sizeof q4k; k++) q4k[k] = (uint8_t)(k * 7 + 1);
    for (size_t k = 0; k < sizeof q6k; k++) q6k[k] = (uint8_t)(k * 3);
    for (size_t k = 0; k < 30; k++) f16[k] = (uint16_t)(0x3c00 + k);
    gguf_writer_add_tensor(w, "q4k", QT_Q4_K, 2, (const int64_t[]){512, 3}, q4k);
    gguf_writer_add_tensor(w, "f16", QT_F16, 4, (const int64_t[]){2, 3, 1, 5}, f16);
    gguf_writer_add_tensor(w, "q6k", QT_Q6_K, 1, (const int64_t[]){256}, q6k);
    const char *p1 = test_tmp_path("all1.gguf"), *p2 = test_tmp_path("all2.gguf");
    if (gguf_writer_write(w, p1)) fail_msg("%s", rys_lasterr());
    gguf_writer_free(w);

    gguf_file *g = gguf_open(p1);
    if (!g) fail_msg("%s", rys_lasterr());
    assert_int_equal(g->version, 3);
    assert_int_equal(g->alignment, 32);
    assert_null(gguf_find(g, "general.alignment"));   /* default alignment needs no key */
    assert_int_equal(g->n_kv, 19);
    check_all_types(g, q4k, f16);

    /* deep copy: the source is closed (unmapped) before the copy is written */
    w = gguf_writer_new(0);
    for (uint64_t k = 0; k < g->n_kv; k++) gguf_writer_copy_kv(w, &g->kv[k], NULL);
    uint8_t *blobs[3];
    for (uint64_t k = 0; k < g->n_tensors; k++) {
        const gguf_tensor *t = &g->tensors[k];
        blobs[k] = malloc(t->nbytes);
        memcpy(blobs[k], t->data, t->nbytes);
        char name[16];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        gguf_writer_add_tensor(w, name, t->type, t->n_dims, t->ne, blobs[k]);
    }
    gguf_close(g);
    if (gguf_writer_write(w, p2)) fail_msg("%s", rys_lasterr());
    gguf_writer_free(w);
    for (int k = 0; k < 3; k++) free(blobs[k]);
    g = gguf_open(p2);
    if (!g) fail_msg("%s", rys_lasterr());
    check_all_types(g, q4k, f16);
    gguf_close(g);
    unlink(p1);
    unlink(p2);
}

static void test_alignment(void **s) {
    (void)s;
    uint8_t data[3 * 34];
    memset(data, 0x11, sizeof data);
    for (uint32_t alignment = 1; alignment <= 256; alignment *= 4) {
        gguf_writer *w = gguf_writer_new(alignment);
        gguf_writer_set_str(w, "general.name", "x");
        gguf_writer_add_tensor(w, "a", QT_Q8_0, 1, (const int64_t[]){32}, data);
        gguf_writer_add_tensor(w, "b", QT_Q8_0, 2, (const int64_t[]){32, 2}, data + 34);
        const char *path = test_tmp_path("align.gguf");
        if (gguf_writer_write(w, path)) fail_msg("%s", rys_lasterr());
        gguf_writer_free(w);
        gguf_file *g = gguf_open(path);
        if (!g) fail_msg("%s", rys_lasterr());
        assert_int_equal(g->alignment, alignment);
        uint64_t a;
        if (alignment == 32) assert_false(gguf_get_u64(g, "general.alignment", &a));
        else assert_true(gguf_get_u64(g, "general.alignment", &a) && a == alignment);
        assert_int_equal(g->data_offset % alignment, 0);
        const gguf_tensor *b = gguf_find_tensor(g, "b");
        /* b starts at a's 34 bytes rounded up to the alignment */
        assert_int_equal(b->offset, (34 + alignment - 1) / alignment * alignment);
        assert_memory_equal(b->data, data + 34, 68);
        gguf_close(g);
        unlink(path);
    }
}

static void test_writer_errors(void **s) {
    (void)s;
    const char *missing = "/nonexistent-dir-rys/out.gguf";
    gguf_writer *w = gguf_writer_new(32);
    gguf_writer_set_u32(w, "k", 1);
    assert_int_equal(gguf_writer_write(w, missing), -1);
    assert_non_null(strstr(rys_lasterr(), missing));
    gguf_writer_free(w);

    const float f[4] = {0};
    w = gguf_writer_new(32);
    gguf_writer_add_tensor(w, "x", QT_F32, 5, (const int64_t[]){1, 1, 1, 1, 1}, f);
    const char *path = test_tmp_path("werr.gguf");
    assert_int_equal(gguf_writer_write(w, path), -1);
    assert_non_null(strstr(rys_lasterr(), "n_dims 5"));
    assert_int_not_equal(access(path, F_OK), 0);
    gguf_writer_free(w);

    w = gguf_writer_new(32);
    gguf_writer_add_tensor(w, "x", QT_Q8_0, 1, (const int64_t[]){33}, f);
    assert_int_equal(gguf_writer_write(w, path), -1);
    assert_non_null(strstr(rys_lasterr(), "block size"));
    gguf_writer_free(w);

    w = gguf_writer_new(32);
    gguf_writer_add_tensor(w, "x", QT_F32, 1, (const int64_t[]){4}, f);
    gguf_writer_add_tensor(w, "x", QT_F32, 1, (const int64_t[]){4}, f);
    assert_int_equal(gguf_writer_write(w, path), -1);
    assert_non_null(strstr(rys_lasterr(), "duplicate tensor name 'x'"));
    gguf_writer_free(w);

    w = gguf_writer_new(32);
    gguf_writer_add_tensor(w, "x", 99, 1, (const int64_t[]){4}, f);
    assert_int_equal(gguf_writer_write(w, path), -1);
    assert_non_null(strstr(rys_lasterr(), "unknown ggml type id 99"));
    gguf_writer_free(w);

    w = gguf_writer_new(24);
    assert_int_equal(gguf_writer_write(w, path), -1);
    assert_non_null(strstr(rys_lasterr(), "power of two"));
    gguf_writer_free(w);
}

/* Every strict prefix of the base file is refused, and names the file. */
static void test_truncated_everywhere(void **s) {
    (void)s;
    base_layout L;
    buf b = base_file(&L);
    for (size_t n = 0; n < b.n; n++) {
        uint8_t *copy;
        gguf_file *g = open_exact(b.p, n, "cut.gguf", &copy);
        if (g) fail_msg("prefix of %zu of %zu bytes accepted", n, b.n);
        const char *e = rys_lasterr();
        if (strncmp(e, "cut.gguf: ", 10)) fail_msg("prefix %zu: error '%s' lacks the file name", n, e);
        if (!strstr(e, "truncated")) fail_msg("prefix %zu: error '%s' does not say truncated", n, e);
        free(copy);
    }
    assert_true(strstr(rys_lasterr(), "tensor 't1.weight' data") != NULL);
    /* the same on disk, at a few offsets, through mmap */
    const char *path = test_tmp_path("cut.gguf");
    const size_t cuts[] = {0, 3, 20, L.key_aa_strlen + 10, L.t1_offset, L.data + 40};
    for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
        write_bytes(path, b.p, cuts[k]);
        assert_null(gguf_open(path));
        assert_non_null(strstr(rys_lasterr(), path));
    }
    unlink(path);
    free(b.p);
}

/* One corruption of the base file: at field (plus skip bytes) write either
 * the text in bytes or value as a little-endian integer of width bytes. */
typedef struct {
    const char *what;
    int field;
    size_t skip;
    const char *bytes;
    int width;
    uint64_t value;
    const char *needle;     /* NULL: "runs past end of file" */
} bad_case;

enum {
    F_MAGIC, F_VERSION, F_N_TENSORS, F_N_KV, F_ALIGN_TYPE, F_ALIGN_VALUE, F_KEY_BB_NAME, F_KEY_AA_STRLEN,
    F_KEY_AA_TYPE, F_STRARR_COUNT, F_STRARR_ELEM_TYPE, F_NESTED_COUNT, F_NESTED_INNER_COUNT, F_T0_NDIMS,
    F_T0_DIM0, F_T0_TYPE, F_T0_OFFSET, F_T1_NAME, F_T1_NDIMS, F_T1_DIM0, F_T1_TYPE, F_T1_OFFSET
};

static size_t field_at(const base_layout *L, int f) {
    const size_t at[] = {0, L->version, L->n_tensors, L->n_kv, L->align_type, L->align_value, L->key_bb_name,
                         L->key_aa_strlen, L->key_aa_type, L->strarr_count, L->strarr_elem_type, L->nested_count,
                         L->nested_inner_count, L->t0_ndims, L->t0_dim0, L->t0_type, L->t0_offset, L->t1_name,
                         L->t1_ndims, L->t1_dim0, L->t1_type, L->t1_offset};
    return at[f];
}

static void test_bad_files(void **s) {
    (void)s;
    const bad_case cases[] = {
        {"bad magic", F_MAGIC, 0, "GGUX", 0, 0, "not a GGUF file (bad magic 47 47 55 58)"},
        {"version 1", F_VERSION, 0, NULL, 4, 1, "version 1 is not supported"},
        {"version 4", F_VERSION, 0, NULL, 4, 4, "unsupported GGUF version 4"},
        {"big-endian", F_VERSION, 0, NULL, 4, 0x03000000, "big-endian"},
        {"2^60 tensors", F_N_TENSORS, 0, NULL, 8, 1ull << 60, "tensor infos cannot fit"},
        {"2^60 keys", F_N_KV, 0, NULL, 8, 1ull << 60, "metadata entries cannot fit"},
        {"all-ones keys", F_N_KV, 0, NULL, 8, UINT64_MAX, "metadata entries cannot fit"},
        {"alignment i32", F_ALIGN_TYPE, 0, NULL, 4, GGUF_T_I32, "general.alignment has type i32"},
        {"alignment 3", F_ALIGN_VALUE, 0, NULL, 4, 3, "general.alignment 3 is not a nonzero power of two"},
        {"alignment 0", F_ALIGN_VALUE, 0, NULL, 4, 0, "general.alignment 0 is not"},
        {"alignment 64", F_ALIGN_VALUE, 0, NULL, 4, 64, "not a multiple of the alignment 64"},
        {"duplicate key", F_KEY_BB_NAME, 4, "aa", 0, 0, "duplicate metadata key 'key.aa'"},
        {"string past end", F_KEY_AA_STRLEN, 0, NULL, 8, 1ull << 40, "truncated: metadata entry 1 ('key.aa')"},
        {"string length ~0", F_KEY_AA_STRLEN, 0, NULL, 8, UINT64_MAX, "runs past end of file"},
        {"unknown value type", F_KEY_AA_TYPE, 0, NULL, 4, 13, "unknown value type 13"},
        {"2^60 strings", F_STRARR_COUNT, 0, NULL, 8, 1ull << 60, "array of 1152921504606846976 string"},
        {"unknown element type", F_STRARR_ELEM_TYPE, 0, NULL, 4, 99, "unknown array element type 99"},
        {"2^62 f32 (bytes overflow)", F_STRARR_ELEM_TYPE, 0, NULL, 4, GGUF_T_F32, NULL},
        {"2^60 nested arrays", F_NESTED_COUNT, 0, NULL, 8, 1ull << 60, "array of 1152921504606846976 array"},
        {"2^61 nested i32", F_NESTED_INNER_COUNT, 0, NULL, 8, 1ull << 61, "runs past end of file"},
        {"n_dims 5", F_T0_NDIMS, 0, NULL, 4, 5, "n_dims 5 out of range"},
        {"n_dims 0", F_T0_NDIMS, 0, NULL, 4, 0, "n_dims 0 out of range"},
        {"zero dim", F_T0_DIM0, 0, NULL, 8, 0, "tensor 't0.weight': dimension 0 is 0"},
        {"dim 2^63", F_T0_DIM0, 0, NULL, 8, 1ull << 63, "dimension 0 is"},
        {"elements overflow", F_T0_DIM0, 0, NULL, 8, 1ull << 62, "overflow"},
        {"unknown tensor type", F_T0_TYPE, 0, NULL, 4, 99, "tensor 't0.weight': unknown ggml type id 99"},
        {"block size", F_T1_DIM0, 0, NULL, 8, 48, "not a multiple of the Q8_0 block size 32"},
        {"misaligned offset", F_T1_OFFSET, 0, NULL, 8, 36, "data offset 36 is not a multiple of the alignment 32"},
        {"offset past end", F_T1_OFFSET, 0, NULL, 8, 1u << 20, "truncated: tensor 't1.weight' data"},
        {"offset overflow", F_T1_OFFSET, 0, NULL, 8, UINT64_MAX - 31, "runs past end of file"},
        {"overlap", F_T1_OFFSET, 0, NULL, 8, 0, "overlap"},
        {"overlap reversed", F_T0_OFFSET, 0, NULL, 8, 32, "overlap"},
        {"duplicate tensor", F_T1_NAME, 1, "0", 0, 0, "duplicate tensor name 't0.weight'"},
        {"n_dims 5 (t1)", F_T1_NDIMS, 0, NULL, 4, 5, "tensor 't1.weight': n_dims 5"},
        {"Q4_K rows", F_T1_TYPE, 0, NULL, 4, QT_Q4_K, "block size 256"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const bad_case *c = &cases[k];
        base_layout L;
        buf b = base_file(&L);
        size_t at = field_at(&L, c->field) + c->skip;
        if (c->bytes) memcpy(b.p + at, c->bytes, strlen(c->bytes));
        else if (c->width == 4) patch_u32(&b, at, (uint32_t)c->value);
        else patch_u64(&b, at, c->value);
        /* with f32 elements, 2^62 of them overflow the byte count */
        if (c->field == F_STRARR_ELEM_TYPE && c->value == GGUF_T_F32) patch_u64(&b, L.strarr_count, 1ull << 62);
        expect_refused(c->what, b.p, b.n, c->needle ? c->needle : "runs past end of file");
        free(b.p);
    }
}

/* Structures the patch table cannot express. */
static void test_bad_structures(void **s) {
    (void)s;
    /* arrays nested deeper than the reader allows */
    buf b = {0};
    b_raw(&b, "GGUF", 4);
    b_u32(&b, 3);
    b_u64(&b, 0);
    b_u64(&b, 1);
    b_str(&b, "deep");
    b_u32(&b, GGUF_T_ARRAY);
    for (int d = 0; d < 40; d++) { b_u32(&b, GGUF_T_ARRAY); b_u64(&b, 1); }
    b_u32(&b, GGUF_T_U8);
    b_u64(&b, 0);
    expect_refused("nesting", b.p, b.n, "nested deeper");
    free(b.p);

    /* an empty file, and a valid file with no tensors (accepted) */
    expect_refused("empty file", (const uint8_t *)"", 0, "truncated");
    b = (buf){0};
    b_raw(&b, "GGUF", 4);
    b_u32(&b, 3);
    b_u64(&b, 0);
    b_u64(&b, 0);
    uint8_t *copy;
    gguf_file *g = open_exact(b.p, b.n, "empty.gguf", &copy);
    if (!g) fail_msg("%s", rys_lasterr());
    assert_int_equal(g->n_kv, 0);
    assert_null(gguf_find(g, "x"));
    assert_null(gguf_find_tensor(g, "x"));
    gguf_close(g);
    free(copy);
    free(b.p);

    /* not a regular file, missing file */
    assert_null(gguf_open("/"));
    assert_non_null(strstr(rys_lasterr(), "/: not a regular file"));
    assert_null(gguf_open("/nonexistent-rys.gguf"));
    assert_non_null(strstr(rys_lasterr(), "/nonexistent-rys.gguf: "));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_hand_built),
        cmocka_unit_test(test_writer_matches_hand_built),
        cmocka_unit_test(test_roundtrip_all_types),
        cmocka_unit_test(test_alignment),
        cmocka_unit_test(test_writer_errors),
        cmocka_unit_test(test_truncated_everywhere),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_bad_structures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
