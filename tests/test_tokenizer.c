/* Tokenizer and chat templates on tiny hand-built vocabularies (merges and
 * SentencePiece scores worked out by hand in the comments), plus the chat
 * renderings jinja2 produced from real templates (tests/data/chat_golden.json,
 * made by tests/ref/gen_chat_golden.py) and, where the real models are
 * present, ids that llama-cpp-python gave for them. */
#include "testutil.h"
#include "engine/chat.h"
#include "engine/tokenizer.h"
#include "base/util.h"

#include <jansson.h>
#include <string.h>

/* ---- a tiny byte-level BPE vocabulary ----------------------------------------
 * GPT-2's bytes_to_unicode, written out independently of tokenizer_bpe.c:
 * printable bytes keep their code point, the other 68 get 256, 257, ... in
 * byte order. */
static size_t gpt2_spell(int b, char *out) {
    bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    int cp = b;
    if (!printable) {
        int n = 0;
        for (int c = 0; c < b; c++)
            if (!((c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF))) n++;
        cp = 256 + n;
    }
    if (cp < 0x80) { out[0] = (char)cp; out[1] = 0; return 1; }
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    out[2] = 0;
    return 2;
}

#define MAX_TOK 512
typedef struct {
    char text[MAX_TOK][32];
    tok_str toks[MAX_TOK];
    int32_t types[MAX_TOK];
    float scores[MAX_TOK];
    int n;
    tok_str merges[64];
    int n_merges;
} vocab_builder;

static int add_tok(vocab_builder *b, const char *s, size_t len, int32_t type, float score) {
    memcpy(b->text[b->n], s, len);
    b->toks[b->n] = (tok_str){b->text[b->n], len};
    b->types[b->n] = type;
    b->scores[b->n] = score;
    return b->n++;
}

static int add_str(vocab_builder *b, const char *s, int32_t type) { return add_tok(b, s, strlen(s), type, 0); }

/* The 256 byte tokens (ids 0..255 = byte values), then these merges, whose
 * results become tokens. "Ġ" is the spelling of a space. */
static const char *const bpe_merges[] = {
    "l l",      /* 0 */
    "h e",      /* 1 */
    "he ll",    /* 2 */
    "o r",      /* 3 */
    "Ġ w",      /* 4 */
    "Ġw or",    /* 5 */
    "hell o",   /* 6 */
    "e l",      /* 7: loses to 0 and 1 in "hello" */
    "2 0",      /* 8 */
    "t '",      /* 9: must never cross the it|'s pre-token boundary */
    "' s",      /* 10 */
};

static tokenizer *tiny_bpe(const char *pre, vocab_builder *b, bool add_bos) {
    memset(b, 0, sizeof *b);
    for (int c = 0; c < 256; c++) {
        char s[4];
        size_t n = gpt2_spell(c, s);
        add_tok(b, s, n, TOKEN_NORMAL, 0);
    }
    for (size_t i = 0; i < sizeof bpe_merges / sizeof bpe_merges[0]; i++) {
        const char *m = bpe_merges[i];
        const char *sp = strchr(m, ' ');
        char joined[32];
        snprintf(joined, sizeof joined, "%.*s%s", (int)(sp - m), m, sp + 1);
        add_str(b, joined, TOKEN_NORMAL);
        b->merges[b->n_merges++] = (tok_str){m, strlen(m)};
    }
    add_str(b, "<|endoftext|>", TOKEN_CONTROL);
    add_str(b, "<|im_start|>", TOKEN_CONTROL);
    add_str(b, "<|im_end|>", TOKEN_CONTROL);
    add_str(b, "<|im_end|>!", TOKEN_CONTROL);       /* longer special overlapping a shorter one */
    add_str(b, "<tool>", TOKEN_USER_DEFINED);
    add_str(b, "hel", TOKEN_NORMAL);                /* no merge makes it: only Llama 3's whole-word rule */
    tokenizer_vocab v;
    tokenizer_vocab_defaults(&v, "gpt2");
    v.pre = pre;
    v.n_tokens = (size_t)b->n;
    v.tokens = b->toks;
    v.types = b->types;
    v.merges = b->merges;
    v.n_merges = (size_t)b->n_merges;
    v.bos_id = 256 + 11;                            /* <|endoftext|> */
    v.eos_id = 256 + 11;
    v.add_bos = add_bos;
    tokenizer *t = tokenizer_from_vocab(&v);
    if (!t) fail_msg("%s", rys_lasterr());
    return t;
}

static void expect_ids(const tokenizer *t, const char *text, bool add_bos, bool special, const char *const *pieces,
                       size_t n_want) {
    int32_t *ids;
    size_t n;
    assert_int_equal(tokenizer_encode(t, text, strlen(text), add_bos, special, &ids, &n), 0);
    if (n != n_want) fail_msg("'%s': %zu tokens, want %zu", text, n, n_want);
    for (size_t i = 0; i < n; i++) {
        int32_t want = tokenizer_find(t, pieces[i]);
        assert_true(want >= 0);
        if (ids[i] != want) fail_msg("'%s': token %zu is '%s', want '%s'", text, i, tokenizer_piece(t, ids[i]), pieces[i]);
    }
    free(ids);
}

static void test_bpe_merges_by_rank(void **s) {
    (void)s;
    vocab_builder b;
    tokenizer *t = tiny_bpe("gpt2", &b, false);
    /* h e l l o: "l l"(0) -> h e ll o; "h e"(1) -> he ll o; "he ll"(2); "hell o"(6) */
    expect_ids(t, "hello", false, true, (const char *[]){"hello"}, 1);
    /* Ġ w o r l d: "o r"(3), "Ġ w"(4), "Ġw or"(5); l and d stay */
    expect_ids(t, "hello world", false, true, (const char *[]){"hello", "Ġwor", "l", "d"}, 4);
    /* l l l: two "l l" pairs of equal rank, the left one wins */
    expect_ids(t, "lll", false, true, (const char *[]){"ll", "l"}, 2);
    /* "e l"(7) would apply to h e l but "h e"(1) goes first */
    expect_ids(t, "hel", false, true, (const char *[]){"he", "l"}, 2);
    tokenizer_free(t);
}

static void test_bpe_pretokenizer_boundaries(void **s) {
    (void)s;
    vocab_builder b;
    tokenizer *t = tiny_bpe("gpt2", &b, false);
    /* gpt2 regex: "it" "'s": the merge "t '" cannot cross, "' s" applies */
    expect_ids(t, "it's", false, true, (const char *[]){"i", "t", "'s"}, 3);
    /* two spaces before a digit: "\s+(?!\S)" takes one, " ?\p{N}+" the other with the digits */
    expect_ids(t, "a  2024", false, true, (const char *[]){"a", "Ġ", "Ġ", "20", "2", "4"}, 6);
    tokenizer_free(t);
    /* smollm: every digit is its own pre-token first, so "2 0" never merges */
    t = tiny_bpe("smollm", &b, false);
    expect_ids(t, "2024", false, true, (const char *[]){"2", "0", "2", "4"}, 4);
    tokenizer_free(t);
    /* llama3: digits in runs of at most three: "202" "02"; a whole pre-token in
     * the vocabulary is taken as is ("20" here) */
    t = tiny_bpe("llama-bpe", &b, false);
    expect_ids(t, "20202", false, true, (const char *[]){"20", "2", "0", "2"}, 4);
    expect_ids(t, "hel", false, true, (const char *[]){"hel"}, 1);
    tokenizer_free(t);
    /* qwen2: one digit at a time; newline runs stay together with the space before them */
    t = tiny_bpe("qwen2", &b, false);
    expect_ids(t, "202", false, true, (const char *[]){"2", "0", "2"}, 3);
    expect_ids(t, "a \n\nb", false, true, (const char *[]){"a", "Ġ", "Ċ", "Ċ", "b"}, 5);
    tokenizer_free(t);
}

static void test_bpe_special_tokens(void **s) {
    (void)s;
    vocab_builder b;
    tokenizer *t = tiny_bpe("gpt2", &b, true);
    expect_ids(t, "he<|im_start|>he", false, true, (const char *[]){"he", "<|im_start|>", "he"}, 3);
    /* the longer special wins where both match */
    expect_ids(t, "<|im_end|>!<|im_end|>", false, true, (const char *[]){"<|im_end|>!", "<|im_end|>"}, 2);
    /* BOS first when both the caller and the vocabulary ask for it */
    expect_ids(t, "he", true, true, (const char *[]){"<|endoftext|>", "he"}, 2);
    /* control tokens are plain text without parse_special; user-defined ones still match */
    expect_ids(t, "<|im_end|><tool>", false, false,
               (const char *[]){"<", "|", "i", "m", "_", "e", "n", "d", "|", ">", "<tool>"}, 11);
    tokenizer_free(t);
    t = tiny_bpe("gpt2", &b, false);
    expect_ids(t, "he", true, true, (const char *[]){"he"}, 1);   /* vocabulary says no BOS */
    tokenizer_free(t);
}

static void test_bpe_round_trip_any_bytes(void **s) {
    (void)s;
    vocab_builder b;
    tokenizer *t = tiny_bpe("qwen2", &b, false);
    const char *texts[] = {"hello world", "\xff\xfe invalid \xc3 utf-8 \xe2\x82", "\xf0\x9f\x98\x80 emoji \xe4\xbd\xa0",
                           "tabs\t\tand\r\nnewlines\n\n\n", "nul"};
    for (size_t k = 0; k < sizeof texts / sizeof texts[0]; k++) {
        int32_t *ids;
        size_t n, len;
        assert_int_equal(tokenizer_encode(t, texts[k], strlen(texts[k]), false, true, &ids, &n), 0);
        char *back = tokenizer_decode_len(t, ids, n, &len);
        assert_int_equal(len, strlen(texts[k]));
        assert_memory_equal(back, texts[k], len);
        free(back);
        free(ids);
    }
    /* every byte value, NUL included */
    char all[256];
    for (int c = 0; c < 256; c++) all[c] = (char)c;
    int32_t *ids;
    size_t n, len;
    assert_int_equal(tokenizer_encode(t, all, 256, false, true, &ids, &n), 0);
    char *back = tokenizer_decode_len(t, ids, n, &len);
    assert_int_equal(len, 256);
    assert_memory_equal(back, all, 256);
    free(back);
    free(ids);
    /* empty text: no tokens, and a pointer that may be freed */
    assert_int_equal(tokenizer_encode(t, "", 0, false, true, &ids, &n), 0);
    assert_int_equal(n, 0);
    free(ids);
    tokenizer_free(t);
}

static void test_stream_never_splits_characters(void **s) {
    (void)s;
    vocab_builder b;
    tokenizer *t = tiny_bpe("gpt2", &b, false);
    tokenizer_stream st = {0};
    char buf[64];
    /* "é" = C3 A9 arrives as two byte tokens (token id = byte value here) */
    assert_int_equal(tokenizer_stream_token(t, &st, 'a', buf, sizeof buf), 1);
    assert_int_equal(tokenizer_stream_token(t, &st, 0xC3, buf, sizeof buf), 0);
    assert_int_equal(tokenizer_stream_token(t, &st, 0xA9, buf, sizeof buf), 2);
    assert_memory_equal(buf, "\xc3\xa9", 2);
    /* a 4-byte emoji over three tokens */
    assert_int_equal(tokenizer_stream_token(t, &st, 0xF0, buf, sizeof buf), 0);
    assert_int_equal(tokenizer_stream_token(t, &st, 0x9F, buf, sizeof buf), 0);
    assert_int_equal(tokenizer_stream_token(t, &st, 0x98, buf, sizeof buf), 0);
    assert_int_equal(tokenizer_stream_token(t, &st, 0x80, buf, sizeof buf), 4);
    assert_memory_equal(buf, "\xf0\x9f\x98\x80", 4);
    /* a lone continuation byte or an invalid lead is passed on at once */
    assert_int_equal(tokenizer_stream_token(t, &st, 0xA9, buf, sizeof buf), 1);
    assert_int_equal(tokenizer_stream_token(t, &st, 0xFF, buf, sizeof buf), 1);
    /* an unfinished character at the end comes out on flush */
    assert_int_equal(tokenizer_stream_token(t, &st, 0xE4, buf, sizeof buf), 0);
    assert_int_equal(tokenizer_stream_flush(&st, buf, sizeof buf), 1);
    assert_int_equal((unsigned char)buf[0], 0xE4);
    tokenizer_free(t);
}

static void test_eog_and_lookups(void **s) {
    (void)s;
    vocab_builder b;
    tokenizer *t = tiny_bpe("gpt2", &b, false);
    assert_true(tokenizer_is_eog(t, tokenizer_find(t, "<|im_end|>")));
    assert_true(tokenizer_is_eog(t, tokenizer_find(t, "<|endoftext|>")));
    assert_false(tokenizer_is_eog(t, tokenizer_find(t, "<|im_start|>")));
    assert_false(tokenizer_is_eog(t, tokenizer_find(t, "hello")));
    assert_false(tokenizer_is_eog(t, -1));
    assert_int_equal(tokenizer_n_vocab(t), b.n);
    assert_int_equal(tokenizer_find(t, "nope"), -1);
    assert_int_equal(tokenizer_bos(t), 267);
    size_t len;
    const char *bytes = tokenizer_token_bytes(t, tokenizer_find(t, "hello"), &len);
    assert_int_equal(len, 5);
    assert_memory_equal(bytes, "hello", 5);
    tokenizer_token_bytes(t, -1, &len);
    assert_int_equal(len, 0);                           /* an id out of range stands for no bytes */
    tokenizer_free(t);
}

static void test_bad_metadata(void **s) {
    (void)s;
    vocab_builder b;
    memset(&b, 0, sizeof b);
    add_str(&b, "a", TOKEN_NORMAL);
    tokenizer_vocab v;
    tokenizer_vocab_defaults(&v, "gpt2");
    v.tokens = b.toks;
    v.n_tokens = 1;
    v.pre = "klingon";
    assert_null(tokenizer_from_vocab(&v));
    assert_non_null(strstr(rys_lasterr(), "'klingon'"));
    v.model = "wordpiece";
    assert_null(tokenizer_from_vocab(&v));
    assert_non_null(strstr(rys_lasterr(), "'wordpiece'"));
    v.model = "gpt2";
    v.pre = "gpt2";
    tok_str bad[] = {{"a b", 3}};
    v.merges = bad;
    v.n_merges = 1;
    assert_null(tokenizer_from_vocab(&v));
    assert_non_null(strstr(rys_lasterr(), "merge 0"));
    v.n_merges = 0;
    v.bos_id = 5;
    assert_null(tokenizer_from_vocab(&v));
}

/* ---- a tiny SentencePiece vocabulary ------------------------------------------ */

static tokenizer *tiny_spm(vocab_builder *b) {
    memset(b, 0, sizeof *b);
    add_str(b, "<unk>", TOKEN_UNKNOWN);                         /* 0 */
    add_str(b, "<s>", TOKEN_CONTROL);                           /* 1 */
    add_str(b, "</s>", TOKEN_CONTROL);                          /* 2 */
    for (int c = 0; c < 256; c++) {
        char h[8];
        snprintf(h, sizeof h, "<0x%02X>", c);
        add_str(b, h, TOKEN_BYTE);
    }
    static const struct { const char *s; float score; } pieces[] = {
        {"\xe2\x96\x81", -5}, {"h", -6}, {"e", -6}, {"l", -6}, {"o", -6}, {"a", -6}, {"b", -6},
        {"\xe2\x96\x81h", -1}, {"he", -2}, {"ll", -0.5f}, {"llo", -3}, {"\xe2\x96\x81he", -1.5f},
        {"\xe2\x96\x81" "a", -1},
    };
    for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++)
        add_tok(b, pieces[i].s, strlen(pieces[i].s), TOKEN_NORMAL, pieces[i].score);
    tokenizer_vocab v;
    tokenizer_vocab_defaults(&v, "llama");
    v.n_tokens = (size_t)b->n;
    v.tokens = b->toks;
    v.types = b->types;
    v.scores = b->scores;
    v.bos_id = 1;
    v.eos_id = 2;
    v.unk_id = 0;
    tokenizer *t = tokenizer_from_vocab(&v);
    if (!t) fail_msg("%s", rys_lasterr());
    return t;
}

static void test_spm_scores_and_byte_fallback(void **s) {
    (void)s;
    vocab_builder b;
    tokenizer *t = tiny_spm(&b);
    /* "▁hello": pairs ▁h(-1) he(-2) ll(-0.5): ll first; then ▁h; then ▁he(-1.5)
     * beats llo(-3); ▁hell is no token, so ▁he + llo */
    expect_ids(t, "hello", false, true, (const char *[]){"\xe2\x96\x81he", "llo"}, 2);
    /* BOS by default for SentencePiece; spaces become ▁ */
    expect_ids(t, "a b", true, true, (const char *[]){"<s>", "\xe2\x96\x81" "a", "\xe2\x96\x81", "b"}, 4);
    /* é is no token: its two bytes as <0xC3> <0xA9> */
    expect_ids(t, "h\xc3\xa9", false, true, (const char *[]){"\xe2\x96\x81h", "<0xC3>", "<0xA9>"}, 3);
    /* a space prefix after a special token too, as llama.cpp adds one */
    expect_ids(t, "a</s>a", false, true, (const char *[]){"\xe2\x96\x81" "a", "</s>", "\xe2\x96\x81" "a"}, 3);
    const char *texts[] = {"hello", "h\xc3\xa9 llo", "  two spaces", "a</s> b", "\xf0\x9f\x98\x80"};
    for (size_t k = 0; k < sizeof texts / sizeof texts[0]; k++) {
        int32_t *ids;
        size_t n;
        assert_int_equal(tokenizer_encode(t, texts[k], strlen(texts[k]), false, true, &ids, &n), 0);
        char *back = tokenizer_decode(t, ids, n);
        assert_string_equal(back, texts[k]);
        free(back);
        free(ids);
    }
    tokenizer_free(t);
}

/* ---- chat templates against jinja2 ------------------------------------------- */

static void test_chat_matches_jinja2(void **s) {
    (void)s;
    json_error_t err;
    json_t *root = json_load_file("tests/data/chat_golden.json", 0, &err);
    if (!root) fail_msg("tests/data/chat_golden.json: %s (run the tests from the repository root)", err.text);
    size_t i, checked = 0;
    json_t *tpl;
    json_array_foreach(root, i, tpl) {
        const char *name = json_string_value(json_object_get(tpl, "name"));
        chat_template *ct = chat_template_from_string(json_string_value(json_object_get(tpl, "template")));
        if (!ct) fail_msg("%s: %s", name, rys_lasterr());
        size_t k;
        json_t *c;
        json_array_foreach(json_object_get(tpl, "cases"), k, c) {
            json_t *jm = json_object_get(c, "messages");
            size_t n = json_array_size(jm);
            chat_message msgs[8];
            for (size_t m = 0; m < n; m++)
                msgs[m] = (chat_message){json_string_value(json_object_get(json_array_get(jm, m), "role")),
                                         json_string_value(json_object_get(json_array_get(jm, m), "content"))};
            char *got = chat_format(ct, msgs, n, json_is_true(json_object_get(c, "add_generation_prompt")));
            json_t *want = json_object_get(c, "expected");
            if (json_is_null(want)) {
                if (got) fail_msg("%s case %zu: jinja2 refused, rys rendered '%s'", name, k, got);
            } else {
                if (!got) fail_msg("%s case %zu: %s", name, k, rys_lasterr());
                if (strcmp(got, json_string_value(want)))
                    fail_msg("%s case %zu:\nrys:    '%s'\njinja2: '%s'", name, k, got, json_string_value(want));
            }
            free(got);
            checked++;
        }
        chat_template_free(ct);
    }
    assert_true(checked >= 100);
    json_decref(root);
}

static void test_chat_unknown_template(void **s) {
    (void)s;
    assert_null(chat_template_from_string("{% for m in messages %}[[{{ m.content }}]]{% endfor %}"));
    assert_non_null(strstr(rys_lasterr(), "unknown family"));
    chat_template *t = chat_template_from_string("<|im_start|>");
    chat_message bad = {"tool", "x"};
    assert_null(chat_format(t, &bad, 1, true));
    assert_non_null(strstr(rys_lasterr(), "'tool'"));
    assert_null(chat_format(t, NULL, 0, true));
    chat_template_free(t);
}

/* ---- the real files, when present: ids from llama-cpp-python ------------------ */

static const char *model_path(const char *name) {
    static char p[512];
    const char *home = getenv("HOME");
    snprintf(p, sizeof p, "%s/.cache/rys/models/%s.gguf", home ? home : "", name);
    return access(p, R_OK) == 0 ? p : NULL;
}

static void expect_real(const char *name, const char *text, const int32_t *want, size_t n_want, const char *family) {
    const char *path = model_path(name);
    if (!path) { skip(); return; }
    gguf_file *g = gguf_open(path);
    if (!g) fail_msg("%s", rys_lasterr());
    tokenizer *t = tokenizer_from_gguf(g);
    if (!t) fail_msg("%s", rys_lasterr());
    int32_t *ids;
    size_t n;
    assert_int_equal(tokenizer_encode(t, text, strlen(text), true, true, &ids, &n), 0);
    assert_int_equal(n, n_want);
    for (size_t i = 0; i < n; i++) assert_int_equal(ids[i], want[i]);
    free(ids);
    chat_template *ct = chat_template_from_gguf(g);
    if (family) {
        if (!ct) fail_msg("%s", rys_lasterr());
        assert_string_equal(chat_template_family(ct), family);
        chat_template_free(ct);
    } else {
        assert_null(ct);                            /* a base model without a template */
        assert_non_null(strstr(rys_lasterr(), "no tokenizer.chat_template"));
    }
    tokenizer_free(t);
    gguf_close(g);
}

static void test_real_smollm2(void **s) {
    (void)s;
    /* llama_cpp.Llama(path, vocab_only=True).tokenize(b"Hello world, it's 2024! <|im_start|>user", True, True) */
    const int32_t want[] = {19556, 905, 28, 357, 506, 216, 34, 32, 34, 36, 17, 216, 1, 4093};
    expect_real("smollm2-135m", "Hello world, it's 2024! <|im_start|>user", want, 14, "chatml");
}

static void test_real_qwen25(void **s) {
    (void)s;
    const int32_t want[] = {9707, 1879, 11, 432, 594, 220, 17, 15, 17, 19, 0, 220, 151644, 872};
    expect_real("qwen2.5-coder-0.5b", "Hello world, it's 2024! <|im_start|>user", want, 14, "chatml");
}

static void test_real_gemma3(void **s) {
    (void)s;
    /* SentencePiece: BOS added as the metadata says; "\n" is a user-defined token in Gemma 3 */
    const int32_t want[] = {2, 9259, 1902, 236764, 625, 236789, 236751, 236743, 236778, 236771,
                            236778, 236812, 236888, 236743, 105, 2364, 107, 1789, 238527, 560};
    expect_real("gemma3-270m", "Hello world, it's 2024! <start_of_turn>user\nna\xc3\xafve", want, 20, NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bpe_merges_by_rank),
        cmocka_unit_test(test_bpe_pretokenizer_boundaries),
        cmocka_unit_test(test_bpe_special_tokens),
        cmocka_unit_test(test_bpe_round_trip_any_bytes),
        cmocka_unit_test(test_stream_never_splits_characters),
        cmocka_unit_test(test_eog_and_lookups),
        cmocka_unit_test(test_bad_metadata),
        cmocka_unit_test(test_spm_scores_and_byte_fallback),
        cmocka_unit_test(test_chat_matches_jinja2),
        cmocka_unit_test(test_chat_unknown_template),
        cmocka_unit_test(test_real_smollm2),
        cmocka_unit_test(test_real_qwen25),
        cmocka_unit_test(test_real_gemma3),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
