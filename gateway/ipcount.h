/* Connections open per client address, across workers, for
 * limits.max_connections_per_ip. Sharded, a mutex per shard, fixed memory:
 * when a shard is full, new addresses are admitted uncounted (failing
 * open: a cap must not turn into an outage). */
#ifndef RINGGATE_IPCOUNT_H
#define RINGGATE_IPCOUNT_H

#include <stdbool.h>
#include <stdint.h>

/* addr: 16 bytes (IPv4 as v4-mapped IPv6). True when a connection is
 * admitted (and counted): fewer than `cap` are open from addr. */
bool ipcount_acquire(const uint8_t addr[16], unsigned cap);
void ipcount_release(const uint8_t addr[16]);

#endif
