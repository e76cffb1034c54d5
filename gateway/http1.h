/* HTTP/1.x message parsing and the chunked transfer coding (RFC 9112).
 * Pure functions over caller-owned bytes: no I/O, no allocation. Parsed
 * fields point into the caller's buffer.
 *
 * The parsers are strict: anything RFC 9112 does not allow, or that a
 * request-smuggling attack could exploit, is an error, never guessed at. */
#ifndef RINGGATE_HTTP1_H
#define RINGGATE_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define HTTP_MAX_HEADERS 100

/* Return values of the head parsers (a positive value is the head's length,
 * including the final CRLF CRLF). */
#define HTTP_INCOMPLETE (-2)
#define HTTP_ERROR (-1)

enum http_method {
    HTTP_OTHER = 0, /* a valid token we do not know: forwarded as is */
    HTTP_GET,
    HTTP_HEAD,
    HTTP_POST,
    HTTP_PUT,
    HTTP_DELETE,
    HTTP_PATCH,
    HTTP_OPTIONS,
    HTTP_TRACE,
    HTTP_CONNECT,
};

struct http_str {
    const char *p;
    size_t len;
};

struct http_header {
    struct http_str name;
    struct http_str value; /* leading and trailing whitespace removed */
};

enum http_body {
    HTTP_BODY_NONE,    /* no body */
    HTTP_BODY_LENGTH,  /* content_length bytes */
    HTTP_BODY_CHUNKED, /* chunked transfer coding */
    HTTP_BODY_TO_EOF,  /* responses only: until the connection closes */
};

/* What went wrong, for the error answer: the status to send and a short
 * human message (a static string). */
struct http_error {
    int status;
    const char *message;
};

struct http_request {
    struct http_str method;
    enum http_method method_id;
    struct http_str target; /* request-target as sent */
    struct http_str path;   /* origin-form path without the query */
    struct http_str query;  /* after '?', without it; len 0 when none */
    int minor_version;      /* 0 or 1 (HTTP/1.0, HTTP/1.1) */
    struct http_header headers[HTTP_MAX_HEADERS];
    size_t n_headers;

    /* Derived from the headers. */
    struct http_str host; /* Host header without the port; len 0 if none */
    enum http_body body;  /* NONE, LENGTH or CHUNKED */
    uint64_t content_length;
    bool keep_alive;      /* persistent per version and Connection */
    bool expect_continue; /* Expect: 100-continue */
    bool upgrade;         /* Connection: upgrade with an Upgrade header */
};

struct http_response {
    int status;
    int minor_version;
    struct http_str reason;
    struct http_header headers[HTTP_MAX_HEADERS];
    size_t n_headers;

    enum http_body body; /* framing, given the request method */
    uint64_t content_length;
    bool keep_alive; /* the origin will keep the connection open */
};

/* Parses a request head from buf[0..len). Returns its length, HTTP_INCOMPLETE
 * when more bytes are needed, or HTTP_ERROR with *err filled (status 400,
 * 431 for too many headers, 501 for an unknown transfer coding, 505 for an
 * unsupported version). Rejected shapes include: Content-Length together
 * with Transfer-Encoding, differing or malformed Content-Lengths, obs-fold,
 * bare CR or LF, invalid token characters, whitespace before a colon, a
 * missing Host in HTTP/1.1, more than one Host, a request-target that is
 * not origin-form (or absolute-form, or authority-form for CONNECT, '*' for
 * OPTIONS). Leading empty lines before the request line are skipped
 * (RFC 9112 2.2) and count in the returned length. */
int http1_parse_request(const char *buf, size_t len, struct http_request *req,
                        struct http_error *err);

/* Parses a response head. request_method decides the framing (HEAD, and 2xx
 * to CONNECT, have no body; so have 1xx, 204 and 304). Same return values;
 * errors are the origin's fault and turn into 502 for the client. */
int http1_parse_response(const char *buf, size_t len, enum http_method request_method,
                         struct http_response *resp, struct http_error *err);

/* The first header named `name` (case-insensitive), or NULL. */
const struct http_header *http1_find_header(const struct http_header *headers, size_t n,
                                            const char *name);

/* Length of a leading "http://" or "https://" in s (any case), else 0. */
size_t http1_scheme_length(struct http_str s);

/* The n bytes at a and b are equal, ignoring ASCII case. */
bool http1_equals_nocase(const char *a, const char *b, size_t n);

/* s equals literal, ignoring case (header names, tokens). Inline: with a
 * literal the length is a constant, and most names differ by it alone. */
static inline bool http1_str_is(struct http_str s, const char *literal)
{
    size_t n = strlen(literal);

    return s.len == n && http1_equals_nocase(s.p, literal, n);
}

/* True when a comma-separated header value contains `token`
 * (case-insensitive), e.g. Connection: keep-alive, Upgrade. */
bool http1_list_has(struct http_str value, struct http_str token);

static inline bool http1_has_token(struct http_str value, const char *token)
{
    return http1_list_has(value, (struct http_str){token, strlen(token)});
}

/* Hop-by-hop header (RFC 9110 7.6.1): Connection, Keep-Alive,
 * Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade,
 * Proxy-Authenticate, Proxy-Authorization. Headers named in Connection are
 * hop-by-hop as well; the caller checks those with http1_has_token. */
bool http1_is_hop_by_hop(struct http_str name);

/* Incremental decoder of the chunked transfer coding. Feed it bytes as
 * they arrive; it decodes in place. */
struct chunked_decoder {
    int state;          /* private */
    uint64_t remaining; /* private: bytes left in the current chunk */
    size_t line_bytes;  /* private: bytes of the current size/trailer line */
};

#define CHUNKED_DONE 1 /* the last chunk and trailers have been consumed */

/* Decodes buf[0..*len) in place: on return buf[0..*data_len) holds the body
 * data found in it, and *len is set to the number of input bytes consumed
 * (less than the input only when CHUNKED_DONE is returned: the rest belongs
 * to the next message). Returns 0 (needs more), CHUNKED_DONE, or
 * HTTP_ERROR (bad chunk size, overflow, missing CRLF, bare LF, size or
 * trailer line over 4 KiB). Trailers are validated and dropped. */
int chunked_decode(struct chunked_decoder *d, char *buf, size_t *len, size_t *data_len);

/* Writes a chunk-size line for `n` bytes ("1a2b\r\n") into out (at least 18
 * bytes); returns its length. */
size_t chunked_size_line(char *out, uint64_t n);

/* An HTTP-date (IMF-fixdate) for `t`, into out (at least 30 bytes); returns
 * the length (29). */
size_t http_date_format(char *out, int64_t t);

/* Parses an HTTP-date (IMF-fixdate; also the obsolete RFC 850 and asctime
 * forms, RFC 9110 5.6.7) into *t. 0 on success, -1 otherwise. */
int http_date_parse(const char *s, size_t len, int64_t *t);

#endif
