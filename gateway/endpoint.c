/* Shared endpoint and upstream state (atomics, no lock). */
#include "endpoint.h"

#include "metrics.h"

static struct breaker breakers[METRICS_MAX_ENDPOINTS];
static atomic_bool down[METRICS_MAX_ENDPOINTS];
static atomic_int connections[METRICS_MAX_UPSTREAMS];
static atomic_int pending[METRICS_MAX_UPSTREAMS];

struct breaker *endpoint_breaker(unsigned endpoint_id)
{
    return &breakers[endpoint_id];
}

bool endpoint_healthy(unsigned endpoint_id)
{
    return !atomic_load_explicit(&down[endpoint_id], memory_order_relaxed);
}

void endpoint_set_healthy(unsigned endpoint_id, bool healthy)
{
    atomic_store(&down[endpoint_id], !healthy);
}

bool upstream_connect_begin(const struct upstream_conf *u)
{
    unsigned id = u->metrics_id;
    int conns = atomic_fetch_add(&connections[id], 1);
    int connecting = atomic_fetch_add(&pending[id], 1);

    if ((u->circuit.max_connections && conns >= (int)u->circuit.max_connections) ||
        (u->circuit.max_pending && connecting >= (int)u->circuit.max_pending)) {
        atomic_fetch_sub(&connections[id], 1);
        atomic_fetch_sub(&pending[id], 1);
        return false;
    }
    return true;
}

void upstream_connect_end(unsigned upstream_id)
{
    atomic_fetch_sub(&pending[upstream_id], 1);
}

void upstream_connection_closed(unsigned upstream_id)
{
    atomic_fetch_sub(&connections[upstream_id], 1);
}
