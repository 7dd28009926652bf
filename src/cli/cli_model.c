/* Model loading shared by every subcommand that runs a model. */
#include "cli/cli.h"
#include "export/export.h"
#include "cli/models.h"
#include "quant/quant.h"
#include "base/util.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* CPUs this process may run on (its affinity mask: taskset and cgroup cpusets
 * narrow it below what the machine has). */
static int usable_cpus(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int cli_default_threads(void) {
    const char *e = getenv("RYS_THREADS");
    if (e && atoi(e) > 0) return atoi(e);
    return usable_cpus();
}

/* The thread count to run with: the one asked for (-t, else RYS_THREADS, else
 * every usable CPU), but never more than the CPUs: the pool's threads spin
 * while they wait for each other, so extra threads only take turns on a CPU
 * and a run slows by tens of times (2 tokens in 20 s at -t 1000 on 2 cores). */
static int threads_to_use(int asked) {
    int cpus = usable_cpus(), n = asked > 0 ? asked : cli_default_threads();
    if (n > cpus) {
        cli_warn("%s %d is more threads than the %d CPUs this process may use; using %d",
                 asked > 0 ? "-t" : "RYS_THREADS", n, cpus, cpus);
        n = cpus;
    }
    return n;
}

void cli_open_model(const char *spec, int n_threads, cli_model *out) {
    memset(out, 0, sizeof *out);
    if (!models_resolve(spec, out->path, sizeof out->path)) rys_die("%s", rys_lasterr());
    if (quant_init()) rys_die("%s", rys_lasterr());
    out->m = model_load(out->path);
    if (!out->m) rys_die("%s", rys_lasterr());
    out->tok = tokenizer_from_gguf(out->m->gguf);
    if (!out->tok) rys_die("%s", rys_lasterr());
    out->pool = pool_new(threads_to_use(n_threads));
}

void cli_close_model(cli_model *cm) {
    tokenizer_free(cm->tok);
    model_free(cm->m);
    pool_free(cm->pool);
    memset(cm, 0, sizeof *cm);
}

void cli_path(const cli_model *cm, const char *blocks, const char *layers, layer_path *out) {
    if (!blocks && !layers) {
        /* a virtual export runs the path it records unless told otherwise */
        int v = export_read_virtual_path(cm->m->gguf, out);
        if (v < 0) rys_die("%s", rys_lasterr());
        if (v) return;
    }
    if (path_from_specs(blocks, layers, cm->m->hp.n_layers, out)) rys_die("%s", rys_lasterr());
}

int32_t *cli_tokenize(const cli_model *cm, const char *text, bool add_bos, int *n_out) {
    int32_t *ids = NULL;
    size_t n = 0;
    if (tokenizer_encode(cm->tok, text, strlen(text), add_bos, true, &ids, &n)) rys_die("%s", rys_lasterr());
    *n_out = (int)n;
    return ids;
}
