/* libFuzzer target for the GGUF reader: every input must either be refused
 * with a one-line "<name>: <problem>" message or open into views that stay
 * inside the buffer; accepted inputs go through the writer and back, which
 * must reproduce the same metadata count and tensor bytes. */
#include "engine/gguf.h"
#include "base/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *scratch_path(void) {
    static char path[128];
    if (!path[0]) snprintf(path, sizeof path, "/tmp/rys-fuzz-gguf-%d.gguf", (int)getpid());
    return path;
}

/* Reads every byte a consumer could read, so ASan sees any view past the buffer. */
static unsigned touch(const gguf_file *g) {
    unsigned sum = 0;
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const gguf_kv *kv = &g->kv[i];
        char key[256];
        if (kv->key.len < sizeof key) {
            memcpy(key, kv->key.ptr, kv->key.len);
            key[kv->key.len] = 0;
            if (gguf_find(g, key) != kv) abort();
            char *s = gguf_get_strdup(g, key);
            free(s);
        }
        if (kv->val.type == GGUF_T_STRING && kv->val.s.len) sum += (unsigned char)kv->val.s.ptr[kv->val.s.len - 1];
        if (kv->val.type == GGUF_T_ARRAY) {
            for (uint64_t k = 0; k < kv->val.arr.n && k < 64; k++) {
                if (kv->val.arr.strs && kv->val.arr.strs[k].len)
                    sum += (unsigned char)kv->val.arr.strs[k].ptr[kv->val.arr.strs[k].len - 1];
                sum += (unsigned)gguf_arr_i64(&kv->val, k);
            }
        }
    }
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const gguf_tensor *t = &g->tensors[i];
        const uint8_t *d = t->data;
        sum += d[0] + d[t->nbytes - 1];
    }
    return sum;
}

static void round_trip(const gguf_file *g) {
    gguf_writer *w = gguf_writer_new(g->alignment);
    for (uint64_t i = 0; i < g->n_kv; i++) gguf_writer_copy_kv(w, &g->kv[i], NULL);
    char name[256];
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const gguf_tensor *t = &g->tensors[i];
        snprintf(name, sizeof name, "%.*s", (int)(t->name.len < 255 ? t->name.len : 255), t->name.ptr);
        gguf_writer_add_tensor(w, name, t->type, t->n_dims, t->ne, t->data);
    }
    const char *path = scratch_path();
    int rc = gguf_writer_write(w, path);
    gguf_writer_free(w);
    /* names longer than the copy buffer may collide after shortening */
    if (rc != 0) {
        if (strstr(rys_lasterr(), "duplicate tensor name")) return;
        fprintf(stderr, "writer refused a file the reader accepted: %s\n", rys_lasterr());
        abort();
    }
    gguf_file *h = gguf_open(path);
    if (!h) { fprintf(stderr, "reader refused the writer's output: %s\n", rys_lasterr()); abort(); }
    bool has_alignment_key = gguf_find(g, "general.alignment") != NULL;
    uint64_t want_kv = g->n_kv + (!has_alignment_key && g->alignment != 32);
    if (h->n_kv != want_kv || h->n_tensors != g->n_tensors || h->alignment != g->alignment) abort();
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if (h->tensors[i].nbytes != g->tensors[i].nbytes ||
            memcmp(h->tensors[i].data, g->tensors[i].data, g->tensors[i].nbytes))
            abort();
    gguf_close(h);
    unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    gguf_file *g = gguf_open_mem(data, size, "fuzz.gguf");
    if (!g) {
        const char *e = rys_lasterr();
        if (strncmp(e, "fuzz.gguf: ", 11) || strchr(e, '\n')) {
            fprintf(stderr, "bad error message: %s\n", e);
            abort();
        }
        return 0;
    }
    volatile unsigned sink = touch(g);
    (void)sink;
    round_trip(g);
    gguf_close(g);
    return 0;
}
