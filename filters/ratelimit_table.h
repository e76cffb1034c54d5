/* The process-wide table of local rate-limit buckets: one table shared by
 * all workers, so that a limit holds exactly however a client's requests
 * are spread over them. An entry is keyed by (policy id, key bytes).
 *
 * Sharded by a keyed hash (SipHash-1-3, seeded from getrandom()), one mutex
 * per shard. Memory is allocated once, at creation: a full shard reuses an
 * entry, a full bucket first (it carries no information), otherwise by
 * CLOCK (an entry touched again since the hand last passed gets a second
 * chance, so a flood of one-off keys cannot push out the busy ones). */
#ifndef RINGGATE_RATELIMIT_TABLE_H
#define RINGGATE_RATELIMIT_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bucket.h"

/* Keys up to this length are compared byte for byte; longer ones by their
 * length and 128 bits of keyed hash. */
#define RL_KEY_INLINE 40
#define RL_TABLE_MAX_ENTRIES (1ull << 32)

struct rl_table;

/* A table of at most max_entries entries (rl_table_capacity() tells how
 * many exactly: a little fewer when they do not divide evenly among the
 * shards). NULL with errno set: EINVAL (0 or above RL_TABLE_MAX_ENTRIES),
 * ENOMEM, or getrandom()'s error. */
struct rl_table *rl_table_new(size_t max_entries);
void rl_table_free(struct rl_table *t);

/* How many entries fit a memory budget in bytes (0 when none does). */
size_t rl_table_entries_for(size_t budget);

/* bucket_take() on the bucket of (policy, key), which starts full the
 * first time the key is seen (or seen again after being forgotten).
 * Thread-safe; no allocation. */
bool rl_table_take(struct rl_table *t, uint32_t policy, const void *key, size_t key_len,
                   const struct bucket_params *p, uint64_t now_us, unsigned cost,
                   struct bucket_result *res);

size_t rl_table_count(struct rl_table *t); /* entries in use */
size_t rl_table_capacity(const struct rl_table *t);
size_t rl_table_bytes(const struct rl_table *t); /* memory allocated */

#endif
