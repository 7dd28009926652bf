/* Option parsing shared by the subcommands: each command declares a table of
 * its options (cli.h), and this one walker turns argv into values, so every
 * command accepts the same forms and refuses bad input with the same one-line
 * messages. */
#include "cli/cli.h"
#include "base/util.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The table entry spelled `arg`, or NULL. */
static const cli_opt *find_opt(const cli_opt *opts, const char *arg) {
    for (const cli_opt *o = opts; o->name; o++)
        if (!strcmp(o->name, arg) || (o->alias && !strcmp(o->alias, arg))) return o;
    return NULL;
}

static bool takes_value(const cli_opt *o) { return o->kind != CLI_FLAG && o->kind != CLI_NOFLAG; }

/* How the help names o: "-t, --threads N". */
static void opt_label(const cli_opt *o, char *buf, size_t cap) {
    snprintf(buf, cap, "%s%s%s%s%s", o->name, o->alias ? ", " : "", o->alias ? o->alias : "", o->metavar ? " " : "",
             o->metavar ? o->metavar : "");
}

/* Stores val into o's destination; -1 with the error set when val is not what
 * o takes. `as` is the spelling the user typed, so the message quotes it. */
static int set_value(const cli_spec *spec, const cli_opt *o, const char *as, const char *val) {
    char *end;
    errno = 0;
    switch (o->kind) {
    case CLI_FLAG: *(bool *)o->dest = true; return 0;
    case CLI_NOFLAG: *(bool *)o->dest = false; return 0;
    case CLI_STR: *(const char **)o->dest = val; return 0;
    case CLI_INT: {
        long long v = strtoll(val, &end, 10);
        if (errno || end == val || *end || v < o->lo || v > o->hi) {
            rys_seterr("%s: %s: '%s' is not an integer in %lld..%lld", spec->cmd, as, val, (long long)o->lo,
                       (long long)o->hi);
            return -1;
        }
        *(int *)o->dest = (int)v;
        return 0;
    }
    case CLI_U64: {
        /* strtoull would take "-1" as 2^64-1 */
        unsigned long long v = strtoull(val, &end, 10);
        if (errno || end == val || *end || strchr(val, '-')) {
            rys_seterr("%s: %s: '%s' is not an integer in 0..%llu", spec->cmd, as, val, (unsigned long long)UINT64_MAX);
            return -1;
        }
        *(uint64_t *)o->dest = (uint64_t)v;
        return 0;
    }
    case CLI_FLOAT:
    case CLI_DOUBLE: {
        double v = strtod(val, &end);
        if (errno || end == val || *end || !(v >= o->lo && v <= o->hi)) {
            rys_seterr("%s: %s: '%s' is not a number in %g..%g", spec->cmd, as, val, o->lo, o->hi);
            return -1;
        }
        if (o->kind == CLI_FLOAT) *(float *)o->dest = (float)v;
        else *(double *)o->dest = v;
        return 0;
    }
    case CLI_CHOICE: {
        for (int k = 0; o->choices[k]; k++)
            if (!strcmp(o->choices[k], val)) {
                *(int *)o->dest = k;
                return 0;
            }
        char list[256] = "";
        for (int k = 0; o->choices[k]; k++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", k ? ", " : "", o->choices[k]);
        rys_seterr("%s: %s: '%s' is not one of %s", spec->cmd, as, val, list);
        return -1;
    }
    }
    return -1;
}

int cli_parse(const cli_spec *spec, int argc, char **argv) {
    int n_opts = 0, n_args = 0, n_pos = 0;
    while (spec->opts[n_opts].name) n_opts++;
    while (spec->args && spec->args[n_args].name) n_args++;
    bool *seen = xcalloc((size_t)n_opts + 1, sizeof *seen);
    if (spec->rest) {
        *spec->rest = xcalloc((size_t)argc + 1, sizeof **spec->rest);
        *spec->n_rest = 0;
    }
    int rc = 0;
    bool options_end = false;
    for (int i = 1; i < argc && !rc; i++) {
        const char *a = argv[i];
        /* "-" is a positional (stdin by convention); after "--" everything is */
        bool is_opt = !options_end && a[0] == '-' && a[1];
        if (is_opt && !strcmp(a, "--")) {
            options_end = true;
            continue;
        }
        if (is_opt && (!strcmp(a, "-h") || !strcmp(a, "--help"))) {
            rc = 1;
            break;
        }
        const cli_opt *o = is_opt ? find_opt(spec->opts, a) : NULL;
        if (o) {
            seen[o - spec->opts] = true;
            if (!takes_value(o)) {
                rc = set_value(spec, o, a, NULL);
            } else if (i + 1 >= argc) {
                rys_seterr("%s: %s: missing value%s%s", spec->cmd, a, o->metavar ? " " : "", o->metavar ? o->metavar : "");
                rc = -1;
            } else {
                rc = set_value(spec, o, a, argv[++i]);
            }
        } else if (is_opt && !spec->pass_unknown) {
            rys_seterr("%s: unknown option '%s' (try rys %s --help)", spec->cmd, a, spec->cmd);
            rc = -1;
        } else if (!is_opt && n_pos < n_args) {
            *spec->args[n_pos++].dest = a;
        } else if (spec->rest) {
            (*spec->rest)[(*spec->n_rest)++] = argv[i];
        } else if (n_args) {
            rys_seterr("%s: unexpected argument '%s' (%s is '%s')", spec->cmd, a, spec->args[n_args - 1].name,
                       *spec->args[n_args - 1].dest);
            rc = -1;
        } else {
            rys_seterr("%s: unexpected argument '%s'", spec->cmd, a);
            rc = -1;
        }
    }
    for (int k = n_pos; !rc && k < n_args; k++)
        if (spec->args[k].required) {
            rys_seterr("%s: missing %s (try rys %s --help)", spec->cmd, spec->args[k].name, spec->cmd);
            rc = -1;
        }
    for (int k = 0; !rc && k < n_opts; k++)
        if (spec->opts[k].required && !seen[k]) {
            const cli_opt *o = &spec->opts[k];
            rys_seterr("%s: missing %s%s%s (try rys %s --help)", spec->cmd, o->name,
                       o->metavar ? " " : "", o->metavar ? o->metavar : "", spec->cmd);
            rc = -1;
        }
    free(seen);
    return rc;
}

void cli_parse_or_exit(const cli_spec *spec, int argc, char **argv) {
    int rc = cli_parse(spec, argc, argv);
    if (rc < 0) rys_die("%s", rys_lasterr());
    if (rc > 0) {
        cli_print_help(spec, stdout);
        exit(fflush(stdout) == 0 ? 0 : 2);
    }
}

/* One help row: the label padded to `width`, then the text, whose further
 * lines start under its first. */
static void help_row(FILE *out, const char *label, int width, const char *help) {
    int n = fprintf(out, "  %-*s", width, label);
    if (!help) {
        fputc('\n', out);
        return;
    }
    /* a label longer than the column gets its text on the next line */
    if (n > width + 2) fprintf(out, "\n%*s", width + 2, "");
    for (const char *p = help; *p;) {
        const char *nl = strchr(p, '\n');
        int len = nl ? (int)(nl - p) : (int)strlen(p);
        fprintf(out, "  %.*s\n", len, p);
        if (!nl) break;
        p = nl + 1;
        fprintf(out, "%*s", width + 2, "");
    }
}

void cli_print_help(const cli_spec *spec, FILE *out) {
    enum { MAX_WIDTH = 22 };
    int width = 0;
    char label[128];
    /* the column fits the labels up to MAX_WIDTH; longer ones wrap instead of
     * pushing every row's text to the right */
    for (const cli_arg *a = spec->args; a && a->name; a++)
        if ((int)strlen(a->name) > width && (int)strlen(a->name) <= MAX_WIDTH) width = (int)strlen(a->name);
    for (const cli_opt *o = spec->opts; o->name; o++) {
        opt_label(o, label, sizeof label);
        if ((int)strlen(label) > width && (int)strlen(label) <= MAX_WIDTH) width = (int)strlen(label);
    }
    fprintf(out, "usage: rys %s %s\n", spec->cmd, spec->synopsis);
    for (const cli_arg *a = spec->args; a && a->name; a++) help_row(out, a->name, width, a->help);
    for (const cli_opt *o = spec->opts; o->name; o++) {
        opt_label(o, label, sizeof label);
        help_row(out, label, width, o->help);
    }
    if (spec->notes) fprintf(out, "%s\n", spec->notes);
}

void cli_fail(const cli_spec *spec, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    rys_die("%s: %s (try rys %s --help)", spec->cmd, msg, spec->cmd);
}

char **cli_split(const char *s, char sep, int *n) {
    char **items = xmalloc((strlen(s) / 2 + 2) * sizeof *items);
    int k = 0;
    for (const char *p = s; *p;) {
        const char *end = strchr(p, sep);
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len) {
            items[k] = xmalloc(len + 1);
            memcpy(items[k], p, len);
            items[k++][len] = 0;
        }
        p += len + (end ? 1 : 0);
    }
    items[k] = NULL;
    *n = k;
    return items;
}

void cli_free_split(char **items) {
    for (char **p = items; p && *p; p++) free(*p);
    free(items);
}


/* ---- warnings ---------------------------------------------------------------- */

static char **warnings;
static int n_warnings;

void cli_warn(const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (int i = 0; i < n_warnings; i++)
        if (!strcmp(warnings[i], msg)) return;
    warnings = xrealloc(warnings, (size_t)(n_warnings + 1) * sizeof *warnings);
    warnings[n_warnings++] = xstrdup(msg);
    fprintf(stderr, "rys: warning: %s\n", msg);
}

void cli_json_warnings(json_t *o) {
    json_t *a = json_array();
    for (int i = 0; i < n_warnings; i++) json_array_append_new(a, json_string(warnings[i]));
    json_object_set_new(o, "warnings", a);
}

void cli_json_print(json_t *o, size_t flags) {
    cli_json_warnings(o);
    char *s = json_dumps(o, flags);
    puts(s);
    free(s);
    json_decref(o);
}

char *cli_warnings_json_text(void) {
    json_t *o = json_object();
    cli_json_warnings(o);
    char *s = json_dumps(json_object_get(o, "warnings"), JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(o);
    return s;
}

void cli_check_context(const cli_model *cm, long n_tokens, const char *what) {
    int trained = cm->m->hp.n_ctx_train;
    if (trained > 0 && n_tokens > trained)
        cli_warn("%s: %ld positions, past the %d this model was trained on; positions beyond it were never seen in "
                 "training and the output usually degrades",
                 what, n_tokens, trained);
}

/* The repository's probe file name beside the executable (build/rys ->
 * probes/NAME), else NAME under probes/ of the working directory. */
void cli_default_probe(const char *name, char *out, size_t n) {
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len > 0) {
        exe[len] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = 0;
            int w = snprintf(out, n, "%s/../probes/%s", exe, name);
            if (w > 0 && (size_t)w < n && !access(out, R_OK)) return;
        }
    }
    snprintf(out, n, "probes/%s", name);
}

void cli_default_search_probes(char *out, size_t n) {
    char math[PATH_MAX], eq[PATH_MAX];
    cli_default_probe("math_16.json", math, sizeof math);
    cli_default_probe("eq_16.json", eq, sizeof eq);
    snprintf(out, n, "%s,%s", math, eq);
}
