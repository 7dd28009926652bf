/* util: the peak-RSS figure `rys run --json` reports (the memory check of a
 * repeated path compares two of them) must be this program's own, not the
 * size of whatever process started it. */
#include "testutil.h"

#include "base/util.h"

#include <string.h>
#include <sys/wait.h>

#define MIB (1024 * 1024)

/* The test binary run again with this flag prints its peak RSS and exits. */
static const char PRINT_FLAG[] = "--print-peak-rss";

static void test_peak_rss_grows_with_use(void **state) {
    (void)state;
    size_t before = rys_peak_rss();
    volatile char *p = malloc(64 * MIB);
    assert_non_null(p);
    for (size_t i = 0; i < 64 * MIB; i += 4096) p[i] = 1;
    size_t after = rys_peak_rss();
    free((void *)p);
    assert_true(after >= before + 60 * MIB);
}

static void test_peak_rss_not_inherited(void **state) {
    (void)state;
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* a big parent: 256 MiB resident, then exec a small program */
        volatile char *big = malloc(256 * MIB); /* volatile: the stores must happen */
        if (!big) _exit(3);
        for (size_t i = 0; i < 256 * MIB; i += 4096) big[i] = 1;
        dup2(fd[1], 1);
        execl("/proc/self/exe", "test_util", PRINT_FLAG, (char *)NULL);
        _exit(4);
    }
    close(fd[1]);
    char buf[64] = {0};
    ssize_t n = read(fd[0], buf, sizeof buf - 1);
    close(fd[0]);
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_true(n > 0);
    unsigned long long rss = strtoull(buf, NULL, 10);
    assert_true(rss > 0);
    assert_true(rss < 128ull * MIB); /* the exec'd program's own size, not its parent's 256 MiB */
}

int main(int argc, char **argv) {
    if (argc == 2 && !strcmp(argv[1], PRINT_FLAG)) {
        printf("%zu\n", rys_peak_rss());
        return 0;
    }
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_peak_rss_grows_with_use),
                                       cmocka_unit_test(test_peak_rss_not_inherited)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
