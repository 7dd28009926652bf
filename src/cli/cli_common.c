/* Option helpers shared by the subcommands. */
#include "cli/cli.h"
#include "base/util.h"

#include <errno.h>
#include <stdlib.h>

long cli_parse_long(const char *opt, const char *val, long lo, long hi) {
    char *end;
    errno = 0;
    long v = strtol(val, &end, 10);
    if (errno || end == val || *end || v < lo || v > hi)
        rys_die("%s: expected an integer in [%ld, %ld], got '%s'", opt, lo, hi, val);
    return v;
}

double cli_parse_double(const char *opt, const char *val, double lo, double hi) {
    char *end;
    errno = 0;
    double v = strtod(val, &end);
    if (errno || end == val || *end || !(v >= lo && v <= hi))
        rys_die("%s: expected a number in [%g, %g], got '%s'", opt, lo, hi, val);
    return v;
}

const char *cli_value(int argc, char **argv, int *i) {
    if (*i + 1 >= argc) rys_die("%s: missing value", argv[*i]);
    return argv[++*i];
}
