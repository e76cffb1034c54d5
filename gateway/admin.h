/* The admin listener: /healthz, /readyz and /metrics on their own socket
 * (admin.listen), served by one small thread with blocking I/O, away from
 * the workers and never on a public listener. */
#ifndef RINGGATE_ADMIN_H
#define RINGGATE_ADMIN_H

#include <stddef.h>

#include "config.h"
#include "worker.h"

/* Binds addr and listens. Called before the public listeners are bound, so
 * that once those accept connections, so does the admin listener (start-up
 * scripts and tests wait for the public port, then ask /readyz). -1 with
 * err on failure. */
int admin_listen(const struct sockaddr_any *addr, char *err, size_t err_size);

/* Starts the thread that serves the admin listener. -1 with err on failure. */
int admin_start(struct worker *workers, size_t n_workers, char *err, size_t err_size);

/* Stops the thread and closes the admin sockets (whatever was set up). */
void admin_stop(void);

#endif
