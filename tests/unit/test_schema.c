/* The official JSON Schema Test Suite (draft 2020-12), read at run time from
 * ../shared/testdata/json-schema-test-suite, plus our own cases: paths and
 * messages of failures, compile errors, limits. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"
#include "schema.h"
#include "test.h"

#define SUITE "../shared/testdata/json-schema-test-suite"
#define REMOTES SUITE "/remotes"

struct suite_file {
    const char *name;
    bool assert_format;
};

/* Every file of the keywords we implement. Left out, whole: dynamicRef.json
 * and optional/dynamicRef.json ($dynamicRef is not supported),
 * vocabulary.json and optional/format-assertion.json (custom metaschemas
 * with $vocabulary), optional/dependencies-compatibility.json (draft 7's
 * "dependencies"), optional/cross-draft.json (draft 2019-09 documents), and
 * the optional/format files of formats we do not assert. */
static const struct suite_file files[] = {
    {"additionalProperties.json", false},
    {"allOf.json", false},
    {"anchor.json", false},
    {"anyOf.json", false},
    {"boolean_schema.json", false},
    {"const.json", false},
    {"contains.json", false},
    {"content.json", false},
    {"default.json", false},
    {"defs.json", false},
    {"dependentRequired.json", false},
    {"dependentSchemas.json", false},
    {"enum.json", false},
    {"exclusiveMaximum.json", false},
    {"exclusiveMinimum.json", false},
    {"format.json", false},
    {"if-then-else.json", false},
    {"infinite-loop-detection.json", false},
    {"items.json", false},
    {"maxContains.json", false},
    {"maxItems.json", false},
    {"maxLength.json", false},
    {"maxProperties.json", false},
    {"maximum.json", false},
    {"minContains.json", false},
    {"minItems.json", false},
    {"minLength.json", false},
    {"minProperties.json", false},
    {"minimum.json", false},
    {"multipleOf.json", false},
    {"not.json", false},
    {"oneOf.json", false},
    {"pattern.json", false},
    {"patternProperties.json", false},
    {"prefixItems.json", false},
    {"properties.json", false},
    {"propertyNames.json", false},
    {"ref.json", false},
    {"refRemote.json", false},
    {"required.json", false},
    {"type.json", false},
    {"unevaluatedItems.json", false},
    {"unevaluatedProperties.json", false},
    {"uniqueItems.json", false},
    {"optional/anchor.json", false},
    {"optional/bignum.json", false},
    {"optional/ecmascript-regex.json", false},
    {"optional/float-overflow.json", false},
    {"optional/id.json", false},
    {"optional/no-schema.json", false},
    {"optional/non-bmp-regex.json", false},
    {"optional/refOfUnknownKeyword.json", false},
    {"optional/unknownKeyword.json", false},
    {"optional/format/date-time.json", true},
    {"optional/format/email.json", true},
    {"optional/format/ipv4.json", true},
    {"optional/format/ipv6.json", true},
    {"optional/format/uri.json", true},
    {"optional/format/uuid.json", true},
};

/* Groups (test NULL) or single cases outside our scope, each with why. */
struct skip {
    const char *file, *group, *test, *reason;
};

static const struct skip skips[] = {
    {"defs.json", "validate definition against metaschema", NULL,
     "needs the 2020-12 metaschema, which is built on $dynamicRef"},
    {"ref.json", "remote ref, containing refs itself", NULL,
     "needs the 2020-12 metaschema, which is built on $dynamicRef"},
    {"unevaluatedItems.json", "unevaluatedItems with $dynamicRef", NULL,
     "$dynamicRef is not supported"},
    {"unevaluatedProperties.json", "unevaluatedProperties with $dynamicRef", NULL,
     "$dynamicRef is not supported"},
    {"optional/refOfUnknownKeyword.json", "reference of a root arbitrary keyword ", NULL,
     "unknown keywords are compile errors by design"},
    {"optional/refOfUnknownKeyword.json", "reference of a root arbitrary keyword with encoded ref",
     NULL, "unknown keywords are compile errors by design"},
    {"optional/refOfUnknownKeyword.json", "reference of an arbitrary keyword of a sub-schema", NULL,
     "unknown keywords are compile errors by design"},
    {"optional/refOfUnknownKeyword.json",
     "reference of an arbitrary keyword of a sub-schema with encoded ref", NULL,
     "unknown keywords are compile errors by design"},
    {"optional/unknownKeyword.json", "$id inside an unknown keyword is not a real identifier", NULL,
     "unknown keywords are compile errors by design"},
};

struct tally {
    unsigned pass, fail, skip;
};

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long size;

    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)size + 1)) && fread(buf, 1, (size_t)size, f) == (size_t)size) {
        *len = (size_t)size;
    } else {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

/* End of the JSON value starting at text[pos] (the text is valid JSON). */
static size_t value_end(const char *text, size_t pos)
{
    int depth = 0;
    size_t i = pos;

    do {
        char c = text[i];
        if (c == '"') {
            for (i++; text[i] != '"'; i++)
                if (text[i] == '\\') i++;
        } else if (c == '[' || c == '{') {
            depth++;
        } else if (c == ']' || c == '}') {
            depth--;
        } else if (depth == 0) {
            while (text[i + 1] && !strchr(",]} \t\r\n", text[i + 1]))
                i++;
        }
        i++;
    } while (depth > 0);
    return i;
}

static bool str_eq(const struct json_value *v, const char *s)
{
    return v && v->type == JSON_STRING && v->len == strlen(s) && memcmp(v->str, s, v->len) == 0;
}

static const char *skip_reason(const char *file, const struct json_value *group,
                               const struct json_value *test)
{
    for (size_t i = 0; i < sizeof skips / sizeof skips[0]; i++) {
        if (strcmp(skips[i].file, file) != 0 || !str_eq(group, skips[i].group)) continue;
        if (!skips[i].test || str_eq(test, skips[i].test)) return skips[i].reason;
    }
    return NULL;
}

static void run_case(const char *file, const char *text, const struct schema *s,
                     const struct json_value *group, const struct json_value *test, struct tally *t)
{
    const struct json_value *data = json_object_get(test, "data", 4);
    const struct json_value *valid = json_object_get(test, "valid", 5);
    const struct json_value *desc = json_object_get(test, "description", 11);
    const struct json_value *gdesc = json_object_get(group, "description", 11);
    struct schema_result res;

    if (skip_reason(file, gdesc, desc)) {
        t->skip++;
        return;
    }
    size_t end = value_end(text, data->pos);
    int rc = s ? schema_validate(s, text + data->pos, end - data->pos, &res) : -1;
    bool want = valid->type == JSON_TRUE;
    if (rc == (want ? SCHEMA_VALID : SCHEMA_INVALID)) {
        t->pass++;
        return;
    }
    t->fail++;
    fprintf(stderr, "FAIL %s | %.*s | %.*s: got %d (%s %s %s)\n", file, (int)gdesc->len, gdesc->str,
            (int)desc->len, desc->str, rc, s ? res.instance_path : "", s ? res.schema_path : "",
            s ? res.message : "schema did not compile");
}

static void run_group(const char *file, const char *text, const struct json_value *group,
                      bool assert_format, struct tally *t)
{
    const struct json_value *schema = json_object_get(group, "schema", 6);
    const struct json_value *tests = json_object_get(group, "tests", 5);
    const struct json_value *gdesc = json_object_get(group, "description", 11);
    struct schema_options opts = {
        .assert_format = assert_format, .map_prefix = "http://localhost:1234/", .map_dir = REMOTES};
    struct schema_error err;
    struct schema *s = NULL;

    if (!skip_reason(file, gdesc, NULL)) {
        size_t end = value_end(text, schema->pos);
        s = schema_compile_opts(text + schema->pos, end - schema->pos, file, NULL, &opts, &err);
        if (!s)
            fprintf(stderr, "COMPILE %s | %.*s: %s\n", file, (int)gdesc->len, gdesc->str,
                    err.message);
    }
    const struct json_value *test = json_first(tests);
    for (uint32_t i = 0; i < tests->len; i++, test = json_next(test))
        run_case(file, text, s, group, test, t);
    schema_free(s);
}

static int run_file(const struct suite_file *f, struct tally *total)
{
    char path[512];
    size_t len;
    struct json_doc doc;
    struct json_error err;
    struct tally t = {0};

    snprintf(path, sizeof path, SUITE "/tests/draft2020-12/%s", f->name);
    char *text = read_all(path, &len);
    void *arena = text ? malloc(json_arena_size(len, 256)) : NULL;
    if (!arena || json_parse(text, len, 256, arena, json_arena_size(len, 256), &doc, &err) < 0) {
        fprintf(stderr, "cannot read %s\n", path);
        free(text);
        free(arena);
        return -1;
    }
    const struct json_value *group = json_first(doc.root);
    for (uint32_t i = 0; i < doc.root->len; i++, group = json_next(group))
        run_group(f->name, text, group, f->assert_format, &t);
    fprintf(stderr, "  %-40s %4u passed %3u failed %3u skipped\n", f->name, t.pass, t.fail, t.skip);
    total->pass += t.pass;
    total->fail += t.fail;
    total->skip += t.skip;
    free(arena);
    free(text);
    return 0;
}

static void test_official_suite(void)
{
    struct tally total = {0};
    FILE *probe = fopen(SUITE "/tests/draft2020-12/type.json", "rb");

    if (!probe) {
        fprintf(stderr, "SKIP official suite: %s not found\n", SUITE);
        return;
    }
    fclose(probe);
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        CHECK_INT(run_file(&files[i], &total), 0);
    fprintf(stderr, "official suite: %u passed, %u failed, %u skipped\n", total.pass, total.fail,
            total.skip);
    CHECK_INT(total.fail, 0);
}

/* ---- our own cases ---- */

static struct schema *compile_text(const char *text, bool assert_format, struct schema_error *err)
{
    struct schema_options opts = {.assert_format = assert_format};

    return schema_compile_opts(text, strlen(text), "conf/order.json", NULL, &opts, err);
}

struct expect {
    const char *schema, *body;
    int rc;
    const char *instance_path, *schema_path, *message;
};

static const struct expect expects[] = {
    {"{\"properties\":{\"a/b\":{\"type\":\"integer\",\"maximum\":3}}}", "{\"a/b\": 4}",
     SCHEMA_INVALID, "/a~1b", "/properties/a~1b/maximum", "4 is greater than the maximum 3"},
    {"{\"properties\":{\"x\":{\"items\":{\"$ref\":\"#/$defs/"
     "p\"}}},\"$defs\":{\"p\":{\"minimum\":0}}}",
     "{\"x\":[1,2,-1]}", SCHEMA_INVALID, "/x/2", "/$defs/p/minimum",
     "-1 is less than the minimum 0"},
    {"{\"additionalProperties\":false,\"properties\":{\"a\":true}}", "{\"a\":1,\"b~\":2}",
     SCHEMA_INVALID, "/b~0", "/additionalProperties", "property \"b~\" is not allowed"},
    {"{\"required\":[\"id\"]}", "{}", SCHEMA_INVALID, "", "/required",
     "missing required property \"id\""},
    {"{\"anyOf\":[{\"type\":\"string\"},{\"type\":\"null\"}]}", "1", SCHEMA_INVALID, "", "/anyOf",
     "value matches none of the anyOf schemas"},
    {"{\"oneOf\":[{\"type\":\"integer\"},{\"minimum\":0}]}", "1", SCHEMA_INVALID, "", "/oneOf",
     "value matches oneOf schemas 0 and 1, not exactly one"},
    {"{\"type\":[\"string\",\"null\"]}", "1.5", SCHEMA_INVALID, "", "/type",
     "expected null or string, got number"},
    {"{\"type\":\"integer\"}", "2.0", SCHEMA_VALID, "", "", ""},
    {"{\"type\":\"integer\"}", "12345678901234567890123", SCHEMA_VALID, "", "", ""},
    {"{\"type\":\"integer\"}", "1.000000000000000000001", SCHEMA_INVALID, "", "/type",
     "expected integer, got number"},
    {"{\"maximum\":9007199254740992}", "9007199254740993", SCHEMA_INVALID, "", "/maximum",
     "9007199254740993 is greater than the maximum 9007199254740992"},
    {"{\"multipleOf\":0.01}", "19.99", SCHEMA_VALID, "", "", ""},
    {"{\"uniqueItems\":true}", "[1,{\"a\":[1,2]},3,{\"a\":[1,2.0]}]", SCHEMA_INVALID, "",
     "/uniqueItems", "items 1 and 3 are equal"},
    {"{\"propertyNames\":{\"maxLength\":2}}", "{\"ab\":1,\"abc\":1}", SCHEMA_INVALID, "/abc",
     "/propertyNames/maxLength", "string is longer than 2 characters"},
    {"{\"unevaluatedProperties\":false,\"allOf\":[{\"properties\":{\"a\":true}}]}",
     "{\"a\":1,\"b\":2}", SCHEMA_INVALID, "/b", "/unevaluatedProperties",
     "property \"b\" is not allowed"},
    {"{\"prefixItems\":[true],\"items\":false}", "[1,2]", SCHEMA_INVALID, "/1", "/items",
     "item 1 is not allowed"},
    {"{\"contains\":{\"type\":\"string\"},\"minContains\":2}", "[\"a\",1]", SCHEMA_INVALID, "",
     "/minContains", "array contains 1 matching items, fewer than 2"},
    {"{\"dependentRequired\":{\"card\":[\"cvv\"]}}", "{\"card\":1}", SCHEMA_INVALID, "",
     "/dependentRequired", "property \"card\" requires property \"cvv\""},
    {"{\"if\":{\"required\":[\"a\"]},\"then\":{\"properties\":{\"a\":{\"const\":1}}}}", "{\"a\":2}",
     SCHEMA_INVALID, "/a", "/then/properties/a/const", "value does not equal the const value"},
    {"{\"not\":{\"type\":\"null\"}}", "null", SCHEMA_INVALID, "", "/not",
     "value must not match the \"not\" schema"},
    {"{\"enum\":[\"a\",1]}", "1.0", SCHEMA_VALID, "", "", ""},
    {"{\"minLength\":2}", "\"\xc3\xa9\"", SCHEMA_INVALID, "", "/minLength",
     "string is shorter than 2 characters"},
    {"false", "{}", SCHEMA_INVALID, "", "", "no value is allowed"},
    {"{\"type\":\"object\"}", "{\"a\":1,}", SCHEMA_BAD_JSON, "", "", "trailing comma"},
    {"{\"type\":\"object\"}", "{\"a\":1,\"a\":2}", SCHEMA_BAD_JSON, "", "", "duplicate object key"},
    {"{\"properties\":{\"\xc3\xa9t\xc3\xa9\":{\"type\":\"string\"}}}", "{\"\xc3\xa9t\xc3\xa9\":1}",
     SCHEMA_INVALID, "/\xc3\xa9t\xc3\xa9", "/properties/\xc3\xa9t\xc3\xa9/type",
     "expected string, got integer"},
    {"{\"format\":\"email\"}", "\"not an email\"", SCHEMA_VALID, "", "", ""},
    {"{\"pattern\":\"^\\\\p{Lu}\\\\d{3}$\"}",
     "\"\xc3\x89"
     "123\"",
     SCHEMA_VALID, "", "", ""},
    {"{\"pattern\":\"^.$\"}", "\"\\n\"", SCHEMA_INVALID, "", "/pattern",
     "string does not match the pattern"},
    {"{\"pattern\":\"^.$\"}", "\"\\u2028\"", SCHEMA_INVALID, "", "/pattern",
     "string does not match the pattern"},
    {"{\"pattern\":\"^[^]$\"}", "\"\\n\"", SCHEMA_VALID, "", "", ""},
    {"{\"pattern\":\"^[]$\"}", "\"a\"", SCHEMA_INVALID, "", "/pattern",
     "string does not match the pattern"},
    {"{\"pattern\":\"^\\\\u{1F600}\\\\x41\\\\0$\"}",
     "\"\xf0\x9f\x98\x80"
     "A\\u0000\"",
     SCHEMA_VALID, "", "", ""},
    {"{\"pattern\":\"^[\\\\b]$\"}", "\"\\b\"", SCHEMA_VALID, "", "", ""},
    {"{\"pattern\":\"^\\\\p{Script=Greek}+$\"}", "\"\xce\xb1\xce\xb2\"", SCHEMA_VALID, "", "", ""},
    {"{\"pattern\":\"^\\\\p{Assigned}$\"}", "\"\\u0378\"", SCHEMA_INVALID, "", "/pattern",
     "string does not match the pattern"},
    {"{\"pattern\":\"^(a)\\\\1$\"}", "\"aa\"", SCHEMA_VALID, "", "", ""},
    {"{\"pattern\":\"^[[:a]+$\"}", "\"[:a\"", SCHEMA_VALID, "", "", ""},
    {"{\"pattern\":\"^\\\\S\\\\s[\\\\S][\\\\s]$\"}", "\"a\\u3000b\\ufeff\"", SCHEMA_VALID, "", "",
     ""},
};

static void test_results(void)
{
    for (size_t i = 0; i < sizeof expects / sizeof expects[0]; i++) {
        const struct expect *e = &expects[i];
        struct schema_error err;
        struct schema_result res;
        struct schema *s = compile_text(e->schema, false, &err);
        if (!s) {
            fprintf(stderr, "case %zu: %s\n", i, err.message);
            CHECK(false);
            continue;
        }
        int rc = schema_validate(s, e->body, strlen(e->body), &res);
        if (rc != e->rc) fprintf(stderr, "case %zu: %s\n", i, res.message);
        CHECK_INT(rc, e->rc);
        if (rc == SCHEMA_INVALID) {
            CHECK_STR(res.instance_path, e->instance_path);
            CHECK_STR(res.schema_path, e->schema_path);
        }
        if (rc != SCHEMA_VALID) CHECK_STR(res.message, e->message);
        schema_free(s);
    }
}

static void test_bad_json_offset(void)
{
    struct schema_error err;
    struct schema_result res;
    struct schema *s = compile_text("{}", false, &err);

    CHECK_INT(schema_validate(s, "{\"a\":[1,2,]}", 12, &res), SCHEMA_BAD_JSON);
    CHECK_INT(res.offset, 10);
    CHECK_INT(schema_validate(s, "", 0, &res), SCHEMA_BAD_JSON);
    CHECK_INT(res.offset, 0);
    CHECK_INT(schema_validate(s, "{\"a\":\"\xed\xa0\x80\"}", 10, &res), SCHEMA_BAD_JSON);
    CHECK_INT(res.offset, 6);
    schema_free(s);
}

struct compile_case {
    const char *schema;
    bool assert_format;
    const char *message;
};

static const struct compile_case compile_errors[] = {
    {"{\"type\":\"integr\"}", false,
     "conf/order.json:1:9: unknown type (expected null, boolean, object, array, number, string "
     "or integer)"},
    {"{\n  \"type\": \"object\",\n  \"requried\": [\"a\"]\n}", false,
     "conf/order.json:3:3: unknown keyword \"requried\""},
    {"{\"$dynamicRef\":\"#x\"}", false,
     "conf/order.json:1:2: keyword \"$dynamicRef\" is not supported"},
    {"{\"definitions\":{}}", false,
     "conf/order.json:1:2: keyword \"definitions\" is not supported"},
    {"{\"additionalItems\":false}", false,
     "conf/order.json:1:2: keyword \"additionalItems\" is not supported"},
    {"{\"$ref\":\"#/$defs/a\",\"$defs\":{\"a\":{\"$ref\":\"#/$defs/"
     "b\"},\"b\":{\"allOf\":[{\"$ref\":"
     "\"#\"}]}}}",
     false, "conf/order.json:1:70: $ref makes a cycle that never advances into the instance"},
    {"{\"$ref\":\"#/$defs/nope\"}", false,
     "conf/order.json:1:9: cannot resolve $ref \"#/$defs/nope\" (as "
     "file:///order.json#/$defs/nope)"},
    {"{\"$ref\":\"other.json\"}", false,
     "conf/order.json:1:9: cannot resolve $ref \"other.json\" (as file:///other.json)"},
    {"{\"pattern\":\"(?i)abc\"}", false,
     "conf/order.json:1:12: invalid pattern: group syntax not valid in an ECMA-262 pattern"},
    {"{\"pattern\":\"(*LIMIT_MATCH=1)a\"}", false,
     "conf/order.json:1:12: invalid pattern: group syntax not valid in an ECMA-262 pattern"},
    {"{\"pattern\":\"a++\"}", false,
     "conf/order.json:1:12: invalid pattern: possessive quantifier not valid in an ECMA-262 "
     "pattern"},
    {"{\"pattern\":\"\\\\Qa\\\\E\"}", false,
     "conf/order.json:1:12: invalid pattern: escape not valid in an ECMA-262 pattern"},
    {"{\"pattern\":\"(a\"}", false,
     "conf/order.json:1:12: invalid pattern: missing closing parenthesis"},
    {"{\"patternProperties\":{\"[a\":true}}", false,
     "conf/order.json:1:23: invalid pattern: unterminated character class"},
    {"{\"format\":\"hostname\"}", true,
     "conf/order.json:1:11: format \"hostname\" cannot be asserted (supported: date-time, email, "
     "uuid, ipv4, ipv6, uri)"},
    {"{\"$schema\":\"http://json-schema.org/draft-07/schema#\"}", false,
     "conf/order.json:1:12: unsupported $schema (only "
     "https://json-schema.org/draft/2020-12/schema)"},
    {"{\"minimum\":\"1\"}", false, "conf/order.json:1:2: \"minimum\" must be a number"},
    {"{\"maxLength\":-1}", false,
     "conf/order.json:1:2: \"maxLength\" must be a non-negative integer"},
    {"{\"maxLength\":1.5}", false,
     "conf/order.json:1:2: \"maxLength\" must be a non-negative integer"},
    {"{\"multipleOf\":0}", false,
     "conf/order.json:1:2: \"multipleOf\" must be a number greater than 0"},
    {"{\"multipleOf\":0.1234567890123456789}", false,
     "conf/order.json:1:2: multipleOf with more than 18 significant digits is not supported"},
    {"{\"required\":[\"a\",\"a\"]}", false,
     "conf/order.json:1:2: \"required\" must be an array of unique strings"},
    {"{\"properties\":{\"a\":1}}", false,
     "conf/order.json:1:16: \"a\" must be a schema (object or boolean)"},
    {"{\"allOf\":[]}", false,
     "conf/order.json:1:2: \"allOf\" must be a non-empty array of schemas"},
    {"{\"$id\":\"http://x/a#frag\"}", false, "conf/order.json:1:8: $id must not have a fragment"},
    {"{\"$defs\":{\"a\":{\"$id\":\"http://x/\"},\"b\":{\"$id\":\"http://x/\"}}}", false,
     "conf/order.json:1:39: $id \"http://x/\" is defined twice"},
    {"{\"$anchor\":\"1a\"}", false,
     "conf/order.json:1:2: \"$anchor\" must be a name of letters, digits, '-', '_', '.' and ':' "
     "starting with a letter or '_'"},
    {"{\"type\":\"object\",}", false, "conf/order.json:1:18: invalid JSON: trailing comma"},
    {"{\"a\":1,\"a\":2}", false, "conf/order.json:1:8: invalid JSON: duplicate object key"},
    {"[]", false, "conf/order.json:1:1: a schema must be an object or a boolean"},
    {"{\"$defs\":{\"x\":{\"type\":\"strin\"}}}", false,
     "conf/order.json:1:23: unknown type (expected null, boolean, object, array, number, string "
     "or integer)"},
};

static void test_compile_errors(void)
{
    for (size_t i = 0; i < sizeof compile_errors / sizeof compile_errors[0]; i++) {
        struct schema_error err;
        struct schema *s =
            compile_text(compile_errors[i].schema, compile_errors[i].assert_format, &err);
        CHECK(s == NULL);
        if (!s) CHECK_STR(err.message, compile_errors[i].message);
        schema_free(s);
    }
    /* Annotations and extensions are accepted. */
    struct schema_error err;
    struct schema *s =
        compile_text("{\"title\":\"t\",\"description\":\"d\",\"$comment\":\"c\","
                     "\"examples\":[1],\"default\":2,\"deprecated\":false,"
                     "\"readOnly\":true,\"writeOnly\":false,\"x-owner\":\"team\","
                     "\"$schema\":\"https://json-schema.org/draft/2020-12/schema\","
                     "\"$id\":\"https://example.com/s.json\",\"format\":\"hostname\","
                     "\"contentMediaType\":\"application/json\"}",
                     false, &err);
    CHECK(s != NULL);
    schema_free(s);
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void test_file_refs(void)
{
    char dir[] = "/tmp/ringgate-schema-XXXXXX", sub[64], path[128];
    struct schema_error err;
    struct schema_result res;
    const char *root = "{\"type\":\"object\",\"properties\":{"
                       "\"price\":{\"$ref\":\"common.json#/$defs/price\"},"
                       "\"ship\":{\"$ref\":\"sub/address.json\"},"
                       "\"id\":{\"$ref\":\"common.json#id\"}}}";

    CHECK(mkdtemp(dir) != NULL);
    snprintf(sub, sizeof sub, "%s/sub", dir);
    CHECK_INT(mkdir(sub, 0700), 0);
    write_file(dir, "common.json",
               "{\"$defs\":{\"price\":{\"type\":\"number\",\"minimum\":0},"
               "\"zip\":{\"type\":\"string\",\"pattern\":\"^[0-9]{5}$\"},"
               "\"id\":{\"$anchor\":\"id\",\"format\":\"uuid\"}}}");
    write_file(dir, "sub/address.json",
               "{\"type\":\"object\",\"required\":[\"zip\"],"
               "\"properties\":{\"zip\":{\"$ref\":\"../common.json#/$defs/zip\"}}}");
    write_file(dir, "bad.json", "{\"type\":\n  \"strin\"}");
    struct schema_options opts = {.assert_format = true};
    snprintf(path, sizeof path, "%s/order.json", dir);
    struct schema *s = schema_compile_opts(root, strlen(root), path, dir, &opts, &err);
    if (!s) fprintf(stderr, "%s\n", err.message);
    CHECK(s != NULL);
    if (s) {
        const char *ok = "{\"price\":1.5,\"ship\":{\"zip\":\"12345\"},"
                         "\"id\":\"2eb8aa08-aa98-11ea-b4aa-73b441d16380\"}";
        CHECK_INT(schema_validate(s, ok, strlen(ok), &res), SCHEMA_VALID);
        const char *bad_zip = "{\"ship\":{\"zip\":\"1234\"}}";
        CHECK_INT(schema_validate(s, bad_zip, strlen(bad_zip), &res), SCHEMA_INVALID);
        CHECK_STR(res.instance_path, "/ship/zip");
        CHECK_STR(res.schema_path, "common.json#/$defs/zip/pattern");
        const char *bad_price = "{\"price\":-1}";
        CHECK_INT(schema_validate(s, bad_price, strlen(bad_price), &res), SCHEMA_INVALID);
        CHECK_STR(res.schema_path, "common.json#/$defs/price/minimum");
        const char *bad_id = "{\"id\":\"nope\"}";
        CHECK_INT(schema_validate(s, bad_id, strlen(bad_id), &res), SCHEMA_INVALID);
        CHECK_STR(res.schema_path, "common.json#/$defs/id/format");
        CHECK_STR(res.message, "string is not a valid uuid");
        schema_free(s);
    }

    /* Errors name the file they are in; references stay inside base_dir. */
    const char *to_bad = "{\"$ref\":\"bad.json\"}";
    s = schema_compile_opts(to_bad, strlen(to_bad), path, dir, NULL, &err);
    CHECK(s == NULL);
    char want[256];
    snprintf(want, sizeof want,
             "%s/bad.json:2:3: unknown type (expected null, boolean, object, array, number, "
             "string or integer)",
             dir);
    CHECK_STR(err.message, want);
    const char *escape = "{\"$ref\":\"../../../etc/passwd\"}";
    s = schema_compile_opts(escape, strlen(escape), path, dir, NULL, &err);
    CHECK(s == NULL);
    snprintf(want, sizeof want, "%s:1:2: cannot read \"%s/etc/passwd\": No such file or directory",
             path, dir);
    CHECK_STR(err.message, want);
    const char *encoded = "{\"$ref\":\"%2e%2e/x.json\"}";
    s = schema_compile_opts(encoded, strlen(encoded), path, dir, NULL, &err);
    CHECK(s == NULL);

    /* With $id, relative references are resolved against it first, then
     * against the file when no $id explains them. */
    const char *with_id = "{\"$id\":\"https://example.com/schemas/order.json\","
                          "\"properties\":{\"price\":{\"$ref\":\"common.json#/$defs/price\"}}}";
    s = schema_compile_opts(with_id, strlen(with_id), path, dir, NULL, &err);
    CHECK(s != NULL);
    if (s) {
        CHECK_INT(schema_validate(s, "{\"price\":-2}", 12, &res), SCHEMA_INVALID);
        schema_free(s);
    }

    snprintf(path, sizeof path, "%s/sub/address.json", dir);
    unlink(path);
    rmdir(sub);
    snprintf(path, sizeof path, "%s/common.json", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/bad.json", dir);
    unlink(path);
    rmdir(dir);
}

static void test_formats(void)
{
    static const struct {
        const char *format, *value;
        bool valid;
    } cases[] = {
        {"date-time", "2024-02-29T12:00:00Z", true},
        {"date-time", "2023-02-29T12:00:00Z", false},
        {"date-time", "2000-02-29T23:58:60+00:00", false},
        {"date-time", "2000-02-29T20:59:60-03:00", true},
        {"date-time", "2016-12-31T23:59:60Z", true},
        {"date-time", "2016-12-31T23:59:60.5Z", true},
        {"date-time", "2016-12-31T23:59:59.Z", false},
        {"date-time", "2016-12-31 23:59:59Z", false},
        {"email", "a.b+c@example.co.uk", true},
        {"email", "a@-example.com", false},
        {"email", "a@example-.com", false},
        {"email", "\"a\\\"b\"@example.com", true},
        {"email", "\xc3\xa9@example.com", false},
        {"ipv4", "1.2.3.04", false},
        {"ipv6", "::ffff:1.2.3.4", true},
        {"ipv6", "1:2:3:4:5:6:7::", true},
        {"ipv6", "1:2:3:4:5:6:7:8:9", false},
        {"uri", "https://user:pw@[v1.fe80::a+en1]:8443/a/b?c=d#e", true},
        {"uri", "https://example.com:/path", true},
        {"uri", "https://example.com/%zz", false},
        {"uuid", "2EB8AA08-AA98-11EA-B4AA-73B441D16380", true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char schema[128], body[256];
        struct schema_error err;
        struct schema_result res;
        snprintf(schema, sizeof schema, "{\"format\":\"%s\"}", cases[i].format);
        size_t n = 0;
        body[n++] = '"';
        for (const char *p = cases[i].value; *p; p++) {
            if (*p == '"' || *p == '\\') body[n++] = '\\';
            body[n++] = *p;
        }
        body[n++] = '"';
        body[n] = '\0';
        struct schema *s = compile_text(schema, true, &err);
        CHECK(s != NULL);
        if (!s) continue;
        int rc = schema_validate(s, body, strlen(body), &res);
        if (rc != (cases[i].valid ? SCHEMA_VALID : SCHEMA_INVALID))
            fprintf(stderr, "format %s %s: %d %s\n", cases[i].format, cases[i].value, rc,
                    res.message);
        CHECK_INT(rc, cases[i].valid ? SCHEMA_VALID : SCHEMA_INVALID);
        schema_free(s);
    }
}

/* Pathological combinations fail closed instead of running away. */
static void test_budgets(void)
{
    struct schema_error err;
    struct schema_result res;
    /* Each level tries both branches, the first failing only after the
     * whole subtree: 2^depth evaluations. */
    const char *exponential = "{\"$defs\":{\"n\":{\"anyOf\":[{\"items\":{\"$ref\":\"#/$defs/n\"},"
                              "\"contains\":{\"type\":\"string\"}},"
                              "{\"items\":{\"$ref\":\"#/$defs/n\"}}]}},\"$ref\":\"#/$defs/n\"}";
    struct schema *s = compile_text(exponential, false, &err);
    char body[128];

    CHECK(s != NULL);
    memset(body, '[', 60);
    memset(body + 60, ']', 60);
    CHECK_INT(schema_validate(s, body, 120, &res), SCHEMA_INVALID);
    CHECK_STR(res.message, "validation exceeds its step budget");
    CHECK_INT(schema_validate(s, "[[[]]]", 6, &res), SCHEMA_VALID);
    schema_free(s);

    /* Bodies nest at most SCHEMA_DEFAULT_DEPTH deep, or as configured. */
    s = compile_text("{}", false, &err);
    char deep[400];
    memset(deep, '[', 200);
    memset(deep + 200, ']', 200);
    CHECK_INT(schema_validate(s, deep + 200 - SCHEMA_DEFAULT_DEPTH, 2 * SCHEMA_DEFAULT_DEPTH, &res),
              SCHEMA_VALID);
    CHECK_INT(schema_validate(s, deep + 200 - SCHEMA_DEFAULT_DEPTH - 1,
                              2 * SCHEMA_DEFAULT_DEPTH + 2, &res),
              SCHEMA_BAD_JSON);
    CHECK_STR(res.message, "nesting too deep");
    schema_free(s);
    struct schema_options opts = {.max_depth = 3};
    s = schema_compile_opts("{}", 2, "s.json", NULL, &opts, &err);
    CHECK_INT(schema_validate(s, "[[[]]]", 6, &res), SCHEMA_VALID);
    CHECK_INT(schema_validate(s, "[[[[]]]]", 8, &res), SCHEMA_BAD_JSON);
    schema_free(s);

    /* A catastrophic pattern gives up; a long but linear one does not. */
    s = compile_text("{\"items\":{\"pattern\":\"^(x+x+)+$\"}}", false, &err);
    size_t len = 100000;
    char *big = malloc(len + 6);
    memcpy(big, "[\"", 2);
    memset(big + 2, 'x', len);
    memcpy(big + 1 + len, "!\"]", 3);
    CHECK_INT(schema_validate(s, big, len + 4, &res), SCHEMA_INVALID);
    CHECK_STR(res.message, "pattern too costly to match");
    CHECK_STR(res.instance_path, "/0");
    schema_free(s);
    s = compile_text("{\"items\":{\"pattern\":\"^(xx|x)*$\"}}", false, &err);
    len = 5000;
    memset(big + 2, 'x', len);
    memcpy(big + 2 + len, "\"]", 2);
    CHECK_INT(schema_validate(s, big, len + 4, &res), SCHEMA_VALID);
    schema_free(s);
    free(big);

    /* schema_validate_in: the caller's arena, exactly as large as asked. */
    s = compile_text("{\"type\":\"array\",\"uniqueItems\":true}", false, &err);
    size_t need = schema_arena_size(s, 7);
    void *arena = malloc(need);
    CHECK_INT(schema_validate_in(s, "[1,2,3]", 7, arena, need, &res), SCHEMA_VALID);
    CHECK_INT(schema_validate_in(s, "[1,2,1]", 7, arena, need, &res), SCHEMA_INVALID);
    CHECK_INT(schema_validate_in(s, "[1,2,3]", 7, arena, need - 1, &res), SCHEMA_INVALID);
    CHECK_STR(res.message, "validation arena too small");
    free(arena);
    schema_free(s);
}

/* Large bodies: uniqueItems and unevaluatedProperties stay near-linear. */
static void test_large_bodies(void)
{
    struct schema_error err;
    struct schema_result res;
    size_t n = 50000, cap = n * 24 + 16, len = 0;
    char *body = malloc(cap);
    struct schema *s = compile_text("{\"uniqueItems\":true,\"items\":{\"type\":\"object\","
                                    "\"properties\":{\"a\":{\"type\":\"integer\"}},"
                                    "\"unevaluatedProperties\":false}}",
                                    false, &err);

    body[len++] = '[';
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(body + len, cap - len, "%s{\"a\":%zu}", i ? "," : "", i * 7919 % n);
    body[len++] = ']';
    CHECK_INT(schema_validate(s, body, len, &res), SCHEMA_VALID);
    memcpy(body + len - 8, "\"x\"", 3);
    CHECK_INT(schema_validate(s, body, len, &res), SCHEMA_BAD_JSON);
    schema_free(s);
    free(body);
}

struct worker {
    const struct schema *s;
    int failures;
};

static void *validate_many(void *arg)
{
    struct worker *w = arg;
    static const char *const bodies[] = {"{\"id\":\"ab-12\",\"n\":[1,2,3]}",
                                         "{\"id\":\"AB-12\",\"n\":[1,2,3]}",
                                         "{\"id\":\"ab-12\",\"n\":[1,1]}"};
    static const int want[] = {SCHEMA_VALID, SCHEMA_INVALID, SCHEMA_INVALID};

    for (int i = 0; i < 1500; i++) {
        struct schema_result res;
        int k = i % 3;
        if (schema_validate(w->s, bodies[k], strlen(bodies[k]), &res) != want[k]) w->failures++;
    }
    return NULL;
}

/* A compiled schema is shared read-only by worker threads. */
static void test_threads(void)
{
    struct schema_error err;
    struct schema *s =
        compile_text("{\"properties\":{\"id\":{\"pattern\":\"^[a-z]+-[0-9]+$\"},"
                     "\"n\":{\"uniqueItems\":true}},\"unevaluatedProperties\":false}",
                     false, &err);
    pthread_t threads[4];
    struct worker workers[4];

    for (int i = 0; i < 4; i++) {
        workers[i] = (struct worker){s, 0};
        CHECK_INT(pthread_create(&threads[i], NULL, validate_many, &workers[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
        CHECK_INT(workers[i].failures, 0);
    }
    schema_free(s);
}

int main(void)
{
    RUN(test_official_suite);
    RUN(test_results);
    RUN(test_bad_json_offset);
    RUN(test_compile_errors);
    RUN(test_file_refs);
    RUN(test_formats);
    RUN(test_budgets);
    RUN(test_large_bodies);
    RUN(test_threads);
    return TEST_REPORT();
}
