/* probe_file: probe set loading and per-item dispatch, see probe_file.h. */
#include "probes/probe_file.h"
#include "probes/eq.h"
#include "probes/math.h"
#include "base/sha256.h"
#include "base/util.h"

#include <gmp.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const PROBE_MATH_SYSTEM_PROMPT =
    "You are a highly intelligent AI. You have extraordinary intuition and can easily make accurate "
    "estimations. For the following questions, you will always provide an answer, even if you are not certain.";

const char *probe_kind_name(probe_kind k) { return k == PROBE_MATH ? "math" : "eq"; }

/* jansson stores integers in 64 bits and refuses longer ones, so before
 * parsing every integer token of 19 or more digits is rewritten into a string
 * "\u0000<digits>". Such a string cannot come from the file itself: a file
 * holding the escape \u0000 is refused here (jansson would refuse it too). */
#define BIG_DIGITS 19

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

static char *protect_big_integers(const char *name, const char *text, size_t len, size_t *out_len) {
    char *out = xmalloc(len * 2 + 16);   /* a rewritten token grows by 8 bytes and has >= 19 */
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        char c = text[i];
        if (c == '"') {
            out[o++] = text[i++];
            while (i < len && text[i] != '"') {
                if (text[i] == '\\' && i + 1 < len) {
                    if (text[i + 1] == 'u' && i + 5 < len && !memcmp(text + i + 2, "0000", 4)) {
                        free(out);
                        rys_seterr("%s: a string holds a NUL character (\\u0000)", name);
                        return NULL;
                    }
                    out[o++] = text[i++];
                }
                out[o++] = text[i++];
            }
            if (i < len) out[o++] = text[i++];
            continue;
        }
        if (c != '-' && !is_digit(c)) { out[o++] = text[i++]; continue; }
        size_t e = i;
        while (e < len && text[e] && (is_digit(text[e]) || strchr("+-.eE", text[e]))) e++;
        size_t d = i + (c == '-');
        bool plain_int = d < e;
        for (size_t k = d; k < e; k++) plain_int &= is_digit(text[k]);
        if (plain_int && e - d >= BIG_DIGITS && text[d] != '0') {
            memcpy(out + o, "\"\\u0000", 7);
            o += 7;
            memcpy(out + o, text + i, e - i);
            o += e - i;
            out[o++] = '"';
        } else {
            memcpy(out + o, text + i, e - i);
            o += e - i;
        }
        i = e;
    }
    out[o] = 0;
    *out_len = o;
    return out;
}

/* The decimal text of an integer value (a JSON integer or a protected big
 * one), canonical; NULL if v is anything else. */
static char *integer_text(const json_t *v) {
    if (json_is_integer(v)) {
        char buf[32];
        snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
        return xstrdup(buf);
    }
    if (!json_is_string(v) || json_string_length(v) < 2 || json_string_value(v)[0] != 0) return NULL;
    mpz_t z;
    if (mpz_init_set_str(z, json_string_value(v) + 1, 10)) { mpz_clear(z); return NULL; }
    char *r = mpz_get_str(xmalloc(mpz_sizeinbase(z, 10) + 2), 10, z);
    mpz_clear(z);
    return r;
}

/* A number: JSON integer or real, or a protected big integer. */
static bool number_value(const json_t *v, double *out) {
    if (json_is_number(v)) { *out = json_number_value(v); return true; }
    if (json_is_string(v) && json_string_length(v) >= 2 && json_string_value(v)[0] == 0) {
        *out = strtod(json_string_value(v) + 1, NULL);
        return true;
    }
    return false;
}

static bool plain_string(const json_t *v) {
    return json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v);
}

static bool fail_record(const probe_set *s, const char *key, const char *what) {
    rys_seterr("%s: record \"%s\": %s", s->path, key, what);
    return false;
}

static bool read_math(const probe_set *s, const char *key, const json_t *rec, probe_item *it) {
    const json_t *q = json_object_get(rec, "question"), *a = json_object_get(rec, "answer");
    if (!q) return fail_record(s, key, "no \"question\"");
    if (!plain_string(q)) return fail_record(s, key, "question is not a string");
    if (!a) return fail_record(s, key, "no \"answer\"");
    it->answer = integer_text(a);
    if (!it->answer) return fail_record(s, key, "answer is not an integer");
    it->question = xstrdup(json_string_value(q));
    return true;
}

static bool read_eq(const probe_set *s, const char *key, const json_t *rec, probe_item *it) {
    const json_t *p = json_object_get(rec, "prompt");
    if (!plain_string(p)) return fail_record(s, key, "prompt is not a string");
    const char *ref_name = "reference_answer";
    const json_t *ref = json_object_get(rec, ref_name);
    if (!ref) ref = json_object_get(rec, ref_name = "reference_answer_fullscale");
    if (!ref) return fail_record(s, key, "no \"reference_answer\" (nor \"reference_answer_fullscale\")");
    if (!json_is_object(ref)) return fail_record(s, key, "reference_answer is not an object");
    for (int e = 0; e < 4; e++) {
        char k[32], msg[96];
        snprintf(k, sizeof k, "emotion%d", e + 1);
        const json_t *nm = json_object_get(ref, k);
        if (!plain_string(nm)) {
            snprintf(msg, sizeof msg, "%s.%s is missing or not a string", ref_name, k);
            return fail_record(s, key, msg);
        }
        snprintf(k, sizeof k, "emotion%d_score", e + 1);
        if (!number_value(json_object_get(ref, k), &it->ref[e])) {
            snprintf(msg, sizeof msg, "%s.%s is missing or not a number", ref_name, k);
            return fail_record(s, key, msg);
        }
        it->emotion[e] = xstrdup(json_string_value(nm));
    }
    it->prompt = xstrdup(json_string_value(p));
    return true;
}

static void free_item(probe_item *it) {
    free(it->key);
    free(it->question);
    free(it->answer);
    free(it->prompt);
    for (int e = 0; e < 4; e++) free(it->emotion[e]);
}

void probe_set_free(probe_set *s) {
    if (!s) return;
    for (int i = 0; i < s->n; i++) free_item(&s->items[i]);
    free(s->items);
    free(s->path);
    free(s->name);
    free(s);
}

static char *stem(const char *path) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    size_t n = strlen(b);
    if (n > 5 && !strcmp(b + n - 5, ".json")) n -= 5;
    char *r = xmalloc(n + 1);
    memcpy(r, b, n);
    r[n] = 0;
    return r;
}

probe_set *probe_set_parse(const char *name, const char *text, size_t len) {
    probe_set *s = xcalloc(1, sizeof *s);
    s->path = xstrdup(name);
    s->name = stem(name);
    sha256_buf(text, len, s->sha256);
    size_t plen;
    char *prot = protect_big_integers(name, text, len, &plen);
    if (!prot) { probe_set_free(s); return NULL; }
    json_error_t jerr;
    json_t *root = json_loadb(prot, plen, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    free(prot);
    if (!root) {
        rys_seterr("%s: line %d: %s", name, jerr.line, jerr.text);
        probe_set_free(s);
        return NULL;
    }
    bool ok = true;
    if (!json_is_object(root)) { rys_seterr("%s: not a JSON object of records", name); ok = false; }
    else if (json_object_size(root) == 0) { rys_seterr("%s: no records", name); ok = false; }
    if (ok) s->items = xcalloc(json_object_size(root), sizeof *s->items);
    const char *key;
    json_t *rec;
    json_object_foreach(root, key, rec) {
        if (!ok) break;
        if (!json_is_object(rec)) { ok = fail_record(s, key, "not an object"); break; }
        bool is_eq = json_object_get(rec, "prompt") != NULL;
        bool is_math = json_object_get(rec, "question") || json_object_get(rec, "answer");
        if (is_eq == is_math) {
            ok = fail_record(s, key, is_eq ? "has both math (question/answer) and EQ (prompt) fields"
                                           : "neither a math record (question, answer) nor an EQ record (prompt, reference_answer)");
            break;
        }
        probe_kind k = is_eq ? PROBE_EQ : PROBE_MATH;
        if (s->n == 0) s->kind = k;
        else if (k != s->kind) {
            char msg[96];
            snprintf(msg, sizeof msg, "an %s record in a %s file (mixed kinds)", is_eq ? "EQ" : "math",
                     probe_kind_name(s->kind));
            ok = fail_record(s, key, msg);
            break;
        }
        probe_item *it = &s->items[s->n];
        ok = is_eq ? read_eq(s, key, rec, it) : read_math(s, key, rec, it);
        if (!ok) { free_item(it); memset(it, 0, sizeof *it); break; }
        it->key = xstrdup(key);
        s->n++;
    }
    json_decref(root);
    if (!ok) { probe_set_free(s); return NULL; }
    return s;
}

probe_set *probe_set_load(const char *path) {
    size_t len;
    char *text = read_file(path, &len);
    if (!text) return NULL;
    probe_set *s = probe_set_parse(path, text, len);
    free(text);
    return s;
}

const char *probe_system_text(const probe_set *s, const char *math_system) {
    if (s->kind != PROBE_MATH) return NULL;
    return math_system ? math_system : PROBE_MATH_SYSTEM_PROMPT;
}

char *probe_user_text(const probe_set *s, int i, bool no_think) {
    const char *body = s->kind == PROBE_MATH ? s->items[i].question : s->items[i].prompt;
    const char *pre = no_think ? "/no_think " : "";
    size_t n = strlen(pre) + strlen(body) + 1;
    char *r = xmalloc(n);
    snprintf(r, n, "%s%s", pre, body);
    return r;
}

double probe_score_text(const probe_set *s, int i, const char *text, char **details) {
    const probe_item *it = &s->items[i];
    if (s->kind == PROBE_MATH) {
        math_result r;
        double v = math_score(it->answer, text, &r);
        if (details) *details = math_result_json(&r);
        math_result_free(&r);
        return v;
    }
    eq_parsed p;
    double v = eq_score(it->ref, text, &p);
    if (details) *details = eq_parsed_json(&p, v);
    return v;
}
