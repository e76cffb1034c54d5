#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "http1.h"
#include "test.h"

/* A scratch directory with a www/ subdirectory and a plain file, for the
 * static roots and relative paths. */
static char tmp_dir[64];
static char tmp_file[128];
static char tmp_www[128];
static char tmp_config[128];

static struct config_errors errors;

static struct config *load(const char *yaml)
{
    return config_load_string("t.yaml", yaml, strlen(yaml), &errors);
}

/* Loads a configuration expected to fail; the config must be NULL. */
static void load_bad(const char *yaml)
{
    struct config *cfg = load(yaml);

    CHECK(cfg == NULL);
    config_free(cfg);
}

static const char *error_line(size_t i)
{
    return i < errors.count && i < CONFIG_MAX_ERRORS ? errors.lines[i] : "(no such error)";
}

/* Error line i starts with `prefix`; prints the whole line when not. */
#define CHECK_ERROR(i, prefix)                                                                     \
    CHECK_STR(strncmp(error_line(i), prefix, strlen(prefix)) == 0 ? (prefix) : error_line(i),      \
              prefix)

#define LISTENER "listeners: [{listen: 127.0.0.1:8080}]\n"

static const struct sockaddr_in *sin_of(const struct sockaddr_any *a)
{
    return (const struct sockaddr_in *)&a->ss;
}

static const struct sockaddr_in6 *sin6_of(const struct sockaddr_any *a)
{
    return (const struct sockaddr_in6 *)&a->ss;
}

static void test_defaults(void)
{
    struct config *cfg = load(LISTENER);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);

    CHECK(cfg != NULL);
    CHECK_INT(errors.count, 0);
    if (!cfg) return;
    CHECK_STR(cfg->path, "t.yaml");
    CHECK_INT(cfg->workers, cpus < 1 ? 1 : cpus);
    CHECK(cfg->workers >= 1);
    CHECK_INT(cfg->shutdown_timeout, 10000);
    CHECK_INT(cfg->limits.max_header_bytes, 32 * 1024);
    CHECK_INT(cfg->limits.max_body_bytes, 8 * 1024 * 1024);
    CHECK_INT(cfg->limits.response_buffer, 256 * 1024);
    CHECK_INT(cfg->limits.header_timeout, 10000);
    CHECK_INT(cfg->limits.idle_timeout, 60000);
    CHECK_STR(cfg->access_log, "/var/log/ringgate/access.log");
    CHECK(!cfg->has_admin);
    CHECK(cfg->admin_listen == NULL);
    CHECK_INT(cfg->n_listeners, 1);
    CHECK_STR(cfg->listeners[0].name, "listener0");
    CHECK_STR(cfg->listeners[0].listen, "127.0.0.1:8080");
    CHECK_INT(cfg->n_upstreams, 0);
    CHECK_INT(cfg->n_routes, 0);
    config_free(cfg);

    cfg = load(LISTENER "workers: 0\n"
                        "upstreams: [{name: a, endpoints: [127.0.0.1:1]}]\n"
                        "routes: [{upstream: a}]\n");
    CHECK(cfg != NULL);
    if (!cfg) return;
    CHECK(cfg->workers >= 1);
    CHECK_INT(cfg->upstreams[0].balance, BALANCE_ROUND_ROBIN);
    CHECK_INT(cfg->upstreams[0].connect_timeout, 1000);
    CHECK_INT(cfg->upstreams[0].timeout, 30000);
    CHECK_INT(cfg->upstreams[0].keepalive, 64);
    CHECK_INT(cfg->upstreams[0].index, 0);
    CHECK(cfg->routes[0].host == NULL);
    CHECK(!cfg->routes[0].host_wildcard);
    CHECK_STR(cfg->routes[0].prefix, "/");
    CHECK_INT(cfg->routes[0].methods, 0);
    CHECK(!cfg->routes[0].websocket);
    CHECK(cfg->routes[0].static_root == NULL);
    CHECK(cfg->routes[0].upstream == &cfg->upstreams[0]);
    CHECK_STR(cfg->routes[0].name, "route0");
    config_free(cfg);
}

static void test_full_config(void)
{
    static const char yaml[] =
        "# every key this build knows\n"
        "workers: 3\n"
        "shutdown_timeout: 250ms\n"
        "limits:\n"
        "  max_header_bytes: 16KiB\n"
        "  max_body_bytes: 1MB\n"
        "  response_buffer: 1MiB\n"
        "  header_timeout: 5s\n"
        "  idle_timeout: 2m\n"
        "access_log: logs/access.log\n"
        "admin:\n"
        "  listen: 127.0.0.1:9901\n"
        "listeners:\n"
        "  - name: public\n"
        "    listen: 127.0.0.1:8080\n"
        "  - name: v6\n"
        "    listen: \"[::1]:8443\"\n"
        "  - name: any\n"
        "    listen: \"*:9090\"\n"
        "upstreams:\n"
        "  - name: api\n"
        "    endpoints: [127.0.0.1:9000, \"[::1]:9001\", localhost:9002]\n"
        "    balance: round_robin\n"
        "    connect_timeout: 2s\n"
        "    timeout: 1h\n"
        "    keepalive: 8\n"
        "  - name: other\n"
        "    endpoints:\n"
        "      - 10.0.0.1:80\n"
        "routes:\n"
        "  - name: api_v1\n"
        "    match: {host: \"*.Example.COM\", prefix: /v1/, methods: [GET, POST, DELETE]}\n"
        "    upstream: other\n"
        "    websocket: true\n"
        "  - match:\n"
        "      host: API.example.com\n"
        "    upstream: api\n"
        "    websocket: false\n"
        "  - match: {host: \"*\", prefix: /static/}\n"
        "    static: {root: www/}\n"
        "  - static:\n"
        "      root: WWW_ABSOLUTE/\n";
    char text[sizeof yaml + 128];
    char expect[256];
    const char *mark = strstr(yaml, "WWW_ABSOLUTE");

    snprintf(text, sizeof text, "%.*s%s%s", (int)(mark - yaml), yaml, tmp_www,
             mark + strlen("WWW_ABSOLUTE"));
    struct config *cfg = config_load_string(tmp_config, text, strlen(text), &errors);
    CHECK(cfg != NULL);
    CHECK_ERROR(0, "(no such error)");
    if (!cfg) return;

    CHECK_STR(cfg->path, tmp_config);
    CHECK_INT(cfg->workers, 3);
    CHECK_INT(cfg->shutdown_timeout, 250);
    CHECK_INT(cfg->limits.max_header_bytes, 16384);
    CHECK_INT(cfg->limits.max_body_bytes, 1000000);
    CHECK_INT(cfg->limits.response_buffer, 1024 * 1024);
    CHECK_INT(cfg->limits.header_timeout, 5000);
    CHECK_INT(cfg->limits.idle_timeout, 120000);
    snprintf(expect, sizeof expect, "%s/logs/access.log", tmp_dir);
    CHECK_STR(cfg->access_log, expect);

    CHECK(cfg->has_admin);
    CHECK_STR(cfg->admin_listen, "127.0.0.1:9901");
    CHECK_INT(cfg->admin.ss.ss_family, AF_INET);
    CHECK_INT(cfg->admin.len, sizeof(struct sockaddr_in));
    CHECK_INT(ntohs(sin_of(&cfg->admin)->sin_port), 9901);
    CHECK_INT(ntohl(sin_of(&cfg->admin)->sin_addr.s_addr), INADDR_LOOPBACK);

    CHECK_INT(cfg->n_listeners, 3);
    CHECK_STR(cfg->listeners[0].name, "public");
    CHECK_STR(cfg->listeners[0].listen, "127.0.0.1:8080");
    CHECK_INT(ntohs(sin_of(&cfg->listeners[0].addr)->sin_port), 8080);
    CHECK_STR(cfg->listeners[1].name, "v6");
    CHECK_INT(cfg->listeners[1].addr.ss.ss_family, AF_INET6);
    CHECK_INT(cfg->listeners[1].addr.len, sizeof(struct sockaddr_in6));
    CHECK(IN6_IS_ADDR_LOOPBACK(&sin6_of(&cfg->listeners[1].addr)->sin6_addr));
    CHECK_INT(ntohs(sin6_of(&cfg->listeners[1].addr)->sin6_port), 8443);
    CHECK_STR(cfg->listeners[2].listen, "*:9090");
    CHECK_INT(cfg->listeners[2].addr.ss.ss_family, AF_INET);
    CHECK_INT(sin_of(&cfg->listeners[2].addr)->sin_addr.s_addr, htonl(INADDR_ANY));

    CHECK_INT(cfg->n_upstreams, 2);
    struct upstream_conf *api = &cfg->upstreams[0];
    CHECK_STR(api->name, "api");
    CHECK_INT(api->index, 0);
    CHECK_INT(api->balance, BALANCE_ROUND_ROBIN);
    CHECK_INT(api->connect_timeout, 2000);
    CHECK_INT(api->timeout, 3600000);
    CHECK_INT(api->keepalive, 8);
    CHECK_INT(api->n_endpoints, 3);
    CHECK_STR(api->endpoints[0].text, "127.0.0.1:9000");
    CHECK_INT(ntohs(sin_of(&api->endpoints[0].addr)->sin_port), 9000);
    CHECK_STR(api->endpoints[1].text, "[::1]:9001");
    CHECK_INT(api->endpoints[1].addr.ss.ss_family, AF_INET6);
    CHECK_STR(api->endpoints[2].text, "localhost:9002");
    CHECK(api->endpoints[2].addr.len > 0);
    CHECK_STR(cfg->upstreams[1].name, "other");
    CHECK_INT(cfg->upstreams[1].index, 1);
    CHECK_INT(cfg->upstreams[1].n_endpoints, 1);
    CHECK_INT(cfg->upstreams[1].keepalive, 64);

    CHECK_INT(cfg->n_routes, 4);
    struct route_conf *r = cfg->routes;
    CHECK_STR(r[0].name, "api_v1");
    CHECK_STR(r[0].host, ".example.com");
    CHECK(r[0].host_wildcard);
    CHECK_STR(r[0].prefix, "/v1/");
    CHECK_INT(r[0].methods, METHOD_BIT(HTTP_GET) | METHOD_BIT(HTTP_POST) | METHOD_BIT(HTTP_DELETE));
    CHECK(r[0].upstream == &cfg->upstreams[1]);
    CHECK(r[0].static_root == NULL);
    CHECK(r[0].websocket);

    CHECK_STR(r[1].name, "route1");
    CHECK_STR(r[1].host, "api.example.com");
    CHECK(!r[1].host_wildcard);
    CHECK_STR(r[1].prefix, "/");
    CHECK_INT(r[1].methods, 0);
    CHECK(r[1].upstream == api);
    CHECK(!r[1].websocket);

    CHECK_STR(r[2].name, "route2");
    CHECK(r[2].host == NULL);
    CHECK_STR(r[2].prefix, "/static/");
    CHECK(r[2].upstream == NULL);
    CHECK_STR(r[2].static_root, tmp_www); /* relative to the file, no trailing '/' */

    CHECK_STR(r[3].name, "route3");
    CHECK_STR(r[3].static_root, tmp_www);
    config_free(cfg);
}

static void test_access_log(void)
{
    struct config *cfg = load(LISTENER "access_log: \"off\"\n");
    CHECK(cfg && cfg->access_log == NULL);
    config_free(cfg);

    cfg = load(LISTENER "access_log: off\n");
    CHECK(cfg && cfg->access_log == NULL);
    config_free(cfg);

    cfg = load(LISTENER "access_log: \"-\"\n");
    CHECK(cfg && cfg->access_log && strcmp(cfg->access_log, "-") == 0);
    config_free(cfg);

    cfg = load(LISTENER "access_log: /var/log/x.log\n");
    CHECK(cfg && cfg->access_log && strcmp(cfg->access_log, "/var/log/x.log") == 0);
    config_free(cfg);

    load_bad(LISTENER "access_log:\n");
    CHECK_ERROR(0, "t.yaml:2:12: 'access_log' needs a value");
}

static void test_unknown_keys(void)
{
    load_bad(LISTENER "wrokers: 2\n");
    CHECK_INT(errors.count, 1);
    CHECK_ERROR(0, "t.yaml:2:1: unknown top-level key 'wrokers'");

    load_bad("listeners:\n"
             "  - listen: 127.0.0.1:8080\n"
             "    nmae: x\n");
    CHECK_INT(errors.count, 1);
    CHECK_ERROR(0, "t.yaml:3:5: unknown listener key 'nmae'");

    load_bad(LISTENER "limits: {max_headers: 1KiB}\n");
    CHECK_ERROR(0, "t.yaml:2:10: unknown limits key 'max_headers'");

    load_bad(LISTENER "routes:\n"
                      "  - match: {path: /}\n"
                      "    upstream: a\n"
                      "upstreams: [{name: a, endpoints: [127.0.0.1:1], weight: 2}]\n");
    CHECK_INT(errors.count, 2);
    CHECK_ERROR(0, "t.yaml:3:13: unknown match key 'path'");
    CHECK_ERROR(1, "t.yaml:5:49: unknown upstream key 'weight'");

    load_bad(LISTENER "admin: {listen: 127.0.0.1:9901, port: 1}\n");
    CHECK_ERROR(0, "t.yaml:2:33: unknown admin key 'port'");

    load_bad(LISTENER "routes: [{static: {root: /tmp, index: x.html}}]\n");
    CHECK_ERROR(0, "t.yaml:2:32: unknown static key 'index'");
}

static void test_cache(void)
{
    struct config *cfg = load(LISTENER "upstreams: [{name: a, endpoints: [127.0.0.1:1]}]\n"
                                       "cache: {memory: 64MiB, max_object: 1MiB}\n"
                                       "routes:\n"
                                       "  - {match: {prefix: /a/}, upstream: a, cache: true}\n"
                                       "  - match: {prefix: /b/}\n"
                                       "    upstream: a\n"
                                       "    cache: {stale_while_revalidate: 10s, stale_if_error: 1m}\n"
                                       "  - {upstream: a, cache: false}\n");

    CHECK(cfg != NULL);
    if (!cfg) return;
    CHECK_INT(cfg->cache.memory, 64u << 20);
    CHECK_INT(cfg->cache.max_object, 1u << 20);
    CHECK(cfg->routes[0].cache.enabled);
    CHECK_INT(cfg->routes[0].cache.stale_while_revalidate, 0);
    CHECK(cfg->routes[1].cache.enabled);
    CHECK_INT(cfg->routes[1].cache.stale_while_revalidate, 10000);
    CHECK_INT(cfg->routes[1].cache.stale_if_error, 60000);
    CHECK(!cfg->routes[2].cache.enabled);
    config_free(cfg);

    cfg = load(LISTENER);
    CHECK(cfg && cfg->cache.memory == 256u << 20 && cfg->cache.max_object == 8u << 20);
    config_free(cfg);

    load_bad(LISTENER "cache: {memory: 0, max_objects: 1}\n"
                      "upstreams: [{name: a, endpoints: [127.0.0.1:1]}]\n"
                      "routes:\n"
                      "  - {upstream: a, cache: yes please}\n"
                      "  - {upstream: a, cache: {stale_if_error: soon, ttl: 1s}}\n"
                      "  - {static: {root: /tmp}, cache: true}\n");
    CHECK_INT(errors.count, 6);
    CHECK_ERROR(0, "t.yaml:2:17: 'memory' must be greater than 0");
    CHECK_ERROR(1, "t.yaml:2:20: unknown cache key 'max_objects'");
    CHECK_ERROR(2, "t.yaml:5:26: 'cache' must be a bool (true or false), not 'yes please'");
    CHECK_ERROR(3, "t.yaml:6:43: 'stale_if_error': invalid duration 'soon'");
    CHECK_ERROR(4, "t.yaml:6:49: unknown route cache key 'ttl'");
    CHECK_ERROR(5, "t.yaml:7:35: 'cache' needs an upstream");
}

static void test_redis_errors(void)
{
    load_bad(LISTENER "redis: {address: \"unix:run/redis.sock\", timeout: 0s, db: 1}\n"
                      "rate_limits:\n"
                      "  - {name: a, key: ip, rate: 1/s, backend: memcached, on_redis_error: drop}\n");
    CHECK_INT(errors.count, 5);
    CHECK_ERROR(0, "t.yaml:2:18: 'address': a socket path must be absolute "
                   "(unix:/run/redis.sock)");
    CHECK_ERROR(1, "t.yaml:2:50: 'timeout' must be greater than 0");
    CHECK_ERROR(2, "t.yaml:2:54: unknown redis key 'db'");
    CHECK_ERROR(3, "t.yaml:4:44: unknown backend 'memcached' (expected local or redis)");
    CHECK_ERROR(4, "t.yaml:4:71: unknown on_redis_error 'drop' (expected local, allow or deny)");

    load_bad(LISTENER "redis: {timeout: 10ms}\n"
                      "rate_limits: [{name: a, key: ip, rate: 1/s, backend: redis}]\n");
    CHECK_INT(errors.count, 1);
    CHECK_ERROR(0, "t.yaml:2:8: missing required redis key 'address'");
}

static void test_reserved_keys(void)
{
    load_bad(LISTENER "upstreams: [{name: a, endpoints: [127.0.0.1:1]}]\n"
                      "routes:\n"
                      "  - upstream: a\n"
                      "    jwt: main\n"
                      "    rate_limit: per_user\n"
                      "    schema: order\n"
                      "    cache: true\n");
    CHECK_INT(errors.count, 3);
    CHECK_ERROR(0, "t.yaml:5:10: unknown jwt provider 'main'");
    CHECK_ERROR(1, "t.yaml:6:17: unknown rate limit 'per_user'");
    CHECK_ERROR(2, "t.yaml:7:13: unknown schema 'order'");

    load_bad("listeners:\n"
             "  - listen: 127.0.0.1:8443\n"
             "    tls: {certificates: []}\n"
             "upstreams:\n"
             "  - name: a\n"
             "    endpoints: [127.0.0.1:1, {address: 127.0.0.1:2, weight: 0}]\n"
             "    balance: hash\n"
             "    hash_key: cookie\n");
    CHECK_INT(errors.count, 3);
    CHECK_ERROR(0, "t.yaml:3:25: 'certificates' needs 1 to 32 certificates");
    CHECK_ERROR(1, "t.yaml:6:61: 'weight' must be between 1 and 1000");
    CHECK_ERROR(2, "t.yaml:8:15: unknown hash key 'cookie'");

    load_bad(LISTENER "upstreams: [{name: a, endpoints: [127.0.0.1:1], balance: random}]\n");
    CHECK_ERROR(0, "t.yaml:2:58: unknown balance 'random'");
}

static void test_resilience_sections(void)
{
    struct config *cfg;

    cfg = load(LISTENER "upstreams:\n"
                        "  - name: a\n"
                           "    endpoints: [127.0.0.1:1]\n"
                           "    balance: least_request\n"
                           "    health_check: {interval: 500ms, unhealthy: 2}\n"
                           "    circuit_breaker: {failures: 3, open_for: 2s, max_pending: 0}\n"
                           "    retries: {attempts: 2, on: [connect_failure, 503]}\n"
                           "  - name: b\n"
                           "    endpoints: [127.0.0.1:2]\n");
    CHECK(cfg != NULL);
    if (!cfg)
        return;
    CHECK_INT(cfg->upstreams[0].balance, BALANCE_LEAST_REQUEST);
    CHECK(cfg->upstreams[0].health.enabled);
    CHECK_STR(cfg->upstreams[0].health.path, "/healthz");
    CHECK_INT(cfg->upstreams[0].health.interval, 500);
    CHECK_INT(cfg->upstreams[0].health.timeout, 1000);
    CHECK_INT(cfg->upstreams[0].health.healthy, 2);
    CHECK_INT(cfg->upstreams[0].health.unhealthy, 2);
    CHECK_INT(cfg->upstreams[0].circuit.failures, 3);
    CHECK_INT(cfg->upstreams[0].circuit.open_for, 2000);
    CHECK_INT(cfg->upstreams[0].circuit.half_open_requests, 1);
    CHECK_INT(cfg->upstreams[0].circuit.max_connections, 1024);
    CHECK_INT(cfg->upstreams[0].circuit.max_pending, 0);
    CHECK_INT(cfg->upstreams[0].retries.attempts, 2);
    CHECK_INT(cfg->upstreams[0].retries.on, RETRY_CONNECT_FAILURE | RETRY_503);
    /* Defaults. */
    CHECK(!cfg->upstreams[1].health.enabled);
    CHECK_INT(cfg->upstreams[1].circuit.failures, 5);
    CHECK_INT(cfg->upstreams[1].circuit.open_for, 10000);
    CHECK_INT(cfg->upstreams[1].retries.attempts, 1);
    CHECK_INT(cfg->upstreams[1].retries.on, RETRY_CONNECT_FAILURE);
    config_free(cfg);

    load_bad(LISTENER "upstreams:\n"
                      "  - name: a\n"
                      "    endpoints: [127.0.0.1:1]\n"
                      "    retries: {on: [connect_failure, 418]}\n"
                      "    health_check: {path: nope, healthy: 0}\n"
                      "    circuit_breaker: {open_for: 0s}\n");
    CHECK_INT(errors.count, 4);
    CHECK_ERROR(0, "t.yaml:5:37: unknown retry condition '418'");
    CHECK_ERROR(1, "t.yaml:6:26: 'path' must be a path starting with '/'");
    CHECK_ERROR(2, "t.yaml:6:41: 'healthy' must be at least 1");
    CHECK_ERROR(3, "t.yaml:7:33: 'open_for' must be greater than 0");
}

static void test_rate_limits(void)
{
    struct config *cfg;

    cfg = load(LISTENER "rate_limits:\n"
                        "  - {name: a, key: ip, rate: 100/s, burst: 200}\n"
                        "  - {name: b, key: \"header:X-Api-Key\", rate: 6000/m}\n"
                        "  - {name: c, key: jwt.sub, rate: 1/h}\n"
                        "  - {name: d, key: route, rate: 2/s}\n"
                        "jwt_providers: [{name: j, secret: c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA}]\n"
                        "upstreams: [{name: u, endpoints: [127.0.0.1:1]}]\n"
                        "routes: [{upstream: u, jwt: j, rate_limit: [a, c]}, {upstream: u, rate_limit: b}]\n");
    CHECK(cfg != NULL);
    if (!cfg) {
        fprintf(stderr, "%s\n", error_line(0));
        return;
    }
    CHECK_INT(cfg->n_rate_limits, 4);
    CHECK_INT(cfg->rate_limits[0].key, RL_KEY_IP);
    CHECK_INT(cfg->rate_limits[0].burst, 200);
    CHECK_INT(cfg->rate_limits[1].key, RL_KEY_HEADER);
    CHECK_STR(cfg->rate_limits[1].key_arg, "X-Api-Key");
    CHECK_INT(cfg->rate_limits[1].burst, 100); /* one second's worth */
    CHECK_INT(cfg->rate_limits[2].key, RL_KEY_JWT_CLAIM);
    CHECK_STR(cfg->rate_limits[2].key_arg, "sub");
    CHECK_INT(cfg->rate_limits[2].burst, 1);
    CHECK_INT(cfg->rate_limits[3].key, RL_KEY_ROUTE);
    CHECK_INT(cfg->routes[0].n_rate_limits, 2);
    CHECK(cfg->routes[0].rate_limits[1] == &cfg->rate_limits[2]);
    CHECK(cfg->routes[0].jwt == &cfg->jwt_providers[0]);
    CHECK(cfg->routes[1].rate_limits[0] == &cfg->rate_limits[1]);
    config_free(cfg);

    load_bad(LISTENER "rate_limits:\n"
                      "  - {name: a, key: cookie, rate: 1/s}\n"
                      "  - {name: b, key: jwt.sub, rate: fast}\n"
                      "upstreams: [{name: u, endpoints: [127.0.0.1:1]}]\n"
                      "routes: [{upstream: u, rate_limit: [b, zz]}]\n");
    CHECK_INT(errors.count, 4);
    CHECK_ERROR(0, "t.yaml:3:20: unknown rate-limit key 'cookie'");
    CHECK_ERROR(1, "t.yaml:4:35: 'rate': invalid rate 'fast'");
    CHECK_ERROR(2, "t.yaml:6:37: rate limit 'b' is keyed by a JWT claim: the route needs 'jwt'");
    CHECK_ERROR(3, "t.yaml:6:40: unknown rate limit 'zz'");
}

static void test_deferred_accept(void)
{
    struct config *cfg = load("listeners: [{listen: 127.0.0.1:8080, deferred_accept: 1500ms},\n"
                              "            {listen: 127.0.0.1:8081}]\n");

    CHECK(cfg != NULL);
    if (cfg) {
        CHECK_INT(cfg->listeners[0].deferred_accept_s, 2); /* whole seconds, rounded up */
        CHECK_INT(cfg->listeners[1].deferred_accept_s, 0); /* off by default */
    }
    config_free(cfg);
    load_bad("listeners: [{listen: 127.0.0.1:8080, deferred_accept: 2m}]\n");
    CHECK_ERROR(0, "t.yaml:1:55: 'deferred_accept' is at most 60s");
    load_bad("listeners: [{listen: 127.0.0.1:8080, deferred_accept: soon}]\n");
    CHECK_ERROR(0, "t.yaml:1:55: 'deferred_accept': invalid duration 'soon'");
}

static void test_wrong_types(void)
{
    load_bad(LISTENER "limits: 5\n");
    CHECK_ERROR(0, "t.yaml:2:9: 'limits' must be a mapping, not a scalar");

    load_bad("listeners: {listen: 127.0.0.1:8080}\n");
    CHECK_ERROR(0, "t.yaml:1:12: 'listeners' must be a sequence, not a mapping");

    load_bad("listeners: [127.0.0.1:8080]\n");
    CHECK_ERROR(0, "t.yaml:1:13: 'listeners[0]' must be a mapping, not a scalar");

    load_bad(LISTENER "workers: two\n");
    CHECK_ERROR(0, "t.yaml:2:10: 'workers' must be an integer, not 'two'");

    load_bad(LISTENER "workers: -1\n");
    CHECK_ERROR(0, "t.yaml:2:10: 'workers' must be an integer, not '-1'");

    load_bad(LISTENER "workers: 100000\n");
    CHECK_ERROR(0, "t.yaml:2:10: 'workers' must be between 0 and 1024");

    load_bad(LISTENER "workers: [1]\n");
    CHECK_ERROR(0, "t.yaml:2:10: 'workers' must be a scalar, not a sequence");

    load_bad(LISTENER "routes: [{static: {root: /tmp}, websocket: yes please}]\n");
    CHECK_ERROR(0, "t.yaml:2:44: 'websocket' must be a bool (true or false), not 'yes please'");

    load_bad(LISTENER "upstreams: [{name: a, endpoints: 127.0.0.1:1}]\n");
    CHECK_ERROR(0, "t.yaml:2:34: 'endpoints' must be a sequence, not a scalar");

    load_bad(LISTENER "upstreams: [{name: a, endpoints: []}]\n");
    CHECK_ERROR(0, "t.yaml:2:34: 'endpoints' must list at least one endpoint");

    load_bad(LISTENER "upstreams: [{name: a, endpoints: [127.0.0.1:1], keepalive: 1s}]\n");
    CHECK_ERROR(0, "t.yaml:2:60: 'keepalive' must be an integer, not '1s'");

    load_bad(LISTENER "admin:\n");
    CHECK_ERROR(0, "t.yaml:2:7: 'admin' must be a mapping, not empty");

    load_bad("- listen: 127.0.0.1:8080\n");
    CHECK_ERROR(0, "t.yaml:1:1: 'configuration' must be a mapping, not a sequence");

    load_bad(LISTENER "? [a]\n: 1\n");
    CHECK_ERROR(0, "t.yaml:2:3: keys must be scalars, not a sequence");
}

static void test_bad_duration(void)
{
    load_bad(LISTENER "shutdown_timeout: 10\n");
    CHECK_INT(errors.count, 1);
    CHECK_ERROR(0, "t.yaml:2:19: 'shutdown_timeout': invalid duration '10'");

    load_bad(LISTENER "limits:\n  header_timeout: 1.5s\n  idle_timeout: 0\n");
    CHECK_INT(errors.count, 2);
    CHECK_ERROR(0, "t.yaml:3:19: 'header_timeout': invalid duration '1.5s'");
    CHECK_ERROR(1, "t.yaml:4:17: 'idle_timeout' must be greater than 0");

    load_bad(LISTENER "upstreams: [{name: a, endpoints: [127.0.0.1:1], timeout: -5s}]\n");
    CHECK_ERROR(0, "t.yaml:2:58: 'timeout': invalid duration '-5s'");

    struct config *cfg = load(LISTENER "shutdown_timeout: 0\n");
    CHECK(cfg && cfg->shutdown_timeout == 0);
    config_free(cfg);
}

static void test_bad_size(void)
{
    load_bad(LISTENER "limits:\n  max_body_bytes: 8mb\n");
    CHECK_INT(errors.count, 1);
    CHECK_ERROR(0, "t.yaml:3:19: 'max_body_bytes': invalid size '8mb'");

    load_bad(LISTENER "limits: {max_header_bytes: 0}\n");
    CHECK_ERROR(0, "t.yaml:2:28: 'max_header_bytes' must be greater than 0");

    load_bad(LISTENER "limits: {max_header_bytes: 99999999999999999999}\n");
    CHECK_ERROR(0, "t.yaml:2:28: 'max_header_bytes': invalid size '99999999999999999999'");

    load_bad(LISTENER "limits: {response_buffer: 8KiB}\n");
    CHECK_ERROR(0, "t.yaml:2:27: 'response_buffer' must be between 16KiB and 16MiB");
    load_bad(LISTENER "limits: {response_buffer: 17MiB}\n");
    CHECK_ERROR(0, "t.yaml:2:27: 'response_buffer' must be between 16KiB and 16MiB");

    struct config *cfg = load(LISTENER "limits: {max_body_bytes: 0, response_buffer: 16KiB}\n");
    CHECK(cfg && cfg->limits.max_body_bytes == 0 && cfg->limits.response_buffer == 16384);
    config_free(cfg);
}

static void test_unknown_upstream(void)
{
    /* The route comes before the upstreams section: references are resolved
     * once the whole file is read. */
    load_bad(LISTENER "routes:\n"
                      "  - upstream: api\n"
                      "  - upstream: apii\n"
                      "upstreams: [{name: api, endpoints: [127.0.0.1:1]}]\n");
    CHECK_INT(errors.count, 1);
    CHECK_ERROR(0, "t.yaml:4:15: unknown upstream 'apii'");

    load_bad(LISTENER "routes: [{upstream: nowhere}]\n");
    CHECK_ERROR(0, "t.yaml:2:21: unknown upstream 'nowhere'");
}

static void test_route_targets(void)
{
    load_bad(LISTENER "upstreams: [{name: a, endpoints: [127.0.0.1:1]}]\n"
                      "routes:\n"
                      "  - match: {prefix: /}\n"
                      "    upstream: a\n"
                      "    static: {root: /tmp}\n"
                      "  - match: {prefix: /x}\n");
    CHECK_INT(errors.count, 2);
    CHECK_ERROR(0, "t.yaml:4:5: route has both 'upstream' and 'static'");
    CHECK_ERROR(1, "t.yaml:7:5: route needs 'upstream' or 'static'");

    load_bad(LISTENER "routes: [{match: {prefix: api/}, static: {root: /tmp}}]\n");
    CHECK_ERROR(0, "t.yaml:2:27: 'prefix' must start with '/', not 'api/'");

    load_bad(LISTENER "routes: [{match: {methods: [GET, get, BREW]}, static: {root: /tmp}}]\n");
    CHECK_INT(errors.count, 2);
    CHECK_ERROR(0, "t.yaml:2:34: unknown method 'get'");
    CHECK_ERROR(1, "t.yaml:2:39: unknown method 'BREW'");

    load_bad(LISTENER "routes: [{match: {host: \"a.com:80\"}, static: {root: /tmp}}]\n");
    CHECK_ERROR(0, "t.yaml:2:25: host 'a.com:80' must not include a port");

    load_bad(LISTENER "routes: [{match: {host: \"a.*.com\"}, static: {root: /tmp}}]\n");
    CHECK_ERROR(0, "t.yaml:2:25: host 'a.*.com': '*' is only allowed as the first label");

    load_bad(LISTENER "routes: [{static: {}}]\n");
    CHECK_ERROR(0, "t.yaml:2:19: missing required static key 'root'");

    struct config *cfg =
        load(LISTENER "routes: [{match: {methods: [OPTIONS, TRACE, CONNECT, HEAD, PUT, PATCH]},"
                      " static: {root: /}}]\n");
    CHECK(cfg != NULL);
    if (cfg) {
        CHECK_INT(cfg->routes[0].methods, METHOD_BIT(HTTP_OPTIONS) | METHOD_BIT(HTTP_TRACE) |
                                              METHOD_BIT(HTTP_CONNECT) | METHOD_BIT(HTTP_HEAD) |
                                              METHOD_BIT(HTTP_PUT) | METHOD_BIT(HTTP_PATCH));
        CHECK_STR(cfg->routes[0].static_root, ""); /* "/" without its trailing slash */
    }
    config_free(cfg);
}

static void test_static_root(void)
{
    load_bad(LISTENER "routes:\n  - static: {root: /nonexistent/ringgate/www}\n");
    CHECK_INT(errors.count, 1);
    CHECK_ERROR(0, "t.yaml:3:20: static root '/nonexistent/ringgate/www': No such file");

    char yaml[512];
    snprintf(yaml, sizeof yaml, LISTENER "routes: [{static: {root: %s}}]\n", tmp_file);
    load_bad(yaml);
    CHECK_INT(errors.count, 1);
    CHECK_ERROR(0, "t.yaml:2:26: static root '");
    CHECK(strstr(error_line(0), "is not a directory") != NULL);
}

static void test_unresolvable_endpoint(void)
{
    load_bad(LISTENER "upstreams:\n"
                      "  - name: a\n"
                      "    endpoints:\n"
                      "      - 127.0.0.1:9000\n"
                      "      - nonexistent.invalid:80\n");
    CHECK_INT(errors.count, 1);
    CHECK_ERROR(0, "t.yaml:6:9: cannot resolve 'nonexistent.invalid'");

    load_bad(LISTENER "upstreams: [{name: a, endpoints: [\"*:80\"]}]\n");
    CHECK_ERROR(0, "t.yaml:2:35: endpoint '*:80' needs a host");
}

static void test_bad_port(void)
{
    load_bad("listeners:\n"
             "  - listen: 127.0.0.1:0\n"
             "  - listen: 127.0.0.1:65536\n"
             "  - listen: 127.0.0.1:http\n"
             "  - listen: 127.0.0.1\n"
             "  - listen: \"::1:80\"\n");
    CHECK_INT(errors.count, 5);
    CHECK_ERROR(0, "t.yaml:2:13: invalid port in '127.0.0.1:0' (expected 1-65535)");
    CHECK_ERROR(1, "t.yaml:3:13: invalid port in '127.0.0.1:65536'");
    CHECK_ERROR(2, "t.yaml:4:13: invalid port in '127.0.0.1:http'");
    CHECK_ERROR(3, "t.yaml:5:13: invalid address '127.0.0.1' (expected host:port)");
    CHECK_ERROR(4, "t.yaml:6:13: invalid address '::1:80': write IPv6 addresses as [v6]:port");
}

static void test_parse_address(void)
{
    struct sockaddr_any a;
    char err[256];

    CHECK_INT(config_parse_address("*:8080", &a, err, sizeof err), 0);
    CHECK_INT(a.ss.ss_family, AF_INET);
    CHECK_INT(sin_of(&a)->sin_addr.s_addr, htonl(INADDR_ANY));
    CHECK_INT(ntohs(sin_of(&a)->sin_port), 8080);

    CHECK_INT(config_parse_address("[::]:443", &a, err, sizeof err), 0);
    CHECK_INT(a.ss.ss_family, AF_INET6);
    CHECK(IN6_IS_ADDR_UNSPECIFIED(&sin6_of(&a)->sin6_addr));
    CHECK_INT(ntohs(sin6_of(&a)->sin6_port), 443);

    CHECK_INT(config_parse_address("10.1.2.3:65535", &a, err, sizeof err), 0);
    CHECK_INT(ntohl(sin_of(&a)->sin_addr.s_addr), 0x0a010203);
    CHECK_INT(ntohs(sin_of(&a)->sin_port), 65535);

    CHECK_INT(config_parse_address("localhost:80", &a, err, sizeof err), 0);

    const char *bad[] = {"",
                         ":80",
                         "1.2.3.4:",
                         "1.2.3.4:-1",
                         "1.2.3.4:+1",
                         "1.2.3.4: 80",
                         "[::1]",
                         "[::1]80",
                         "[1.2.3.4]:80",
                         "[::1:80",
                         "::1:80",
                         "1.2.3.4:080000",
                         "*:0",
                         "nonexistent.invalid:80"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        CHECK_INT(config_parse_address(bad[i], &a, err, sizeof err), -1);
        CHECK(err[0] != '\0');
    }
}

static void test_names(void)
{
    load_bad("listeners:\n"
             "  - {name: pub, listen: 127.0.0.1:8080}\n"
             "  - {name: pub, listen: 127.0.0.1:8081}\n"
             "upstreams:\n"
             "  - {name: a, endpoints: [127.0.0.1:1]}\n"
             "  - {name: a, endpoints: [127.0.0.1:2]}\n"
             "routes:\n"
             "  - {name: r, upstream: a}\n"
             "  - {name: r, upstream: a}\n"
             "  - {name: \"bad name\", upstream: a}\n");
    CHECK_INT(errors.count, 4);
    CHECK_ERROR(0, "t.yaml:3:12: duplicate listener name 'pub' (first at line 2)");
    CHECK_ERROR(1, "t.yaml:6:12: duplicate upstream name 'a' (first at line 5)");
    CHECK_ERROR(2, "t.yaml:9:12: duplicate route name 'r' (first at line 8)");
    CHECK_ERROR(3, "t.yaml:10:12: invalid name 'bad name'");

    load_bad(LISTENER "workers: 1\nworkers: 2\n");
    CHECK_ERROR(0, "t.yaml:3:1: duplicate key 'workers'");
}

static void test_required(void)
{
    load_bad("workers: 1\n");
    CHECK_ERROR(0, "t.yaml:1:1: at least one listener is required");

    load_bad("listeners: []\n");
    CHECK_ERROR(0, "t.yaml:1:12: at least one listener is required");

    load_bad("");
    CHECK_ERROR(0, "t.yaml:1:1: the configuration is empty");

    load_bad("listeners:\n  - name: x\n");
    CHECK_ERROR(0, "t.yaml:2:5: missing required listener key 'listen'");

    load_bad(LISTENER "upstreams: [{endpoints: [127.0.0.1:1]}]\n");
    CHECK_ERROR(0, "t.yaml:2:13: missing required upstream key 'name'");

    load_bad(LISTENER "admin: {}\n");
    CHECK_ERROR(0, "t.yaml:2:8: missing required admin key 'listen'");
}

static void test_address_overlap(void)
{
    load_bad("listeners:\n"
             "  - {name: a, listen: \"*:8080\"}\n"
             "  - {name: b, listen: 127.0.0.1:8080}\n"
             "admin: {listen: 127.0.0.1:8080}\n");
    CHECK_INT(errors.count, 2);
    CHECK_ERROR(0, "t.yaml:3:23: listener address '127.0.0.1:8080' overlaps listener 'a'");
    CHECK_ERROR(1, "t.yaml:4:17: admin address '127.0.0.1:8080' overlaps listener 'a'");

    load_bad("listeners:\n"
             "  - {name: a, listen: 127.0.0.1:8080}\n"
             "  - {name: b, listen: \"[::]:8080\"}\n");
    CHECK_ERROR(0, "t.yaml:3:23: listener address '[::]:8080' overlaps listener 'a'");

    struct config *cfg = load("listeners:\n"
                              "  - {name: a, listen: \"*:8080\"}\n"
                              "  - {name: b, listen: \"[::1]:8080\"}\n"
                              "  - {name: c, listen: 127.0.0.1:8081}\n"
                              "admin: {listen: 127.0.0.2:8082}\n");
    CHECK(cfg != NULL);
    config_free(cfg);
}

static void test_yaml_syntax_error(void)
{
    load_bad("listeners:\n"
             "  - listen: 127.0.0.1:8080\n"
             "    name: [a, b\n");
    CHECK_INT(errors.count, 1);
    CHECK_ERROR(0, "t.yaml:4:1: YAML: did not find expected ',' or ']'");

    load_bad("workers: 1\n  listeners: x\n");
    CHECK_ERROR(0, "t.yaml:2:12: YAML: mapping values are not allowed in this context");

    load_bad(LISTENER "---\nworkers: 1\n");
    CHECK_ERROR(0, "t.yaml:3:1: only one YAML document is allowed");

    load_bad(LISTENER "x: \001\n");
    CHECK_ERROR(0, "t.yaml:2:4: YAML: control characters are not allowed");
}

static void test_many_errors(void)
{
    load_bad("workers: lots\n"
             "listeners:\n"
             "  - listen: 127.0.0.1:99999\n"
             "limits:\n"
             "  max_body_bytes: big\n"
             "  idle_timeout: forever\n"
             "upstreams:\n"
             "  - name: api\n"
             "    endpoints: [nonexistent.invalid:80]\n"
             "    colour: blue\n"
             "routes:\n"
             "  - upstream: ipa\n"
             "  - static: {root: /nonexistent/ringgate}\n"
             "    jwt: main\n");
    CHECK_INT(errors.count, 9);
    /* All of them, in file order. */
    CHECK_ERROR(0, "t.yaml:1:10: 'workers' must be an integer");
    CHECK_ERROR(1, "t.yaml:3:13: invalid port in '127.0.0.1:99999'");
    CHECK_ERROR(2, "t.yaml:5:19: 'max_body_bytes': invalid size 'big'");
    CHECK_ERROR(3, "t.yaml:6:17: 'idle_timeout': invalid duration 'forever'");
    CHECK_ERROR(4, "t.yaml:9:17: cannot resolve 'nonexistent.invalid'");
    CHECK_ERROR(5, "t.yaml:10:5: unknown upstream key 'colour'");
    CHECK_ERROR(6, "t.yaml:12:15: unknown upstream 'ipa'");
    CHECK_ERROR(7, "t.yaml:13:20: static root '/nonexistent/ringgate': No such file");
    CHECK_ERROR(8, "t.yaml:14:10: unknown jwt provider 'main'");

    /* More than CONFIG_MAX_ERRORS: all counted, the first ones kept. */
    char yaml[8192] = LISTENER;
    for (int i = 0; i < CONFIG_MAX_ERRORS + 6; i++)
        snprintf(yaml + strlen(yaml), sizeof yaml - strlen(yaml), "bad%d: 1\n", i);
    load_bad(yaml);
    CHECK_INT(errors.count, CONFIG_MAX_ERRORS + 6);
    CHECK_ERROR(0, "t.yaml:2:1: unknown top-level key 'bad0'");
    CHECK_ERROR(CONFIG_MAX_ERRORS - 1, "t.yaml:65:1: unknown top-level key 'bad63'");
}

static void test_load_file(void)
{
    char path[256], missing[256], expect[512];
    FILE *f;

    snprintf(path, sizeof path, "%s/file.yaml", tmp_dir);
    f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return;
    fputs(LISTENER "routes: [{static: {root: ./www}}]\n", f);
    fclose(f);
    struct config *cfg = config_load(path, &errors);
    CHECK(cfg != NULL);
    if (cfg) CHECK_STR(cfg->routes[0].static_root, tmp_www);
    config_free(cfg);
    unlink(path);

    snprintf(missing, sizeof missing, "%s/missing.yaml", tmp_dir);
    cfg = config_load(missing, &errors);
    CHECK(cfg == NULL);
    CHECK_INT(errors.count, 1);
    snprintf(expect, sizeof expect, "%s:1:1: cannot read: No such file or directory", missing);
    CHECK_STR(error_line(0), expect);
}

static int make_scratch(void)
{
    char *real;
    FILE *f;

    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/ringgate-test-config-XXXXXX");
    if (!mkdtemp(tmp_dir)) return -1;
    /* /tmp may be a symlink: the loader reports canonical paths. */
    real = realpath(tmp_dir, NULL);
    if (!real) return -1;
    snprintf(tmp_dir, sizeof tmp_dir, "%s", real);
    free(real);
    snprintf(tmp_www, sizeof tmp_www, "%s/www", tmp_dir);
    snprintf(tmp_file, sizeof tmp_file, "%s/plain", tmp_dir);
    snprintf(tmp_config, sizeof tmp_config, "%s/ringgate.yaml", tmp_dir);
    if (mkdir(tmp_www, 0755) < 0) return -1;
    f = fopen(tmp_file, "w");
    if (!f) return -1;
    fclose(f);
    return 0;
}

static void remove_scratch(void)
{
    unlink(tmp_file);
    rmdir(tmp_www);
    rmdir(tmp_dir);
}

int main(void)
{
    if (make_scratch() < 0) {
        perror("scratch directory");
        return 1;
    }
    RUN(test_defaults);
    RUN(test_deferred_accept);
    RUN(test_full_config);
    RUN(test_access_log);
    RUN(test_unknown_keys);
    RUN(test_reserved_keys);
    RUN(test_cache);
    RUN(test_redis_errors);
    RUN(test_resilience_sections);
    RUN(test_rate_limits);
    RUN(test_wrong_types);
    RUN(test_bad_duration);
    RUN(test_bad_size);
    RUN(test_unknown_upstream);
    RUN(test_route_targets);
    RUN(test_static_root);
    RUN(test_unresolvable_endpoint);
    RUN(test_bad_port);
    RUN(test_parse_address);
    RUN(test_names);
    RUN(test_required);
    RUN(test_address_overlap);
    RUN(test_yaml_syntax_error);
    RUN(test_many_errors);
    RUN(test_load_file);
    remove_scratch();
    return TEST_REPORT();
}
