/* Token buckets in fixed point (see bucket.h). The state keeps what is
 * missing from a full bucket rather than what is in it, so that all-zero
 * memory is a fresh, full bucket and "full" is simply deficit == 0. */
#include "bucket.h"

#define US_PER_SECOND 1000000ull

static uint64_t div_ceil(uint64_t a, uint64_t b)
{
    return a / b + (a % b != 0);
}

static uint64_t add_saturated(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static uint64_t capacity(const struct bucket_params *p)
{
    return p->burst * BUCKET_UNIT;
}

/* Whole seconds, rounded up, from now_us until `units` more are refilled.
 * Counted from now_us rather than from a saturated bucket_full_at(), so
 * that a clock reading near the end of its range cannot turn it into 0. */
static uint64_t seconds_to_refill(const struct bucket_state *s, const struct bucket_params *p,
                                  uint64_t now_us, uint64_t units)
{
    uint64_t us = div_ceil(units, p->per_hour);

    if (s->last_us > now_us) us = add_saturated(us, s->last_us - now_us);
    return div_ceil(us, US_PER_SECOND);
}

int bucket_params_init(struct bucket_params *p, double per_second, uint64_t burst)
{
    uint64_t per_hour;

    /* Written so that NaN fails too. */
    if (!(per_second > 0 && per_second <= BUCKET_RATE_MAX)) return -1;
    if (burst < 1 || burst > BUCKET_BURST_MAX) return -1;
    per_hour = (uint64_t)(per_second * 3600 + 0.5);
    if (per_hour == 0) return -1;
    p->per_hour = per_hour;
    p->burst = burst;
    return 0;
}

/* A reading older than last_us adds nothing and leaves last_us alone:
 * moving it back would refill the same interval a second time once the
 * clock (or a thread with a fresher reading) is past it again. */
static void refill(struct bucket_state *s, const struct bucket_params *p, uint64_t now_us)
{
    uint64_t elapsed;

    /* The burst may have shrunk under a live bucket (configuration reload). */
    if (s->deficit > capacity(p)) s->deficit = capacity(p);
    if (now_us <= s->last_us) return;
    elapsed = now_us - s->last_us;
    s->last_us = now_us;
    /* Compared by division so that huge gaps cannot overflow. */
    if (elapsed >= div_ceil(s->deficit, p->per_hour))
        s->deficit = 0;
    else
        s->deficit -= elapsed * p->per_hour;
}

uint64_t bucket_full_at(const struct bucket_state *s, const struct bucket_params *p)
{
    return add_saturated(s->last_us, div_ceil(s->deficit, p->per_hour));
}

static void fill_result(const struct bucket_state *s, const struct bucket_params *p,
                        uint64_t now_us, uint64_t need, bool allowed, struct bucket_result *res)
{
    uint64_t available = capacity(p) - s->deficit, missing;

    res->limit = p->burst;
    res->remaining = available / BUCKET_UNIT;
    res->reset = seconds_to_refill(s, p, now_us, s->deficit);
    res->retry_after = 0;
    if (allowed) return;
    missing = need > capacity(p) ? s->deficit : need - available;
    res->retry_after = seconds_to_refill(s, p, now_us, missing);
    if (res->retry_after == 0) res->retry_after = 1;
}

bool bucket_take(struct bucket_state *s, const struct bucket_params *p, uint64_t now_us,
                 unsigned cost, struct bucket_result *res)
{
    /* cost < 2^32 and BUCKET_UNIT < 2^32: the product fits. */
    uint64_t need = (uint64_t)cost * BUCKET_UNIT;
    bool allowed;

    refill(s, p, now_us);
    allowed = need <= capacity(p) - s->deficit;
    if (allowed) s->deficit += need;
    fill_result(s, p, now_us, need, allowed, res);
    return allowed;
}
