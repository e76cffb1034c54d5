/* The JWT filter: finds a request's token, verifies it with the route's
 * provider, and prepares the claim headers to forward. No I/O. */
#ifndef RINGGATE_JWT_FILTER_H
#define RINGGATE_JWT_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "http1.h"
#include "jwt.h"

/* Verifies the request's token. JWT_OK with the forwarded-claim header
 * lines ("Name: value\r\n"...) written into headers (*headers_len set) and
 * *claims filled (valid until the next verification on `cache`), or the
 * reason it was refused (enum jwt_result). */
int jwt_filter_check(const struct jwt_conf *conf, struct jwt_cache *cache,
                     const struct http_request *req, int64_t now, struct jwt_claims *claims,
                     char *headers, size_t headers_cap, size_t *headers_len);

/* True when `name` is a header the provider forwards claims in: the
 * client's own copies are dropped before the request goes upstream. */
bool jwt_filter_forwards_header(const struct jwt_conf *conf, struct http_str name);

#endif
