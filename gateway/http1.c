/* HTTP/1.x message parsing (RFC 9112), the chunked transfer coding and
 * HTTP-dates (RFC 9110 5.6.7). */
#include "http1.h"

#include <limits.h>
#include <string.h>
#include <time.h>

#define MAX_CONTENT_LENGTH (UINT64_C(1) << 62)
#define MAX_CHUNK_SIZE (UINT64_C(1) << 62)
#define MAX_CHUNK_LINE 4096 /* a size or trailer line, its CRLF included */

/* 9999-12-31T23:59:59Z: the last instant a four-digit year can show. */
#define MAX_HTTP_DATE INT64_C(253402300799)

/* ---- characters ---------------------------------------------------------- */

static const bool tchar_table[256] = {
    ['!'] = true,         ['#' ... '\''] = true, ['*'] = true,         ['+'] = true,
    ['-'] = true,         ['.'] = true,          ['0' ... '9'] = true, ['A' ... 'Z'] = true,
    ['^' ... 'z'] = true, ['|'] = true,          ['~'] = true,
};

static bool is_tchar(char c)
{
    return tchar_table[(unsigned char)c];
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* A control character, HTAB excepted: never allowed anywhere in a head. */
static bool is_ctl(char c)
{
    unsigned char u = (unsigned char)c;

    return (u < 0x20 && u != '\t') || u == 0x7f;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alnum(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int hex_value(char c)
{
    if (is_digit(c)) return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Visible ASCII but '#': a fragment never travels in a request-target. */
static bool is_target_char(char c)
{
    return c > 0x20 && c < 0x7f && c != '#'; /* negative: obs-text */
}

/* A reg-name, minus sub-delims and pct-encoding: real host names never use
 * them, and characters like ',' or '%' in a Host only serve confusion. */
static bool is_host_char(char c)
{
    return is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

/* Inside an IP-literal's brackets: IPv6, IPvFuture, a zone id. */
static bool is_ip_literal_char(char c)
{
    return is_host_char(c) || c == ':' || c == '%';
}

static char to_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c + ('a' - 'A')) : c;
}

bool http1_equals_nocase(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (to_lower(a[i]) != to_lower(b[i])) return false;
    return true;
}

static struct http_str trim_ows(const char *p, const char *end)
{
    while (p < end && is_ows(*p))
        p++;
    while (end > p && is_ows(end[-1]))
        end--;
    return (struct http_str){p, (size_t)(end - p)};
}

static int fail(struct http_error *err, int status, const char *message)
{
    if (err) {
        err->status = status;
        err->message = message;
    }
    return HTTP_ERROR;
}

/* ---- lines --------------------------------------------------------------- */

#define EVERY_BYTE(b) (0x0101010101010101ULL * (b))

/* The bytes of the 8 at p that are below 0x20 (CR, LF and HTAB among
 * them) or are DEL, flagged by their high bit (the classic "has less
 * than" and "has zero" word tricks). Bytes of 0x80 and above are not
 * flagged. A borrow can flag a byte above a true one, never below it. */
static uint64_t ctl_flags(const char *p)
{
    uint64_t w, del;

    memcpy(&w, p, sizeof(w));
    del = w ^ EVERY_BYTE(0x7f);
    return (((w - EVERY_BYTE(0x20)) & ~w) | ((del - EVERY_BYTE(0x01)) & ~del)) & EVERY_BYTE(0x80);
}

/* How many bytes at p (at most n) come before the first control character
 * or DEL; it may stop short of it, never past it. Header lines are mostly
 * printable text: it is skipped 8 bytes at a time. */
static size_t printable_run(const char *p, size_t n)
{
    size_t i = 0;

    for (; n - i >= 8; i += 8) {
        uint64_t flags = ctl_flags(p + i);

        if (flags)
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            return i + (size_t)__builtin_ctzll(flags) / 8; /* the lowest flag is a true one */
#else
            return i;
#endif
    }
    while (i < n && (unsigned char)p[i] >= 0x20 && p[i] != 0x7f)
        i++;
    return i;
}

/* The line starting at *pos, without its CRLF; *pos moves past the CRLF.
 * A bare CR or LF, or any other control character but HTAB, is an error as
 * soon as it is seen: whatever follows cannot make the head valid. */
static int next_line(const char *buf, size_t len, size_t *pos, struct http_str *line,
                     struct http_error *err)
{
    size_t i = *pos;

    while ((i += printable_run(buf + i, len - i)) < len) {
        char c = buf[i];

        if (c == '\r') {
            if (i + 1 == len) return HTTP_INCOMPLETE;
            if (buf[i + 1] != '\n') return fail(err, 400, "bare CR in message head");
            *line = (struct http_str){buf + *pos, i - *pos};
            *pos = i + 2;
            return 0;
        }
        if (c == '\n') return fail(err, 400, "bare LF in message head");
        if (is_ctl(c)) return fail(err, 400, "control character in message head");
        i++; /* HTAB (or, big-endian, a byte flagged by a borrow) */
    }
    return HTTP_INCOMPLETE;
}

enum version { VERSION_OK, VERSION_UNSUPPORTED, VERSION_INVALID };

/* "HTTP/1.0" or "HTTP/1.1"; another well-formed HTTP/x.y is unsupported. */
static enum version parse_version(const char *p, size_t n, int *minor)
{
    if (n != 8 || memcmp(p, "HTTP/", 5) != 0 || !is_digit(p[5]) || p[6] != '.' || !is_digit(p[7]))
        return VERSION_INVALID;
    if (p[5] != '1' || (p[7] != '0' && p[7] != '1')) return VERSION_UNSUPPORTED;
    *minor = p[7] - '0';
    return VERSION_OK;
}

static int parse_header_line(struct http_str line, struct http_header *h, struct http_error *err)
{
    const char *p = line.p, *end = line.p + line.len;

    if (is_ows(*p)) return fail(err, 400, "obs-fold (line folding) in header section");
    while (p < end && is_tchar(*p))
        p++;
    if (p == end) return fail(err, 400, "header line without colon");
    if (*p != ':')
        return fail(err, 400,
                    is_ows(*p) ? "whitespace before colon" : "invalid character in header name");
    if (p == line.p) return fail(err, 400, "empty header name");
    h->name = (struct http_str){line.p, (size_t)(p - line.p)};
    h->value = trim_ows(p + 1, end);
    return 0;
}

/* Header lines up to and including the empty line that ends the head. The
 * lines' bytes are already free of control characters (next_line), so a
 * value needs no further check. */
static int parse_header_lines(const char *buf, size_t len, size_t *pos, struct http_header *headers,
                              size_t *n, struct http_error *err)
{
    *n = 0;
    for (;;) {
        struct http_str line;
        int rc = next_line(buf, len, pos, &line, err);

        if (rc != 0) return rc;
        if (line.len == 0) break;
        if (*n == HTTP_MAX_HEADERS) return fail(err, 431, "too many header fields");
        rc = parse_header_line(line, &headers[*n], err);
        if (rc != 0) return rc;
        (*n)++;
    }
    if (*pos > INT_MAX) return fail(err, 431, "header section too large");
    return 0;
}

/* ---- header values ------------------------------------------------------- */

enum field {
    FIELD_OTHER,
    FIELD_HOST,
    FIELD_EXPECT,
    FIELD_UPGRADE,
    FIELD_CONNECTION,
    FIELD_CONTENT_LENGTH,
    FIELD_TRANSFER_ENCODING,
};

static enum field field_of(struct http_str name)
{
    switch (name.len) {
    case 4:
        return http1_str_is(name, "host") ? FIELD_HOST : FIELD_OTHER;
    case 6:
        return http1_str_is(name, "expect") ? FIELD_EXPECT : FIELD_OTHER;
    case 7:
        return http1_str_is(name, "upgrade") ? FIELD_UPGRADE : FIELD_OTHER;
    case 10:
        return http1_str_is(name, "connection") ? FIELD_CONNECTION : FIELD_OTHER;
    case 14:
        return http1_str_is(name, "content-length") ? FIELD_CONTENT_LENGTH : FIELD_OTHER;
    case 17:
        return http1_str_is(name, "transfer-encoding") ? FIELD_TRANSFER_ENCODING : FIELD_OTHER;
    default:
        return FIELD_OTHER;
    }
}

/* Walks the comma-separated elements of a list value (RFC 9110 5.6.1),
 * each OWS-trimmed. Empty elements are returned too: the callers parsing
 * framing headers refuse them. */
struct list_cursor {
    const char *p, *end;
    bool done;
};

static struct list_cursor list_of(struct http_str value)
{
    return (struct list_cursor){value.p, value.p + value.len, false};
}

static bool next_element(struct list_cursor *c, struct http_str *elem)
{
    const char *comma = c->p;

    if (c->done) return false;
    while (comma < c->end && *comma != ',')
        comma++;
    *elem = trim_ows(c->p, comma);
    if (comma == c->end)
        c->done = true;
    else
        c->p = comma + 1;
    return true;
}

/* What the headers say about the body and the connection. */
struct framing {
    bool has_length;
    uint64_t length;
    bool has_te;
    bool te_malformed;
    bool te_final_chunked;
    int te_chunked; /* how many times chunked was applied */
    int te_other;   /* how many other codings */
    bool close;
    bool keep_alive;
    bool upgrade_token;
    bool has_upgrade;
};

static bool parse_decimal(struct http_str s, uint64_t *out)
{
    uint64_t n = 0;

    if (s.len == 0) return false;
    for (size_t i = 0; i < s.len; i++) {
        if (!is_digit(s.p[i])) return false;
        n = n * 10 + (uint64_t)(s.p[i] - '0');
        if (n > MAX_CONTENT_LENGTH) return false;
    }
    *out = n;
    return true;
}

/* Repeated Content-Lengths, as lines or as a list, must all agree
 * (RFC 9110 8.6); anything else could frame the body two ways. */
static int merge_content_length(struct framing *f, struct http_str value, struct http_error *err)
{
    struct list_cursor c = list_of(value);
    struct http_str elem;
    uint64_t n;

    while (next_element(&c, &elem)) {
        if (!parse_decimal(elem, &n)) return fail(err, 400, "invalid Content-Length");
        if (f->has_length && n != f->length)
            return fail(err, 400, "differing Content-Length values");
        f->has_length = true;
        f->length = n;
    }
    return 0;
}

/* A transfer-coding is a token, perhaps with parameters; "chunked" counts
 * only bare (chunked has no parameters, so "chunked;x" is some other coding). */
static void note_transfer_codings(struct framing *f, struct http_str value)
{
    struct list_cursor c = list_of(value);
    struct http_str elem;

    f->has_te = true;
    while (next_element(&c, &elem)) {
        size_t name_len = 0;

        while (name_len < elem.len && is_tchar(elem.p[name_len]))
            name_len++;
        struct http_str params = trim_ows(elem.p + name_len, elem.p + elem.len);
        if (name_len == 0 || (params.len > 0 && params.p[0] != ';')) f->te_malformed = true;
        f->te_final_chunked = http1_str_is(elem, "chunked");
        if (f->te_final_chunked)
            f->te_chunked++;
        else
            f->te_other++;
    }
}

static void note_connection_options(struct framing *f, struct http_str value)
{
    struct list_cursor c = list_of(value);
    struct http_str option;

    while (next_element(&c, &option)) {
        f->close |= http1_str_is(option, "close");
        f->keep_alive |= http1_str_is(option, "keep-alive");
        f->upgrade_token |= http1_str_is(option, "upgrade");
    }
}

static int note_framing_field(struct framing *f, enum field field, struct http_str value,
                              struct http_error *err)
{
    switch (field) {
    case FIELD_CONTENT_LENGTH:
        return merge_content_length(f, value, err);
    case FIELD_TRANSFER_ENCODING:
        note_transfer_codings(f, value);
        return 0;
    case FIELD_CONNECTION:
        note_connection_options(f, value);
        return 0;
    case FIELD_UPGRADE:
        f->has_upgrade = true;
        return 0;
    default:
        return 0;
    }
}

static bool keeps_alive(const struct framing *f, int minor_version)
{
    if (f->close) return false;
    return minor_version == 1 || f->keep_alive;
}

static bool is_port(const char *p, const char *end)
{
    uint32_t n = 0;

    if (p == end || end - p > 5) return false;
    for (; p < end; p++) {
        if (!is_digit(*p)) return false;
        n = n * 10 + (uint32_t)(*p - '0');
    }
    return n <= 65535;
}

/* host [":" port], the port stripped from *host; an IPv6 literal keeps its
 * brackets. */
static bool parse_host(struct http_str v, struct http_str *host, bool need_port)
{
    const char *p = v.p, *end = v.p + v.len;

    if (p < end && *p == '[') {
        p++;
        while (p < end && is_ip_literal_char(*p))
            p++;
        if (p == v.p + 1 || p == end || *p != ']') return false;
        p++;
    } else {
        while (p < end && is_host_char(*p))
            p++;
        if (p == v.p) return false;
    }
    *host = (struct http_str){v.p, (size_t)(p - v.p)};
    if (p == end) return !need_port;
    return *p == ':' && is_port(p + 1, end);
}

/* ---- requests ------------------------------------------------------------ */

static enum http_method method_of(struct http_str m)
{
    static const struct {
        const char *name;
        size_t len;
        enum http_method id;
    } known[] = {
        {"GET", 3, HTTP_GET},         {"HEAD", 4, HTTP_HEAD},     {"POST", 4, HTTP_POST},
        {"PUT", 3, HTTP_PUT},         {"DELETE", 6, HTTP_DELETE}, {"PATCH", 5, HTTP_PATCH},
        {"OPTIONS", 7, HTTP_OPTIONS}, {"TRACE", 5, HTTP_TRACE},   {"CONNECT", 7, HTTP_CONNECT},
    };

    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (m.len == known[i].len && memcmp(m.p, known[i].name, m.len) == 0) return known[i].id;
    return HTTP_OTHER;
}

static void split_path_query(const char *p, const char *end, struct http_request *req)
{
    const char *q = memchr(p, '?', (size_t)(end - p));

    if (!q) {
        req->path = (struct http_str){p, (size_t)(end - p)};
        req->query = (struct http_str){end, 0};
        return;
    }
    req->path = (struct http_str){p, (size_t)(q - p)};
    req->query = (struct http_str){q + 1, (size_t)(end - q - 1)};
}

static bool has_prefix_nocase(struct http_str s, const char *prefix)
{
    size_t n = strlen(prefix);

    return s.len >= n && http1_equals_nocase(s.p, prefix, n);
}

size_t http1_scheme_length(struct http_str s)
{
    return has_prefix_nocase(s, "http://") ? 7 : has_prefix_nocase(s, "https://") ? 8 : 0;
}

/* "http://authority/path?query": the path and query as if origin-form, the
 * authority's host in *authority (it wins over the Host header). Userinfo
 * ('@') is refused, as RFC 9110 4.2.4 advises. */
static int parse_absolute_form(struct http_request *req, struct http_str *authority,
                               struct http_error *err)
{
    struct http_str t = req->target;
    size_t skip = http1_scheme_length(t);
    const char *end = t.p + t.len, *p = t.p + skip, *auth = p;

    if (skip == 0) return fail(err, 400, "invalid request target");
    while (p < end && *p != '/' && *p != '?')
        p++;
    if (!parse_host((struct http_str){auth, (size_t)(p - auth)}, authority, false))
        return fail(err, 400, "invalid authority in request target");
    split_path_query(p, end, req);
    if (req->path.len == 0) req->path = (struct http_str){"/", 1};
    return 0;
}

/* The request-target forms of RFC 9112 3.2, each for its methods only. */
static int parse_target(struct http_request *req, struct http_str *authority,
                        struct http_error *err)
{
    struct http_str t = req->target;

    if (req->method_id == HTTP_CONNECT) {
        if (!parse_host(t, authority, true))
            return fail(err, 400, "CONNECT needs a host:port target");
        req->path = (struct http_str){t.p, 0};
        req->query = (struct http_str){t.p, 0};
        return 0;
    }
    if (t.p[0] == '/') {
        split_path_query(t.p, t.p + t.len, req);
        return 0;
    }
    if (t.len == 1 && t.p[0] == '*') {
        if (req->method_id != HTTP_OPTIONS)
            return fail(err, 400, "'*' target for a method other than OPTIONS");
        req->path = t;
        req->query = (struct http_str){t.p + 1, 0};
        return 0;
    }
    return parse_absolute_form(req, authority, err);
}

static int parse_request_line(struct http_str line, struct http_request *req,
                              struct http_error *err)
{
    const char *p = line.p, *end = line.p + line.len, *target;

    while (p < end && is_tchar(*p))
        p++;
    if (p == line.p || p == end || *p != ' ') return fail(err, 400, "invalid method");
    req->method = (struct http_str){line.p, (size_t)(p - line.p)};
    req->method_id = method_of(req->method);
    target = ++p;
    while (p < end && is_target_char(*p))
        p++;
    if (p == target || p == end || *p != ' ') return fail(err, 400, "invalid request target");
    req->target = (struct http_str){target, (size_t)(p - target)};
    p++;
    switch (parse_version(p, (size_t)(end - p), &req->minor_version)) {
    case VERSION_OK:
        return 0;
    case VERSION_UNSUPPORTED:
        return fail(err, 505, "HTTP version not supported");
    default:
        return fail(err, 400, "invalid HTTP version");
    }
}

static int request_body(struct http_request *req, const struct framing *f, struct http_error *err)
{
    if (f->has_te) {
        if (req->minor_version == 0)
            return fail(err, 400, "Transfer-Encoding in an HTTP/1.0 request");
        if (f->has_length) return fail(err, 400, "both Content-Length and Transfer-Encoding");
        if (f->te_malformed) return fail(err, 400, "malformed Transfer-Encoding");
        if (f->te_other > 0) return fail(err, 501, "unsupported transfer coding");
        if (f->te_chunked > 1) return fail(err, 400, "chunked applied more than once");
        req->body = HTTP_BODY_CHUNKED;
    } else if (f->has_length) {
        req->body = HTTP_BODY_LENGTH;
        req->content_length = f->length;
    }
    return 0;
}

static int request_host(struct http_request *req, struct http_str authority, int n_host,
                        struct http_error *err)
{
    if (n_host == 0 && req->minor_version == 1) return fail(err, 400, "missing Host header");
    if (authority.p) {
        if (n_host > 0 && !(req->host.len == authority.len &&
                            http1_equals_nocase(req->host.p, authority.p, authority.len)))
            return fail(err, 400, "Host header differs from the request target");
        req->host = authority;
    }
    return 0;
}

/* Host and Expect are the request's own; the rest is framing. */
static int note_request_field(struct http_request *req, struct framing *f, int *n_host,
                              const struct http_header *h, struct http_error *err)
{
    enum field field = field_of(h->name);

    switch (field) {
    case FIELD_HOST:
        if (++*n_host > 1) return fail(err, 400, "more than one Host header");
        if (h->value.len == 0)
            req->host = h->value;
        else if (!parse_host(h->value, &req->host, false))
            return fail(err, 400, "invalid Host header");
        return 0;
    case FIELD_EXPECT:
        if (!http1_str_is(h->value, "100-continue"))
            return fail(err, 417, "unsupported expectation");
        req->expect_continue = true;
        return 0;
    default:
        return note_framing_field(f, field, h->value, err);
    }
}

static int derive_request_fields(struct http_request *req, struct http_str authority,
                                 struct http_error *err)
{
    struct framing f = {0};
    int n_host = 0, rc;

    for (size_t i = 0; i < req->n_headers; i++)
        if ((rc = note_request_field(req, &f, &n_host, &req->headers[i], err)) != 0) return rc;
    if ((rc = request_body(req, &f, err)) != 0) return rc;
    if ((rc = request_host(req, authority, n_host, err)) != 0) return rc;
    /* HTTP/1.0 knows neither 100 Continue nor Upgrade (RFC 9110 10.1.1, 7.8). */
    req->keep_alive = keeps_alive(&f, req->minor_version);
    req->expect_continue = req->expect_continue && req->minor_version == 1;
    req->upgrade = f.upgrade_token && f.has_upgrade && req->minor_version == 1;
    return 0;
}

int http1_parse_request(const char *buf, size_t len, struct http_request *req,
                        struct http_error *err)
{
    struct http_str line, authority = {NULL, 0};
    size_t pos = 0;
    int rc;

    req->n_headers = 0;
    req->host = (struct http_str){"", 0};
    req->body = HTTP_BODY_NONE;
    req->content_length = 0;
    req->keep_alive = req->expect_continue = req->upgrade = false;

    while (len - pos >= 2 && buf[pos] == '\r' && buf[pos + 1] == '\n')
        pos += 2;
    if ((rc = next_line(buf, len, &pos, &line, err)) != 0) return rc;
    if ((rc = parse_request_line(line, req, err)) != 0) return rc;
    if ((rc = parse_target(req, &authority, err)) != 0) return rc;
    if ((rc = parse_header_lines(buf, len, &pos, req->headers, &req->n_headers, err)) != 0)
        return rc;
    if ((rc = derive_request_fields(req, authority, err)) != 0) return rc;
    return (int)pos;
}

/* ---- responses ----------------------------------------------------------- */

/* "HTTP/1.1 200 OK". A missing reason with its SP ("HTTP/1.1 200") is
 * accepted: common in the wild, and the reason carries no meaning. */
static int parse_status_line(struct http_str line, struct http_response *resp,
                             struct http_error *err)
{
    const char *p = line.p;

    if (line.len < 12 || p[8] != ' ') return fail(err, 502, "malformed status line");
    switch (parse_version(p, 8, &resp->minor_version)) {
    case VERSION_OK:
        break;
    case VERSION_UNSUPPORTED:
        return fail(err, 502, "unsupported HTTP version in response");
    default:
        return fail(err, 502, "malformed status line");
    }
    if (!is_digit(p[9]) || !is_digit(p[10]) || !is_digit(p[11]) || p[9] < '1' || p[9] > '5')
        return fail(err, 502, "invalid status code");
    resp->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    if (line.len == 12) {
        resp->reason = (struct http_str){p + 12, 0};
        return 0;
    }
    if (p[12] != ' ') return fail(err, 502, "invalid status code");
    resp->reason = (struct http_str){p + 13, line.len - 13};
    return 0;
}

static bool response_has_no_body(int status, enum http_method request_method)
{
    return request_method == HTTP_HEAD || status < 200 || status == 204 || status == 304 ||
           (request_method == HTTP_CONNECT && status < 300);
}

/* RFC 9112 6.3. Transfer-Encoding with Content-Length is refused rather
 * than resolved in favour of the coding: it is a smuggling shape. */
static int response_body(struct http_response *resp, const struct framing *f,
                         enum http_method request_method, struct http_error *err)
{
    resp->content_length = f->has_length ? f->length : 0;
    if (response_has_no_body(resp->status, request_method)) {
        resp->body = HTTP_BODY_NONE;
    } else if (f->has_te) {
        if (resp->minor_version == 0)
            return fail(err, 502, "Transfer-Encoding in an HTTP/1.0 response");
        if (f->has_length)
            return fail(err, 502, "both Content-Length and Transfer-Encoding in response");
        if (f->te_malformed || f->te_chunked > 1)
            return fail(err, 502, "malformed Transfer-Encoding in response");
        resp->body = f->te_final_chunked ? HTTP_BODY_CHUNKED : HTTP_BODY_TO_EOF;
    } else {
        resp->body = f->has_length ? HTTP_BODY_LENGTH : HTTP_BODY_TO_EOF;
    }
    return 0;
}

/* Errors in a response are the origin's: the client gets a 502. */
static int origin_fault(int rc, struct http_error *err)
{
    if (rc == HTTP_ERROR && err) err->status = 502;
    return rc;
}

int http1_parse_response(const char *buf, size_t len, enum http_method request_method,
                         struct http_response *resp, struct http_error *err)
{
    struct framing f = {0};
    struct http_str line;
    size_t pos = 0;
    int rc;

    resp->n_headers = 0;
    resp->body = HTTP_BODY_NONE;
    resp->content_length = 0;
    resp->keep_alive = false;

    if ((rc = next_line(buf, len, &pos, &line, err)) != 0) return origin_fault(rc, err);
    if ((rc = parse_status_line(line, resp, err)) != 0) return rc;
    if ((rc = parse_header_lines(buf, len, &pos, resp->headers, &resp->n_headers, err)) != 0)
        return origin_fault(rc, err);
    for (size_t i = 0; i < resp->n_headers; i++) {
        enum field field = field_of(resp->headers[i].name);

        if ((rc = note_framing_field(&f, field, resp->headers[i].value, err)) != 0)
            return origin_fault(rc, err);
    }
    if ((rc = response_body(resp, &f, request_method, err)) != 0) return rc;
    resp->keep_alive = keeps_alive(&f, resp->minor_version) && resp->body != HTTP_BODY_TO_EOF;
    return (int)pos;
}

/* ---- headers ------------------------------------------------------------- */

const struct http_header *http1_find_header(const struct http_header *headers, size_t n,
                                            const char *name)
{
    size_t len = strlen(name);

    for (size_t i = 0; i < n; i++)
        if (headers[i].name.len == len && http1_equals_nocase(headers[i].name.p, name, len))
            return &headers[i];
    return NULL;
}

bool http1_list_has(struct http_str value, struct http_str token)
{
    struct list_cursor c;
    struct http_str elem;

    if (value.len == 0) return false;
    c = list_of(value);
    while (next_element(&c, &elem))
        if (elem.len == token.len && http1_equals_nocase(elem.p, token.p, token.len)) return true;
    return false;
}

/* clang-format off */
#define STR(literal) {literal, sizeof(literal) - 1}
/* clang-format on */

bool http1_is_hop_by_hop(struct http_str name)
{
    static const struct http_str hop_by_hop[] = {
        STR("connection"),
        STR("keep-alive"),
        STR("proxy-connection"),
        STR("te"),
        STR("trailer"),
        STR("transfer-encoding"),
        STR("upgrade"),
        STR("proxy-authenticate"),
        STR("proxy-authorization"),
    };

    for (size_t i = 0; i < sizeof(hop_by_hop) / sizeof(hop_by_hop[0]); i++)
        if (name.len == hop_by_hop[i].len && http1_equals_nocase(name.p, hop_by_hop[i].p, name.len))
            return true;
    return false;
}

/* ---- chunked transfer coding (RFC 9112 7.1) ------------------------------ */

enum chunk_state {
    CHUNK_SIZE_START = 0, /* a zeroed decoder is ready to go */
    CHUNK_SIZE,
    CHUNK_SIZE_WS,
    CHUNK_EXT,
    CHUNK_SIZE_LF,
    CHUNK_TRAILER_START,
    CHUNK_TRAILER_NAME,
    CHUNK_TRAILER_VALUE,
    CHUNK_TRAILER_LF,
    CHUNK_END_LF,
    /* Not within a line: */
    CHUNK_DATA,
    CHUNK_DATA_CR,
    CHUNK_DATA_LF,
    CHUNK_DONE,
    CHUNK_ERROR,
};

static int chunk_fail(struct chunked_decoder *d)
{
    d->state = CHUNK_ERROR;
    return HTTP_ERROR;
}

static int chunk_goto(struct chunked_decoder *d, enum chunk_state state)
{
    d->state = state;
    return 0;
}

static int chunk_new_line(struct chunked_decoder *d, enum chunk_state state)
{
    d->line_bytes = 0;
    return chunk_goto(d, state);
}

static int chunk_size_digit(struct chunked_decoder *d, int digit)
{
    if (d->remaining > (MAX_CHUNK_SIZE - (uint64_t)digit) / 16) return chunk_fail(d);
    d->remaining = d->remaining * 16 + (uint64_t)digit;
    return chunk_goto(d, CHUNK_SIZE);
}

/* After the size: BWS before an extension, the extension, or CRLF.
 * Extensions are checked loosely (no control characters) and ignored. */
static int chunk_after_size(struct chunked_decoder *d, char c)
{
    if (c == '\r') return chunk_goto(d, CHUNK_SIZE_LF);
    if (c == ';') return chunk_goto(d, CHUNK_EXT);
    if (is_ows(c)) return chunk_goto(d, CHUNK_SIZE_WS);
    return chunk_fail(d);
}

static int chunk_step_line(struct chunked_decoder *d, char c)
{
    int digit = hex_value(c);

    switch (d->state) {
    case CHUNK_SIZE_START:
        return digit >= 0 ? chunk_size_digit(d, digit) : chunk_fail(d);
    case CHUNK_SIZE:
        return digit >= 0 ? chunk_size_digit(d, digit) : chunk_after_size(d, c);
    case CHUNK_SIZE_WS:
        return c == '\r' ? chunk_fail(d) : chunk_after_size(d, c);
    case CHUNK_EXT:
        if (c == '\r') return chunk_goto(d, CHUNK_SIZE_LF);
        return is_ctl(c) ? chunk_fail(d) : 0;
    case CHUNK_SIZE_LF:
        if (c != '\n') return chunk_fail(d);
        return chunk_new_line(d, d->remaining ? CHUNK_DATA : CHUNK_TRAILER_START);
    case CHUNK_TRAILER_START:
        if (c == '\r') return chunk_goto(d, CHUNK_END_LF);
        return is_tchar(c) ? chunk_goto(d, CHUNK_TRAILER_NAME) : chunk_fail(d);
    case CHUNK_TRAILER_NAME:
        if (c == ':') return chunk_goto(d, CHUNK_TRAILER_VALUE);
        return is_tchar(c) ? 0 : chunk_fail(d);
    case CHUNK_TRAILER_VALUE:
        if (c == '\r') return chunk_goto(d, CHUNK_TRAILER_LF);
        return is_ctl(c) ? chunk_fail(d) : 0;
    case CHUNK_TRAILER_LF:
        return c == '\n' ? chunk_new_line(d, CHUNK_TRAILER_START) : chunk_fail(d);
    case CHUNK_END_LF:
        if (c != '\n') return chunk_fail(d);
        d->state = CHUNK_DONE;
        return CHUNKED_DONE;
    default:
        return chunk_fail(d);
    }
}

/* One byte outside chunk data. */
static int chunk_step(struct chunked_decoder *d, char c)
{
    switch (d->state) {
    case CHUNK_DATA_CR:
        return c == '\r' ? chunk_goto(d, CHUNK_DATA_LF) : chunk_fail(d);
    case CHUNK_DATA_LF:
        return c == '\n' ? chunk_new_line(d, CHUNK_SIZE_START) : chunk_fail(d);
    default:
        if (++d->line_bytes > MAX_CHUNK_LINE) return chunk_fail(d);
        return chunk_step_line(d, c);
    }
}

int chunked_decode(struct chunked_decoder *d, char *buf, size_t *len, size_t *data_len)
{
    size_t in = 0, out = 0, n = *len;
    int rc = 0;

    if (d->state == CHUNK_DONE || d->state == CHUNK_ERROR) {
        *len = 0;
        *data_len = 0;
        return d->state == CHUNK_DONE ? CHUNKED_DONE : HTTP_ERROR;
    }
    while (in < n && rc == 0) {
        if (d->state != CHUNK_DATA) {
            rc = chunk_step(d, buf[in++]);
            continue;
        }
        size_t take = n - in < d->remaining ? n - in : (size_t)d->remaining;
        if (out != in) memmove(buf + out, buf + in, take);
        in += take;
        out += take;
        d->remaining -= take;
        if (d->remaining == 0) d->state = CHUNK_DATA_CR;
    }
    *len = in;
    *data_len = out;
    return rc;
}

size_t chunked_size_line(char *out, uint64_t n)
{
    static const char hex[] = "0123456789abcdef";
    char digits[16];
    size_t k = 0;

    do {
        digits[k++] = hex[n & 15];
        n >>= 4;
    } while (n);
    for (size_t i = 0; i < k; i++)
        out[i] = digits[k - 1 - i];
    out[k] = '\r';
    out[k + 1] = '\n';
    return k + 2;
}

/* ---- HTTP-date (RFC 9110 5.6.7) ------------------------------------------ */

static const char day_names[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const long_day_names[7] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                              "Thursday", "Friday", "Saturday"};
static const char month_names[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

static void put_digits(char *out, int value, int n)
{
    while (n-- > 0) {
        out[n] = (char)('0' + value % 10);
        value /= 10;
    }
}

size_t http_date_format(char *out, int64_t t)
{
    struct tm tm;
    time_t clamped = (time_t)(t < 0 ? 0 : t > MAX_HTTP_DATE ? MAX_HTTP_DATE : t);

    if (!gmtime_r(&clamped, &tm)) {
        clamped = 0;
        gmtime_r(&clamped, &tm);
    }
    memcpy(out, day_names[tm.tm_wday], 3);
    memcpy(out + 3, ", ", 2);
    put_digits(out + 5, tm.tm_mday, 2);
    out[7] = ' ';
    memcpy(out + 8, month_names[tm.tm_mon], 3);
    out[11] = ' ';
    put_digits(out + 12, tm.tm_year + 1900, 4);
    out[16] = ' ';
    put_digits(out + 17, tm.tm_hour, 2);
    out[19] = ':';
    put_digits(out + 20, tm.tm_min, 2);
    out[22] = ':';
    put_digits(out + 23, tm.tm_sec, 2);
    memcpy(out + 25, " GMT", 5); /* with the terminating NUL */
    return 29;
}

/* A cursor over the date text: each take_* consumes on success only. */
struct date_text {
    const char *p, *end;
};

static bool take_literal(struct date_text *s, const char *literal)
{
    size_t n = strlen(literal);

    if ((size_t)(s->end - s->p) < n || memcmp(s->p, literal, n) != 0) return false;
    s->p += n;
    return true;
}

static bool take_number(struct date_text *s, int digits, int *value)
{
    int v = 0;

    if (s->end - s->p < digits) return false;
    for (int i = 0; i < digits; i++) {
        if (!is_digit(s->p[i])) return false;
        v = v * 10 + (s->p[i] - '0');
    }
    s->p += digits;
    *value = v;
    return true;
}

static bool take_day_name(struct date_text *s)
{
    for (int i = 0; i < 7; i++)
        if (take_literal(s, day_names[i])) return true;
    return false;
}

static bool take_long_day_name(struct date_text *s)
{
    for (int i = 0; i < 7; i++)
        if (take_literal(s, long_day_names[i])) return true;
    return false;
}

static bool take_month(struct date_text *s, struct tm *tm)
{
    for (int i = 0; i < 12; i++) {
        if (take_literal(s, month_names[i])) {
            tm->tm_mon = i;
            return true;
        }
    }
    return false;
}

static bool take_time_of_day(struct date_text *s, struct tm *tm)
{
    return take_number(s, 2, &tm->tm_hour) && take_literal(s, ":") &&
           take_number(s, 2, &tm->tm_min) && take_literal(s, ":") && take_number(s, 2, &tm->tm_sec);
}

static bool take_year(struct date_text *s, struct tm *tm)
{
    int year;

    if (!take_number(s, 4, &year)) return false;
    tm->tm_year = year - 1900;
    return true;
}

/* "Sun, 06 Nov 1994 08:49:37 GMT" */
static bool parse_imf_fixdate(struct date_text s, struct tm *tm)
{
    return take_day_name(&s) && take_literal(&s, ", ") && take_number(&s, 2, &tm->tm_mday) &&
           take_literal(&s, " ") && take_month(&s, tm) && take_literal(&s, " ") &&
           take_year(&s, tm) && take_literal(&s, " ") && take_time_of_day(&s, tm) &&
           take_literal(&s, " GMT") && s.p == s.end;
}

/* "Sunday, 06-Nov-94 08:49:37 GMT". Two-digit years pivot at 70, a fixed
 * stand-in for RFC 9110's "not more than 50 years in the future" that keeps
 * the function pure. */
static bool parse_rfc850_date(struct date_text s, struct tm *tm)
{
    int year;

    if (!(take_long_day_name(&s) && take_literal(&s, ", ") && take_number(&s, 2, &tm->tm_mday) &&
          take_literal(&s, "-") && take_month(&s, tm) && take_literal(&s, "-") &&
          take_number(&s, 2, &year) && take_literal(&s, " ") && take_time_of_day(&s, tm) &&
          take_literal(&s, " GMT") && s.p == s.end))
        return false;
    tm->tm_year = year < 70 ? year + 100 : year;
    return true;
}

/* "Sun Nov  6 08:49:37 1994" (the day is "06" or " 6") */
static bool parse_asctime_date(struct date_text s, struct tm *tm)
{
    if (!(take_day_name(&s) && take_literal(&s, " ") && take_month(&s, tm) &&
          take_literal(&s, " ")))
        return false;
    if (!take_number(&s, 2, &tm->tm_mday) &&
        !(take_literal(&s, " ") && take_number(&s, 1, &tm->tm_mday)))
        return false;
    return take_literal(&s, " ") && take_time_of_day(&s, tm) && take_literal(&s, " ") &&
           take_year(&s, tm) && s.p == s.end;
}

static bool is_leap_year(int year)
{
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

static bool date_in_range(const struct tm *tm)
{
    static const int days_in_month[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int year = tm->tm_year + 1900;
    int days = days_in_month[tm->tm_mon] + (tm->tm_mon == 1 && is_leap_year(year));

    /* Second 60 is a leap second; timegm() carries it into the next minute. */
    return tm->tm_mday >= 1 && tm->tm_mday <= days && tm->tm_hour <= 23 && tm->tm_min <= 59 &&
           tm->tm_sec <= 60;
}

int http_date_parse(const char *s, size_t len, int64_t *t)
{
    struct date_text text;
    struct tm tm = {0};

    if (len == 0) return -1;
    text = (struct date_text){s, s + len};
    if (!parse_imf_fixdate(text, &tm) && !parse_rfc850_date(text, &tm) &&
        !parse_asctime_date(text, &tm))
        return -1;
    if (!date_in_range(&tm)) return -1;
    *t = (int64_t)timegm(&tm);
    return 0;
}
