/* probe_file: the RYS probe sets (math_16.json, eq_16.json and their kin)
 * loaded into memory, plus the per-item strings and scoring the eval and scan
 * code need, so neither has to know which kind of probe it runs.
 *
 * A file is one JSON object keyed "0","1",... (any keys; file order is kept).
 * Math records are {question, answer} with answer a JSON integer of any length
 * (math_16 has 28-digit ones, beyond 64 bits, so they are read exactly from
 * the number's text); EQ records are {prompt, reference_answer{emotion1..4,
 * emotion1_score..4}} with reference_answer_fullscale used when
 * reference_answer is absent, as the reference scorer does. Extra fields
 * (e.g. "rounding" from `rys probes math`) are ignored. Sets are identified by
 * the sha256 of the file's bytes. */
#ifndef RYS_PROBES_PROBE_FILE_H
#define RYS_PROBES_PROBE_FILE_H

#include <stdbool.h>
#include <stddef.h>

typedef enum { PROBE_MATH, PROBE_EQ } probe_kind;

typedef struct {
    char *key;              /* the record's key in the file, e.g. "7" */
    /* math */
    char *question;
    char *answer;           /* exact decimal text, canonical (no leading zeros, "-" if negative) */
    /* eq */
    char *prompt;
    char *emotion[4];       /* emotion1..emotion4 names */
    double ref[4];          /* emotion1_score..emotion4_score of the reference answer */
} probe_item;

typedef struct {
    char *path;
    char *name;             /* file name without directory and ".json", e.g. "math_16" */
    char sha256[65];        /* of the file's bytes, lowercase hex */
    probe_kind kind;
    int n;
    probe_item *items;      /* in file order */
} probe_set;

/* Reads, hashes and validates a probe file. NULL + error
 * ("<path>: record \"7\": answer is not an integer") on failure. */
probe_set *probe_set_load(const char *path);
/* The same from a buffer; name is used for errors and as path. */
probe_set *probe_set_parse(const char *name, const char *text, size_t len);
void probe_set_free(probe_set *s);

const char *probe_kind_name(probe_kind k);   /* "math" | "eq" */

/* The reference's math system prompt (one sentence about intuition and always
 * answering). */
extern const char *const PROBE_MATH_SYSTEM_PROMPT;

/* System turn for item i: math_system (or PROBE_MATH_SYSTEM_PROMPT when NULL)
 * for math sets, NULL (no system turn) for EQ sets. */
const char *probe_system_text(const probe_set *s, const char *math_system);
/* User turn for item i: the question or prompt, "/no_think " in front when
 * no_think. Malloc'd. */
char *probe_user_text(const probe_set *s, int i, bool no_think);

/* Score of item i for a generated text, in [0,1], by the set's kind (see
 * math.h, eq.h). When details is not NULL it receives a malloc'd compact JSON
 * object explaining the score (math: candidates, best; EQ: parsed values,
 * confidence, source). */
double probe_score_text(const probe_set *s, int i, const char *text, char **details);

#endif
