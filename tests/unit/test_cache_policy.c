#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cache_policy.h"
#include "http1.h"
#include "heads.h"
#include "test.h"

#define T0 INT64_C(1700000000) /* some instant; Dates below are relative to it */

/* A response or request head written with \n line ends, parsed. */
struct resp {
    char buf[8192];
    struct http_response r;
};

struct req {
    char buf[8192];
    struct http_request r;
};

static const struct http_response *response(struct resp *h, const char *text)
{
    size_t len = crlf(h->buf, sizeof h->buf, text);

    CHECK_INT(http1_parse_response(h->buf, len, HTTP_GET, &h->r, NULL), (int)len);
    return &h->r;
}

static const struct http_request *request(struct req *h, const char *text)
{
    size_t len = crlf(h->buf, sizeof h->buf, text);

    CHECK_INT(http1_parse_request(h->buf, len, &h->r, NULL), (int)len);
    return &h->r;
}

/* An HTTP-date for T0 + delta (a few at a time). */
static const char *date(int64_t delta)
{
    static char ring[8][32];
    static int next;
    char *out = ring[next++ % 8];

    out[http_date_format(out, T0 + delta)] = '\0';
    return out;
}

static struct http_str str(const char *s)
{
    return (struct http_str){s, strlen(s)};
}

static struct cache_control cc_of(const char *value)
{
    struct cache_control cc;

    cache_control_init(&cc);
    cache_control_parse(&cc, str(value));
    return cc;
}

/* ---- Cache-Control ------------------------------------------------------- */

static void test_cache_control_response(void)
{
    struct cache_control cc = cc_of("max-age=60, s-maxage=30, public, must-revalidate");

    CHECK_INT(cc.max_age, 60);
    CHECK_INT(cc.s_maxage, 30);
    CHECK(cc.is_public && cc.must_revalidate && !cc.proxy_revalidate && !cc.no_store);
    cc = cc_of("MAX-AGE=\"5\" , proxy-revalidate,immutable");
    CHECK_INT(cc.max_age, 5);
    CHECK(cc.proxy_revalidate && cc.immutable);
    cc = cc_of("stale-while-revalidate=30, stale-if-error=600, no-store");
    CHECK_INT(cc.stale_while_revalidate, 30);
    CHECK_INT(cc.stale_if_error, 600);
    CHECK(cc.no_store);
    CHECK_INT(cc.max_age, CACHE_ABSENT);
    /* Field-named forms, a comma inside the quotes. */
    cc = cc_of("no-cache=\"Set-Cookie, X-Foo\", max-age=10");
    CHECK(cc.no_cache && !cc.is_private);
    CHECK_INT(cc.max_age, 10);
    cc = cc_of("private=\"Authorization\"");
    CHECK(cc.is_private);
    /* Unknown directives and empty members are ignored. */
    cc = cc_of(",, community=\"UCI\" ,max-age=7,");
    CHECK_INT(cc.max_age, 7);
}

static void test_cache_control_invalid(void)
{
    CHECK_INT(cc_of("max-age=abc").max_age, 0); /* invalid: stale */
    CHECK_INT(cc_of("max-age=").max_age, 0);
    CHECK_INT(cc_of("max-age").max_age, 0);
    CHECK_INT(cc_of("max-age=-1").max_age, 0);
    CHECK_INT(cc_of("max-age=5, max-age=10").max_age, 0); /* conflicting: stale */
    CHECK_INT(cc_of("max-age=5, max-age=5").max_age, 5);
    CHECK_INT(cc_of("s-maxage=1x").s_maxage, 0);
    CHECK_INT(cc_of("max-age=99999999999999999999999").max_age, CACHE_DELTA_MAX);
    CHECK_INT(cc_of("stale-if-error=x").stale_if_error, CACHE_ABSENT);
    CHECK_INT(cc_of("stale-if-error=5, stale-if-error=9").stale_if_error, 5);
}

static void test_cache_control_request(void)
{
    struct req q;
    const struct http_request *r;
    struct cache_control cc = cc_of("max-stale");

    CHECK_INT(cc.max_stale, CACHE_DELTA_MAX);
    cc = cc_of("max-stale=10, min-fresh=5, only-if-cached, no-cache, max-age=0");
    CHECK_INT(cc.max_stale, 10);
    CHECK_INT(cc.min_fresh, 5);
    CHECK_INT(cc.max_age, 0);
    CHECK(cc.only_if_cached && cc.no_cache);
    r = request(&q, "GET / HTTP/1.1\nHost: a\nCache-Control: no-store\ncache-control: max-age=3\n");
    cache_control_of(&cc, r->headers, r->n_headers);
    CHECK(cc.no_store);
    CHECK_INT(cc.max_age, 3);
}

/* ---- storing ------------------------------------------------------------- */

static enum cache_storable storable(enum http_method m, const char *req_text, const char *resp_text)
{
    struct req q;
    struct resp p;
    const struct http_request *r = request(&q, req_text);
    const struct http_response *s = response(&p, resp_text);
    struct cache_control rcc, scc;

    cache_control_of(&rcc, r->headers, r->n_headers);
    cache_control_of(&scc, s->headers, s->n_headers);
    return cache_storable(m, r->headers, r->n_headers, &rcc, s->status, s->headers, s->n_headers,
                          &scc);
}

#define GET "GET / HTTP/1.1\nHost: a\n"
#define AUTH "GET / HTTP/1.1\nHost: a\nAuthorization: Bearer x\n"

static void test_storable(void)
{
    CHECK_INT(storable(HTTP_GET, GET, "HTTP/1.1 200 OK\n"), CACHE_STORABLE); /* heuristic */
    CHECK_INT(storable(HTTP_POST, GET, "HTTP/1.1 200 OK\nCache-Control: max-age=9\n"),
              CACHE_NOT_METHOD);
    CHECK_INT(storable(HTTP_HEAD, GET, "HTTP/1.1 200 OK\n"), CACHE_NOT_METHOD);
    CHECK_INT(storable(HTTP_GET, GET, "HTTP/1.1 206 Partial\nCache-Control: max-age=9\n"),
              CACHE_NOT_STATUS);
    CHECK_INT(storable(HTTP_GET, GET, "HTTP/1.1 304 Not Modified\n"), CACHE_NOT_STATUS);
    CHECK_INT(storable(HTTP_GET, GET, "HTTP/1.1 302 Found\n"), CACHE_NOT_FRESHNESS);
    CHECK_INT(storable(HTTP_GET, GET, "HTTP/1.1 302 Found\nCache-Control: max-age=9\n"),
              CACHE_STORABLE);
    CHECK_INT(storable(HTTP_GET, GET, "HTTP/1.1 302 Found\nExpires: 0\n"), CACHE_STORABLE);
    CHECK_INT(storable(HTTP_GET, GET, "HTTP/1.1 500 Oops\n"), CACHE_NOT_FRESHNESS);
    CHECK_INT(storable(HTTP_GET, GET, "HTTP/1.1 404 Not Found\n"), CACHE_STORABLE);
    CHECK_INT(storable(HTTP_GET, GET, "HTTP/1.1 410 Gone\n"), CACHE_STORABLE);
    CHECK_INT(storable(HTTP_GET, GET "Cache-Control: no-store\n", "HTTP/1.1 200 OK\n"),
              CACHE_NOT_NO_STORE);
    CHECK_INT(storable(HTTP_GET, GET, "HTTP/1.1 200 OK\nCache-Control: no-store, max-age=9\n"),
              CACHE_NOT_NO_STORE);
    CHECK_INT(storable(HTTP_GET, GET, "HTTP/1.1 200 OK\nCache-Control: private, max-age=9\n"),
              CACHE_NOT_PRIVATE);
    CHECK_INT(storable(HTTP_GET, GET, "HTTP/1.1 200 OK\nVary: Accept, *\n"), CACHE_NOT_VARY_STAR);
    CHECK_INT(storable(HTTP_GET, GET,
                       "HTTP/1.1 200 OK\nCache-Control: public, s-maxage=60\nSet-Cookie: a=b\n"),
              CACHE_NOT_SET_COOKIE);
    /* no-cache responses are stored, and revalidated on every use. */
    CHECK_INT(storable(HTTP_GET, GET, "HTTP/1.1 200 OK\nCache-Control: no-cache\n"),
              CACHE_STORABLE);
}

static void test_storable_authorization(void)
{
    CHECK_INT(storable(HTTP_GET, AUTH, "HTTP/1.1 200 OK\n"), CACHE_NOT_AUTHORIZATION);
    CHECK_INT(storable(HTTP_GET, AUTH, "HTTP/1.1 200 OK\nCache-Control: max-age=60\n"),
              CACHE_NOT_AUTHORIZATION);
    CHECK_INT(storable(HTTP_GET, AUTH, "HTTP/1.1 200 OK\nCache-Control: public\n"), CACHE_STORABLE);
    CHECK_INT(storable(HTTP_GET, AUTH, "HTTP/1.1 200 OK\nCache-Control: s-maxage=60\n"),
              CACHE_STORABLE);
    CHECK_INT(
        storable(HTTP_GET, AUTH, "HTTP/1.1 200 OK\nCache-Control: must-revalidate, max-age=60\n"),
        CACHE_STORABLE);
    CHECK_STR(cache_storable_name(CACHE_NOT_AUTHORIZATION), "authorization");
}

/* ---- freshness and age --------------------------------------------------- */

static struct cache_meta meta_of(const char *text, int64_t request_time, int64_t response_time)
{
    struct resp p;
    const struct http_response *r = response(&p, text);
    struct cache_meta m;

    cache_meta_init(&m, r->status, r->headers, r->n_headers, request_time, response_time);
    return m;
}

static void test_age(void)
{
    char text[512];
    struct cache_meta m;

    /* Sent at T0, received at T0+2, Date T0+1, Age 10: apparent_age 1,
     * response_delay 2, corrected_age_value 12 -> corrected_initial_age 12. */
    snprintf(text, sizeof text, "HTTP/1.1 200 OK\nDate: %s\nAge: 10\nCache-Control: max-age=60\n",
             date(1));
    m = meta_of(text, T0, T0 + 2);
    CHECK_INT(m.corrected_initial_age, 12);
    CHECK_INT(cache_current_age(&m, T0 + 10), 20); /* + resident time 8 */
    CHECK_INT(m.lifetime, 60);
    /* Date well before arrival, no Age: the apparent age wins. */
    snprintf(text, sizeof text, "HTTP/1.1 200 OK\nDate: %s\n", date(-100));
    m = meta_of(text, T0, T0 + 1);
    CHECK_INT(m.corrected_initial_age, 101);
    /* A Date in the future (clock skew) counts as age 0; invalid Age ignored. */
    snprintf(text, sizeof text, "HTTP/1.1 200 OK\nDate: %s\nAge: abc\n", date(500));
    m = meta_of(text, T0, T0);
    CHECK_INT(m.corrected_initial_age, 0);
    CHECK_INT(m.date, T0 + 500);
    /* No Date: the arrival time stands in; a list Age uses its first member. */
    m = meta_of("HTTP/1.1 200 OK\nAge: 7, 9\n", T0, T0 + 1);
    CHECK_INT(m.date, T0 + 1);
    CHECK_INT(m.corrected_initial_age, 8);
    CHECK_INT(cache_current_age(&m, T0 - 50), 8); /* the clock went back */
}

static void test_lifetime(void)
{
    char text[512];

    snprintf(text, sizeof text,
             "HTTP/1.1 200 OK\nDate: %s\nExpires: %s\nCache-Control: max-age=60, s-maxage=5\n",
             date(0), date(1000));
    CHECK_INT(meta_of(text, T0, T0).lifetime, 5);
    snprintf(text, sizeof text,
             "HTTP/1.1 200 OK\nDate: %s\nExpires: %s\nCache-Control: max-age=60\n", date(0),
             date(1000));
    CHECK_INT(meta_of(text, T0, T0).lifetime, 60);
    snprintf(text, sizeof text, "HTTP/1.1 200 OK\nDate: %s\nExpires: %s\n", date(0), date(1000));
    CHECK_INT(meta_of(text, T0, T0).lifetime, 1000);
    snprintf(text, sizeof text, "HTTP/1.1 200 OK\nDate: %s\nExpires: %s\n", date(0), date(-10));
    CHECK_INT(meta_of(text, T0, T0).lifetime, 0);
    /* An invalid Expires is in the past, and is explicit: no heuristic. */
    snprintf(text, sizeof text, "HTTP/1.1 200 OK\nDate: %s\nExpires: 0\nLast-Modified: %s\n",
             date(0), date(-100000));
    CHECK_INT(meta_of(text, T0, T0).lifetime, 0);
    CHECK(!meta_of(text, T0, T0).heuristic);
}

static void test_heuristic(void)
{
    char text[512];
    struct cache_meta m;

    /* 10% of Date - Last-Modified. */
    snprintf(text, sizeof text, "HTTP/1.1 200 OK\nDate: %s\nLast-Modified: %s\n", date(0),
             date(-1000));
    m = meta_of(text, T0, T0);
    CHECK_INT(m.lifetime, 100);
    CHECK(m.heuristic);
    CHECK_INT(m.last_modified, T0 - 1000);
    /* Capped at a day. */
    snprintf(text, sizeof text, "HTTP/1.1 404 Not Found\nDate: %s\nLast-Modified: %s\n", date(0),
             date(-30 * 86400));
    CHECK_INT(meta_of(text, T0, T0).lifetime, CACHE_HEURISTIC_MAX);
    /* Not for a status that is not heuristically cacheable... */
    snprintf(text, sizeof text, "HTTP/1.1 302 Found\nDate: %s\nLast-Modified: %s\n", date(0),
             date(-1000));
    CHECK_INT(meta_of(text, T0, T0).lifetime, 0);
    CHECK(!cache_status_heuristic(302) && !cache_status_heuristic(206));
    CHECK(cache_status_heuristic(200) && cache_status_heuristic(501));
    /* ...unless the response is public. */
    snprintf(text, sizeof text,
             "HTTP/1.1 302 Found\nDate: %s\nLast-Modified: %s\nCache-Control: public\n", date(0),
             date(-1000));
    CHECK_INT(meta_of(text, T0, T0).lifetime, 100);
    /* Not with explicit freshness; none without Last-Modified. */
    snprintf(text, sizeof text,
             "HTTP/1.1 200 OK\nDate: %s\nLast-Modified: %s\nCache-Control: max-age=3\n", date(0),
             date(-1000));
    CHECK_INT(meta_of(text, T0, T0).lifetime, 3);
    CHECK_INT(meta_of("HTTP/1.1 200 OK\n", T0, T0).lifetime, 0);
}

static void test_worth_storing(void)
{
    struct cache_meta m = meta_of("HTTP/1.1 200 OK\n", T0, T0);

    CHECK(!cache_worth_storing(&m, false));
    CHECK(cache_worth_storing(&m, true));
    m = meta_of("HTTP/1.1 200 OK\nCache-Control: stale-if-error=60\n", T0, T0);
    CHECK(cache_worth_storing(&m, false));
    m = meta_of("HTTP/1.1 200 OK\nCache-Control: max-age=1\n", T0, T0);
    CHECK(cache_worth_storing(&m, false));
}

static struct cache_decision decide(const char *resp_cc, const char *req_cc, int64_t age,
                                    const struct cache_defaults *def)
{
    char text[512];
    struct cache_meta m;
    struct cache_control req = cc_of(req_cc);
    struct cache_decision d;

    snprintf(text, sizeof text, "HTTP/1.1 200 OK\nDate: %s\nCache-Control: %s\n", date(0), resp_cc);
    m = meta_of(text, T0, T0);
    cache_decide(&m, &req, def, T0 + age, &d);
    CHECK_INT(d.age, age);
    return d;
}

static void test_decide(void)
{
    struct cache_decision d = decide("max-age=60", "", 10, NULL);

    CHECK_INT(d.use, CACHE_USE_FRESH);
    CHECK_INT(d.ttl, 50);
    CHECK(!d.serve_on_error);
    d = decide("max-age=60", "", 60, NULL); /* fresh only while lifetime > age */
    CHECK_INT(d.use, CACHE_USE_REVALIDATE);
    CHECK_INT(d.ttl, 0);
    CHECK_INT(decide("max-age=60", "no-cache", 10, NULL).use, CACHE_USE_REVALIDATE);
    CHECK_INT(decide("max-age=60", "max-age=0", 10, NULL).use, CACHE_USE_REVALIDATE);
    CHECK_INT(decide("max-age=60", "max-age=10", 10, NULL).use, CACHE_USE_FRESH);
    CHECK_INT(decide("max-age=60", "min-fresh=40", 10, NULL).use, CACHE_USE_FRESH);
    CHECK_INT(decide("max-age=60", "min-fresh=51", 10, NULL).use, CACHE_USE_REVALIDATE);
    CHECK_INT(decide("no-cache, max-age=60", "", 10, NULL).use, CACHE_USE_REVALIDATE);
    /* immutable: a reload (no-cache) does not revalidate while fresh. */
    CHECK_INT(decide("max-age=60, immutable", "no-cache", 10, NULL).use, CACHE_USE_FRESH);
    CHECK_INT(decide("max-age=60, immutable", "no-cache", 70, NULL).use, CACHE_USE_REVALIDATE);
    /* max-stale: the client accepts some staleness, not past must-revalidate. */
    CHECK_INT(decide("max-age=60", "max-stale=100", 110, NULL).use, CACHE_USE_FRESH);
    CHECK_INT(decide("max-age=60", "max-stale=100", 170, NULL).use, CACHE_USE_REVALIDATE);
    CHECK_INT(decide("max-age=60", "max-stale", 100000, NULL).use, CACHE_USE_FRESH);
    CHECK_INT(decide("max-age=60, must-revalidate", "max-stale", 61, NULL).use,
              CACHE_USE_REVALIDATE);
    CHECK_INT(decide("s-maxage=60", "max-stale", 61, NULL).use, CACHE_USE_REVALIDATE);
}

static void test_decide_stale(void)
{
    struct cache_defaults def = {30, 300};
    struct cache_decision d;

    d = decide("max-age=60, stale-while-revalidate=20, stale-if-error=100", "", 70, NULL);
    CHECK_INT(d.use, CACHE_USE_STALE);
    CHECK_INT(d.ttl, -10);
    CHECK(d.serve_on_error);
    d = decide("max-age=60, stale-while-revalidate=20, stale-if-error=100", "", 90, NULL);
    CHECK_INT(d.use, CACHE_USE_REVALIDATE);
    CHECK(d.serve_on_error);
    CHECK(!decide("max-age=60, stale-if-error=100", "", 161, NULL).serve_on_error);
    /* Route defaults, where the response says nothing. */
    d = decide("max-age=60", "", 85, &def);
    CHECK_INT(d.use, CACHE_USE_STALE);
    CHECK(d.serve_on_error);
    CHECK_INT(decide("max-age=60", "", 91, &def).use, CACHE_USE_REVALIDATE);
    CHECK(!decide("max-age=60", "", 361, &def).serve_on_error);
    CHECK_INT(decide("max-age=60, stale-while-revalidate=0", "", 61, &def).use,
              CACHE_USE_REVALIDATE);
    /* must-revalidate, proxy-revalidate and no-cache forbid stale. */
    d = decide("max-age=60, must-revalidate, stale-while-revalidate=20", "", 70, &def);
    CHECK_INT(d.use, CACHE_USE_REVALIDATE);
    CHECK(!d.serve_on_error);
    d = decide("max-age=60, proxy-revalidate", "", 70, &def);
    CHECK(d.use == CACHE_USE_REVALIDATE && !d.serve_on_error);
    CHECK(!decide("no-cache", "", 0, &def).serve_on_error);
    /* s-maxage: its own stale-* windows only. */
    d = decide("s-maxage=60", "", 70, &def);
    CHECK(d.use == CACHE_USE_REVALIDATE && !d.serve_on_error);
    d = decide("s-maxage=60, stale-while-revalidate=20, stale-if-error=20", "", 70, &def);
    CHECK(d.use == CACHE_USE_STALE && d.serve_on_error);
    /* A client asking to revalidate gets no stale-while-revalidate. */
    CHECK_INT(decide("max-age=60, stale-while-revalidate=20", "no-cache", 70, NULL).use,
              CACHE_USE_REVALIDATE);
}

/* ---- Vary ---------------------------------------------------------------- */

static void test_vary_names(void)
{
    struct resp p;
    const struct http_response *r;
    char out[128];

    r = response(&p,
                 "HTTP/1.1 200 OK\nVary: Accept-Encoding , User-Agent\nvary: ACCEPT-language\n");
    CHECK_INT(cache_vary_names(r->headers, r->n_headers, out, sizeof out), 42);
    CHECK_STR(out, "accept-encoding,user-agent,accept-language");
    r = response(&p, "HTTP/1.1 200 OK\nVary: accept, *\n");
    CHECK_INT(cache_vary_names(r->headers, r->n_headers, out, sizeof out), -1);
    r = response(&p, "HTTP/1.1 200 OK\n");
    CHECK_INT(cache_vary_names(r->headers, r->n_headers, out, sizeof out), 0);
    CHECK_STR(out, "");
    /* Too small a buffer: the length needed, a truncated text. */
    r = response(&p, "HTTP/1.1 200 OK\nVary: Accept-Encoding\n");
    CHECK_INT(cache_vary_names(r->headers, r->n_headers, out, 5), 15);
    CHECK_STR(out, "acce");
}

static const char *vary_key(const char *names, const char *req_text, char *out, size_t cap)
{
    struct req q;
    const struct http_request *r = request(&q, req_text);

    cache_vary_key(str(names), r->headers, r->n_headers, out, cap);
    return out;
}

static void test_vary_key(void)
{
    char a[256], b[256];
    const char *names = "accept-encoding,accept-language";

    CHECK_STR(vary_key(names, GET "Accept-Encoding: gzip, br\nAccept-Language: en\n", a, sizeof a),
              "accept-encoding:gzip,br\naccept-language:en\n");
    /* Whitespace, name case and line splitting do not matter... */
    vary_key(names, GET "accept-encoding:gzip,br\nACCEPT-LANGUAGE:   en  \n", b, sizeof b);
    CHECK_STR(b, a);
    vary_key(names, GET "Accept-Language: en\nAccept-Encoding: gzip\nAccept-Encoding: br\n", b,
             sizeof b);
    CHECK_STR(b, a);
    /* ...order and value case do. */
    vary_key(names, GET "Accept-Encoding: br, gzip\nAccept-Language: en\n", b, sizeof b);
    CHECK(strcmp(a, b) != 0);
    vary_key(names, GET "Accept-Encoding: GZIP, br\nAccept-Language: en\n", b, sizeof b);
    CHECK(strcmp(a, b) != 0);
    /* Absent differs from empty. */
    vary_key("accept-encoding", GET, a, sizeof a);
    vary_key("accept-encoding", GET "Accept-Encoding:\n", b, sizeof b);
    CHECK_STR(a, "accept-encoding\n");
    CHECK_STR(b, "accept-encoding:\n");
    CHECK_INT(strlen(vary_key("", GET "Accept: x\n", a, sizeof a)), 0);
}

/* ---- conditionals -------------------------------------------------------- */

static void test_etag_compare(void)
{
    /* RFC 9110 8.8.3.2 */
    CHECK(!cache_etag_strong_equal(str("W/\"1\""), str("W/\"1\"")));
    CHECK(cache_etag_weak_equal(str("W/\"1\""), str("W/\"1\"")));
    CHECK(!cache_etag_strong_equal(str("W/\"1\""), str("W/\"2\"")));
    CHECK(!cache_etag_weak_equal(str("W/\"1\""), str("W/\"2\"")));
    CHECK(!cache_etag_strong_equal(str("W/\"1\""), str("\"1\"")));
    CHECK(cache_etag_weak_equal(str("W/\"1\""), str("\"1\"")));
    CHECK(cache_etag_strong_equal(str("\"1\""), str("\"1\"")));
    CHECK(cache_etag_weak_equal(str("\"1\""), str("\"1\"")));
    /* Invalid tags never match. */
    CHECK(!cache_etag_weak_equal(str("1"), str("1")));
    CHECK(!cache_etag_weak_equal(str("\""), str("\"")));
    CHECK(!cache_etag_weak_equal(str("w/\"1\""), str("\"1\"")));
    CHECK(!cache_etag_weak_equal(str("\"a\"b\""), str("\"a\"b\"")));
    CHECK(cache_etag_weak_equal(str("\"\""), str("\"\"")));
}

static bool not_modified(enum http_method m, const char *extra, const char *etag, int64_t lm)
{
    struct req q;
    char text[512];
    const struct http_request *r;

    snprintf(text, sizeof text, GET "%s", extra);
    r = request(&q, text);
    return cache_not_modified(m, r->headers, r->n_headers, str(etag), lm);
}

static void test_not_modified(void)
{
    char ims[128];

    CHECK(not_modified(HTTP_GET, "If-None-Match: \"a\"\n", "\"a\"", -1));
    CHECK(not_modified(HTTP_HEAD, "If-None-Match: W/\"a\"\n", "\"a\"", -1)); /* weak */
    CHECK(not_modified(HTTP_GET, "If-None-Match: \"x\", W/\"a\"\n", "W/\"a\"", -1));
    CHECK(not_modified(HTTP_GET, "If-None-Match: \"x\"\nIf-None-Match: \"a\"\n", "\"a\"", -1));
    CHECK(not_modified(HTTP_GET, "If-None-Match: *\n", "", -1));
    CHECK(!not_modified(HTTP_GET, "If-None-Match: \"b\"\n", "\"a\"", -1));
    CHECK(!not_modified(HTTP_GET, "If-None-Match: \"a\"\n", "", -1));
    CHECK(!not_modified(HTTP_POST, "If-None-Match: \"a\"\n", "\"a\"", -1));
    /* If-Modified-Since: not modified when Last-Modified <= the date. */
    snprintf(ims, sizeof ims, "If-Modified-Since: %s\n", date(0));
    CHECK(not_modified(HTTP_GET, ims, "", T0));
    CHECK(not_modified(HTTP_GET, ims, "", T0 - 1));
    CHECK(!not_modified(HTTP_GET, ims, "", T0 + 1));
    CHECK(!not_modified(HTTP_GET, ims, "", CACHE_ABSENT));
    CHECK(!not_modified(HTTP_GET, "If-Modified-Since: yesterday\n", "", T0));
    /* If-None-Match takes precedence. */
    snprintf(ims, sizeof ims, "If-None-Match: \"b\"\nIf-Modified-Since: %s\n", date(0));
    CHECK(!not_modified(HTTP_GET, ims, "\"a\"", T0 - 10));
}

static void test_if_range(void)
{
    CHECK(cache_if_range_holds(str("\"a\""), str("\"a\""), CACHE_ABSENT, T0));
    CHECK(!cache_if_range_holds(str("W/\"a\""), str("W/\"a\""), CACHE_ABSENT, T0));
    CHECK(!cache_if_range_holds(str("\"b\""), str("\"a\""), CACHE_ABSENT, T0));
    CHECK(cache_if_range_holds(str(date(-100)), str(""), T0 - 100, T0));
    CHECK(!cache_if_range_holds(str(date(-10)), str(""), T0 - 10, T0)); /* weak */
    CHECK(!cache_if_range_holds(str(date(-100)), str(""), T0 - 101, T0));
    CHECK(!cache_if_range_holds(str("garbage"), str("\"a\""), T0 - 100, T0));
}

static void test_revalidation_headers(void)
{
    struct http_header h[2];
    char buf[30];

    CHECK_INT(cache_revalidation_headers(str("\"v1\""), T0, buf, h), 2);
    CHECK(http1_str_is(h[0].name, "if-none-match") && http1_str_is(h[0].value, "\"v1\""));
    CHECK(http1_str_is(h[1].name, "if-modified-since") && http1_str_is(h[1].value, date(0)));
    CHECK_INT(cache_revalidation_headers(str(""), CACHE_ABSENT, buf, h), 0);
    CHECK_INT(cache_revalidation_headers(str(""), T0, buf, h), 1);
    CHECK(http1_str_is(h[0].name, "if-modified-since"));
}

/* ---- stored heads -------------------------------------------------------- */

static void test_head_build(void)
{
    struct resp p;
    const struct http_response *r;
    char out[1024], expect[1024];
    size_t n;

    r = response(&p, "HTTP/1.1 200 OK\nConnection: keep-alive, X-Hop\nKeep-Alive: timeout=5\n"
                     "X-Hop: 1\nContent-Length: 5\nAge: 30\nETag: \"e\"\nX-Keep: yes\n");
    n = cache_head_build(r->status, r->reason, r->headers, r->n_headers, T0, out, sizeof out);
    snprintf(expect, sizeof expect,
             "HTTP/1.1 200 OK\r\nETag: \"e\"\r\nX-Keep: yes\r\nDate: %s\r\n\r\n", date(0));
    CHECK_STR(out, expect);
    CHECK_INT(n, strlen(expect));
    CHECK_INT(cache_head_build(r->status, r->reason, r->headers, r->n_headers, T0, NULL, 0), n);
    CHECK(http1_str_is(cache_head_field(out, n, "etag"), "\"e\""));
    CHECK(http1_str_is(cache_head_field(out, n, "x-keep"), "yes"));
    CHECK(cache_head_field(out, n, "x-hop").p == NULL);
    CHECK(cache_head_field(out, n, "HTTP/1.1 200 OK").p == NULL);
}

static void test_head_merge(void)
{
    struct resp p;
    const struct http_response *r;
    const char *stored = "HTTP/1.1 200 OK\r\nDate: x\r\nCache-Control: max-age=10\r\n"
                         "ETag: \"1\"\r\nX-A: 1\r\nX-A: 2\r\nX-B: b\r\n\r\n";
    char out[1024], expect[1024];
    size_t n;

    r = response(&p, "HTTP/1.1 304 Not Modified\nDate: y\nCache-Control: max-age=60\n"
                     "X-A: 3\nContent-Length: 0\nConnection: close\n");
    n = cache_head_merge(stored, strlen(stored), r->headers, r->n_headers, T0, out, sizeof out);
    CHECK_STR(out, "HTTP/1.1 200 OK\r\nETag: \"1\"\r\nX-B: b\r\nDate: y\r\n"
                   "Cache-Control: max-age=60\r\nX-A: 3\r\n\r\n");
    CHECK_INT(n, strlen(out));
    /* A 304 without Date: the time it came. */
    r = response(&p, "HTTP/1.1 304 Not Modified\nX-B: c\n");
    cache_head_merge(stored, strlen(stored), r->headers, r->n_headers, T0, out, sizeof out);
    snprintf(expect, sizeof expect,
             "HTTP/1.1 200 OK\r\nCache-Control: max-age=10\r\nETag: \"1\"\r\nX-A: 1\r\n"
             "X-A: 2\r\nX-B: c\r\nDate: %s\r\n\r\n",
             date(0));
    CHECK_STR(out, expect);
}

/* ---- Range --------------------------------------------------------------- */

static void check_range(const char *value, uint64_t length, enum cache_range expect, uint64_t first,
                        uint64_t last)
{
    uint64_t f = 12345, l = 12345;
    enum cache_range r = cache_range_parse(str(value), length, &f, &l);

    CHECK_INT(r, expect);
    if (r == expect && expect == CACHE_RANGE_PARTIAL) {
        CHECK_INT(f, first);
        CHECK_INT(l, last);
    }
    if (r != expect) fprintf(stderr, "  range \"%s\" of %" PRIu64 "\n", value, length);
}

static void test_range(void)
{
    char out[80];

    check_range("bytes=0-4", 10, CACHE_RANGE_PARTIAL, 0, 4);
    check_range("bytes=5-", 10, CACHE_RANGE_PARTIAL, 5, 9);
    check_range("bytes=-3", 10, CACHE_RANGE_PARTIAL, 7, 9);
    check_range("bytes=-20", 10, CACHE_RANGE_PARTIAL, 0, 9);
    check_range("bytes=8-20", 10, CACHE_RANGE_PARTIAL, 8, 9);
    check_range("bytes=9-9", 10, CACHE_RANGE_PARTIAL, 9, 9);
    check_range("BYTES=0-0", 10, CACHE_RANGE_PARTIAL, 0, 0);
    check_range("bytes= 2-3 ", 10, CACHE_RANGE_PARTIAL, 2, 3);
    check_range("bytes=0-99999999999999999999999", 10, CACHE_RANGE_PARTIAL, 0, 9);
    check_range("bytes=10-", 10, CACHE_RANGE_UNSATISFIABLE, 0, 0);
    check_range("bytes=10-20", 10, CACHE_RANGE_UNSATISFIABLE, 0, 0);
    check_range("bytes=99999999999999999999999-", 10, CACHE_RANGE_UNSATISFIABLE, 0, 0);
    check_range("bytes=-0", 10, CACHE_RANGE_UNSATISFIABLE, 0, 0);
    check_range("bytes=0-", 0, CACHE_RANGE_UNSATISFIABLE, 0, 0);
    check_range("bytes=-5", 0, CACHE_RANGE_UNSATISFIABLE, 0, 0);
    check_range("bytes=0-1,3-4", 10, CACHE_RANGE_NONE, 0, 0); /* several: whole object */
    check_range("bytes=0-1,", 10, CACHE_RANGE_NONE, 0, 0);
    check_range("bytes=5-2", 10, CACHE_RANGE_NONE, 0, 0);
    check_range("items=0-1", 10, CACHE_RANGE_NONE, 0, 0);
    check_range("bytes=abc", 10, CACHE_RANGE_NONE, 0, 0);
    check_range("bytes=", 10, CACHE_RANGE_NONE, 0, 0);
    check_range("bytes=-", 10, CACHE_RANGE_NONE, 0, 0);
    check_range("bytes=1-2x", 10, CACHE_RANGE_NONE, 0, 0);
    check_range("bytes=--1", 10, CACHE_RANGE_NONE, 0, 0);
    check_range("bytes", 10, CACHE_RANGE_NONE, 0, 0);
    cache_content_range(CACHE_RANGE_PARTIAL, 0, 4, 10, out, sizeof out);
    CHECK_STR(out, "bytes 0-4/10");
    cache_content_range(CACHE_RANGE_UNSATISFIABLE, 0, 0, 10, out, sizeof out);
    CHECK_STR(out, "bytes */10");
    CHECK(cache_content_range(CACHE_RANGE_PARTIAL, UINT64_MAX, UINT64_MAX, UINT64_MAX, out,
                              sizeof out) == 68);
}

/* ---- Cache-Status -------------------------------------------------------- */

static const char *status_text(struct cache_status s, char *out, size_t cap)
{
    cache_status_format(&s, out, cap);
    return out;
}

static void test_cache_status(void)
{
    char out[256];

    CHECK_STR(status_text((struct cache_status){.fwd = CACHE_FWD_NONE, .has_ttl = true, .ttl = 42},
                          out, sizeof out),
              "ringgate; hit; ttl=42");
    CHECK_STR(
        status_text(
            (struct cache_status){.fwd = CACHE_FWD_URI_MISS, .fwd_status = 200, .stored = true},
            out, sizeof out),
        "ringgate; fwd=uri-miss; fwd-status=200; stored");
    CHECK_STR(status_text(
                  (struct cache_status){
                      .fwd = CACHE_FWD_STALE, .fwd_status = 304, .has_ttl = true, .ttl = 60},
                  out, sizeof out),
              "ringgate; fwd=stale; fwd-status=304; ttl=60");
    CHECK_STR(status_text((struct cache_status){.fwd = CACHE_FWD_NONE,
                                                .has_ttl = true,
                                                .ttl = -5,
                                                .detail = "stale-while-revalidate"},
                          out, sizeof out),
              "ringgate; hit; ttl=-5; detail=stale-while-revalidate");
    CHECK_STR(status_text((struct cache_status){.fwd = CACHE_FWD_MISS, .collapsed = true}, out,
                          sizeof out),
              "ringgate; fwd=miss; collapsed");
    CHECK_STR(status_text((struct cache_status){.fwd = CACHE_FWD_BYPASS, .detail = "no store"}, out,
                          sizeof out),
              "ringgate; fwd=bypass");
    CHECK_STR(status_text((struct cache_status){.fwd = CACHE_FWD_VARY_MISS}, out, 10), "ringgate;");
    CHECK_INT(cache_status_format(&(struct cache_status){.fwd = CACHE_FWD_VARY_MISS}, NULL, 0),
              strlen("ringgate; fwd=vary-miss"));
}

int main(void)
{
    RUN(test_cache_control_response);
    RUN(test_cache_control_invalid);
    RUN(test_cache_control_request);
    RUN(test_storable);
    RUN(test_storable_authorization);
    RUN(test_age);
    RUN(test_lifetime);
    RUN(test_heuristic);
    RUN(test_worth_storing);
    RUN(test_decide);
    RUN(test_decide_stale);
    RUN(test_vary_names);
    RUN(test_vary_key);
    RUN(test_etag_compare);
    RUN(test_not_modified);
    RUN(test_if_range);
    RUN(test_revalidation_headers);
    RUN(test_head_build);
    RUN(test_head_merge);
    RUN(test_range);
    RUN(test_cache_status);
    return TEST_REPORT();
}
