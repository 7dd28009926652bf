/* The tiny model written, loaded with its tokenizer, and a 2-thread pool:
 * what the unit tests that run the engine set up for their group. The file
 * is removed once loaded (the model keeps its mapping). */
#ifndef RYS_TINY_LOADED_H
#define RYS_TINY_LOADED_H

#include "engine/model.h"
#include "base/pool.h"
#include "quant/quant.h"
#include "testutil.h"
#include "tiny_model.h"
#include "engine/tokenizer.h"
#include "base/util.h"

static inline void tiny_load(const char *tag, int n_layers, uint64_t seed, model **m, tokenizer **tok, pool **pool) {
    const char *path = test_tmp_path(tag);
    assert_int_equal(tiny_model_write(path, n_layers, seed), 0);
    assert_int_equal(quant_init(), 0);
    *m = model_load(path);
    if (!*m) fail_msg("%s", rys_lasterr());
    *tok = tokenizer_from_gguf((*m)->gguf);
    if (!*tok) fail_msg("%s", rys_lasterr());
    *pool = pool_new(2);
    unlink(path);
}

static inline void tiny_unload(model *m, tokenizer *tok, pool *pool) {
    tokenizer_free(tok);
    model_free(m);
    pool_free(pool);
}

/* The group fixture of tests that need nothing but the loaded tiny model:
 * TINY_FIXTURE_LAYERS layers, weights from TINY_FIXTURE_SEED (default 11). */
#ifdef TINY_FIXTURE_LAYERS
#ifndef TINY_FIXTURE_SEED
#define TINY_FIXTURE_SEED 11
#endif
typedef struct {
    model *m;
    tokenizer *tok;
    pool *pool;
} fixture;

static int setup(void **state) {
    fixture *fx = xcalloc(1, sizeof *fx);
    tiny_load("tiny-fixture.gguf", TINY_FIXTURE_LAYERS, TINY_FIXTURE_SEED, &fx->m, &fx->tok, &fx->pool);
    *state = fx;
    return 0;
}

static int teardown(void **state) {
    fixture *fx = *state;
    tiny_unload(fx->m, fx->tok, fx->pool);
    free(fx);
    return 0;
}
#endif

/* A text file that is no SQLite database, at a fresh temporary path. */
static inline const char *test_garbage_db(const char *tag) {
    const char *db = test_tmp_path(tag);
    FILE *f = fopen(db, "wb");
    assert_non_null(f);
    fputs("this is not a database, just text that is long enough to look like a header.......", f);
    fclose(f);
    return db;
}

#endif
