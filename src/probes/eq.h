/* eq: the RYS EQ probe (EQ-Bench v2, first pass): parsing a model's
 * "Emotion: score" answer and scoring it against the reference ratings,
 * matching the reference scorer's regexes (Unicode digits and word
 * boundaries as Python sees them), plus the scoring half of the logit-read
 * variant (expected values from the model's probabilities over 0..10).
 *
 * Parsing, after dropping <think> blocks: a "Revised scores:" section (cut at
 * "[End of answer]") and a "First pass scores:" section (cut at "Critique:"),
 * both found case-insensitively; in a section the first four "Name: number"
 * items (optional "1." prefix) are taken, values outside 0..10 dropped, and
 * with at least 3 left they are padded to 4 with 5.0. Both sections: the mean
 * of the two, confidence 1; only revised: 0.9; only first pass: 0.8.
 * Otherwise every standalone number in 0..10: with 4 or more the first four
 * at confidence 0.5, with 1-3 those then 5.0 at confidence count/8, with none
 * all 5.0 at confidence 0. Emotions are matched by position. */
#ifndef RYS_PROBES_EQ_H
#define RYS_PROBES_EQ_H

typedef enum {
    EQ_FROM_BOTH,       /* first pass and revised sections */
    EQ_FROM_REVISED,
    EQ_FROM_FIRST_PASS,
    EQ_FROM_NUMBERS,    /* loose numbers in the text */
    EQ_FROM_NOTHING,    /* no numbers at all */
} eq_source;

typedef struct {
    double pred[4];       /* emotion1..emotion4 */
    double confidence;    /* 1, 0.9, 0.8, 0.5, count/8 or 0 */
    eq_source source;
    int n_numbers;        /* EQ_FROM_NUMBERS: numbers found in 0..10 */
} eq_parsed;

/* Parses a generated text (any bytes; invalid UTF-8 is read as U+FFFD). */
void eq_parse(const char *text, eq_parsed *out);

/* raw = max(0, 1 - sum |pred - ref| / 40); confidence * raw + (1 - confidence) * 0.5. */
double eq_item_score(const double pred[4], const double ref[4], double confidence);

/* eq_parse then eq_item_score; out may be NULL. */
double eq_score(const double ref[4], const char *text, eq_parsed *out);

const char *eq_source_name(eq_source s);   /* "both", "revised", "first_pass", "numbers", "nothing" */
/* {"emotions":[...],"confidence":0.8,"source":"first_pass","score":0.9}, malloc'd. */
char *eq_parsed_json(const eq_parsed *p, double score);

/* Logit-read variant: probs[e][v] is the model's probability of score v
 * (0..10) on emotion e's line. Each row is normalised by its sum, the
 * expected values go to expected (may be NULL) and the item score is
 * eq_item_score at confidence 1. Returns -1 (error set) when a row has a
 * negative or non-finite entry or sums to 0. */
double eq_logit_score(const double probs[4][11], const double ref[4], double expected[4]);

#endif
