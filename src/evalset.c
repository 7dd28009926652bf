/* evalset: see evalset.h. */
#include "evalset.h"
#include "chat.h"
#include "probes/probe_file.h"
#include "util.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

struct evalset {
    probe_set **sets;
    int n_sets;
    int n;                      /* prompts */
    int32_t **prompts;
    int *lens;
    int *set_of, *item_of;
    evalset_options opt;
    char *math_system;
    char *family;               /* chat template family */
};

void evalset_free(evalset *e) {
    if (!e) return;
    for (int s = 0; s < e->n_sets; s++) probe_set_free(e->sets[s]);
    for (int k = 0; k < e->n; k++) free(e->prompts[k]);
    free(e->sets); free(e->prompts); free(e->lens); free(e->set_of); free(e->item_of);
    free(e->math_system); free(e->family);
    free(e);
}

evalset *evalset_load(const char *const *files, int n_files, const model *m, const tokenizer *tok,
                      const evalset_options *o) {
    if (n_files < 1) { rys_seterr("no probe files given"); return NULL; }
    chat_template *tpl = chat_template_from_gguf(m->gguf);
    if (!tpl) {
        rys_seterr("%s: probes need a chat model (%s)", m->gguf->path, rys_lasterr());
        return NULL;
    }
    evalset *e = xcalloc(1, sizeof *e);
    e->opt = *o;
    e->math_system = o->math_system ? xstrdup(o->math_system) : NULL;
    e->family = xstrdup(chat_template_family(tpl));
    e->sets = xcalloc((size_t)n_files, sizeof *e->sets);
    for (int f = 0; f < n_files; f++) {
        probe_set *ps = probe_set_load(files[f]);
        if (!ps) goto fail;
        for (int g = 0; g < e->n_sets; g++)
            if (!strcmp(e->sets[g]->name, ps->name)) {
                rys_seterr("%s: a probe set named %s is already loaded (from %s)", files[f], ps->name, e->sets[g]->path);
                probe_set_free(ps);
                goto fail;
            }
        e->sets[e->n_sets++] = ps;
        e->n += ps->n;
    }
    e->prompts = xcalloc((size_t)e->n, sizeof *e->prompts);
    e->lens = xcalloc((size_t)e->n, sizeof *e->lens);
    e->set_of = xcalloc((size_t)e->n, sizeof *e->set_of);
    e->item_of = xcalloc((size_t)e->n, sizeof *e->item_of);
    int k = 0;
    for (int s = 0; s < e->n_sets; s++) {
        const probe_set *ps = e->sets[s];
        const char *system = probe_system_text(ps, e->math_system);
        for (int i = 0; i < ps->n; i++, k++) {
            char *user = probe_user_text(ps, i, o->no_think);
            chat_message msgs[2];
            size_t nm = 0;
            if (system) msgs[nm++] = (chat_message){"system", system};
            msgs[nm++] = (chat_message){"user", user};
            char *text = chat_format(tpl, msgs, nm, true);
            free(user);
            if (!text) goto fail;
            size_t n;
            int rc = tokenizer_encode(tok, text, strlen(text), true, true, &e->prompts[k], &n);
            free(text);
            if (rc) goto fail;
            e->lens[k] = (int)n;
            e->set_of[k] = s;
            e->item_of[k] = i;
        }
    }
    chat_template_free(tpl);
    return e;
fail:
    chat_template_free(tpl);
    evalset_free(e);
    return NULL;
}

int evalset_n_sets(const evalset *e) { return e->n_sets; }
const char *evalset_set_name(const evalset *e, int s) { return e->sets[s]->name; }
const char *evalset_set_path(const evalset *e, int s) { return e->sets[s]->path; }
const char *evalset_set_sha256(const evalset *e, int s) { return e->sets[s]->sha256; }
const char *evalset_set_kind(const evalset *e, int s) { return probe_kind_name(e->sets[s]->kind); }
int evalset_set_items(const evalset *e, int s) { return e->sets[s]->n; }
int evalset_n_prompts(const evalset *e) { return e->n; }
const int32_t *const *evalset_prompts(const evalset *e) { return (const int32_t *const *)e->prompts; }
const int *evalset_lens(const evalset *e) { return e->lens; }
int evalset_prompt_set(const evalset *e, int k) { return e->set_of[k]; }
const char *evalset_prompt_key(const evalset *e, int k) { return e->sets[e->set_of[k]]->items[e->item_of[k]].key; }
int evalset_n_predict(const evalset *e) { return e->opt.n_predict; }

double evalset_score(const evalset *e, int k, const char *text, char **parsed_json) {
    return probe_score_text(e->sets[e->set_of[k]], e->item_of[k], text, parsed_json);
}

char *evalset_settings_json(const evalset *e) {
    const char *sys = e->math_system ? e->math_system : PROBE_MATH_SYSTEM_PROMPT;
    json_t *o = json_pack("{s:i, s:s, s:b, s:s, s:s}", "n_predict", e->opt.n_predict, "math_system", sys, "no_think",
                          e->opt.no_think, "sampling", "greedy", "chat_template", e->family);
    char *s = json_dumps(o, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(o);
    return s;
}
