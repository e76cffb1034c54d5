/* Metrics: plain per-worker counters, written only by their worker (no
 * lock, no atomic read-modify-write on the hot path), summed by the admin
 * thread at scrape time into the Prometheus text format 0.0.4. */
#ifndef RINGGATE_METRICS_H
#define RINGGATE_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define METRICS_BUCKETS 16 /* 100us .. 10s, plus +Inf */
#define METRICS_STATUSES 500 /* 100..599 */

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

/* A worker's counters, laid out for one configuration snapshot. */
struct worker_metrics {
    const struct config *cfg;
    counter_t *requests;           /* [listener][route or none][status] */
    struct histogram *req_latency; /* [route or none] */
    counter_t *conns_opened;       /* [listener] */
    counter_t *conns_closed;       /* [listener] */
    counter_t *upstream_requests;  /* [endpoint slot][outcome] */
    struct histogram *up_latency;  /* [upstream] */
    size_t *endpoint_base;         /* [upstream]: first endpoint slot */
    size_t n_endpoint_slots;
};

int metrics_init(struct worker_metrics *m, const struct config *cfg);
void metrics_destroy(struct worker_metrics *m);

/* route: NULL when no route matched. */
void metrics_request(struct worker_metrics *m, const struct listener_conf *l,
                     const struct route_conf *r, int status, uint64_t duration_us);
void metrics_upstream(struct worker_metrics *m, const struct upstream_conf *u, unsigned endpoint,
                      enum upstream_outcome outcome, uint64_t duration_us);
void metrics_conn_opened(struct worker_metrics *m, const struct listener_conf *l);
void metrics_conn_closed(struct worker_metrics *m, const struct listener_conf *l);

/* Process-wide counters kept by the main thread. */
extern counter_t metrics_reloads_ok, metrics_reloads_failed;

/* Writes the exposition of all workers' metrics (same configuration) into
 * a malloc'd string; *len set. NULL on allocation failure. */
char *metrics_render(struct worker_metrics *const *workers, size_t n_workers, size_t *len);

#endif
