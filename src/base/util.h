/* util: errors, timing, progress and small helpers every module shares.
 *
 * Library code never exits: it reports a one-line message through rys_seterr()
 * and returns failure; the CLI prints "rys: <message>" and exits non-zero.
 * That way the same code serves the CLI, the tests and the fuzzers. */
#ifndef RYS_UTIL_H
#define RYS_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define RYS_VERSION "0.1.0"

#if defined(__GNUC__)
#define RYS_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define RYS_PRINTF(a, b)
#endif

/* Last error of this thread, a single line without "rys: " prefix. */
void rys_seterr(const char *fmt, ...) RYS_PRINTF(1, 2);
const char *rys_lasterr(void);

/* CLI-only: print "rys: msg" to stderr and exit(1). */
_Noreturn void rys_die(const char *fmt, ...) RYS_PRINTF(1, 2);

/* Allocation that never returns NULL (aborts with a message on OOM). */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);

/* Monotonic seconds. */
double rys_now(void);

/* Peak resident set size in bytes (from getrusage). */
size_t rys_peak_rss(void);
/* mkdir -p: path and its missing parents (0755). 0, or -1 with errno set. */
int rys_mkdirs(const char *path);

/* A one-line progress bar on stderr, redrawn at most ~10x per second. When
 * stderr is not a terminal (a log file, nohup) a plain line every 30 s
 * instead, so long runs still show their ETA; RYS_PROGRESS=0 silences it,
 * RYS_PROGRESS=1 forces the redrawn bar. */
typedef struct {
    const char *label;
    int64_t total, done;
    double t_start, t_last;
    bool enabled, tty;
} progress;

void progress_start(progress *p, const char *label, int64_t total);
void progress_update(progress *p, int64_t done, const char *extra);
void progress_finish(progress *p);

/* Read a whole file; returns NULL and sets the error on failure. */
char *read_file(const char *path, size_t *len);

#endif
