/* JSON Schema draft 2020-12: compiling schemas and validating bodies.
 *
 * Compilation turns each schema object into a struct node whose fields are
 * the keywords it uses, with subschemas and $ref targets as pointers, so
 * validation is a plain walk of the instance tree (json.h) against nodes.
 * Annotations for unevaluatedItems/unevaluatedProperties are bitsets over
 * the children of one instance value, passed down only where a node with
 * unevaluated* needs them.
 */
#define PCRE2_CODE_UNIT_WIDTH 8

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <pcre2.h>

#include "json.h"
#include "schema.h"

#define FILE_DEPTH 512       /* nesting allowed in schema files */
#define FILE_MAX (16u << 20) /* largest schema file */
#define EVAL_DEPTH_MAX 1024  /* nested evaluations, bounding C stack use */
#define STEPS_BASE 1000000u  /* evaluation budget: STEPS_BASE + STEPS_PER_BYTE * len */
#define STEPS_PER_BYTE 32u
#define SCRATCH_BASE 16384u /* annotation bitsets and uniqueItems: SCRATCH_BASE + 3 * len */
/* Without JIT (systemd's MemoryDenyWriteExecute forbids it) PCRE2 keeps
 * backtracking frames on a heap vector it doubles from 20 KiB: about 200
 * bytes per repetition of a group, and a string of the body repeats a group
 * at most once per byte. The vectors outgrown stay in the arena: 2.25 times
 * the limit in all. */
#define REGEX_HEAP_MIN_KIB 32u
#define REGEX_HEAP_MAX_KIB 2048u
#define REGEX_MATCH_LIMIT 10000000u

#define DRAFT "https://json-schema.org/draft/2020-12/schema"

/* ---- compile-time memory: everything a schema owns, freed at once ---- */

struct chunk {
    struct chunk *next;
    size_t used, cap;
    max_align_t data[];
};

struct pool {
    struct chunk *head;
};

static void *pool_alloc(struct pool *p, size_t n)
{
    struct chunk *c = p->head;

    n = (n + 15) & ~(size_t)15;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        c = malloc(sizeof *c + cap);
        if (!c) return NULL;
        c->next = p->head;
        c->used = 0;
        c->cap = cap;
        p->head = c;
    }
    void *r = (char *)c->data + c->used;
    c->used += n;
    memset(r, 0, n);
    return r;
}

static void pool_free(struct pool *p)
{
    while (p->head) {
        struct chunk *next = p->head->next;
        free(p->head);
        p->head = next;
    }
}

/* A growable string for building paths, URIs and regexes at compile time. */
struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
    if (b->oom || n >= SIZE_MAX / 4 - b->len) {
        b->oom = true;
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(struct sbuf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

static void sb_char(struct sbuf *b, char c)
{
    sb_add(b, &c, 1);
}

/* ---- compiled schemas ---- */

#define T_INTEGER (1u << 7) /* type bits: 1 << enum json_type, and this */

enum format { F_NONE, F_DATE_TIME, F_EMAIL, F_UUID, F_IPV4, F_IPV6, F_URI };

static const char *const format_names[] = {"", "date-time", "email", "uuid", "ipv4", "ipv6", "uri"};

struct node;

struct entry { /* properties, dependentSchemas, dependentRequired */
    const char *name;
    uint32_t len;
    struct node *schema;
    const struct json_value *names; /* dependentRequired: array of strings */
};

struct pattern_entry {
    pcre2_code *re;
    struct node *schema;
};

struct doc;

struct node {
    const char *path; /* JSON Pointer of this schema ("FILE#POINTER" outside the root file) */
    int8_t boolean;   /* 0 or 1 for the false and true schemas, -1 for an object */
    uint8_t types;    /* 0: no type keyword */
    uint8_t format;
    bool unique_items, has_min_contains;
    const struct json_value *konst, *enumv, *required;
    const struct json_value *multiple_of, *maximum, *exclusive_maximum, *minimum,
        *exclusive_minimum;
    uint64_t max_length, min_length, max_items, min_items, max_contains, min_contains;
    uint64_t max_props, min_props;
    pcre2_code *pattern;
    struct node *ref, *not_, *if_, *then_, *else_;
    struct node *items, *contains, *additional, *property_names;
    struct node *unevaluated_items, *unevaluated_props;
    struct node **all_of, **any_of, **one_of, **prefix;
    uint32_t n_all, n_any, n_one, n_prefix;
    struct entry *props, *dep_schemas, *dep_required;
    uint32_t n_props, n_dep_schemas, n_dep_required;
    struct pattern_entry *pattern_props;
    uint32_t n_pattern_props;
    /* compile time only */
    const char *base;
    struct node *next_all;
    const struct doc *doc;
    uint32_t ref_pos, stack_pos;
    uint8_t mark;
};

struct doc { /* one schema file */
    struct doc *next;
    const char *label; /* "" for the root file; else its name in schema paths */
    const char *file;  /* in messages */
    const char *uri;   /* where it was retrieved from */
    char *text;
    size_t len;
    void *arena;
    struct json_doc json;
    struct node **compiled; /* by value index; compile time only */
    const char **base;      /* base URI of each schema value scanned; compile time only */
};

struct code_list {
    struct code_list *next;
    pcre2_code *re;
};

struct schema {
    struct pool pool;
    struct node *root;
    struct doc *docs;
    struct code_list *codes;
    bool has_patterns;
    unsigned max_depth;
};

/* ---- the compiler ---- */

struct resource { /* a schema reachable by URI: "$id" resources and "$anchor"s */
    struct resource *next;
    const char *uri, *anchor;
    struct doc *doc;
    const struct json_value *v;
};

struct pending { /* a $ref resolved once the tree is compiled */
    struct pending *next;
    struct node *node;
    struct doc *doc;
    const struct json_value *ref;
    const char *base;
};

struct compiler {
    struct schema *s;
    struct schema_error *err;
    bool failed;
    const char *base_dir;
    struct schema_options opts;
    struct resource *resources;
    struct pending *pending;
    struct node *nodes;
    size_t n_nodes;
};

static void line_col(const char *text, size_t pos, unsigned *line, unsigned *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < pos; i++) {
        if (text[i] == '\n') {
            ++*line;
            *col = 1;
        } else if (((unsigned char)text[i] & 0xC0) != 0x80) {
            ++*col;
        }
    }
}

static int error_at(struct compiler *c, const struct doc *d, size_t pos, const char *fmt, ...)
{
    char *m = c->err->message;
    size_t cap = sizeof c->err->message;
    unsigned line, col;
    va_list ap;

    if (c->failed) return -1;
    c->failed = true;
    line_col(d->text, pos, &line, &col);
    int n = snprintf(m, cap, "%s:%u:%u: ", d->file, line, col);
    if (n < 0 || (size_t)n >= cap) return -1;
    va_start(ap, fmt);
    vsnprintf(m + n, cap - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

static void *oom(struct compiler *c)
{
    if (!c->failed) {
        c->failed = true;
        snprintf(c->err->message, sizeof c->err->message, "%s:1:1: out of memory",
                 c->s->docs ? c->s->docs->file : "schema");
    }
    return NULL;
}

static void *alloc(struct compiler *c, size_t n)
{
    void *p = pool_alloc(&c->s->pool, n);

    return p ? p : oom(c);
}

static char *pool_strndup(struct compiler *c, const char *s, size_t n)
{
    char *p = alloc(c, n + 1);

    if (p) memcpy(p, s, n);
    return p;
}

/* Whether the JSON string v, as a C string, holds no NUL. */
static bool plain_string(const struct json_value *v)
{
    return v->type == JSON_STRING && !memchr(v->str, '\0', v->len);
}

static bool str_is(const struct json_value *v, const char *s)
{
    return v->len == strlen(s) && memcmp(v->str, s, v->len) == 0;
}

/* ---- URIs (RFC 3986 section 5.2 reference resolution) ---- */

struct span {
    const char *p;
    size_t n;
    bool set;
};

struct uri {
    struct span scheme, auth, path, query, frag;
};

static bool is_alpha(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static bool is_hex(int c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int hex_val(int c)
{
    return is_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10;
}

static size_t scheme_len(const char *s)
{
    size_t k = 1;

    if (!is_alpha(s[0])) return 0;
    while (is_alpha(s[k]) || is_digit(s[k]) || s[k] == '+' || s[k] == '-' || s[k] == '.')
        k++;
    return s[k] == ':' ? k : 0;
}

static void uri_parse(const char *s, struct uri *u)
{
    size_t i = scheme_len(s), j;

    memset(u, 0, sizeof *u);
    if (i) {
        u->scheme = (struct span){s, i, true};
        i++;
    }
    if (s[i] == '/' && s[i + 1] == '/') {
        for (j = i + 2; s[j] && !strchr("/?#", s[j]); j++)
            ;
        u->auth = (struct span){s + i + 2, j - i - 2, true};
        i = j;
    }
    for (j = i; s[j] && s[j] != '?' && s[j] != '#'; j++)
        ;
    u->path = (struct span){s + i, j - i, true};
    i = j;
    if (s[i] == '?') {
        for (j = i + 1; s[j] && s[j] != '#'; j++)
            ;
        u->query = (struct span){s + i + 1, j - i - 1, true};
        i = j;
    }
    if (s[i] == '#') u->frag = (struct span){s + i + 1, strlen(s + i + 1), true};
}

/* remove_dot_segments, by segments: "." vanishes, ".." drops the one before. */
static void add_path(struct sbuf *out, const char *p, size_t n)
{
    size_t start = out->len, i = 0;

    if (n && p[0] == '/') {
        sb_char(out, '/');
        i = 1;
        start = out->len;
    }
    while (i <= n) {
        size_t j = i;
        while (j < n && p[j] != '/')
            j++;
        bool last = j >= n;
        size_t seg = j - i;
        if (seg == 1 && p[i] == '.') {
            /* nothing */
        } else if (seg == 2 && p[i] == '.' && p[i + 1] == '.') {
            if (out->len > start) {
                out->len--; /* the '/' ending the previous segment */
                while (out->len > start && out->p[out->len - 1] != '/')
                    out->len--;
            }
        } else {
            sb_add(out, p + i, seg);
            if (!last) sb_char(out, '/');
        }
        if (out->p) out->p[out->len] = '\0';
        i = j + 1;
    }
}

static char *uri_resolve(struct compiler *c, const char *base, const char *ref)
{
    struct uri b, r;
    struct sbuf out = {0};
    struct span query;

    uri_parse(base, &b);
    uri_parse(ref, &r);
    struct span scheme = r.scheme.set ? r.scheme : b.scheme;
    struct span auth = r.scheme.set || r.auth.set ? r.auth : b.auth;
    if (scheme.set) {
        sb_add(&out, scheme.p, scheme.n);
        sb_char(&out, ':');
    }
    if (auth.set) {
        sb_str(&out, "//");
        sb_add(&out, auth.p, auth.n);
    }
    if (r.scheme.set || r.auth.set || (r.path.n && r.path.p[0] == '/')) {
        add_path(&out, r.path.p, r.path.n);
        query = r.query;
    } else if (r.path.n == 0) {
        sb_add(&out, b.path.p, b.path.n);
        query = r.query.set ? r.query : b.query;
    } else {
        struct sbuf merged = {0};
        if (b.auth.set && b.path.n == 0) {
            sb_char(&merged, '/');
        } else {
            const char *slash = NULL;
            for (size_t i = 0; i < b.path.n; i++)
                if (b.path.p[i] == '/') slash = b.path.p + i;
            if (slash) sb_add(&merged, b.path.p, (size_t)(slash - b.path.p) + 1);
        }
        sb_add(&merged, r.path.p, r.path.n);
        if (merged.p) add_path(&out, merged.p, merged.len);
        out.oom |= merged.oom;
        free(merged.p);
        query = r.query;
    }
    if (query.set) {
        sb_char(&out, '?');
        sb_add(&out, query.p, query.n);
    }
    if (r.frag.set) {
        sb_char(&out, '#');
        sb_add(&out, r.frag.p, r.frag.n);
    }
    char *s = out.oom ? NULL : pool_strndup(c, out.p ? out.p : "", out.len);
    free(out.p);
    return s ? s : oom(c);
}

/* Percent-decode s[0..n) into a pool string; NULL if it decodes a NUL. */
static char *percent_decode(struct compiler *c, const char *s, size_t n, size_t *out_len)
{
    char *out = alloc(c, n + 1);
    size_t o = 0;

    if (!out) return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && is_hex(s[i + 1]) && is_hex(s[i + 2])) {
            out[o++] = (char)(hex_val(s[i + 1]) * 16 + hex_val(s[i + 2]));
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    if (out_len) *out_len = o;
    return memchr(out, '\0', o) ? NULL : out;
}

/* ---- documents and resources ---- */

static struct resource *find_resource(struct compiler *c, const char *uri, const char *anchor)
{
    for (struct resource *r = c->resources; r; r = r->next) {
        if (strcmp(r->uri, uri) != 0) continue;
        if (anchor ? r->anchor && strcmp(r->anchor, anchor) == 0 : !r->anchor) return r;
    }
    return NULL;
}

static int add_resource(struct compiler *c, struct doc *d, const struct json_value *v,
                        const char *uri, const char *anchor)
{
    struct resource *r = find_resource(c, uri, anchor);

    if (r)
        return r->v == v ? 0
                         : error_at(c, d, v->pos, "%s \"%s%s%s\" is defined twice",
                                    anchor ? "$anchor" : "$id", uri, anchor ? "#" : "",
                                    anchor ? anchor : "");
    r = alloc(c, sizeof *r);
    if (!r) return -1;
    *r = (struct resource){c->resources, uri, anchor, d, v};
    c->resources = r;
    return 0;
}

static struct doc *add_doc(struct compiler *c, const char *file, const char *label, const char *uri,
                           const char *text, size_t len)
{
    struct doc *d = alloc(c, sizeof *d);
    struct json_error jerr;

    if (!d) return NULL;
    d->file = file;
    d->label = label;
    d->uri = uri;
    d->len = len;
    d->text = malloc(len + 1);
    d->next = c->s->docs;
    c->s->docs = d;
    if (!d->text) return oom(c);
    memcpy(d->text, text, len);
    d->text[len] = '\0';
    size_t size = json_arena_size(len, FILE_DEPTH);
    d->arena = malloc(size ? size : 1);
    if (!d->arena) return oom(c);
    if (json_parse(d->text, len, FILE_DEPTH, d->arena, size, &d->json, &jerr) < 0) {
        error_at(c, d, jerr.offset, "invalid JSON: %s", jerr.message);
        return NULL;
    }
    d->compiled = calloc(d->json.count, sizeof *d->compiled);
    d->base = calloc(d->json.count, sizeof *d->base);
    if (!d->compiled || !d->base) return oom(c);
    return d;
}

static uint32_t value_index(const struct doc *d, const struct json_value *v)
{
    return (uint32_t)(v - d->json.root);
}

/* ---- keywords ---- */

enum sub { SUB_NONE, SUB_ONE, SUB_MAP, SUB_LIST };

typedef int (*keyword_fn)(struct compiler *c, struct doc *d, struct node *n,
                          const struct json_value *key, const struct json_value *val);

struct keyword {
    const char *name;
    uint8_t sub; /* where subschemas are, for finding $id and $anchor */
    keyword_fn compile;
};

static const struct keyword *find_keyword(const struct json_value *key);

static int scan(struct compiler *c, struct doc *d, const struct json_value *v, const char *base);

static int scan_children(struct compiler *c, struct doc *d, const struct json_value *v,
                         const char *base)
{
    const struct json_value *k = json_first(v);

    for (uint32_t i = 0; i < v->len; i++, k = json_next(k + 1)) {
        const struct keyword *kw = find_keyword(k);
        const struct json_value *val = k + 1, *x = json_first(val);
        if (!kw || kw->sub == SUB_NONE) continue;
        if (kw->sub == SUB_ONE && scan(c, d, val, base) < 0) return -1;
        if (kw->sub == SUB_LIST && val->type == JSON_ARRAY)
            for (uint32_t j = 0; j < val->len; j++, x = json_next(x))
                if (scan(c, d, x, base) < 0) return -1;
        if (kw->sub == SUB_MAP && val->type == JSON_OBJECT)
            for (uint32_t j = 0; j < val->len; j++, x = json_next(x + 1))
                if (scan(c, d, x + 1, base) < 0) return -1;
    }
    return 0;
}

static bool valid_anchor(const struct json_value *v)
{
    if (v->len == 0 || !(is_alpha(v->str[0]) || v->str[0] == '_')) return false;
    for (uint32_t i = 1; i < v->len; i++) {
        char ch = v->str[i];
        if (!is_alpha(ch) && !is_digit(ch) && !strchr("-_.:", ch)) return false;
    }
    return true;
}

/* Register the $id resources and $anchors of the schema v and below, and
 * record the base URI of every schema value, before anything is compiled:
 * a $ref may point forward. */
static int scan(struct compiler *c, struct doc *d, const struct json_value *v, const char *base)
{
    uint32_t index = value_index(d, v);

    if (d->base[index] || (v->type != JSON_OBJECT && v->type != JSON_TRUE && v->type != JSON_FALSE))
        return 0;
    if (v->type == JSON_OBJECT) {
        const struct json_value *id = json_object_get(v, "$id", 3);
        const struct json_value *anchor = json_object_get(v, "$anchor", 7);
        if (id && plain_string(id)) {
            char *ref = pool_strndup(c, id->str, id->len);
            if (!ref || !(base = uri_resolve(c, base, ref))) return -1;
            char *hash = strchr(base, '#');
            if (hash && hash[1]) return error_at(c, d, id->pos, "$id must not have a fragment");
            if (hash) *hash = '\0';
            if (add_resource(c, d, v, base, NULL) < 0) return -1;
        }
        if (anchor && plain_string(anchor) && valid_anchor(anchor)) {
            char *name = pool_strndup(c, anchor->str, anchor->len);
            if (!name || add_resource(c, d, v, base, name) < 0) return -1;
        }
    }
    d->base[index] = base;
    return v->type == JSON_OBJECT ? scan_children(c, d, v, base) : 0;
}

static void add_pointer_token(struct sbuf *b, const char *s, size_t n)
{
    sb_char(b, '/');
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '~')
            sb_str(b, "~0");
        else if (s[i] == '/')
            sb_str(b, "~1");
        else
            sb_char(b, s[i]);
    }
}

static bool contains(const struct json_value *v, const struct json_value *target)
{
    return target >= v && target < v + v->size;
}

/* The JSON Pointer of v in its document, for schema paths. */
static const char *pointer_of(struct compiler *c, const struct doc *d, const struct json_value *v)
{
    struct sbuf b = {0};
    const struct json_value *cur = d->json.root;
    char num[16];

    if (d->label[0]) {
        sb_str(&b, d->label);
        sb_char(&b, '#');
    }
    while (cur != v) {
        const struct json_value *x = json_first(cur);
        if (cur->type == JSON_ARRAY) {
            uint32_t i = 0;
            for (; !contains(x, v); x = json_next(x))
                i++;
            snprintf(num, sizeof num, "/%u", i);
            sb_str(&b, num);
            cur = x;
        } else {
            while (!contains(x + 1, v))
                x = json_next(x + 1);
            add_pointer_token(&b, x->str, x->len);
            cur = x + 1;
        }
    }
    char *s = b.oom ? NULL : pool_strndup(c, b.p ? b.p : "", b.len);
    free(b.p);
    return s ? s : oom(c);
}

static struct node *compile(struct compiler *c, struct doc *d, const struct json_value *v);

static bool is_schema(const struct json_value *v)
{
    return v->type == JSON_OBJECT || v->type == JSON_TRUE || v->type == JSON_FALSE;
}

static int need(struct compiler *c, struct doc *d, const struct json_value *key, bool ok,
                const char *what)
{
    return ok ? 0 : error_at(c, d, key->pos, "\"%.*s\" must be %s", (int)key->len, key->str, what);
}

static int kw_schema(struct compiler *c, struct doc *d, const struct json_value *key,
                     const struct json_value *val, struct node **out)
{
    if (need(c, d, key, is_schema(val), "a schema (object or boolean)") < 0) return -1;
    *out = compile(c, d, val);
    return *out ? 0 : -1;
}

static int kw_schema_list(struct compiler *c, struct doc *d, const struct json_value *key,
                          const struct json_value *val, struct node ***out, uint32_t *count)
{
    const struct json_value *x = json_first(val);

    if (need(c, d, key, val->type == JSON_ARRAY && val->len > 0, "a non-empty array of schemas") <
        0)
        return -1;
    *out = alloc(c, val->len * sizeof **out);
    if (!*out) return -1;
    for (uint32_t i = 0; i < val->len; i++, x = json_next(x))
        if (kw_schema(c, d, key, x, &(*out)[i]) < 0) return -1;
    *count = val->len;
    return 0;
}

static int entry_cmp(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    int r = memcmp(x->name, y->name, x->len < y->len ? x->len : y->len);

    return r ? r : (x->len > y->len) - (x->len < y->len);
}

static int kw_schema_map(struct compiler *c, struct doc *d, const struct json_value *key,
                         const struct json_value *val, struct entry **out, uint32_t *count)
{
    const struct json_value *k = json_first(val);

    if (need(c, d, key, val->type == JSON_OBJECT, "an object of schemas") < 0) return -1;
    *out = alloc(c, (val->len + 1) * sizeof **out);
    if (!*out) return -1;
    for (uint32_t i = 0; i < val->len; i++, k = json_next(k + 1)) {
        (*out)[i].name = k->str;
        (*out)[i].len = k->len;
        if (kw_schema(c, d, k, k + 1, &(*out)[i].schema) < 0) return -1;
    }
    *count = val->len;
    qsort(*out, val->len, sizeof **out, entry_cmp);
    return 0;
}

static bool unique_strings(const struct json_value *array)
{
    const struct json_value *x = json_first(array);

    for (uint32_t i = 0; i < array->len; i++, x = json_next(x)) {
        if (x->type != JSON_STRING) return false;
        for (const struct json_value *y = json_first(array); y != x; y = json_next(y))
            if (json_equal(x, y)) return false;
    }
    return true;
}

static int kw_count(struct compiler *c, struct doc *d, const struct json_value *key,
                    const struct json_value *val, uint64_t *out)
{
    bool ok = val->type == JSON_NUMBER && json_number_u64(val, out);

    return need(c, d, key, ok, "a non-negative integer");
}

static int kw_number(struct compiler *c, struct doc *d, const struct json_value *key,
                     const struct json_value *val, const struct json_value **out)
{
    *out = val;
    return need(c, d, key, val->type == JSON_NUMBER, "a number");
}

static int kw_type(struct compiler *c, struct doc *d, struct node *n, const struct json_value *key,
                   const struct json_value *val)
{
    static const char *const names[] = {"null",   "boolean", "boolean", "number",
                                        "string", "array",   "object",  "integer"};
    const struct json_value *x = val;
    uint32_t count = 1;

    if (val->type == JSON_ARRAY) {
        if (need(c, d, key, val->len > 0 && unique_strings(val), "non-empty and unique") < 0)
            return -1;
        x = json_first(val);
        count = val->len;
    }
    for (uint32_t i = 0; i < count; i++, x = json_next(x)) {
        unsigned bits = 0;
        for (unsigned t = 0; t < 8; t++)
            if (x->type == JSON_STRING && str_is(x, names[t])) bits |= t == 7 ? T_INTEGER : 1u << t;
        if (!bits)
            return error_at(c, d, x->pos,
                            "unknown type (expected null, boolean, object, array, "
                            "number, string or integer)");
        n->types |= (uint8_t)bits;
    }
    return 0;
}

static int kw_enum(struct compiler *c, struct doc *d, struct node *n, const struct json_value *key,
                   const struct json_value *val)
{
    n->enumv = val;
    return need(c, d, key, val->type == JSON_ARRAY, "an array");
}

static int kw_const(struct compiler *c, struct doc *d, struct node *n, const struct json_value *key,
                    const struct json_value *val)
{
    (void)c, (void)d, (void)key;
    n->konst = val;
    return 0;
}

static int kw_multiple_of(struct compiler *c, struct doc *d, struct node *n,
                          const struct json_value *key, const struct json_value *val)
{
    if (need(c, d, key, val->type == JSON_NUMBER && val->str[0] != '-' && json_number_digits(val),
             "a number greater than 0") < 0)
        return -1;
    if (json_number_digits(val) > 18)
        return error_at(c, d, key->pos,
                        "multipleOf with more than 18 significant digits is "
                        "not supported");
    n->multiple_of = val;
    return 0;
}

static int kw_maximum(struct compiler *c, struct doc *d, struct node *n,
                      const struct json_value *key, const struct json_value *val)
{
    return kw_number(c, d, key, val, &n->maximum);
}

static int kw_exclusive_maximum(struct compiler *c, struct doc *d, struct node *n,
                                const struct json_value *key, const struct json_value *val)
{
    return kw_number(c, d, key, val, &n->exclusive_maximum);
}

static int kw_minimum(struct compiler *c, struct doc *d, struct node *n,
                      const struct json_value *key, const struct json_value *val)
{
    return kw_number(c, d, key, val, &n->minimum);
}

static int kw_exclusive_minimum(struct compiler *c, struct doc *d, struct node *n,
                                const struct json_value *key, const struct json_value *val)
{
    return kw_number(c, d, key, val, &n->exclusive_minimum);
}

static int kw_max_length(struct compiler *c, struct doc *d, struct node *n,
                         const struct json_value *key, const struct json_value *val)
{
    return kw_count(c, d, key, val, &n->max_length);
}

static int kw_min_length(struct compiler *c, struct doc *d, struct node *n,
                         const struct json_value *key, const struct json_value *val)
{
    return kw_count(c, d, key, val, &n->min_length);
}

static int kw_max_items(struct compiler *c, struct doc *d, struct node *n,
                        const struct json_value *key, const struct json_value *val)
{
    return kw_count(c, d, key, val, &n->max_items);
}

static int kw_min_items(struct compiler *c, struct doc *d, struct node *n,
                        const struct json_value *key, const struct json_value *val)
{
    return kw_count(c, d, key, val, &n->min_items);
}

static int kw_max_contains(struct compiler *c, struct doc *d, struct node *n,
                           const struct json_value *key, const struct json_value *val)
{
    return kw_count(c, d, key, val, &n->max_contains);
}

static int kw_min_contains(struct compiler *c, struct doc *d, struct node *n,
                           const struct json_value *key, const struct json_value *val)
{
    n->has_min_contains = true;
    return kw_count(c, d, key, val, &n->min_contains);
}

static int kw_max_properties(struct compiler *c, struct doc *d, struct node *n,
                             const struct json_value *key, const struct json_value *val)
{
    return kw_count(c, d, key, val, &n->max_props);
}

static int kw_min_properties(struct compiler *c, struct doc *d, struct node *n,
                             const struct json_value *key, const struct json_value *val)
{
    return kw_count(c, d, key, val, &n->min_props);
}

static int kw_unique_items(struct compiler *c, struct doc *d, struct node *n,
                           const struct json_value *key, const struct json_value *val)
{
    n->unique_items = val->type == JSON_TRUE;
    return need(c, d, key, val->type == JSON_TRUE || val->type == JSON_FALSE, "a boolean");
}

static int kw_required(struct compiler *c, struct doc *d, struct node *n,
                       const struct json_value *key, const struct json_value *val)
{
    n->required = val;
    return need(c, d, key, val->type == JSON_ARRAY && unique_strings(val),
                "an array of unique strings");
}

static int kw_dependent_required(struct compiler *c, struct doc *d, struct node *n,
                                 const struct json_value *key, const struct json_value *val)
{
    const struct json_value *k = json_first(val);

    if (need(c, d, key, val->type == JSON_OBJECT, "an object") < 0) return -1;
    n->dep_required = alloc(c, (val->len + 1) * sizeof *n->dep_required);
    if (!n->dep_required) return -1;
    for (uint32_t i = 0; i < val->len; i++, k = json_next(k + 1)) {
        if (need(c, d, k, k[1].type == JSON_ARRAY && unique_strings(k + 1),
                 "an array of unique strings") < 0)
            return -1;
        n->dep_required[i] = (struct entry){k->str, k->len, NULL, k + 1};
    }
    n->n_dep_required = val->len;
    return 0;
}

static int kw_items(struct compiler *c, struct doc *d, struct node *n, const struct json_value *key,
                    const struct json_value *val)
{
    return kw_schema(c, d, key, val, &n->items);
}

static int kw_prefix_items(struct compiler *c, struct doc *d, struct node *n,
                           const struct json_value *key, const struct json_value *val)
{
    return kw_schema_list(c, d, key, val, &n->prefix, &n->n_prefix);
}

static int kw_contains(struct compiler *c, struct doc *d, struct node *n,
                       const struct json_value *key, const struct json_value *val)
{
    return kw_schema(c, d, key, val, &n->contains);
}

static int kw_properties(struct compiler *c, struct doc *d, struct node *n,
                         const struct json_value *key, const struct json_value *val)
{
    return kw_schema_map(c, d, key, val, &n->props, &n->n_props);
}

static int kw_dependent_schemas(struct compiler *c, struct doc *d, struct node *n,
                                const struct json_value *key, const struct json_value *val)
{
    return kw_schema_map(c, d, key, val, &n->dep_schemas, &n->n_dep_schemas);
}

static int kw_defs(struct compiler *c, struct doc *d, struct node *n, const struct json_value *key,
                   const struct json_value *val)
{
    struct entry *defs;
    uint32_t count;

    (void)n;
    return kw_schema_map(c, d, key, val, &defs, &count);
}

static int kw_content_schema(struct compiler *c, struct doc *d, struct node *n,
                             const struct json_value *key, const struct json_value *val)
{
    struct node *ignored;

    (void)n;
    return kw_schema(c, d, key, val, &ignored); /* an annotation: checked, never applied */
}

static int kw_additional_properties(struct compiler *c, struct doc *d, struct node *n,
                                    const struct json_value *key, const struct json_value *val)
{
    return kw_schema(c, d, key, val, &n->additional);
}

static int kw_property_names(struct compiler *c, struct doc *d, struct node *n,
                             const struct json_value *key, const struct json_value *val)
{
    return kw_schema(c, d, key, val, &n->property_names);
}

static int kw_unevaluated_items(struct compiler *c, struct doc *d, struct node *n,
                                const struct json_value *key, const struct json_value *val)
{
    return kw_schema(c, d, key, val, &n->unevaluated_items);
}

static int kw_unevaluated_properties(struct compiler *c, struct doc *d, struct node *n,
                                     const struct json_value *key, const struct json_value *val)
{
    return kw_schema(c, d, key, val, &n->unevaluated_props);
}

static int kw_all_of(struct compiler *c, struct doc *d, struct node *n,
                     const struct json_value *key, const struct json_value *val)
{
    return kw_schema_list(c, d, key, val, &n->all_of, &n->n_all);
}

static int kw_any_of(struct compiler *c, struct doc *d, struct node *n,
                     const struct json_value *key, const struct json_value *val)
{
    return kw_schema_list(c, d, key, val, &n->any_of, &n->n_any);
}

static int kw_one_of(struct compiler *c, struct doc *d, struct node *n,
                     const struct json_value *key, const struct json_value *val)
{
    return kw_schema_list(c, d, key, val, &n->one_of, &n->n_one);
}

static int kw_not(struct compiler *c, struct doc *d, struct node *n, const struct json_value *key,
                  const struct json_value *val)
{
    return kw_schema(c, d, key, val, &n->not_);
}

static int kw_if(struct compiler *c, struct doc *d, struct node *n, const struct json_value *key,
                 const struct json_value *val)
{
    return kw_schema(c, d, key, val, &n->if_);
}

static int kw_then(struct compiler *c, struct doc *d, struct node *n, const struct json_value *key,
                   const struct json_value *val)
{
    return kw_schema(c, d, key, val, &n->then_);
}

static int kw_else(struct compiler *c, struct doc *d, struct node *n, const struct json_value *key,
                   const struct json_value *val)
{
    return kw_schema(c, d, key, val, &n->else_);
}

static int kw_ref(struct compiler *c, struct doc *d, struct node *n, const struct json_value *key,
                  const struct json_value *val)
{
    struct pending *p;

    if (need(c, d, key, plain_string(val), "a URI reference string") < 0) return -1;
    p = alloc(c, sizeof *p);
    if (!p) return -1;
    n->ref_pos = key->pos;
    *p = (struct pending){c->pending, n, d, val, n->base};
    c->pending = p;
    return 0;
}

static int kw_id(struct compiler *c, struct doc *d, struct node *n, const struct json_value *key,
                 const struct json_value *val)
{
    (void)n;
    return need(c, d, key, plain_string(val), "a URI reference string"); /* used by scan() */
}

static int kw_anchor(struct compiler *c, struct doc *d, struct node *n,
                     const struct json_value *key, const struct json_value *val)
{
    (void)n;
    return need(c, d, key, plain_string(val) && valid_anchor(val),
                "a name of letters, digits, '-', '_', '.' and ':' starting with a letter or '_'");
}

static int kw_dialect(struct compiler *c, struct doc *d, struct node *n,
                      const struct json_value *key, const struct json_value *val)
{
    (void)n, (void)key;
    if (val->type == JSON_STRING && (str_is(val, DRAFT) || str_is(val, DRAFT "#"))) return 0;
    return error_at(c, d, val->pos, "unsupported $schema (only " DRAFT ")");
}

static int kw_string(struct compiler *c, struct doc *d, struct node *n,
                     const struct json_value *key, const struct json_value *val)
{
    (void)n;
    return need(c, d, key, val->type == JSON_STRING, "a string");
}

static int kw_boolean(struct compiler *c, struct doc *d, struct node *n,
                      const struct json_value *key, const struct json_value *val)
{
    (void)n;
    return need(c, d, key, val->type == JSON_TRUE || val->type == JSON_FALSE, "a boolean");
}

static int kw_examples(struct compiler *c, struct doc *d, struct node *n,
                       const struct json_value *key, const struct json_value *val)
{
    (void)n;
    return need(c, d, key, val->type == JSON_ARRAY, "an array");
}

static int kw_any(struct compiler *c, struct doc *d, struct node *n, const struct json_value *key,
                  const struct json_value *val)
{
    (void)c, (void)d, (void)n, (void)key, (void)val;
    return 0;
}

static int kw_format(struct compiler *c, struct doc *d, struct node *n,
                     const struct json_value *key, const struct json_value *val)
{
    if (need(c, d, key, val->type == JSON_STRING, "a string") < 0) return -1;
    if (!c->opts.assert_format) return 0; /* an annotation */
    for (uint8_t f = F_DATE_TIME; f <= F_URI; f++) {
        if (str_is(val, format_names[f])) {
            n->format = f;
            return 0;
        }
    }
    return error_at(c, d, val->pos,
                    "format \"%.*s\" cannot be asserted (supported: date-time, "
                    "email, uuid, ipv4, ipv6, uri)",
                    (int)val->len, val->str);
}

static int kw_pattern(struct compiler *c, struct doc *d, struct node *n,
                      const struct json_value *key, const struct json_value *val);
static int kw_pattern_properties(struct compiler *c, struct doc *d, struct node *n,
                                 const struct json_value *key, const struct json_value *val);

static const struct keyword keywords[] = {
    {"type", SUB_NONE, kw_type},
    {"enum", SUB_NONE, kw_enum},
    {"const", SUB_NONE, kw_const},
    {"multipleOf", SUB_NONE, kw_multiple_of},
    {"maximum", SUB_NONE, kw_maximum},
    {"exclusiveMaximum", SUB_NONE, kw_exclusive_maximum},
    {"minimum", SUB_NONE, kw_minimum},
    {"exclusiveMinimum", SUB_NONE, kw_exclusive_minimum},
    {"maxLength", SUB_NONE, kw_max_length},
    {"minLength", SUB_NONE, kw_min_length},
    {"pattern", SUB_NONE, kw_pattern},
    {"format", SUB_NONE, kw_format},
    {"maxItems", SUB_NONE, kw_max_items},
    {"minItems", SUB_NONE, kw_min_items},
    {"uniqueItems", SUB_NONE, kw_unique_items},
    {"maxContains", SUB_NONE, kw_max_contains},
    {"minContains", SUB_NONE, kw_min_contains},
    {"maxProperties", SUB_NONE, kw_max_properties},
    {"minProperties", SUB_NONE, kw_min_properties},
    {"required", SUB_NONE, kw_required},
    {"dependentRequired", SUB_NONE, kw_dependent_required},
    {"items", SUB_ONE, kw_items},
    {"prefixItems", SUB_LIST, kw_prefix_items},
    {"contains", SUB_ONE, kw_contains},
    {"properties", SUB_MAP, kw_properties},
    {"patternProperties", SUB_MAP, kw_pattern_properties},
    {"additionalProperties", SUB_ONE, kw_additional_properties},
    {"propertyNames", SUB_ONE, kw_property_names},
    {"dependentSchemas", SUB_MAP, kw_dependent_schemas},
    {"unevaluatedItems", SUB_ONE, kw_unevaluated_items},
    {"unevaluatedProperties", SUB_ONE, kw_unevaluated_properties},
    {"allOf", SUB_LIST, kw_all_of},
    {"anyOf", SUB_LIST, kw_any_of},
    {"oneOf", SUB_LIST, kw_one_of},
    {"not", SUB_ONE, kw_not},
    {"if", SUB_ONE, kw_if},
    {"then", SUB_ONE, kw_then},
    {"else", SUB_ONE, kw_else},
    {"$ref", SUB_NONE, kw_ref},
    {"$defs", SUB_MAP, kw_defs},
    {"$id", SUB_NONE, kw_id},
    {"$anchor", SUB_NONE, kw_anchor},
    {"$schema", SUB_NONE, kw_dialect},
    {"$comment", SUB_NONE, kw_string},
    {"title", SUB_NONE, kw_string},
    {"description", SUB_NONE, kw_string},
    {"default", SUB_NONE, kw_any},
    {"examples", SUB_NONE, kw_examples},
    {"deprecated", SUB_NONE, kw_boolean},
    {"readOnly", SUB_NONE, kw_boolean},
    {"writeOnly", SUB_NONE, kw_boolean},
    {"contentEncoding", SUB_NONE, kw_string},
    {"contentMediaType", SUB_NONE, kw_string},
    {"contentSchema", SUB_ONE, kw_content_schema},
};

static const struct keyword *find_keyword(const struct json_value *key)
{
    for (size_t i = 0; i < sizeof keywords / sizeof keywords[0]; i++)
        if (str_is(key, keywords[i].name)) return &keywords[i];
    return NULL;
}

static int unknown_keyword(struct compiler *c, struct doc *d, const struct json_value *key)
{
    static const char *const unsupported[] = {"$dynamicRef",   "$dynamicAnchor",   "$vocabulary",
                                              "$recursiveRef", "$recursiveAnchor", "definitions",
                                              "dependencies",  "additionalItems"};

    if (key->len >= 2 && memcmp(key->str, "x-", 2) == 0)
        return 0; /* the common convention for extension annotations */
    for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++)
        if (str_is(key, unsupported[i]))
            return error_at(c, d, key->pos, "keyword \"%s\" is not supported", unsupported[i]);
    return error_at(c, d, key->pos, "unknown keyword \"%.*s\"",
                    (int)(key->len > 64 ? 64 : key->len), key->str);
}

static struct node *compile(struct compiler *c, struct doc *d, const struct json_value *v)
{
    uint32_t index = value_index(d, v);
    struct node *n = d->compiled[index];

    if (n) return n;
    if (!is_schema(v)) {
        error_at(c, d, v->pos, "a schema must be an object or a boolean");
        return NULL;
    }
    n = alloc(c, sizeof *n);
    if (!n) return NULL;
    d->compiled[index] = n;
    n->doc = d;
    n->base = d->base[index];
    n->next_all = c->nodes;
    c->nodes = n;
    c->n_nodes++;
    n->path = pointer_of(c, d, v);
    if (!n->path) return NULL;
    if (v->type != JSON_OBJECT) {
        n->boolean = v->type == JSON_TRUE;
        return n;
    }
    n->boolean = -1;
    n->max_length = n->max_items = n->max_contains = n->max_props = UINT64_MAX;
    n->min_contains = 1;
    const struct json_value *k = json_first(v);
    for (uint32_t i = 0; i < v->len; i++, k = json_next(k + 1)) {
        const struct keyword *kw = find_keyword(k);
        if (kw ? kw->compile(c, d, n, k, k + 1) < 0 : unknown_keyword(c, d, k) < 0) return NULL;
    }
    return n;
}

/* ---- ECMA-262 regular expressions on PCRE2 ---- */

/* JavaScript's \s: WhiteSpace and LineTerminator; and its complement. */
#define JS_SPACE                                                                                   \
    "\\x{09}-\\x{0d}\\x{20}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}"         \
    "\\x{205f}\\x{3000}\\x{feff}"
#define JS_NON_SPACE                                                                               \
    "\\x{00}-\\x{08}\\x{0e}-\\x{1f}\\x{21}-\\x{9f}\\x{a1}-\\x{167f}\\x{1681}-\\x{1fff}"            \
    "\\x{200b}-\\x{2027}\\x{202a}-\\x{202e}\\x{2030}-\\x{205e}\\x{2060}-\\x{2fff}"                 \
    "\\x{3001}-\\x{fefe}\\x{ff00}-\\x{10ffff}"

struct regex_writer {
    const char *s;
    size_t n, i;
    struct sbuf out;
    const char *error;
    bool backrefs;
};

static const char *general_category(const char *name, size_t n)
{
    static const char *const map[][2] = {
        {"Letter", "L"},
        {"Cased_Letter", "L&"},
        {"LC", "L&"},
        {"Uppercase_Letter", "Lu"},
        {"Lowercase_Letter", "Ll"},
        {"Titlecase_Letter", "Lt"},
        {"Modifier_Letter", "Lm"},
        {"Other_Letter", "Lo"},
        {"Mark", "M"},
        {"Combining_Mark", "M"},
        {"Nonspacing_Mark", "Mn"},
        {"Spacing_Mark", "Mc"},
        {"Enclosing_Mark", "Me"},
        {"Number", "N"},
        {"Decimal_Number", "Nd"},
        {"digit", "Nd"},
        {"Letter_Number", "Nl"},
        {"Other_Number", "No"},
        {"Punctuation", "P"},
        {"punct", "P"},
        {"Connector_Punctuation", "Pc"},
        {"Dash_Punctuation", "Pd"},
        {"Open_Punctuation", "Ps"},
        {"Close_Punctuation", "Pe"},
        {"Initial_Punctuation", "Pi"},
        {"Final_Punctuation", "Pf"},
        {"Other_Punctuation", "Po"},
        {"Symbol", "S"},
        {"Math_Symbol", "Sm"},
        {"Currency_Symbol", "Sc"},
        {"Modifier_Symbol", "Sk"},
        {"Other_Symbol", "So"},
        {"Separator", "Z"},
        {"Space_Separator", "Zs"},
        {"Line_Separator", "Zl"},
        {"Paragraph_Separator", "Zp"},
        {"Other", "C"},
        {"Control", "Cc"},
        {"cntrl", "Cc"},
        {"Format", "Cf"},
        {"Surrogate", "Cs"},
        {"Private_Use", "Co"},
        {"Unassigned", "Cn"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strlen(map[i][0]) == n && memcmp(map[i][0], name, n) == 0) return map[i][1];
    return NULL;
}

/* \p{...} and \P{...}: PCRE2 10.42 knows short general category names and
 * script names but not ECMA-262's long names and Name=Value forms. */
static void regex_property(struct regex_writer *w, bool negated)
{
    const char *name = w->s + w->i + 1, *end, *eq;

    if (w->i >= w->n || w->s[w->i] != '{' || !(end = memchr(name, '}', w->n - w->i - 1))) {
        w->error = "\\p needs {name}";
        return;
    }
    size_t n = (size_t)(end - name);
    const char *gc = general_category(name, n), *prefix = "";
    eq = memchr(name, '=', n);
    w->i += n + 2;
    if (eq) {
        size_t ln = (size_t)(eq - name), vn = n - ln - 1;
        if ((ln == 2 && !memcmp(name, "gc", 2)) ||
            (ln == 16 && !memcmp(name, "General_Category", 16))) {
            gc = general_category(eq + 1, vn);
            name = eq + 1;
            n = vn;
        } else if ((ln == 2 && !memcmp(name, "sc", 2)) || (ln == 6 && !memcmp(name, "Script", 6))) {
            prefix = "sc:";
        } else if ((ln == 3 && !memcmp(name, "scx", 3)) ||
                   (ln == 18 && !memcmp(name, "Script_Extensions", 18))) {
            prefix = "scx:";
        } else {
            w->error = "unknown Unicode property";
            return;
        }
        if (*prefix) {
            name = eq + 1;
            n = vn;
        }
    }
    if (n == 8 && !memcmp(name, "Assigned", 8)) {
        negated = !negated;
        gc = "Cn";
    }
    sb_str(&w->out, negated ? "\\P{" : "\\p{");
    sb_str(&w->out, prefix);
    if (gc)
        sb_str(&w->out, gc);
    else
        sb_add(&w->out, name, n);
    sb_char(&w->out, '}');
}

static void regex_hex(struct regex_writer *w, unsigned long cp)
{
    char buf[16];

    snprintf(buf, sizeof buf, "\\x{%lx}", cp);
    sb_str(&w->out, buf);
}

/* Hex digits at the cursor: exactly count of them, or up to '}' for \u{...}. */
static long regex_hex_digits(struct regex_writer *w, size_t count)
{
    long v = 0;
    size_t k = 0;

    for (; k < count && w->i < w->n && is_hex(w->s[w->i]); k++, w->i++)
        v = v * 16 + hex_val(w->s[w->i]);
    return k == count ? v : -1;
}

/* \uXXXX (a surrogate pair makes one code point), \u{X...}, \xXX. */
static void regex_code_unit(struct regex_writer *w, char kind)
{
    long cp;

    if (kind == 'x') {
        cp = regex_hex_digits(w, 2);
    } else if (w->i < w->n && w->s[w->i] == '{') {
        w->i++;
        cp = 0;
        size_t k = 0;
        for (; w->i < w->n && is_hex(w->s[w->i]) && cp <= 0x10FFFF; k++, w->i++)
            cp = cp * 16 + hex_val(w->s[w->i]);
        if (!k || w->i >= w->n || w->s[w->i++] != '}' || cp > 0x10FFFF) cp = -1;
    } else {
        cp = regex_hex_digits(w, 4);
        if (cp >= 0xD800 && cp <= 0xDBFF && w->i + 1 < w->n && w->s[w->i] == '\\' &&
            w->s[w->i + 1] == 'u') {
            size_t at = w->i;
            w->i += 2;
            long lo = regex_hex_digits(w, 4);
            if (lo >= 0xDC00 && lo <= 0xDFFF)
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            else
                w->i = at;
        }
    }
    if (cp < 0 || (cp >= 0xD800 && cp <= 0xDFFF)) {
        w->error = cp < 0 ? "invalid \\x or \\u escape" : "lone surrogate in pattern";
        return;
    }
    regex_hex(w, (unsigned long)cp);
}

static void regex_escape(struct regex_writer *w, bool in_class)
{
    char e;

    if (w->i >= w->n) {
        w->error = "pattern ends with a backslash";
        return;
    }
    e = w->s[w->i++];
    switch (e) {
    case 's':
        sb_str(&w->out, in_class ? JS_SPACE : "[" JS_SPACE "]");
        return;
    case 'S':
        sb_str(&w->out, in_class ? JS_NON_SPACE : "[" JS_NON_SPACE "]");
        return;
    case 'v':
        sb_str(&w->out, "\\x{0b}");
        return;
    case 'p':
    case 'P':
        regex_property(w, e == 'P');
        return;
    case 'u':
    case 'x':
        regex_code_unit(w, e);
        return;
    case '0':
        if (w->i < w->n && is_digit(w->s[w->i])) break;
        sb_str(&w->out, "\\x{00}");
        return;
    case 'c':
        if (w->i >= w->n || !is_alpha(w->s[w->i])) break;
        sb_str(&w->out, "\\c");
        sb_char(&w->out, w->s[w->i++]);
        return;
    case 'b':
        sb_str(&w->out, in_class ? "\\x{08}" : "\\b");
        return;
    case 'B':
    case 'k':
        if (in_class) break;
        w->backrefs |= e == 'k';
        /* fall through */
    case 'd':
    case 'D':
    case 'w':
    case 'W':
    case 'f':
    case 'n':
    case 'r':
    case 't':
    case '^':
    case '$':
    case '\\':
    case '.':
    case '*':
    case '+':
    case '?':
    case '(':
    case ')':
    case '[':
    case ']':
    case '{':
    case '}':
    case '|':
    case '/':
    case '-':
        sb_char(&w->out, '\\');
        sb_char(&w->out, e);
        return;
    default:
        if (e >= '1' && e <= '9' && !in_class) {
            w->backrefs = true;
            sb_char(&w->out, '\\');
            sb_char(&w->out, e);
            return;
        }
        break;
    }
    w->error = "escape not valid in an ECMA-262 pattern";
}

/* Only the ECMA-262 group forms: PCRE2's own ((?i), (?>, (*VERB)...) would
 * change semantics or limits. */
static bool regex_group_ok(const char *s, size_t n)
{
    if (n >= 1 && s[0] == '*') return false;
    if (n < 1 || s[0] != '?') return true;
    if (n >= 2 && (s[1] == ':' || s[1] == '=' || s[1] == '!')) return true;
    if (n >= 3 && s[1] == '<' && (s[2] == '=' || s[2] == '!')) return true;
    return n >= 3 && s[1] == '<' && (is_alpha(s[2]) || s[2] == '_' || s[2] == '$');
}

/* Rewrite an ECMA-262 (u-mode) pattern into PCRE2 syntax; w->error on
 * constructs ECMA-262 does not have. */
static void regex_translate(struct regex_writer *w)
{
    bool in_class = false;

    while (w->i < w->n && !w->error) {
        char ch = w->s[w->i++];
        if (ch == '\\') {
            regex_escape(w, in_class);
        } else if (in_class) {
            if (ch == ']') in_class = false;
            if (ch == '[')
                sb_str(&w->out, "\\["); /* not a POSIX class opener in ECMA-262 */
            else if (ch == '\0')
                sb_str(&w->out, "\\x{00}");
            else
                sb_char(&w->out, ch);
        } else if (ch == '[') {
            in_class = true;
            sb_char(&w->out, '[');
            if (w->i < w->n && w->s[w->i] == '^') sb_char(&w->out, w->s[w->i++]);
        } else if (ch == '.') {
            sb_str(&w->out, "[^\\n\\r\\x{2028}\\x{2029}]");
        } else if (ch == '(' && !regex_group_ok(w->s + w->i, w->n - w->i)) {
            w->error = "group syntax not valid in an ECMA-262 pattern";
        } else if (ch && strchr("*+?}", ch) && w->i < w->n && w->s[w->i] == '+') {
            w->error = "possessive quantifier not valid in an ECMA-262 pattern";
        } else if (ch == '\0') {
            sb_str(&w->out, "\\x{00}");
        } else {
            sb_char(&w->out, ch);
        }
    }
    if (!w->error && in_class) w->error = "unterminated character class";
}

static pcre2_code *regex_compile(struct compiler *c, struct doc *d, const struct json_value *v)
{
    struct regex_writer w = {.s = v->str, .n = v->len};
    int code;
    PCRE2_SIZE at;
    char msg[128];

    regex_translate(&w);
    /* Only a match matters: groups need not capture unless referred to,
     * which makes the interpreter's backtracking frames smaller. */
    uint32_t options = PCRE2_UTF | PCRE2_NO_UTF_CHECK | PCRE2_ALLOW_EMPTY_CLASS |
                       PCRE2_DOLLAR_ENDONLY | PCRE2_MATCH_UNSET_BACKREF | PCRE2_NEVER_BACKSLASH_C |
                       (w.backrefs ? 0 : PCRE2_NO_AUTO_CAPTURE);
    if (w.error || w.out.oom) {
        free(w.out.p);
        error_at(c, d, v->pos, "invalid pattern: %s", w.error ? w.error : "out of memory");
        return NULL;
    }
    pcre2_code *re =
        pcre2_compile((PCRE2_SPTR)(w.out.p ? w.out.p : ""), w.out.len, options, &code, &at, NULL);
    free(w.out.p);
    if (!re) {
        pcre2_get_error_message(code, (PCRE2_UCHAR *)msg, sizeof msg);
        error_at(c, d, v->pos, "invalid pattern: %s", msg);
        return NULL;
    }
    struct code_list *l = alloc(c, sizeof *l);
    if (!l) {
        pcre2_code_free(re);
        return NULL;
    }
    *l = (struct code_list){c->s->codes, re};
    c->s->has_patterns = true;
    c->s->codes = l;
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* without JIT, the interpreter does */
    return re;
}

static int kw_pattern(struct compiler *c, struct doc *d, struct node *n,
                      const struct json_value *key, const struct json_value *val)
{
    if (need(c, d, key, val->type == JSON_STRING, "a string") < 0) return -1;
    n->pattern = regex_compile(c, d, val);
    return n->pattern ? 0 : -1;
}

static int kw_pattern_properties(struct compiler *c, struct doc *d, struct node *n,
                                 const struct json_value *key, const struct json_value *val)
{
    const struct json_value *k = json_first(val);

    if (need(c, d, key, val->type == JSON_OBJECT, "an object of schemas") < 0) return -1;
    n->pattern_props = alloc(c, (val->len + 1) * sizeof *n->pattern_props);
    if (!n->pattern_props) return -1;
    for (uint32_t i = 0; i < val->len; i++, k = json_next(k + 1)) {
        struct pattern_entry *e = &n->pattern_props[i];
        if (!(e->re = regex_compile(c, d, k)) || kw_schema(c, d, k, k + 1, &e->schema) < 0)
            return -1;
    }
    n->n_pattern_props = val->len;
    return 0;
}

/* ---- $ref resolution ---- */

static bool safe_relative_path(const char *p)
{
    for (const char *s = p; *s;) {
        size_t n = strcspn(s, "/");
        if ((n == 2 && s[0] == '.' && s[1] == '.') || n == 0) return false;
        s += n;
        if (*s) s++;
    }
    return *p != '\0';
}

static char *read_file(const char *path, size_t *len, int *error)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    char *text = NULL;

    *error = 0;
    if (!f || fstat(fileno(f), &st) < 0) {
        *error = errno;
    } else if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > FILE_MAX) {
        *error = S_ISREG(st.st_mode) ? EFBIG : EISDIR;
    } else if (!(text = malloc((size_t)st.st_size + 1))) {
        *error = ENOMEM;
    } else if (fread(text, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
        *error = ferror(f) ? EIO : EAGAIN;
        free(text);
        text = NULL;
    }
    if (f) fclose(f);
    *len = text ? (size_t)st.st_size : 0;
    return text;
}

static char *join_path(struct compiler *c, const char *dir, const char *rel)
{
    size_t a = strlen(dir), b = strlen(rel);
    char *p = alloc(c, a + b + 2);

    if (p) {
        memcpy(p, dir, a);
        p[a] = '/';
        memcpy(p + a + 1, rel, b);
    }
    return p;
}

/* The document at the absolute URI abs, read from base_dir (file:///...) or
 * from the mapped directory; 1 when abs names no file we may read. */
static int load(struct compiler *c, const char *abs, struct doc *from, uint32_t pos)
{
    const char *prefix = c->opts.map_prefix, *dir, *rest;
    size_t len;
    int error;

    if (prefix && c->opts.map_dir && !strncmp(abs, prefix, strlen(prefix))) {
        dir = c->opts.map_dir;
        rest = abs + strlen(prefix);
    } else if (!strncmp(abs, "file:///", 8) && c->base_dir) {
        dir = c->base_dir;
        rest = abs + 8;
    } else {
        return 1;
    }
    char *rel = percent_decode(c, rest, strlen(rest), NULL);
    if (!rel || strchr(rel, '?') || !safe_relative_path(rel)) return c->failed ? -1 : 1;
    char *path = join_path(c, dir, rel);
    if (!path) return -1;
    char *text = read_file(path, &len, &error);
    if (!text) return error_at(c, from, pos, "cannot read \"%s\": %s", path, strerror(error));
    const char *label = prefix && dir == c->opts.map_dir ? abs : rel;
    struct doc *d = add_doc(c, path, label, abs, text, len);
    free(text);
    if (!d || add_resource(c, d, d->json.root, abs, NULL) < 0) return -1;
    return scan(c, d, d->json.root, abs);
}

/* Walk the JSON Pointer ptr (decoded) from v; base follows the scanned
 * schemas passed through. */
static const struct json_value *walk_pointer(const struct doc *d, const struct json_value *v,
                                             const char *ptr, const char **base)
{
    while (*ptr == '/') {
        char token[1024];
        size_t n = 0;
        for (ptr++; *ptr && *ptr != '/'; ptr++) {
            char ch = *ptr;
            if (ch == '~') {
                if (ptr[1] != '0' && ptr[1] != '1') return NULL;
                ch = *++ptr == '0' ? '~' : '/';
            }
            if (n == sizeof token) return NULL;
            token[n++] = ch;
        }
        if (v->type == JSON_OBJECT) {
            v = json_object_get(v, token, n);
        } else if (v->type == JSON_ARRAY && n > 0 && n < 10 && (token[0] != '0' || n == 1)) {
            uint32_t i = 0, k;
            for (k = 0; k < n && is_digit(token[k]); k++)
                i = i * 10 + (uint32_t)(token[k] - '0');
            if (k < n || i >= v->len) return NULL;
            for (v = json_first(v); i--;)
                v = json_next(v);
        } else {
            return NULL;
        }
        if (!v) return NULL;
        if (d->base[value_index(d, v)]) *base = d->base[value_index(d, v)];
    }
    return *ptr ? NULL : v;
}

/* Find the schema uri (absolute, maybe with a fragment) names: 0 found,
 * 1 not found, -1 error reported. */
static int locate(struct compiler *c, const char *uri, struct doc *from, uint32_t pos,
                  struct doc **d, const struct json_value **v)
{
    const char *hash = strchr(uri, '#'), *base;
    char *abs = pool_strndup(c, uri, hash ? (size_t)(hash - uri) : strlen(uri));
    char *frag = hash ? percent_decode(c, hash + 1, strlen(hash + 1), NULL) : "";
    struct resource *r;

    if (!abs || (hash && !frag)) return c->failed ? -1 : 1;
    if (!(r = find_resource(c, abs, NULL))) {
        int rc = load(c, abs, from, pos);
        if (rc) return rc;
        if (!(r = find_resource(c, abs, NULL))) return 1;
    }
    *d = r->doc;
    base = r->doc->base[value_index(r->doc, r->v)];
    if (frag[0] == '/' || !frag[0]) {
        *v = walk_pointer(r->doc, r->v, frag, &base);
    } else {
        r = find_resource(c, abs, frag);
        *v = r ? r->v : NULL;
        base = r ? r->doc->base[value_index(r->doc, r->v)] : base;
    }
    if (!*v) return 1;
    return scan(c, *d, *v, base);
}

static int resolve(struct compiler *c, struct pending *p)
{
    const char *ref = pool_strndup(c, p->ref->str, p->ref->len);
    struct doc *d;
    const struct json_value *v;
    int rc = 1;

    if (!ref) return -1;
    const char *target = uri_resolve(c, p->base, ref);
    if (!target) return -1;
    rc = locate(c, target, p->doc, p->node->ref_pos, &d, &v);
    if (rc > 0 && !scheme_len(ref)) {
        /* A relative reference no $id explains: the file next to this one. */
        const char *near = uri_resolve(c, p->doc->uri, ref);
        if (!near) return -1;
        rc = locate(c, near, p->doc, p->node->ref_pos, &d, &v);
    }
    if (rc < 0) return -1;
    if (rc > 0)
        return error_at(c, p->doc, p->ref->pos, "cannot resolve $ref \"%s\" (as %s)", ref, target);
    return (p->node->ref = compile(c, d, v)) ? 0 : -1;
}

/* ---- rejecting evaluation cycles ---- */

/* The i-th subschema applied to the same instance as n, or NULL. */
static struct node *in_place(const struct node *n, uint32_t i)
{
    struct node *single[] = {n->ref, n->not_, n->if_, n->then_, n->else_};

    for (size_t k = 0; k < 5; k++) {
        if (single[k] && i-- == 0) return single[k];
    }
    if (i < n->n_all) return n->all_of[i];
    i -= n->n_all;
    if (i < n->n_any) return n->any_of[i];
    i -= n->n_any;
    if (i < n->n_one) return n->one_of[i];
    i -= n->n_one;
    return i < n->n_dep_schemas ? n->dep_schemas[i].schema : NULL;
}

struct frame {
    struct node *n;
    uint32_t next;
};

/* A cycle of $ref through in-place applicators would evaluate the same
 * schema on the same value forever: reject it (depth-first search). */
static int check_cycles(struct compiler *c)
{
    struct frame *stack = malloc((c->n_nodes + 1) * sizeof *stack);
    int rc = 0;

    if (!stack) {
        oom(c);
        return -1;
    }
    for (struct node *root = c->nodes; root && !rc; root = root->next_all) {
        size_t top = 0;
        if (root->mark) continue;
        stack[top++] = (struct frame){root, 0};
        root->mark = 1;
        root->stack_pos = 0;
        while (top && !rc) {
            struct frame *f = &stack[top - 1];
            struct node *next = in_place(f->n, f->next++);
            if (!next) {
                f->n->mark = 2;
                top--;
            } else if (next->mark == 0) {
                next->mark = 1;
                next->stack_pos = (uint32_t)top;
                stack[top++] = (struct frame){next, 0};
            } else if (next->mark == 1) {
                size_t k = next->stack_pos;
                while (!stack[k].n->ref)
                    k++;
                struct node *at = stack[k].n;
                rc = error_at(c, at->doc, at->ref_pos,
                              "$ref makes a cycle that never advances into the instance");
            }
        }
    }
    free(stack);
    return rc;
}

/* ---- compiling ---- */

static void free_docs_scratch(struct schema *s)
{
    for (struct doc *d = s->docs; d; d = d->next) {
        free(d->compiled);
        free((void *)d->base);
        d->compiled = NULL;
        d->base = NULL;
    }
}

static const char *root_uri(struct compiler *c, const char *file)
{
    const char *name = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
    struct sbuf b = {0};

    sb_str(&b, "file:///");
    for (; *name; name++) {
        unsigned char ch = (unsigned char)*name;
        if (is_alpha(ch) || is_digit(ch) || strchr("-._~", ch)) {
            sb_char(&b, (char)ch);
        } else {
            char esc[4];
            snprintf(esc, sizeof esc, "%%%02X", ch);
            sb_str(&b, esc);
        }
    }
    char *s = b.oom ? NULL : pool_strndup(c, b.p, b.len);
    free(b.p);
    return s;
}

static int compile_all(struct compiler *c, const char *text, size_t len, const char *file)
{
    const char *uri = root_uri(c, file);
    struct doc *d = uri ? add_doc(c, file, "", uri, text, len) : NULL;

    if (!d || add_resource(c, d, d->json.root, uri, NULL) < 0 || scan(c, d, d->json.root, uri) < 0)
        return -1;
    c->s->root = compile(c, d, d->json.root);
    if (!c->s->root) return -1;
    while (c->pending) {
        struct pending *p = c->pending;
        c->pending = p->next;
        if (resolve(c, p) < 0) return -1;
    }
    return check_cycles(c);
}

struct schema *schema_compile_opts(const char *text, size_t len, const char *file,
                                   const char *base_dir, const struct schema_options *opts,
                                   struct schema_error *err)
{
    struct compiler c = {.err = err, .base_dir = base_dir};
    struct schema *s = calloc(1, sizeof *s);

    err->message[0] = '\0';
    if (!s) {
        snprintf(err->message, sizeof err->message, "%s:1:1: out of memory",
                 file ? file : "schema");
        return NULL;
    }
    if (opts) c.opts = *opts;
    if (!c.opts.max_depth || c.opts.max_depth > JSON_DEPTH_LIMIT)
        c.opts.max_depth = c.opts.max_depth ? JSON_DEPTH_LIMIT : SCHEMA_DEFAULT_DEPTH;
    s->max_depth = c.opts.max_depth;
    c.s = s;
    int rc = compile_all(&c, text, len, file ? file : "schema.json");
    free_docs_scratch(s);
    if (rc < 0 || c.failed) {
        schema_free(s);
        return NULL;
    }
    return s;
}

struct schema *schema_compile(const char *text, size_t len, const char *file, const char *base_dir,
                              struct schema_error *err)
{
    return schema_compile_opts(text, len, file, base_dir, NULL, err);
}

void schema_free(struct schema *s)
{
    if (!s) return;
    for (struct code_list *l = s->codes; l; l = l->next)
        pcre2_code_free(l->re);
    for (struct doc *d = s->docs; d; d = d->next) {
        free(d->text);
        free(d->arena);
        free(d->compiled);
        free((void *)d->base);
    }
    pool_free(&s->pool);
    free(s);
}

/* ---- format assertions ---- */

static bool digits_at(const char *s, size_t n, size_t at, size_t count, unsigned *value)
{
    *value = 0;
    if (at + count > n) return false;
    for (size_t i = at; i < at + count; i++) {
        if (!is_digit(s[i])) return false;
        *value = *value * 10 + (unsigned)(s[i] - '0');
    }
    return true;
}

static unsigned days_in_month(unsigned year, unsigned month)
{
    static const unsigned days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

    return month == 2 && leap ? 29 : days[month - 1];
}

/* RFC 3339 date-time; a leap second only where it can be: 23:59:60 UTC. */
static bool format_date_time(const char *s, size_t n)
{
    unsigned year, month, day, hour, minute, second, oh = 0, om = 0;
    size_t i = 19;
    int sign = 0;

    if (!digits_at(s, n, 0, 4, &year) || n < 20 || s[4] != '-' || !digits_at(s, n, 5, 2, &month) ||
        s[7] != '-' || !digits_at(s, n, 8, 2, &day) || (s[10] != 'T' && s[10] != 't') ||
        !digits_at(s, n, 11, 2, &hour) || s[13] != ':' || !digits_at(s, n, 14, 2, &minute) ||
        s[16] != ':' || !digits_at(s, n, 17, 2, &second))
        return false;
    if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, month) || hour > 23 ||
        minute > 59 || second > 60)
        return false;
    if (s[i] == '.') {
        size_t start = ++i;
        while (i < n && is_digit(s[i]))
            i++;
        if (i == start) return false;
    }
    if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i < n && (s[i] == '+' || s[i] == '-')) {
        sign = s[i] == '+' ? 1 : -1;
        if (!digits_at(s, n, i + 1, 2, &oh) || i + 3 >= n || s[i + 3] != ':' ||
            !digits_at(s, n, i + 4, 2, &om) || oh > 23 || om > 59)
            return false;
        i += 6;
    } else {
        return false;
    }
    if (i != n) return false;
    if (second == 60) {
        int utc = ((int)(hour * 60 + minute) - sign * (int)(oh * 60 + om) + 2 * 1440) % 1440;
        return utc == 23 * 60 + 59;
    }
    return true;
}

static bool format_ipv4(const char *s, size_t n)
{
    size_t i = 0;

    for (int part = 0; part < 4; part++) {
        unsigned v = 0;
        if (part && (i >= n || s[i++] != '.')) return false;
        size_t start = i;
        while (i < n && is_digit(s[i]) && i - start < 3)
            v = v * 10 + (unsigned)(s[i++] - '0');
        if (i == start || v > 255 || (s[start] == '0' && i - start > 1)) return false;
    }
    return i == n;
}

/* RFC 4291 text form, with :: compression and a trailing dotted quad. */
static bool format_ipv6(const char *s, size_t n)
{
    unsigned groups = 0;
    bool compressed = false;
    size_t i = 0;

    if (n >= 2 && s[0] == ':' && s[1] == ':') {
        compressed = true;
        i = 2;
    } else if (n && s[0] == ':') {
        return false;
    }
    while (i < n) {
        size_t end = i;
        while (end < n && s[end] != ':')
            end++;
        if (memchr(s + i, '.', end - i)) {
            if (end != n || !format_ipv4(s + i, n - i)) return false;
            groups += 2;
            break;
        }
        size_t k = i;
        while (k < n && k - i < 4 && is_hex(s[k]))
            k++;
        if (k == i || k != end) return false;
        groups++;
        i = k;
        if (i == n) break;
        i++; /* ':' */
        if (i < n && s[i] == ':') {
            if (compressed) return false;
            compressed = true;
            i++;
        } else if (i == n) {
            return false;
        }
    }
    return compressed ? groups <= 7 : groups == 8;
}

static bool format_uuid(const char *s, size_t n)
{
    if (n != 36) return false;
    for (size_t i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !is_hex(s[i])) return false;
    }
    return true;
}

static bool is_unreserved(char ch)
{
    return is_alpha(ch) || is_digit(ch) || (ch && strchr("-._~", ch));
}

static bool is_sub_delim(char ch)
{
    return ch && strchr("!$&'()*+,;=", ch);
}

/* Whether s[i..end) is made of unreserved, sub-delims, pct-encoded and extra. */
static bool uri_chars(const char *s, size_t i, size_t end, const char *extra)
{
    for (; i < end; i++) {
        if (s[i] == '%') {
            if (i + 2 >= end || !is_hex(s[i + 1]) || !is_hex(s[i + 2])) return false;
            i += 2;
        } else if (!is_unreserved(s[i]) && !is_sub_delim(s[i]) && !(s[i] && strchr(extra, s[i]))) {
            return false;
        }
    }
    return true;
}

static bool uri_host(const char *s, size_t i, size_t end)
{
    if (i < end && s[i] == '[') {
        if (s[end - 1] != ']' || end - i < 3) return false;
        if (s[i + 1] == 'v' || s[i + 1] == 'V') { /* IPvFuture */
            size_t k = i + 2;
            while (k < end - 1 && is_hex(s[k]))
                k++;
            return k > i + 2 && k < end - 2 && s[k] == '.' && uri_chars(s, k + 1, end - 1, ":");
        }
        return format_ipv6(s + i + 1, end - i - 2);
    }
    return uri_chars(s, i, end, "");
}

/* RFC 3986 URI: scheme ":" hier-part [ "?" query ] [ "#" fragment ]. */
static bool format_uri(const char *s, size_t n)
{
    size_t i = 0, end;

    if (n == 0 || !is_alpha(s[0])) return false;
    while (i < n && (is_alpha(s[i]) || is_digit(s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.'))
        i++;
    if (i >= n || s[i++] != ':') return false;
    if (i + 1 < n && s[i] == '/' && s[i + 1] == '/') {
        i += 2;
        for (end = i; end < n && s[end] != '/' && s[end] != '?' && s[end] != '#'; end++)
            ;
        const char *at = memchr(s + i, '@', end - i);
        if (at) {
            if (!uri_chars(s, i, (size_t)(at - s), ":")) return false;
            i = (size_t)(at - s) + 1;
        }
        size_t host_end = end;
        for (size_t k = end; k > i; k--) {
            if (s[k - 1] == ']') break;
            if (s[k - 1] == ':') {
                host_end = k - 1;
                break;
            }
        }
        for (size_t k = host_end + 1; k < end; k++)
            if (!is_digit(s[k])) return false;
        if (!uri_host(s, i, host_end)) return false;
        i = end;
    }
    for (end = i; end < n && s[end] != '?' && s[end] != '#'; end++)
        ;
    if (!uri_chars(s, i, end, ":@/")) return false;
    if (end < n && s[end] == '?') {
        for (i = ++end; end < n && s[end] != '#'; end++)
            ;
        if (!uri_chars(s, i, end, ":@/?")) return false;
    }
    return end >= n || uri_chars(s, end + 1, n, ":@/?");
}

static bool is_atext(char ch)
{
    return is_alpha(ch) || is_digit(ch) || (ch && strchr("!#$%&'*+-/=?^_`{|}~", ch));
}

static bool format_hostname(const char *s, size_t n)
{
    size_t label = 0;

    if (n == 0 || n > 253) return false;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '.') {
            if (label == 0 || label > 63 || s[i - 1] == '-' || s[i - label] == '-') return false;
            label = 0;
        } else if (is_alpha(s[i]) || is_digit(s[i]) || s[i] == '-') {
            label++;
        } else {
            return false;
        }
    }
    return true;
}

/* RFC 5321 Mailbox: dot-atom or quoted local part; domain name or address literal. */
static bool format_email(const char *s, size_t n)
{
    size_t i = 0;

    if (n && s[0] == '"') {
        for (i = 1; i < n && s[i] != '"'; i++) {
            if (s[i] == '\\') i++;
            if (i >= n || s[i] < 32 || s[i] > 126) return false;
        }
        if (i++ >= n) return false;
    } else {
        for (; i < n && s[i] != '@'; i++) {
            if (s[i] == '.' ? i == 0 || s[i - 1] == '.' : !is_atext(s[i])) return false;
        }
        if (i == 0 || s[i - 1] == '.') return false;
    }
    if (i > 64 || i >= n || s[i] != '@') return false;
    const char *domain = s + i + 1;
    size_t dn = n - i - 1;
    if (dn >= 2 && domain[0] == '[' && domain[dn - 1] == ']') {
        if (dn > 7 && !memcmp(domain + 1, "IPv6:", 5)) return format_ipv6(domain + 6, dn - 7);
        return format_ipv4(domain + 1, dn - 2);
    }
    return format_hostname(domain, dn);
}

static bool format_ok(uint8_t format, const char *s, size_t n)
{
    switch (format) {
    case F_DATE_TIME:
        return format_date_time(s, n);
    case F_EMAIL:
        return format_email(s, n);
    case F_UUID:
        return format_uuid(s, n);
    case F_IPV4:
        return format_ipv4(s, n);
    case F_IPV6:
        return format_ipv6(s, n);
    case F_URI:
        return format_uri(s, n);
    default:
        return true;
    }
}

/* ---- validation ---- */

struct seg {         /* one step of the instance path */
    const char *key; /* NULL for an array index */
    uint32_t len, index;
};

struct vctx {
    struct schema_result *res;
    bool reported;
    const char *abort; /* a budget ran out: the body is rejected, whatever else happened */
    int quiet;         /* > 0 inside anyOf, oneOf, not, if, contains: failures are expected */
    unsigned depth;
    uint64_t steps, max_steps;
    char *scratch; /* LIFO: annotation bitsets, uniqueItems indexes */
    size_t used, cap;
    struct seg *path;
    unsigned plen;
    size_t len; /* of the body */
    char *rx;   /* PCRE2's allocations, bump-allocated */
    size_t rx_used, rx_cap;
    pcre2_general_context *gctx;
    pcre2_match_context *mctx;
    pcre2_match_data *md;
};

/* Bytes of s[0..len) that fit in max without splitting a UTF-8 sequence. */
static int clip(const char *s, size_t len, size_t max)
{
    if (len <= max) return (int)len;
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--;
    return (int)max;
}

/* Append s[0..n) to dst (NUL-terminated, cap bytes), whole code points only. */
static void put(char *dst, size_t cap, const char *s, size_t n)
{
    size_t len = strlen(dst);
    int fit = clip(s, n, cap - 1 - len);

    memcpy(dst + len, s, (size_t)fit);
    dst[len + (size_t)fit] = '\0';
}

static void put_token(char *dst, size_t cap, const char *s, size_t n)
{
    size_t from = 0;

    put(dst, cap, "/", 1);
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != '~' && s[i] != '/' && s[i] != '\0') continue;
        put(dst, cap, s + from, i - from);
        if (i < n)
            put(dst, cap,
                s[i] == '~'   ? "~0"
                : s[i] == '/' ? "~1"
                              : "\\u0000",
                s[i] == '\0' ? 6 : 2);
        from = i + 1;
    }
}

static void render_path(struct vctx *cx)
{
    char *out = cx->res->instance_path;
    size_t cap = sizeof cx->res->instance_path;
    char num[16];

    out[0] = '\0';
    for (unsigned i = 0; i < cx->plen; i++) {
        const struct seg *g = &cx->path[i];
        if (g->key) {
            put_token(out, cap, g->key, g->len);
        } else {
            snprintf(num, sizeof num, "/%u", g->index);
            put(out, cap, num, strlen(num));
        }
    }
}

static bool report(struct vctx *cx, const struct node *n, const char *keyword, const char *fmt,
                   va_list ap)
{
    struct schema_result *res = cx->res;

    cx->reported = true;
    render_path(cx);
    res->schema_path[0] = '\0';
    put(res->schema_path, sizeof res->schema_path, n->path, strlen(n->path));
    if (keyword) put_token(res->schema_path, sizeof res->schema_path, keyword, strlen(keyword));
    vsnprintf(res->message, sizeof res->message, fmt, ap);
    size_t len = strlen(res->message);
    res->message[clip(res->message, len, len)] = '\0';
    return false;
}

/* A failure; reported when it decides the outcome (not inside anyOf...). */
static bool fail(struct vctx *cx, const struct node *n, const char *keyword, const char *fmt, ...)
{
    va_list ap;

    if (cx->quiet || cx->reported) return false;
    va_start(ap, fmt);
    report(cx, n, keyword, fmt, ap);
    va_end(ap);
    return false;
}

/* Resources exhausted: fail closed, even inside "not". */
static bool give_up(struct vctx *cx, const struct node *n, const char *why, ...)
{
    va_list ap;

    if (cx->abort) return false;
    cx->abort = why;
    va_start(ap, why);
    report(cx, n, NULL, why, ap);
    va_end(ap);
    return false;
}

static void push_key(struct vctx *cx, const struct json_value *key)
{
    cx->path[cx->plen++] = (struct seg){key->str, key->len, 0};
}

static void push_index(struct vctx *cx, uint32_t i)
{
    cx->path[cx->plen++] = (struct seg){NULL, 0, i};
}

static void pop(struct vctx *cx)
{
    cx->plen--;
}

static void *scratch_alloc(struct vctx *cx, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    if (cx->cap - cx->used < n) return NULL;
    void *p = cx->scratch + cx->used;
    cx->used += n;
    memset(p, 0, n);
    return p;
}

static uint8_t *bits_new(struct vctx *cx, uint32_t count)
{
    return scratch_alloc(cx, ((size_t)count + 7) / 8);
}

static void bit_set(uint8_t *b, uint32_t i)
{
    b[i >> 3] |= (uint8_t)(1u << (i & 7));
}

static bool bit_get(const uint8_t *b, uint32_t i)
{
    return b[i >> 3] >> (i & 7) & 1;
}

static void bits_or(uint8_t *dst, const uint8_t *src, uint32_t count)
{
    for (size_t i = 0; i < ((size_t)count + 7) / 8; i++)
        dst[i] |= src[i];
}

static void bits_fill(uint8_t *dst, uint32_t count)
{
    memset(dst, 0xFF, ((size_t)count + 7) / 8);
}

static size_t regex_heap_kib(size_t len)
{
    size_t kib = len / 4;

    return kib < REGEX_HEAP_MIN_KIB   ? REGEX_HEAP_MIN_KIB
           : kib > REGEX_HEAP_MAX_KIB ? REGEX_HEAP_MAX_KIB
                                      : kib;
}

static size_t regex_arena_size(size_t len)
{
    return (regex_heap_kib(len) * 9 / 4 + 16) << 10;
}

static void *rx_alloc(PCRE2_SIZE size, void *data)
{
    struct vctx *cx = data;
    size_t n = (size + 15) & ~(size_t)15;

    if (cx->rx_cap - cx->rx_used < n) return NULL;
    cx->rx_used += n;
    return cx->rx + cx->rx_used - n;
}

static void rx_free(void *p, void *data)
{
    (void)p, (void)data; /* the arena goes at once */
}

/* 1 match, 0 no match, -1 gave up. PCRE2 allocates from our arena only:
 * JIT code runs on 32 KiB of machine stack and, when that is not enough,
 * the interpreter retries within regex_heap_kib(). */
static int regex_match(struct vctx *cx, const struct node *n, const pcre2_code *re, const char *s,
                       size_t len)
{
    if (!cx->md) {
        cx->gctx = pcre2_general_context_create(rx_alloc, rx_free, cx);
        cx->mctx = cx->gctx ? pcre2_match_context_create(cx->gctx) : NULL;
        cx->md = cx->gctx ? pcre2_match_data_create(1, cx->gctx) : NULL;
        if (!cx->mctx || !cx->md) {
            cx->md = NULL;
            give_up(cx, n, "validation exceeds its memory budget");
            return -1;
        }
        pcre2_set_match_limit(cx->mctx, REGEX_MATCH_LIMIT);
        pcre2_set_heap_limit(cx->mctx, (uint32_t)regex_heap_kib(cx->len));
    }
    cx->steps += 1 + len / 256;
    int rc = pcre2_match(re, (PCRE2_SPTR)s, len, 0, PCRE2_NO_UTF_CHECK, cx->md, cx->mctx);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
        rc = pcre2_match(re, (PCRE2_SPTR)s, len, 0, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, cx->md,
                         cx->mctx);
    if (rc >= 0) return 1;
    if (rc == PCRE2_ERROR_NOMATCH) return 0;
    give_up(cx, n, "pattern too costly to match");
    return -1;
}

static bool validate(struct vctx *cx, const struct node *n, const struct json_value *v,
                     uint8_t *eval);

static const char *type_name(const struct json_value *v)
{
    static const char *const names[] = {"null",   "boolean", "boolean", "number",
                                        "string", "array",   "object"};

    if (v->type == JSON_NUMBER && (v->flags & JSON_INTEGRAL)) return "integer";
    return names[v->type];
}

static bool check_type(struct vctx *cx, const struct node *n, const struct json_value *v)
{
    static const char *const names[] = {"null",   "boolean", NULL,     "number",
                                        "string", "array",   "object", "integer"};
    char want[80] = "";

    if (!n->types || (n->types & (1u << v->type)) ||
        ((n->types & T_INTEGER) && v->type == JSON_NUMBER && (v->flags & JSON_INTEGRAL)))
        return true;
    for (unsigned t = 0; t < 8; t++) {
        if (!names[t] || !(n->types & (1u << t))) continue;
        if (want[0]) strcat(want, " or ");
        strcat(want, names[t]);
    }
    return fail(cx, n, "type", "expected %s, got %s", want, type_name(v));
}

static bool check_value(struct vctx *cx, const struct node *n, const struct json_value *v)
{
    if (n->konst && !json_equal(v, n->konst))
        return fail(cx, n, "const", "value does not equal the const value");
    if (n->enumv) {
        const struct json_value *x = json_first(n->enumv);
        for (uint32_t i = 0; i < n->enumv->len; i++, x = json_next(x))
            if (json_equal(v, x)) return true;
        return fail(cx, n, "enum", "value is not one of the enum values");
    }
    return true;
}

static bool number_fails(struct vctx *cx, const struct node *n, const char *keyword,
                         const struct json_value *v, const struct json_value *limit,
                         const char *relation)
{
    return fail(cx, n, keyword, "%.*s %s %.*s", clip(v->str, v->len, 40), v->str, relation,
                clip(limit->str, limit->len, 40), limit->str);
}

static bool check_number(struct vctx *cx, const struct node *n, const struct json_value *v)
{
    if (n->maximum && json_number_cmp(v, n->maximum) > 0)
        return number_fails(cx, n, "maximum", v, n->maximum, "is greater than the maximum");
    if (n->exclusive_maximum && json_number_cmp(v, n->exclusive_maximum) >= 0)
        return number_fails(cx, n, "exclusiveMaximum", v, n->exclusive_maximum, "is not less than");
    if (n->minimum && json_number_cmp(v, n->minimum) < 0)
        return number_fails(cx, n, "minimum", v, n->minimum, "is less than the minimum");
    if (n->exclusive_minimum && json_number_cmp(v, n->exclusive_minimum) <= 0)
        return number_fails(cx, n, "exclusiveMinimum", v, n->exclusive_minimum,
                            "is not greater than");
    if (n->multiple_of && json_number_multiple_of(v, n->multiple_of) != 1)
        return number_fails(cx, n, "multipleOf", v, n->multiple_of, "is not a multiple of");
    return true;
}

static bool check_string(struct vctx *cx, const struct node *n, const struct json_value *v)
{
    if (n->max_length != UINT64_MAX || n->min_length) {
        size_t count = json_utf8_count(v->str, v->len);
        if (count > n->max_length)
            return fail(cx, n, "maxLength", "string is longer than %llu characters",
                        (unsigned long long)n->max_length);
        if (count < n->min_length)
            return fail(cx, n, "minLength", "string is shorter than %llu characters",
                        (unsigned long long)n->min_length);
    }
    if (n->pattern) {
        int m = regex_match(cx, n, n->pattern, v->str, v->len);
        if (m <= 0)
            return m < 0 ? false : fail(cx, n, "pattern", "string does not match the pattern");
    }
    if (n->format && !format_ok(n->format, v->str, v->len))
        return fail(cx, n, "format", "string is not a valid %s", format_names[n->format]);
    return true;
}

static bool check_items(struct vctx *cx, const struct node *n, const struct json_value *v,
                        uint8_t *eval)
{
    const struct json_value *x = json_first(v);

    for (uint32_t i = 0; i < v->len; i++, x = json_next(x)) {
        const struct node *sub = i < n->n_prefix ? n->prefix[i] : n->items;
        if (!sub) return true;
        push_index(cx, i);
        bool ok = validate(cx, sub, x, NULL);
        pop(cx);
        if (!ok) return false;
        if (eval) bit_set(eval, i);
    }
    return true;
}

static bool check_contains(struct vctx *cx, const struct node *n, const struct json_value *v,
                           uint8_t *eval)
{
    const struct json_value *x = json_first(v);
    uint64_t count = 0;

    cx->quiet++;
    for (uint32_t i = 0; i < v->len && !cx->abort; i++, x = json_next(x)) {
        push_index(cx, i);
        bool ok = validate(cx, n->contains, x, NULL);
        pop(cx);
        if (!ok) continue;
        count++;
        if (eval)
            bit_set(eval, i);
        else if (count >= n->min_contains && n->max_contains == UINT64_MAX)
            break;
    }
    cx->quiet--;
    if (cx->abort) return false;
    if (count < n->min_contains)
        return fail(cx, n, n->has_min_contains ? "minContains" : "contains",
                    "array contains %llu matching items, fewer than %llu",
                    (unsigned long long)count, (unsigned long long)n->min_contains);
    if (count > n->max_contains)
        return fail(cx, n, "maxContains", "array contains %llu matching items, more than %llu",
                    (unsigned long long)count, (unsigned long long)n->max_contains);
    return true;
}

static bool check_array(struct vctx *cx, const struct node *n, const struct json_value *v,
                        uint8_t *eval)
{
    if (v->len > n->max_items)
        return fail(cx, n, "maxItems", "array has more than %llu items",
                    (unsigned long long)n->max_items);
    if (v->len < n->min_items)
        return fail(cx, n, "minItems", "array has fewer than %llu items",
                    (unsigned long long)n->min_items);
    if (!check_items(cx, n, v, eval)) return false;
    if (n->contains && !check_contains(cx, n, v, eval)) return false;
    if (n->unique_items && v->len > 1) {
        size_t mark = cx->used;
        uint32_t *scratch = scratch_alloc(cx, (size_t)v->len * sizeof *scratch), a, b;
        if (!scratch) return give_up(cx, n, "validation exceeds its memory budget");
        bool unique = json_unique(v, scratch, &a, &b);
        cx->used = mark;
        if (!unique) return fail(cx, n, "uniqueItems", "items %u and %u are equal", a, b);
    }
    return true;
}

static const struct entry *find_entry(const struct entry *e, uint32_t count,
                                      const struct json_value *key)
{
    struct entry probe = {.name = key->str, .len = key->len};

    return count ? bsearch(&probe, e, count, sizeof *e, entry_cmp) : NULL;
}

static bool check_required(struct vctx *cx, const struct node *n, const struct json_value *v)
{
    const struct json_value *x = n->required ? json_first(n->required) : NULL;

    for (uint32_t i = 0; x && i < n->required->len; i++, x = json_next(x))
        if (!json_object_get(v, x->str, x->len))
            return fail(cx, n, "required", "missing required property \"%.*s\"",
                        clip(x->str, x->len, 64), x->str);
    for (uint32_t i = 0; i < n->n_dep_required; i++) {
        const struct entry *e = &n->dep_required[i];
        if (!json_object_get(v, e->name, e->len)) continue;
        x = json_first(e->names);
        for (uint32_t j = 0; j < e->names->len; j++, x = json_next(x))
            if (!json_object_get(v, x->str, x->len))
                return fail(cx, n, "dependentRequired",
                            "property \"%.*s\" requires property \"%.*s\"",
                            clip(e->name, e->len, 64), e->name, clip(x->str, x->len, 64), x->str);
    }
    return true;
}

/* properties, patternProperties, additionalProperties for one member. */
static bool check_member(struct vctx *cx, const struct node *n, const struct json_value *key,
                         bool *evaluated)
{
    const struct entry *e = find_entry(n->props, n->n_props, key);
    bool matched = e != NULL;

    if (e && !validate(cx, e->schema, key + 1, NULL)) return false;
    for (uint32_t i = 0; i < n->n_pattern_props; i++) {
        int m = regex_match(cx, n, n->pattern_props[i].re, key->str, key->len);
        if (m < 0 || (m && !validate(cx, n->pattern_props[i].schema, key + 1, NULL))) return false;
        matched |= m;
    }
    if (!matched && n->additional) {
        if (!validate(cx, n->additional, key + 1, NULL)) return false;
        matched = true;
    }
    *evaluated = matched;
    return true;
}

static bool check_object(struct vctx *cx, const struct node *n, const struct json_value *v,
                         uint8_t *eval)
{
    const struct json_value *k = json_first(v);

    if (v->len > n->max_props)
        return fail(cx, n, "maxProperties", "object has more than %llu properties",
                    (unsigned long long)n->max_props);
    if (v->len < n->min_props)
        return fail(cx, n, "minProperties", "object has fewer than %llu properties",
                    (unsigned long long)n->min_props);
    if (!check_required(cx, n, v)) return false;
    for (uint32_t i = 0; i < v->len; i++, k = json_next(k + 1)) {
        bool evaluated = false, ok = true;
        push_key(cx, k);
        if (n->n_props || n->n_pattern_props || n->additional)
            ok = check_member(cx, n, k, &evaluated);
        if (ok && n->property_names) ok = validate(cx, n->property_names, k, NULL);
        pop(cx);
        if (!ok) return false;
        if (evaluated && eval) bit_set(eval, i);
    }
    for (uint32_t i = 0; i < n->n_dep_schemas; i++) {
        const struct entry *e = &n->dep_schemas[i];
        if (json_object_get(v, e->name, e->len) && !validate(cx, e->schema, v, eval)) return false;
    }
    return true;
}

static uint32_t children(const struct json_value *v)
{
    return v->type == JSON_ARRAY || v->type == JSON_OBJECT ? v->len : 0;
}

static bool check_any_of(struct vctx *cx, const struct node *n, const struct json_value *v,
                         uint8_t *eval)
{
    bool any = false;

    cx->quiet++;
    for (uint32_t i = 0; i < n->n_any && !cx->abort; i++) {
        size_t mark = cx->used;
        uint8_t *own = eval ? bits_new(cx, children(v)) : NULL;
        if (eval && !own) {
            give_up(cx, n, "validation exceeds its memory budget");
            break;
        }
        bool ok = validate(cx, n->any_of[i], v, own);
        if (ok && eval) bits_or(eval, own, children(v));
        cx->used = mark;
        any |= ok;
        if (ok && !eval) break; /* without annotations to collect, one match decides */
    }
    cx->quiet--;
    if (cx->abort) return false;
    return any || fail(cx, n, "anyOf", "value matches none of the anyOf schemas");
}

static bool check_one_of(struct vctx *cx, const struct node *n, const struct json_value *v,
                         uint8_t *eval)
{
    size_t start = cx->used;
    uint32_t matches = 0, first = 0, second = 0;
    uint8_t *kept = NULL;

    cx->quiet++;
    for (uint32_t i = 0; i < n->n_one && matches < 2 && !cx->abort; i++) {
        size_t mark = cx->used;
        uint8_t *own = eval ? bits_new(cx, children(v)) : NULL;
        if (eval && !own) {
            give_up(cx, n, "validation exceeds its memory budget");
            break;
        }
        if (!validate(cx, n->one_of[i], v, own)) {
            cx->used = mark;
            continue;
        }
        if (matches++ == 0) {
            first = i;
            kept = own;
        } else {
            second = i;
        }
    }
    cx->quiet--;
    if (matches == 1 && eval && !cx->abort) bits_or(eval, kept, children(v));
    cx->used = start;
    if (cx->abort) return false;
    if (matches == 0) return fail(cx, n, "oneOf", "value matches none of the oneOf schemas");
    if (matches > 1)
        return fail(cx, n, "oneOf", "value matches oneOf schemas %u and %u, not exactly one", first,
                    second);
    return true;
}

static bool check_conditional(struct vctx *cx, const struct node *n, const struct json_value *v,
                              uint8_t *eval)
{
    size_t mark = cx->used;
    uint8_t *own = eval ? bits_new(cx, children(v)) : NULL;

    if (eval && !own) return give_up(cx, n, "validation exceeds its memory budget");
    cx->quiet++;
    bool holds = validate(cx, n->if_, v, own);
    cx->quiet--;
    if (holds && eval) bits_or(eval, own, children(v));
    cx->used = mark;
    if (cx->abort) return false;
    const struct node *branch = holds ? n->then_ : n->else_;
    return !branch || validate(cx, branch, v, eval);
}

static bool check_applicators(struct vctx *cx, const struct node *n, const struct json_value *v,
                              uint8_t *eval)
{
    if (n->ref && !validate(cx, n->ref, v, eval)) return false;
    for (uint32_t i = 0; i < n->n_all; i++)
        if (!validate(cx, n->all_of[i], v, eval)) return false;
    if (n->n_any && !check_any_of(cx, n, v, eval)) return false;
    if (n->n_one && !check_one_of(cx, n, v, eval)) return false;
    if (n->not_) {
        cx->quiet++;
        bool holds = validate(cx, n->not_, v, NULL);
        cx->quiet--;
        if (cx->abort) return false;
        if (holds) return fail(cx, n, "not", "value must not match the \"not\" schema");
    }
    return !n->if_ || check_conditional(cx, n, v, eval);
}

static bool check_unevaluated(struct vctx *cx, const struct node *n, const struct json_value *v,
                              const uint8_t *evaluated)
{
    bool object = v->type == JSON_OBJECT;
    const struct node *rest = object ? n->unevaluated_props : n->unevaluated_items;
    const struct json_value *x = json_first(v);

    for (uint32_t i = 0; i < v->len; i++, x = object ? json_next(x + 1) : json_next(x)) {
        if (bit_get(evaluated, i)) continue;
        if (object)
            push_key(cx, x);
        else
            push_index(cx, i);
        bool ok = validate(cx, rest, object ? x + 1 : x, NULL);
        pop(cx);
        if (!ok) return false;
    }
    return true;
}

static bool check_keywords(struct vctx *cx, const struct node *n, const struct json_value *v,
                           uint8_t *eval)
{
    if (!check_type(cx, n, v) || !check_value(cx, n, v)) return false;
    switch (v->type) {
    case JSON_NUMBER:
        if (!check_number(cx, n, v)) return false;
        break;
    case JSON_STRING:
        if (!check_string(cx, n, v)) return false;
        break;
    case JSON_ARRAY:
        if (!check_array(cx, n, v, eval)) return false;
        break;
    case JSON_OBJECT:
        if (!check_object(cx, n, v, eval)) return false;
        break;
    default:
        break;
    }
    return check_applicators(cx, n, v, eval);
}

static bool fail_false(struct vctx *cx, const struct node *n)
{
    const struct seg *g = cx->plen ? &cx->path[cx->plen - 1] : NULL;

    if (g && g->key)
        return fail(cx, n, NULL, "property \"%.*s\" is not allowed", clip(g->key, g->len, 64),
                    g->key);
    if (g) return fail(cx, n, NULL, "item %u is not allowed", g->index);
    return fail(cx, n, NULL, "no value is allowed");
}

/* Whether v satisfies n. When eval is given, marks the children of v (items
 * or members) that n evaluated, for an enclosing unevaluated*. */
static bool validate(struct vctx *cx, const struct node *n, const struct json_value *v,
                     uint8_t *eval)
{
    if (n->boolean >= 0) return n->boolean || fail_false(cx, n);
    if (cx->abort) return false;
    if (++cx->steps > cx->max_steps) return give_up(cx, n, "validation exceeds its step budget");
    if (cx->depth >= EVAL_DEPTH_MAX) return give_up(cx, n, "validation nests too deeply");
    bool own_needed = (v->type == JSON_ARRAY && n->unevaluated_items) ||
                      (v->type == JSON_OBJECT && n->unevaluated_props);
    size_t mark = cx->used;
    uint8_t *own = eval;
    if (own_needed && !(own = bits_new(cx, v->len)))
        return give_up(cx, n, "validation exceeds its memory budget");
    cx->depth++;
    bool ok = check_keywords(cx, n, v, own) && (!own_needed || check_unevaluated(cx, n, v, own));
    cx->depth--;
    if (ok && own_needed && eval)
        bits_fill(eval, v->len); /* what unevaluated* accepted is evaluated too */
    cx->used = mark;
    return ok;
}

static size_t round_up(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

static size_t scratch_size(size_t len)
{
    return round_up(SCRATCH_BASE + 3 * len); /* bitsets, and 4 bytes per item for uniqueItems */
}

static size_t path_size(const struct schema *s)
{
    return round_up((s->max_depth + 4) * sizeof(struct seg));
}

size_t schema_arena_size(const struct schema *s, size_t len)
{
    if (len > JSON_TEXT_LIMIT) len = 0; /* json_parse refuses it first */
    return round_up(json_arena_size(len, s->max_depth)) + scratch_size(len) + path_size(s) +
           (s->has_patterns ? regex_arena_size(len) : 0);
}

static void result_init(struct schema_result *res)
{
    res->offset = 0;
    res->instance_path[0] = res->schema_path[0] = res->message[0] = '\0';
}

int schema_validate_in(const struct schema *s, const char *body, size_t len, void *arena,
                       size_t arena_size, struct schema_result *res)
{
    struct vctx cx = {.res = res};
    struct json_doc doc;
    struct json_error jerr;
    char *base = arena;
    size_t json_size = round_up(json_arena_size(len > JSON_TEXT_LIMIT ? 0 : len, s->max_depth));

    result_init(res);
    if (arena_size < schema_arena_size(s, len)) {
        snprintf(res->message, sizeof res->message, "validation arena too small");
        return SCHEMA_INVALID;
    }
    if (json_parse(body, len, s->max_depth, arena, json_size, &doc, &jerr) < 0) {
        res->offset = jerr.offset;
        snprintf(res->message, sizeof res->message, "%s", jerr.message);
        return SCHEMA_BAD_JSON;
    }
    cx.scratch = base + json_size;
    cx.cap = scratch_size(len);
    cx.path = (struct seg *)(cx.scratch + cx.cap);
    cx.rx = (char *)cx.path + path_size(s);
    cx.rx_cap = s->has_patterns ? regex_arena_size(len) : 0;
    cx.len = len;
    cx.max_steps = STEPS_BASE + (uint64_t)STEPS_PER_BYTE * len;
    bool ok = validate(&cx, s->root, doc.root, NULL);
    if (ok && !cx.abort) return SCHEMA_VALID;
    if (!cx.reported) snprintf(res->message, sizeof res->message, "body does not match the schema");
    return SCHEMA_INVALID;
}

int schema_validate(const struct schema *s, const char *body, size_t len, struct schema_result *res)
{
    size_t size = schema_arena_size(s, len);
    void *arena = malloc(size);

    if (!arena) {
        result_init(res);
        snprintf(res->message, sizeof res->message, "out of memory for validation");
        return SCHEMA_INVALID;
    }
    int rc = schema_validate_in(s, body, len, arena, size, res);
    free(arena);
    return rc;
}
