/* Active health checks: one thread that sends `GET health_check.path` to
 * every endpoint of upstreams that configure it, every `interval`, and
 * marks endpoints down after `unhealthy` failures in a row and up again
 * after `healthy` successes (endpoint.h). Blocking I/O, bounded by
 * `timeout`, on its own thread: the workers never wait for it. */
#ifndef RINGGATE_HEALTH_H
#define RINGGATE_HEALTH_H

#include "config.h"

/* The endpoints to check, from a snapshot (copied: the snapshot may go
 * away). Called by the main thread at start and after each reload. */
int health_configure(const struct config *cfg);
int health_start(void);
void health_stop(void);

#endif
