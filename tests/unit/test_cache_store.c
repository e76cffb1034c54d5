#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache_store.h"
#include "http1.h"
#include "heads.h"
#include "test.h"

#define T0 INT64_C(1700000000)
#define KIB 1024u
#define MIB (1024u * 1024u)

/* A parsed request or response head, written with \n line ends. */
struct req {
    char buf[2048];
    struct http_request r;
    struct cache_control cc;
    struct cache_query q;
};

struct resp {
    char buf[2048];
    struct http_response r;
};

/* Failures seen by the worker threads (CHECK is not thread-safe). */
static atomic_int thread_failures;

#define THREAD_CHECK(cond) ((cond) ? (void)0 : (void)atomic_fetch_add(&thread_failures, 1))

/* A query for key `key` with extra request header lines. */
static const struct cache_query *query(struct req *h, const char *key, const char *extra,
                                       int64_t now)
{
    char text[1024];
    size_t len;

    snprintf(text, sizeof text, "GET /x HTTP/1.1\nHost: a\n%s", extra);
    len = crlf(h->buf, sizeof h->buf, text);
    THREAD_CHECK(http1_parse_request(h->buf, len, &h->r, NULL) == (int)len);
    cache_control_of(&h->cc, h->r.headers, h->r.n_headers);
    h->q = (struct cache_query){
        key, strlen(key), h->r.method_id, h->r.headers, h->r.n_headers, &h->cc, NULL, now};
    return &h->q;
}

static const struct http_response *response(struct resp *h, const char *text)
{
    size_t len = crlf(h->buf, sizeof h->buf, text);

    THREAD_CHECK(http1_parse_response(h->buf, len, HTTP_GET, &h->r, NULL) == (int)len);
    return &h->r;
}

/* A response head with max-age and a Content-Length of `length`. */
static const struct http_response *response_of(struct resp *h, int64_t max_age, size_t length,
                                               const char *extra)
{
    char text[1024];

    snprintf(text, sizeof text,
             "HTTP/1.1 200 OK\nCache-Control: max-age=%" PRId64 "\nContent-Length: %zu\n%s",
             max_age, length, extra);
    return response(h, text);
}

static char *read_all(const struct cache_object *o, size_t *len)
{
    size_t filled = cache_object_filled(o), at = 0, n;
    char *out = malloc(filled + 1);
    const char *p;

    while ((n = cache_object_read(o, at, &p)) > 0) {
        memcpy(out + at, p, n);
        at += n;
    }
    out[at] = '\0';
    *len = at;
    return out;
}

static bool body_is(const struct cache_object *o, const char *expect)
{
    size_t len;
    char *got = read_all(o, &len);
    bool same = len == strlen(expect) && memcmp(got, expect, len) == 0;

    free(got);
    return same;
}

/* Looks up key at `now`, and stores `body` under max-age if the lookup
 * hands out a fill. Returns the lookup's result. */
static enum cache_result store_one(struct cache_store *s, const char *key, const char *extra_req,
                                   int64_t now, int64_t max_age, const char *body,
                                   const char *extra_resp)
{
    struct req q;
    struct resp p;
    struct cache_lookup l;
    enum cache_result result;

    cache_lookup(s, query(&q, key, extra_req, now), &l);
    result = l.result;
    if (l.fill && (l.result == CACHE_MISS || l.result == CACHE_REVALIDATE)) {
        response_of(&p, max_age, strlen(body), extra_resp);
        if (cache_fill_head(s, l.fill, &q.q, &p.r, now, now) == CACHE_STORABLE) {
            CHECK_INT(cache_fill_append(s, l.fill, body, strlen(body)), 0);
            CHECK_INT(cache_fill_complete(s, l.fill), 0);
        }
    }
    cache_lookup_done(&l);
    return result;
}

static void test_miss_fill_hit(void)
{
    struct cache_store *s = cache_store_new(4 * MIB, 64 * KIB, 30);
    struct req q;
    struct cache_lookup l;
    size_t head_len;
    const char *head;

    CHECK_INT(store_one(s, "a/x", "", T0, 60, "hello", "ETag: \"v1\"\n"), CACHE_MISS);
    cache_lookup(s, query(&q, "a/x", "", T0 + 10), &l);
    CHECK_INT(l.result, CACHE_HIT);
    CHECK(l.fill == NULL);
    CHECK_INT(cache_object_state(l.object), CACHE_COMPLETE);
    CHECK(body_is(l.object, "hello"));
    CHECK_INT(cache_object_length(l.object), 5);
    CHECK_INT(cache_object_status(l.object), 200);
    CHECK_INT(l.decision.age, 10);
    CHECK_INT(l.decision.ttl, 50);
    CHECK(http1_str_is(cache_object_etag(l.object), "\"v1\""));
    head = cache_object_head(l.object, &head_len);
    CHECK(head && strncmp(head, "HTTP/1.1 200 OK\r\n", 17) == 0);
    CHECK(cache_head_field(head, head_len, "content-length").p == NULL);
    cache_lookup_done(&l);
    /* Stale: revalidate, with a fill. HEAD and no-store never fill. */
    cache_lookup(s, query(&q, "a/x", "", T0 + 100), &l);
    CHECK_INT(l.result, CACHE_REVALIDATE);
    CHECK(l.object && l.fill);
    cache_fill_abandon(s, l.fill);
    cache_lookup_done(&l);
    cache_lookup(s, query(&q, "b/x", "Cache-Control: no-store\n", T0), &l);
    CHECK(l.result == CACHE_MISS && !l.fill && !l.object);
    cache_lookup_done(&l);
    query(&q, "b/x", "", T0);
    q.q.method = HTTP_HEAD;
    cache_lookup(s, &q.q, &l);
    CHECK(l.result == CACHE_MISS && !l.fill);
    cache_lookup_done(&l);
    cache_lookup(s, query(&q, "b/x", "Cache-Control: only-if-cached\n", T0), &l);
    CHECK(l.result == CACHE_MISS && !l.fill);
    cache_lookup_done(&l);
    cache_store_free(s);
}

static void test_not_stored(void)
{
    struct cache_store *s = cache_store_new(4 * MIB, 64 * KIB, 30);
    size_t empty = cache_store_bytes(s); /* the bucket arrays */
    struct req q;
    struct resp p;
    struct cache_lookup l;

    cache_lookup(s, query(&q, "k", "", T0), &l);
    response(&p, "HTTP/1.1 200 OK\nCache-Control: private\nContent-Length: 1\n");
    CHECK_INT(cache_fill_head(s, l.fill, &q.q, &p.r, T0, T0), CACHE_NOT_PRIVATE);
    CHECK_INT(cache_object_state(l.fill), CACHE_ABANDONED);
    CHECK_INT(cache_fill_append(s, l.fill, "x", 1), -1);
    cache_lookup_done(&l);
    /* Too large, known in advance. */
    cache_lookup(s, query(&q, "k", "", T0), &l);
    CHECK_INT(l.result, CACHE_MISS);
    response_of(&p, 60, 64 * KIB + 1, "");
    CHECK_INT(cache_fill_head(s, l.fill, &q.q, &p.r, T0, T0), CACHE_NOT_TOO_LARGE);
    cache_lookup_done(&l);
    /* Too large, found out while filling (no Content-Length). */
    cache_lookup(s, query(&q, "k", "", T0), &l);
    response(&p, "HTTP/1.1 200 OK\nCache-Control: max-age=60\nTransfer-Encoding: chunked\n");
    CHECK_INT(cache_fill_head(s, l.fill, &q.q, &p.r, T0, T0), CACHE_STORABLE);
    CHECK_INT(cache_object_length(l.fill), -1);
    {
        static char block[16 * KIB];

        for (int i = 0; i < 4; i++)
            CHECK_INT(cache_fill_append(s, l.fill, block, sizeof block), 0);
        CHECK_INT(cache_fill_append(s, l.fill, block, 1), -1);
    }
    CHECK_INT(cache_object_state(l.fill), CACHE_ABANDONED);
    CHECK_INT(cache_fill_complete(s, l.fill), -1);
    cache_lookup_done(&l);
    /* Shorter than its Content-Length. */
    cache_lookup(s, query(&q, "k", "", T0), &l);
    response_of(&p, 60, 10, "");
    CHECK_INT(cache_fill_head(s, l.fill, &q.q, &p.r, T0, T0), CACHE_STORABLE);
    CHECK_INT(cache_fill_append(s, l.fill, "abc", 3), 0);
    CHECK_INT(cache_fill_complete(s, l.fill), -1);
    cache_lookup_done(&l);
    cache_lookup(s, query(&q, "k", "", T0), &l);
    CHECK(l.result == CACHE_MISS && l.fill);
    cache_fill_abandon(s, l.fill);
    cache_lookup_done(&l);
    CHECK_INT(cache_store_bytes(s), empty); /* all given back */
    cache_store_free(s);
}

static void test_unknown_length(void)
{
    struct cache_store *s = cache_store_new(16 * MIB, MIB, 30);
    struct req q;
    struct resp p;
    struct cache_lookup l;
    size_t total = 200 * KIB + 17, len;
    char *body = malloc(total), *got;

    for (size_t i = 0; i < total; i++)
        body[i] = (char)(i * 7);
    cache_lookup(s, query(&q, "chunky", "", T0), &l);
    response(&p, "HTTP/1.1 200 OK\nCache-Control: max-age=60\nTransfer-Encoding: chunked\n");
    CHECK_INT(cache_fill_head(s, l.fill, &q.q, &p.r, T0, T0), CACHE_STORABLE);
    for (size_t at = 0; at < total; at += 1000)
        CHECK_INT(cache_fill_append(s, l.fill, body + at, total - at < 1000 ? total - at : 1000),
                  0);
    CHECK_INT(cache_fill_complete(s, l.fill), 0);
    CHECK_INT(cache_object_length(l.fill), total);
    got = read_all(l.fill, &len);
    CHECK_INT(len, total);
    CHECK(memcmp(got, body, total) == 0);
    free(got);
    free(body);
    cache_lookup_done(&l);
    cache_store_free(s);
}

static void test_coalescing(void)
{
    struct cache_store *s = cache_store_new(4 * MIB, 64 * KIB, 30);
    struct req qa, qb, qc;
    struct resp p;
    struct cache_lookup a, b, c;
    const char *bytes;

    cache_lookup(s, query(&qa, "k", "", T0), &a);
    CHECK(a.result == CACHE_MISS && a.fill);
    cache_lookup(s, query(&qb, "k", "", T0), &b);
    CHECK_INT(b.result, CACHE_WAIT);
    CHECK(b.fill == a.fill);
    CHECK_INT(cache_object_state(b.fill), CACHE_PENDING);
    CHECK_INT(cache_object_filled(b.fill), 0);
    CHECK_INT(cache_object_started(b.fill), T0);
    CHECK(!cache_object_matches(b.fill, qb.r.headers, qb.r.n_headers));
    response_of(&p, 60, 10, "");
    CHECK_INT(cache_fill_head(s, a.fill, &qa.q, &p.r, T0, T0), CACHE_STORABLE);
    CHECK_INT(cache_object_state(b.fill), CACHE_FILLING);
    CHECK(cache_object_matches(b.fill, qb.r.headers, qb.r.n_headers));
    CHECK_INT(cache_object_length(b.fill), 10);
    CHECK_INT(cache_fill_append(s, a.fill, "hello", 5), 0);
    CHECK_INT(cache_object_filled(b.fill), 5);
    CHECK_INT(cache_object_read(b.fill, 0, &bytes), 5);
    CHECK(memcmp(bytes, "hello", 5) == 0);
    CHECK_INT(cache_object_read(b.fill, 5, &bytes), 0);
    /* Still filling: a third request waits too. */
    cache_lookup(s, query(&qc, "k", "", T0), &c);
    CHECK_INT(c.result, CACHE_WAIT);
    cache_lookup_done(&c);
    CHECK_INT(cache_fill_append(s, a.fill, "world", 5), 0);
    CHECK_INT(cache_fill_complete(s, a.fill), 0);
    CHECK_INT(cache_object_state(b.fill), CACHE_COMPLETE);
    CHECK(body_is(b.fill, "helloworld"));
    cache_lookup_done(&a);
    cache_lookup_done(&b);
    cache_lookup(s, query(&qc, "k", "", T0 + 1), &c);
    CHECK_INT(c.result, CACHE_HIT);
    CHECK(body_is(c.object, "helloworld"));
    cache_lookup_done(&c);
    cache_store_free(s);
}

static void test_abandoned_fill(void)
{
    struct cache_store *s = cache_store_new(4 * MIB, 64 * KIB, 30);
    struct req qa, qb;
    struct resp p;
    struct cache_lookup a, b;

    cache_lookup(s, query(&qa, "k", "", T0), &a);
    cache_lookup(s, query(&qb, "k", "", T0), &b);
    CHECK_INT(b.result, CACHE_WAIT);
    response_of(&p, 60, 10, "");
    CHECK_INT(cache_fill_head(s, a.fill, &qa.q, &p.r, T0, T0), CACHE_STORABLE);
    CHECK_INT(cache_fill_append(s, a.fill, "hel", 3), 0);
    cache_fill_abandon(s, a.fill); /* the origin went away */
    CHECK_INT(cache_object_state(b.fill), CACHE_ABANDONED);
    cache_fill_abandon(s, a.fill); /* harmless twice */
    cache_lookup_done(&a);
    cache_lookup_done(&b);
    cache_lookup(s, query(&qa, "k", "", T0), &a);
    CHECK(a.result == CACHE_MISS && a.fill); /* the next request fetches it */
    cache_fill_abandon(s, a.fill);
    cache_lookup_done(&a);
    cache_store_free(s);
}

static void test_fill_timeout(void)
{
    struct cache_store *s = cache_store_new(4 * MIB, 64 * KIB, 30);
    struct req qa, qb;
    struct resp p;
    struct cache_lookup a, b;

    cache_lookup(s, query(&qa, "k", "", T0), &a);
    cache_lookup(s, query(&qb, "k", "", T0 + 29), &b);
    CHECK_INT(b.result, CACHE_WAIT);
    cache_lookup_done(&b);
    cache_lookup(s, query(&qb, "k", "", T0 + 30), &b);
    CHECK(b.result == CACHE_MISS && b.fill && b.fill != a.fill);
    /* The stuck fill completes late: it is no longer the key's. */
    response_of(&p, 60, 3, "");
    CHECK_INT(cache_fill_head(s, a.fill, &qa.q, &p.r, T0, T0), CACHE_STORABLE);
    CHECK_INT(cache_fill_append(s, a.fill, "old", 3), 0);
    CHECK_INT(cache_fill_complete(s, a.fill), 0);
    cache_lookup_done(&a);
    CHECK_INT(cache_fill_head(s, b.fill, &qb.q, &p.r, T0 + 30, T0 + 30), CACHE_STORABLE);
    CHECK_INT(cache_fill_append(s, b.fill, "new", 3), 0);
    CHECK_INT(cache_fill_complete(s, b.fill), 0);
    cache_lookup_done(&b);
    cache_lookup(s, query(&qa, "k", "", T0 + 31), &a);
    CHECK_INT(a.result, CACHE_HIT);
    CHECK(body_is(a.object, "new"));
    cache_lookup_done(&a);
    cache_store_free(s);
}

static void test_vary(void)
{
    struct cache_store *s = cache_store_new(4 * MIB, 64 * KIB, 30);
    struct req q;
    struct cache_lookup l;
    const char *vary = "Vary: Accept-Encoding\n";

    CHECK_INT(store_one(s, "k", "Accept-Encoding: gzip\n", T0, 60, "GZ", vary), CACHE_MISS);
    cache_lookup(s, query(&q, "k", "Accept-Encoding: br\n", T0), &l);
    CHECK(l.result == CACHE_MISS && l.vary_miss && l.fill);
    cache_fill_abandon(s, l.fill);
    cache_lookup_done(&l);
    CHECK_INT(store_one(s, "k", "Accept-Encoding: br\n", T0, 60, "BR", vary), CACHE_MISS);
    CHECK_INT(store_one(s, "k", "", T0, 60, "ID", vary), CACHE_MISS);
    cache_lookup(s, query(&q, "k", "accept-encoding:   gzip\n", T0 + 1), &l);
    CHECK_INT(l.result, CACHE_HIT);
    CHECK(body_is(l.object, "GZ"));
    cache_lookup_done(&l);
    cache_lookup(s, query(&q, "k", "Accept-Encoding: br\n", T0 + 1), &l);
    CHECK(l.result == CACHE_HIT && body_is(l.object, "BR"));
    cache_lookup_done(&l);
    cache_lookup(s, query(&q, "k", "", T0 + 1), &l);
    CHECK(l.result == CACHE_HIT && body_is(l.object, "ID"));
    cache_lookup_done(&l);
    /* A new response for a variant replaces it; past CACHE_MAX_VARIANTS
     * the oldest goes. */
    CHECK_INT(store_one(s, "k", "Accept-Encoding: br\n", T0 + 100, 60, "BR2", vary),
              CACHE_REVALIDATE);
    cache_lookup(s, query(&q, "k", "Accept-Encoding: br\n", T0 + 101), &l);
    CHECK(l.result == CACHE_HIT && body_is(l.object, "BR2"));
    cache_lookup_done(&l);
    CHECK_INT(store_one(s, "k", "Accept-Encoding: a\n", T0 + 100, 60, "A", vary), CACHE_MISS);
    CHECK_INT(store_one(s, "k", "Accept-Encoding: b\n", T0 + 100, 60, "B", vary), CACHE_MISS);
    cache_lookup(s, query(&q, "k", "Accept-Encoding: gzip\n", T0 + 101), &l);
    CHECK_INT(l.result, CACHE_MISS); /* the oldest, gone */
    cache_fill_abandon(s, l.fill);
    cache_lookup_done(&l);
    cache_store_free(s);
}

static void test_refresh_304(void)
{
    struct cache_store *s = cache_store_new(4 * MIB, 64 * KIB, 30);
    struct req q;
    struct resp p;
    struct cache_lookup l;
    size_t head_len;
    const char *head;

    store_one(s, "k", "", T0, 10, "body", "ETag: \"v1\"\nX-Old: 1\n");
    cache_lookup(s, query(&q, "k", "", T0 + 20), &l);
    CHECK(l.result == CACHE_REVALIDATE && l.object && l.fill);
    CHECK(!l.decision.serve_on_error);
    response(&p, "HTTP/1.1 304 Not Modified\nCache-Control: max-age=100\nETag: \"v1\"\nX-New: 2\n");
    CHECK_INT(cache_fill_refresh(s, l.fill, l.object, &p.r, T0 + 20, T0 + 20), 0);
    CHECK_INT(cache_object_state(l.fill), CACHE_COMPLETE);
    cache_lookup_done(&l);
    cache_lookup(s, query(&q, "k", "", T0 + 30), &l);
    CHECK_INT(l.result, CACHE_HIT);
    CHECK_INT(l.decision.ttl, 90);
    CHECK(body_is(l.object, "body"));
    CHECK_INT(cache_object_length(l.object), 4);
    head = cache_object_head(l.object, &head_len);
    CHECK(http1_str_is(cache_head_field(head, head_len, "cache-control"), "max-age=100"));
    CHECK(http1_str_is(cache_head_field(head, head_len, "x-old"), "1"));
    CHECK(http1_str_is(cache_head_field(head, head_len, "x-new"), "2"));
    CHECK(http1_str_is(cache_object_etag(l.object), "\"v1\""));
    cache_lookup_done(&l);
    cache_store_free(s);
}

static void test_stale_while_revalidate(void)
{
    struct cache_store *s = cache_store_new(4 * MIB, 64 * KIB, 30);
    struct req q;
    struct cache_lookup a, b;
    struct cache_defaults def = {0, 600};

    store_one(s, "k", "", T0, 10, "v", "Cache-Control: stale-while-revalidate=60\n");
    cache_lookup(s, query(&q, "k", "", T0 + 20), &a);
    CHECK(a.result == CACHE_STALE && a.object && a.fill); /* serve, and refresh */
    cache_lookup(s, query(&q, "k", "", T0 + 20), &b);
    CHECK(b.result == CACHE_STALE && b.object && !b.fill); /* someone refreshes already */
    cache_lookup_done(&b);
    cache_fill_abandon(s, a.fill);
    cache_lookup_done(&a);
    /* Past the window: revalidate first; the route lets it serve on error. */
    query(&q, "k", "", T0 + 100);
    q.q.defaults = &def;
    cache_lookup(s, &q.q, &a);
    CHECK(a.result == CACHE_REVALIDATE && a.fill && a.decision.serve_on_error);
    /* Others wait for the revalidation, holding the stale object meanwhile. */
    cache_lookup(s, &q.q, &b);
    CHECK(b.result == CACHE_WAIT && b.fill == a.fill && b.object == a.object);
    cache_fill_abandon(s, a.fill);
    CHECK_INT(cache_object_state(b.fill), CACHE_ABANDONED);
    cache_lookup_done(&a);
    cache_lookup_done(&b);
    cache_store_free(s);
}

static void test_purge(void)
{
    struct cache_store *s = cache_store_new(4 * MIB, 64 * KIB, 30);
    struct req q;
    struct cache_lookup held, l;

    store_one(s, "h/a/1", "", T0, 60, "a1", "");
    store_one(s, "h/a/2", "", T0, 60, "a2", "");
    store_one(s, "h/b/1", "", T0, 60, "b1", "");
    store_one(s, "h/a", "", T0, 60, "a", "");
    cache_lookup(s, query(&q, "h/a/1", "", T0), &held);
    CHECK_INT(held.result, CACHE_HIT);
    CHECK_INT(cache_purge_prefix(s, "h/a/", 4), 2);
    CHECK(body_is(held.object, "a1")); /* still readable while held */
    cache_lookup_done(&held);
    cache_lookup(s, query(&q, "h/a/2", "", T0), &l);
    CHECK_INT(l.result, CACHE_MISS);
    cache_fill_abandon(s, l.fill);
    cache_lookup_done(&l);
    CHECK_INT(store_one(s, "h/b/1", "", T0, 60, "", ""), CACHE_HIT);
    CHECK_INT(store_one(s, "h/a", "", T0, 60, "", ""), CACHE_HIT);
    CHECK_INT(cache_purge(s, "h/a", 3), 1);
    CHECK_INT(cache_purge(s, "h/a", 3), 0);
    CHECK_INT(store_one(s, "h/a", "", T0, 60, "x", ""), CACHE_MISS);
    /* A purge during a fill: the fill serves its waiters, is not kept. */
    cache_lookup(s, query(&q, "h/c", "", T0), &l);
    CHECK_INT(cache_purge_prefix(s, "h/", 2), 3);
    {
        struct resp p;

        response_of(&p, 60, 1, "");
        CHECK_INT(cache_fill_head(s, l.fill, &q.q, &p.r, T0, T0), CACHE_STORABLE);
        CHECK_INT(cache_fill_append(s, l.fill, "c", 1), 0);
        CHECK_INT(cache_fill_complete(s, l.fill), 0);
    }
    cache_lookup_done(&l);
    CHECK_INT(store_one(s, "h/c", "", T0, 60, "c", ""), CACHE_MISS);
    cache_store_free(s);
}

static void test_eviction_bounded(void)
{
    size_t budget = 2 * MIB, max_seen = 0;
    struct cache_store *s = cache_store_new(budget, 64 * KIB, 30);
    struct cache_stats st;
    static char body[4 * KIB];
    char key[32];
    struct req q;
    struct cache_lookup held, l;

    memset(body, 'x', sizeof body - 1);
    store_one(s, "held", "", T0, 600, "precious", "");
    cache_lookup(s, query(&q, "held", "", T0), &held);
    CHECK_INT(held.result, CACHE_HIT);
    /* Ten budgets' worth of distinct objects. */
    for (unsigned i = 0; i < 10 * budget / sizeof body; i++) {
        size_t bytes;

        snprintf(key, sizeof key, "key/%u", i);
        store_one(s, key, "", T0, 600, body, "");
        bytes = cache_store_bytes(s);
        if (bytes > max_seen) max_seen = bytes;
    }
    CHECK(max_seen <= budget);
    cache_store_stats(s, &st);
    CHECK(st.keys > budget / sizeof body / 2); /* well used, too */
    CHECK(st.bytes > budget / 2);
    CHECK(body_is(held.object, "precious")); /* evicted, alive while held */
    cache_lookup_done(&held);
    /* Keys in use survive a scan of one-off keys (SIEVE). */
    store_one(s, "hot", "", T0, 600, "hot", "");
    for (unsigned i = 0; i < 4 * budget / sizeof body; i++) {
        snprintf(key, sizeof key, "scan/%u", i);
        store_one(s, key, "", T0, 600, body, "");
        CHECK_INT(store_one(s, "hot", "", T0, 600, "hot", ""), CACHE_HIT);
    }
    cache_lookup(s, query(&q, "key/1", "", T0), &l);
    CHECK_INT(l.result, CACHE_MISS);
    cache_fill_abandon(s, l.fill);
    cache_lookup_done(&l);
    cache_store_free(s);
}

static void test_small_budget(void)
{
    struct cache_store *s = cache_store_new(64 * KIB, 8 * MIB, 30);
    struct cache_stats st;

    CHECK(s != NULL);
    cache_store_stats(s, &st);
    CHECK_INT(st.shards, 1);
    CHECK_INT(st.max_object, 16 * KIB); /* a quarter of the shard's share */
    CHECK(cache_store_new(0, 1, 1) == NULL);
    cache_store_free(s);
}

/* ---- threads ------------------------------------------------------------- */

#define THREADS 4
#define KEYS 64

struct worker {
    struct cache_store *s;
    unsigned seed;
    atomic_bool *stop;
    size_t hits, fills, waits, purges, max_bytes;
};

static char pattern(unsigned key, size_t i)
{
    return (char)(key * 31 + i);
}

static bool check_body(const struct cache_object *o, unsigned key)
{
    size_t at = 0, n;
    const char *p;

    while ((n = cache_object_read(o, at, &p)) > 0)
        for (size_t i = 0; i < n; i++, at++)
            if (p[i] != pattern(key, at)) return false;
    return true;
}

static void do_fill(struct worker *w, const struct cache_query *q, struct cache_object *fill,
                    unsigned key, int64_t now)
{
    struct resp p;
    char buf[4096];
    size_t length = (size_t)rand_r(&w->seed) % (40 * KIB);
    bool chunked = rand_r(&w->seed) % 2, give_up = rand_r(&w->seed) % 8 == 0;

    if (chunked)
        response(&p, "HTTP/1.1 200 OK\nCache-Control: max-age=1\nTransfer-Encoding: chunked\n");
    else
        response_of(&p, 1, length, "");
    if (cache_fill_head(w->s, fill, q, &p.r, now, now) != CACHE_STORABLE) return;
    for (size_t at = 0; at < length; at += sizeof buf) {
        size_t n = length - at < sizeof buf ? length - at : sizeof buf;

        for (size_t i = 0; i < n; i++)
            buf[i] = pattern(key, at + i);
        if (cache_fill_append(w->s, fill, buf, n) < 0) return;
        if (give_up && at > length / 2) {
            cache_fill_abandon(w->s, fill);
            return;
        }
    }
    cache_fill_complete(w->s, fill);
    w->fills++;
}

static void do_wait(struct worker *w, struct cache_object *fill, unsigned key)
{
    for (int spins = 0; spins < 1000; spins++) {
        enum cache_state st = cache_object_state(fill);

        THREAD_CHECK(check_body(fill, key));
        if (st == CACHE_COMPLETE || st == CACHE_ABANDONED) break;
        sched_yield();
    }
    w->waits++;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    char key_text[32];

    while (!atomic_load(w->stop)) {
        unsigned key = (unsigned)rand_r(&w->seed) % KEYS, op = (unsigned)rand_r(&w->seed) % 100;
        int64_t now = T0 + (int64_t)time(NULL) % 1000;
        struct req q;
        struct cache_lookup l;
        size_t bytes;

        snprintf(key_text, sizeof key_text, "k/%u/%u", key % 4, key);
        if (op == 0) {
            cache_purge_prefix(w->s, "k/1/", 4);
            w->purges++;
            continue;
        }
        if (op == 1) {
            cache_purge(w->s, key_text, strlen(key_text));
            continue;
        }
        cache_lookup(w->s, query(&q, key_text, "", now), &l);
        if (l.object) {
            THREAD_CHECK(check_body(l.object, key));
            w->hits++;
        }
        if (l.result == CACHE_WAIT)
            do_wait(w, l.fill, key);
        else if (l.fill)
            do_fill(w, &q.q, l.fill, key, now);
        cache_lookup_done(&l);
        bytes = cache_store_bytes(w->s);
        if (bytes > w->max_bytes) w->max_bytes = bytes;
    }
    return NULL;
}

static void test_threads(void)
{
    size_t budget = MIB;
    struct cache_store *s = cache_store_new(budget, 64 * KIB, 5);
    struct worker w[THREADS];
    pthread_t t[THREADS];
    atomic_bool stop = false;
    struct timespec second = {1, 0};
    size_t hits = 0, fills = 0, waits = 0;

    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker){.s = s, .seed = (unsigned)i + 1, .stop = &stop};
        CHECK_INT(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
    }
    nanosleep(&second, NULL);
    atomic_store(&stop, true);
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        CHECK(w[i].max_bytes <= budget);
        hits += w[i].hits;
        fills += w[i].fills;
        waits += w[i].waits;
    }
    CHECK_INT(atomic_load(&thread_failures), 0);
    fprintf(stderr, "threads: %zu hits, %zu fills, %zu waits\n", hits, fills, waits);
    CHECK(hits > 0 && fills > 0);
    cache_store_free(s);
}

int main(void)
{
    RUN(test_miss_fill_hit);
    RUN(test_not_stored);
    RUN(test_unknown_length);
    RUN(test_coalescing);
    RUN(test_abandoned_fill);
    RUN(test_fill_timeout);
    RUN(test_vary);
    RUN(test_refresh_304);
    RUN(test_stale_while_revalidate);
    RUN(test_purge);
    RUN(test_eviction_bounded);
    RUN(test_small_budget);
    RUN(test_threads);
    return TEST_REPORT();
}
