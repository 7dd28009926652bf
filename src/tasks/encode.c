/* encode: a (context, continuation) request turned into token ids exactly as
 * lm-evaluation-harness's _encode_pair does, because which tokens carry the
 * continuation decides the log-likelihood that is scored: BPE merges across
 * the boundary, so "Answer:" + " A" is not tok("Answer:") + tok(" A") in
 * general, and a context ending in a space would leave a lone space token.
 * The harness moves trailing whitespace to the continuation, tokenizes the
 * whole string and the context, and takes the whole's tokens after the
 * context's count. */
#include "tasks/tasks_internal.h"
#include "base/util.h"

#include <stdlib.h>
#include <string.h>

/* What Python's str.isspace() accepts, hence what str.rstrip() removes. */
static bool py_isspace(uint32_t cp) {
    if ((cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0) return true;
    if (cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029) return true;
    return cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

/* Decodes UTF-8 backwards; a malformed tail byte ends the scan (it is not
 * whitespace). */
size_t task_rstrip_len(const char *s, size_t len) {
    while (len > 0) {
        size_t start = len - 1;
        while (start > 0 && len - start < 4 && ((unsigned char)s[start] & 0xC0) == 0x80) start--;
        const unsigned char *p = (const unsigned char *)s + start;
        size_t n = len - start;
        uint32_t cp;
        if (n == 1 && p[0] < 0x80) cp = p[0];
        else if (n == 2 && (p[0] & 0xE0) == 0xC0) cp = (uint32_t)(p[0] & 0x1F) << 6 | (p[1] & 0x3F);
        else if (n == 3 && (p[0] & 0xF0) == 0xE0)
            cp = (uint32_t)(p[0] & 0x0F) << 12 | (uint32_t)(p[1] & 0x3F) << 6 | (p[2] & 0x3F);
        else return len;
        if (!py_isspace(cp)) return len;
        len = start;
    }
    return 0;
}

size_t task_lstrip_len(const char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        const unsigned char *p = (const unsigned char *)s + i;
        size_t n;
        uint32_t cp;
        if (p[0] < 0x80) n = 1, cp = p[0];
        else if ((p[0] & 0xE0) == 0xC0 && i + 2 <= len) n = 2, cp = (uint32_t)(p[0] & 0x1F) << 6 | (p[1] & 0x3F);
        else if ((p[0] & 0xF0) == 0xE0 && i + 3 <= len)
            n = 3, cp = (uint32_t)(p[0] & 0x0F) << 12 | (uint32_t)(p[1] & 0x3F) << 6 | (p[2] & 0x3F);
        else break;
        if (!py_isspace(cp)) break;
        i += n;
    }
    return i;
}

static int encode(const tokenizer *tok, const char *text, size_t len, bool add_bos, int32_t **ids, int *n) {
    size_t count;
    if (tokenizer_encode(tok, text, len, add_bos, false, ids, &count)) return -1;
    *n = (int)count;
    return 0;
}

int task_encode_pair(const tokenizer *tok, const char *context, const char *continuation, bool add_bos,
                     int32_t **ctx_ids, int *n_ctx, int32_t **cont_ids, int *n_cont) {
    *ctx_ids = *cont_ids = NULL;
    *n_ctx = *n_cont = 0;
    size_t ctx_len = strlen(context), cont_len = strlen(continuation);
    if (ctx_len == 0) {
        int32_t prefix = tokenizer_bos(tok) >= 0 ? tokenizer_bos(tok) : tokenizer_eos(tok);
        if (prefix < 0) {
            rys_seterr("empty context and the model has neither BOS nor EOS to stand for it");
            return -1;
        }
        if (encode(tok, continuation, cont_len, false, cont_ids, n_cont)) return -1;
        *ctx_ids = xmalloc(sizeof **ctx_ids);
        (*ctx_ids)[0] = prefix;
        *n_ctx = 1;
    } else {
        size_t kept = task_rstrip_len(context, ctx_len);
        char *whole = xmalloc(ctx_len + cont_len + 1);
        memcpy(whole, context, ctx_len);
        memcpy(whole + ctx_len, continuation, cont_len + 1);
        int32_t *whole_ids;
        int n_whole;
        int rc = encode(tok, whole, ctx_len + cont_len, add_bos, &whole_ids, &n_whole);
        free(whole);
        if (rc) return -1;
        if (encode(tok, context, kept, add_bos, ctx_ids, n_ctx)) {
            free(whole_ids);
            return -1;
        }
        *n_cont = n_whole > *n_ctx ? n_whole - *n_ctx : 0;
        *cont_ids = xmalloc(((size_t)*n_cont + 1) * sizeof **cont_ids);
        if (*n_cont) memcpy(*cont_ids, whole_ids + *n_ctx, (size_t)*n_cont * sizeof **cont_ids);
        free(whole_ids);
    }
    const char *problem = *n_cont == 0 ? "continuation gives no token" : *n_ctx == 0 ? "context gives no token" : NULL;
    if (problem) {
        rys_seterr("%s (context ending \"%.20s\", continuation \"%.20s\")", problem,
                   context + (ctx_len > 20 ? ctx_len - 20 : 0), continuation);
        free(*ctx_ids);
        free(*cont_ids);
        *ctx_ids = *cont_ids = NULL;
        *n_ctx = *n_cont = 0;
        return -1;
    }
    return 0;
}
