/* util: the peak-RSS figure `rys run --json` reports (the memory check of a
 * repeated path compares two of them) must be this program's own, not the
 * size of whatever process started it; and the clean-stop handlers: a first
 * SIGINT or SIGTERM only asks, a second SIGINT ends the process at once. */
#include "testutil.h"

#include "base/util.h"

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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

/* Runs `signals` (a string of 'I' for SIGINT, 'T' for SIGTERM) against a
 * child that installed the stop handlers, then reports through its exit
 * status: 10 + signal number if it stopped cleanly (the loop saw the
 * request), or whatever the handler ended it with. */
static int child_after_signals(const char *signals) {
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);   /* the handler's message is not the test's output */
        if (fd >= 0) dup2(fd, 2);
        rys_stop_install();
        if (rys_stop_requested()) _exit(2);
        for (const char *c = signals; *c; c++) raise(*c == 'I' ? SIGINT : SIGTERM);
        if (!rys_stop_requested()) _exit(3);
        _exit(10 + rys_stop_signal());
    }
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

/* An error may be prefixed with the one before it: the old text survives the
 * formatting (it was read from the buffer being written). Also the splitmix64
 * stream's published first values for seed 0 hold. */
static void test_error_prefix_and_splitmix(void **state) {
    (void)state;
    rys_seterr("unknown task 'x' (present: arc_challenge, mmlu)");
    rys_seterr("%s: %s", "objective", rys_lasterr());
    assert_string_equal(rys_lasterr(), "objective: unknown task 'x' (present: arc_challenge, mmlu)");
    rys_seterr("%s", rys_lasterr());
    assert_string_equal(rys_lasterr(), "objective: unknown task 'x' (present: arc_challenge, mmlu)");
    uint64_t s = 0;
    assert_true(rys_splitmix64(&s) == 0xE220A8397B1DCDAFull);
    assert_true(rys_splitmix64(&s) == 0x6E789E6AA1B965F4ull);
    assert_true(rys_splitmix64(&s) == 0x06C45D188009454Full);
}

static void test_stop_first_signal_asks(void **state) {
    (void)state;
    assert_int_equal(child_after_signals("I"), 10 + SIGINT);  /* not killed: the loop decides */
    assert_int_equal(child_after_signals("T"), 10 + SIGTERM);
    assert_int_equal(child_after_signals("TT"), 10 + SIGTERM); /* a second SIGTERM is no hurry */
}

static void test_stop_second_interrupt_exits(void **state) {
    (void)state;
    assert_int_equal(child_after_signals("II"), 130);
    assert_int_equal(child_after_signals("TI"), 130);
}

static void test_stop_exit_code(void **state) {
    (void)state;
    assert_false(rys_stop_requested());   /* nothing installed or raised in this process */
    assert_int_equal(rys_stop_exit_code(), 0);
}

/* The lines a progress bar writes to stderr when it is a file, as a log sees them. */
static int plain_progress_lines(int64_t total, const int64_t *updates, int n) {
    const char *path = test_tmp_path("progress.txt");
    fflush(stderr);
    int saved = dup(2), fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 2);
    close(fd);
    unsetenv("RYS_PROGRESS");
    progress p;
    progress_start(&p, "work", total);
    for (int k = 0; k < n; k++) progress_update(&p, updates[k], NULL);
    progress_finish(&p);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    char *text = read_file(path, NULL);
    int lines = 0;
    for (char *c = text; *c; c++) lines += *c == '\n';
    free(text);
    unlink(path);
    return lines;
}

static void test_progress_plain_lines(void **state) {
    (void)state;
    /* within 30 s: nothing until the end, which shows once however often it is reported */
    int64_t to_end[] = {1, 2, 3, 3, 3};
    assert_int_equal(plain_progress_lines(3, to_end, 5), 1);
    /* an unknown total (0) has no end: a short job prints nothing (export's tiny tensors did, once a call) */
    int64_t unknown[] = {0, 0, 0, 0};
    assert_int_equal(plain_progress_lines(0, unknown, 4), 0);
    int64_t short_of_end[] = {1, 2};
    assert_int_equal(plain_progress_lines(3, short_of_end, 2), 0);
}

int main(int argc, char **argv) {
    if (argc == 2 && !strcmp(argv[1], PRINT_FLAG)) {
        printf("%zu\n", rys_peak_rss());
        return 0;
    }
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_error_prefix_and_splitmix),
                                       cmocka_unit_test(test_peak_rss_grows_with_use),
                                       cmocka_unit_test(test_peak_rss_not_inherited),
                                       cmocka_unit_test(test_stop_first_signal_asks),
                                       cmocka_unit_test(test_stop_second_interrupt_exits),
                                       cmocka_unit_test(test_stop_exit_code),
                                       cmocka_unit_test(test_progress_plain_lines)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
