/* rys serve: an OpenAI-compatible HTTP server over one model and the layer
 * paths it serves (src/serve/). */
#include "cli/cli.h"
#include "engine/chat.h"
#include "serve/server.h"
#include "base/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The name model ids begin with: a known model's name as given, else the
 * file's name without its directory and ".gguf". malloc'd. */
static char *model_name(const char *spec) {
    const char *base = strrchr(spec, '/');
    base = base ? base + 1 : spec;
    char *name = xstrdup(base);
    size_t len = strlen(name);
    if (len > 5 && !strcmp(name + len - 5, ".gguf")) name[len - 5] = 0;
    return name;
}

/* Splits --paths at ';' into specs; an item that starts no spec of its own
 * ("5,8" after "blocks:10,24") continues the one before, since a blocks spec
 * itself separates its blocks with ';'. The specs are xmalloc'd, *n of them. */
static char **split_paths(const char *list, int *n) {
    int n_items;
    char **items = cli_split(list, ';', &n_items);
    char **specs = xcalloc((size_t)n_items + 1, sizeof *specs);
    *n = 0;
    for (int i = 0; i < n_items; i++) {
        bool starts = !strcmp(items[i], "baseline") || !strncmp(items[i], "blocks:", 7) || !strncmp(items[i], "layers:", 7);
        if (starts || *n == 0) {
            specs[(*n)++] = xstrdup(items[i]);
        } else {
            char *prev = specs[*n - 1];
            specs[*n - 1] = xmalloc(strlen(prev) + strlen(items[i]) + 2);
            sprintf(specs[*n - 1], "%s;%s", prev, items[i]);
            free(prev);
        }
    }
    cli_free_split(items);
    return specs;
}

int cmd_serve(int argc, char **argv) {
    const char *model_spec = NULL, *host = "127.0.0.1", *paths = "baseline", *api_key = NULL;
    int port = 8080, n_ctx = 0, threads = 0, max_batch = 16, max_queue = 64, timeout = 600;
    const cli_opt opts[] = {
        CLI_STR_OPT("--host", NULL, &host, "ADDR", "IPv4 address to listen on (default 127.0.0.1, loopback only)"),
        CLI_INT_OPT("--port", NULL, &port, 1, 65535, "N", "port (default 8080)"),
        CLI_STR_OPT("--paths", NULL, &paths, "SPECS",
                    "the layer paths served, ';'-separated: baseline, blocks:I,J, layers:LIST\n"
                    "(default baseline); each is model id NAME@SPEC, the baseline NAME"),
        CLI_INT_OPT("--ctx", NULL, &n_ctx, 1, 1 << 20, "N", "the most positions of a sequence (default: the model's trained context)"),
        CLI_THREADS(&threads),
        CLI_STR_OPT("--api-key", NULL, &api_key, "KEY", "require Authorization: Bearer KEY (all routes but /health)"),
        CLI_INT_OPT("--max-batch", NULL, &max_batch, 1, 256, "N",
                    "sequences one path decodes together, its KV slots (default 16)"),
        CLI_INT_OPT("--max-queue", NULL, &max_queue, 1, 1 << 20, "N",
                    "requests that may wait for a slot; one more gets 429 with Retry-After (default 64)"),
        CLI_INT_OPT("--timeout", NULL, &timeout, 1, 1 << 20, "S",
                    "seconds a request may take from its arrival, queue included; then 504 (default 600)"),
        CLI_END,
    };
    const cli_arg args[] = {CLI_MODEL_ARG(&model_spec), CLI_ARG_END};
    const cli_spec spec = {"serve", "MODEL [--host ADDR] [--port N] [--paths SPECS] [--ctx N] [-t N] [--api-key KEY]\n"
                           "    [--max-batch N] [--max-queue N] [--timeout S]",
                           opts, args, NULL, NULL, false,
                           "Endpoints: GET /health, GET /v1/models, POST /v1/completions, POST /v1/chat/completions\n"
                           "(stream: true for both), POST /tokenize, POST /detokenize, GET /tokenizer_info, GET /metrics.\n"
                           "Concurrent requests along one path share each decode step (continuous batching).\n"
                           "SIGINT/SIGTERM: stop accepting (503 on open connections), finish the requests in flight, exit 0."};
    cli_parse_or_exit(&spec, argc, argv);

    cli_model cm;
    cli_open_model(model_spec, threads, &cm);
    char *name = model_name(model_spec);
    int n_specs;
    char **specs = split_paths(paths, &n_specs);
    if (n_specs == 0) cli_fail(&spec, "--paths: no path in '%s'", paths);
    serve_path *served = xcalloc((size_t)n_specs, sizeof *served);
    for (int i = 0; i < n_specs; i++) {
        if (serve_path_from_spec(specs[i], cm.m->hp.n_layers, &served[i].path))
            cli_fail(&spec, "--paths: %s", rys_lasterr());
        bool baseline = !strcmp(specs[i], "baseline");
        served[i].id = xmalloc(strlen(name) + strlen(specs[i]) + 2);
        sprintf(served[i].id, baseline ? "%s" : "%s@%s", name, specs[i]);
    }
    if (n_ctx == 0) n_ctx = cm.m->hp.n_ctx_train > 0 ? cm.m->hp.n_ctx_train : 4096;
    cli_check_context(&cm, n_ctx, "--ctx");
    chat_template *tpl = chat_template_from_gguf(cm.m->gguf);
    if (!tpl) cli_warn("no chat template (%s): /v1/chat/completions will answer 400", rys_lasterr());

    serve_config cfg = {cm.m,   cm.tok, cm.pool,   tpl,       name,     served, n_specs, n_ctx,
                        api_key, host,  port,      max_batch, max_queue, (double)timeout};
    rys_stop_install();
    int rc = serve_run(&cfg);
    if (rc) fprintf(stderr, "rys: %s\n", rys_lasterr());

    chat_template_free(tpl);
    for (int i = 0; i < n_specs; i++) {
        free(served[i].id);
        path_free(&served[i].path);
        free(specs[i]);
    }
    free(served);
    free(specs);
    free(name);
    cli_close_model(&cm);
    return rc ? 1 : 0;
}
