/* Routing: first match wins, in the order of the configuration file. */
#include "router.h"

#include <string.h>
#include <strings.h>

static bool host_matches(const struct route_conf *r, struct http_str host)
{
    size_t want = strlen(r->host);

    if (!r->host_wildcard)
        return host.len == want && strncasecmp(host.p, r->host, want) == 0;
    /* ".example.com" needs at least one label in front of it. */
    return host.len > want && strncasecmp(host.p + host.len - want, r->host, want) == 0;
}

static bool route_matches(const struct route_conf *r, struct http_str host,
                          struct http_str path, enum http_method method)
{
    size_t prefix_len = strlen(r->prefix);

    if (r->methods && !(r->methods & METHOD_BIT(method)))
        return false;
    if (r->host && !host_matches(r, host))
        return false;
    return path.len >= prefix_len && memcmp(path.p, r->prefix, prefix_len) == 0;
}

const struct route_conf *router_match(const struct config *cfg, struct http_str host,
                                      struct http_str path, enum http_method method)
{
    for (size_t i = 0; i < cfg->n_routes; i++)
        if (route_matches(&cfg->routes[i], host, path, method))
            return &cfg->routes[i];
    return NULL;
}
