/* Rate-limit policies whose buckets live in Redis, so that a fleet of
 * gateways enforces one limit. One atomic server-side script takes a token
 * from every Redis policy of a route at once (all or none) in one round
 * trip; the bucket of (policy, key) is the hash `ringgate:rl:<policy>:<key>`
 * with a TTL of the time it takes to fill up again. This module builds the
 * command and reads the reply: no I/O. */
#ifndef RINGGATE_RATELIMIT_REDIS_H
#define RINGGATE_RATELIMIT_REDIS_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ratelimit.h"

/* Keys longer than this are sent as a SHA-256 of their bytes. */
#define RATELIMIT_REDIS_KEY_MAX 200

/* The Lua script, and its SHA-1 in hex (what EVALSHA names it by). */
const char *ratelimit_redis_script(void);
const char *ratelimit_redis_script_sha(void);

/* The Redis policies of the route that apply to this request, in
 * *policies (a bit per position in route->rate_limits: policies keyed by a
 * claim the token lacks do not), and the EVALSHA command asking for them in
 * *cmd (RESP, for redisAsyncFormattedCommand, freed with
 * redisFreeCommand()). Returns the command's length; 0 when no policy
 * applies (no command); -1 when out of memory. */
int ratelimit_redis_command(const struct route_conf *route, const struct http_request *req,
                            const char *client_ip, const struct jwt_claims *claims,
                            uint8_t *policies, char **cmd);

/* Merges the script's reply into v. False when the reply is not what the
 * script returns (an error, a wrong shape): the caller falls back. */
bool ratelimit_redis_verdict(const redisReply *reply, const struct route_conf *route,
                             uint8_t policies, struct ratelimit_verdict *v);

/* What on_redis_error says for those policies when Redis did not answer:
 * the local bucket, allow, or deny. Returns false when refused. */
bool ratelimit_redis_fallback(const struct route_conf *route, uint8_t policies,
                              const struct http_request *req, const char *client_ip,
                              const struct jwt_claims *claims, uint64_t now_us,
                              struct ratelimit_verdict *v);

#endif
