/* safetensors: read and write Hugging Face's tensor container.
 *
 * Layout: 8-byte little-endian header length, a JSON header mapping tensor
 * names to {dtype, shape, data_offsets:[begin,end]} (offsets relative to the
 * data section that follows), optional "__metadata__" of strings, then raw
 * bytes. Like GGUF, these files come from strangers: st_open() checks every
 * offset lies inside the file, no two tensors overlap and each byte range
 * matches dtype x shape, so export code may copy ranges without checks.
 * Tensor bytes are never copied on read: views point into the mmap. */
#ifndef RYS_SAFETENSORS_H
#define RYS_SAFETENSORS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define ST_MAX_DIMS 8
/* Headers larger than this are refused (real ones are well under 10 MB). */
#define ST_MAX_HEADER (100u << 20)

typedef struct {
    char *name;
    char dtype[16];
    int n_dims;
    int64_t shape[ST_MAX_DIMS];
    uint64_t nbytes;
    const uint8_t *data;        /* into the mapping */
} st_tensor;

typedef struct {
    char *path;
    const uint8_t *map;
    size_t size;
    st_tensor *tensors;         /* in file (offset) order */
    size_t n_tensors;
    json_t *metadata;           /* "__metadata__" object, or NULL */
} st_file;

/* Open, map and validate; NULL with rys_lasterr() = "<path>: <problem>". */
st_file *st_open(const char *path);
void st_close(st_file *f);
const st_tensor *st_find(const st_file *f, const char *name);

/* Writer: tensors are written in the order added, their bytes streamed from
 * the given pointers (which must stay valid until st_writer_write). */
typedef struct st_writer st_writer;

st_writer *st_writer_new(void);
void st_writer_free(st_writer *w);
/* "__metadata__" for the header (string values only); a copy is kept. */
void st_writer_set_metadata(st_writer *w, json_t *metadata);
void st_writer_add(st_writer *w, const char *name, const st_tensor *t);
/* Writes the file; on_bytes (may be NULL) gets each chunk's size as it is
 * written; hex_out (may be NULL) receives the file's hash. 0, or -1 with
 * the error set (the partial file is removed). */
int st_writer_write(st_writer *w, const char *path, void (*on_bytes)(void *ctx, uint64_t n), void *ctx,
                    char hex_out[65]);

#endif
