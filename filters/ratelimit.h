/* The rate-limit filter: a token from the bucket of every policy of the
 * route, keyed per policy by the client IP, a JWT claim, a header or the
 * route. Policies keyed by a claim run after authentication, the others
 * before it. No I/O. */
#ifndef RINGGATE_RATELIMIT_H
#define RINGGATE_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "http1.h"
#include "jwt.h"
#include "ratelimit_table.h"

/* What the client is told: the most constraining of the route's policies
 * (RateLimit-Limit, -Remaining, -Reset), and when refused, by which and
 * for how long (Retry-After). */
struct ratelimit_verdict {
    bool limited; /* the route has policies: the headers go on every answer */
    uint64_t limit, remaining, reset;
    uint64_t retry_after;
    const struct ratelimit_conf *denied_by; /* NULL: allowed */
};

enum ratelimit_phase { RATELIMIT_BEFORE_AUTH, RATELIMIT_AFTER_AUTH };

/* A request's key under a key spec (ip, jwt.<claim>, header:<Name>,
 * route), shared with the hash balancer. False when it has none (a claim
 * the token lacks); a missing header is the empty key. */
bool request_key(enum request_key_kind kind, const char *arg, const struct route_conf *route,
                 const struct http_request *req, const char *client_ip,
                 const struct jwt_claims *claims, const char **key, size_t *len);

/* The process-wide bucket table shared by all workers (exact limits),
 * bounded to `memory` bytes: idle keys are evicted first. */
int ratelimit_init(size_t memory);
void ratelimit_shutdown(void);

/* The local policies of the route (Redis ones are ratelimit_redis.h's).
 * Returns false when a policy refuses the request (v->denied_by set). */
bool ratelimit_check(const struct route_conf *route,
                     enum ratelimit_phase phase, const struct http_request *req,
                     const char *client_ip, const struct jwt_claims *claims, uint64_t now_us,
                     struct ratelimit_verdict *v);

/* One token from policy p's bucket of `key` in the process-wide table,
 * merged into v; false when refused. */
bool ratelimit_take_local(const struct ratelimit_conf *p, const char *key, size_t len,
                          uint64_t now_us, struct ratelimit_verdict *v);

/* Merges one policy's answer into v: the headers show the tightest
 * policy, and the first refusal is the one reported. */
void ratelimit_merge(struct ratelimit_verdict *v, const struct ratelimit_conf *p,
                     const struct bucket_result *r, bool allowed);

/* The RateLimit-* header lines (and Retry-After when refused) into out;
 * returns their length. */
size_t ratelimit_headers(const struct ratelimit_verdict *v, char *out, size_t cap);

#endif
