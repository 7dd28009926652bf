/* rys probes: make and inspect probe sets without a model: generate math sets
 * with exact answers, check a file loads (kind, items, sha256), and score a
 * text against one item the way a scan would. */
#include "cli/cli.h"
#include "probes/math.h"
#include "probes/probe_file.h"
#include "base/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(void) {
    puts("usage: rys probes math [--n N] [--seed S] [--mix SPEC] [--round nearest|floor] [-o FILE]\n"
         "       rys probes info FILE...\n"
         "       rys probes score FILE --item KEY (--text TEXT | --text-file PATH)\n"
         "  math      write a generated math probe set (JSON, exact integer answers)\n"
         "    --n N        items (default 120; with --mix, the counts' sum, which must agree)\n"
         "    --seed S     PRNG seed (default 0); the same seed gives the same file\n"
         "    --mix SPEC   NAME:COUNT[:LO-HI],... NAME: sqrt (17-18 digits), cbrt (16-19), mul14,\n"
         "                 mul7 (6-7 digit factors), sqrtdiv (10-12 digits / 16..28),\n"
         "                 cbrtmul (12-13 digits * 31..43); LO-HI overrides the digits\n"
         "                 (default: math_120's: sqrt:N/2:9-10,mul7:N/4,cbrt:rest:12-13)\n"
         "    --round R    nearest (default, like math_120) or floor (like math_16)\n"
         "    -o FILE      output (default stdout)\n"
         "  info      kind, item count and sha256 of each probe file\n"
         "  score     score a generated text against one item; prints the score and its details (JSON)");
}

static int probes_math(int argc, char **argv) {
    long n = -1;
    uint64_t seed = 0;
    const char *mix = NULL, *out_path = NULL;
    mathgen_rounding rounding = MATHGEN_NEAREST;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(); return 0; }
        else if (!strcmp(a, "--n")) n = cli_parse_long(a, cli_value(argc, argv, &i), 1, 1000000);
        else if (!strcmp(a, "--seed")) {
            const char *v = cli_value(argc, argv, &i);
            char *end;
            errno = 0;
            seed = strtoull(v, &end, 10);
            if (errno || !*v || *end || *v == '-') rys_die("--seed: expected an integer in [0, 2^64), got '%s'", v);
        } else if (!strcmp(a, "--mix")) mix = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--round")) {
            const char *v = cli_value(argc, argv, &i);
            if (!strcmp(v, "nearest")) rounding = MATHGEN_NEAREST;
            else if (!strcmp(v, "floor")) rounding = MATHGEN_FLOOR;
            else rys_die("--round: expected nearest or floor, got '%s'", v);
        } else if (!strcmp(a, "-o")) out_path = cli_value(argc, argv, &i);
        else rys_die("probes math: unexpected argument %s", a);
    }
    int n_parts;
    mathgen_part *parts;
    if (mix) {
        parts = mathgen_parse_mix(mix, &n_parts);
        if (!parts) rys_die("%s", rys_lasterr());
        long total = 0;
        for (int p = 0; p < n_parts; p++) total += parts[p].count;
        if (n >= 0 && n != total) rys_die("--n %ld but --mix asks for %ld items", n, total);
    } else {
        parts = mathgen_default_mix(n >= 0 ? (int)n : 120, &n_parts);
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
    if (argc < 2) { usage(); return 1; }
    for (int i = 1; i < argc; i++) {
        probe_set *s = probe_set_load(argv[i]);
        if (!s) rys_die("%s", rys_lasterr());
        printf("%s\t%s\t%d items\tsha256 %s\n", s->path, probe_kind_name(s->kind), s->n, s->sha256);
        probe_set_free(s);
    }
    return 0;
}

static int probes_score(int argc, char **argv) {
    const char *file = NULL, *key = NULL, *text = NULL, *text_file = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--item")) key = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--text")) text = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--text-file")) text_file = cli_value(argc, argv, &i);
        else if (a[0] == '-') rys_die("probes score: unknown option %s", a);
        else if (!file) file = a;
        else rys_die("probes score: unexpected argument %s", a);
    }
    if (!file || !key || !text == !text_file) { usage(); return 1; }
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
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) { usage(); return argc < 2; }
    if (!strcmp(argv[1], "math")) return probes_math(argc - 1, argv + 1);
    if (!strcmp(argv[1], "info")) return probes_info(argc - 1, argv + 1);
    if (!strcmp(argv[1], "score")) return probes_score(argc - 1, argv + 1);
    rys_die("probes: unknown subcommand '%s' (math, info, score)", argv[1]);
}
