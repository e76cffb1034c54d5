/* The Redis rate-limit command and the reading of the script's reply: which
 * policies go to Redis, the exact RESP sent, long keys hashed, strict reply
 * shapes, and on_redis_error. (The script itself runs against a real
 * redis-server in tests/integration/test_ratelimit_redis.py.) */
#include <stdlib.h>
#include <string.h>

#include "ratelimit_redis.h"
#include "test.h"

static struct ratelimit_conf policies[3];
static struct route_conf route;
static struct http_request req;
static const char head[] = "GET /x HTTP/1.1\r\nHost: a\r\nX-Key: k1\r\n\r\n";

static void setup(void)
{
    struct http_error err;

    memset(policies, 0, sizeof policies);
    policies[0] = (struct ratelimit_conf){.name = "by_key",
                                          .key = RL_KEY_HEADER,
                                          .key_arg = "x-key",
                                          .backend = RL_BACKEND_REDIS,
                                          .metrics_id = 0};
    policies[1] = (struct ratelimit_conf){.name = "local", .key = RL_KEY_IP, .metrics_id = 1};
    policies[2] = (struct ratelimit_conf){.name = "by_user",
                                          .key = RL_KEY_JWT_CLAIM,
                                          .key_arg = "sub",
                                          .backend = RL_BACKEND_REDIS,
                                          .on_redis_error = RL_FALLBACK_DENY,
                                          .metrics_id = 2};
    CHECK_INT(bucket_params_init(&policies[0].bucket, 10, 20), 0);
    CHECK_INT(bucket_params_init(&policies[1].bucket, 1, 1), 0);
    CHECK_INT(bucket_params_init(&policies[2].bucket, 1.0 / 60, 5), 0);
    memset(&route, 0, sizeof route);
    route.name = "r";
    for (size_t i = 0; i < 3; i++)
        route.rate_limits[i] = &policies[i];
    route.n_rate_limits = 3;
    CHECK_INT(http1_parse_request(head, sizeof head - 1, &req, &err), (int)sizeof head - 1);
}

static void test_policies_that_apply(void)
{
    /* No token: the claim-keyed policy does not apply; the local one
     * never goes to Redis. */
    uint8_t applied;
    char *cmd;

    setup();
    CHECK(ratelimit_redis_command(&route, &req, "10.0.0.1", NULL, &applied, &cmd) > 0);
    CHECK_INT(applied, 1);
    redisFreeCommand(cmd);
}

static void test_no_command_when_no_policy_applies(void)
{
    uint8_t applied = 0xff;
    char *cmd = (char *)"unset";

    setup();
    policies[0].backend = RL_BACKEND_LOCAL; /* the claim-keyed one lacks its claim */
    CHECK_INT(ratelimit_redis_command(&route, &req, "10.0.0.1", NULL, &applied, &cmd), 0);
    CHECK_INT(applied, 0);
    CHECK(cmd == NULL);
}

static void test_command_bytes(void)
{
    uint8_t applied;
    char *cmd;
    int len;
    static const char expected[] = "*6\r\n$7\r\nEVALSHA\r\n$40\r\n%s\r\n$1\r\n1\r\n"
                                   "$21\r\nringgate:rl:by_key:k1\r\n$5\r\n36000\r\n$2\r\n20\r\n";
    char want[256];

    setup();
    len = ratelimit_redis_command(&route, &req, "10.0.0.1", NULL, &applied, &cmd);
    snprintf(want, sizeof want, expected, ratelimit_redis_script_sha());
    CHECK_INT(len, (int)strlen(want));
    CHECK(len > 0 && memcmp(cmd, want, (size_t)len) == 0);
    redisFreeCommand(cmd);
    CHECK_INT(strlen(ratelimit_redis_script_sha()), 40);
    CHECK(strstr(ratelimit_redis_script(), "redis.call('TIME')") != NULL);
}

static void test_long_key_is_hashed(void)
{
    char text[600], *cmd;
    uint8_t applied;
    struct http_request long_req;
    struct http_error err;
    int len;

    setup();
    snprintf(text, sizeof text, "GET / HTTP/1.1\r\nHost: a\r\nX-Key: %0300d\r\n\r\n", 7);
    CHECK(http1_parse_request(text, strlen(text), &long_req, &err) > 0);
    len = ratelimit_redis_command(&route, &long_req, "ip", NULL, &applied, &cmd);
    CHECK(len > 0);
    /* "ringgate:rl:by_key:sha256:" + 64 hex digits */
    CHECK(len > 0 && memmem(cmd, (size_t)len, "$90\r\nringgate:rl:by_key:sha256:", 31) != NULL);
    redisFreeCommand(cmd);
}

static redisReply *integer(long long v)
{
    redisReply *r = calloc(1, sizeof *r);
    r->type = REDIS_REPLY_INTEGER;
    r->integer = v;
    return r;
}

static redisReply *array(size_t n, const long long *v)
{
    redisReply *r = calloc(1, sizeof *r);
    r->type = REDIS_REPLY_ARRAY;
    r->elements = n;
    r->element = calloc(n, sizeof *r->element);
    for (size_t i = 0; i < n; i++)
        r->element[i] = integer(v[i]);
    return r;
}

static void release(redisReply *r)
{
    for (size_t i = 0; i < r->elements; i++)
        free(r->element[i]);
    free(r->element);
    free(r);
}

static bool verdict_of(size_t n, const long long *v, uint8_t set, struct ratelimit_verdict *out)
{
    redisReply *r = array(n, v);
    bool ok;

    memset(out, 0, sizeof *out);
    ok = ratelimit_redis_verdict(r, &route, set, out);
    release(r);
    return ok;
}

static void test_verdicts(void)
{
    struct ratelimit_verdict v;
    static const long long allowed[] = {1, 19, 1, 0, 4, 720, 0};
    static const long long refused[] = {0, 5, 1, 0, 0, 720, 60};

    setup();
    CHECK(verdict_of(7, allowed, 5, &v));
    CHECK(v.limited && !v.denied_by);
    CHECK_INT(v.limit, 5); /* the tightest: by_user */
    CHECK_INT(v.remaining, 4);
    CHECK_INT(v.reset, 720);

    CHECK(verdict_of(7, refused, 5, &v));
    CHECK(v.denied_by == &policies[2]);
    CHECK_INT(v.remaining, 0);
    CHECK_INT(v.retry_after, 60);
}

static void test_bad_replies_are_refused(void)
{
    struct ratelimit_verdict v;
    static const long long short_reply[] = {1, 19, 1};
    static const long long not_boolean[] = {2, 19, 1, 0};
    static const long long negative[] = {1, -1, 1, 0};
    static const long long refusal_without_culprit[] = {0, 19, 1, 0};
    redisReply err = {.type = REDIS_REPLY_ERROR, .str = "ERR x", .len = 5};

    setup();
    CHECK(!verdict_of(3, short_reply, 1, &v));
    CHECK(!verdict_of(4, not_boolean, 1, &v));
    CHECK(!verdict_of(4, negative, 1, &v));
    CHECK(!verdict_of(4, refusal_without_culprit, 1, &v));
    CHECK(!ratelimit_redis_verdict(&err, &route, 1, &v));
    CHECK(!ratelimit_redis_verdict(NULL, &route, 1, &v));
}

static void test_fallbacks(void)
{
    struct ratelimit_verdict v = {0};

    setup();
    CHECK_INT(ratelimit_init(1 << 20), 0);
    /* by_key falls back to its local bucket (burst 20). */
    for (int i = 0; i < 20; i++)
        CHECK(ratelimit_redis_fallback(&route, 1, &req, "ip", NULL, 1000, &v));
    CHECK(!ratelimit_redis_fallback(&route, 1, &req, "ip", NULL, 1000, &v));
    CHECK(v.denied_by == &policies[0]);
    /* by_user denies while Redis is away. */
    memset(&v, 0, sizeof v);
    CHECK(!ratelimit_redis_fallback(&route, 4, &req, "ip", NULL, 1000, &v));
    CHECK(v.denied_by == &policies[2]);
    CHECK_INT(v.retry_after, 1);
    /* allow lets everything through. */
    policies[0].on_redis_error = RL_FALLBACK_ALLOW;
    memset(&v, 0, sizeof v);
    CHECK(ratelimit_redis_fallback(&route, 1, &req, "ip", NULL, 1000, &v));
    ratelimit_shutdown();
}

int main(void)
{
    RUN(test_policies_that_apply);
    RUN(test_no_command_when_no_policy_applies);
    RUN(test_command_bytes);
    RUN(test_long_key_is_hashed);
    RUN(test_verdicts);
    RUN(test_bad_replies_are_refused);
    RUN(test_fallbacks);
    return TEST_REPORT();
}
