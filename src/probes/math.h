/* math: the RYS math probe's scoring (partial credit for approximate
 * integers) and the generator behind `rys probes math`.
 *
 * Scoring follows the reference: drop <think> blocks, every maximal run of
 * decimal digits is a candidate (Unicode digits too, as Python's \d sees
 * them), the raw text is tried when the stripped one has none, and the item
 * scores the best candidate's partial credit. A run is read the way the
 * reference does, str(int(run)): leading zeros are dropped ("007" is 7, "000"
 * is 0). Arithmetic is exact (GMP) at any length; the final value is the
 * correctly rounded double of the exact rational, which can differ from the
 * reference's step-by-step float arithmetic in the last bit or so. */
#ifndef RYS_PROBES_MATH_H
#define RYS_PROBES_MATH_H

#include <stdbool.h>
#include <stdint.h>

/* partial_credit(answer, guess) of the reference, both decimal integer texts
 * (optional leading "-"; leading zeros ignored): pad both on the right with
 * '0' to the longer length L, pad = L - shorter length, A, G the padded values;
 * 0 when max(A,G) = 0, else (1 - |A-G|/max(A,G)) * (1 - pad/L) clipped to
 * [0,1]. Returns -1 (error set) when a text is not an integer. */
double math_partial_credit(const char *answer, const char *guess);

typedef struct {
    int n;              /* candidates, in text order */
    char **cand;        /* canonical decimal text of each */
    double *score;      /* partial credit of each */
    int best;           /* first candidate with the highest score, -1 when none */
    bool from_raw;      /* no digits outside <think> blocks: candidates taken from the raw text */
} math_result;

/* Item score of a generated text against the exact answer text; 0 when the
 * text has no digits. out (may be NULL) gets the details; free with
 * math_result_free. */
double math_score(const char *answer, const char *text, math_result *out);
void math_result_free(math_result *r);
/* {"candidates":["123",...],"scores":[...],"best":0,"from_raw":false}, malloc'd. */
char *math_result_json(const math_result *r);

/* ---- generator ------------------------------------------------------------
 * Question kinds, worded like math_16 / math_120 and ending with the
 * integer-only instruction. The numbers' digit counts are drawn uniformly from
 * the kind's range, then the value uniformly among numbers of that many
 * digits. Answers are exact: floor, or nearest (ties, possible only for
 * sqrtdiv of a perfect square, round up). */
typedef enum {
    MATHGEN_SQRT,       /* square root of an N-digit number */
    MATHGEN_CBRT,       /* cube root of an N-digit number */
    MATHGEN_MUL,        /* product of two N-digit numbers */
    MATHGEN_SQRT_DIV,   /* square root of an N-digit number, divided by 16..28 */
    MATHGEN_CBRT_MUL,   /* cube root of an N-digit number, multiplied by 31..43 */
} mathgen_kind;

typedef enum { MATHGEN_NEAREST, MATHGEN_FLOOR } mathgen_rounding;

typedef struct {
    mathgen_kind kind;
    int count;
    int dig_lo, dig_hi;   /* digits of the number (each factor for MUL) */
    bool comma;           /* "integer value, without" (math_16's wording for most kinds) */
} mathgen_part;

/* Parses "sqrt:60,mul7:30,cbrt:30:12-13": NAME:COUNT[:LO-HI] with NAME one of
 * sqrt (17-18 digits), cbrt (16-19), mul14 (14 each), mul7 (6-7 each),
 * sqrtdiv (10-12), cbrtmul (12-13); LO-HI overrides the digits. Malloc'd
 * array; NULL + error on a bad spec. */
mathgen_part *mathgen_parse_mix(const char *spec, int *n_parts);
/* The default composition for n items: math_120's (half square roots of 9-10
 * digits, a quarter products of 6-7 digit numbers, the rest cube roots of
 * 12-13 digits). Malloc'd. */
mathgen_part *mathgen_default_mix(int n, int *n_parts);

/* The probe file text (keys "0".."n-1", parts in order), each record with an
 * extra "rounding" field ("nearest" | "floor"). Same seed, same file. */
char *mathgen_json(const mathgen_part *parts, int n_parts, uint64_t seed, mathgen_rounding rounding);

#endif
