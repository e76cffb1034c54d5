/* The JWT filter. */
#include "jwt_filter.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* The value of parameter `name` in a query string (not decoded: tokens
 * are base64url and dots). */
static bool query_param(struct http_str query, const char *name, struct http_str *value)
{
    size_t n = strlen(name);
    const char *p = query.p, *end = query.p + query.len;

    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        if ((size_t)(stop - p) > n && memcmp(p, name, n) == 0 && p[n] == '=') {
            *value = (struct http_str){p + n + 1, (size_t)(stop - p - n - 1)};
            return true;
        }
        p = stop + 1;
    }
    return false;
}

static bool cookie_value(const struct http_request *req, const char *name, struct http_str *value)
{
    size_t n = strlen(name);

    for (size_t i = 0; i < req->n_headers; i++) {
        const struct http_header *h = &req->headers[i];
        const char *p, *end;

        if (!http1_str_is(h->name, "cookie"))
            continue;
        for (p = h->value.p, end = p + h->value.len; p < end;) {
            const char *semi = memchr(p, ';', (size_t)(end - p));
            const char *stop = semi ? semi : end;
            while (p < stop && *p == ' ')
                p++;
            if ((size_t)(stop - p) > n && memcmp(p, name, n) == 0 && p[n] == '=') {
                *value = (struct http_str){p + n + 1, (size_t)(stop - p - n - 1)};
                return true;
            }
            p = stop + 1;
        }
    }
    return false;
}

/* Authorization: Bearer first, then the configured header, query
 * parameter and cookie. */
static int find_token(const struct jwt_conf *conf, const struct http_request *req,
                      struct http_str *token)
{
    const struct http_header *h = http1_find_header(req->headers, req->n_headers,
                                                    "authorization");

    if (h) {
        int rc = jwt_extract_bearer(h->value.p, h->value.len, &token->p, &token->len);
        if (rc != JWT_MISSING)
            return rc;
    }
    if (conf->token_header &&
        (h = http1_find_header(req->headers, req->n_headers, conf->token_header)) &&
        h->value.len) {
        *token = h->value;
        return JWT_OK;
    }
    if (conf->token_query && query_param(req->query, conf->token_query, token) && token->len)
        return JWT_OK;
    if (conf->token_cookie && cookie_value(req, conf->token_cookie, token) && token->len)
        return JWT_OK;
    return JWT_MISSING;
}

int jwt_filter_check(const struct jwt_conf *conf, struct jwt_cache *cache,
                     const struct http_request *req, int64_t now, struct jwt_claims *claims,
                     char *headers, size_t headers_cap, size_t *headers_len)
{
    const struct jwt_pair *forwards;
    struct http_str token;
    const char *reason;
    size_t count, used = 0;
    int rc = find_token(conf, req, &token);

    *headers_len = 0;
    if (rc != JWT_OK)
        return rc;
    rc = jwt_verify(conf->provider, cache, token.p, token.len, now, claims, &reason);
    if (rc != JWT_OK)
        return rc;
    forwards = jwt_provider_forwards(conf->provider, &count);
    for (size_t i = 0; i < count; i++) {
        size_t len;
        const char *v = jwt_claim_header(claims, forwards[i].name, &len);
        int n;

        if (!v)
            continue; /* absent, or not safe in a header: not forwarded */
        n = snprintf(headers + used, headers_cap - used, "%s: %.*s\r\n", forwards[i].value,
                     (int)len, v);
        if (n < 0 || (size_t)n >= headers_cap - used)
            return JWT_MALFORMED; /* claims too large to forward */
        used += (size_t)n;
    }
    *headers_len = used;
    return JWT_OK;
}

bool jwt_filter_forwards_header(const struct jwt_conf *conf, struct http_str name)
{
    const struct jwt_pair *forwards;
    size_t count;

    if (!conf || !conf->provider)
        return false;
    forwards = jwt_provider_forwards(conf->provider, &count);
    for (size_t i = 0; i < count; i++)
        if (http1_str_is(name, forwards[i].value))
            return true;
    return false;
}
