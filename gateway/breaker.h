/* Circuit breakers: one per upstream endpoint, shared by all workers
 * (atomics, no lock) and kept across reloads (indexed by the endpoint's
 * metrics id: same upstream and endpoint name, same breaker).
 *
 * closed --(failures in a row)--> open --(open_for)--> half-open
 * half-open --(a probe succeeds)--> closed
 * half-open --(a probe fails)--> open again, for twice as long (capped) */
#ifndef RINGGATE_BREAKER_H
#define RINGGATE_BREAKER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

enum breaker_state { BREAKER_CLOSED = 0, BREAKER_HALF_OPEN = 1, BREAKER_OPEN = 2 };

struct breaker_params {
    unsigned failures;       /* consecutive failures that open it; 0: never opens */
    uint64_t open_for;       /* ms */
    unsigned half_open_requests;
};

struct breaker {
    _Atomic int state;
    atomic_uint failures;        /* consecutive */
    atomic_uint probes;          /* requests let through while half-open */
    atomic_uint trips;           /* times re-opened from half-open in a row: back-off */
    _Atomic uint64_t open_until; /* ms, monotonic */
};

/* May a request go to this endpoint now? A half-open breaker admits
 * half_open_requests probes; an open one whose time is up turns
 * half-open and admits the first. */
bool breaker_allow(struct breaker *b, const struct breaker_params *p, uint64_t now_ms);

/* The outcome of a request that breaker_allow let through. Returns the new
 * state when this call changed it, else -1 (for logging). */
int breaker_success(struct breaker *b);
int breaker_failure(struct breaker *b, const struct breaker_params *p, uint64_t now_ms);

enum breaker_state breaker_state(const struct breaker *b);

/* Retry-After for a request refused because of b: seconds until it may
 * turn half-open, at least 1. */
unsigned breaker_retry_after(const struct breaker *b, uint64_t now_ms);

#endif
