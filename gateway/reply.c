/* Status lines and the contract's JSON error answers. */
#include "reply.h"

#include <stdio.h>
#include <string.h>

struct status_text {
    int status;
    const char *reason;
    const char *code;
};

static const struct status_text statuses[] = {
    {100, "Continue", NULL},
    {101, "Switching Protocols", NULL},
    {200, "OK", NULL},
    {201, "Created", NULL},
    {204, "No Content", NULL},
    {206, "Partial Content", NULL},
    {301, "Moved Permanently", NULL},
    {302, "Found", NULL},
    {304, "Not Modified", NULL},
    {400, "Bad Request", "bad_request"},
    {401, "Unauthorized", "unauthorized"},
    {403, "Forbidden", "forbidden"},
    {404, "Not Found", "not_found"},
    {405, "Method Not Allowed", "method_not_allowed"},
    {408, "Request Timeout", "request_timeout"},
    {413, "Content Too Large", "payload_too_large"},
    {415, "Unsupported Media Type", "unsupported_media_type"},
    {414, "URI Too Long", "uri_too_long"},
    {416, "Range Not Satisfiable", "range_not_satisfiable"},
    {417, "Expectation Failed", "expectation_failed"},
    {426, "Upgrade Required", "upgrade_required"},
    {429, "Too Many Requests", "rate_limited"},
    {431, "Request Header Fields Too Large", "headers_too_large"},
    {500, "Internal Server Error", "internal_error"},
    {501, "Not Implemented", "not_implemented"},
    {502, "Bad Gateway", "bad_gateway"},
    {503, "Service Unavailable", "service_unavailable"},
    {504, "Gateway Timeout", "gateway_timeout"},
    {505, "HTTP Version Not Supported", "http_version_not_supported"},
};

static const struct status_text *lookup(int status)
{
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
        if (statuses[i].status == status)
            return &statuses[i];
    return NULL;
}

const char *http_reason(int status)
{
    const struct status_text *s = lookup(status);

    return s ? s->reason : "Unknown";
}

const char *reply_error_code(int status)
{
    const struct status_text *s = lookup(status);

    return s && s->code ? s->code : "error";
}

/* Copies `in` as the inside of a JSON string; returns the length, or
 * (size_t)-1 when it does not fit. */
static size_t json_escape(char *out, size_t cap, const char *in)
{
    size_t n = 0;

    for (; *in; in++) {
        unsigned char c = (unsigned char)*in;
        char esc[8];
        size_t len = 1;

        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            len = 2;
        } else if (c < 0x20) {
            len = (size_t)snprintf(esc, sizeof(esc), "\\u%04x", c);
        } else {
            esc[0] = (char)c;
        }
        if (n + len >= cap)
            return (size_t)-1;
        memcpy(out + n, esc, len);
        n += len;
    }
    return n;
}

size_t reply_error(char *out, size_t cap, int status, const char *message, bool keep_alive,
                   const char *extra_headers)
{
    return reply_error_json(out, cap, status, NULL, message, NULL, keep_alive, extra_headers);
}

size_t json_string_escape(char *out, size_t cap, const char *in)
{
    size_t n = json_escape(out, cap, in);

    if (n == (size_t)-1)
        return (size_t)-1;
    out[n] = '\0';
    return n;
}

size_t reply_error_json(char *out, size_t cap, int status, const char *code, const char *message,
                        const char *extra_members, bool keep_alive, const char *extra_headers)
{
    char escaped[512], body[2048];
    size_t elen = json_escape(escaped, sizeof(escaped), message);
    int blen, n;

    if (elen == (size_t)-1)
        return 0;
    blen = snprintf(body, sizeof(body), "{\"error\":\"%s\",\"message\":\"%.*s\"%s}\n",
                    code ? code : reply_error_code(status), (int)elen, escaped,
                    extra_members ? extra_members : "");
    if (blen < 0 || (size_t)blen >= sizeof(body))
        return 0;
    n = snprintf(out, cap,
                 "HTTP/1.1 %d %s\r\n"
                 "Content-Type: application/json\r\n"
                 "Content-Length: %d\r\n"
                 "Connection: %s\r\n"
                 "%s"
                 "\r\n%s",
                 status, http_reason(status), blen, keep_alive ? "keep-alive" : "close",
                 extra_headers ? extra_headers : "", body);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}
