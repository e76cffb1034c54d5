/* JSON Schema (draft 2020-12) validation of request bodies.
 *
 * A pure module: schema_compile() reads the schema (and the files its $refs
 * name) once, at configuration load; the compiled schema is immutable and
 * shared read-only by any number of threads. schema_validate() does no I/O
 * and takes all its memory from one arena: schema_validate() mallocs and
 * frees it once per call, schema_validate_in() uses one the caller owns.
 *
 * Supported: every draft 2020-12 applicator and validation keyword except
 * $dynamicRef/$dynamicAnchor and $vocabulary; $ref to JSON Pointers, $anchor
 * and embedded $id resources, and to other files (a relative reference is
 * resolved against the referring file, the root file living in base_dir; a
 * reference never leaves base_dir). format asserts date-time, email, uuid,
 * ipv4, ipv6 and uri when asked to; content* and the usual annotations are
 * accepted and ignored, as are keywords starting with "x-". Anything else,
 * including unknown keywords and keywords of older drafts, fails compilation.
 * pattern and patternProperties are ECMA-262 regular expressions, compiled
 * with PCRE2 after translating what differs (\s, ., \u, \p{...}).
 */
#ifndef RINGGATE_SCHEMA_H
#define RINGGATE_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>

#define SCHEMA_DEFAULT_DEPTH 128 /* nesting allowed in validated bodies */

struct schema;

struct schema_options {
    bool assert_format;     /* format date-time, email, uuid, ipv4, ipv6, uri assert; others fail */
    unsigned max_depth;     /* nesting allowed in validated bodies; 0: SCHEMA_DEFAULT_DEPTH */
    const char *map_prefix; /* absolute URI prefix (e.g. "https://schemas.example.com/")... */
    const char *map_dir;    /* ...whose documents are read from this directory instead */
};

struct schema_error {
    char message[512]; /* "FILE:LINE:COL: message" */
};

enum { SCHEMA_VALID = 0, SCHEMA_INVALID = 1, SCHEMA_BAD_JSON = 2 };

struct schema_result {
    size_t offset;           /* SCHEMA_BAD_JSON: byte offset of the problem in the body */
    char instance_path[512]; /* SCHEMA_INVALID: JSON Pointer of the first failing place */
    char schema_path[512];   /* SCHEMA_INVALID: JSON Pointer of the failing keyword; in another
                                file than the root, "FILE#POINTER" */
    char message[256];       /* both: short human text (UTF-8, may quote body bytes) */
};

/* Compile the schema text of file (used in messages; its directory for
 * references is base_dir, which may be NULL when it names no other file).
 * Returns NULL with err->message set on an invalid or unsupported schema. */
struct schema *schema_compile(const char *text, size_t len, const char *file, const char *base_dir,
                              struct schema_error *err);
struct schema *schema_compile_opts(const char *text, size_t len, const char *file,
                                   const char *base_dir, const struct schema_options *opts,
                                   struct schema_error *err);
void schema_free(struct schema *s);

/* SCHEMA_VALID, SCHEMA_INVALID or SCHEMA_BAD_JSON, with res filled in.
 * Validation that would exceed its step or memory budget (pathological
 * inputs) fails closed as SCHEMA_INVALID. */
int schema_validate(const struct schema *s, const char *body, size_t len,
                    struct schema_result *res);

/* The same within arena, which must hold schema_arena_size(s, len) bytes
 * (else SCHEMA_INVALID) and be aligned for any type: malloc'd, or a
 * per-worker buffer. Most of it is never touched for ordinary bodies. */
size_t schema_arena_size(const struct schema *s, size_t len);
int schema_validate_in(const struct schema *s, const char *body, size_t len, void *arena,
                       size_t arena_size, struct schema_result *res);

#endif
