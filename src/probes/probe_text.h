/* probe_text: model output made to look the way the reference's Python sees
 * it, so our parsers find the same numbers. The reference decodes tokens into
 * a Python str (invalid bytes become U+FFFD), drops <think> blocks, and runs
 * regexes whose \d, \s and \w are Unicode-aware: a "digit" is any character of
 * category Nd (fullwidth １２３ included), not just 0-9. */
#ifndef RYS_PROBES_PROBE_TEXT_H
#define RYS_PROBES_PROBE_TEXT_H

#include <stddef.h>
#include <stdint.h>

/* Copy of s with every invalid UTF-8 sequence replaced by U+FFFD (malloc'd). */
char *probe_utf8_sanitize(const char *s);

/* Decode the code point at s[*i] (s valid UTF-8, *i < strlen) and advance *i. */
uint32_t probe_utf8_next(const char *s, size_t *i);

/* Value 0..9 of a decimal digit (Unicode category Nd, as Python 3.11's
 * unicodedata has it), -1 for anything else. */
int probe_digit_value(uint32_t cp);

/* Python's str.isspace(). */
int probe_is_space(uint32_t cp);

/* PCRE2 character classes matching exactly what probe_digit_value and
 * probe_is_space accept, e.g. "[0-9\x{660}-\x{669}...]" (static storage):
 * Python's \d and \s. */
const char *probe_digit_class(void);
const char *probe_space_class(void);

/* The reference's strip_thinking(): remove every "<think>...</think>" block
 * (shortest match, left to right), then cut the text at the first remaining
 * "<think>", then trim whitespace. s must be valid UTF-8. Malloc'd. */
char *probe_strip_think(const char *s);

/* Digits of a run of Unicode decimal digits s[0..n) as ASCII, leading zeros
 * dropped ("0" if all are zero): what Python's str(int(run)) prints.
 * Malloc'd; NULL if a character is not a digit. */
char *probe_digits_canonical(const char *s, size_t n);

#endif
