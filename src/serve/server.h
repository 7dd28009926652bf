/* server: rys serve's HTTP side, an OpenAI-compatible API over one loaded
 * model and the layer paths it serves (GNU libmicrohttpd, one thread per
 * connection).
 *
 * Continuous batching: one scheduler thread owns the model. A connection's
 * thread parses and tokenizes its request, puts it in a bounded queue and
 * waits; the scheduler admits queued sequences into free slots of their
 * path's decode loop (the engine's gen_loop) at step boundaries and runs one
 * step of every path that has sequences, round-robin, so concurrent
 * requests along one path share each decode step and their prompts'
 * prefill. Finished, stopped, timed-out and abandoned sequences leave at the
 * next boundary. The engine's rows do not depend on what else is in their
 * batch, so a greedy answer is the same served alone or among others. */
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
    int max_batch;              /* sequences one path decodes at once (its KV slots) */
    int max_queue;              /* requests waiting for a slot before 429 */
    double timeout;             /* seconds a request may take from arrival, queue included */
} serve_config;

/* Parses a path spec as the part of a model id after '@' spells it:
 * "baseline", "blocks:SPEC" or "layers:SPEC". 0, or -1 with the error set. */
int serve_path_from_spec(const char *spec, int n_model, layer_path *out);

/* Serves cfg until rys_stop_requested() turns true, then stops accepting
 * (503 with Retry-After on open connections), finishes the requests in
 * flight and returns 0; -1 with the error set when
 * the server cannot start (address in use, bad host). */
int serve_run(const serve_config *cfg);

#endif
