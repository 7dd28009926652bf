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
#include <unistd.h>

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
#endif
