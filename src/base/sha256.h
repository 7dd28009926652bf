/* sha256: content identity for models and probe files.
 *
 * Models are identified by the sha256 of their GGUF file and probe sets by the
 * sha256 of theirs, so results stay attached to content, not to paths. The
 * streaming context lets a writer hash while it copies (no second pass). */
#ifndef RYS_SHA256_H
#define RYS_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t state[8];
    uint64_t total_bytes;
    uint8_t block[64];
    size_t block_len;
} sha256_ctx;

void sha256_init(sha256_ctx *c);
void sha256_update(sha256_ctx *c, const void *data, size_t n);
/* Finishes the hash; the context must be re-initialised before reuse. */
void sha256_final(sha256_ctx *c, uint8_t digest[32]);
/* Lowercase hex of a digest, NUL-terminated. */
void sha256_hex(const uint8_t digest[32], char hex[65]);
/* Hash of a whole buffer as lowercase hex. */
void sha256_buf(const void *data, size_t n, char hex[65]);
/* Hash of a file's contents as lowercase hex: 0 on success, -1 with the
 * error set ("<path>: <problem>"). */
int sha256_file(const char *path, char hex[65]);

#endif
