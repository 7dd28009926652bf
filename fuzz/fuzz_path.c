/* libFuzzer target for the layer-path grammar, which rys serve also reads
 * from request model ids ("NAME@blocks:..."): the first byte picks the
 * grammar (even: --blocks, odd: --layers) and the model's layer count
 * (1..64), the rest is the spec. Every input must either be refused with the
 * error set, or give a path whose layers lie in range, whose scales lie in
 * 0..16 and differ from 1 somewhere when present, whose damped traversals lie
 * inside it in order, and whose canonical key reads back (--layers) as the
 * same path and the same key. */
#include "engine/path.h"
#include "base/util.h"

#include <stdlib.h>
#include <string.h>

static void check_path(const layer_path *p, int n_model) {
    if (p->n < 1 || p->n_model != n_model) abort();
    bool differs = false;
    for (int k = 0; k < p->n; k++) {
        if (p->layers[k] < 0 || p->layers[k] >= n_model) abort();
        float a = path_scale(p, k);
        if (!(a >= 0.0f && a <= 16.0f)) abort();
        differs |= a != 1.0f;
    }
    if (p->scale && !differs) abort();
    for (int s = 0; s < p->n_seg; s++)
        if (p->seg[s].begin < (s ? p->seg[s - 1].end : 0) || p->seg[s].end <= p->seg[s].begin || p->seg[s].end > p->n)
            abort();
    char *key = path_canonical(p);
    if (strncmp(key, "layers:", 7)) abort();
    layer_path q;
    if (path_from_layers(key + 7, n_model, &q)) abort();
    char *again = path_canonical(&q);
    if (!path_equal(p, &q) || strcmp(key, again)) abort();
    free(again);
    free(key);
    path_free(&q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > 4096) return 0;
    bool layers = data[0] & 1;
    int n_model = 1 + (data[0] >> 1) % 64;
    char *spec = malloc(size);
    memcpy(spec, data + 1, size - 1);
    spec[size - 1] = 0;
    layer_path p;
    int rc = layers ? path_from_layers(spec, n_model, &p) : path_from_blocks(spec, n_model, &p);
    if (rc == 0) {
        check_path(&p, n_model);
        path_free(&p);
    } else if (rc != -1 || !rys_lasterr()[0]) {
        abort();
    }
    free(spec);
    return 0;
}
