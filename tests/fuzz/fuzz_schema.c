/* libFuzzer target for the JSON reader and the JSON Schema validator. The
 * first byte picks what the rest is: a request body validated against a
 * fixed schema using most keywords, a JSON document parsed alone (tree
 * invariants checked), or a schema compiled and applied to a few bodies. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "schema.h"

#define REQUIRE(cond)                                                                              \
    do {                                                                                           \
        if (!(cond)) __builtin_trap();                                                             \
    } while (0)

static const char order_schema[] =
    "{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\","
    "\"$id\":\"https://example.com/order.json\","
    "\"type\":\"object\",\"required\":[\"id\",\"items\"],"
    "\"properties\":{"
    "\"id\":{\"type\":\"string\",\"format\":\"uuid\"},"
    "\"email\":{\"type\":\"string\",\"format\":\"email\",\"maxLength\":254},"
    "\"created\":{\"format\":\"date-time\"},\"site\":{\"format\":\"uri\"},"
    "\"ip\":{\"anyOf\":[{\"format\":\"ipv4\"},{\"format\":\"ipv6\"}]},"
    "\"items\":{\"type\":\"array\",\"minItems\":1,\"maxItems\":50,\"uniqueItems\":true,"
    "\"items\":{\"$ref\":\"#/$defs/item\"},\"contains\":{\"required\":[\"sku\"]},"
    "\"maxContains\":40},"
    "\"tags\":{\"type\":\"array\",\"prefixItems\":[{\"const\":\"v1\"},{\"enum\":[1,\"a\",null]}],"
    "\"unevaluatedItems\":{\"type\":\"string\",\"pattern\":\"^[\\\\p{L}\\\\d _-]{1,32}$\"}},"
    "\"total\":{\"type\":\"number\",\"exclusiveMinimum\":0,\"maximum\":1e9,\"multipleOf\":0.01},"
    "\"tree\":{\"$ref\":\"#/$defs/node\"},"
    "\"kind\":{\"oneOf\":[{\"const\":\"a\"},{\"const\":\"b\"},{\"type\":\"integer\"}]}},"
    "\"patternProperties\":{\"^x-\":{\"type\":[\"string\",\"null\"]}},"
    "\"propertyNames\":{\"maxLength\":40,\"pattern\":\"^[a-z]\"},"
    "\"dependentRequired\":{\"email\":[\"created\"]},"
    "\"dependentSchemas\":{\"coupon\":{\"properties\":{\"coupon\":{\"minLength\":4}}}},"
    "\"if\":{\"properties\":{\"kind\":{\"const\":\"b\"}}},"
    "\"then\":{\"required\":[\"total\"]},\"else\":{\"not\":{\"required\":[\"zzz\"]}},"
    "\"unevaluatedProperties\":false,"
    "\"$defs\":{"
    "\"item\":{\"type\":\"object\",\"properties\":{\"sku\":{\"type\":\"string\","
    "\"pattern\":\"^[A-Z]{3}-\\\\d+$\"},\"qty\":{\"type\":\"integer\",\"minimum\":1,"
    "\"maximum\":18446744073709551616}},\"additionalProperties\":false,"
    "\"minProperties\":1,\"maxProperties\":2},"
    "\"node\":{\"$anchor\":\"node\",\"type\":\"object\",\"properties\":{"
    "\"value\":true,\"children\":{\"type\":\"array\",\"items\":{\"$ref\":\"#node\"}}},"
    "\"allOf\":[{\"maxProperties\":3}],\"unevaluatedProperties\":false}}}";

static struct schema *order;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    struct schema_options opts = {.assert_format = true};
    struct schema_error err;

    (void)argc, (void)argv;
    order =
        schema_compile_opts(order_schema, sizeof order_schema - 1, "order.json", NULL, &opts, &err);
    REQUIRE(order != NULL);
    return 0;
}

static void check_result(const struct schema_result *res, int rc, size_t size)
{
    REQUIRE(rc == SCHEMA_VALID || rc == SCHEMA_INVALID || rc == SCHEMA_BAD_JSON);
    REQUIRE(strlen(res->message) < sizeof res->message);
    REQUIRE(strlen(res->instance_path) < sizeof res->instance_path);
    REQUIRE(strlen(res->schema_path) < sizeof res->schema_path);
    if (rc == SCHEMA_BAD_JSON) REQUIRE(res->offset <= size && res->message[0]);
    if (rc == SCHEMA_INVALID) REQUIRE(res->message[0]);
}

static void validate_body(const char *body, size_t size)
{
    struct schema_result res;
    int rc = schema_validate(order, body, size, &res);

    check_result(&res, rc, size);
}

/* Subtree sizes add up, counts match, members are strictly sorted. */
static uint32_t check_tree(const struct json_value *v)
{
    const struct json_value *x = json_first(v);
    uint32_t size = 1;

    if (v->type != JSON_ARRAY && v->type != JSON_OBJECT) {
        REQUIRE(v->size == 1);
        return 1;
    }
    for (uint32_t i = 0; i < v->len; i++) {
        if (v->type == JSON_OBJECT) {
            REQUIRE(x->type == JSON_STRING);
            size += 1;
            x++;
        }
        uint32_t n = check_tree(x);
        size += n;
        x += n;
    }
    REQUIRE(size == v->size);
    for (uint32_t i = 1; v->type == JSON_OBJECT && i < v->len; i++) {
        const struct json_value *a = v + v->members[i - 1], *b = v + v->members[i];
        REQUIRE(json_compare(a, b) < 0);
    }
    return size;
}

static void parse_alone(const char *text, size_t size)
{
    size_t need = json_arena_size(size, 64);
    void *arena = malloc(need);
    struct json_doc doc;
    struct json_error err;

    if (json_parse(text, size, 64, arena, need, &doc, &err) == 0) {
        REQUIRE(check_tree(doc.root) == doc.count);
        REQUIRE(json_equal(doc.root, doc.root));
    } else {
        REQUIRE(err.offset <= size && err.message);
    }
    free(arena);
}

static void compile_and_apply(const char *text, size_t size, bool assert_format)
{
    static const char *const bodies[] = {"{}", "[1,\"a\",{\"b\":[null,true]}]", "\"2024-01-01\"",
                                         "-12.5e3", "{\"a\":{\"a\":{\"a\":[]}}}"};
    struct schema_options opts = {.assert_format = assert_format, .max_depth = 16};
    struct schema_error err;
    struct schema *s = schema_compile_opts(text, size, "fuzz.json", NULL, &opts, &err);

    if (!s) {
        REQUIRE(strlen(err.message) > 0 && strlen(err.message) < sizeof err.message);
        return;
    }
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        struct schema_result res;
        int rc = schema_validate(s, bodies[i], strlen(bodies[i]), &res);
        check_result(&res, rc, strlen(bodies[i]));
    }
    schema_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    uint8_t mode = data[0];
    char *text = malloc(size - 1 ? size - 1 : 1); /* exact size: overreads show */
    memcpy(text, data + 1, size - 1);
    switch (mode % 3) {
    case 0:
        validate_body(text, size - 1);
        break;
    case 1:
        parse_alone(text, size - 1);
        break;
    default:
        compile_and_apply(text, size - 1, mode & 4);
        break;
    }
    free(text);
    return 0;
}
