/* Choosing an endpoint: smooth weighted round robin (nginx's), and a
 * consistent-hash ring (Ketama-style: weighted virtual nodes), so a key
 * keeps its endpoint and only about 1/N of keys move when an endpoint is
 * added or removed. Pure functions; no I/O, no locks. */
#ifndef RINGGATE_BALANCE_H
#define RINGGATE_BALANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Smooth weighted round robin: over a cycle of sum(weights) picks, each
 * endpoint is picked `weight` times, spread evenly. `current` is per
 * worker state, one per endpoint, starting at zero. usable(i) may veto an
 * endpoint (down, circuit open); -1 when none is usable. */
int wrr_pick(const unsigned *weights, int64_t *current, size_t n,
             bool (*usable)(void *arg, size_t i), void *arg);

#define RING_POINTS_PER_WEIGHT 160

struct hash_ring {
    uint64_t *points;   /* sorted hashes */
    uint32_t *endpoint; /* the endpoint of each point */
    size_t n_points;
};

/* Builds the ring for n endpoints named names[i] with weights[i]; the
 * points depend on the names only, so the same endpoint keeps its points
 * across configurations. -1 on allocation failure. */
int hash_ring_build(struct hash_ring *ring, const char *const *names, const unsigned *weights,
                    size_t n);
void hash_ring_free(struct hash_ring *ring);

/* The endpoint for a key: the first point at or after the key's hash;
 * when usable vetoes it, the next points' endpoints in turn. -1 when none
 * is usable. */
int hash_ring_pick(const struct hash_ring *ring, const void *key, size_t len,
                   bool (*usable)(void *arg, size_t i), void *arg);

/* Same, for a key already hashed with balance_hash. */
int hash_ring_pick_hash(const struct hash_ring *ring, uint64_t hash,
                        bool (*usable)(void *arg, size_t i), void *arg);

/* 64-bit FNV-1a then a finalizer: stable across runs (a ring must not
 * move with a random seed) and well spread. */
uint64_t balance_hash(const void *data, size_t len);

#endif
