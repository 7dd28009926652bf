/* cli_scan: see cli_scan.h. */
#include "cli/cli_scan.h"
#include "scan/store.h"
#include "base/util.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void cli_scan_recorded(const char *db_path, char **probes, evalset_options *eo) {
    if (access(db_path, R_OK)) rys_die("%s: no such scan database (run rys scan MODEL --db %s first)", db_path, db_path);
    store *st = store_open_readonly(db_path);
    if (!st) rys_die("%s", rys_lasterr());
    char *settings;
    int has = store_get_settings(st, &settings);
    if (has < 0) rys_die("%s", rys_lasterr());
    if (!has) rys_die("%s: holds no scan (run rys scan MODEL --db %s first)", db_path, db_path);
    json_error_t jerr;
    json_t *o = json_loads(settings, 0, &jerr);
    json_t *np = json_object_get(o, "n_predict"), *sys = json_object_get(o, "math_system"), *nt = json_object_get(o, "no_think");
    if (!json_is_integer(np) || !json_is_string(sys) || !json_is_boolean(nt))
        rys_die("%s: the scan's settings are not readable (%s)", db_path, settings);
    eo->n_predict = (int)json_integer_value(np);
    eo->math_system = xstrdup(json_string_value(sys));
    eo->no_think = json_is_true(nt);
    json_decref(o);
    free(settings);
    store_probe_set *sets;
    int n;
    if (store_probe_sets(st, &sets, &n)) rys_die("%s", rys_lasterr());
    if (n == 0) rys_die("%s: the scan has no probe sets", db_path);
    size_t len = 1;
    for (int k = 0; k < n; k++) len += strlen(sets[k].path) + 8;
    char *list = xmalloc(len);
    list[0] = 0;
    for (int k = 0; k < n; k++) {
        /* a set read by logits was given as FILE:logit (evalset.h) */
        strcat(list, k ? "," : "");
        strcat(list, sets[k].path);
        if (!strcmp(sets[k].kind, "eq_logit")) strcat(list, ":logit");
    }
    store_probe_sets_free(sets, n);
    store_close(st);
    *probes = list;
}
