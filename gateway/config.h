/* The configuration: a YAML file (libyaml) turned into one immutable
 * snapshot. Every problem found is reported as "FILE:LINE:COL: message"
 * (line and column 1-based); loading goes on after an error so that one run
 * of `ringgate -t` lists them all. */
#ifndef RINGGATE_CONFIG_H
#define RINGGATE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "balance.h"
#include "bucket.h"

#define CONFIG_MAX_ERRORS 64

struct config_errors {
    size_t count; /* may exceed CONFIG_MAX_ERRORS; only the first are kept */
    char lines[CONFIG_MAX_ERRORS][320];
};

struct sockaddr_any {
    struct sockaddr_storage ss;
    socklen_t len;
};

#define MAX_WORKERS 1024

struct limits_conf {
    uint64_t max_header_bytes; /* default 32KiB */
    uint64_t max_body_bytes;   /* default 8MiB */
    uint64_t header_timeout;   /* ms, default 10s */
    uint64_t idle_timeout;     /* ms, default 60s */
    uint64_t tunnel_idle_timeout; /* ms, default 1h: WebSocket tunnels */
    uint64_t max_connections;     /* client connections, all listeners; 0: no cap */
    uint64_t max_connections_per_ip; /* from one client address; 0: no cap */
    uint64_t max_memory; /* connections' memory, all workers, before load shedding; 0: off */
    uint64_t response_buffer; /* largest receive of a response body; default 256KiB */
};

struct listener_conf {
    char *name;
    unsigned metrics_id; /* set by metrics_register() */
    char *listen; /* as written, e.g. "0.0.0.0:8080" */
    unsigned max_tunnels; /* concurrent WebSocket tunnels, all workers; 0: no cap */
    unsigned max_connections; /* client connections, all workers; 0: no cap */
    unsigned deferred_accept_s; /* TCP_DEFER_ACCEPT seconds; 0: off */
    struct tls_context *tls; /* NULL: plain TCP */
    struct sockaddr_any addr;
};

struct endpoint_conf {
    char *text; /* as written, e.g. "127.0.0.1:9000" or "origin.local:80" */
    struct sockaddr_any addr; /* resolved at load */
    unsigned weight;          /* default 1 */
    unsigned metrics_id;
};

enum balance { BALANCE_ROUND_ROBIN, BALANCE_LEAST_REQUEST, BALANCE_HASH };

/* What a request is keyed by, for rate limits and the hash balancer. */
enum request_key_kind { RL_KEY_IP, RL_KEY_JWT_CLAIM, RL_KEY_HEADER, RL_KEY_ROUTE };

/* What a retry is allowed on (retries.on). */
#define RETRY_CONNECT_FAILURE (1u << 0)
#define RETRY_REFUSED_STREAM (1u << 1)
#define RETRY_TIMEOUT (1u << 2)
#define RETRY_502 (1u << 3)
#define RETRY_503 (1u << 4)
#define RETRY_504 (1u << 5)

struct retry_conf {
    unsigned attempts; /* extra tries after the first, default 1 */
    unsigned on;       /* RETRY_* bits, default connect_failure */
};

struct circuit_conf {
    unsigned failures;           /* consecutive, default 5; 0: never opens */
    uint64_t open_for;           /* ms, default 10s */
    unsigned half_open_requests; /* default 1 */
    unsigned max_connections;    /* per upstream, all workers, default 1024; 0: no cap */
    unsigned max_pending;        /* connections being opened, default 256; 0: no cap */
};

struct health_conf {
    bool enabled;
    char *path;         /* default "/healthz" */
    uint64_t interval;  /* ms, default 2s */
    uint64_t timeout;   /* ms, default 1s */
    unsigned healthy;   /* successes in a row that mark an endpoint up, default 2 */
    unsigned unhealthy; /* failures in a row that mark it down, default 3 */
};

struct upstream_conf {
    char *name;
    struct endpoint_conf *endpoints;
    size_t n_endpoints;
    enum balance balance;
    uint64_t connect_timeout; /* ms, default 1s */
    uint64_t timeout;         /* ms to the first response byte, default 30s */
    unsigned keepalive;       /* idle pooled connections per endpoint per worker, default 64 */
    struct retry_conf retries;
    struct circuit_conf circuit;
    struct health_conf health;
    enum request_key_kind hash_key; /* balance: hash; default ip */
    char *hash_key_arg;
    struct hash_ring ring;          /* balance: hash */
    bool tls_enabled;        /* `tls: true` */
    struct tls_context *tls; /* then: connections to the endpoints use TLS */
    char *sni;               /* server name sent and verified; default: the endpoint's host */
    bool tls_verify;         /* default true */
    char *tls_ca;            /* PEM bundle; default: the system's trust store */
    unsigned index;           /* position in config.upstreams */
    unsigned metrics_id;
};

struct jwt_provider; /* filters/jwt.h */

struct jwt_conf {
    char *name;
    struct jwt_provider *provider; /* keys loaded, claims rules set */
    char *token_header; /* also take the token from this header (raw token) */
    char *token_query;  /* ... or this query parameter */
    char *token_cookie; /* ... or this cookie */
    unsigned metrics_id;
};

enum ratelimit_backend { RL_BACKEND_LOCAL, RL_BACKEND_REDIS };

/* What a Redis-backed policy does when Redis cannot answer in time. */
enum redis_fallback { RL_FALLBACK_LOCAL, RL_FALLBACK_ALLOW, RL_FALLBACK_DENY };

struct ratelimit_conf {
    char *name;
    enum request_key_kind key;
    char *key_arg;      /* the claim or header name */
    double rate;        /* tokens per second */
    uint64_t burst;     /* bucket size */
    struct bucket_params bucket; /* rate and burst, ready for the arithmetic */
    enum ratelimit_backend backend;
    enum redis_fallback on_redis_error;
    unsigned metrics_id; /* also the bucket table's policy id */
};

/* The Redis server a fleet shares (`redis:`). */
struct redis_conf {
    char *address;            /* as written: host:port or unix:/path */
    char *host;               /* numeric, resolved at load; NULL for a socket path */
    int port;
    char *unix_path;          /* unix:/path */
    uint64_t timeout;         /* ms: a verdict later than this takes on_redis_error */
    uint64_t connect_timeout; /* ms */
};

#define ROUTE_MAX_RATE_LIMITS 8

struct schema; /* filters/schema.h */

struct schema_conf {
    char *name;
    struct schema *compiled; /* shared read-only by the workers */
    unsigned metrics_id;
};

#define METHOD_BIT(m) (1u << (m)) /* m: enum http_method */

/* A route's use of the shared cache (`cache: true`, or a mapping of its
 * defaults for responses that say nothing about serving stale). */
struct route_cache_conf {
    bool enabled;
    uint64_t stale_while_revalidate; /* ms; 0: only where the response allows it */
    uint64_t stale_if_error;         /* ms; 0: only where the response allows it */
};

/* The shared cache store (`cache:`): sized once, at start-up. */
struct cache_conf {
    uint64_t memory;     /* default 256MiB */
    uint64_t max_object; /* largest body stored, default 8MiB */
};

struct route_conf {
    char *host;         /* NULL: any host */
    bool host_wildcard; /* host was "*.suffix": host holds ".suffix" */
    char *prefix;       /* path prefix, default "/" */
    uint32_t methods;   /* METHOD_BIT set; 0: any method */
    struct upstream_conf *upstream; /* exactly one of upstream and static_root */
    char *static_root;  /* absolute, without a trailing slash */
    int static_root_fd; /* O_PATH descriptor of static_root (valid when it is set) */
    bool websocket;
    char **upgrades;    /* other Upgrade protocols tunnelled (e.g. "h2c"); NULL-terminated */
    const struct jwt_conf *jwt; /* NULL: no token needed */
    const struct schema_conf *schema; /* NULL: bodies not validated */
    const struct ratelimit_conf *rate_limits[ROUTE_MAX_RATE_LIMITS];
    size_t n_rate_limits;
    bool redis_limited; /* some of them live in Redis */
    struct route_cache_conf cache;
    char *name;         /* metrics label: "name:" key, else "route<N>" */
    unsigned metrics_id;
};

struct config {
    char *path;
    /* Set when the snapshot is replaced: workers still using it. The one
     * field that changes after publication. */
    _Atomic int retire_holds;
    unsigned workers; /* 0 in the file means one per CPU: resolved at load */
    char *user;       /* become this user after binding (when started as root) */
    uint64_t shutdown_timeout; /* ms, default 10s */
    struct limits_conf limits;
    char *access_log;       /* path, "-" (stdout) or NULL (off) */
    struct sockaddr_any admin;
    bool has_admin;
    char *admin_listen;
    struct listener_conf *listeners;
    size_t n_listeners;
    struct upstream_conf *upstreams;
    size_t n_upstreams;
    struct route_conf *routes;
    size_t n_routes;
    struct jwt_conf *jwt_providers;
    size_t n_jwt_providers;
    struct ratelimit_conf *rate_limits;
    size_t n_rate_limits;
    struct redis_conf redis;
    bool has_redis;
    struct schema_conf *schemas;
    size_t n_schemas;
    struct cache_conf cache;
};

static inline bool sockaddr_equal(const struct sockaddr_any *a, const struct sockaddr_any *b)
{
    return a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0;
}

/* The directory of a configuration file, absolute (realpath) when it
 * exists: what relative paths in it are relative to. Freed by the caller;
 * NULL when out of memory. */
char *config_base_dir(const char *config_path);

/* Loads and validates `path`. Returns the snapshot, or NULL with *errors
 * filled (count > 0). Names are resolved and static roots checked here, on
 * the calling (main) thread. */
struct config *config_load(const char *path, struct config_errors *errors);

/* Same, from text in memory; `path` names it in error lines. */
struct config *config_load_string(const char *path, const char *text, size_t len,
                                  struct config_errors *errors);

void config_free(struct config *cfg);

/* Names in addresses are not resolved, only numeric ones accepted: for the
 * fuzz target, where a DNS query per input would be slow. */
extern bool config_numeric_hosts_only;

/* Parses "host:port", "[v6]:port" or "*:port" into addr; names resolved
 * (blocking: for the main thread). 0 or -1 with a message in err. */
int config_parse_address(const char *text, struct sockaddr_any *addr, char *err,
                         size_t err_size);

#endif
