/* Routing: the first route of the snapshot whose host, path prefix and
 * method all match the request. */
#ifndef RINGGATE_ROUTER_H
#define RINGGATE_ROUTER_H

#include <stddef.h>

#include "config.h"
#include "http1.h"

/* host: the Host header without port (may be empty). Host comparison is
 * case-insensitive; "*.example.com" matches "a.example.com" and
 * "a.b.example.com" but not "example.com". Returns NULL when nothing
 * matches (404). */
const struct route_conf *router_match(const struct config *cfg, struct http_str host,
                                      struct http_str path, enum http_method method);

#endif
