/* rys serve's request parsing: every prompt shape, the defaults, and each
 * malformed or mistyped body answered with its status and the field named. */
#include "testutil.h"
#include "serve/api.h"
#include "serve/server.h"
#include "base/util.h"

#include <string.h>

/* Parses a completion body that must be good. */
static void parse_ok(const char *body, api_request *rq) {
    api_error e;
    if (api_parse_completion(body, strlen(body), rq, &e)) fail_msg("'%s': %s", body, e.message);
}

/* A completion (or chat) body that must fail with status and param. */
static void parse_bad(bool chat, const char *body, int status, const char *param) {
    api_request rq;
    api_error e;
    int rc = chat ? api_parse_chat(body, strlen(body), &rq, &e) : api_parse_completion(body, strlen(body), &rq, &e);
    api_request_free(&rq);
    if (rc != -1) fail_msg("'%s' was accepted", body);
    assert_int_equal(e.status, status);
    if (strcmp(e.param, param)) fail_msg("'%s': param '%s', want '%s' (%s)", body, e.param, param, e.message);
    /* the error object has OpenAI's four fields */
    json_t *o = api_error_json(&e), *err = json_object_get(o, "error");
    assert_non_null(err);
    assert_int_equal(json_object_size(err), 4);
    assert_string_equal(json_string_value(json_object_get(err, "message")), e.message);
    json_decref(o);
}

static void test_prompt_shapes(void **s) {
    (void)s;
    api_request rq;
    parse_ok("{\"model\": \"m\", \"prompt\": \"hi\"}", &rq);
    assert_int_equal(rq.n_prompts, 1);
    assert_string_equal(rq.prompts[0].text, "hi");
    assert_int_equal(rq.max_tokens, 16);          /* OpenAI's legacy default */
    assert_int_equal(rq.logprobs, -1);
    assert_false(rq.echo);
    api_request_free(&rq);
    parse_ok("{\"model\": \"m\", \"prompt\": [\"a\", \"b\", \"c\"]}", &rq);
    assert_int_equal(rq.n_prompts, 3);
    assert_string_equal(rq.prompts[2].text, "c");
    api_request_free(&rq);
    parse_ok("{\"model\": \"m\", \"prompt\": [5, 6, 7], \"max_tokens\": 0, \"echo\": true, \"logprobs\": 1}", &rq);
    assert_int_equal(rq.n_prompts, 1);
    assert_null(rq.prompts[0].text);
    assert_int_equal(rq.prompts[0].n_ids, 3);
    assert_int_equal(rq.prompts[0].ids[2], 7);
    assert_int_equal(rq.max_tokens, 0);
    assert_true(rq.echo);
    assert_int_equal(rq.logprobs, 1);
    api_request_free(&rq);
    parse_ok("{\"model\": \"m\", \"prompt\": [[1, 2], [3]], \"stop\": [\"x\", \"yz\"], \"temperature\": 0,"
             " \"top_p\": 0.5, \"seed\": 7}", &rq);
    assert_int_equal(rq.n_prompts, 2);
    assert_int_equal(rq.prompts[1].n_ids, 1);
    assert_int_equal(rq.n_stop, 2);
    assert_string_equal(rq.stop[1], "yz");
    assert_true(rq.temperature == 0.0f && rq.top_p == 0.5f && rq.seed == 7);
    api_request_free(&rq);
    parse_ok("{\"model\": \"m\", \"prompt\": \"a\", \"stop\": \"\\n\", \"temperature\": null}", &rq);
    assert_int_equal(rq.n_stop, 1);
    assert_true(rq.temperature == 1.0f);          /* null leaves the default */
    api_request_free(&rq);
}

static void test_chat(void **s) {
    (void)s;
    api_request rq;
    api_error e;
    const char *body = "{\"model\": \"m@blocks:1,2\", \"messages\": [{\"role\": \"system\", \"content\": \"be brief\"},"
                       " {\"role\": \"user\", \"content\": \"hi\"}], \"stream\": true}";
    assert_int_equal(api_parse_chat(body, strlen(body), &rq, &e), 0);
    assert_int_equal(rq.n_messages, 2);
    assert_string_equal(rq.messages[1].role, "user");
    assert_string_equal(rq.messages[0].content, "be brief");
    assert_true(rq.stream);
    assert_int_equal(rq.max_tokens, -1);          /* chat: up to the context */
    assert_int_equal(rq.logprobs, -1);
    const char *spec;
    assert_int_equal(api_model_name_len(rq.model, &spec), 1);
    assert_string_equal(spec, "blocks:1,2");
    api_request_free(&rq);
    assert_int_equal(api_model_name_len("plain", &spec), 5);
    assert_null(spec);
    /* logprobs: a boolean, top_logprobs its k (0 when absent) */
    const char *lp = "{\"model\": \"m\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"logprobs\": true}";
    assert_int_equal(api_parse_chat(lp, strlen(lp), &rq, &e), 0);
    assert_int_equal(rq.logprobs, 0);
    api_request_free(&rq);
    const char *top = "{\"model\": \"m\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"logprobs\": true,"
                      " \"top_logprobs\": 5}";
    assert_int_equal(api_parse_chat(top, strlen(top), &rq, &e), 0);
    assert_int_equal(rq.logprobs, 5);
    api_request_free(&rq);
}

static void test_bad_bodies(void **s) {
    (void)s;
    parse_bad(false, "{\"model\": \"m\", \"prompt\": ", 400, "");
    parse_bad(false, "", 400, "");
    parse_bad(false, "[1]", 400, "");
    parse_bad(false, "{\"model\": \"m\", \"model\": \"n\", \"prompt\": \"a\"}", 400, "");
    parse_bad(false, "{\"prompt\": \"a\"}", 400, "model");
    parse_bad(false, "{\"model\": 3, \"prompt\": \"a\"}", 400, "model");
    parse_bad(false, "{\"model\": \"m\"}", 400, "prompt");
    parse_bad(false, "{\"model\": \"m\", \"prompt\": 5}", 400, "prompt");
    parse_bad(false, "{\"model\": \"m\", \"prompt\": []}", 400, "prompt");
    parse_bad(false, "{\"model\": \"m\", \"prompt\": [1, \"a\"]}", 400, "prompt");
    parse_bad(false, "{\"model\": \"m\", \"prompt\": [-1]}", 400, "prompt");
    parse_bad(false, "{\"model\": \"m\", \"prompt\": [[1], []]}", 400, "prompt");
    parse_bad(false, "{\"model\": \"m\", \"prompt\": [\"a\", 1.5]}", 400, "prompt");
    parse_bad(false, "{\"model\": \"m\", \"prompt\": \"a\", \"max_tokens\": \"8\"}", 400, "max_tokens");
    parse_bad(false, "{\"model\": \"m\", \"prompt\": \"a\", \"max_tokens\": -1}", 400, "max_tokens");
    parse_bad(false, "{\"model\": \"m\", \"prompt\": \"a\", \"temperature\": 3}", 400, "temperature");
    parse_bad(false, "{\"model\": \"m\", \"prompt\": \"a\", \"top_p\": \"x\"}", 400, "top_p");
    parse_bad(false, "{\"model\": \"m\", \"prompt\": \"a\", \"seed\": 1.5}", 400, "seed");
    parse_bad(false, "{\"model\": \"m\", \"prompt\": \"a\", \"n\": 2}", 400, "n");
    parse_bad(false, "{\"model\": \"m\", \"prompt\": \"a\", \"echo\": 1}", 400, "echo");
    parse_bad(false, "{\"model\": \"m\", \"prompt\": \"a\", \"logprobs\": 21}", 400, "logprobs");
    parse_bad(false, "{\"model\": \"m\", \"prompt\": \"a\", \"logprobs\": true}", 400, "logprobs");
    parse_bad(false, "{\"model\": \"m\", \"prompt\": \"a\", \"stop\": 3}", 400, "stop");
    parse_bad(false, "{\"model\": \"m\", \"prompt\": \"a\", \"stop\": [\"a\", 3]}", 400, "stop");
    parse_bad(false, "{\"model\": \"m\", \"prompt\": \"a\", \"stop\": [\"1\", \"2\", \"3\", \"4\", \"5\"]}", 400, "stop");
    parse_bad(false, "{\"model\": \"m\", \"prompt\": \"a\", \"stop\": \"\"}", 400, "stop");
    parse_bad(false, "{\"model\": \"m\", \"prompt\": \"a\", \"stream\": \"yes\"}", 400, "stream");
    parse_bad(true, "{\"model\": \"m\"}", 400, "messages");
    parse_bad(true, "{\"model\": \"m\", \"messages\": []}", 400, "messages");
    parse_bad(true, "{\"model\": \"m\", \"messages\": {}}", 400, "messages");
    parse_bad(true, "{\"model\": \"m\", \"messages\": [\"hi\"]}", 400, "messages");
    parse_bad(true, "{\"model\": \"m\", \"messages\": [{\"role\": \"user\"}]}", 400, "messages");
    parse_bad(true, "{\"model\": \"m\", \"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": 1, "
                    "\"content\": \"b\"}]}", 400, "messages");
    const char *msgs = "\"messages\": [{\"role\": \"user\", \"content\": \"a\"}]";
    char body[256];
    snprintf(body, sizeof body, "{\"model\": \"m\", %s, \"logprobs\": 1}", msgs);
    parse_bad(true, body, 400, "logprobs");
    snprintf(body, sizeof body, "{\"model\": \"m\", %s, \"logprobs\": true, \"top_logprobs\": 21}", msgs);
    parse_bad(true, body, 400, "top_logprobs");
    snprintf(body, sizeof body, "{\"model\": \"m\", %s, \"top_logprobs\": 2}", msgs);
    parse_bad(true, body, 400, "top_logprobs");
}

static void test_token_string(void **s) {
    (void)s;
    json_t *v = api_token_string(" caf\xc3\xa9", 6);
    assert_string_equal(json_string_value(v), " caf\xc3\xa9");
    json_decref(v);
    /* half a character: spelled as bytes */
    v = api_token_string("\xc3", 1);
    assert_string_equal(json_string_value(v), "bytes:\\xc3");
    json_decref(v);
}

static void test_path_specs(void **s) {
    (void)s;
    layer_path p;
    assert_int_equal(serve_path_from_spec("baseline", 4, &p), 0);
    assert_int_equal(p.n, 4);
    path_free(&p);
    assert_int_equal(serve_path_from_spec("blocks:1,3", 4, &p), 0);
    assert_int_equal(p.n, 6);
    path_free(&p);
    assert_int_equal(serve_path_from_spec("layers:0,1,1,2,3", 4, &p), 0);
    assert_int_equal(p.n, 5);
    path_free(&p);
    assert_int_equal(serve_path_from_spec("blocks:3,1", 4, &p), -1);
    assert_int_equal(serve_path_from_spec("nonsense", 4, &p), -1);
    assert_non_null(strstr(rys_lasterr(), "not a path spec"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prompt_shapes), cmocka_unit_test(test_chat), cmocka_unit_test(test_bad_bodies),
        cmocka_unit_test(test_token_string), cmocka_unit_test(test_path_specs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
