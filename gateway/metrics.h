/* Metrics: plain per-worker counters, written only by their worker (no
 * lock, no atomic read-modify-write on the hot path), summed by the admin
 * thread at scrape time into the Prometheus text format 0.0.4.
 *
 * Counters are indexed by ids that the main thread gives to listeners,
 * routes, upstreams and endpoints by name (metrics_register): the same
 * name keeps its id, and its counts, across configuration reloads. */
#ifndef RINGGATE_METRICS_H
#define RINGGATE_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define METRICS_BUCKETS 16 /* 100us .. 10s, plus +Inf */
#define METRICS_MAX_LISTENERS 64
#define METRICS_MAX_ROUTES 512 /* id 0: no route matched */
#define METRICS_MAX_UPSTREAMS 128
#define METRICS_MAX_ENDPOINTS 1024
#define METRICS_MAX_PROVIDERS 64
#define METRICS_MAX_POLICIES 256
#define METRICS_MAX_SCHEMAS 256
#define METRICS_JWT_REASONS 16 /* enum jwt_result */
#define METRICS_REQUEST_SLOTS 4096 /* (listener, route, status) series per worker */

enum upstream_outcome {
    OUTCOME_SUCCESS,
    OUTCOME_CONNECT_FAILURE,
    OUTCOME_TIMEOUT,
    OUTCOME_RESET,
    OUTCOME_HTTP_5XX,
    OUTCOME_INVALID,
    OUTCOME_COUNT,
};

/* One writer (its worker); readers see each value whole. */
typedef _Atomic uint64_t counter_t;

static inline void counter_add(counter_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

struct histogram {
    counter_t buckets[METRICS_BUCKETS + 1];
    counter_t count;
    counter_t sum_us;
};

struct request_slot {
    _Atomic uint64_t key; /* listener id, route id, status; 0 = free */
    counter_t count;
};

enum tunnel_direction { TUNNEL_UP, TUNNEL_DOWN }; /* client->origin, origin->client */

/* ringgate_cache_requests_total{result}: one per request on a cache route. */
enum cache_outcome {
    CACHE_OUTCOME_HIT,         /* answered from the cache, the origin not asked */
    CACHE_OUTCOME_MISS,        /* forwarded, the answer may be stored */
    CACHE_OUTCOME_STALE,       /* answered stale (while revalidating, or on an origin error) */
    CACHE_OUTCOME_BYPASS,      /* not for the cache: method, no-store, upgrade, body */
    CACHE_OUTCOME_REVALIDATED, /* the origin confirmed the stored answer (304) */
    CACHE_OUTCOME_COUNT,
};

struct worker_metrics {
    struct request_slot requests[METRICS_REQUEST_SLOTS];
    counter_t requests_dropped; /* table full */
    struct histogram req_latency[METRICS_MAX_ROUTES];
    counter_t conns_opened[METRICS_MAX_LISTENERS];
    counter_t conns_closed[METRICS_MAX_LISTENERS];
    counter_t conns_refused[METRICS_MAX_LISTENERS]; /* over max_connections */
    counter_t tunnels_opened[METRICS_MAX_LISTENERS];
    counter_t tunnels_closed[METRICS_MAX_LISTENERS];
    counter_t tunnel_bytes[2]; /* enum tunnel_direction */
    counter_t tls_failures[METRICS_MAX_LISTENERS];  /* handshakes that failed */
    counter_t tls_plaintext[METRICS_MAX_LISTENERS]; /* plain HTTP sent to a TLS port */
    counter_t jwt_rejected[METRICS_MAX_PROVIDERS][METRICS_JWT_REASONS];
    counter_t ratelimit_rejected[METRICS_MAX_POLICIES];
    counter_t ratelimit_backend_errors[METRICS_MAX_POLICIES];
    counter_t memory_bytes;     /* a gauge: what the worker's connections hold */
    counter_t shed_requests;    /* 503s for want of memory */
    counter_t shed_connections; /* idle connections closed for want of memory */
    counter_t schema_rejected[METRICS_MAX_SCHEMAS];
    counter_t cache_requests[CACHE_OUTCOME_COUNT];
    counter_t upstream_requests[METRICS_MAX_ENDPOINTS][OUTCOME_COUNT];
    struct histogram up_latency[METRICS_MAX_UPSTREAMS];
};

/* Main thread, before a snapshot is published: sets the metrics_id of its
 * listeners, routes, upstreams and endpoints. Names beyond the limits
 * share a last "other" id. */
void metrics_register(struct config *cfg);

/* route: NULL when no route matched. */
void metrics_request(struct worker_metrics *m, const struct listener_conf *l,
                     const struct route_conf *r, int status, uint64_t duration_us);
void metrics_upstream(struct worker_metrics *m, const struct upstream_conf *u, unsigned endpoint,
                      enum upstream_outcome outcome, uint64_t duration_us);
void metrics_schema_rejected(struct worker_metrics *m, unsigned schema_id);
void metrics_ratelimit_rejected(struct worker_metrics *m, unsigned policy_id);
void metrics_ratelimit_backend_error(struct worker_metrics *m, unsigned policy_id);
void metrics_jwt_rejected(struct worker_metrics *m, unsigned provider_id, int reason);
void metrics_cache_request(struct worker_metrics *m, enum cache_outcome outcome);
void metrics_conn_opened(struct worker_metrics *m, unsigned listener_id);
void metrics_conn_closed(struct worker_metrics *m, unsigned listener_id);
void metrics_tunnel_opened(struct worker_metrics *m, unsigned listener_id);
void metrics_tunnel_closed(struct worker_metrics *m, unsigned listener_id);

/* Process-wide counters kept by the main thread. */
extern counter_t metrics_reloads_ok, metrics_reloads_failed;

/* The exposition of all workers' metrics, in a malloc'd string (*len set);
 * NULL on allocation failure. Safe from any thread. */
char *metrics_render(struct worker_metrics *const *workers, size_t n_workers, size_t *len);

#endif
