/* cli: one file per subcommand; each takes (argc, argv) with argv[0] = the
 * subcommand name and returns the process exit code (0 ok, 1 user error,
 * 2 internal error). Each declares its options as a table that cli_parse
 * (cli_common.c) walks argv with. */
#ifndef RYS_CLI_H
#define RYS_CLI_H

#include "base/pool.h"
#include "base/util.h"
#include "engine/model.h"
#include "engine/path.h"
#include "engine/tokenizer.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} cli_command;

/* ---- options: each command declares a table, one parser walks argv -------- */

/* What an option's value is and where it goes. */
typedef enum {
    CLI_FLAG,       /* no value: sets a bool to true */
    CLI_NOFLAG,     /* no value: sets a bool to false (--no-bos) */
    CLI_INT,        /* an int in [lo, hi] */
    CLI_U64,        /* a uint64_t, any value (seeds) */
    CLI_FLOAT,      /* a float in [lo, hi] */
    CLI_DOUBLE,     /* a double in [lo, hi] */
    CLI_STR,        /* the argument as given: a const char * */
    CLI_CHOICE,     /* an int: the index of the value in choices */
} cli_kind;

typedef struct {
    const char *name;           /* "-t": the spelling a "missing" error names */
    const char *alias;          /* another spelling ("--threads"), or NULL */
    cli_kind kind;
    void *dest;                 /* bool, int, uint64_t, float, double, const char * or int, by kind */
    double lo, hi;              /* accepted range of the numeric kinds (ints fit a double exactly) */
    const char *const *choices; /* CLI_CHOICE: the accepted values, NULL-terminated */
    bool required;
    const char *metavar;        /* the value's name in the help: "N", "SPEC" */
    const char *help;           /* '\n' starts a continuation line */
} cli_opt;

/* Table entries: (name, alias, destination, ...). A table ends with CLI_END.
 * The compound literal (int *){dest} makes the compiler check that the
 * destination has the type the kind writes. */
#define CLI_FLAG_OPT(n, a, dest, help) {(n), (a), CLI_FLAG, (bool *){dest}, 0, 0, NULL, false, NULL, (help)}
#define CLI_NOFLAG_OPT(n, a, dest, help) {(n), (a), CLI_NOFLAG, (bool *){dest}, 0, 0, NULL, false, NULL, (help)}
#define CLI_INT_OPT(n, a, dest, lo, hi, meta, help) {(n), (a), CLI_INT, (int *){dest}, (lo), (hi), NULL, false, (meta), (help)}
#define CLI_U64_OPT(n, a, dest, meta, help) {(n), (a), CLI_U64, (uint64_t *){dest}, 0, 0, NULL, false, (meta), (help)}
#define CLI_FLOAT_OPT(n, a, dest, lo, hi, meta, help) {(n), (a), CLI_FLOAT, (float *){dest}, (lo), (hi), NULL, false, (meta), (help)}
#define CLI_DOUBLE_OPT(n, a, dest, lo, hi, meta, help) {(n), (a), CLI_DOUBLE, (double *){dest}, (lo), (hi), NULL, false, (meta), (help)}
#define CLI_STR_OPT(n, a, dest, meta, help) {(n), (a), CLI_STR, (const char **){dest}, 0, 0, NULL, false, (meta), (help)}
#define CLI_STR_REQUIRED(n, a, dest, meta, help) {(n), (a), CLI_STR, (const char **){dest}, 0, 0, NULL, true, (meta), (help)}
#define CLI_CHOICE_OPT(n, a, dest, choices, meta, help) {(n), (a), CLI_CHOICE, (int *){dest}, 0, 0, (choices), false, (meta), (help)}
#define CLI_END {NULL, NULL, CLI_FLAG, NULL, 0, 0, NULL, false, NULL, NULL}

/* The options several commands share, spelled, ranged and explained once. */
#define CLI_THREADS(dest) CLI_INT_OPT("-t", "--threads", dest, 1, 1024, "N", "threads (default: $RYS_THREADS or all cores)")
#define CLI_BLOCKS(dest) CLI_STR_OPT("--blocks", NULL, dest, "SPEC", "RYS blocks \"i,j[;i,j...]\": run 0..j-1 then i..N-1; \"i,j@a\" scales the repeat's residual updates, \"i,j@euler\" damps both traversals (README: Damped repeats)")
#define CLI_LAYERS(dest) CLI_STR_OPT("--layers", NULL, dest, "SPEC", "explicit layer path \"0-11,6-23\", \"0-11,6-11@0.5,12-23\" with residual scales")
#define CLI_JSON(dest, help) CLI_FLAG_OPT("--json", NULL, dest, help)

/* A positional argument. */
typedef struct {
    const char *name;           /* "MODEL": in the help and in "missing MODEL" */
    const char **dest;
    bool required;
    const char *help;
} cli_arg;

/* The model argument of the commands that load one; a list of arguments ends with CLI_ARG_END. */
#define CLI_MODEL_HELP "a GGUF file or a known model name (rys models)"
#define CLI_MODEL_ARG(dest) {"MODEL", (dest), true, CLI_MODEL_HELP}
#define CLI_ARG_END {NULL, NULL, false, NULL}

/* A command line's grammar: options, positional arguments and help text. */
typedef struct {
    const char *cmd;            /* "run", "data show": names the command in errors and help */
    const char *synopsis;       /* what follows "usage: rys CMD " */
    const cli_opt *opts;        /* ends with CLI_END */
    const cli_arg *args;        /* positional arguments in order, ending with CLI_ARG_END; or NULL */
    char ***rest;               /* set: further positionals collect here (argv pointers, xmalloc'd array) */
    int *n_rest;
    bool pass_unknown;          /* unknown options join rest too (a command that dispatches on rest) */
    const char *notes;          /* text printed after the lists, or NULL */
} cli_spec;

/* Walks argv (argv[0] is the command's name) against spec, storing each value
 * where its table entry says: 0 when the line is good, 1 when it asks for
 * --help (nothing printed), -1 with a one-line error set ("run: -t: 'x' is not
 * an integer in 1..1024") for an unknown option, a missing or bad value, an
 * unexpected or missing argument. */
int cli_parse(const cli_spec *spec, int argc, char **argv);
/* cli_parse for a command: prints the help and exits 0 on --help, dies with
 * "rys: " and the error on a bad line. */
void cli_parse_or_exit(const cli_spec *spec, int argc, char **argv);
/* The help generated from spec: usage line, arguments, options, notes. */
void cli_print_help(const cli_spec *spec, FILE *out);
/* Dies with "rys: CMD: message (try rys CMD --help)", for the rules a table
 * cannot say (one of two options, not both). */
_Noreturn void cli_fail(const cli_spec *spec, const char *fmt, ...) RYS_PRINTF(2, 3);

/* s split at each sep into xmalloc'd strings, empty items skipped ("a,,b" is
 * a and b): *n of them in an xmalloc'd array, then a NULL. cli_free_split
 * frees each string and the array. */
char **cli_split(const char *s, char sep, int *n);
void cli_free_split(char **items);

/* The repository's probe file NAME beside the executable (build/rys ->
 * probes/NAME), else probes/NAME of the working directory, into out. */
void cli_default_probe(const char *name, char *out, size_t n);
/* The searches' default probe sets, "<math_16>,<eq_16>" as cli_default_probe
 * finds them, into out (2 * PATH_MAX + 2 is room enough). */
void cli_default_search_probes(char *out, size_t n);

int cmd_info(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_perplexity(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_pull(int argc, char **argv);
int cmd_models(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_scan(int argc, char **argv);
int cmd_beam(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_hellaswag(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_probes(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_data(int argc, char **argv);
int cmd_validate(int argc, char **argv);
int cmd_pipeline(int argc, char **argv);
int cmd_prescreen(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_surrogate(int argc, char **argv);

/* $RYS_PYTHON or python3: the interpreter whose pip fetches packages. */
const char *cli_python(void);
/* Runs argv[0] found on PATH (no shell); 0 when it exits 0, else -1 with the
 * error set, naming `what`. */
int cli_run_program(char *const argv[], const char *what);

/* ---- loading a model for a subcommand -------------------------------------- */

typedef struct {
    model *m;
    tokenizer *tok;
    pool *pool;
    char path[4096];
} cli_model;

/* Resolves a known name or a path, initialises the kernels, loads the model
 * and its tokenizer; dies with a one-line error on failure. */
void cli_open_model(const char *spec, int n_threads, cli_model *out);
void cli_close_model(cli_model *cm);
/* Default thread count: RYS_THREADS or the online CPUs. */
int cli_default_threads(void);
/* Layer path from --blocks / --layers (either may be NULL); dies on error. */
void cli_path(const cli_model *cm, const char *blocks, const char *layers, layer_path *out);
/* Tokenize text (BOS as the model's metadata says, special tokens parsed). */
int32_t *cli_tokenize(const cli_model *cm, const char *text, bool add_bos, int *n_out);

/* ---- warnings ---------------------------------------------------------------- */

/* Prints "rys: warning: <message>" on stderr, once per distinct message, and
 * keeps it for the command's --json output. */
void cli_warn(const char *fmt, ...) RYS_PRINTF(1, 2);
/* Sets o["warnings"] to the warnings given so far (an array, empty if none). */
void cli_json_warnings(json_t *o);
/* Sets o's warnings, prints o on stdout with json_dumps's flags, and frees it:
 * the last step of every command's --json output. */
void cli_json_print(json_t *o, size_t flags);
/* The warnings so far as a JSON array text (malloc'd), for commands that print
 * their JSON by hand. */
char *cli_warnings_json_text(void);
/* Warns when a run of n_tokens positions passes the model's trained context:
 * `what` names them ("the prompt and 64 new tokens", "-c 16384"). */
void cli_check_context(const cli_model *cm, long n_tokens, const char *what);

#endif
