/* Export: relayered GGUF and Hugging Face outputs checked against the source
 * bytes this test generated itself (a layer along the path must be a byte copy
 * of the source layer), expected paths and metadata worked out by hand, and
 * crafted bad inputs that must fail with a message naming the file and leave
 * nothing behind. tests/ref/check_export.py covers the comparison with the
 * Python gguf / safetensors packages and llama-cpp-python. */
#include "testutil.h"
#include "export/export.h"
#include "export/safetensors.h"
#include "engine/gguf.h"
#include "quant/quant.h"
#include "base/sha256.h"
#include "base/util.h"

#include <string.h>
#include <sys/stat.h>

#define N_LAYERS 4
#define DIM 64
#define VOCAB 512

/* Source weights kept in memory so outputs compare with what was written. */
static float embd[VOCAB * DIM], out_norm[DIM], attn_norm[N_LAYERS][DIM];
static uint8_t attn_q[N_LAYERS][DIM / 32 * 34 * DIM]; /* Q8_0: DIM rows of DIM/32 blocks */

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t next_u32(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

static bool exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

static long file_size(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 ? (long)st.st_size : -1;
}

/* A fake llama with per-layer metadata arrays; extra_layer adds a stray
 * blk.<N_LAYERS> tensor, block_count = 0 omits the key. */
static const char *source_arch = "llama"; /* the architecture write_source names */

static void write_source(const char *path, int block_count, bool extra_layer) {
    for (size_t i = 0; i < VOCAB * DIM; i++) embd[i] = (float)(next_u32() % 1000) / 100.0f;
    for (int i = 0; i < DIM; i++) out_norm[i] = (float)i;
    for (int l = 0; l < N_LAYERS; l++) {
        for (int i = 0; i < DIM; i++) attn_norm[l][i] = (float)(l * 1000 + i);
        for (size_t i = 0; i < sizeof attn_q[l]; i++) attn_q[l][i] = (uint8_t)next_u32();
    }
    gguf_writer *w = gguf_writer_new(0);
    char key[128];
    gguf_writer_set_str(w, "general.architecture", source_arch);
    gguf_writer_set_str(w, "general.name", "export-test");
    snprintf(key, sizeof key, "%s.block_count", source_arch);
    if (block_count) gguf_writer_set_u32(w, key, (uint32_t)block_count);
    snprintf(key, sizeof key, "%s.embedding_length", source_arch);
    gguf_writer_set_u32(w, key, DIM);
    int32_t kv_heads[N_LAYERS] = {1, 2, 3, 4};
    snprintf(key, sizeof key, "%s.attention.head_count_kv", source_arch);
    gguf_writer_set_arr_i32(w, key, kv_heads, N_LAYERS);
    const char *kinds[N_LAYERS] = {"full", "sliding", "sliding", "full"};
    snprintf(key, sizeof key, "%s.attention.layer_kinds", source_arch);
    gguf_writer_set_arr_str(w, key, kinds, N_LAYERS);
    float three[3] = {0.5f, 1.5f, 2.5f};
    snprintf(key, sizeof key, "%s.rope.factors3", source_arch);
    gguf_writer_set_arr_f32(w, key, three, 3);
    const char *tags[N_LAYERS] = {"a", "b", "c", "d"};
    gguf_writer_set_arr_str(w, "general.tags", tags, N_LAYERS);
    gguf_writer_set_str(w, "rys.layer_path", "layers:0");  /* stale: must not survive an export */

    int64_t ne_embd[2] = {DIM, VOCAB}, ne_vec[1] = {DIM}, ne_q[2] = {DIM, DIM};
    gguf_writer_add_tensor(w, "token_embd.weight", QT_F32, 2, ne_embd, embd);
    for (int l = 0; l < N_LAYERS; l++) {
        char n[64];
        snprintf(n, sizeof n, "blk.%d.attn_norm.weight", l);
        gguf_writer_add_tensor(w, n, QT_F32, 1, ne_vec, attn_norm[l]);
        snprintf(n, sizeof n, "blk.%d.attn_q.weight", l);
        gguf_writer_add_tensor(w, n, QT_Q8_0, 2, ne_q, attn_q[l]);
    }
    if (extra_layer) gguf_writer_add_tensor(w, "blk.4.attn_norm.weight", QT_F32, 1, ne_vec, out_norm);
    gguf_writer_add_tensor(w, "output_norm.weight", QT_F32, 1, ne_vec, out_norm);
    assert_int_equal(gguf_writer_write(w, path), 0);
    gguf_writer_free(w);
}

static char *str_of(const gguf_file *g, const char *key) {
    char *s = gguf_get_strdup(g, key);
    assert_non_null(s);
    return s;
}

static void test_materialize_blocks(void **state) {
    (void)state;
    const char *src = test_tmp_path("mat-src.gguf"), *dst = test_tmp_path("mat-dst.gguf");
    write_source(src, N_LAYERS, false);
    export_opts o = {.blocks = "1,3"};
    assert_int_equal(export_gguf(src, dst, &o), 0);
    gguf_file *g = gguf_open(dst);
    assert_non_null(g);
    /* (1,3) on 4 layers: 0..2 then 1..3 */
    const int path[] = {0, 1, 2, 1, 2, 3};
    const int n = 6;
    uint64_t bc;
    assert_true(gguf_get_u64(g, "llama.block_count", &bc));
    assert_int_equal(bc, n);
    assert_int_equal(g->n_tensors, 2 + 2 * n);
    for (int p = 0; p < n; p++) {
        char name[64];
        snprintf(name, sizeof name, "blk.%d.attn_norm.weight", p);
        const gguf_tensor *t = gguf_find_tensor(g, name);
        assert_non_null(t);
        assert_int_equal(t->type, QT_F32);
        assert_int_equal(t->nbytes, sizeof attn_norm[0]);
        assert_memory_equal(t->data, attn_norm[path[p]], sizeof attn_norm[0]);
        snprintf(name, sizeof name, "blk.%d.attn_q.weight", p);
        t = gguf_find_tensor(g, name);
        assert_non_null(t);
        assert_int_equal(t->type, QT_Q8_0);
        assert_int_equal(t->ne[0], DIM);
        assert_int_equal(t->ne[1], DIM);
        assert_int_equal(t->nbytes, sizeof attn_q[0]);
        assert_memory_equal(t->data, attn_q[path[p]], sizeof attn_q[0]);
    }
    assert_null(gguf_find_tensor(g, "blk.6.attn_norm.weight"));
    const gguf_tensor *t = gguf_find_tensor(g, "token_embd.weight");
    assert_non_null(t);
    assert_memory_equal(t->data, embd, sizeof embd);
    t = gguf_find_tensor(g, "output_norm.weight");
    assert_non_null(t);
    assert_memory_equal(t->data, out_norm, sizeof out_norm);

    /* per-layer arrays follow the path; others stay as they were */
    const gguf_kv *kv = gguf_find(g, "llama.attention.head_count_kv");
    assert_non_null(kv);
    assert_int_equal(kv->val.arr.type, GGUF_T_I32);
    assert_int_equal(kv->val.arr.n, n);
    const int64_t want_kv[] = {1, 2, 3, 2, 3, 4};
    for (int p = 0; p < n; p++) assert_int_equal(gguf_arr_i64(&kv->val, (uint64_t)p), want_kv[p]);
    kv = gguf_find(g, "llama.attention.layer_kinds");
    assert_non_null(kv);
    assert_int_equal(kv->val.arr.n, n);
    const char *want_kinds[] = {"full", "sliding", "sliding", "sliding", "sliding", "full"};
    for (int p = 0; p < n; p++) assert_true(gguf_str_eq(kv->val.arr.strs[p], want_kinds[p]));
    kv = gguf_find(g, "llama.rope.factors3");
    assert_int_equal(kv->val.arr.n, 3);
    assert_true(gguf_arr_f64(&kv->val, 2) == 2.5);
    kv = gguf_find(g, "general.tags");
    assert_int_equal(kv->val.arr.n, N_LAYERS);
    assert_true(gguf_str_eq(kv->val.arr.strs[3], "d"));

    char *s = str_of(g, "rys.layer_path");
    assert_string_equal(s, "layers:0,1,2,1,2,3");
    free(s);
    s = str_of(g, "rys.blocks");
    assert_string_equal(s, "1,3");
    free(s);
    s = str_of(g, "rys.version");
    assert_string_equal(s, RYS_VERSION);
    free(s);
    char hex[65];
    assert_int_equal(sha256_file(src, hex), 0);
    s = str_of(g, "rys.source_sha256");
    assert_string_equal(s, hex);
    free(s);
    /* the path is baked in: nothing left for rys to replay */
    layer_path lp = {0};
    assert_int_equal(export_read_virtual_path(g, &lp), 0);
    gguf_close(g);
    unlink(src);
    unlink(dst);
}

static void test_virtual_round_trip(void **state) {
    (void)state;
    const char *src = test_tmp_path("virt-src.gguf"), *dst = test_tmp_path("virt-dst.gguf");
    write_source(src, N_LAYERS, false);
    export_opts o = {.layers = "0-1,1,2-3", .virtual_path = true};
    assert_int_equal(export_gguf(src, dst, &o), 0);
    long a = file_size(src), b = file_size(dst);
    assert_true(b >= a && (double)(b - a) <= 0.01 * (double)a);
    gguf_file *s = gguf_open(src), *g = gguf_open(dst);
    assert_non_null(g);
    uint64_t bc;
    assert_true(gguf_get_u64(g, "llama.block_count", &bc));
    assert_int_equal(bc, N_LAYERS);
    assert_int_equal(g->n_tensors, s->n_tensors);
    for (uint64_t i = 0; i < s->n_tensors; i++) {
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)s->tensors[i].name.len, s->tensors[i].name.ptr);
        const gguf_tensor *t = gguf_find_tensor(g, name);
        assert_non_null(t);
        assert_int_equal(t->nbytes, s->tensors[i].nbytes);
        assert_memory_equal(t->data, s->tensors[i].data, t->nbytes);
    }
    assert_null(gguf_find(g, "rys.blocks"));
    layer_path lp = {0};
    assert_int_equal(export_read_virtual_path(g, &lp), 1);
    const int want[] = {0, 1, 1, 2, 3};
    assert_int_equal(lp.n, 5);
    assert_int_equal(lp.n_model, N_LAYERS);
    assert_memory_equal(lp.layers, want, sizeof want);
    path_free(&lp);
    /* a hand-written key without rys.export_kind also counts as a path to run */
    assert_int_equal(export_read_virtual_path(s, &lp), 1);
    assert_int_equal(lp.n, 1);
    path_free(&lp);
    gguf_close(s);
    gguf_close(g);
    unlink(src);
    unlink(dst);
}

/* A minimal GGUF with only metadata: architecture, block_count 4 and, when
 * given, a rys.layer_path string or integer. */
static gguf_file *virtual_file(const char *tag, const char *path_str, bool as_int) {
    const char *p = test_tmp_path(tag);
    gguf_writer *w = gguf_writer_new(0);
    gguf_writer_set_str(w, "general.architecture", "llama");
    gguf_writer_set_u32(w, "llama.block_count", 4);
    if (as_int) gguf_writer_set_u32(w, "rys.layer_path", 3);
    else if (path_str) gguf_writer_set_str(w, "rys.layer_path", path_str);
    float x[32] = {0};
    int64_t ne[1] = {32};
    gguf_writer_add_tensor(w, "output_norm.weight", QT_F32, 1, ne, x);
    assert_int_equal(gguf_writer_write(w, p), 0);
    gguf_writer_free(w);
    gguf_file *g = gguf_open(p);
    assert_non_null(g);
    unlink(p);
    return g;
}

static void test_read_virtual_path_bad(void **state) {
    (void)state;
    layer_path lp = {0};
    gguf_file *g = virtual_file("vp-none.gguf", NULL, false);
    assert_int_equal(export_read_virtual_path(g, &lp), 0);
    gguf_close(g);
    g = virtual_file("vp-ok.gguf", "layers:0,1,2,3,3", false);
    assert_int_equal(export_read_virtual_path(g, &lp), 1);
    assert_int_equal(lp.n, 5);
    assert_int_equal(lp.layers[4], 3);
    path_free(&lp);
    gguf_close(g);
    const char *bad[] = {"layers:0,4", "0,1,2", "layers:", "layers:0,,1", "layers:x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        g = virtual_file("vp-bad.gguf", bad[i], false);
        assert_int_equal(export_read_virtual_path(g, &lp), -1);
        assert_non_null(strstr(rys_lasterr(), "rys.layer_path"));
        gguf_close(g);
    }
    g = virtual_file("vp-int.gguf", NULL, true);
    assert_int_equal(export_read_virtual_path(g, &lp), -1);
    gguf_close(g);
}

static void expect_gguf_failure(const char *src, const char *dst, const export_opts *o, const char *needle) {
    assert_int_equal(export_gguf(src, dst, o), -1);
    const char *e = rys_lasterr();
    assert_null(strchr(e, '\n'));
    assert_non_null(strstr(e, needle));
    assert_false(exists(dst));
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s.tmp", dst);
    assert_false(exists(tmp));
}

/* gemma3 files carry no per-layer attention kinds: a materialized copy may
 * only put a layer at a position of its own kind (every sixth is global). */
static void test_gemma3_layer_kinds(void **state) {
    (void)state;
    const char *src = test_tmp_path("g3-src.gguf"), *dst = test_tmp_path("g3-dst.gguf");
    source_arch = "gemma3";
    write_source(src, N_LAYERS, false);
    source_arch = "llama";
    export_opts shifted = {.blocks = "1,3", .progress = false};     /* 0,1,2,1,2,3: layer 3 lands on global 5 */
    expect_gguf_failure(src, dst, &shifted, "puts layer 3 (sliding-window) at position 5 (global)");
    export_opts virt = {.blocks = "1,3", .virtual_path = true};     /* rys keeps each layer's own kind */
    assert_int_equal(export_gguf(src, dst, &virt), 0);
    unlink(dst);
    export_opts kept = {.layers = "0-3,0-0"};                       /* five positions, all sliding-window */
    assert_int_equal(export_gguf(src, dst, &kept), 0);
    unlink(dst);
    unlink(src);
}

static void test_gguf_bad_inputs(void **state) {
    (void)state;
    const char *src = test_tmp_path("bad-src.gguf"), *dst = test_tmp_path("bad-dst.gguf");
    write_source(src, N_LAYERS, false);
    export_opts o = {.blocks = "1,9"};
    expect_gguf_failure(src, dst, &o, "past the model's 4 layers");
    assert_non_null(strstr(rys_lasterr(), src));
    o = (export_opts){.layers = "0,4"};
    expect_gguf_failure(src, dst, &o, "out of range");
    o = (export_opts){.blocks = "1,3"};
    assert_int_equal(export_gguf(src, src, &o), -1);
    assert_non_null(strstr(rys_lasterr(), "overwrite the source"));
    assert_true(exists(src));
    expect_gguf_failure(test_tmp_path("no-such.gguf"), dst, &o, "no-such.gguf");
    write_source(src, N_LAYERS, true);
    expect_gguf_failure(src, dst, &o, "past block_count 4");
    write_source(src, 0, false);
    expect_gguf_failure(src, dst, &o, "llama.block_count");
    unlink(src);
}

/* ---- safetensors, assembled by hand per the format description ------------- */

static void write_st(const char *path, const char *header, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    uint64_t len = strlen(header);
    uint8_t l8[8];
    for (int i = 0; i < 8; i++) l8[i] = (uint8_t)(len >> (8 * i));
    fwrite(l8, 1, 8, f);
    fwrite(header, 1, len, f);
    if (n) fwrite(data, 1, n, f);
    fclose(f);
}

static void test_safetensors_read(void **state) {
    (void)state;
    const char *p = test_tmp_path("ok.safetensors");
    float data[6] = {1, 2, 3, 4, 5, 6};
    write_st(p,
             "{\"__metadata__\":{\"format\":\"pt\"},"
             "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[16,24]},"
             "\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}",
             data, sizeof data);
    st_file *f = st_open(p);
    assert_non_null(f);
    assert_int_equal(f->n_tensors, 2);
    assert_string_equal(f->tensors[0].name, "a");   /* file order */
    const st_tensor *b = st_find(f, "b");
    assert_non_null(b);
    assert_string_equal(b->dtype, "F32");
    assert_int_equal(b->n_dims, 1);
    assert_int_equal(b->shape[0], 2);
    assert_int_equal(b->nbytes, 8);
    assert_memory_equal(b->data, data + 4, 8);
    assert_string_equal(json_string_value(json_object_get(f->metadata, "format")), "pt");
    st_close(f);
    unlink(p);
}

static void test_safetensors_bad(void **state) {
    (void)state;
    static const struct { const char *header, *needle; } cases[] = {
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,32]}}", "outside"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}", "needs 12"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", "overlap"},
        {"{\"a\":{\"dtype\":\"Q9\",\"shape\":[2],\"data_offsets\":[0,8]}}", "unknown dtype"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", "shape"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", "data_offsets"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", "outside"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", "JSON"},
        {"[1,2]", "not a JSON object"},
        {"{\"__metadata__\":{\"x\":1}}", "__metadata__"},
        {"{nope", "JSON"},
    };
    const char *p = test_tmp_path("bad.safetensors");
    uint8_t data[16] = {0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_st(p, cases[i].header, data, sizeof data);
        st_file *f = st_open(p);
        if (f) fail_msg("case %zu accepted: %s", i, cases[i].header);
        if (!strstr(rys_lasterr(), cases[i].needle) || !strstr(rys_lasterr(), p))
            fail_msg("case %zu: message '%s' lacks '%s'", i, rys_lasterr(), cases[i].needle);
    }
    /* header length larger than the file */
    FILE *f = fopen(p, "wb");
    uint8_t l8[8] = {0xff, 0xff, 0, 0, 0, 0, 0, 0};
    fwrite(l8, 1, 8, f);
    fwrite("{}", 1, 2, f);
    fclose(f);
    assert_null(st_open(p));
    assert_non_null(strstr(rys_lasterr(), "header length"));
    f = fopen(p, "wb");
    fwrite("abc", 1, 3, f);
    fclose(f);
    assert_null(st_open(p));
    unlink(p);
}

/* ---- Hugging Face directories ------------------------------------------------ */

static void write_text(const char *dir, const char *name, const char *text) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Two shards: embed + layers 0,1 in one, layers 2,3 + norm in the other,
 * each tensor 2 floats; prefix names the decoder layers. */
static void write_hf(const char *dir, const char *prefix, const char *index) {
    mkdir(dir, 0755);
    write_text(dir, "config.json", "{\"num_hidden_layers\": 4, \"layer_types\": [\"a\",\"b\",\"c\",\"d\"]}");
    float data[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    char h[1024], p[512];
    snprintf(h, sizeof h,
             "{\"embed.weight\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
             "\"%s0.w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]},"
             "\"%s1.w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[16,24]}}", prefix, prefix);
    snprintf(p, sizeof p, "%s/s1.safetensors", dir);
    write_st(p, h, data, 24);
    snprintf(h, sizeof h,
             "{\"%s2.w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
             "\"%s3.w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]},"
             "\"norm.weight\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[16,24]}}", prefix, prefix);
    snprintf(p, sizeof p, "%s/s2.safetensors", dir);
    write_st(p, h, data, 24);
    write_text(dir, "model.safetensors.index.json", index);
}

static const char good_index[] =
    "{\"weight_map\": {\"embed.weight\": \"s1.safetensors\", \"model.layers.0.w\": \"s1.safetensors\","
    "\"model.layers.1.w\": \"s1.safetensors\", \"model.layers.2.w\": \"s2.safetensors\","
    "\"model.layers.3.w\": \"s2.safetensors\", \"norm.weight\": \"s2.safetensors\"}}";

/* No file or directory whose name starts with base's name remains. */
static void assert_nothing_left(const char *base) {
    const char *slash = strrchr(base, '/');
    char dir[512];
    snprintf(dir, sizeof dir, "%.*s", (int)(slash - base), base);
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strncmp(e->d_name, slash + 1, strlen(slash + 1))) fail_msg("left behind: %s/%s", dir, e->d_name);
    }
    closedir(d);
}

static void expect_hf_failure(const char *src, const char *dst, const export_opts *o, const char *needle) {
    assert_int_equal(export_hf(src, dst, o), -1);
    if (!strstr(rys_lasterr(), needle)) fail_msg("message '%s' lacks '%s'", rys_lasterr(), needle);
    assert_null(strchr(rys_lasterr(), '\n'));
    assert_nothing_left(dst);
}

static void test_hf_good_and_bad(void **state) {
    (void)state;
    const char *src = test_tmp_path("hf-src"), *dst = test_tmp_path("hf-out");
    export_opts o = {.blocks = "1,3"};
    write_hf(src, "model.layers.", good_index);
    assert_int_equal(export_hf(src, dst, &o), 0);
    char p[512];
    snprintf(p, sizeof p, "%s/config.json", dst);
    json_t *c = json_load_file(p, 0, NULL);
    assert_non_null(c);
    assert_int_equal(json_integer_value(json_object_get(c, "num_hidden_layers")), 6);
    const char *want_types[] = {"a", "b", "c", "b", "c", "d"};
    json_t *lt = json_object_get(c, "layer_types");
    assert_int_equal(json_array_size(lt), 6);
    for (int i = 0; i < 6; i++) assert_string_equal(json_string_value(json_array_get(lt, (size_t)i)), want_types[i]);
    json_decref(c);
    snprintf(p, sizeof p, "%s/rys_export_manifest.json", dst);
    assert_true(exists(p));
    test_remove_dir(dst);

    /* an existing non-empty destination is refused, untouched */
    mkdir(dst, 0755);
    write_text(dst, "keep", "x");
    assert_int_equal(export_hf(src, dst, &o), -1);
    assert_non_null(strstr(rys_lasterr(), "not an empty directory"));
    snprintf(p, sizeof p, "%s/keep", dst);
    assert_true(exists(p));
    test_remove_dir(dst);

    o = (export_opts){.blocks = "2,7"};
    expect_hf_failure(src, dst, &o, "past the model's 4 layers");
    o = (export_opts){.blocks = "1,3"};

    test_remove_dir(src);
    write_hf(src, "model.layers.", "{\"weight_map\": {\"embed.weight\": \"s1.safetensors\", \"x\": \"s9.safetensors\"}}");
    expect_hf_failure(src, dst, &o, "s9.safetensors: missing shard");
    test_remove_dir(src);
    write_hf(src, "model.layers.",
             "{\"weight_map\": {\"embed.weight\": \"s1.safetensors\", \"model.layers.0.w\": \"s2.safetensors\"}}");
    expect_hf_failure(src, dst, &o, "model.layers.0.w' is not in s2.safetensors");
    test_remove_dir(src);
    write_hf(src, "model.layers.", "{\"weight_map\": {\"embed.weight\": \"s1.safetensors\"}}");
    expect_hf_failure(src, dst, &o, "is not mapped to it by the index");
    test_remove_dir(src);
    write_hf(src, "model.layers.", "{\"weight_map\": {\"embed.weight\": \"../s1.safetensors\"}}");
    expect_hf_failure(src, dst, &o, "not a plain file name");
    test_remove_dir(src);
    write_hf(src, "decoder.blocks.",
             "{\"weight_map\": {\"embed.weight\": \"s1.safetensors\", \"decoder.blocks.0.w\": \"s1.safetensors\","
             "\"decoder.blocks.1.w\": \"s1.safetensors\", \"decoder.blocks.2.w\": \"s2.safetensors\","
             "\"decoder.blocks.3.w\": \"s2.safetensors\", \"norm.weight\": \"s2.safetensors\"}}");
    expect_hf_failure(src, dst, &o, "unknown tensor naming scheme");
    test_remove_dir(src);
    write_hf(src, "model.layers.", good_index);
    snprintf(p, sizeof p, "%s/s2.safetensors", src);
    write_st(p, "{\"model.layers.2.w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,99]}}", "abcdefgh", 8);
    expect_hf_failure(src, dst, &o, "s2.safetensors: tensor 'model.layers.2.w'");
    test_remove_dir(src);
    write_hf(src, "model.layers.", good_index);
    write_text(src, "config.json", "{\"hidden_size\": 4}");
    expect_hf_failure(src, dst, &o, "config.json: no usable num_hidden_layers");
    test_remove_dir(src);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_materialize_blocks),
        cmocka_unit_test(test_virtual_round_trip),
        cmocka_unit_test(test_read_virtual_path_bad),
        cmocka_unit_test(test_gemma3_layer_kinds), cmocka_unit_test(test_gguf_bad_inputs),
        cmocka_unit_test(test_safetensors_read),
        cmocka_unit_test(test_safetensors_bad),
        cmocka_unit_test(test_hf_good_and_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
