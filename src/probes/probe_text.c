/* probe_text: Python-compatible views of generated text, see probe_text.h. */
#include "probes/probe_text.h"
#include "base/util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* First code point (the zero) of every run of ten decimal digits, from
 * Python 3.11's unicodedata (Unicode 14.0): category Nd, values 0..9 in order. */
static const uint32_t digit_zeros[] = {
    0x30,    0x660,   0x6F0,   0x7C0,   0x966,   0x9E6,   0xA66,   0xAE6,   0xB66,   0xBE6,   0xC66,
    0xCE6,   0xD66,   0xDE6,   0xE50,   0xED0,   0xF20,   0x1040,  0x1090,  0x17E0,  0x1810,  0x1946,
    0x19D0,  0x1A80,  0x1A90,  0x1B50,  0x1BB0,  0x1C40,  0x1C50,  0xA620,  0xA8D0,  0xA900,  0xA9D0,
    0xA9F0,  0xAA50,  0xABF0,  0xFF10,  0x104A0, 0x10D30, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0,
    0x11450, 0x114D0, 0x11650, 0x116C0, 0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50, 0x11DA0, 0x16A60,
    0x16AC0, 0x16B50, 0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E950, 0x1FBF0,
};
#define N_DIGIT_ZEROS (sizeof digit_zeros / sizeof digit_zeros[0])

/* Python's str.isspace() code points as inclusive ranges. */
static const uint32_t space_ranges[][2] = {
    {0x09, 0x0D}, {0x1C, 0x20}, {0x85, 0x85}, {0xA0, 0xA0}, {0x1680, 0x1680}, {0x2000, 0x200A},
    {0x2028, 0x2029}, {0x202F, 0x202F}, {0x205F, 0x205F}, {0x3000, 0x3000},
};
#define N_SPACE_RANGES (sizeof space_ranges / sizeof space_ranges[0])

int probe_digit_value(uint32_t cp) {
    if (cp >= '0' && cp <= '9') return (int)(cp - '0');
    if (cp < 0x80) return -1;
    for (size_t k = 0; k < N_DIGIT_ZEROS; k++)
        if (cp >= digit_zeros[k] && cp <= digit_zeros[k] + 9) return (int)(cp - digit_zeros[k]);
    return -1;
}

int probe_is_space(uint32_t cp) {
    for (size_t k = 0; k < N_SPACE_RANGES; k++)
        if (cp >= space_ranges[k][0] && cp <= space_ranges[k][1]) return 1;
    return 0;
}

static char digit_class[N_DIGIT_ZEROS * 24 + 4], space_class[N_SPACE_RANGES * 24 + 4];
static pthread_once_t classes_once = PTHREAD_ONCE_INIT;

static void build_classes(void) {
    size_t o = 0;
    digit_class[o++] = '[';
    for (size_t k = 0; k < N_DIGIT_ZEROS; k++)
        o += (size_t)snprintf(digit_class + o, sizeof digit_class - o, "\\x{%X}-\\x{%X}",
                              (unsigned)digit_zeros[k], (unsigned)digit_zeros[k] + 9);
    snprintf(digit_class + o, sizeof digit_class - o, "]");
    o = 0;
    space_class[o++] = '[';
    for (size_t k = 0; k < N_SPACE_RANGES; k++)
        o += (size_t)snprintf(space_class + o, sizeof space_class - o, "\\x{%X}-\\x{%X}",
                              (unsigned)space_ranges[k][0], (unsigned)space_ranges[k][1]);
    snprintf(space_class + o, sizeof space_class - o, "]");
}

const char *probe_digit_class(void) {
    pthread_once(&classes_once, build_classes);
    return digit_class;
}

const char *probe_space_class(void) {
    pthread_once(&classes_once, build_classes);
    return space_class;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 with *bad set to the
 * number of bytes forming the maximal invalid subpart (Python's
 * errors="replace" emits one U+FFFD per such subpart). */
static size_t utf8_valid_len(const unsigned char *s, size_t *bad) {
    unsigned char b = s[0];
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF;
    if (b < 0x80) return 1;
    if (b >= 0xC2 && b <= 0xDF) need = 1;
    else if (b >= 0xE0 && b <= 0xEF) {
        need = 2;
        if (b == 0xE0) lo = 0xA0;
        if (b == 0xED) hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
        need = 3;
        if (b == 0xF0) lo = 0x90;
        if (b == 0xF4) hi = 0x8F;
    } else { *bad = 1; return 0; }
    for (size_t k = 1; k <= need; k++) {
        unsigned char c = s[k];
        unsigned char l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
        if (c < l || c > h) { *bad = k; return 0; }
    }
    return need + 1;
}

char *probe_utf8_sanitize(const char *s) {
    size_t n = strlen(s);
    char *out = xmalloc(n * 3 + 1);   /* each bad byte grows to at most 3 */
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t bad = 0, l = utf8_valid_len((const unsigned char *)s + i, &bad);
        if (l) { memcpy(out + o, s + i, l); o += l; i += l; continue; }
        memcpy(out + o, "\xEF\xBF\xBD", 3);
        o += 3;
        i += bad;
    }
    out[o] = 0;
    return out;
}

uint32_t probe_utf8_next(const char *s, size_t *i) {
    const unsigned char *p = (const unsigned char *)s + *i;
    if (p[0] < 0x80) { *i += 1; return p[0]; }
    if (p[0] < 0xE0) { *i += 2; return ((uint32_t)(p[0] & 0x1F) << 6) | (p[1] & 0x3F); }
    if (p[0] < 0xF0) {
        *i += 3;
        return ((uint32_t)(p[0] & 0x0F) << 12) | ((uint32_t)(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
    }
    *i += 4;
    return ((uint32_t)(p[0] & 0x07) << 18) | ((uint32_t)(p[1] & 0x3F) << 12) | ((uint32_t)(p[2] & 0x3F) << 6) |
           (p[3] & 0x3F);
}

char *probe_strip_think(const char *s) {
    static const char open[] = "<think>", close[] = "</think>";
    size_t n = strlen(s), o = 0;
    char *kept = xmalloc(n + 1);
    const char *p = s;
    for (;;) {
        const char *a = strstr(p, open);
        const char *b = a ? strstr(a + sizeof open - 1, close) : NULL;
        if (!b) break;   /* no closed block here means none further right either */
        memcpy(kept + o, p, (size_t)(a - p));
        o += (size_t)(a - p);
        p = b + sizeof close - 1;
    }
    strcpy(kept + o, p);
    /* The joins may have formed a new "<think>": the reference's second pass
     * sees the joined text too. */
    char *tail = strstr(kept, open);
    if (tail) *tail = 0;
    size_t i = 0, start = 0, end = 0, len = strlen(kept);
    bool seen = false;
    while (i < len) {
        size_t at = i;
        uint32_t cp = probe_utf8_next(kept, &i);
        if (!probe_is_space(cp)) {
            if (!seen) start = at;
            seen = true;
            end = i;
        }
    }
    char *out = xmalloc(end - start + 1);
    memcpy(out, kept + start, end - start);
    out[end - start] = 0;
    free(kept);
    return out;
}

char *probe_digits_canonical(const char *s, size_t n) {
    char *out = xmalloc(n + 2);
    size_t o = 0, i = 0;
    while (i < n) {
        int d = probe_digit_value(probe_utf8_next(s, &i));
        if (d < 0 || i > n) { free(out); return NULL; }
        if (o == 0 && d == 0) continue;
        out[o++] = (char)('0' + d);
    }
    if (o == 0) out[o++] = '0';
    out[o] = 0;
    return out;
}
