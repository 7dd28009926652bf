/* SHA-256 against the FIPS 180-2 / NIST example vectors, fed whole, byte by
 * byte and in odd-sized chunks (the streaming path), and through a file. */
#include "testutil.h"
#include "base/sha256.h"
#include "base/util.h"

#include <string.h>

static const struct { const char *msg; const char *hex; } vectors[] = {
    {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
    {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
    {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
     "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
};

static void test_vectors(void **s) {
    (void)s;
    char hex[65];
    for (size_t k = 0; k < sizeof vectors / sizeof vectors[0]; k++) {
        const char *m = vectors[k].msg;
        sha256_buf(m, strlen(m), hex);
        assert_string_equal(hex, vectors[k].hex);
        sha256_ctx c;
        uint8_t d[32];
        sha256_init(&c);
        for (size_t i = 0; i < strlen(m); i++) sha256_update(&c, m + i, 1);
        sha256_final(&c, d);
        sha256_hex(d, hex);
        assert_string_equal(hex, vectors[k].hex);
    }
}

/* One million 'a's, in chunks of 997 bytes so blocks straddle updates. */
static void test_million_a(void **s) {
    (void)s;
    char chunk[997];
    memset(chunk, 'a', sizeof chunk);
    sha256_ctx c;
    sha256_init(&c);
    size_t left = 1000000;
    while (left) {
        size_t n = left < sizeof chunk ? left : sizeof chunk;
        sha256_update(&c, chunk, n);
        left -= n;
    }
    uint8_t d[32];
    char hex[65];
    sha256_final(&c, d);
    sha256_hex(d, hex);
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");

    const char *path = test_tmp_path("million.txt");
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    char *all = malloc(1000000);
    memset(all, 'a', 1000000);
    fwrite(all, 1, 1000000, f);
    fclose(f);
    free(all);
    assert_int_equal(sha256_file(path, hex), 0);
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    unlink(path);
    assert_int_equal(sha256_file(path, hex), -1);
    assert_non_null(strstr(rys_lasterr(), path));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_million_a),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
