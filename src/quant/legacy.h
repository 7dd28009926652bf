/* legacy: block layouts of ggml's first quantization formats (32 elements a
 * block, one fp16 scale, optional fp16 minimum, 4/5/8-bit values) and of the
 * 8-bit activation block they are multiplied with.
 *
 * The weight layouts are ggml's byte for byte, because GGUF files store them.
 * The activation block is rys's own (never stored): float scale, plus the
 * scaled sum of its values so kernels can apply a weight offset or minimum
 * without summing the activations again. */
#ifndef RYS_QUANT_LEGACY_H
#define RYS_QUANT_LEGACY_H

#include <assert.h>
#include <stdint.h>

#define QK_LEGACY 32

typedef struct { uint16_t d; uint8_t qs[QK_LEGACY / 2]; } block_q4_0;
typedef struct { uint16_t d, m; uint8_t qs[QK_LEGACY / 2]; } block_q4_1;
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[QK_LEGACY / 2]; } block_q5_0;
typedef struct { uint16_t d, m; uint8_t qh[4]; uint8_t qs[QK_LEGACY / 2]; } block_q5_1;
typedef struct { uint16_t d; int8_t qs[QK_LEGACY]; } block_q8_0;
static_assert(sizeof(block_q4_0) == 18, "block_q4_0 layout");
static_assert(sizeof(block_q4_1) == 20, "block_q4_1 layout");
static_assert(sizeof(block_q5_0) == 22, "block_q5_0 layout");
static_assert(sizeof(block_q5_1) == 24, "block_q5_1 layout");
static_assert(sizeof(block_q8_0) == 34, "block_q8_0 layout");

/* Activations: x[i] ~= d * qs[i], qs in [-127, 127]; s = d * sum(qs). */
typedef struct { float d, s; int8_t qs[QK_LEGACY]; } block_q8a;
static_assert(sizeof(block_q8a) == 40, "block_q8a layout");

#endif
