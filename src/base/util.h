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

/* Last error of this thread, a single line without "rys: " prefix; the
 * arguments may include rys_lasterr() itself, to prefix the previous error. */
void rys_seterr(const char *fmt, ...) RYS_PRINTF(1, 2);
const char *rys_lasterr(void);

/* CLI-only: print "rys: msg" to stderr and exit(1). */
_Noreturn void rys_die(const char *fmt, ...) RYS_PRINTF(1, 2);

/* Allocation that never returns NULL (aborts with a message on OOM). */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);

/* splitmix64: the next value of the stream *state, advancing it. Small, fast
 * and the same stream on every platform, so a seed means the same draws
 * everywhere (samplers, bootstraps, generated probes, surrogate candidates). */
uint64_t rys_splitmix64(uint64_t *state);

/* Monotonic seconds. */
double rys_now(void);

/* Peak resident set size in bytes (from getrusage). */
size_t rys_peak_rss(void);
/* The directory `sub` of rys's cache into buf: $RYS_CACHE_DIR/sub, else
 * $HOME/.cache/rys/sub. buf, or NULL with the error ("<what> cache: neither
 * RYS_CACHE_DIR nor HOME is set", or the path too long). */
const char *rys_cache_dir(const char *sub, char *buf, size_t cap);
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
    bool end_shown;         /* the line at done = total was printed */
} progress;

void progress_start(progress *p, const char *label, int64_t total);
void progress_update(progress *p, int64_t done, const char *extra);
void progress_finish(progress *p);

/* Clean stops. A long command calls rys_stop_install() once: the first SIGINT
 * or SIGTERM then only asks it to stop (rys_stop_requested() turns true, and
 * a line on stderr says the current step finishes first), so a scan keeps its
 * configuration in flight and a validation its chunk; a second SIGINT ends
 * the process at once (exit 130). Loops test rys_stop_requested() at their
 * safe points and return; the command says what was kept. */
void rys_stop_install(void);
bool rys_stop_requested(void);
/* The signal that asked for the stop (SIGINT or SIGTERM), 0 if none. */
int rys_stop_signal(void);
/* Exit status for a command that stopped on a signal: 128 + its number. */
int rys_stop_exit_code(void);

/* Read a whole file; returns NULL and sets the error on failure. */
char *read_file(const char *path, size_t *len);

#endif
