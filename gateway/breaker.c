/* Circuit breaker state machine. Races between workers are benign: at
 * worst one extra probe goes through, or two failures open it once. */
#include "breaker.h"

#define MAX_BACKOFF_SHIFT 5 /* open_for x 32 at most */

enum breaker_state breaker_state(const struct breaker *b)
{
    return (enum breaker_state)atomic_load_explicit(&b->state, memory_order_relaxed);
}

static void open_now(struct breaker *b, const struct breaker_params *p, uint64_t now_ms)
{
    unsigned trips = atomic_load(&b->trips);
    unsigned shift = trips < MAX_BACKOFF_SHIFT ? trips : MAX_BACKOFF_SHIFT;

    atomic_store(&b->open_until, now_ms + (p->open_for << shift));
    atomic_store(&b->probes, 0);
    atomic_store(&b->state, BREAKER_OPEN);
}

bool breaker_allow(struct breaker *b, const struct breaker_params *p, uint64_t now_ms)
{
    int state = atomic_load_explicit(&b->state, memory_order_acquire);

    if (state == BREAKER_CLOSED)
        return true;
    if (state == BREAKER_OPEN) {
        if (now_ms < atomic_load(&b->open_until))
            return false;
        /* Time is up: one worker moves it to half-open. */
        atomic_compare_exchange_strong(&b->state, &state, BREAKER_HALF_OPEN);
    }
    return atomic_fetch_add(&b->probes, 1) < (p->half_open_requests ? p->half_open_requests : 1);
}

int breaker_success(struct breaker *b)
{
    int state = atomic_load(&b->state);

    atomic_store(&b->failures, 0);
    /* Only a probe closes it: a success of a request sent before it opened
     * says nothing about the endpoint now. */
    if (state != BREAKER_HALF_OPEN)
        return -1;
    atomic_store(&b->trips, 0);
    atomic_store(&b->probes, 0);
    atomic_store(&b->state, BREAKER_CLOSED);
    return BREAKER_CLOSED;
}

int breaker_failure(struct breaker *b, const struct breaker_params *p, uint64_t now_ms)
{
    int state = atomic_load(&b->state);
    unsigned failures = atomic_fetch_add(&b->failures, 1) + 1;

    if (state == BREAKER_HALF_OPEN) {
        atomic_fetch_add(&b->trips, 1);
        open_now(b, p, now_ms);
        return BREAKER_OPEN;
    }
    if (state == BREAKER_CLOSED && p->failures && failures >= p->failures) {
        open_now(b, p, now_ms);
        return BREAKER_OPEN;
    }
    return -1;
}

unsigned breaker_retry_after(const struct breaker *b, uint64_t now_ms)
{
    uint64_t until = atomic_load(&b->open_until);
    uint64_t ms = until > now_ms ? until - now_ms : 0;

    return ms < 1000 ? 1 : (unsigned)((ms + 999) / 1000);
}
