/* pipeline: the whole search in one resumable command (`rys pipeline`).
 *
 * Stages, in order, each writing into one SQLite file (the scan store, with
 * the validation tables beside it):
 *   coarse     single blocks on a grid (i, j multiples of a stride);
 *   focus      every single block within a stride of the best coarse one;
 *   beam       compositions of blocks (search/beam.h);
 *   surrogate  XGBoost on every measured path, its top candidates measured;
 *   validate   the best few of every search family, and the baseline, on
 *              standard tasks (rys validate: paired intervals) and on a
 *              generated math set larger than the search's probes;
 *   report     every figure and index.html.
 * The budget is split across the stages not yet done in proportion to their
 * shares, so time a stage leaves unused flows to the later ones; a stage
 * that reaches its deadline stops after the configuration in flight and
 * counts as done. A rerun skips finished stages and continues the others
 * with what is left of the budget (time spent is kept per stage in the
 * store). Search stages stop at their deadline; validation always finishes
 * (its result is what the run is for). */
#ifndef RYS_PIPELINE_H
#define RYS_PIPELINE_H

#include <stdbool.h>

#include "base/pool.h"
#include "engine/model.h"
#include "engine/tokenizer.h"

typedef struct {
    const char *model_arg;      /* the model as named on the command line, for the printed export command */
    const char *model_path;     /* the GGUF file */
    const model *m;
    const tokenizer *tok;
    pool *pool;
    const char *dir;            /* where the store and the report go (created if missing) */
    double budget_s;            /* the whole run's wall-clock budget */
    const char *probes;         /* the search's probe files, comma-separated */
    const char *tasks;          /* validation tasks, comma-separated TASK:VARIANT[@N] (N: that task's document limit) */
    const char *data_dir;       /* data root for the tasks (NULL: the default) */
    int task_limit;             /* documents per task without @N (MMLU: per subject), 0 = all */
    int per_family;             /* configurations validated per search family */
    int beam_width, beam_depth; /* beam search shape */
    int surrogate_top;          /* surrogate candidates measured */
    long surrogate_candidates;  /* candidates the surrogate ranks */
    bool progress;
} pipeline_opts;

/* One validated configuration's outcome on the average of the tasks. */
typedef struct {
    char *spec;                 /* "blocks:10,24", ... */
    char *layers;               /* its path as --layers ranges, "0-23,10-23" */
    char *search;               /* the family that proposed it */
    int extra_layers;
    double delta, ci_lo, ci_hi; /* average accuracy delta vs baseline and its paired bootstrap 95% interval */
    int n_docs;
    double math_delta, math_lo, math_hi;    /* mean item-score delta on the generated math set, and its interval */
} pipeline_pick;

typedef struct {
    pipeline_pick *picks;       /* validated configurations, best average delta first */
    int n_picks;
    int winner;                 /* index in picks of the best whose interval lies above 0, or -1 */
    bool stopped;               /* a stop was asked for: rerun to continue */
    bool complete;              /* every stage done */
    char db_path[4096], report_dir[4096];
} pipeline_result;

/* The default share of the budget of each stage, in stage order. */
extern const double pipeline_stage_share[];
extern const char *const pipeline_stage_name[];
#define PIPELINE_N_STAGES 6

/* Runs (or continues) every stage not yet done. 0 with res filled, or -1 +
 * error. On a stop request it returns 0 with res->stopped after the step in
 * flight. */
int pipeline_run(const pipeline_opts *o, pipeline_result *res);
void pipeline_result_free(pipeline_result *res);

/* The stride of the coarse grid for a model of n_layers: about ten rows. */
int pipeline_coarse_stride(int n_layers);

#endif
