/* store: the SQLite results store of scans.
 *
 * One database holds one scan identity (model sha256, probe files' sha256,
 * generation settings); configurations of any search (single blocks, repeats,
 * later beam/surrogate picks) are rows keyed by their canonical layer path.
 * Each configuration's result is committed in one transaction together with
 * its status, so a kill at any moment leaves every configuration either fully
 * recorded or not at all; resuming redoes only the missing ones. */
#ifndef RYS_STORE_H
#define RYS_STORE_H

#include <stdbool.h>
#include <stdint.h>

typedef struct store store;

typedef struct {
    const char *name;       /* probe set name, e.g. "math_16" */
    const char *path;
    const char *sha256;
    const char *kind;       /* "math", "eq", ... */
    int n_items;
} store_probe;

typedef struct {
    const char *model_path, *model_sha256, *arch;
    int n_layers;
    const store_probe *probes;
    int n_probes;
    const char *settings_json;  /* generation settings that change scores */
} store_identity;

typedef struct {
    const char *spec;       /* "baseline", "blocks:i,j", "repeat:L,r", ... */
    const char *path;       /* canonical "layers:..." */
    int i, j;               /* block bounds, or -1 */
    int extra_layers;
    int order;              /* position in the sweep order */
    const char *search;     /* what proposed it: "scan", "paths", "beam", "surrogate"; NULL = "scan".
                             * A path already in the store keeps the search that added it first. */
} store_config;

typedef struct {
    const char *probe;      /* probe set name */
    const char *key;        /* item key in the probe file */
    const char *generated;
    const char *parsed_json;
    double score;
} store_item;

typedef struct {
    const char *path;
    double seconds;
    long long prompt_tokens, generated_tokens, layer_tokens_done, layer_tokens_naive;
    const char *const *probe_names;
    const double *probe_scores;
    int n_probes;
    const store_item *items;
    int n_items;
} store_result;

/* Opens or creates (schema included). NULL + error. */
store *store_open(const char *path);
void store_close(store *st);
/* Registers the scan identity, or checks it against the one recorded;
 * a different model/probe/settings gives -1 with a message saying what differs. */
int store_set_identity(store *st, const store_identity *id);
/* Adds configurations not yet present (as pending). */
int store_add_configs(store *st, const store_config *cfgs, int n);
/* 1 if done, 0 if not, -1 on error. */
int store_is_done(store *st, const char *path);
int store_save_result(store *st, const store_result *r);
/* Counts for progress: total configurations and done ones. */
int store_counts(store *st, int *total, int *done);
/* Marks a configuration as being worked on (for --status). */
int store_mark_running(store *st, const char *path);

/* ---- reading (report, --status, searches) ------------------------------------ */

/* Opens an existing store read-only, creating and changing nothing, so a
 * report can be made while a scan is still writing. NULL + error. */
store *store_open_readonly(const char *path);
/* 1 with the scanned model's path (malloc'd) and layer count when the file
 * holds a scan identity; 0 when it holds none (a database of `rys validate`
 * results alone has no scan tables) or cannot be read as a scan. */
int store_get_run(store *st, char **model_path, int *n_layers);

typedef struct {
    char *name, *kind;
    char *path;             /* the file the scan read (as it was given) */
} store_probe_set;

/* The probe sets in the order the scan scores them. 0, or -1 + error. */
int store_probe_sets(store *st, store_probe_set **out, int *n);
void store_probe_sets_free(store_probe_set *sets, int n);

typedef struct {
    char *spec;
    char *path;             /* canonical "layers:..." */
    char *search;           /* what proposed it (store_config.search) */
    int i, j;               /* block bounds, or -1 */
    int extra_layers;
    double *scores;         /* one per probe set asked for, in that order */
    bool complete;          /* every probe set asked for has a score */
} store_done;

/* The done configurations in sweep order with their scores on the named
 * probe sets. 0, or -1 + error. */
int store_done_configs(store *st, const char *const *probes, int n_probes, store_done **out, int *n);
void store_done_free(store_done *rows, int n);

typedef struct {
    char *spec;
    int extra_layers;
    double combined;        /* sum over probe sets of score - baseline score */
    char *deltas;           /* "math_16=+0.0625 eq_16=-0.0100" */
} store_best;

/* At most top done configurations by combined delta, best first (none
 * without a scored baseline). 0, or -1 + error. */
int store_best_configs(store *st, int top, store_best **out, int *n);
void store_best_free(store_best *rows, int n);

typedef struct {
    int total, done;
    /* done non-baseline configurations per minute between the first start
     * and the last finish; 0 when that span is unknown */
    double configs_per_minute;
    char running[64];       /* spec of the configuration started last and not done, "" if none (truncated) */
} store_progress;

/* Progress of the scan for --status. 0, or -1 + error when even the counts
 * cannot be read (the rate and the running one are best effort). */
int store_get_progress(store *st, store_progress *p);

/* The item scores of the done configuration keyed path on probe set probe,
 * ordered by item key: (*keys)[k] (malloc'd) and (*scores)[k], *n of them
 * (none when the path is not done). 0, or -1 + error. */
int store_item_scores(store *st, const char *path, const char *probe, char ***keys, double **scores, int *n);

/* ---- pipeline stages ------------------------------------------------------------ */

typedef struct {
    double seconds;         /* spent in it over every run so far */
    bool done;              /* it finished (or used up its share of the budget) */
    char note[256];         /* what it left for later stages, e.g. the block a focus scan centred on */
} store_stage;

/* The record of pipeline stage name; all zero when it never ran. 0, or -1 + error. */
int store_stage_get(store *st, const char *name, store_stage *out);
/* Adds seconds to stage name, marks it done if done, and replaces its note
 * unless note is NULL or empty, in one statement. 0, or -1 + error. */
int store_stage_add(store *st, const char *name, double seconds, bool done, const char *note);

/* 1 with the scan's generation settings (the identity's JSON, malloc'd), 0
 * when the store has no scan identity, -1 + error. */
int store_get_settings(store *st, char **settings);

/* ---- beam searches (search/beam.h) --------------------------------------------
 * A beam is named by its options; what it ranks by is frozen when it starts
 * and each depth's candidates are written before any is measured, so a rerun
 * after a kill proposes and ranks exactly what an uninterrupted run would. */

typedef struct {
    char *spec;             /* "blocks:i,j[;k,l...]" */
    char *path;             /* canonical, the config row's key */
    double heuristic;       /* what ordered the proposals */
} store_beam_entry;

/* 1 with the z statistics (mean[p], sd[p] for the scan's n_probes probe sets
 * in order) the beam `name` froze, 0 when the store has no such beam, -1 +
 * error (a beam keeping another number of probe sets included). */
int store_beam_get(store *st, const char *name, double *mean, double *sd, int n_probes);
/* Records the beam `name`, its z statistics and its depth-1 entries (seeds
 * and extending blocks, ranked) in one transaction. 0, or -1 + error. */
int store_beam_create(store *st, const char *name, const double *mean, const double *sd, int n_probes,
                      const store_beam_entry *seeds, int n);
/* 1 with depth's entries in rank order when it was planned (has entries), 0
 * when not, -1 + error. */
int store_beam_depth(store *st, const char *name, int depth, store_beam_entry **out, int *n);
/* Records depth's entries e[0..n) and adds cfgs[0..n) (their configurations,
 * as store_add_configs does: rows already present keep theirs) in one
 * transaction. 0, or -1 + error. */
int store_beam_plan(store *st, const char *name, int depth, const store_beam_entry *e, int n, const store_config *cfgs);
void store_beam_entries_free(store_beam_entry *e, int n);

/* ---- the surrogate's fit (rys surrogate train) --------------------------------- */

/* The scanned model's sha256 (malloc'd): 1, 0 when the file holds no scan identity, -1 + error. */
int store_model_sha256(store *st, char **sha256);

/* One target of a trained surrogate and its holdout: what `rys report` draws. */
typedef struct {
    const char *target;         /* "math_delta", "eq_delta", "balanced" */
    double spearman, mae;       /* on the holdout; spearman NAN when undefined (a constant side) */
    int n_train, n_holdout;
    bool gate_passed;           /* the whole surrogate passed its Spearman gate */
    const char *const *paths;   /* n_holdout canonical paths */
    const double *measured, *predicted;
} store_surrogate_target;

/* Replaces the stored surrogate fit (tables surrogate_fit, surrogate_holdout)
 * with these targets in one transaction. 0, or -1 + error. */
int store_save_surrogate(store *st, const store_surrogate_target *t, int n);

typedef struct {
    char *target;
    double spearman, mae;
    int n_train, n_holdout;
    bool gate_passed;
    char **paths;
    double *measured, *predicted;   /* n_holdout each */
} store_surrogate_fit;

/* The stored surrogate fit in target order: 0 with *n = 0 when none was
 * trained on this store (or it predates the tables), -1 + error. */
int store_surrogate_fits(store *st, store_surrogate_fit **out, int *n);
void store_surrogate_fits_free(store_surrogate_fit *f, int n);

/* The specs of the configurations search proposed that are not done (pending,
 * or left running by a kill), in sweep order: what a stopped search stage
 * has still to measure. Free with store_specs_free. 0, or -1 + error. */
int store_unfinished_specs(store *st, const char *search, char ***specs, int *n);
void store_specs_free(char **specs, int n);

/* ---- the pre-screen (scan/prescreen.h) ------------------------------------------ */

typedef struct {
    int i, j;               /* the block of layers i..j-1 */
    double score;           /* higher = measured earlier */
} store_prescreen_block;

/* Replaces the stored pre-screen with blocks b[0..n) and about (JSON: the
 * method, the calibration prompts, the layers' statistics) in one
 * transaction. 0, or -1 + error. */
int store_prescreen_save(store *st, const char *about, const store_prescreen_block *b, int n);
/* The stored pre-screen, best score first (ties: smaller i, then j), and its
 * about JSON (malloc'd; about may be NULL): 0 with *n = 0 when the store has
 * none, -1 + error. */
int store_prescreen_get(store *st, store_prescreen_block **out, int *n, char **about);

#endif
