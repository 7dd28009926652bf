/* evalset: see evalset.h. */
#include "scan/evalset.h"
#include "scan/objective.h"
#include "engine/chat.h"
#include "engine/forward.h"
#include "probes/eq.h"
#include "probes/probe_file.h"
#include "base/util.h"

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
    bool *logit;                /* per set: read by logits ("FILE:logit") */
    int n_logit;                /* logit-read items */
    char **logit_text;          /* their rendered prompts */
    eqlogit_item *logit_items;
    int *logit_set_of, *logit_item_of;
    objective_set *obj;         /* benchmark objectives ("TASK:VARIANT:loglik[@N]", "ppl:FILE"), after the probe sets */
    int n_obj;
    int n_obj_sets;             /* their score sets: set n_sets + i is score obj_which[i] of objective obj_of[i] */
    int *obj_of, *obj_which, *obj_first;
    char **obj_names;           /* per score set: "<name>:acc", "<name>:margin", "ppl:<stem>" */
};

#define LOGIT_SUFFIX ":logit"

void evalset_free(evalset *e) {
    if (!e) return;
    for (int s = 0; s < e->n_sets; s++) probe_set_free(e->sets[s]);
    for (int k = 0; k < e->n; k++) free(e->prompts[k]);
    for (int k = 0; k < e->n_logit; k++) free(e->logit_text[k]);
    free(e->logit); free(e->logit_text); free(e->logit_items); free(e->logit_set_of); free(e->logit_item_of);
    free(e->sets); free(e->prompts); free(e->lens); free(e->set_of); free(e->item_of);
    free(e->math_system); free(e->family);
    for (int k = 0; k < e->n_obj; k++) objective_set_free(&e->obj[k]);
    for (int i = 0; i < e->n_obj_sets; i++) free(e->obj_names[i]);
    free(e->obj); free(e->obj_names); free(e->obj_of); free(e->obj_which); free(e->obj_first);
    free(e);
}

evalset *evalset_load(const char *const *files, int n_files, const model *m, const tokenizer *tok,
                      const evalset_options *o) {
    if (n_files < 1) { rys_seterr("no probe files given"); return NULL; }
    int n_obj = 0;
    for (int f = 0; f < n_files; f++) n_obj += objective_is_spec(files[f]);
    /* benchmark objectives are scored on raw documents: only probe files need a chat template */
    chat_template *tpl = n_obj < n_files ? chat_template_from_gguf(m->gguf) : NULL;
    if (!tpl && n_obj < n_files) {
        rys_seterr("%s: probes need a chat model (%s)", m->gguf->path, rys_lasterr());
        return NULL;
    }
    evalset *e = xcalloc(1, sizeof *e);
    e->opt = *o;
    e->math_system = o->math_system ? xstrdup(o->math_system) : NULL;
    e->family = xstrdup(tpl ? chat_template_family(tpl) : "none");
    e->sets = xcalloc((size_t)n_files, sizeof *e->sets);
    e->logit = xcalloc((size_t)n_files, sizeof *e->logit);
    e->obj = xcalloc((size_t)(n_obj ? n_obj : 1), sizeof *e->obj);
    e->obj_names = xcalloc((size_t)(2 * n_obj + 1), sizeof *e->obj_names);
    e->obj_of = xcalloc((size_t)(2 * n_obj + 1), sizeof *e->obj_of);
    e->obj_which = xcalloc((size_t)(2 * n_obj + 1), sizeof *e->obj_which);
    e->obj_first = xcalloc((size_t)(n_obj + 1), sizeof *e->obj_first);
    for (int f = 0; f < n_files; f++) {
        if (objective_is_spec(files[f])) {
            objective_set *ob = &e->obj[e->n_obj];
            if (objective_load(files[f], NULL, m, tok, ob)) goto fail;
            e->obj_first[e->n_obj] = e->n_obj_sets;
            for (int i = 0; i < objective_n_scores(ob); i++) {
                const char *suffix = objective_score_suffix(ob, i);
                size_t len = strlen(ob->name) + (suffix ? strlen(suffix) : 0) + 2;
                char *name = xmalloc(len);
                snprintf(name, len, "%s%s%s", ob->name, suffix ? ":" : "", suffix ? suffix : "");
                e->obj_names[e->n_obj_sets] = name;
                e->obj_of[e->n_obj_sets] = e->n_obj;
                e->obj_which[e->n_obj_sets++] = i;
            }
            e->n_obj++;
            for (int g = 0; g < e->n_obj - 1; g++)
                if (!strcmp(e->obj[g].name, ob->name)) {
                    rys_seterr("%s: the objective %s is given twice", files[f], ob->name);
                    goto fail;
                }
            continue;
        }
        size_t len = strlen(files[f]), sl = strlen(LOGIT_SUFFIX);
        bool logit = len > sl && !strcmp(files[f] + len - sl, LOGIT_SUFFIX);
        char *file = xstrdup(files[f]);
        if (logit) file[len - sl] = 0;
        probe_set *ps = probe_set_load(file);
        free(file);
        if (!ps) goto fail;
        if (logit) {
            if (ps->kind != PROBE_EQ) {
                rys_seterr("%s: only EQ probe sets can be read by logits (this one is %s)", files[f], probe_kind_name(ps->kind));
                probe_set_free(ps);
                goto fail;
            }
            char *name = xmalloc(strlen(ps->name) + sl + 1);
            sprintf(name, "%s%s", ps->name, LOGIT_SUFFIX);
            free(ps->name);
            ps->name = name;
        }
        for (int g = 0; g < e->n_sets; g++)
            if (!strcmp(e->sets[g]->name, ps->name)) {
                rys_seterr("%s: a probe set named %s is already loaded (from %s)", files[f], ps->name, e->sets[g]->path);
                probe_set_free(ps);
                goto fail;
            }
        e->logit[e->n_sets] = logit;
        e->sets[e->n_sets++] = ps;
        if (logit) e->n_logit += ps->n;
        else e->n += ps->n;
    }
    e->prompts = xcalloc((size_t)e->n, sizeof *e->prompts);
    e->lens = xcalloc((size_t)e->n, sizeof *e->lens);
    e->set_of = xcalloc((size_t)e->n, sizeof *e->set_of);
    e->item_of = xcalloc((size_t)e->n, sizeof *e->item_of);
    e->logit_text = xcalloc((size_t)e->n_logit, sizeof *e->logit_text);
    e->logit_items = xcalloc((size_t)e->n_logit, sizeof *e->logit_items);
    e->logit_set_of = xcalloc((size_t)e->n_logit, sizeof *e->logit_set_of);
    e->logit_item_of = xcalloc((size_t)e->n_logit, sizeof *e->logit_item_of);
    int k = 0, kl = 0;
    for (int s = 0; s < e->n_sets; s++) {
        const probe_set *ps = e->sets[s];
        const char *system = probe_system_text(ps, e->math_system);
        for (int i = 0; i < ps->n; i++) {
            char *user = probe_user_text(ps, i, o->no_think);
            chat_message msgs[2];
            size_t nm = 0;
            if (system) msgs[nm++] = (chat_message){"system", system};
            msgs[nm++] = (chat_message){"user", user};
            char *text = chat_format(tpl, msgs, nm, true);
            free(user);
            if (!text) goto fail;
            if (e->logit[s]) {
                e->logit_text[kl] = text;
                e->logit_items[kl].prompt = text;
                for (int em = 0; em < 4; em++) e->logit_items[kl].emotion[em] = ps->items[i].emotion[em];
                e->logit_set_of[kl] = s;
                e->logit_item_of[kl++] = i;
                continue;
            }
            size_t n;
            int rc = tokenizer_encode(tok, text, strlen(text), true, true, &e->prompts[k], &n);
            free(text);
            if (rc) goto fail;
            e->lens[k] = (int)n;
            e->set_of[k] = s;
            e->item_of[k++] = i;
        }
    }
    chat_template_free(tpl);
    return e;
fail:
    chat_template_free(tpl);
    evalset_free(e);
    return NULL;
}

/* Sets s >= n_sets are the objectives' score sets (obj_of, obj_which). */
static const objective_set *set_objective(const evalset *e, int s) { return &e->obj[e->obj_of[s - e->n_sets]]; }
int evalset_n_sets(const evalset *e) { return e->n_sets + e->n_obj_sets; }
const char *evalset_set_name(const evalset *e, int s) { return s < e->n_sets ? e->sets[s]->name : e->obj_names[s - e->n_sets]; }
const char *evalset_set_path(const evalset *e, int s) { return s < e->n_sets ? e->sets[s]->path : set_objective(e, s)->ts.file; }
const char *evalset_set_sha256(const evalset *e, int s) { return s < e->n_sets ? e->sets[s]->sha256 : set_objective(e, s)->ts.sha256; }
const char *evalset_set_kind(const evalset *e, int s) {
    if (s >= e->n_sets) return objective_score_kind(set_objective(e, s), e->obj_which[s - e->n_sets]);
    return e->logit[s] ? "eq_logit" : probe_kind_name(e->sets[s]->kind);
}
int evalset_set_items(const evalset *e, int s) { return s < e->n_sets ? e->sets[s]->n : set_objective(e, s)->ts.n_docs; }
int evalset_n_objectives(const evalset *e) { return e->n_obj; }
const objective_set *evalset_objectives(const evalset *e) { return e->obj; }
int evalset_objective_set(const evalset *e, int k) { return e->n_sets + e->obj_first[k]; }
int evalset_n_prompts(const evalset *e) { return e->n; }
const int32_t *const *evalset_prompts(const evalset *e) { return (const int32_t *const *)e->prompts; }
const int *evalset_lens(const evalset *e) { return e->lens; }
int evalset_prompt_set(const evalset *e, int k) { return e->set_of[k]; }
const char *evalset_prompt_key(const evalset *e, int k) { return e->sets[e->set_of[k]]->items[e->item_of[k]].key; }
int evalset_n_predict(const evalset *e) { return e->opt.n_predict; }

double evalset_score(const evalset *e, int k, const char *text, char **parsed_json) {
    return probe_score_text(e->sets[e->set_of[k]], e->item_of[k], text, parsed_json);
}

int evalset_n_logit(const evalset *e) { return e->n_logit; }
const eqlogit_item *evalset_logit_items(const evalset *e) { return e->logit_items; }
int evalset_logit_set(const evalset *e, int k) { return e->logit_set_of[k]; }
const char *evalset_logit_key(const evalset *e, int k) { return e->sets[e->logit_set_of[k]]->items[e->logit_item_of[k]].key; }

double evalset_logit_score(const evalset *e, int k, const eqlogit_result *r, char **parsed_json) {
    double expected[4];
    double sc = eq_logit_score(r->probs, e->sets[e->logit_set_of[k]]->items[e->logit_item_of[k]].ref, expected);
    if (sc < 0) return -1;
    if (parsed_json) *parsed_json = eqlogit_result_json(r, expected, sc);
    return sc;
}

char *evalset_settings_json(const evalset *e) {
    const char *sys = e->math_system ? e->math_system : PROBE_MATH_SYSTEM_PROMPT;
    json_t *o = json_pack("{s:i, s:s, s:b, s:s, s:s, s:i}", "n_predict", e->opt.n_predict, "math_system", sys, "no_think",
                          e->opt.no_think, "sampling", "greedy", "chat_template", e->family, "numerics", RYS_NUMERICS);
    /* how logit-read sets are read (eqlogit.h); absent without such sets,
     * so stores of scans without them keep their identity */
    if (e->n_logit) json_object_set_new(o, "eq_logit", json_string("terminated scores 0..10, argmax fed back"));
    /* how many documents (chunks) each objective scores: the probe set rows' sha256 names only the data
     * file, so "@100" against a store scanned "@50" is refused here; absent without objectives */
    if (e->n_obj) {
        json_t *ob = json_object();
        for (int k = 0; k < e->n_obj; k++)
            json_object_set_new(ob, e->obj[k].name, e->obj[k].seed >= 0 ? json_pack("{s:i, s:I}", "docs", e->obj[k].ts.n_docs, "seed",
                                                                                      (json_int_t)e->obj[k].seed)
                                                                        : json_pack("{s:i}", e->obj[k].ppl ? "chunks" : "docs",
                                                                                    e->obj[k].ts.n_docs));
        json_object_set_new(o, "objectives", ob);
    }
    char *s = json_dumps(o, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(o);
    return s;
}
