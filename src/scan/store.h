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

struct sqlite3;

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
/* The underlying connection, for read-only queries (report, status). */
struct sqlite3 *store_db(store *st);
#endif
