/* dispatch: which kernel family runs, decided once from what the CPU and the
 * OS support (CPUID + XGETBV, and for AMX Linux's permission to use the
 * tile state), overridable with RYS_CPU for tests and benchmarks.
 *
 * Only families rys has kernels for and the machine runs are accepted; a
 * forced one that cannot run is refused rather than silently mapped to
 * another, so quant_cpu_path() always names the kernels that actually run. */
#include "quant/quant_impl.h"
#include "base/util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define RYS_X86 1
#endif
#if defined(__x86_64__) && defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

static const quant_kernels kernels_portable = {
    .path = QP_PORTABLE,
    .dot = {
        [QT_F32] = quant_dot_f32_portable,   [QT_F16] = quant_dot_f16_portable,
        [QT_BF16] = quant_dot_bf16_portable, [QT_Q4_0] = quant_dot_q4_0_portable,
        [QT_Q4_1] = quant_dot_q4_1_portable, [QT_Q5_0] = quant_dot_q5_0_portable,
        [QT_Q5_1] = quant_dot_q5_1_portable, [QT_Q8_0] = quant_dot_q8_0_portable,
        [QT_Q4_K] = quant_dot_q4_K_portable, [QT_Q5_K] = quant_dot_q5_K_portable,
        [QT_Q6_K] = quant_dot_q6_K_portable,
    },
    .attn_scores_f16 = quant_attn_scores_f16_portable,
    .attn_accum_f16 = quant_attn_accum_f16_portable,
    .round_f16 = quant_round_f16_portable,
    .to_f16 = quant_to_f16_portable,
};

#ifdef RYS_X86
/* AVX2: block formats through packed weights and the vpmaddubsw kernel,
 * one-row products on the interleaved blocks, both with the VNNI kernel's
 * bits; float formats on the dot kernels. */
static const quant_kernels kernels_avx2 = {
    .path = QP_AVX2,
    .gemm = quant_gemm_avx2,
    .gemm_max_bits = 8,
    .gemm_peak = quant_gemm_peak_avx2,
    .dot = {[QT_F32] = quant_dot_f32_avx2, [QT_F16] = quant_dot_f16_avx2, [QT_BF16] = quant_dot_bf16_avx2},
    .dot_tile = {[QT_F32] = quant_dot_tile_f32_avx2, [QT_F16] = quant_dot_tile_f16_avx2,
                 [QT_BF16] = quant_dot_tile_bf16_avx2},
    .tile_rows = 1,
    .tile_cols = 4,
    .attn_scores_f16 = quant_attn_scores_f16_avx2,
    .attn_accum_f16 = quant_attn_accum_f16_avx2,
    .round_f16 = quant_round_f16_avx2,
    .to_f16 = quant_to_f16_avx2,
    .gemv = {[QT_Q4_0] = quant_gemv_q4_0_avx2, [QT_Q4_1] = quant_gemv_q4_1_avx2, [QT_Q5_0] = quant_gemv_q5_0_avx2,
             [QT_Q5_1] = quant_gemv_q5_1_avx2, [QT_Q4_K] = quant_gemv_q4_K_avx2, [QT_Q6_K] = quant_gemv_q6_K_avx2},
};

/* AVX-512: block formats through packed weights and the VNNI kernel, and
 * for decode (one row) but Q8_0 and Q5_K through their own blocks,
 * interleaved, with that kernel's bits; float formats in AVX-512 tiles with
 * the AVX2 dot's bits. AMX is the same family with the tile kernel for
 * batches of 16 rows and more; it gives the VNNI kernel's bits, so nothing
 * else changes. */
#define AVX512_FAMILY                                                                                      \
    .dot = {[QT_F32] = quant_dot_f32_avx2, [QT_F16] = quant_dot_f16_avx2, [QT_BF16] = quant_dot_bf16_avx2}, \
    .dot_tile = {[QT_F32] = quant_dot_tile_f32_avx512, [QT_F16] = quant_dot_tile_f16_avx512,               \
                 [QT_BF16] = quant_dot_tile_bf16_avx512},                                                  \
    .tile_rows = 4, .tile_cols = 6,                                                                        \
    .act_q8a = quant_act_q8a_avx512, .act_q8_K = quant_act_q8_K_avx512,                                    \
    .attn_scores_f16 = quant_attn_scores_f16_avx512, .attn_accum_f16 = quant_attn_accum_f16_avx512,        \
    .round_f16 = quant_round_f16_avx2, .to_f16 = quant_to_f16_avx2,                                        \
    .exp_f32 = quant_exp_avx512, .exp_f32_check = quant_exp_avx512_check,                                   \
    .gemv = {[QT_Q4_0] = quant_gemv_q4_0_avx512, [QT_Q4_1] = quant_gemv_q4_1_avx512,                      \
             [QT_Q5_0] = quant_gemv_q5_0_avx512, [QT_Q5_1] = quant_gemv_q5_1_avx512,                      \
             [QT_Q4_K] = quant_gemv_q4_K_avx512, [QT_Q6_K] = quant_gemv_q6_K_avx512}

static const quant_kernels kernels_avx512 = {
    .path = QP_AVX512, .gemm = quant_gemm_avx512, .gemm_max_bits = 8, .gemm_peak = quant_gemm_peak_avx512,
    AVX512_FAMILY,
};

static const quant_kernels kernels_amx = {
    .path = QP_AMX, .gemm = quant_gemm_amx, .gemm_max_bits = 8, .gemm_peak = quant_gemm_peak_amx, AVX512_FAMILY,
};
#endif

static const char *const path_names[] = {"portable", "avx2", "avx512", "amx"};

const char *quant_path_name(enum quant_path p) {
    return (unsigned)p < sizeof path_names / sizeof *path_names ? path_names[p] : "?";
}

#ifdef RYS_X86
/* XCR0: which register states the OS saves on context switch. */
static uint64_t xcr0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}
#endif

/* Linux hands out the 8 KiB tile state only on request (arch_prctl
 * ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA, once per process, for all its
 * threads); without it the first tile instruction faults. */
static bool amx_granted;
static void request_amx(void) {
#if defined(__x86_64__) && defined(__linux__)
    enum { ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 };
    amx_granted = syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
#endif
}

bool quant_cpu_supports(enum quant_path p) {
    if (p == QP_PORTABLE) return true;
#ifdef RYS_X86
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
    bool osxsave = c & (1u << 27), avx = c & (1u << 28), fma = c & (1u << 12), f16c = c & (1u << 29);
    if (!osxsave || !avx || !fma || !f16c) return false;
    uint64_t xcr = xcr0();
    if ((xcr & 0x6) != 0x6) return false; /* XMM and YMM state */
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    bool avx2 = b & (1u << 5);
    if (p == QP_AVX2) return avx2;
    bool avx512 = avx2 && (b & (1u << 16)) && (b & (1u << 17)) && (b & (1u << 30)) && (b & (1u << 31)) &&
                  (c & (1u << 11)) && (xcr & 0xE0) == 0xE0; /* F DQ BW VL VNNI; opmask and ZMM state */
    if (p == QP_AVX512) return avx512;
    bool amx = avx512 && (d & (1u << 24)) && (d & (1u << 25)) && (xcr & 0x60000) == 0x60000; /* TILE INT8 */
    if (p != QP_AMX || !amx) return false;
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, request_amx);
    return amx_granted;
#endif
    return false;
}

const quant_kernels *quant_path_kernels(enum quant_path p) {
    switch (p) {
    case QP_PORTABLE: return &kernels_portable;
#ifdef RYS_X86
    case QP_AVX2: return &kernels_avx2;
    case QP_AVX512: return &kernels_avx512;
    case QP_AMX: return &kernels_amx;
#endif
    default: return NULL;
    }
}

bool quant_path_available(enum quant_path p) { return quant_path_kernels(p) && quant_cpu_supports(p); }

static _Atomic(const quant_kernels *) active;

static const quant_kernels *best_kernels(void) {
    for (int p = QP_AMX; p > QP_PORTABLE; p--)
        if (quant_path_available((enum quant_path)p)) return quant_path_kernels((enum quant_path)p);
    return &kernels_portable;
}

static void available_list(char *buf, size_t size) {
    buf[0] = 0;
    for (int p = QP_PORTABLE; p <= QP_AMX; p++)
        if (quant_path_available((enum quant_path)p)) {
            size_t len = strlen(buf);
            snprintf(buf + len, size - len, "%s%s", len ? ", " : "", quant_path_name((enum quant_path)p));
        }
}

/* Why path p cannot run here, into buf; false if it can. */
static bool path_problem(enum quant_path p, char *buf, size_t size) {
    if (quant_path_available(p)) return false;
    char avail[64];
    available_list(avail, sizeof avail);
    if ((unsigned)p > QP_AMX)
        snprintf(buf, size, "unknown kernel family %d (available here: %s)", (int)p, avail);
    else if (!quant_path_kernels(p))
        snprintf(buf, size, "rys has no %s kernels yet (available here: %s)", quant_path_name(p), avail);
    else
        snprintf(buf, size, "this CPU or OS does not support %s (available here: %s)", quant_path_name(p), avail);
    return true;
}

int quant_set_path(enum quant_path p) {
    char why[160];
    if (path_problem(p, why, sizeof why)) {
        rys_seterr("cpu path: %s", why);
        return -1;
    }
    atomic_store(&active, quant_path_kernels(p));
    return 0;
}

int quant_init(void) {
    const char *want = getenv("RYS_CPU");
    if (!want || !*want) {
        atomic_store(&active, best_kernels());
        return 0;
    }
    for (int p = QP_PORTABLE; p <= QP_AMX; p++)
        if (!strcmp(want, path_names[p])) {
            char why[160];
            if (path_problem((enum quant_path)p, why, sizeof why)) {
                rys_seterr("RYS_CPU=%s: %s", want, why);
                return -1;
            }
            atomic_store(&active, quant_path_kernels((enum quant_path)p));
            return 0;
        }
    rys_seterr("RYS_CPU=%s: unknown kernel family (expected portable, avx2, avx512 or amx)", want);
    return -1;
}

/* Callers that never ran quant_init (tests, library users) get what it would
 * choose, or the best family if RYS_CPU asks for something unavailable. */
static void lazy_init(void) {
    if (quant_init() != 0) atomic_store(&active, best_kernels());
}

const quant_kernels *quant_active_kernels(void) {
    const quant_kernels *k = atomic_load(&active);
    if (k) return k;
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, lazy_init);
    return atomic_load(&active);
}

enum quant_path quant_cpu_path(void) { return quant_active_kernels()->path; }
