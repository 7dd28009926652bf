/* util: see util.h. */
#include "base/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/stat.h>

static _Thread_local char last_error[512];

void rys_seterr(const char *fmt, ...) {
    /* formatted aside first: callers prefix the previous error, rys_seterr("%s: %s", name, rys_lasterr()),
     * and vsnprintf into the buffer it reads from would overwrite the text it is copying */
    char buf[sizeof last_error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    memcpy(last_error, buf, sizeof buf);
}

const char *rys_lasterr(void) { return last_error[0] ? last_error : "unknown error"; }

void rys_die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("rys: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void oom(size_t n) {
    fprintf(stderr, "rys: out of memory allocating %zu bytes\n", n);
    abort();
}

void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) oom(n);
    return p;
}

void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) oom(n * size);
    return p;
}

void *xrealloc(void *p, size_t n) {
    p = realloc(p, n ? n : 1);
    if (!p) oom(n);
    return p;
}

char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = xmalloc(n);
    memcpy(d, s, n);
    return d;
}

uint64_t rys_splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double rys_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* VmHWM, the high-water mark of this program's own address space. Not
 * getrusage's ru_maxrss: Linux carries that across exec from the process
 * that forked us, so a run started by a large parent (a Python test holding
 * llama.cpp models) would report the parent's size. */
size_t rys_peak_rss(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    unsigned long long kb = 0;
    bool found = false;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %llu kB", &kb) == 1) { found = true; break; }
    if (f) fclose(f);
    if (found) return (size_t)kb * 1024;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (size_t)ru.ru_maxrss * 1024;
}

int rys_mkdirs(const char *path) {
    char buf[8400];
    if (strlen(path) >= sizeof buf) { errno = ENAMETOOLONG; return -1; }
    strcpy(buf, path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0755) && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(buf, 0755) && errno != EEXIST ? -1 : 0;
}

void progress_start(progress *p, const char *label, int64_t total) {
    const char *force = getenv("RYS_PROGRESS");
    p->label = label;
    p->total = total;
    p->done = 0;
    p->end_shown = false;
    p->t_start = p->t_last = rys_now();
    p->tty = force ? atoi(force) != 0 : isatty(2);
    p->enabled = force ? atoi(force) != 0 : true;
}

static void fmt_duration(char *buf, size_t n, double s) {
    if (s < 0 || s > 1e7) { snprintf(buf, n, "--:--"); return; }
    int t = (int)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, n, "%02d:%02d", t / 60, t % 60);
}

void progress_update(progress *p, int64_t done, const char *extra) {
    p->done = done;
    if (!p->enabled) return;
    double now = rys_now();
    /* the end is shown at once, once (a plain log would repeat it per call); an unknown total (0) never ends early */
    bool end = p->total > 0 && done >= p->total && !p->end_shown;
    if (now - p->t_last < (p->tty ? 0.1 : 30.0) && !end) return;
    p->end_shown |= end;
    p->t_last = now;
    double el = now - p->t_start;
    double frac = p->total > 0 ? (double)done / p->total : 0;
    double eta = done > 0 ? el * (p->total - done) / done : -1;
    char e1[32], e2[32], bar[31];
    fmt_duration(e1, sizeof e1, el);
    fmt_duration(e2, sizeof e2, eta);
    int w = (int)(frac * 30);
    for (int i = 0; i < 30; i++) bar[i] = i < w ? '#' : '.';
    bar[30] = 0;
    fprintf(stderr, "%s%s [%s] %lld/%lld %3.0f%% %s<%s %s%s", p->tty ? "\r\033[K" : "", p->label, bar, (long long)done,
            (long long)p->total, frac * 100, e1, e2, extra ? extra : "", p->tty ? "" : "\n");
    fflush(stderr);
}

void progress_finish(progress *p) {
    if (!p->enabled) return;
    if (!p->tty) return;   /* the last plain line stands; a final one would repeat it */
    p->t_last = 0;
    p->end_shown = false;
    progress_update(p, p->done, NULL);
    fputc('\n', stderr);
}

char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) { rys_seterr("%s: %s", path, strerror(errno)); return NULL; }
    size_t cap = 1 << 16, n = 0;
    char *buf = xmalloc(cap + 1);
    size_t r;
    while ((r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) { cap *= 2; buf = xrealloc(buf, cap + 1); }
    }
    bool err = ferror(f);
    fclose(f);
    if (err) { free(buf); rys_seterr("%s: read error", path); return NULL; }
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}

/* ---- clean stops ------------------------------------------------------------ */

static volatile sig_atomic_t stop_signal;

/* First signal: remember it and say so (write(2) is async-signal-safe);
 * a second SIGINT: the user means now. */
static void on_stop_signal(int sig) {
    if (stop_signal && sig == SIGINT) {
        static const char now[] = "\nrys: second interrupt: stopping now\n";
        ssize_t w = write(STDERR_FILENO, now, sizeof now - 1);
        (void)w;
        _exit(130);
    }
    if (!stop_signal) {
        static const char later[] = "\nrys: stopping after the current step (Ctrl-C again to stop at once)\n";
        ssize_t w = write(STDERR_FILENO, later, sizeof later - 1);
        (void)w;
    }
    stop_signal = sig;
}

void rys_stop_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

bool rys_stop_requested(void) { return stop_signal != 0; }
int rys_stop_signal(void) { return stop_signal; }
int rys_stop_exit_code(void) { return stop_signal ? 128 + stop_signal : 0; }

const char *rys_cache_dir(const char *sub, char *buf, size_t cap) {
    const char *root = getenv("RYS_CACHE_DIR"), *home = getenv("HOME");
    int n;
    if (root && *root) n = snprintf(buf, cap, "%s/%s", root, sub);
    else if (home && *home) n = snprintf(buf, cap, "%s/.cache/rys/%s", home, sub);
    else {
        rys_seterr("%s cache: neither RYS_CACHE_DIR nor HOME is set", sub);
        return NULL;
    }
    if (n < 0 || (size_t)n >= cap) {
        rys_seterr("%s cache: path too long", sub);
        return NULL;
    }
    return buf;
}
