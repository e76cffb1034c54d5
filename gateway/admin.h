/* The admin listener: /healthz, /readyz and /metrics on their own socket
 * (admin.listen), served by one small thread with blocking I/O, away from
 * the workers and never on a public listener. */
#ifndef RINGGATE_ADMIN_H
#define RINGGATE_ADMIN_H

#include <stddef.h>

#include "config.h"
#include "worker.h"

/* Binds addr and starts the thread. -1 with err on failure. */
int admin_start(const struct sockaddr_any *addr, struct worker *workers, size_t n_workers,
                char *err, size_t err_size);
void admin_stop(void);

#endif
