/* cli: one file per subcommand; each takes (argc, argv) with argv[0] = the
 * subcommand name and returns the process exit code (0 ok, 1 user error,
 * 2 internal error). Shared option helpers live in cli_common.c. */
#ifndef RYS_CLI_H
#define RYS_CLI_H

#include <stdbool.h>

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

#endif
