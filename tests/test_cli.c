/* The CLI's option parser (cli_parse): every kind of value, good and bad, and
 * every class of error, each a single line naming the command. */
#include "testutil.h"

#include "cli/cli.h"

#include <string.h>

/* The destinations of the table below, reset before each line. */
typedef struct {
    const char *model, *prompt, *blocks;
    bool json, bos;
    int threads, n, order;
    uint64_t seed;
    float temp;
    double clip;
} vals;

static vals v;
static const char *const orders[] = {"rows", "coarse", NULL};

/* Parses a space-separated command line ("run MODEL -t 4") against a run-like
 * table; returns cli_parse's result. */
static int parse_line(const char *line) {
    static char buf[512];
    char *argv[32];
    int argc = 0;
    snprintf(buf, sizeof buf, "%s", line);
    for (char *t = strtok(buf, " "); t && argc < 31; t = strtok(NULL, " ")) argv[argc++] = t;
    argv[argc] = NULL;
    v = (vals){.bos = true, .n = 128};
    const cli_opt opts[] = {
        CLI_STR_REQUIRED("-p", "--prompt", &v.prompt, "S", "the prompt"),
        CLI_BLOCKS(&v.blocks),
        CLI_JSON(&v.json, "one JSON object"),
        CLI_NOFLAG_OPT("--no-bos", NULL, &v.bos, "no BOS"),
        CLI_THREADS(&v.threads),
        CLI_INT_OPT("-n", NULL, &v.n, 0, 1 << 20, "N", "new tokens"),
        CLI_CHOICE_OPT("--order", NULL, &v.order, orders, "rows|coarse", "sweep order"),
        CLI_U64_OPT("--seed", NULL, &v.seed, "S", "seed"),
        CLI_FLOAT_OPT("--temp", NULL, &v.temp, 0, 100, "T", "temperature"),
        CLI_DOUBLE_OPT("--clip", NULL, &v.clip, 1e-9, 1e9, "X", "clip"),
        CLI_END,
    };
    const cli_arg args[] = {{"MODEL", &v.model, true, "a model"}, {NULL, NULL, false, NULL}};
    const cli_spec spec = {"run", "MODEL -p PROMPT [options]", opts, args, NULL, NULL, false, NULL};
    return cli_parse(&spec, argc, argv);
}

static void test_good_values(void **state) {
    (void)state;
    assert_int_equal(parse_line("run m.gguf -p hi"), 0);
    assert_string_equal(v.model, "m.gguf");
    assert_string_equal(v.prompt, "hi");
    assert_null(v.blocks);
    assert_false(v.json);
    assert_true(v.bos);
    assert_int_equal(v.n, 128);

    assert_int_equal(parse_line("run --prompt -x -t 4 --threads 8 m --json --no-bos -n 0 --blocks 1,3;2,4 "
                                "--order coarse --seed 18446744073709551615 --temp 0.5 --clip 1e-3"),
                     0);
    assert_string_equal(v.prompt, "-x"); /* a value may start with '-' */
    assert_int_equal(v.threads, 8);      /* the last one wins */
    assert_string_equal(v.model, "m");
    assert_true(v.json);
    assert_false(v.bos);
    assert_int_equal(v.n, 0);
    assert_string_equal(v.blocks, "1,3;2,4");
    assert_int_equal(v.order, 1);
    assert_true(v.seed == UINT64_MAX);
    assert_true(v.temp == 0.5f);
    assert_true(v.clip == 1e-3);

    /* "-" is a positional; after "--" so is anything */
    assert_int_equal(parse_line("run -p x -"), 0);
    assert_string_equal(v.model, "-");
    assert_int_equal(parse_line("run -p x -- -odd-name"), 0);
    assert_string_equal(v.model, "-odd-name");
}

static void test_help(void **state) {
    (void)state;
    assert_int_equal(parse_line("run --help"), 1);
    assert_int_equal(parse_line("run m -p x -h -t nope"), 1);
}

/* Each class of bad line: the exact one-line message. */
static void test_errors(void **state) {
    (void)state;
    static const struct { const char *line, *error; } cases[] = {
        {"run m -p x --bogus", "run: unknown option '--bogus' (try rys run --help)"},
        {"run m -p x -x", "run: unknown option '-x' (try rys run --help)"},
        {"run m -p", "run: -p: missing value S"},
        {"run m -p x --threads", "run: --threads: missing value N"},
        {"run m -p x -t abc", "run: -t: 'abc' is not an integer in 1..1024"},
        {"run m -p x -t 0", "run: -t: '0' is not an integer in 1..1024"},
        {"run m -p x -t 4x", "run: -t: '4x' is not an integer in 1..1024"},
        {"run m -p x -t 99999999999999999999", "run: -t: '99999999999999999999' is not an integer in 1..1024"},
        {"run m -p x -n -1", "run: -n: '-1' is not an integer in 0..1048576"},
        {"run m -p x --seed -1", "run: --seed: '-1' is not an integer in 0..18446744073709551615"},
        {"run m -p x --seed 18446744073709551616", "run: --seed: '18446744073709551616' is not an integer in 0..18446744073709551615"},
        {"run m -p x --temp hot", "run: --temp: 'hot' is not a number in 0..100"},
        {"run m -p x --temp nan", "run: --temp: 'nan' is not a number in 0..100"},
        {"run m -p x --clip 0", "run: --clip: '0' is not a number in 1e-09..1e+09"},
        {"run m -p x --order diagonal", "run: --order: 'diagonal' is not one of rows, coarse"},
        {"run m n -p x", "run: unexpected argument 'n' (MODEL is 'm')"},
        {"run -p x", "run: missing MODEL (try rys run --help)"},
        {"run m", "run: missing -p S (try rys run --help)"},
        {"run", "run: missing MODEL (try rys run --help)"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        rys_seterr("%s", "");
        if (parse_line(cases[k].line) != -1) fail_msg("'%s' was accepted", cases[k].line);
        if (strcmp(rys_lasterr(), cases[k].error))
            fail_msg("'%s': error \"%s\", expected \"%s\"", cases[k].line, rys_lasterr(), cases[k].error);
    }
}

/* A command with subcommands collects what it does not know. */
static void test_rest(void **state) {
    (void)state;
    const char *dir = NULL;
    char **rest = NULL;
    int n_rest = 0;
    const cli_opt opts[] = {CLI_STR_OPT("--data-dir", NULL, &dir, "DIR", "data root"), CLI_END};
    const cli_spec spec = {"data", "SUBCOMMAND ...", opts, NULL, &rest, &n_rest, true, NULL};
    char *argv[] = {"data", "show", "--data-dir", "/d", "t:v", "--limit", "5", NULL};
    assert_int_equal(cli_parse(&spec, 7, argv), 0);
    assert_string_equal(dir, "/d");
    assert_int_equal(n_rest, 4);
    assert_string_equal(rest[0], "show");
    assert_string_equal(rest[1], "t:v");
    assert_string_equal(rest[2], "--limit");
    assert_string_equal(rest[3], "5");
    assert_null(rest[4]);
    free(rest);

    /* without pass_unknown, extra positionals still collect, unknown options do not */
    const cli_spec strict = {"probes info", "FILE...", opts, NULL, &rest, &n_rest, false, NULL};
    char *argv2[] = {"info", "a.json", "b.json", "--x", NULL};
    assert_int_equal(cli_parse(&strict, 4, argv2), -1);
    assert_string_equal(rys_lasterr(), "probes info: unknown option '--x' (try rys probes info --help)");
    free(rest);
    assert_int_equal(cli_parse(&strict, 3, argv2), 0);
    assert_int_equal(n_rest, 2);
    free(rest);
}

/* The help lists every argument and option with its text, continuation lines aligned. */
static void test_help_text(void **state) {
    (void)state;
    const char *model = NULL, *out = NULL;
    int threads = 0;
    bool json = false;
    const cli_opt opts[] = {
        CLI_STR_REQUIRED("-o", "--output", &out, "OUT", "output file\nor directory"),
        CLI_THREADS(&threads),
        CLI_JSON(&json, "machine-readable"),
        CLI_STR_OPT("--dump-requests", NULL, &out, "FILE[,FILE...]", "a label past the column"),
        CLI_END,
    };
    const cli_arg args[] = {CLI_MODEL_ARG(&model), CLI_ARG_END};
    const cli_spec spec = {"export", "MODEL -o OUT", opts, args, NULL, NULL, false, "A note."};
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cli_print_help(&spec, f);
    fclose(f);
    assert_string_equal(text, "usage: rys export MODEL -o OUT\n"
                              "  MODEL             a GGUF file or a known model name (rys models)\n"
                              "  -o, --output OUT  output file\n"
                              "                    or directory\n"
                              "  -t, --threads N   threads (default: $RYS_THREADS or all cores)\n"
                              "  --json            machine-readable\n"
                              "  --dump-requests FILE[,FILE...]\n"
                              "                    a label past the column\n"
                              "A note.\n");
    free(text);
}

/* A command without positional arguments refuses one. */
static void test_no_args(void **state) {
    (void)state;
    bool json = false;
    const cli_opt opts[] = {CLI_JSON(&json, "JSON"), CLI_END};
    const cli_spec spec = {"models", "[--json]", opts, NULL, NULL, NULL, false, NULL};
    char *argv[] = {"models", "--json", "x", NULL};
    assert_int_equal(cli_parse(&spec, 2, argv), 0);
    assert_true(json);
    assert_int_equal(cli_parse(&spec, 3, argv), -1);
    assert_string_equal(rys_lasterr(), "models: unexpected argument 'x'");
}

static void test_split(void **state) {
    (void)state;
    static const struct { const char *s; char sep; int n; const char *items[4]; } cases[] = {
        {"a.json,b.json", ',', 2, {"a.json", "b.json"}},
        {"a", ',', 1, {"a"}},
        {"", ',', 0, {NULL}},
        {",a,,b,", ',', 2, {"a", "b"}},
        {",,,", ',', 0, {NULL}},
        {"1,3;2,4", ';', 2, {"1,3", "2,4"}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        int n = -1;
        char **items = cli_split(cases[k].s, cases[k].sep, &n);
        assert_int_equal(n, cases[k].n);
        for (int i = 0; i < n; i++) assert_string_equal(items[i], cases[k].items[i]);
        assert_null(items[n]);
        cli_free_split(items);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_values), cmocka_unit_test(test_help),  cmocka_unit_test(test_errors),
        cmocka_unit_test(test_rest),        cmocka_unit_test(test_help_text), cmocka_unit_test(test_no_args),
        cmocka_unit_test(test_split),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
