/* Unit tests of gateway/http1.c: request and response heads, the chunked
 * coding, header helpers and HTTP-dates. Every input is parsed from an
 * exact-size heap copy, so any read past its end trips AddressSanitizer. */
#include "http1.h"
#include "test.h"

#include <stdint.h>
#include <stdlib.h>

/* A string literal and its length, embedded NULs included. */
#define LIT(s) s, sizeof(s) - 1

static char *heap_copy(const char *s, size_t n)
{
    char *p = calloc(n ? n : 1, 1);

    if (!p) abort();
    if (n) memcpy(p, s, n);
    return p;
}

/* The parsers' fields point into the input: the last copy lives until the
 * next parse. */
static char *last_input;

static int parse_request(const char *s, size_t n, struct http_request *req, struct http_error *err)
{
    free(last_input);
    last_input = heap_copy(s, n);
    return http1_parse_request(last_input, n, req, err);
}

static int parse_response(const char *s, size_t n, enum http_method method,
                          struct http_response *resp, struct http_error *err)
{
    free(last_input);
    last_input = heap_copy(s, n);
    return http1_parse_response(last_input, n, method, resp, err);
}

/* An http_str as a C string, for CHECK_STR (a few rotating buffers). */
static const char *cstr(struct http_str s)
{
    static char bufs[4][512];
    static int next;
    char *b = bufs[next++ % 4];
    size_t n = s.len < 511 ? s.len : 511;

    if (n) memcpy(b, s.p, n);
    b[n] = '\0';
    return b;
}

/* The status an input gets: 0 when valid, -2 when incomplete. */
static int request_status(const char *s, size_t n)
{
    struct http_request req;
    struct http_error err = {0, NULL};
    int rc = parse_request(s, n, &req, &err);

    return rc >= 0 ? 0 : rc == HTTP_INCOMPLETE ? HTTP_INCOMPLETE : err.status;
}

static int response_status(const char *s, size_t n, enum http_method method)
{
    struct http_response resp;
    struct http_error err = {0, NULL};
    int rc = parse_response(s, n, method, &resp, &err);

    return rc >= 0 ? 0 : rc == HTTP_INCOMPLETE ? HTTP_INCOMPLETE : err.status;
}

/* ---- splitting ----------------------------------------------------------- */

typedef int (*head_parser)(const char *buf, size_t len, struct http_error *err);

static int request_parser(const char *buf, size_t len, struct http_error *err)
{
    static struct http_request req;

    return http1_parse_request(buf, len, &req, err);
}

static int response_parser(const char *buf, size_t len, struct http_error *err)
{
    static struct http_response resp;

    return http1_parse_response(buf, len, HTTP_GET, &resp, err);
}

/* Every prefix of the input must give HTTP_INCOMPLETE or the full input's
 * verdict: the same head length, or the same error (status and message). */
static bool verdict_holds_for_every_prefix(head_parser parse, const char *s, size_t n)
{
    struct http_error full_err = {0, NULL}, err;
    char *whole = heap_copy(s, n);
    int full = parse(whole, n, &full_err);
    bool ok = true;

    free(whole);
    for (size_t k = 0; k < n; k++) {
        char *prefix = heap_copy(s, k);
        int rc;

        err = (struct http_error){0, NULL};
        rc = parse(prefix, k, &err);
        free(prefix);
        if (rc == HTTP_INCOMPLETE && (full < 0 || k < (size_t)full)) continue;
        if (rc == full && rc >= 0) continue;
        if (rc == HTTP_ERROR && full == HTTP_ERROR && err.status == full_err.status &&
            strcmp(err.message, full_err.message) == 0)
            continue;
        fprintf(stderr, "prefix %zu of %zu: %d (%d %s), full input: %d (%d %s)\n", k, n, rc,
                err.status, err.message ? err.message : "", full, full_err.status,
                full_err.message ? full_err.message : "");
        ok = false;
        break;
    }
    return ok;
}

/* ---- requests: a table of shapes ----------------------------------------- */

struct request_case {
    const char *text;
    size_t len;
    int status;  /* 0: valid */
    size_t body; /* bytes after the head, when valid */
};

#define VALID(s, body)                                                                             \
    {                                                                                              \
        LIT(s), 0, body                                                                            \
    }
#define INVALID(s, status)                                                                         \
    {                                                                                              \
        LIT(s), status, 0                                                                          \
    }

static const struct request_case request_cases[] = {
    VALID("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", 0),
    VALID("GET /a/b?x=1&y=2 HTTP/1.1\r\nHost: example.com:8080\r\nAccept: */*\r\n\r\n", 0),
    VALID("POST /submit HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", 5),
    VALID(
        "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        15),
    VALID("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 0),
    VALID("GET / HTTP/1.0\r\n\r\n", 0),
    VALID("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", 0),
    VALID("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 0),
    VALID("GET http://example.com/x?y HTTP/1.1\r\nHost: example.com\r\n\r\n", 0),
    VALID("GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", 0),
    VALID("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\nContent-Length: 005\r\n\r\n", 0),
    VALID("GET / HTTP/1.1\r\nHost: a\r\nX: a\tb \x80\xff\r\nY:\r\nZ: \t \r\n\r\n", 0),
    VALID("PURGE /x HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\n\r\n", 0),
    VALID("PUT /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n", 0),
    VALID("PUT /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \t chunked \t\r\n\r\n", 0),
    VALID("GET /\"<>{}|\\^`~!$&'()*+,;=:@%20 HTTP/1.1\r\nHost:\r\n\r\n", 0),

    /* The contract's smuggling shapes. */
    INVALID("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            400),
    INVALID("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
            400),
    INVALID("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400),
    INVALID("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n", 400),
    INVALID("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", 400),
    INVALID("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400),
    INVALID("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n", 400),
    INVALID("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5 5\r\n\r\n", 400),
    INVALID("POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", 400),
    INVALID("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,\r\n\r\n", 400),
    INVALID("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4611686018427387905\r\n\r\n", 400),
    INVALID("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400),
    INVALID("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400),
    INVALID("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n\tb\r\n\r\n", 400),
    INVALID("GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400),
    INVALID("GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", 400),
    INVALID("GET / HTTP/1.1\rHost: a\r\n\r\n", 400),
    INVALID("GET / HTTP/1.1\nHost: a\n\n", 400),
    INVALID("GET / HTTP/1.1\r\nHost: a\r\n\n", 400),
    INVALID("GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", 400),
    INVALID("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    INVALID("\r\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    INVALID("G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    INVALID("G\x80T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    INVALID("GET / HTTP/1.1\r\nHost: a\r\nX(y: 1\r\n\r\n", 400),
    INVALID("GET / HTTP/1.1\r\nHost: a\r\nX\x80y: 1\r\n\r\n", 400),
    INVALID("GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),
    INVALID("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", 400),
    INVALID("GET / HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n", 400),
    INVALID("GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", 400),
    INVALID("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 501),
    INVALID("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
    INVALID("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
    INVALID("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", 501),
    INVALID("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;x=1\r\n\r\n", 501),
    INVALID("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
            "gzip\r\n\r\n",
            501),
    INVALID("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400),
    INVALID("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
            "chunked\r\n\r\n",
            400),
    INVALID("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked,\r\n\r\n", 400),
    INVALID("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", 400),
    INVALID("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n", 400),
    INVALID("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    INVALID("GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", 400),
    INVALID("GET / HTTP/1.1\r\nHost: a\r\nX: a\x7f\r\n\r\n", 400),
    INVALID("GET / HTTP/1.1\r\nHost: a\r\nX: a\x01\r\n\r\n", 400),
    INVALID("GET / HTTP/1.1\r\n\r\n", 400),
    INVALID("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400),
    INVALID("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", 400),

    /* Request line. */
    INVALID("GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
    INVALID("GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505),
    INVALID("GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505),
    INVALID("GET / HTTP/1.1x\r\nHost: a\r\n\r\n", 400),
    INVALID("GET / http/1.1\r\nHost: a\r\n\r\n", 400),
    INVALID("GET / HTTP/11\r\nHost: a\r\n\r\n", 400),
    INVALID("GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400),
    INVALID("GET /\r\nHost: a\r\n\r\n", 400),
    INVALID("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    INVALID("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    INVALID(" GET / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    INVALID("GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    INVALID("GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    INVALID("GET /\x80 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    INVALID("GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    INVALID("GET example.com HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    INVALID("GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    INVALID("GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    INVALID("GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    INVALID("GET http://a.com/ HTTP/1.1\r\nHost: b.com\r\n\r\n", 400),
    INVALID("CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    INVALID("CONNECT example.com HTTP/1.1\r\nHost: example.com\r\n\r\n", 400),
    INVALID("CONNECT http://a:80/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),

    /* Host and Expect. */
    INVALID("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
    INVALID("GET / HTTP/1.1\r\nHost: a,b\r\n\r\n", 400),
    INVALID("GET / HTTP/1.1\r\nHost: a:99999\r\n\r\n", 400),
    INVALID("GET / HTTP/1.1\r\nHost: a:\r\n\r\n", 400),
    INVALID("GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n", 400),
    INVALID("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400),
    INVALID("GET / HTTP/1.1\r\nHost: []\r\n\r\n", 400),
    INVALID("GET / HTTP/1.1\r\nHost: ::1\r\n\r\n", 400),
    INVALID("GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400),
    INVALID("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400),
    INVALID("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue, x\r\n\r\n", 417),
    INVALID("POST / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n", 417),
};

static void test_request_table(void)
{
    for (size_t i = 0; i < sizeof(request_cases) / sizeof(request_cases[0]); i++) {
        const struct request_case *c = &request_cases[i];
        struct http_request req;
        struct http_error err = {0, NULL};
        int rc = parse_request(c->text, c->len, &req, &err);
        int want = c->status ? HTTP_ERROR : (int)(c->len - c->body);

        if (rc != want || (c->status && err.status != c->status))
            fprintf(stderr, "case %zu: got %d (%d %s), expected %d (%d)\n  %s\n", i, rc, err.status,
                    err.message ? err.message : "", want, c->status, c->text);
        CHECK_INT(rc, want);
        if (c->status) {
            CHECK_INT(err.status, c->status);
            CHECK(err.message != NULL && err.message[0] != '\0');
        }
        CHECK(verdict_holds_for_every_prefix(request_parser, c->text, c->len));
    }
}

static void test_request_incomplete(void)
{
    CHECK_INT(request_status(LIT("")), HTTP_INCOMPLETE);
    CHECK_INT(request_status(LIT("\r\n")), HTTP_INCOMPLETE);
    CHECK_INT(request_status(LIT("\r\n\r\n\r")), HTTP_INCOMPLETE);
    CHECK_INT(request_status(LIT("GET / HTTP/1.1\r\nHost: a\r\n")), HTTP_INCOMPLETE);
    CHECK_INT(request_status(LIT("GET / HTTP/1.1\r\nHost: a\r\n\r")), HTTP_INCOMPLETE);
    /* An error visible in the partial head is reported early. */
    CHECK_INT(request_status(LIT("GET /\0")), 400);
    CHECK_INT(request_status(LIT("GET / HTTP/1.1\n")), 400);
}

/* Every byte value at every position of a header value (the line scanner
 * looks at 8 bytes at a time: each lane and each tail length): control
 * characters but HTAB, and DEL, are refused with 400 wherever they are;
 * everything else is taken. */
static void test_every_byte_everywhere(void)
{
    char text[128];
    const char start[] = "GET / HTTP/1.1\r\nHost: a\r\nX: ";

    for (size_t value_len = 1; value_len <= 19; value_len++) {
        for (size_t at = 0; at < value_len; at++) {
            for (int b = 0; b < 256; b++) {
                size_t n = sizeof(start) - 1;
                bool ctl = (b < 0x20 && b != '\t') || b == 0x7f;

                memcpy(text, start, n);
                memset(text + n, 'v', value_len);
                text[n + at] = (char)b;
                n += value_len;
                memcpy(text + n, "\r\n\r\n", 4);
                n += 4;
                if (request_status(text, n) != (ctl ? 400 : 0)) {
                    CHECK_INT(request_status(text, n), ctl ? 400 : 0);
                    fprintf(stderr, "  byte 0x%02x at %zu of a %zu-byte value\n", b, at, value_len);
                    return;
                }
            }
        }
    }
    CHECK(true);
}

static void test_request_get(void)
{
    struct http_request req;
    struct http_error err;
    const char text[] = "GET /a/b?x=1&y=2 HTTP/1.1\r\nHost: Example.COM:8080\r\n"
                        "User-Agent:  curl/8 \t\r\nAccept: */*\r\n\r\n";
    int rc = parse_request(LIT(text), &req, &err);

    CHECK_INT(rc, sizeof(text) - 1);
    CHECK_STR(cstr(req.method), "GET");
    CHECK_INT(req.method_id, HTTP_GET);
    CHECK_STR(cstr(req.target), "/a/b?x=1&y=2");
    CHECK_STR(cstr(req.path), "/a/b");
    CHECK_STR(cstr(req.query), "x=1&y=2");
    CHECK_INT(req.minor_version, 1);
    CHECK_INT(req.n_headers, 3);
    CHECK_STR(cstr(req.headers[1].name), "User-Agent");
    CHECK_STR(cstr(req.headers[1].value), "curl/8");
    CHECK_STR(cstr(req.host), "Example.COM");
    CHECK_INT(req.body, HTTP_BODY_NONE);
    CHECK(req.keep_alive);
    CHECK(!req.expect_continue);
    CHECK(!req.upgrade);
}

static void test_request_post_length(void)
{
    struct http_request req;
    struct http_error err;
    const char text[] = "POST /submit HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n"
                        "Expect: 100-continue\r\n\r\nhello world";
    int rc = parse_request(LIT(text), &req, &err);

    CHECK_INT(rc, sizeof(text) - 1 - 11);
    CHECK_INT(req.method_id, HTTP_POST);
    CHECK_INT(req.body, HTTP_BODY_LENGTH);
    CHECK_INT(req.content_length, 11);
    CHECK(req.expect_continue);
    CHECK_STR(cstr(req.query), "");

    rc = parse_request(LIT("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"), &req, &err);
    CHECK(rc > 0);
    CHECK_INT(req.body, HTTP_BODY_LENGTH);
    CHECK_INT(req.content_length, 0);

    rc = parse_request(LIT("POST / HTTP/1.1\r\nHost: a\r\n"
                           "Content-Length: 4611686018427387904\r\n\r\n"),
                       &req, &err);
    CHECK(rc > 0);
    CHECK(req.content_length == UINT64_C(1) << 62);
}

static void test_request_chunked(void)
{
    struct http_request req;
    struct http_error err;
    int rc = parse_request(LIT("POST /up HTTP/1.1\r\nHost: a\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n"),
                           &req, &err);

    CHECK(rc > 0);
    CHECK_INT(req.body, HTTP_BODY_CHUNKED);
    CHECK_INT(req.content_length, 0);
}

static void test_request_versions_and_connection(void)
{
    struct http_request req;
    struct http_error err;

    CHECK(parse_request(LIT("GET / HTTP/1.0\r\n\r\n"), &req, &err) > 0);
    CHECK_INT(req.minor_version, 0);
    CHECK(!req.keep_alive);
    CHECK_INT(req.host.len, 0);

    CHECK(parse_request(LIT("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"), &req, &err) > 0);
    CHECK(req.keep_alive);

    CHECK(parse_request(LIT("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"), &req,
                        &err) > 0);
    CHECK(!req.keep_alive);

    CHECK(parse_request(LIT("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"), &req, &err) >
          0);
    CHECK(!req.keep_alive);

    CHECK(parse_request(LIT("GET / HTTP/1.1\r\nHost: a\r\nConnection: x, CLOSE\r\n\r\n"), &req,
                        &err) > 0);
    CHECK(!req.keep_alive);

    CHECK(parse_request(LIT("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\n"
                            "Upgrade: websocket\r\n\r\n"),
                        &req, &err) > 0);
    CHECK(req.upgrade);
    CHECK(req.keep_alive);

    CHECK(parse_request(LIT("GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n"), &req,
                        &err) > 0);
    CHECK(!req.upgrade);

    CHECK(parse_request(LIT("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\r\n"), &req,
                        &err) > 0);
    CHECK(!req.upgrade);

    /* HTTP/1.0 has neither Upgrade nor 100-continue. */
    CHECK(parse_request(LIT("GET /ws HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n"
                            "Expect: 100-continue\r\n\r\n"),
                        &req, &err) > 0);
    CHECK(!req.upgrade);
    CHECK(!req.expect_continue);
}

static void test_request_targets(void)
{
    struct http_request req;
    struct http_error err;

    CHECK(parse_request(LIT("GET http://Example.com:8080?q=1 HTTP/1.1\r\n"
                            "Host: example.com\r\n\r\n"),
                        &req, &err) > 0);
    CHECK_STR(cstr(req.path), "/");
    CHECK_STR(cstr(req.query), "q=1");
    CHECK_STR(cstr(req.host), "Example.com");

    CHECK(parse_request(LIT("GET HTTPS://a.b/x/y HTTP/1.0\r\n\r\n"), &req, &err) > 0);
    CHECK_STR(cstr(req.path), "/x/y");
    CHECK_STR(cstr(req.host), "a.b");

    CHECK(parse_request(LIT("CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n\r\n"), &req, &err) >
          0);
    CHECK_INT(req.method_id, HTTP_CONNECT);
    CHECK_STR(cstr(req.host), "[::1]");
    CHECK_INT(req.path.len, 0);

    CHECK(parse_request(LIT("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"), &req, &err) > 0);
    CHECK_INT(req.method_id, HTTP_OPTIONS);
    CHECK_STR(cstr(req.path), "*");

    CHECK(parse_request(LIT("GET /p? HTTP/1.1\r\nHost: a\r\n\r\n"), &req, &err) > 0);
    CHECK_STR(cstr(req.path), "/p");
    CHECK_STR(cstr(req.query), "");

    CHECK(parse_request(LIT("GET /p?a?b HTTP/1.1\r\nHost: [fe80::1%25eth0]\r\n\r\n"), &req, &err) >
          0);
    CHECK_STR(cstr(req.query), "a?b");
    CHECK_STR(cstr(req.host), "[fe80::1%25eth0]");
}

static void test_request_methods(void)
{
    static const struct {
        const char *name;
        enum http_method id;
    } methods[] = {
        {"GET", HTTP_GET},         {"HEAD", HTTP_HEAD},      {"POST", HTTP_POST},
        {"PUT", HTTP_PUT},         {"DELETE", HTTP_DELETE},  {"PATCH", HTTP_PATCH},
        {"OPTIONS", HTTP_OPTIONS}, {"TRACE", HTTP_TRACE},    {"get", HTTP_OTHER},
        {"GETS", HTTP_OTHER},      {"M-SEARCH", HTTP_OTHER}, {"!#$%&'*+-.^_`|~", HTTP_OTHER},
    };

    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        char text[128];
        struct http_request req;
        struct http_error err;
        int n = snprintf(text, sizeof(text), "%s / HTTP/1.1\r\nHost: a\r\n\r\n", methods[i].name);

        CHECK_INT(parse_request(text, (size_t)n, &req, &err), n);
        CHECK_INT(req.method_id, methods[i].id);
        CHECK_STR(cstr(req.method), methods[i].name);
    }
}

/* A head with `n` header fields (Host among them). */
static size_t head_with_fields(char *out, size_t cap, int n)
{
    size_t len = (size_t)snprintf(out, cap, "GET / HTTP/1.1\r\nHost: a\r\n");

    for (int i = 1; i < n; i++)
        len += (size_t)snprintf(out + len, cap - len, "X-%d: %d\r\n", i, i);
    len += (size_t)snprintf(out + len, cap - len, "\r\n");
    return len;
}

static void test_request_header_count(void)
{
    static char text[4096];
    struct http_request req;
    struct http_error err;
    size_t len = head_with_fields(text, sizeof(text), HTTP_MAX_HEADERS);

    CHECK_INT(parse_request(text, len, &req, &err), len);
    CHECK_INT(req.n_headers, HTTP_MAX_HEADERS);
    CHECK_STR(cstr(req.headers[HTTP_MAX_HEADERS - 1].value), "99");

    len = head_with_fields(text, sizeof(text), HTTP_MAX_HEADERS + 1);
    CHECK_INT(parse_request(text, len, &req, &err), HTTP_ERROR);
    CHECK_INT(err.status, 431);
    CHECK(verdict_holds_for_every_prefix(request_parser, text, len));
}

/* ---- responses ----------------------------------------------------------- */

struct response_case {
    const char *text;
    size_t len;
    enum http_method method;
    int status; /* 0: valid */
    enum http_body body;
    uint64_t content_length;
    bool keep_alive;
};

#define RESPONSE(s, method, body, cl, ka)                                                          \
    {                                                                                              \
        LIT(s), method, 0, body, cl, ka                                                            \
    }
#define BAD_RESPONSE(s)                                                                            \
    {                                                                                              \
        LIT(s), HTTP_GET, 502, HTTP_BODY_NONE, 0, false                                            \
    }

static const struct response_case response_cases[] = {
    RESPONSE("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", HTTP_GET, HTTP_BODY_LENGTH, 5, true),
    RESPONSE("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", HTTP_GET, HTTP_BODY_CHUNKED,
             0, true),
    RESPONSE("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", HTTP_GET,
             HTTP_BODY_CHUNKED, 0, true),
    RESPONSE("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", HTTP_GET, HTTP_BODY_TO_EOF, 0,
             false),
    RESPONSE("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", HTTP_GET,
             HTTP_BODY_TO_EOF, 0, false),
    RESPONSE("HTTP/1.1 200 OK\r\nServer: x\r\n\r\n", HTTP_GET, HTTP_BODY_TO_EOF, 0, false),
    RESPONSE("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", HTTP_HEAD, HTTP_BODY_NONE, 5, true),
    RESPONSE("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", HTTP_HEAD, HTTP_BODY_NONE, 0,
             true),
    RESPONSE("HTTP/1.1 204 No Content\r\n\r\n", HTTP_GET, HTTP_BODY_NONE, 0, true),
    RESPONSE("HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n", HTTP_GET, HTTP_BODY_NONE,
             100, true),
    RESPONSE("HTTP/1.1 100 Continue\r\n\r\n", HTTP_POST, HTTP_BODY_NONE, 0, true),
    RESPONSE(
        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        HTTP_GET, HTTP_BODY_NONE, 0, true),
    RESPONSE("HTTP/1.1 200 Connection established\r\n\r\n", HTTP_CONNECT, HTTP_BODY_NONE, 0, true),
    RESPONSE("HTTP/1.1 407 Proxy Auth\r\nContent-Length: 2\r\n\r\n", HTTP_CONNECT, HTTP_BODY_LENGTH,
             2, true),
    RESPONSE("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 5\r\n\r\n", HTTP_GET,
             HTTP_BODY_LENGTH, 5, false),
    RESPONSE("HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\n", HTTP_GET, HTTP_BODY_LENGTH, 5, false),
    RESPONSE("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 5\r\n\r\n", HTTP_GET,
             HTTP_BODY_LENGTH, 5, true),
    RESPONSE("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n", HTTP_GET, HTTP_BODY_TO_EOF, 0,
             false),
    RESPONSE("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", HTTP_GET, HTTP_BODY_LENGTH, 0, true),
    RESPONSE("HTTP/1.1 599 \r\nContent-Length: 7, 7\r\n\r\n", HTTP_GET, HTTP_BODY_LENGTH, 7, true),
    RESPONSE("HTTP/1.1 200 \xc3\xa7"
             "a va\t!\r\nContent-Length: 1\r\n\r\n",
             HTTP_GET, HTTP_BODY_LENGTH, 1, true),

    BAD_RESPONSE("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"),
    BAD_RESPONSE("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"),
    BAD_RESPONSE("HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\n"),
    BAD_RESPONSE("HTTP/1.1 304 Not Modified\r\nContent-Length: -1\r\n\r\n"),
    BAD_RESPONSE("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
    BAD_RESPONSE("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"),
    BAD_RESPONSE("HTTP/1.1 200 OK\r\nTransfer-Encoding: ,\r\n\r\n"),
    BAD_RESPONSE("HTTP/1.1 99 OK\r\n\r\n"),
    BAD_RESPONSE("HTTP/1.1 099 OK\r\n\r\n"),
    BAD_RESPONSE("HTTP/1.1 600 OK\r\n\r\n"),
    BAD_RESPONSE("HTTP/1.1 2000 OK\r\n\r\n"),
    BAD_RESPONSE("HTTP/1.1 20a OK\r\n\r\n"),
    BAD_RESPONSE("HTTP/1.1  200 OK\r\n\r\n"),
    BAD_RESPONSE("HTTP/2.0 200 OK\r\n\r\n"),
    BAD_RESPONSE("HTTP/1.1\r\n\r\n"),
    BAD_RESPONSE("http/1.1 200 OK\r\n\r\n"),
    BAD_RESPONSE("ICY 200 OK\r\n\r\n"),
    BAD_RESPONSE("\r\nHTTP/1.1 200 OK\r\n\r\n"),
    BAD_RESPONSE("HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n"),
    BAD_RESPONSE("HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n"),
    BAD_RESPONSE("HTTP/1.1 200 OK\r\nX : a\r\n\r\n"),
    BAD_RESPONSE("HTTP/1.1 200 OK\r\nX: a\0\r\n\r\n"),
    BAD_RESPONSE("HTTP/1.1 200 OK\r\nX: a\rContent-Length: 0\r\n\r\n"),
};

static void test_response_table(void)
{
    for (size_t i = 0; i < sizeof(response_cases) / sizeof(response_cases[0]); i++) {
        const struct response_case *c = &response_cases[i];
        struct http_response resp;
        struct http_error err = {0, NULL};
        int rc = parse_response(c->text, c->len, c->method, &resp, &err);

        if (c->status) {
            if (rc != HTTP_ERROR) fprintf(stderr, "response case %zu accepted: %s\n", i, c->text);
            CHECK_INT(rc, HTTP_ERROR);
            CHECK_INT(err.status, 502);
        } else {
            if (rc != (int)c->len)
                fprintf(stderr, "response case %zu: %d (%s): %s\n", i, rc,
                        rc == HTTP_ERROR ? err.message : "", c->text);
            CHECK_INT(rc, c->len);
            CHECK_INT(resp.body, c->body);
            CHECK_INT(resp.content_length, c->content_length);
            CHECK_INT(resp.keep_alive, c->keep_alive);
        }
        if (c->method == HTTP_GET)
            CHECK(verdict_holds_for_every_prefix(response_parser, c->text, c->len));
    }
}

static void test_response_fields(void)
{
    struct http_response resp;
    struct http_error err;
    const char text[] = "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n"
                        "Content-Length: 9\r\n\r\nnot found";
    int rc = parse_response(LIT(text), HTTP_GET, &resp, &err);

    CHECK_INT(rc, sizeof(text) - 1 - 9);
    CHECK_INT(resp.status, 404);
    CHECK_INT(resp.minor_version, 1);
    CHECK_STR(cstr(resp.reason), "Not Found");
    CHECK_INT(resp.n_headers, 2);
    CHECK_STR(cstr(resp.headers[0].value), "text/plain");
    CHECK_INT(response_status(LIT("HTTP/1.1 200 OK\r\n"), HTTP_GET), HTTP_INCOMPLETE);
    CHECK_INT(response_status(LIT("HTTP/1.1 200 OK\r\n\r\n"), HTTP_GET), 0);

    static char many[4096];
    size_t len = (size_t)snprintf(many, sizeof(many), "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i <= HTTP_MAX_HEADERS; i++)
        len += (size_t)snprintf(many + len, sizeof(many) - len, "X-%d: %d\r\n", i, i);
    len += (size_t)snprintf(many + len, sizeof(many) - len, "\r\n");
    CHECK_INT(response_status(many, len, HTTP_GET), 502);
}

/* ---- chunked ------------------------------------------------------------- */

struct decoded {
    int rc;          /* the last call's verdict */
    size_t consumed; /* input bytes consumed by all calls */
    char data[8192];
    size_t data_len;
    bool sane; /* every call kept the documented bounds */
};

/* Decodes s[0..n) fed as pieces of `step` bytes (the first piece `first`
 * bytes), each from its own exact-size heap buffer, until DONE or an error. */
static struct decoded decode_pieces(const char *s, size_t n, size_t first, size_t step)
{
    struct chunked_decoder d = {0};
    struct decoded out = {.sane = true};
    size_t at = 0;

    for (int call = 0; call == 0 || at < n; call++) {
        size_t piece = call == 0 ? first : step;
        size_t len, data_len = (size_t)-1;
        char *buf;

        if (piece > n - at) piece = n - at;
        len = piece;
        buf = heap_copy(s + at, piece);
        out.rc = chunked_decode(&d, buf, &len, &data_len);
        if (len > piece || data_len > len || out.data_len + data_len > sizeof(out.data)) {
            out.sane = false;
            free(buf);
            break;
        }
        memcpy(out.data + out.data_len, buf, data_len);
        out.data_len += data_len;
        /* Bytes after the end belong to the next message: left untouched. */
        if (out.rc == CHUNKED_DONE && memcmp(buf + len, s + at + len, piece - len) != 0)
            out.sane = false;
        if (out.rc == 0 && len != piece) out.sane = false;
        free(buf);
        at += len;
        out.consumed = at;
        if (out.rc != 0) break;
    }
    return out;
}

/* Decodes whole, split in two at every point, and byte by byte: all must
 * agree on the verdict, the consumed length and the data. */
static bool decodes_alike_at_every_split(const char *s, size_t n, struct decoded *whole)
{
    *whole = decode_pieces(s, n, n, n);
    for (size_t k = 0; k <= n; k++) {
        struct decoded split = decode_pieces(s, n, k, n);

        if (!split.sane || split.rc != whole->rc || split.consumed != whole->consumed ||
            split.data_len != whole->data_len ||
            memcmp(split.data, whole->data, whole->data_len) != 0) {
            fprintf(stderr,
                    "chunked split at %zu of %zu: rc %d consumed %zu data %zu; whole: rc "
                    "%d consumed %zu data %zu\n",
                    k, n, split.rc, split.consumed, split.data_len, whole->rc, whole->consumed,
                    whole->data_len);
            return false;
        }
    }
    struct decoded bytes = decode_pieces(s, n, 1, 1);
    return whole->sane && bytes.sane && bytes.rc == whole->rc &&
           bytes.consumed == whole->consumed && bytes.data_len == whole->data_len &&
           memcmp(bytes.data, whole->data, whole->data_len) == 0;
}

/* The verdict, and when not an error, the data and how many input bytes
 * were left for the next message. */
static void check_chunked(const char *s, size_t n, int rc, size_t rest, const char *data)
{
    struct decoded whole;

    CHECK(decodes_alike_at_every_split(s, n, &whole));
    CHECK_INT(whole.rc, rc);
    if (rc == HTTP_ERROR) return;
    CHECK_INT(whole.consumed, n - rest);
    CHECK_INT(whole.data_len, strlen(data));
    whole.data[whole.data_len < sizeof(whole.data) ? whole.data_len : 0] = '\0';
    CHECK_STR(whole.data, data);
}

static void test_chunked_valid(void)
{
    const char body[] = "5\r\nhello\r\n"
                        "6;ext=1;q=\"a b\" ; flag\r\n world\r\n"
                        "A\r\n0123456789\r\n"
                        "0\r\nTrailer-One: v\r\nX:\r\n\r\n"
                        "GET / HTTP/1.1\r\n";

    check_chunked(LIT(body), CHUNKED_DONE, 16, "hello world0123456789");
    check_chunked(LIT("0\r\n\r\n"), CHUNKED_DONE, 0, "");
    check_chunked(LIT("000\r\n\r\nX"), CHUNKED_DONE, 1, "");
    check_chunked(LIT("0005\r\nabcde\r\n0;last\r\n\r\n"), CHUNKED_DONE, 0, "abcde");
    check_chunked(LIT("a\r\n\r\n\r\n\r\n\r\n\r\n\r\n0\r\n\r\n"), CHUNKED_DONE, 0,
                  "\r\n\r\n\r\n\r\n\r\n");
    check_chunked(LIT("1 ;x\r\nz\r\n0\t;y=\"\\\"\"\r\n\r\n"), CHUNKED_DONE, 0, "z");
    check_chunked(LIT("F\r\n0123456789abcde\r\n0\r\n\r\n0\r\n\r\n"), CHUNKED_DONE, 5,
                  "0123456789abcde");
    /* Not finished yet: all of it consumed, the data so far delivered. */
    check_chunked(LIT(""), 0, 0, "");
    check_chunked(LIT("5\r\nhel"), 0, 0, "hel");
    check_chunked(LIT("5\r\nhello\r\n0\r\nT: v\r\n"), 0, 0, "hello");
    check_chunked(LIT("4000000000000000\r\nab"), 0, 0, "ab");
    check_chunked(LIT("00000000000000000000000000000001\r\nz\r\n0\r\n\r\n"), CHUNKED_DONE, 0, "z");
}

static void test_chunked_errors(void)
{
    static const struct {
        const char *text;
        size_t len;
    } bad[] = {
        {LIT("\r\n")},
        {LIT("g\r\n")},
        {LIT("+5\r\nhello\r\n0\r\n\r\n")},
        {LIT("-5\r\nhello\r\n0\r\n\r\n")},
        {LIT("0x5\r\nhello\r\n0\r\n\r\n")},
        {LIT(" 5\r\nhello\r\n0\r\n\r\n")},
        {LIT("5 \r\nhello\r\n0\r\n\r\n")},
        {LIT("5\nhello\r\n0\r\n\r\n")},
        {LIT("5\rhello\r\n0\r\n\r\n")},
        {LIT("5\r\nhelloX\r\n0\r\n\r\n")},
        {LIT("5\r\nhello\n0\r\n\r\n")},
        {LIT("5\r\nhello\r0\r\n\r\n")},
        {LIT("5;a\x01\r\nhello\r\n0\r\n\r\n")},
        {LIT("5;a\nhello\r\n0\r\n\r\n")},
        {LIT("5;a\x7f\r\nhello\r\n0\r\n\r\n")},
        {LIT("10000000000000000\r\n")},
        {LIT("4000000000000001\r\n")},
        {LIT("ffffffffffffffffff\r\n")},
        {LIT("0\r\n\n")},
        {LIT("0\r\n\r\r")},
        {LIT("0\r\n X: v\r\n\r\n")},
        {LIT("0\r\nX : v\r\n\r\n")},
        {LIT("0\r\nX\r\n\r\n")},
        {LIT("0\r\n: v\r\n\r\n")},
        {LIT("0\r\nX: a\0b\r\n\r\n")},
        {LIT("0\r\nX: a\nY: b\r\n\r\n")},
        {LIT("0\r\nX: a\r\n\tb\r\n\r\n")},
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        check_chunked(bad[i].text, bad[i].len, HTTP_ERROR, 0, "");
}

/* Size/extension and trailer lines may be 4096 bytes with their CRLF. */
static void test_chunked_line_limit(void)
{
    static char body[3 * 4096];
    size_t n;

    n = (size_t)snprintf(body, sizeof(body), "1;");
    memset(body + n, 'e', 4092);
    n += 4092;
    n += (size_t)snprintf(body + n, sizeof(body) - n, "\r\nz\r\n0\r\n\r\n");
    check_chunked(body, n, CHUNKED_DONE, 0, "z");

    n = (size_t)snprintf(body, sizeof(body), "1;");
    memset(body + n, 'e', 4093);
    n += 4093;
    n += (size_t)snprintf(body + n, sizeof(body) - n, "\r\nz\r\n0\r\n\r\n");
    check_chunked(body, n, HTTP_ERROR, 0, "");

    n = (size_t)snprintf(body, sizeof(body), "0\r\nX: ");
    memset(body + n, 'v', 4091);
    n += 4091;
    n += (size_t)snprintf(body + n, sizeof(body) - n, "\r\nY: short\r\n\r\n");
    check_chunked(body, n, CHUNKED_DONE, 0, "");

    n = (size_t)snprintf(body, sizeof(body), "0\r\nX: ");
    memset(body + n, 'v', 4092);
    n += 4092;
    n += (size_t)snprintf(body + n, sizeof(body) - n, "\r\n\r\n");
    check_chunked(body, n, HTTP_ERROR, 0, "");
}

static void test_chunked_after_end(void)
{
    struct chunked_decoder d = {0};
    char buf[] = "1\r\nx\r\n0\r\n\r\nrest";
    size_t len = sizeof(buf) - 1, data_len;

    CHECK_INT(chunked_decode(&d, buf, &len, &data_len), CHUNKED_DONE);
    CHECK_INT(len, sizeof(buf) - 1 - 4);
    CHECK_INT(data_len, 1);
    CHECK_INT(buf[0], 'x');
    CHECK_STR(buf + len, "rest");

    /* Done stays done, consuming nothing. */
    len = 4;
    CHECK_INT(chunked_decode(&d, buf, &len, &data_len), CHUNKED_DONE);
    CHECK_INT(len, 0);
    CHECK_INT(data_len, 0);

    /* An error sticks. */
    struct chunked_decoder e = {0};
    char bad[] = "z\r\n";
    len = 3;
    CHECK_INT(chunked_decode(&e, bad, &len, &data_len), HTTP_ERROR);
    char good[] = "0\r\n\r\n";
    len = 5;
    CHECK_INT(chunked_decode(&e, good, &len, &data_len), HTTP_ERROR);
    CHECK_INT(data_len, 0);

    /* An empty feed is fine. */
    struct chunked_decoder f = {0};
    len = 0;
    CHECK_INT(chunked_decode(&f, good, &len, &data_len), 0);
    CHECK_INT(len, 0);
    CHECK_INT(data_len, 0);
}

static void test_chunked_size_line(void)
{
    char out[18];

    CHECK_INT(chunked_size_line(out, 0), 3);
    CHECK(memcmp(out, "0\r\n", 3) == 0);
    CHECK_INT(chunked_size_line(out, 0x1a2b), 6);
    CHECK(memcmp(out, "1a2b\r\n", 6) == 0);
    CHECK_INT(chunked_size_line(out, UINT64_MAX), 18);
    CHECK(memcmp(out, "ffffffffffffffff\r\n", 18) == 0);

    /* What it writes, the decoder reads back. */
    static char body[64 + 300];
    size_t n = chunked_size_line(body, 300);
    memset(body + n, 'q', 300);
    n += 300;
    memcpy(body + n, "\r\n0\r\n\r\n", 7);
    n += 7;
    struct chunked_decoder d = {0};
    size_t len = n, data_len;
    CHECK_INT(chunked_decode(&d, body, &len, &data_len), CHUNKED_DONE);
    CHECK_INT(len, n);
    CHECK_INT(data_len, 300);
}

/* ---- header helpers ------------------------------------------------------ */

static struct http_str hs(const char *s)
{
    return (struct http_str){s, strlen(s)};
}

static void test_header_helpers(void)
{
    struct http_request req;
    struct http_error err;
    const struct http_header *h;

    CHECK(parse_request(LIT("GET / HTTP/1.1\r\nHost: a\r\nX-One: 1\r\nx-one: 2\r\n\r\n"), &req,
                        &err) > 0);
    h = http1_find_header(req.headers, req.n_headers, "X-ONE");
    CHECK(h == &req.headers[1]);
    CHECK(http1_find_header(req.headers, req.n_headers, "X-On") == NULL);
    CHECK(http1_find_header(req.headers, req.n_headers, "X-One-") == NULL);
    CHECK(http1_find_header(req.headers, 0, "Host") == NULL);

    CHECK(http1_has_token(hs("keep-alive"), "keep-alive"));
    CHECK(http1_has_token(hs("Keep-Alive, Upgrade"), "upgrade"));
    CHECK(http1_has_token(hs(" close ,\tx"), "close"));
    CHECK(http1_has_token(hs(",,close,"), "close"));
    CHECK(!http1_has_token(hs("closed"), "close"));
    CHECK(!http1_has_token(hs("xclose"), "close"));
    CHECK(!http1_has_token(hs(""), "close"));
    CHECK(!http1_has_token((struct http_str){NULL, 0}, "close"));
    CHECK(!http1_has_token(hs("keep-alive"), "keep"));

    CHECK(http1_is_hop_by_hop(hs("Connection")));
    CHECK(http1_is_hop_by_hop(hs("keep-alive")));
    CHECK(http1_is_hop_by_hop(hs("Proxy-Connection")));
    CHECK(http1_is_hop_by_hop(hs("TE")));
    CHECK(http1_is_hop_by_hop(hs("Trailer")));
    CHECK(http1_is_hop_by_hop(hs("TRANSFER-ENCODING")));
    CHECK(http1_is_hop_by_hop(hs("Upgrade")));
    CHECK(http1_is_hop_by_hop(hs("Proxy-Authenticate")));
    CHECK(http1_is_hop_by_hop(hs("Proxy-Authorization")));
    CHECK(!http1_is_hop_by_hop(hs("Trailers")));
    CHECK(!http1_is_hop_by_hop(hs("Content-Length")));
    CHECK(!http1_is_hop_by_hop(hs("Authorization")));
    CHECK(!http1_is_hop_by_hop(hs("")));
}

/* ---- dates --------------------------------------------------------------- */

static int64_t parse_date(const char *s)
{
    int64_t t = -12345;
    char *copy = heap_copy(s, strlen(s));
    int rc = http_date_parse(copy, strlen(s), &t);

    free(copy);
    return rc == 0 ? t : -12345;
}

static void test_dates(void)
{
    char out[30];

    CHECK_INT(http_date_format(out, 784111777), 29);
    CHECK_STR(out, "Sun, 06 Nov 1994 08:49:37 GMT");
    http_date_format(out, 0);
    CHECK_STR(out, "Thu, 01 Jan 1970 00:00:00 GMT");
    http_date_format(out, 951782400);
    CHECK_STR(out, "Tue, 29 Feb 2000 00:00:00 GMT");
    http_date_format(out, INT64_C(253402300799));
    CHECK_STR(out, "Fri, 31 Dec 9999 23:59:59 GMT");
    /* Out of the four-digit range: clamped, never longer. */
    CHECK_INT(http_date_format(out, INT64_MAX), 29);
    CHECK_STR(out, "Fri, 31 Dec 9999 23:59:59 GMT");
    CHECK_INT(http_date_format(out, INT64_MIN), 29);
    CHECK_STR(out, "Thu, 01 Jan 1970 00:00:00 GMT");

    CHECK_INT(parse_date("Sun, 06 Nov 1994 08:49:37 GMT"), 784111777);
    CHECK_INT(parse_date("Sunday, 06-Nov-94 08:49:37 GMT"), 784111777);
    CHECK_INT(parse_date("Sun Nov  6 08:49:37 1994"), 784111777);
    CHECK_INT(parse_date("Sun Nov 06 08:49:37 1994"), 784111777);
    CHECK_INT(parse_date("Thursday, 01-Jan-15 00:00:00 GMT"), 1420070400);
    CHECK_INT(parse_date("Wednesday, 31-Dec-69 00:00:00 GMT"), 3155673600);
    CHECK_INT(parse_date("Thursday, 01-Jan-70 00:00:00 GMT"), 0);
    CHECK_INT(parse_date("Sat, 31 Dec 2016 23:59:60 GMT"), 1483228800);
    CHECK_INT(parse_date("Tue, 29 Feb 2000 00:00:00 GMT"), 951782400);

    static const char *const bad[] = {
        "",
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 06 Nov 1994 08:49:37 gmt",
        "Sun, 06 Nov 1994 08:49:37 GMT ",
        " Sun, 06 Nov 1994 08:49:37 GMT",
        "Sun, 6 Nov 1994 08:49:37 GMT",
        "Sun, 06 nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 94 08:49:37 GMT",
        "Sun, 06 Nov 1994 8:49:37 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "Sun, 06 Nov 1994 23:60:00 GMT",
        "Sun, 06 Nov 1994 23:59:61 GMT",
        "Sun, 00 Nov 1994 08:49:37 GMT",
        "Sun, 31 Nov 1994 08:49:37 GMT",
        "Tue, 29 Feb 1900 00:00:00 GMT",
        "Xyz, 06 Nov 1994 08:49:37 GMT",
        "Sun 06 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37",
        "Sun, 06-Nov-94 08:49:37 GMT",
        "Sunday, 06-Nov-1994 08:49:37 GMT",
        "Sunday, 06 Nov 94 08:49:37 GMT",
        "Sun Nov 6 08:49:37 1994",
        "Sun Nov  6 08:49:37 94",
        "Sun Nov  6 08:49:37 1994 GMT",
        "Sun,+06 Nov 1994 08:49:37 GMT",
        "Sun, -6 Nov 1994 08:49:37 GMT",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse_date(bad[i]) != -12345) fprintf(stderr, "date accepted: \"%s\"\n", bad[i]);
        CHECK_INT(parse_date(bad[i]), -12345);
    }

    /* Round trips, over a spread of instants. */
    bool round_trips = true;
    for (int64_t t = 0; t < INT64_C(253402300799); t += INT64_C(86399) * 3571 + 7) {
        int64_t back = -1;

        http_date_format(out, t);
        if (http_date_parse(out, 29, &back) != 0 || back != t) {
            fprintf(stderr, "date round trip failed: %lld -> %s -> %lld\n", (long long)t, out,
                    (long long)back);
            round_trips = false;
            break;
        }
    }
    CHECK(round_trips);
}

int main(void)
{
    RUN(test_request_table);
    RUN(test_request_incomplete);
    RUN(test_every_byte_everywhere);
    RUN(test_request_get);
    RUN(test_request_post_length);
    RUN(test_request_chunked);
    RUN(test_request_versions_and_connection);
    RUN(test_request_targets);
    RUN(test_request_methods);
    RUN(test_request_header_count);
    RUN(test_response_table);
    RUN(test_response_fields);
    RUN(test_chunked_valid);
    RUN(test_chunked_errors);
    RUN(test_chunked_line_limit);
    RUN(test_chunked_after_end);
    RUN(test_chunked_size_line);
    RUN(test_header_helpers);
    RUN(test_dates);
    free(last_input);
    return TEST_REPORT();
}
