/* Endpoint choice: smooth weighted round robin and the consistent-hash
 * ring. */
#include "balance.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint64_t balance_hash(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ULL;

    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    /* splitmix64's finalizer: FNV alone clusters on similar keys. */
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    return h;
}

int wrr_pick(const unsigned *weights, int64_t *current, size_t n,
             bool (*usable)(void *arg, size_t i), void *arg)
{
    int64_t total = 0;
    int best = -1;

    for (size_t i = 0; i < n; i++) {
        if (!usable(arg, i))
            continue;
        current[i] += weights[i];
        total += weights[i];
        if (best < 0 || current[i] > current[best])
            best = (int)i;
    }
    if (best >= 0)
        current[best] -= total;
    return best;
}

struct point {
    uint64_t hash;
    uint32_t endpoint;
};

static int point_order(const void *a, const void *b)
{
    const struct point *x = a, *y = b;

    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    return x->endpoint < y->endpoint ? -1 : x->endpoint > y->endpoint;
}

int hash_ring_build(struct hash_ring *ring, const char *const *names, const unsigned *weights,
                    size_t n)
{
    size_t total = 0, k = 0;
    struct point *points;

    memset(ring, 0, sizeof(*ring));
    for (size_t i = 0; i < n; i++)
        total += (size_t)weights[i] * RING_POINTS_PER_WEIGHT;
    points = malloc((total ? total : 1) * sizeof(*points));
    ring->points = malloc((total ? total : 1) * sizeof(uint64_t));
    ring->endpoint = malloc((total ? total : 1) * sizeof(uint32_t));
    if (!points || !ring->points || !ring->endpoint) {
        free(points);
        hash_ring_free(ring);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t v = 0; v < (size_t)weights[i] * RING_POINTS_PER_WEIGHT; v++) {
            char label[300];
            int len = snprintf(label, sizeof(label), "%s#%zu", names[i], v);
            points[k].hash = balance_hash(label, (size_t)len);
            points[k].endpoint = (uint32_t)i;
            k++;
        }
    }
    qsort(points, total, sizeof(*points), point_order);
    for (size_t i = 0; i < total; i++) {
        ring->points[i] = points[i].hash;
        ring->endpoint[i] = points[i].endpoint;
    }
    ring->n_points = total;
    free(points);
    return 0;
}

void hash_ring_free(struct hash_ring *ring)
{
    free(ring->points);
    free(ring->endpoint);
    memset(ring, 0, sizeof(*ring));
}

static size_t first_at_or_after(const struct hash_ring *ring, uint64_t h)
{
    size_t lo = 0, hi = ring->n_points;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ring->points[mid] < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo == ring->n_points ? 0 : lo;
}

int hash_ring_pick(const struct hash_ring *ring, const void *key, size_t len,
                   bool (*usable)(void *arg, size_t i), void *arg)
{
    return hash_ring_pick_hash(ring, balance_hash(key, len), usable, arg);
}

int hash_ring_pick_hash(const struct hash_ring *ring, uint64_t hash,
                        bool (*usable)(void *arg, size_t i), void *arg)
{
    size_t at;

    if (!ring->n_points)
        return -1;
    at = first_at_or_after(ring, hash);
    for (size_t step = 0; step < ring->n_points; step++) {
        uint32_t e = ring->endpoint[(at + step) % ring->n_points];
        if (usable(arg, e))
            return (int)e;
    }
    return -1;
}
