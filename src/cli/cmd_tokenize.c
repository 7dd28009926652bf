/* rys tokenize: text -> token ids with a model's tokenizer, without loading
 * its weights. --json-strings and --decode-json are the surface that
 * tests/ref/check_tokenizer.py compares with llama.cpp. */
#include "cli/cli.h"
#include "cli/models.h"
#include "engine/tokenizer.h"
#include "base/util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A token's bytes, readable on a terminal: printable UTF-8 as is, the rest escaped. */
static void print_escaped(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n') fputs("\\n", stdout);
        else if (c == '\t') fputs("\\t", stdout);
        else if (c == '\\') fputs("\\\\", stdout);
        else if (c < 0x20 || c == 0x7F) printf("\\x%02x", c);
        else if (c >= 0x80) {
            size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
            bool ok = len && i + len <= n;
            for (size_t k = 1; ok && k < len; k++) ok = ((unsigned char)s[i + k] & 0xC0) == 0x80;
            if (ok) { fwrite(s + i, 1, len, stdout); i += len - 1; }
            else printf("\\x%02x", c);
        } else putchar(c);
    }
}

static json_t *load_json_array(const char *path) {
    json_error_t err;
    json_t *j = json_load_file(path, JSON_ALLOW_NUL, &err);
    if (!j) rys_die("%s:%d: %s", path, err.line, err.text);
    if (!json_is_array(j)) rys_die("%s: expected a JSON array", path);
    return j;
}

static void dump_json(json_t *j) {
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII);
    if (!s) rys_die("tokenize: could not write JSON");
    puts(s);
    free(s);
}

static int encode_strings(const tokenizer *tok, const char *path, bool add_bos, bool special) {
    json_t *in = load_json_array(path), *out = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(in, i, v) {
        if (!json_is_string(v)) rys_die("%s: element %zu is not a string", path, i);
        int32_t *ids;
        size_t n;
        if (tokenizer_encode(tok, json_string_value(v), json_string_length(v), add_bos, special, &ids, &n))
            rys_die("%s", rys_lasterr());
        json_t *a = json_array();
        for (size_t k = 0; k < n; k++) json_array_append_new(a, json_integer(ids[k]));
        json_array_append_new(out, a);
        free(ids);
    }
    dump_json(out);
    json_decref(out);
    json_decref(in);
    return 0;
}

static int decode_arrays(const tokenizer *tok, const char *path) {
    json_t *in = load_json_array(path), *out = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(in, i, v) {
        if (!json_is_array(v)) rys_die("%s: element %zu is not an array of ids", path, i);
        size_t n = json_array_size(v);
        int32_t *ids = xmalloc((n ? n : 1) * sizeof *ids);
        for (size_t k = 0; k < n; k++) {
            json_t *e = json_array_get(v, k);
            if (!json_is_integer(e) || json_integer_value(e) < 0 || json_integer_value(e) >= tokenizer_n_vocab(tok))
                rys_die("%s: element %zu holds something that is not a token id", path, i);
            ids[k] = (int32_t)json_integer_value(e);
        }
        size_t len;
        char *text = tokenizer_decode_len(tok, ids, n, &len);
        json_t *s = json_stringn(text, len);
        json_array_append_new(out, s ? s : json_null());
        free(text);
        free(ids);
    }
    dump_json(out);
    json_decref(out);
    json_decref(in);
    return 0;
}

static void print_ids(const tokenizer *tok, const int32_t *ids, size_t n, bool json) {
    if (json) {
        json_t *o = json_object(), *ia = json_array(), *pa = json_array();
        for (size_t k = 0; k < n; k++) {
            json_array_append_new(ia, json_integer(ids[k]));
            json_t *p = json_string(tokenizer_piece(tok, ids[k]));
            json_array_append_new(pa, p ? p : json_null());
        }
        json_object_set_new(o, "ids", ia);
        json_object_set_new(o, "pieces", pa);
        dump_json(o);
        json_decref(o);
        return;
    }
    for (size_t k = 0; k < n; k++) {
        size_t len;
        const char *b = tokenizer_token_bytes(tok, ids[k], &len);
        printf("%8d  '", ids[k]);
        print_escaped(b, len);
        printf("'%s\n", tokenizer_is_control(tok, ids[k]) ? "  (control)" : "");
    }
    fprintf(stderr, "%zu tokens\n", n);
}

int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL, *prompt = NULL, *file = NULL, *strings = NULL, *decode = NULL;
    bool add_bos = true, special = true, json = false;
    const cli_opt opts[] = {
        CLI_STR_OPT("-p", "--prompt", &prompt, "TEXT", "tokenize TEXT"),
        CLI_STR_OPT("-f", NULL, &file, "FILE", "tokenize the contents of FILE"),
        CLI_STR_OPT("--json-strings", NULL, &strings, "FILE",
                    "FILE holds a JSON array of strings; print a JSON array of id arrays"),
        CLI_STR_OPT("--decode-json", NULL, &decode, "FILE",
                    "FILE holds a JSON array of id arrays; print a JSON array of their texts\n"
                    "(null where the bytes are not valid UTF-8)"),
        CLI_NOFLAG_OPT("--no-bos", NULL, &add_bos, "never add BOS (default: add it where the model's metadata says so)"),
        CLI_NOFLAG_OPT("--no-special", NULL, &special, "treat text like <|im_start|> as plain text"),
        CLI_JSON(&json, "print {\"ids\": [...], \"pieces\": [...]} instead of one token per line"),
        CLI_END,
    };
    const cli_arg args[] = {CLI_MODEL_ARG(&model), CLI_ARG_END};
    const cli_spec spec = {"tokenize", "MODEL (-p TEXT | -f FILE | --json-strings FILE | --decode-json FILE)\n"
                                       "                    [--no-bos] [--no-special] [--json]",
                           opts, args, NULL, NULL, false, NULL};
    cli_parse_or_exit(&spec, argc, argv);
    if (!!prompt + !!file + !!strings + !!decode != 1)
        cli_fail(&spec, "give exactly one of -p, -f, --json-strings, --decode-json");

    char path[4096];
    if (!models_resolve(model, path, sizeof path)) rys_die("%s", rys_lasterr());
    gguf_file *g = gguf_open(path);
    if (!g) rys_die("%s", rys_lasterr());
    tokenizer *tok = tokenizer_from_gguf(g);
    if (!tok) rys_die("%s", rys_lasterr());

    if (strings) encode_strings(tok, strings, add_bos, special);
    else if (decode) decode_arrays(tok, decode);
    else {
        size_t len;
        char *text = prompt ? xstrdup(prompt) : read_file(file, &len);
        if (!text) rys_die("%s", rys_lasterr());
        if (prompt) len = strlen(text);
        int32_t *ids;
        size_t n;
        if (tokenizer_encode(tok, text, len, add_bos, special, &ids, &n)) rys_die("%s", rys_lasterr());
        print_ids(tok, ids, n, json);
        free(ids);
        free(text);
    }
    tokenizer_free(tok);
    gguf_close(g);
    return 0;
}
