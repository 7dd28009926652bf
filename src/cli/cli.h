/* cli: one file per subcommand; each takes (argc, argv) with argv[0] = the
 * subcommand name and returns the process exit code (0 ok, 1 user error,
 * 2 internal error). Shared option helpers live in cli_common.c. */
#ifndef RYS_CLI_H
#define RYS_CLI_H

#include "base/pool.h"
#include "engine/model.h"
#include "engine/path.h"
#include "engine/tokenizer.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} cli_command;

/* Parse a decimal integer option value or die with a clear message. */
long cli_parse_long(const char *opt, const char *val, long lo, long hi);
double cli_parse_double(const char *opt, const char *val, double lo, double hi);
/* Value of an option that takes an argument: advances *i, dies if missing. */
const char *cli_value(int argc, char **argv, int *i);

int cmd_info(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_perplexity(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_pull(int argc, char **argv);
int cmd_models(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_scan(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_hellaswag(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_probes(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_data(int argc, char **argv);
int cmd_validate(int argc, char **argv);

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

#endif
