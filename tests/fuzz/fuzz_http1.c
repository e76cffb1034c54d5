/* libFuzzer target for gateway/http1.c. Every input goes through the request
 * parser, the response parser, the chunked decoder and the date parser, and
 * the invariants of their contracts are checked:
 *   - returned lengths and pointers stay inside the input;
 *   - a prefix of the input gives HTTP_INCOMPLETE or the whole input's verdict;
 *   - the chunked decoder gives the same answer however the input is split.
 * Copies are exact-size heap buffers, so any overread trips AddressSanitizer. */
#include "http1.h"
#include "fuzz.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *heap_copy(const uint8_t *data, size_t n)
{
    char *p = calloc(n ? n : 1, 1);

    REQUIRE(p != NULL);
    if (n) memcpy(p, data, n);
    return p;
}

static bool within(struct http_str s, const char *buf, size_t len)
{
    return s.p >= buf && s.len <= len && (size_t)(s.p - buf) <= len - s.len;
}

/* A few split points to test prefixes at, chosen by the input itself. */
static size_t split_points(const uint8_t *data, size_t size, int rc, size_t out[4])
{
    size_t n = 0;

    if (size == 0) return 0;
    out[n++] = size - 1;
    out[n++] = size / 2;
    out[n++] = (data[0] * 257u + data[size - 1]) % size;
    if (rc > 0) out[n++] = (size_t)rc - 1;
    return n;
}

typedef int (*head_parser)(const char *buf, size_t len, struct http_error *err);

static int parse_request(const char *buf, size_t len, struct http_error *err)
{
    static struct http_request req;

    return http1_parse_request(buf, len, &req, err);
}

static int parse_response(const char *buf, size_t len, struct http_error *err)
{
    static struct http_response resp;

    return http1_parse_response(buf, len, HTTP_GET, &resp, err);
}

static void check_prefixes(head_parser parse, const uint8_t *data, size_t size, int rc,
                           const struct http_error *full_err)
{
    size_t ks[4], n = split_points(data, size, rc, ks);

    for (size_t i = 0; i < n; i++) {
        struct http_error err = {0, NULL};
        char *prefix = heap_copy(data, ks[i]);
        int prc = parse(prefix, ks[i], &err);

        free(prefix);
        if (rc > 0 && ks[i] >= (size_t)rc)
            REQUIRE(prc == rc);
        else if (prc != HTTP_INCOMPLETE)
            REQUIRE(prc == HTTP_ERROR && rc == HTTP_ERROR && err.status == full_err->status &&
                    strcmp(err.message, full_err->message) == 0);
    }
}

static void check_headers(const struct http_header *h, size_t n, const char *buf, int rc)
{
    REQUIRE(n <= HTTP_MAX_HEADERS);
    for (size_t i = 0; i < n; i++) {
        char name[64];

        REQUIRE(within(h[i].name, buf, (size_t)rc) && h[i].name.len > 0);
        REQUIRE(within(h[i].value, buf, (size_t)rc));
        (void)http1_has_token(h[i].value, "close");
        (void)http1_is_hop_by_hop(h[i].name);
        if (h[i].name.len < sizeof(name)) {
            memcpy(name, h[i].name.p, h[i].name.len);
            name[h[i].name.len] = '\0';
            const struct http_header *first = http1_find_header(h, n, name);
            REQUIRE(first != NULL && first <= &h[i]);
        }
    }
}

static void fuzz_request(const uint8_t *data, size_t size)
{
    static struct http_request req;
    struct http_error err = {0, NULL};
    char *buf = heap_copy(data, size);
    int rc = http1_parse_request(buf, size, &req, &err);

    REQUIRE(rc == HTTP_INCOMPLETE || rc == HTTP_ERROR || (rc > 0 && (size_t)rc <= size));
    if (rc == HTTP_ERROR) {
        REQUIRE(err.status == 400 || err.status == 417 || err.status == 431 || err.status == 501 ||
                err.status == 505);
        REQUIRE(err.message != NULL && err.message[0] != '\0');
    }
    if (rc > 0) {
        REQUIRE(within(req.method, buf, (size_t)rc) && req.method.len > 0);
        REQUIRE(within(req.target, buf, (size_t)rc) && req.target.len > 0);
        REQUIRE(within(req.query, buf, (size_t)rc));
        REQUIRE(within(req.path, buf, (size_t)rc) || (req.path.len == 1 && req.path.p[0] == '/'));
        REQUIRE(req.host.len == 0 || within(req.host, buf, (size_t)rc));
        REQUIRE(req.minor_version == 0 || req.minor_version == 1);
        REQUIRE(req.body == HTTP_BODY_NONE || req.body == HTTP_BODY_LENGTH ||
                req.body == HTTP_BODY_CHUNKED);
        REQUIRE(req.content_length <= (UINT64_C(1) << 62));
        REQUIRE(req.minor_version == 1 || (!req.upgrade && !req.expect_continue));
        check_headers(req.headers, req.n_headers, buf, rc);
    }
    check_prefixes(parse_request, data, size, rc, &err);
    free(buf);
}

static void fuzz_response(const uint8_t *data, size_t size)
{
    static const enum http_method methods[] = {HTTP_GET, HTTP_HEAD, HTTP_CONNECT, HTTP_POST};
    static struct http_response resp;
    char *buf = heap_copy(data, size);

    for (size_t m = 0; m < sizeof(methods) / sizeof(methods[0]); m++) {
        struct http_error err = {0, NULL};
        int rc = http1_parse_response(buf, size, methods[m], &resp, &err);

        REQUIRE(rc == HTTP_INCOMPLETE || rc == HTTP_ERROR || (rc > 0 && (size_t)rc <= size));
        if (rc == HTTP_ERROR) REQUIRE(err.status == 502 && err.message != NULL);
        if (rc > 0) {
            REQUIRE(resp.status >= 100 && resp.status <= 599);
            REQUIRE(within(resp.reason, buf, (size_t)rc));
            REQUIRE(resp.body != HTTP_BODY_TO_EOF || !resp.keep_alive);
            REQUIRE(methods[m] != HTTP_HEAD || resp.body == HTTP_BODY_NONE);
            check_headers(resp.headers, resp.n_headers, buf, rc);
        }
        if (methods[m] == HTTP_GET) check_prefixes(parse_response, data, size, rc, &err);
    }
    free(buf);
}

struct decoded {
    int rc;
    size_t consumed;
    char *data; /* size bytes */
    size_t data_len;
};

/* Feeds the input in pieces: the first `first` bytes, then `step` at a time. */
static struct decoded decode_pieces(const uint8_t *in, size_t size, size_t first, size_t step)
{
    struct chunked_decoder d = {0};
    struct decoded out = {0, 0, malloc(size ? size : 1), 0};

    REQUIRE(out.data != NULL);
    for (int call = 0; call == 0 || out.consumed < size; call++) {
        size_t piece = call == 0 ? first : step;
        size_t len, data_len = SIZE_MAX;
        char *buf;

        if (piece > size - out.consumed) piece = size - out.consumed;
        buf = heap_copy(in + out.consumed, piece);
        len = piece;
        out.rc = chunked_decode(&d, buf, &len, &data_len);
        REQUIRE(out.rc == 0 || out.rc == CHUNKED_DONE || out.rc == HTTP_ERROR);
        REQUIRE(len <= piece && data_len <= len);
        REQUIRE(out.rc != 0 || len == piece);
        if (out.rc == CHUNKED_DONE) /* what follows the body is left alone */
            REQUIRE(memcmp(buf + len, in + out.consumed + len, piece - len) == 0);
        memcpy(out.data + out.data_len, buf, data_len);
        out.data_len += data_len;
        out.consumed += len;
        free(buf);
        if (out.rc != 0) break;
    }
    return out;
}

static void require_same_decoding(const struct decoded *a, const struct decoded *b)
{
    REQUIRE(a->rc == b->rc);
    if (a->rc == HTTP_ERROR) return;
    REQUIRE(a->consumed == b->consumed);
    REQUIRE(a->data_len == b->data_len);
    REQUIRE(memcmp(a->data, b->data, a->data_len) == 0);
}

static void fuzz_chunked(const uint8_t *data, size_t size)
{
    struct decoded whole = decode_pieces(data, size, size, size);
    struct decoded bytes = decode_pieces(data, size, 1, 1);
    size_t k = size ? (data[size - 1] * 31u + data[0]) % (size + 1) : 0;
    struct decoded two = decode_pieces(data, size, k, size);

    REQUIRE(whole.rc != 0 || whole.consumed == size);
    require_same_decoding(&whole, &bytes);
    require_same_decoding(&whole, &two);
    free(whole.data);
    free(bytes.data);
    free(two.data);
}

/* The size line written for a number reads back as that chunk's header. */
static void fuzz_size_line(const uint8_t *data, size_t size)
{
    char line[18];
    uint64_t n = 0;
    struct chunked_decoder d = {0};
    size_t len, data_len;
    int rc;

    if (size < 8) return;
    memcpy(&n, data, 8);
    n >>= data[0] % 64;
    len = chunked_size_line(line, n);
    REQUIRE(len >= 3 && len <= 18 && line[len - 2] == '\r' && line[len - 1] == '\n');
    rc = chunked_decode(&d, line, &len, &data_len);
    if (n > (UINT64_C(1) << 62))
        REQUIRE(rc == HTTP_ERROR);
    else
        REQUIRE(rc == 0 && data_len == 0);
}

static void fuzz_date(const uint8_t *data, size_t size)
{
    char *buf = heap_copy(data, size);
    char out[30];
    int64_t t, back;

    if (http_date_parse(buf, size, &t) == 0 && t >= 0 && t <= INT64_C(253402300799)) {
        REQUIRE(http_date_format(out, t) == 29);
        REQUIRE(http_date_parse(out, 29, &back) == 0 && back == t);
    }
    if (size >= 8) {
        memcpy(&t, data, 8);
        REQUIRE(http_date_format(out, t) == 29 && out[29] == '\0');
        REQUIRE(http_date_parse(out, 29, &back) == 0);
    }
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_request(data, size);
    fuzz_response(data, size);
    fuzz_chunked(data, size);
    fuzz_size_line(data, size);
    fuzz_date(data, size);
    return 0;
}
