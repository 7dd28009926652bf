/* chat: chat template families, see chat.h. Each renderer reproduces what
 * jinja2 makes of the family's real template for conversations of system,
 * user and assistant messages without tools. */
#include "engine/chat.h"
#include "base/util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum family { FAM_CHATML, FAM_LLAMA3, FAM_GEMMA };

struct chat_template {
    enum family fam;
    char *default_system;       /* ChatML: system prompt used when the conversation has none */
    char *knowledge_date;       /* Llama 3.1+: the "Today Date" the template falls back to */
    bool system_forbidden;      /* Gemma 2: the template raises on a system message */
    char *system_sep;           /* Gemma 3: what joins the system text to the first user turn */
};

/* ---- reading literals out of the template ---------------------------------- */

/* Copy a Jinja string literal's body, resolving its backslash escapes. */
static char *unescape(const char *s, size_t len) {
    char *o = xmalloc(len + 1);
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\\' && i + 1 < len) {
            char c = s[++i];
            o[k++] = c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c;
        } else {
            o[k++] = s[i];
        }
    }
    o[k] = 0;
    return o;
}

/* A literal default system prompt: "<|im_start|>system" + newline + text
 * without any Jinja syntax + "<|im_end|>", all inside one string literal. */
static char *chatml_default_system(const char *tpl) {
    static const char head[] = "<|im_start|>system", tail[] = "<|im_end|>";
    for (const char *p = strstr(tpl, head); p; p = strstr(p + 1, head)) {
        const char *q = p + strlen(head);
        if (*q == '\n') q++;
        else if (q[0] == '\\' && q[1] == 'n') q += 2;
        else continue;
        const char *end = strstr(q, tail);
        if (!end || end == q) continue;
        size_t len = (size_t)(end - q);
        if (memchr(q, '\'', len) || memchr(q, '"', len) || memchr(q, '{', len) || memchr(q, '}', len) ||
            memchr(q, '+', len))
            continue;
        return unescape(q, len);
    }
    return NULL;
}

/* Llama 3.1+: {%- set date_string = "26 Jul 2024" %} */
static char *llama3_knowledge_date(const char *tpl) {
    if (!strstr(tpl, "Cutting Knowledge Date")) return NULL;
    const char *p = strstr(tpl, "set date_string = \"");
    if (!p) return xstrdup("26 Jul 2024");
    p += strlen("set date_string = \"");
    const char *e = strchr(p, '"');
    return e ? unescape(p, (size_t)(e - p)) : NULL;
}

/* Gemma 3: {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}
 * (some Gemma 3 files use a single newline). */
static char *gemma_system_sep(const char *tpl) {
    static const char key[] = "set first_user_prefix = messages[0]['content'] + ";
    const char *p = strstr(tpl, key);
    if (!p) return xstrdup("\n\n");
    p += strlen(key);
    char quote = *p;
    if (quote != '\'' && quote != '"') return NULL;
    const char *e = p + 1;
    while (*e && *e != quote) e += e[0] == '\\' && e[1] ? 2 : 1;
    return *e ? unescape(p + 1, (size_t)(e - p - 1)) : NULL;
}

chat_template *chat_template_from_string(const char *jinja) {
    chat_template *t = xcalloc(1, sizeof *t);
    if (strstr(jinja, "<|im_start|>")) {
        t->fam = FAM_CHATML;
        t->default_system = chatml_default_system(jinja);
    } else if (strstr(jinja, "<|start_header_id|>")) {
        t->fam = FAM_LLAMA3;
        t->knowledge_date = llama3_knowledge_date(jinja);
        if (strstr(jinja, "Cutting Knowledge Date") && !t->knowledge_date) {
            rys_seterr("chat template: Llama 3 template with an unreadable date_string");
            chat_template_free(t);
            return NULL;
        }
    } else if (strstr(jinja, "<start_of_turn>")) {
        t->fam = FAM_GEMMA;
        t->system_forbidden = strstr(jinja, "System role not supported") != NULL;
        t->system_sep = gemma_system_sep(jinja);
        if (!t->system_sep) {
            rys_seterr("chat template: Gemma template with an unreadable first_user_prefix");
            chat_template_free(t);
            return NULL;
        }
    } else {
        char head[61];
        size_t n = strcspn(jinja, "\n");
        snprintf(head, sizeof head, "%.*s", (int)(n < 60 ? n : 60), jinja);
        rys_seterr("chat template: unknown family (no ChatML, Llama 3 or Gemma markers) in '%s...'", head);
        free(t);
        return NULL;
    }
    return t;
}

chat_template *chat_template_from_gguf(const gguf_file *g) {
    char *src = gguf_get_strdup(g, "tokenizer.chat_template");
    if (!src) {
        rys_seterr("%s: no tokenizer.chat_template in the metadata", g->path ? g->path : "gguf");
        return NULL;
    }
    chat_template *t = chat_template_from_string(src);
    free(src);
    return t;
}

void chat_template_free(chat_template *t) {
    if (!t) return;
    free(t->default_system);
    free(t->knowledge_date);
    free(t->system_sep);
    free(t);
}

const char *chat_template_family(const chat_template *t) {
    return t->fam == FAM_CHATML ? "chatml" : t->fam == FAM_LLAMA3 ? "llama3" : "gemma";
}

/* ---- rendering ---------------------------------------------------------------- */

typedef struct { char *s; size_t n, cap; } sbuf;

static void put_n(sbuf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        while (b->n + n + 1 > b->cap) b->cap = b->cap ? b->cap * 2 : 256;
        b->s = xrealloc(b->s, b->cap);
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}

static void put(sbuf *b, const char *s) { put_n(b, s, strlen(s)); }

/* Length of the Python-whitespace character (str.isspace) at s, 0 if none. */
static size_t space_at(const unsigned char *s, size_t n) {
    if (!n) return 0;
    if ((s[0] >= 0x09 && s[0] <= 0x0D) || (s[0] >= 0x1C && s[0] <= 0x20)) return 1;
    uint32_t cp;
    size_t l;
    if (s[0] >= 0xC2 && s[0] < 0xE0 && n >= 2) { cp = (uint32_t)(s[0] & 0x1F) << 6 | (s[1] & 0x3F); l = 2; }
    else if (s[0] >= 0xE0 && s[0] < 0xF0 && n >= 3) {
        cp = (uint32_t)(s[0] & 0x0F) << 12 | (uint32_t)(s[1] & 0x3F) << 6 | (s[2] & 0x3F);
        l = 3;
    } else return 0;
    bool sp = cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
              cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
    return sp ? l : 0;
}

/* Jinja's |trim: Python's str.strip(). */
static void put_trimmed(sbuf *b, const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s), l;
    while ((l = space_at(p, n))) { p += l; n -= l; }
    for (;;) {
        size_t cut = 0;
        for (size_t back = 1; back <= 3 && back <= n; back++)
            if (space_at(p + n - back, back) == back) { cut = back; break; }
        if (!cut) break;
        n -= cut;
    }
    put_n(b, (const char *)p, n);
}

static bool role_is(const chat_message *m, const char *r) { return !strcmp(m->role, r); }

static int check_roles(const chat_message *msgs, size_t n) {
    if (n == 0) { rys_seterr("chat: no messages"); return -1; }
    for (size_t i = 0; i < n; i++) {
        if (!msgs[i].role || !msgs[i].content) { rys_seterr("chat: message %zu lacks a role or content", i); return -1; }
        if (!role_is(&msgs[i], "system") && !role_is(&msgs[i], "user") && !role_is(&msgs[i], "assistant")) {
            rys_seterr("chat: message %zu has role '%s' (system, user or assistant)", i, msgs[i].role);
            return -1;
        }
    }
    return 0;
}

static void render_chatml(const chat_template *t, const chat_message *msgs, size_t n, bool gen, sbuf *b) {
    if (t->default_system && !role_is(&msgs[0], "system")) {
        put(b, "<|im_start|>system\n");
        put(b, t->default_system);
        put(b, "<|im_end|>\n");
    }
    for (size_t i = 0; i < n; i++) {
        put(b, "<|im_start|>");
        put(b, msgs[i].role);
        put(b, "\n");
        put(b, msgs[i].content);
        put(b, "<|im_end|>\n");
    }
    if (gen) put(b, "<|im_start|>assistant\n");
}

static void render_llama3(const chat_template *t, const chat_message *msgs, size_t n, bool gen, sbuf *b) {
    size_t first = 0;
    if (t->knowledge_date) {
        /* 3.1+: a system block always, carrying the date lines */
        put(b, "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: ");
        put(b, t->knowledge_date);
        put(b, "\n\n");
        if (role_is(&msgs[0], "system")) { put_trimmed(b, msgs[0].content); first = 1; }
        put(b, "<|eot_id|>");
    }
    for (size_t i = first; i < n; i++) {
        put(b, "<|start_header_id|>");
        put(b, msgs[i].role);
        put(b, "<|end_header_id|>\n\n");
        put_trimmed(b, msgs[i].content);
        put(b, "<|eot_id|>");
    }
    if (gen) put(b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

/* Gemma 3 folds a system message into the first user turn; Gemma 2 refuses it.
 * Both insist on user/assistant alternation starting with the user. */
static int render_gemma(const chat_template *t, const chat_message *msgs, size_t n, bool gen, sbuf *b) {
    size_t first = 0;
    if (role_is(&msgs[0], "system")) {
        if (t->system_forbidden) { rys_seterr("chat: this Gemma template does not support a system message"); return -1; }
        first = 1;
    }
    for (size_t i = first; i < n; i++) {
        bool want_user = (i - first) % 2 == 0;
        if (role_is(&msgs[i], "user") != want_user) {
            rys_seterr("chat: Gemma conversation roles must alternate user/assistant/user/... (message %zu is %s)",
                       i, msgs[i].role);
            return -1;
        }
        put(b, "<start_of_turn>");
        put(b, role_is(&msgs[i], "assistant") ? "model" : msgs[i].role);
        put(b, "\n");
        if (i == first && first == 1) { put(b, msgs[0].content); put(b, t->system_sep); }
        put_trimmed(b, msgs[i].content);
        put(b, "<end_of_turn>\n");
    }
    if (gen) put(b, "<start_of_turn>model\n");
    return 0;
}

char *chat_format(const chat_template *t, const chat_message *msgs, size_t n, bool add_generation_prompt) {
    if (check_roles(msgs, n)) return NULL;
    sbuf b = {0};
    put(&b, "");
    switch (t->fam) {
    case FAM_CHATML: render_chatml(t, msgs, n, add_generation_prompt, &b); break;
    case FAM_LLAMA3: render_llama3(t, msgs, n, add_generation_prompt, &b); break;
    case FAM_GEMMA:
        if (render_gemma(t, msgs, n, add_generation_prompt, &b)) { free(b.s); return NULL; }
        break;
    }
    return b.s;
}
