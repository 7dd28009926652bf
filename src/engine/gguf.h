/* gguf: read, validate and write GGUF files (versions 2 and 3).
 *
 * Why validate everything at the door: GGUF files come from strangers. Every
 * count, length, type id, dimension and offset is checked (with overflow-safe
 * arithmetic) in gguf_open(), so the rest of rys may trust the views it gets.
 * Tensor data and string bytes are never copied: they point into the mmap. */
#ifndef RYS_GGUF_H
#define RYS_GGUF_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>

enum gguf_vtype {
    GGUF_T_U8 = 0, GGUF_T_I8 = 1, GGUF_T_U16 = 2, GGUF_T_I16 = 3, GGUF_T_U32 = 4,
    GGUF_T_I32 = 5, GGUF_T_F32 = 6, GGUF_T_BOOL = 7, GGUF_T_STRING = 8,
    GGUF_T_ARRAY = 9, GGUF_T_U64 = 10, GGUF_T_I64 = 11, GGUF_T_F64 = 12,
    GGUF_T_COUNT
};

/* A string inside the mapped file: NOT NUL-terminated. */
typedef struct { const char *ptr; uint64_t len; } gguf_str;

typedef struct gguf_value gguf_value;
struct gguf_value {
    uint32_t type;                  /* enum gguf_vtype */
    union {
        uint64_t u;                 /* U8..U64, BOOL */
        int64_t i;                  /* I8..I64 */
        double f;                   /* F32, F64 */
        gguf_str s;                 /* STRING */
        struct {
            uint32_t type;          /* element type */
            uint64_t n;
            const void *raw;        /* numeric elements: little-endian, maybe unaligned */
            gguf_str *strs;         /* STRING elements (allocated index, n entries) */
            gguf_value *items;      /* ARRAY elements (nested arrays), n entries */
        } arr;
    };
};

typedef struct {
    gguf_str key;
    gguf_value val;
} gguf_kv;

#define GGUF_MAX_DIMS 4

typedef struct {
    gguf_str name;
    uint32_t type;                  /* ggml type id, see quant/quant.h */
    uint32_t n_dims;
    int64_t ne[GGUF_MAX_DIMS];      /* ne[0] is the contiguous (row) dimension; unused dims = 1 */
    uint64_t offset;                /* relative to the data section */
    uint64_t nbytes;
    const void *data;               /* points into the mapping */
} gguf_tensor;

typedef struct {
    char *path;
    uint32_t version;
    uint64_t n_kv, n_tensors;
    gguf_kv *kv;
    gguf_tensor *tensors;
    uint32_t alignment;
    uint64_t data_offset;           /* file offset of the data section */
    const uint8_t *map;
    size_t map_size;
} gguf_file;

/* Open and fully validate. NULL on failure with rys_lasterr() =
 * "<path>: <problem>". */
gguf_file *gguf_open(const char *path);
/* Same checks over a memory buffer (used by the fuzzer); the buffer must
 * outlive the result. */
gguf_file *gguf_open_mem(const void *buf, size_t len, const char *name);
void gguf_close(gguf_file *g);

/* Metadata lookups; NULL / false when absent or of an incompatible type. */
const gguf_kv *gguf_find(const gguf_file *g, const char *key);
bool gguf_get_u64(const gguf_file *g, const char *key, uint64_t *out); /* any non-negative integer type */
bool gguf_get_i64(const gguf_file *g, const char *key, int64_t *out);  /* any integer type */
bool gguf_get_f64(const gguf_file *g, const char *key, double *out);   /* F32/F64 or integer */
bool gguf_get_bool(const gguf_file *g, const char *key, bool *out);
/* Returns a freshly allocated NUL-terminated copy (caller frees), NULL if absent. */
char *gguf_get_strdup(const gguf_file *g, const char *key);
/* Array accessors: element i of a numeric array as i64 / f64. */
int64_t gguf_arr_i64(const gguf_value *arr, uint64_t i);
double gguf_arr_f64(const gguf_value *arr, uint64_t i);

const gguf_tensor *gguf_find_tensor(const gguf_file *g, const char *name);
bool gguf_str_eq(gguf_str s, const char *c);
const char *gguf_type_name(uint32_t vtype);

/* ---- writer ---------------------------------------------------------------
 * Usage: w = gguf_writer_new(alignment, 0 = the default 32); set kvs; add
 * tensors (name, type, dims, data pointer); gguf_writer_write(w, path) writes
 * a v3 file: header, kvs and tensor infos in the order added, padding, then
 * each tensor's bytes padded to the alignment. A non-default alignment is
 * recorded as general.alignment. Misuse (bad dims, unknown type, duplicate
 * tensor name) is remembered and reported by gguf_writer_write. The file is
 * written to "<path>.tmp" and renamed at the end so no half-written file is
 * ever left under the final name. */
typedef struct gguf_writer gguf_writer;

gguf_writer *gguf_writer_new(uint32_t alignment);
void gguf_writer_free(gguf_writer *w);
void gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v);
void gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v);
void gguf_writer_set_u64(gguf_writer *w, const char *key, uint64_t v);
void gguf_writer_set_f32(gguf_writer *w, const char *key, float v);
void gguf_writer_set_bool(gguf_writer *w, const char *key, bool v);
void gguf_writer_set_str(gguf_writer *w, const char *key, const char *v);
void gguf_writer_set_arr_i32(gguf_writer *w, const char *key, const int32_t *v, uint64_t n);
void gguf_writer_set_arr_f32(gguf_writer *w, const char *key, const float *v, uint64_t n);
void gguf_writer_set_arr_str(gguf_writer *w, const char *key, const char *const *v, uint64_t n);
/* Copy a key/value (any type, nested arrays included) from a source file,
 * optionally under a new key name (NULL keeps it). Replaces an existing key. */
void gguf_writer_copy_kv(gguf_writer *w, const gguf_kv *kv, const char *new_key);
/* Tensor whose bytes are at data (must stay valid until write). */
void gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                            const int64_t *ne, const void *data);
/* Returns 0 on success, -1 with rys_lasterr() set ("<path>: <problem>"). */
/* on_tensor (NULL = none) runs after each tensor's bytes are written with the
 * tensor bytes written so far and in all, for progress bars on big exports. */
void gguf_writer_set_progress(gguf_writer *w, void (*on_tensor)(void *ctx, uint64_t done, uint64_t total),
                              void *ctx);
int gguf_writer_write(gguf_writer *w, const char *path);

#endif
