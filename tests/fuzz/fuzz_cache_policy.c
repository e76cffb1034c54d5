/* libFuzzer target for cache_policy.c. The first byte picks what the rest
 * is: a Cache-Control value, a Range value (after an 8-byte length), two
 * entity-tags, or the header lines of a response (that also serve as a
 * request's). Invariants checked:
 *   - deltas stay within [CACHE_ABSENT, CACHE_DELTA_MAX];
 *   - a satisfiable range lies within the object;
 *   - strong equality implies weak equality, both symmetric;
 *   - a head built (or merged) from parsed headers parses back, at exactly
 *     the length announced, and snprintf-style lengths agree with output.
 * Copies are exact-size heap buffers, so any overread trips AddressSanitizer. */
#include <stdint.h>
#include "fuzz.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache_policy.h"
#include "http1.h"

#define NOW INT64_C(1700000000)

static char *heap_copy(const uint8_t *data, size_t n)
{
    char *p = malloc(n ? n : 1);

    REQUIRE(p != NULL);
    if (n) memcpy(p, data, n);
    return p;
}

static bool delta_ok(int64_t v)
{
    return v >= CACHE_ABSENT && v <= CACHE_DELTA_MAX;
}

static void fuzz_cache_control(const uint8_t *data, size_t size)
{
    char *p = heap_copy(data, size);
    struct cache_control cc;

    cache_control_init(&cc);
    cache_control_parse(&cc, (struct http_str){p, size});
    REQUIRE(delta_ok(cc.max_age) && delta_ok(cc.s_maxage) && delta_ok(cc.max_stale));
    REQUIRE(delta_ok(cc.min_fresh) && delta_ok(cc.stale_while_revalidate));
    REQUIRE(delta_ok(cc.stale_if_error));
    free(p);
}

static void fuzz_range(const uint8_t *data, size_t size)
{
    uint64_t length = 0, first = 0, last = 0;
    char out[80], *p;

    if (size < 8) return;
    memcpy(&length, data, 8);
    if (data[0] & 1) length %= 1000; /* small lengths too */
    p = heap_copy(data + 8, size - 8);
    switch (cache_range_parse((struct http_str){p, size - 8}, length, &first, &last)) {
    case CACHE_RANGE_PARTIAL:
        REQUIRE(first <= last && last < length);
        REQUIRE(cache_content_range(CACHE_RANGE_PARTIAL, first, last, length, out, sizeof out) <
                sizeof out);
        break;
    case CACHE_RANGE_UNSATISFIABLE:
        REQUIRE(cache_content_range(CACHE_RANGE_UNSATISFIABLE, 0, 0, length, out, sizeof out) <
                sizeof out);
        break;
    case CACHE_RANGE_NONE:
        break;
    }
    free(p);
}

static void fuzz_etags(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t na = nl ? (size_t)(nl - data) : size, nb = nl ? size - na - 1 : 0;
    char *a = heap_copy(data, na), *b = heap_copy(nl ? nl + 1 : data, nb);
    struct http_str sa = {a, na}, sb = {b, nb};
    bool strong = cache_etag_strong_equal(sa, sb), weak = cache_etag_weak_equal(sa, sb);

    REQUIRE(!strong || weak);
    REQUIRE(strong == cache_etag_strong_equal(sb, sa));
    REQUIRE(weak == cache_etag_weak_equal(sb, sa));
    REQUIRE(!cache_if_range_holds(sa, sb, CACHE_ABSENT, NOW) || strong);
    free(a);
    free(b);
}

/* Builds into an exact-size buffer, checking the announced length. */
static char *built(size_t n, size_t (*again)(void *ctx, char *out, size_t cap), void *ctx)
{
    char *out = malloc(n + 1);

    REQUIRE(out != NULL);
    REQUIRE(again(ctx, out, n + 1) == n);
    REQUIRE(strlen(out) == n);
    return out;
}

struct build_ctx {
    const struct http_response *r;
    const char *stored;
    size_t stored_len;
};

static size_t build_head(void *ctx, char *out, size_t cap)
{
    const struct http_response *r = ((struct build_ctx *)ctx)->r;

    return cache_head_build(r->status, r->reason, r->headers, r->n_headers, NOW, out, cap);
}

static size_t merge_head(void *ctx, char *out, size_t cap)
{
    const struct build_ctx *c = ctx;

    return cache_head_merge(c->stored, c->stored_len, c->r->headers, c->r->n_headers, NOW, out,
                            cap);
}

static void check_reparses(const char *head, size_t n)
{
    static struct http_response back;

    REQUIRE(http1_parse_response(head, n, HTTP_GET, &back, NULL) == (int)n);
}

static void fuzz_policy(const struct http_response *r)
{
    struct cache_control cc;
    struct cache_meta m;
    struct cache_decision d;
    struct cache_defaults def = {30, 300};
    struct build_ctx ctx = {r, NULL, 0};
    char names[256], key[256];
    int nn;
    size_t n;
    char *head, *merged;

    cache_control_of(&cc, r->headers, r->n_headers);
    cache_storable(HTTP_GET, r->headers, r->n_headers, &cc, r->status, r->headers, r->n_headers,
                   &cc);
    cache_meta_init(&m, r->status, r->headers, r->n_headers, NOW - 1, NOW);
    REQUIRE(m.lifetime >= 0 && m.corrected_initial_age >= 0);
    cache_decide(&m, &cc, &def, NOW + 100, &d);
    REQUIRE(d.age >= 0);
    nn = cache_vary_names(r->headers, r->n_headers, names, sizeof names);
    if (nn >= 0 && (size_t)nn < sizeof names)
        cache_vary_key((struct http_str){names, (size_t)nn}, r->headers, r->n_headers, key,
                       sizeof key);
    cache_not_modified(HTTP_GET, r->headers, r->n_headers, (struct http_str){"\"x\"", 3}, NOW);
    head = built(build_head(&ctx, NULL, 0), build_head, &ctx);
    n = strlen(head);
    check_reparses(head, n);
    cache_head_field(head, n, "etag");
    ctx.stored = head;
    ctx.stored_len = n;
    merged = built(merge_head(&ctx, NULL, 0), merge_head, &ctx);
    check_reparses(merged, strlen(merged));
    free(merged);
    free(head);
}

static void fuzz_head(const uint8_t *data, size_t size)
{
    static const char status_line[] = "HTTP/1.1 200 OK\r\n";
    static struct http_response r;
    size_t n = sizeof status_line - 1 + size + 2;
    char *buf = malloc(n);

    REQUIRE(buf != NULL);
    memcpy(buf, status_line, sizeof status_line - 1);
    if (size) memcpy(buf + sizeof status_line - 1, data, size);
    memcpy(buf + n - 2, "\r\n", 2);
    if (http1_parse_response(buf, n, HTTP_GET, &r, NULL) > 0) fuzz_policy(&r);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    switch (data[0] % 4) {
    case 0:
        fuzz_cache_control(data + 1, size - 1);
        break;
    case 1:
        fuzz_range(data + 1, size - 1);
        break;
    case 2:
        fuzz_etags(data + 1, size - 1);
        break;
    default:
        fuzz_head(data + 1, size - 1);
        break;
    }
    return 0;
}
