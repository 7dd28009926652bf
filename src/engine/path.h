/* path: the layer path grammar.
 *
 * A layer path is the ordered list of decoder layers a forward pass runs.
 * Position p of the path executes the weights of layer path.layers[p] and owns
 * KV-cache slot p: the *weight index* and the *KV slot* are different numbers,
 * which is the whole point of RYS. Specs:
 *   blocks "i,j[;i,j...]": (i,j) runs 0..j-1 then i..N-1; each further block's
 *          layers i..j-1 are inserted after the last occurrence of layer j-1
 *          ("0,0" alone is the baseline);
 *   layers "0-51,45-79" or "0,1,2,1,2,3": explicit indices and ranges;
 *   repeat  layer L traversed r times in a row;
 *   counts "c0,c1,...,cN-1": layer l traversed c_l times in place, in layer
 *          order (0,1,1,2,...), the surrogate's candidate form: it cannot
 *          express a block's loop, so a block and its count vector differ.
 * Canonical string: "layers:0,1,2,...".
 *
 * Damped repeats (README "Damped repeats"). A path may scale the residual
 * updates of some positions:
 *   scale   position p adds scale[p] times its attention and feed-forward
 *           outputs to the residual stream (1 = undamped, as without scales).
 *           Spelled "i,j@a" in blocks (the block's second traversal at a) and
 *           "lo-hi@a" or "L@a" in layers; canonical "layers:0,1,2,1@0.5,2@0.5,3".
 *   segs    the damped-Euler rule of "Training-Free Looped Transformers"
 *           (Chen et al., arXiv 2605.23872): each of the K traversals of a
 *           block, the first included, moves the state by h times the whole
 *           traversal's update, x <- x + h (G(x) - x), h = alpha / K. Spelled
 *           "i,j@euler" (alpha 1) or "i,j@euler:alpha"; canonical suffix
 *           "+euler:b-e@h,..." with inclusive path positions.
 * Without either, a path is exactly what it was before scales existed: the
 * same key, and the forward pass the same bits. */
#ifndef RYS_PATH_H
#define RYS_PATH_H

#include <stdbool.h>
#include <stddef.h>

/* A damped-Euler traversal: path positions [begin, end) run at full strength,
 * then the state becomes x0 + h (x - x0), x0 the state entering begin. */
typedef struct {
    int begin, end;
    float h;
} path_seg;

typedef struct {
    int *layers;        /* weight index per path position */
    int n;              /* path length */
    int n_model;        /* decoder layers in the model (N) */
    float *scale;       /* [n] residual scale per position, or NULL: all 1 */
    path_seg *seg;      /* [n_seg] damped-Euler traversals, ascending, disjoint */
    int n_seg;
} layer_path;

int path_baseline(int n_model, layer_path *out);
/* Returns 0, or -1 with rys_lasterr() = "--blocks '...': <problem>". */
int path_from_blocks(const char *spec, int n_model, layer_path *out);
/* The single block (i, j), 0 <= i < j <= n_model: layers 0..j-1 then i..n_model-1,
 * without a spec string to parse (the scanner builds thousands). 0, or -1 with the error set. */
int path_from_block(int i, int j, int n_model, layer_path *out);
int path_from_layers(const char *spec, int n_model, layer_path *out);
int path_from_repeat(int layer, int times, int n_model, layer_path *out);
/* The count vector's path: layer l run counts[l] times in a row, 1 <= counts[l] <= 64. */
int path_from_counts(const int *counts, int n_model, layer_path *out);
/* path_from_counts from "c0,c1,...": exactly n_model counts. 0, or -1 with the error set. */
int path_from_counts_spec(const char *spec, int n_model, layer_path *out);
/* How many times p traverses each layer, into counts[0..n_model-1] (the surrogate's features). */
void path_counts(const layer_path *p, int *counts);
/* Either spec may be NULL; both NULL = baseline; both set = error. */
int path_from_specs(const char *blocks, const char *layers, int n_model, layer_path *out);
int path_copy(const layer_path *src, layer_path *out);
/* Residual scale of position p (1 when the path has none). */
float path_scale(const layer_path *p, int pos);
/* Whether p scales or damps anything (false: the plain path of old). */
bool path_is_damped(const layer_path *p);
/* Gives every repeated traversal of p (each position whose layer appeared
 * earlier on the path) residual scale a, 0 <= a <= 16; a == 1 leaves p as it is. */
int path_scale_repeats(layer_path *p, float a);
/* The shortest decimal that reads back as exactly v, into buf (keys and
 * labels spell scales so). */
void path_format_scale(char *buf, size_t cap, float v);
/* Same layers, scales and damped traversals. */
bool path_equal(const layer_path *a, const layer_path *b);

/* "layers:0,1,2,..." (malloc'd); scaled positions carry "@a", damped-Euler
 * traversals a "+euler:..." suffix. */
char *path_canonical(const layer_path *p);
/* Compact human form: "0-6,2-8" (malloc'd). */
char *path_ranges(const layer_path *p);
int path_extra_layers(const layer_path *p);
/* Positions shared with the baseline: the largest k <= n_model with
 * path[p] == p for all p < k (what a run may take from the baseline's states). */
int path_shared_prefix(const layer_path *path);
void path_free(layer_path *p);

#endif
