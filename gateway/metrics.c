/* Per-worker counters and their Prometheus exposition. */
#include "metrics.h"

#include <pthread.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache_store.h"
#include "endpoint.h"
#include "jwt.h"
#include "proxy_cache.h"
#include "version.h"

counter_t metrics_reloads_ok, metrics_reloads_failed;

static const double bucket_bounds[METRICS_BUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,     10,
};

static const char *outcome_names[OUTCOME_COUNT] = {
    "success", "connect_failure", "timeout", "reset", "http_5xx", "invalid",
};

static const char *cache_outcome_names[CACHE_OUTCOME_COUNT] = {
    "hit", "miss", "stale", "bypass", "revalidated",
};

/* ---- ids by name ---- */

struct registry {
    char *names[METRICS_MAX_ENDPOINTS];
    unsigned count, max;
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct registry listener_ids = {.max = METRICS_MAX_LISTENERS};
static struct registry route_ids = {.count = 1, .max = METRICS_MAX_ROUTES}; /* 0: none */
static struct registry upstream_ids = {.max = METRICS_MAX_UPSTREAMS};
static struct registry endpoint_ids = {.max = METRICS_MAX_ENDPOINTS}; /* "upstream endpoint" */
static struct registry provider_ids = {.max = METRICS_MAX_PROVIDERS};
static struct registry policy_ids = {.max = METRICS_MAX_POLICIES};
static struct registry schema_ids = {.max = METRICS_MAX_SCHEMAS};

static unsigned id_of(struct registry *r, const char *name)
{
    for (unsigned i = 0; i < r->count; i++)
        if (r->names[i] && strcmp(r->names[i], name) == 0)
            return i;
    if (r->count == r->max)
        return r->max - 1; /* the last id is shared by the overflow */
    r->names[r->count] = strdup(r->count == r->max - 1 ? "other" : name);
    return r->count++;
}

void metrics_register(struct config *cfg)
{
    char key[512];

    pthread_mutex_lock(&registry_lock);
    for (size_t i = 0; i < cfg->n_listeners; i++)
        cfg->listeners[i].metrics_id = id_of(&listener_ids, cfg->listeners[i].name);
    for (size_t i = 0; i < cfg->n_routes; i++)
        cfg->routes[i].metrics_id = id_of(&route_ids, cfg->routes[i].name);
    for (size_t i = 0; i < cfg->n_schemas; i++)
        cfg->schemas[i].metrics_id = id_of(&schema_ids, cfg->schemas[i].name);
    for (size_t i = 0; i < cfg->n_rate_limits; i++)
        cfg->rate_limits[i].metrics_id = id_of(&policy_ids, cfg->rate_limits[i].name);
    for (size_t i = 0; i < cfg->n_jwt_providers; i++)
        cfg->jwt_providers[i].metrics_id = id_of(&provider_ids, cfg->jwt_providers[i].name);
    for (size_t i = 0; i < cfg->n_upstreams; i++) {
        struct upstream_conf *u = &cfg->upstreams[i];

        u->metrics_id = id_of(&upstream_ids, u->name);
        for (size_t e = 0; e < u->n_endpoints; e++) {
            snprintf(key, sizeof(key), "%s %s", u->name, u->endpoints[e].text);
            u->endpoints[e].metrics_id = id_of(&endpoint_ids, key);
        }
    }
    pthread_mutex_unlock(&registry_lock);
}

static void observe(struct histogram *h, uint64_t us)
{
    size_t i = 0;

    while (i < METRICS_BUCKETS && (double)us > bucket_bounds[i] * 1e6)
        i++;
    counter_add(&h->buckets[i], 1);
    counter_add(&h->count, 1);
    counter_add(&h->sum_us, us);
}

static uint64_t request_key(unsigned listener, unsigned route, int status)
{
    return ((uint64_t)(listener + 1) << 32) | ((uint64_t)route << 12) | (uint64_t)status;
}

void metrics_request(struct worker_metrics *m, const struct listener_conf *l,
                     const struct route_conf *r, int status, uint64_t duration_us)
{
    unsigned route = r ? r->metrics_id : 0;
    uint64_t key = request_key(l->metrics_id, route, status);
    size_t i = (size_t)((key * 0x9E3779B97F4A7C15ULL) >> 52) % METRICS_REQUEST_SLOTS;

    for (size_t probes = 0; probes < METRICS_REQUEST_SLOTS; probes++) {
        struct request_slot *slot = &m->requests[i];
        uint64_t k = atomic_load_explicit(&slot->key, memory_order_relaxed);

        if (k == 0) /* published before its count: a reader sees the key first */
            atomic_store_explicit(&slot->key, k = key, memory_order_release);
        if (k == key) {
            counter_add(&slot->count, 1);
            break;
        }
        i = (i + 1) % METRICS_REQUEST_SLOTS;
        if (probes + 1 == METRICS_REQUEST_SLOTS)
            counter_add(&m->requests_dropped, 1);
    }
    observe(&m->req_latency[route], duration_us);
}

void metrics_upstream(struct worker_metrics *m, const struct upstream_conf *u, unsigned endpoint,
                      enum upstream_outcome outcome, uint64_t duration_us)
{
    counter_add(&m->upstream_requests[u->endpoints[endpoint].metrics_id][outcome], 1);
    if (outcome == OUTCOME_SUCCESS || outcome == OUTCOME_HTTP_5XX)
        observe(&m->up_latency[u->metrics_id], duration_us);
}

void metrics_schema_rejected(struct worker_metrics *m, unsigned schema_id)
{
    counter_add(&m->schema_rejected[schema_id], 1);
}

void metrics_ratelimit_rejected(struct worker_metrics *m, unsigned policy_id)
{
    counter_add(&m->ratelimit_rejected[policy_id], 1);
}

void metrics_ratelimit_backend_error(struct worker_metrics *m, unsigned policy_id)
{
    counter_add(&m->ratelimit_backend_errors[policy_id], 1);
}

void metrics_jwt_rejected(struct worker_metrics *m, unsigned provider_id, int reason)
{
    if (reason > 0 && reason < METRICS_JWT_REASONS)
        counter_add(&m->jwt_rejected[provider_id][reason], 1);
}

void metrics_cache_request(struct worker_metrics *m, enum cache_outcome outcome)
{
    counter_add(&m->cache_requests[outcome], 1);
}

void metrics_conn_opened(struct worker_metrics *m, unsigned listener_id)
{
    counter_add(&m->conns_opened[listener_id], 1);
}

void metrics_conn_closed(struct worker_metrics *m, unsigned listener_id)
{
    counter_add(&m->conns_closed[listener_id], 1);
}

void metrics_tunnel_opened(struct worker_metrics *m, unsigned listener_id)
{
    counter_add(&m->tunnels_opened[listener_id], 1);
}

void metrics_tunnel_closed(struct worker_metrics *m, unsigned listener_id)
{
    counter_add(&m->tunnels_closed[listener_id], 1);
}

/* ---- exposition ---- */

struct out {
    char *p;
    size_t len, cap;
    int failed;
};

static void emit(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void emit(struct out *o, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (o->failed)
        return;
    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            o->failed = 1;
            return;
        }
        if ((size_t)n < o->cap - o->len)
            break;
        char *bigger = realloc(o->p, o->cap * 2 + (size_t)n);
        if (!bigger) {
            o->failed = 1;
            return;
        }
        o->p = bigger;
        o->cap = o->cap * 2 + (size_t)n;
    }
    o->len += (size_t)n;
}

static uint64_t get(const counter_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

typedef const struct histogram *(*histogram_pick)(const struct worker_metrics *m, size_t index);

static const struct histogram *pick_request(const struct worker_metrics *m, size_t index)
{
    return &m->req_latency[index];
}

static const struct histogram *pick_upstream(const struct worker_metrics *m, size_t index)
{
    return &m->up_latency[index];
}

/* One histogram series, summed over the workers. */
static void emit_histogram(struct out *o, const char *name, const char *label, const char *value,
                           struct worker_metrics *const *w, size_t n, histogram_pick pick,
                           size_t index)
{
    uint64_t cumulative = 0, count = 0, sum = 0;

    for (size_t b = 0; b <= METRICS_BUCKETS; b++) {
        for (size_t i = 0; i < n; i++) {
            cumulative += get(&pick(w[i], index)->buckets[b]);
        }
        if (b < METRICS_BUCKETS)
            emit(o, "%s_bucket{%s=\"%s\",le=\"%g\"} %llu\n", name, label, value, bucket_bounds[b],
                 (unsigned long long)cumulative);
        else
            emit(o, "%s_bucket{%s=\"%s\",le=\"+Inf\"} %llu\n", name, label, value,
                 (unsigned long long)cumulative);
    }
    for (size_t i = 0; i < n; i++) {
        const struct histogram *h = pick(w[i], index);
        count += get(&h->count);
        sum += get(&h->sum_us);
    }
    emit(o, "%s_sum{%s=\"%s\"} %.6f\n", name, label, value, (double)sum / 1e6);
    emit(o, "%s_count{%s=\"%s\"} %llu\n", name, label, value, (unsigned long long)count);
}

#define NO_SUBTRAHEND ((size_t)-1)

/* A counter or gauge per registered name (listener, policy, schema...),
 * summed over the workers: the counters at `plus` (an array by id in
 * struct worker_metrics), minus those at `minus` for a gauge of things
 * opened and closed. */
static void emit_per_id(struct out *o, struct worker_metrics *const *w, size_t n,
                        const char *name, const char *type, const char *help,
                        const struct registry *ids, const char *label, size_t plus, size_t minus)
{
    emit(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    for (unsigned id = 0; id < ids->count; id++) {
        int64_t sum = 0;
        for (size_t i = 0; i < n; i++) {
            const char *base = (const char *)w[i];
            sum += (int64_t)get((const counter_t *)(base + plus) + id);
            if (minus != NO_SUBTRAHEND)
                sum -= (int64_t)get((const counter_t *)(base + minus) + id);
        }
        emit(o, "%s{%s=\"%s\"} %lld\n", name, label, ids->names[id], (long long)sum);
    }
}

static void emit_per_listener(struct out *o, struct worker_metrics *const *w, size_t n,
                              const char *name, const char *type, const char *help, size_t plus,
                              size_t minus)
{
    emit_per_id(o, w, n, name, type, help, &listener_ids, "listener", plus, minus);
}

struct series {
    uint64_t key;
    uint64_t count;
};

static int series_cmp(const void *a, const void *b)
{
    uint64_t x = ((const struct series *)a)->key, y = ((const struct series *)b)->key;

    return x < y ? -1 : x > y;
}

static void render_requests(struct out *o, struct worker_metrics *const *w, size_t n)
{
    struct series *all = malloc(sizeof(*all) * METRICS_REQUEST_SLOTS * n);
    size_t count = 0;

    emit(o, "# HELP ringgate_requests_total Requests answered, by listener, route and status.\n"
            "# TYPE ringgate_requests_total counter\n");
    if (!all) {
        o->failed = 1;
        return;
    }
    for (size_t i = 0; i < n; i++)
        for (size_t s = 0; s < METRICS_REQUEST_SLOTS; s++) {
            const struct request_slot *slot = &w[i]->requests[s];
            uint64_t key = atomic_load_explicit(&slot->key, memory_order_acquire);
            if (key)
                all[count++] = (struct series){key, get(&slot->count)};
        }
    qsort(all, count, sizeof(*all), series_cmp);
    for (size_t i = 0; i < count;) {
        uint64_t key = all[i].key, sum = 0;
        unsigned listener = (unsigned)(key >> 32) - 1, route = (unsigned)(key >> 12) & 0xfffff;

        for (; i < count && all[i].key == key; i++)
            sum += all[i].count;
        emit(o, "ringgate_requests_total{listener=\"%s\",route=\"%s\",code=\"%u\"} %llu\n",
             listener_ids.names[listener], route ? route_ids.names[route] : "none",
             (unsigned)(key & 0xfff), (unsigned long long)sum);
    }
    free(all);
    emit(o, "# HELP ringgate_request_duration_seconds Time from request head to the last "
            "byte of the answer.\n# TYPE ringgate_request_duration_seconds histogram\n");
    for (unsigned r = 0; r < route_ids.count; r++)
        emit_histogram(o, "ringgate_request_duration_seconds", "route",
                       r ? route_ids.names[r] : "none", w, n, pick_request, r);
    emit_per_listener(o, w, n, "ringgate_connections_active", "gauge",
                      "Client connections open now.", offsetof(struct worker_metrics, conns_opened),
                      offsetof(struct worker_metrics, conns_closed));
    emit_per_listener(o, w, n, "ringgate_connections_refused_total", "counter",
                      "Connections closed at accept: over max_connections.",
                      offsetof(struct worker_metrics, conns_refused), NO_SUBTRAHEND);
    emit_per_listener(o, w, n, "ringgate_tunnels_active", "gauge",
                      "WebSocket (upgraded) tunnels open now.",
                      offsetof(struct worker_metrics, tunnels_opened),
                      offsetof(struct worker_metrics, tunnels_closed));
    emit_per_listener(o, w, n, "ringgate_tls_handshake_failures_total", "counter",
                      "TLS handshakes that failed.", offsetof(struct worker_metrics, tls_failures),
                      NO_SUBTRAHEND);
    emit_per_listener(o, w, n, "ringgate_tls_plaintext_requests_total", "counter",
                      "Plain HTTP sent to a TLS port.",
                      offsetof(struct worker_metrics, tls_plaintext), NO_SUBTRAHEND);
    uint64_t up = 0, down = 0;
    for (size_t i = 0; i < n; i++) {
        up += get(&w[i]->tunnel_bytes[TUNNEL_UP]);
        down += get(&w[i]->tunnel_bytes[TUNNEL_DOWN]);
    }
    emit(o,
         "# HELP ringgate_tunnel_bytes_total Bytes relayed through tunnels, by direction.\n"
         "# TYPE ringgate_tunnel_bytes_total counter\n"
         "ringgate_tunnel_bytes_total{direction=\"upstream\"} %llu\n"
         "ringgate_tunnel_bytes_total{direction=\"downstream\"} %llu\n",
         (unsigned long long)up, (unsigned long long)down);
}

static void render_upstreams(struct out *o, struct worker_metrics *const *w, size_t n)
{
    emit(o, "# HELP ringgate_upstream_requests_total Attempts to upstream endpoints, by "
            "outcome.\n# TYPE ringgate_upstream_requests_total counter\n");
    for (unsigned e = 0; e < endpoint_ids.count; e++) {
        const char *space = strchr(endpoint_ids.names[e], ' ');
        int ulen = space ? (int)(space - endpoint_ids.names[e]) : 0;
        const char *endpoint = space ? space + 1 : endpoint_ids.names[e];

        for (size_t k = 0; k < OUTCOME_COUNT; k++) {
            uint64_t sum = 0;
            for (size_t i = 0; i < n; i++)
                sum += get(&w[i]->upstream_requests[e][k]);
            emit(o,
                 "ringgate_upstream_requests_total{upstream=\"%.*s\",endpoint=\"%s\","
                 "outcome=\"%s\"} %llu\n",
                 ulen, endpoint_ids.names[e], endpoint, outcome_names[k],
                 (unsigned long long)sum);
        }
    }
    emit(o, "# HELP ringgate_circuit_breaker_state Circuit breaker per endpoint: 0 closed, "
            "1 half-open, 2 open.\n# TYPE ringgate_circuit_breaker_state gauge\n");
    for (unsigned e = 0; e < endpoint_ids.count; e++) {
        const char *space = strchr(endpoint_ids.names[e], ' ');
        emit(o, "ringgate_circuit_breaker_state{upstream=\"%.*s\",endpoint=\"%s\"} %d\n",
             space ? (int)(space - endpoint_ids.names[e]) : 0, endpoint_ids.names[e],
             space ? space + 1 : endpoint_ids.names[e],
             (int)breaker_state(endpoint_breaker(e)));
    }
    emit(o, "# HELP ringgate_endpoint_healthy Active health check verdict per endpoint.\n"
            "# TYPE ringgate_endpoint_healthy gauge\n");
    for (unsigned e = 0; e < endpoint_ids.count; e++) {
        const char *space = strchr(endpoint_ids.names[e], ' ');
        emit(o, "ringgate_endpoint_healthy{upstream=\"%.*s\",endpoint=\"%s\"} %d\n",
             space ? (int)(space - endpoint_ids.names[e]) : 0, endpoint_ids.names[e],
             space ? space + 1 : endpoint_ids.names[e], endpoint_healthy(e) ? 1 : 0);
    }
    emit(o, "# HELP ringgate_upstream_duration_seconds Time from sending a request upstream "
            "to its response head.\n# TYPE ringgate_upstream_duration_seconds histogram\n");
    for (unsigned u = 0; u < upstream_ids.count; u++)
        emit_histogram(o, "ringgate_upstream_duration_seconds", "upstream", upstream_ids.names[u],
                       w, n, pick_upstream, u);
}

static void render_jwt(struct out *o, struct worker_metrics *const *w, size_t n)
{
    emit(o, "# HELP ringgate_jwt_rejected_total Requests refused by a JWT provider, by "
            "reason.\n# TYPE ringgate_jwt_rejected_total counter\n");
    for (unsigned p = 0; p < provider_ids.count; p++)
        for (int r = 1; r < JWT_RESULT_COUNT && r < METRICS_JWT_REASONS; r++) {
            uint64_t sum = 0;
            for (size_t i = 0; i < n; i++)
                sum += get(&w[i]->jwt_rejected[p][r]);
            emit(o, "ringgate_jwt_rejected_total{provider=\"%s\",reason=\"%s\"} %llu\n",
                 provider_ids.names[p], jwt_reason_name(r), (unsigned long long)sum);
        }
}

static void render_ratelimit(struct out *o, struct worker_metrics *const *w, size_t n)
{
    emit_per_id(o, w, n, "ringgate_ratelimit_rejected_total", "counter",
                "Requests refused with 429, by policy.", &policy_ids, "policy",
                offsetof(struct worker_metrics, ratelimit_rejected), NO_SUBTRAHEND);
    emit_per_id(o, w, n, "ringgate_schema_rejected_total", "counter",
                "Request bodies refused by a schema (or not JSON).", &schema_ids, "schema",
                offsetof(struct worker_metrics, schema_rejected), NO_SUBTRAHEND);
    emit_per_id(o, w, n, "ringgate_ratelimit_backend_errors_total", "counter",
                "Verdicts Redis failed to give in time (on_redis_error decided), by policy.",
                &policy_ids, "policy", offsetof(struct worker_metrics, ratelimit_backend_errors),
                NO_SUBTRAHEND);
}

static uint64_t sum_over(struct worker_metrics *const *w, size_t n, size_t field)
{
    uint64_t sum = 0;

    for (size_t i = 0; i < n; i++)
        sum += get((const counter_t *)((const char *)w[i] + field));
    return sum;
}

static void render_overload(struct out *o, struct worker_metrics *const *w, size_t n)
{
    emit(o,
         "# HELP ringgate_memory_bytes Memory held by client and upstream connections "
         "(buffers, connection state), all workers: what limits.max_memory bounds.\n"
         "# TYPE ringgate_memory_bytes gauge\n"
         "ringgate_memory_bytes %llu\n"
         "# HELP ringgate_overload_shed_total Load shed for want of memory: requests answered "
         "503, idle connections closed.\n"
         "# TYPE ringgate_overload_shed_total counter\n"
         "ringgate_overload_shed_total{action=\"request\"} %llu\n"
         "ringgate_overload_shed_total{action=\"idle_connection\"} %llu\n",
         (unsigned long long)sum_over(w, n, offsetof(struct worker_metrics, memory_bytes)),
         (unsigned long long)sum_over(w, n, offsetof(struct worker_metrics, shed_requests)),
         (unsigned long long)sum_over(w, n, offsetof(struct worker_metrics, shed_connections)));
}

static void render_cache(struct out *o, struct worker_metrics *const *w, size_t n)
{
    struct cache_store *store = proxy_cache_store();
    struct cache_stats st = {0};

    emit(o, "# HELP ringgate_cache_requests_total Requests on cache routes, by what the cache "
            "did.\n# TYPE ringgate_cache_requests_total counter\n");
    for (size_t r = 0; r < CACHE_OUTCOME_COUNT; r++)
        emit(o, "ringgate_cache_requests_total{result=\"%s\"} %llu\n", cache_outcome_names[r],
             (unsigned long long)sum_over(
                 w, n, offsetof(struct worker_metrics, cache_requests) + r * sizeof(counter_t)));
    if (store)
        cache_store_stats(store, &st);
    emit(o,
         "# HELP ringgate_cache_bytes Memory the cache holds (objects, keys, bookkeeping), "
         "bounded by cache.memory.\n# TYPE ringgate_cache_bytes gauge\nringgate_cache_bytes %zu\n"
         "# HELP ringgate_cache_keys URLs stored (each with its Vary variants).\n"
         "# TYPE ringgate_cache_keys gauge\nringgate_cache_keys %zu\n",
         st.bytes, st.keys);
}

char *metrics_render(struct worker_metrics *const *workers, size_t n_workers, size_t *len)
{
    struct out o = {.p = malloc(65536), .cap = 65536};

    if (!o.p)
        return NULL;
    o.p[0] = '\0';
    emit(&o,
         "# HELP ringgate_build_info Version and TLS library of this binary.\n"
         "# TYPE ringgate_build_info gauge\n"
         "ringgate_build_info{version=\"%s\",tls=\"%s\"} 1\n",
         ringgate_version(), ringgate_tls_library());
    emit(&o,
         "# HELP ringgate_config_reloads_total Configuration reloads, by result.\n"
         "# TYPE ringgate_config_reloads_total counter\n"
         "ringgate_config_reloads_total{result=\"success\"} %llu\n"
         "ringgate_config_reloads_total{result=\"failure\"} %llu\n",
         (unsigned long long)get(&metrics_reloads_ok),
         (unsigned long long)get(&metrics_reloads_failed));
    pthread_mutex_lock(&registry_lock);
    render_jwt(&o, workers, n_workers);
    render_ratelimit(&o, workers, n_workers);
    render_requests(&o, workers, n_workers);
    render_upstreams(&o, workers, n_workers);
    render_overload(&o, workers, n_workers);
    render_cache(&o, workers, n_workers);
    pthread_mutex_unlock(&registry_lock);
    if (o.failed) {
        free(o.p);
        return NULL;
    }
    *len = o.len;
    return o.p;
}
