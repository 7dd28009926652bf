/* rys models: every known model, whether it is cached here, and where; the
 * --json form is for scripts (check.sh, notebooks) that must not parse a table.
 * Listing never hashes: "cached" means the file is there with the right size,
 * `rys pull NAME` is what verifies the sha256. */
#include "cli/cli.h"
#include "cli/models.h"
#include "base/util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cmd_models(int argc, char **argv) {
    bool as_json = false;
    const cli_opt opts[] = {CLI_JSON(&as_json, "one JSON array, for scripts"), CLI_END};
    const cli_spec spec = {"models", "[--json]", opts, NULL, NULL, NULL, false,
                           "Lists the known models: name, whether it is cached, size, path and what the file holds.\n"
                           "The cache is $RYS_CACHE_DIR/models (default ~/.cache/rys/models); fetch one with rys pull NAME."};
    cli_parse_or_exit(&spec, argc, argv);
    json_t *list = as_json ? json_array() : NULL;
    if (!as_json) printf("%-20s %-7s %9s  %s\n", "NAME", "CACHED", "SIZE_MB", "PATH / DESCRIPTION");
    for (int i = 0; i < models_count(); i++) {
        const known_model *km = models_get(i);
        char path[4096];
        if (!models_cached_path(km, path, sizeof path)) rys_die("%s", rys_lasterr());
        bool cached = models_is_cached(km);
        if (as_json) {
            json_array_append_new(list, json_pack("{s:s, s:b, s:I, s:s, s:s, s:s, s:i}", "name", km->name,
                                                  "cached", cached, "size", (json_int_t)km->size, "path", path,
                                                  "sha256", km->sha256, "description", km->description,
                                                  "parts", km->n_parts));
        } else {
            printf("%-20s %-7s %9.1f  %s\n%-38s  %s\n", km->name, cached ? "yes" : "no", km->size / 1e6, path, "",
                   km->description);
        }
    }
    if (as_json) {
        char *s = json_dumps(list, JSON_INDENT(2));
        puts(s);
        free(s);
        json_decref(list);
    }
    return 0;
}
