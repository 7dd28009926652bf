/* scan: the brain scanner. Builds the list of layer configurations of a sweep
 * (single blocks (i,j) or single-layer repeats), orders it, and scores every
 * configuration not yet in the store, reusing the baseline's prefix states. */
#ifndef RYS_SCAN_H
#define RYS_SCAN_H

#include <stdbool.h>

#include "scan/evalset.h"
#include "engine/path.h"
#include "base/pool.h"
#include "scan/reuse.h"
#include "scan/store.h"

typedef struct {
    char *spec;             /* "baseline", "blocks:i,j[;k,l...]", "layers:...", "repeat:L,r" (malloc'd) */
    int i, j;               /* single block bounds, -1 for others */
    layer_path path;
    char *key;              /* path_canonical(&path): the store's key, made once */
} scan_config;

enum scan_order { ORDER_ROWS, ORDER_COARSE, ORDER_PRESCREEN };   /* prescreen: scan_order_by_prescreen after building */

typedef struct {
    int max_extra;          /* block length cap, 0 = none */
    int stride;             /* keep i, j multiples of stride (j = N always kept) */
    int i_lo, i_hi, j_lo, j_hi;  /* --only ranges, inclusive */
    enum scan_order order;
    bool repeat;            /* single-layer repeat sweep instead of blocks */
    int max_repeat;         /* repeat: traversals 2..max_repeat */
} scan_sweep;

/* The baseline first, then the sweep's configurations in order, each with
 * its path and key (free with scan_free_configs). */
int scan_build_configs(int n_layers, const scan_sweep *sw, scan_config **out, int *n_out);
void scan_free_configs(scan_config *c, int n);
/* The baseline, then each distinct path of a paths file's text (name is the
 * file's name for messages): one spec a line, "blocks:i,j[;k,l...]",
 * "layers:0-9,5-23", "repeat:L,r", "counts:c0,...,cN-1" or "baseline", with '#' comments and blank
 * lines ignored; a path spelled twice is kept once, as its first spelling.
 * 0, or -1 with the error "NAME:LINE: <problem>" for the first bad line. */
int scan_parse_paths(const char *text, const char *name, int n_layers, scan_config **out, int *n_out);
/* scan_parse_paths on the contents of the file at path. */
int scan_load_paths(const char *path, int n_layers, scan_config **out, int *n_out);
/* The scale dimension of a sweep (--scales): every configuration after the
 * baseline becomes one per scale, in the order given, its repeated
 * traversals at that residual scale (path_scale_repeats; 1 keeps it as it
 * is), spec "<spec>@a" and i, j unset for a != 1. 0, or -1 with the error
 * for a scale out of 0..16 or given twice. */
int scan_apply_scales(scan_config **cfgs, int *n, const float *scales, int n_scales);
/* Reorders cfgs[1..n) (the baseline stays first) by the pre-screen's
 * blocks b[0..nb), best first: the single blocks it ranks in its order,
 * then every other configuration in the order it had. */
void scan_order_by_prescreen(scan_config *cfgs, int n, const store_prescreen_block *b, int nb);
/* Parses "i0-i1,j0-j1" for --only. */
int scan_parse_only(const char *s, scan_sweep *sw);

/* Opens (or creates) the scan store at db_path for the model file at
 * model_path scanned on es: records the scan identity (model sha256, probe
 * sets, settings) or checks it against the one recorded. NULL + error. */
store *scan_store_open(const char *db_path, const char *model_path, const model *m, const evalset *es);
/* Opens the existing scan store at db_path to keep something beside its
 * scan (the pre-screen), whatever its probe sets: NULL + error when the file
 * is missing, holds no scan, or holds another model's (sha256 of the file at
 * model_path). */
store *scan_store_attach(const char *db_path, const char *model_path);
/* Adds cfgs to the store as pending rows proposed by search ("scan",
 * "paths", "beam", "surrogate"); rows already present keep theirs. */
int scan_add_configs(store *st, const scan_config *cfgs, int n_cfgs, const char *search);

typedef struct {
    bool progress;
    bool naive;             /* no reuse: every configuration from scratch (for bench/scan) */
    int limit;              /* stop after this many configurations (0 = all) */
    double deadline;        /* rys_now() after which no configuration starts (0 = none): a stage's budget */
    const char *label;      /* the progress bar's label, NULL = "scan" */
} scan_run_opts;

typedef struct {
    int done_before, done_now, total;
    double seconds;
    long long layer_tokens_done, layer_tokens_naive;
    bool stopped;           /* a stop was asked for (rys_stop_requested): configurations were left undone */
    bool out_of_time;       /* the deadline passed: configurations were left undone */
    bool objectives_from_scratch;   /* recurrent layers: benchmark objectives ran without prefix reuse */
} scan_summary;

/* Greedy outputs of every prompt of es along path, from scratch (no reuse):
 * what `rys eval` runs, and the reference the reuse path must equal. */
int scan_generate_naive(const model *m, const tokenizer *tok, const evalset *es, pool *pool, const layer_path *path,
                        gen_output *outs, reuse_stats *rs);

/* The logit-read items of es (eqlogit.h) along path, from scratch: the
 * scanner does not reuse the baseline's prefix for them. out has
 * evalset_n_logit(es) entries (free with eqlogit_result_free). */
int scan_logit_naive(const model *m, const tokenizer *tok, const evalset *es, pool *pool, const layer_path *path,
                     eqlogit_result *out, reuse_stats *rs);

/* A generation's text as probes see and the store keeps it: decoded, with
 * invalid UTF-8 replaced by U+FFFD (malloc'd). */
char *scan_output_text(const tokenizer *tok, const gen_output *o);

/* Scores every configuration of cfgs that the store lacks, each committed as
 * it finishes; when a stop is asked for (base/util.h) it returns 0 after the
 * configuration in flight with sum->stopped set, and when the deadline has
 * passed, before the next one with sum->out_of_time set. */
int scan_run(store *st, const model *m, const tokenizer *tok, const evalset *es, pool *pool,
             const scan_config *cfgs, int n_cfgs, const scan_run_opts *o, scan_summary *sum);

#endif
