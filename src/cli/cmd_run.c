/* rys run: generate text from a prompt along a layer path. */
#include "engine/chat.h"
#include "cli/cli.h"
#include "engine/forward.h"
#include "engine/generate.h"
#include "base/util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { const cli_model *cm; bool stream; tokenizer_stream ts; } stream_ctx;

/* Streams text as it is generated, never splitting a UTF-8 character. */
static void on_token(void *user, int seq, int32_t t) {
    stream_ctx *s = user;
    (void)seq;
    if (!s->stream) return;
    size_t len;
    tokenizer_token_bytes(s->cm->tok, t, &len);
    char *buf = xmalloc(len + 8);
    size_t n = tokenizer_stream_token(s->cm->tok, &s->ts, t, buf, len + 8);
    fwrite(buf, 1, n, stdout);
    fflush(stdout);
    free(buf);
}

int cmd_run(int argc, char **argv) {
    const char *model_spec = NULL, *prompt = NULL, *system = NULL, *blocks = NULL, *layers = NULL;
    bool chat = false, json = false;
    int threads = 0, n_ctx = 0;
    sample_params sp = {0.0f, 1.0f, 42, 128};
    const cli_opt opts[] = {
        CLI_STR_REQUIRED("-p", "--prompt", &prompt, "S", "the prompt text"),
        CLI_FLAG_OPT("--chat", NULL, &chat, "format the prompt with the model's chat template (user turn)"),
        CLI_STR_OPT("--system", NULL, &system, "S", "system message for --chat"),
        CLI_BLOCKS(&blocks),
        CLI_LAYERS(&layers),
        CLI_INT_OPT("-n", NULL, &sp.n_predict, 0, 1 << 20, "N", "new tokens (default 128)"),
        CLI_INT_OPT("-c", NULL, &n_ctx, 1, 1 << 20, "N", "context size (default: prompt + n)"),
        CLI_THREADS(&threads),
        CLI_FLOAT_OPT("--temp", NULL, &sp.temperature, 0, 100, "T", "temperature (default 0 = greedy)"),
        CLI_FLOAT_OPT("--top-p", NULL, &sp.top_p, 0, 1, "P", "nucleus sampling (default 1)"),
        CLI_U64_OPT("--seed", NULL, &sp.seed, "S", "sampling seed (default 42)"),
        CLI_JSON(&json, "print one JSON object instead of streaming text"),
        CLI_END,
    };
    const cli_arg args[] = {CLI_MODEL_ARG(&model_spec), CLI_ARG_END};
    const cli_spec spec = {"run", "MODEL -p PROMPT [options]", opts, args, NULL, NULL, false, NULL};
    cli_parse_or_exit(&spec, argc, argv);

    cli_model cm;
    cli_open_model(model_spec, threads, &cm);
    layer_path path;
    cli_path(&cm, blocks, layers, &path);

    char *text = NULL;
    if (chat) {
        chat_template *tpl = chat_template_from_gguf(cm.m->gguf);
        if (!tpl) rys_die("%s", rys_lasterr());
        chat_message msgs[2];
        size_t nm = 0;
        if (system) msgs[nm++] = (chat_message){"system", system};
        msgs[nm++] = (chat_message){"user", prompt};
        text = chat_format(tpl, msgs, nm, true);
        chat_template_free(tpl);
        if (!text) rys_die("%s", rys_lasterr());
    } else {
        text = xstrdup(prompt);
    }
    int n_prompt;
    int32_t *ids = cli_tokenize(&cm, text, true, &n_prompt);
    char what[96];
    if (n_ctx == 0) {
        n_ctx = n_prompt + sp.n_predict;
        snprintf(what, sizeof what, "the prompt (%d tokens) and %d new tokens", n_prompt, sp.n_predict);
    } else {
        snprintf(what, sizeof what, "-c");
    }
    cli_check_context(&cm, n_ctx, what);
    forward_ctx *f = forward_new(cm.m, &path, 1, n_ctx, cm.pool);
    if (!f) rys_die("%s", rys_lasterr());

    stream_ctx sc = {&cm, !json, {{0}, 0}};
    gen_output out;
    const int32_t *prompts[1] = {ids};
    double t0 = rys_now();
    if (generate(f, cm.tok, prompts, &n_prompt, 1, &sp, &out, on_token, &sc)) rys_die("%s", rys_lasterr());
    double dt = rys_now() - t0;
    char *gen_text = tokenizer_decode(cm.tok, out.tokens, (size_t)out.n);
    if (json) {
        json_t *o = json_object(), *pt = json_array(), *gt = json_array();
        for (int i = 0; i < n_prompt; i++) json_array_append_new(pt, json_integer(ids[i]));
        for (int i = 0; i < out.n; i++) json_array_append_new(gt, json_integer(out.tokens[i]));
        char *canon = path_canonical(&path);
        json_object_set_new(o, "model", json_string(cm.path));
        json_object_set_new(o, "path", json_string(canon));
        json_object_set_new(o, "prompt_tokens", pt);
        json_object_set_new(o, "tokens", gt);
        json_object_set_new(o, "text", json_string(gen_text));
        json_object_set_new(o, "hit_eog", json_boolean(out.hit_eog));
        json_object_set_new(o, "seconds", json_real(dt));
        json_object_set_new(o, "kv_bytes", json_integer((json_int_t)forward_kv_bytes(f)));
        json_object_set_new(o, "peak_rss", json_integer((json_int_t)rys_peak_rss()));
        free(canon);
        cli_json_print(o, JSON_INDENT(1) | JSON_ENSURE_ASCII);
    } else {
        char tail[8];
        fwrite(tail, 1, tokenizer_stream_flush(&sc.ts, tail, sizeof tail), stdout);
        putchar('\n');
        fflush(stdout); /* the text and its newline before the statistics, also when stdout is a pipe */
        fprintf(stderr, "rys: %d prompt + %d generated tokens in %.2f s, path of %d layers (%+d), peak RSS %.1f MiB\n",
                n_prompt, out.n, dt, path.n, path_extra_layers(&path), rys_peak_rss() / 1048576.0);
    }
    free(gen_text);
    gen_output_free(&out, 1);
    forward_free(f);
    free(ids);
    free(text);
    path_free(&path);
    cli_close_model(&cm);
    return 0;
}
