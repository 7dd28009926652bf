/* Shared helpers for the cmocka unit tests. */
#ifndef RYS_TESTUTIL_H
#define RYS_TESTUTIL_H
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

/* A temporary path under $TMPDIR (or /tmp), unique per process and tag. */
static inline const char *test_tmp_path(const char *tag) {
    static char buf[8][256];
    static int k;
    const char *d = getenv("TMPDIR");
    char *b = buf[k++ % 8];
    snprintf(b, sizeof buf[0], "%s/rys-test-%d-%s", d ? d : "/tmp", (int)getpid(), tag);
    return b;
}

/* A SQLite file and the -wal/-shm files a read-only last reader leaves. */
static inline void test_remove_db(const char *path) {
    char p[1024];
    unlink(path);
    snprintf(p, sizeof p, "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", path);
    unlink(p);
}

/* A directory of plain files. */
static inline void test_remove_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[1024];
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') { snprintf(p, sizeof p, "%s/%s", dir, e->d_name); unlink(p); }
    closedir(d);
    rmdir(dir);
}

/* A file of the checkout (rel: a path from the repository root, such as
 * "probes/math_16.json"), found whether the test runs from the repository
 * root (as scripts/check.sh runs it) or from anywhere else: the working
 * directory first, then each directory above the test binary's own
 * (build/tests/test_x -> the root), up to the checkout's root. NULL when
 * found nowhere: the caller fails, a shipped file missing is a failure. */
static inline const char *test_repo_file(const char *rel) {
    static char buf[8][4096];
    static int k;
    char *b = buf[k++ % 8];
    if (!access(rel, R_OK)) { snprintf(b, sizeof buf[0], "%s", rel); return b; }
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return NULL;
    exe[n] = 0;
    for (char *slash = strrchr(exe, '/'); slash; slash = strrchr(exe, '/')) {
        *slash = 0;   /* exe is now the directory above */
        if (snprintf(b, sizeof buf[0], "%s/%s", exe, rel) < (int)sizeof buf[0] && !access(b, R_OK)) return b;
        /* not above the checkout's root (.git: a directory, or a worktree's file) */
        if (snprintf(b, sizeof buf[0], "%s/.git", exe) < (int)sizeof buf[0] && !access(b, F_OK)) break;
    }
    return NULL;
}

/* The rys binary beside the test binary's folder (build/tests/test_x ->
 * build/rys) into out; 0, or -1 (with a line on stderr) when it is not built. */
static inline int test_rys_binary(const char *argv0, char *out, size_t size) {
    snprintf(out, size, "%s", argv0);
    char *slash = strrchr(out, '/');
    if (!slash) return -1;
    *slash = 0;
    slash = strrchr(out, '/');
    if (slash) *slash = 0; else snprintf(out, size, ".");
    strncat(out, "/rys", size - strlen(out) - 1);
    if (access(out, X_OK)) { fprintf(stderr, "%s not built\n", out); return -1; }
    return 0;
}

/* Runs the binary bin with args (NULL-terminated, at most 30), stdout to the
 * file out (NULL: discarded), stderr discarded; after delay_us > 0 it is
 * killed with SIGKILL. Its exit status, or minus the signal that ended it. */
static inline int test_run_binary(const char *bin, const char *const *args, long delay_us, const char *out) {
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(out ? out : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644), null = open("/dev/null", O_WRONLY);
        dup2(fd, 1);
        dup2(null, 2);
        const char *argv[32] = {bin};
        int n = 1;
        while (args[n - 1] && n < 31) { argv[n] = args[n - 1]; n++; }
        argv[n] = NULL;
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    if (delay_us > 0) {
        struct timespec ts = {delay_us / 1000000, (delay_us % 1000000) * 1000};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
    }
    int st;
    waitpid(pid, &st, 0);
    if (WIFSIGNALED(st)) return -WTERMSIG(st);
    return WEXITSTATUS(st);
}
#endif
