/* beam: the RYS II beam search over block compositions (`rys beam`).
 *
 * Seeds are the best measured single blocks by the balanced score. Each depth
 * extends every beam member by one more block taken from the best single
 * blocks (the same block again allowed), inserted with the multi-block rule
 * (path_from_blocks "i,j;k,l"), orders the proposals by a heuristic (the
 * member's score plus the block's), drops paths over the extra-layer cap and
 * paths proposed twice, measures at most max_new paths the store lacks, and
 * keeps the best `width` of the depth's candidates, already measured ones
 * included with their stored scores. As the public script does
 * (dnhkng/RYS scripts/beam_search.py), the z statistics behind the balanced
 * score are those of the single blocks when the beam starts.
 *
 * Resumable and deterministic: the statistics, the seeds and every depth's
 * candidates are written to the scan store (store.h, beam tables) before
 * anything of theirs is measured, and measuring goes through scan_run, one
 * transaction per path; so a rerun after a kill at any moment proposes,
 * measures and keeps exactly what an uninterrupted run does, and never
 * measures a path the store already holds. */
#ifndef RYS_BEAM_H
#define RYS_BEAM_H

#include <stdbool.h>

#include "base/pool.h"
#include "engine/model.h"
#include "engine/tokenizer.h"
#include "report/report.h"
#include "scan/evalset.h"
#include "scan/store.h"

#define BEAM_MAX_DEPTH 32

typedef struct {
    int width;          /* members kept per depth (8) */
    int depth;          /* deepest depth, in blocks per path (3); depth 1 is the seeds */
    int seeds;          /* best single blocks that start the beam (16) */
    int expand;         /* best single blocks tried as each member's next block (16) */
    int max_extra;      /* extra-layer cap on candidates, 0 = none */
    int max_new;        /* paths the store lacks measured per depth at most (64), 0 = no cap */
    int patience;       /* stop after this many depths without a better best, 0 = never */
    double deadline;    /* rys_now() after which no path starts (0 = none): not part of the beam's
                         * name, a later run with more time continues the same beam */
} beam_opts;

/* The public script's defaults: width 8, depth 3, 16 seeds, 16 extending blocks, 64 new per depth, no caps. */
beam_opts beam_default_opts(void);
/* The beam's name in the store: the options that decide what it proposes (malloc'd). */
char *beam_name(const beam_opts *o);

/* A path the next depth extends, or a block that extends it. */
typedef struct {
    const char *blocks;     /* "i,j[;k,l...]" (the blocks: spec without its prefix) */
    double score;           /* balanced score under the beam's statistics */
} beam_member;

typedef struct {
    char *spec;             /* "blocks:i,j;k,l" */
    char *path;             /* path_canonical of it: the store's key */
    int extra;              /* extra layers */
    double heuristic;       /* the member's score + the block's */
    bool stored;            /* already measured when proposed: competes, is not measured */
} beam_candidate;

/* Whether the store holds a measured path (ctx is the caller's). */
typedef bool (*beam_stored_fn)(const char *path, void *ctx);

/* The next depth's candidates: every frontier member (in order) extended by
 * every pool block (in order), paths over max_extra extra layers dropped
 * (0: no cap), sorted by heuristic, best first, ties in that proposal order;
 * walking that order, a path proposed before is skipped, a stored one is
 * kept as a competitor, a new one is kept until max_new new ones are kept
 * (0: no cap), where the walk ends. 0, or -1 + error (a bad block spec). */
int beam_propose(int n_layers, const beam_member *frontier, int n_frontier, const beam_member *pool, int n_pool, int max_extra,
                 int max_new, beam_stored_fn stored, void *ctx, beam_candidate **out, int *n);
void beam_candidates_free(beam_candidate *c, int n);

typedef struct {
    int candidates;         /* proposed at this depth */
    int measured_now;       /* measured by this run */
    int done_before;        /* already measured when this run reached them (earlier runs, other searches) */
    char *best_spec;        /* the depth's best candidate and its balanced score */
    double best_score;
} beam_depth_summary;

typedef struct {
    int n_depths;           /* depths 2.. planned and finished, in depth[0..n_depths) */
    beam_depth_summary depth[BEAM_MAX_DEPTH];
    int candidates, measured_now, done_before;
    double seconds;
    bool stopped;           /* a stop was asked for: the same command continues */
    const char *end;        /* why it ended: "depth", "plateau", "exhausted", "stopped", "deadline" */
    /* the best path seen (a seed when no composition beats it): its deltas
     * per probe set of the scan (probe names in report order) and balanced score */
    char *best_spec, *best_path;
    int best_depth, best_extra;
    double best_score, best_delta[REPORT_MAX_PROBES];
    int n_probes;
    char probe[REPORT_MAX_PROBES][64];
    double seed_score;      /* the best seed's balanced score */
} beam_summary;

/* Runs (or resumes) the beam o in the scan store st (opened read-write from
 * db_path, its identity already checked against es), measuring through
 * scan_run with search "beam". 0 with the summary (also when a stop was
 * asked for: sum->stopped), or -1 + error: no scored baseline, no single
 * blocks to seed from, a store or engine failure. */
int beam_run(store *st, const char *db_path, const model *m, const tokenizer *tok, const evalset *es, pool *pool, const beam_opts *o,
             bool progress, beam_summary *sum);
void beam_summary_free(beam_summary *s);

#endif
