/* Shared helpers for the cmocka unit tests. */
#ifndef RYS_TESTUTIL_H
#define RYS_TESTUTIL_H
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
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
#endif
