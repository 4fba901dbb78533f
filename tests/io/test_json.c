/* Tests of the strict JSON parser behind safetensors headers: good documents, every malformed
 * kind with its message, the nesting and size limits, huge numbers, out-of-memory paths. */
#include "test_util.h"
#include "io/json.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NODES 1000000

static fnet_ctx *ctx;

static int setup(void **state)
{
    (void)state;
    return fnet_ctx_create_reference(&ctx) == FNET_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    fnet_ctx_free(ctx);
    return 0;
}

static struct fnet_json_doc *parse_ok(const char *text)
{
    struct fnet_json_doc *doc = NULL;
    fnet_assert_ok(ctx, fnet_json_parse(ctx, "doc", text, strlen(text), MAX_NODES, &doc));
    assert_non_null(doc);
    return doc;
}

// Parse text of len bytes expecting FNET_ERR_FORMAT and a message containing `reason`.
static void check_parse_fails_n(const char *text, size_t len, const char *reason)
{
    struct fnet_json_doc *doc = (struct fnet_json_doc *)&doc; // must be reset to NULL
    fnet_status st = fnet_json_parse(ctx, "doc", text, len, MAX_NODES, &doc);
    if (st != FNET_ERR_FORMAT || strstr(fnet_ctx_last_error(ctx), reason) == NULL ||
        strstr(fnet_ctx_last_error(ctx), "doc: invalid JSON at byte") == NULL)
        fail_msg("'%.*s': status %d, message '%s', expected FORMAT with '%s'", (int)len, text,
                 (int)st, fnet_ctx_last_error(ctx), reason);
    assert_null(doc);
}

static void check_parse_fails(const char *text, const char *reason)
{
    check_parse_fails_n(text, strlen(text), reason);
}

static void test_json_parses_nested_object_in_document_order(void **state)
{
    (void)state;
    struct fnet_json_doc *doc =
        parse_ok(" {\"b\": [1, -2, 3.5, true, false, null], \"a\": {\"x\": \"y\"}, \"e\": {}, "
                 "\"f\": []}\n");
    const struct fnet_json *root = fnet_json_root(doc);
    assert_int_equal(root->type, FNET_JSON_OBJECT);
    assert_int_equal(root->len, 4);
    const char *order[] = {"b", "a", "e", "f"};
    int i = 0;
    for (const struct fnet_json *m = root->child; m != NULL; m = m->next, i++)
        assert_string_equal(m->key, order[i]);
    assert_int_equal(i, 4);

    const struct fnet_json *b = fnet_json_get(root, "b");
    assert_non_null(b);
    assert_int_equal(b->type, FNET_JSON_ARRAY);
    assert_int_equal(b->len, 6);
    const struct fnet_json *v = b->child;
    assert_int_equal(v->type, FNET_JSON_INT);
    assert_int_equal(v->integer, 1);
    v = v->next;
    assert_int_equal(v->type, FNET_JSON_INT);
    assert_int_equal(v->integer, -2);
    v = v->next;
    assert_int_equal(v->type, FNET_JSON_NUMBER);
    fnet_assert_close(v->number, 3.5, 0.0, 0.0);
    v = v->next;
    assert_int_equal(v->type, FNET_JSON_BOOL);
    assert_true(v->boolean);
    v = v->next;
    assert_int_equal(v->type, FNET_JSON_BOOL);
    assert_false(v->boolean);
    v = v->next;
    assert_int_equal(v->type, FNET_JSON_NULL);
    assert_null(v->next);
    assert_null(v->key); // array members have no key

    const struct fnet_json *x = fnet_json_get(fnet_json_get(root, "a"), "x");
    assert_non_null(x);
    assert_int_equal(x->type, FNET_JSON_STRING);
    assert_string_equal(x->str, "y");
    assert_int_equal(fnet_json_get(root, "e")->type, FNET_JSON_OBJECT);
    assert_int_equal(fnet_json_get(root, "e")->len, 0);
    assert_null(fnet_json_get(root, "e")->child);
    assert_int_equal(fnet_json_get(root, "f")->type, FNET_JSON_ARRAY);
    assert_int_equal(fnet_json_get(root, "f")->len, 0);
    assert_null(fnet_json_get(root, "missing"));
    assert_null(fnet_json_get(b, "x")); // not an object
    fnet_json_free(doc);
}

static void test_json_decodes_string_escapes_and_utf8(void **state)
{
    (void)state;
    struct fnet_json_doc *doc =
        parse_ok("[\"q\\\"b\\\\s\\/\\b\\f\\n\\r\\t\", \"\\u00e9\\u20AC\", \"\\ud83d\\ude00\", "
                 "\"a\\u0000b\", \"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\", \"\"]");
    const struct fnet_json *v = fnet_json_root(doc)->child;
    assert_string_equal(v->str, "q\"b\\s/\b\f\n\r\t");
    assert_int_equal(v->len, 11);
    v = v->next;
    assert_string_equal(v->str, "\xc3\xa9\xe2\x82\xac"); // é €
    v = v->next;
    assert_string_equal(v->str, "\xf0\x9f\x98\x80"); // U+1F600 from a surrogate pair
    v = v->next;
    assert_int_equal(v->len, 3);
    assert_memory_equal(v->str, "a\0b", 4);
    v = v->next;
    assert_string_equal(v->str, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    v = v->next;
    assert_int_equal(v->len, 0);
    assert_string_equal(v->str, "");
    fnet_json_free(doc);
}

static void test_json_accepts_scalars_at_top_level(void **state)
{
    (void)state;
    struct fnet_json_doc *doc = parse_ok("  42 ");
    assert_int_equal(fnet_json_root(doc)->type, FNET_JSON_INT);
    assert_int_equal(fnet_json_root(doc)->integer, 42);
    fnet_json_free(doc);
    doc = parse_ok("\"s\"");
    assert_string_equal(fnet_json_root(doc)->str, "s");
    fnet_json_free(doc);
    doc = parse_ok("-0");
    assert_int_equal(fnet_json_root(doc)->type, FNET_JSON_INT);
    assert_int_equal(fnet_json_root(doc)->integer, 0);
    fnet_json_free(doc);
    doc = parse_ok("-1.25e+2");
    assert_int_equal(fnet_json_root(doc)->type, FNET_JSON_NUMBER);
    fnet_assert_close(fnet_json_root(doc)->number, -125.0, 0.0, 0.0);
    fnet_json_free(doc);
    doc = parse_ok("1E2");
    assert_int_equal(fnet_json_root(doc)->type, FNET_JSON_NUMBER); // an exponent is not an integer
    fnet_assert_close(fnet_json_root(doc)->number, 100.0, 0.0, 0.0);
    fnet_json_free(doc);
}

static void test_json_keeps_int64_exact_and_demotes_huge_numbers(void **state)
{
    (void)state;
    struct fnet_json_doc *doc =
        parse_ok("[9223372036854775807, -9223372036854775808, 9223372036854775808, "
                 "-9223372036854775809, 123456789012345678901234567890, 1e400, -1e400, 1e-400]");
    const struct fnet_json *v = fnet_json_root(doc)->child;
    assert_int_equal(v->type, FNET_JSON_INT);
    assert_true(v->integer == INT64_MAX);
    v = v->next;
    assert_int_equal(v->type, FNET_JSON_INT);
    assert_true(v->integer == INT64_MIN);
    v = v->next;
    assert_int_equal(v->type, FNET_JSON_NUMBER);
    fnet_assert_close(v->number, 9223372036854775808.0, 1e-15, 0.0);
    v = v->next;
    assert_int_equal(v->type, FNET_JSON_NUMBER);
    fnet_assert_close(v->number, -9223372036854775809.0, 1e-15, 0.0);
    v = v->next;
    assert_int_equal(v->type, FNET_JSON_NUMBER);
    fnet_assert_close(v->number, 1.2345678901234568e29, 1e-15, 0.0);
    v = v->next;
    assert_int_equal(v->type, FNET_JSON_NUMBER);
    assert_true(isinf(v->number) && v->number > 0);
    v = v->next;
    assert_true(isinf(v->number) && v->number < 0);
    v = v->next;
    assert_int_equal(v->type, FNET_JSON_NUMBER);
    assert_true(v->number == 0.0);
    fnet_json_free(doc);

    // a number token beyond 1023 characters is refused rather than copied without bound
    char big[1100];
    memset(big, '7', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    check_parse_fails(big, "number longer than 1023 characters");
}

static void test_json_rejects_every_malformed_kind(void **state)
{
    (void)state;
    check_parse_fails("", "unexpected end of input");
    check_parse_fails(" \n\t ", "unexpected end of input");
    check_parse_fails("{", "expected a string as object key");
    check_parse_fails("[", "unexpected end of input");
    check_parse_fails("[1", "expected ',' or ']' in array");
    check_parse_fails("[1,]", "unexpected character");
    check_parse_fails("[1 2]", "expected ',' or ']' in array");
    check_parse_fails("{\"a\":1,}", "expected a string as object key");
    check_parse_fails("{\"a\" 1}", "expected ':' after object key");
    check_parse_fails("{\"a\":1 \"b\":2}", "expected ',' or '}' in object");
    check_parse_fails("{1:2}", "expected a string as object key");
    check_parse_fails("{\"a\"}", "expected ':' after object key");
    check_parse_fails("{\"a\":}", "unexpected character");
    check_parse_fails("[1]]", "trailing characters");
    check_parse_fails("{} x", "trailing characters");
    check_parse_fails("1 2", "trailing characters");
    check_parse_fails("01", "leading zero");
    check_parse_fails("-01", "leading zero");
    check_parse_fails("1.", "expected a digit after the decimal point");
    check_parse_fails(".5", "unexpected character");
    check_parse_fails("-", "expected a digit");
    check_parse_fails("-a", "expected a digit");
    check_parse_fails("1e", "expected a digit in the exponent");
    check_parse_fails("1e+", "expected a digit in the exponent");
    check_parse_fails("+1", "unexpected character");
    check_parse_fails("NaN", "unexpected character");
    check_parse_fails("Infinity", "unexpected character");
    check_parse_fails("tru", "unexpected character");
    check_parse_fails("nul", "unexpected character");
    check_parse_fails("falsey", "trailing characters");
    check_parse_fails("'a'", "unexpected character");
    check_parse_fails("\"abc", "unterminated string");
    check_parse_fails("\"a\x01\"", "control character in string");
    check_parse_fails("\"a\nb\"", "control character in string");
    check_parse_fails("\"\\x\"", "invalid escape sequence");
    check_parse_fails("\"\\", "unterminated escape sequence");
    check_parse_fails("\"\\u12\"", "four hex digits");
    check_parse_fails("\"\\u12g4\"", "four hex digits");
    check_parse_fails("\"\\ud800\"", "high surrogate");
    check_parse_fails("\"\\ud800\\u0041\"", "high surrogate");
    check_parse_fails("\"\\udc00\"", "unpaired low surrogate");
    check_parse_fails("\"\xff\"", "invalid UTF-8");
    check_parse_fails("\"\xc0\xaf\"", "invalid UTF-8");         // overlong '/'
    check_parse_fails("\"\xed\xa0\x80\"", "invalid UTF-8");     // a surrogate encoded in UTF-8
    check_parse_fails("\"\xf4\x90\x80\x80\"", "invalid UTF-8"); // beyond U+10FFFF
    check_parse_fails("\"\xe2\x82\"", "invalid UTF-8");         // truncated sequence
    check_parse_fails("\xef\xbb\xbf{}", "unexpected character"); // byte-order mark
    check_parse_fails("{\"a\":1,\"b\":2,\"a\":3}", "duplicate key 'a'");
    check_parse_fails("[{\"k\":[{\"z\":1,\"z\":1}]}]", "duplicate key 'z'");
    check_parse_fails_n("[1,\0002]", 6, "unexpected character"); // a NUL byte inside the text
    check_parse_fails_n("{}\0", 3, "trailing characters");
}

static void test_json_error_names_the_byte_offset(void **state)
{
    (void)state;
    check_parse_fails("[1,,2]", "at byte 3: unexpected character");
    check_parse_fails("{\"ab\":1,\"ab\":2}", "at byte 13: duplicate key 'ab'");
}

// Build "[[[...]]]" (depth arrays) or with a trailing '0' inside.
static char *nested(int depth)
{
    char *s = malloc((size_t)depth * 2 + 2);
    assert_non_null(s);
    memset(s, '[', (size_t)depth);
    s[depth] = '0';
    memset(s + depth + 1, ']', (size_t)depth);
    s[2 * depth + 1] = '\0';
    return s;
}

static void test_json_limits_nesting_depth_without_recursion(void **state)
{
    (void)state;
    char *ok = nested(FNET_JSON_MAX_DEPTH);
    struct fnet_json_doc *doc = parse_ok(ok);
    const struct fnet_json *v = fnet_json_root(doc);
    for (int i = 0; i < FNET_JSON_MAX_DEPTH; i++) {
        assert_int_equal(v->type, FNET_JSON_ARRAY);
        v = v->child;
    }
    assert_int_equal(v->type, FNET_JSON_INT);
    fnet_json_free(doc);
    free(ok);

    char *deep = nested(FNET_JSON_MAX_DEPTH + 1);
    check_parse_fails(deep, "nesting deeper than 64 levels");
    free(deep);

    // a million unclosed brackets: refused at the limit, no stack growth
    size_t n = 1000000;
    char *huge = malloc(n + 1);
    assert_non_null(huge);
    memset(huge, '[', n);
    huge[n] = '\0';
    check_parse_fails(huge, "at byte 64: nesting deeper than 64 levels");
    memset(huge, '{', n);
    check_parse_fails(huge, "expected a string as object key");
    free(huge);
}

static void test_json_limits_number_of_values(void **state)
{
    (void)state;
    struct fnet_json_doc *doc = NULL;
    assert_int_equal(fnet_json_parse(ctx, "doc", "[1,2,3]", 7, 3, &doc), FNET_ERR_FORMAT);
    assert_non_null(strstr(fnet_ctx_last_error(ctx), "too many values"));
    assert_null(doc);
    fnet_assert_ok(ctx, fnet_json_parse(ctx, "doc", "[1,2,3]", 7, 4, &doc));
    assert_int_equal(fnet_json_root(doc)->len, 3);
    fnet_json_free(doc);
}

static void test_json_reports_out_of_memory_for_each_allocation(void **state)
{
    (void)state;
    const char *text = "{\"a\":[1,2],\"b\":{\"c\":\"d\"},\"e\":\"f\"}";
    int failures = 0;
    for (long k = 1;; k++) {
        struct fnet_json_doc *doc = NULL;
        fnet_debug_fail_alloc(k);
        fnet_status st = fnet_json_parse(ctx, "doc", text, strlen(text), MAX_NODES, &doc);
        fnet_debug_fail_alloc(0);
        if (st == FNET_OK) {
            assert_string_equal(fnet_json_get(fnet_json_root(doc), "e")->str, "f");
            fnet_json_free(doc);
            break;
        }
        assert_int_equal(st, FNET_ERR_OUT_OF_MEMORY);
        assert_null(doc);
        failures++;
        assert_true(k < 100);
    }
    assert_int_equal(failures, 4); // doc, values, strings, duplicate-key index
}

static void test_json_utf8_validator(void **state)
{
    (void)state;
    assert_true(fnet_json_utf8_valid("", 0));
    assert_true(fnet_json_utf8_valid("dense:64,relu", 13));
    assert_true(fnet_json_utf8_valid("\xc3\xa9\xf0\x9f\x98\x80", 6));
    assert_false(fnet_json_utf8_valid("\xc3", 1));
    assert_false(fnet_json_utf8_valid("\x80", 1));
    assert_false(fnet_json_utf8_valid("\xe0\x80\x80", 3)); // overlong NUL
    assert_string_equal(fnet_json_type_name(FNET_JSON_INT), "integer");
    assert_string_equal(fnet_json_type_name(FNET_JSON_OBJECT), "object");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_parses_nested_object_in_document_order),
        cmocka_unit_test(test_json_decodes_string_escapes_and_utf8),
        cmocka_unit_test(test_json_accepts_scalars_at_top_level),
        cmocka_unit_test(test_json_keeps_int64_exact_and_demotes_huge_numbers),
        cmocka_unit_test(test_json_rejects_every_malformed_kind),
        cmocka_unit_test(test_json_error_names_the_byte_offset),
        cmocka_unit_test(test_json_limits_nesting_depth_without_recursion),
        cmocka_unit_test(test_json_limits_number_of_values),
        cmocka_unit_test(test_json_reports_out_of_memory_for_each_allocation),
        cmocka_unit_test(test_json_utf8_validator),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
