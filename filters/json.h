/* A strict RFC 8259 JSON reader.
 *
 * json_parse() turns a text into a tree held in one caller-provided arena:
 * no allocation, no globals, any byte sequence answered (never a crash).
 * It rejects what RFC 8259 forbids (trailing commas, NaN/Infinity, leading
 * zeros, invalid UTF-8 including overlongs, UTF-8-encoded surrogates and code
 * points above U+10FFFF, lone \u surrogates, control characters in strings)
 * and, as documented deviations a gateway needs, duplicate object keys (the
 * origin might read the other one), a byte order mark, nesting deeper than
 * max_depth and exponents beyond +-999999999.
 *
 * Why a tree and not a streaming validator: the JSON Schema keywords a
 * gateway meets (anyOf/oneOf/if over objects, uniqueItems, unevaluated*)
 * revisit values, and the body is buffered whole before forwarding anyway.
 * The tree is a flat pre-order array ("tape") of fixed-size nodes in one
 * block, so parsing is a single forward pass and walking it is cache-friendly.
 */
#ifndef RINGGATE_JSON_H
#define RINGGATE_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSON_DEPTH_LIMIT 1024u     /* largest max_depth json_parse accepts */
#define JSON_TEXT_LIMIT (1u << 30) /* largest text json_parse accepts, bytes */

enum json_type {
    JSON_NULL,
    JSON_FALSE,
    JSON_TRUE,
    JSON_NUMBER,
    JSON_STRING,
    JSON_ARRAY,
    JSON_OBJECT
};

#define JSON_INTEGRAL 0x01 /* number with no fractional part: 1.0, 1e3, 2^70 */

/* One value. Arrays and objects are followed by their subtree in pre-order:
 * the first child is at v + 1, the next sibling of v at v + v->size. An
 * object's children alternate key (a JSON_STRING) and value. */
struct json_value {
    uint8_t type;
    uint8_t flags;
    uint32_t pos;    /* byte offset of the value in the text */
    uint32_t len;    /* string: decoded bytes; number: text bytes; array: items; object: members */
    uint32_t size;   /* values in the subtree, this one included */
    const char *str; /* string: decoded UTF-8 (not NUL-terminated); number: its exact text */
    union {
        double num;              /* number: nearest double (exact rounding up to 19
                                    digits), +-inf beyond range; text is the truth */
        const uint32_t *members; /* object: offsets from the object to its keys, sorted by key */
    };
};

struct json_doc {
    const char *text; /* strings may point into it: it must outlive the document */
    size_t len;
    const struct json_value *root;
    uint32_t count; /* values in the document */
};

struct json_error {
    size_t offset;       /* byte offset of the problem, <= len */
    const char *message; /* static string */
};

/* Arena bytes json_parse needs at most for a text of len bytes nested at
 * most max_depth deep: about 16 per byte for the densest documents
 * ("[1,1,...]"); far less is touched for ordinary ones. */
size_t json_arena_size(size_t len, unsigned max_depth);

/* Parse text[0..len) into doc, using arena (8-byte aligned). max_depth in
 * 1..JSON_DEPTH_LIMIT bounds nesting. Returns 0, or -1 with err set. */
int json_parse(const char *text, size_t len, unsigned max_depth, void *arena, size_t arena_size,
               struct json_doc *doc, struct json_error *err);

static inline const struct json_value *json_first(const struct json_value *v)
{
    return v + 1;
}

static inline const struct json_value *json_next(const struct json_value *v)
{
    return v + v->size;
}

/* The value of member key in obj, or NULL (binary search: O(log n)). */
const struct json_value *json_object_get(const struct json_value *obj, const char *key, size_t len);

/* JSON Schema equality: numbers by mathematical value (1 == 1.0 == 1e0),
 * strings by bytes, arrays in order, objects regardless of member order. */
bool json_equal(const struct json_value *a, const struct json_value *b);

/* A total order consistent with json_equal: <0, 0, >0. */
int json_compare(const struct json_value *a, const struct json_value *b);

/* Whether the items of array are pairwise unequal. scratch holds array->len
 * uint32_t. On a duplicate, *first and *second are the two item indexes. */
bool json_unique(const struct json_value *array, uint32_t *scratch, uint32_t *first,
                 uint32_t *second);

/* Exact comparison of two numbers (any size or precision): <0, 0, >0. */
int json_number_cmp(const struct json_value *a, const struct json_value *b);

/* Significant decimal digits of a number (0 for zero). */
uint32_t json_number_digits(const struct json_value *n);

/* Whether n is an integer multiple of divisor (> 0, at most 18 significant
 * digits): 1 yes, 0 no, -1 divisor out of that range. Exact. */
int json_number_multiple_of(const struct json_value *n, const struct json_value *divisor);

/* A non-negative integral number as uint64_t, saturated at UINT64_MAX.
 * Returns false for negative or fractional numbers. */
bool json_number_u64(const struct json_value *n, uint64_t *out);

/* Code points in valid UTF-8. */
size_t json_utf8_count(const char *s, size_t len);

#endif
