/* The rate-limit filter. */
#include "ratelimit.h"

#include <stdio.h>
#include <string.h>

/* The bucket key of a request under policy p; false when it has none (a
 * claim the token lacks). A missing header keys the empty string: requests
 * without it share one bucket rather than escaping the limit. */
bool request_key(enum request_key_kind kind, const char *arg, const struct route_conf *route,
                 const struct http_request *req, const char *client_ip,
                 const struct jwt_claims *claims, const char **key, size_t *len)
{
    const struct http_header *h;

    switch (kind) {
    case RL_KEY_IP:
        *key = client_ip;
        *len = strlen(client_ip);
        return true;
    case RL_KEY_ROUTE:
        *key = route->name;
        *len = strlen(route->name);
        return true;
    case RL_KEY_HEADER:
        h = http1_find_header(req->headers, req->n_headers, arg);
        *key = h ? h->value.p : "";
        *len = h ? h->value.len : 0;
        return true;
    case RL_KEY_JWT_CLAIM:
        *key = claims ? jwt_claim(claims, arg, len) : NULL;
        return *key != NULL;
    }
    return false;
}

void ratelimit_merge(struct ratelimit_verdict *v, const struct ratelimit_conf *p,
                     const struct bucket_result *r, bool allowed)
{
    bool first_refusal = !allowed && !v->denied_by;

    if (!v->limited || first_refusal || (!v->denied_by && r->remaining < v->remaining)) {
        v->limit = r->limit;
        v->remaining = allowed ? r->remaining : 0;
        v->reset = r->reset;
    }
    v->limited = true;
    if (first_refusal) {
        v->retry_after = r->retry_after;
        v->denied_by = p;
    }
}

static struct rl_table *table;

int ratelimit_init(size_t memory)
{
    table = rl_table_new(rl_table_entries_for(memory));
    return table ? 0 : -1;
}

void ratelimit_shutdown(void)
{
    if (table)
        rl_table_free(table);
    table = NULL;
}

bool ratelimit_take_local(const struct ratelimit_conf *p, const char *key, size_t len,
                          uint64_t now_us, struct ratelimit_verdict *v)
{
    struct bucket_result r;
    bool allowed = rl_table_take(table, p->metrics_id, key, len, &p->bucket, now_us, 1, &r);

    ratelimit_merge(v, p, &r, allowed);
    return allowed;
}

bool ratelimit_check(const struct route_conf *route,
                     enum ratelimit_phase phase, const struct http_request *req,
                     const char *client_ip, const struct jwt_claims *claims, uint64_t now_us,
                     struct ratelimit_verdict *v)
{
    for (size_t i = 0; i < route->n_rate_limits; i++) {
        const struct ratelimit_conf *p = route->rate_limits[i];
        const char *key;
        size_t len;

        if (p->backend != RL_BACKEND_LOCAL ||
            (p->key == RL_KEY_JWT_CLAIM) != (phase == RATELIMIT_AFTER_AUTH))
            continue;
        if (!request_key(p->key, p->key_arg, route, req, client_ip, claims, &key, &len))
            continue;
        if (!ratelimit_take_local(p, key, len, now_us, v))
            return false;
    }
    return true;
}

size_t ratelimit_headers(const struct ratelimit_verdict *v, char *out, size_t cap)
{
    int n = 0;

    if (!v->limited)
        return 0;
    n = snprintf(out, cap, "RateLimit-Limit: %llu\r\nRateLimit-Remaining: %llu\r\n"
                           "RateLimit-Reset: %llu\r\n",
                 (unsigned long long)v->limit, (unsigned long long)v->remaining,
                 (unsigned long long)v->reset);
    if (v->denied_by && n > 0 && (size_t)n < cap)
        n += snprintf(out + n, cap - (size_t)n, "Retry-After: %llu\r\n",
                      (unsigned long long)v->retry_after);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}
