/* npy: see npy.h. Format: "\x93NUMPY" v1.0, a Python-dict header padded with
 * spaces to a multiple of 64 bytes, then little-endian float32 data. */
#include "cli/npy.h"
#include "base/util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int npy_write_f32(const char *path, const float *data, size_t rows, size_t cols) {
    char hdr[256];
    int n = snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': (%zu, %zu), }", rows, cols);
    size_t total = 10 + (size_t)n + 1;
    size_t pad = (64 - total % 64) % 64;
    FILE *f = fopen(path, "wb");
    if (!f) { rys_seterr("%s: %s", path, strerror(errno)); return -1; }
    unsigned short hlen = (unsigned short)(n + pad + 1);
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    fputc(hlen & 0xff, f);
    fputc(hlen >> 8, f);
    fwrite(hdr, 1, (size_t)n, f);
    for (size_t i = 0; i < pad; i++) fputc(' ', f);
    fputc('\n', f);
    fwrite(data, sizeof(float), rows * cols, f);
    if (fclose(f)) { rys_seterr("%s: write failed", path); return -1; }
    return 0;
}
