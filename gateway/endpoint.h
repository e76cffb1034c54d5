/* What all workers share about an upstream endpoint, and keep across
 * reloads: its circuit breaker and its health. Indexed by the endpoint's
 * metrics id (same upstream and endpoint names, same state). Upstream-wide
 * connection counts for max_connections / max_pending are indexed by the
 * upstream's metrics id. */
#ifndef RINGGATE_ENDPOINT_H
#define RINGGATE_ENDPOINT_H

#include <stdatomic.h>
#include <stdbool.h>

#include "breaker.h"
#include "config.h"

struct breaker *endpoint_breaker(unsigned endpoint_id);

/* Active health checks: false once `unhealthy` checks in a row failed,
 * true again after `healthy` successes. Every endpoint starts healthy. */
bool endpoint_healthy(unsigned endpoint_id);
void endpoint_set_healthy(unsigned endpoint_id, bool healthy);

/* Open connections and connects in progress to an upstream (by metrics
 * id), all workers. upstream_connect_begin fails, counting nothing, at the
 * circuit_breaker limits max_connections and max_pending. */
bool upstream_connect_begin(const struct upstream_conf *u);
void upstream_connect_end(unsigned upstream_id);       /* connected, or failed to */
void upstream_connection_closed(unsigned upstream_id); /* after a begin */

static inline struct breaker_params breaker_params_of(const struct upstream_conf *u)
{
    return (struct breaker_params){.failures = u->circuit.failures,
                                   .open_for = u->circuit.open_for,
                                   .half_open_requests = u->circuit.half_open_requests};
}

#endif
