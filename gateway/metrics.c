/* Per-worker counters and their Prometheus exposition. */
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "version.h"

counter_t metrics_reloads_ok, metrics_reloads_failed;

static const double bucket_bounds[METRICS_BUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,     10,
};

static const char *outcome_names[OUTCOME_COUNT] = {
    "success", "connect_failure", "timeout", "reset", "http_5xx", "invalid",
};

int metrics_init(struct worker_metrics *m, const struct config *cfg)
{
    size_t routes = cfg->n_routes + 1, slots = 0;

    memset(m, 0, sizeof(*m));
    m->cfg = cfg;
    m->endpoint_base = calloc(cfg->n_upstreams + 1, sizeof(size_t));
    for (size_t i = 0; m->endpoint_base && i < cfg->n_upstreams; i++) {
        m->endpoint_base[i] = slots;
        slots += cfg->upstreams[i].n_endpoints;
    }
    m->n_endpoint_slots = slots;
    m->requests = calloc(cfg->n_listeners * routes * METRICS_STATUSES, sizeof(counter_t));
    m->req_latency = calloc(routes, sizeof(struct histogram));
    m->conns_opened = calloc(cfg->n_listeners, sizeof(counter_t));
    m->conns_closed = calloc(cfg->n_listeners, sizeof(counter_t));
    m->upstream_requests = calloc(slots * OUTCOME_COUNT + 1, sizeof(counter_t));
    m->up_latency = calloc(cfg->n_upstreams + 1, sizeof(struct histogram));
    if (!m->endpoint_base || !m->requests || !m->req_latency || !m->conns_opened ||
        !m->conns_closed || !m->upstream_requests || !m->up_latency) {
        metrics_destroy(m);
        return -1;
    }
    return 0;
}

void metrics_destroy(struct worker_metrics *m)
{
    free(m->requests);
    free(m->req_latency);
    free(m->conns_opened);
    free(m->conns_closed);
    free(m->upstream_requests);
    free(m->up_latency);
    free(m->endpoint_base);
    memset(m, 0, sizeof(*m));
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

static size_t route_index(const struct worker_metrics *m, const struct route_conf *r)
{
    return r ? (size_t)(r - m->cfg->routes) : m->cfg->n_routes;
}

void metrics_request(struct worker_metrics *m, const struct listener_conf *l,
                     const struct route_conf *r, int status, uint64_t duration_us)
{
    size_t li = (size_t)(l - m->cfg->listeners), ri = route_index(m, r);

    if (status < 100 || status > 599)
        status = 599;
    counter_add(&m->requests[(li * (m->cfg->n_routes + 1) + ri) * METRICS_STATUSES +
                             (size_t)(status - 100)],
                1);
    observe(&m->req_latency[ri], duration_us);
}

void metrics_upstream(struct worker_metrics *m, const struct upstream_conf *u, unsigned endpoint,
                      enum upstream_outcome outcome, uint64_t duration_us)
{
    size_t slot = m->endpoint_base[u->index] + endpoint;

    counter_add(&m->upstream_requests[slot * OUTCOME_COUNT + outcome], 1);
    if (outcome == OUTCOME_SUCCESS || outcome == OUTCOME_HTTP_5XX)
        observe(&m->up_latency[u->index], duration_us);
}

void metrics_conn_opened(struct worker_metrics *m, const struct listener_conf *l)
{
    counter_add(&m->conns_opened[l - m->cfg->listeners], 1);
}

void metrics_conn_closed(struct worker_metrics *m, const struct listener_conf *l)
{
    counter_add(&m->conns_closed[l - m->cfg->listeners], 1);
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

static const char *route_name(const struct config *cfg, size_t ri)
{
    return ri < cfg->n_routes ? cfg->routes[ri].name : "none";
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

static void render_requests(struct out *o, struct worker_metrics *const *w, size_t n)
{
    const struct config *cfg = w[0]->cfg;
    size_t routes = cfg->n_routes + 1;

    emit(o, "# HELP ringgate_requests_total Requests answered, by listener, route and status.\n"
            "# TYPE ringgate_requests_total counter\n");
    for (size_t li = 0; li < cfg->n_listeners; li++)
        for (size_t ri = 0; ri < routes; ri++)
            for (size_t s = 0; s < METRICS_STATUSES; s++) {
                uint64_t sum = 0;
                for (size_t i = 0; i < n; i++)
                    sum += get(&w[i]->requests[(li * routes + ri) * METRICS_STATUSES + s]);
                if (sum)
                    emit(o,
                         "ringgate_requests_total{listener=\"%s\",route=\"%s\",code=\"%zu\"} "
                         "%llu\n",
                         cfg->listeners[li].name, route_name(cfg, ri), s + 100,
                         (unsigned long long)sum);
            }
    emit(o, "# HELP ringgate_request_duration_seconds Time from request head to the last "
            "byte of the answer.\n# TYPE ringgate_request_duration_seconds histogram\n");
    for (size_t ri = 0; ri < routes; ri++)
        emit_histogram(o, "ringgate_request_duration_seconds", "route", route_name(cfg, ri), w, n,
                       pick_request, ri);
    emit(o, "# HELP ringgate_connections_active Client connections open now.\n"
            "# TYPE ringgate_connections_active gauge\n");
    for (size_t li = 0; li < cfg->n_listeners; li++) {
        uint64_t opened = 0, closed = 0;
        for (size_t i = 0; i < n; i++) {
            opened += get(&w[i]->conns_opened[li]);
            closed += get(&w[i]->conns_closed[li]);
        }
        emit(o, "ringgate_connections_active{listener=\"%s\"} %llu\n", cfg->listeners[li].name,
             (unsigned long long)(opened - closed));
    }
}

static void render_upstreams(struct out *o, struct worker_metrics *const *w, size_t n)
{
    const struct config *cfg = w[0]->cfg;

    emit(o, "# HELP ringgate_upstream_requests_total Attempts to upstream endpoints, by "
            "outcome.\n# TYPE ringgate_upstream_requests_total counter\n");
    for (size_t u = 0; u < cfg->n_upstreams; u++)
        for (size_t e = 0; e < cfg->upstreams[u].n_endpoints; e++)
            for (size_t k = 0; k < OUTCOME_COUNT; k++) {
                uint64_t sum = 0;
                for (size_t i = 0; i < n; i++)
                    sum += get(&w[i]->upstream_requests[(w[i]->endpoint_base[u] + e) *
                                                            OUTCOME_COUNT +
                                                        k]);
                emit(o,
                     "ringgate_upstream_requests_total{upstream=\"%s\",endpoint=\"%s\","
                     "outcome=\"%s\"} %llu\n",
                     cfg->upstreams[u].name, cfg->upstreams[u].endpoints[e].text,
                     outcome_names[k], (unsigned long long)sum);
            }
    emit(o, "# HELP ringgate_upstream_duration_seconds Time from sending a request upstream "
            "to its response head.\n# TYPE ringgate_upstream_duration_seconds histogram\n");
    for (size_t u = 0; u < cfg->n_upstreams; u++)
        emit_histogram(o, "ringgate_upstream_duration_seconds", "upstream", cfg->upstreams[u].name,
                       w, n, pick_upstream, u);
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
    if (n_workers) {
        render_requests(&o, workers, n_workers);
        render_upstreams(&o, workers, n_workers);
    }
    if (o.failed) {
        free(o.p);
        return NULL;
    }
    *len = o.len;
    return o.p;
}
