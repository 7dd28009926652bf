/* store_internal: what the two halves of the scan store share (store.c: the
 * scan itself; store_search.c: pipeline stages, beams, the surrogate's fit,
 * the pre-screen). Only they include it. */
#ifndef RYS_STORE_INTERNAL_H
#define RYS_STORE_INTERNAL_H

#include "scan/store.h"
#include "base/db.h"

struct store {
    db_conn db;
};

/* Inserts configuration rows not yet present (rows present keep theirs),
 * inside the caller's transaction. 0, or -1 + error. */
int store_insert_configs(store *st, const store_config *cfgs, int n);

#endif
