/* The strict JSON reader: JSONTestSuite-style accept/reject cases, exact
 * error offsets, every truncation, limits, and the tree and number helpers. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "test.h"

#define S(lit) lit, sizeof(lit) - 1 /* a literal with its length: some hold NUL bytes */

struct sample {
    const char *text;
    size_t len;
};

struct parsed {
    void *arena;
    struct json_doc doc;
    struct json_error err;
    int rc;
};

static struct parsed parse_depth(const char *text, size_t len, unsigned depth)
{
    size_t need = json_arena_size(len, depth);
    struct parsed p = {.arena = malloc(need ? need : 1)};

    p.rc = json_parse(text, len, depth, p.arena, need, &p.doc, &p.err);
    return p;
}

static struct parsed parse(const char *text, size_t len)
{
    return parse_depth(text, len, 128);
}

static bool accepts(const char *text, size_t len)
{
    struct parsed p = parse(text, len);

    free(p.arena);
    return p.rc == 0;
}

/* The error offset, or -1 when the text parses. */
static long error_offset(const char *text, size_t len)
{
    struct parsed p = parse(text, len);

    free(p.arena);
    return p.rc == 0 ? -1 : (long)p.err.offset;
}

/* JSONTestSuite y_ files (contents inline). */
static const struct sample accepted[] = {
    {S("[[]   ]")},
    {S("[]")},
    {S("[\"\"]")},
    {S("[false]")},
    {S("[null, 1, \"1\", {}]")},
    {S("[null]")},
    {S("[1\n]")},
    {S(" [1]")},
    {S("[1,null,null,null,2]")},
    {S("[2] ")},
    {S("[123e65]")},
    {S("[0e+1]")},
    {S("[0e1]")},
    {S("[ 4]")},
    {S("[-0.000000000000000000000000000000000000000000000000000000000000000000000000000001]")},
    {S("[20e1]")},
    {S("[-0]")},
    {S("[-123]")},
    {S("[-1]")},
    {S("[1E22]")},
    {S("[1E-2]")},
    {S("[1E+2]")},
    {S("[123e45]")},
    {S("[123.456e78]")},
    {S("[1e-2]")},
    {S("[1e+2]")},
    {S("[123]")},
    {S("[123.456789]")},
    {S("[123e-10000000]")},
    {S("[-237462374673276894279832749832423479823246327846]")},
    {S("{\"asd\":\"sdf\", \"dfg\":\"fgh\"}")},
    {S("{\"asd\":\"sdf\"}")},
    {S("{}")},
    {S("{\"\":0}")},
    {S("{\"foo\\u0000bar\": 42}")},
    {S("{ \"min\": -1.0e+28, \"max\": 1.0e+28 }")},
    {S("{\"a\":[]}")},
    {S("{\"title\":\"\\u041f\\u043e\\u043b\\u0442\\u043e\\u0440\\u0430 \"}")},
    {S("{\n\"a\": \"b\"\n}")},
    {S("[\"\\u0060\\u012a\\u12AB\"]")},
    {S("[\"\\uD801\\udc37\"]")},
    {S("[\"\\ud83d\\ude39\\ud83d\\udc8d\"]")},
    {S("[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"]")},
    {S("[\"\\\\u0000\"]")},
    {S("[\"\\\"\"]")},
    {S("[\"a/*b*/c/*d//e\"]")},
    {S("[\"\\\\a\"]")},
    {S("[\"\\\\n\"]")},
    {S("[\"\\u0012\"]")},
    {S("[\"\\uFFFF\"]")},
    {S("[\"asd\"]")},
    {S("[ \"asd\"]")},
    {S("[\"\\uDBFF\\uDFFF\"]")},
    {S("[\"new\\u00A0line\"]")},
    {S("[\"\xf4\x8f\xbf\xbf\"]")},
    {S("[\"\xef\xbf\xbf\"]")},
    {S("[\"\\u0000\"]")},
    {S("[\"\\u002c\"]")},
    {S("[\"\xcf\x80\"]")},
    {S("[\"\xf0\x9b\xbf\xbf\"]")},
    {S("[\"asd \"]")},
    {S("\" \"")},
    {S("[\"\\uD834\\uDd1e\"]")},
    {S("[\"\\u0821\"]")},
    {S("[\"\\u0123\"]")},
    {S("[\"\xe2\x80\xa8\"]")},
    {S("[\"\xe2\x80\xa9\"]")},
    {S("[\"\\u0061\\u30af\\u30EA\\u30b9\"]")},
    {S("[\"new\\u000Aline\"]")},
    {S("[\"\x7f\"]")},
    {S("[\"\\uA66D\"]")},
    {S("[\"\\u005C\"]")},
    {S("[\"\xe2\x8d\x82\xe3\x88\xb4\xe2\x8d\x82\"]")},
    {S("[\"\\uDBFF\\uDFFE\"]")},
    {S("[\"\\uD83F\\uDFFE\"]")},
    {S("[\"\\u200B\"]")},
    {S("[\"\\u2064\"]")},
    {S("[\"\\uFDD0\"]")},
    {S("[\"\\uFFFE\"]")},
    {S("[\"\\u0022\"]")},
    {S("[\"\xe2\x82\xac\xf0\x9d\x84\x9e\"]")},
    {S("[\"a\x7f"
       "a\"]")},
    {S("false")},
    {S("42")},
    {S("-0.1")},
    {S("null")},
    {S("\"asd\"")},
    {S("true")},
    {S("\"\"")},
    {S("[\"a\"]\n")},
    {S("[true]")},
    {S(" [] ")},
};

/* JSONTestSuite n_ files, plus i_ files we reject and UTF-8 edge cases. */
static const struct sample rejected[] = {
    {S("[1 true]")},
    {S("[a\xe5]")},
    {S("[\"\": 1]")},
    {S("[\"\"],")},
    {S("[,1]")},
    {S("[1,,2]")},
    {S("[\"x\",,]")},
    {S("[\"x\"]]")},
    {S("[\"\",]")},
    {S("[\"x\"")},
    {S("[x")},
    {S("[3[4]]")},
    {S("[\xff]")},
    {S("[1:2]")},
    {S("[,]")},
    {S("[-]")},
    {S("[   , \"\"]")},
    {S("[\"a\",\n4\n,1,")},
    {S("[1,]")},
    {S("[1,,]")},
    {S("[\"\x0b"
       "a\"\\f]")},
    {S("[*]")},
    {S("[\"\"")},
    {S("[1,")},
    {S("[1,\n1\n,1")},
    {S("[{}")},
    {S("[fals]")},
    {S("[nul]")},
    {S("[tru]")},
    {S("123\0")},
    {S("[++1234]")},
    {S("[+1]")},
    {S("[+Inf]")},
    {S("[-01]")},
    {S("[-1.0.]")},
    {S("[-2.]")},
    {S("[-NaN]")},
    {S("[.-1]")},
    {S("[.2e-3]")},
    {S("[0.1.2]")},
    {S("[0.3e+]")},
    {S("[0.3e]")},
    {S("[0.e1]")},
    {S("[0E+]")},
    {S("[0E]")},
    {S("[0e+]")},
    {S("[0e]")},
    {S("[1.0e+]")},
    {S("[1.0e-]")},
    {S("[1.0e]")},
    {S("[1 000.0]")},
    {S("[1eE2]")},
    {S("[2.e+3]")},
    {S("[2.e-3]")},
    {S("[2.e3]")},
    {S("[9.e+]")},
    {S("[Inf]")},
    {S("[NaN]")},
    {S("[\xef\xbc\x91]")},
    {S("[1+2]")},
    {S("[0x1]")},
    {S("[0x42]")},
    {S("[Infinity]")},
    {S("[0e+-1]")},
    {S("[-123.123foo]")},
    {S("[123\xe5]")},
    {S("[1e1\xe5]")},
    {S("[0\xe5]")},
    {S("[-Infinity]")},
    {S("[-foo]")},
    {S("[- 1]")},
    {S("[-012]")},
    {S("[-.123]")},
    {S("[-1x]")},
    {S("[1ea]")},
    {S("[1e\xe5]")},
    {S("[1.]")},
    {S("[.123]")},
    {S("[1.2a-3]")},
    {S("[1.8011670033376514H-308]")},
    {S("[012]")},
    {S("[\"x\", truth]")},
    {S("{[: \"x\"}\n")},
    {S("{\"x\", null}")},
    {S("{\"x\"::\"b\"}")},
    {S("{\xf0\x9f\x87\xa8\xf0\x9f\x87\xad}")},
    {S("{\"a\":\"a\" 123}")},
    {S("{key: 'value'}")},
    {S("{\"a\" b}")},
    {S("{:\"b\"}")},
    {S("{\"a\" \"b\"}")},
    {S("{\"a\":")},
    {S("{\"a\"")},
    {S("{1:1}")},
    {S("{9999E9999:1}")},
    {S("{null:null,null:null}")},
    {S("{\"id\":0,,,,,}")},
    {S("{'a':0}")},
    {S("{\"id\":0,}")},
    {S("{\"a\":\"b\"}/**/")},
    {S("{\"a\":\"b\"}/**//")},
    {S("{\"a\":\"b\"}//")},
    {S("{\"a\":\"b\",,\"c\":\"d\"}")},
    {S("{a: \"b\"}")},
    {S("{\"a\":\"a")},
    {S("{ \"foo\" : \"bar\", \"a\" }")},
    {S("{\"a\":\"b\"}#")},
    {S(" ")},
    {S("[\"\\uD800\\\"]")},
    {S("[\"\\uD800\\u\"]")},
    {S("[\"\\uD800\\u1\"]")},
    {S("[\"\\uD800\\u1x\"]")},
    {S("[\xc3\xa9]")},
    {S("[\"\\\0\"]")},
    {S("[\"\\x00\"]")},
    {S("[\"\\\\\\\"]")},
    {S("[\"\\\t\"]")},
    {S("[\"\\\xf0\x9f\x8c\x80\"]")},
    {S("[\"\\\"]")},
    {S("[\"\\u00A\"]")},
    {S("[\"\\uD834\\uDd\"]")},
    {S("[\"\\uD800\\uD800\\x\"]")},
    {S("[\"\\u\xe5\"]")},
    {S("[\"\\a\"]")},
    {S("[\"\\uqqqq\"]")},
    {S("[\"\\\xe5\"]")},
    {S("[\\u0020\"asd\"]")},
    {S("[\\n]")},
    {S("\"")},
    {S("['single quote']")},
    {S("abc")},
    {S("[\"\\")},
    {S("[\"a\0a\"]")},
    {S("[\"new\nline\"]")},
    {S("[\"\t\"]")},
    {S("\"\\UA66D\"")},
    {S("\"\"x")},
    {S("<.>")},
    {S("[<null>]")},
    {S("[1]x")},
    {S("[1]]")},
    {S("[\"asd]")},
    {S("a\xc3\xa5")},
    {S("[True]")},
    {S("1]")},
    {S("{\"x\": true,")},
    {S("[][]")},
    {S("]")},
    {S("\xef\xbb{}")},
    {S("\xe5")},
    {S("[")},
    {S("")},
    {S("[\0]")},
    {S("2@")},
    {S("{}}")},
    {S("{\"\":")},
    {S("{\"a\":/*comment*/\"b\"}")},
    {S("{\"a\": true} \"x\"")},
    {S("['")},
    {S("[,")},
    {S("[{")},
    {S("[\"a")},
    {S("[\"a\"")},
    {S("{")},
    {S("{]")},
    {S("{,")},
    {S("{[")},
    {S("{\"a")},
    {S("{'a'")},
    {S("[\"\\{[\"\\{[\"\\{[\"\\{")},
    {S("\xe9")},
    {S("*")},
    {S("{\"a\":\"b\"}#{}")},
    {S("[\xe2\x81\xa0]")},
    {S("[\\u000A\"\"]")},
    {S("[1")},
    {S("[ false, nul")},
    {S("[ true, fals")},
    {S("[ false, tru")},
    {S("{\"asd\":\"asd\"")},
    {S("\xc3\xa5")},
    {S("[\f]")},
    /* i_ files we reject */
    {S("\xef\xbb\xbf{}")},
    {S("[\"\\uDADA\"]")},
    {S("[\"\\uDd1e\\uD834\"]")},
    {S("[1e9999999999]")},
    {S("{\"a\":1,\"a\":1}")},
    {S("{\"a\":1,\"b\":2,\"a\":3}")},
    /* UTF-8: overlong, UTF-8-encoded surrogates, beyond U+10FFFF, truncated, stray */
    {S("[\"\xc0\xaf\"]")},
    {S("[\"\xc1\xbf\"]")},
    {S("[\"\xe0\x80\xaf\"]")},
    {S("[\"\xe0\x9f\xbf\"]")},
    {S("[\"\xf0\x80\x80\xaf\"]")},
    {S("[\"\xf0\x8f\xbf\xbf\"]")},
    {S("[\"\xed\xa0\x80\"]")},
    {S("[\"\xed\xbf\xbf\"]")},
    {S("[\"\xed\xa0\xbd\xed\xb2\xa9\"]")},
    {S("[\"\xf4\x90\x80\x80\"]")},
    {S("[\"\xf5\x80\x80\x80\"]")},
    {S("[\"\xf8\x88\x80\x80\x80\"]")},
    {S("[\"\xfe\"]")},
    {S("[\"\xe2\x82\"]")},
    {S("[\"\xe2\x82x\"]")},
    {S("[\"\xf0\x9f\x98\"]")},
    {S("[\"\x80\"]")},
    {S("[\"\xbf\"]")},
};

static void test_accepted(void)
{
    for (size_t i = 0; i < sizeof accepted / sizeof accepted[0]; i++) {
        if (!accepts(accepted[i].text, accepted[i].len)) {
            fprintf(stderr, "rejected y_ case %zu: %.*s\n", i, (int)accepted[i].len,
                    accepted[i].text);
            CHECK(false);
        }
    }
}

static void test_rejected(void)
{
    for (size_t i = 0; i < sizeof rejected / sizeof rejected[0]; i++) {
        long at = error_offset(rejected[i].text, rejected[i].len);
        if (at < 0 || (size_t)at > rejected[i].len) {
            fprintf(stderr, "n_ case %zu: offset %ld: %.*s\n", i, at, (int)rejected[i].len,
                    rejected[i].text);
            CHECK(false);
        }
    }
}

static void expect_error(const char *text, size_t len, size_t offset, const char *message)
{
    struct parsed p = parse(text, len);

    CHECK_INT(p.rc, -1);
    if (p.rc == -1) {
        CHECK_INT(p.err.offset, offset);
        CHECK_STR(p.err.message, message);
    }
    free(p.arena);
}

static void test_error_offsets(void)
{
    expect_error(S("[1,2,]"), 5, "expected a value");
    expect_error(S("{\"a\":1,}"), 7, "trailing comma");
    expect_error(S("[NaN]"), 1, "unexpected character");
    expect_error(S("[-Infinity]"), 2, "expected a digit");
    expect_error(S("[01]"), 1, "leading zero in number");
    expect_error(S("[-00]"), 2, "leading zero in number");
    expect_error(S("[1.]"), 3, "expected a digit");
    expect_error(S("[1e+]"), 4, "expected a digit");
    expect_error(S("[\"a\xc0\xafz\"]"), 3, "invalid UTF-8");
    expect_error(S("[\"a\xed\xa0\x80\"]"), 3, "invalid UTF-8");
    expect_error(S("[\"a\xf4\x90\x80\x80\"]"), 3, "invalid UTF-8");
    expect_error(S("[\"ab\\ud800\"]"), 4, "lone high surrogate escape");
    expect_error(S("[\"ab\\ud800\\u0041\"]"), 4, "lone high surrogate escape");
    expect_error(S("[\"\\udc00\"]"), 2, "lone low surrogate escape");
    expect_error(S("[\"a\nb\"]"), 3, "control character in string");
    expect_error(S("[\"\\q\"]"), 3, "invalid escape");
    expect_error(S("[\"\\u12G4\"]"), 6, "invalid \\u escape");
    expect_error(S("{\"b\":1,\"a\":2,\"b\":3}"), 13, "duplicate object key");
    expect_error(S("{\"a\":1} x"), 8, "unexpected data after the document");
    expect_error(S("[1 2]"), 3, "expected ',' or ']'");
    expect_error(S("{\"a\" 1}"), 5, "expected ':'");
    expect_error(S("{1:2}"), 1, "expected a string key");
    expect_error(S("[tru"), 4, "unexpected end of input");
    expect_error(S("[trUe]"), 3, "invalid literal");
    expect_error(S(""), 0, "unexpected end of input");
    expect_error(S("\xef\xbb\xbf[]"), 0, "byte order mark not allowed");
    expect_error(S("[1e1234567890]"), 3, "number exponent out of range");
}

static void test_depth(void)
{
    char deep[300];
    struct parsed p;

    memset(deep, '[', 150);
    memset(deep + 150, ']', 150);
    p = parse_depth(deep, 300, 150);
    CHECK_INT(p.rc, 0);
    free(p.arena);
    p = parse_depth(deep, 300, 149);
    CHECK_INT(p.rc, -1);
    CHECK_INT(p.err.offset, 149);
    CHECK_STR(p.err.message, "nesting too deep");
    free(p.arena);
    p = parse_depth("{\"a\":{\"b\":1}}", 13, 1);
    CHECK_INT(p.rc, -1);
    CHECK_INT(p.err.offset, 5);
    free(p.arena);
    /* Containers left open cost values beyond what closed ones could:
     * found by the fuzzer. */
    memset(deep, '[', 300);
    for (size_t len = 1; len <= 300; len++) {
        p = parse_depth(deep, len, JSON_DEPTH_LIMIT);
        CHECK_INT(p.rc, -1);
        CHECK_INT(p.err.offset, len);
        CHECK_STR(p.err.message, "unexpected end of input");
        free(p.arena);
        deep[len - 1] = '\x01';
        p = parse_depth(deep, len, JSON_DEPTH_LIMIT);
        CHECK_INT(p.err.offset, len - 1);
        CHECK_STR(p.err.message, "unexpected character");
        free(p.arena);
        deep[len - 1] = '[';
    }
    p = parse_depth("[]", 2, 0);
    CHECK_INT(p.rc, -1);
    free(p.arena);
    p = parse_depth("[]", 2, JSON_DEPTH_LIMIT + 1);
    CHECK_INT(p.rc, -1);
    free(p.arena);
}

static void test_arena_bounds(void)
{
    const char *text = "[1,2,3,{\"a\":\"\\u00e9\"}]";
    size_t len = strlen(text), need = json_arena_size(len, 8);
    char *arena = malloc(need);
    struct json_doc doc;
    struct json_error err;

    CHECK_INT(json_parse(text, len, 8, arena, need - 1, &doc, &err), -1);
    CHECK_STR(err.message, "arena too small");
    CHECK_INT(json_parse(text, len, 8, arena, need, &doc, &err), 0);
    CHECK_INT(json_parse(text, (size_t)JSON_TEXT_LIMIT + 1, 8, arena, need, &doc, &err), -1);
    CHECK_STR(err.message, "document too large");
    free(arena);

    /* The densest documents fit in json_arena_size exactly. */
    char dense[4001];
    for (size_t i = 0; i < 4001; i++)
        dense[i] = i % 2 ? '0' : ',';
    dense[0] = '[';
    dense[4000] = ']';
    struct parsed p = parse(dense, sizeof dense);
    CHECK_INT(p.rc, 0);
    CHECK_INT(p.doc.root->len, 2000);
    CHECK_INT(p.doc.count, 2001);
    free(p.arena);
    char empties[4000]; /* [[],[],...,[]] */
    empties[0] = '[';
    for (size_t i = 1; i < 3999; i++)
        empties[i] = "[],"[(i - 1) % 3];
    empties[3999] = ']';
    p = parse(empties, sizeof empties);
    CHECK_INT(p.rc, 0);
    CHECK_INT(p.doc.root->len, 1333);
    free(p.arena);
}

/* Every proper prefix of a container document is incomplete. */
static void test_truncations(void)
{
    static const char *const docs[] = {
        ("{\"a\":[1,-2.5e+3,\"x\\u00e9\\ud83d\\ude00\xc3\xa9\",true,false,null,{}],"
         "\"b\":{\"c\":[]}}"),
        "[0,1e5,-0.25,\"\\\"\\\\\\/\\b\\f\\n\\r\\t\",[[[]]],{\"\":\"\"}]",
        "{ \"key\" : [ 123 , \"\xf0\x9f\x98\x80\" ] , \"other\" : null }",
    };

    for (size_t d = 0; d < sizeof docs / sizeof docs[0]; d++) {
        size_t len = strlen(docs[d]);
        CHECK(accepts(docs[d], len));
        for (size_t cut = 0; cut < len; cut++) {
            long at = error_offset(docs[d], cut);
            if (at < 0 || (size_t)at > cut) {
                fprintf(stderr, "doc %zu cut at %zu: offset %ld\n", d, cut, at);
                CHECK(false);
            }
        }
    }
}

static void test_tree(void)
{
    const char *text = "{\"b\":[1,{\"x\":null}],\"a\":\"h\\u00e9\",\"c\":true}";
    struct parsed p = parse(text, strlen(text));
    const struct json_value *root = p.doc.root, *k, *b;

    CHECK_INT(p.rc, 0);
    CHECK_INT(root->type, JSON_OBJECT);
    CHECK_INT(root->len, 3);
    CHECK_INT(root->size, p.doc.count);
    k = json_first(root);
    CHECK(k->type == JSON_STRING && k->len == 1 && k->str[0] == 'b');
    b = k + 1;
    CHECK_INT(b->type, JSON_ARRAY);
    CHECK_INT(b->len, 2);
    CHECK_INT(json_next(json_first(b))->type, JSON_OBJECT);
    k = json_next(b);
    CHECK(k->len == 1 && k->str[0] == 'a');
    CHECK(k[1].len == 3 && memcmp(k[1].str, "h\xc3\xa9", 3) == 0);
    CHECK_INT(json_utf8_count(k[1].str, k[1].len), 2);
    CHECK(json_object_get(root, "c", 1) && json_object_get(root, "c", 1)->type == JSON_TRUE);
    CHECK(json_object_get(root, "a", 1) == k + 1);
    CHECK(json_object_get(root, "d", 1) == NULL);
    CHECK(json_object_get(root, "", 0) == NULL);
    CHECK_INT(root[root->members[0]].str[0], 'a');
    CHECK_INT(root[root->members[2]].str[0], 'c');
    CHECK_INT(b->pos, 5);
    free(p.arena);

    p = parse("\"a\\u0000b\"", 10);
    CHECK(p.doc.root->len == 3 && p.doc.root->str[1] == '\0');
    free(p.arena);
}

static bool equal(const char *a, const char *b)
{
    struct parsed x = parse(a, strlen(a)), y = parse(b, strlen(b));
    bool eq = x.rc == 0 && y.rc == 0 && json_equal(x.doc.root, y.doc.root);

    CHECK(x.rc == 0 && y.rc == 0);
    if (x.rc == 0 && y.rc == 0) CHECK_INT(json_compare(x.doc.root, y.doc.root) == 0, eq);
    free(x.arena);
    free(y.arena);
    return eq;
}

static int number_cmp(const char *a, const char *b)
{
    struct parsed x = parse(a, strlen(a)), y = parse(b, strlen(b));
    int c = json_number_cmp(x.doc.root, y.doc.root);

    free(x.arena);
    free(y.arena);
    return c;
}

static void test_numbers(void)
{
    static const struct {
        const char *text;
        bool integral;
        double value;
    } nums[] = {
        {"0", true, 0},
        {"-0", true, 0},
        {"1.0", true, 1},
        {"1.5", false, 1.5},
        {"1e3", true, 1000},
        {"1.5e1", true, 15},
        {"15e-1", false, 1.5},
        {"100e-2", true, 1},
        {"0.000e5", true, 0},
        {"-12.34e2", true, -1234},
        {"123456789012345678901234567890", true, 1.2345678901234568e29},
        {"1e400", true, HUGE_VAL},
        {"1e-400", false, 0},
        {"2.5e-1", false, 0.25},
    };
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        struct parsed p = parse(nums[i].text, strlen(nums[i].text));
        CHECK_INT(p.rc, 0);
        CHECK_INT(!!(p.doc.root->flags & JSON_INTEGRAL), nums[i].integral);
        CHECK(p.doc.root->num == nums[i].value);
        CHECK_INT(p.doc.root->len, strlen(nums[i].text));
        free(p.arena);
    }
    CHECK_INT(number_cmp("1", "1.0"), 0);
    CHECK_INT(number_cmp("-0", "0"), 0);
    CHECK_INT(number_cmp("10", "1e1"), 0);
    CHECK_INT(number_cmp("9007199254740993", "9007199254740992"), 1);
    CHECK_INT(number_cmp("18446744073709551616", "18446744073709551615"), 1);
    CHECK_INT(number_cmp("-18446744073709551616", "-18446744073709551615"), -1);
    CHECK_INT(number_cmp("0.1", "0.10000000000000000001"), -1);
    CHECK_INT(number_cmp("-1", "0"), -1);
    CHECK_INT(number_cmp("1e-999999999", "0"), 1);
    CHECK_INT(number_cmp("123.45", "1.2345e2"), 0);
    CHECK_INT(number_cmp("99", "100"), -1);

    static const struct {
        const char *n, *d;
        int multiple;
    } mults[] = {
        {"10", "2", 1},
        {"7", "2", 0},
        {"0.3", "0.1", 1},
        {"0.0075", "0.0001", 1},
        {"0.00751", "0.0001", 0},
        {"1e308", "0.5", 1},
        {"1e308", "0.123456789", 0},
        {"4.5", "1.5", 1},
        {"-4.5", "1.5", 1},
        {"0", "7", 1},
        {"1", "3", 0},
        {"1e-5", "1e-6", 1},
        {"1e-6", "1e-5", 0},
        {"98249283749234923498293171823948729348710298301928330", "3", 1},
        {"19.99", "0.01", 1},
        {"1", "1234567890123456789", -1},
    };
    for (size_t i = 0; i < sizeof mults / sizeof mults[0]; i++) {
        struct parsed n = parse(mults[i].n, strlen(mults[i].n));
        struct parsed d = parse(mults[i].d, strlen(mults[i].d));
        CHECK_INT(json_number_multiple_of(n.doc.root, d.doc.root), mults[i].multiple);
        free(n.arena);
        free(d.arena);
    }

    static const struct {
        const char *text;
        bool ok;
        uint64_t value;
    } u64s[] = {
        {"0", true, 0},
        {"42", true, 42},
        {"4.2e1", true, 42},
        {"18446744073709551615", true, UINT64_MAX},
        {"18446744073709551616", true, UINT64_MAX},
        {"99999999999999999999", true, UINT64_MAX},
        {"1e30", true, UINT64_MAX},
        {"-1", false, 0},
        {"1.5", false, 0},
    };
    for (size_t i = 0; i < sizeof u64s / sizeof u64s[0]; i++) {
        struct parsed p = parse(u64s[i].text, strlen(u64s[i].text));
        uint64_t v = 7;
        CHECK_INT(json_number_u64(p.doc.root, &v), u64s[i].ok);
        if (u64s[i].ok) CHECK(v == u64s[i].value);
        free(p.arena);
    }
}

static void test_equality(void)
{
    CHECK(equal("1", "1.0"));
    CHECK(equal("{\"a\":1,\"b\":[1,2]}", "{\"b\":[1.0,2e0],\"a\":1}"));
    CHECK(!equal("{\"a\":1}", "{\"a\":1,\"b\":1}"));
    CHECK(!equal("[1,2]", "[2,1]"));
    CHECK(!equal("\"a\"", "\"b\""));
    CHECK(equal("\"\\u00e9\"", "\"\xc3\xa9\""));
    CHECK(!equal("false", "0"));
    CHECK(!equal("null", "false"));
    CHECK(!equal("[]", "{}"));
    CHECK(equal("[[{}]]", "[[{}]]"));

    const char *text = "[1,\"a\",{\"x\":[1,2]},2,{\"x\":[1,2.0]},true]";
    struct parsed p = parse(text, strlen(text));
    uint32_t scratch[8], a = 0, b = 0;
    CHECK(!json_unique(p.doc.root, scratch, &a, &b));
    CHECK_INT(a, 2);
    CHECK_INT(b, 4);
    free(p.arena);
    text = "[1,\"1\",[1],{\"1\":1},true,false,null,1.5]";
    p = parse(text, strlen(text));
    CHECK(json_unique(p.doc.root, scratch, &a, &b));
    free(p.arena);
}

/* Arbitrary bytes are answered, never crash (a cheap deterministic fuzz). */
static void test_noise(void)
{
    static const char alphabet[] = "[]{},:\"\\u0123456789.eE+-truefalsn \t\n\x80\xc3\xa9\xed\xf4";
    uint64_t x = 88172645463325252ull;
    char buf[64];

    for (int round = 0; round < 200000; round++) {
        size_t len = (size_t)(round % 40);
        for (size_t i = 0; i < len; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            buf[i] = alphabet[x % (sizeof alphabet - 1)];
        }
        long at = error_offset(buf, len);
        CHECK(at <= (long)len);
    }
}

int main(void)
{
    RUN(test_accepted);
    RUN(test_rejected);
    RUN(test_error_offsets);
    RUN(test_depth);
    RUN(test_arena_bounds);
    RUN(test_truncations);
    RUN(test_tree);
    RUN(test_numbers);
    RUN(test_equality);
    RUN(test_noise);
    return TEST_REPORT();
}
