/* Redis-backed rate-limit policies (see ratelimit_redis.h). */
#include "ratelimit_redis.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

/* The arithmetic of bucket.c in Lua, over doubles (exact while a bucket
 * holds fewer than 2^53 units: bursts up to 2.5 million tokens). The clock
 * is the Redis server's, so that every gateway of the fleet reads the
 * same one; a reading older than the bucket's refills nothing. ARGV holds
 * tokens per hour and burst for each key. Returns {allowed, then for each
 * key: remaining, reset seconds, retry-after seconds (0 when it had a
 * token)}. Takes from every bucket or from none. */
static const char script[] =
    "local UNIT = 3600000000\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
    "local d, l, allowed = {}, {}, 1\n"
    "for i = 1, #KEYS do\n"
    "  local rate, cap = tonumber(ARGV[2*i-1]), tonumber(ARGV[2*i]) * UNIT\n"
    "  local s = redis.call('HMGET', KEYS[i], 'd', 't')\n"
    "  local di, li = tonumber(s[1]) or 0, tonumber(s[2]) or now\n"
    "  if di > cap then di = cap end\n"
    "  if now > li then\n"
    "    if (now - li) * rate >= di then di = 0 else di = di - (now - li) * rate end\n"
    "    li = now\n"
    "  end\n"
    "  if di + UNIT > cap then allowed = 0 end\n"
    "  d[i], l[i] = di, li\n"
    "end\n"
    "local out = {allowed}\n"
    "for i = 1, #KEYS do\n"
    "  local rate, cap = tonumber(ARGV[2*i-1]), tonumber(ARGV[2*i]) * UNIT\n"
    "  local ahead, retry = math.max(0, l[i] - now), 0\n"
    "  if allowed == 1 then\n"
    "    d[i] = d[i] + UNIT\n"
    "  elseif d[i] + UNIT > cap then\n"
    "    local missing = d[i] + UNIT - cap\n"
    "    if UNIT > cap then missing = d[i] end\n"
    "    retry = math.max(1, math.ceil((math.ceil(missing / rate) + ahead) / 1000000))\n"
    "  end\n"
    "  local full_us = math.ceil(d[i] / rate)\n"
    "  redis.call('HSET', KEYS[i], 'd', string.format('%.17g', d[i]), 't', "
    "string.format('%.17g', l[i]))\n"
    "  redis.call('PEXPIRE', KEYS[i], math.ceil((full_us + ahead) / 1000) + 1000)\n"
    "  out[#out + 1] = math.floor((cap - d[i]) / UNIT)\n"
    "  out[#out + 1] = math.ceil((full_us + ahead) / 1000000)\n"
    "  out[#out + 1] = retry\n"
    "end\n"
    "return out\n";

const char *ratelimit_redis_script(void)
{
    return script;
}

const char *ratelimit_redis_script_sha(void)
{
    static char hex[2 * SHA_DIGEST_LENGTH + 1];
    unsigned char digest[SHA_DIGEST_LENGTH];

    if (!hex[0]) { /* the same 40 bytes whoever writes them first */
        SHA1((const unsigned char *)script, sizeof(script) - 1, digest);
        for (size_t i = 0; i < sizeof digest; i++)
            snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    }
    return hex;
}

/* ringgate:rl:<policy>:<key>, the key hashed when it is long. */
static size_t bucket_name(char *out, size_t cap, const struct ratelimit_conf *p, const char *key,
                          size_t len)
{
    int n = snprintf(out, cap, "ringgate:rl:%s:", p->name);
    unsigned char digest[SHA256_DIGEST_LENGTH];

    if (n < 0 || (size_t)n >= cap) return 0;
    if (len <= RATELIMIT_REDIS_KEY_MAX) {
        if ((size_t)n + len > cap) return 0;
        memcpy(out + n, key, len);
        return (size_t)n + len;
    }
    SHA256((const unsigned char *)key, len, digest);
    if ((size_t)n + 7 + 2 * sizeof digest >= cap) return 0;
    n += snprintf(out + n, cap - (size_t)n, "sha256:");
    for (size_t i = 0; i < sizeof digest; i++)
        n += snprintf(out + n, cap - (size_t)n, "%02x", digest[i]);
    return (size_t)n;
}

/* EVALSHA sha numkeys key... (rate burst)... */
#define MAX_ARGS (3 + 3 * ROUTE_MAX_RATE_LIMITS)

int ratelimit_redis_command(const struct route_conf *route, const struct http_request *req,
                            const char *client_ip, const struct jwt_claims *claims,
                            uint8_t *policies, char **cmd)
{
    char names[ROUTE_MAX_RATE_LIMITS][320], numbers[2 * ROUTE_MAX_RATE_LIMITS][24], count[12];
    const char *argv[MAX_ARGS];
    size_t argl[MAX_ARGS];
    int argc = 3, nkeys = 0, nnum = 0;

    *policies = 0;
    *cmd = NULL;
    for (size_t i = 0; i < route->n_rate_limits; i++) {
        const struct ratelimit_conf *p = route->rate_limits[i];
        const char *key;
        size_t len;

        if (p->backend != RL_BACKEND_REDIS ||
            !request_key(p->key, p->key_arg, route, req, client_ip, claims, &key, &len))
            continue;
        *policies |= (uint8_t)(1u << i);
        argl[argc] = bucket_name(names[nkeys], sizeof names[nkeys], p, key, len);
        argv[argc++] = names[nkeys++];
        snprintf(numbers[nnum++], sizeof numbers[0], "%llu",
                 (unsigned long long)p->bucket.per_hour);
        snprintf(numbers[nnum++], sizeof numbers[0], "%llu", (unsigned long long)p->bucket.burst);
    }
    if (nkeys == 0)
        return 0;
    for (int i = 0; i < nnum; i++) {
        argv[argc] = numbers[i];
        argl[argc++] = strlen(numbers[i]);
    }
    snprintf(count, sizeof count, "%d", nkeys);
    argv[0] = "EVALSHA";
    argv[1] = ratelimit_redis_script_sha();
    argv[2] = count;
    for (int i = 0; i < 3; i++)
        argl[i] = strlen(argv[i]);
    return redisFormatCommandArgv(cmd, argc, argv, argl);
}

static bool is_count(const redisReply *r)
{
    return r->type == REDIS_REPLY_INTEGER && r->integer >= 0;
}

bool ratelimit_redis_verdict(const redisReply *reply, const struct route_conf *route,
                             uint8_t policies, struct ratelimit_verdict *v)
{
    size_t n = 0, at = 1;

    for (size_t i = 0; i < route->n_rate_limits; i++)
        n += (policies >> i) & 1u;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 1 + 3 * n) return false;
    for (size_t i = 0; i < reply->elements; i++)
        if (!is_count(reply->element[i])) return false;
    if (reply->element[0]->integer > 1) return false;
    for (size_t i = 0; i < route->n_rate_limits; i++) {
        const struct ratelimit_conf *p = route->rate_limits[i];
        struct bucket_result r = {.limit = p->bucket.burst};

        if (!(policies & (1u << i))) continue;
        r.remaining = (uint64_t)reply->element[at]->integer;
        r.reset = (uint64_t)reply->element[at + 1]->integer;
        r.retry_after = (uint64_t)reply->element[at + 2]->integer;
        at += 3;
        ratelimit_merge(v, p, &r, reply->element[0]->integer == 1 || r.retry_after == 0);
    }
    /* A refusal names the policy that refused. */
    return reply->element[0]->integer == 1 || v->denied_by;
}

bool ratelimit_redis_fallback(const struct route_conf *route, uint8_t policies,
                              const struct http_request *req, const char *client_ip,
                              const struct jwt_claims *claims, uint64_t now_us,
                              struct ratelimit_verdict *v)
{
    for (size_t i = 0; i < route->n_rate_limits; i++) {
        const struct ratelimit_conf *p = route->rate_limits[i];
        struct bucket_result r = {.limit = p->bucket.burst, .retry_after = 1};
        const char *key;
        size_t len;

        if (!(policies & (1u << i))) continue;
        switch (p->on_redis_error) {
        case RL_FALLBACK_LOCAL:
            if (request_key(p->key, p->key_arg, route, req, client_ip, claims, &key, &len) &&
                !ratelimit_take_local(p, key, len, now_us, v))
                return false;
            break;
        case RL_FALLBACK_ALLOW:
            break;
        case RL_FALLBACK_DENY:
            ratelimit_merge(v, p, &r, false);
            return false;
        }
    }
    return true;
}
