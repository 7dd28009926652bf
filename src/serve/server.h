/* server: rys serve's HTTP side, an OpenAI-compatible API over one loaded
 * model and the layer paths it serves (GNU libmicrohttpd, one thread per
 * connection). Inference runs one request at a time behind one mutex: a
 * request's prompts go through the model together, but two requests do not
 * share a batch (continuous batching is a later step). */
#ifndef RYS_SERVE_SERVER_H
#define RYS_SERVE_SERVER_H

#include "base/pool.h"
#include "engine/chat.h"
#include "engine/model.h"
#include "engine/path.h"
#include "engine/tokenizer.h"

/* A path served under a model id of its own. */
typedef struct {
    char *id;               /* "smollm2-135m" or "smollm2-135m@blocks:10,24" */
    layer_path path;
} serve_path;

typedef struct {
    const model *m;
    const tokenizer *tok;
    pool *pool;
    const chat_template *tpl;   /* NULL: /v1/chat/completions answers 400 */
    const char *name;           /* the model's name, the part of an id before '@' */
    const serve_path *paths;
    int n_paths;
    int n_ctx;                  /* the most positions a sequence may take */
    const char *api_key;        /* NULL: no key asked */
    const char *host;           /* an IPv4 address */
    int port;
} serve_config;

/* Parses a path spec as the part of a model id after '@' spells it:
 * "baseline", "blocks:SPEC" or "layers:SPEC". 0, or -1 with the error set. */
int serve_path_from_spec(const char *spec, int n_model, layer_path *out);

/* Serves cfg until rys_stop_requested() turns true, then stops accepting,
 * finishes the requests in flight and returns 0; -1 with the error set when
 * the server cannot start (address in use, bad host). */
int serve_run(const serve_config *cfg);

#endif
