/* Tests for models: name/path resolution, the cache directory, the sidecar,
 * and the checked assembly of a file from parts. Digests are the FIPS 180-2
 * test vectors (SHA-256 of "abc", of the 448-bit message, of a million 'a'),
 * so the assembler is checked against published values, not against itself. */
#include "testutil.h"

#include "cli/models.h"
#include "base/util.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>

#define SHA_ABC "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define MSG_448 "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
#define SHA_448 "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
#define SHA_MILLION_A "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
/* 2,500,000 'a': from coreutils sha256sum and Python hashlib (no FIPS vector). */
#define SHA_2500K_A "38a637965059125eeb67f54c30e7f48a61859a467a800ba09740ba48a924f2b9"

static char cache_root[256];

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static void write_repeated(const char *path, char c, size_t n) {
    char *buf = malloc(n);
    assert_non_null(buf);
    memset(buf, c, n);
    write_bytes(path, buf, n);
    free(buf);
}

static bool exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* A file of the given size without writing it (sparse), for size checks. */
static void make_sized_file(const char *path, int64_t size) {
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)size), 0);
    close(fd);
}

static void rm_cache(void) {
    char path[512];
    for (int i = 0; i < models_count(); i++) {
        snprintf(path, sizeof path, "%s/models/%s.gguf", cache_root, models_get(i)->name);
        unlink(path);
        strcat(path, ".sha256");
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/models", cache_root);
    rmdir(path);
    rmdir(cache_root);
}

static int setup_cache(void **state) {
    (void)state;
    snprintf(cache_root, sizeof cache_root, "%s", test_tmp_path("cache"));
    rm_cache();
    char path[512];
    snprintf(path, sizeof path, "%s/models", cache_root);
    if (mkdir(cache_root, 0755) || mkdir(path, 0755)) return -1;
    setenv("RYS_CACHE_DIR", cache_root, 1);
    return 0;
}

static int teardown_cache(void **state) {
    (void)state;
    rm_cache();
    unsetenv("RYS_CACHE_DIR");
    return 0;
}

static void test_registry_is_well_formed(void **state) {
    (void)state;
    assert_true(models_count() >= 4);
    for (int i = 0; i < models_count(); i++) {
        const known_model *km = models_get(i);
        assert_ptr_equal(models_find(km->name), km);
        assert_int_equal(strlen(km->sha256), 64);
        assert_int_equal(strspn(km->sha256, "0123456789abcdef"), 64);
        assert_true(km->size > 0 && km->n_parts > 0);
        for (int k = 0; k < km->n_parts; k++) assert_non_null(strstr(km->parts[k].package, "=="));
    }
    assert_null(models_find("no-such-model"));
    assert_null(models_get(models_count()));
    assert_non_null(models_find("smollm2-135m"));
    assert_int_equal(models_find("qwen2.5-coder-1.5b")->n_parts, 22);
}

static void test_cache_dir_follows_env(void **state) {
    (void)state;
    char buf[512], home[256];
    snprintf(home, sizeof home, "%s", getenv("HOME") ? getenv("HOME") : "");
    setenv("RYS_CACHE_DIR", "/some/where", 1);
    assert_string_equal(models_dir(buf, sizeof buf), "/some/where/models");
    assert_string_equal(models_cached_path(models_find("gemma3-270m"), buf, sizeof buf),
                        "/some/where/models/gemma3-270m.gguf");
    unsetenv("RYS_CACHE_DIR");
    setenv("HOME", "/home/tester", 1);
    assert_string_equal(models_dir(buf, sizeof buf), "/home/tester/.cache/rys/models");
    unsetenv("HOME");
    assert_null(models_dir(buf, sizeof buf));
    assert_non_null(strstr(rys_lasterr(), "HOME"));
    setenv("HOME", home, 1);
    assert_null(models_dir(buf, 8));
}

static void test_resolve_existing_path_as_is(void **state) {
    (void)state;
    const char *p = test_tmp_path("some.gguf");
    write_bytes(p, "GGUF", 4);
    char buf[512];
    assert_string_equal(models_resolve(p, buf, sizeof buf), p);
    assert_null(models_resolve(p, buf, 4));
    unlink(p);
    assert_null(models_resolve(p, buf, sizeof buf));
    assert_non_null(strstr(rys_lasterr(), "No such file"));
    assert_null(models_resolve("/tmp", buf, sizeof buf));
    assert_non_null(strstr(rys_lasterr(), "not a regular file"));
}

static void test_resolve_unknown_name(void **state) {
    (void)state;
    char buf[512];
    assert_null(models_resolve("llama-9000", buf, sizeof buf));
    assert_non_null(strstr(rys_lasterr(), "llama-9000: no such file and not a known model"));
    assert_non_null(strstr(rys_lasterr(), "smollm2-135m"));
}

static void test_resolve_known_name_in_cache(void **state) {
    (void)state;
    const known_model *km = models_find("smollm2-135m");
    char buf[512], want[512];
    snprintf(want, sizeof want, "%s/models/smollm2-135m.gguf", cache_root);

    assert_null(models_resolve("smollm2-135m", buf, sizeof buf));
    assert_string_equal(rys_lasterr(), "smollm2-135m: not downloaded; run: rys pull smollm2-135m");
    assert_false(models_is_cached(km));

    make_sized_file(want, km->size - 1);
    assert_null(models_resolve("smollm2-135m", buf, sizeof buf));
    assert_non_null(strstr(rys_lasterr(), "rys pull --force smollm2-135m"));
    assert_false(models_is_cached(km));

    make_sized_file(want, km->size);
    assert_string_equal(models_resolve("smollm2-135m", buf, sizeof buf), want);
    assert_true(models_is_cached(km));
}

/* The sidecar spares a hash only when it names the expected digest and is
 * not older than the file; otherwise the file is hashed (zeros here, so the
 * answer is "different"). */
static void test_verify_cached_uses_sidecar(void **state) {
    (void)state;
    const known_model *km = models_find("smollm2-135m");
    char gguf[512], side[600], line[200];
    snprintf(gguf, sizeof gguf, "%s/models/smollm2-135m.gguf", cache_root);
    snprintf(side, sizeof side, "%s.sha256", gguf);

    assert_int_equal(models_verify_cached(km), 0);
    make_sized_file(gguf, km->size);
    assert_int_equal(models_write_sidecar(gguf, km->sha256), 0);
    FILE *f = fopen(side, "r");
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    snprintf(gguf, sizeof gguf, "%s  smollm2-135m.gguf\n", km->sha256);
    assert_string_equal(line, gguf);
    assert_int_equal(models_verify_cached(km), 1);

    struct timeval old[2] = {{1000000000, 0}, {1000000000, 0}};
    assert_int_equal(utimes(side, old), 0);
    assert_int_equal(models_verify_cached(km), 0);

    write_bytes(side, "0000  smollm2-135m.gguf\n", 24);
    assert_int_equal(models_verify_cached(km), 0);
}

static void test_assemble_parts_in_order(void **state) {
    (void)state;
    const char *p1 = test_tmp_path("p1"), *p2 = test_tmp_path("p2"), *p3 = test_tmp_path("p3");
    const char *out = test_tmp_path("out.gguf");
    char partial[300];
    snprintf(partial, sizeof partial, "%s.partial", out);
    /* Parts split inside the first 64-byte block and across the boundary. */
    write_bytes(p1, MSG_448, 5);
    write_bytes(p2, "", 0);
    write_bytes(p3, &MSG_448[5], strlen(MSG_448) - 5);

    models_assembler *a = models_assembler_open(out);
    assert_non_null(a);
    assert_true(exists(partial));
    assert_int_equal(models_assembler_append(a, p1, NULL, NULL), 0);
    assert_int_equal(models_assembler_append(a, p2, NULL, NULL), 0);
    assert_int_equal(models_assembler_append(a, p3, NULL, NULL), 0);
    assert_false(exists(out));
    assert_int_equal(models_assembler_finish(a, (int64_t)strlen(MSG_448), SHA_448), 0);
    assert_false(exists(partial));
    size_t len;
    char *got = read_file(out, &len);
    assert_non_null(got);
    assert_int_equal(len, strlen(MSG_448));
    assert_memory_equal(got, MSG_448, len);
    free(got);
    unlink(out);

    /* The same parts in the wrong order: the digest catches it. */
    a = models_assembler_open(out);
    assert_non_null(a);
    assert_int_equal(models_assembler_append(a, p3, NULL, NULL), 0);
    assert_int_equal(models_assembler_append(a, p1, NULL, NULL), 0);
    assert_int_equal(models_assembler_finish(a, (int64_t)strlen(MSG_448), SHA_448), -1);
    assert_non_null(strstr(rys_lasterr(), "sha256"));
    assert_false(exists(out));
    assert_false(exists(partial));
    unlink(p1), unlink(p2), unlink(p3);
}

static void on_bytes(void *ctx, int64_t total) {
    int64_t *last = ctx;
    assert_true(total > *last);
    *last = total;
}

/* A million 'a' in three parts, each within one 1 MiB copy chunk. */
static void test_assemble_large_parts_with_progress(void **state) {
    (void)state;
    const char *p1 = test_tmp_path("m1"), *p2 = test_tmp_path("m2"), *p3 = test_tmp_path("m3");
    const char *out = test_tmp_path("million");
    write_repeated(p1, 'a', 400000);
    write_repeated(p2, 'a', 350000);
    write_repeated(p3, 'a', 250000);
    models_assembler *a = models_assembler_open(out);
    assert_non_null(a);
    int64_t last = 0;
    assert_int_equal(models_assembler_append(a, p1, on_bytes, &last), 0);
    assert_int_equal(last, 400000);
    assert_int_equal(models_assembler_append(a, p2, on_bytes, &last), 0);
    assert_int_equal(models_assembler_append(a, p3, on_bytes, &last), 0);
    assert_int_equal(last, 1000000);
    assert_int_equal(models_assembler_finish(a, 1000000, SHA_MILLION_A), 0);
    struct stat st;
    assert_int_equal(stat(out, &st), 0);
    assert_int_equal(st.st_size, 1000000);
    unlink(out);

    /* Parts longer than the copy chunk: the running total moves within a part. */
    write_repeated(p1, 'a', 1500000);
    write_repeated(p2, 'a', 1000000);
    a = models_assembler_open(out);
    assert_non_null(a);
    last = 0;
    assert_int_equal(models_assembler_append(a, p1, on_bytes, &last), 0);
    assert_int_equal(models_assembler_append(a, p2, on_bytes, &last), 0);
    assert_int_equal(last, 2500000);
    assert_int_equal(models_assembler_finish(a, 2500000, SHA_2500K_A), 0);
    unlink(out), unlink(p1), unlink(p2), unlink(p3);
}

static void test_assemble_failures_leave_nothing(void **state) {
    (void)state;
    const char *p = test_tmp_path("abc"), *out = test_tmp_path("bad.gguf");
    char partial[300];
    snprintf(partial, sizeof partial, "%s.partial", out);
    write_bytes(p, "abc", 3);

    models_assembler *a = models_assembler_open(out);
    assert_int_equal(models_assembler_append(a, p, NULL, NULL), 0);
    assert_int_equal(models_assembler_finish(a, 4, SHA_ABC), -1);
    assert_non_null(strstr(rys_lasterr(), "assembled 3 bytes, expected 4"));
    assert_false(exists(out) || exists(partial));

    a = models_assembler_open(out);
    assert_int_equal(models_assembler_append(a, test_tmp_path("missing"), NULL, NULL), -1);
    assert_non_null(strstr(rys_lasterr(), "No such file"));
    models_assembler_abort(a);
    assert_false(exists(out) || exists(partial));

    assert_null(models_assembler_open("/nonexistent-dir/x.gguf"));
    unlink(p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry_is_well_formed),
        cmocka_unit_test(test_cache_dir_follows_env),
        cmocka_unit_test(test_resolve_existing_path_as_is),
        cmocka_unit_test(test_resolve_unknown_name),
        cmocka_unit_test_setup_teardown(test_resolve_known_name_in_cache, setup_cache, teardown_cache),
        cmocka_unit_test_setup_teardown(test_verify_cached_uses_sidecar, setup_cache, teardown_cache),
        cmocka_unit_test(test_assemble_parts_in_order),
        cmocka_unit_test(test_assemble_large_parts_with_progress),
        cmocka_unit_test(test_assemble_failures_leave_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
