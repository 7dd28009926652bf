/* quant_bench: time quant_matmul over every weight matrix of a real GGUF
 * model, as one decode step (batch 1) or one prompt chunk (batch B) would run
 * them, and print one CSV row per weight type plus a total: how far the
 * kernels are from the memory-bandwidth limit of batch-1 decode (GB/s), and
 * from the compute limit `rys bench` prints for batches (GMAC/s).
 *
 * build: make (builds build/quant_bench with everything else)
 * usage: build/quant_bench MODEL.gguf [THREADS=2] [BATCH=1] [SECONDS=3]
 * RYS_CPU=portable|avx2 picks the kernel family, as for rys itself. */
#include "engine/gguf.h"
#include "base/pool.h"
#include "quant/quant.h"
#include "base/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    double seconds, bytes, macs;
    int tensors;
} type_stats;

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL.gguf [THREADS] [BATCH] [SECONDS]\n", argv[0]);
        return 1;
    }
    int threads = argc > 2 ? atoi(argv[2]) : 2, batch = argc > 3 ? atoi(argv[3]) : 1;
    double budget = argc > 4 ? atof(argv[4]) : 3;
    if (quant_init()) rys_die("%s", rys_lasterr());
    gguf_file *g = gguf_open(argv[1]);
    if (!g) rys_die("%s", rys_lasterr());

    /* Matrices: every 2-D tensor a forward pass multiplies with; the token
     * embedding counts once, as the (tied) output projection. */
    quant_matrix *mats = xcalloc(g->n_tensors, sizeof *mats);
    size_t n_mats = 0;
    int64_t max_in = 0, max_out = 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const gguf_tensor *t = &g->tensors[i];
        const quant_info *qi = quant_get_info(t->type);
        if (t->n_dims != 2 || !qi || !qi->supported) continue;
        if (gguf_str_eq(t->name, "token_embd.weight") && gguf_find_tensor(g, "output.weight")) continue;
        mats[n_mats++] = (quant_matrix){.type = t->type, .n_in = t->ne[0], .n_out = t->ne[1], .data = t->data};
        if (t->ne[0] > max_in) max_in = t->ne[0];
        if (t->ne[1] > max_out) max_out = t->ne[1];
    }
    float *x = xmalloc(sizeof(float) * (size_t)(max_in * batch));
    float *y = xmalloc(sizeof(float) * (size_t)(max_out * batch));
    for (int64_t i = 0; i < max_in * batch; i++) x[i] = (float)((i * 7919) % 2001 - 1000) / 1000.0f;
    pool *p = pool_new(threads);

    /* One untimed pass: batches over 1 use weights packed on first use (the
     * model packs them at load), which would otherwise be timed as a pass. */
    for (size_t m = 0; m < n_mats; m++)
        if (quant_matmul(&mats[m], x, batch, y, p)) rys_die("%s", rys_lasterr());

    type_stats stats[QT_COUNT] = {0};
    int passes = 0;
    double t_start = rys_now();
    do {
        for (size_t m = 0; m < n_mats; m++) {
            double t0 = rys_now();
            if (quant_matmul(&mats[m], x, batch, y, p)) rys_die("%s", rys_lasterr());
            type_stats *s = &stats[mats[m].type];
            s->seconds += rys_now() - t0;
            if (!passes) {
                s->bytes += (double)quant_row_size(mats[m].type, mats[m].n_in) * (double)mats[m].n_out;
                s->macs += (double)mats[m].n_in * (double)mats[m].n_out * (double)batch;
                s->tensors++;
            }
        }
        passes++;
    } while (rys_now() - t_start < budget);

    printf("path,threads,batch,type,tensors,mbytes,ms_per_pass,gbytes_per_s,gmac_per_s\n");
    double total_s = 0, total_b = 0, total_m = 0;
    for (int t = 0; t < QT_COUNT; t++) {
        if (!stats[t].tensors) continue;
        double ms = stats[t].seconds / passes * 1e3;
        printf("%s,%d,%d,%s,%d,%.1f,%.3f,%.1f,%.1f\n", quant_path_name(quant_cpu_path()), threads, batch,
               quant_get_info((uint32_t)t)->name, stats[t].tensors, stats[t].bytes / 1e6, ms,
               stats[t].bytes / (ms * 1e-3) / 1e9, stats[t].macs / (ms * 1e-3) / 1e9);
        total_s += stats[t].seconds / passes;
        total_b += stats[t].bytes;
        total_m += stats[t].macs;
    }
    printf("%s,%d,%d,all,%zu,%.1f,%.3f,%.1f,%.1f\n", quant_path_name(quant_cpu_path()), threads, batch, n_mats,
           total_b / 1e6, total_s * 1e3, total_b / total_s / 1e9, total_m / total_s / 1e9);
    pool_free(p);
    free(mats);
    free(x);
    free(y);
    gguf_close(g);
    return 0;
}
