/* rys probes: make and inspect probe sets without a model: generate math sets
 * with exact answers, check a file loads (kind, items, sha256), and score a
 * text against one item the way a scan would. */
#include "cli/cli.h"
#include "probes/math.h"
#include "probes/probe_file.h"
#include "base/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out) {
    fputs("usage: rys probes math [options]     write a generated math probe set (JSON, exact integer answers)\n"
          "       rys probes info FILE...        kind, item count and sha256 of each probe file\n"
          "       rys probes score FILE --item KEY (--text TEXT | --text-file PATH)\n"
          "                                      score a generated text against one item (the score, then its details as JSON)\n"
          "rys probes SUBCOMMAND --help lists a subcommand's options.\n",
          out);
}

static int probes_math(int argc, char **argv) {
    int n = -1, round = 0;
    uint64_t seed = 0;
    const char *mix = NULL, *out_path = NULL;
    static const char *const roundings[] = {"nearest", "floor", NULL};
    const cli_opt opts[] = {
        CLI_INT_OPT("--n", NULL, &n, 1, 1000000, "N", "items (default 120; with --mix, the counts' sum, which must agree)"),
        CLI_U64_OPT("--seed", NULL, &seed, "S", "PRNG seed (default 0); the same seed gives the same file"),
        CLI_STR_OPT("--mix", NULL, &mix, "SPEC",
                    "NAME:COUNT[:LO-HI],... NAME: sqrt (17-18 digits), cbrt (16-19), mul14,\n"
                    "mul7 (6-7 digit factors), sqrtdiv (10-12 digits / 16..28),\n"
                    "cbrtmul (12-13 digits * 31..43); LO-HI overrides the digits\n"
                    "(default: math_120's: sqrt:N/2:9-10,mul7:N/4,cbrt:rest:12-13)"),
        CLI_CHOICE_OPT("--round", NULL, &round, roundings, "R", "nearest (default, like math_120) or floor (like math_16)"),
        CLI_STR_OPT("-o", NULL, &out_path, "FILE", "output (default stdout)"),
        CLI_END,
    };
    const cli_spec spec = {"probes math", "[--n N] [--seed S] [--mix SPEC] [--round nearest|floor] [-o FILE]", opts, NULL,
                           NULL, NULL, false, "Writes a generated math probe set (JSON, exact integer answers)."};
    cli_parse_or_exit(&spec, argc, argv);
    mathgen_rounding rounding = round ? MATHGEN_FLOOR : MATHGEN_NEAREST;
    int n_parts;
    mathgen_part *parts;
    if (mix) {
        parts = mathgen_parse_mix(mix, &n_parts);
        if (!parts) rys_die("%s", rys_lasterr());
        long total = 0;
        for (int p = 0; p < n_parts; p++) total += parts[p].count;
        if (n >= 0 && n != total) cli_fail(&spec, "--n %d but --mix asks for %ld items", n, total);
    } else {
        parts = mathgen_default_mix(n >= 0 ? n : 120, &n_parts);
    }
    char *json = mathgen_json(parts, n_parts, seed, rounding);
    free(parts);
    FILE *f = out_path ? fopen(out_path, "wb") : stdout;
    if (!f) rys_die("%s: cannot write", out_path);
    size_t len = strlen(json);
    bool ok = fwrite(json, 1, len, f) == len;
    ok &= out_path ? fclose(f) == 0 : fflush(f) == 0;
    free(json);
    if (!ok) rys_die("%s: write failed", out_path ? out_path : "stdout");
    return 0;
}

static int probes_info(int argc, char **argv) {
    char **files;
    int n_files;
    const cli_opt opts[] = {CLI_END};
    const cli_spec spec = {"probes info", "FILE...", opts, NULL, &files, &n_files, false,
                           "Prints the kind, item count and sha256 of each probe file."};
    cli_parse_or_exit(&spec, argc, argv);
    if (!n_files) cli_fail(&spec, "missing FILE");
    for (int i = 0; i < n_files; i++) {
        probe_set *s = probe_set_load(files[i]);
        if (!s) rys_die("%s", rys_lasterr());
        printf("%s\t%s\t%d items\tsha256 %s\n", s->path, probe_kind_name(s->kind), s->n, s->sha256);
        probe_set_free(s);
    }
    free(files);
    return 0;
}

static int probes_score(int argc, char **argv) {
    const char *file = NULL, *key = NULL, *text = NULL, *text_file = NULL;
    const cli_opt opts[] = {
        CLI_STR_REQUIRED("--item", NULL, &key, "KEY", "the item's key in FILE"),
        CLI_STR_OPT("--text", NULL, &text, "TEXT", "the generated text"),
        CLI_STR_OPT("--text-file", NULL, &text_file, "PATH", "the generated text, from a file"),
        CLI_END,
    };
    const cli_arg args[] = {{"FILE", &file, true, "a probe file"}, CLI_ARG_END};
    const cli_spec spec = {"probes score", "FILE --item KEY (--text TEXT | --text-file PATH)", opts, args, NULL, NULL, false,
                           "Scores a generated text against one item the way a scan would; prints the score,\n"
                           "a tab and its details (JSON)."};
    cli_parse_or_exit(&spec, argc, argv);
    if (!text == !text_file) cli_fail(&spec, "give one of --text and --text-file");
    char *owned = NULL;
    if (text_file) {
        size_t len;
        owned = read_file(text_file, &len);
        if (!owned) rys_die("%s", rys_lasterr());
        text = owned;
    }
    probe_set *s = probe_set_load(file);
    if (!s) rys_die("%s", rys_lasterr());
    int item = -1;
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->items[i].key, key)) item = i;
    if (item < 0) rys_die("%s: no record \"%s\"", file, key);
    char *details;
    double v = probe_score_text(s, item, text, &details);
    printf("%.17g\t%s\n", v, details);
    free(details);
    free(owned);
    probe_set_free(s);
    return 0;
}

int cmd_probes(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 1;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "math")) return probes_math(argc - 1, argv + 1);
    if (!strcmp(argv[1], "info")) return probes_info(argc - 1, argv + 1);
    if (!strcmp(argv[1], "score")) return probes_score(argc - 1, argv + 1);
    rys_die("probes: unknown subcommand '%s' (math, info, score)", argv[1]);
}
