/* Token-bucket arithmetic for rate limiting: pure functions over a 16-byte
 * state, no clock, no allocation, no locking (the caller owns all three).
 *
 * Tokens are fixed-point integers: one token is BUCKET_UNIT units and the
 * refill rate is kept in tokens per hour, which is also units per
 * microsecond. Every rate the configuration can write (N/s, N/m, N/h) is
 * then an integer and refills add up exactly, with no drift however often
 * the bucket is touched. */
#ifndef RINGGATE_BUCKET_H
#define RINGGATE_BUCKET_H

#include <stdbool.h>
#include <stdint.h>

#define BUCKET_UNIT 3600000000ull /* units in one token (= microseconds in an hour) */
#define BUCKET_BURST_MAX 1000000000ull
#define BUCKET_RATE_MAX 1e9 /* tokens per second */

struct bucket_params {
    uint64_t per_hour; /* refill in tokens per hour = units per microsecond */
    uint64_t burst;    /* capacity in tokens */
};

/* All zero is a full bucket that has never been used. */
struct bucket_state {
    uint64_t deficit; /* units missing to a full bucket */
    uint64_t last_us; /* latest clock reading seen */
};

/* What the contract's headers need, after one bucket_take(). */
struct bucket_result {
    uint64_t limit;       /* burst: RateLimit-Limit */
    uint64_t remaining;   /* whole tokens left: RateLimit-Remaining */
    uint64_t reset;       /* seconds until the bucket is full, rounded up: RateLimit-Reset */
    uint64_t retry_after; /* 0 when allowed; else seconds until `cost` tokens are there,
                           * rounded up, >= 1: Retry-After */
};

/* per_second > 0 and <= BUCKET_RATE_MAX, rounded to the nearest token per
 * hour (which must not be 0, so 1/h is the slowest rate); burst in
 * [1, BUCKET_BURST_MAX]. 0, or -1 when out of range. */
int bucket_params_init(struct bucket_params *p, double per_second, uint64_t burst);

/* Refills the bucket up to now_us (a monotonic clock in microseconds; a
 * reading older than one already seen adds nothing) and takes `cost` tokens
 * if they are all there; p comes from bucket_params_init(). Returns whether
 * they were; a denied take changes nothing but the refill. A cost above the
 * burst is always denied, with retry_after the time until the bucket is
 * full (there is no better time to offer). Cost 0 asks: always allowed. */
bool bucket_take(struct bucket_state *s, const struct bucket_params *p, uint64_t now_us,
                 unsigned cost, struct bucket_result *res);

/* The clock reading (microseconds) at which the bucket will be full again
 * if left alone; UINT64_MAX when that is beyond the clock's range. A full
 * bucket carries no information: a table may forget it. */
uint64_t bucket_full_at(const struct bucket_state *s, const struct bucket_params *p);

#endif
